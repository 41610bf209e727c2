"""Zip archives (wheels, zip sdists): member names checked up front from the central
directory, bytes inflated on demand and counted against the declared sizes and the limits."""

from __future__ import annotations

import io
import lzma
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO

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

__all__ = ["ZipReader", "extract_zip", "open_zip", "read_zip_members"]

# The smallest central-directory record is 46 bytes; a real one also holds a name. A central
# directory much larger than the member limit allows is refused before zipfile parses it.
_CD_BYTES_PER_MEMBER = 512
_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")


def _declared_entries(path: Path) -> tuple[int, int] | None:
    """(members, central directory bytes) from the end-of-central-directory record, read
    before zipfile builds one object per member; None when the record cannot be found (then
    zipfile reports the archive as corrupt)."""
    try:
        with path.open("rb") as fp:
            fp.seek(0, os.SEEK_END)
            size = fp.tell()
            start = max(0, size - (65535 + _EOCD.size))
            fp.seek(start)
            tail = fp.read()
            at = tail.rfind(b"PK\x05\x06")
            if at < 0 or at + _EOCD.size > len(tail):
                return None
            fields = _EOCD.unpack_from(tail, at)
            count, cd_size = fields[4], fields[5]
            loc_at = at - _ZIP64_LOCATOR.size
            if (count == 0xFFFF or cd_size == 0xFFFFFFFF) and loc_at >= 0 and \
                    tail[loc_at:loc_at + 4] == b"PK\x06\x07":
                zip64_offset = _ZIP64_LOCATOR.unpack_from(tail, loc_at)[2]
                fp.seek(zip64_offset)
                record = fp.read(_ZIP64_EOCD.size)
                if len(record) == _ZIP64_EOCD.size and record[:4] == b"PK\x06\x06":
                    z = _ZIP64_EOCD.unpack(record)
                    count, cd_size = z[7], z[8]
            return count, cd_size
    except (OSError, struct.error):
        return None


def _is_link_or_special(info: zipfile.ZipInfo) -> str | None:
    """'link' or 'special' from the Unix mode a zip keeps in its external attributes."""
    mode = info.external_attr >> 16
    if not mode or info.create_system != 3:  # 3: Unix; other systems keep no file type
        return None
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        return "link"
    if kind in (0, stat.S_IFREG, stat.S_IFDIR):
        return None
    return "special"


class ZipReader:
    """An open zip (wheel or zip sdist): safe member names up front, bytes on demand.

    ``names`` holds every regular member that passed the checks, in archive order, under its
    normalised name; ``diagnostics`` what was wrong with the archive and the members left out;
    ``read`` inflates one member within the limits (problems go to ``read_diagnostics``).
    """

    def __init__(self, path: Path, *, limits: ArchiveLimits, label: str) -> None:
        self.path = path
        self.label = label
        self.limits = limits
        self.diagnostics: list[Diagnostic] = []
        self.read_diagnostics: list[Diagnostic] = []
        self._infos: dict[str, zipfile.ZipInfo] = {}
        self._zf: zipfile.ZipFile | None = None
        self._budget = limits.max_total_bytes
        self._open()

    # The archive as a whole -------------------------------------------------------------

    def _diag(self, kind: str, message: str, member: str | None = None) -> Diagnostic:
        path = f"{self.label}/{member}" if member else self.label
        return Diagnostic(path=path, kind=kind, message=message)

    def _open(self) -> None:
        limits = self.limits
        declared = _declared_entries(self.path)
        if declared is not None:
            count, cd_size = declared
            if count > limits.max_members or cd_size > limits.max_members * \
                    _CD_BYTES_PER_MEMBER:
                self.diagnostics.append(self._diag(
                    "too-many-members",
                    f"the archive declares {count} members ({cd_size} bytes of directory), "
                    f"over the limit of {limits.max_members}; not read"))
                return
        try:
            zf = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
                struct.error, UnicodeDecodeError, NotImplementedError) as exc:
            self.diagnostics.append(self._diag("corrupt-archive", f"not a readable zip: {exc}"))
            return
        self._zf = zf
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            self.diagnostics.append(self._diag(
                "too-many-members",
                f"{len(infos)} members, over the limit of {limits.max_members}; only the "
                f"first {limits.max_members} were read"))
            infos = infos[: limits.max_members]
        for info in infos:
            self._admit(info)

    def _admit(self, info: zipfile.ZipInfo) -> None:
        raw = info.filename
        problem = member_problem(raw, self.limits)
        if problem is not None:
            self.diagnostics.append(self._diag(
                problem[0], f"member {shown(raw)} skipped: {problem[1]}"))
            return
        link = _is_link_or_special(info)
        if link == "link":
            self.diagnostics.append(self._diag(
                "link-member", f"member {shown(raw)} is a symbolic link; skipped"))
            return
        if link == "special":
            self.diagnostics.append(self._diag(
                "special-member", f"member {shown(raw)} is not a regular file; skipped"))
            return
        if info.is_dir():
            return
        name = normalised(raw)
        if not name:
            self.diagnostics.append(self._diag(
                "corrupt-archive", f"member {shown(raw)} has an empty name; skipped"))
            return
        if name in self._infos:
            self.diagnostics.append(self._diag(
                "duplicate-member",
                f"member {shown(raw)} appears more than once; the first copy was kept"))
            return
        self._infos[name] = info

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._infos)

    def size(self, name: str) -> int:
        """The declared (untrusted) inflated size of a member."""
        return self._infos[name].file_size

    def close(self) -> None:
        if self._zf is not None:
            self._zf.close()
            self._zf = None

    def __enter__(self) -> ZipReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # One member -------------------------------------------------------------------------

    def _check_declared(self, name: str, info: zipfile.ZipInfo) -> None:
        limits = self.limits
        if info.file_size > limits.ratio_floor_bytes and (
                info.compress_size <= 0
                or info.file_size / info.compress_size > limits.max_ratio):
            raise TooMuch("zip-bomb", (
                f"declares {info.file_size} bytes from {info.compress_size} compressed, a "
                f"ratio over {limits.max_ratio:g}; not read"))
        if info.file_size > limits.max_member_bytes:
            raise TooMuch("too-large", (
                f"declares {info.file_size} bytes, over the limit of "
                f"{limits.max_member_bytes}; not read"))
        if info.file_size > self._budget:
            raise TooMuch("too-large", (
                f"reading it would pass the limit of {limits.max_total_bytes} bytes read "
                "from one archive; not read"))

    def _chunks(self, name: str) -> Iterator[bytes]:
        """The member's bytes in chunks, counted against the declared size and the limits."""
        info = self._infos[name]
        assert self._zf is not None
        self._check_declared(name, info)
        seen = 0
        try:
            with self._zf.open(info) as fh:
                while True:
                    chunk = fh.read(CHUNK)
                    if not chunk:
                        break
                    seen += len(chunk)
                    # zipfile stops at the declared size today; counting keeps us safe if a
                    # version or a method ever does not.
                    if seen > info.file_size:
                        raise TooMuch("zip-bomb", (
                            f"inflates past its declared {info.file_size} bytes; not read"))
                    if seen > self.limits.max_member_bytes or seen > self._budget:
                        raise TooMuch("too-large", "inflates past the size limits; not read")
                    yield chunk
        except zipfile.BadZipFile as exc:
            if "CRC" in str(exc) and self._inflates_past_declared(info):
                raise TooMuch("zip-bomb", (
                    f"inflates past its declared {info.file_size} bytes; not read")) from exc
            raise
        finally:
            self._budget -= seen

    def _inflates_past_declared(self, info: zipfile.ZipInfo) -> bool:
        """After a CRC failure: does the raw deflate stream hold more than was declared?
        Inflated with a cap, so a bomb costs at most the declared size plus one byte."""
        if info.compress_type != zipfile.ZIP_DEFLATED:
            return False
        cap = info.file_size + 1
        try:
            with self.path.open("rb") as fp:
                fp.seek(info.header_offset)
                header = fp.read(_LOCAL_HEADER.size)
                if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
                    return False
                fields = _LOCAL_HEADER.unpack(header)
                fp.seek(info.header_offset + _LOCAL_HEADER.size + fields[9] + fields[10])
                inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                left, total = info.compress_size, 0
                while left > 0 and total < cap:
                    buf = fp.read(min(CHUNK, left))
                    if not buf:
                        break
                    left -= len(buf)
                    total += len(inflater.decompress(buf, cap - total))
                    while inflater.unconsumed_tail and total < cap:
                        total += len(inflater.decompress(inflater.unconsumed_tail, cap - total))
                return total >= cap
        except (OSError, zlib.error, struct.error):
            return False

    def read(self, name: str) -> bytes | None:
        """The member's bytes, or None (with a diagnostic) when it cannot be read safely."""
        buffer = io.BytesIO()
        return buffer.getvalue() if self.copy(name, buffer) else None

    def copy(self, name: str, out: IO[bytes]) -> bool:
        """Stream one member into ``out``; False (with a diagnostic) when it cannot be."""
        if name not in self._infos or self._zf is None:
            return False
        try:
            for chunk in self._chunks(name):
                out.write(chunk)
            return True
        except TooMuch as exc:
            self.read_diagnostics.append(self._diag(exc.kind, str(exc), name))
        except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, OSError, EOFError,
                RuntimeError, NotImplementedError, ValueError, struct.error) as exc:
            # RuntimeError: encrypted member; NotImplementedError: unknown compression.
            self.read_diagnostics.append(self._diag(
                "corrupt-archive", f"member cannot be read: {exc}", name))
        return False


def open_zip(path: Path, *, limits: ArchiveLimits, label: str | None = None) -> ZipReader:
    """Open a zip for reading; never raises for a bad archive (see ``ZipReader``).
    ``label`` is the root-relative path used in diagnostics (default: the file name)."""
    return ZipReader(path, limits=limits, label=label if label is not None else path.name)


def read_zip_members(path: Path, *, limits: ArchiveLimits, label: str | None = None,
                     want: Callable[[str], bool] | None = None,
                     ) -> tuple[dict[str, bytes], list[Diagnostic]]:
    """Every safe regular member (or those ``want`` accepts), read into memory."""
    with open_zip(path, limits=limits, label=label) as zr:
        out: dict[str, bytes] = {}
        for name in zr.names:
            if want is not None and not want(name):
                continue
            data = zr.read(name)
            if data is not None:
                out[name] = data
        return out, zr.diagnostics + zr.read_diagnostics


def extract_zip(path: Path, dest: Path, limits: ArchiveLimits, label: str) -> list[Diagnostic]:
    diags: list[Diagnostic] = []
    with open_zip(path, limits=limits, label=label) as zr:
        for name in zr.names:
            target = safe_target(dest, name)
            try:
                if target is None:
                    raise TooMuch("path-traversal", "would land outside the unpack directory")
                target.parent.mkdir(parents=True, exist_ok=True)
                if safe_target(dest, name) is None:
                    raise TooMuch("path-traversal", "would land outside the unpack directory")
                with open_new(target) as out:
                    ok = zr.copy(name, out)
                if not ok:
                    target.unlink(missing_ok=True)
            except TooMuch as exc:
                diags.append(Diagnostic(path=f"{label}/{name}", kind=exc.kind,
                                        message=f"not unpacked: {exc}"))
            except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
                diags.append(Diagnostic(path=f"{label}/{name}", kind="duplicate-member",
                                        message=f"a file and a folder share this name; not "
                                                f"unpacked ({exc.strerror or exc})"))
        return zr.diagnostics + zr.read_diagnostics + diags
