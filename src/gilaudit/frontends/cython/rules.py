"""The Cython code rules (FT093-FT096; FT100/FT101 live in ``capi``, FT102 in ``released``):
one function per rule, from a parsed module tree to hits. Positions are the tree's own, so
code pulled in by `include` is reported in the file it was written in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from gilaudit.frontends.contract import Hit
from gilaudit.frontends.cython.capi import (
    cython_borrowed_cimports,
    cython_raw_pythread_lock,
    cython_removed_api,
)
from gilaudit.frontends.cython.parse import CyNode
from gilaudit.frontends.cython.released import cython_pointer_released
from gilaudit.frontends.cython.scope import (
    ASSIGN_KINDS,
    FUNCTION_KINDS,
    PYTHON_TYPES,
    Function,
    MethodCall,
    ModuleIndex,
    ModuleVar,
    PathOf,
    PythonCalls,
    c_type_aliases,
    called_only_locked,
    callee,
    class_attr_types,
    class_properties,
    declarator_info,
    dotted,
    hit_at,
    init_only,
    is_c_value,
    is_lock_manager,
    locks_whole_function,
    method_calls,
    module_vars,
    name_uses,
    resolved_type,
    same_scope,
    self_attr,
    struct_names,
    walk_unlocked,
)
from gilaudit.model import Location, Note

__all__ = [
    "CODE_RULES", "ModuleTrees", "check_tree", "cython_cdef_attr_unlocked",
    "cython_cdef_global_mutation", "cython_lazy_attr_init", "cython_with_gil_in_prange",
]

CODE_RULES = frozenset({"FT048", "FT093", "FT094", "FT095", "FT096", "FT100", "FT101", "FT102",
                        "FT145"})
# Creation and destruction: the object is not shared with another thread while they run.
# `__next__`: an iterator shared between threads is unsupported even in pure Python (the
# C-level FT074 concern), so stepping one is not reported as an attribute race here.
_NOT_SHARED = frozenset({"__cinit__", "__init__", "__dealloc__", "__del__", "__setstate__",
                         "__setstate_cython__", "__reduce_cython__", "__next__"})
_CONSTANTS = frozenset({"IntNode", "BoolNode", "NoneNode", "NullNode", "FloatNode",
                        "CharNode", "UnicodeNode", "StringNode", "BytesNode"})
_NONE_LIKE = ("NoneNode", "NullNode")


@dataclass(frozen=True, slots=True)
class ModuleTrees:
    tree: CyNode  # the module (.pyx with its includes, or a standalone .pxd/.pxi)
    pxd: CyNode | None  # the module's own .pxd, for the cdef globals it declares
    module: str  # dotted name, for messages
    # What the project's Python code does with a name: call it only while importing, or
    # later (import_time.ImportTimeCalls); None when nobody asked.
    python: PythonCalls | None = None
    # The project's other .pxd trees: the cdef classes a class here may inherit from.
    shared_pxds: tuple[CyNode, ...] = ()
    # The project's `x.m(...)` calls, every module's (scope.method_calls): where this
    # module's `cdef` methods are called from; None: this module's own only
    method_calls: dict[str, tuple[MethodCall, ...]] | None = None


def _targets(stmt: CyNode) -> tuple[CyNode, ...]:
    return (*stmt.kids("lhs"), *stmt.kids("lhs_list"))


def _walk(node: CyNode | None) -> list[CyNode]:
    return node.walk() if node is not None else []


def _mentions(node: CyNode | None, pred: Callable[[CyNode], bool]) -> bool:
    return any(pred(n) for n in _walk(node))


# FT093 -------------------------------------------------------------------------------------


def _only_raises(body: CyNode | None) -> bool:
    """`with gil: raise ...` (and `PyErr_CheckSignals()`) only touches per-thread state."""
    if body is None:
        return True
    stats = body.kids("stats") if body.kind == "StatListNode" else (body,)
    for s in stats:
        if s.kind in ("RaiseStatNode", "PassStatNode"):
            continue
        if s.kind == "ExprStatNode":
            expr = s.child("expr")
            if expr is not None and callee(expr).startswith("PyErr_"):
                continue
        return False
    return True


def cython_with_gil_in_prange(tree: CyNode, index: ModuleIndex, path_of: PathOf
                              ) -> Iterator[Hit]:
    names = {id(f.node): f.qualname for f in index.functions}

    def visit(node: CyNode, region: str, fn: str | None) -> Iterator[Hit]:
        for child in (c for group in node.children.values() for c in group):
            here, inner_fn = region, fn
            if child.kind in FUNCTION_KINDS:
                here = ""  # a nested function runs wherever it is called
                inner_fn = names.get(id(child), fn)
            elif child.kind == "ForInStatNode":
                seq = child.child("iterator")
                seq = seq.child("sequence") if seq is not None else None
                if seq is not None and callee(seq) == "prange":
                    here = "a `prange` loop"
            elif child.kind == "WithStatNode":
                manager = child.child("manager")
                if manager is not None and callee(manager) == "parallel":
                    here = "a `parallel()` block"
            elif child.kind == "GILStatNode" and child.text("state") == "gil" and region \
                    and not _only_raises(child.child("body")):
                hit = hit_at(path_of, "FT093", child, "with gil", region, fn)
                if hit is not None:
                    yield hit
            yield from visit(child, here, inner_fn)

    yield from visit(tree, "", None)


# FT094 -------------------------------------------------------------------------------------


def _local_names(fn: Function) -> set[str]:
    names = set(fn.args)
    for node in same_scope(fn.node):
        if node.kind == "CVarDefNode":
            for decl in node.kids("declarators"):
                names.add(declarator_info(decl)[0])
    return names


def _global_names(fn: Function) -> set[str]:
    out: set[str] = set()
    for node in same_scope(fn.node):
        if node.kind == "GlobalNode":
            out.update(n for n in node.attrs.get("names", ()) if isinstance(n, str))
    return out


# Calls whose result is an object that exists anyway (a type, a module, a singleton bool)
_NOT_FRESH_CALLS = frozenset({"type", "getattr", "hasattr", "isinstance", "issubclass",
                              "callable", "bool", "__import__", "import_module"})
# Values that are objects which exist anyway, or singletons
_NOT_FRESH_KINDS = frozenset({"NameNode", "AttributeNode", "BoolNode", "NoneNode",
                              "PrimaryCmpNode", "NotNode", "BoolBinopNode", "IntNode",
                              "UnicodeNode", "StringNode", "BytesNode"})


def _existing_object(value: CyNode | None) -> bool:
    """A value that is no object made here: a module or a class looked up (`pandas.NA`,
    `polars.DataFrame`, `type(numpy.dtype('int8'))`), a truth value, a constant, `()`. Storing
    it over another such value frees nothing: the module or the class keeps it alive."""
    if value is None:
        return False
    if value.kind in _NOT_FRESH_KINDS:
        return True
    if value.kind == "TupleNode":
        return not value.kids("args")
    if value.kind in ("SimpleCallNode", "GeneralCallNode"):
        called = value.child("function")
        return called is not None and dotted(called).rsplit(".", 1)[-1] in _NOT_FRESH_CALLS
    return False


def _guarded(fn: Function, names: set[str], before_line: int) -> bool:
    """An `if` on one of ``names`` before the line: a lazy initialisation behind a test of the
    variable itself (`if _x is None: _x = ...`) or of a flag the function sets (`if not
    _ready: ...; _ready = True`)."""
    for node in same_scope(fn.node):
        if node.kind == "IfClauseNode" and node.line <= before_line and _mentions(
                node.child("condition"),
                lambda n: n.kind == "NameNode" and n.text("name") in names):
            return True
    return False


def _global_write(stmt: CyNode, target: CyNode, name: str, var: ModuleVar | None, fn: Function,
                  aliases: dict[str, str], declared: set[str] | None = None) -> str:
    """Why writing module-level `name` here is a race, or "" when it is not one.
    ``aliases``: the module's ctypedefs (snappy's `ctypedef char Boolean`, review 20).
    ``declared``: the function's `global` names (a flag it tests and sets)."""
    rmw = stmt.kind == "InPlaceAssignmentNode" or _mentions(
        stmt.child("rhs"), lambda n: n.kind == "NameNode" and n.text("name") == name)
    if var is not None and var.cdef:
        if not rmw and not var.c_indexed and is_c_value(resolved_type(var.type_name, aliases)):
            return "store"
        # A lazy cache of an object that exists anyway (reviews 22 and 24: questdb's
        # `_PANDAS_NA = pandas.NA`, `_NUMPY_INT8 = type(numpy.dtype('int8'))` behind a
        # ready flag): racing first calls store the same object over None, and the reference
        # each store drops is never the last one.
        if not rmw and _existing_object(stmt.child("rhs")) and _guarded(
                fn, {name} | (declared or set()), target.line):
            return "cached"
        return "cdef"
    if rmw:
        return "read-modify-write"
    if _guarded(fn, {name}, target.line):
        return "check-then-act"
    return ""


def cython_cdef_global_mutation(trees: ModuleTrees, index: ModuleIndex, path_of: PathOf
                                ) -> Iterator[Hit]:
    tree = trees.tree
    funcs = index.functions
    hits = list(_global_mutations(trees, path_of, index, init_only(tree, funcs)))
    if hits and trees.python is not None:
        # Asking the project's Python files costs reading them: only when there is a finding.
        once = init_only(tree, funcs, trees.python)
        hits = [h for h in hits if (h.function or "").split(".", 1)[0] not in once
                or "." in (h.function or "")]
    if hits:
        guarded = _called_only_locked(trees, index, {h.function or "" for h in hits})
        hits = [h for h in hits if (h.function or "") not in guarded]
    yield from hits


def _called_only_locked(trees: ModuleTrees, index: ModuleIndex, wanted: set[str]
                        ) -> frozenset[str]:
    """Module-level `cdef` functions every call of which is under a lock, or in another such
    function (review 21: nng's `_start_DISPATCH_THREAD`, called only inside `with
    _nng_init_lock:`). Not one the module's .pxd declares: another module can cimport it.
    ``wanted``: the functions asked about; none of them such a function, nothing is walked."""
    exported = {declarator_info(d)[0] for node in (trees.pxd.walk() if trees.pxd else ())
                if node.kind == "CVarDefNode" for d in node.kids("declarators")}
    top = {f.name for f in index.functions
           if f.cls is None and "." not in f.qualname and f.kind == "cdef"} - exported
    if not top & wanted:
        return frozenset()
    uses = name_uses(trees.tree, index.functions, top, index.locks, index.hand)
    result: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name in top - result:
            if uses[name] and all(u.called and (u.locked or u.owner in result)
                                  for u in uses[name]):
                result.add(name)
                changed = True
    return frozenset(result)


def _global_mutations(trees: ModuleTrees, path_of: PathOf, index: ModuleIndex,
                      once: frozenset[str]) -> Iterator[Hit]:
    tree = trees.tree
    module = module_vars(tree, *((trees.pxd,) if trees.pxd is not None else ()))
    # Only a type that is neither a known C value nor a Python type can be a ctypedef of one.
    aliases = c_type_aliases(*trees.shared_pxds,
                             *((trees.pxd,) if trees.pxd is not None else ()), tree) if any(
        v.cdef and v.type_name and not is_c_value(v.type_name)
        and v.type_name not in PYTHON_TYPES for v in module.values()) else {}
    locks = index.locks
    for fn in index.functions:
        if fn.qualname.split(".", 1)[0] in once and fn.cls is None:
            continue
        if fn.nogil or locks_whole_function(fn):
            continue
        declared = _global_names(fn)
        local = _local_names(fn) - declared
        seen: set[str] = set()
        cached: set[str] = set()
        for stmt, locked in walk_unlocked(fn.node, locks, hand=index.hand):
            if locked or stmt.kind not in ASSIGN_KINDS:
                continue
            for target in _targets(stmt):
                name, why = "", ""
                if target.kind == "NameNode" and target.text("name") in declared:
                    name = target.text("name")
                    why = _global_write(stmt, target, name, module.get(name), fn, aliases,
                                        declared)
                elif target.kind == "IndexNode":
                    base = target.child("base")
                    var = module.get(base.text("name")) if base is not None \
                        and base.kind == "NameNode" else None
                    if var is not None and var.c_indexed and var.name not in local:
                        name, why = var.name, "element"
                if not why or name in seen or (why == "cached" and name in cached):
                    continue
                # (a cache's store leaves room for a later store of a new object to report)
                (cached if why == "cached" else seen).add(name)
                var = module.get(name)
                declared_in = path_of(var.file or tree.file) if var is not None else None
                notes = (Note(message=f"`{name}` is declared at module level here",
                              location=Location(path=declared_in, line=var.line)),
                         ) if var is not None and var.cdef and declared_in else ()
                hit = hit_at(path_of, "FT094", target, name, f"`{fn.qualname}`", fn.qualname,
                             notes)
                if hit is not None:
                    # A Python global lives in the module's dict, which the free-threaded build
                    # locks: racing lazy initialisations of it each store a whole object, and
                    # the last one wins (lost work, not a corrupted reference). A whole store
                    # of a C number or flag (a setting, a one-way switch) loses nothing either:
                    # readers see the old value or the new one (review 15: dipy's `CSF_D`,
                    # grpcio's `_has_fd_monitoring`). Counters and pointers stay warnings.
                    yield replace(hit, severity="info") if why in (
                        "check-then-act", "store", "cached") else hit


# FT095 / FT096 -----------------------------------------------------------------------------


def _instance_methods(index: ModuleIndex) -> Iterator[tuple[Function, str]]:
    one_thread = index.event_loop
    for fn in index.functions:
        if not fn.is_cdef_class_method or fn.name in _NOT_SHARED or not fn.args:
            continue
        if fn.cls in one_thread:
            continue  # an asyncio protocol: only its event loop's thread calls it
        if any(d.rsplit(".", 1)[-1] in ("staticmethod", "classmethod") for d in fn.decorators):
            continue
        yield fn, fn.args[0]


# `self.items += more` on a list stores the same list back: only the (internally locked)
# extend happens, so no reference is lost. Other types make a new object and race.
_IN_PLACE_SAFE = {"list": ("+",), "bytearray": ("+",), "set": ("|", "&", "-", "^"),
                  "dict": ("|",)}


# What else a racing update can do, by what the attribute holds (review 19: enable's
# `CGAffineTransform` structs were said to have a reference count).
_HARM = {"object": " or both release the old value (a corrupted reference count)",
         "struct": " or leave the struct half-written, fields from each", "value": ""}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def cython_cdef_attr_unlocked(trees: ModuleTrees, index: ModuleIndex, path_of: PathOf,
                              calls: dict[str, tuple[MethodCall, ...]]) -> Iterator[Hit]:
    tree = trees.tree
    locks = index.locks
    # The project's other .pxd files first: a base class cimported from one of them declares
    # what a subclass here inherits, and the module's own declarations win over them.
    types = class_attr_types(*trees.shared_pxds,
                             *((trees.pxd,) if trees.pxd is not None else ()), tree)
    properties = class_properties(tree)
    decls = (*trees.shared_pxds, *((trees.pxd,) if trees.pxd is not None else ()), tree)
    named: list[tuple[frozenset[str], dict[str, str]]] = []  # worked out at the first hit

    def structs_and_aliases() -> tuple[frozenset[str], dict[str, str]]:
        if not named:
            named.append((struct_names(*decls), c_type_aliases(*decls)))
        return named[0]
    python = trees.python
    # A `cdef` method has no callers but the project's; a private `def` one (`_setup`) none
    # but the project's either, when no Python code of the project calls it.
    guarded = called_only_locked(
        (f.name for f in index.functions if f.kind == "cdef" or (
            _private(f.name) and python is not None and not python.only_at_import(f.name)
            and not python.called_later(f.name))), calls)
    for fn, self_name in _instance_methods(index):
        if fn.nogil or locks_whole_function(fn) or (
                fn.name in guarded and (fn.kind == "cdef" or _private(fn.name))):
            continue
        own = properties.get(fn.cls or "", set()) - set(types.get(fn.cls or "", {}))
        seen: set[str] = set()
        for stmt, locked in walk_unlocked(fn.node, locks, hand=index.hand):
            if locked or stmt.kind not in ("SingleAssignmentNode", "InPlaceAssignmentNode"):
                continue
            target = stmt.child("lhs")
            attr = self_attr(target, self_name)
            if not attr or attr in seen or target is None or attr in own:
                continue
            if stmt.kind == "SingleAssignmentNode" and not any(
                    self_attr(n, self_name) == attr for n in _walk(stmt.child("rhs"))):
                continue
            declared = types.get(fn.cls or "", {}).get(attr, "")
            if declared and not is_c_value(declared) and declared not in PYTHON_TYPES:
                declared = resolved_type(declared, structs_and_aliases()[1])
            if stmt.kind == "InPlaceAssignmentNode" and stmt.text("operator") in \
                    _IN_PLACE_SAFE.get(declared, ()):
                continue
            seen.add(attr)
            harm = _HARM["struct" if declared in structs_and_aliases()[0] else
                         "value" if is_c_value(declared) else "object"]
            hit = hit_at(path_of, "FT095", target, f"{self_name}.{attr}",
                         f"`{fn.qualname}`, so two threads can lose an update{harm}", fn.qualname)
            if hit is not None:
                # A C number or pointer only loses updates; an object can be freed twice.
                yield replace(hit, severity="info") if is_c_value(declared) else hit


def _tested_attr(cond: CyNode | None, self_name: str, *, negated: bool) -> str:
    """The `self.x` an `if` tests for "not yet set" (negated=False: `is None`, `== NULL`,
    `not self.x`) or for "already set" (negated=True: `is not None`, `self.x`)."""
    if cond is None:
        return ""
    if cond.kind in ("BoolBinopNode",):
        for part in (cond.child("operand1"), cond.child("operand2")):
            got = _tested_attr(part, self_name, negated=negated)
            if got:
                return got
        return ""
    if cond.kind == "NotNode":
        return "" if negated else self_attr(cond.child("operand"), self_name)
    if cond.kind == "PrimaryCmpNode":
        op = cond.text("operator")
        left, right = cond.child("operand1"), cond.child("operand2")
        unset = ("is", "==") if not negated else ("is_not", "!=")
        if op in unset and right is not None and right.kind in _NONE_LIKE:
            return self_attr(left, self_name)
        return ""
    if negated:
        return self_attr(cond, self_name)
    return ""


def _lazy_writes(node: CyNode, self_name: str, attr: str) -> Iterator[tuple[CyNode, CyNode]]:
    """(statement, target) that store a computed value in `self.attr`. Storing a constant
    (`self.running = 1`) is a state flag, not the creation of something expensive."""
    for n in (node, *same_scope(node)):
        if n.kind not in ("SingleAssignmentNode", "CascadedAssignmentNode"):
            continue
        rhs = n.child("rhs")
        if rhs is None or rhs.kind in _CONSTANTS:
            continue
        for target in _targets(n):
            if self_attr(target, self_name) == attr:
                yield n, target


def _returns_only(body: CyNode | None) -> bool:
    if body is None:
        return False
    stats = body.kids("stats") if body.kind == "StatListNode" else (body,)
    return bool(stats) and stats[-1].kind == "ReturnStatNode"


def cython_lazy_attr_init(index: ModuleIndex, path_of: PathOf) -> Iterator[Hit]:
    locks = index.locks
    for fn, self_name in _instance_methods(index):
        if fn.nogil or locks_whole_function(fn):
            continue
        reported: set[str] = set()
        for node, locked in walk_unlocked(fn.node, locks, hand=index.hand):
            if locked or node.kind != "IfStatNode":
                continue
            for clause in node.kids("if_clauses"):
                cond, body = clause.child("condition"), clause.child("body")
                attr = _tested_attr(cond, self_name, negated=False)
                write = next((t for _s, t in _lazy_writes(body, self_name, attr)), None) \
                    if attr and body is not None else None
                if write is None:
                    # `if self.x is not None: return self.x` ... `self.x = ...` after it
                    attr = _tested_attr(cond, self_name, negated=True)
                    if attr and _returns_only(body):
                        write = next((t for _s, t in _lazy_writes(fn.node, self_name, attr)
                                      if t.line > node.line), None)
                if write is None or attr in reported:
                    continue
                reported.add(attr)
                path = path_of(write.file)
                notes = (Note(message=f"`{self_name}.{attr}` is set here",
                              location=Location(path=path, line=write.line)),) if path else ()
                hit = hit_at(path_of, "FT096", clause, f"{self_name}.{attr}",
                             f"`{fn.qualname}`", fn.qualname, notes)
                if hit is not None:
                    yield hit


# FT048 -------------------------------------------------------------------------------------


def cython_nogil_object_state(index: ModuleIndex, path_of: PathOf) -> Iterator[Hit]:
    """FT048 in Cython: a `cdef class` method touches `self.<attr>` inside `with nogil:` with no
    lock of the object's held: two threads can use the same C state (a handle, a buffer, a
    counter) at once, and on free-threaded builds nothing else serialises them. One finding per
    `with nogil:` block, naming every attribute it uses."""
    locks = index.locks
    for fn, self_name in _instance_methods(index):
        if fn.nogil or locks_whole_function(fn):
            continue
        stack: list[tuple[CyNode, bool]] = [
            (c, False) for group in fn.node.children.values() for c in group]
        while stack:
            node, locked = stack.pop()
            if node.kind in FUNCTION_KINDS:
                continue
            if node.kind == "WithStatNode" and is_lock_manager(node.child("manager"), locks):
                locked = True
            if node.kind == "GILStatNode" and node.text("state") == "nogil" and not locked:
                attrs = list(dict.fromkeys(
                    a for a in (self_attr(n, self_name) for n in _walk(node.child("body")))
                    if a))
                if attrs:
                    shown = ", ".join(f"`{self_name}.{a}`" for a in attrs[:4])
                    more = f" and {len(attrs) - 4} more" if len(attrs) > 4 else ""
                    hit = hit_at(path_of, "FT048", node, attrs[0], shown + more, fn.qualname)
                    if hit is not None:
                        yield hit
                continue
            stack.extend((c, locked) for group in node.children.values() for c in group)


def check_tree(trees: ModuleTrees, path_of: PathOf, selected: frozenset[str]) -> list[Hit]:
    """Every selected code rule over one module tree."""
    tree = trees.tree
    index = ModuleIndex.of(tree)
    calls = trees.method_calls if trees.method_calls is not None else \
        method_calls(index.functions)
    out: list[Hit] = []
    if "FT093" in selected:
        out += cython_with_gil_in_prange(tree, index, path_of)
    if "FT094" in selected:
        out += cython_cdef_global_mutation(trees, index, path_of)
    if "FT095" in selected:
        out += cython_cdef_attr_unlocked(trees, index, path_of, calls)
    if "FT096" in selected:
        out += cython_lazy_attr_init(index, path_of)
    if "FT102" in selected:
        out += cython_pointer_released(tree, index, path_of, trees.pxd, calls)
    if "FT100" in selected:
        out += cython_borrowed_cimports(index.nodes, path_of)
    if "FT101" in selected:
        out += cython_raw_pythread_lock(index.nodes, path_of)
    if "FT145" in selected:
        out += cython_removed_api(index.nodes, path_of)
    if "FT048" in selected:
        out += cython_nogil_object_state(index, path_of)
    return out
