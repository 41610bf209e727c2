"""pybind11 and nanobind module declarations in C++ sources, read syntactically.

``PYBIND11_MODULE(name, m, tags...)`` declares free-threading support with the tag
``py::mod_gil_not_used()`` (pybind11 2.13); ``py::mod_gil_used()`` (3.1) and
``mod_gil_not_used(false)`` are the explicit opt-out. ``NB_MODULE(name, m)`` has no tag: nanobind
declares support when the module is built with ``FREE_THREADED`` (see ``buildfiles.cmake``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gilaudit.frontends import textscan
from gilaudit.frontends.bindings.clex import CText, scan_c

__all__ = ["MACROS", "ModuleDecl", "find_declarations", "vendored_version"]

MACROS = ("PYBIND11_MODULE", "PYBIND11_EMBEDDED_MODULE", "NB_MODULE")
_CALL = re.compile(r"\b(PYBIND11_MODULE|PYBIND11_EMBEDDED_MODULE|NB_MODULE)\s*\(")
_IDENT = re.compile(r"[A-Za-z_]\w*")
_NOT_USED = re.compile(r"^(?:::)?(?:\w+\s*::\s*)*mod_gil_not_used\s*\(\s*(true|1)?\s*\)$")
_USED = re.compile(r"^(?:::)?(?:\w+\s*::\s*)*(?:mod_gil_used\s*\(\s*\)|"
                   r"mod_gil_not_used\s*\(\s*(?:false|0)\s*\))$")
_ORTHOGONAL = re.compile(r"^(?:::)?(?:\w+\s*::\s*)*multiple_interpreters\s*::\s*\w+\s*\(\s*\)$")


@dataclass(frozen=True, kw_only=True, slots=True)
class ModuleDecl:
    macro: str  # PYBIND11_MODULE | PYBIND11_EMBEDDED_MODULE | NB_MODULE
    name: str  # the module's (last) name as written
    line: int
    col: int
    # "not-used" (declared free-threading safe), "used" (explicit opt-out), "none" (no tag),
    # "unknown" (a tag we cannot read, e.g. a macro from another file): only "none" is a finding
    tag: str
    tag_text: str = ""


def _classify(tag: str, defines: dict[str, str], depth: int = 0) -> str:
    text = " ".join(tag.split())
    if _NOT_USED.match(text):
        return "not-used"
    if _USED.match(text):
        return "used"
    if _ORTHOGONAL.match(text):
        return "orthogonal"
    if _IDENT.fullmatch(text) and text in defines and depth < 4:
        # A macro holding the tag list, e.g. `#define MODULE_TAGS py::mod_gil_not_used()`.
        parts = [p for p in _split_top(defines[text]) if p]
        kinds = {_classify(p, defines, depth + 1) for p in parts}
        for kind in ("not-used", "used", "unknown"):
            if kind in kinds:
                return kind
        return "orthogonal" if kinds else "unknown"
    return "unknown"


def _split_top(text: str) -> list[str]:
    out: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in text:
        if ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
    return out


def find_declarations(text: str) -> tuple[list[ModuleDecl], CText]:
    """Every module macro invocation the free-threaded build compiles."""
    ctext = scan_c(text)
    code = ctext.code
    decls: list[ModuleDecl] = []
    for m in _CALL.finditer(code):
        line, col = ctext.index.line_col(m.start())
        if line in ctext.directive_lines or line in ctext.dead_lines:
            continue  # a macro definition (`#define PYBIND11_MODULE(...)`) or compiled out
        if m.start() > 0 and code[m.start() - 1] in "_.>:":
            continue
        open_pos = m.end() - 1
        close = textscan.find_close(code, open_pos)
        if close < 0:
            continue
        args = textscan.split_args(code, code, open_pos, close)
        if len(args) < 2 or not _IDENT.fullmatch(args[0]):
            continue
        macro = m.group(1)
        if macro == "NB_MODULE":
            decls.append(ModuleDecl(macro=macro, name=args[0], line=line, col=col, tag="none"))
            continue
        kinds = [(_classify(a, ctext.defines), a) for a in args[2:] if a]
        tag, tag_text = "none", ""
        for kind in ("not-used", "used", "unknown"):
            found = [a for k, a in kinds if k == kind]
            if found:
                tag, tag_text = kind, found[0]
                break
        decls.append(ModuleDecl(macro=macro, name=args[0], line=line, col=col, tag=tag,
                                tag_text=tag_text))
    return decls, ctext


_PB_VERSION = re.compile(r"#\s*define\s+PYBIND11_VERSION_(MAJOR|MINOR|PATCH)\s+(\w+)")
_NB_VERSION = re.compile(r"#\s*define\s+NB_VERSION_(MAJOR|MINOR|PATCH)\s+(\w+)")


def vendored_version(text: str, generator: str) -> tuple[tuple[int, int, int], int] | None:
    """(version, line of the minor number) from a vendored pybind11 ``detail/common.h`` or
    nanobind ``nanobind.h``."""
    pattern = _PB_VERSION if generator == "pybind11" else _NB_VERSION
    parts: dict[str, int] = {}
    minor_line = 1
    for m in pattern.finditer(text):
        digits = re.match(r"\d+", m.group(2))
        if digits is None:
            continue
        parts.setdefault(m.group(1), int(digits.group(0)))
        if m.group(1) == "MINOR":
            minor_line = text.count("\n", 0, m.start()) + 1
    if "MAJOR" not in parts or "MINOR" not in parts:
        return None
    return (parts["MAJOR"], parts["MINOR"], parts.get("PATCH", 0)), minor_line
