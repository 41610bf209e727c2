"""Parse the translation units of any number of targets together, on worker processes, with
their facts cached by content."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gilaudit.cache import file_digest
from gilaudit.code_digest import code_digest
from gilaudit.frontends.c.cache import FactsCache
from gilaudit.frontends.c.facts import FileFacts
from gilaudit.frontends.c.flags import detect_toolchain
from gilaudit.frontends.c.job import ParseJob
from gilaudit.frontends.c.parse import parse_translation_unit
from gilaudit.frontends.c.plan import CPlan
from gilaudit.frontends.c.pool import ParserPool

__all__ = ["Progress", "parse_all"]

Progress = Callable[[int, int, str], None]
# A parse that ended this way is not cached: the next run tries again.
_TRANSIENT = ("internal-error", "parser-crash", "timeout")


def parse_all(plans: list[CPlan], *, workers: int, cache_root: Path | None,
              progress: Progress | None = None) -> dict[str, FileFacts]:
    """Facts by absolute path for every unit of every plan; all targets share the workers, so
    both cores stay busy across targets."""
    tool = detect_toolchain().fingerprint() + "|" + code_digest()
    results: dict[str, FileFacts] = {}
    owner: dict[str, FactsCache | None] = {}
    pending: list[tuple[ParseJob, str | None]] = []
    sizes: dict[str, int] = {}
    total = 0
    for p in plans:
        cache = FactsCache(cache_root, project_root=Path(p.root)) \
            if cache_root is not None else None
        for job in p.jobs:
            total += 1
            data = p.contents.get(job.rel, b"")
            sizes[job.abspath] = len(data)
            key = None
            if cache is not None:
                key = cache.key(file_digest(data), job.args, tool + p.headers_key)
                hit = cache.get(key)
                if hit is not None:
                    results[job.abspath] = hit
                    continue
            owner[job.abspath] = cache
            pending.append((job, key))
    done = len(results)
    if progress:
        progress(done, total, "")

    def finish(job: ParseJob, key: str | None, facts: FileFacts) -> None:
        nonlocal done
        results[job.abspath] = facts
        cache = owner.get(job.abspath)
        if cache is not None and key is not None and not any(
                d.kind in _TRANSIENT for d in facts.diagnostics):
            cache.put(key, facts)
        done += 1
        if progress:
            progress(done, total, job.rel)

    with ParserPool(workers) as pool:
        if pool.worth_it(pending, sizes):
            pool.run(pending, finish)
        else:
            for job, key in pending:
                finish(job, key, parse_translation_unit(job))
    return results
