"""The binary front end, called directly on real shared objects compiled here with gcc
(their imports are real undefined dynamic symbols), inside wheels and in a source tree, and on
bad input: truncated ELF, non-ELF `.so`, Mach-O and PE files."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import compile_shared
from gilaudit.buildinfo import BuildInfo
from gilaudit.config import Config
from gilaudit.frontends import run_front_ends
from gilaudit.frontends.binary import analyse
from gilaudit.frontends.binary.elf import read_dynamic_symbols
from gilaudit.frontends.contract import FrontEndResult, TargetView
from gilaudit.model import SourceFile

ALL = frozenset({"FT150", "FT151", "FT152", "FT153"})
TSO = "cpython-314t-x86_64-linux-gnu.so"
GSO = "cpython-314-x86_64-linux-gnu.so"
Build = Callable[..., bytes]  # (module name, {"decls": ..., "calls": ...}) -> the .so bytes
T_WHEEL = "fast-1.0-cp314-cp314t-linux_x86_64.whl"
G_WHEEL = "fast-1.0-cp314-cp314-linux_x86_64.whl"


def module_source(name: str, *, decls: str = "", calls: str = "") -> str:
    """An extension module whose `use` function leaves the given calls as imports. APIs the
    build headers may not declare are bound by symbol name, so any CPython's headers do."""
    return f"""
#include <Python.h>
{decls}
static PyObject *use(PyObject *self, PyObject *arg) {{
    (void)self;
{calls}
    return arg;
}}
static PyMethodDef methods[] = {{{{"use", use, METH_O, NULL}}, {{NULL, NULL, 0, NULL}}}};
static struct PyModuleDef def = {{PyModuleDef_HEAD_INIT, "{name}", NULL, -1, methods}};
PyMODINIT_FUNC PyInit_{name}(void) {{ return PyModule_Create(&def); }}
"""


BORROW = {"calls": "PyObject *d = PyDict_New(); (void)PyDict_GetItem(d, arg);"
                    "(void)PyList_GetItem(arg, 0);"}
WITH_REF = {"decls": 'extern int getref(PyObject *, PyObject *, PyObject **) '
                      '__asm__("PyDict_GetItemRef");',
                "calls": "PyObject *v; (void)PyDict_GetItem(arg, arg); (void)getref(arg, arg, &v);"}
CRITICAL = {"decls": 'extern void cs_begin(void *, PyObject *) __asm__("PyCriticalSection_Begin");'
                      'extern void cs_end(void *) __asm__("PyCriticalSection_End");',
                "calls": "char cs[64]; Py_ssize_t pos = 0; PyObject *k, *v; cs_begin(cs, arg);"
                      "while (PyDict_Next(arg, &pos, &k, &v)) {} cs_end(cs);"}
SETGIL = {"decls": 'extern int setgil(PyObject *, void *) __asm__("PyUnstable_Module_SetGIL");',
              "calls": "(void)setgil(arg, NULL); (void)PyDict_GetItem(arg, arg);"}
LIBC = {"decls": "#include <time.h>",
            "calls": "time_t t = time(NULL); (void)localtime(&t); (void)strerror(2);"}
GIL_DECREF = {"decls": 'extern void dealloc(PyObject *) __asm__("_Py_Dealloc");',
                  "calls": "dealloc(arg);"}
FT_DECREF = {"decls": 'extern void merge(PyObject *) __asm__("_Py_MergeZeroLocalRefcount");'
                       'extern void shared(PyObject *) __asm__("_Py_DecRefShared");',
                 "calls": "merge(arg); shared(arg);"}


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """Compile (and cache) one shared object per (module name, source)."""
    folder = tmp_path_factory.mktemp("so")
    cache: dict[str, bytes] = {}

    def make(name: str, parts: dict[str, str] | None = None) -> bytes:
        source = module_source(name, **(parts or {}))
        if source not in cache:
            src = folder / f"{name}_{len(cache)}.c"
            src.write_text(source)
            out = src.with_suffix(".so")
            result = compile_shared(src, out)
            assert result.returncode == 0, result.stderr
            cache[source] = out.read_bytes()
        return cache[source]

    return make


def wheel(folder: Path, filename: str, members: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / filename, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def run(root: Path, selected: frozenset[str] = ALL, *,
        every_front_end: bool = False) -> FrontEndResult:
    files = []
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            p = Path(dirpath) / n
            files.append(SourceFile(path=p.relative_to(root).as_posix(), abspath=str(p),
                                    language="other", size=p.stat().st_size))
    view = TargetView(root=root, files=tuple(sorted(files, key=lambda f: f.path)),
                      config=Config(selected=selected), build=BuildInfo())
    return run_front_ends(view, skip=("c",)) if every_front_end else analyse(view)


def hits(result: FrontEndResult, rule: str) -> list[tuple[str, str]]:
    return sorted((h.path, h.symbol) for h in result.hits if h.rule == rule)


def kinds(result: FrontEndResult) -> list[str]:
    return sorted(d.kind for d in result.diagnostics)


def test_symbols_of_a_real_module(build: Build) -> None:
    symbols = read_dynamic_symbols(build("_b", BORROW))
    assert not isinstance(symbols, str)
    assert {"PyDict_GetItem", "PyList_GetItem", "PyDict_New"} <= symbols.imported
    assert symbols.init_functions == ("PyInit__b",)


# --------------------------------------------------------------------------- FT150

def test_borrowed_imports(tmp_path: Path, build: Build) -> None:
    wheel(tmp_path, T_WHEEL, {
        f"fast/_b.{TSO}": build("_b", BORROW),
        f"fast/_r.{TSO}": build("_r", WITH_REF),
        f"fast/_c.{TSO}": build("_c", CRITICAL),
    })
    wheel(tmp_path, G_WHEEL, {f"fast/_b.{GSO}": build("_b", BORROW)})
    result = run(tmp_path)
    assert hits(result, "FT150") == [
        (f"{T_WHEEL}/fast/_b.{TSO}", "PyDict_GetItem"),
        (f"{T_WHEEL}/fast/_b.{TSO}", "PyList_GetItem"),
    ]
    where = next(h.where for h in result.hits if h.symbol == "PyDict_GetItem")
    assert "`fast._b`" in where and "PyDict_GetItemRef" in where
    assert result.modules[f"{T_WHEEL}/fast/_b.{TSO}"] == "fast._b"


def test_tree_module_of_unknown_build(tmp_path: Path, build: Build) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "_b.so").write_bytes(build("_b", BORROW))
    (tmp_path / "pkg" / f"_g.{GSO}").write_bytes(build("_g", BORROW))
    result = run(tmp_path)
    assert hits(result, "FT150") == [("pkg/_b.so", "PyDict_GetItem"),
                                     ("pkg/_b.so", "PyList_GetItem")]
    assert result.files == {"pkg/_b.so": "parsed", f"pkg/_g.{GSO}": "parsed"}


def test_imports_reveal_the_build_of_an_unnamed_module(tmp_path: Path, build: Build) -> None:
    calls = {"decls": GIL_DECREF["decls"], "calls": GIL_DECREF["calls"] + BORROW["calls"]}
    (tmp_path / "_b.so").write_bytes(build("_b", calls))
    assert hits(run(tmp_path), "FT150") == []


# --------------------------------------------------------------------------- FT151 / FT152

def test_positive_evidence(tmp_path: Path, build: Build) -> None:
    wheel(tmp_path, T_WHEEL, {f"fast/_s.{TSO}": build("_s", SETGIL),
                              f"fast/_p.{TSO}": build("_p")})
    wheel(tmp_path, G_WHEEL, {f"fast/_r.{GSO}": build("_r", WITH_REF)})
    result = run(tmp_path)
    assert hits(result, "FT151") == [(f"{T_WHEEL}/fast/_s.{TSO}", "PyUnstable_Module_SetGIL")]


def test_non_reentrant_libc(tmp_path: Path, build: Build) -> None:
    wheel(tmp_path, T_WHEEL, {f"fast/_t.{TSO}": build("_t", LIBC)})
    wheel(tmp_path, G_WHEEL, {f"fast/_t.{GSO}": build("_t", LIBC)})
    result = run(tmp_path)
    assert hits(result, "FT152") == [(f"{T_WHEEL}/fast/_t.{TSO}", "localtime"),
                                     (f"{T_WHEEL}/fast/_t.{TSO}", "strerror")]
    assert "localtime_r" in next(h.where for h in result.hits if h.symbol == "localtime")


def test_vendored_libraries_are_not_modules(tmp_path: Path, build: Build) -> None:
    src = tmp_path / "lib.c"
    src.write_text("#include <time.h>\nvoid tick(void) { time_t t = 0; (void)localtime(&t); }\n")
    out = tmp_path / "libtick.so"
    assert compile_shared(src, out).returncode == 0
    wheel(tmp_path / "dist", T_WHEEL, {"fast.libs/libtick.so": out.read_bytes()})
    result = run(tmp_path / "dist")
    assert result.hits == ()
    assert result.files[f"{T_WHEEL}/fast.libs/libtick.so"].startswith(
        "skipped: not an extension module")


# --------------------------------------------------------------------------- FT153

def test_module_named_for_another_build(tmp_path: Path, build: Build) -> None:
    plain = build("_m")
    wheel(tmp_path, T_WHEEL, {f"fast/_m.{GSO}": plain, f"fast/_ok.{TSO}": build("_ok"),
                              "fast/_v.cpython-313t-x86_64-linux-gnu.so": plain,
                              "fast/_s.abi3.so": plain})
    wheel(tmp_path, G_WHEEL, {f"fast/_m.{TSO}": plain})
    wheel(tmp_path, "fast-1.0-cp313.cp314-cp313t.cp314t-linux_x86_64.whl",
          {"fast/_v.cpython-313t-x86_64-linux-gnu.so": plain})
    result = run(tmp_path)
    assert hits(result, "FT153") == [
        (f"{G_WHEEL}/fast/_m.{TSO}", TSO),
        (f"{T_WHEEL}/fast/_m.{GSO}", GSO),
        (f"{T_WHEEL}/fast/_v.cpython-313t-x86_64-linux-gnu.so",
         "cpython-313t-x86_64-linux-gnu.so"),
    ]


def test_module_compiled_against_the_other_headers(tmp_path: Path, build: Build) -> None:
    wheel(tmp_path, T_WHEEL, {f"fast/_old.{TSO}": build("_old", GIL_DECREF),
                              f"fast/_new.{TSO}": build("_new", FT_DECREF)})
    wheel(tmp_path, G_WHEEL, {f"fast/_new.{GSO}": build("_new", FT_DECREF),
                              f"fast/_old.{GSO}": build("_old", GIL_DECREF)})
    result = run(tmp_path)
    assert hits(result, "FT153") == [
        (f"{G_WHEEL}/fast/_new.{GSO}", "_Py_DecRefShared"),
        (f"{T_WHEEL}/fast/_old.{TSO}", "_Py_Dealloc"),
    ]


def test_windows_names_are_checked_without_reading_pe(tmp_path: Path) -> None:
    wheel(tmp_path, "fast-1.0-cp314-cp314t-win_amd64.whl",
          {"fast/_m.cp314-win_amd64.pyd": b"MZ" + b"\0" * 200,
           "fast/_ok.cp314t-win_amd64.pyd": b"MZ" + b"\0" * 200})
    result = run(tmp_path)
    whl = "fast-1.0-cp314-cp314t-win_amd64.whl"
    assert hits(result, "FT153") == [(f"{whl}/fast/_m.cp314-win_amd64.pyd", "cp314-win_amd64.pyd")]
    assert kinds(result) == ["not-analysed", "not-analysed"]
    assert result.files[f"{whl}/fast/_ok.cp314t-win_amd64.pyd"].startswith("skipped: PE")


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize(("data", "kind"), [
    (b"\xcf\xfa\xed\xfe" + b"\0" * 100, "not-analysed"),  # Mach-O 64-bit
    (b"\xca\xfe\xba\xbe" + b"\0" * 100, "not-analysed"),  # universal binary
    (b"MZ" + b"\0" * 100, "not-analysed"),  # PE
    (b"#!/bin/sh\necho not a library\n", "bad-binary"),
    (b"", "bad-binary"),
    (b"\x7fELF\x02\x01\x01", "bad-binary"),
])
def test_non_elf_files_are_never_silently_skipped(tmp_path: Path, data: bytes, kind: str) -> None:
    (tmp_path / "_x.so").write_bytes(data)
    (tmp_path / "libz.dylib").write_bytes(b"\xcf\xfa\xed\xfe" + b"\0" * 100)
    result = run(tmp_path)
    assert kinds(result) == sorted([kind, "not-analysed"])
    assert result.hits == ()


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated_elf_is_a_diagnostic_and_other_members_go_on(
        tmp_path: Path, build: Build, keep: float) -> None:
    whole = build("_b", BORROW)
    wheel(tmp_path, T_WHEEL, {f"fast/_cut.{TSO}": whole[: int(len(whole) * keep)],
                              f"fast/_b.{TSO}": whole})
    result = run(tmp_path)
    assert kinds(result) == ["bad-binary"]
    assert result.files[f"{T_WHEEL}/fast/_cut.{TSO}"] == "failed: bad-binary"
    assert hits(result, "FT150") == [(f"{T_WHEEL}/fast/_b.{TSO}", "PyDict_GetItem"),
                                     (f"{T_WHEEL}/fast/_b.{TSO}", "PyList_GetItem")]


def test_corrupt_wheel_reported_once(tmp_path: Path, build: Build) -> None:
    (tmp_path / T_WHEEL).write_bytes(b"PK\x03\x04garbage")
    wheel(tmp_path, G_WHEEL, {"../../evil.so": b"", f"fast/_b.{GSO}": build("_b", BORROW)})
    # This front end reports them whether or not the wheels front end runs ...
    assert kinds(run(tmp_path, ALL)) == ["corrupt-archive", "path-traversal"]
    assert kinds(run(tmp_path, ALL | {"FT130"})) == ["corrupt-archive", "path-traversal"]
    # ... and when both run, the registry keeps one of each.
    both = kinds(run(tmp_path, ALL | {"FT130"}, every_front_end=True))
    assert both.count("corrupt-archive") == 1 and both.count("path-traversal") == 1


def test_nothing_selected(tmp_path: Path) -> None:
    (tmp_path / "_x.so").write_bytes(b"junk")
    result = run(tmp_path, frozenset({"FT010"}))
    assert result.diagnostics == () and result.hits == ()
    assert result.files == {"_x.so": "skipped: no binary rule selected"}


def test_hostile_members_do_not_stop_the_others(tmp_path: Path, build: Build) -> None:
    link = zipfile.ZipInfo("fast/_link.so")
    link.create_system = 3
    link.external_attr = (0o120777) << 16  # a symbolic link
    with zipfile.ZipFile(tmp_path / T_WHEEL, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"fast/_bomb.{TSO}", b"\0" * (8 << 20))  # inflates ~1000:1
        zf.writestr(link, "/etc/passwd")
        zf.writestr(f"fast/_b.{TSO}", build("_b", BORROW))
    result = run(tmp_path)
    assert kinds(result) == ["link-member", "zip-bomb"]
    assert result.files[f"{T_WHEEL}/fast/_bomb.{TSO}"] == "failed: unreadable member"
    assert hits(result, "FT150") == [(f"{T_WHEEL}/fast/_b.{TSO}", "PyDict_GetItem"),
                                     (f"{T_WHEEL}/fast/_b.{TSO}", "PyList_GetItem")]
