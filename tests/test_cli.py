"""The command line as users and CI see it: output shape, exit codes, rules and explain."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, ScanJson, compile_c
from gilaudit.cli import main

DEMO = REPO / "examples" / "spamcache"


def test_demo_report_and_exit_code(scan_json: ScanJson) -> None:
    code, report = scan_json(str(DEMO))
    assert code == 1  # the example has errors and its pyproject says fail-on = "error"
    assert report["schema"] == 1
    assert report["tool"]["name"] == "gilaudit"
    rules = {(f["rule"], f["path"], f["symbol"]) for f in report["findings"]}
    assert ("FT001", "src/spam.c", "spammodule") in rules
    assert ("FT041", "src/spam.c", "json_module") in rules
    assert ("FT014", "src/spam.c", "PyDict_Next") in rules
    assert ("FT010", "src/lru.c", "PyList_GET_ITEM") in rules
    for f in report["findings"]:
        assert set(f) >= {"rule", "category", "severity", "path", "line", "column", "symbol",
                          "message", "fix", "module", "callable"}
        assert f["severity"] in ("error", "warning", "info")
        assert f["module"] == "spamcache._spam"
    # Correct code in the example stays quiet: the critical-section-protected method.
    assert not [f for f in report["findings"] if f["function"] == "LRU_put"]
    summary = report["summary"]
    assert summary["lines_analysed"] > 400
    assert report["files"]["src/spam.c"] == "parsed"
    assert report["files"]["src/lru.c"] == "parsed"


def test_demo_sources_compile() -> None:
    for src in (DEMO / "src").glob("*.c"):
        result = compile_c(src, f"-I{DEMO / 'include'}")
        assert result.returncode == 0, result.stderr


def test_callable_names_come_from_method_tables(scan_json: ScanJson) -> None:
    _code, report = scan_json(str(DEMO))
    by_function = {f["function"]: f["callable"] for f in report["findings"] if f["function"]}
    assert by_function.get("spam_dump_config") == "dump_config"


def test_fail_on_levels(scan_json: ScanJson) -> None:
    code, _ = scan_json(str(DEMO), "--fail-on", "never")
    assert code == 0
    code, _ = scan_json(str(DEMO), "--select", "FT046", "--fail-on", "error")
    assert code == 0  # only warnings selected
    code, _ = scan_json(str(DEMO), "--select", "FT046", "--fail-on", "warning")
    assert code == 1


def test_select_and_ignore(scan_json: ScanJson) -> None:
    _c, report = scan_json(str(DEMO), "--select", "borrowed-reference")
    assert {f["category"] for f in report["findings"]} == {"borrowed-reference"}
    _c, report = scan_json(str(DEMO), "--ignore", "FT04,FT001")
    assert not [f for f in report["findings"] if f["rule"].startswith("FT04")]
    assert not [f for f in report["findings"] if f["rule"] == "FT001"]


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["scan", str(DEMO), "--no-cache", "--jobs", "1", "--color", "never"])
    out = capsys.readouterr().out
    assert code == 1
    assert "src/spam.c:" in out and "[FT001]" in out
    assert "help:" in out
    assert "static struct PyModuleDef spammodule" in out  # the code line is shown
    assert "Found" in out


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["scan"]) == 2
    assert main(["scan", str(DEMO), "--format", "xml"]) == 2
    assert main(["explain", "FT999"]) == 2
    assert "unknown rule" in capsys.readouterr().err


def test_nothing_to_analyse(scan_json: ScanJson, tmp_path: Path) -> None:
    code, report = scan_json(str(tmp_path / "missing"))
    assert code == 3
    assert [d["kind"] for d in report["diagnostics"]] == ["not-found"]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "plain.c").write_text("int add(int a, int b) { return a + b; }\n")
    code, report = scan_json(str(empty))
    assert code == 3
    assert report["files"]["plain.c"].startswith("skipped")
    assert any(d["kind"] == "nothing-to-analyse" for d in report["diagnostics"])


def test_rules_and_explain(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules"]) == 0
    out = capsys.readouterr().out
    assert "FT012" in out and "dict-getitemstring-borrowed" in out
    assert main(["explain", "FT012"]) == 0
    out = capsys.readouterr().out
    for heading in ("What it does", "Why it breaks without the GIL", "Use instead",
                    "References", "PyDict_GetItemStringRef"):
        assert heading in out
    assert main(["explain", "dict-next-unlocked", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["id"] == "FT014"
    assert data["matcher"]["function"] == "match_dict_next"
    assert data["matcher"]["file"].endswith("borrowed.py")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("gilaudit ")


def test_several_targets_prefix_paths(scan_json: ScanJson, tmp_path: Path) -> None:
    a = tmp_path / "a"
    shutil.copytree(DEMO, a)
    code, report = scan_json(str(a), str(DEMO), "--fail-on", "never")
    assert code == 0
    paths = {f["path"] for f in report["findings"]}
    assert f"{a}/src/spam.c" in paths and f"{DEMO}/src/spam.c" in paths


def test_python_m_entry_point() -> None:
    out = subprocess.run([sys.executable, "-m", "gilaudit", "rules"], capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0 and "FT001" in out.stdout


def test_fingerprints_survive_moving_code(scan_json: ScanJson, tmp_path: Path) -> None:
    target = tmp_path / "ext"
    shutil.copytree(DEMO, target)
    _c, before = scan_json(str(target))
    spam = target / "src" / "spam.c"
    spam.write_text("/* a new header comment\n   two lines long */\n" + spam.read_text())
    _c, after = scan_json(str(target))
    fp_before = {f["fingerprint"] for f in before["findings"]}
    fp_after = {f["fingerprint"] for f in after["findings"]}
    assert fp_before == fp_after and len(fp_before) == len(before["findings"])
    assert {f["line"] for f in after["findings"] if f["path"] == "src/spam.c"} != \
        {f["line"] for f in before["findings"] if f["path"] == "src/spam.c"}
