"""Where functions start and end in a C, C++ or Cython source, without parsing it: the truth of
the ports benchmark is located by function, in releases that a compiler may not even accept
(old headers, another CPython).

C and C++: a definition is a name and a parenthesised parameter list followed by `{`, found
in the text with comments, string literals and preprocessor lines blanked out (a fallback
`#define Py_BEGIN_CRITICAL_SECTION(op) {` must not open a body); the body ends at the
matching brace. Cython: `def`, `cpdef` and `cdef` functions end at the first code line
indented no deeper than their header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Function", "enclosing", "functions_of", "is_cython", "masked_c"]

_C_FUNC = re.compile(
    r"^(?:[A-Za-z_][\w \t\*&:<>,]*?[ \t\*&])?([A-Za-z_][\w:~]*)[ \t]*\("
    r"([^;{}()]|\([^;{}()]*\))*\)\s*(?:const\s*)?(?:noexcept\s*)?\{", re.M)
_PY_FUNC = re.compile(r"^([ \t]*)(?:async\s+)?(?:cpdef|cdef|def)\s+(?:[\w\[\]\.\*, ]+\s+)?"
                      r"([A-Za-z_]\w*)\s*\(", re.M)
_KEYWORDS = frozenset({"if", "for", "while", "switch", "return", "sizeof", "else", "do",
                       "case", "catch", "defined"})
# Comments, string and character literals, and preprocessor lines (with continuations).
_DIRECTIVE = re.compile(r"^[ \t]*#[ \t]*(if|ifdef|ifndef|elif|else|endif)\b(.*)")
_C_NOISE = re.compile(
    r"/\*.*?\*/|//[^\n]*|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'|"
    r"^[ \t]*#(?:[^\n\\]|\\.|\\\n)*", re.S | re.M)


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    start: int  # 1-based lines, inclusive
    end: int
    body: str


def is_cython(path: str) -> bool:
    return path.endswith((".pyx", ".pxi", ".pxd"))


def masked_c(text: str, *, one_branch: bool = False) -> str:
    """``text`` with comments, literals and preprocessor lines replaced by spaces; newlines,
    so line numbers and offsets, are kept. ``one_branch``: the braces of an `#else`/`#elif`
    branch that does not balance its own are blanked too (`#if A  if (a) {  #else
    if (b) {  #endif` opens one block, not two); a balanced branch (a platform's functions)
    is kept whole."""
    masked = _C_NOISE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    if not one_branch:
        return masked
    lines = masked.split("\n")
    # per open conditional: (first line of the current branch, is it an alternative branch)
    stack: list[tuple[int, bool]] = []
    for i, raw in enumerate(text.split("\n")):
        m = _DIRECTIVE.match(raw) if not lines[i].strip() else None
        if m is None:
            continue
        word = m.group(1)
        if word.startswith("if"):
            stack.append((i + 1, False))
            continue
        if not stack:
            continue
        first, alternative = stack.pop()
        if alternative:
            branch = lines[first:i]
            if sum(ln.count("{") - ln.count("}") for ln in branch):
                lines[first:i] = [ln.replace("{", " ").replace("}", " ") for ln in branch]
        if word != "endif":
            stack.append((i + 1, True))
    return "\n".join(lines)


def functions_of(path: str, text: str) -> list[Function]:
    """The function definitions of one file, in order of their first line."""
    if is_cython(path):
        return _cython_functions(text)
    masked = masked_c(text, one_branch=True)
    out: list[Function] = []
    pos = 0
    while (m := _C_FUNC.search(masked, pos)) is not None:
        name = m.group(1).split("::")[-1]
        close = _brace_close(masked, m.end() - 1)
        if name in _KEYWORDS or close < 0:
            pos = m.end()
            continue
        out.append(Function(name, masked.count("\n", 0, m.start()) + 1,
                            masked.count("\n", 0, close) + 1, text[m.start():close + 1]))
        pos = close + 1  # C has no nested functions; C++ methods in a class body are found
    return out


def _brace_close(masked: str, open_pos: int) -> int:
    depth = 0
    for i in range(open_pos, len(masked)):
        ch = masked[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _cython_functions(text: str) -> list[Function]:
    lines = text.splitlines()
    out = []
    for m in _PY_FUNC.finditer(text):
        indent = len(m.group(1).expandtabs())
        line = text.count("\n", 0, m.start()) + 1
        end = len(lines)
        for j in range(line, len(lines)):
            s = lines[j]
            if s.strip() and not s.lstrip().startswith("#") and \
                    len(s.expandtabs()) - len(s.expandtabs().lstrip()) <= indent:
                end = j
                break
        while end > line and not lines[end - 1].strip():
            end -= 1
        first = line  # decorators just above belong to the function
        while first > 1 and lines[first - 2].lstrip().startswith("@"):
            first -= 1
        out.append(Function(m.group(2), first, end, "\n".join(lines[first - 1:end])))
    return out


def enclosing(functions: list[Function], line: int) -> Function | None:
    """The innermost function around a 1-based line (Cython functions nest)."""
    best: Function | None = None
    for f in functions:
        if f.start <= line <= f.end and (best is None or f.start >= best.start):
            best = f
    return best
