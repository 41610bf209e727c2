"""gilaudit's pytest plugin: runs INSIDE the interpreter under test, in the project's pytest.

Standard library only, syntax for any CPython 3.6+ (see gilaudit_child.py), and it imports
neither pytest nor gilaudit: pytest finds the hooks by name. The parent copies this file into
the child's private directory, puts that directory on PYTHONPATH and passes
``-p gilaudit_pytest_plugin``.

Protocol
--------
env:    GILAUDIT_JOURNAL       path of the JSON-lines journal to append to (required)
        GILAUDIT_TSAN_LOG      ThreadSanitizer's log_path (optional): "begin" records then
                               carry "tsan_offset", the size of this process's TSan log
        GILAUDIT_FAULT         file for faulthandler's crash and hang dumps (optional)
        GILAUDIT_TEST_TIMEOUT  seconds one test may run before faulthandler dumps every
                               thread's stack and ends the process (a hang; optional)
        GILAUDIT_SELECT        a JSON file {"skip": [nodeid], "only": [nodeid] | null}: the
                               tests not to run (an earlier child of the same file already ran
                               or died in them), and the only ones to run (optional)
Each record is one JSON object on its own line, written with one write(2) before the test
goes on, so that a child killed by a signal or a timeout leaves a journal saying which test
was running:

  {"kind": "start", "pid": int, "gil_enabled": bool|null, "free_threaded_build": bool}
  {"kind": "collected", "items": [{"nodeid": str, "path": str, "thread_unsafe": bool}],
   "gil_enabled": bool|null, "xdist": bool}
  {"kind": "parallel", "thread_unsafe": {nodeid: reason}, "parallel": [nodeid]}
                                                  (pytest-run-parallel's own ledgers)
  {"kind": "gil-warning", "message": str, "when": str, "nodeid": str}
  {"kind": "begin", "nodeid": str}
  {"kind": "report", "nodeid": str, "when": "setup"|"call"|"teardown", "outcome": str,
   "wasxfail": bool, "longrepr": str, "duration": float}
  {"kind": "end", "nodeid": str}
  {"kind": "done", "exitstatus": int}
"""

import faulthandler
import json
import os
import sys
import sysconfig
from typing import Any, Dict, List, Optional, Set

_MAX_TEXT = 6000  # characters of a failure's report kept in the journal


def _gil_enabled() -> Optional[bool]:
    probe = getattr(sys, "_is_gil_enabled", None)
    return bool(probe()) if probe is not None else None


class _State(object):
    """What the plugin keeps for one pytest run (stored on the config object, not globally)."""

    def __init__(self) -> None:
        fault = os.environ.get("GILAUDIT_FAULT")
        self.fault = open(fault, "w") if fault else sys.stderr
        self.timeout = float(os.environ.get("GILAUDIT_TEST_TIMEOUT") or 0)
        self.skip: Set[str] = set()
        self.only: Optional[Set[str]] = None
        select = os.environ.get("GILAUDIT_SELECT")
        if select:
            with open(select, encoding="utf-8") as fh:
                chosen = json.load(fh)
            self.skip = set(chosen.get("skip") or ())
            if chosen.get("only") is not None:
                self.only = set(chosen["only"])


def _append(record: Dict[str, Any]) -> None:
    """One record, one write(2) in append mode: hooks without the config (a report's) can
    write too, and what is written survives the process dying right after."""
    prefix = os.environ.get("GILAUDIT_TSAN_LOG")
    if prefix and record.get("kind") == "begin":
        # Under ThreadSanitizer: how long this process's TSan log is when the test starts,
        # so that a report is pinned to the test that was running.
        try:
            record["tsan_offset"] = os.stat("%s.%d" % (prefix, os.getpid())).st_size
        except OSError:
            record["tsan_offset"] = 0
    with open(os.environ["GILAUDIT_JOURNAL"], "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def _state(config: Any) -> _State:
    return config._gilaudit_state  # type: ignore[no-any-return]


def pytest_configure(config: Any) -> None:
    state = _State()
    config._gilaudit_state = state
    _append({"kind": "start", "pid": os.getpid(), "gil_enabled": _gil_enabled(),
             "free_threaded_build": str(sysconfig.get_config_var("Py_GIL_DISABLED")) == "1"})


def pytest_sessionstart(session: Any) -> None:
    # After every plugin's pytest_configure: pytest's faulthandler plugin enables its own dump
    # to stderr there. The crashing thread only: walking the other threads while they run (a
    # crash in free threading comes with them running) can fault again and cut the dump
    # short; the hang timer below dumps every thread.
    faulthandler.enable(file=_state(session.config).fault, all_threads=False)


def pytest_collection_modifyitems(session: Any, config: Any, items: List[Any]) -> None:
    state = _state(config)

    def wanted(nodeid: str) -> bool:
        return nodeid not in state.skip and (state.only is None or nodeid in state.only)

    dropped = [item for item in items if not wanted(item.nodeid)]
    if dropped:
        items[:] = [item for item in items if wanted(item.nodeid)]
        config.hook.pytest_deselected(items=dropped)


def pytest_collection_finish(session: Any) -> None:
    items = []
    for item in session.items:
        path = getattr(item, "path", None) or getattr(item, "fspath", "")
        marked = getattr(item, "get_closest_marker", lambda name: None)("thread_unsafe")
        items.append({"nodeid": item.nodeid, "path": str(path),
                      "thread_unsafe": marked is not None})
    _append({"kind": "collected", "items": items, "gil_enabled": _gil_enabled(),
             "xdist": bool(session.config.pluginmanager.hasplugin("xdist"))})
    # pytest-run-parallel's own ledgers; its collection hook is tryfirst, so they are filled.
    parallel = session.config.pluginmanager.get_plugin("_run-parallel")
    if parallel is not None:
        _append({"kind": "parallel",
                 "thread_unsafe": {k: str(v) for k, v in
                                   getattr(parallel, "thread_unsafe", {}).items()},
                 "parallel": sorted(getattr(parallel, "run_in_parallel", {}))})


def pytest_warning_recorded(warning_message: Any, when: str, nodeid: str,
                            location: Any) -> None:
    text = str(getattr(warning_message, "message", warning_message))
    if "global interpreter lock" not in text:
        return
    _append({"kind": "gil-warning", "message": text, "when": when, "nodeid": nodeid})


def pytest_runtest_protocol(item: Any, nextitem: Any) -> None:
    state = _state(item.config)
    _append({"kind": "begin", "nodeid": item.nodeid})
    if state.timeout > 0:
        # A C thread that needs no GIL: fires even when a stuck thread holds it.
        faulthandler.dump_traceback_later(state.timeout, exit=True, file=state.fault)
    # pytest's own protocol runs the test


def pytest_runtest_logreport(report: Any) -> None:
    text = ""
    longrepr = getattr(report, "longrepr", None)
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        text = str(longrepr[2])  # a skip: (file, line, reason)
    elif longrepr is not None:
        text = str(longrepr)
    if len(text) > _MAX_TEXT:
        text = "... (cut)\n" + text[-_MAX_TEXT:]
    record = {"kind": "report", "nodeid": report.nodeid, "when": report.when,
              "outcome": report.outcome, "wasxfail": hasattr(report, "wasxfail"),
              "longrepr": text, "duration": float(getattr(report, "duration", 0.0))}
    _append(record)


def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
    faulthandler.cancel_dump_traceback_later()
    _append({"kind": "end", "nodeid": nodeid})


def pytest_sessionfinish(session: Any, exitstatus: Any) -> None:
    faulthandler.cancel_dump_traceback_later()
    _append({"kind": "done", "exitstatus": int(exitstatus)})
