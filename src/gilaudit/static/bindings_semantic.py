"""Prefer what the compiler saw over what the text says, for pybind11 module declarations.

The bindings front end reads `PYBIND11_MODULE(name, m, tags...)` syntactically, so a tag it
cannot read (an alias, a variable, a macro) leaves it undecided. When the C++ front end parsed
the same file with pybind11's headers, it knows the type of every tag in the expansion; its
verdict replaces the syntactic one for that module, and the "syntactic-only" diagnostic goes.
"""

from __future__ import annotations

from dataclasses import replace

from gilaudit.frontend import FrontEndResult
from gilaudit.static.context import Hit
from gilaudit.static.facts import FileFacts

__all__ = ["prefer_semantic_bindings"]

_DECLARATION_RULES = frozenset({"FT110", "FT005"})


def prefer_semantic_bindings(extra: FrontEndResult, facts: list[FileFacts]) -> FrontEndResult:
    judged = {(f.path, line) for f in facts for _m, line, _c, _v in f.bindings}
    if not judged:
        return extra
    paths = {p for p, _line in judged}
    hits = [h for h in extra.hits
            if not (h.rule in _DECLARATION_RULES and (h.path, h.line) in judged)]
    for f in facts:
        known = extra.modules.get(f.path, "")
        for module, line, col, verdict in f.bindings:
            dotted = known if known.rsplit(".", 1)[-1] == module else module
            if verdict == "none":
                hits.append(Hit(rule="FT110", path=f.path, line=line, col=col,
                                symbol="PYBIND11_MODULE", where=dotted))
            elif verdict == "used":
                hits.append(Hit(rule="FT005", path=f.path, line=line, col=col,
                                symbol="py::mod_gil_used()", where=dotted))
    diagnostics = tuple(d for d in extra.diagnostics
                        if not (d.kind == "syntactic-only" and d.path in paths))
    return replace(extra, hits=tuple(hits), diagnostics=diagnostics)
