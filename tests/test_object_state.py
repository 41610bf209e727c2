"""The object-state analysis beyond the rule fixtures: the declarations and accesses it reads,
what counts as construction, a type split over a header and two files, and the text report
that folds one type's findings into one block."""

from __future__ import annotations

import io
import shutil
import subprocess
import sysconfig
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import FIXTURES, RULE_FIXTURES, ScanJson
from gilaudit.frontends import textscan
from gilaudit.frontends.c.accesses import field_accesses
from gilaudit.frontends.c.cursors import Text
from gilaudit.frontends.c.decls import macro_facts, struct_facts
from gilaudit.frontends.c.facts import CallSite
from gilaudit.frontends.c.modtext import module_facts
from gilaudit.model import Finding, Location, Report
from gilaudit.report.html_report import render_html
from gilaudit.report.text import render_text
from gilaudit.rulebook import load_rulebook


def _text(src: str) -> Text:
    code, bare = textscan.strip_comments_and_strings(src)
    return Text(raw=src, code=code, bare=bare, index=textscan.LineIndex.of(src))


def test_struct_fields_after_the_object_header_and_macros_across_lines() -> None:
    t = _text("typedef struct {\n    PyObject_VAR_HEAD\n    PyObject *a, *b; /* two */\n"
              "    char *buf; Py_ssize_t len;\n    PyMutex m; _Atomic int n;\n"
              "    int (*cb)(int);\n} ThingObject;\n"
              "#define BUF(o) \\\r\n    ((o)->buf)\n#define X_METHODDEF {\"x\", x, 0, 0},\n")
    (s,) = struct_facts(t.code, t.bare, t.index, "t.h")
    fields = {f.name: f for f in s.fields}
    assert s.names == ("ThingObject",) and list(fields) == ["a", "b", "buf", "len", "m", "n"]
    assert fields["a"].is_pyobject and fields["b"].is_pyobject and fields["buf"].is_pointer
    assert fields["m"].is_lock and fields["n"].is_atomic and not fields["len"].is_pointer
    macros = {m.name: m for m in macro_facts(t.code, t.index, "t.h")}
    assert macros["BUF"].params == ("o",) and macros["BUF"].body == "((o)->buf)"
    assert macros["BUF"].line == 8
    assert macros["X_METHODDEF"].params == () and '"x"' in macros["X_METHODDEF"].body


def _calls(t: Text) -> list[CallSite]:
    out = []
    for name, args in (("Py_SETREF", ("s->obj", "v")), ("memcpy", ("s->buf", "s->src", "n")),
                       ("PyMem_Realloc", ("s->buf", "n")), ("lib_update", ("s->state",)),
                       ("__atomic_load_n", ("&s->flag", "0")), ("PyLong_FromLong", ("s->n",))):
        at = t.bare.index(name + "(")
        close = textscan.find_close(t.bare, at + len(name))
        line, col = t.index.line_col(at)
        out.append(CallSite(name, line, col, at, close + 1, args))
    return sorted(out, key=lambda c: c.offset)


def test_each_access_is_classified_by_what_the_code_does_with_it() -> None:
    body = ("{ s->count++; s->pos += 2; s->buf[0] = 1; s->obj2 = NULL; x = s->len;\n"
            "  Py_SETREF(s->obj, v); memcpy(s->buf, s->src, n); PyMem_Realloc(s->buf, n);\n"
            "  lib_update(s->state); __atomic_load_n(&s->flag, 0); PyLong_FromLong(s->n);\n"
            "  ((Thing *)op)->other = 3; s->vec.push_back(1); s->vec.size(); }")
    t = _text(body)
    got = {(a.base, a.field): a.kind for a in field_accesses(t, _calls(t), 0, len(body))}
    assert got[("s", "count")] == "rmw" and got[("s", "pos")] == "rmw"
    assert got[("s", "obj2")] == "write" and got[("s", "len")] == "read"
    assert got[("s", "obj")] == "replace" and got[("s", "src")] == "read"
    assert got[("s", "state")] == "arg" and got[("s", "flag")] == "atomic"
    assert got[("s", "n")] == "read" and got[("op", "other")] == "write"
    kinds = [a.kind for a in field_accesses(t, _calls(t), 0, len(body))
             if a.field in ("buf", "vec")]
    # written through an index, the memcpy destination, reallocated; a mutating and a
    # reading C++ member call
    assert kinds == ["elem", "elem", "free", "elem", "read"]
    # a null handle of a library (pyodbc's `hdbc == SQL_NULL_HANDLE`) is a NULL test; a
    # field taken by address in parentheses is handed by address
    body = "{ if (c->hdbc == SQL_NULL_HANDLE) { return 0; } mysql_close(&(c->conn)); }"
    t = _text(body)
    at = body.index("mysql_close(")
    close = CallSite("mysql_close", 1, at + 1, at, textscan.find_close(body, at + 11) + 1,
                     ("&(c->conn)",))
    got = {(a.base, a.field): a.kind for a in field_accesses(t, [close], 0, len(body))}
    assert got == {("c", "hdbc"): "test", ("c", "conn"): "addr"}, got
    # ... and so is a library-prefixed invalid handle (sabctools' `FileWriter.__enter__`)
    body = "{ if (self->handle == SABCTOOLS_INVALID_HANDLE) { return 0; } }"
    t = _text(body)
    assert [a.kind for a in field_accesses(t, [], 0, len(body))] == ["test"]
    # a store of what a call returns, through a cast or not, and of a plain value
    body = "{ s->fp = (FILE *)fopen(n, m); s->sep = SEPS[i]; s->g = ns::make(1); }"
    t = _text(body)
    assert [a.stores_call for a in field_accesses(t, [], 0, len(body))] == [True, False, True]
    # in C a call through a function pointer the struct holds reads it (bitstruct's
    # `info_p->fields[i].pack(...)`); in C++ a member call may change the member
    body = "{ i->fields[k].pack(w, v); }"
    t = _text(body)
    assert [a.kind for a in field_accesses(t, [], 0, len(body), cxx=False)] == ["read"]
    assert [a.kind for a in field_accesses(t, [], 0, len(body))] == ["elem"]
    # a const accessor of the standard library reads (couchbase's `self->ec.value()`)
    body = "{ n = self->ec.value(); m = self->ec.message(); }"
    t = _text(body)
    assert [a.kind for a in field_accesses(t, [], 0, len(body))] == ["read", "read"]


def test_a_type_split_over_a_header_and_two_files_is_one_model(scan_json: ScanJson,
                                                                tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copy(RULE_FIXTURES / "ftcompat.h", proj)
    (proj / "counter.h").write_text(
        "#include <Python.h>\ntypedef struct {\n    PyObject_HEAD\n    long hits;\n"
        "} CounterObject;\n#define HITS(c) ((c)->hits)\n"
        "PyObject *counter_bump(PyObject *op, PyObject *unused);\n")
    (proj / "bump.c").write_text(
        '#include "counter.h"\n\nstatic void\nadd_one(CounterObject *c)\n{\n'
        "    HITS(c)++;\n}\n\nPyObject *\ncounter_bump(PyObject *op, PyObject *unused)\n{\n"
        "    CounterObject *self = (CounterObject *)op;\n    add_one(self);\n"
        "    Py_RETURN_NONE;\n}\n")
    (proj / "mod.c").write_text(
        '#include "counter.h"\n#include "ftcompat.h"\n\nstatic PyObject *\n'
        "counter_hits(CounterObject *self, PyObject *unused)\n{\n"
        "    return PyLong_FromLong(self->hits);\n}\n\n"
        "static PyMethodDef methods[] = {\n"
        '    {"bump", counter_bump, METH_NOARGS, NULL},\n'
        '    {"hits", (PyCFunction)counter_hits, METH_NOARGS, NULL},\n    {NULL}\n};\n\n'
        "static PyTypeObject CounterType = {\n    PyVarObject_HEAD_INIT(NULL, 0)\n"
        '    .tp_name = "m.Counter",\n    .tp_basicsize = sizeof(CounterObject),\n'
        "    .tp_methods = methods,\n};\n")
    _code, data = scan_json(str(proj), "--select", "FT034")
    got = sorted((f["path"], f["line"], f["function"], f["symbol"]) for f in data["findings"])
    # bump() writes through a macro in a helper: reported in bump() where it calls the helper
    # (where the lock goes), the helper's access as a note.
    assert got == [("bump.c", 13, "counter_bump", "Counter.hits"),
                   ("mod.c", 7, "counter_hits", "Counter.hits")], got
    bump = next(f for f in data["findings"] if f["path"] == "bump.c")
    assert any("in `add_one` called from here" in n["message"] and n["line"] == 6
               for n in bump["notes"])
    hits = next(f for f in data["findings"] if f["path"] == "mod.c")
    assert any("`Counter.bump()`" in n["message"] and n["path"] == "bump.c" and n["line"] == 6
               for n in hits["notes"])


def _finding(line: int, entry: str) -> Finding:
    return Finding(rule="FT034", name="c-member-unsynchronized", category="object-state",
                   language="c", severity="warning",
                   message=f"`Hasher.{entry}()` uses `ctx` of the instance without a lock",
                   location=Location(path="h.c", line=line, column=5), symbol="Hasher.ctx",
                   fix="Take a critical section on self.")


def test_the_text_report_folds_one_types_entry_points_into_one_block() -> None:
    report = Report(tool={}, targets=("h.c",), diagnostics=(),
                    findings=(_finding(10, "update"), _finding(20, "digest"),
                              _finding(30, "copy")))
    out = io.StringIO()
    render_text(report, out, color=False)
    text = out.getvalue()
    assert text.count("help:") == 1 and "2 more entry point(s)" in text
    assert "h.c:20:5" in text and "h.c:30:5" in text


def test_the_html_report_folds_one_types_entry_points_into_one_group() -> None:
    other = replace(_finding(40, "x"), rule="FT030", category="object-internals",
                    symbol="Py_REFCNT")
    report = Report(tool={}, targets=("h.c",), diagnostics=(),
                    findings=(_finding(10, "update"), other, _finding(20, "digest")))
    html = render_html(report, load_rulebook())
    assert html.count('<details class="type-group"') == 1
    group = html[html.index('<details class="type-group"'):]
    group = group[:group.index("</details>")]
    # both Hasher cards inside the one group, the other finding outside it
    assert group.count('<article class="finding') == 2 and "Hasher" in group
    assert html.count('<article class="finding') == 3


def test_a_pybind11_class_is_a_type_its_bound_member_functions_the_entry_points(
        scan_json: ScanJson, tmp_path: Path) -> None:
    source = FIXTURES / "objstate" / "bound_counter.cpp"
    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copy(source, proj)
    _code, data = scan_json(str(proj), "--select", "FT033,FT034,FT074")
    got = sorted((f["line"], f["function"], f["symbol"]) for f in data["findings"]
                 if not f["function"].startswith("Handle::"))
    # Counter: add updates n and items_; total and size read them; `n` is also assigned by
    # the def_readwrite setter. SafeCounter holds its mutex everywhere: nothing.
    assert got == [(15, "Counter::add", "Counter.n"), (16, "Counter::total", "Counter.n"),
                   (17, "Counter::size", "Counter.items_")], got
    # Handle: `fp_` only with the GIL released (information); `reads_ += 1` with it held
    # (read()'s one finding, at the race free threading adds)
    handle = sorted((f["function"], f["symbol"], f["severity"]) for f in data["findings"]
                    if f["function"].startswith("Handle::"))
    assert handle == [("Handle::read", "Handle.reads_", "warning"),
                      ("Handle::reopen", "Handle.fp_", "info")], handle
    add = next(f for f in data["findings"] if f["function"] == "Counter::add")
    assert "std::lock_guard" in add["message"]
    assert any("assignment to `Counter.n`" in n["message"] for n in add["notes"])


def test_the_bound_class_fixture_is_valid_cxx() -> None:
    pybind11 = pytest.importorskip("pybind11", reason="pybind11 headers are not installed")
    proc = subprocess.run(
        ["g++", "-std=c++17", "-fsyntax-only", f"-I{pybind11.get_include()}",
         f"-I{sysconfig.get_paths()['include']}", str(FIXTURES / "objstate" / "bound_counter.cpp")],
        capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def _clinic_project(tmp_path: Path, *, add_locked: bool) -> Path:
    proj = tmp_path / "clinic_counter"
    shutil.copytree(FIXTURES / "objstate" / "clinic_counter", proj)
    shutil.copy(RULE_FIXTURES / "ftcompat.h", proj)
    if not add_locked:
        wrapper = proj / "clinic" / "counter.c.h"
        text = wrapper.read_text()
        locked = ("    Py_BEGIN_CRITICAL_SECTION(self);\n"
                  "    return_value = counter_Counter_add_impl(self, n);\n"
                  "    Py_END_CRITICAL_SECTION();")
        assert locked in text
        wrapper.write_text(text.replace(locked, "    return_value = "
                                                "counter_Counter_add_impl(self, n);"))
    return proj


def test_argument_clinic_critical_sections_protect_the_impl_functions(
        scan_json: ScanJson, tmp_path: Path) -> None:
    _code, data = scan_json(str(_clinic_project(tmp_path, add_locked=True)),
                            "--select", "FT033,FT034,FT074")
    assert data["findings"] == []
    _code, data = scan_json(str(_clinic_project(tmp_path / "unlocked", add_locked=False)),
                            "--select", "FT033,FT034,FT074")
    got = sorted((f["path"], f["line"], f["function"]) for f in data["findings"])
    # add() lost its critical section: reported there, the line to change; total() still
    # holds its own section and is not reported for add's fault
    assert got == [("counter.c", 18, "counter_Counter_add_impl")], got


def test_a_type_documented_as_not_thread_safe_is_still_reported_and_told_so(
        scan_json: ScanJson, tmp_path: Path) -> None:
    proj = tmp_path / "iter"
    proj.mkdir()
    shutil.copy(RULE_FIXTURES / "FT074" / "fire.c", proj)
    shutil.copy(RULE_FIXTURES / "ftcompat.h", proj)
    _code, data = scan_json(str(proj), "--select", "FT034,FT074")
    assert {f["rule"] for f in data["findings"]} == {"FT034", "FT074"}
    assert all("documents itself as not thread-safe" in f["message"] for f in data["findings"])


_FIELD_HELPERS = """#include <Python.h>
#include "ftcompat.h"

typedef struct { long calls; } mod_state;
typedef struct { long acc; } ctx_t;

typedef struct {
    PyObject_HEAD
    PyObject *wrapped;
    mod_state *state;
    ctx_t ctx;
} ProxyObject;

static PyObject *acquire_field(PyObject *owner, PyObject **field)
{
    PyObject *value;
    Py_BEGIN_CRITICAL_SECTION(owner);
    value = Py_XNewRef(*field);
    Py_END_CRITICAL_SECTION();
    return value;
}

static void replace_field(PyObject *owner, PyObject **field, PyObject *value)
{
    Py_BEGIN_CRITICAL_SECTION(owner);
    Py_XSETREF(*field, Py_XNewRef(value));
    Py_END_CRITICAL_SECTION();
}

static void add_to(ctx_t *ctx, long n) { ctx->acc += n; }
static void bump(ctx_t *ctx) { add_to(ctx, 1); }
static long count_calls(mod_state *state) { return state->calls; }

static PyObject *Proxy_repr(ProxyObject *self)
{
    if (self->wrapped == NULL) {
        return PyUnicode_FromString("<unset>");
    }
    PyObject *w = acquire_field((PyObject *)self, &self->wrapped);
    PyObject *r = PyObject_Repr(w);
    Py_DECREF(w);
    return r;
}

static int Proxy_set(ProxyObject *self, PyObject *value, void *closure)
{
    replace_field((PyObject *)self, &self->wrapped, value);
    return 0;
}

static PyObject *Proxy_wrapped(ProxyObject *self, void *closure)
{
    return acquire_field((PyObject *)self, &self->wrapped);
}

static PyObject *Proxy_bump(ProxyObject *self, PyObject *unused)
{
    bump(&self->ctx);
    return PyLong_FromLong(count_calls(self->state));
}

static PyObject *Proxy_total(ProxyObject *self, PyObject *unused)
{
    return PyLong_FromLong(self->ctx.acc);
}

static PyGetSetDef Proxy_getset[] = {
    {"wrapped", (getter)Proxy_wrapped, (setter)Proxy_set, NULL, NULL},
    {NULL}
};
static PyMethodDef Proxy_methods[] = {
    {"bump", (PyCFunction)Proxy_bump, METH_NOARGS, NULL},
    {"total", (PyCFunction)Proxy_total, METH_NOARGS, NULL},
    {NULL}
};
static PyTypeObject ProxyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "m.Proxy",
    .tp_basicsize = sizeof(ProxyObject),
    .tp_repr = (reprfunc)Proxy_repr,
    .tp_methods = Proxy_methods,
    .tp_getset = Proxy_getset,
};
"""


def test_fields_handed_by_address_to_helpers_are_followed_with_their_locks(
        scan_json: ScanJson, tmp_path: Path) -> None:
    """wrapt 2.4's port: `acquire_field(self, &self->wrapped)` reads `*field` under a critical
    section on its `owner`, and a NULL test of the field uses nothing; so the proxy's uses of
    `wrapped` are locked. `bump(&self->ctx)` writes the context through two helpers, unlocked,
    while `total()` reads it; `count_calls(self->state)` only reads what it is given, so
    `state` (module state) is not the instance's to lock."""
    proj = tmp_path / "proxy"
    proj.mkdir()
    shutil.copy(RULE_FIXTURES / "ftcompat.h", proj)
    (proj / "proxy.c").write_text(_FIELD_HELPERS)
    _code, data = scan_json(str(proj), "--select", "FT033,FT034")
    got = sorted((f["rule"], f["line"], f["function"], f["symbol"]) for f in data["findings"])
    assert got == [("FT034", 58, "Proxy_bump", "Proxy.ctx"),
                   ("FT034", 64, "Proxy_total", "Proxy.ctx")], got
    bump = next(f for f in data["findings"] if f["function"] == "Proxy_bump")
    assert any("in `add_to`" in n["message"] and n["line"] == 30 for n in bump["notes"]), \
        bump["notes"]
    # the helper between them is a place for the lock as well
    assert any(n["message"].startswith("through `bump`") and n["line"] == 31
               for n in bump["notes"]), bump["notes"]
    # the helpers' own code, compiled as the tests' other fixtures are, is valid C
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    subprocess.run([cc, "-fsyntax-only", f"-I{sysconfig.get_paths()['include']}",
                    str(proj / "proxy.c")], check=True, capture_output=True)


def test_method_rows_name_their_function_through_casts_and_cast_macros() -> None:
    """CPython's own tables spell a row `_PyCFunction_CAST(deque_index)`; others cast twice."""
    src = ('static PyMethodDef deque_methods[] = {\n'
           '    {"index", _PyCFunction_CAST(deque_index), METH_FASTCALL, NULL},\n'
           '    {"rotate", (PyCFunction)(void(*)(void))deque_rotate, METH_FASTCALL, NULL},\n'
           '    {"pop", (PyCFunction)deque_pop, METH_NOARGS, NULL},\n    {NULL}\n};\n')
    t = _text(src)
    facts = module_facts(t.code, t.bare, t.index)
    assert dict(facts.method_tables)["deque_methods"] == (
        ("index", "deque_index"), ("rotate", "deque_rotate"), ("pop", "deque_pop"))


_OTHER_INSTANCES = """#include <Python.h>
#include "ftcompat.h"

typedef struct {
    PyObject_HEAD
    char *bits;
    Py_ssize_t nbits;
} BitsObject;

static PyTypeObject BitsType;

static int resize(BitsObject *self, Py_ssize_t n)
{
    char *grown = PyMem_Realloc(self->bits, (size_t)n);
    if (grown == NULL) {
        return -1;
    }
    self->bits = grown;
    self->nbits = n;
    return 0;
}

static PyObject *Bits_grow(BitsObject *self, PyObject *unused)
{
    Py_BEGIN_CRITICAL_SECTION(self);
    resize(self, self->nbits + 1);
    Py_END_CRITICAL_SECTION();
    Py_RETURN_NONE;
}

static PyObject *getmask(BitsObject *self, BitsObject *mask)
{
    Py_ssize_t n;
    Py_BEGIN_CRITICAL_SECTION(self);
    n = mask->nbits;
    Py_END_CRITICAL_SECTION();
    return PyLong_FromSsize_t(n + mask->bits[0]);
}

static PyObject *Bits_subscr(BitsObject *self, PyObject *item)
{
    return getmask(self, (BitsObject *)item);
}

static PyObject *binary(PyObject *args)
{
    BitsObject *a, *b;
    if (!PyArg_ParseTuple(args, "O!O!", &BitsType, &a, &BitsType, &b)) {
        return NULL;
    }
    return PyLong_FromSsize_t(a->nbits + b->bits[0]);
}

static PyObject *count_and(PyObject *module, PyObject *args)
{
    return binary(args);
}

static PyMappingMethods Bits_as_mapping = {0, (binaryfunc)Bits_subscr, 0};
static PyMethodDef Bits_methods[] = {
    {"grow", (PyCFunction)Bits_grow, METH_NOARGS, NULL},
    {NULL}
};
static PyTypeObject BitsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "m.Bits",
    .tp_basicsize = sizeof(BitsObject),
    .tp_as_mapping = &Bits_as_mapping,
    .tp_methods = Bits_methods,
};
static PyMethodDef module_methods[] = {
    {"count_and", count_and, METH_VARARGS, NULL},
    {NULL}
};
"""


def test_other_instances_a_method_or_a_module_helper_is_handed_are_instances_too(
        scan_json: ScanJson, tmp_path: Path) -> None:
    """bitarray 3.9 locks `getmask(self, mask)` on both: `mask` is another bitarray that a
    second thread can resize. And `count_and(module, args)` reaches two instances through the
    helper that parses its arguments."""
    proj = tmp_path / "bits"
    proj.mkdir()
    shutil.copy(RULE_FIXTURES / "ftcompat.h", proj)
    (proj / "bits.c").write_text(_OTHER_INSTANCES)
    _code, data = scan_json(str(proj), "--select", "FT034")
    got = {(f["function"], f["line"]) for f in data["findings"]}
    assert ("Bits_subscr", 42) in got, got  # mask's buffer, read outside the section
    subscr = next(f for f in data["findings"] if f["function"] == "Bits_subscr")
    assert any("also in `getmask`" in n["message"] or "in `getmask` called" in n["message"]
               for n in subscr["notes"]), subscr["notes"]
    assert ("count_and", 56) in got, got
    assert not any(f["function"] == "Bits_grow" for f in data["findings"])


def test_a_type_whose_instance_is_a_bare_pyobject_is_nobodys_view(scan_json: ScanJson,
                                                                   tmp_path: Path) -> None:
    """CPython's test types with `sizeof(PyObject)` instances made every `PyObject *` field of
    every other type a "view" of them (StringIO.write "on the hashinheritancetester it holds in
    decoder")."""
    proj = tmp_path / "bare"
    proj.mkdir()
    (proj / "m.c").write_text(
        "#include <Python.h>\n"
        "typedef struct { PyObject_HEAD PyObject *decoder; } HolderObject;\n"
        "typedef struct { PyObject_HEAD long n; } CountObject;\n"
        "static long peek(PyObject *o) { return ((CountObject *)o)->n; }\n"
        "static PyObject *holder_use(HolderObject *self, PyObject *u)\n"
        "{ return PyLong_FromLong(peek(self->decoder)); }\n"
        "static PyObject *bare_bump(PyObject *self, PyObject *u)\n"
        "{ ((CountObject *)self)->n++; Py_RETURN_NONE; }\n"
        "static PyMethodDef holder_methods[] = {{\"use\", (PyCFunction)holder_use, METH_NOARGS,"
        " NULL}, {NULL}};\n"
        "static PyTypeObject HolderType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = \"m.H\",\n"
        "    .tp_basicsize = sizeof(HolderObject), .tp_methods = holder_methods};\n"
        "static PyObject *bare_clear(PyObject *self, PyObject *u)\n"
        "{ Py_CLEAR(((HolderObject *)self)->decoder); Py_RETURN_NONE; }\n"
        "static PyMethodDef bare_methods[] = {{\"clear\", bare_clear, METH_NOARGS, NULL},"
        " {\"bump\", bare_bump, METH_NOARGS, NULL}, {NULL}};\n"
        "static PyTypeObject BareType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = \"m.B\",\n"
        "    .tp_basicsize = sizeof(PyObject), .tp_methods = bare_methods};\n")
    _code, data = scan_json(str(proj), "--select", "FT033,FT034")
    assert not any("it holds in" in f["message"] for f in data["findings"]), data["findings"]


_EARLY_EXIT = """#include <Python.h>
#include <pythread.h>

typedef struct {
    PyObject_HEAD
    PyThread_type_lock lock;
    char *buf;
    Py_ssize_t pos, size;
} DecObject;

#define ACQUIRE_LOCK(o) PyThread_acquire_lock((o)->lock, 1)
#define RELEASE_LOCK(o) PyThread_release_lock((o)->lock)

static PyObject *Dec_decode(DecObject *self, PyObject *arg)
{
    PyObject *result;
    ACQUIRE_LOCK(self);
    if (self->pos >= self->size) {
        result = PyBytes_FromStringAndSize(NULL, 0);
        RELEASE_LOCK(self);
        return result;
    }
    self->pos++;
    result = PyBytes_FromStringAndSize(self->buf + self->pos, 1);
    RELEASE_LOCK(self);
    return result;
}

static PyObject *Dec_fast(DecObject *self, PyObject *arg)
{
    if (arg == Py_None) {
        ACQUIRE_LOCK(self);
        Py_ssize_t n = self->size;
        RELEASE_LOCK(self);
        return PyLong_FromSsize_t(n);
    }
    self->pos = 0;
    Py_RETURN_NONE;
}

static PyMethodDef Dec_methods[] = {
    {"decode", (PyCFunction)Dec_decode, METH_O, NULL},
    {"fast", (PyCFunction)Dec_fast, METH_O, NULL},
    {NULL}
};
static PyTypeObject DecType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "m.Dec",
    .tp_basicsize = sizeof(DecObject),
    .tp_methods = Dec_methods,
};
"""


def test_a_lock_released_on_an_early_exit_is_still_held_after_it(scan_json: ScanJson,
                                                                   tmp_path: Path) -> None:
    """pybcj, isal, zlib-ng, pyppmd: `ACQUIRE; if (done) { RELEASE; return r; } ...` keeps the
    lock on the path that goes on (an independent review found 18 false errors from this).
    A lock taken and released inside the `if` itself covers nothing after it."""
    proj = tmp_path / "dec"
    proj.mkdir()
    (proj / "dec.c").write_text(_EARLY_EXIT)
    _code, data = scan_json(str(proj), "--select", "FT034")
    got = sorted((f["function"], f["line"]) for f in data["findings"]
                 if f["severity"] in ("error", "warning"))
    # decode() holds the lock at every access; fast() writes `pos` after its own if-block
    assert got == [("Dec_fast", 37)], data["findings"]


def test_a_flag_only_ever_set_to_one_constant_is_idempotent(scan_json: ScanJson,
                                                             tmp_path: Path) -> None:
    """isal and zlib-ng `GzipReader.close()` only store `closed = 1`: any interleaving ends the
    same. A field set to two values, or tested before it is set (epoll's `close()`: two callers
    both see the fd open and close it twice), still races."""
    proj = tmp_path / "flag"
    proj.mkdir()
    (proj / "m.c").write_text(
        "#include <Python.h>\n"
        "typedef struct { PyObject_HEAD int closed; int mode; int fd; } RObject;\n"
        "static PyObject *r_close(RObject *self, PyObject *u) { if (!self->closed) "
        "self->closed = 1; Py_RETURN_NONE; }\n"
        "static PyObject *r_closed(RObject *self, PyObject *u) "
        "{ return PyBool_FromLong(self->closed && self->mode); }\n"
        "static PyObject *r_text(RObject *self, PyObject *u) { self->mode = 1; Py_RETURN_NONE; }\n"
        "static PyObject *r_binary(RObject *self, PyObject *u) { self->mode = 0; "
        "Py_RETURN_NONE; }\n"
        "static PyObject *r_detach(RObject *self, PyObject *u)\n"
        "{ if (self->fd >= 0) { int fd = self->fd; self->fd = -1; (void)fd; } Py_RETURN_NONE; }\n"
        "static PyMethodDef r_methods[] = {\n"
        "    {\"detach\", (PyCFunction)r_detach, METH_NOARGS, NULL},\n"
        "    {\"close\", (PyCFunction)r_close, METH_NOARGS, NULL},\n"
        "    {\"closed\", (PyCFunction)r_closed, METH_NOARGS, NULL},\n"
        "    {\"text\", (PyCFunction)r_text, METH_NOARGS, NULL},\n"
        "    {\"binary\", (PyCFunction)r_binary, METH_NOARGS, NULL},\n    {NULL}\n};\n"
        "static PyTypeObject RType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = \"m.R\",\n"
        "    .tp_basicsize = sizeof(RObject), .tp_methods = r_methods};\n")
    _code, data = scan_json(str(proj), "--select", "FT034")
    fields = {f["symbol"] for f in data["findings"]}
    assert "R.mode" in fields and "R.fd" in fields, data["findings"]
    assert "R.closed" not in fields, data["findings"]
    assert not any("`closed`" in f["message"] for f in data["findings"]), data["findings"]


def test_a_clinic_wrapper_that_reads_the_instance_names_its_impl(scan_json: ScanJson,
                                                                 tmp_path: Path) -> None:
    """CPython 3.11's `StringIO.truncate` wrapper reads `self->pos` for its default argument,
    so the finding is made in the generated wrapper; the `_impl` (where 3.13 put the critical
    section) is named in a note."""
    proj = tmp_path / "sio"
    (proj / "clinic").mkdir(parents=True)
    (proj / "clinic" / "sio.c.h").write_text(
        "#define SIO_TRUNCATE_METHODDEF {\"truncate\", (PyCFunction)sio_truncate, METH_NOARGS,"
        " NULL},\n"
        "static PyObject *sio_truncate(SioObject *self, PyObject *u)\n"
        "{ Py_ssize_t size = self->pos; return sio_truncate_impl(self, size); }\n")
    (proj / "sio.c").write_text(
        "#include <Python.h>\n"
        "typedef struct { PyObject_HEAD Py_ssize_t pos; Py_ssize_t size; } SioObject;\n"
        "static PyObject *sio_truncate_impl(SioObject *self, Py_ssize_t size);\n"
        "#include \"clinic/sio.c.h\"\n"
        "static PyObject *sio_truncate_impl(SioObject *self, Py_ssize_t size)\n"
        "{\n    if (size < self->size) {\n        self->size = size;\n    }\n"
        "    return PyLong_FromSsize_t(size);\n}\n"
        "static PyObject *sio_seek(SioObject *self, PyObject *arg)\n"
        "{ self->pos = PyLong_AsSsize_t(arg); Py_RETURN_NONE; }\n"
        "static PyMethodDef sio_methods[] = {SIO_TRUNCATE_METHODDEF\n"
        "    {\"seek\", (PyCFunction)sio_seek, METH_O, NULL}, {NULL}};\n"
        "static PyTypeObject SioType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = \"m.S\",\n"
        "    .tp_basicsize = sizeof(SioObject), .tp_methods = sio_methods};\n")
    _code, data = scan_json(str(proj), "--select", "FT034")
    trunc = [f for f in data["findings"] if f["function"] == "sio_truncate"]
    assert trunc, data["findings"]
    assert any("also in `sio_truncate_impl`" in n["message"] and n["path"] == "sio.c"
               for f in trunc for n in f["notes"]), trunc


def test_types_sharing_an_instance_struct_name_each_entry_point_by_its_own_type(
        scan_json: ScanJson, tmp_path: Path) -> None:
    """pybcj's SparcDecoder and BCJEncoder share one struct and are judged together; a
    SparcDecoder method is still called `SparcDecoder.decode()`, not `BCJEncoder.decode()`."""
    proj = tmp_path / "bcj"
    proj.mkdir()
    (proj / "m.c").write_text(
        "#include <Python.h>\n"
        "typedef struct { PyObject_HEAD Py_ssize_t pos; } BCJObject;\n"
        "static PyObject *enc_encode(BCJObject *self, PyObject *u) { self->pos++; "
        "Py_RETURN_NONE; }\n"
        "static PyObject *dec_decode(BCJObject *self, PyObject *u) "
        "{ return PyLong_FromSsize_t(self->pos + 1); }\n"
        "static PyMethodDef enc_methods[] = {{\"encode\", (PyCFunction)enc_encode, METH_NOARGS,"
        " NULL}, {NULL}};\n"
        "static PyMethodDef dec_methods[] = {{\"decode\", (PyCFunction)dec_decode, METH_NOARGS,"
        " NULL}, {NULL}};\n"
        "static PyTypeObject EncType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = \"m.BCJEncoder\","
        "\n    .tp_basicsize = sizeof(BCJObject), .tp_methods = enc_methods};\n"
        "static PyTypeObject DecType = {PyVarObject_HEAD_INIT(NULL, 0)"
        " .tp_name = \"m.SparcDecoder\",\n"
        "    .tp_basicsize = sizeof(BCJObject), .tp_methods = dec_methods};\n")
    _code, data = scan_json(str(proj), "--select", "FT034")
    decode = [f for f in data["findings"] if f["function"] == "dec_decode"]
    assert decode and decode[0]["message"].startswith("`SparcDecoder.decode()`"), decode


_HASHLIB = """\
#include <Python.h>
typedef struct { PyObject_HEAD PyMutex mutex; PyMutex other; int use_mutex; long st[4]; } HObject;
/* CPython 3.13's hashlib.h: the lock the wrapper takes is the one update() takes by name */
#define ENTER_H(obj) if ((obj)->use_mutex) { PyMutex_Lock(&(obj)->mutex); }
#define LEAVE_H(obj) if ((obj)->use_mutex) { PyMutex_Unlock(&(obj)->mutex); }
#define ENTER_OTHER(obj) PyMutex_Lock(&(obj)->other)
#define LEAVE_OTHER(obj) PyMutex_Unlock(&(obj)->other)
static PyObject *h_update(HObject *self, PyObject *arg)
{
    long n = PyLong_AsLong(arg);
    if (!self->use_mutex && n > 2048) {
        self->use_mutex = 1;
    }
    if (self->use_mutex) {
        PyMutex_Lock(&self->mutex);
        self->st[0] += n;
        PyMutex_Unlock(&self->mutex);
    }
    Py_RETURN_NONE;
}
static PyObject *h_digest(HObject *self, PyObject *u)
{
    ENTER_H(self);
    long v = self->st[0];
    LEAVE_H(self);
    return PyLong_FromLong(v);
}
static PyObject *h_peek(HObject *self, PyObject *u)
{
    ENTER_OTHER(self);
    long v = self->st[0];
    LEAVE_OTHER(self);
    return PyLong_FromLong(v);
}
static PyMethodDef h_methods[] = {
    {"update", (PyCFunction)h_update, METH_O, NULL},
    {"digest", (PyCFunction)h_digest, METH_NOARGS, NULL},
    {"peek", (PyCFunction)h_peek, METH_NOARGS, NULL},
    {NULL}
};
static PyTypeObject HType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = "m.H",
    .tp_basicsize = sizeof(HObject), .tp_methods = h_methods};
"""


def test_a_lock_wrapper_macro_takes_the_lock_its_body_names(scan_json: ScanJson,
                                                            tmp_path: Path) -> None:
    """CPython 3.13's hashlib: `ENTER_HASHLIB(self)` expands to `PyMutex_Lock(&(self)->mutex)`,
    the lock `update()` takes by name; its `use_mutex` flag is only ever set to 1 by a writer
    that tests it first (`if (self->use_mutex)` is a test, not a use). A wrapper around another
    mutex still races with `update()`."""
    proj = tmp_path / "hl"
    proj.mkdir()
    (proj / "m.c").write_text(_HASHLIB)
    _code, data = scan_json(str(proj), "--select", "FT034")
    got = sorted((f["function"], f["symbol"]) for f in data["findings"])
    assert got == [("h_peek", "H.st")], data["findings"]


def test_plain_stores_of_a_flag_are_information_a_bitfield_or_a_test_and_set_are_not(
        scan_json: ScanJson, tmp_path: Path) -> None:
    """coverage's `reset_activity()` stores `activity = FALSE` while the tracer stores TRUE, and
    zstandard's `__exit__` stores `entered = 0`: the last store wins, as it would under a lock
    (an independent review judged these false). persistent's `estimated_size:24` shares its word
    with `state:8`: a store rewrites both, so it stays a warning (a read of it is only stale);
    so does `__enter__`'s test-and-set of `entered`."""
    proj = tmp_path / "flags"
    proj.mkdir()
    (proj / "m.c").write_text(
        "#include <Python.h>\n"
        "typedef int BOOL;\n"
        "extern void pwm_set_frequency(long f);\n#include <unistd.h>\n"
        "typedef struct { PyObject_HEAD BOOL activity; int entered; long freq; int fd;\n"
        "    signed state:8; unsigned estimated_size:24; } TObject;\n"
        "static PyObject *t_call(TObject *self, PyObject *a, PyObject *k)\n"
        "{ self->activity = 1; Py_RETURN_NONE; }\n"
        "static PyObject *t_activity(TObject *self, PyObject *u)\n"
        "{ return PyBool_FromLong(self->activity); }\n"
        "static PyObject *t_reset(TObject *self, PyObject *u)\n"
        "{ self->activity = 0; Py_RETURN_NONE; }\n"
        "static PyObject *t_enter(TObject *self, PyObject *u) {\n"
        "    if (self->entered) { PyErr_SetString(PyExc_ValueError, \"again\"); return NULL; }\n"
        "    self->entered = 1; Py_RETURN_NONE; }\n"
        "static PyObject *t_exit(TObject *self, PyObject *u)\n"
        "{ self->entered = 0; Py_RETURN_NONE; }\n"
        "static PyObject *t_size(TObject *self, PyObject *v)\n"
        "{ self->estimated_size = PyLong_AsLong(v); Py_RETURN_NONE; }\n"
        "static PyObject *t_ghost(TObject *self, PyObject *u)\n"
        "{ self->state = -1; Py_RETURN_NONE; }\n"
        "static PyObject *t_freq(TObject *self, PyObject *v)\n"
        "{ self->freq = PyLong_AsLong(v); pwm_set_frequency(self->freq); Py_RETURN_NONE; }\n"
        "static PyObject *t_open(TObject *self, PyObject *u)\n"
        "{ self->fd = dup(0); fsync(self->fd); Py_RETURN_NONE; }\n"
        "static PyObject *t_close(TObject *self, PyObject *u)\n"
        "{ close(self->fd); self->fd = -1; Py_RETURN_NONE; }\n"
        "static PyObject *t_changed(TObject *self, PyObject *u)\n"
        "{ return PyBool_FromLong(self->estimated_size > 0); }\n"
        "static PyMethodDef t_methods[] = {\n"
        "    {\"activity\", (PyCFunction)t_activity, METH_NOARGS, NULL},\n"
        "    {\"reset_activity\", (PyCFunction)t_reset, METH_NOARGS, NULL},\n"
        "    {\"__enter__\", (PyCFunction)t_enter, METH_NOARGS, NULL},\n"
        "    {\"__exit__\", (PyCFunction)t_exit, METH_VARARGS, NULL},\n"
        "    {\"set_size\", (PyCFunction)t_size, METH_O, NULL},\n"
        "    {\"ghost\", (PyCFunction)t_ghost, METH_NOARGS, NULL},\n"
        "    {\"changed\", (PyCFunction)t_changed, METH_NOARGS, NULL},\n"
        "    {\"ChangeFrequency\", (PyCFunction)t_freq, METH_O, NULL},\n"
        "    {\"open\", (PyCFunction)t_open, METH_NOARGS, NULL},\n"
        "    {\"close\", (PyCFunction)t_close, METH_NOARGS, NULL},\n    {NULL}\n};\n"
        "static PyTypeObject TType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = \"m.T\",\n"
        "    .tp_basicsize = sizeof(TObject), .tp_call = (ternaryfunc)t_call,\n"
        "    .tp_methods = t_methods};\n")
    _code, data = scan_json(str(proj), "--select", "FT034")
    loud = sorted(f["function"] for f in data["findings"] if f["severity"] != "info")
    quiet = sorted(f["function"] for f in data["findings"] if f["severity"] == "info")
    # spidev's `open()` stores a file descriptor that `close()` closes: a handle, not a setting
    assert loud == ["t_close", "t_enter", "t_open", "t_size"], data["findings"]
    size = next(f for f in data["findings"] if f["function"] == "t_size")
    assert "rewrites the bits it shares with `state`" in size["message"], size["message"]
    # a stale read of a bitfield is only stale
    # RPi.GPIO's `ChangeFrequency()` stores the setting and hands it on: each read sees a
    # value some caller set
    assert {"t_activity", "t_reset", "t_exit", "t_call", "t_changed", "t_freq"} <= set(quiet), \
        data["findings"]


def test_a_null_check_in_a_projects_macro_uses_nothing(scan_json: ScanJson,
                                                        tmp_path: Path) -> None:
    """apsw's `CHECK_CLOSED(self, NULL)` only tests `!(connection)->db`: an entry point that
    does nothing more with `db` does not race on it; one that goes on to use it does, and the
    notes name `close()`, which frees it, before a re-run `__init__`."""
    proj = tmp_path / "chk"
    proj.mkdir()
    (proj / "m.c").write_text(
        "#include <Python.h>\n#include <stdlib.h>\n"
        "typedef struct { int x; } DB;\n"
        "typedef struct { PyObject_HEAD DB *db; } CObject;\n"
        "#define CHECK_CLOSED(c, e) do { if (!(c) || !(c)->db) { return e; } } while (0)\n"
        "static int c_init(CObject *self, PyObject *a, PyObject *k)\n"
        "{ self->db = malloc(sizeof(DB)); return 0; }\n"
        "static PyObject *c_close(CObject *self, PyObject *u)\n"
        "{ free(self->db); self->db = NULL; Py_RETURN_NONE; }\n"
        "static PyObject *c_trace(CObject *self, PyObject *u)\n"
        "{ CHECK_CLOSED(self, NULL); Py_RETURN_NONE; }\n"
        "static PyObject *c_use(CObject *self, PyObject *u)\n"
        "{ CHECK_CLOSED(self, NULL); return PyLong_FromLong(self->db->x); }\n"
        "static PyMethodDef c_methods[] = {\n"
        "    {\"close\", (PyCFunction)c_close, METH_NOARGS, NULL},\n"
        "    {\"set_trace\", (PyCFunction)c_trace, METH_NOARGS, NULL},\n"
        "    {\"use\", (PyCFunction)c_use, METH_NOARGS, NULL},\n    {NULL}\n};\n"
        "static PyTypeObject CType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = \"m.C\",\n"
        "    .tp_basicsize = sizeof(CObject), .tp_init = (initproc)c_init,\n"
        "    .tp_methods = c_methods};\n")
    _code, data = scan_json(str(proj), "--select", "FT034")
    by_fn = {f["function"]: f for f in data["findings"]}
    assert "c_trace" not in by_fn and "c_use" in by_fn, data["findings"]
    writers = [n["line"] for n in by_fn["c_use"]["notes"] if "`db`" in n["message"]]
    assert writers and writers[0] == 9, by_fn["c_use"]["notes"]  # close(), not __init__


def test_a_shared_nodes_reference_count_races_with_other_counts_not_with_readers(
        scan_json: ScanJson, tmp_path: Path) -> None:
    """pyrsistent's PVector never changes its `root` once published; `append()` only bumps
    the shared node's count with `INC_NODE_REF_COUNT(self->root)` (a macro over
    `NODE_REF_COUNT(n)`, `(n)->refCount`). Two appends lose a count (real, and reported);
    a reader of the node's items does not race with it (an independent review found four
    false warnings from this)."""
    proj = tmp_path / "pvec"
    proj.mkdir()
    (proj / "m.c").write_text(
        "#include <Python.h>\n"
        "typedef struct { void *items[32]; unsigned int refCount; } VNode;\n"
        "#define NODE_REF_COUNT(n) ((n)->refCount)\n"
        "#define INC_NODE_REF_COUNT(n) (NODE_REF_COUNT(n)++)\n"
        "typedef struct { PyObject_HEAD VNode *root; Py_ssize_t count; } PVector;\n"
        "static PyObject *newvec(VNode *root, Py_ssize_t n);\n"
        "static VNode *path_to(VNode *node) { INC_NODE_REF_COUNT(node); return node; }\n"
        "static PyObject *pv_append(PVector *self, PyObject *o)\n"
        "{ INC_NODE_REF_COUNT(self->root); return newvec(self->root, self->count + 1); }\n"
        "static PyObject *pv_extend(PVector *self, PyObject *o)\n"
        "{ return newvec(path_to(self->root), self->count); }\n"
        "static PyObject *pv_get(PVector *self, PyObject *i)\n"
        "{ return Py_NewRef((PyObject *)self->root->items[PyLong_AsLong(i)]); }\n"
        "static PyMethodDef pv_methods[] = {\n"
        "    {\"append\", (PyCFunction)pv_append, METH_O, NULL},\n"
        "    {\"extend\", (PyCFunction)pv_extend, METH_O, NULL},\n"
        "    {\"get\", (PyCFunction)pv_get, METH_O, NULL},\n    {NULL}\n};\n"
        "static PyTypeObject PVType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = \"m.PVector\",\n"
        "    .tp_basicsize = sizeof(PVector), .tp_methods = pv_methods};\n")
    _code, data = scan_json(str(proj), "--select", "FT033,FT034")
    loud = {f["function"]: f for f in data["findings"] if f["severity"] != "info"}
    assert set(loud) == {"pv_append"}, data["findings"]
    assert any("reference-counted with `INC_NODE_REF_COUNT`" in n["message"]
               for n in loud["pv_append"]["notes"]), loud["pv_append"]["notes"]


def test_a_flag_read_for_a_fast_exit_and_tested_again_under_the_lock_is_not_a_race(
        scan_json: ScanJson, tmp_path: Path) -> None:
    """psycopg2's `close()`: `if (self->closed == 1) return;` without the lock, then the lock
    and the same test (an independent review judged the unlocked read benign). A count read
    without the lock and written under it is a lost update, and stays one."""
    proj = tmp_path / "dc"
    proj.mkdir()
    (proj / "m.c").write_text(
        "#include <Python.h>\n#include <pthread.h>\n"
        "typedef struct { PyObject_HEAD pthread_mutex_t lock; long int closed; long n; } "
        "CObject;\n"
        "static PyObject *c_close(CObject *self, PyObject *u)\n"
        "{\n"
        "    if (self->closed == 1) { Py_RETURN_NONE; }\n"
        "    pthread_mutex_lock(&self->lock);\n"
        "    if (self->closed != 1) { self->closed = 1; }\n"
        "    pthread_mutex_unlock(&self->lock);\n"
        "    Py_RETURN_NONE;\n"
        "}\n"
        "static PyObject *c_open(CObject *self, PyObject *u)\n"
        "{ pthread_mutex_lock(&self->lock); self->closed = 0; "
        "pthread_mutex_unlock(&self->lock); Py_RETURN_NONE; }\n"
        "static PyObject *c_bump(CObject *self, PyObject *u)\n"
        "{\n"
        "    long n = self->n;\n"
        "    pthread_mutex_lock(&self->lock);\n"
        "    self->n = n + 1;\n"
        "    pthread_mutex_unlock(&self->lock);\n"
        "    Py_RETURN_NONE;\n"
        "}\n"
        "static PyMethodDef c_methods[] = {\n"
        "    {\"close\", (PyCFunction)c_close, METH_NOARGS, NULL},\n"
        "    {\"open\", (PyCFunction)c_open, METH_NOARGS, NULL},\n"
        "    {\"bump\", (PyCFunction)c_bump, METH_NOARGS, NULL},\n    {NULL}\n};\n"
        "static PyTypeObject CType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = \"m.C\",\n"
        "    .tp_basicsize = sizeof(CObject), .tp_methods = c_methods};\n")
    _code, data = scan_json(str(proj), "--select", "FT034")
    assert sorted(f["function"] for f in data["findings"]) == ["c_bump"], data["findings"]


def test_a_module_function_handing_its_new_instance_to_the_initialiser_owns_it(
        scan_json: ScanJson, tmp_path: Path) -> None:
    """mysqlclient's `connect(*args)` allocates a connection and hands it, with its arguments,
    to the initialiser that `__init__` also runs: nobody else has that connection yet. The
    same initialiser run as `__init__` on a live object still races with `close()`."""
    proj = tmp_path / "my"
    proj.mkdir()
    (proj / "m.c").write_text(
        "#include <Python.h>\n"
        "typedef struct { PyObject_HEAD PyObject *converter; } ConnObject;\n"
        "static PyTypeObject ConnType;\n"
        "static int conn_initialize(ConnObject *self, PyObject *args, PyObject *kw)\n"
        "{\n"
        "    PyObject *conv = NULL;\n"
        "    if (!PyArg_ParseTuple(args, \"|O\", &conv)) { return -1; }\n"
        "    Py_XSETREF(self->converter, Py_XNewRef(conv));\n"
        "    return 0;\n"
        "}\n"
        "static PyObject *conn_close(ConnObject *self, PyObject *u)\n"
        "{ Py_CLEAR(self->converter); Py_RETURN_NONE; }\n"
        "static PyObject *mod_connect(PyObject *module, PyObject *args, PyObject *kw)\n"
        "{\n"
        "    ConnObject *c = (ConnObject *)ConnType.tp_alloc(&ConnType, 0);\n"
        "    if (c == NULL) { return NULL; }\n"
        "    if (conn_initialize(c, args, kw)) { Py_DECREF(c); return NULL; }\n"
        "    return (PyObject *)c;\n"
        "}\n"
        "static PyMethodDef conn_methods[] = {\n"
        "    {\"close\", (PyCFunction)conn_close, METH_NOARGS, NULL},\n    {NULL}\n};\n"
        "static PyTypeObject ConnType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = \"m.Conn\",\n"
        "    .tp_basicsize = sizeof(ConnObject), .tp_init = (initproc)conn_initialize,\n"
        "    .tp_methods = conn_methods};\n"
        "static PyMethodDef mod_methods[] = {\n"
        "    {\"connect\", (PyCFunction)mod_connect, METH_VARARGS | METH_KEYWORDS, NULL},\n"
        "    {NULL}\n};\n")
    _code, data = scan_json(str(proj), "--select", "FT033")
    fns = {f["function"] for f in data["findings"]}
    assert "mod_connect" not in fns, data["findings"]
    assert fns & {"conn_initialize", "conn_close"}, data["findings"]


def test_a_field_handed_by_address_in_parentheses_is_handed_by_address(
        scan_json: ScanJson, tmp_path: Path) -> None:
    """mysqlclient writes `mysql_close(&(self->connection))`: as much a change of the embedded
    `MYSQL` as `mysql_close(&self->connection)`, and `commit()` on it races with `close()`."""
    proj = tmp_path / "mc"
    proj.mkdir()
    (proj / "m.c").write_text(
        "#include <Python.h>\n"
        "typedef struct { int x; } MYSQL;\n"
        "extern int mysql_close(MYSQL *m);\nextern int mysql_commit(MYSQL *m);\n"
        "typedef struct { PyObject_HEAD MYSQL connection; int open; } CObject;\n"
        "#define check_connection(c) if (!(c->open)) { return NULL; };\n"
        "static PyObject *c_close(CObject *self, PyObject *u)\n"
        "{ check_connection(self); mysql_close(&(self->connection)); self->open = 0;"
        " Py_RETURN_NONE; }\n"
        "static PyObject *c_commit(CObject *self, PyObject *u)\n"
        "{ check_connection(self); mysql_commit(&(self->connection)); Py_RETURN_NONE; }\n"
        "static PyMethodDef c_methods[] = {\n"
        "    {\"close\", (PyCFunction)c_close, METH_NOARGS, NULL},\n"
        "    {\"commit\", (PyCFunction)c_commit, METH_NOARGS, NULL}, {NULL}};\n"
        "static PyTypeObject CType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = \"m.C\",\n"
        "    .tp_basicsize = sizeof(CObject), .tp_methods = c_methods};\n")
    _code, data = scan_json(str(proj), "--select", "FT034")
    commit = [f for f in data["findings"] if f["function"] == "c_commit"]
    assert commit and commit[0]["severity"] == "warning", data["findings"]
    assert any("handed by address to `mysql_close`" in n["message"]
               for n in commit[0]["notes"]), commit[0]["notes"]


def test_an_object_a_holder_makes_by_calling_its_type_is_its_own_until_stored(
        scan_json: ScanJson, tmp_path: Path) -> None:
    """ijson's `basic_parse_async.__init__` makes its reading generator with
    `PyObject_CallObject((PyObject *)&AsyncReadingGeneratorType, args)` and sets its `coro` on
    the next line: no other thread has that generator yet (an independent review found four
    false errors from this). `reset()` on a holder in use changes a shared generator."""
    proj = tmp_path / "hold"
    proj.mkdir()
    (proj / "m.c").write_text(
        "#include <Python.h>\n"
        "typedef struct { PyObject_HEAD PyObject *coro; } GenObject;\n"
        "typedef struct { PyObject_HEAD GenObject *gen; } HolderObject;\n"
        "static PyTypeObject GenType;\n"
        "static void gen_add(GenObject *g, PyObject *c) { Py_XSETREF(g->coro, Py_NewRef(c)); }\n"
        "static PyObject *gen_send(GenObject *self, PyObject *v)\n"
        "{ return PyObject_CallOneArg(self->coro, v); }\n"
        "static int holder_init(HolderObject *self, PyObject *args, PyObject *kw)\n"
        "{\n"
        "    self->gen = (GenObject *)PyObject_CallObject((PyObject *)&GenType, args);\n"
        "    if (self->gen == NULL) { return -1; }\n"
        "    gen_add(self->gen, Py_None);\n"
        "    return 0;\n"
        "}\n"
        "static PyObject *holder_reset(HolderObject *self, PyObject *c)\n"
        "{ gen_add(self->gen, c); Py_RETURN_NONE; }\n"
        "static PyMethodDef gen_methods[] = {\n"
        "    {\"send\", (PyCFunction)gen_send, METH_O, NULL}, {NULL}};\n"
        "static PyTypeObject GenType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = \"m.G\",\n"
        "    .tp_basicsize = sizeof(GenObject), .tp_methods = gen_methods};\n"
        "static PyMethodDef holder_methods[] = {\n"
        "    {\"reset\", (PyCFunction)holder_reset, METH_O, NULL}, {NULL}};\n"
        "static PyTypeObject HolderType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = \"m.H\",\n"
        "    .tp_basicsize = sizeof(HolderObject), .tp_init = (initproc)holder_init,\n"
        "    .tp_methods = holder_methods};\n")
    _code, data = scan_json(str(proj), "--select", "FT033")
    fns = {f["function"] for f in data["findings"] if "it holds in" in f["message"]}
    assert "holder_init" not in fns and "holder_reset" in fns, data["findings"]


def test_members_of_an_embedded_struct_are_apart_from_each_other(scan_json: ScanJson,
                                                                 tmp_path: Path) -> None:
    """gmpy2's `context.ctx` is one struct: `nan()` reads `ctx.mpfr_prec` while the arithmetic
    only updates the `ctx.underflow` flags (an independent review judged such findings false).
    A read of the member that is written, or of the whole struct, still races."""
    proj = tmp_path / "ctx"
    proj.mkdir()
    (proj / "m.c").write_text(
        "#include <Python.h>\n"
        "typedef struct { long mpfr_prec; int underflow; } gmpy_context;\n"
        "typedef struct { PyObject_HEAD gmpy_context ctx; } CtxObject;\n"
        "static PyObject *c_abs(CtxObject *self, PyObject *x)\n"
        "{ self->ctx.underflow |= 1; Py_RETURN_NONE; }\n"
        "static PyObject *c_prec(CtxObject *self, PyObject *u)\n"
        "{ return PyLong_FromLong(self->ctx.mpfr_prec); }\n"
        "static PyObject *c_flags(CtxObject *self, PyObject *u)\n"
        "{ return PyLong_FromLong(self->ctx.underflow); }\n"
        "static PyMethodDef c_methods[] = {\n"
        "    {\"abs\", (PyCFunction)c_abs, METH_O, NULL},\n"
        "    {\"prec\", (PyCFunction)c_prec, METH_NOARGS, NULL},\n"
        "    {\"flags\", (PyCFunction)c_flags, METH_NOARGS, NULL}, {NULL}};\n"
        "static PyTypeObject CType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = \"m.Ctx\",\n"
        "    .tp_basicsize = sizeof(CtxObject), .tp_methods = c_methods};\n")
    _code, data = scan_json(str(proj), "--select", "FT034")
    fns = {f["function"] for f in data["findings"]}
    assert "c_prec" not in fns and {"c_abs", "c_flags"} <= fns, data["findings"]


def test_a_helper_that_hands_back_the_instance_it_is_given_is_followed(
        scan_json: ScanJson, tmp_path: Path) -> None:
    """pyodbc's methods start with `Connection* cnxn = Connection_Validate(self)`, which tests
    the handle for `SQL_NULL_HANDLE` and returns `self` cast: `cnxn->hdbc` is the instance's
    handle, which `close()` frees. A read of a typedef'd integer (`uintptr_t`, ODBC's
    `SQLUINTEGER`) is a stale read of a scalar, information."""
    proj = tmp_path / "odbc"
    proj.mkdir()
    (proj / "m.c").write_text(
        "#include <Python.h>\n"
        "typedef void *HDBC;\n#define SQL_NULL_HANDLE 0\ntypedef unsigned int SQLUINTEGER;\n"
        "extern int SQLGetInfo(HDBC h, int what);\nextern void SQLFreeHandle(HDBC h);\n"
        "typedef struct { PyObject_HEAD HDBC hdbc; uintptr_t nAutoCommit; SQLUINTEGER timeout; }"
        " Connection;\n"
        "static Connection *Connection_Validate(PyObject *self)\n"
        "{\n"
        "    Connection *cnxn = (Connection *)self;\n"
        "    if (cnxn->hdbc == SQL_NULL_HANDLE) { return 0; }\n"
        "    return cnxn;\n"
        "}\n"
        "static PyObject *c_getinfo(PyObject *self, PyObject *a)\n"
        "{ Connection *cnxn = Connection_Validate(self); if (!cnxn) { return 0; }\n"
        "  return PyLong_FromLong(SQLGetInfo(cnxn->hdbc, 1)); }\n"
        "static PyObject *c_close(PyObject *self, PyObject *a)\n"
        "{ Connection *cnxn = (Connection *)self; SQLFreeHandle(cnxn->hdbc);\n"
        "  cnxn->hdbc = SQL_NULL_HANDLE; cnxn->nAutoCommit = 0; cnxn->timeout = 0;"
        " Py_RETURN_NONE; }\n"
        "static PyObject *c_autocommit(PyObject *self, PyObject *a)\n"
        "{ Connection *cnxn = Connection_Validate(self); if (!cnxn) { return 0; }\n"
        "  return PyLong_FromLong((long)cnxn->nAutoCommit + (long)cnxn->timeout); }\n"
        "static PyMethodDef c_methods[] = {\n"
        "    {\"getinfo\", c_getinfo, METH_NOARGS, NULL},\n"
        "    {\"autocommit\", c_autocommit, METH_NOARGS, NULL},\n"
        "    {\"close\", c_close, METH_NOARGS, NULL}, {NULL}};\n"
        "static PyTypeObject CType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = \"m.Connection\",\n"
        "    .tp_basicsize = sizeof(Connection), .tp_methods = c_methods};\n")
    _code, data = scan_json(str(proj), "--select", "FT034")
    by_fn = {f["function"]: f for f in data["findings"]}
    assert by_fn["c_getinfo"]["severity"] == "warning", data["findings"]
    assert by_fn["c_getinfo"]["line"] == 16, by_fn["c_getinfo"]  # `cnxn->hdbc`
    assert "c_autocommit" not in by_fn or by_fn["c_autocommit"]["severity"] == "info"


def test_stale_reads_of_settings_and_tests_of_a_handle_are_information(
        scan_json: ScanJson, tmp_path: Path) -> None:
    """An independent review judged these benign: sysv_ipc's `acquire()` copies `op_flags` and
    `id` once (set by different setters); its `attached()` tests `if (self->address)`;
    posix_ipc tests `SEM_FAILED == p->pSemaphore`. Their writers' own races stay reported, and
    so does a use of the handle after the test. (`Py_SIZE(self)` stays a size: recordclass's
    slots read it before items the tool does not always see.)"""
    proj = tmp_path / "ipc"
    proj.mkdir()
    (proj / "m.c").write_text(
        "#include <Python.h>\n#include <semaphore.h>\n"
        "typedef struct { PyObject_VAR_HEAD short op_flags; int id; long h1, h2;\n"
        "    void *address;\n"
        "    sem_t *pSemaphore; } SemObject;\n"
        "static PyObject *s_acquire(SemObject *self, PyObject *u)\n"
        "{ short f = self->op_flags; int id = self->id; return PyLong_FromLong(f + id); }\n"
        "static PyObject *s_undo(SemObject *self, PyObject *v)\n"
        "{ self->op_flags |= 1; Py_RETURN_NONE; }\n"
        "static PyObject *s_rekey(SemObject *self, PyObject *v)\n"
        "{ self->id = (int)PyLong_AsLong(v); Py_RETURN_NONE; }\n"
        "static PyObject *s_update(SemObject *self, PyObject *v)\n"
        "{ self->h1 += 3; self->h2 ^= self->h1; Py_RETURN_NONE; }\n"
        "static PyObject *s_digest(SemObject *self, PyObject *v)\n"
        "{ return PyLong_FromLong(self->h1 ^ self->h2); }\n"
        "static PyObject *s_attached(SemObject *self, PyObject *u)\n"
        "{ if (self->address) { Py_RETURN_TRUE; } Py_RETURN_FALSE; }\n"
        "static PyObject *s_valid(SemObject *self, PyObject *u)\n"
        "{ if (SEM_FAILED == self->pSemaphore) { Py_RETURN_FALSE; } Py_RETURN_TRUE; }\n"
        "static PyObject *s_peek(SemObject *self, PyObject *u)\n"
        "{ if (self->address) { return PyLong_FromLong(*(long *)self->address); }"
        " Py_RETURN_NONE; }\n"
        "static PyObject *s_detach(SemObject *self, PyObject *u)\n"
        "{ free(self->address); self->address = NULL; sem_close(self->pSemaphore);\n"
        "  self->pSemaphore = SEM_FAILED; Py_SET_SIZE(self, 0); Py_RETURN_NONE; }\n"
        "static Py_ssize_t s_len(SemObject *self) { return Py_SIZE(self); }\n"
        "static PyMethodDef s_methods[] = {\n"
        "    {\"acquire\", (PyCFunction)s_acquire, METH_NOARGS, NULL},\n"
        "    {\"undo\", (PyCFunction)s_undo, METH_O, NULL},\n"
        "    {\"rekey\", (PyCFunction)s_rekey, METH_O, NULL},\n"
        "    {\"update\", (PyCFunction)s_update, METH_O, NULL},\n"
        "    {\"digest\", (PyCFunction)s_digest, METH_NOARGS, NULL},\n"
        "    {\"attached\", (PyCFunction)s_attached, METH_NOARGS, NULL},\n"
        "    {\"valid\", (PyCFunction)s_valid, METH_NOARGS, NULL},\n"
        "    {\"peek\", (PyCFunction)s_peek, METH_NOARGS, NULL},\n"
        "    {\"detach\", (PyCFunction)s_detach, METH_NOARGS, NULL}, {NULL}};\n"
        "static PySequenceMethods s_seq = {.sq_length = (lenfunc)s_len};\n"
        "static PyTypeObject SType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = \"m.Sem\",\n"
        "    .tp_basicsize = sizeof(SemObject), .tp_as_sequence = &s_seq,\n"
        "    .tp_methods = s_methods};\n")
    _code, data = scan_json(str(proj), "--select", "FT034")
    loud = {f["function"] for f in data["findings"] if f["severity"] != "info"}
    # a digest of fields one update() changes together reads half an update
    assert {"s_undo", "s_peek", "s_detach", "s_digest"} <= loud, data["findings"]
    assert not loud & {"s_acquire", "s_attached", "s_valid"}, data["findings"]


_SEPARATOR = """#include <Python.h>
#include <string.h>
static const char *SEPS[] = {",", ";", "\\t"};
typedef struct { PyObject_HEAD const char *sep; char *buf; Py_ssize_t n;%(extra_field)s } J;
static PyObject *j_set_sep(J *self, PyObject *v)
{ long i = PyLong_AsLong(v); if (i < 0 || i > 2) return NULL; self->sep = SEPS[i];%(extra)s
  Py_RETURN_NONE; }
static PyObject *j_sep(J *self, PyObject *u) { return PyUnicode_FromString(self->sep); }
static PyObject *j_width(J *self, PyObject *u)
{ size_t n = strlen(self->sep); char out[8]; memcpy(out, self->sep, n);
  return PyLong_FromSize_t(n); }
static PyMethodDef j_methods[] = {
    {"set_sep", (PyCFunction)j_set_sep, METH_O, NULL},
    {"sep", (PyCFunction)j_sep, METH_NOARGS, NULL},
    {"width", (PyCFunction)j_width, METH_NOARGS, NULL}, {NULL}};
static PyTypeObject JType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = "m.J",
    .tp_basicsize = sizeof(J), .tp_methods = j_methods};
"""


@pytest.mark.parametrize(("extra_field", "extra", "loud"), [
    # libvalkey's `set_encoding()` stores a codec's name: a reader sees the old name or the
    # new, both alive; only a reader that reads it twice can get two different ones
    ("", "", {"j_width"}),
    # stored beside a release: the old pointer may point into what is released
    (" PyObject *owner;", " Py_XSETREF(self->owner, Py_NewRef(v));",
     {"j_set_sep", "j_sep", "j_width"}),
    # stored beside a length: a reader can pair the new pointer with the old length
    ("", " self->n = 1;", {"j_set_sep", "j_sep", "j_width"}),
    # and not in a type that frees memory: a pointer into it dangles
    ("", " free(self->buf); self->buf = NULL;", {"j_set_sep", "j_sep", "j_width"}),
    # nor one a call returns: a new handle, or bytes borrowed from an object
    ("", " self->sep = (const char *)PyUnicode_AsUTF8(v);", {"j_set_sep", "j_sep", "j_width"}),
])
def test_a_pointer_stored_whole_and_never_freed_is_a_setting(
        scan_json: ScanJson, tmp_path: Path, extra_field: str, extra: str,
        loud: set[str]) -> None:
    proj = tmp_path / "sep"
    proj.mkdir()
    (proj / "m.c").write_text(_SEPARATOR % {"extra_field": extra_field, "extra": extra})
    _code, data = scan_json(str(proj), "--select", "FT033,FT034")
    got = {f["function"] for f in data["findings"] if f["severity"] != "info"
           and f["symbol"] == "J.sep"}
    assert got == loud, data["findings"]


_HASHER_REPR = """#include <Python.h>
#include <stdlib.h>
typedef struct { long total; long h; } state_t;
extern void hh_update(state_t *st, const char *p, Py_ssize_t n);
typedef struct { PyObject_HEAD long seed; state_t st; char *label; } Hasher;
static PyObject *h_update(Hasher *self, PyObject *b)
{ hh_update(&self->st, PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b)); Py_RETURN_NONE; }
static PyObject *h_reset(Hasher *self, PyObject *v)
{ self->seed = PyLong_AsLong(v); self->st.total = 0; self->st.h = self->seed;
  free(self->label); self->label = NULL; Py_RETURN_NONE; }
static PyObject *h_digest(Hasher *self, PyObject *u)
{ return PyLong_FromLong(self->st.h ^ self->seed); }
static PyObject *h_repr(Hasher *self) { return %(repr)s; }
static PyMethodDef h_methods[] = {
    {"update", (PyCFunction)h_update, METH_O, NULL},
    {"reset", (PyCFunction)h_reset, METH_O, NULL},
    {"digest", (PyCFunction)h_digest, METH_NOARGS, NULL}, {NULL}};
static PyTypeObject HType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = "m.Hasher",
    .tp_basicsize = sizeof(Hasher), .tp_repr = (reprfunc)h_repr, .tp_methods = h_methods};
"""


@pytest.mark.parametrize(("repr_", "loud"), [
    # hayahash (review 21): a repr of numbers is a string mixing old and new at worst
    ('PyUnicode_FromFormat("<Hasher %%ld %%ld>", self->seed, self->st.total)', False),
    # ... but not one that follows a pointer another method frees
    ('PyUnicode_FromFormat("<Hasher %%s>", self->label)', True),
])
def test_a_repr_of_numbers_is_information(scan_json: ScanJson, tmp_path: Path, repr_: str,
                                          loud: bool) -> None:
    proj = tmp_path / "hh"
    proj.mkdir()
    (proj / "m.c").write_text(_HASHER_REPR % {"repr": repr_})
    _code, data = scan_json(str(proj), "--select", "FT033,FT034")
    got = {f["function"] for f in data["findings"] if f["severity"] != "info"}
    # the digest reads what update() changes: a wrong digest, reported either way
    assert "h_digest" in got, data["findings"]
    assert ("h_repr" in got) == loud, data["findings"]


_COPY_TO_NEW = """#include <Python.h>
typedef struct { PyObject_HEAD PyObject *keys; Py_ssize_t size; } FAMObject;
static PyTypeObject FAMType;
static PyObject *fam_new(PyTypeObject *cls, PyObject *a, PyObject *k)
{ FAMObject *self = (FAMObject *)cls->tp_alloc(cls, 0);
  if (self) { self->keys = NULL; } return (PyObject *)self; }
static int copy_to_new(FAMObject *self, FAMObject *new)
{
    new->keys = PySequence_List(self->keys);
    if (!new->keys) return -1;
    new->size = self->size;
    return 0;
}
static FAMObject *copy(PyTypeObject *cls, FAMObject *self)
{
    FAMObject *new = (FAMObject *)fam_new(cls, NULL, NULL);
    if (!new) return NULL;
    if (copy_to_new(self, new)) { Py_DECREF(new); return NULL; }
    return new;
}
static PyObject *fam_or(PyObject *left, PyObject *right)
{
    FAMObject *updated = %(or_body)s;
    return (PyObject *)updated;
}
static PyObject *fam_get(FAMObject *self, PyObject *k)
{ return PyObject_GetItem(self->keys, k); }
static PyMethodDef fam_methods[] = {{"get", (PyCFunction)fam_get, METH_O, NULL}, {NULL}};
static PyNumberMethods fam_as_number = {.nb_or = (binaryfunc)fam_or};
static PyTypeObject FAMType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = "m.FAM",
    .tp_basicsize = sizeof(FAMObject), .tp_new = fam_new, .tp_methods = fam_methods,
    .tp_as_number = &fam_as_number};
"""


@pytest.mark.parametrize(("or_body", "fires"), [
    # review 23: arraykit's `fam_or()` copies into a FrozenAutoMap `copy()` has just made
    ("copy(&FAMType, (FAMObject *)left)", False),
    # ... but the other operand is an instance another thread can hold
    ("(copy_to_new((FAMObject *)left, (FAMObject *)right) ? NULL : (FAMObject *)right)",
     True),
])
def test_a_helper_handed_an_object_just_made_writes_that_object(
        scan_json: ScanJson, tmp_path: Path, or_body: str, fires: bool) -> None:
    proj = tmp_path / "fam"
    proj.mkdir()
    (proj / "m.c").write_text(_COPY_TO_NEW % {"or_body": or_body})
    _code, data = scan_json(str(proj), "--select", "FT033,FT034")
    got = {f["function"] for f in data["findings"] if f["severity"] != "info"}
    assert bool(got) == fires, data["findings"]


_STORED_ONCE = """#include <Python.h>
typedef struct { PyObject_HEAD PyObject *fill; int finalized; } TM;
static PyObject *tm_finalize(TM *self, PyObject *u)
{ if (self->finalized) { return NULL; }
  self->fill = PyList_New(0); if (self->fill == NULL) return NULL;
  self->finalized = 1; Py_RETURN_NONE; }
static PyObject *tm_size(TM *self, PyObject *u)
{ if (!self->finalized) return NULL; return PyLong_FromSsize_t(PyList_GET_SIZE(self->fill)); }
%(extra)s
static PyMethodDef tm_methods[] = {
    {"finalize", (PyCFunction)tm_finalize, METH_NOARGS, NULL},
    {"size", (PyCFunction)tm_size, METH_NOARGS, NULL}, %(extra_def)s {NULL}};
static PyTypeObject TMType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = "m.TriMap",
    .tp_basicsize = sizeof(TM), .tp_methods = tm_methods};
"""


@pytest.mark.parametrize(("extra", "name", "loud"), [
    # review 23: arraykit's `TriMap.finalize()` stores its fill array once behind a flag and
    # nothing releases it: `size()` sees NULL (and refuses) or the one array; the stores race
    ("", "", {"tm_finalize"}),
    # released by another method: `size()` can use the freed array
    ("static PyObject *tm_reset(TM *self, PyObject *u)\n"
     "{ Py_CLEAR(self->fill); self->finalized = 0; Py_RETURN_NONE; }", "reset",
     {"tm_finalize", "tm_size", "tm_reset"}),
    # stored over with the old one read first and released
    ("static PyObject *tm_swap(TM *self, PyObject *v)\n"
     "{ PyObject *old = self->fill; self->fill = Py_NewRef(v); Py_XDECREF(old);"
     " Py_RETURN_NONE; }", "swap", {"tm_finalize", "tm_size", "tm_swap"}),
])
def test_an_object_field_stored_and_never_released_races_only_where_stored(
        scan_json: ScanJson, tmp_path: Path, extra: str, name: str, loud: set[str]) -> None:
    proj = tmp_path / "tm"
    proj.mkdir()
    extra_def = f'{{"{name}", (PyCFunction)tm_{name}, METH_O, NULL}},' if extra else ""
    (proj / "m.c").write_text(_STORED_ONCE % {"extra": extra, "extra_def": extra_def})
    _code, data = scan_json(str(proj), "--select", "FT033")
    got = {f["function"] for f in data["findings"] if f["severity"] != "info"}
    assert got == loud, data["findings"]


_PROJECT_CS = """#include <Python.h>
#if PY_VERSION_HEX >= 0x030D0000 && defined(Py_GIL_DISABLED)
#define CAIO_BEGIN_CRITICAL_SECTION(object) \\
    PyCriticalSection caio_cs; PyCriticalSection_Begin(&caio_cs, (PyObject *)(object))
#define CAIO_END_CRITICAL_SECTION() PyCriticalSection_End(&caio_cs)
#else
#define CAIO_BEGIN_CRITICAL_SECTION(object)
#define CAIO_END_CRITICAL_SECTION()
#endif
typedef struct { PyObject_HEAD PyObject *callback; } Op;
static PyObject *op_set_callback(Op *self, PyObject *callback)
{
    PyObject *old;
    Py_INCREF(callback);
    CAIO_BEGIN_CRITICAL_SECTION(self);
    old = self->callback;
    self->callback = callback;
    CAIO_END_CRITICAL_SECTION();
    Py_XDECREF(old);
    Py_RETURN_TRUE;
}
static PyObject *op_callback(Op *self, PyObject *u)
{
    PyObject *cb;
    %(begin)s
    cb = Py_XNewRef(self->callback);
    %(end)s
    return cb;
}
static PyMethodDef op_methods[] = {
    {"set_callback", (PyCFunction)op_set_callback, METH_O, NULL},
    {"callback", (PyCFunction)op_callback, METH_NOARGS, NULL}, {NULL}};
static PyTypeObject OpType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = "m.Op",
    .tp_basicsize = sizeof(Op), .tp_methods = op_methods};
"""


@pytest.mark.parametrize(("begin", "end", "loud"), [
    # review 24: caio's own critical-section macros, empty on the build the parse sees
    ("CAIO_BEGIN_CRITICAL_SECTION(self);", "CAIO_END_CRITICAL_SECTION();", set()),
    ("", "", {"op_callback"}),
])
def test_a_projects_own_critical_section_macros_hold_the_object(
        scan_json: ScanJson, tmp_path: Path, begin: str, end: str, loud: set[str]) -> None:
    proj = tmp_path / "caio"
    proj.mkdir()
    (proj / "m.c").write_text(_PROJECT_CS % {"begin": begin, "end": end})
    _code, data = scan_json(str(proj), "--select", "FT033")
    got = {f["function"] for f in data["findings"] if f["severity"] != "info"}
    assert got == loud, data["findings"]


_GUARDED_WALKER = """#include <Python.h>
#include <pythread.h>
typedef struct { PyObject_HEAD PyThread_type_lock lock; PyObject *pending; long version;
                 int started; } Walker;
static PyObject *walker_next(PyObject *op)
{
    Walker *walker = (Walker *)op;
#ifdef Py_GIL_DISABLED
    PyThread_acquire_lock(walker->lock, WAIT_LOCK);
#endif
    if (!walker->started) {
        walker->started = 1;
        walker->version = 1;
    }
    if (walker->pending == NULL) {
#ifdef Py_GIL_DISABLED
        PyThread_release_lock(walker->lock);
#endif
        return NULL;
    }
    PyObject *result = walker->pending;
    walker->pending = NULL;
    walker->version += 1;
#ifdef Py_GIL_DISABLED
    PyThread_release_lock(walker->lock);
#endif
    return result;
}
static PyTypeObject WType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = "m.Walker",
    .tp_basicsize = sizeof(Walker), .tp_iternext = walker_next};
"""


def test_a_lock_released_before_an_early_return_in_an_ifdef_stays_held_after_it(
        scan_json: ScanJson, tmp_path: Path) -> None:
    """Review 25: turbohtml's element walker takes its lock under `#ifdef Py_GIL_DISABLED`
    and gives it back, under the same `#ifdef`, before each return; the `#endif` between the
    release and the return hid that it was an early exit."""
    proj = tmp_path / "walker"
    proj.mkdir()
    (proj / "m.c").write_text(_GUARDED_WALKER)
    _code, data = scan_json(str(proj), "--select", "FT033,FT034,FT074")
    assert not [f for f in data["findings"] if f["severity"] != "info"], data["findings"]
    # without the lock the same walker races
    (proj / "m.c").write_text(_GUARDED_WALKER.replace(
        "PyThread_acquire_lock(walker->lock, WAIT_LOCK);", ""))
    _code, data = scan_json(str(proj), "--select", "FT033,FT034,FT074")
    assert [f for f in data["findings"] if f["severity"] != "info"], data["findings"]


_LAZY_TOKEN = """#include <Python.h>
typedef struct { PyObject_HEAD PyObject *source; PyObject *data_str; } Tok;
static PyObject *tok_data(Tok *self, void *c)
{
    if (self->data_str != NULL) {
        return Py_NewRef(self->data_str);
    }
    self->data_str = PyUnicode_Substring(self->source, 0, 3);
    if (self->data_str == NULL) return NULL;
    return Py_NewRef(self->data_str);
}
static PyObject *tok_len(Tok *self, PyObject *u)
{
    if (self->data_str == NULL) return PyLong_FromLong(0);
    return PyLong_FromSsize_t(PyUnicode_GET_LENGTH(self->data_str));
}
static PyGetSetDef tok_getset[] = {{"data", (getter)tok_data, NULL, NULL, NULL}, {NULL}};
static PyMethodDef tok_methods[] = {{"length", (PyCFunction)tok_len, METH_NOARGS, NULL}, {NULL}};
static PyTypeObject TokType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = "m.Token",
    .tp_basicsize = sizeof(Tok), .tp_getset = tok_getset, .tp_methods = tok_methods};
"""


def test_a_field_stored_after_an_early_return_while_set_is_filled_once(
        scan_json: ScanJson, tmp_path: Path) -> None:
    """Review 25: turbohtml's `Token.data` returns the string it has, or makes it and stores
    it; nothing releases it while the token lives. Two first calls race (one string leaks);
    `length()` sees NULL or the one string."""
    proj = tmp_path / "tok"
    proj.mkdir()
    (proj / "m.c").write_text(_LAZY_TOKEN)
    _code, data = scan_json(str(proj), "--select", "FT033")
    assert {f["function"] for f in data["findings"] if f["severity"] != "info"} == {
        "tok_data"}, data["findings"]


def test_an_object_a_module_function_makes_is_its_own_under_any_name(
        scan_json: ScanJson, tmp_path: Path) -> None:
    """hyperscan's `loadb()` makes a Database by calling its type, names it
    `Database *db = (Database *)odb;` and fills it: nobody else has it yet (an independent
    review judged the finding false). A database the function is handed still races."""
    proj = tmp_path / "hs"
    proj.mkdir()
    (proj / "m.c").write_text(
        "#include <Python.h>\n"
        "typedef struct { PyObject_HEAD void *hs_db; unsigned int mode; } Database;\n"
        "static PyTypeObject DatabaseType;\n"
        "extern int hs_deserialize(const char *b, void **db);\nextern void hs_free(void *db);\n"
        "static PyObject *loadb(PyObject *self, PyObject *args)\n"
        "{\n"
        "    PyObject *odb = PyObject_CallFunctionObjArgs((PyObject *)&DatabaseType, NULL);\n"
        "    Database *db = (Database *)odb;\n"
        "    const char *buf;\n"
        "    if (!PyArg_ParseTuple(args, \"sI\", &buf, &db->mode)) { return NULL; }\n"
        "    hs_deserialize(buf, &db->hs_db);\n"
        "    return odb;\n"
        "}\n"
        "static PyObject *reload(PyObject *self, PyObject *args)\n"
        "{\n"
        "    Database *db; const char *buf;\n"
        "    if (!PyArg_ParseTuple(args, \"O!s\", &DatabaseType, &db, &buf)) { return NULL; }\n"
        "    hs_free(db->hs_db);\n"
        "    hs_deserialize(buf, &db->hs_db);\n"
        "    Py_RETURN_NONE;\n"
        "}\n"
        "static PyObject *db_scan(Database *self, PyObject *u)\n"
        "{ return PyLong_FromVoidPtr(self->hs_db); }\n"
        "static PyMethodDef db_methods[] = {\n"
        "    {\"scan\", (PyCFunction)db_scan, METH_NOARGS, NULL}, {NULL}};\n"
        "static PyTypeObject DatabaseType = {PyVarObject_HEAD_INIT(NULL, 0) .tp_name = \"m.Db\",\n"
        "    .tp_basicsize = sizeof(Database), .tp_methods = db_methods};\n"
        "static PyMethodDef mod_methods[] = {\n"
        "    {\"loadb\", loadb, METH_VARARGS, NULL},\n"
        "    {\"reload\", reload, METH_VARARGS, NULL}, {NULL}};\n")
    _code, data = scan_json(str(proj), "--select", "FT034")
    fns = {f["function"] for f in data["findings"]}
    assert "loadb" not in fns and "reload" in fns, data["findings"]


def test_send_is_an_iterators_only_when_the_type_iterates(scan_json: ScanJson,
                                                           tmp_path: Path) -> None:
    # cassandra's libev wrapper: `Async.send()` wakes a loop, it advances no iteration.
    (tmp_path / "w.c").write_text(
        "#include <Python.h>\n"
        "typedef struct { PyObject_HEAD long pending; } AsyncObject;\n"
        "static PyObject *Async_send(AsyncObject *self, PyObject *unused)\n"
        "{ self->pending++; Py_RETURN_NONE; }\n"
        "static PyObject *Async_pending(AsyncObject *self, PyObject *unused)\n"
        "{ return PyLong_FromLong(self->pending); }\n"
        "static PyMethodDef Async_methods[] = {\n"
        "    {\"send\", (PyCFunction)Async_send, METH_NOARGS, NULL},\n"
        "    {\"pending\", (PyCFunction)Async_pending, METH_NOARGS, NULL},\n"
        "    {NULL, NULL, 0, NULL}};\n"
        "static PyTypeObject AsyncType = {\n"
        "    PyVarObject_HEAD_INIT(NULL, 0)\n"
        "    .tp_name = \"w.Async\", .tp_basicsize = sizeof(AsyncObject),\n"
        "    .tp_methods = Async_methods, .tp_new = PyType_GenericNew};\n")
    _code, data = scan_json(str(tmp_path), "--select", "FT034,FT074")
    assert sorted((f["rule"], f["line"]) for f in data["findings"]) == [
        ("FT034", 4), ("FT034", 6)]


def test_swigs_init_function_runs_on_the_object_being_made(scan_json: ScanJson,
                                                           tmp_path: Path) -> None:
    # cvxpy's SWIG wrapper: `ProblemData_swiginit(self, args)` is what the proxy class's
    # `__init__` calls, on the instance it is making; the same helper called by a module
    # function anybody can call on a shared instance is a writer.
    source = (
        "#include <Python.h>\n"
        "typedef struct { PyObject_HEAD PyObject *next; } ThingObject;\n"
        "static PyTypeObject ThingType;\n"
        "static PyObject *init_shadow(PyObject *args) {\n"
        "    ThingObject *obj;\n"
        "    if (!PyArg_ParseTuple(args, \"O!\", &ThingType, &obj)) return NULL;\n"
        "    Py_XSETREF(obj->next, Py_NewRef(Py_None));\n"
        "    Py_RETURN_NONE;\n"
        "}\n"
        "static PyObject *Thing_swiginit(PyObject *self, PyObject *args)\n"
        "{ return init_shadow(args); }\n"
        "static PyObject *Thing_peek(ThingObject *self, PyObject *unused)\n"
        "{ return Py_NewRef(self->next ? self->next : Py_None); }\n"
        "static PyMethodDef Thing_methods[] = {\n"
        "    {\"peek\", (PyCFunction)Thing_peek, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};\n"
        "static PyTypeObject ThingType = {\n"
        "    PyVarObject_HEAD_INIT(NULL, 0)\n"
        "    .tp_name = \"m.Thing\", .tp_basicsize = sizeof(ThingObject),\n"
        "    .tp_methods = Thing_methods, .tp_new = PyType_GenericNew};\n"
        "static PyMethodDef module_methods[] = {\n"
        "    {\"Thing_swiginit\", Thing_swiginit, METH_VARARGS, NULL},\n"
        "    {NULL, NULL, 0, NULL}};\n"
        "static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, \"m\", NULL, 0, "
        "module_methods};\n"
        "PyMODINIT_FUNC PyInit_m(void) { return PyModule_Create(&mod); }\n")
    (tmp_path / "m.c").write_text(source)
    _code, data = scan_json(str(tmp_path), "--select", "FT033,FT034")
    assert data["findings"] == []
    (tmp_path / "m.c").write_text(source.replace("Thing_swiginit", "Thing_reset"))
    _code, data = scan_json(str(tmp_path), "--select", "FT033,FT034")
    assert sorted((f["rule"], f["function"]) for f in data["findings"]) == [
        ("FT033", "Thing_peek"), ("FT033", "Thing_reset")]


def test_a_handle_first_in_a_release_of_something_else_is_only_read(
        scan_json: ScanJson, tmp_path: Path) -> None:
    # confluent-kafka: `rd_kafka_mem_free(self->rk, str)` frees `str`; `rk` is the library's
    # context there, as in `rd_kafka_DeleteTopics(self->rk, topics, n, options, queue)`.
    source = (
        "#include <Python.h>\n"
        "void lib_mem_free(void *rk, char *p);\n"
        "void lib_destroy(void *rk);\n"
        "int lib_poll(void *rk, int ms);\n"
        "char *lib_name(void *rk);\n"
        "typedef struct { PyObject_HEAD void *rk; } ConnObject;\n"
        "static PyObject *Conn_poll(ConnObject *self, PyObject *unused)\n"
        "{ return PyLong_FromLong(lib_poll(self->rk, 10)); }\n"
        "static PyObject *Conn_name(ConnObject *self, PyObject *unused) {\n"
        "    char *name = lib_name(self->rk);\n"
        "    PyObject *r = PyUnicode_FromString(name);\n"
        "    lib_mem_free(self->rk, name);\n"
        "    return r;\n"
        "}\n"
        "static PyMethodDef Conn_methods[] = {\n"
        "    {\"poll\", (PyCFunction)Conn_poll, METH_NOARGS, NULL},\n"
        "    {\"name\", (PyCFunction)Conn_name, METH_NOARGS, NULL},\n"
        "    {NULL, NULL, 0, NULL}};\n"
        "static PyTypeObject ConnType = {\n"
        "    PyVarObject_HEAD_INIT(NULL, 0)\n"
        "    .tp_name = \"m.Conn\", .tp_basicsize = sizeof(ConnObject),\n"
        "    .tp_methods = Conn_methods, .tp_new = PyType_GenericNew};\n")
    (tmp_path / "m.c").write_text(source)
    _code, data = scan_json(str(tmp_path), "--select", "FT033,FT034")
    assert data["findings"] == []
    # Released itself, the handle races with its users.
    (tmp_path / "m.c").write_text(source.replace("lib_mem_free(self->rk, name);",
                                                 "lib_destroy(self->rk);"))
    _code, data = scan_json(str(tmp_path), "--select", "FT033,FT034")
    assert {f["function"] for f in data["findings"]} == {"Conn_poll", "Conn_name"}


def test_a_wrapper_macro_that_opens_a_critical_section_holds_it(scan_json: ScanJson,
                                                               tmp_path: Path) -> None:
    # viztracer: SNAPTRACE_THREAD_PROTECT_START(self) is Py_BEGIN_CRITICAL_SECTION(self) on
    # free-threaded builds (and nothing with the GIL); an entry point that opens the section
    # itself holds the same one.
    source = (
        "#include <Python.h>\n"
        "#ifdef Py_GIL_DISABLED\n"
        "#define TRACER_PROTECT_START(self) Py_BEGIN_CRITICAL_SECTION(self)\n"
        "#define TRACER_PROTECT_END(self) Py_END_CRITICAL_SECTION()\n"
        "#else\n"
        "#define TRACER_PROTECT_START(self)\n"
        "#define TRACER_PROTECT_END(self)\n"
        "#endif\n"
        "typedef struct { PyObject_HEAD long count; } TracerObject;\n"
        "static PyObject *Tracer_add(TracerObject *self, PyObject *unused) {\n"
        "    TRACER_PROTECT_START(self);\n"
        "    self->count++;\n"
        "    TRACER_PROTECT_END(self);\n"
        "    Py_RETURN_NONE;\n"
        "}\n"
        "static PyObject *Tracer_get(TracerObject *self, PyObject *unused) {\n"
        "    long n;\n"
        "    Py_BEGIN_CRITICAL_SECTION(self);\n"
        "    n = self->count;\n"
        "    Py_END_CRITICAL_SECTION();\n"
        "    return PyLong_FromLong(n);\n"
        "}\n"
        "static PyMethodDef Tracer_methods[] = {\n"
        "    {\"add\", (PyCFunction)Tracer_add, METH_NOARGS, NULL},\n"
        "    {\"get\", (PyCFunction)Tracer_get, METH_NOARGS, NULL},\n"
        "    {NULL, NULL, 0, NULL}};\n"
        "static PyTypeObject TracerType = {\n"
        "    PyVarObject_HEAD_INIT(NULL, 0)\n"
        "    .tp_name = \"m.Tracer\", .tp_basicsize = sizeof(TracerObject),\n"
        "    .tp_methods = Tracer_methods, .tp_new = PyType_GenericNew};\n")
    (tmp_path / "m.c").write_text(source)
    _code, data = scan_json(str(tmp_path), "--select", "FT034")
    assert data["findings"] == []
    # Without the wrapper's section, add() races with get().
    (tmp_path / "m.c").write_text(source.replace("    TRACER_PROTECT_START(self);\n", "")
                                  .replace("    TRACER_PROTECT_END(self);\n", ""))
    _code, data = scan_json(str(tmp_path), "--select", "FT034")
    assert [f["function"] for f in data["findings"]] == ["Tracer_add"]


def test_setstate_races_only_when_called_again_like_init(scan_json: ScanJson,
                                                         tmp_path: Path) -> None:
    # traits' cTrait.__setstate__: unpickling runs it on a new object; only a caller that runs
    # it again on a shared one races, as with a re-run __init__.
    source = (
        "#include <Python.h>\n"
        "typedef struct { PyObject_HEAD PyObject *handler; } TraitObject;\n"
        "static PyObject *Trait_setstate(TraitObject *self, PyObject *state) {\n"
        "    Py_XSETREF(self->handler, Py_NewRef(state));\n"
        "    Py_RETURN_NONE;\n"
        "}\n"
        "static PyObject *Trait_handler(TraitObject *self, PyObject *unused)\n"
        "{ return Py_NewRef(self->handler ? self->handler : Py_None); }\n"
        "static PyMethodDef Trait_methods[] = {\n"
        "    {\"__setstate__\", (PyCFunction)Trait_setstate, METH_O, NULL},\n"
        "    {\"handler\", (PyCFunction)Trait_handler, METH_NOARGS, NULL},\n"
        "    {NULL, NULL, 0, NULL}};\n"
        "static PyTypeObject TraitType = {\n"
        "    PyVarObject_HEAD_INIT(NULL, 0)\n"
        "    .tp_name = \"m.Trait\", .tp_basicsize = sizeof(TraitObject),\n"
        "    .tp_methods = Trait_methods, .tp_new = PyType_GenericNew};\n")
    (tmp_path / "m.c").write_text(source)
    _code, data = scan_json(str(tmp_path), "--select", "FT033")
    assert data["findings"] and all(f["severity"] == "info" for f in data["findings"])
    assert all("`__setstate__` is called again" in f["message"] for f in data["findings"])
    (tmp_path / "m.c").write_text(source.replace('"__setstate__"', '"set_handler"'))
    _code, data = scan_json(str(tmp_path), "--select", "FT033")
    assert {f["severity"] for f in data["findings"]} == {"error"}


def test_generated_code_included_by_another_file_is_not_analysed(scan_json: ScanJson,
                                                                 tmp_path: Path) -> None:
    # ssh-python ships Cython's ssh/sftp.c; a libssh test's `#include "sftp.c"` reached it
    # through the include path, and its CyFunction getters were reported.
    body = (
        "#include <Python.h>\n"
        "typedef struct { PyObject_HEAD PyObject *doc; } FuncObject;\n"
        "static PyObject *Func_get_doc(FuncObject *self, void *c)\n"
        "{ return Py_NewRef(self->doc ? self->doc : Py_None); }\n"
        "static int Func_set_doc(FuncObject *self, PyObject *v, void *c)\n"
        "{ Py_XSETREF(self->doc, Py_XNewRef(v)); return 0; }\n"
        "static PyGetSetDef Func_getset[] = {\n"
        "    {\"__doc__\", (getter)Func_get_doc, (setter)Func_set_doc, NULL, NULL},\n"
        "    {NULL}};\n"
        "static PyTypeObject FuncType = {\n"
        "    PyVarObject_HEAD_INIT(NULL, 0)\n"
        "    .tp_name = \"m.Func\", .tp_basicsize = sizeof(FuncObject),\n"
        "    .tp_getset = Func_getset};\n")
    (tmp_path / "gen.c").write_text("/* Generated by Cython 3.1.4 */\n" + body)
    (tmp_path / "user.c").write_text("#include \"gen.c\"\nint used(void) { return 1; }\n")
    _code, data = scan_json(str(tmp_path), "--select", "FT033")
    assert data["findings"] == []
    assert data["files"]["gen.c"] == "skipped: generated code"
    (tmp_path / "gen.c").write_text(body)
    _code, data = scan_json(str(tmp_path), "--select", "FT033")
    assert {f["path"] for f in data["findings"]} == {"gen.c"}


def _serious(scan_json: ScanJson, tmp_path: Path, source: str
             ) -> tuple[list[tuple[str, int]], list[dict[str, object]]]:
    """(function, line) of the FT033/FT034 errors and warnings on one C file, and all the
    findings (for the assertion message)."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "m.c").write_text(source)
    _code, data = scan_json(str(proj), "--select", "FT033,FT034")
    return ([(str(f["function"]), int(f["line"])) for f in data["findings"]
             if f["severity"] in ("error", "warning")], data["findings"])


_LAZY_DICT = """#include <Python.h>

typedef struct {
    PyObject_HEAD
    PyObject *dict;
} ProxyObject;

static PyObject *Proxy_get_dict(ProxyObject *self, void *closure)
{
    PyObject *result;
    %(open)s
    if (%(test)s)
        self->dict = PyDict_New();
    result = self->dict;
    Py_XINCREF(result);
    %(close)s
    return result;
}

static PyObject *Proxy_set_module(ProxyObject *self, PyObject *value)
{
    if (PyDict_SetItemString(self->dict, "__module__", value) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Proxy_dir(ProxyObject *self, PyObject *unused)
{
    Py_INCREF(self->dict);  /* numpy's f2py `fortran` object: `__dict__` handed out */
    return self->dict;
}

static PyGetSetDef Proxy_getset[] = {
    {"__dict__", (getter)Proxy_get_dict, NULL, NULL, NULL},
    {NULL}
};
static PyMethodDef Proxy_methods[] = {
    {"set_module", (PyCFunction)Proxy_set_module, METH_O, NULL},
    {"dir", (PyCFunction)Proxy_dir, METH_NOARGS, NULL},
    {NULL}
};
static PyTypeObject ProxyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "m.Proxy",
    .tp_basicsize = sizeof(ProxyObject),
    .tp_methods = Proxy_methods,
    .tp_getset = Proxy_getset,
};
"""


@pytest.mark.parametrize(("test", "locked", "fires"), [
    # wrapt: the dict is made again only when tp_clear left it NULL, under a critical section
    ("!self->dict", True, False),
    ("self->dict == NULL", True, False),
    # two threads can both see NULL and both store: the reader may use the one that leaks
    ("!self->dict", False, True),
    # stored whatever it held: a reader's borrowed dict can be the one replaced
    ("1", True, True),
])
def test_a_field_filled_only_while_null_under_a_lock_is_not_replaced(
        scan_json: ScanJson, tmp_path: Path, test: str, locked: bool, fires: bool) -> None:
    """Review 15: newrelic's vendored wrapt recreates `self->dict` only when it is NULL,
    inside `Py_BEGIN_CRITICAL_SECTION(self)` (the porting guide's lazy creation); readers see
    NULL or the one dict, which lives as long as the object."""
    got, findings = _serious(scan_json, tmp_path, _LAZY_DICT % {
        "test": test, "open": "Py_BEGIN_CRITICAL_SECTION(self);" if locked else "",
        "close": "Py_END_CRITICAL_SECTION();" if locked else ""})
    assert bool(got) == fires, findings


_STREAM = """#include <Python.h>

typedef struct {
    PyObject_HEAD
    PyMutex mutex;
    int stopped;
    void *run_loop;
} StreamObject;

static void stream_lock(StreamObject *self) { PyMutex_Lock(&self->mutex); }
static void stream_unlock(StreamObject *self) { PyMutex_Unlock(&self->mutex); }

static PyObject *Stream_start(StreamObject *self, PyObject *loop)
{
    stream_lock(self);
    if (self->stopped) {
        stream_unlock(self);
        %(first_exit)s
    }
    if (self->run_loop != NULL) {
        stream_unlock(self);
        PyErr_SetString(PyExc_RuntimeError, "Stream is already running.");
        return NULL;
    }
    self->run_loop = (void *)loop;
    stream_unlock(self);
    Py_RETURN_NONE;
}

static PyObject *Stream_stop(StreamObject *self, PyObject *unused)
{
    stream_lock(self);
    self->stopped = 1;
    self->run_loop = NULL;
    stream_unlock(self);
    Py_RETURN_NONE;
}

static PyMethodDef Stream_methods[] = {
    {"start", (PyCFunction)Stream_start, METH_O, NULL},
    {"stop", (PyCFunction)Stream_stop, METH_NOARGS, NULL},
    {NULL}
};
static PyTypeObject StreamType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "m.Stream",
    .tp_basicsize = sizeof(StreamObject),
    .tp_methods = Stream_methods,
};
"""


@pytest.mark.parametrize(("first_exit", "fires"), [
    ("Py_RETURN_NONE;", False),
    ('PyErr_SetString(PyExc_ValueError, "stopped");\n        return NULL;', False),
    # the path goes on after the release: what follows is not under the lock
    ('PyErr_SetString(PyExc_ValueError, "stopped");', True),
])
def test_an_early_exit_through_a_macro_or_after_setting_the_error_keeps_the_lock(
        scan_json: ScanJson, tmp_path: Path, first_exit: str, fires: bool) -> None:
    """Review 16: watchdog's `start()` releases its stream lock on two early exits,
    `stream_unlock(self); Py_RETURN_NONE;` and `stream_unlock(self); PyErr_SetString(...);
    return NULL;`, and writes `run_loop` under the lock on the path that goes on."""
    got, findings = _serious(scan_json, tmp_path, _STREAM % {"first_exit": first_exit})
    assert bool(got) == fires, findings


_SYNC_OP = """#include <Python.h>

typedef struct {
    PyObject_HEAD
    PyMutex sync_op;
    Py_ssize_t len;
    char *table;
} DictObject;

static void begin_sync(DictObject *self) { PyMutex_Lock(&self->sync_op); }
static void end_sync(DictObject *self)
{
    if (self->table == NULL)  /* still under the lock it gives back */
        self->len = 0;
    PyMutex_Unlock(&self->sync_op);
}

static Py_ssize_t len_impl(DictObject *self) { return self->len; }

static Py_ssize_t Dict_len(DictObject *self)
{
    begin_sync(self);
    Py_ssize_t n = len_impl(self);
    end_sync(self);
    %(after)s
    return n;
}

static PyObject *Dict_grow(DictObject *self, PyObject *unused)
{
    begin_sync(self);
    char *bigger = PyMem_Realloc(self->table, 2 * self->len + 1);
    if (bigger != NULL) {
        self->table = bigger;
        self->len = 2 * self->len + 1;
    }
    end_sync(self);
    Py_RETURN_NONE;
}

static PyMethodDef Dict_methods[] = {
    {"grow", (PyCFunction)Dict_grow, METH_NOARGS, NULL},
    {NULL}
};
static PySequenceMethods Dict_as_sequence = {.sq_length = (lenfunc)Dict_len};
static PyTypeObject DictType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "m.Dict",
    .tp_basicsize = sizeof(DictObject),
    .tp_methods = Dict_methods,
    .tp_as_sequence = &Dict_as_sequence,
};
"""


@pytest.mark.parametrize(("after", "fires"), [
    ("", False),
    # read again after the release: not under the lock any more
    ("n += self->table[0];", True),
])
def test_a_projects_lock_taking_functions_hold_the_lock_between_their_calls(
        scan_json: ScanJson, tmp_path: Path, after: str, fires: bool) -> None:
    """Review 16: cereggii's `len()` runs between `begin_synchronous_operation(self)`, which
    locks `self->sync_op` and returns holding it, and `end_synchronous_operation(self)`,
    which unlocks it: the helper it calls in between reads under the lock the resize holds."""
    got, findings = _serious(scan_json, tmp_path, _SYNC_OP % {"after": after})
    assert bool(got) == fires, findings


_SIGNAL = """#include <Python.h>
#include <pythread.h>

typedef struct {
    PyObject_HEAD
    PyThread_type_lock lock;
    int locked;
    char *items;
    Py_ssize_t n;
} QueueObject;

static PyObject *Queue_put(QueueObject *self, PyObject *item)
{
    self->items[self->n++] = 1;
    if (self->locked) {
        self->locked = 0;
        PyThread_release_lock(self->lock);  /* wakes a waiting get(): not a section's end */
    }
    Py_RETURN_NONE;
}

static PyObject *Queue_clear(QueueObject *self, PyObject *unused)
{
    PyMem_Free(self->items);
    self->items = NULL;
    self->n = 0;
    Py_RETURN_NONE;
}

static PyMethodDef Queue_methods[] = {
    {"put", (PyCFunction)Queue_put, METH_O, NULL},
    {"clear", (PyCFunction)Queue_clear, METH_NOARGS, NULL},
    {NULL}
};
static PyTypeObject QueueType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "m.Queue",
    .tp_basicsize = sizeof(QueueObject),
    .tp_methods = Queue_methods,
};
"""


def test_a_method_that_releases_a_lock_it_never_took_is_not_a_lock_helper(
        scan_json: ScanJson, tmp_path: Path) -> None:
    """CPython 3.11's SimpleQueue.put releases the lock a waiting get() blocks on: a signal,
    not the end of a locked stretch, so what it does before the release is not under a lock
    (the ports bench lost two recalled items in _queuemodule.c until helpers had to pair)."""
    got, findings = _serious(scan_json, tmp_path, _SIGNAL)
    assert ("Queue_put", 14) in got, findings


_VOIDPTR = """#include <Python.h>

typedef struct {
    PyObject_HEAD
    char *data;
    Py_ssize_t size;
} VoidPtrObject;

static PyObject *VoidPtr_setsize(VoidPtrObject *self, PyObject *arg)
{
    Py_ssize_t size = PyLong_AsSsize_t(arg);
    if (size == -1 && PyErr_Occurred())
        return NULL;
    self->size = size;
    Py_RETURN_NONE;
}

static PyObject *VoidPtr_getsize(VoidPtrObject *self, PyObject *unused)
{
    return PyLong_FromSsize_t(self->size);
}

static PyObject *VoidPtr_reset(VoidPtrObject *self, PyObject *unused)
{
    %(reset)s
    Py_RETURN_NONE;
}

static PyMethodDef VoidPtr_methods[] = {
    {"setsize", (PyCFunction)VoidPtr_setsize, METH_O, NULL},
    {"getsize", (PyCFunction)VoidPtr_getsize, METH_NOARGS, NULL},
    {"reset", (PyCFunction)VoidPtr_reset, METH_NOARGS, NULL},
    {NULL}
};
static PyTypeObject VoidPtrType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "m.VoidPtr",
    .tp_basicsize = sizeof(VoidPtrObject),
    .tp_methods = VoidPtr_methods,
};
"""


@pytest.mark.parametrize(("reset", "errors"), [
    # the pointer stays as made: `size` is a value the user sets, as in a serial order
    ("", []),
    # the pointer is reallocated: a size that no longer matches it reads out of bounds
    ("self->data = PyMem_Realloc(self->data, 16); self->size = 16;",
     ["VoidPtr_setsize", "VoidPtr_reset"]),
])
def test_a_length_is_a_size_only_beside_a_pointer_that_moves(
        scan_json: ScanJson, tmp_path: Path, reset: str, errors: list[str]) -> None:
    """Review 18: pyqt5-sip's `voidptr.setsize()` stores a user-given `size` beside a
    `voidptr` that nothing reassigns after construction; the stores were reported as errors
    for a buffer's size."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "m.c").write_text(_VOIDPTR % {"reset": reset})
    _code, data = scan_json(str(proj), "--select", "FT033,FT034")
    got = sorted(str(f["function"]) for f in data["findings"] if f["severity"] == "error")
    assert got == sorted(errors), data["findings"]


_OWNED = """#include <Python.h>
#include <pythread.h>

typedef struct {
    PyObject_HEAD
    unsigned long thread_id;
    PyObject *buffer;
    Py_ssize_t idx;
} ParserObject;

static PyObject *Parser_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    ParserObject *self = (ParserObject *)type->tp_alloc(type, 0);
    if (self != NULL)
        self->thread_id = PyThread_get_thread_ident();
    return (PyObject *)self;
}

static PyObject *Parser_next(ParserObject *self)
{
    %(guard)s
    if (self->buffer == NULL || self->idx >= PyUnicode_GET_LENGTH(self->buffer))
        return NULL;
    self->idx++;
    return PyUnicode_Substring(self->buffer, self->idx - 1, self->idx);
}

static PyObject *Parser_feed(ParserObject *self, PyObject *text)
{
    %(guard)s
    Py_XSETREF(self->buffer, Py_NewRef(text));
    self->idx = 0;
    Py_RETURN_NONE;
}

static PyMethodDef Parser_methods[] = {
    {"feed", (PyCFunction)Parser_feed, METH_O, NULL},
    {NULL}
};
static PyTypeObject ParserType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "m.Parser",
    .tp_basicsize = sizeof(ParserObject),
    .tp_new = Parser_new,
    .tp_iternext = (iternextfunc)Parser_next,
    .tp_methods = Parser_methods,
};
"""


@pytest.mark.parametrize(("guard", "fires"), [
    ("if (self->thread_id != PyThread_get_thread_ident()) {\n"
     "        PyErr_SetString(PyExc_RuntimeError, \"not shared across threads\");\n"
     "        return NULL;\n    }", False),
    ("if (PyThread_get_thread_ident() != self->thread_id) return NULL;", False),
    # the test without the exit: the other thread goes on
    ("if (self->thread_id != PyThread_get_thread_ident()) PyErr_WarnEx(NULL, \"shared\", 1);",
     True),
    ("", True),
])
def test_entry_points_that_refuse_every_thread_but_the_owner_do_not_race(
        scan_json: ScanJson, tmp_path: Path, guard: str, fires: bool) -> None:
    """Review 18: aiocsv's Parser records its maker's thread and raises in `__next__` on any
    other; the accesses past that test run on one thread only."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "m.c").write_text(_OWNED % {"guard": guard})
    _code, data = scan_json(str(proj), "--select", "FT033,FT034,FT074")
    got = [f for f in data["findings"] if f["severity"] in ("error", "warning")]
    assert bool(got) == fires, data["findings"]


@pytest.mark.parametrize("fill", [
    "if (!self->dict)\n        self->dict = PyDict_New();",
    # pymemtrace's `__enter__` (review 21): the fill is the else of the test that it is set
    "if (self->dict != NULL) { (void)0; }\n    else { self->dict = PyDict_New(); }",
    "if (self->dict) (void)0; else self->dict = PyDict_New();",
])
def test_a_lazily_filled_field_races_where_it_is_filled_not_where_it_is_only_read(
        scan_json: ScanJson, tmp_path: Path, fill: str) -> None:
    """Review 18: iteration_utilities' `Seen` creates `seenlist` on first use without a lock
    (two fills race: a real finding), and `__eq__` only reads it: NULL or the one list, never
    freed while the instance lives."""
    code = (_LAZY_DICT % {"test": "!self->dict", "open": "", "close": ""}).replace(
        "if (!self->dict)\n        self->dict = PyDict_New();", fill)
    got, findings = _serious(scan_json, tmp_path, code)
    assert {fn for fn, _line in got} == {"Proxy_get_dict"}, findings


_DETACHED = """#include <Python.h>
#include <stdio.h>

typedef struct {
    PyObject_HEAD
    FILE *fp;
    long count;
} FileObject;

static PyObject *File_read(FileObject *self, PyObject *unused)
{
    int c;
    %(begin)s
    c = fgetc(self->fp);
    %(end)s
    return PyLong_FromLong(c);
}

static PyObject *File_close(FileObject *self, PyObject *unused)
{
    %(begin)s
    %(close)s
    %(end)s
    Py_RETURN_NONE;
}

static PyObject *File_tick(FileObject *self, PyObject *unused)
{
    self->count++;
    Py_RETURN_NONE;
}

static PyMethodDef File_methods[] = {
    {"read", (PyCFunction)File_read, METH_NOARGS, NULL},
    {"close", (PyCFunction)File_close, METH_NOARGS, NULL},
    {"tick", (PyCFunction)File_tick, METH_NOARGS, NULL},
    {NULL}
};
static PyTypeObject FileType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "m.File",
    .tp_basicsize = sizeof(FileObject),
    .tp_methods = File_methods,
};
"""


_REOPEN = "self->fp = tmpfile();"  # a new FILE; the old one is left, not freed
_FCLOSE = "fclose(self->fp);\n    self->fp = NULL;"


@pytest.mark.parametrize(("begin", "end", "close", "serious"), [
    # both sides already ran without the GIL: they raced before free threading
    ("Py_BEGIN_ALLOW_THREADS", "Py_END_ALLOW_THREADS", _REOPEN, ["File_tick"]),
    ("PyThreadState *ts = PyEval_SaveThread();", "PyEval_RestoreThread(ts);", _REOPEN,
     ["File_tick"]),
    # ... but one that can use the FILE after fclose() frees it is still a crash to fix
    ("Py_BEGIN_ALLOW_THREADS", "Py_END_ALLOW_THREADS", _FCLOSE,
     ["File_close", "File_read", "File_tick"]),
    # the GIL serialised them: free threading makes the race
    ("", "", _REOPEN, ["File_close", "File_read", "File_tick"]),
])
def test_races_the_gil_never_prevented_are_information(
        scan_json: ScanJson, tmp_path: Path, begin: str, end: str, close: str,
        serious: list[str]) -> None:
    """Reviews 17 and 18: pyuwsgi's request input and tiledb's file handle are used only with
    the GIL released; free threading adds no race there (FT048 reports such regions). A race
    that frees memory stays serious (review 18: libyal's `close()` frees its file handle with
    the GIL released, and two calls can free it twice)."""
    got, findings = _serious(scan_json, tmp_path, _DETACHED % {"begin": begin, "end": end,
                                                              "close": close})
    assert sorted({fn for fn, _line in got}) == serious, findings
    assert all(f["severity"] == "info" for f in findings if f["function"] not in serious)


_CURSOR = """#include <Python.h>

typedef struct {
    PyObject_HEAD
    PyObject *sql;
    int in_use;
} StmtObject;

typedef struct {
    PyObject_HEAD
    StmtObject *statement;
} CursorObject;

static PyTypeObject StmtType;

static int stmt_create(StmtObject *st, PyObject *sql)
{
    st->in_use = 0;
    Py_INCREF(sql);
    st->sql = sql;
    return 0;
}

static PyObject *Stmt_reset(StmtObject *self, PyObject *unused)
{
    self->in_use = 0;
    Py_CLEAR(self->sql);
    Py_RETURN_NONE;
}

static PyObject *Cursor_execute(CursorObject *self, PyObject *sql)
{
    %(renew)s
    if (self->statement == NULL || stmt_create(self->statement, sql) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef Stmt_methods[] = {
    {"reset", (PyCFunction)Stmt_reset, METH_NOARGS, NULL},
    {NULL}
};
static PyMethodDef Cursor_methods[] = {
    {"execute", (PyCFunction)Cursor_execute, METH_O, NULL},
    {NULL}
};
static PyTypeObject StmtType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "m.Stmt",
    .tp_basicsize = sizeof(StmtObject),
    .tp_methods = Stmt_methods,
};
static PyTypeObject CursorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "m.Cursor",
    .tp_basicsize = sizeof(CursorObject),
    .tp_methods = Cursor_methods,
};
"""


@pytest.mark.parametrize(("renew", "fires"), [
    # sqlite3's cursor: a new statement, set up before anyone else can reach it
    ("Py_SETREF(self->statement, PyObject_New(StmtObject, &StmtType));", False),
    ("Py_XSETREF(self->statement, (StmtObject *)PyObject_New(StmtObject, &StmtType));", False),
    # the statement it already holds, which others can reach
    ("", True),
])
def test_setting_up_an_object_a_holder_was_just_pointed_at_is_construction(
        scan_json: ScanJson, tmp_path: Path, renew: str, fires: bool) -> None:
    """Review 19: sqlcipher3's `execute()` replaces `self->statement` with `PyObject_New(...)`
    and then fills it in `pysqlite_statement_create(self->statement, ...)`; those stores were
    reported as races on a statement others hold."""
    _got, findings = _serious(scan_json, tmp_path, _CURSOR % {"renew": renew})
    # (the cursor's own `statement` races between two `execute()` calls either way)
    on_statement = [f for f in findings if f["function"] == "Cursor_execute"
                    and str(f["symbol"]).startswith("Stmt.")
                    and f["severity"] in ("error", "warning")]
    assert bool(on_statement) == fires, findings


_HANDLE = """#include <Python.h>

typedef struct {
    PyObject_HEAD
    int check_same_thread;
    void *db;
} ConnObject;

extern int db_commit(void *db);
extern void db_close(void *db);

static int Conn_init(ConnObject *self, PyObject *args, PyObject *kw)
{
    self->check_same_thread = 1;
    return 0;
}

static PyObject *Conn_commit(ConnObject *self, PyObject *unused)
{
    if (self->check_same_thread && db_commit(self->db) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Conn_close(ConnObject *self, PyObject *unused)
{
    db_close(self->db);
    self->db = NULL;
    Py_RETURN_NONE;
}

static PyMethodDef Conn_methods[] = {
    {"commit", (PyCFunction)Conn_commit, METH_NOARGS, NULL},
    {"close", (PyCFunction)Conn_close, METH_NOARGS, NULL},
    {NULL}
};
static PyTypeObject ConnType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "m.Conn",
    .tp_basicsize = sizeof(ConnObject),
    .tp_init = (initproc)Conn_init,
    .tp_methods = Conn_methods,
};
"""


def test_a_finding_leads_with_the_field_a_live_method_changes_not_one_init_sets(
        scan_json: ScanJson, tmp_path: Path) -> None:
    """Review 19: sqlcipher3's `commit()` was reported as racing on `check_same_thread`,
    which only `__init__` writes; the race to fix is on `db`, which `close()` closes."""
    _got, findings = _serious(scan_json, tmp_path, _HANDLE)
    commit = [f for f in findings if f["function"] == "Conn_commit"]
    assert [f["symbol"] for f in commit] == ["Conn.db"], findings
    assert "check_same_thread" not in str(commit[0]["message"])


_META = """#include <Python.h>

static PyObject *Meta_setattro(PyObject *self, PyObject *name, PyObject *value)
{
    ((PyTypeObject *)self)->tp_vectorcall = NULL;
    return NULL;
}

static PyObject *Meta_poke(PyObject *self, PyObject *unused)
{
    ((PyTypeObject *)self)->tp_flags |= 1;
    %(use)s
    Py_RETURN_NONE;
}

static PyMethodDef Meta_methods[] = {
    {"poke", (PyCFunction)Meta_poke, METH_NOARGS, NULL},
    {NULL}
};
static PyType_Slot Meta_slots[] = {
    {Py_tp_setattro, (void *)Meta_setattro},
    {Py_tp_methods, Meta_methods},
    {0, NULL}
};
static PyType_Spec Meta_spec = {"m.Meta", 0, 0, Py_TPFLAGS_DEFAULT, Meta_slots};

PyObject *make_meta(const char *name, int size)
{
    PyType_Spec spec = {name, size, 0, Py_TPFLAGS_DEFAULT, Meta_slots};
    return PyType_FromSpec(&spec);
}
"""


@pytest.mark.parametrize(("use", "found"), [
    # every entry point stores the same NULL and none uses the field: nothing to race on
    ("", [("Meta.tp_flags", "Meta_poke")]),
    # one that tests and then calls it can call what another thread just cleared
    ("if (((PyTypeObject *)self)->tp_vectorcall)\n"
     "        ((PyTypeObject *)self)->tp_vectorcall(self, NULL, 0, NULL);",
     [("Meta.tp_flags", "Meta_poke"), ("Meta.tp_vectorcall", "Meta_setattro")]),
])
def test_a_type_built_again_at_run_time_is_judged_once_and_null_stores_nobody_uses_pass(
        scan_json: ScanJson, tmp_path: Path, use: str, found: list[tuple[str, str]]) -> None:
    """Review 19: vendored nanobind's metaclass, also built from a local `PyType_Spec` under
    a computed name, was reported twice (once as ``), for `tp_vectorcall = nullptr`, a store
    every racing thread makes alike and no code of the project reads."""
    _got, findings = _serious(scan_json, tmp_path, _META % {"use": use})
    got = sorted((str(f["symbol"]), str(f["function"])) for f in findings
                 if f["severity"] in ("error", "warning"))
    assert got == sorted(found), findings


_GETTERS = """#include <Python.h>

typedef struct { unsigned long total_in; int avail_in; } stream_t;
typedef struct { int status_code; char *data; } parser_t;
extern int stream_inflate(stream_t *s, int flush);
extern int parser_execute(parser_t *p, const char *buf, Py_ssize_t n);
extern parser_t *parser_new(void);

typedef struct {
    PyObject_HEAD
    stream_t zst;
    parser_t *parser;
} DecObject;

static PyObject *Dec_read(DecObject *self, PyObject *unused)
{
    stream_inflate(&self->zst, 0);
    Py_RETURN_NONE;
}

static PyObject *Dec_feed(DecObject *self, PyObject *data)
{
    if (parser_execute(self->parser, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data)) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Dec_total_in(DecObject *self, PyObject *unused)
{
    return PyLong_FromUnsignedLong(self->zst.total_in);
}

static PyObject *Dec_get_code(DecObject *self, PyObject *unused)
{
    return Py_BuildValue("i", self->parser->status_code);
}

static PyObject *Dec_reset(DecObject *self, PyObject *unused)
{
    %(reset)s
    Py_RETURN_NONE;
}

static PyMethodDef Dec_methods[] = {
    {"read", (PyCFunction)Dec_read, METH_NOARGS, NULL},
    {"feed", (PyCFunction)Dec_feed, METH_O, NULL},
    {"total_in", (PyCFunction)Dec_total_in, METH_NOARGS, NULL},
    {"get_code", (PyCFunction)Dec_get_code, METH_NOARGS, NULL},
    {"reset", (PyCFunction)Dec_reset, METH_NOARGS, NULL},
    {NULL}
};
static PyTypeObject DecType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "m.Dec",
    .tp_basicsize = sizeof(DecObject),
    .tp_methods = Dec_methods,
};
"""


@pytest.mark.parametrize(("reset", "serious"), [
    # what the fields hold changes only through the library: a getter's member is one word
    ("", ["Dec_feed", "Dec_read"]),
    # a method moves the parser: the getter can read one that another thread has replaced
    ("self->parser = parser_new();", ["Dec_feed", "Dec_get_code", "Dec_read", "Dec_reset"]),
])
def test_a_getter_reading_one_member_of_a_field_nobody_moves_is_information(
        scan_json: ScanJson, tmp_path: Path, reset: str, serious: list[str]) -> None:
    """Review 20: geventhttpclient's `get_code()` returns `self->parser->status_code` and
    zlib-state's `total_in()` returns `self->zst.total_in` while `feed()`/`read()` run the
    library on them: a stale number at worst."""
    got, findings = _serious(scan_json, tmp_path, _GETTERS % {"reset": reset})
    assert sorted({fn for fn, _line in got}) == serious, findings


_DOC_FIRST = """#include <Python.h>
#define MODULE_NAME "pkg.tokenizer"

typedef struct {
    PyObject_HEAD
    Py_ssize_t pos;
} TokObject;

static PyObject *Tok_next(TokObject *self)
{
    self->pos++;
    return PyLong_FromSsize_t(self->pos);
}

static PyTypeObject TokType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_basicsize = sizeof(TokObject),
    .tp_doc =
"Splits text into tokens.\\n"\\
"Not thread-safe: use one per thread.",
    .tp_iternext = (iternextfunc)Tok_next,
    .tp_name = MODULE_NAME ".Tokenizer",
};
"""


def test_a_type_is_named_by_its_designated_tp_name_not_its_first_string(
        scan_json: ScanJson, tmp_path: Path) -> None:
    """Review 20: igwn-ligolw puts `.tp_doc` before `.tp_name = MODULE_NAME ".RowBuilder"`;
    its types were named after their docstrings."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "m.c").write_text(_DOC_FIRST)
    _code, data = scan_json(str(proj), "--select", "FT074")
    findings = data["findings"]
    assert [f["symbol"] for f in findings] == ["Tokenizer.pos"], findings
    assert "documents itself as not thread-safe" in str(findings[0]["message"])


@pytest.mark.parametrize(("backend", "dirs"), [
    # scikit-build-core: CMake builds only what the CMakeLists.txt files add
    ("scikit_build_core.build", ["src/new"]),
    # setuptools decides itself: the CMakeLists.txt files say nothing of what it builds
    ("setuptools.build_meta", ["src/new", "src/old"]),
])
def test_a_directory_no_cmakelists_adds_is_not_analysed(
        scan_json: ScanJson, tmp_path: Path, backend: str, dirs: list[str]) -> None:
    """Review 22: pyg4ometry keeps `pycgal_old/` (with a CMakeLists.txt of its own) beside
    the `pycgal/` its CMakeLists.txt adds; 11 sampled findings came from the unbuilt copy."""
    proj = tmp_path / "proj"
    (proj / "src" / "new").mkdir(parents=True)
    (proj / "src" / "old").mkdir(parents=True)
    (proj / "pyproject.toml").write_text(
        f'[build-system]\nrequires = []\nbuild-backend = "{backend}"\n')
    (proj / "CMakeLists.txt").write_text("project(p)\nadd_subdirectory(src)\n")
    (proj / "src" / "CMakeLists.txt").write_text("add_subdirectory(new)\n")
    for d in ("new", "old"):
        (proj / "src" / d / "CMakeLists.txt").write_text(f"add_library({d} m.c)\n")
        (proj / "src" / d / "m.c").write_text(
            (_VOIDPTR % {"reset": ""}).replace("VoidPtr", f"VoidPtr{d.title()}"))
    _code, data = scan_json(str(proj), "--select", "FT034")
    assert sorted({str(f["path"]).rsplit("/", 1)[0] for f in data["findings"]}) == dirs, \
        data["findings"]
    if dirs == ["src/new"]:
        assert "CMake never builds it" in data["files"]["src/old/m.c"]
