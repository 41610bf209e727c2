"""The Cython front end: `.pyx`, `.pxd` and `.pxi` files, parsed with Cython's own parser
(never compiled), and the build files that say how they are compiled.

* FT090/FT091/FT005: is ``freethreading_compatible`` declared for each compiled module, and
  where (header comment, build directives, the C macro); read from text, so these work even
  without Cython installed.
* FT092: build requirements that pin Cython below 3.1.
* FT093-FT096, FT100, FT101: patterns in the parsed code (``_cython_rules``).

An ``include``d file is analysed as part of the module that includes it, as Cython compiles
it; a file nobody includes is analysed on its own.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field, replace

from gilaudit.frontends.contract import FrontEndResult, Hit, Suppression, TargetView
from gilaudit.frontends.cython import text as text_
from gilaudit.frontends.cython.build import BuildDecl, is_python_build_script, read_declarations
from gilaudit.frontends.cython.import_time import ImportTimeCalls
from gilaudit.frontends.cython.parse import CyNode, ParseOutcome, cython_version, parse_cython
from gilaudit.frontends.cython.requires import is_build_requirements_file, requirement_pins
from gilaudit.frontends.cython.rules import CODE_RULES, ModuleTrees, check_tree
from gilaudit.frontends.cython.scope import functions, method_calls
from gilaudit.model import Diagnostic, Location, Note, SourceFile

__all__ = ["RULES", "analyse"]

RULES = frozenset({"FT005", "FT090", "FT091", "FT092"}) | CODE_RULES
_SUFFIXES = (".pyx", ".pxd", ".pxi")
_BUILD_NAMES = frozenset({"setup.py", "pyproject.toml", "meson.build", "CMakeLists.txt",
                          "setup.cfg", "Makefile", "makefile", "GNUmakefile"})
_KEY = "freethreading_compatible"
# Deeper nesting than this is refused before parsing (see _cython_text.nesting); real code
# stays far below, and Cython's parser is safe well above it even on a 256 KiB thread stack.
_MAX_BRACKETS = 50
_MAX_INDENT = 100
# A .pyx below one of these (and named by no Extension) is a test or an example, not a
# module the project ships: it is analysed, but not asked to declare anything.
_NOT_SHIPPED = frozenset({"test", "tests", "testing", "doc", "docs", "example", "examples",
                          "benchmark", "benchmarks", "bench", "demo", "demos"})


@dataclass(slots=True)
class _Acc:
    """What one analysis has gathered so far (local to one call; never shared)."""

    hits: list[Hit] = field(default_factory=list)
    diags: list[Diagnostic] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=dict)
    suppressions: dict[str, tuple[Suppression, ...]] = field(default_factory=dict)
    lines: int = 0


def _read(src: SourceFile, limit: int, acc: _Acc, *, record: bool) -> str | None:
    if src.size > limit:
        if record:
            acc.diags.append(Diagnostic(path=src.path, kind="too-large",
                                        message=f"{src.size} bytes is over the limit of {limit} "
                                                "(max-file-size); not analysed"))
            acc.files[src.path] = "skipped: too large"
        return None
    try:
        with open(src.abspath, "rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as exc:
        if record:
            acc.diags.append(Diagnostic(path=src.path, kind="unreadable",
                                        message=f"cannot read: {exc.strerror or exc}"))
            acc.files[src.path] = "failed: unreadable"
        return None
    if not record:
        return raw.decode("utf-8", errors="replace")
    try:
        return text_.decode_source(raw)
    except (UnicodeDecodeError, LookupError) as exc:
        acc.diags.append(Diagnostic(path=src.path, kind="encoding",
                                    message=f"not valid text in its declared encoding: {exc}"))
        acc.files[src.path] = "failed: encoding"
        return None


class _Project:
    """Paths, module names and include resolution for one target."""

    def __init__(self, view: TargetView) -> None:
        self.view = view
        self.by_rel = {f.path: f for f in view.files}
        self.rel_of_abs = {os.path.normpath(f.abspath): f.path for f in view.files}
        self.refused: set[str] = set()  # files never handed to Cython's parser
        self.ext_of: dict[str, str] = {}
        for ext in view.build.extensions:
            for source in ext.sources:
                self.ext_of.setdefault(posixpath.normpath(source), ext.name)

    def path_of(self, abspath: str) -> str | None:
        return self.rel_of_abs.get(os.path.normpath(abspath))

    def resolve_include(self, name: str, including_rel: str) -> str | None:
        """Cython's search: the including file's directory, then the include directories."""
        if posixpath.isabs(name) or "\\" in name:
            return None
        here = posixpath.dirname(including_rel)
        dirs = [here, *(d for d in self.view.build.include_dirs if not posixpath.isabs(d)), ""]
        for d in dirs:
            candidate = posixpath.normpath(posixpath.join(d, name)) if d else \
                posixpath.normpath(name)
            if candidate in self.by_rel and not candidate.startswith("../"):
                return None if candidate in self.refused else candidate
        return None

    def module_name(self, rel: str) -> str:
        if rel in self.ext_of:
            return self.ext_of[rel]
        parts = rel.rsplit(".", 1)[0].split("/")
        name = [parts[-1]]
        i = len(parts) - 1
        while i > 0 and any(f"{'/'.join(parts[:i])}/__init__{s}" in self.by_rel
                            for s in (".py", ".pyx", ".pxd")):
            name.insert(0, parts[i - 1])
            i -= 1
        return ".".join(name)

    def shipped(self, rel: str) -> bool:
        return rel in self.ext_of or not (_NOT_SHIPPED & set(rel.split("/")[:-1]))


def _truth(value: str) -> bool | None:
    low = value.strip().lower()
    return True if low == "true" else False if low == "false" else None


def _applies(decl: BuildDecl, rel: str) -> bool:
    folder = posixpath.dirname(decl.path)
    return not folder or rel.startswith(folder + "/")


def _declaration_hits(rel: str, text: str, module: str, decls: list[BuildDecl],
                      selected: frozenset[str]) -> list[Hit]:
    """FT090 / FT091 / FT005 for one compiled module. The C macro beats the header comment,
    which beats the build's compiler directives (Cython's own order)."""
    comments = [d for d in text_.directive_comments(text) if d.name == _KEY]
    misplaced = [d for d in comments if not d.in_header]
    hits = [Hit(rule="FT091", path=rel, line=d.line, col=d.col, symbol=_KEY, where=module)
            for d in misplaced if "FT091" in selected]
    mine = [d for d in decls if _applies(d, rel)]
    macros = [d for d in mine if d.kind == "macro"]
    header = [d for d in comments if d.in_header]
    directives = [d for d in mine if d.kind == "directive"]
    state: bool | None
    origin: BuildDecl | text_.Directive | None = None
    if macros:
        values = {d.value for d in macros}
        state = True if True in values else (None if None in values else False)
        origin = macros[0]
    elif header:
        state, origin = _truth(header[-1].value), header[-1]
    elif directives:
        values = {d.value for d in directives}
        state = True if True in values else (None if None in values else False)
        origin = directives[0]
    else:
        state = None
        if not (misplaced and "FT091" in selected) and "FT090" in selected:
            hits.append(Hit(rule="FT090", path=rel, line=1, col=1, symbol=_KEY, where=module))
        return hits
    if state is False and "FT005" in selected:
        if isinstance(origin, text_.Directive):
            hits.append(Hit(rule="FT005", path=rel, line=origin.line, col=origin.col,
                            symbol=f"{_KEY}=False", where=module))
        elif isinstance(origin, BuildDecl):
            symbol = "CYTHON_FREETHREADING_COMPATIBLE=0" if origin.kind == "macro" \
                else f"{_KEY}=False"
            note = Note(message=f"`{symbol}` is set for this module here",
                        location=Location(path=origin.path, line=origin.line))
            hits.append(Hit(rule="FT005", path=rel, line=1, col=1, symbol=symbol, where=module,
                            notes=(note,)))
    return hits


def _build_files(project: _Project, cython_dirs: set[str]) -> list[SourceFile]:
    """Build files at the top and in any directory above a Cython file."""
    out = []
    for f in project.view.files:
        name = posixpath.basename(f.path)
        folder = posixpath.dirname(f.path)
        if name in _BUILD_NAMES or name.endswith((".cmake", ".mk")) or \
                is_python_build_script(name):
            if not folder or folder in cython_dirs or any(
                    d.startswith(folder + "/") for d in cython_dirs):
                out.append(f)
        elif is_build_requirements_file(f.path):
            out.append(f)
    return out


def _parse(project: _Project, rel: str, text: str, module: str, acc: _Acc) -> ParseOutcome | None:
    abspath = os.path.normpath(project.by_rel[rel].abspath)

    def resolve(name: str, including_abs: str) -> str | None:
        including = project.path_of(including_abs) or rel
        found = project.resolve_include(name, including)
        return os.path.normpath(project.by_rel[found].abspath) if found else None

    try:
        outcome = parse_cython(text, filename=abspath, module_name=module or "module",
                               is_pxd=rel.endswith(".pxd"),
                               language_level=text_.language_level(text),
                               resolve_include=resolve)
    except (UnicodeDecodeError, LookupError) as exc:
        acc.diags.append(Diagnostic(path=rel, kind="encoding",
                                    message=f"an included file is not valid text: {exc}"))
        acc.files[rel] = "failed: encoding"
        return None
    except RecursionError:
        acc.diags.append(Diagnostic(path=rel, kind="parse-error",
                                    message="nested too deeply for the Cython parser"))
        acc.files[rel] = "failed: parse-error"
        return None
    except Exception as exc:  # noqa: BLE001 - Cython's parser raises assorted internal errors on odd input; the file is reported and the scan goes on
        acc.diags.append(Diagnostic(path=rel, kind="parse-error",
                                    message=f"the Cython parser failed: "
                                            f"{type(exc).__name__}: {exc}"))
        acc.files[rel] = "failed: parse-error"
        return None
    for err in outcome.errors[:5]:
        where = project.path_of(err.file) or rel
        state = "could not parse this file" if outcome.tree is None else \
            "reported a syntax error; analysis is partial"
        acc.diags.append(Diagnostic(path=where, kind="parse-error",
                                    message=f"Cython {state}: {err.message}", line=err.line))
    for name in outcome.missing:
        template = project.resolve_include(f"{name}.in", rel)
        why = f"it is generated at build time from the template `{template}`, which is not " \
            "analysed" if template else "no such file in the project, or one refused as " \
            "too complex"
        acc.diags.append(Diagnostic(path=rel, kind="missing-include",
                                    message=f"`include \"{name}\"` was not followed ({why}): "
                                            "its code was not analysed"))
    if outcome.tree is None:
        acc.files[rel] = "failed: parse-error"
    else:
        partial = outcome.errors or outcome.missing
        acc.files[rel] = "parsed (partial)" if partial else "parsed"
        for inc in outcome.included:
            inc_rel = project.path_of(inc)
            if inc_rel:
                acc.files.setdefault(inc_rel, "parsed")
    return outcome


def _run_rules(trees: ModuleTrees, project: _Project, rel: str, selected: frozenset[str],
               acc: _Acc) -> None:
    try:
        acc.hits += check_tree(trees, project.path_of, selected)
    except (RecursionError, ValueError, KeyError, AttributeError, TypeError) as exc:
        acc.diags.append(Diagnostic(path=rel, kind="internal-error",
                                    message=f"a Cython rule failed on this file: "
                                            f"{type(exc).__name__}: {exc}"))


@dataclass(frozen=True, slots=True)
class _Layout:
    """Which Cython file is compiled as which module, and who includes what."""

    included_by: dict[str, list[str]]
    roots: list[str]  # parsed on their own: everything nobody includes
    modules: dict[str, str]  # compiled .pyx -> dotted module name


def _layout(project: _Project, texts: dict[str, str]) -> _Layout:
    included_by: dict[str, list[str]] = {}
    for rel, text in texts.items():
        for _line, name in text_.includes(text):
            target = project.resolve_include(name, rel)
            if target is not None and target != rel:
                included_by.setdefault(target, []).append(rel)
    # A .pyx is a module unless it is only ever included; one that an Extension names is
    # compiled on its own as well.
    modules = {rel: project.module_name(rel) for rel in texts if rel.endswith(".pyx")
               and (rel not in included_by or rel in project.ext_of)}
    return _Layout(included_by=included_by,
                   roots=[rel for rel in texts if rel not in included_by], modules=modules)


def _module_map(layout: _Layout, texts: dict[str, str]) -> dict[str, str]:
    """Every Cython file -> its module: its own, its .pyx twin's (a .pxd), or its only
    includer's."""
    out = dict(layout.modules)
    for rel in texts:
        if rel.endswith(".pxd") and rel[:-4] + ".pyx" in layout.modules:
            out[rel] = layout.modules[rel[:-4] + ".pyx"]
    for rel, includers in layout.included_by.items():
        owners = {layout.modules[i] for i in includers if i in layout.modules}
        if len(owners) == 1 and rel in texts and rel not in layout.modules:
            out[rel] = owners.pop()
    return out


def _directive_rules(project: _Project, texts: dict[str, str], layout: _Layout,
                     selected: frozenset[str], acc: _Acc) -> None:
    """FT090, FT091, FT005 and FT092: text and build files only, no parser needed."""
    decls: list[BuildDecl] = []
    build_texts: dict[str, str] = {}
    for f in _build_files(project, {posixpath.dirname(rel) for rel in texts}):
        got = _read(f, project.view.config.max_file_size, acc, record=False)
        if got is not None:
            build_texts[f.path] = got
            decls += read_declarations(f.path, got)
    for rel, module in layout.modules.items():
        if project.shipped(rel):
            acc.hits += _declaration_hits(rel, texts[rel], module, decls, selected)
    if "FT091" in selected:
        # Cython reads directive comments only at the top of the compiled .pyx: in an
        # included file they are ignored wherever they stand.
        for rel in layout.included_by:
            if rel in texts and rel not in layout.modules:
                acc.hits += [Hit(rule="FT091", path=rel, line=d.line, col=d.col, symbol=_KEY,
                                 where=acc.modules.get(rel, rel))
                             for d in text_.directive_comments(texts[rel]) if d.name == _KEY]
    if "FT092" in selected:
        for path, body in build_texts.items():
            pins = requirement_pins(path, body)
            acc.hits += [Hit(rule="FT092", path=pin.path, line=pin.line, col=pin.col,
                             symbol=pin.requirement, where=pin.where) for pin in pins]
            if pins or posixpath.basename(path) in ("pyproject.toml", "setup.py", "setup.cfg") \
                    or is_build_requirements_file(path):
                acc.suppressions.setdefault(path, text_.suppressions(body))


def analyse(view: TargetView) -> FrontEndResult:
    selected = view.config.selected & RULES
    if not selected:
        return FrontEndResult()
    acc = _Acc()
    project = _Project(view)
    texts: dict[str, str] = {}
    for src in sorted((f for f in view.files if f.path.lower().endswith(_SUFFIXES)),
                      key=lambda f: f.path):
        got = _read(src, view.config.max_file_size, acc, record=True)
        if got is not None:
            texts[src.path] = got
            acc.suppressions[src.path] = text_.suppressions(got)
    layout = _layout(project, texts)
    acc.modules.update(_module_map(layout, texts))
    _directive_rules(project, texts, layout, selected, acc)
    if selected & CODE_RULES:
        _code_rules(project, texts, layout, selected & CODE_RULES, acc)
    for rel in texts:
        acc.files.setdefault(rel, "parsed")
    acc.lines = sum(text.count("\n") + 1 for rel, text in texts.items()
                    if acc.files[rel].startswith("parsed"))
    return FrontEndResult(
        hits=tuple(_unique(acc.hits)), diagnostics=tuple(acc.diags), files=acc.files,
        modules=acc.modules, suppressions=acc.suppressions, lines=acc.lines)


def _code_rules(project: _Project, texts: dict[str, str], layout: _Layout,
                selected: frozenset[str], acc: _Acc) -> None:
    if cython_version() is None:
        acc.diags.append(Diagnostic(
            path=None, kind="toolchain",
            message="Cython is not installed, so .pyx/.pxd/.pxi code was not parsed (the "
                    "directive and requirement checks ran); install gilaudit's dependencies"))
        for rel in texts:
            acc.files.setdefault(rel, "skipped: Cython is not installed")
        return
    for rel, text in texts.items():
        brackets, indent = text_.nesting(text)
        if brackets > _MAX_BRACKETS or indent > _MAX_INDENT:
            project.refused.add(rel)
            acc.diags.append(Diagnostic(
                path=rel, kind="too-complex",
                message=f"nested {max(brackets, indent)} levels deep (brackets {brackets}, "
                        f"blocks {indent}); not parsed, as Cython's parser could overflow "
                        "the C stack"))
            acc.files[rel] = "failed: too-complex"
    pxd_trees: dict[str, CyNode] = {}
    order = sorted((r for r in layout.roots if r not in project.refused),
                   key=lambda r: (not r.endswith(".pxd"), r))
    limit = project.view.config.max_file_size
    python = ImportTimeCalls(
        read=lambda rel: _read(project.by_rel[rel], limit, acc, record=False),
        paths=tuple(sorted(f.path for f in project.view.files if f.path.endswith(".py"))))
    parsed: list[tuple[str, ModuleTrees]] = []
    for rel in order:
        module = acc.modules.get(rel) or project.module_name(rel)
        outcome = _parse(project, rel, texts[rel], module, acc)
        if outcome is None or outcome.tree is None:
            continue
        if rel.endswith(".pxd"):
            pxd_trees[rel] = outcome.tree
        twin = pxd_trees.get(rel[:-4] + ".pxd") if rel.endswith(".pyx") else None
        parsed.append((rel, ModuleTrees(
            tree=outcome.tree, pxd=twin, module=module, python=python,
            shared_pxds=tuple(t for r, t in pxd_trees.items() if r != rel))))
    # Every module's functions: a `cdef` method one module defines is called from the others
    # (cylp sets `CppSelf` on objects its other modules have just made).
    calls = method_calls([f for _rel, trees in parsed for f in functions(trees.tree)])
    for rel, trees in parsed:
        _run_rules(replace(trees, method_calls=calls), project, rel, selected, acc)
    # Files only reachable through an includer that did not parse: analyse them alone.
    for rel in sorted(texts):
        if rel not in acc.files and rel not in project.refused:
            outcome = _parse(project, rel, texts[rel], acc.modules.get(rel, ""), acc)
            if outcome is not None and outcome.tree is not None:
                _run_rules(ModuleTrees(tree=outcome.tree, pxd=None, module=""), project, rel,
                           selected, acc)


def _unique(hits: list[Hit]) -> list[Hit]:
    """A .pxi included by several modules is analysed with each: report it once."""
    seen: set[tuple[str, str, int, int, str]] = set()
    out = []
    for h in hits:
        key = (h.rule, h.path, h.line, h.col, h.symbol)
        if key not in seen:
            seen.add(key)
            out.append(h)
    return out
