"""FT145: C-API names that CPython removed before 3.13, used in the code a 3.13 build compiles.

The names are data (rules/removed-c-api.toml, generated from the headers of each version by
tools/removed_c_api.py); this matcher only looks them up in each file's `api_names` facts."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources

from gilaudit._toml import tomllib
from gilaudit.frontends.c.context import ProjectIndex
from gilaudit.frontends.c.facts import FileFacts, Mention
from gilaudit.frontends.contract import Hit
from gilaudit.model import Location, Note

__all__ = ["Removed", "match_removed_api", "removed_names"]


@dataclass(frozen=True, slots=True)
class Removed:
    name: str
    removed: str  # the first version whose public headers lack it
    internal: bool  # still in CPython's internal headers (reachable with Py_BUILD_CORE)
    use: str  # what to use instead ("" when the table names nothing)


# `Py_TYPE(o) = t`: the accessors stopped being l-values (the setters exist since 3.9).
_LVALUES = {
    "Py_TYPE": Removed("Py_TYPE", "3.11", False, "`Py_SET_TYPE(o, t)` (3.9; pythoncapi-compat)"),
    "Py_SIZE": Removed("Py_SIZE", "3.11", False, "`Py_SET_SIZE(o, n)` (3.9; pythoncapi-compat)"),
    "Py_REFCNT": Removed("Py_REFCNT", "3.10", False,
                         "`Py_SET_REFCNT(o, n)` (3.9; pythoncapi-compat)"),
}


# Defined by code built as part of CPython (or by an extension that borrows its internals).
_BUILD_CORE = frozenset({"Py_BUILD_CORE", "Py_BUILD_CORE_MODULE", "Py_BUILD_CORE_BUILTIN"})


@functools.cache
def removed_names() -> dict[str, Removed]:
    raw = (resources.files("gilaudit") / "rules" / "removed-c-api.toml").read_bytes()
    table = tomllib.loads(raw.decode("utf-8"))
    return {e["name"]: Removed(e["name"], e["removed"], bool(e.get("internal", False)),
                               str(e.get("use", "")))
            for e in table.get("removed", [])}


def _where(entry: Removed, *, lvalue: bool) -> str:
    if lvalue:
        said = f"is assigned to, and is no longer an l-value since CPython {entry.removed}"
    elif entry.internal:
        said = f"was removed from the public C API in CPython {entry.removed} " \
               "(it is internal to CPython now)"
    else:
        said = f"was removed from the C API in CPython {entry.removed}"
    return f"{said}; use {entry.use} instead" if entry.use else said


def match_removed_api(facts: FileFacts, index: ProjectIndex,
                      selected: frozenset[str]) -> Iterator[Hit]:
    """One finding per file, at its first removed name, with the others as notes: the file is
    ported as a whole, and a copy of an old CPython module can hold dozens of them."""
    table = removed_names()
    found: list[tuple[Mention, Removed, bool]] = []
    for m in facts.api_names:
        if m.detail == "=":
            entry = _LVALUES.get(m.name)
            if entry is not None:
                found.append((m, entry, True))
            continue
        removed = table.get(m.name) if not m.detail else None
        if removed is None or m.name in index.api_defined:
            continue
        if removed.internal and not _BUILD_CORE.isdisjoint(index.api_defined):
            continue
        found.append((m, removed, False))
    if not found:
        return
    found.sort(key=lambda f: f[0].offset)
    (first, entry, lvalue), rest = found[0], found[1:]
    where = _where(entry, lvalue=lvalue)
    if rest:
        where += f"; and {len(rest)} more removed name{'s' if len(rest) > 1 else ''} " \
                 "in this file (notes)"
    notes = tuple(Note(message=f"`{_symbol(m, lv)}` {_where(e, lvalue=lv)}",
                       location=Location(path=facts.path, line=m.line))
                  for m, e, lv in rest)
    yield Hit(rule="FT145", path=facts.path, line=first.line, col=first.col,
              symbol=_symbol(first, lvalue), where=where, notes=notes)


def _symbol(m: Mention, lvalue: bool) -> str:
    return f"{m.name}(...) =" if lvalue else m.name
