"""The JUnit XML writer: well-formed whatever the findings hold, and the counts add up."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gilaudit.cli import main
from gilaudit.language import language_of
from gilaudit.model import (
    Diagnostic,
    Finding,
    Location,
    ModuleStress,
    ModuleVerdict,
    Note,
    Report,
    StressSummary,
)
from gilaudit.report.junit_report import render_junit
from gilaudit.rulebook import RuleBook, load_rulebook

REPO = Path(__file__).resolve().parents[1]
HOSTILE = ('<script>alert("x")</script> ]]> &amp; \'q\' "dq" \x00\x07\x1b[31m\x0b\x0c\x1f '
           '\ud800\udfff \ufffe\uffff 🐍 é\r\n\ttab' + "A" * 3000)
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@pytest.fixture(scope="module")
def book() -> RuleBook:
    return load_rulebook()


def _finding(rule: str, book: RuleBook, **kw: Any) -> Finding:
    r = book.rules[rule]
    base: dict[str, Any] = {"rule": r.id, "name": r.name, "category": r.category,
                            "severity": r.severity, "message": f"{r.title} here",
                            "location": None, "fix": r.fix, "fingerprint": f"fp-{rule}"}
    base.update(kw)
    loc = base["location"]
    base.setdefault("language", language_of(r.language, loc.path if loc else None))
    return Finding(**base)


def _stress(module: str, verdict: str, reason: str = "why") -> ModuleStress:
    return ModuleStress(module=module, verdict=verdict, reason=reason, imported="ok",
                        gil_reenabled=False, seconds=1.25)


def sample_report(book: RuleBook) -> Report:
    findings = (
        _finding("FT010", book, location=Location(path="src/lru.c", line=19, column=23),
                 code="PyObject *k = PyList_GET_ITEM(self->items, i);", module="pkg._fast",
                 baseline="new", notes=(Note(message="shared list",
                                             location=Location(path="src/lru.c", line=5)),)),
        _finding("FT012", book, location=Location(path="src/_fast.c", line=21, column=19),
                 module="pkg._fast", confirmed=True, baseline="known"),
        _finding("FT001", book, location=Location(path="src/_fast.c", line=222, column=15),
                 module="pkg._fast"),
        _finding("FT005", book, location=Location(path="src/other.c", line=9),
                 module="pkg._other"),
        _finding("FT202", book, module="pkg._fast", callable="Cache.get", evidence="dynamic",
                 reproducer="repro/crash_1.py"),
        _finding("FT204", book, module="pkg._mapped", callable="add", evidence="dynamic"),
        _finding("FT203", book, module="pkg._nowhere", evidence="dynamic"),
        _finding("FT130", book, location=Location(path="pyproject.toml", line=3)),
    )
    return Report(
        tool={"name": "gilaudit", "version": "0.1.0", "rules_version": book.version},
        targets=("proj",), findings=findings,
        diagnostics=(Diagnostic(path="src/bad.c", kind="parse-error", message="oops", line=4),
                     Diagnostic(path=None, kind="internal-error", message="boom")),
        files={"src/lru.c": "parsed"}, seconds=2.5, options={"fail_on": "error"},
        stress=StressSummary(
            interpreter={"executable": "/usr/bin/python3.14t", "version": "3.14.0",
                         "free_threaded": True},
            settings={}, modules=(_stress("pkg._fast", "problems"),
                                  _stress("pkg._mapped", "clean"),
                                  _stress("pkg._other", "not exercised", "nothing to drive"),
                                  _stress("pkg._nowhere", "could not run", "it hung"))),
        file_modules={"src/lru.c": "pkg._fast", "src/_fast.c": "pkg._fast",
                      "src/other.c": "pkg._other", "src/mapped.c": "pkg._mapped"},
        modules=(
            ModuleVerdict(module="pkg._fast", verdict="not ready", reason="errors",
                          declared=False, errors=3),
            ModuleVerdict(module="pkg._mapped", verdict="ready", reason="ok", declared=True),
            ModuleVerdict(module="pkg._other", verdict="not exercised", reason="-",
                          declared=None),
            ModuleVerdict(module="pkg._nowhere", verdict="unknown", reason="?", declared=None),
        ),
        generated="2025-01-02T03:04:05Z",
    )


def _parse(text: str) -> ET.Element:
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    assert not _ILLEGAL.search(text)
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == "testsuites"
    return root


def _outcome(case: ET.Element) -> str:
    kinds = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
    assert len(kinds) <= 1
    return kinds[0] if kinds else "passed"


def _cases(root: ET.Element) -> dict[tuple[str, str], ET.Element]:
    cases = {}
    for case in root.iter("testcase"):
        key = (case.get("classname", ""), case.get("name", ""))
        assert key not in cases, key
        cases[key] = case
    return cases


def _check_structure(root: ET.Element) -> None:
    """The common JUnit XSD conventions, and counts that add up."""
    suites = list(root)
    assert [s.tag for s in suites] == ["testsuite"]
    suite = suites[0]
    assert suite.get("name") == "gilaudit"
    order = {"properties": 0, "testcase": 1, "system-out": 2, "system-err": 3}
    tags = [order[c.tag] for c in suite]
    assert tags == sorted(tags)
    cases = list(suite.iter("testcase"))
    outcomes = [_outcome(c) for c in cases]
    for el in (root, suite):
        assert int(el.get("tests", "-1")) == len(cases)
        assert int(el.get("failures", "-1")) == outcomes.count("failure")
        assert int(el.get("errors", "-1")) == outcomes.count("error") == 0
        assert int(el.get("skipped", "-1")) == outcomes.count("skipped")
        assert float(el.get("time", "x")) >= 0
    for case in cases:
        assert case.get("classname") and case.get("name")
        assert float(case.get("time", "x")) >= 0
        child = [order.get(c.tag, 0) for c in case if c.tag in ("system-out", "system-err")]
        assert child == sorted(child)
        for fail in case.findall("failure"):
            assert fail.get("message") and fail.get("type")
            assert len(fail.get("message", "")) <= 240


def test_sample_report_cases(book: RuleBook) -> None:
    root = _parse(render_junit(sample_report(book), book))
    _check_structure(root)
    outcomes = {k: _outcome(c) for k, c in _cases(root).items()}
    assert outcomes == {
        ("(project)", "static: packaging"): "failure",
        ("pkg._fast", "declaration"): "failure",
        ("pkg._fast", "static: borrowed-reference"): "failure",
        ("pkg._fast", "stress"): "failure",
        ("pkg._fast", "verdict"): "failure",
        ("pkg._mapped", "declaration"): "passed",
        ("pkg._mapped", "static analysis"): "passed",
        ("pkg._mapped", "stress"): "failure",  # clean, but a dynamic finding says otherwise
        ("pkg._mapped", "verdict"): "passed",
        ("pkg._nowhere", "declaration"): "skipped",  # none of its sources was analysed
        ("pkg._nowhere", "static analysis"): "skipped",
        ("pkg._nowhere", "stress"): "failure",
        ("pkg._nowhere", "verdict"): "skipped",
        ("pkg._other", "declaration"): "passed",  # an info finding only
        ("pkg._other", "static analysis"): "passed",
        ("pkg._other", "stress"): "skipped",
        ("pkg._other", "verdict"): "skipped",
    }
    suite = root[0]
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("17", "7", "5")
    assert suite.get("timestamp") == "2025-01-02T03:04:05Z"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["gilaudit.rules_version"] == book.version
    assert props["interpreter.version"] == "3.14.0"
    err = suite.find("system-err")
    assert err is not None and err.text is not None
    assert err.text.splitlines() == ["-: internal-error: boom", "src/bad.c:4: parse-error: oops"]


def test_failures_carry_the_findings(book: RuleBook) -> None:
    cases = _cases(_parse(render_junit(sample_report(book), book)))
    borrowed = cases[("pkg._fast", "static: borrowed-reference")]
    fail = borrowed.find("failure")
    assert fail is not None and fail.text is not None
    assert fail.get("type") == "FT010"
    assert fail.get("message") == f"{book.rules['FT010'].title} here"
    lines = fail.text.splitlines()
    assert lines[0].startswith("src/lru.c:19:23: error: ") and lines[0].endswith("[FT010]")
    assert "    PyObject *k = PyList_GET_ITEM(self->items, i);" in lines
    assert "    note: src/lru.c:5: shared list" in lines
    assert any(line.startswith("    fix: ") for line in lines)
    # The finding already in the baseline does not fail the case; it is listed.
    out = borrowed.find("system-out")
    assert out is not None and out.text is not None
    assert "src/_fast.c:21:19: error:" in out.text and "in baseline" in out.text
    stress = cases[("pkg._fast", "stress")]
    assert stress.get("time") == "1.250"
    fail = stress.find("failure")
    assert fail is not None and fail.text is not None and fail.get("type") == "FT202"
    assert fail.text.startswith("pkg._fast.Cache.get: error: ")
    assert "    reproduce: repro/crash_1.py" in fail.text.splitlines()
    verdict = cases[("pkg._fast", "verdict")].find("failure")
    assert verdict is not None and verdict.get("type") == "not ready"
    skipped = cases[("pkg._other", "stress")].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "not exercised: nothing to drive"
    info = cases[("pkg._other", "declaration")].find("system-out")
    assert info is not None and info.text is not None and "[FT005]" in info.text


def test_every_verdict(book: RuleBook) -> None:
    expected = {"ready": "passed", "declared but hazards": "failure", "not ready": "failure",
                "not declared": "failure", "not exercised": "skipped", "unknown": "skipped"}
    verdicts = tuple(ModuleVerdict(module=f"m{i}", verdict=v, reason=v, declared=None)
                     for i, v in enumerate(expected))
    stresses = (_stress("m0", "clean"), _stress("m1", "problems", "2 crash"))
    report = Report(tool={}, targets=(), findings=(), diagnostics=(), modules=verdicts,
                    stress=StressSummary(interpreter={}, settings={}, modules=stresses))
    root = _parse(render_junit(report, book))
    _check_structure(root)
    cases = _cases(root)
    for i, verdict in enumerate(expected):
        assert _outcome(cases[(f"m{i}", "verdict")]) == expected[verdict]
    assert _outcome(cases[("m0", "stress")]) == "passed"
    problems = cases[("m1", "stress")].find("failure")
    assert problems is not None and problems.get("message") == "2 crash"
    not_stressed = cases[("m2", "stress")].find("skipped")
    assert not_stressed is not None and not_stressed.get("message") == "not stressed"
    # No stress phase at all: no stress cases.
    root = _parse(render_junit(replace(report, stress=None), book))
    assert not any(name == "stress" for _m, name in _cases(root))


def test_spamcache_scan(tmp_path: Path, book: RuleBook,
                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    main(["scan", str(REPO / "examples" / "spamcache"), "--format", "json", "-o", str(out),
          "--no-cache", "--jobs", "1", "--no-progress"])
    capsys.readouterr()
    data = json.loads(out.read_text())
    findings = tuple(Finding.from_dict(f) for f in data["findings"])
    report = Report(tool=data["tool"], targets=tuple(data["targets"]), findings=findings,
                    diagnostics=(), files=data["files"], options=data["options"])
    root = _parse(render_junit(report, book))
    _check_structure(root)
    cases = _cases(root)
    assert ("spamcache._spam", "declaration") in cases
    failing_text = "".join(f.text or "" for f in root.iter("failure"))
    for f in findings:  # every error and warning is carried by some failure
        assert f.location is not None
        assert f"{f.location.path}:{f.location.line}:{f.location.column}: " in failing_text
    categories = {f.category for f in findings} - {"module-declaration"}
    assert {n for m, n in cases if n.startswith("static: ")} == {
        f"static: {c}" for c in categories}


def test_hostile_strings(book: RuleBook) -> None:
    hostile = replace(_finding("FT010", book, message=HOSTILE, code=HOSTILE, fix=HOSTILE,
                               module=HOSTILE, callable=HOSTILE, category=HOSTILE,
                               reproducer=HOSTILE, location=Location(path=HOSTILE, line=1),
                               notes=(Note(message=HOSTILE, location=None),)), rule=HOSTILE)
    dynamic = replace(hostile, evidence="dynamic", location=None)
    report = Report(tool={"version": HOSTILE, "rules_version": HOSTILE}, targets=(HOSTILE,),
                    findings=(hostile, dynamic),
                    diagnostics=(Diagnostic(path=HOSTILE, kind=HOSTILE, message=HOSTILE),),
                    modules=(ModuleVerdict(module=HOSTILE, verdict=HOSTILE, reason=HOSTILE,
                                           declared=None),),
                    stress=StressSummary(interpreter={"executable": HOSTILE}, settings={},
                                         modules=(_stress(HOSTILE, "problems", HOSTILE),)),
                    generated=HOSTILE, options={"fail_on": HOSTILE})
    text = render_junit(report, book)
    text.encode("utf-8")
    root = _parse(text)
    _check_structure(root)
    cleaned = _ILLEGAL.sub("", HOSTILE)
    fail = root.find(".//failure")
    assert fail is not None and fail.text is not None
    assert cleaned.replace("\r\n", "\n").split("\n")[0] in fail.text.replace("\r\n", "\n")
    assert '<script>alert("x")</script> ]]>' in (fail.get("message") or "")
    assert all(case.get("classname") == cleaned for case in root.iter("testcase"))


def test_empty_report(book: RuleBook) -> None:
    report = Report(tool={}, targets=(), findings=(), diagnostics=())
    root = _parse(render_junit(report, book))
    _check_structure(root)
    assert root.get("tests") == "0"
    assert root[0].find("system-err") is None


def test_deterministic(book: RuleBook) -> None:
    report = sample_report(book)
    text = render_junit(report, book)
    assert render_junit(report, book) == text
    shuffled = replace(report, findings=tuple(reversed(report.findings)),
                       modules=tuple(reversed(report.modules)),
                       diagnostics=tuple(reversed(report.diagnostics)),
                       file_modules=dict(reversed(list(report.file_modules.items()))))
    assert render_junit(shuffled, book) == text
