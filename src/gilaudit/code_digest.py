"""A digest of gilaudit's own code and data, part of every cache key: a cached result is only
reused by the very code that made it (an editable install changes without a new version)."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

__all__ = ["code_digest"]

_SUFFIXES = frozenset({".py", ".toml", ".h", ".j2", ".json", ".txt"})


@functools.cache
def code_digest() -> str:
    """sha256 over the package's files, by path and content (a few milliseconds, once)."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in _SUFFIXES and p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:32]
