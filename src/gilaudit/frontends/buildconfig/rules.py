"""FT139 (cibuildwheel's free-threading configuration) and FT143 (no free-threaded CI job),
from the facts ``ci`` gathered."""

from __future__ import annotations

from gilaudit.frontends.buildconfig.ci import Matrix
from gilaudit.frontends.buildconfig.cibw import CibwConfig, Selection, Setting, matches, select
from gilaudit.frontends.contract import Hit
from gilaudit.model import Location, Note

__all__ = ["cibw_hits", "no_ft_ci_hit", "selects_free_threaded"]

def _fmt(v: tuple[int, int, int] | None) -> str:
    return ".".join(map(str, v)) if v else "?"


def _opt_in(cfg: CibwConfig) -> str:
    v = cfg.version
    later = "; cibuildwheel 3.1 and later build CPython 3.14t wheels by default"
    if v is not None and v < (2, 22, 0):
        return f"`free-threaded-support = true` is set (and then only for 3.13t{later})"
    if v is not None and v < (3, 0, 0):
        return f'`enable = ["cpython-freethreading"]` is set (and then only for 3.13t{later})'
    if v is not None and v < (3, 1, 0):
        return '`enable = ["cpython-freethreading", "cpython-prerelease"]` is set'
    return '`enable = ["cpython-freethreading"]` is set'


def _at_setting(setting: Setting, where: str) -> Hit:
    return Hit(rule="FT139", path=setting.path, line=setting.line, col=1, symbol=setting.text,
               where=where)


def _at_run(cfg: CibwConfig, where: str) -> Hit:
    return Hit(rule="FT139", path=cfg.path, line=cfg.line, col=1, symbol=cfg.symbol,
               where=where)


def _never(cfg: CibwConfig, sel: Selection) -> Hit | None:
    none = "so no free-threaded wheels are built"
    if sel.blocked_by == "version":
        return _at_run(cfg, f"is cibuildwheel {_fmt(cfg.version)}, which cannot build "
                            f"free-threaded wheels for CPython 3.14 ({none}); cibuildwheel 3.1 "
                            "and later build them by default")
    if sel.blocked_by == "enable":
        where = f"builds free-threaded wheels only when {_opt_in(cfg)}, which it is not, {none}"
        enable = sel.settings.get("enable")
        return _at_setting(enable, where) if enable is not None else _at_run(cfg, where)
    for key, verb in (("only", "selects"), ("build", "selects"), ("skip", "skips")):
        if sel.blocked_by == key and key in sel.settings:
            what = "no free-threaded build (`cp3XXt-*`)" if verb == "selects" else \
                "every free-threaded build (`cp3XXt-*`)"
            return _at_setting(sel.settings[key], f"{verb} {what}, {none}")
    return None


def _only_313(cfg: CibwConfig, sel: Selection) -> Hit:
    where = ("builds free-threaded wheels only for the experimental CPython 3.13t, which "
             "cibuildwheel 4 and PyO3 0.29 no longer support; build 3.14t instead")
    if cfg.version is not None and cfg.version < (3, 1, 0):
        return _at_run(cfg, where)
    build = sel.settings.get("build")
    if build is not None and not any(matches(build.values, f"cp314t-{p}") for p in (
            "manylinux_x86_64", "macosx_arm64", "win_amd64")):
        return _at_setting(build, where)
    skip = sel.settings.get("skip")
    return _at_setting(skip, where) if skip is not None else _at_run(cfg, where)


def selects_free_threaded(configs: tuple[CibwConfig, ...]) -> bool:
    return any(select(c).selected for c in configs)


def cibw_hits(runs: list[tuple[CibwConfig, ...]]) -> list[Hit]:
    found: dict[tuple[str, int], Hit] = {}

    def add(hit: Hit | None) -> None:
        if hit is not None:
            found.setdefault((hit.path, hit.line), hit)

    for configs in runs:
        for cfg in configs:  # options that a newer cibuildwheel removed or deprecated
            newer = cfg.version is None or cfg.version >= (3, 0, 0)
            newest = cfg.version is None or cfg.version >= (3, 4, 1)
            for setting in cfg.all_settings():
                if setting.key == "free-threaded-support" and newer:
                    add(_at_setting(setting, "was removed in cibuildwheel 3.0; since 3.1 "
                                             "free-threaded 3.14 wheels are built by default"))
                if setting.key == "enable" and "cpython-freethreading" in setting.values \
                        and newest:
                    add(_at_setting(setting, "asks for `cpython-freethreading`, deprecated "
                                             "since cibuildwheel 3.4.1 and rejected by 4.x: it "
                                             "only adds the experimental 3.13t builds, and "
                                             "3.14t needs no flag"))
    # Whether free-threaded wheels are built is a question about the project, not one job: a
    # job for an old manylinux image may rightly build cp310 only while others build cp314t.
    selections = [[select(c) for c in configs] for configs in runs]
    if any(s.selected for run in selections for s in run):
        chosen = frozenset().union(*(s.selected for run in selections for s in run))
        if chosen <= {"313"}:
            configs, sels = next((c, s) for c, s in zip(runs, selections, strict=True)
                                 if any(x.selected for x in s))
            first = next(i for i, x in enumerate(sels) if x.selected)
            add(_only_313(configs[first], sels[first]))
    elif not any(c.unknown for configs in runs for c in configs):
        for configs, sels in zip(runs, selections, strict=True):
            for cfg, sel in zip(configs, sels, strict=True):
                if sel.cpython and sel.blocked_by not in ("", "requires-python", "platform"):
                    add(_never(cfg, sel))
                    break
    return sorted(found.values(), key=lambda h: (h.path, h.line))


def no_ft_ci_hit(matrices: list[Matrix]) -> Hit | None:
    if not matrices:
        return None
    # The widest matrix is the main test matrix: the finding goes there, the others are notes.
    ordered = sorted(matrices, key=lambda m: (-len(set(m.values)), m.path, m.line))
    first = ordered[0]
    notes = tuple(Note(message=f"the matrix `{m.key}` here has no free-threaded entry either",
                       location=Location(path=m.path, line=m.line)) for m in ordered[1:6])
    shown = ", ".join(first.values[:8]) + (", ..." if len(first.values) > 8 else "")
    return Hit(rule="FT143", path=first.path, line=first.line, col=1, symbol=first.key,
               where=f"({shown})", notes=notes)
