"""Import one extension module in a fresh child of the interpreter under test, and say what
happened: imported, failed, crashed, hung, exited, and whether importing it turned the GIL
back on. One module per process, because once the GIL is re-enabled it stays on."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ChildRun", "ImportOutcome", "check_import", "confine", "gil_warning_module",
           "outcome_of", "run_child", "set_limit", "signal_name", "tail_of", "wait_or_kill"]

_CHILD = str(Path(__file__).with_name("childside") / "gilaudit_child.py")
_TAIL = 4096
# CPython's wording (Python/import.c, the same in 3.13, 3.14 and main).
_GIL_WARNING = re.compile(
    r"The global interpreter lock \(GIL\) has been enabled to load module '([^']+)'")


def gil_warning_module(text: str) -> str | None:
    """The module named by the interpreter's "GIL has been enabled" warning, if any."""
    m = _GIL_WARNING.search(text)
    return m.group(1) if m else None


@dataclass(frozen=True, kw_only=True, slots=True)
class ImportOutcome:
    module: str
    status: str  # ok | failed | crashed | hung | exited | child-error
    detail: str = ""  # the exception, the signal or the exit status
    traceback: str = ""
    gil_before: bool | None = None
    gil_after: bool | None = None
    gil_warning: str = ""  # the module the interpreter named when it re-enabled the GIL
    stdout_tail: str = ""
    stderr_tail: str = ""

    @property
    def gil_reenabled(self) -> bool:
        return bool(self.gil_warning) or (self.gil_before is False and self.gil_after is True)


def confine(memory_bytes: int, cpu_seconds: int) -> None:
    # Runs in the child before exec: no core dumps, bounded memory and CPU time. Never above
    # what this process is allowed already (a dashboard job runs under its own limits).
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    set_limit(resource.RLIMIT_AS, memory_bytes, memory_bytes)
    set_limit(resource.RLIMIT_CPU, cpu_seconds, cpu_seconds + 5)


def set_limit(kind: int, soft: int, hard: int) -> None:
    """Lower a resource limit to (soft, hard), clamped to the current hard limit."""
    _cur_soft, cur_hard = resource.getrlimit(kind)
    if cur_hard != resource.RLIM_INFINITY:
        hard = min(hard, cur_hard)
        soft = min(soft, hard)
    resource.setrlimit(kind, (soft, hard))


def tail_of(path: Path, size_limit: int = _TAIL) -> str:
    """The last ``size_limit`` bytes of a log, as text; "" when it cannot be read."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - size_limit))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _journal(path: Path) -> list[dict[str, Any]]:
    records = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
        if isinstance(record, dict):
            records.append(record)
    return records


@dataclass(frozen=True, kw_only=True, slots=True)
class ChildRun:
    records: list[dict[str, Any]]
    code: int | None  # None: killed after the timeout
    stdout_tail: str
    stderr_tail: str
    fault: str = ""  # faulthandler's dump: a crash's or a hang's stacks


def run_child(python: str, command: str, module: str, *, import_paths: list[str],
              timeout: float, memory_bytes: int = 8 << 30,
              plan: dict[str, Any] | None = None,
              extra_env: dict[str, str] | None = None) -> ChildRun:
    """One child of the interpreter under test, confined; its journal and output tails."""
    with tempfile.TemporaryDirectory(prefix="gilaudit-child-") as scratch:
        work = Path(scratch)
        journal, fault = work / "journal.jsonl", work / "fault.txt"
        out, err = work / "stdout", work / "stderr"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(work), "TMPDIR": str(work),
            "PYTHONPATH": os.pathsep.join(import_paths),
            "GILAUDIT_JOURNAL": str(journal), "GILAUDIT_FAULT": str(fault),
            "PYTHONDONTWRITEBYTECODE": "1",
            **(extra_env or {}),
        }
        argv = [python, _CHILD, command, module]
        if plan is not None:
            plan_file = work / "plan.json"
            plan_file.write_text(json.dumps(plan), encoding="utf-8")
            argv.append(str(plan_file))
        cpu = max(1, int(timeout * 2))
        with out.open("wb") as fo, err.open("wb") as fe:
            proc = subprocess.Popen(
                argv, cwd=work, env=env, stdin=subprocess.DEVNULL,
                stdout=fo, stderr=fe, start_new_session=True,
                preexec_fn=lambda: confine(memory_bytes, cpu))  # noqa: PLW1509 - limits only
            code = wait_or_kill(proc, timeout)
        return ChildRun(records=_journal(journal), code=code, stdout_tail=tail_of(out),
                        stderr_tail=tail_of(err), fault=tail_of(fault, 16384))


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def wait_or_kill(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """The exit status, or None after killing the process and its whole session (it was
    started with start_new_session, so its own children go too) when it overran."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return None


def check_import(python: str, module: str, *, import_paths: list[str], timeout: float = 30.0,
                 memory_bytes: int = 8 << 30,
                 extra_env: dict[str, str] | None = None) -> ImportOutcome:
    run = run_child(python, "import", module, import_paths=import_paths, timeout=timeout,
                    memory_bytes=memory_bytes, extra_env=extra_env)
    return outcome_of(run, module, timeout)


def outcome_of(run: ChildRun, module: str, timeout: float) -> ImportOutcome:
    """What a child's journal, exit status and output say about importing ``module``."""
    records, code = run.records, run.code
    stdout_tail, stderr_tail = run.stdout_tail, run.stderr_tail
    start = next((r for r in records if r.get("kind") == "start"), {})
    end = next((r for r in records if r.get("kind") == "import-end"), None)
    warning = ""
    if end is not None:
        for w in end.get("warnings", []):
            named = gil_warning_module(str(w.get("message", "")))
            warning = warning or (named or "")
    warning = warning or (gil_warning_module(stderr_tail) or "")
    common: dict[str, Any] = {
        "module": module, "gil_before": start.get("gil_enabled"),
        "gil_after": end.get("gil_enabled") if end else None, "gil_warning": warning,
        "stdout_tail": stdout_tail, "stderr_tail": stderr_tail,
    }
    if end is not None:  # the import finished; what the child did afterwards is not ours
        if not end.get("ok"):
            return ImportOutcome(status="failed", detail=str(end.get("error") or ""),
                                 traceback=str(end.get("traceback") or ""), **common)
        return ImportOutcome(status="ok", **common)
    if any(r.get("kind") == "child-error" for r in records):
        tb = next(str(r.get("traceback", "")) for r in records if r.get("kind") == "child-error")
        return ImportOutcome(status="child-error", detail="the child script failed",
                             traceback=tb, **common)
    if not start and code is not None:
        # The interpreter never reached the child script (a broken interpreter, or one that
        # cannot start under the resource limits): nothing was imported, nothing to blame.
        return ImportOutcome(status="child-error",
                             detail=f"the interpreter did not start (exit status {code})",
                             traceback=stderr_tail, **common)
    if code is None or "Timeout (" in run.fault:
        return ImportOutcome(status="hung", detail=f"no answer within {timeout:g} s",
                             traceback=run.fault, **common)
    if code < 0:
        return ImportOutcome(status="crashed", detail=f"killed by {signal_name(-code)}",
                             traceback=run.fault, **common)
    return ImportOutcome(status="exited", detail=f"the process exited with status {code} "
                                                 "while importing", **common)
