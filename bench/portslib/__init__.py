"""The ports benchmark's parts (`make bench-ports`, bench/bench_ports.py): the data file, the
fetching of releases, the truth derived from each port, and the scoring of a gilaudit report
against it. Everything but `fetch` is pure and tested without network
(tests/test_bench_ports.py)."""

from __future__ import annotations

from .config import ConfigError, Pair, Release, load
from .families import FAMILIES
from .functions import Function, functions_of
from .scoring import Score, errors_and_warnings, hazard_categories, score
from .sources import source_files
from .truth import Override, Truth, TruthItem, Unlocated, apply_overrides, derive_truth

__all__ = [
    "FAMILIES",
    "ConfigError",
    "Function",
    "Override",
    "Pair",
    "Release",
    "Score",
    "Truth",
    "TruthItem",
    "Unlocated",
    "apply_overrides",
    "derive_truth",
    "errors_and_warnings",
    "functions_of",
    "hazard_categories",
    "load",
    "score",
    "source_files",
]
