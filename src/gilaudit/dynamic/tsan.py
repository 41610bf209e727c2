"""ThreadSanitizer mode, the settings side: how the target is built, how each child is told
to log, which reports are CPython's own.

The target's extensions are built by pip's ordinary build with ``-fsanitize=thread -g -O1``
in ``CFLAGS``/``CXXFLAGS``/``LDFLAGS`` into a venv of a TSan build of CPython (an interpreter
without TSan cannot load them). Every child writes its reports to ``log_path`` in its own
scratch directory, keeps going after a report (``halt_on_error=0``) and exits with its own
status (``exitcode=0``: a report is evidence, not a death). The suppressions file is the one
gilaudit ships (CPython's own known reports) plus the project's ``tsan-suppressions``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gilaudit._toml import tomllib
from gilaudit.model import Diagnostic

__all__ = ["BUILD_FLAGS", "ITERATION_DIVISOR", "SHIPPED_SUPPRESSIONS", "TsanSettings",
           "build_environment", "child_options", "project_suppressions", "scaled_iterations",
           "settings_for", "write_suppressions"]

BUILD_FLAGS = "-fsanitize=thread -g -O1"
SHIPPED_SUPPRESSIONS = Path(__file__).with_name("data") / "tsan-suppressions.txt"
# TSan slows instrumented code 5-15x; it needs two unsynchronised accesses, not many lost
# updates, so a tenth of the calls finds what the full hammer finds, in the same budget.
ITERATION_DIVISOR = 10
_MIN_ITERATIONS = 10
_KINDS = ("race", "race_top", "thread", "mutex", "signal", "deadlock", "called_from_lib")


@dataclass(frozen=True, kw_only=True, slots=True)
class TsanSettings:
    suppressions: Path  # the file every child's TSAN_OPTIONS names
    scaled_from: int  # the iterations asked for, before scaling down
    iterations: int  # what each hammer ran


def scaled_iterations(iterations: int) -> int:
    return max(_MIN_ITERATIONS, iterations // ITERATION_DIVISOR) if iterations > \
        _MIN_ITERATIONS else iterations


def build_environment(base: Mapping[str, str]) -> dict[str, str]:
    """What pip builds the target with: TSan instrumentation and debug info added to whatever
    flags the user set. pip itself runs on the TSan interpreter: its own reports (CPython's
    business) are not printed and never change its exit status."""
    env = {name: f"{base.get(name, '')} {BUILD_FLAGS}".strip()
           for name in ("CFLAGS", "CXXFLAGS", "LDFLAGS")}
    env["TSAN_OPTIONS"] = "report_bugs=0 exitcode=0"
    return env


def _quoted(value: str) -> str:
    # The sanitizer's flag parser splits on white space and takes quotes.
    return f'"{value}"' if any(c.isspace() for c in value) else value


def child_options(log_prefix: Path, suppressions: Path) -> str:
    """TSAN_OPTIONS for one child: its reports go to ``log_prefix.<pid>``."""
    return " ".join([
        f"log_path={_quoted(str(log_prefix))}", "halt_on_error=0", "exitcode=0",
        "report_signal_unsafe=0",  # faulthandler's dump is ours, not the target's
        "history_size=4",  # enough to restore the previous access's stack
        "second_deadlock_stack=1", "print_suppressions=1",
        # A crash stays a crash: faulthandler dumps the Python stacks and the child dies by
        # its signal, as without TSan (TSan's own handler would exit with `exitcode`, 0).
        "handle_segv=0", "handle_sigbus=0", "handle_sigfpe=0", "handle_sigill=0",
        "handle_abort=0",
        f"suppressions={_quoted(str(suppressions))}",
    ])


def project_suppressions(pyproject: bytes | None) -> tuple[list[str], list[Diagnostic]]:
    """``[tool.gilaudit] tsan-suppressions`` of a project's pyproject.toml: TSan suppression
    lines (``race:name``, ``race_top:name``, ``thread:name``, ...)."""
    if pyproject is None:
        return [], []
    origin = "pyproject.toml"
    try:
        data = tomllib.loads(pyproject.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return [], []  # the static phase reports an unreadable pyproject.toml
    tool = data.get("tool")
    table = tool.get("gilaudit") if isinstance(tool, dict) else None
    value = table.get("tsan-suppressions") if isinstance(table, dict) else None
    if value is None:
        return [], []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return [], [Diagnostic(path=origin, kind="config", message="[tool.gilaudit] "
                               "tsan-suppressions: expected a list of strings")]
    lines, diags = [], []
    for entry in value:
        kind, _, pattern = entry.strip().partition(":")
        if kind not in _KINDS or not pattern.strip() or "\n" in entry:
            diags.append(Diagnostic(path=origin, kind="config", message=(
                f"[tool.gilaudit] tsan-suppressions: {entry!r} is not a suppression "
                f"(KIND:PATTERN, KIND one of {', '.join(_KINDS)})")))
            continue
        lines.append(f"{kind}:{pattern.strip()}")
    return lines, diags


def write_suppressions(directory: Path, extra: Sequence[str]) -> Path:
    """The shipped suppressions plus ``extra`` lines, in one file under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "tsan-suppressions.txt"
    text = SHIPPED_SUPPRESSIONS.read_text(encoding="utf-8")
    if extra:
        text += "\n# The project's own ([tool.gilaudit] tsan-suppressions)\n" + "\n".join(
            extra) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def settings_for(directory: Path, extra: Sequence[str], iterations: int) -> TsanSettings:
    return TsanSettings(suppressions=write_suppressions(directory, extra),
                        scaled_from=iterations, iterations=scaled_iterations(iterations))

