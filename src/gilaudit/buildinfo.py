"""What the build files say, read statically: never run ``setup.py``.

From ``setup.py`` (parsed with ``ast``), ``setup.cfg`` and ``pyproject.toml`` we take literal
``Extension(...)`` names, sources, ``include_dirs`` and ``define_macros``, and
``requires-python``. Anything computed at build time is out of reach and simply absent.
"""

from __future__ import annotations

import ast
import configparser
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from gilaudit._toml import tomllib
from gilaudit.model import Diagnostic

__all__ = ["BuildInfo", "ExtensionSpec", "read_build_info"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ExtensionSpec:
    name: str
    sources: tuple[str, ...]  # project-relative


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildInfo:
    include_dirs: tuple[str, ...] = ()  # project-relative or absolute
    defines: tuple[str, ...] = ()
    extensions: tuple[ExtensionSpec, ...] = ()
    requires_python: str | None = None
    diagnostics: tuple[Diagnostic, ...] = field(default=())

    def supports_before_313(self) -> bool:
        """True unless requires-python rules out every version before 3.13 (unknown: True)."""
        if not self.requires_python:
            return True
        try:
            spec = SpecifierSet(self.requires_python)
        except InvalidSpecifier:
            return True
        return any(spec.contains(f"3.{minor}", prereleases=True) for minor in range(6, 13))


def _literal(node: ast.AST | None, names: dict[str, Any] | None = None) -> Any:
    """The value of a literal expression; names bound to literals at module level and `+`
    of lists resolve too (`sources = ["a.c"]; Extension("m", sources + ["b.c"])`)."""
    if node is None:
        return None
    if isinstance(node, ast.Name) and names is not None:
        return names.get(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and names is not None:
        left, right = _literal(node.left, names), _literal(node.right, names)
        if isinstance(left, list | tuple) and isinstance(right, list | tuple):
            return [*left, *right]
        return None
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return []


def _macros(value: Any) -> list[str]:
    out = []
    if isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
                val = item[1] if len(item) > 1 else None
                out.append(item[0] if val is None else f"{item[0]}={val}")
    return out


def _constant_names(tree: ast.Module) -> dict[str, Any]:
    """Module-level names bound once to a literal and never changed afterwards: a list that is
    later appended to (`files = ["a.c"]; files.append(...)`) is not a constant."""
    bound: dict[str, int] = {}
    changed: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        bound[name.id] = bound.get(name.id, 0) + 1
        elif isinstance(node, ast.AugAssign | ast.AnnAssign | ast.For | ast.comprehension):
            for name in ast.walk(node.target):
                if isinstance(name, ast.Name):
                    changed.add(name.id)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(
                node.func.value, ast.Name):
            changed.add(node.func.value.id)  # `files.append(...)`, `opts.update(...)`
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store) and isinstance(
                node.value, ast.Name):
            changed.add(node.value.id)
    names: dict[str, Any] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(
                stmt.targets[0], ast.Name):
            ident = stmt.targets[0].id
            if bound.get(ident) != 1 or ident in changed:
                continue
            value = _literal(stmt.value, names)
            if value is not None:
                names[ident] = value
    return names


def _from_setup_py(text: str) -> tuple[list[str], list[str], list[ExtensionSpec], str | None]:
    tree = ast.parse(text)
    names = _constant_names(tree)
    includes: list[str] = []
    defines: list[str] = []
    exts: list[ExtensionSpec] = []
    requires: str | None = None
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        fname = node.func.attr if isinstance(node.func, ast.Attribute) else (
            node.func.id if isinstance(node.func, ast.Name) else "")
        kwargs = {k.arg: k.value for k in node.keywords if k.arg}
        if fname in ("Extension", "Pybind11Extension", "setup"):
            includes += _strings(_literal(kwargs.get("include_dirs"), names))
            defines += _macros(_literal(kwargs.get("define_macros"), names))
        if fname == "setup":
            rp = _literal(kwargs.get("python_requires"), names)
            requires = rp if isinstance(rp, str) else requires
        if fname in ("Extension", "Pybind11Extension"):
            name = _literal(node.args[0] if node.args else kwargs.get("name"), names)
            srcs = _literal(node.args[1] if len(node.args) > 1 else kwargs.get("sources"), names)
            if isinstance(name, str):
                exts.append(ExtensionSpec(name=name, sources=tuple(_strings(srcs))))
    return includes, defines, exts, requires


_CMAKE_VARIABLE = re.compile(r"\$\{[^}]*\}")


def _from_cmake(text: str) -> list[str]:
    """Macros the top-level CMakeLists.txt defines for every configuration: those inside an
    `if()` belong to one platform or option, and generator expressions are left out. A CMake
    variable is unknown here and reads as empty (`VERSION="${PROJECT_VERSION}"` -> `""`), so
    that code pasting the macro into a string still parses."""
    # Imported here: the front ends' package imports this module. CMakeError is a ValueError.
    from gilaudit.frontends.buildfiles.cmake import parse_cmake  # noqa: PLC0415

    out: list[str] = []
    for cmd in parse_cmake(text):
        if cmd.conditional:
            continue
        args: list[str] = []
        for arg in cmd.args:
            # `NAME="value"` is one legacy argument that the parser reads as two.
            if arg.quoted and args and args[-1].endswith("="):
                args[-1] += f'"{arg.text}"'
            else:
                args.append(arg.text)
        if cmd.name == "add_definitions":
            items = [a[2:] for a in args if a.startswith("-D")]
        elif cmd.name == "add_compile_definitions":
            items = args
        elif cmd.name == "target_compile_definitions" and args:
            items = [a for a in args[1:] if a not in ("PUBLIC", "PRIVATE", "INTERFACE")]
        else:
            continue
        out += [_CMAKE_VARIABLE.sub("", item) for item in items
                if item and "$<" not in item and not item.startswith("-")]
    return out


def read_build_info(root: Path, build_files: tuple[str, ...]) -> BuildInfo:
    includes: list[str] = []
    defines: list[str] = []
    exts: list[ExtensionSpec] = []
    requires: str | None = None
    diags: list[Diagnostic] = []
    for rel in build_files:
        if "/" in rel:
            continue  # only the project's top-level build files describe its extensions
        path = root / rel
        try:
            raw = path.read_bytes()
        except OSError as exc:
            diags.append(Diagnostic(path=rel, kind="unreadable", message=str(exc)))
            continue
        text = raw.decode("utf-8", errors="replace")
        try:
            if rel == "setup.py":
                inc, dfn, ext, req = _from_setup_py(text)
                includes += inc
                defines += dfn
                exts += ext
                requires = requires or req
            elif rel == "CMakeLists.txt":
                defines += _from_cmake(text)
            elif rel == "setup.cfg":
                cfg = configparser.ConfigParser(interpolation=None)
                cfg.read_string(text)
                if cfg.has_option("options", "python_requires"):
                    requires = requires or cfg.get("options", "python_requires").strip()
            elif rel == "pyproject.toml":
                data = tomllib.loads(text)
                project = data.get("project", {})
                if isinstance(project, dict) and isinstance(project.get("requires-python"), str):
                    requires = project["requires-python"]
                setuptools = data.get("tool", {}).get("setuptools", {})
                ext_modules = setuptools.get("ext-modules", []) if isinstance(setuptools,
                                                                              dict) else []
                for ext in ext_modules:
                    if isinstance(ext, dict) and isinstance(ext.get("name"), str):
                        exts.append(ExtensionSpec(name=ext["name"],
                                                  sources=tuple(_strings(ext.get("sources")))))
                        includes += _strings(ext.get("include-dirs"))
                        defines += _macros(ext.get("define-macros"))
        except (SyntaxError, ValueError, configparser.Error, tomllib.TOMLDecodeError,
                RecursionError, MemoryError) as exc:
            diags.append(Diagnostic(path=rel, kind="build-file",
                                    message=f"could not read statically: {exc}"))
    return BuildInfo(
        include_dirs=tuple(dict.fromkeys(includes)),
        defines=tuple(dict.fromkeys(defines)),
        extensions=tuple(exts),
        requires_python=requires,
        diagnostics=tuple(diags),
    )
