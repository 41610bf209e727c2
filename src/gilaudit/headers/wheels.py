"""The include directories of build requirements, taken from their wheels: the newest release
the project's specifiers admit, downloaded from the package index into gilaudit's cache
(sha256 checked against the index), and only its ``include/`` trees unpacked, distrustfully.
A wheel is never installed, imported or run.

A cached unpacked wheel that satisfies the specifiers is used without asking the index, so a
scan needs the network once per requirement, and ``--offline`` only ever reads the cache.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from gilaudit.archives import ArchiveLimits, read_zip_members
from gilaudit.archives.limits import safe_target
from gilaudit.dashboard.model import ReleaseFile

if TYPE_CHECKING:
    from gilaudit.dashboard.index import IndexClient

__all__ = ["HeaderWheel", "WheelCache", "include_dirs_of", "pick_wheel"]

_MARKER = "gilaudit-headers.json"
_NOT_HEADERS = (".py", ".pyc", ".pyi", ".so", ".pyd", ".dll", ".dylib", ".a", ".lib")


@dataclass(frozen=True, kw_only=True, slots=True)
class HeaderWheel:
    """A requirement's wheel, unpacked (its include trees only) in the cache."""

    name: str
    version: str
    wheel: str
    sha256: str
    root: str  # the unpacked folder
    include_dirs: tuple[str, ...]  # relative to root

    def dirs(self) -> tuple[str, ...]:
        return tuple(str(Path(self.root) / d) for d in self.include_dirs)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "wheel": self.wheel,
                "sha256": self.sha256, "include_dirs": list(self.include_dirs)}

    @classmethod
    def from_dict(cls, d: dict[str, Any], root: Path) -> HeaderWheel:
        return cls(name=str(d["name"]), version=str(d["version"]), wheel=str(d["wheel"]),
                   sha256=str(d["sha256"]), root=str(root),
                   include_dirs=tuple(str(x) for x in d["include_dirs"]))


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _admits(spec: SpecifierSet, version: Version) -> bool:
    # A pre-release only when the specifier names one (as pip does).
    if version.is_prerelease and not any(
            (v := _version(s.version.replace(".*", ""))) is not None and v.is_prerelease
            for s in spec):
        return False
    return spec.contains(version, prereleases=True)


def _platform_rank(file: ReleaseFile) -> tuple[int, int]:
    """Headers are the same for every platform but for a generated config header (numpy's
    `_numpyconfig.h`): prefer a pure wheel, then one for this machine's platform."""
    if file.platform_tags == ("any",):
        return (2, 0)
    machine = platform.machine().lower() or "x86_64"
    system = platform.system().lower() or "linux"
    here = any(system in p and machine in p for p in file.platform_tags)
    return (1 if here else 0, 1 if any("manylinux" in p for p in file.platform_tags) else 0)


def pick_wheel(files: Iterable[ReleaseFile], specifier: str) -> ReleaseFile | None:
    """The wheel to take headers from: the newest non-yanked version the specifier admits,
    and of its wheels the most portable one."""
    spec = SpecifierSet(specifier)
    best: tuple[Version, tuple[int, int], str] | None = None
    chosen: ReleaseFile | None = None
    for f in files:
        if f.kind != "wheel" or f.yanked or not f.sha256:
            continue
        v = _version(f.version)
        if v is None or not _admits(spec, v):
            continue
        rank = (v, _platform_rank(f), f.filename)
        if best is None or rank > best:
            best, chosen = rank, f
    return chosen


def include_dirs_of(members: Iterable[str]) -> tuple[str, ...]:
    """The directories named `include` that hold the wheel's headers (the first such component
    of each member's path): `pybind11/include`, `nanobind/ext/robin_map/include`,
    `numpy/_core/include`. The package's own come before a `.data` copy."""
    dirs: set[str] = set()
    for name in members:
        parts = name.split("/")
        if "include" in parts[:-1]:
            dirs.add("/".join(parts[:parts.index("include") + 1]))
    return tuple(sorted(dirs, key=lambda d: (".data/" in d, d.count("/"), d)))


def _wanted(name: str) -> bool:
    return "include" in name.split("/")[:-1] and not name.endswith(_NOT_HEADERS)


class WheelCache:
    """Unpacked header trees under ``root`` (one folder per wheel), and the downloads
    themselves under ``root/downloads`` (by sha256, as the dashboard caches them)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def cached(self, name: str, specifier: str) -> HeaderWheel | None:
        """The newest unpacked wheel of ``name`` that the specifier admits."""
        spec = SpecifierSet(specifier)
        best: tuple[Version, HeaderWheel] | None = None
        for marker in self.root.glob(f"{canonicalize_name(name)}-*/{_MARKER}"):
            try:
                got = HeaderWheel.from_dict(json.loads(marker.read_text()), marker.parent)
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a damaged entry: as if absent
            v = _version(got.version)
            if v is not None and got.name == canonicalize_name(name) and _admits(spec, v) \
                    and (best is None or v > best[0]):
                best = (v, got)
        return best[1] if best else None

    def fetch(self, client: IndexClient, name: str, specifier: str) -> HeaderWheel:
        """Download the wheel the specifier picks and unpack its headers. Raises
        ``IndexFailure`` with one sentence when the index or the wheel cannot be used."""
        # The index client (requests, pypi-simple) is imported only when something is fetched.
        from gilaudit.dashboard.index import IndexFailure  # noqa: PLC0415

        release = pick_wheel(client.releases(name), specifier)
        if release is None:
            raise IndexFailure(f"no wheel of {name} on the index satisfies "
                               f"{specifier or 'any version'}")
        path = client.download(release)  # sha256 verified against the index
        members, diags = read_zip_members(path, limits=ArchiveLimits(), want=_wanted,
                                          label=release.filename)
        problems = [d for d in diags if d.kind != "duplicate-member"]
        if not members and problems:
            raise IndexFailure(f"{release.filename} cannot be read: {problems[0].message}")
        wheel_name = str(parse_wheel_filename(release.filename)[0])
        dirs = include_dirs_of(members)
        assert release.sha256 is not None  # pick_wheel takes only hashed files
        folder = self.root / f"{canonicalize_name(wheel_name)}-{release.version}-" \
                             f"{release.sha256[:16]}"
        got = HeaderWheel(name=canonicalize_name(wheel_name), version=release.version,
                          wheel=release.filename, sha256=release.sha256, root=str(folder),
                          include_dirs=dirs)
        if (folder / _MARKER).is_file():
            return got
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=".unpack-"))
        try:
            for member, data in members.items():
                target = safe_target(tmp, member)
                if target is None:
                    continue  # the reader already refused it with a diagnostic
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            (tmp / _MARKER).write_text(json.dumps(got.to_dict()))
            try:
                os.replace(tmp, folder)  # atomic; another scan may have won the race
            except OSError:
                if not (folder / _MARKER).is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return got
