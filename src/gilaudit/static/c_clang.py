"""The C/C++ front end: one translation unit in, FileFacts out.

libclang parses the file exactly as a free-threaded build compiles it (``Py_GIL_DISABLED``
defined, the compatibility prelude included first). From the AST we take structure: function
extents, parameters, local and global declarations, ``if`` statements, jumps and loops. From the
text, with the preprocessor's skipped ranges, comments and strings blanked, we take call sites,
including those of macros that leave no call behind in the AST.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gilaudit.static import textscan
from gilaudit.static.facts import (
    Assign,
    CallSite,
    Diag,
    FileFacts,
    FunctionFacts,
    IfGuard,
    Jump,
    Loop,
    Mention,
    Region,
    SlotEntry,
    Suppression,
    Var,
)
from gilaudit.static.flags import detect_toolchain
from gilaudit.static.modtext import module_facts

__all__ = ["ParseJob", "empty_facts", "parse_translation_unit"]

_KEEP_GOING = 0x200  # CXTranslationUnit_KeepGoing: do not stop at the first fatal error
_BINARY_SNIFF = 65536
# Errors that are the free-threaded build's answer to code a rule already reports.
_REPORTED_BY_RULES = re.compile(
    r"no member named '(?:ob_refcnt|ob_mutex)'|undeclared identifier '_py_cs2?'")

# Lock and region markers that have no parentheses.
_BARE_MACROS = re.compile(
    r"\b(Py_BEGIN_ALLOW_THREADS|Py_END_ALLOW_THREADS|Py_BLOCK_THREADS|Py_UNBLOCK_THREADS)\b"
)
_CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_ASSIGN = re.compile(r"(?<![\w.>\]])([A-Za-z_]\w*)\s*=(?!=)")
_CAST_PREFIX = re.compile(r"^\s*(?:\(\s*(?:const\s+)?(?:struct\s+)?[A-Za-z_]\w*[\s\*]*\)\s*)+")
_CALLEE = re.compile(r"^([A-Za-z_]\w*)\s*\(")
_FIELD = re.compile(r"\b([A-Za-z_]\w*)\s*->\s*([A-Za-z_]\w*)")
_FIELD_ASSIGN = re.compile(r"\b([A-Za-z_]\w*)\s*->\s*([A-Za-z_]\w*)\s*=(?!=)")
_MEMBER_TOKENS = re.compile(r"(?:->|\.)\s*(ob_refcnt)\b|\b(ob_mutex)\b")
_REFCNT = re.compile(r"\bPy_REFCNT\s*\(")
_LEFT_ONE = re.compile(r"\b1\s*==\s*$")
_RIGHT_CMP = re.compile(r"\s*(==\s*1|<=\s*1|<\s*2)\b")
_OBREFCNT_CMP = re.compile(r"->\s*ob_refcnt\s*(==\s*1|<=\s*1|<\s*2)\b")
_NULL_TEST = re.compile(
    r"^\(?\s*(?:!\s*([A-Za-z_]\w*)|([A-Za-z_]\w*)\s*==\s*(?:NULL|0|nullptr)"
    r"|(?:NULL|0|nullptr)\s*==\s*([A-Za-z_]\w*))\s*\)?$"
)
_SET_TEST = re.compile(
    r"^\(?\s*(?:([A-Za-z_]\w*)|([A-Za-z_]\w*)\s*!=\s*(?:NULL|0|nullptr))\s*\)?$"
)
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
_ALLOW_PAIRS = {
    "Py_BEGIN_ALLOW_THREADS": "Py_END_ALLOW_THREADS",
    "Py_UNBLOCK_THREADS": "Py_BLOCK_THREADS",
    "PyEval_SaveThread": "PyEval_RestoreThread",
}
_LOCK_PAIRS = {
    "PyMutex_Lock": "PyMutex_Unlock",
    "PyThread_acquire_lock": "PyThread_release_lock",
    "PyThread_acquire_lock_timed": "PyThread_release_lock",
    "pthread_mutex_lock": "pthread_mutex_unlock",
    "EnterCriticalSection": "LeaveCriticalSection",
    "AcquireSRWLockExclusive": "ReleaseSRWLockExclusive",
    "mtx_lock": "mtx_unlock",
}
_LOCK_ENDS = frozenset(_LOCK_PAIRS.values())
# Project lock wrappers (`MUTEX_LOCK(&m)`, `LOCK()`, `cache_lock(st)`): paired by name shape
# and argument, since what they expand to is not visible in the text.
_WRAPPED_LOCK = re.compile(r"^(?:\w+_)?(?:LOCK|lock|Lock|ACQUIRE|acquire|Acquire)(?:_\w+)?$")
_WRAPPED_UNLOCK = re.compile(
    r"^(?:\w+_)?(?:UNLOCK|unlock|Unlock|RELEASE|release|Release)(?:_\w+)?$")
_ATOMIC = re.compile(r"\b(_Atomic|atomic_\w+|std::atomic|atomic<)")
_TLS = re.compile(r"\b(_Thread_local|thread_local|__thread|__declspec\s*\(\s*thread\s*\))")
_PYOBJ_TYPE = re.compile(r"\b(PyObject|Py\w*Object|PyTypeObject)\s*\*")


@dataclass(frozen=True, kw_only=True, slots=True)
class ParseJob:
    abspath: str
    rel: str
    root: str
    language: str  # "c" | "c++"
    args: tuple[str, ...]
    # Find top-level declarations by asking libclang at the file's own identifiers instead of
    # enumerating every declaration of Python.h and the system headers (the slow part of small
    # files). Off only to cross-check the two in tests.
    located_toplevel: bool = True
    # Project files with code that this unit, and no other, analyses in its context.
    included_code: tuple[str, ...] = ()
    limited_api: bool = False  # the file or the build defines Py_LIMITED_API


def empty_facts(rel: str, diags: list[Diag], lines: int = 0) -> FileFacts:
    return FileFacts(path=rel, lines=lines, functions=(), globals=(), module_defs=(),
                     slot_arrays=(), types=(), method_tables=(), address_taken=(), inactive=(),
                     members=(), guards=(), suppressions=(), diagnostics=tuple(diags), deps=())


# --- libclang access -------------------------------------------------------------------------


@dataclass(slots=True)
class _Clang:
    """The few libclang entry points we call directly, bound once per worker process."""

    ci: Any
    index: Any
    skipped: Callable[..., Any]
    dispose: Callable[..., Any]


def _load_clang() -> _Clang:
    import clang.cindex as ci  # noqa: PLC0415 - heavy; only workers that parse need it

    lib = ci.conf.lib

    class _RangeList(ctypes.Structure):
        _fields_ = [("count", ctypes.c_uint), ("ranges", ctypes.POINTER(ci.SourceRange))]

    skipped = lib.clang_getSkippedRanges
    skipped.restype = ctypes.POINTER(_RangeList)
    skipped.argtypes = [ci.TranslationUnit, ctypes.c_void_p]
    dispose = lib.clang_disposeSourceRangeList
    dispose.argtypes = [ctypes.POINTER(_RangeList)]
    dispose.restype = None
    return _Clang(ci=ci, index=ci.Index.create(), skipped=skipped, dispose=dispose)


class _ClangHolder:
    """One libclang binding per process, created lazily (workers are separate processes)."""

    def __init__(self) -> None:
        self._clang: _Clang | None = None

    def get(self) -> _Clang:
        if self._clang is None:
            self._clang = _load_clang()
        return self._clang


_HOLDER = _ClangHolder()


def _skipped_ranges(clang: _Clang, tu: Any, path: str) -> list[tuple[int, int]]:
    file_obj = clang.ci.File.from_name(tu, path)
    ptr = clang.skipped(tu, file_obj)
    out: list[tuple[int, int]] = []
    if not ptr:
        return out
    try:
        lst = ptr.contents
        for i in range(lst.count):
            rng = lst.ranges[i]
            out.append((rng.start.offset, rng.end.offset))
    finally:
        clang.dispose(ptr)
    return out


# --- the parse -------------------------------------------------------------------------------


def parse_translation_unit(job: ParseJob) -> FileFacts:
    """Parse one file into facts. Never raises for bad input: problems become Diag entries."""
    diags: list[Diag] = []
    try:
        data = Path(job.abspath).read_bytes()
    except OSError as exc:
        return empty_facts(job.rel, [Diag("unreadable", f"cannot read: {exc.strerror or exc}",
                                          job.rel)])
    if b"\0" in data[:_BINARY_SNIFF]:
        return empty_facts(job.rel, [Diag("binary", "contains NUL bytes: not C/C++ source; "
                                                    "skipped", job.rel)])
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        diags.append(Diag("encoding", f"not valid UTF-8 (byte {exc.start}); analysed as Latin-1",
                          job.rel))
    raw = data.decode("latin-1")  # one char per byte: offsets match libclang's
    clang = _HOLDER.get()
    ci = clang.ci
    opts = ci.TranslationUnit.PARSE_DETAILED_PROCESSING_RECORD | _KEEP_GOING
    try:
        tu = clang.index.parse(job.abspath, args=list(job.args), options=opts)
        if _pch_rejected(tu):
            raise ci.TranslationUnitLoadError("precompiled prelude rejected")
    except ci.TranslationUnitLoadError as exc:
        # A precompiled prelude that no longer fits (headers touched, another libclang) only
        # costs speed: parse again with the plain prelude.
        plain = _without_pch(job.args)
        try:
            if plain == job.args:
                raise
            tu = clang.index.parse(job.abspath, args=list(plain), options=opts)
        except ci.TranslationUnitLoadError:
            diags.append(Diag("parse-failed", f"libclang could not parse this file: {exc}",
                              job.rel))
            return empty_facts(job.rel, diags, raw.count("\n") + 1)
    diags.extend(_clang_diagnostics(tu, job))
    skipped = _skipped_ranges(clang, tu, job.abspath)
    try:
        return _extract(tu, ci, job, raw, skipped, diags)
    except (RecursionError, ValueError, IndexError) as exc:
        # A construct our extraction did not expect: keep what the file-level pass can give.
        diags.append(Diag("internal-error", f"fact extraction failed: {type(exc).__name__}: "
                                            f"{exc}", job.rel))
        return empty_facts(job.rel, diags, raw.count("\n") + 1)


def _expanded_in(loc: Any, abspath: str) -> bool:
    """Whether a location's expansion point (where a macro was used) lies in ``abspath``."""
    f = loc.file
    return f is not None and f.name == abspath


def _pch_rejected(tu: Any) -> bool:
    return any("precompiled header" in d.spelling or "PCH file" in d.spelling
               for d in tu.diagnostics if d.severity >= 3)


def _without_pch(args: tuple[str, ...]) -> tuple[str, ...]:
    out = list(args)
    if "-include-pch" in out:
        i = out.index("-include-pch")
        out[i:i + 2] = ["-include", detect_toolchain().prelude]
    return tuple(out)


def _clang_diagnostics(tu: Any, job: ParseJob) -> list[Diag]:
    out: list[Diag] = []
    errors: list[str] = []
    missing: list[str] = []
    first_line = 0
    for d in tu.diagnostics:
        if d.severity < 3:
            continue
        msg = d.spelling
        loc = d.location
        where = loc.file.name if loc.file else job.rel
        if "file not found" in msg:
            header = msg.split("'")[1] if "'" in msg else msg
            missing.append(f"{header!r} (from {_short(where, job.root)}:{loc.line})")
            continue
        if _REPORTED_BY_RULES.search(msg):
            continue  # FT031/FT036 report these, with the fix
        if not errors:
            first_line = loc.line if loc.file and loc.file.name == job.abspath else 0
        errors.append(f"{_short(where, job.root)}:{loc.line}: {msg}")
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4
                                          else "")
        out.append(Diag("missing-header",
                        f"{len(missing)} header(s) not found: {shown}; add their directories "
                        "with --include or [tool.gilaudit] include-dirs; analysis went on "
                        "without them", job.rel))
    if errors:
        shown = "; ".join(errors[:3])
        more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
        out.append(Diag("parse-error", f"{len(errors)} parse error(s), analysis is partial: "
                                       f"{shown}{more}", job.rel, first_line))
    return out


def _short(path: str, root: str) -> str:
    return path[len(root) + 1:] if path.startswith(root + "/") else path


# --- extraction ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Text:
    raw: str
    code: str  # comments and skipped code blanked
    bare: str  # ... and string literals blanked
    index: textscan.LineIndex


def _extract(tu: Any, ci: Any, job: ParseJob, raw: str, skipped: list[tuple[int, int]],
             diags: list[Diag]) -> FileFacts:
    main = _file_facts(tu, ci, job, job.abspath, job.rel, raw, skipped, diags, seed=())
    if job.language != "c":
        return main
    included: list[FileFacts] = []
    seed = tuple(v for v in main.globals if v.storage != "function-static")
    for rel, abspath in _included_code(tu, job):
        try:
            data = Path(abspath).read_bytes()
        except OSError:
            continue
        if b"\0" in data[:_BINARY_SNIFF]:
            continue
        raw_inc = data.decode("latin-1")
        facts = _file_facts(tu, ci, job, abspath, rel, raw_inc,
                            _skipped_ranges(_HOLDER.get(), tu, abspath), [], seed=seed)
        if facts.functions:
            included.append(replace(facts, included_from=job.rel, deps=()))
    return replace(main, included=tuple(included))


def _included_code(tu: Any, job: ParseJob) -> list[tuple[str, str]]:
    """(relative, absolute path) of the included code files the scan gave this unit (it
    already chose those that define functions), as this unit really includes them."""
    root = job.root.rstrip("/") + "/"
    wanted = set(job.included_code)
    out: dict[str, str] = {}
    for inc in tu.get_includes() if wanted else ():
        name = inc.include.name if inc.include else ""
        if name.startswith(root) and name[len(root):] in wanted:
            out.setdefault(name[len(root):], name)
    return sorted(out.items())


def _file_facts(tu: Any, ci: Any, job: ParseJob, abspath: str, rel: str, raw: str,
                skipped: list[tuple[int, int]], diags: list[Diag],
                seed: tuple[Var, ...]) -> FileFacts:
    """Facts of one file of the unit: the main file, or a file it includes (``seed`` holds the
    includer's globals, visible there)."""
    is_main = abspath == job.abspath
    code, bare = textscan.strip_comments_and_strings(textscan.blank_ranges(raw, skipped))
    text = _Text(raw=raw, code=code, bare=bare, index=textscan.LineIndex.of(raw))
    kinds = ci.CursorKind
    functions: list[FunctionFacts] = []
    globals_: list[Var] = list(seed)
    func_kinds = {kinds.FUNCTION_DECL, kinds.CXX_METHOD, kinds.CONSTRUCTOR, kinds.DESTRUCTOR,
                  kinds.FUNCTION_TEMPLATE}
    scope_kinds = {kinds.NAMESPACE, kinds.CLASS_DECL, kinds.STRUCT_DECL, kinds.LINKAGE_SPEC,
                   kinds.UNEXPOSED_DECL, kinds.CLASS_TEMPLATE}

    from_main = ci.conf.lib.clang_Location_isFromMainFile
    from_main.argtypes = [ci.SourceLocation]
    from_main.restype = ctypes.c_int

    def shared_pattern() -> re.Pattern[str] | None:
        # Globals declared so far (C needs a declaration before use).
        if len(globals_) != pattern_cache[0]:
            names = [re.escape(v.name) for v in globals_ if not v.is_const]
            pattern_cache[0] = len(globals_)
            pattern_cache[1] = re.compile(r"\b(?:" + "|".join(names) + r")\b") if names else None
        found: re.Pattern[str] | None = pattern_cache[1]
        return found

    pattern_cache: list[Any] = [-1, None]

    get_location = ci.conf.lib.clang_getCursorLocation
    tu_ref = tu
    # Declarations a macro expands to (PYBIND11_MODULE's functions, say) are spelled in the
    # macro's header but expanded here; in C++ they are the module, so they count as this file's.
    cxx = job.language == "c++"

    def main_children(cursor: Any) -> list[Any]:
        # Most top-level declarations come from Python.h and system headers; checking the
        # location natively, before any Python object is built for them, keeps this cheap.
        kept: list[Any] = []

        def visitor(child: Any, _parent: Any, _data: Any) -> int:
            loc = get_location(child)
            if from_main(loc) or (cxx and _expanded_in(loc, abspath)):
                child._tu = tu_ref
                kept.append(child)
            return 1  # CXChildVisit_Continue

        ci.conf.lib.clang_visitChildren(cursor, ci.callbacks["cursor_visit"](visitor), None)
        return kept

    located = None
    if (job.located_toplevel or not is_main) and job.language == "c":
        located = _located_toplevel(tu, ci, text, abspath)
    if located is None and not is_main:
        located = _children_in_file(tu, ci, abspath)

    judge_pybind11 = (job.language == "c++" and "PYBIND11_MODULE" in text.bare and not any(
        d.kind == "missing-header" and "pybind11" in d.message for d in diags))
    bindings: list[tuple[str, int, int, str]] = []

    def visit_scope(cursor: Any) -> None:
        children = located if located is not None and cursor == tu.cursor else \
            main_children(cursor)
        for c in children:
            kind = c.kind
            if kind in func_kinds:
                if judge_pybind11 and c.spelling.startswith("PyInit_") and c.is_definition():
                    loc = c.location
                    bindings.append((c.spelling.removeprefix("PyInit_"), loc.line, loc.column,
                                     _pybind11_gil_tag(c)))
                if c.is_definition():
                    functions.append(_function(c, ci, text, globals_, shared_pattern()))
            elif kind == kinds.VAR_DECL:
                globals_.append(_var(c, text, "static-global" if _is_static(c, ci) else "global"))
            elif kind in scope_kinds:
                visit_scope(c)

    visit_scope(tu.cursor)
    # Function-level statics are shared state too; matchers treat them like globals.
    statics = [v for f in functions for v in f.locals if v.storage == "function-static"]
    functions = [_with_global_writes(f, text, globals_) for f in functions]
    defined = {f.name for f in functions}
    mods = module_facts(text.code, text.bare, text.index)
    inactive = _inactive_mentions(raw, skipped, text.index)
    members = _member_mentions(text)
    sup = [
        Suppression(*text.index.line_col(off),
                    tuple(i.strip().upper() for i in ids.split(",") if i.strip())
                    if ids is not None else (), comment)
        for off, ids, comment in textscan.suppressions(raw)
    ]
    guard_steps = textscan.if_conditions(raw, text.index)
    wanted_lines = {s.line for _, entries in mods.slot_arrays for s in entries}
    wanted_lines |= {c.line for f in functions for c in f.calls
                     if c.name == "PyUnstable_Module_SetGIL"}
    guards = []
    for line in sorted(wanted_lines):
        conds: tuple[str, ...] = ()
        for start, stack in guard_steps:
            if start > line:
                break
            conds = stack
        guards.append((line, conds))
    slot_arrays = tuple(
        (name, tuple(SlotEntry(e.slot, e.value, e.line, e.col, dict(guards).get(e.line, ())
                               ) for e in entries))
        for name, entries in mods.slot_arrays
    )
    address_taken = _address_taken(text.bare, defined, functions)
    return FileFacts(
        path=rel,
        lines=text.index.count,
        functions=tuple(functions),
        globals=tuple(globals_) + tuple(statics),
        module_defs=mods.module_defs,
        slot_arrays=slot_arrays,
        types=mods.types,
        method_tables=mods.method_tables,
        address_taken=tuple(sorted(address_taken)),
        inactive=tuple(inactive),
        members=tuple(members),
        guards=tuple(guards),
        suppressions=tuple(sup),
        diagnostics=tuple(diags),
        deps=tuple(_deps(tu, job)) if is_main else (),
        limited_api=job.limited_api,
        bindings=tuple(bindings),
    )


def _pybind11_gil_tag(init: Any) -> str:
    """What the expansion of PYBIND11_MODULE passes for the GIL: the tag's *type*, so an alias,
    a variable or a macro is judged as the compiler sees it. ``mod_gil_used()`` is spelled as a
    `mod_gil_not_used(false)` in pybind11 3, hence the explicit name check first."""
    seen_not_used = False
    stack = list(init.get_children())
    while stack:
        c = stack.pop()
        if c.spelling == "mod_gil_used":
            return "used"
        if "mod_gil_not_used" in c.type.spelling:
            seen_not_used = True
            if any(t.spelling == "false" for t in c.get_tokens()):
                return "used"
        stack.extend(c.get_children())
    return "not-used" if seen_not_used else "none"


def _children_in_file(tu: Any, ci: Any, abspath: str) -> list[Any]:
    """Top-level cursors located in one (included) file: the slow, always-right way."""
    kept: list[Any] = []
    for c in tu.cursor.get_children():
        f = c.location.file
        if f is not None and f.name == abspath:
            kept.append(c)
    return kept


_TOKEN_OR_BRACE = re.compile(r"[{};]|[A-Za-z_]\w*")
# Macros that open top-level declarations without declaring anything themselves.
_DECL_MACROS = frozenset({
    "PyDoc_STRVAR", "PyDoc_STR", "PyMODINIT_FUNC", "Py_LOCAL_INLINE", "Py_LOCAL", "PyAPI_FUNC",
    "PyAPI_DATA", "Py_EXPORTED_SYMBOL", "Py_ALWAYS_INLINE", "Py_NO_INLINE", "Py_UNUSED",
    "Py_LOCAL_SYMBOL", "Py_IMPORTED_SYMBOL", "PyObject_HEAD", "PyObject_VAR_HEAD",
})


def _located_toplevel(tu: Any, ci: Any, text: _Text, path: str) -> list[Any] | None:
    """Top-level declarations of the main file, found by asking for the cursor at each
    identifier outside braces and walking up to the declaration that owns it.

    Returns None when a statement at file scope starts with a macro we do not know: it may
    expand to declarations whose names are not spelled in the file, so only a full enumeration
    is safe there.
    """
    lib = ci.conf.lib
    file_obj = ci.File.from_name(tu, path)
    tu_kind = ci.CursorKind.TRANSLATION_UNIT
    macro_kind = ci.CursorKind.MACRO_INSTANTIATION
    found: dict[int, Any] = {}
    depth = 0
    statement_start = True
    for m in _TOKEN_OR_BRACE.finditer(text.bare):
        tok = m.group()
        if tok == "{":
            depth += 1
            continue
        if tok == "}":
            depth = max(0, depth - 1)
            statement_start = depth == 0
            continue
        if tok == ";":
            statement_start = statement_start or depth == 0
            continue
        if depth:
            continue
        first = statement_start
        statement_start = False
        loc = lib.clang_getLocationForOffset(tu, file_obj, m.start())
        cursor = ci.Cursor.from_location(tu, loc)
        if cursor is None:
            continue
        if cursor.kind == macro_kind:
            if first and cursor.spelling not in _DECL_MACROS:
                return None
            statement_start = first  # a leading attribute macro: the declaration follows
            continue
        for _ in range(8):
            parent = cursor.semantic_parent
            if parent is None:
                break
            if parent.kind == tu_kind:
                if cursor.kind.is_declaration():
                    found.setdefault(cursor.hash, cursor)
                break
            cursor = parent
    # Kept in source order, as an enumeration would give them.
    return sorted(found.values(), key=lambda c: c.extent.start.offset)


def _deps(tu: Any, job: ParseJob) -> list[tuple[str, str]]:
    root = job.root.rstrip("/") + "/"
    seen: dict[str, str] = {}
    for inc in tu.get_includes():
        name = inc.include.name if inc.include else ""
        if name.startswith(root) and name not in seen:
            try:
                seen[name] = hashlib.sha256(Path(name).read_bytes()).hexdigest()
            except OSError:
                seen[name] = ""
    return sorted((k[len(root):], v) for k, v in seen.items())


def _is_static(cursor: Any, ci: Any) -> bool:
    return bool(cursor.storage_class == ci.StorageClass.STATIC)


def _var(cursor: Any, text: _Text, storage: str, index: int = -1) -> Var:
    tp = cursor.type
    spelling = tp.spelling
    loc = cursor.location  # one object: each of its fields would otherwise re-query libclang
    shared = storage not in ("local", "param")
    const = False
    atomic = tls = False
    if shared:
        # Only shared variables are judged on qualifiers; locals need just name and type.
        const = bool(tp.is_const_qualified())
        if not const and "[" in spelling:
            # An array is constant when its elements are: `static const char *const names[]`.
            elem = tp.get_array_element_type()
            const = bool(elem.is_const_qualified()) if elem.spelling else False
        ext = cursor.extent
        start, end = ext.start.offset, ext.end.offset
        decl_text = text.bare[start:end] if 0 <= start < end else spelling
        atomic = bool(_ATOMIC.search(spelling) or _ATOMIC.search(decl_text))
        tls = bool(_TLS.search(decl_text)) or _tls_kind(cursor)
    return Var(
        name=cursor.spelling,
        type=spelling,
        line=loc.line,
        col=loc.column,
        storage=storage,
        is_const=const,
        is_atomic=atomic,
        is_tls=tls,
        is_pointer="*" in spelling,
        is_pyobject=bool(_PYOBJ_TYPE.search(spelling)),
        index=index,
    )


def _tls_kind(cursor: Any) -> bool:
    try:
        return bool(cursor.tls_kind.value != 0)
    except (AttributeError, ValueError):
        return False


def _function(cursor: Any, ci: Any, text: _Text, globals_: list[Var],
              shared_names: re.Pattern[str] | None) -> FunctionFacts:
    kinds = ci.CursorKind
    lib = ci.conf.lib
    ext = cursor.extent
    start, end = ext.start.offset, ext.end.offset
    params: list[Var] = []
    local_vars: list[Var] = []
    ifs: list[tuple[int, int, int, int, int, int]] = []  # if, cond start/end, then start/end, line
    jumps: list[Jump] = []
    loops: list[Loop] = []
    labels: list[Mention] = []
    k_parm, k_var, k_if = kinds.PARM_DECL.value, kinds.VAR_DECL.value, kinds.IF_STMT.value
    k_label, k_lambda = kinds.LABEL_STMT.value, kinds.LAMBDA_EXPR.value
    loop_kinds = {kinds.FOR_STMT.value: "for", kinds.WHILE_STMT.value: "while",
                  kinds.DO_STMT.value: "do", kinds.SWITCH_STMT.value: "switch",
                  kinds.CXX_FOR_RANGE_STMT.value: "for"}
    jump_kinds = {kinds.RETURN_STMT.value: "return", kinds.GOTO_STMT.value: "goto",
                  kinds.BREAK_STMT.value: "break", kinds.CONTINUE_STMT.value: "continue"}
    interesting = {k_parm, k_var, k_if, k_label, k_lambda, *loop_kinds, *jump_kinds}
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
                params.append(_var(child, text, "param", len(params)))
            return 1  # CXChildVisit_Continue
        if k == k_var:
            storage = "function-static" if _is_static(child, ci) else "local"
            local_vars.append(_var(child, text, storage))
        elif k == k_if:
            parts = list(child.get_children())
            if len(parts) >= 2:
                cond, then = parts[-2], parts[-1]
                if len(parts) >= 3:  # `if (c) a; else b;` or an init statement first
                    cond, then = parts[0], parts[1]
                ifs.append((child.extent.start.offset, cond.extent.start.offset,
                            cond.extent.end.offset, then.extent.start.offset,
                            then.extent.end.offset, child.location.line))
        elif k in jump_kinds:
            loc = child.location
            label = ""
            if jump_kinds[k] == "goto":
                for sub in child.get_children():
                    label = sub.spelling
            jumps.append(Jump(jump_kinds[k], child.extent.start.offset, loc.line, loc.column,
                              label))
        elif k in loop_kinds:
            loops.append(Loop(loop_kinds[k], child.extent.start.offset, child.extent.end.offset))
        elif k == k_label:
            loc = child.location
            labels.append(Mention(child.spelling, loc.line, loc.column, child.extent.start.offset))
        elif k == k_lambda:
            return 1  # a lambda body runs later, elsewhere: not this function's flow
        return 2

    if _needs_walk(text.bare[start:end], shared_names):
        lib.clang_visitChildren(cursor, ci.callbacks["cursor_visit"](visitor), None)
    else:
        for i, arg in enumerate(cursor.get_arguments()):
            arg._tu = tu
            params.append(_var(arg, text, "param", i))
    # The header `PyObject *f(PyObject *a)` is not a call of `f`: scan from the body's brace.
    name_at = cursor.location.offset
    brace = text.bare.find("{", name_at if start <= name_at < end else start, end)
    body_start = brace if brace >= 0 else start
    calls = _calls(text, body_start, end)
    assigns = _assigns(text, body_start, end)
    names_local = {v.name for v in params} | {v.name for v in local_vars}
    regions, unmatched = _regions(calls, text.bare)
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
        is_static=_is_static(cursor, ci),
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
    )


# Anything here in a body means the matchers need its declarations and statements.
_WALK_TRIGGERS = re.compile(
    r"\b(?:static|Py_BEGIN_CRITICAL_SECTION\w*|Py_END_CRITICAL_SECTION\w*|PyList_GetItem"
    r"|PyList_GET_ITEM|PyList_SET_ITEM|PyTuple_SET_ITEM|PyDict_GetItem\w*|PyDict_SetDefault"
    r"|PyDict_Next|PyCell_GET|PySequence_Fast\w*|PyWeakref_\w+)\b"
    # A field lent out (FT033) is judged by the return statement that follows it.
    r"|\bPy_X?(?:INCREF|NewRef)\s*\(\s*\w+\s*->"
)


def _needs_walk(body: str, shared_names: re.Pattern[str] | None) -> bool:
    if _WALK_TRIGGERS.search(body):
        return True
    return bool(shared_names is not None and shared_names.search(body))


def _calls(text: _Text, start: int, end: int) -> list[CallSite]:
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


def _rhs_callee(bare: str, pos: int, end: int) -> str:
    rest = bare[pos:min(end, pos + 200)]
    rest = _CAST_PREFIX.sub("", rest, count=1)
    m = _CALLEE.match(rest.lstrip())
    return m.group(1) if m else ""


def _assigns(text: _Text, start: int, end: int) -> list[Assign]:
    out = []
    for m in _ASSIGN.finditer(text.bare, start, end):
        prev = text.bare[max(start, m.start() - 2):m.start()].rstrip()
        if prev.endswith(("->", ".", "*")) and not prev.endswith("**"):
            if prev.endswith("*") and not prev.endswith(("->", ".")):
                pass  # `PyObject *x = ...` declares x: still an assignment to x
            else:
                continue
        out.append(Assign(m.group(1), m.start(), _rhs_callee(text.bare, m.end(), end)))
    return out


def _regions(calls: list[CallSite], bare: str) -> tuple[list[Region], list[Mention]]:
    regions: list[Region] = []
    unmatched: list[Mention] = []
    # Critical sections follow block structure: pair them with a brace-aware stack.
    events: list[tuple[int, str, CallSite | None]] = []
    for c in calls:
        if c.name in _REGION_PAIRS:
            events.append((c.offset, "begin", c))
        elif c.name in _CS_ENDS:
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
    for begin_name, end_name in _LOCK_PAIRS.items():
        regions += _pair_linear(calls, begin_name, (end_name,), "lock", same_receiver=True)
    regions += _wrapped_locks(calls)
    regions.sort(key=lambda r: r.begin)
    return regions, unmatched


def _wrapped_locks(calls: list[CallSite]) -> list[Region]:
    out: list[Region] = []
    open_: list[CallSite] = []
    for c in calls:
        if c.name in _LOCK_PAIRS or c.name in _LOCK_ENDS or "BLOCK" in c.name:
            continue
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
    kind = _REGION_PAIRS[begin.name][0]
    return Region(kind, begin.offset, end.offset if end else -1, begin.line, begin.col,
                  ", ".join(begin.args), begin.name, end.name if end else "")


def _pair_linear(calls: list[CallSite], begin_name: str, end_names: tuple[str, ...], kind: str,
                 *, same_receiver: bool = False) -> list[Region]:
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
            open_.remove(match)
            out.append(Region(kind, match.offset, c.offset, match.line, match.col,
                              match.args[0] if match.args else "", match.name, c.name))
    # A region opened and never closed in this function extends to its end.
    for o in open_:
        out.append(Region(kind, o.offset, 1 << 62, o.line, o.col,
                          o.args[0] if o.args else "", o.name, ""))
    return out


def _if_guards(ifs: list[tuple[int, int, int, int, int, int]], text: _Text,
               local_names: set[str], globals_: list[Var], local_vars: list[Var]) -> list[IfGuard]:
    statics = {v.name for v in local_vars if v.storage == "function-static"}
    shared = ({v.name for v in globals_} - local_names) | statics
    out: list[IfGuard] = []
    for if_off, c0, c1, t0, t1, line in ifs:
        cond = " ".join(text.bare[c0:c1].split())
        m = _NULL_TEST.match(cond)
        if m:
            name = m.group(1) or m.group(2) or m.group(3)
            if name in shared:
                out.append(IfGuard(name, "null-check", if_off, t0, t1, line))
            continue
        m = _SET_TEST.match(cond)
        if m:
            name = m.group(1) or m.group(2)
            if name in shared and re.search(r"\breturn\b", text.bare[t0:t1]):
                out.append(IfGuard(name, "early-return", if_off, t0, t1, line))
    return out


def _write_pattern(names: list[str]) -> re.Pattern[str]:
    alt = "|".join(sorted((re.escape(n) for n in names), key=len, reverse=True))
    return re.compile(
        rf"(?:(\+\+|--)\s*\b({alt})\b)"
        rf"|(?<![\w.>])\b({alt})\b\s*(?:\[[^\]\n]*\]\s*)*(?:(?:\.|->)\s*\w+\s*)*"
        r"(=(?!=)|[-+*/%&|^]=|<<=|>>=|\+\+|--)"
    )


def _with_global_writes(f: FunctionFacts, text: _Text, globals_: list[Var]) -> FunctionFacts:
    """Writes to file-scope variables (and this function's own statics) inside ``f``."""
    shadow = {v.name for v in f.params} | {v.name for v in f.locals if v.storage == "local"}
    statics = [v.name for v in f.locals if v.storage == "function-static"]
    names = [v.name for v in globals_ if not v.is_const and v.name not in shadow] + statics
    body = text.bare[f.start:f.end]
    present = [n for n in dict.fromkeys(names) if n and n in body]
    if not present:
        return f
    writes: list[Mention] = []
    for m in _write_pattern(present).finditer(text.bare, f.start, f.end):
        name = m.group(2) or m.group(3)
        op = m.group(1) or m.group(4)
        line, col = text.index.line_col(m.start(2) if m.group(2) else m.start(3))
        # A declaration of a function-static with an initializer is not a runtime write.
        if name in statics and any(v.name == name and v.line == line for v in f.locals):
            continue
        writes.append(Mention(name, line, col, m.start(), op))
    return _replace_writes(f, tuple(writes))


def _replace_writes(f: FunctionFacts, writes: tuple[Mention, ...]) -> FunctionFacts:
    return replace(f, global_writes=writes)


def _escapes(text: _Text, calls: list[CallSite], local_vars: list[Var], start: int,
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


def _inactive_mentions(raw: str, skipped: list[tuple[int, int]],
                       index: textscan.LineIndex) -> list[Mention]:
    out = []
    pat = re.compile(r"\b(Py_mod_gil|PyUnstable_Module_SetGIL|Py_MOD_GIL_NOT_USED)\b")
    for s, e in skipped:
        for m in pat.finditer(raw, s, e):
            line, col = index.line_col(m.start())
            out.append(Mention(m.group(1), line, col, m.start()))
    return out


def _member_mentions(text: _Text) -> list[Mention]:
    out: list[Mention] = []
    bare = text.bare
    has_members = "ob_refcnt" in bare or "ob_mutex" in bare
    for m in _MEMBER_TOKENS.finditer(bare) if has_members else ():
        name = m.group(1) or m.group(2)
        line, col = text.index.line_col(m.start(1) if m.group(1) else m.start(2))
        cmp = _OBREFCNT_CMP.match(bare, m.start()) if m.group(1) else None
        out.append(Mention(name, line, col, m.start(), cmp.group(1) if cmp else ""))
    for m in _REFCNT.finditer(bare) if "Py_REFCNT" in bare else ():
        close = textscan.find_close(bare, m.end() - 1)
        if close < 0:
            continue
        after = _RIGHT_CMP.match(bare, close + 1)
        before = _LEFT_ONE.search(bare[max(0, m.start() - 12):m.start()])
        if after or before:
            line, col = text.index.line_col(m.start())
            expr = " ".join(text.code[m.start():close + 1 + (after.end() - after.start()
                                                              if after else 0)].split())
            out.append(Mention("Py_REFCNT", line, col, m.start(), expr))
    return out


_IDENT_USE = re.compile(r"\b([A-Za-z_]\w*)\b(\s*\()?")


def _address_taken(bare: str, defined: set[str], functions: list[FunctionFacts]) -> set[str]:
    """Functions named other than in a call: stored in tables, slots or pointers."""
    if not defined:
        return set()
    out = set()
    for m in _IDENT_USE.finditer(bare):
        name = m.group(1)
        if name in defined and not m.group(2):
            out.add(name)
    return out
