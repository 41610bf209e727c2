"""The JSON report: the stable, versioned contract other tools read."""

from __future__ import annotations

import json
from typing import Any

from gilaudit.model import Report
from gilaudit.report.summary import summarise

__all__ = ["SCHEMA_VERSION", "render_json", "render_report_json", "report_to_dict"]

SCHEMA_VERSION = 1


def report_to_dict(report: Report) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "tool": report.tool,
        "targets": list(report.targets),
        "options": report.options,
        "findings": [f.to_dict() for f in report.findings],
        "diagnostics": [d.to_dict() for d in report.diagnostics],
        "files": dict(sorted(report.files.items())),
        "file_modules": dict(sorted(report.file_modules.items())),
        "modules": [m.to_dict() for m in report.modules],
        "generated": report.generated or None,
        "baseline": report.baseline,
        "stress": report.stress.to_dict() if report.stress is not None else None,
        "summary": summarise(report),
    }


def render_json(report: Report) -> str:
    return json.dumps(report_to_dict(report), indent=2, ensure_ascii=False) + "\n"


def render_report_json(report: Report, _book: object = None) -> str:
    """The writer registry's signature (the rule book is not needed for JSON)."""
    return render_json(report)
