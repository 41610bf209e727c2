"""The stress phase end to end on real fixture extensions, built for the interpreter at hand.

Every dynamic rule fires on a fixture that misbehaves even with the GIL (it releases the GIL
around shared state, crashes, deadlocks or raises only concurrently) and stays silent on a
clean control. The tests that need a free-threaded build (the GIL re-enabled at import, a race
the GIL used to prevent) run when GILAUDIT_TEST_PYTHON names one or a python3.1Nt is on PATH,
and are skipped with that reason otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import free_threaded_python
from fixtures.dynamic.build import FIXTURES, build_extension
from gilaudit.cli import main
from gilaudit.dynamic.confined import ChildRun
from gilaudit.dynamic.evidence import death_of
from gilaudit.dynamic.interpreters import Interpreter, describe
from gilaudit.dynamic.stress import StressOptions, StressResult, stress_modules
from gilaudit.rulebook import load_rulebook

BOOK = load_rulebook()
FAST = StressOptions(threads=8, iterations=100, trials=5, seed=0, budget=40.0, timeout=2.0)
# rule -> (a fixture module it must fire on, a clean control it must stay silent on)
DYNAMIC_FIXTURES = {
    "FT200": ("undeclared", "clean_counter"),  # needs a free-threaded build to fire
    "FT201": ("import_crash", "clean_funcs"),
    "FT202": ("crashy", "clean_counter"),
    "FT203": ("deadlock", "clean_funcs"),
    "FT204": ("racy_counter", "clean_counter"),
    "FT205": ("racy_raise", "clean_funcs"),
    "FT206": ("crashy", "clean_counter"),  # boom() crashes with one thread
    "FT207": ("slowpoke", "clean_funcs"),  # next_message() waits forever with one thread
}
NEEDS_FREE_THREADING = {"FT200"}
# Rules whose evidence comes from a project's own test suite (tests/test_stress_tests.py),
# and from ThreadSanitizer's reports (tests/test_tsan.py: each with its fixture pair).
FROM_TEST_SUITES = {"FT208"}
FROM_TSAN = {"FT209", "FT210", "FT211", "FT212"}


def _interpreter(python: str = sys.executable) -> Interpreter:
    got = describe(python, found_by="--python")
    assert isinstance(got, Interpreter), got
    return got


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dynamic-fixtures")
    for source in sorted(FIXTURES.glob("*.c")):
        build_extension(source, out)
    return out


def _stress(modules: list[str], paths: list[Path], tmp_path: Path,
            options: StressOptions = FAST, python: str = sys.executable,
            python_callables: bool = True) -> StressResult:
    # Many tests use pure-Python stand-ins for an extension: they are driven on request.
    options = dataclasses.replace(options, python_callables=python_callables)
    return stress_modules(_interpreter(python), modules,
                          import_paths=[str(p) for p in paths], options=options, book=BOOK,
                          repro_dir=tmp_path / "repro")


def _rules(result: StressResult, module: str) -> set[str]:
    return {f.rule for f in result.findings if f.module == module}


def test_every_dynamic_rule_has_a_fire_and_a_pass_fixture() -> None:
    dynamic = {r.id for r in BOOK.rules.values() if r.phase == "dynamic"}
    assert dynamic - FROM_TEST_SUITES - FROM_TSAN == set(DYNAMIC_FIXTURES)
    for fire, clean in DYNAMIC_FIXTURES.values():
        assert (FIXTURES / f"{fire}.c").is_file() and (FIXTURES / f"{clean}.c").is_file()


GIL_BUILD_RULES = sorted(set(DYNAMIC_FIXTURES) - NEEDS_FREE_THREADING)


@pytest.mark.parametrize("rule", GIL_BUILD_RULES)
def test_fires(rule: str, built: Path, tmp_path: Path) -> None:
    module = DYNAMIC_FIXTURES[rule][0]
    options = FAST
    if module == "deadlock":  # each call sleeps: fewer calls, the hang shows all the same
        options = StressOptions(threads=8, iterations=20, trials=2, budget=40.0, timeout=2.0)
    got = _stress([module], [built], tmp_path, options)
    assert rule in _rules(got, module), [f.message for f in got.findings]
    for f in got.findings:
        assert f.module == module and f.location is None and f.evidence == "dynamic"
        assert f.message and "{" not in f.message and f.fix
        assert f.reproducer and Path(f.reproducer).is_file()


@pytest.mark.parametrize("rule", sorted(DYNAMIC_FIXTURES))
def test_stays_silent(rule: str, built: Path, tmp_path: Path) -> None:
    module = DYNAMIC_FIXTURES[rule][1]
    got = _stress([module], [built], tmp_path)
    assert got.findings == (), [f.message for f in got.findings]
    assert got.summary.modules[0].verdict == "clean"


# Different arguments in different threads, and sequences of one object's methods: each
# fixture's problem shows only that way, and its twin must stay clean.
DIVERSITY = {
    "argorder": ("FT203", "transfer"),    # a lock order chosen by the argument
    "sortedbag": ("FT204", "SortedBag"),  # inserts race only with different values
    "pair": ("FT204", "Pair"),            # inc() and twice() corrupt it only interleaved
}


@pytest.mark.parametrize("module", sorted(DIVERSITY))
def test_what_only_diversity_finds(module: str, built: Path, tmp_path: Path) -> None:
    rule, callable_ = DIVERSITY[module]
    got = _stress([module], [built], tmp_path, StressOptions(threads=8, iterations=100,
                                                              trials=5, budget=60, timeout=2))
    found = [f for f in got.findings if f.rule == rule]
    assert found, [f.message for f in got.findings]
    assert all(f.callable and f.callable.startswith(callable_) for f in found)
    assert all(f.reproducer and Path(f.reproducer).is_file() for f in found)


@pytest.mark.parametrize("module", ["argorder_ok", "sortedbag_ok", "pair_ok"])
def test_the_locked_twins_stay_clean(module: str, built: Path, tmp_path: Path) -> None:
    got = _stress([module], [built], tmp_path, StressOptions(threads=8, iterations=100,
                                                              trials=5, budget=60, timeout=2))
    assert got.findings == (), [f.message for f in got.findings]
    (stressed,) = got.summary.modules
    assert stressed.verdict == "clean"
    assert {d.kind for d in stressed.driven} & {"arguments", "sequence"}


def test_slow_or_stuck_with_one_thread_is_no_error(built: Path, tmp_path: Path) -> None:
    got = _stress(["slowpoke"], [built], tmp_path)
    assert [f.rule for f in got.findings] == ["FT207"]
    (stuck,) = got.findings
    assert stuck.severity == "warning" and stuck.callable == "next_message"
    driven = {d.name: d for d in got.summary.modules[0].driven}
    # sizes stay sane: repeat_text's count is named like one, spin's argument never huge
    assert "2 ** 31" not in driven["repeat_text"].call and "2 ** 31" not in driven["spin"].call


def test_every_diversity_reproducer_replays_its_programs(built: Path, tmp_path: Path) -> None:
    got = _stress(["pair"], [built], tmp_path, StressOptions(threads=8, iterations=100,
                                                              trials=5, budget=60, timeout=2))
    (finding,) = [f for f in got.findings if f.rule == "FT204"]
    text = Path(str(finding.reproducer)).read_text()
    assert "'programs'" in text and "'steps'" in text
    codes = [subprocess.run([sys.executable, str(finding.reproducer)], capture_output=True,
                            text=True, timeout=120, check=False).returncode for _ in range(3)]
    assert 1 in codes and set(codes) <= {0, 1}


def test_racy_counter_is_found_through_the_object_and_the_module_state(built: Path,
                                                                        tmp_path: Path) -> None:
    got = _stress(["racy_counter"], [built], tmp_path)
    wrong = {f.callable: f for f in got.findings if f.rule == "FT204"}
    assert set(wrong) == {"Counter.increment", "add"}
    assert "obj.value is" in wrong["Counter.increment"].message
    assert "(serially 800)" in wrong["Counter.increment"].message  # 8 threads x 100 calls
    assert "mod.get() is" in wrong["add"].message
    module = got.summary.modules[0]
    assert module.verdict == "problems"
    driven = {d.name: d for d in module.driven}
    assert driven["Counter.increment"].setup == "mod.Counter()"
    assert driven["Counter.increment"].signature == "text signature"
    assert "obj.value" in driven["Counter.increment"].compared


def test_crashes_are_attributed_and_the_rest_of_the_module_goes_on(built: Path,
                                                                   tmp_path: Path) -> None:
    got = _stress(["crashy"], [built], tmp_path)
    crashes = {f.callable: f for f in got.findings if f.rule in ("FT202", "FT206")}
    assert set(crashes) == {"boom", "touch"}
    # boom() crashes with one thread: a bug, but not a free-threading one
    assert crashes["boom"].rule == "FT206" and crashes["touch"].rule == "FT202"
    assert "probed its arguments, serially" in crashes["boom"].message
    assert "threads x" in crashes["touch"].message and "SIGSEGV" in crashes["touch"].message
    notes = "\n".join(n.message for n in crashes["touch"].notes)
    # faulthandler names the crashing callable, unless a second thread crashing at the same
    # moment killed the process while the first was still writing its dump, or before it
    # wrote anything (under load, 8 threads crash together; a clean-clone CI rehearsal beside
    # a benchmark got no dump at all): then the message's call is all there is to go on.
    if "Current thread" in notes or "Thread 0x" in notes:
        assert '<gilaudit: touch>' in notes
    else:
        assert "as mod.touch(" in crashes["touch"].message
    assert got.summary.modules[0].children >= 3  # a fresh child after each crash
    stopped = {u.name: u.reason for u in got.summary.modules[0].undriven}
    assert "crash" in stopped["touch"] and "crash" in stopped["boom"]


def test_a_deadlock_between_two_entry_points_is_a_hang_with_both_stacks(built: Path,
                                                                        tmp_path: Path) -> None:
    options = StressOptions(threads=8, iterations=20, trials=2, budget=40.0, timeout=2.0)
    got = _stress(["deadlock"], [built], tmp_path, options)
    (hang,) = [f for f in got.findings if f.rule == "FT203"]
    assert hang.callable == "lock_a_then_b + lock_b_then_a"
    dump = "\n".join(n.message for n in hang.notes)
    assert "Timeout (" in dump
    assert "<gilaudit: lock_a_then_b>" in dump and "<gilaudit: lock_b_then_a>" in dump
    assert {d.name for d in got.summary.modules[0].driven} == {"lock_a_then_b",
                                                                "lock_b_then_a"}


def test_exceptions_only_under_concurrency(built: Path, tmp_path: Path) -> None:
    got = _stress(["racy_raise"], [built], tmp_path)
    (found,) = got.findings
    assert found.rule == "FT205" and found.callable == "check"
    assert "RuntimeError: concurrent use" in found.message
    assert "serially raised nothing" in found.message


def _run_repro(path: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, path], capture_output=True, text=True,
                          timeout=timeout, check=False, cwd=Path(path).parent)


def test_every_reproducer_reproduces(built: Path, tmp_path: Path) -> None:
    got = _stress(["racy_counter", "racy_raise", "crashy"], [built], tmp_path)
    assert len(got.findings) == 5
    for f in got.findings:
        assert f.reproducer is not None
        proc = _run_repro(f.reproducer)
        assert proc.returncode != 0, (f.message, proc.stdout, proc.stderr)
        assert proc.stdout.startswith("gilaudit reproducer:")


def test_a_reproducer_on_a_clean_module_does_not_cry_wolf(built: Path, tmp_path: Path) -> None:
    from gilaudit.dynamic.reproducer import write_reproducer  # noqa: PLC0415

    params = {"category": "wrong-result", "module": "clean_counter", "mode": "state",
              "calls": [{"name": "Counter.increment", "call": "obj.increment()",
                         "setup": "mod.Counter()"}],
              "threads": 8, "iterations": 100, "trials": 3, "seed": 0, "timeout": 20,
              "import_paths": [str(built)], "readers": ["obj.value"],
              "expected_state": {"obj.value": "800"}}
    path = write_reproducer(params, python=sys.executable, directory=tmp_path, taken=set())
    proc = _run_repro(str(path))
    assert proc.returncode == 0 and "not reproduced in 3 trial(s)" in proc.stdout, proc.stdout


def _alone(driven: tuple[Any, ...]) -> set[str]:
    """The callables driven on their own (not with varied arguments, not in sequences)."""
    return {d.name for d in driven if d.kind not in ("arguments", "sequence")}


def _python_module(tmp_path: Path, name: str, source: str) -> Path:
    folder = tmp_path / "pymods"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return folder


def test_a_module_that_crashes_exits_and_hangs_loses_nothing_else(tmp_path: Path) -> None:
    folder = _python_module(tmp_path, "mixed", """
        import ctypes, os, threading
        def alpha(x):
            return x * 2
        def crash_me():
            ctypes.string_at(0)
        def beta(x):
            return [x]
        def wait_forever():
            threading.Event().wait()
        def leave():
            os._exit(3)
        def gamma(x, y):
            return (x, y)
        """)
    got = _stress(["mixed"], [folder], tmp_path)
    by = {f.callable: f for f in got.findings}
    # each with one thread: bugs, but not free-threading ones
    assert by["crash_me"].rule == "FT206" and "SIGSEGV" in by["crash_me"].message
    assert by["wait_forever"].rule == "FT207" and by["wait_forever"].severity == "warning"
    assert by["leave"].rule == "FT206" and "exited with status 3" in by["leave"].message
    module = got.summary.modules[0]
    assert _alone(module.driven) == {"alpha", "beta", "gamma"}
    assert module.verdict == "problems" and module.children >= 4


def test_methods_of_an_unusable_bare_object_are_one_finding(tmp_path: Path) -> None:
    folder = _python_module(tmp_path, "streams", """
        import ctypes
        class Reader:
            def __init__(self, source=None):
                self.source = source
            def read(self):
                if self.source is None:
                    ctypes.string_at(0)   # like zstandard's readers made without a source
                return self.source
            def read_all(self):
                if self.source is None:
                    ctypes.string_at(0)
                return [self.source]
            def size(self):
                return 0
        """)
    got = _stress(["streams"], [folder], tmp_path)
    (crash,) = got.findings
    assert crash.rule == "FT206" and crash.callable == "Reader"
    assert "2 of its methods on an object made by mod.Reader()" in crash.message
    assert "Py_TPFLAGS_DISALLOW_INSTANTIATION" in crash.notes[0].message
    assert _alone(got.summary.modules[0].driven) == {"Reader.size"}


def test_a_difference_only_equality_can_see_is_a_wrong_result(tmp_path: Path) -> None:
    folder = _python_module(tmp_path, "tally", """
        import time
        class Tally:
            def __init__(self):
                self._n = 0
            def bump(self):
                n = self._n
                time.sleep(0)        # lets another thread in: a lost update
                self._n = n + 1
            def __eq__(self, other):
                return isinstance(other, Tally) and self._n == other._n
            __hash__ = None
        """)
    got = _stress(["tally"], [folder], tmp_path,
                  StressOptions(threads=8, iterations=50, trials=5, budget=30, timeout=5))
    (wrong,) = [f for f in got.findings if f.callable == "Tally.bump"]
    assert wrong.rule == "FT204" and "obj == the serial object is False" in wrong.message
    assert wrong.reproducer is not None
    assert _run_repro(wrong.reproducer).returncode == 1


def test_pure_python_code_of_the_package_is_driven_only_on_request(built: Path,
                                                                  tmp_path: Path) -> None:
    folder = tmp_path / "pure"
    folder.mkdir()
    (folder / "mixedpkg.py").write_text(textwrap.dedent("""
        import sortedbag_ok

        def helper(x):
            return x

        class Formatter:
            def fmt(self, x):
                return str(x)

        class Bag(sortedbag_ok.SortedBag):  # reached through the extension's type
            def first(self):
                return self.tolist()[:1]
    """))
    default = _stress(["mixedpkg"], [folder, built], tmp_path / "a", python_callables=False)
    (module,) = default.summary.modules
    skipped = {u.name: u.reason for u in module.undriven}
    assert "pure Python" in skipped["helper"] and "pure Python" in skipped["Formatter"]
    assert "Bag.first" in {d.name for d in module.driven}
    asked = _stress(["mixedpkg"], [folder, built], tmp_path / "b", python_callables=True)
    assert {"helper", "Formatter.fmt"} <= {d.name for d in asked.summary.modules[0].driven}


def test_dangerous_names_are_skipped_and_listed(tmp_path: Path) -> None:
    marker = tmp_path / "touched"
    folder = _python_module(tmp_path, "tools", f"""
        def compute(x):
            return x + 1
        def remove_everything():
            open({str(marker)!r}, "w").close()
        """)
    got = _stress(["tools"], [folder], tmp_path)
    module = got.summary.modules[0]
    assert _alone(module.driven) == {"compute"}
    (skipped,) = module.undriven
    assert skipped.name == "remove_everything" and skipped.skipped and "deletes" in skipped.reason
    assert not marker.exists()


def test_the_surface_is_what_the_module_exposes_not_what_its_objects_say(
        tmp_path: Path) -> None:
    folder = tmp_path / "pymods"
    (folder / "pkgx").mkdir(parents=True)
    (folder / "pkgx" / "__init__.py").write_text("from pkgx._impl import dumps, Box\n")
    (folder / "pkgx" / "_impl.py").write_text(textwrap.dedent("""
        from os.path import join
        def dumps(x):
            return repr(x)
        dumps.__module__ = "pkgx"          # as orjson.orjson's functions say "orjson"
        class Box:
            def __init__(self):
                self.items = []
            def remove(self, x):            # a container operation, not a file deletion
                if x in self.items:
                    self.items.remove(x)
            def add(self, *args):           # *args: tried with one and two arguments too
                if not args:
                    raise TypeError("add() needs something")
                self.items.extend(args)
        Box.__module__ = "pkgx"
        def remove_all_files(path):
            raise AssertionError("must never be called")
        class Trouble(Exception):
            pass
        """))
    (folder / "privmod.py").write_text("def _escape(s):\n    return s.replace('<', '&lt;')\n")
    # like _brotli, whose types say "brotli": a package that is not loaded claims them
    (folder / "_claims.py").write_text("def compress(b):\n    return b * 2\n"
                                       "compress.__module__ = 'claims'\n")
    got = _stress(["pkgx._impl", "privmod", "_claims"], [folder], tmp_path,
                  StressOptions(threads=4, iterations=20, trials=1, budget=30, timeout=2))
    by = {m.module: m for m in got.summary.modules}
    driven = {d.name: d for d in by["pkgx._impl"].driven}
    assert {"dumps", "Box.remove", "Box.add"} <= set(driven)
    assert driven["Box.add"].call.startswith("obj.add(") and driven["Box.add"].call != \
        "obj.add()"
    undriven = {u.name: u for u in by["pkgx._impl"].undriven}
    assert undriven["remove_all_files"].skipped and "deletes files" in \
        undriven["remove_all_files"].reason
    assert "exception class" in undriven["Trouble"].reason
    assert "join" not in driven and "join" not in undriven  # os.path's, not this module's
    assert _alone(by["privmod"].driven) == {"_escape"}  # only private names: used
    assert _alone(by["_claims"].driven) == {"compress"}
    assert got.findings == ()


def test_a_module_whose_every_call_raises_is_not_exercised(tmp_path: Path) -> None:
    folder = _python_module(tmp_path, "grumpy", """
        def no(*args):
            raise ValueError("never")
        """)
    got = _stress(["grumpy"], [folder], tmp_path,
                  StressOptions(threads=4, iterations=20, trials=1, budget=30, timeout=2))
    (module,) = got.summary.modules
    assert module.verdict == "not exercised" and "raised" in module.reason
    assert module.driven[0].raises == "ValueError"


def test_a_missing_optional_dependency_is_a_diagnostic_not_a_finding(tmp_path: Path) -> None:
    folder = _python_module(tmp_path, "needs_backend", "import _no_such_backend_here\n")
    got = _stress(["needs_backend", "no_such_module_at_all"], [folder], tmp_path)
    assert {f.module for f in got.findings} == {"no_such_module_at_all"}  # itself missing
    (diag,) = got.diagnostics
    assert diag.kind == "missing-dependency" and "_no_such_backend_here" in diag.message
    verdicts = {m.module: m.verdict for m in got.summary.modules}
    assert verdicts["needs_backend"] == "could not run"


def test_an_interpreter_that_cannot_start_the_child_blames_no_module(built: Path,
                                                                    tmp_path: Path) -> None:
    # Answers gilaudit's probe (run with -I) like the real interpreter, then refuses to start
    # anything else: as an interpreter that cannot start under the resource limits would.
    wrapper = tmp_path / "python-wrapper"
    wrapper.write_text(f'#!/bin/sh\nif [ "$1" = "-I" ]; then exec {sys.executable} "$@"; fi\n'
                       'echo "cannot start" >&2\nexit 7\n')
    wrapper.chmod(0o755)
    import dataclasses  # noqa: PLC0415

    interpreter = dataclasses.replace(_interpreter(), executable=str(wrapper))
    got = stress_modules(interpreter, ["clean_funcs"], import_paths=[str(built)],
                         options=FAST, book=BOOK, repro_dir=tmp_path / "repro")
    assert got.findings == ()
    (module,) = got.summary.modules
    assert module.verdict == "could not run" and "did not start" in module.reason
    (diag,) = got.diagnostics
    assert diag.kind == "stress-child-failed" and "cannot start" in diag.message


def test_a_deliberate_guard_is_a_warning_and_a_reproducer_that_cannot_start_says_so(
        built: Path, tmp_path: Path) -> None:
    got = _stress(["racy_raise"], [built], tmp_path)
    (found,) = got.findings
    assert found.severity == "warning" and "deliberate" in found.notes[0].message
    assert found.reproducer is not None
    script = Path(found.reproducer)
    script.write_text(script.read_text().replace("'racy_raise'", "'racy_raise_gone'"))
    proc = _run_repro(str(script))
    assert proc.returncode == 2 and "could not run the reproducer" in proc.stdout


@pytest.mark.usefixtures("offline_pip")
def test_a_wheel_targets_reproducers_keep_their_environment(built: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str],
                                                            ) -> None:
    import zipfile  # noqa: PLC0415

    from packaging.tags import sys_tags  # noqa: PLC0415

    so = next(built.glob("crashy.*"))
    tag = str(next(iter(sys_tags())))
    wheel = tmp_path / f"crashy-1.0-{tag}.whl"
    info = "crashy-1.0.dist-info"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(so.name, so.read_bytes())
        z.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: crashy\nVersion: 1.0\n")
        z.writestr(f"{info}/WHEEL", f"Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: "
                                    f"false\nTag: {tag}\n")
        z.writestr(f"{info}/RECORD", f"{so.name},,\n{info}/METADATA,,\n{info}/WHEEL,,\n"
                                     f"{info}/RECORD,,\n")
    out = tmp_path / "r.json"
    code = main(["stress", str(wheel), "--python", sys.executable, "--timeout", "2",
                 "--trials", "2", "--format", "json", "-o", str(out), "--no-progress",
                 "--pip-arg=--no-index"])
    capsys.readouterr()
    data = json.loads(out.read_text())
    assert code == 1, data["diagnostics"]
    repro = next(f["reproducer"] for f in data["findings"] if f["callable"] == "boom")
    python = data["stress"]["interpreter"]["executable"]
    assert "gilaudit-repro/envs/" in python and Path(python).exists()
    proc = subprocess.run([python, repro], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode < 0 or proc.returncode == 139, proc.stdout + proc.stderr


def test_verdicts_never_call_an_unexercised_module_clean(built: Path, tmp_path: Path) -> None:
    folder = _python_module(tmp_path, "empty_mod", "VALUE = 1\n")
    got = _stress(["empty_mod", "import_crash", "import_hang", "import_exit", "no_such_module",
                   "clean_funcs"], [built, folder], tmp_path,
                  StressOptions(threads=4, iterations=20, trials=1, budget=20, timeout=2,
                                import_timeout=3))
    verdicts = {m.module: m.verdict for m in got.summary.modules}
    assert verdicts == {"empty_mod": "not exercised", "import_crash": "could not run",
                        "import_hang": "could not run", "import_exit": "could not run",
                        "no_such_module": "could not run", "clean_funcs": "clean"}
    failures = {f.module: f.message for f in got.findings if f.rule == "FT201"}
    assert set(failures) == {"import_crash", "import_hang", "import_exit", "no_such_module"}
    assert "SIGSEGV" in failures["import_crash"] and "hung" in failures["import_hang"]
    assert "ModuleNotFoundError" in failures["no_such_module"]


def test_megabytes_of_output_and_unbounded_allocation_do_not_stop_the_run(
        built: Path, tmp_path: Path) -> None:
    folder = _python_module(tmp_path, "hog", """
        def grab(x):
            chunks = []
            while True:
                chunks.append(bytearray(50 * 1024 * 1024))
        def fine(x):
            return x
        """)
    options = StressOptions(threads=4, iterations=5, trials=1, budget=60, timeout=10,
                            memory_bytes=1 << 30)
    got = _stress(["chatty", "hog"], [built, folder], tmp_path, options)
    verdicts = {m.module: m for m in got.summary.modules}
    assert verdicts["chatty"].verdict == "clean"
    assert "fine" in {d.name for d in verdicts["hog"].driven}  # MemoryError, not a dead run


def test_a_gil_build_says_what_it_cannot_see(built: Path, tmp_path: Path) -> None:
    got = _stress(["undeclared"], [built], tmp_path)
    if _interpreter().free_threaded:
        pytest.skip("the running interpreter is free-threaded")
    assert got.findings == ()
    assert got.summary.modules[0].gil_reenabled is None
    assert "GIL" in got.summary.caveat and "cannot" in got.summary.caveat


def test_code_that_holds_the_gil_is_clean_on_a_gil_build(built: Path, tmp_path: Path) -> None:
    if _interpreter().free_threaded:
        pytest.skip("the running interpreter is free-threaded: see the ft tests below")
    got = _stress(["gil_racy"], [built], tmp_path,
                  StressOptions(threads=8, iterations=500, trials=5, budget=60, timeout=5))
    assert got.findings == () and got.summary.modules[0].verdict == "clean"


# -- the parts that read free-threaded output, on recorded real output ------------------------

RECORDED_CRASH = """\
Fatal Python error: Segmentation fault

<Cannot show all threads while the GIL is disabled>
Stack (most recent call first):
  File "<gilaudit: touch>", line 1 in <module>
  File "<prefix>/lib/python3.15t/threading.py", line 1016 in run
  File "<prefix>/lib/python3.15t/threading.py", line 1074 in _bootstrap_inner
  File "<prefix>/lib/python3.15t/threading.py", line 1036 in _bootstrap

Current thread's C stack trace (most recent call first):
  Binary file "<prefix>/bin/python3.15t", at _Py_DumpStack+0x2e [0xXXXXXXXXXXXX]
  Binary file "<builddir>/crashy.cpython-315t-x86_64-linux-gnu.so", at +0x1109 [0xXXXXXXXXXXXX]
"""
RECORDED_HANG = """\
Timeout (0:00:02)!
Thread 0xXXXXXXXXXXXXXXXX [t-two] (most recent call first):
  File "<gilaudit: lock_b_then_a>", line 1 in <module>
  File "<prefix>/lib/python3.15t/threading.py", line 1016 in run

Thread 0xXXXXXXXXXXXXXXXX [t-one] (most recent call first):
  File "<gilaudit: lock_a_then_b>", line 1 in <module>
  File "<prefix>/lib/python3.15t/threading.py", line 1016 in run

Thread 0xXXXXXXXXXXXXXXXX [python3.15t] (most recent call first):
  File "<prefix>/lib/python3.15t/threading.py", line 1125 in join
"""


def _run(records: list[dict[str, object]], code: int | None, fault: str) -> ChildRun:
    return ChildRun(records=records, code=code, stdout_tail="", stderr_tail="", fault=fault)


def test_a_free_threaded_crash_dump_names_the_crashing_callable() -> None:
    begin = {"kind": "begin", "target": "*", "phase": "together", "trial": 0, "seed": 0,
             "threads": 8, "iterations": 100, "call": "mod.touch(1); mod.other()"}
    death = death_of(_run([begin], -11, RECORDED_CRASH), 10)
    assert death is not None and death.category == "crash"
    assert death.callables == ("touch",) and "SIGSEGV" in death.how
    assert death.dump.index("Stack (most recent") < death.dump.index("C stack trace")


def test_a_free_threaded_hang_dump_names_every_waiting_callable() -> None:
    begin = {"kind": "begin", "target": "*", "phase": "together", "trial": 1, "seed": 1,
             "threads": 8, "iterations": 100, "call": "mod.lock_a_then_b(); mod.lock_b_then_a()"}
    death = death_of(_run([begin], 1, RECORDED_HANG), 2)
    assert death is not None and death.category == "hang"
    assert death.callables == ("lock_a_then_b", "lock_b_then_a")
    assert "join" not in death.dump  # the main thread only waits for the workers


def test_a_journal_that_ends_cleanly_is_no_death() -> None:
    assert death_of(_run([{"kind": "done"}], 0, ""), 10) is None



# -- the command line ---------------------------------------------------------------------------

def test_cli_stress_json_and_exit_codes(built: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out" / "report.json"
    out.parent.mkdir()
    common = ["--import-path", str(built), "--python", sys.executable, "--timeout", "2",
              "--trials", "3", "--format", "json", "-o", str(out), "--no-progress"]
    assert main(["stress", "racy_counter", *common]) == 1
    data = json.loads(out.read_text())
    assert data["schema"] == 1 and data["stress"]["modules"][0]["verdict"] == "problems"
    assert data["stress"]["interpreter"]["executable"] == sys.executable
    assert data["stress"]["settings"]["trials"] == 3
    for f in data["findings"]:
        assert f["path"] is None and f["line"] is None and f["module"] == "racy_counter"
        assert f["callable"] and f["evidence"] == "dynamic"
        assert Path(f["reproducer"]).parent == out.parent / "gilaudit-repro"
    assert data["summary"]["verdicts"] == {"racy_counter": "problems"}
    assert main(["stress", "clean_funcs", *common]) == 0
    assert main(["stress", "import_crash", *common]) == 3  # nothing could be run
    assert main(["stress", "clean_funcs", *common[:-5], "--threads", "0"]) == 2
    capsys.readouterr()


def test_cli_stress_with_no_interpreter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_python = tmp_path / "python3.14t"
    not_python.write_text("#!/bin/sh\necho hello\n")
    not_python.chmod(0o755)
    code = main(["stress", "anything", "--python", str(not_python), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 3
    assert "no-interpreter" in out and "bad-interpreter" in out


@pytest.mark.usefixtures("offline_pip")
def test_cli_stress_of_a_wheel_that_does_not_install(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    wheel = tmp_path / "broken-1.0-cp311-cp311-linux_x86_64.whl"
    wheel.write_bytes(b"PK\x03\x04 this is not a zip archive")
    out = tmp_path / "r.json"
    code = main(["stress", str(wheel), "--python", sys.executable, "--format", "json",
                 "-o", str(out), "--no-progress", "--pip-arg=--no-index"])
    capsys.readouterr()
    data = json.loads(out.read_text())
    assert code == 3
    assert [d["kind"] for d in data["diagnostics"]] == ["install-failed"]
    assert data["stress"]["modules"] == []


def test_a_whole_run_budget_is_shared_and_kept(built: Path, tmp_path: Path) -> None:
    import time  # noqa: PLC0415

    options = StressOptions(threads=8, iterations=100, trials=5, timeout=2.0, total_budget=8.0)
    started = time.monotonic()
    got = _stress(["deadlock", "clean_funcs"], [built], tmp_path, options)
    took = time.monotonic() - started
    assert took < 8.0 + 2 * options.timeout + 5, took
    verdicts = {m.module: m.verdict for m in got.summary.modules}
    assert verdicts["clean_funcs"] == "clean"


def test_cli_text_report_shows_the_exercised_surface(built: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["stress", "clean_counter", "--import-path", str(built), "--python",
                 sys.executable, "--timeout", "2", "--trials", "2", "--no-progress",
                 "--color", "never", "--repro-dir", os.devnull + "-unused"])
    out = capsys.readouterr().out
    assert code == 0
    assert "clean_counter: clean" in out
    assert "driven Counter.increment: obj.increment() on mod.Counter()" in out
    assert "No issues found" in out


@pytest.mark.usefixtures("offline_pip")
def test_scan_with_stress_installs_the_project_and_merges_both_phases(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "project"
    shutil.copytree(FIXTURES / "project", project)
    shutil.copy(FIXTURES / "racy_counter.c", project / "fixturepkg" / "clean_funcs.c")
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    start, end = text.index("\n[build-system]\n"), text.index("\n[project]\n")
    pyproject.write_text(text[:start + 1] + '[build-system]\nrequires = []\n'
                         'build-backend = "stdlib_backend"\nbackend-path = ["."]\n' + text[end:])
    # The module is built as fixturepkg.clean_funcs; its PyInit name must follow.
    source = project / "fixturepkg" / "clean_funcs.c"
    source.write_text(source.read_text().replace("PyInit_racy_counter", "PyInit_clean_funcs")
                      .replace('"racy_counter"', '"clean_funcs"'))
    out = tmp_path / "report.json"
    code = main(["scan", str(project), "--stress", "--python", sys.executable,
                 "--pip-arg=--no-index", "--timeout", "2", "--trials", "3", "--format", "json",
                 "-o", str(out), "--no-cache", "--jobs", "1", "--no-progress"])
    capsys.readouterr()
    data = json.loads(out.read_text())
    assert code == 1, data["diagnostics"]
    evidence = {f["evidence"] for f in data["findings"]}
    assert evidence == {"static", "dynamic"}
    (module,) = data["stress"]["modules"]
    assert module["module"] == "fixturepkg.clean_funcs" and module["verdict"] == "problems"
    assert not list(project.glob("*.egg-info")) and not (project / "build").exists()


# -- on a free-threaded build --------------------------------------------------------------------

@pytest.fixture(scope="module")
def ft_built(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    python, why = free_threaded_python()
    if python is None:
        pytest.skip(why)
    out = tmp_path_factory.mktemp("ft-fixtures")
    for source in sorted(FIXTURES.glob("*.c")):
        build_extension(source, out, python=python)
    return python, out


@pytest.mark.parametrize("rule", sorted(DYNAMIC_FIXTURES))
def test_ft_fires(rule: str, ft_built: tuple[str, Path], tmp_path: Path) -> None:
    python, out = ft_built
    module = DYNAMIC_FIXTURES[rule][0]
    options = FAST
    if module == "deadlock":
        options = StressOptions(threads=8, iterations=20, trials=2, budget=40.0, timeout=2.0)
    got = _stress([module], [out], tmp_path, options, python=python)
    assert rule in _rules(got, module), [f.message for f in got.findings]
    assert all(f.reproducer and Path(f.reproducer).is_file() for f in got.findings)


@pytest.mark.parametrize("rule", sorted(DYNAMIC_FIXTURES))
def test_ft_stays_silent(rule: str, ft_built: tuple[str, Path], tmp_path: Path) -> None:
    python, out = ft_built
    module = DYNAMIC_FIXTURES[rule][1]
    got = _stress([module], [out], tmp_path, python=python)
    assert got.findings == (), [f.message for f in got.findings]
    assert got.summary.modules[0].verdict == "clean"


def test_ft_importing_an_undeclared_module_reenables_the_gil(ft_built: tuple[str, Path],
                                                             tmp_path: Path) -> None:
    python, out = ft_built
    got = _stress(["undeclared", "legacy", "clean_counter"], [out], tmp_path, python=python)
    reenabled = {f.module for f in got.findings if f.rule == "FT200"}
    assert reenabled == {"undeclared", "legacy"}
    by = {m.module: m for m in got.summary.modules}
    assert by["undeclared"].gil_reenabled is True and by["clean_counter"].gil_reenabled is False
    assert "undeclared" in next(f.message for f in got.findings if f.module == "undeclared")
    assert got.summary.caveat == "" and got.summary.interpreter["free_threaded"] is True
    # driven with the GIL kept off, so what would break without it still shows
    assert got.summary.settings["python_gil_env"] == "0"
    assert by["undeclared"].verdict == "problems" and by["undeclared"].driven


def test_ft_a_race_the_gil_used_to_prevent_is_a_wrong_result(ft_built: tuple[str, Path],
                                                             tmp_path: Path) -> None:
    python, out = ft_built
    got = _stress(["gil_racy", "clean_counter", "clean_funcs"], [out], tmp_path,
                  StressOptions(threads=8, iterations=2000, trials=10, budget=60, timeout=5),
                  python=python)
    assert {(f.module, f.rule) for f in got.findings} == {("gil_racy", "FT204")}
    verdicts = {m.module: m.verdict for m in got.summary.modules}
    assert verdicts == {"gil_racy": "problems", "clean_counter": "clean", "clean_funcs": "clean"}
