"""What every archive reader shares: the limits, the member-name checks, and the one safe way
to create a file under the private unpack directory."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = [
    "CHUNK", "ArchiveLimits", "TooMuch", "member_problem", "normalised", "open_new",
    "safe_target", "shown",
]

CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True, kw_only=True, slots=True)
class ArchiveLimits:
    """How much of an archive gilaudit is willing to read. The defaults sit far above real
    wheels and sdists (numpy's largest wheel member is about 25 MB, its best-compressed member
    about 14:1) and far below what would hurt the machine."""

    max_members: int = 100_000
    max_total_bytes: int = 1 << 30  # inflated bytes read from one archive, in all
    max_member_bytes: int = 256 << 20
    max_ratio: float = 100.0  # inflated / compressed, per zip member and for a whole tarball
    ratio_floor_bytes: int = 1 << 20  # below this size a high ratio is normal (text, zeros)
    max_path_length: int = 1024


def member_problem(name: str, limits: ArchiveLimits) -> tuple[str, str] | None:
    """(kind, reason) when a member name could not be unpacked safely, else None."""
    if len(name) > limits.max_path_length:
        return "long-member-name", f"name longer than {limits.max_path_length} characters"
    if "\x00" in name:
        return "path-traversal", "name contains a NUL byte"
    if "\\" in name:
        # Windows tools treat a backslash as a separator: `..\\..\\evil` climbs out there.
        return "path-traversal", "name contains a backslash"
    if name.startswith("/"):
        return "path-traversal", "absolute name"
    if _DRIVE.match(name):
        return "path-traversal", "name starts with a drive letter"
    if ".." in name.split("/"):
        return "path-traversal", "name climbs out with `..`"
    return None


def normalised(name: str) -> str:
    """`./a//b/` and `a/b` are the same file once unpacked: one key for duplicate checks."""
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def shown(name: str) -> str:
    """A hostile name, printable and bounded, for a message."""
    text = name if len(name) <= 200 else name[:200] + "..."
    return repr(text)


class TooMuch(Exception):
    """Reading went over a limit; ``kind`` is the diagnostic kind."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def safe_target(dest: Path, name: str) -> Path | None:
    """Where a checked member name lands under ``dest``; None if it would not be inside."""
    target = dest.joinpath(*name.split("/"))
    parent = os.path.realpath(target.parent)
    root = os.path.realpath(dest)
    if parent != root and not parent.startswith(root + os.sep):
        return None
    return target


def open_new(target: Path) -> IO[bytes]:
    """A new file that was not there before, never through a link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | \
        getattr(os, "O_BINARY", 0)
    return os.fdopen(os.open(target, flags, 0o644), "wb")
