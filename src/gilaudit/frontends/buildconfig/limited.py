"""FT138: the build asks for the Limited API (``Py_LIMITED_API``, ``abi3``) on every
interpreter, including free-threaded CPython 3.13 and 3.14, which have none.

Read statically: ``Py_LIMITED_API`` in setuptools ``define_macros`` / ``extra_compile_args``
(``setup.py``, ``[tool.setuptools] ext-modules``), ``bdist_wheel``'s ``py_limited_api``
(``setup.py`` options, ``setup.cfg``, ``[tool.distutils.bdist_wheel]``), meson's
``limited_api`` with meson-python's ``limited-api``, and ``Py_LIMITED_API`` compile definitions
in CMake. ``Extension(py_limited_api=True)`` alone is not reported: it only names the file
``.abi3.so`` (harmless for the plain shared libraries some projects build that way).

A file that mentions ``Py_GIL_DISABLED`` or free-threading is taken to choose the Limited API
conditionally (the fix the CPython howto recommends) and is not reported. Tools that drop the
Limited API by themselves on free-threaded builds (scikit-build-core's ``wheel.py-api``, PyO3's
``abi3`` features, nanobind's ``STABLE_ABI``) are not reported either.
"""

from __future__ import annotations

import ast
import configparser
import re
from collections.abc import Iterator
from typing import Any

from gilaudit.frontends.buildfiles import BuildFiles
from gilaudit.frontends.buildfiles.reader import find_line
from gilaudit.frontends.contract import Hit

__all__ = ["check_limited"]

_AWARE = re.compile(r"Py_GIL_DISABLED|_is_gil_enabled|free[-_ ]?thread|FREETHREAD|nogil",
                    re.IGNORECASE)
_CMAKE_DEFINERS = frozenset({
    "add_compile_definitions", "target_compile_definitions", "add_definitions",
    "add_compile_options", "target_compile_options", "set_property", "set_target_properties",
    "set_source_files_properties",
})
_ALLOW_OFF = re.compile(r"python\.allow_limited_api\s*=\s*false", re.IGNORECASE)


def _hit(path: str, line: int, col: int, symbol: str, where: str) -> Hit:
    return Hit(rule="FT138", path=path, line=line, col=col, symbol=symbol, where=where)


def _call_name(node: ast.Call) -> str:
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else (f.id if isinstance(f, ast.Name) else "")


def _single_assignments(tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level names assigned exactly once in the whole file (so their value is known)."""
    counts: dict[str, int] = {}
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for t in targets:
            for n in ast.walk(t):
                if isinstance(n, ast.Name):
                    counts[n.id] = counts.get(n.id, 0) + 1
    out: dict[str, ast.expr] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(
                stmt.targets[0], ast.Name) and counts.get(stmt.targets[0].id) == 1:
            out[stmt.targets[0].id] = stmt.value
    return out


def _resolve(node: ast.expr | None, names: dict[str, ast.expr]) -> ast.expr | None:
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    return node


def _literal(node: ast.expr | None) -> Any:
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return None


def _setup_py(path: str, tree: ast.Module) -> Iterator[Hit]:
    names = _single_assignments(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        fname = _call_name(node)
        kwargs = {k.arg: k.value for k in node.keywords if k.arg}
        if fname.endswith("Extension"):
            ext = _literal(node.args[0] if node.args else kwargs.get("name"))
            where = f"extension `{ext}`" if isinstance(ext, str) else "this extension"
            # `py_limited_api=True` alone only names the file `.abi3.so`; it is the macro and
            # bdist_wheel's option that break a free-threaded build.
            macros = _resolve(kwargs.get("define_macros"), names)
            if isinstance(macros, (ast.List, ast.Tuple)):
                for elt in macros.elts:
                    item = _literal(elt)
                    if isinstance(item, (tuple, list)) and item and item[0] == "Py_LIMITED_API":
                        yield _hit(path, elt.lineno, elt.col_offset + 1,
                                   f"define_macros {tuple(item)!r}", where)
            args = _resolve(kwargs.get("extra_compile_args"), names)
            for arg in _literal(args) or ():
                if isinstance(arg, str) and re.match(r"[-/]DPy_LIMITED_API\b", arg):
                    assert args is not None
                    yield _hit(path, args.lineno, args.col_offset + 1, arg, where)
        elif fname == "setup":
            options = _literal(_resolve(kwargs.get("options"), names))
            if isinstance(options, dict):
                bdist = options.get("bdist_wheel")
                if isinstance(bdist, dict) and bdist.get("py_limited_api"):
                    kw = kwargs["options"]
                    yield _hit(path, kw.lineno, kw.col_offset + 1,
                               f"bdist_wheel py_limited_api={bdist['py_limited_api']!r}",
                               "every extension")


def _setup_cfg(path: str, text: str) -> Iterator[Hit]:
    cfg = configparser.ConfigParser(interpolation=None)
    try:
        cfg.read_string(text)
    except configparser.Error:
        return
    for key in ("py_limited_api", "py-limited-api"):
        if cfg.has_option("bdist_wheel", key):
            value = cfg.get("bdist_wheel", key).strip()
            if value and value.lower() not in ("false", "0", "no"):
                line = find_line(text, rf"^\s*{re.escape(key)}\s*=", after=r"^\[bdist_wheel\]")
                yield _hit(path, line, 1, f"py_limited_api = {value}", "every extension")


def _pyproject(path: str, data: dict[str, Any], text: str, allow_off: bool) -> Iterator[Hit]:
    tool = data.get("tool", {})
    if not isinstance(tool, dict):
        return
    distutils = tool.get("distutils", {})
    bdist = distutils.get("bdist_wheel", {}) if isinstance(distutils, dict) else {}
    if isinstance(bdist, dict):
        for key in ("py-limited-api", "py_limited_api"):
            value = bdist.get(key)
            if isinstance(value, str) and value:
                line = find_line(text, rf"^\s*{re.escape(key)}\s*=",
                                 after=r"^\[tool\.distutils\.bdist_wheel\]")
                yield _hit(path, line, 1, f"{key} = {value!r}", "every extension")
    setuptools = tool.get("setuptools", {})
    exts = setuptools.get("ext-modules", []) if isinstance(setuptools, dict) else []
    for ext in exts if isinstance(exts, list) else []:
        macros = ext.get("define-macros", []) if isinstance(ext, dict) else []
        for macro in macros if isinstance(macros, list) else []:
            if isinstance(macro, list) and macro and macro[0] == "Py_LIMITED_API":
                name = ext.get("name")
                line = find_line(text, r"[\"']Py_LIMITED_API[\"']")
                yield _hit(path, line, 1, f"define-macros {macro!r}",
                           f"extension `{name}`" if isinstance(name, str) else "this extension")
    meson = tool.get("meson-python", {})
    if isinstance(meson, dict) and meson.get("limited-api") is True and not allow_off:
        line = find_line(text, r"^\s*limited-api\s*=", after=r"^\[tool\.meson-python\]")
        yield _hit(path, line, 1, "limited-api = true", "every extension")


def check_limited(builds: BuildFiles) -> list[Hit]:
    hits: list[Hit] = []
    reader = builds.reader
    allow_off = False
    for path in builds.meson_files() + builds.named("pyproject.toml"):
        if _ALLOW_OFF.search(reader.text(path, count=False) or ""):
            allow_off = True  # limited API is opt-in: `-Dpython.allow_limited_api=true`
    for path in builds.named("setup.py"):
        text = reader.text(path, count=False) or ""
        tree = builds.python(path)
        if tree is not None and not _AWARE.search(text):
            hits += _setup_py(path, tree)
    for path in builds.named("setup.cfg"):
        text = reader.text(path, count=False) or ""
        if not _AWARE.search(text):
            hits += _setup_cfg(path, text)
    for path in builds.named("pyproject.toml"):
        text = reader.text(path, count=False) or ""
        data = builds.toml(path)
        if data is not None:
            hits += _pyproject(path, data, text, allow_off)
    for path in builds.meson_files():
        text = reader.text(path, count=False) or ""
        if allow_off or _AWARE.search(text):
            continue
        for call in builds.meson(path):
            if call.name == "extension_module" and "limited_api" in call.kwargs and \
                    not call.conditional:
                target = call.strings[0] if call.strings else ""
                m = re.search(r"limited_api\s*:\s*'([^']*)'", call.text)
                hits.append(_hit(path, call.line, call.col,
                                 f"limited_api: '{m.group(1)}'" if m else "limited_api",
                                 f"extension `{target}`" if target else "this extension"))
    for path in builds.cmake_files():
        text = reader.text(path, count=False) or ""
        if _AWARE.search(text):
            continue
        for cmd in builds.cmake(path):
            if cmd.name not in _CMAKE_DEFINERS or cmd.conditional:
                continue
            for arg in cmd.args:
                if "Py_LIMITED_API" in arg.text and "$<" not in arg.text:
                    target = cmd.args[0].text if cmd.name.startswith(("target_", "set_")) \
                        and cmd.args else ""
                    hits.append(_hit(path, cmd.line, cmd.col, arg.text,
                                     f"target `{target}`" if target and not
                                     cmd.args[0].unknown else "every target"))
                    break
    return hits
