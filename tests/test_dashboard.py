"""`gilaudit dashboard` end to end, over a real package index served on 127.0.0.1 that holds
packages the tests build: one ready, one with only GIL wheels, one whose classifier lies, one
abi3, two with hostile sdists, one whose extension crashes when stressed, and index faults."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.tags import sys_tags

from dashboard_index_server import IndexServer, build_sdist, build_wheel
from fixtures.dynamic.build import FIXTURES, build_extension
from gilaudit.cli import main
from gilaudit.dashboard.db import Database
from gilaudit.dashboard.model import PackageResult

FT = "Programming Language :: Python :: Free Threading :: 3 - Stable"
FT_TAG = "cp313-cp313t-manylinux_2_17_x86_64"
GIL_TAG = "cp313-cp313-manylinux_2_17_x86_64"
PACKAGES = ["ready-pkg", "gil-only", "lying-classifier", "abi3-pkg", "bomb-sdist",
            "traversal-sdist", "crashy-pkg"]


@pytest.fixture(scope="module")
def index_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("index")
    built = tmp_path_factory.mktemp("built")
    clean_so = build_extension(FIXTURES / "clean_funcs.c", built)
    crashy_so = build_extension(FIXTURES / "crashy.c", built)
    clean_c = (FIXTURES / "clean_funcs.c").read_bytes()
    racy_c = (FIXTURES / "racy_counter.c").read_bytes()
    ft_so = "clean_funcs.cpython-313t-x86_64-linux-gnu.so"
    gil_so = "clean_funcs.cpython-313-x86_64-linux-gnu.so"

    def pkg(name: str) -> Path:
        (root / name).mkdir(exist_ok=True)
        return root / name

    build_wheel(pkg("ready-pkg"), "ready-pkg", "1.0", FT_TAG,
                files={ft_so: clean_so.read_bytes()}, classifiers=[FT],
                summary="Declares free-threading and ships cp313t wheels.")
    build_sdist(pkg("ready-pkg"), "ready-pkg", "1.0", files={"src/clean_funcs.c": clean_c},
                classifiers=[FT])
    build_wheel(pkg("gil-only"), "gil-only", "2.0", GIL_TAG,
                files={gil_so: clean_so.read_bytes()})
    build_sdist(pkg("gil-only"), "gil-only", "2.0", files={"src/racy_counter.c": racy_c})
    build_wheel(pkg("lying-classifier"), "lying-classifier", "0.3", GIL_TAG,
                files={gil_so: clean_so.read_bytes()}, classifiers=[FT],
                summary="<script>window.__pwned=1</script> claims what it does not ship")
    build_wheel(pkg("abi3-pkg"), "abi3-pkg", "1.1", "cp39-abi3-manylinux_2_17_x86_64",
                files={"clean_funcs.abi3.so": clean_so.read_bytes()})
    build_sdist(pkg("bomb-sdist"), "bomb-sdist", "0.1", files={"src/ok.c": clean_c},
                hostile="bomb")
    build_sdist(pkg("traversal-sdist"), "traversal-sdist", "0.1", files={"src/ok.c": clean_c},
                hostile="traversal")
    local_tag = str(next(iter(sys_tags())))
    build_wheel(pkg("crashy-pkg"), "crashy-pkg", "1.0", local_tag,
                files={crashy_so.name: crashy_so.read_bytes()}, classifiers=[FT])
    # index faults: a project whose page errors, one that never answers, one that is junk
    for name in ("broken-500", "hangs", "junk-page"):
        build_wheel(pkg(name), name, "1.0", FT_TAG, files={ft_so: clean_so.read_bytes()})
    return root


FAULTS = {"broken-500": 500, "hangs": "hang", "junk-page": "junk"}


@pytest.fixture
def server(index_root: Path) -> Iterator[IndexServer]:
    with IndexServer(index_root, faults=dict(FAULTS), hang_seconds=30) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _offline(offline_pip: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")


def _dashboard(server: IndexServer, tmp: Path, *names: str, extra: tuple[str, ...] = ()) -> int:
    return main(["dashboard", *names, "--index", server.url, "--db", str(tmp / "dash.sqlite"),
                 "-o", str(tmp / "site"), "--cache-dir", str(tmp / "cache"), "--jobs", "2",
                 "--http-timeout", "2", "--no-progress", *extra])


def _latest(db_path: Path) -> dict[str, PackageResult]:
    with Database.open(db_path) as db:
        return {r.name: r for r in db.latest(with_reports=True)}


def test_each_kind_of_package_is_shown_correctly(server: IndexServer, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    listing = tmp_path / "packages.txt"
    listing.write_bytes(b"# the test index\n" + "\n".join(PACKAGES[:-1]).encode()
                        + b"\nnumpy>=2  # a specifier, not a name\n\xff\xfe junk\n"
                        b"no-such-project\nbroken-500\nhangs\njunk-page\n")
    assert _dashboard(server, tmp_path, extra=("--packages", str(listing))) == 0
    err = capsys.readouterr().err
    assert "'numpy>=2' is not a project name" in err and "line 9" in err
    got = _latest(tmp_path / "dash.sqlite")
    verdicts = {n: (r.status, r.verdict) for n, r in got.items()}
    assert verdicts["ready-pkg"] == ("ok", "declared")  # ready needs a free-threaded stress run
    assert verdicts["gil-only"] == ("ok", "no ft wheels")
    assert verdicts["lying-classifier"] == ("ok", "hazards")
    assert verdicts["abi3-pkg"] == ("ok", "no ft wheels")
    ready = got["ready-pkg"]
    assert ready.ft_wheels == ("cp313t",) and ready.classifier
    assert got["abi3-pkg"].abi3
    for hostile in ("bomb-sdist", "traversal-sdist"):
        row = got[hostile]
        assert row.status == "ok", row.reason
        assert row.report is not None
        kinds = {d["kind"] for d in row.report["diagnostics"]}
        expected = {"bomb-sdist": {"zip-bomb", "too-large"},
                    "traversal-sdist": {"path-traversal", "link-member"}}[hostile]
        assert kinds & expected, kinds
    assert not Path("/tmp/gilaudit-evil.c").exists()
    failed = {n: r.reason for n, r in got.items() if r.status == "failed"}
    assert set(failed) == {"no-such-project", "broken-500", "hangs", "junk-page"}
    assert "HTTP 500" in failed["broken-500"]
    assert "did not answer within 2 s" in failed["hangs"]
    missing = failed["no-such-project"]
    assert "no such project" in missing.lower() or "404" in missing
    site = (tmp_path / "site" / "index.html").read_text()
    assert "ready-pkg" in site and "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in site
    assert "<script>window.__pwned" not in site


def test_the_stress_phase_shows_a_crashing_extension(server: IndexServer, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert _dashboard(server, tmp_path, "crashy-pkg",
                      extra=("--python", sys.executable, "--stress-budget", "30")) == 0
    capsys.readouterr()
    row = _latest(tmp_path / "dash.sqlite")["crashy-pkg"]
    assert row.status == "ok", row.reason
    assert row.verdict == "not ready" and row.stress == "problems"
    assert row.report is not None
    rules = {f["rule"] for f in row.report["findings"]}
    assert "FT202" in rules


def test_a_killed_run_resumes_and_a_second_run_is_history(server: IndexServer,
                                                         tmp_path: Path) -> None:
    db = tmp_path / "dash.sqlite"
    argv = [sys.executable, "-m", "gilaudit", "dashboard", *PACKAGES[:-1], "--index",
            server.url, "--db", str(db), "-o", str(tmp_path / "site"), "--cache-dir",
            str(tmp_path / "cache"), "--jobs", "1", "--no-progress"]
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    recorded = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=1) as con:
                    recorded = con.execute("select count(*) from results").fetchone()[0]
            except sqlite3.Error:
                continue
            if recorded >= 2:
                break
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with Database.open(db) as d:
        (first,) = d.runs()
        assert first.status == "running"
        done_before = d.done(first.id)
    assert len(done_before) >= 2
    resumed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300,
                             check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert "(resumed)" in resumed.stderr and f"{len(done_before)} already done" in resumed.stderr
    with Database.open(db) as d:
        (run,) = d.runs()
        assert run.status == "finished"
        assert d.done(run.id) == set(PACKAGES[:-1])
    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300,
                           check=False)
    assert again.returncode == 0, again.stderr
    assert "6 reused from earlier runs" in again.stderr
    with Database.open(db) as d:
        assert len(d.runs()) == 2
        history = d.history("ready-pkg")
        assert [r.verdict for _info, r in history] == ["declared", "declared"]
        assert [len(counts) > 0 for _when, counts in d.trend()] == [True, True]


def test_the_same_work_runs_on_a_local_dask_cluster(server: IndexServer, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(host="127.0.0.1", n_workers=2, threads_per_worker=1,
                                  processes=True, dashboard_address=None) as cluster:
        code = _dashboard(server, tmp_path, "ready-pkg", "gil-only", "no-such-project",
                          extra=("--executor", "dask", "--scheduler", cluster.scheduler_address))
    capsys.readouterr()
    assert code == 0
    got = _latest(tmp_path / "dash.sqlite")
    assert got["ready-pkg"].verdict == "declared"
    assert got["gil-only"].verdict == "no ft wheels"
    assert got["no-such-project"].status == "failed"


def test_only_the_modules_the_wheels_ship_decide_the_verdict(tmp_path: Path) -> None:
    import zipfile  # noqa: PLC0415

    from gilaudit.dashboard.job import dashboard_verdict, shipped_modules  # noqa: PLC0415
    from gilaudit.model import ModuleVerdict, Report  # noqa: PLC0415

    wheel = tmp_path / "pkg-1.0-cp313-cp313t-linux_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/_core.cpython-313t-x86_64-linux-gnu.so", b"\x7fELF")
        z.writestr("pkg/__init__.py", "")
    shipped = shipped_modules([wheel])
    assert shipped == frozenset({"_core"})
    report = Report(tool={}, targets=(), findings=(), diagnostics=(), modules=(
        ModuleVerdict(module="_core", verdict="not exercised", reason="", declared=True),
        # an extension of the sdist's tests (numpy ships dozens): never installed
        ModuleVerdict(module="limited_api_test", verdict="not declared", reason="",
                      declared=False)))
    every = dashboard_verdict(ft_wheels=("cp313t",), classifier=False, report=report,
                              failed=False)
    only_shipped = dashboard_verdict(ft_wheels=("cp313t",), classifier=False, report=report,
                                     failed=False, shipped=shipped)
    assert every == ("not ready", False)
    assert only_shipped == ("declared", True)
