"""One wheel, read without trusting it: its filename tags, member names, the extension modules
it ships, and what its `*.dist-info/METADATA` and `WHEEL` files say (with line numbers, so a
finding can point at the `Requires-Python:` or `Classifier:` line)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.errors import MessageError
from email.parser import HeaderParser
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, parse_tag
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from gilaudit.model import Diagnostic

try:
    from packaging.metadata import parse_email
except ImportError:  # packaging 23.0 (the oldest we accept) has no core-metadata parser yet
    parse_email = None  # type: ignore[assignment]
from gilaudit.archives import ArchiveLimits, open_zip
from gilaudit.frontends.wheelnames import WheelName, module_name, parse_wheel_name

__all__ = [
    "Field", "HeaderText", "MetadataFields", "WheelFacts", "parse_metadata", "read_headers",
    "read_wheel",
]

_MAX_METADATA_BYTES = 8 << 20  # a METADATA file with a long description is a few hundred kB


@dataclass(frozen=True, kw_only=True, slots=True)
class Field:
    """A metadata value and where it was read (root-relative path, 1-based line)."""

    value: str
    path: str
    line: int


@dataclass(frozen=True, kw_only=True, slots=True)
class HeaderText:
    """The email-style headers of METADATA / PKG-INFO / WHEEL, each with its line."""

    fields: tuple[tuple[str, str, int], ...]  # (lower-case name, value, line)
    problems: tuple[tuple[str, int], ...] = ()  # (what is wrong, line)

    def all(self, name: str) -> list[tuple[str, int]]:
        return [(v, ln) for k, v, ln in self.fields if k == name]

    def first(self, name: str) -> tuple[str, int] | None:
        found = self.all(name)
        return found[0] if found else None


_HEADER = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)\s*:\s?(.*)$")


def read_headers(text: str) -> HeaderText:
    """The header block (up to the first blank line) of an email-style file, each field with
    its line. A line that is not a header is a problem, and the rest is still read."""
    fields: list[tuple[str, str, int]] = []
    problems: list[tuple[str, int]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            break
        if line[0] in " \t":
            if fields:  # a folded continuation line
                name, value, at = fields[-1]
                fields[-1] = (name, f"{value} {line.strip()}", at)
            else:
                problems.append(("continuation line before any header", lineno))
            continue
        m = _HEADER.match(line)
        if m is None:
            problems.append(("not a `Name: value` header", lineno))
            continue
        fields.append((m.group(1).lower(), m.group(2).strip(), lineno))
    return HeaderText(fields=tuple(fields), problems=tuple(problems))


def _report(headers: HeaderText, path: str, diags: list[Diagnostic]) -> None:
    for what, line in headers.problems[:1]:
        more = len(headers.problems) - 1
        diags.append(Diagnostic(path=path, kind="bad-metadata", line=line,
                                message=f"line {line}: {what}" +
                                        (f" (and {more} more such lines)" if more else "")))


@dataclass(frozen=True, kw_only=True, slots=True)
class MetadataFields:
    """The core-metadata fields the packaging rules use; invalid values are left out."""

    name: Field | None = None
    version: Field | None = None
    requires_python: Field | None = None  # always a valid specifier set
    classifiers: tuple[Field, ...] = ()


def _line_of(headers: HeaderText, name: str, value: str) -> int:
    for v, line in headers.all(name):
        if v == value:
            return line
    found = headers.first(name)
    return found[1] if found else 1


def _core_fields(text: str) -> dict[str, object]:
    """name, version, requires_python and classifiers, as packaging reads them (or, with
    packaging 23.0, as the standard library's email parser that packaging builds on does)."""
    if parse_email is not None:
        raw, _unparsed = parse_email(text)
        return dict(raw)
    msg = HeaderParser().parsestr(text)
    return {"name": msg.get("Name"), "version": msg.get("Version"),
            "requires_python": msg.get("Requires-Python"),
            "classifiers": msg.get_all("Classifier") or []}


def parse_metadata(text: str, path: str, diags: list[Diagnostic]) -> MetadataFields:
    """METADATA or PKG-INFO text; problems are appended to ``diags`` as `bad-metadata`.
    Values come from packaging's core-metadata parser; lines from our own header scan."""
    headers = read_headers(text)
    _report(headers, path, diags)
    try:
        raw = _core_fields(text)
    except (ValueError, LookupError, UnicodeError, MessageError) as exc:
        diags.append(Diagnostic(path=path, kind="bad-metadata", message=f"cannot parse: {exc}"))
        return MetadataFields()

    def field_of(key: str, header: str) -> Field | None:
        value = raw.get(key)
        if not isinstance(value, str):
            return None
        return Field(value=value, path=path, line=_line_of(headers, header, value))

    name = field_of("name", "name")
    version = field_of("version", "version")
    if version is not None:
        try:
            Version(version.value)
        except InvalidVersion:
            diags.append(Diagnostic(path=path, kind="bad-metadata", line=version.line,
                                    message=f"Version {version.value!r} is not a valid "
                                            "version"))
            version = None
    rp = field_of("requires_python", "requires-python")
    if rp is not None:
        try:
            SpecifierSet(rp.value)
        except InvalidSpecifier:
            diags.append(Diagnostic(path=path, kind="bad-metadata", line=rp.line,
                                    message=f"Requires-Python {rp.value!r} is not a valid "
                                            "version specifier"))
            rp = None
    found = raw.get("classifiers")
    classifiers = [c for c in found if isinstance(c, str)] if isinstance(found, list) else []
    return MetadataFields(
        name=name, version=version, requires_python=rp,
        classifiers=tuple(Field(value=c, path=path, line=_line_of(headers, "classifier", c))
                          for c in classifiers),
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class WheelFacts:
    path: str  # root-relative path of the .whl
    name: WheelName | None  # None: not a valid wheel filename
    members: tuple[str, ...] = ()
    modules: dict[str, str] = field(default_factory=dict)  # member -> dotted module name
    metadata_path: str | None = None  # root-relative `wheel/pkg-1.0.dist-info/METADATA`
    meta: MetadataFields = field(default_factory=MetadataFields)
    wheel_tags: frozenset[Tag] | None = None  # from the WHEEL file's `Tag:` lines
    diagnostics: tuple[Diagnostic, ...] = ()
    readable: bool = True  # False: the archive could not be opened at all

    @property
    def status(self) -> str:
        if not self.readable:
            kind = next((d.kind for d in self.diagnostics
                         if d.kind in ("corrupt-archive", "too-many-members")), "corrupt-archive")
            return f"failed: {kind}"
        return "parsed (partial)" if self.diagnostics else "parsed"


def _dist_info(members: tuple[str, ...], name: WheelName | None) -> str | None:
    """The wheel's own `.dist-info` folder: the one named after the project, else the only one."""
    folders = sorted({m.split("/", 1)[0] for m in members
                      if "/" in m and m.split("/", 1)[0].endswith(".dist-info")})
    if name is not None:
        for folder in folders:
            project = folder[: -len(".dist-info")].rsplit("-", 1)[0]
            if canonicalize_name(project) == name.name:
                return folder
    return folders[0] if len(folders) == 1 else None


def _decode(data: bytes, path: str, diags: list[Diagnostic]) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        diags.append(Diagnostic(path=path, kind="bad-metadata",
                                message=f"not UTF-8 ({exc.reason} at byte {exc.start})"))
        return None


def _wheel_tags(text: str, path: str, diags: list[Diagnostic]) -> frozenset[Tag] | None:
    headers = read_headers(text)
    _report(headers, path, diags)
    tags: set[Tag] = set()
    for value, line in headers.all("tag"):
        try:
            tags |= parse_tag(value)
        except ValueError:
            diags.append(Diagnostic(path=path, kind="bad-metadata", line=line,
                                    message=f"Tag {value!r} is not a valid wheel tag"))
    return frozenset(tags) if tags else None


def read_wheel(abspath: Path, rel: str, *, limits: ArchiveLimits) -> WheelFacts:
    diags: list[Diagnostic] = []
    parsed = parse_wheel_name(abspath.name)
    name = parsed if isinstance(parsed, WheelName) else None
    if isinstance(parsed, str):
        diags.append(Diagnostic(path=rel, kind="bad-wheel-filename", message=parsed))
    with open_zip(abspath, limits=limits, label=rel) as zr:
        diags += zr.diagnostics
        members = zr.names
        if not members and any(d.kind in ("corrupt-archive", "too-many-members")
                                for d in zr.diagnostics):
            return WheelFacts(path=rel, name=name, diagnostics=tuple(diags), readable=False)
        modules = {m: mod for m in members if (mod := module_name(m)) is not None}
        folder = _dist_info(members, name)
        meta = MetadataFields()
        wheel_tags: frozenset[Tag] | None = None
        metadata_path: str | None = None
        if folder is None:
            diags.append(Diagnostic(path=rel, kind="bad-metadata",
                                    message="no `*.dist-info` folder naming the project"))
        else:
            for member, what in ((f"{folder}/METADATA", "metadata"), (f"{folder}/WHEEL", "wheel")):
                path = f"{rel}/{member}"
                if member not in members:
                    diags.append(Diagnostic(path=rel, kind="bad-metadata",
                                            message=f"`{member}` is missing"))
                    continue
                if zr.size(member) > _MAX_METADATA_BYTES:
                    diags.append(Diagnostic(path=path, kind="too-large",
                                            message="metadata file over 8 MiB; not read"))
                    continue
                data = zr.read(member)
                text = _decode(data, path, diags) if data is not None else None
                if text is None:
                    continue
                if what == "metadata":
                    metadata_path = path
                    meta = parse_metadata(text, path, diags)
                else:
                    wheel_tags = _wheel_tags(text, path, diags)
        diags += zr.read_diagnostics
    return WheelFacts(
        path=rel, name=name, members=members, modules=modules, metadata_path=metadata_path,
        meta=meta, wheel_tags=wheel_tags, diagnostics=tuple(diags))
