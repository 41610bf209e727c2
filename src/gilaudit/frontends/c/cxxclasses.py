"""C++ classes bound with pybind11 or nanobind, read from the module body's text: the Python
name, the C++ class, and the member functions and fields it exposes.

`py::class_<Counter>(m, "Counter").def("add", &Counter::add).def_readwrite("n", &Counter::n)`
makes `Counter::add` an entry point that runs with a shared instance, and `n` a field any
thread can assign without a lock: pybind11 and nanobind lock neither.
"""

from __future__ import annotations

import re

from gilaudit.frontends import textscan
from gilaudit.frontends.c.facts import TypeFact

__all__ = ["bound_classes"]

_CLASS = re.compile(r"\b(?:py|nb|pybind11|nanobind)::class_\s*<\s*([A-Za-z_][\w:]*)")
_NAME = re.compile(r"\(\s*[A-Za-z_][\w:]*\s*,\s*\"([^\"]+)\"")
_DEF = re.compile(
    r"\.\s*(def|def_readwrite|def_rw|def_property|def_prop_rw|def_readonly|def_ro|"
    r"def_property_readonly|def_prop_ro)\s*\(\s*\"([^\"]+)\"\s*,\s*&\s*([A-Za-z_][\w:]*)"
    r"(?:\s*,\s*&\s*([A-Za-z_][\w:]*))?")
_WRITABLE = frozenset({"def_readwrite", "def_rw"})
_FIELDS = frozenset({"def_readwrite", "def_rw", "def_readonly", "def_ro"})


def bound_classes(code: str, bare: str, index: textscan.LineIndex) -> list[TypeFact]:
    out: list[TypeFact] = []
    for m in _CLASS.finditer(bare):
        cls = m.group(1).split("::")[-1]
        # The chain ends at the first `;` outside brackets (lambdas bound in it have their own).
        end = textscan.top_level_spans(bare, m.end(), len(bare), ";")[0][1]
        name = _NAME.search(code, m.end(), min(end, m.end() + 400))
        entries: list[tuple[str, str]] = []
        for d in _DEF.finditer(code, m.end(), end):
            kind, pyname = d.group(1), d.group(2)
            for target in (d.group(3), d.group(4)):
                if not target or "::" not in target:
                    continue
                owner, member = target.rsplit("::", 1)
                if owner.split("::")[-1] != cls:
                    continue
                if kind in _FIELDS:
                    if kind in _WRITABLE:
                        entries.append((f"readwrite:{pyname}", member))
                else:
                    entries.append((f"method:{pyname}", f"{cls}::{member}"))
        if entries:
            out.append(TypeFact(name=name.group(1) if name else cls, methods=(), roles=(),
                                entries=tuple(entries), instance=cls,
                                line=index.line_col(m.start())[0]))
    return out
