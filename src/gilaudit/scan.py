"""The static pipeline for one or more targets: discover, parse (in parallel, cached), evaluate."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gilaudit import __version__
from gilaudit.buildinfo import BuildInfo, read_build_info
from gilaudit.cache import FACTS_SCHEMA, FactsCache, ResultCache, file_digest
from gilaudit.config import Config, load_config
from gilaudit.discover import discover
from gilaudit.model import Diagnostic, Finding, Project, Report
from gilaudit.parallel import ParserPool
from gilaudit.rulebook import RuleBook
from gilaudit.static.c_clang import ParseJob, parse_translation_unit
from gilaudit.static.engine import evaluate
from gilaudit.static.facts import FileFacts
from gilaudit.static.flags import base_args, detect_toolchain, file_args
from gilaudit.static.includes import build_include_graph
from gilaudit.static.pch import precompiled_prelude

__all__ = ["ScanOptions", "run_scan"]

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True, kw_only=True, slots=True)
class ScanOptions:
    targets: tuple[Path, ...]
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    include_dirs: tuple[str, ...] = ()
    defines: tuple[str, ...] = ()
    fail_on: str | None = None
    jobs: int = 0  # 0: all cores
    cache_dir: Path | None = None
    use_cache: bool = True
    progress: Progress | None = field(default=None, compare=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class TargetResult:
    config: Config
    findings: tuple[Finding, ...]
    diagnostics: tuple[Diagnostic, ...]
    files: dict[str, str]
    lines: int
    analysed: int


def _default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _cache_root(opts: ScanOptions) -> Path:
    if opts.cache_dir is not None:
        return opts.cache_dir
    from platformdirs import user_cache_dir  # noqa: PLC0415 - only when caching

    return Path(user_cache_dir("gilaudit"))


def _jobs_for(project: Project, config: Config, build: BuildInfo,
              graph_input: list[tuple[str, bytes]], root: Path,
              pch_dir: Path | None) -> tuple[list[ParseJob], list[Diagnostic], dict[str, str]]:
    """Decide which files are translation units to parse, and their command lines."""
    graph = build_include_graph(graph_input)
    tool = detect_toolchain()
    contents = dict(graph_input)
    base_dirs = [str(root)] + [str(root / d) for d in ("include", "src") if (root / d).is_dir()]
    build_dirs = [d if os.path.isabs(d) else str(root / d) for d in build.include_dirs]
    user_dirs = [d if os.path.isabs(d) else str(root / d) for d in config.include_dirs]
    files: dict[str, str] = {}
    jobs: list[ParseJob] = []
    pchs: dict[tuple[str, ...], str | None] = {}
    diags = list(build.diagnostics)
    if tool.builtin_include is None:
        diags.append(Diagnostic(path=None, kind="toolchain",
                                message="no C compiler found to supply builtin headers "
                                        "(stddef.h, ...); parse errors are likely"))
    for src in project.sources:
        if src.language == "header":
            continue
        if src.path not in graph.uses_python:
            files[src.path] = "skipped: does not use the Python C API"
            continue
        extra = [str(root / d) if d != "." else str(root)
                 for d in graph.extra_dirs.get(src.path, ())]
        dirs = list(dict.fromkeys(user_dirs + build_dirs + extra + base_dirs))
        head = contents.get(src.path, b"")
        defines = list(build.defines) + list(config.defines)
        pch = None
        if pch_dir is not None:
            base = base_args(tool, language=src.language, head=head, defines=defines)
            if base not in pchs:
                pchs[base] = precompiled_prelude(tool, base, pch_dir)
            pch = pchs[base]
        args = file_args(tool, language=src.language, head=head, include_dirs=dirs,
                         defines=defines, pch=pch)
        jobs.append(ParseJob(abspath=src.abspath, rel=src.path, root=str(root),
                             language=src.language, args=args))
    return jobs, diags, files


def _parse_all(jobs: list[ParseJob], *, pool: ParserPool, cache: FactsCache | None,
               toolchain: str, contents: dict[str, bytes],
               progress: Progress | None) -> list[FileFacts]:
    results: dict[str, FileFacts] = {}
    pending: list[tuple[ParseJob, str | None]] = []
    for job in jobs:
        key = None
        if cache is not None:
            key = cache.key(file_digest(contents.get(job.rel, b"")), job.args, toolchain)
            hit = cache.get(key)
            if hit is not None:
                results[job.rel] = hit
                continue
        pending.append((job, key))
    done = len(results)
    total = len(jobs)
    if progress:
        progress(done, total, "")

    def finish(job: ParseJob, key: str | None, facts: FileFacts) -> None:
        nonlocal done
        results[job.rel] = facts
        if cache is not None and key is not None and not any(
                d.kind in ("internal-error", "parser-crash", "timeout") for d in facts.diagnostics):
            cache.put(key, facts)
        done += 1
        if progress:
            progress(done, total, job.rel)

    if pool.worth_it(pending, {rel: len(data) for rel, data in contents.items()}):
        pool.run(pending, finish)
    else:
        for job, key in pending:
            finish(job, key, parse_translation_unit(job))
    return [results[j.rel] for j in jobs if j.rel in results]


def _results_key(book: RuleBook, config: Config, build: BuildInfo, project: Project,
                 graph_input: list[tuple[str, bytes]], root: Path) -> str:
    """Everything a target's result depends on: versions, toolchain, configuration, build
    metadata and the content of every source and build file."""
    h = hashlib.sha256()

    def feed(*parts: object) -> None:
        for p in parts:
            h.update(repr(p).encode("utf-8", "surrogateescape") + b"\0")

    feed(__version__, FACTS_SCHEMA, book.version, detect_toolchain().fingerprint())
    feed(sorted(config.selected), sorted(config.severity.items()), config.exclude,
         config.include_dirs, config.defines, config.max_file_size)
    feed(build.include_dirs, build.defines, build.extensions, build.requires_python)
    for rel, data in sorted(graph_input):
        feed(rel, file_digest(data))
    for rel in project.build_files:
        try:
            feed(rel, file_digest((root / rel).read_bytes()))
        except OSError:
            feed(rel, None)
    return h.hexdigest()


@dataclass(frozen=True, kw_only=True, slots=True)
class _Analysis:
    """What parsing and evaluation produced for a target (cacheable as a whole)."""

    findings: tuple[Finding, ...]
    diagnostics: tuple[Diagnostic, ...]
    files: dict[str, str]
    lines: int
    analysed: int

    def to_dict(self) -> dict[str, object]:
        return {"findings": [f.to_dict() for f in self.findings],
                "diagnostics": [d.to_dict() for d in self.diagnostics],
                "files": self.files, "lines": self.lines, "analysed": self.analysed}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _Analysis | None:
        try:
            return cls(findings=tuple(Finding.from_dict(f) for f in d["findings"]),
                       diagnostics=tuple(Diagnostic.from_dict(x) for x in d["diagnostics"]),
                       files=dict(d["files"]), lines=int(d["lines"]),
                       analysed=int(d["analysed"]))
        except (KeyError, TypeError, ValueError):
            return None


def _scan_target(target: Path, opts: ScanOptions, book: RuleBook, pool: ParserPool) -> TargetResult:
    root = target if target.is_dir() else target.parent
    config, cdiags = load_config(book, root, select=list(opts.select) or None,
                                 ignore=list(opts.ignore) or None,
                                 include_dirs=list(opts.include_dirs),
                                 defines=list(opts.defines), fail_on=opts.fail_on)
    project = discover(target, exclude=config.exclude, max_file_size=config.max_file_size)
    diags = list(cdiags) + list(project.diagnostics)
    root = Path(project.root)
    graph_input: list[tuple[str, bytes]] = []
    for src in project.sources:
        try:
            graph_input.append((src.path, Path(src.abspath).read_bytes()))
        except OSError as exc:
            diags.append(Diagnostic(path=src.path, kind="unreadable",
                                    message=f"cannot read: {exc.strerror or exc}"))
    build = read_build_info(root, project.build_files)
    results = ResultCache(_cache_root(opts)) if opts.use_cache else None
    key = _results_key(book, config, build, project, graph_input, root) if results else ""
    cached = results.get(key) if results else None
    analysis = _Analysis.from_dict(cached) if cached is not None else None
    if analysis is None:
        analysis = _analyse(target, opts, book, pool, config, project, build, graph_input)
        if results is not None:
            results.put(key, analysis.to_dict())
    return TargetResult(config=config, findings=analysis.findings,
                        diagnostics=tuple(diags) + analysis.diagnostics, files=analysis.files,
                        lines=analysis.lines, analysed=analysis.analysed)


def _analyse(target: Path, opts: ScanOptions, book: RuleBook, pool: ParserPool, config: Config,
             project: Project, build: BuildInfo,
             graph_input: list[tuple[str, bytes]]) -> _Analysis:
    root = Path(project.root)
    diags: list[Diagnostic] = []
    with tempfile.TemporaryDirectory(prefix="gilaudit-") as scratch:
        pch_dir = _cache_root(opts) / "pch" if opts.use_cache else Path(scratch)
        jobs, jdiags, files = _jobs_for(project, config, build, graph_input, root, pch_dir)
        diags += jdiags
        cache = FactsCache(_cache_root(opts), project_root=root) if opts.use_cache else None
        tool = detect_toolchain()
        facts = _parse_all(jobs, pool=pool, cache=cache, toolchain=tool.fingerprint(),
                           contents=dict(graph_input), progress=opts.progress)
    lines_cache: dict[str, list[str]] = {}

    def read_line(path: str, line: int) -> str:
        if path not in lines_cache:
            try:
                data = (root / path).read_bytes()
                lines_cache[path] = data.decode("utf-8", errors="replace").splitlines()
            except OSError:
                lines_cache[path] = []
        text = lines_cache[path]
        return text[line - 1] if 0 < line <= len(text) else ""

    result = evaluate(facts, book=book, config=config, build=build, read_line=read_line)
    analysed = 0
    lines = 0
    counted_headers: set[str] = set()
    sizes = {p: data.count(b"\n") + 1 for p, data in graph_input}
    for f in facts:
        failed = [d for d in f.diagnostics if d.kind in (
            "binary", "unreadable", "parse-failed", "parser-crash", "timeout", "internal-error")]
        for d in f.diagnostics:
            diags.append(Diagnostic(path=d.path, kind=d.kind, message=d.message,
                                    line=d.line or None))
        if failed:
            files[f.path] = f"failed: {failed[0].kind}"
            continue
        partial = any(d.kind in ("parse-error", "missing-header") for d in f.diagnostics)
        files[f.path] = "parsed (partial)" if partial else "parsed"
        analysed += 1
        lines += f.lines
        for dep, _sha in f.deps:
            if dep not in counted_headers:
                counted_headers.add(dep)
                lines += sizes.get(dep, 0)
    diags += result.diagnostics
    if not jobs and not project.diagnostics_include("not-found"):
        diags.append(Diagnostic(path=None, kind="nothing-to-analyse",
                                message=f"{target}: no C/C++ source that uses the Python C API "
                                        "was found"))
    return _Analysis(findings=result.findings, diagnostics=tuple(diags), files=files,
                     lines=lines, analysed=analysed)


def _prefixed(prefix: str, result: TargetResult) -> TargetResult:
    if not prefix:
        return result
    from dataclasses import replace  # noqa: PLC0415

    def fix(path: str | None) -> str | None:
        return f"{prefix}/{path}" if path else path

    findings = tuple(
        replace(f, location=replace(f.location, path=fix(f.location.path) or "")
                if f.location else None,
                notes=tuple(replace(n, location=replace(n.location, path=fix(n.location.path)
                                                        or "") if n.location else None)
                            for n in f.notes))
        for f in result.findings
    )
    diags = tuple(replace(d, path=fix(d.path)) for d in result.diagnostics)
    files = {fix(k) or k: v for k, v in result.files.items()}
    return replace(result, findings=findings, diagnostics=diags, files=files)


def run_scan(opts: ScanOptions, book: RuleBook) -> tuple[Report, str]:
    """Scan every target; returns the report and the effective fail-on level."""
    start = time.perf_counter()
    workers = opts.jobs or _default_jobs()
    findings: list[Finding] = []
    diags: list[Diagnostic] = []
    files: dict[str, str] = {}
    lines = 0
    fail_on = opts.fail_on or "error"
    with ParserPool(workers) as pool:
        results = [_scan_target(target, opts, book, pool) for target in opts.targets]
    for target, raw in zip(opts.targets, results, strict=True):
        result = _prefixed(str(target).rstrip("/"), raw) if len(opts.targets) > 1 else raw
        if opts.fail_on is None:
            fail_on = result.config.fail_on
        findings += result.findings
        diags += result.diagnostics
        files.update(result.files)
        lines += result.lines
    tool = detect_toolchain()
    report = Report(
        tool={"name": "gilaudit", "version": __version__, "rules_version": book.version,
              "python_headers": tool.python_include},
        targets=tuple(str(t) for t in opts.targets),
        findings=tuple(findings),
        diagnostics=tuple(diags),
        files=files,
        lines_analysed=lines,
        seconds=time.perf_counter() - start,
        options={"jobs": workers, "cache": opts.use_cache, "select": list(opts.select),
                 "ignore": list(opts.ignore), "fail_on": fail_on},
    )
    return report, fail_on
