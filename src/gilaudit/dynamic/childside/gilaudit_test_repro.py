#!/usr/bin/env python3
"""gilaudit reproducer for a test of the project's own suite: a standalone script (standard
library only, any CPython 3.6+; it starts the interpreter gilaudit used itself).

It runs the one test named in PARAMS again with pytest-run-parallel, in the virtual
environment and the test tree gilaudit made, with the same number of threads and PYTHON_GIL=0,
up to "trials" times. Exit status 1 means the test failed, crashed or hung again; 0 means it
passed every trial (races are probabilistic: run it again, or raise "trials"); 2 means it could
not be set up (the environment or the tree is gone, pytest could not collect the test).
"""

import os
import signal
import subprocess
import sys
from typing import Any, Dict, List

PARAMS = {}  # type: Dict[str, Any]  # filled in by gilaudit

_SETUP_FAILED = (2, 3, 4, 5)  # pytest: interrupted, internal error, usage error, no tests


def command(params: Dict[str, Any]) -> List[str]:
    return [params["python"], "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
            "-q", "--parallel-threads=%d" % params["threads"],
            "-o", "faulthandler_timeout=%d" % int(params["timeout"]),
            *params.get("options", []), params["nodeid"]]


def main() -> int:
    print("gilaudit reproducer: %s in %s (%d threads)"
          % (PARAMS["category"], PARAMS["nodeid"], PARAMS["threads"]))
    if not os.path.isfile(PARAMS["python"]) or not os.path.isdir(PARAMS["cwd"]):
        print("cannot run it: %s or %s is gone" % (PARAMS["python"], PARAMS["cwd"]))
        return 2
    env: Dict[str, str] = dict(os.environ)
    env.update(PARAMS.get("env", {}))
    cmd = command(PARAMS)
    print("$ cd %s && %s" % (PARAMS["cwd"], " ".join(cmd)))
    for trial in range(PARAMS["trials"]):
        proc = subprocess.Popen(cmd, cwd=PARAMS["cwd"], env=env, start_new_session=True)
        try:
            code = proc.wait(timeout=PARAMS["timeout"] + 30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            print("trial %d: the test hung (no end within %d s)" % (trial, PARAMS["timeout"]))
            return 1
        if code < 0:
            print("trial %d: the test crashed the interpreter (signal %d)" % (trial, -code))
            return 1
        if code == 1:
            print("trial %d: the test failed again" % trial)
            return 1
        if code in _SETUP_FAILED:
            print("could not run the test: pytest exited with status %d" % code)
            return 2
        if code != 0:
            print("trial %d: the interpreter exited with status %d" % (trial, code))
            return 1
    print("not reproduced in %d trial(s)" % PARAMS["trials"])
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # could not even set the problem up: neither 0 nor 1
        print("could not run the reproducer: %s: %s" % (type(exc).__name__, exc))
        sys.exit(2)
