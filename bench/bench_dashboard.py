"""Speed and size benchmark for `gilaudit dashboard` (run by `make bench`).

1. Packages per minute on a local index (127.0.0.1) with the default 2 jobs, static-only
   path: N generated packages (an sdist with a real C extension source and a cp313t and a
   cp313 wheel each) served by the tests' index server, analysed by `gilaudit dashboard`.
2. The database and the site per 1,000 packages: 1,000 generated results (realistic reports)
   recorded in a fresh database, then the site written from it.

Results go to bench/.cache/dashboard-last.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from dashboard_index_server import IndexServer, build_sdist, build_wheel  # noqa: E402
from fixtures.dynamic.build import FIXTURES, build_extension  # noqa: E402
from gilaudit.dashboard.db import Database  # noqa: E402
from gilaudit.dashboard.fake import generated_results  # noqa: E402
from gilaudit.dashboard.site import write_site  # noqa: E402

SOURCES = ["clean_funcs", "racy_counter", "clean_counter", "crashy", "racy_raise", "deadlock"]
FT = "Programming Language :: Python :: Free Threading :: 3 - Stable"


def _index(root: Path, n: int, built: Path) -> None:
    for i in range(n):
        name = f"bench-pkg-{i:03d}"
        source = SOURCES[i % len(SOURCES)]
        so = build_extension(FIXTURES / f"{source}.c", built) if not list(
            built.glob(f"{source}.*")) else next(built.glob(f"{source}.*"))
        folder = root / name
        folder.mkdir()
        c = (FIXTURES / f"{source}.c").read_bytes()
        build_sdist(folder, name, "1.0", files={f"src/{source}.c": c},
                    classifiers=[FT] if i % 2 else [])
        build_wheel(folder, name, "1.0", "cp313-cp313t-manylinux_2_17_x86_64",
                    files={f"{source}.cpython-313t-x86_64-linux-gnu.so": so.read_bytes()},
                    classifiers=[FT] if i % 2 else [])
        build_wheel(folder, name, "1.0", "cp313-cp313-manylinux_2_17_x86_64",
                    files={f"{source}.cpython-313-x86_64-linux-gnu.so": so.read_bytes()},
                    classifiers=[FT] if i % 2 else [])


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=30)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="gilaudit-bench-dash-") as scratch:
        work = Path(scratch)
        (work / "index").mkdir()
        _index(work / "index", args.packages, work / "built")
        names = [f"bench-pkg-{i:03d}" for i in range(args.packages)]
        env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
        with IndexServer(work / "index") as server:
            started = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "gilaudit", "dashboard", *names, "--index", server.url,
                 "--db", str(work / "dash.sqlite"), "-o", str(work / "site"), "--cache-dir",
                 str(work / "cache"), "--jobs", str(args.jobs), "--no-progress"],
                env=env, capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - started
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            return 1
        with Database.open(work / "dash.sqlite") as db:
            rows = db.latest()
        ok = sum(1 for r in rows if r.status == "ok")
        rate = len(names) / seconds * 60
        print(f"static-only path, local index, {args.jobs} jobs: {len(names)} packages "
              f"({ok} ok) in {seconds:.1f} s = {rate:.1f} packages/minute "
              f"(site included)")
        out["packages"] = len(names)
        out["seconds"] = round(seconds, 2)
        out["packages_per_minute"] = round(rate, 1)

        db_path = work / "generated.sqlite"
        started = time.perf_counter()
        with Database.open(db_path) as db:
            run = db.start_run(index_url="https://example.invalid/simple/", python=None,
                               options={})
            for result in generated_results(args.rows):
                db.record(run, result)
            db.finish_run(run)
        record_s = time.perf_counter() - started
        started = time.perf_counter()
        with Database.open(db_path) as db:
            write_site(db, work / "gen-site")
        site_s = time.perf_counter() - started
        db_bytes, site_bytes = db_path.stat().st_size, _size(work / "gen-site")
        per = 1000 / args.rows
        print(f"{args.rows} generated packages: database {db_bytes / 1e6:.1f} MB "
              f"({db_bytes * per / 1e6:.1f} MB per 1,000; recorded in {record_s:.1f} s), "
              f"site {site_bytes / 1e6:.1f} MB ({site_bytes * per / 1e6:.1f} MB per 1,000; "
              f"written in {site_s:.1f} s)")
        out.update(rows=args.rows, db_bytes=db_bytes, site_bytes=site_bytes,
                   record_seconds=round(record_s, 2), site_seconds=round(site_s, 2))
    cache = REPO / "bench" / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "dashboard-last.json").write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
