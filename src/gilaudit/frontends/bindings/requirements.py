"""FT119: the build forces a binding generator older than its first free-threading release.

"Forced" means every version the requirement admits is too old: ``pybind11<2.13``,
``pybind11==2.10.4``, ``nanobind~=2.1.0``, ``find_package(pybind11 2.10 EXACT)``, a
``FetchContent`` pin, or a vendored copy of the headers. A lower bound alone (``>=2.6``) lets
the installer pick a new enough release and is not reported. Requirements whose environment
marker excludes CPython 3.13 and 3.14 are ignored. Cython is FT092's (``cython-too-old``).
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Iterator
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from gilaudit.frontends.bindings.cxx import vendored_version
from gilaudit.frontends.buildfiles import BuildFiles
from gilaudit.frontends.buildfiles.cmake import CMakeCommand
from gilaudit.frontends.buildfiles.markers import applies_on_free_threaded
from gilaudit.frontends.buildfiles.reader import find_line
from gilaudit.frontends.buildfiles.setup_py import setup_requires
from gilaudit.frontends.contract import Hit

__all__ = ["FIRST_FT", "check_requirements", "forced_below"]

# Generator -> (first release with free-threading support, what that release added).
FIRST_FT: dict[str, tuple[str, str]] = {
    "pybind11": ("2.13.0", "`py::mod_gil_not_used()`"),
    "nanobind": ("2.2.0", "the `FREE_THREADED` build option"),
    "cffi": ("2.0.0", "free-threaded support (CPython 3.14 and later)"),
    "numpy": ("2.1.0", "f2py's `--freethreading-compatible`"),
}


def forced_below(spec: SpecifierSet, threshold: str) -> bool:
    """True when no version at or above ``threshold`` satisfies ``spec``."""
    t = Version(threshold)
    candidates = {t, Version(f"{t.major}.{t.minor}.99"), Version(f"{t.major}.{t.minor + 1}"),
                  Version(f"{t.major + 1}.0"), Version("9999")}
    for s in spec:
        try:
            v = Version(s.version.replace(".*", ""))
        except InvalidVersion:
            return False
        if v >= t:
            candidates |= {v, Version(f"{v}.1"), Version(f"{v.major}.{v.minor}.99")}
    return not any(spec.contains(c, prereleases=True) for c in candidates)


@dataclass(frozen=True, kw_only=True, slots=True)
class _Pin:
    path: str
    line: int
    generator: str
    text: str  # the requirement as written
    why: str  # what pins it: "build requirement", "CMake", "vendored copy"


def _requirement_pins(path: str, text: str, items: list[str], *, after: str | None,
                      source: str) -> Iterator[_Pin]:
    for item in items:
        try:
            req = Requirement(item)
        except InvalidRequirement:
            continue
        name = canonicalize_name(req.name)
        if name not in FIRST_FT or not applies_on_free_threaded(req):
            continue
        if forced_below(req.specifier, FIRST_FT[name][0]):
            line = find_line(text, r"[\"']?" + re.escape(item.strip()), after=after)
            yield _Pin(path=path, line=line, generator=name, text=item.strip(), why=source)


def _cmake_pins(path: str, commands: list[CMakeCommand]) -> Iterator[_Pin]:
    for cmd in commands:
        args = [a.text for a in cmd.args]
        if not args:
            continue
        name = args[0].lower()
        if name not in ("pybind11", "nanobind"):
            continue
        threshold = Version(FIRST_FT[name][0])
        if cmd.name == "find_package" and len(args) > 1:
            version = args[1]
            if "..." in version:  # a version range: its maximum decides
                high = version.split("...", 1)[1].lstrip("<")
                if _older(high, threshold, inclusive="<" not in version.split("...", 1)[1]):
                    yield _Pin(path=path, line=cmd.line, generator=name,
                               text=f"find_package({args[0]} {version})", why="CMake")
            elif "EXACT" in args and _older(version, threshold):
                yield _Pin(path=path, line=cmd.line, generator=name,
                           text=f"find_package({args[0]} {version} EXACT)", why="CMake")
        elif cmd.name in ("fetchcontent_declare", "cpmaddpackage", "externalproject_add"):
            for key in ("GIT_TAG", "VERSION", "URL"):
                if key in args[:-1]:
                    value = args[args.index(key) + 1]
                    m = re.search(r"v?(\d+\.\d+(?:\.\d+)?)", value)
                    if m and _older(m.group(1), threshold):
                        yield _Pin(path=path, line=cmd.line, generator=name,
                                   text=f"{key} {value}", why="CMake")
                        break


def _older(text: str, threshold: Version, *, inclusive: bool = True) -> bool:
    try:
        v = Version(text.strip())
    except InvalidVersion:
        return False
    return v < threshold if inclusive else v <= threshold


def _pins(builds: BuildFiles) -> Iterator[_Pin]:
    reader = builds.reader
    for path in builds.named("pyproject.toml"):
        data = builds.toml(path) or {}
        bs = data.get("build-system", {})
        requires = bs.get("requires", []) if isinstance(bs, dict) else []
        if isinstance(requires, list):
            text = reader.text(path, count=False) or ""
            yield from _requirement_pins(path, text, [r for r in requires if isinstance(r, str)],
                                         after=r"^\[build-system\]", source="build requirement")
    for path in builds.named("setup.py"):
        tree = builds.python(path)
        if tree is not None:
            text = reader.text(path, count=False) or ""
            yield from _requirement_pins(path, text, setup_requires(tree), after=None,
                                         source="setup_requires")
    for path in builds.named("setup.cfg"):
        text = reader.text(path, count=False) or ""
        cfg = configparser.ConfigParser(interpolation=None)
        try:
            cfg.read_string(text)
        except configparser.Error:
            continue
        if cfg.has_option("options", "setup_requires"):
            items = [s.strip() for s in cfg.get("options", "setup_requires").splitlines()
                     if s.strip()]
            yield from _requirement_pins(path, text, items, after=r"^\[options\]",
                                         source="setup_requires")
    for path in builds.cmake_files():
        yield from _cmake_pins(path, builds.cmake(path))
    for path in reader.paths:
        generator = ("pybind11" if path.endswith("include/pybind11/detail/common.h")
                     else "nanobind" if path.endswith("include/nanobind/nanobind.h") else None)
        if generator is None:
            continue
        text = reader.text(path, count=False) or ""
        found = vendored_version(text, generator)
        if found and Version(".".join(map(str, found[0]))) < Version(FIRST_FT[generator][0]):
            yield _Pin(path=path, line=found[1], generator=generator,
                       text=f"{generator} {'.'.join(map(str, found[0]))}",
                       why="vendored copy")


def check_requirements(builds: BuildFiles, *, uses_f2py: bool, uses_pybind11: bool,
                       uses_nanobind: bool) -> list[Hit]:
    hits: list[Hit] = []
    seen: set[tuple[str, int, str]] = set()
    for pin in _pins(builds):
        if pin.generator == "numpy" and not uses_f2py:
            continue  # NumPy's C API needs no declaration; only f2py's flag is at stake
        if pin.why == "vendored copy" and not (uses_pybind11 or uses_nanobind):
            continue
        key = (pin.path, pin.line, pin.generator)
        if key in seen:
            continue
        seen.add(key)
        first, what = FIRST_FT[pin.generator]
        hits.append(Hit(rule="FT119", path=pin.path, line=pin.line, col=1, symbol=pin.text,
                        where=f"allows only {pin.generator} releases before {first}, the first "
                              f"with {what}"))
    return hits
