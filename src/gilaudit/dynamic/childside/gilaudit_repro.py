#!/usr/bin/env python3
"""gilaudit reproducer: a standalone script (standard library only, CPython 3.6+).

It repeats what gilaudit's stress phase did when it found the problem described in PARAMS:
the same calls, threads, iterations, trials and seeds. Exit status 1 means the problem showed
again (a crash or a hang ends the process by itself, with faulthandler's stacks on stderr and
a status of its own); 0 means it did not show in these trials: races are probabilistic, so
run it again, or raise "trials" below; 2 means the reproducer could not set the problem up
(the module did not import, an object could not be made).
"""

import contextlib
import faulthandler
import functools
import random
import re
import sys
import threading
import time
import warnings
from typing import Any, Callable, Dict, List, Set, Tuple

PARAMS = {}  # type: Dict[str, Any]  # filled in by gilaudit

_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
EQUAL = "obj == the serial object"


def norm(value: Any) -> str:
    try:
        text = repr(value)
    except BaseException as exc:
        return "<repr raised %s>" % type(exc).__name__
    text = _ADDRESS.sub("0x?", text)
    return text if len(text) <= 300 else text[:300] + "...(%d chars)" % len(text)


def observe(obj: Any, readers: List[str], env: Dict[str, Any]) -> Dict[str, str]:
    seen = {"repr(obj)": norm(obj)}
    if hasattr(type(obj), "__len__"):
        seen["len(obj)"] = safe(lambda: norm(len(obj)))
    if hasattr(type(obj), "__iter__"):
        def items() -> str:
            it = iter(obj)
            if it is obj:
                return "<an iterator: not consumed>"
            return norm([norm(x) for x, _ in zip(it, range(1000))])
        seen["list(obj)"] = safe(items)
    for expr in readers:
        seen[expr] = safe(functools.partial(read, expr, dict(env, obj=obj)))
    return seen


def equal(a: Any, b: Any) -> str:
    return str(bool(a == b))


def read(expr: str, env: Dict[str, Any]) -> str:
    return norm(eval(expr, env))


def safe(fn: Callable[[], str]) -> str:
    try:
        return fn()
    except BaseException as exc:
        return "<raised %s>" % type(exc).__name__


def import_target() -> Any:
    for path in reversed(PARAMS["import_paths"]):
        sys.path.insert(0, path)
    __import__(PARAMS["module"])
    return sys.modules[PARAMS["module"]]


def check_import() -> bool:
    gil = getattr(sys, "_is_gil_enabled", lambda: None)
    before = gil()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            import_target()
        except BaseException as exc:
            print("importing %s raised %s: %s" % (PARAMS["module"], type(exc).__name__, exc))
            return bool(PARAMS["category"] == "import-failure")
    for w in seen:
        if "global interpreter lock" in str(w.message):
            print("%s: %s" % (w.category.__name__, w.message))
    after = gil()
    print("GIL enabled before the import: %s, after: %s" % (before, after))
    return bool(PARAMS["category"] == "gil-reenabled" and before is False and after is True)


def hammer(mod: Any, calls: List[Dict[str, Any]], threads: int, iterations: int, seed: int,
           envs: Dict[Any, Dict[str, Any]]) -> Tuple[Dict[str, str], Dict[str, str]]:
    barrier = threading.Barrier(threads)
    errors, results = {}, {}  # type: Dict[str, str], Dict[str, str]
    compiled = [(c["name"], compile(c["call"], "<gilaudit: %s>" % c["name"], "eval"),
                 envs[c.get("setup")]) for c in calls]

    def worker(i: int) -> None:
        rnd = random.Random(seed * 7919 + i)
        barrier.wait()
        order = compiled[i % len(compiled):] + compiled[:i % len(compiled)]
        for k in range(iterations):
            name, code, env = order[k % len(order)]
            try:
                result = eval(code, env)
            except BaseException as exc:
                errors.setdefault(type(exc).__name__, "%s: %s" % (name, exc))
            else:
                results.setdefault(norm(result), name)
            if rnd.random() < 0.02:
                time.sleep(0)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.daemon = True
        t.start()
    for t in pool:
        t.join()
    return errors, results


def order_free(obj: Any) -> Dict[str, str]:
    if not hasattr(type(obj), "__iter__"):
        return {}

    def items() -> str:
        it = iter(obj)
        if it is obj:
            return "<an iterator: not consumed>"
        return norm(sorted(norm(x) for x, _ in zip(it, range(1000))))
    return {"sorted(obj)": safe(items)}


def run_programs(mod: Any,
                 seed: int) -> Tuple[Dict[Any, str], Dict[int, Set[str]], Dict[str, Any]]:
    """Each thread's exact program (steps into PARAMS["steps"]), all released together on one
    shared object (or the module)."""
    programs = [[step for step, n in p for _ in range(n)] for p in PARAMS["programs"]]
    table = [compile(st["call"], "<gilaudit: %s>" % st["name"], "eval")
             for st in PARAMS["steps"]]
    setup = PARAMS.get("setup")
    env = {"mod": mod, "obj": eval(setup, {"mod": mod})} if setup else {"mod": mod}
    barrier = threading.Barrier(len(programs))
    errors, results = {}, {}  # type: Dict[Any, str], Dict[int, Set[str]]

    def worker(i: int) -> None:
        rnd = random.Random(seed * 7919 + i)
        barrier.wait()
        for step in programs[i]:
            try:
                result = eval(table[step], env)
            except BaseException as exc:
                errors.setdefault((step, error_name(exc)), str(exc))
            else:
                results.setdefault(step, set()).add(norm(result))
            if rnd.random() < 0.02:
                time.sleep(0)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(len(programs))]
    for t in pool:
        t.daemon = True
        t.start()
    for t in pool:
        t.join()
    return errors, results, env


def error_name(exc: BaseException) -> str:
    kind = type(exc)
    owner = getattr(kind, "__module__", "builtins")
    return kind.__qualname__ if owner == "builtins" else "%s.%s" % (owner, kind.__qualname__)


def replay_programs(mod: Any) -> int:
    step = int(PARAMS.get("step") or 0)
    for trial in range(PARAMS["trials"]):
        seed = PARAMS["seed"] + trial
        faulthandler.dump_traceback_later(PARAMS["timeout"], exit=True)
        errors, results, env = run_programs(mod, seed)
        faulthandler.cancel_dump_traceback_later()
        error = PARAMS.get("error")
        if error is not None and (step, error) in errors:
            print("trial %d (seed %d): %s raised only under concurrency: %s"
                  % (trial, seed, error, errors[(step, error)]))
            return 1
        expected = PARAMS.get("expected_result")
        if expected is not None and any(r != expected for r in results.get(step, ())):
            print("trial %d (seed %d): %s returned %s; in every serial order it returns %s"
                  % (trial, seed, PARAMS["steps"][step]["call"],
                     sorted(r for r in results[step] if r != expected), expected))
            return 1
        wanted = PARAMS.get("expected_state")
        if wanted and "obj" in env:
            seen = observe(env["obj"], PARAMS.get("readers", []), env)
            seen.update(order_free(env["obj"]))
            wrong = {k: (v, seen.get(k)) for k, v in wanted.items() if seen.get(k) != v}
            if wrong:
                for key, (serial, got) in sorted(wrong.items()):
                    print("trial %d (seed %d): %s is %s; after the same programs run serially "
                          "it is %s" % (trial, seed, key, got, serial))
                return 1
    print("not reproduced in %d trial(s)" % PARAMS["trials"])
    return 0


def fresh_envs(mod: Any, calls: List[Dict[str, Any]]) -> Dict[Any, Dict[str, Any]]:
    envs = {None: {"mod": mod}}  # type: Dict[Any, Dict[str, Any]]
    for c in calls:
        setup = c.get("setup")
        if setup and setup not in envs:
            envs[setup] = {"mod": mod, "obj": eval(setup, {"mod": mod})}
    return envs


def main() -> int:
    print("gilaudit reproducer: %s in %s (%s)" % (PARAMS["category"], PARAMS["module"],
                                                 ", ".join(c["name"] for c in PARAMS["calls"])
                                                 or "import"))
    faulthandler.enable()
    if PARAMS["mode"] == "import":
        return 1 if check_import() else 0
    mod = import_target()
    calls, timeout = PARAMS["calls"], PARAMS["timeout"]
    sys.setswitchinterval(PARAMS.get("switch_interval", 5e-6))
    if PARAMS["mode"] == "programs":
        return replay_programs(mod)
    if PARAMS["mode"] == "programs-serial":  # every program, one after another
        faulthandler.dump_traceback_later(timeout, exit=True)
        PARAMS["programs"] = [[s for p in PARAMS["programs"] for s in p]]
        run_programs(mod, PARAMS["seed"])
        faulthandler.cancel_dump_traceback_later()
        print("not reproduced: every call returned")
        return 0
    if PARAMS["mode"] == "serial":
        faulthandler.dump_traceback_later(timeout, exit=True)
        for c in calls:
            envs = fresh_envs(mod, [c])
            print("calling", c["call"])
            try:
                eval(compile(c["call"], "<gilaudit: %s>" % c["name"], "eval"),
                     envs[c.get("setup")])
            except BaseException as exc:
                print("  raised %s: %s" % (type(exc).__name__, exc))
        faulthandler.cancel_dump_traceback_later()
        print("not reproduced: every call returned")
        return 0
    for trial in range(PARAMS["trials"]):
        seed = PARAMS["seed"] + trial
        envs = fresh_envs(mod, calls)
        faulthandler.dump_traceback_later(timeout, exit=True)
        # "sequence": each module function hammered in turn, as gilaudit did; otherwise the
        # calls run together, thread i starting at call i.
        batches = [[c] for c in calls] if PARAMS["mode"] == "sequence" else [calls]
        errors, results = {}, {}  # type: Dict[str, str], Dict[str, str]
        for batch in batches:
            more_errors, more_results = hammer(mod, batch, PARAMS["threads"],
                                               PARAMS["iterations"], seed, envs)
            errors.update(more_errors)
            results.update(more_results)
        faulthandler.cancel_dump_traceback_later()
        if PARAMS.get("error") in errors:
            print("trial %d (seed %d): %s raised only under concurrency: %s"
                  % (trial, seed, PARAMS["error"], errors[PARAMS["error"]]))
            return 1
        expected = PARAMS.get("expected_result")
        if expected is not None and any(r != expected for r in results):
            print("trial %d (seed %d): results %s, serially always %s"
                  % (trial, seed, sorted(r for r in results if r != expected), expected))
            return 1
        wanted = PARAMS.get("expected_state")
        if wanted:
            if PARAMS["mode"] == "state":
                env = envs[calls[0].get("setup")]
                seen = observe(env["obj"], PARAMS.get("readers", []), env)
                if EQUAL in wanted:  # the same calls, serially, on a fresh object
                    serial = fresh_envs(mod, calls)[calls[0].get("setup")]
                    code = compile(calls[0]["call"], "<gilaudit: serial>", "eval")
                    for _ in range(PARAMS["threads"] * PARAMS["iterations"]):
                        with contextlib.suppress(Exception):
                            eval(code, serial)
                    seen[EQUAL] = safe(functools.partial(equal, env["obj"], serial["obj"]))
            else:
                seen = {e: safe(functools.partial(read, e, {"mod": mod})) for e in wanted}
            wrong = {k: (v, seen.get(k)) for k, v in wanted.items() if seen.get(k) != v}
            if wrong:
                for key, (serial, got) in sorted(wrong.items()):
                    print("trial %d (seed %d): %s is %s; after the same calls made serially "
                          "it is %s" % (trial, seed, key, got, serial))
                return 1
        if PARAMS["mode"] == "sequence":
            break  # module state cannot be reset: one trial per process
    print("not reproduced in %d trial(s)" % PARAMS["trials"])
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # could not even set the problem up: neither 0 nor 1
        print("could not run the reproducer: %s: %s" % (type(exc).__name__, exc))
        sys.exit(2)
