"""The contract between the scan pipeline and the front ends that are not the C/C++ one
(Cython, bindings and build configuration, wheels and sdists, binaries).

A front end is a pure function from what it reads to a ``FrontEndResult``; it never raises
for bad input (that is a ``Diagnostic``) and never imports or runs the target's code. The
pipeline turns its hits into findings with the catalogue's text, applies suppressions and the
configuration, and merges everything into one report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gilaudit.buildinfo import BuildInfo
from gilaudit.config import Config
from gilaudit.model import Diagnostic, SourceFile
from gilaudit.static.context import Hit
from gilaudit.static.facts import Suppression

__all__ = ["FrontEndResult", "TargetView"]


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

    def merged(self, other: FrontEndResult) -> FrontEndResult:
        return FrontEndResult(
            hits=self.hits + other.hits,
            diagnostics=self.diagnostics + other.diagnostics,
            files={**self.files, **other.files},
            modules={**self.modules, **other.modules},
            suppressions={**self.suppressions, **other.suppressions},
            lines=self.lines + other.lines,
        )
