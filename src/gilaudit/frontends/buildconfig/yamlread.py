"""YAML with line numbers, through PyYAML's safe composer: nodes, never constructed objects.

Composing keeps every scalar as the text it was written as (GitHub's ``on:`` stays a string,
``3.10`` stays ``"3.10"``, not the float 3.1) and records where it stands. Aliases are shared
nodes, so the conversion caps the number of nodes it visits: a "billion laughs" document
becomes a diagnostic, not a hang.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["YNode", "YamlError", "load_yaml"]

# PyYAML ships no type information; importing it through importlib keeps mypy --strict honest
# without a stub package (everything from it is handled as Any here and typed on the way out).
_yaml: Any = importlib.import_module("yaml")
_MAX_NODES = 200_000


class YamlError(ValueError):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True, kw_only=True, slots=True)
class YNode:
    kind: str  # "map" | "seq" | "scalar"
    line: int  # 1-based
    value: str = ""  # for scalars
    items: tuple[tuple[YNode, YNode], ...] = ()  # for maps: (key, value)
    children: tuple[YNode, ...] = ()  # for sequences

    def get(self, key: str) -> YNode | None:
        for k, v in self.items:
            if k.kind == "scalar" and k.value == key:
                return v
        return None

    def key_node(self, key: str) -> YNode | None:
        for k, _v in self.items:
            if k.kind == "scalar" and k.value == key:
                return k
        return None

    def scalars(self) -> Iterator[YNode]:
        """Every scalar below this node (keys included), depth first."""
        stack: list[YNode] = [self]
        while stack:
            node = stack.pop()
            if node.kind == "scalar":
                yield node
            elif node.kind == "map":
                for k, v in reversed(node.items):
                    stack.extend((v, k))
            else:
                stack.extend(reversed(node.children))

    def values(self) -> list[YNode]:
        """A sequence's items, or a scalar as a one-item list."""
        if self.kind == "seq":
            return list(self.children)
        return [self] if self.kind == "scalar" else []

    @property
    def truthy(self) -> bool:
        return self.kind == "scalar" and self.value.strip().lower() in ("true", "yes", "on",
                                                                        "1")


def _convert(node: Any, budget: list[int]) -> YNode:
    budget[0] -= 1
    if budget[0] < 0:
        raise YamlError(f"more than {_MAX_NODES} nodes (aliases expanding?)", None)
    line = int(node.start_mark.line) + 1
    if isinstance(node, _yaml.ScalarNode):
        return YNode(kind="scalar", line=line, value=str(node.value))
    if isinstance(node, _yaml.SequenceNode):
        return YNode(kind="seq", line=line,
                     children=tuple(_convert(c, budget) for c in node.value))
    items = tuple((_convert(k, budget), _convert(v, budget)) for k, v in node.value)
    return YNode(kind="map", line=line, items=items)


def load_yaml(text: str) -> YNode | None:
    """The document's root node (None for an empty file); raises ``YamlError``."""
    try:
        node = _yaml.compose(text, Loader=_yaml.SafeLoader)
    except _yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else None
        raise YamlError(f"{exc.problem or exc}", line) from None
    except (_yaml.YAMLError, RecursionError, ValueError) as exc:
        raise YamlError(str(exc), None) from None
    if node is None:
        return None
    try:
        return _convert(node, [_MAX_NODES])
    except RecursionError:
        raise YamlError("nesting too deep", None) from None
