"""The stress phase, parent side.

For each extension module, children of the interpreter under test import it (alone, to see
whether the GIL comes back on), then probe and hammer it. A child that crashes or hangs is
replaced by a fresh one told what is already done and what never to call again, so one bad
callable costs only itself. Module-level state gets its own fresh processes (serial twice,
then concurrent). What the journals say becomes problems, the exercised surface and a verdict.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gilaudit.dynamic.confined import ChildRun, run_child
from gilaudit.dynamic.evidence import (
    ARGUMENTS,
    Problem,
    callable_of,
    death_of,
    death_problem,
    grouped_by_class,
    import_problems,
    missing_dependency,
    program_problems,
    result_problems,
    running_call,
    sequence_problem,
)
from gilaudit.dynamic.imports import check_import
from gilaudit.dynamic.interpreters import Interpreter
from gilaudit.dynamic.reproducer import write_reproducer
from gilaudit.dynamic.tsan import TsanSettings
from gilaudit.dynamic.tsanfindings import (
    ProjectSources,
    TsanEvent,
    TsanTally,
    pinned_reports,
    tsan_findings,
)
from gilaudit.dynamic.tsanrun import tsan_reproduced, tsan_run_summary, tsan_verdict
from gilaudit.language import language_of
from gilaudit.model import (
    Diagnostic,
    Driven,
    Finding,
    ModuleStress,
    Note,
    StressSummary,
    Undriven,
    fingerprint,
)
from gilaudit.rulebook import RuleBook

__all__ = ["RULE_OF", "StressOptions", "StressResult", "default_threads", "stress_modules"]

RULE_OF = {"gil-reenabled": "FT200", "import-failure": "FT201", "crash": "FT202",
           "hang": "FT203", "wrong-result": "FT204", "concurrency-exception": "FT205"}
# A crash or a hang with one thread is a bug, but not a free-threading one: rules of its own.
SINGLE_THREAD_RULE = {"crash": "FT206", "hang": "FT207"}
_SLACK = 30.0  # seconds a child may run past its budget before the parent kills it


def default_threads() -> int:
    """Enough threads to oversubscribe the cores, so that threads are preempted mid-call."""
    return max(4, min(32, 4 * (os.cpu_count() or 1)))


@dataclass(frozen=True, kw_only=True, slots=True)
class StressOptions:
    threads: int = field(default_factory=default_threads)
    iterations: int = 100  # calls per thread per trial
    trials: int = 5
    seed: int = 0
    budget: float = 60.0  # seconds per module, everything included
    total_budget: float | None = None  # the whole run; modules share what is left fairly
    timeout: float = 10.0  # seconds without any call returning before a hang is declared
    import_timeout: float = 60.0
    memory_bytes: int = 8 << 30
    max_children: int = 40  # restarts after crashes and hangs, per module
    python_callables: bool = False  # drive the package's pure-Python functions and classes too
    tsan: TsanSettings | None = None  # children under ThreadSanitizer (a TSan interpreter)

    @property
    def suppressions(self) -> Path | None:
        """The TSan suppressions file every child names, or None without TSan."""
        return self.tsan.suppressions if self.tsan is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {"threads": self.threads, "iterations": self.iterations,
                "trials": self.trials, "seed": self.seed, "budget": self.budget,
                "total_budget": self.total_budget,
                "timeout": self.timeout, "import_timeout": self.import_timeout,
                "memory_bytes": self.memory_bytes, "python_callables": self.python_callables,
                "tsan": self.tsan is not None}


@dataclass(frozen=True, kw_only=True, slots=True)
class ModuleOutcome:
    stress: ModuleStress
    problems: tuple[Problem, ...]
    diagnostics: tuple[Diagnostic, ...]
    tsan_events: tuple[TsanEvent, ...] = ()
    tsan_suppressed: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class StressResult:
    summary: StressSummary
    findings: tuple[Finding, ...]
    diagnostics: tuple[Diagnostic, ...]


@dataclass(kw_only=True, slots=True)
class _Progress:
    """What the drive children of one module have established so far (parent-side only)."""

    items: list[dict[str, Any]] = field(default_factory=list)
    probes: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    programs: dict[str, dict[str, Any]] = field(default_factory=dict)  # target -> record
    not_driven: dict[str, str] = field(default_factory=dict)
    stopped: dict[str, str] = field(default_factory=dict)  # callable -> crash | hang
    readers: list[str] = field(default_factory=list)
    together: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    children: int = 0
    tsan_events: list[TsanEvent] = field(default_factory=list)
    tsan_suppressed: dict[str, int] = field(default_factory=dict)

    def take_tsan(self, module: str, run: ChildRun) -> None:
        """The reports the child's TSan log holds, each with the call that was running when
        TSan wrote it: the last "begin" of the journal at or before its place in the log."""
        for report, begin in pinned_reports(run.tsan_logs, run.records, self.tsan_suppressed):
            target = str(begin.get("target", ""))
            names = [str(t) for t in begin.get("targets") or ([target] if target else [])]
            callables = tuple(dict.fromkeys(callable_of(n) for n in names if n))
            where, repro = running_call(module, begin, "tsan", callables, self.setups(),
                                        self.calls()) if begin else ("", {})
            self.tsan_events.append(TsanEvent(module=module, report=report,
                                              callables=callables, where=where, repro=repro))

    def take(self, records: list[dict[str, Any]]) -> None:
        for r in records:
            kind = r.get("kind")
            if kind == "surface" and not self.items:
                self.items = [i for i in r.get("items", []) if isinstance(i, dict)]
            elif kind == "probe":
                self.probes[str(r["target"])] = {k: v for k, v in r.items() if k != "kind"}
            elif kind == "result":
                self.results[str(r["target"])] = r
            elif kind == "programs":
                self.programs[str(r["target"])] = r
            elif kind == "not-driven":
                self.not_driven.setdefault(str(r["target"]), str(r.get("reason", "")))
            elif kind == "observers":
                self.readers = list(r.get("observers", {}).get("", []))
            elif kind == "together":
                self.together = r

    def setups(self) -> dict[str, str]:
        return {k: str(v["call"]) for k, v in self.probes.items()
                if "." not in k and v.get("outcome") == "returns" and v.get("call")}

    def calls(self) -> dict[str, str]:
        return {k: str(v["call"]) for k, v in self.probes.items() if v.get("call")}


def _plan(options: StressOptions, progress: _Progress, budget: float) -> dict[str, Any]:
    # A phase whose child died is done too: its finding is in, and it would die again.
    done = list(progress.results) + list(progress.programs) + [
        name for name in progress.stopped if name.endswith((ARGUMENTS, ".*"))]
    if progress.together:
        done.append("*")
    return {"threads": options.threads, "iterations": options.iterations,
            "trials": options.trials, "seed": options.seed, "timeout": options.timeout,
            "budget": budget, "exclude": sorted(progress.stopped), "done": done,
            "probes": progress.probes, "python_callables": options.python_callables,
            "troubled": sorted({name.split(".", 1)[0] for name, r in
                                [*progress.results.items(), *progress.programs.items()]
                                if "." in name and r.get("findings")}
                               | {name.split(".", 1)[0] for name in progress.stopped
                                  if "." in name})}


def _child_env(gil_build: bool) -> dict[str, str]:
    # On a free-threaded build the module is driven with the GIL kept off even when its import
    # would turn it back on (that is reported from the import check): the question is what
    # breaks once it runs without the GIL. A GIL build refuses PYTHON_GIL=0 outright.
    # One hash seed for every child, so that what a reader returns cannot differ between the
    # serial and the concurrent processes by the order of a set.
    return {"PYTHONHASHSEED": "0"} if gil_build else {"PYTHONHASHSEED": "0", "PYTHON_GIL": "0"}


def _drive(python: str, module: str, import_paths: list[str], options: StressOptions,
           progress: _Progress, deadline: float, gil_build: bool) -> None:
    while progress.children < options.max_children:
        budget = deadline - time.monotonic()
        if budget <= 0:
            return
        run = run_child(python, "drive", module, import_paths=import_paths,
                        timeout=budget + options.timeout + _SLACK,
                        memory_bytes=options.memory_bytes,
                        plan=_plan(options, progress, budget), extra_env=_child_env(gil_build),
                        tsan=options.suppressions)
        progress.children += 1
        progress.take(run.records)
        progress.take_tsan(module, run)
        errors = [r for r in run.records if r.get("kind") == "child-error"]
        if errors:
            progress.diagnostics.append(Diagnostic(
                path=None, kind="stress-internal-error",
                message=f"{module}: gilaudit's child script failed: "
                        f"{str(errors[-1].get('traceback', '')).strip()[-1500:]}"))
            return
        death = death_of(run, options.timeout)
        if death is None:
            return
        if not death.begin:
            progress.diagnostics.append(Diagnostic(
                path=None, kind="stress-child-died",
                message=f"{module}: the child {death.how} outside any call "
                        f"(stderr: {run.stderr_tail.strip()[-500:]!r})"))
            return
        progress.problems.append(death_problem(module, death, progress.setups(),
                                               progress.calls(), gil_build))
        if death.begin.get("target") == "*":
            progress.together = {"targets": list(death.callables), "stopped": death.category}
        for name in death.callables or (str(death.begin.get("target")),):
            progress.stopped[name] = death.category
        if death.begin.get("target") not in (None, "*"):
            progress.stopped[str(death.begin["target"])] = death.category
    progress.diagnostics.append(Diagnostic(
        path=None, kind="stress-gave-up",
        message=f"{module}: {options.max_children} child processes died; the rest of the "
                "module was not driven"))


def _sequence(python: str, module: str, import_paths: list[str], options: StressOptions,
              progress: _Progress, deadline: float, gil_build: bool) -> int:
    """Module-level state; returns the calls made."""
    readers = progress.readers
    mutators = [{"name": name, "call": str(r["call"])} for name, r in sorted(
        progress.results.items()) if "." not in name and r["call"] not in readers
        and name not in progress.stopped]
    if not readers or not mutators:
        return 0
    n, m = options.threads, options.iterations

    def run(mode: str, seed: int) -> list[dict[str, Any]] | None:
        budget = deadline - time.monotonic()
        if budget <= 0:
            return None
        plan = {"mode": mode, "readers": readers, "mutators": mutators, "threads": n,
                "iterations": m, "seed": seed, "timeout": options.timeout}
        child = run_child(python, "sequence", module, import_paths=import_paths,
                          timeout=budget + options.timeout + _SLACK,
                          memory_bytes=options.memory_bytes, plan=plan,
                          extra_env=_child_env(gil_build), tsan=options.suppressions)
        progress.children += 1
        progress.take_tsan(module, child)
        death = death_of(child, options.timeout)
        if death is not None:
            if death.begin:
                progress.problems.append(death_problem(module, death, {}, {}, gil_build))
            return None
        return [r for r in child.records if r.get("kind") == "state"]

    serial, again = run("serial", options.seed), run("serial", options.seed)
    if serial is None or again is None:
        return 0
    calls = 2 * n * m * len(mutators)
    for trial in range(options.trials):
        seed = options.seed + trial
        conc = run("concurrent", seed)
        if conc is None:
            break
        calls += n * m * len(mutators)
        found = sequence_problem(module, serial, again, conc, mutators, n, m, seed)
        if found is not None:
            progress.problems.append(found)
            break
    return calls


def _surface(progress: _Progress) -> tuple[tuple[Driven, ...], tuple[Undriven, ...], int]:
    kinds = {str(i.get("name")): str(i.get("kind")) for i in progress.items}
    driven = []
    calls = 0
    for name, r in sorted(progress.results.items()):
        probe = progress.probes.get(name, {})
        raises = r.get("raises") if r.get("outcome") == "raises" else None
        driven.append(Driven(
            name=name, kind=kinds.get(name, ""), call=str(r["call"]), setup=r.get("setup"),
            signature=str(probe.get("signature", "")), threads=int(r["threads"]),
            iterations=int(r["iterations"]), trials=int(r["trials"]), calls=int(r["calls"]),
            compared=tuple(r.get("compared", ())), raises=raises,
            variants=tuple(str(v) for v in r.get("variants", ()))))
        calls += int(r["calls"])
    for name, r in sorted(progress.programs.items()):
        steps = r.get("steps", [])
        driven.append(Driven(
            name=name, kind="arguments" if r.get("what") == "arguments" else "sequence",
            call="; ".join(str(st["call"]) for st in steps), setup=r.get("setup"),
            signature="", threads=max(1, int(r.get("threads") or 1)),
            iterations=max(1, int(r.get("iterations") or 1)),
            trials=int(r["trials"]), calls=int(r.get("calls", 0)),
            variants=tuple(str(st["call"]) for st in steps)))
        calls += int(r.get("calls", 0))
    together = progress.together
    if together.get("trials"):
        calls += int(together["threads"]) * int(together["iterations"]) * int(together["trials"])
    undriven = []
    for item in progress.items:
        name = str(item.get("name"))
        if name in progress.results:
            continue
        if item.get("skip"):
            undriven.append(Undriven(name=name, reason=str(item["skip"]), skipped=True))
        elif name in progress.stopped:
            undriven.append(Undriven(name=name, reason=f"stopped by a {progress.stopped[name]}: "
                                                       "see the finding", skipped=False))
        elif name in progress.not_driven:
            undriven.append(Undriven(name=name, reason=progress.not_driven[name],
                                     skipped=False))
        elif item.get("kind") == "class":
            probe = progress.probes.get(name, {})
            if probe.get("outcome") != "returns":
                reason = str(probe.get("reason") or (
                    f"constructing it raised {probe.get('raises')}" if probe else
                    "never reached: the time budget ran out first"))
                undriven.append(Undriven(name=name, reason=f"no instance: {reason}",
                                         skipped=False))
        else:
            undriven.append(Undriven(name=name, reason="never reached: the time budget ran "
                                                       "out first", skipped=False))
    return tuple(driven), tuple(undriven), calls


def stress_module(python: str, module: str, *, import_paths: list[str],
                  options: StressOptions, free_threaded: bool) -> ModuleOutcome:
    started = time.monotonic()
    deadline = started + options.budget
    outcome = check_import(python, module, import_paths=import_paths,
                           timeout=min(options.import_timeout, options.budget),
                           memory_bytes=options.memory_bytes,
                           extra_env=_child_env(True), tsan=options.suppressions)
    problems = import_problems(outcome, free_threaded)
    gil_reenabled = outcome.gil_reenabled if free_threaded else None
    if outcome.status != "ok":
        missing = missing_dependency(outcome)
        why = (f"it needs `{missing}`, which is not installed (an optional dependency?)"
               if missing else f"importing it {outcome.status}: {outcome.detail}")
        stress = ModuleStress(module=module, verdict="could not run", reason=why,
                              imported=outcome.status, gil_reenabled=gil_reenabled,
                              seconds=time.monotonic() - started, children=1)
        diags: tuple[Diagnostic, ...] = ()
        if missing:
            diags = (Diagnostic(path=None, kind="missing-dependency",
                                message=f"{module}: not stressed: {why}"),)
        elif outcome.status == "child-error":  # gilaudit's side failed, not the module
            diags = (Diagnostic(path=None, kind="stress-child-failed",
                                message=f"{module}: not stressed: {outcome.detail}: "
                                        f"{outcome.traceback.strip()[-800:]}"),)
        return ModuleOutcome(stress=stress, problems=tuple(problems), diagnostics=diags)
    progress = _Progress(problems=problems, children=1)
    _drive(python, module, import_paths, options, progress, deadline, not free_threaded)
    state_calls = _sequence(python, module, import_paths, options, progress, deadline,
                            not free_threaded)
    driven, undriven, calls = _surface(progress)
    for result in progress.results.values():
        progress.problems.extend(result_problems(module, result))
    for record in progress.programs.values():
        progress.problems.extend(program_problems(module, record))
    found = grouped_by_class(_unique(progress.problems))
    if found:
        counts: dict[str, int] = {}
        for p in found:
            counts[p.category] = counts.get(p.category, 0) + 1
        verdict, reason = "problems", ", ".join(f"{n} {c}" for c, n in sorted(counts.items()))
    elif not driven:
        verdict = "not exercised"
        reason = ("imported, but nothing could be driven: " +
                  ("; ".join(f"{u.name}: {u.reason}" for u in undriven[:5]) or
                   "it exposes no functions or classes of its own"))
    elif all(d.raises for d in driven):
        verdict = "not exercised"
        reason = ("every call it could make raised (no arguments were found that work), e.g. "
                  + "; ".join(f"{d.call} raises {d.raises}" for d in driven[:3]))
    else:
        verdict = "clean"
        errors_only = sum(1 for d in driven if d.raises)
        reason = (f"nothing found in {len(driven)} callable(s)"
                  + (f" ({errors_only} only on their error path)" if errors_only else "")
                  + ("" if free_threaded else
                     "; a GIL build: races the GIL prevents cannot show here"))
    stress = ModuleStress(module=module, verdict=verdict, reason=reason, imported="ok",
                          gil_reenabled=gil_reenabled, driven=driven, undriven=undriven,
                          calls=calls + state_calls, seconds=time.monotonic() - started,
                          children=progress.children)
    return ModuleOutcome(stress=stress, problems=tuple(found),
                         diagnostics=tuple(progress.diagnostics),
                         tsan_events=tuple(progress.tsan_events),
                         tsan_suppressed=dict(progress.tsan_suppressed))


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[str, str]] = set()
    out = []
    for p in problems:
        if (p.category, p.callable) not in seen:
            seen.add((p.category, p.callable))
            out.append(p)
    return out


def findings_of(problems: list[Problem], book: RuleBook,
                reproducers: dict[int, Path]) -> list[Finding]:
    out = []
    for index, p in enumerate(problems):
        rule = book.get((SINGLE_THREAD_RULE.get(p.category) if p.single_thread else None)
                        or RULE_OF[p.category])
        symbol = f"{p.module}.{p.callable}" if p.callable else p.module
        repro = reproducers.get(index)
        severity = p.severity if p.severity in ("error", "warning", "info") else rule.severity
        out.append(Finding(
            rule=rule.id, name=rule.name, category=rule.category,
            language=language_of(rule.language, None),
            severity=severity,  # type: ignore[arg-type]
            message=rule.format_message(symbol=symbol, where=p.detail), location=None,
            symbol=symbol, fix=rule.fix, module=p.module, callable=p.callable or None,
            notes=tuple(Note(message=n) for n in p.notes), preview=rule.preview,
            evidence="dynamic", reproducer=str(repro) if repro else None,
            fingerprint=fingerprint(rule.id, "", symbol, None, p.category)))
    return out


def stress_modules(interpreter: Interpreter, modules: list[str], *, import_paths: list[str],
                   options: StressOptions, book: RuleBook, repro_dir: Path | None,
                   on_module: Callable[[str, ModuleStress], None] | None = None,
                   sources: ProjectSources | None = None) -> StressResult:
    """Stress every module in turn; findings carry the path of their reproducer script.
    Under TSan (``options.tsan``), ``sources`` are the project's files its reports are pinned
    to (without them, frames in the modules' own shared objects count as the project's)."""
    free_threaded = interpreter.free_threaded
    results: list[ModuleStress] = []
    problems: list[Problem] = []
    diagnostics: list[Diagnostic] = []
    tallies: list[TsanTally] = []
    suppressed: dict[str, int] = {}
    run_deadline = (time.monotonic() + options.total_budget
                    if options.total_budget is not None else None)
    for index, module in enumerate(modules):
        share = options
        if run_deadline is not None:
            left = (run_deadline - time.monotonic()) / (len(modules) - index)
            share = dataclasses.replace(options, budget=max(1.0, left))
        got = stress_module(interpreter.executable, module, import_paths=import_paths,
                            options=share, free_threaded=free_threaded)
        stress = got.stress
        if options.tsan is not None:
            tally = tsan_findings(got.tsan_events, sources or ProjectSources(modules=frozenset(
                m.rsplit(".", 1)[-1] for m in modules)), book)
            tallies.append(tally)
            for pattern, count in got.tsan_suppressed.items():
                suppressed[pattern] = suppressed.get(pattern, 0) + count
            stress = tsan_verdict(stress, tally)
        results.append(stress)
        problems.extend(got.problems)
        diagnostics.extend(got.diagnostics)
        if on_module is not None:
            on_module(module, stress)
    base = {"threads": options.threads, "iterations": options.iterations,
            "trials": options.trials, "seed": options.seed, "mode": "hammer", "calls": [],
            "import_paths": [str(Path(x).resolve()) for x in import_paths],
            "timeout": max(10.0, 2 * options.timeout)}
    reproducers: dict[int, Path] = {}
    taken: set[str] = set()
    if repro_dir is not None:
        for index, p in enumerate(problems):
            try:
                reproducers[index] = write_reproducer(
                    {**base, **p.repro, "import_paths": base["import_paths"],
                     "timeout": base["timeout"]},
                    python=interpreter.executable, directory=repro_dir, taken=taken)
            except OSError as exc:
                diagnostics.append(Diagnostic(path=str(repro_dir), kind="unwritable",
                                              message=f"cannot write a reproducer: {exc}"))
                break
    tsan_found = tsan_reproduced(tallies, base, python=interpreter.executable,
                                 repro_dir=repro_dir, taken=taken,
                                 suppressions=options.suppressions, diagnostics=diagnostics)
    caveat = "" if free_threaded else (
        "this interpreter runs with the GIL: the stress phase still finds code that releases "
        "the GIL around shared state, crashes and hangs, but races the GIL prevents cannot "
        "show; run it with a free-threaded interpreter (python3.13t, python3.14t)")
    tsan_summary = None
    if options.tsan is not None:
        tsan_summary = tsan_run_summary(options.tsan, tallies, suppressed)
        caveat = " ".join(filter(None, [caveat, tsan_summary["note"]]))
    settings = {**options.to_dict(), "python_gil_env": None if not free_threaded else "0"}
    summary = StressSummary(interpreter=interpreter.to_dict(), settings=settings,
                            modules=tuple(results), caveat=caveat, tsan=tsan_summary)
    return StressResult(summary=summary,
                        findings=tuple(findings_of(problems, book, reproducers)) + tuple(
                            tsan_found),
                        diagnostics=tuple(diagnostics))

