"""What a test suite's runs say: pure functions from the outcomes of each file's serial and
threaded runs (and the collection) to problems and the suite's summary.

Only a test that passed serially can be a finding: failing, crashing or hanging when
pytest-run-parallel runs it in threads is then the threads' doing. Tests that fail serially
too, and those pytest-run-parallel ran in one thread (marked or detected thread-unsafe), are
listed, not counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gilaudit.dynamic.evidence import Problem
from gilaudit.dynamic.pytestrun import Collection, FileRun
from gilaudit.model import Diagnostic, ListedTest, SuiteRun
from gilaudit.report.merge import PROJECT

__all__ = ["TestFile", "collection_problems", "file_module", "suite_summary", "thread_problems"]

_FAILED = ("failed", "error")
_DIED = ("crash", "hang")
_MAX_NOTE = 6000


@dataclass(frozen=True, kw_only=True, slots=True)
class TestFile:
    """One test file: the extension modules it imports, and its two runs."""

    __test__ = False  # not a pytest test class, whatever its name

    path: str
    modules: tuple[str, ...]  # the extension modules the file imports (read statically)
    tests: tuple[str, ...]  # node ids, as collected
    serial: FileRun
    threaded: FileRun | None  # None: not run in threads (nothing passed serially)


def _cap(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _MAX_NOTE else "... (cut)\n" + text[-_MAX_NOTE:]


def file_module(f: TestFile) -> str:
    """The module a test file is about: the one it imports, else the project."""
    return f.modules[0] if len(f.modules) == 1 else PROJECT


def thread_problems(files: Iterable[TestFile], threads: int) -> list[Problem]:
    """FT208 for a test that passes serially and fails in threads; FT202/FT203 for one that
    crashes or hangs the process in threads only. The repro part names the test; the caller
    adds where and how to run it."""
    out = []
    for f in files:
        if f.threaded is None:
            continue
        module = file_module(f)
        about = ([f"the file imports several extension modules: {', '.join(f.modules)}"]
                 if len(f.modules) > 1 else [])
        for nodeid in f.tests:
            serial, threaded = f.serial.outcomes.get(nodeid), f.threaded.outcomes.get(nodeid)
            if serial is None or threaded is None or serial.outcome != "passed":
                continue
            if nodeid in f.threaded.thread_unsafe:
                continue
            when = (f"when {threads} threads ran it at once (pytest-run-parallel); "
                    "run alone it passes")
            repro = {"nodeid": nodeid, "threads": threads, "module": module}
            if threaded.outcome in _FAILED:
                word = "failed" if threaded.outcome == "failed" else "errored"
                out.append(Problem(
                    category="thread-test-failure", module=module, callable=nodeid,
                    detail=f"{word} {when}", notes=(*about, _cap(threaded.message) or word),
                    repro={**repro, "category": "thread-test-failure"}))
            elif threaded.outcome in _DIED:
                how, _, dump = threaded.message.partition("\n")
                out.append(Problem(
                    category=threaded.outcome, module=module, callable=nodeid,
                    detail=f"({how}) {when}",
                    notes=(*about, f"{how}, in the test {nodeid}",
                           *([_cap(dump)] if dump.strip() else [])),
                    repro={**repro, "category": threaded.outcome}))
    return out


def collection_problems(collection: Collection, modules: Iterable[str]
                        ) -> tuple[list[Problem], list[Diagnostic]]:
    """FT200 for an extension module of the project whose import during collection turned
    the GIL back on; a test dependency's module doing it is a diagnostic."""
    mine = set(modules)
    problems, diagnostics = [], []
    for module, nodeid in _unique(collection.gil_warnings):
        where = f" (collecting {nodeid})" if nodeid else ""
        if module in mine:
            problems.append(Problem(
                category="gil-reenabled", module=module, callable="",
                detail=f" while pytest collected the project's tests{where}: the interpreter's "
                       f"warning names `{module}`",
                repro={"category": "gil-reenabled", "module": module, "mode": "import"}))
        else:
            diagnostics.append(Diagnostic(
                path=None, kind="gil-reenabled-by-dependency",
                message=f"collecting the tests re-enabled the GIL to load `{module}`, which is "
                        "not the project's (a test dependency?); the tests ran with "
                        "PYTHON_GIL=0 all the same"))
    return problems, diagnostics


def _unique(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for module, nodeid in pairs:
        seen.setdefault(module, nodeid)
    return list(seen.items())


def _reason(message: str) -> str:
    """The last line of a failure's report: the assertion, the exception, the skip reason."""
    lines = [ln.strip() for ln in message.strip().splitlines() if ln.strip()]
    said = next((ln for ln in lines if ln.startswith("E ")), None)
    return (said or (lines[-1] if lines else ""))[:300]


def suite_summary(project: str, files: list[TestFile], *, threads: int, found: int,
                  not_run: list[ListedTest], requirements: tuple[str, ...],
                  seconds: float) -> SuiteRun:
    passed_serially = passed_in_threads = skipped = 0
    unsafe: list[ListedTest] = []
    failing: list[ListedTest] = []
    for f in files:
        unsafe_here = f.threaded.thread_unsafe if f.threaded is not None else {}
        for nodeid in f.tests:
            serial = f.serial.outcomes.get(nodeid)
            threaded = f.threaded.outcomes.get(nodeid) if f.threaded is not None else None
            if serial is not None and serial.outcome == "passed":
                passed_serially += 1
            elif serial is not None and serial.outcome in ("skipped", "xfailed"):
                skipped += 1
            elif serial is not None and serial.outcome in (*_FAILED, *_DIED):
                failing.append(ListedTest(nodeid=nodeid, reason=f"{serial.outcome}: "
                                                               f"{_reason(serial.message)}"))
            if nodeid in unsafe_here:
                unsafe.append(ListedTest(nodeid=nodeid, reason=unsafe_here[nodeid]))
            elif threaded is not None and threaded.outcome == "passed":
                passed_in_threads += 1
    return SuiteRun(project=project, threads=threads, files=len(files),
                    tests=sum(len(f.tests) for f in files), passed_serially=passed_serially,
                    passed_in_threads=passed_in_threads, failing_in_threads=found,
                    skipped=skipped, thread_unsafe=tuple(unsafe), failing_serially=tuple(failing),
                    not_run=tuple(not_run), requirements=requirements, seconds=seconds)
