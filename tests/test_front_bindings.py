"""The bindings front end, called directly: pybind11/nanobind/PyO3/f2py declarations, the
generator versions a build allows, and bad input that must become diagnostics."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from gilaudit.buildinfo import read_build_info
from gilaudit.config import Config
from gilaudit.discover import discover
from gilaudit.frontends import bindings as front_bindings
from gilaudit.frontends.bindings.cargo import cargo_interval
from gilaudit.frontends.bindings.clex import evaluate_condition, scan_c
from gilaudit.frontends.bindings.cxx import find_declarations
from gilaudit.frontends.bindings.requirements import forced_below
from gilaudit.frontends.bindings.rust import find_pymodules
from gilaudit.frontends.contract import FrontEndResult, TargetView
from gilaudit.rulebook import load_rulebook

BOOK = load_rulebook()


def _write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def _analyse(root: Path, files: dict[str, str | bytes], *,
             select: frozenset[str] | None = None) -> FrontEndResult:
    _write(root, files)
    project = discover(root, max_file_size=4 * 1024 * 1024)
    config = Config(selected=select if select is not None else frozenset(BOOK.rules))
    view = TargetView(root=root, files=project.sources + project.others, config=config,
                      build=read_build_info(root, project.build_files))
    return front_bindings.analyse(view)


def _found(result: FrontEndResult) -> set[tuple[str, str, int]]:
    return {(h.rule, h.path, h.line) for h in result.hits}


# --- the C/C++ tokenizer -------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "rest", "value"), [
    ("ifdef", "Py_GIL_DISABLED", True),
    ("ifndef", "Py_GIL_DISABLED", False),
    ("if", "defined(Py_GIL_DISABLED)", True),
    ("if", "!defined(Py_GIL_DISABLED)", False),
    ("if", "0", False),
    ("if", "1", True),
    ("if", "defined(Py_GIL_DISABLED) && PY_VERSION_HEX >= 0x030D0000", None),
    ("if", "0 && defined(FOO)", False),
    ("if", "defined(Py_GIL_DISABLED) || FOO", True),
    ("if", "PYBIND11_VERSION_HEX >= 0x020D0000", None),
    ("ifdef", "SOMETHING_ELSE", None),
    ("if", "(", None),
])
def test_conditions_are_followed_no_further_than_needed(kind: str, rest: str,
                                                        value: bool | None) -> None:
    assert evaluate_condition(kind, rest) is value


def test_tokenizer_blanks_comments_strings_and_dead_branches() -> None:
    text = ('// PYBIND11_MODULE(a, m)\n'
            'auto s = "PYBIND11_MODULE(b, m)"; auto r = R"x(PYBIND11_MODULE(c, m))x";\n'
            'int n = 1\'000\'000; char q = \'"\';\n'
            '#if 0\nPYBIND11_MODULE(d, m) {}\n#elif defined(Py_GIL_DISABLED)\nlive1\n'
            '#else\ndead2\n#endif\n'
            '#ifdef Py_GIL_DISABLED\nlive2\n#else\ndead3\n#endif\n')
    c = scan_c(text)
    assert "PYBIND11_MODULE" not in c.code.split("\n")[0]
    assert c.code.count("PYBIND11_MODULE") == 1  # only the one inside #if 0 remains as code
    lines = text.split("\n")
    dead = {lines[n - 1] for n in c.dead_lines}
    assert {"PYBIND11_MODULE(d, m) {}", "dead2", "dead3"} <= dead
    assert not {"live1", "live2"} & dead
    assert len(c.code) == len(text)  # offsets are preserved


def test_pybind11_tags_are_classified() -> None:
    text = ("PYBIND11_MODULE(a, m, py::mod_gil_not_used()) {}\n"
            "PYBIND11_MODULE(b, m, ::pybind11::mod_gil_not_used( true )) {}\n"
            "PYBIND11_MODULE(c, m, py::mod_gil_not_used(false)) {}\n"
            "PYBIND11_MODULE(d, m, py::mod_gil_used()) {}\n"
            "PYBIND11_MODULE(e, m, py::multiple_interpreters::shared_gil()) {}\n"
            "PYBIND11_MODULE(f, m, SOME_TAGS) {}\n"
            "PYBIND11_MODULE(g, m) {}\n"
            "x.PYBIND11_MODULE(h, m);\n")
    decls, _ = find_declarations(text)
    assert {d.name: d.tag for d in decls} == {
        "a": "not-used", "b": "not-used", "c": "used", "d": "used", "e": "none",
        "f": "unknown", "g": "none"}


# --- pybind11 and nanobind, project-wide ---------------------------------------------------

def test_pybind11_findings_modules_and_diagnostics(tmp_path: Path) -> None:
    result = _analyse(tmp_path, {
        "setup.py": ("from pybind11.setup_helpers import Pybind11Extension\n"
                     "from setuptools import setup\n"
                     "setup(ext_modules=[Pybind11Extension('spam._core', ['src/bind.cpp'])])\n"),
        "src/bind.cpp": ("#include <pybind11/pybind11.h>\n"
                         "PYBIND11_MODULE(_core, m) {}  // gilaudit: ignore[FT110] audited\n"
                         "PYBIND11_MODULE(_used, m, py::mod_gil_used()) {}\n"),
        "src/other.cpp": "int f(void) { return 0; }\n",
    })
    assert _found(result) == {("FT110", "src/bind.cpp", 2), ("FT005", "src/bind.cpp", 3)}
    hit = next(h for h in result.hits if h.rule == "FT110")
    assert hit.where == "spam._core" and hit.symbol == "PYBIND11_MODULE"
    assert result.modules == {"src/bind.cpp": "spam._core"}
    sup = result.suppressions["src/bind.cpp"]
    assert [(s.line, s.ids) for s in sup] == [(2, ("FT110",))]
    kinds = [(d.path, d.kind) for d in result.diagnostics]
    assert kinds == [("src/bind.cpp", "syntactic-only")]
    assert "src/other.cpp" not in result.modules


def test_unselected_rules_do_no_work(tmp_path: Path) -> None:
    result = _analyse(tmp_path, {"src/bind.cpp": "PYBIND11_MODULE(_core, m) {}\n"},
                      select=frozenset({"FT010"}))
    assert result == FrontEndResult()


def test_vendored_generators_are_not_the_target(tmp_path: Path) -> None:
    result = _analyse(tmp_path, {
        "third_party/lib/bind.cpp": "PYBIND11_MODULE(theirs, m) {}\n",
        "docs/snippets/example.cpp": "PYBIND11_MODULE(doc_example, m) {}\n",
        "pybind11/include/pybind11/pybind11.h": "#pragma once\n",
        "pybind11/include/pybind11/detail/common.h": (
            "#define PYBIND11_VERSION_MAJOR 2\n#define PYBIND11_VERSION_MINOR 13\n"),
        "pybind11/tests/test_x.cpp": "PYBIND11_MODULE(pybind11_tests, m) {}\n",
        "src/bind.cpp": "PYBIND11_MODULE(mine, m, py::mod_gil_not_used()) {}\n",
    })
    assert _found(result) == set()


def test_nanobind_without_cmake(tmp_path: Path) -> None:
    result = _analyse(tmp_path, {"src/bind.cpp": "NB_MODULE(_core, m) {}\n"})
    assert _found(result) == {("FT113", "src/bind.cpp", 1)}


@pytest.mark.parametrize("extra", [
    {"meson.build": "project('x', 'cpp')\nnanobind_dep = dependency('nanobind')\n"},
    {"setup.py": "from setuptools import Extension\n"
                 "Extension('x', ['src/bind.cpp'], define_macros=[('NB_FREE_THREADED', None)])\n"},
    {"CMakeLists.txt": "nanobind_build_library(nanobind-static-ft)\n"},
    {"CMakeLists.txt": "nanobind_add_module(other_target src/other.cpp)\n"},
])
def test_nanobind_undecidable_builds_are_not_judged(tmp_path: Path,
                                                    extra: dict[str, str | bytes]) -> None:
    result = _analyse(tmp_path, {"src/bind.cpp": "NB_MODULE(_core, m) {}\n", **extra})
    assert not [h for h in result.hits if h.rule == "FT113"]


def test_nanobind_variable_target_is_decided_on_its_options(tmp_path: Path) -> None:
    cmake = ("function(add_ext name)\n"
             "  nanobind_add_module(${name} NB_STATIC ${ARGN})\n"
             "endfunction()\n"
             "add_ext(_core src/bind.cpp)\n")
    result = _analyse(tmp_path, {"src/bind.cpp": "NB_MODULE(_core, m) {}\n",
                                 "CMakeLists.txt": cmake})
    assert not result.hits  # ${ARGN} may carry FREE_THREADED
    result = _analyse(tmp_path, {"CMakeLists.txt": cmake.replace(" ${ARGN}", " src/bind.cpp")})
    assert _found(result) == {("FT113", "CMakeLists.txt", 2)}


# --- PyO3 ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("requirement", "low", "high"), [
    ("0.22", (0, 22, 0), (0, 23, 0)),
    ("^0.22.3", (0, 22, 3), (0, 23, 0)),
    ("~0.23", (0, 23, 0), (0, 24, 0)),
    ("=0.22", (0, 22, 0), (0, 23, 0)),
    ("0.22.*", (0, 22, 0), (0, 23, 0)),
    (">=0.21, <0.24", (0, 21, 0), (0, 24, 0)),
    ("<=0.22", (0, 0, 0), (0, 23, 0)),
    (">0.22", (0, 23, 0), None),
    ("1.2", (1, 2, 0), (2, 0, 0)),
    ("0.0.3", (0, 0, 3), (0, 0, 4)),
    ("0.23.0-beta.1", (0, 23, 0), (0, 24, 0)),
])
def test_cargo_requirements_follow_cargo_not_pep440(
        requirement: str, low: tuple[int, int, int],
        high: tuple[int, int, int] | None) -> None:
    iv = cargo_interval(requirement)
    assert iv is not None and iv.low == low
    assert iv.high == high if high is not None else iv.high[0] > 1000


def test_cargo_requirement_garbage() -> None:
    assert cargo_interval("latest") is None
    assert cargo_interval("") is None


def test_rust_lexer_tells_lifetimes_from_chars() -> None:
    text = ("fn f<'a>(x: &'a str) -> char { '\\'' }\n"
            "/* outer /* inner */ #[pymodule] fn hidden() {} */\n"
            "const S: &[u8] = br##\"#[pymodule] fn raw() {}\"##;\n"
            "#[pymodule]\nfn real(m: &Bound<'_, PyModule>) {}\n")
    decls, _ = find_pymodules(text)
    assert [(d.item, d.line) for d in decls] == [("real", 4)]


CRATE = '[package]\nname = "x"\nversion = "0.1.0"\n\n[dependencies]\npyo3 = {req}\n'
LIB = ("use pyo3::prelude::*;\n#[pymodule]\n"
       "fn _x(m: &Bound<'_, PyModule>) -> PyResult<()> {{ Ok(()) }}\n")


@pytest.mark.parametrize(("requirement", "lock", "expected"), [
    ('"0.22"', None, {("FT115", "Cargo.toml", 6)}),
    ('"0.25"', None, {("FT115", "src/lib.rs", 2)}),
    ('"0.28"', None, set()),
    ('">=0.25"', None, set()),  # not settled: not judged
    ('">=0.25"', "0.27.1", {("FT115", "src/lib.rs", 2)}),
    ('">=0.25"', "0.28.0", set()),
    ('"0.25"', "0.29.0", {("FT115", "src/lib.rs", 2)}),  # stale lock: the requirement wins
    ('{ git = "https://github.com/PyO3/pyo3" }', None, set()),
])
def test_pyo3_versions(tmp_path: Path, requirement: str, lock: str | None,
                       expected: set[tuple[str, str, int]]) -> None:
    files: dict[str, str | bytes] = {"Cargo.toml": CRATE.format(req=requirement),
                                     "src/lib.rs": LIB.format()}
    if lock:
        files["Cargo.lock"] = f'version = 4\n[[package]]\nname = "pyo3"\nversion = "{lock}"\n'
    result = _analyse(tmp_path, files)
    assert _found(result) == expected
    assert result.modules == {"src/lib.rs": "_x"}
    message = next(d.message for d in result.diagnostics if d.kind == "syntactic-only")
    assert ("not judged" in message) == (not expected and "0.28" not in requirement
                                         and lock != "0.28.0")


def test_pyo3_gil_used_true_is_the_explicit_opt_out(tmp_path: Path) -> None:
    result = _analyse(tmp_path, {
        "Cargo.toml": CRATE.format(req='"0.26"'),
        "src/lib.rs": "#[pymodule(gil_used = true)]\nfn _x() {}\n",
        "pyproject.toml": '[tool.maturin]\nmodule-name = "pkg._x"\n',
    })
    assert _found(result) == {("FT005", "src/lib.rs", 1)}
    assert result.modules == {"src/lib.rs": "pkg._x"}


# --- f2py and generator versions ---------------------------------------------------------------

def test_f2py_in_cmake_and_the_explicit_opt_out(tmp_path: Path) -> None:
    result = _analyse(tmp_path, {
        "CMakeLists.txt": (
            "add_custom_command(OUTPUT fmodule.c\n"
            "  COMMAND ${Python_EXECUTABLE} -m numpy.f2py fib.f -m fib --lower)\n"
            "add_custom_command(OUTPUT gmodule.c\n"
            "  COMMAND ${Python_EXECUTABLE} -m numpy.f2py g.f -m g\n"
            "          --no-freethreading-compatible)\n"),
    })
    assert _found(result) == {("FT118", "CMakeLists.txt", 1), ("FT005", "CMakeLists.txt", 3)}
    ft118 = next(h for h in result.hits if h.rule == "FT118")
    assert ft118.where == "module `fib`" and ft118.symbol == "python -m numpy.f2py"


@pytest.mark.parametrize(("spec", "threshold", "forced"), [
    ("==2.10.4", "2.13.0", True),
    ("<2.13", "2.13.0", True),
    ("~=2.10.0", "2.13.0", True),
    ("<=2.12.9", "2.13.0", True),
    (">=2.6", "2.13.0", False),
    (">=2.6,<3", "2.13.0", False),
    ("!=2.13.0", "2.13.0", False),
    ("<2.13.5", "2.13.0", False),
    ("==2.13.*", "2.13.0", False),
    ("", "2.13.0", False),
    ("<2", "2.0.0", True),
])
def test_forced_below(spec: str, threshold: str, forced: bool) -> None:
    assert forced_below(SpecifierSet(spec), threshold) is forced


def test_generator_pins_everywhere(tmp_path: Path) -> None:
    result = _analyse(tmp_path, {
        "setup.cfg": "[options]\nsetup_requires =\n    nanobind==2.1.0\n    numpy<2.1\n",
        "setup.py": "from setuptools import setup\nsetup(setup_requires=['pybind11<2.12'])\n",
        "libs/pybind11/include/pybind11/detail/common.h": (
            "#define PYBIND11_VERSION_MAJOR 2\n#define PYBIND11_VERSION_MINOR 10\n"),
        "libs/pybind11/include/pybind11/pybind11.h": "#pragma once\n",
        "src/bind.cpp": "PYBIND11_MODULE(m, mod, py::mod_gil_not_used()) {}\n",
    }, select=frozenset({"FT119"}))
    assert _found(result) == {
        ("FT119", "setup.cfg", 3), ("FT119", "setup.py", 2),
        ("FT119", "libs/pybind11/include/pybind11/detail/common.h", 2)}


# --- bad input ---------------------------------------------------------------------------------

def test_bad_build_files_become_diagnostics(tmp_path: Path) -> None:
    result = _analyse(tmp_path, {
        "CMakeLists.txt": 'nanobind_add_module(_core "unterminated\n',
        "Cargo.toml": "[dependencies\npyo3 = 0.22\n",
        "sub/Cargo.toml": b"[package]\nname = \"\xff\xfe\"\n",
        "sub/src/lib.rs": "#[pymodule]\nfn y() {}\n",
        "src/lib.rs": b"#[pymodule]\nfn x() {}\n\xff\xfe\x00\x01 #[pymodule\n",
        "src/bind.cpp": b"NB_MODULE(_core, m) {}\n\xff\xfe PYBIND11_MODULE(\n",
        "meson.build": "project('x'\ncustom_target('y', command: ['f2py', '''\n",
    })
    kinds = {(d.path, d.kind) for d in result.diagnostics}
    assert ("CMakeLists.txt", "build-file") in kinds
    assert ("Cargo.toml", "build-file") in kinds
    assert ("sub/Cargo.toml", "encoding") in kinds
    assert result.files["CMakeLists.txt"] == "failed: build-file"
    assert result.files["sub/Cargo.toml"] == "failed: encoding"
    # What could still be read was: the NB_MODULE without any usable CMake call.
    assert ("FT113", "src/bind.cpp", 1) not in _found(result)  # a CMake file exists (broken)
    assert "src/lib.rs" in result.modules
