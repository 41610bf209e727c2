"""The wheels front end, called directly: each packaging rule on generated wheels, the
project's own metadata files, and bad input (broken wheels, bad filenames, malformed METADATA)
that must become diagnostics while the other wheels are still analysed."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

from gilaudit.buildinfo import BuildInfo
from gilaudit.config import Config
from gilaudit.frontends.contract import FrontEndResult, TargetView
from gilaudit.frontends.wheels import analyse
from gilaudit.model import SourceFile

ALL = frozenset({"FT130", "FT131", "FT132", "FT133", "FT135", "FT136", "FT137", "FT140"})
FT_BETA = "Programming Language :: Python :: Free Threading :: 2 - Beta"


def make_wheel(folder: Path, filename: str, *, metadata: str | None = None,
               wheel_file: str | None = None, members: dict[str, bytes] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stem = filename[: -len(".whl")]
    parts = stem.split("-")
    name, version = (parts[0], parts[1]) if len(parts) >= 5 else (stem, "1.0")
    tags = "-".join(parts[-3:]) if len(parts) >= 5 else "py3-none-any"
    dist = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(folder / filename, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{dist}/METADATA", metadata if metadata is not None else
                    f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        zf.writestr(f"{dist}/WHEEL", wheel_file if wheel_file is not None else
                    f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {tags}\n")
        zf.writestr(f"{dist}/RECORD", "")
        for member, data in (members or {}).items():
            zf.writestr(member, data)
    return folder / filename


def meta(name: str, version: str = "1.0", *extra: str) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", *extra]
    return "\n".join(lines) + "\n\nA long description.\nClassifier: not a header here\n"


def view_of(root: Path, selected: frozenset[str] = ALL) -> TargetView:
    files = []
    for dirpath, _dirs, names in os.walk(root):
        for n in sorted(names):
            p = Path(dirpath) / n
            files.append(SourceFile(path=p.relative_to(root).as_posix(), abspath=str(p),
                                    language="other", size=p.stat().st_size))
    return TargetView(root=root, files=tuple(sorted(files, key=lambda f: f.path)),
                      config=Config(selected=selected), build=BuildInfo())


def run(root: Path, selected: frozenset[str] = ALL) -> FrontEndResult:
    return analyse(view_of(root, selected))


def hits(result: FrontEndResult, rule: str | None = None) -> list[tuple[str, str, int]]:
    return sorted((h.rule, h.path, h.line) for h in result.hits
                  if rule is None or h.rule == rule)


def kinds(result: FrontEndResult) -> list[str]:
    return sorted(d.kind for d in result.diagnostics)


# --------------------------------------------------------------------------- FT130 / FT135

def test_no_ft_wheels(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    make_wheel(dist, "fast-1.0-cp314-cp314-manylinux_2_28_x86_64.whl")
    make_wheel(dist, "fast-1.0-cp313-cp313-manylinux_2_28_x86_64.whl")
    result = run(tmp_path)
    assert hits(result) == [
        ("FT130", "dist/fast-1.0-cp313-cp313-manylinux_2_28_x86_64.whl", 1)]
    assert result.hits[0].symbol == "fast"
    assert result.hits[0].severity is None


def test_ft_wheel_present_or_pure_project(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    make_wheel(dist, "fast-1.0-cp314-cp314-manylinux_2_28_x86_64.whl")
    make_wheel(dist, "fast-1.0-cp314-cp314t-manylinux_2_28_x86_64.whl")
    make_wheel(dist, "pure-1.0-py3-none-any.whl")
    assert hits(run(tmp_path), "FT130") == []


def test_pure_fallback_lowers_ft130_to_info(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    make_wheel(dist, "fast-1.0-cp314-cp314-manylinux_2_28_x86_64.whl")
    make_wheel(dist, "fast-1.0-py3-none-any.whl")
    result = run(tmp_path)
    assert [h.severity for h in result.hits if h.rule == "FT130"] == ["info"]
    assert "fall back" in result.hits[0].where


def test_requires_python_below_314_silences_ft130(tmp_path: Path) -> None:
    make_wheel(tmp_path, "old-1.0-cp312-cp312-manylinux_2_28_x86_64.whl",
               metadata=meta("old", "1.0", "Requires-Python: >=3.8,<3.14"))
    assert hits(run(tmp_path)) == []


def test_releases_are_judged_separately(tmp_path: Path) -> None:
    make_wheel(tmp_path, "fast-1.0-cp313-cp313-manylinux_2_28_x86_64.whl")
    make_wheel(tmp_path, "fast-2.0-cp314-cp314t-manylinux_2_28_x86_64.whl")
    make_wheel(tmp_path, "fast-2.0-cp314-cp314-manylinux_2_28_x86_64.whl")
    assert hits(run(tmp_path), "FT130") == [
        ("FT130", "fast-1.0-cp313-cp313-manylinux_2_28_x86_64.whl", 1)]


def test_abi3_only_goes_to_ft135_not_ft130(tmp_path: Path) -> None:
    make_wheel(tmp_path, "stable-1.0-cp39-abi3-manylinux_2_28_x86_64.whl")
    assert hits(run(tmp_path)) == [("FT135", "stable-1.0-cp39-abi3-manylinux_2_28_x86_64.whl", 1)]
    # With FT135 not selected, FT130 still reports the missing wheel.
    assert hits(run(tmp_path, frozenset({"FT130"}))) == [
        ("FT130", "stable-1.0-cp39-abi3-manylinux_2_28_x86_64.whl", 1)]


def test_abi3_with_ft_or_abi3t_wheels(tmp_path: Path) -> None:
    make_wheel(tmp_path, "a-1.0-cp39-abi3-manylinux_2_28_x86_64.whl")
    make_wheel(tmp_path, "a-1.0-cp314-cp314t-manylinux_2_28_x86_64.whl")
    make_wheel(tmp_path, "b-1.0-cp315-abi3.abi3t-manylinux_2_28_x86_64.whl")
    assert hits(run(tmp_path), "FT135") == []


# --------------------------------------------------------------------------- FT131

def test_only_cp313t(tmp_path: Path) -> None:
    make_wheel(tmp_path, "fast-1.0-cp313-cp313t-manylinux_2_28_x86_64.whl")
    assert hits(run(tmp_path), "FT131") == [
        ("FT131", "fast-1.0-cp313-cp313t-manylinux_2_28_x86_64.whl", 1)]
    make_wheel(tmp_path, "fast-1.0-cp314-cp314t-manylinux_2_28_x86_64.whl")
    assert hits(run(tmp_path), "FT131") == []


# --------------------------------------------------------------------------- FT132 / FT133

def _pyproject(root: Path, body: str) -> None:
    (root / "pyproject.toml").write_text(body)


def test_classifier_without_ft_wheels_points_at_pyproject(tmp_path: Path) -> None:
    _pyproject(tmp_path, f'[project]\nname = "fast"\nversion = "1.0"\nclassifiers = [\n'
                         f'    "Intended Audience :: Developers",\n    "{FT_BETA}",\n]\n')
    make_wheel(tmp_path / "dist", "fast-1.0-cp314-cp314-manylinux_2_28_x86_64.whl",
               metadata=meta("fast", "1.0", f"Classifier: {FT_BETA}"))
    result = run(tmp_path)
    assert hits(result, "FT132") == [("FT132", "pyproject.toml", 6)]
    assert [h.symbol for h in result.hits if h.rule == "FT132"] == [FT_BETA]


def test_classifier_from_wheel_metadata_only(tmp_path: Path) -> None:
    make_wheel(tmp_path, "fast-1.0-cp314-cp314-manylinux_2_28_x86_64.whl",
               metadata=meta("fast", "1.0", "Classifier: Programming Language :: Python",
                             f"Classifier: {FT_BETA}"))
    assert hits(run(tmp_path), "FT132") == [
        ("FT132", "fast-1.0-cp314-cp314-manylinux_2_28_x86_64.whl/fast-1.0.dist-info/METADATA",
         5)]


def test_classifier_with_no_wheels_given_is_not_judged(tmp_path: Path) -> None:
    _pyproject(tmp_path, f'[project]\nname = "fast"\nclassifiers = ["{FT_BETA}"]\n')
    assert hits(run(tmp_path)) == []


def test_misspelled_classifier_is_not_a_claim(tmp_path: Path) -> None:
    make_wheel(tmp_path, "fast-1.0-cp314-cp314-manylinux_2_28_x86_64.whl",
               metadata=meta("fast", "1.0", "Classifier: Programming Language :: Python :: "
                                            "Free-Threading :: 2 - Beta"))
    assert hits(run(tmp_path), "FT132") == []


def test_ft_wheels_without_classifier(tmp_path: Path) -> None:
    _pyproject(tmp_path, '[project]\nname = "fast"\nclassifiers = [\n    "Typing :: Typed",\n]\n')
    make_wheel(tmp_path / "dist", "fast-1.0-cp314-cp314t-manylinux_2_28_x86_64.whl")
    assert hits(run(tmp_path), "FT133") == [("FT133", "pyproject.toml", 3)]


def test_ft133_without_project_files_points_at_metadata(tmp_path: Path) -> None:
    make_wheel(tmp_path, "fast-1.0-cp314-cp314t-manylinux_2_28_x86_64.whl")
    assert hits(run(tmp_path), "FT133") == [
        ("FT133", "fast-1.0-cp314-cp314t-manylinux_2_28_x86_64.whl/fast-1.0.dist-info/METADATA",
         1)]


def test_ft133_silent_with_classifier_anywhere(tmp_path: Path) -> None:
    _pyproject(tmp_path, '[project]\nname = "fast"\ndynamic = ["classifiers"]\n')
    make_wheel(tmp_path / "dist", "fast-1.0-cp314-cp314t-manylinux_2_28_x86_64.whl",
               metadata=meta("fast", "1.0", f"Classifier: {FT_BETA}"))
    assert hits(run(tmp_path)) == []


def test_setup_py_classifiers_are_read_statically(tmp_path: Path) -> None:
    (tmp_path / "setup.py").write_text(
        "from setuptools import setup\n"
        "CLASSIFIERS = [\n"
        "    'Programming Language :: Python :: 3',\n"
        f"    '{FT_BETA}',\n"
        "]\n"
        "raise SystemExit('never run')\n"
        "setup(name='fast', classifiers=CLASSIFIERS, python_requires='>=3.9')\n")
    make_wheel(tmp_path / "dist", "fast-1.0-cp314-cp314-manylinux_2_28_x86_64.whl")
    assert hits(run(tmp_path), "FT132") == [("FT132", "setup.py", 4)]


def test_setup_cfg_classifiers(tmp_path: Path) -> None:
    (tmp_path / "setup.cfg").write_text(
        "[metadata]\nname = fast\nclassifiers =\n    Typing :: Typed\n"
        f"    {FT_BETA}\n[options]\npython_requires = >=3.9\n")
    make_wheel(tmp_path / "dist", "fast-1.0-cp314-cp314-manylinux_2_28_x86_64.whl")
    assert hits(run(tmp_path), "FT132") == [("FT132", "setup.cfg", 5)]


def test_pkg_info_of_an_unpacked_sdist(tmp_path: Path) -> None:
    tree = tmp_path / "fast-1.0"
    tree.mkdir()
    (tree / "PKG-INFO").write_text(meta("fast", "1.0", "Requires-Python: <3.13",
                                        f"Classifier: {FT_BETA}"))
    result = run(tmp_path)
    assert hits(result, "FT140") == [("FT140", "fast-1.0/PKG-INFO", 4)]


def test_pkg_info_of_an_sdist_archive(tmp_path: Path) -> None:
    data = meta("fast", "1.0", f"Classifier: {FT_BETA}").encode()
    dist = tmp_path / "dist"
    dist.mkdir()
    with tarfile.open(dist / "fast-1.0.tar.gz", "w:gz") as tf:
        info = tarfile.TarInfo("fast-1.0/PKG-INFO")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    make_wheel(dist, "fast-1.0-cp314-cp314-manylinux_2_28_x86_64.whl")
    result = run(tmp_path)
    assert hits(result, "FT132") == [("FT132", "dist/fast-1.0.tar.gz/fast-1.0/PKG-INFO", 4)]
    assert result.files["dist/fast-1.0.tar.gz"] == "parsed"


# --------------------------------------------------------------------------- FT136 / FT137

def test_abi3_so_in_ft_wheel(tmp_path: Path) -> None:
    make_wheel(tmp_path, "fast-1.0-cp314-cp314t-linux_x86_64.whl",
               members={"fast/_a.abi3.so": b"", "fast/_b.cpython-314t-x86_64-linux-gnu.so": b""})
    make_wheel(tmp_path, "fast-1.0-cp39-abi3-linux_x86_64.whl", members={"fast/_a.abi3.so": b""})
    assert hits(run(tmp_path), "FT136") == [
        ("FT136", "fast-1.0-cp314-cp314t-linux_x86_64.whl/fast/_a.abi3.so", 1)]


def test_abi3t_tags(tmp_path: Path) -> None:
    make_wheel(tmp_path, "early-1.0-cp314-abi3.abi3t-linux_x86_64.whl",
               members={"early/_a.abi3t.so": b""})
    make_wheel(tmp_path, "named-1.0-cp315-abi3.abi3t-linux_x86_64.whl",
               members={"named/_a.abi3.so": b"", "named/_b.cpython-315t-x86_64-linux-gnu.so": b"",
                        "named/_c.abi3t.so": b"", "named.libs/libz.so.1": b""})
    make_wheel(tmp_path, "good-1.0-cp315-abi3t-win_amd64.whl", members={"good/_a.pyd": b""})
    assert hits(run(tmp_path), "FT137") == [
        ("FT137", "early-1.0-cp314-abi3.abi3t-linux_x86_64.whl", 1),
        ("FT137", "named-1.0-cp315-abi3.abi3t-linux_x86_64.whl/named/_a.abi3.so", 1),
        ("FT137", "named-1.0-cp315-abi3.abi3t-linux_x86_64.whl/"
                  "named/_b.cpython-315t-x86_64-linux-gnu.so", 1),
    ]


# --------------------------------------------------------------------------- FT140

def test_requires_python_excludes_the_ft_wheel(tmp_path: Path) -> None:
    make_wheel(tmp_path, "fast-1.0-cp314-cp314t-linux_x86_64.whl",
               metadata=meta("fast", "1.0", "Requires-Python: >=3.10,<3.14"))
    result = run(tmp_path)
    assert hits(result, "FT140") == [
        ("FT140", "fast-1.0-cp314-cp314t-linux_x86_64.whl/fast-1.0.dist-info/METADATA", 4)]
    assert [h.symbol for h in result.hits if h.rule == "FT140"] == [">=3.10,<3.14"]


def test_requires_python_with_classifier(tmp_path: Path) -> None:
    _pyproject(tmp_path, '[project]\nname = "fast"\nrequires-python = "<3.13"\n'
                         f'classifiers = ["{FT_BETA}"]\n')
    assert hits(run(tmp_path), "FT140") == [("FT140", "pyproject.toml", 3)]
    _pyproject(tmp_path, '[project]\nname = "fast"\nrequires-python = ">=3.9"\n'
                         f'classifiers = ["{FT_BETA}"]\n')
    assert hits(run(tmp_path), "FT140") == []


def test_patch_level_bounds_are_not_exclusions(tmp_path: Path) -> None:
    make_wheel(tmp_path, "fast-1.0-cp314-cp314t-linux_x86_64.whl",
               metadata=meta("fast", "1.0", "Requires-Python: >=3.14.1,!=3.14.3"))
    assert hits(run(tmp_path), "FT140") == []


# --------------------------------------------------------------------------- modules

def test_extension_modules_are_mapped(tmp_path: Path) -> None:
    make_wheel(tmp_path, "fast-1.0-cp314-cp314t-linux_x86_64.whl", members={
        "fast/__init__.py": b"",
        "fast/_speedups.cpython-314t-x86_64-linux-gnu.so": b"",
        "fast/sub/_x.so": b"",
        "fast-1.0.data/platlib/top.cpython-314t-x86_64-linux-gnu.so": b"",
        "fast.libs/libfoo-1a2b.so": b"",
        "fast/.dylibs/libbar.dylib": b"",
    })
    result = run(tmp_path)
    whl = "fast-1.0-cp314-cp314t-linux_x86_64.whl"
    assert result.modules == {
        f"{whl}/fast/_speedups.cpython-314t-x86_64-linux-gnu.so": "fast._speedups",
        f"{whl}/fast/sub/_x.so": "fast.sub._x",
        f"{whl}/fast-1.0.data/platlib/top.cpython-314t-x86_64-linux-gnu.so": "top",
    }


# --------------------------------------------------------------------------- bad input

def test_bad_wheels_are_diagnostics_and_others_still_analysed(tmp_path: Path) -> None:
    (tmp_path / "notawheel.whl").write_bytes(b"PK\x03\x04 not really")
    good = make_wheel(tmp_path, "fast-1.0-cp314-cp314-linux_x86_64.whl")
    raw = good.read_bytes()
    (tmp_path / "trunc-1.0-cp314-cp314-linux_x86_64.whl").write_bytes(raw[: len(raw) // 2])
    make_wheel(tmp_path, "oddname.whl")
    result = run(tmp_path)
    assert hits(result) == [("FT130", "fast-1.0-cp314-cp314-linux_x86_64.whl", 1)]
    assert kinds(result) == ["bad-wheel-filename", "bad-wheel-filename", "corrupt-archive",
                             "corrupt-archive"]
    assert result.files["notawheel.whl"] == "failed: corrupt-archive"
    assert result.files["trunc-1.0-cp314-cp314-linux_x86_64.whl"] == "failed: corrupt-archive"
    assert result.files["fast-1.0-cp314-cp314-linux_x86_64.whl"] == "parsed"
    assert result.files["oddname.whl"] == "parsed (partial)"


def test_hostile_members_do_not_stop_the_wheel(tmp_path: Path) -> None:
    make_wheel(tmp_path, "fast-1.0-cp314-cp314t-linux_x86_64.whl",
               members={"../../evil.so": b"", "fast/_a.abi3.so": b""})
    result = run(tmp_path)
    assert kinds(result) == ["path-traversal"]
    assert hits(result, "FT136") == [
        ("FT136", "fast-1.0-cp314-cp314t-linux_x86_64.whl/fast/_a.abi3.so", 1)]
    assert result.files["fast-1.0-cp314-cp314t-linux_x86_64.whl"] == "parsed (partial)"


def test_malformed_metadata_and_wheel_files(tmp_path: Path) -> None:
    make_wheel(tmp_path, "fast-1.0-cp314-cp314t-linux_x86_64.whl",
               metadata="Metadata-Version: 2.1\nName: fast\nVersion: not-a-version!\n"
                        f"Requires-Python: >=>3\nClassifier: {FT_BETA}\n"
                        "this is not a header\n",
               wheel_file="Wheel-Version: 1.0\nTag: ???\n")
    result = run(tmp_path)
    assert kinds(result) == ["bad-metadata", "bad-metadata", "bad-metadata", "bad-metadata"]
    # What came before the broken line is kept: the classifier silences FT133.
    assert hits(result) == []


def test_non_utf8_metadata(tmp_path: Path) -> None:
    whl = tmp_path / "fast-1.0-cp314-cp314t-linux_x86_64.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr("fast-1.0.dist-info/METADATA", b"Name: fast\nSummary: caf\xe9\n")
        zf.writestr("fast-1.0.dist-info/WHEEL", "Tag: cp314-cp314t-linux_x86_64\n")
    assert kinds(run(tmp_path)) == ["bad-metadata"]


def test_missing_dist_info(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "fast-1.0-cp314-cp314-linux_x86_64.whl", "w") as zf:
        zf.writestr("fast/__init__.py", "")
    result = run(tmp_path)
    assert kinds(result) == ["bad-metadata"]
    assert hits(result) == [("FT130", "fast-1.0-cp314-cp314-linux_x86_64.whl", 1)]


def test_metadata_contradicting_the_filename(tmp_path: Path) -> None:
    make_wheel(tmp_path, "fast-1.0-cp314-cp314-linux_x86_64.whl",
               metadata=meta("slow", "2.0", "Requires-Python: >=3.15"),
               wheel_file="Wheel-Version: 1.0\nTag: cp314-cp314t-linux_x86_64\n")
    result = run(tmp_path)
    messages = sorted(d.message for d in result.diagnostics)
    assert kinds(result) == ["inconsistent-metadata"] * 4
    assert any("'slow'" in m for m in messages)
    assert any("version 2.0" in m for m in messages)
    assert any("WHEEL" in m for m in messages)
    assert any("excludes Python 3.14" in m for m in messages)


def test_nothing_selected_reads_nothing(tmp_path: Path) -> None:
    (tmp_path / "notawheel.whl").write_bytes(b"junk")
    result = run(tmp_path, frozenset({"FT010"}))
    assert result.hits == () and result.diagnostics == ()
    assert result.files == {"notawheel.whl": "skipped: no packaging rule selected"}


def test_suppression_comments_in_pyproject(tmp_path: Path) -> None:
    _pyproject(tmp_path, '[project]\nname = "fast"\n'
                         f'classifiers = ["{FT_BETA}"]  # gilaudit: ignore[FT132] on purpose\n')
    make_wheel(tmp_path / "dist", "fast-1.0-cp314-cp314-linux_x86_64.whl")
    result = run(tmp_path)
    assert hits(result, "FT132") == [("FT132", "pyproject.toml", 3)]
    (sup,) = result.suppressions["pyproject.toml"]
    assert (sup.line, sup.ids) == (3, ("FT132",))


def test_wheels_below_test_folders_are_test_data(tmp_path: Path) -> None:
    make_wheel(tmp_path / "tests" / "data", "odd-1.0-cp314-cp314-linux_x86_64.whl")
    (tmp_path / "tests" / "data" / "broken.whl").write_bytes(b"junk")
    result = run(tmp_path)
    assert result.hits == () and result.diagnostics == ()
    assert all(v.startswith("skipped: test data") for v in result.files.values())
    assert len(result.files) == 2
