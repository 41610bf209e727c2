"""The C/C++ front end: libclang parses each translation unit exactly as a free-threaded build
compiles it, the matchers turn the facts into hits.

The contract's ``analyse(view)`` does it all for one target. The scan pipeline uses the three
steps it is made of (``plan``, ``parse_all``, ``to_result``) so that the units of every target
share one pool of parser processes and one facts cache; the pool is this package's business.
"""

from __future__ import annotations

from pathlib import Path

from gilaudit.frontends.c.cache import FACTS_SCHEMA
from gilaudit.frontends.c.matchers import REGISTRY
from gilaudit.frontends.c.plan import CPlan, plan, read_sources
from gilaudit.frontends.c.result import to_result
from gilaudit.frontends.c.run import Progress, parse_all
from gilaudit.frontends.c.semantic_bindings import DECLARATION_RULES
from gilaudit.frontends.contract import FrontEndResult, TargetView

__all__ = ["FACTS_SCHEMA", "RULES", "CPlan", "Progress", "analyse", "parse_all", "plan",
           "read_sources", "to_result"]

RULES: frozenset[str] = frozenset().union(*(rules for _m, rules in REGISTRY)) \
    | DECLARATION_RULES


def analyse(view: TargetView, *, workers: int = 1, cache_root: Path | None = None,
            pch_dir: Path | None = None) -> FrontEndResult:
    contents, diags = read_sources(view)
    p = plan(view, contents=contents, pch_dir=pch_dir)
    facts = parse_all([p], workers=workers, cache_root=cache_root)
    units = [facts[j.abspath] for j in p.jobs if j.abspath in facts]
    result = to_result(p, units, view)
    return FrontEndResult(diagnostics=tuple(diags)).merged(result)
