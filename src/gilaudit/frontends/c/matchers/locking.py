"""Critical sections (FT060, FT061, FT063) and detached regions (FT048, FT071, FT083)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from gilaudit.frontends.c.context import ProjectIndex, attached_again, detached_regions, in_region
from gilaudit.frontends.c.facts import FileFacts, FunctionFacts, Region
from gilaudit.frontends.contract import Hit

__all__ = ["match_allow_threads", "match_cs_nesting", "match_cs_scope", "match_detached_fields"]

_CS = ("cs", "cs2")
_END_FOR = {"cs": "Py_END_CRITICAL_SECTION", "cs2": "Py_END_CRITICAL_SECTION2"}


def _closed(r: Region) -> bool:
    return r.end >= 0


def match_cs_scope(facts: FileFacts, index: ProjectIndex,
                   selected: frozenset[str]) -> Iterator[Hit]:
    """FT060: a critical section must begin and end in one block, and be left only at its end."""
    for fn in facts.functions:
        for m in fn.unmatched:
            yield Hit(rule="FT060", path=facts.path, line=m.line, col=m.col, symbol=m.name,
                      where=f"`{m.name}` without a matching BEGIN", function=fn.name)
        for r in fn.regions:
            if r.kind not in _CS:
                continue
            if not _closed(r):
                yield Hit(rule="FT060", path=facts.path, line=r.line, col=r.col, symbol=r.macro,
                          where=f"`{r.macro}` not closed in the same block", function=fn.name)
                continue
            if r.end_macro != _END_FOR[r.kind]:
                yield Hit(rule="FT060", path=facts.path, line=r.line, col=r.col, symbol=r.macro,
                          where=f"`{r.macro}` closed by `{r.end_macro}`", function=fn.name)
                continue
            yield from _jumps_out(facts, fn, r)


def _jumps_out(facts: FileFacts, fn: FunctionFacts, r: Region) -> Iterator[Hit]:
    inner_loops = [lp for lp in fn.loops if r.begin < lp.start and lp.end <= r.end]
    labels_inside = {lb.name for lb in fn.labels if r.begin < lb.offset < r.end}
    for j in fn.jumps:
        if not r.begin < j.offset < r.end:
            continue
        if j.kind == "goto" and j.label in labels_inside:
            continue
        if j.kind in ("break", "continue"):
            kinds = ("for", "while", "do", "switch") if j.kind == "break" else (
                "for", "while", "do")
            if any(lp.kind in kinds and lp.start < j.offset < lp.end for lp in inner_loops):
                continue
        # a goto names its label; a return, the name it returns (not an expression's "?")
        text = f"`{j.kind} {j.label}`" if j.label not in ("", "?") else f"`{j.kind}`"
        yield Hit(rule="FT060", path=facts.path, line=j.line, col=j.col, symbol=j.kind,
                  where=f"{text} leaves the critical section opened on line {r.line}",
                  function=fn.name)


def match_cs_nesting(facts: FileFacts, index: ProjectIndex,
                     selected: frozenset[str]) -> Iterator[Hit]:
    """FT061 (a section inside a section), FT063 (detaching or blocking inside one)."""
    blocking = {"Py_BEGIN_ALLOW_THREADS", "PyEval_SaveThread", "PyMutex_Lock",
                "Py_UNBLOCK_THREADS"}
    for fn in facts.functions:
        sections = [r for r in fn.regions if r.kind in _CS]
        for inner in sections:
            outer = next((o for o in sections if o is not inner and o.begin < inner.begin
                          and (o.end < 0 or inner.begin < o.end)), None)
            if outer is not None:
                yield Hit(rule="FT061", path=facts.path, line=inner.line, col=inner.col,
                          symbol=inner.macro, where=f"`{outer.receiver}`", function=fn.name)
        if not sections:
            continue
        for call in fn.calls:
            if call.name in blocking and in_region(sections, call.offset, _CS):
                yield Hit(rule="FT063", path=facts.path, line=call.line, col=call.col,
                          symbol=call.name, function=fn.name)


# Calls that are fine without an attached thread state: raw memory, thread primitives,
# the attach/detach API itself, and macros that only compute on C values or addresses.
_DETACHED_OK = re.compile(
    r"^(?:PyMem_Raw\w+|PyThread_\w+|PyGILState_\w+|PyEval_SaveThread|PyEval_RestoreThread"
    r"|Py_(?:BEGIN|END)_ALLOW_THREADS|Py_(?:UN)?BLOCK_THREADS|PyMutex_\w+|PyOS_\w+"
    r"|Py_ARRAY_LENGTH|Py_MIN|Py_MAX|Py_ABS|Py_UNUSED|Py_SAFE_DOWNCAST|Py_CHARMASK|Py_IS_\w+"
    r"|Py_UNREACHABLE|Py_STRINGIFY|Py_MEMCPY|Py_\w*ALIGN\w*|PyUnicode_(?:READ\w*|DATA|KIND|"
    r"WRITE|GET_LENGTH|1BYTE_DATA|2BYTE_DATA|4BYTE_DATA)|\w+_AS_STRING|\w+_GET_SIZE"
    r"|\w+_AS_DATA|PyBytes_AS_STRING|Py_hash_t|Py_ssize_t)$"
)
_MEM = re.compile(
    r"^(?:PyMem_(?:Malloc|Calloc|Realloc|Free|MALLOC|REALLOC|FREE|New|NEW|Resize|RESIZE|Del|DEL)"
    r"|PyObject_(?:Malloc|Calloc|Realloc|Free|MALLOC|REALLOC|FREE|Del|DEL))$"
)
_CAPI = re.compile(r"^_?Py[A-Z_]\w*$")


def match_allow_threads(facts: FileFacts, index: ProjectIndex,
                        selected: frozenset[str]) -> Iterator[Hit]:
    """FT071 (C API while detached) and FT083 (mem/object allocators while detached)."""
    for fn in facts.functions:
        detached = detached_regions(fn)
        if not detached:
            continue
        for call in fn.calls:
            region = in_region(detached, call.offset, ("allow",))
            if region is None or _DETACHED_OK.match(call.name):
                continue
            if attached_again(fn, region, call.offset):
                continue
            if _MEM.match(call.name):
                yield Hit(rule="FT083", path=facts.path, line=call.line, col=call.col,
                          symbol=call.name, function=fn.name)
            elif _CAPI.match(call.name):
                yield Hit(rule="FT071", path=facts.path, line=call.line, col=call.col,
                          symbol=call.name, function=fn.name)


def match_detached_fields(facts: FileFacts, index: ProjectIndex,
                          selected: frozenset[str]) -> Iterator[Hit]:
    """FT048: the object's own state used while detached, with no lock of the object's held;
    one finding per detached region, naming every field it touches."""
    for fn in facts.functions:
        if not fn.params or not index.is_python_callable(fn) or index.is_lifecycle(fn):
            continue
        detached = [r for r in fn.regions if r.kind == "allow"]
        if not detached:
            continue
        self_name = fn.params[0].name
        for region in detached:
            # A lock taken before detaching and released after it covers the whole region.
            if in_region(fn.regions, region.begin, ("lock",)):
                continue
            end = region.end if region.end >= 0 else fn.end
            uses = [u for u in fn.field_uses
                    if u.detail == self_name and region.begin < u.offset < end
                    and not in_region(fn.regions, u.offset, ("lock",))]
            if not uses:
                continue
            fields = list(dict.fromkeys(u.name for u in uses))
            first = uses[0]
            shown = ", ".join(f"`{self_name}->{f}`" for f in fields[:4])
            more = f" and {len(fields) - 4} more" if len(fields) > 4 else ""
            yield Hit(rule="FT048", path=facts.path, line=first.line, col=first.col,
                      symbol=fields[0], where=shown + more, function=fn.name)


def match_legacy_lock(facts: FileFacts, index: ProjectIndex,
                      selected: frozenset[str]) -> Iterator[Hit]:
    """FT066: each PyThread lock the free-threaded build still allocates."""
    for fn in facts.functions:
        for call in fn.calls:
            if call.name == "PyThread_allocate_lock":
                yield Hit(rule="FT066", path=facts.path, line=call.line, col=call.col,
                          symbol=call.name, where="a `PyMutex` needs no allocation",
                          function=fn.name)
