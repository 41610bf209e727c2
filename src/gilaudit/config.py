"""``[tool.gilaudit]`` in the target's pyproject.toml, merged with command-line options.

Mistakes in the user's configuration are reported as diagnostics and the scan goes on,
the way mypy reports ``[tool.mypy]`` problems without stopping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gilaudit._toml import tomllib
from gilaudit.model import Diagnostic
from gilaudit.rulebook import RuleBook

__all__ = ["FAIL_ON", "Config", "load_config"]

FAIL_ON = ("error", "warning", "info", "never")
_LEVELS = ("error", "warning", "info", "off")
_KNOWN_KEYS = {
    "select", "ignore", "exclude", "include-dirs", "defines", "severity", "fail-on",
    "max-file-size",
    "tsan-suppressions",  # read by the stress phase's TSan mode (dynamic/tsan.py)
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Config:
    selected: frozenset[str]  # rule ids that run
    severity: dict[str, str] = field(default_factory=dict)  # id -> error|warning|info
    exclude: tuple[str, ...] = ()
    include_dirs: tuple[str, ...] = ()
    defines: tuple[str, ...] = ()  # "NAME" or "NAME=VALUE"
    fail_on: str = "error"
    max_file_size: int = 4 * 1024 * 1024


def _str_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _resolve(book: RuleBook, selectors: list[str], key: str, diags: list[Diagnostic],
             origin: str) -> set[str]:
    ids: set[str] = set()
    for sel in selectors:
        found = book.matching(sel)
        if not found:
            diags.append(Diagnostic(path=origin, kind="config",
                                    message=f"[tool.gilaudit] {key}: unknown rule {sel!r}"))
        ids.update(found)
    return ids


def load_config(
    book: RuleBook,
    root: Path,
    *,
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    include_dirs: list[str] | None = None,
    defines: list[str] | None = None,
    fail_on: str | None = None,
) -> tuple[Config, list[Diagnostic]]:
    """Read ``root/pyproject.toml`` (if any) and apply command-line options on top."""
    diags: list[Diagnostic] = []
    table: dict[str, Any] = {}
    pyproject = root / "pyproject.toml"
    origin = "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_bytes().decode("utf-8"))
            tool = data.get("tool", {})
            table = tool.get("gilaudit", {}) if isinstance(tool, dict) else {}
            if not isinstance(table, dict):
                diags.append(Diagnostic(path=origin, kind="config",
                                        message="[tool.gilaudit] is not a table"))
                table = {}
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
            diags.append(Diagnostic(path=origin, kind="config",
                                    message=f"cannot read pyproject.toml: {exc}"))

    def get_list(key: str) -> list[str]:
        if key not in table:
            return []
        values = _str_list(table[key])
        if values is None:
            diags.append(Diagnostic(path=origin, kind="config",
                                    message=f"[tool.gilaudit] {key}: expected a list of strings"))
            return []
        return values

    for key in table:
        if key not in _KNOWN_KEYS:
            diags.append(Diagnostic(path=origin, kind="config",
                                    message=f"[tool.gilaudit] {key}: unknown key"))

    all_ids = set(book.rules)
    cfg_select = get_list("select")
    chosen = _resolve(book, cfg_select, "select", diags, origin) if cfg_select else set(all_ids)
    if select:
        chosen = _resolve(book, select, "--select", diags, "command line")
    chosen -= _resolve(book, get_list("ignore"), "ignore", diags, origin)
    if ignore:
        chosen -= _resolve(book, ignore, "--ignore", diags, "command line")

    severity: dict[str, str] = {}
    sev_table = table.get("severity", {})
    if not isinstance(sev_table, dict):
        diags.append(Diagnostic(path=origin, kind="config",
                                message="[tool.gilaudit] severity: expected a table"))
        sev_table = {}
    for key, level in sev_table.items():
        if level not in _LEVELS:
            diags.append(Diagnostic(path=origin, kind="config",
                                    message=f"[tool.gilaudit] severity.{key}: {level!r} is not "
                                            f"one of {', '.join(_LEVELS)}"))
            continue
        for rule_id in _resolve(book, [key], f"severity.{key}", diags, origin):
            if level == "off":
                chosen.discard(rule_id)
            else:
                severity[rule_id] = level

    level = fail_on or table.get("fail-on", "error")
    if level not in FAIL_ON:
        diags.append(Diagnostic(path=origin, kind="config",
                                message=f"[tool.gilaudit] fail-on: {level!r} is not one of "
                                        f"{', '.join(FAIL_ON)}"))
        level = "error"
    max_size = table.get("max-file-size", 4 * 1024 * 1024)
    if not isinstance(max_size, int) or max_size <= 0:
        diags.append(Diagnostic(path=origin, kind="config",
                                message="[tool.gilaudit] max-file-size: expected a positive int"))
        max_size = 4 * 1024 * 1024
    config = Config(
        selected=frozenset(chosen),
        severity=severity,
        exclude=tuple(get_list("exclude")),
        include_dirs=tuple(get_list("include-dirs")) + tuple(include_dirs or ()),
        defines=tuple(get_list("defines")) + tuple(defines or ()),
        fail_on=level,
        max_file_size=max_size,
    )
    return config, diags
