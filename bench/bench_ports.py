"""`make bench-ports`: recall of gilaudit's hazard findings on real free-threading ports.

For each pair of `bench/ports.toml` (a package's release before its port and the one after;
CPython's Modules/ from Debian's 3.11 and 3.13 source packages): fetch both into the cache
(hashes checked), derive the truth from the port (bench/portslib/truth.py) and write it to
`<cache>/bench-ports/truth/NAME.json`, scan BEFORE and AFTER with the gilaudit of this
checkout, and print recall per package and per family, the errors and warnings of the hazard
categories on each release, and how many of the port's functions are still reported on AFTER.

  --show-truth   print every truth item (with the added line that made it), the hand
                 exclusions and the markers outside any function
  --misses       print the truth items no finding recalled
  --json OUT     write everything as JSON
  --reuse-reports  take the scans from the cache when present (to iterate on the truth;
                 they are not redone when gilaudit changes)

The `still` column counts the port's functions that AFTER still reports (a hint of false
positives: the port fixed them), `partial` the files clang parsed only in part.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

sys.path.insert(0, str(Path(__file__).resolve().parent))
from portslib import (
    Pair,
    Score,
    Truth,
    apply_overrides,
    derive_truth,
    errors_and_warnings,
    hazard_categories,
    load,
    score,
    source_files,
)
from portslib.fetch import FetchError, debian_tree, sdist_tree
from portslib.sources import is_skipped

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGET = 0.80  # recall on BEFORE, and the drop of errors and warnings on AFTER


def cache_dir() -> Path:
    base = os.environ.get("GILAUDIT_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gilaudit")
    return Path(base) / "bench-ports"


@dataclass(slots=True)
class Row:
    pair: Pair
    label: str
    truth: Truth | None = None
    score: Score | None = None
    still: Score | None = None
    score_ew: Score | None = None  # recalled by errors and warnings alone
    before_ew: int = 0
    after_ew: int = 0
    # errors and warnings in the files the port changed (those holding a truth item)
    before_scope: int = 0
    after_scope: int = 0
    seconds: float = 0.0
    error: str = ""
    diagnostics: dict[str, int] = field(default_factory=dict)

    def partial(self) -> str:
        """Files parsed only in part (clang errors), BEFORE/AFTER: the analysis there is too."""
        return (f"{self.diagnostics.get('before parse-error', 0)}/"
                f"{self.diagnostics.get('after parse-error', 0)}")

    def to_dict(self) -> dict[str, Any]:
        s = self.score
        return {"package": self.pair.name, "label": self.label, "why": self.pair.why,
                "language": self.pair.language, "error": self.error,
                "truth": s.truth if s else 0, "recalled": len(s.recalled) if s else 0,
                "recalled_by_errors_warnings": len(self.score_ew.recalled)
                if self.score_ew else 0,
                "errors_warnings_before": self.before_ew,
                "errors_warnings_after": self.after_ew,
                "errors_warnings_in_ported_files": [self.before_scope, self.after_scope],
                "still_reported_after": len(self.still.recalled) if self.still else 0,
                "seconds": round(self.seconds, 1), "scan_diagnostics": self.diagnostics,
                "by_family": {k: list(v) for k, v in s.by_family.items()} if s else {},
                "recalled_by_category": s.by_category if s else {},
                "misses": [t.to_dict() for t in s.missed] if s else [],
                "truth_items": self.truth.to_dict() if self.truth else {}}


def _label(p: Pair) -> str:
    if p.before.is_debian:
        return f"{p.name} ({p.before.package} -> {p.after.package})"
    return f"{p.name} {p.before.version} -> {p.after.version}"


def _trees(p: Pair, cache: Path) -> tuple[Path, Path]:
    if p.before.is_debian:
        script = ROOT / "tools" / "debian-source.sh"
        return debian_tree(p.before, cache, script), debian_tree(p.after, cache, script)
    return sdist_tree(p.name, p.before, cache), sdist_tree(p.name, p.after, cache)


def _gilaudit(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gilaudit", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def _scan(p: Pair, release_root: Path, out: Path, reuse: bool
          ) -> tuple[list[dict[str, Any]], dict[str, int], float]:
    """Findings, diagnostics by kind, and seconds (0 when reused)."""
    seconds = 0.0
    if not (reuse and out.is_file()):
        args = ["scan", str(release_root / p.subdir), "--no-progress", "--no-cache",
                "--format", "json", "-o", str(out)]
        for d in p.include_dirs:
            args += ["-I", str(release_root / d)]
        for d in p.defines:
            args += ["-D", d]
        started = time.monotonic()
        out.unlink(missing_ok=True)
        proc = _gilaudit(*args, timeout=7200)
        seconds = time.monotonic() - started
        if not out.is_file() or not out.stat().st_size:
            raise FetchError(f"gilaudit scan wrote no report (exit {proc.returncode}): "
                             f"{proc.stderr.strip()[-400:]}")
    data = json.loads(out.read_text())
    kinds: dict[str, int] = {}
    for d in data.get("diagnostics", []):
        kinds[str(d.get("kind"))] = kinds.get(str(d.get("kind")), 0) + 1
    # what the data file says is not the port counts neither for recall nor for E+W
    findings = [f for f in data.get("findings", [])
                if not is_skipped(str(f.get("path", "")), p.skip)]
    return findings, kinds, seconds


def run_pair(p: Pair, cache: Path, categories: frozenset[str], reuse: bool) -> Row:
    row = Row(p, _label(p))
    try:
        before, after = _trees(p, cache)
    except (FetchError, OSError, subprocess.SubprocessError) as e:
        row.error = f"fetch: {e}"
        return row
    src_before = source_files(before / p.subdir, skip=p.skip)
    src_after = source_files(after / p.subdir, skip=p.skip)
    truth = apply_overrides(derive_truth(src_before, src_after), src_before,
                            exclude=list(p.exclude), include=list(p.include))
    truth_after = apply_overrides(derive_truth(src_before, src_after, in_after=True),
                                  src_after, exclude=list(p.exclude), include=[])
    row.truth = truth
    (cache / "truth").mkdir(parents=True, exist_ok=True)
    (cache / "truth" / f"{p.key}.json").write_text(json.dumps(
        {"package": row.label, "before": str(before / p.subdir),
         "after": str(after / p.subdir), **truth.to_dict()}, indent=1))
    reports = cache / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    try:
        found_b, diag_b, secs_b = _scan(p, before, reports / f"{p.key}-before.json", reuse)
        found_a, diag_a, secs_a = _scan(p, after, reports / f"{p.key}-after.json", reuse)
    except (FetchError, OSError, ValueError, subprocess.SubprocessError) as e:
        row.error = f"scan: {e}"
        return row
    row.seconds = secs_b + secs_a
    row.diagnostics = {f"before {k}": v for k, v in diag_b.items()} | {
        f"after {k}": v for k, v in diag_a.items()}
    row.score = score(truth.items, found_b, categories)
    row.still = score(truth_after.items, found_a, categories)
    row.score_ew = score(truth.items, [f for f in found_b if f.get("severity") in (
        "error", "warning")], categories)
    row.before_ew = errors_and_warnings(found_b, categories)
    row.after_ew = errors_and_warnings(found_a, categories)
    ported = {t.path for t in truth.items} | {t.path for t in truth_after.items}
    row.before_scope = errors_and_warnings([f for f in found_b if f.get("path") in ported],
                                           categories)
    row.after_scope = errors_and_warnings([f for f in found_a if f.get("path") in ported],
                                          categories)
    return row


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:.0f}%" if b else "-"


def print_truth(row: Row) -> None:
    if row.truth is None:
        return
    for t in row.truth.items:
        print(f"  truth  {t.path}:{t.start}-{t.end} {t.function} [{t.family}]  {t.evidence}")
    for t, why in row.truth.excluded:
        print(f"  excluded {t.path}:{t.start} {t.function} [{t.family}]: {why}")
    for o in row.truth.unresolved:
        print(f"  UNRESOLVED include {o.path}:{o.function} [{o.family or '?'}]: no such "
              f"function in BEFORE, or no family")
    for o in row.truth.unused:
        print(f"  UNUSED exclude {o.path}:{o.function} [{o.family or 'all'}]: matches no "
              f"derived item")
    for u in row.truth.unlocated:
        print(f"  outside any function {u.path}:{u.line} [{u.family}]: {u.code[:80]}")


def print_table(rows: list[Row]) -> dict[str, Any]:
    head = (f"{'package':40} {'truth':>5} {'found':>5} {'recall':>6} {'by E+W':>6} "
            f"{'E+W before':>10} {'E+W after':>9} {'drop':>5} {'in ported files':>15} "
            f"{'still':>5} {'scan s':>6} {'partial':>7}")
    print(head)
    tot = {"truth": 0, "recalled": 0, "recalled_ew": 0, "before": 0, "after": 0,
           "before_scope": 0, "after_scope": 0, "still": 0, "seconds": 0.0}
    fams: dict[str, list[int]] = {}
    cats: dict[str, int] = {}
    for r in rows:
        if r.error or r.score is None:
            print(f"{r.label[:44]:44} ERROR {r.error[:200]}")
            continue
        s, still = r.score, len(r.still.recalled) if r.still else 0
        ew = len(r.score_ew.recalled) if r.score_ew else 0
        scope = (f"{r.before_scope}->{r.after_scope} "
                 f"{_pct(r.before_scope - r.after_scope, r.before_scope)}")
        print(f"{r.label[:40]:40} {s.truth:5} {len(s.recalled):5} "
              f"{_pct(len(s.recalled), s.truth):>6} {_pct(ew, s.truth):>6} {r.before_ew:10} "
              f"{r.after_ew:9} {_pct(r.before_ew - r.after_ew, r.before_ew):>5} {scope:>15} "
              f"{still:5} {r.seconds:6.1f} {r.partial():>7}")
        tot["truth"] += s.truth
        tot["recalled"] += len(s.recalled)
        tot["recalled_ew"] += ew
        tot["before"] += r.before_ew
        tot["after"] += r.after_ew
        tot["before_scope"] += r.before_scope
        tot["after_scope"] += r.after_scope
        tot["still"] += still
        tot["seconds"] += r.seconds
        for fam, (hit, n) in s.by_family.items():
            acc = fams.setdefault(fam, [0, 0])
            acc[0] += hit
            acc[1] += n
        for cat, n in s.by_category.items():
            cats[cat] = cats.get(cat, 0) + n
    recall = _pct(int(tot["recalled"]), int(tot["truth"]))
    drop = _pct(int(tot["before"] - tot["after"]), int(tot["before"]))
    scope = (f"{tot['before_scope']}->{tot['after_scope']} " + _pct(
        int(tot["before_scope"] - tot["after_scope"]), int(tot["before_scope"])))
    print(f"{'all':40} {tot['truth']:5} {tot['recalled']:5} {recall:>6} "
          f"{_pct(int(tot['recalled_ew']), int(tot['truth'])):>6} {tot['before']:10} "
          f"{tot['after']:9} {drop:>5} {scope:>15} {tot['still']:5} {tot['seconds']:6.1f}")
    # CPython 3.13 is a port still under way (3.14 went on with itertools, array, socket...):
    # the released packages' ports show what the drop is where a port was finished.
    pkgs = [r for r in rows if r.score is not None and not r.error and not r.pair.after.is_debian]
    p_before, p_after = sum(r.before_ew for r in pkgs), sum(r.after_ew for r in pkgs)
    print(f"{'packages only (no Debian pair)':40} {'':5} {'':5} {'':>6} {'':>6} {p_before:10} "
          f"{p_after:9} {_pct(p_before - p_after, p_before):>5}")
    print("recall: a truth item is recalled by a finding of any severity in its function; "
          "'by E+W' counts errors and warnings only. 'in ported files': errors and warnings "
          "before -> after in the files that hold a truth item.")
    print("recall per family: " + ", ".join(
        f"{fam} {hit}/{n} ({_pct(hit, n)})" for fam, (hit, n) in sorted(fams.items())))
    print("truth items recalled, by the category of the finding: " + ", ".join(
        f"{cat} {n}" for cat, n in sorted(cats.items(), key=lambda kv: -kv[1])))
    met_r = bool(tot["truth"]) and tot["recalled"] >= TARGET * tot["truth"]
    met_d = bool(tot["before"]) and tot["before"] - tot["after"] >= TARGET * tot["before"]
    print(f"targets: recall >= {TARGET:.0%}: {'met' if met_r else 'not met'} ({recall}); "
          f"errors+warnings drop >= {TARGET:.0%}: {'met' if met_d else 'not met'} ({drop})")
    return {"totals": tot, "packages_only": {"before": p_before, "after": p_after},
            "families": dict(sorted(fams.items())),
            "recalled_by_category": dict(sorted(cats.items())),
            "targets": {"recall": met_r, "drop": met_d}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--only", action="append", default=[],
                    help="a package name from ports.toml (repeatable)")
    ap.add_argument("--ports", type=Path, default=HERE / "ports.toml")
    ap.add_argument("--show-truth", action="store_true")
    ap.add_argument("--misses", action="store_true")
    ap.add_argument("--reuse-reports", action="store_true")
    ap.add_argument("--json", type=Path, metavar="OUT")
    args = ap.parse_args(argv)
    pairs = [p for p in load(tomllib.loads(args.ports.read_text()))
             if not args.only or p.name in args.only or p.key in args.only]
    rules = _gilaudit("rules", "--json", timeout=120)
    categories = hazard_categories(json.loads(rules.stdout))
    print(f"hazard categories scored: {', '.join(sorted(categories))}")
    cache = cache_dir()
    rows = []
    for p in pairs:
        row = run_pair(p, cache, categories, args.reuse_reports)
        rows.append(row)
        if args.show_truth:
            print(f"{row.label}: truth in {cache / 'truth' / (p.key + '.json')}")
            print_truth(row)
        if args.misses and row.score:
            for t in row.score.missed:
                print(f"  MISS {row.label}: {t.path}:{t.start} {t.function} [{t.family}]")
    summary = print_table(rows)
    if args.json:
        args.json.write_text(json.dumps({"categories": sorted(categories),
                                         "packages": [r.to_dict() for r in rows], **summary},
                                        indent=1))
    return 1 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
