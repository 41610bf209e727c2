"""`gilaudit stress PROJECT --tests`: the project's own test suite, in threads.

After the target is installed into the fresh venv (install.py), its test dependencies (read
statically, testdeps.py), pytest and pytest-run-parallel are installed there too. The suite is
collected once with the GIL free to come back on (FT200 when an import during collection turns
it on), then every test file runs in confined children (pytestrun.py) twice: serially and with
each test in ``threads`` threads, under PYTHON_GIL=0. What the two runs say (testresults.py)
becomes findings in the same report as the hammer's, each with a reproducer that re-runs the
one test in that venv.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gilaudit.dynamic.evidence import Problem
from gilaudit.dynamic.install import Installed, InstallError, install_requirements
from gilaudit.dynamic.pytestrun import Collection, FileRun, PytestChild, collect, run_file
from gilaudit.dynamic.reproducer import write_reproducer
from gilaudit.dynamic.testdeps import read_test_requirements
from gilaudit.dynamic.testresults import (
    TestFile,
    collection_problems,
    file_module,
    suite_summary,
    thread_problems,
)
from gilaudit.dynamic.testtree import modules_of, prepare_tree
from gilaudit.dynamic.tsanfindings import ProjectSources, tsan_findings
from gilaudit.language import language_of
from gilaudit.model import Diagnostic, Finding, ListedTest, Note, SuiteRun, fingerprint
from gilaudit.rulebook import RuleBook

__all__ = ["RULE_OF_TEST", "SuiteOptions", "SuiteResult", "run_project_tests", "split_args"]

RULE_OF_TEST = {"gil-reenabled": "FT200", "crash": "FT202", "hang": "FT203",
                "thread-test-failure": "FT208"}
RUNNERS = ("pytest", "pytest-run-parallel")
_TEST_REPRO = Path(__file__).with_name("childside") / "gilaudit_test_repro.py"
# pytest options that take the next argument as their value: that value is no selection.
_VALUED = frozenset({"-k", "-m", "-p", "-o", "-c", "-W", "--rootdir", "--confcutdir",
                     "--ignore", "--ignore-glob", "--deselect", "--basetemp", "--import-mode",
                     "--override-ini", "--junit-xml", "--log-level", "--tb", "-r"})


@dataclass(frozen=True, kw_only=True, slots=True)
class SuiteOptions:
    threads: int
    pytest_args: tuple[str, ...] = ()  # after `--`: options, and what to collect
    test_timeout: float = 60.0  # one test, in either run
    file_timeout: float = 600.0  # one child process
    budget: float | None = None  # the whole suite, installs excluded
    memory_bytes: int = 8 << 30
    repro_trials: int = 3
    tsan: Path | None = None  # a TSan run's suppressions file (`stress --tsan --tests`)


@dataclass(frozen=True, kw_only=True, slots=True)
class SuiteResult:
    summary: SuiteRun | None  # None: the suite could not run at all (see the diagnostics)
    findings: tuple[Finding, ...]
    diagnostics: tuple[Diagnostic, ...]


def split_args(args: Iterable[str], root: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(options, selection): the paths and node ids among the user's pytest arguments select
    what to collect; the rest are options every child gets."""
    options: list[str] = []
    selection: list[str] = []
    previous = ""
    for arg in args:
        chosen = (not arg.startswith("-") and previous not in _VALUED
                  and ("::" in arg or (root / arg.split("::")[0]).exists()))
        (selection if chosen else options).append(arg)
        previous = arg
    return tuple(options), tuple(selection)


def _install(installed: Installed, requirements: tuple[str, ...], workdir: Path,
             pip_args: tuple[str, ...], timeout: float) -> tuple[list[str], list[Diagnostic]]:
    """Everything at once; when that fails, the runners alone, then each dependency alone
    (one that does not build for this interpreter costs only the tests that need it)."""
    try:
        install_requirements(installed.python, [*requirements, *RUNNERS], workdir=workdir,
                             timeout=timeout, pip_args=pip_args)
        return list(requirements), []
    except InstallError:
        pass
    install_requirements(installed.python, list(RUNNERS), workdir=workdir, timeout=timeout,
                         pip_args=pip_args)  # an InstallError here stops the suite
    done, diags = [], []
    for req in requirements:
        try:
            install_requirements(installed.python, [req], workdir=workdir, timeout=timeout,
                                 pip_args=pip_args)
            done.append(req)
        except InstallError as exc:
            diags.append(Diagnostic(path=None, kind="test-dependency-failed",
                                    message=f"{installed.distribution}: the test dependency "
                                            f"{req} could not be installed ({exc.message}); "
                                            "the tests that need it fail serially too"))
    return done, diags


def _files(collection: Collection, root: Path) -> dict[str, list[str]]:
    """Node ids by test file, the file as the children name it (relative to the tree)."""
    out: dict[str, list[str]] = {}
    for nodeid, path in collection.items:
        where = path or nodeid.split("::", 1)[0]
        try:
            shown = os.path.relpath(where, root) if os.path.isabs(where) else where
        except ValueError:
            shown = where
        out.setdefault(shown if not shown.startswith("..") else where, []).append(nodeid)
    return out


def _modules(root: Path, path: str, modules: tuple[str, ...]) -> tuple[str, ...]:
    file = root / path
    if file.suffix != ".py":
        return ()
    try:
        return modules_of(file.read_text(encoding="utf-8", errors="replace"), modules)
    except OSError:
        return ()


def run_project_tests(target: Path, installed: Installed, *, workdir: Path, free_threaded: bool,
                      options: SuiteOptions, book: RuleBook, repro_dir: Path | None,
                      pip_args: tuple[str, ...] = (), install_timeout: float = 900.0,
                      known: Iterable[Finding] = (),
                      sources: ProjectSources | None = None) -> SuiteResult:
    """Run ``target``'s test suite in the venv ``installed`` made (its ``workdir``); findings
    the hammer already made (``known``: an FT200 for the same module, a TSan report of the
    same pair of lines) are not repeated. Under TSan (``options.tsan``), ``sources`` are the
    project's files its reports are pinned to."""
    started = time.monotonic()
    tree = prepare_tree(target, workdir / "tests-tree", installed.modules)
    diagnostics = list(tree.diagnostics)
    if tree.root is None:
        return SuiteResult(summary=None, findings=(), diagnostics=tuple(diagnostics))
    root = tree.root
    deps = read_test_requirements(root, installed.distribution)
    diagnostics += [Diagnostic(path=None, kind="test-dependencies", message=p)
                    for p in deps.problems]
    try:
        requirements, diags = _install(installed, deps.requirements, workdir, pip_args,
                                       install_timeout)
    except InstallError as exc:
        diagnostics.append(Diagnostic(
            path=str(target), kind="install-failed",
            message=f"the tests did not run: {exc.message}"
                    + (f"\n{exc.log_tail.strip()[-1500:]}" if exc.log_tail.strip() else "")))
        return SuiteResult(summary=None, findings=(), diagnostics=tuple(diagnostics))
    diagnostics += diags
    user_options, selection = split_args(options.pytest_args, root)
    child = PytestChild(python=installed.python, cwd=root, options=user_options,
                        test_timeout=options.test_timeout, file_timeout=options.file_timeout,
                        memory_bytes=options.memory_bytes, free_threaded=free_threaded,
                        tsan=options.tsan)
    collection = collect(child, list(selection))
    gil_problems, gil_diags = collection_problems(collection, installed.modules)
    diagnostics += gil_diags
    not_run: list[ListedTest] = []
    if collection.problem:
        not_run.append(ListedTest(nodeid="(collection)", reason=collection.problem + (
            f":\n{collection.stderr_tail}" if collection.stderr_tail else "")))
    if collection.xdist:  # addopts may say -n auto: one process per file is ours to decide
        child = dataclasses.replace(child, options=(*user_options, "-n", "0"))
    if tree.removed and not collection.items:
        diagnostics.append(Diagnostic(
            path=str(target), kind="no-tests",
            message=f"no tests were collected; the package directories {', '.join(tree.removed)}"
                    " were left out of the test tree (the installed package is tested): if "
                    "the tests live inside the package, pass `-- --pyargs PACKAGE`"))
    deadline = started + options.budget if options.budget is not None else float("inf")
    files: list[TestFile] = []
    for path, tests in _files(collection, root).items():
        only = set(tests)
        serial = run_file(child, path, threads=1, deadline=deadline, only=only)
        threaded: FileRun | None = None
        if any(o.outcome == "passed" for o in serial.outcomes.values()):
            threaded = run_file(child, path, threads=options.threads, deadline=deadline,
                                only=only)
        for run in (serial, threaded):
            if run is not None and run.problem:
                mode = "serially" if run.threads == 1 else f"in {run.threads} threads"
                not_run.append(ListedTest(nodeid=path, reason=f"{mode}: {run.problem}"))
        files.append(TestFile(path=path, modules=_modules(root, path, installed.modules),
                              tests=tuple(tests), serial=serial, threaded=threaded))
    problems = thread_problems(files, options.threads)
    known = tuple(known)
    seen = {(f.rule, f.module) for f in known}
    problems += [p for p in gil_problems if ("FT200", p.module) not in seen]
    findings = _findings(problems, book, _reproducers(
        problems, installed=installed, root=root, child=child, options=options,
        repro_dir=repro_dir, diagnostics=diagnostics))
    if options.tsan is not None:
        findings += _tsan_findings(files, sources or ProjectSources(
            modules=frozenset(m.rsplit(".", 1)[-1] for m in installed.modules)), book, known)
    summary = suite_summary(
        installed.distribution, files, threads=options.threads,
        found=sum(1 for p in problems if p.category != "gil-reenabled"), not_run=not_run,
        requirements=tuple(requirements), seconds=time.monotonic() - started)
    return SuiteResult(summary=summary, findings=tuple(findings),
                       diagnostics=tuple(diagnostics))


def _tsan_findings(files: list[TestFile], sources: ProjectSources, book: RuleBook,
                   known: tuple[Finding, ...]) -> list[Finding]:
    """TSan's reports from the test runs, each pinned to the project's line and to the test
    that ran; a pair of lines the hammer already reported is not repeated. (No reproducer:
    the test's own reproducer for FT208 reruns it; run it under the TSan interpreter.)"""
    events = [dataclasses.replace(e, module=file_module(f)) for f in files
              for run in (f.serial, f.threaded) if run is not None for e in run.tsan]
    seen = {f.fingerprint for f in known}
    return [tf.finding for tf in tsan_findings(events, sources, book).findings
            if tf.finding.fingerprint not in seen]


def _reproducers(problems: list[Problem], *, installed: Installed, root: Path,
                 child: PytestChild, options: SuiteOptions, repro_dir: Path | None,
                 diagnostics: list[Diagnostic]) -> dict[int, Path]:
    out: dict[int, Path] = {}
    if repro_dir is None:
        return out
    taken: set[str] = set()
    for index, p in enumerate(problems):
        if p.category == "gil-reenabled":  # the hammer's import reproducer does this one
            params: dict[str, Any] = {
                "category": p.category, "module": p.module, "mode": "import", "calls": [],
                "import_paths": [], "threads": 1, "iterations": 1, "trials": 1, "seed": 0,
                "timeout": options.test_timeout}
            which: dict[str, Path] = {}  # the default template
        else:
            params = {"category": p.category, "module": p.module,
                      "nodeid": p.callable, "threads": options.threads,
                      "python": installed.python, "cwd": str(root),
                      "options": list(child.options),
                      "env": {"PYTHON_GIL": "0"} if child.free_threaded else {},
                      "timeout": options.test_timeout, "trials": options.repro_trials,
                      "calls": [{"name": p.callable.rsplit("::", 1)[-1]}]}
            which = {"template": _TEST_REPRO}
        try:
            out[index] = write_reproducer(params, python=installed.python, directory=repro_dir,
                                          taken=taken, **which)
        except OSError as exc:
            diagnostics.append(Diagnostic(path=str(repro_dir), kind="unwritable",
                                          message=f"cannot write a reproducer: {exc}"))
            break
    return out


def _findings(problems: list[Problem], book: RuleBook,
              reproducers: dict[int, Path]) -> list[Finding]:
    """A test's finding names the test (its node id) as the callable and the symbol; an
    import's, the module."""
    out = []
    for index, p in enumerate(problems):
        rule = book.get(RULE_OF_TEST[p.category])
        symbol = p.callable or p.module
        repro = reproducers.get(index)
        out.append(Finding(
            rule=rule.id, name=rule.name, category=rule.category,
            language=language_of(rule.language, None), severity=rule.severity,
            message=rule.format_message(symbol=symbol, where=p.detail), location=None,
            symbol=symbol, fix=rule.fix, module=p.module, callable=p.callable or None,
            notes=tuple(Note(message=n) for n in p.notes), preview=rule.preview,
            evidence="dynamic", reproducer=str(repro) if repro else None,
            fingerprint=fingerprint(rule.id, "", f"{p.module}:{symbol}", None, p.category)))
    return out
