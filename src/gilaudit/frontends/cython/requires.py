"""Build requirements that pin Cython below 3.1 (FT092), read statically with `packaging`.

Sources: ``[build-system] requires`` in pyproject.toml, ``setup_requires`` in setup.py and
setup.cfg, and requirement files that a build reads (a name mentioning "build" or "cython"
in a requirements file or directory, e.g. ``requirements/cython.txt``,
``requirements-build.txt``). A requirement whose environment marker cannot hold on a
free-threaded CPython (3.13 or 3.14, any OS) is ignored.
"""

from __future__ import annotations

import ast
import configparser
import re
from dataclasses import dataclass
from typing import Any

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from gilaudit._toml import tomllib
from gilaudit.frontends.buildfiles.setup_py import setup_requires_values

__all__ = [
    "TooOld", "forces_before_31", "is_build_requirements_file", "requirement_pins",
    "too_old_cython",
]

_FIRST_FT = Version("3.1.0a1")  # the 3.1 pre-releases already build for free threading
# Final releases probed when deciding whether a specifier allows any Cython >= 3.1.
_GRID = (*(Version(f"{major}.{minor}.{micro}") for major in (3, 4)
            for minor in range(0, 25) for micro in range(0, 25)), Version("5"), Version("99"))
_REQ_FILE = re.compile(r"(?:^|/)[^/]*requirements[^/]*(?:/[^/]*)?\.(?:txt|in)$", re.IGNORECASE)
_FT_ENVIRONMENTS = tuple(
    {"python_version": ver, "python_full_version": f"{ver}.0", "implementation_name": "cpython",
     "platform_python_implementation": "CPython", "sys_platform": plat,
     "platform_system": system, "os_name": osname}
    for ver in ("3.13", "3.14")
    for plat, system, osname in (("linux", "Linux", "posix"), ("win32", "Windows", "nt"),
                                 ("darwin", "Darwin", "posix"))
)


@dataclass(frozen=True, slots=True)
class TooOld:
    path: str
    line: int
    col: int
    requirement: str  # as written
    where: str  # "[build-system] requires", "setup_requires", the file name


def forces_before_31(spec: SpecifierSet) -> bool:
    """True when every version the specifier allows is older than Cython 3.1."""
    if not str(spec):
        return False
    candidates = set(_GRID)
    for s in spec:
        try:
            v = Version(s.version.replace(".*", ""))
        except InvalidVersion:
            continue
        candidates.add(v)
        candidates.add(Version(f"{v.major}.{v.minor + 1}"))
        candidates.add(Version(f"{v.major + 1}"))
    return not any(c >= _FIRST_FT and spec.contains(c, prereleases=True) for c in candidates)


def _relevant_marker(req: Requirement) -> bool:
    if req.marker is None:
        return True
    for env in _FT_ENVIRONMENTS:
        try:
            if req.marker.evaluate(dict(env)):
                return True
        except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
            return True
    return False


def too_old_cython(text: str) -> bool:
    try:
        req = Requirement(text.strip())
    except InvalidRequirement:
        return False
    return canonicalize_name(req.name) == "cython" and _relevant_marker(req) and \
        forces_before_31(req.specifier)


def is_build_requirements_file(path: str) -> bool:
    low = path.lower()
    if not _REQ_FILE.search(low):
        return False
    tail = "/".join(low.split("/")[-2:]).replace("requirements", "")
    return "build" in tail or "cython" in tail


def _find_line(text: str, needle: str, after: int = 1) -> tuple[int, int]:
    for number, line in enumerate(text.splitlines(), 1):
        if number >= after and needle in line:
            return number, line.index(needle) + 1
    return after, 1


def _pyproject(text: str, path: str) -> list[TooOld]:
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError):
        return []
    system = data.get("build-system")
    requires = system.get("requires") if isinstance(system, dict) else None
    if not isinstance(requires, list):
        return []
    start, _ = _find_line(text, "[build-system]")
    out = []
    for item in requires:
        if isinstance(item, str) and too_old_cython(item):
            line, col = _find_line(text, item, start)
            out.append(TooOld(path, line, col, item, "[build-system] requires"))
    return out


def _literal(node: ast.AST, names: dict[str, ast.AST]) -> list[ast.Constant]:
    """The string constants of a literal list/tuple/str, following module-level names."""
    if isinstance(node, ast.Name) and node.id in names:
        return _literal(names[node.id], {})
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [e for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _literal(node.left, names) + _literal(node.right, names)
    return []


def _setup_py(text: str, path: str) -> list[TooOld]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return []
    names: dict[str, ast.AST] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(
                stmt.targets[0], ast.Name):
            names[stmt.targets[0].id] = stmt.value
    out = []
    for expr in setup_requires_values(tree):
        for const in _literal(expr, names):
            value: Any = const.value
            for piece in value.splitlines() if "\n" in value else [value]:
                if too_old_cython(piece):
                    out.append(TooOld(path, const.lineno, const.col_offset + 1,
                                      piece.strip(), "setup_requires"))
    return out


def _setup_cfg(text: str, path: str) -> list[TooOld]:
    cfg = configparser.ConfigParser(interpolation=None)
    try:
        cfg.read_string(text)
    except configparser.Error:
        return []
    if not cfg.has_option("options", "setup_requires"):
        return []
    out = []
    start, _ = _find_line(text, "setup_requires")
    for piece in cfg.get("options", "setup_requires").splitlines():
        piece = piece.split("#", 1)[0].strip()  # noqa: PLW2901 - the cleaned line
        if piece and too_old_cython(piece):
            line, col = _find_line(text, piece, start)
            out.append(TooOld(path, line, col, piece, "setup_requires"))
    return out


def _requirements_file(text: str, path: str) -> list[TooOld]:
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        body = re.split(r"(?:^|\s)#", line, maxsplit=1)[0].rstrip().rstrip("\\").strip()
        if not body or body.startswith("-"):
            continue
        if too_old_cython(body):
            out.append(TooOld(path, number, line.index(body[0]) + 1, body, f"`{path}`"))
    return out


def requirement_pins(path: str, text: str) -> list[TooOld]:
    """FT092 candidates in one file (root-relative `path`)."""
    name = path.rsplit("/", 1)[-1]
    if name == "pyproject.toml":
        return _pyproject(text, path)
    if name == "setup.py":
        return _setup_py(text, path)
    if name == "setup.cfg":
        return _setup_cfg(text, path)
    if is_build_requirements_file(path):
        return _requirements_file(text, path)
    return []
