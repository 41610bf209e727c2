"""Prefer what the compiler saw over what the text says, for pybind11 module declarations.

The bindings front end reads `PYBIND11_MODULE(name, m, tags...)` syntactically, so a tag it
cannot read (an alias, a variable, a macro) leaves it undecided. When this front end parsed the
same file with pybind11's headers, it knows the type of every tag in the expansion: its verdict
settles the declaration rules at that place (see ``contract.settle``), and the bindings front
end's "syntactic-only" diagnostic for the file goes.
"""

from __future__ import annotations

from gilaudit.frontends.c.facts import FileFacts
from gilaudit.frontends.contract import Hit

__all__ = ["DECLARATION_RULES", "semantic_binding_hits"]

DECLARATION_RULES = frozenset({"FT110", "FT005"})


def semantic_binding_hits(
        facts: list[FileFacts]) -> tuple[list[Hit], frozenset[tuple[str, str, int]]]:
    """The declaration hits the parsed expansions show, and the places they settle."""
    hits: list[Hit] = []
    settles: set[tuple[str, str, int]] = set()
    for f in facts:
        for module, line, col, verdict in f.bindings:
            settles.update((rule, f.path, line) for rule in sorted(DECLARATION_RULES))
            if verdict == "none":
                hits.append(Hit(rule="FT110", path=f.path, line=line, col=col,
                                symbol="PYBIND11_MODULE", where=module))
            elif verdict == "used":
                hits.append(Hit(rule="FT005", path=f.path, line=line, col=col,
                                symbol="py::mod_gil_used()", where=module))
    return hits, frozenset(settles)
