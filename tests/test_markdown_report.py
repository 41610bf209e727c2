"""The Markdown summary: compact, escaped, capped under GitHub's comment limit."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest

from gilaudit.language import language_of
from gilaudit.model import (
    Diagnostic,
    Finding,
    Location,
    ModuleStress,
    ModuleVerdict,
    Report,
    StressSummary,
)
from gilaudit.report.markdown_report import MAX_CHARS, MAX_FINDINGS, render_markdown
from gilaudit.rulebook import RuleBook, load_rulebook

HOSTILE = ('<script>alert("x")</script> <img src=x onerror=alert(1)> | `rm -rf` *b* **B** '
           '_i_ ~~s~~ [a](javascript:x) ![i](http://e/x.png) @team $\\huge x$ \\| &lt;b&gt; '
           '\x00\x07\x1b[31m\x0b\x0c \ud800 \u202e\u2066 🐍 é\r\n| injected | row |\n# head\n'
           + "A" * 3000)


@pytest.fixture(scope="module")
def book() -> RuleBook:
    return load_rulebook()


def _finding(rule: str, book: RuleBook, **kw: Any) -> Finding:
    r = book.rules[rule]
    base: dict[str, Any] = {"rule": r.id, "name": r.name, "category": r.category,
                            "severity": r.severity, "message": f"{r.title} here",
                            "location": None, "fix": r.fix, "fingerprint": f"fp-{rule}"}
    base.update(kw)
    loc = base["location"]
    base.setdefault("language", language_of(r.language, loc.path if loc else None))
    return Finding(**base)


def _stress(module: str, verdict: str) -> ModuleStress:
    return ModuleStress(module=module, verdict=verdict, reason="why", imported="ok",
                        gil_reenabled=False)


def sample_report(book: RuleBook) -> Report:
    findings = (
        _finding("FT040", book, location=Location(path="src/a.c", line=30), module="pkg._fast"),
        _finding("FT010", book, location=Location(path="src/lru.c", line=19), module="pkg._fast",
                 baseline="new"),
        _finding("FT012", book, location=Location(path="src/lru.c", line=21), module="pkg._fast",
                 confirmed=True, baseline="known"),
        _finding("FT005", book, location=Location(path="src/other.c", line=9),
                 module="pkg._other"),
        _finding("FT202", book, module="pkg._fast", callable="Cache.get", evidence="dynamic"),
        _finding("FT130", book, location=Location(path="pyproject.toml", line=3)),
    )
    return Report(
        tool={"name": "gilaudit", "version": "0.1.0", "rules_version": book.version},
        targets=("proj",), findings=findings,
        diagnostics=(Diagnostic(path="src/bad.c", kind="parse-error", message="oops", line=4),
                     Diagnostic(path=None, kind="internal-error", message="boom")),
        files={"src/lru.c": "parsed", "src/a.c": "parsed", "src/bad.c": "failed: x"},
        lines_analysed=4321, options={"fail_on": "error"},
        stress=StressSummary(
            interpreter={"executable": "/usr/bin/python3.14t", "version": "3.14.0",
                         "free_threaded": True},
            settings={}, caveat="",
            modules=(_stress("pkg._fast", "problems"), _stress("pkg._other", "not exercised"),
                     _stress("pkg.ready", "clean"))),
        modules=(
            ModuleVerdict(module="pkg._fast", verdict="not ready", reason="x", declared=False,
                          errors=3, warnings=1, stress="problems"),
            ModuleVerdict(module="pkg.ready", verdict="ready", reason="x", declared=True,
                          stress="clean"),
            ModuleVerdict(module="pkg.hazards", verdict="declared but hazards", reason="x",
                          declared=True, warnings=2),
            ModuleVerdict(module="pkg.undeclared", verdict="not declared", reason="x",
                          declared=False),
            ModuleVerdict(module="pkg._other", verdict="not exercised", reason="x",
                          declared=None, info=1),
            ModuleVerdict(module="pkg.unknown", verdict="unknown", reason="x", declared=None),
        ),
        generated="2025-01-02T03:04:05Z",
        baseline={"path": "b.json", "known": 1, "new": 1},
    )


def _unescaped(text: str, char: str) -> list[int]:
    """Positions of `char` not escaped by a backslash."""
    out, backslashes = [], 0
    for i, ch in enumerate(text):
        if ch == char and backslashes % 2 == 0:
            out.append(i)
        backslashes = backslashes + 1 if ch == "\\" else 0
    return out


def _assert_tables_sound(text: str) -> None:
    """Every row of a table has as many cells as its header."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("|---") or line.startswith("|--"):
            columns = len(_unescaped(lines[i - 1], "|"))
            j = i + 1
            while j < len(lines) and lines[j].startswith("|"):
                assert len(_unescaped(lines[j], "|")) == columns, lines[j][:200]
                j += 1


def test_sample_report(book: RuleBook) -> None:
    text = render_markdown(sample_report(book), book)
    lines = text.splitlines()
    assert lines[0] == "## \u274c gilaudit: failed"
    assert "**3 errors**, 2 warnings, 1 info (1 new finding, 1 in the baseline) in 2 files " \
           "(4,321 lines), 2 modules stressed." in text
    rows = {line.split(" | ")[0][2:]: line for line in lines
            if line.startswith("| pkg") and line.count(" | ") == 4}
    assert rows["pkg.\\_fast"] == "| pkg.\\_fast | \u274c not ready | 3 | 1 | \u274c problems |"
    assert rows["pkg.ready"] == "| pkg.ready | \u2705 ready | 0 | 0 | \u2705 clean |"
    assert "\u26a0\ufe0f declared but hazards" in rows["pkg.hazards"]
    assert "\u274c not declared" in rows["pkg.undeclared"]
    assert rows["pkg.\\_other"].endswith("| \u2754 not exercised |")
    assert "| pkg.unknown | \u2754 unknown | 0 | 0 | \u2014 |" in lines
    assert "| borrowed-reference | c (2) | 2 | 0 | 0 |" in lines
    findings = [line for line in lines if line.startswith("| \u274c error") or
                line.startswith("| \u26a0\ufe0f warning") or line.startswith("| \u2139")]
    assert len(findings) == 6
    severities = [line.split(" | ")[0] for line in findings]
    assert severities == sorted(severities, key=lambda s: ("error" not in s, "info" in s))
    assert "(new)" in findings[0] and "src/lru.c:19" in findings[0]
    assert "[FT010](https://" in findings[0]
    assert findings[1].startswith("| \u274c error | pkg.\\_fast.Cache.get | ")  # dynamic
    assert "(dynamic)" in findings[1]
    # Known findings come last in their severity.
    assert "src/lru.c:21" in findings[2] and "(in baseline, confirmed)" in findings[2]
    assert "<details>" in text and "<summary>2 diagnostics: " in text
    assert "- src/bad.c:4: parse-error: oops" in lines
    assert "- (no file): internal-error: boom" in lines
    assert lines[-1] == ("<sub>gilaudit 0.1.0 \u00b7 rules " + book.version +
                         " \u00b7 stressed on CPython 3.14.0 (free-threaded) \u00b7 "
                         "2025-01-02T03:04:05Z</sub>")
    _assert_tables_sound(text)
    assert len(text) < MAX_CHARS


def test_status_words(book: RuleBook) -> None:
    report = sample_report(book)
    known = replace(report, findings=tuple(
        replace(f, baseline="known") if f.severity == "error" else f for f in report.findings))
    assert render_markdown(known, book).startswith("## \u26a0\ufe0f gilaudit: passed with")
    warn = replace(report, options={"fail_on": "warning"}, findings=tuple(
        f for f in report.findings if f.severity == "warning"))
    assert render_markdown(warn, book).startswith("## \u274c gilaudit: failed")
    clean = replace(report, findings=(), diagnostics=())
    assert render_markdown(clean, book).startswith("## \u2705 gilaudit: passed\n")
    partial = replace(report, findings=())
    assert ", but parts could not be analysed" in render_markdown(partial, book).splitlines()[0]


def test_hostile_strings_are_escaped(book: RuleBook) -> None:
    hostile = _finding("FT010", book, message=HOSTILE, module=HOSTILE, callable=HOSTILE,
                       category=HOSTILE, location=Location(path=HOSTILE, line=1))
    dynamic = replace(hostile, location=None, evidence="dynamic", rule=HOSTILE)
    report = Report(tool={"version": HOSTILE, "rules_version": HOSTILE}, targets=(HOSTILE,),
                    findings=(hostile, dynamic),
                    diagnostics=(Diagnostic(path=HOSTILE, kind=HOSTILE, message=HOSTILE,
                                            line=3),),
                    files={HOSTILE: "parsed"}, generated=HOSTILE,
                    modules=(ModuleVerdict(module=HOSTILE, verdict=HOSTILE, reason=HOSTILE,
                                           declared=None),),
                    stress=StressSummary(interpreter={"version": HOSTILE}, settings={},
                                         caveat=HOSTILE,
                                         modules=(_stress(HOSTILE, HOSTILE),)))
    text = render_markdown(report, book)
    text.encode("utf-8")
    _assert_tables_sound(text)
    assert not _unescaped(text, "`")
    assert len(_unescaped(text, "*")) == 4  # our own **N errors**
    for bad in ("<script", "<img", "</script", "| injected |", "\n# head", "@team", "**B**",
                "[a](", "![i]", "$\\huge", "~~s~~", "\x00", "\x1b", "\ud800",
                "\u202e", "\u2066", "\r", "&lt;b&gt;"):
        assert bad not in text, bad
    assert "&lt;script&gt;" in text
    assert re.search(r"\u2026:1 \| ", text)  # a long path is cut, its line number kept
    assert "\\| \\`rm \\-rf\\`" not in text  # '-' is not escaped: it cannot start a line here
    assert "\\| \\`rm -rf\\` \\*b\\* \\*\\*B\\*\\* \\_i\\_ \\~\\~s\\~\\~ \\[a\\]" in text
    assert "@\u200bteam" in text and "&amp;lt;b&amp;gt;" in text
    assert "\\$\\\\huge x\\$ \\\\\\|" in text
    # HTML we write ourselves stays, and nothing else: only our tags appear unescaped.
    assert set(re.findall(r"</?([a-z]+)", text)) <= {"details", "summary", "sub"}
    for line in text.splitlines():
        assert len(line) < 2000


def test_capped_under_the_comment_limit(book: RuleBook) -> None:
    long = "x" * 5000 + "|<>&" * 500
    findings = tuple(
        _finding("FT010", book, message=f"{i} {long}", module=f"mod{i % 700}-{'m' * 200}",
                 location=Location(path=f"src/{'d/' * 50}f{i}.c", line=i + 1))
        for i in range(3000))
    modules = tuple(ModuleVerdict(module=f"mod{i}-{'m' * 200}", verdict="not ready",
                                  reason=long, declared=False) for i in range(700))
    diags = tuple(Diagnostic(path=f"p{i}", kind="parse-error", message=long)
                  for i in range(900))
    report = Report(tool={}, targets=(), findings=findings, diagnostics=diags,
                    files={"a.c": "parsed"}, modules=modules)
    text = render_markdown(report, book)
    assert len(text) < MAX_CHARS
    assert re.search(r"\u2026 and 2,9\d\d more finding\(s\) left out", text)
    assert "\u2026 and 600 more module(s) left out" in text
    assert "\u2026 and 870 more (see the full report)" in text
    assert text.rstrip().endswith("</sub>")
    _assert_tables_sound(text)


def test_at_most_max_findings(book: RuleBook) -> None:
    findings = tuple(_finding("FT040", book, location=Location(path="a.c", line=i + 1))
                     for i in range(MAX_FINDINGS + 30))
    report = Report(tool={}, targets=(), findings=findings, diagnostics=(),
                    files={"a.c": "parsed"})
    text = render_markdown(report, book)
    assert sum(1 for line in text.splitlines() if line.startswith("| \u26a0")) == MAX_FINDINGS
    assert "### Top findings" in text
    assert "\u2026 and 30 more finding(s) left out (see the full report)." in text


def test_empty_report(book: RuleBook) -> None:
    report = Report(tool={}, targets=(), findings=(), diagnostics=())
    text = render_markdown(report, book)
    assert text.startswith("## \u2754 gilaudit: nothing could be analysed\n")
    assert "**0 errors**, 0 warnings, 0 info in 0 files (0 lines)." in text
    assert "###" not in text and "<details>" not in text
    assert text.endswith("static analysis only</sub>\n")


def test_deterministic(book: RuleBook) -> None:
    report = sample_report(book)
    text = render_markdown(report, book)
    assert render_markdown(report, book) == text
    shuffled = replace(report, findings=tuple(reversed(report.findings)),
                       modules=tuple(reversed(report.modules)),
                       diagnostics=tuple(reversed(report.diagnostics)))
    assert render_markdown(shuffled, book) == text
