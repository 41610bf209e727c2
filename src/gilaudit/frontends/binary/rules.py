"""The binary-symbol rules (catalogue section 10) on one extension module.

What an import table can show: exported C-API functions the module calls. Macros and static
inline functions leave no trace (`PyList_GET_ITEM`, `Py_REFCNT`), except where the inline body
itself calls an exported function: the critical-section macros of the free-threaded build call
`PyCriticalSection_Begin`, and `Py_DECREF` calls different functions in the two builds
(CPython `Include/refcount.h`): `_Py_Dealloc` in the default build, `_Py_MergeZeroLocalRefcount`
and `_Py_DecRefShared` in the free-threaded one. Those two are defined only when
`Py_GIL_DISABLED` is set (`Objects/object.c`), so a module importing them cannot even load
on a default build. That is how FT153 tells which headers a module was compiled against.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from gilaudit.frontends.binary.elf import DynamicSymbols
from gilaudit.frontends.contract import Hit
from gilaudit.frontends.libc import NON_REENTRANT
from gilaudit.frontends.wheelnames import ExtFile, WheelName

__all__ = [
    "BORROWED",
    "EVIDENCE",
    "FT_ONLY_REFCOUNT",
    "RULES",
    "BinaryModule",
    "Target",
    "match_borrowed_imports",
    "match_naming",
    "match_non_reentrant",
    "match_positive_evidence",
    "match_refcount_build",
    "target_of",
]

RULES = frozenset({"FT150", "FT151", "FT152", "FT153"})
Target = Literal["ft", "gil", "unknown"]

# Borrowed-reference API -> its strong-reference replacements (catalogue's version table).
# PyDict_Next has none: only a critical section makes it safe.
BORROWED: dict[str, tuple[str, ...]] = {
    "PyDict_GetItem": ("PyDict_GetItemRef",),
    "PyDict_GetItemWithError": ("PyDict_GetItemRef",),
    "PyDict_GetItemString": ("PyDict_GetItemStringRef",),
    "PyDict_SetDefault": ("PyDict_SetDefaultRef",),
    "PyDict_Next": (),
    "PyList_GetItem": ("PyList_GetItemRef",),
    "PyWeakref_GetObject": ("PyWeakref_GetRef",),
    "PyImport_AddModule": ("PyImport_AddModuleRef",),
    "PyImport_AddModuleObject": ("PyImport_AddModuleRef",),
    "PySys_GetObject": ("PySys_GetAttr", "PySys_GetAttrString", "PySys_GetOptionalAttr",
                        "PySys_GetOptionalAttrString"),
    "PyEval_GetGlobals": ("PyEval_GetFrameGlobals",),
    "PyEval_GetLocals": ("PyEval_GetFrameLocals",),
    "PyEval_GetBuiltins": ("PyEval_GetFrameBuiltins",),
}
_CRITICAL_SECTIONS = ("PyCriticalSection_Begin", "PyCriticalSection2_Begin",
                      "PyCriticalSection_BeginMutex", "PyCriticalSection2_BeginMutex")
# Evidence of a free-threading port, strongest first.
EVIDENCE: tuple[str, ...] = (
    "PyUnstable_Module_SetGIL", *_CRITICAL_SECTIONS, "PyMutex_Lock", "_PyMutex_Lock",
    "PyMutex_Unlock", "_PyMutex_Unlock", "PyDict_GetItemRef", "PyDict_GetItemStringRef",
    "PyDict_SetDefaultRef", "PyList_GetItemRef", "PyWeakref_GetRef", "PyImport_AddModuleRef",
    "PyUnstable_Object_IsUniquelyReferenced", "PyUnstable_TryIncRef",
)
# Called by the free-threaded build's inline Py_DECREF; defined only in that build.
FT_ONLY_REFCOUNT = frozenset({"_Py_MergeZeroLocalRefcount", "_Py_DecRefShared",
                              "_Py_DecRefSharedDebug"})
# Called by the default build's inline Py_DECREF (never by the free-threaded one's).
_GIL_DEALLOC = "_Py_Dealloc"


@dataclass(frozen=True, kw_only=True, slots=True)
class BinaryModule:
    path: str  # root-relative; `dist/x.whl/pkg/_x.so` for a wheel member
    display: str  # `pkg._x`, or the file name when no module name is known
    ext: ExtFile | None  # what the file name says
    wheel: WheelName | None  # the wheel it ships in, when it does
    symbols: DynamicSymbols | None  # None: not an ELF file, or unreadable


def _declared_target(module: BinaryModule) -> Target:
    """What the file name, or else the wheel's tags, says the module is built for."""
    ext = module.ext
    if ext is not None:
        if ext.kind == "cpython" and ext.abi is not None:
            return "ft" if ext.abi.threaded else "gil"
        if ext.kind == "abi3t":
            return "ft"
        if ext.kind == "abi3":
            return "gil"
    wheel = module.wheel
    if wheel is not None:
        if wheel.threaded:
            return "ft"
        if wheel.cp_abis or wheel.abi3:
            return "gil"
    return "unknown"


def target_of(module: BinaryModule) -> Target:
    """The declared target, or, when names say nothing, the one the imports reveal."""
    declared = _declared_target(module)
    if declared != "unknown" or module.symbols is None:
        return declared
    imported = module.symbols.imported
    if imported & FT_ONLY_REFCOUNT:
        return "ft"
    if _GIL_DEALLOC in imported:
        return "gil"
    return "unknown"


def _hit(rule: str, module: BinaryModule, symbol: str, where: str) -> Hit:
    return Hit(rule=rule, path=module.path, line=1, col=1, symbol=symbol, where=where)


def match_borrowed_imports(module: BinaryModule) -> Iterator[Hit]:
    """FT150: borrowed-reference APIs imported by a module built for (or possibly for) a
    free-threaded interpreter, without the replacement or any critical section."""
    if module.symbols is None or target_of(module) == "gil":
        return
    imported = module.symbols.imported
    if any(cs in imported for cs in _CRITICAL_SECTIONS):
        return
    for api, replacements in BORROWED.items():
        if api in imported and not any(r in imported for r in replacements):
            if replacements:
                names = " or ".join(f"`{r}`" for r in replacements)
                where = f"`{module.display}`, which imports neither {names} nor a critical section"
            else:
                where = f"`{module.display}`, which imports no critical section"
            yield _hit("FT150", module, api, where)


def match_positive_evidence(module: BinaryModule) -> Iterator[Hit]:
    """FT151: one finding per module naming its strongest evidence of a port."""
    if module.symbols is None or target_of(module) == "gil":
        return
    found = [s for s in EVIDENCE if s in module.symbols.imported]
    if not found:
        return
    also = f" (also {', '.join(f'`{s}`' for s in found[1:4])})" if len(found) > 1 else ""
    yield _hit("FT151", module, found[0], f"`{module.display}`{also}")


def match_non_reentrant(module: BinaryModule) -> Iterator[Hit]:
    """FT152: imports of the FT046 libc functions (hidden static state)."""
    if module.symbols is None or target_of(module) == "gil":
        return
    for name in sorted(NON_REENTRANT):
        if name in module.symbols.imported:
            yield _hit("FT152", module, name,
                       f"`{module.display}` (reentrant form: {NON_REENTRANT[name]})")


def match_naming(module: BinaryModule) -> Iterator[Hit]:
    """FT153 from names: a `cpython-3XY[t]` module in a wheel tagged for another build.
    `.abi3.so` in a `cp3XXt` wheel is FT136's, not reported twice."""
    ext, wheel = module.ext, module.wheel
    if ext is None or wheel is None or ext.kind != "cpython" or ext.abi is None:
        return
    abis = wheel.cp_abis
    if not abis or wheel.abis - {a.text for a in abis} - {"none"}:
        return  # abi3 / abi3t / non-CPython wheels: the version-specific naming rule is moot
    if ext.abi in abis:
        return
    tags = ", ".join(f"`{a.text}`" for a in abis)
    build = "free-threaded" if ext.abi.threaded else "default (GIL)"
    yield _hit("FT153", module, ext.suffix.lstrip("."),
               f"a wheel tagged {tags} holds a module named for the {build} build of "
               f"Python {ext.abi.version[0]}.{ext.abi.version[1]} (`{ext.abi.text}`); the "
               "interpreters that install this wheel will not import it")


def match_refcount_build(module: BinaryModule) -> Iterator[Hit]:
    """FT153 from imports: compiled against the other build's headers, so its inline
    reference counting assumes the wrong object layout."""
    if module.symbols is None:
        return
    declared = _declared_target(module)
    imported = module.symbols.imported
    ft_calls = sorted(imported & FT_ONLY_REFCOUNT)
    if declared == "ft" and _GIL_DEALLOC in imported and not ft_calls:
        yield _hit("FT153", module, _GIL_DEALLOC,
                   f"`{module.display}` is shipped for a free-threaded interpreter but "
                   f"imports `{_GIL_DEALLOC}` and none of that build's reference-count "
                   "functions: it was compiled against the default (GIL) build's headers")
    elif declared == "gil" and ft_calls:
        yield _hit("FT153", module, ft_calls[0],
                   f"`{module.display}` is shipped for the default (GIL) build but imports "
                   f"`{ft_calls[0]}`, which only the free-threaded build defines: it was "
                   "compiled against free-threaded headers and will not load")
