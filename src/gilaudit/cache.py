"""A content-addressed cache of per-file facts.

The key covers the file's bytes, the exact compiler arguments, the toolchain (Python headers,
prelude) and gilaudit's version; each entry lists the project headers the file included with
their hashes, and is only reused while all of them are unchanged. Rules run on the cached facts
every time, so configuration and rule-text changes never need a re-parse.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from gilaudit import __version__
from gilaudit.static.facts import FileFacts, facts_from_jsonable, facts_to_jsonable

__all__ = ["FACTS_SCHEMA", "FactsCache", "ResultCache", "file_digest"]

FACTS_SCHEMA = 7


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ResultCache:
    """Whole-target results keyed by everything that can change them: an unchanged tree with an
    unchanged configuration is answered without parsing or evaluating anything."""

    def __init__(self, root: Path) -> None:
        self.root = root / f"results-v{FACTS_SCHEMA}"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads((self.root / f"{key}.json").read_bytes())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def put(self, key: str, data: dict[str, Any]) -> None:
        _atomic_write(self.root / f"{key}.json", json.dumps(data, separators=(",", ":")).encode())


def _atomic_write(path: Path, payload: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only or full cache only costs speed


class FactsCache:
    """Reads and writes entries under ``root``; every write is atomic (rename into place)."""

    def __init__(self, root: Path, *, project_root: Path) -> None:
        self.root = root / f"facts-v{FACTS_SCHEMA}"
        self.project_root = project_root
        self._digests: dict[str, str] = {}

    def key(self, content_digest: str, args: tuple[str, ...], toolchain: str) -> str:
        h = hashlib.sha256()
        for part in (__version__, str(FACTS_SCHEMA), toolchain, content_digest, *args):
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
        _atomic_write(self._path(key), payload.encode())
