"""Object state: which fields of an extension type's instances its entry points read and write,
under which synchronisation, and where two of them can run at once on one instance without a
common lock (FT033, FT034, FT074).

For each entry point the accesses of the instance are collected from its body, from the
project's function-like macros it passes the instance to, and from the project's functions it
passes the instance to (two levels deep), each with what is held there: a critical section on
the instance, a lock (one of the instance's own or a global one), an atomic operation.
Construction and destruction slots are not entry points: nobody else can see the object then.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from gilaudit.frontends.c.context import CONSTRUCTORS, detached_at, normalise_expr
from gilaudit.frontends.c.facts import Access, CallSite, FieldDecl, FunctionFacts, MacroFact
from gilaudit.frontends.c.macro_uses import (
    counts_references,
    field_uses,
    wrapped_lock,
    wrapped_section,
)
from gilaudit.frontends.c.objects import (
    MADE_BY,
    UNLOCKS,
    EntryPoint,
    ObjectModel,
    TypeModel,
    parses_its_arguments,
    pointer_to,
)
from gilaudit.frontends.contract import Hit
from gilaudit.model import Location, Note

__all__ = ["OBJECT_RULES", "Touch", "object_state_hits", "touches_of"]

OBJECT_RULES = frozenset({"FT033", "FT034", "FT074"})

WRITES = frozenset({"write", "rmw", "elem", "addr", "arg", "replace", "free", "refcount"})
_THIS = -1  # the instance is a C++ member function's `this`
_TYPED = -2  # a module function: its parameters and locals of the instance's type
# Another type's entry point: `h->f` for its fields that point to an instance, where `h` is
# its parameter at position _VIEW - index (its `self` first, then wherever it is handed on).
_VIEW = -100
_NONE = -5  # a helper given only the address of a field (`&self->f`), not the instance
_ADDRESS = re.compile(r"(?:\([\w*]+\))?&\(?(\w+)->(\w+)\)?")  # on an argument without spaces
_HELPER_DEPTH = 3  # Argument Clinic puts one wrapper in front of every method
_NOT_STATE = frozenset({"ob_base", "ob_type", "ob_refcnt", "ob_mutex", "ob_tid"})
_ITERATOR_ROLES = frozenset({"tp_iternext", "am_send"})
_ITERATOR_NAMES = frozenset({"__next__", "next", "send", "throw"})
_SIZE_NAME = re.compile(r"(?i)(?:^|_)(?:len|length|size|count|cap|capacity|alloc|allocated|n"
                        r"|used|fill|pos|end|start|nitems|nbytes)(?:_|$)")
_MAX_NOTES = 4
# Every helper where the entry point's unlocked accesses are: the maintainer chooses between
# one lock at the entry point and one in each helper (bitarray 3.9 locked its getmask, ...).
_MAX_HELPERS = 12
_MUTATING = re.compile(
    r"(?:^| )(?:update|write|set|add|append|push|insert|remove|delete|del|pop|clear|reset|free|"
    r"release|init|feed|compress|decompress|process|put|flush|finish|final|finalize|close|"
    r"open|seek|step|run|exec|execute|resize|grow|shrink|alloc|realloc|fill|"
    r"parse|advance|consume|start|stop|cancel|send|recv|accept|connect|bind|destroy|"
    r"encrypt|decrypt|sign|mark|inc|dec|incr|decr|swap|sort|reverse|"
    r"merge|extend|truncate|emit|absorb|squeeze|inflate|deflate)(?: |$)")
_SCALAR = re.compile(r"(?:(?:unsigned|signed|const|volatile)\s+)*(?:(?:long\s+){0,2}int|"
                     r"long(?:\s+long)?|short(?:\s+int)?|char|"
                     r"bool|_Bool|BOOL|Bool|boolean|double|float|size_t|ssize_t|Py_ssize_t|"
                     r"Py_hash_t|u?int\d+_t|u?intptr_t|ptrdiff_t|u?int\d*|unsigned|signed|Py_UCS4|time_t|"
                     r"off_t|pid_t|"
                     r"enum\s+\w+|"
                     # a library's integer typedefs: ODBC's SQLUINTEGER, Windows' DWORD, ULONG
                     r"[A-Z_]*(?:INT|INTEGER|LONG|SHORT|SIZE|BOOL|BOOLEAN)[A-Z_0-9]*|DWORD|WORD|BYTE)")
# C functions that only read what they are given (not strcpy/strcat/strtok, which write).
_READS_NAME = re.compile(r"^(?:mem(?:cmp|chr)|str(?:n?len|n?cmp|r?chr|str|n?dup)|f?printf|"
                         r"s?n?printf|assert)$")
_RELEASES = re.compile(r"(?:^| )(?:close|free|release|destroy|delete|dealloc|shutdown|unref|"
                       r"dispose|munmap|unmap|disconnect|detach|cleanup|fclose|closesocket)(?: |$)")
_WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|_+")
# Not a lock: the access runs with the GIL released (Py_BEGIN_ALLOW_THREADS, pybind11's
# gil_scoped_release), so it raced with the other threads under the GIL already.
_DETACHED = "detached"
_NOT_LOCKS = frozenset({"atomic", _DETACHED})


@dataclass(frozen=True, slots=True)
class Touch:
    """One access of an instance field, seen from an entry point."""

    field: str
    kind: str
    path: str
    line: int
    col: int
    function: str  # where the access is written
    entry: EntryPoint
    held: frozenset[str]
    via: str = ""  # the call the access sits in
    # Where the entry point itself calls the helper that makes the access (path, line, col):
    # the place to take the lock. Unset for the entry point's own accesses.
    site: tuple[str, int, int, str] | None = None  # ... and the function making that call
    # The helpers between the entry point and the access, each where it makes the next call
    # (function, path, line, col): a lock can go at any of them.
    chain: tuple[tuple[str, str, int, int], ...] = ()
    value: str = ""  # a constant the access stores
    cond: bool = False  # a read that is only a condition's truth value
    member: str = ""  # the member of an embedded struct the access goes on to
    fills: bool = False  # a store made only while the field is NULL (`if (!self->d) self->d =`)
    stores_call: bool = False  # a store of what a call returns


Span = tuple[int, int, frozenset[str]]  # (from, to, the locks held between)


def helper_spans(fn: FunctionFacts, names: set[str],
                 helpers: dict[str, tuple[str, tuple[str, ...]]]) -> list[Span]:
    """Where ``fn`` holds locks the project's lock helpers take (objects.lock_helpers): from a
    call of a taking helper on the instance to the next call of one that gives them back, and,
    in a giving-back helper itself, from its start to its unlock call."""
    if not helpers:
        return []
    out: list[Span] = []
    own = helpers.get(fn.name)
    if own is not None and own[0] == "drop" and fn.params and fn.params[0].name in names:
        first = fn.params[0].name
        for f in own[1]:
            ends = [c.offset for c in fn.calls if c.name in UNLOCKS and c.args and
                    normalise_expr(c.args[0]) in (f"{first}->{f}", f"{first}.{f}")]
            if ends:
                out.append((fn.start, max(ends), frozenset({f"lock:self.{f}"})))
    for c in fn.calls:
        took = helpers.get(c.name)
        if took is None or took[0] != "take" or not c.args or \
                normalise_expr(c.args[0]) not in names:
            continue
        end = next((d.offset for d in fn.calls if d.offset > c.offset
                    and (drop := helpers.get(d.name)) is not None and drop[0] == "drop"
                    and set(drop[1]) & set(took[1])
                    and normalise_expr(d.args[0] if d.args else "") in names), 1 << 62)
        out.append((c.offset, end, frozenset(f"lock:self.{f}" for f in took[1])))
    return out


def _held(fn: FunctionFacts, offset: int, names: set[str],
          macros: dict[str, MacroFact], spans: list[Span] | None = None) -> set[str]:
    """Synchronisation held at ``offset``, relative to the instance (`cs:self`, `lock:self.m`,
    `lock:self`) or absolute (`lock:<global>`, `cs:<other>`); ``spans``: where the project's
    lock helpers hold locks (helper_spans)."""
    out: set[str] = set()
    for lo, hi, locks in spans or ():
        if lo < offset < hi:
            out |= locks
    # Past an early exit for any thread but the one the instance records as its owner
    # (aiocsv's Parser), only that thread runs: two such entry points never overlap.
    if any(g.shape == "owner" and g.then_end < offset and g.var.split("->")[0] in names
           for g in fn.ifs):
        out.add("owner:self")
    if detached_at(fn, offset):
        out.add(_DETACHED)
    for r in fn.regions:
        end = r.end if r.end >= 0 else 1 << 62
        if not r.begin < offset < end or r.kind == "allow":
            continue
        section = wrapped_section(r, macros) if r.kind == "lock" else ""
        receivers = r.receiver.split(",") if r.kind in ("cs", "cs2") else [
            section or wrapped_lock(r, macros)]
        for raw in receivers:
            x = normalise_expr(raw)
            member = re.fullmatch(r"(\w+)(?:->|\.)(\w+)", x)
            prefix = "cs:" if r.kind in ("cs", "cs2") or section else "lock:"
            if x in names:
                out.add(prefix + "self")
            elif member and member.group(1) in names:
                out.add(f"{prefix}self.{member.group(2)}")
            else:
                out.add(prefix + x)
    return out


def _words(name: str) -> str:
    """`XXH64_update` -> "xxh64 update", `BZ2_bzCompress` -> "bz2 bz compress"."""
    return " ".join(w.lower() for w in _WORD_BREAK.split(name) if w)


def _name(fn: FunctionFacts) -> str:
    return f"{fn.owner}::{fn.name}" if fn.owner else fn.name


def _handed_back(model: ObjectModel, path: str, fn: FunctionFacts, names: set[str]) -> set[str]:
    """pyodbc's `Connection* cnxn = Connection_Validate(self)`: a project function that
    returns the object it is given (or fails) hands back the instance."""
    out: set[str] = set()
    for a in fn.assigns:
        if not a.source or a.target in names:
            continue
        call = next((c for c in fn.calls if c.name == a.source and c.offset > a.offset), None)
        if call is None or not call.args or normalise_expr(call.args[0]) not in names:
            continue
        found = model.resolve(a.source, path)
        if found is not None and _returns_its_first(found[1]):
            out.add(a.target)
    return out


def _returns_its_first(fn: FunctionFacts) -> bool:
    first = {p.name for p in fn.params if p.index == 0} | {
        a for a, i, _cast in fn.aliases if i == 0}
    returned = [j.label for j in fn.jumps if j.kind == "return" and j.label not in (
        "", "NULL", "nullptr")]
    return bool(returned) and all(r in first for r in returned)


def _instance_names(fn: FunctionFacts, index: int, instance: str = "",
                    through: tuple[str, ...] = (), fresh: frozenset[int] = frozenset()
                    ) -> set[str]:
    """``fresh``: the parameters the caller hands an object it has just made (arraykit's
    `copy_to_new(self, new)` after `new = fam_new(...)`): not another shared instance."""
    if index == _THIS:
        return {"this"}
    if index <= _VIEW:
        holders = _instance_names(fn, _VIEW - index)
        # ijson's `__init__` makes the generator it holds and sets it up: its own until stored
        made = {"".join(w.target.split()) for w in fn.field_writes
                if w.source in CONSTRUCTORS or MADE_BY.search(w.source)}
        return {f"{h}->{f}" for h in holders for f in through} - made
    if index == _TYPED:
        typed = pointer_to(instance)
        names = {v.name for v in (*fn.params, *fn.locals) if typed.search(v.type)} | {
            a for a, _i, cast in fn.aliases if cast == instance}
        # An object this function makes is its own until it returns it, under any name it
        # gives it (hyperscan's `loadb()`: `Database *db = (Database *)odb;`).
        return names - _made_here(fn)
    names = {p.name for p in fn.params if p.index == index}
    names |= {a for a, i, _cast in fn.aliases if i == index and i >= 0}
    if names and instance:
        # Other instances of the type it is handed (`getmask(self, mask)`, `richcompare(self,
        # other)`): another thread can change them as well (bitarray 3.9 locks both). Only
        # parameters: a local of the type may be an object this function is still making.
        typed = pointer_to(instance)
        names |= {p.name for p in fn.params if typed.search(p.type) and p.index not in fresh}
        names |= {a for a, i, cast in fn.aliases if i >= 0 and cast == instance
                  and i not in fresh}
    return names


def _made_here(fn: FunctionFacts) -> set[str]:
    """Locals this function points at an object it has just made (`new = fam_new(...)`,
    `copy = PyList_New(n)`), and copies of them."""
    made = {a.target for a in fn.assigns
            if a.source and (a.source in CONSTRUCTORS or MADE_BY.search(a.source))}
    while grown := {a.target for a in fn.assigns if a.copy_of in made} - made:
        made |= grown
    return made


_CALLEE = re.compile(r"\s*(?:\(\s*[\w\s*]+\)\s*)?(\w+)\s*\(")


def _renewed(fn: FunctionFacts, names: set[str]) -> dict[str, int]:
    """Holders (`self->statement`) this function points at an object it has just made
    (`Py_SETREF(self->statement, PyObject_New(...))`), each from where it does: what it then
    does through them sets up that new object, which no other thread has yet (sqlite3's
    cursor, and review 19's sqlcipher3: `pysqlite_statement_create(self->statement, ...)`)."""
    out: dict[str, int] = {}
    for c in fn.calls:
        if c.name in ("Py_SETREF", "Py_XSETREF") and len(c.args) == 2 and (
                target := normalise_expr(c.args[0])) in names and \
                (m := _CALLEE.match(c.args[1])) and (
                    m.group(1) in CONSTRUCTORS or MADE_BY.search(m.group(1))):
            out.setdefault(target, c.offset)
    # (`self->statement = Stmt_New(...)`, a plain store, already takes the holder out of
    # ``names`` for the whole function: _instance_names)
    return out


def touches_of(model: ObjectModel, tp: TypeModel, entry: EntryPoint) -> list[Touch]:
    out: list[Touch] = []
    start = model.resolve(entry.function, tp.path)
    if start is None:
        return out
    path, fn = start
    index = _THIS if fn.owner and fn.owner == tp.instance else 0
    if entry.role == "function":
        index = _TYPED
    if entry.through:
        index = _VIEW
    _collect(model, tp, entry, path, fn, index, frozenset(), 0, {entry.function}, out, None,
             entry.through)
    return out


def _is_state(tp: TypeModel, field: str) -> bool:
    if field in _NOT_STATE:
        return False
    if not tp.fields or field == "ob_size":  # the length of a variable-size object
        return True
    decl = tp.fields.get(field)
    return decl is not None and not decl.is_lock


def _collect(model: ObjectModel, tp: TypeModel, entry: EntryPoint, path: str,
             fn: FunctionFacts, index: int, outer: frozenset[str], depth: int,
             stack: set[str], out: list[Touch], site: tuple[str, int, int, str] | None,
             through: tuple[str, ...] = (), ptrs: tuple[tuple[int, str], ...] = (),
             chain: tuple[tuple[str, str, int, int], ...] = (),
             fresh: frozenset[int] = frozenset()) -> None:
    names = _instance_names(fn, index, tp.instance, through, fresh) if index != _NONE \
        else set()
    if names and index >= 0:
        names |= _handed_back(model, path, fn, names)
    # Parameters that point to a field of the instance (the helper was handed `&self->f`).
    pointed = {p.name: f for i, f in ptrs for p in fn.params if p.index == i}
    if not names and not pointed and not (index == _TYPED and depth == 0):
        return
    spans = helper_spans(fn, names, model.lock_helpers)
    renewed = _renewed(fn, names) if index <= _VIEW else {}
    events: list[tuple[int, int, Touch | None, str, int, tuple[tuple[int, str], ...]]] = []
    for a in fn.accesses:
        if a.base in renewed and a.offset > renewed[a.base]:
            continue  # a new object now, not the one others hold
        field = pointed.get(a.base, "") if a.field == "*" or a.base in pointed else (
            a.field if a.base in names else "")
        if field and _is_state(tp, field):
            held = outer | _held(fn, a.offset, names, model.macros, spans)
            if a.kind == "atomic":
                held |= {"atomic"}
            kind = a.kind
            if a.field != "*" and a.base in pointed:
                # `ctx->acc = ...` in a helper handed `&self->ctx`: the field's contents
                kind = "elem" if kind in WRITES and kind not in ("arg", "addr") else "read"
            decl = tp.fields.get(field)
            if kind == "read" and a.cond == "truth" and decl is not None and decl.is_pointer:
                kind = "test"  # `if (self->address)`: a NULL test in other words
            if kind == "arg" and (decl is None or not decl.is_pointer or decl.is_pyobject
                                  or re.match(r"\s*const\b", decl.type)):
                kind = "read"  # a value handed on is read; only a pointer lets the callee write
            if kind in ("arg", "addr") and a.via and a.via not in model.macros and (
                    found := model.resolve(a.via, path)) is not None:
                # A project function shows what it does with what it is given.
                if kind == "addr" and depth < _HELPER_DEPTH and a.via not in stack:
                    continue  # followed below: the helper's `*p` are the accesses
                position = _arg_position(fn, a)
                kind = "elem" if position is not None and _writes_through(
                    model, found[0], found[1], position, 1) else "read"
            elif kind == "arg" and a.via in model.macros and counts_references(
                    model.macros, a.via, _arg_position(fn, a)):
                kind = "refcount"
            elif kind == "arg" and _context_of_release(fn, a):
                kind = "read"  # `rd_kafka_mem_free(self->rk, str)` frees `str`, not `rk`
            elif kind in ("arg", "addr") and not _changes_what_it_is_given(a.via):
                # A callee named for a change (`XXH64_update`, `BZ2_bzCompress`) is taken to
                # change what it is given; a getter (`X509_get_subject_name`) only reads it.
                kind = "read"
            fills = kind == "write" and a.field != "*" and any(
                g.shape == "null-check" and g.var == f"{a.base}->{a.field}"
                and g.then_start <= a.offset <= g.then_end for g in fn.ifs)
            events.append((a.offset, 0, Touch(field, kind, path, a.line, a.col, _name(fn),
                                              entry, frozenset(held), a.via, site, chain,
                                              a.value, bool(a.cond) and kind == "read",
                                              a.member if a.field != "*" else "", fills,
                                              a.stores_call),
                           "", 0, ()))
    lvalues = set(fn.lvalue_calls)
    for c in fn.calls:
        own = f"{fn.owner}::{c.name}" if index == _THIS else ""
        if own in model.functions and depth < _HELPER_DEPTH and own not in stack:
            events.append((c.offset, 2, None, own, _THIS, ()))  # another member function of it
            continue
        at = [i for i, arg in enumerate(c.args) if (n := normalise_expr(arg)) in names
              and not (n in renewed and c.offset > renewed[n])]
        if index == _TYPED and not at and depth == 0 and c.name not in stack and \
                (h := model.resolve(c.name, path)) is not None and \
                parses_its_arguments(fn, c, h[1], tp.instance):
            at = [_TYPED]
        if through and index <= _VIEW:
            # the view itself handed to a helper (`and1((ViewObject *)lft, rht)`)
            holders = _instance_names(fn, _VIEW - index)
            at += [_VIEW - i for i, arg in enumerate(c.args)
                   if normalise_expr(arg) in holders]
        addrs = tuple((i, m.group(2)) for i, arg in enumerate(c.args)
                      if (m := _ADDRESS.fullmatch("".join(arg.split()))) and m.group(1) in names
                      and _is_state(tp, m.group(2)))
        # The pointer to a field handed on again, by a helper that was handed it.
        onward = tuple((i, pointed[n]) for i, arg in enumerate(c.args)
                       if (n := normalise_expr(arg)) in pointed)
        if onward and c.name not in model.macros and (
                model.resolve(c.name, path) is None or depth >= _HELPER_DEPTH
                or c.name in stack):
            held = frozenset(outer | _held(fn, c.offset, names, model.macros, spans))
            for _i, field in onward:
                kind = "elem" if _changes_what_it_is_given(c.name, handed_on=True) else "read"
                events.append((c.offset, 1, Touch(field, kind, path, c.line, c.col, _name(fn),
                                                  entry, held, c.name, site, chain),
                               "", 0, ()))
        elif onward:
            addrs += onward
        if addrs and not at and c.name not in model.macros and depth < _HELPER_DEPTH \
                and c.name not in stack and model.resolve(c.name, path) is not None:
            events.append((c.offset, 2, None, c.name, _NONE, addrs))
        if not at:
            continue
        macro = model.macros.get(c.name)
        if macro is not None and c.name not in model.functions:
            held = frozenset(outer | _held(fn, c.offset, names, model.macros, spans))
            for i in at:
                if not 0 <= i < len(macro.params):
                    continue
                for field, use in field_uses(macro, i):
                    if not _is_state(tp, field):
                        continue
                    kind = use if use != "read" or c.offset not in lvalues else "elem"
                    events.append((c.offset, 1, Touch(field, kind, path, c.line, c.col,
                                                      _name(fn), entry, held, c.name, site,
                                                      chain),
                                   "", 0, ()))
        elif model.resolve(c.name, path) is not None and depth < _HELPER_DEPTH \
                and c.name not in stack:
            for i in at:
                events.append((c.offset, 2, None, c.name, i, addrs))
    calls_at = {c.offset: c for c in fn.calls}
    made: set[str] | None = None  # worked out at the first helper call
    events.sort(key=lambda e: (e[0], e[1]))
    for offset, _order, touch, callee, i, addrs in events:
        if touch is not None:
            out.append(touch)
            continue
        found = model.resolve(callee, path)
        assert found is not None
        cpath, cfn = found
        held = frozenset(outer | _held(fn, offset, names, model.macros, spans))
        call = calls_at[offset]
        if site is None and callee != f"{fn.name}_impl":
            # Argument Clinic's wrapper only calls its `_impl`: that is the entry point's body.
            here: tuple[str, int, int, str] | None = (path, call.line, call.col, _name(fn))
        else:
            here = site
        deeper = (*chain, (_name(fn), path, call.line, call.col)) if site is not None else chain
        if made is None:
            made = _made_here(fn) - names
        handed = frozenset(j for j, arg in enumerate(call.args)
                           if normalise_expr(arg) in made)
        _collect(model, tp, entry, cpath, cfn, i, held, depth + 1, stack | {callee}, out, here,
                 through, addrs, deeper, handed)


# Calls that end the memory they are given, not only the state of a handle (`fclose` frees
# the FILE; `tiledb_vfs_close` leaves the handle for its own free function).
_FREES_MEMORY = re.compile(r"(?:^| )(?:free|destroy|delete|dealloc|unref|release|dispose|"
                           r"munmap|unmap|fclose)(?: |$)")


def _frees(t: Touch) -> bool:
    return t.kind in ("free", "replace") or (
        t.kind in ("addr", "arg", "elem", "read") and bool(t.via)
        and bool(_FREES_MEMORY.search(_words(t.via))))


def _changes_what_it_is_given(callee: str, *, handed_on: bool = False) -> bool:
    """A C function outside the project named for a change (`XXH64_update`, `BZ2_bzCompress`,
    `PyBuffer_Release(&self->view)`) is taken to change what it is given; a getter
    (`X509_get_subject_name`) or a string function only reads it. A pointer a helper hands on
    (``handed_on``) may be an object: the C API locks the objects it is given itself."""
    if _READS_NAME.match(callee) or (handed_on and callee.startswith(("Py", "_Py"))):
        return False
    return bool(_MUTATING.search(_words(callee)))


# What a release call's later arguments are when the field before them is what it releases:
# `munmap(self->addr, self->size)`, `ldap_unbind_ext(self->ld, NULL, NULL)`.
_NOT_AN_OBJECT = re.compile(r"(?i)^(?:\(\w+\s*\*?\)\s*)?(?:NULL|nullptr|0x?[0-9a-f]*[ul]*|"
                            r"-?\d+|sizeof\b.*|.*(?:size|len|length|count|flags?)\w*)$")


def _context_of_release(fn: FunctionFacts, a: Access) -> bool:
    """A library call named for a release whose first argument is the field and a later one
    another object: the field is the library's context, and the other object is released
    (`rd_kafka_mem_free(self->rk, str)`, `HeapFree(self->heap, 0, p)`,
    `mdb_dbi_close(self->env, self->dbi)`)."""
    if not a.via or not _RELEASES.search(_words(a.via)):
        return False
    found = _call_of(fn, a)
    return found is not None and found[1] == 0 and len(found[0].args) >= 2 and any(
        not _NOT_AN_OBJECT.match(" ".join(arg.split())) for arg in found[0].args[1:])


def _call_of(fn: FunctionFacts, a: Access) -> tuple[CallSite, int] | None:
    """The call an access sits in (its `via`), and which of its arguments the access is."""
    for c in fn.calls:
        if c.name == a.via and c.offset < a.offset < c.end:
            for i, arg in enumerate(c.args):
                if re.search(rf"\b{re.escape(a.base)}\s*->\s*{re.escape(a.field)}\b", arg):
                    return c, i
    return None


def _arg_position(fn: FunctionFacts, a: Access) -> int | None:
    """Which argument of the call it sits in the access is."""
    found = _call_of(fn, a)
    return found[1] if found is not None else None


def _writes_through(model: ObjectModel, path: str, fn: FunctionFacts, position: int,
                    depth: int) -> bool:
    """Whether a project function writes through the pointer it gets at ``position``: to
    its fields, its elements, `*p`, or by handing it on to a function that does."""
    names = {p.name for p in fn.params if p.index == position}
    if not names:
        return False
    if any(a.base in names and a.kind in WRITES and a.kind != "arg" for a in fn.accesses):
        return True
    for c in fn.calls:
        for i, arg in enumerate(c.args):
            if normalise_expr(arg) not in names:
                continue
            if counts_references(model.macros, c.name, i):
                continue  # a reference count of its own, not what the others read
            found = model.resolve(c.name, path) if c.name not in model.macros else None
            if found is not None:
                if depth < _HELPER_DEPTH and _writes_through(model, found[0], found[1], i,
                                                             depth + 1):
                    return True
            elif _changes_what_it_is_given(c.name, handed_on=True):
                return True
    return False


def _member_writers(tp: TypeModel, entry: EntryPoint) -> list[Touch]:
    """Writable PyMemberDef entries: CPython 3.13 stores objects under a critical section on
    the instance and scalars atomically."""
    out = []
    for pyname, field, is_object, cpython in tp.writable_members:
        if _is_state(tp, field):
            held = frozenset(({"cs:self"} if is_object else {"atomic"}) if cpython else ())
            out.append(Touch(field, "replace" if is_object else "write", tp.path, tp.line, 1,
                             "", EntryPoint("", "member", pyname), held))
    return out


def _field_kind(tp: TypeModel, field: str, writers: Iterable[Touch],
                moving: frozenset[str] | set[str] = frozenset()) -> str:
    """``moving``: the pointer fields some entry point reassigns or frees. A length is a size
    only next to one of them: beside a pointer that stays put (pyqt5-sip's `voidptr` and the
    `size` its `setsize()` stores) it is a setting like any other."""
    decl: FieldDecl | None = tp.fields.get(field)
    ws = list(writers)
    if (decl is not None and decl.is_pyobject) or (any(w.kind == "replace" for w in ws) and (
            decl is None)):
        return "object"
    if decl is not None and decl.is_atomic:
        return "atomic"
    if decl is not None and decl.is_pointer and any(w.kind in ("write", "free") for w in ws):
        return "buffer"
    if _SIZE_NAME.search(field) and moving - {field}:
        return "size"
    return "plain"


def _describe(entry: EntryPoint, tp: TypeModel) -> str:
    name = entry.owner or tp.name  # the Python type it belongs to, if judged with another
    if entry.role == "method":
        return f"`{name}.{entry.name}()`"
    if entry.role == "function":
        return f"the module function `{entry.name}()` (on a `{name}` it is given)"
    if entry.role == "view":
        return f"`{entry.name}` (on the `{name}` it holds in `{', '.join(entry.through)}`)"
    if entry.role == "getter":
        return f"the getter of `{name}.{entry.name}`"
    if entry.role == "setter":
        return f"the setter of `{name}.{entry.name}`"
    if entry.role == "member":
        return f"assignment to `{name}.{entry.name}`"
    return f"`{name}`'s {entry.role} (`{entry.function}`)"


def object_state_hits(model: ObjectModel, selected: frozenset[str]) -> list[Hit]:
    hits: list[Hit] = []
    for tp in model.types:
        hits += _type_hits(model, tp, selected)
    return hits


def _type_hits(model: ObjectModel, tp: TypeModel, selected: frozenset[str]) -> list[Hit]:
    per_entry = {e: touches_of(model, tp, e) for e in tp.entries}
    touches_by_entry = per_entry
    iterator = _is_iterator(tp)
    writers: dict[str, list[Touch]] = {}
    mutated: set[str] = set()
    for touches in per_entry.values():
        for t in touches:
            if t.kind in WRITES:
                writers.setdefault(t.field, []).append(t)
                mutated.add(t.field)
    for t in _member_writers(tp, EntryPoint("", "member", "")):
        writers.setdefault(t.field, []).append(t)
        mutated.add(t.field)
    # A hash cached by tp_hash (compute, store, return the stored one) is idempotent.
    mutated -= {f for f in mutated if all(w.entry.role == "tp_hash" for w in writers[f]) or (
        "hash" in f.lower() and all(w.kind == "write" for w in writers[f]))}
    # A flag only ever set to one constant after construction (`self->closed = 1`) by entry
    # points that do not read it first: every interleaving of those stores ends the same, and
    # its readers see it set or not yet set (`if (!self->closed) self->closed = 1;` too). A
    # test-and-act (`if (fd >= 0) { fd = -1; close(...) }`) is not one: two callers can both
    # pass the test and act twice.
    # NULL counts only where no entry point uses the field (nanobind's `tp_vectorcall =
    # nullptr` in its lazy type setup, review 19): a reader could test it, then use it.
    used = {t.field for ts in per_entry.values() for t in ts if t.kind not in ("write", "test")}
    mutated -= {f for f in mutated if (ws := [w for w in writers[f]
                                              if not _reinit(w.entry)])
                and all(w.kind == "write" and w.value and w.value == ws[0].value for w in ws)
                and (ws[0].value not in ("NULL", "nullptr") or f not in used)
                and all(t.kind in ("write", "test") or t.cond for w in ws
                        for t in per_entry.get(w.entry, ()) if t.field == f)}
    # A field filled only while it is NULL, under a lock, and never replaced or freed while
    # the object lives (wrapt's `if (!self->dict) self->dict = PyDict_New();` inside a
    # critical section, the porting guide's lazy creation): readers see NULL or the one
    # object, which stays until the object dies (review 15: newrelic's vendored wrapt).
    mutated -= {f for f in mutated if (ws := [w for w in writers[f] if not _reinit(w.entry)])
                and all(w.fills and w.held - _NOT_LOCKS for w in ws)}
    moving = {f for f in mutated if (d := tp.fields.get(f)) is not None and d.is_pointer
              and not d.is_pyobject and any(w.kind in ("write", "free", "replace", "addr")
                                            for w in writers[f])}
    # Fields whose value some entry point hands to a call that ends what it names (spidev's
    # `close(self->fd)`): handles, not settings, whatever their C type.
    handles = {t.field for ts in per_entry.values() for t in ts
               if t.via and t.kind in ("read", "arg") and _RELEASES.search(_words(t.via))}
    # ... and those some entry point hands to a call that frees their memory (`fclose(fp)`)
    freed = {t.field for ts in per_entry.values() for t in ts if _frees(t)}
    # (Not in a type some entry point of which frees memory: `self->cur = self->buf + n`
    # dangles once `close()` frees `buf`.)
    settings = frozenset() if freed or handles else _pointer_settings(tp, mutated, writers,
                                                                      per_entry)
    kinds = {f: "plain" if f in settings else _field_kind(tp, f, writers.get(f, ()), moving)
             for f in mutated}
    findings: list[tuple[EntryPoint, str, Touch, list[str], list[Touch], list[Touch], bool,
                         bool]] = []
    # Fields only ever stored while NULL (a lazy creation without a lock): the entry points
    # that fill them race with each other (two fills, one object leaked, an item added to
    # it lost), but one that only reads sees NULL or an object nobody frees while the
    # instance lives (review 18: iteration_utilities' `Seen.seenlist` in `__eq__`).
    filled = {f for f in mutated if (ws := [w for w in writers[f] if not _reinit(w.entry)])
              and all(w.fills for w in ws)}
    # ... and `PyObject *` fields only ever stored, the old value neither read first nor
    # released by any entry point (arraykit's `TriMap.finalize()`: `tm->final_src_fill =
    # AK_nonzero_1d(...)` once, behind its own flag): a second store leaks the first object,
    # never frees it, so a reader has the old object or the new, both alive. Their stores
    # race with each other and stay reported.
    stored_once = {f for f in mutated - filled if _stored_never_released(tp, f, writers[f],
                                                                          per_entry)}
    for e, touches in per_entry.items():
        by_rule: dict[str, tuple[Touch, list[str], list[Touch]]] = {}
        fills_here = {t.field for t in touches if t.fills}
        # Rules whose races here all involve __init__ being called again on a live object:
        # real (the port of wrapt locks exactly that), but rare enough to be information.
        beyond_init: set[str] = set()
        helpers: dict[str, dict[str, Touch]] = {}  # rule -> helper function -> first access
        earlier: dict[str, tuple[Touch, list[Touch]]] = {}  # races the GIL never prevented
        # rule -> (access, the writers it races with, whether one is a method of the live
        # object rather than a re-run `__init__`)
        candidates: dict[str, list[tuple[Touch, list[Touch], bool]]] = {}
        # Fields this entry point also reaches under a lock: an unlocked read of such a scalar
        # is a fast path checked again under the lock (psycopg2's `close()`: `if
        # (self->closed == 1) return;`, then the lock and the same test).
        rechecked = {t.field for t in touches if t.held - _NOT_LOCKS and
                     (t.cond or t.kind == "test") and _is_scalar(tp, t.field)}
        for t in touches:
            # A NULL test uses nothing: the use that follows it is the access that counts.
            if t.field not in mutated or t.kind in ("atomic", "test") or \
                    kinds[t.field] == "atomic":
                continue
            locks = t.held - {_DETACHED}
            if t.cond and not locks and t.field in rechecked:
                continue
            if (t.field in filled and t.field not in fills_here) or (
                    t.field in stored_once and t.kind != "write"
                    and not any(w.entry == e for w in writers[t.field])):
                continue  # any use but a store: a read, `Py_INCREF`, handing it on
            # An access under some lock is this entry point's own part done: it is reported
            # only where the writers hold another lock. Where a writer holds none, the
            # writer's own entry point is the line to change, and is reported there.
            # A node's reference count races with the other counts, not with its readers.
            against = [w for w in writers[t.field]
                       if "atomic" not in w.held and not (w.held & locks)
                       and (not locks or w.held - {_DETACHED})
                       and (w.kind != "refcount" or t.kind == "refcount")]
            # gmpy2's `context.ctx.mpfr_prec` read while others only update `ctx.underflow`:
            # members of an embedded struct apart from each other
            if t.kind in ("read", "test") and t.member and all(
                    w.member and w.member != t.member for w in against):
                continue
            if not against:
                continue
            # The notes name the writers that matter first: a method that frees or replaces
            # the field (apsw's `close()`: `self->db = 0` after `sqlite3_close`) before a
            # re-run `__init__`.
            against.sort(key=lambda w: (_reinit(w.entry),
                                        w.kind not in ("free", "replace")))
            rule = _rule_for(e, kinds[t.field], iterator)
            if rule not in selected:
                continue
            if (_DETACHED in t.held or all(_DETACHED in w.held for w in against)) and not (
                    t.field in freed or _frees(t) or any(map(_frees, against))):
                # It raced under the GIL too, and frees nothing: FT048's business, information
                # here, unless the entry point also races where the GIL used to serialise it.
                # One that can free the memory twice or use it after it is freed (libyal's
                # `close()`: `libbfio_handle_free(&self->file_io_handle)` with the GIL
                # released) stays serious: the port is when it gets fixed.
                earlier.setdefault(rule, (t, against))
                continue
            live = not _reinit(e) and any(not _reinit(w.entry) for w in against)
            candidates.setdefault(rule, []).append((t, against, live))
        for rule, found in candidates.items():
            # Where some race here is with a method of the live object, fields only a re-run
            # `__init__` writes are not what to lead with, nor to list (review 19: sqlite's
            # `commit()` led with `check_same_thread`, set in `__init__`, not `db`, which
            # `close()` closes).
            if any(live for _t, _a, live in found):
                beyond_init.add(rule)
            for t, against, live in found:
                if rule in beyond_init and not live:
                    continue
                first, fields, others = by_rule.setdefault(rule, (t, [], []))
                if t.function != first.function:  # a helper, or the _impl behind clinic's
                    helpers.setdefault(rule, {}).setdefault(t.function, t)
                if t.field not in fields:
                    fields.append(t.field)
                    places = {(w.field, w.path, w.line) for w in others}
                    for w in against:
                        if (w.field, w.path, w.line) not in places and \
                                len(places) < 2 * len(fields):
                            places.add((w.field, w.path, w.line))
                            others.append(w)
        for rule, (first, fields, others) in by_rule.items():
            findings.append((e, rule, first, fields, others, list(helpers.get(rule, {}).values()),
                             rule not in beyond_init, False))
        for rule, (t, against) in earlier.items():
            if rule not in by_rule:
                findings.append((e, rule, t, [t.field], against[:2], [], False, True))
    if not findings:
        return []
    to_fix = sorted({_describe(e, tp) for e, *_ in findings})
    hits: list[Hit] = []
    for e, rule, first, fields, others, more, init_only, under_gil in findings:
        shown = ", ".join(f"`{f}`" for f in fields[:4]) + (
            f" and {len(fields) - 4} more" if len(fields) > 4 else "")
        kinds_here = {kinds[f] for f in fields}
        severity = None
        if rule == "FT034":
            severity = "error" if kinds_here & {"buffer", "size"} else "warning"
        if init_only or under_gil or _benign(tp, fields, kinds, writers, touches_by_entry[e],
                                             handles, settings, e.role):
            severity = "info"
        where = f"{_describe(e, tp)} uses {shown} of the instance"
        if under_gil:
            where += (" (with the GIL released here or in the code writing it: a race the GIL "
                      "never prevented, so free threading does not add it)")
        if init_only:
            where += (" (only when `__init__` or `__setstate__` is called again on an object "
                      "other threads already use)")
        if "::" in e.function:
            where += (" (a C++ class bound without a lock: a `std::mutex` member taken with "
                      "`std::lock_guard` in each of them, or pybind11's "
                      "`py::scoped_critical_section` on the Python object, serves)")
        packed = [(f, mates) for f in fields if (mates := _word_mates(tp, f))]
        if packed:
            f, mates = packed[0]
            where += (f" (`{f}` is a bitfield: a store to it rewrites the bits it shares with "
                      + ", ".join(f"`{m}`" for m in mates) + ", so it can undo their stores)")
        if tp.documented_unsafe:
            where += (" (the type documents itself as not thread-safe: keep that in its "
                      "free-threading documentation, or lock it)")
        notes = [Note(message=f"`{w.field}` is {_verb(w)} by {_describe(w.entry, tp)}"
                              + ("" if not w.held - {_DETACHED} else " holding "
                                 + ", ".join(sorted(w.held - {_DETACHED})))
                              + (" with the GIL released" if _DETACHED in w.held else ""),
                      location=Location(path=w.path, line=w.line, column=w.col))
                 for w in others[:_MAX_NOTES]]
        path, line, col, function = first.site or (first.path, first.line, first.col,
                                                   first.function)
        if first.site is not None:
            notes.insert(0, Note(message=f"the access, in `{first.function}` called from here: "
                                         f"`{first.field}`",
                                 location=Location(path=first.path, line=first.line,
                                                   column=first.col)))
        also = f", like {', '.join(f'`{a}`' for a in tp.also)}" if tp.also else ""
        notes += [Note(message=f"also in `{h.function}`, called from this entry point: "
                               f"`{h.field}`",
                       location=Location(path=h.path, line=h.line, column=h.col))
                  for h in more[:_MAX_HELPERS]]
        named = {first.function} | {h.function for h in more[:_MAX_HELPERS]}
        via = {c[0]: c for t in (first, *more[:_MAX_HELPERS]) for c in t.chain
               if c[0] not in named}
        notes += [Note(message=f"through `{fname}`, on the way to the access: a lock taken "
                               "there would cover it too",
                       location=Location(path=cpath, line=cline, column=ccol))
                  for fname, cpath, cline, ccol in list(via.values())[:_MAX_HELPERS]]
        notes.append(Note(message=f"type `{tp.name}` (instance `{tp.instance or '?'}`{also}): lock "
                                  f"these entry points together: {', '.join(to_fix[:12])}"
                                  + (f" and {len(to_fix) - 12} more" if len(to_fix) > 12
                                     else ""),
                          location=Location(path=tp.path, line=tp.line)))
        hits.append(Hit(rule=rule, path=path, line=line, col=col,
                        symbol=f"{tp.name}.{fields[0]}", where=where,
                        function=function or None, severity=severity, notes=tuple(notes)))
    return hits


def _word_mates(tp: TypeModel, field: str) -> list[str]:
    """The bitfields declared next to ``field`` without a non-bitfield between (psycopg2's
    `closed:1; notuples:1; withhold:1`): stores to any of them rewrite the others."""
    decl = tp.fields.get(field)
    if decl is None or not decl.is_bitfield:
        return []
    runs: list[list[str]] = [[]]
    for name, d in tp.fields.items():
        if d.is_bitfield:
            runs[-1].append(name)
        elif runs[-1]:
            runs.append([])
    run = next((r for r in runs if field in r), [])
    return [m for m in run if m != field]


def _is_scalar(tp: TypeModel, field: str) -> bool:
    decl = tp.fields.get(field)
    return decl is not None and not decl.is_pointer and bool(_SCALAR.fullmatch(decl.type.strip()))


def _stored_never_released(tp: TypeModel, field: str, ws: list[Touch],
                           per_entry: dict[EntryPoint, list[Touch]]) -> bool:
    decl = tp.fields.get(field)
    if decl is None or not decl.is_pyobject:
        return False
    live = [w for w in ws if not _reinit(w.entry)]
    if not live or any(w.kind != "write" for w in live):
        return False
    for touches in per_entry.values():
        mine = [t for t in touches if t.field == field]
        if any(t.kind in ("replace", "free", "refcount") or (t.via and (
                _frees(t) or "DECREF" in t.via.upper())) for t in mine):
            return False
        # Something added to the object a store then replaces is lost with it
        # (`PyDict_SetItemString(self->dict, ...)` while another call stores a new dict).
        if any(t.via and _ADDS_TO.search(t.via) for t in mine):
            return False
        # `old = self->f; self->f = v; Py_XDECREF(old);`: a plain read, then stored over.
        # A test first, or a use on the path that returns early (`if (self->f != NULL)
        # return Py_NewRef(self->f);`, turbohtml's `Token.data`), keeps nothing to release.
        # (touches come in the order the entry point makes them, helpers' at their calls)
        last = max((i for i, t in enumerate(mine) if t.kind == "write"), default=-1)
        if last > 0 and any(t.kind == "read" and not t.via and not t.cond
                            for t in mine[:last]):
            return False
    return True


# C API calls that change the container they are given
_ADDS_TO = re.compile(r"(?:SetItem|SetAttr|Append|Insert|Extend|Update|Merge|SetSlice|DelItem"
                      r"|DelAttr|Clear|Reverse|Sort|Add|Discard|Pop)")


def _pointer_settings(tp: TypeModel, fields: set[str], writers: dict[str, list[Touch]],
                      per_entry: dict[EntryPoint, list[Touch]]) -> frozenset[str]:
    """Pointer fields that are settings, not buffers: only ever stored whole (never NULL,
    never what a call returns: `fopen()`'s new handle, `PyUnicode_AsUTF8()`'s borrowed bytes;
    never freed, reallocated, written through or handed to a call that changes what they
    point to), by entry points that release nothing and resize nothing while they store
    them (libvalkey's `set_encoding()`: `self->encoding = encoding`, the name of a codec).
    A reader sees the old pointer or the new one, and both still point to live memory. A
    pointer stored beside a release (`self->data = PyBytes_AS_STRING(o)` as `Py_SETREF`
    drops the old bytes) or beside a length is a buffer."""
    def moves(t: Touch) -> bool:
        if _frees(t):
            return True
        if t.kind not in WRITES:
            return False
        other = tp.fields.get(t.field)
        return bool(_SIZE_NAME.search(t.field)) or (other is not None and other.is_pyobject)

    out = set()
    for f in fields:
        d = tp.fields.get(f)
        ws = writers.get(f, [])
        if d is None or not d.is_pointer or d.is_pyobject or not ws or any(
                w.kind != "write" or w.value or w.stores_call for w in ws):
            continue
        if not any(moves(t) for w in ws for t in per_entry.get(w.entry, ())):
            out.add(f)
    return frozenset(out)


def _benign(tp: TypeModel, fields: list[str], kinds: dict[str, str],
            writers: dict[str, list[Touch]], touches: list[Touch],
            handles: set[str] | frozenset[str] = frozenset(),
            settings: frozenset[str] = frozenset(), role: str = "") -> bool:
    """Races that tear nothing: an entry point whose only unlocked access is a read of one
    plain scalar (`len()`, `tell()`, a flag checked before the lock is taken: a stale value,
    never a torn one), or writes that only go through a buffer
    pointer nobody reassigns or frees (its bytes race like a memoryview's). ``settings``:
    pointer fields that are stored like scalars (_pointer_settings)."""
    # What this entry point does under no lock: its locked accesses are not the race.
    mine = [t for t in touches if t.field in fields and not t.held - {_DETACHED}]
    decls = [tp.fields.get(f) for f in fields]
    # A pointer setting read twice can be two pointers: `strlen(self->sep)` of one, then
    # `memcpy(..., self->sep, n)` from the other.
    scalars = all(_is_scalar(tp, f) or (
        f in settings and sum(t.field == f and t.kind != "write" for t in mine) <= 1)
        for f in fields)
    reads_only = all(t.kind in ("read", "test") for t in mine)
    if len(fields) == 1 and kinds[fields[0]] in ("plain", "size") and scalars and reads_only:
        return True
    # A repr or str that only reads plain values (no pointer it could follow into freed
    # memory): a string mixing old and new values at worst (review 21: hayahash's repr of
    # its seed and of the total its `update()` counts).
    if role in ("tp_repr", "tp_str") and mine and reads_only and all(
            kinds[f] == "plain" and (d := tp.fields.get(f)) is not None and not d.is_pointer
            for f in fields):
        return True
    # Plain reads of one member of what a field holds, where no entry point moves the field
    # itself (what it points to, or the struct it is, changes only through calls and member
    # stores): one word, stale at worst (review 20: geventhttpclient's `get_code()` returns
    # `self->parser->status_code`; zlib-state's `total_in()`, `self->zst.total_in`). Not a
    # call on the field: a library function can read many words of it (a hash's digest).
    def stable(f: str) -> bool:
        d = tp.fields.get(f)
        return d is not None and all(
            w.kind in ("arg", "elem") or (w.kind == "addr" and not d.is_pointer)
            for w in writers[f])
    if mine and all(t.kind in ("read", "test") and t.member and not t.via for t in mine) and \
            all(map(stable, fields)):
        return True
    # Several settings read once each (sysv_ipc's `acquire()` copies `op_flags` and `id`):
    # each stale, none torn from the others. Not fields one entry point updates together
    # (a hasher's `h1`, `h2` and `length`: a digest of half an update), nor a size.
    together = [{w.entry for w in writers[f] if not _reinit(w.entry)} for f in fields]
    apart = all(not (a & b) for i, a in enumerate(together) for b in together[i + 1:])
    if scalars and reads_only and apart and all(kinds[f] == "plain" for f in fields):
        return True
    # Plain stores of flags and settings, none read here first (`reset_activity()`:
    # `self->activity = 0`, `__exit__`: `self->entered = 0`): the last store wins, as under a
    # lock. So for a setting stored and then used (RPi.GPIO's `ChangeFrequency()`: `self->freq
    # = f;` and the next line hands `self->freq` on): a read after its own store sees that
    # store or a later one, each a value some caller set. Not a size (it has to agree with its
    # buffer), a bitfield (its store rewrites its neighbours), a test-and-set (the test is a
    # read before the store) or a handle some method closes.
    def stored_or_read(f: str) -> bool:
        own = [t.kind for t in mine if t.field == f]
        return bool(own) and set(own) <= {"write", "read", "test"} and (
            own[0] == "write" or "write" not in own)
    # ... unless another entry point updates the field under a lock: the maintainer locks
    # it, and a store bypassing the lock can undo an update in the middle (the store is lost,
    # or `pos++` lands on the value from before the reset).
    locked_updates = any(w.kind == "rmw" and w.held - _NOT_LOCKS
                         for f in fields for w in writers[f])
    only_stores = bool(mine) and all(t.kind == "write" for t in mine)
    stored_first = not handles & set(fields) and apart and all(map(stored_or_read, fields))
    if scalars and not locked_updates and all(kinds[f] == "plain" and not d.is_bitfield
                       for f, d in zip(fields, decls, strict=True) if d is not None) and \
            (only_stores or stored_first):
        return True
    return all(kinds[f] in ("plain", "size") and all(w.kind == "elem" for w in writers[f])
               for f in fields) and any(kinds[f] == "plain" for f in fields) and all(
        w.kind == "elem" for f in fields for w in writers[f])


def _verb(t: Touch) -> str:
    if t.kind == "free" and "alloc" in t.via.lower():
        return "reallocated"
    if t.kind == "refcount":
        return f"reference-counted with `{t.via}`"
    return {"replace": "replaced", "free": "freed", "rmw": "updated", "elem": "written through",
            "addr": f"handed by address to `{t.via}`", "arg": f"handed to `{t.via}`",
            }.get(t.kind, "written")


def _reinit(e: EntryPoint) -> bool:
    """`__init__` and `__setstate__`: Python runs them on an object it is making (unpickling
    calls `__setstate__` on a new one); only a caller who runs them again on a live, shared
    object races with the other entry points."""
    return e.role == "tp_init" or (e.role == "method" and e.name == "__setstate__")


def _is_iterator(tp: TypeModel) -> bool:
    """An iterator or generator: `tp_iternext`, `am_send`, or a `__next__`/`throw` method.
    A `send()` alone is a socket's or a watcher's (cassandra's libev `Async.send`)."""
    return any(e.role in _ITERATOR_ROLES or (e.role == "method" and e.name in ("__next__",
                                                                              "throw"))
               for e in tp.entries)


def _rule_for(e: EntryPoint, kind: str, iterator: bool) -> str:
    if kind == "object":
        return "FT033"
    if e.role in _ITERATOR_ROLES or (iterator and e.role == "method"
                                     and e.name in _ITERATOR_NAMES):
        return "FT074"
    return "FT034"
