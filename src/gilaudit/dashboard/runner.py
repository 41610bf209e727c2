"""A dashboard run: every package's job in a confined child process, on a local pool or a
Dask cluster, each result recorded in the database the moment it arrives (a killed run
resumes where it stopped), then the static site written from the database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gilaudit.dashboard.db import Database
from gilaudit.dashboard.job import JobSpec
from gilaudit.dashboard.model import PackageResult
from gilaudit.dynamic.confined import confine, signal_name, tail_of, wait_or_kill

__all__ = ["RunOptions", "RunSummary", "run_dashboard", "run_job"]



@dataclass(frozen=True, kw_only=True, slots=True)
class RunOptions:
    index_url: str
    db_path: Path
    cache_dir: Path
    python: str | None = None
    jobs: int = 2
    executor: str = "local"  # local | dask
    scheduler: str | None = None  # the Dask scheduler's address
    timeout: float = 900.0  # seconds per package, everything included
    memory_bytes: int = 4 << 30  # address space per package job
    http_timeout: float = 30.0
    stress_budget: float = 120.0
    stress_timeout: float = 10.0
    rejected: tuple[str, ...] = ()  # package-list lines that were not project names

    def to_dict(self) -> dict[str, Any]:
        return {"jobs": self.jobs, "executor": self.executor, "scheduler": self.scheduler,
                "timeout": self.timeout, "memory_bytes": self.memory_bytes,
                "http_timeout": self.http_timeout, "stress_budget": self.stress_budget,
                "rejected": list(self.rejected)}


@dataclass(frozen=True, kw_only=True, slots=True)
class RunSummary:
    run_id: int
    resumed: bool
    analysed: int  # jobs that ran in this invocation
    reused: int  # versions already analysed by an earlier run
    skipped_done: int  # recorded earlier in this same (resumed) run
    failed: int
    seconds: float


def run_job(spec: JobSpec, timeout: float = 900.0, memory_bytes: int = 4 << 30) -> PackageResult:
    """One package in its own process: a time limit, an address-space limit, no core files.
    Top-level and picklable, so a Dask worker runs exactly this."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gilaudit-dash-") as scratch:
        work = Path(scratch)
        spec = replace(spec, result_path=str(work / "result.json"))
        (work / "spec.json").write_text(json.dumps(spec.to_dict()), encoding="utf-8")
        log = work / "log.txt"
        # The CPU limit counts both cores the job may use, plus the stress children's share.
        cpu = int(timeout * (os.cpu_count() or 1)) + 10
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gilaudit.dashboard.job", str(work / "spec.json")],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=work,
                start_new_session=True,
                preexec_fn=lambda: confine(memory_bytes, cpu))  # noqa: PLW1509 - limits only
            code = wait_or_kill(proc, timeout)

        def failed(reason: str) -> PackageResult:
            return PackageResult(name=spec.name, version=None, status="failed", reason=reason,
                                 seconds=time.monotonic() - started)

        if code is None:
            return failed(f"the analysis took longer than {timeout:g} s and was stopped")
        result_file = Path(spec.result_path)
        if result_file.is_file():
            try:
                return PackageResult.from_dict(json.loads(result_file.read_text("utf-8")))
            except (ValueError, KeyError, TypeError) as exc:
                return failed(f"the analysis wrote an unreadable result ({exc})")
        said = tail_of(log, 2000).strip()
        if code < 0:
            return failed(f"the analysis process was killed by {signal_name(-code)}: "
                          f"{said[-300:]}")
        if "MemoryError" in said:
            return failed("the analysis ran out of memory")
        return failed(f"the analysis process ended with status {code}: {said[-300:]}")


def _known_versions(db: Database, name: str, python: str | None) -> tuple[str, ...]:
    versions = {r.version for info, r in db.history(name)
                if r.status == "ok" and r.version and info.python == python}
    return tuple(sorted(v for v in versions if v))


def _local(specs: list[JobSpec], options: RunOptions) -> Iterator[PackageResult]:
    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        futures: dict[Future[PackageResult], JobSpec] = {
            pool.submit(run_job, s, options.timeout, options.memory_bytes): s for s in specs}
        for fut in as_completed(futures):
            yield _outcome(fut, futures[fut])


def _dask(specs: list[JobSpec], options: RunOptions) -> Iterator[PackageResult]:
    try:
        from distributed import Client  # noqa: PLC0415
        from distributed import as_completed as dask_completed  # noqa: PLC0415
    except ImportError as exc:
        raise RuntimeError("--executor dask needs the `distributed` package "
                           "(pip install 'dask[distributed]')") from exc
    if not options.scheduler:
        raise RuntimeError("--executor dask needs --scheduler ADDRESS (tcp://host:8786)")
    with Client(options.scheduler, timeout="30s") as client:
        futures = {client.submit(run_job, s, options.timeout, options.memory_bytes, pure=False,
                                 key=f"gilaudit-{s.name}-{time.time_ns()}"): s for s in specs}
        for fut in dask_completed(list(futures)):
            spec = futures[fut]
            try:
                got = fut.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker is the package's status
                got = PackageResult(name=spec.name, version=None, status="failed",
                                    reason=f"the Dask task failed: {type(exc).__name__}: {exc}")
            yield got


def _outcome(fut: Future[PackageResult], spec: JobSpec) -> PackageResult:
    try:
        return fut.result()
    except Exception as exc:  # noqa: BLE001 - never lose a package to a runner bug
        return PackageResult(name=spec.name, version=None, status="failed",
                             reason=f"gilaudit could not run it: {type(exc).__name__}: {exc}")


def run_dashboard(names: list[str], options: RunOptions,
                  on_result: Callable[[PackageResult, int, int], None] | None = None,
                  ) -> RunSummary:
    """Analyse ``names`` (canonical), resuming an unfinished run with the same index and
    interpreter; every result is committed as soon as it arrives."""
    started = time.monotonic()
    with Database.open(options.db_path) as db:
        run_id = db.unfinished_run(index_url=options.index_url, python=options.python)
        resumed = run_id is not None
        if run_id is None:
            run_id = db.start_run(index_url=options.index_url, python=options.python,
                                  options=options.to_dict())
        done = db.done(run_id)
        todo = [n for n in names if n not in done]
        specs = [JobSpec(name=n, index_url=options.index_url,
                         cache_dir=str(options.cache_dir), python=options.python,
                         known_versions=_known_versions(db, n, options.python),
                         http_timeout=options.http_timeout,
                         stress_budget=options.stress_budget,
                         stress_timeout=options.stress_timeout) for n in todo]
        results = _dask(specs, options) if options.executor == "dask" else \
            _local(specs, options)
        analysed = reused = failed = 0
        for count, got in enumerate(results, start=1):
            result = got
            if got.status == "reused" and got.version and db.record_reused(
                    run_id, got.name, got.version, options.python):
                reused += 1
            else:
                if got.status == "reused":  # the earlier row is gone: say so, keep going
                    result = replace(got, status="failed",
                                     reason="an earlier result was to be reused but is gone")
                db.record(run_id, result)
                analysed += 1
                failed += result.status == "failed"
            if on_result is not None:
                on_result(result, count, len(specs))
        db.finish_run(run_id)
    return RunSummary(run_id=run_id, resumed=resumed, analysed=analysed, reused=reused,
                      skipped_done=len(names) - len(todo), failed=failed,
                      seconds=time.monotonic() - started)
