"""Field accesses of one function body: every `base->field`, what the code does with it, and
which locals are a parameter under another type (`FooObject *self = (FooObject *)op;`).

Read from the comment- and string-free text with the call sites already found, so that an
access inside `Py_SETREF(...)`, `__atomic_load_n(...)` or `free(...)` is classified by the
call it sits in.
"""

from __future__ import annotations

import bisect
import re

from gilaudit.frontends.c.cursors import Text
from gilaudit.frontends.c.facts import Access, CallSite, Var

__all__ = ["aliases_of", "field_accesses", "lvalue_calls"]

_ARROW = re.compile(
    r"(?:\(\s*\(\s*(?:const\s+)?(?:struct\s+)?[A-Za-z_]\w*\s*\*\s*\)\s*([A-Za-z_]\w*)\s*\)"
    r"|\b([A-Za-z_]\w*))\s*->\s*([A-Za-z_]\w*)"
)
# What follows the field: member or index chains, then an operator.
_MEMBER = re.compile(r"\s*\.\s*([A-Za-z_]\w*)")
_TAIL = re.compile(r"((?:\s*(?:\.\s*[A-Za-z_]\w*|\[[^\[\]]*\]))*)\s*"
                   r"(\+\+|--|[-+*/%&|^]=|<<=|>>=|=(?!=)|\()?")
_LAST_MEMBER = re.compile(r"\.\s*([A-Za-z_]\w*)\s*$")
# A member of what a pointer field points to (`self->parser->status_code`), and what follows
# it: an assignment or a call makes it no plain read of one member.
_POINTEE_MEMBER = re.compile(r"\s*->\s*([A-Za-z_]\w*)((?:\s*(?:\.\s*[A-Za-z_]\w*|\[[^\[\]]*\]|"
                             r"->\s*[A-Za-z_]\w*))*)\s*(\+\+|--|[-+*/%&|^]=|<<=|>>=|=(?!=)|\()?")
_READ_ONLY_MEMBERS = frozenset({
    "size", "empty", "length", "begin", "end", "cbegin", "cend", "find", "count", "at", "get",
    "c_str", "data", "load", "front", "back", "capacity", "contains", "str",
    # std::error_code, std::optional, std::exception and the other const accessors of the
    # standard library (review 17: couchbase's `ec.value()` was taken for a write of `ec`)
    "value", "value_or", "has_value", "message", "category", "what", "rbegin", "rend",
    "crbegin", "crend", "max_size", "lower_bound", "upper_bound", "equal_range", "use_count",
    "substr", "compare", "starts_with", "ends_with",
})
_REPLACE = frozenset({"Py_SETREF", "Py_XSETREF", "Py_CLEAR"})
_LEND = frozenset({"Py_NewRef", "Py_XNewRef", "Py_INCREF", "Py_XINCREF"})
_FREE = frozenset({"free", "PyMem_Free", "PyMem_RawFree", "PyObject_Free", "PyMem_Del",
                   "PyObject_Del", "delete", "realloc", "PyMem_Realloc", "PyMem_RawRealloc",
                   "PyObject_Realloc", "PyMem_Resize"})
_COPIES = frozenset({"memcpy", "memmove", "memset", "strcpy", "strncpy", "strcat", "strncat",
                     "bzero"})
_ATOMIC = re.compile(r"^(?:__atomic_\w+|__sync_\w+|_Py_atomic_\w+|atomic_\w+|FT_ATOMIC_\w+|"
                     r"_InterlockedExchange\w*|Interlocked\w+|std::atomic\w*)$")
# Calls that read what they are given (or only count references): passing a field is a read.
_READS = re.compile(
    r"^(?:Py_(?:X?DECREF|TYPE|SIZE|REFCNT|IS_TYPE|Is|IsNone|VISIT)|Py\w+_Check\w*|"
    r"Py\w+_(?:GET_SIZE|Size|Length|AsUTF8\w*|AS_STRING|AsString\w*|AsLong\w*|AsDouble|"
    r"AsSsize_t|GET_ITEM|GetItem\w*|Contains|Repr|Str|Hash)|PyObject_(?:Repr|Str|Hash|"
    r"RichCompare\w*|IsTrue|Length|Size|GetAttr\w*|HasAttr\w*|Call\w*|Vectorcall\w*)|"
    r"PyUnicode_\w+|PyBytes_FromStringAndSize|PyLong_From\w+|PyFloat_From\w+|PyBool_From\w+|"
    r"Py_BuildValue|PyErr_\w+|Py_VISIT|memcmp|strlen|strcmp|strncmp|printf|fprintf|snprintf|"
    r"sprintf|assert|sizeof|memchr|strchr|_PyArg_\w+|PyArg_\w+)$")
_ALIAS = re.compile(
    r"\b([A-Za-z_]\w*)\s*=\s*(?:\(\s*(?:const\s+)?(?:struct\s+)?([A-Za-z_]\w*)\s*\*\s*\)"
    r"|(?:static_cast|reinterpret_cast)\s*<\s*(?:const\s+)?([A-Za-z_]\w*)\s*\*\s*>"
    r"|([A-Za-z_]\w*(?:CAST|Cast|cast)\w*))\s*\(?\s*([A-Za-z_]\w*)\s*\)?\s*;"
)


def _enclosing(calls: list[CallSite], starts: list[int], offset: int) -> CallSite | None:
    """The innermost call whose argument list contains ``offset`` (calls sorted by offset:
    walking back from it, the first that is still open is the innermost)."""
    for i in range(bisect.bisect_left(starts, offset) - 1, -1, -1):
        if calls[i].end > offset:
            return calls[i]
    return None


_NAME = re.compile(r"[A-Za-z_]\w*")
# `*p` read or written whole; one pattern for every function (the names are filtered after):
# compiling one per function's pointer parameters cost more than the matching.
_DEREF = re.compile(r"(?:(?<=[=(,;{}!&|?:])|(?<=return)|(?<=^))\s*\*\s*([A-Za-z_]\w*)\b"
                    r"(?!\s*(?:->|\[))", re.M)
# A number or truth value stored (a flag), or NULL (objstate lets that pass only where
# nothing uses the field: a reader may test it and then use it).
_CONSTANT = re.compile(r"\s*(-?\d+|true|false|TRUE|FALSE|NULL|nullptr)\s*;")
# The value stored is what a call returns, through a cast or not: `= (FILE *)fopen(...)`
_CALL_STORED = re.compile(r"\s*(?:\(\s*[\w\s*]+\)\s*)?[A-Za-z_][\w:]*\s*\(")
# NULL, or a library's name for a null or failed handle (ODBC's `SQL_NULL_HANDLE`, POSIX's
# `SEM_FAILED` and `MAP_FAILED`, Windows' `INVALID_HANDLE_VALUE`, sabctools'
# `SABCTOOLS_INVALID_HANDLE`)
_SENTINEL = (r"(?:NULL|nullptr|[A-Z][A-Z0-9_]*_(?:NULL|FAILED)[A-Z0-9_]*"
             r"|(?:[A-Z][A-Z0-9]*_)*INVALID_[A-Z_]+)")
_NULL_AFTER = re.compile(r"\s*[!=]=\s*(?:" + _SENTINEL + r"|\(\s*void\s*\*\s*\)\s*0)\b")
_NULL_BEFORE = re.compile(_SENTINEL + r"\s*[!=]=\s*$")
# A read that is all of a condition, or one operand of `&&`/`||` in it, or compared there with
# a constant or a name: `if (b->f)`, `b->f && x`, `if (b->closed == 1)`.
_COND_BEFORE = re.compile(r"(?:\b(?:if|while)\s*\(|&&|\|\||!)\s*\(*\s*$")
_COND_AFTER = re.compile(
    r"\s*\)*\s*(?:\)|&&|\|\||\?|((?:[=!]=|[<>]=?)\s*-?[\w.]+\s*(?:\)|&&|\|\|)))")
_SIZE_MACRO = re.compile(r"\b(Py_SIZE|Py_SET_SIZE)\s*\(\s*(?:\(\s*[A-Za-z_]\w*\s*\*\s*\)\s*)?"
                         r"([A-Za-z_]\w*)\s*[,)]")


def field_accesses(text: Text, calls: list[CallSite], start: int, end: int,
                   implicit: list[tuple[str, int]] | None = None,
                   pointers: frozenset[str] = frozenset(), *, cxx: bool = True) -> list[Access]:
    """``base->field`` accesses, and the members a C++ member function names through its
    implicit `this` (``implicit``: name and offset), as accesses of `this`; ``*p`` for the
    pointer parameters ``pointers``, as accesses of field ``*`` (a helper handed `&self->f`:
    `wrapt_acquire_field(self, &self->wrapped)` reads `*field` under its lock)."""
    bare = text.bare
    out: list[Access] = []
    starts = [c.offset for c in calls]
    found: list[tuple[str, str, re.Match[str]]] = [
        (m.group(1) or m.group(2), m.group(3), m) for m in _ARROW.finditer(bare, start, end)]
    if pointers:
        found += [(m.group(1), "*", m) for m in _DEREF.finditer(bare, start, end)
                  if m.group(1) in pointers]
    for name, at in implicit or ():
        m = _NAME.match(bare, at)
        if m is not None and m.group() == name:
            found.append(("this", name, m))
    for m in _SIZE_MACRO.finditer(bare, start, end):
        # Py_SIZE(o) / Py_SET_SIZE(o, n): the length field of a variable-size object
        found.append((m.group(2), "ob_size", m))
    found.sort(key=lambda f: f[2].start())
    for base, field, m in found:
        kind = "read"
        via = ""
        if field == "ob_size" and m.group().startswith("Py_S"):
            line, col = text.index.line_col(m.start())
            kind = "write" if m.group(1) == "Py_SET_SIZE" else "read"
            out.append(Access(base, field, kind, m.start(), line, col, m.group(1)))
            continue
        tail = _TAIL.match(bare, m.end(), end)
        chain, op = (tail.group(1), tail.group(2)) if tail else ("", None)
        if op in ("++", "--") or (op and op.endswith("=") and op != "="):
            kind = "rmw"
        elif op == "=":
            kind = "elem" if chain.strip() else "write"
        elif op == "(" and cxx:
            member = _LAST_MEMBER.search(chain)
            if member and member.group(1) not in _READ_ONLY_MEMBERS:
                kind, via = "elem", member.group(1)  # a C++ member call that may mutate
        # In C, `b->fields[i].pack(...)` calls a function pointer the struct holds: a read.
        before = bare[max(start, m.start() - 3):m.start()]
        if kind == "read" and before.rstrip().endswith(("++", "--")):
            kind = "rmw"
        elif kind == "read" and not chain.strip() and (
                (before.rstrip().endswith("!") and not bare.startswith("=", m.end()))
                or _NULL_AFTER.match(bare, m.end())
                or _NULL_BEFORE.search(bare, max(start, m.start() - 16), m.start())):
            kind = "test"  # compared with NULL only: the pointer is not used
        call = _enclosing(calls, starts, m.start())
        if call is not None:
            kind, via = _in_call(call, kind, via, bare, m, before)
        line, col = text.index.line_col(m.start())
        constant = _CONSTANT.match(bare, tail.end(), end) if kind == "write" and tail else None
        after = _COND_AFTER.match(bare, m.end()) if kind == "read" and not chain.strip() \
            and _COND_BEFORE.search(bare, max(start, m.start() - 12), m.start()) else None
        cond = "" if after is None else ("compare" if after.group(1) else "truth")
        # a member of an embedded struct, not a C++ member function called on the field
        member = _MEMBER.match(chain) if op != "(" else None
        name = member.group(1) if member else ""
        if not chain.strip() and op is None and kind == "read":
            # ... or one of what the field points to, read and not written or called
            pointee = _POINTEE_MEMBER.match(bare, m.end(), end)
            if pointee is not None and not pointee.group(2).strip() and not pointee.group(3) \
                    and not before.rstrip().endswith(("++", "--", "&")):
                name = pointee.group(1)
        stores_call = kind == "write" and tail is not None and bool(
            _CALL_STORED.match(bare, tail.end(), end))
        out.append(Access(base, field, kind, m.start(), line, col, via,
                          constant.group(1) if constant else "", cond, name, stores_call))
    return out


def _in_call(call: CallSite, kind: str, via: str, bare: str, m: re.Match[str],
             before: str) -> tuple[str, str]:
    name = call.name
    if _ATOMIC.match(name):
        return "atomic", name
    if kind != "read":
        return kind, via
    first = bool(call.args) and _is_whole(call.args[0], m.group(0))
    if name in _REPLACE and first:
        return "replace", name
    if name in _LEND and first:
        return "lend", name
    if name in _FREE and first:
        return "free", name
    position = next((i for i, a in enumerate(call.args) if _is_whole(a, m.group(0))), -1)
    if position < 0:
        return kind, via
    if name in _COPIES:
        # memcpy(dst, src, n): the destination is written through, the source only read.
        return ("elem" if position == 0 else "read"), name
    taken = before.rstrip().rstrip("(").rstrip()  # `&self->f` and `&(self->f)`
    if taken.endswith("&") and not taken.endswith("&&"):
        return ("read", name) if _READS.match(name) else ("addr", name)
    if name.startswith(("Py", "_Py")) or _READS.match(name):
        return "read", name
    return "arg", name


_LEADING_CAST = re.compile(r"^\(\s*(?:const)?(?:struct)?[A-Za-z_]\w*\**\)")


def _is_whole(arg: str, access: str) -> bool:
    """Whether a call argument is the access itself (maybe cast or address-taken)."""
    a = "".join(arg.split())
    target = "".join(access.split())
    for _ in range(3):
        a = _LEADING_CAST.sub("", a).lstrip("&")
        if a.startswith("(") and a.endswith(")"):
            a = a[1:-1]
    return a == target


_DECLARED = re.compile(r"[;{}]\s*(?:const\s+)?(?:struct\s+)?([A-Za-z_]\w*)\s*\*\s*([A-Za-z_]\w*)"
                       r"\s*[;=,]")
_PLAIN_TYPES = frozenset({"PyObject", "char", "void", "int", "long", "double", "float", "short",
                          "unsigned", "signed", "size_t", "Py_ssize_t", "PyTypeObject",
                          "return", "else"})
DECLARED = -3  # an alias entry for a local declared as a pointer to a struct of the project


def aliases_of(text: Text, params: list[Var], start: int, end: int) -> list[tuple[str, int, str]]:
    """Locals that hold a parameter cast to another type, and (index ``DECLARED``) locals
    declared as pointers to a named struct (`bitarrayobject *a;`, filled by PyArg_Parse*):
    a module function's handle on an instance it was given, even where the function body
    was not walked."""
    by_name = {p.name: p.index for p in params}
    out: list[tuple[str, int, str]] = []
    for m in _DECLARED.finditer(text.bare, start, end):
        if m.group(1) not in _PLAIN_TYPES:
            out.append((m.group(2), DECLARED, m.group(1)))
    for m in _ALIAS.finditer(text.bare, start, end):
        source = m.group(5)
        if source in by_name and m.group(1) != source:
            cast = m.group(2) or m.group(3) or ""
            out.append((m.group(1), by_name[source], cast))
    return out


_ASSIGNED_AFTER = re.compile(r"(?:\s*\[[^\[\]]*\])*\s*(?:=(?!=)|\+\+|--|[-+*/%&|^]=)")


def lvalue_calls(text: Text, calls: list[CallSite]) -> list[int]:
    """Offsets of calls written to (`BUF(self)[i] = x`, `SIZE(self)++`): through a project
    macro that expands to a field, that is a write of the field."""
    return [c.offset for c in calls if _ASSIGNED_AFTER.match(text.bare, c.end)]
