"""The facts cache and the parallel parser give the same answers as a cold serial run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import REPO, RULE_FIXTURES
from gilaudit import scan as scan_module
from gilaudit.cli import main
from gilaudit.frontends.c import run as c_run
from gilaudit.frontends.c.facts import FileFacts, facts_from_jsonable, facts_to_jsonable
from gilaudit.frontends.c.flags import detect_toolchain, file_args
from gilaudit.frontends.c.job import ParseJob
from gilaudit.frontends.c.parse import parse_translation_unit

DEMO = REPO / "examples" / "spamcache"


def _run(tmp_path: Path, target: Path, *extra: str) -> dict:
    out = tmp_path / "r.json"
    main(["scan", str(target), "--format", "json", "-o", str(out), "--no-progress", *extra])
    data: dict = json.loads(out.read_text())
    return data


def _findings(report: dict) -> list:
    return sorted((f["path"], f["line"], f["rule"], f["message"]) for f in report["findings"])


def test_warm_run_parses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "ext"
    shutil.copytree(DEMO, target)
    cache = tmp_path / "cache"
    cold = _run(tmp_path, target, "--cache-dir", str(cache), "--jobs", "1")

    def refuse(*_a: object, **_k: object) -> FileFacts:
        raise AssertionError("a warm run must not parse unchanged files")

    monkeypatch.setattr(c_run, "parse_translation_unit", refuse)
    warm = _run(tmp_path, target, "--cache-dir", str(cache), "--jobs", "1")
    assert _findings(warm) == _findings(cold)


def test_header_change_invalidates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "ext"
    shutil.copytree(DEMO, target)
    cache = tmp_path / "cache"
    _run(tmp_path, target, "--cache-dir", str(cache), "--jobs", "1")
    parsed: list[str] = []
    real = c_run.parse_translation_unit

    def spy(job: ParseJob) -> FileFacts:
        parsed.append(job.rel)
        return real(job)

    monkeypatch.setattr(c_run, "parse_translation_unit", spy)
    source = target / "src" / "spam.c"
    source.write_text(source.read_text() + "\n/* touched */\n")
    _run(tmp_path, target, "--cache-dir", str(cache), "--jobs", "1")
    assert parsed == ["src/spam.c"]
    parsed.clear()
    header = target / "include" / "lru.h"
    header.write_text(header.read_text() + "\n/* touched */\n")
    _run(tmp_path, target, "--cache-dir", str(cache), "--jobs", "1")
    assert sorted(parsed) == ["src/lru.c", "src/spam.c"]  # both include lru.h


def test_corrupt_cache_entry_is_ignored(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cold = _run(tmp_path, DEMO, "--cache-dir", str(cache), "--jobs", "1")
    for entry in cache.rglob("*.json"):
        entry.write_text("{not json")
    again = _run(tmp_path, DEMO, "--cache-dir", str(cache), "--jobs", "1")
    assert _findings(again) == _findings(cold)


def test_parallel_equals_serial(tmp_path: Path) -> None:
    serial = _run(tmp_path, DEMO, "--no-cache", "--jobs", "1")
    parallel = _run(tmp_path, DEMO, "--no-cache", "--jobs", "2")
    assert _findings(parallel) == _findings(serial)
    assert parallel["summary"]["lines_analysed"] == serial["summary"]["lines_analysed"]


def test_facts_round_trip(tmp_path: Path) -> None:
    src = DEMO / "src" / "lru.c"
    args = file_args(detect_toolchain(), language="c", head=b"",
                     include_dirs=[str(DEMO / "include")], defines=[])
    facts = parse_translation_unit(ParseJob(abspath=str(src), rel="src/lru.c",
                                            root=str(DEMO), language="c", args=args))
    assert facts.functions
    data = json.loads(json.dumps(facts_to_jsonable(facts)))
    assert facts_from_jsonable(data) == facts


def test_unchanged_tree_reuses_the_whole_result(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "ext"
    shutil.copytree(DEMO, target)
    cache = tmp_path / "cache"
    cold = _run(tmp_path, target, "--cache-dir", str(cache), "--jobs", "1")

    def refuse(*_a: object, **_k: object) -> object:
        raise AssertionError("an unchanged tree must not be evaluated again")

    monkeypatch.setattr(scan_module, "evaluate", refuse)
    warm = _run(tmp_path, target, "--cache-dir", str(cache), "--jobs", "1")
    assert _findings(warm) == _findings(cold)
    # A configuration change is a different question: evaluated again, from cached facts.
    monkeypatch.undo()
    other = _run(tmp_path, target, "--cache-dir", str(cache), "--jobs", "1", "--select", "FT04")
    assert {f["rule"] for f in other["findings"]} <= {"FT040", "FT041", "FT042", "FT046", "FT048"}


def _both_ways(path: Path, root: Path, include: list[str]) -> tuple[FileFacts, FileFacts]:
    args = file_args(detect_toolchain(), language="c", head=path.read_bytes(),
                     include_dirs=include, defines=[])
    rel = str(path.relative_to(root))
    located = parse_translation_unit(ParseJob(abspath=str(path), rel=rel, root=str(root),
                                              language="c", args=args))
    enumerated = parse_translation_unit(ParseJob(abspath=str(path), rel=rel, root=str(root),
                                                 language="c", args=args,
                                                 located_toplevel=False))
    return located, enumerated


def test_located_toplevel_equals_full_enumeration() -> None:
    files = sorted(RULE_FIXTURES.glob("FT*/*.c")) + sorted((DEMO / "src").glob("*.c"))
    for path in files:
        root = path.parent
        located, enumerated = _both_ways(path, root, [str(RULE_FIXTURES),
                                                      str(DEMO / "include")])
        assert located == enumerated, path


def test_a_precompiled_prelude_that_no_longer_fits_costs_only_speed(tmp_path: Path) -> None:
    target = tmp_path / "ext"
    shutil.copytree(DEMO, target)
    cache = tmp_path / "cache"
    cold = _run(tmp_path, target, "--cache-dir", str(cache), "--jobs", "1")
    pchs = list((cache / "pch").glob("*.pch"))
    assert pchs
    for pch in pchs:  # as if the headers or libclang changed under it
        pch.write_bytes(b"not a precompiled header")
    for src in (target / "src").glob("*.c"):
        src.write_text(src.read_text() + "\n/* touched: parse again */\n")
    again = _run(tmp_path, target, "--cache-dir", str(cache), "--jobs", "1")
    assert {f["rule"] for f in again["findings"]} == {f["rule"] for f in cold["findings"]}
    assert not [d for d in again["diagnostics"] if d["kind"] == "parse-failed"]
