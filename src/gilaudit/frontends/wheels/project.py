"""The project's own metadata, read statically: `[project]` in pyproject.toml, `[metadata]` in
setup.cfg, the literal arguments of `setup()` in setup.py (with ``ast``, never run), and the
PKG-INFO of an sdist (an unpacked tree, or an sdist archive given as a release file).

Only what is written literally is known; a computed classifier list is "not static", and the
rules then rely on the wheels' own METADATA instead.
"""

from __future__ import annotations

import ast
import configparser
import re
from dataclasses import dataclass, field
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidSdistFilename, canonicalize_name, parse_sdist_filename

from gilaudit._toml import tomllib
from gilaudit.archives import ArchiveLimits, read_sdist_members
from gilaudit.frontends import textscan
from gilaudit.frontends.contract import Suppression
from gilaudit.frontends.wheels.read import Field, parse_metadata
from gilaudit.model import Diagnostic, SourceFile

__all__ = ["ProjectMeta", "is_sdist_name", "read_project_meta", "read_sdist_meta",
           "suppressions_in"]

_SDIST_OTHER = re.compile(r"^(?P<name>.+)-(?P<version>\d[^-]*)\.(?:tgz|tar\.bz2|tar\.xz)$")
# Only at the start of a comment; the same reading as the other front ends that look at
# pyproject.toml and setup.py, so whichever result the pipeline keeps for a file agrees.
_META_FILES = ("pyproject.toml", "setup.cfg", "setup.py", "PKG-INFO")


@dataclass(frozen=True, kw_only=True, slots=True)
class ProjectMeta:
    """What one metadata file says about the project."""

    source: str  # root-relative path of the file
    name: str | None = None  # canonical
    classifiers: tuple[Field, ...] = ()
    # Where the classifier list is declared (`classifiers = [` in pyproject.toml); None when
    # the file declares none or computes them.
    classifiers_key: Field | None = None
    static_classifiers: bool = False  # the list above is complete
    requires_python: Field | None = None  # always a valid specifier set
    diagnostics: tuple[Diagnostic, ...] = field(default=())


def is_sdist_name(basename: str) -> bool:
    if basename.endswith((".tar.gz", ".zip")):
        try:
            parse_sdist_filename(basename)
        except InvalidSdistFilename:
            return False
        return True
    return _SDIST_OTHER.match(basename) is not None


def _valid_spec(value: str) -> bool:
    try:
        SpecifierSet(value)
    except InvalidSpecifier:
        return False
    return True


def _line_matching(lines: list[str], pattern: re.Pattern[str], start: int = 0,
                   stop: int | None = None) -> int | None:
    for i in range(start, len(lines) if stop is None else min(stop, len(lines))):
        if pattern.search(lines[i]):
            return i + 1
    return None


def _line_of_text(lines: list[str], needle: str, start: int) -> int | None:
    for i in range(start, len(lines)):
        if needle in lines[i]:
            return i + 1
    return None


# --------------------------------------------------------------------------- pyproject.toml

def _from_pyproject(text: str, path: str) -> ProjectMeta | None:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None  # the build-file reader and the configuration already report it
    project = data.get("project")
    if not isinstance(project, dict):
        return None
    lines = text.splitlines()
    section = _line_matching(lines, re.compile(r"^\s*\[\s*project\s*\]")) or 1
    end = _line_matching(lines, re.compile(r"^\s*\[(?!\s*project\s*\])"), section)
    dynamic = project.get("dynamic", [])
    dynamic = dynamic if isinstance(dynamic, list) else []
    name = project.get("name")
    classifiers: list[Field] = []
    key: Field | None = None
    raw = project.get("classifiers")
    if isinstance(raw, list):
        key_line = _line_matching(lines, re.compile(r"^\s*classifiers\s*="), section - 1,
                                  end) or section
        key = Field(value="classifiers", path=path, line=key_line)
        for item in raw:
            if isinstance(item, str):
                line = _line_of_text(lines, item, key_line - 1) or key_line
                classifiers.append(Field(value=item, path=path, line=line))
    rp: Field | None = None
    rp_raw = project.get("requires-python")
    if isinstance(rp_raw, str) and _valid_spec(rp_raw):
        rp_line = _line_matching(lines, re.compile(r"^\s*requires-python\s*="), section - 1,
                                 end)
        rp = Field(value=rp_raw, path=path, line=rp_line or section)
    return ProjectMeta(
        source=path, name=canonicalize_name(name) if isinstance(name, str) else None,
        classifiers=tuple(classifiers), classifiers_key=key,
        static_classifiers="classifiers" not in dynamic, requires_python=rp)


# --------------------------------------------------------------------------- setup.cfg

def _from_setup_cfg(text: str, path: str) -> ProjectMeta | None:
    cfg = configparser.ConfigParser(interpolation=None)
    try:
        cfg.read_string(text)
    except configparser.Error:
        return None  # the build-file reader reports it
    lines = text.splitlines()
    name = cfg.get("metadata", "name", fallback=None)
    classifiers: list[Field] = []
    key: Field | None = None
    static = False
    raw = cfg.get("metadata", "classifiers", fallback=None)
    if raw is not None:
        key_line = _line_matching(lines, re.compile(r"^\s*classifiers\s*[=:]")) or 1
        static = not raw.strip().startswith(("file:", "attr:"))
        if static:
            key = Field(value="classifiers", path=path, line=key_line)
            for item in (x.strip() for x in raw.splitlines()):
                if item and not item.startswith(("#", ";")):
                    line = _line_of_text(lines, item, key_line - 1) or key_line
                    classifiers.append(Field(value=item, path=path, line=line))
    rp: Field | None = None
    rp_raw = cfg.get("options", "python_requires", fallback=None)
    if rp_raw is not None and _valid_spec(rp_raw.strip()):
        line = _line_matching(lines, re.compile(r"^\s*python_requires\s*[=:]")) or 1
        rp = Field(value=rp_raw.strip(), path=path, line=line)
    return ProjectMeta(source=path, name=canonicalize_name(name) if name else None,
                       classifiers=tuple(classifiers), classifiers_key=key,
                       static_classifiers=static, requires_python=rp)


# --------------------------------------------------------------------------- setup.py

def _module_literals(tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level `NAME = [...]` bindings, to follow `setup(classifiers=CLASSIFIERS)`."""
    out: dict[str, ast.expr] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(
                stmt.targets[0], ast.Name):
            out[stmt.targets[0].id] = stmt.value
    return out


def _string_items(node: ast.expr | None, names: dict[str, ast.expr]) -> list[ast.Constant] | None:
    if isinstance(node, ast.Name):
        node = names.get(node.id)
    if isinstance(node, (ast.List, ast.Tuple)) and all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
        return [e for e in node.elts if isinstance(e, ast.Constant)]
    return None


def _string_value(node: ast.expr | None, names: dict[str, ast.expr]) -> str | None:
    if isinstance(node, ast.Name):
        node = names.get(node.id)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _setup_call(tree: ast.Module) -> ast.Call | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else (
                func.id if isinstance(func, ast.Name) else "")
            if fname == "setup":
                return node
    return None


def _from_setup_py(text: str, path: str) -> ProjectMeta | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # the build-file reader reports it
    call = _setup_call(tree)
    if call is None:
        return None
    names = _module_literals(tree)
    kwargs = {k.arg: k.value for k in call.keywords if k.arg}
    spread = any(k.arg is None for k in call.keywords)  # setup(**metadata): unknown
    name = _string_value(kwargs.get("name"), names)
    classifiers: list[Field] = []
    key: Field | None = None
    static = False
    if "classifiers" in kwargs:
        items = _string_items(kwargs["classifiers"], names)
        if items is not None:
            static = True
            key = Field(value="classifiers", path=path, line=kwargs["classifiers"].lineno)
            classifiers = [Field(value=str(c.value), path=path, line=c.lineno) for c in items]
    else:
        static = not spread
    rp: Field | None = None
    rp_node = kwargs.get("python_requires")
    rp_raw = _string_value(rp_node, names)
    if rp_node is not None and rp_raw is not None and _valid_spec(rp_raw):
        rp = Field(value=rp_raw, path=path, line=rp_node.lineno)
    return ProjectMeta(source=path, name=canonicalize_name(name) if name else None,
                       classifiers=tuple(classifiers), classifiers_key=key,
                       static_classifiers=static, requires_python=rp)


# --------------------------------------------------------------------------- PKG-INFO

def _from_pkg_info(text: str, path: str) -> ProjectMeta:
    diags: list[Diagnostic] = []
    meta = parse_metadata(text, path, diags)
    return ProjectMeta(
        source=path, name=canonicalize_name(meta.name.value) if meta.name else None,
        classifiers=meta.classifiers, static_classifiers=True,
        requires_python=meta.requires_python, diagnostics=tuple(diags))


def _parse(kind: str, text: str, path: str) -> ProjectMeta | None:
    if kind == "pyproject.toml":
        return _from_pyproject(text, path)
    if kind == "setup.cfg":
        return _from_setup_cfg(text, path)
    if kind == "setup.py":
        return _from_setup_py(text, path)
    return _from_pkg_info(text, path)


def _project_dir(files: tuple[SourceFile, ...]) -> str | None:
    """The folder holding the project's metadata: the root, or else the single top-level
    folder that has it (an unpacked sdist keeps its `pkg-1.0/` folder)."""
    by_dir: dict[str, set[str]] = {}
    for f in files:
        head, _, base = f.path.rpartition("/")
        if base in _META_FILES and head.count("/") == 0:
            by_dir.setdefault(head, set()).add(base)
    if "" in by_dir:
        return ""
    if len(by_dir) == 1:
        return next(iter(by_dir))
    return None


def read_project_meta(files: tuple[SourceFile, ...], *,
                      max_bytes: int) -> tuple[list[ProjectMeta], list[SourceFile]]:
    """The project's metadata files, best first, and the metadata files that were read (so
    the caller can collect their suppression comments)."""
    folder = _project_dir(files)
    if folder is None:
        return [], []
    prefix = f"{folder}/" if folder else ""
    found: list[ProjectMeta] = []
    used: list[SourceFile] = []
    by_path = {f.path: f for f in files}
    for kind in _META_FILES:
        sf = by_path.get(prefix + kind)
        if sf is None or sf.size > max_bytes:
            continue
        try:
            text = Path(sf.abspath).read_bytes().decode("utf-8", errors="replace")
        except OSError:
            continue  # discovery reports unreadable files
        meta = _parse(kind, text, sf.path)
        if meta is not None:
            found.append(meta)
            used.append(sf)
    return found, used


def _wants_pkg_info(name: str) -> bool:
    return name.count("/") == 1 and name.endswith("/PKG-INFO")


def read_sdist_meta(sf: SourceFile, *, limits: ArchiveLimits,
                    ) -> tuple[ProjectMeta | None, list[Diagnostic]]:
    """The PKG-INFO of an sdist archive, read in memory."""
    data, diags = read_sdist_members(Path(sf.abspath), limits=limits, want=_wants_pkg_info,
                                     label=sf.path)
    for member in sorted(data):
        path = f"{sf.path}/{member}"
        try:
            text = data[member].decode("utf-8")
        except UnicodeDecodeError as exc:
            diags.append(Diagnostic(path=path, kind="bad-metadata",
                                    message=f"not UTF-8 ({exc.reason} at byte {exc.start})"))
            continue
        meta = _from_pkg_info(text, path)
        return meta, diags + list(meta.diagnostics)
    return None, diags


def suppressions_in(sf: SourceFile, *, max_bytes: int) -> tuple[Suppression, ...]:
    """`# gilaudit: ignore[FTnnn]` comments in a metadata file (TOML, Python, INI)."""
    if sf.size > max_bytes:
        return ()
    try:
        text = Path(sf.abspath).read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return ()
    return tuple(Suppression(*s) for s in textscan.hash_suppressions(text))
