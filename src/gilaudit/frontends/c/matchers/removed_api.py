"""FT145 in C and C++: C-API names CPython removed before 3.13, used in the code a 3.13 build
compiles (the table and its wording: gilaudit.frontends.removed_api)."""

from __future__ import annotations

from collections.abc import Iterator

from gilaudit.frontends.c.context import ProjectIndex
from gilaudit.frontends.c.facts import FileFacts
from gilaudit.frontends.contract import Hit
from gilaudit.frontends.removed_api import BUILD_CORE, LVALUES, Use, file_hit, removed_names

__all__ = ["match_removed_api"]

def match_removed_api(facts: FileFacts, index: ProjectIndex,
                      selected: frozenset[str]) -> Iterator[Hit]:
    table = removed_names()
    uses: list[Use] = []
    for m in facts.api_names:
        if m.detail == "=":
            entry = LVALUES.get(m.name)
            if entry is not None:
                uses.append(Use(m.line, m.col, f"{m.name}(...) =", entry, lvalue=True))
            continue
        removed = table.get(m.name) if not m.detail else None
        if removed is None or m.name in index.api_defined:
            continue
        if removed.internal and not BUILD_CORE.isdisjoint(index.api_defined):
            continue
        uses.append(Use(m.line, m.col, m.name, removed))
    if uses:
        yield file_hit(facts.path, uses)
