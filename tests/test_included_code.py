"""Code that a unit #includes (a `.c` fragment, a header of static functions) is analysed in
its includer's context and reported at its own path, once."""

from __future__ import annotations

from pathlib import Path

from conftest import ScanJson

MAIN = """#include <Python.h>
static PyObject *registry;
static long version;
#include "helpers.h"
#include "frag.c"

static PyMethodDef methods[] = {
    {"lookup", lookup, METH_O, NULL}, {"bump", bump, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "m", NULL, -1, methods};
PyMODINIT_FUNC PyInit_m(void) { return PyModule_Create(&def); }
"""
HELPERS = """/* declarations and one static function */
static PyObject *lookup(PyObject *self, PyObject *key);
static inline PyObject *
peek(PyObject *key)
{
    return PyDict_GetItem(registry, key);
}
"""
FRAG = """/* compiled as part of main.c, never on its own */
static PyObject *
lookup(PyObject *self, PyObject *key)
{
    PyObject *v = peek(key);
    return Py_XNewRef(v);
}

static PyObject *
bump(PyObject *self, PyObject *unused)
{
    version++;
    Py_RETURN_NONE;
}
"""


def test_included_code_is_analysed_once(scan_json: ScanJson, tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "main.c").write_text(MAIN)
    (root / "helpers.h").write_text(HELPERS)
    (root / "frag.c").write_text(FRAG)
    (root / "other.c").write_text('#include <Python.h>\nstatic PyObject *registry;\n'
                                  '#include "helpers.h"\n')
    _code, report = scan_json(str(root))
    got = {(f["path"], f["line"], f["rule"]) for f in report["findings"]}
    assert ("helpers.h", 6, "FT011") in got
    assert ("frag.c", 12, "FT040") in got
    assert sum(1 for p, _l, r in got if p == "helpers.h" and r == "FT011") == 1
    assert report["files"]["frag.c"] == "parsed (included from main.c)"
    modules = {f["path"]: f["module"] for f in report["findings"]}
    assert modules["frag.c"] == "m" and modules["helpers.h"] == "m"


def test_an_include_directory_with_its_own_python_h_wins(tmp_path: Path,
                                                         scan_json: ScanJson) -> None:
    """CPython's Modules/ scanned with `-I Include`: its Python.h, not the interpreter's
    (which a precompiled prelude would otherwise have read first)."""
    own = tmp_path / "Include"
    own.mkdir()
    # guarded like the real one: read after the interpreter's, it would add nothing
    (own / "Python.h").write_text("#ifndef Py_PYTHON_H\n#define OWN_PYTHON_H 1\n"
                                  "#include_next <Python.h>\n#endif\n")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "m.c").write_text("#include <Python.h>\n#ifndef OWN_PYTHON_H\n"
                              "#error the project's Python.h was not used\n#endif\n"
                              "PyObject *f(PyObject *o) { return Py_NewRef(o); }\n")
    _code, report = scan_json(str(proj), "-I", str(own))
    assert report["files"]["m.c"] == "parsed", report["diagnostics"]
