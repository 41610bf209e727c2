"""Speed benchmark for `gilaudit scan` on pinned real-world sdists (run by `make bench`).

For every project in bench/corpus.toml it downloads the sdist from PyPI (once), extracts
it safely into bench/.cache/src/NAME-VERSION, then runs the CLI as a child process:

* once over all projects with an empty cache ("cold"),
* once more with the cache left by the cold run ("warm"),
* once per project, each with its own empty cache, so that a slow project shows up.

It prints the throughput (lines/s) and peak memory against the targets in corpus.toml and
writes everything to bench/.cache/last.json.  A missed target is reported, not failed: the
exit status is 0 unless a scan crashed (1) or the corpus could not be prepared (2).

Standard library only (plus tomli before Python 3.11).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
CACHE_DIR = BENCH_DIR / ".cache"
SDIST_DIR = CACHE_DIR / "sdists"
SRC_DIR = CACHE_DIR / "src"
RUN_DIR = CACHE_DIR / "runs"
RESULTS_FILE = CACHE_DIR / "last.json"
DEFAULT_CORPUS = BENCH_DIR / "corpus.toml"

SDIST_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip")
SOURCE_SUFFIXES = frozenset({".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh"})
DEFAULT_TARGETS: dict[str, float] = {
    "cold_lines_per_s": 100_000,
    "warm_lines_per_s": 2_000_000,
    "peak_mib": 1024,
}

# Limits for extracting an archive: sdists are small, anything beyond this is hostile.
MAX_MEMBERS = 200_000
MAX_TOTAL_BYTES = 2 * 1024**3
EXTRACTED_MARKER = ".bench-extracted"
MIB = 1024 * 1024


class BenchError(Exception):
    """The corpus could not be prepared (bad corpus file, download or archive)."""


class UnsafeArchiveError(BenchError):
    """An archive member would land outside the destination, or the archive is too big."""


# --------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class Project:
    name: str
    version: str

    @property
    def label(self) -> str:
        return f"{self.name}-{self.version}"

    @property
    def src_dir(self) -> Path:
        return SRC_DIR / self.label


def load_corpus(path: Path) -> tuple[list[Project], dict[str, float]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BenchError(f"cannot read corpus {path}: {exc}") from exc
    projects: list[Project] = []
    for i, entry in enumerate(data.get("projects", [])):
        if not isinstance(entry, dict):
            raise BenchError(f"{path}: projects[{i}] is not a table")
        name, version = entry.get("name"), entry.get("version")
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            raise BenchError(f"{path}: projects[{i}] needs string 'name' and 'version'")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or not re.fullmatch(
            r"[A-Za-z0-9][A-Za-z0-9.+!_-]*", version
        ):
            raise BenchError(f"{path}: projects[{i}] has an odd name or version: {entry!r}")
        projects.append(Project(name, version))
    if not projects:
        raise BenchError(f"{path}: no projects listed")
    targets: dict[str, float] = dict(DEFAULT_TARGETS)
    for key, value in data.get("targets", {}).items():
        if key in targets and isinstance(value, int | float):
            targets[key] = value
    return projects, targets


def normalise_name(name: str) -> str:
    """PEP 503 normalisation, so that `Brotli` matches `brotli-1.1.0.tar.gz`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def find_sdist(project: Project, directory: Path) -> Path | None:
    if not directory.is_dir():
        return None
    want = normalise_name(project.name)
    for path in sorted(directory.iterdir()):
        for suffix in SDIST_SUFFIXES:
            if path.name.lower().endswith(suffix) and path.is_file():
                stem = path.name[: -len(suffix)]
                name, _, version = stem.rpartition("-")
                if normalise_name(name) == want and version == project.version:
                    return path
    return None


def download(project: Project, log: IO[str]) -> Path:
    found = find_sdist(project, SDIST_DIR)
    if found is not None:
        return found
    SDIST_DIR.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--disable-pip-version-check",
        f"{project.name}=={project.version}",
        "-d",
        str(SDIST_DIR),
    ]
    print(f"  downloading {project.label} ...", flush=True)
    proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
    found = find_sdist(project, SDIST_DIR)
    if proc.returncode != 0 or found is None:
        raise BenchError(
            f"pip download of {project.label} failed (exit {proc.returncode}); see {log.name}"
        )
    return found


# --------------------------------------------------------------------------- extraction


def member_problem(name: str) -> str | None:
    """Why an archive member name is unsafe to extract, or None if it is fine."""
    norm = name.replace("\\", "/")
    if not norm.strip("/"):
        return "empty name"
    if "\x00" in norm:
        return "NUL in name"
    if norm.startswith("/") or re.match(r"[A-Za-z]:", norm):
        return "absolute path"
    if ".." in norm.split("/"):
        return "'..' component"
    return None


def _check_within(root: Path, name: str) -> Path:
    target = (root / name.replace("\\", "/")).resolve()
    if target != root and root not in target.parents:
        raise UnsafeArchiveError(f"member {name!r} escapes the destination")
    return target


def _extract_tar(archive: Path, dest: Path) -> int:
    skipped = 0
    with tarfile.open(archive) as tf:
        members: list[tarfile.TarInfo] = []
        total = 0
        for member in tf:
            if len(members) >= MAX_MEMBERS:
                raise UnsafeArchiveError(f"more than {MAX_MEMBERS} members")
            problem = member_problem(member.name)
            if problem:
                raise UnsafeArchiveError(f"member {member.name!r}: {problem}")
            if not (member.isreg() or member.isdir()):
                skipped += 1  # symlinks, hard links, devices, fifos: never extracted
                continue
            _check_within(dest, member.name)
            total += member.size
            if total > MAX_TOTAL_BYTES:
                raise UnsafeArchiveError(f"more than {MAX_TOTAL_BYTES} bytes uncompressed")
            members.append(member)
        if hasattr(tarfile, "data_filter"):
            try:
                tf.extractall(dest, members=members, filter="data")
            except tarfile.FilterError as exc:
                raise UnsafeArchiveError(str(exc)) from exc
        else:  # pragma: no cover - Python without PEP 706 backport; checked above
            tf.extractall(dest, members=members)
    return skipped


def _extract_zip(archive: Path, dest: Path) -> int:
    skipped = 0
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise UnsafeArchiveError(f"more than {MAX_MEMBERS} members")
        total = 0
        for info in infos:
            problem = member_problem(info.filename)
            if problem:
                raise UnsafeArchiveError(f"member {info.filename!r}: {problem}")
            # The file type sits in the high bits of external_attr when a Unix tool made
            # the zip; many writers leave it 0 (or only set permission bits): plain file.
            file_type = stat.S_IFMT(info.external_attr >> 16)
            if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
                skipped += 1  # symlinks and other special files
                continue
            target = _check_within(dest, info.filename)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, target.open("wb") as out:
                while chunk := src.read(1024 * 1024):
                    total += len(chunk)
                    if total > MAX_TOTAL_BYTES:
                        raise UnsafeArchiveError(f"more than {MAX_TOTAL_BYTES} bytes uncompressed")
                    out.write(chunk)
    return skipped


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def extract(archive: Path, dest: Path) -> Path:
    """Extract archive into dest (its single top-level directory flattened); idempotent."""
    digest = _sha256(archive)
    marker = dest / EXTRACTED_MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == digest:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{dest.name}-", dir=dest.parent)).resolve()
    try:
        if archive.name.lower().endswith(".zip"):
            skipped = _extract_zip(archive, tmp)
        else:
            try:
                skipped = _extract_tar(archive, tmp)
            except tarfile.TarError as exc:
                raise BenchError(f"{archive.name}: not a readable archive: {exc}") from exc
        if skipped:
            print(f"  {archive.name}: skipped {skipped} link/special member(s)")
        entries = list(tmp.iterdir())
        root = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
        (root / EXTRACTED_MARKER).write_text(digest + "\n", encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)
        root.rename(dest)
    except zipfile.BadZipFile as exc:
        raise BenchError(f"{archive.name}: not a readable archive: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def prepare(projects: Sequence[Project], *, skip_download: bool) -> list[Project]:
    """Download and extract; returns the projects that are ready to scan."""
    ready: list[Project] = []
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with (CACHE_DIR / "download.log").open("a", encoding="utf-8") as log:
        for project in projects:
            try:
                if skip_download:
                    archive = find_sdist(project, SDIST_DIR)
                    if archive is None:
                        if (project.src_dir / EXTRACTED_MARKER).is_file():
                            ready.append(project)
                        else:
                            print(f"  {project.label}: not downloaded yet, skipped")
                        continue
                else:
                    archive = download(project, log)
                extract(archive, project.src_dir)
                ready.append(project)
            except BenchError as exc:
                print(f"  {project.label}: {exc}; skipped", file=sys.stderr)
    return ready


# --------------------------------------------------------------------------- measuring


def count_source_lines(dirs: Sequence[Path]) -> tuple[int, int]:
    files = lines = 0
    for top in dirs:
        for dirpath, _dirnames, filenames in os.walk(top):
            for filename in filenames:
                if Path(filename).suffix.lower() not in SOURCE_SUFFIXES:
                    continue
                path = Path(dirpath) / filename
                if path.is_symlink():
                    continue
                try:
                    data = path.read_bytes()
                except OSError:
                    continue
                files += 1
                lines += data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    return files, lines


def _rss_bytes(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/statm").read_text().split()
        return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return kids
    for task in tasks:
        with contextlib.suppress(OSError, ValueError):
            kids.extend(int(k) for k in (task / "children").read_text().split())
    return kids


class TreeRssSampler:
    """Samples the summed RSS of a process and its descendants (Linux /proc only).

    The sum counts copy-on-write pages shared by forked workers once per process, so it
    is an upper bound on what the scan really holds.
    """

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.available = Path(f"/proc/{pid}/statm").exists()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeRssSampler:
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _sample(self) -> int:
        total, seen, todo = 0, set(), [self.pid]
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            total += _rss_bytes(pid)
            todo.extend(_children(pid))
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)


@dataclass
class RunResult:
    label: str
    ok: bool
    seconds: float
    files: int = 0
    lines: int = 0
    lines_source: str = "report"  # "report" or "counted" (fallback, not from gilaudit)
    reported_lines: int | None = None  # warm run: what its report said, if it differed
    peak_rss_mib: float | None = None  # largest single process (ru_maxrss)
    peak_tree_mib: float | None = None  # sampled sum over the process tree
    exit_code: int | None = None
    error: str | None = None
    log: str | None = None
    scan_seconds: float | None = None  # the report's own timing, without interpreter start-up

    @property
    def lines_per_s(self) -> float:
        return self.lines / self.seconds if self.ok and self.seconds > 0 else 0.0

    @property
    def peak_mib(self) -> float | None:
        known = [v for v in (self.peak_rss_mib, self.peak_tree_mib) if v is not None]
        return max(known) if known else None


def child_env() -> dict[str, str]:
    """Benchmark the working tree: put src/ first on the child's import path."""
    env = dict(os.environ)
    src = REPO_DIR / "src"
    if (src / "gilaudit").is_dir():
        parts = [str(src), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """Kill the scan and its workers (it runs in its own process group on POSIX)."""
    if hasattr(os, "killpg"):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, float | None]:
    """Wait for proc, killing its process group after timeout seconds.

    Returns (exit code, the child's ru_maxrss in MiB).  os.wait4 gives the rusage of
    exactly this child (the largest process among it and the descendants it waited
    for), unlike a RUSAGE_CHILDREN maximum over every child this process ever had.
    """
    timed_out = threading.Event()
    reaped = False
    lock = threading.Lock()

    def on_timeout() -> None:
        with lock:  # never signal a pid that was already reaped (and may be reused)
            if not reaped:
                timed_out.set()
                _kill_tree(proc)

    timer = threading.Timer(timeout, on_timeout)
    timer.start()
    try:
        if not hasattr(os, "wait4"):  # pragma: no cover - Windows
            return proc.wait(), None
        if hasattr(os, "waitid"):
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped yet
            with lock:
                _, status, usage = os.wait4(proc.pid, 0)
                reaped = True
        else:  # pragma: no cover - macOS
            _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    except BaseException:  # Ctrl-C while waiting: take the scan down with us
        _kill_tree(proc)
        proc.wait()
        raise
    finally:
        timer.cancel()
    if timed_out.is_set():
        raise subprocess.TimeoutExpired(proc.args, timeout)
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return proc.returncode, usage.ru_maxrss * scale / MIB


def run_scan(
    label: str, dirs: Sequence[Path], cache_dir: Path, jobs: int, timeout: float
) -> RunResult:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    out = RUN_DIR / f"{label}.json"
    log_path = RUN_DIR / f"{label}.log"
    out.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "gilaudit",
        "scan",
        *map(str, dirs),
        "--format",
        "json",
        "-o",
        str(out),
        "--cache-dir",
        str(cache_dir),
        "--jobs",
        str(jobs),
        "--fail-on",
        "never",
    ]
    with log_path.open("w", encoding="utf-8") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(),
            start_new_session=os.name == "posix",  # a process group to kill on timeout
        )
        with TreeRssSampler(proc.pid) as sampler:
            try:
                code, maxrss = _wait(proc, timeout)
            except subprocess.TimeoutExpired:
                seconds = time.perf_counter() - start
                error = f"timed out after {timeout:.0f}s"
                return RunResult(label, False, seconds, error=error, log=str(log_path))
        seconds = time.perf_counter() - start
    result = RunResult(label, False, seconds, exit_code=code, log=str(log_path))
    result.peak_rss_mib = maxrss
    result.peak_tree_mib = sampler.peak / MIB if sampler.available and sampler.peak else None
    if code != 0:
        result.error = f"gilaudit exited with {code}"
        return result
    try:
        report = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        result.error = f"no readable JSON report at {out}: {exc}"
        return result
    summary = report.get("summary") if isinstance(report, dict) else None
    summary = summary if isinstance(summary, dict) else {}
    files, lines = summary.get("files_analysed"), summary.get("lines_analysed")
    if isinstance(summary.get("seconds"), int | float):
        result.scan_seconds = float(summary["seconds"])
    if isinstance(files, int) and isinstance(lines, int):
        result.files, result.lines = files, lines
    else:
        result.files, result.lines = count_source_lines(dirs)
        result.lines_source = "counted"
    result.ok = True
    return result


def tail(path: str | None, n: int = 20) -> str:
    if not path:
        return ""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    | " + line for line in lines[-n:])


# --------------------------------------------------------------------------- report


def _num(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _mib(value: float | None) -> str:
    return "?" if value is None else _num(value, 1)


@dataclass
class Verdicts:
    cold: str
    warm: str
    peak: str
    detail: dict[str, Any] = field(default_factory=dict)


def judge(cold: RunResult, warm: RunResult, targets: dict[str, float]) -> Verdicts:
    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("PASS" if ok else "MISS")

    peaks = [r.peak_mib for r in (cold, warm) if r.ok and r.peak_mib is not None]
    peak = max(peaks) if peaks else None
    return Verdicts(
        cold=verdict(cold.lines_per_s >= targets["cold_lines_per_s"] if cold.ok else None),
        warm=verdict(warm.lines_per_s >= targets["warm_lines_per_s"] if warm.ok else None),
        peak=verdict(peak < targets["peak_mib"] if peak is not None else None),
        detail={"peak_mib": peak},
    )


def print_table(
    corpus: str, cold: RunResult, warm: RunResult, targets: dict[str, float], v: Verdicts
) -> None:
    head = (
        "corpus",
        "files",
        "lines",
        "cold s",
        "cold lines/s",
        "warm s",
        "warm lines/s",
        "peak MiB",
    )
    row = (
        corpus,
        _num(cold.files),
        _num(cold.lines),
        _num(cold.seconds, 2) if cold.ok else "failed",
        _num(cold.lines_per_s) if cold.ok else "-",
        _num(warm.seconds, 2) if warm.ok else "failed",
        _num(warm.lines_per_s) if warm.ok else "-",
        _mib(v.detail["peak_mib"]),
    )
    target = (
        "target",
        "",
        "",
        "",
        f">= {_num(targets['cold_lines_per_s'])}",
        "",
        f">= {_num(targets['warm_lines_per_s'])}",
        f"< {_num(targets['peak_mib'])}",
    )
    result = ("result", "", "", "", v.cold, "", v.warm, v.peak)
    widths = [max(len(r[i]) for r in (head, row, target, result)) for i in range(len(head))]
    for r in (head, row, target, result):
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells))


def print_per_project(results: Sequence[RunResult]) -> None:
    print("\nper project, cold (each with its own empty cache):")
    width = max(len(r.label) for r in results)
    print(
        f"{'project'.ljust(width)}  {'files':>6}  {'lines':>10}  {'s':>7}  {'lines/s':>11}"
        f"  {'peak MiB':>8}"
    )
    for r in sorted(results, key=lambda r: r.lines_per_s if r.ok else -1.0):
        if not r.ok:
            print(f"{r.label.ljust(width)}  FAILED: {r.error}")
            continue
        print(
            f"{r.label.ljust(width)}  {r.files:>6,}  {r.lines:>10,}  {r.seconds:>7.2f}"
            f"  {r.lines_per_s:>11,.0f}  {_mib(r.peak_mib):>8}"
        )


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="corpus TOML file")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="scan only this project (repeatable, or comma-separated; case-insensitive)",
    )
    parser.add_argument(
        "--skip-download",
        action="store_true",
        help="never call pip; use what is already in bench/.cache",
    )
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="download and extract the corpus, do not scan",
    )
    parser.add_argument(
        "--no-per-project", action="store_true", help="skip the per-project cold runs"
    )
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="--jobs for gilaudit (all CPUs)"
    )
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds allowed for one scan"
    )
    return parser.parse_args(argv)


def select(projects: list[Project], only: list[str] | None) -> list[Project]:
    if not only:
        return projects
    wanted = {normalise_name(n) for arg in only for n in arg.split(",") if n.strip()}
    chosen = [p for p in projects if normalise_name(p.name) in wanted]
    unknown = wanted - {normalise_name(p.name) for p in chosen}
    if unknown:
        raise BenchError(f"not in the corpus: {', '.join(sorted(unknown))}")
    return chosen


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        projects, targets = load_corpus(args.corpus)
        projects = select(projects, args.only)
        print(f"preparing {len(projects)} project(s) in {CACHE_DIR} ...", flush=True)
        ready = prepare(projects, skip_download=args.skip_download)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    if not ready:
        print("bench: no project is ready to scan", file=sys.stderr)
        return 2
    if args.prepare_only:
        for project in ready:
            files, lines = count_source_lines([project.src_dir])
            print(f"  {project.label}: {files} C/C++ files, {lines:,} lines in {project.src_dir}")
        return 0

    dirs = [p.src_dir for p in ready]
    jobs = max(1, args.jobs)
    corpus = f"{len(ready)} project(s)"
    print(f"scanning {corpus} with --jobs {jobs} ...", flush=True)
    scan_cache = fresh_dir(CACHE_DIR / "scan-cache")
    cold = run_scan("cold", dirs, scan_cache, jobs, args.timeout)
    if cold.ok:
        warm = run_scan("warm", dirs, scan_cache, jobs, args.timeout)
        if warm.ok and (warm.files, warm.lines) != (cold.files, cold.lines):
            # Same inputs: rate the warm run on the corpus size, not on what it re-parsed.
            warm.reported_lines = warm.lines
            warm.files, warm.lines = cold.files, cold.lines
    else:
        warm = RunResult("warm", False, 0.0, error="not run: the cold scan failed")
    per_project: list[RunResult] = []
    if cold.ok and not args.no_per_project:
        for project in ready:
            cache = fresh_dir(CACHE_DIR / "scan-cache-one")
            print(f"  {project.label} ...", flush=True)
            one = run_scan(f"cold-{project.label}", [project.src_dir], cache, jobs, args.timeout)
            one.label = project.label
            per_project.append(one)
        shutil.rmtree(CACHE_DIR / "scan-cache-one", ignore_errors=True)

    verdicts = judge(cold, warm, targets)
    print()
    print_table(corpus, cold, warm, targets, verdicts)
    for run in (cold, warm):
        if run.ok and run.scan_seconds:
            print(f"{run.label}: {run.scan_seconds:.2f} s inside the scan (no interpreter "
                  f"start-up), {run.lines / run.scan_seconds:,.0f} lines/s")
    if cold.lines_source == "counted":
        print(
            "note: the report has no summary.lines_analysed/files_analysed; lines and files "
            "were counted by the benchmark (.c/.h/.cc/.cpp/.cxx/.hpp/.hh)"
        )
    if per_project:
        print_per_project(per_project)

    crashed = [r for r in (cold, warm, *per_project) if not r.ok]
    for r in crashed:
        print(f"\nscan {r.label} FAILED: {r.error}\n{tail(r.log)}", file=sys.stderr)

    results = {
        "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "jobs": jobs,
        "corpus": [asdict(p) for p in ready],
        "targets": targets,
        "cold": {**asdict(cold), "lines_per_s": cold.lines_per_s, "peak_mib": cold.peak_mib},
        "warm": {**asdict(warm), "lines_per_s": warm.lines_per_s, "peak_mib": warm.peak_mib},
        "verdicts": {"cold": verdicts.cold, "warm": verdicts.warm, "peak": verdicts.peak},
        "per_project": [
            {**asdict(r), "lines_per_s": r.lines_per_s, "peak_mib": r.peak_mib} for r in per_project
        ],
    }
    RESULTS_FILE.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults written to {RESULTS_FILE}")
    return 1 if crashed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nbench: interrupted", file=sys.stderr)
        sys.exit(130)
