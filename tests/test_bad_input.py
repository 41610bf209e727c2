"""Bad input becomes a diagnostic; the scan goes on and keeps what it found elsewhere."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ScanJson
from gilaudit.frontends.c import result as c_result

GOOD = """#include <Python.h>
static PyObject *cache;
static PyObject *
get(PyObject *self, PyObject *key)
{
    return PyDict_GetItem(cache, key);
}
static PyMethodDef methods[] = {{"get", get, METH_O, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "good", NULL, -1, methods};
PyMODINIT_FUNC PyInit_good(void) { return PyModule_Create(&def); }
"""


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "good.c").write_text(GOOD)
    return root


def _kept_good_finding(report: dict) -> None:
    assert any(f["rule"] == "FT011" and f["path"] == "good.c" for f in report["findings"]), \
        "the finding in the good file was lost"


def _diag(report: dict, path: str) -> dict:
    found = [d for d in report["diagnostics"] if d["path"] == path]
    assert found, f"no diagnostic for {path}: {report['diagnostics']}"
    return found[0]


def test_unparsable_c(scan_json: ScanJson, tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "broken.c").write_text(
        "#include <Python.h>\nstatic PyObject *g;\nint f(void) { return }}} @@@ ;\n"
        "PyObject *h(PyObject *d) { return PyDict_GetItem(g, d); }\n")
    code, report = scan_json(str(root))
    assert code == 1
    _kept_good_finding(report)
    assert _diag(report, "broken.c")["kind"] == "parse-error"
    assert report["files"]["broken.c"] == "parsed (partial)"
    # What did parse in the broken file is still analysed.
    assert any(f["path"] == "broken.c" and f["rule"] == "FT011" for f in report["findings"])


def test_binary_junk_named_c(scan_json: ScanJson, tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "junk.c").write_bytes(b'#include "Python.h"\n' + bytes(range(256)) * 40)
    _code, report = scan_json(str(root))
    _kept_good_finding(report)
    assert _diag(report, "junk.c")["kind"] == "binary"
    assert report["files"]["junk.c"].startswith("failed")


def test_non_utf8_source(scan_json: ScanJson, tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "latin.c").write_bytes(
        b"/* caf\xe9 cr\xe8me */\n#include <Python.h>\nstatic PyObject *d;\n"
        b"PyObject *f(PyObject *k) { return PyDict_GetItem(d, k); }\n")
    _code, report = scan_json(str(root))
    _kept_good_finding(report)
    assert _diag(report, "latin.c")["kind"] == "encoding"
    hits = [f for f in report["findings"] if f["path"] == "latin.c"]
    assert hits and hits[0]["line"] == 4  # offsets stay right past the non-UTF-8 bytes


def test_file_over_size_limit(scan_json: ScanJson, tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "pyproject.toml").write_text("[tool.gilaudit]\nmax-file-size = 2000\n")
    (root / "huge.c").write_text("#include <Python.h>\n" + "int x;\n" * 1000)
    _code, report = scan_json(str(root))
    _kept_good_finding(report)
    assert _diag(report, "huge.c")["kind"] == "too-large"


def test_dangling_symlink_and_symlink_loops(scan_json: ScanJson, tmp_path: Path) -> None:
    root = _tree(tmp_path)
    os.symlink(root / "nowhere.c", root / "dangling.c")
    os.symlink(root / "loop_b.c", root / "loop_a.c")
    os.symlink(root / "loop_a.c", root / "loop_b.c")
    (root / "sub").mkdir()
    os.symlink(root, root / "sub" / "up")  # a directory loop
    _code, report = scan_json(str(root))
    _kept_good_finding(report)
    for name in ("dangling.c", "loop_a.c", "loop_b.c"):
        assert _diag(report, name)["kind"] == "unreadable"
    assert _diag(report, "sub/up")["kind"] == "skipped-symlink"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode; the "
                    "dangling-symlink and loop cases above cover unreadable files for root")
def test_permission_denied(scan_json: ScanJson, tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "secret.c").write_text(GOOD.replace("PyInit_good", "PyInit_secret"))
    (root / "secret.c").chmod(0)
    locked = root / "locked"
    locked.mkdir()
    (locked / "x.c").write_text(GOOD)
    locked.chmod(0)
    try:
        _code, report = scan_json(str(root))
    finally:
        locked.chmod(0o755)
        (root / "secret.c").chmod(0o644)
    _kept_good_finding(report)
    assert _diag(report, "secret.c")["kind"] == "unreadable"
    assert _diag(report, "locked")["kind"] == "unreadable"


def test_missing_header_is_reported_and_analysis_goes_on(scan_json: ScanJson,
                                                         tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "needs.c").write_text(
        '#include <Python.h>\n#include "not_here/thing.h"\nstatic PyObject *g;\n'
        "PyObject *f(PyObject *k) { return PyDict_GetItem(g, k); }\n")
    _code, report = scan_json(str(root))
    _kept_good_finding(report)
    d = _diag(report, "needs.c")
    assert d["kind"] == "missing-header" and "not_here/thing.h" in d["message"]
    assert any(f["path"] == "needs.c" and f["rule"] == "FT011" for f in report["findings"])


def test_bad_config_is_a_diagnostic(scan_json: ScanJson, tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "pyproject.toml").write_text(
        '[tool.gilaudit]\nselect = "FT0"\nignore = ["FT999"]\nbogus = 1\n'
        'severity = {FT011 = "loud"}\nfail-on = "sometimes"\n')
    code, report = scan_json(str(root))
    msgs = [d["message"] for d in report["diagnostics"] if d["kind"] == "config"]
    assert any("bogus: unknown key" in m for m in msgs)
    assert any("'FT999'" in m for m in msgs)
    assert any("severity.FT011" in m for m in msgs)
    assert any("fail-on" in m for m in msgs)
    _kept_good_finding(report)
    assert code == 1


def test_unparsable_pyproject(scan_json: ScanJson, tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "pyproject.toml").write_text("[tool.gilaudit\nselect = [")
    _code, report = scan_json(str(root))
    assert any(d["kind"] == "config" for d in report["diagnostics"])
    _kept_good_finding(report)


def test_setup_py_is_read_not_run(scan_json: ScanJson, tmp_path: Path) -> None:
    root = _tree(tmp_path)
    marker = tmp_path / "executed"
    (root / "setup.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from setuptools import setup, Extension\n"
        "setup(ext_modules=[Extension('pkg.good', ['good.c'], include_dirs=['inc'])])\n")
    _code, report = scan_json(str(root))
    assert not marker.exists()
    assert {f["module"] for f in report["findings"]} == {"pkg.good"}


def test_setup_py_syntax_error(scan_json: ScanJson, tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "setup.py").write_text("def broken(:\n")
    _code, report = scan_json(str(root))
    assert _diag(report, "setup.py")["kind"] == "build-file"
    _kept_good_finding(report)


def test_matcher_bug_is_a_diagnostic_not_a_crash(scan_json: ScanJson, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_a: object) -> Iterator[object]:
        raise RuntimeError("boom")
        yield  # pragma: no cover

    monkeypatch.setattr(c_result, "REGISTRY",
                        ((broken, frozenset({"FT040"})), *c_result.REGISTRY))
    root = _tree(tmp_path)
    _code, report = scan_json(str(root))
    _kept_good_finding(report)
    d = _diag(report, "good.c")
    assert d["kind"] == "internal-error" and "boom" in d["message"] and "FT040" in d["message"]


def test_generated_cython_c_is_skipped_with_a_diagnostic(scan_json: ScanJson,
                                                         tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "fast.c").write_text("/* Generated by Cython 3.0.11 */\n" + GOOD.replace(
        "PyInit_good", "PyInit_fast"))
    _code, report = scan_json(str(root))
    _kept_good_finding(report)
    assert _diag(report, "fast.c")["kind"] == "generated"
    assert report["files"]["fast.c"] == "skipped: generated code"
    assert not [f for f in report["findings"] if f["path"] == "fast.c"]


def test_sources_outside_every_extension_are_not_reported(scan_json: ScanJson,
                                                          tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "old_copy.c").write_text(GOOD.replace("PyInit_good", "PyInit_old"))
    (root / "setup.py").write_text(
        "from setuptools import setup, Extension\n"
        "setup(ext_modules=[Extension('pkg.good', sources=['good.c'])])\n")
    _code, report = scan_json(str(root))
    _kept_good_finding(report)
    assert report["files"]["old_copy.c"] == "skipped: not in any extension's sources"
    assert not [f for f in report["findings"] if f["path"] == "old_copy.c"]


def test_sdist_target_is_unpacked_and_scanned(scan_json: ScanJson, tmp_path: Path) -> None:
    root = _tree(tmp_path)
    sdist = tmp_path / "good-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        tar.add(root / "good.c", arcname="good-1.0/good.c")
        evil = tarfile.TarInfo("../../evil.c")
        payload = b"int evil;\n"
        evil.size = len(payload)
        tar.addfile(evil, io.BytesIO(payload))
    code, report = scan_json(str(sdist))
    assert code == 1
    paths = {f["path"] for f in report["findings"]}
    assert f"{sdist}/good-1.0/good.c" in paths
    assert any(d["kind"] == "path-traversal" for d in report["diagnostics"])
    assert not (tmp_path.parent / "evil.c").exists()
