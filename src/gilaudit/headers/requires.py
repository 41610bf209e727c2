"""The build requirements a project declares, read statically: which packages its build
installs before compiling, and with which version specifiers.

Sources: ``[build-system] requires`` in pyproject.toml, ``setup_requires`` in setup.py and
setup.cfg, a setup.py that imports a header provider to ask for its include directory
(``pybind11.get_include()``), meson's ``dependency('pybind11')``, CMake's
``find_package(pybind11|nanobind ...)`` and ``find_package(Python ... NumPy)``. Nothing is run.
"""

from __future__ import annotations

import ast
import configparser
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from gilaudit._toml import tomllib
from gilaudit.frontends.buildfiles.cmake import CMakeError, parse_cmake
from gilaudit.frontends.buildfiles.markers import applies_on_free_threaded
from gilaudit.frontends.buildfiles.meson import parse_meson
from gilaudit.frontends.buildfiles.reader import vendored
from gilaudit.frontends.buildfiles.setup_py import setup_requires

__all__ = ["PROVIDERS", "Declared", "declared_requirements", "merge"]

# Packages whose wheels are known to ship C/C++ headers, and the include prefixes they provide.
# Any other requirement provides `<its_name/...>`, if its wheel has an include directory.
PROVIDERS: dict[str, tuple[str, ...]] = {
    "pybind11": ("pybind11/",),
    "nanobind": ("nanobind/", "tsl/"),
    "numpy": ("numpy/",),
    "cppy": ("cppy/",),
}
_CMAKE_PACKAGES = {"pybind11": "pybind11", "nanobind": "nanobind"}
# Packages whose CMake version file accepts only the requested major version
# (`write_basic_package_version_file(... COMPATIBILITY SameMajorVersion)`: nanobind's
# `cmake/nanobind-config-version.cmake`); pybind11's accepts any newer one.
_SAME_MAJOR = frozenset({"nanobind"})


@dataclass(frozen=True, kw_only=True, slots=True)
class Declared:
    """One requirement of the build, as declared."""

    name: str  # canonical
    specifier: str  # PEP 440 specifiers ("" for any version)
    source: str  # where: "pyproject.toml [build-system] requires", "meson.build", ...

    def prefixes(self) -> tuple[str, ...]:
        return PROVIDERS.get(self.name, (self.name.replace("-", "_") + "/",))


def _from_strings(items: Iterable[object], source: str) -> Iterator[Declared]:
    for item in items:
        if not isinstance(item, str):
            continue
        try:
            req = Requirement(item)
        except InvalidRequirement:
            continue
        if applies_on_free_threaded(req):
            yield Declared(name=canonicalize_name(req.name), specifier=str(req.specifier),
                           source=source)


def _pyproject(text: str, path: str) -> Iterator[Declared]:
    data = tomllib.loads(text)
    system = data.get("build-system")
    requires = system.get("requires") if isinstance(system, dict) else None
    if isinstance(requires, list):
        yield from _from_strings(requires, f"{path} [build-system] requires")


def _setup_py(text: str, path: str) -> Iterator[Declared]:
    tree = ast.parse(text)
    yield from _from_strings(setup_requires(tree), f"{path} setup_requires")
    for node in ast.walk(tree):
        # A setup.py that imports a header provider (to call its get_include()) needs it
        # installed to build, declared or not.
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module.split(".")[0]]
        for name in names:
            if name in PROVIDERS:
                yield Declared(name=name, specifier="", source=f"{path} imports {name}")


def _setup_cfg(text: str, path: str) -> Iterator[Declared]:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(text)
    if cfg.has_option("options", "setup_requires"):
        items = [s.strip() for s in cfg.get("options", "setup_requires").splitlines()]
        yield from _from_strings([s for s in items if s], f"{path} setup_requires")


def _meson(text: str, path: str) -> Iterator[Declared]:
    for call in parse_meson(text):
        if call.name == "dependency" and not call.method and call.strings:
            name = call.strings[0].lower()
            if name in PROVIDERS:
                yield Declared(name=name, specifier="", source=f"{path} dependency('{name}')")


def _cmake(text: str, path: str) -> Iterator[Declared]:
    for cmd in parse_cmake(text):
        if cmd.name != "find_package" or not cmd.args:
            continue
        args = [a.text for a in cmd.args]
        package = args[0].lower()
        if package in _CMAKE_PACKAGES:
            spec = ""
            if len(args) > 1 and args[1][:1].isdigit() and "..." not in args[1]:
                spec = f"=={args[1]}" if "EXACT" in args else f">={args[1]}"
                if package in _SAME_MAJOR and "EXACT" not in args:
                    major = args[1].split(".")[0]
                    if major.isdigit():
                        spec += f",<{int(major) + 1}"
            try:
                SpecifierSet(spec)
            except InvalidSpecifier:
                spec = ""
            yield Declared(name=_CMAKE_PACKAGES[package], specifier=spec,
                           source=f"{path} find_package({args[0]})")
        elif package in ("python", "python3") and "NumPy" in args:
            yield Declared(name="numpy", specifier="",
                           source=f"{path} find_package({args[0]} ... NumPy)")


_READERS = {"pyproject.toml": _pyproject, "setup.py": _setup_py, "setup.cfg": _setup_cfg,
            "meson.build": _meson, "CMakeLists.txt": _cmake}


# A file without any of these declares nothing: it need not be parsed.
_KEYWORDS = {_pyproject: ("requires",), _setup_py: ("setup_requires", "import"),
             _setup_cfg: ("setup_requires",), _meson: ("dependency",),
             _cmake: ("find_package", "FIND_PACKAGE", "Find_Package")}


def declared_requirements(files: dict[str, str]) -> tuple[list[Declared], list[str]]:
    """Every requirement the project's own build files declare (vendored copies of other
    projects are not the project's build), and one problem per file that could not be read.
    ``files`` maps project-relative paths to their text."""
    found: list[Declared] = []
    problems: list[str] = []
    for path, text in sorted(files.items()):
        base = posixpath.basename(path)
        reader = _cmake if base.endswith(".cmake") else _READERS.get(base)
        if reader is None or vendored(path) or not any(k in text for k in _KEYWORDS[reader]):
            continue
        if base in ("pyproject.toml", "setup.py", "setup.cfg") and "/" in path:
            continue  # only the top-level ones describe the project's build
        try:
            found += list(reader(text, path))
        except (SyntaxError, ValueError, configparser.Error, tomllib.TOMLDecodeError,
                CMakeError, RecursionError, MemoryError) as exc:
            problems.append(f"{path}: {exc}")
    return found, problems


def merge(found: Iterable[Declared]) -> list[Declared]:
    """One requirement per package: the specifiers of every declaration together, and every
    place that declared it."""
    by_name: dict[str, list[Declared]] = {}
    for d in found:
        by_name.setdefault(d.name, []).append(d)
    out: list[Declared] = []
    for name, items in sorted(by_name.items()):
        spec = SpecifierSet()
        for d in items:
            spec &= SpecifierSet(d.specifier)
        sources = "; ".join(dict.fromkeys(d.source for d in items))
        out.append(Declared(name=name, specifier=str(spec), source=sources))
    return out
