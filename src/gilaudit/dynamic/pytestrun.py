"""The project's pytest, run in confined children of the venv's interpreter.

One child collects the whole suite (with the GIL allowed back on, so that the interpreter's
"GIL has been enabled" warning can show); then each test file runs in children of its own,
once serially and once in threads (pytest-run-parallel). Every child loads gilaudit's
journaling plugin (childside/gilaudit_pytest_plugin.py, copied to the child's private
directory), so a child that crashes or hangs says which test was running; the parent records
that test's death and starts a fresh child for the rest of the file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gilaudit.dynamic.confined import (
    confine,
    read_journal,
    read_tsan_logs,
    signal_name,
    tail_of,
    wait_or_kill,
)
from gilaudit.dynamic.imports import gil_warning_module
from gilaudit.dynamic.tsan import child_options
from gilaudit.dynamic.tsanfindings import TsanEvent, pinned_reports

__all__ = ["Collection", "FileRun", "PytestChild", "TestOutcome", "collect", "outcomes_of",
           "run_file"]

_PLUGIN = Path(__file__).with_name("childside") / "gilaudit_pytest_plugin.py"
_FAULT_CHARS = 16384
# Always: gilaudit's journal; no cache written into the tree; no random test order (the
# serial and the threaded runs must meet the tests in the same order).
_BASE_ARGS = ("-p", "gilaudit_pytest_plugin", "-p", "no:cacheprovider", "-p", "no:randomly",
              "-q")
_PASSED_ENV = ("LANG", "LC_ALL", "LC_CTYPE", "TZ")


@dataclass(frozen=True, kw_only=True, slots=True)
class PytestChild:
    """How every pytest child of one project runs."""

    python: str  # the venv's interpreter
    cwd: Path  # the test tree's root
    options: tuple[str, ...] = ()  # the user's pytest options (paths and node ids left out)
    test_timeout: float = 60.0  # one test, before faulthandler declares a hang
    file_timeout: float = 600.0  # one child, everything included
    memory_bytes: int = 8 << 30
    free_threaded: bool = True  # run the tests with PYTHON_GIL=0
    tsan: Path | None = None  # a TSan run's suppressions file: the children log TSan reports


@dataclass(frozen=True, kw_only=True, slots=True)
class TestOutcome:
    __test__ = False  # not a pytest test class, whatever its name

    nodeid: str
    outcome: str  # passed | failed | error | skipped | xfailed | xpassed | crash | hang
    message: str = ""  # the failure's report, the skip reason, or the death and its dump
    seconds: float = 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class FileRun:
    """One test file in one mode (serial, or threads): every test's outcome."""

    path: str  # as pytest names it, relative to the tree
    threads: int  # 1: the serial run
    outcomes: dict[str, TestOutcome]
    thread_unsafe: dict[str, str] = field(default_factory=dict)  # pytest-run-parallel's
    children: int = 0
    seconds: float = 0.0
    problem: str = ""  # why the file (or the rest of it) did not run, if it did not
    tsan: tuple[TsanEvent, ...] = ()  # TSan's reports, each with the test that was running


@dataclass(frozen=True, kw_only=True, slots=True)
class Collection:
    items: tuple[tuple[str, str], ...]  # (node id, absolute path of its file)
    gil_warnings: tuple[tuple[str, str], ...]  # (module named, node id or "")
    gil_enabled_after: bool | None
    xdist: bool  # pytest-xdist is loaded: each run says -n 0
    problem: str = ""  # the collection child failed: why
    stderr_tail: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class _Run:
    records: list[dict[str, Any]]
    code: int | None
    stdout_tail: str
    stderr_tail: str
    fault: str
    tsan_logs: dict[int, str] = field(default_factory=dict)


def _run(child: PytestChild, args: list[str], *, gil_off: bool, timeout: float,
         skip: set[str] | None = None, only: set[str] | None = None) -> _Run:
    with tempfile.TemporaryDirectory(prefix="gilaudit-pytest-") as scratch:
        work = Path(scratch)
        shutil.copy(_PLUGIN, work / _PLUGIN.name)
        journal, fault = work / "journal.jsonl", work / "fault.txt"
        out, err = work / "stdout", work / "stderr"
        select = work / "select.json"
        select.write_text(json.dumps({"skip": sorted(skip or ()),
                                      "only": sorted(only) if only is not None else None}),
                          encoding="utf-8")
        home = work / "home"
        home.mkdir()
        venv_bin = str(Path(child.python).parent)
        env = {
            "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home), "TMPDIR": str(work), "PYTHONPATH": str(work),
            "GILAUDIT_JOURNAL": str(journal), "GILAUDIT_FAULT": str(fault),
            "GILAUDIT_SELECT": str(select),
            "GILAUDIT_TEST_TIMEOUT": str(child.test_timeout),
            "PYTHONDONTWRITEBYTECODE": "1",
            **{k: os.environ[k] for k in _PASSED_ENV if k in os.environ},
        }
        if gil_off:
            env["PYTHON_GIL"] = "0"
        memory = child.memory_bytes
        if child.tsan is not None:
            env["TSAN_OPTIONS"] = child_options(work / "tsan", child.tsan)
            env["GILAUDIT_TSAN_LOG"] = str(work / "tsan")
            memory = 0  # TSan reserves terabytes of virtual memory at start-up
        argv = [child.python, "-m", "pytest", *_BASE_ARGS, *child.options, *args]
        # CPU time is counted over all threads: room for every core to be busy throughout.
        cpu = int(timeout * max(1, os.cpu_count() or 1)) + 60
        with out.open("wb") as fo, err.open("wb") as fe:
            proc = subprocess.Popen(
                argv, cwd=child.cwd, env=env, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                start_new_session=True,
                preexec_fn=lambda: confine(memory, cpu))  # noqa: PLW1509 - limits
            code = wait_or_kill(proc, timeout)
        return _Run(records=read_journal(journal), code=code, stdout_tail=tail_of(out),
                    stderr_tail=tail_of(err, 8192), fault=tail_of(fault, _FAULT_CHARS),
                    tsan_logs=read_tsan_logs(work / "tsan"))


def tsan_events(run: _Run, where: str) -> list[TsanEvent]:
    """The reports in a pytest child's TSan logs, each with the test that was running ("" when
    none was); the module is filled in by the caller."""
    events = []
    for report, begin in pinned_reports(run.tsan_logs, run.records, {}):
        nodeid = str(begin.get("nodeid") or "")
        events.append(TsanEvent(module="", report=report, callables=(nodeid,) if nodeid else (),
                                where=where))
    return events


def collect(child: PytestChild, args: list[str]) -> Collection:
    """Collect the suite once, the GIL free to come back on (no PYTHON_GIL=0): an import
    that re-enables it shows as the interpreter's warning."""
    run = _run(child, ["--collect-only", *args], gil_off=False, timeout=child.file_timeout)
    collected = next((r for r in run.records if r.get("kind") == "collected"), None)
    warnings = [(gil_warning_module(str(r.get("message", ""))) or "", str(r.get("nodeid", "")))
                for r in run.records if r.get("kind") == "gil-warning"]
    said = gil_warning_module(run.stderr_tail + run.stdout_tail)
    if said and not any(m == said for m, _n in warnings):
        warnings.append((said, ""))
    if collected is None:
        how = (f"did not finish within {child.file_timeout:g} s" if run.code is None
               else f"was killed by {signal_name(-run.code)}" if run.code < 0
               else f"exited with status {run.code}")
        return Collection(items=(), gil_warnings=tuple((m, n) for m, n in warnings if m),
                          gil_enabled_after=None, xdist=False,
                          problem=f"collecting the tests {how}",
                          stderr_tail=(run.stdout_tail + run.stderr_tail).strip()[-3000:])
    items = tuple((str(i["nodeid"]), str(i.get("path", ""))) for i in collected["items"])
    errors = ""
    if run.code not in (0, 5):  # 5: no tests collected
        errors = f"pytest reported collection errors (exit status {run.code})"
    return Collection(items=items, gil_warnings=tuple((m, n) for m, n in warnings if m),
                      gil_enabled_after=collected.get("gil_enabled"),
                      xdist=bool(collected.get("xdist")), problem=errors,
                      stderr_tail=run.stdout_tail.strip()[-3000:] if errors else "")


def outcomes_of(records: list[dict[str, Any]]) -> dict[str, TestOutcome]:
    """Each reported test's outcome, from its setup, call and teardown reports."""
    reports: dict[str, dict[str, dict[str, Any]]] = {}
    for r in records:
        if r.get("kind") == "report":
            reports.setdefault(str(r["nodeid"]), {})[str(r.get("when"))] = r
    out = {}
    for nodeid, by_when in reports.items():
        setup, call, teardown = by_when.get("setup"), by_when.get("call"), by_when.get("teardown")
        decisive = call or setup or teardown or {}
        if setup is not None and setup.get("outcome") == "failed":
            outcome, decisive = "error", setup
        elif setup is not None and setup.get("outcome") == "skipped":
            outcome, decisive = ("xfailed" if setup.get("wasxfail") else "skipped"), setup
        elif call is not None and call.get("outcome") == "failed":
            outcome = "failed"
        elif call is not None and call.get("outcome") == "skipped":
            outcome = "xfailed" if call.get("wasxfail") else "skipped"
        elif call is not None:
            outcome = "xpassed" if call.get("wasxfail") else "passed"
        else:
            outcome = "error"
        if outcome == "passed" and teardown is not None and teardown.get("outcome") == "failed":
            outcome, decisive = "error", teardown
        seconds = sum(float(x.get("duration") or 0.0) for x in by_when.values())
        out[nodeid] = TestOutcome(nodeid=nodeid, outcome=outcome,
                                  message=str(decisive.get("longrepr") or ""), seconds=seconds)
    return out


def _open_test(records: list[dict[str, Any]]) -> str:
    """The test a child was in when it died: begun, never ended."""
    ended = {str(r.get("nodeid")) for r in records if r.get("kind") == "end"}
    begun = [str(r.get("nodeid")) for r in records if r.get("kind") == "begin"]
    return next((n for n in reversed(begun) if n not in ended), "")


def _death(run: _Run, child: PytestChild, timeout: float) -> tuple[str, str] | None:
    """None when the child finished; else (crash | hang, how)."""
    if any(r.get("kind") == "done" for r in run.records):
        return None
    if "Timeout (" in run.fault:
        return "hang", f"the test did not finish within {child.test_timeout:g} s"
    if run.code is None:
        return "hang", f"the file's run did not finish within {timeout:g} s"
    if run.code < 0 and -run.code == signal.SIGXCPU:
        return "hang", "the process ran out of CPU time"
    if run.code < 0:
        return "crash", f"killed by {signal_name(-run.code)}"
    return "crash", f"the process exited with status {run.code} during the test"


def run_file(child: PytestChild, path: str, *, threads: int, deadline: float,
             only: set[str] | None = None, max_children: int = 10) -> FileRun:
    """Run one test file (``threads`` 1: plainly; more: each test in that many threads),
    restarting after a crash or a hang with the tests already done left out. ``only``: the
    file's tests that were collected (the user's selection)."""
    started = time.monotonic()
    args = [f"--parallel-threads={threads}", path]
    outcomes: dict[str, TestOutcome] = {}
    thread_unsafe: dict[str, str] = {}
    collected: set[str] | None = None
    problem = ""
    children = 0
    gil_off = child.free_threaded
    found: list[TsanEvent] = []
    where = "while the test ran " + ("serially" if threads == 1 else f"in {threads} threads")
    while True:
        if children >= max_children:
            problem = f"{max_children} pytest processes died; the rest of the file did not run"
            break
        timeout = min(child.file_timeout, deadline - time.monotonic())
        if timeout <= 1:
            problem = "the time budget ran out before the file (or the rest of it) ran"
            break
        run = _run(child, args, gil_off=gil_off, timeout=timeout, skip=set(outcomes), only=only)
        children += 1
        found += tsan_events(run, where)
        for r in run.records:
            if r.get("kind") == "collected" and collected is None:
                collected = {str(i["nodeid"]) for i in r.get("items", [])}
            elif r.get("kind") == "parallel":
                thread_unsafe.update({str(k): str(v) for k, v in
                                      dict(r.get("thread_unsafe") or {}).items()})
        outcomes.update(outcomes_of(run.records))
        death = _death(run, child, timeout)
        if death is None:
            break
        category, how = death
        nodeid = _open_test(run.records)
        if not nodeid:
            tail = (run.fault or run.stderr_tail).strip()[-1500:]
            problem = f"pytest {how} outside any test" + (f":\n{tail}" if tail else "")
            break
        dump = (run.fault or run.stderr_tail).strip()
        outcomes[nodeid] = TestOutcome(nodeid=nodeid, outcome=category,
                                       message=how + (f"\nfaulthandler:\n{dump}" if dump else ""))
        if collected is not None and collected <= set(outcomes):
            break
    return FileRun(path=path, threads=threads, outcomes=outcomes, thread_unsafe=thread_unsafe,
                   children=children, seconds=time.monotonic() - started, problem=problem,
                   tsan=tuple(found))
