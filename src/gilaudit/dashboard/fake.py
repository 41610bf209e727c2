"""Generated dashboard results, for the size benchmark and the tests: realistic in shape and
size (reports with findings like a real scan's), deterministic for a seed, never random text
a real report could not hold."""

from __future__ import annotations

import hashlib
import random
from typing import Any

from gilaudit.dashboard.model import DASHBOARD_VERDICTS, PackageResult
from gilaudit.language import language_of
from gilaudit.rulebook import shipped_rule

__all__ = ["generated_results"]

# (rule, name, category, severity, message, fix): shaped like the shipped rules' findings.
_FINDINGS = (
    ("FT001", "missing-mod-gil-slot", "module-declaration", "error",
     "Module `{mod}` defines no `Py_mod_gil` slot, so importing it re-enables the GIL",
     "Add `{{Py_mod_gil, Py_MOD_GIL_NOT_USED}}` to the slot array once the module is safe"),
    ("FT010", "list-getitem-borrowed", "borrowed-reference", "error",
     "`PyList_GET_ITEM` returns a borrowed reference to an item of `{var}`; another thread "
     "can remove and free that item while it is still in use",
     "Use `PyList_GetItemRef(list, i)`, which returns a new reference, and `Py_DECREF` it"),
    ("FT011", "dict-getitem-borrowed", "borrowed-reference", "error",
     "`PyDict_GetItem` returns a borrowed value from `{var}`, which other threads can mutate",
     "Use `PyDict_GetItemRef`, which returns a strong reference"),
    ("FT014", "dict-next-unlocked", "unsafe-iteration", "error",
     "`PyDict_Next` iterates `{var}` without a critical section",
     "Wrap the loop in `Py_BEGIN_CRITICAL_SECTION({var})` / `Py_END_CRITICAL_SECTION()`"),
    ("FT040", "static-mutable-global", "shared-mutable-state", "warning",
     "Static variable `{var}` is written in `{func}` without a lock",
     "Protect `{var}` with a `PyMutex`, or make it per-module state"),
    ("FT041", "lazy-static-pyobject-cache", "lazy-initialization", "error",
     "Static cache `{var}` is filled lazily in `{func}` without a lock: two threads can both "
     "fill it and one reference leaks or is freed twice",
     "Fill the cache at module init, or use `PyMutex` / an atomic compare-exchange"),
    ("FT046", "non-reentrant-libc", "shared-mutable-state", "warning",
     "`{libc}` keeps static state; calls from two threads overwrite each other's result",
     "Use the reentrant `{libc}_r` variant"),
    ("FT048", "per-object-native-handle-unlocked", "allow-threads", "warning",
     "`self->{var}` is used between `Py_BEGIN_ALLOW_THREADS` and `Py_END_ALLOW_THREADS` "
     "without a lock",
     "Take a per-object `PyMutex` around the use of the handle"),
    ("FT130", "no-ft-wheels", "packaging", "warning",
     "The release has compiled wheels, none for free-threaded CPython (cp313t, cp314t)",
     "Build cp313t/cp314t wheels, e.g. with cibuildwheel's `enable = [\"cpython-freethreading\"]`"),
    ("FT151", "binary-ft-positive-evidence", "module-declaration", "info",
     "`{mod}` imports free-threading APIs (`PyMutex_Lock`, `PyCriticalSection_Begin`)", ""),
)
_WORDS = ("cache", "state", "buffer", "handle", "table", "items", "registry", "default",
          "codec", "parser", "pool", "index", "map", "queue", "entry", "context", "stream")
_LIBC = ("strtok", "localtime", "gmtime", "getenv", "rand", "asctime", "ctime", "strerror")
_PLATFORMS = ("manylinux_2_17_x86_64", "manylinux_2_17_aarch64", "musllinux_1_2_x86_64",
              "macosx_11_0_arm64", "macosx_10_9_x86_64", "win_amd64", "win32")
_STRESS = ("clean", "problems", "not exercised", "could not run")
# Verdict shares roughly like today's ecosystem: few ready, many without FT wheels.
_VERDICT_WEIGHTS = (12, 10, 14, 16, 40, 8)


def _ident(rng: random.Random) -> str:
    return "_".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 3)))


def _language(rule_id: str, path: str) -> str:
    rule = shipped_rule(rule_id)
    return language_of(rule.language if rule is not None else "c", path)


def _finding(rng: random.Random, pkg: str, files: list[str], mod: str) -> dict[str, Any]:
    rule, name, category, severity, message, fix = rng.choice(_FINDINGS)
    var, func = _ident(rng), f"{pkg.replace('-', '_')}_{_ident(rng)}"
    fill = {"mod": mod, "var": var, "func": func, "libc": rng.choice(_LIBC)}
    path = rng.choice(files)
    line = rng.randint(10, 4000)
    return {
        "rule": rule, "name": name, "category": category,
        "language": _language(rule, path), "severity": severity,
        "path": path, "line": line, "column": rng.randint(1, 40), "end_line": None,
        "end_column": None, "symbol": var, "message": message.format(**fill),
        "fix": fix.format(**fill), "module": mod, "callable": None, "function": func,
        "code": f"    {var} = {func}(self, args, {rng.randint(0, 99)});", "notes": [],
        "preview": False, "evidence": "static", "reproducer": None, "confirmed": False,
        "baseline": None,
        "fingerprint": hashlib.sha256(f"{pkg}{path}{line}{rule}".encode()).hexdigest()[:32],
    }


def _report(rng: random.Random, pkg: str, version: str, verdict: str,
            stamp: str) -> tuple[dict[str, Any], int, int, int]:
    mods = [f"{pkg.replace('-', '_')}._{_ident(rng)}" for _ in range(rng.randint(1, 3))]
    files = [f"src/{_ident(rng)}.c" for _ in range(rng.randint(1, 8))]
    # A long tail: most packages have a few findings, some have many.
    count = 0 if verdict == "ready" else min(int(rng.expovariate(1 / 8)), 120)
    findings = [_finding(rng, pkg, files, rng.choice(mods)) for _ in range(count)]
    sev = {s: sum(1 for f in findings if f["severity"] == s) for s in ("error", "warning",
                                                                        "info")}
    file_modules = {f: rng.choice(mods) for f in files}
    modules = [{"module": m, "verdict": "ready" if verdict == "ready" else "not declared",
                "reason": "generated", "declared": verdict in ("ready", "declared", "hazards"),
                "files": sorted(f for f, fm in file_modules.items() if fm == m),
                "errors": sum(1 for f in findings if f["module"] == m and
                              f["severity"] == "error"),
                "warnings": sum(1 for f in findings if f["module"] == m and
                                f["severity"] == "warning"),
                "info": sum(1 for f in findings if f["module"] == m and f["severity"] == "info"),
                "stress": None, "free_threaded_evidence": verdict == "ready"} for m in mods]
    report = {
        "schema": 1,
        "tool": {"name": "gilaudit", "version": "0.1.0", "rules_version": "b1077be5056e"},
        "targets": [f"{pkg}-{version}.tar.gz"],
        "options": {"jobs": 1, "cache": False, "select": [], "ignore": [], "fail_on": "error"},
        "findings": findings, "diagnostics": [],
        "files": dict.fromkeys(files, "parsed"), "file_modules": file_modules,
        "modules": modules, "generated": stamp, "baseline": None, "stress": None,
        "summary": {"errors": sev["error"], "warnings": sev["warning"], "info": sev["info"],
                    "files_analysed": len(files), "files_failed": 0, "files_skipped": 0,
                    "lines_analysed": rng.randint(200, 60_000), "diagnostics": 0,
                    "modules_stressed": 0, "modules_not_run": 0,
                    "seconds": round(rng.uniform(0.2, 40), 3)},
    }
    return report, sev["error"], sev["warning"], sev["info"]


def generated_results(n: int, seed: int = 0) -> list[PackageResult]:
    """``n`` results with distinct names (``pkg-00000``, ...), deterministic for ``seed``."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        name = f"pkg-{i:05d}"
        verdict = rng.choices(DASHBOARD_VERDICTS, weights=_VERDICT_WEIGHTS)[0]
        version = f"{rng.randint(0, 30)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
        if rng.random() < 0.03:
            out.append(PackageResult(name=name, version=None, status="failed",
                                     reason="The index answered 404 for the project page.",
                                     summary=""))
            continue
        ft = () if verdict in ("no ft wheels", "unknown") else \
            tuple(rng.sample(("cp313t", "cp314t"), rng.randint(1, 2)))
        stamp = f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00+00:00"
        report, errors, warnings, info = _report(rng, name, version, verdict, stamp)
        stress = rng.choice(_STRESS) if rng.random() < 0.4 else None
        out.append(PackageResult(
            name=name, version=version, status="ok", verdict=verdict, ft_wheels=tuple(sorted(ft)),
            abi3=rng.random() < 0.08,
            platforms=tuple(sorted(rng.sample(_PLATFORMS, rng.randint(1, len(_PLATFORMS))))),
            declared=verdict in ("ready", "declared", "hazards") or (None if rng.random() < 0.2
                                                                      else False),
            classifier=verdict in ("ready", "declared") and rng.random() < 0.7,
            errors=errors, warnings=warnings, info=info, stress=stress,
            summary=f"{_ident(rng).replace('_', ' ').capitalize()} for Python, "
                    f"with a C extension for {_ident(rng).replace('_', ' ')}",
            report=report, seconds=round(rng.uniform(0.5, 90), 2)))
    return out
