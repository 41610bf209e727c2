"""Borrowed references into containers other threads can change (FT010-FT024) and unlocked
dict iteration (FT014)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

from gilaudit.frontends import textscan
from gilaudit.frontends.c.context import (
    ProjectIndex,
    classify_receiver,
    in_region,
    normalise_expr,
)
from gilaudit.frontends.c.facts import CallSite, FileFacts, FunctionFacts
from gilaudit.frontends.contract import Hit
from gilaudit.model import Location, Note

__all__ = [
    "BORROWING", "match_borrowed_container", "match_borrowed_globals", "match_cell_get",
    "match_dict_next", "match_sequence_fast", "match_set_item_macro", "match_weakref",
]

# API -> rule, for calls whose receiver decides whether the borrow is shared.
BORROWING: dict[str, str] = {
    "PyList_GetItem": "FT010",
    "PyList_GET_ITEM": "FT010",
    "PyDict_GetItem": "FT011",
    "PyDict_GetItemWithError": "FT011",
    "PyDict_GetItemString": "FT012",
    "PyDict_SetDefault": "FT013",
}
_WEAKREF = frozenset({"PyWeakref_GetObject", "PyWeakref_GET_OBJECT"})
_INCREFS = frozenset({"Py_INCREF", "Py_XINCREF", "Py_NewRef", "Py_XNewRef"})
_CS_KINDS = ("cs", "cs2")


def _severity(kind: str) -> str | None:
    """Full severity for shared receivers; a caller-supplied or unknown one is a warning."""
    return None if kind == "shared" else "warning"


def _assigned_local(fn: FunctionFacts, call: CallSite) -> str | None:
    """The local that receives this call's result (`x = PyList_GetItem(...)`), if any."""
    best = None
    for a in fn.assigns:
        if a.offset >= call.offset:
            break
        if a.source == call.name and call.offset - a.offset < 120:
            best = a
    if best is None:
        return None
    if any(best.offset < c.offset < call.offset for c in fn.calls):
        return None
    return best.target


def _incref_of(fn: FunctionFacts, call: CallSite) -> CallSite | None:
    """An incref applied to this borrowed result: around the call, or to the local holding it."""
    for c in fn.calls:
        if c.name in _INCREFS and c.offset < call.offset < c.end:
            return c
    target = _assigned_local(fn, call)
    if target is None:
        return None
    for c in fn.calls:
        if c.offset <= call.offset or c.name not in _INCREFS:
            continue
        if any(a.target == target and call.offset < a.offset < c.offset for a in fn.assigns):
            return None  # reassigned in between: the incref is of something else
        if c.args and normalise_expr(c.args[0]) == target:
            return c
    return None


_MACRO_CALL = re.compile(r"\b(Py\w+)\s*\(")


def _increfed_here(facts: FileFacts, incref: CallSite) -> tuple[Note, ...]:
    return (Note(message=f"`{incref.name}` takes the reference here, after the lookup: too late",
                 location=Location(path=facts.path, line=incref.line, column=incref.col)),)


def _through_macro(call: CallSite, index: ProjectIndex) -> CallSite:
    """A call of a project macro that expands to a borrowing API (`LOOKUP(d, k)` for
    `#define LOOKUP(m, k) PyDict_GetItem((m), (k))`) seen as that API's call, at the macro's
    use, with the macro's arguments in place of its parameters."""
    macro = index.macros.get(call.name)
    if macro is None:
        return call
    m = _MACRO_CALL.search(macro.body)
    if m is None or m.group(1) not in BORROWING:
        return call
    open_pos = m.end() - 1
    close = textscan.find_close(macro.body, open_pos)
    if close < 0:
        return call
    given = dict(zip(macro.params, call.args, strict=False))
    args = tuple(
        re.sub(r"\b\w+\b", lambda w: given.get(w.group(), w.group()), a)
        for a in textscan.split_args(macro.body, macro.body, open_pos, close))
    return replace(call, name=m.group(1), args=args)


def match_borrowed_container(facts: FileFacts, index: ProjectIndex,
                             selected: frozenset[str]) -> Iterator[Hit]:
    """FT010-FT013, and FT019 where the borrowed result is then increfed; also through the
    project's function-like macros."""
    for fn in facts.functions:
        for used in fn.calls:
            call = _through_macro(used, index)
            rule = BORROWING.get(call.name)
            if rule is None or not call.args:
                continue
            receiver = normalise_expr(call.args[0])
            if in_region(fn.regions, call.offset, _CS_KINDS, receiver):
                continue
            rc = classify_receiver(call.args[0], fn, facts, index, call.offset)
            if rc.kind == "private":
                continue
            incref = _incref_of(fn, call) if "FT019" in selected else None
            if incref is not None:
                # The lookup is the line to change (to its strong-reference twin); the incref
                # is where the old code thought it was safe.
                yield Hit(rule="FT019", path=facts.path, line=call.line, col=call.col,
                          symbol=call.name, where=rc.phrase, function=fn.name,
                          severity=_severity(rc.kind), notes=_increfed_here(facts, incref))
                continue
            macro = index.macros.get(used.name) if used is not call else None
            via = (Note(message=f"through the project's macro `{used.name}`",
                        location=Location(path=macro.path, line=macro.line)),) if macro else ()
            yield Hit(rule=rule, path=facts.path, line=call.line, col=call.col, symbol=call.name,
                      where=rc.phrase, function=fn.name, severity=_severity(rc.kind), notes=via)


def match_weakref(facts: FileFacts, index: ProjectIndex,
                  selected: frozenset[str]) -> Iterator[Hit]:
    """FT016 (or FT019 when the borrowed referent is increfed): the referent can die anytime."""
    for fn in facts.functions:
        for call in fn.calls:
            if call.name not in _WEAKREF:
                continue
            incref = _incref_of(fn, call) if "FT019" in selected else None
            if incref is not None:
                yield Hit(rule="FT019", path=facts.path, line=call.line, col=call.col,
                          symbol=call.name, where="the weak reference's referent",
                          function=fn.name, notes=_increfed_here(facts, incref))
                continue
            yield Hit(rule="FT016", path=facts.path, line=call.line, col=call.col,
                      symbol=call.name, where="the weak reference's referent", function=fn.name)


def match_borrowed_globals(facts: FileFacts, index: ProjectIndex,
                           selected: frozenset[str]) -> Iterator[Hit]:
    """FT017 (outside module init), FT023, FT024: borrowed pointers into interpreter state."""
    rules = {"PyImport_AddModule": "FT017", "PyImport_AddModuleObject": "FT017",
             "PyEval_GetBuiltins": "FT023", "PyEval_GetGlobals": "FT023",
             "PyEval_GetLocals": "FT023", "PySys_GetObject": "FT024"}
    for fn in facts.functions:
        for call in fn.calls:
            rule = rules.get(call.name)
            if rule is None:
                continue
            if fn.name in index.init_only:
                continue  # import runs once, under the import lock
            yield Hit(rule=rule, path=facts.path, line=call.line, col=call.col, symbol=call.name,
                      where="", function=fn.name)


def match_cell_get(facts: FileFacts, index: ProjectIndex,
                   selected: frozenset[str]) -> Iterator[Hit]:
    """FT018: PyCell_GET reads a mutable cell without a reference."""
    for fn in facts.functions:
        for call in fn.calls:
            if call.name != "PyCell_GET" or not call.args:
                continue
            rc = classify_receiver(call.args[0], fn, facts, index, call.offset)
            if rc.kind == "private":
                continue
            yield Hit(rule="FT018", path=facts.path, line=call.line, col=call.col,
                      symbol=call.name, where=rc.phrase, function=fn.name)


def match_dict_next(facts: FileFacts, index: ProjectIndex,
                    selected: frozenset[str]) -> Iterator[Hit]:
    """FT014: PyDict_Next does not lock the dict; only a critical section on it makes it safe."""
    for fn in facts.functions:
        for call in fn.calls:
            if call.name != "PyDict_Next" or not call.args:
                continue
            receiver = normalise_expr(call.args[0])
            if in_region(fn.regions, call.offset, _CS_KINDS, receiver):
                continue
            rc = classify_receiver(call.args[0], fn, facts, index, call.offset)
            if rc.kind == "private":
                continue
            yield Hit(rule="FT014", path=facts.path, line=call.line, col=call.col,
                      symbol=call.name, where=rc.phrase, function=fn.name,
                      severity=_severity(rc.kind))


_FAST_ITEMS = frozenset({"PySequence_Fast_ITEMS", "PySequence_Fast_GET_ITEM"})


def match_sequence_fast(facts: FileFacts, index: ProjectIndex,
                        selected: frozenset[str]) -> Iterator[Hit]:
    """FT020: for a list, PySequence_Fast returns the list itself; its items are read unlocked."""
    for fn in facts.functions:
        sources: dict[str, list[tuple[int, str]]] = {}
        for call in fn.calls:
            if call.name == "PySequence_Fast" and call.args:
                target = _assigned_local(fn, call)
                if target:
                    sources.setdefault(target, []).append((call.offset, call.args[0]))
        if not sources:
            continue
        reported: set[str] = set()
        for call in fn.calls:
            if call.name not in _FAST_ITEMS or not call.args:
                continue
            seq = normalise_expr(call.args[0])
            origin = [src for off, src in sources.get(seq, []) if off < call.offset]
            if not origin or seq in reported:
                continue
            original = origin[-1]
            orig_norm = normalise_expr(original)
            if in_region(fn.regions, call.offset, _CS_KINDS, orig_norm) or in_region(
                    fn.regions, call.offset, _CS_KINDS, seq):
                continue
            rc = classify_receiver(original, fn, facts, index, call.offset)
            if rc.kind == "private":
                continue
            reported.add(seq)
            yield Hit(rule="FT020", path=facts.path, line=call.line, col=call.col,
                      symbol=call.name, where=rc.phrase, function=fn.name)


_SET_ITEM = re.compile(r"^(PyList|PyTuple)_SET_ITEM$")


def match_set_item_macro(facts: FileFacts, index: ProjectIndex,
                         selected: frozenset[str]) -> Iterator[Hit]:
    """FT022: the unlocked SET_ITEM macros are only for filling containers nobody else sees."""
    for fn in facts.functions:
        for call in fn.calls:
            if not _SET_ITEM.match(call.name) or not call.args:
                continue
            rc = classify_receiver(call.args[0], fn, facts, index, call.offset)
            # Unknown-origin locals are usually containers built by a helper: not reported.
            if rc.kind not in ("shared", "param"):
                continue
            if in_region(fn.regions, call.offset, _CS_KINDS, normalise_expr(call.args[0])):
                continue
            if fn.name in index.init_only and rc.kind == "shared":
                continue
            yield Hit(rule="FT022", path=facts.path, line=call.line, col=call.col,
                      symbol=call.name, where=rc.phrase, function=fn.name,
                      severity=_severity(rc.kind))
