"""Which packages a dashboard run covers: a list file, names on the command line, or the
shipped list of widely used packages with extension modules (`--top N`)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

from packaging.utils import canonicalize_name

__all__ = ["PackageList", "parse_names", "top_packages"]

# PEP 508 names: letters, digits, and . _ - inside.
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_MAX_NAME = 200


@dataclass(frozen=True, kw_only=True, slots=True)
class PackageList:
    names: tuple[str, ...]  # canonical, in order, each once
    rejected: tuple[str, ...]  # "line 7: 'numpy>=2' is not a project name", ...


def parse_names(lines: Iterable[str], source: str = "") -> PackageList:
    """Names from lines of text: '#' comments and blank lines ignored; anything that is not a
    project name (a requirement specifier, a URL, binary junk) is rejected with its line."""
    names: list[str] = []
    seen: set[str] = set()
    rejected: list[str] = []
    where = f"{source}: " if source else ""
    for number, raw in enumerate(lines, start=1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        if len(text) > _MAX_NAME or not _NAME.match(text):
            shown = text if len(text) <= 60 else text[:57] + "..."
            rejected.append(f"{where}line {number}: {shown!r} is not a project name")
            continue
        name = canonicalize_name(text)
        if name not in seen:
            seen.add(name)
            names.append(name)
    return PackageList(names=tuple(names), rejected=tuple(rejected))


def top_packages(n: int) -> PackageList:
    text = (resources.files("gilaudit") / "dashboard" / "data" / "top-packages.txt").read_text(
        encoding="utf-8")
    full = parse_names(text.splitlines(), "top-packages.txt")
    return PackageList(names=full.names[:max(0, n)], rejected=full.rejected)
