"""One function's facts: parameters, locals, calls (including macros that leave no call in
the AST), assignments, lock and critical-section regions, `if` guards and escapes."""

from __future__ import annotations

import re
from typing import Any

from gilaudit.frontends import textscan
from gilaudit.frontends.c.accesses import aliases_of, field_accesses, lvalue_calls
from gilaudit.frontends.c.cursors import Text, is_static, var_fact
from gilaudit.frontends.c.facts import (
    Assign,
    CallSite,
    FunctionFacts,
    IfGuard,
    Jump,
    Loop,
    Mention,
    Region,
    Var,
)

__all__ = ["LOCK_PAIRS", "function_facts"]

# Lock and region markers that have no parentheses.
_BARE_MACROS = re.compile(
    r"\b(Py_BEGIN_ALLOW_THREADS|Py_END_ALLOW_THREADS|Py_BLOCK_THREADS|Py_UNBLOCK_THREADS)\b"
)
_CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_IDENT = re.compile(r"[A-Za-z_]\w*")
_COPY = re.compile(r"\s*([A-Za-z_]\w*)\s*[;,)]")  # `Database *db = (Database *)odb;`
_NO_VALUE = re.compile(r"-?\d+|\(\s*\w+\s*\*?\s*\)\s*(?:0|NULL)|")  # `return -1;`, `return;`
_ASSIGN = re.compile(r"(?<![\w.>\]])([A-Za-z_]\w*)\s*=(?!=)")
_CAST_PREFIX = re.compile(r"^\s*(?:\(\s*(?:const\s+)?(?:struct\s+)?[A-Za-z_]\w*[\s\*]*\)\s*)+")
# The callee of `x = f(...)`, and of `x = type->tp_alloc(...)` (the member called).
_CALLEE = re.compile(r"^(?:[A-Za-z_]\w*\s*(?:->|\.)\s*)*([A-Za-z_]\w*)\s*\(")
_FIELD = re.compile(r"\b([A-Za-z_]\w*)\s*->\s*([A-Za-z_]\w*)")
_FIELD_ASSIGN = re.compile(r"\b([A-Za-z_]\w*)\s*->\s*([A-Za-z_]\w*)\s*=(?!=)")
_NULL_TEST = re.compile(
    r"^\(?\s*(?:!\s*([A-Za-z_]\w*)|([A-Za-z_]\w*)\s*==\s*(?:NULL|0|nullptr)"
    r"|(?:NULL|0|nullptr)\s*==\s*([A-Za-z_]\w*))\s*\)?$"
)
# The same test of an object's field: `if (!self->dict)` before `self->dict = PyDict_New()`.
_FIELD_NULL_TEST = re.compile(
    r"^\(?\s*(?:!\s*(\w+\s*->\s*\w+)|(\w+\s*->\s*\w+)\s*==\s*(?:NULL|0|nullptr)"
    r"|(?:NULL|0|nullptr)\s*==\s*(\w+\s*->\s*\w+))\s*\)?$"
)
# ... and the test that it is set: `if (self->f)`, `if (self->f != NULL)`
_FIELD_SET_TEST = re.compile(
    r"^\(?\s*(?:(\w+\s*->\s*\w+)|(\w+\s*->\s*\w+)\s*!=\s*(?:NULL|0|nullptr)"
    r"|(?:NULL|0|nullptr)\s*!=\s*(\w+\s*->\s*\w+))\s*\)?$"
)
_SET_TEST = re.compile(
    r"^\(?\s*(?:([A-Za-z_]\w*)|([A-Za-z_]\w*)\s*!=\s*(?:NULL|0|nullptr))\s*\)?$"
)
# A thread-ownership test: `if (self->thread_id != PyThread_get_thread_ident()) { raise }`
# (aiocsv's Parser: an instance used from another thread than its maker's raises).
_THREAD_NOW = (r"(?:PyThread_get_thread_ident(?:_ex)?|pthread_self|GetCurrentThreadId|thrd_current"
               r"|PyThreadState_(?:Get|GET)|_PyThreadState_GET|PyGILState_GetThisThreadState"
               r"|(?:std\s*::\s*)?this_thread\s*::\s*get_id)\s*\(\s*\)")
_OWNER_TEST = re.compile(
    rf"^\(?\s*(?:(\w+\s*->\s*\w+)\s*!=\s*{_THREAD_NOW}|{_THREAD_NOW}\s*!=\s*(\w+\s*->\s*\w+)"
    rf"|!\s*pthread_equal\s*\(\s*(?:(\w+\s*->\s*\w+)\s*,\s*{_THREAD_NOW}"
    rf"|{_THREAD_NOW}\s*,\s*(\w+\s*->\s*\w+))\s*\))\s*\)?$")
_NOT_PUBLISHING = frozenset({
    "Py_INCREF", "Py_XINCREF", "Py_DECREF", "Py_XDECREF", "Py_CLEAR", "Py_NewRef", "Py_XNewRef",
    "Py_SIZE", "Py_TYPE", "Py_REFCNT", "PyList_GET_SIZE", "PyTuple_GET_SIZE", "PyList_Size",
    "PyDict_Size", "PyTuple_Size", "PyObject_Length", "PyObject_Size", "assert", "PyErr_Format",
    "PyList_GET_ITEM", "PyList_GetItem", "PyDict_GetItem", "PyDict_GetItemString",
    "PyDict_GetItemWithError", "PyDict_Next", "PyCell_GET", "PyWeakref_GET_OBJECT",
    "PyWeakref_GetObject", "PySequence_Fast", "PySequence_Fast_ITEMS", "PySequence_Fast_GET_ITEM",
    "PySequence_Fast_GET_SIZE",
})
_REGION_PAIRS = {
    # begin name -> (region kind, end names)
    "Py_BEGIN_CRITICAL_SECTION": ("cs", ("Py_END_CRITICAL_SECTION",)),
    "Py_BEGIN_CRITICAL_SECTION2": ("cs2", ("Py_END_CRITICAL_SECTION2",)),
    "Py_BEGIN_CRITICAL_SECTION_MUTEX": ("cs", ("Py_END_CRITICAL_SECTION",)),
    "Py_BEGIN_CRITICAL_SECTION2_MUTEX": ("cs2", ("Py_END_CRITICAL_SECTION2",)),
}
_CS_ENDS = frozenset({"Py_END_CRITICAL_SECTION", "Py_END_CRITICAL_SECTION2"})
# A project's own spelling, defined as CPython's on free-threaded builds and as nothing on the
# others (caio's `CAIO_BEGIN_CRITICAL_SECTION(self)` ... `CAIO_END_CRITICAL_SECTION()`): what
# the parse sees is the empty one.
_PROJECT_CS = re.compile(r"^[A-Za-z]\w*_(?:BEGIN_CRITICAL_SECTION(2?)|CRITICAL_SECTION(2?)_"
                         r"(?:BEGIN|START|ENTER))$")
_PROJECT_CS_END = re.compile(r"^[A-Za-z]\w*_(?:END_CRITICAL_SECTION2?|CRITICAL_SECTION2?_"
                             r"(?:END|STOP|EXIT|LEAVE))$")


def _cs_begin(name: str) -> str:
    """The kind of critical section a call begins ("cs", "cs2"), or ""."""
    if name in _REGION_PAIRS:
        return _REGION_PAIRS[name][0]
    if "CRITICAL_SECTION" not in name:  # every call of every function comes here
        return ""
    m = _PROJECT_CS.match(name)
    return ("cs2" if m.group(1) or m.group(2) else "cs") if m else ""


def _cs_end(name: str) -> bool:
    return name in _CS_ENDS or ("CRITICAL_SECTION" in name
                                and bool(_PROJECT_CS_END.match(name)))


_ALLOW_PAIRS = {
    "Py_BEGIN_ALLOW_THREADS": "Py_END_ALLOW_THREADS",
    "Py_UNBLOCK_THREADS": "Py_BLOCK_THREADS",
    "PyEval_SaveThread": "PyEval_RestoreThread",
}
LOCK_PAIRS = {
    "PyMutex_Lock": "PyMutex_Unlock",
    "PyThread_acquire_lock": "PyThread_release_lock",
    "PyThread_acquire_lock_timed": "PyThread_release_lock",
    "pthread_mutex_lock": "pthread_mutex_unlock",
    "EnterCriticalSection": "LeaveCriticalSection",
    "AcquireSRWLockExclusive": "ReleaseSRWLockExclusive",
    "mtx_lock": "mtx_unlock",
}
_LOCK_ENDS = frozenset(LOCK_PAIRS.values())
# Project lock wrappers (`MUTEX_LOCK(&m)`, `LOCK()`, `cache_lock(st)`): paired by name shape
# and argument, since what they expand to is not visible in the text.
# CPython's own modules spell them ENTER_HASHLIB(self)/LEAVE_HASHLIB(self), ENTER_BUFFERED.
# viztracer's SNAPTRACE_THREAD_PROTECT_START(self)/_END(self), a critical section on
# free-threaded builds, names a start and an end instead.
_WRAPPED_LOCK = re.compile(
    r"^(?:\w+_)?(?:LOCK|lock|Lock|ACQUIRE|acquire|Acquire|ENTER|Enter|enter)(?:_\w+)?$"
    r"|^(?:\w+_)?(?:PROTECT|GUARD|SERIALI[SZ]E)_(?:START|BEGIN|ENTER)$")
_WRAPPED_UNLOCK = re.compile(
    r"^(?:\w+_)?(?:UNLOCK|unlock|Unlock|RELEASE|release|Release|LEAVE|Leave|leave)(?:_\w+)?$"
    r"|^(?:\w+_)?(?:PROTECT|GUARD|SERIALI[SZ]E)_(?:END|STOP|EXIT|LEAVE)$")


def function_facts(cursor: Any, ci: Any, text: Text, globals_: list[Var],
                   shared_names: re.Pattern[str] | None, *, cxx: bool = True) -> FunctionFacts:
    kinds = ci.CursorKind
    lib = ci.conf.lib
    ext = cursor.extent
    start, end = ext.start.offset, ext.end.offset
    params: list[Var] = []
    local_vars: list[Var] = []
    # if, cond start/end, then start/end, line, else start/end (-1 without an else)
    ifs: list[tuple[int, int, int, int, int, int, int, int]] = []
    jumps: list[Jump] = []
    loops: list[Loop] = []
    labels: list[Mention] = []
    lambdas: list[tuple[int, int]] = []
    k_parm, k_var, k_if = kinds.PARM_DECL.value, kinds.VAR_DECL.value, kinds.IF_STMT.value
    k_label, k_lambda = kinds.LABEL_STMT.value, kinds.LAMBDA_EXPR.value
    loop_kinds = {kinds.FOR_STMT.value: "for", kinds.WHILE_STMT.value: "while",
                  kinds.DO_STMT.value: "do", kinds.SWITCH_STMT.value: "switch",
                  kinds.CXX_FOR_RANGE_STMT.value: "for"}
    jump_kinds = {kinds.RETURN_STMT.value: "return", kinds.GOTO_STMT.value: "goto",
                  kinds.BREAK_STMT.value: "break", kinds.CONTINUE_STMT.value: "continue"}
    k_member = kinds.MEMBER_REF_EXPR.value
    interesting = {k_parm, k_var, k_if, k_label, k_lambda, *loop_kinds, *jump_kinds}
    owner = ""
    if cursor.kind in (kinds.CXX_METHOD, kinds.CONSTRUCTOR, kinds.DESTRUCTOR):
        # A member function's fields are the object's state, named without `this->`.
        owner = cursor.semantic_parent.spelling or ""
        interesting.add(k_member)
    implicit: list[tuple[str, int]] = []  # (member, offset) used through the implicit this
    tu = cursor._tu
    get_kind = lib.clang_getCursorKind

    # One native traversal with a cheap callback: asking only for the kind of most nodes is
    # what keeps the per-cursor cost low on large files.
    def visitor(child: Any, parent: Any, _data: Any) -> int:
        k = get_kind(child)
        if k not in interesting:
            return 2  # CXChildVisit_Recurse
        child._tu = tu
        if k == k_parm:
            if parent == cursor:
                params.append(var_fact(child, text, "param", len(params)))
            return 1  # CXChildVisit_Continue
        if k == k_var:
            storage = "function-static" if is_static(child, ci) else "local"
            local_vars.append(var_fact(child, text, storage))
        elif k == k_if:
            parts = list(child.get_children())
            if len(parts) >= 2:
                cond, then = parts[-2], parts[-1]
                other = None
                if len(parts) >= 3:  # `if (c) a; else b;` or an init statement first
                    cond, then = parts[0], parts[1]
                    if parts[0].kind != kinds.DECL_STMT:
                        other = parts[2]
                ifs.append((child.extent.start.offset, cond.extent.start.offset,
                            cond.extent.end.offset, then.extent.start.offset,
                            then.extent.end.offset, child.location.line,
                            other.extent.start.offset if other is not None else -1,
                            other.extent.end.offset if other is not None else -1))
        elif k in jump_kinds:
            loc = child.location
            label = ""
            if jump_kinds[k] == "goto":
                for sub in child.get_children():
                    label = sub.spelling
            elif jump_kinds[k] == "return":
                for sub in child.get_children():  # the name it returns, if it is a name
                    returned = text.bare[sub.extent.start.offset:sub.extent.end.offset].strip()
                    label = returned if _IDENT.fullmatch(returned) else (
                        "" if _NO_VALUE.fullmatch(returned) else "?")
            jumps.append(Jump(jump_kinds[k], child.extent.start.offset, loc.line, loc.column,
                              label))
        elif k in loop_kinds:
            loops.append(Loop(loop_kinds[k], child.extent.start.offset, child.extent.end.offset))
        elif k == k_label:
            loc = child.location
            labels.append(Mention(child.spelling, loc.line, loc.column, child.extent.start.offset))
        elif k == k_lambda:
            lambdas.append((child.extent.start.offset, child.extent.end.offset))
            return 1  # a lambda body runs later, elsewhere: not this function's flow
        elif k == k_member:
            at = child.extent.start.offset
            name = child.spelling
            if name and text.bare.startswith(name, at) and not text.bare[
                    max(0, at - 2):at].rstrip().endswith((".", "->")):
                implicit.append((name, at))
        return 2

    if owner or _needs_walk(text.bare[start:end], shared_names):
        lib.clang_visitChildren(cursor, ci.callbacks["cursor_visit"](visitor), None)
    else:
        for i, arg in enumerate(cursor.get_arguments()):
            arg._tu = tu
            params.append(var_fact(arg, text, "param", i))
    # The header `PyObject *f(PyObject *a)` is not a call of `f`: scan from the body's brace.
    name_at = cursor.location.offset
    brace = text.bare.find("{", name_at if start <= name_at < end else start, end)
    body_start = brace if brace >= 0 else start
    calls = _calls(text, body_start, end)
    assigns = _assigns(text, body_start, end)
    names_local = {v.name for v in params} | {v.name for v in local_vars}
    regions, unmatched = _regions(calls, text.bare)
    regions += _scoped_locks(text.bare, body_start, end)
    guards = _if_guards(ifs, text, names_local, globals_, local_vars)
    fields = [
        Mention(m.group(2), *text.index.line_col(m.start()), m.start(), m.group(1))
        for m in _FIELD.finditer(text.bare, body_start, end)
    ]
    escapes = _escapes(text, calls, local_vars, start, end)
    field_writes = [
        Assign(f"{m.group(1)}->{m.group(2)}", m.start(), _rhs_callee(text.bare, m.end(), end))
        for m in _FIELD_ASSIGN.finditer(text.bare, start, end)
    ]
    loc = cursor.location
    return FunctionFacts(
        name=cursor.spelling,
        line=loc.line,
        col=loc.column,
        end_line=ext.end.line,
        start=start,
        end=end,
        is_static=is_static(cursor, ci),
        params=tuple(params),
        locals=tuple(local_vars),
        calls=tuple(calls),
        assigns=tuple(assigns),
        global_writes=(),
        field_uses=tuple(fields),
        field_writes=tuple(field_writes),
        escapes=tuple(escapes),
        regions=tuple(regions),
        ifs=tuple(guards),
        jumps=tuple(jumps),
        loops=tuple(loops),
        labels=tuple(labels),
        unmatched=tuple(unmatched),
        accesses=tuple(field_accesses(text, calls, body_start, end, implicit, frozenset(
            p.name for p in params if re.search(r"\*\s*\*|\*\s*$", p.type)), cxx=cxx)),
        aliases=tuple(aliases_of(text, params, body_start, end)),
        lvalue_calls=tuple(lvalue_calls(text, calls)),
        owner=owner,
        deferred=tuple(_deferred(text.bare, lambdas, body_start, end)),
    )


_LAMBDA_NAME = re.compile(r"\b([A-Za-z_]\w*)\s*=\s*$")


def _deferred(bare: str, lambdas: list[tuple[int, int]], start: int,
              end: int) -> list[tuple[int, int]]:
    """The lambdas that do not run where they are written: not invoked at once
    (`[&]{...}()`), nor stored in a local that the function then calls."""
    out: list[tuple[int, int]] = []
    for lo, hi in lambdas:
        if bare[hi:hi + 40].lstrip().startswith("("):
            continue
        named = _LAMBDA_NAME.search(bare[max(start, lo - 80):lo])
        if named and re.search(rf"\b{re.escape(named.group(1))}\s*\(", bare[hi:end]):
            continue
        out.append((lo, hi))
    return out


# Anything here in a body means the matchers need its declarations and statements.
_WALK_TRIGGERS = re.compile(
    r"\b(?:static|Py_BEGIN_CRITICAL_SECTION\w*|Py_END_CRITICAL_SECTION\w*|PyList_GetItem"
    r"|PyList_GET_ITEM|PyList_SET_ITEM|PyTuple_SET_ITEM|PyDict_GetItem\w*|PyDict_SetDefault"
    r"|PyDict_Next|PyCell_GET|PySequence_Fast\w*|PyWeakref_\w+)\b"
    # A field lent out (FT033) is judged by the return statement that follows it.
    r"|\bPy_X?(?:INCREF|NewRef)\s*\(\s*\w+\s*->"
    # A C++ lambda: whether it runs now or later decides what its body's writes mean.
    r"|\]\s*(?:\([^)]*\)\s*)?(?:mutable\s*)?(?:->[^{;]*)?\{"
)


def _needs_walk(body: str, shared_names: re.Pattern[str] | None) -> bool:
    if _WALK_TRIGGERS.search(body):
        return True
    return bool(shared_names is not None and shared_names.search(body))


def _calls(text: Text, start: int, end: int) -> list[CallSite]:
    bare = text.bare
    out: list[CallSite] = []
    for m in _CALL.finditer(bare, start, end):
        name = m.group(1)
        if name in textscan.KEYWORDS:
            continue
        before = bare[max(start, m.start() - 3):m.start()].rstrip()
        if before.endswith((".", "->")):
            continue  # a call through a struct member is not a call of that global function
        open_pos = m.end() - 1
        close = textscan.find_close(bare, open_pos, end)
        if close < 0:
            continue
        line, col = text.index.line_col(m.start())
        out.append(CallSite(name, line, col, m.start(), close + 1,
                            textscan.split_args(text.code, bare, open_pos, close)))
    for m in _BARE_MACROS.finditer(bare, start, end):
        line, col = text.index.line_col(m.start())
        out.append(CallSite(m.group(1), line, col, m.start(), m.end(), ()))
    out.sort(key=lambda c: c.offset)
    return out


# A call of a type object (`PyObject_CallObject((PyObject *)&ReaderType, args)`) makes an instance.
_TYPE_CALL = re.compile(r"PyObject_(?:Call\w*|Vectorcall)\s*\(\s*(?:\([^()]*\)\s*)?&\s*\w*Type\b")


def _rhs_callee(bare: str, pos: int, end: int) -> str:
    rest = bare[pos:min(end, pos + 200)]
    rest = _CAST_PREFIX.sub("", rest, count=1).lstrip()
    if _TYPE_CALL.match(rest):
        return "tp_new"
    m = _CALLEE.match(rest)
    return m.group(1) if m else ""


def _assigns(text: Text, start: int, end: int) -> list[Assign]:
    out = []
    for m in _ASSIGN.finditer(text.bare, start, end):
        prev = text.bare[max(start, m.start() - 2):m.start()].rstrip()
        if prev.endswith(("->", ".", "*")) and not prev.endswith("**"):
            if prev.endswith("*") and not prev.endswith(("->", ".")):
                pass  # `PyObject *x = ...` declares x: still an assignment to x
            else:
                continue
        rest = _CAST_PREFIX.sub("", text.bare[m.end():min(end, m.end() + 120)], count=1)
        copy = _COPY.match(rest)
        out.append(Assign(m.group(1), m.start(), _rhs_callee(text.bare, m.end(), end),
                          copy.group(1) if copy else ""))
    return out


def _regions(calls: list[CallSite], bare: str) -> tuple[list[Region], list[Mention]]:
    regions: list[Region] = []
    unmatched: list[Mention] = []
    # Critical sections follow block structure: pair them with a brace-aware stack.
    events: list[tuple[int, str, CallSite | None]] = []
    for c in calls:
        if _cs_begin(c.name):
            events.append((c.offset, "begin", c))
        elif _cs_end(c.name):
            events.append((c.offset, "end", c))
    if events:
        lo = min(e[0] for e in events)
        hi = max(c.end for c in calls)
        for i in range(lo, hi):
            ch = bare[i]
            if ch == "{":
                events.append((i, "{", None))
            elif ch == "}":
                events.append((i, "}", None))
        events.sort(key=lambda e: (e[0], e[1] != "begin"))
        stack: list[tuple[str, CallSite | None]] = []
        for _off, kind, call in events:
            if kind == "begin":
                stack.append(("cs", call))
            elif kind == "{":
                stack.append(("{", None))
            elif kind == "}":
                # A block closing over an open section: that section never ends in its block.
                while stack and stack[-1][0] == "cs":
                    _, begin = stack.pop()
                    assert begin is not None
                    regions.append(_cs_region(begin, None))
                if stack:
                    stack.pop()
            elif kind == "end":
                assert call is not None
                if stack and stack[-1][0] == "cs":
                    _, begin = stack.pop()
                    assert begin is not None
                    regions.append(_cs_region(begin, call))
                else:
                    unmatched.append(Mention(call.name, call.line, call.col, call.offset))
        for k, begin in stack:
            if k == "cs" and begin is not None:
                regions.append(_cs_region(begin, None))
    # Detached regions and plain locks pair in order of appearance.
    for begin_name, end_name in _ALLOW_PAIRS.items():
        regions += _pair_linear(calls, begin_name, (end_name,), "allow")
    # `if (err) { RELEASE_LOCK(self); return NULL; }`: that path leaves; the lock stays held on
    # the one that goes on, until the release that is not followed by a return.
    exits = {c.offset for c in calls if _EARLY_EXIT.match(bare, c.end)}
    for begin_name, end_name in LOCK_PAIRS.items():
        regions += _pair_linear(calls, begin_name, (end_name,), "lock", same_receiver=True,
                                exits=exits, bare=bare)
    regions += _wrapped_locks(calls, exits, bare)
    regions.sort(key=lambda r: r.begin)
    return regions, unmatched


# C++ locks held from their declaration to the end of the enclosing block (RAII).
_SCOPED_LOCK = re.compile(
    r"\b(?:std::|py::|pybind11::|nb::|nanobind::)?(?:lock_guard|unique_lock|scoped_lock|"
    r"shared_lock|scoped_critical_section|ft_lock_guard|ft_object_guard)\s*(?:<[^;>]*>)?\s+"
    r"[A-Za-z_]\w*\s*[({]\s*([^;]*?)\s*[)}]\s*;")


# pybind11's and nanobind's RAII release: detached from its declaration to the end of the
# enclosing block, as between Py_BEGIN_ALLOW_THREADS and Py_END_ALLOW_THREADS.
_SCOPED_RELEASE = re.compile(
    r"\b(?:py::|pybind11::|nb::|nanobind::)?gil_scoped_release\s+[A-Za-z_]\w*\s*"
    r"(?:\(\s*\)|\{\s*\})?\s*;")

_SCOPED_ACQUIRE = re.compile(
    r"\b(?:py::|pybind11::|nb::|nanobind::)?gil_scoped_acquire\s+[A-Za-z_]\w*\s*"
    r"(?:\(\s*\)|\{\s*\})?\s*;")


def _scoped_locks(bare: str, start: int, end: int) -> list[Region]:
    out: list[Region] = []
    releases = _SCOPED_RELEASE.finditer(bare, start, end) if bare.find(
        "gil_scoped_release", start, end) >= 0 else iter(())
    for m in releases:
        lo, hi = m.start(), _block_end(bare, m.end(), end)
        # a `gil_scoped_acquire` inside attaches again until its own block ends
        for a in _SCOPED_ACQUIRE.finditer(bare, m.end(), hi):
            if a.start() < lo:
                continue
            out.append(Region("allow", lo, a.start(), 0, 0, "", "gil_scoped_release", ""))
            lo = _block_end(bare, a.end(), hi)
        out.append(Region("allow", lo, hi, 0, 0, "", "gil_scoped_release", ""))
    scoped = _SCOPED_LOCK.finditer(bare, start, end) if bare.find("lock", start, end) >= 0 \
        or bare.find("_guard", start, end) >= 0 or bare.find("critical_section", start, end) >= 0 \
        else iter(())
    for m in scoped:
        receiver = m.group(1).split(",")[0].strip()
        out.append(Region("lock", m.start(), _block_end(bare, m.end(), end), 0, 0, receiver,
                          "scoped", ""))
    return out


def _block_end(bare: str, start: int, end: int) -> int:
    """Where the block enclosing ``start`` closes."""
    depth = 0
    for b in _BRACE.finditer(bare, start, end):
        if b.group() == "{":
            depth += 1
        elif depth == 0:
            return b.start()
        else:
            depth -= 1
    return end


_BRACE = re.compile(r"[{}]")


# A release followed by a return of nothing, a name or a constant (`return result;`,
# `Py_RETURN_NONE;`), or a jump, maybe after setting the error or dropping references first
# (watchdog: `stream_unlock(self); PyErr_SetString(...); return NULL;`): not a return that
# still reads the object after the release.
# (a release inside `#ifdef Py_GIL_DISABLED` ... `#endif` before the return: turbohtml's walker)
_EARLY_EXIT = re.compile(
    r"\s*;\s*(?:#[^\n]*\n\s*)*(?:(?:PyErr_\w+|Py_X?DECREF|Py_CLEAR)\s*\([^;{}]*\)\s*;\s*)*"
    r"(?:return\s*(?:[A-Za-z_]\w*|-?\d+)?\s*;|goto\s+\w+\s*;|Py_RETURN_[A-Z]+\b)")


def _nested_exit(bare: str, lock: CallSite, release: CallSite, exits: set[int] | None) -> bool:
    """A release followed by a return, in a block opened after the lock was taken
    (`LOCK; ... if (err) { RELEASE; return NULL; } ...`): only that path leaves. In the lock's
    own block (`if (fast) { LOCK; ...; RELEASE; return r; }`) it ends the region."""
    if not exits or release.offset not in exits:
        return False
    depth = 0
    for ch in bare[lock.end:release.offset]:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                return False  # the lock's block closed before the release
    return depth > 0


def _wrapped_locks(calls: list[CallSite], exits: set[int] | None = None,
                   bare: str = "") -> list[Region]:
    out: list[Region] = []
    open_: list[CallSite] = []
    for c in calls:
        if c.name in LOCK_PAIRS or c.name in _LOCK_ENDS or "BLOCK" in c.name:
            continue
        if _WRAPPED_UNLOCK.match(c.name) and any(
                o.args[:1] == c.args[:1] and _nested_exit(bare, o, c, exits) for o in open_):
            continue  # an early exit: the lock is still held after it
        if _WRAPPED_UNLOCK.match(c.name):
            match = next((o for o in reversed(open_) if o.args[:1] == c.args[:1]), None)
            if match is not None:
                open_.remove(match)
                out.append(Region("lock", match.offset, c.offset, match.line, match.col,
                                  match.args[0] if match.args else "", match.name, c.name))
        elif _WRAPPED_LOCK.match(c.name):
            open_.append(c)
    return out


def _cs_region(begin: CallSite, end: CallSite | None) -> Region:
    kind = _cs_begin(begin.name)
    return Region(kind, begin.offset, end.offset if end else -1, begin.line, begin.col,
                  ", ".join(begin.args), begin.name, end.name if end else "")


def _pair_linear(calls: list[CallSite], begin_name: str, end_names: tuple[str, ...], kind: str,
                 *, same_receiver: bool = False, exits: set[int] | None = None,
                 bare: str = "") -> list[Region]:
    out: list[Region] = []
    open_: list[CallSite] = []
    for c in calls:
        if c.name == begin_name:
            open_.append(c)
        elif c.name in end_names and open_:
            match = open_[-1]
            if same_receiver and c.args and match.args and c.args[0] != match.args[0]:
                candidates = [o for o in open_ if o.args and o.args[0] == c.args[0]]
                if not candidates:
                    continue
                match = candidates[-1]
            if _nested_exit(bare, match, c, exits):
                continue  # an early exit: the lock is still held after it
            open_.remove(match)
            out.append(Region(kind, match.offset, c.offset, match.line, match.col,
                              match.args[0] if match.args else "", match.name, c.name))
    # A region opened and never closed in this function extends to its end.
    for o in open_:
        out.append(Region(kind, o.offset, 1 << 62, o.line, o.col,
                          o.args[0] if o.args else "", o.name, ""))
    return out


def _if_guards(ifs: list[tuple[int, int, int, int, int, int, int, int]], text: Text,
               local_names: set[str], globals_: list[Var], local_vars: list[Var]) -> list[IfGuard]:
    statics = {v.name for v in local_vars if v.storage == "function-static"}
    shared = ({v.name for v in globals_} - local_names) | statics
    out: list[IfGuard] = []
    for if_off, c0, c1, t0, t1, line, e0, e1 in ifs:
        cond = " ".join(text.bare[c0:c1].split())
        m = _FIELD_SET_TEST.match(cond)
        if m and e0 >= 0:
            # `if (self->f) { use } else { self->f = make(); }`: the else fills it
            name = "".join((m.group(1) or m.group(2) or m.group(3)).split())
            out.append(IfGuard(name, "null-check", if_off, e0, e1, line))
            continue
        m = _NULL_TEST.match(cond)
        if m:
            name = m.group(1) or m.group(2) or m.group(3)
            if name in shared:
                out.append(IfGuard(name, "null-check", if_off, t0, t1, line))
            continue
        m = _FIELD_NULL_TEST.match(cond)
        if m:  # `base->field`, spaces removed
            name = "".join((m.group(1) or m.group(2) or m.group(3)).split())
            out.append(IfGuard(name, "null-check", if_off, t0, t1, line))
            continue
        m = _OWNER_TEST.match(cond)
        if m:  # only the owner thread goes on past it
            name = "".join(next(g for g in m.groups() if g).split())
            if re.search(r"\b(?:return|goto)\b", text.bare[t0:t1]):
                out.append(IfGuard(name, "owner", if_off, t0, t1, line))
            continue
        m = _SET_TEST.match(cond)
        if m:
            name = m.group(1) or m.group(2)
            if name in shared and re.search(r"\breturn\b", text.bare[t0:t1]):
                out.append(IfGuard(name, "early-return", if_off, t0, t1, line))
    return out


def _escapes(text: Text, calls: list[CallSite], local_vars: list[Var], start: int,
             end: int) -> list[Mention]:
    names = {v.name for v in local_vars if v.storage == "local" and v.is_pointer}
    if not names:
        return []
    out: list[Mention] = []
    for c in calls:
        if c.name in _NOT_PUBLISHING or c.name.endswith("_SET_ITEM"):
            continue
        for i, arg in enumerate(c.args):
            a = _CAST_PREFIX.sub("", arg).strip().lstrip("&")
            if a in names and (i > 0 or not c.name.startswith("Py")):
                out.append(Mention(a, c.line, c.col, c.offset, c.name))
    # Stored into a field, a dereferenced pointer or anything not a plain local.
    for m in re.finditer(r"(->\s*\w+|\]|\*\s*\w+)\s*=(?!=)\s*(?:\([^)]*\)\s*)?([A-Za-z_]\w*)\s*;",
                         text.bare[start:end]):
        if m.group(2) in names:
            off = start + m.start()
            line, col = text.index.line_col(off)
            out.append(Mention(m.group(2), line, col, off, "store"))
    return out
