"""Evaluate the rules on a project's facts: matchers, then suppressions, then project-level
rules (FT008), then rule text from the catalogue."""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, replace

from gilaudit.buildinfo import BuildInfo
from gilaudit.config import Config
from gilaudit.frontend import FrontEndResult
from gilaudit.language import language_of
from gilaudit.model import Diagnostic, Finding, Location, Note, severity_rank
from gilaudit.rulebook import RuleBook
from gilaudit.static.context import Hit, ProjectIndex, build_index
from gilaudit.static.facts import FileFacts, Suppression
from gilaudit.static.matchers import REGISTRY
from gilaudit.static.matchers.module_declaration import declarations

__all__ = ["Evaluation", "evaluate"]

LineReader = Callable[[str, int], str]


@dataclass(frozen=True, kw_only=True, slots=True)
class Evaluation:
    findings: tuple[Finding, ...]
    diagnostics: tuple[Diagnostic, ...]
    modules: dict[str, str | None]  # path -> extension module


def _extension_map(build: BuildInfo) -> dict[str, str]:
    out: dict[str, str] = {}
    for ext in build.extensions:
        for src in ext.sources:
            out[posixpath.normpath(src.replace("\\", "/"))] = ext.name
    return out


def fingerprint(rule: str, path: str, symbol: str, function: str | None, code: str) -> str:
    normalised = " ".join(code.split())
    digest = hashlib.sha256("\0".join((rule, path, symbol, function or "", normalised)).encode())
    return digest.hexdigest()[:32]


def _finding(hit: Hit, book: RuleBook, config: Config, index: ProjectIndex,
             read_line: LineReader) -> Finding:
    rule = book.get(hit.rule)
    severity = config.severity.get(rule.id) or hit.severity or rule.severity
    code = read_line(hit.path, hit.line).strip()
    return Finding(
        rule=rule.id,
        name=rule.name,
        category=rule.category,
        language=language_of(rule.language, hit.path),
        severity=severity,  # type: ignore[arg-type]
        message=rule.format_message(hit.symbol, hit.where),
        location=Location(path=hit.path, line=hit.line, column=hit.col),
        symbol=hit.symbol or None,
        fix=rule.fix,
        module=index.file_module.get(hit.path),
        callable=index.callable_names.get(hit.function) if hit.function else None,
        function=hit.function,
        code=code,
        notes=hit.notes,
        preview=rule.preview,
        fingerprint=fingerprint(rule.id, hit.path, hit.symbol, hit.function, code),
    )


def c_index(files: list[FileFacts], build: BuildInfo) -> ProjectIndex:
    return build_index(files, extension_of=_extension_map(build),
                       supports_before_313=build.supports_before_313())


def evaluate(files: list[FileFacts], *, book: RuleBook, config: Config, build: BuildInfo,
             read_line: LineReader, index: ProjectIndex | None = None,
             extra: FrontEndResult | None = None) -> Evaluation:
    """Findings for the C facts plus the hits other front ends made (``extra``)."""
    selected = config.selected
    if index is None:
        index = c_index(files, build)
    if extra is not None and extra.modules:
        index = replace(index, file_module={**extra.modules, **index.file_module})
    diags: list[Diagnostic] = []
    hits: dict[tuple[str, str, int, int, str], Hit] = {}
    for hit in extra.hits if extra is not None else ():
        if hit.rule in selected and hit.rule in book.rules:
            hits.setdefault((hit.rule, hit.path, hit.line, hit.col, hit.symbol), hit)
    for facts in files:
        for matcher, rules in REGISTRY:
            if not rules & selected:
                continue
            try:
                for hit in matcher(facts, index, selected):
                    if hit.rule in selected:
                        hits.setdefault((hit.rule, hit.path, hit.line, hit.col, hit.symbol), hit)
            except Exception as exc:  # noqa: BLE001 - a matcher bug must not lose the run
                diags.append(Diagnostic(
                    path=facts.path, kind="internal-error",
                    message=f"matcher {matcher.__name__} failed: {type(exc).__name__}: {exc}; "
                            f"rules {', '.join(sorted(rules))} were not checked in this file"))
    findings = [_finding(h, book, config, index, read_line) for h in hits.values()]
    suppressions = {f.path: f.suppressions for f in files if f.suppressions}
    if extra is not None:
        suppressions.update(extra.suppressions)
    findings = _apply_suppressions(suppressions, findings, book, config, index, read_line)
    if "FT008" in selected:
        findings += _declared_but_hazards(files, findings, book, config, index, read_line)
    findings.sort(key=lambda f: f.sort_key)
    findings = _distinct_fingerprints(findings)
    return Evaluation(findings=tuple(findings), diagnostics=tuple(diags),
                      modules=dict(index.file_module))


def _distinct_fingerprints(findings: list[Finding]) -> list[Finding]:
    """Identical code can hold the same problem twice (two `strtok` calls on one line): the
    n-th occurrence, in source order, gets its ordinal folded into its fingerprint."""
    seen: dict[str, int] = {}
    out = []
    for f in findings:
        n = seen.get(f.fingerprint, 0)
        seen[f.fingerprint] = n + 1
        if n:
            digest = hashlib.sha256(f"{f.fingerprint}#{n}".encode()).hexdigest()[:32]
            f = replace(f, fingerprint=digest)  # noqa: PLW2901 - the renumbered copy
        out.append(f)
    return out


def _apply_suppressions(by_file: dict[str, tuple[Suppression, ...]], findings: list[Finding],
                        book: RuleBook, config: Config, index: ProjectIndex,
                        read_line: LineReader) -> list[Finding]:
    used: set[tuple[str, int, str]] = set()
    kept: list[Finding] = []
    for finding in findings:
        loc = finding.location
        suppressions = by_file.get(loc.path, ()) if loc else ()
        suppressed = False
        if loc is not None:
            for s in suppressions:
                if s.line in (loc.line, loc.line - 1) and finding.rule in s.ids:
                    used.add((loc.path, s.line, finding.rule))
                    suppressed = True
        if not suppressed:
            kept.append(finding)
    extra: list[Hit] = []
    for path, suppressions in by_file.items():
        for s in suppressions:
            if not s.ids:
                extra.append(Hit(rule="FT901", path=path, line=s.line, col=s.col,
                                 symbol="ignore"))
                continue
            for rule_id in s.ids:
                if rule_id not in book.rules:
                    extra.append(Hit(rule="FT900", path=path, line=s.line, col=s.col,
                                     symbol=rule_id, where="an unknown rule"))
                elif rule_id in config.selected and (path, s.line, rule_id) not in used:
                    extra.append(Hit(rule="FT900", path=path, line=s.line, col=s.col,
                                     symbol=rule_id))
    kept += [_finding(h, book, config, index, read_line) for h in extra
             if h.rule in config.selected]
    return kept


def _declared_but_hazards(files: list[FileFacts], findings: list[Finding], book: RuleBook,
                          config: Config, index: ProjectIndex,
                          read_line: LineReader) -> list[Finding]:
    out: list[Finding] = []
    skip = {"module-declaration", "meta"}
    for facts in files:
        module = index.file_module.get(facts.path)
        if module is None:
            continue
        errors = [f for f in findings
                  if f.module == module and f.category not in skip and not f.preview
                  and severity_rank(f.severity) >= severity_rank("error")]
        if not errors:
            continue
        for line, col in declarations(facts):
            notes = tuple(
                Note(message=f"{e.rule} {e.message}", location=e.location) for e in errors[:5]
            )
            hit = Hit(rule="FT008", path=facts.path, line=line, col=col,
                      symbol="Py_MOD_GIL_NOT_USED",
                      where=f"{len(errors)} error(s)", notes=notes)
            out.append(_finding(hit, book, config, index, read_line))
    return out

