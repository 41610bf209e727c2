"""File-wide mentions: writes to globals, member tokens the free-threaded build changes
(`ob_refcnt`, `ob_mutex`), code in inactive preprocessor branches, functions whose address
is taken."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import replace

from gilaudit.frontends import textscan
from gilaudit.frontends.c.cursors import Text
from gilaudit.frontends.c.facts import FunctionFacts, Mention, Var
from gilaudit.frontends.removed_api import C_DEFINE

__all__ = ["api_mentions", "inactive_mentions", "member_mentions", "names_defined_in",
           "taken_addresses", "with_global_writes"]

_MEMBER_TOKENS = re.compile(r"(?:->|\.)\s*(ob_refcnt)\b|\b(ob_mutex)\b")
_REFCNT = re.compile(r"\bPy_REFCNT\s*\(")
_LEFT_ONE = re.compile(r"\b1\s*==\s*$")
_RIGHT_CMP = re.compile(r"\s*(==\s*1|<=\s*1|<\s*2)\b")
_OBREFCNT_CMP = re.compile(r"->\s*ob_refcnt\s*(==\s*1|<=\s*1|<\s*2)\b")


def _write_pattern(names: list[str]) -> re.Pattern[str]:
    alt = "|".join(sorted((re.escape(n) for n in names), key=len, reverse=True))
    return re.compile(
        rf"(?:(\+\+|--)\s*\b({alt})\b)"
        rf"|(?<![\w.>])\b({alt})\b\s*(?:\[[^\]\n]*\]\s*)*(?:(?:\.|->)\s*\w+\s*)*"
        r"(=(?!=)|[-+*/%&|^]=|<<=|>>=|\+\+|--)"
    )


# Member functions that change a standard container or smart pointer in place.
_MUTATORS = (
    "push_back|emplace_back|push_front|emplace_front|pop_back|pop_front|insert|emplace"
    "|emplace_hint|try_emplace|insert_or_assign|erase|clear|resize|reserve|assign|swap|reset"
    "|merge|extract|splice|sort|unique|remove|remove_if|shrink_to_fit|store|exchange"
)


def _object_writes(names: list[str]) -> re.Pattern[str]:
    """`cache.push_back(x)`, `table->insert(...)`: a C++ object changed through a member
    function (group 1 the name, group 2 the member)."""
    alt = "|".join(sorted((re.escape(n) for n in names), key=len, reverse=True))
    return re.compile(rf"(?<![\w.>])\b({alt})\b\s*(?:\.|->)\s*({_MUTATORS})\s*\(")


def _cxx_object(var: Var) -> bool:
    # A class type from C++ (`std::vector<int>`, `ns::Cache`), not a C struct.
    return "::" in var.type or "<" in var.type


def with_global_writes(f: FunctionFacts, text: Text, globals_: list[Var]) -> FunctionFacts:
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
    objects = [v.name for v in globals_ if v.name in present and _cxx_object(v)
               and not v.is_atomic] + [v.name for v in f.locals
                                        if v.storage == "function-static" and _cxx_object(v)]
    objects = [n for n in dict.fromkeys(objects) if n in present]
    for m in _object_writes(objects).finditer(text.bare, f.start, f.end) if objects else ():
        line, col = text.index.line_col(m.start(1))
        writes.append(Mention(m.group(1), line, col, m.start(), f".{m.group(2)}()"))
    if not writes:
        return f
    writes.sort(key=lambda w: w.offset)
    return _replace_writes(f, tuple(writes))


def _replace_writes(f: FunctionFacts, writes: tuple[Mention, ...]) -> FunctionFacts:
    return replace(f, global_writes=writes)


def inactive_mentions(raw: str, skipped: list[tuple[int, int]],
                       index: textscan.LineIndex) -> list[Mention]:
    out = []
    pat = re.compile(r"\b(Py_mod_gil|PyUnstable_Module_SetGIL|Py_MOD_GIL_NOT_USED)\b")
    for s, e in skipped:
        for m in pat.finditer(raw, s, e):
            line, col = index.line_col(m.start())
            out.append(Mention(m.group(1), line, col, m.start()))
    return out


def member_mentions(text: Text) -> list[Mention]:
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


_PY_NAME = re.compile(r"Py\w*")  # a literal first: the engine skips ahead (see _py_names)
_DIRECTIVE = re.compile(r"^[ \t]*#[ \t]*(\w+)(?:[^\n]*\\\n)*[^\n]*", re.MULTILINE)
_DEFINED = re.compile(r"[ \t]*#[ \t]*define[ \t]+(\w+)(?:\(([^)]*)\))?")
# Names the file gives a meaning itself: `typedef ... _PyFoo;`, `} _PyFoo;`, `struct _PyFoo {`,
# and declarations made the way CPython's own headers make them (`PyAPI_DATA(T) _PyFoo;`).
# One pattern each, each starting with a literal, so that the regex engine skips ahead to it:
# one alternation of the four tried at every offset cost 50 ms on regex's 26,000-line file.
_NAMED_HERE = (re.compile(r"typedef\b[^;{}]*?\b(_?Py\w+)\s*;"),
               re.compile(r"}\s*(_?Py\w+)\s*;"),
               re.compile(r"struct\s+(_?Py\w+)\s*{"),
               re.compile(r"PyAPI_(?:FUNC|DATA)\s*\([^;{}]*?\)\s*\(?\s*(_?Py\w+)"))


# `extern "C" const char *_PyMem_GetCurrentAllocatorName();` at file scope: a prototype.
_PROTOTYPE = re.compile(r"(Py\w*)\s*\([^;{}()]*(?:\([^;{}()]*\)[^;{}()]*)*\)\s*;")
_BRACE = re.compile(r"[{}]")


def names_defined_in(bare: str) -> list[tuple[str, int]]:
    """`Py...` names a file `#define`s, types or declares itself, with their offsets: a
    project's own shims, CPython's own tree, or its own prototype of a function CPython still
    exports but no longer declares (memray's `_PyMem_GetCurrentAllocatorName`)."""
    out = [(m.group(1), m.start(1)) for m in C_DEFINE.finditer(bare)]
    if "Py" not in bare:
        return out
    for pattern in _NAMED_HERE:
        out += [(m.group(1), m.start(1)) for m in pattern.finditer(bare)]
    braces: list[tuple[int, int]] = []  # (offset, depth after it)
    depth = 0
    for b in _BRACE.finditer(bare):
        depth += 1 if b.group() == "{" else -1
        braces.append((b.start(), depth))
    for m in _PROTOTYPE.finditer(bare):
        start = _name_start(bare, m.start())
        if start < 0:
            continue
        name = bare[start:m.end(1)]
        at = bisect.bisect_left(braces, (start, -1 << 30)) - 1
        before = bare[max(0, start - 40):start].rstrip()
        # a type before it (`const char *`, `int`), not the end of another statement: a macro
        # used at file scope (`PyDoc_STRVAR(doc, "...");`) declares nothing
        if (braces[at][1] if at >= 0 else 0) == 0 and before and (
                before[-1].isalnum() or before[-1] in "_*") \
                and not before.endswith(("return", "else")):
            out.append((name, start))
    return out


_LVALUE = re.compile(r"Py_(?:TYPE|SIZE|REFCNT)\s*\(")
_ASSIGNED = re.compile(r"\s*=(?!=)")


def api_mentions(text: Text, wanted: frozenset[str] | None = None) -> list[Mention]:
    """The first place each C-API-like name (`Py...`, `_Py...`) is used in the code a build
    compiles, as the names CPython removes are checked against it: detail "" for a use,
    "define" for the project's own `#define` or type of that name, "=" for `Py_TYPE(o) = t`
    (no longer an l-value). Names in `#if`/`#ifdef`/`#undef`/`#include` lines only test for
    it, and a macro's parameters are the macro's own."""
    bare = text.bare
    seen: dict[tuple[str, str], Mention] = {}

    def note(name: str, offset: int, detail: str) -> None:
        if (name, detail) not in seen and (wanted is None or name in wanted):
            line, col = text.index.line_col(offset)
            seen[name, detail] = Mention(name, line, col, offset, detail)

    # (start, end, names not used there): a directive that tests names, or a macro's
    # definition with its parameters.
    skip: list[tuple[int, int, frozenset[str] | None]] = []
    for d in _DIRECTIVE.finditer(bare):
        m = _DEFINED.match(bare, d.start()) if d.group(1) == "define" else None
        if m is None:
            skip.append((d.start(), d.end(), None))
            continue
        params = frozenset(p.strip() for p in (m.group(2) or "").split(","))
        skip.append((d.start(), m.end(), None))
        skip.append((m.end(), d.end(), params))
    for name, offset in names_defined_in(bare):
        note(name, offset, "define")
    spans = iter(skip)
    span = next(spans, None)
    for name, start in _py_names(bare):
        while span is not None and span[1] <= start:
            span = next(spans, None)
        if span is not None and span[0] <= start and (span[2] is None or name in span[2]):
            continue
        note(name, start, "")
    for m in _LVALUE.finditer(bare):
        if _name_start(bare, m.start()) != m.start():
            continue
        close = textscan.find_close(bare, m.end() - 1)
        if close > 0 and _ASSIGNED.match(bare, close + 1):
            note(m.group().split("(")[0].strip(), m.start(), "=")
    return sorted(seen.values(), key=lambda x: x.offset)


def _py_names(bare: str) -> Iterator[tuple[str, int]]:
    """Each `Py...`/`_Py...` identifier (not `__Pyx_...`, not `MyPy...`), with its offset."""
    for m in _PY_NAME.finditer(bare):
        start = _name_start(bare, m.start())
        if start >= 0:
            yield bare[start:m.end()], start


def _name_start(bare: str, at: int) -> int:
    """Where the identifier whose `Py` is at ``at`` starts (one `_` before it belongs to it),
    or -1 when `Py` is inside a longer name (`MyPy...`, `__Pyx_...`)."""
    start = at - 1 if at and bare[at - 1] == "_" else at
    return -1 if start and (bare[start - 1].isalnum() or bare[start - 1] == "_") else start


_IDENT_USE = re.compile(r"\b([A-Za-z_]\w*)\b(\s*\()?")


def taken_addresses(bare: str, defined: set[str], functions: list[FunctionFacts]) -> set[str]:
    """Functions named other than in a call: stored in tables, slots or pointers."""
    if not defined:
        return set()
    out = set()
    for m in _IDENT_USE.finditer(bare):
        name = m.group(1)
        if name in defined and not m.group(2):
            out.add(name)
    return out
