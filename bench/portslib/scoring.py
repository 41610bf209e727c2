"""How a gilaudit report on the BEFORE release scores against the truth.

A truth item is recalled when a finding of a hazard category lies in the same file and the
same function: the finding's ``function`` field names it, its line falls in the function's
range, or (an object-state finding made where an entry point calls a helper) one of its notes
points at the access inside it, or at a helper's call on the way to it. The hazard categories
are read from `gilaudit rules --json` at run time: every category of a static rule except the
module declaration, packaging and gilaudit's own meta rules, so a category the analysis adds
later counts without a change here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .truth import TruthItem

__all__ = ["NOT_STATE", "Score", "errors_and_warnings", "hazard_categories", "score"]

NOT_STATE = frozenset({"module-declaration", "packaging", "meta"})


def hazard_categories(rules_json: dict[str, Any]) -> frozenset[str]:
    """From `gilaudit rules --json`: the categories of static rules that can answer an
    object-state change (the stress phase's categories name outcomes, not places)."""
    return frozenset(r["category"] for r in rules_json.get("rules", [])
                     if r.get("phase", "static") == "static" and r.get("category")
                     and r["category"] not in NOT_STATE)


@dataclass(frozen=True, slots=True)
class Score:
    truth: int
    recalled: list[TruthItem]
    missed: list[TruthItem]
    by_family: dict[str, tuple[int, int]]  # family -> (recalled, truth)
    # category -> truth items a finding of it recalls (an item may count for several)
    by_category: dict[str, int]


def _hazards(findings: Iterable[dict[str, Any]], categories: frozenset[str]
             ) -> Iterator[dict[str, Any]]:
    for f in findings:
        if f.get("category") in categories and f.get("path"):
            yield f


def score(truth: list[TruthItem], findings: list[dict[str, Any]],
          categories: frozenset[str]) -> Score:
    by_path: dict[str, list[dict[str, Any]]] = {}
    for f in _hazards(findings, categories):
        # a finding counts in its own file and where its notes place the access itself
        for path in {str(f["path"])} | {str(n.get("path")) for n in f.get("notes") or []
                                        if _is_access_note(n)}:
            by_path.setdefault(path, []).append(f)
    recalled: list[TruthItem] = []
    missed: list[TruthItem] = []
    fam: dict[str, list[int]] = {}
    cats: dict[str, int] = {}
    for t in truth:
        hits = {str(f["category"]) for f in by_path.get(t.path, []) if _in_function(f, t)}
        hit = bool(hits)
        for c in hits:
            cats[c] = cats.get(c, 0) + 1
        (recalled if hit else missed).append(t)
        counts = fam.setdefault(t.family, [0, 0])
        counts[0] += hit
        counts[1] += 1
    return Score(len(truth), recalled, missed, {k: (v[0], v[1]) for k, v in sorted(fam.items())},
                 dict(sorted(cats.items())))


def _is_access_note(n: dict[str, Any]) -> bool:
    return str(n.get("message", "")).startswith(("the access, in ", "also in ", "through "))


def _in_function(f: dict[str, Any], t: TruthItem) -> bool:
    if f.get("path") == t.path and (
            f.get("function") == t.function or t.start <= int(f.get("line") or 0) <= t.end):
        return True
    return any(_is_access_note(n) and n.get("path") == t.path
               and t.start <= int(n.get("line") or 0) <= t.end
               for n in f.get("notes") or [])


def errors_and_warnings(findings: list[dict[str, Any]], categories: frozenset[str]) -> int:
    return sum(1 for f in _hazards(findings, categories)
               if f.get("severity") in ("error", "warning"))
