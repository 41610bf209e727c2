"""A project's test dependencies, read statically from its source tree (never by running its
setup.py): the `test`/`tests`/`testing` extras of ``[project.optional-dependencies]`` (and of
setup.cfg's ``[options.extras_require]``), the PEP 735 ``[dependency-groups]`` `test`/`tests`/
`dev` (with their ``include-group``s), and requirement files named like
``requirements-test*.txt``, ``test-requirements.txt`` or ``requirements/test*.txt`` (with their
``-r`` includes).

A requirement naming the project itself (``proj[extra]``) is dropped: the project is already
installed from the target, and pip would fetch another copy from the index.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from gilaudit._toml import tomllib

__all__ = ["TestRequirements", "read_test_requirements", "requirement_lines"]

EXTRAS = ("test", "tests", "testing")
GROUPS = ("test", "tests", "dev")
_REQUIREMENT_FILES = ("requirements-test*.txt", "requirements_test*.txt",
                      "test-requirements*.txt", "test_requirements*.txt",
                      "requirements/test*.txt", "requirements/*-test*.txt",
                      "tests/requirements*.txt")
_MAX_INCLUDES = 10  # -r chains and include-group chains, against cycles


@dataclass(frozen=True, kw_only=True, slots=True)
class TestRequirements:
    """What to pip-install for the tests, and where each part was read (for the report)."""

    __test__ = False  # not a pytest test class, whatever its name

    requirements: tuple[str, ...]
    sources: tuple[str, ...]  # "pyproject.toml [project.optional-dependencies] test", ...
    problems: tuple[str, ...] = ()  # unreadable files, unparsable requirements


def read_test_requirements(root: Path, project: str) -> TestRequirements:
    """The test requirements declared in the source tree at ``root`` of ``project``."""
    found: list[tuple[str, list[str]]] = []
    problems: list[str] = []
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8", errors="replace"))
        except (tomllib.TOMLDecodeError, OSError) as exc:
            problems.append(f"pyproject.toml: {exc}")
            data = {}
        extras = (data.get("project") or {}).get("optional-dependencies") or {}
        for key in EXTRAS:
            if isinstance(extras.get(key), list):
                found.append((f"pyproject.toml [project.optional-dependencies] {key}",
                              [str(r) for r in extras[key]]))
        groups = data.get("dependency-groups") or {}
        for key in GROUPS:
            if isinstance(groups.get(key), list):
                found.append((f"pyproject.toml [dependency-groups] {key}",
                              _group(groups, key, problems, 0)))
    setup_cfg = root / "setup.cfg"
    if setup_cfg.is_file():
        found += _setup_cfg_extras(setup_cfg, problems)
    for pattern in _REQUIREMENT_FILES:
        for path in sorted(root.glob(pattern)):
            if path.is_file():
                found.append((str(path.relative_to(root)), _requirements_file(path, problems, 0)))
    mine = canonicalize_name(project)
    requirements: list[str] = []
    sources: list[str] = []
    for source, lines in found:
        kept = 0
        for line in lines:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                problems.append(f"{source}: not a requirement: {line!r}")
                continue
            if canonicalize_name(req.name) == mine:
                continue
            kept += 1
            if line not in requirements:
                requirements.append(line)
        if kept or lines:
            sources.append(source)
    return TestRequirements(requirements=tuple(requirements), sources=tuple(sources),
                            problems=tuple(problems))


def _group(groups: dict[str, Any], key: str, problems: list[str], depth: int) -> list[str]:
    """A PEP 735 group's requirements, its include-groups expanded."""
    out: list[str] = []
    if depth > _MAX_INCLUDES:
        problems.append(f"[dependency-groups] {key}: include-group nested too deep")
        return out
    for entry in groups.get(key) or []:
        if isinstance(entry, str):
            out.append(entry)
        elif isinstance(entry, dict) and isinstance(entry.get("include-group"), str):
            out += _group(groups, entry["include-group"], problems, depth + 1)
    return out


def _setup_cfg_extras(path: Path, problems: list[str]) -> list[tuple[str, list[str]]]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(encoding="utf-8", errors="replace"))
    except (configparser.Error, OSError) as exc:
        problems.append(f"setup.cfg: {exc}")
        return []
    if not parser.has_section("options.extras_require"):
        return []
    out = []
    for key in EXTRAS:
        if parser.has_option("options.extras_require", key):
            value = parser.get("options.extras_require", key)
            # One per line: "a; python_version < '3.12'" is one requirement with a marker.
            lines = [ln.strip() for ln in value.splitlines() if ln.strip()]
            out.append((f"setup.cfg [options.extras_require] {key}", lines))
    return out


def _requirements_file(path: Path, problems: list[str], depth: int) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        problems.append(f"{path.name}: {exc}")
        return []
    out: list[str] = []
    for line in requirement_lines(text.splitlines()):
        include = re.match(r"^(?:-r|--requirement)[\s=]+(\S+)$", line)
        if include:
            if depth < _MAX_INCLUDES:
                out += _requirements_file(path.parent / include.group(1), problems, depth + 1)
            continue
        if line.startswith("-"):
            continue  # -c constraints, -e editables, --index-url: not ours to follow
        out.append(line)
    return out


def requirement_lines(lines: Iterable[str]) -> list[str]:
    """The requirement lines of a requirements file: comments, blank lines and line
    continuations handled, local paths (".", "./x", "-e .") left out."""
    out: list[str] = []
    pending = ""
    for raw in lines:
        line = pending + re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        pending = ""
        line = line.strip()
        if not line or line.startswith((".", "/")) or "://" in line.split(";")[0]:
            continue
        out.append(line)
    return out
