"""The headers a project's build compiles against, gathered without running anything: the
target interpreter's (a free-threaded CPython) and those of its header-providing build
requirements (pybind11, nanobind, numpy, cppy, any requirement whose wheel has an include
directory), from wheels in gilaudit's cache.

A requirement is fetched only when the project includes a header it provides (`<pybind11/...>`)
that the project does not vendor; a copy installed beside gilaudit is used when its version
satisfies the project's specifiers. Every way this can fail (no network, `--offline` with an
empty cache, an index without a matching wheel) is a diagnostic; parsing then goes on with
what there is.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from gilaudit.headers.interpreter import TargetPython, find_target_python
from gilaudit.headers.pipconf import configured_index
from gilaudit.headers.requires import Declared, declared_requirements, merge
from gilaudit.headers.wheels import HeaderWheel, WheelCache
from gilaudit.model import Diagnostic

__all__ = ["HeaderOptions", "HeaderSet", "Provided", "TargetPython", "configured_index",
           "find_target_python", "gather_headers"]

_INCLUDE = re.compile(rb'^[ \t]*#[ \t]*include[ \t]*[<"]([^>"\n]+)[>"]', re.MULTILINE)
_WITHOUT = ("parsing goes on without them (or with another version installed beside "
            "gilaudit, where there is one)")
_BUILD_CORE = re.compile(rb"^[ \t]*#[ \t]*define[ \t]+Py_BUILD_CORE\b", re.MULTILINE)


@dataclass(frozen=True, kw_only=True, slots=True)
class HeaderOptions:
    cache_dir: Path  # unpacked header wheels live in cache_dir/headers
    index_url: str | None = None  # None: pip's configured index
    offline: bool = False
    requirements: bool = True  # fetch build requirements' headers at all
    python: TargetPython | None = None  # the target interpreter, found once per run


@dataclass(frozen=True, kw_only=True, slots=True)
class Provided:
    """Where one build requirement's headers came from."""

    name: str
    requirement: str  # name and specifiers, as merged from every declaration
    declared: str  # where the build declares it
    origin: str  # "downloaded", "cache", "installed beside gilaudit"
    version: str
    include_dirs: tuple[str, ...]
    wheel: str | None = None
    sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"requirement": self.requirement, "declared": self.declared,
                "origin": self.origin, "version": self.version,
                "include_dirs": list(self.include_dirs), "wheel": self.wheel,
                "sha256": self.sha256}


@dataclass(frozen=True, kw_only=True, slots=True)
class HeaderSet:
    """The headers one target is parsed with, beyond its own."""

    python: TargetPython | None = None
    internal: bool = False  # the project builds with Py_BUILD_CORE: add internal/
    provided: tuple[Provided, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = field(default=())

    def requirement_dirs(self) -> tuple[str, ...]:
        return tuple(d for p in self.provided for d in p.include_dirs)

    def key(self) -> str:
        """What a parse's result depends on beyond the command line (a rebuilt interpreter
        keeps its paths)."""
        h = hashlib.sha256()
        h.update(repr((self.python.stamp if self.python else None, self.internal,
                       [(p.name, p.version, p.sha256) for p in self.provided])).encode())
        return h.hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"python": ({"executable": self.python.executable,
                            "version": self.python.version, "include": self.python.include,
                            "internal": self.internal} if self.python else None),
                "requirements": {p.name: p.to_dict() for p in self.provided}}


def _includes_unvendored(prefixes: tuple[str, ...], contents: dict[str, bytes],
                         held: set[str]) -> bool:
    """Whether some project file includes a header under one of ``prefixes`` (`pybind11/`)
    that the project does not hold itself (a vendored copy's directory is put on the path by
    the include graph)."""
    for prefix in prefixes:
        needle = prefix.encode()
        for data in contents.values():
            if needle not in data:
                continue  # the common case, and a fast one
            for m in _INCLUDE.finditer(data):
                inc = m.group(1).decode("latin-1").strip()
                if inc.startswith(prefix) and inc not in held:
                    return True
    return False


def _tails(paths: Iterable[str]) -> set[str]:
    """Every tail of every project path: `a/b/c.h` holds `b/c.h` and `c.h`."""
    return {"/".join(parts[i:]) for parts in (p.split("/") for p in paths)
            for i in range(len(parts))}


def _beside_gilaudit(req: Declared) -> Provided | None:
    """A copy of the requirement installed in gilaudit's own environment, when its version
    fits: found by its metadata and file layout, never imported."""
    try:
        version = importlib.metadata.version(req.name)
        spec = importlib.util.find_spec(req.name.replace("-", "_"))
    except (importlib.metadata.PackageNotFoundError, ImportError, ValueError):
        return None
    try:
        if not SpecifierSet(req.specifier).contains(Version(version), prereleases=True):
            return None
    except InvalidVersion:
        return None
    dirs: list[str] = []
    for location in (spec.submodule_search_locations or []) if spec else []:
        base = Path(location)
        for candidate in (base / "include", base / "_core" / "include", base / "core" / "include",
                          base / "ext" / "robin_map" / "include"):
            if candidate.is_dir():
                dirs.append(str(candidate))
    if not dirs:
        return None
    return Provided(name=req.name, requirement=f"{req.name}{req.specifier}",
                    declared=req.source, origin="installed beside gilaudit", version=version,
                    include_dirs=tuple(dirs))


def _from_wheel(req: Declared, got: HeaderWheel, origin: str) -> Provided:
    return Provided(name=req.name, requirement=f"{req.name}{req.specifier}",
                    declared=req.source, origin=origin, version=got.version,
                    include_dirs=got.dirs(), wheel=got.wheel, sha256=got.sha256)


def _provide(req: Declared, opts: HeaderOptions,
             cache: WheelCache) -> tuple[Provided | None, Diagnostic | None]:
    beside = _beside_gilaudit(req)
    if beside is not None:
        return beside, None
    cached = cache.cached(req.name, req.specifier)
    if cached is not None:
        return _from_wheel(req, cached, "cache"), None
    what = f"{req.name}{req.specifier} ({req.source})"
    if opts.offline:
        return None, Diagnostic(
            path=None, kind="build-headers",
            message=f"{what}: its headers are not in gilaudit's cache and --offline forbids "
                    f"downloading them; {_WITHOUT}")
    from gilaudit.dashboard.index import IndexClient, IndexFailure  # noqa: PLC0415 - network

    index = opts.index_url or configured_index()
    try:
        with IndexClient(url=index, cache_dir=cache.root / "downloads", timeout=20.0,
                         retries=1) as client:
            got = cache.fetch(client, req.name, req.specifier)
    except IndexFailure as exc:
        return None, Diagnostic(
            path=None, kind="build-headers",
            message=f"{what}: its headers could not be fetched from {index}: {exc}; "
                    f"{_WITHOUT}")
    return _from_wheel(req, got, "downloaded"), None


def gather_headers(build_files: dict[str, str], contents: dict[str, bytes],
                   opts: HeaderOptions) -> HeaderSet:
    """The header set for one target: its build files (path -> text) and the bytes of its
    C/C++ sources and headers."""
    diags: list[Diagnostic] = []
    provided: list[Provided] = []
    internal = any(b"Py_BUILD_CORE" in data and _BUILD_CORE.search(data)
                   for data in contents.values())
    if opts.requirements:
        # A build file that cannot be read is reported once, by the build-info reader and the
        # front ends; here it only declares nothing.
        found, _problems = declared_requirements(build_files)
        held = _tails(contents) if found else set()
        cache = WheelCache(opts.cache_dir / "headers")
        for req in merge(found):
            if not _includes_unvendored(req.prefixes(), contents, held):
                continue  # nothing of it is included: its headers would change nothing
            got, diag = _provide(req, opts, cache)
            if got is not None:
                provided.append(got)
            if diag is not None:
                diags.append(diag)
    return HeaderSet(python=opts.python, internal=internal and opts.python is not None,
                     provided=tuple(provided), diagnostics=tuple(diags))
