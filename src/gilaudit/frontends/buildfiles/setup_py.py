"""What a `setup.py` declares, read from its syntax tree without running it."""

from __future__ import annotations

import ast
from collections.abc import Iterator

__all__ = ["setup_requires", "setup_requires_values"]


def setup_requires_values(tree: ast.Module) -> Iterator[ast.expr]:
    """The expression of every `setup_requires=...` keyword of a call in the file."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield from (k.value for k in node.keywords if k.arg == "setup_requires")


def setup_requires(tree: ast.Module) -> list[str]:
    """The strings of every literal `setup_requires=[...]` keyword in the file."""
    out: list[str] = []
    for expr in setup_requires_values(tree):
        try:
            value = ast.literal_eval(expr)
        except (ValueError, TypeError, SyntaxError, RecursionError):
            continue
        if isinstance(value, list | tuple):
            out += [v for v in value if isinstance(v, str)]
    return out
