"""Every rule, checked the clang-tidy way: a fixture where it must fire (expectations written
on the offending lines as `// expect: FTnnn`, or `# expect: FTnnn` where `#` starts a comment)
and one where it must stay silent.

A fixture is a file `fire.<ext>` / `pass.<ext>`, or a directory `fire/` / `pass/` scanned as a
project. Inside a directory, `NAME.whl.d/` is zipped into the wheel `NAME.whl` and `X.so.c` is
compiled into the shared object `X.so` before the scan (binaries are never committed), and
`expected.txt` lists findings that no comment can carry, one `path[:line] FTnnn` per line.

Only the rule under test runs (FT008 and the suppression rules need the others, and only
their own findings are compared). Unexpected findings and unmet expectations both fail.
"""

from __future__ import annotations

import re
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import RULE_FIXTURES, ScanJson, compile_c, compile_shared
from gilaudit.frontends import front_ends
from gilaudit.frontends.c.matchers import REGISTRY
from gilaudit.language import language_of
from gilaudit.rulebook import DOC_HEADINGS, load_rulebook

BOOK = load_rulebook()
NEEDS_ALL_RULES = {"FT008", "FT900", "FT901"}
_EXPECT = re.compile(r"(?://|#)\s*expect:\s*((?:FT\d{3}[\s,]*)+)")
Expectation = tuple[str, int | None, str]  # (path relative to the target, line, rule)


def _file_expectations(path: Path, rel: str) -> set[Expectation]:
    out: set[Expectation] = set()
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return out
    for lineno, line in enumerate(text.splitlines(), 1):
        m = _EXPECT.search(line)
        if m:
            for rule in re.findall(r"FT\d{3}", m.group(1)):
                out.add((rel, lineno, rule))
    return out


def _expectations(fixture: Path) -> set[Expectation]:
    if fixture.is_file():
        return _file_expectations(fixture, fixture.name)
    out: set[Expectation] = set()
    for path in sorted(fixture.rglob("*")):
        if not path.is_file() or path.name == "expected.txt":
            continue
        rel = str(path.relative_to(fixture))
        # Members of a wheel recipe are reported as `NAME.whl/member`.
        rel = re.sub(r"\.whl\.d/", ".whl/", rel)
        out |= _file_expectations(path, rel)
    listed = fixture / "expected.txt"
    if listed.is_file():
        for entry in listed.read_text(encoding="utf-8").splitlines():
            text = entry.strip()
            if not text or text.startswith("#"):
                continue
            where, rule = text.rsplit(None, 1)
            path, _, line = where.partition(":")
            out.add((path, int(line) if line else None, rule))
    return out


def _materialise(fixture: Path, into: Path) -> Path:
    """Copy a fixture directory, zipping wheel recipes and compiling shared objects."""
    target = into / fixture.name
    shutil.copytree(fixture, target)
    for so_c in sorted(target.rglob("*.so.c")):
        result = compile_shared(so_c, so_c.with_suffix(""))
        assert result.returncode == 0, result.stderr
        so_c.unlink()
    for recipe in sorted(target.rglob("*.whl.d"), key=lambda p: len(p.parts), reverse=True):
        wheel = recipe.with_name(recipe.name[: -len(".d")])
        with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
            for member in sorted(recipe.rglob("*")):
                if member.is_file():
                    zf.write(member, str(member.relative_to(recipe)))
        shutil.rmtree(recipe)
    (target / "expected.txt").unlink(missing_ok=True)
    return target


def _fixture(rule: str, kind: str) -> Path:
    folder = RULE_FIXTURES / rule
    found = sorted(p for p in folder.iterdir() if kind in (p.name, p.stem))
    assert len(found) == 1, f"{folder}: expected exactly one {kind}.* or {kind}/, found {found}"
    return found[0]


def _run(scan_json: ScanJson, rule: str, fixture: Path,
         tmp_path: Path) -> tuple[set[Expectation], dict]:
    select = [] if rule in NEEDS_ALL_RULES else ["--select", rule]
    target = _materialise(fixture, tmp_path) if fixture.is_dir() else fixture
    _code, report = scan_json(str(target), "-I", str(RULE_FIXTURES), *select)
    got: set[Expectation] = set()
    for f in report["findings"]:
        if f["rule"] == rule:
            got.add((f["path"], f["line"], rule))
        # Every front end's findings say where they were found, the one way.
        assert f["language"] == language_of(BOOK.get(f["rule"]).language, f["path"]), f
    return got, report


def _no_parse_problems(report: dict) -> None:
    bad = [d for d in report["diagnostics"]
           if d["kind"] in ("parse-error", "missing-header", "parse-failed", "internal-error")]
    assert not bad, f"fixture did not parse cleanly: {bad}"


# Dynamic rules have no source fixtures: tests/test_stress.py fires and clears each one on
# fixture extensions (DYNAMIC_FIXTURES there).
RULE_IDS = sorted(r.id for r in BOOK.rules.values() if r.phase == "static")


@pytest.mark.parametrize("rule", RULE_IDS)
def test_fires(rule: str, scan_json: ScanJson, tmp_path: Path) -> None:
    path = _fixture(rule, "fire")
    expected = _expectations(path)
    assert expected, f"{path} has no `expect: {rule}` line"
    assert {r for _p, _l, r in expected} == {rule}, "a fire fixture expects only its own rule"
    got, report = _run(scan_json, rule, path, tmp_path)
    # An expectation without a line matches a finding on that path at any line.
    got = {(p, None, r) if (p, None, r) in expected else (p, ln, r) for p, ln, r in got}
    _no_parse_problems(report)
    assert got == expected, (
        f"missing: {sorted(expected - got)}; unexpected: {sorted(got - expected)}")
    for f in report["findings"]:
        if f["rule"] == rule:
            assert f["symbol"], "every finding names its symbol"
            assert f["message"] and "{" not in f["message"]


@pytest.mark.parametrize("rule", RULE_IDS)
def test_stays_silent(rule: str, scan_json: ScanJson, tmp_path: Path) -> None:
    path = _fixture(rule, "pass")
    assert not _expectations(path), "pass fixtures carry no expectations"
    got, report = _run(scan_json, rule, path, tmp_path)
    _no_parse_problems(report)
    assert got == set(), f"false positives: {sorted(got)}"


C_FIXTURES = sorted(p for p in RULE_FIXTURES.glob("FT*/*") if p.suffix == ".c")


@pytest.mark.parametrize("path", C_FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_is_valid_c(path: Path) -> None:
    if path.parent.name == "FT145" and path.stem == "fire" and sys.version_info >= (3, 13):
        pytest.skip("FT145's fire fixture uses names CPython 3.13 removed: that is its point")
    result = compile_c(path)
    assert result.returncode == 0, result.stderr


def test_every_rule_has_matcher_fixtures_and_docs() -> None:
    covered = set().union(*(ids for _m, ids in REGISTRY))
    for name, _analyse, rules in front_ends():
        assert rules, f"front end {name} does not say which rules it reports (RULES)"
        covered |= rules
    meta = {"FT008", "FT900", "FT901"}  # produced by the engine itself, not a matcher
    for rule in BOOK.rules.values():
        if rule.phase == "dynamic":
            continue
        assert rule.id in covered | meta, f"{rule.id} has no matcher"
        for kind in ("fire", "pass"):
            _fixture(rule.id, kind)
        docs = dict(rule.docs)
        for key, heading in DOC_HEADINGS.items():
            assert docs.get(key, "").strip(), f"{rule.id}: docs lack '{heading}'"
        assert (rule.fix and rule.title and rule.references) or rule.category == "meta"
    assert covered <= set(BOOK.rules), "a matcher reports a rule the catalogue lacks"
