"""The tree the project's tests run from, and which extension modules a test file is about.

The tests run against the *installed* project (the one pip built into the fresh venv), from a
copy of its source tree: a project directory copied, an sdist unpacked. A package directory at
the tree's root that holds installed extension modules is removed from the copy: with pytest's
default import mode (rootdir on ``sys.path``) it would shadow the installed package, whose
compiled modules it lacks.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gilaudit.archives import ArchiveLimits, extract_sdist
from gilaudit.model import Diagnostic

__all__ = ["TestTree", "imported_names", "modules_of", "prepare_tree"]

_SKIPPED = shutil.ignore_patterns(".git", ".hg", ".venv", "venv", ".tox", ".nox", "build",
                                  "dist", "*.egg-info", "__pycache__", ".mypy_cache",
                                  ".pytest_cache", "*.so", "*.pyd")


@dataclass(frozen=True, kw_only=True, slots=True)
class TestTree:
    __test__ = False  # not a pytest test class, whatever its name

    root: Path | None  # None: the target has no source tree (a wheel) or it could not be read
    removed: tuple[str, ...] = ()  # package directories that would shadow the installed ones
    diagnostics: tuple[Diagnostic, ...] = ()


def prepare_tree(target: Path, dest: Path, modules: Iterable[str]) -> TestTree:
    """Copy (a directory) or unpack (an sdist) ``target`` into ``dest``, then remove the root
    package directories that hold any of the installed extension ``modules``."""
    if target.is_dir():
        root = dest / (target.resolve().name or "project")
        shutil.copytree(target, root, symlinks=True, ignore=_SKIPPED)
    elif target.name.endswith(".whl"):
        return TestTree(root=None, diagnostics=(Diagnostic(
            path=str(target), kind="no-tests",
            message="a wheel holds no test suite: give --tests a project directory or an "
                    "sdist"),))
    else:
        dest.mkdir(parents=True, exist_ok=True)
        diags = extract_sdist(target, dest, limits=ArchiveLimits())
        tops = [p for p in dest.iterdir() if p.is_dir()]
        if len(tops) != 1:
            return TestTree(root=None, diagnostics=(*diags, Diagnostic(
                path=str(target), kind="no-tests",
                message="the sdist does not unpack into one project directory")))
        root = tops[0]
        if diags:
            return TestTree(root=root, diagnostics=tuple(diags))
    removed = []
    for top in sorted({m.split(".", 1)[0] for m in modules}):
        package = root / top
        if package.is_dir() and (package / "__init__.py").is_file():
            shutil.rmtree(package)
            removed.append(top)
    return TestTree(root=root, removed=tuple(removed))


def imported_names(source: str) -> set[str]:
    """Every dotted name an ``import`` in ``source`` may load: ``import a.b`` gives a.b,
    ``from a.b import c`` gives a.b and a.b.c (c may be a submodule). Relative imports are the
    test suite's own helpers and are left out. Unparsable source gives nothing."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names
                         if alias.name != "*")
    return names


def modules_of(source: str, extension_modules: Iterable[str]) -> tuple[str, ...]:
    """The extension modules a test file imports: named directly, else those inside a
    package it imports (``import markupsafe`` tests ``markupsafe._speedups``)."""
    names = imported_names(source)
    modules = sorted(set(extension_modules))
    direct = [m for m in modules if m in names]
    if direct:
        return tuple(direct)
    return tuple(m for m in modules if any(m.startswith(n + ".") for n in names))
