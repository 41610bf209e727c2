"""FT115 (PyO3 declaration) and FT005 (``gil_used = true``) for Rust extension crates.

What a ``#[pymodule]`` means depends on the PyO3 version the crate builds with:

* before 0.23 PyO3 cannot build for free-threaded Python at all (reported on ``Cargo.toml``);
* 0.23 to 0.27 need ``#[pymodule(gil_used = false)]``, or importing the module re-enables the
  GIL (reported on the ``#[pymodule]``);
* from 0.28 modules are assumed thread-safe unless ``gil_used = true`` says otherwise (the
  explicit opt-out, FT005).

When the version range straddles a boundary and no ``Cargo.lock`` settles it, nothing is
reported for the module (the syntactic-only diagnostic says so).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from gilaudit.frontends.bindings.cargo import (
    Interval,
    PyO3Dependency,
    cargo_interval,
    find_pyo3,
    lock_versions,
)
from gilaudit.frontends.bindings.rust import PyModuleDecl, find_pymodules
from gilaudit.frontends.buildfiles import BuildFiles
from gilaudit.frontends.buildfiles.reader import (
    ancestors,
    find_line,
    join,
    slash_suppressions,
    vendored,
)
from gilaudit.frontends.contract import Hit, Suppression, TargetView
from gilaudit.model import Diagnostic

__all__ = ["PyO3Result", "check_pyo3"]

V3 = tuple[int, int, int]
FT_FIRST: V3 = (0, 23, 0)  # first PyO3 that builds for free-threaded CPython (#4588)
OPT_OUT: V3 = (0, 28, 0)  # first PyO3 where modules default to gil_used = false (#5564)


@dataclass
class PyO3Result:
    hits: list[Hit] = field(default_factory=list)
    modules: dict[str, str] = field(default_factory=dict)
    suppressions: dict[str, tuple[Suppression, ...]] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    lines: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class _Crate:
    manifest: str  # path of the Cargo.toml holding the pyo3 dependency (or the workspace's)
    line: int  # of the pyo3 requirement in that file
    dep: PyO3Dependency
    requirement: str | None
    interval: Interval | None
    locked: tuple[V3, ...]  # versions Cargo.lock resolves that satisfy the requirement

    def era(self) -> str:
        """"too-old", "opt-in" (0.23-0.27), "opt-out" (0.28+) or "unknown"."""
        if self.locked:
            eras = {_era_of(v) for v in self.locked}
            return eras.pop() if len(eras) == 1 else "unknown"
        iv = self.interval
        if iv is None:
            return "unknown"
        if iv.high <= FT_FIRST:
            return "too-old"
        if iv.low >= FT_FIRST and iv.high <= OPT_OUT:
            return "opt-in"
        if iv.low >= OPT_OUT:
            return "opt-out"
        return "unknown"

    def describe(self) -> str:
        if self.locked:
            return "PyO3 " + ", ".join(".".join(map(str, v)) for v in self.locked) + \
                " (Cargo.lock)"
        return f"PyO3 {self.requirement}"


def _era_of(v: V3) -> str:
    if v < FT_FIRST:
        return "too-old"
    return "opt-in" if v < OPT_OUT else "opt-out"


def _dep_line(text: str, key: str, *, workspace: bool) -> int:
    k = re.escape(key)
    if workspace:
        line = find_line(text, rf"^\s*{k}\s*=", after=r"^\[workspace\.dependencies\]", default=0)
        return line or find_line(text, rf"^\[workspace\.dependencies\.{k}\]")
    line = find_line(text, rf"^\s*{k}\s*=", after=r"^\[(?:target\..*\.)?dependencies\]",
                     default=0)
    return line or find_line(text, rf"^\[(?:target\..*\.)?dependencies\.{k}\]")


def _crate_for(builds: BuildFiles, manifest: str) -> _Crate | None:
    data = builds.toml(manifest)
    if data is None:
        return None
    dep = find_pyo3(data)
    if dep is None:
        return None
    where, text_path, line_key = manifest, manifest, dep.key
    requirement = dep.requirement
    if dep.workspace:
        for d in ancestors(manifest)[1:]:
            root = join(d, "Cargo.toml")
            root_data = builds.toml(root) if builds.reader.has(root) else None
            ws = find_pyo3(root_data, workspace=True) if root_data is not None else None
            if ws is not None:
                requirement, where, text_path, line_key = ws.requirement, root, root, ws.key
                break
    text = builds.reader.text(text_path, count=False) or ""
    line = _dep_line(text, line_key, workspace=dep.workspace and where != manifest)
    interval = cargo_interval(requirement) if requirement else None
    locked: tuple[V3, ...] = ()
    for d in ancestors(manifest):
        lock = join(d, "Cargo.lock")
        if builds.reader.has(lock):
            lock_data = builds.toml(lock)
            versions = lock_versions(lock_data) if lock_data is not None else []
            if interval is not None:
                versions = [v for v in versions if interval.low <= v < interval.high]
            locked = tuple(versions)
            break
    return _Crate(manifest=where, line=line, dep=dep, requirement=requirement,
                  interval=interval, locked=locked)


def _maturin_names(builds: BuildFiles, crate_dir: str) -> list[str]:
    names: list[str] = []
    for d in ancestors(join(crate_dir, "x")):
        path = join(d, "pyproject.toml")
        if builds.reader.has(path):
            data = builds.toml(path) or {}
            tool = data.get("tool", {})
            maturin: Any = tool.get("maturin", {}) if isinstance(tool, dict) else {}
            if isinstance(maturin, dict) and isinstance(maturin.get("module-name"), str):
                names.append(maturin["module-name"])
    return names


def _module_hit(path: str, decl: PyModuleDecl, crate: _Crate, dotted: str) -> Hit | None:
    era = crate.era()
    if decl.gil_used is True and era in ("opt-in", "opt-out", "unknown"):
        return Hit(rule="FT005", path=path, line=decl.line, col=decl.col,
                   symbol="gil_used = true", where=f"`{dotted}`")
    if decl.gil_used is None and era == "opt-in":
        return Hit(rule="FT115", path=path, line=decl.line, col=decl.col, symbol="#[pymodule]",
                   where=f"module `{dotted}` is declared without `gil_used = false`; with "
                         f"{crate.describe()}, before 0.28, such a module re-enables the GIL "
                         "when imported")
    return None


def check_pyo3(view: TargetView, builds: BuildFiles) -> PyO3Result:
    out = PyO3Result()
    reader = builds.reader
    crates: dict[str, _Crate | None] = {}
    reported_manifests: set[str] = set()
    for sf in view.files:
        if not sf.path.endswith(".rs") or vendored(sf.path, builds.vendor_roots):
            continue
        raw = reader.raw(sf.path)
        if raw is None or b"pymodule" not in raw:
            continue
        text = raw.decode("utf-8", errors="replace")
        decls, _rt = find_pymodules(text)
        if not decls:
            continue
        out.lines += text.count("\n") + 1
        reader.parsed(sf.path)
        out.suppressions[sf.path] = slash_suppressions(text)
        manifest = next((join(d, "Cargo.toml") for d in ancestors(sf.path)
                         if reader.has(join(d, "Cargo.toml"))
                         and find_pyo3(builds.toml(join(d, "Cargo.toml")) or {}) is not None),
                        None)
        crate = None
        if manifest is not None:
            if manifest not in crates:
                crates[manifest] = _crate_for(builds, manifest)
            crate = crates[manifest]
        crate_dir = posixpath.dirname(manifest) if manifest else posixpath.dirname(sf.path)
        full_names = _maturin_names(builds, crate_dir)
        undecided = crate is None or crate.era() == "unknown"
        for decl in decls:
            dotted = next((n for n in full_names if n.rsplit(".", 1)[-1] == decl.name),
                          decl.name)
            out.modules.setdefault(sf.path, dotted)
            if crate is None:
                continue
            hit = _module_hit(sf.path, decl, crate, dotted)
            if hit is not None:
                out.hits.append(hit)
            if crate.era() == "too-old" and crate.manifest not in reported_manifests:
                reported_manifests.add(crate.manifest)
                out.hits.append(Hit(
                    rule="FT115", path=crate.manifest, line=crate.line, col=1,
                    symbol=f'{crate.dep.key} = "{crate.requirement or "?"}"',
                    where=f"{crate.describe()} predates free-threading support, which starts "
                          "in PyO3 0.23, so the crate cannot be built for free-threaded "
                          "Python"))
        why = ""
        if undecided and any(d.gil_used is None for d in decls):
            why = ("; the PyO3 version could not be settled from Cargo.toml and Cargo.lock, so "
                   "a #[pymodule] without gil_used was not judged")
        out.diagnostics.append(Diagnostic(
            path=sf.path, kind="syntactic-only",
            message="#[pymodule] declarations were checked syntactically (modules created by "
                    f"other macros or by PyModule::new at run time are not seen){why}"))
    for manifest, crate in crates.items():
        if crate is not None and builds.report:
            reader.parsed(manifest)
    return out
