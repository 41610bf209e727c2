"""From the front ends' hits to findings: rule text from the catalogue, the module and callable
each belongs to, inline suppressions, the project-level rule FT008, stable fingerprints."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace

from gilaudit.config import Config
from gilaudit.frontends.contract import FrontEndResult, Hit, Suppression
from gilaudit.language import language_of
from gilaudit.model import Finding, Location, Note, fingerprint, severity_rank
from gilaudit.rulebook import RuleBook

__all__ = ["evaluate"]

LineReader = Callable[[str, int], str]


def _finding(hit: Hit, book: RuleBook, config: Config, result: FrontEndResult,
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
        module=result.modules.get(hit.path),
        callable=result.callables.get(hit.function) if hit.function else None,
        function=hit.function,
        code=code,
        notes=hit.notes,
        preview=rule.preview,
        fingerprint=fingerprint(rule.id, hit.path, hit.symbol, hit.function, code),
    )


def evaluate(result: FrontEndResult, *, book: RuleBook, config: Config,
             read_line: LineReader) -> tuple[Finding, ...]:
    """Findings for every front end's hits, merged into ``result``."""
    selected = config.selected
    hits: dict[tuple[str, str, int, int, str], Hit] = {}
    for hit in result.hits:
        if hit.rule in selected and hit.rule in book.rules:
            hits.setdefault((hit.rule, hit.path, hit.line, hit.col, hit.symbol), hit)
    findings = [_finding(h, book, config, result, read_line) for h in hits.values()]
    findings = _apply_suppressions(result.suppressions, findings, book, config, result,
                                   read_line)
    if "FT008" in selected:
        findings += _declared_but_hazards(findings, book, config, result, read_line)
    findings.sort(key=lambda f: f.sort_key)
    findings = _distinct_fingerprints(findings)
    return tuple(findings)


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
                        book: RuleBook, config: Config, result: FrontEndResult,
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
    kept += [_finding(h, book, config, result, read_line) for h in extra
             if h.rule in config.selected]
    return kept


def _declared_but_hazards(findings: list[Finding], book: RuleBook, config: Config,
                          result: FrontEndResult, read_line: LineReader) -> list[Finding]:
    out: list[Finding] = []
    skip = {"module-declaration", "meta"}
    for path, places in sorted(result.declarations.items()):
        module = result.modules.get(path)
        if module is None:
            continue
        errors = [f for f in findings
                  if f.module == module and f.category not in skip and not f.preview
                  and severity_rank(f.severity) >= severity_rank("error")]
        if not errors:
            continue
        for line, col in places:
            notes = tuple(
                Note(message=f"{e.rule} {e.message}", location=e.location) for e in errors[:5]
            )
            hit = Hit(rule="FT008", path=path, line=line, col=col,
                      symbol="Py_MOD_GIL_NOT_USED",
                      where=f"{len(errors)} error(s)", notes=notes)
            out.append(_finding(hit, book, config, result, read_line))
    return out
