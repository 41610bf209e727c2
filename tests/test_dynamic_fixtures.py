"""The dynamic phase's fixture extensions build, and misbehave (or not) exactly as designed.

Each fixture under ``tests/fixtures/dynamic/`` is compiled for the running interpreter and
exercised by a short standalone script in a child process: no free-threaded interpreter is
needed, because every bug here shows even with the GIL (it is released around shared state).
Races are probabilistic, so the racy checks run up to five trials and report how many they
needed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import free_threaded_python
from fixtures.dynamic.build import FIXTURES, BuildError, build_extension, interpreter_build_info

SOURCES = sorted(FIXTURES.glob("*.c"))
EXPECTED = {
    "racy_counter", "clean_counter", "crashy", "deadlock", "racy_raise", "undeclared",
    "legacy", "clean_funcs", "import_crash", "import_hang", "import_exit", "chatty", "gil_racy",
    "argorder", "argorder_ok", "sortedbag", "sortedbag_ok", "pair", "pair_ok", "slowpoke",
}
HANG_TIMEOUT = 3.0   # a call or import still running after this long is a hang
RUN_TIMEOUT = 20.0   # generous upper bound for checks that must finish
CRASH_SIGNALS = {-signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS}
PY313 = Path("/root/.pyenv/versions/3.13.0/bin/python3")

# Prepended to every child script: no core files, and a hammer behind a barrier.
PRELUDE = textwrap.dedent("""\
    import json, resource, sys, threading
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    def hammer(call, threads=8, calls=2000):
        barrier = threading.Barrier(threads)
        errors = []
        def work():
            barrier.wait()
            for _ in range(calls):
                try:
                    call()
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
        workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return errors
    """)


@dataclass
class ChildResult:
    """What a child run left behind; ``returncode`` is None when the timeout killed it."""

    returncode: int | None
    stdout: bytes
    stderr: bytes

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    def json(self) -> Any:
        return json.loads(self.stdout.decode().strip().splitlines()[-1])

    def explain(self) -> str:
        return (f"returncode={self.returncode}\nstdout={self.stdout[-2000:]!r}\n"
                f"stderr={self.stderr.decode(errors='replace')[-2000:]}")


def run_child(build_dir: Path, body: str, *, timeout: float = RUN_TIMEOUT,
              python: str = sys.executable) -> ChildResult:
    """Run PRELUDE + ``body`` in a child interpreter with the built fixtures importable."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHON_GIL", "PYTHONSTARTUP", "PYTHONHOME"}}
    env["PYTHONPATH"] = str(build_dir)
    code = PRELUDE + textwrap.dedent(body)
    try:
        proc = subprocess.run([python, "-c", code], capture_output=True, timeout=timeout,
                              env=env, cwd=build_dir, check=False)
    except subprocess.TimeoutExpired as exc:   # the child was killed
        return ChildResult(None, _as_bytes(exc.stdout), _as_bytes(exc.stderr))
    return ChildResult(proc.returncode, proc.stdout, proc.stderr)


def _as_bytes(data: bytes | str | None) -> bytes:
    if data is None:
        return b""
    return data.encode() if isinstance(data, str) else data


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every fixture compiled for the running interpreter, in one directory."""
    out = tmp_path_factory.mktemp("dynamic-fixtures")
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda src: build_extension(src, out), SOURCES))
    except BuildError as exc:
        if "no C compiler" in str(exc):
            pytest.skip(str(exc))
        raise
    return out


def test_every_fixture_is_present_and_builds(built: Path) -> None:
    assert {src.stem for src in SOURCES} == EXPECTED
    suffix = interpreter_build_info()["ext_suffix"]
    for src in SOURCES:
        assert (built / f"{src.stem}{suffix}").is_file(), src.name
        assert 40 <= len(src.read_text().splitlines()) <= 210, src.name


def test_build_error_carries_compiler_output(tmp_path: Path) -> None:
    broken = tmp_path / "broken.c"
    broken.write_text("#include <Python.h>\nint oops( {\n")
    with pytest.raises(BuildError, match=r"(?s)broken\.c.*failed.*error:"):
        build_extension(broken, tmp_path / "out")
    with pytest.raises(BuildError, match="cannot run interpreter"):
        build_extension(FIXTURES / "clean_funcs.c", tmp_path, python=str(tmp_path / "nopython"))


# -- the oracle for wrong results: serial vs. concurrent on the same API ----------------------

COUNTER_TRIALS = """
    import {module} as mod
    THREADS, CALLS, TRIALS = 8, 2000, {trials}
    expected = THREADS * CALLS
    serial = mod.Counter()
    for _ in range(expected):
        serial.increment()
    trials = []
    for _ in range(TRIALS):
        shared = mod.Counter()
        before = mod.get()
        errors = hammer(lambda: (shared.increment(), mod.add(1)), THREADS, CALLS)
        trials.append({{"counter": shared.value, "add": mod.get() - before, "errors": errors}})
        if {stop_early} and shared.value < expected and trials[-1]["add"] < expected:
            break
    print(json.dumps({{"expected": expected, "serial": serial.value, "trials": trials}}))
"""


def test_racy_counter_loses_updates_only_concurrently(built: Path) -> None:
    result = run_child(built, COUNTER_TRIALS.format(module="racy_counter", trials=5,
                                                    stop_early=True))
    assert result.returncode == 0, result.explain()
    report = result.json()
    expected = report["expected"]
    assert report["serial"] == expected          # serially the counter is exact
    trials = report["trials"]
    assert all(not t["errors"] for t in trials)
    assert any(t["counter"] < expected for t in trials), trials   # lost updates: wrong result
    assert any(t["add"] < expected for t in trials), trials


def test_clean_counter_never_loses_updates(built: Path) -> None:
    result = run_child(built, COUNTER_TRIALS.format(module="clean_counter", trials=2,
                                                    stop_early=False))
    assert result.returncode == 0, result.explain()
    report = result.json()
    assert report["serial"] == report["expected"]
    for trial in report["trials"]:
        assert trial == {"counter": report["expected"], "add": report["expected"], "errors": []}


def test_clean_funcs_are_deterministic_under_threads(built: Path) -> None:
    result = run_child(built, """
        import clean_funcs as f
        serial = (f.add(2, 3), f.concat([1], [2]), f.checksum(b"gilaudit" * 100))
        seen = set()
        lock = threading.Lock()
        def call():
            got = (f.add(2, 3), f.concat([1], [2]), f.checksum(b"gilaudit" * 100))
            with lock:
                seen.add(repr(got))
        errors = hammer(call, 8, 300)
        print(json.dumps({"serial": repr(serial), "seen": sorted(seen), "errors": errors}))
    """)
    assert result.returncode == 0, result.explain()
    report = result.json()
    assert report["seen"] == [report["serial"]]
    assert report["errors"] == []


# -- crashes -----------------------------------------------------------------------------------

def test_crashy_touch_is_fine_serially(built: Path) -> None:
    result = run_child(built, """
        import crashy
        tags = {crashy.touch(i) for i in range(5000)} | {crashy.touch("x"), crashy.touch([])}
        print(json.dumps(len(tags)))
    """)
    assert result.returncode == 0, result.explain()


def test_crashy_touch_crashes_under_concurrent_use(built: Path) -> None:
    result = run_child(built, """
        import crashy
        for trial in range(5):
            hammer(lambda: crashy.touch(7), 8, 2000)
            print("survived trial", trial, flush=True)
        """)
    assert result.returncode in CRASH_SIGNALS, result.explain()


def test_crashy_boom_crashes_at_the_first_call(built: Path) -> None:
    result = run_child(built, """
        import crashy
        print("imported", flush=True)
        crashy.boom()
        print("unreachable", flush=True)
    """)
    assert result.returncode == -signal.SIGSEGV, result.explain()
    assert result.stdout == b"imported\n"


# -- hangs -------------------------------------------------------------------------------------

def test_deadlock_serial_calls_succeed(built: Path) -> None:
    result = run_child(built, """
        import deadlock
        for _ in range(50):
            deadlock.lock_a_then_b()
            deadlock.lock_b_then_a()
        print(json.dumps(deadlock.lock_a_then_b()))
    """)
    assert result.returncode == 0, result.explain()
    assert result.json() == 101


def test_deadlock_hangs_under_concurrent_use(built: Path) -> None:
    # Serially these 2 x 200 calls take ~0.8 s (2 ms each): far below the timeout.
    result = run_child(built, """
        import deadlock
        barrier = threading.Barrier(2)
        def run(call):
            barrier.wait()
            for _ in range(200):
                call()
        workers = [threading.Thread(target=run, args=(c,), daemon=True)
                   for c in (deadlock.lock_a_then_b, deadlock.lock_b_then_a)]
        for w in workers:
            w.start()
        print("started", flush=True)
        for w in workers:
            w.join()
        print("finished", flush=True)
    """, timeout=HANG_TIMEOUT)
    assert result.timed_out, result.explain()
    assert result.stdout == b"started\n"


# -- exceptions that appear only under concurrency ---------------------------------------------

def test_racy_raise_raises_only_concurrently(built: Path) -> None:
    result = run_child(built, """
        import racy_raise
        for _ in range(5000):
            racy_raise.check()                  # must never raise serially
        trials = []
        for _ in range(5):
            errors = hammer(racy_raise.check, 8, 500)
            trials.append(sorted(set(errors)))
            if errors:
                break
        print(json.dumps({"serial_checks": racy_raise.count(), "trials": trials}))
    """)
    assert result.returncode == 0, result.explain()
    report = result.json()
    assert report["serial_checks"] >= 5000
    assert report["trials"][-1] == ["RuntimeError: concurrent use"], report


# -- modules that do not declare GIL support: clean on a GIL build -----------------------------

def test_undeclared_and_legacy_import_and_work(built: Path) -> None:
    result = run_child(built, """
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import legacy, undeclared
        got = [undeclared.square(7), undeclared.greet("ft"), legacy.square(6),
               legacy.join("-", ["a", "b"]), undeclared.VERSION, legacy.VERSION]
        errors = hammer(lambda: (undeclared.square(3), legacy.join(",", ["x"])), 4, 200)
        gil = getattr(sys, "_is_gil_enabled", lambda: True)()
        print(json.dumps({"got": got, "errors": errors, "gil": gil,
                          "warnings": [str(w.message) for w in caught]}))
    """)
    assert result.returncode == 0, result.explain()
    report = result.json()
    assert report["got"] == [49, "hello, ft", 36, "a-b", 1, 1]
    assert report["errors"] == []
    assert report["gil"] is True   # the running interpreter has a GIL (see the test below)


# -- bad input at import -----------------------------------------------------------------------

def test_import_crash_kills_the_process(built: Path) -> None:
    result = run_child(built, "import import_crash\nprint('unreachable')\n")
    assert result.returncode == -signal.SIGSEGV, result.explain()
    assert b"unreachable" not in result.stdout


def test_import_hang_never_returns(built: Path) -> None:
    result = run_child(built, "print('importing', flush=True)\nimport import_hang\n",
                       timeout=HANG_TIMEOUT)
    assert result.timed_out, result.explain()
    assert result.stdout == b"importing\n"


def test_import_exit_ends_the_process_with_code_3(built: Path) -> None:
    result = run_child(built, "import import_exit\nprint('unreachable')\n")
    assert result.returncode == 3, result.explain()
    assert b"unreachable" not in result.stdout
    assert b"exiting" in result.stderr


def test_chatty_prints_megabytes_at_import_then_works(built: Path) -> None:
    result = run_child(built, "import chatty\nprint(chatty.ping())\n")
    assert result.returncode == 0, result.explain()
    assert len(result.stdout) >= 5 * 1024 * 1024
    assert result.stdout.endswith(b"pong\n")


# -- another interpreter than the running one (the interpreter under test) --------------------

def _other_interpreters() -> list[Any]:
    params: list[Any] = [pytest.param(
        str(PY313), id="py3.13.0",
        marks=pytest.mark.skipif(not PY313.is_file(), reason=f"{PY313} is not installed"))]
    target, why = free_threaded_python()
    params.append(pytest.param(
        target or "", id="free-threaded",
        marks=pytest.mark.skipif(not target, reason=why)))
    return params


@pytest.mark.parametrize("python", _other_interpreters())
def test_fixtures_build_for_another_interpreter(python: str, tmp_path: Path) -> None:
    info = interpreter_build_info(python)
    names = ["racy_counter", "clean_counter", "undeclared"]
    for name in names:
        built = build_extension(FIXTURES / f"{name}.c", tmp_path, python=python)
        assert built.name == f"{name}{info['ext_suffix']}"
    result = run_child(tmp_path, """
        import warnings
        gil = getattr(sys, "_is_gil_enabled", lambda: True)
        state = {"start": gil()}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import racy_counter, clean_counter
            state["declared"] = gil()
            import undeclared
            state["undeclared"] = gil()
        state["warnings"] = [str(w.message) for w in caught]
        counter = racy_counter.Counter()
        hammer(counter.increment, 8, 500)
        state["racy"] = counter.value
        print(json.dumps(state))
    """, python=python)
    assert result.returncode == 0, result.explain()
    state = result.json()
    assert state["racy"] <= 8 * 500
    if info["gil_disabled"]:
        # Free-threaded: the fixtures that declare Py_MOD_GIL_NOT_USED keep the GIL off; the one
        # without a Py_mod_gil slot turns it back on, with a warning that names the module.
        assert state["start"] is False and state["declared"] is False, state
        assert state["undeclared"] is True, state
        assert any("undeclared" in w for w in state["warnings"]), state
    else:
        assert state["start"] is state["declared"] is state["undeclared"] is True
