"""gilaudit's child script: runs INSIDE the interpreter under test, never in gilaudit's own.

Standard library only, and syntax for any CPython 3.6+ (no `match`, no `X | Y` at run time, no
dataclass slots): the interpreter under test has nothing else installed. It imports nothing
from gilaudit; the parent copies this file's path into the command line.

Protocol
--------
argv:   gilaudit_child.py import MODULE          import it and report how it went
        gilaudit_child.py surface MODULE         import it, then list what could be driven
        gilaudit_child.py drive MODULE PLAN      ... then probe and hammer it (gilaudit_drive)
        gilaudit_child.py sequence MODULE PLAN   ... then run its module-state sequence
env:    GILAUDIT_JOURNAL  path of the JSON-lines journal to append to (required)
        GILAUDIT_FAULT    file for faulthandler's crash and hang dumps (optional)
        GILAUDIT_TSAN_LOG ThreadSanitizer's log_path (optional): every "begin" record then
                          carries "tsan_offset", the size of this process's TSan log
        PYTHONPATH        where the extension modules are (set by the parent)
PLAN is a JSON file written by the parent (threads, iterations, trials, seed, budget, timeout,
and what an earlier child already did). Each record is one JSON object on its own line, written
with one write(2) before the next step, so a child killed by a signal or a timeout leaves a
journal that says how far it got (the data is in the kernel's page cache once written):

  {"kind": "start", "pid": int, "version": str, "gil_enabled": bool|null,
   "free_threaded_build": bool}
  {"kind": "import-begin", "module": str}
  {"kind": "import-end", "module": str, "ok": bool, "error": str|null,
   "traceback": str|null, "warnings": [{"category": str, "message": str}],
   "gil_enabled": bool|null}
  {"kind": "surface", "module": str, "items": [{"name": str, "kind": str,
   "signature": str|null, "skip": str|null}]}          (surface only)
  {"kind": "done"}

Surface kinds: function, class, method, property, special (`__len__`, `__getitem__`, ...).
Names that look like process exit, fork/exec, signals, the OS, the file system or the
network are listed with a skip reason and never called.

An exception in the child itself is recorded as {"kind": "child-error", "traceback": str}
before it exits with status 70.
"""

import faulthandler
import inspect
import json
import os
import re
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
        # Under ThreadSanitizer: each "begin" notes how long this process's TSan log is, so
        # that a report is pinned to the call that was running when TSan wrote it.
        prefix = os.environ.get("GILAUDIT_TSAN_LOG")
        self._tsan_log = "%s.%d" % (prefix, os.getpid()) if prefix else None

    def write(self, record: Dict[str, Any]) -> None:
        if self._tsan_log is not None and record.get("kind") == "begin":
            try:
                record["tsan_offset"] = os.stat(self._tsan_log).st_size
            except OSError:
                record["tsan_offset"] = 0
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()


class _nothing(object):
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def import_module(journal: Journal, name: str) -> bool:
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
    return ok


_SPECIAL = ("__len__", "__getitem__", "__setitem__", "__delitem__", "__iter__", "__next__",
            "__contains__", "__call__", "__enter__", "__exit__", "__hash__", "__eq__",
            "__repr__", "__str__", "__bool__", "__add__", "__iadd__")
# Words (whole parts of a name: "exit_now", "killAll", not "context") that mark a callable
# never to call. The file-system words only count for module-level functions: on the module's
# own objects "remove" and "truncate" are container operations.
_DANGEROUS = {
    "exit": "ends the process", "abort": "ends the process", "quit": "ends the process",
    "fork": "forks the process", "exec": "replaces the process", "execv": "replaces the process",
    "spawn": "starts processes", "system": "runs shell commands",
    "popen": "runs shell commands", "kill": "sends signals", "signal": "changes signals",
    "setuid": "changes the process identity", "chdir": "changes the working directory",
    "socket": "opens network connections", "connect": "opens network connections",
    "sleep": "only waits", "daemon": "detaches the process", "daemonize": "detaches the process",
    "shutdown": "stops services", "reboot": "restarts the machine",
}
_FILE_SYSTEM = {
    "remove": "deletes files", "unlink": "deletes files", "rmtree": "deletes files",
    "rmdir": "deletes files", "rename": "moves files", "chmod": "changes permissions",
    "chown": "changes ownership", "truncate": "changes files", "delete": "deletes files",
}
_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def _skip_reason(name: str, module_level: bool = True) -> Optional[str]:
    for word in (w.lower() for w in _WORDS.findall(name)):
        why = _DANGEROUS.get(word) or (_FILE_SYSTEM.get(word) if module_level else None)
        if why is not None:
            return "named like something that %s (%r)" % (why, word)
    return None


def _signature(obj: Any) -> Optional[str]:
    sig = getattr(obj, "__text_signature__", None)
    return sig if isinstance(sig, str) else None


def _belongs(obj: Any, module: Any, name: str, attr: str) -> bool:
    """Defined by this module, not re-exported from elsewhere. A builtin function is bound to
    the module object that made it; a type or function names an owner, often the package
    rather than the extension itself (orjson.orjson's functions say "orjson", _brotli's types
    "brotli"). It is someone else's only when that owner is another module, already loaded,
    that holds the very same object (``from os.path import join``)."""
    if getattr(obj, "__self__", None) is module:
        return True
    owner = getattr(obj, "__module__", None)
    if not isinstance(owner, str):
        return False
    if owner == name or name.startswith(owner + ".") or owner.startswith(name + "."):
        return True
    other = sys.modules.get(owner)
    return other is None or getattr(other, attr, None) is not obj


def _names(module: Any, name: str) -> List[str]:
    """The public names; a module that has only private ones (the C half of a package, like
    markupsafe._speedups) is driven through those."""
    every = sorted(vars(module))
    def candidates(names: List[str]) -> List[str]:
        return [a for a in names if callable(getattr(module, a, None))
                and _belongs(getattr(module, a), module, name, a)]
    public = candidates([a for a in every if not a.startswith("_")])
    if public:
        return public
    return candidates([a for a in every if a.startswith("_") and not a.startswith("__")])


def _pure_python(obj: Any) -> bool:
    """Python code of the package, not the extension's: a Python function, or a Python class
    that no extension type of the package is a base of (a subclass of one is reached through
    the extension's objects, and driven)."""
    if inspect.isfunction(obj):
        return True
    if not isinstance(obj, type):
        return False
    if not any(inspect.isfunction(v) for v in vars(obj).values()):
        return False
    return not any(getattr(base, "__module__", "builtins") != "builtins"
                   and not any(inspect.isfunction(v) for v in vars(base).values())
                   for base in obj.__mro__[1:])


_PYTHON_SKIP = "pure Python, not the extension's code (--python-callables drives it)"


def surface(journal: Journal, name: str, python_callables: bool = False) -> List[Dict[str, Any]]:
    module = sys.modules.get(name)
    items = []  # type: List[Dict[str, Any]]
    if module is None:
        journal.write({"kind": "surface", "module": name, "items": items})
        return items
    for attr in _names(module, name):
        obj = getattr(module, attr)
        if not python_callables and _pure_python(obj):
            items.append({"name": attr, "kind": "class" if isinstance(obj, type) else "function",
                          "signature": None, "skip": _PYTHON_SKIP})
        elif isinstance(obj, type) and issubclass(obj, BaseException):
            items.append({"name": attr, "kind": "class", "signature": None,
                          "skip": "an exception class: nothing to drive"})
        elif isinstance(obj, type):
            items.append({"name": attr, "kind": "class", "signature": _signature(obj),
                          "skip": _skip_reason(attr)})
            for member in sorted(vars(obj)):
                value = vars(obj)[member]
                qual = "%s.%s" % (attr, member)
                if member in _SPECIAL:
                    items.append({"name": qual, "kind": "special", "signature": None,
                                  "skip": None})
                elif member.startswith("_"):
                    continue
                elif type(value).__name__ in ("getset_descriptor", "member_descriptor",
                                              "property"):
                    items.append({"name": qual, "kind": "property", "signature": None,
                                  "skip": _skip_reason(member, False)})
                elif callable(value):
                    items.append({"name": qual, "kind": "method",
                                  "signature": _signature(value),
                                  "skip": _skip_reason(member, False)})
        else:
            items.append({"name": attr, "kind": "function", "signature": _signature(obj),
                          "skip": _skip_reason(attr)})
    journal.write({"kind": "surface", "module": name, "items": items})
    return items


_COMMANDS = ("import", "surface", "drive", "sequence")


def main(argv: List[str]) -> int:
    journal = Journal(os.environ["GILAUDIT_JOURNAL"])
    fault_path = os.environ.get("GILAUDIT_FAULT")
    fault = open(fault_path, "w") if fault_path else sys.stderr
    # The crashing thread only: walking the other threads while they run (the crash may
    # come with the GIL released) can fault again and cut the dump short.
    faulthandler.enable(file=fault, all_threads=False)
    try:
        journal.write({
            "kind": "start", "pid": os.getpid(), "version": sys.version,
            "gil_enabled": _gil_enabled(),
            "free_threaded_build": str(sysconfig.get_config_var("Py_GIL_DISABLED")) == "1",
        })
        if len(argv) not in (2, 3) or argv[0] not in _COMMANDS:
            raise SystemExit("usage: gilaudit_child.py import|surface|drive|sequence MODULE "
                             "[PLAN]")
        command, name = argv[0], argv[1]
        with open(argv[2], encoding="utf-8") if len(argv) == 3 else _nothing() as fh:
            plan = json.load(fh) if fh is not None else {}
        if not import_module(journal, name):
            journal.write({"kind": "done"})
            return 0
        if command in ("surface", "drive"):
            items = surface(journal, name, bool(plan.get("python_callables")))
        if command in ("drive", "sequence"):
            import gilaudit_drive as drive  # beside this file: the script's directory
            sys.setswitchinterval(float(plan.get("switch_interval", 5e-6)))
            dog = drive.Watchdog(float(plan.get("timeout", 10.0)), fault, journal)
            if command == "drive":
                drive.Driver(journal, sys.modules[name], plan, dog).run(items)
            else:
                drive.state_sequence(journal, sys.modules[name], plan, dog)
        journal.write({"kind": "done"})
    except BaseException:
        journal.write({"kind": "child-error", "traceback": traceback.format_exc()})
        return 70
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
