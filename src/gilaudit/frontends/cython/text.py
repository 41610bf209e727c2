"""What Cython (and the Python-like build files) say in comments, read from the text alone:
header directive comments, the first line of code, `include` statements and inline
``# gilaudit: ignore[...]`` suppressions. No parser needed, so this works without Cython."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from gilaudit.frontends.contract import Suppression

__all__ = [
    "Comment", "Directive", "code_only", "comments", "decode_source", "directive_comments",
    "first_code_line", "includes", "language_level", "nesting", "suppressions",
]

# A comment, or a string literal (so that `#` inside a string is not taken for a comment).
# Prefixes (b, r, u, f, c) do not matter: the literal starts at its quote either way.
_COMMENT_OR_STRING = re.compile(
    r"#[^\n]*"
    r"|'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\""
    r"|'(?:\\.|[^\\'\n])*'|\"(?:\\.|[^\\\"\n])*\"",
    re.DOTALL,
)
# Cython's own pattern for a directive comment (Parsing.p_compiler_directive_comments).
_DIRECTIVE = re.compile(r"^#\s*cython\s*:\s*((?:\w|[.])+\s*=.*)$")
_SUPPRESS = re.compile(r"^#\s*gilaudit:\s*ignore\b(?:\[([^\]]*)\])?")
_CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_INCLUDE = re.compile(r"^[ \t]*include[ \t]+(?:'([^'\n]+)'|\"([^\"\n]+)\")", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Comment:
    line: int
    col: int  # 1-based
    text: str  # from the `#` to the end of the line, right-stripped


@dataclass(frozen=True, slots=True)
class Directive:
    line: int
    col: int
    name: str
    value: str  # as written, stripped
    in_header: bool  # honoured by Cython: a top-level comment line before any code


def decode_source(raw: bytes) -> str:
    """Decode like Cython does: a PEP 263 coding comment on line 1 or 2, else UTF-8 (a BOM is
    dropped), with universal newlines. Raises UnicodeDecodeError or LookupError (unknown
    codec) on bad input."""
    encoding = "utf-8"
    for line in raw.split(b"\n", 2)[:2]:
        m = _CODING.match(line)
        if m:
            encoding = m.group(1).decode("ascii")
            break
        if line.strip() and not line.lstrip().startswith(b"#"):
            break
    codecs.lookup(encoding)
    text = raw.decode(encoding)
    # Cython opens sources with universal newlines; its parser rejects a bare `\r`, and a
    # project written on Windows (imagecodecs) has nothing but CRLF.
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text[1:] if text.startswith("\ufeff") else text


def _line_starts(text: str) -> list[int]:
    starts = [0]
    starts.extend(m.end() for m in re.finditer("\n", text))
    return starts


def _line_col(starts: list[int], offset: int) -> tuple[int, int]:
    lo, hi = 0, len(starts) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if starts[mid] <= offset:
            lo = mid
        else:
            hi = mid - 1
    return lo + 1, offset - starts[lo] + 1


def comments(text: str) -> list[Comment]:
    starts = _line_starts(text)
    out = []
    for m in _COMMENT_OR_STRING.finditer(text):
        if m.group(0).startswith("#"):
            line, col = _line_col(starts, m.start())
            out.append(Comment(line=line, col=col, text=m.group(0).rstrip()))
    return out


def code_only(text: str) -> str:
    """The text with comments blanked (strings kept), line structure unchanged."""
    return _COMMENT_OR_STRING.sub(
        lambda m: " " * len(m.group(0)) if m.group(0).startswith("#") else m.group(0), text)


def _no_comments_or_strings(text: str) -> str:
    return _COMMENT_OR_STRING.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def first_code_line(text: str) -> int:
    """The first line holding anything but comments and blanks (a docstring is code);
    0 when there is none."""
    for number, line in enumerate(code_only(text).splitlines(), 1):
        if line.strip():
            return number
    return 0


def directive_comments(text: str) -> list[Directive]:
    """Every `# cython: name=value, ...` comment, one entry per name, with whether Cython
    honours it: only comment lines starting in column 1 before the first code line."""
    first = first_code_line(text) or 1 << 30
    out = []
    for c in comments(text):
        m = _DIRECTIVE.match(c.text)
        if not m:
            continue
        in_header = c.col == 1 and c.line < first
        for item in m.group(1).split(","):
            name, sep, value = item.partition("=")
            if sep and name.strip():
                out.append(Directive(line=c.line, col=c.col, name=name.strip(),
                                     value=value.strip(), in_header=in_header))
    return out


def language_level(text: str) -> str | None:
    """The header's `language_level` (it changes what parses: `print x` at level 2)."""
    for d in directive_comments(text):
        if d.in_header and d.name == "language_level" and d.value in ("2", "3", "3str"):
            return d.value
    return None


def nesting(text: str) -> tuple[int, int]:
    """(deepest bracket nesting, deepest block indentation level) outside comments and
    strings. Cython's compiled parser recurses on both without a recursion check, so hostile
    input nested thousands deep overflows the C stack; the caller refuses such files."""
    depth = deepest = levels = 0
    widths = [0]
    continued = False
    for line in _no_comments_or_strings(text).splitlines():
        stripped = line.lstrip(" \t")
        if stripped and depth == 0 and not continued:
            # A statement line: its indentation opens or closes blocks.
            width = len(line) - len(stripped)
            while len(widths) > 1 and width < widths[-1]:
                widths.pop()
            if width > widths[-1]:
                widths.append(width)
            levels = max(levels, len(widths) - 1)
        for ch in stripped:
            if ch in "([{":
                depth += 1
                deepest = max(deepest, depth)
            elif ch in ")]}":
                depth = max(0, depth - 1)
        continued = stripped.rstrip().endswith("\\")
    return deepest, levels


def includes(text: str) -> list[tuple[int, str]]:
    """(line, file name) of every `include "file"` statement outside comments and strings."""
    # The file name is a string literal: find the statements with every literal blanked,
    # then read the name from the original text at the same place.
    bare = _no_comments_or_strings(text)
    starts = _line_starts(text)
    out = []
    for m in re.finditer(r"^[ \t]*include[ \t]+", bare, re.MULTILINE):
        name = _INCLUDE.match(text, m.start())
        if name:
            out.append((_line_col(starts, m.start())[0], name.group(1) or name.group(2)))
    return out


def suppressions(text: str) -> tuple[Suppression, ...]:
    """`# gilaudit: ignore[FT094, FT095] reason` at the start of a comment; a bare `ignore`
    has no ids (reported by the pipeline as too broad)."""
    out = []
    for c in comments(text):
        m = _SUPPRESS.match(c.text)
        if not m:
            continue
        ids = () if m.group(1) is None else tuple(
            i.strip().upper() for i in m.group(1).split(",") if i.strip())
        out.append(Suppression(c.line, c.col, ids, c.text.strip()))
    return tuple(out)
