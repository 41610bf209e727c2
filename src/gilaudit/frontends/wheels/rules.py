"""The packaging rules (catalogue section 9) on one release: a project's wheels, grouped by
name and version, with the metadata of the project itself. One function per rule."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from packaging.specifiers import SpecifierSet

from gilaudit.frontends.contract import Hit
from gilaudit.frontends.wheelnames import WheelName, extension_file
from gilaudit.frontends.wheels.project import ProjectMeta
from gilaudit.frontends.wheels.read import Field, WheelFacts

__all__ = [
    "FT_CLASSIFIERS", "RULES", "Release", "allows_minor", "match_abi3_only",
    "match_abi3_so_in_ft_wheel", "match_abi3t_tags", "match_classifier_without_evidence",
    "match_ft_wheels_without_classifier", "match_no_ft_wheels", "match_only_cp313t",
    "match_requires_python",
]

# The free-threading classifiers, exactly as trove-classifiers 2026.9.21.13 lists them
# (`trove_classifiers/__init__.py`); PyPI rejects any other spelling, so exact matching loses
# nothing.
FT_CLASSIFIERS = frozenset({
    "Programming Language :: Python :: Free Threading",
    "Programming Language :: Python :: Free Threading :: 1 - Unstable",
    "Programming Language :: Python :: Free Threading :: 2 - Beta",
    "Programming Language :: Python :: Free Threading :: 3 - Stable",
    "Programming Language :: Python :: Free Threading :: 4 - Resilient",
})
# Feature releases that have a free-threaded build (3.13 onwards); the upper end only has to
# lie past any release a specifier could sensibly name.
_FT_MINORS = tuple((3, m) for m in range(13, 21))
RULES = frozenset({"FT130", "FT131", "FT132", "FT133", "FT135", "FT136", "FT137", "FT140"})


@dataclass(frozen=True, kw_only=True, slots=True)
class Release:
    """One project's release files and metadata."""

    name: str  # canonical project name ("" when unknown)
    wheels: tuple[WheelFacts, ...]  # readable wheels with a valid filename, sorted by path
    project: tuple[ProjectMeta, ...] = ()  # the project's own metadata files, best first

    def named(self, wheel: WheelFacts) -> WheelName:
        assert wheel.name is not None
        return wheel.name

    @property
    def ft_wheels(self) -> list[WheelFacts]:
        return [w for w in self.wheels if self.named(w).threaded]

    @property
    def binary_wheels(self) -> list[WheelFacts]:
        return [w for w in self.wheels if self.named(w).binary or w.modules]

    @property
    def pure_fallback(self) -> WheelFacts | None:
        """A `none`-`any` wheel without extension modules: what a free-threaded installer
        falls back to when no compiled wheel fits."""
        for w in self.wheels:
            if not self.named(w).binary and not w.modules:
                return w
        return None

    def classifier_claims(self) -> list[Field]:
        """Free-threading classifiers, the project's own files first, then the wheels'."""
        out = [c for p in self.project for c in p.classifiers if c.value in FT_CLASSIFIERS]
        out += [c for w in self.wheels for c in w.meta.classifiers if c.value in FT_CLASSIFIERS]
        return out

    def requires_python(self) -> Field | None:
        for p in self.project:
            if p.requires_python is not None:
                return p.requires_python
        for w in self.wheels:
            if w.meta.requires_python is not None:
                return w.meta.requires_python
        return None


def allows_minor(spec: str, minor: tuple[int, int]) -> bool:
    """Whether some release of a feature version satisfies a Requires-Python specifier."""
    specs = SpecifierSet(spec)
    return any(specs.contains(f"{minor[0]}.{minor[1]}.{patch}", prereleases=True)
               for patch in range(0, 30))


def _wheel_hit(rule: str, wheel: WheelFacts, symbol: str, where: str,
               severity: str | None = None) -> Hit:
    return Hit(rule=rule, path=wheel.path, line=1, col=1, symbol=symbol, where=where,
               severity=severity)


def _names(wheels: list[WheelFacts], limit: int = 3) -> str:
    shown = ", ".join(f"`{w.path.rsplit('/', 1)[-1]}`" for w in wheels[:limit])
    more = len(wheels) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def _fallback_note(release: Release) -> tuple[str, str | None]:
    """With a pure-Python wheel beside the compiled ones, free-threaded users still get a
    working install (without the compiled speed-ups): say so, and lower to info."""
    fallback = release.pure_fallback
    if fallback is None:
        return "", None
    name = fallback.path.rsplit("/", 1)[-1]
    return f"; free-threaded installs fall back to the pure-Python `{name}`", "info"


def match_no_ft_wheels(release: Release, selected: frozenset[str]) -> Iterator[Hit]:
    """FT130: compiled wheels, none for a free-threaded interpreter, while Requires-Python
    allows 3.14 or later. Left to FT135 when the release relies on abi3 wheels."""
    binary = release.binary_wheels
    if not binary or release.ft_wheels:
        return
    if "FT135" in selected and any(release.named(w).abi3 for w in binary):
        return
    rp = release.requires_python()
    if rp is not None and not any(allows_minor(rp.value, m) for m in _FT_MINORS[1:]):
        return
    note, severity = _fallback_note(release)
    abis = sorted({a for w in binary for a in release.named(w).abis})
    yield _wheel_hit("FT130", binary[0], release.name or release.named(binary[0]).name,
                     f"{len(binary)} compiled wheel(s) given (ABI {', '.join(abis)}){note}",
                     severity)


def match_only_cp313t(release: Release, selected: frozenset[str]) -> Iterator[Hit]:
    """FT131: every free-threaded wheel targets 3.13t."""
    ft = release.ft_wheels
    if not ft:
        return
    versions = {a.version for w in ft for a in release.named(w).cp_abis if a.threaded}
    if "abi3t" in {a for w in ft for a in release.named(w).abis} or versions != {(3, 13)}:
        return
    yield _wheel_hit("FT131", ft[0], "cp313t", _names(ft))


def match_classifier_without_evidence(release: Release,
                                      selected: frozenset[str]) -> Iterator[Hit]:
    """FT132: a Free Threading classifier, compiled wheels given, none free-threaded."""
    claims = release.classifier_claims()
    if not claims or not release.binary_wheels or release.ft_wheels:
        return
    claim = claims[0]
    count = len(release.binary_wheels)
    yield Hit(rule="FT132", path=claim.path, line=claim.line, col=1, symbol=claim.value,
              where=f"none of the {count} compiled wheel(s) given is built for a "
                    "free-threaded interpreter")


def match_ft_wheels_without_classifier(release: Release,
                                       selected: frozenset[str]) -> Iterator[Hit]:
    """FT133: free-threaded wheels, and no Free Threading classifier anywhere. Needs the
    METADATA of a free-threaded wheel (what PyPI shows) to have been read."""
    ft = release.ft_wheels
    read = [w for w in ft if w.metadata_path is not None]
    if not read or release.classifier_claims():
        return
    symbol = next((a.text for a in release.named(read[0]).cp_abis if a.threaded), "abi3t")
    declared = next((p.classifiers_key for p in release.project
                     if p.classifiers_key is not None), None)
    if declared is not None:
        yield Hit(rule="FT133", path=declared.path, line=declared.line, col=1, symbol=symbol,
                  where=_names(ft))
        return
    assert read[0].metadata_path is not None
    yield Hit(rule="FT133", path=read[0].metadata_path, line=1, col=1, symbol=symbol,
              where=_names(ft))


def match_abi3_only(release: Release, selected: frozenset[str]) -> Iterator[Hit]:
    """FT135: abi3 wheels and no free-threaded wheel: installers never pick abi3 for a
    free-threaded interpreter (packaging `tags._abi3_applies`)."""
    if release.ft_wheels:
        return
    abi3 = [w for w in release.wheels if release.named(w).abi3]
    if not abi3:
        return
    rp = release.requires_python()
    if rp is not None and not any(allows_minor(rp.value, m) for m in _FT_MINORS):
        return
    note, severity = _fallback_note(release)
    yield _wheel_hit("FT135", abi3[0], "abi3", _names(abi3) + note, severity)


def _t_only(name: WheelName) -> bool:
    abis = name.cp_abis
    return bool(abis) and all(a.threaded for a in abis) and not (
        name.abis - {a.text for a in abis} - {"none"})


def match_abi3_so_in_ft_wheel(wheel: WheelFacts) -> Iterator[Hit]:
    """FT136: an `.abi3.so` module inside a `cp3XXt` wheel."""
    if wheel.name is None or not _t_only(wheel.name):
        return
    tag = ", ".join(f"`{a.text}`" for a in wheel.name.cp_abis)
    for member in wheel.modules:
        ext = extension_file(member.rsplit("/", 1)[-1])
        if ext is not None and ext.kind == "abi3":
            yield Hit(rule="FT136", path=f"{wheel.path}/{member}", line=1, col=1,
                      symbol=member.rsplit("/", 1)[-1], where=f"a {tag} wheel")


def match_abi3t_tags(wheel: WheelFacts) -> Iterator[Hit]:
    """FT137: `abi3t` tags no CPython before 3.15 can produce, and `abi3t` wheels whose
    modules are not `.abi3t.so` (CPython Doc/howto/abi3t-migration.rst, "Tagging")."""
    if wheel.name is None or "abi3t" not in wheel.name.abis:
        return
    early = sorted({t.interpreter for t in wheel.name.tags if t.abi == "abi3t"
                    and t.interpreter.startswith("cp3") and t.interpreter[3:].isdigit()
                    and int(t.interpreter[3:]) < 15})
    for interp in early:
        yield _wheel_hit("FT137", wheel, f"{interp}-abi3t",
                         "the stable ABI for free-threaded builds starts at 3.15 (`cp315`)")
    for member in wheel.modules:
        base = member.rsplit("/", 1)[-1]
        ext = extension_file(base)
        if ext is not None and ext.kind in ("cpython", "abi3"):
            yield Hit(rule="FT137", path=f"{wheel.path}/{member}", line=1, col=1, symbol=base,
                      where="an extension in an `abi3t` wheel must be named `*.abi3t.so`")


def match_requires_python(release: Release, selected: frozenset[str]) -> Iterator[Hit]:
    """FT140: Requires-Python shuts out the free-threaded builds the release claims (by
    classifier) or ships (a `cp3XXt` wheel for a version the specifier excludes)."""
    seen: set[tuple[str, int]] = set()
    for wheel in release.ft_wheels:
        rp = wheel.meta.requires_python or release.requires_python()
        if rp is None:
            continue
        name = release.named(wheel)
        for abi in name.cp_abis:
            if abi.threaded and not allows_minor(rp.value, abi.version):
                if (rp.path, rp.line) in seen:
                    break
                seen.add((rp.path, rp.line))
                yield Hit(rule="FT140", path=rp.path, line=rp.line, col=1, symbol=rp.value,
                          where=f"the `{abi.text}` wheel `{wheel.path.rsplit('/', 1)[-1]}`")
                break
    claims = release.classifier_claims()
    if not claims:
        return
    sources = [p.requires_python for p in release.project if p.requires_python is not None]
    sources += [w.meta.requires_python for w in release.wheels
                if w.meta.requires_python is not None]
    for rp in sources:
        if (rp.path, rp.line) in seen:
            continue
        if not any(allows_minor(rp.value, m) for m in _FT_MINORS):
            seen.add((rp.path, rp.line))
            yield Hit(rule="FT140", path=rp.path, line=rp.line, col=1, symbol=rp.value,
                      where=f"the classifier `{claims[0].value}`")
