"""Probing and hammering, inside the interpreter under test.

Standard library only, syntax for any CPython 3.6+ (see gilaudit_child.py). Every call the
child makes is an *expression* evaluated in an environment holding the module (``mod``) and,
for methods, the object under test (``obj``): ``mod.add(1)``, ``obj.increment()``,
``obj.__getitem__('abc')``. The expression is compiled once with the file name
``<gilaudit: NAME>``, so a faulthandler dump of a crashing or hanging thread names the callable
it was in, and the same text is what the reproducer script runs. Arguments are rebuilt on every
call (the expression contains them), so no two calls share a mutable argument.
"""

import faulthandler
import functools
import inspect
import itertools
import random
import re
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Tuple

# Probed first: ordinary values a function is most likely to accept and act on (an increment
# of 0 would hide a lost update). Then edge values. Instances of the module's own classes are
# added between the two once their constructors are known.
COMMON = ["1", "7", "'abc'", "b'abc'", "1.5", "[1, 2, 3]", "(1, 2)", "{'a': 1}", "'[1, 2]'"]
EDGE = ["0", "-1", "''", "b''", "None", "True", "[]", "{}", "()", "2 ** 31", "2 ** 70",
        "'h\\xe9llo \\u2603'", "bytearray(b'abc')", "-0.5"]
MAX_TRIES = 40       # argument tuples tried per arity before giving up on it
MAX_ARITY = 3        # positional arguments tried when there is no signature
MAX_DISTINCT = 4     # distinct results or errors kept per thread
MAX_ITEMS = 1000     # items of an iteration kept in an observation
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def norm(value: Any) -> str:
    """A repr that two equal states share: addresses blanked, length capped."""
    try:
        text = repr(value)
    except BaseException as exc:
        return "<repr raised %s>" % type(exc).__name__
    text = _ADDRESS.sub("0x?", text)
    return text if len(text) <= 300 else text[:300] + "...(%d chars)" % len(text)


def compiled(name: str, expr: str) -> Any:
    return compile(expr, "<gilaudit: %s>" % name, "eval")


def error_key(exc: BaseException) -> str:
    """The exception's type as a reader knows it: "ValueError", "brotli.error"."""
    kind = type(exc)
    owner = getattr(kind, "__module__", "builtins")
    return kind.__qualname__ if owner == "builtins" else "%s.%s" % (owner, kind.__qualname__)


def error_traceback(exc: BaseException) -> str:
    """The traceback from the call expression down, without gilaudit's own frames."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.endswith(("gilaudit_drive.py", "gilaudit_child.py"))]
    text = "Traceback (most recent call last):\n" + "".join(traceback.format_list(frames[-6:]))
    return text + "".join(traceback.format_exception_only(type(exc), exc))


# --------------------------------------------------------------------------- the watchdog

class Watchdog(object):
    """Declares a hang when no call anywhere has finished for ``timeout`` seconds.

    faulthandler's timer runs in a C thread that needs no GIL, so it fires even when a stuck
    thread holds the GIL; it dumps every thread's stack to the fault file and exits the process.
    A Python monitor re-arms it whenever some call has finished, and, when it can still run,
    journals which callable each thread is in shortly before the timer fires.
    """

    def __init__(self, timeout: float, fault_file: Any, journal: Any) -> None:
        self.timeout = timeout
        self.base_timeout = timeout
        self.fault_file = fault_file
        self.journal = journal
        self.ticks = [0]        # one slot per thread; each thread writes only its own
        self.current = [""]     # the callable each thread is in
        self._stop = threading.Event()
        self._thread = None  # type: Optional[threading.Thread]

    def start(self, threads: int, timeout: Optional[float] = None) -> None:
        self.timeout = timeout if timeout is not None else self.base_timeout
        self.ticks = [0] * threads
        self.current = [""] * threads
        self._stop = threading.Event()
        faulthandler.dump_traceback_later(self.timeout, exit=True, file=self.fault_file)
        self._thread = threading.Thread(target=self._monitor, name="gilaudit-watchdog")
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        faulthandler.cancel_dump_traceback_later()

    def _monitor(self) -> None:
        last, changed, told = -1, time.monotonic(), False
        while not self._stop.wait(self.timeout / 4.0):
            total = sum(self.ticks)
            now = time.monotonic()
            if total != last:
                last, changed, told = total, now, False
                faulthandler.dump_traceback_later(self.timeout, exit=True,
                                                  file=self.fault_file)
            elif not told and now - changed > self.timeout / 2.0:
                told = True
                self.journal.write({"kind": "stuck", "threads": list(self.current)})


# --------------------------------------------------------------------------- running calls

class Tally(object):
    """What a run of calls produced: counts, distinct results, distinct errors."""

    def __init__(self) -> None:
        self.calls = 0
        self.results = {}  # type: Dict[str, int]
        self.errors = {}  # type: Dict[str, Dict[str, Any]]

    def merge(self, other: "Tally") -> None:
        self.calls += other.calls
        for key, count in other.results.items():
            self.results[key] = self.results.get(key, 0) + count
        for key, info in other.errors.items():
            mine = self.errors.setdefault(key, {"count": 0, "message": info["message"],
                                                "traceback": info["traceback"]})
            mine["count"] += info["count"]


def run_calls(code: Any, env: Dict[str, Any], count: int, slot: int, dog: Watchdog,
              name: str, keep_results: bool, rnd: Optional[random.Random] = None) -> Tally:
    tally = Tally()
    for _ in range(count):
        dog.current[slot] = name
        try:
            result = eval(code, env)
        except BaseException as exc:  # the extension's SystemExit is a result, not ours
            key = error_key(exc)
            info = tally.errors.get(key)
            if info is None and len(tally.errors) < MAX_DISTINCT:
                tally.errors[key] = {"count": 1, "message": str(exc)[:300],
                                     "traceback": error_traceback(exc)[-2000:]}
            elif info is not None:
                info["count"] += 1
        else:
            if keep_results:
                key = norm(result)
                if key in tally.results or len(tally.results) < MAX_DISTINCT:
                    tally.results[key] = tally.results.get(key, 0) + 1
        tally.calls += 1
        dog.ticks[slot] += 1
        dog.current[slot] = ""
        if rnd is not None and rnd.random() < 0.02:
            time.sleep(0)  # a seeded nudge so that trials see different interleavings
    return tally


def hammer(targets: List[Tuple[str, Any, Dict[str, Any]]], threads: int, iterations: int,
           seed: int, dog: Watchdog, keep_results: bool) -> Tally:
    """``threads`` threads released together, each making ``iterations`` calls; thread i
    cycles through ``targets`` starting at i (a single target: every thread calls it)."""
    barrier = threading.Barrier(threads)
    tallies = [Tally() for _ in range(threads)]

    def worker(i: int) -> None:
        rnd = random.Random(seed * 7919 + i)
        try:
            barrier.wait(timeout=max(dog.timeout, 5.0))
        except threading.BrokenBarrierError:
            return
        if len(targets) == 1:
            name, code, env = targets[0]
            tallies[i] = run_calls(code, env, iterations, i, dog, name, keep_results, rnd)
            return
        order = targets[i % len(targets):] + targets[:i % len(targets)]
        for k in range(iterations):
            name, code, env = order[k % len(order)]
            tallies[i].merge(run_calls(code, env, 1, i, dog, name, keep_results, rnd))

    pool = [threading.Thread(target=worker, args=(i,), name="gilaudit-worker-%d" % i)
            for i in range(threads)]
    for t in pool:
        t.daemon = True
        t.start()
    for t in pool:
        t.join()
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    return total


# --------------------------------------------------------------------------- observing state

def observe(obj: Any, observers: List[str], env: Dict[str, Any]) -> Dict[str, str]:
    """What can be seen of an object without changing it: repr, len, its items, and the
    readers found pure while probing (properties, zero-argument methods)."""
    seen = {"repr(obj)": norm(obj)}
    kind = type(obj)
    if hasattr(kind, "__len__"):
        seen["len(obj)"] = _safe(lambda: norm(len(obj)))
    if hasattr(kind, "__iter__"):
        def items() -> str:
            it = iter(obj)
            if it is obj:
                return "<an iterator: not consumed>"
            return norm([norm(x) for x in itertools.islice(it, MAX_ITEMS)])
        seen["list(obj)"] = _safe(items)
    for expr in observers:
        code = compiled(expr, expr)
        seen[expr] = _safe(functools.partial(_read, code, dict(env, obj=obj)))
    return seen


EQUAL = "obj == the serial object"


def compares(a: Any, b: Any) -> bool:
    """The type defines its own equality, and two objects given the same calls are equal."""
    own: Any = type(a).__eq__
    if own is object.__eq__:
        return False
    try:
        return bool(a == b)
    except BaseException:
        return False


def _read(code: Any, env: Dict[str, Any]) -> str:
    return norm(eval(code, env))


def _safe(fn: Callable[[], str]) -> str:
    try:
        return fn()
    except BaseException as exc:
        return "<raised %s>" % type(exc).__name__


# --------------------------------------------------------------------------- probing

def required_arity(obj: Any) -> Optional[List[Tuple[int, List[str]]]]:
    """The argument counts to try, as (positional arguments, keyword-only names required),
    from the signature that ``__text_signature__`` (or a Python/Cython signature) gives; None
    when there is none. ``*args`` adds one and two more positional arguments."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    positional, keywords, varargs = 0, [], False  # type: int, List[str], bool
    for param in sig.parameters.values():
        if param.kind == param.VAR_POSITIONAL:
            varargs = True
        if param.default is not param.empty:
            continue
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            positional += 1
        elif param.kind == param.KEYWORD_ONLY:
            keywords.append(param.name)
    extra = (0, 1, 2) if varargs else (0,)
    return [(positional + n, keywords) for n in extra]


def candidates(arity: int, keywords: List[str], pool: List[str],
               rnd: random.Random) -> List[str]:
    """Argument lists to try, as source text: each sample for every argument first, then
    seeded mixtures."""
    width = arity + len(keywords)
    if width == 0:
        return [""]
    tuples = [[value] * width for value in pool]
    for _ in range(MAX_TRIES):
        tuples.append([rnd.choice(pool) for _ in range(width)])
    out, seen = [], set()
    for values in tuples:
        parts = values[:arity] + ["%s=%s" % (k, v) for k, v in zip(keywords, values[arity:])]
        text = ", ".join(parts)
        if text not in seen:
            seen.add(text)
            out.append(text)
        if len(out) >= MAX_TRIES:
            break
    return out


def probe_call(name: str, prefix: str, target: Any, env: Dict[str, Any], pool: List[str],
               rnd: random.Random, dog: Watchdog) -> Dict[str, Any]:
    """Find arguments for which ``prefix(...)`` returns normally; failing that, the first
    that raises something other than TypeError. Records which signature worked."""
    shape = required_arity(target)
    arities = shape if shape is not None else [(n, []) for n in range(MAX_ARITY + 1)]
    fallback = None  # type: Optional[Dict[str, Any]]
    last_type_error = ""
    for arity, keywords in arities:
        for args in candidates(arity, keywords, pool, rnd):
            expr = "%s(%s)" % (prefix, args)
            code = compiled(name, expr)
            dog.journal.write({"kind": "try", "target": name, "call": expr})
            started = time.perf_counter()
            dog.current[0] = name
            try:
                result = eval(code, env)
            except TypeError as exc:
                last_type_error = str(exc)[:200]
                continue
            except BaseException as exc:
                if fallback is None:
                    fallback = {"call": expr, "outcome": "raises", "raises": error_key(exc),
                                "message": str(exc)[:200],
                                "seconds": time.perf_counter() - started}
                continue
            finally:
                dog.ticks[0] += 1
            return {"call": expr, "outcome": "returns", "raises": None,
                    "result": norm(result), "returns_none": result is None,
                    "seconds": time.perf_counter() - started,
                    "signature": "text signature" if shape is not None else "probed"}
    if fallback is not None:
        fallback["signature"] = "text signature" if shape is not None else "probed"
        return fallback
    return {"call": None, "reason": "no argument list was accepted (last TypeError: %s)"
            % (last_type_error or "none")}


# --------------------------------------------------------------------------- the plan

class Driver(object):
    """Probe every drivable item of one module, then hammer each alone and all together."""

    def __init__(self, journal: Any, module: Any, plan: Dict[str, Any], dog: Watchdog) -> None:
        self.journal = journal
        self.mod = module
        self.threads = int(plan.get("threads", 8))
        self.iterations = int(plan.get("iterations", 100))
        self.trials = int(plan.get("trials", 5))
        self.seed = int(plan.get("seed", 0))
        self.deadline = time.monotonic() + float(plan.get("budget", 60.0))
        self.exclude = set(plan.get("exclude", []))
        self.done = set(plan.get("done", []))
        self.probes = dict(plan.get("probes", {}))  # type: Dict[str, Dict[str, Any]]
        self.dog = dog
        self.rnd = random.Random(self.seed)
        # A serial call with sample arguments that does not return soon is waiting for
        # something (input, a peer), not racing: give up on it sooner than on a hammer.
        self.probe_timeout = float(plan.get("probe_timeout", min(dog.base_timeout, 3.0)))

    # -- probing ---------------------------------------------------------------------------

    def _probe(self, name: str, work: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
        known = self.probes.get(name)
        if known is not None:
            return known
        self.journal.write({"kind": "begin", "target": name, "phase": "probe",
                            "timeout": self.probe_timeout})
        self.dog.start(1, self.probe_timeout)
        try:
            found = work()
        finally:
            self.dog.stop()
        found["target"] = name
        self.journal.write(dict(found, kind="probe"))
        self.journal.write({"kind": "end", "target": name, "phase": "probe"})
        self.probes[name] = found
        return found

    def setup_of(self, cls: str) -> Optional[str]:
        found = self.probes.get(cls)
        if found and found.get("outcome") == "returns":
            return str(found["call"])
        return None

    def fresh(self, cls: str) -> Dict[str, Any]:
        setup = self.setup_of(cls)
        assert setup is not None
        return {"mod": self.mod, "obj": eval(compiled(cls, setup), {"mod": self.mod})}

    def probe_all(self, items: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        drivable = [i for i in items if i.get("skip") is None and i["name"] not in self.exclude]
        pool = list(COMMON)
        for item in drivable:
            if item["kind"] == "class":
                name = item["name"]
                self._probe(name, functools.partial(
                    probe_call, name, "mod." + name, getattr(self.mod, name), {"mod": self.mod},
                    list(pool), self.rnd, self.dog))
                setup = self.setup_of(name)
                if setup is not None:
                    pool.append(setup)
        pool.extend(EDGE)
        targets = []
        for item in drivable:
            name, kind = item["name"], item["kind"]
            if kind == "class":
                continue
            if kind == "function":
                found = self._probe(name, functools.partial(
                    probe_call, name, "mod." + name, getattr(self.mod, name), {"mod": self.mod},
                    pool, self.rnd, self.dog))
            else:
                cls, member = name.split(".", 1)
                if self.setup_of(cls) is None:
                    why = self.probes.get(cls, {}).get("reason") or "its class %s could not " \
                        "be constructed" % cls
                    self.journal.write({"kind": "not-driven", "target": name,
                                        "reason": "no instance to call it on: %s" % why})
                    continue
                found = self._probe(name, functools.partial(
                    self._probe_member, name, cls, member, kind, pool))
            if found.get("call"):
                targets.append(dict(found, kind=kind, name=name))
            else:
                self.journal.write({"kind": "not-driven", "target": name,
                                    "reason": found.get("reason", "probing failed")})
        return targets

    def _probe_member(self, name: str, cls: str, member: str, kind: str,
                      pool: List[str]) -> Dict[str, Any]:
        env = self.fresh(cls)
        if kind == "property":
            expr = "obj.%s" % member
            started = time.perf_counter()
            try:
                value = eval(compiled(name, expr), env)
            except BaseException as exc:
                return {"call": expr, "outcome": "raises", "raises": error_key(exc),
                        "message": str(exc)[:200], "seconds": time.perf_counter() - started,
                        "signature": "attribute"}
            return {"call": expr, "outcome": "returns", "raises": None, "result": norm(value),
                    "returns_none": value is None, "signature": "attribute",
                    "seconds": time.perf_counter() - started}
        return probe_call(name, "obj." + member, getattr(env["obj"], member), env, pool,
                          self.rnd, self.dog)

    # -- observers -------------------------------------------------------------------------

    def readers(self, targets: List[Dict[str, Any]], owner: Optional[str]) -> List[str]:
        """Expressions that read state without changing it: properties and zero-argument
        calls that return a value, kept only if reading twice in a row agrees."""
        exprs = []
        for t in targets:
            in_owner = t["name"].split(".", 1)[0] == owner if owner else t["kind"] == "function"
            zero_arg = t["call"].endswith("()") or t["kind"] == "property"
            if (in_owner and zero_arg and t.get("outcome") == "returns"
                    and not t.get("returns_none") and t["kind"] != "special"):
                exprs.append(t["call"])
        if not exprs:
            return []
        env = self.fresh(owner) if owner else {"mod": self.mod}
        first = [_safe(functools.partial(_read, compiled(e, e), env)) for e in exprs]
        second = [_safe(functools.partial(_read, compiled(e, e), env)) for e in exprs]
        return [e for e, a, b in zip(exprs, first, second) if a == b]

    # -- hammering -------------------------------------------------------------------------

    def _begin(self, target: str, phase: str, trial: int, seed: int, threads: int,
               iterations: int, call: str, setup: Optional[str],
               targets: Optional[List[str]] = None) -> None:
        self.journal.write({"kind": "begin", "target": target, "phase": phase, "trial": trial,
                            "seed": seed, "threads": threads, "iterations": iterations,
                            "call": call, "setup": setup, "targets": targets or [target]})

    def _iterations_for(self, target: Dict[str, Any], remaining: int) -> int:
        share = max(0.5, (self.deadline - time.monotonic()) / max(1, remaining))
        per_call = max(float(target.get("seconds") or 0.0), 1e-6)
        rounds = self.threads * (2 + self.trials)
        fits = int(share / (per_call * rounds * 3))  # threads share 2 cores: stay well inside
        return max(5, min(self.iterations, fits))

    def drive_target(self, target: Dict[str, Any], remaining: int,
                     observers: Dict[Optional[str], List[str]]) -> None:
        name, call = target["name"], target["call"]
        owner = name.split(".", 1)[0] if target["kind"] != "function" else None
        setup = self.setup_of(owner) if owner else None
        n, m = self.threads, self._iterations_for(target, remaining)
        code = compiled(name, call)
        readers = [r for r in observers.get(owner, []) if r != call]

        def env() -> Dict[str, Any]:
            return self.fresh(owner) if owner else {"mod": self.mod}

        # Serial baseline, twice on fresh objects: what does not agree between the two is
        # not a property of the calls and is left out of the comparison.
        self._begin(name, "serial", 0, self.seed, 1, n * m, call, setup)
        self.dog.start(1)
        try:
            env1, env2 = env(), env()
            # On a thread like the concurrent calls, not the main thread: code that behaves
            # differently off the main thread must not look like a race.
            serial = hammer([(name, code, env1)], 1, n * m, self.seed, self.dog, True)
            again = hammer([(name, code, env2)], 1, n * m, self.seed, self.dog, True)
            seen1 = observe(env1["obj"], readers, env1) if owner else {}
            seen2 = observe(env2["obj"], readers, env2) if owner else {}
        finally:
            self.dog.stop()
        self.journal.write({"kind": "end", "target": name, "phase": "serial"})
        stable = sorted(k for k in seen1 if seen1[k] == seen2.get(k))
        # Equality too, where the type defines it and two serial objects agree they are equal.
        equality = bool(owner) and compares(env1["obj"], env2["obj"])
        if equality:
            stable.append(EQUAL)
        deterministic = (len(serial.results) == 1 and not serial.errors
                         and serial.results == again.results)
        findings = []  # type: List[Dict[str, Any]]
        trials_run = 0
        conc = Tally()
        for trial in range(self.trials):
            if findings or time.monotonic() > self.deadline:
                break
            seed = self.seed + trial
            self._begin(name, "concurrent", trial, seed, n, m, call, setup)
            shared = env()
            self.dog.start(n)
            try:
                conc = hammer([(name, code, shared)], n, m, seed, self.dog, True)
            finally:
                self.dog.stop()
            trials_run += 1
            self.journal.write({"kind": "end", "target": name, "phase": "concurrent"})
            new_errors = sorted(set(conc.errors) - set(serial.errors) - set(again.errors))
            for key in new_errors:
                info = conc.errors[key]
                findings.append({
                    "category": "concurrency-exception", "trial": trial, "seed": seed,
                    "threads": n, "iterations": m, "error": key, "message": info["message"],
                    "count": info["count"], "traceback": info["traceback"],
                    "serial_errors": sorted(serial.errors)})
            if deterministic:
                expected = next(iter(serial.results))
                wrong = sorted(k for k in conc.results if k != expected)
                if wrong:
                    findings.append({
                        "category": "wrong-result", "trial": trial, "seed": seed, "threads": n,
                        "iterations": m, "what": "result", "expected": expected,
                        "got": wrong[:MAX_DISTINCT],
                        "count": sum(conc.results[k] for k in wrong)})
            if owner and not new_errors:  # calls that failed leave less done: not a race
                seen = observe(shared["obj"], readers, shared)
                if equality:
                    seen1[EQUAL] = "True"
                    seen[EQUAL] = str(compares(shared["obj"], env1["obj"]))
                diffs = [{"observed": k, "serial": seen1[k], "concurrent": seen.get(k)}
                         for k in stable if seen.get(k) != seen1[k]]
                if diffs:
                    findings.append({
                        "category": "wrong-result", "trial": trial, "seed": seed, "threads": n,
                        "iterations": m, "what": "state", "differences": diffs,
                        "readers": readers})
        self.journal.write({
            "kind": "result", "target": name, "call": call, "setup": setup,
            "outcome": target.get("outcome"), "raises": target.get("raises"),
            "threads": n, "iterations": m, "trials": trials_run,
            "calls": serial.calls + again.calls + trials_run * n * m,
            "serial_errors": sorted(serial.errors), "deterministic": deterministic,
            "compared": stable, "findings": findings,
            "concurrent_errors": sorted(conc.errors)})

    def drive_together(self, targets: List[Dict[str, Any]]) -> None:
        """Every target at once, methods on one shared object per class: for crashes and
        hangs that need two different entry points (a lock-order inversion)."""
        envs = {}  # type: Dict[Optional[str], Dict[str, Any]]
        runs = []
        for t in targets:
            owner = t["name"].split(".", 1)[0] if t["kind"] != "function" else None
            if owner not in envs:
                envs[owner] = self.fresh(owner) if owner else {"mod": self.mod}
            runs.append((t["name"], compiled(t["name"], t["call"]), envs[owner]))
        if len(runs) < 2:
            return
        n = max(self.threads, min(len(runs), 32))
        m = max(len(runs) * 4, self.iterations)
        trials = 0
        for trial in range(self.trials):
            if time.monotonic() > self.deadline:
                break
            self._begin("*", "together", trial, self.seed + trial, n, m,
                        "; ".join(t["call"] for t in targets), None,
                        [t["name"] for t in targets])
            self.dog.start(n)
            try:
                hammer(runs, n, m, self.seed + trial, self.dog, False)
            finally:
                self.dog.stop()
            trials += 1
            self.journal.write({"kind": "end", "target": "*", "phase": "together"})
        self.journal.write({"kind": "together", "targets": [t["name"] for t in targets],
                            "threads": n, "iterations": m, "trials": trials})

    def run(self, items: List[Dict[str, Any]]) -> None:
        targets = self.probe_all(items)
        owners = sorted({t["name"].split(".", 1)[0] for t in targets if t["kind"] != "function"})
        observers = {None: self.readers(targets, None)}  # type: Dict[Optional[str], List[str]]
        for owner in owners:
            observers[owner] = self.readers(targets, owner)
        self.journal.write({"kind": "observers",
                            "observers": {k or "": v for k, v in observers.items()}})
        todo = [t for t in targets if t["name"] not in self.done]
        for index, target in enumerate(todo):
            if time.monotonic() > self.deadline:
                for rest in todo[index:]:
                    self.journal.write({"kind": "not-driven", "target": rest["name"],
                                        "reason": "the time budget ran out first"})
                break
            self.drive_target(target, len(todo) - index, observers)
        if "*" not in self.done:
            self.drive_together([t for t in targets if t["name"] not in self.exclude])


def state_sequence(journal: Any, module: Any, plan: Dict[str, Any], dog: Watchdog) -> None:
    """Module-level state: run each mutating function N*M times, serially or from N threads,
    and record what the module's readers show after each. Calls repeated with the same
    arguments leave the same state in any interleaving, so a fresh process running the same
    sequence concurrently must see what a serial one saw."""
    env = {"mod": module}
    readers = list(plan.get("readers", []))
    n, m = int(plan.get("threads", 8)), int(plan.get("iterations", 100))
    concurrent = plan.get("mode") == "concurrent"
    seed = int(plan.get("seed", 0))
    if concurrent:
        sys.setswitchinterval(1e-6)

    def snapshot() -> Dict[str, str]:
        return {e: _safe(functools.partial(_read, compiled(e, e), env)) for e in readers}

    journal.write({"kind": "state", "after": None, "observed": snapshot()})
    for step in plan.get("mutators", []):
        name, call = step["name"], step["call"]
        code = compiled(name, call)
        journal.write({"kind": "begin", "target": name, "phase": "state-" + plan["mode"],
                       "trial": 0, "seed": seed, "threads": n if concurrent else 1,
                       "iterations": m if concurrent else n * m, "call": call, "setup": None})
        dog.start(n if concurrent else 1)
        try:
            if concurrent:
                tally = hammer([(name, code, env)], n, m, seed, dog, False)
            else:
                tally = run_calls(code, env, n * m, 0, dog, name, False)
        finally:
            dog.stop()
        journal.write({"kind": "end", "target": name, "phase": "state-" + plan["mode"]})
        journal.write({"kind": "state", "after": name, "observed": snapshot(),
                       "errors": sorted(tally.errors)})
