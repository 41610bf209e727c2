"""The dashboard's results database: migrations (from nothing, from an older schema, refusing
a newer one and a file that is not SQLite), recording and reading back, resuming, reusing
results of earlier runs, a writer killed midway, hostile strings, and the size per 1,000 rows."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from gilaudit.dashboard.db import (
    MIGRATIONS,
    Database,
    DatabaseError,
    DatabaseTooNewError,
    NotADatabaseError,
    RunInfo,
)
from gilaudit.dashboard.fake import generated_results
from gilaudit.dashboard.model import DASHBOARD_VERDICTS, PackageResult
from gilaudit.report.merge import report_from_dict

INDEX = "https://pypi.org/simple/"
FT_PY = "/usr/bin/python3.14t"

HOSTILE = ("<script>window.__pwned=1</script> <img src=x onerror=alert(1)> "
           "'; DROP TABLE results; -- \"quoted\" \\back\\slash "
           "\u202eRTL override\u202c \u05e9\u05dc\u05d5\u05dd \u65e5\u672c\u8a9e \U0001f9f5 "
           "nul\x00byte tab\tnewline\n" + "x" * 5000)


def result(name: str, version: str | None = "1.0", **kw: Any) -> PackageResult:
    kw.setdefault("status", "ok")
    return PackageResult(name=name, version=version, **kw)


@pytest.fixture
def db(tmp_path: Path) -> Any:
    with Database.open(tmp_path / "results.db") as opened:
        yield opened


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


# --- opening and migrations -----------------------------------------------------------------

def test_a_new_file_gets_the_whole_schema_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with Database.open(path) as db:
        assert db.version == Database.SCHEMA_VERSION == MIGRATIONS[-1][0] >= 2
        mode = db._conn.execute("PRAGMA journal_mode").fetchone()[0]
        fks = db._conn.execute("PRAGMA foreign_keys").fetchone()[0]
        assert (mode, fks) == ("wal", 1)
    assert {"runs", "results"} <= tables(path)
    assert user_version(path) == Database.SCHEMA_VERSION
    # Opening again changes nothing.
    with Database.open(path) as db:
        assert db.version == Database.SCHEMA_VERSION
        assert db.runs() == []


def test_an_empty_existing_file_is_a_new_database(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    with Database.open(path) as db:
        assert db.version == Database.SCHEMA_VERSION


def test_a_v1_file_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with Database.open(path, migrations=MIGRATIONS[:1]) as old:
        assert old.version == 1
    cols = {r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(results)")}
    assert "reused_from" not in cols
    # Rows written by the version-1 code (its columns only).
    report = {"findings": [], "targets": ["x"]}
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO runs (started, finished, status, index_url, python, options) "
                     "VALUES ('2025-01-01T00:00:00+00:00', '2025-01-01T01:00:00+00:00', "
                     "'finished', ?, NULL, '{\"jobs\": 2}')", (INDEX,))
        import zlib  # noqa: PLC0415

        conn.execute("INSERT INTO results (run_id, name, version, status, verdict, ft_wheels, "
                     "errors, report, recorded) VALUES (1, 'numpy', '2.3.0', 'ok', 'ready', "
                     "'[\"cp313t\"]', 0, ?, '2025-01-01T00:30:00+00:00')",
                     (zlib.compress(json.dumps(report).encode()),))
    conn.close()

    with Database.open(path) as db:
        assert db.version == Database.SCHEMA_VERSION
        (latest,) = db.latest(with_reports=True)
        assert (latest.name, latest.version, latest.verdict, latest.ft_wheels) == (
            "numpy", "2.3.0", "ready", ("cp313t",))
        assert latest.report == report
        assert db.runs()[0].options == {"jobs": 2}
        # The migrated file works with everything version 2 added.
        run = db.start_run(index_url=INDEX, python=None, options={})
        assert db.record_reused(run, "numpy", "2.3.0", None)
        assert db.report("numpy") == report
    cols = {r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(results)")}
    assert "reused_from" in cols


def test_a_failing_migration_leaves_the_file_at_the_last_good_version(tmp_path: Path) -> None:
    path = tmp_path / "half.db"
    broken = [*MIGRATIONS, (99, "CREATE TABLE t (a); CREATE TABLE t (a);")]
    with pytest.raises(DatabaseError, match="version 99"):
        Database.open(path, migrations=broken)
    assert user_version(path) == Database.SCHEMA_VERSION
    assert "t" not in tables(path)  # the first statement was rolled back with the second


def test_a_newer_file_is_refused_with_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    Database.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {Database.SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(DatabaseTooNewError) as info:
        Database.open(path)
    message = str(info.value)
    assert f"schema version {Database.SCHEMA_VERSION + 5}" in message
    assert "upgrade gilaudit" in message and message.count(".") <= 3
    assert isinstance(info.value, DatabaseError)
    # A file of the current schema opened by code that knows only version 1: the same case.
    current = tmp_path / "current.db"
    Database.open(current).close()
    with pytest.raises(DatabaseTooNewError, match="newer than the 1 this gilaudit knows"):
        Database.open(current, migrations=MIGRATIONS[:1])


@pytest.mark.parametrize("content", [b"this is a text file, not a database\n" * 100,
                                     bytes(range(256)) * 40,
                                     b"SQLite format 3\x00" + b"\xff" * 4000])
def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    with pytest.raises(NotADatabaseError, match="is not an SQLite database"):
        Database.open(path)
    assert path.read_bytes() == content  # untouched


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="is a directory"):
        Database.open(tmp_path)


# --- recording and reading ------------------------------------------------------------------

def test_record_latest_history_and_trend(db: Database) -> None:
    first = db.start_run(index_url=INDEX, python=None, options={"jobs": 2, "top": 10})
    db.record(first, result("numpy", "2.2.0", verdict="no ft wheels", errors=3))
    db.record(first, result("lxml", "5.0", verdict="hazards", declared=True, warnings=2,
                            report={"targets": ["lxml-5.0.tar.gz"], "findings": []}))
    db.record(first, result("broken", None, status="failed", reason="The index answered 500."))
    db.finish_run(first)
    second = db.start_run(index_url=INDEX, python=None, options={})
    db.record(second, result("numpy", "2.3.0", verdict="ready", ft_wheels=("cp313t", "cp314t"),
                             declared=True, classifier=True, stress="clean", seconds=12.5,
                             platforms=("manylinux_2_17_x86_64",), summary="Arrays"))
    db.record(second, result("lxml", "5.0", verdict="not-a-verdict"))

    runs = db.runs()
    assert [r.id for r in runs] == [first, second]
    assert runs[0].status == "finished" and runs[0].finished
    assert runs[1].status == "running" and runs[1].finished is None
    assert runs[0].options == {"jobs": 2, "top": 10}
    assert isinstance(runs[0], RunInfo) and runs[0].index_url == INDEX and runs[0].python is None

    latest = {r.name: r for r in db.latest()}
    assert sorted(latest) == ["broken", "lxml", "numpy"]
    numpy = latest["numpy"]
    assert (numpy.version, numpy.verdict, numpy.ft_wheels, numpy.classifier, numpy.stress,
            numpy.seconds, numpy.platforms, numpy.summary, numpy.declared) == (
        "2.3.0", "ready", ("cp313t", "cp314t"), True, "clean", 12.5,
        ("manylinux_2_17_x86_64",), "Arrays", True)
    assert latest["broken"].version is None and latest["broken"].reason == "The index answered 500."
    assert all(r.report is None for r in latest.values())  # reports only when asked
    assert latest["numpy"].declared is True and latest["broken"].declared is None
    with_reports = {r.name: r for r in db.latest(with_reports=True)}
    assert with_reports["lxml"].report is None  # the newest lxml row has none
    assert db.report("numpy") is None

    history = db.history("numpy")
    assert [(run.id, r.version, r.verdict) for run, r in history] == [
        (first, "2.2.0", "no ft wheels"), (second, "2.3.0", "ready")]
    assert history[0][1].errors == 3
    lxml = db.history("lxml", with_reports=True)
    assert lxml[0][1].report == {"targets": ["lxml-5.0.tar.gz"], "findings": []}
    assert db.history("nothing") == []

    trend = db.trend()
    assert [stamp for stamp, _ in trend] == [runs[0].started, runs[1].started]
    assert all(set(counts) == set(DASHBOARD_VERDICTS) for _, counts in trend)
    assert trend[0][1]["no ft wheels"] == 1 and trend[0][1]["hazards"] == 1
    assert trend[0][1]["unknown"] == 1  # the failed row
    assert trend[1][1]["ready"] == 1 and trend[1][1]["unknown"] == 1  # an unknown verdict word
    # An abandoned run is not part of the trend.
    third = db.start_run(index_url=INDEX, python=None, options={})
    db.record(third, result("numpy", "2.3.1", verdict="ready"))
    db.finish_run(third, "abandoned")
    assert len(db.trend()) == 2


def test_recording_the_same_package_twice_in_a_run_replaces_the_row(db: Database) -> None:
    run = db.start_run(index_url=INDEX, python=None, options={})
    db.record(run, result("a", "1", verdict="unknown", report={"n": 1}))
    db.record(run, result("a", "1", verdict="ready", report={"n": 2}))
    db.record(run, result("a", None, status="failed", reason="no release"))
    db.record(run, result("a", None, status="failed", reason="still no release"))
    rows = db.history("a", with_reports=True)
    assert [(r.version, r.verdict, r.reason, r.report) for _, r in rows] == [
        ("1", "ready", "", {"n": 2}), (None, "unknown", "still no release", None)]


def test_a_generated_report_round_trips_and_reads_as_a_report(db: Database) -> None:
    run = db.start_run(index_url=INDEX, python=FT_PY, options={})
    originals = generated_results(30, seed=3)
    for r in originals:
        db.record(run, r)
    back = {r.name: r for r in db.latest(with_reports=True)}
    for r in originals:
        assert back[r.name] == r
        if r.report is not None:
            report_from_dict(back[r.name].report or {})


def test_finish_run_of_an_unknown_run_is_an_error(db: Database) -> None:
    with pytest.raises(DatabaseError, match="no run 42"):
        db.finish_run(42)


# --- resuming and reusing -------------------------------------------------------------------

def test_an_unfinished_run_is_found_and_resumed(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with Database.open(path) as db:
        run = db.start_run(index_url=INDEX, python=FT_PY, options={})
        db.record(run, result("a"))
        db.record(run, result("b", None, status="failed", reason="timeout"))
    with Database.open(path) as db:
        assert db.unfinished_run(index_url=INDEX, python=FT_PY) == run
        assert db.unfinished_run(index_url=INDEX, python=None) is None  # static-only run
        assert db.unfinished_run(index_url="http://127.0.0.1:1/simple/", python=FT_PY) is None
        assert db.done(run) == {"a", "b"}
        db.record(run, result("c"))
        assert db.done(run) == {"a", "b", "c"}
        db.finish_run(run)
        assert db.unfinished_run(index_url=INDEX, python=FT_PY) is None
        # Two unfinished runs: the newest is resumed.
        older = db.start_run(index_url=INDEX, python=None, options={})
        newer = db.start_run(index_url=INDEX, python=None, options={})
        assert older != newer
        assert db.unfinished_run(index_url=INDEX, python=None) == newer
        assert db.done(newer) == set()


def test_analysed_versions_are_reused_into_the_new_run(db: Database) -> None:
    report = {"targets": ["numpy-2.3.0.tar.gz"], "findings": [], "big": "y" * 10_000}
    first = db.start_run(index_url=INDEX, python=None, options={})
    db.record(first, result("numpy", "2.3.0", verdict="ready", ft_wheels=("cp313t",),
                            report=report))
    db.record(first, result("scipy", "1.15", status="failed", reason="sdist bomb"))
    db.finish_run(first)

    assert db.analysed("numpy", "2.3.0", None)
    assert not db.analysed("numpy", "2.3.0", FT_PY)  # a stress run needs its own analysis
    assert not db.analysed("numpy", "2.4.0", None)
    assert not db.analysed("scipy", "1.15", None)  # failed results are retried

    second = db.start_run(index_url=INDEX, python=None, options={})
    assert db.record_reused(second, "numpy", "2.3.0", None)
    assert not db.record_reused(second, "scipy", "1.15", None)
    assert not db.record_reused(second, "numpy", "9.9", None)
    assert db.record_reused(second, "numpy", "2.3.0", None)  # already there: a no-op
    assert db.done(second) == {"numpy"}
    history = db.history("numpy", with_reports=True)
    assert [run.id for run, _ in history] == [first, second]
    assert history[0][1] == history[1][1]  # the same result, report included
    assert db.report("numpy") == report
    # The report is stored once: the copy points at it.
    blobs = db._conn.execute("SELECT count(*) FROM results WHERE report IS NOT NULL "
                             "AND name = 'numpy'").fetchone()[0]
    assert blobs == 1
    db.finish_run(second)

    # A third run reuses the copy: it still resolves to the stored report.
    third = db.start_run(index_url=INDEX, python=None, options={})
    assert db.record_reused(third, "numpy", "2.3.0", None)
    assert db.history("numpy", with_reports=True)[-1][1].report == report
    assert db.trend()[-1][1]["ready"] == 1

    # Re-recording a fresh analysis over a copied row makes it a row of its own.
    db.record(third, result("numpy", "2.3.0", verdict="hazards", report={"fresh": True}))
    assert db.report("numpy") == {"fresh": True}
    assert db.history("numpy", with_reports=True)[1][1].report == report


# --- a killed writer ------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import os, sys
    from gilaudit.dashboard.db import Database
    from gilaudit.dashboard.fake import generated_results
    db = Database.open(sys.argv[1])
    run = db.start_run(index_url="https://pypi.org/simple/", python=None, options={})
    rows = generated_results(4, seed=7)
    for r in rows[:3]:
        db.record(run, r)
    # A fourth row half-written: inside its transaction when the process dies.
    db._conn.execute("BEGIN IMMEDIATE")
    db._conn.execute("INSERT INTO results (run_id, name, version, status, verdict, recorded) "
                     "VALUES (?, 'half', '1', 'ok', 'ready', 'now')", (run,))
    print(run, flush=True)
    os._exit(9)
""")


def test_a_killed_writer_loses_none_of_its_recorded_rows(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", WRITER, str(path)], capture_output=True,
                          text=True, timeout=60, check=False, env=env)
    assert proc.returncode == 9, proc.stderr
    run = int(proc.stdout.strip())
    assert (tmp_path / "killed.db-wal").exists()  # died without a checkpoint
    with Database.open(path) as db:
        assert db.unfinished_run(index_url="https://pypi.org/simple/", python=None) == run
        expected = generated_results(4, seed=7)[:3]
        assert db.done(run) == {r.name for r in expected}
        assert {r.name: r for r in db.latest(with_reports=True)} == {r.name: r for r in expected}
        assert db._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_second_connection_reads_while_a_run_writes(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with Database.open(path) as writer, Database.open(path) as reader:
        run = writer.start_run(index_url=INDEX, python=None, options={})
        writer.record(run, result("a"))
        assert [r.name for r in reader.latest()] == ["a"]
        writer.record(run, result("b"))
        assert reader.done(run) == {"a", "b"}


# --- hostile strings ------------------------------------------------------------------------

def test_hostile_strings_round_trip(db: Database) -> None:
    run = db.start_run(index_url=HOSTILE, python=HOSTILE, options={"note": HOSTILE})
    hostile = PackageResult(
        name=HOSTILE, version=HOSTILE[:80], status=HOSTILE[:20], reason=HOSTILE,
        verdict=HOSTILE, ft_wheels=(HOSTILE, "cp313t"), platforms=(HOSTILE,),
        stress=HOSTILE, summary=HOSTILE, declared=False,
        report={"targets": [HOSTILE], "nested": {HOSTILE: [HOSTILE, 1.5, None, True]},
                "surrogate": "lone \udc80 surrogate"})
    db.record(run, hostile)
    (back,) = db.latest(with_reports=True)
    assert back == hostile
    assert db.done(run) == {HOSTILE}
    assert db.history(HOSTILE)[0][0].options == {"note": HOSTILE}
    assert db.unfinished_run(index_url=HOSTILE, python=HOSTILE) == run
    # A lone surrogate cannot be stored as UTF-8 text: it becomes U+FFFD, never an error.
    db.record(run, result("bad\udc80name", summary="s\ud800"))
    names = {r.name: r for r in db.latest()}
    assert names["bad\ufffdname"].summary == "s\ufffd"
    # A SQL-looking name is a name.
    assert "results" in tables(db.path)


def test_a_damaged_report_reads_as_none(db: Database) -> None:
    run = db.start_run(index_url=INDEX, python=None, options={})
    db.record(run, result("a", report={"x": 1}))
    db._conn.execute("UPDATE results SET report = x'00ff00ff'")
    assert db.report("a") is None
    assert db.latest(with_reports=True)[0].report is None


# --- generated rows and size ----------------------------------------------------------------

def test_generated_results_are_deterministic_and_varied() -> None:
    a, b = generated_results(200, seed=1), generated_results(200, seed=1)
    assert a == b
    assert a != generated_results(200, seed=2)
    assert len({r.name for r in a}) == 200
    assert {r.verdict for r in a} == set(DASHBOARD_VERDICTS)
    assert {r.status for r in a} == {"ok", "failed"}
    with_findings = [r for r in a if r.report and r.report["findings"]]
    assert len(with_findings) > 100
    for r in with_findings[:20]:
        report = report_from_dict(r.report or {})
        assert len(report.findings) == r.errors + r.warnings + r.info


def test_size_per_thousand_generated_rows(tmp_path: Path) -> None:
    path = tmp_path / "size.db"
    rows = generated_results(1000)
    with Database.open(path) as db:
        run = db.start_run(index_url=INDEX, python=None, options={})
        for r in rows:
            db.record(run, r)
        db.finish_run(run)
        assert len(db.latest()) == 1000
    # Closed: the WAL is checkpointed into the file and removed.
    assert not Path(f"{path}-wal").exists()
    size = path.stat().st_size
    raw = sum(len(json.dumps(dataclasses.asdict(r))) for r in rows)
    print(f"\ndatabase: {size:,} bytes per 1,000 packages "
          f"({size / 1000:,.0f} bytes a row; {raw:,} bytes of JSON uncompressed)")
    assert 100_000 < size < raw
