"""[tool.gilaudit] configuration and inline suppressions."""

from __future__ import annotations

from pathlib import Path

from conftest import ScanJson

SRC = """#include <Python.h>
static PyObject *cache;
static int hits;

static PyObject *
lookup(PyObject *self, PyObject *key)
{
    hits++;
    return PyDict_GetItem(cache, key);  // gilaudit: ignore[FT011] cache is frozen after import
}

static PyObject *
lookup2(PyObject *self, PyObject *key)
{
    // gilaudit: ignore[FT012]
    return PyDict_GetItem(cache, key);
}

static PyObject *
lookup3(PyObject *self, PyObject *key)
{
    return PyDict_GetItemString(cache, "k");  // gilaudit: ignore
}

static PyMethodDef methods[] = {
    {"lookup", lookup, METH_O, NULL}, {"lookup2", lookup2, METH_O, NULL},
    {"lookup3", lookup3, METH_O, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "m", NULL, -1, methods};
PyMODINIT_FUNC PyInit_m(void) { return PyModule_Create(&def); }
"""


def _project(tmp_path: Path, pyproject: str = "") -> Path:
    root = tmp_path / "p"
    root.mkdir()
    (root / "m.c").write_text(SRC)
    if pyproject:
        (root / "pyproject.toml").write_text(pyproject)
    return root


def test_suppressions(scan_json: ScanJson, tmp_path: Path) -> None:
    _c, report = scan_json(str(_project(tmp_path)))
    got = {(f["rule"], f["line"]) for f in report["findings"]}
    assert ("FT011", 9) not in got  # suppressed on its line, with a reason
    assert ("FT011", 16) in got  # the comment above names another rule...
    assert ("FT900", 15) in got  # ...so it suppressed nothing
    assert ("FT012", 22) in got  # a bare ignore suppresses nothing
    assert ("FT901", 22) in got
    assert ("FT040", 8) in got


def test_severity_override_and_off(scan_json: ScanJson, tmp_path: Path) -> None:
    root = _project(tmp_path, '[tool.gilaudit]\nseverity = { FT040 = "error", FT009 = "off" }\n')
    _c, report = scan_json(str(root))
    sev = {f["rule"]: f["severity"] for f in report["findings"]}
    assert sev["FT040"] == "error"
    assert "FT009" not in sev


def test_config_select_ignore_and_cli_precedence(scan_json: ScanJson, tmp_path: Path) -> None:
    root = _project(tmp_path, '[tool.gilaudit]\nselect = ["FT04"]\nfail-on = "never"\n')
    code, report = scan_json(str(root))
    assert {f["rule"] for f in report["findings"]} == {"FT040"}
    assert code == 0
    code, report = scan_json(str(root), "--select", "FT011", "--fail-on", "error")
    assert {f["rule"] for f in report["findings"]} == {"FT011"}
    assert code == 1


def test_exclude(scan_json: ScanJson, tmp_path: Path) -> None:
    root = _project(tmp_path, '[tool.gilaudit]\nexclude = ["vendor"]\n')
    (root / "vendor").mkdir()
    (root / "vendor" / "v.c").write_text(SRC)
    _c, report = scan_json(str(root))
    assert not [f for f in report["findings"] if f["path"].startswith("vendor")]
    assert "vendor/v.c" not in report["files"]


def test_vendored_pure_c_is_not_reported(scan_json: ScanJson, tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / "lib").mkdir()
    (root / "lib" / "zlibish.c").write_text(
        "#include <string.h>\nstatic char buf[64];\n"
        "char *tok(char *s) { buf[0] = 1; return strtok(s, \",\"); }\n")
    _c, report = scan_json(str(root))
    assert report["files"]["lib/zlibish.c"].startswith("skipped")
    assert not [f for f in report["findings"] if f["path"].startswith("lib/")]
