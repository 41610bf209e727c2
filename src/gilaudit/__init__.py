"""gilaudit: find what breaks in CPython extensions on free-threaded Python (PEP 703)."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
