"""What a child's journal and its death say happened: pure functions from records to problems.

A `Problem` is dynamic evidence before it becomes a `Finding`: its category, the module and
callable, a one-line detail for the message, notes (stacks, tracebacks, trial and seed), and
the parameters a reproducer script needs to do the same thing again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gilaudit.dynamic.confined import ChildRun, signal_name
from gilaudit.dynamic.imports import ImportOutcome

__all__ = [
    "EVIDENCE",
    "Death",
    "Problem",
    "death_of",
    "death_problem",
    "grouped_by_class",
    "import_problems",
    "looks_like_a_guard",
    "missing_dependency",
    "result_problems",
    "sequence_problem",
]

_FRAME = re.compile(r'File "<gilaudit: ([^>]+)>"')
_MAX_NOTE = 6000
_BARE_CALL = re.compile(r"^obj\.\w+\(\)$")
_OURS = re.compile(r"gilaudit_(?:drive|child|repro)\.py\"")
_STDLIB = re.compile(r"/threading\.py\"|^\s*$")


@dataclass(frozen=True, kw_only=True, slots=True)
class Problem:
    category: str  # gil-reenabled | import-failure | crash | hang | wrong-result | ...
    module: str
    callable: str  # "" for the module itself
    detail: str
    notes: tuple[str, ...] = ()
    repro: dict[str, Any] = field(default_factory=dict)
    severity: str | None = None  # instead of the rule's own
    single_thread: bool = False  # it happened with one thread (probing, serial baseline)


@dataclass(frozen=True, kw_only=True, slots=True)
class Death:
    """A child that did not finish: which call it was in, and how it ended."""

    category: str  # crash | hang
    how: str  # "killed by SIGSEGV", "no call returned within 10 s", ...
    begin: dict[str, Any]  # the journal's last unfinished "begin" record ({} if none)
    callables: tuple[str, ...]  # who was running: one name, or several driven together
    last_try: str | None  # the argument list being probed, when probing
    dump: str  # faulthandler's stacks


def _open_begin(records: list[dict[str, Any]]) -> dict[str, Any]:
    stack: list[dict[str, Any]] = []
    for r in records:
        if r.get("kind") == "begin":
            stack.append(r)
        elif r.get("kind") == "end" and stack:
            stack.pop()
    return stack[-1] if stack else {}


def _crashing_frames(dump: str) -> list[str]:
    """Callables named in the dump's crashing thread ("Current thread" on a GIL build; the
    only stack shown on a free-threaded one), else in any thread."""
    current = re.split(r"\n(?=Thread 0x|Current thread)", dump)
    for block in current:
        if block.startswith("Current thread") or "Stack (most recent call first)" in block:
            names = _FRAME.findall(block)
            if names:
                return names[:1]
    return sorted(set(_FRAME.findall(dump)))


def death_of(run: ChildRun, timeout: float) -> Death | None:
    """None if the child finished its work; otherwise what killed it, and where."""
    records = run.records
    if any(r.get("kind") == "done" for r in records):
        return None
    begin = _open_begin(records)
    dump = run.fault.strip()
    if run.code is None or "Timeout (" in dump:
        waited = float(begin.get("timeout") or timeout)
        category, how = "hang", f"no call returned within {waited:g} s"
    elif run.code < 0:
        category, how = "crash", f"killed by {signal_name(-run.code)}"
    else:
        category, how = "crash", f"the process exited with status {run.code} during the call"
    target = str(begin.get("target", ""))
    if target == "*":
        stuck = [r for r in records if r.get("kind") == "stuck"]
        names = _crashing_frames(dump) if category == "crash" else []
        if not names and stuck:
            names = sorted({n for n in stuck[-1].get("threads", []) if n})
        if not names:
            names = sorted(set(_FRAME.findall(dump)))
        callables = tuple(sorted(set(names))) or ("*",)
    else:
        callables = (target,) if target else ()
    tries = [r for r in records if r.get("kind") == "try" and r.get("target") == target]
    last_try = str(tries[-1]["call"]) if tries and begin.get("phase") == "probe" else None
    return Death(category=category, how=how, begin=begin, callables=callables,
                 last_try=last_try, dump=_readable(dump))


def _readable(dump: str) -> str:
    """The dump as a maintainer wants it: the crashing thread first, gilaudit's own frames
    and the threads that were only waiting in gilaudit's code left out, capped."""
    blocks = re.split(r"\n\s*\n|\n(?=Thread 0x|Current thread 0x|Stack \(most)", dump)
    head, threads, tail = [], [], []
    for block in blocks:
        lines = block.splitlines()
        if not lines:
            continue
        if lines[0].startswith(("Thread 0x", "Current thread 0x", "Stack (most recent")):
            kept = [ln for ln in lines[1:] if not _OURS.search(ln) and not _STDLIB.search(ln)]
            if kept:
                threads.append("\n".join([lines[0], *kept]))
        elif threads:
            tail.append(block)
        else:
            head.append(block)
    threads.sort(key=lambda b: not b.startswith(("Current thread", "Stack")))
    text = "\n\n".join(head + threads + tail).strip()
    return text if len(text) <= _MAX_NOTE else text[:_MAX_NOTE] + "\n... (cut)"


def _base_repro(module: str, category: str) -> dict[str, Any]:
    return {"category": category, "module": module, "calls": []}


def death_problem(module: str, death: Death, setups: dict[str, str], calls: dict[str, str],
                  gil_build: bool) -> Problem:
    begin = death.begin
    phase = str(begin.get("phase", ""))
    name = " + ".join(death.callables) if death.callables else ""
    repro = _base_repro(module, death.category)
    if phase == "probe":
        where = ("while gilaudit probed its arguments, serially (one thread)"
                 + (f", as {death.last_try}" if death.last_try else ""))
        cls = name.split(".", 1)[0]
        call = death.last_try or calls.get(name, "")
        repro.update(mode="serial", calls=[{"name": name, "call": call,
                                            "setup": setups.get(cls) if "." in name else None}])
    elif phase == "serial" or phase.startswith("state-serial"):
        where = (f"when called serially ({begin.get('iterations')} calls, one thread), "
                 f"as {begin.get('call')}")
        repro.update(mode="serial", calls=[{"name": name, "call": begin.get("call"),
                                            "setup": begin.get("setup")}])
    elif phase == "together":
        where = (f"while {begin.get('threads')} threads drove the module's callables together "
                 f"(trial {begin.get('trial')}, seed {begin.get('seed')})")
        every = [str(n) for n in begin.get("targets", [])]
        picked = [n for n in every if n in death.callables] or every
        repro.update(mode="hammer", calls=[
            {"name": n, "call": calls[n], "setup": _setup_for(n, setups)}
            for n in picked if n in calls])
    else:
        where = (f"when {begin.get('threads')} threads x {begin.get('iterations')} calls ran "
                 f"it at once (trial {begin.get('trial')}, seed {begin.get('seed')}), as "
                 f"{begin.get('call')}")
        repro.update(mode="sequence" if phase.startswith("state-") else "hammer",
                     calls=[{"name": name, "call": begin.get("call"),
                             "setup": begin.get("setup")}])
    repro.update(threads=int(begin.get("threads") or 1),
                 iterations=int(begin.get("iterations") or 1),
                 trials=max(1, int(begin.get("trial") or 0) + 1),
                 seed=int(begin.get("seed") or 0) - int(begin.get("trial") or 0))
    notes = [f"{death.how}, {where}"]
    if death.dump:
        notes.append("faulthandler:\n" + death.dump)
    if gil_build and death.category == "crash" and phase != "probe":
        notes.append("on a GIL build: the code releases the GIL around shared state, or "
                     "crashes on any build")
    return Problem(category=death.category, module=module, callable=name,
                   detail=f"({death.how}) {where}", notes=tuple(notes), repro=repro,
                   single_thread=phase in ("probe", "serial", "state-serial"))


def grouped_by_class(problems: list[Problem]) -> list[Problem]:
    """Several methods of one class that crash or hang in a single thread share a cause: an
    object the type lets anyone make but that is not usable (an internal type meant to come
    from a factory). One finding per class, listing them, says that better than one each."""
    groups: dict[tuple[str, str], list[Problem]] = {}
    for p in problems:
        # Only calls without arguments: with arguments, those are as likely the cause.
        calls = [c.get("call") or "" for c in p.repro.get("calls", [])]
        bare = bool(calls) and all(_BARE_CALL.match(c) for c in calls)
        if p.single_thread and p.category in ("crash", "hang") and "." in p.callable and bare:
            groups.setdefault((p.module, p.callable.split(".", 1)[0]), []).append(p)
    merged: dict[int, Problem] = {}
    dropped: set[int] = set()
    for (module, cls), members in groups.items():
        if len(members) < 2:
            continue
        first = members[0]
        names = ", ".join(f"{m.callable.split('.', 1)[1]} ({m.category})" for m in members)
        setup = next((c.get("setup") for c in first.repro.get("calls", []) if c.get("setup")),
                     None)
        made = f" on an object made by {setup}" if setup else ""
        merged[id(first)] = Problem(
            category="crash" if any(m.category == "crash" for m in members) else "hang",
            module=module, callable=cls,
            detail=f"in a single thread, {len(members)} of its methods{made}: {names}",
            notes=("the type can be instantiated directly, but such an object is not usable; "
                   "if it is meant to come from a factory, set "
                   "Py_TPFLAGS_DISALLOW_INSTANTIATION (or make tp_new fail)",
                   *[f"{m.callable}: {m.detail}" for m in members], *first.notes[1:2]),
            repro=first.repro, single_thread=True)
        dropped.update(id(m) for m in members[1:])
    return [merged.get(id(p), p) for p in problems if id(p) not in dropped]


def _setup_for(name: str, setups: dict[str, str]) -> str | None:
    return setups.get(name.split(".", 1)[0]) if "." in name else None


def import_problems(outcome: ImportOutcome, free_threaded: bool) -> list[Problem]:
    module = outcome.module
    out: list[Problem] = []
    if outcome.status not in ("ok", "child-error") and missing_dependency(outcome) is None:
        notes = tuple(n for n in (outcome.traceback.strip(),
                                  ("stderr:\n" + outcome.stderr_tail.strip())
                                  if outcome.stderr_tail.strip() else "") if n)
        detail = outcome.detail if outcome.status == "failed" else \
            f"{outcome.status} ({outcome.detail})"
        out.append(Problem(category="import-failure", module=module, callable="",
                           detail=detail, notes=notes,
                           repro={**_base_repro(module, "import-failure"), "mode": "import"}))
    if free_threaded and outcome.gil_reenabled:
        said = (f" (the interpreter's warning names `{outcome.gil_warning}`)"
                if outcome.gil_warning else "")
        out.append(Problem(
            category="gil-reenabled", module=module, callable="",
            detail=f"{said}; sys._is_gil_enabled() was {outcome.gil_before} before the import "
                   f"and {outcome.gil_after} after it",
            repro={**_base_repro(module, "gil-reenabled"), "mode": "import"}))
    return out


_MISSING = re.compile(r"^ModuleNotFoundError: No module named '([^']+)'")


def missing_dependency(outcome: ImportOutcome) -> str | None:
    """The other module whose absence made the import fail (an optional backend, an extra
    that is not installed): not the extension's fault, reported as a diagnostic."""
    if outcome.status != "failed":
        return None
    m = _MISSING.match(outcome.detail)
    if m is None:
        return None
    missing = m.group(1)
    mine = outcome.module == missing or outcome.module.startswith(missing + ".") \
        or missing.startswith(outcome.module + ".")
    return None if mine else missing


# A deliberate refusal of concurrent use (brotli's "encoder concurrent access", a generator's
# "already executing") is correct behaviour the maintainer should confirm, not a crash-class
# bug: reported as a warning, not an error.
_GUARD = re.compile(r"concurren|already (?:executing|running|in use)|\bin use\b|re-?entr|"
                    r"another thread|not thread.?safe|\bbusy\b", re.IGNORECASE)


def looks_like_a_guard(message: str) -> bool:
    return bool(_GUARD.search(message))


def result_problems(module: str, result: dict[str, Any]) -> list[Problem]:
    """The child's own verdicts on one driven callable (concurrency-only exceptions, results
    and states that differ from the serial ones)."""
    name, call, setup = str(result["target"]), str(result["call"]), result.get("setup")
    out = []
    for f in result.get("findings", []):
        n, m = f.get("threads"), f.get("iterations")
        base = {"category": f["category"], "module": module, "threads": n, "iterations": m,
                "trials": int(f.get("trial", 0)) + 1,
                "seed": int(f.get("seed", 0)) - int(f.get("trial", 0)),
                "calls": [{"name": name, "call": call, "setup": setup}]}
        when = (f"{n} threads x {m} calls of {call} at once"
                + (f" on one shared {setup}" if setup else "")
                + f" (trial {f.get('trial')}, seed {f.get('seed')})")
        if f["category"] == "concurrency-exception":
            serial = ", ".join(f.get("serial_errors", [])) or "nothing"
            guard = looks_like_a_guard(str(f.get("message", "")))
            notes = [f"first traceback:\n{f.get('traceback', '')}"]
            if guard:
                notes.insert(0, "the message reads like a deliberate refusal of concurrent use: "
                                "correct if the object is documented as not shareable between "
                                "threads (reported as a warning)")
            out.append(Problem(
                category="concurrency-exception", module=module, callable=name,
                detail=f"{f['error']}: {f['message']} in {f['count']} of {n * m} calls when "
                       f"{when}; the same calls made serially raised {serial}",
                notes=tuple(notes), severity="warning" if guard else None,
                repro={**base, "mode": "hammer", "error": f["error"]}))
        elif f.get("what") == "result":
            got = ", ".join(f.get("got", []))
            out.append(Problem(
                category="wrong-result", module=module, callable=name,
                detail=f"returned {got} in {f.get('count')} calls when {when}; serially it "
                       f"always returns {f['expected']}",
                repro={**base, "mode": "hammer", "expected_result": f["expected"]}))
        elif f.get("what") == "state":
            diffs = f.get("differences", [])
            said = "; ".join(f"{d['observed']} is {d['concurrent']} (serially {d['serial']})"
                             for d in diffs[:3])
            out.append(Problem(
                category="wrong-result", module=module, callable=name,
                detail=f"after {when}: {said}",
                notes=(f"the same {n * m} calls made serially on a fresh object leave a "
                       f"different state; compared: {', '.join(d['observed'] for d in diffs)}",),
                repro={**base, "mode": "state", "readers": f.get("readers", []),
                       "expected_state": {d["observed"]: d["serial"] for d in diffs}}))
    return out


def sequence_problem(module: str, serial: list[dict[str, Any]], again: list[dict[str, Any]],
                     concurrent: list[dict[str, Any]], mutators: list[dict[str, str]],
                     threads: int, iterations: int, seed: int) -> Problem | None:
    """Module-level state: the first step after which a concurrent run's readers disagree
    with what two serial runs agreed on."""
    for step, (one, two, conc) in enumerate(zip(serial, again, concurrent, strict=False)):
        agreed = {k: v for k, v in one.get("observed", {}).items()
                  if two.get("observed", {}).get(k) == v}
        seen = conc.get("observed", {})
        diffs = {k: v for k, v in agreed.items() if seen.get(k) != v}
        if not diffs or step == 0:
            continue
        if set(conc.get("errors", [])) - set(one.get("errors", [])):
            return None  # calls that failed only concurrently: reported as exceptions
        culprit = mutators[step - 1]
        said = "; ".join(f"{k} is {seen.get(k)} (serially {v})" for k, v in
                         sorted(diffs.items())[:3])
        return Problem(
            category="wrong-result", module=module, callable=culprit["name"],
            detail=f"module state after {threads} threads x {iterations} calls of "
                   f"{culprit['call']} at once (seed {seed}): {said}",
            notes=("module-level functions were run in the same order, serially (twice, in "
                   "fresh processes) and concurrently (in another fresh process); the readers "
                   "agreed until this call", "steps: " + ", ".join(
                       m["call"] for m in mutators[:step])),
            repro={"category": "wrong-result", "module": module, "mode": "sequence",
                   "calls": [{"name": m["name"], "call": m["call"], "setup": None}
                             for m in mutators[:step]],
                   "threads": threads, "iterations": iterations, "trials": 1, "seed": seed,
                   "expected_state": diffs})
    return None


# Where each dynamic rule's evidence is turned into a problem (`gilaudit explain --json`).
EVIDENCE: tuple[tuple[Callable[..., Any], frozenset[str]], ...] = (
    (import_problems, frozenset({"FT200", "FT201"})),
    (death_problem, frozenset({"FT202", "FT203"})),
    (result_problems, frozenset({"FT204", "FT205"})),
    (sequence_problem, frozenset({"FT204"})),
)
