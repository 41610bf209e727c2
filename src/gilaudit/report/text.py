"""Terminal output: one block per finding (location, message, code, notes, fix), then what
could not be checked, then the counts. Rendered with rich; plain when not a terminal."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.markup import escape

from gilaudit.model import Finding, Report, StressSummary, SuiteRun
from gilaudit.report.summary import summarise

__all__ = ["render_text"]

_STYLE = {"error": "bold red", "warning": "bold yellow", "info": "bold cyan"}
_VERDICT = {"clean": "bold green", "problems": "bold red", "not exercised": "bold yellow",
            "could not run": "bold magenta", "ready": "bold green", "not ready": "bold red",
            "declared but hazards": "bold yellow", "not declared": "bold red",
            "unknown": "bold"}
_NOTE_LINES = 14  # of a stack dump; the JSON report and the reproducer have all of it
_LISTED = 20  # tests listed per kind (thread-unsafe, failing serially); the JSON has them all


def _finding(console: Console, f: Finding) -> None:
    loc = f.location
    where = f"{loc.path}:{loc.line}:{loc.column}" if loc else (f.module or "?")
    marks = (" (preview)" if f.preview else "") + (
        f" (confirmed by a ThreadSanitizer run: {f.confirmed_by})" if f.confirmed_by else
        " (confirmed by the stress phase)" if f.confirmed else "")
    if f.baseline == "known":
        marks += " (in the baseline)"
    console.print(
        f"[bold]{escape(where)}[/]: [{_STYLE[f.severity]}]{f.severity}[/]: "
        f"{escape(f.message)} [dim]\\[{f.rule}]{marks}[/]",
        soft_wrap=True, highlight=False,
    )
    if f.code and loc:
        console.print(f"  [dim]{loc.line:>5} |[/] {escape(f.code)}", soft_wrap=True,
                      highlight=False)
    for n in f.notes:
        at = f"{n.location.path}:{n.location.line}: " if n.location else ""
        lines = (at + n.message).rstrip().splitlines() or [""]
        if len(lines) > _NOTE_LINES:
            lines = [*lines[:_NOTE_LINES], f"... ({len(lines) - _NOTE_LINES} more lines)"]
        text = "\n        ".join(lines)
        console.print(f"  [cyan]note:[/] {escape(text)}", soft_wrap=True, highlight=False)
    if f.reproducer:
        console.print(f"  [cyan]reproduce:[/] {escape(f.reproducer)}", soft_wrap=True,
                      highlight=False)
    if f.fix:
        console.print(f"  [green]help:[/] {escape(f.fix)}", soft_wrap=True, highlight=False)


def _stress(console: Console, stress: StressSummary) -> None:
    interp = stress.interpreter
    kind = ("free-threaded" if interp.get("free_threaded") else
            "free-threaded build, GIL enabled" if interp.get("free_threaded_build") else
            "GIL build") + (", ThreadSanitizer" if interp.get("tsan") else "")
    st = stress.settings
    console.print(f"[bold]Stress phase[/] on CPython {escape(str(interp.get('version', '?')))} "
                  f"({kind}) {escape(str(interp.get('executable', '')))}: "
                  f"{st.get('threads')} threads x {st.get('iterations')} calls x "
                  f"{st.get('trials')} trials, seed {st.get('seed')}", soft_wrap=True)
    if stress.caveat:
        console.print(f"  [yellow]note:[/] {escape(stress.caveat)}", soft_wrap=True)
    for m in stress.modules:
        console.print(f"  [bold]{escape(m.module)}[/]: [{_VERDICT.get(m.verdict, 'bold')}]"
                      f"{m.verdict}[/] - {escape(m.reason)} [dim]({m.calls:,} calls, "
                      f"{m.seconds:.1f} s, {m.children} child process(es))[/]", soft_wrap=True)
        for d in m.driven:
            on = f" on {d.setup}" if d.setup else ""
            trials = "1 trial" if d.trials == 1 else f"{d.trials} trials"
            raises = f", raises {d.raises} every time" if d.raises else ""
            console.print(f"      [dim]driven[/] {escape(d.name)}: {escape(d.call + on)} "
                          f"[dim]({d.threads} threads x {d.iterations} calls x {trials}; "
                          f"{escape(d.signature)}{escape(raises)})[/]", soft_wrap=True)
        for u in m.undriven:
            word = "skipped" if u.skipped else "not driven"
            console.print(f"      [yellow]{word}[/] {escape(u.name)}: {escape(u.reason)}",
                          soft_wrap=True)
    for suite in stress.tests:
        _suite(console, suite)
    console.print()


def _suite(console: Console, t: SuiteRun) -> None:
    console.print(f"  [bold]test suite of {escape(t.project)}[/] (pytest-run-parallel, "
                  f"{t.threads} threads): {t.files} file(s), {t.tests} test(s): "
                  f"{t.passed_serially} passed serially, {t.passed_in_threads} passed in "
                  f"threads, {t.failing_in_threads} failed only in threads, "
                  f"{len(t.thread_unsafe)} thread-unsafe (run in one thread, not counted), "
                  f"{len(t.failing_serially)} failing serially (not findings), {t.skipped} "
                  f"skipped [dim]({t.seconds:.1f} s)[/]", soft_wrap=True, highlight=False)
    for word, listed in (("thread-unsafe", t.thread_unsafe),
                         ("failing serially", t.failing_serially), ("not run", t.not_run)):
        for item in listed[:_LISTED]:
            reason = item.reason.strip().splitlines()[0] if item.reason.strip() else ""
            console.print(f"      [yellow]{word}[/] {escape(item.nodeid)}: {escape(reason)}",
                          soft_wrap=True, highlight=False)
        if len(listed) > _LISTED:
            console.print(f"      [dim]... and {len(listed) - _LISTED} more {word}[/]")


def _type_key(f: Finding) -> tuple[str, str, str] | None:
    """Object-state findings of one type and rule share a block: a type with forty methods
    is one thing to fix, not forty pages (JSON and SARIF keep one finding per entry point)."""
    if f.category != "object-state" or not f.symbol or "." not in f.symbol or f.evidence != \
            "static":
        return None
    return (f.rule, f.symbol.split(".", 1)[0], f.location.path if f.location else "")


def _blocks(findings: list[Finding]) -> list[list[Finding]]:
    blocks: list[list[Finding]] = []
    by_key: dict[tuple[str, str, str], list[Finding]] = {}
    for f in findings:
        key = _type_key(f)
        if key is not None and key in by_key:
            by_key[key].append(f)
            continue
        block = [f]
        blocks.append(block)
        if key is not None:
            by_key[key] = block
    return blocks


def _more_entry_points(console: Console, block: list[Finding]) -> None:
    console.print(f"  [cyan]the same type, {len(block) - 1} more entry point(s):[/]",
                  highlight=False)
    for f in block[1:]:
        loc = f.location
        at = f"{loc.path}:{loc.line}:{loc.column}" if loc else "?"
        console.print(f"    [bold]{escape(at)}[/]: [{_STYLE[f.severity]}]{f.severity}[/]: "
                      f"{escape(f.message.split(' without ', 1)[0])}", soft_wrap=True,
                      highlight=False)


def render_text(report: Report, out: TextIO, *, color: bool | None = None) -> None:
    console = Console(file=out, force_terminal=color, no_color=color is False,
                      highlight=False, width=200 if not out.isatty() else None)
    for block in _blocks(list(report.findings)):
        _finding(console, block[0])
        if len(block) > 1:
            _more_entry_points(console, block)
        console.print()
    if report.stress is not None:
        _stress(console, report.stress)
    if report.modules:
        console.print("[bold]Verdicts:[/]")
        for v in report.modules:
            console.print(f"  {escape(v.module)}: [{_VERDICT.get(v.verdict, 'bold')}]"
                          f"{v.verdict}[/] - {escape(v.reason)}", soft_wrap=True)
        console.print()
    if report.baseline:
        console.print(f"Baseline {escape(str(report.baseline.get('path')))}: "
                      f"{report.baseline.get('new')} new, {report.baseline.get('known')} "
                      "known (known findings do not fail the run)")
        console.print()
    if report.diagnostics:
        console.print("[bold]Not fully analysed:[/]")
        for d in report.diagnostics:
            at = f"{d.path}:{d.line}" if d.path and d.line else (d.path or "-")
            console.print(f"  {escape(at)}: [magenta]{escape(d.kind)}[/]: {escape(d.message)}",
                          soft_wrap=True, highlight=False)
        console.print()
    s = summarise(report)
    where = []
    if s["files_analysed"] or report.stress is None:
        where.append(f"{s['files_analysed']} file(s), {s['lines_analysed']} lines")
    if report.stress is not None:
        where.append(f"{s['modules_stressed']} module(s) stressed")
    counts = (f"{s['errors']} error(s), {s['warnings']} warning(s), {s['info']} info "
              f"in {', '.join(where)}, {s['seconds']:.2f} s")
    not_checked = s["files_failed"] + s["diagnostics"] + s["modules_not_run"]
    analysed = s["files_analysed"] or s["modules_stressed"]
    if not report.findings and not_checked == 0 and analysed:
        console.print(f"[bold green]No issues found[/] ({counts})")
    elif not report.findings:
        console.print(f"No issues in what was analysed; {not_checked} problem(s) kept parts "
                      f"from being checked (see above). ({counts})")
    else:
        console.print(f"[bold]Found[/] {counts}")
    if s["files_failed"]:
        console.print(f"{s['files_failed']} file(s) could not be analysed.")
