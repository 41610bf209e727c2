"""JUnit XML for CI test reports: one test case per extension module and check.

``<testsuites>`` holds one ``<testsuite name="gilaudit">``. Its test cases have the module as
``classname`` ("(project)" for findings that belong to no module) and one of these names:

* ``declaration``: the module-declaration findings (Py_mod_gil, SetGIL, the Cython directive,
  the binding generators' declarations); passes when there are none.
* ``static: <category>`` for every other category of static findings of the module, or one
  passing ``static analysis`` case when it has none (skipped when no source file of the module
  was analysed).
* ``stress``: the module's stress verdict: clean passes, problems fails, not exercised and could
  not run are skipped. Only when the stress phase ran; dynamic findings of a module it did not
  stress still fail this case.
* ``verdict``: the module's overall verdict, when the report has one: ready passes; not ready,
  not declared, declared but hazards fail; not exercised and unknown are skipped.

A case fails when it holds an error or warning finding that is not preview and not already in
the baseline; the others (info, preview, known) are listed in its ``<system-out>``. A failure's
``message`` is its first finding's message, ``type`` the rule ids, and its text every finding of
the case as ``path:line:col: severity: message [FTnnn]`` with the fix. Diagnostics go to the
suite's ``<system-err>``. A case with findings has the ``<properties>`` ``category`` and
``language``: the categories (hazards) and languages of its findings, comma-separated.
Characters XML 1.0 cannot hold are removed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from gilaudit.model import Finding, ModuleStress, ModuleVerdict, Report, severity_rank
from gilaudit.report.merge import PROJECT, counts_towards_failure
from gilaudit.rulebook import RuleBook

__all__ = ["PROJECT", "render_junit"]

_DECLARATION = "module-declaration"
_MESSAGE_CHARS = 240
# Everything XML 1.0 cannot represent: C0 controls but tab/newline/return, lone surrogates,
# and the two non-characters U+FFFE and U+FFFF.
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_FAILING_VERDICTS = ("not ready", "not declared", "declared but hazards")


def _x(text: object) -> str:
    return _ILLEGAL.sub("", "" if text is None else str(text))


def _short(text: str, limit: int = _MESSAGE_CHARS) -> str:
    one = " ".join(_x(text).split())
    return one if len(one) <= limit else one[: limit - 3] + "..."


def _where(f: Finding) -> str:
    loc = f.location
    if loc is not None and loc.path:
        return f"{loc.path}:{loc.line}:{loc.column}"
    if f.module:
        return f"{f.module}.{f.callable}" if f.callable else f.module
    return PROJECT


def _line(f: Finding) -> str:
    tags = [f.rule]
    if f.preview:
        tags.append("preview")
    if f.baseline == "known":
        tags.append("in baseline")
    if f.confirmed:
        tags.append(f"confirmed by ThreadSanitizer: {f.confirmed_by}" if f.confirmed_by
                    else "confirmed by the stress phase")
    text = f"{_where(f)}: {f.severity}: {f.message} [{', '.join(tags)}]"
    if f.code:
        text += f"\n    {f.code}"
    for n in f.notes:
        at = f"{n.location.path}:{n.location.line}: " if n.location else ""
        text += "\n    note: " + (at + n.message).replace("\n", "\n          ")
    if f.reproducer:
        text += f"\n    reproduce: {f.reproducer}"
    if f.fix:
        text += f"\n    fix: {f.fix}"
    return text


def _gating(f: Finding) -> bool:
    return counts_towards_failure(f, "warning")


def _order(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-severity_rank(f.severity), *f.sort_key, f.message,
                                           f.fingerprint))


class _Suite:
    def __init__(self) -> None:
        self.cases: list[ET.Element] = []
        self.failures = 0
        self.skipped = 0

    def case(self, module: str, name: str, *, seconds: float = 0.0) -> ET.Element:
        el = ET.Element("testcase", {"classname": _x(module), "name": _x(name),
                                     "time": f"{max(seconds, 0.0):.3f}"})
        self.cases.append(el)
        return el

    def findings_case(self, module: str, name: str, findings: list[Finding], *,
                      seconds: float = 0.0) -> ET.Element:
        el = self.case(module, name, seconds=seconds)
        ordered = _order(findings)
        if ordered:
            # What and where, for CI viewers that filter test cases by property.
            props = ET.SubElement(el, "properties")
            for key, values in (("category", {f.category for f in ordered}),
                                ("language", {f.language for f in ordered})):
                ET.SubElement(props, "property", {"name": key,
                                                  "value": _x(", ".join(sorted(values)))})
        failing = [f for f in ordered if _gating(f)]
        if failing:
            rules = sorted({f.rule for f in failing})
            fail = ET.SubElement(el, "failure", {"message": _short(failing[0].message),
                                                 "type": _short(" ".join(rules))})
            fail.text = _x("\n".join(_line(f) for f in failing)) + "\n"
            self.failures += 1
        rest = [f for f in ordered if not _gating(f)]
        if rest:
            ET.SubElement(el, "system-out").text = _x("\n".join(_line(f) for f in rest)) + "\n"
        return el

    def skip(self, el: ET.Element, message: str) -> None:
        ET.SubElement(el, "skipped", {"message": _short(message)})
        self.skipped += 1


def _modules(report: Report) -> list[str]:
    names = {f.module or PROJECT for f in report.findings}
    names.update(m.module for m in report.modules)
    names.update(report.file_modules.values())
    if report.stress is not None:
        names.update(m.module for m in report.stress.modules)
    return sorted(n for n in names if n)


def _module_cases(suite: _Suite, report: Report, module: str, findings: list[Finding],
                  stress: ModuleStress | None, verdict: ModuleVerdict | None,
                  has_sources: bool) -> None:
    static = [f for f in findings if f.evidence != "dynamic"]
    dynamic = [f for f in findings if f.evidence == "dynamic"]
    declaration = [f for f in static if f.category == _DECLARATION]
    has_sources = has_sources or bool(static)
    if module != PROJECT or declaration:
        el = suite.findings_case(module, "declaration", declaration)
        if not has_sources:
            suite.skip(el, "no source file of this module was analysed")
    by_category: dict[str, list[Finding]] = {}
    for f in static:
        if f.category != _DECLARATION:
            by_category.setdefault(f.category, []).append(f)
    for category in sorted(by_category):
        suite.findings_case(module, f"static: {category}", by_category[category])
    if not by_category and module != PROJECT:
        el = suite.case(module, "static analysis")
        if not has_sources:
            suite.skip(el, "no source file of this module was analysed")
    if stress is not None or dynamic or (report.stress is not None and module != PROJECT):
        seconds = stress.seconds if stress is not None else 0.0
        el = suite.findings_case(module, "stress", dynamic, seconds=seconds)
        if stress is None:
            if not dynamic:
                suite.skip(el, "not stressed")
        elif stress.verdict == "problems" and not dynamic:
            fail = ET.SubElement(el, "failure", {"message": _short(stress.reason),
                                                 "type": "stress"})
            fail.text = _x(stress.reason) + "\n"
            suite.failures += 1
        elif stress.verdict in ("not exercised", "could not run") and not dynamic:
            suite.skip(el, f"{stress.verdict}: {stress.reason}")
    if verdict is not None:
        el = suite.case(module, "verdict")
        text = (f"{verdict.verdict}: {verdict.reason} ({verdict.errors} error(s), "
                f"{verdict.warnings} warning(s), {verdict.info} info)")
        if verdict.verdict in _FAILING_VERDICTS:
            fail = ET.SubElement(el, "failure", {"message": _short(text),
                                                 "type": verdict.verdict})
            fail.text = _x(text) + "\n"
            suite.failures += 1
        elif verdict.verdict != "ready":
            suite.skip(el, text)


def render_junit(report: Report, book: RuleBook) -> str:
    del book  # the findings carry their rule's text already
    suite = _Suite()
    by_module: dict[str, list[Finding]] = {}
    for f in report.findings:
        by_module.setdefault(f.module or PROJECT, []).append(f)
    stresses = {m.module: m for m in report.stress.modules} if report.stress else {}
    verdicts = {m.module: m for m in report.modules}
    sourced = set(report.file_modules.values()) | {m.module for m in report.modules if m.files}
    for module in _modules(report):
        _module_cases(suite, report, module, by_module.get(module, []), stresses.get(module),
                      verdicts.get(module), module in sourced)

    tests, failures, skipped = len(suite.cases), suite.failures, suite.skipped
    seconds = f"{max(report.seconds, 0.0):.3f}"
    root = ET.Element("testsuites", {"name": "gilaudit", "tests": str(tests),
                                     "failures": str(failures), "errors": "0",
                                     "skipped": str(skipped), "time": seconds})
    attrs = {"name": "gilaudit", "tests": str(tests), "failures": str(failures), "errors": "0",
             "skipped": str(skipped), "time": seconds}
    if report.generated:
        attrs["timestamp"] = _x(report.generated)
    el = ET.SubElement(root, "testsuite", attrs)
    tool = report.tool or {}
    values = [("gilaudit.version", tool.get("version")),
              ("gilaudit.rules_version", tool.get("rules_version")),
              ("targets", " ".join(report.targets)),
              ("fail_on", report.options.get("fail_on"))]
    if report.stress is not None:
        interp = report.stress.interpreter
        values += [("interpreter", interp.get("executable")),
                   ("interpreter.version", interp.get("version")),
                   ("interpreter.free_threaded", interp.get("free_threaded"))]
    if report.baseline is not None:
        values.append(("baseline", report.baseline.get("path")))
    values = [(name, value) for name, value in values if value is not None and value != ""]
    if values:
        props = ET.SubElement(el, "properties")
        for name, value in values:
            ET.SubElement(props, "property", {"name": name, "value": _x(value)})
    el.extend(suite.cases)
    if report.diagnostics:
        lines = []
        for d in sorted(report.diagnostics,
                        key=lambda d: (d.path or "", d.line or 0, d.kind, d.message)):
            at = f"{d.path}:{d.line}" if d.path and d.line else (d.path or "-")
            lines.append(f"{at}: {d.kind}: {d.message}")
        ET.SubElement(el, "system-err").text = _x("\n".join(lines)) + "\n"
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"
