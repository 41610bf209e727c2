"""The data model shared by every phase: frozen dataclasses, no behaviour beyond (de)serialising."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "SEVERITIES",
    "Diagnostic",
    "Finding",
    "Location",
    "Note",
    "Project",
    "Report",
    "Severity",
    "SourceFile",
    "severity_rank",
]

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")


def severity_rank(severity: str) -> int:
    """Higher is worse; unknown severities rank lowest."""
    return {"info": 1, "warning": 2, "error": 3}.get(severity, 0)


@dataclass(frozen=True, kw_only=True, slots=True)
class Location:
    path: str  # project-relative, forward slashes
    line: int  # 1-based
    column: int = 1
    end_line: int | None = None
    end_column: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Note:
    message: str
    location: Location | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "path": self.location.path if self.location else None,
            "line": self.location.line if self.location else None,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Finding:
    rule: str
    name: str
    category: str
    severity: Severity
    message: str
    location: Location | None
    symbol: str | None = None
    fix: str = ""
    module: str | None = None
    callable: str | None = None
    function: str | None = None  # enclosing C function, for fingerprints and merging
    code: str = ""  # the source line, stripped
    notes: tuple[Note, ...] = ()
    preview: bool = False
    evidence: Literal["static", "dynamic"] = "static"
    # Stable across edits that move code: rule, path, symbol, function and the code itself,
    # never the line number (baselines and SARIF partial fingerprints use it).
    fingerprint: str = ""

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        loc = self.location
        if loc is None:
            return ("", 0, 0, self.rule)
        return (loc.path, loc.line, loc.column, self.rule)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        """The inverse of ``to_dict`` (JSON reports, cached results)."""
        loc = None
        if d.get("path") is not None and d.get("line") is not None:
            loc = Location(path=d["path"], line=d["line"], column=d.get("column") or 1,
                           end_line=d.get("end_line"), end_column=d.get("end_column"))
        notes = tuple(
            Note(message=n["message"],
                 location=Location(path=n["path"], line=n["line"])
                 if n.get("path") is not None and n.get("line") is not None else None)
            for n in d.get("notes", ())
        )
        return cls(rule=d["rule"], name=d["name"], category=d["category"],
                   severity=d["severity"], message=d["message"], location=loc,
                   symbol=d.get("symbol"), fix=d.get("fix", ""), module=d.get("module"),
                   callable=d.get("callable"), function=d.get("function"),
                   code=d.get("code", ""), notes=notes, preview=bool(d.get("preview")),
                   evidence=d.get("evidence", "static"), fingerprint=d.get("fingerprint", ""))

    def to_dict(self) -> dict[str, Any]:
        loc = self.location
        return {
            "rule": self.rule,
            "name": self.name,
            "category": self.category,
            "severity": self.severity,
            "path": loc.path if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
            "end_line": loc.end_line if loc else None,
            "end_column": loc.end_column if loc else None,
            "symbol": self.symbol,
            "message": self.message,
            "fix": self.fix,
            "module": self.module,
            "callable": self.callable,
            "function": self.function,
            "code": self.code,
            "notes": [n.to_dict() for n in self.notes],
            "preview": self.preview,
            "evidence": self.evidence,
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Diagnostic:
    """Something gilaudit could not fully analyse (bad input, missing header, internal error)."""

    path: str | None
    kind: str  # e.g. "parse-error", "missing-header", "unreadable", "too-large", "not-found"
    message: str
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "message": self.message, "line": self.line}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Diagnostic:
        return cls(path=d.get("path"), kind=d["kind"], message=d["message"], line=d.get("line"))


@dataclass(frozen=True, kw_only=True, slots=True)
class SourceFile:
    path: str  # project-relative
    abspath: str
    language: Literal["c", "c++", "header", "other"]
    size: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Project:
    root: str  # absolute
    name: str
    sources: tuple[SourceFile, ...]  # C, C++ and headers
    build_files: tuple[str, ...]  # project-relative
    diagnostics: tuple[Diagnostic, ...] = ()
    others: tuple[SourceFile, ...] = ()  # every other regular file, for the other front ends

    def diagnostics_include(self, kind: str) -> bool:
        return any(d.kind == kind for d in self.diagnostics)


@dataclass(frozen=True, kw_only=True, slots=True)
class Report:
    """The result of one run: what was found, and what could not be checked."""

    tool: dict[str, Any]
    targets: tuple[str, ...]
    findings: tuple[Finding, ...]
    diagnostics: tuple[Diagnostic, ...]
    # path -> "parsed" | "parsed (partial)" | "failed: ..." | "skipped: ..."
    files: dict[str, str] = field(default_factory=dict)
    lines_analysed: int = 0
    seconds: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)
