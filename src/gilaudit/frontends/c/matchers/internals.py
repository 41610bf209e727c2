"""Object internals: reference-count tricks (FT030, FT031), the per-object mutex (FT036) and
PyObject* fields replaced or lent out without a lock (FT033)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from gilaudit.frontends.c.context import ProjectIndex, in_region, normalise_expr
from gilaudit.frontends.c.facts import FileFacts, FunctionFacts
from gilaudit.frontends.contract import Hit

__all__ = ["match_member_tokens", "match_unsynchronised_fields"]

_REPLACE = frozenset({"Py_SETREF", "Py_XSETREF", "Py_CLEAR"})
_LEND = frozenset({"Py_NewRef", "Py_XNewRef"})
_INCREF = frozenset({"Py_INCREF", "Py_XINCREF"})


def _function_at(facts: FileFacts, offset: int) -> str | None:
    for fn in facts.functions:
        if fn.start <= offset <= fn.end:
            return fn.name
    return None


def match_member_tokens(facts: FileFacts, index: ProjectIndex,
                        selected: frozenset[str]) -> Iterator[Hit]:
    """FT030 (`Py_REFCNT(x) == 1`), FT031 (`->ob_refcnt`), FT036 (`ob_mutex`)."""
    for m in facts.members:
        fn = _function_at(facts, m.offset)
        if m.name == "Py_REFCNT":
            yield Hit(rule="FT030", path=facts.path, line=m.line, col=m.col, symbol="Py_REFCNT",
                      where=f"`{m.detail}`", function=fn)
        elif m.name == "ob_refcnt":
            yield Hit(rule="FT031", path=facts.path, line=m.line, col=m.col, symbol="ob_refcnt",
                      function=fn)
            if m.detail and "FT031" not in selected:
                # With FT031 on, the field's absence is the finding; the comparison goes with it.
                yield Hit(rule="FT030", path=facts.path, line=m.line, col=m.col,
                          symbol="ob_refcnt", where=f"`ob_refcnt {m.detail}`", function=fn)
        elif m.name == "ob_mutex":
            yield Hit(rule="FT036", path=facts.path, line=m.line, col=m.col, symbol="ob_mutex",
                      function=fn)


def _self_field(arg: str, self_name: str) -> str | None:
    m = re.fullmatch(rf"{re.escape(self_name)}->(\w+)", normalise_expr(arg))
    return m.group(1) if m else None


def _guarded(fn: FunctionFacts, offset: int, self_name: str) -> bool:
    return bool(in_region(fn.regions, offset, ("cs", "cs2"), self_name)
                or in_region(fn.regions, offset, ("lock",)))


def _replaced_after_init(facts: FileFacts, index: ProjectIndex) -> set[str]:
    """Fields some method replaces after construction: only those can change under a reader."""
    out: set[str] = set()
    for fn in facts.functions:
        if fn.name in index.init_only or index.is_lifecycle(fn):
            continue
        for call in fn.calls:
            if call.name in _REPLACE and call.args:
                m = re.fullmatch(r"\w+->(\w+)", normalise_expr(call.args[0]))
                if m:
                    out.add(m.group(1))
        out.update(w.target.split("->", 1)[1] for w in fn.field_writes)
    return out


def match_unsynchronised_fields(facts: FileFacts, index: ProjectIndex,
                                selected: frozenset[str]) -> Iterator[Hit]:
    """FT033: a method replaces `self->f`, or lends it out while another method replaces it,
    with no critical section on `self`."""
    replaced = _replaced_after_init(facts, index)
    for fn in facts.functions:
        if not fn.params or fn.name in index.init_only or index.is_lifecycle(fn):
            continue
        if not index.is_python_callable(fn):
            continue
        self_name = fn.params[0].name
        returns = sorted(j.offset for j in fn.jumps if j.kind == "return")
        reported: set[str] = set()
        for call in fn.calls:
            if not call.args:
                continue
            name = call.name
            field = _self_field(call.args[0], self_name)
            if field is None:
                continue
            lends = False
            if name in _LEND:
                # `return Py_NewRef(self->f);`: the return statement starts just before the call.
                lends = any(0 < call.offset - r < 12 for r in returns)
            elif name in _INCREF:
                # `Py_INCREF(self->f); return self->f;`: the next statement is the return.
                nxt = [r for r in returns if r > call.offset]
                lends = bool(nxt) and not any(call.end <= c.offset < nxt[0] for c in fn.calls)
            if name not in _REPLACE and not (lends and field in replaced):
                continue
            if _guarded(fn, call.offset, self_name) or field in reported:
                continue
            reported.add(field)
            yield Hit(rule="FT033", path=facts.path, line=call.line, col=call.col, symbol=field,
                      where=f"`{self_name}->{field}`", function=fn.name)
