"""Shared mutable state: globals written at run time (FT040), lazy initialisation (FT041,
FT042) and libc functions with hidden static state (FT046)."""

from __future__ import annotations

from collections.abc import Iterator

from gilaudit.frontends.c.context import ProjectIndex, in_region, runs_after_init
from gilaudit.frontends.c.facts import FileFacts, FunctionFacts, Var
from gilaudit.frontends.contract import Hit
from gilaudit.frontends.libc import NON_REENTRANT

__all__ = ["lazy_writes", "match_lazy_init", "match_libc", "match_static_writes"]

_GUARDS = ("lock", "cs", "cs2")



def _shared_vars(facts: FileFacts, fn: FunctionFacts) -> dict[str, Var]:
    out = {g.name: g for g in facts.globals if g.storage != "function-static"}
    out.update({v.name: v for v in fn.locals if v.storage == "function-static"})
    return out


def _unsynchronised(var: Var) -> bool:
    return not (var.is_const or var.is_atomic or var.is_tls)


# Lazy caches whose every racing thread stores an equal, immortal-ish value: still a data race
# (publication without ordering), but one that cannot double-free or leak much.
_IDEMPOTENT_INIT = frozenset({
    "PyUnicode_InternFromString", "PyUnicode_FromString", "PyBytes_FromString",
    "PyLong_FromLong", "PyTuple_New", "Py_BuildValue",
})


def lazy_writes(facts: FileFacts, fn: FunctionFacts) -> list[tuple[str, int, int, int, str]]:
    """(variable, line, col, offset, rule) for writes that complete a lazy initialisation."""
    shared = _shared_vars(facts, fn)
    out = []
    for guard in fn.ifs:
        var = shared.get(guard.var)
        if var is None or not _unsynchronised(var):
            continue
        if guard.shape == "null-check":
            lo, hi = guard.then_start, guard.then_end
        else:
            lo, hi = guard.then_end, fn.end
        for w in fn.global_writes:
            if w.name == guard.var and lo <= w.offset <= hi and w.detail in ("=", "|="):
                rule = "FT041" if var.is_pointer else "FT042"
                out.append((w.name, w.line, w.col, w.offset, rule))
                break
    return out


def match_lazy_init(facts: FileFacts, index: ProjectIndex,
                    selected: frozenset[str]) -> Iterator[Hit]:
    """FT041 / FT042: `if (x == NULL) x = ...;` on shared state, outside module init."""
    for fn in facts.functions:
        if fn.name in index.init_only and not fn.deferred:
            continue
        seen: set[str] = set()
        sources = {a.offset: a.source for a in fn.assigns}
        for name, line, col, offset, rule in lazy_writes(facts, fn):
            if name in seen or in_region(fn.regions, offset, _GUARDS) \
                    or not runs_after_init(fn, index, offset):
                continue
            seen.add(name)
            source = next((s for off, s in sources.items() if offset <= off < offset + 4), "")
            yield Hit(rule=rule, path=facts.path, line=line, col=col, symbol=name,
                      where=f"`{fn.name}`", function=fn.name,
                      severity="warning" if source in _IDEMPOTENT_INIT else None)


def match_static_writes(facts: FileFacts, index: ProjectIndex,
                        selected: frozenset[str]) -> Iterator[Hit]:
    """FT040: a static or global written after import by code any thread can run."""
    for fn in facts.functions:
        if (fn.name in index.init_only and not fn.deferred) or not fn.global_writes:
            continue
        shared = _shared_vars(facts, fn)
        lazy = {name for name, *_ in lazy_writes(facts, fn)}
        done: set[str] = set()
        for w in fn.global_writes:
            var = shared.get(w.name)
            if var is None or w.name in done or w.name in lazy or not _unsynchronised(var):
                continue
            if not runs_after_init(fn, index, w.offset):
                continue
            if in_region(fn.regions, w.offset, _GUARDS):
                continue
            done.add(w.name)
            yield Hit(rule="FT040", path=facts.path, line=w.line, col=w.col, symbol=w.name,
                      where=f"`{fn.name}`", function=fn.name,
                      severity="error" if var.is_pyobject else None)


def match_libc(facts: FileFacts, index: ProjectIndex,
               selected: frozenset[str]) -> Iterator[Hit]:
    """FT046: libc calls that keep static state, from code that runs after import."""
    defined = {fn.name for fn in facts.functions}
    for fn in facts.functions:
        if fn.name in index.init_only and not fn.deferred:
            continue
        for call in fn.calls:
            repl = NON_REENTRANT.get(call.name)
            if repl is None or call.name in defined or not runs_after_init(fn, index,
                                                                            call.offset):
                continue
            if in_region(fn.regions, call.offset, ("lock",)):
                continue
            yield Hit(rule="FT046", path=facts.path, line=call.line, col=call.col,
                      symbol=call.name, where=f"`{repl}`", function=fn.name)
