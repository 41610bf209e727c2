"""`make bench-parse`: how much of real C++ and binding code gilaudit parses as its build does.

For each project of `bench/parse.toml` the sdist is fetched from the index (PyPI, or
`--index`) with gilaudit's index client (sha256 checked against the index) into
~/.cache/gilaudit/bench-parse/, unpacked, and scanned by the gilaudit of this checkout, the
way a new user would run it (`gilaudit scan DIR`, a cold facts cache, in a virtual environment
holding this checkout without its development extras). Per project it prints
the translation units, the share that parsed with no error (no parse error, no missing
header), and the errors and warnings; beside them the same figures recorded before issue 15
(`bench/parse_baseline.json`, written by `--record-baseline` from that commit).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import tomllib

HERE = Path(__file__).resolve().parent
BASELINE = HERE / "parse_baseline.json"
_UNIT_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".c++", ".C")


def _cache() -> Path:
    base = os.environ.get("GILAUDIT_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gilaudit")
    return Path(base) / "bench-parse"


def _source(name: str, version: str, index: str, cache: Path) -> Path:
    """The unpacked sdist of NAME VERSION, fetched once."""
    from gilaudit.dashboard.index import IndexClient  # noqa: PLC0415 - the checkout's client

    with IndexClient(url=index, cache_dir=cache / "dl") as client:
        files = [f for f in client.releases(name)
                 if f.kind == "sdist" and f.version == version and not f.yanked]
        if not files:
            raise SystemExit(f"no sdist of {name} {version} on {index}")
        archive = client.download(files[0])
    dest = cache / "src" / archive.name.removesuffix(".tar.gz")
    if not dest.is_dir():
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as t:
            t.extractall(dest.parent, filter="data")
    return dest


def units(files: dict[str, str]) -> tuple[int, int]:
    """(translation units, units that parsed with no error): code analysed in an includer's
    context and skipped files are not units."""
    total = clean = 0
    for path, status in files.items():
        if not path.endswith(_UNIT_SUFFIXES):
            continue
        if "(included from" in status or status.startswith("skipped"):
            continue
        if status.startswith(("parsed", "failed")):
            total += 1
            clean += status == "parsed"
    return total, clean


def _python(cache: Path) -> str:
    """A virtual environment with this checkout and its runtime dependencies only, as a new
    user installs it: the development extras (pybind11 among them) would supply headers a
    user does not have."""
    venv = cache / "venv"
    exe = venv / "bin" / "python"
    # The editable install points at one checkout: another checkout (a worktree) reinstalls.
    source = venv / "gilaudit-source"
    here = str(HERE.parent.resolve())
    if not exe.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if not source.is_file() or source.read_text() != here:
        subprocess.run([str(exe), "-m", "pip", "install", "-q", "-e", here], check=True)
        source.write_text(here)
    return str(exe)


def _scan(python: str, tree: Path, extra: list[str],
          keep: Path | None) -> tuple[dict[str, Any], float]:
    with tempfile.TemporaryDirectory(prefix="bench-parse-") as tmp:
        out = (keep / f"{tree.name}.json") if keep else Path(tmp) / "report.json"
        started = time.monotonic()
        subprocess.run([python, "-m", "gilaudit", "scan", str(tree), "--no-progress",
                        "--no-cache", "--format", "json", "-o", str(out), *extra],
                       capture_output=True, timeout=3600, check=False)
        seconds = time.monotonic() - started
        data = json.loads(out.read_text()) if out.is_file() and out.stat().st_size else {}
    return data, seconds


def measure(data: dict[str, Any]) -> dict[str, Any]:
    total, clean = units(data.get("files", {}))
    sev = [f.get("severity") for f in data.get("findings", [])]
    headers = data.get("tool", {}).get("headers", {})
    return {"units": total, "clean": clean, "errors": sev.count("error"),
            "warnings": sev.count("warning"),
            "header_wheels": sorted(headers.get("requirements", {}))}


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:5.1f}%" if b else "    -"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", default="https://pypi.org/simple/")
    ap.add_argument("--only", action="append", default=[], help="project names to run")
    ap.add_argument("--record-baseline", action="store_true",
                    help=f"write the figures as the 'before' column ({BASELINE.name})")
    ap.add_argument("--json", type=Path, help="write every figure to this file")
    ap.add_argument("--reports", type=Path, help="keep each project's JSON report here")
    ap.add_argument("scan_args", nargs="*", help="extra arguments for gilaudit scan")
    args = ap.parse_args(argv)
    config = tomllib.loads((HERE / "parse.toml").read_text())
    cache = _cache()
    before: dict[str, Any] = json.loads(BASELINE.read_text()) if BASELINE.is_file() else {}
    rows: dict[str, Any] = {}
    python = _python(cache)
    print(f"{'project':<16} {'kind':<26} {'units':>5} {'clean':>6} {'before':>6}  "
          f"{'err':>3} {'warn':>4} {'before':>9} {'secs':>5}  header wheels")
    for project in config["projects"]:
        name = project["name"]
        if args.only and name not in args.only:
            continue
        tree = _source(name, project["version"], args.index, cache)
        data, seconds = _scan(python, tree, args.scan_args, args.reports)
        row = measure(data) | {"seconds": round(seconds, 1)}
        rows[name] = row
        old = before.get(name, {})
        old_pct = _pct(old.get("clean", 0), old.get("units", 0)) if old else "    -"
        old_ew = f"{old.get('errors', '-')}/{old.get('warnings', '-')}" if old else "-"
        print(f"{name:<16} {project['kind']:<26} {row['units']:>5} "
              f"{_pct(row['clean'], row['units']):>6} {old_pct:>6}  {row['errors']:>3} "
              f"{row['warnings']:>4} {old_ew:>9} {seconds:>5.0f}  "
              f"{', '.join(row['header_wheels']) or '-'}", flush=True)
    total = sum(r["units"] for r in rows.values())
    clean = sum(r["clean"] for r in rows.values())
    old_total = sum(before.get(n, {}).get("units", 0) for n in rows)
    old_clean = sum(before.get(n, {}).get("clean", 0) for n in rows)
    errors = sum(r["errors"] for r in rows.values())
    warnings = sum(r["warnings"] for r in rows.values())
    old_e = sum(before.get(n, {}).get("errors", 0) for n in rows)
    old_w = sum(before.get(n, {}).get("warnings", 0) for n in rows)
    print(f"\nall: {clean}/{total} units parse with no error ({_pct(clean, total).strip()}); "
          f"before: {old_clean}/{old_total} ({_pct(old_clean, old_total).strip()})")
    print(f"errors/warnings: {errors}/{warnings}; before: {old_e}/{old_w}")
    if args.record_baseline:
        BASELINE.write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
