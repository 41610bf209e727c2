"""Which free-threaded builds a cibuildwheel configuration selects, version by version.

The rules follow cibuildwheel's own changelog and ``selector.py``:

* 2.18.1 added ``cp313t`` builds behind ``free-threaded-support`` / ``CIBW_FREE_THREADED_SUPPORT``;
* 2.22.0 added ``enable`` / ``CIBW_ENABLE`` (``cpython-freethreading``) as the new spelling;
* 3.0.0 removed ``free-threaded-support``; ``cp3??t-*`` builds need ``cpython-freethreading``
  (and ``cp314*`` also ``cpython-prerelease`` until 3.14 was final);
* 3.1.0 builds CPython 3.14 by default, free-threaded included: skipping ``cp314t`` must be
  explicit;
* 3.4.1 deprecated ``cpython-freethreading`` (3.13t builds) and ``enable = "all"`` stopped
  selecting it; 4.x rejects the value and builds no 3.13t.

Patterns are matched the way cibuildwheel matches them: ``fnmatch`` after curly-brace
expansion, space-separated lists, ``build`` defaulting to ``*``.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field, replace

from packaging.specifiers import InvalidSpecifier, SpecifierSet

__all__ = [
    "FT_PYTHONS", "PLATFORMS", "CibwConfig", "Selection", "Setting", "matches", "parse_version",
    "select",
]

V3 = tuple[int, int, int]
FT_PYTHONS = ("313", "314", "315")
# Build identifiers' platform parts, by the platform whose `[tool.cibuildwheel.<platform>]`
# table applies to them.
PLATFORMS: dict[str, tuple[str, ...]] = {
    "linux": ("manylinux_x86_64", "manylinux_aarch64", "manylinux_i686", "musllinux_x86_64",
              "musllinux_aarch64"),
    "macos": ("macosx_x86_64", "macosx_arm64", "macosx_universal2"),
    "windows": ("win_amd64", "win32", "win_arm64"),
}
_REGULAR = ("310", "311", "312", "313", "314", "315")
_BRACE = re.compile(r"\{([^{}]*)\}")


def parse_version(text: str) -> V3 | None:
    m = re.match(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?$", text.strip())
    if m is None:
        return None
    return (int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0))


def _expand(pattern: str, depth: int = 0) -> list[str]:
    """Curly-brace expansion as bracex does it for selectors: ``cp3{12,13}-*``, ``{10..13}``."""
    m = _BRACE.search(pattern)
    if m is None or depth > 8:
        return [pattern]
    body = m.group(1)
    rng = re.fullmatch(r"(\d+)\.\.(\d+)", body)
    if rng:
        lo, hi = int(rng.group(1)), int(rng.group(2))
        options = [str(i) for i in range(min(lo, hi), max(lo, hi) + 1)][:200]
    else:
        options = body.split(",")
    out: list[str] = []
    for opt in options:
        out += _expand(pattern[: m.start()] + opt + pattern[m.end():], depth + 1)
        if len(out) > 1000:
            break
    return out


def expand_all(patterns: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(p for pat in patterns for p in _expand(pat))


def matches(patterns: tuple[str, ...], ident: str, *, expanded: bool = False) -> bool:
    pats = patterns if expanded else expand_all(patterns)
    return any(fnmatch.fnmatchcase(ident, p) for p in pats)


@dataclass(frozen=True, kw_only=True, slots=True)
class Setting:
    key: str  # build | skip | enable | free-threaded-support | requires-python | only
    values: tuple[str, ...]  # patterns / groups, split on whitespace
    text: str  # as written, for messages: `CIBW_SKIP: "cp31?t-*"`, `skip = "*t-*"`
    path: str
    line: int
    unknown: bool = False  # holds an expression whose value is not known statically


@dataclass(frozen=True, kw_only=True, slots=True)
class CibwConfig:
    """One way cibuildwheel is run: where, which version, and the settings in force."""

    path: str  # the workflow (or pyproject.toml when no run was found)
    line: int
    symbol: str  # `pypa/cibuildwheel@v2.21.3`, `cibuildwheel`, `[tool.cibuildwheel]`
    version: V3 | None
    settings: dict[str, Setting]  # [tool.cibuildwheel]
    requires_python: str | None
    platforms: dict[str, dict[str, Setting]] = field(default_factory=dict)  # [...<platform>]
    env: dict[str, Setting] = field(default_factory=dict)  # CIBW_* and the action's inputs
    unknown: bool = False  # selection depends on something not visible (GITHUB_ENV, --only ...)

    def all_settings(self) -> list[Setting]:
        return [*self.settings.values(), *(s for t in self.platforms.values()
                                           for s in t.values()), *self.env.values()]

    def effective(self, platform: str) -> dict[str, Setting]:
        """The options cibuildwheel resolves on ``platform``: the config file, its platform
        table, then the environment (which appends to ``enable`` and replaces the rest)."""
        merged = {**self.settings, **self.platforms.get(platform, {})}
        for key, setting in self.env.items():
            if key == "enable" and key in merged:
                merged[key] = replace(setting, values=merged[key].values + setting.values,
                                      unknown=merged[key].unknown or setting.unknown)
            else:
                merged[key] = setting
        return merged


@dataclass(frozen=True, kw_only=True, slots=True)
class Selection:
    selected: frozenset[str]  # the free-threaded Python tags selected ("313", "314")
    cpython: bool  # some regular CPython build is selected
    # "" | "version" | "enable" | "build" | "skip" | "only" | "requires-python" | "platform"
    blocked_by: str
    settings: dict[str, Setting] = field(default_factory=dict)  # what decided it


def _words(settings: dict[str, Setting], key: str) -> tuple[str, ...] | None:
    s = settings.get(key)
    return s.values if s is not None else None


def _gate(version: V3 | None, settings: dict[str, Setting], py: str) -> bool:
    """Whether this cibuildwheel version, with this ``enable``, can build ``cp{py}t`` at all."""
    v = version
    enable = set(_words(settings, "enable") or ())
    ft_flag = "cpython-freethreading" in enable
    all_flag = "all" in enable
    legacy = settings.get("free-threaded-support")
    legacy_on = legacy is not None and any(
        w.lower() in ("true", "1", "yes") for w in legacy.values)
    if py == "315":
        # Pre-release until October 2026: behind `cpython-prerelease` where it exists at all.
        return v is None or v >= (3, 1, 0)
    if v is None:  # unknown: the current behaviour (3.1 to 3.x)
        return True if py == "314" else ft_flag or all_flag
    if v < (2, 18, 1):
        return False
    if v < (3, 0, 0):
        return py == "313" and (legacy_on or (v >= (2, 22, 0) and (ft_flag or all_flag)))
    if v < (3, 1, 0):
        if py == "314":
            return (ft_flag and "cpython-prerelease" in enable) or all_flag
        return ft_flag or all_flag
    if v < (3, 4, 1):
        return True if py == "314" else ft_flag or all_flag
    if v < (4, 0, 0):
        return True if py == "314" else ft_flag
    return py == "314"


def _requires(cfg: CibwConfig, settings: dict[str, Setting]) -> SpecifierSet | None:
    text = cfg.requires_python
    own = settings.get("requires-python")
    if own is not None and own.values and not own.unknown:
        text = " ".join(own.values)
    if not text:
        return None
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        return None


def _select_on(cfg: CibwConfig, platform: str) -> Selection:
    settings = cfg.effective(platform)
    plats = PLATFORMS[platform]
    spec = _requires(cfg, settings)

    def allowed_python(py: str) -> bool:
        return spec is None or spec.contains(f"3.{py[1:]}.99", prereleases=True)

    def result(selected: frozenset[str], cpython: bool, blocked: str) -> Selection:
        return Selection(selected=selected, cpython=cpython, blocked_by=blocked,
                         settings=settings)

    only = _words(settings, "only")
    build_pats = expand_all(_words(settings, "build") or ("*",))
    skip_pats = expand_all(_words(settings, "skip") or ())

    def build(ident: str) -> bool:
        return matches(build_pats, ident, expanded=True)

    def skip(ident: str) -> bool:
        return matches(skip_pats, ident, expanded=True)

    if only:  # `--only` replaces build and skip and enables every group
        chosen = frozenset(py for py in FT_PYTHONS if allowed_python(py)
                           and any(o.startswith(f"cp{py}t-") for o in only))
        cpython = any(re.match(r"cp3\d+-", o) for o in only)
        return result(chosen, cpython, "" if chosen else "only")
    cpython = any(build(f"cp{py}-{plat}") and not skip(f"cp{py}-{plat}")
                  for py in _REGULAR if allowed_python(py) for plat in plats)
    pythons = [py for py in FT_PYTHONS if allowed_python(py)]
    if not pythons:
        return result(frozenset(), cpython, "requires-python")
    enable = set(_words(settings, "enable") or ())
    prerelease = bool({"cpython-prerelease", "all"} & enable) or any(
        "315" in p for p in build_pats)
    gated = [py for py in pythons if _gate(cfg.version, settings, py)
             and (py != "315" or prerelease)]
    if not gated:
        v = cfg.version
        reason = "version" if v is not None and (v < (2, 18, 1) or (v >= (4, 0, 0) and
                                                 "314" not in pythons)) else "enable"
        return result(frozenset(), cpython, reason)
    built = [py for py in gated if any(build(f"cp{py}t-{plat}") for plat in plats)]
    if not built:
        return result(frozenset(), cpython, "build")
    kept = frozenset(py for py in built
                     if any(build(f"cp{py}t-{plat}") and not skip(f"cp{py}t-{plat}")
                            for plat in plats))
    return result(kept, cpython, "" if kept else "skip")


def select(cfg: CibwConfig) -> Selection:
    """The union over platforms; when nothing free-threaded is selected anywhere, the reason
    on the first platform that builds regular CPython wheels."""
    chosen_platform = cfg.env.get("platform")
    names = list(PLATFORMS)
    if chosen_platform is not None and chosen_platform.values and not chosen_platform.unknown:
        wanted = chosen_platform.values[0].lower()
        if wanted not in ("auto", *PLATFORMS):  # pyodide, ios, android: no free-threaded build
            return Selection(selected=frozenset(), cpython=False, blocked_by="platform")
        names = list(PLATFORMS) if wanted == "auto" else [wanted]
    per = [_select_on(cfg, platform) for platform in names]
    chosen = frozenset().union(*(s.selected for s in per))
    if chosen:
        first = next(s for s in per if s.selected)
        return replace(first, selected=chosen)
    return next((s for s in per if s.cpython), per[0])
