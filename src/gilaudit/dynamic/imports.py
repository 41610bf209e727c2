"""Import one extension module in a fresh child of the interpreter under test, and say what
happened: imported, failed, crashed, hung, exited, and whether importing it turned the GIL
back on. One module per process, because once the GIL is re-enabled it stays on. The child
is one of ``confined``'s."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gilaudit.dynamic.confined import ChildRun, run_child, signal_name

__all__ = ["ImportOutcome", "check_import", "gil_warning_module", "outcome_of"]
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


def check_import(python: str, module: str, *, import_paths: list[str], timeout: float = 30.0,
                 memory_bytes: int = 8 << 30,
                 extra_env: dict[str, str] | None = None,
                 tsan: Path | None = None) -> ImportOutcome:
    run = run_child(python, "import", module, import_paths=import_paths, timeout=timeout,
                    memory_bytes=memory_bytes, extra_env=extra_env, tsan=tsan)
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
