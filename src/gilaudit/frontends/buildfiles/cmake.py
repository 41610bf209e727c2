"""A CMake command reader: ``name(args...)`` with line numbers, quoted, bracket and unquoted
arguments, line and bracket comments, and whether each command sits inside an ``if()`` block.

No variable is expanded and nothing is evaluated; callers treat an argument holding ``${...}``
or a generator expression ``$<...>`` as unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CMakeArg", "CMakeCommand", "CMakeError", "parse_cmake"]

_SPACE = re.compile(r"[ \t\r\n]+")
_BRACKET_OPEN = re.compile(r"\[(=*)\[")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_UNQUOTED = re.compile(r'(?:[^\s()#"\\]|\\.)+')


class CMakeError(ValueError):
    """The file does not follow CMake's command syntax (line number in ``line``)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True, kw_only=True, slots=True)
class CMakeArg:
    text: str  # without quotes or bracket delimiters
    line: int
    quoted: bool = False

    @property
    def unknown(self) -> bool:
        """Holds a variable reference or generator expression: its value is not known here."""
        return "${" in self.text or "$<" in self.text or "$ENV{" in self.text


@dataclass(frozen=True, kw_only=True, slots=True)
class CMakeCommand:
    name: str  # lower case, as CMake compares command names
    args: tuple[CMakeArg, ...]
    line: int
    col: int
    conditional: bool  # inside an if()/elseif()/else() block


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def line_at(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def skip_bracket(self, pos: int) -> int:
        """End offset of a bracket argument or comment that opens at ``pos``."""
        m = _BRACKET_OPEN.match(self.text, pos)
        assert m is not None
        close = "]" + m.group(1) + "]"
        end = self.text.find(close, m.end())
        if end < 0:
            raise CMakeError("unterminated bracket argument or comment", self.line_at(pos))
        return end + len(close)

    def skip_space_and_comments(self) -> None:
        text = self.text
        while self.pos < len(text):
            m = _SPACE.match(text, self.pos)
            if m:
                self.pos = m.end()
                continue
            if text[self.pos] == "#":
                if _BRACKET_OPEN.match(text, self.pos + 1):
                    self.pos = self.skip_bracket(self.pos + 1)
                else:
                    nl = text.find("\n", self.pos)
                    self.pos = len(text) if nl < 0 else nl
                continue
            break

    def quoted(self) -> str:
        text = self.text
        start = self.pos
        i = start + 1
        while i < len(text):
            ch = text[i]
            if ch == "\\":
                i += 2
                continue
            if ch == '"':
                self.pos = i + 1
                return text[start + 1:i]
            i += 1
        raise CMakeError("unterminated quoted argument", self.line_at(start))

    def arguments(self, open_pos: int) -> tuple[CMakeArg, ...]:
        """Arguments up to the parenthesis closing the one at ``open_pos``."""
        text = self.text
        self.pos = open_pos + 1
        depth = 1
        args: list[CMakeArg] = []
        while True:
            self.skip_space_and_comments()
            if self.pos >= len(text):
                raise CMakeError("unterminated command (missing ')')", self.line_at(open_pos))
            ch = text[self.pos]
            line = self.line_at(self.pos)
            if ch == "(":
                depth += 1
                self.pos += 1
            elif ch == ")":
                depth -= 1
                self.pos += 1
                if depth == 0:
                    return tuple(args)
            elif ch == '"':
                args.append(CMakeArg(text=self.quoted(), line=line, quoted=True))
            elif ch == "[" and _BRACKET_OPEN.match(text, self.pos):
                start = self.pos
                end = self.skip_bracket(start)
                m = _BRACKET_OPEN.match(text, start)
                assert m is not None
                inner = text[m.end():end - len(m.group(0))]
                args.append(CMakeArg(text=inner, line=line, quoted=True))
                self.pos = end
            else:
                m = _UNQUOTED.match(text, self.pos)
                if m is None:
                    self.pos += 1  # a stray character CMake would reject; step over it
                    continue
                args.append(CMakeArg(text=m.group(0), line=line))
                self.pos = m.end()


def parse_cmake(text: str) -> list[CMakeCommand]:
    """Every command invocation in order; raises ``CMakeError`` on malformed input."""
    scanner = _Scanner(text)
    commands: list[CMakeCommand] = []
    depth = 0  # if() nesting
    while True:
        scanner.skip_space_and_comments()
        if scanner.pos >= len(text):
            return commands
        m = _IDENT.match(text, scanner.pos)
        if m is None:
            raise CMakeError(f"expected a command name, found {text[scanner.pos]!r}",
                             scanner.line_at(scanner.pos))
        name = m.group(0).lower()
        start = m.start()
        scanner.pos = m.end()
        scanner.skip_space_and_comments()
        if scanner.pos >= len(text) or text[scanner.pos] != "(":
            raise CMakeError(f"command {m.group(0)!r} has no argument list",
                             scanner.line_at(start))
        args = scanner.arguments(scanner.pos)
        line = scanner.line_at(start)
        col = start - (text.rfind("\n", 0, start) + 1) + 1
        if name == "endif":
            depth = max(0, depth - 1)
        commands.append(CMakeCommand(name=name, args=args, line=line, col=col,
                                     conditional=depth > 0 and name not in ("if", "endif")))
        if name == "if":
            depth += 1
