"""FT100, FT101 and FT145: C-API functions Cython code takes from Cython's bundled `cpython`
declarations (or declares itself in `cdef extern` blocks) that rely on the GIL (borrowed
references, the legacy PyThread lock) or that CPython removed before 3.13."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from gilaudit.frontends.contract import Hit
from gilaudit.frontends.cython.parse import CyNode
from gilaudit.frontends.cython.scope import PathOf, declarator_info, dotted, hit_at, start_of
from gilaudit.frontends.removed_api import C_DEFINE, Use, file_hit, removed_names

__all__ = ["BORROWED", "PYTHREAD_LOCK", "cython_borrowed_cimports", "cython_raw_pythread_lock",
           "cython_removed_api"]

BORROWED = frozenset({
    "PyDict_GetItem", "PyDict_GetItemString", "PyDict_Next", "PyDict_SetDefault",
    "PyList_GET_ITEM", "PyList_GetItem", "PyWeakref_GetObject", "PyWeakref_GET_OBJECT",
})
PYTHREAD_LOCK = ("PyThread_allocate_lock", "PyThread_acquire_lock", "PyThread_release_lock",
                 "PyThread_free_lock")


def _cimported_modules(nodes: Sequence[CyNode]) -> dict[str, str]:
    """Local names bound to a `cpython` declaration module: `cimport cpython.dict [as d]`,
    `from cpython cimport pythread` (submodules are lower case, the C API is not)."""
    out: dict[str, str] = {}
    for node in nodes:
        module = node.text("module_name")
        if module.split(".", 1)[0] != "cpython":
            continue
        if node.kind == "CImportStatNode":
            alias = node.text("as_name") or module.split(".", 1)[0]
            out[alias] = module
        elif node.kind == "FromCImportStatNode":
            for name, as_name, _line, _col in node.attrs.get("imported", ()):
                if name.islower():
                    out[as_name or name] = f"{module}.{name}"
    return out


def _extern_functions(nodes: Sequence[CyNode]) -> Iterator[tuple[str, CyNode]]:
    for node in nodes:
        if node.kind != "CDefExternNode":
            continue
        for decl_stmt in node.walk():
            if decl_stmt.kind != "CVarDefNode":
                continue
            for decl in decl_stmt.kids("declarators"):
                name, kinds, name_node = declarator_info(decl)
                if "CFuncDeclaratorNode" in kinds and name_node is not None:
                    yield name, name_node


def _api_uses(nodes: Sequence[CyNode], names: frozenset[str] | tuple[str, ...],
              rule: str, path_of: PathOf, star_from: frozenset[str],
              used: frozenset[str] | tuple[str, ...] | None = None) -> Iterator[Hit]:
    """The cimports and `cdef extern` declarations of the given C-API names, and the uses
    (of `used`, default all) reached without a named cimport: qualified or after `*`."""
    used = names if used is None else used
    aliases = _cimported_modules(nodes)
    for node in nodes:
        if node.kind == "FromCImportStatNode":
            module = node.text("module_name")
            if module.split(".", 1)[0] != "cpython":
                continue
            for name, _as, line, col in node.attrs.get("imported", ()):
                if name in names:
                    yield Hit(rule=rule, path=path_of(node.file) or "", line=line, col=col,
                              symbol=name, where=f"cimported from `{module}`")
                    if rule == "FT101":
                        break  # one lock API per statement is enough to say it
        elif node.kind == "AttributeNode" and node.text("attribute") in used:
            root = dotted(node).split(".", 1)[0]
            if root in aliases:
                hit = hit_at(path_of, rule, node, node.text("attribute"),
                             f"used through `{aliases[root]}`")
                if hit is not None:
                    yield hit
        elif node.kind in ("SimpleCallNode", "GeneralCallNode") and star_from:
            fn = node.child("function")
            if fn is not None and fn.kind == "NameNode" and fn.text("name") in used:
                hit = hit_at(path_of, rule, fn, fn.text("name"),
                             f"cimported with `from {sorted(star_from)[0]} cimport *`")
                if hit is not None:
                    yield hit
    for name, name_node in _extern_functions(nodes):
        if name in names:
            hit = hit_at(path_of, rule, name_node, name, "declared in a `cdef extern` block")
            if hit is not None:
                yield hit


def _star_cimports(nodes: Sequence[CyNode]) -> frozenset[str]:
    return frozenset(
        n.text("module_name") for n in nodes
        if n.kind == "FromCImportStatNode" and n.text("module_name").split(".")[0] == "cpython"
        and any(name == "*" for name, *_ in n.attrs.get("imported", ())))


def cython_borrowed_cimports(nodes: Sequence[CyNode], path_of: PathOf) -> Iterator[Hit]:
    """``nodes``: every node of the module tree (scope.ModuleIndex.nodes)."""
    yield from (h for h in _api_uses(nodes, BORROWED, "FT100", path_of, _star_cimports(nodes))
                if h.path)


def cython_raw_pythread_lock(nodes: Sequence[CyNode], path_of: PathOf) -> Iterator[Hit]:
    # Uses: creating the lock is the point to report, not every acquire and release.
    yield from (h for h in _api_uses(nodes, PYTHREAD_LOCK, "FT101", path_of,
                                     _star_cimports(nodes), used=PYTHREAD_LOCK[:1]) if h.path)


def _shimmed_c_names(nodes: Sequence[CyNode]) -> set[str]:
    """Names the module's verbatim C (`cdef extern from *: \"\"\"#define X ...\"\"\"`) defines
    itself: acora's `#define PyUnicode_AS_UNICODE(u) (NULL)` for 3.12 and later."""
    return {name for node in nodes if node.kind == "CDefExternNode"
            for name in C_DEFINE.findall(node.text("verbatim_include"))}


def _declared_c_names(nodes: Sequence[CyNode]) -> set[str]:
    """Names the module declares in `cdef extern` blocks (functions, variables, macros) or
    cimports from Cython's `cpython` declarations."""
    out: set[str] = set()
    for node in nodes:
        if node.kind == "CDefExternNode":
            for stmt in node.walk():
                if stmt.kind == "CVarDefNode":
                    out.update(declarator_info(d)[0] for d in stmt.kids("declarators"))
        elif node.kind == "FromCImportStatNode" and \
                node.text("module_name").split(".", 1)[0] == "cpython":
            out.update(name for name, *_ in node.attrs.get("imported", ()))
    return out


def cython_removed_api(nodes: Sequence[CyNode], path_of: PathOf) -> Iterator[Hit]:
    """FT145: a C-API name CPython removed before 3.13 that the module declares and uses: the C
    Cython generates calls it, and that C no longer compiles. A declaration alone generates
    nothing. One finding per file, at the first use, the others as notes."""
    table = removed_names()
    declared = {n for n in _declared_c_names(nodes) if n in table} - _shimmed_c_names(nodes)
    aliases = _cimported_modules(nodes)
    uses: dict[str, list[tuple[int, int, str]]] = {}
    for node in nodes:
        name = ""
        if node.kind == "NameNode" and node.text("name") in declared:
            name = node.text("name")
        elif node.kind == "AttributeNode" and node.text("attribute") in table \
                and dotted(node).split(".", 1)[0] in aliases:
            name = node.text("attribute")
        if not name:
            continue
        at = start_of(node)
        path = path_of(at.file)
        if path is not None:
            uses.setdefault(path, []).append((at.line, at.col, name))
    for path, found in sorted(uses.items()):
        first_of: dict[str, tuple[int, int]] = {}
        for line, col, name in sorted(found):
            first_of.setdefault(name, (line, col))
        yield file_hit(path, [Use(line, col, name, table[name])
                              for name, (line, col) in first_of.items()])
