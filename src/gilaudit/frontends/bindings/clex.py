"""A careful C/C++ tokenizer for binding declarations, without a compiler.

Comments and string literals are blanked (offsets kept), and preprocessor conditionals are
followed only as far as the free-threaded build needs: ``Py_GIL_DISABLED`` is defined, ``0`` is
false, ``1`` is true, and every other condition is unknown, so both of its branches count as
compiled. That is enough to ignore ``#if 0`` blocks and ``#ifndef Py_GIL_DISABLED`` branches
while never guessing about version checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gilaudit.frontends.textscan import LineIndex, blank

__all__ = ["CText", "Tri", "evaluate_condition", "scan_c"]

Tri = bool | None  # True, False, or unknown

_TOKEN = re.compile(
    r"""//[^\n]*
      | /\*.*?(?:\*/|\Z)
      | (?:u8|[uUL])?R"(?P<delim>[^()\\\s"]{0,16})\(.*?\)(?P=delim)"
      | (?:u8|[uUL])?"(?:\\.|[^"\\\n])*"?
      | (?<![0-9A-Za-z_])'(?:\\.|[^'\\\n]){1,8}'
    """,
    re.DOTALL | re.VERBOSE,
)
_DIRECTIVE = re.compile(r"^[ \t]*#[ \t]*(\w+)(.*)$")
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)(?!\()[ \t]*(.*)$")
_EXPR_TOKEN = re.compile(r"\s*(defined\b|[A-Za-z_]\w*|0[xX][0-9A-Fa-f]+|\d+|&&|\|\||==|!=|"
                         r"<=|>=|[()!<>])")


@dataclass(frozen=True, kw_only=True, slots=True)
class CText:
    code: str  # comments blanked, string contents blanked (quotes kept); offsets as the input
    index: LineIndex
    dead_lines: frozenset[int]  # 1-based lines the free-threaded build does not compile
    directive_lines: frozenset[int]  # lines that belong to a preprocessor directive
    defines: dict[str, str]  # object-like macros: name -> replacement text

    def live(self, offset: int) -> bool:
        line, _ = self.index.line_col(offset)
        return line not in self.dead_lines


def _strip(text: str) -> str:
    parts: list[str] = []
    last = 0
    for m in _TOKEN.finditer(text):
        start, end = m.span()
        parts.append(text[last:start])
        token = m.group(0)
        if token.startswith(("//", "/*")):
            parts.append(blank(token))
        else:
            # Keep the prefix and the quotes so a blanked literal still reads as one token.
            first = min(i for i in (token.find('"'), token.find("'")) if i >= 0)
            closed = len(token) > first + 1 and token[-1] == token[first]
            body = token[first + 1:-1] if closed else token[first + 1:]
            parts.append(token[: first + 1] + blank(body) + (token[-1] if closed else ""))
        last = end
    parts.append(text[last:])
    return "".join(parts)


class _Expr:
    """Recursive descent over a preprocessor condition, in three-valued logic."""

    def __init__(self, text: str) -> None:
        self.tokens: list[str] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = _EXPR_TOKEN.match(text, pos)
            if m is None:
                self.tokens = ["?"]  # something we do not model: the whole condition is unknown
                return
            self.tokens.append(m.group(1))
            pos = m.end()
            if pos < len(text) and not text[pos:].strip():
                break
        self.pos = 0

    def peek(self) -> str:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ""

    def take(self) -> str:
        tok = self.peek()
        self.pos += 1
        return tok

    def parse(self) -> Tri:
        if self.tokens == ["?"] or not self.tokens:
            return None
        self.pos = 0
        value = self.or_expr()
        return value if self.pos == len(self.tokens) else None

    def or_expr(self) -> Tri:
        value = self.and_expr()
        while self.peek() == "||":
            self.take()
            right = self.and_expr()
            value = True if value is True or right is True else (
                False if value is False and right is False else None)
        return value

    def and_expr(self) -> Tri:
        value = self.unary()
        while self.peek() == "&&":
            self.take()
            right = self.unary()
            value = False if value is False or right is False else (
                True if value is True and right is True else None)
        return value

    def unary(self) -> Tri:
        tok = self.peek()
        if tok == "!":
            self.take()
            inner = self.unary()
            return None if inner is None else not inner
        if tok == "(":
            self.take()
            value = self.or_expr()
            if self.take() != ")":
                return None
            return value
        return self.comparison()

    def comparison(self) -> Tri:
        value = self.atom()
        if self.peek() in ("==", "!=", "<", ">", "<=", ">="):
            self.take()
            self.atom()
            return None  # version and value comparisons are not followed
        return value

    def atom(self) -> Tri:
        tok = self.take()
        if tok == "defined":
            paren = self.peek() == "("
            if paren:
                self.take()
            name = self.take()
            if paren and self.take() != ")":
                return None
            return True if name == "Py_GIL_DISABLED" else None
        if tok == "Py_GIL_DISABLED":
            return True
        if re.fullmatch(r"\d+", tok):
            return int(tok) != 0
        if re.fullmatch(r"0[xX][0-9A-Fa-f]+", tok):
            return int(tok, 16) != 0
        return None


def evaluate_condition(kind: str, rest: str) -> Tri:
    """The value of an ``#if``/``#ifdef``/``#ifndef``/``#elif`` line for the FT build."""
    rest = rest.strip()
    if kind in ("ifdef", "ifndef", "elifdef", "elifndef"):
        name = rest.split()[0] if rest.split() else ""
        value: Tri = True if name == "Py_GIL_DISABLED" else None
        if kind.endswith("ndef"):
            return None if value is None else not value
        return value
    return _Expr(rest).parse()


def _or(a: Tri, b: Tri) -> Tri:
    if a is True or b is True:
        return True
    if a is False and b is False:
        return False
    return None


def scan_c(text: str) -> CText:
    code = _strip(text)
    index = LineIndex.of(code)
    lines = code.split("\n")
    dead: set[int] = set()
    directive: set[int] = set()
    defines: dict[str, str] = {}
    # Each frame: (value of the current branch, whether some earlier branch was taken).
    frames: list[tuple[Tri, Tri]] = []
    i = 0
    while i < len(lines):
        start = i
        logical = lines[i]
        while logical.endswith("\\") and i + 1 < len(lines):
            i += 1
            logical = logical[:-1] + " " + lines[i]
        m = _DIRECTIVE.match(logical)
        is_dead = any(v is False for v, _ in frames)
        if m:
            for n in range(start, i + 1):
                directive.add(n + 1)
            kind, rest = m.group(1), m.group(2)
            if kind in ("if", "ifdef", "ifndef"):
                value = evaluate_condition(kind, rest)
                frames.append((value, value))
            elif kind in ("elif", "elifdef", "elifndef") and frames:
                _, seen = frames[-1]
                cond = evaluate_condition(kind, rest)
                value = False if seen is True else (
                    cond if seen is False else (False if cond is False else None))
                frames[-1] = (value, _or(seen, cond))
            elif kind == "else" and frames:
                _, seen = frames[-1]
                frames[-1] = (None if seen is None else not seen, True)
            elif kind == "endif" and frames:
                frames.pop()
            elif kind == "define" and not is_dead:
                d = _DEFINE.match(logical)
                if d:
                    defines.setdefault(d.group(1), " ".join(d.group(2).split()))
            if is_dead:
                for n in range(start, i + 1):
                    dead.add(n + 1)
        elif is_dead:
            for n in range(start, i + 1):
                dead.add(n + 1)
        i += 1
    return CText(code=code, index=index, dead_lines=frozenset(dead),
                 directive_lines=frozenset(directive), defines=defines)
