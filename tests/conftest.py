"""Shared helpers for the test suite: run the real CLI in-process and compile fixtures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gilaudit.cli import main

# Scans in the tests never download build requirements' headers from the internet; the tests
# of that path (test_build_headers.py) lift this and use a local index.
os.environ["GILAUDIT_OFFLINE"] = "1"

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


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, driven by Selenium (the HTML report and dashboard tests)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(f"{' and '.join(missing)} missing: install Debian's chromium and "
                    "chromium-driver (apt-get install chromium chromium-driver)")
    # Selenium is a dev dependency: missing, this fails rather than skips.
    from selenium import webdriver  # noqa: PLC0415
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    profile = tempfile.mkdtemp(prefix="gilaudit-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1366,768",
                "--hide-scrollbars", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        driver.set_window_size(1366, 768)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def offline_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    """pip without this machine's configuration (its indexes and wheel directories)."""
    for name in list(os.environ):
        if name.startswith("PIP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)


def _built_by_make_ft_python() -> str | None:
    """The interpreter `make ft-python` left in gilaudit's cache, if any."""
    cache = os.environ.get("GILAUDIT_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gilaudit")
    exe = Path(cache) / "ft-python" / "latest-ft" / "bin" / "python3"
    return str(exe) if exe.is_file() else None


def tsan_python() -> tuple[str | None, str]:
    """(a free-threaded ThreadSanitizer build, "") or (None, why there is none):
    GILAUDIT_TEST_TSAN_PYTHON, else what `make ft-python-tsan` left in gilaudit's cache. CI
    sets GILAUDIT_REQUIRE_TSAN=1: having none fails the test instead of skipping."""
    from gilaudit.dynamic.interpreters import Interpreter, describe  # noqa: PLC0415

    wanted = os.environ.get("GILAUDIT_TEST_TSAN_PYTHON")
    cache = os.environ.get("GILAUDIT_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gilaudit")
    exe = wanted or str(Path(cache) / "ft-python" / "latest-ft-tsan" / "bin" / "python3")
    why = ("no ThreadSanitizer build of free-threaded CPython: run `make ft-python-tsan` or set "
           "GILAUDIT_TEST_TSAN_PYTHON")
    if Path(exe).is_file():
        got = describe(exe, found_by="test")
        if isinstance(got, Interpreter) and got.free_threaded and got.tsan:
            return exe, ""
        why = f"{exe} is not a free-threaded ThreadSanitizer build"
    if os.environ.get("GILAUDIT_REQUIRE_TSAN") == "1":
        pytest.fail(f"GILAUDIT_REQUIRE_TSAN=1 but {why}", pytrace=False)
    return None, why


def free_threaded_python() -> tuple[str | None, str]:
    """(a free-threaded interpreter, "") or (None, why there is none). Where one is required
    (CI sets GILAUDIT_REQUIRE_FREE_THREADED=1), having none fails the test instead of skipping.
    """
    from gilaudit.dynamic.interpreters import Interpreter, describe  # noqa: PLC0415

    wanted = os.environ.get("GILAUDIT_TEST_PYTHON")
    names = [wanted] if wanted else [
        n for n in (_built_by_make_ft_python(), "python3.15t", "python3.14t", "python3.13t",
                    "python3t") if n]
    why = ("no free-threaded interpreter: run `make ft-python`, set "
           "GILAUDIT_TEST_PYTHON=/path/to/python3.14t or put python3.13t/python3.14t on PATH")
    for name in names:
        exe = shutil.which(name) if os.sep not in name else name
        if exe is None:
            continue
        got = describe(exe, found_by="test")
        if isinstance(got, Interpreter) and got.free_threaded:
            return exe, ""
        if wanted:
            why = f"GILAUDIT_TEST_PYTHON={wanted} is not a free-threaded interpreter"
            break
    if os.environ.get("GILAUDIT_REQUIRE_FREE_THREADED") == "1":
        pytest.fail(f"GILAUDIT_REQUIRE_FREE_THREADED=1 but {why}", pytrace=False)
    return None, why
