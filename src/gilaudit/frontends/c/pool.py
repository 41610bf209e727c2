"""Parser worker processes, shared by every target of a run.

libclang is native code fed with untrusted input: a file that crashes or hangs it must cost
only that file. Files go to a pool of spawned workers; when the pool breaks or a batch runs
past its deadline, the pool is killed and the unfinished files are retried one per fresh
single-worker pool, so the culprit is known and reported, and everything else is kept.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections.abc import Callable
from types import TracebackType

from gilaudit.frontends.c.facts import Diag, FileFacts
from gilaudit.frontends.c.job import ParseJob, empty_facts
from gilaudit.frontends.c.parse import parse_translation_unit

__all__ = ["PER_FILE_TIMEOUT", "ParserPool"]

PER_FILE_TIMEOUT = 300.0
Pending = list[tuple[ParseJob, str | None]]
Finish = Callable[[ParseJob, str | None, FileFacts], None]


def _kill(pool: cf.ProcessPoolExecutor) -> None:
    # The executor has no public way to stop a worker stuck in native code.
    procs = getattr(pool, "_processes", None) or {}
    for proc in list(procs.values()):
        proc.kill()
    pool.shutdown(wait=True, cancel_futures=True)


class ParserPool:
    def __init__(self, workers: int, *,
                 parse: Callable[[ParseJob], FileFacts] = parse_translation_unit,
                 timeout: float = PER_FILE_TIMEOUT) -> None:
        self.workers = workers
        self.parse = parse
        self.timeout = timeout
        self._ctx = multiprocessing.get_context("spawn")
        self._pool: cf.ProcessPoolExecutor | None = None

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def worth_it(self, pending: Pending, sizes: dict[str, int]) -> bool:
        """Starting workers costs about half a second: only for work that repays it."""
        if self.workers <= 1 or len(pending) <= 1:
            return False
        return self._pool is not None or sum(sizes.get(j.abspath, 0) for j, _ in pending) > 256_000

    def run(self, pending: Pending, finish: Finish) -> None:
        queue = list(pending)
        solo = False
        while queue:
            batch = queue[:1] if solo else queue
            queue = queue[len(batch):]
            if solo:
                single = cf.ProcessPoolExecutor(max_workers=1, mp_context=self._ctx)
                try:
                    retry = self._batch(single, batch, finish, solo=True)
                finally:
                    _kill(single)
            else:
                if self._pool is None:
                    self._pool = cf.ProcessPoolExecutor(max_workers=self.workers,
                                                        mp_context=self._ctx)
                retry = self._batch(self._pool, batch, finish, solo=False)
                if retry:
                    _kill(self._pool)
                    self._pool = None
            if retry:
                solo = True
                queue = retry + queue

    def _batch(self, pool: cf.ProcessPoolExecutor, batch: Pending, finish: Finish, *,
               solo: bool) -> Pending:
        """Run one batch; return what must be retried (the caller then replaces the pool)."""
        futures = {pool.submit(self.parse, job): (job, key) for job, key in batch}
        deadline = self.timeout * max(1, len(batch) // max(1, self.workers))
        handled: set[cf.Future[FileFacts]] = set()
        retry: Pending = []

        def settle(fut: cf.Future[FileFacts]) -> None:
            handled.add(fut)
            job, key = futures[fut]
            try:
                finish(job, key, fut.result())
            except cf.process.BrokenProcessPool:
                if not solo:
                    retry.append((job, key))
                    return
                finish(job, key, empty_facts(job.rel, [Diag(
                    "parser-crash", "libclang crashed while parsing this file; it was not "
                    "analysed", job.rel)]))

        try:
            for fut in cf.as_completed(futures, timeout=deadline):
                settle(fut)
        except cf.TimeoutError:
            for fut, (job, key) in futures.items():
                if fut in handled:
                    continue
                if fut.done():
                    settle(fut)
                elif solo:
                    finish(job, key, empty_facts(job.rel, [Diag(
                        "timeout", f"parsing took over {self.timeout:.0f} s; not analysed",
                        job.rel)]))
                else:
                    retry.append((job, key))
        return retry
