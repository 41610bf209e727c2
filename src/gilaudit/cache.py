"""Content-addressed caches: whole-target results here; the C front end's per-file facts in
``gilaudit.frontends.c.cache``. Every write is atomic (rename into place)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["RESULTS_SCHEMA", "ResultCache", "atomic_write", "file_digest"]

# What a cached whole-target result holds; bump it when a Finding or the analysis changes shape.
RESULTS_SCHEMA = 7


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ResultCache:
    """Whole-target results keyed by everything that can change them: an unchanged tree with an
    unchanged configuration is answered without parsing or evaluating anything."""

    def __init__(self, root: Path) -> None:
        self.root = root / f"results-v{RESULTS_SCHEMA}"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads((self.root / f"{key}.json").read_bytes())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def put(self, key: str, data: dict[str, Any]) -> None:
        atomic_write(self.root / f"{key}.json", json.dumps(data, separators=(",", ":")).encode())


def atomic_write(path: Path, payload: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only or full cache only costs speed
