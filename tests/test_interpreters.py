"""Finding and describing interpreters for the dynamic phase: real ones where installed, and
free-threaded ones simulated by scripts that answer the probe with output recorded on a real
free-threaded build (../shared/recorded/free-threaded-output.md)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from gilaudit.cli import main
from gilaudit.dynamic.interpreters import Interpreter, candidates, choose, describe, parse_probe
from gilaudit.model import Diagnostic

# From the recording: sys.version, sys._is_gil_enabled(), Py_GIL_DISABLED, abiflags,
# EXT_SUFFIX and SOABI of a free-threaded CPython 3.15.0a0.
RECORDED_FT = {
    "version": [3, 15, 0],
    "full": "3.15.0a0 experimental free-threading build (main, Nov 25 2026, 22:22:42) "
            "[GCC 12.2.0]",
    "implementation": "cpython", "gil_disabled_build": 1, "gil_enabled": False,
    "abiflags": "t", "ext_suffix": ".cpython-315t-x86_64-linux-gnu.so",
    "soabi": "cpython-315t-x86_64-linux-gnu", "executable": "/opt/ft/bin/python3.15t",
}


def _probe_line(data: dict[str, object]) -> str:
    return "GILAUDIT-PROBE " + json.dumps(data)


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_recorded_free_threaded_output_is_free_threaded() -> None:
    got = parse_probe(_probe_line(RECORDED_FT), "/opt/ft/bin/python3.15t", "PATH")
    assert isinstance(got, Interpreter)
    assert got.free_threaded and got.free_threaded_build and got.gil_enabled is False
    assert got.version == (3, 15, 0) and got.abiflags == "t"
    # The same build started with PYTHON_GIL=1 (recorded: `True 1`) cannot show GIL races.
    forced = parse_probe(_probe_line({**RECORDED_FT, "gil_enabled": True}), "x", "PATH")
    assert isinstance(forced, Interpreter)
    assert forced.free_threaded_build and not forced.free_threaded


def test_recorded_gil_builds() -> None:
    # 3.13.0 GIL build: `True 0 ''`; 3.11.7: no sys._is_gil_enabled at all.
    g313 = parse_probe(_probe_line({**RECORDED_FT, "version": [3, 13, 0], "gil_enabled": True,
                                    "gil_disabled_build": 0, "abiflags": ""}), "x", "PATH")
    g311 = parse_probe(_probe_line({**RECORDED_FT, "version": [3, 11, 7], "gil_enabled": None,
                                    "gil_disabled_build": None, "abiflags": ""}), "x", "PATH")
    assert isinstance(g313, Interpreter) and not g313.free_threaded_build
    assert isinstance(g311, Interpreter) and g311.gil_enabled is None
    assert not g311.free_threaded


def test_the_running_interpreter_is_described_for_real() -> None:
    got = describe(sys.executable, found_by="--python")
    assert isinstance(got, Interpreter)
    assert got.version == tuple(sys.version_info[:3])
    assert got.implementation == "cpython"


def test_a_simulated_free_threaded_build_on_path_is_found_and_chosen(tmp_path: Path) -> None:
    _script(tmp_path / "python3.14t", f"echo '{_probe_line(RECORDED_FT)}'\n")
    found = candidates(path=str(tmp_path), pyenv_root=str(tmp_path / "none"),
                       data_home=str(tmp_path / "none"), cache_root=str(tmp_path / "none"))
    assert found == [(str(tmp_path / "python3.14t"), "PATH")]
    ft = describe(found[0][0], found_by="PATH")
    real = describe(sys.executable, found_by="--python")
    assert isinstance(ft, Interpreter) and isinstance(real, Interpreter)
    assert choose([real, ft]) is ft
    assert choose([real]) is real  # no free-threaded one: the GIL build, said plainly


@pytest.mark.parametrize(("body", "why"), [
    ("echo 'I am not Python'\n", "did not answer the probe"),
    ("echo 'GILAUDIT-PROBE {not json'\n", "unreadable"),
    ("kill -SEGV $$\n", "signal"),
    ("sleep 30\n", "did not answer within"),
])
def test_bad_interpreters_are_diagnostics(tmp_path: Path, body: str, why: str) -> None:
    exe = _script(tmp_path / "python3.14t", body)
    got = describe(str(exe), found_by="--python", timeout=2.0)
    assert isinstance(got, Diagnostic) and got.kind == "bad-interpreter"
    assert why in got.message


def test_not_executable_and_directories(tmp_path: Path) -> None:
    plain = tmp_path / "python3"
    plain.write_text("print(1)\n")
    for target in (plain, tmp_path):
        got = describe(str(target), found_by="--python")
        assert isinstance(got, Diagnostic) and "not an executable" in got.message


@pytest.mark.skipif(not Path(os.path.expanduser("~/.pyenv/versions")).is_dir(),
                    reason="no pyenv installations on this machine")
def test_pyenv_installations_are_found() -> None:
    found = candidates(path="", data_home="/nonexistent")
    assert any(how == "pyenv" for _exe, how in found)


def test_cli_lists_and_says_when_nothing_is_free_threaded(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["interpreters", "--python", sys.executable]) == 0
    out = capsys.readouterr().out
    assert "GIL build" in out and "no free-threaded interpreter found" in out
    assert main(["interpreters", "--python", sys.executable, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["chosen"] and data["interpreters"][0]["free_threaded"] is False
    assert main(["interpreters", "--python", "/nonexistent/python3.14t"]) == 3
