"""C-API names CPython removed before 3.13 (FT145): the table (rules/removed-c-api.toml, generated
from the headers of each version by tools/removed_c_api.py) and how a finding words one. The C
front end looks names up in each file's `api_names` facts; the Cython front end in the names a
module declares in `cdef extern` blocks or cimports from `cpython` and then uses."""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from gilaudit._toml import tomllib
from gilaudit.frontends.contract import Hit
from gilaudit.model import Location, Note

__all__ = ["BUILD_CORE", "C_DEFINE", "LVALUES", "Removed", "Use", "describe", "file_hit",
           "removed_names", "table_digest", "wanted_names"]


@dataclass(frozen=True, slots=True)
class Removed:
    name: str
    removed: str  # the first version whose public headers lack it
    internal: bool  # still in CPython's internal headers (reachable with Py_BUILD_CORE)
    use: str  # what to use instead ("" when the table names nothing)


# `Py_TYPE(o) = t`: the accessors stopped being l-values (the setters exist since 3.9).
LVALUES = {
    "Py_TYPE": Removed("Py_TYPE", "3.11", False, "`Py_SET_TYPE(o, t)` (3.9; pythoncapi-compat)"),
    "Py_SIZE": Removed("Py_SIZE", "3.11", False, "`Py_SET_SIZE(o, n)` (3.9; pythoncapi-compat)"),
    "Py_REFCNT": Removed("Py_REFCNT", "3.10", False,
                         "`Py_SET_REFCNT(o, n)` (3.9; pythoncapi-compat)"),
}


# `#define _PyLong_AsInt PyLong_AsInt`: a project's own definition of a `Py...` name (in C, or
# in the C a Cython `cdef extern from *` block pastes in).
C_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(_?Py\w+)", re.MULTILINE)

# Defined by code built as part of CPython (or by an extension that borrows its internals).
BUILD_CORE = frozenset({"Py_BUILD_CORE", "Py_BUILD_CORE_MODULE", "Py_BUILD_CORE_BUILTIN"})


@functools.cache
def _table_bytes() -> bytes:
    return (resources.files("gilaudit") / "rules" / "removed-c-api.toml").read_bytes()


@functools.cache
def table_digest() -> str:
    """Part of the C facts cache's key: the facts keep only the names the table knows."""
    return hashlib.sha256(_table_bytes()).hexdigest()[:16]


@functools.cache
def wanted_names() -> frozenset[str]:
    """The names a file's `api_names` facts keep: the removed ones, what says the code is
    built as part of CPython, and the accessors that stopped being l-values."""
    return frozenset(removed_names()) | BUILD_CORE | frozenset(LVALUES)


@functools.cache
def removed_names() -> dict[str, Removed]:
    table = tomllib.loads(_table_bytes().decode("utf-8"))
    return {e["name"]: Removed(e["name"], e["removed"], bool(e.get("internal", False)),
                               str(e.get("use", "")))
            for e in table.get("removed", [])}


def describe(entry: Removed, *, lvalue: bool = False) -> str:
    """The `where` of a finding: what happened to the name, and what to use instead."""
    if lvalue:
        said = f"is assigned to, and is no longer an l-value since CPython {entry.removed}"
    elif entry.internal:
        said = f"was removed from the public C API in CPython {entry.removed} " \
               "(it is internal to CPython now)"
    else:
        said = f"was removed from the C API in CPython {entry.removed}"
    return f"{said}; use {entry.use} instead" if entry.use else said


@dataclass(frozen=True, slots=True)
class Use:
    """The first use of one removed name in a file."""

    line: int
    col: int
    symbol: str  # the name, or `Py_TYPE(...) =` for an assignment to an accessor
    entry: Removed
    lvalue: bool = False


def file_hit(path: str, uses: list[Use]) -> Hit:
    """One FT145 finding per file, at its first removed name, the others as notes: the file is
    ported as a whole, and a copy of an old CPython module can hold dozens of them."""
    first, *rest = sorted(uses, key=lambda u: (u.line, u.col))
    where = describe(first.entry, lvalue=first.lvalue)
    if rest:
        where += f"; and {len(rest)} more removed name{'s' if len(rest) > 1 else ''} " \
                 "in this file (notes)"
    notes = tuple(Note(message=f"`{u.symbol}` {describe(u.entry, lvalue=u.lvalue)}",
                       location=Location(path=path, line=u.line)) for u in rest)
    return Hit(rule="FT145", path=path, line=first.line, col=first.col, symbol=first.symbol,
               where=where, notes=notes)
