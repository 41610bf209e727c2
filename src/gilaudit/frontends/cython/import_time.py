"""Functions a project's Python code calls only while it is imported.

Cython modules often keep their setup in a function the package's `__init__.py` (or the
pure-Python module a `.pxd` augments) calls once at module level: `init_base_impl(...)`,
`_init()`. Writes there happen under the import lock, once, like module-level code. This reads
the project's `.py` files with `ast` (never runs them) and answers, for one name, whether
every call of it in Python code is made at import time: from module-level statements, or from
a function of the same file that only module-level statements call."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = ["ImportTimeCalls"]

# A .py file larger than this is data or generated code, not a package's import logic.
_MAX_BYTES = 512 * 1024


def _called_name(node: ast.Call) -> str:
    fn = node.func
    if isinstance(fn, ast.Name):
        return fn.id
    if isinstance(fn, ast.Attribute):
        return fn.attr
    return ""


def _calls(nodes: Iterable[ast.AST]) -> set[str]:
    out: set[str] = set()
    for top in nodes:
        for node in ast.walk(top):
            if isinstance(node, ast.Call):
                name = _called_name(node)
                if name:
                    out.add(name)
    return out


def _module_level(body: list[ast.stmt]) -> tuple[list[ast.stmt], dict[str, ast.AST]]:
    """Statements that run at import (function and class bodies left out) and the file's
    top-level functions by name."""
    run: list[ast.stmt] = []
    funcs: dict[str, ast.AST] = {}
    pending = list(body)
    while pending:
        stmt = pending.pop()
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            funcs.setdefault(stmt.name, stmt)
            run.extend(stmt.decorator_list)  # type: ignore[arg-type]
        elif isinstance(stmt, ast.ClassDef):
            continue  # methods run later; a class body calling setup code is rare
        elif isinstance(stmt, ast.If | ast.Try | ast.With):
            for part in ("body", "orelse", "finalbody"):
                pending.extend(getattr(stmt, part, []) or [])
            for handler in getattr(stmt, "handlers", []) or []:
                pending.extend(handler.body)
            if isinstance(stmt, ast.If):
                run.append(stmt.test)  # type: ignore[arg-type]
        else:
            run.append(stmt)
    return run, funcs


def _file_calls(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(names called at import, names called at run time) in one file."""
    run, funcs = _module_level(tree.body)
    at_import = _calls(run)
    # A function only module-level code calls runs at import too (`def _init(): ...`
    # followed by `_init()`), and so does what it calls.
    import_funcs = {name for name in funcs if name in at_import}
    for name in import_funcs:
        at_import |= _calls([funcs[name]])
    later: set[str] = set()
    for name, fn in funcs.items():
        if name not in import_funcs:
            later |= _calls([fn])
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            later |= _calls([node])
    return at_import, later


@dataclass
class ImportTimeCalls:
    """Reads ``.py`` files on demand (only those that mention a name asked about) and keeps
    what it learnt; one instance serves one scan of one project."""

    read: Callable[[str], str | None]  # a project-relative path -> its text
    paths: tuple[str, ...]
    _parsed: dict[str, tuple[set[str], set[str]] | None] = field(default_factory=dict)
    _texts: dict[str, str | None] = field(default_factory=dict)
    _answers: dict[str, tuple[bool, bool]] = field(default_factory=dict)

    def only_at_import(self, name: str) -> bool:
        """Python code calls it, and only while importing."""
        at_import, later = self._state(name)
        return at_import and not later

    def called_later(self, name: str) -> bool:
        """Some Python code of the project calls it after import (from a function)."""
        return self._state(name)[1]

    def _text(self, path: str) -> str | None:
        if path not in self._texts:
            self._texts[path] = self.read(path)
        return self._texts[path]

    def _state(self, name: str) -> tuple[bool, bool]:
        if name not in self._answers:
            self._answers[name] = self._decide(name)
        return self._answers[name]

    def _decide(self, name: str) -> tuple[bool, bool]:
        seen_at_import = False
        for path in self.paths:
            text = self._text(path)
            if text is None or name not in text:
                continue
            calls = self._calls_of(path, text)
            if calls is None:
                continue
            at_import, later = calls
            if name in later:
                return seen_at_import or name in at_import, True
            seen_at_import |= name in at_import
        return seen_at_import, False

    def _calls_of(self, path: str, text: str) -> tuple[set[str], set[str]] | None:
        if path not in self._parsed:
            try:
                tree = ast.parse(text) if len(text) <= _MAX_BYTES else None
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                tree = None
            self._parsed[path] = _file_calls(tree) if tree is not None else None
        return self._parsed[path]
