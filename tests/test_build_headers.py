"""Build-requirement headers and the target interpreter's headers (gilaudit.headers).

The download path runs against a real package index on 127.0.0.1 (tests/dashboard_index_server)
serving REAL pybind11, nanobind, numpy and cppy wheels: a session fixture fetches them once
from PyPI with `pip download` into gilaudit's cache (`test-wheels/`); the tests themselves never
touch the internet, and where that cache is empty and PyPI cannot be reached they skip, saying so.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet

from conftest import ScanJson, free_threaded_python
from dashboard_index_server import IndexServer
from gilaudit.dashboard.model import ReleaseFile
from gilaudit.headers.interpreter import TargetPython, _installed_layout
from gilaudit.headers.pipconf import DEFAULT_INDEX, configured_index
from gilaudit.headers.requires import Declared, declared_requirements, merge
from gilaudit.headers.standard import cxx_standard
from gilaudit.headers.wheels import include_dirs_of, pick_wheel

# Versions other than those installed beside gilaudit for its own tests (pybind11 3.x, numpy
# from matplotlib), so that the scan must take them from the index.
WHEELS = {"pybind11": "2.13.6", "nanobind": "2.9.2", "numpy": "2.2.6", "cppy": "1.3.1"}


def _wheel_cache() -> Path:
    base = os.environ.get("GILAUDIT_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gilaudit")
    return Path(base) / "test-wheels"


@pytest.fixture(scope="session")
def real_wheels() -> dict[str, Path]:
    """project -> its real wheel, fetched once from PyPI (pip's own client, no configuration
    of this machine) and kept in the cache."""
    folder = _wheel_cache()
    folder.mkdir(parents=True, exist_ok=True)
    found: dict[str, Path] = {}
    missing = []
    for name, version in WHEELS.items():
        got = sorted(folder.glob(f"{name}-{version}-*.whl"))
        if got:
            found[name] = got[0]
        else:
            missing.append(f"{name}=={version}")
    if missing:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
             "--disable-pip-version-check", "-q", "-d", str(folder), *missing],
            capture_output=True, text=True, env=env, timeout=600, check=False)
        for spec in missing:
            name, version = spec.split("==")
            got = sorted(folder.glob(f"{name}-{version}-*.whl"))
            if not got:
                pytest.skip(f"no {spec} wheel in {folder} and PyPI could not be reached "
                            f"(pip: {proc.stderr.strip()[-200:]})")
            found[name] = got[0]
    return found


@pytest.fixture
def index(real_wheels: dict[str, Path], tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[IndexServer]:
    root = tmp_path / "index"
    for name, wheel in real_wheels.items():
        (root / name).mkdir(parents=True)
        shutil.copy(wheel, root / name / wheel.name)
    monkeypatch.delenv("GILAUDIT_OFFLINE", raising=False)
    with IndexServer(root) as server:
        yield server


def _project(tmp_path: Path, requires: list[str], source: str, name: str = "ext.cpp") -> Path:
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    quoted = ", ".join(f'"{r}"' for r in requires)
    (proj / "pyproject.toml").write_text(
        f'[build-system]\nrequires = ["setuptools", {quoted}]\n'
        'build-backend = "setuptools.build_meta"\n')
    (proj / "src" / name).write_text(source)
    return proj


PYBIND11_EXT = """\
#include <pybind11/pybind11.h>
namespace py = pybind11;
static int twice(int x) { return 2 * x; }
PYBIND11_MODULE(ext, m, py::mod_gil_not_used()) { m.def("twice", &twice); }
"""
PYBIND11_NUMPY_EXT = "#include <numpy/arrayobject.h>\n" + PYBIND11_EXT
NANOBIND_EXT = """\
#include <nanobind/nanobind.h>
namespace nb = nanobind;
NB_MODULE(ext, m) { m.def("add", [](int a, int b) { return a + b; }); }
"""
CPPY_EXT = """\
#include <cppy/cppy.h>
static PyObject *hello(PyObject *, PyObject *) { return cppy::incref(Py_None); }
static PyMethodDef methods[] = {{"hello", hello, METH_NOARGS, nullptr}, {}};
static PyModuleDef def = {PyModuleDef_HEAD_INIT, "ext", nullptr, 0, methods};
PyMODINIT_FUNC PyInit_ext() { return PyModuleDef_Init(&def); }
"""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _headers(report: dict[str, Any]) -> dict[str, Any]:
    got: dict[str, Any] = report["tool"]["headers"]["requirements"]
    return got


@pytest.mark.parametrize(("requires", "source", "names"), [
    (["pybind11>=2.13,<3", "numpy==2.2.6"], PYBIND11_NUMPY_EXT, ["pybind11", "numpy"]),
    (["nanobind>=2.4,<2.10"], NANOBIND_EXT, ["nanobind"]),
    (["cppy>=1.3"], CPPY_EXT, ["cppy"]),
])
def test_headers_downloaded_from_the_index_and_used(
        requires: list[str], source: str, names: list[str], index: IndexServer,
        real_wheels: dict[str, Path], tmp_path: Path, scan_json: ScanJson) -> None:
    proj = _project(tmp_path, requires, source)
    cache = tmp_path / "cache"
    _code, report = scan_json(str(proj), "--index-url", index.url, "--cache-dir", str(cache))
    assert report["files"]["src/ext.cpp"] == "parsed", report["diagnostics"]
    used = _headers(report)
    for name in names:
        entry = used[name]
        assert entry["origin"] == "downloaded"
        assert entry["wheel"] == real_wheels[name].name
        assert entry["sha256"] == _sha256(real_wheels[name])  # verified against the index
        assert entry["version"] == WHEELS[name]
        assert all(Path(d).is_dir() and str(cache) in d for d in entry["include_dirs"])
    # Only the include trees are unpacked: nothing to import or run.
    unpacked = [p for p in (cache / "headers").rglob("*") if p.is_file()
                and "downloads" not in p.parts]
    assert not [p for p in unpacked if p.suffix in (".py", ".so", ".pyc")]


def test_cached_headers_are_used_offline_without_asking_the_index(
        index: IndexServer, tmp_path: Path, scan_json: ScanJson) -> None:
    proj = _project(tmp_path, ["pybind11>=2.13,<3"], PYBIND11_EXT)
    cache = tmp_path / "cache"
    scan_json(str(proj), "--index-url", index.url, "--cache-dir", str(cache))
    asked = len(index.log)
    assert asked > 0
    _code, report = scan_json(str(proj), "--offline", "--cache-dir", str(cache))
    assert _headers(report)["pybind11"]["origin"] == "cache"
    assert report["files"]["src/ext.cpp"] == "parsed"
    assert len(index.log) == asked


def test_offline_with_an_empty_cache_is_a_diagnostic(tmp_path: Path,
                                                     scan_json: ScanJson) -> None:
    proj = _project(tmp_path, ["cppy>=1.3"], CPPY_EXT)
    code, report = scan_json(str(proj), "--offline", "--cache-dir", str(tmp_path / "cache"))
    assert code in (0, 1)
    diags = [d for d in report["diagnostics"] if d["kind"] == "build-headers"]
    assert diags and "--offline" in diags[0]["message"] and "cppy" in diags[0]["message"]
    assert report["files"]["src/ext.cpp"] == "parsed (partial)"


def test_an_unreachable_index_is_a_diagnostic_and_the_scan_goes_on(
        tmp_path: Path, scan_json: ScanJson, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GILAUDIT_OFFLINE", raising=False)
    proj = _project(tmp_path, ["cppy>=1.3"], CPPY_EXT)
    code, report = scan_json(str(proj), "--index-url", "http://127.0.0.1:9/simple/",
                             "--cache-dir", str(tmp_path / "cache"))
    assert code in (0, 1)
    diags = [d for d in report["diagnostics"] if d["kind"] == "build-headers"]
    assert diags and "could not be fetched" in diags[0]["message"]
    assert "src/ext.cpp" in report["files"]


def test_a_wheel_whose_hash_does_not_match_is_refused(
        index: IndexServer, tmp_path: Path, scan_json: ScanJson) -> None:
    index.faults["cppy"] = "wrong-hash"
    proj = _project(tmp_path, ["cppy>=1.3"], CPPY_EXT)
    cache = tmp_path / "cache"
    _code, report = scan_json(str(proj), "--index-url", index.url, "--cache-dir", str(cache))
    diags = [d["message"] for d in report["diagnostics"] if d["kind"] == "build-headers"]
    assert diags and "Hash mismatch" in diags[0]
    assert "cppy" not in _headers(report)
    assert not list((cache / "headers").glob("cppy-*"))


def test_no_wheel_satisfies_the_specifiers(index: IndexServer, tmp_path: Path,
                                           scan_json: ScanJson) -> None:
    proj = _project(tmp_path, ["cppy<1.0"], CPPY_EXT)
    _code, report = scan_json(str(proj), "--index-url", index.url,
                              "--cache-dir", str(tmp_path / "cache"))
    diags = [d["message"] for d in report["diagnostics"] if d["kind"] == "build-headers"]
    assert diags and "no wheel of cppy on the index satisfies <1.0" in diags[0]


def test_a_requirement_whose_headers_are_not_included_is_not_fetched(
        index: IndexServer, tmp_path: Path, scan_json: ScanJson) -> None:
    proj = _project(tmp_path, ["numpy==2.2.6", "cppy>=1.3"], CPPY_EXT)
    _code, report = scan_json(str(proj), "--index-url", index.url,
                              "--cache-dir", str(tmp_path / "cache"))
    assert set(_headers(report)) == {"cppy"}
    assert not [p for p in index.log if "numpy" in p]


# -- the target interpreter ------------------------------------------------------------------

INTERNAL = """\
#define Py_BUILD_CORE 1
#include <Python.h>
#include "internal/pycore_lock.h"
static PyObject *locked(PyObject *m, PyObject *a)
{ return PyBool_FromLong(PyMutex_IsLocked((PyMutex *)a)); }
static PyMethodDef methods[] = {{"locked", locked, METH_O, NULL}, {NULL, NULL, 0, NULL}};
static PyModuleDef def = {PyModuleDef_HEAD_INIT, "core", NULL, 0, methods};
PyMODINIT_FUNC PyInit_core(void) { return PyModuleDef_Init(&def); }
"""


def test_the_target_interpreters_headers_and_internal_directory(
        tmp_path: Path, scan_json: ScanJson) -> None:
    ft, why = free_threaded_python()
    if ft is None:
        pytest.skip(why)
    src = tmp_path / "core.c"
    src.write_text(INTERNAL)
    _code, report = scan_json(str(src), "--python", ft, "--cache-dir", str(tmp_path / "c"))
    python = report["tool"]["headers"]["python"]
    assert python["executable"] == ft and python["internal"] is True
    assert report["tool"]["python_headers"] == python["include"]
    assert (Path(python["include"]) / "internal").is_dir()
    assert report["files"]["core.c"] == "parsed", report["diagnostics"]
    _code, plain = scan_json(str(src), "--no-target-headers", "--cache-dir",
                             str(tmp_path / "c"))
    assert plain["tool"]["headers"]["python"] is None
    assert plain["files"]["core.c"] != "parsed"  # gilaudit's own Python has no internal/ of 3.13t


def test_a_python_that_is_not_free_threaded_is_a_diagnostic(tmp_path: Path,
                                                             scan_json: ScanJson) -> None:
    src = tmp_path / "m.c"
    src.write_text("#include <Python.h>\n")
    _code, report = scan_json(str(src), "--python", sys.executable, "--cache-dir",
                              str(tmp_path / "c"))
    diags = [d["message"] for d in report["diagnostics"] if d["kind"] == "target-headers"]
    assert diags and "not a free-threaded build" in diags[0]
    assert report["tool"]["headers"]["python"] is None


# -- reading the build files (pure) ----------------------------------------------------------

def test_declared_requirements_from_every_kind_of_build_file() -> None:
    files = {
        "pyproject.toml": '[build-system]\nrequires = ["setuptools", "pybind11>=2.13",'
                          ' "numpy; python_version < \'3.9\'", "cppy>=1.2"]\n',
        "setup.py": "import numpy\nfrom setuptools import setup\n"
                    "setup(setup_requires=['pybind11<3'])\n",
        "meson.build": "project('x', 'cpp')\ndep = dependency('nanobind')\n",
        "CMakeLists.txt": "find_package(pybind11 2.12 CONFIG REQUIRED)\n"
                          "find_package(Python 3.9 COMPONENTS Interpreter NumPy)\n",
        "third_party/lib/CMakeLists.txt": "find_package(nanobind 1.0 EXACT)\n",
        "sub/pyproject.toml": '[build-system]\nrequires = ["cython"]\n',
    }
    found, problems = declared_requirements(files)
    assert problems == []
    merged = {d.name: d for d in merge(found)}
    assert set(merged) == {"setuptools", "pybind11", "cppy", "numpy", "nanobind"}
    assert merged["pybind11"].specifier == "<3,>=2.12,>=2.13"
    assert "setup_requires" in merged["pybind11"].source
    assert "CMakeLists.txt find_package(pybind11)" in merged["pybind11"].source
    assert merged["numpy"].specifier == ""  # the marker excludes 3.13: only setup.py, CMake
    assert "setup.py imports numpy" in merged["numpy"].source
    assert merged["nanobind"].specifier == ""  # the vendored copy's pin is not the build's
    assert Declared(name="nanobind", specifier="", source="").prefixes() == ("nanobind/", "tsl/")


def test_unreadable_build_files_are_problems_not_crashes() -> None:
    found, problems = declared_requirements({"pyproject.toml": "[build-system\nrequires = [\n",
                                             "setup.py": "import numpy\ndef (:\n"})
    assert found == [] and len(problems) == 2


def _wheel(name: str, version: str, tag: str = "py3-none-any", yanked: bool = False,
           sha: str | None = "ab" * 32) -> ReleaseFile:
    py, abi, plat = tag.split("-")
    return ReleaseFile(filename=f"{name}-{version}-{tag}.whl", url="u", sha256=sha,
                       kind="wheel", version=version, python_tags=(py,), abi_tags=(abi,),
                       platform_tags=(plat,), yanked=yanked)


def test_pick_wheel_newest_admitted_portable_and_hashed() -> None:
    files = [_wheel("numpy", "2.2.6", "cp313-cp313t-win_amd64"),
             _wheel("numpy", "2.2.6", "cp313-cp313t-manylinux_2_17_x86_64"),
             _wheel("numpy", "2.3.0", "cp313-cp313-manylinux_2_17_x86_64"),
             _wheel("numpy", "2.4.0rc1", "cp313-cp313-manylinux_2_17_x86_64"),
             _wheel("numpy", "2.2.7", yanked=True), _wheel("numpy", "2.2.8", sha=None)]
    def picked(spec: str) -> str | None:
        got = pick_wheel(files, spec)
        return got.filename if got else None

    assert picked("<2.3") == "numpy-2.2.6-cp313-cp313t-manylinux_2_17_x86_64.whl"
    assert picked("") == "numpy-2.3.0-cp313-cp313-manylinux_2_17_x86_64.whl"
    assert picked(">=2.4.0rc1") == "numpy-2.4.0rc1-cp313-cp313-manylinux_2_17_x86_64.whl"
    assert picked(">=3") is None


def test_include_dirs_of_real_wheel_layouts() -> None:
    members = ["pybind11/include/pybind11/pybind11.h", "pybind11/include/pybind11/detail/x.h",
               "pybind11-2.13.6.data/headers/pybind11/pybind11.h",
               "nanobind/include/nanobind/nanobind.h",
               "nanobind/ext/robin_map/include/tsl/robin_map.h",
               "numpy/_core/include/numpy/arrayobject.h", "numpy/__init__.py"]
    assert include_dirs_of(members) == ("nanobind/include", "pybind11/include",
                                        "numpy/_core/include", "nanobind/ext/robin_map/include")


def test_pips_configured_index(tmp_path: Path) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = https://mirror.example/simple/\n")
    assert configured_index({"PIP_INDEX_URL": "https://a.example/simple/"}) == \
        "https://a.example/simple/"
    env = {"HOME": str(tmp_path), "XDG_CONFIG_DIRS": str(tmp_path / "none"),
           "PIP_CONFIG_FILE": str(conf)}
    assert configured_index(env) == "https://mirror.example/simple/"
    env["PIP_CONFIG_FILE"] = os.devnull
    assert configured_index(env) in (DEFAULT_INDEX, configured_index(env))


@pytest.mark.parametrize(("text", "std"), [
    ("project('x', 'cpp', default_options: ['cpp_std=c++20'])", "gnu++20"),
    ("set(CMAKE_CXX_STANDARD 23)", "gnu++2b"),
    ("target_compile_features(x PUBLIC cxx_std_14)", "gnu++17"),
    ("extra_compile_args=['-std=c++2a']", "gnu++20"),
    ("", "gnu++17"),
])
def test_cxx_standard(text: str, std: str) -> None:
    assert cxx_standard([text]) == std


def test_cmake_definitions_for_every_configuration() -> None:
    from gilaudit.buildinfo import _from_cmake  # noqa: PLC0415 - a private helper under test

    text = ('target_compile_definitions(ext PRIVATE VERSION_INFO="${PROJECT_VERSION}" FAST)\n'
            "add_definitions(-DWITH_X=1 -O2)\nadd_compile_definitions(Y)\n"
            "if(WIN32)\n  add_definitions(-DWIN=1)\nendif()\n"
            "target_compile_definitions(ext PUBLIC $<$<CONFIG:Debug>:DBG>)\n")
    assert _from_cmake(text) == ['VERSION_INFO=""', "FAST", "WITH_X=1", "Y"]


@pytest.mark.parametrize("tsan", [False, True])
def test_an_installed_interpreter_is_read_from_its_files_without_running_it(
        tmp_path: Path, tsan: bool) -> None:
    """Probing by running costs each cold scan a second (a ThreadSanitizer build is slow to
    start): a `bin/` beside `include/python3.13t/` says what it is. The executable here is not
    even runnable."""
    include = tmp_path / "include" / "python3.13t"
    include.mkdir(parents=True)
    (include / "Python.h").write_text("/* */\n")
    (include / "pyconfig.h").write_text("#define Py_GIL_DISABLED 1\n")
    (include / "patchlevel.h").write_text('#define PY_VERSION              "3.13.5"\n')
    (tmp_path / "lib" / "python3.13t").mkdir(parents=True)
    (tmp_path / "lib" / "python3.13t" / "_sysconfigdata_t_linux.py").write_text(
        "build_time_vars = {'CONFIG_ARGS': \"'--disable-gil'"
        + (" '--with-thread-sanitizer'" if tsan else "") + "\"}\n")
    (tmp_path / "bin").mkdir()
    exe = tmp_path / "bin" / "python3.13"
    exe.write_text("not a program\n")
    got = _installed_layout(str(exe))
    if tsan:
        assert got is False
    else:
        assert isinstance(got, TargetPython) and got.version == "3.13.5"
        assert got.include == str(include)
    (include / "pyconfig.h").write_text("/* a GIL build */\n")
    assert _installed_layout(str(exe)) is None


def test_cmake_asks_nanobind_for_its_major_version_and_pybind11_for_any_newer() -> None:
    """gemmi 0.7.5: `find_package(nanobind 2.4.0 CONFIG REQUIRED)`. nanobind's CMake version
    file is SameMajorVersion, so its build takes 2.x, not 3.1 (whose headers gemmi's code does
    not compile against); pybind11's is AnyNewerVersion."""
    found, _problems = declared_requirements({
        "CMakeLists.txt": "find_package(nanobind 2.4.0 CONFIG REQUIRED)\n"
                          "find_package(pybind11 2.12 CONFIG REQUIRED)\n",
        "pyproject.toml": '[build-system]\nrequires = ["nanobind >=2.4"]\n'})
    merged = {d.name: d for d in merge(found)}
    assert SpecifierSet(merged["nanobind"].specifier) == SpecifierSet(">=2.4,>=2.4.0,<3")
    assert merged["pybind11"].specifier == ">=2.12"
    picked = pick_wheel([_wheel("nanobind", v) for v in ("2.4.0", "2.15.0", "3.1.0")],
                        merged["nanobind"].specifier)
    assert picked is not None and picked.filename == "nanobind-2.15.0-py3-none-any.whl"
