"""The data model shared by every phase: frozen dataclasses, no behaviour beyond (de)serialising."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

from gilaudit.language import Language, as_language, language_of

__all__ = [
    "SEVERITIES",
    "VERDICTS",
    "Diagnostic",
    "Driven",
    "Finding",
    "ListedTest",
    "Location",
    "ModuleStress",
    "ModuleVerdict",
    "Note",
    "Project",
    "Report",
    "Severity",
    "SourceFile",
    "StressSummary",
    "SuiteRun",
    "Undriven",
    "fingerprint",
    "severity_rank",
]

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")


def severity_rank(severity: str) -> int:
    """Higher is worse; unknown severities rank lowest."""
    return {"info": 1, "warning": 2, "error": 3}.get(severity, 0)


def fingerprint(rule: str, path: str, symbol: str, function: str | None, code: str) -> str:
    """A finding's identity across runs, for baselines and SARIF: the rule, where, what, and the
    code with its white space folded (so re-indenting or moving a line keeps it)."""
    normalised = " ".join(code.split())
    digest = hashlib.sha256("\0".join((rule, path, symbol, function or "", normalised)).encode())
    return digest.hexdigest()[:32]


@dataclass(frozen=True, kw_only=True, slots=True)
class Location:
    path: str  # project-relative, forward slashes
    line: int  # 1-based
    column: int = 1
    end_line: int | None = None
    end_column: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Note:
    message: str
    location: Location | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "path": self.location.path if self.location else None,
            "line": self.location.line if self.location else None,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Finding:
    rule: str
    name: str
    category: str  # the hazard (rules/README.md)
    language: Language  # where it was found: gilaudit.language.language_of
    severity: Severity
    message: str
    location: Location | None
    symbol: str | None = None
    fix: str = ""
    module: str | None = None
    callable: str | None = None
    function: str | None = None  # enclosing C function, for fingerprints and merging
    code: str = ""  # the source line, stripped
    notes: tuple[Note, ...] = ()
    preview: bool = False
    evidence: Literal["static", "dynamic"] = "static"
    reproducer: str | None = None  # a dynamic finding's standalone script, when written
    confirmed: bool = False  # a static finding that a dynamic one confirmed (merge)
    # Set when the confirmation is at line level (a TSan report's access in the same function
    # on the same variable or field): "FT209 data race at src/x.c:40 (`squares`)".
    confirmed_by: str | None = None
    baseline: Literal["new", "known"] | None = None  # set when compared with a baseline
    # Stable across edits that move code: rule, path, symbol, function and the code itself,
    # never the line number (baselines and SARIF partial fingerprints use it).
    fingerprint: str = ""

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        loc = self.location
        if loc is None:
            return ("", 0, 0, self.rule)
        return (loc.path, loc.line, loc.column, self.rule)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        """The inverse of ``to_dict`` (JSON reports, cached results)."""
        loc = None
        if d.get("path") is not None and d.get("line") is not None:
            loc = Location(path=d["path"], line=d["line"], column=d.get("column") or 1,
                           end_line=d.get("end_line"), end_column=d.get("end_column"))
        notes = tuple(
            Note(message=n["message"],
                 location=Location(path=n["path"], line=n["line"])
                 if n.get("path") is not None and n.get("line") is not None else None)
            for n in d.get("notes", ())
        )
        category, language = _vocabulary_on_load(d)
        return cls(rule=d["rule"], name=d["name"], category=category,
                   language=language, severity=d["severity"],
                   message=d["message"], location=loc,
                   symbol=d.get("symbol"), fix=d.get("fix", ""), module=d.get("module"),
                   callable=d.get("callable"), function=d.get("function"),
                   code=d.get("code", ""), notes=notes, preview=bool(d.get("preview")),
                   evidence=d.get("evidence", "static"), fingerprint=d.get("fingerprint", ""),
                   reproducer=d.get("reproducer"), confirmed=bool(d.get("confirmed")),
                   confirmed_by=d.get("confirmed_by") if isinstance(d.get("confirmed_by"), str)
                   else None,
                   baseline=d.get("baseline") if d.get("baseline") in ("new", "known")
                   else None)

    def to_dict(self) -> dict[str, Any]:
        loc = self.location
        return {
            "rule": self.rule,
            "name": self.name,
            "category": self.category,
            "language": self.language,
            "severity": self.severity,
            "path": loc.path if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
            "end_line": loc.end_line if loc else None,
            "end_column": loc.end_column if loc else None,
            "symbol": self.symbol,
            "message": self.message,
            "fix": self.fix,
            "module": self.module,
            "callable": self.callable,
            "function": self.function,
            "code": self.code,
            "notes": [n.to_dict() for n in self.notes],
            "preview": self.preview,
            "evidence": self.evidence,
            "reproducer": self.reproducer,
            "confirmed": self.confirmed,
            "confirmed_by": self.confirmed_by,
            "baseline": self.baseline,
            "fingerprint": self.fingerprint,
        }


# Categories that named a front end, not a hazard, before findings carried a language.
_RETIRED_CATEGORIES = frozenset({"cython", "bindings", "binary"})


def _vocabulary_on_load(d: dict[str, Any]) -> tuple[str, Language]:
    """A finding's stored category and language. A finding saved before findings had a
    language gets the language it would be given today (its rule's default, refined by its
    path) and, in place of a retired front-end category, its rule's hazard category."""
    category = str(d["category"])
    stored = as_language(d.get("language"))
    if stored is not None:
        return category, stored
    # rulebook imports this module (for SEVERITIES), so the catalogue is looked up lazily.
    from gilaudit.rulebook import shipped_rule  # noqa: PLC0415

    rule = shipped_rule(str(d.get("rule", "")))
    if rule is None:  # a rule this catalogue does not know
        default = "python" if d.get("evidence") == "dynamic" else "c"
    else:
        default = rule.language
        if category in _RETIRED_CATEGORIES:
            category = rule.category
    path = d.get("path")
    return category, language_of(default, path if isinstance(path, str) else None)


@dataclass(frozen=True, kw_only=True, slots=True)
class Diagnostic:
    """Something gilaudit could not fully analyse (bad input, missing header, internal error)."""

    path: str | None
    kind: str  # e.g. "parse-error", "missing-header", "unreadable", "too-large", "not-found"
    message: str
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "message": self.message, "line": self.line}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Diagnostic:
        return cls(path=d.get("path"), kind=d["kind"], message=d["message"], line=d.get("line"))


@dataclass(frozen=True, kw_only=True, slots=True)
class SourceFile:
    path: str  # project-relative
    abspath: str
    language: Literal["c", "c++", "header", "other"]
    size: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Project:
    root: str  # absolute
    name: str
    sources: tuple[SourceFile, ...]  # C, C++ and headers
    build_files: tuple[str, ...]  # project-relative
    diagnostics: tuple[Diagnostic, ...] = ()
    others: tuple[SourceFile, ...] = ()  # every other regular file, for the other front ends

    def diagnostics_include(self, kind: str) -> bool:
        return any(d.kind == kind for d in self.diagnostics)


@dataclass(frozen=True, kw_only=True, slots=True)
class Report:
    """The result of one run: what was found, and what could not be checked."""

    tool: dict[str, Any]
    targets: tuple[str, ...]
    findings: tuple[Finding, ...]
    diagnostics: tuple[Diagnostic, ...]
    # path -> "parsed" | "parsed (partial)" | "failed: ..." | "skipped: ..."
    files: dict[str, str] = field(default_factory=dict)
    lines_analysed: int = 0
    seconds: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)
    stress: StressSummary | None = None  # the dynamic phase, when it ran
    file_modules: dict[str, str] = field(default_factory=dict)  # path -> extension module
    modules: tuple[ModuleVerdict, ...] = ()  # one verdict per extension module (merge)
    generated: str = ""  # when the report was made, ISO 8601 UTC
    baseline: dict[str, Any] | None = None  # {"path", "known", "new"} when one was given


VERDICTS = ("ready", "declared but hazards", "not ready", "not declared", "not exercised",
            "unknown")


@dataclass(frozen=True, kw_only=True, slots=True)
class ModuleVerdict:
    """One extension module's answer: ready for free-threaded CPython or not, and why."""

    module: str  # "(project)" for findings that belong to no one module
    verdict: str  # one of VERDICTS
    reason: str
    declared: bool | None  # declares free-threading support; None when nothing says
    files: tuple[str, ...] = ()
    errors: int = 0
    warnings: int = 0
    info: int = 0
    stress: str | None = None  # the stress phase's verdict for it, when it was stressed
    free_threaded_evidence: bool = False  # stressed on a free-threaded interpreter

    def to_dict(self) -> dict[str, Any]:
        return {"module": self.module, "verdict": self.verdict, "reason": self.reason,
                "declared": self.declared, "files": list(self.files), "errors": self.errors,
                "warnings": self.warnings, "info": self.info, "stress": self.stress,
                "free_threaded_evidence": self.free_threaded_evidence}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModuleVerdict:
        return cls(module=d["module"], verdict=d["verdict"], reason=d.get("reason", ""),
                   declared=d.get("declared"), files=tuple(d.get("files", ())),
                   errors=int(d.get("errors", 0)), warnings=int(d.get("warnings", 0)),
                   info=int(d.get("info", 0)), stress=d.get("stress"),
                   free_threaded_evidence=bool(d.get("free_threaded_evidence")))


@dataclass(frozen=True, kw_only=True, slots=True)
class Driven:
    """A callable the stress phase drove, and how hard."""

    name: str  # "add", "Counter.increment"
    kind: str  # function | class | method | property | special
    call: str  # the expression called: "mod.add(1)", "obj.increment()"
    setup: str | None  # how the shared object was made: "mod.Counter()"
    signature: str  # "text signature" | "probed" | "attribute"
    threads: int
    iterations: int  # calls per thread per trial
    trials: int
    calls: int  # every call made, serial baselines included
    compared: tuple[str, ...] = ()  # what of the object the oracle compared
    raises: str | None = None  # no arguments worked: only its error path was driven
    # the argument lists (calls) different threads were given; for a sequence, its steps
    variants: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "call": self.call, "setup": self.setup,
                "signature": self.signature, "threads": self.threads,
                "iterations": self.iterations, "trials": self.trials, "calls": self.calls,
                "compared": list(self.compared), "raises": self.raises,
                "variants": list(self.variants)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Driven:
        return cls(name=d["name"], kind=d["kind"], call=d["call"], setup=d.get("setup"),
                   signature=d.get("signature", ""), threads=d["threads"],
                   iterations=d["iterations"], trials=d["trials"], calls=d["calls"],
                   compared=tuple(d.get("compared", ())), raises=d.get("raises"),
                   variants=tuple(d.get("variants", ())))


@dataclass(frozen=True, kw_only=True, slots=True)
class Undriven:
    """A callable that was not driven: skipped on purpose, or could not be."""

    name: str
    reason: str
    skipped: bool  # True: never called on purpose (its name); False: could not be driven

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "reason": self.reason, "skipped": self.skipped}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Undriven:
        return cls(name=d["name"], reason=d["reason"], skipped=bool(d.get("skipped")))


@dataclass(frozen=True, kw_only=True, slots=True)
class ModuleStress:
    """One extension module's stress run: its verdict and its exercised surface."""

    module: str
    verdict: str  # clean | problems | not exercised | could not run
    reason: str
    imported: str  # ok | failed | crashed | hung | exited | child-error
    gil_reenabled: bool | None  # None: the interpreter has a GIL anyway
    driven: tuple[Driven, ...] = ()
    undriven: tuple[Undriven, ...] = ()
    calls: int = 0
    seconds: float = 0.0
    children: int = 0  # child processes started (restarts after crashes and hangs included)

    def to_dict(self) -> dict[str, Any]:
        return {"module": self.module, "verdict": self.verdict, "reason": self.reason,
                "imported": self.imported, "gil_reenabled": self.gil_reenabled,
                "driven": [d.to_dict() for d in self.driven],
                "undriven": [u.to_dict() for u in self.undriven], "calls": self.calls,
                "seconds": round(self.seconds, 3), "children": self.children}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModuleStress:
        return cls(module=d["module"], verdict=d["verdict"], reason=d.get("reason", ""),
                   imported=d.get("imported", ""), gil_reenabled=d.get("gil_reenabled"),
                   driven=tuple(Driven.from_dict(x) for x in d.get("driven", ())),
                   undriven=tuple(Undriven.from_dict(x) for x in d.get("undriven", ())),
                   calls=d.get("calls", 0), seconds=d.get("seconds", 0.0),
                   children=d.get("children", 0))


@dataclass(frozen=True, kw_only=True, slots=True)
class ListedTest:
    """A test (or a test file) listed in a suite run, not counted: with why."""

    nodeid: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"nodeid": self.nodeid, "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ListedTest:
        return cls(nodeid=d["nodeid"], reason=d.get("reason", ""))


@dataclass(frozen=True, kw_only=True, slots=True)
class SuiteRun:
    """A project's own test suite, each file run serially and in threads (`stress --tests`)."""

    project: str
    threads: int
    files: int
    tests: int  # collected
    passed_serially: int
    passed_in_threads: int  # run in parallel and passed (thread-unsafe ones not counted)
    failing_in_threads: int  # passed serially; failed, crashed or hung in threads: findings
    skipped: int
    thread_unsafe: tuple[ListedTest, ...] = ()  # pytest-run-parallel ran them in one thread
    failing_serially: tuple[ListedTest, ...] = ()  # not findings: they fail without threads
    not_run: tuple[ListedTest, ...] = ()  # files (or their rest) that did not run, with why
    requirements: tuple[str, ...] = ()  # the test dependencies installed
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"project": self.project, "threads": self.threads, "files": self.files,
                "tests": self.tests, "passed_serially": self.passed_serially,
                "passed_in_threads": self.passed_in_threads,
                "failing_in_threads": self.failing_in_threads, "skipped": self.skipped,
                "thread_unsafe": [t.to_dict() for t in self.thread_unsafe],
                "failing_serially": [t.to_dict() for t in self.failing_serially],
                "not_run": [t.to_dict() for t in self.not_run],
                "requirements": list(self.requirements), "seconds": round(self.seconds, 3)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SuiteRun:
        def listed(key: str) -> tuple[ListedTest, ...]:
            return tuple(ListedTest.from_dict(x) for x in d.get(key, ()))

        return cls(project=d["project"], threads=d.get("threads", 0), files=d.get("files", 0),
                   tests=d.get("tests", 0), passed_serially=d.get("passed_serially", 0),
                   passed_in_threads=d.get("passed_in_threads", 0),
                   failing_in_threads=d.get("failing_in_threads", 0),
                   skipped=d.get("skipped", 0), thread_unsafe=listed("thread_unsafe"),
                   failing_serially=listed("failing_serially"), not_run=listed("not_run"),
                   requirements=tuple(d.get("requirements", ())),
                   seconds=d.get("seconds", 0.0))


@dataclass(frozen=True, kw_only=True, slots=True)
class StressSummary:
    """The dynamic phase of a run: on which interpreter, with which settings, per module."""

    interpreter: dict[str, Any]  # path, version, free_threaded, gil_enabled
    settings: dict[str, Any]  # threads, iterations, trials, seed, budget, timeout
    modules: tuple[ModuleStress, ...]
    caveat: str = ""  # e.g. "a GIL build: races the GIL prevents cannot show"
    tests: tuple[SuiteRun, ...] = ()  # the projects' own test suites (`stress --tests`)
    # `stress --tsan`: reports seen, suppressed (by pattern), not the project's, findings,
    # and how the iterations were scaled down; None without TSan.
    tsan: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"interpreter": self.interpreter, "settings": self.settings,
                "caveat": self.caveat, "modules": [m.to_dict() for m in self.modules],
                "tests": [t.to_dict() for t in self.tests], "tsan": self.tsan}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StressSummary:
        return cls(interpreter=dict(d.get("interpreter", {})),
                   settings=dict(d.get("settings", {})), caveat=d.get("caveat", ""),
                   modules=tuple(ModuleStress.from_dict(m) for m in d.get("modules", ())),
                   tests=tuple(SuiteRun.from_dict(t) for t in d.get("tests", ())),
                   tsan=dict(d["tsan"]) if isinstance(d.get("tsan"), dict) else None)
