"""FT110 (pybind11 module without ``py::mod_gil_not_used()``), FT113 (nanobind module built
without ``FREE_THREADED``) and FT005 (explicit ``py::mod_gil_used()``), project-wide."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from gilaudit.frontends.bindings.cxx import MACROS, ModuleDecl, find_declarations
from gilaudit.frontends.buildfiles import BuildFiles
from gilaudit.frontends.buildfiles.cmake import CMakeCommand
from gilaudit.frontends.buildfiles.reader import slash_suppressions, vendored
from gilaudit.frontends.contract import Hit, Suppression, TargetView
from gilaudit.model import Diagnostic, Location, Note

__all__ = ["CxxResult", "check_cxx"]

_CXX_LANGS = ("c++", "c", "header")
_MACRO_BYTES = tuple(m.encode() for m in MACROS)
# nanobind_add_module's own keywords: everything else is the target name or a source.
_NB_KEYWORDS = frozenset({
    "STABLE_ABI", "FREE_THREADED", "NB_STATIC", "NB_SHARED", "PROTECT_STACK", "LTO",
    "NOMINSIZE", "NOSTRIP", "MUSL_DYNAMIC_LIBCPP", "NB_SUPPRESS_WARNINGS", "NB_DOMAIN",
})
_LOW_LEVEL = frozenset({"nanobind_build_library", "nanobind_link_options",
                        "nanobind_compile_options"})


@dataclass
class CxxResult:
    hits: list[Hit] = field(default_factory=list)
    modules: dict[str, str] = field(default_factory=dict)
    suppressions: dict[str, tuple[Suppression, ...]] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    lines: int = 0
    pybind11: bool = False  # some pybind11 module was found
    nanobind: bool = False


def _dotted(view: TargetView, path: str, name: str) -> str:
    known = view.c_modules.get(path)
    if known and known.rsplit(".", 1)[-1] == name:
        return known
    for ext in view.build.extensions:
        if ext.name.rsplit(".", 1)[-1] == name and any(
                posixpath.normpath(s) == path for s in ext.sources):
            return ext.name
    return name


def _pybind11_hits(path: str, decls: list[ModuleDecl], where: dict[str, str]) -> list[Hit]:
    hits: list[Hit] = []
    groups: dict[str, list[ModuleDecl]] = {}
    for d in decls:
        groups.setdefault(d.name, []).append(d)
    for name, group in groups.items():
        tags = {d.tag for d in group}
        if "not-used" in tags or "unknown" in tags:
            continue  # declared (in some preprocessor branch), or a tag we cannot read
        for d in group:
            if d.tag == "used":
                hits.append(Hit(rule="FT005", path=path, line=d.line, col=d.col,
                                symbol=d.tag_text, where=where[name]))
            else:
                hits.append(Hit(rule="FT110", path=path, line=d.line, col=d.col,
                                symbol=d.macro, where=where[name]))
    return hits


@dataclass(frozen=True, kw_only=True, slots=True)
class _NbCall:
    path: str
    command: CMakeCommand

    @property
    def target(self) -> str:
        return self.command.args[0].text if self.command.args else ""

    @property
    def variable_target(self) -> bool:
        return bool(self.command.args) and self.command.args[0].unknown

    def sources(self) -> list[str]:
        return [posixpath.basename(a.text) for a in self.command.args[1:]
                if a.text not in _NB_KEYWORDS and not a.unknown]

    def verdict(self) -> str:
        """"ok" (FREE_THREADED given), "unknown" (options come from a variable), "missing"."""
        args = self.command.args[1:]
        if any(a.text == "FREE_THREADED" for a in args):
            return "ok"
        if any(a.unknown for a in args):
            return "unknown"
        return "missing"


def _nanobind_hits(builds: BuildFiles,
                   nb_decls: list[tuple[str, ModuleDecl, str]]) -> list[Hit]:
    calls: list[_NbCall] = []
    low_level = False
    mentions_define = False
    for path in builds.cmake_files():
        for cmd in builds.cmake(path):
            if cmd.name == "nanobind_add_module":
                calls.append(_NbCall(path=path, command=cmd))
            elif cmd.name in _LOW_LEVEL:
                low_level = True
            if any("NB_FREE_THREADED" in a.text for a in cmd.args):
                mentions_define = True
    meson_nanobind = False
    for path in builds.meson_files():
        text = builds.reader.text(path, count=False) or ""
        mentions_define = mentions_define or "NB_FREE_THREADED" in text
        meson_nanobind = meson_nanobind or "nanobind" in text
    for name in ("setup.py", "pyproject.toml", "setup.cfg"):
        for path in builds.named(name):
            mentions_define = mentions_define or "NB_FREE_THREADED" in (
                builds.reader.text(path, count=False) or "")
    hits: list[Hit] = []
    reported: set[tuple[str, int]] = set()
    for path, decl, dotted in nb_decls:
        base = posixpath.basename(path)
        matched = [c for c in calls if c.target == decl.name or base in c.sources()]
        if not matched:
            matched = [c for c in calls if c.variable_target]
        if matched:
            for c in matched:
                key = (c.path, c.command.line)
                if c.verdict() == "missing" and key not in reported:
                    reported.add(key)
                    hits.append(Hit(
                        rule="FT113", path=c.path, line=c.command.line, col=c.command.col,
                        symbol="nanobind_add_module", where=f"`{dotted}`",
                        notes=(Note(message=f"`NB_MODULE({decl.name}, ...)` is defined here",
                                    location=Location(path=path, line=decl.line,
                                                      column=decl.col)),)))
            continue
        if calls or low_level or mentions_define or meson_nanobind or any(
                p in builds.unreadable for p in builds.cmake_files()):
            # Built by a CMake target we cannot match, the low-level interface, an explicit
            # NB_FREE_THREADED, meson (whose nanobind wrap we do not model) or a CMake file we
            # could not read: not decidable.
            continue
        hits.append(Hit(rule="FT113", path=path, line=decl.line, col=decl.col,
                        symbol="NB_MODULE", where=f"`{dotted}`"))
    return hits


def check_cxx(view: TargetView, builds: BuildFiles) -> CxxResult:
    out = CxxResult()
    reader = builds.reader
    nb_decls: list[tuple[str, ModuleDecl, str]] = []
    for sf in view.files:
        if sf.language not in _CXX_LANGS and not sf.path.endswith((".cu", ".mm", ".ipp")):
            continue
        if vendored(sf.path, builds.vendor_roots):
            continue
        raw = reader.raw(sf.path)
        if raw is None or not any(m in raw for m in _MACRO_BYTES):
            continue
        text = raw.decode("utf-8", errors="replace")
        decls, _ctext = find_declarations(text)
        if not decls:
            continue
        out.lines += text.count("\n") + 1
        out.suppressions[sf.path] = slash_suppressions(text)
        where: dict[str, str] = {}
        for d in decls:
            dotted = _dotted(view, sf.path, d.name)
            where[d.name] = dotted
            out.modules.setdefault(sf.path, dotted)
        pb = [d for d in decls if d.macro != "NB_MODULE"]
        out.pybind11 = out.pybind11 or bool(pb)
        out.hits += _pybind11_hits(sf.path, pb, where)
        for d in decls:
            if d.macro == "NB_MODULE":
                nb_decls.append((sf.path, d, where[d.name]))
        out.diagnostics.append(Diagnostic(
            path=sf.path, kind="syntactic-only",
            message=f"{', '.join(sorted({d.macro for d in decls}))} declarations were checked "
                    "syntactically (macros from other files and code generated at build time "
                    "are not expanded); preprocessor branches are followed only for "
                    "Py_GIL_DISABLED and #if 0"))
    out.nanobind = bool(nb_decls)
    if nb_decls:
        out.hits += _nanobind_hits(builds, nb_decls)
    return out

