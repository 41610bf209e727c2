"""What a ThreadSanitizer stress run adds to the stress phase's results: a module TSan found
races in is not clean, each TSan finding gets its reproducer, and the run's summary counts
what was shown, what was suppressed as CPython's own and what had no frame in the project."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from gilaudit.dynamic.reproducer import write_tsan_reproducer
from gilaudit.dynamic.tsan import TsanSettings
from gilaudit.dynamic.tsanfindings import TsanTally
from gilaudit.model import Diagnostic, Finding, ModuleStress

__all__ = ["tsan_reproduced", "tsan_run_summary", "tsan_verdict"]


def tsan_verdict(stress: ModuleStress, tally: TsanTally) -> ModuleStress:
    """A module TSan found races in is not clean, whatever the oracle said."""
    if not tally.findings:
        return stress
    counts: dict[str, int] = {}
    for tf in tally.findings:
        counts[tf.finding.category] = counts.get(tf.finding.category, 0) + 1
    said = ", ".join(f"{n} {c} (ThreadSanitizer)" for c, n in sorted(counts.items()))
    reason = f"{stress.reason}, {said}" if stress.verdict == "problems" else said
    return dataclasses.replace(stress, verdict="problems", reason=reason)


def tsan_reproduced(tallies: list[TsanTally], base: dict[str, Any], *, python: str,
                    repro_dir: Path | None, taken: set[str], suppressions: Path | None,
                    diagnostics: list[Diagnostic]) -> list[Finding]:
    """The TSan findings, each with the path of its reproducer when the call that showed it
    is known (``base``: the hammer's parameters, the call's own on top)."""
    out = []
    for tally in tallies:
        for tf in tally.findings:
            finding = tf.finding
            if repro_dir is not None and tf.repro:
                params = {**base, **tf.repro, "category": finding.category,
                          "import_paths": base["import_paths"], "timeout": base["timeout"]}
                try:
                    script = write_tsan_reproducer(params, python=python, directory=repro_dir,
                                                   taken=taken, kind=tf.kind, sites=tf.sites,
                                                   suppressions=suppressions)
                    finding = dataclasses.replace(finding, reproducer=str(script))
                except OSError as exc:
                    diagnostics.append(Diagnostic(path=str(repro_dir), kind="unwritable",
                                                  message=f"cannot write a reproducer: {exc}"))
            out.append(finding)
    return out


def tsan_run_summary(settings: TsanSettings, tallies: list[TsanTally],
                     suppressed: dict[str, int]) -> dict[str, Any]:
    """The stress summary's ``tsan`` part, with a sentence (``note``) for every writer."""
    reports = sum(t.reports for t in tallies)
    not_ours = sum(t.not_ours for t in tallies)
    unknown: dict[str, int] = {}
    for t in tallies:
        for kind, n in t.unknown_kinds.items():
            unknown[kind] = unknown.get(kind, 0) + n
    found = sum(len(t.findings) for t in tallies)
    hidden = sum(suppressed.values())
    ours = reports - not_ours - sum(unknown.values())
    note = (f"ThreadSanitizer run: {ours} report(s) in the project's own code, merged by "
            f"their pair of source lines into {found} finding(s); {not_ours} report(s) with no "
            f"frame in the project and {hidden} matching the suppressions of CPython's own "
            "known races were counted, not shown")
    if unknown:
        note += "; reports of kinds without a rule: " + ", ".join(
            f"{n} {kind}" for kind, n in sorted(unknown.items()))
    if settings.iterations != settings.scaled_from:
        note += (f"; calls per thread scaled from {settings.scaled_from} to "
                 f"{settings.iterations} (TSan slows code 5-15x; a race needs two "
                 "unsynchronised accesses, not many)")
    return {"reports": reports, "findings": found,
            "suppressed": dict(sorted(suppressed.items())), "suppressed_total": hidden,
            "not_ours": not_ours, "other_kinds": unknown, "iterations": settings.iterations,
            "scaled_from": settings.scaled_from, "suppressions": str(settings.suppressions),
            "note": note + "."}
