"""What a project's function-like macros do with the arguments they are given: the lock a
wrapper macro takes (`ENTER_HASHLIB(self)`), the fields of an argument a macro reads, tests or
writes (`CHECK_CLOSED(self)`, `BUF(self)`), and a macro that only bumps a node's reference count
(`INC_NODE_REF_COUNT(n)`). Read from the macro's body, never expanded by the preprocessor: the
object-state analysis works on the text the programmer wrote."""

from __future__ import annotations

import re

from gilaudit.frontends.c.context import normalise_expr
from gilaudit.frontends.c.facts import MacroFact, Region

__all__ = ["counts_references", "field_uses", "wrapped_lock", "wrapped_section"]

_NULL_COMPARED = re.compile(r"\s*\)?\s*[!=]=\s*(?:NULL|nullptr|0)\b")


def field_uses(macro: MacroFact, position: int) -> list[tuple[str, str]]:
    """The fields of the argument at ``position`` the macro's body touches, each with what it
    does: "write" (`(o)->f = ...`), "test" (apsw's `CHECK_CLOSED`: `!(connection)->db`, a NULL
    test that uses nothing) or "read"."""
    p = re.escape(macro.params[position])
    out: list[tuple[str, str]] = []
    for m in re.finditer(rf"\(?\s*\b{p}\b\s*\)?\s*->\s*(\w+)(\s*=(?!=))?", macro.body):
        if m.group(2):
            out.append((m.group(1), "write"))
        elif macro.body[:m.start()].rstrip().endswith("!") or _NULL_COMPARED.match(
                macro.body, m.end()):
            out.append((m.group(1), "test"))
        else:
            out.append((m.group(1), "read"))
    return out


_LOCK_CALL = re.compile(r"\b(?:PyMutex_Lock|PyThread_acquire_lock(?:_timed)?|pthread_mutex_lock|"
                        r"EnterCriticalSection|AcquireSRWLockExclusive|mtx_lock)\s*\(")


def wrapped_lock(r: Region, macros: dict[str, MacroFact]) -> str:
    """The lock a project's wrapper macro takes, in the caller's terms: `ENTER_HASHLIB(self)`,
    defined as `if ((obj)->use_mutex) { PyMutex_Lock(&(obj)->mutex); }`, takes `self->mutex`,
    the lock its entry points that call `PyMutex_Lock(&self->mutex)` directly hold too."""
    macro = macros.get(r.macro)
    m = _LOCK_CALL.search(macro.body) if macro is not None else None
    if macro is None or m is None:
        return r.receiver
    depth, i = 0, m.end()
    while i < len(macro.body) and (depth or macro.body[i] not in ",)"):
        depth += {"(": 1, ")": -1}.get(macro.body[i], 0)
        i += 1
    # None: the lock depends on an argument the region does not keep
    return _in_callers_terms(macro, r, macro.body[m.end():i]) or r.receiver


def _in_callers_terms(macro: MacroFact, r: Region, arg: str) -> str | None:
    """An expression of the macro's body with its first parameter replaced by what the region
    was opened on; None when it depends on another parameter, which the region does not keep."""
    if any(re.search(rf"\b{re.escape(p)}\b", arg) for p in macro.params[1:]):
        return None
    if macro.params:
        p = re.escape(macro.params[0])
        receiver = normalise_expr(r.receiver)
        arg = re.sub(rf"\b{p}\b", receiver, re.sub(rf"\(\s*{p}\s*\)", receiver, arg))
    return arg


_SECTION_CALL = re.compile(r"\bPy_BEGIN_CRITICAL_SECTION\s*\(\s*([^()]*?)\s*\)")


def wrapped_section(r: Region, macros: dict[str, MacroFact]) -> str:
    """The object a project's wrapper macro opens a critical section on, in the caller's
    terms (viztracer's `SNAPTRACE_THREAD_PROTECT_START(self)`, defined on free-threaded
    builds as `Py_BEGIN_CRITICAL_SECTION(self)`), or "" when its body opens none."""
    macro = macros.get(r.macro)
    m = _SECTION_CALL.search(macro.body) if macro is not None else None
    if macro is None or m is None:
        return ""
    return _in_callers_terms(macro, r, m.group(1)) or ""


_REFCOUNT_FIELD = re.compile(r"(?i)^(?:ob_)?(?:ref_?(?:count|cnt)|refs|nrefs)$")


def counts_references(macros: dict[str, MacroFact], name: str, position: int | None,
                       depth: int = 0) -> bool:
    """A project macro that only changes the reference count of what it is given at
    ``position``: pyrsistent's `INC_NODE_REF_COUNT(n)`, `(NODE_REF_COUNT(n)++)`, where
    `NODE_REF_COUNT(n)` is `((n)->refCount)`."""
    macro = macros.get(name)
    if macro is None or position is None or not 0 <= position < len(macro.params) or depth > 3:
        return False
    p = re.escape(macro.params[position])
    uses = list(re.finditer(rf"\b{p}\b", macro.body))
    if not uses:
        return False
    for u in uses:
        member = re.match(r"\s*\)?\s*->\s*(\w+)", macro.body[u.end():])
        if member is not None:
            if not _REFCOUNT_FIELD.match(member.group(1)):
                return False
            continue
        # an argument of another macro of the project: `NODE_REF_COUNT(n)`
        call = re.search(r"(\w+)\s*\(\s*\(?\s*$", macro.body[:u.start()])
        inner = macros.get(call.group(1)) if call else None
        if inner is None or not counts_references(macros, inner.name, 0, depth + 1):
            return False
    return True
