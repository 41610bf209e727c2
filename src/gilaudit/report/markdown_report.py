"""A compact Markdown summary for a pull-request comment or a CI job summary.

Title with the overall status, one verdict row per module, counts by severity and category
(with the languages each category was found in), the top findings (errors first), diagnostics
folded in a ``<details>`` block, and a footer with the tool, rules and interpreter. Every string
that comes from a finding, a path or a module is escaped so it cannot break a table, start
markup or inject HTML, and ``@`` is defused so it cannot mention anyone. The output stays under
``MAX_CHARS`` (GitHub's comment limit is 65,536) and says how many findings, modules or
diagnostics it left out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from gilaudit.model import Finding, ModuleStress, ModuleVerdict, Report, severity_rank
from gilaudit.report.merge import PROJECT, counts_towards_failure
from gilaudit.rulebook import RuleBook

__all__ = ["MAX_CHARS", "MAX_DIAGNOSTICS", "MAX_FINDINGS", "MAX_MODULES", "render_markdown"]

MAX_CHARS = 60_000
MAX_FINDINGS = 50
MAX_MODULES = 100
MAX_DIAGNOSTICS = 30
_CELL_CHARS = 300  # of one user string, before escaping

_SEVERITY_ICON = {"error": "\u274c", "warning": "\u26a0\ufe0f", "info": "\u2139\ufe0f"}
_VERDICT_ICON = {
    "ready": "\u2705", "declared but hazards": "\u26a0\ufe0f", "not ready": "\u274c",
    "not declared": "\u274c", "not exercised": "\u2754", "unknown": "\u2754",
}
_STRESS_ICON = {"clean": "\u2705", "problems": "\u274c", "not exercised": "\u2754",
                "could not run": "\u2754"}
# Controls (newlines become spaces first), DEL, lone surrogates, and the bidirectional
# overrides and isolates that can make text read differently from what it is.
_INVISIBLE = re.compile("[\x00-\x1f\x7f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
# User strings never start a line (they follow "| " or "- x: "), so only inline markup needs
# escaping; $ would start GitHub math.
_MARKUP = re.compile(r"([\\`*_\[\]|~$])")


def _md(value: object, limit: int = _CELL_CHARS) -> str:
    """Escape one user string for a table cell or a list item: one line, no markup, no HTML."""
    text = "" if value is None else str(value)
    text = " ".join(_INVISIBLE.sub(" ", text.replace("\r\n", " ")).split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "\u2026"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MARKUP.sub(r"\\\1", text)
    return text.replace("@", "@\u200b")  # no @mentions from a PR comment


def _status(report: Report) -> tuple[str, str]:
    fail_on = str(report.options.get("fail_on") or "error")
    if fail_on != "never" and any(counts_towards_failure(f, fail_on)
                                  for f in report.findings):
        return "\u274c", "failed"
    analysed = any(v.startswith("parsed") for v in report.files.values()) or (
        report.stress is not None
        and any(m.verdict in ("clean", "problems") for m in report.stress.modules))
    if not analysed:
        return "\u2754", "nothing could be analysed"
    if report.findings:
        return "\u26a0\ufe0f", "passed with findings"
    if report.diagnostics:
        return "\u26a0\ufe0f", "passed, but parts could not be analysed"
    return "\u2705", "passed"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _where(f: Finding) -> str:
    loc = f.location
    if loc is not None and loc.path:
        return f"{_md(loc.path, 200)}:{loc.line}"
    if f.module:
        return _md(f"{f.module}.{f.callable}" if f.callable else f.module, 200)
    return PROJECT


def _rule_cell(f: Finding, book: RuleBook) -> str:
    rule = book.rules.get(f.rule)
    ident = _md(f.rule, 20)
    if rule is not None and rule.references:
        ident = f"[{ident}]({_url(rule.references[0])})"
    tags = []
    if f.baseline is not None:
        tags.append("new" if f.baseline == "new" else "in baseline")
    if f.confirmed:
        tags.append(f"confirmed by TSan ({f.confirmed_by})" if f.confirmed_by else "confirmed")
    if f.evidence == "dynamic":
        tags.append("dynamic")
    if f.preview:
        tags.append("preview")
    return ident + (f" ({', '.join(tags)})" if tags else "")


def _url(url: str) -> str:
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace("|", "%7C")


def _finding_order(f: Finding) -> tuple[int, int, str, int, int, str, str, str]:
    loc = f.location
    return (-severity_rank(f.severity), 1 if f.baseline == "known" else 0,
            loc.path if loc else "\uffff" + (f.module or ""), loc.line if loc else 0,
            loc.column if loc else 0, f.rule, f.message, f.fingerprint)


class _Modules:
    def __init__(self, report: Report) -> None:
        self.verdicts: dict[str, ModuleVerdict] = {m.module: m for m in report.modules}
        self.stress: dict[str, ModuleStress] = (
            {m.module: m for m in report.stress.modules} if report.stress else {})
        self.counts: dict[str, Counter[str]] = {}
        for f in report.findings:
            self.counts.setdefault(f.module or PROJECT, Counter())[f.severity] += 1
        names = set(self.verdicts) | set(self.stress) | set(report.file_modules.values())
        names |= {m for m in self.counts if m != PROJECT or not report.modules}
        self.names = sorted(n for n in names if n)

    def row(self, name: str) -> str:
        verdict = self.verdicts.get(name)
        counts = self.counts.get(name, Counter())
        if verdict is not None:
            word = f"{_VERDICT_ICON.get(verdict.verdict, '')} {_md(verdict.verdict)}".strip()
            errors, warnings = verdict.errors, verdict.warnings
        else:
            word, errors, warnings = "\u2014", counts["error"], counts["warning"]
        stress = self.stress.get(name)
        state = stress.verdict if stress is not None else (verdict.stress if verdict else None)
        stress_cell = (f"{_STRESS_ICON.get(state, '')} {_md(state)}".strip()
                       if state else "\u2014")
        return f"| {_md(name, 120)} | {word} | {errors:,} | {warnings:,} | {stress_cell} |"


def _counts(report: Report) -> list[str]:
    sev = Counter(f.severity for f in report.findings)
    line = (f"**{_plural(sev['error'], 'error')}**, {_plural(sev['warning'], 'warning')}, "
            f"{sev['info']:,} info")
    if report.baseline is not None:
        new = sum(1 for f in report.findings if f.baseline == "new")
        known = sum(1 for f in report.findings if f.baseline == "known")
        line += f" ({_plural(new, 'new finding')}, {known:,} in the baseline)"
    files = sum(1 for v in report.files.values() if v.startswith("parsed"))
    line += f" in {_plural(files, 'file')} ({report.lines_analysed:,} lines)"
    if report.stress is not None:
        stressed = sum(1 for m in report.stress.modules if m.verdict in ("clean", "problems"))
        line += f", {_plural(stressed, 'module')} stressed"
    lines = [line + "."]
    by_cat: dict[str, Counter[str]] = {}
    where: dict[str, Counter[str]] = {}
    for f in report.findings:
        by_cat.setdefault(f.category, Counter())[f.severity] += 1
        where.setdefault(f.category, Counter())[f.language] += 1
    if by_cat:
        lines += ["", "### By category", "",
                  "| Category | Found in | Errors | Warnings | Info |", "|---|---|--:|--:|--:|"]
        lines += [f"| {_md(c, 80)} | {_found_in(where[c])} | {n['error']:,} | "
                  f"{n['warning']:,} | {n['info']:,} |" for c, n in sorted(by_cat.items())]
    return lines


def _found_in(languages: Counter[str]) -> str:
    """The languages a category's findings were found in, most first: "c (3), cython (1)"."""
    ranked = sorted(languages.items(), key=lambda kv: (-kv[1], kv[0]))
    return _md(", ".join(f"{lang} ({n:,})" for lang, n in ranked), 120)


def _footer(report: Report) -> str:
    tool = report.tool or {}
    parts = [f"gilaudit {_md(tool.get('version') or '?', 40)}",
             f"rules {_md(tool.get('rules_version') or '?', 40)}"]
    if report.stress is not None:
        interp = report.stress.interpreter
        kind = ("free-threaded" if interp.get("free_threaded") else
                "free-threaded build, GIL enabled" if interp.get("free_threaded_build") else
                "GIL build")
        parts.append(f"stressed on CPython {_md(interp.get('version') or '?', 60)} ({kind})")
    else:
        parts.append("static analysis only")
    if report.generated:
        parts.append(_md(report.generated, 40))
    return "<sub>" + " \u00b7 ".join(parts) + "</sub>"


def _diagnostics(report: Report) -> list[str]:
    if not report.diagnostics:
        return []
    diags = sorted(report.diagnostics,
                   key=lambda d: (d.path or "", d.line or 0, d.kind, d.message))
    lines = ["<details>",
             f"<summary>{_plural(len(diags), 'diagnostic')}: parts that could not be fully "
             "analysed</summary>", ""]
    for d in diags[:MAX_DIAGNOSTICS]:
        at = f"{d.path}:{d.line}" if d.path and d.line else (d.path or "(no file)")
        lines.append(f"- {_md(at, 160)}: {_md(d.kind, 40)}: {_md(d.message, 200)}")
    if len(diags) > MAX_DIAGNOSTICS:
        lines.append(f"- \u2026 and {len(diags) - MAX_DIAGNOSTICS:,} more (see the full report)")
    lines += ["", "</details>"]
    return lines


def _join(blocks: Iterable[list[str]]) -> str:
    return "\n".join(line for block in blocks if block
                     for line in [*block, ""]).rstrip("\n") + "\n"


def render_markdown(report: Report, book: RuleBook) -> str:
    icon, word = _status(report)
    counts = _counts(report)
    head = [f"## {icon} gilaudit: {word}", "", counts[0]]
    categories = counts[2:]

    modules = _Modules(report)
    module_lines: list[str] = []
    if modules.names:
        module_lines = ["### Modules", "", "| Module | Verdict | Errors | Warnings | Stress |",
                        "|---|---|--:|--:|---|"]
        module_lines += [modules.row(n) for n in modules.names[:MAX_MODULES]]
        if len(modules.names) > MAX_MODULES:
            module_lines += ["", f"\u2026 and {len(modules.names) - MAX_MODULES:,} more "
                                 "module(s) left out (see the full report)."]
    caveat = ([f"> {_md(report.stress.caveat, 400)}"]
              if report.stress is not None and report.stress.caveat else [])
    diagnostics = _diagnostics(report)
    footer = ["---", _footer(report)]

    findings = sorted(report.findings, key=_finding_order)
    fixed = _join([head, module_lines, caveat, categories, diagnostics, footer])
    rows: list[str] = []
    budget = MAX_CHARS - len(fixed) - 400  # headers and the "left out" line
    for f in findings[:MAX_FINDINGS]:
        row = (f"| {_SEVERITY_ICON.get(f.severity, '')} {_md(f.severity, 10)} | {_where(f)} | "
               f"{_rule_cell(f, book)} | {_md(f.message)} |")
        if len(row) + 1 > budget:
            break
        budget -= len(row) + 1
        rows.append(row)
    finding_lines: list[str] = []
    if findings:
        title = "### Top findings" if len(findings) > len(rows) else "### Findings"
        finding_lines = [title, "", "| Severity | Where | Rule | Message |", "|---|---|---|---|",
                         *rows]
        if len(findings) > len(rows):
            finding_lines += ["", f"\u2026 and {len(findings) - len(rows):,} more finding(s) "
                                  "left out (see the full report)."]
    text = _join([head, module_lines, caveat, categories, finding_lines, diagnostics, footer])
    if len(text) > MAX_CHARS:  # only with absurd inputs: keep the limit whatever happens
        text = text[: MAX_CHARS - 80].rsplit("\n", 1)[0] + "\n\n\u2026 (truncated)\n"
    return text
