"""The HTML report: one self-contained page (inline CSS and JS, no network loads) rendered
with Jinja2 and autoescaping. Everything is visible without JavaScript; the script only filters.

The view model is built here (plain dicts of display-ready values, sorted where the report gives
no order); the templates in ``report/templates`` only lay it out.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from gilaudit.model import (
    SEVERITIES,
    Diagnostic,
    Finding,
    ModuleStress,
    ModuleVerdict,
    Report,
    StressSummary,
    severity_rank,
)
from gilaudit.report.summary import summarise
from gilaudit.rulebook import RuleBook

__all__ = ["render_html", "template_environment"]

NO_MODULE = "(no module)"
_NOTE_SUMMARY = 140  # characters of a multi-line note's first line shown in its <summary>
_FILES_SHOWN = 3  # of a module's files listed under its name in the verdict table

# C0 controls but tab and newline, DEL, C1 controls, and lone surrogates (which cannot be
# encoded): shown as visible placeholders instead of being dropped or breaking the file.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_TICKS = re.compile(r"`([^`\n]+)`")

_VERDICT_CLASS = {
    "ready": "ok", "declared but hazards": "warning", "not ready": "error",
    "not declared": "warning", "not exercised": "neutral", "unknown": "neutral",
}
_STRESS_CLASS = {"clean": "ok", "problems": "error", "not exercised": "neutral",
                 "could not run": "violet"}
_FILE_CLASS = {"parsed": "ok", "parsed (partial)": "warning", "failed": "error",
               "skipped": "neutral"}


def _control(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode "control pictures": NUL -> U+2400
    if code == 0x7F:
        return "\u2421"
    if code <= 0x9F:
        return f"\\x{code:02x}"
    return "\ufffd"


def clean(value: object) -> str:
    """Text safe to put in an HTML document: every character visible, nothing unencodable."""
    text = "" if value is None else str(value)
    text = text.replace("\r\n", "\n")
    return _CONTROL.sub(_control, text)


def _finalize(value: object) -> object:
    # Applied to every {{ expression }} before autoescaping: strings get their control
    # characters made visible; Markup the filters built is already clean and escaped.
    if isinstance(value, Markup) or not isinstance(value, str):
        return value
    return clean(value)


def ticks(value: object) -> Markup:
    """Escape, then show `backticked` spans as <code> (backticks never come out of escape)."""
    escaped = str(escape(clean(value)))
    return Markup(_TICKS.sub(r"<code>\1</code>", escaped))


@functools.lru_cache(maxsize=4)
def template_environment(folder: str) -> Environment:
    """The Jinja2 environment every gilaudit page is rendered with (this report, the
    dashboard): autoescape on, strict undefined, control characters made visible."""
    env = Environment(
        loader=PackageLoader("gilaudit", folder),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"),
                                     default_for_string=True, default=True),
        undefined=StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["ticks"] = ticks
    return env


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def _when(generated: str | None) -> dict[str, str]:
    raw = clean(generated or "")
    if not raw:
        return {"iso": "", "text": "not recorded"}
    try:
        stamp = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return {"iso": "", "text": raw}
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(timezone.utc)
    return {"iso": raw, "text": stamp.strftime("%Y-%m-%d %H:%M:%S UTC")}


def _interpreter_kind(interp: dict[str, Any]) -> str:
    if interp.get("free_threaded"):
        return "free-threaded"
    if interp.get("free_threaded_build"):
        return "free-threaded build, GIL enabled"
    return "GIL build"


def _interpreter(report: Report) -> dict[str, str]:
    """The interpreter the run used: the stress phase's, else the headers the scan parsed."""
    if report.stress is not None and report.stress.interpreter:
        interp = report.stress.interpreter
        impl = str(interp.get("implementation") or "CPython")
        impl = "CPython" if impl.lower() == "cpython" else impl
        version = str(interp.get("full_version") or interp.get("version") or "?")
        version = version.split(maxsplit=1)[0] if version.strip() else "?"
        return {"label": f"{impl} {version} ({_interpreter_kind(interp)})",
                "detail": str(interp.get("executable") or ""),
                "kind": "ok" if interp.get("free_threaded") else "warning"}
    headers = report.tool.get("python_headers")
    if headers:
        return {"label": "static analysis only", "detail": f"Python headers: {headers}",
                "kind": "neutral"}
    return {"label": "static analysis only", "detail": "", "kind": "neutral"}


def _reference(book: RuleBook, rule_id: str) -> str:
    rule = book.rules.get(rule_id)
    if rule is None:
        return ""
    return next((r for r in rule.references if r.startswith(("https://", "http://"))), "")


def _location(f: Finding) -> str:
    loc = f.location
    if loc is not None:
        return f"{loc.path}:{loc.line}:{loc.column}"
    parts = [p for p in (f.module, f.callable) if p]
    return ".".join(parts) if parts else "(dynamic)"


def _note(message: str, at: str) -> dict[str, Any]:
    text = clean(message).rstrip("\n")
    lines = text.split("\n")
    multiline = len(lines) > 1
    first = lines[0] if lines[0].strip() else next((ln for ln in lines if ln.strip()), "")
    if len(first) > _NOTE_SUMMARY:
        first = first[:_NOTE_SUMMARY - 1] + "\u2026"
    return {"at": at, "text": text, "multiline": multiline, "summary": first,
            "lines": len(lines)}


def _finding(index: int, f: Finding, book: RuleBook) -> dict[str, Any]:
    rule = book.rules.get(f.rule)
    sev = f.severity if f.severity in SEVERITIES else "unknown"
    notes = [_note(n.message, f"{n.location.path}:{n.location.line}" if n.location else "")
             for n in f.notes]
    return {
        "id": f"finding-{index}",
        "rule": f.rule,
        "title": rule.title if rule is not None else f.name,
        "name": f.name,
        "severity": f.severity,
        "sev_class": sev,
        "category": f.category,
        "language": f.language,
        "module": f.module or NO_MODULE,
        "has_module": bool(f.module),
        "location": _location(f),
        "static": f.location is not None,
        "line": f.location.line if f.location is not None else None,
        "function": f.function or "",
        # A dynamic finding's symbol is usually its callable, already in the location.
        "symbol": "" if f.location is None and f.symbol == f.callable else (f.symbol or ""),
        "message": f.message,
        "code": f.code,
        "fix": f.fix,
        "notes": notes,
        "dynamic": f.evidence == "dynamic",
        "confirmed": f.confirmed,
        "confirmed_by": f.confirmed_by or "",
        "baseline": f.baseline if f.baseline in ("new", "known") else "",
        "preview": f.preview,
        "reproducer": f.reproducer or "",
        "reference": _reference(book, f.rule),
        "fingerprint": f.fingerprint,
    }


def _module_row(m: ModuleVerdict, with_findings: set[str]) -> dict[str, Any]:
    files = list(m.files)
    shown = files[:_FILES_SHOWN]
    more = len(files) - len(shown)
    return {
        "module": m.module,
        "filterable": m.module in with_findings,
        "verdict": m.verdict,
        "verdict_class": _VERDICT_CLASS.get(m.verdict, "neutral"),
        "reason": m.reason,
        "declared": "yes" if m.declared else "no" if m.declared is False else "\u2014",
        "declared_title": "declares free-threading support" if m.declared else
        "declares no free-threading support" if m.declared is False else "nothing says",
        "files": shown,
        "more_files": more,
        "errors": m.errors,
        "warnings": m.warnings,
        "info": m.info,
        "stress": m.stress or "",
        "stress_class": _STRESS_CLASS.get(m.stress or "", "neutral"),
        "ft_evidence": m.free_threaded_evidence,
    }


def _fallback_modules(report: Report, with_findings: set[str]) -> list[dict[str, Any]]:
    """No verdicts in the report (made before the merge): the counts per module alone."""
    names = set(report.file_modules.values()) | {f.module or NO_MODULE for f in report.findings}
    files: dict[str, list[str]] = {}
    for path, module in sorted(report.file_modules.items()):
        files.setdefault(module, []).append(path)
    rows = []
    for name in sorted(names):
        sev = Counter(f.severity for f in report.findings if (f.module or NO_MODULE) == name)
        row = _module_row(ModuleVerdict(module=name, verdict="", reason="", declared=None,
                                        files=tuple(files.get(name, ())),
                                        errors=sev["error"], warnings=sev["warning"],
                                        info=sev["info"]), with_findings)
        row.update(verdict="not assessed", verdict_class="neutral", declared="\u2014")
        rows.append(row)
    return rows


def _settings(settings: dict[str, Any]) -> dict[str, Any]:
    main = ("threads", "iterations", "trials", "seed", "budget", "timeout")
    load = (f"{settings.get('threads', '?')} threads \u00d7 {settings.get('iterations', '?')} "
            f"calls \u00d7 {settings.get('trials', '?')} trials")
    extra = [(str(k), "\u2014" if v is None else str(v))
             for k, v in sorted(settings.items(), key=lambda kv: str(kv[0]))
             if k not in main]
    budget = settings.get("budget")
    timeout = settings.get("timeout")
    return {"load": load, "seed": "\u2014" if settings.get("seed") is None
            else str(settings.get("seed")),
            "budget": "\u2014" if budget is None else f"{budget} s",
            "timeout": "\u2014" if timeout is None else f"{timeout} s", "extra": extra}


def _gil(m: ModuleStress, free_threaded_build: bool) -> str:
    if m.gil_reenabled is None:
        return "\u2014" if free_threaded_build else "\u2014 (GIL build)"
    return "re-enabled at import" if m.gil_reenabled else "stayed off"


def _module_stress(m: ModuleStress, free_threaded_build: bool) -> dict[str, Any]:
    return {
        "module": m.module,
        "verdict": m.verdict,
        "verdict_class": _STRESS_CLASS.get(m.verdict, "neutral"),
        "reason": m.reason,
        "imported": m.imported or "\u2014",
        "gil": _gil(m, free_threaded_build),
        "gil_class": "error" if m.gil_reenabled else "",
        "calls": f"{m.calls:,}",
        "seconds": f"{m.seconds:.1f} s",
        "children": m.children,
        "driven": [{
            "name": d.name, "kind": d.kind, "call": d.call, "setup": d.setup or "",
            "load": f"{d.threads} \u00d7 {d.iterations:,} \u00d7 {d.trials}",
            "calls": f"{d.calls:,}", "signature": d.signature,
            "compared": list(d.compared),
        } for d in m.driven],
        "undriven": [{"name": u.name, "reason": u.reason,
                      "kind": "skipped" if u.skipped else "not driven"} for u in m.undriven],
    }


def _stress(stress: StressSummary) -> dict[str, Any]:
    interp = stress.interpreter
    version = str(interp.get("full_version") or interp.get("version") or "?").split(maxsplit=1)
    return {
        "version": version[0] if version else "?",
        "kind": _interpreter_kind(interp),
        "kind_class": "ok" if interp.get("free_threaded") else "warning",
        "executable": str(interp.get("executable") or ""),
        "settings": _settings(stress.settings),
        "caveat": stress.caveat,
        "modules": [_module_stress(m, bool(interp.get("free_threaded_build")))
                    for m in stress.modules],
    }


def _diagnostic(d: Diagnostic) -> dict[str, str]:
    at = (f"{d.path}:{d.line}" if d.path and d.line else d.path) or "\u2014"
    return {"at": at, "kind": d.kind, "message": d.message}


def _options(options: dict[str, Any]) -> list[tuple[str, str]]:
    def show(v: Any) -> str:
        if isinstance(v, (list, tuple)):
            return ", ".join(str(x) for x in v) or "\u2014"
        return "\u2014" if v is None else str(v)

    return sorted((str(k), show(v)) for k, v in options.items())


def _grouped(ordered: list[Finding], cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cards in order, one type's object-state findings of one rule folded into one group (a
    type with forty methods is one thing to fix); a group sits where its first card was."""
    items: list[dict[str, Any]] = []
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for f, card in zip(ordered, cards, strict=True):
        key = None
        if f.category == "object-state" and f.symbol and "." in f.symbol and \
                f.evidence == "static":
            key = (f.rule, f.symbol.split(".", 1)[0], f.location.path if f.location else "")
        if key is None:
            items.append({"group": False, "card": card})
            continue
        group = groups.get(key)
        if group is None:
            group = {"group": True, "rule": f.rule, "type": key[1], "path": key[2],
                     "cards": []}
            groups[key] = group
            items.append(group)
        group["cards"].append(card)
    # A group of one is just its card.
    return [{"group": False, "card": i["cards"][0]} if i["group"] and len(i["cards"]) == 1
            else i for i in items]


def _context(report: Report, book: RuleBook) -> dict[str, Any]:
    s = summarise(report)
    # Worst first; within a severity the report's own order (by location).
    ordered = sorted(report.findings, key=lambda f: -severity_rank(f.severity))
    findings = [_finding(i, f, book) for i, f in enumerate(ordered, 1)]
    with_findings = {f["module"] for f in findings}

    by_module = Counter(f["module"] for f in findings)
    by_category = Counter(f["category"] for f in findings)
    by_language = Counter(f["language"] for f in findings)
    by_rule = Counter(f.rule for f in report.findings)
    severities = list(SEVERITIES) + sorted(
        {f.severity for f in report.findings} - set(SEVERITIES))
    by_severity = Counter(f.severity for f in report.findings)
    top = max(by_category.values(), default=1)

    rules = []
    for rule_id, count in sorted(by_rule.items(), key=lambda kv: (-kv[1], kv[0])):
        rule = book.rules.get(rule_id)
        sample = next(f for f in report.findings if f.rule == rule_id)
        sev = rule.severity if rule is not None else sample.severity
        rules.append({"id": rule_id, "title": rule.title if rule is not None else sample.name,
                      "severity": sev, "sev_class": sev if sev in SEVERITIES else "unknown",
                      "count": count, "reference": _reference(book, rule_id)})

    if report.modules:
        modules = [_module_row(m, with_findings) for m in report.modules]
        verdicts_given = True
    else:
        modules = _fallback_modules(report, with_findings)
        verdicts_given = False
    ready = sum(1 for m in report.modules if m.verdict == "ready")

    not_checked = s["files_failed"] + s["diagnostics"] + s["modules_not_run"]
    analysed = s["files_analysed"] or s["modules_stressed"]
    where = []
    if s["files_analysed"] or report.stress is None:
        where.append(f"{_plural(s['files_analysed'], 'file')}, "
                     f"{_plural(s['lines_analysed'], 'line')}")
    if report.stress is not None:
        where.append(f"{_plural(s['modules_stressed'], 'module')} stressed")

    tool = report.tool
    rules_version = str(tool.get("rules_version") or book.version)
    baseline = None
    if report.baseline is not None:
        baseline = {"path": str(report.baseline.get("path") or ""),
                    "known": report.baseline.get("known", 0),
                    "new": report.baseline.get("new", 0)}

    files = [{"path": p, "status": st,
              "status_class": _FILE_CLASS.get(st if st in _FILE_CLASS
                                              else st.split(":")[0], "neutral")}
             for p, st in sorted(report.files.items())]

    return {
        "tool_name": str(tool.get("name") or "gilaudit"),
        "tool_version": str(tool.get("version") or ""),
        "rules_version": rules_version,
        "book_version": book.version,
        "generated": _when(report.generated),
        "targets": list(report.targets),
        "interpreter": _interpreter(report),
        "where": ", ".join(where),
        "seconds": f"{report.seconds:.2f} s",
        "counts": {"error": s["errors"], "warning": s["warnings"], "info": s["info"]},
        "total": len(findings),
        "not_checked": not_checked,
        "analysed": bool(analysed),
        "files_failed": s["files_failed"],
        "modules": modules,
        "verdicts_given": verdicts_given,
        "ready": ready,
        "severities": [{"name": sev, "sev_class": sev if sev in SEVERITIES else "unknown",
                        "count": by_severity.get(sev, 0)} for sev in severities],
        "categories": [{"name": c, "count": n, "pct": round(100 * n / top)}
                       for c, n in sorted(by_category.items(), key=lambda kv: (-kv[1], kv[0]))],
        "rules": rules,
        "filter_modules": sorted(by_module.items()),
        "filter_severities": [(sev, by_severity[sev]) for sev in severities
                              if by_severity.get(sev)],
        "filter_categories": sorted(by_category.items()),
        "filter_languages": sorted(by_language.items()),
        "findings": findings,
        "items": _grouped(ordered, findings),
        "stress": _stress(report.stress) if report.stress is not None else None,
        "diagnostics": [_diagnostic(d) for d in report.diagnostics],
        "files": files,
        "options": _options(report.options),
        "baseline": baseline,
    }


def render_html(report: Report, book: RuleBook) -> str:
    """The whole report as one HTML document (a pure function of its inputs)."""
    template = template_environment("report/templates").get_template("report.html.j2")
    return template.render(**_context(report, book))
