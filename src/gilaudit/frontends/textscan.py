"""Lexical helpers over C source text whose offsets match libclang's byte offsets.

libclang gives us structure (functions, declarations, statements, what the preprocessor
skipped); call sites, macro uses and region markers are read from the preprocessed-away-aware
text, because macros such as ``PyList_GET_ITEM`` or ``Py_BEGIN_ALLOW_THREADS`` leave no call in
the AST, only their expansion.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

__all__ = [
    "KEYWORDS", "LineIndex", "blank", "blank_ranges", "find_close", "hash_suppressions",
    "if_conditions", "split_args", "strip_comments_and_strings", "suppression_ids", "suppressions",
]

KEYWORDS = frozenset({
    "if", "for", "while", "switch", "return", "sizeof", "defined", "do", "else", "case",
    "_Alignof", "alignof", "__attribute__", "__typeof__", "typeof", "decltype", "_Generic",
    "__builtin_expect", "static_assert", "_Static_assert", "catch", "new", "delete",
})

_COMMENT_OR_STRING = re.compile(
    r"//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'", re.DOTALL
)
# Only at the start of a comment, like `# type: ignore`: prose that mentions it is not one.
_SUPPRESS = re.compile(r"(?://|/\*)\s*gilaudit:\s*ignore\b(?:\[([^\]]*)\])?")


_NOT_NEWLINE = re.compile(r"[^\n]")


def blank(text: str) -> str:
    """Spaces for every character but newlines: offsets and line numbers stay."""
    return _NOT_NEWLINE.sub(" ", text)


def strip_comments_and_strings(text: str) -> tuple[str, str]:
    """Return (code, bare): code has comments blanked; bare also has string/char literals blanked.

    Both keep every offset and newline, so positions still match the original.
    """
    code_parts: list[str] = []
    bare_parts: list[str] = []
    last = 0
    for m in _COMMENT_OR_STRING.finditer(text):
        start, end = m.span()
        code_parts.append(text[last:start])
        bare_parts.append(text[last:start])
        token = m.group(0)
        if token.startswith(("//", "/*")):
            code_parts.append(blank(token))
            bare_parts.append(blank(token))
        else:
            code_parts.append(token)
            # Keep the quotes so that a blanked string still reads as one token.
            bare_parts.append(token[0] + " " * (len(token) - 2) + token[-1])
        last = end
    code_parts.append(text[last:])
    bare_parts.append(text[last:])
    return "".join(code_parts), "".join(bare_parts)


def blank_ranges(text: str, ranges: list[tuple[int, int]]) -> str:
    if not ranges:
        return text
    parts: list[str] = []
    last = 0
    for first, end in sorted(ranges):
        start = max(first, last)
        if end <= start:
            continue
        parts.append(text[last:start])
        parts.append(blank(text[start:end]))
        last = end
    parts.append(text[last:])
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class LineIndex:
    starts: tuple[int, ...]

    @classmethod
    def of(cls, text: str) -> LineIndex:
        starts = [0]
        pos = text.find("\n")
        while pos != -1:
            starts.append(pos + 1)
            pos = text.find("\n", pos + 1)
        return cls(tuple(starts))

    def line_col(self, offset: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.starts, offset) - 1
        return i + 1, offset - self.starts[i] + 1

    def offset(self, line: int, col: int) -> int:
        if line - 1 >= len(self.starts):
            return self.starts[-1]
        return self.starts[line - 1] + col - 1

    @property
    def count(self) -> int:
        return len(self.starts)


_PARENS = re.compile(r"[()]")
_SEPARATORS = {",": re.compile(r"[()\[\]{},]"), ";": re.compile(r"[()\[\]{};]")}


def find_close(bare: str, open_pos: int, limit: int | None = None) -> int:
    """Offset of the parenthesis closing the one at ``open_pos``, or -1."""
    depth = 0
    stop = len(bare) if limit is None else min(limit, len(bare))
    for m in _PARENS.finditer(bare, open_pos, stop):
        if m.group() == "(":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return m.start()
    return -1


def top_level_spans(bare: str, start: int, end: int, sep: str = ",") -> list[tuple[int, int]]:
    """(start, end) of each ``sep``-separated part of ``bare[start:end]`` outside brackets."""
    spans: list[tuple[int, int]] = []
    depth = 0
    last = start
    for m in _SEPARATORS[sep].finditer(bare, start, end):
        ch = m.group()
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0:
            spans.append((last, m.start()))
            last = m.start() + 1
    spans.append((last, end))
    return spans


def split_args(code: str, bare: str, open_pos: int, close_pos: int) -> tuple[str, ...]:
    """Top-level comma-separated arguments between two parentheses, whitespace-normalised."""
    args = [" ".join(code[a:b].split())
            for a, b in top_level_spans(bare, open_pos + 1, close_pos)]
    return () if args == [""] else tuple(args)


def suppressions(raw: str) -> list[tuple[int, str | None, str]]:
    """(offset, bracket contents or None, comment text) for every ``gilaudit: ignore`` comment."""
    out: list[tuple[int, str | None, str]] = []
    for m in _COMMENT_OR_STRING.finditer(raw):
        token = m.group(0)
        if not token.startswith(("//", "/*")):
            continue
        s = _SUPPRESS.match(token)
        if s:
            out.append((m.start() + s.start(), s.group(1), token.strip()))
    return out


# The same rule for `#` comments (TOML, YAML, Python, CMake, meson, requirements files).
_HASH_SUPPRESS = re.compile(r"(?:^|(?<=\s))#\s*gilaudit:\s*ignore\b(?:\[([^\]]*)\])?")


def suppression_ids(raw: str | None) -> tuple[str, ...]:
    """The rule ids in `ignore[FT011, FT012]`; () for a bare `ignore`."""
    if raw is None:
        return ()
    return tuple(i.strip().upper() for i in raw.split(",") if i.strip())


def hash_suppressions(text: str) -> list[tuple[int, int, tuple[str, ...], str]]:
    """(line, column, ids, comment) for every `# gilaudit: ignore[...]` comment."""
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        m = _HASH_SUPPRESS.search(line)
        if m:
            out.append((lineno, m.start() + 1, suppression_ids(m.group(1)),
                        line[m.start():].strip()))
    return out


_DIRECTIVE = re.compile(r"^[ \t]*#[ \t]*(if|ifdef|ifndef|elif|else|endif)\b(.*)$", re.MULTILINE)


def if_conditions(raw: str, index: LineIndex) -> list[tuple[int, tuple[str, ...]]]:
    """For every line that changes the #if nesting, the stack of conditions from that line on.

    ``#ifdef X`` is recorded as ``defined(X)``, ``#ifndef X`` as ``!defined(X)``, ``#else`` as
    ``!(cond)``; the result is a sorted list of (first line, conditions) steps.
    """
    stack: list[str] = []
    steps: list[tuple[int, tuple[str, ...]]] = [(1, ())]
    for m in _DIRECTIVE.finditer(raw):
        kind, rest = m.group(1), " ".join(m.group(2).split("//")[0].split())
        line, _ = index.line_col(m.start())
        if kind == "ifdef":
            stack.append(f"defined({rest})")
        elif kind == "ifndef":
            stack.append(f"!defined({rest})")
        elif kind == "if":
            stack.append(rest)
        elif kind == "elif" and stack:
            stack[-1] = f"!({stack[-1]}) && ({rest})"
        elif kind == "else" and stack:
            stack[-1] = f"!({stack[-1]})"
        elif kind == "endif" and stack:
            stack.pop()
        steps.append((line + 1, tuple(stack)))
    return steps
