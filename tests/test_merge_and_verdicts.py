"""One verdict per module, merged runs, confirmation marks, baselines, and bad results files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import validate_report
from fixtures.dynamic.build import FIXTURES, build_extension
from gilaudit.cli import main
from gilaudit.language import language_of
from gilaudit.model import (
    Driven,
    Finding,
    Location,
    ModuleStress,
    Report,
    StressSummary,
)
from gilaudit.report import merge as m
from gilaudit.report.json_report import report_to_dict

FT = {"executable": "/x/python3.14t", "version": "3.14.0", "free_threaded": True,
      "free_threaded_build": True, "gil_enabled": False}
GIL = {**FT, "executable": "/x/python3.13", "free_threaded": False,
       "free_threaded_build": False, "gil_enabled": True}


def _static(rule: str, severity: str, module: str, path: str = "spam.c",
            callable_: str | None = None, fingerprint: str | None = None) -> Finding:
    return Finding(rule=rule, name=rule.lower(), category="shared-mutable-state",
                   language=language_of("c", path), severity=severity,  # type: ignore[arg-type]
                   message=f"{rule} here", location=Location(path=path, line=3),
                   symbol="x", module=module, callable=callable_,
                   fingerprint=fingerprint or f"fp-{rule}-{module}-{callable_}")


def _dynamic(rule: str, module: str, callable_: str) -> Finding:
    category = {"FT200": "gil-reenabled", "FT204": "wrong-result", "FT202": "crash"}[rule]
    return Finding(rule=rule, name=rule.lower(), category=category, language="python",
                   severity="error",
                   message=f"{rule} there", location=None, symbol=f"{module}.{callable_}",
                   module=module, callable=callable_ or None, evidence="dynamic",
                   fingerprint=f"dyn-{rule}-{module}-{callable_}")


def _stressed(module: str, verdict: str, gil_reenabled: bool | None = False) -> ModuleStress:
    driven = (Driven(name="f", kind="function", call="mod.f(1)", setup=None,
                     signature="probed", threads=8, iterations=100, trials=5, calls=5600),)
    return ModuleStress(module=module, verdict=verdict, reason="r", imported="ok",
                        gil_reenabled=gil_reenabled, driven=driven if verdict != "not exercised"
                        else (), calls=5600)


def _report(findings: list[Finding], *, files: dict[str, str] | None = None,
            stress: list[ModuleStress] | None = None, interpreter: dict | None = None) -> Report:
    summary = None
    if stress is not None:
        summary = StressSummary(interpreter=interpreter or FT, settings={}, modules=tuple(stress))
    return Report(tool={"name": "gilaudit", "version": "0"}, targets=("t",),
                  findings=tuple(findings), diagnostics=(), file_modules=files or {},
                  stress=summary)


def _verdict(report: Report, module: str) -> tuple[str, str]:
    got = {v.module: v for v in m.finalise(report).modules}[module]
    return got.verdict, got.reason


def test_ready_needs_a_declaration_no_error_and_a_clean_free_threaded_stress_run() -> None:
    files = {"spam.c": "spam"}
    assert _verdict(_report([], files=files, stress=[_stressed("spam", "clean")]),
                    "spam")[0] == "ready"
    # the same, stressed on a GIL build only: no evidence, never ready
    verdict, reason = _verdict(_report([], files=files, stress=[_stressed("spam", "clean",
                                                                          None)],
                                       interpreter=GIL), "spam")
    assert verdict == "not exercised" and "GIL build" in reason
    assert _verdict(_report([], files=files), "spam")[0] == "not exercised"
    assert _verdict(_report([], files=files, stress=[_stressed("spam", "not exercised")]),
                    "spam")[0] == "not exercised"


def test_each_other_verdict() -> None:
    files = {"spam.c": "spam"}
    clean = [_stressed("spam", "clean")]
    hazards = _report([_static("FT040", "warning", "spam")], files=files, stress=clean)
    assert _verdict(hazards, "spam")[0] == "declared but hazards"
    errors = _report([_static("FT012", "error", "spam")], files=files, stress=clean)
    assert _verdict(errors, "spam") == ("not ready", "1 error(s) from static analysis")
    crash = _report([_dynamic("FT202", "spam", "f")], files=files,
                    stress=[_stressed("spam", "problems")])
    assert _verdict(crash, "spam") == ("not ready", "the stress phase found: crash")
    undeclared = _report([_static("FT001", "error", "spam")], files=files)
    assert _verdict(undeclared, "spam")[0] == "not declared"
    reenabled = _report([_dynamic("FT200", "spam", "")], files=files,
                        stress=[_stressed("spam", "problems", gil_reenabled=True)])
    got = {v.module: v for v in m.finalise(reenabled).modules}["spam"]
    assert got.verdict == "not ready" and got.declared is False
    could_not = _report([], files=files, stress=[ModuleStress(
        module="spam", verdict="could not run", reason="import failed: ImportError",
        imported="failed", gil_reenabled=None)])
    assert _verdict(could_not, "spam")[0] == "not ready"
    only_dynamic = _report([], stress=[_stressed("ext", "clean")], interpreter=GIL)
    assert _verdict(only_dynamic, "ext")[0] == "unknown"  # nothing says it declares
    wheels = _report([_static("FT130", "warning", "", path="pkg.whl")])
    assert _verdict(wheels, m.PROJECT)[0] == "declared but hazards"


def test_merge_collapses_duplicates_and_marks_confirmed_static_findings() -> None:
    files = {"spam.c": "spam"}
    static = _report([_static("FT040", "warning", "spam", callable_="add"),
                      _static("FT041", "warning", "spam", callable_="other")], files=files)
    again = _report([_static("FT040", "warning", "spam", callable_="add")], files=files)
    dynamic = _report([_dynamic("FT204", "spam", "add")], stress=[_stressed("spam",
                                                                            "problems")])
    merged = m.finalise(m.merge([static, again, dynamic]))
    assert [f.rule for f in merged.findings] == ["FT040", "FT041", "FT204"]
    confirmed = {f.rule: f.confirmed for f in merged.findings}
    assert confirmed == {"FT040": True, "FT041": False, "FT204": False}
    (spam,) = merged.modules
    assert spam.verdict == "not ready" and spam.stress == "problems"
    validate_report(report_to_dict(merged))


def test_baselines_keep_known_findings_from_failing(tmp_path: Path) -> None:
    old = _report([_static("FT040", "warning", "spam")])
    new = _report([_static("FT040", "warning", "spam"), _static("FT012", "error", "spam")])
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(m.baseline_dict(old)))
    marked = m.apply_baseline(new, m.load_baseline(path), str(path))
    assert {f.rule: f.baseline for f in marked.findings} == {"FT040": "known", "FT012": "new"}
    assert marked.baseline == {"path": str(path), "known": 1, "new": 1}
    assert not m.counts_towards_failure(marked.findings[0], "warning")
    assert m.counts_towards_failure(marked.findings[1], "warning")


def _spamcache(tmp_path: Path) -> Path:
    return Path(__file__).parent.parent / "examples" / "spamcache"


def test_cli_baseline_then_scan_with_it(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    example = _spamcache(tmp_path)
    baseline = tmp_path / "b.json"
    common = ["--no-cache", "--jobs", "1", "--no-progress"]
    assert main(["scan", str(example), *common, "--format", "json", "-o",
                 str(tmp_path / "r.json")]) == 1
    assert main(["baseline", str(tmp_path / "r.json"), "-o", str(baseline)]) == 0
    out = tmp_path / "again.json"
    code = main(["scan", str(example), *common, "--baseline", str(baseline), "--format",
                 "json", "-o", str(out)])
    data = json.loads(out.read_text())
    validate_report(data)
    assert code == 0, "every finding is known"
    assert data["baseline"]["new"] == 0 and data["baseline"]["known"] == len(data["findings"])
    # a baseline written straight from a project to scan gives the same fingerprints
    direct = tmp_path / "direct.json"
    assert main(["baseline", str(example), "-o", str(direct)]) == 0
    assert json.loads(direct.read_text()) == json.loads(baseline.read_text())
    capsys.readouterr()


def test_cli_report_merges_a_scan_and_a_stress_run(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "racy_counter.c").write_bytes((FIXTURES / "racy_counter.c").read_bytes())
    built = tmp_path / "built"
    build_extension(FIXTURES / "racy_counter.c", built)
    static, dynamic, merged = (tmp_path / n for n in ("s.json", "d.json", "m.json"))
    assert main(["scan", str(src), "--no-cache", "--jobs", "1", "--no-progress",
                 "--format", "json", "-o", str(static)]) == 0  # one warning: FT040 on add
    assert main(["stress", "racy_counter", "--import-path", str(built), "--python",
                 sys.executable, "--timeout", "2", "--trials", "3", "--no-progress",
                 "--format", "json", "-o", str(dynamic)]) == 1
    code = main(["report", str(static), str(dynamic), "--json", str(merged),
                 "--format", "text", "--color", "never"])
    text = capsys.readouterr().out
    data = json.loads(merged.read_text())
    validate_report(data)
    assert code == 1
    (ft040,) = [f for f in data["findings"] if f["rule"] == "FT040"]
    assert ft040["confirmed"] is True and ft040["callable"] == "add"
    (module,) = data["modules"]
    assert module["module"] == "racy_counter" and module["verdict"] == "not ready"
    assert "racy_counter" in text


@pytest.mark.parametrize(("content", "expected"), [
    (b"not json at all", "not valid JSON"),
    (b'{"schema": 1, "findings": [', "cut short"),
    (b'{"schema": 7}', "schema 7"),
    (b'[1, 2, 3]', "not a gilaudit JSON report"),
    (b'\xff\xfe\x00garbage', "not UTF-8"),
    (b'{"schema": 1, "findings": [{"rule": "FT001", "name": "x", "category": "c", '
     b'"severity": "catastrophic", "message": "m"}]}', "malformed"),
    (b'{"schema": 1, "findings": [{"rule": "<script>", "name": 1, "category": "c", '
     b'"severity": "error", "message": "m"}]}', "malformed"),
    (b'{"schema": 1, "findings": "nope"}', "malformed"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
])
def test_bad_results_files_are_clear_errors(tmp_path: Path, content: bytes, expected: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    code = main(["report", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and expected in err and "Traceback" not in err, err


def test_a_huge_results_file_is_refused_before_reading(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str],
                                                       ) -> None:
    monkeypatch.setattr(m, "MAX_INPUT_BYTES", 1000)
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"schema": 1, "findings": [], "pad": "x" * 5000}))
    assert main(["report", str(big)]) == 2
    assert "5,040 bytes, more than the 1,000 gilaudit reads" in capsys.readouterr().err


def test_output_pairs_and_usage_errors(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    example = str(_spamcache(tmp_path))
    common = ["--no-cache", "--jobs", "1", "--no-progress"]
    a, b = tmp_path / "a.json", tmp_path / "b.txt"
    assert main(["scan", example, *common, "--format", "json", "-o", str(a), "--format",
                 "text", "-o", str(b)]) == 1
    validate_report(json.loads(a.read_text()))
    assert "FT0" in b.read_text() and "\x1b[" not in b.read_text()
    assert main(["scan", example, *common, "--format", "json", "--format", "text"]) == 2
    assert main(["scan", example, *common, "-o", str(a), "-o", str(b)]) == 2
    err = capsys.readouterr().err
    assert "only one format can go to standard output" in err
    assert "more -o/--output than --format" in err
