"""Struct layouts and function-like macros of the project, read from comment-free text.

The object-state analysis needs the fields of each extension type's instance struct (which
are `PyObject *`, which are locks or atomics) and the project's accessor macros
(`#define BUF(self) ((self)->ob_item)`). Both usually live in project headers, which are not
translation units; the text of each file is enough for these two declaration shapes.
"""

from __future__ import annotations

import re

from gilaudit.frontends import textscan
from gilaudit.frontends.c.facts import FieldDecl, MacroFact, StructFact

__all__ = ["macro_facts", "struct_facts"]

_STRUCT = re.compile(r"\b(typedef\s+)?(?:struct|class)\s+([A-Za-z_]\w*)?\s*(?:final\s*)?"
                     r"(?::\s*[^{;()]*)?\{")
_ACCESS = re.compile(r"^(?:(?:public|private|protected)\s*:\s*)+")
_TYPEDEF_NAME = re.compile(r"\s*([A-Za-z_]\w*)\s*[;,]")
# Function-like macros, and Argument Clinic's method-table entries (object-like).
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(?:([A-Za-z_]\w*)\(([^)]*)\)|"
                     r"([A-Za-z_]\w*_METHODDEF)\b)[ \t]*(.*)$", re.MULTILINE)
_PYOBJ = re.compile(r"\b(?:PyObject|Py\w*Object|PyTypeObject)\s*\*")
_ATOMIC = re.compile(r"\b(?:_Atomic|atomic_\w+|std::atomic|atomic\s*<)")
_LOCK = re.compile(r"\b(?:PyMutex|pthread_mutex_t|pthread_rwlock_t|PyThread_type_lock|"
                   r"std::(?:recursive_|shared_|timed_)?mutex|mtx_t|CRITICAL_SECTION|SRWLOCK|"
                   r"PyThread_type_lock|_PyRecursiveMutex|PyRWMutex|_PyRWMutex)\b")
_DECLARATOR = re.compile(r"^([\s\*&]*)([A-Za-z_]\w*)\s*(?:\[[^\]]*\]\s*)*(?::\s*\d+)?$")
_MAX_BODY = 2000
_BRACES = re.compile(r"[{}]")
_OBJECT_HEAD = re.compile(r"\s*(?:PyObject_(?:VAR_)?HEAD\b|Py(?:Var)?Object\s+ob_base\b)")
_HEAD = re.compile(r"^(?:\s*\bPyObject_(?:VAR_)?HEAD\b\s*;?)+\s*")


def struct_facts(code: str, bare: str, index: textscan.LineIndex, path: str) -> list[StructFact]:
    """Every `struct [tag] { ... } [names];` with its fields (nested structs flattened away:
    their members are not fields of the instance)."""
    out: list[StructFact] = []
    for m in _STRUCT.finditer(bare):
        open_pos = m.end() - 1
        close = _brace_close(bare, open_pos)
        if close < 0:
            continue
        names = [m.group(2)] if m.group(2) else []
        if m.group(1):
            after = _TYPEDEF_NAME.match(bare, close + 1)
            if after:
                names.append(after.group(1))
        if not names:
            continue
        fields = _fields(code[open_pos + 1:close], bare[open_pos + 1:close], open_pos + 1,
                         index)
        is_object = bool(_OBJECT_HEAD.match(bare, open_pos + 1))
        out.append(StructFact(tuple(dict.fromkeys(names)), path, index.line_col(m.start())[0],
                              tuple(fields), is_object))
    return out


def _brace_close(bare: str, open_pos: int) -> int:
    depth = 0
    for m in _BRACES.finditer(bare, open_pos):
        depth += 1 if m.group() == "{" else -1
        if depth == 0:
            return m.start()
    return -1


def _fields(code: str, bare: str, base: int, index: textscan.LineIndex) -> list[FieldDecl]:
    out: list[FieldDecl] = []
    for a, b in textscan.top_level_spans(bare, 0, len(bare), ";"):
        # C++ member functions defined in the class end with `}` and no `;`: what follows
        # the last body is the declaration.
        begin = max(a, bare.rfind("}", a, b) + 1)
        out += _declaration(code[begin:b], base + begin, index)
    return out


def _declaration(decl: str, offset: int, index: textscan.LineIndex) -> list[FieldDecl]:
    text = _ACCESS.sub("", _HEAD.sub("", " ".join(decl.split())))
    if text.startswith(("static ", "using ", "typedef ", "friend ", "template")):
        return []  # not per-instance state
    if not text or "(" in text or "{" in text or text.startswith("#"):
        return []  # function pointers, nested definitions, the object header
    head, rest = _split_declarators(text)
    m = re.match(r"^(.*?)([\s\*&]*)([A-Za-z_]\w*)\s*((?:\[[^\]]*\]\s*)*(?::\s*\d+)?)$", head)
    if not m or not m.group(1).strip():
        return []
    base_type = m.group(1).strip()
    declarators = [m.group(2) + m.group(3) + m.group(4)] + (rest.split(",") if rest else [])
    line = index.line_col(offset + len(decl) - len(decl.lstrip()))[0]
    out: list[FieldDecl] = []
    for d in declarators:
        dm = _DECLARATOR.match(d.strip())
        if not dm:
            continue
        stars = dm.group(1).count("*")
        full = f"{base_type} {'*' * stars}".strip()
        out.append(FieldDecl(
            name=dm.group(2), type=full, line=line,
            is_pointer=stars > 0 or "[" in d,
            is_pyobject=bool(_PYOBJ.search(full)),
            is_atomic=bool(_ATOMIC.search(base_type)),
            is_lock=bool(_LOCK.search(base_type)) and stars == 0,
            is_bitfield=":" in d,
        ))
    return out


def _split_declarators(text: str) -> tuple[str, str]:
    """The first declarator and the rest, at the first comma outside template brackets."""
    depth = 0
    for i, ch in enumerate(text):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "," and depth == 0:
            return text[:i], text[i + 1:]
    return text, ""


def macro_facts(code: str, index: textscan.LineIndex, path: str) -> list[MacroFact]:
    """Function-like macros (`#define NAME(a, b) body`, continuation lines joined)."""
    out: list[MacroFact] = []
    for m in _DEFINE.finditer(code):
        end = m.end()
        while end < len(code) and _continued(code, end):
            nxt = code.find("\n", end + 1)
            end = len(code) if nxt < 0 else nxt
        name = m.group(1) or m.group(3)
        params = tuple(p.strip() for p in (m.group(2) or "").split(",") if p.strip())
        body = " ".join(code[m.start(4):end].replace("\\", " ").split())[:_MAX_BODY]
        out.append(MacroFact(name, params, body, path, index.line_col(m.start())[0]))
    return out


def _continued(code: str, end: int) -> bool:
    """Whether the line ending at ``end`` ends with a backslash (CRLF allowed)."""
    i = end - 1
    while i >= 0 and code[i] in " \t\r":
        i -= 1
    return i >= 0 and code[i] == "\\"
