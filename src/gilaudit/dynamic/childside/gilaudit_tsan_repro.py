#!/usr/bin/env python3
"""gilaudit ThreadSanitizer reproducer: a standalone script (standard library only, 3.6+).

It runs the hammer reproducer beside it (PARAMS["inner"]: the same calls, threads,
iterations and seeds as the stress phase) under the ThreadSanitizer build of CPython that
gilaudit used, with TSan logging to a temporary directory, and reads the logs. Exit status 1
means TSan reported the same kind of report at the same pair of source lines again; 0 means
it did not in this run (races need the threads to overlap: run it again); 2 means the run
could not be made (the interpreter is gone, the hammer reproducer is missing).
"""

import os
import re
import subprocess
import sys
import tempfile
from typing import Any, Dict, List, Tuple  # noqa: F401 - Any, Dict: type comments

PARAMS = {}  # type: Dict[str, Any]  # filled in by gilaudit

_FRAME = re.compile(r"^\s+#\d+ .*?(\S+?):(\d+)(?::\d+)? \(")
_WARNING = re.compile(r"^WARNING: ThreadSanitizer: (.+?)(?: \(pid=\d+\))?\s*$")


def reports(text: str) -> List[Tuple[str, List[Tuple[str, int]]]]:
    """(kind, [(file, line) of every frame]) per report in one TSan log."""
    found = []  # type: List[Tuple[str, List[Tuple[str, int]]]]
    for line in text.splitlines():
        w = _WARNING.match(line)
        if w:
            found.append((w.group(1).split(" (")[0], []))
            continue
        m = _FRAME.match(line)
        if m and found:
            found[-1][1].append((m.group(1), int(m.group(2))))
    return found


def same_pair(frames: List[Tuple[str, int]]) -> bool:
    # Every site gilaudit pinned (a project-relative path and a line) is among the frames.
    return all(any((f == path or f.endswith("/" + path)) and n == line for f, n in frames)
               for path, line in PARAMS["sites"])


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    inner = os.path.join(here, PARAMS["inner"])
    python = os.environ.get("GILAUDIT_TSAN_PYTHON", PARAMS["python"])
    if not os.path.isfile(inner) or not os.access(python, os.X_OK):
        print("cannot run: %s or %s is missing" % (inner, python), file=sys.stderr)
        return 2
    print("gilaudit TSan reproducer: %s at %s" % (PARAMS["kind"], ", ".join(
        "%s:%d" % (p, n) for p, n in PARAMS["sites"])))
    with tempfile.TemporaryDirectory(prefix="gilaudit-tsan-") as work:
        options = ["log_path=" + os.path.join(work, "tsan"), "halt_on_error=0", "exitcode=0",
                   "report_signal_unsafe=0", "history_size=4", "second_deadlock_stack=1",
                   "handle_segv=0", "handle_sigbus=0", "handle_abort=0"]
        supp = os.path.join(here, PARAMS.get("suppressions") or "")
        if PARAMS.get("suppressions") and os.path.isfile(supp) and " " not in supp:
            options.append("suppressions=" + supp)
        env = dict(os.environ, TSAN_OPTIONS=" ".join(options), PYTHON_GIL="0")
        code = subprocess.call([python, inner], env=env)
        seen = 0
        for name in sorted(os.listdir(work)):
            with open(os.path.join(work, name), encoding="utf-8", errors="replace") as fh:
                for kind, frames in reports(fh.read()):
                    if kind == PARAMS["kind"] and same_pair(frames):
                        seen += 1
    if seen:
        print("reproduced: TSan reported it %d time(s) (the hammer exited %s)" % (seen, code))
        return 1
    print("not reproduced in this run (the hammer exited %s): run it again" % code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
