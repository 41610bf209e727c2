"""`bench/ports.toml`, the pinned list of ports, as frozen dataclasses; a malformed entry is
reported with the dotted path to the bad field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .families import FAMILIES
from .truth import Override

__all__ = ["ConfigError", "Pair", "Release", "load"]

_SHA256 = re.compile(r"[0-9a-f]{64}")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    """An sdist from PyPI (``version``, ``filename``, ``sha256``) or a Debian source package
    (``suite``, ``package``)."""
    version: str = ""
    filename: str = ""
    sha256: str = ""
    suite: str = ""
    package: str = ""

    @property
    def is_debian(self) -> bool:
        return bool(self.suite)


@dataclass(frozen=True, slots=True, kw_only=True)
class Pair:
    name: str  # the PyPI name, or a label for a Debian pair
    before: Release
    after: Release
    why: str
    language: str
    subdir: str = ""  # scan and derive the truth in this directory of each release
    include_dirs: tuple[str, ...] = ()  # relative to the release's root
    defines: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()  # globs, relative to subdir, that are not the port
    exclude: tuple[Override, ...] = ()
    include: tuple[Override, ...] = ()

    @property
    def key(self) -> str:
        return re.sub(r"[^\w.-]", "_", self.name)


def _str(d: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    v = d.get(key, default)
    if not isinstance(v, str) or (default is None and not v):
        raise ConfigError(f"{where}.{key}: expected a non-empty string, got {v!r}")
    return v


def _strs(d: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    v = d.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"{where}.{key}: expected a list of strings")
    return tuple(v)


def _release(d: Any, where: str) -> Release:
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a table")
    if "suite" in d:
        return Release(suite=_str(d, "suite", where), package=_str(d, "package", where))
    digest = _str(d, "sha256", where)
    if not _SHA256.fullmatch(digest):
        raise ConfigError(f"{where}.sha256: not a sha256 hex digest")
    return Release(version=_str(d, "version", where), filename=_str(d, "filename", where),
                   sha256=digest)


def _overrides(d: dict[str, Any], key: str, where: str) -> tuple[Override, ...]:
    out = []
    for i, o in enumerate(d.get(key, [])):
        at = f"{where}.{key}[{i}]"
        if not isinstance(o, dict):
            raise ConfigError(f"{at}: expected a table")
        family = _str(o, "family", at, "")
        if family and family not in FAMILIES:
            raise ConfigError(f"{at}.family: {family!r} is not one of {', '.join(FAMILIES)}")
        if key == "include" and not family:
            raise ConfigError(f"{at}.family: an included item needs its family")
        out.append(Override(path=_str(o, "path", at), function=_str(o, "function", at),
                            family=family, reason=_str(o, "reason", at)))
    return tuple(out)


def load(data: dict[str, Any]) -> list[Pair]:
    """The pairs of a parsed ports.toml, in file order (packages, then CPython)."""
    out = []
    for table in ("package", "cpython"):
        for i, p in enumerate(data.get(table, [])):
            where = f"{table}[{i}]"
            if not isinstance(p, dict):
                raise ConfigError(f"{where}: expected a table")
            out.append(Pair(
                name=_str(p, "name", where), before=_release(p.get("before"), f"{where}.before"),
                after=_release(p.get("after"), f"{where}.after"), why=_str(p, "why", where),
                language=_str(p, "language", where), subdir=_str(p, "subdir", where, ""),
                include_dirs=_strs(p, "include_dirs", where),
                defines=_strs(p, "defines", where), skip=_strs(p, "skip", where),
                exclude=_overrides(p, "exclude", where),
                include=_overrides(p, "include", where)))
    names = [p.key for p in out]
    for n in names:
        if names.count(n) > 1:
            raise ConfigError(f"{n}: listed twice")
    return out
