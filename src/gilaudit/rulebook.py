"""The rule catalogue, loaded from the TOML files in ``rules/``: the only source of rule text.

A rule's ``category`` names the hazard it detects (``rules/README.md`` lists them), whatever
front end finds it; its ``language`` says where it is found by default (``gilaudit.language``).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from gilaudit._toml import tomllib
from gilaudit.errors import RuleCatalogueError
from gilaudit.language import LANGUAGES, Language, as_language
from gilaudit.model import SEVERITIES, Severity

__all__ = ["DOC_HEADINGS", "Rule", "RuleBook", "load_rulebook", "shipped_rule"]

DOC_HEADINGS: dict[str, str] = {
    "what": "What it does",
    "why": "Why it breaks without the GIL",
    "example": "Example",
    "instead": "Use instead",
    "false_positives": "Known false positives",
}
_REQUIRED = ("id", "name", "category", "language", "severity", "status", "title", "message",
             "fix")
_STATUSES = ("stable", "preview", "deprecated", "removed")


@dataclass(frozen=True, kw_only=True, slots=True)
class Rule:
    id: str
    name: str
    category: str  # the hazard
    language: Language  # where it is found, unless a finding's path says more
    severity: Severity
    status: str
    title: str
    message: str
    fix: str
    replacement: str
    since: str
    compat: str
    references: tuple[str, ...]
    docs: tuple[tuple[str, str], ...]  # (heading key, text) in DOC_HEADINGS order
    source: str  # the TOML file it came from
    phase: str = "static"  # "dynamic": found by the stress phase, never by a matcher

    @property
    def preview(self) -> bool:
        return self.status == "preview"

    def format_message(self, symbol: str | None, where: str | None) -> str:
        return self.message.format(symbol=symbol or "", where=where or "").strip()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "category": self.category,
            "language": self.language,
            "severity": self.severity,
            "status": self.status,
            "title": self.title,
            "message": self.message,
            "fix": self.fix,
            "replacement": self.replacement,
            "since": self.since,
            "compat": self.compat,
            "phase": self.phase,
            "references": list(self.references),
            "docs": dict(self.docs),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class RuleBook:
    rules: dict[str, Rule]
    version: str  # content hash of the catalogue: part of cache keys and reports

    def get(self, rule_id: str) -> Rule:
        return self.rules[rule_id]

    def matching(self, selector: str) -> list[str]:
        """Ids named by an id ("FT012"), a prefix ("FT01"), a name, a category or a language
        (the rules found by default in that language: "cython", "binary")."""
        sel = selector.strip()
        return [
            r.id
            for r in self.rules.values()
            if r.id.startswith(sel.upper()) or sel in (r.name, r.category, r.language)
        ]


def _rule_from_table(table: dict[str, Any], source: str) -> Rule:
    where = f"{source}: rule {table.get('id', '?')}"
    missing = [k for k in _REQUIRED if not isinstance(table.get(k), str) or not table.get(k)]
    if missing:
        raise RuleCatalogueError(f"{where}: missing or empty {', '.join(missing)}")
    if table["severity"] not in SEVERITIES:
        raise RuleCatalogueError(
            f"{where}: severity {table['severity']!r} is not one of {SEVERITIES}")
    if table.get("phase", "static") not in ("static", "dynamic"):
        raise RuleCatalogueError(f"{where}: phase {table['phase']!r} is not static or dynamic")
    language = as_language(table["language"])
    if language is None:
        raise RuleCatalogueError(
            f"{where}: language {table['language']!r} is not one of {LANGUAGES}")
    if table["status"] not in _STATUSES:
        raise RuleCatalogueError(f"{where}: status {table['status']!r} is not one of {_STATUSES}")
    try:
        table["message"].format(symbol="", where="")
    except (KeyError, IndexError, ValueError) as exc:
        raise RuleCatalogueError(f"{where}: message template: {exc}") from exc
    docs_table = table.get("docs", {})
    docs = tuple((k, str(docs_table.get(k, ""))) for k in DOC_HEADINGS)
    refs = table.get("references", [])
    return Rule(
        id=table["id"],
        name=table["name"],
        category=table["category"],
        language=language,
        severity=table["severity"],
        status=table["status"],
        title=table["title"],
        message=table["message"],
        fix=table["fix"],
        replacement=str(table.get("replacement", "")),
        since=str(table.get("since", "")),
        compat=str(table.get("compat", "")),
        references=tuple(str(r) for r in refs),
        docs=docs,
        source=source,
        phase=str(table.get("phase", "static")),
    )


def load_rulebook() -> RuleBook:
    rules: dict[str, Rule] = {}
    digest = hashlib.sha256()
    folder = resources.files("gilaudit") / "rules"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue  # README.md (the category table) and anything else is documentation
        raw = entry.read_bytes()
        digest.update(entry.name.encode() + b"\0" + raw)
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise RuleCatalogueError(f"rules/{entry.name}: {exc}") from exc
        for table in data.get("rule", []):
            rule = _rule_from_table(table, f"rules/{entry.name}")
            if rule.id in rules:
                raise RuleCatalogueError(f"rules/{entry.name}: duplicate id {rule.id}")
            rules[rule.id] = rule
    if not rules:
        raise RuleCatalogueError("no rules found in the gilaudit package")
    return RuleBook(rules=dict(sorted(rules.items())), version=digest.hexdigest()[:12])


@functools.cache
def _shipped() -> RuleBook:
    return load_rulebook()


def shipped_rule(rule_id: str) -> Rule | None:
    """A rule of the installed catalogue, None for an unknown id: what a finding saved by an
    older gilaudit (no ``language``, a retired category) is brought up to date with on load."""
    return _shipped().rules.get(rule_id)
