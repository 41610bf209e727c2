"""How each module declares (or fails to declare) that it runs without the GIL: FT001-FT009."""

from __future__ import annotations

from collections.abc import Iterator

from gilaudit.frontends.c.context import ProjectIndex, normalise_expr
from gilaudit.frontends.c.facts import CallSite, FileFacts, ModuleDefFact, SlotEntry
from gilaudit.frontends.contract import Hit
from gilaudit.model import Location, Note

__all__ = [
    "declarations",
    "match_mod_gil_slots",
    "match_module_create",
    "match_setgil_guard",
]

_CREATE = frozenset({"PyModule_Create", "PyModule_Create2"})
_MULTI_PHASE = frozenset({"PyModuleDef_Init", "PyModule_FromDefAndSpec",
                          "PyModule_FromDefAndSpec2"})


def _inactive_notes(facts: FileFacts, names: tuple[str, ...]) -> tuple[Note, ...]:
    return tuple(
        Note(message=f"`{m.name}` here is in a preprocessor branch that the free-threaded build "
                     "does not compile",
             location=Location(path=facts.path, line=m.line, column=m.col))
        for m in facts.inactive if m.name in names
    )


def _module_name(facts: FileFacts, index: ProjectIndex, fallback: str) -> str:
    return index.file_module.get(facts.path) or fallback or facts.path


def _multi_phase_defs(facts: FileFacts) -> list[ModuleDefFact]:
    passed = {normalise_expr(c.args[0]) for fn in facts.functions for c in fn.calls
              if c.name in _MULTI_PHASE and c.args}
    created = {normalise_expr(c.args[0]) for fn in facts.functions for c in fn.calls
               if c.name in _CREATE and c.args}
    return [d for d in facts.module_defs
            if (d.slots or d.var in passed) and d.var not in created]


def match_mod_gil_slots(facts: FileFacts, index: ProjectIndex,
                        selected: frozenset[str]) -> Iterator[Hit]:
    """FT001 (no slot), FT004 (slot not version-guarded), FT005 (GIL_USED), FT006 (twice)."""
    arrays = dict(facts.slot_arrays)
    guards = dict(facts.guards)
    for d in _multi_phase_defs(facts):
        entries: tuple[SlotEntry, ...] = arrays.get(d.slots, ())
        gil = [e for e in entries if e.slot == "Py_mod_gil"]
        module = _module_name(facts, index, d.module)
        if not gil:
            yield Hit(rule="FT001", path=facts.path, line=d.line, col=d.col, symbol=d.var,
                      where=module, notes=_inactive_notes(facts, ("Py_mod_gil",)))
    for _name, entries in facts.slot_arrays:
        gil = [e for e in entries if e.slot == "Py_mod_gil"]
        for extra in gil[1:]:
            yield Hit(rule="FT006", path=facts.path, line=extra.line, col=extra.col,
                      symbol="Py_mod_gil", where="",
                      notes=(Note(message="first Py_mod_gil slot here",
                                  location=Location(path=facts.path, line=gil[0].line,
                                                    column=gil[0].col)),))
        for e in gil:
            module = _module_name(facts, index, "")
            if "Py_MOD_GIL_USED" in e.value:
                yield Hit(rule="FT005", path=facts.path, line=e.line, col=e.col,
                          symbol="Py_MOD_GIL_USED", where=module)
            conds = guards.get(e.line, e.guards)
            guarded = any(k in c for c in conds
                          for k in ("PY_VERSION_HEX", "Py_GIL_DISABLED", "Py_mod_gil"))
            if not guarded and index.supports_before_313:
                yield Hit(rule="FT004", path=facts.path, line=e.line, col=e.col,
                          symbol="Py_mod_gil", where=module)


def _setgil_calls(facts: FileFacts) -> list[tuple[str, CallSite]]:
    return [(fn.name, c) for fn in facts.functions for c in fn.calls
            if c.name == "PyUnstable_Module_SetGIL"]


def match_module_create(facts: FileFacts, index: ProjectIndex,
                        selected: frozenset[str]) -> Iterator[Hit]:
    """FT002 (single-phase init without SetGIL), FT009 (single-phase init under the limited
    API, which abi3t will not load). Module creation may sit in a helper that PyInit calls."""
    init = [fn for fn in facts.functions
            if fn.name.startswith("PyInit_") or fn.name in index.init_only]
    creates = [(fn, c) for fn in init for c in fn.calls if c.name in _CREATE]
    if not creates:
        return
    declared = any(c.name == "PyUnstable_Module_SetGIL" and len(c.args) > 1
                   for fn in init for c in fn.calls)
    for fn, c in creates:
        module = _module_name(facts, index, fn.name.removeprefix("PyInit_"))
        if facts.limited_api:
            yield Hit(rule="FT009", path=facts.path, line=c.line, col=c.col, symbol=c.name,
                      where=module, function=fn.name)
    if not declared:
        fn, c = creates[0]
        module = _module_name(facts, index, fn.name.removeprefix("PyInit_"))
        yield Hit(rule="FT002", path=facts.path, line=c.line, col=c.col, symbol=c.name,
                  where=module, function=fn.name,
                  notes=_inactive_notes(facts, ("PyUnstable_Module_SetGIL",)))


def match_setgil_guard(facts: FileFacts, index: ProjectIndex,
                       selected: frozenset[str]) -> Iterator[Hit]:
    """FT003 (SetGIL not under Py_GIL_DISABLED), FT005 (SetGIL with GIL_USED)."""
    guards = dict(facts.guards)
    for fname, c in _setgil_calls(facts):
        conds = guards.get(c.line, ())
        if not any("Py_GIL_DISABLED" in cond for cond in conds):
            yield Hit(rule="FT003", path=facts.path, line=c.line, col=c.col,
                      symbol=c.name, function=fname)
        if len(c.args) > 1 and "Py_MOD_GIL_USED" in c.args[1]:
            yield Hit(rule="FT005", path=facts.path, line=c.line, col=c.col,
                      symbol="Py_MOD_GIL_USED", where=_module_name(facts, index, ""),
                      function=fname)


def declarations(facts: FileFacts) -> list[tuple[int, int]]:
    """(line, column) of every Py_MOD_GIL_NOT_USED declaration in the file: for FT008."""
    out = [(e.line, e.col) for _n, entries in facts.slot_arrays for e in entries
           if e.slot == "Py_mod_gil" and "Py_MOD_GIL_NOT_USED" in e.value]
    out += [(c.line, c.col) for _f, c in _setgil_calls(facts)
            if len(c.args) > 1 and "Py_MOD_GIL_NOT_USED" in c.args[1]]
    return out
