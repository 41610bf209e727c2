"""Command-line interface: argument parsing and output only; the work is in ``scan``.

Exit codes (the contract CI relies on): 0 nothing at or above --fail-on, 1 findings at or
above it, 2 usage or configuration error, 3 nothing could be analysed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from gilaudit import __version__
from gilaudit.config import FAIL_ON
from gilaudit.errors import GilauditError, UsageError
from gilaudit.language import LANGUAGES
from gilaudit.model import Report
from gilaudit.rulebook import DOC_HEADINGS, RuleBook, load_rulebook

__all__ = ["entrypoint", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gilaudit", description="Find what breaks in CPython extensions on "
                                             "free-threaded Python (PEP 703).")
    p.add_argument("--version", action="version", version=f"gilaudit {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    scan = sub.add_parser("scan", help="static analysis of extension sources")
    scan.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    _output_arguments(scan)
    scan.add_argument("--fail-on", choices=FAIL_ON, default=None,
                      help="lowest severity that makes the exit code 1 (default: config, "
                           "else error)")
    scan.add_argument("--select", action="append", default=[], metavar="RULES",
                      help="only these rule ids, prefixes, names or categories (comma-separated)")
    scan.add_argument("--ignore", action="append", default=[], metavar="RULES")
    scan.add_argument("-I", "--include", action="append", default=[], metavar="DIR",
                      help="an extra include directory for parsing")
    scan.add_argument("-D", "--define", action="append", default=[], metavar="NAME[=VALUE]")
    scan.add_argument("-j", "--jobs", type=int, default=0, help="parser processes (default: "
                                                                "all cores)")
    scan.add_argument("--no-cache", action="store_true", help="parse everything again")
    scan.add_argument("--cache-dir", type=Path, default=None)
    scan.add_argument("--no-progress", action="store_true")
    scan.add_argument("--offline", action="store_true",
                      help="never download build requirements' headers: use those in the "
                           "cache (a missing one is a diagnostic); also GILAUDIT_OFFLINE=1")
    scan.add_argument("--index-url", default=None, metavar="URL",
                      help="the package index for build requirements' header wheels "
                           "(default: pip's configured index)")
    scan.add_argument("--no-build-headers", action="store_true",
                      help="do not fetch the headers of the build requirements (pybind11, "
                           "nanobind, numpy, cppy, ...)")
    scan.add_argument("--no-target-headers", action="store_true",
                      help="parse with gilaudit's own Python headers and compatibility prelude "
                           "even when a free-threaded interpreter is found")
    scan.add_argument("--stress", action="store_true",
                      help="also run the dynamic phase: install the target under --python "
                           "and hammer its extension modules")
    _stress_arguments(scan)
    stress = sub.add_parser(
        "stress", help="import and hammer extension modules under a (free-threaded) "
                       "interpreter",
        description="TARGET is a module name (importable by --python, or from --import-path), "
                    "a project directory, a wheel or an sdist (installed into a fresh virtual "
                    "environment of --python first).")
    stress.add_argument("targets", nargs="+", metavar="TARGET")
    stress.add_argument("--import-path", action="append", default=[], metavar="DIR",
                        help="where already built modules are (added to the child's path)")
    _output_arguments(stress)
    stress.add_argument("--fail-on", choices=FAIL_ON, default="error")
    stress.add_argument("--no-progress", action="store_true")
    stress.add_argument("--tests", action="store_true",
                        help="also run the project's own test suite (a project directory or "
                             "sdist): its test dependencies and pytest-run-parallel are "
                             "installed, and each test file runs serially and with each test "
                             "in --threads threads; pytest arguments go after `--`")
    stress.add_argument("--test-timeout", type=float, default=60.0, metavar="SECONDS",
                        help="one test running this long is a hang (default %(default)s)")
    _stress_arguments(stress)
    report = sub.add_parser(
        "report", help="merge saved JSON reports (scan and stress runs) and render them again",
        description="Nothing is re-run: the JSON reports are merged (one verdict per module, "
                    "duplicates collapsed, static findings a stress run confirms marked) and "
                    "written in every format asked for.")
    report.add_argument("results", nargs="+", type=Path, metavar="RESULTS.json")
    _output_arguments(report)
    report.add_argument("--fail-on", choices=FAIL_ON, default="error")
    baseline = sub.add_parser(
        "baseline", help="write a baseline: the findings to accept as known",
        description="PATH is a saved JSON report or a project to scan now. With "
                    "`--baseline FILE`, scan, stress and report count only findings that are "
                    "not in FILE towards --fail-on.")
    baseline.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    baseline.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")
    dash = sub.add_parser(
        "dashboard", help="analyse many packages from a package index and write a static site",
        description="Each package's latest release on the index: its files (free-threaded "
                    "wheels, abi3, platforms), metadata, the static scan of its sdist and "
                    "wheels and, with --python, the stress phase; results go to a SQLite "
                    "database (runs resume, history is kept) and a static site.")
    dash.add_argument("names", nargs="*", metavar="NAME")
    dash.add_argument("--packages", type=Path, metavar="FILE",
                      help="a file of project names, one per line ('#' comments)")
    dash.add_argument("--top", type=int, metavar="N",
                      help="the first N of the shipped list of widely used packages with "
                           "extension modules")
    dash.add_argument("--index", default="https://pypi.org/simple/", metavar="URL",
                      help="a PEP 503/691 simple index (default PyPI; a mirror or a private "
                           "index works too)")
    dash.add_argument("--python", default=None, metavar="FT_PY",
                      help="a free-threaded interpreter: also run the stress phase")
    dash.add_argument("--db", type=Path, default=Path("gilaudit-dashboard.sqlite"),
                      metavar="PATH", help="the results database (default %(default)s)")
    dash.add_argument("-o", "--output", type=Path, required=True, metavar="SITE_DIR")
    dash.add_argument("--jobs", type=int, default=2, help="packages analysed at once")
    dash.add_argument("--executor", choices=("local", "dask"), default="local")
    dash.add_argument("--scheduler", default=None, metavar="ADDRESS",
                      help="the Dask scheduler for --executor dask (tcp://host:8786)")
    dash.add_argument("--timeout", type=float, default=900.0, metavar="SECONDS",
                      help="per package, everything included (default %(default)s)")
    dash.add_argument("--memory", type=float, default=4.0, metavar="GIB",
                      help="address space per package job, in GiB (default %(default)s)")
    dash.add_argument("--http-timeout", type=float, default=30.0, metavar="SECONDS")
    dash.add_argument("--stress-budget", type=float, default=120.0, metavar="SECONDS")
    dash.add_argument("--cache-dir", type=Path, default=None)
    dash.add_argument("--site-only", action="store_true",
                      help="write the site from the database without analysing anything")
    dash.add_argument("--no-progress", action="store_true")
    rules = sub.add_parser("rules", help="list the rule catalogue")
    rules.add_argument("--json", action="store_true")
    rules.add_argument("--category", metavar="HAZARD",
                       help="only rules of this category (module-declaration, "
                            "borrowed-reference, ...: see rules/README.md)")
    rules.add_argument("--language", choices=LANGUAGES,
                       help="only rules found by default in this language")
    interp = sub.add_parser("interpreters",
                            help="find and describe the interpreters the dynamic phase can use")
    interp.add_argument("--python", action="append", default=[], metavar="PY",
                        help="describe this interpreter (a path or a name on PATH) instead of "
                             "searching PATH, pyenv and uv")
    interp.add_argument("--json", action="store_true")
    explain = sub.add_parser("explain", help="explain one rule")
    explain.add_argument("rule", metavar="FTnnn")
    explain.add_argument("--json", action="store_true")
    return p


FORMATS = ("text", "json", "html", "sarif", "junit", "markdown")


def _output_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("output")
    g.add_argument("--format", action="append", choices=FORMATS, default=None,
                   help="text (default), json, html, sarif, junit or markdown; repeat it with "
                        "-o to write several formats in one run")
    g.add_argument("-o", "--output", action="append", type=Path, default=None, metavar="FILE",
                   help="where the matching --format goes (default: standard output)")
    for fmt in FORMATS[1:]:
        g.add_argument(f"--{fmt}", dest=f"to_{fmt}", type=Path, default=None, metavar="FILE",
                       help=f"also write the {fmt} report to FILE")
    g.add_argument("--baseline", type=Path, default=None, metavar="FILE",
                   help="only findings not in this baseline count towards --fail-on")
    g.add_argument("--color", choices=("auto", "always", "never"), default="auto")


def _destinations(args: argparse.Namespace) -> list[tuple[str, Path | None]]:
    """(format, file or None for standard output), from --format/-o pairs and --html FILE..."""
    formats: list[str] = list(args.format or [])
    outputs: list[Path] = list(args.output or [])
    if len(outputs) > max(len(formats), 1):
        raise UsageError("more -o/--output than --format: give each output its --format")
    if not formats:
        formats = ["text"] if outputs or not _shortcuts(args) else []
    pairs: list[tuple[str, Path | None]] = [
        (fmt, outputs[i] if i < len(outputs) else None) for i, fmt in enumerate(formats)]
    pairs += _shortcuts(args)
    if sum(1 for _f, out in pairs if out is None) > 1:
        raise UsageError("only one format can go to standard output: give the others -o FILE")
    return pairs


def _shortcuts(args: argparse.Namespace) -> list[tuple[str, Path | None]]:
    return [(fmt, getattr(args, f"to_{fmt}")) for fmt in FORMATS[1:]
            if getattr(args, f"to_{fmt}", None) is not None]


def _stress_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("stress phase")
    g.add_argument("--python", metavar="PY", default=None,
                   help="the interpreter to stress under (default: the newest free-threaded "
                        "one on PATH, pyenv or uv; else the newest GIL build)")
    g.add_argument("--threads", type=int, default=None,
                   help="threads per hammer (default: 4 per core, at least 4)")
    g.add_argument("--iterations", type=int, default=100, help="calls per thread per trial")
    g.add_argument("--trials", type=int, default=5,
                   help="repetitions with different seeds (races are probabilistic)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                   help="time for the whole stress run, shared fairly by the modules "
                        "(default: 60 s per module)")
    g.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                   help="no call returning for this long is a hang (default 10)")
    g.add_argument("--repro-dir", type=Path, default=None, metavar="DIR",
                   help="where reproducer scripts go (default: gilaudit-repro/ beside the "
                        "report, or in the current directory)")
    g.add_argument("--pip-arg", action="append", default=[], metavar="ARG",
                   help="an extra argument for pip when installing the target")
    g.add_argument("--tsan", action="store_true",
                   help="build the target with -fsanitize=thread and run it under a "
                        "ThreadSanitizer build of free-threaded CPython (`make "
                        "ft-python-tsan`): every data race pinned to its C line; calls per "
                        "thread are scaled down by 10")
    g.add_argument("--python-callables", action="store_true",
                   help="also drive the package's pure-Python functions and classes (by "
                        "default only the extension's own code and what derives from it)")


def _stress_request(args: argparse.Namespace, targets: tuple[str, ...],
                    import_paths: tuple[str, ...]) -> object:
    from gilaudit.dynamic.session import StressRequest  # noqa: PLC0415
    from gilaudit.dynamic.stress import StressOptions, default_threads  # noqa: PLC0415

    for name in ("iterations", "trials", "budget", "timeout"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise UsageError(f"--{name} must be more than 0")
    if args.threads is not None and not 1 <= args.threads <= 256:
        raise UsageError("--threads must be between 1 and 256")
    options = StressOptions(threads=args.threads or default_threads(),
                            iterations=args.iterations, trials=args.trials, seed=args.seed,
                            total_budget=args.budget, timeout=args.timeout,
                            python_callables=args.python_callables)
    repro = args.repro_dir
    if repro is None:
        files = [out for _fmt, out in _destinations(args) if out is not None]
        base = files[0].parent if files else Path.cwd()
        repro = base / "gilaudit-repro"
    tests = None
    if getattr(args, "tests", False):
        from gilaudit.dynamic.testsuite import SuiteOptions  # noqa: PLC0415

        if args.test_timeout <= 0:
            raise UsageError("--test-timeout must be more than 0")
        tests = SuiteOptions(threads=options.threads, pytest_args=tuple(args.pytest_args),
                             test_timeout=args.test_timeout, budget=args.budget)
    elif getattr(args, "pytest_args", ()):
        raise UsageError("arguments after `--` are pytest's: they need --tests")
    return StressRequest(targets=targets, python=args.python,
                         import_paths=tuple(str(Path(d).resolve()) for d in import_paths),
                         options=options, repro_dir=repro.resolve(),
                         pip_args=tuple(args.pip_arg), tests=tests,
                         tsan=bool(getattr(args, "tsan", False)))


def _run_stress(args: argparse.Namespace, book: RuleBook, targets: tuple[str, ...],
                import_paths: tuple[str, ...]) -> Report:
    from gilaudit.dynamic.session import StressRequest, run_stress  # noqa: PLC0415
    from gilaudit.model import ModuleStress  # noqa: PLC0415

    request = _stress_request(args, targets, import_paths)
    assert isinstance(request, StressRequest)
    show = sys.stderr.isatty() and not args.no_progress

    def on_module(module: str, got: ModuleStress) -> None:
        if show:
            print(f"gilaudit: stressed {module}: {got.verdict} ({got.seconds:.1f} s)",
                  file=sys.stderr)

    def on_interpreter(label: str, free_threaded: bool) -> None:
        # Said even without a terminal: which interpreter ran decides what the result means.
        print(f"gilaudit: stress phase under {label}", file=sys.stderr)
        if not free_threaded:
            print("gilaudit: not a free-threaded interpreter: races the GIL prevents cannot "
                  "show (code that releases the GIL around shared state, crashes and hangs "
                  "still do)", file=sys.stderr)

    return run_stress(request, book, on_module=on_module, on_interpreter=on_interpreter)


def _finish(args: argparse.Namespace, report: Report) -> Report:
    """Verdicts, confirmation marks and the baseline comparison, before any writer runs."""
    from gilaudit.report.merge import apply_baseline, finalise, load_baseline  # noqa: PLC0415

    if args.baseline is not None:
        report = apply_baseline(report, load_baseline(args.baseline), str(args.baseline))
    return finalise(report)


def _write_report(args: argparse.Namespace, report: Report, book: RuleBook) -> None:
    from gilaudit.report.writers import render  # noqa: PLC0415

    pairs = _destinations(args)
    for fmt, path in pairs:
        if fmt == "text":
            color = {"always": True, "never": False}.get(args.color)
            if path is not None and color is None:
                color = False
            with _output(path) as out:
                render_text_to(report, out, color)
            continue
        text = render(fmt, report, book)
        with _output(path) as out:
            out.write(text)


def render_text_to(report: Report, out: TextIO, color: bool | None) -> None:
    from gilaudit.report.text import render_text  # noqa: PLC0415

    render_text(report, out, color=color)


def _cmd_stress(args: argparse.Namespace, book: RuleBook) -> int:
    from gilaudit.dynamic.session import nothing_ran  # noqa: PLC0415

    _destinations(args)  # a usage error before minutes of work, not after
    report = _finish(args, _run_stress(args, book, tuple(args.targets),
                                       tuple(args.import_path)))
    _write_report(args, report, book)
    if nothing_ran(report):
        return 3
    return _exit_code(report, args.fail_on, analysed=True)


def _cmd_report(args: argparse.Namespace, book: RuleBook) -> int:
    from gilaudit.report.merge import load_report, merge  # noqa: PLC0415

    _destinations(args)
    report = _finish(args, merge([load_report(p) for p in args.results]))
    _write_report(args, report, book)
    return _exit_code(report, args.fail_on, analysed=True)


def _cmd_baseline(args: argparse.Namespace, book: RuleBook) -> int:
    from gilaudit.report.merge import baseline_dict, load_report, merge  # noqa: PLC0415
    from gilaudit.scan import ScanOptions, run_scan  # noqa: PLC0415

    reports = []
    to_scan = []
    for path in args.paths:
        if path.suffix == ".json" and path.is_file():
            reports.append(load_report(path))  # a bad one is an error, not a project to scan
        else:
            to_scan.append(path)
    if to_scan:
        scanned, _fail_on = run_scan(ScanOptions(targets=tuple(to_scan)), book)
        reports.append(scanned)
    data = baseline_dict(merge(reports))
    with _output(args.output) as out:
        out.write(json.dumps(data, indent=2) + "\n")
    print(f"gilaudit: wrote a baseline of {len(data['findings'])} finding(s) to {args.output}",
          file=sys.stderr)
    return 0


def _split(values: list[str]) -> tuple[str, ...]:
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


@contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    try:
        fh = path.open("w", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    with fh:
        yield fh


def _progress_bar(enabled: bool) -> Iterator[object]:
    """A rich progress bar on stderr for long scans; nothing when stderr is not a terminal."""
    if not enabled:
        yield None
        return
    from rich.progress import (  # noqa: PLC0415 - only on an interactive terminal
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("parsing"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), TextColumn("{task.description}"),
                  console=None, transient=True) as bar:
        yield bar


def _cmd_scan(args: argparse.Namespace, book: RuleBook) -> int:
    from gilaudit.scan import ScanOptions, run_scan  # noqa: PLC0415

    if args.jobs < 0:
        raise UsageError("--jobs must be 0 (all cores) or more")
    _destinations(args)
    interactive = sys.stderr.isatty() and not args.no_progress
    gen = _progress_bar(interactive)
    bar = next(gen)
    task = None
    if bar is not None:
        task = bar.add_task("", total=None)  # type: ignore[attr-defined]

    def progress(done: int, total: int, current: str) -> None:
        if bar is not None and task is not None:
            bar.update(task, completed=done, total=total,  # type: ignore[attr-defined]
                       description=current)

    try:
        opts = ScanOptions(
            targets=tuple(args.paths),
            select=_split(args.select),
            ignore=_split(args.ignore),
            include_dirs=tuple(str(Path(d).resolve()) for d in args.include),
            defines=tuple(args.define),
            fail_on=args.fail_on,
            jobs=args.jobs,
            cache_dir=args.cache_dir,
            use_cache=not args.no_cache,
            progress=progress if bar is not None else None,
            build_headers=not args.no_build_headers,
            target_headers=not args.no_target_headers,
            python=args.python,
            index_url=args.index_url,
            offline=args.offline or os.environ.get("GILAUDIT_OFFLINE") == "1",
        )
        report, fail_on = run_scan(opts, book)
    finally:
        for _ in gen:
            pass
    if args.stress:
        dynamic = _run_stress(args, book, tuple(str(t) for t in args.paths), ())
        report = dataclasses.replace(
            report, findings=report.findings + dynamic.findings,
            diagnostics=report.diagnostics + dynamic.diagnostics, stress=dynamic.stress,
            seconds=report.seconds + dynamic.seconds,
            options={**report.options, "stress": dynamic.options})
    report = _finish(args, report)
    _write_report(args, report, book)
    return _exit_code(report, fail_on)


def _exit_code(report: Report, fail_on: str, *, analysed: bool | None = None) -> int:
    if analysed is None:
        analysed = any(v.startswith("parsed") for v in report.files.values())
    from gilaudit.report.merge import counts_towards_failure  # noqa: PLC0415

    if fail_on != "never" and any(counts_towards_failure(f, fail_on) for f in report.findings):
        return 1
    return 0 if analysed else 3


def _cmd_rules(args: argparse.Namespace, book: RuleBook) -> int:
    categories = sorted({r.category for r in book.rules.values()})
    if args.category is not None and args.category not in categories:
        raise UsageError(f"unknown category {args.category!r}; the categories are "
                         f"{', '.join(categories)}")
    shown = [r for r in book.rules.values()
             if args.category in (None, r.category) and args.language in (None, r.language)]
    if args.json:
        print(json.dumps({"version": book.version, "rules": [r.to_dict() for r in shown]},
                         indent=2))
        return 0
    for r in shown:
        status = "" if r.status == "stable" else f" ({r.status})"
        print(f"{r.id}  {r.severity:<7}  {r.category:<22}  {r.language:<8}  {r.name}{status}")
    return 0


def _cmd_interpreters(args: argparse.Namespace) -> int:
    from gilaudit.dynamic import interpreters as it  # noqa: PLC0415

    if args.python:
        wanted = [(it.which(p) or p, "--python") for p in args.python]
    else:
        wanted = it.candidates()
    found: list[it.Interpreter] = []
    problems = []
    for exe, how in wanted:
        described = it.describe(exe, found_by=how)
        if isinstance(described, it.Interpreter):
            found.append(described)
        else:
            problems.append(described)
    chosen = it.choose(found)
    if args.json:
        print(json.dumps({"interpreters": [i.to_dict() for i in found],
                          "chosen": chosen.executable if chosen else None,
                          "diagnostics": [d.to_dict() for d in problems]}, indent=2))
    else:
        for i in sorted(found, key=lambda i: (not i.free_threaded, tuple(-v for v in i.version))):
            mark = "*" if chosen is not None and i is chosen else " "
            print(f"{mark} {i.label}  [{i.found_by}]")
        for d in problems:
            print(f"  {d.kind}: {d.message}")
        if chosen is None:
            print("no usable interpreter found")
        elif not chosen.free_threaded:
            print("no free-threaded interpreter found: the stress phase would run on a GIL "
                  "build, where races the GIL protects cannot show (it still finds code that "
                  "releases the GIL around shared state, crashes and hangs)")
    return 0 if chosen is not None else 3


def _matcher_location(rule_id: str) -> dict[str, object] | None:
    import inspect  # noqa: PLC0415

    from gilaudit.dynamic.evidence import EVIDENCE  # noqa: PLC0415
    from gilaudit.dynamic.tsanfindings import RULE_OF_KIND, tsan_findings  # noqa: PLC0415
    from gilaudit.frontends.c.matchers import REGISTRY  # noqa: PLC0415

    tsan: tuple[Callable[..., object], frozenset[str]] = (
        tsan_findings, frozenset(RULE_OF_KIND.values()))
    for matcher, ids in [*REGISTRY, *EVIDENCE, tsan]:
        if rule_id in ids:
            _lines, start = inspect.getsourcelines(matcher)
            return {"function": matcher.__name__, "file": inspect.getsourcefile(matcher),
                    "line": start}
    return None


def _cmd_explain(args: argparse.Namespace, book: RuleBook) -> int:
    rule_id = args.rule.strip().upper()
    if rule_id not in book.rules:
        matches = book.matching(args.rule.strip())
        if len(matches) != 1:
            raise UsageError(f"unknown rule {args.rule!r}; see `gilaudit rules`")
        rule_id = matches[0]
    r = book.get(rule_id)
    if args.json:
        data = r.to_dict()
        data["matcher"] = _matcher_location(rule_id)
        print(json.dumps(data, indent=2))
        return 0
    print(f"{r.id} {r.name} ({r.severity}, {r.status})")
    print(f"category: {r.category} (the hazard)  language: {r.language} (where it is found)")
    print(f"\n{r.title}\n")
    for key, heading in DOC_HEADINGS.items():
        text = dict(r.docs).get(key, "")
        if text:
            print(f"## {heading}\n\n{text.rstrip()}\n")
    print(f"## Fix\n\n{r.fix}")
    if r.replacement:
        since = f" (CPython {r.since}" + (f"; backport: {r.compat})" if r.compat else ")") \
            if r.since else ""
        print(f"Replacement: {r.replacement}{since}")
    if r.references:
        print("\n## References\n")
        for ref in r.references:
            print(f"- {ref}")
    return 0


def _pytest_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """`gilaudit stress ... --tests -- PYTEST_ARGS`: what follows the first `--` is pytest's."""
    if argv and argv[0] == "stress" and "--" in argv:
        cut = list(argv).index("--")
        return list(argv[:cut]), list(argv[cut + 1:])
    return list(argv), []


def main(argv: Sequence[str] | None = None) -> int:
    try:
        argv, pytest_args = _pytest_args(sys.argv[1:] if argv is None else argv)
        args = _parser().parse_args(argv)
        args.pytest_args = pytest_args
        if args.command is None:
            raise UsageError("gilaudit: a command is needed: scan, stress, rules, explain or "
                             "interpreters (see --help)")
        book = load_rulebook()
        if args.command == "scan":
            return _cmd_scan(args, book)
        if args.command == "rules":
            return _cmd_rules(args, book)
        if args.command == "interpreters":
            return _cmd_interpreters(args)
        if args.command == "stress":
            return _cmd_stress(args, book)
        if args.command == "report":
            return _cmd_report(args, book)
        if args.command == "dashboard":
            from gilaudit.dashboard.command import run_command  # noqa: PLC0415

            return run_command(args, book)
        if args.command == "baseline":
            return _cmd_baseline(args, book)
        return _cmd_explain(args, book)
    except GilauditError as exc:
        print(f"gilaudit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("gilaudit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `gilaudit explain FT012 | head`: the reader left; say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def entrypoint() -> None:
    sys.exit(main())
