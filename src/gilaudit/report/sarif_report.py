"""SARIF 2.1.0 for code scanning (GitHub, Azure DevOps, IDE viewers).

One run. ``tool.driver.rules`` holds the rules that appear in the results (not the whole
catalogue), sorted by id, each with its documentation as help text and markdown. Columns are
declared as ``unicodeCodePoints``: they are the analysers' 1-based columns, passed through
unchanged (the same thing on ASCII lines; libclang counts bytes on others).

A dynamic finding has no source location. It is attached to its module's init file: the file
of a module-declaration finding of that module when there is one (with that finding's line),
else the likeliest file mapped to the module (``report.file_modules`` and the
module's verdict), else the project manifest (pyproject.toml, setup.py or setup.cfg among the
report's files; "pyproject.toml" when none is known), at line 1 since GitHub's upload check
wants a region on every result. The message says so, and
``properties.locationKind`` tells which ("source", "module-init", "manifest").
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from gilaudit.model import Diagnostic, Finding, Location, Report
from gilaudit.rulebook import DOC_HEADINGS, Rule, RuleBook

__all__ = ["SARIF_SCHEMA", "SARIF_VERSION", "render_sarif"]

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/gilaudit/gilaudit"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "gilaudit/v1"

_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
_PROBLEM_SEVERITY = {"error": "error", "warning": "warning", "info": "recommendation"}
_MANIFESTS = ("pyproject.toml", "setup.py", "setup.cfg")
_SOURCE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".c++", ".m", ".mm", ".pyx")
_NOT_A_DIRECTORY = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".so",
                    ".pyd", ".dylib", ".egg")
# The info string of the code blocks in rule docs, by the rule's language: build files,
# metadata, `nm` output and the dynamic rules' mix of shell output and C get none.
_FENCE_LANGUAGE = {"c": "c", "c++": "cpp", "cython": "cython", "rust": "rust",
                   "fortran": "fortran"}
_SURROGATE = re.compile("[\ud800-\udfff]")
_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$")
# Unreserved and sub-delimiters stay; everything else (spaces, %, #, ?, non-ASCII) is escaped.
_URI_SAFE = "/-._~!$&'()*+,;=:@"


def _clean(value: Any) -> Any:
    """Lone surrogates cannot be written as UTF-8: replace them everywhere, recursively."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _quote(path: str) -> str:
    return quote(_SURROGATE.sub("\ufffd", path), safe=_URI_SAFE)


def _uri(path: str) -> tuple[str, bool]:
    """(URI, relative to %SRCROOT%) for a report path."""
    norm = path.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:/", norm):
        return "file://" + ("" if norm.startswith("/") else "/") + _quote(norm), \
            False
    return _quote(norm), True


def _artifact(path: str) -> dict[str, Any]:
    uri, relative = _uri(path)
    return {"uri": uri, "uriBaseId": SRCROOT} if relative else {"uri": uri}


def _region(loc: Location) -> dict[str, Any] | None:
    if loc.line < 1:
        return None
    region: dict[str, Any] = {"startLine": loc.line}
    if loc.column >= 1:
        region["startColumn"] = loc.column
    end_line = loc.end_line if loc.end_line is not None and loc.end_line >= loc.line else None
    if end_line is not None:
        region["endLine"] = end_line
    if loc.end_column is not None and loc.end_column >= 1:
        same_line = end_line is None or end_line == loc.line
        if not same_line or loc.end_column >= region.get("startColumn", 1):
            region["endColumn"] = loc.end_column
    return region


def _physical(loc: Location, code: str = "") -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": _artifact(loc.path)}
    region = _region(loc)
    if region is not None:
        physical["region"] = region
        if code and region.get("endLine", loc.line) == loc.line:
            # The code is the whole (stripped) line, so it is the snippet of the line's
            # context region (which must contain the region), not of the column range.
            physical["contextRegion"] = {"startLine": loc.line, "endLine": loc.line,
                                         "snippet": {"text": code}}
    return physical


def _fingerprint(f: Finding) -> str:
    if f.fingerprint:
        return f.fingerprint
    parts = (f.rule, f.location.path if f.location else "", f.symbol or "", f.function or "",
             f.code, f.module or "", f.callable or "", f.category)
    return hashlib.sha256("\0".join(parts).encode("utf-8", "replace")).hexdigest()[:32]


def _fence(text: str, lang: str) -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def _help(rule: Rule) -> dict[str, str]:
    docs = dict(rule.docs)
    lang = _FENCE_LANGUAGE.get(rule.language, "")
    text: list[str] = [rule.title]
    markdown: list[str] = [f"**{rule.title}**"]
    for key, heading in DOC_HEADINGS.items():
        body = docs.get(key, "").strip()
        if not body:
            continue
        text.append(f"{heading}:\n{body}")
        if key in ("example", "instead"):
            markdown.append(f"### {heading}\n\n{_fence(body, lang)}")
        else:
            markdown.append(f"### {heading}\n\n{body}")
    text.append(f"How to fix: {rule.fix}")
    markdown.append(f"### How to fix\n\n{rule.fix}")
    if rule.references:
        text.append("References:\n" + "\n".join(f"- {r}" for r in rule.references))
        markdown.append("### References\n\n" + "\n".join(f"- <{r}>" for r in rule.references))
    return {"text": "\n\n".join(text), "markdown": "\n\n".join(markdown)}


def _precision(rule: Rule) -> str:
    if rule.phase == "dynamic":
        return "very-high"  # observed on a running interpreter
    return "high" if rule.status == "stable" else "medium"


def _descriptor(rule_id: str, rule: Rule | None, example: Finding) -> dict[str, Any]:
    if rule is None:  # a finding from a rule this catalogue does not know (older report)
        sev = example.severity
        return {
            "id": rule_id, "name": example.name or rule_id,
            "shortDescription": {"text": example.name or rule_id},
            "defaultConfiguration": {"level": _LEVEL.get(sev, "warning")},
            "properties": {"category": example.category, "language": example.language,
                           "tags": sorted({"free-threading", example.category,
                                           example.language}),
                           "problem.severity": _PROBLEM_SEVERITY.get(sev, "warning")},
        }
    what = dict(rule.docs).get("what", "").strip() or rule.title
    tags = ["free-threading", rule.category, rule.language, rule.phase]
    if rule.status != "stable":
        tags.append(rule.status)
    desc: dict[str, Any] = {
        "id": rule.id, "name": rule.name,
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": what},
        "help": _help(rule),
    }
    if rule.references:
        desc["helpUri"] = rule.references[0]
    desc["defaultConfiguration"] = {"level": _LEVEL[rule.severity]}
    desc["properties"] = {"category": rule.category, "language": rule.language,
                          "tags": sorted(set(tags)),
                          "precision": _precision(rule),
                          "problem.severity": _PROBLEM_SEVERITY[rule.severity],
                          "status": rule.status, "phase": rule.phase}
    return desc


class _Anchors:
    """Where findings without a source location go: module init files, else the manifest."""

    def __init__(self, report: Report) -> None:
        self.declared: dict[str, Location] = {}
        for f in sorted(report.findings, key=lambda x: x.sort_key):
            if (f.module and f.location is not None and f.location.path
                    and f.category == "module-declaration" and f.module not in self.declared):
                self.declared[f.module] = f.location
        self.files: dict[str, set[str]] = {}
        for path, module in report.file_modules.items():
            self.files.setdefault(module, set()).add(path)
        for verdict in report.modules:
            self.files.setdefault(verdict.module, set()).update(verdict.files)
        manifests = [p for p in report.files if PurePosixPath(p).name in _MANIFESTS]
        manifests.sort(key=lambda p: (p.count("/"), _MANIFESTS.index(PurePosixPath(p).name), p))
        self.manifest = manifests[0] if manifests else "pyproject.toml"

    def init_file(self, module: str) -> str | None:
        files = [p for p in self.files.get(module, ()) if p]
        if not files:
            return None
        last = module.rsplit(".", 1)[-1]
        stems = {last, last.lstrip("_")}

        def score(path: str) -> tuple[int, int, int, str]:
            p = PurePosixPath(path)
            return (0 if p.suffix.lower() in _SOURCE_SUFFIXES else 1,
                    0 if p.stem in stems else 1, len(path), path)

        return min(files, key=score)

    def anchor(self, f: Finding) -> tuple[dict[str, Any], str, str]:
        """(physical location, location kind, what it is) for a finding without a location."""
        if f.module:
            loc = self.declared.get(f.module)
            if loc is not None:
                return (_physical(Location(path=loc.path, line=loc.line)), "module-init",
                        f"{loc.path}, the init file of module {f.module}")
            path = self.init_file(f.module)
            if path is not None:
                return ({"artifactLocation": _artifact(path), "region": {"startLine": 1}},
                        "module-init", f"{path}, the init file of module {f.module}")
        # Line 1: GitHub's upload check (GH1003) wants a region on every result.
        return ({"artifactLocation": _artifact(self.manifest), "region": {"startLine": 1}},
                "manifest", f"{self.manifest}, the project manifest")


def _result(f: Finding, index: int, anchors: _Anchors) -> dict[str, Any]:
    message = f.message
    if f.location is not None and f.location.path:
        physical = _physical(f.location, f.code)
        kind = "source"
    else:
        physical, kind, what = anchors.anchor(f)
        found = "found by the stress phase, " if f.evidence == "dynamic" else ""
        message = f"{message} ({found}no source location: reported on {what})"
    result: dict[str, Any] = {
        "ruleId": f.rule, "ruleIndex": index, "level": _LEVEL.get(f.severity, "warning"),
        "message": {"text": message or f.name or f.rule},
        "locations": [{"physicalLocation": physical}],
    }
    logical: list[dict[str, str]] = []
    if f.function:  # the enclosing C function
        logical.append({"name": f.function, "kind": "function"})
    if f.module:  # the Python-level name: module, or module.callable
        name = f"{f.module}.{f.callable}" if f.callable else f.module
        logical.append({"fullyQualifiedName": name,
                        "kind": "function" if f.callable else "module"})
    if logical:
        result["locations"][0]["logicalLocations"] = logical
    located = [(n.location, n.message) for n in f.notes
               if n.location is not None and n.location.path]
    related = [{"id": i, "physicalLocation": _physical(loc), "message": {"text": text}}
               for i, (loc, text) in enumerate(located, start=1)]
    if related:
        result["relatedLocations"] = related
    result["partialFingerprints"] = {FINGERPRINT_KEY: _fingerprint(f)}
    if f.baseline is not None:
        result["baselineState"] = "new" if f.baseline == "new" else "unchanged"
    props: dict[str, Any] = {
        "category": f.category, "language": f.language, "evidence": f.evidence,
        "confirmed": f.confirmed,
        "locationKind": kind,
    }
    optional = {"module": f.module, "callable": f.callable, "symbol": f.symbol,
                "confirmedBy": f.confirmed_by,
                "function": f.function, "reproducer": f.reproducer, "baseline": f.baseline,
                "fix": f.fix or None}
    props.update({k: v for k, v in optional.items() if v is not None})
    if f.preview:
        props["preview"] = True
    loose = [n.message for n in f.notes if n.location is None or not n.location.path]
    if loose:
        props["notes"] = loose
    result["properties"] = props
    return result


def _notification(d: Diagnostic) -> dict[str, Any]:
    note: dict[str, Any] = {
        "level": "error" if "error" in d.kind else "warning",
        "message": {"text": d.message or d.kind},
        "descriptor": {"id": d.kind or "diagnostic"},
    }
    if d.path:
        physical: dict[str, Any] = {"artifactLocation": _artifact(d.path)}
        if d.line is not None and d.line >= 1:
            physical["region"] = {"startLine": d.line}
        note["locations"] = [{"physicalLocation": physical}]
    return note


def _srcroot(targets: Iterable[str]) -> dict[str, Any] | None:
    """The scanned directory, when there is exactly one and paths are relative to it."""
    targets = list(targets)
    if len(targets) != 1 or not targets[0]:
        return None
    target = targets[0]
    if target.lower().endswith(_NOT_A_DIRECTORY):
        return None
    uri = PurePosixPath(os.path.abspath(target).replace("\\", "/")).as_posix()
    if re.match(r"^[A-Za-z]:/", uri):
        uri = "/" + uri
    return {"uri": "file://" + _quote(uri.rstrip("/") + "/")}


def render_sarif(report: Report, book: RuleBook) -> str:
    findings = sorted(report.findings, key=lambda f: (*f.sort_key, f.message, _fingerprint(f)))
    rule_ids = sorted({f.rule for f in findings})
    examples = {f.rule: f for f in reversed(findings)}
    rules = [_descriptor(r, book.rules.get(r), examples[r]) for r in rule_ids]
    index = {r: i for i, r in enumerate(rule_ids)}
    anchors = _Anchors(report)
    results = [_result(f, index[f.rule], anchors) for f in findings]

    tool = report.tool or {}
    version = str(tool.get("version") or "0")
    driver: dict[str, Any] = {"name": "gilaudit", "version": version,
                              "informationUri": INFORMATION_URI}
    if _SEMVER.match(version):
        driver["semanticVersion"] = version
    driver["rules"] = rules
    driver["properties"] = {"rulesVersion": str(tool.get("rules_version") or book.version)}

    invocation: dict[str, Any] = {
        "executionSuccessful": True,
        "toolExecutionNotifications": [
            _notification(d) for d in sorted(report.diagnostics, key=lambda d: (
                d.path or "", d.line or 0, d.kind, d.message))],
    }
    if _DATETIME.match(report.generated or ""):
        invocation["endTimeUtc"] = report.generated
    invocation["properties"] = {"targets": list(report.targets), "options": report.options,
                                "filesAnalysed": sum(1 for v in report.files.values()
                                                     if v.startswith("parsed")),
                                "linesAnalysed": report.lines_analysed}
    if report.stress is not None:
        invocation["properties"]["interpreter"] = report.stress.interpreter

    run: dict[str, Any] = {"tool": {"driver": driver}, "invocations": [invocation]}
    root = _srcroot(report.targets)
    if root is not None:
        run["originalUriBaseIds"] = {SRCROOT: root}
    run["results"] = results
    run["columnKind"] = "unicodeCodePoints"
    run_props: dict[str, Any] = {}
    if report.baseline is not None:
        run_props["baseline"] = report.baseline
    if report.modules:
        run_props["modules"] = [{"module": m.module, "verdict": m.verdict, "reason": m.reason}
                                for m in sorted(report.modules, key=lambda m: m.module)]
    if run_props:
        run["properties"] = run_props
    log = {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}
    return json.dumps(_clean(log), indent=2, ensure_ascii=False, default=str) + "\n"
