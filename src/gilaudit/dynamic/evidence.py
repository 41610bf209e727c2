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
    "ARGUMENTS",
    "EVIDENCE",
    "Death",
    "Problem",
    "callable_of",
    "death_of",
    "death_problem",
    "exception_severity",
    "grouped_by_class",
    "import_problems",
    "looks_like_a_guard",
    "missing_dependency",
    "program_problems",
    "result_problems",
    "running_call",
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


ARGUMENTS = " (arguments)"  # a callable driven with different arguments in each thread


def callable_of(target: str) -> str:
    """The callable a journal target names: `add (arguments)` is `add` driven with different
    arguments in each thread; `Counter.*` is every method of Counter in sequences."""
    return target[:-len(ARGUMENTS)] if target.endswith(ARGUMENTS) else target


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
    elif run.code < 0 and signal_name(-run.code) in ("SIGXCPU", "SIGXFSZ"):
        category, how = "hang", f"stopped by a resource limit ({signal_name(-run.code)})"
    elif run.code < 0:
        category, how = "crash", f"killed by {signal_name(-run.code)}"
    else:
        category, how = "crash", f"the process exited with status {run.code} during the call"
    target = str(begin.get("target", ""))
    if target == "*" or target.endswith(".*"):
        # Several callables ran together: the dump (or the watchdog) says which one.
        stuck = [r for r in records if r.get("kind") == "stuck"]
        names = _crashing_frames(dump) if category == "crash" else []
        if not names and stuck:
            names = sorted({n for n in stuck[-1].get("threads", []) if n})
        if not names:
            names = sorted(set(_FRAME.findall(dump)))
        callables = tuple(sorted(set(names))) or (target,)
    else:
        callables = (callable_of(target),) if target else ()
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
    where, repro = running_call(module, begin, death.category, death.callables, setups, calls,
                                death.last_try)
    notes = [f"{death.how}, {where}"]
    if death.dump:
        notes.append("faulthandler:\n" + death.dump)
    if gil_build and death.category == "crash" and phase != "probe":
        notes.append("on a GIL build: the code releases the GIL around shared state, or "
                     "crashes on any build")
    return Problem(category=death.category, module=module, callable=name,
                   detail=f"({death.how}) {where}", notes=tuple(notes), repro=repro,
                   single_thread=phase in _SERIAL_PHASES)


def running_call(module: str, begin: dict[str, Any], category: str,
                 callables: tuple[str, ...], setups: dict[str, str], calls: dict[str, str],
                 last_try: str | None = None) -> tuple[str, dict[str, Any]]:
    """What the journal's ``begin`` record says was running, in words, and the reproducer's
    parameters that make the same calls with the same threads, iterations and seeds."""
    phase = str(begin.get("phase", ""))
    name = " + ".join(callables) if callables else ""
    repro = _base_repro(module, category)
    if phase == "probe":
        where = ("while gilaudit probed its arguments, serially (one thread)"
                 + (f", as {last_try}" if last_try else ""))
        cls = name.split(".", 1)[0]
        call = last_try or calls.get(name, "")
        repro.update(mode="serial", calls=[{"name": name, "call": call,
                                            "setup": setups.get(cls) if "." in name else None}])
    elif phase == "serial" or phase.startswith("state-serial"):
        where = (f"when called serially ({begin.get('iterations')} calls, one thread), "
                 f"as {begin.get('call')}")
        repro.update(mode="serial", calls=[{"name": name, "call": begin.get("call"),
                                            "setup": begin.get("setup")}])
    elif phase in ("programs", "programs-serial"):
        serially = phase == "programs-serial"
        what = ("with a different argument list in each thread"
                if str(begin.get("target", "")).endswith(ARGUMENTS)
                else "in seeded sequences of its methods, one per thread")
        where = (("when the same programs ran serially (one call at a time), "
                  if serially else f"when {begin.get('threads')} threads ran it at once, ")
                 + f"{what} (trial {begin.get('trial')}, seed {begin.get('seed')}): "
                 + str(begin.get("call", "")))
        repro.update(_programs_repro(begin), mode="programs-serial" if serially else "programs")
    elif phase == "together":
        where = (f"while {begin.get('threads')} threads drove the module's callables together "
                 f"(trial {begin.get('trial')}, seed {begin.get('seed')})")
        every = [str(n) for n in begin.get("targets", [])]
        picked = [n for n in every if n in callables] or every
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
    return where, repro


_SERIAL_PHASES = ("probe", "serial", "state-serial", "programs-serial")


def _programs_repro(record: dict[str, Any]) -> dict[str, Any]:
    """What the reproducer needs to replay threads' programs exactly: the table of calls, each
    thread's program, the object they share."""
    steps = [{"name": str(st["name"]), "call": str(st["call"])}
             for st in record.get("steps", [])]
    return {"steps": steps, "programs": record.get("programs", []),
            "setup": record.get("setup"), "calls": [
                {"name": n, "call": next(st["call"] for st in steps if st["name"] == n),
                 "setup": record.get("setup")}
                for n in dict.fromkeys(st["name"] for st in steps)]}


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


# Exceptions that say the object or the interpreter is broken, whoever raised them: always
# errors. Anything else raised by an object shared between threads may be the library's
# ordinary refusal of a state that the interleaving produced.
_BROKEN = frozenset({"SystemError", "MemoryError", "AssertionError", "RecursionError",
                     "UnicodeDecodeError", "UnicodeEncodeError"})
_ORDINARY = frozenset({"IndexError", "KeyError", "ValueError", "StopIteration",
                       "RuntimeError", "LookupError"})


def exception_severity(module: str, callable_: str, error: str,
                       stateful: bool) -> tuple[str | None, str | None]:
    """(severity instead of the rule's, a note saying why) for an exception that only
    concurrent calls raised. A method of a shared object that raises the library's own error
    (a parser object consumed from many threads) or, in mixed sequences, an ordinary one, is
    an object not meant to be shared: a warning to document or lock the type. SystemError,
    MemoryError, assertion failures and crashes stay errors."""
    if error in _BROKEN or "." not in callable_:
        return None, None
    package = module.split(".", 1)[0]
    own = error.startswith((package + ".", "_" + package + "."))
    if own or (stateful and error in _ORDINARY):
        return "warning", (f"{error} is an ordinary error of the library: the object reached "
                           "a state that serial use never produces. Document the type as not "
                           "shareable between threads, or lock it (a critical section on "
                           "self, a PyMutex per object)")
    return None, None


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
            severity, why = exception_severity(module, name, str(f["error"]), stateful=False)
            if guard:
                severity, why = "warning", (
                    "the message reads like a deliberate refusal of concurrent use: correct "
                    "if the object is documented as not shareable between threads (reported "
                    "as a warning)")
            if why:
                notes.insert(0, why)
            out.append(Problem(
                category="concurrency-exception", module=module, callable=name,
                detail=f"{f['error']}: {f['message']} in {f['count']} of {n * m} calls when "
                       f"{when}; the same calls made serially raised {serial}",
                notes=tuple(notes), severity=severity,
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


def program_problems(module: str, record: dict[str, Any]) -> list[Problem]:
    """The child's verdicts on threads that ran different programs: one callable with a
    different argument list per thread, or seeded sequences of one object's methods."""
    target = str(record["target"])
    stateful = record.get("what") == "sequence"
    owner = target[:-2] if target.endswith(".*") else callable_of(target)
    setup = record.get("setup")
    out = []
    for f in record.get("findings", []):
        n, trial, seed = int(f.get("threads", 1)), int(f.get("trial", 0)), int(f.get("seed", 0))
        repro = {**_programs_repro({**record, "programs": f.get("programs", [])}),
                 "category": f["category"], "module": module, "mode": "programs",
                 "threads": n, "iterations": max((sum(k for _s, k in p)
                                                  for p in f.get("programs", [[]])), default=1),
                 "trials": trial + 1, "seed": seed - trial}
        how = ("a different argument list in each thread" if not stateful else
               "a seeded sequence of its methods in each thread")
        shared = f" on one shared {setup}" if setup else ""
        when = f"{n} threads ran {how}{shared} (trial {trial}, seed {seed})"
        orders = ", ".join(f.get("orders", []))
        callable_ = str(f.get("name") or owner)
        if f["category"] == "concurrency-exception":
            severity, why = exception_severity(module, callable_, str(f["error"]), stateful)
            serial = ", ".join(f.get("serial_errors", [])) or "nothing"
            notes = [n_ for n_ in (why, f"first traceback:\n{f.get('traceback', '')}",
                                   f"serial orders tried: {orders}") if n_]
            out.append(Problem(
                category="concurrency-exception", module=module, callable=callable_,
                detail=f"{f['error']}: {f['message']} from {f.get('call')} in {f['count']} "
                       f"calls when {when}; the same programs run serially raised {serial} "
                       "there", notes=tuple(notes), severity=severity,
                repro={**repro, "error": f["error"], "step": f.get("step")}))
        elif f.get("what") == "result":
            out.append(Problem(
                category="wrong-result", module=module, callable=callable_,
                detail=f"{f.get('call')} returned {', '.join(f.get('got', []))} in "
                       f"{f.get('count')} calls when {when}; in every serial order it "
                       f"returns {f['expected']}",
                notes=(f"serial orders tried: {orders}",),
                repro={**repro, "expected_result": f["expected"], "step": f.get("step")}))
        elif f.get("what") == "state":
            diffs = f.get("differences", [])
            said = "; ".join(f"{d['observed']} is {d['concurrent']} (serially {d['serial']})"
                             for d in diffs[:3])
            out.append(Problem(
                category="wrong-result", module=module, callable=owner,
                detail=f"after {when}: {said}",
                notes=(f"every serial order of the same programs ({orders}) leaves the "
                       "state the concurrent run does not",),
                repro={**repro, "readers": f.get("readers", []),
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
    (death_problem, frozenset({"FT202", "FT203", "FT206", "FT207"})),
    (result_problems, frozenset({"FT204", "FT205"})),
    (program_problems, frozenset({"FT204", "FT205"})),
    (sequence_problem, frozenset({"FT204"})),
)
