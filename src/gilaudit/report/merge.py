"""One verdict per extension module: load saved JSON reports, merge any number of scan and
stress runs, mark the static findings a dynamic one confirms, compare with a baseline.

All pure functions from reports to reports, except `load_report` and `load_baseline`, which
read a file and turn every way it can be wrong into a `ReportInputError` with one clear
sentence (never a traceback)."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gilaudit.errors import GilauditError
from gilaudit.model import (
    Diagnostic,
    Finding,
    ModuleStress,
    ModuleVerdict,
    Report,
    StressSummary,
    severity_rank,
)

__all__ = ["MAX_INPUT_BYTES", "PROJECT", "ReportInputError", "apply_baseline", "baseline_dict",
           "finalise", "load_baseline", "load_report", "merge", "report_from_dict", "verdicts"]

MAX_INPUT_BYTES = 512 * 1024 * 1024
PROJECT = "(project)"  # findings that belong to no single module (wheels, build files)
BASELINE_SCHEMA = "gilaudit-baseline/1"
# Findings that mean "this module does not declare free-threading support".
UNDECLARED = frozenset({"FT001", "FT002", "FT005", "FT090", "FT091", "FT110", "FT113",
                        "FT115", "FT118"})
DECLARED = frozenset({"FT008"})  # "declares support, but has hazards": a declaration seen
DYNAMIC_FAILURES = frozenset({"FT200", "FT202", "FT203", "FT204", "FT205", "FT208",
                              "FT209", "FT210", "FT211"})


class ReportInputError(GilauditError):
    """A results or baseline file that cannot be used; exit status 2."""

    exit_code = 2


# -- reading ---------------------------------------------------------------------------------

def _read_json(path: Path, what: str) -> Any:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ReportInputError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from exc
    if size > MAX_INPUT_BYTES:
        raise ReportInputError(f"{path}: the {what} is {size:,} bytes, more than the "
                               f"{MAX_INPUT_BYTES:,} gilaudit reads")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ReportInputError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ReportInputError(f"{path}: the {what} is not UTF-8 text ({exc.reason} at byte "
                               f"{exc.start})") from exc
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise ReportInputError(f"{path}: the {what} is nested too deeply") from exc
    except ValueError as exc:
        end = text.rstrip()[-1:]
        cut = " (it looks cut short)" if end and end not in "}]" else ""
        raise ReportInputError(f"{path}: the {what} is not valid JSON{cut}: {exc}") from exc


def load_report(path: Path) -> Report:
    data = _read_json(path, "results file")
    if not isinstance(data, dict) or "schema" not in data:
        raise ReportInputError(f"{path}: not a gilaudit JSON report (no \"schema\" field)")
    if data["schema"] != 1:
        raise ReportInputError(f"{path}: a gilaudit report of schema {data['schema']!r}; this "
                               "gilaudit reads schema 1")
    try:
        return report_from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ReportInputError(f"{path}: a malformed gilaudit report "
                               f"({type(exc).__name__}: {exc})") from exc


def _str(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{field} is {type(value).__name__}, not a string")
    return value


def _finding(d: Any) -> Finding:
    if not isinstance(d, dict):
        raise ValueError("a finding is not an object")
    for key in ("rule", "name", "category", "message"):
        _str(d.get(key), f"finding.{key}")
    if d.get("language") is not None:  # absent before reports had it: derived on load
        _str(d["language"], "finding.language")
    if d.get("severity") not in ("error", "warning", "info"):
        raise ValueError(f"finding.severity is {d.get('severity')!r}")
    if d.get("line") is not None and not isinstance(d.get("line"), int):
        raise ValueError("finding.line is not an integer")
    return Finding.from_dict(d)


def report_from_dict(data: dict[str, Any]) -> Report:
    """The inverse of the JSON writer's report_to_dict; strict about types."""
    stress = data.get("stress")
    return Report(
        tool=dict(data.get("tool") or {}),
        targets=tuple(_str(t, "target") for t in data.get("targets", [])),
        findings=tuple(_finding(f) for f in data.get("findings", [])),
        diagnostics=tuple(Diagnostic.from_dict(x) for x in data.get("diagnostics", [])),
        files={_str(k, "file"): _str(v, "file state")
               for k, v in dict(data.get("files") or {}).items()},
        lines_analysed=int((data.get("summary") or {}).get("lines_analysed", 0)),
        seconds=float((data.get("summary") or {}).get("seconds", 0.0)),
        options=dict(data.get("options") or {}),
        stress=StressSummary.from_dict(stress) if isinstance(stress, dict) else None,
        file_modules={_str(k, "file"): _str(v, "module")
                      for k, v in dict(data.get("file_modules") or {}).items()},
        modules=tuple(ModuleVerdict.from_dict(m) for m in data.get("modules", [])),
        generated=str(data.get("generated") or ""),
        baseline=data.get("baseline") if isinstance(data.get("baseline"), dict) else None,
    )


# -- merging ---------------------------------------------------------------------------------

def merge(reports: list[Report]) -> Report:
    """Findings, diagnostics, files and stress results of several runs in one report.
    The same finding (same fingerprint) is kept once."""
    if not reports:
        raise ReportInputError("nothing to merge: no report given")
    if len(reports) == 1:
        return reports[0]
    seen: set[str] = set()
    findings: list[Finding] = []
    for r in reports:
        for f in r.findings:
            key = f.fingerprint or repr(f.to_dict())
            if key not in seen:
                seen.add(key)
                findings.append(f)
    diags: list[Diagnostic] = []
    dseen: set[tuple[Any, ...]] = set()
    for r in reports:
        for d in r.diagnostics:
            k = (d.path, d.kind, d.message, d.line)
            if k not in dseen:
                dseen.add(k)
                diags.append(d)
    stresses = [r.stress for r in reports if r.stress is not None]
    stress = None
    if stresses:
        by_module: dict[str, ModuleStress] = {}
        for s in stresses:  # a later run of the same module replaces an earlier one
            for m in s.modules:
                by_module[m.module] = m
        best = next((s for s in stresses if s.interpreter.get("free_threaded")), stresses[0])
        stress = replace(best, modules=tuple(by_module.values()),
                         tests=tuple(t for s in stresses for t in s.tests))
    interpreters = [s.interpreter for s in stresses]
    tool = dict(reports[0].tool)
    if len({json.dumps(i, sort_keys=True) for i in interpreters}) > 1:
        tool["interpreters"] = interpreters
    files: dict[str, str] = {}
    file_modules: dict[str, str] = {}
    targets: list[str] = []
    for r in reports:
        files.update(r.files)
        file_modules.update(r.file_modules)
        targets += [t for t in r.targets if t not in targets]
    return Report(tool=tool, targets=tuple(targets), findings=tuple(findings),
                  diagnostics=tuple(diags), files=files,
                  lines_analysed=sum(r.lines_analysed for r in reports),
                  seconds=sum(r.seconds for r in reports),
                  options={"merged": [r.options for r in reports]}, stress=stress,
                  file_modules=file_modules)


def _module_of(f: Finding, file_modules: dict[str, str]) -> str:
    if f.module:
        return f.module
    if f.location is not None and f.location.path in file_modules:
        return file_modules[f.location.path]
    return PROJECT


def _callables(f: Finding) -> set[str]:
    return {c.strip() for c in (f.callable or "").split(" + ") if c.strip()}


def confirm(findings: tuple[Finding, ...], file_modules: dict[str, str]) -> tuple[Finding, ...]:
    """A static finding is confirmed when a dynamic finding names the same module and the
    same callable (methods as "Type.method", the name the static phase gives too), and at
    line level when a dynamic finding pinned to a source line (ThreadSanitizer's) races in
    the same file and function on the variable or field the static finding is about."""
    dynamic = {(_module_of(f, file_modules), c) for f in findings if f.evidence == "dynamic"
               and f.rule in DYNAMIC_FAILURES for c in _callables(f)}
    pinned = [f for f in findings if f.evidence == "dynamic" and f.location is not None]
    out = []
    for f in findings:
        if f.evidence != "static":
            out.append(f)
            continue
        # The race's own access in this function beats this line being its other side.
        by = min((why for d in pinned if (why := confirmation(f, d))),
                 key=lambda why: "other side" in why, default=None)
        if by is not None:
            out.append(replace(f, confirmed=True, confirmed_by=by))
            continue
        hit = f.callable and (_module_of(f, file_modules), f.callable) in dynamic
        out.append(replace(f, confirmed=True) if hit and not f.confirmed else f)
    return tuple(out)


_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


def _same_path(a: str, b: str) -> bool:
    # A module named on the command line has absolute paths in its TSan frames.
    return a == b or a.endswith("/" + b) or b.endswith("/" + a)


def _names(symbol: str | None) -> set[str]:
    """What a static finding's symbol names: `Type.field`, `self->field`, `cache` all end
    in the variable or field a racing access would touch."""
    parts = _IDENTIFIER.findall(symbol or "")
    return {parts[-1]} if parts else set()


def confirms_at_line(static: Finding, dynamic: Finding) -> bool:
    return confirmation(static, dynamic) is not None


def confirmation(static: Finding, dynamic: Finding) -> str | None:
    """How a dynamic finding pinned to a line confirms a static one, or None: its own access
    lies in the static finding's file and function and touches what the static finding is
    about (its symbol's last name is the variable TSan named or appears in the access's
    source line), or either side of the race is the static line itself."""
    s_loc, d_loc = static.location, dynamic.location
    if s_loc is None or d_loc is None or not _same_path(s_loc.path, d_loc.path):
        return None
    kind = dynamic.category.replace("-", " ")
    what = f" (`{dynamic.symbol}`)" if dynamic.symbol and dynamic.symbol != dynamic.function \
        else ""
    here = f"{dynamic.rule} {kind} at {d_loc.path}:{d_loc.line}{what}"
    if s_loc.line == d_loc.line:
        return here
    for note in dynamic.notes:
        n = note.location
        if n is not None and _same_path(s_loc.path, n.path) and s_loc.line == n.line:
            return f"{dynamic.rule} {kind}: this line is the other side of the race at " \
                   f"{d_loc.path}:{d_loc.line}{what}"
    if not static.function or static.function != dynamic.function:
        return None
    wanted = _names(static.symbol)
    touched = set(_IDENTIFIER.findall(dynamic.code)) | _names(dynamic.symbol)
    if wanted & touched:
        return here
    # No symbol to compare: the variable TSan names appears in the static finding's line.
    if not wanted and dynamic.symbol and dynamic.symbol in set(_IDENTIFIER.findall(static.code)):
        return here
    return None


# -- verdicts --------------------------------------------------------------------------------

def verdicts(report: Report) -> tuple[ModuleVerdict, ...]:
    """One verdict per module, never `ready` without evidence: a declaration, no error, and a
    clean stress run on a free-threaded interpreter."""
    files: dict[str, list[str]] = {}
    for path, module in report.file_modules.items():
        files.setdefault(module, []).append(path)
    by_module: dict[str, list[Finding]] = {}
    for f in report.findings:
        by_module.setdefault(_module_of(f, report.file_modules), []).append(f)
    stressed = {m.module: m for m in report.stress.modules} if report.stress else {}
    ft = bool(report.stress and report.stress.interpreter.get("free_threaded"))
    names = sorted(set(files) | set(by_module) | set(stressed))
    out = []
    for name in names:
        found = [f for f in by_module.get(name, []) if not f.preview]
        sev = Counter(f.severity for f in found)
        rules = {f.rule for f in found}
        stress = stressed.get(name)
        declared: bool | None = None
        if rules & UNDECLARED:
            declared = False
        elif rules & DECLARED or (name in files and name != PROJECT):
            declared = True
        if stress is not None and ft and stress.gil_reenabled is not None:
            declared = not stress.gil_reenabled  # the interpreter's own answer wins
        verdict, reason = _verdict(name, found, declared, stress, ft)
        out.append(ModuleVerdict(
            module=name, verdict=verdict, reason=reason, declared=declared,
            files=tuple(sorted(files.get(name, []))), errors=sev.get("error", 0),
            warnings=sev.get("warning", 0), info=sev.get("info", 0),
            stress=stress.verdict if stress else None,
            free_threaded_evidence=bool(stress and ft and stress.verdict in ("clean",
                                                                              "problems"))))
    return tuple(out)


def _count(findings: list[Finding], severity: str) -> int:
    return sum(1 for f in findings if f.severity == severity)


def _verdict(name: str, found: list[Finding], declared: bool | None,
             stress: ModuleStress | None, ft: bool) -> tuple[str, str]:
    dynamic = sorted({f.category for f in found if f.rule in DYNAMIC_FAILURES})
    errors = [f for f in found if f.severity == "error" and f.rule not in UNDECLARED
              and f.evidence == "static"]
    warnings = _count(found, "warning")
    if dynamic:
        return "not ready", "the stress phase found: " + ", ".join(dynamic)
    if name == PROJECT:
        if errors:
            return "not ready", f"{len(errors)} project-wide error(s) (wheels, build files)"
        return ("declared but hazards" if warnings else "unknown",
                f"{warnings} project-wide warning(s)" if warnings else
                "project-wide findings only; no module of its own")
    if declared is False:
        why = "importing it re-enabled the GIL" if stress and stress.gil_reenabled else \
            "no declaration of free-threading support was found"
        return "not declared", why + (f"; {len(errors)} error(s) as well" if errors else "")
    if stress is not None and stress.verdict == "could not run":
        return "not ready", f"the stress phase could not run it: {stress.reason}" + (
            f"; {len(errors)} error(s) from static analysis" if errors else "")
    if errors:
        return "not ready", f"{len(errors)} error(s) from static analysis" + (
            f" ({sum(1 for f in errors if f.confirmed)} confirmed by the stress phase)"
            if any(f.confirmed for f in errors) else "")
    if warnings:
        return "declared but hazards", f"declares support; {warnings} warning(s) to review"
    if declared is None:
        return "unknown", "nothing shows whether it declares free-threading support"
    if stress is None:
        return "not exercised", "declares support and static analysis is clean, but it was " \
                                "not stressed (run with --stress on a free-threaded interpreter)"
    if not ft:
        return "not exercised", "declares support; stressed only on a GIL build, where races " \
                                "the GIL prevents cannot show"
    if stress.verdict != "clean":
        return "not exercised", f"the stress phase could not drive it: {stress.reason}"
    return "ready", f"declares support, no error, stressed clean on a free-threaded build " \
                    f"({len(stress.driven)} callables, {stress.calls:,} calls)"


# -- baselines -------------------------------------------------------------------------------

def baseline_dict(report: Report) -> dict[str, Any]:
    return {"schema": BASELINE_SCHEMA,
            "findings": sorted(({"fingerprint": f.fingerprint, "rule": f.rule,
                                 "path": f.location.path if f.location else None,
                                 "symbol": f.symbol, "module": f.module}
                                for f in report.findings if f.fingerprint),
                               key=lambda d: (d["fingerprint"], d["rule"]))}


def load_baseline(path: Path) -> frozenset[str]:
    data = _read_json(path, "baseline")
    if isinstance(data, dict) and data.get("schema") == 1 and "findings" in data:
        items = data["findings"]  # a saved JSON report works as a baseline too
    elif isinstance(data, dict) and data.get("schema") == BASELINE_SCHEMA:
        items = data.get("findings")
    else:
        raise ReportInputError(f"{path}: not a gilaudit baseline (write one with "
                               "`gilaudit baseline`)")
    if not isinstance(items, list) or not all(
            isinstance(i, dict) and isinstance(i.get("fingerprint"), str) for i in items):
        raise ReportInputError(f"{path}: a malformed gilaudit baseline (findings must be "
                               "objects with a fingerprint)")
    return frozenset(i["fingerprint"] for i in items)


def apply_baseline(report: Report, known: frozenset[str], path: str) -> Report:
    findings = tuple(replace(f, baseline="known" if f.fingerprint in known else "new")
                     for f in report.findings)
    new = sum(1 for f in findings if f.baseline == "new")
    return replace(report, findings=findings,
                   baseline={"path": path, "known": len(findings) - new, "new": new})


def counts_towards_failure(f: Finding, threshold: str) -> bool:
    return (not f.preview and f.baseline != "known"
            and severity_rank(f.severity) >= severity_rank(threshold))


def finalise(report: Report, *, now: datetime | None = None) -> Report:
    """Confirmation marks, module verdicts and the time: what every writer shows."""
    findings = confirm(report.findings, report.file_modules)
    done = replace(report, findings=findings)
    stamp = (now or datetime.now(timezone.utc)).replace(microsecond=0).isoformat()
    return replace(done, modules=verdicts(done), generated=report.generated or stamp)
