"""`make bench-ports`: recall of gilaudit's hazard findings on real free-threading ports.

For each package of `bench/ports.toml` (and CPython's Modules/ from Debian's 3.11 and 3.13
source packages): download both releases into the cache (hashes checked), derive the truth from
the port (bench/portslib.py), scan BEFORE and AFTER with the gilaudit of this checkout, and
print recall per package and per family, the errors and warnings on each release, and the
truth functions still reported on AFTER. `--show-truth` prints every truth item, `--misses` the
ones not recalled, `--json OUT` writes it all.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

import tomllib

sys.path.insert(0, str(Path(__file__).resolve().parent))
from portslib import derive_truth, errors_and_warnings, score, source_files

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _cache() -> Path:
    base = os.environ.get("GILAUDIT_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gilaudit")
    return Path(base) / "bench-ports"


def _sdist(name: str, sdist: str, version: str, digest: str, cache: Path) -> Path:
    sdists = cache / "sdists"
    sdists.mkdir(parents=True, exist_ok=True)
    candidates = [sdists / f"{stem}-{version}{ext}" for stem in (sdist, name, name.replace(
        "-", "_"), name.replace(".", "_"), name.capitalize()) for ext in (".tar.gz", ".zip")]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                        ":all:", "--disable-pip-version-check", "-q", f"{name}=={version}",
                        "-d", str(sdists)], check=True, capture_output=True, timeout=600)
        found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise SystemExit(f"no sdist of {name} {version} in {sdists}")
    got = hashlib.sha256(found.read_bytes()).hexdigest()
    if got != digest:
        raise SystemExit(f"{found.name}: sha256 {got}, expected {digest}")
    dest = cache / "src" / found.name.removesuffix(".tar.gz").removesuffix(".zip")
    if not dest.is_dir():
        dest.parent.mkdir(parents=True, exist_ok=True)
        if found.suffix == ".zip":
            with zipfile.ZipFile(found) as z:
                z.extractall(dest.parent)
        else:
            with tarfile.open(found) as t:
                t.extractall(dest.parent, filter="data")
    return dest


def _debian(suite: str, package: str, cache: Path) -> Path:
    proc = subprocess.run(["bash", str(ROOT / "tools" / "debian-source.sh"), suite, package,
                           str(cache / "debian")], capture_output=True, text=True, timeout=900,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr.strip())
    return Path(proc.stdout.strip().splitlines()[-1])


def _scan(tree: Path, out: Path) -> tuple[list[dict[str, Any]], float]:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "gilaudit", "scan", str(tree), "--no-progress",
                    "--no-cache", "--format", "json", "-o", str(out)], capture_output=True,
                   timeout=3600, check=False)
    seconds = time.monotonic() - started
    data = json.loads(out.read_text()) if out.is_file() and out.stat().st_size else {}
    return list(data.get("findings", [])), seconds


def _pairs(config: dict[str, Any], cache: Path, only: set[str]) -> list[tuple[str, Path, Path]]:
    out = []
    for p in config.get("package", []):
        if only and p["name"] not in only:
            continue
        stem = p.get("sdist", p["name"])
        out.append((f"{p['name']} {p['before']} -> {p['after']}",
                    _sdist(p["name"], stem, p["before"], p["sha256"]["before"], cache),
                    _sdist(p["name"], stem, p["after"], p["sha256"]["after"], cache)))
    for c in config.get("cpython", []):
        if only and "cpython" not in only:
            continue
        before = _debian(c["before"]["suite"], c["before"]["package"], cache) / c["subdir"]
        after = _debian(c["after"]["suite"], c["after"]["package"], cache) / c["subdir"]
        out.append((f"{c['name']} {c['before']['package']} -> {c['after']['package']}",
                    before, after))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", default=[], help="a package name, or cpython")
    ap.add_argument("--show-truth", action="store_true")
    ap.add_argument("--misses", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    config = tomllib.loads((HERE / "ports.toml").read_text())
    cache = _cache()
    reports = cache / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    totals = {"truth": 0, "recalled": 0, "before": 0, "after": 0, "still": 0}
    families: dict[str, list[int]] = {}
    for label, before, after in _pairs(config, cache, set(args.only)):
        sources_before, sources_after = source_files(before), source_files(after)
        truth = derive_truth(sources_before, sources_after)
        tag = label.split()[0].replace(".", "_")
        found_before, secs_before = _scan(before, reports / f"{tag}-before.json")
        found_after, secs_after = _scan(after, reports / f"{tag}-after.json")
        s = score(truth, found_before)
        # The functions the port changed, in AFTER: still reported there?
        still = score(derive_truth(sources_before, sources_after, in_after=True), found_after)
        ew_b, ew_a = errors_and_warnings(found_before), errors_and_warnings(found_after)
        row = {"package": label, "truth": s.truth, "recalled": len(s.recalled),
               "errors_warnings_before": ew_b, "errors_warnings_after": ew_a,
               "still_reported_after": len(still.recalled),
               "seconds": round(secs_before + secs_after, 1),
               "by_family": s.by_family,
               "misses": [vars_of(t) for t in s.missed],
               "truth_items": [vars_of(t) for t in truth]}
        rows.append(row)
        totals["truth"] += s.truth
        totals["recalled"] += len(s.recalled)
        totals["before"] += ew_b
        totals["after"] += ew_a
        totals["still"] += len(still.recalled)
        for fam, (hit, n) in s.by_family.items():
            acc = families.setdefault(fam, [0, 0])
            acc[0] += hit
            acc[1] += n
        if args.show_truth:
            for t in truth:
                print(f"  truth {label}: {t.path}:{t.start}-{t.end} {t.function} [{t.family}]")
        if args.misses:
            for t in s.missed:
                print(f"  MISS {label}: {t.path}:{t.start} {t.function} [{t.family}]")
    _table(rows, totals, families)
    if args.json:
        args.json.write_text(json.dumps({"packages": rows, "totals": totals,
                                         "families": families}, indent=1))
    return 0


def vars_of(t: Any) -> dict[str, Any]:
    return {"path": t.path, "function": t.function, "family": t.family, "start": t.start,
            "end": t.end}


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:.0f}%" if b else "-"


def _table(rows: list[dict[str, Any]], totals: dict[str, int],
           families: dict[str, list[int]]) -> None:
    print(f"{'package':44} {'truth':>5} {'found':>5} {'recall':>6} {'E+W before':>10} "
          f"{'E+W after':>9} {'drop':>5} {'still':>5} {'s':>6}")
    for r in rows:
        drop = _pct(r["errors_warnings_before"] - r["errors_warnings_after"],
                    r["errors_warnings_before"])
        print(f"{r['package'][:44]:44} {r['truth']:5} {r['recalled']:5} "
              f"{_pct(r['recalled'], r['truth']):>6} {r['errors_warnings_before']:10} "
              f"{r['errors_warnings_after']:9} {drop:>5} {r['still_reported_after']:5} "
              f"{r['seconds']:6}")
    print(f"{'all':44} {totals['truth']:5} {totals['recalled']:5} "
          f"{_pct(totals['recalled'], totals['truth']):>6} {totals['before']:10} "
          f"{totals['after']:9} {_pct(totals['before'] - totals['after'], totals['before']):>5} "
          f"{totals['still']:5}")
    print("recall per family: " + ", ".join(
        f"{fam} {hit}/{n} ({_pct(hit, n)})" for fam, (hit, n) in sorted(families.items())))


if __name__ == "__main__":
    raise SystemExit(main())
