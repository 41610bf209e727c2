"""Textual include graph of a project: which files use the Python C API, and where headers live.

This runs before any parsing so that pure-C vendored libraries are never handed to libclang as
translation units, and so that quoted includes relative to some project directory resolve.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["IncludeGraph", "build_include_graph", "read_text"]

_INCLUDE = re.compile(rb'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"\n]+)[>"]', re.MULTILINE)
# Headers whose inclusion means "this file talks to the CPython C API".
_PY_HEADERS = frozenset({
    "Python.h", "structmember.h", "pybind11/pybind11.h", "nanobind/nanobind.h",
    "numpy/arrayobject.h", "numpy/ndarrayobject.h", "numpy/ufuncobject.h",
})


# The C and POSIX headers every compiler has: a project file of the same name elsewhere in
# the tree (rapidjson's MSVC-only `msinttypes/stdint.h`) is not what `<stdint.h>` means.
_SYSTEM_HEADERS = frozenset(
    f"{name}.h" for name in (
        "assert", "complex", "ctype", "errno", "fenv", "float", "inttypes", "iso646", "limits",
        "locale", "math", "setjmp", "signal", "stdalign", "stdarg", "stdatomic", "stdbool",
        "stddef", "stdint", "stdio", "stdlib", "stdnoreturn", "string", "tgmath", "threads",
        "time", "uchar", "wchar", "wctype", "unistd", "pthread", "fcntl", "dlfcn", "strings",
        "sys/types", "sys/stat", "sys/time", "sys/mman"))


def read_text(data: bytes) -> str:
    """Bytes to str with one character per byte, so offsets match libclang's byte offsets."""
    return data.decode("latin-1")


@dataclass(frozen=True, kw_only=True, slots=True)
class IncludeGraph:
    includes: dict[str, tuple[tuple[str, str], ...]]  # rel path -> ((kind, spelled), ...)
    uses_python: frozenset[str]  # rel paths whose include closure reaches a Python header
    extra_dirs: dict[str, tuple[str, ...]]  # rel path -> project dirs needed for its includes
    edges: dict[str, tuple[str, ...]]  # rel path -> project files it includes

    def closure(self, roots: set[str]) -> set[str]:
        """The roots and every project file they include, transitively."""
        seen: set[str] = set()
        stack = list(roots)
        while stack:
            cur = stack.pop()
            if cur not in seen:
                seen.add(cur)
                stack.extend(self.edges.get(cur, ()))
        return seen


def _resolve(spelled: str, from_dir: str, by_suffix: dict[str, list[str]],
             known: set[str]) -> tuple[str | None, str | None]:
    """Return (project file, directory to add to -I) for a quoted or bracketed include."""
    local = posixpath.normpath(posixpath.join(from_dir, spelled)) if from_dir else spelled
    if local in known:
        return local, None
    if spelled in _SYSTEM_HEADERS:
        return None, None
    candidates = by_suffix.get(posixpath.basename(spelled), [])
    matches = [c for c in candidates if c == spelled or c.endswith("/" + spelled)]
    if not matches:
        return None, None
    # Prefer the candidate nearest to the including file.
    best = min(matches, key=lambda c: (not c.startswith(from_dir), c.count("/"), c))
    base = best[: len(best) - len(spelled)].rstrip("/")
    return best, base or "."


def build_include_graph(files: Iterable[tuple[str, bytes]]) -> IncludeGraph:
    contents = dict(files)
    known = set(contents)
    by_suffix: dict[str, list[str]] = {}
    for rel in known:
        by_suffix.setdefault(posixpath.basename(rel), []).append(rel)
    includes: dict[str, tuple[tuple[str, str], ...]] = {}
    edges: dict[str, list[str]] = {}
    direct_python: set[str] = set()
    extra: dict[str, set[str]] = {}
    for rel, data in contents.items():
        found = [(m.group(1).decode(), m.group(2).decode("latin-1").strip())
                 for m in _INCLUDE.finditer(data)]
        includes[rel] = tuple(found)
        from_dir = posixpath.dirname(rel)
        for _kind, spelled in found:
            if spelled in _PY_HEADERS or spelled.startswith(("pybind11/", "nanobind/", "cppy/")):
                direct_python.add(rel)
                if spelled == "Python.h":
                    continue
                # A vendored pybind11/nanobind still needs its directory on the path.
            target, base = _resolve(spelled, from_dir, by_suffix, known)
            if target is not None:
                edges.setdefault(rel, []).append(target)
                if base is not None:
                    extra.setdefault(rel, set()).add(base)
    # A file uses Python if anything it (transitively) includes does.
    uses = set(direct_python)
    changed = True
    while changed:
        changed = False
        for rel, targets in edges.items():
            if rel not in uses and any(t in uses for t in targets):
                uses.add(rel)
                changed = True
    # Include dirs needed by headers propagate to their includers.
    closure_dirs: dict[str, tuple[str, ...]] = {}
    for rel in contents:
        seen: set[str] = set()
        stack = [rel]
        dirs: set[str] = set()
        while stack:
            cur = stack.pop()
            if cur in seen:
                continue
            seen.add(cur)
            dirs |= extra.get(cur, set())
            stack.extend(edges.get(cur, []))
        closure_dirs[rel] = tuple(sorted(dirs))
    return IncludeGraph(includes=includes, uses_python=frozenset(uses), extra_dirs=closure_dirs,
                        edges={k: tuple(v) for k, v in edges.items()})
