"""Build files are read statically: literal values, names bound to literals, nothing run."""

from __future__ import annotations

from pathlib import Path

from gilaudit.buildinfo import read_build_info


def test_setup_py_literals_and_names(tmp_path: Path) -> None:
    (tmp_path / "setup.py").write_text(
        "import os, numpy\n"
        "from setuptools import setup, Extension\n"
        "SOURCES = ['src/a.c']\n"
        "INCLUDES = ['include']\n"
        "ext = Extension('pkg._a', SOURCES + ['src/b.c'], include_dirs=INCLUDES + ['x'],\n"
        "                define_macros=[('FOO', '1'), ('BAR', None)])\n"
        "other = Extension(name='pkg._c', sources=[os.path.join('src', 'c.c')],\n"
        "                  include_dirs=[numpy.get_include()])\n"
        "setup(name='pkg', ext_modules=[ext, other], python_requires='>=3.9')\n")
    info = read_build_info(tmp_path, ("setup.py",))
    assert info.include_dirs == ("include", "x")
    assert info.defines == ("FOO=1", "BAR")
    specs = {e.name: e.sources for e in info.extensions}
    assert specs == {"pkg._a": ("src/a.c", "src/b.c"), "pkg._c": ()}
    assert info.requires_python == ">=3.9"
    assert info.supports_before_313()


def test_pyproject_ext_modules_and_requires_python(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "p"\nrequires-python = ">=3.13"\n'
        '[[tool.setuptools.ext-modules]]\nname = "p._x"\nsources = ["x.c"]\n'
        'include-dirs = ["inc"]\ndefine-macros = [["Y", "2"]]\n')
    info = read_build_info(tmp_path, ("pyproject.toml",))
    assert info.extensions[0].name == "p._x" and info.extensions[0].sources == ("x.c",)
    assert info.include_dirs == ("inc",) and info.defines == ("Y=2",)
    assert not info.supports_before_313()


def test_setup_cfg_python_requires(tmp_path: Path) -> None:
    (tmp_path / "setup.cfg").write_text("[options]\npython_requires = >=3.8\n")
    assert read_build_info(tmp_path, ("setup.cfg",)).requires_python == ">=3.8"


def test_names_changed_later_are_not_constants(tmp_path: Path) -> None:
    (tmp_path / "setup.py").write_text(
        "from setuptools import setup, Extension\n"
        "files = ['src/_imaging.c']\n"
        "for name in ('a', 'b'):\n"
        "    files.append(f'src/lib/{name}.c')\n"
        "setup(ext_modules=[Extension('PIL._imaging', files)])\n")
    info = read_build_info(tmp_path, ("setup.py",))
    assert info.extensions[0].sources == ()  # unknown, so nothing is ruled out as unbuilt
