"""The bindings front end: how pybind11, nanobind, PyO3 and f2py modules declare (or fail to
declare) free-threading support, and whether the build pins a generator too old to declare it.

Rules: FT110 (pybind11 tag), FT113 (nanobind ``FREE_THREADED``), FT115 (PyO3), FT118 (f2py),
FT119 (generator too old), and FT005 for their explicit opt-outs. Every check is syntactic: no
compiler, no Rust toolchain, nothing of the target is run. The C/C++ front end parses the same
C++ files for the C API rules; this one only reads the module macros.
"""

from __future__ import annotations

import posixpath

from gilaudit.frontends.bindings.cxxrules import check_cxx
from gilaudit.frontends.bindings.f2py import check_f2py, f2py_runs
from gilaudit.frontends.bindings.pyo3 import check_pyo3
from gilaudit.frontends.bindings.requirements import check_requirements
from gilaudit.frontends.buildfiles import BuildFiles
from gilaudit.frontends.buildfiles.reader import Reader, hash_suppressions
from gilaudit.frontends.contract import FrontEndResult, Hit, TargetView

__all__ = ["RULES", "analyse"]

RULES = frozenset({"FT005", "FT110", "FT113", "FT115", "FT118", "FT119"})
# Files whose presence marks the root of a vendored copy of a binding generator.
_GENERATOR_MARKERS = ("include/pybind11/pybind11.h", "include/nanobind/nanobind.h")


def _vendor_roots(reader: Reader) -> frozenset[str]:
    """Directories holding a copy of pybind11, nanobind or PyO3 itself (their tests and
    examples declare modules that are not the target's)."""
    roots: set[str] = set()
    for path in reader.paths:
        for marker in _GENERATOR_MARKERS:
            if path == marker or path.endswith("/" + marker):
                roots.add(path[: -len(marker)].rstrip("/"))
        if posixpath.basename(path) == "Cargo.toml":
            head = (reader.raw(path) or b"")[:4096]
            if b'name = "pyo3"' in head or b'name = "pyo3-ffi"' in head:
                roots.add(posixpath.dirname(path))
    return frozenset(r for r in roots if r)


def analyse(view: TargetView) -> FrontEndResult:
    selected = view.config.selected
    if not RULES & selected:
        return FrontEndResult()
    reader = Reader(view)
    builds = BuildFiles(reader=reader, report=True, vendor_roots=_vendor_roots(reader))
    hits: list[Hit] = []
    cxx = check_cxx(view, builds)
    pyo3 = check_pyo3(view, builds)
    runs = f2py_runs(builds)
    hits += cxx.hits + pyo3.hits + check_f2py(runs)
    if "FT119" in selected:
        hits += check_requirements(builds, uses_f2py=bool(runs), uses_pybind11=cxx.pybind11,
                                   uses_nanobind=cxx.nanobind)
    suppressions = {**cxx.suppressions, **pyo3.suppressions}
    # Build files (CMake, meson, TOML, setup.py) carry `# gilaudit: ignore[...]` comments.
    for path in sorted(({h.path for h in hits} | set(reader.status)) - set(suppressions)):
        text = reader.text(path, count=False)
        if text is not None:
            suppressions[path] = hash_suppressions(text)
    return FrontEndResult(
        hits=tuple(h for h in hits if h.rule in selected),
        diagnostics=tuple(cxx.diagnostics + pyo3.diagnostics + reader.diagnostics),
        files=dict(reader.status),
        modules={**cxx.modules, **pyo3.modules},
        suppressions=suppressions,
        lines=cxx.lines + pyo3.lines + reader.lines,
    )
