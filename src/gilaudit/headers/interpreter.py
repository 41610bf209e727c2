"""The target interpreter's headers: the free-threaded CPython the stress phase would run
(or ``--python``), asked for its include directory by a standard-library probe in a child
process. The target's code is never involved.

Its `pyconfig.h` defines `Py_GIL_DISABLED`, its headers declare the critical sections and the
3.13+ APIs for real, and its `internal/` directory serves code built with `Py_BUILD_CORE`.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass

from gilaudit.dynamic import interpreters as found
from gilaudit.model import Diagnostic

__all__ = ["TargetPython", "find_target_python", "probe_include"]

_PROBE = ("import json, sys, sysconfig; print(json.dumps({'include': "
          "sysconfig.get_paths()['include'], 'version': '%d.%d.%d' % sys.version_info[:3], "
          "'ft': bool(sysconfig.get_config_var('Py_GIL_DISABLED'))}))")


@dataclass(frozen=True, kw_only=True, slots=True)
class TargetPython:
    executable: str
    version: str
    include: str  # holds Python.h, pyconfig.h and internal/
    stamp: str  # changes when its headers do (a rebuild in place)


def _stamp(include: str) -> str:
    parts = []
    for name in ("Python.h", "pyconfig.h", "patchlevel.h"):
        try:
            st = os.stat(os.path.join(include, name))
        except OSError:
            continue
        parts.append(f"{name}:{st.st_mtime_ns}:{st.st_size}")
    return ",".join(parts)


def probe_include(executable: str, timeout: float = 20.0) -> TargetPython | str:
    """The interpreter's include directory, or why it cannot be used."""
    try:
        proc = subprocess.run([executable, "-I", "-c", _PROBE], capture_output=True,
                              timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"did not answer within {timeout:g} s"
    except OSError as exc:
        return f"could not be run ({exc.strerror or exc})"
    try:
        data = json.loads(proc.stdout.decode("utf-8", errors="replace").strip().splitlines()[-1])
        include, version, ft = str(data["include"]), str(data["version"]), bool(data["ft"])
    except (ValueError, KeyError, TypeError, IndexError):
        return "did not report its include directory"
    if not ft:
        return f"is not a free-threaded build (Python {version})"
    if not os.path.isfile(os.path.join(include, "Python.h")):
        return f"has no Python.h in {include} (install its development headers)"
    return TargetPython(executable=executable, version=version, include=include,
                        stamp=_stamp(include))


def find_target_python(requested: str | None) -> tuple[TargetPython | None, list[Diagnostic]]:
    """``requested`` (``--python``) when it is a free-threaded build with headers; else the
    newest free-threaded build the stress phase would find (not a ThreadSanitizer one)."""
    if requested is not None:
        exe = found.which(requested) or requested
        got = probe_include(exe)
        if isinstance(got, TargetPython):
            return got, []
        return None, [Diagnostic(path=None, kind="target-headers",
                                 message=f"--python {requested} {got}: C/C++ parsed with "
                                         "gilaudit's own Python headers and compatibility "
                                         "prelude")]
    described = []
    for exe, how in found.candidates():
        info = found.describe(exe, found_by=how)
        if isinstance(info, found.Interpreter) and info.free_threaded_build and not info.tsan:
            described.append(info)
    for info in sorted(described, key=lambda i: i.version, reverse=True):
        got = probe_include(info.executable)
        if isinstance(got, TargetPython):
            return got, []
    return None, []
