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
from typing import Any, Callable, Dict, List, Optional, Set, Tuple  # noqa: F401 - Set: type comments

# Probed first: ordinary values a function is most likely to accept and act on (an increment
# of 0 would hide a lost update). Then edge values. Instances of the module's own classes are
# added between the two once their constructors are known.
COMMON = ["1", "7", "'abc'", "b'abc'", "1.5", "[1, 2, 3]", "(1, 2)", "{'a': 1}", "'[1, 2]'"]
EDGE = ["0", "-1", "''", "b''", "None", "True", "[]", "{}", "()", "2 ** 31", "2 ** 70",
        "'h\\xe9llo \\u2603'", "bytearray(b'abc')", "-0.5"]
MAX_TRIES = 40       # argument tuples tried per arity before giving up on it
MAX_VARIANTS = 4     # argument lists that work, kept per callable, for threads to differ
VARIANT_TRIES = 30   # further argument lists tried, after the first that works, to find them
VARIANT_SECONDS = 1.0  # and no longer than this
SEQUENCE_STEPS = 60  # calls per thread in a stateful sequence on one shared object
ARGUMENTS = " (arguments)"  # the journal's name for a callable driven with varied arguments
MAX_ARITY = 3        # positional arguments tried when there is no signature
MAX_DISTINCT = 4     # distinct results or errors kept per thread
MAX_ITEMS = 1000     # items of an iteration kept in an observation
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
# A parameter whose name says it is a size, a count or a width is given small values only:
# `format_field(x, 2 ** 31)` pads to 2 GB, which is slow, not racy.
_SIZE_NAME = re.compile(r"(?i)(size|width|len|count|num|times|repeat|capac|depth|level|"
                        r"precision|pad|fill|rows|cols|columns|bytes|limit|max|amount|"
                        r"indent|^n$|^k$|^m$|^nb)")
_HUGE = {"2 ** 31": "3", "2 ** 70": "5"}


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
    """One callable ``count`` times: a program of one step (see ``run_steps``)."""
    out = run_steps([(name, code)], [0] * count, env, slot, dog, rnd, keep_results)
    tally = Tally()
    tally.calls = out.calls
    tally.results = out.results.get(0, {})
    tally.errors = {error: info for (_step, error), info in out.errors.items()}
    return tally


def run_workers(worker: Callable[[int], None], threads: int) -> None:
    """``worker(i)`` on threads 0..threads-1, named so that a dump says whose they are."""
    pool = [threading.Thread(target=worker, args=(i,), name="gilaudit-worker-%d" % i)
            for i in range(threads)]
    for t in pool:
        t.daemon = True
        t.start()
    for t in pool:
        t.join()


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

    run_workers(worker, threads)
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

def required_arity(obj: Any) -> Optional[List[Tuple[int, List[str], List[str]]]]:
    """The argument counts to try, as (positional arguments, keyword-only names required,
    the positional parameters' names), from the signature that ``__text_signature__`` (or a
    Python/Cython signature) gives; None when there is none. ``*args`` adds one and two more
    positional arguments."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    positional, keywords, names, varargs = 0, [], [], False  # type: int, List[str], List[str], bool
    for param in sig.parameters.values():
        if param.kind == param.VAR_POSITIONAL:
            varargs = True
        if param.default is not param.empty:
            continue
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            positional += 1
            names.append(param.name)
        elif param.kind == param.KEYWORD_ONLY:
            keywords.append(param.name)
    extra = (0, 1, 2) if varargs else (0,)
    return [(positional + n, keywords, names) for n in extra]


def candidates(arity: int, keywords: List[str], pool: List[str],
               rnd: random.Random, names: Optional[List[str]] = None) -> List[str]:
    """Argument lists to try, as source text: each sample for every argument first, then
    seeded mixtures. A parameter named like a size gets no huge numbers."""
    width = arity + len(keywords)
    if width == 0:
        return [""]
    named = list(names or [])[:arity] + list(keywords)
    sized = [i for i, n in enumerate(named) if _SIZE_NAME.search(n)]
    tuples = [[value] * width for value in pool]
    # Then every mix of the first few samples (a text and a count), then seeded mixtures.
    firsts = pool[:5] if width == 2 else pool[:3] if width == 3 else []
    tuples += [list(mix) for mix in itertools.product(firsts, repeat=width)]
    for _ in range(MAX_TRIES):
        tuples.append([rnd.choice(pool) for _ in range(width)])
    out, seen = [], set()
    for values in tuples:
        for i in sized:
            values[i] = _HUGE.get(values[i], values[i])
        parts = values[:arity] + ["%s=%s" % (k, v) for k, v in zip(keywords, values[arity:])]
        text = ", ".join(parts)
        if text not in seen:
            seen.add(text)
            out.append(text)
        if len(out) >= MAX_TRIES + len(firsts) ** max(width, 1):
            break
    return out


def probe_call(name: str, prefix: str, target: Any, env: Dict[str, Any], pool: List[str],
               rnd: random.Random, dog: Watchdog) -> Dict[str, Any]:
    """Find arguments for which ``prefix(...)`` returns normally; failing that, the first
    that raises something other than TypeError. Records which signature worked."""
    shape = required_arity(target)
    arities = shape if shape is not None else [(n, [], []) for n in range(MAX_ARITY + 1)]
    fallback = None  # type: Optional[Dict[str, Any]]
    found = None  # type: Optional[Dict[str, Any]]
    last_type_error = ""
    tries, since = 0, 0.0
    for arity, keywords, names in arities:
        for args in candidates(arity, keywords, pool, rnd, names):
            if found is not None:
                # More argument lists that work, so that threads can be given different
                # ones: a lock order the argument chooses, values that collide. Ordinary
                # values only: a huge one makes a slow call, not a race.
                tries += 1
                if (len(found["variants"]) >= MAX_VARIANTS or tries > VARIANT_TRIES
                        or time.perf_counter() - since > VARIANT_SECONDS):
                    return found
                if any(huge in args for huge in _HUGE):
                    continue
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
                if fallback is None and found is None:
                    fallback = {"call": expr, "outcome": "raises", "raises": error_key(exc),
                                "message": str(exc)[:200],
                                "seconds": time.perf_counter() - started}
                continue
            finally:
                dog.ticks[0] += 1
            if found is not None:
                found["variants"].append(expr)
                continue
            found = {"call": expr, "outcome": "returns", "raises": None,
                     "result": norm(result), "returns_none": result is None,
                     "seconds": time.perf_counter() - started, "variants": [expr],
                     "signature": "text signature" if shape is not None else "probed"}
            since = time.perf_counter()
        if found is not None:
            return found  # other arities are other signatures, not other values
    if found is not None:
        return found
    if fallback is not None:
        fallback["signature"] = "text signature" if shape is not None else "probed"
        return fallback
    return {"call": None, "reason": "no argument list was accepted (last TypeError: %s)"
            % (last_type_error or "none")}


# --------------------------------------------------------------------------- programs

# A program is what one thread does: a list of steps, each an index into a table of calls
# ``(name, expression)``. Threads with different programs are how arguments come to differ
# between threads (the same method, other values) and how stateful sequences run (several
# methods of one shared object, mixed). Programs travel run-length encoded: [[step, n], ...].

def encode(program: List[int]) -> List[List[int]]:
    out = []  # type: List[List[int]]
    for step in program:
        if out and out[-1][0] == step:
            out[-1][1] += 1
        else:
            out.append([step, 1])
    return out



class Outcomes(object):
    """What the steps of some programs did: results and errors per step."""

    def __init__(self) -> None:
        self.results = {}  # type: Dict[int, Dict[str, int]]
        self.errors = {}  # type: Dict[Tuple[int, str], Dict[str, Any]]
        self.calls = 0

    def merge(self, other: "Outcomes") -> None:
        self.calls += other.calls
        for step, seen in other.results.items():
            mine = self.results.setdefault(step, {})
            for key, count in seen.items():
                if key in mine or len(mine) < MAX_DISTINCT:
                    mine[key] = mine.get(key, 0) + count
        for where, info in other.errors.items():
            got = self.errors.setdefault(where, {"count": 0, "message": info["message"],
                                                 "traceback": info["traceback"]})
            got["count"] += info["count"]


def run_steps(steps: List[Tuple[str, Any]], program: List[int], env: Dict[str, Any],
              slot: int, dog: Watchdog, rnd: Optional[random.Random],
              keep_results: bool = True) -> Outcomes:
    """Every call a thread makes goes through here: each step of ``program`` evaluated once,
    its result (when kept) and its error counted per step, at most MAX_DISTINCT of each."""
    out = Outcomes()
    distinct_errors = {}  # type: Dict[int, int]
    for step in program:
        name, code = steps[step]
        dog.current[slot] = name
        try:
            result = eval(code, env)
        except BaseException as exc:  # the extension's SystemExit is a result, not ours
            where = (step, error_key(exc))
            info = out.errors.get(where)
            if info is None and distinct_errors.get(step, 0) < MAX_DISTINCT:
                distinct_errors[step] = distinct_errors.get(step, 0) + 1
                out.errors[where] = {"count": 1, "message": str(exc)[:300],
                                     "traceback": error_traceback(exc)[-2000:]}
            elif info is not None:
                info["count"] += 1
        else:
            if keep_results:
                seen = out.results.setdefault(step, {})
                key = norm(result)
                if key in seen or len(seen) < MAX_DISTINCT:
                    seen[key] = seen.get(key, 0) + 1
        out.calls += 1
        dog.ticks[slot] += 1
        dog.current[slot] = ""
        if rnd is not None and rnd.random() < 0.02:
            time.sleep(0)  # a seeded nudge so that trials see different interleavings
    return out


def run_programs(steps: List[Tuple[str, Any]], programs: List[List[int]],
                 env: Dict[str, Any], seed: int, dog: Watchdog) -> Outcomes:
    """One thread per program, released together."""
    threads = len(programs)
    barrier = threading.Barrier(threads)
    outs = [Outcomes() for _ in range(threads)]

    def worker(i: int) -> None:
        rnd = random.Random(seed * 7919 + i)
        try:
            barrier.wait(timeout=max(dog.timeout, 5.0))
        except threading.BrokenBarrierError:
            return
        outs[i] = run_steps(steps, programs[i], env, i, dog, rnd)

    run_workers(worker, threads)
    total = Outcomes()
    for o in outs:
        total.merge(o)
    return total


def run_in_turns(steps: List[Tuple[str, Any]], programs: List[List[int]],
                 env: Dict[str, Any], dog: Watchdog) -> Outcomes:
    """Every program on a thread of its own, as concurrently, but one step at a time in turns:
    a serial run in which what a call does to its own thread (a name, thread-local state, its
    identity) is what it does concurrently."""
    n = len(programs)
    turn = [0]
    cond = threading.Condition()
    outs = [Outcomes() for _ in range(n)]
    left = [len(p) for p in programs]

    def next_turn(i: int) -> int:
        for k in range(1, n + 1):
            j = (i + k) % n
            if left[j]:
                return j
        return -1

    def worker(i: int) -> None:
        for step in programs[i]:
            with cond:
                while turn[0] != i:
                    cond.wait()
            outs[i].merge(run_steps(steps, [step], env, 0, dog, None))
            with cond:
                left[i] -= 1
                turn[0] = next_turn(i)
                cond.notify_all()

    first = next((i for i in range(n) if left[i]), -1)
    turn[0] = first
    run_workers(worker, n)
    total = Outcomes()
    for o in outs:
        total.merge(o)
    return total


def serial_orders(programs: List[List[int]], seed: int) -> List[Tuple[str, List[int]]]:
    """Ways to run every thread's program on one thread, each keeping every program's own
    order: one after the other, the other way round, in turns, and a seeded shuffle. What
    they all agree on does not depend on the interleaving; the rest is left out."""
    n = len(programs)
    forward = [s for p in programs for s in p]
    backward = [s for p in reversed(programs) for s in p]
    turns = [programs[i][k] for k in range(max(len(p) for p in programs))
             for i in range(n) if k < len(programs[i])]
    rnd = random.Random(seed)
    cursors = [0] * n
    shuffled = []  # type: List[int]
    live = [i for i in range(n) if programs[i]]
    while live:
        i = rnd.choice(live)
        shuffled.append(programs[i][cursors[i]])
        cursors[i] += 1
        if cursors[i] == len(programs[i]):
            live.remove(i)
    return [("one program after another", forward), ("in reverse order", backward),
            ("in turns on one thread", turns), ("shuffled (seed %d)" % seed, shuffled)]


def on_a_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on a thread of its own, as the concurrent calls are: code whose effect is
    per thread (a thread's name, thread-local state) must not look like a race."""
    box = []  # type: List[Any]
    t = threading.Thread(target=lambda: box.append(fn()), name="gilaudit-worker-0")
    t.daemon = True
    t.start()
    t.join()
    return box[0] if box else None


def order_free(obj: Any) -> Dict[str, str]:
    """The multiset of the object's items, which no order of additions changes."""
    if not hasattr(type(obj), "__iter__"):
        return {}

    def items() -> str:
        it = iter(obj)
        if it is obj:
            return "<an iterator: not consumed>"
        return norm(sorted(norm(x) for x in itertools.islice(it, MAX_ITEMS)))
    return {"sorted(obj)": _safe(items)}


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
        # classes whose methods already had findings (in an earlier child)
        self.troubled = set(plan.get("troubled", []))  # type: Set[str]
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
        targets = []  # type: List[Dict[str, Any]]
        # Module functions first: the values the module's own readers return are samples
        # for its methods (a key made by one function, passed to another).
        functions = [i for i in drivable if i["kind"] == "function"]
        members = [i for i in drivable if i["kind"] not in ("class", "function")]
        self._probe_items(functions, pool, targets)
        pool.extend(e for e in self.readers(list(targets), None)[:3] if e not in pool)
        self._probe_items(members, pool, targets)
        return targets

    def _probe_items(self, items: List[Dict[str, Any]], pool: List[str],
                     targets: List[Dict[str, Any]]) -> None:
        for item in items:
            name, kind = item["name"], item["kind"]
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
                     observers: Dict[Optional[str], List[str]]) -> List[Dict[str, Any]]:
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
            # Once more on two other threads: a result that depends on the calling thread
            # (its identity, thread-local state) is no oracle for calls from many threads.
            elsewhere = Tally()
            env3 = env()
            for _ in range(2):
                elsewhere.merge(on_a_thread(functools.partial(
                    run_calls, code, env3, 1, 0, self.dog, name, True)))
        finally:
            self.dog.stop()
        self.journal.write({"kind": "end", "target": name, "phase": "serial"})
        stable = sorted(k for k in seen1 if seen1[k] == seen2.get(k))
        # Equality too, where the type defines it and two serial objects agree they are equal.
        equality = bool(owner) and compares(env1["obj"], env2["obj"])
        if equality:
            stable.append(EQUAL)
        deterministic = (len(serial.results) == 1 and not serial.errors
                         and serial.results == again.results
                         and set(elsewhere.results) == set(serial.results))
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
            "concurrent_errors": sorted(conc.errors), "variants": target.get("variants", [])})
        return findings

    # -- programs: arguments that differ between threads, stateful sequences ---------------

    def _steps_for(self, per_call: float, remaining: int, rounds: int) -> int:
        share = max(0.5, (self.deadline - time.monotonic()) / max(1, remaining))
        fits = int(share / (max(per_call, 1e-6) * rounds * 3))
        return max(5, min(self.iterations, fits))

    def _begin_programs(self, target: str, phase: str, trial: int, seed: int,
                        steps: List[Dict[str, str]], encoded: List[List[List[int]]],
                        setup: Optional[str], threads: int) -> None:
        self.journal.write({"kind": "begin", "target": target, "phase": phase, "trial": trial,
                            "seed": seed, "threads": threads, "iterations": max(
                                sum(n for _s, n in p) for p in encoded),
                            "call": "; ".join(st["call"] for st in steps), "setup": setup,
                            "targets": sorted({st["name"] for st in steps}), "steps": steps,
                            "programs": encoded})

    def drive_programs(self, target: str, what: str, steps: List[Dict[str, str]],
                       make: Callable[[int], List[List[int]]], owner: Optional[str],
                       readers: List[str]) -> List[Dict[str, Any]]:
        """Each thread runs its own program against one shared object (or the module); the
        same programs run serially, in several orders, give the oracle: a result, a state
        or an error that no serial order shows."""
        setup = self.setup_of(owner) if owner else None
        table = [(st["name"], compiled(st["name"], st["call"])) for st in steps]
        findings = []  # type: List[Dict[str, Any]]
        calls = trials_run = threads = longest = 0
        for trial in range(self.trials):
            if findings or time.monotonic() > self.deadline:
                break
            seed = self.seed + trial
            programs = make(seed)
            encoded = [encode(p) for p in programs]
            threads = len(programs)
            longest = max([longest] + [len(p) for p in programs])
            self._begin_programs(target, "programs-serial", trial, seed, steps, encoded, setup,
                                 threads)
            self.dog.start(threads)
            runs = []  # type: List[Tuple[str, Outcomes, Dict[str, str]]]
            try:
                for label, order in serial_orders(programs, seed):
                    env = self.fresh(owner) if owner else {"mod": self.mod}
                    out = on_a_thread(functools.partial(run_steps, table, order, env, 0,
                                                        self.dog, None))
                    runs.append((label, out, self._seen(owner, env, readers)))
                env = self.fresh(owner) if owner else {"mod": self.mod}
                out = run_in_turns(table, programs, env, self.dog)
                runs.append(("in turns on their own threads", out,
                             self._seen(owner, env, readers)))
                # And each call alone on a fresh object: the errors a method raises in some
                # state (pop from an empty bag) are its own, not the interleaving's.
                alone = Outcomes()
                for step in sorted({s_ for p_ in programs for s_ in p_}):
                    env = self.fresh(owner) if owner else {"mod": self.mod}
                    alone.merge(run_steps(table, [step], env, 0, self.dog, None))
            finally:
                self.dog.stop()
            self.journal.write({"kind": "end", "target": target, "phase": "programs-serial"})
            self._begin_programs(target, "programs", trial, seed, steps, encoded, setup,
                                 threads)
            shared = self.fresh(owner) if owner else {"mod": self.mod}
            self.dog.start(threads)
            try:
                conc = run_programs(table, programs, shared, seed, self.dog)
            finally:
                self.dog.stop()
            self.journal.write({"kind": "end", "target": target, "phase": "programs"})
            trials_run += 1
            calls += conc.calls + sum(o.calls for _l, o, _s in runs)
            base = {"trial": trial, "seed": seed, "threads": threads, "programs": encoded,
                    "orders": [label for label, _o, _s in runs]}
            findings += self._judge(conc, runs, alone, base, steps)
            # The state is compared only when every call took effect: a call that failed (a
            # pop from an empty bag) in one run and not in another leaves a different state
            # in a correct object too.
            failed = bool(conc.errors) or any(out.errors for _l, out, _s in runs)
            if owner and not findings and not failed:  # one cause, one finding
                seen = self._seen(owner, shared, readers)
                first = runs[0][2]
                agreed = {k: v for k, v in first.items()
                          if all(r[2].get(k) == v for r in runs[1:])}
                diffs = [{"observed": k, "serial": v, "concurrent": seen.get(k)}
                         for k, v in sorted(agreed.items()) if seen.get(k) != v]
                if diffs:
                    findings.append(dict(base, category="wrong-result", what="state",
                                         differences=diffs, readers=readers))
        self.journal.write({"kind": "programs", "target": target, "what": what,
                            "steps": steps, "setup": setup, "threads": threads,
                            "iterations": longest, "trials": trials_run, "calls": calls,
                            "findings": findings})
        return findings

    def _seen(self, owner: Optional[str], env: Dict[str, Any],
              readers: List[str]) -> Dict[str, str]:
        if not owner:
            return {}
        seen = observe(env["obj"], readers, env)
        seen.update(order_free(env["obj"]))
        return seen

    def _judge(self, conc: Outcomes, runs: List[Tuple[str, Outcomes, Dict[str, str]]],
               alone: Outcomes, base: Dict[str, Any],
               steps: List[Dict[str, str]]) -> List[Dict[str, Any]]:
        found = []  # type: List[Dict[str, Any]]
        # An error counts as seen serially for the callable, whatever its arguments.
        serial_errors = set()  # type: Set[Tuple[str, str]]
        for out in [alone] + [out for _label, out, _seen in runs]:
            serial_errors.update((steps[s_]["name"], e) for s_, e in out.errors)
        for key in sorted(conc.errors):
            step, error = key
            name = steps[step]["name"]
            if (name, error) in serial_errors:
                continue
            info = conc.errors[key]
            found.append(dict(base, category="concurrency-exception", step=step,
                              name=name, call=steps[step]["call"], error=error,
                              message=info["message"], count=info["count"],
                              traceback=info["traceback"],
                              serial_errors=sorted(e for n_, e in serial_errors if n_ == name)))
        for step, got in sorted(conc.results.items()):
            values = set()  # type: Set[str]
            clean = True
            for _label, out, _seen in runs:
                values.update(out.results.get(step, {}))
                clean = clean and not any(s == step for s, _e in out.errors)
            if not clean or len(values) != 1:
                continue  # the value depends on the order, or on the thread: no oracle
            expected = next(iter(values))
            wrong = sorted(k for k in got if k != expected)
            if wrong:
                found.append(dict(base, category="wrong-result", what="result", step=step,
                                  name=steps[step]["name"], call=steps[step]["call"],
                                  expected=expected, got=wrong[:MAX_DISTINCT],
                                  count=sum(got[k] for k in wrong)))
        return found

    def drive_variants(self, target: Dict[str, Any], remaining: int,
                       observers: Dict[Optional[str], List[str]]) -> List[Dict[str, Any]]:
        """The same callable with a different working argument list in each thread."""
        variants = [str(v) for v in target.get("variants") or []][:MAX_VARIANTS]
        name = target["name"]
        owner = name.split(".", 1)[0] if target["kind"] != "function" else None
        steps = [{"name": name, "call": v} for v in variants]
        m = self._steps_for(float(target.get("seconds") or 0.0), remaining,
                            self.threads * 6 * self.trials)
        k, n = len(steps), self.threads

        def make(_seed: int) -> List[List[int]]:
            return [[i % k] * m for i in range(n)]
        readers = [r for r in observers.get(owner, []) if r not in variants]
        return self.drive_programs(name + ARGUMENTS, "arguments", steps, make, owner, readers)

    def drive_sequences(self, owner: str, targets: List[Dict[str, Any]], remaining: int,
                        observers: Dict[Optional[str], List[str]]) -> None:
        """Several methods of one shared object mixed, a seeded sequence per thread, like a
        stateful property-based test."""
        steps = []  # type: List[Dict[str, str]]
        per_call = 0.0
        for t in targets:
            for v in (t.get("variants") or [t["call"]])[:2]:
                steps.append({"name": t["name"], "call": str(v)})
            per_call = max(per_call, float(t.get("seconds") or 0.0))
        if len({st["name"] for st in steps}) < 2:
            return
        m = min(SEQUENCE_STEPS, self._steps_for(per_call, remaining,
                                                self.threads * 6 * self.trials))
        n = self.threads

        def make(seed: int) -> List[List[int]]:
            rnds = [random.Random(seed * 7919 + 104729 * i) for i in range(n)]
            return [[r.randrange(len(steps)) for _ in range(m)] for r in rnds]
        readers = observers.get(owner, [])
        self.drive_programs(owner + ".*", "sequence", steps, make, owner, readers)

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
        troubled = set(self.troubled)  # type: Set[str]
        todo = [t for t in targets if t["name"] not in self.done
                or (t["name"] + ARGUMENTS not in self.done
                    and len(t.get("variants") or []) > 1)]
        for index, target in enumerate(todo):
            if time.monotonic() > self.deadline:
                for rest in todo[index:]:
                    if rest["name"] not in self.done:
                        self.journal.write({"kind": "not-driven", "target": rest["name"],
                                            "reason": "the time budget ran out first"})
                break
            found = []  # type: List[Dict[str, Any]]
            if target["name"] not in self.done:
                found = self.drive_target(target, len(todo) - index, observers)
            if (not found and len(target.get("variants") or []) > 1
                    and target["name"] + ARGUMENTS not in self.done
                    and time.monotonic() < self.deadline):
                found = self.drive_variants(target, len(todo) - index, observers)
            if found and target["kind"] != "function":
                troubled.add(target["name"].split(".", 1)[0])
        for owner in owners:
            mine = [t for t in targets if t["kind"] != "function"
                    and t["name"].split(".", 1)[0] == owner]
            # A class whose methods already failed alone has its finding: sequences would
            # report the same cause again.
            if (owner + ".*" not in self.done and owner not in troubled
                    and time.monotonic() < self.deadline):
                self.drive_sequences(owner, mine, len(owners), observers)
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
                # Off the main thread, as the concurrent calls are: the readers, on the main
                # thread, must not see a per-thread effect (a thread's name) as module state.
                tally = on_a_thread(functools.partial(run_calls, code, env, n * m, 0, dog,
                                                      name, False))
        finally:
            dog.stop()
        journal.write({"kind": "end", "target": name, "phase": "state-" + plan["mode"]})
        journal.write({"kind": "state", "after": name, "observed": snapshot(),
                       "errors": sorted(tally.errors)})
