"""FT118: f2py run by the build without ``--freethreading-compatible`` (NumPy 2.1+), and FT005
for the explicit ``--no-freethreading-compatible``.

Decidable only where the build runs f2py itself: a meson ``custom_target``/``run_command``,
a CMake custom command, or a literal argument list in ``setup.py``. A helper script that calls
f2py on the build's behalf is not followed.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass

from gilaudit.frontends.buildfiles import BuildFiles
from gilaudit.frontends.buildfiles.meson import list_assignments
from gilaudit.frontends.contract import Hit

__all__ = ["F2pyRun", "check_f2py", "f2py_runs"]

FLAG = "--freethreading-compatible"
NO_FLAG = "--no-freethreading-compatible"
_RUNNERS_MESON = frozenset({"custom_target", "run_command", "generator", "run_target"})
_RUNNERS_CMAKE = frozenset({"add_custom_command", "add_custom_target", "execute_process"})


@dataclass(frozen=True, kw_only=True, slots=True)
class F2pyRun:
    path: str
    line: int
    col: int
    flag: str | None  # FLAG, NO_FLAG or None
    module: str | None  # from `-m NAME`, when given
    command: str = "f2py"  # how f2py is named there


def _is_f2py(word: str) -> bool:
    w = word.strip()
    if re.fullmatch(r"\$\{\w*f2py\w*\}", w, re.IGNORECASE):
        return True  # a CMake variable holding the f2py command
    if "get_include" in w:
        return False  # `import numpy.f2py; print(numpy.f2py.get_include())` runs no f2py
    return (w in ("numpy.f2py", "f2py", "f2py3") or w.endswith(("/f2py", "/f2py3"))
            or "-m numpy.f2py" in w or w.startswith(("f2py ", "f2py3 ")))


def _command(words: list[str]) -> str:
    for w in words:
        if _is_f2py(w) or "F2PY_EXECUTABLE" in w:
            if "numpy.f2py" in w:
                return "python -m numpy.f2py"
            first = w.split()[0]
            return "f2py" if "${" in first else first  # a CMake variable: name the tool
    return "f2py"


def _summarise(words: list[str]) -> tuple[str | None, str | None]:
    flag = None
    module = None
    for i, w in enumerate(words):
        for part in w.split():
            if part in (FLAG, NO_FLAG):
                flag = part
        if w.strip() == "-m" and i + 1 < len(words) and words[i + 1] != "numpy.f2py":
            module = words[i + 1]
        parts = w.split()
        for j, p in enumerate(parts[:-1]):
            if p == "-m" and parts[j + 1] != "numpy.f2py":
                module = parts[j + 1]
    if module is not None and ("${" in module or "@" in module):
        module = None  # a placeholder, not a name
    return flag, module


def _strings(node: ast.AST) -> list[str]:
    out: list[str] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            out.append(sub.value)
    return out


def _setup_py_runs(path: str, tree: ast.Module) -> Iterator[F2pyRun]:
    seen: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = ast.unparse(node.func)
        words = _strings(node)
        runs = any(_is_f2py(w) for w in words) or func.endswith(
            ("f2py.run_main", "f2py.compile", "f2py.main"))
        if not runs or node.lineno in seen:
            continue
        if any(isinstance(a, ast.Call) and any(_is_f2py(w) for w in _strings(a))
               for a in ast.walk(node) if a is not node):
            continue  # the inner call is the one that runs f2py
        seen.add(node.lineno)
        flag, module = _summarise(words)
        yield F2pyRun(path=path, line=node.lineno, col=node.col_offset + 1, flag=flag,
                      module=module, command=_command(words))


def f2py_runs(builds: BuildFiles) -> list[F2pyRun]:
    runs: list[F2pyRun] = []
    for path in builds.meson_files():
        # Variables holding the f2py command line (`f2py = [py, '-m', 'numpy.f2py', ...]`).
        variables = list_assignments(builds.reader.text(path, count=False) or "")
        for call in builds.meson(path):
            if call.name not in _RUNNERS_MESON:
                continue
            words = list(call.strings)
            for name, strings in variables.items():
                if re.search(rf"(?<![\w.]){re.escape(name)}(?![\w(])", call.text):
                    words += strings
            if any(_is_f2py(s) for s in words):
                flag, module = _summarise(words)
                runs.append(F2pyRun(path=path, line=call.line, col=call.col, flag=flag,
                                    module=module, command=_command(words)))
    for path in builds.cmake_files():
        for cmd in builds.cmake(path):
            words = [a.text for a in cmd.args]
            if cmd.name in _RUNNERS_CMAKE and any(
                    _is_f2py(w) or "F2PY_EXECUTABLE" in w for w in words):
                flag, module = _summarise(words)
                runs.append(F2pyRun(path=path, line=cmd.line, col=cmd.col, flag=flag,
                                    module=module, command=_command(words)))
    for path in builds.named("setup.py"):
        tree = builds.python(path)
        if tree is not None:
            runs.extend(_setup_py_runs(path, tree))
    return runs


def check_f2py(runs: list[F2pyRun]) -> list[Hit]:
    hits: list[Hit] = []
    for run in runs:
        where = f"module `{run.module}`" if run.module else "the generated module"
        if run.flag == NO_FLAG:
            hits.append(Hit(rule="FT005", path=run.path, line=run.line, col=run.col,
                            symbol=NO_FLAG,
                            where=f"`{run.module}`" if run.module else "generated by f2py"))
        elif run.flag is None:
            hits.append(Hit(rule="FT118", path=run.path, line=run.line, col=run.col,
                            symbol=run.command, where=where))
    return hits
