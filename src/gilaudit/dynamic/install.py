"""Install the user's target (a project directory, a wheel or an sdist) into a fresh virtual
environment of the interpreter under test, with pip's ordinary build, and name the extension
modules that the target itself installed (not its dependencies).

The target's distribution is taken from pip's ``--report`` rather than guessed from the target's
file name, and its modules from its own ``RECORD``, so that whatever pip and the build backend
decided (names, versions, tags) is what is audited.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.utils import canonicalize_name

from gilaudit.dynamic.confined import tail_of

__all__ = ["InstallError", "Installed", "extension_modules", "install_requirements",
           "install_target"]

_TAIL = 4096
_QUERY_TIMEOUT = 60.0
_SDIST_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip")
# Settings that would send the install somewhere other than the fresh venv (or nowhere: a dry
# run), or let the caller's own Python setup leak into it.
_DROPPED_ENV = frozenset({
    "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV",
    "__PYVENV_LAUNCHER__", "PIP_TARGET", "PIP_PREFIX", "PIP_ROOT", "PIP_USER", "PIP_DRY_RUN",
})
_MARK = "GILAUDIT-INSTALL "
# -I: the interpreter's own settings only. ensurepip is what puts pip into a new venv, and some
# distributions (Debian, Ubuntu) ship Python without it.
_CAN_VENV = f"import ensurepip, sys, venv; print('{_MARK}%d' % sys.version_info[0])"
_SITE = (
    "import importlib.machinery, json, sysconfig\n"
    f"print('{_MARK}' + json.dumps({{"
    "'dirs': [sysconfig.get_path('platlib'), sysconfig.get_path('purelib')], "
    "'suffixes': importlib.machinery.EXTENSION_SUFFIXES}))\n"
)


class InstallError(Exception):
    """Installing failed; ``message`` is one clear sentence, ``log_tail`` the end of the log."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.log_tail = log_tail


@dataclass(frozen=True, kw_only=True, slots=True)
class Installed:
    python: str  # the venv's interpreter: the stress phase's children run this
    venv: Path
    distribution: str  # the target's project name, as pip's report gives it
    version: str
    modules: tuple[str, ...]  # dotted names of the target's extension modules, sorted
    log_tail: str


def extension_modules(record_lines: Iterable[str], suffixes: Sequence[str]) -> list[str]:
    """Dotted names of the extension modules among the paths of a ``RECORD`` file, sorted.

    ``suffixes`` are the interpreter's ``importlib.machinery.EXTENSION_SUFFIXES``: a file it
    would not import as a module (another ABI's, a vendored ``libfoo-1a2b.so``) is not one.
    """
    longest_first = sorted(set(suffixes), key=len, reverse=True)  # '.cpython-313-...so' > '.so'
    found: set[str] = set()
    for row in csv.reader(record_lines):
        if not row or not row[0]:
            continue
        path = PurePosixPath(row[0])
        if path.is_absolute() or ".." in path.parts:
            continue  # outside the site directory: scripts, data, headers
        suffix = next((s for s in longest_first if path.name.endswith(s)), None)
        if suffix is None:
            continue
        parts = [*path.parent.parts, path.name[: -len(suffix)]]
        # Only importable names: 'numpy.libs/libopenblas-r0-1a2b.so' ends in '.so' too.
        if all(part.isidentifier() for part in parts):
            found.add(".".join(parts))
    return sorted(found)


def install_target(python: str, target: Path, *, workdir: Path, timeout: float = 900.0,
                   pip_args: Sequence[str] = (), system_site_packages: bool = False,
                   build_env: Mapping[str, str] | None = None) -> Installed:
    """Create ``workdir/venv`` with ``python``, ``pip install`` ``target`` into it, and describe
    what the target installed. Raises `InstallError` for anything that stops it; ``timeout``
    bounds the whole, and a step that overruns is killed with its process group.
    ``build_env``: variables for every step (TSan's ``CFLAGS``, ``TSAN_OPTIONS``)."""
    target = _checked_target(target)
    workdir = Path(os.path.abspath(workdir))
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "install.log"
    log.write_bytes(b"")
    env = {**_environment(), **(build_env or {})}
    deadline = time.monotonic() + timeout

    def run(step: str, cmd: list[str]) -> int:
        try:
            return _run(cmd, log=log, cwd=workdir, env=env, deadline=deadline)
        except subprocess.TimeoutExpired:
            raise InstallError(f"installing {target} timed out after {timeout:g} s while "
                               f"{step}", tail_of(log)) from None

    _check_interpreter(python, env)
    venv = workdir / "venv"
    venv_cmd = [python, "-m", "venv", "--clear", str(venv)]
    if system_site_packages:
        venv_cmd.insert(-1, "--system-site-packages")
    if run("creating the virtual environment", venv_cmd) != 0:
        raise InstallError(f"{python} could not create a virtual environment in {venv}",
                           tail_of(log))
    venv_python = str(venv / "bin" / "python")

    report = workdir / "install-report.json"
    report.unlink(missing_ok=True)
    pip_cmd = [venv_python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
               "--report", str(report), *pip_args, str(target)]
    if run("running pip", pip_cmd) != 0:
        tail = tail_of(log)
        if "no such option: --report" in tail:
            raise InstallError(f"the pip that {python} puts into a new virtual environment is "
                               "too old to write an install report (pip 22.2 or later is "
                               "needed)", tail)
        reason = _last_pip_error(tail)
        raise InstallError(f"pip could not install {target}" + (f": {reason}" if reason else ""),
                           tail)

    distribution, version = _target_distribution(report, target, tail_of(log))
    site = _marked(_probe(venv_python, _SITE, env)[1])
    if not isinstance(site, dict):
        raise InstallError(f"the new virtual environment's interpreter {venv_python} did not "
                           "report its site-packages", tail_of(log))
    record = _find_record([Path(d) for d in site.get("dirs", [])], distribution)
    if record is None:
        raise InstallError(f"pip installed {distribution} {version} from {target}, but its "
                           "RECORD is not in the virtual environment's site-packages",
                           tail_of(log))
    with record.open(encoding="utf-8", errors="replace", newline="") as lines:
        modules = extension_modules(lines, [str(s) for s in site.get("suffixes", [])])
    return Installed(python=venv_python, venv=venv, distribution=distribution, version=version,
                     modules=tuple(modules), log_tail=tail_of(log))


def install_requirements(venv_python: str, requirements: Sequence[str], *, workdir: Path,
                         timeout: float = 900.0, pip_args: Sequence[str] = ()) -> None:
    """``pip install`` more requirements (a project's test dependencies) into the venv an
    `install_target` made; the log goes on in the same ``install.log``. Raises `InstallError`
    with pip's own last word when pip fails or overruns."""
    if not requirements:
        return
    log = Path(os.path.abspath(workdir)) / "install.log"
    cmd = [venv_python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
           *pip_args, *requirements]
    try:
        code = _run(cmd, log=log, cwd=log.parent, env=_environment(),
                    deadline=time.monotonic() + timeout)
    except subprocess.TimeoutExpired:
        raise InstallError(f"installing {', '.join(requirements)} timed out after "
                           f"{timeout:g} s", tail_of(log)) from None
    if code != 0:
        reason = _last_pip_error(tail_of(log))
        raise InstallError(f"pip could not install {', '.join(requirements)}"
                           + (f": {reason}" if reason else ""), tail_of(log))


def _checked_target(target: Path) -> Path:
    # Absolute, not resolved: pip names a local target by its abspath URL in its report.
    target = Path(os.path.abspath(target))
    if target.is_dir():
        if not (target / "pyproject.toml").is_file() and not (target / "setup.py").is_file():
            raise InstallError(f"{target} is not a Python project: it has neither a "
                               "pyproject.toml nor a setup.py")
    elif not target.is_file():
        raise InstallError(f"there is no target to install at {target}")
    elif not target.name.endswith((".whl", *_SDIST_SUFFIXES)):
        raise InstallError(f"{target} is neither a wheel (.whl), an sdist (.tar.gz, .zip) nor "
                           "a project directory")
    return target


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    # Index and certificate settings stay: the user's builds may need them.
    env.update(PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_PROGRESS_BAR="off",
               PYTHONNOUSERSITE="1")
    return env


def _run(cmd: list[str], *, log: Path, cwd: Path, env: dict[str, str], deadline: float) -> int:
    with log.open("ab") as out:
        out.write(f"$ {shlex.join(cmd)}\n".encode())
        out.flush()
        try:
            proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            raise InstallError(f"cannot run {cmd[0]}: {exc.strerror or exc}") from exc
        try:
            return proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        finally:
            # A build may leave compilers behind it; on a timeout (or an interrupt) they all go.
            if proc.returncode is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _probe(python: str, code: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``python -I -c code``."""
    try:
        proc = subprocess.run([python, "-I", "-c", code], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=_QUERY_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise InstallError(f"the interpreter {python} did not answer within "
                           f"{_QUERY_TIMEOUT:g} s") from None
    except OSError as exc:
        raise InstallError(f"cannot run the interpreter {python}: {exc.strerror or exc}") from exc
    return (proc.returncode, proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"))


def _marked(stdout: str) -> Any:
    """The JSON value a probe printed after its marker, or None."""
    for line in stdout.splitlines():
        if line.startswith(_MARK):
            try:
                return json.loads(line[len(_MARK):])
            except ValueError:
                return None
    return None


def _check_interpreter(python: str, env: dict[str, str]) -> None:
    code, stdout, stderr = _probe(python, _CAN_VENV, env)
    if code == 0 and _marked(stdout) == 3:
        return
    if "ensurepip" in stderr:
        raise InstallError(f"the interpreter {python} has no ensurepip, so it cannot create a "
                           "virtual environment with pip (on Debian and Ubuntu, install "
                           "python3-venv)", stderr[-_TAIL:])
    raise InstallError(f"{python} is not a working Python 3 interpreter (exit {code})",
                       (stdout + stderr)[-_TAIL:])


def _target_distribution(report: Path, target: Path, log_tail: str) -> tuple[str, str]:
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
        installs = [e for e in data["install"] if isinstance(e, dict) and e.get("requested")]
    except (OSError, ValueError, KeyError, TypeError):
        raise InstallError(f"pip installed {target} but wrote no readable install report "
                           f"({report})", log_tail) from None
    # pip_args may request more than the target; the target is the one pip fetched from it.
    url = target.as_uri()
    chosen = [e for e in installs if (e.get("download_info") or {}).get("url") == url]
    if not chosen and len(installs) == 1:
        chosen = installs
    if len(chosen) != 1:
        raise InstallError(f"pip's install report does not show {target} among what it "
                           "installed (was it already installed?)", log_tail)
    metadata = chosen[0].get("metadata") or {}
    name, version = metadata.get("name"), metadata.get("version")
    if not isinstance(name, str) or not isinstance(version, str):
        raise InstallError(f"pip's install report has no name and version for {target}",
                           log_tail)
    return name, version


def _find_record(site_dirs: Iterable[Path], distribution: str) -> Path | None:
    wanted = canonicalize_name(distribution)
    for site in dict.fromkeys(site_dirs):  # platlib and purelib are usually one directory
        for info in sorted(site.glob("*.dist-info")):
            # '{name}-{version}.dist-info', the name escaped so that it holds no '-'.
            if canonicalize_name(info.name.partition("-")[0]) == wanted:
                record = info / "RECORD"
                if record.is_file():
                    return record
    return None


def _last_pip_error(log_tail: str) -> str:
    """pip's own last word on the failure: an 'ERROR:' line, else its boxed summary's title."""
    lines = log_tail.splitlines()
    for prefix in ("ERROR: ", "\N{MULTIPLICATION SIGN} "):
        said = [line[len(prefix):].strip() for line in lines if line.startswith(prefix)]
        if said:
            return said[-1].rstrip(".")
    return ""


