"""Every rule, checked the clang-tidy way: a fixture where it must fire (expectations written
on the offending lines as `// expect: FTnnn`) and one where it must stay silent.

Only the rule under test runs (FT008 and the suppression rules need the others, and only
their own findings are compared). Unexpected findings and unmet expectations both fail.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import RULE_FIXTURES, ScanJson, compile_c
from gilaudit.rulebook import DOC_HEADINGS, load_rulebook
from gilaudit.static.matchers import REGISTRY

BOOK = load_rulebook()
NEEDS_ALL_RULES = {"FT008", "FT900", "FT901"}
_EXPECT = re.compile(r"//\s*expect:\s*((?:FT\d{3}[\s,]*)+)")


def _expectations(path: Path) -> set[tuple[int, str]]:
    out = set()
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = _EXPECT.search(line)
        if m:
            for rule in re.findall(r"FT\d{3}", m.group(1)):
                out.add((lineno, rule))
    return out


def _run(scan_json: ScanJson, rule: str, path: Path) -> tuple[set[tuple[int, str]], dict]:
    select = [] if rule in NEEDS_ALL_RULES else ["--select", rule]
    _code, report = scan_json(str(path), "-I", str(RULE_FIXTURES), *select)
    got = {(f["line"], f["rule"]) for f in report["findings"] if f["rule"] == rule}
    return got, report


def _no_parse_problems(report: dict) -> None:
    bad = [d for d in report["diagnostics"]
           if d["kind"] in ("parse-error", "missing-header", "parse-failed", "internal-error")]
    assert not bad, f"fixture did not parse cleanly: {bad}"


RULE_IDS = sorted(BOOK.rules)


@pytest.mark.parametrize("rule", RULE_IDS)
def test_fires(rule: str, scan_json: ScanJson) -> None:
    path = RULE_FIXTURES / rule / "fire.c"
    expected = _expectations(path)
    assert expected, f"{path} has no `// expect: {rule}` line"
    assert {r for _l, r in expected} == {rule}, "a fire fixture expects only its own rule"
    got, report = _run(scan_json, rule, path)
    _no_parse_problems(report)
    assert got == expected, (
        f"missing: {sorted(expected - got)}; unexpected: {sorted(got - expected)}")
    for f in report["findings"]:
        if f["rule"] == rule:
            assert f["symbol"], "every finding names its symbol"
            assert f["message"] and "{" not in f["message"]


@pytest.mark.parametrize("rule", RULE_IDS)
def test_stays_silent(rule: str, scan_json: ScanJson) -> None:
    path = RULE_FIXTURES / rule / "pass.c"
    assert not _expectations(path), "pass fixtures carry no expectations"
    got, report = _run(scan_json, rule, path)
    _no_parse_problems(report)
    assert got == set(), f"false positives: {sorted(got)}"


@pytest.mark.parametrize("rule", RULE_IDS)
@pytest.mark.parametrize("kind", ["fire", "pass"])
def test_fixture_is_valid_c(rule: str, kind: str) -> None:
    result = compile_c(RULE_FIXTURES / rule / f"{kind}.c")
    assert result.returncode == 0, result.stderr


def test_every_rule_has_matcher_fixtures_and_docs() -> None:
    covered = set().union(*(ids for _m, ids in REGISTRY))
    meta = {"FT008", "FT900", "FT901"}  # produced by the engine itself, not a matcher
    for rule in BOOK.rules.values():
        assert rule.id in covered | meta, f"{rule.id} has no matcher"
        assert (RULE_FIXTURES / rule.id / "fire.c").is_file(), f"{rule.id}: no fire.c"
        assert (RULE_FIXTURES / rule.id / "pass.c").is_file(), f"{rule.id}: no pass.c"
        docs = dict(rule.docs)
        for key, heading in DOC_HEADINGS.items():
            assert docs.get(key, "").strip(), f"{rule.id}: docs lack '{heading}'"
        assert (rule.fix and rule.title and rule.references) or rule.category == "meta"
    assert covered <= set(BOOK.rules), "a matcher reports a rule the catalogue lacks"
