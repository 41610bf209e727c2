"""What a free-threading port adds to a function, by family: the markers of the ports
benchmark's truth (one regular expression per family, applied to code with its comments
blanked out).

- ``critical-section``: a critical section on an object (`Py_BEGIN_CRITICAL_SECTION`,
  Argument Clinic's `@critical_section`, Cython's `critical_section`);
- ``lock``: a mutex or lock taken (`PyMutex_Lock`, `pthread_mutex_lock`,
  `PyThread_acquire_lock`, C++ lock guards, a project's own `X_LOCK(...)` wrapper, Cython's
  `with self._lock:`);
- ``borrowed-reference``: a strong-reference API replacing a borrowed one
  (`PyDict_GetItemRef`, `PyList_GetItemRef`, `PyWeakref_GetRef`, ..., and `Py_NewRef` /
  `Py_XNewRef` of a field or of a borrowed API's result, where the port also took a lock or
  a critical section in that function: elsewhere it is mostly the 3.10 respelling of an
  `Py_INCREF`, which `truth.py` does not count);
- ``atomic``: atomic access to shared state (`FT_ATOMIC_*`, `_Py_atomic_*`, C11 and GCC
  atomics, `std::atomic`, Cython's `libcpp.atomic`).
"""

from __future__ import annotations

import re
from collections import Counter

from .functions import is_cython, masked_c

__all__ = ["FAMILIES", "NEWREF", "count", "families_of_line", "strip_comments"]

FAMILIES = ("critical-section", "lock", "borrowed-reference", "atomic")
# A strong reference to a field (`Py_NewRef(self->x)`): borrowed-reference only beside a lock
NEWREF = "newref"

_CRITICAL_C = re.compile(r"\bPy_BEGIN_CRITICAL_SECTION\w*\s*\(")
_CRITICAL_CYTHON = re.compile(r"\bcritical_section\b")
_LOCK_C = re.compile(
    r"\bPyMutex_Lock\b|\bpthread_mutex_(?:try)?lock\b|\bPyThread_acquire_lock\w*|"
    r"\bstd::(?:lock_guard|unique_lock|scoped_lock)\b|"
    # a project's own wrapper: MMH3_HASHER_LOCK(self), ENTER_HASHLIB(self), lock_obj(o);
    # allocating, freeing or initialising a lock is not taking it
    r"\b(?![A-Za-z_]\w*(?:allocate|alloc|free|new|init|destroy|delete|release)_?(?:lock|LOCK))"
    r"[A-Za-z_]\w*_(?:LOCK|Lock|lock|ACQUIRE|acquire)\s*\(|\b(?:ENTER|LOCK)_[A-Z_]+\s*\(")
_LOCK_CYTHON = re.compile(r"^\s*with\b[^:]*\b\w*lock\w*\b[^:]*:|\.acquire\s*\(")
# APIs that exist to replace a borrowed-reference one: always the port's
_STRONG = re.compile(
    r"\bPyDict_GetItemRef\b|\bPyDict_GetItemStringRef\b|\bPyList_GetItemRef\b|"
    r"\bPyWeakref_GetRef\b|\bPyDict_SetDefaultRef\b|\bPyImport_AddModuleRef\b|"
    r"\b_PyDict_GetItemRef\w*|\bPySequence_GetItemRef\b")
# strong-reference APIs that also replace strong ones (`_PyObject_LookupAttr` became
# `PyObject_GetOptionalAttr` in 3.13): the port's only where the change removed a borrowed API
_STRONG_IF_BORROWED = re.compile(
    r"\bPyDict_Pop(?:String)?\b|\bPyObject_GetOptionalAttr\w*|"
    r"\bPyMapping_GetOptionalItem\w*|\bPySys_GetOptionalAttr\w*|\bPySys_GetAttr\w*")
_NEWREF = re.compile(r"\bPy_X?NewRef\s*\(([^;]*)")
_BORROWED = re.compile(
    r"\bPyDict_GetItem(?!Ref)\w*\b|\bPyList_GetItem\b|\bPyList_GET_ITEM\b|"
    r"\bPyWeakref_GetObject\b|\bPyWeakref_GET_OBJECT\b|\bPySys_GetObject\b|"
    r"\bPyImport_AddModule(?:Object)?\b|\bPyDict_SetDefault\b|\bPyEval_GetGlobals\b|"
    r"\bPyTuple_GET_ITEM\b|\bPySequence_Fast_GET_ITEM\b|\bPyObject_GenericGetDict\b")
_INCREF = re.compile(r"\bPy_X?INCREF\b")
_ATOMIC_C = re.compile(r"\bFT_ATOMIC_\w+|\b_Py_atomic_\w+|\batomic_(?:load|store|fetch_\w+|"
                       r"exchange|compare_exchange\w*|flag_\w+)\w*\b|\b__atomic_\w+|"
                       r"\b__sync_\w+|\bstd::atomic\b|\bPy_atomic\w*")
_ATOMIC_CYTHON = re.compile(r"\batomic\[|\.(?:load|store|fetch_add|fetch_sub|exchange|"
                            r"compare_exchange_\w+)\s*\(")


def strip_comments(path: str, text: str) -> str:
    """Code only: C comments, literals and preprocessor lines (a fallback
    `#define Py_BEGIN_CRITICAL_SECTION(op) {` is not a critical section), or Cython's
    comments."""
    if is_cython(path):
        return "\n".join(_cython_code(line) for line in text.split("\n"))
    return masked_c(text)


def _cython_code(line: str) -> str:
    return line.split("#", 1)[0] if "#" in line and "'" not in line and '"' not in line \
        else line


def families_of_line(line: str, *, cython: bool, cython_atomics: bool,
                     removed: str, before: str = "") -> set[str]:
    """The families one added line belongs to. ``removed`` is the code the same change took
    out and ``before`` the function's code in BEFORE: a `Py_NewRef` counts where it takes a
    field or a borrowed API's result that BEFORE did not `Py_INCREF` (that is the same code,
    respelled since 3.10). ``cython_atomics``: the file cimports `libcpp.atomic`."""
    out = set()
    # (Argument Clinic's `@critical_section` sits in a comment: see truth._clinic_critical)
    if (_CRITICAL_CYTHON if cython else _CRITICAL_C).search(line):
        out.add("critical-section")
    if (_LOCK_CYTHON if cython else _LOCK_C).search(line):
        out.add("lock")
    if _STRONG.search(line) or (_STRONG_IF_BORROWED.search(line) and _BORROWED.search(removed)):
        out.add("borrowed-reference")
    elif _strong_newref(line, removed, before):
        out.add(NEWREF)
    if _ATOMIC_C.search(line) or (cython and cython_atomics and _ATOMIC_CYTHON.search(line)):
        out.add("atomic")
    return out


def _strong_newref(line: str, removed: str, before: str) -> bool:
    m = _NEWREF.search(line)
    if m is None:
        return False
    arg = _balanced(m.group(1))
    if "->" not in arg and not _BORROWED.search(arg):
        return False  # a local or a fresh object
    incref = re.compile(r"\bPy_X?INCREF\s*\(\s*(?:\([^()]*\)\s*)?" + re.escape(arg) + r"\s*\)")
    return not incref.search(removed) and not incref.search(before)


def _balanced(rest: str) -> str:
    """The argument of a call whose text after the `(` is ``rest``."""
    depth = 0
    for i, ch in enumerate(rest):
        if ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                return rest[:i].strip()
            depth -= 1
    return rest.strip()


def count(path: str, code: str, *, cython_atomics: bool) -> Counter[str]:
    """How many markers of each family a function's code holds (comments aside); a port
    adds to a function when AFTER's count exceeds BEFORE's (a moved function adds none)."""
    cython = is_cython(path)
    out: Counter[str] = Counter()
    for line in strip_comments(path, code).split("\n"):
        for fam in families_of_line(line, cython=cython, cython_atomics=cython_atomics,
                                    removed=""):
            out[fam] += 1
    return out
