"""The dashboard's data: what an index says about a release, and one package's result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DASHBOARD_VERDICTS", "FT_CLASSIFIER", "PackageResult", "ProjectMeta", "ReleaseFile"]

DASHBOARD_VERDICTS = ("ready", "declared", "hazards", "not ready", "no ft wheels", "unknown")
FT_CLASSIFIER = "Programming Language :: Python :: Free Threading"


@dataclass(frozen=True, kw_only=True, slots=True)
class ReleaseFile:
    filename: str
    url: str
    sha256: str | None  # from the index's hashes; None when it gives none
    kind: str  # "wheel" | "sdist" | "other"
    version: str
    python_tags: tuple[str, ...] = ()
    abi_tags: tuple[str, ...] = ()
    platform_tags: tuple[str, ...] = ()
    metadata_url: str | None = None  # PEP 658/714 core metadata, when the index offers it
    metadata_sha256: str | None = None
    yanked: bool = False
    size: int | None = None

    @property
    def free_threaded(self) -> bool:
        """A wheel for a free-threaded ABI: cp313t, cp314t, ..."""
        return any(t.startswith("cp3") and t.endswith("t") for t in self.abi_tags)

    @property
    def abi3(self) -> bool:
        return "abi3" in self.abi_tags

    def to_dict(self) -> dict[str, Any]:
        return {"filename": self.filename, "url": self.url, "sha256": self.sha256,
                "kind": self.kind, "version": self.version,
                "python_tags": list(self.python_tags), "abi_tags": list(self.abi_tags),
                "platform_tags": list(self.platform_tags), "metadata_url": self.metadata_url,
                "metadata_sha256": self.metadata_sha256, "yanked": self.yanked,
                "size": self.size}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReleaseFile:
        return cls(filename=d["filename"], url=d["url"], sha256=d.get("sha256"),
                   kind=d["kind"], version=d["version"],
                   python_tags=tuple(d.get("python_tags", ())),
                   abi_tags=tuple(d.get("abi_tags", ())),
                   platform_tags=tuple(d.get("platform_tags", ())),
                   metadata_url=d.get("metadata_url"),
                   metadata_sha256=d.get("metadata_sha256"), yanked=bool(d.get("yanked")),
                   size=d.get("size"))


@dataclass(frozen=True, kw_only=True, slots=True)
class ProjectMeta:
    """Core metadata of one version (a wheel's METADATA, an sdist's PKG-INFO)."""

    name: str
    version: str
    summary: str = ""
    requires_python: str | None = None
    classifiers: tuple[str, ...] = ()
    project_urls: tuple[tuple[str, str], ...] = ()
    home_page: str = ""

    @property
    def declares_free_threading(self) -> bool:
        return any(c == FT_CLASSIFIER or c.startswith(FT_CLASSIFIER + " ::")
                   for c in self.classifiers)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "summary": self.summary,
                "requires_python": self.requires_python, "classifiers": list(self.classifiers),
                "project_urls": [list(p) for p in self.project_urls],
                "home_page": self.home_page}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProjectMeta:
        return cls(name=d["name"], version=d["version"], summary=d.get("summary", ""),
                   requires_python=d.get("requires_python"),
                   classifiers=tuple(d.get("classifiers", ())),
                   project_urls=tuple((str(a), str(b)) for a, b in d.get("project_urls", ())),
                   home_page=d.get("home_page", ""))


@dataclass(frozen=True, kw_only=True, slots=True)
class PackageResult:
    """One package, one version, one run: a row of the results database."""

    name: str  # canonical (packaging.utils.canonicalize_name)
    version: str | None  # None when no release could be found
    status: str  # "ok" | "failed" | "skipped"
    reason: str = ""
    verdict: str = "unknown"  # one of DASHBOARD_VERDICTS
    ft_wheels: tuple[str, ...] = ()  # free-threaded ABI tags with wheels: ("cp313t", ...)
    abi3: bool = False  # only abi3 wheels, nothing version-specific
    platforms: tuple[str, ...] = ()
    declared: bool | None = None  # declares support (classifier or declarations in code)
    classifier: bool = False  # has the Free Threading classifier
    errors: int = 0
    warnings: int = 0
    info: int = 0
    stress: str | None = None  # the stress phase's summary verdict, when it ran
    summary: str = ""  # the project's one-line summary (hostile: always escaped)
    report: dict[str, Any] | None = None  # the full merged gilaudit JSON report
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "status": self.status,
                "reason": self.reason, "verdict": self.verdict,
                "ft_wheels": list(self.ft_wheels), "abi3": self.abi3,
                "platforms": list(self.platforms), "declared": self.declared,
                "classifier": self.classifier, "errors": self.errors,
                "warnings": self.warnings, "info": self.info, "stress": self.stress,
                "summary": self.summary, "report": self.report, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PackageResult:
        return cls(name=d["name"], version=d.get("version"), status=d["status"],
                   reason=d.get("reason", ""), verdict=d.get("verdict", "unknown"),
                   ft_wheels=tuple(d.get("ft_wheels", ())), abi3=bool(d.get("abi3")),
                   platforms=tuple(d.get("platforms", ())), declared=d.get("declared"),
                   classifier=bool(d.get("classifier")), errors=int(d.get("errors", 0)),
                   warnings=int(d.get("warnings", 0)), info=int(d.get("info", 0)),
                   stress=d.get("stress"), summary=d.get("summary", ""),
                   report=d.get("report"), seconds=float(d.get("seconds", 0.0)))
