"""FT102: a `cdef class` method that releases a C pointer of the instance (`self.p = NULL`
after closing it, `del self.p` for a C++ object) while other methods use the pointer, none of
them under a critical section or a lock. hidapi's `close()`, plyvel's `DB.close()` and
unqlite's `close()` do exactly this; with the GIL their other methods ran before or after,
without it they run during (a use after free)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

from gilaudit.frontends.contract import Hit
from gilaudit.frontends.cython.parse import CyNode
from gilaudit.frontends.cython.scope import (
    LIFECYCLE,
    Function,
    HandLocks,
    MethodCall,
    ModuleIndex,
    PathOf,
    called_only_locked,
    class_attr_types,
    declarator_info,
    hit_at,
    locks_whole_function,
    method_calls,
    self_attr,
    walk_unlocked,
)
from gilaudit.model import Location, Note

__all__ = ["cython_pointer_released"]

# Creation and destruction: nobody else holds the object while they run.
# Run on an object being made or unmade: `__setstate__` by unpickling, on a new object.
_MAX_USERS = 4


def _releases(fn: Function, pointers: set[str], locks: frozenset[str], hand: HandLocks
              ) -> Iterator[tuple[str, CyNode, bool]]:
    """`self.p = NULL` and `del self.p` outside any lock, and whether the method frees what
    the pointer held: `del`, a NULL store after a call given `self.p` (`hid_close(
    self._c_hid)`, `self.p.close()`), or a copy in a local that is freed (rdbpython's
    `tmp_db = self.db; self.db = NULL; del tmp_db`). A NULL store alone (pyarrow's
    `poison()`, ffpyplayer's `self.video_st = NULL`) frees nothing: a method that tested it
    can then use NULL."""
    self_name = fn.args[0]
    handed: dict[str, int] = {}  # attribute -> the first call it is given to
    copies: dict[str, str] = {}  # local -> the attribute it holds a copy of
    freed_copies: set[str] = set()  # attributes whose copy is deleted or handed to a call
    stores: list[tuple[str, CyNode, int]] = []
    for node, locked in walk_unlocked(fn.node, locks, nogil_exempt=False, hand=hand):
        if node.kind in ("SimpleCallNode", "GeneralCallNode"):
            for part in (node.child("function"), *node.kids("args"),
                         *(a for t in node.kids("positional_args") for a in t.kids("args"))):
                for n in _walk_nodes(part):
                    attr = self_attr(n, self_name)
                    if attr in pointers:
                        handed.setdefault(attr, _order(node))
                    elif n.kind == "NameNode" and n.text("name") in copies:
                        freed_copies.add(copies[n.text("name")])
        elif node.kind == "DelStatNode":
            freed_copies.update(copies[a.text("name")] for a in node.kids("args")
                                if a.kind == "NameNode" and a.text("name") in copies)
        if node.kind == "SingleAssignmentNode":
            rhs, lhs = node.child("rhs"), node.child("lhs")
            source = self_attr(rhs, self_name)
            if source in pointers and lhs is not None and lhs.kind == "NameNode":
                copies[lhs.text("name")] = source
        elif node.kind == "CVarDefNode":  # `cdef db.DB* tmp = self.db`
            for d in node.kids("declarators"):
                name, _kinds, named = declarator_info(d)
                default = d.child("default") or (named.child("default") if named else None)
                source = self_attr(default, self_name)
                if source in pointers and name:
                    copies[name] = source
        if locked:
            continue
        if node.kind == "SingleAssignmentNode":
            rhs, lhs = node.child("rhs"), node.child("lhs")
            attr = self_attr(lhs, self_name)
            if attr in pointers and _is_null(rhs):
                assert lhs is not None
                stores.append((attr, lhs, _order(node)))
        elif node.kind == "DelStatNode":
            for arg in node.kids("args"):
                attr = self_attr(arg, self_name)
                if attr in pointers:
                    yield attr, arg, True
    for attr, lhs, at in stores:
        yield attr, lhs, handed.get(attr, 1 << 62) < at or attr in freed_copies


def _order(node: CyNode) -> int:
    return node.line * 10000 + node.col


def _walk_nodes(node: CyNode | None) -> Iterator[CyNode]:
    if node is not None:
        yield node
        yield from node.walk()


def _is_null(node: CyNode | None) -> bool:
    """`NULL`, and `<unqlite *>0` (unqlite's `close()`)."""
    while node is not None and node.kind == "TypecastNode":
        node = node.child("operand")
    return node is not None and (node.kind == "NullNode" or (
        node.kind == "IntNode" and node.text("value") == "0"))


def _uses(fn: Function, attr: str, locks: frozenset[str], hand: HandLocks) -> CyNode | None:
    """The first unlocked read of `self.attr` in the method, if any; a comparison with NULL
    uses nothing (ffpyplayer's `if self.subtitle_st != NULL` alone)."""
    self_name = fn.args[0]
    tests: set[int] = set()
    for node, locked in walk_unlocked(fn.node, locks, nogil_exempt=False, hand=hand):
        if node.kind == "PrimaryCmpNode":
            left, right = node.child("operand1"), node.child("operand2")
            for a, b in ((left, right), (right, left)):
                if a is not None and (_is_null(b) or (b is not None and b.kind == "NoneNode")):
                    tests.add(id(a))
        if not locked and id(node) not in tests and self_attr(node, self_name) == attr:
            return node
    return None


def _construction_only(funcs: Sequence[Function],
                       calls: dict[str, tuple[MethodCall, ...]]) -> set[str]:
    """Qualified names of `cdef` methods every call of which is part of making or destroying
    an object: from `__cinit__`/`__init__`/`__dealloc__` on `self`, from another such method
    on `self`, or on an object the caller has just made (lxml's `entry._setError(error)` right
    after `_LogEntry.__new__`, `_MultiTagMatcher._clear()` from `__cinit__` and `__dealloc__`).
    ``calls``: the project's method calls (scope.method_calls): cylp's `setCppSelf` is called
    by its other modules, each time on an object just made."""
    cdefs = {f.name: f for f in funcs if f.is_cdef_class_method and f.kind == "cdef"}
    result: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, fn in cdefs.items():
            sites = calls.get(name, ())
            if fn.qualname in result or not sites:
                continue
            if all(c.receiver == "fresh" or (c.receiver == "self" and (
                    c.caller.name in LIFECYCLE or c.caller.qualname in result))
                   for c in sites):
                result.add(fn.qualname)
                changed = True
    return result


def cython_pointer_released(tree: CyNode, index: ModuleIndex, path_of: PathOf,
                            pxd: CyNode | None = None,
                            calls: dict[str, tuple[MethodCall, ...]] | None = None
                            ) -> Iterator[Hit]:
    locks = index.locks
    types = class_attr_types(tree, *((pxd,) if pxd is not None else ()))
    funcs = index.functions
    calls = calls if calls is not None else method_calls(funcs)
    making = _construction_only(funcs, calls)
    # A `cdef` method every caller of which holds a lock (review 24: questdb's
    # `PooledSender._release_locked()`, run only inside `with self._lock:`) releases under it.
    locked = called_only_locked({f.name for f in funcs if f.is_cdef_class_method
                                 and f.kind == "cdef"}, calls)
    one_thread = index.event_loop
    methods: dict[str, list[Function]] = {}
    for fn in funcs:
        if fn.is_cdef_class_method and fn.cls and fn.args and fn.name not in LIFECYCLE \
                and fn.cls not in one_thread and not locks_whole_function(fn):
            methods.setdefault(fn.cls, []).append(fn)
    for cls, fns in methods.items():
        pointers = {a for a, t in types.get(cls, {}).items() if t == "*"}
        if not pointers:
            continue
        for fn in fns:
            if fn.qualname in making or (fn.kind == "cdef" and fn.name in locked):
                continue
            seen: set[str] = set()
            for attr, node, frees in _releases(fn, pointers, locks, index.hand):
                if attr in seen:
                    continue
                seen.add(attr)
                # A user that runs only while the object is made cannot race with it.
                users = [(other, use) for other in fns
                         if other is not fn and other.qualname not in making
                         if (use := _uses(other, attr, locks, index.hand)) is not None]
                if not users:
                    continue
                notes = []
                for other, use in users[:_MAX_USERS]:
                    path = path_of(use.file)
                    if path is not None:
                        notes.append(Note(message=f"`{fn.args[0]}.{attr}` is used by "
                                                  f"`{other.qualname}`",
                                          location=Location(path=path, line=use.line,
                                                            column=use.col)))
                if len(users) > _MAX_USERS:
                    notes.append(Note(message=f"and by {len(users) - _MAX_USERS} more methods"))
                harm = ("a call running during the release uses freed memory" if frees else
                        "it is set to NULL, what it held not freed here: a call running "
                        "meanwhile can test it and then use NULL (a crash)")
                hit = hit_at(path_of, "FT102", node, f"{cls}.{attr}",
                             f"`{fn.qualname}` ({harm})", fn.qualname, tuple(notes))
                if hit is not None:
                    yield hit if frees else replace(hit, severity="warning")
