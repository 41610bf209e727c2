"""One vocabulary for hazards: every rule's category is a row of rules/README.md, whatever
front end finds it, and every rule and finding says where it was found (its language)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import REPORT_SCHEMA, ScanJson, validate_report
from gilaudit.cli import main
from gilaudit.dynamic.evidence import Problem
from gilaudit.dynamic.stress import findings_of
from gilaudit.errors import RuleCatalogueError
from gilaudit.language import LANGUAGES, language_of, path_language
from gilaudit.model import Finding
from gilaudit.rulebook import _rule_from_table, load_rulebook

BOOK = load_rulebook()
RULES_DIR = Path(__file__).resolve().parents[1] / "src" / "gilaudit" / "rules"

CPP = """\
#include <Python.h>

static PyObject *cache;

static PyObject *get(PyObject *self, PyObject *key) {
    PyObject *value = PyDict_GetItem(cache, key);
    Py_XINCREF(value);
    return value;
}

static PyMethodDef methods[] = {{"get", get, METH_O, NULL}, {NULL, NULL, 0, NULL}};
static PyModuleDef_Slot slots[] = {{0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "ext", NULL, 0, methods, slots};

PyMODINIT_FUNC PyInit_ext(void) {
    cache = PyDict_New();
    return PyModuleDef_Init(&def);
}
"""
PYX = """\
from cpython.dict cimport PyDict_GetItem


def lookup(dict d, key):
    return <object>PyDict_GetItem(d, key)
"""


def _table() -> dict[str, set[str]]:
    """category -> the rule ids its row of rules/README.md names."""
    rows: dict[str, set[str]] = {}
    for line in (RULES_DIR / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("category", "---"):
            continue
        assert cells[0] not in rows, f"{cells[0]} has two rows"
        rows[cells[0]] = set(re.findall(r"FT\d{3}", cells[2]))
    return rows


def test_every_category_is_a_row_of_the_table_and_each_row_lists_its_rules() -> None:
    rows = _table()
    assert rows, "rules/README.md has no category table"
    for rule in BOOK.rules.values():
        assert rule.category in rows, f"{rule.id}: category {rule.category!r} is not in the table"
    for category, ids in rows.items():
        expected = {r.id for r in BOOK.rules.values() if r.category == category}
        assert ids == expected, f"{category}: the table says {sorted(ids)}, the TOML {expected}"


def test_categories_name_hazards_not_front_ends() -> None:
    categories = {r.category for r in BOOK.rules.values()}
    assert not categories & {"cython", "bindings", "binary", "dynamic"}
    assert BOOK.get("FT090").category == "module-declaration"  # the Cython directive
    assert BOOK.get("FT110").category == "module-declaration"  # pybind11
    assert BOOK.get("FT100").category == "borrowed-reference"
    assert BOOK.get("FT150").category == "borrowed-reference"
    assert BOOK.get("FT152").category == "shared-mutable-state"
    assert BOOK.get("FT153").category == "packaging"


def test_every_rule_has_a_language_from_the_closed_set() -> None:
    for rule in BOOK.rules.values():
        assert rule.language in LANGUAGES, rule.id
        assert rule.to_dict()["language"] == rule.language
    assert {r.language for r in BOOK.rules.values() if r.phase == "dynamic"} == {"python"}
    assert BOOK.get("FT090").language == "cython"
    assert BOOK.get("FT110").language == "c++"
    assert BOOK.get("FT115").language == "rust"


def test_the_loader_rejects_a_language_outside_the_set_and_reads_only_toml() -> None:
    table: dict[str, Any] = {"id": "FT999", "name": "x", "category": "packaging",
                             "language": "cobol", "severity": "info", "status": "preview",
                             "title": "x", "message": "x", "fix": "x"}
    with pytest.raises(RuleCatalogueError, match="language 'cobol'"):
        _rule_from_table(table, "rules/x.toml")
    del table["language"]
    with pytest.raises(RuleCatalogueError, match="language"):
        _rule_from_table(table, "rules/x.toml")
    assert (RULES_DIR / "README.md").is_file()
    assert all(r.source.endswith(".toml") for r in BOOK.rules.values())


@pytest.mark.parametrize(("path", "language"), [
    ("src/x.c", "c"), ("include/x.h", "c"), ("src/x.cpp", "c++"), ("x.cc", "c++"),
    ("x.cxx", "c++"), ("x.hpp", "c++"), ("x.hh", "c++"), ("pkg/fast.pyx", "cython"),
    ("pkg/fast.pxd", "cython"), ("pkg/part.pxi", "cython"), ("src/lib.rs", "rust"),
    ("Cargo.toml", "rust"), ("sub/Cargo.lock", "rust"), ("f/x.f", "fortran"),
    ("f/x.F90", "fortran"), ("x.f95", "fortran"), ("sig.pyf", "fortran"),
    ("setup.py", "build"), ("pyproject.toml", "build"), ("setup.cfg", "build"),
    ("meson.build", "build"), ("CMakeLists.txt", "build"), ("Makefile", "build"),
    (".github/workflows/tests.yml", "build"), ("ci/azure.yaml", "build"),
    ("requirements.txt", "build"), ("requirements-build.txt", "build"),
    ("requirements/cython.txt", "build"),
    ("dist/pkg-1.0-cp314-cp314t-linux_x86_64.whl", "metadata"),
    ("dist/pkg-1.0.whl/pkg-1.0.dist-info/METADATA", "metadata"), ("PKG-INFO", "metadata"),
    ("dist/pkg.whl/pkg/_x.cpython-314t-x86_64-linux-gnu.so", "binary"),
    ("pkg/_x.cp314t-win_amd64.pyd", "binary"), ("lib/libfoo.so.1", "binary"),
])
def test_a_path_says_where(path: str, language: str) -> None:
    assert path_language(path) == language
    assert language_of("python", path) == language


def test_a_rule_default_stands_where_the_path_says_nothing_or_is_ambiguous() -> None:
    assert language_of("cython", None) == "cython"
    assert language_of("python", "") == "python"
    assert language_of("cython", "pkg/notes.md") == "cython"
    assert language_of("c++", "include/bind.h") == "c++"  # a header of a C++ project
    assert language_of("cython", "include/x.h") == "c"
    assert language_of("nonsense", None) == "c"


def test_findings_get_the_language_of_their_file(scan_json: ScanJson, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "ext.cpp").write_text(CPP)
    (project / "fast.pyx").write_text(PYX)
    _code, report = scan_json(str(project))
    got = {(f["rule"], f["path"]): (f["category"], f["language"]) for f in report["findings"]}
    # FT001 and FT019 are C rules (default language `c`) that fired in a C++ file.
    assert got[("FT001", "ext.cpp")] == ("module-declaration", "c++")
    assert got[("FT019", "ext.cpp")] == ("borrowed-reference", "c++")
    assert got[("FT090", "fast.pyx")] == ("module-declaration", "cython")
    assert got[("FT100", "fast.pyx")] == ("borrowed-reference", "cython")
    assert report["summary"]["by_language"] == {"c++": 2, "cython": 2}


def test_dynamic_findings_are_python() -> None:
    problems = [Problem(category="crash", module="spam", callable="get", detail="SIGSEGV"),
                Problem(category="gil-reenabled", module="spam", callable="", detail="")]
    findings = findings_of(problems, BOOK, {})
    assert [(f.rule, f.language) for f in findings] == [("FT202", "python"),
                                                         ("FT200", "python")]


def _old_report(scan_json: ScanJson, tmp_path: Path) -> dict[str, Any]:
    """A real report as an earlier gilaudit wrote it: no `language` anywhere."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "ext.cpp").write_text(CPP)
    (project / "fast.pyx").write_text(PYX)
    _code, report = scan_json(str(project))
    dynamic = Finding.from_dict(report["findings"][0]).to_dict()
    dynamic.update(rule="FT202", name="interpreter-crash", category="crash", path=None,
                   line=None, column=None, module="ext", callable="get", evidence="dynamic",
                   fingerprint="d" * 32, code="", function=None, symbol="ext.get")
    report["findings"].append(dynamic)
    for f in report["findings"]:
        del f["language"]
    report["summary"].pop("by_language")
    return report


def test_an_old_report_without_language_loads_and_rerenders(scan_json: ScanJson,
                                                           tmp_path: Path) -> None:
    old = _old_report(scan_json, tmp_path)
    validate_report(old)  # the schema still accepts reports without the field
    src = tmp_path / "old.json"
    src.write_text(json.dumps(old))
    out = tmp_path / "out"
    out.mkdir()
    code = main(["report", str(src), "--json", str(out / "r.json"),
                 "--html", str(out / "r.html"), "--sarif", str(out / "r.sarif"),
                 "--junit", str(out / "r.xml"), "--markdown", str(out / "r.md"),
                 "--fail-on", "never"])
    assert code == 0
    new = json.loads((out / "r.json").read_text())
    validate_report(new)
    langs = {(f["rule"], f["path"]): f["language"] for f in new["findings"]}
    assert langs == {("FT001", "ext.cpp"): "c++", ("FT019", "ext.cpp"): "c++",
                     ("FT090", "fast.pyx"): "cython", ("FT100", "fast.pyx"): "cython",
                     ("FT202", None): "python"}
    # The baselines made from the old report keep working: fingerprints do not move.
    assert sorted(f["fingerprint"] for f in new["findings"]) == \
        sorted(f["fingerprint"] for f in old["findings"])
    html = (out / "r.html").read_text()
    assert '<select id="f-language" name="language">' in html
    assert 'data-language="cython"' in html and 'data-language="python"' in html
    assert "| module-declaration | c++ (1), cython (1) |" in (out / "r.md").read_text()
    junit = (out / "r.xml").read_text()
    for language in ("c++", "cython", "python"):
        assert f'<property name="language" value="{language}" />' in junit
    sarif = json.loads((out / "r.sarif").read_text())
    props = [r["properties"] for r in sarif["runs"][0]["results"]]
    assert {p["language"] for p in props} == {"c++", "cython", "python"}


def test_the_report_schema_lists_the_languages() -> None:
    schema = json.loads(REPORT_SCHEMA.read_text())
    assert tuple(schema["$defs"]["finding"]["properties"]["language"]["enum"]) == LANGUAGES
    assert "language" not in schema["$defs"]["finding"]["required"]


def test_rules_command_filters_by_category_and_language(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--category", "module-declaration"]) == 0
    lines = capsys.readouterr().out.splitlines()
    ids = {line.split()[0] for line in lines}
    assert {"FT001", "FT090", "FT110", "FT113", "FT115"} <= ids
    assert "FT011" not in ids and "FT100" not in ids
    ft090 = next(line for line in lines if line.startswith("FT090"))
    assert ft090.split()[2:4] == ["module-declaration", "cython"]
    assert main(["rules", "--language", "cython", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {r["language"] for r in data["rules"]} == {"cython"}
    assert "FT100" in {r["id"] for r in data["rules"]}
    assert main(["rules", "--category", "cython"]) == 2
    assert "unknown category 'cython'" in capsys.readouterr().err
    assert main(["explain", "FT110"]) == 0
    assert "category: module-declaration" in capsys.readouterr().out


def test_config_selects_by_category_or_language() -> None:
    by_category = set(BOOK.matching("module-declaration"))
    assert {"FT001", "FT090", "FT110", "FT151"} <= by_category
    assert set(BOOK.matching("cython")) == {r.id for r in BOOK.rules.values()
                                           if r.language == "cython"}
