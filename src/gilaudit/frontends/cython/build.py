"""Where a build declares ``freethreading_compatible`` for its Cython modules, read statically.

The places Cython (or the compiler) actually reads:

* ``compiler_directives={"freethreading_compatible": True}`` passed to ``cythonize`` (or a
  ``cython_directives`` dict on an Extension) in ``setup.py`` or a build helper beside it
  (``setup_build.py``, ``build.py``, ...): any dict literal, ``dict(...)``
  call or ``d["freethreading_compatible"] = ...`` there, names bound to literals resolved;
* ``-X freethreading_compatible=True`` / ``-Xfreethreading_compatible=true`` on the cython
  command line: strings in ``meson.build`` (``cython_args``, ``add_project_arguments``),
  ``CMakeLists.txt`` (``cython_transpile(... CYTHON_ARGS ...)``), ``setup.py``, string
  values in ``pyproject.toml`` (meson-python / scikit-build-core arguments), and ``cython``
  commands in a ``Makefile`` (``#`` comments skipped);
* the C macro ``CYTHON_FREETHREADING_COMPATIBLE`` (Cython >= 3.2.3), which overrides the
  directive: ``define_macros`` tuples, ``-D`` strings, CMake/meson definitions;
* a ``freethreading_compatible`` key anywhere under ``[tool.*]`` in ``pyproject.toml`` (the
  in-tree backends of aio-libs read ``[tool.local.cythonize.kwargs.directive]``).

Never runs anything. A value that is computed (``not DEBUG``) counts as "declared, value
unknown", so the module is not reported as missing the directive.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

from gilaudit._toml import tomllib
from gilaudit.frontends.cython.text import code_only

__all__ = ["BuildDecl", "is_python_build_script", "read_declarations"]

_KEY = "freethreading_compatible"
_MACRO = "CYTHON_FREETHREADING_COMPATIBLE"
_X_OPTION = re.compile(r"freethreading_compatible\s*=\s*([A-Za-z0-9_]+)")
_MACRO_OPTION = re.compile(
    r"(?:(?<=-D)|(?<![A-Za-z0-9_]))CYTHON_FREETHREADING_COMPATIBLE(?![A-Za-z0-9_])"
    r"(?:\s*=\s*([A-Za-z0-9_]+))?")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True, slots=True)
class BuildDecl:
    path: str  # root-relative build file
    line: int
    kind: str  # "directive" | "macro"
    value: bool | None  # None: present but computed at build time


def _truth(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    return None


def _from_strings(text: str, path: str, line: int) -> list[BuildDecl]:
    out = [BuildDecl(path, line, "directive", _truth(m.group(1)))
           for m in _X_OPTION.finditer(text)]
    out += [BuildDecl(path, line, "macro", True if m.group(1) is None else _truth(m.group(1)))
            for m in _MACRO_OPTION.finditer(text)]
    return out


class _SetupVisitor(ast.NodeVisitor):
    def __init__(self, path: str, names: dict[str, Any]) -> None:
        self.path = path
        self.names = names
        self.found: list[BuildDecl] = []

    def _value(self, node: ast.AST) -> bool | None:
        if isinstance(node, ast.Name) and node.id in self.names:
            return _truth(self.names[node.id])
        try:
            return _truth(ast.literal_eval(node))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if isinstance(key, ast.Constant) and key.value == _KEY:
                self.found.append(BuildDecl(self.path, key.lineno, "directive",
                                            self._value(value)))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        for kw in node.keywords:
            if kw.arg == _KEY:
                self.found.append(BuildDecl(self.path, kw.value.lineno, "directive",
                                            self._value(kw.value)))
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant) \
                    and target.slice.value == _KEY:
                self.found.append(BuildDecl(self.path, node.lineno, "directive",
                                            self._value(node.value)))
        self.generic_visit(node)

    def visit_Tuple(self, node: ast.Tuple) -> None:
        # define_macros=[("CYTHON_FREETHREADING_COMPATIBLE", "1")]; (NAME, None) means "1".
        elts = node.elts
        if len(elts) == 2 and isinstance(elts[0], ast.Constant) and elts[0].value == _MACRO:
            second = elts[1]
            value = True if isinstance(second, ast.Constant) and second.value is None \
                else self._value(second)
            self.found.append(BuildDecl(self.path, node.lineno, "macro", value))
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and node.value not in (_KEY, _MACRO):
            self.found += _from_strings(node.value, self.path, node.lineno)


def _module_names(tree: ast.Module) -> dict[str, Any]:
    names: dict[str, Any] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(
                stmt.targets[0], ast.Name):
            try:
                names[stmt.targets[0].id] = ast.literal_eval(stmt.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                continue
    return names


def _from_setup_py(text: str, path: str) -> list[BuildDecl]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        # A Python 2 setup.py still says what it says: fall back to the text.
        return _from_text_lines(text, path, python_like=True)
    visitor = _SetupVisitor(path, _module_names(tree))
    try:
        visitor.visit(tree)
    except RecursionError:
        return _from_text_lines(text, path, python_like=True)
    return visitor.found


def _from_text_lines(text: str, path: str, *, python_like: bool) -> list[BuildDecl]:
    """meson.build, CMakeLists.txt, setup.cfg (and an unparsable setup.py): `#` comments
    blanked, then the option and macro spellings, line by line."""
    code = code_only(text) if python_like else re.sub(r"#[^\n]*", "", text)
    out: list[BuildDecl] = []
    dict_key = re.compile(r"['\"]freethreading_compatible['\"]\s*:\s*([A-Za-z0-9_]+)")
    for number, line in enumerate(code.splitlines(), 1):
        out += _from_strings(line, path, number)
        if python_like:
            out += [BuildDecl(path, number, "directive", _truth(m.group(1)))
                    for m in dict_key.finditer(line)]
    return out


def _toml_line(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line and not line.lstrip().startswith("#"):
            return number
    return 1


def _from_pyproject(text: str, path: str) -> list[BuildDecl]:
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError):
        return []
    tool = data.get("tool")
    out: list[BuildDecl] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == _KEY:
                    out.append(BuildDecl(path, _toml_line(text, _KEY), "directive",
                                         _truth(item)))
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            for decl in _from_strings(value, path, 1):
                needle = _KEY if decl.kind == "directive" else _MACRO
                out.append(BuildDecl(path, _toml_line(text, needle), decl.kind, decl.value))

    walk(tool if isinstance(tool, dict) else {})
    return out


def is_python_build_script(name: str) -> bool:
    """setup.py, and the helpers builds keep beside it (h5py's setup_build.py, a build.py,
    _build_ext.py): Python files that may call cythonize."""
    if not name.endswith(".py"):
        return False
    stem = name[:-3].lower()
    return stem == "setup" or stem.startswith("setup_") or "build" in stem


def read_declarations(path: str, text: str) -> list[BuildDecl]:
    """Declarations in one build file (root-relative `path`), in file order."""
    name = path.rsplit("/", 1)[-1]
    if is_python_build_script(name):
        return _from_setup_py(text, path)
    if name == "pyproject.toml":
        return _from_pyproject(text, path)
    if name in ("meson.build", "CMakeLists.txt", "setup.cfg") or name.endswith(".cmake"):
        return _from_text_lines(text, path, python_like=False)
    if name in ("Makefile", "makefile", "GNUmakefile") or name.endswith(".mk"):
        # aio-libs (aiohttp, yarl, multidict, frozenlist) cythonize from their Makefile.
        return _from_text_lines(text, path, python_like=False)
    return []
