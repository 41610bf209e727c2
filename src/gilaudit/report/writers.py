"""Every report format by name: one pure function from a finished Report to text."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from gilaudit.errors import UsageError
from gilaudit.model import Report
from gilaudit.rulebook import RuleBook

__all__ = ["WRITERS", "render"]

# format -> (module, function); imported only when that format is asked for.
WRITERS: dict[str, tuple[str, str]] = {
    "json": ("gilaudit.report.json_report", "render_report_json"),
    "html": ("gilaudit.report.html_report", "render_html"),
    "sarif": ("gilaudit.report.sarif_report", "render_sarif"),
    "junit": ("gilaudit.report.junit_report", "render_junit"),
    "markdown": ("gilaudit.report.markdown_report", "render_markdown"),
}


def render(fmt: str, report: Report, book: RuleBook) -> str:
    try:
        module, name = WRITERS[fmt]
    except KeyError:
        raise UsageError(f"unknown report format {fmt!r}") from None
    writer: Callable[[Report, RuleBook], str] = getattr(importlib.import_module(module), name)
    return writer(report, book)
