"""Find and describe the interpreters the dynamic phase can run extensions under.

An interpreter is only ever described by running a tiny standard-library probe in a child
process with a timeout (it may be any CPython 3.6+, or not Python at all); nothing about it is
trusted from its file name. Free-threaded means a `Py_GIL_DISABLED` build whose GIL is off at
start-up (``PYTHON_GIL=1`` turns it back on, and then races protected by the GIL cannot show).
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gilaudit.model import Diagnostic

__all__ = [
    "PROBE", "Interpreter", "candidates", "choose", "describe", "parse_probe", "which",
]

_MARK = "GILAUDIT-PROBE "
# Runs on any CPython 3.6+, standard library only, and prints one marked JSON line.
PROBE = (
    "import json, sys, sysconfig\n"
    "g = getattr(sys, '_is_gil_enabled', None)\n"
    "print('" + _MARK + "' + json.dumps({"
    "'version': list(sys.version_info[:3]), 'full': sys.version, "
    "'implementation': sys.implementation.name, "
    "'gil_disabled_build': sysconfig.get_config_var('Py_GIL_DISABLED'), "
    "'gil_enabled': g() if g else None, 'abiflags': getattr(sys, 'abiflags', ''), "
    "'ext_suffix': sysconfig.get_config_var('EXT_SUFFIX'), "
    "'soabi': sysconfig.get_config_var('SOABI'), 'executable': sys.executable, "
    "'tsan': '-fsanitize=thread' in ' '.join(str(sysconfig.get_config_var(v) or '') "
    "for v in ('CONFIG_ARGS', 'PY_CFLAGS', 'CFLAGS')) or "
    "'--with-thread-sanitizer' in str(sysconfig.get_config_var('CONFIG_ARGS') or '')}))\n"
)
_PROBE_TIMEOUT = 20.0
_MAX_OUTPUT = 1 << 16
_FT_NAME = re.compile(r"^python3(?:\.\d+)?t$")


@dataclass(frozen=True, kw_only=True, slots=True)
class Interpreter:
    executable: str
    version: tuple[int, int, int]
    full_version: str
    implementation: str
    free_threaded_build: bool  # compiled with Py_GIL_DISABLED
    gil_enabled: bool | None  # sys._is_gil_enabled() at start-up; None before 3.13
    abiflags: str
    ext_suffix: str
    soabi: str
    found_by: str  # "--python", "PATH", "pyenv", "uv"
    tsan: bool = False  # built with ThreadSanitizer (--with-thread-sanitizer)

    @property
    def free_threaded(self) -> bool:
        """A free-threaded build running without the GIL: races can show."""
        return self.free_threaded_build and self.gil_enabled is False

    @property
    def label(self) -> str:
        kind = ("free-threaded" if self.free_threaded else
                "free-threaded build with the GIL enabled" if self.free_threaded_build
                else "GIL build")
        if self.tsan:
            kind += ", ThreadSanitizer"
        return f"CPython {'.'.join(map(str, self.version))} ({kind}) {self.executable}"

    def to_dict(self) -> dict[str, Any]:
        return {"executable": self.executable, "version": ".".join(map(str, self.version)),
                "full_version": self.full_version, "implementation": self.implementation,
                "free_threaded_build": self.free_threaded_build,
                "gil_enabled": self.gil_enabled, "free_threaded": self.free_threaded,
                "abiflags": self.abiflags, "ext_suffix": self.ext_suffix, "soabi": self.soabi,
                "found_by": self.found_by, "tsan": self.tsan}


def parse_probe(output: str, executable: str, found_by: str) -> Interpreter | str:
    """An Interpreter from the probe's output, or the reason it is not one."""
    line = next((ln for ln in output.splitlines() if ln.startswith(_MARK)), None)
    if line is None:
        return "did not answer the probe like a Python interpreter"
    try:
        data = json.loads(line[len(_MARK):])
        version = tuple(int(v) for v in data["version"])
        if len(version) != 3:
            raise ValueError("version")
        gil = data.get("gil_enabled")
        return Interpreter(
            executable=str(data.get("executable") or executable),
            version=(version[0], version[1], version[2]),
            full_version=str(data.get("full", "")),
            implementation=str(data.get("implementation", "")),
            free_threaded_build=str(data.get("gil_disabled_build")) == "1",
            gil_enabled=gil if isinstance(gil, bool) else None,
            abiflags=str(data.get("abiflags") or ""),
            ext_suffix=str(data.get("ext_suffix") or ""),
            soabi=str(data.get("soabi") or ""),
            found_by=found_by,
            tsan=data.get("tsan") is True,
        )
    except (ValueError, KeyError, TypeError) as exc:
        return f"answered the probe with something unreadable ({exc})"


def describe(executable: str, *, found_by: str, env: dict[str, str] | None = None,
             timeout: float = _PROBE_TIMEOUT) -> Interpreter | Diagnostic:
    """Run the probe under ``executable`` (isolated mode, a timeout, capped output)."""
    def bad(why: str) -> Diagnostic:
        return Diagnostic(path=executable, kind="bad-interpreter",
                          message=f"{executable}: {why}")

    if not os.access(executable, os.X_OK) or Path(executable).is_dir():
        return bad("not an executable file")
    run_env = dict(os.environ if env is None else env)
    run_env.pop("PYTHON_GIL", None)  # describe the interpreter as it starts by default
    try:
        proc = subprocess.run([executable, "-I", "-c", PROBE], capture_output=True,
                              timeout=timeout, env=run_env, check=False,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return bad(f"did not answer within {timeout:g} s")
    except OSError as exc:
        return bad(f"could not be run ({exc.strerror or exc})")
    out = proc.stdout[:_MAX_OUTPUT].decode("utf-8", errors="replace")
    result = parse_probe(out, executable, found_by)
    if isinstance(result, str):
        status = f"exit status {proc.returncode}" if proc.returncode >= 0 else \
            f"killed by signal {-proc.returncode}"
        return bad(f"{result} ({status})")
    return result


def _path_candidates(path: str) -> list[str]:
    out: list[str] = []
    for folder in path.split(os.pathsep):
        if not folder:
            continue
        for exe in sorted(glob.glob(os.path.join(glob.escape(folder), "python3*t"))):
            if _FT_NAME.match(os.path.basename(exe)) and os.access(exe, os.X_OK):
                out.append(exe)
    return out


def _pyenv_candidates(root: str | None) -> list[str]:
    base = root or os.path.expanduser("~/.pyenv")
    out = []
    for version_dir in sorted(glob.glob(os.path.join(glob.escape(base), "versions", "*"))):
        for exe in sorted(glob.glob(os.path.join(glob.escape(version_dir), "bin", "python3*"))):
            name = os.path.basename(exe)
            if re.fullmatch(r"python3(\.\d+)?t?", name) and os.access(exe, os.X_OK):
                out.append(exe)
                break  # one per installation
    return out


def _uv_candidates(data_home: str | None) -> list[str]:
    base = data_home or os.path.expanduser("~/.local/share")
    pattern = os.path.join(glob.escape(base), "uv", "python", "cpython-3*", "bin", "python3*")
    return sorted(exe for exe in glob.glob(pattern)
                  if re.fullmatch(r"python3(\.\d+)?t?", os.path.basename(exe)))


def _cache_candidates(cache_root: str | None) -> list[str]:
    """The interpreters `make ft-python` and `make ft-python-tsan` built (tools/ft-python.sh)."""
    base = cache_root or os.environ.get("GILAUDIT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gilaudit")
    pattern = os.path.join(glob.escape(base), "ft-python", "latest-*", "bin", "python3")
    return sorted(exe for exe in glob.glob(pattern) if os.access(exe, os.X_OK))


def candidates(*, path: str | None = None, pyenv_root: str | None = None,
               data_home: str | None = None,
               cache_root: str | None = None) -> list[tuple[str, str]]:
    """(executable, how it was found), free-threaded names first; duplicates removed."""
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    groups: Iterable[tuple[str, list[str]]] = (
        ("PATH", _path_candidates(os.environ.get("PATH", "") if path is None else path)),
        ("pyenv", _pyenv_candidates(pyenv_root or os.environ.get("PYENV_ROOT"))),
        ("uv", _uv_candidates(data_home or os.environ.get("XDG_DATA_HOME"))),
        ("gilaudit cache", _cache_candidates(cache_root)),
    )
    for how, exes in groups:
        for exe in exes:
            real = os.path.realpath(exe)
            if real not in seen:
                seen.add(real)
                found.append((exe, how))
    found.sort(key=lambda item: not (item[0].rstrip("/").endswith("t")
                                      or item[1] == "gilaudit cache"))
    return found


def choose(described: list[Interpreter], *, tsan: bool = False) -> Interpreter | None:
    """The newest free-threaded interpreter; else the newest free-threaded build; else the
    newest GIL build (which still finds races around released GIL, crashes and hangs).
    ThreadSanitizer builds only when ``tsan`` (they need extensions built with TSan), and
    then nothing else."""
    described = [i for i in described if i.tsan == tsan]

    def newest(items: list[Interpreter]) -> Interpreter | None:
        return max(items, key=lambda i: i.version) if items else None

    return (newest([i for i in described if i.free_threaded])
            or newest([i for i in described if i.free_threaded_build])
            or newest([i for i in described if i.implementation == "cpython"]))


def which(name: str) -> str | None:
    """An interpreter named on the command line: a path, or a name looked up on PATH."""
    if os.sep in name:
        return name
    return shutil.which(name)
