"""Reading wheels and sdists without trusting them.

An archive is input like any other: it can be truncated, lie about its sizes (a zip bomb),
name members outside the place it is unpacked to (`../../evil`, `/etc/x`, `C:\\x`), or hold
links and devices. Every such problem is a ``Diagnostic`` with a kind (`corrupt-archive`,
`zip-bomb`, `too-large`, `path-traversal`, `long-member-name`, `link-member`,
`special-member`, `duplicate-member`, `too-many-members`); the hostile member is skipped and
the rest are kept. Zip members are read into memory; an sdist is unpacked only into a private
directory the caller created, and nothing is ever written outside it.

Sizes are checked twice: what the archive declares (before anything is inflated) and what
actually comes out (counted while reading), because the declarations are attacker-controlled.
The work is split by format: ``limits`` (limits, name checks), ``zip`` and
``tar``; this package is the API.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gilaudit.archives.limits import ArchiveLimits, member_problem
from gilaudit.archives.tar import extract_tar, read_tar_members
from gilaudit.archives.zip import ZipReader, extract_zip, open_zip, read_zip_members
from gilaudit.model import Diagnostic

__all__ = [
    "ArchiveLimits", "ZipReader", "extract_sdist", "member_problem", "open_zip",
    "read_sdist_members", "read_zip_members",
]


def _is_zip(path: Path) -> bool:
    try:
        with path.open("rb") as fp:
            return fp.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def extract_sdist(path: Path, dest: Path, *, limits: ArchiveLimits,
                  label: str | None = None) -> list[Diagnostic]:
    """Unpack an sdist (.tar.gz, .tar.bz2, .tar.xz, .tar or .zip) into ``dest``, a private
    directory the caller created. Member names are kept as in the archive (the top-level
    folder included: the caller prefixes paths); hostile members are skipped with a
    diagnostic and never written. ``label`` is the root-relative path used in diagnostics."""
    if not dest.is_dir():
        raise ValueError(f"{dest} must be an existing directory")
    shown = label if label is not None else path.name
    if _is_zip(path):
        return extract_zip(path, dest, limits, shown)
    return extract_tar(path, dest, limits, shown)


def read_sdist_members(path: Path, *, limits: ArchiveLimits, want: Callable[[str], bool],
                       label: str | None = None) -> tuple[dict[str, bytes], list[Diagnostic]]:
    """The members of an sdist that ``want`` accepts, read into memory (for PKG-INFO and the
    like, without unpacking anything)."""
    shown = label if label is not None else path.name
    if _is_zip(path):
        return read_zip_members(path, limits=limits, label=shown, want=want)
    return read_tar_members(path, limits, want, shown)
