from __future__ import annotations

from gilaudit.cli import entrypoint

entrypoint()
