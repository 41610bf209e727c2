"""A target's build files, each parsed once on demand: CMake commands, meson calls, TOML
tables and the ``setup.py`` syntax tree.

A malformed file becomes one diagnostic (when ``report`` is set; the other front end reading
the same file stays quiet so the user sees it once) and reads as empty from then on.
"""

from __future__ import annotations

import ast
import posixpath
from dataclasses import dataclass, field
from typing import Any

from gilaudit._toml import tomllib
from gilaudit.frontends.buildfiles.cmake import CMakeCommand, CMakeError, parse_cmake
from gilaudit.frontends.buildfiles.meson import MesonCall, parse_meson
from gilaudit.frontends.buildfiles.reader import Reader, vendored

__all__ = ["TOP_LEVEL", "BuildFiles"]

# Files the shared build-info reader already parses and reports on.
TOP_LEVEL = frozenset({"setup.py", "setup.cfg", "pyproject.toml"})


def _is_cmake(path: str) -> bool:
    base = posixpath.basename(path)
    return base == "CMakeLists.txt" or base.endswith(".cmake")


@dataclass
class BuildFiles:
    reader: Reader
    report: bool = True
    vendor_roots: frozenset[str] = frozenset()
    _cmake: dict[str, list[CMakeCommand]] = field(default_factory=dict)
    _meson: dict[str, list[MesonCall]] = field(default_factory=dict)
    _toml: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    _py: dict[str, ast.Module | None] = field(default_factory=dict)
    unreadable: set[str] = field(default_factory=set)  # build files that could not be read

    def _fail(self, path: str, message: str, line: int | None = None) -> None:
        self.unreadable.add(path)
        if self.report:
            self.reader.fail(path, "build-file", f"could not read statically: {message}", line)

    def _own(self, path: str) -> bool:
        return not vendored(path, self.vendor_roots)

    def cmake_files(self) -> list[str]:
        return [p for p in self.reader.paths if _is_cmake(p) and self._own(p)]

    def meson_files(self) -> list[str]:
        return [p for p in self.reader.paths
                if posixpath.basename(p) == "meson.build" and self._own(p)]

    def named(self, name: str) -> list[str]:
        return [p for p in self.reader.paths if posixpath.basename(p) == name and self._own(p)]

    def cmake(self, path: str) -> list[CMakeCommand]:
        if path not in self._cmake:
            text = self.reader.text(path, count=self.report)
            commands: list[CMakeCommand] = []
            if text is None:
                self.unreadable.add(path)
            else:
                try:
                    commands = parse_cmake(text)
                    if self.report:
                        self.reader.parsed(path)
                except CMakeError as exc:
                    self._fail(path, str(exc), exc.line)
                except RecursionError:  # pragma: no cover - the scanner is iterative
                    self._fail(path, "nesting too deep")
            self._cmake[path] = commands
        return self._cmake[path]

    def meson(self, path: str) -> list[MesonCall]:
        if path not in self._meson:
            text = self.reader.text(path, count=self.report)
            calls = parse_meson(text) if text is not None else []
            if text is not None and self.report:
                self.reader.parsed(path)
            self._meson[path] = calls
        return self._meson[path]

    def toml(self, path: str) -> dict[str, Any] | None:
        if path not in self._toml:
            text = self.reader.text(path, count=self.report and path not in TOP_LEVEL)
            data: dict[str, Any] | None = None
            if text is not None:
                try:
                    data = tomllib.loads(text)
                    if self.report:
                        self.reader.parsed(path)
                except tomllib.TOMLDecodeError as exc:
                    if path not in TOP_LEVEL:
                        self._fail(path, str(exc))
                    elif self.report:
                        self.reader.status[path] = "failed: build-file"
                except RecursionError:
                    self._fail(path, "nesting too deep")
            self._toml[path] = data
        return self._toml[path]

    def python(self, path: str) -> ast.Module | None:
        if path not in self._py:
            text = self.reader.text(path, count=self.report and path not in TOP_LEVEL)
            tree: ast.Module | None = None
            if text is not None:
                try:
                    tree = ast.parse(text)
                    if self.report:
                        self.reader.parsed(path)
                except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
                    if path not in TOP_LEVEL:
                        self._fail(path, str(exc))
                    elif self.report:
                        self.reader.status[path] = "failed: build-file"
            self._py[path] = tree
        return self._py[path]
