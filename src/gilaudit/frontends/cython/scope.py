"""Scopes of a Cython module tree: module-level declarations, functions and methods, which
functions run only at import time, what counts as holding a lock, and where a hit goes."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from gilaudit.frontends.contract import Hit
from gilaudit.frontends.cython.parse import CyNode
from gilaudit.model import Note

__all__ = [
    "ASSIGN_KINDS",
    "FUNCTION_KINDS",
    "LIFECYCLE",
    "PYTHON_TYPES",
    "Function",
    "HandLocks",
    "MethodCall",
    "ModuleIndex",
    "ModuleVar",
    "NameUse",
    "PathOf",
    "c_type_aliases",
    "called_only_locked",
    "callee",
    "class_attr_types",
    "class_properties",
    "declarator_info",
    "dotted",
    "functions",
    "hand_locks",
    "hit_at",
    "init_only",
    "is_lock_manager",
    "lock_names",
    "locks_whole_function",
    "method_calls",
    "module_vars",
    "name_uses",
    "resolved_type",
    "same_scope",
    "self_attr",
    "start_of",
    "struct_names",
    "walk_unlocked",
]

# Nodes that open a new scope: their bodies do not run where they are written.
FUNCTION_KINDS = frozenset({"DefNode", "CFuncDefNode", "LambdaNode"})
_SCOPE_KINDS = FUNCTION_KINDS | {
    "CClassDefNode", "PyClassDefNode", "PropertyNode", "CppClassNode",
    "CStructOrUnionDefNode", "CEnumDefNode", "CDefExternNode",
}
_LOCK_TYPES = frozenset({"pymutex", "pythread_type_lock", "PyMutex", "PyThread_type_lock",
                         "Lock", "RLock", "mutex"})
PYTHON_TYPES = frozenset({"object", "dict", "list", "set", "tuple", "str", "bytes",
                          "unicode", "frozenset", "bytearray"})


PathOf = Callable[[str], "str | None"]  # absolute path of a node's file -> root-relative


@dataclass(frozen=True, slots=True)
class ModuleVar:
    name: str
    line: int
    cdef: bool  # declared with `cdef` (not a plain Python global)
    c_indexed: bool  # a C array or pointer: element writes need no `global` and are races
    type_name: str
    file: str = ""  # where it is declared: an included .pxi, the module's .pxd, ...


@dataclass(frozen=True, slots=True)
class Function:
    node: CyNode
    name: str
    qualname: str
    kind: str  # def | cdef | cpdef | lambda
    cls: str | None  # the enclosing `cdef class`, for its methods
    is_cdef_class_method: bool
    decorators: tuple[str, ...]  # dotted names, e.g. "cython.critical_section"
    args: tuple[str, ...]
    nogil: bool  # `cdef ... nogil`: written to run without the GIL even on GIL builds


@dataclass(frozen=True, slots=True)
class HandLocks:
    """Locks taken and given back by hand, not by `with`: the lock names (lock_names) and the
    project's functions that return holding a lock (``takers``) or give one back
    (``givers``), such as scipy `_Qhull`'s `acquire_lock()`/`release_lock()`."""

    locks: frozenset[str] = frozenset()
    takers: frozenset[str] = frozenset()
    givers: frozenset[str] = frozenset()
    # id() of the function nodes that take a lock by hand somewhere: the only ones whose
    # blocks walk_unlocked has to follow statement by statement
    taking: frozenset[int] = frozenset()

    def takes(self, node: CyNode) -> bool:
        return _takes_by_hand(node, self.locks) or (
            bool(self.takers) and callee(node) in self.takers)

    def gives(self, node: CyNode) -> bool:
        return _gives_by_hand(node, self.locks) or (
            bool(self.givers) and callee(node) in self.givers)


def _held_statements(stats: Sequence[CyNode], hand: HandLocks) -> list[bool]:
    """For each statement of a block, whether a lock taken by hand by an earlier statement
    of the block is still held (not given back in between): `m.lock()` ... `m.unlock()`,
    `self._lock.acquire()` then `try: ... finally: self._lock.release()`."""
    out: list[bool] = []
    held = False
    for stmt in stats:
        out.append(held)
        nodes = (stmt, *same_scope(stmt))
        takes, gives = any(map(hand.takes, nodes)), any(map(hand.gives, nodes))
        if takes and not gives:
            held = True
        elif gives and not takes:
            held = False
    return out


def walk_unlocked(root: CyNode, locks: frozenset[str], *, nogil_exempt: bool = True,
                  hand: HandLocks | None = None) -> Iterator[tuple[CyNode, bool]]:
    """(node, exempt) for the nodes of root's own scope. Exempt: under a lock or critical
    section (`with`, or taken by hand, ``hand``, and not yet given back), or
    (``nogil_exempt``) in a `with nogil:` block: code that never had the GIL's protection, so
    free threading does not change it; a `with gil:` inside it holds the GIL again. FT102
    counts nogil code: a use there races with a release all the more."""
    if hand is not None and id(root) not in hand.taking:
        hand = None  # nothing to follow: the common case, walked as before
    stack: list[tuple[CyNode, bool, bool]] = [
        (c, False, False) for group in reversed(list(root.children.values()))
        for c in reversed(group)]
    while stack:
        node, locked, detached = stack.pop()
        yield node, locked or detached
        if node.kind in FUNCTION_KINDS or node.kind in ("CClassDefNode", "PyClassDefNode"):
            continue
        inner_locked = locked or (node.kind == "WithStatNode"
                                  and is_lock_manager(node.child("manager"), locks))
        inner_detached = detached
        if node.kind == "GILStatNode" and nogil_exempt:
            inner_detached = node.text("state") == "nogil"
        if hand is not None and node.kind == "StatListNode":
            for name, group in reversed(list(node.children.items())):
                held = _held_statements(group, hand) if name == "stats" else [False] * len(group)
                stack.extend((c, inner_locked or h, inner_detached)
                             for c, h in reversed(list(zip(group, held, strict=True))))
            continue
        for group in reversed(list(node.children.values())):
            stack.extend((c, inner_locked, inner_detached) for c in reversed(group))


def self_attr(node: CyNode | None, self_name: str) -> str:
    """`self.x` -> "x"; anything else -> ""."""
    if node is None or node.kind != "AttributeNode":
        return ""
    obj = node.child("obj")
    if obj is not None and obj.kind == "NameNode" and obj.text("name") == self_name:
        return node.text("attribute")
    return ""


def start_of(node: CyNode) -> CyNode:
    """Where an expression begins: `self.x` at `self`, not at the dot."""
    while node.kind in ("AttributeNode", "IndexNode"):
        inner = node.child("obj") or node.child("base")
        if inner is None:
            break
        node = inner
    return node


def hit_at(path_of: PathOf, rule: str, node: CyNode, symbol: str, where: str = "",
         function: str | None = None, notes: tuple[Note, ...] = ()) -> Hit | None:
    node = start_of(node)
    path = path_of(node.file)
    if path is None:
        return None
    return Hit(rule=rule, path=path, line=node.line, col=node.col, symbol=symbol, where=where,
               function=function, notes=notes)


def dotted(node: CyNode | None) -> str:
    if node is None:
        return ""
    if node.kind == "NameNode":
        return node.text("name")
    if node.kind == "AttributeNode":
        base = dotted(node.child("obj"))
        return f"{base}.{node.text('attribute')}" if base else node.text("attribute")
    if node.kind in ("SimpleCallNode", "GeneralCallNode"):
        return dotted(node.child("function"))
    return ""


def callee(node: CyNode) -> str:
    """The last name of a call's function (`cython.parallel.prange(...)` -> `prange`)."""
    if node.kind not in ("SimpleCallNode", "GeneralCallNode"):
        return ""
    return dotted(node.child("function")).rsplit(".", 1)[-1]


def declarator_info(decl: CyNode) -> tuple[str, set[str], CyNode | None]:
    """(name, kinds along the declarator chain, the name node) for `*p`, `a[3]`, `f(...)`."""
    kinds: set[str] = set()
    node: CyNode | None = decl
    while node is not None:
        kinds.add(node.kind)
        if node.kind == "CNameDeclaratorNode":
            return node.text("name"), kinds, node
        node = node.child("base")
    return "", kinds, None


def same_scope(node: CyNode) -> Iterator[CyNode]:
    """Descendants that run in the node's own scope (not inside nested functions/classes)."""
    stack = [c for group in reversed(list(node.children.values())) for c in reversed(group)]
    while stack:
        n = stack.pop()
        yield n
        if n.kind in _SCOPE_KINDS:
            continue
        for group in reversed(list(n.children.values())):
            stack.extend(reversed(group))


def _arg_names(fn: CyNode) -> tuple[str, ...]:
    holder = fn
    if fn.kind == "CFuncDefNode":
        holder = fn.child("declarator") or fn
        while holder.kind != "CFuncDeclaratorNode" and holder.child("base") is not None:
            holder = holder.child("base") or holder
    out = []
    for arg in holder.kids("args"):
        decl = arg.child("declarator")
        name = declarator_info(decl)[0] if decl is not None else ""
        if not name:
            # An untyped argument parses as a type name with an empty declarator.
            base = arg.child("base_type")
            name = base.text("name") if base is not None else ""
        out.append(name)
    return tuple(out)


def _is_nogil(fn: CyNode) -> bool:
    node = fn.child("declarator") if fn.kind == "CFuncDefNode" else None
    while node is not None:
        if node.kind == "CFuncDeclaratorNode":
            return bool(node.attrs.get("nogil"))
        node = node.child("base")
    return False


def _function_name(fn: CyNode) -> str:
    if fn.kind == "CFuncDefNode":
        decl = fn.child("declarator")
        return declarator_info(decl)[0] if decl is not None else ""
    return fn.text("name") or "<lambda>"


def functions(tree: CyNode) -> list[Function]:
    out: list[Function] = []

    def visit(node: CyNode, prefix: str, cls: str | None, in_cdef_class: bool) -> None:
        for child in same_scope(node):
            if child.kind in FUNCTION_KINDS:
                name = _function_name(child)
                qual = f"{prefix}{name}"
                kind = {"DefNode": "def", "LambdaNode": "lambda"}.get(child.kind) or (
                    "cpdef" if child.attrs.get("overridable") else "cdef")
                decorators = tuple(dotted(d.child("decorator")) for d in child.kids("decorators"))
                out.append(Function(node=child, name=name, qualname=qual, kind=kind, cls=cls,
                                    is_cdef_class_method=in_cdef_class,
                                    decorators=decorators, args=_arg_names(child),
                                    nogil=_is_nogil(child)))
                visit(child, f"{qual}.", None, in_cdef_class=False)
            elif child.kind == "CClassDefNode":
                name = child.text("class_name")
                visit(child, f"{prefix}{name}.", name, in_cdef_class=True)
            elif child.kind == "PyClassDefNode":
                visit(child, f"{prefix}{child.text('name')}.", None, in_cdef_class=False)
            elif child.kind == "PropertyNode":
                # `property x: def __get__(self)` inside a cdef class
                visit(child, f"{prefix}{child.text('name')}.", cls, in_cdef_class)

    visit(tree, "", None, in_cdef_class=False)
    return out


def module_vars(*trees: CyNode) -> dict[str, ModuleVar]:
    """Module-level `cdef` variables (from the .pyx and its .pxd) and Python globals."""
    out: dict[str, ModuleVar] = {}
    for tree in trees:
        for node in same_scope(tree):
            if node.kind == "CVarDefNode" and node.text("visibility") != "extern":
                base = node.child("base_type")
                type_name = base.text("name") if base is not None else ""
                for decl in node.kids("declarators"):
                    name, kinds, _ = declarator_info(decl)
                    if not name or "CFuncDeclaratorNode" in kinds:
                        continue  # a function prototype, not a variable
                    indexed = bool(kinds & {"CArrayDeclaratorNode", "CPtrDeclaratorNode"})
                    out[name] = ModuleVar(name=name, line=node.line, cdef=True,
                                          c_indexed=indexed and type_name not in PYTHON_TYPES,
                                          type_name=type_name, file=node.file)
            elif node.kind in ("SingleAssignmentNode", "CascadedAssignmentNode"):
                for target in (*node.kids("lhs"), *node.kids("lhs_list")):
                    name = target.text("name") if target.kind == "NameNode" else ""
                    if name and name not in out:
                        out[name] = ModuleVar(name=name, line=target.line, cdef=False,
                                              c_indexed=False, type_name="",
                                              file=target.file)
    return out


def class_properties(*trees: CyNode) -> dict[str, set[str]]:
    """`property x:` blocks and `@property def x` of each class: `self.x = ...` in a method
    runs the class's own code (line_profiler's `enable_count` keeps its value in a
    `threading.local`), not a store to an attribute of the object."""
    out: dict[str, set[str]] = {}
    for tree in trees:
        for node in tree.walk():
            if node.kind not in ("CClassDefNode", "PyClassDefNode"):
                continue
            names = out.setdefault(node.text("class_name") or node.text("name"), set())
            for stmt in same_scope(node):
                decorated = stmt.kind == "DefNode" and any(
                    dotted(d.child("decorator")).split(".")[-1] in (
                        "property", "setter", "getter", "cached_property")
                    for d in stmt.kids("decorators"))
                if stmt.kind == "PropertyNode" or decorated:
                    names.add(stmt.text("name"))
    return out


def class_attr_types(*trees: CyNode) -> dict[str, dict[str, str]]:
    """`cdef class C: cdef list items; cdef char *p` -> {"C": {"items": "list", "p": "*"}}
    (from .pyx and .pxd, with what each class inherits); "*" marks a C pointer or array."""
    own: dict[str, dict[str, str]] = {}
    bases: dict[str, list[str]] = {}
    for tree in trees:
        for node in tree.walk():
            if node.kind != "CClassDefNode":
                continue
            name = node.text("class_name")
            attrs = own.setdefault(name, {})
            for group in node.kids("bases"):
                bases.setdefault(name, []).extend(
                    dotted(b).rsplit(".", 1)[-1] for b in group.kids("args"))
            for stmt in same_scope(node):
                if stmt.kind != "CVarDefNode":
                    continue
                base = stmt.child("base_type")
                for decl in stmt.kids("declarators"):
                    attr, kinds, _ = declarator_info(decl)
                    if attr and base is not None and "CFuncDeclaratorNode" not in kinds:
                        pointer = kinds & {"CPtrDeclaratorNode", "CArrayDeclaratorNode"}
                        attrs[attr] = "*" if pointer else base.text("name")

    def resolved(name: str, seen: frozenset[str]) -> dict[str, str]:
        merged: dict[str, str] = {}
        for parent in bases.get(name, ()):
            if parent not in seen:
                merged.update(resolved(parent, seen | {parent}))
        merged.update(own.get(name, {}))
        return merged

    return {name: resolved(name, frozenset({name})) for name in own}


def c_type_aliases(*trees: CyNode) -> dict[str, str]:
    """`ctypedef char Boolean` -> {"Boolean": "char"}; "*" for a pointer typedef."""
    out: dict[str, str] = {}
    for tree in trees:
        for node in tree.walk():
            if node.kind != "CTypeDefNode":
                continue
            base, decl = node.child("base_type"), node.child("declarator")
            if base is None or decl is None:
                continue
            name, kinds, _ = declarator_info(decl)
            if name and base.text("name"):
                out[name] = "*" if kinds & {"CPtrDeclaratorNode", "CArrayDeclaratorNode"} \
                    else base.text("name")
    return out


def resolved_type(name: str, aliases: dict[str, str]) -> str:
    """What a ctypedef name stands for, through chains of them."""
    for _ in range(8):
        if name not in aliases or aliases[name] == name:
            break
        name = aliases[name]
    return name


def struct_names(*trees: CyNode) -> frozenset[str]:
    """C structs and unions the trees declare (`ctypedef struct CGRect: ...`, `cdef struct
    point`), by the name Cython code types attributes with."""
    return frozenset(node.text("name") for tree in trees for node in tree.walk()
                     if node.kind == "CStructOrUnionDefNode" and node.text("name"))


# asyncio's protocol bases: transports and protocols are not thread-safe by contract, and the
# event loop calls a protocol's methods from its own thread only.
_ASYNCIO_PROTOCOLS = frozenset({"BaseProtocol", "Protocol", "BufferedProtocol",
                                "DatagramProtocol", "SubprocessProtocol"})


def event_loop_classes(nodes: Iterable[CyNode]) -> frozenset[str]:
    """`cdef class P(asyncio.BufferedProtocol)` and its subclasses in the module (``nodes``:
    all of its nodes): the event loop that owns an instance is the only thread that runs its
    methods (pycapnp)."""
    bases: dict[str, list[str]] = {}
    for node in nodes:
        if node.kind in ("CClassDefNode", "PyClassDefNode"):
            name = node.text("class_name") or node.text("name")
            for group in node.kids("bases"):
                bases.setdefault(name, []).extend(dotted(b) for b in group.kids("args"))
    bound = {name for name, parents in bases.items()
             if any(p.rsplit(".", 1)[-1] in _ASYNCIO_PROTOCOLS
                    and (p.startswith("asyncio.") or "." not in p) for p in parents)}
    changed = True
    while changed:
        changed = False
        for name, parents in bases.items():
            if name not in bound and any(p.rsplit(".", 1)[-1] in bound for p in parents):
                bound.add(name)
                changed = True
    return frozenset(bound)


_C_SCALARS = frozenset({"int", "long", "short", "char", "bint", "float", "double", "size_t",
                        "Py_ssize_t", "Py_hash_t", "Py_UCS4", "Py_UNICODE", "*"})


def is_c_value(type_name: str) -> bool:
    """A C number, flag or pointer: racing on it loses updates but frees no object."""
    return type_name in _C_SCALARS or type_name.endswith("_t")


def lock_names(nodes: Iterable[CyNode]) -> frozenset[str]:
    """Names (variables and attributes) declared with a lock type: `cdef cython.pymutex m`."""
    names: set[str] = set()
    for node in nodes:
        if node.kind != "CVarDefNode":
            continue
        base = node.child("base_type")
        if base is None or base.text("name") not in _LOCK_TYPES:
            continue
        for decl in node.kids("declarators"):
            name = declarator_info(decl)[0]
            if name:
                names.add(name)
    return frozenset(names)


def _lockish(name: str, locks: frozenset[str]) -> bool:
    last = name.rsplit(".", 1)[-1]
    low = last.lower()
    return last in locks or "lock" in low or "mutex" in low


def is_lock_manager(manager: CyNode | None, locks: frozenset[str]) -> bool:
    """`with cython.critical_section(x):`, `with self._lock:`, `with m:` (a pymutex)."""
    if manager is None:
        return False
    if manager.kind in ("SimpleCallNode", "GeneralCallNode"):
        name = callee(manager)
        return name == "critical_section" or _lockish(name, locks)
    if manager.kind in ("NameNode", "AttributeNode"):
        return _lockish(dotted(manager), locks)
    return False


_TAKES = frozenset({"PyMutex_Lock", "PyThread_acquire_lock", "PyThread_acquire_lock_timed",
                    "pthread_mutex_lock", "EnterCriticalSection", "AcquireSRWLockExclusive",
                    "SDL_LockMutex", "uv_mutex_lock", "mtx_lock"})
_GIVES = frozenset({"PyMutex_Unlock", "PyThread_release_lock", "pthread_mutex_unlock",
                    "LeaveCriticalSection", "ReleaseSRWLockExclusive", "SDL_UnlockMutex",
                    "uv_mutex_unlock", "mtx_unlock"})


def _takes_by_hand(node: CyNode, locks: frozenset[str]) -> bool:
    """`PyMutex_Lock(&m)`, `self._lock.acquire()`, a C++ or wrapped mutex's `m.lock()`
    (ffpyplayer's `_log_mutex.lock()`, review 20)."""
    name = callee(node)
    return name in _TAKES or (name in ("acquire", "lock") and _lockish(
        dotted(node.child("function")).rsplit(".", 1)[0], locks))


def _gives_by_hand(node: CyNode, locks: frozenset[str]) -> bool:
    name = callee(node)
    return name in _GIVES or (name in ("release", "unlock") and _lockish(
        dotted(node.child("function")).rsplit(".", 1)[0], locks))


def locks_whole_function(fn: Function) -> bool:
    """Decorated `@cython.critical_section`. A lock taken by hand covers the statements up
    to its release (walk_unlocked with HandLocks), not the whole function: ffpyplayer's
    `stream_component_close` holds `audio_mutex` for a few lines and releases its streams
    outside them (review 20)."""
    return any(d.rsplit(".", 1)[-1] == "critical_section" for d in fn.decorators)


def hand_locks(funcs: Iterable[Function], locks: frozenset[str]) -> HandLocks:
    """The lock names, and the functions that take a lock by hand and return holding it, for
    their callers to give back (scipy `_Qhull`: `cdef void acquire_lock(self)` around
    `PyThread_acquire_lock`, paired with a `release_lock()`), and those that give one back
    without taking it: calling one takes or gives as much as the call it wraps."""
    takers: set[str] = set()
    givers: set[str] = set()
    calls: dict[int, set[str]] = {}  # function node -> the names it calls
    taking: set[int] = set()
    for fn in funcs:
        took = gave = False
        names: set[str] = set()
        for n in same_scope(fn.node):
            if n.kind not in ("SimpleCallNode", "GeneralCallNode"):
                continue
            names.add(callee(n))
            took = took or _takes_by_hand(n, locks)
            gave = gave or _gives_by_hand(n, locks)
        calls[id(fn.node)] = names
        if took:
            taking.add(id(fn.node))
        if took and not gave:
            takers.add(fn.name)
        elif gave and not took:
            givers.add(fn.name)
    taking |= {node for node, names in calls.items() if names & takers}
    return HandLocks(locks, frozenset(takers), frozenset(givers), frozenset(taking))


# A function named for setting the module up, which its own top level calls (`FAST_VERSION =
# init()`): the name says nobody is meant to call it again.
_SETUP_NAME = re.compile(r"(?i)(?:^|_)(?:init|initiali[sz]e|setup|bootstrap)(?:_|$)")


class PythonCalls(Protocol):
    """What the project's `.py` files say of a name (import_time.ImportTimeCalls)."""

    def only_at_import(self, name: str) -> bool: ...

    def called_later(self, name: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class NameUse:
    """One use of a module-level function's name."""

    owner: str | None  # None: the module's top level; a top-level function; "<method C.m>"
    called: bool  # called there, not handed on as a value
    locked: bool  # under a lock or critical section (walk_unlocked)


def name_uses(tree: CyNode, funcs: Sequence[Function], names: Iterable[str],
              locks: frozenset[str] | None = None, hand: HandLocks | None = None
              ) -> dict[str, list[NameUse]]:
    """Every use of the module-level ``names`` in the module, by whom, whether a call, and
    whether under a lock: what init_only and FT094's locked helpers ask. Without ``locks``
    nothing counts as locked, and the plain walk (same_scope) is enough."""
    uses: dict[str, list[NameUse]] = {name: [] for name in names}
    top = {f.name for f in funcs if "." not in f.qualname}
    walks: list[tuple[str | None, CyNode, HandLocks | None]] = [(None, tree, None)]
    for f in funcs:
        top_owner = f.qualname.split(".", 1)[0]
        if f.cls is None and top_owner in top:
            walks.append((top_owner, f.node, hand))
        elif f.cls is not None:
            walks.append((f"<method {f.qualname}>", f.node, hand))
    for owner, root, walk_hand in walks:
        called: set[int] = set()  # the name nodes of calls, already counted as calls
        walk = ((n, False) for n in same_scope(root)) if locks is None else \
            walk_unlocked(root, locks, nogil_exempt=False, hand=walk_hand)
        for node, locked in walk:
            if node.kind in ("SimpleCallNode", "GeneralCallNode"):
                fn = node.child("function")
                if fn is not None and fn.kind == "NameNode" and fn.text("name") in uses:
                    uses[fn.text("name")].append(NameUse(owner, True, locked))
                    called.add(id(fn))
            elif node.kind == "NameNode" and node.text("name") in uses and \
                    id(node) not in called:
                uses[node.text("name")].append(NameUse(owner, False, locked))
    return uses


def _registered_at_exit(tree: CyNode) -> set[str]:
    """Names the module's top level hands to `atexit.register` (or `_atexit.register`)."""
    out: set[str] = set()
    for node in same_scope(tree):
        if node.kind in ("SimpleCallNode", "GeneralCallNode"):
            base, _, attr = dotted(node.child("function")).rpartition(".")
            if attr == "register" and "atexit" in base:
                out.update(a.text("name") for a in node.kids("args") if a.kind == "NameNode")
    return out


def init_only(tree: CyNode, funcs: Sequence[Function],
              python: PythonCalls | None = None) -> frozenset[str]:
    """Module-level functions that only import-time code calls: `cdef` functions (and
    private `_name` defs) whose every use is a call from module-level code or from another
    such function. Writes there happen once, under the import lock. With ``python`` (what the
    project's Python code does with a name), a function nothing in the module calls at run
    time is one too, whatever its kind, when the Python code calls it only while importing
    (`init_base_impl()` that the package's `__init__.py` calls once), or when the module's
    own top level calls it, its name says it sets the module up, and no Python code calls it
    later (gensim's `FAST_VERSION = init()`)."""
    top = {f.name: f for f in funcs if "." not in f.qualname}
    uses = name_uses(tree, funcs, top)
    at_exit = _registered_at_exit(tree)
    candidates = {name for name, f in top.items()
                  if f.kind == "cdef" or (f.kind == "def" and name.startswith("_")
                                          and not name.startswith("__"))}
    # A private function the module only registers to run at interpreter exit, and calls
    # nowhere: it runs once, when the program ends (review 21: nng's `_nng_fini`).
    result: set[str] = {name for name in candidates & at_exit
                        if [u.called for u in uses[name]] == [False]}
    changed = True
    while changed:
        changed = False
        for name in candidates - result:
            calls = [u.owner for u in uses[name] if u.called]
            if not calls or len(calls) < len(uses[name]):
                continue  # passed around as a value somewhere
            if all(o is None or o in result for o in calls):
                result.add(name)
                changed = True
        if python is None or changed:
            continue
        for name in sorted(set(top) - result):
            calls = [u.owner for u in uses[name] if u.called]
            if len(calls) < len(uses[name]) or not all(o is None or o in result for o in calls):
                continue
            if python.only_at_import(name) or (calls and _SETUP_NAME.search(name)
                                               and not python.called_later(name)):
                result.add(name)
                changed = True
    return frozenset(result)


@dataclass(frozen=True, slots=True)
class MethodCall:
    """One `x.m(...)` call in the project's Cython code."""

    caller: Function
    receiver: str  # "self" (the caller's own object), "fresh" (one it has just made) or ""
    locked: bool  # under a lock or critical section, or in a method that locks itself


@dataclass(frozen=True, slots=True)
class Makers:
    """What makes a new object when called: the project's classes and the functions that
    return one they have just made (Sage's `cdef _new_c(self, ...)`: `f = t.__new__(t)` ...
    `return f`), by name (`Foo(...)`, `_new(...)`) and as methods (`self._new_c(...)`)."""

    names: frozenset[str] = frozenset()
    methods: frozenset[str] = frozenset()

    def within(self, fn: Function) -> Makers:
        """In a classmethod, its class argument makes one too (`img = cls()`: wxPython's
        `SVGimageBase.CreateFromFile`)."""
        if fn.args and any(d.rsplit(".", 1)[-1] == "classmethod" for d in fn.decorators):
            return replace(self, names=self.names | {fn.args[0]})
        return self

    def makes(self, node: CyNode | None) -> bool:
        called = node.child("function") if node is not None and node.kind in (
            "SimpleCallNode", "GeneralCallNode") else None
        if called is None:
            return False
        if called.kind == "NameNode":
            return called.text("name") in self.names
        if called.kind == "AttributeNode":
            # `T.__new__(T)` and `self.__class__()`: a new object of the caller's own class
            return called.text("attribute") in ("__new__", "__class__") or (
                called.text("attribute") in self.methods)
        # `type(self)()`
        return (called.kind in ("SimpleCallNode", "GeneralCallNode")
                and (inner := called.child("function")) is not None
                and inner.kind == "NameNode" and inner.text("name") == "type")


@dataclass(frozen=True, slots=True)
class _Bindings:
    """What a function assigns to its plain names, what it returns, and the names it stores
    somewhere other than a plain name (into a cache, a field, a global container)."""

    pairs: tuple[tuple[str, CyNode | None], ...]
    returns: tuple[CyNode | None, ...]
    stored: frozenset[str]


def _bindings(fn: Function) -> _Bindings:
    pairs: list[tuple[str, CyNode | None]] = []
    returns: list[CyNode | None] = []
    stored: set[str] = set()
    for node in same_scope(fn.node):
        if node.kind == "SingleAssignmentNode":
            lhs, rhs = node.child("lhs"), node.child("rhs")
            if lhs is not None and lhs.kind == "NameNode":
                pairs.append((lhs.text("name"), rhs))
            elif rhs is not None and rhs.kind == "NameNode":
                stored.add(rhs.text("name"))
        elif node.kind == "CVarDefNode":
            pairs += [(declarator_info(d)[0], d.child("default"))
                      for d in node.kids("declarators")]
        elif node.kind == "ReturnStatNode":
            returns.append(node.child("value"))
    return _Bindings(tuple(pairs), tuple(returns), frozenset(stored))


def _fresh(b: _Bindings, makers: Makers) -> set[str]:
    """Locals assigned an object the function has just made: `entry = _LogEntry.__new__(
    _LogEntry)`, `m = Matcher(tags)` or `cdef Masks m = Masks()` (a class of the project),
    `img = cls()` in a classmethod, `f = self._new_c(...)`."""
    return {name for name, rhs in b.pairs if name and makers.makes(rhs)}


def _project_makers(funcs: Sequence[Function], binds: dict[int, _Bindings]) -> Makers:
    """The project's classes, and its functions every `return` of which hands back an object
    the function has just made and kept nowhere else, found to a fixed point (a maker may
    call a maker). A name counts only if every function of that name is a maker.
    ``binds``: each function's _bindings, by id."""
    classes = frozenset(f.cls for f in funcs if f.cls)
    by_name: dict[str, list[Function]] = {}
    for f in funcs:
        by_name.setdefault(f.name, []).append(f)
    found: set[int] = set()
    makers = Makers(classes)
    changed = True
    while changed:
        changed = False
        for f in funcs:
            b = binds[id(f)]
            if id(f) in found or not b.returns:
                continue
            mine = makers.within(f)
            fresh = _fresh(b, mine) - b.stored
            if all(mine.makes(r) or (r is not None and r.kind == "NameNode"
                                     and r.text("name") in fresh) for r in b.returns):
                found.add(id(f))
                changed = True
        names = frozenset(n for n, fs in by_name.items() if all(id(f) in found for f in fs))
        makers = Makers(classes | {n for n in names
                                   if any(f.cls is None for f in by_name[n])},
                        frozenset(n for n in names if any(f.cls for f in by_name[n])))
    return makers


def method_calls(funcs: Sequence[Function]) -> dict[str, tuple[MethodCall, ...]]:
    """Every `x.m(...)` of these functions (the whole project's), by method name: worked out
    once per project, since each module's rules ask where its `cdef` methods are called."""
    binds = {id(f): _bindings(f) for f in funcs}
    makers = _project_makers(funcs, binds)
    hand = hand_locks(funcs, frozenset())
    out: dict[str, list[MethodCall]] = {}
    for g in funcs:
        mine = makers.within(g)
        fresh = _fresh(binds[id(g)], mine)
        whole = locks_whole_function(g)
        for node, locked in walk_unlocked(g.node, frozenset(), nogil_exempt=False, hand=hand):
            called = node.child("function") if node.kind in (
                "SimpleCallNode", "GeneralCallNode") else None
            if called is None or called.kind != "AttributeNode":
                continue
            obj = called.child("obj")
            recv = obj.text("name") if obj is not None and obj.kind == "NameNode" else ""
            # `CyCbcNode().setCppSelf(x)`: called on what the call has just made
            how = "fresh" if recv in fresh or mine.makes(obj) else (
                "self" if g.args and recv == g.args[0] and g.cls else "")
            out.setdefault(called.text("attribute"), []).append(
                MethodCall(g, how, locked or whole))
    return {name: tuple(sites) for name, sites in out.items()}


def called_only_locked(names: Iterable[str], calls: dict[str, tuple[MethodCall, ...]]
                       ) -> frozenset[str]:
    """Of the given `cdef` method names, those called somewhere and always under a lock or
    critical section, or from a method that locks itself: ddtrace's
    `MsgpackStringTable.rollback`, whose one caller runs it inside `with self._lock:`.
    A `cdef` method is not Python-callable, so its callers are all in the project."""
    return frozenset(name for name in names
                     if (sites := calls.get(name)) and all(map(_unshared, sites)))


def _unshared(c: MethodCall) -> bool:
    """A call no other thread can overlap: under a lock, on an object the caller has just
    made, or on its own object while making it (randomgen's `__init__` calling
    `self._setup_rng_state()`, which its other caller runs under `with self.lock`)."""
    return c.locked or c.receiver == "fresh" or (
        c.receiver == "self" and c.caller.name in LIFECYCLE)


# Calls that hand an asyncio event loop a function to run on its own thread.
_LOOP_SCHEDULERS = frozenset({"add_done_callback", "call_soon", "call_soon_threadsafe",
                              "call_later", "call_at"})
# Run while the object is made or unmade (or unpickled into a new one): nobody shares it yet.
LIFECYCLE = frozenset({"__cinit__", "__init__", "__dealloc__", "__del__", "__setstate__"})
ASSIGN_KINDS = ("SingleAssignmentNode", "CascadedAssignmentNode", "InPlaceAssignmentNode")


def _writes_self(fn: Function) -> bool:
    self_name = fn.args[0]
    return any(self_attr(t, self_name) for n in same_scope(fn.node) if n.kind in ASSIGN_KINDS
               for t in (*n.kids("lhs"), *n.kids("lhs_list")))


def loop_confined_classes(nodes: Iterable[CyNode], funcs: Sequence[Function]
                          ) -> frozenset[str]:
    """Classes whose every method that changes `self` runs on an asyncio event loop: a
    coroutine (`async def`), a method the class hands the loop as a callback
    (`fut.add_done_callback(self._done)`, `loop.call_soon(self._tick)`), or, in a private
    class (`_Limiter`: not the module's API), a method that only such code calls. An asyncio
    object belongs to one loop, and a loop runs on one thread (review 15: grpcio's
    `_ConcurrentRpcLimiter`, counted up in the server's main-loop coroutine and down in a
    done-callback)."""
    owner: dict[int, Function] = {}
    for fn in funcs:
        for n in same_scope(fn.node):
            owner[id(n)] = fn
    methods = [f for f in funcs if f.cls is not None and f.args]
    bound = {(f.cls, f.name) for f in methods if f.node.attrs.get("is_async_def")}
    handed: set[int] = set()  # the `self.m` arguments of scheduling calls
    callers: dict[str, list[Function | None]] = {}  # method name -> its call sites' functions
    called: set[int] = set()
    for n in nodes:
        if n.kind not in ("SimpleCallNode", "GeneralCallNode"):
            continue
        function = n.child("function")
        if function is not None and function.kind == "AttributeNode":
            callers.setdefault(function.text("attribute"), []).append(owner.get(id(n)))
            called.add(id(function))
        scheduler = owner.get(id(n)) if callee(n) in _LOOP_SCHEDULERS else None
        if scheduler is not None and scheduler.args:
            for arg in n.kids("args"):
                attr = self_attr(arg, scheduler.args[0])
                if attr:
                    bound.add((scheduler.cls, attr))
                    handed.add(id(arg))
    # A bound method taken as a value (given to a thread, stored) may run anywhere.
    escaped = {n.text("attribute") for n in nodes if n.kind == "AttributeNode"
               and id(n) not in called and id(n) not in handed}

    def on_loop(fn: Function | None) -> bool:
        return fn is not None and (bool(fn.node.attrs.get("is_async_def"))
                                   or (fn.cls, fn.name) in bound)

    changed = True
    while changed:
        changed = False
        for f in methods:
            if (f.cls, f.name) in bound or not (f.cls or "").startswith("_") \
                    or f.name in escaped:
                continue
            sites = callers.get(f.name, [])
            if sites and all(on_loop(s) for s in sites):
                bound.add((f.cls, f.name))
                changed = True
    writers: dict[str, list[Function]] = {}
    for f in methods:
        if f.name not in LIFECYCLE and _writes_self(f):
            writers.setdefault(f.cls or "", []).append(f)
    return frozenset(cls for cls, fns in writers.items()
                     if all((f.cls, f.name) in bound for f in fns))


@dataclass(frozen=True, slots=True)
class ModuleIndex:
    """What several rules ask of one module tree, worked out once: each rule walked the whole
    tree and listed its functions again."""

    nodes: tuple[CyNode, ...]  # every node, in walk order
    functions: tuple[Function, ...]
    locks: frozenset[str]  # lock_names
    # event_loop_classes and loop_confined_classes: one thread runs their methods
    event_loop: frozenset[str]
    hand: HandLocks = HandLocks()  # hand_locks

    @classmethod
    def of(cls, tree: CyNode) -> ModuleIndex:
        nodes = tuple(tree.walk())
        funcs = tuple(functions(tree))
        # A method named `__name` (no trailing `__`) is private to its class, which must call
        # it as `self.__name`: one the module never names is dead code (review 24:
        # dearcygui's misspelt destructor `def __dealloc(self)`).
        private = {f.name for f in funcs if f.cls and f.name.startswith("__")
                   and not f.name.endswith("__")}
        if private:
            named = {n.text("attribute") for n in nodes if n.kind == "AttributeNode"}
            funcs = tuple(f for f in funcs
                          if not (f.cls and f.name in private and f.name not in named))
        locks = lock_names(nodes)
        return cls(nodes=nodes, functions=funcs, locks=locks,
                   event_loop=event_loop_classes(nodes) | loop_confined_classes(nodes, funcs),
                   hand=hand_locks(funcs, locks))
