"""Code that a unit #includes (a `.c` fragment, a header of static functions) is analysed in
its includer's context and reported at its own path, once."""

from __future__ import annotations

import os
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


def test_unity_build_fragments_are_analysed_in_their_includer(tmp_path: Path,
                                                              scan_json: ScanJson) -> None:
    """greenlet's greenlet.cpp includes TGreenlet.cpp and friends: alone, a fragment lacks what
    its includer declares first, so it is analysed once, in the includer's context (also when
    the target is given by a relative path); and `<stdint.h>` is never a project file of that
    name elsewhere in the tree (rapidjson's MSVC-only copy)."""
    (tmp_path / "msinttypes").mkdir()
    (tmp_path / "msinttypes" / "stdint.h").write_text('#error "MSVC only"\n')
    (tmp_path / "unity.cpp").write_text(
        "#include <Python.h>\n#include <stdint.h>\nstatic int counter;\n"
        '#include "part.cpp"\n'
        "static PyModuleDef def = {PyModuleDef_HEAD_INIT, \"unity\", NULL, 0, methods};\n"
        "PyMODINIT_FUNC PyInit_unity(void) { return PyModuleDef_Init(&def); }\n")
    (tmp_path / "part.cpp").write_text(
        "static PyObject *bump(PyObject *m, PyObject *a) { counter++; Py_RETURN_NONE; }\n"
        'static PyMethodDef methods[] = {{"bump", bump, METH_NOARGS, NULL}, {NULL}};\n')
    cwd = os.getcwd()
    os.chdir(tmp_path.parent)
    try:
        _code, report = scan_json(tmp_path.name, "--select", "FT040")
    finally:
        os.chdir(cwd)
    assert report["files"]["unity.cpp"] == "parsed", report["diagnostics"]
    assert report["files"]["part.cpp"] == "parsed (included from unity.cpp)"
    assert [(f["path"], f["line"]) for f in report["findings"]] == [("part.cpp", 1)]
