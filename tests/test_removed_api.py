"""FT145's facts and table: which `Py...` names a file uses in compiled code, and the names
CPython removed (generated from real headers by tools/removed_c_api.py)."""

from __future__ import annotations

from pathlib import Path

from conftest import ScanJson
from gilaudit.frontends import textscan
from gilaudit.frontends.c.cursors import Text
from gilaudit.frontends.c.mentions import api_mentions
from gilaudit.frontends.removed_api import removed_names


def _text(raw: str) -> Text:
    code, bare = textscan.strip_comments_and_strings(raw)
    return Text(raw=raw, code=code, bare=bare, index=textscan.LineIndex.of(raw))


def test_uses_defines_tests_and_lvalues_are_told_apart() -> None:
    raw = (
        '#ifdef PyUnicode_GET_SIZE\n'                      # a test, not a use
        '#define MY_LEN(o) PyUnicode_GET_SIZE(o)\n'       # a macro body is compiled code
        '#define _PyLong_AsInt \\\n  PyLong_AsInt\n'       # the project's own shim
        'static int f(PyObject *o) {\n'
        '    /* _PyTime_t in a comment */ const char *s = "PyEval_CallObject";\n'
        '    Py_TYPE(o) = &PyList_Type;\n'
        '    Py_SIZE(o) == 2;\n'
        '    return _PyLong_AsInt(o);\n'
        '}\n'
        '#define CHECK(PyTryBlock) if (PyErr_CheckSignals()) PyTryBlock\n'  # a parameter
        'typedef struct { int n; } _PyOptState;\n'
        'extern "C" const char*\n_PyMem_GetCurrentAllocatorName();\n'  # memray's own
        'PyDoc_STRVAR(_PyLong_Format, "a macro used at file scope declares nothing");\n'
    )
    got = {(m.name, m.detail): m.line for m in api_mentions(_text(raw))}
    assert got[("PyUnicode_GET_SIZE", "")] == 2
    assert got[("_PyLong_AsInt", "define")] == 3
    assert got[("PyLong_AsInt", "")] == 4
    assert got[("_PyLong_AsInt", "")] == 9
    assert got[("Py_TYPE", "=")] == 7
    assert ("Py_SIZE", "=") not in got  # a comparison, not an assignment
    assert ("_PyTime_t", "") not in got and ("PyEval_CallObject", "") not in got
    assert ("PyTryBlock", "") not in got and ("PyErr_CheckSignals", "") in got
    assert got[("_PyOptState", "define")] == 12
    assert got[("_PyMem_GetCurrentAllocatorName", "define")] == 14
    assert ("PyDoc_STRVAR", "define") not in got and ("_PyLong_Format", "define") not in got


def test_table_holds_what_whatsnew_says_and_nothing_3_13_still_has() -> None:
    table = removed_names()
    assert table["_PyLong_AsInt"].removed == "3.13"
    assert "PyLong_AsInt" in table["_PyLong_AsInt"].use
    assert table["PyUnicode_AS_UNICODE"].removed == "3.12"
    assert table["PyUnicode_EncodeUTF8"].removed == "3.11"
    assert table["Py_TRASHCAN_SAFE_BEGIN"].removed == "3.13"
    assert table["_PyDict_GetItemWithError"].internal
    for kept in ("PyLong_AsLong", "PyEval_InitThreads", "Py_TRASHCAN_BEGIN", "PyDict_GetItem",
                 "_PyBytes_Resize", "Py_SetProgramName"):
        assert kept not in table, kept


def test_lvalue_accessor_and_build_core(scan_json: ScanJson, tmp_path: Path) -> None:
    (tmp_path / "m.c").write_text(
        "#include <Python.h>\n"
        "static void retype(PyObject *o) { Py_TYPE(o) = &PyList_Type; }\n"
        "static int peek(PyObject *d) { return _PyDict_GetItemWithError(d, d) != NULL; }\n"
        "static int as_int(PyObject *o) { return _PyLong_AsInt(o); }\n"
        "static void gone(PyObject *o) {\n"
        "    Py_TRASHCAN_SAFE_BEGIN(o)\n"
        "    Py_TRASHCAN_SAFE_END(o)\n"
        "}\n")
    _code, report = scan_json(str(tmp_path), "--select", "FT145")
    (finding,) = report["findings"]
    assert (finding["line"], finding["symbol"]) == (2, "Py_TYPE(...) =")
    assert "Py_SET_TYPE" in finding["message"] and "4 more removed names" in finding["message"]
    notes = [(n["line"], n["message"].split("`")[1]) for n in finding["notes"]]
    assert notes == [(3, "_PyDict_GetItemWithError"), (4, "_PyLong_AsInt"),
                     (6, "Py_TRASHCAN_SAFE_BEGIN"), (7, "Py_TRASHCAN_SAFE_END")]
    assert "Py_TRASHCAN_BEGIN" in finding["notes"][2]["message"]
    # Built as part of CPython's core, the internal headers are there: only the public
    # removal is still one.
    (tmp_path / "m.c").write_text("#define Py_BUILD_CORE 1\n" + (tmp_path / "m.c").read_text())
    _code, report = scan_json(str(tmp_path), "--select", "FT145")
    (finding,) = report["findings"]
    assert [n["line"] for n in finding["notes"]] == [5, 7, 8]  # one line down


def test_object_state_findings_say_the_module_does_not_build_yet(
        scan_json: ScanJson, tmp_path: Path) -> None:
    # asyncpg 0.29's record type: its races are real once it builds, and it cannot build for
    # 3.13 while it keeps Py_TRASHCAN_SAFE_BEGIN.
    source = (
        "#include <Python.h>\n"
        "typedef struct { PyObject_HEAD long hits; } CounterObject;\n"
        "static PyObject *Counter_hit(CounterObject *self, PyObject *unused)\n"
        "{ self->hits++; return PyLong_FromLong(self->hits); }\n"
        "static PyObject *Counter_get(CounterObject *self, PyObject *unused)\n"
        "{ return PyLong_FromLong(self->hits); }\n"
        "static PyObject *Counter_as_int(CounterObject *self, PyObject *o)\n"
        "{ return PyLong_FromLong(_PyLong_AsInt(o)); }\n"
        "static PyMethodDef Counter_methods[] = {\n"
        "    {\"hit\", (PyCFunction)Counter_hit, METH_NOARGS, NULL},\n"
        "    {\"get\", (PyCFunction)Counter_get, METH_NOARGS, NULL},\n"
        "    {\"as_int\", (PyCFunction)Counter_as_int, METH_O, NULL},\n"
        "    {NULL, NULL, 0, NULL}};\n"
        "static PyTypeObject CounterType = {\n"
        "    PyVarObject_HEAD_INIT(NULL, 0)\n"
        "    .tp_name = \"m.Counter\", .tp_basicsize = sizeof(CounterObject),\n"
        "    .tp_methods = Counter_methods, .tp_new = PyType_GenericNew};\n"
        "static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, \"m\", NULL, 0, NULL};\n"
        "PyMODINIT_FUNC PyInit_m(void) { return PyModule_Create(&mod); }\n")
    (tmp_path / "m.c").write_text(source)
    _code, report = scan_json(str(tmp_path), "--select", "FT034,FT145")
    state = [f for f in report["findings"] if f["rule"] == "FT034"]
    assert state, report["findings"]
    for f in state:
        assert any("cannot be built for CPython 3.13 yet (`_PyLong_AsInt`, FT145)"
                   in n["message"] and n["line"] == 8 for n in f["notes"]), f["notes"]
    # Ported, the same races carry no such note.
    (tmp_path / "m.c").write_text(source.replace("_PyLong_AsInt(o)", "PyLong_AsLong(o)"))
    _code, report = scan_json(str(tmp_path), "--select", "FT034,FT145")
    assert all("FT145" not in n["message"] for f in report["findings"] for n in f["notes"])
    assert any(f["rule"] == "FT034" for f in report["findings"])
