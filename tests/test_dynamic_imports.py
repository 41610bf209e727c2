"""Importing one extension module in a child of the interpreter under test: every outcome is
recorded, and nothing that happens in the child reaches gilaudit's own process."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from fixtures.dynamic.build import FIXTURES, build_extension
from gilaudit.dynamic.imports import check_import, gil_warning_module

# Recorded on a free-threaded CPython (../shared/recorded/free-threaded-output.md).
RECORDED_WARNING = (
    "<frozen importlib._bootstrap>:491: RuntimeWarning: The global interpreter lock (GIL) has "
    "been enabled to load module 'legacy_single', which has not declared that it can run "
    "safely without the GIL. To override this behavior and keep the GIL disabled (at your own "
    "risk), run with PYTHON_GIL=0 or -Xgil=0.")


def _built(tmp_path: Path, *names: str, python: str = sys.executable) -> Path:
    out = tmp_path / "ext"
    out.mkdir(exist_ok=True)
    for name in names:
        build_extension(FIXTURES / f"{name}.c", out, python=python)
    return out


def test_the_recorded_gil_warning_names_its_module() -> None:
    assert gil_warning_module(RECORDED_WARNING) == "legacy_single"
    assert gil_warning_module("RuntimeWarning: something else") is None


def test_clean_import(tmp_path: Path) -> None:
    ext = _built(tmp_path, "clean_funcs")
    got = check_import(sys.executable, "clean_funcs", import_paths=[str(ext)], timeout=20)
    assert got.status == "ok", got
    # A GIL build: no re-enabling can show, and none is claimed.
    assert not got.gil_reenabled


def test_missing_module_is_a_failed_import(tmp_path: Path) -> None:
    got = check_import(sys.executable, "no_such_module_here", import_paths=[str(tmp_path)],
                       timeout=20)
    assert got.status == "failed" and "ModuleNotFoundError" in got.detail
    assert "Traceback" in got.traceback


def test_crash_at_import(tmp_path: Path) -> None:
    ext = _built(tmp_path, "import_crash")
    got = check_import(sys.executable, "import_crash", import_paths=[str(ext)], timeout=20)
    assert got.status == "crashed" and "SIG" in got.detail
    assert "Fatal Python error" in got.traceback  # faulthandler's dump, from its own file
    assert "import_crash" in got.traceback


def test_hang_at_import_is_killed(tmp_path: Path) -> None:
    ext = _built(tmp_path, "import_hang")
    got = check_import(sys.executable, "import_hang", import_paths=[str(ext)], timeout=3)
    assert got.status == "hung"


def test_exit_at_import(tmp_path: Path) -> None:
    ext = _built(tmp_path, "import_exit")
    got = check_import(sys.executable, "import_exit", import_paths=[str(ext)], timeout=20)
    assert got.status == "exited" and "status 3" in got.detail


def test_megabytes_of_output_are_cut(tmp_path: Path) -> None:
    ext = _built(tmp_path, "chatty")
    got = check_import(sys.executable, "chatty", import_paths=[str(ext)], timeout=20)
    assert got.status == "ok"
    assert 0 < len(got.stdout_tail) <= 4096


OLDEST = Path("/root/.pyenv/versions/3.6.15/bin/python3")


@pytest.mark.skipif(not OLDEST.exists() or shutil.which("gcc") is None,
                    reason="CPython 3.6 (the oldest the child script supports) is not installed")
def test_the_child_runs_on_the_oldest_interpreter(tmp_path: Path) -> None:
    ext = _built(tmp_path, "clean_funcs", python=str(OLDEST))
    got = check_import(str(OLDEST), "clean_funcs", import_paths=[str(ext)], timeout=30)
    assert got.status == "ok", got
    assert got.gil_before is None  # no sys._is_gil_enabled before 3.13
