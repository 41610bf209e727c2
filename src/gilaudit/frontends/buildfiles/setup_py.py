"""What a `setup.py` declares, read from its syntax tree without running it."""

from __future__ import annotations

import ast

__all__ = ["setup_requires"]


def setup_requires(tree: ast.Module) -> list[str]:
    """The strings of every literal `setup_requires=[...]` keyword in the file."""
    out: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for k in node.keywords:
            if k.arg != "setup_requires":
                continue
            try:
                value = ast.literal_eval(k.value)
            except (ValueError, TypeError, SyntaxError, RecursionError):
                continue
            if isinstance(value, list | tuple):
                out += [v for v in value if isinstance(v, str)]
    return out
