"""A meson.build reader: function and method calls with their string arguments, keyword
arguments and line numbers, and whether each call sits inside an ``if`` block.

Meson's grammar is small: ``#`` comments, ``'...'`` and ``'''...'''`` strings (``f'...'`` for
format strings), ``name(args)`` calls and ``obj.method(args)`` method calls, and
``if``/``elif``/``else``/``endif`` blocks. Nothing is evaluated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gilaudit.frontends.textscan import LineIndex

__all__ = ["MesonCall", "list_assignments", "parse_meson"]

_TOKEN = re.compile(r"#[^\n]*|f?'''.*?(?:'''|\Z)|f?'(?:\\.|[^'\\\n])*'?", re.DOTALL)
_STRING = re.compile(r"f?'''(.*?)'''|f?'((?:\\.|[^'\\\n])*)'", re.DOTALL)
_CALL = re.compile(r"(\.?)\b([A-Za-z_]\w*)\s*\(")
_KEYWORD = re.compile(r"^[ \t]*(if|elif|else|endif|foreach|endforeach)\b", re.MULTILINE)
_KWARG = re.compile(r"\b([A-Za-z_]\w*)\s*:")
_NOT_NEWLINE = re.compile(r"[^\n]")
_ASSIGN = re.compile(r"^[ \t]*([A-Za-z_]\w*)[ \t]*\+?=[ \t]*", re.MULTILINE)


@dataclass(frozen=True, kw_only=True, slots=True)
class MesonCall:
    name: str  # function or method name
    method: bool  # called as `obj.name(...)`
    line: int
    col: int
    text: str  # the argument text, comments blanked, strings kept
    strings: tuple[str, ...]  # every string literal among the arguments, unquoted
    kwargs: tuple[str, ...]  # keyword argument names
    conditional: bool  # inside an if block


def _strip_comments(text: str) -> tuple[str, str]:
    """(code with comments blanked, bare with comments and string contents blanked)."""
    code: list[str] = []
    bare: list[str] = []
    last = 0
    for m in _TOKEN.finditer(text):
        token = m.group(0)
        code.append(text[last:m.start()])
        bare.append(text[last:m.start()])
        if token.startswith("#"):
            blank = _NOT_NEWLINE.sub(" ", token)
            code.append(blank)
            bare.append(blank)
        else:
            code.append(token)
            bare.append(_NOT_NEWLINE.sub(" ", token))
        last = m.end()
    code.append(text[last:])
    bare.append(text[last:])
    return "".join(code), "".join(bare)


def _close(bare: str, open_pos: int) -> int:
    depth = 0
    for j in range(open_pos, len(bare)):
        c = bare[j]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return j
    return -1


def parse_meson(text: str) -> list[MesonCall]:
    code, bare = _strip_comments(text)
    index = LineIndex.of(code)
    # Mark every line between an `if` and its `endif`.
    depth = 0
    marks: dict[int, int] = {}
    for m in _KEYWORD.finditer(bare):
        line, _ = index.line_col(m.start())
        if m.group(1) == "if":
            depth += 1
        elif m.group(1) == "endif":
            depth = max(0, depth - 1)
        marks[line] = depth
    level = 0
    conditional_lines = set()
    for line in range(1, index.count + 1):
        if line in marks:
            level = marks[line]
            if level > 0:
                conditional_lines.add(line)
            continue
        if level > 0:
            conditional_lines.add(line)
    calls: list[MesonCall] = []
    for m in _CALL.finditer(bare):
        if m.group(2) in ("if", "elif", "foreach", "and", "or", "not"):
            continue
        open_pos = m.end() - 1
        close = _close(bare, open_pos)
        if close < 0:
            continue
        inner = code[open_pos + 1:close]
        inner_bare = bare[open_pos + 1:close]
        strings = tuple((s.group(1) if s.group(1) is not None else s.group(2) or "")
                        for s in _STRING.finditer(inner))
        kwargs = tuple(k.group(1) for k in _KWARG.finditer(inner_bare))
        line, col = index.line_col(m.start(2))
        calls.append(MesonCall(name=m.group(2), method=m.group(1) == ".", line=line, col=col,
                               text=inner, strings=strings, kwargs=kwargs,
                               conditional=line in conditional_lines))
    return calls


def list_assignments(text: str) -> dict[str, tuple[str, ...]]:
    """Variables assigned a list literal or a call (``f2py = [py, '-m', 'numpy.f2py']``,
    ``prog = find_program('f2py')``): name -> every string literal on the right-hand side."""
    code, bare = _strip_comments(text)
    out: dict[str, tuple[str, ...]] = {}
    for m in _ASSIGN.finditer(bare):
        start = m.end()
        literal = start < len(bare) and bare[start] in "[("
        if not literal and not re.match(r"\w+\s*\(", bare[start:start + 80]):
            continue
        open_pos = start if literal else bare.find("(", start)
        close = _close(bare, open_pos)
        if close < 0:
            continue
        strings = tuple((s.group(1) if s.group(1) is not None else s.group(2) or "")
                        for s in _STRING.finditer(code[start:close + 1]))
        out[m.group(1)] = out.get(m.group(1), ()) + strings
    return out
