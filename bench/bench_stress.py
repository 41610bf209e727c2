"""Speed benchmark for `gilaudit stress` (run by `make bench`).

Builds the dynamic-phase fixture extensions and a generated module with a few dozen callables
("many_callables": 30 module functions and a class with 6 methods and a property) for the
interpreter given (default: the one running this script), then stresses each module with the
default settings (threads, 100 calls per thread, 5 trials, 60 s budget, 10 s hang timeout) in
the way `gilaudit stress` does, and prints for each: the verdict, the callables driven, the
calls made, the time to the verdict and calls per second. The target is a verdict on a module
with a few dozen callables within its 60 s budget on 2 cores; a missed target is reported,
not failed. Results go to bench/.cache/stress-last.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from fixtures.dynamic.build import FIXTURES, build_extension  # noqa: E402
from gilaudit.dynamic.interpreters import Interpreter, describe  # noqa: E402
from gilaudit.dynamic.stress import StressOptions, stress_modules  # noqa: E402
from gilaudit.rulebook import load_rulebook  # noqa: E402

MODULES = ["many_callables", "clean_funcs", "clean_counter", "racy_counter", "racy_raise",
           "crashy", "deadlock", "gil_racy", "argorder", "argorder_ok", "sortedbag",
           "sortedbag_ok", "pair", "pair_ok", "slowpoke"]
TARGET_SECONDS = 60.0


def many_callables_source(functions: int = 30) -> str:
    """A module with a few dozen small, correct callables of the usual calling conventions."""
    parts = ['#define PY_SSIZE_T_CLEAN', '#include <Python.h>', '']
    table = []
    for i in range(functions):
        kind = i % 3
        if kind == 0:
            parts.append(f"static PyObject *f{i}(PyObject *m, PyObject *arg) {{\n"
                         f"    long v = PyLong_AsLong(arg);\n"
                         f"    if (v == -1 && PyErr_Occurred()) return NULL;\n"
                         f"    return PyLong_FromLong(v * {i + 1});\n}}")
            table.append(f'{{"f{i}", f{i}, METH_O, "f{i}($module, x, /)\\n--\\n\\n"}}')
        elif kind == 1:
            parts.append(f"static PyObject *f{i}(PyObject *m, PyObject *args) {{\n"
                         f"    PyObject *a, *b;\n"
                         f"    if (!PyArg_ParseTuple(args, \"OO\", &a, &b)) return NULL;\n"
                         f"    return PyTuple_Pack(2, b, a);\n}}")
            table.append(f'{{"f{i}", f{i}, METH_VARARGS, NULL}}')
        else:
            parts.append(f"static PyObject *f{i}(PyObject *m, PyObject *unused) {{\n"
                         f"    return PyUnicode_FromString(\"value {i}\");\n}}")
            table.append(f'{{"f{i}", f{i}, METH_NOARGS, "f{i}($module, /)\\n--\\n\\n"}}')
    parts.append('''
typedef struct { PyObject_HEAD PyObject *items; } BoxObject;
static int Box_init(BoxObject *self, PyObject *args, PyObject *kw) {
    Py_XSETREF(self->items, PyList_New(0));
    return self->items ? 0 : -1;
}
static void Box_dealloc(BoxObject *self) {
    PyTypeObject *tp = Py_TYPE(self);
    Py_XDECREF(self->items);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}
static PyObject *Box_put(BoxObject *self, PyObject *x) {
    if (PyList_Append(self->items, x) < 0) return NULL;
    Py_RETURN_NONE;
}
static PyObject *Box_size(BoxObject *self, PyObject *u) {
    return PyLong_FromSsize_t(PyList_GET_SIZE(self->items));
}
static PyObject *Box_clear(BoxObject *self, PyObject *u) {
    if (PyList_SetSlice(self->items, 0, PY_SSIZE_T_MAX, NULL) < 0) return NULL;
    Py_RETURN_NONE;
}
static PyObject *Box_snapshot(BoxObject *self, PyObject *u) {
    return PyList_GetSlice(self->items, 0, PY_SSIZE_T_MAX);
}
static PyObject *Box_contains(BoxObject *self, PyObject *x) {
    int r = PySequence_Contains(self->items, x);
    if (r < 0) return NULL;
    return PyBool_FromLong(r);
}
static PyObject *Box_describe(BoxObject *self, PyObject *u) {
    return PyUnicode_FromFormat("Box of %zd", PyList_GET_SIZE(self->items));
}
static PyObject *Box_get_count(BoxObject *self, void *c) {
    return PyLong_FromSsize_t(PyList_GET_SIZE(self->items));
}
static PyMethodDef Box_methods[] = {
    {"put", (PyCFunction)Box_put, METH_O, "put($self, x, /)\\n--\\n\\n"},
    {"size", (PyCFunction)Box_size, METH_NOARGS, "size($self, /)\\n--\\n\\n"},
    {"clear", (PyCFunction)Box_clear, METH_NOARGS, "clear($self, /)\\n--\\n\\n"},
    {"snapshot", (PyCFunction)Box_snapshot, METH_NOARGS, "snapshot($self, /)\\n--\\n\\n"},
    {"contains", (PyCFunction)Box_contains, METH_O, "contains($self, x, /)\\n--\\n\\n"},
    {"describe", (PyCFunction)Box_describe, METH_NOARGS, "describe($self, /)\\n--\\n\\n"},
    {NULL}
};
static PyGetSetDef Box_getset[] = {{"count", (getter)Box_get_count, NULL, NULL, NULL}, {NULL}};
static PyType_Slot Box_slots[] = {
    {Py_tp_doc, "Box()\\n--\\n\\n"}, {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, Box_init}, {Py_tp_dealloc, Box_dealloc},
    {Py_tp_methods, Box_methods}, {Py_tp_getset, Box_getset}, {0, NULL}
};
static PyType_Spec Box_spec = {"many_callables.Box", sizeof(BoxObject), 0,
                               Py_TPFLAGS_DEFAULT, Box_slots};
static int many_exec(PyObject *m) {
    PyObject *t = PyType_FromSpec(&Box_spec);
    if (t == NULL) return -1;
    if (PyModule_AddObject(m, "Box", t) < 0) { Py_DECREF(t); return -1; }
    return 0;
}''')
    parts.append("static PyMethodDef many_methods[] = {\n    " + ",\n    ".join(table)
                 + ",\n    {NULL}\n};")
    parts.append('''static PyModuleDef_Slot many_slots[] = {
    {Py_mod_exec, many_exec},
#ifdef Py_GIL_DISABLED
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL}
};
static struct PyModuleDef many_def = {PyModuleDef_HEAD_INIT, "many_callables", NULL, 0,
                                      many_methods, many_slots};
PyMODINIT_FUNC PyInit_many_callables(void) { return PyModuleDef_Init(&many_def); }
''')
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--modules", nargs="*", default=MODULES)
    args = parser.parse_args(argv)
    interp = describe(args.python, found_by="--python")
    if not isinstance(interp, Interpreter):
        print(f"bench_stress: {interp.message}", file=sys.stderr)
        return 2
    book = load_rulebook()
    options = StressOptions()
    rows = []
    with tempfile.TemporaryDirectory(prefix="gilaudit-bench-stress-") as scratch:
        out = Path(scratch)
        source = out / "many_callables.c"
        source.write_text(many_callables_source())
        build_extension(source, out / "ext", python=args.python)
        for name in args.modules:
            if name != "many_callables":
                build_extension(FIXTURES / f"{name}.c", out / "ext", python=args.python)
        print(f"interpreter: {interp.label}")
        print(f"settings: {options.threads} threads x {options.iterations} calls x "
              f"{options.trials} trials, budget {options.budget:g} s, timeout "
              f"{options.timeout:g} s")
        print(f"{'module':<16} {'verdict':<14} {'driven':>6} {'calls':>9} {'seconds':>8} "
              f"{'calls/s':>9}  findings")
        for name in args.modules:
            started = time.perf_counter()
            got = stress_modules(interp, [name], import_paths=[str(out / "ext")],
                                 options=options, book=book, repro_dir=out / "repro")
            seconds = time.perf_counter() - started
            module = got.summary.modules[0]
            rules = sorted({f.rule for f in got.findings})
            rate = module.calls / seconds if seconds else 0.0
            rows.append({"module": name, "verdict": module.verdict,
                         "driven": len(module.driven), "calls": module.calls,
                         "seconds": round(seconds, 2), "calls_per_s": round(rate),
                         "findings": rules, "children": module.children})
            print(f"{name:<16} {module.verdict:<14} {len(module.driven):>6} "
                  f"{module.calls:>9,} {seconds:>8.2f} {rate:>9,.0f}  {' '.join(rules)}")
    many = next((r for r in rows if r["module"] == "many_callables"), None)
    if many is not None:
        ok = many["seconds"] <= TARGET_SECONDS and many["verdict"] == "clean"
        print(f"\nverdict on a module with {many['driven']} driven callables in "
              f"{many['seconds']} s (target: a clean verdict within {TARGET_SECONDS:g} s): "
              f"{'met' if ok else 'MISSED'}")
    cache = REPO / "bench" / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    label = "stress-ft-last.json" if interp.free_threaded else "stress-last.json"
    (cache / label).write_text(json.dumps(
        {"interpreter": interp.to_dict(), "settings": options.to_dict(), "rows": rows},
        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
