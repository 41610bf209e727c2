"""ThreadSanitizer's reports as findings: each pinned to the target's own source line.

A report is the target's when one of its stacks has a frame in the project's files; its access
(where the fix goes) is the first such frame in a file that uses the Python C API, else the
first such frame: a race inside a vendored library (`deps/xxhash/xxhash.h`) is fixed in the
binding that calls it on a shared object, and the library's frames stay in the stack shown. A
report with no project frame is CPython's or a library's, counted and never shown. Reports are
deduplicated by the pair of source locations (either order), and each keeps the Python
callables the journal says were running. Pure functions from reports to findings; reading the
sources is the only I/O.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from gilaudit.archives import ArchiveLimits, read_sdist_members
from gilaudit.dynamic.tsanlog import Frame, Section, TsanReport, parse_log
from gilaudit.language import language_of
from gilaudit.model import Finding, Location, Note, fingerprint
from gilaudit.rulebook import RuleBook

__all__ = ["RULE_OF_KIND", "ProjectSources", "Site", "TsanEvent", "TsanFinding", "TsanTally",
           "attribute", "pinned_reports", "tsan_findings"]

RULE_OF_KIND = {"data race": "FT209", "heap-use-after-free": "FT210",
                "lock-order-inversion": "FT211", "thread leak": "FT212"}
_SOURCE_SUFFIXES = (".c", ".h", ".cc", ".cpp", ".cxx", ".hh", ".hpp", ".hxx", ".inc", ".pyx",
                    ".pxd", ".pxi", ".i")
_MAX_FILE = 4 << 20
_MAX_FILES = 20000
_MEMBER = re.compile(r"(?:->|\.)\s*([A-Za-z_]\w*)")
_TOKEN = re.compile(r"[a-z]+|\d+")
_USES_API = re.compile(r'#\s*include\s*[<"]Python\.h[>"]|\bPy[A-Z]\w*\s*\(|\bPyObject\b')


@dataclass(frozen=True, kw_only=True, slots=True)
class ProjectSources:
    """The project's source files by project-relative path (their lines), and the file names
    of its extension modules (a frame in one of them with no readable source is still ours)."""

    files: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    modules: frozenset[str] = frozenset()  # "racy_counter", the last part of each module name

    @property
    def bindings(self) -> frozenset[str]:
        """The project files that use the Python C API (the extension's own code), as
        opposed to vendored C libraries."""
        return frozenset(rel for rel, lines in self.files.items()
                         if any(_USES_API.search(line) for line in lines))

    @classmethod
    def from_tree(cls, root: Path, modules: Iterable[str] = ()) -> ProjectSources:
        files: dict[str, tuple[str, ...]] = {}
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("build", "dist")]
            for name in names:
                if not name.endswith(_SOURCE_SUFFIXES) or len(files) >= _MAX_FILES:
                    continue
                path = Path(folder) / name
                try:
                    if path.is_symlink() or path.stat().st_size > _MAX_FILE:
                        continue
                    text = path.read_bytes().decode("utf-8", errors="replace")
                except OSError:
                    continue
                files[path.relative_to(root).as_posix()] = tuple(text.splitlines())
        return cls(files=files, modules=_last_parts(modules))

    @classmethod
    def from_sdist(cls, path: Path, modules: Iterable[str] = ()) -> tuple[ProjectSources,
                                                                         bytes | None]:
        """An sdist's source files (``name-1.0/src/x.c`` is ``src/x.c``), read without
        unpacking it, and its pyproject.toml."""
        members, _problems = read_sdist_members(  # the static phase reports hostile members
            path, limits=ArchiveLimits(max_member_bytes=_MAX_FILE),
            want=lambda name: name.endswith((*_SOURCE_SUFFIXES, "/pyproject.toml")))
        files: dict[str, tuple[str, ...]] = {}
        pyproject = None
        for name, data in members.items():
            parts = PurePosixPath(name).parts
            rel = "/".join(parts[1:]) if len(parts) > 1 else name
            if rel == "pyproject.toml":
                pyproject = data
            elif rel.endswith(_SOURCE_SUFFIXES) and len(files) < _MAX_FILES:
                files[rel] = tuple(data.decode("utf-8", errors="replace").splitlines())
        return cls(files=files, modules=_last_parts(modules)), pyproject

    def relative(self, path: str) -> str | None:
        """The project file a compiled path names (pip builds in a temporary copy): the
        longest project-relative path that the path ends with."""
        parts = PurePosixPath(path).parts
        for i in range(len(parts)):
            candidate = "/".join(parts[i:])
            if candidate in self.files:
                return candidate
        return None

    def line(self, frame: Frame) -> str:
        """The frame's source line, stripped: from the project's files, else (modules named
        on the command line, built here) from the path the debug information gives."""
        rel = self.relative(frame.file)
        if rel is not None:
            lines = self.files[rel]
        else:
            try:
                path = Path(frame.file)
                lines = tuple(path.read_text(encoding="utf-8", errors="replace").splitlines()
                              ) if path.is_file() and path.stat().st_size <= _MAX_FILE else ()
            except OSError:
                lines = ()
        return lines[frame.line - 1].strip() if 0 < frame.line <= len(lines) else ""

    def is_ours(self, frame: Frame) -> bool:
        if not frame.file or not frame.line:
            return False
        if self.relative(frame.file) is not None:
            return True
        # No sources to compare with (modules named on the command line): a frame compiled
        # into one of the target's extension modules, outside Python's own headers.
        owner = os.path.basename(frame.module_file).split(".", 1)[0]
        return (not self.files and owner in self.modules and "/include/python" not in
                frame.file and not frame.file.startswith("/usr/"))

    def path_of(self, frame: Frame) -> str:
        return self.relative(frame.file) or frame.file


def _last_parts(modules: Iterable[str]) -> frozenset[str]:
    return frozenset(m.rsplit(".", 1)[-1] for m in modules)


SourcePoint = tuple[str, int]


@dataclass(frozen=True, kw_only=True, slots=True)
class Site:
    """One side of a report in the project: the first project frame of a stack."""

    path: str
    line: int
    function: str
    code: str  # the source line, stripped ("" when the source is not at hand)
    header: str  # the stack's header: "Write of size 8 at ... by thread T2"
    stack: tuple[Frame, ...]  # trimmed: up to the last project frame, plus one

    def describe(self) -> str:
        if self.header.startswith("Mutex "):  # "Mutex M1 acquired here while holding M0 ..."
            what = "a mutex taken while another is held"
        elif self.header.startswith("Thread "):
            what = "a thread started"
        else:
            what = self.header.split(" at 0x")[0].rstrip(":").lower()
        return f"{what} in `{self.function}` ({self.path}:{self.line})"


@dataclass(frozen=True, kw_only=True, slots=True)
class TsanEvent:
    """One report, with what was running when TSan wrote it (from the child's journal)."""

    module: str
    report: TsanReport
    callables: tuple[str, ...] = ()
    where: str = ""  # "when 8 threads x 10 calls ran it at once (trial 0, seed 0), as ..."
    repro: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class TsanFinding:
    finding: Finding
    repro: dict[str, Any]  # the hammer that showed it (gilaudit_repro.py's PARAMS)
    sites: tuple[SourcePoint, ...]  # (path, line) of each side: what the reproducer looks for
    kind: str


@dataclass(frozen=True, kw_only=True, slots=True)
class TsanTally:
    findings: tuple[TsanFinding, ...]
    reports: int  # every report TSan wrote
    not_ours: int  # reports with no frame in the project: CPython's, a library's
    unknown_kinds: dict[str, int]  # reports of kinds without a rule ("signal-unsafe call")


def pinned_reports(logs: Mapping[int, str], records: list[dict[str, Any]],
                   suppressed: dict[str, int]) -> list[tuple[TsanReport, dict[str, Any]]]:
    """Each report of a child's TSan logs (by pid) with the journal's "begin" record that was
    open when TSan wrote it: the last one whose ``tsan_offset`` is at or before the report's
    place in the child's own log ({} for another process's log). What the suppressions
    swallowed is added to ``suppressed``."""
    pid = next((r.get("pid") for r in records if r.get("kind") == "start"), None)
    begins = [r for r in records if r.get("kind") == "begin"]
    out: list[tuple[TsanReport, dict[str, Any]]] = []
    for log_pid, text in sorted(logs.items()):
        log = parse_log(text)
        for pattern, count in log.suppressed.items():
            suppressed[pattern] = suppressed.get(pattern, 0) + count
        for report in log.reports:
            begin: dict[str, Any] = {} if log_pid != pid else next(
                (b for b in reversed(begins) if int(b.get("tsan_offset", -1)) <= report.offset),
                {})
            out.append((report, begin))
    return out


def _trimmed(frames: tuple[Frame, ...], ours: list[int]) -> tuple[Frame, ...]:
    return frames[: ours[-1] + 2] if ours else frames[:3]


def _site(section: Section, sources: ProjectSources,
          bindings: frozenset[str]) -> Site | None:
    ours = [i for i, f in enumerate(section.frames) if sources.is_ours(f)]
    if not ours:
        return None
    own = [i for i in ours if sources.relative(section.frames[i].file) in bindings]
    frame = section.frames[(own or ours)[0]]
    path = sources.path_of(frame)
    return Site(path=path, line=frame.line, function=frame.function,
                code=sources.line(frame),
                header=section.header, stack=_trimmed(section.frames, ours))


def attribute(report: TsanReport, sources: ProjectSources,
              bindings: frozenset[str] | None = None) -> tuple[Site, Site | None] | None:
    """(the project's access, the other side) or None when no stack is the project's. The
    other side is the other stack's project frame, else its top frame. ``bindings``: the
    project files that use the C API (`ProjectSources.bindings`, computed once)."""
    stacks = report.stacks
    chosen = sources.bindings if bindings is None else bindings
    sites = [(s, _site(s, sources, chosen)) for s in stacks]
    mine = next((site for _s, site in sites if site is not None), None)
    if mine is None:
        return None
    other: Site | None = None
    for section, site in sites:
        if site is mine:
            continue
        if site is not None:
            other = site
            break
        if section.frames:
            top = next((f for f in section.frames if f.file and f.line), section.frames[0])
            other = Site(path=top.file or top.module_file, line=top.line,
                         function=top.function, code="", header=section.header,
                         stack=section.frames[:3])
            break
    return mine, other


def accessed_name(code: str, global_name: str | None) -> str | None:
    """The variable or field an access touches: TSan's global name, else the last member the
    source line reaches through (``self->squares``), else None."""
    if global_name:
        return global_name
    members = _MEMBER.findall(code)
    return members[-1] if members else None


def _stack_text(site: Site) -> str:
    return "\n".join(f"  #{i} {f.where()}" for i, f in enumerate(site.stack))


def tsan_findings(events: Iterable[TsanEvent], sources: ProjectSources,
                  book: RuleBook) -> TsanTally:
    groups: dict[tuple[str, tuple[SourcePoint, ...]], list[tuple[TsanEvent, Site,
                                                                  Site | None]]] = {}
    total = not_ours = 0
    unknown: dict[str, int] = {}
    bindings = sources.bindings
    for event in events:
        total += 1
        rule = RULE_OF_KIND.get(event.report.kind)
        if rule is None:
            unknown[event.report.kind] = unknown.get(event.report.kind, 0) + 1
            continue
        sides = attribute(event.report, sources, bindings)
        if sides is None:
            not_ours += 1
            continue
        mine, other = sides
        pair = [(mine.path, mine.line)] + ([(other.path, other.line)] if other else [])
        groups.setdefault((rule, tuple(sorted(pair))), []).append(
            (_narrowed(event, mine, other), mine, other))
    found = [_finding(rule, members, book) for (rule, _pair), members in groups.items()]
    return TsanTally(findings=tuple(found), reports=total, not_ours=not_ours,
                     unknown_kinds=unknown)


def _narrowed(event: TsanEvent, mine: Site, other: Site | None) -> TsanEvent:
    """When several callables ran together, those whose names the racing C functions carry
    best (`mmh3_x86_128.copy` in `MMH3Hasher128x86_copy`, `Counter.increment` in
    `Counter_increment`), for each side of the race; all of them when none does."""
    if len(event.callables) < 2:
        return event
    named: set[str] = set()
    for site in (mine, other):
        if site is None:
            continue
        functions = " ".join(f.function.lower() for f in site.stack if f.function)
        scores = {c: sum(1 for token in _TOKEN.findall(c.lower()) if token in functions)
                  for c in event.callables}
        best = max(scores.values())
        named.update(c for c, n in scores.items() if n == best and best > 0)
    kept = tuple(c for c in event.callables if c in named)
    return replace(event, callables=kept) if kept else event


def _finding(rule_id: str, members: list[tuple[TsanEvent, Site, Site | None]],
             book: RuleBook) -> TsanFinding:
    event, mine, other = members[0]
    rule = book.get(rule_id)
    report = event.report
    callables = tuple(dict.fromkeys(c for e, _m, _o in members for c in e.callables))
    variable = accessed_name(mine.code, report.global_name)
    against = f" against the {other.describe()}" if other else ""
    on = f" on `{variable}`" if variable else ""
    running = f"; {', '.join(callables)} {event.where}" if callables else ""
    where = f"{on}: {mine.describe()}{against}{running}"
    notes = [Note(message=f"this access: {mine.header.rstrip(':')}\n{_stack_text(mine)}",
                  location=Location(path=mine.path, line=mine.line))]
    if other is not None:
        notes.append(Note(message=f"the other side: {other.header.rstrip(':')}"
                                  f"{' in `' + other.function + '`' if other.function else ''}"
                                  f"\n{_stack_text(other)}",
                          location=Location(path=other.path, line=other.line)
                          if other.line else None))
    if report.location:
        notes.append(Note(message=f"memory: {report.location}"))
    held = [f"{s.access['thread']} held {s.access['mutexes']}" for s in report.accesses
            if s.access and s.access["mutexes"]]
    if held:
        notes.append(Note(message="mutexes: " + "; ".join(held)))
    if len(members) > 1:
        notes.append(Note(message=f"TSan reported this pair {len(members)} times"))
    symbol = variable or mine.function
    module = event.module
    return TsanFinding(
        finding=Finding(
            rule=rule.id, name=rule.name, category=rule.category,
            language=language_of(rule.language, mine.path),
            severity=rule.severity,
            message=rule.format_message(symbol=mine.function, where=where),
            location=Location(path=mine.path, line=mine.line), symbol=symbol, fix=rule.fix,
            module=module, callable=" + ".join(callables) or None, function=mine.function,
            code=mine.code, notes=tuple(notes), preview=rule.preview, evidence="dynamic",
            fingerprint=fingerprint(rule.id, mine.path, symbol, mine.function,
                                    f"{mine.code} | {other.path if other else ''}:"
                                    f"{other.function if other else ''}")),
        repro=event.repro,
        sites=tuple([(mine.path, mine.line)] + ([(other.path, other.line)]
                                                if other and other.line else [])),
        kind=report.kind)
