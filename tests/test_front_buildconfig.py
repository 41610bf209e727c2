"""The build-configuration front end, called directly: cibuildwheel's free-threaded selection
version by version, CI matrices, Limited API requests, and malformed YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from gilaudit.buildinfo import read_build_info
from gilaudit.config import Config
from gilaudit.discover import discover
from gilaudit.frontends import buildconfig as front_buildconfig
from gilaudit.frontends.buildconfig.cibw import CibwConfig, Setting, matches, parse_version, select
from gilaudit.frontends.contract import FrontEndResult, TargetView
from gilaudit.rulebook import load_rulebook

BOOK = load_rulebook()


def _analyse(root: Path, files: dict[str, str | bytes], *,
             select_rules: frozenset[str] | None = None) -> FrontEndResult:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    project = discover(root, max_file_size=4 * 1024 * 1024)
    config = Config(selected=select_rules or frozenset(BOOK.rules))
    view = TargetView(root=root, files=project.sources + project.others, config=config,
                      build=read_build_info(root, project.build_files))
    return front_buildconfig.analyse(view)


def _found(result: FrontEndResult) -> set[tuple[str, str, int]]:
    return {(h.rule, h.path, h.line) for h in result.hits}


def _cfg(version: str | None, requires: str | None = None, **settings: str) -> CibwConfig:
    made = {key.replace("_", "-"): Setting(key=key.replace("_", "-"), values=tuple(v.split()),
                                           text=v, path="x", line=1)
            for key, v in settings.items()}
    return CibwConfig(path="x", line=1, symbol="cibuildwheel",
                      version=parse_version(version) if version else None, settings=made,
                      requires_python=requires)


# --- cibuildwheel's selection rules ---------------------------------------------------------

@pytest.mark.parametrize(("version", "settings", "requires", "selected", "blocked"), [
    ("2.17.0", {}, None, set(), "version"),
    ("2.21.3", {}, None, set(), "enable"),
    ("2.21.3", {"free_threaded_support": "true"}, None, {"313"}, ""),
    ("2.22.0", {"enable": "cpython-freethreading"}, None, {"313"}, ""),
    ("3.0.1", {"enable": "cpython-freethreading"}, None, {"313"}, ""),
    ("3.0.1", {"enable": "cpython-freethreading cpython-prerelease"}, None, {"313", "314"}, ""),
    ("3.1.0", {}, None, {"314"}, ""),
    ("3.1.0", {"enable": "cpython-freethreading"}, None, {"313", "314"}, ""),
    ("3.3.0", {"enable": "all"}, None, {"313", "314", "315"}, ""),
    ("3.4.1", {"enable": "all"}, None, {"314", "315"}, ""),
    (None, {"skip": "cp31?t-*"}, None, set(), "skip"),
    (None, {"build": "cp314-* cp315t-*"}, None, {"315"}, ""),
    (None, {"skip": "cp314t-*"}, None, set(), "skip"),  # 3.15 is a pre-release: not by default
    ("4.0.0", {"enable": "cpython-freethreading"}, None, {"314"}, ""),
    (None, {}, None, {"314"}, ""),
    (None, {"skip": "*t-*"}, None, set(), "skip"),
    (None, {"skip": "cp31?t-*"}, None, set(), "skip"),
    (None, {"skip": "cp3{13,14}t-*"}, None, set(), "skip"),
    (None, {"skip": "cp314t-win*"}, None, {"314"}, ""),
    (None, {"build": "cp31[0-4]-*"}, None, set(), "build"),
    (None, {"build": "cp3{10..14}-*"}, None, set(), "build"),
    (None, {"build": "cp3*"}, None, {"314"}, ""),
    (None, {}, ">=3.8,<3.13", set(), "requires-python"),
    (None, {"enable": "cpython-freethreading"}, "<3.14", {"313"}, ""),
    (None, {"only": "cp314t-manylinux_x86_64"}, None, {"314"}, ""),
    (None, {"only": "cp312-manylinux_x86_64"}, None, set(), "only"),
])
def test_selection(version: str | None, settings: dict[str, str], requires: str | None,
                   selected: set[str], blocked: str) -> None:
    sel = select(_cfg(version, requires, **settings))
    assert sel.selected == selected
    assert sel.blocked_by == blocked


def test_pattern_matching_is_cibuildwheels() -> None:
    assert matches(("cp3{12,13}t-*",), "cp313t-win_amd64")
    assert matches(("*-manylinux_x86_64",), "cp314t-manylinux_x86_64")
    assert not matches(("cp31?-*",), "cp314t-win_amd64")


WHEELS = """\
name: wheels
on: [push]
jobs:
  build:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        include:
          - py: cp312
          - py: cp313
{extra}    steps:
      - uses: actions/checkout@v4
      - uses: {uses}
        env:
          CIBW_BUILD: "${{{{ matrix.py }}}}-*"
"""


@pytest.mark.parametrize(("extra", "uses", "expected"), [
    ("", "pypa/cibuildwheel@v3.2.0", {("FT139", ".github/workflows/w.yml", 15)}),
    ("          - py: cp314t\n", "pypa/cibuildwheel@v3.2.0", set()),
    ("", "pypa/cibuildwheel@${{ inputs.ref }}", {("FT139", ".github/workflows/w.yml", 15)}),
    # A SHA pin with its version in the comment: 2.22 needs `enable` for 3.13t.
    ("          - py: cp313t\n",
     "pypa/cibuildwheel@0123456789abcdef0123456789abcdef01234567  # v2.22.0",
     {("FT139", ".github/workflows/w.yml", 14)}),
])
def test_matrix_expansion_and_versions(tmp_path: Path, extra: str, uses: str,
                                       expected: set[tuple[str, str, int]]) -> None:
    workflow = WHEELS.format(extra=extra, uses=uses)
    result = _analyse(tmp_path, {".github/workflows/w.yml": workflow},
                      select_rules=frozenset({"FT139"}))
    assert _found(result) == expected


def test_unknown_expressions_are_not_judged(tmp_path: Path) -> None:
    workflow = WHEELS.format(extra="", uses="pypa/cibuildwheel@v3.2.0").replace(
        "${{ matrix.py }}", "${{ matrix.py }}${{ env.SUFFIX }}")
    result = _analyse(tmp_path, {".github/workflows/w.yml": workflow},
                      select_rules=frozenset({"FT139"}))
    assert _found(result) == set()


def test_run_steps_and_pins(tmp_path: Path) -> None:
    workflow = ("on: [push]\njobs:\n  b:\n    runs-on: ubuntu-latest\n    steps:\n"
                "      - run: python -m pip install cibuildwheel==2.16.5\n"
                "      - run: python -m cibuildwheel --output-dir wheelhouse\n")
    result = _analyse(tmp_path, {".github/workflows/w.yml": workflow},
                      select_rules=frozenset({"FT139"}))
    assert _found(result) == {("FT139", ".github/workflows/w.yml", 7)}
    assert "2.16.5" in result.hits[0].where


def test_pyproject_alone(tmp_path: Path) -> None:
    result = _analyse(tmp_path, {"pyproject.toml": (
        '[project]\nname = "x"\nrequires-python = ">=3.9"\n'
        '[tool.cibuildwheel]\nskip = ["pp*", "*t-*"]  # gilaudit: ignore[FT139] not ready\n')},
        select_rules=frozenset({"FT139"}))
    assert _found(result) == {("FT139", "pyproject.toml", 5)}
    assert result.hits[0].symbol == 'skip = ["pp*", "*t-*"]'
    assert [s.ids for s in result.suppressions["pyproject.toml"]] == [("FT139",)]


def test_platform_tables_override_the_global_options(tmp_path: Path) -> None:
    # cibuildwheel resolves `skip` from [tool.cibuildwheel.linux] on Linux: 3.14t is built there.
    result = _analyse(tmp_path, {"pyproject.toml": (
        '[tool.cibuildwheel]\nskip = ["cp31?t-*"]\n'
        '[tool.cibuildwheel.linux]\nskip = ["*_i686"]\n')}, select_rules=frozenset({"FT139"}))
    assert _found(result) == set()
    result = _analyse(tmp_path, {"pyproject.toml": (
        '[tool.cibuildwheel]\nskip = ["pp*"]\n'
        '[tool.cibuildwheel.linux]\nskip = ["*t-*"]\n'
        '[tool.cibuildwheel.macos]\nskip = ["*t-*"]\n'
        '[tool.cibuildwheel.windows]\nbuild = ["cp312-*"]\n')},
        select_rules=frozenset({"FT139"}))
    assert _found(result) == {("FT139", "pyproject.toml", 4)}


def test_environment_appends_to_enable(tmp_path: Path) -> None:
    workflow = ("on: [push]\njobs:\n  b:\n    runs-on: x\n    steps:\n"
                "      - uses: pypa/cibuildwheel@v2.22.0\n"
                "        env:\n          CIBW_ENABLE: pypy\n")
    result = _analyse(tmp_path, {
        ".github/workflows/w.yml": workflow,
        "pyproject.toml": '[tool.cibuildwheel]\nenable = ["cpython-freethreading"]\n'},
        select_rules=frozenset({"FT139"}))
    # 2.22 with cpython-freethreading (from the file) builds cp313t, and only that.
    assert _found(result) == {("FT139", ".github/workflows/w.yml", 6)}
    assert "3.13t" in result.hits[0].where


# --- FT143 --------------------------------------------------------------------------------------

TESTS = """\
on: [push]
jobs:
  test:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        python-version: ["3.12", "3.13"]  # 3.14t later
    steps:
      - uses: actions/setup-python@v5
        with:
          python-version: ${{ matrix.python-version }}
"""


@pytest.mark.parametrize(("extra", "expected"), [
    ({}, {("FT143", ".github/workflows/tests.yml", 7)}),
    ({"noxfile.py": "@nox.session(python=['3.13', '3.14t'])\ndef tests(s): ...\n"}, set()),
    ({"noxfile.py": "# TODO: add 3.14t\n"}, {("FT143", ".github/workflows/tests.yml", 7)}),
    ({".github/workflows/ft.yml": "on: [push]\njobs:\n  ft:\n    runs-on: x\n    steps:\n"
      "      - uses: actions/setup-python@v5\n        with:\n          python-version: 3.14t\n"},
     set()),
    ({".github/workflows/wheels.yml": "on: [push]\njobs:\n  w:\n    runs-on: x\n    steps:\n"
      "      - uses: pypa/cibuildwheel@v3.1.4\n"}, set()),
    ({".github/workflows/reuse.yml": "on: [push]\njobs:\n  t:\n"
      "    uses: scientific-python/reusable/.github/workflows/test.yml@v1\n"}, set()),
])
def test_no_ft_ci(tmp_path: Path, extra: dict[str, str | bytes],
                  expected: set[tuple[str, str, int]]) -> None:
    result = _analyse(tmp_path, {".github/workflows/tests.yml": TESTS, **extra},
                      select_rules=frozenset({"FT143"}))
    assert _found(result) == expected


# --- FT138 --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("files", "expected"), [
    ({"setup.cfg": "[metadata]\nname = x\n[bdist_wheel]\npy_limited_api = cp39\n"},
     {("FT138", "setup.cfg", 4)}),
    ({"setup.cfg": "[bdist_wheel]\npy_limited_api = false\n"}, set()),
    ({"pyproject.toml": '[[tool.setuptools.ext-modules]]\nname = "x._c"\nsources = ["c.c"]\n'
                        "py-limited-api = true\n"}, set()),  # names the file only
    ({"pyproject.toml": '[[tool.setuptools.ext-modules]]\nname = "x._c"\nsources = ["c.c"]\n'
                        'define-macros = [["Py_LIMITED_API", "0x030A0000"]]\n'},
     {("FT138", "pyproject.toml", 4)}),
    ({"pyproject.toml": '[tool.distutils.bdist_wheel]\npy-limited-api = "cp311"\n'},
     {("FT138", "pyproject.toml", 2)}),
    ({"pyproject.toml": "[tool.meson-python]\nlimited-api = true\n"},
     {("FT138", "pyproject.toml", 2)}),
    ({"pyproject.toml": "[tool.meson-python]\nlimited-api = true\n"
                        "[tool.meson-python.args]\nsetup = ['-Dpython.allow_limited_api=false']\n"},
     set()),
    ({"setup.py": "from setuptools import Extension\nL = True\nL = False\n"
                  "Extension('x', ['x.c'], py_limited_api=L)\n"}, set()),
    ({"setup.py": "from setuptools import Extension\n"
                  "Extension('x', ['x.c'], extra_compile_args=['-DPy_LIMITED_API=0x030B0000'])\n"},
     {("FT138", "setup.py", 2)}),
    ({"setup.py": "import sys\nfrom setuptools import Extension\n"
                  "Extension('x', ['x.c'], py_limited_api=sys.version_info >= (3, 11))\n"}, set()),
    ({"Cargo.toml": '[dependencies]\npyo3 = { version = "0.25", features = ["abi3-py39"] }\n'},
     set()),
])
def test_limited_api(tmp_path: Path, files: dict[str, str | bytes],
                     expected: set[tuple[str, str, int]]) -> None:
    result = _analyse(tmp_path, files, select_rules=frozenset({"FT138"}))
    assert _found(result) == expected


# --- bad input ----------------------------------------------------------------------------------

def test_malformed_and_hostile_yaml(tmp_path: Path) -> None:
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    prev = "a"
    for i in range(12):
        bomb += f"b{i}: &b{i} [" + ",".join([f"*{prev}"] * 9) + "]\n"
        prev = f"b{i}"
    result = _analyse(tmp_path, {
        ".github/workflows/broken.yml": "jobs:\n  test: [1, 2\n  other: x\n",
        ".github/workflows/bomb.yml": bomb,
        ".github/workflows/empty.yml": "",
        ".github/workflows/binary.yml": b"\xff\xfe\x00jobs:",
        ".github/workflows/tests.yml": TESTS,
    }, select_rules=frozenset({"FT143"}))
    kinds = {(d.path, d.kind) for d in result.diagnostics}
    assert (".github/workflows/broken.yml", "ci-config") in kinds
    assert (".github/workflows/bomb.yml", "ci-config") in kinds
    assert (".github/workflows/binary.yml", "encoding") in kinds
    assert result.files[".github/workflows/broken.yml"] == "failed: ci-config"
    assert result.files[".github/workflows/tests.yml"] == "parsed"
    # What could be read still counts.
    assert _found(result) == {("FT143", ".github/workflows/tests.yml", 7)}


def test_unselected_rules_do_no_work(tmp_path: Path) -> None:
    result = _analyse(tmp_path, {".github/workflows/tests.yml": TESTS},
                      select_rules=frozenset({"FT110"}))
    assert result == FrontEndResult()
