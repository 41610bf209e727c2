"""The wheels and metadata front end (category `packaging`, catalogue section 9).

It reads every `.whl` among the target's files (a `dist/` folder, or one wheel given as the
target), the PKG-INFO of sdist archives beside them, and the project's own metadata
(pyproject.toml `[project]`, setup.cfg `[metadata]`, the literal arguments of `setup()`, the
PKG-INFO of an unpacked sdist). Wheels are grouped into releases by project name and version;
the rules compare what the tags ship with what the metadata claims. Nothing is unpacked:
members are read in memory through ``archives``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

from gilaudit.archives import ArchiveLimits
from gilaudit.frontends.contract import FrontEndResult, Hit, Suppression, TargetView
from gilaudit.frontends.wheelnames import in_test_folder
from gilaudit.frontends.wheels import rules as rules
from gilaudit.frontends.wheels.project import (
    ProjectMeta,
    is_sdist_name,
    read_project_meta,
    read_sdist_meta,
    suppressions_in,
)
from gilaudit.frontends.wheels.read import WheelFacts, read_wheel
from gilaudit.frontends.wheels.rules import Release, allows_minor
from gilaudit.model import Diagnostic, SourceFile

RULES = rules.RULES  # what this front end can report (the catalogue meta-test checks it)

__all__ = ["analyse"]

_LIMITS = ArchiveLimits()


def _consistency(wheel: WheelFacts) -> Iterator[Diagnostic]:
    """Metadata that contradicts the filename. No catalogue rule covers these (FT140 takes
    the free-threaded case of Requires-Python), so they are diagnostics: which of the two
    is right decides what the other rules saw."""
    name = wheel.name
    meta = wheel.meta
    if name is None:
        return
    where = wheel.metadata_path or wheel.path
    if meta.name is not None and canonicalize_name(meta.name.value) != name.name:
        yield Diagnostic(path=where, kind="inconsistent-metadata", line=meta.name.line,
                         message=f"METADATA names the project {meta.name.value!r}, the "
                                 f"filename {name.name!r}")
    if meta.version is not None and Version(meta.version.value) != name.version:
        yield Diagnostic(path=where, kind="inconsistent-metadata", line=meta.version.line,
                         message=f"METADATA gives version {meta.version.value}, the filename "
                                 f"{name.version}")
    if wheel.wheel_tags is not None and wheel.wheel_tags != name.tags:
        shown = ", ".join(sorted(str(t) for t in wheel.wheel_tags)[:4])
        yield Diagnostic(path=wheel.path, kind="inconsistent-metadata",
                         message=f"the WHEEL file's tags ({shown}) are not the filename's")
    rp = meta.requires_python
    if rp is not None:
        for abi in name.cp_abis:
            if not abi.threaded and not allows_minor(rp.value, abi.version):
                yield Diagnostic(path=rp.path, kind="inconsistent-metadata", line=rp.line,
                                 message=f"Requires-Python {rp.value!r} excludes Python "
                                         f"{abi.version[0]}.{abi.version[1]}, the version "
                                         f"this `{abi.text}` wheel is built for")


def _group(wheels: list[WheelFacts], project: list[ProjectMeta],
           sdists: list[ProjectMeta]) -> list[Release]:
    """One release per (project, version); the project's metadata joins its own releases, or
    the only release when the project's name is not written statically."""
    by_key: dict[tuple[str, Version], list[WheelFacts]] = {}
    for w in wheels:
        assert w.name is not None
        by_key.setdefault((w.name.name, w.name.version), []).append(w)
    own_name = next((p.name for p in project if p.name), None)
    names = {k[0] for k in by_key}
    if own_name is None and len(names) == 1:
        own_name = next(iter(names))
    releases: list[Release] = []
    for (name, _version), group in sorted(by_key.items()):
        meta = [p for p in project if name == own_name]
        meta += [s for s in sdists if s.name == name]
        releases.append(Release(name=name, wheels=tuple(sorted(group, key=lambda w: w.path)),
                                project=tuple(meta)))
    if not any(r.name == own_name for r in releases) and (project or sdists):
        # Metadata with no wheels of its own: classifier and Requires-Python checks still
        # apply (FT140), the wheel-based ones find nothing.
        meta = list(project) + [s for s in sdists if own_name is None or s.name == own_name]
        releases.append(Release(name=own_name or "", wheels=(), project=tuple(meta)))
    return releases


def _release_hits(release: Release, selected: frozenset[str]) -> Iterator[Hit]:
    checks = (
        ("FT130", rules.match_no_ft_wheels), ("FT131", rules.match_only_cp313t),
        ("FT132", rules.match_classifier_without_evidence),
        ("FT133", rules.match_ft_wheels_without_classifier),
        ("FT135", rules.match_abi3_only), ("FT140", rules.match_requires_python),
    )
    for rule, check in checks:
        if rule in selected:
            yield from check(release, selected)
    for wheel in release.wheels:
        if "FT136" in selected:
            yield from rules.match_abi3_so_in_ft_wheel(wheel)
        if "FT137" in selected:
            yield from rules.match_abi3t_tags(wheel)


def _is_wheel(sf: SourceFile) -> bool:
    return sf.path.lower().endswith(".whl")


def analyse(view: TargetView) -> FrontEndResult:
    selected = view.config.selected & rules.RULES
    candidates = [f for f in view.files
                  if _is_wheel(f) or is_sdist_name(f.path.rsplit("/", 1)[-1])]
    if not selected:
        return FrontEndResult(files={
            f.path: "skipped: no packaging rule selected" for f in candidates if _is_wheel(f)})
    files: dict[str, str] = {f.path: "skipped: test data (below a test folder), not a release "
                                     "file" for f in candidates if in_test_folder(f.path)}
    releases = sorted((f for f in candidates if f.path not in files), key=lambda f: f.path)
    wheel_files = [f for f in releases if _is_wheel(f)]
    sdist_files = [f for f in releases if not _is_wheel(f)]
    diags: list[Diagnostic] = []
    modules: dict[str, str] = {}
    wheels: list[WheelFacts] = []
    for sf in wheel_files:
        facts = read_wheel(Path(sf.abspath), sf.path, limits=_LIMITS)
        diags += facts.diagnostics
        diags += _consistency(facts)
        files[sf.path] = facts.status
        modules.update({f"{sf.path}/{m}": mod for m, mod in facts.modules.items()})
        if facts.name is not None and facts.readable:
            wheels.append(facts)
    sdists: list[ProjectMeta] = []
    for sf in sdist_files:
        meta, problems = read_sdist_meta(sf, limits=_LIMITS)
        diags += problems
        broken = any(d.path == sf.path and d.kind == "corrupt-archive" for d in problems)
        files[sf.path] = "failed: corrupt-archive" if broken and meta is None else (
            "parsed (partial)" if problems else "parsed")
        if meta is not None:
            sdists.append(meta)
    project, used = read_project_meta(view.files, max_bytes=view.config.max_file_size)
    for p in project:
        diags += p.diagnostics
    hits: list[Hit] = []
    seen: set[tuple[str, str, int, str]] = set()
    for release in _group(wheels, project, sdists):
        for hit in _release_hits(release, selected):
            key = (hit.rule, hit.path, hit.line, hit.symbol)
            if key not in seen:
                seen.add(key)
                hits.append(hit)
    suppressions: dict[str, tuple[Suppression, ...]] = {}
    for sf in used:
        found = suppressions_in(sf, max_bytes=view.config.max_file_size)
        if found:
            suppressions[sf.path] = found
    return FrontEndResult(hits=tuple(hits), diagnostics=tuple(diags), files=files,
                          modules=modules, suppressions=suppressions)
