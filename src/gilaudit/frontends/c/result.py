"""From a target's parsed units to the contract's ``FrontEndResult``: the matchers' hits, what
happened to each file, the lines analysed, and what the rule engine needs to know of modules,
callables and declarations."""

from __future__ import annotations

from dataclasses import replace
from pathlib import PurePosixPath

from gilaudit.frontends.c.context import ProjectIndex, build_index
from gilaudit.frontends.c.facts import FileFacts
from gilaudit.frontends.c.matchers import REGISTRY
from gilaudit.frontends.c.matchers.module_declaration import declarations
from gilaudit.frontends.c.objects import build_object_model
from gilaudit.frontends.c.objstate import OBJECT_RULES, object_state_hits
from gilaudit.frontends.c.plan import CPlan
from gilaudit.frontends.c.semantic_bindings import semantic_binding_hits
from gilaudit.frontends.contract import FrontEndResult, Hit, TargetView
from gilaudit.model import Diagnostic, Location, Note

__all__ = ["to_result"]

# A file whose facts carry one of these was not analysed at all.
_FAILED = ("binary", "unreadable", "parse-failed", "parser-crash", "timeout", "internal-error")
_PARTIAL = ("parse-error", "missing-header")


# Copies of the C API's own backports (python/pythoncapi-compat), vendored by many projects:
# their functions are CPython's, as much as Python.h's are, and are not the project's to fix.
_API_SHIMS = frozenset({"pythoncapi_compat.h"})


def with_included(units: list[FileFacts]) -> list[FileFacts]:
    """The units and the code files they include, each file once: a file that is itself a
    unit keeps its own facts; one included by several units is taken from the first."""
    out = list(units)
    seen = {f.path for f in units}
    for unit in units:
        for inc in unit.included:
            if inc.path not in seen:
                seen.add(inc.path)
                out.append(inc)
    return out


def index_for(facts: list[FileFacts], view: TargetView) -> ProjectIndex:
    index = build_index(facts, extension_of=view.c_modules,
                        supports_before_313=view.build.supports_before_313())
    object_hits: dict[str, list[Hit]] = {}
    if view.config.selected & OBJECT_RULES:
        for hit in object_state_hits(build_object_model(facts), view.config.selected):
            object_hits.setdefault(hit.path, []).append(hit)
    return replace(index, object_hits={p: tuple(h) for p, h in object_hits.items()})


def _match(facts: list[FileFacts], index: ProjectIndex,
           selected: frozenset[str]) -> tuple[list[Hit], list[Diagnostic]]:
    hits: list[Hit] = []
    diags: list[Diagnostic] = []
    for f in facts:
        if PurePosixPath(f.path).name in _API_SHIMS:
            continue
        for matcher, rules in REGISTRY:
            if not rules & selected:
                continue
            try:
                hits += [h for h in matcher(f, index, selected) if h.rule in selected]
            except Exception as exc:  # noqa: BLE001 - a matcher bug must not lose the run
                diags.append(Diagnostic(
                    path=f.path, kind="internal-error",
                    message=f"matcher {matcher.__name__} failed: {type(exc).__name__}: {exc}; "
                            f"rules {', '.join(sorted(rules))} were not checked in this file"))
    return hits, diags


def _blocked_by_build(hits: list[Hit], index: ProjectIndex) -> list[Hit]:
    """Object-state findings in a module that cannot be built for 3.13 yet (FT145) say so:
    the port starts with the build, and the races matter once it succeeds."""
    blocked: dict[str, Hit] = {}
    for h in hits:
        if h.rule == "FT145":
            blocked.setdefault(index.file_module.get(h.path) or h.path, h)
    if not blocked:
        return hits
    out = []
    for h in hits:
        b = blocked.get(index.file_module.get(h.path) or h.path) \
            if h.rule in OBJECT_RULES else None
        if b is None:
            out.append(h)
            continue
        note = Note(message=f"this module cannot be built for CPython 3.13 yet (`{b.symbol}`, "
                            "FT145): the race matters once it is",
                    location=Location(path=b.path, line=b.line))
        out.append(replace(h, notes=(*h.notes, note)))
    return out


def to_result(p: CPlan, units: list[FileFacts], view: TargetView) -> FrontEndResult:
    facts = with_included(units)
    index = index_for(facts, view)
    hits, diags = _match(facts, index, view.config.selected)
    hits = _blocked_by_build(hits, index)
    semantic, settles = semantic_binding_hits(facts)
    diags = list(p.diagnostics) + diags
    files = dict(p.files)
    lines = 0
    counted_headers: set[str] = set()
    sizes = {path: data.count(b"\n") + 1 for path, data in p.contents.items()}
    for f in facts:
        diags += [Diagnostic(path=d.path, kind=d.kind, message=d.message, line=d.line or None)
                  for d in f.diagnostics]
        failed = [d for d in f.diagnostics if d.kind in _FAILED]
        if failed:
            files[f.path] = f"failed: {failed[0].kind}"
            continue
        if f.included_from:
            files[f.path] = f"parsed (included from {f.included_from})"
            continue  # its lines count with its includer's headers
        partial = any(d.kind in _PARTIAL for d in f.diagnostics)
        files[f.path] = "parsed (partial)" if partial else "parsed"
        lines += f.lines
        for dep, _sha in f.deps:
            if dep not in counted_headers:
                counted_headers.add(dep)
                lines += sizes.get(dep, 0)
    found = {f.path: tuple(declarations(f)) for f in facts}
    return FrontEndResult(
        hits=tuple(hits + semantic), diagnostics=tuple(diags), files=files, lines=lines,
        modules={path: mod for path, mod in index.file_module.items() if mod},
        suppressions={f.path: f.suppressions for f in facts if f.suppressions},
        callables=dict(index.callable_names),
        declarations={path: d for path, d in found.items() if d},
        settles=settles)
