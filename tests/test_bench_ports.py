"""The ports benchmark (bench/portslib, bench/bench_ports.py) on small made-up releases and
fake reports: the function locator, the truth derived from a port, the hand overrides, the
data file and the scoring. No download, no scan."""

from __future__ import annotations

import hashlib
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import bench_ports  # noqa: E402
from portslib import (  # noqa: E402
    ConfigError,
    Override,
    Release,
    apply_overrides,
    derive_truth,
    errors_and_warnings,
    functions_of,
    hazard_categories,
    load,
    score,
    source_files,
)
from portslib.fetch import FetchError, sdist_tree  # noqa: E402

from gilaudit.cli import main as cli_main  # noqa: E402

BEFORE = """#include <Python.h>
static PyObject *
counter_add(CounterObject *self, PyObject *arg)
{
    self->n += 1;
    Py_RETURN_NONE;
}

static PyObject *counter_get(CounterObject *self, PyObject *unused) {
    return PyLong_FromLong(self->n);
}

static PyObject *
counter_reset(CounterObject *self, PyObject *unused)
{
    self->n = 0;
    Py_RETURN_NONE;
}

/*[clinic input]
counter.touch
[clinic start generated code]*/

static PyObject *
counter_touch_impl(CounterObject *self)
{
    self->n++;
    Py_RETURN_NONE;
}

static PyObject *
counter_locked(CounterObject *self)
{
    PyMutex_Lock(&self->mutex);
    PyMutex_Unlock(&self->mutex);
    Py_RETURN_NONE;
}

static PyObject *
counter_name(CounterObject *self)
{
    Py_INCREF(self->name);
    return self->name;
}

static PyObject *
counter_item(CounterObject *self, PyObject *key)
{
    PyObject *v = PyDict_GetItem(self->dict, key);
    Py_XINCREF(v);
    return v;
}

static PyObject *
counter_owner(CounterObject *self)
{
    PyObject *o = self->owner;
    return PyObject_Repr(o);
}
"""

AFTER = """#include <Python.h>
#ifndef Py_BEGIN_CRITICAL_SECTION
#  define Py_BEGIN_CRITICAL_SECTION(op) {
#  define Py_END_CRITICAL_SECTION() }
#endif
static PyObject *
counter_add(CounterObject *self, PyObject *arg)
{
    Py_BEGIN_CRITICAL_SECTION(self);
    self->n += 1;
    Py_END_CRITICAL_SECTION();
    Py_RETURN_NONE;
}

static PyObject *counter_get(CounterObject *self, PyObject *unused) {
    /* Py_BEGIN_CRITICAL_SECTION is not needed: one load */
    return PyLong_FromLong(FT_ATOMIC_LOAD_SSIZE(self->n));
}

static void
reset_locked(CounterObject *self)
{
    PyMutex_Lock(&self->mutex);
    self->n = 0;
    PyMutex_Unlock(&self->mutex);
}

static PyObject *
counter_reset(CounterObject *self, PyObject *unused)
{
    reset_locked(self);
    Py_RETURN_NONE;
}

/*[clinic input]
@critical_section
counter.touch
[clinic start generated code]*/

static PyObject *
counter_touch_impl(CounterObject *self)
{
    self->n++;
    Py_RETURN_NONE;
}

static PyObject *
counter_name(CounterObject *self)
{
    return Py_NewRef(self->name);
}

static PyObject *
counter_item(CounterObject *self, PyObject *key)
{
    PyObject *v;
    if (PyDict_GetItemRef(self->dict, key, &v) < 0) {
        return NULL;
    }
    return v;
}

static PyObject *
counter_owner(CounterObject *self)
{
    PyObject *o;
    Py_BEGIN_CRITICAL_SECTION(self);
    o = Py_NewRef(self->owner);
    Py_END_CRITICAL_SECTION();
    PyObject *r = PyObject_Repr(o);
    Py_DECREF(o);
    return r;
}

static PyObject *
counter_locked(CounterObject *self)
{
    PyMutex_Lock(&self->mutex);
    PyMutex_Unlock(&self->mutex);
    Py_RETURN_NONE;
}
"""


def _truth(before: str = BEFORE, after: str = AFTER, path: str = "m.c") -> list[tuple[str, str]]:
    return [(t.function, t.family) for t in derive_truth({path: before}, {path: after}).items]


def test_functions_are_found_with_the_type_on_the_line_above_or_the_same_line() -> None:
    names = [(f.name, f.start, f.end) for f in functions_of("m.c", BEFORE)][:4]
    assert names == [("counter_add", 3, 7), ("counter_get", 9, 11), ("counter_reset", 14, 18),
                     ("counter_touch_impl", 25, 29)]


def test_conditional_branches_and_macros_do_not_unbalance_the_braces() -> None:
    text = ("int f(int x) {\n#if A\n    if (x) {\n#else\n    if (!x) {\n#endif\n"
            "        return 1;\n    }\n    return \"}\" [0];\n}\n"
            "#define OPEN(op) {\nint g(void) { return 2; }\n")
    assert [(f.name, f.start, f.end) for f in functions_of("m.c", text)] == [
        ("f", 1, 10), ("g", 12, 12)]


def test_a_platform_branch_of_whole_functions_is_kept() -> None:
    text = ("#ifdef MS_WINDOWS\nstatic int acquire(void) {\n    return 1;\n}\n#else\n"
            "static int acquire(void) {\n    if (x) {\n        return 2;\n    }\n}\n"
            "static int helper(void) { return 3; }\n#endif\n")
    assert [(f.name, f.start, f.end) for f in functions_of("m.c", text)] == [
        ("acquire", 2, 4), ("acquire", 6, 10), ("helper", 11, 11)]


def test_cython_functions_end_at_the_dedent_and_nest() -> None:
    text = ("cdef class C:\n    cdef int n\n\n    @cython.boundscheck(False)\n"
            "    def f(self):\n        def inner():\n            return 1\n"
            "        return inner()\n\n    cdef inline object g(self, x):\n"
            "        return x\n\ndef top():\n    pass\n")
    assert [(f.name, f.start, f.end) for f in functions_of("m.pyx", text)] == [
        ("f", 4, 8), ("inner", 6, 7), ("g", 10, 11), ("top", 13, 14)]


def test_the_truth_is_what_the_port_added_where_it_was_before() -> None:
    truth = derive_truth({"m.c": BEFORE}, {"m.c": AFTER})
    assert [(t.function, t.family, t.start, t.end) for t in truth.items] == [
        ("counter_add", "critical-section", 3, 7),
        ("counter_get", "atomic", 9, 11),
        ("counter_item", "borrowed-reference", 47, 52),
        ("counter_owner", "borrowed-reference", 55, 59),
        ("counter_owner", "critical-section", 55, 59),
        # the port split the locked part out into a new helper: credited to its caller
        ("counter_reset", "lock", 14, 18),
        # Argument Clinic's @critical_section guards the _impl
        ("counter_touch_impl", "critical-section", 25, 29),
    ]
    # not the port: counter_locked only moved; counter_name's Py_NewRef replaced an INCREF
    # of the same field; the fallback #define and the comment are no critical section
    assert {u.code for u in truth.unlocated} == set()
    by_name = {t.function: t.evidence for t in truth.items}
    assert by_name["counter_add"] == "AFTER line 9: Py_BEGIN_CRITICAL_SECTION(self);"
    assert by_name["counter_reset"].startswith("calls reset_locked()")


def test_a_strong_reference_without_a_lock_beside_it_is_a_respelling() -> None:
    before = "static PyObject *\nget(Obj *self)\n{\n    return PyObject_Repr(self->x);\n}\n"
    after = ("static PyObject *\nget(Obj *self)\n{\n    PyObject *x = Py_NewRef(self->x);\n"
             "    PyObject *r = PyObject_Repr(x);\n    Py_DECREF(x);\n    return r;\n}\n")
    assert _truth(before, after) == []


def test_in_after_the_items_carry_their_lines_in_after() -> None:
    truth = derive_truth({"m.c": BEFORE}, {"m.c": AFTER}, in_after=True)
    assert [(t.function, t.start) for t in truth.items][:2] == [("counter_add", 7),
                                                                 ("counter_get", 15)]


def test_a_function_moved_to_a_new_file_is_found_where_it_was() -> None:
    before = {"a.c": "static PyObject *\nusers(PyObject *m)\n{\n    setutxent();\n}\n"}
    after = {"a.c": "/* moved */\n", "posix/users.c": (
        "PyObject *\nusers(PyObject *m)\n{\n    UTX_LOCK();\n    setutxent();\n}\n")}
    truth = derive_truth(before, after)
    assert [(t.path, t.function, t.family, t.start) for t in truth.items] == [
        ("a.c", "users", "lock", 2)]
    assert truth.items[0].evidence == "moved from a.c to posix/users.c:2 and gained it"


def test_cython_ports_critical_sections_locks_and_libcpp_atomics() -> None:
    before = ("cdef class L:\n    cdef bint frozen\n\n    def freeze(self):\n"
              "        self.frozen = True\n\n    def add(self, x):\n        self.items.append(x)\n"
              "\n    def pop(self):\n        return self.items.pop()\n")
    after = ("from libcpp.atomic cimport atomic\n\ncdef class L:\n    cdef atomic[bint] frozen\n\n"
             "    def freeze(self):\n        self.frozen.store(True)  # atomic\n\n"
             "    def add(self, x):\n        with cython.critical_section(self):\n"
             "            self.items.append(x)\n\n    def pop(self):\n"
             "        with self._lock:\n            return self.items.pop()\n")
    truth = derive_truth({"l.pyx": before}, {"l.pyx": after})
    assert [(t.function, t.family) for t in truth.items] == [
        ("add", "critical-section"), ("freeze", "atomic"), ("pop", "lock")]
    assert [(u.line, u.family) for u in truth.unlocated] == [(4, "atomic")]


def test_load_and_store_without_libcpp_atomic_are_not_atomics() -> None:
    assert _truth("def f(self):\n    pass\n",
                  "def f(self):\n    self.cache.store(1)\n", "m.pyx") == []


def test_overrides_exclude_with_their_reason_and_include_by_name() -> None:
    truth = derive_truth({"m.c": BEFORE}, {"m.c": AFTER})
    fixed = apply_overrides(
        truth, {"m.c": BEFORE},
        exclude=[Override(path="m.c", function="counter_owner", family="borrowed-reference",
                          reason="modernisation"),
                 Override(path="m.c", function="counter_gone", reason="stale")],
        include=[Override(path="m.c", function="counter_name", family="lock",
                          reason="locked by a macro the heuristic cannot see"),
                 Override(path="m.c", function="nowhere", family="lock", reason="typo")])
    names = [(t.function, t.family) for t in fixed.items]
    assert ("counter_owner", "borrowed-reference") not in names
    assert ("counter_name", "lock") in names
    assert [(t.function, why) for t, why in fixed.excluded] == [
        ("counter_owner", "modernisation")]
    assert [o.function for o in fixed.unresolved] == ["nowhere"]
    assert [o.function for o in fixed.unused] == ["counter_gone"]
    assert fixed.to_dict()["excluded"] == [{**fixed.excluded[0][0].to_dict(),
                                            "reason": "modernisation"}]


def test_generated_code_vendored_c_and_skipped_globs_are_not_the_port(tmp_path: Path) -> None:
    (tmp_path / "m.c").write_text(BEFORE)
    (tmp_path / "gen.c").write_text("/* Generated by Cython 3.1 */\nPyObject *x;\n")
    (tmp_path / "vendored.c").write_text("int add(int a, int b) { return a + b; }\n")
    (tmp_path / "m.pyx").write_text("def f():\n    pass\n")
    (tmp_path / "clinic").mkdir()
    (tmp_path / "clinic" / "m.c.h").write_text("/*[clinic input]\npreserve\n[clinic start "
                                               "generated code]*/\nPyObject *x;\n")
    (tmp_path / "_testcapi").mkdir()
    (tmp_path / "_testcapi" / "t.c").write_text(BEFORE)
    assert sorted(source_files(tmp_path, skip=("_testcapi/*",))) == ["m.c", "m.pyx"]


RULES = {"rules": [
    {"id": "FT001", "category": "module-declaration", "phase": "static"},
    {"id": "FT033", "category": "object-state", "phase": "static"},
    {"id": "FT010", "category": "borrowed-reference", "phase": "static"},
    {"id": "FT130", "category": "packaging", "phase": "static"},
    {"id": "FT202", "category": "crash", "phase": "dynamic"},
    {"id": "FT999", "category": "a-category-added-later", "phase": "static"},
]}


def test_the_hazard_categories_come_from_the_rule_catalogue() -> None:
    assert hazard_categories(RULES) == {"object-state", "borrowed-reference",
                                        "a-category-added-later"}


def _finding(line: int, function: str | None, category: str = "object-state",
             severity: str = "warning", notes: list[dict[str, object]] | None = None,
             path: str = "m.c") -> dict[str, Any]:
    return {"path": path, "line": line, "function": function, "category": category,
            "severity": severity, "notes": notes or []}


def test_a_truth_item_is_recalled_by_its_function_its_lines_or_an_access_it_names() -> None:
    truth = derive_truth({"m.c": BEFORE}, {"m.c": AFTER}).items
    categories = hazard_categories(RULES)
    findings = [
        _finding(5, "counter_add"),                       # by function
        _finding(10, None),                               # by line range (counter_get)
        _finding(99, "elsewhere", notes=[{"message": "the access, in `counter_reset` called "
                                                     "from here: `n`", "path": "m.c",
                                          "line": 16}]),  # by the access it names
        _finding(27, "counter_touch_impl", category="module-declaration"),  # not a hazard
        _finding(48, "counter_item", path="other.c"),     # another file
        # made in another file where an entry point calls the helper; the access is here
        _finding(7, "entry", path="entry.c", notes=[{"message": "also in `counter_owner`, "
                                                                "called from this entry point",
                                                     "path": "m.c", "line": 57}]),
        # ... but a note that only names a writer does not place the access
        _finding(7, "entry2", path="entry.c", notes=[{"message": "`n` is written by x",
                                                      "path": "m.c", "line": 27}]),
    ]
    s = score(truth, findings, categories)
    assert [t.function for t in s.recalled] == ["counter_add", "counter_get", "counter_owner",
                                                "counter_owner", "counter_reset"]
    assert [t.function for t in s.missed] == ["counter_item", "counter_touch_impl"]
    assert s.by_family == {"atomic": (1, 1), "borrowed-reference": (1, 2),
                           "critical-section": (2, 3), "lock": (1, 1)}
    assert s.by_category == {"object-state": 5}
    assert errors_and_warnings([*findings, _finding(1, None, severity="info")],
                               categories) == 6


def test_the_data_file_pins_enough_ports_with_their_files_and_hashes() -> None:
    pairs = load(tomllib.loads((BENCH / "ports.toml").read_text()))
    packages = [p for p in pairs if not p.before.is_debian]
    assert len(packages) >= 8
    for p in packages:
        for r in (p.before, p.after):
            assert r.filename.endswith((".tar.gz", ".zip")) and len(r.sha256) == 64
            assert r.version in r.filename
        assert p.why
    cpython = [p for p in pairs if p.before.is_debian]
    assert [(p.before.package, p.after.package) for p in cpython] == [
        ("python3.11", "python3.13")]
    assert all(o.reason for p in pairs for o in (*p.exclude, *p.include))


def test_sdists_are_checked_against_their_hash_and_unpacked(tmp_path: Path) -> None:
    src = tmp_path / "demo-1.0"
    src.mkdir()
    (src / "m.c").write_text(BEFORE)
    sdists = tmp_path / "cache" / "sdists"
    sdists.mkdir(parents=True)
    archive = sdists / "demo-1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(src, arcname="demo-1.0")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    tree = sdist_tree("demo", Release(version="1.0", filename=archive.name, sha256=digest),
                      tmp_path / "cache")
    assert (tree / "m.c").read_text() == BEFORE
    with pytest.raises(FetchError, match="sha256"):
        sdist_tree("demo", Release(version="1.0", filename=archive.name, sha256="0" * 64),
                   tmp_path / "cache")


def test_the_real_catalogue_scores_the_state_categories(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["rules", "--json"]) == 0
    categories = hazard_categories(json.loads(capsys.readouterr().out))
    assert {"object-state", "borrowed-reference", "critical-section", "shared-mutable-state",
            "lazy-initialization", "unsafe-iteration", "allow-threads",
            "object-internals"} <= categories
    assert not categories & {"module-declaration", "packaging", "meta", "crash", "data-race"}


@pytest.mark.parametrize(("data", "where"), [
    ({"package": [{"name": "x"}]}, "package[0].before: expected a table"),
    ({"package": [{"name": "x", "why": "w", "language": "C",
                   "before": {"version": "1", "filename": "x-1.tar.gz", "sha256": "00"},
                   "after": {"version": "2", "filename": "x-2.tar.gz",
                             "sha256": "0" * 64}}]},
     "package[0].before.sha256: not a sha256 hex digest"),
    ({"package": [{"name": "x", "why": "w", "language": "C",
                   "before": {"version": "1", "filename": "x-1.tar.gz", "sha256": "0" * 64},
                   "after": {"version": "2", "filename": "x-2.tar.gz", "sha256": "0" * 64},
                   "exclude": [{"path": "m.c", "function": "f", "family": "locks",
                                "reason": "r"}]}]},
     "package[0].exclude[0].family: 'locks' is not one of"),
])
def test_a_bad_data_file_says_where(data: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError, match=where.replace("[", r"\[").replace("]", r"\]")):
        load(data)


def test_a_pair_is_scored_from_cached_reports(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    before, after = tmp_path / "b", tmp_path / "a"
    for root, text in ((before, BEFORE), (after, AFTER)):
        root.mkdir()
        (root / "m.c").write_text(text)
    monkeypatch.setattr(bench_ports, "_trees", lambda p, cache: (before, after))
    cache = tmp_path / "cache"
    (cache / "reports").mkdir(parents=True)
    (cache / "reports" / "demo-before.json").write_text(json.dumps({"findings": [
        _finding(5, "counter_add"), _finding(10, None), _finding(16, None, severity="error"),
    ], "diagnostics": [{"kind": "parse-error"}]}))
    (cache / "reports" / "demo-after.json").write_text(json.dumps({"findings": [
        _finding(8, "counter_add", severity="info")], "diagnostics": []}))
    pair = load({"package": [{
        "name": "demo", "why": "w", "language": "C",
        "before": {"version": "1", "filename": "demo-1.tar.gz", "sha256": "0" * 64},
        "after": {"version": "2", "filename": "demo-2.tar.gz", "sha256": "0" * 64}}]})[0]
    row = bench_ports.run_pair(pair, cache, hazard_categories(RULES), reuse=True)
    assert row.error == "" and row.score is not None and row.still is not None
    assert (row.score.truth, len(row.score.recalled)) == (7, 3)
    assert (row.before_ew, row.after_ew) == (3, 0)
    assert len(row.still.recalled) == 1  # counter_add, reported as info on AFTER
    saved = json.loads((cache / "truth" / "demo.json").read_text())
    assert len(saved["items"]) == 7 and saved["excluded"] == []
    summary = bench_ports.print_table([row])
    assert summary["totals"]["recalled"] == 3 and summary["targets"] == {"recall": False,
                                                                         "drop": True}
    assert summary["packages_only"] == {"before": 3, "after": 0}  # a PyPI pair, not Debian's
    assert row.to_dict()["misses"][0]["function"] == "counter_item"


def test_a_method_converted_to_argument_clinic_is_its_old_self() -> None:
    before = ("static PyObject *\ndeque_pop(dequeobject *deque, PyObject *unused)\n{\n"
              "    return pop(deque);\n}\n")
    after = ("/*[clinic input]\n@critical_section\n_collections.deque.pop\n"
             "[clinic start generated code]*/\n\nstatic PyObject *\n"
             "deque_pop_impl(dequeobject *deque)\n{\n    return pop(deque);\n}\n")
    truth = derive_truth({"m.c": before}, {"m.c": after})
    assert [(t.function, t.family, t.start, t.end) for t in truth.items] == [
        ("deque_pop", "critical-section", 2, 5)]
