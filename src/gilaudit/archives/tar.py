"""Tar archives (sdists: .tar.gz, .tar.bz2, .tar.xz, .tar), read in one forward pass through
a reader that caps the inflated bytes, so a bomb in a member or in a header (a pax record, a
GNU long name) is stopped before tarfile holds it in memory."""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

from gilaudit.archives.limits import (
    CHUNK,
    ArchiveLimits,
    TooMuch,
    member_problem,
    normalised,
    open_new,
    safe_target,
    shown,
)
from gilaudit.model import Diagnostic

__all__ = ["extract_tar", "has_data_filter", "read_tar_members"]


class _StreamCapped(TooMuch):
    """The whole tar stream went over a limit: nothing after this point can be read."""


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Capped:
    """A read-only stream that refuses to yield more than ``cap`` inflated bytes: the tar
    headers themselves (pax records, GNU long names) are read through it too, so a bomb in a
    header is stopped as surely as one in a member."""

    def __init__(self, raw: _Readable, *, ratio_cap: int, total_cap: int) -> None:
        self._raw = raw
        self._ratio_cap = ratio_cap
        self._total_cap = total_cap
        self.seen = 0

    def read(self, size: int = -1) -> bytes:
        want = CHUNK if size is None or size < 0 else size
        data = self._raw.read(want)
        self.seen += len(data)
        if self.seen > self._ratio_cap:
            raise _StreamCapped("zip-bomb", (
                f"the archive inflates to more than {self._ratio_cap} bytes, a compression "
                "ratio beyond the limit; the rest was not read"))
        if self.seen > self._total_cap:
            raise _StreamCapped("too-large", (
                f"the archive holds more than {self._total_cap} bytes; the rest was not read"))
        return data


def _decompressor(fp: IO[bytes]) -> _Readable:
    """The inflated stream of a .tar.gz, .tar.bz2, .tar.xz or plain .tar, by magic bytes."""
    magic = fp.read(6)
    fp.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=fp, mode="rb")
    if magic[:3] == b"BZh":
        return bz2.BZ2File(fp, mode="rb")
    if magic == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(fp, mode="rb")
    return fp


_TarVisit = Callable[[tarfile.TarFile, tarfile.TarInfo, str], None]


def _walk_tar(path: Path, limits: ArchiveLimits, label: str, visit: _TarVisit,
              diags: list[Diagnostic]) -> None:
    """Call ``visit(tar, member, name)`` for every safe regular member, in archive order."""
    try:
        compressed = path.stat().st_size
        fp = path.open("rb")
    except OSError as exc:
        diags.append(Diagnostic(path=label, kind="corrupt-archive",
                                message=f"cannot open: {exc.strerror or exc}"))
        return
    ratio_cap = max(limits.ratio_floor_bytes, int(compressed * limits.max_ratio))
    # Headers and skipped members are read too; allow some room over the data limit.
    total_cap = limits.max_total_bytes + limits.max_member_bytes
    seen: set[str] = set()
    count = 0
    with fp:
        try:
            capped = _Capped(_decompressor(fp), ratio_cap=ratio_cap, total_cap=total_cap)
            # Stream mode: one pass, forward only, every byte through the capped reader.
            with tarfile.open(fileobj=capped, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    count += 1
                    if count > limits.max_members:
                        diags.append(Diagnostic(
                            path=label, kind="too-many-members",
                            message=f"more than {limits.max_members} members; the rest "
                                    "were not read"))
                        return
                    _visit_member(tar, member, limits, label, seen, visit, diags)
        except TooMuch as exc:
            diags.append(Diagnostic(path=label, kind=exc.kind, message=str(exc)))
        except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError, ValueError,
                struct.error, UnicodeError) as exc:
            diags.append(Diagnostic(path=label, kind="corrupt-archive",
                                    message=f"not a readable tar archive past member {count}: "
                                            f"{exc}"))


def _visit_member(tar: tarfile.TarFile, member: tarfile.TarInfo, limits: ArchiveLimits,
                  label: str, seen: set[str], visit: _TarVisit,
                  diags: list[Diagnostic]) -> None:
    raw = member.name
    problem = member_problem(raw, limits)
    if problem is not None:
        diags.append(Diagnostic(path=label, kind=problem[0],
                                message=f"member {shown(raw)} skipped: {problem[1]}"))
        return
    if member.issym() or member.islnk():
        diags.append(Diagnostic(path=label, kind="link-member",
                                message=f"member {shown(raw)} is a "
                                        f"{'symbolic' if member.issym() else 'hard'} link; "
                                        "skipped"))
        return
    if member.isdir():
        return
    if not member.isfile():
        diags.append(Diagnostic(path=label, kind="special-member",
                                message=f"member {shown(raw)} is not a regular file; skipped"))
        return
    name = normalised(raw)
    if not name:
        diags.append(Diagnostic(path=label, kind="corrupt-archive",
                                message=f"member {shown(raw)} has an empty name; skipped"))
        return
    if name in seen:
        diags.append(Diagnostic(path=label, kind="duplicate-member",
                                message=f"member {shown(raw)} appears more than once; the "
                                        "first copy was kept"))
        return
    seen.add(name)
    if member.size > limits.max_member_bytes:
        diags.append(Diagnostic(path=f"{label}/{name}", kind="too-large",
                                message=f"{member.size} bytes, over the limit of "
                                        f"{limits.max_member_bytes}; not read"))
        return
    visit(tar, member, name)


def has_data_filter() -> bool:
    """`filter="data"` exists from 3.12 and in the 3.10.12 / 3.11.4 security releases."""
    return hasattr(tarfile, "data_filter")


def _write_tar_member(tar: tarfile.TarFile, member: tarfile.TarInfo, name: str, dest: Path,
                      label: str, budget: list[int], limits: ArchiveLimits,
                      diags: list[Diagnostic], *, use_filter: bool) -> None:
    if member.size > budget[0]:
        diags.append(Diagnostic(path=f"{label}/{name}", kind="too-large",
                                message=f"unpacking it would pass the limit of "
                                        f"{limits.max_total_bytes} bytes; not unpacked"))
        return
    target = safe_target(dest, name)
    created = False
    try:
        if target is None:
            raise TooMuch("path-traversal", "would land outside the unpack directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        if safe_target(dest, name) is None:  # re-check now the folders exist
            raise TooMuch("path-traversal", "would land outside the unpack directory")
        if target.exists() or target.is_symlink():
            raise TooMuch("duplicate-member", "a file of that name was already unpacked")
        created = True
        if use_filter:
            # Our own checks ran first; the standard library's data filter is a second net.
            safe = member.replace(name=name, deep=False)
            tar.extract(safe, path=dest, set_attrs=False, filter="data")
        else:
            source = tar.extractfile(member)
            if source is None:
                return
            with source, open_new(target) as out:
                copied = 0
                while chunk := source.read(CHUNK):
                    copied += len(chunk)
                    if copied > member.size:
                        raise TooMuch("zip-bomb", "member holds more than it declares")
                    out.write(chunk)
        budget[0] -= member.size
    except _StreamCapped:
        # The stream itself is over a limit: drop the partial file, and let the walk stop
        # and report it once.
        if created and target is not None:
            target.unlink(missing_ok=True)
        raise
    except TooMuch as exc:
        if created and target is not None and exc.kind == "zip-bomb":
            target.unlink(missing_ok=True)
        diags.append(Diagnostic(path=f"{label}/{name}", kind=exc.kind,
                                message=f"not unpacked: {exc}"))
    except tarfile.FilterError as exc:
        diags.append(Diagnostic(path=label, kind="path-traversal",
                                message=f"member {shown(member.name)} refused by the data "
                                        f"filter: {exc}"))
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
        diags.append(Diagnostic(path=f"{label}/{name}", kind="duplicate-member",
                                message=f"a file and a folder share this name; not unpacked "
                                        f"({exc.strerror or exc})"))


def extract_tar(path: Path, dest: Path, limits: ArchiveLimits, label: str) -> list[Diagnostic]:
    diags: list[Diagnostic] = []
    budget = [limits.max_total_bytes]
    use_filter = has_data_filter()

    def visit(tar: tarfile.TarFile, member: tarfile.TarInfo, name: str) -> None:
        _write_tar_member(tar, member, name, dest, label, budget, limits, diags,
                         use_filter=use_filter)

    _walk_tar(path, limits, label, visit, diags)
    return diags


def read_tar_members(path: Path, limits: ArchiveLimits, want: Callable[[str], bool],
                     label: str) -> tuple[dict[str, bytes], list[Diagnostic]]:
    diags: list[Diagnostic] = []
    out: dict[str, bytes] = {}
    budget = [limits.max_total_bytes]

    def visit(tar: tarfile.TarFile, member: tarfile.TarInfo, name: str) -> None:
        if not want(name):
            return
        if member.size > budget[0]:
            diags.append(Diagnostic(path=f"{label}/{name}", kind="too-large",
                                    message="reading it would pass the size limit; not read"))
            return
        source = tar.extractfile(member)
        if source is None:
            return
        with source:
            data = source.read(member.size + 1)
        if len(data) > member.size:
            diags.append(Diagnostic(path=f"{label}/{name}", kind="zip-bomb",
                                    message="member holds more than it declares; not read"))
            return
        budget[0] -= len(data)
        out[name] = data

    _walk_tar(path, limits, label, visit, diags)
    return out, diags
