"""The SARIF 2.1.0 writer: valid against the official schema, whatever the findings hold."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gilaudit.cli import main
from gilaudit.language import language_of
from gilaudit.model import (
    Diagnostic,
    Driven,
    Finding,
    Location,
    ModuleStress,
    ModuleVerdict,
    Note,
    Report,
    StressSummary,
    Undriven,
)
from gilaudit.report.sarif_report import FINGERPRINT_KEY, render_sarif
from gilaudit.rulebook import RuleBook, load_rulebook

REPO = Path(__file__).resolve().parents[1]
SCHEMA = Path(__file__).resolve().parents[2] / "shared" / "schemas" / "sarif-schema-2.1.0.json"
HOSTILE = ('<script>alert("x")</script> | `rm -rf` *b* _i_ [a](javascript:x) @team $x$ '
           '\x00\x07\x1b[31m\x0b\x0c \ud800 \u202e\ufffe 🐍 é\r\n| injected | row |\n'
           + "A" * 3000)


@pytest.fixture(scope="module")
def book() -> RuleBook:
    return load_rulebook()


@pytest.fixture(scope="module")
def validate() -> Any:
    if not SCHEMA.is_file():
        pytest.skip(f"the SARIF 2.1.0 schema is not at {SCHEMA}: cannot validate")
    import jsonschema  # type: ignore[import-untyped]  # noqa: PLC0415

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)

    def check(text: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(text)
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        assert not errors, "\n".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:10])
        _check_formats(doc)
        base = doc["runs"][0].get("originalUriBaseIds", {}).get("%SRCROOT%")
        if base is not None:
            assert base["uri"].startswith("file:///") and base["uri"].endswith("/")
        return doc

    return check


_URI_CHARS = re.compile(r"^(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$")
_DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$")


def _check_formats(node: Any, where: str = "") -> None:
    """What jsonschema's format checker skips without extra packages: uri and date-time."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("uri", "helpUri", "informationUri", "$schema"):
                assert isinstance(value, str) and _URI_CHARS.match(value), f"{where}/{key}"
                if key != "uri":
                    assert re.match(r"^[a-z][a-z0-9+.-]*:", value), f"{where}/{key}"
            elif key.endswith("TimeUtc"):
                assert _DATE_TIME.match(value), f"{where}/{key}"
            _check_formats(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _check_formats(value, f"{where}/{i}")


def _finding(rule: str, book: RuleBook, **kw: Any) -> Finding:
    r = book.rules[rule]
    base: dict[str, Any] = {"rule": r.id, "name": r.name, "category": r.category,
                            "severity": r.severity, "message": f"{r.title} here",
                            "location": None, "fix": r.fix, "fingerprint": f"fp-{rule}"}
    base.update(kw)
    loc = base["location"]
    base.setdefault("language", language_of(r.language, loc.path if loc else None))
    return Finding(**base)


def sample_report(book: RuleBook) -> Report:
    """Every kind of finding, verdict and stress outcome."""
    findings = (
        _finding("FT010", book, location=Location(path="src/lru.c", line=19, column=23,
                                                  end_line=19, end_column=40),
                 code="PyObject *k = PyList_GET_ITEM(self->items, i);", module="pkg._fast",
                 function="lru_index", symbol="PyList_GET_ITEM", baseline="new",
                 notes=(Note(message="the list is shared",
                             location=Location(path="src/lru.c", line=5)),
                        Note(message="no location for this one"))),
        _finding("FT012", book, location=Location(path="src/_fast.c", line=21, column=19),
                 module="pkg._fast", confirmed=True, baseline="known"),
        _finding("FT001", book, location=Location(path="src/_fast.c", line=222, column=15),
                 module="pkg._fast"),
        _finding("FT005", book, location=Location(path="src/other.c", line=9), severity="info",
                 module="pkg._other"),
        _finding("FT202", book, module="pkg._fast", callable="Cache.get", evidence="dynamic",
                 reproducer="repro/crash_1.py", notes=(Note(message="Fatal Python error\n#0"),),
                 fingerprint="dyn-1"),
        _finding("FT204", book, module="pkg._mapped", callable="add", evidence="dynamic",
                 fingerprint="dyn-2"),
        _finding("FT203", book, module="pkg._nowhere", evidence="dynamic", fingerprint="dyn-3"),
        _finding("FT130", book, location=Location(path="pyproject.toml", line=3)),
    )
    stress = StressSummary(
        interpreter={"executable": "/usr/bin/python3.14t", "version": "3.14.0",
                     "free_threaded": True, "free_threaded_build": True, "gil_enabled": False},
        settings={"threads": 8, "iterations": 200, "trials": 3, "seed": 1},
        caveat="",
        modules=(
            ModuleStress(module="pkg._fast", verdict="problems", reason="1 crash",
                         imported="ok", gil_reenabled=False,
                         driven=(Driven(name="Cache.get", kind="method", call="o.get(1)",
                                        setup="pkg._fast.Cache()", signature="probed",
                                        threads=8, iterations=200, trials=3, calls=4800),),
                         undriven=(Undriven(name="shutdown", reason="name", skipped=True),),
                         calls=4800, seconds=1.5, children=2),
            ModuleStress(module="pkg._mapped", verdict="clean", reason="ok", imported="ok",
                         gil_reenabled=False),
            ModuleStress(module="pkg._other", verdict="not exercised", reason="nothing",
                         imported="ok", gil_reenabled=None),
            ModuleStress(module="pkg._nowhere", verdict="could not run", reason="hung",
                         imported="hung", gil_reenabled=None),
        ),
    )
    return Report(
        tool={"name": "gilaudit", "version": "0.1.0", "rules_version": book.version},
        targets=("proj",),
        findings=findings,
        diagnostics=(Diagnostic(path="src/bad.c", kind="parse-error", message="oops", line=4),
                     Diagnostic(path=None, kind="internal-error", message="boom")),
        files={"src/lru.c": "parsed", "src/_fast.c": "parsed", "src/fastmod.c": "parsed",
               "src/other.c": "parsed", "src/mapped_impl.c": "parsed",
               "pyproject.toml": "parsed", "sub/setup.py": "parsed",
               "src/bad.c": "failed: parse error"},
        lines_analysed=1234, seconds=2.5, options={"fail_on": "error"}, stress=stress,
        file_modules={"src/lru.c": "pkg._fast", "src/_fast.c": "pkg._fast",
                      "src/fastmod.c": "pkg._fast", "src/other.c": "pkg._other",
                      "src/mapped_impl.c": "pkg._mapped", "include/mapped.h": "pkg._mapped"},
        modules=(
            ModuleVerdict(module="pkg._fast", verdict="not ready", reason="errors",
                          declared=False, files=("src/_fast.c",), errors=3, stress="problems"),
            ModuleVerdict(module="pkg._mapped", verdict="ready", reason="ok", declared=True),
            ModuleVerdict(module="pkg._other", verdict="not exercised", reason="-",
                          declared=None),
            ModuleVerdict(module="pkg._nowhere", verdict="unknown", reason="?", declared=None),
        ),
        generated="2025-01-02T03:04:05Z",
        baseline={"path": "baseline.json", "known": 1, "new": 1},
    )


def _run(doc: dict[str, Any]) -> dict[str, Any]:
    runs = doc["runs"]
    assert len(runs) == 1
    run: dict[str, Any] = runs[0]
    return run


def _result(run: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [r for r in run["results"]
                                   if r["partialFingerprints"][FINGERPRINT_KEY] == fingerprint]
    assert len(found) == 1
    return found[0]


def test_spamcache_scan_is_valid_sarif(tmp_path: Path, book: RuleBook, validate: Any,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    main(["scan", str(REPO / "examples" / "spamcache"), "--format", "json", "-o", str(out),
          "--no-cache", "--jobs", "1", "--no-progress"])
    capsys.readouterr()
    data = json.loads(out.read_text())
    findings = tuple(Finding.from_dict(f) for f in data["findings"])
    report = Report(tool=data["tool"], targets=tuple(data["targets"]), findings=findings,
                    diagnostics=tuple(Diagnostic.from_dict(d) for d in data["diagnostics"]),
                    files=data["files"], options=data["options"],
                    file_modules=data.get("file_modules") or {})
    run = _run(validate(render_sarif(report, book)))
    assert len(run["results"]) == len(findings) > 0
    driver = run["tool"]["driver"]
    ids = [r["id"] for r in driver["rules"]]
    assert ids == sorted({f.rule for f in findings})
    for res in run["results"]:
        assert ids[res["ruleIndex"]] == res["ruleId"]
        loc = res["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        assert loc["artifactLocation"]["uri"].startswith("src/")
        assert loc["region"]["startLine"] >= 1
        assert res["partialFingerprints"][FINGERPRINT_KEY]
    root = run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    assert root.startswith("file:///") and root.endswith("/examples/spamcache/")
    ft001 = driver["rules"][ids.index("FT001")]
    assert ft001["helpUri"].startswith("https://")
    assert "Py_mod_gil" in ft001["help"]["markdown"]
    assert ft001["properties"]["category"] == "module-declaration"
    assert ft001["properties"]["language"] == "c"
    assert {"module-declaration", "c"} <= set(ft001["properties"]["tags"])


def test_category_and_language_of_an_old_report(book: RuleBook, validate: Any) -> None:
    """Findings saved before `language` existed get it on load, and the SARIF stays valid."""
    old = [{"rule": "FT090", "name": "cython-missing-ft-directive",
            "category": "module-declaration", "severity": "error", "path": "pkg/fast.pyx",
            "line": 1, "message": "no directive", "fingerprint": "fp-old-1"},
           {"rule": "FT110", "name": "pybind11-missing-mod-gil-not-used",
            "category": "bindings", "severity": "error", "path": "src/bind.cpp", "line": 4,
            "message": "no tag", "fingerprint": "fp-old-2"},
           {"rule": "FT202", "name": "interpreter-crash", "category": "crash",
            "severity": "error", "path": None, "line": None, "message": "boom",
            "module": "pkg.fast", "callable": "f", "evidence": "dynamic",
            "fingerprint": "fp-old-3"}]
    findings = tuple(Finding.from_dict(d) for d in old)
    assert [f.language for f in findings] == ["cython", "c++", "python"]
    assert [f.fingerprint for f in findings] == ["fp-old-1", "fp-old-2", "fp-old-3"]
    report = Report(tool={}, targets=("pkg",), findings=findings, diagnostics=())
    run = _run(validate(render_sarif(report, book)))
    rules = {r["id"]: r["properties"] for r in run["tool"]["driver"]["rules"]}
    assert rules["FT090"]["category"] == "module-declaration"
    assert rules["FT090"]["language"] == "cython"
    assert {"module-declaration", "cython"} <= set(rules["FT090"]["tags"])
    assert {"crash", "python", "dynamic"} <= set(rules["FT202"]["tags"])
    results = {r["ruleId"]: r["properties"] for r in run["results"]}
    assert results["FT110"]["language"] == "c++"
    # The retired front-end category is replaced by the rule's hazard.
    assert results["FT110"]["category"] == rules["FT110"]["category"] == "module-declaration"


def test_sample_report_is_valid_and_complete(book: RuleBook, validate: Any) -> None:
    report = sample_report(book)
    run = _run(validate(render_sarif(report, book)))
    assert run["columnKind"] == "unicodeCodePoints"
    assert len(run["results"]) == len(report.findings)
    first = _result(run, "fp-FT010")
    region = first["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 19, "startColumn": 23, "endLine": 19, "endColumn": 40}
    context = first["locations"][0]["physicalLocation"]["contextRegion"]
    assert context["snippet"]["text"].startswith("PyObject *k")
    assert (context["startLine"], context["endLine"]) == (19, 19)
    assert first["relatedLocations"] == [{
        "id": 1, "message": {"text": "the list is shared"},
        "physicalLocation": {"artifactLocation": {"uri": "src/lru.c", "uriBaseId": "%SRCROOT%"},
                             "region": {"startLine": 5, "startColumn": 1}}}]
    assert first["properties"]["notes"] == ["no location for this one"]
    assert first["baselineState"] == "new"
    assert {"name": "lru_index", "kind": "function"} in first["locations"][0]["logicalLocations"]
    known = _result(run, "fp-FT012")
    assert known["baselineState"] == "unchanged"
    assert known["properties"]["confirmed"] is True
    assert "baselineState" not in _result(run, "fp-FT001")
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is True
    notes = invocation["toolExecutionNotifications"]
    assert [n["descriptor"]["id"] for n in notes] == ["internal-error", "parse-error"]
    assert notes[1]["locations"][0]["physicalLocation"]["region"] == {"startLine": 4}
    assert invocation["endTimeUtc"] == "2025-01-02T03:04:05Z"
    assert run["properties"]["baseline"]["known"] == 1


def test_levels_and_rule_metadata(book: RuleBook, validate: Any) -> None:
    run = _run(validate(render_sarif(sample_report(book), book)))
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels["FT010"] == "error"
    assert levels["FT005"] == "note"  # info
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    for rule_id, desc in rules.items():
        rule = book.rules[rule_id]
        expected = {"error": "error", "warning": "warning", "info": "note"}[rule.severity]
        assert desc["defaultConfiguration"]["level"] == expected
        assert desc["properties"]["problem.severity"] == {
            "error": "error", "warning": "warning", "info": "recommendation"}[rule.severity]
        assert desc["shortDescription"]["text"] == rule.title
        assert desc["name"] == rule.name
        assert desc["help"]["text"] and desc["help"]["markdown"]
        assert rule.fix in desc["help"]["text"]
    assert any(r["level"] == "warning" for r in run["results"])
    assert rules["FT202"]["properties"]["precision"] == "very-high"
    assert "FT999" not in rules


def test_dynamic_findings_attach_to_init_file_or_manifest(book: RuleBook,
                                                         validate: Any) -> None:
    report = sample_report(book)
    run = _run(validate(render_sarif(report, book)))
    # A module-declaration finding of the module marks its init file, and its line.
    crash = _result(run, "dyn-1")
    loc = crash["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "src/_fast.c", "uriBaseId": "%SRCROOT%"}
    assert loc["region"]["startLine"] == 222
    assert crash["properties"]["locationKind"] == "module-init"
    assert crash["properties"]["reproducer"] == "repro/crash_1.py"
    assert crash["properties"]["callable"] == "Cache.get"
    assert crash["properties"]["evidence"] == "dynamic"
    assert crash["properties"]["notes"] == ["Fatal Python error\n#0"]
    assert crash["message"]["text"].endswith(
        " (found by the stress phase, no source location: reported on src/_fast.c, the init "
        "file of module pkg._fast)")
    assert {"fullyQualifiedName": "pkg._fast.Cache.get", "kind": "function"} in \
        crash["locations"][0]["logicalLocations"]
    # Otherwise a mapped source file (not the header), at line 1 (GitHub wants a region).
    mapped = _result(run, "dyn-2")["locations"][0]["physicalLocation"]
    assert mapped == {"artifactLocation": {"uri": "src/mapped_impl.c", "uriBaseId": "%SRCROOT%"},
                      "region": {"startLine": 1}}
    # No file at all: the shallowest manifest.
    nowhere = _result(run, "dyn-3")
    assert nowhere["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "pyproject.toml", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 1}}
    assert nowhere["properties"]["locationKind"] == "manifest"
    assert nowhere["message"]["text"].endswith(
        "reported on pyproject.toml, the project manifest)")


def test_init_file_prefers_the_module_named_file(book: RuleBook, validate: Any) -> None:
    dyn = _finding("FT204", book, module="pkg._spam", callable="f", evidence="dynamic")
    report = Report(tool={}, targets=("a", "b"), findings=(dyn,), diagnostics=(),
                    file_modules={"a/src/aaa.c": "pkg._spam", "a/src/zz/spam.c": "pkg._spam",
                                  "a/src/spam.h": "pkg._spam"},
                    files={"b/setup.py": "parsed"})
    run = _run(validate(render_sarif(report, book)))
    loc = run["results"][0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "a/src/zz/spam.c"
    assert "originalUriBaseIds" not in run  # two targets: no single root to name
    # Without a mapped file: a manifest among the files, else "pyproject.toml".
    run = _run(validate(render_sarif(replace(report, file_modules={}), book)))
    assert run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] \
        == "b/setup.py"
    run = _run(validate(render_sarif(replace(report, file_modules={}, files={}), book)))
    assert run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] \
        == "pyproject.toml"
    no_module = replace(dyn, module=None)
    run = _run(validate(render_sarif(replace(report, findings=(no_module,)), book)))
    assert run["results"][0]["properties"]["locationKind"] == "manifest"


def test_hostile_strings(book: RuleBook, validate: Any) -> None:
    path = 'src/we ird%20#?<x>"\ud800é.c'
    hostile = _finding("FT010", book, message=HOSTILE, code=HOSTILE, symbol=HOSTILE,
                       fix=HOSTILE, module=HOSTILE, callable=HOSTILE, function=HOSTILE,
                       reproducer=HOSTILE, fingerprint="",
                       location=Location(path=path, line=0, column=-3, end_line=-1,
                                         end_column=0),
                       notes=(Note(message=HOSTILE, location=Location(path=HOSTILE, line=2)),))
    backwards = _finding("FT012", book, location=Location(path="/abs/x.c", line=10, column=8,
                                                          end_line=10, end_column=2))
    multi = _finding("FT013", book, location=Location(path="m.c", line=3, end_line=5,
                                                      end_column=2), code="x = y;")
    unknown = Finding(rule="XX999", name="", category=HOSTILE, language="c", severity="warning",
                      message="", location=Location(path="C:\\win\\x.c", line=1))
    report = Report(tool={"version": HOSTILE}, targets=(HOSTILE,),
                    findings=(hostile, backwards, multi, unknown),
                    diagnostics=(Diagnostic(path=HOSTILE, kind=HOSTILE, message=HOSTILE,
                                            line=-5),),
                    files={HOSTILE: "parsed"}, options={"weird": HOSTILE, "obj": object()},
                    generated=HOSTILE, file_modules={HOSTILE: HOSTILE})
    text = render_sarif(report, book)
    text.encode("utf-8")  # no lone surrogate survives
    run = _run(validate(text))
    by_rule = {r["ruleId"]: r for r in run["results"]}
    art = by_rule["FT010"]["locations"][0]["physicalLocation"]
    assert art["artifactLocation"]["uri"] == "src/we%20ird%2520%23%3F%3Cx%3E%22%EF%BF%BD%C3%A9.c"
    assert "region" not in art  # line 0 is no line
    assert by_rule["FT010"]["partialFingerprints"][FINGERPRINT_KEY]  # computed
    assert by_rule["FT010"]["message"]["text"].startswith('<script>alert("x")</script>')
    region = by_rule["FT012"]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 10, "startColumn": 8, "endLine": 10}
    assert by_rule["FT013"]["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "m.c", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 3, "startColumn": 1, "endLine": 5, "endColumn": 2}}
    assert by_rule["FT012"]["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "file:///abs/x.c"}
    assert by_rule["XX999"]["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "file:///C:/win/x.c"}
    assert "semanticVersion" not in run["tool"]["driver"]
    assert "endTimeUtc" not in run["invocations"][0]


def test_empty_report(book: RuleBook, validate: Any) -> None:
    report = Report(tool={}, targets=(), findings=(), diagnostics=())
    run = _run(validate(render_sarif(report, book)))
    assert run["results"] == []
    assert run["tool"]["driver"]["rules"] == []
    assert run["tool"]["driver"]["name"] == "gilaudit"
    assert run["invocations"][0]["toolExecutionNotifications"] == []


def test_deterministic_and_fingerprints_stable(book: RuleBook) -> None:
    report = sample_report(book)
    first = render_sarif(report, book)
    shuffled = replace(report, findings=tuple(reversed(report.findings)),
                       diagnostics=tuple(reversed(report.diagnostics)))
    assert render_sarif(shuffled, book) == first
    assert render_sarif(report, book) == first
    # Moving code changes the line, never the fingerprint; a computed one is stable too.
    moved = replace(report, findings=tuple(
        replace(f, location=replace(f.location, line=f.location.line + 7),
                fingerprint="" if f.rule == "FT001" else f.fingerprint)
        if f.location else f for f in report.findings))
    prints = [r["partialFingerprints"] for r in _run(json.loads(first))["results"]]
    moved_run = _run(json.loads(render_sarif(moved, book)))
    moved_prints = [r["partialFingerprints"] for r in moved_run["results"]]
    assert sorted(p[FINGERPRINT_KEY] for p in prints if p[FINGERPRINT_KEY] != "fp-FT001") == \
        sorted(p[FINGERPRINT_KEY] for p in moved_prints if len(p[FINGERPRINT_KEY]) < 32)
    computed = [p for p in moved_prints if len(p[FINGERPRINT_KEY]) == 32]
    assert len(computed) == 1
    assert render_sarif(moved, book) == render_sarif(moved, book)
