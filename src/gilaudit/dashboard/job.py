"""One package of a dashboard run, in a child process of its own.

`python -m gilaudit.dashboard.job SPEC.json` reads a `JobSpec`, and writes one
`PackageResult` as JSON to the spec's ``result_path``: the latest release's files, its metadata,
the static scan of the sdist and of the wheels, and, with a free-threaded interpreter, the
stress phase on an installed free-threaded wheel (or a build from the sdist); all merged into
one gilaudit report with one verdict for the package. Whatever fails becomes the result's
status and reason: the parent (runner.py) only has to handle a child that died.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gilaudit.dashboard.index import IndexClient, IndexFailure
from gilaudit.dashboard.model import PackageResult, ProjectMeta, ReleaseFile
from gilaudit.model import Report
from gilaudit.report.merge import PROJECT

__all__ = ["JobSpec", "analyse", "dashboard_verdict", "main", "shipped_modules"]

_FT_WHEELS_SCANNED = 2  # free-threaded wheels scanned per release (their binaries differ little)


@dataclass(frozen=True, kw_only=True, slots=True)
class JobSpec:
    name: str
    index_url: str
    cache_dir: str
    python: str | None = None  # a free-threaded interpreter: run the stress phase too
    known_versions: tuple[str, ...] = ()  # analysed in an earlier run: say "reused"
    http_timeout: float = 30.0
    stress_budget: float = 120.0
    stress_timeout: float = 10.0
    result_path: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "index_url": self.index_url, "cache_dir": self.cache_dir,
                "python": self.python, "known_versions": list(self.known_versions),
                "http_timeout": self.http_timeout, "stress_budget": self.stress_budget,
                "stress_timeout": self.stress_timeout, "result_path": self.result_path,
                "options": self.options}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobSpec:
        return cls(name=str(d["name"]), index_url=str(d["index_url"]),
                   cache_dir=str(d["cache_dir"]), python=d.get("python"),
                   known_versions=tuple(d.get("known_versions", ())),
                   http_timeout=float(d.get("http_timeout", 30.0)),
                   stress_budget=float(d.get("stress_budget", 120.0)),
                   stress_timeout=float(d.get("stress_timeout", 10.0)),
                   result_path=str(d.get("result_path", "")), options=dict(d.get("options", {})))


def _meta(client: IndexClient, files: list[ReleaseFile]) -> tuple[ProjectMeta | None, str]:
    """Metadata from a wheel's PEP 658 file when the index has one (no download), else from
    any wheel, else the sdist."""
    ordered = sorted(files, key=lambda f: (f.metadata_url is None, f.kind != "wheel"))
    last = ""
    for f in ordered[:3]:
        try:
            return client.metadata(f), ""
        except IndexFailure as exc:
            last = f"{f.filename}: {exc.reason}"
    return None, last or "no file to read metadata from"


def _scan_targets(release: list[ReleaseFile]) -> list[ReleaseFile]:
    sdists = [f for f in release if f.kind == "sdist"][:1]
    wheels = [f for f in release if f.kind == "wheel"]
    ft = [w for w in wheels if w.free_threaded][:_FT_WHEELS_SCANNED]
    linux = [w for w in wheels if not w.free_threaded
             and any("linux" in p for p in w.platform_tags)]
    other = ([] if ft else (linux or [w for w in wheels if not w.free_threaded])[:1])
    return sdists + ft + other


def _stress_target(release: list[ReleaseFile], ft_abi: str | None) -> ReleaseFile | None:
    """A wheel the free-threaded interpreter can install (its ABI tag, Linux), else the sdist."""
    for w in release:
        if w.kind == "wheel" and ft_abi and ft_abi in w.abi_tags and any(
                "linux" in p for p in w.platform_tags):
            return w
    return next((f for f in release if f.kind == "sdist"), None)


def _ft_abi(python: str) -> str | None:
    from gilaudit.dynamic.interpreters import Interpreter, describe  # noqa: PLC0415

    got = describe(python, found_by="--python")
    if not isinstance(got, Interpreter):
        return None
    major, minor = got.version[0], got.version[1]
    return f"cp{major}{minor}{got.abiflags or ''}"


def _static(paths: list[Path], scratch: Path, cache: Path, index_url: str) -> Report:
    from gilaudit.rulebook import load_rulebook  # noqa: PLC0415
    from gilaudit.scan import ScanOptions, run_scan  # noqa: PLC0415

    # Wheels go in one directory (one target: the wheel front end reads them together);
    # the sdist is its own target, unpacked distrustfully by the scan. Targets are named
    # relative to the scratch directory, so reported paths read "pkg-1.0.tar.gz/pkg-1.0/src/
    # x.c", not the download cache's; this process is the job's own, so changing its working
    # directory disturbs no one.
    wheels_dir = scratch / "wheels"
    targets: list[Path] = []
    for p in paths:
        if p.name.endswith(".whl"):
            wheels_dir.mkdir(exist_ok=True)
            shutil.copy(p, wheels_dir / p.name)
        else:
            shutil.copy(p, scratch / p.name)
            targets.append(Path(p.name))
    if wheels_dir.exists():
        targets.append(Path("wheels"))
    here = os.getcwd()
    os.chdir(scratch)
    try:
        # Build requirements' header wheels come from the dashboard's own index.
        report, _fail_on = run_scan(ScanOptions(targets=tuple(targets), jobs=1,
                                                cache_dir=cache, index_url=index_url),
                                    load_rulebook())
    finally:
        os.chdir(here)
    return report


def shipped_modules(wheels: list[Path]) -> frozenset[str]:
    """The last component of every extension module the wheels install: the modules that
    matter to a user of the package (an sdist also holds test and vendored extensions)."""
    leaves: set[str] = set()
    for wheel in wheels:
        try:
            with zipfile.ZipFile(wheel) as z:
                names = z.namelist()
        except (OSError, zipfile.BadZipFile):
            continue
        for member in names:
            base = member.rsplit("/", 1)[-1]
            if base.endswith((".so", ".pyd")) and "." in base:
                leaves.add(base.split(".", 1)[0])
    return frozenset(leaves)


def _stress(python: str, target: Path, spec: JobSpec, repro: Path) -> Report:
    from gilaudit.dynamic.session import StressRequest, run_stress  # noqa: PLC0415
    from gilaudit.dynamic.stress import StressOptions  # noqa: PLC0415
    from gilaudit.rulebook import load_rulebook  # noqa: PLC0415

    options = StressOptions(total_budget=spec.stress_budget, timeout=spec.stress_timeout)
    request = StressRequest(targets=(str(target),), python=python, options=options,
                            repro_dir=repro)
    return run_stress(request, load_rulebook())


def dashboard_verdict(*, ft_wheels: tuple[str, ...], classifier: bool, report: Report | None,
                      failed: bool, shipped: frozenset[str] = frozenset(),
                      ) -> tuple[str, bool | None]:
    """(verdict, declared) for one package from what its release and its report show. Only
    the modules its wheels ship count (``shipped``: their last names; empty: all of them)."""
    if failed or report is None:
        return "unknown", None
    modules = [m for m in report.modules if m.module != PROJECT
               and (not shipped or m.module.rsplit(".", 1)[-1] in shipped)]
    dynamic_bad = any(f.evidence == "dynamic" and f.severity == "error"
                      and f.rule in ("FT200", "FT202", "FT203", "FT204")
                      for f in report.findings)
    code_declared = any(m.declared for m in modules)
    undeclared = any(m.declared is False for m in modules)
    declared = True if (classifier or code_declared) and not undeclared else (
        False if undeclared else None)
    static = Counter(f.severity for f in report.findings if f.evidence == "static"
                     and not f.preview)
    if dynamic_bad:
        return "not ready", declared
    if not ft_wheels:
        # A classifier that claims free-threading support without a wheel to show for it.
        return ("hazards" if classifier else "no ft wheels"), declared
    if undeclared:
        return "not ready", declared  # wheels whose modules turn the GIL back on
    if not declared:
        return "unknown", declared
    if static.get("error") or static.get("warning"):
        return "hazards", declared
    stressed = [m for m in modules if m.free_threaded_evidence]
    if modules and len(stressed) == len(modules) and all(m.stress == "clean" for m in modules):
        return "ready", declared
    return "declared", declared


def _stress_summary(report: Report | None) -> str | None:
    if report is None or report.stress is None or not report.stress.modules:
        return None
    verdicts = Counter(m.verdict for m in report.stress.modules)
    for worst in ("problems", "could not run", "not exercised"):
        if verdicts.get(worst):
            return worst
    return "clean"


def analyse(spec: JobSpec) -> PackageResult:
    from gilaudit.report.json_report import report_to_dict  # noqa: PLC0415
    from gilaudit.report.merge import finalise, merge  # noqa: PLC0415

    started = time.monotonic()
    name = spec.name
    cache = Path(spec.cache_dir).resolve()
    client = IndexClient(url=spec.index_url, cache_dir=cache / "downloads",
                         timeout=spec.http_timeout)

    def failed(reason: str, version: str | None = None, **extra: Any) -> PackageResult:
        return PackageResult(name=name, version=version, status="failed", reason=reason,
                             seconds=time.monotonic() - started, **extra)

    try:
        files = client.releases(name)
    except IndexFailure as exc:
        return failed(exc.reason)
    version = client.latest_version(files)
    if version is None:
        return PackageResult(name=name, version=None, status="skipped",
                             reason="no release with files on the index",
                             seconds=time.monotonic() - started)
    if version in spec.known_versions:
        return PackageResult(name=name, version=version, status="reused",
                             reason="analysed in an earlier run",
                             seconds=time.monotonic() - started)
    release = [f for f in files if f.version == version and not f.yanked]
    wheels = [f for f in release if f.kind == "wheel"]
    ft_wheels = tuple(sorted({a for w in wheels if w.free_threaded for a in w.abi_tags
                              if a.endswith("t")}))
    version_specific = any(a.startswith("cp") and a != "abi3" for w in wheels
                           for a in w.abi_tags)
    abi3 = any(w.abi3 for w in wheels) and not version_specific
    platforms = tuple(sorted({p for w in wheels for p in w.platform_tags}))
    meta, meta_problem = _meta(client, release)
    classifier = bool(meta and meta.declares_free_threading)
    common: dict[str, Any] = {"ft_wheels": ft_wheels, "abi3": abi3, "platforms": platforms,
                              "classifier": classifier,
                              "summary": meta.summary if meta else ""}
    notes: list[str] = [f"metadata: {meta_problem}"] if meta_problem else []
    with tempfile.TemporaryDirectory(prefix="gilaudit-job-") as scratch_name:
        scratch = Path(scratch_name)
        downloaded: dict[str, Path] = {}
        for f in _scan_targets(release):
            try:
                downloaded[f.filename] = client.download(f)
            except IndexFailure as exc:
                notes.append(f"{f.filename}: {exc.reason}")
        reports: list[Report] = []
        shipped = shipped_modules([p for p in downloaded.values() if p.name.endswith(".whl")])
        if downloaded:
            try:
                reports.append(_static(list(downloaded.values()), scratch, cache / "scan",
                                       spec.index_url))
            except Exception as exc:  # noqa: BLE001 - a scan bug must not lose the package
                notes.append(f"static scan failed: {type(exc).__name__}: {exc}")
        if spec.python:
            target = _stress_target(release, _ft_abi(spec.python))
            if target is None:
                notes.append("stress: no free-threaded wheel for this interpreter and no sdist")
            else:
                try:
                    path = downloaded.get(target.filename) or client.download(target)
                    reports.append(_stress(spec.python, path, spec,
                                           cache / "repro" / name))
                except IndexFailure as exc:
                    notes.append(f"stress: {target.filename}: {exc.reason}")
                except Exception as exc:  # noqa: BLE001 - likewise for the stress phase
                    notes.append(f"stress failed: {type(exc).__name__}: {exc}")
    if not reports:
        return failed("; ".join(notes) or "nothing could be analysed", version, **common)
    report = finalise(merge(reports))
    verdict, declared = dashboard_verdict(ft_wheels=ft_wheels, classifier=classifier,
                                          report=report, failed=False, shipped=shipped)
    static = Counter(f.severity for f in report.findings if f.evidence == "static"
                     and not f.preview)
    data = report_to_dict(report)
    data["dashboard_notes"] = notes
    return PackageResult(name=name, version=version, status="ok", reason="; ".join(notes),
                         verdict=verdict, declared=declared, errors=static.get("error", 0),
                         warnings=static.get("warning", 0), info=static.get("info", 0),
                         stress=_stress_summary(report), report=data,
                         seconds=time.monotonic() - started, **common)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m gilaudit.dashboard.job SPEC.json", file=sys.stderr)
        return 2
    spec = JobSpec.from_dict(json.loads(Path(argv[0]).read_text(encoding="utf-8")))
    try:
        result = analyse(spec)
    except Exception as exc:  # noqa: BLE001 - recorded as the package's status, never lost
        result = PackageResult(name=spec.name, version=None, status="failed",
                               reason=f"gilaudit failed on it: {type(exc).__name__}: {exc}")
    Path(spec.result_path).write_text(json.dumps(result.to_dict()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
