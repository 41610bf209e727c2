"""The confined child process every untrusted run goes through: the stress phase's import,
surface and drive children, the installer's build, and the dashboard's per-package jobs.

A child runs with no core dumps, bounded address space and CPU time, an empty working
directory and HOME, in a session of its own (so a timeout kills everything it started), and
writes a JSON-lines journal whose records survive any death of the process.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gilaudit.dynamic.tsan import child_options

__all__ = ["ChildRun", "confine", "read_journal", "read_tsan_logs", "run_child", "set_limit",
           "signal_name", "tail_of", "wait_or_kill"]

_CHILD = str(Path(__file__).with_name("childside") / "gilaudit_child.py")
_TAIL = 4096


def confine(memory_bytes: int, cpu_seconds: int) -> None:
    # Runs in the child before exec: no core dumps, bounded memory and CPU time. Never above
    # what this process is allowed already (a dashboard job runs under its own limits).
    # memory_bytes 0: no address-space limit (ThreadSanitizer reserves terabytes of virtual
    # memory for its shadow at start-up and dies under any limit that would matter).
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_bytes > 0:
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


def read_journal(path: Path) -> list[dict[str, Any]]:
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
    tsan_logs: dict[int, str] = field(default_factory=dict)  # pid -> its TSan log


def run_child(python: str, command: str, module: str, *, import_paths: list[str],
              timeout: float, memory_bytes: int = 8 << 30,
              plan: dict[str, Any] | None = None,
              extra_env: dict[str, str] | None = None,
              tsan: Path | None = None) -> ChildRun:
    """One child of the interpreter under test, confined; its journal and output tails.
    ``tsan``: the suppressions file of a ThreadSanitizer run; the child (a TSan build) logs
    its reports in its scratch directory, and they come back in ``tsan_logs``."""
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
        if tsan is not None:
            env["TSAN_OPTIONS"] = child_options(work / "tsan", tsan)
            env["GILAUDIT_TSAN_LOG"] = str(work / "tsan")  # the journal notes the log's size
            memory_bytes = 0
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
        return ChildRun(records=read_journal(journal), code=code, stdout_tail=tail_of(out),
                        stderr_tail=tail_of(err), fault=tail_of(fault, 16384),
                        tsan_logs=read_tsan_logs(work / "tsan"))


def read_tsan_logs(prefix: Path, size_limit: int = 32 << 20) -> dict[int, str]:
    """The logs TSan wrote to ``prefix.<pid>``, by pid; each capped (the head is kept: the
    first reports are the ones whose calls are known)."""
    logs: dict[int, str] = {}
    for path in prefix.parent.glob(prefix.name + ".*"):
        pid = path.name.rsplit(".", 1)[1]
        if not pid.isdigit():
            continue
        try:
            with path.open("rb") as fh:
                logs[int(pid)] = fh.read(size_limit).decode("utf-8", errors="replace")
        except OSError:
            continue
    return logs


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
