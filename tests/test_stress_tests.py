"""`gilaudit stress PROJECT --tests`: the project's own test suite, serially and in threads.

The pure parts (test dependencies read statically, which modules a test file imports, outcomes
from the journal, findings from two runs) are checked on made-up input. The whole path runs
on the fixture project tests/fixtures/dynamic/testsuite_project (two extension modules, built
by pip offline; a test that fails only in threads, one that crashes only in threads, one marked
thread-unsafe, one failing serially, a clean file) under a free-threaded build, and is skipped
with the reason where there is none. pytest and pytest-run-parallel come from a wheelhouse
downloaded once into gilaudit's cache; every install then says --no-index.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import free_threaded_python, validate_report
from fixtures.dynamic.build import FIXTURES
from gilaudit.cli import main
from gilaudit.dynamic.install import install_target
from gilaudit.dynamic.pytestrun import FileRun, TestOutcome, outcomes_of
from gilaudit.dynamic.testdeps import read_test_requirements, requirement_lines
from gilaudit.dynamic.testresults import TestFile, suite_summary, thread_problems
from gilaudit.dynamic.testsuite import SuiteOptions, SuiteResult, run_project_tests, split_args
from gilaudit.dynamic.testtree import modules_of
from gilaudit.rulebook import load_rulebook

BOOK = load_rulebook()
PROJECT = FIXTURES / "testsuite_project"
THREADS = 8
RUNNERS = ("pytest", "pytest-run-parallel")


# -- test dependencies, read statically ----------------------------------------------------------

def test_requirements_come_from_extras_groups_and_files(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "Spam-Eggs"\n'
        '[project.optional-dependencies]\ntest = ["pytest>=8", "spam_eggs[fast]"]\n'
        'docs = ["sphinx"]\n'
        '[dependency-groups]\nlint = ["ruff"]\n'
        'dev = ["hypothesis", {include-group = "lint"}]\n')
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "test.txt").write_text(
        "# pinned\nnumpy>=2 ; python_version >= '3.13'  # arrays\n-r base.txt\n-e .\n"
        "attrs \\\n  >=23\n--index-url https://example.invalid/simple\n")
    (tmp_path / "requirements" / "base.txt").write_text("packaging\n")
    (tmp_path / "test-requirements.txt").write_text("pytest>=8\n")
    got = read_test_requirements(tmp_path, "spam-eggs")
    assert got.requirements == ("pytest>=8", "hypothesis", "ruff",
                                "numpy>=2 ; python_version >= '3.13'", "packaging",
                                "attrs   >=23")
    assert got.sources == ("pyproject.toml [project.optional-dependencies] test",
                           "pyproject.toml [dependency-groups] dev", "test-requirements.txt",
                           "requirements/test.txt")
    assert got.problems == ()


def test_requirements_from_setup_cfg_and_nothing_runs_setup_py(tmp_path: Path) -> None:
    (tmp_path / "setup.py").write_text("raise SystemExit('never run')\n")
    (tmp_path / "setup.cfg").write_text(
        "[metadata]\nname = spam\n[options.extras_require]\n"
        "testing =\n    pytest\n    tomli; python_version < '3.11'\n")
    got = read_test_requirements(tmp_path, "spam")
    assert got.requirements == ("pytest", "tomli; python_version < '3.11'")


def test_a_broken_pyproject_is_a_problem_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project\n")
    got = read_test_requirements(tmp_path, "x")
    assert got.requirements == () and got.problems and "pyproject.toml" in got.problems[0]


def test_requirement_lines_leave_paths_and_urls_out() -> None:
    assert requirement_lines(["./local", ".", "/abs/x", "git+https://x/y", "six  # c", ""]) \
        == ["six"]


# -- which modules a test file is about, and what the user's arguments select --------------------

def test_modules_of_a_test_file() -> None:
    modules = ["pkg._speedups", "pkg.sub._c", "other"]
    assert modules_of("from pkg import _speedups\n", modules) == ("pkg._speedups",)
    assert modules_of("import pkg.sub._c as c\nimport other\n", modules) == ("other",
                                                                              "pkg.sub._c")
    assert modules_of("import pkg\n", modules) == ("pkg._speedups", "pkg.sub._c")
    assert modules_of("from . import helpers\nimport os\n", modules) == ()
    assert modules_of("def broken(:\n", modules) == ()


def test_split_args_keeps_options_and_selects_paths(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    options, selection = split_args(
        ["-x", "-k", "tests", "tests", "tests/test_a.py::test_b", "--tb=short", "-m", "slow"],
        tmp_path)
    assert options == ("-x", "-k", "tests", "--tb=short", "-m", "slow")
    assert selection == ("tests", "tests/test_a.py::test_b")


# -- outcomes and findings from the journals -----------------------------------------------------

def _report(nodeid: str, when: str, outcome: str, **extra: object) -> dict[str, object]:
    return {"kind": "report", "nodeid": nodeid, "when": when, "outcome": outcome,
            "wasxfail": False, "longrepr": "", "duration": 0.1, **extra}


def test_outcomes_from_setup_call_and_teardown_reports() -> None:
    records = [
        _report("a", "setup", "passed"), _report("a", "call", "passed"),
        _report("a", "teardown", "failed", longrepr="teardown broke"),
        _report("b", "setup", "failed", longrepr="fixture broke"),
        _report("c", "setup", "passed"), _report("c", "call", "skipped", wasxfail=True),
        _report("d", "setup", "skipped", longrepr="needs numpy"),
        _report("e", "setup", "passed"), _report("e", "call", "failed", longrepr="E  assert 1"),
        _report("f", "setup", "passed"), _report("f", "call", "passed"),
    ]
    got = {k: (v.outcome, v.message) for k, v in outcomes_of(records).items()}
    assert got == {"a": ("error", "teardown broke"), "b": ("error", "fixture broke"),
                   "c": ("xfailed", ""), "d": ("skipped", "needs numpy"),
                   "e": ("failed", "E  assert 1"), "f": ("passed", "")}


def _run(threads: int, outcomes: dict[str, str], unsafe: dict[str, str] | None = None) -> FileRun:
    return FileRun(path="tests/test_x.py", threads=threads, thread_unsafe=unsafe or {},
                   outcomes={k: TestOutcome(nodeid=k, outcome=v,
                                            message=f"E   {v} here" if v != "crash" else
                                            "killed by SIGSEGV\nfaulthandler:\nStack ...")
                             for k, v in outcomes.items()})


def test_only_tests_that_pass_alone_become_findings() -> None:
    tests = ("t::ok", "t::races", "t::crashes", "t::unsafe", "t::broken", "t::skip")
    serial = _run(1, {"t::ok": "passed", "t::races": "passed", "t::crashes": "passed",
                      "t::unsafe": "passed", "t::broken": "failed", "t::skip": "skipped"})
    threaded = _run(4, {"t::ok": "passed", "t::races": "failed", "t::crashes": "crash",
                        "t::unsafe": "failed", "t::broken": "failed", "t::skip": "skipped"},
                    unsafe={"t::unsafe": "uses the thread_unsafe marker"})
    files = [TestFile(path="tests/test_x.py", modules=("pkg._c",), tests=tests, serial=serial,
                      threaded=threaded)]
    problems = thread_problems(files, 4)
    assert [(p.category, p.callable, p.module) for p in problems] == [
        ("thread-test-failure", "t::races", "pkg._c"), ("crash", "t::crashes", "pkg._c")]
    assert "E   failed here" in problems[0].notes[-1]
    assert problems[1].detail.startswith("(killed by SIGSEGV) when 4 threads ran it")
    summary = suite_summary("pkg", files, threads=4, found=len(problems), not_run=[],
                            requirements=(), seconds=1.0)
    assert (summary.tests, summary.passed_serially, summary.passed_in_threads,
            summary.failing_in_threads, summary.skipped) == (6, 4, 1, 2, 1)
    assert [t.nodeid for t in summary.thread_unsafe] == ["t::unsafe"]
    assert [(t.nodeid, t.reason) for t in summary.failing_serially] == [
        ("t::broken", "failed: E   failed here")]


def test_a_file_importing_several_extensions_is_the_projects() -> None:
    run = _run(1, {"t::a": "passed"})
    files = [TestFile(path="t.py", modules=("pkg._a", "pkg._b"), tests=("t::a",), serial=run,
                      threaded=_run(2, {"t::a": "error"}))]
    (problem,) = thread_problems(files, 2)
    assert problem.module == "(project)" and "pkg._a, pkg._b" in problem.notes[0]


def test_pytest_args_need_tests(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stress", "spam", "--", "-k", "x"]) == 2
    assert "need --tests" in capsys.readouterr().err


# -- the whole path, on a free-threaded build ---------------------------------------------------

def _cache_dir() -> Path:
    return Path(os.environ.get("GILAUDIT_CACHE_DIR") or
                Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gilaudit")


@pytest.fixture(scope="module")
def ft_python() -> str:
    python, why = free_threaded_python()
    if python is None:
        pytest.skip(why)
    return python


@pytest.fixture(scope="module")
def wheelhouse(ft_python: str) -> Path:
    """pytest and pytest-run-parallel (and what they need), downloaded once and kept."""
    house = _cache_dir() / "test-wheelhouse"
    done = house / ".complete"
    if not done.is_file():
        house.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([ft_python, "-m", "pip", "download", "--only-binary", ":all:",
                               "-d", str(house), *RUNNERS], capture_output=True, text=True,
                              timeout=300, check=False)
        if proc.returncode != 0:
            pytest.skip(f"cannot download {' and '.join(RUNNERS)} (no index?): "
                        f"{proc.stderr.strip()[-300:]}")
        done.write_text("")
    return house


def _offline(wheelhouse: Path) -> tuple[str, ...]:
    return ("--no-index", "--find-links", str(wheelhouse))


@pytest.fixture(scope="module")
def suite(ft_python: str, wheelhouse: Path,
          tmp_path_factory: pytest.TempPathFactory) -> tuple[SuiteResult, Path]:
    work = tmp_path_factory.mktemp("testsuite")
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("PIP_")}
    os.environ["PIP_CONFIG_FILE"] = os.devnull
    try:
        installed = install_target(ft_python, PROJECT, workdir=work / "env",
                                   pip_args=_offline(wheelhouse))
        assert installed.modules == ("tsfix._counter", "tsfix._scratch")
        result = run_project_tests(
            PROJECT, installed, workdir=work / "env", free_threaded=True,
            options=SuiteOptions(threads=THREADS, test_timeout=30.0), book=BOOK,
            repro_dir=work / "repro", pip_args=_offline(wheelhouse))
    finally:
        del os.environ["PIP_CONFIG_FILE"]
        os.environ.update(saved)
    return result, work


def _by_test(result: SuiteResult) -> dict[str, tuple[str, str | None]]:
    return {str(f.callable or f.module): (f.rule, f.module) for f in result.findings}


def test_ft_a_test_failing_only_in_threads_is_ft208_with_a_reproducer(
        suite: tuple[SuiteResult, Path]) -> None:
    result, _work = suite
    got = _by_test(result)
    assert got["tests/check_counter.py::test_increments_add_up"] == ("FT208", "tsfix._counter")
    (f,) = [f for f in result.findings if f.rule == "FT208"]
    assert "passes" in f.message and f"{THREADS} threads" in f.message
    assert any("assert" in n.message and "AssertionError" in n.message for n in f.notes)
    assert f.reproducer and f.evidence == "dynamic"
    proc = subprocess.run(["python3", f.reproducer], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "failed again" in proc.stdout


def test_ft_a_crash_in_threads_is_attributed_and_the_file_goes_on(
        suite: tuple[SuiteResult, Path]) -> None:
    result, _work = suite
    got = _by_test(result)
    assert got["tests/check_scratch.py::test_touch_many"] == ("FT202", "tsfix._scratch")
    (f,) = [f for f in result.findings if f.rule == "FT202"]
    assert "SIGSEGV" in f.message
    assert any("check_scratch.py" in n.message and "test_touch_many" in n.message
               for n in f.notes)
    # check_scratch's other tests, before and after the crash, passed in threads too; with
    # check_clean's two and check_counter's test_add that is five.
    assert result.summary is not None
    assert result.summary.passed_in_threads == 5
    assert f.reproducer
    proc = subprocess.run(["python3", f.reproducer], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 1 and "crashed" in proc.stdout, proc.stdout + proc.stderr


def test_ft_the_gil_reenabled_during_collection_is_ft200(suite: tuple[SuiteResult, Path]) -> None:
    result, _work = suite
    (f,) = [f for f in result.findings if f.rule == "FT200"]
    assert f.module == "tsfix._scratch" and "collected" in f.message


def test_ft_unsafe_and_serially_failing_tests_are_listed_not_found(
        suite: tuple[SuiteResult, Path]) -> None:
    result, _work = suite
    s = result.summary
    assert s is not None
    assert (s.files, s.tests, s.passed_serially) == (3, 9, 8)
    assert 1 <= s.failing_in_threads <= 2  # the crash, and the race when it shows (the FT208 test)
    assert [(t.nodeid, t.reason) for t in s.thread_unsafe] == [
        ("tests/check_counter.py::test_marked_thread_unsafe", "shares the process-wide counter")]
    assert [t.nodeid for t in s.failing_serially] == ["tests/check_counter.py::test_known_bug"]
    assert "assert 4 == 5" in s.failing_serially[0].reason
    named = _by_test(result)
    for quiet in ("test_marked_thread_unsafe", "test_known_bug", "check_clean.py"):
        assert not [n for n in named if quiet in n], named
    assert s.requirements == ("pytest>=7",) and s.not_run == ()


def test_ft_cli_stress_tests_merges_into_one_report(ft_python: str, wheelhouse: Path,
                                                    tmp_path: Path, offline_pip: None,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "proj"
    shutil.copytree(PROJECT, project)
    out = tmp_path / "report.json"
    code = main(["stress", str(project), "--tests", "--python", ft_python,
                 "--threads", str(THREADS), "--iterations", "20", "--trials", "1",
                 "--timeout", "3", "--budget", "30", "--no-progress",
                 "--pip-arg=--no-index", f"--pip-arg=--find-links={wheelhouse}",
                 "--format", "json", "-o", str(out), "--", "-k", "not clean"])
    capsys.readouterr()
    assert code == 1
    data = json.loads(out.read_text())
    validate_report(data)
    (suite_run,) = data["stress"]["tests"]
    assert suite_run["files"] == 2 and suite_run["tests"] == 7  # -k deselected check_clean
    rules = {(f["rule"], f["module"], f.get("callable")) for f in data["findings"]}
    assert ("FT208", "tsfix._counter", "tests/check_counter.py::test_increments_add_up") in rules
    assert ("FT202", "tsfix._scratch", "tests/check_scratch.py::test_touch_many") in rules
    # one FT200 for tsfix._scratch: the hammer's import check and the collection agree
    assert sum(1 for r in rules if r[0] == "FT200") == 1
    verdicts = {m["module"]: m["verdict"] for m in data["modules"]}
    assert verdicts["tsfix._scratch"] == "not ready"
