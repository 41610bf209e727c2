"""Shared helpers for the test suite: run the real CLI in-process and compile fixtures."""

from __future__ import annotations

import json
import shutil
import subprocess
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gilaudit.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
REPORT_SCHEMA = Path(__file__).parent.parent / "src/gilaudit/report/schema/report-1.schema.json"
RULE_FIXTURES = FIXTURES / "rules"
REPO = Path(__file__).parent.parent

ScanJson = Callable[..., tuple[int, dict[str, Any]]]


@pytest.fixture
def scan_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> ScanJson:
    """Run `gilaudit scan ... --format json` in-process; return (exit code, report)."""

    def run(*argv: str) -> tuple[int, dict[str, Any]]:
        out = tmp_path / "report.json"
        code = main(["scan", *argv, "--format", "json", "-o", str(out), "--no-cache",
                     "--jobs", "1", "--no-progress"])
        capsys.readouterr()
        data = json.loads(out.read_text()) if out.exists() and out.stat().st_size else {}
        if data:
            validate_report(data)
        return code, data

    return run


def compile_c(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Compile one C file with gcc against the running interpreter's headers (no linking)."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler on PATH: fixtures cannot be compiled")
    include = sysconfig.get_paths()["include"]
    cmd = [gcc, "-fsyntax-only", "-Wall", "-Werror=implicit-function-declaration",
           f"-I{include}", f"-I{RULE_FIXTURES}", *extra, str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def compile_shared(source: Path, output: Path) -> subprocess.CompletedProcess[str]:
    """Build a real shared object (an extension module for the interpreter at hand)."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler on PATH: binary fixtures cannot be built")
    include = sysconfig.get_paths()["include"]
    cmd = [gcc, "-shared", "-fPIC", "-O0", f"-I{include}", f"-I{RULE_FIXTURES}", "-x", "c",
           str(source), "-o", str(output)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def validate_report(data: dict[str, Any]) -> None:
    """Every JSON report the tests write must match the schema gilaudit ships."""
    import jsonschema  # noqa: PLC0415 - a dev dependency, only for the tests

    schema = json.loads(REPORT_SCHEMA.read_text())
    jsonschema.Draft202012Validator(schema).validate(data)
