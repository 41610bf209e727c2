"""What names say: a wheel's filename tags, and which interpreter an extension module's file
name was built for (`_x.cpython-314t-x86_64-linux-gnu.so`, `_x.abi3.so`, `_x.cp314t-win_amd64.pyd`).

Naming facts used here (CPython `Doc/howto/abi3t-migration.rst`, PEP 425/427, PEP 803):
free-threaded builds have ABI tag and SOABI `cp3XXt` / `cpython-3XXt-...`; the stable ABI of the
default build is `abi3` (`.abi3.so`); the free-threaded stable ABI of 3.15+ is `abi3t`
(`.abi3t.so`, wheel ABI tag `abi3.abi3t`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, NormalizedName, parse_wheel_filename
from packaging.version import Version

__all__ = [
    "CpAbi", "ExtFile", "WheelName", "cp_abi", "extension_file", "in_test_folder",
    "module_name", "parse_wheel_name",
]

_CP_ABI = re.compile(r"^cp(\d)(\d+)([a-z]*)$")
_SO_CPYTHON = re.compile(r"^(?P<stem>[^.]+)\.cpython-(?P<maj>\d)(?P<min>\d+)(?P<flags>[a-z]*)"
                         r"(?:-[^.]+)?\.so$")
_PYD_CPYTHON = re.compile(r"^(?P<stem>[^.]+)\.cp(?P<maj>\d)(?P<min>\d+)(?P<flags>[a-z]*)"
                          r"-[^.]+\.pyd$")
_OTHER_IMPL = re.compile(r"^[^.]+\.(?:pypy|graalpy|pyston)[^.]*\.(?:so|pyd)$")
_DATA_PREFIX = re.compile(r"^[^/]+\.data/(?:purelib|platlib)/")
# A wheel under one of these is test data of the project (pip, build and installer test suites
# keep deliberately odd wheels there), not one of its release files.
_TEST_FOLDERS = frozenset({"tests", "test", "testing", "testdata", "test_data", "test-data",
                           "fixtures"})


@dataclass(frozen=True, kw_only=True, slots=True)
class CpAbi:
    """A version-specific CPython ABI tag such as `cp314t`."""

    version: tuple[int, int]
    threaded: bool

    @property
    def text(self) -> str:
        return f"cp{self.version[0]}{self.version[1]}{'t' if self.threaded else ''}"


def cp_abi(tag: str) -> CpAbi | None:
    m = _CP_ABI.match(tag)
    if m is None:
        return None
    return CpAbi(version=(int(m.group(1)), int(m.group(2))), threaded="t" in m.group(3))


@dataclass(frozen=True, kw_only=True, slots=True)
class WheelName:
    name: NormalizedName
    version: Version
    tags: frozenset[Tag]

    @property
    def abis(self) -> frozenset[str]:
        return frozenset(t.abi for t in self.tags)

    @property
    def cp_abis(self) -> tuple[CpAbi, ...]:
        found = {a for a in (cp_abi(x) for x in self.abis) if a is not None}
        return tuple(sorted(found, key=lambda a: (a.version, a.threaded)))

    @property
    def threaded(self) -> bool:
        """Built for a free-threaded interpreter: a `cp3XXt` ABI tag or `abi3t`."""
        return "abi3t" in self.abis or any(a.threaded for a in self.cp_abis)

    @property
    def abi3(self) -> bool:
        """Stable ABI of the default build only (no `abi3t` beside it)."""
        return "abi3" in self.abis and "abi3t" not in self.abis

    @property
    def binary(self) -> bool:
        """Compiled for some interpreter or platform (not `none`-`any`)."""
        return any(t.abi != "none" or t.platform != "any" for t in self.tags)

    @property
    def interpreters(self) -> frozenset[str]:
        return frozenset(t.interpreter for t in self.tags)


def parse_wheel_name(filename: str) -> WheelName | str:
    """The parsed filename, or the reason it is not a valid wheel filename."""
    try:
        name, version, _build, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        return str(exc)
    return WheelName(name=name, version=version, tags=tags)


@dataclass(frozen=True, kw_only=True, slots=True)
class ExtFile:
    """What an extension module's file name says about its target interpreter."""

    stem: str  # the module's own name (`_speedups`)
    kind: Literal["cpython", "abi3", "abi3t", "plain"]
    abi: CpAbi | None = None  # for kind == "cpython"
    suffix: str = ""  # as written in the name (`.cpython-314t-x86_64-linux-gnu.so`)


def extension_file(basename: str) -> ExtFile | None:
    """None when the name is not that of a CPython extension module (a `.dylib`, a versioned
    `libfoo.so.1`, a PyPy module, ...)."""
    for pattern in (_SO_CPYTHON, _PYD_CPYTHON):
        m = pattern.match(basename)
        if m is not None:
            abi = CpAbi(version=(int(m.group("maj")), int(m.group("min"))),
                        threaded="t" in m.group("flags"))
            return ExtFile(stem=m.group("stem"), kind="cpython", abi=abi,
                           suffix=basename[len(m.group("stem")):])
    if _OTHER_IMPL.match(basename):
        return None
    for suffix, kind in ((".abi3t.so", "abi3t"), (".abi3.so", "abi3")):
        if basename.endswith(suffix) and "." not in basename[: -len(suffix)]:
            return ExtFile(stem=basename[: -len(suffix)], kind=kind,  # type: ignore[arg-type]
                           suffix=suffix)
    for suffix in (".so", ".pyd"):
        stem = basename[: -len(suffix)]
        if basename.endswith(suffix) and stem.isidentifier():
            return ExtFile(stem=stem, kind="plain", suffix=suffix)
    return None


def module_name(member: str) -> str | None:
    """`pkg/_speedups.cpython-314t-x86_64-linux-gnu.so` -> `pkg._speedups`; None when the
    member is not an importable extension module (a vendored `numpy.libs/libfoo.so`)."""
    path = _DATA_PREFIX.sub("", member)
    *dirs, base = path.split("/")
    ext = extension_file(base)
    if ext is None or not ext.stem.isidentifier():
        return None
    if not all(d.isidentifier() for d in dirs):
        return None
    return ".".join([*dirs, ext.stem])


def in_test_folder(path: str) -> bool:
    """Whether a root-relative path lies below a test-data folder."""
    return any(part.lower() in _TEST_FOLDERS for part in path.split("/")[:-1])
