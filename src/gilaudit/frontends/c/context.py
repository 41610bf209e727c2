"""What matchers know beyond one function: the project's call graph, init-only functions,
Python-visible names, file-to-module mapping, and how to classify a receiver expression."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from gilaudit.frontends.c.facts import Assign, FileFacts, FunctionFacts, MacroFact, Region, Var
from gilaudit.frontends.contract import Hit

__all__ = [
    "CONSTRUCTORS",
    "ProjectIndex",
    "Receiver",
    "attached_again",
    "build_index",
    "classify_receiver",
    "detached_at",
    "detached_regions",
    "in_ranges",
    "in_region",
    "normalise_expr",
    "runs_after_init",
]

# Calls whose result is a brand-new object only this thread can see until it is published.
CONSTRUCTORS = frozenset({
    "PyList_New", "PyDict_New", "PyTuple_New", "PySet_New", "PyFrozenSet_New", "PyList_GetSlice",
    "PySequence_List", "PySequence_Tuple", "PyDict_Copy", "PyList_AsTuple", "Py_BuildValue",
    "PyTuple_Pack", "PyTuple_GetSlice", "_PyDict_NewPresized", "PyObject_CallNoArgs",
    "PyDict_Items", "PyDict_Keys", "PyDict_Values", "PyMapping_Items", "PyMapping_Keys",
    "PyMapping_Values",
    # Allocation of an instance: nobody else has it until it is returned or stored.
    "tp_alloc", "tp_new", "PyType_GenericAlloc", "PyType_GenericNew", "PyObject_New",
    "PyObject_NewVar", "PyObject_GC_New", "PyObject_GC_NewVar", "_PyObject_New",
    "_PyObject_GC_New",
})
_KW_NAMES = frozenset({"kwargs", "kwds", "kw", "kwnames", "kwargs_dict", "keywords", "kwdict"})
_ARGS_NAMES = frozenset({"args", "argv", "arg_tuple"})
_ROLE_WORDS = re.compile(r"(?:^|_)(dealloc|traverse|clear|new|init|finalize|del|free|alloc)$",
                         re.IGNORECASE)
_CAST = re.compile(r"^\s*\(\s*(?:const\s+)?(?:struct\s+)?[A-Za-z_]\w*[\s\*]*\)\s*")
_IDENT = re.compile(r"[A-Za-z_]\w*")
_MEMBER = re.compile(r"([A-Za-z_]\w*)\s*(->|\.)\s*(.+)")
_FRESH_CALL = re.compile(r"(?i)(?:^PyObject_(?:GC_)?New|_new|new_|alloc|create|make|^Py\w+_New$)")
_STATE_CALL = re.compile(r"(?i)(?:PyModule_GetState|PyType_GetModuleState|_?get_?\w*state)")
_PYOBJECT_STRUCT = re.compile(r"\b(?:PyObject|Py\w*Object|\w+Object)\s*\*")


@dataclass(frozen=True, kw_only=True, slots=True)
class Receiver:
    kind: str  # private | shared | param | unknown
    phrase: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ProjectIndex:
    init_only: frozenset[str]
    callable_names: dict[str, str]
    roles: dict[str, str]  # C function -> type slot it fills (tp_dealloc, ...)
    exported: frozenset[str]  # functions whose address is taken anywhere
    file_module: dict[str, str | None]
    supports_before_313: bool
    globals_by_file: dict[str, dict[str, Var]] = field(default_factory=dict)
    # Object-state hits of the whole project (FT033, FT034, FT074) by path: one type's entry
    # points and helpers span files, so they are judged once for all of them.
    object_hits: dict[str, tuple[Hit, ...]] = field(default_factory=dict)
    macros: dict[str, MacroFact] = field(default_factory=dict)  # the project's function-like
    # Project functions that return an object they made and did not publish (`ret =
    # PyList_New(0); ... return ret;`): what their callers get is theirs alone, as from PyList_New.
    fresh_returners: frozenset[str] = frozenset()
    # `Py...` names the project defines itself (a compatibility `#define`, its own function):
    # a name CPython removed is then the project's, not CPython's.
    api_defined: frozenset[str] = frozenset()

    def is_python_callable(self, fn: FunctionFacts) -> bool:
        return fn.name in self.callable_names or fn.name in self.exported

    def is_lifecycle(self, fn: FunctionFacts) -> bool:
        """Creation and destruction slots: the object is not shared while they run."""
        return fn.name in self.roles or bool(_ROLE_WORDS.search(fn.name))


# Functions that run once, while the module is imported: PyInit_*, and the functions a
# pybind11 (`PYBIND11_MODULE`) or nanobind (`NB_MODULE`) module body becomes.
_MODULE_INIT = re.compile(
    r"^(?:PyInit_|pybind11_init_|nanobind_init_|nanobind_\w+_exec(?:_impl)?$)")
_CXX_CAST = re.compile(r"^(?:reinterpret_cast|static_cast|const_cast)<[^>]*>\((.*)\)$")


def _uncast_cxx(expr: str) -> str:
    """`reinterpret_cast<void*>(kiwi_modexec)` -> `kiwi_modexec` (spaces already removed)."""
    m = _CXX_CAST.match(expr)
    return normalise_expr(m.group(1)) if m else expr


def in_ranges(ranges: Iterable[tuple[int, int]], offset: int) -> bool:
    return any(lo <= offset < hi for lo, hi in ranges)


def runs_after_init(fn: FunctionFacts, index: ProjectIndex, offset: int) -> bool:
    """Whether the code at ``offset`` of ``fn`` can run once the module is imported: all of a
    function that is not init-only, and the deferred lambdas of one that is."""
    return fn.name not in index.init_only or in_ranges(fn.deferred, offset)


def normalise_expr(text: str) -> str:
    """Strip casts, parentheses, `&` and spaces so `(PyObject *)self` and `self` compare equal."""
    t = text.strip()
    for _ in range(4):
        before = t
        uncast = _CAST.sub("", t).strip()
        t = uncast or t  # `(name)` alone is a parenthesised name, not a cast of nothing
        if t.startswith("&"):
            t = t[1:].strip()
        if t.startswith("(") and t.endswith(")"):
            t = t[1:-1].strip()
        if t == before:
            break
    return "".join(t.split())


def in_region(regions: Iterable[Region], offset: int, kinds: tuple[str, ...],
              receiver: str | None = None) -> Region | None:
    for r in regions:
        if r.kind not in kinds:
            continue
        end = r.end if r.end >= 0 else 1 << 62
        if r.begin < offset < end:
            if receiver is None:
                return r
            targets = [normalise_expr(x) for x in r.receiver.split(",")]
            if receiver in targets:
                return r
    return None


def attached_again(fn: FunctionFacts, region: Region, offset: int) -> bool:
    """Inside a detached region, PyGILState_Ensure re-attaches until Release, and
    Py_BLOCK_THREADS until Py_UNBLOCK_THREADS (the error paths of an allow-threads block)."""
    state = False
    for c in fn.calls:
        if c.offset >= offset:
            break
        if c.offset <= region.begin:
            continue
        if c.name in ("PyGILState_Ensure", "Py_BLOCK_THREADS"):
            state = True
        elif c.name in ("PyGILState_Release", "Py_UNBLOCK_THREADS"):
            state = False
    return state


def detached_regions(fn: FunctionFacts) -> list[Region]:
    """Detached regions; a Py_UNBLOCK_THREADS inside a Py_BEGIN_ALLOW_THREADS block only
    undoes a Py_BLOCK_THREADS of that block, it opens no region of its own."""
    allow = [r for r in fn.regions if r.kind == "allow"]
    blocks = [r for r in allow if r.macro != "Py_UNBLOCK_THREADS"]
    return blocks + [r for r in allow if r.macro == "Py_UNBLOCK_THREADS" and not any(
        b.begin < r.begin < (b.end if b.end >= 0 else 1 << 62) for b in blocks)]


def detached_at(fn: FunctionFacts, offset: int) -> bool:
    """Whether the thread runs without an attached thread state (the GIL released) there."""
    region = in_region(detached_regions(fn), offset, ("allow",))
    return region is not None and not attached_again(fn, region, offset)


def _published_between(fn: FunctionFacts, name: str, start: int, end: int) -> bool:
    return any(e.name == name and start < e.offset < end for e in fn.escapes)


def classify_receiver(arg: str, fn: FunctionFacts, facts: FileFacts, index: ProjectIndex,
                      at: int) -> Receiver:
    expr = normalise_expr(arg)
    if _IDENT.fullmatch(expr):
        for p in fn.params:
            if p.name == expr:
                if p.name in _KW_NAMES or (p.index == 2 and len(fn.params) == 3
                                           and p.is_pointer):
                    return Receiver(kind="private", phrase=f"the keyword arguments `{expr}`")
                if p.name in _ARGS_NAMES and p.index == 1:
                    return Receiver(kind="private", phrase=f"the argument tuple `{expr}`")
                return Receiver(kind="param", phrase=f"parameter `{expr}`")
        for v in fn.locals:
            if v.name != expr:
                continue
            if v.storage == "function-static":
                return Receiver(kind="shared", phrase=f"the static `{expr}`")
            assigns = [a for a in fn.assigns if a.target == expr and a.offset < at]
            if assigns:
                last = assigns[-1]
                if last.source in CONSTRUCTORS or last.source in index.fresh_returners:
                    if _published_between(fn, expr, last.offset, at):
                        return Receiver(kind="unknown",
                                        phrase=f"`{expr}`, which is published before this use")
                    return Receiver(kind="private", phrase=f"the new object `{expr}`")
                if last.source:
                    return Receiver(kind="unknown", phrase=f"`{expr}` (from `{last.source}`)")
            if _parsed_argument(fn, expr, at):
                return Receiver(kind="param", phrase=f"argument `{expr}`")
            return Receiver(kind="unknown", phrase=f"local `{expr}`")
        glob = index.globals_by_file.get(facts.path, {}).get(expr)
        if glob is not None:
            return Receiver(kind="shared", phrase=f"the global `{expr}`")
        return Receiver(kind="unknown", phrase=f"`{expr}`")
    m = _MEMBER.fullmatch(expr)
    if m:
        return _classify_member(m.group(1), expr, arg.strip(), fn, facts, index, at)
    return Receiver(kind="unknown", phrase=f"`{arg.strip()}`")


def _parsed_argument(fn: FunctionFacts, name: str, at: int) -> bool:
    """`PyArg_ParseTuple(args, "O", &name)`: the local holds a caller-supplied object."""
    target = f"&{name}"
    return any(c.name.startswith(("PyArg_", "_PyArg_")) and c.offset < at
               and any("".join(a.split()) == target for a in c.args) for c in fn.calls)


def _last_assign(assigns: Iterable[Assign], target: str, at: int) -> Assign | None:
    last = None
    for a in assigns:
        if a.target == target and a.offset < at:
            last = a
    return last


def _classify_member(base: str, expr: str, shown: str, fn: FunctionFacts, facts: FileFacts,
                     index: ProjectIndex, at: int) -> Receiver:
    """`base->field`: shared when base is a Python object or module state, private when the
    field (or the whole base) was freshly created in this function and not yet published."""
    phrase = f"`{shown}`"
    written = _last_assign(fn.field_writes, expr, at)
    if written is not None and written.source in CONSTRUCTORS:
        return Receiver(kind="private", phrase=f"the new object in {phrase}")
    var = next((v for v in (*fn.params, *fn.locals) if v.name == base), None)
    if var is None:
        glob = index.globals_by_file.get(facts.path, {}).get(base)
        return Receiver(kind="shared" if glob is not None else "unknown", phrase=phrase)
    if var.storage == "local":
        origin = _last_assign(fn.assigns, base, at)
        if origin is not None and _FRESH_CALL.search(origin.source) and not _published_between(
                fn, base, origin.offset, at):
            return Receiver(kind="private", phrase=f"the new object in {phrase}")
        if origin is not None and _STATE_CALL.search(origin.source):
            return Receiver(kind="shared", phrase=f"module state {phrase}")
    if var.storage == "param" and var.index == 0 and index.is_python_callable(fn):
        return Receiver(kind="shared", phrase=phrase)
    if _PYOBJECT_STRUCT.search(var.type):
        return Receiver(kind="shared", phrase=phrase)
    # A pointer to a plain C struct (a stack buffer, a parser state): whose it is is unknown.
    return Receiver(kind="unknown", phrase=phrase)


def build_index(files: list[FileFacts], *, extension_of: dict[str, str],
                supports_before_313: bool) -> ProjectIndex:
    defined: dict[str, FunctionFacts] = {}
    callers: dict[str, set[str]] = {}
    exported: set[str] = set()
    roots: set[str] = set()
    callable_names: dict[str, str] = {}
    roles: dict[str, str] = {}
    for f in files:
        for fn in f.functions:
            defined.setdefault(fn.name, fn)
            if _MODULE_INIT.match(fn.name):
                roots.add(fn.name)
        exported.update(f.address_taken)
        for _name, entries in f.slot_arrays:
            for e in entries:
                if e.slot in ("Py_mod_exec", "Py_mod_create"):
                    roots.add(_uncast_cxx(normalise_expr(e.value)))
        table_owner: dict[str, str] = {}
        for t in f.types:
            for table in t.methods:
                table_owner[table] = t.name
            for slot, cfunc in t.roles:
                roles[cfunc] = slot
        for table, pairs in f.method_tables:
            owner = table_owner.get(table)
            for pyname, cfunc in pairs:
                callable_names.setdefault(cfunc, f"{owner}.{pyname}" if owner else pyname)
    for f in files:
        for fn in f.functions:
            for c in fn.calls:
                if c.name in defined and c.name != fn.name:
                    # A lambda handed to `m.def` runs at call time, whoever wrote it.
                    caller = f"{fn.name} (lambda)" if in_ranges(fn.deferred, c.offset) \
                        else fn.name
                    callers.setdefault(c.name, set()).add(caller)
    init_only = set(roots)
    changed = True
    while changed:
        changed = False
        for name in defined:
            if name in init_only or name in exported:
                continue
            cs = callers.get(name)
            if cs and cs <= init_only:
                init_only.add(name)
                changed = True
    file_module: dict[str, str | None] = {}
    only_ext = next(iter(set(extension_of.values()))) if len(set(extension_of.values())) == 1 \
        else None
    for f in files:
        mod = extension_of.get(f.path)
        if mod is None:
            inits = [fn.name[len("PyInit_"):] for fn in f.functions
                     if fn.name.startswith("PyInit_")]
            mod = inits[0] if inits else None
        file_module[f.path] = mod
    for f in files:
        if file_module[f.path] is None:
            # Included code belongs to its includer's module.
            file_module[f.path] = file_module.get(f.included_from) or only_ext
    globals_by_file = {f.path: {g.name: g for g in f.globals if g.storage != "function-static"}
                       for f in files}
    return ProjectIndex(
        init_only=frozenset(init_only),
        callable_names=callable_names,
        roles=roles,
        exported=frozenset(exported),
        file_module=file_module,
        supports_before_313=supports_before_313,
        globals_by_file=globals_by_file,
        macros={m.name: m for f in files for m in reversed(f.macros) if m.params
                and m.name not in defined},
        fresh_returners=frozenset(n for n, fn in defined.items() if _returns_fresh(fn)),
        api_defined=frozenset(m.name for f in files for m in f.api_names if m.detail == "define")
        | frozenset(n for n in defined if n.startswith(("Py", "_Py")))
        | frozenset(v.name for f in files for v in f.globals if v.name.startswith(("Py", "_Py"))),
    )


_NO_OBJECT = frozenset({"NULL", "nullptr", "NotImplemented"})


def _returns_fresh(fn: FunctionFacts) -> bool:
    """Every return hands back a local last made by a constructor and not published before
    (or NULL on an error path); a return of anything else makes the result unknown."""
    made = False
    for j in fn.jumps:
        if j.kind != "return" or j.label in _NO_OBJECT:
            continue
        last = _last_assign(fn.assigns, j.label, j.offset) if j.label else None
        if last is None or last.source not in CONSTRUCTORS or \
                _published_between(fn, j.label, last.offset, j.offset):
            return False
        made = True
    return made
