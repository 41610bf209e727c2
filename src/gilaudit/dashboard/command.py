"""`gilaudit dashboard`: arguments to a run, a progress bar, the site."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from platformdirs import user_cache_dir

from gilaudit.dashboard.model import PackageResult
from gilaudit.dashboard.runner import RunOptions, run_dashboard
from gilaudit.dashboard.toplist import PackageList, parse_names, top_packages
from gilaudit.errors import UsageError
from gilaudit.rulebook import RuleBook

__all__ = ["run_command"]


def _names(args: argparse.Namespace) -> PackageList:
    parts = [parse_names(args.names, "command line")]
    if args.packages is not None:
        try:
            raw = args.packages.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {args.packages}: {exc.strerror or exc}") from exc
        text = raw.decode("utf-8", errors="replace")  # junk bytes become rejected lines
        parts.append(parse_names(text.splitlines(), str(args.packages)))
    if args.top is not None:
        if args.top <= 0:
            raise UsageError("--top must be 1 or more")
        parts.append(top_packages(args.top))
    names: list[str] = []
    for part in parts:
        names += [n for n in part.names if n not in names]
    return PackageList(names=tuple(names),
                       rejected=tuple(r for part in parts for r in part.rejected))


def run_command(args: argparse.Namespace, book: RuleBook) -> int:
    from gilaudit.dashboard.db import Database  # noqa: PLC0415
    from gilaudit.dashboard.site import write_site  # noqa: PLC0415

    if args.jobs < 1:
        raise UsageError("--jobs must be 1 or more")
    if args.executor == "dask" and not args.scheduler:
        raise UsageError("--executor dask needs --scheduler ADDRESS")
    wanted = _names(args)
    for line in wanted.rejected:
        print(f"gilaudit: skipped {line}", file=sys.stderr)
    if not wanted.names and not args.site_only:
        raise UsageError("no packages: give names, --packages FILE or --top N")
    if not args.site_only:
        options = RunOptions(
            index_url=args.index, db_path=args.db,
            cache_dir=args.cache_dir or Path(user_cache_dir("gilaudit")) / "dashboard",
            python=args.python, jobs=args.jobs, executor=args.executor,
            scheduler=args.scheduler, timeout=args.timeout,
            memory_bytes=int(args.memory * (1 << 30)), http_timeout=args.http_timeout,
            stress_budget=args.stress_budget, rejected=wanted.rejected)
        show = sys.stderr.isatty() and not args.no_progress
        with _progress(show, len(wanted.names)) as tick:
            summary = run_dashboard(list(wanted.names), options, on_result=tick)
        print(f"gilaudit: run {summary.run_id}{' (resumed)' if summary.resumed else ''}: "
              f"{summary.analysed} analysed, {summary.reused} reused from earlier runs, "
              f"{summary.skipped_done} already done, {summary.failed} failed, "
              f"{summary.seconds:.1f} s", file=sys.stderr)
    with Database.open(args.db) as db:
        site = write_site(db, args.output)
    print(f"gilaudit: wrote the site to {args.output}: {site.packages} package page(s), "
          f"{site.total_bytes / 1e6:.1f} MB", file=sys.stderr)
    return 0


class _progress:
    """A rich progress bar with counts, rate and ETA on a terminal; a line per package
    otherwise (so a log shows how far a long run got)."""

    def __init__(self, show: bool, total: int) -> None:
        self.show = show
        self.total = total
        self.started = time.monotonic()
        self.bar: object | None = None
        self.task: object | None = None

    def __enter__(self) -> _progress:
        if self.show:
            from rich.progress import (  # noqa: PLC0415
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            bar = Progress(TextColumn("packages"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("{task.fields[rate]}/min"), TimeRemainingColumn(),
                           TextColumn("{task.description}"), transient=True)
            bar.start()
            self.task = bar.add_task("", total=self.total, rate="-")
            self.bar = bar
        return self

    def __call__(self, result: PackageResult, done: int, total: int) -> None:
        minutes = max(time.monotonic() - self.started, 1e-6) / 60
        rate = f"{done / minutes:.1f}"
        if self.bar is not None:
            self.bar.update(self.task, completed=done, total=total,  # type: ignore[attr-defined]
                            rate=rate, description=f"{result.name}: {result.verdict}")
        else:
            print(f"gilaudit: [{done}/{total}] {result.name} {result.version or ''}: "
                  f"{result.status} {result.verdict} {result.reason[:120]}".rstrip(),
                  file=sys.stderr)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()  # type: ignore[attr-defined]
