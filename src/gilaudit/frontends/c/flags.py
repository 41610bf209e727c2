"""The compiler command line libclang sees for one file: the free-threaded target, the prelude,
the interpreter's headers, and the project's include directories and defines."""

from __future__ import annotations

import functools
import importlib.util
import platform
import re
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

__all__ = ["Toolchain", "base_args", "binding_search", "detect_toolchain", "file_args",
           "for_target", "uses_limited_api"]

_LIMITED = re.compile(rb"^[ \t]*#[ \t]*define[ \t]+Py_LIMITED_API\b[ \t]*([^\n]*)", re.MULTILINE)


# The builtin headers are gcc's (libclang's wheel has none), and gcc's x86 intrinsics headers
# call gcc-only builtins: without SSE, code takes its portable branch and they are not read.
_NO_X86_INTRINSICS = ("-mno-sse", "-mno-mmx") if platform.machine().lower() in (
    "x86_64", "amd64", "i386", "i686") else ()


@dataclass(frozen=True, kw_only=True, slots=True)
class Toolchain:
    python_include: str
    builtin_include: str | None  # compiler builtin headers (stddef.h, stdarg.h, ...)
    prelude: str
    binding_includes: tuple[str, ...] = ()  # pybind11/nanobind headers installed beside us
    # The target interpreter's headers stand in for ours (python_include is then its own):
    # the prelude keeps its real PY_VERSION_HEX instead of claiming 3.14.
    target_python: bool = False
    internal: bool = False  # CPython's internal/ directory too (code built with Py_BUILD_CORE)
    requirement_includes: tuple[str, ...] = ()  # the build requirements' headers (wheels)
    cxx_std: str = "gnu++17"  # newer when the build asks for it

    def fingerprint(self) -> str:
        return (f"{self.python_include}|{self.builtin_include}|{self.prelude}|"
                f"{','.join(self.binding_includes)}")


def for_target(tool: Toolchain, *, python_include: str | None, internal: bool,
               requirement_includes: tuple[str, ...], cxx_std: str = "gnu++17") -> Toolchain:
    """The toolchain for one target: its interpreter's headers (when a free-threaded one was
    found), its build requirements' include directories and its C++ standard."""
    if python_include is None:
        return replace(tool, requirement_includes=requirement_includes, cxx_std=cxx_std)
    return replace(tool, python_include=python_include, target_python=True, internal=internal,
                   requirement_includes=requirement_includes, cxx_std=cxx_std)


@functools.cache
def detect_toolchain() -> Toolchain:
    include = sysconfig.get_paths()["include"]
    builtin: str | None = None
    # libclang's wheel ships no builtin headers; gcc's work for parsing.
    for cc in ("gcc", "cc", "clang"):
        exe = shutil.which(cc)
        if not exe:
            continue
        try:
            out = subprocess.run([exe, "-print-file-name=include"], capture_output=True,
                                 text=True, timeout=10, check=False).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if out and (Path(out) / "stddef.h").is_file():
            builtin = out
            break
    prelude = str(resources.files("gilaudit.frontends.c") / "prelude" / "gilaudit_prelude.h")
    return Toolchain(python_include=include, builtin_include=builtin, prelude=prelude,
                     binding_includes=_binding_includes())


def _binding_includes() -> tuple[str, ...]:
    """Header directories of pybind11 and nanobind when installed in gilaudit's environment,
    found without importing them: binding code then parses for real (a project's vendored
    copy, found by the include graph, comes first on the path)."""
    out: list[str] = []
    for name, subdirs in (("pybind11", ("include",)),
                          ("nanobind", ("include", "ext/robin_map/include"))):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            for sub in subdirs:
                candidate = Path(location) / sub
                if candidate.is_dir():
                    out.append(str(candidate))
    return tuple(out)


def base_args(tool: Toolchain, *, language: str, head: bytes,
              defines: list[str]) -> tuple[str, ...]:
    """Language, warnings and macros: what must be identical for a precompiled prelude to fit."""
    args = ["-x", "c++" if language == "c++" else "c",
            f"-std={tool.cxx_std}" if language == "c++" else "-std=gnu11",
            "-w", "-ferror-limit=50",
            # Old code is still code: what clang 16 made errors stays a warning here.
            "-Wno-error=implicit-function-declaration", "-Wno-error=int-conversion",
            "-Wno-error=incompatible-pointer-types", "-Wno-error=implicit-int",
            "-DPy_GIL_DISABLED=1", "-DNDEBUG", *_NO_X86_INTRINSICS]
    # Py_LIMITED_API is not passed on: free-threaded builds before abi3t (3.15) refuse the
    # limited API outright (`#error` in 3.13's Python.h), so such a file is analysed as the
    # full-API build a free-threaded wheel needs; `uses_limited_api` keeps the fact.
    if tool.target_python:
        args.append("-DGILAUDIT_TARGET_PYTHON=1")
    for d in defines:
        args.append(f"-D{d}")
    args += ["-isystem", tool.python_include]
    if tool.internal:
        args += ["-isystem", str(Path(tool.python_include) / "internal")]
    if tool.builtin_include:
        args += ["-isystem", tool.builtin_include]
    # Searched last: a project's own copy always wins over the stand-ins.
    args += ["-idirafter", str(Path(tool.prelude).parent / "fallback")]
    return tuple(args)


def uses_limited_api(head: bytes, defines: list[str]) -> bool:
    return bool(_LIMITED.search(head)) or any(d.split("=")[0] == "Py_LIMITED_API"
                                              for d in defines)


def file_args(tool: Toolchain, *, language: str, head: bytes, include_dirs: list[str],
              defines: list[str], pch: str | None = None) -> tuple[str, ...]:
    """The whole command line for one file; with ``pch``, the prelude comes precompiled."""
    args = list(base_args(tool, language=language, head=head, defines=defines))
    args += [f"-I{d}" for d in include_dirs]
    args += binding_search(tool) if language == "c++" else [
        a for d in tool.requirement_includes for a in ("-isystem", d)]
    args += ["-include-pch", pch] if pch else ["-include", tool.prelude]
    return tuple(args)


def binding_search(tool: Toolchain) -> tuple[str, ...]:
    """Where C++ finds the build requirements' headers, then pybind11/nanobind beside
    gilaudit: the same for a unit and for a precompiled preamble that holds them."""
    args: list[str] = []
    for d in tool.requirement_includes:
        args += ["-isystem", d]
    for d in tool.binding_includes:
        args += ["-idirafter", d]
    return tuple(args)
