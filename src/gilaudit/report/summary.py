"""Counts every writer shows, computed once from a Report."""

from __future__ import annotations

from collections import Counter
from typing import Any

from gilaudit.model import Report

__all__ = ["summarise"]


def summarise(report: Report) -> dict[str, Any]:
    sev = Counter(f.severity for f in report.findings)
    stress = report.stress
    states = Counter(v.split(":")[0].split(" ")[0] for v in report.files.values())
    return {
        "errors": sev.get("error", 0),
        "warnings": sev.get("warning", 0),
        "info": sev.get("info", 0),
        "by_rule": dict(sorted(Counter(f.rule for f in report.findings).items())),
        "by_category": dict(sorted(Counter(f.category for f in report.findings).items())),
        "by_language": dict(sorted(Counter(f.language for f in report.findings).items())),
        "files_analysed": states.get("parsed", 0),
        "files_failed": states.get("failed", 0),
        "files_skipped": states.get("skipped", 0),
        "lines_analysed": report.lines_analysed,
        "diagnostics": len(report.diagnostics),
        "modules_stressed": sum(1 for m in stress.modules if m.verdict in ("clean", "problems"))
        if stress else 0,
        "modules_not_run": sum(1 for m in stress.modules
                               if m.verdict in ("could not run", "not exercised"))
        if stress else 0,
        "verdicts": {m.module: m.verdict for m in stress.modules} if stress else {},
        "seconds": round(report.seconds, 3),
    }
