"""The Cython front end, called directly: declarations in every place a build can make them,
module names, includes, bad input, suppressions, and fixtures and docs that Cython accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from conftest import RULE_FIXTURES
from gilaudit._toml import tomllib
from gilaudit.buildinfo import read_build_info
from gilaudit.config import Config
from gilaudit.discover import discover
from gilaudit.frontends import cython as front_cython
from gilaudit.frontends.contract import FrontEndResult, TargetView
from gilaudit.frontends.cython import RULES, analyse
from gilaudit.frontends.cython.requires import forces_before_31, too_old_cython
from gilaudit.frontends.cython.text import includes

HAVE_CYTHON = front_cython.cython_version() is not None
needs_cython = pytest.mark.skipif(not HAVE_CYTHON, reason="Cython is not installed")
SIMPLE = "def one():\n    return 1\n"


def _write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, body in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body, encoding="utf-8")


def _scan(root: Path, select: frozenset[str] = RULES, max_size: int = 4 << 20) -> FrontEndResult:
    project = discover(root, max_file_size=max_size)
    build = read_build_info(root, project.build_files)
    view = TargetView(root=root, files=project.sources + project.others,
                      config=Config(selected=select, max_file_size=max_size), build=build)
    return analyse(view)


def _serious_lines(root: Path, rule: str, module: str) -> list[int]:
    """The lines of one rule's errors and warnings on a one-module project `m.pyx`."""
    _write(root, {"m.pyx": module})
    return [h.line for h in _scan(root, frozenset({rule})).hits if h.severity != "info"]


def _ids(result: FrontEndResult, rule: str) -> list[tuple[str, int]]:
    return sorted((h.path, h.line) for h in result.hits if h.rule == rule)


# FT090 / FT005: where a build declares freethreading_compatible ----------------------------


@pytest.mark.parametrize(("files", "expected"), [
    ({}, [("pkg/m.pyx", 1)]),
    ({"setup.py": "from Cython.Build import cythonize\n"
                  "cythonize('pkg/*.pyx',\n"
                  "          compiler_directives={'freethreading_compatible': True})\n"}, []),
    ({"setup.py": "D = dict(language_level=3, freethreading_compatible=True)\n"
                  "ext = cythonize(exts, compiler_directives=D)\n"}, []),
    ({"setup.py": "from Cython.Compiler.Options import get_directive_defaults\n"
                  "get_directive_defaults()['freethreading_compatible'] = True\n"}, []),
    ({"setup.py": "import os\n"
                  "cythonize(x, compiler_directives={'freethreading_compatible': FT})\n"}, []),
    ({"setup.py": "print 'python 2'\n"
                  "cythonize(x, compiler_directives={'freethreading_compatible': True})\n"}, []),
    ({"setup.py": "Extension('pkg.m', ['pkg/m.pyx'],\n"
                  "          define_macros=[('CYTHON_FREETHREADING_COMPATIBLE', '1')])\n"}, []),
    ({"setup.py": "Extension('pkg.m', ['pkg/m.pyx'],\n"
                  "          extra_compile_args=['-DCYTHON_FREETHREADING_COMPATIBLE=1'])\n"}, []),
    ({"meson.build": "add_project_arguments('-Xfreethreading_compatible=true',"
                     " language : 'cython')\n"}, []),
    ({"meson.build": "# add_project_arguments('-Xfreethreading_compatible=true')\n"},
     [("pkg/m.pyx", 1)]),
    ({"pkg/meson.build": "py.extension_module('m', 'm.pyx',"
                         " cython_args: ['-X', 'freethreading_compatible=True'])\n"}, []),
    ({"other/meson.build": "cython_args = ['-X', 'freethreading_compatible=True']\n"},
     [("pkg/m.pyx", 1)]),
    ({"pyproject.toml": "[tool.local.cythonize.kwargs.directive]\n"
                        "freethreading_compatible = \"True\"\n"}, []),
    ({"pyproject.toml": "[tool.scikit-build.cmake]\n"
                        "args = [\"-DCYTHON_ARGS=-X freethreading_compatible=True\"]\n"}, []),
    ({"pyproject.toml": "[project]\nname = 'freethreading_compatible'\n"}, [("pkg/m.pyx", 1)]),
    # h5py sets the directive in setup_build.py, imported by setup.py
    ({"setup_build.py": "compiler_directives = {}\n"
                        "if CYTHON_NEW:\n"
                        "    compiler_directives['freethreading_compatible'] = True\n"
                        "cythonize(exts, compiler_directives=compiler_directives)\n"}, []),
    ({"docs/conf.py": "compiler_directives = {'freethreading_compatible': True}\n"},
     [("pkg/m.pyx", 1)]),
    # aiohttp cythonizes from its Makefile
    ({"Makefile": "pkg/%.c: pkg/%.pyx\n"
                  "\tcython -3 -X freethreading_compatible=True -o $@ $< -I pkg\n"}, []),
    ({"Makefile": "# cython -3 -X freethreading_compatible=True\nall:\n\ttrue\n"},
     [("pkg/m.pyx", 1)]),
])
def test_ft090_build_declarations(tmp_path: Path, files: dict[str, str],
                                  expected: list[tuple[str, int]]) -> None:
    _write(tmp_path, {"pkg/__init__.py": "", "pkg/m.pyx": SIMPLE, **files})
    result = _scan(tmp_path, frozenset({"FT090", "FT005"}))
    assert _ids(result, "FT090") == expected
    assert not _ids(result, "FT005")


def test_ft090_message_parts_and_module_names(tmp_path: Path) -> None:
    _write(tmp_path, {
        "setup.py": "from setuptools import Extension\n"
                    "Extension('fancy.name', ['src/lib/core.pyx'])\n",
        "src/lib/core.pyx": SIMPLE,
        "src/pkg/__init__.py": "", "src/pkg/sub/__init__.pxd": "",
        "src/pkg/sub/leaf.pyx": SIMPLE, "src/pkg/sub/leaf.pxd": "cdef int x\n",
        "src/pkg/sub/part.pxi": "cdef int y = 1\n",
        "src/pkg/sub/uses.pyx": 'include "part.pxi"\n' + SIMPLE,
    })
    result = _scan(tmp_path, frozenset({"FT090"}))
    where = {h.path: h.where for h in result.hits}
    assert where == {"src/lib/core.pyx": "fancy.name", "src/pkg/sub/leaf.pyx": "pkg.sub.leaf",
                     "src/pkg/sub/uses.pyx": "pkg.sub.uses"}
    assert all(h.symbol == "freethreading_compatible" and (h.line, h.col) == (1, 1)
               for h in result.hits)
    assert result.modules["src/pkg/sub/leaf.pxd"] == "pkg.sub.leaf"
    assert result.modules["src/pkg/sub/part.pxi"] == "pkg.sub.uses"
    assert "src/pkg/sub/part.pxi" not in where  # included: not a module of its own


def test_explicit_false_is_ft005_and_the_macro_wins(tmp_path: Path) -> None:
    _write(tmp_path, {
        "setup.py": "cythonize(a, compiler_directives={'freethreading_compatible': False})\n",
        "a/__init__.py": "", "a/from_build.pyx": SIMPLE,
        "a/header_false.pyx": "# cython: freethreading_compatible=False\n" + SIMPLE,
        "a/header_true.pyx": "# cython: freethreading_compatible=True\n" + SIMPLE,
        "b/setup.cfg": "[build_ext]\nextra = -DCYTHON_FREETHREADING_COMPATIBLE=0\n",
        "b/header_true.pyx": "# cython: freethreading_compatible=True\n" + SIMPLE,
    })
    result = _scan(tmp_path, frozenset({"FT090", "FT005"}))
    assert not _ids(result, "FT090")
    ft005 = {h.path: h for h in result.hits if h.rule == "FT005"}
    assert sorted(ft005) == ["a/from_build.pyx", "a/header_false.pyx", "b/header_true.pyx"]
    assert ft005["a/header_false.pyx"].symbol == "freethreading_compatible=False"
    assert ft005["a/from_build.pyx"].notes[0].location is not None
    assert ft005["a/from_build.pyx"].notes[0].location.path == "setup.py"
    assert ft005["b/header_true.pyx"].symbol == "CYTHON_FREETHREADING_COMPATIBLE=0"


def test_misplaced_directive_reported_once(tmp_path: Path) -> None:
    late = '"""Doc."""\n# cython: freethreading_compatible=True\n' + SIMPLE
    _write(tmp_path, {"late.pyx": late})
    both = _scan(tmp_path, frozenset({"FT090", "FT091"}))
    assert [h.rule for h in both.hits] == ["FT091"]
    assert (both.hits[0].line, both.hits[0].col) == (2, 1)
    alone = _scan(tmp_path, frozenset({"FT090"}))
    assert [h.rule for h in alone.hits] == ["FT090"]


def test_included_file_that_is_also_built_keeps_its_header(tmp_path: Path) -> None:
    header = "# cython: freethreading_compatible=True\n"
    _write(tmp_path, {
        "setup.py": "Extension('both', ['both.pyx'])\nExtension('outer', ['outer.pyx'])\n",
        "both.pyx": header + SIMPLE,
        "outer.pyx": 'include "both.pyx"\n',
        "only_included.pxi": header,
        "user.pyx": header + 'include "only_included.pxi"\n',
    })
    result = _scan(tmp_path, frozenset({"FT090", "FT091"}))
    assert sorted((h.rule, h.path) for h in result.hits) == [
        ("FT090", "outer.pyx"), ("FT091", "only_included.pxi")]
    assert result.modules["both.pyx"] == "both"


def test_tests_and_examples_are_not_modules_unless_built(tmp_path: Path) -> None:
    _write(tmp_path, {"tests/helper.pyx": SIMPLE, "docs/examples/demo.pyx": SIMPLE,
                      "examples/built.pyx": SIMPLE,
                      "setup.py": "Extension('built', ['examples/built.pyx'])\n"})
    assert _ids(_scan(tmp_path, frozenset({"FT090"})), "FT090") == [("examples/built.pyx", 1)]


# FT092: the Cython version a build allows ------------------------------------------------


@pytest.mark.parametrize(("requirement", "old"), [
    ("Cython<3.1", True), ("cython==0.29.37", True), ("Cython~=3.0.11", True),
    ("Cython<=3.0.12", True), ("cython!=3.1.*,<3.2", True), ("Cython==3.1.0b1", False),
    ("Cython>=3.0", False), ("Cython~=3.0", False), ("Cython", False), ("cython<3.1.1", False),
    ("Cython<3; python_version < '3.8'", False), ("Cython<3; sys_platform == 'win32'", True),
    ("cython-lint<1", False), ("not a requirement ((", False),
])
def test_too_old_cython(requirement: str, old: bool) -> None:
    assert too_old_cython(requirement) is old


def test_forces_before_31_needs_a_specifier() -> None:
    assert not forces_before_31(SpecifierSet(""))
    assert forces_before_31(SpecifierSet("<3.1.0"))


# Bad input ---------------------------------------------------------------------------------


@needs_cython
def test_unparsable_file_is_a_diagnostic_and_the_rest_goes_on(tmp_path: Path) -> None:
    _write(tmp_path, {
        "bad.pyx": "def broken(:\n    pass\n",
        "good.pyx": "cdef class C:\n    cdef long n\n    def f(self):\n        self.n += 1\n",
        "latin.pyx": "# -*- coding: latin-1 -*-\nname = 'caf\xe9'\n".encode("latin-1"),
        "binary.pyx": b"\xff\xfe\x00bad",
        "missing.pyx": 'include "nowhere.pxi"\n' + SIMPLE,
        "loop.pyx": 'include "loop.pxi"\n',
        "loop.pxi": 'include "loop.pxi"\n',
    })
    result = _scan(tmp_path)
    kinds = {(d.path, d.kind) for d in result.diagnostics}
    assert ("bad.pyx", "parse-error") in kinds
    assert ("binary.pyx", "encoding") in kinds
    assert ("missing.pyx", "missing-include") in kinds
    assert result.files["bad.pyx"] == "failed: parse-error"
    assert result.files["binary.pyx"] == "failed: encoding"
    assert result.files["latin.pyx"] == "parsed"
    assert result.files["missing.pyx"] == "parsed (partial)"
    assert _ids(result, "FT095") == [("good.pyx", 4)]
    bad = next(d for d in result.diagnostics if d.path == "bad.pyx")
    assert bad.line == 1


@needs_cython
def test_hostile_nesting_is_refused_before_cython_sees_it(tmp_path: Path) -> None:
    # Thousands of brackets overflow the C stack of Cython's compiled parser (a crash, not
    # an exception): such a file, and any include of it, never reaches the parser.
    deep = "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n"
    _write(tmp_path, {"deep.pyx": deep, "deep.pxi": deep, "user.pyx": 'include "deep.pxi"\n',
                      "gen.pyx": 'include "helpers.pxi"\n', "helpers.pxi.in": "{{py: x}}\n"})
    result = _scan(tmp_path)
    assert result.files["deep.pyx"] == "failed: too-complex"
    assert result.files["deep.pxi"] == "failed: too-complex"
    messages = {d.path: d.message for d in result.diagnostics if d.kind == "missing-include"}
    assert "refused" in messages["user.pyx"]
    assert "template `helpers.pxi.in`" in messages["gen.pyx"]


def test_too_large_file_is_skipped(tmp_path: Path) -> None:
    _write(tmp_path, {"big.pyx": "x = 1\n" * 100, "small.pyx": SIMPLE})
    result = _scan(tmp_path, frozenset({"FT090"}), max_size=300)
    assert result.files["big.pyx"] == "skipped: too large"
    assert _ids(result, "FT090") == [("small.pyx", 1)]


def test_without_cython_the_directive_rules_still_run(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(front_cython, "cython_version", lambda: None)
    _write(tmp_path, {"m.pyx": "cdef class C:\n    def f(self):\n        self.n += 1\n"})
    result = _scan(tmp_path)
    assert [h.rule for h in result.hits] == ["FT090"]
    assert [d.kind for d in result.diagnostics] == ["toolchain"]
    assert result.files["m.pyx"].startswith("skipped:")


def test_nothing_selected_reads_nothing(tmp_path: Path) -> None:
    _write(tmp_path, {"m.pyx": SIMPLE})
    assert _scan(tmp_path, frozenset({"FT001"})) == FrontEndResult()


# Code rules across files --------------------------------------------------------------------


@needs_cython
def test_included_code_is_reported_where_it_is_written_once(tmp_path: Path) -> None:
    shared = "cdef class Shared:\n    cdef long n\n    def f(self):\n        self.n += 1\n"
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.pyx": 'include "common/shared.pxi"\n',
        "pkg/b.pyx": 'include "common/shared.pxi"\n',
        "pkg/common/shared.pxi": shared,
    })
    result = _scan(tmp_path, frozenset({"FT095"}))
    assert _ids(result, "FT095") == [("pkg/common/shared.pxi", 4)]
    assert result.files["pkg/common/shared.pxi"] == "parsed"
    assert "pkg/common/shared.pxi" not in result.modules  # two modules include it


@needs_cython
def test_pxd_declared_globals_and_extern_redeclarations(tmp_path: Path) -> None:
    _write(tmp_path, {
        "m.pxd": "cdef object _cache\n"
                 "cdef extern from 'Python.h':\n"
                 "    object PyWeakref_GET_OBJECT(object)\n",
        "m.pyx": "_cache = None\n\ndef reset():\n    global _cache\n    _cache = {}\n",
    })
    result = _scan(tmp_path, frozenset({"FT094", "FT100"}))
    assert _ids(result, "FT094") == [("m.pyx", 5)]
    ft094 = next(h for h in result.hits if h.rule == "FT094")
    assert ft094.function == "reset" and ft094.where == "`reset`"
    assert [(h.path, h.line, h.col, h.symbol) for h in result.hits if h.rule == "FT100"] == [
        ("m.pxd", 3, 12, "PyWeakref_GET_OBJECT")]


@needs_cython
def test_c_attribute_races_are_info_and_object_races_warnings(tmp_path: Path) -> None:
    _write(tmp_path, {"m.pyx": "cdef class C:\n"
                               "    cdef Py_ssize_t n\n    cdef object total\n"
                               "    def f(self, x):\n"
                               "        self.n += 1\n        self.total = self.total + x\n"
                               "cdef class D(C):\n    def g(self):\n        self.n -= 1\n"})
    result = _scan(tmp_path, frozenset({"FT095"}))
    assert sorted((h.line, h.severity) for h in result.hits) == [
        (5, "info"), (6, None), (9, "info")]  # D inherits the C type of `n`


@needs_cython
def test_windows_line_endings_parse_like_cython_reads_them(tmp_path: Path) -> None:
    # imagecodecs ships every .pyx with CRLF (and old Mac files end lines with a bare CR).
    _write(tmp_path, {"crlf.pyx": b"cdef class C:\r\n    cdef object items\r\n\r\n"
                                  b"    def add(self, x):\r\n"
                                  b"        self.items = self.items + [x]\r\n",
                      "cr.pyx": b"cdef class D:\r    cdef object items\r"
                                b"    def add(self, x):\r        self.items = self.items + [x]\r"})
    result = _scan(tmp_path, frozenset({"FT095"}))
    assert not [d for d in result.diagnostics if d.kind == "parse-error"]
    assert sorted((h.path, h.line, h.col) for h in result.hits) == [
        ("cr.pyx", 4, 9), ("crlf.pyx", 5, 9)]


@needs_cython
def test_base_class_from_another_pxd_gives_its_c_types(tmp_path: Path) -> None:
    # oracledb: `cdef class Parser(BaseParser)` in a .pyx, `pos` a ssize_t of the base,
    # declared in the package's shared .pxd that the .pyx cimports.
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/base.pxd": "cdef class BaseParser:\n    cdef ssize_t pos\n    cdef object data\n",
        "pkg/parser.pyx": "from pkg.base cimport BaseParser\n\n"
                          "cdef class Parser(BaseParser):\n"
                          "    def skip(self, n):\n        self.pos += n\n"
                          "    def keep(self, x):\n        self.data = self.data + x\n"})
    result = _scan(tmp_path, frozenset({"FT095"}))
    assert sorted((h.path, h.line, h.severity) for h in result.hits) == [
        ("pkg/parser.pyx", 5, "info"), ("pkg/parser.pyx", 7, None)]


@needs_cython
def test_python_global_lazy_init_is_info_and_cdef_stays_warning(tmp_path: Path) -> None:
    # rapidfuzz: `pandas_NA = None` then `if pandas_NA is None: pandas_NA = pandas.NA` stores
    # whole objects in the module's dict; a cdef object is a bare C pointer.
    _write(tmp_path, {"m.pyx": "_na = None\ncdef object _cache = None\ncounter = 0\n\n"
                               "def na():\n    global _na\n    if _na is None:\n"
                               "        _na = object()\n    return _na\n\n"
                               "def cache():\n    global _cache\n    if _cache is None:\n"
                               "        _cache = {}\n    return _cache\n\n"
                               "def bump():\n    global counter\n    counter += 1\n"})
    result = _scan(tmp_path, frozenset({"FT094"}))
    assert sorted((h.line, h.symbol, h.severity) for h in result.hits) == [
        (8, "_na", "info"), (14, "_cache", None), (19, "counter", None)]


@needs_cython
@pytest.mark.parametrize(("body", "loud"), [
    # questdb (review 24): a ready flag, then classes and singletons looked up
    ("    global _ready, _dtype, _na, _mod, _has\n    import numpy, pandas\n"
     "    if not _ready:\n        _dtype = type(numpy.dtype('int8'))\n"
     "        _na = pandas.NA\n        _mod = numpy\n"
     "        _has = 'validate' in numpy.__dict__\n        _ready = True\n", []),
    ("    global _na\n    import pandas\n    if _na is None:\n        _na = pandas.NA\n", []),
    # a new object each time: a racing store can drop the last reference to another's
    ("    global _ready, _dtype\n    import numpy\n    if not _ready:\n"
     "        _dtype = numpy.dtype('int8')\n        _ready = True\n", ["_dtype"]),
    # not behind a test: a setting replaced at any time
    ("    global _na\n    import pandas\n    _na = pandas.NA\n", ["_na"]),
    # a cache then a new object in the same function: the new one is reported
    ("    global _na\n    import pandas\n    if _na is None:\n        _na = pandas.NA\n"
     "    _na = object()\n", ["_na"]),
])
def test_a_cdef_cache_of_an_object_that_exists_anyway_is_information(
        tmp_path: Path, body: str, loud: list[str]) -> None:
    _write(tmp_path, {"m.pyx": "cdef bint _ready = False\ncdef object _dtype = None\n"
                               "cdef object _na = None\ncdef object _mod = None\n"
                               "cdef object _has = None\n\ndef load():\n" + body})
    result = _scan(tmp_path, frozenset({"FT094"}))
    assert sorted(h.symbol for h in result.hits if h.severity != "info") == loud, \
        [(h.line, h.symbol, h.severity) for h in result.hits]


@needs_cython
def test_setup_the_package_calls_only_while_importing_is_not_a_runtime_write(
        tmp_path: Path) -> None:
    # oracledb: `init_base_impl()` is called once, by the package's __init__.py; gevent: the
    # pure-Python module a .pxd augments calls `_init()` at module level, which calls the
    # .pxd's `greenlet_init()`. A function Python code also calls later stays reported.
    _write(tmp_path, {
        "pkg/__init__.py": "from pkg import impl\nfrom pkg.impl import init_impl\n"
                           "init_impl(1)\n\ndef _init():\n    impl.greenlet_init()\n\n"
                           "_init()\n\ndef reconfigure(v):\n    impl.set_level(v)\n",
        "pkg/impl.pyx": "cdef int _level = 0\ncdef bint _ready = False\n\n"
                        "def init_impl(level):\n    global _level\n    _level = level\n"
                        "    _helper()\n\n"
                        "cdef _helper():\n    global _ready\n    _ready = True\n\n"
                        "def greenlet_init():\n    global _ready\n    _ready = True\n\n"
                        "def set_level(level):\n    global _level\n    _level = level\n"})
    result = _scan(tmp_path, frozenset({"FT094"}))
    assert [(h.line, h.function) for h in result.hits] == [(19, "set_level")]
    # Without the package's Python code, nothing says when they run: all are reported.
    (tmp_path / "pkg" / "__init__.py").write_text("")
    result = _scan(tmp_path, frozenset({"FT094"}))
    assert sorted(h.function or "" for h in result.hits) == [
        "_helper", "greenlet_init", "init_impl", "set_level"]


@needs_cython
def test_language_level_2_header_is_honoured(tmp_path: Path) -> None:
    _write(tmp_path, {"old.pyx": "# cython: language_level=2\nprint 'hello'\n"})
    result = _scan(tmp_path, frozenset({"FT094"}))
    assert result.files["old.pyx"] == "parsed" and not result.diagnostics


def test_suppressions(tmp_path: Path) -> None:
    _write(tmp_path, {
        "m.pyx": "# gilaudit: ignore[ft090, FT091] audited by hand\n"
                 "x = '# gilaudit: ignore[FT094]'  # gilaudit: ignore\n"
                 "y = 1  # note: gilaudit: ignore[FT095] is not at the comment start\n",
        "pyproject.toml": "[build-system]\n"
                          "requires = ['Cython<3']  # gilaudit: ignore[FT092] legacy branch\n",
    })
    result = _scan(tmp_path)
    sup = result.suppressions["m.pyx"]
    assert [(s.line, s.col, s.ids) for s in sup] == [(1, 1, ("FT090", "FT091")), (2, 34, ())]
    assert sup[0].text == "# gilaudit: ignore[ft090, FT091] audited by hand"
    assert [s.ids for s in result.suppressions["pyproject.toml"]] == [("FT092",)]


def test_include_scan_ignores_comments_and_strings() -> None:
    text = '# include "a.pxi"\ns = """\ninclude "b.pxi"\n"""\n  include \'c.pxi\'\n'
    assert includes(text) == [(5, "c.pxi")]


# Fixtures and documentation are real Cython ------------------------------------------------


def _cython_modules() -> list[Path]:
    out = []
    for rule in ("FT090", "FT091", "FT092", "FT093", "FT094", "FT095", "FT096", "FT100",
                 "FT101"):
        pyx = sorted((RULE_FIXTURES / rule).rglob("*.pyx"))
        included = {(p.parent / name).resolve() for p in pyx
                    for _l, name in includes(p.read_text(encoding="utf-8"))}
        out += [p for p in pyx if p.resolve() not in included]
    return out


# One interpreter compiles every source (Cython takes a second to start): it prints a JSON
# map from source to error text, "" when the C file was written.
_COMPILE_ALL = """
import contextlib, io, json, sys
from Cython.Compiler.Main import CompilationOptions, compile, default_options
out = {}
for source, target, include in json.loads(sys.stdin.read()):
    options = CompilationOptions(default_options, output_file=target, language_level=3,
                                 include_path=[include])
    messages = io.StringIO()
    with contextlib.redirect_stderr(messages), contextlib.redirect_stdout(messages):
        try:
            failed = compile(source, options).num_errors
        except Exception as exc:
            failed = repr(exc)
    out[source] = messages.getvalue() or str(failed) if failed else ""
print(json.dumps(out))
"""


def _cythonize_all(sources: list[Path], out_dir: Path) -> dict[str, str]:
    jobs = [(str(s), str(out_dir / f"{i}_{s.stem}.c"), str(s.parent))
            for i, s in enumerate(sources)]
    proc = subprocess.run([sys.executable, "-c", _COMPILE_ALL], input=json.dumps(jobs),
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


FIXTURE_MODULES = _cython_modules()
DOC_SNIPPETS = [
    (rule["id"], key, rule["docs"][key])
    for rule in tomllib.loads((Path(front_cython.__file__).parents[2] / "rules" /
                               "cython.toml").read_text(encoding="utf-8"))["rule"]
    for key in ("example", "instead") if rule["id"] != "FT092"  # FT092's are TOML
]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every fixture module and documentation snippet, run through Cython to C once."""
    if not HAVE_CYTHON:
        pytest.skip("Cython is not installed: fixtures cannot be checked")
    folder = tmp_path_factory.mktemp("cython")
    sources = list(FIXTURE_MODULES)
    for rule, key, code in DOC_SNIPPETS:
        path = folder / f"{rule.lower()}_{key}.pyx"
        path.write_text(code, encoding="utf-8")
        sources.append(path)
    return _cythonize_all(sources, folder)


@pytest.mark.parametrize("source", FIXTURE_MODULES,
                         ids=lambda p: str(p.relative_to(RULE_FIXTURES)))
def test_fixture_is_valid_cython(source: Path, compiled: dict[str, str]) -> None:
    assert compiled[str(source)] == ""


@pytest.mark.parametrize(("rule", "key"), [(r, k) for r, k, _ in DOC_SNIPPETS],
                         ids=[f"{r}-{k}" for r, k, _ in DOC_SNIPPETS])
def test_docs_examples_are_valid_cython(rule: str, key: str, compiled: dict[str, str]) -> None:
    errors = [v for k, v in compiled.items() if k.endswith(f"{rule.lower()}_{key}.pyx")]
    assert errors == [""]


# FT048: a cdef class's own C state used inside `with nogil:` --------------------------------

NOGIL_STATE = '''cimport cython

cdef extern from "stdio.h":
    ctypedef struct FILE
    size_t fread(void *ptr, size_t size, size_t n, FILE *f) nogil

cdef class Reader:
    cdef FILE *fp
    cdef Py_ssize_t nread
    cdef cython.pymutex lock

    def read_into(self, unsigned char[:] buf):
        cdef size_t n
        with nogil:
            n = fread(&buf[0], 1, buf.shape[0], self.fp)
            self.nread += n
        return n

    def read_locked(self, unsigned char[:] buf):
        cdef size_t n
        with self.lock:
            with nogil:
                n = fread(&buf[0], 1, buf.shape[0], self.fp)
        return n

    def local_only(self, unsigned char[:] buf):
        cdef size_t n = 0
        with nogil:
            n = n + 1
        return n
'''


@needs_cython
def test_ft048_object_state_inside_nogil(tmp_path: Path) -> None:
    _write(tmp_path, {"pkg/reader.pyx": NOGIL_STATE})
    result = _scan(tmp_path, select=frozenset({"FT048"}))
    hits = [h for h in result.hits if h.rule == "FT048"]
    assert [(h.path, h.line) for h in hits] == [("pkg/reader.pyx", 14)]
    assert "`self.fp`" in hits[0].where and "`self.nread`" in hits[0].where


@needs_cython
def test_asyncio_protocols_run_on_their_event_loop_only(tmp_path: Path) -> None:
    # pycapnp: `cdef class _PyAsyncIoStreamProtocol(DummyBaseClass, asyncio.BufferedProtocol)`
    # frees its fulfiller in connection_lost() while data_received() uses it: the one event
    # loop thread calls both. The same class without the protocol base is reported.
    body = ("    cdef char *buf\n"
            "    cdef object items\n"
            "    def data_received(self, data):\n"
            "        if self.buf != NULL:\n            self.buf[0] = 1\n"
            "        self.items = self.items + [data]\n"
            "    def connection_lost(self, exc):\n        self.buf = NULL\n")
    _write(tmp_path, {
        "proto.pyx": "import asyncio\n\ncdef class Base:\n    pass\n\n"
                     "cdef class Stream(Base, asyncio.BufferedProtocol):\n" + body
                     + "\ncdef class Sub(Stream):\n    def more(self):\n"
                       "        self.items = self.items + [1]\n",
        "plain.pyx": "cdef class Stream:\n" + body})
    result = _scan(tmp_path, frozenset({"FT095", "FT102"}))
    assert sorted((h.path, h.rule) for h in result.hits) == [
        ("plain.pyx", "FT095"), ("plain.pyx", "FT102")]


@needs_cython
def test_removed_c_api_declared_and_used_in_cython(tmp_path: Path) -> None:
    # The generated C calls what the module declares and uses; a declaration alone generates
    # nothing, and a name the module does not declare is a Python name.
    _write(tmp_path, {
        "old.pyx": "cdef extern from 'Python.h':\n"
                   "    Py_UNICODE* PyUnicode_AS_UNICODE(object)\n"
                   "    Py_ssize_t PyUnicode_GET_SIZE(object)\n"
                   "    int _PyLong_AsInt(object) except? -1\n"
                   "    object PyEval_CallObject(object, object)\n\n"
                   "def width(s):\n    return PyUnicode_GET_SIZE(s)\n\n"
                   "def as_int(o):\n    return _PyLong_AsInt(o)\n",
        "new.pyx": "cdef extern from 'Python.h':\n"
                   "    Py_UNICODE* PyUnicode_AS_UNICODE(object)\n\n"
                   "def PyEval_CallObject(f, a):\n    return f(*a)\n\n"
                   "def call(f):\n    return PyEval_CallObject(f, ())\n",
        # acora: its own definition for 3.12 and later, in the C the block pastes in
        "shim.pyx": 'cdef extern from *:\n    """\n'
                    "    #if PY_VERSION_HEX >= 0x030C0000\n"
                    "      #define PyUnicode_GET_SIZE(u) (0)\n"
                    '    #endif\n    """\n'
                    "    Py_ssize_t PyUnicode_GET_SIZE(object)\n\n"
                    "def width(s):\n    return PyUnicode_GET_SIZE(s)\n"})
    result = _scan(tmp_path, frozenset({"FT145"}))
    assert [(h.path, h.line, h.symbol) for h in result.hits] == [
        ("old.pyx", 8, "PyUnicode_GET_SIZE")]
    (hit,) = result.hits
    assert "3.12" in hit.where and "PyUnicode_GET_LENGTH" in hit.where
    assert [(n.location.line if n.location else None) for n in hit.notes] == [11]


@needs_cython
def test_a_setup_function_its_own_module_calls_at_import(tmp_path: Path) -> None:
    # gensim's word2vec_inner.pyx: `def init(): global our_dot; our_dot = ...` and, at the
    # bottom, `FAST_VERSION = init()`. A function the package's Python code calls later, or
    # one whose name does not say it sets the module up, stays reported.
    _write(tmp_path, {
        "pkg/__init__.py": "from pkg.inner import reload_tables\n\n"
                           "def refresh():\n    reload_tables()\n",
        "pkg/inner.pyx": "cdef int our_dot = 0\n\n"
                         "def init():\n    global our_dot\n    our_dot = 1\n    return 1\n\n"
                         "def reload_tables():\n    global our_dot\n    our_dot = 2\n\n"
                         "def compute():\n    global our_dot\n    our_dot = 3\n\n"
                         "FAST_VERSION = init()\nreload_tables()\ncompute()\n"})
    result = _scan(tmp_path, frozenset({"FT094"}))
    assert sorted(h.function or "" for h in result.hits) == ["compute", "reload_tables"]


@needs_cython
def test_setstate_releases_on_a_new_object(tmp_path: Path) -> None:
    # pyrodigal's Masks.__setstate__ frees and reallocates `masks`: unpickling calls it on an
    # object nobody else holds yet.
    body = ("cdef class Masks:\n    cdef int *masks\n"
            "    def __len__(self):\n        return self.masks[0]\n"
            "    def {name}(self, state):\n        self.masks = NULL\n")
    _write(tmp_path, {"m.pyx": body.format(name="__setstate__")})
    assert _scan(tmp_path, frozenset({"FT102"})).hits == ()
    _write(tmp_path, {"m.pyx": body.format(name="clear")})
    assert [h.rule for h in _scan(tmp_path, frozenset({"FT102"})).hits] == ["FT102"]


@needs_cython
def test_a_pointer_used_elsewhere_only_while_the_object_is_made(tmp_path: Path) -> None:
    # python-pkcs11: `_p11_handle` is released by `unload()`, and otherwise used only by
    # `_load()`, which only `__cinit__` calls: nothing can use it concurrently.
    body = ("cdef class Lib:\n    cdef void *handle\n"
            "    def __cinit__(self):\n        self._load()\n"
            "    cdef _load(self):\n        if self.handle == NULL:\n            pass\n"
            "    def unload(self):\n        self.handle = NULL\n")
    _write(tmp_path, {"m.pyx": body})
    assert _scan(tmp_path, frozenset({"FT102"})).hits == ()
    _write(tmp_path, {"m.pyx": body + "    def use(self):\n        return <size_t>self.handle\n"})
    assert [h.rule for h in _scan(tmp_path, frozenset({"FT102"})).hits] == ["FT102"]


@needs_cython
def test_a_whole_store_of_a_c_number_is_info_and_counters_and_pointers_stay_warnings(
        tmp_path: Path) -> None:
    # Review 15: dipy's `set_params` stores a new `CSF_D` (a setting), grpcio clears a one-way
    # `_has_fd_monitoring` flag: readers see the old or the new value. A counter loses
    # updates and a pointer can be freed twice: those stay warnings.
    _write(tmp_path, {"m.pyx": "cdef double CSF_D = 3.0e-3\ncdef bint _fd = True\n"
                               "cdef long calls = 0\ncdef char *buf = NULL\n\n"
                               "def set_params(csf_d):\n    global CSF_D\n"
                               "    CSF_D = float(csf_d)\n\n"
                               "def watch():\n    global _fd\n    if _fd:\n        _fd = False\n\n"
                               "def count():\n    global calls\n    calls = calls + 1\n\n"
                               "def grab(bytes b):\n    global buf\n    buf = b\n"})
    result = _scan(tmp_path, frozenset({"FT094"}))
    assert sorted((h.line, h.symbol, h.severity) for h in result.hits) == [
        (8, "CSF_D", "info"), (13, "_fd", "info"), (17, "calls", None), (21, "buf", None)]


_LIMITER = """cdef class {name}:
    cdef int active
    def __cinit__(self):
        self.active = 0
    def check(self):
        self.active += 1
    def _done(self, fut):
        self.active -= 1
    def watch(self, task):
        task.add_done_callback(self._done)

cdef class Server:
    cdef object limiter
    def __init__(self):
        self.limiter = {name}()
    async def main_loop(self, task):
        self.limiter.check()
        self.limiter.watch(task)
{extra}"""


@needs_cython
@pytest.mark.parametrize(("name", "extra", "fires"), [
    # grpcio's _ConcurrentRpcLimiter: counted up in the server's main-loop coroutine, down in a
    # done-callback; a private class, so only the module's own (event-loop) code calls it
    ("_Limiter", "", False),
    # a public class: any thread may call `check`
    ("Limiter", "", True),
    # a private class that a plain function also uses
    ("_Limiter", "def poke(Server s):\n    s.limiter.check()\n", True),
    # a bound method handed to something that is not an event loop may run on any thread
    ("_Limiter", "def spawn(lim):\n    import threading\n"
                 "    threading.Thread(target=lim.check).start()\n", True),
])
def test_state_one_event_loop_owns_is_not_shared(tmp_path: Path, name: str, extra: str,
                                                 fires: bool) -> None:
    _write(tmp_path, {"m.pyx": _LIMITER.format(name=name, extra=extra)})
    hits = [(h.line, h.symbol) for h in _scan(tmp_path, frozenset({"FT095"})).hits]
    assert hits == ([(6, "self.active"), (8, "self.active")] if fires else []), hits


@needs_cython
@pytest.mark.parametrize(("user", "fires"), [
    # cylp: another module makes the object and sets its pointer before anyone else has it
    ("from pkg.masks cimport Masks\n\ndef make():\n    cdef Masks m = Masks()\n"
     "    m.reset()\n    return m\n", False),
    # called on the constructor call itself: `CyCbcNode().setCppSelf(x)`
    ("from pkg.masks cimport Masks\n\ndef make():\n    return Masks().reset()\n", False),
    # handed an object the caller may share
    ("from pkg.masks cimport Masks\n\ndef use(Masks m):\n    m.reset()\n", True),
    # wxPython's `CreateFromFile`: a classmethod's `cls()` is a new object
    ("from pkg.masks cimport Masks\n\ncdef class Sub(Masks):\n    @classmethod\n"
     "    def create(cls):\n        cdef Masks m = cls()\n        m.reset()\n"
     "        return m\n", False),
    # Sage's `self._new_c(...)._inplace_truncate(n)`: a function that returns what it has
    # just made makes one too, through a local or directly
    ("from pkg.masks cimport Masks\n\ncdef Masks _new():\n    cdef Masks m = Masks()\n"
     "    return m\n\ndef make():\n    return _new().reset()\n\n"
     "def make2():\n    x = _new()\n    x.reset()\n", False),
    # ... but not one that also keeps it: the cache shares it
    ("from pkg.masks cimport Masks\n\ncache = {}\n\ncdef Masks _new():\n"
     "    cdef Masks m = Masks()\n    cache[0] = m\n    return m\n\n"
     "def make():\n    return _new().reset()\n", True),
    # ... nor a classmethod's argument in a plain method
    ("from pkg.masks cimport Masks\n\ncdef class Sub(Masks):\n"
     "    def create(self, cls):\n        cdef Masks m = cls()\n        m.reset()\n", True),
])
def test_a_cdef_method_other_modules_call_only_on_objects_they_just_made(
        tmp_path: Path, user: str, fires: bool) -> None:
    decl = "cdef class Masks:\n    cdef int *masks\n    cdef reset(self)\n"
    body = ("cdef class Masks:\n    def __len__(self):\n        return self.masks[0]\n"
            "    cdef reset(self):\n        self.masks = NULL\n")
    _write(tmp_path, {"pkg/__init__.py": "", "pkg/masks.pxd": decl, "pkg/masks.pyx": body,
                      "pkg/user.pyx": user})
    hits = [(h.path, h.line) for h in _scan(tmp_path, frozenset({"FT102"})).hits]
    assert hits == ([("pkg/masks.pyx", 5)] if fires else []), hits


_TABLE_ROLLBACK = ("import threading\n\ncdef class Table:\n    cdef object items\n"
                   "    cdef rollback(self):\n"
                   "        self.items = self.items[:1] + self.items\n\n"
                   "cdef class Encoder:\n    cdef object _lock\n    cdef Table _table\n"
                   "    def __cinit__(self):\n        self._lock = threading.Lock()\n"
                   "    def put(self):\n%s")
_SENDER_RELEASE = ("import threading\nfrom libc.stdlib cimport free\n\n"
                   "cdef class Sender:\n    cdef object _lock\n    cdef int *_table\n"
                   "    def __cinit__(self):\n        self._lock = threading.RLock()\n"
                   "    cdef void rollback(self):\n"
                   "        free(self._table)\n        self._table = NULL\n"
                   "    def put(self):\n%s"
                   "    def size(self):\n        with self._lock:\n"
                   "            return self._table[0]\n"
                   "    def peek(self):\n        return self._table[0]\n")


@needs_cython
@pytest.mark.parametrize(("rule", "source", "call", "fires"), [
    # ddtrace: MsgpackEncoderV05.put runs the table's rollback inside `with self._lock:`
    ("FT095", _TABLE_ROLLBACK, "self._table.rollback()", False),
    ("FT095", _TABLE_ROLLBACK, "self._table.rollback()", True),
    # questdb's `PooledSender.close()` runs `_release_locked()` inside `with self._lock:`
    ("FT102", _SENDER_RELEASE, "self.rollback()", False),
    ("FT102", _SENDER_RELEASE, "self.rollback()", True),
])
def test_a_cdef_method_only_called_under_a_lock_is_locked(
        tmp_path: Path, rule: str, source: str, call: str, fires: bool) -> None:
    put = (f"        {call}\n" if fires else
           f"        with self._lock:\n            {call}\n")
    _write(tmp_path, {"m.pyx": source % put})
    hits = [(h.line, h.symbol) for h in _scan(tmp_path, frozenset({rule})).hits]
    assert bool(hits) == fires, hits
    if rule == "FT095" and fires:
        assert hits == [(6, "self.items")], hits


@needs_cython
@pytest.mark.parametrize(("extra", "fires"), [
    # dearcygui's misspelt destructor: a class-private method nothing calls
    ("", False),
    ("    def close(self):\n        self.__dealloc()\n", True),
])
def test_a_class_private_method_nothing_calls_is_dead(tmp_path: Path, extra: str,
                                                      fires: bool) -> None:
    _write(tmp_path, {"m.pyx": "from libc.stdlib cimport free\n\ncdef class Table:\n"
                               "    cdef int *rows\n    def __dealloc(self):\n"
                               "        free(self.rows)\n        self.rows = NULL\n"
                               "    def get(self):\n        return self.rows[0]\n" + extra})
    hits = [(h.line, h.symbol) for h in _scan(tmp_path, frozenset({"FT102"})).hits]
    assert bool(hits) == fires, hits


_QHULL = """from cpython.pythread cimport (
    PyThread_type_lock, PyThread_allocate_lock, PyThread_acquire_lock,
    PyThread_release_lock)
from libc.stdlib cimport malloc, free

cdef class Hull:
    cdef PyThread_type_lock _lock
    cdef int *_qh
    cdef object _points

    def __cinit__(self):
        self._lock = PyThread_allocate_lock()
        self._qh = <int *>malloc(16)

    cdef void acquire_lock(self):
        if not PyThread_acquire_lock(self._lock, 0):
            PyThread_acquire_lock(self._lock, 1)

    cdef void release_lock(self):
        PyThread_release_lock(self._lock)

    def close(self):
%(close)s
    def add(self, p):
%(add)s
"""


@needs_cython
@pytest.mark.parametrize(("locked", "fires"), [(True, False), (False, True)])
def test_a_method_that_returns_holding_a_lock_locks_its_callers(
        tmp_path: Path, locked: bool, fires: bool) -> None:
    """Review 18: scipy's `_Qhull` takes its PyThread lock through `self.acquire_lock()` and
    gives it back with `self.release_lock()` in every method, `close()` included."""
    take, give = ("        self.acquire_lock()\n        try:\n", "        finally:\n"
                  "            self.release_lock()\n") if locked else ("        if 1:\n", "")
    _write(tmp_path, {"m.pyx": _QHULL % {
        "close": take + "            free(self._qh)\n            self._qh = NULL\n" + give,
        "add": take + "            self._qh[0] += 1\n"
               "            self._points = self._points + [p]\n" + give}})
    hits = sorted((h.rule, h.line) for h in _scan(tmp_path, frozenset({"FT095", "FT102"})).hits)
    assert bool(hits) == fires, hits


@needs_cython
@pytest.mark.parametrize(("py", "init", "fires"), [
    # randomgen's PCG64: `__init__` and a method under `with self.lock` are its callers
    ("", "        self._setup()\n", False),
    # a Python caller of the package could run it on a shared object
    ("def reseed(g):\n    g._setup()\n", "        self._setup()\n", True),
    # a method that is not making the object calls it unlocked
    ("", "    def reset(self):\n        self._setup()\n", True),
])
def test_a_private_method_the_project_calls_only_locked_or_while_making_is_locked(
        tmp_path: Path, py: str, init: str, fires: bool) -> None:
    _write(tmp_path, {"pkg/__init__.py": "", "pkg/helpers.py": py, "pkg/m.pyx":
                      "import threading\n\ncdef class Gen:\n    cdef object lock\n"
                      "    cdef object variant\n"
                      "    def __init__(self):\n        self.lock = threading.Lock()\n"
                      + init +
                      "    def _setup(self):\n        self.variant = self.variant + 'x'\n"
                      "    def configure(self):\n        with self.lock:\n"
                      "            self._setup()\n"})
    hits = [(h.path, h.line) for h in _scan(tmp_path, frozenset({"FT095"})).hits]
    assert bool(hits) == fires, hits


@needs_cython
def test_a_pxd_with_cpp_scoped_enums_still_types_the_attributes(tmp_path: Path) -> None:
    """Review 24: dearcygui's types.pxd declares `cpdef enum class`, which Cython parses only
    in C++ mode; the .pxd failed, `cdef double _x` went unseen and its `+=` was reported as a
    reference-count hazard."""
    _write(tmp_path, {"pkg/__init__.py": "",
                      "pkg/types.pxd": "cpdef enum class Op:\n    ALL\n    ANY\n\n"
                                       "cdef class Coord:\n    cdef double _x\n",
                      "pkg/types.pyx": "cdef class Coord:\n    def __iadd__(self, d):\n"
                                       "        self._x += d\n        return self\n"})
    result = _scan(tmp_path, frozenset({"FT095"}))
    assert [(h.line, h.severity) for h in result.hits] == [(3, "info")], [
        (h.line, h.severity, h.where) for h in result.hits]
    assert not result.diagnostics or all("parse" not in d.kind for d in result.diagnostics)


@needs_cython
def test_the_harm_of_an_attribute_update_follows_what_the_attribute_holds(
        tmp_path: Path) -> None:
    """Review 19: enable's `CGAffineTransform` attribute (a C struct of doubles) was said to
    have its reference count corrupted by racing updates."""
    _write(tmp_path, {"m.pyx": "ctypedef struct Affine:\n    double a\n    double b\n\n"
                               "cdef class T:\n    cdef Affine tr\n    cdef object items\n"
                               "    def shift(self):\n        self.tr = shifted(self.tr)\n"
                               "    def add(self, x):\n        self.items = self.items + [x]\n\n"
                               "cdef Affine shifted(Affine t):\n    return t\n"})
    messages = {h.symbol: h.where for h in _scan(tmp_path, frozenset({"FT095"})).hits}
    assert "half-written" in messages["self.tr"] and "reference" not in messages["self.tr"]
    assert "reference count" in messages["self.items"]


@needs_cython
@pytest.mark.parametrize(("typedef", "severity"), [
    # snappy: `ctypedef char Boolean` in an extern block, a cancel flag stored whole
    ("cdef extern from *:\n    ctypedef char Boolean\n", "info"),
    ("ctypedef char Flag\nctypedef Flag Boolean\n", "info"),
    # a typedef of an object type stays a warning
    ("ctypedef object Boolean\n", "warning"),
])
def test_a_whole_store_into_a_typedef_of_a_c_flag_is_information(
        tmp_path: Path, typedef: str, severity: str) -> None:
    _write(tmp_path, {"m.pyx": typedef + "cdef Boolean cancelled\n\n"
                               "def interrupt():\n    global cancelled\n    cancelled = 1\n"})
    hits = [(h.rule, h.severity) for h in _scan(tmp_path, frozenset({"FT094"})).hits]
    assert hits == [("FT094", None if severity == "warning" else severity)], hits


@needs_cython
def test_a_module_variable_declared_in_an_include_is_noted_where_it_is_declared(
        tmp_path: Path) -> None:
    """Review 20: snappy declares its globals in `basic.pyx`, which `SnapPy.pyx` includes;
    the note pointed at line 2 of the including file."""
    _write(tmp_path, {"m.pyx": "# the module\ninclude \"state.pxi\"\n",
                      "state.pxi": "\n\ncdef object ticker\n\n"
                                   "def tick():\n    global ticker\n    ticker = ticker + 1\n"})
    hits = list(_scan(tmp_path, frozenset({"FT094"})).hits)
    assert [(n.location.path, n.location.line) for h in hits for n in h.notes
            if n.location is not None] == [("state.pxi", 3)], hits


_STREAMS = """cdef extern from *:
    ctypedef struct stream_t:
        int disposition
    void stream_close(stream_t *s)

cdef class Player:
    cdef stream_t *video_st

    def close(self):
%s
    def use(self):
%s
"""


@needs_cython
@pytest.mark.parametrize(("close", "use", "expected"), [
    # closed, then cleared: a concurrent use reads freed memory
    ("        stream_close(self.video_st)\n        self.video_st = NULL\n",
     "        return self.video_st.disposition\n", [("error", "freed memory")]),
    # cleared only (ffpyplayer's `video_st`, pyarrow's `poison()`): a use after a test
    # can meet NULL
    ("        self.video_st = NULL\n",
     "        if self.video_st != NULL:\n            return self.video_st.disposition\n",
     [("warning", "use NULL")]),
    # cleared only, and the other method only tests it (ffpyplayer's `subtitle_st`)
    ("        self.video_st = NULL\n",
     "        return self.video_st != NULL\n", []),
])
def test_a_pointer_cleared_but_not_freed_is_a_null_hazard_not_a_use_after_free(
        tmp_path: Path, close: str, use: str, expected: list[tuple[str, str]]) -> None:
    """Reviews 17 and 20: pyarrow's `poison()` and ffpyplayer's `stream_component_close`
    set pointers to NULL without freeing what they held; FT102 said freed memory."""
    _write(tmp_path, {"m.pyx": _STREAMS % (close, use)})
    hits = _scan(tmp_path, frozenset({"FT102"})).hits
    got = [(h.severity or "error", h.where) for h in hits]
    assert [(sev, phrase) for (sev, where), (_s, phrase) in zip(got, expected, strict=False)
            if phrase in where] == expected and len(got) == len(expected), got


@needs_cython
@pytest.mark.parametrize(("take", "fires"), [
    ("    _log_mutex.lock()\n", False),  # ffpyplayer: a wrapped SDL mutex
    ("    SDL_LockMutex(_raw)\n", False),
    ("", True),
])
def test_a_mutex_locked_by_hand_in_cython_is_a_lock(tmp_path: Path, take: str,
                                                    fires: bool) -> None:
    """Review 20: ffpyplayer's `set_log_callback` stores `_log_callback` between
    `_log_mutex.lock()` and `_log_mutex.unlock()`."""
    give = "    _log_mutex.unlock()\n" if "lock()" in take else (
        "    SDL_UnlockMutex(_raw)\n" if take else "")
    _write(tmp_path, {"m.pyx": "cdef extern from *:\n    ctypedef struct SDL_mutex\n"
                               "    int SDL_LockMutex(SDL_mutex *m)\n"
                               "    int SDL_UnlockMutex(SDL_mutex *m)\n"
                               "cdef SDL_mutex *_raw\n"
                               "cdef class Mutex:\n    cdef lock(self): pass\n"
                               "    cdef unlock(self): pass\n"
                               "cdef Mutex _log_mutex = Mutex()\ncdef object _callback\n\n"
                               "def set_callback(cb):\n    global _callback\n" + take +
                               "    _callback = cb\n" + give})
    hits = [h.line for h in _scan(tmp_path, frozenset({"FT094"})).hits]
    assert bool(hits) == fires, hits


_PLAYER = """from libc.stdlib cimport malloc, free

cdef class Mutex:
    cdef lock(self): pass
    cdef unlock(self): pass

cdef Mutex audio_mutex = Mutex()

cdef class Player:
    cdef int *chunk
    cdef int count

    def close(self):
        self.count += 1
        audio_mutex.lock()
%s
        audio_mutex.unlock()
%s
    def play(self):
        return self.chunk[0]
"""


@needs_cython
@pytest.mark.parametrize(("inside", "after", "expected"), [
    # ffpyplayer's stream_component_close: the mutex covers the count, not the free
    ("        self.count = 0", "        free(self.chunk)\n        self.chunk = NULL\n",
     [("FT095", 14), ("FT102", 19)]),
    # the free under the mutex too: FT102 reports releases made outside any lock
    ("        free(self.chunk)\n        self.chunk = NULL", "", [("FT095", 14)]),
])
def test_a_lock_taken_by_hand_covers_the_statements_up_to_its_release(
        tmp_path: Path, inside: str, after: str, expected: list[tuple[str, int]]) -> None:
    """Review 20: a function that took any lock by hand counted as locked throughout."""
    _write(tmp_path, {"m.pyx": _PLAYER % (inside, after)})
    hits = sorted((h.rule, h.line) for h in _scan(tmp_path, frozenset({"FT095", "FT102"})).hits)
    assert hits == expected, hits


@needs_cython
def test_a_pointer_freed_through_a_copy_is_released(tmp_path: Path) -> None:
    """Review 21: rdbpython's `DB.close()` copies `self.db` to a local, clears the field and
    deletes the copy; FT102 said nothing was freed."""
    _write(tmp_path, {"m.pyx": _STREAMS % (
        "        cdef stream_t *tmp = self.video_st\n        self.video_st = NULL\n"
        "        stream_close(tmp)\n",
        "        return self.video_st.disposition\n")})
    hits = _scan(tmp_path, frozenset({"FT102"})).hits
    assert [(h.severity, "freed memory" in h.where) for h in hits] == [(None, True)], hits


@needs_cython
@pytest.mark.parametrize(("tail", "fires"), [
    # nng: `_nng_fini` runs once, at interpreter exit
    ("atexit.register(_fini)\n", False),
    ("import atexit as _atexit\n_atexit.register(_fini)\n", False),
    # also called from a live function: a live path
    ("atexit.register(_fini)\n\ndef close():\n    _fini()\n", True),
])
def test_a_function_only_registered_to_run_at_exit_is_not_a_live_path(
        tmp_path: Path, tail: str, fires: bool) -> None:
    hits = _serious_lines(tmp_path, "FT094", "import atexit\n\ncdef object _thread = None\n\n"
                          "def _fini():\n    global _thread\n    _thread = None\n\n" + tail)
    assert bool(hits) == fires, hits


@needs_cython
@pytest.mark.parametrize(("caller", "fires"), [
    # nng: `_start_DISPATCH_THREAD()` runs only inside `with _nng_init_lock:`
    ("    with _init_lock:\n        _start()\n", False),
    ("    _start()\n", True),
])
def test_a_cdef_function_the_module_calls_only_under_a_lock_is_locked(
        tmp_path: Path, caller: str, fires: bool) -> None:
    hits = _serious_lines(tmp_path, "FT094",
                          "import threading\n\n_init_lock = threading.Lock()\n"
                          "cdef object _thread = None\n\n"
                          "cdef _start():\n    global _thread\n"
                          "    _thread = threading.Thread()\n\n"
                          "def initialize():\n" + caller)
    assert bool(hits) == fires, hits
