"""Object internals: reference-count tricks (FT030, FT031), the per-object mutex (FT036) and
the state of the extension's own objects (FT033, FT034, FT074)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from gilaudit.frontends.c.context import ProjectIndex, classify_receiver
from gilaudit.frontends.c.facts import FileFacts, FunctionFacts
from gilaudit.frontends.contract import Hit

__all__ = ["match_member_tokens", "match_object_state"]

_REPLACE = frozenset({"Py_SETREF", "Py_XSETREF", "Py_CLEAR"})
_LEND = frozenset({"Py_NewRef", "Py_XNewRef"})
_INCREF = frozenset({"Py_INCREF", "Py_XINCREF"})
_REFCNT_ARG = re.compile(r"^(?:1\s*==\s*)?Py_REFCNT\s*\(\s*(.+?)\s*\)\s*(?:[=<]|$)")


def _function_at(facts: FileFacts, offset: int) -> FunctionFacts | None:
    for fn in facts.functions:
        if fn.start <= offset <= fn.end:
            return fn
    return None


def _refcount_check(facts: FileFacts, index: ProjectIndex, fn: FunctionFacts | None,
                    offset: int, expr: str) -> tuple[bool, bool]:
    """(reported at all, inside an `assert`) for `Py_REFCNT(x) == 1` at ``offset``: an
    object not yet published (just allocated, handed to no one) has no other reference to
    race with; an `assert` is compiled out of release builds (NDEBUG)."""
    if fn is None:
        return True, False
    m = _REFCNT_ARG.match(expr)
    if m and classify_receiver(m.group(1), fn, facts, index, offset).kind == "private":
        return False, False
    return True, any(c.name == "assert" and c.offset <= offset < c.end for c in fn.calls)


def match_member_tokens(facts: FileFacts, index: ProjectIndex,
                        selected: frozenset[str]) -> Iterator[Hit]:
    """FT030 (`Py_REFCNT(x) == 1`), FT031 (`->ob_refcnt`), FT036 (`ob_mutex`)."""
    for m in facts.members:
        func = _function_at(facts, m.offset)
        fn = func.name if func else None
        if m.name == "Py_REFCNT":
            reported, in_assert = _refcount_check(facts, index, func, m.offset, m.detail)
            if not reported:
                continue
            yield Hit(rule="FT030", path=facts.path, line=m.line, col=m.col, symbol="Py_REFCNT",
                      where=f"`{m.detail}`" + (" (in an `assert`, which release builds "
                                               "compile out)" if in_assert else ""),
                      function=fn, severity="warning" if in_assert else None)
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


def match_object_state(facts: FileFacts, index: ProjectIndex,
                       selected: frozenset[str]) -> Iterator[Hit]:
    """FT033, FT034, FT074: judged once per project (gilaudit.frontends.c.objstate); here the
    hits placed in this file."""
    for hit in index.object_hits.get(facts.path, ()):
        if hit.rule in selected:
            yield hit
