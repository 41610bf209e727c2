"""One `gilaudit stress` run: choose the interpreter, install what must be installed, stress
every module, and return a Report (the same contract as a static scan, plus its stress part)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gilaudit import __version__
from gilaudit.dynamic import interpreters as it
from gilaudit.dynamic.install import InstallError, install_target
from gilaudit.dynamic.stress import StressOptions, StressResult, stress_modules
from gilaudit.dynamic.testsuite import SuiteOptions, run_project_tests
from gilaudit.dynamic.tsan import build_environment, project_suppressions, settings_for
from gilaudit.dynamic.tsanfindings import ProjectSources
from gilaudit.model import Diagnostic, Finding, ModuleStress, Report, StressSummary, SuiteRun
from gilaudit.rulebook import RuleBook

__all__ = ["StressRequest", "choose_interpreter", "is_path_target", "run_stress"]

_ARCHIVES = (".whl", ".tar.gz", ".zip", ".tgz", ".tar.bz2")


@dataclass(frozen=True, kw_only=True, slots=True)
class StressRequest:
    targets: tuple[str, ...]  # module names, or a project directory, a wheel or an sdist
    python: str | None = None  # None: search PATH, pyenv and uv for a free-threaded one
    import_paths: tuple[str, ...] = ()
    options: StressOptions = dataclasses.field(default_factory=StressOptions)
    repro_dir: Path | None = None
    pip_args: tuple[str, ...] = ()
    install_timeout: float = 900.0
    tests: SuiteOptions | None = None  # also run each project's own test suite in threads
    tsan: bool = False  # build with -fsanitize=thread and run under a TSan interpreter


def is_path_target(target: str) -> bool:
    """A project, wheel or sdist to install; anything else is a module name."""
    return ("/" in target or target.endswith(_ARCHIVES) or target in (".", "..")
            or Path(target).exists())


def choose_interpreter(python: str | None, tsan: bool = False,
                       ) -> tuple[it.Interpreter | None, list[Diagnostic]]:
    if python is not None:
        exe = it.which(python) or python
        got = it.describe(exe, found_by="--python")
        if isinstance(got, it.Interpreter) and tsan and not got.tsan:
            return None, [Diagnostic(path=python, kind="no-interpreter", message=(
                f"--tsan needs a ThreadSanitizer build of free-threaded CPython, and {python} "
                "is not one (`make ft-python-tsan` builds one)"))]
        return (got, []) if isinstance(got, it.Interpreter) else (None, [got])
    found, problems = [], []
    for exe, how in it.candidates():
        got = it.describe(exe, found_by=how)
        if isinstance(got, it.Interpreter):
            found.append(got)
        else:
            problems.append(got)
    chosen = it.choose(found, tsan=tsan)
    if chosen is None and tsan:
        problems.append(Diagnostic(path=None, kind="no-interpreter", message=(
            "--tsan needs a ThreadSanitizer build of free-threaded CPython and none was found "
            "(`make ft-python-tsan` builds one into gilaudit's cache, where it is found)")))
    return chosen, problems


def run_stress(request: StressRequest, book: RuleBook,
               on_module: Callable[[str, ModuleStress], None] | None = None,
               on_interpreter: Callable[[str, bool], None] | None = None) -> Report:
    started = time.perf_counter()
    interpreter, diagnostics = choose_interpreter(request.python, request.tsan)
    if interpreter is not None and on_interpreter is not None:
        on_interpreter(f"{interpreter.label} [{interpreter.found_by}]",
                       interpreter.free_threaded)
    findings: list[Finding] = []
    summaries: list[StressSummary] = []
    suites: list[SuiteRun] = []
    total = request.options.total_budget
    deadline = time.monotonic() + total if total is not None else None

    def options_now() -> StressOptions:
        if deadline is None:
            return request.options
        return dataclasses.replace(request.options,
                                   total_budget=max(1.0, deadline - time.monotonic()))

    if interpreter is None:
        diagnostics.append(Diagnostic(
            path=request.python, kind="no-interpreter",
            message="no usable Python interpreter to run the stress phase with"
                    + (f": {request.python} is not one" if request.python else
                       " (searched PATH, pyenv and uv)")))
    else:
        modules = [t for t in request.targets if not is_path_target(t)]
        paths = [t for t in request.targets if is_path_target(t)]
        if request.tests is not None and modules:
            diagnostics.append(Diagnostic(
                path=None, kind="no-tests",
                message=f"--tests runs a project's own test suite: {', '.join(modules)} "
                        "named no project directory or sdist"))
        with tempfile.TemporaryDirectory(prefix="gilaudit-stress-") as scratch:
            if modules:
                result = stress_modules(interpreter, modules,
                                        import_paths=list(request.import_paths),
                                        options=_tsan_options(options_now(), request,
                                                              Path(scratch) / "tsan", None,
                                                              diagnostics),
                                        book=book, repro_dir=request.repro_dir,
                                        on_module=on_module)
                _collect(result, findings, diagnostics, summaries)
            for index, target in enumerate(paths):
                work = Path(scratch) / f"target-{index}"
                # The environment lives beside the reproducers, which run its interpreter;
                # it is removed again when no reproducer needs it.
                env_dir = (request.repro_dir / "envs" / _env_name(target, index)
                           if request.repro_dir is not None else work / "env")
                try:
                    source = _copy(Path(target), work)
                    installed = install_target(interpreter.executable, source,
                                               workdir=env_dir, timeout=request.install_timeout,
                                               pip_args=request.pip_args,
                                               build_env=build_environment(os.environ)
                                               if request.tsan else None)
                except InstallError as exc:
                    shutil.rmtree(env_dir, ignore_errors=True)
                    diagnostics.append(Diagnostic(
                        path=target, kind="install-failed",
                        message=f"{exc.message}" + (f"\n{exc.log_tail.strip()[-1500:]}"
                                                    if exc.log_tail.strip() else "")))
                    continue
                except OSError as exc:
                    shutil.rmtree(env_dir, ignore_errors=True)
                    diagnostics.append(Diagnostic(path=target, kind="install-failed",
                                                  message=f"cannot copy {target} to build "
                                                          f"it: {exc}"))
                    continue
                if not installed.modules:
                    shutil.rmtree(env_dir, ignore_errors=True)
                    diagnostics.append(Diagnostic(
                        path=target, kind="no-extension-modules",
                        message=f"{installed.distribution} {installed.version} installed no "
                                "extension modules: nothing to stress"))
                    continue
                venv_python = dataclasses.replace(interpreter, executable=installed.python)
                sources, pyproject = (_project_sources(source, installed.modules)
                                      if request.tsan else (None, None))
                options_used = _tsan_options(options_now(), request, work / "tsan",
                                             pyproject, diagnostics)
                result = stress_modules(venv_python, list(installed.modules),
                                        import_paths=list(request.import_paths),
                                        options=options_used, book=book,
                                        repro_dir=request.repro_dir, on_module=on_module,
                                        sources=sources)
                _collect(result, findings, diagnostics, summaries)
                kept = any(f.reproducer for f in result.findings)
                if request.tests is not None:
                    suite = run_project_tests(
                        Path(target), installed, workdir=env_dir,
                        free_threaded=interpreter.free_threaded,
                        options=dataclasses.replace(request.tests,
                                                    tsan=options_used.suppressions),
                        book=book, repro_dir=request.repro_dir, pip_args=request.pip_args,
                        install_timeout=request.install_timeout, known=result.findings,
                        sources=sources)
                    findings.extend(suite.findings)
                    diagnostics.extend(suite.diagnostics)
                    suites.extend([suite.summary] if suite.summary is not None else [])
                    kept = kept or any(f.reproducer for f in suite.findings)
                if not kept:
                    shutil.rmtree(env_dir, ignore_errors=True)
    stress = dataclasses.replace(_merged(summaries, interpreter, request.options),
                                 tests=tuple(suites))
    return Report(
        tool={"name": "gilaudit", "version": __version__, "rules_version": book.version},
        targets=request.targets, findings=tuple(findings), diagnostics=tuple(diagnostics),
        seconds=time.perf_counter() - started,
        options={"python": request.python, **request.options.to_dict()}, stress=stress)


def _tsan_options(options: StressOptions, request: StressRequest, directory: Path,
                  pyproject: bytes | None, diagnostics: list[Diagnostic]) -> StressOptions:
    """Under --tsan: fewer calls per thread, and the suppressions file (gilaudit's own and
    the project's) every child names."""
    if not request.tsan:
        return options
    extra, problems = project_suppressions(pyproject)
    diagnostics.extend(problems)
    settings = settings_for(directory, extra, options.iterations)
    return dataclasses.replace(options, iterations=settings.iterations, tsan=settings)


def _project_sources(source: Path, modules: tuple[str, ...],
                     ) -> tuple[ProjectSources | None, bytes | None]:
    """The files TSan's frames are pinned to, and the project's pyproject.toml: a source
    tree's (the copy pip built), an sdist's; a wheel has none (the modules' own shared
    objects stand in)."""
    if source.is_dir():
        pyproject = source / "pyproject.toml"
        return (ProjectSources.from_tree(source, modules),
                pyproject.read_bytes() if pyproject.is_file() else None)
    if source.name.endswith(".whl"):
        return None, None
    try:
        return ProjectSources.from_sdist(source, modules)
    except OSError:
        return None, None


def _env_name(target: str, index: int) -> str:
    stem = Path(target.rstrip("/")).name or "target"
    return f"{index}-" + "".join(c if c.isalnum() or c in "._-" else "_" for c in stem)[:80]


def _copy(target: Path, work: Path) -> Path:
    """A source tree is built from a copy: pip and setuptools write build/ and *.egg-info
    into the tree they build, and the user's tree is not ours to change."""
    if not target.is_dir():
        return target
    copy = work / "source" / (target.resolve().name or "project")
    shutil.copytree(target, copy, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".hg", ".venv", "venv", ".tox", ".nox", "build", "dist", "*.egg-info",
        "__pycache__", ".mypy_cache", ".pytest_cache"))
    return copy


def _collect(result: StressResult, findings: list[Finding], diagnostics: list[Diagnostic],
             summaries: list[StressSummary]) -> None:
    findings.extend(result.findings)
    diagnostics.extend(result.diagnostics)
    summaries.append(result.summary)


def _merged(summaries: list[StressSummary], interpreter: it.Interpreter | None,
            options: StressOptions) -> StressSummary:
    if summaries:
        first = summaries[0]
        modules = tuple(m for s in summaries for m in s.modules)
        # The interpreter that ran the children (a target's fresh environment, whose python
        # the reproducers name), and the one it was made from.
        described = dict(first.interpreter)
        if interpreter is not None and described.get("executable") != interpreter.executable:
            described["base_executable"] = interpreter.executable
        return dataclasses.replace(first, modules=modules, interpreter=described)
    return StressSummary(interpreter=interpreter.to_dict() if interpreter else {},
                         settings=options.to_dict(), modules=(),
                         caveat="" if interpreter is None or interpreter.free_threaded else
                         "this interpreter runs with the GIL")


def nothing_ran(report: Report) -> bool:
    """True when no module could be imported and driven: exit status 3, never 'clean'."""
    stress = report.stress
    return stress is None or not any(m.verdict in ("clean", "problems") for m in stress.modules)
