"""C++ precision: functions that run only during module init are recognised through member
functions, namespaces and lambdas called from the init or exec function (kiwisolver's
`Variable::Ready()`), the pybind11 module body is module init, and file-scope C++ state
(statics, anonymous namespaces, class statics, standard containers) that a bound function
changes is reported like a C static. Each case is a fixture pair, compiled here with g++."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from conftest import FIXTURES, ScanJson
from test_rule_fixtures import _file_expectations

CXX = FIXTURES / "cxx"
PAIRS = [("ready_lazy.cpp", "ready_exec.cpp"), ("bound_fire.cpp", "bound_pass.cpp")]


def _pybind11_include() -> str:
    pybind11 = pytest.importorskip("pybind11")  # a development dependency: its headers only
    return str(pybind11.get_include())


@pytest.mark.parametrize("name", [n for pair in PAIRS for n in pair])
def test_fixture_is_valid_cxx(name: str) -> None:
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("no C++ compiler on PATH: the fixtures cannot be compiled")
    cmd = [gxx, "-std=c++17", "-fsyntax-only", f"-I{sysconfig.get_paths()['include']}",
           f"-I{_pybind11_include()}", str(CXX / name)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def _ft040(scan_json: ScanJson, path: Path) -> set[tuple[str, int | None, str]]:
    _code, report = scan_json(str(path), "--select", "FT040", "-I", _pybind11_include(),
                              "--offline")
    bad = [d for d in report["diagnostics"] if d["kind"] in ("parse-error", "missing-header")]
    assert not bad, bad
    assert report["files"][path.name] == "parsed"
    return {(f["path"], f["line"], f["rule"]) for f in report["findings"]}


@pytest.mark.parametrize(("fire", "quiet"), PAIRS)
def test_fires_where_expected(fire: str, quiet: str, scan_json: ScanJson) -> None:
    assert _ft040(scan_json, CXX / fire) == _file_expectations(CXX / fire, fire)


@pytest.mark.parametrize(("fire", "quiet"), PAIRS)
def test_stays_silent(fire: str, quiet: str, scan_json: ScanJson) -> None:
    assert _ft040(scan_json, CXX / quiet) == set()


def test_refcount_check_in_an_assert_is_a_warning_that_says_why(scan_json: ScanJson) -> None:
    """greenlet's `assert(Py_REFCNT(o) == 1)`: compiled out of release builds (NDEBUG), so at
    most a warning, and the message says so; the same check outside an assert stays an
    error. (A fresh object's check is not reported at all: FT030/pass.c.)"""
    fire = FIXTURES / "rules" / "FT030" / "fire.c"
    _code, report = scan_json(str(fire), "--select", "FT030", "-I", str(FIXTURES / "rules"))
    text = fire.read_text().splitlines()
    by_line = {f["line"]: f for f in report["findings"]}
    in_assert = [n for n, line in enumerate(text, 1) if "assert(Py_REFCNT" in line]
    assert in_assert and all(by_line[n]["severity"] == "warning" for n in in_assert)
    assert all("release builds compile out" in by_line[n]["message"] for n in in_assert)
    others = [f for n, f in by_line.items() if n not in in_assert]
    assert others and all(f["severity"] == "error" for f in others)


def test_a_windows_only_source_is_not_parsed_elsewhere(tmp_path: Path,
                                                       scan_json: ScanJson) -> None:
    """enaml's winutil.cpp includes <windows.h> unconditionally: its build compiles it on
    Windows only, so here it is skipped, not reported as a unit that fails to parse; one that
    includes it under `#ifdef _WIN32` is parsed."""
    (tmp_path / "winutil.cpp").write_text(
        "#include <windows.h>\n#include <Python.h>\nstatic UINT n;\n"
        "PyObject *f(PyObject *o) { return Py_NewRef(o); }\n")
    (tmp_path / "both.cpp").write_text(
        "#ifdef _WIN32\n#include <windows.h>\n#endif\n#include <Python.h>\n"
        "PyObject *g(PyObject *o) { return Py_NewRef(o); }\n")
    _code, report = scan_json(str(tmp_path))
    assert report["files"]["winutil.cpp"].startswith("skipped: Windows-only source")
    assert report["files"]["both.cpp"] == "parsed", report["diagnostics"]


def test_the_c_apis_vendored_backports_are_not_the_projects_code(tmp_path: Path,
                                                                 scan_json: ScanJson) -> None:
    """multidict and bitarray vendor pythoncapi_compat.h, whose `PyLongWriter_Discard` asserts
    `Py_REFCNT(obj) == 1` on the writer it is given: CPython's own backport, not a finding of
    the project. The same check in the project's own file is still reported."""
    proj = tmp_path / "p"
    proj.mkdir()
    check = ("static PyObject *{name}(PyObject *m, PyObject *a)\n"
             "{{ if (Py_REFCNT(a) == 1) {{ return Py_NewRef(a); }} Py_RETURN_NONE; }}\n")
    (proj / "pythoncapi_compat.h").write_text(
        "#include <Python.h>\n" + check.format(name="shim_unique"))
    (proj / "m.c").write_text('#include "pythoncapi_compat.h"\n' + check.format(name="own"))
    _code, report = scan_json(str(proj), "--select", "FT030")
    assert [(f["path"], f["function"]) for f in report["findings"]] == [("m.c", "own")], \
        report["findings"]


def test_a_kept_copy_of_a_source_the_module_includes_is_not_analysed(
        tmp_path: Path, scan_json: ScanJson) -> None:
    """frozendict keeps CPython's `dictobject_original.c` beside the `dictobject.c` its module
    includes; nothing compiles the copy (an independent review found 9 false findings in it).
    A file with such a name whose original is not in the tree is still analysed."""
    proj = tmp_path / "fd"
    (proj / "Objects").mkdir(parents=True)
    racy = ("#include <Python.h>\nstatic long calls;\n"
            "PyObject *{name}(PyObject *m, PyObject *a) {{ calls++; Py_RETURN_NONE; }}\n")
    (proj / "Objects" / "dictobject.c").write_text(racy.format(name="dict_call"))
    (proj / "Objects" / "dictobject_original.c").write_text(racy.format(name="orig_call"))
    (proj / "Objects" / "lone_old.c").write_text(racy.format(name="lone_call"))
    (proj / "m.c").write_text('#include "Objects/dictobject.c"\n')
    # contourpy builds `mpl2005_original.cpp` beside `mpl2005.cpp`, a unit of its own, and
    # includes `mpl2005_original.h`: a live part, not a copy
    (proj / "src").mkdir()
    (proj / "src" / "mpl.c").write_text(racy.format(name="mpl_call"))
    (proj / "src" / "mpl_original.h").write_text("long mpl_original_call(void);\n")
    (proj / "src" / "mpl_original.c").write_text(
        '#include "mpl_original.h"\n' + racy.format(name="mpl_original_call"))
    _code, report = scan_json(str(proj), "--select", "FT040")
    assert report["files"]["Objects/dictobject_original.c"] == (
        "skipped: a kept copy of Objects/dictobject.c, which m.c includes")
    paths = {f["path"] for f in report["findings"]}
    assert "Objects/dictobject_original.c" not in paths
    assert {"Objects/lone_old.c", "src/mpl_original.c"} <= paths, report["findings"]


def test_a_vendored_projects_own_test_suite_is_not_analysed(tmp_path: Path,
                                                            scan_json: ScanJson) -> None:
    """pylibczirw keeps pybind11 as a submodule in `libs/pybind11`; pybind11's `tests/` build
    only when pybind11 is the top-level project (an independent review found 6 false
    findings there). The project's own tests, and a vendored library's sources, are still
    analysed."""
    racy = ("#include <Python.h>\nstatic long calls;\n"
            "PyObject *{name}(PyObject *m, PyObject *a) {{ calls++; Py_RETURN_NONE; }}\n")
    proj = tmp_path / "pkg"
    (proj / "libs" / "pybind11" / "tests").mkdir(parents=True)
    (proj / "libs" / "pybind11" / "src").mkdir()
    (proj / "tests").mkdir()
    (proj / "CMakeLists.txt").write_text("add_subdirectory(libs/pybind11)\n")
    (proj / "libs" / "pybind11" / "CMakeLists.txt").write_text("project(pybind11)\n")
    (proj / "libs" / "pybind11" / "tests" / "test_methods.c").write_text(
        racy.format(name="vendored_test"))
    (proj / "libs" / "pybind11" / "src" / "lib.c").write_text(racy.format(name="vendored_lib"))
    (proj / "tests" / "own.c").write_text(racy.format(name="own_test"))
    # review 17: msprime vendors tskit, whose `python/lwt_interface/example_c_module.c` only
    # tskit's tests build; OpenCC vendors marisa, whose SWIG wrapper is generated code
    (proj / "libs" / "pybind11" / "lwt").mkdir()
    (proj / "libs" / "pybind11" / "lwt" / "example_c_module.c").write_text(
        racy.format(name="vendored_example"))
    (proj / "libs" / "pybind11" / "src" / "swig_wrap.c").write_text(
        "/* This file was automatically generated by SWIG (https://www.swig.org). */\n"
        + racy.format(name="swig_wrapper"))
    _code, report = scan_json(str(proj), "--select", "FT040")
    assert report["files"]["libs/pybind11/lwt/example_c_module.c"].startswith(
        "skipped: the tests or examples of")
    assert report["files"]["libs/pybind11/src/swig_wrap.c"] == "skipped: generated code"
    assert report["files"]["libs/pybind11/tests/test_methods.c"] == (
        "skipped: the tests or examples of libs/pybind11, a project of its own")
    assert {f["function"] for f in report["findings"]} == {"vendored_lib", "own_test"}, \
        report["findings"]


def test_a_template_for_users_to_copy_is_not_analysed(tmp_path: Path,
                                                      scan_json: ScanJson) -> None:
    """pyo ships `externals/externalmodule-template.c`, a starting point for users' own
    modules that its setup.py never builds (review 16). A template another source includes
    is a fragment, analysed in its includer; a file whose name merely contains the word is a
    source like any other."""
    racy = ("#include <Python.h>\nstatic long calls;\n"
            "PyObject *{name}(PyObject *m, PyObject *a) {{ calls++; Py_RETURN_NONE; }}\n")
    proj = tmp_path / "pkg"
    (proj / "externals").mkdir(parents=True)
    (proj / "externals" / "externalmodule-template.c").write_text(racy.format(name="tmpl"))
    (proj / "templated.c").write_text(racy.format(name="templated"))
    _code, report = scan_json(str(proj), "--select", "FT040")
    assert report["files"]["externals/externalmodule-template.c"] == (
        "skipped: a template for users to copy, which nothing includes")
    assert {f["function"] for f in report["findings"]} == {"templated"}, report["findings"]
