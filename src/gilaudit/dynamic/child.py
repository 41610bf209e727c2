"""gilaudit's child script: runs INSIDE the interpreter under test, never in gilaudit's own.

Standard library only, and syntax for any CPython 3.6+ (no `match`, no `X | Y` at run time, no
dataclass slots): the interpreter under test has nothing else installed. It imports nothing
from gilaudit; the parent copies this file's path into the command line.

Protocol
--------
argv:   child.py import MODULE
env:    GILAUDIT_JOURNAL  path of the JSON-lines journal to append to (required)
        PYTHONPATH        where the extension modules are (set by the parent)
Each record is one JSON object on its own line, flushed and fsynced before the next step, so
that a child killed by a signal or a timeout leaves a journal that says how far it got:

  {"kind": "start", "pid": int, "version": str, "gil_enabled": bool|null,
   "free_threaded_build": bool}
  {"kind": "import-begin", "module": str}
  {"kind": "import-end", "module": str, "ok": bool, "error": str|null,
   "traceback": str|null, "warnings": [{"category": str, "message": str}],
   "gil_enabled": bool|null}
  {"kind": "done"}

An exception in the child itself is recorded as {"kind": "child-error", "traceback": str}
before it exits with status 70.
"""

import json
import os
import sys
import sysconfig
import traceback
import warnings
from typing import Any, Dict, List, Optional


def _gil_enabled() -> Optional[bool]:
    probe = getattr(sys, "_is_gil_enabled", None)
    return bool(probe()) if probe is not None else None


class Journal(object):
    def __init__(self, path: str) -> None:
        self._fh = open(path, "a", encoding="utf-8")

    def write(self, record: Dict[str, Any]) -> None:
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())


def import_module(journal: Journal, name: str) -> None:
    journal.write({"kind": "import-begin", "module": name})
    caught = []  # type: List[Dict[str, str]]
    ok, error, tb = True, None, None  # type: bool, Optional[str], Optional[str]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            __import__(name)
        except BaseException as exc:  # SystemExit at import is a finding, not our exit
            ok = False
            error = "%s: %s" % (type(exc).__name__, exc)
            tb = traceback.format_exc()
        caught = [{"category": w.category.__name__, "message": str(w.message)} for w in seen]
    journal.write({"kind": "import-end", "module": name, "ok": ok, "error": error,
                   "traceback": tb, "warnings": caught, "gil_enabled": _gil_enabled()})


def main(argv: List[str]) -> int:
    journal = Journal(os.environ["GILAUDIT_JOURNAL"])
    try:
        journal.write({
            "kind": "start", "pid": os.getpid(), "version": sys.version,
            "gil_enabled": _gil_enabled(),
            "free_threaded_build": str(sysconfig.get_config_var("Py_GIL_DISABLED")) == "1",
        })
        if len(argv) != 2 or argv[0] != "import":
            raise SystemExit("usage: child.py import MODULE")
        import_module(journal, argv[1])
        journal.write({"kind": "done"})
    except BaseException:
        journal.write({"kind": "child-error", "traceback": traceback.format_exc()})
        return 70
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
