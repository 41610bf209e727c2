"""Terminal output: one block per finding (location, message, code, notes, fix), then what
could not be checked, then the counts. Rendered with rich; plain when not a terminal."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.markup import escape

from gilaudit.model import Finding, Report
from gilaudit.report.summary import summarise

__all__ = ["render_text"]

_STYLE = {"error": "bold red", "warning": "bold yellow", "info": "bold cyan"}


def _finding(console: Console, f: Finding) -> None:
    loc = f.location
    where = f"{loc.path}:{loc.line}:{loc.column}" if loc else (f.module or "?")
    preview = " (preview)" if f.preview else ""
    console.print(
        f"[bold]{escape(where)}[/]: [{_STYLE[f.severity]}]{f.severity}[/]: "
        f"{escape(f.message)} [dim]\\[{f.rule}]{preview}[/]",
        soft_wrap=True, highlight=False,
    )
    if f.code and loc:
        console.print(f"  [dim]{loc.line:>5} |[/] {escape(f.code)}", soft_wrap=True,
                      highlight=False)
    for n in f.notes:
        at = f"{n.location.path}:{n.location.line}: " if n.location else ""
        console.print(f"  [cyan]note:[/] {escape(at + n.message)}", soft_wrap=True,
                      highlight=False)
    if f.fix:
        console.print(f"  [green]help:[/] {escape(f.fix)}", soft_wrap=True, highlight=False)


def render_text(report: Report, out: TextIO, *, color: bool | None = None) -> None:
    console = Console(file=out, force_terminal=color, no_color=color is False,
                      highlight=False, width=200 if not out.isatty() else None)
    for f in report.findings:
        _finding(console, f)
        console.print()
    if report.diagnostics:
        console.print("[bold]Not fully analysed:[/]")
        for d in report.diagnostics:
            at = f"{d.path}:{d.line}" if d.path and d.line else (d.path or "-")
            console.print(f"  {escape(at)}: [magenta]{escape(d.kind)}[/]: {escape(d.message)}",
                          soft_wrap=True, highlight=False)
        console.print()
    s = summarise(report)
    counts = (f"{s['errors']} error(s), {s['warnings']} warning(s), {s['info']} info "
              f"in {s['files_analysed']} file(s), {s['lines_analysed']} lines, "
              f"{s['seconds']:.2f} s")
    not_checked = s["files_failed"] + s["diagnostics"]
    if not report.findings and not_checked == 0 and s["files_analysed"]:
        console.print(f"[bold green]No issues found[/] ({counts})")
    elif not report.findings:
        console.print(f"No issues in what was analysed; {not_checked} problem(s) kept parts "
                      f"from being checked (see above). ({counts})")
    else:
        console.print(f"[bold]Found[/] {counts}")
    if s["files_failed"]:
        console.print(f"{s['files_failed']} file(s) could not be analysed.")
