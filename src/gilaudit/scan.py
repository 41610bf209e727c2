"""The static pipeline for one or more targets: discover, parse (in parallel, cached), evaluate."""

from __future__ import annotations

import hashlib
import os
import posixpath
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gilaudit import __version__
from gilaudit.archives import ArchiveLimits, extract_sdist
from gilaudit.buildinfo import BuildInfo, read_build_info
from gilaudit.cache import RESULTS_SCHEMA, ResultCache, file_digest
from gilaudit.code_digest import code_digest
from gilaudit.config import Config, load_config
from gilaudit.discover import discover, is_front_end_input
from gilaudit.findings import evaluate
from gilaudit.frontends import c, run_front_ends
from gilaudit.frontends.c.facts import FileFacts
from gilaudit.frontends.c.flags import detect_toolchain, for_target
from gilaudit.frontends.contract import FrontEndResult, TargetView, settle
from gilaudit.headers import (
    HeaderOptions,
    HeaderSet,
    TargetPython,
    find_target_python,
    gather_headers,
)
from gilaudit.headers.standard import cxx_standard
from gilaudit.model import Diagnostic, Finding, Project, Report
from gilaudit.rulebook import RuleBook

__all__ = ["ScanOptions", "run_scan"]

_HASH_LIMIT = 8 * 1024 * 1024
_NOT_TEXT = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".so", ".pyd", ".dylib")


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
    progress: c.Progress | None = field(default=None, compare=False)
    # The headers the build compiles against: its build requirements' (from wheels in the
    # cache, downloaded from `index_url` or pip's index unless `offline`) and a free-threaded
    # interpreter's (`python`, else the one the stress phase would choose).
    build_headers: bool = True
    target_headers: bool = True
    python: str | None = None
    index_url: str | None = None
    offline: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class TargetResult:
    config: Config
    findings: tuple[Finding, ...]
    diagnostics: tuple[Diagnostic, ...]
    files: dict[str, str]
    lines: int
    analysed: int
    file_modules: dict[str, str] = field(default_factory=dict)  # path -> extension module


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


def _results_key(book: RuleBook, config: Config, build: BuildInfo, project: Project,
                 contents: dict[str, bytes], root: Path, headers: HeaderSet) -> str:
    """Everything a target's result depends on: versions, toolchain, configuration, build
    metadata and the content of every source and build file."""
    h = hashlib.sha256()

    def feed(*parts: object) -> None:
        for p in parts:
            h.update(repr(p).encode("utf-8", "surrogateescape") + b"\0")

    feed(__version__, c.FACTS_SCHEMA, RESULTS_SCHEMA, book.version,
         detect_toolchain().fingerprint(), code_digest())
    feed(sorted(config.selected), sorted(config.severity.items()), config.exclude,
         config.include_dirs, config.defines, config.max_file_size)
    feed(build.include_dirs, build.defines, build.extensions, build.requires_python)
    feed(headers.key(), headers.requirement_dirs(),
         headers.python.include if headers.python else None)
    for rel, data in sorted(contents.items()):
        feed(rel, file_digest(data))
    for rel in project.build_files:
        try:
            feed(rel, file_digest((root / rel).read_bytes()))
        except OSError:
            feed(rel, None)
    # Every other file a front end may read; big ones (wheels, data) by size and mtime only.
    for other in project.others:
        if not is_front_end_input(other.path):
            continue
        try:
            if other.size <= _HASH_LIMIT:
                feed(other.path, file_digest(Path(other.abspath).read_bytes()))
            else:
                st = Path(other.abspath).stat()
                feed(other.path, st.st_size, st.st_mtime_ns)
        except OSError:
            feed(other.path, None)
    return h.hexdigest()


@dataclass(frozen=True, kw_only=True, slots=True)
class _Analysis:
    """What parsing and evaluation produced for a target (cacheable as a whole)."""

    findings: tuple[Finding, ...]
    diagnostics: tuple[Diagnostic, ...]
    files: dict[str, str]
    lines: int
    analysed: int
    file_modules: dict[str, str]

    def to_dict(self) -> dict[str, object]:
        return {"findings": [f.to_dict() for f in self.findings],
                "diagnostics": [d.to_dict() for d in self.diagnostics],
                "files": self.files, "lines": self.lines, "analysed": self.analysed,
                "file_modules": self.file_modules}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _Analysis | None:
        try:
            return cls(findings=tuple(Finding.from_dict(f) for f in d["findings"]),
                       diagnostics=tuple(Diagnostic.from_dict(x) for x in d["diagnostics"]),
                       files=dict(d["files"]), lines=int(d["lines"]),
                       analysed=int(d["analysed"]), file_modules=dict(d["file_modules"]))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True, kw_only=True, slots=True)
class _Prepared:
    """A target after discovery: its inputs, and either a cached result or the files to parse."""

    target: Path
    config: Config
    project: Project
    view: TargetView
    diagnostics: tuple[Diagnostic, ...]  # configuration, discovery and reading
    result_key: str
    cached: _Analysis | None
    plan: c.CPlan | None  # None when the cached result is used
    headers: HeaderSet


def _build_texts(project: Project, root: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    for rel in project.build_files:
        try:
            texts[rel] = (root / rel).read_bytes().decode("utf-8", errors="replace")
        except OSError:
            continue  # the build-info reader reports it
    return texts


def _prepare(target: Path, opts: ScanOptions, book: RuleBook, pch_dir: Path,
             python: TargetPython | None) -> _Prepared:
    root = target if target.is_dir() else target.parent
    config, cdiags = load_config(book, root, select=list(opts.select) or None,
                                 ignore=list(opts.ignore) or None,
                                 include_dirs=list(opts.include_dirs),
                                 defines=list(opts.defines), fail_on=opts.fail_on)
    project = discover(target, exclude=config.exclude, max_file_size=config.max_file_size)
    root = Path(project.root)
    build = read_build_info(root, project.build_files)
    view = _view(project, config, build)
    contents, read_diags = c.read_sources(view)
    texts = _build_texts(project, root)
    headers = gather_headers(
        texts, contents,
        HeaderOptions(cache_dir=_cache_root(opts), index_url=opts.index_url,
                      offline=opts.offline, requirements=opts.build_headers, python=python))
    diags = list(cdiags) + list(project.diagnostics) + read_diags + list(headers.diagnostics)
    key = ""
    cached = None
    if opts.use_cache:
        key = _results_key(book, config, build, project, contents, root, headers)
        data = ResultCache(_cache_root(opts)).get(key)
        cached = _Analysis.from_dict(data) if data is not None else None
    tool = for_target(detect_toolchain(),
                      python_include=python.include if python else None,
                      internal=headers.internal,
                      requirement_includes=headers.requirement_dirs(),
                      cxx_std=cxx_standard(texts.values()))
    plan = c.plan(view, contents=contents, pch_dir=pch_dir, toolchain=tool,
                  headers_key=headers.key()) if cached is None else None
    return _Prepared(target=target, config=config, project=project, view=view,
                     diagnostics=tuple(diags), result_key=key, cached=cached, plan=plan,
                     headers=headers)


def _finish_target(p: _Prepared, facts_by_path: dict[str, FileFacts], opts: ScanOptions,
                   book: RuleBook, extra: FrontEndResult | None) -> TargetResult:
    analysis = p.cached
    if analysis is None:
        assert p.plan is not None  # planned whenever there is no cached result
        units = [facts_by_path[j.abspath] for j in p.plan.jobs if j.abspath in facts_by_path]
        ours = c.to_result(p.plan, units, p.view)
        analysis = _analyse(p, settle(extra or FrontEndResult(), ours), book)
        if opts.use_cache:
            ResultCache(_cache_root(opts)).put(p.result_key, analysis.to_dict())
    return TargetResult(config=p.config, findings=analysis.findings,
                        diagnostics=p.diagnostics + analysis.diagnostics, files=analysis.files,
                        lines=analysis.lines, analysed=analysis.analysed,
                        file_modules=analysis.file_modules)


def _view(project: Project, config: Config, build: BuildInfo) -> TargetView:
    modules = {posixpath.normpath(src.replace("\\", "/")): ext.name
               for ext in build.extensions for src in ext.sources}
    return TargetView(root=Path(project.root), files=project.sources + project.others,
                      config=config, build=build, c_modules=modules)


def _analyse(p: _Prepared, result: FrontEndResult, book: RuleBook) -> _Analysis:
    root = Path(p.project.root)
    lines_cache: dict[str, list[str]] = {}

    def read_line(path: str, line: int) -> str:
        if path not in lines_cache:
            try:
                data = (root / path).read_bytes()
            except OSError:
                data = b""
            # A wheel, an archive or a binary has no line of code to show.
            binary = b"\0" in data[:8192] or path.lower().endswith(_NOT_TEXT)
            lines_cache[path] = [] if binary else data.decode(
                "utf-8", errors="replace").splitlines()
        text = lines_cache[path]
        return text[line - 1] if 0 < line <= len(text) else ""

    findings = evaluate(result, book=book, config=p.config, read_line=read_line)
    diags = list(result.diagnostics)
    analysed = sum(1 for v in result.files.values()
                   if v.startswith("parsed") and "(included from" not in v)
    if not (p.plan and p.plan.jobs) and not analysed \
            and not p.project.diagnostics_include("not-found"):
        diags.append(Diagnostic(path=None, kind="nothing-to-analyse",
                                message=f"{p.target}: no C/C++ source that uses the Python C "
                                        "API was found"))
    return _Analysis(findings=findings, diagnostics=tuple(diags), files=dict(result.files),
                     lines=result.lines, analysed=analysed, file_modules=dict(result.modules))


def _prefixed(prefix: str, result: TargetResult) -> TargetResult:
    if not prefix:
        return result
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
    modules = {fix(k) or k: v for k, v in result.file_modules.items()}
    return replace(result, findings=findings, diagnostics=diags, files=files,
                   file_modules=modules)


_SDIST_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip")


def _unpack(target: Path, index: int, scratch: Path,
            several: bool) -> tuple[Path, str, list[Diagnostic]]:
    """(directory to scan, prefix for reported paths, diagnostics) for one target. An sdist is
    unpacked, distrustfully, into the private scratch directory and scanned as a project whose
    paths read `pkg-1.0.tar.gz/pkg-1.0/src/x.c`."""
    if not (target.is_file() and target.name.lower().endswith(_SDIST_SUFFIXES)):
        return target, str(target).rstrip("/") if several else "", []
    dest = scratch / f"sdist-{index}"
    dest.mkdir()
    diags = extract_sdist(target, dest, limits=ArchiveLimits(), label=str(target))
    entries = list(dest.iterdir())
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0], f"{target}/{entries[0].name}", diags
    return dest, str(target), diags


def _headers_used(prepared: list[_Prepared]) -> dict[str, Any]:
    """Which headers the C/C++ code was parsed with, for the report."""
    out: dict[str, Any] = {"python": None, "requirements": {}}
    for p in prepared:
        got = p.headers.to_dict()
        out["python"] = out["python"] or got["python"]
        out["requirements"].update(got["requirements"])
    return out


def run_scan(opts: ScanOptions, book: RuleBook) -> tuple[Report, str]:
    """Scan every target; returns the report and the effective fail-on level."""
    start = time.perf_counter()
    workers = opts.jobs or _default_jobs()
    findings: list[Finding] = []
    diags: list[Diagnostic] = []
    files: dict[str, str] = {}
    file_modules: dict[str, str] = {}
    lines = 0
    fail_on = opts.fail_on or "error"
    with tempfile.TemporaryDirectory(prefix="gilaudit-") as scratch:
        pch_dir = _cache_root(opts) / "pch" if opts.use_cache else Path(scratch)
        unpacked = [_unpack(t, i, Path(scratch), len(opts.targets) > 1)
                    for i, t in enumerate(opts.targets)]
        python, python_diags = find_target_python(
            opts.python, cache=_cache_root(opts) / "target-pythons.json") \
            if opts.target_headers else (None, [])
        diags += python_diags
        prepared = [_prepare(root, opts, book, pch_dir, python)
                    for root, _prefix, _d in unpacked]
        # The other front ends need no parsing: they run on a thread of this process while
        # the C front end's parser workers use the other cores.
        with ThreadPoolExecutor(max_workers=1) as side:
            pending = [side.submit(run_front_ends, p.view, skip=("c",))
                       if p.cached is None else None for p in prepared]
            facts = c.parse_all([p.plan for p in prepared if p.plan is not None],
                                workers=workers,
                                cache_root=_cache_root(opts) if opts.use_cache else None,
                                progress=opts.progress)
            extras = [f.result() if f is not None else None for f in pending]
        results = [_finish_target(p, facts, opts, book, extra)
                   for p, extra in zip(prepared, extras, strict=True)]
    for (_root, prefix, unpack_diags), raw in zip(unpacked, results, strict=True):
        result = _prefixed(prefix, raw)
        diags += unpack_diags
        if opts.fail_on is None:
            fail_on = result.config.fail_on
        findings += result.findings
        diags += result.diagnostics
        files.update(result.files)
        file_modules.update(result.file_modules)
        lines += result.lines
    headers = _headers_used(prepared)
    report = Report(
        tool={"name": "gilaudit", "version": __version__, "rules_version": book.version,
              "python_headers": (headers["python"] or {}).get("include")
              or detect_toolchain().python_include, "headers": headers},
        targets=tuple(str(t) for t in opts.targets),
        findings=tuple(findings),
        diagnostics=tuple(diags),
        files=files,
        file_modules=file_modules,
        lines_analysed=lines,
        seconds=time.perf_counter() - start,
        options={"jobs": workers, "cache": opts.use_cache, "select": list(opts.select),
                 "ignore": list(opts.ignore), "fail_on": fail_on},
    )
    return report, fail_on
