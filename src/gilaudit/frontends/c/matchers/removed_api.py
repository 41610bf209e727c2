"""FT145 in C and C++: C-API names CPython removed before 3.13, used in the code a 3.13 build
compiles (the table and its wording: gilaudit.frontends.removed_api)."""

from __future__ import annotations

from collections.abc import Iterator

from gilaudit.frontends.c.context import ProjectIndex
from gilaudit.frontends.c.facts import FileFacts, Mention
from gilaudit.frontends.contract import Hit
from gilaudit.frontends.removed_api import BUILD_CORE, LVALUES, Removed, describe, removed_names
from gilaudit.model import Location, Note

__all__ = ["match_removed_api"]

def match_removed_api(facts: FileFacts, index: ProjectIndex,
                      selected: frozenset[str]) -> Iterator[Hit]:
    """One finding per file, at its first removed name, with the others as notes: the file is
    ported as a whole, and a copy of an old CPython module can hold dozens of them."""
    table = removed_names()
    found: list[tuple[Mention, Removed, bool]] = []
    for m in facts.api_names:
        if m.detail == "=":
            entry = LVALUES.get(m.name)
            if entry is not None:
                found.append((m, entry, True))
            continue
        removed = table.get(m.name) if not m.detail else None
        if removed is None or m.name in index.api_defined:
            continue
        if removed.internal and not BUILD_CORE.isdisjoint(index.api_defined):
            continue
        found.append((m, removed, False))
    if not found:
        return
    found.sort(key=lambda f: f[0].offset)
    (first, entry, lvalue), rest = found[0], found[1:]
    where = describe(entry, lvalue=lvalue)
    if rest:
        where += f"; and {len(rest)} more removed name{'s' if len(rest) > 1 else ''} " \
                 "in this file (notes)"
    notes = tuple(Note(message=f"`{_symbol(m, lv)}` {describe(e, lvalue=lv)}",
                       location=Location(path=facts.path, line=m.line))
                  for m, e, lv in rest)
    yield Hit(rule="FT145", path=facts.path, line=first.line, col=first.col,
              symbol=_symbol(first, lvalue), where=where, notes=notes)


def _symbol(m: Mention, lvalue: bool) -> str:
    return f"{m.name}(...) =" if lvalue else m.name
