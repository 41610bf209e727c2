"""The one place that touches Cython's own parser: text in, a neutral syntax tree out.

Cython has no public parsing API, so this module keeps to the entry points its own
``TreeFragment`` and ``Main.Context.parse`` use (``Main.Context``, ``Scanning.PyrexScanner``,
``Parsing.p_module``, ``Errors.local_errors``), checked on Cython 3.0 to 3.3. Nothing is
compiled: the tree is the parser's output before any transform runs.

The Cython node objects are copied into :class:`CyNode` (kind = the Cython class name, a few
scalar attributes, the children by attribute name), so the rule modules are typed and do not
depend on Cython objects, and a Cython upgrade touches this file only.
"""

from __future__ import annotations

import importlib
import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CyNode", "CythonParseError", "ParseOutcome", "cython_version", "parse_cython"]

# Scalar attributes worth keeping (names, operators, GIL state, visibility, literal values).
_SCALARS = (
    "name", "attribute", "operator", "state", "class_name", "module_name", "visibility",
    "overridable", "names", "value", "api", "is_pxd", "as_name", "nogil",
    "verbatim_include",  # the C a `cdef extern from *: """..."""` block pastes in
    "is_async_def",  # `async def`: a coroutine, run by an event loop
)
# A file that includes itself (directly or in a cycle) would recurse until the stack ends.
# Kept although Cython does not list them as children: a cdef class's base classes.
_EXTRA_CHILDREN = ("bases",)
_MAX_INCLUDES = 100
_MAX_SAME_INCLUDE = 4


@dataclass(frozen=True, slots=True, eq=False)
class CyNode:
    kind: str  # the Cython node class, e.g. "InPlaceAssignmentNode"
    file: str  # absolute path of the file the node came from (an include has its own)
    line: int  # 1-based
    col: int  # 1-based
    attrs: dict[str, Any] = field(default_factory=dict)
    children: dict[str, tuple[CyNode, ...]] = field(default_factory=dict)

    def child(self, name: str) -> CyNode | None:
        got = self.children.get(name, ())
        return got[0] if got else None

    def kids(self, name: str) -> tuple[CyNode, ...]:
        return self.children.get(name, ())

    def text(self, name: str) -> str:
        value = self.attrs.get(name)
        return value if isinstance(value, str) else ""

    def walk(self) -> list[CyNode]:
        """This node and every descendant, in source order of the attributes."""
        out: list[CyNode] = []
        stack = [self]
        while stack:
            node = stack.pop()
            out.append(node)
            for group in reversed(list(node.children.values())):
                stack.extend(reversed(group))
        return out


@dataclass(frozen=True, slots=True)
class CythonParseError:
    file: str
    line: int
    col: int
    message: str


@dataclass(frozen=True, slots=True)
class ParseOutcome:
    tree: CyNode | None  # None: the parser stopped (a fatal error)
    errors: tuple[CythonParseError, ...]  # non-empty with a tree: the tree is partial
    included: tuple[str, ...]  # absolute paths of the files pulled in by `include`
    missing: tuple[str, ...]  # include names that could not be resolved


def cython_version() -> str | None:
    try:
        import Cython  # noqa: PLC0415 - optional: the front end degrades without it
    except ImportError:
        return None
    return str(getattr(Cython, "__version__", "unknown"))


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return str(value)  # EncodedString -> str
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value):
            return tuple(str(v) for v in value)
        return None
    return None


def _pos(pos: Any) -> tuple[str, int, int]:
    desc, line, col = pos[0], int(pos[1]), int(pos[2])
    name = getattr(desc, "filename", None) or getattr(desc, "name", None) or ""
    return str(name), line, col + 1


def _imported(names: Any) -> tuple[tuple[str, str, int, int], ...]:
    """`from m cimport a as b, c` -> (("a", "b", line, col), ("c", "", line, col))."""
    out = []
    for item in names or ():
        if not isinstance(item, tuple) or len(item) < 3:
            continue
        _file, line, col = _pos(item[0])
        out.append((str(item[1]), str(item[2] or ""), line, col))
    return tuple(out)


def _convert(node: Any, depth: int = 0) -> CyNode:
    if depth > 400:
        raise RecursionError("syntax tree nested too deeply")
    file, line, col = _pos(node.pos)
    attrs: dict[str, Any] = {}
    for key in _SCALARS:
        value = getattr(node, key, None)
        if value is None:
            continue  # absent, or None: neither is kept
        if key == "value" and not isinstance(value, (str, bytes, bool, int, float)):
            continue
        conv = _scalar(value)
        if conv is not None:
            attrs[key] = conv
    imported = getattr(node, "imported_names", None)
    if imported is not None:
        attrs["imported"] = _imported(imported)
    children: dict[str, tuple[CyNode, ...]] = {}
    for name in (*(getattr(node, "child_attrs", ()) or ()), *_EXTRA_CHILDREN):
        value = getattr(node, name, None)
        if value is None:
            continue
        items = value if isinstance(value, list) else (value,)
        kids = tuple(_convert(v, depth + 1) for v in items
                     if v is not None and hasattr(v, "pos") and hasattr(v, "child_attrs"))
        if kids:
            children[name] = kids
    return CyNode(kind=type(node).__name__, file=file, line=line, col=col, attrs=attrs,
                  children=children)


def parse_cython(
    text: str,
    *,
    filename: str,
    module_name: str,
    is_pxd: bool,
    language_level: str | None,
    resolve_include: Callable[[str, str], str | None],
) -> ParseOutcome:
    """Parse one .pyx/.pxd/.pxi source. ``resolve_include(name, including_file)`` returns the
    absolute path an ``include "name"`` statement reads, or None to skip it.

    Header directive comments are not given to the parser (the caller reads them, and an
    unknown or mistyped directive is not a syntax problem); only their language level is.
    Raises ImportError when Cython is not installed.
    """
    # Imported by name: Cython ships no type information, so its objects are `Any` here.
    errors_mod: Any = importlib.import_module("Cython.Compiler.Errors")
    main_mod: Any = importlib.import_module("Cython.Compiler.Main")
    parsing: Any = importlib.import_module("Cython.Compiler.Parsing")
    scanning: Any = importlib.import_module("Cython.Compiler.Scanning")
    symtab: Any = importlib.import_module("Cython.Compiler.Symtab")

    included: list[str] = []
    missing: list[str] = []

    class _Context(main_mod.Context):  # type: ignore[misc]  # subclassing an `Any`
        def find_include_file(self, name: str, pos: Any = None,
                              source_file_path: str | None = None) -> str | None:
            including = source_file_path or (_pos(pos)[0] if pos else filename)
            path = resolve_include(str(name), including)
            if path is None or len(included) >= _MAX_INCLUDES or \
                    included.count(path) >= _MAX_SAME_INCLUDE:
                missing.append(str(name))
                return None
            included.append(path)
            return path

    # C++ mode parses a superset: it only adds scoped enums (`cpdef enum class`) and rvalue
    # references, which a C module cannot hold, and a module's language is set by its build
    # (review 24: dearcygui's types.pxd declares `cpdef enum class`).
    context = _Context([], {}, cpp=True)
    if language_level:
        try:
            context.set_language_level(language_level)
        except (ValueError, TypeError):
            context.set_language_level("3str")
    else:
        context.set_language_level("3str")
    # Fresh per-thread error state (also: no listing file, nothing echoed to stderr).
    errors_mod.init_thread()
    source = scanning.StringSourceDescriptor(filename, text)
    scope = symtab.ModuleScope(module_name, parent_module=None, context=context)
    tree: Any = None
    with errors_mod.local_errors(ignore=True) as held:
        try:
            scanner = scanning.PyrexScanner(io.StringIO(text), source, source_encoding="UTF-8",
                                            scope=scope, context=context, parse_comments=False)
            tree = parsing.p_module(scanner, is_pxd, module_name)
        except errors_mod.CompileError:
            tree = None  # fatal: already in `held`
    errors = []
    for err in held:
        pos = getattr(err, "position", None)
        file, line, col = _pos(pos) if pos else (filename, 1, 1)
        message = str(getattr(err, "message_only", "") or err).strip()
        errors.append(CythonParseError(file=file, line=line, col=col, message=message))
    if tree is None and not errors:
        errors.append(CythonParseError(file=filename, line=1, col=1,
                                       message="the parser stopped without a message"))
    converted = _convert(tree) if tree is not None else None
    return ParseOutcome(tree=converted, errors=tuple(errors),
                        included=tuple(dict.fromkeys(os.path.normpath(p) for p in included)),
                        missing=tuple(dict.fromkeys(missing)))
