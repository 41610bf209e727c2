"""Reading a target's files for the bindings and build-configuration front ends: decoded text
with one diagnostic per unreadable file, ``gilaudit: ignore`` comments in ``#`` languages, and
the line of a key or value in a file whose parser gives no positions (TOML)."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

from gilaudit.frontends import textscan
from gilaudit.frontends.contract import Suppression, TargetView
from gilaudit.model import Diagnostic, SourceFile

__all__ = [
    "VENDOR_DIRS",
    "Reader",
    "ancestors",
    "find_line",
    "hash_suppressions",
    "join",
    "slash_suppressions",
    "vendored",
]

# Directory names that hold other projects' code: a binding declared there belongs to them.
VENDOR_DIRS = frozenset({
    "third_party", "third-party", "thirdparty", "3rdparty", "vendor", "vendored", "extern",
    "external", "externals", "subprojects", "_deps", "deps",
})
def hash_suppressions(text: str) -> tuple[Suppression, ...]:
    """Suppression comments in CMake, meson, TOML, YAML and Python files."""
    return tuple(Suppression(*s) for s in textscan.hash_suppressions(text))


def slash_suppressions(text: str) -> tuple[Suppression, ...]:
    """Suppression comments in C, C++ and Rust: the same reading as the C front end's, so the
    two agree on a file both of them look at."""
    index = textscan.LineIndex.of(text)
    return tuple(Suppression(*index.line_col(off), textscan.suppression_ids(ids), comment)
                 for off, ids, comment in textscan.suppressions(text))


def find_line(text: str, pattern: str, *, after: str | None = None, default: int = 1) -> int:
    """1-based line of the first match of ``pattern`` (a regex, multiline), starting at the
    first match of ``after`` when given (a TOML table header, say)."""
    start = 0
    if after is not None:
        m = re.search(after, text, re.MULTILINE)
        if m is None:
            return default
        start = m.start()
    m = re.compile(pattern, re.MULTILINE).search(text, start)
    if m is None:
        return default
    return text.count("\n", 0, m.start()) + 1


@dataclass
class Reader:
    """Reads files of one view once each; problems become diagnostics (one per file)."""

    view: TargetView
    diagnostics: list[Diagnostic] = field(default_factory=list)
    status: dict[str, str] = field(default_factory=dict)
    lines: int = 0
    _cache: dict[str, str | None] = field(default_factory=dict)
    _by_path: dict[str, SourceFile] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_path = {f.path: f for f in self.view.files}

    @property
    def paths(self) -> list[str]:
        return sorted(self._by_path)

    def has(self, path: str) -> bool:
        return path in self._by_path

    def text(self, path: str, *, count: bool = True) -> str | None:
        """The file as text, or None (with a diagnostic) if it cannot be read as UTF-8."""
        if path in self._cache:
            return self._cache[path]
        sf = self._by_path.get(path)
        text: str | None = None
        if sf is None:
            self._cache[path] = None
            return None
        limit = self.view.config.max_file_size
        try:
            if sf.size > limit:
                self.diagnostics.append(Diagnostic(
                    path=path, kind="too-large",
                    message=f"{sf.size} bytes is over the limit of {limit} (max-file-size); "
                            "not analysed"))
                self.status[path] = "skipped: too large"
            else:
                raw = Path(sf.abspath).read_bytes()
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    self.diagnostics.append(Diagnostic(
                        path=path, kind="encoding",
                        message=f"not UTF-8 ({exc.reason} at byte {exc.start}); not analysed"))
                    self.status[path] = "failed: encoding"
        except OSError as exc:
            self.diagnostics.append(Diagnostic(path=path, kind="unreadable",
                                               message=f"cannot read: {exc.strerror or exc}"))
            self.status[path] = "failed: unreadable"
        if text is not None and text.startswith("\ufeff"):
            text = text[1:]
        if text is not None and count:
            self.lines += text.count("\n") + 1
        self._cache[path] = text
        return text

    def raw(self, path: str) -> bytes | None:
        """The bytes of a file another front end owns (C/C++): no diagnostic on failure, since
        that front end reports it."""
        sf = self._by_path.get(path)
        if sf is None or sf.size > self.view.config.max_file_size:
            return None
        try:
            return Path(sf.abspath).read_bytes()
        except OSError:
            return None

    def fail(self, path: str, kind: str, message: str, line: int | None = None) -> None:
        self.diagnostics.append(Diagnostic(path=path, kind=kind, message=message, line=line))
        self.status[path] = f"failed: {kind}"

    def parsed(self, path: str) -> None:
        self.status.setdefault(path, "parsed")


def vendored(path: str, roots: frozenset[str] = frozenset()) -> bool:
    """True for a file inside another project's copy (a vendor directory or a known root), or
    in the documentation, whose snippets are never built."""
    parts = path.split("/")[:-1]
    if any(p.lower() in VENDOR_DIRS or p.lower() in ("doc", "docs") for p in parts):
        return True
    return any(path.startswith(r + "/") for r in roots if r)


def ancestors(path: str) -> list[str]:
    """Directories containing ``path``, nearest first, ending with "" (the root)."""
    out = []
    d = posixpath.dirname(path)
    while d:
        out.append(d)
        d = posixpath.dirname(d)
    out.append("")
    return out


def join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name
