"""The C++ standard a project's build asks for, read from its build files: parsing C++20 code
(concepts, `requires`) as C++17 fails where the build succeeds. Only a standard newer than the
default (C++17) is taken: older code parses as C++17 too."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["DEFAULT_CXX", "cxx_standard"]

DEFAULT_CXX = "gnu++17"
_PATTERNS = (
    re.compile(r"cpp_std\s*=\s*(?:c|gnu|vc)\+\+(\d\d|2a|2b|2c|latest)"),  # meson
    re.compile(r"CMAKE_CXX_STANDARD\s+\"?(\d\d)\b"),  # CMake
    re.compile(r"\bcxx_std_(\d\d)\b"),  # CMake compile features
    re.compile(r"[-/]std[=:](?:c|gnu)\+\+(\d\d|2a|2b|2c|latest)"),  # compiler flags anywhere
)
_YEARS = {"2a": 20, "2b": 23, "2c": 26, "latest": 23}


def cxx_standard(texts: Iterable[str]) -> str:
    """`gnu++20` or `gnu++23` when a build file asks for one, else the default."""
    newest = 17
    for text in texts:
        for pattern in _PATTERNS:
            for m in pattern.finditer(text):
                token = m.group(1)
                newest = max(newest, _YEARS.get(token) or int(token))
    if newest <= 17:
        return DEFAULT_CXX
    return "gnu++20" if newest < 23 else "gnu++2b"
