"""A parser worker that crashes or hangs costs only its own file."""

from __future__ import annotations

from crashy_parser import crash_on_bad, hang_on_bad
from gilaudit.frontends.c.facts import FileFacts
from gilaudit.frontends.c.job import ParseJob
from gilaudit.frontends.c.pool import ParserPool


def _jobs(names: list[str]) -> list[tuple[ParseJob, str | None]]:
    return [(ParseJob(abspath=f"/nonexistent/{n}", rel=n, root="/nonexistent", language="c",
                      args=()), None) for n in names]


def _collect(parse: object, timeout: float = 300.0) -> dict[str, FileFacts]:
    got: dict[str, FileFacts] = {}

    def finish(job: ParseJob, _key: str | None, facts: FileFacts) -> None:
        got[job.rel] = facts

    names = ["a.c", "b.c", "bad.c", "c.c", "d.c"]
    with ParserPool(2, parse=parse, timeout=timeout) as pool:  # type: ignore[arg-type]
        pool.run(_jobs(names), finish)
    assert sorted(got) == sorted(names), "every file gets a result"
    return got


def test_crash_is_isolated() -> None:
    got = _collect(crash_on_bad)
    assert [d.kind for d in got["bad.c"].diagnostics] == ["parser-crash"]
    for name in ("a.c", "b.c", "c.c", "d.c"):
        assert got[name].lines == 7 and not got[name].diagnostics


def test_hang_is_isolated() -> None:
    got = _collect(hang_on_bad, timeout=3.0)
    assert [d.kind for d in got["bad.c"].diagnostics] == ["timeout"]
    for name in ("a.c", "b.c", "c.c", "d.c"):
        assert got[name].lines == 7
