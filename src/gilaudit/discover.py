"""Walk a target directory (or file) into a Project, without reading anything it does not need."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from gilaudit.model import Diagnostic, Project, SourceFile

__all__ = [
    "BUILD_FILES", "CXX_SUFFIXES", "C_SUFFIXES", "HEADER_SUFFIXES", "discover",
    "is_front_end_input",
]

C_SUFFIXES = frozenset({".c"})
CXX_SUFFIXES = frozenset({".cc", ".cpp", ".cxx", ".c++"})
HEADER_SUFFIXES = frozenset({".h", ".hh", ".hpp", ".hxx", ".inc"})
BUILD_FILES = frozenset({
    "setup.py", "setup.cfg", "pyproject.toml", "meson.build", "CMakeLists.txt",
})
# Files some non-C front end reads: a broken one of these is worth a diagnostic, and a change
# to one invalidates a cached result (images, data and docs do neither).
_OTHER_INPUTS = (".whl", ".pyx", ".pxd", ".pxi", ".so", ".pyd", ".dylib", ".toml", ".yml",
                 ".yaml", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip", ".rs", ".cfg", ".py",
                 ".txt", ".in", ".build", ".cmake", ".lock", "pkg-info", "metadata", "wheel")


def is_front_end_input(name: str) -> bool:
    lowered = name.lower()
    return lowered.endswith(_OTHER_INPUTS) or lowered.rsplit("/", 1)[-1] in (
        "makefile", "gnumakefile") or lowered.endswith(".mk")
_DEFAULT_EXCLUDED_DIRS = frozenset({
    ".git", ".hg", ".svn", "build", "node_modules", "__pycache__", ".tox", ".nox", ".eggs",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", "site-packages", ".venv", "venv",
})


def _language(name: str) -> str | None:
    suffix = os.path.splitext(name)[1].lower()
    if suffix in C_SUFFIXES:
        return "c"
    if suffix in CXX_SUFFIXES:
        return "c++"
    if suffix in HEADER_SUFFIXES:
        return "header"
    return None


def _excluded(rel: str, patterns: tuple[str, ...]) -> bool:
    return any(
        fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(rel, pat.rstrip("/") + "/*")
        for pat in patterns
    )


def discover(target: Path, *, exclude: tuple[str, ...] = (), max_file_size: int) -> Project:
    """Collect sources and build files below ``target``; problems become diagnostics."""
    diags: list[Diagnostic] = []
    root = target if target.is_dir() else target.parent
    root_abs = root.resolve() if root.exists() else root.absolute()
    sources: list[SourceFile] = []
    others: list[SourceFile] = []
    build_files: list[str] = []
    if not target.exists() and not target.is_symlink():
        diags.append(Diagnostic(path=str(target), kind="not-found",
                                message=f"{target}: no such file or directory"))
        return Project(root=str(root_abs), name=target.name, sources=(), build_files=(),
                       diagnostics=tuple(diags))

    def add_file(abspath: Path, rel: str) -> None:
        lang = _language(abspath.name)
        if abspath.name in BUILD_FILES:
            build_files.append(rel)
        if lang is None:
            try:
                st = abspath.stat()
            except OSError as exc:
                if is_front_end_input(abspath.name):
                    diags.append(Diagnostic(path=rel, kind="unreadable",
                                            message=f"cannot stat: {exc.strerror or exc}"))
                return
            if abspath.is_file():
                # Other front ends judge these (wheels, .pyx, workflows, ...); their own limits
                # apply, since a wheel is legitimately larger than any C file.
                others.append(SourceFile(path=rel, abspath=str(abspath), language="other",
                                         size=st.st_size))
            return
        try:
            st = abspath.stat()  # follows a symlink; a loop raises ELOOP
        except OSError as exc:
            diags.append(Diagnostic(path=rel, kind="unreadable",
                                    message=f"cannot stat: {exc.strerror or exc}"))
            return
        if not abspath.is_file():
            return
        if st.st_size > max_file_size:
            diags.append(Diagnostic(path=rel, kind="too-large",
                                    message=f"{st.st_size} bytes is over the limit of "
                                            f"{max_file_size} (max-file-size); not analysed"))
            return
        if not os.access(abspath, os.R_OK):
            diags.append(Diagnostic(path=rel, kind="unreadable", message="permission denied"))
            return
        sources.append(SourceFile(path=rel, abspath=str(abspath), language=lang,  # type: ignore[arg-type]
                                  size=st.st_size))

    if target.is_file() or (target.is_symlink() and not target.is_dir()):
        add_file(target.absolute(), target.name)
    else:
        def onerror(exc: OSError) -> None:
            name = exc.filename or str(target)
            diags.append(Diagnostic(path=os.path.relpath(name, root), kind="unreadable",
                                    message=f"cannot list directory: {exc.strerror or exc}"))

        for dirpath, dirnames, filenames in os.walk(target, onerror=onerror, followlinks=False):
            rel_dir = os.path.relpath(dirpath, target)
            rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
            kept = []
            for d in sorted(dirnames):
                rel = f"{rel_dir}/{d}" if rel_dir else d
                full = Path(dirpath) / d
                if d in _DEFAULT_EXCLUDED_DIRS or (full / "pyvenv.cfg").exists():
                    continue
                if _excluded(rel, exclude):
                    continue
                if full.is_symlink():
                    # Never followed: a linked directory can loop or leave the project.
                    diags.append(Diagnostic(path=rel, kind="skipped-symlink",
                                            message="symlinked directory not followed"))
                    continue
                kept.append(d)
            dirnames[:] = kept
            for f in sorted(filenames):
                rel = f"{rel_dir}/{f}" if rel_dir else f
                if _excluded(rel, exclude):
                    continue
                add_file(Path(dirpath) / f, rel)
    return Project(
        root=str(root_abs),
        name=root_abs.name,
        sources=tuple(sources),
        build_files=tuple(sorted(build_files)),
        diagnostics=tuple(diags),
        others=tuple(others),
    )
