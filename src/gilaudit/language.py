"""Where a finding was found: the language (or kind of file) of the code it points at.

A rule's category names the hazard; its language says where it was found. A rule has a default
language in the catalogue; a finding's own path, when it says more (a C rule that fired in a
`.cpp`, FT005 in a `.pyx` or a `.rs`), wins.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Literal, get_args

__all__ = ["LANGUAGES", "Language", "as_language", "language_of", "path_language"]

Language = Literal["c", "c++", "cython", "rust", "fortran", "build", "metadata", "binary",
                   "python"]
LANGUAGES: tuple[Language, ...] = get_args(Language)
_LANGUAGE: dict[str, Language] = {name: name for name in LANGUAGES}

_BY_SUFFIX: dict[str, Language] = {
    ".c": "c", ".h": "c",
    ".cc": "c++", ".cpp": "c++", ".cxx": "c++", ".c++": "c++", ".hpp": "c++", ".hh": "c++",
    ".hxx": "c++", ".h++": "c++", ".ipp": "c++", ".tpp": "c++",
    ".pyx": "cython", ".pxd": "cython", ".pxi": "cython",
    ".rs": "rust",
    ".f": "fortran", ".for": "fortran", ".f77": "fortran", ".f90": "fortran",
    ".f95": "fortran", ".f03": "fortran", ".f08": "fortran", ".pyf": "fortran",
    ".cmake": "build", ".mk": "build", ".yml": "build", ".yaml": "build",
    ".whl": "metadata",
    ".so": "binary", ".pyd": "binary", ".dylib": "binary", ".dll": "binary",
}
_BY_NAME: dict[str, Language] = {
    "cargo.toml": "rust", "cargo.lock": "rust",
    "setup.py": "build", "pyproject.toml": "build", "setup.cfg": "build",
    "meson.build": "build", "meson.options": "build", "meson_options.txt": "build",
    "cmakelists.txt": "build", "makefile": "build", "gnumakefile": "build",
    "tox.ini": "build", "noxfile.py": "build", "cibuildwheel.toml": "build",
    "metadata": "metadata", "pkg-info": "metadata", "wheel": "metadata", "record": "metadata",
}
_VERSIONED_SO = re.compile(r"\.so(?:\.\d+)+$")  # libfoo.so.1, libpython3.14t.so.1.0
# A header says nothing about C versus C++: a rule that knows better keeps its own.
_AMBIGUOUS: dict[str, tuple[Language, ...]] = {".h": ("c", "c++")}


def as_language(value: object) -> Language | None:
    """``value`` as a Language, None when it is not one (data read from a file)."""
    return _LANGUAGE.get(value) if isinstance(value, str) else None


def path_language(path: str) -> Language | None:
    """The language a path alone shows, or None when its name says nothing."""
    parts = PurePosixPath(path.replace("\\", "/")).parts
    if not parts:
        return None
    name = parts[-1].lower()
    if name in _BY_NAME:
        return _BY_NAME[name]
    if name.startswith("requirements") and name.endswith((".txt", ".in")):
        return "build"
    if "requirements" in (p.lower() for p in parts[:-1]) and name.endswith((".txt", ".in")):
        return "build"  # requirements/build.txt, requirements/cython.txt
    if _VERSIONED_SO.search(name):
        return "binary"
    suffix = PurePosixPath(name).suffix
    return _BY_SUFFIX.get(suffix)


def language_of(rule_language: str, path: str | None) -> Language:
    """A finding's language: its path's when that is known, else its rule's default.

    Both the static engine and the stress phase call this when they make a Finding, and
    loading an old report calls it too, so every path gets the same answer.
    """
    # An unknown default (a rule this catalogue lacks) falls back to the most common case.
    default = _LANGUAGE.get(rule_language, "c")
    if not path:
        return default
    found = path_language(path)
    if found is None:
        return default
    suffix = PurePosixPath(path.lower()).suffix
    if default in _AMBIGUOUS.get(suffix, ()):
        return default
    return found
