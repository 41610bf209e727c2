"""The contract between the scan pipeline and every front end (C/C++, Cython, bindings, build
configuration, wheels and sdists, binaries).

A front end is a pure function from what it reads (a ``TargetView``) to a ``FrontEndResult``;
it never raises for bad input (that is a ``Diagnostic``) and never imports or runs the target's
code. The pipeline turns its hits into findings with the catalogue's text, applies suppressions
and the configuration, and merges everything into one report.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from gilaudit.buildinfo import BuildInfo
from gilaudit.config import Config
from gilaudit.model import Diagnostic, Note, SourceFile

__all__ = ["FrontEndResult", "Hit", "Suppression", "TargetView", "settle"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Hit:
    """A front end's raw result; the rule engine adds rule text, module and callable."""

    rule: str
    path: str
    line: int
    col: int
    symbol: str
    where: str = ""
    function: str | None = None
    severity: str | None = None  # None: the rule's own severity
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True, slots=True)
class Suppression:
    """A `gilaudit: ignore[...]` comment in a source file."""

    line: int
    col: int
    ids: tuple[str, ...]
    text: str


@dataclass(frozen=True, kw_only=True, slots=True)
class TargetView:
    """What every front end sees of one target."""

    root: Path  # the project directory (for an archive target: the directory holding it)
    files: tuple[SourceFile, ...]  # every regular file discovered below root, after excludes
    config: Config
    build: BuildInfo
    c_modules: dict[str, str] = field(default_factory=dict)  # C/C++ path -> extension module


@dataclass(frozen=True, kw_only=True, slots=True)
class FrontEndResult:
    hits: tuple[Hit, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()
    # path -> "parsed" | "parsed (partial)" | "failed: <kind>" | "skipped: <reason>"
    files: dict[str, str] = field(default_factory=dict)
    # path -> the extension module it belongs to (dotted name), where known
    modules: dict[str, str] = field(default_factory=dict)
    # path -> inline `gilaudit: ignore[...]` comments found in that file
    suppressions: dict[str, tuple[Suppression, ...]] = field(default_factory=dict)
    lines: int = 0  # source lines analysed, for the summary
    # C function -> the Python-visible name it implements (`Counter.increment`), where known
    callables: dict[str, str] = field(default_factory=dict)
    # path -> (line, column) of each place the file declares free-threading support (FT008)
    declarations: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    # (rule, path, line) that this result decides with better evidence than text (the compiler's
    # view of a binding declaration): the same rule at that place from another front end goes,
    # and so does that front end's "syntactic-only" diagnostic for the file.
    settles: frozenset[tuple[str, str, int]] = frozenset()

    def merged(self, other: FrontEndResult) -> FrontEndResult:
        """Both results; where both name a file's module, ``other`` wins."""
        return FrontEndResult(
            hits=self.hits + other.hits,
            diagnostics=self.diagnostics + other.diagnostics,
            files={**self.files, **other.files},
            modules={**self.modules, **other.modules},
            suppressions={**self.suppressions, **other.suppressions},
            lines=self.lines + other.lines,
            callables={**self.callables, **other.callables},
            declarations={**self.declarations, **other.declarations},
            settles=self.settles | other.settles,
        )


def settle(results: FrontEndResult, settler: FrontEndResult) -> FrontEndResult:
    """``results`` merged with ``settler``, whose ``settles`` places overrule ``results`` there.
    A settling hit that names a module by its last component takes the dotted name ``results``
    knows for that file."""
    if not settler.settles:
        return results.merged(settler)
    hits = tuple(h for h in results.hits if (h.rule, h.path, h.line) not in settler.settles)
    paths = {path for _rule, path, _line in settler.settles}
    diagnostics = tuple(d for d in results.diagnostics
                        if not (d.kind == "syntactic-only" and d.path in paths))
    own = tuple(_dotted(h, results.modules) if (h.rule, h.path, h.line) in settler.settles else h
                for h in settler.hits)
    return replace(results, hits=hits, diagnostics=diagnostics).merged(replace(settler, hits=own))


def _dotted(hit: Hit, modules: dict[str, str]) -> Hit:
    known = modules.get(hit.path, "")
    return replace(hit, where=known) if known.rsplit(".", 1)[-1] == hit.where else hit
