"""The source text and the variable declarations of a unit, seen through libclang's cursors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gilaudit.frontends import textscan
from gilaudit.frontends.c.facts import Var

__all__ = ["Text", "is_static", "var_fact"]

_ATOMIC = re.compile(r"\b(_Atomic|atomic_\w+|std::atomic|atomic<)")
_TLS = re.compile(r"\b(_Thread_local|thread_local|__thread|__declspec\s*\(\s*thread\s*\))")
_PYOBJ_TYPE = re.compile(r"\b(PyObject|Py\w*Object|PyTypeObject)\s*\*")


@dataclass(slots=True)
class Text:
    raw: str
    code: str  # comments and skipped code blanked
    bare: str  # ... and string literals blanked
    index: textscan.LineIndex


def is_static(cursor: Any, ci: Any) -> bool:
    return bool(cursor.storage_class == ci.StorageClass.STATIC)


def var_fact(cursor: Any, text: Text, storage: str, index: int = -1) -> Var:
    tp = cursor.type
    spelling = tp.spelling
    loc = cursor.location  # one object: each of its fields would otherwise re-query libclang
    shared = storage not in ("local", "param")
    const = False
    atomic = tls = False
    if shared:
        # Only shared variables are judged on qualifiers; locals need just name and type.
        const = bool(tp.is_const_qualified())
        if not const and "[" in spelling:
            # An array is constant when its elements are: `static const char *const names[]`.
            elem = tp.get_array_element_type()
            const = bool(elem.is_const_qualified()) if elem.spelling else False
        ext = cursor.extent
        start, end = ext.start.offset, ext.end.offset
        decl_text = text.bare[start:end] if 0 <= start < end else spelling
        atomic = bool(_ATOMIC.search(spelling) or _ATOMIC.search(decl_text))
        tls = bool(_TLS.search(decl_text)) or _tls_kind(cursor)
    return Var(
        name=cursor.spelling,
        type=spelling,
        line=loc.line,
        col=loc.column,
        storage=storage,
        is_const=const,
        is_atomic=atomic,
        is_tls=tls,
        is_pointer="*" in spelling,
        is_pyobject=bool(_PYOBJ_TYPE.search(spelling)),
        index=index,
    )


def _tls_kind(cursor: Any) -> bool:
    try:
        return bool(cursor.tls_kind.value != 0)
    except (AttributeError, ValueError):
        return False
