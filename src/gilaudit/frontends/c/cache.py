"""A content-addressed cache of the C front end's per-file facts.

The key covers the file's bytes, the exact compiler arguments, the toolchain (Python headers,
prelude) and gilaudit's version; each entry lists the project headers the file included with
their hashes, and is only reused while all of them are unchanged. Rules run on the cached facts
every time, so configuration and rule-text changes never need a re-parse.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from gilaudit import __version__
from gilaudit.cache import atomic_write, file_digest
from gilaudit.frontends.c.facts import FileFacts, facts_from_jsonable, facts_to_jsonable
from gilaudit.frontends.removed_api import table_digest

__all__ = ["FACTS_SCHEMA", "FactsCache"]

FACTS_SCHEMA = 40


class FactsCache:
    """Reads and writes entries under ``root``; every write is atomic (rename into place)."""

    def __init__(self, root: Path, *, project_root: Path) -> None:
        self.root = root / f"facts-v{FACTS_SCHEMA}"
        self.project_root = project_root
        self._digests: dict[str, str] = {}

    def key(self, content_digest: str, args: tuple[str, ...], toolchain: str) -> str:
        h = hashlib.sha256()
        for part in (__version__, str(FACTS_SCHEMA), table_digest(), toolchain, content_digest,
                     *args):
            h.update(part.encode("utf-8", "surrogateescape") + b"\0")
        return h.hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def _current_digest(self, rel: str) -> str:
        known = self._digests.get(rel)
        if known is None:
            try:
                known = file_digest((self.project_root / rel).read_bytes())
            except OSError:
                known = ""
            self._digests[rel] = known
        return known

    def get(self, key: str) -> FileFacts | None:
        try:
            raw = self._path(key).read_bytes()
            data: dict[str, Any] = json.loads(raw)
            facts = facts_from_jsonable(data["facts"])
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None  # missing or corrupt: parse again
        for rel, digest in facts.deps:
            if self._current_digest(rel) != digest:
                return None
        return facts

    def put(self, key: str, facts: FileFacts) -> None:
        payload = json.dumps({"facts": facts_to_jsonable(facts)}, separators=(",", ":"))
        atomic_write(self._path(key), payload.encode())
