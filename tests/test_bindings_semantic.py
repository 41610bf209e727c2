"""With pybind11's headers at hand, module declarations are judged on the parsed code (the
type of each tag in PYBIND11_MODULE's expansion), not on its spelling."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import ScanJson

pybind11 = pytest.importorskip(
    "pybind11", reason="pybind11 is not installed: the libclang path for bindings needs its "
                       "headers (it is in the dev extras)")

SOURCE = """#include <pybind11/pybind11.h>
namespace py = pybind11;
using NoGil = py::mod_gil_not_used;
#define MY_TAGS py::mod_gil_not_used()
int add(int a, int b) { return a + b; }
PYBIND11_MODULE(alias_ok, m, NoGil()) { m.def("add", &add); }
PYBIND11_MODULE(macro_ok, m, MY_TAGS) { m.def("add", &add); }
PYBIND11_MODULE(plain, m) { m.def("add", &add); }
PYBIND11_MODULE(other_tag, m, py::multiple_interpreters::per_interpreter_gil()) {
    m.def("add", &add);
}
PYBIND11_MODULE(used, m, py::mod_gil_used()) { m.def("add", &add); }
"""


def test_tags_are_judged_by_type(scan_json: ScanJson, tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "bind.cpp").write_text(SOURCE)
    _code, report = scan_json(str(root), "-I", pybind11.get_include(),
                              "--select", "FT110,FT005")
    got = {(f["rule"], f["line"]) for f in report["findings"]}
    assert got == {("FT110", 8), ("FT110", 9), ("FT005", 12)}
    assert not [d for d in report["diagnostics"] if d["kind"] == "syntactic-only"]
    assert not [d for d in report["diagnostics"] if d["kind"] == "parse-error"], \
        report["diagnostics"]


def test_without_headers_the_syntactic_check_stands(scan_json: ScanJson,
                                                    tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    # A header the parse cannot find: the syntactic verdict is all there is.
    (root / "bind.cpp").write_text(SOURCE.replace("<pybind11/pybind11.h>",
                                                  "<pybind11/not_installed.h>"))
    _code, report = scan_json(str(root), "--select", "FT110,FT005")
    assert ("FT110", 8) in {(f["rule"], f["line"]) for f in report["findings"]}
    assert [d for d in report["diagnostics"] if d["kind"] == "syntactic-only"]


def test_installed_pybind11_headers_are_found_without_flags(scan_json: ScanJson,
                                                             tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "bind.cpp").write_text(SOURCE)
    _code, report = scan_json(str(root), "--select", "FT110,FT005")
    got = {(f["rule"], f["line"]) for f in report["findings"]}
    assert got == {("FT110", 8), ("FT110", 9), ("FT005", 12)}
    assert not [d for d in report["diagnostics"] if d["kind"] == "syntactic-only"]
