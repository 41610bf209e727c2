"""ThreadSanitizer mode: TSan's reports read, pinned to the project's lines, deduplicated, made
findings with reproducers, and static findings confirmed at line level.

The parser is tested on what this machine's TSan really writes (a small C program per report
kind, no Python involved). The end-to-end tests build the fixture extensions with
``-fsanitize=thread`` for a ThreadSanitizer build of free-threaded CPython (`make
ft-python-tsan`; GILAUDIT_TEST_TSAN_PYTHON) and skip without one, or fail where CI requires
it (GILAUDIT_REQUIRE_TSAN=1). One short stress run covers every fixture and its locked twin.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import FIXTURES, tsan_python, validate_report
from fixtures.dynamic.build import FIXTURES as DYNAMIC
from fixtures.dynamic.build import build_extension
from gilaudit.cli import main
from gilaudit.dynamic.interpreters import Interpreter, choose, describe, parse_probe
from gilaudit.dynamic.stress import StressOptions, StressResult, stress_modules
from gilaudit.dynamic.tsan import child_options, project_suppressions, settings_for
from gilaudit.dynamic.tsanfindings import ProjectSources, TsanEvent, pinned_reports, tsan_findings
from gilaudit.dynamic.tsanlog import parse_frame, parse_log
from gilaudit.model import Finding, Location, Note
from gilaudit.report.merge import confirm, confirms_at_line
from gilaudit.rulebook import load_rulebook

BOOK = load_rulebook()
TSAN_FIXTURES = DYNAMIC / "tsan"
TSAN_FLAGS = ("-fsanitize=thread", "-g", "-O1")
# module -> (rule, file, a piece of the project's racing line). Each has a locked twin that
# must come out clean: counter, lazy init, lock order, a borrowed reference freed under it.
RACY = {
    "racy_counter": (("FT209",), "racy_counter.c", "global_hits"),
    "lazy": (("FT209",), "lazy.c", "self->squares"),
    "lockorder": (("FT211",), "lockorder.c", "pthread_mutex_lock"),
    # The list read through a borrowed pointer races (FT209); the label freed under one is a
    # use after free (FT210). Which of the two a loaded machine's interleaving shows varies.
    "borrowed": (("FT209", "FT210"), "borrowed.c", ""),
}
TWINS = {"racy_counter": "clean_counter", "lazy": "lazy_ok", "lockorder": "lockorder_ok",
         "borrowed": "borrowed_ok"}


def _source(module: str) -> Path:
    own = TSAN_FIXTURES / f"{module}.c"
    return own if own.is_file() else DYNAMIC / f"{module}.c"


def _run_kinds(tmp_path: Path, kind: str, suppressions: str = "") -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc")
    exe = tmp_path / "kinds"
    if not exe.exists():
        proc = subprocess.run([gcc, *TSAN_FLAGS, "-pthread", str(TSAN_FIXTURES / "kinds.c"),
                               "-o", str(exe)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            pytest.skip(f"this gcc cannot build with -fsanitize=thread: {proc.stderr[-300:]}")
    supp = tmp_path / "supp.txt"
    supp.write_text(suppressions)
    log = tmp_path / f"log-{kind}"
    options = child_options(log, supp)
    subprocess.run([str(exe), kind], env={"TSAN_OPTIONS": options}, check=True, timeout=60)
    return "".join(p.read_text() for p in sorted(tmp_path.glob(f"log-{kind}.*")))


# -- reading TSan's text -----------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "expected", "line_piece"), [
    ("race", "data race", "counter += 1"),
    ("use-after-free", "heap-use-after-free", "buffer[0] = 'x'"),
    ("lock-order", "lock-order-inversion", "pthread_mutex_lock(&first)"),
    ("leak", "thread leak", "finish_early"),
])
def test_every_kind_this_tsan_writes_is_read(tmp_path: Path, kind: str, expected: str,
                                             line_piece: str) -> None:
    log = parse_log(_run_kinds(tmp_path, kind))
    (report,) = log.reports
    assert report.kind == expected and report.pid
    lines = (TSAN_FIXTURES / "kinds.c").read_text().splitlines()
    ours = [f for s in report.stacks for f in s.frames if f.file.endswith("kinds.c")]
    assert ours, report
    assert any(line_piece in lines[f.line - 1] for f in ours), [f.where() for f in ours]
    if kind == "race":
        assert report.global_name == "counter"
        assert [s.access["op"] for s in report.accesses if s.access] == ["read", "write"]
        assert "kinds.c" in report.summary
    if kind == "lock-order":
        assert len(report.stacks) == 2  # the two acquisitions that close the cycle


def test_clean_code_and_suppressed_reports_are_counted_not_listed(tmp_path: Path) -> None:
    assert parse_log(_run_kinds(tmp_path, "clean")).reports == ()
    log = parse_log(_run_kinds(tmp_path, "race", "race:bump\n"))
    assert log.reports == () and log.suppressed == {"race:bump": 1}


def test_frames_with_spaces_unknown_places_and_a_report_cut_short() -> None:
    cpp = parse_frame("    #3 Foo::bar(int, char const*) const /src/x.cpp:12:7 (m.so+0x1a)")
    assert cpp is not None and cpp.function == "Foo::bar(int, char const*) const"
    assert (cpp.file, cpp.line, cpp.module_file) == ("/src/x.cpp", 12, "m.so")
    null = parse_frame("    #0 <null> <null> (libc.so.6+0x9e9a9)")
    assert null is not None and (null.function, null.file, null.line) == ("", "", 0)
    bare = parse_frame("    #1 memcpy (libtsan.so.2+0x1)")
    assert bare is not None and bare.function == "memcpy" and bare.line == 0
    cut = parse_log("junk\n==================\nWARNING: ThreadSanitizer: data race (pid=7)\n"
                    "  Write of size 8 at 0x10 by thread T1:\n    #0 f /p/a.c:3 (a.so+0x1)\n")
    (report,) = cut.reports
    assert report.pid == 7 and report.accesses[0].frames[0].line == 3


# -- attribution, deduplication, findings -------------------------------------------------------

def _race(first: tuple[str, str, int], second: tuple[str, str, int], pid: int = 1) -> str:
    def stack(fn: str, path: str, line: int) -> str:
        return (f"    #0 {fn} {path}:{line} (ext.cpython-313t-x86_64-linux-gnu.so+0x10)\n"
                "    #1 method_vectorcall_NOARGS Objects/descrobject.c:447 (python3.13+0x1)\n")
    return (f"==================\nWARNING: ThreadSanitizer: data race (pid={pid})\n"
            "  Write of size 8 at 0x7f00 by thread T2:\n" + stack(*first) + "\n"
            "  Previous read of size 8 at 0x7f00 by thread T1:\n" + stack(*second) + "\n"
            "  Location is global 'hits' of size 8 at 0x7f00 (ext.so+0x42)\n\n"
            "SUMMARY: ThreadSanitizer: data race\n==================\n")


def test_reports_are_pinned_to_the_project_and_merged_by_their_pair_of_lines() -> None:
    sources = ProjectSources(files={"src/ext.c": tuple(f"line {n}" for n in range(1, 50)),
                                    "src/other.h": ()})
    build = "/tmp/pip-req-build-x1/src/ext.c"
    text = (_race(("add", build, 30), ("add", build, 28))
            + _race(("add", build, 28), ("add", build, 30))  # the same pair, other order
            + _race(("dict_set", "Objects/dictobject.c", 9), ("dict_get", "Objects/x.c", 3)))
    events = [TsanEvent(module="ext", report=r, callables=("add",), where="when 8 threads ran",
                        repro={"module": "ext", "calls": []})
              for r in parse_log(text).reports]
    tally = tsan_findings(events, sources, BOOK)
    assert tally.reports == 3 and tally.not_ours == 1
    (one,) = tally.findings
    f = one.finding
    assert f.rule == "FT209" and f.evidence == "dynamic" and f.function == "add"
    assert f.location == Location(path="src/ext.c", line=30) and f.code == "line 30"
    assert f.symbol == "hits" and f.module == "ext" and f.callable == "add"
    assert "src/ext.c:28" in f.message and "twice" not in f.message
    assert any("reported this pair 2 times" in n.message for n in f.notes)
    assert sorted(one.sites) == [("src/ext.c", 28), ("src/ext.c", 30)]


def test_suppressions_come_from_gilaudit_and_the_project(tmp_path: Path) -> None:
    lines, diags = project_suppressions(
        b'[tool.gilaudit]\ntsan-suppressions = ["race:vendored_*", "bogus", "thread:w"]\n')
    assert lines == ["race:vendored_*", "thread:w"]
    assert len(diags) == 1 and "bogus" in diags[0].message
    settings = settings_for(tmp_path, lines, 100)
    text = settings.suppressions.read_text()
    assert "race_top:new_reference" in text and text.rstrip().endswith("thread:w")
    assert (settings.iterations, settings.scaled_from) == (10, 100)
    # An extension's own leaked thread still shows: no blanket thread suppression.
    assert "\nthread:pthread_create" not in text


# -- line-level confirmation ------------------------------------------------------------------

def _static(rule: str, line: int, function: str, symbol: str, code: str) -> Finding:
    return Finding(rule=rule, name="x", category="object-state", language="c",
                   severity="error", message="m", location=Location(path="src/lazy.c",
                                                                     line=line),
                   symbol=symbol, function=function, code=code, module="lazy")


def _tsan(line: int, function: str, symbol: str | None, code: str,
          other: int | None = None) -> Finding:
    notes = (Note(message="other", location=Location(path="src/lazy.c", line=other)),) \
        if other else ()
    return Finding(rule="FT209", name="tsan-data-race", category="data-race", language="c",
                   severity="error", message="m", location=Location(path="src/lazy.c",
                                                                     line=line),
                   symbol=symbol, function=function, code=code, module="lazy",
                   callable="Table.lookup", evidence="dynamic", notes=notes)


def test_a_static_finding_is_confirmed_by_a_race_on_its_field_in_its_function() -> None:
    static = _static("FT033", 39, "Table_lookup", "Table.squares",
                     "if (self->squares == NULL) {")
    race = _tsan(40, "Table_lookup", "squares", "self->squares = build_squares();")
    assert confirms_at_line(static, race)
    marked, _ = confirm((static, race), {})
    assert marked.confirmed and marked.confirmed_by == "FT209 data race at src/lazy.c:40 " \
                                                      "(`squares`)"
    # Another function, another field, another file: not this finding's race.
    assert not confirms_at_line(_static("FT033", 12, "Table_clear", "Table.squares", ""), race)
    assert not confirms_at_line(_static("FT033", 39, "Table_lookup", "Table.cubes", ""), race)
    moved = replace(race, location=Location(path="src/other.c", line=40))
    assert not confirms_at_line(static, moved)
    # The other side of the race on the static line itself confirms it too.
    assert confirms_at_line(_static("FT041", 52, "", "", ""),
                            _tsan(40, "Table_lookup", None, "", other=52))


# -- interpreters ------------------------------------------------------------------------------

def test_tsan_builds_are_labelled_and_chosen_only_when_asked() -> None:
    probe = {"version": [3, 13, 5], "full": "3.13.5", "implementation": "cpython",
             "gil_disabled_build": 1, "gil_enabled": False, "abiflags": "t",
             "ext_suffix": ".so", "soabi": "x", "executable": "/x/python3"}
    plain = parse_probe("GILAUDIT-PROBE " + json.dumps(probe), "/x/python3", "PATH")
    tsan = parse_probe("GILAUDIT-PROBE " + json.dumps({**probe, "tsan": True,
                                                       "executable": "/y/python3"}),
                       "/y/python3", "gilaudit cache")
    assert isinstance(plain, Interpreter) and isinstance(tsan, Interpreter)
    assert "ThreadSanitizer" in tsan.label and "ThreadSanitizer" not in plain.label
    assert choose([plain, tsan]) is plain and choose([plain, tsan], tsan=True) is tsan
    assert choose([plain], tsan=True) is None


# -- end to end, on a TSan build ------------------------------------------------------------------

@pytest.fixture(scope="module")
def tsan_py() -> str:
    exe, why = tsan_python()
    if exe is None:
        pytest.skip(why)
    return exe


@pytest.fixture(scope="module")
def tsan_run(tsan_py: str, tmp_path_factory: pytest.TempPathFactory) -> StressResult:
    out = tmp_path_factory.mktemp("tsan-built")
    modules = [m for pair in TWINS.items() for m in pair]
    for module in modules:
        build_extension(_source(module), out, python=tsan_py, flags=TSAN_FLAGS)
    interpreter = describe(tsan_py, found_by="test")
    assert isinstance(interpreter, Interpreter) and interpreter.tsan
    settings = settings_for(out / "tsan", [], 100)
    options = StressOptions(threads=8, iterations=settings.iterations, trials=2, budget=60,
                            timeout=5, tsan=settings)
    return stress_modules(interpreter, modules, import_paths=[str(out)], options=options,
                          book=BOOK, repro_dir=out / "repro")


@pytest.mark.parametrize("module", sorted(RACY))
def test_each_race_is_pinned_to_the_fixtures_line(tsan_run: StressResult, module: str) -> None:
    rules, file, piece = RACY[module]
    found = [f for f in tsan_run.findings if f.module == module and f.rule in rules]
    assert found, [(f.rule, f.message) for f in tsan_run.findings if f.module == module]
    lines = _source(module).read_text().splitlines()
    for f in found:
        assert f.location is not None and f.location.path.endswith(file) and f.function
        assert f.code == lines[f.location.line - 1].strip()
        assert f.callable and f.reproducer and Path(f.reproducer).is_file()
        assert any(n.message.startswith("this access") for n in f.notes)
    assert any(piece in f.code for f in found), [f.code for f in found]
    (stress,) = [m for m in tsan_run.summary.modules if m.module == module]
    assert stress.verdict == "problems" and "ThreadSanitizer" in stress.reason


@pytest.mark.parametrize("twin", sorted(TWINS.values()))
def test_each_locked_twin_comes_out_clean(tsan_run: StressResult, twin: str) -> None:
    assert [f.rule for f in tsan_run.findings if f.module == twin] == []
    (stress,) = [m for m in tsan_run.summary.modules if m.module == twin]
    assert stress.verdict == "clean", stress.reason


def test_the_summary_counts_what_was_not_shown_and_says_the_calls_were_scaled(
        tsan_run: StressResult) -> None:
    tsan = tsan_run.summary.tsan
    assert tsan is not None and tsan["findings"] == sum(
        1 for f in tsan_run.findings if f.rule in ("FT209", "FT210", "FT211", "FT212"))
    assert tsan["reports"] >= tsan["findings"] and tsan["scaled_from"] == 100
    assert "scaled from 100 to 10" in tsan_run.summary.caveat
    assert all(isinstance(n, int) for n in tsan["suppressed"].values())


def test_the_reproducer_exits_1_when_tsan_reports_the_same_pair(tsan_run: StressResult) -> None:
    script = next(f.reproducer for f in tsan_run.findings
                  if f.module == "racy_counter" and f.rule == "FT209" and f.reproducer)
    codes = []
    for _ in range(3):  # the two threads must overlap at least once
        proc = subprocess.run([sys.executable, script], capture_output=True, text=True,
                              timeout=300, check=False)
        codes.append(proc.returncode)
        if proc.returncode == 1:
            assert "reproduced" in proc.stdout
            break
    assert 1 in codes, codes


def test_cli_scan_with_tsan_stress_confirms_the_static_finding_at_its_line(
        tsan_py: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name in [n for n in os.environ if n.startswith("PIP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    project = tmp_path / "project"
    shutil.copytree(DYNAMIC / "project", project)
    source = project / "fixturepkg" / "clean_funcs.c"
    source.write_text((TSAN_FIXTURES / "lazy.c").read_text()
                      .replace("PyInit_lazy(", "PyInit_clean_funcs(")
                      .replace('"lazy.Table"', '"fixturepkg.clean_funcs.Table"')
                      .replace('"lazy", "A table', '"clean_funcs", "A table'))
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    start, end = text.index("\n[build-system]\n"), text.index("\n[project]\n")
    pyproject.write_text(text[:start + 1] + '[build-system]\nrequires = []\n'
                         'build-backend = "stdlib_backend"\nbackend-path = ["."]\n'
                         + text[end:] + '\n[tool.gilaudit]\n'
                         'tsan-suppressions = ["race:some_vendored_function"]\n')
    out, sarif, html = (tmp_path / "report.json", tmp_path / "report.sarif",
                        tmp_path / "report.html")
    code = main(["scan", str(project), "--stress", "--tsan", "--python", tsan_py, "--html",
                 str(html),
                 "--pip-arg=--no-index", "--timeout", "5", "--trials", "2",
                 "--format", "json", "-o", str(out), "--sarif", str(sarif), "--no-cache",
                 "--jobs", "1", "--no-progress"])
    capsys.readouterr()
    data = json.loads(out.read_text())
    validate_report(data)
    assert code == 1, data["diagnostics"]
    assert not [d for d in data["diagnostics"] if d["kind"] == "config"]
    races = [f for f in data["findings"] if f["rule"] == "FT209"]
    assert races and races[0]["path"] == "fixturepkg/clean_funcs.c", races
    assert races[0]["function"] == "Table_lookup" and "squares" in races[0]["code"]
    confirmed = [f for f in data["findings"] if f["evidence"] == "static" and f["confirmed_by"]]
    assert confirmed and all(f["function"] == "Table_lookup" for f in confirmed), [
        (f["rule"], f["line"], f["function"], f["confirmed"]) for f in data["findings"]]
    by = confirmed[0]["confirmed_by"]
    assert by.startswith("FT209 data race") and "fixturepkg/clean_funcs.c:" in by, by
    assert data["stress"]["tsan"]["findings"] >= 1
    results = json.loads(sarif.read_text())["runs"][0]["results"]
    assert any(r["properties"].get("confirmedBy") for r in results)
    assert "confirmed by ThreadSanitizer: FT209" in html.read_text()
    assert main(["report", str(out), "--format", "text"]) == 1
    assert "confirmed by a ThreadSanitizer run: FT209" in capsys.readouterr().out


def test_a_fixture_directory_holds_both_halves_of_each_pair() -> None:
    for racy, twin in TWINS.items():
        assert _source(racy).is_file() and _source(twin).is_file()
    assert (FIXTURES / "dynamic" / "tsan" / "kinds.c").is_file()


def test_each_report_is_pinned_to_the_call_or_test_that_was_running() -> None:
    first = _race(("add", "/p/src/ext.c", 30), ("add", "/p/src/ext.c", 28), pid=41)
    second = _race(("sub", "/p/src/ext.c", 40), ("sub", "/p/src/ext.c", 41), pid=41)
    log = "noise before\n" + first + second + (
        "ThreadSanitizer: Matched 3 suppressions (pid=41):\n3 race_top:new_reference\n")
    at_second = log.index("WARNING", log.index(second[30:]) - 60)
    records = [{"kind": "start", "pid": 41},
               {"kind": "begin", "target": "add", "tsan_offset": 0},
               {"kind": "end"},
               {"kind": "begin", "target": "sub", "tsan_offset": at_second - 20}]
    suppressed: dict[str, int] = {}
    pinned = pinned_reports({41: log, 99: first}, records, suppressed)
    assert [b.get("target") for _r, b in pinned] == ["add", "sub", None]
    assert suppressed == {"race_top:new_reference": 3}


def test_a_crash_under_tsan_is_still_a_crash_with_faulthandler_stacks(tsan_py: str,
                                                                      tmp_path: Path) -> None:
    from gilaudit.dynamic.confined import run_child  # noqa: PLC0415

    out = tmp_path / "built"
    # -O0: at -O1 gcc drops crashy.boom()'s store through a null pointer (undefined behaviour).
    build_extension(DYNAMIC / "crashy.c", out, python=tsan_py,
                    flags=("-fsanitize=thread", "-g", "-O0"))
    supp = settings_for(tmp_path / "tsan", [], 100).suppressions
    plan = {"threads": 1, "iterations": 1, "trials": 1, "seed": 0, "timeout": 5, "budget": 30,
            "exclude": [], "done": [], "probes": {}, "python_callables": False, "troubled": []}
    run = run_child(tsan_py, "drive", "crashy", import_paths=[str(out)], timeout=60,
                    plan=plan, extra_env={"PYTHON_GIL": "0"}, tsan=supp)
    assert run.code is not None and run.code < 0, (run.code, run.stderr_tail[-500:])
    assert "Fatal Python error" in run.fault
