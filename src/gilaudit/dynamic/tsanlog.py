"""ThreadSanitizer's reports, read from the text it writes to ``log_path``.

A report is the block between two ``==================`` lines that starts with ``WARNING:
ThreadSanitizer: KIND``. It holds sections, each a header line indented by two spaces and
the stack under it (``#N function file:line[:column] (binary+0xoffset)``): the two accesses of
a data race (or the access and the free of a use-after-free), the mutexes of a lock-order
cycle, the location (``Location is global 'x'`` or a heap block), the threads. At exit, with
``print_suppressions=1``, TSan adds how many reports each suppression swallowed. Pure
functions; text that is not a report is ignored, a report cut short is kept as far as it got.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

__all__ = ["Frame", "Section", "TsanLog", "TsanReport", "parse_frame", "parse_log"]

_RULER = "=================="
_WARNING = re.compile(r"^WARNING: ThreadSanitizer: (?P<kind>.+?)(?: \(pid=(?P<pid>\d+)\))?\s*$")
_FRAME = re.compile(r"^\s*#(?P<n>\d+)\s+(?P<rest>.*?)\s*$")
_BINARY = re.compile(r"\s+\((?P<binary>[^()]*\+0x[0-9a-fA-F]+)\)$")
_LOCATION = re.compile(r"^(?P<file>.+?):(?P<line>\d+)(?::(?P<column>\d+))?$")
_ACCESS = re.compile(r"^(?P<previous>Previous )?(?P<atomic>[Aa]tomic )?(?P<op>[Rr]ead|[Ww]rite)"
                     r" of size (?P<size>\d+) at (?P<addr>0x[0-9a-f]+) by "
                     r"(?P<thread>main thread|thread T\d+)"
                     r"(?: \(mutexes: (?P<mutexes>[^)]*)\))?:")
_GLOBAL = re.compile(r"Location is global '(?P<name>[^']+)'")
_MATCHED = re.compile(r"^ThreadSanitizer: Matched (\d+) suppressions?")
_COUNTED = re.compile(r"^\s*(?P<count>\d+)\s+(?P<pattern>\w+:\S.*?)\s*$")


@dataclass(frozen=True, kw_only=True, slots=True)
class Frame:
    function: str  # "" when TSan could not symbolise it ("<null>")
    file: str  # "" when unknown
    line: int  # 0 when unknown
    binary: str  # the shared object, "borrowed.cpython-313t-x86_64-linux-gnu.so+0x135f"

    @property
    def module_file(self) -> str:
        """The shared object's file name, without the offset."""
        return self.binary.rsplit("+0x", 1)[0]

    def where(self) -> str:
        place = f"{self.file}:{self.line}" if self.file and self.line else (
            self.file or self.module_file or "?")
        return f"{self.function or '??'} {place}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Section:
    header: str  # the header line, stripped: "Write of size 8 at 0x... by thread T2:"
    frames: tuple[Frame, ...]

    @property
    def access(self) -> dict[str, str] | None:
        """For an access section: op (read, write), size, thread, mutexes, atomic, previous."""
        m = _ACCESS.match(self.header)
        if m is None:
            return None
        return {"op": m["op"].lower(), "size": m["size"], "thread": m["thread"],
                "mutexes": m["mutexes"] or "", "atomic": "yes" if m["atomic"] else "",
                "previous": "yes" if m["previous"] else ""}


@dataclass(frozen=True, kw_only=True, slots=True)
class TsanReport:
    kind: str  # "data race", "heap-use-after-free", "lock-order-inversion", "thread leak", ...
    pid: int | None
    sections: tuple[Section, ...]
    summary: str = ""  # TSan's SUMMARY line, without its prefix
    offset: int = 0  # where the report starts in its log (bytes): which call was running

    @property
    def accesses(self) -> tuple[Section, ...]:
        return tuple(s for s in self.sections if s.access is not None)

    @property
    def location(self) -> str:
        """TSan's description of the memory: "global 'hits' of size 8", "heap block ..."."""
        for s in self.sections:
            if s.header.startswith("Location is "):
                return s.header[len("Location is "):].rstrip(":").split(" at 0x")[0]
        return ""

    @property
    def global_name(self) -> str | None:
        for s in self.sections:
            m = _GLOBAL.match(s.header)
            if m:
                return m["name"]
        return None

    @property
    def stacks(self) -> tuple[Section, ...]:
        """The sections that say what ran: accesses, the acquisitions that close a lock-order
        cycle, a leaked thread's creation; not where memory or mutexes were made, nor how the
        racing threads started, nor where the lock already held was taken."""
        out = []
        for s in self.sections:
            h = s.header
            acquired = h.startswith("Mutex ") and " acquired here while holding " in h
            leaked = self.kind == "thread leak" and h.startswith("Thread ")
            if s.access is not None or acquired or leaked:
                out.append(s)
        return tuple(out)


@dataclass(frozen=True, kw_only=True, slots=True)
class TsanLog:
    reports: tuple[TsanReport, ...]
    suppressed: dict[str, int] = field(default_factory=dict)  # "race_top:x" -> count


def parse_frame(line: str) -> Frame | None:
    """One ``#N function file:line:column (binary+0xoffset)`` line. The function goes last in
    the parse: a C++ name holds spaces (``Foo::bar(int) const``)."""
    m = _FRAME.match(line)
    if m is None:
        return None
    rest = m["rest"]
    binary = ""
    b = _BINARY.search(rest)
    if b:
        binary, rest = b["binary"], rest[:b.start()]
    function, _, place = rest.rpartition(" ")
    if not function:  # only one token: a function without a location, or the reverse
        function, place = (rest, "") if not _LOCATION.match(rest) else ("", rest)
    file, line_no = "", 0
    loc = _LOCATION.match(place)
    if loc is not None:
        file, line_no = loc["file"], int(loc["line"])
    elif place not in ("<null>", ""):
        file = place  # a file without a line
    if function == "<null>":
        function = ""
    return Frame(function=function, file=file, line=line_no, binary=binary)


def parse_log(text: str) -> TsanLog:
    reports: list[TsanReport] = []
    suppressed: dict[str, int] = {}
    lines = text.splitlines(keepends=True)
    offset = 0
    current: TsanReport | None = None  # the report being read, its sections still empty
    sections: list[Section] = []
    header: str | None = None
    frames: list[Frame] = []
    counting = False

    def close_section() -> None:
        nonlocal header, frames
        if header is not None:
            sections.append(Section(header=header, frames=tuple(frames)))
        header, frames = None, []

    def close_report() -> None:
        nonlocal current, sections
        close_section()
        if current is not None:
            reports.append(replace(current, sections=tuple(sections)))
        current, sections = None, []

    for raw in lines:
        start, offset = offset, offset + len(raw.encode("utf-8", errors="replace"))
        line = raw.rstrip("\n")
        w = _WARNING.match(line)
        if w is not None:
            close_report()
            counting = False
            current = TsanReport(kind=w["kind"].split(" (")[0], sections=(), offset=start,
                                 pid=int(w["pid"]) if w["pid"] else None)
            continue
        if _MATCHED.match(line):
            close_report()
            counting = True
            continue
        if counting:
            c = _COUNTED.match(line)
            if c is not None:
                pattern = c["pattern"]
                suppressed[pattern] = suppressed.get(pattern, 0) + int(c["count"])
                continue
            counting = False
        if current is None:
            continue
        if line.startswith(_RULER):
            close_report()
        elif line.startswith("SUMMARY: ThreadSanitizer: "):
            current = replace(current,
                              summary=line[len("SUMMARY: ThreadSanitizer: "):].strip())
        elif line.startswith("    ") and line.lstrip().startswith("#"):
            frame = parse_frame(line)
            if frame is not None and header is not None:
                frames.append(frame)
        elif line.startswith("  ") and line.strip():
            close_section()
            header = line.strip()
        elif not line.strip():
            close_section()
    close_report()
    return TsanLog(reports=tuple(reports), suppressed=suppressed)
