"""Installing a target (wheel, project directory) into a fresh venv of the interpreter under test,
and naming the extension modules it installed. Offline: pip's configuration is switched off and
every install that could reach an index says --no-index."""

from __future__ import annotations

import base64
import glob
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from packaging.tags import sys_tags

from fixtures.dynamic.build import FIXTURES, build_extension
from gilaudit.dynamic.install import InstallError, extension_modules, install_target

PROJECT = FIXTURES / "project"
SUFFIXES = [".cpython-313-x86_64-linux-gnu.so", ".abi3.so", ".so"]
STDLIB_BUILD_SYSTEM = ('[build-system]\nrequires = []\nbuild-backend = "stdlib_backend"\n'
                       'backend-path = ["."]\n')


@pytest.fixture(autouse=True)
def _no_pip_config(offline_pip: None) -> None:
    """The machine's pip.conf / PIP_* may point at indexes or wheel directories: not here."""


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _wheel(directory: Path, name: str, version: str, tag: str, files: dict[str, bytes]) -> Path:
    info = f"{name}-{version}.dist-info"
    files = {
        **files,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": (f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\n"
                          f"Tag: {tag}\n").encode(),
    }
    record = "".join(f"{p},sha256={_digest(d)},{len(d)}\n" for p, d in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    path = directory / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as whl:
        for member, data in files.items():
            whl.writestr(member, data)
    return path


def _clean_funcs_wheel(tmp_path: Path, tag: str | None = None) -> Path:
    so = build_extension(FIXTURES / "clean_funcs.c", tmp_path / "ext", python=sys.executable)
    # PyInit_clean_funcs: the module must sit at the top level under its own name.
    return _wheel(tmp_path, "mypkg", "1.0", tag or str(next(iter(sys_tags()))),
                  {so.name: so.read_bytes()})


def _project(tmp_path: Path, c_source: bytes, *, stdlib_backend: bool) -> Path:
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project)
    (project / "fixturepkg" / "clean_funcs.c").write_bytes(c_source)
    if stdlib_backend:
        pyproject = project / "pyproject.toml"
        text = pyproject.read_text()
        start, end = text.index("\n[build-system]\n"), text.index("\n[project]\n")
        pyproject.write_text(text[:start + 1] + STDLIB_BUILD_SYSTEM + text[end:])
    return project


def _imports(python: str, module: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, "-c", f"import {module}; print({module}.__file__)"],
                          capture_output=True, text=True, timeout=60, check=False)


# -- extension_modules ---------------------------------------------------------------------------

def test_extension_modules_match_the_interpreters_suffixes() -> None:
    record = [
        "pkg/__init__.py,sha256=abc,0\n",
        "pkg/sub/_speedups.cpython-313-x86_64-linux-gnu.so,sha256=abc,10\n",
        "pkg/_limited.abi3.so,,\n",
        "top.so,,\n",
        "pkg/_other_abi.cpython-312-x86_64-linux-gnu.so.bak,,\n",
        "pkg/_windows.pyd,,\n",
        "pkg-1.0.dist-info/RECORD,,\n",
    ]
    assert extension_modules(record, SUFFIXES) == [
        "pkg._limited", "pkg.sub._speedups", "top"]


def test_extension_modules_ignore_paths_outside_site_and_non_modules() -> None:
    record = [
        "../../bin/tool.so,,",
        "/usr/lib/evil.so,,",
        "pkg/../escape.so,,",
        "pkg.libs/libopenblas-r0-1a2b3c.so,,",  # a vendored library, not importable
        "pkg/mod.py,,",
        "pkg/data.so.txt,,",
        "",
        ",,",
        '"pkg/with,comma.so",,',
        "pkg/ok.so,,",
    ]
    assert extension_modules(record, SUFFIXES) == ["pkg.ok"]


def test_extension_modules_strip_the_longest_suffix_and_deduplicate() -> None:
    record = ["m.cpython-313-x86_64-linux-gnu.so,,", "m.so,,", "m.abi3.so,,"]
    assert extension_modules(record, [".so", ".abi3.so", ".cpython-313-x86_64-linux-gnu.so"]) \
        == ["m"]
    assert extension_modules(record, []) == []


# -- real installs -------------------------------------------------------------------------------

def test_a_wheel_installs_and_its_module_imports(tmp_path: Path) -> None:
    wheel = _clean_funcs_wheel(tmp_path)
    got = install_target(sys.executable, wheel, workdir=tmp_path / "work",
                         pip_args=["--no-index"])
    assert got.modules == ("clean_funcs",)
    assert (got.distribution, got.version) == ("mypkg", "1.0")
    assert got.venv == tmp_path / "work" / "venv" and Path(got.python).is_file()
    assert "mypkg" in got.log_tail
    proc = _imports(got.python, "clean_funcs")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(str(got.venv))


def test_a_wheel_without_extension_modules_installs_with_none(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, "purepkg", "2.0", "py3-none-any",
                   {"purepkg/__init__.py": b"X = 1\n"})
    got = install_target(sys.executable, wheel, workdir=tmp_path / "work",
                         pip_args=["--no-index"], system_site_packages=True)
    assert (got.distribution, got.version, got.modules) == ("purepkg", "2.0", ())
    assert "include-system-site-packages = true" in (got.venv / "pyvenv.cfg").read_text()


def test_a_source_tree_is_built_by_pip_offline(tmp_path: Path) -> None:
    project = _project(tmp_path, (FIXTURES / "clean_funcs.c").read_bytes(), stdlib_backend=True)
    got = install_target(sys.executable, project, workdir=tmp_path / "work",
                         pip_args=["--no-index"])
    assert (got.distribution, got.version) == ("gilaudit-fixture-project", "0.1")
    assert got.modules == ("fixturepkg.clean_funcs",)
    proc = _imports(got.python, "fixturepkg.clean_funcs")
    assert proc.returncode == 0, proc.stderr


def test_an_sdist_is_built_by_pip_offline(tmp_path: Path) -> None:
    project = _project(tmp_path, (FIXTURES / "clean_funcs.c").read_bytes(), stdlib_backend=True)
    sdist = tmp_path / "gilaudit_fixture_project-0.1.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        tar.add(project, arcname="gilaudit_fixture_project-0.1")
    got = install_target(sys.executable, sdist, workdir=tmp_path / "work",
                         pip_args=["--no-index"])
    assert (got.distribution, got.modules) == ("gilaudit-fixture-project",
                                               ("fixturepkg.clean_funcs",))


_CAN_BUILD_WITH_SETUPTOOLS = (
    "import importlib.util as u, sys\n"
    "from importlib.metadata import version\n"
    "st = tuple(int(x) for x in version('setuptools').split('.')[:2]) "
    "if u.find_spec('setuptools') else None\n"
    "wheel = u.find_spec('wheel') is not None\n"
    # Before 3.12 a new venv gets ensurepip's own (old) setuptools, which needs `wheel`; from
    # 3.12 on it gets none and sees the base's, which builds wheels alone from 70.1 on.
    "ok = (wheel and (st or sys.version_info < (3, 12))) or "
    "(sys.version_info >= (3, 12) and st and st >= (70, 1))\n"
    "sys.exit(0 if ok else 1)\n"
)


def _setuptools_python() -> str | None:
    """An interpreter whose new venv (with system site-packages) can build a setuptools project
    with no network; None when there is none here."""
    base = getattr(sys, "_base_executable", sys.executable)
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = [base, *sorted(glob.glob(f"{pyenv}/versions/3.1[0-9]*/bin/python3"))]
    for python in candidates:
        proc = subprocess.run([python, "-I", "-c", _CAN_BUILD_WITH_SETUPTOOLS],
                              capture_output=True, timeout=30, check=False)
        if proc.returncode == 0:
            return python
    return None


def test_a_setuptools_project_is_built_by_pip_offline(tmp_path: Path) -> None:
    python = _setuptools_python()
    if python is None:
        pytest.skip("no interpreter here has setuptools that can build a wheel offline "
                    "(setuptools with `wheel`, or setuptools >= 70.1 on Python 3.12+)")
    project = _project(tmp_path, (FIXTURES / "clean_funcs.c").read_bytes(), stdlib_backend=False)
    got = install_target(python, project, workdir=tmp_path / "work", system_site_packages=True,
                         pip_args=["--no-index", "--no-build-isolation"])
    assert (got.distribution, got.modules) == ("gilaudit-fixture-project",
                                               ("fixturepkg.clean_funcs",))


# -- bad input -----------------------------------------------------------------------------------

def test_a_file_that_is_no_installable_target(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(InstallError, match="is neither a wheel"):
        install_target(sys.executable, notes, workdir=tmp_path / "work")


def test_a_missing_target_fails_before_any_venv(tmp_path: Path) -> None:
    with pytest.raises(InstallError, match=r"there is no target to install at .*nothing\.whl"):
        install_target(sys.executable, tmp_path / "nothing.whl", workdir=tmp_path / "work")
    assert not (tmp_path / "work").exists()


def test_a_directory_that_is_not_a_project(tmp_path: Path) -> None:
    with pytest.raises(InstallError, match="is not a Python project"):
        install_target(sys.executable, tmp_path, workdir=tmp_path / "work")


@pytest.mark.parametrize("kind", ["false", "text"])
def test_an_interpreter_that_is_not_python(tmp_path: Path, kind: str) -> None:
    wheel = _wheel(tmp_path, "purepkg", "2.0", "py3-none-any", {"purepkg/__init__.py": b""})
    if kind == "false":
        python = shutil.which("false") or "/bin/false"
        expected = "is not a working Python 3 interpreter"
    else:
        script = tmp_path / "python3"
        script.write_text("this is not an interpreter\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        python = str(script)
        expected = re.escape(f"cannot run the interpreter {python}: Exec format error")
    with pytest.raises(InstallError, match=expected) as caught:
        install_target(python, wheel, workdir=tmp_path / "work")
    assert caught.value.message == str(caught.value)
    assert not (tmp_path / "work" / "venv").exists()


def test_a_missing_interpreter(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, "purepkg", "2.0", "py3-none-any", {"purepkg/__init__.py": b""})
    with pytest.raises(InstallError, match=r"cannot run the interpreter .*: No such file"):
        install_target(str(tmp_path / "python9.9"), wheel, workdir=tmp_path / "work")


def test_a_corrupt_wheel(tmp_path: Path) -> None:
    junk = tmp_path / "junk-1.0-py3-none-any.whl"
    junk.write_bytes(os.urandom(512))
    with pytest.raises(InstallError, match=r"pip could not install .*junk-1\.0-py3-none-any\.whl"
                       r": .*invalid") as caught:
        install_target(sys.executable, junk, workdir=tmp_path / "work", pip_args=["--no-index"])
    assert "ERROR:" in caught.value.log_tail


def test_a_wheel_for_another_platform(tmp_path: Path) -> None:
    wheel = _clean_funcs_wheel(tmp_path, tag="cp27-cp27mu-manylinux1_x86_64")
    with pytest.raises(InstallError, match="is not a supported wheel on this platform"):
        install_target(sys.executable, wheel, workdir=tmp_path / "work", pip_args=["--no-index"])


def test_a_source_tree_that_does_not_compile(tmp_path: Path) -> None:
    project = _project(tmp_path, b"#include <Python.h>\nthis is not C;\n", stdlib_backend=True)
    expected = f"pip could not install {re.escape(str(project))}"
    with pytest.raises(InstallError, match=expected) as caught:
        install_target(sys.executable, project, workdir=tmp_path / "work",
                       pip_args=["--no-index"])
    assert "compiling clean_funcs.c failed" in caught.value.log_tail


def test_a_step_that_overruns_is_killed(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, "purepkg", "2.0", "py3-none-any", {"purepkg/__init__.py": b""})
    started = time.monotonic()
    with pytest.raises(InstallError, match=r"timed out after 0\.5 s while creating the virtual "
                                           r"environment"):
        install_target(sys.executable, wheel, workdir=tmp_path / "work", timeout=0.5)
    assert time.monotonic() - started < 10
