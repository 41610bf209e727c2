"""libclang, bound once per parser process: the entry points we call directly, the
preprocessor's skipped ranges, the precompiled prelude's fallbacks, and its diagnostics."""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gilaudit.frontends.c.facts import Diag
from gilaudit.frontends.c.flags import detect_toolchain
from gilaudit.frontends.c.job import ParseJob

__all__ = ["HOLDER", "KEEP_GOING", "clang_diagnostics", "pch_rejected", "skipped_ranges",
           "without_pch"]

KEEP_GOING = 0x200  # CXTranslationUnit_KeepGoing: do not stop at the first fatal error
# Errors that are the free-threaded build's answer to code a rule already reports.
_REPORTED_BY_RULES = re.compile(
    r"no member named '(?:ob_refcnt|ob_mutex)'|undeclared identifier '_py_cs2?'")


@dataclass(slots=True)
class _Clang:
    """The few libclang entry points we call directly, bound once per worker process."""

    ci: Any
    index: Any
    skipped: Callable[..., Any]
    dispose: Callable[..., Any]


def _load_clang() -> _Clang:
    import clang.cindex as ci  # noqa: PLC0415 - heavy; only workers that parse need it

    lib = ci.conf.lib

    class _RangeList(ctypes.Structure):
        _fields_ = [("count", ctypes.c_uint), ("ranges", ctypes.POINTER(ci.SourceRange))]

    skipped = lib.clang_getSkippedRanges
    skipped.restype = ctypes.POINTER(_RangeList)
    skipped.argtypes = [ci.TranslationUnit, ctypes.c_void_p]
    dispose = lib.clang_disposeSourceRangeList
    dispose.argtypes = [ctypes.POINTER(_RangeList)]
    dispose.restype = None
    return _Clang(ci=ci, index=ci.Index.create(), skipped=skipped, dispose=dispose)


class _ClangHolder:
    """One libclang binding per process, created lazily (workers are separate processes)."""

    def __init__(self) -> None:
        self._clang: _Clang | None = None

    def get(self) -> _Clang:
        if self._clang is None:
            self._clang = _load_clang()
        return self._clang


HOLDER = _ClangHolder()


def skipped_ranges(clang: _Clang, tu: Any, path: str) -> list[tuple[int, int]]:
    file_obj = clang.ci.File.from_name(tu, path)
    ptr = clang.skipped(tu, file_obj)
    out: list[tuple[int, int]] = []
    if not ptr:
        return out
    try:
        lst = ptr.contents
        for i in range(lst.count):
            rng = lst.ranges[i]
            out.append((rng.start.offset, rng.end.offset))
    finally:
        clang.dispose(ptr)
    return out


def pch_rejected(tu: Any) -> bool:
    return any("precompiled header" in d.spelling or "PCH file" in d.spelling
               for d in tu.diagnostics if d.severity >= 3)


def without_pch(args: tuple[str, ...]) -> tuple[str, ...]:
    out = list(args)
    if "-include-pch" in out:
        i = out.index("-include-pch")
        out[i:i + 2] = ["-include", detect_toolchain().prelude]
    return tuple(out)


def clang_diagnostics(tu: Any, job: ParseJob) -> list[Diag]:
    out: list[Diag] = []
    errors: list[str] = []
    missing: list[str] = []
    first_line = 0
    for d in tu.diagnostics:
        if d.severity < 3:
            continue
        msg = d.spelling
        loc = d.location
        where = loc.file.name if loc.file else job.rel
        if "file not found" in msg:
            header = msg.split("'")[1] if "'" in msg else msg
            missing.append(f"{header!r} (from {_short(where, job.root)}:{loc.line})")
            continue
        if _REPORTED_BY_RULES.search(msg):
            continue  # FT031/FT036 report these, with the fix
        if not errors:
            first_line = loc.line if loc.file and loc.file.name == job.abspath else 0
        errors.append(f"{_short(where, job.root)}:{loc.line}: {msg}")
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4
                                          else "")
        out.append(Diag("missing-header",
                        f"{len(missing)} header(s) not found: {shown}; add their directories "
                        "with --include or [tool.gilaudit] include-dirs; analysis went on "
                        "without them", job.rel))
    if errors:
        shown = "; ".join(errors[:3])
        more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
        out.append(Diag("parse-error", f"{len(errors)} parse error(s), analysis is partial: "
                                       f"{shown}{more}", job.rel, first_line))
    return out


def _short(path: str, root: str) -> str:
    return path[len(root) + 1:] if path.startswith(root + "/") else path
