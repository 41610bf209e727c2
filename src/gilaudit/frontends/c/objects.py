"""The extension types of a project: each type's instance struct and fields, and every entry
point that runs with an instance (methods, getters and setters, slots, writable members).

Built from the facts of all files at once: a type's table, its methods and its struct often
live in different files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from gilaudit.frontends.c.context import normalise_expr
from gilaudit.frontends.c.facts import CallSite, FieldDecl, FileFacts, FunctionFacts, MacroFact
from gilaudit.frontends.c.functions import LOCK_PAIRS

__all__ = [
    "CONSTRUCTION",
    "MADE_BY",
    "UNLOCKS",
    "EntryPoint",
    "ObjectModel",
    "TypeModel",
    "build_object_model",
    "lock_helpers",
    "parses_its_arguments",
    "pointer_to",
]

# Slots that run before the object is published or after it is unreachable.
CONSTRUCTION = frozenset({"tp_new", "tp_alloc", "tp_dealloc", "tp_traverse", "tp_clear",
                          "tp_finalize", "tp_del", "tp_free", "tp_is_gc", "tp_vectorcall"})
_NOT_ENTRY = frozenset({"tp_methods", "tp_members", "tp_getset", "tp_base", "tp_dict",
                        "tp_as_number", "tp_as_sequence", "tp_as_mapping", "tp_as_buffer",
                        "tp_as_async", "tp_doc", "tp_flags", "tp_basicsize", "tp_itemsize",
                        "tp_bases", "tp_name", "tp_token", "tp_weaklistoffset",
                        "tp_dictoffset", "tp_vectorcall_offset"})
# Slots whose first parameter is not the instance.
_NO_SELF = frozenset({"tp_new", "tp_alloc", "tp_free", "nb_power"})
_METHOD_ENTRY = re.compile(
    r"\{\s*\"([^\"]+)\"\s*,\s*(?:\(\s*[\w\s\*\(\)]*?\)\s*)*\(?\s*&?\s*([A-Za-z_]\w*)\s*\)?")
_CAST_MACRO = re.compile(r"_PyCFunction_CAST\s*\(\s*([A-Za-z_]\w*)\s*\)")


@dataclass(frozen=True, slots=True)
class EntryPoint:
    function: str
    role: str  # a slot (tp_iternext, nb_add, ...), "method", "getset"
    name: str  # how Python reaches it: method name, slot name
    # For an entry point of another type that reaches this type's instance through fields of
    # its own (an iterator's or a view's `self->container`): those fields.
    through: tuple[str, ...] = ()
    # The Python type it belongs to, when that is not the type it is judged under (types that
    # share an instance struct are judged together, under the first one's name).
    owner: str = ""


@dataclass(frozen=True, slots=True)
class TypeModel:
    name: str
    path: str
    line: int
    instance: str  # struct name, "" when unknown
    fields: dict[str, FieldDecl]  # empty when the struct was not found
    entries: tuple[EntryPoint, ...]
    # Fields Python code can assign: (python name, field, holds an object, through CPython's
    # member descriptors, which lock, rather than a binding's plain setter)
    writable_members: tuple[tuple[str, str, bool, bool], ...]
    documented_unsafe: bool
    also: tuple[str, ...] = ()  # other types with the same instance struct, judged with it


@dataclass(frozen=True, slots=True)
class ObjectModel:
    types: tuple[TypeModel, ...]
    functions: dict[str, tuple[str, FunctionFacts]]  # name -> (path, facts)
    macros: dict[str, MacroFact]
    # `static` functions by (file, name): two files may each have their own `dict_repr`.
    statics: dict[tuple[str, str], tuple[str, FunctionFacts]] = field(default_factory=dict)
    # The project's functions that take locks of the object they are given and return
    # holding them, or release ones they did not take: name -> ("take" | "drop", fields)
    lock_helpers: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)

    def resolve(self, name: str, from_path: str) -> tuple[str, FunctionFacts] | None:
        """The function a call in ``from_path`` means: that file's own static, else the
        project's one of that name."""
        return self.statics.get((from_path, name)) or self.functions.get(name)


_UNSAFE_DOC = re.compile(r"(?i)\bnot\s+thread[- ]?safe\b|\bthread[- ]unsafe\b")


def build_object_model(files: list[FileFacts]) -> ObjectModel:
    functions: dict[str, tuple[str, FunctionFacts]] = {}
    statics: dict[tuple[str, str], tuple[str, FunctionFacts]] = {}
    macros: dict[str, MacroFact] = {}
    structs: dict[str, dict[str, FieldDecl]] = {}
    object_structs: set[str] = set()
    tables: dict[str, tuple[tuple[str, str], ...]] = {}
    members: dict[str, tuple[tuple[str, str, bool, bool], ...]] = {}
    # A struct or table name is only unique in its file (CPython's sha1, sha256 and sha512
    # modules each have a `SHAobject` and a `SHA_methods`): the file's own comes first.
    own_structs: dict[tuple[str, str], dict[str, FieldDecl]] = {}
    own_tables: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
    own_members: dict[tuple[str, str], tuple[tuple[str, str, bool, bool], ...]] = {}
    for f in files:
        for fn in f.functions:
            functions.setdefault(fn.name, (f.path, fn))
            if fn.is_static:
                statics.setdefault((f.path, fn.name), (f.path, fn))
            if fn.owner:
                functions.setdefault(f"{fn.owner}::{fn.name}", (f.path, fn))
        for m in f.macros:
            macros.setdefault(m.name, m)
        for s in f.structs:
            for name in s.names:
                if s.is_object:
                    object_structs.add(name)
                if s.fields and name not in structs:
                    structs[name] = {d.name: d for d in s.fields}
                if s.fields:
                    own_structs.setdefault((f.path, name), {d.name: d for d in s.fields})
        for table, pairs in f.method_tables:
            tables.setdefault(table, pairs)
            own_tables.setdefault((f.path, table), pairs)
        for table, rows in f.member_tables:
            members.setdefault(table, rows)
            own_members.setdefault((f.path, table), rows)
    types: list[TypeModel] = []
    seen: set[tuple[str, str]] = set()
    # Module functions: Python calls them with any object, including a shared instance. A
    # table's name is only unique in its file (two modules' `module_functions`).
    module_functions = [
        (pyname, func) for f in files for table, pairs in f.method_tables
        if table not in {name for t in f.types for name in t.methods}
        for pyname, func in _resolve(pairs, macros) if func in functions]
    for f in files:
        for t in f.types:
            if (t.name, f.path) in seen:
                continue
            seen.add((t.name, f.path))
            entries: dict[str, EntryPoint] = {}
            writable: list[tuple[str, str, bool, bool]] = []
            for slot, func in t.entries:
                kind, _, pyname = slot.partition(":")
                if kind == "readwrite":
                    writable.append((pyname, func, False, False))  # a binding's plain setter
                    continue
                if slot in _NOT_ENTRY or func not in functions:
                    continue
                if kind == "method" and pyname:
                    entries.setdefault(func, EntryPoint(func, "method", pyname))
                else:
                    entries.setdefault(func, EntryPoint(func, slot, slot))
            for table in t.methods:
                methods = _resolve(own_tables.get((f.path, table), tables.get(table, ())),
                                   macros)
                for n, (pyname, func) in enumerate(methods):
                    # A PyGetSetDef row gives getter and setter under one name, in that order.
                    role = "method"
                    if n + 1 < len(methods) and methods[n + 1][0] == pyname:
                        role = "getter"
                    elif n > 0 and methods[n - 1][0] == pyname:
                        role = "setter"
                    if func in functions:
                        entries.setdefault(func, EntryPoint(func, role, pyname))
                for pyname, member, can_write, is_object in own_members.get(
                        (f.path, table), members.get(table, ())):
                    if can_write:
                        writable.append((pyname, member, is_object, True))
            for pyname, func in module_functions if t.instance else ():
                if func.endswith("_swiginit"):
                    continue  # SWIG's proxy class calls it from `__init__`, on the new object
                fpath, fn = functions[func]
                if _handles(fn, t.instance) or any(
                        parses_its_arguments(fn, c, h[1], t.instance) for c in fn.calls
                        if (h := statics.get((fpath, c.name)) or functions.get(c.name))):
                    entries.setdefault(func, EntryPoint(func, "function", pyname))
            types.append(TypeModel(
                name=t.name, path=f.path, line=t.line, instance=t.instance,
                fields=_objects_as_such(own_structs.get((f.path, t.instance),
                                                        structs.get(t.instance, {})),
                                        object_structs),
                entries=tuple(e for e in entries.values() if e.role not in CONSTRUCTION
                              and e.role not in _NO_SELF),
                writable_members=tuple(writable),
                documented_unsafe=bool(_UNSAFE_DOC.search(t.doc)),
            ))
    return ObjectModel(tuple(_with_views(_merged(types))), functions, macros, statics,
                       lock_helpers(functions))


# The lock APIs whose calls pair into regions (functions.LOCK_PAIRS): takes and gives back.
_TAKES = frozenset(LOCK_PAIRS)
UNLOCKS = frozenset(LOCK_PAIRS.values())


def lock_helpers(functions: dict[str, tuple[str, FunctionFacts]]
                 ) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Functions that lock fields of their first parameter and return holding them, and those
    that unlock ones they did not lock: cereggii's `begin_synchronous_operation(self)` takes
    `self->sync_op` and `self->accessors_lock`, `end_synchronous_operation(self)` gives them
    back; the code between their calls holds both."""
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for name, (_path, fn) in functions.items():
        if not fn.params:
            continue
        first = fn.params[0].name
        member = re.compile(rf"{re.escape(first)}(?:->|\.)(\w+)")
        # an unreleased lock's region runs to the end (-1, or past any offset)
        taken = [m.group(1) for r in fn.regions if r.kind == "lock"
                 and not 0 <= r.end < 1 << 62 and r.macro in _TAKES
                 and (m := member.fullmatch(normalise_expr(r.receiver)))]
        closed = {normalise_expr(r.receiver) for r in fn.regions if r.kind == "lock"
                  and 0 <= r.end < 1 << 62}
        dropped = [m.group(1) for c in fn.calls if c.name in UNLOCKS and c.args
                   and normalise_expr(c.args[0]) not in closed
                   and (m := member.fullmatch(normalise_expr(c.args[0])))]
        if taken and not dropped:
            out[name] = ("take", tuple(dict.fromkeys(taken)))
        elif dropped and not taken:
            out[name] = ("drop", tuple(dict.fromkeys(dropped)))
    # Only pairs that some caller uses as brackets, a take and then a give-back of the same
    # lock: a method that releases a lock it never took is signalling a waiter with it
    # (CPython's SimpleQueue.put releases the lock a get() waits on), not ending a section.
    paired: set[str] = set()
    for _path, fn in functions.values():
        took: set[str] = set()
        for c in fn.calls:
            helper = out.get(c.name)
            if helper is None:
                continue
            if helper[0] == "take":
                took.add(c.name)
            else:
                opened = [t for t in took if set(out[t][1]) & set(helper[1])]
                if opened:
                    paired.update(opened)
                    paired.add(c.name)
    return {name: v for name, v in out.items() if name in paired}


_GENERIC = frozenset({"PyObject", "PyVarObject"})


def _with_views(types: list[TypeModel]) -> list[TypeModel]:
    """An iterator, a view or a proxy keeps a pointer to another type's instance and works on
    it from its own entry points: those are entry points of that other type too."""
    out = []
    for b in types:
        extra: list[EntryPoint] = []
        # A type whose instance is a bare `PyObject` has no fields of its own to reach: every
        # `PyObject *` field of every other type would point to "it".
        for a in types if b.instance and b.fields and b.instance not in _GENERIC else ():
            if a is b:
                continue
            fields = tuple(name for name, d in a.fields.items()
                           if d.is_pointer and _base_type(d.type) == b.instance)
            if fields:
                extra += [replace(e, role="view", name=f"{e.owner or a.name}.{e.name}",
                                  through=fields, owner="")
                          for e in a.entries]
        known = {e.function for e in b.entries}
        out.append(replace(b, entries=b.entries + tuple(e for e in extra
                                                       if e.function not in known)))
    return out


def _base_type(spelled: str) -> str:
    words = spelled.replace("*", " ").replace("struct ", " ").replace("const ", " ").split()
    return words[-1] if words else ""


def _merged(types: list[TypeModel]) -> list[TypeModel]:
    """Types that share an instance struct and their functions (CPython's BufferedReader,
    BufferedWriter and BufferedRandom) are one set of fields behind one set of entry points:
    judged once, under the first name, the others named in the notes."""
    out: list[TypeModel] = []
    by_instance: dict[object, int] = {}
    for t in types:
        # Without a known struct, the same entry points make the same type: nanobind's
        # `nb_type` and the spec it builds at run time under a computed name (review 19).
        key: object = t.instance or frozenset((e.role, e.function) for e in t.entries)
        at = by_instance.get(key) if t.instance or t.entries else None
        if at is None:
            by_instance[key] = len(out)
            out.append(t)
            continue
        first = out[at]
        known = {e.function for e in first.entries}
        out[at] = replace(
            first, name=first.name or t.name,
            also=(*first.also, t.name) if first.name and t.name else first.also,
            entries=first.entries + tuple(replace(e, owner=e.owner or t.name)
                                          for e in t.entries if e.function not in known),
            writable_members=tuple(dict.fromkeys(first.writable_members + t.writable_members)),
            documented_unsafe=first.documented_unsafe or t.documented_unsafe)
    return out


# A call whose result is an object the caller has just made (`Foo_New`, `tp_alloc`,
# `copy_thing`, `from_bytes`): nobody else holds it until it is stored or returned.
MADE_BY = re.compile(r"(?i)new|alloc|create|make|copy|from|build")


def pointer_to(instance: str) -> re.Pattern[str]:
    """A declared type that is a pointer to the instance struct (`bitarrayobject *`)."""
    return re.compile(rf"\b{re.escape(instance)}\s*\*")


def parses_its_arguments(fn: FunctionFacts, call: CallSite, helper: FunctionFacts,
                         instance: str) -> bool:
    """A module function that hands its own arguments to a helper which turns them into
    instances (bitarray's `count_and(module, args)` -> `binary_function(args, ...)`)."""
    params = {p.name for p in fn.params}
    # mysqlclient's `connect()` hands its arguments with the instance it has just allocated
    # to `_mysql_ConnectionObject_Initialize(c, args, kwargs)`: that instance is its own.
    typed = pointer_to(instance)
    made = {a.target for a in fn.assigns if MADE_BY.search(a.source)} & {
        v.name for v in fn.locals if typed.search(v.type)}
    return any(a.strip() in params for a in call.args) and _handles(helper, instance) and \
        not any(a.strip() in made for a in call.args)


def _handles(fn: FunctionFacts, instance: str) -> bool:
    """A module function that takes an instance among its arguments (a parameter or local of
    the instance's type, or an argument cast to it)."""
    typed = pointer_to(instance)
    return any(typed.search(v.type) for v in (*fn.params, *fn.locals)) or any(
        cast == instance for _name, _index, cast in fn.aliases)


def _objects_as_such(fields: dict[str, FieldDecl],
                     object_structs: set[str]) -> dict[str, FieldDecl]:
    """A pointer to one of the project's object structs (`buffered *reader`) is a Python
    object reference like `PyObject *`, not C state a callee updates."""
    out = {}
    for name, decl in fields.items():
        base = decl.type.replace("*", " ").replace("struct ", " ").split()
        is_object = decl.is_pointer and bool(base) and base[-1] in object_structs
        out[name] = replace(decl, is_pyobject=True) if is_object else decl
    return out


def _resolve(pairs: tuple[tuple[str, str], ...],
             macros: dict[str, MacroFact]) -> list[tuple[str, str]]:
    """Method table rows, Argument Clinic's `FOO_METHODDEF` entries read from their macro."""
    out: list[tuple[str, str]] = []
    for pyname, func in pairs:
        if pyname != "@macro":
            out.append((pyname, func))
            continue
        macro = macros.get(func)
        if macro is None:
            continue
        body = _CAST_MACRO.sub(r"\1", macro.body)
        m = _METHOD_ENTRY.search(body)
        if m:
            out.append((m.group(1), m.group(2)))
    return out
