"""Facts about one C/C++ translation unit: what the front end saw, with no judgement in it.

Matchers turn facts into findings; the cache stores facts, so changing the configuration or
the rule text never forces a re-parse.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gilaudit.frontends.contract import Suppression

__all__ = [
    "Access", "Assign", "CallSite", "Diag", "FieldDecl", "FileFacts", "FunctionFacts", "IfGuard",
    "Jump", "Loop", "MacroFact", "Mention", "ModuleDefFact", "Region", "SlotEntry", "StructFact",
    "TypeFact", "Var",
    "facts_from_jsonable", "facts_to_jsonable",
]


@dataclass(frozen=True, slots=True)
class Var:
    name: str
    type: str
    line: int
    col: int
    storage: str  # global | static-global | function-static | local | param
    is_const: bool = False
    is_atomic: bool = False
    is_tls: bool = False
    is_pointer: bool = False
    is_pyobject: bool = False
    index: int = -1  # parameter position


@dataclass(frozen=True, slots=True)
class CallSite:
    name: str
    line: int
    col: int
    offset: int
    end: int  # offset just past the closing parenthesis
    args: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Assign:
    target: str  # a local variable name
    offset: int
    source: str  # callee name when the value is a call result, else ""
    copy_of: str = ""  # the variable whose value it takes (through a cast), if that is all


@dataclass(frozen=True, slots=True)
class Mention:
    """An identifier use at a position (global write, field access, member token, escape)."""

    name: str
    line: int
    col: int
    offset: int
    detail: str = ""  # e.g. the base of a field access, or the kind of write


@dataclass(frozen=True, slots=True)
class Region:
    kind: str  # cs | cs2 | cs-mutex | allow | lock
    begin: int
    end: int  # offset of the closing macro/call; -1 when never closed
    line: int
    col: int
    receiver: str = ""  # critical section object(s), lock expression
    macro: str = ""
    end_macro: str = ""


@dataclass(frozen=True, slots=True)
class IfGuard:
    var: str  # a shared variable, or `base->field` (any base: the object model decides)
    # "null-check" (write inside then) | "early-return" (write after the if) | "owner" (an
    # early exit unless `var` holds the running thread's id: only its owner goes on)
    shape: str
    offset: int
    then_start: int
    then_end: int
    line: int


@dataclass(frozen=True, slots=True)
class Jump:
    kind: str  # return | goto | break | continue
    offset: int
    line: int
    col: int
    label: str = ""  # a goto's label; the name a return returns ("?" for another expression)


@dataclass(frozen=True, slots=True)
class Loop:
    kind: str  # for | while | do | switch
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Access:
    """`base->field` in a function body, and what the code does with it there."""

    base: str  # the variable the access starts from (casts removed)
    field: str
    # read | write (assigned) | rmw (++, +=) | elem (written through: `b->f[i] = x`, `b->f.x = y`,
    # a mutating C++ member call) | addr (`&b->f` handed to a call) | arg (a pointer field handed
    # to a C function) | replace (Py_SETREF/Py_XSETREF/Py_CLEAR) | free | atomic | lend |
    # test (compared with NULL, never used)
    kind: str
    offset: int
    line: int
    col: int
    via: str = ""  # the call it was seen in (atomic builtin, free, the C function it goes to)
    value: str = ""  # what a write stores, when it is a number or truth value (`1`, `true`)
    # a read that is a condition's truth value ("truth": `if (b->f)`, `b->f &&`) or compared
    # there with a constant or a name ("compare": `if (b->closed == 1)`)
    cond: str = ""
    member: str = ""  # the member of an embedded struct it goes on to (`b->ctx.prec`: `prec`)
    # a write of what a call returns (`b->fp = fopen(...)`): something new, or borrowed
    stores_call: bool = False


@dataclass(frozen=True, slots=True)
class FunctionFacts:
    name: str
    line: int
    col: int
    end_line: int
    start: int
    end: int
    is_static: bool
    params: tuple[Var, ...]
    locals: tuple[Var, ...]
    calls: tuple[CallSite, ...]
    assigns: tuple[Assign, ...]
    global_writes: tuple[Mention, ...]
    field_uses: tuple[Mention, ...]  # name = field, detail = base expression
    field_writes: tuple[Assign, ...]  # target = "base->field", source = callee or ""
    escapes: tuple[Mention, ...]  # a local published (stored in shared places or passed on)
    regions: tuple[Region, ...]
    ifs: tuple[IfGuard, ...]
    jumps: tuple[Jump, ...]
    loops: tuple[Loop, ...]
    labels: tuple[Mention, ...]
    unmatched: tuple[Mention, ...]  # END macros with no BEGIN (name = macro)
    accesses: tuple[Access, ...] = ()
    # Locals that are a parameter under another type: (name, parameter index, cast type).
    aliases: tuple[tuple[str, int, str], ...] = ()
    lvalue_calls: tuple[int, ...] = ()  # offsets of calls assigned to (`BUF(self)[i] = x`)
    owner: str = ""  # the class of a C++ member function
    # C++ lambdas in the body that run later, elsewhere (handed to `m.def`, stored as a
    # callback): (start, end) offsets. One invoked where it is written runs with the function.
    deferred: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class SlotEntry:
    slot: str
    value: str
    line: int
    col: int
    guards: tuple[str, ...]  # enclosing #if conditions


@dataclass(frozen=True, slots=True)
class ModuleDefFact:
    var: str
    module: str
    line: int
    col: int
    slots: str  # name of the slot array, "" when none
    methods: str


@dataclass(frozen=True, slots=True)
class TypeFact:
    name: str  # Python-visible short name
    methods: tuple[str, ...]  # method/getset/member table names it references
    roles: tuple[tuple[str, str], ...]  # (slot, C function) e.g. ("tp_dealloc", "Foo_dealloc")
    # Every function the type's definition and its slot tables name: (slot or "slot", name).
    entries: tuple[tuple[str, str], ...] = ()
    instance: str = ""  # the struct in `sizeof(...)` of its basic size
    line: int = 0
    doc: str = ""


@dataclass(frozen=True, slots=True)
class FieldDecl:
    name: str
    type: str
    line: int
    is_pointer: bool
    is_pyobject: bool
    is_atomic: bool
    is_lock: bool  # PyMutex, pthread_mutex_t, PyThread_type_lock, std::mutex, ...
    # `unsigned size:24`: a store rewrites the whole word it shares with its neighbours
    is_bitfield: bool = False


@dataclass(frozen=True, slots=True)
class StructFact:
    names: tuple[str, ...]  # struct tag and typedef names
    path: str
    line: int
    fields: tuple[FieldDecl, ...]
    is_object: bool = False  # starts with PyObject_HEAD: a pointer to it is a Python object


@dataclass(frozen=True, slots=True)
class MacroFact:
    """A function-like macro of the project (its own files and headers)."""

    name: str
    params: tuple[str, ...]
    body: str  # comments removed, whitespace collapsed
    path: str
    line: int


@dataclass(frozen=True, slots=True)
class Diag:
    kind: str
    message: str
    path: str
    line: int = 0


@dataclass(frozen=True, slots=True)
class FileFacts:
    path: str
    lines: int
    functions: tuple[FunctionFacts, ...]
    globals: tuple[Var, ...]
    module_defs: tuple[ModuleDefFact, ...]
    slot_arrays: tuple[tuple[str, tuple[SlotEntry, ...]], ...]
    types: tuple[TypeFact, ...]
    method_tables: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # table -> (pyname, cfunc)
    address_taken: tuple[str, ...]  # function names used as values
    inactive: tuple[Mention, ...]  # declarations found only in code not compiled for FT
    members: tuple[Mention, ...]  # ob_refcnt / ob_mutex uses, Py_REFCNT comparisons
    guards: tuple[tuple[int, tuple[str, ...]], ...]  # line -> #if conditions, for lines rules ask
    suppressions: tuple[Suppression, ...]
    diagnostics: tuple[Diag, ...]
    deps: tuple[tuple[str, str], ...]  # (project-relative header, sha256) it includes
    limited_api: bool = False  # compiled with Py_LIMITED_API
    # Project files with code that this translation unit #includes (a `.c` fragment, a header
    # of static functions): analysed in the includer's context, reported at their own path.
    included: tuple[FileFacts, ...] = ()
    included_from: str = ""
    # pybind11 modules judged on the parsed code, when its headers were found:
    # (module, line, column, "not-used" | "used" | "none")
    bindings: tuple[tuple[str, int, int, str], ...] = ()
    # Struct definitions and function-like macros of this file and the project headers it
    # includes: the object-state model needs instance layouts and accessor macros.
    structs: tuple[StructFact, ...] = ()
    macros: tuple[MacroFact, ...] = ()
    # PyMemberDef tables: table -> ((python name, field, writable, is object), ...)
    member_tables: tuple[tuple[str, tuple[tuple[str, str, bool, bool], ...]], ...] = ()
    # The first use of each `Py...`/`_Py...` name in compiled code (and the project's own
    # `#define`s of such names, and `Py_TYPE(o) = t` assignments): see mentions.api_mentions.
    api_names: tuple[Mention, ...] = ()


def facts_to_jsonable(facts: FileFacts) -> Any:
    """Nested lists of the facts' field values, in field order (tuples of plain values are
    left as they are: JSON writes them as arrays)."""
    return _encoder(FileFacts)(facts)


Converter = Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


@functools.cache
def _converter(tp: Any) -> Converter:
    """A function that rebuilds a value of type ``tp`` from its JSON form, made once per type:
    introspecting type hints for every value made warm runs slow."""
    origin = typing.get_origin(tp)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            if args[0] is FileFacts:
                # Recursive (FileFacts.included): resolve the element converter when called.
                return lambda data: tuple(map(_converter(FileFacts), data))
            inner = _converter(args[0])
            if inner is _identity:
                return tuple
            return lambda data: tuple(map(inner, data))
        parts = [_converter(a) for a in args]
        if all(p is _identity for p in parts):
            return tuple
        return lambda data: tuple(p(x) for p, x in zip(parts, data, strict=True))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        fields = [_converter(hints[f.name]) for f in dataclasses.fields(tp)]
        cls: Any = tp
        if all(f is _identity for f in fields):
            return lambda data: cls(*data)
        return lambda data: cls(*(f(x) for f, x in zip(fields, data, strict=True)))
    return _identity


@functools.cache
def _encoder(tp: Any) -> Converter:
    """The inverse of :func:`_converter`, made once per type: only dataclasses need work
    (a generic walk asked `is_dataclass` of every value, a third of a cold cache write)."""
    origin = typing.get_origin(tp)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            if args[0] is FileFacts:
                return lambda data: [_encoder(FileFacts)(x) for x in data]
            inner = _encoder(args[0])
            if inner is _identity:
                return _identity
            return lambda data: [inner(x) for x in data]
        parts = [_encoder(a) for a in args]
        if all(p is _identity for p in parts):
            return _identity
        return lambda data: [p(x) for p, x in zip(parts, data, strict=True)]
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        names = [f.name for f in dataclasses.fields(tp)]
        fields = [_encoder(hints[n]) for n in names]
        if all(f is _identity for f in fields):
            return lambda data: [getattr(data, n) for n in names]
        pairs = list(zip(names, fields, strict=True))
        return lambda data: [f(getattr(data, n)) for n, f in pairs]
    return _identity


def facts_from_jsonable(data: Any) -> FileFacts:
    result: FileFacts = _converter(FileFacts)(data)
    return result
