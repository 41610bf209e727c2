"""The target interpreter's headers: the free-threaded CPython the stress phase would run
(or ``--python``), asked for its include directory by a standard-library probe in a child
process. The target's code is never involved.

Its `pyconfig.h` defines `Py_GIL_DISABLED`, its headers declare the critical sections and the
3.13+ APIs for real, and its `internal/` directory serves code built with `Py_BUILD_CORE`.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def _plausible(exe: str, how: str) -> bool:
    """Candidates that can be a free-threaded build by their name (`python3.13t`, a pyenv
    `3.13.5t` installation) or by where `make ft-python` put them: describing every GIL
    build on the machine would cost each scan a second."""
    parts = os.path.realpath(exe).split(os.sep)
    return how == "gilaudit cache" or exe.endswith("t") or any(
        p.endswith("t") and p[:1].isdigit() for p in parts[-3:-1])


def _load(cache: Path | None) -> dict[str, Any]:
    try:
        data = json.loads(cache.read_text()) if cache is not None else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _identity(exe: str) -> str | None:
    try:
        st = os.stat(exe)
    except OSError:
        return None
    return f"{os.path.realpath(exe)}:{st.st_mtime_ns}:{st.st_size}"


_PY_VERSION = re.compile(r'^#define\s+PY_VERSION\s+"(\d+\.\d+\.\d+)', re.M)
_FT_CONFIG = re.compile(r"^#define\s+Py_GIL_DISABLED\s+1\b", re.M)


def _installed_layout(exe: str) -> TargetPython | bool | None:  # bool: always False
    """Read from the installation's files, without running it (a ThreadSanitizer build takes
    a second to start): its `include/pythonX.Yt/` headers beside `bin/`. False for a
    ThreadSanitizer build, None when the layout does not say."""
    prefix = os.path.dirname(os.path.dirname(os.path.realpath(exe)))
    for include in sorted(glob.glob(os.path.join(glob.escape(prefix), "include", "python3.*t"))):
        try:
            config = Path(include, "pyconfig.h").read_text(errors="replace")
            level = Path(include, "patchlevel.h").read_text(errors="replace")
        except OSError:
            continue
        version = _PY_VERSION.search(level)
        if not (_FT_CONFIG.search(config) and version and Path(include, "Python.h").is_file()):
            continue
        lib = os.path.join(prefix, "lib", os.path.basename(include))
        for data in glob.glob(os.path.join(glob.escape(lib), "_sysconfigdata_*.py")):
            try:
                if "thread-sanitizer" in Path(data).read_text(errors="replace"):
                    return False
            except OSError:
                pass
        return TargetPython(executable=exe, version=version.group(1), include=include,
                            stamp=_stamp(include))
    return None


def _probe_candidate(exe: str, how: str) -> TargetPython | None:
    layout = _installed_layout(exe)
    if layout is not None:
        return layout if isinstance(layout, TargetPython) else None
    info = found.describe(exe, found_by=how)
    if not (isinstance(info, found.Interpreter) and info.free_threaded_build
            and not info.tsan):
        return None
    got = probe_include(exe)
    return got if isinstance(got, TargetPython) else None


def find_target_python(requested: str | None, *, cache: Path | None = None,
                       ) -> tuple[TargetPython | None, list[Diagnostic]]:
    """``requested`` (``--python``) when it is a free-threaded build with headers; else the
    newest free-threaded build the stress phase would find (not a ThreadSanitizer one).
    What each candidate is gets remembered in ``cache`` (a JSON file), keyed by the
    executable's path, size and mtime."""
    if requested is not None:
        exe = found.which(requested) or requested
        got = probe_include(exe)
        if isinstance(got, TargetPython):
            return got, []
        return None, [Diagnostic(path=None, kind="target-headers",
                                 message=f"--python {requested} {got}: C/C++ parsed with "
                                         "gilaudit's own Python headers and compatibility "
                                         "prelude")]
    known = _load(cache)
    fresh: dict[str, Any] = {}
    usable: list[TargetPython] = []
    for exe, how in found.candidates():
        ident = _identity(exe)
        if ident is None or not _plausible(exe, how):
            continue
        entry: TargetPython | None
        if ident in known:
            value = known[ident]
            entry = TargetPython(executable=exe, version=str(value["version"]),
                                 include=str(value["include"]),
                                 stamp="") if isinstance(value, dict) else None
        else:
            entry = _probe_candidate(exe, how)
        fresh[ident] = {"version": entry.version, "include": entry.include} if entry else None
        if entry is not None:
            usable.append(TargetPython(executable=entry.executable, version=entry.version,
                                       include=entry.include, stamp=_stamp(entry.include)))
    if cache is not None and fresh != known:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(fresh))
            os.replace(tmp, cache)
        except OSError:
            pass  # only a cache
    def version(t: TargetPython) -> tuple[int, ...]:
        return tuple(int(x) for x in t.version.split(".") if x.isdigit())

    return (max(usable, key=version) if usable else None), []
