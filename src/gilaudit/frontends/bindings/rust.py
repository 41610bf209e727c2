"""PyO3 ``#[pymodule]`` declarations in Rust sources, read syntactically.

The lexer knows what makes naive regexes wrong on Rust: nested block comments, raw strings
(``r#"..."#``), byte strings, and the difference between a char literal ``'a'`` and a lifetime
``'a``. Comments are blanked; strings are kept in ``code`` (attribute values such as
``name = "x"`` are read from it) and blanked in ``bare`` (where the structure is searched).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gilaudit.frontends.textscan import LineIndex, blank

__all__ = ["PyModuleDecl", "RustText", "find_pymodules", "scan_rust"]

_RAW_OPEN = re.compile(r"b?r(#*)\"")
_CHAR = re.compile(r"'(?:\\(?:x[0-9A-Fa-f]{2}|u\{[0-9A-Fa-f]{1,6}\}|.)|[^'\\\n])'")
_ATTR_START = re.compile(r"#\s*\[")
_PYMODULE = re.compile(r"^\s*(?:::\s*)?(?:pyo3\s*::\s*)?pymodule\b")
_GIL_USED = re.compile(r"\bgil_used\s*=\s*(true|false)\b")
_NAME = re.compile(r"\bname\s*=\s*\"([^\"]+)\"")
_ITEM = re.compile(r"\s*(?:pub\s*(?:\([^)]*\))?\s*)?(?:(?:unsafe|async|extern\s+\"C\")\s+)*"
                   r"(fn|mod)\s+(r#)?([A-Za-z_]\w*)")


@dataclass(frozen=True, kw_only=True, slots=True)
class RustText:
    code: str  # comments blanked
    bare: str  # comments and literal contents blanked
    index: LineIndex


def scan_rust(text: str) -> RustText:
    code: list[str] = []
    bare: list[str] = []
    i = 0
    n = len(text)
    last = 0

    def emit(upto: int, *, comment: bool, literal: bool) -> None:
        nonlocal last
        chunk = text[last:upto]
        if comment:
            code.append(blank(chunk))
            bare.append(blank(chunk))
        elif literal:
            code.append(chunk)
            bare.append(chunk[:1] + blank(chunk[1:-1]) + chunk[-1:] if len(chunk) > 1
                        else blank(chunk))
        else:
            code.append(chunk)
            bare.append(chunk)
        last = upto

    while i < n:
        ch = text[i]
        if ch == "/" and text.startswith("//", i):
            emit(i, comment=False, literal=False)
            end = text.find("\n", i)
            i = n if end < 0 else end
            emit(i, comment=True, literal=False)
            continue
        if ch == "/" and text.startswith("/*", i):
            emit(i, comment=False, literal=False)
            depth = 0
            j = i
            while j < n:
                if text.startswith("/*", j):
                    depth += 1
                    j += 2
                elif text.startswith("*/", j):
                    depth -= 1
                    j += 2
                    if depth == 0:
                        break
                else:
                    j += 1
            i = j
            emit(i, comment=True, literal=False)
            continue
        prev_ident = i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")
        if ch in "rb" and not prev_ident:
            m = _RAW_OPEN.match(text, i)
            if m:
                emit(i, comment=False, literal=False)
                close = '"' + m.group(1)
                end = text.find(close, m.end())
                i = n if end < 0 else end + len(close)
                emit(i, comment=False, literal=True)
                continue
        if ch == '"' or (ch == "b" and not prev_ident and text.startswith('b"', i)):
            emit(i, comment=False, literal=False)
            j = i + (2 if ch == "b" else 1)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            i = min(j + 1, n)
            emit(i, comment=False, literal=True)
            continue
        if ch == "'":
            m = _CHAR.match(text, i)
            if m:  # a char literal; otherwise a lifetime or label, which is plain code
                emit(i, comment=False, literal=False)
                i = m.end()
                emit(i, comment=False, literal=True)
                continue
        i += 1
    emit(n, comment=False, literal=False)
    code_text = "".join(code)
    return RustText(code=code_text, bare="".join(bare), index=LineIndex.of(code_text))


@dataclass(frozen=True, kw_only=True, slots=True)
class PyModuleDecl:
    name: str  # the Python-visible name (`name = "..."` or the function/module identifier)
    item: str  # the Rust identifier
    line: int  # of the `#[pymodule]` attribute
    col: int
    gil_used: bool | None  # None: not given
    conditional: bool  # gil_used appears only under cfg_attr


def _close_bracket(bare: str, open_pos: int) -> int:
    depth = 0
    for j in range(open_pos, len(bare)):
        c = bare[j]
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return j
    return -1


def find_pymodules(text: str) -> tuple[list[PyModuleDecl], RustText]:
    rt = scan_rust(text)
    bare, code = rt.bare, rt.code
    out: list[PyModuleDecl] = []
    pos = 0
    while True:
        m = _ATTR_START.search(bare, pos)
        if m is None:
            break
        # One group of consecutive attributes in front of an item.
        group: list[tuple[int, str]] = []
        cur = m.start()
        while True:
            a = _ATTR_START.match(bare, cur)
            if a is None:
                break
            close = _close_bracket(bare, a.end() - 1)
            if close < 0:
                break
            group.append((a.start(), code[a.end():close]))
            cur = close + 1
            while cur < len(bare) and bare[cur] in " \t\r\n":
                cur += 1
        pos = max(cur, m.end())
        if not group:
            continue
        module_attrs = [(start, body) for start, body in group if _PYMODULE.match(body)]
        if not module_attrs:
            continue
        item = _ITEM.match(bare, cur)
        if item is None:
            continue
        ident = item.group(3)
        name = ident
        gil: bool | None = None
        conditional = False
        for _start, body in group:
            for g in _GIL_USED.finditer(body):
                gil = g.group(1) == "true"
                conditional = conditional or body.lstrip().startswith("cfg_attr")
            if _PYMODULE.match(body) or re.match(r"\s*pyo3\s*\(", body):
                n = _NAME.search(body)
                if n:
                    name = n.group(1)
        start = module_attrs[0][0]
        line, col = rt.index.line_col(start)
        out.append(PyModuleDecl(name=name, item=ident, line=line, col=col, gil_used=gil,
                                conditional=conditional))
    return out, rt
