"""The C/C++ front end: one translation unit in, FileFacts out.

libclang parses the file exactly as a free-threaded build compiles it (``Py_GIL_DISABLED``
defined, the compatibility prelude included first). From the AST we take structure: function
extents, parameters, local and global declarations, ``if`` statements, jumps and loops. From the
text, with the preprocessor's skipped ranges, comments and strings blanked, we take call sites,
including those of macros that leave no call behind in the AST.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from gilaudit.frontends import textscan
from gilaudit.frontends.c.clang import (
    HOLDER,
    KEEP_GOING,
    clang_diagnostics,
    pch_rejected,
    skipped_ranges,
    without_pch,
)
from gilaudit.frontends.c.cursors import Text, is_static, var_fact
from gilaudit.frontends.c.cxxclasses import bound_classes
from gilaudit.frontends.c.decls import macro_facts, struct_facts
from gilaudit.frontends.c.facts import (
    Diag,
    FileFacts,
    FunctionFacts,
    MacroFact,
    Mention,
    SlotEntry,
    StructFact,
    Var,
)
from gilaudit.frontends.c.functions import function_facts
from gilaudit.frontends.c.job import ParseJob, empty_facts
from gilaudit.frontends.c.mentions import (
    api_mentions,
    inactive_mentions,
    member_mentions,
    names_defined_in,
    taken_addresses,
    with_global_writes,
)
from gilaudit.frontends.c.modtext import module_facts
from gilaudit.frontends.contract import Suppression
from gilaudit.frontends.removed_api import wanted_names

__all__ = ["parse_translation_unit"]

_BINARY_SNIFF = 65536


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
    clang = HOLDER.get()
    ci = clang.ci
    opts = ci.TranslationUnit.PARSE_DETAILED_PROCESSING_RECORD | KEEP_GOING
    try:
        tu = clang.index.parse(job.abspath, args=list(job.args), options=opts)
        if pch_rejected(tu):
            raise ci.TranslationUnitLoadError("precompiled prelude rejected")
    except ci.TranslationUnitLoadError as exc:
        # A precompiled prelude that no longer fits (headers touched, another libclang) only
        # costs speed: parse again with the plain prelude.
        plain = without_pch(job.args)
        try:
            if plain == job.args:
                raise
            tu = clang.index.parse(job.abspath, args=list(plain), options=opts)
        except ci.TranslationUnitLoadError:
            diags.append(Diag("parse-failed", f"libclang could not parse this file: {exc}",
                              job.rel))
            return empty_facts(job.rel, diags, raw.count("\n") + 1)
    diags.extend(clang_diagnostics(tu, job))
    skipped = skipped_ranges(clang, tu, job.abspath)
    try:
        return _extract(tu, ci, job, raw, skipped, diags)
    except (RecursionError, ValueError, IndexError) as exc:
        # A construct our extraction did not expect: keep what the file-level pass can give.
        diags.append(Diag("internal-error", f"fact extraction failed: {type(exc).__name__}: "
                                            f"{exc}", job.rel))
        return empty_facts(job.rel, diags, raw.count("\n") + 1)


def _in_file(tu: Any, ci: Any, abspath: str) -> Callable[[Any], bool]:
    """A test of whether a location's expansion point (where a macro was used) lies in
    ``abspath``, asked natively: building `File` objects and their names in Python cost tens of
    microseconds a cursor, and a unit has thousands of top-level cursors from Python.h."""
    lib = ci.conf.lib
    target = lib.clang_getFile(tu, abspath)
    if not target:
        return lambda _loc: False
    is_equal = lib.clang_File_isEqual
    is_equal.argtypes = [ci.c_object_p, ci.c_object_p]
    is_equal.restype = ctypes.c_int
    expansion = lib.clang_getInstantiationLocation
    target_at = ctypes.cast(target, ctypes.c_void_p).value
    found = ci.c_object_p()
    where = ctypes.byref(found)

    def inside(loc: Any) -> bool:
        expansion(loc, where, None, None, None)
        if not found:
            return False
        return ctypes.cast(found, ctypes.c_void_p).value == target_at or \
            bool(is_equal(found, target))

    return inside


def _extract(tu: Any, ci: Any, job: ParseJob, raw: str, skipped: list[tuple[int, int]],
             diags: list[Diag]) -> FileFacts:
    main = _file_facts(tu, ci, job, job.abspath, job.rel, raw, skipped, diags, seed=())
    main = replace(main, **_header_declarations(tu, job, main))
    if job.language != "c" and not job.included_code:
        return main  # C++: only unity-build fragments (plan.py) are given to a unit
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
                            skipped_ranges(HOLDER.get(), tu, abspath), [], seed=seed)
        if facts.functions:
            included.append(replace(facts, included_from=job.rel, deps=()))
    return replace(main, included=tuple(included))


_MAX_HEADER = 2 * 1024 * 1024


def _header_declarations(tu: Any, job: ParseJob, main: FileFacts) -> dict[str, Any]:
    """The structs and macros of the project headers this unit includes, added to the main
    file's own (the instance layouts and accessor macros usually live in headers), and the
    `Py...` names they `#define` (a project's compatibility shims for removed C-API names)."""
    structs: list[StructFact] = list(main.structs)
    macros: list[MacroFact] = list(main.macros)
    names: list[Mention] = list(main.api_names)
    root = job.root.rstrip("/") + "/"
    for rel, _digest in main.deps:
        abspath = root + rel
        try:
            data = Path(abspath).read_bytes()
        except OSError:
            continue
        if len(data) > _MAX_HEADER or b"\0" in data[:_BINARY_SNIFF]:
            continue
        if b"struct" not in data and b"define" not in data:
            continue
        skipped = tuple(skipped_ranges(HOLDER.get(), tu, abspath)) if b"#if" in data else ()
        got = _declarations_of(data, skipped, rel)
        structs += got[0]
        macros += got[1]
        names += (Mention(n, 0, 0, -1, "define") for n in got[2] if n in wanted_names())
    return {"structs": tuple(structs), "macros": tuple(macros), "api_names": tuple(names)}


@functools.lru_cache(maxsize=512)
def _declarations_of(data: bytes, skipped: tuple[tuple[int, int], ...], rel: str
                     ) -> tuple[tuple[StructFact, ...], tuple[MacroFact, ...], tuple[str, ...]]:
    """One header's structs and macros: the same header comes with most units of a project,
    so a worker reads it once (a pure function of its bytes and what the preprocessor skips)."""
    raw = data.decode("latin-1")
    code, bare = textscan.strip_comments_and_strings(textscan.blank_ranges(raw, list(skipped)))
    index = textscan.LineIndex.of(raw)
    return (tuple(struct_facts(code, bare, index, rel)), tuple(macro_facts(code, index, rel)),
            tuple(name for name, _ in names_defined_in(bare)))


def _included_code(tu: Any, job: ParseJob) -> list[tuple[str, str]]:
    """(relative, absolute path) of the included code files the scan gave this unit (it
    already chose those that define functions), as this unit really includes them."""
    root = job.root.rstrip("/") + "/"
    wanted = set(job.included_code)
    out: dict[str, str] = {}
    for inc in tu.get_includes() if wanted else ():
        name = os.path.abspath(inc.include.name) if inc.include else ""
        if name.startswith(root) and name[len(root):] in wanted:
            # The name as clang knows it (relative when the target was given relatively):
            # locations in the file compare equal to it, not to its absolute path.
            out.setdefault(name[len(root):], inc.include.name)
    return sorted(out.items())


def _file_facts(tu: Any, ci: Any, job: ParseJob, abspath: str, rel: str, raw: str,
                skipped: list[tuple[int, int]], diags: list[Diag],
                seed: tuple[Var, ...]) -> FileFacts:
    """Facts of one file of the unit: the main file, or a file it includes (``seed`` holds the
    includer's globals, visible there)."""
    is_main = abspath == job.abspath
    code, bare = textscan.strip_comments_and_strings(textscan.blank_ranges(raw, skipped))
    text = Text(raw=raw, code=code, bare=bare, index=textscan.LineIndex.of(raw))
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
    in_file = _in_file(tu, ci, abspath)

    def main_children(cursor: Any) -> list[Any]:
        # Most top-level declarations come from Python.h and system headers; checking the
        # location natively, before any Python object is built for them, keeps this cheap.
        kept: list[Any] = []

        def visitor(child: Any, _parent: Any, _data: Any) -> int:
            loc = get_location(child)
            if (is_main and from_main(loc)) or ((cxx or not is_main) and in_file(loc)):
                child._tu = tu_ref
                kept.append(child)
            return 1  # CXChildVisit_Continue

        ci.conf.lib.clang_visitChildren(cursor, ci.callbacks["cursor_visit"](visitor), None)
        return kept

    located = None
    if (job.located_toplevel or not is_main) and job.language == "c":
        located = _located_toplevel(tu, ci, text, abspath)

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
                    functions.append(function_facts(c, ci, text, globals_, shared_pattern(),
                                                    cxx=cxx))
            elif kind == kinds.VAR_DECL:
                storage = "static-global" if is_static(c, ci) else "global"
                globals_.append(var_fact(c, text, storage))
            elif kind in scope_kinds:
                visit_scope(c)

    visit_scope(tu.cursor)
    # Function-level statics are shared state too; matchers treat them like globals.
    statics = [v for f in functions for v in f.locals if v.storage == "function-static"]
    functions = [with_global_writes(f, text, globals_) for f in functions]
    defined = {f.name for f in functions}
    mods = module_facts(text.code, text.bare, text.index)
    inactive = inactive_mentions(raw, skipped, text.index)
    members = member_mentions(text)
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
    address_taken = taken_addresses(text.bare, defined, functions)
    return FileFacts(
        path=rel,
        lines=text.index.count,
        functions=tuple(functions),
        globals=tuple(globals_) + tuple(statics),
        module_defs=mods.module_defs,
        slot_arrays=slot_arrays,
        types=mods.types + (tuple(bound_classes(text.code, text.bare, text.index))
                            if cxx and "class_" in text.bare else ()),
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
        structs=tuple(struct_facts(text.code, text.bare, text.index, rel)),
        macros=tuple(macro_facts(text.code, text.index, rel)),
        member_tables=mods.member_tables,
        api_names=tuple(api_mentions(text, wanted_names())),
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


_TOKEN_OR_BRACE = re.compile(r"[{};]|[A-Za-z_]\w*")
# Macros that open top-level declarations without declaring anything themselves.
_DECL_MACROS = frozenset({
    "PyDoc_STRVAR", "PyDoc_STR", "PyMODINIT_FUNC", "Py_LOCAL_INLINE", "Py_LOCAL", "PyAPI_FUNC",
    "PyAPI_DATA", "Py_EXPORTED_SYMBOL", "Py_ALWAYS_INLINE", "Py_NO_INLINE", "Py_UNUSED",
    "Py_LOCAL_SYMBOL", "Py_IMPORTED_SYMBOL", "PyObject_HEAD", "PyObject_VAR_HEAD",
})


def _located_toplevel(tu: Any, ci: Any, text: Text, path: str) -> list[Any] | None:
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
        # libclang spells a header found through a relative -I or the working directory
        # relative to that directory: make it absolute before asking whether it is ours.
        name = os.path.abspath(inc.include.name) if inc.include else ""
        if name.startswith(root) and name not in seen:
            try:
                seen[name] = hashlib.sha256(Path(name).read_bytes()).hexdigest()
            except OSError:
                seen[name] = ""
    return sorted((k[len(root):], v) for k, v in seen.items())
