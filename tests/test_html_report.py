"""The HTML report: unit tests on the markup, and tests in a real headless browser (Debian's
chromium driven by Selenium): loads with no console error and no network request, filters work,
hostile strings stay text and never widen the page, and a screenshot comes out."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from gilaudit.cli import main
from gilaudit.model import (
    Diagnostic,
    Driven,
    Finding,
    Location,
    ModuleStress,
    ModuleVerdict,
    Note,
    Report,
    StressSummary,
    Undriven,
)
from gilaudit.report.html_report import render_html, template_environment
from gilaudit.rulebook import RuleBook, load_rulebook

REPO = Path(__file__).parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=2">'
QUOTES = "\"double\" 'single' & ampersand </pre></article>"
LONG = "x" * 2500 + "_" + "y" * 2499  # one 5000-character line without a break
NON_ASCII = "日本語 🧵🔥 שלום עולם مرحبا"
HOSTILE = f"{SCRIPT} {IMG} {QUOTES} {NON_ASCII}"


@pytest.fixture(scope="module")
def book() -> RuleBook:
    return load_rulebook()


# --- building reports -----------------------------------------------------------------------

def report_from_json(d: dict[str, Any]) -> Report:
    """A Report from a JSON report (a local stand-in for report/merge.py's report_from_dict)."""
    stress = d.get("stress")
    return Report(
        tool=dict(d.get("tool") or {}), targets=tuple(d.get("targets") or ()),
        findings=tuple(Finding.from_dict(f) for f in d.get("findings") or ()),
        diagnostics=tuple(Diagnostic.from_dict(x) for x in d.get("diagnostics") or ()),
        files=dict(d.get("files") or {}), lines_analysed=(d.get("summary") or {}).get(
            "lines_analysed", 0), seconds=(d.get("summary") or {}).get("seconds", 0.0),
        options=dict(d.get("options") or {}),
        stress=StressSummary.from_dict(stress) if stress else None,
        file_modules=dict(d.get("file_modules") or {}),
        modules=tuple(ModuleVerdict.from_dict(m) for m in d.get("modules") or ()),
        generated=d.get("generated") or "", baseline=d.get("baseline"))


def spamcache_scan(out: Path) -> Report:
    """The real scan of the bundled example extension."""
    main(["scan", str(REPO / "examples" / "spamcache"), "--format", "json", "-o", str(out),
          "--no-cache", "--jobs", "1", "--no-progress"])
    return report_from_json(json.loads(out.read_text()))


def _dynamic(book: RuleBook, rule_id: str, symbol: str, where: str, *, module: str,
             callable_: str, notes: tuple[str, ...] = (), reproducer: str | None = None,
             baseline: str | None = None) -> Finding:
    rule = book.rules[rule_id]
    return Finding(rule=rule.id, name=rule.name, category=rule.category,
                   language=rule.language, severity=rule.severity,
                   message=rule.format_message(symbol, where), location=None, symbol=symbol,
                   fix=rule.fix, module=module, callable=callable_,
                   notes=tuple(Note(message=n) for n in notes), evidence="dynamic",
                   reproducer=reproducer, baseline=baseline,  # type: ignore[arg-type]
                   fingerprint=hashlib.sha256(f"{rule_id}:{symbol}".encode()).hexdigest()[:32])


STACK = """Fatal Python error: Segmentation fault

Thread 0x00007f3a1c7fe6c0 (most recent call first):
  File "/tmp/gilaudit-repro/spamcache__spam_LRU_get.py", line 31 in worker
  File "/usr/lib/python3.13t/threading.py", line 1012 in run
  File "/usr/lib/python3.13t/threading.py", line 1075 in _bootstrap_inner
  File "/usr/lib/python3.13t/threading.py", line 1032 in _bootstrap

Current thread's C stack trace (most recent call first):
  Binary file "/usr/lib/libpython3.13t.so.1.0", at _Py_DumpStack+0x4c [0x7f3a2e1a0a3c]
  Binary file "spamcache/_spam.cpython-313t-x86_64-linux-gnu.so", at LRU_get+0x61 [0x7f3a2d3e1561]
  Binary file "/usr/lib/libpython3.13t.so.1.0", at method_vectorcall_O+0x7e [0x7f3a2e0a95be]
"""


def realistic_report(book: RuleBook, base: Report) -> Report:
    """The spamcache scan plus what a stress run and a baseline add: dynamic findings, a
    confirmed static one, new/known marks, verdicts, the exercised surface, diagnostics."""
    static = list(base.findings)
    marked = []
    for i, found in enumerate(static):
        f = dataclasses.replace(found, baseline="known" if i % 4 == 3 else "new")
        if f.rule == "FT019":
            f = dataclasses.replace(f, confirmed=True, notes=(
                Note(message="confirmed by FT202 on `LRU.get` under 8 threads"),))
        marked.append(f)
    mod = "spamcache._spam"
    dynamic = [
        _dynamic(book, "FT202", "LRU.get", "when 8 threads called it on one shared `LRU` "
                 "(signal SIGSEGV)", module=mod, callable_="LRU.get",
                 notes=(STACK, "the crash repeated in 3 of 3 trials"),
                 reproducer="gilaudit-repro/spamcache__spam_LRU_get.py", baseline="new"),
        _dynamic(book, "FT204", "Counter.increment", "the count was 15872, the serial run "
                 "gave 16000 (128 increments lost)", module=mod, callable_="Counter.increment",
                 notes=("compared: `obj.value` after 8 x 2000 calls",),
                 reproducer="gilaudit-repro/spamcache__spam_Counter_increment.py",
                 baseline="new"),
        _dynamic(book, "FT205", "cache_clear", "RuntimeError: dictionary changed size during "
                 "iteration", module=mod, callable_="cache_clear", baseline="known"),
    ]
    driven = (
        Driven(name="LRU.get", kind="method", call="obj.get('k3')", setup="mod.LRU(64)",
               signature="text signature", threads=8, iterations=2000, trials=3,
               calls=54000, compared=("result", "len(obj)")),
        Driven(name="LRU.put", kind="method", call="obj.put('k3', 1)", setup="mod.LRU(64)",
               signature="probed", threads=8, iterations=2000, trials=3, calls=54000,
               compared=("len(obj)", "obj.keys()")),
        Driven(name="Counter.increment", kind="method", call="obj.increment()",
               setup="mod.Counter()", signature="text signature", threads=8,
               iterations=2000, trials=3, calls=54000, compared=("obj.value",)),
        Driven(name="cache_clear", kind="function", call="mod.cache_clear()", setup=None,
               signature="text signature", threads=8, iterations=500, trials=3, calls=13500),
        Driven(name="version", kind="function", call="mod.version()", setup=None,
               signature="attribute", threads=8, iterations=2000, trials=3, calls=54000),
    )
    undriven = (
        Undriven(name="shutdown", reason="its name says it ends or resets the module",
                 skipped=True),
        Undriven(name="load_file", reason="no argument the probe tried was accepted "
                 "(TypeError: expected a path-like object)", skipped=False),
    )
    stress = StressSummary(
        interpreter={"executable": "/usr/local/bin/python3.13t", "version": "3.13.1",
                     "full_version": "3.13.1 experimental free-threading build",
                     "implementation": "cpython", "free_threaded_build": True,
                     "gil_enabled": False, "free_threaded": True},
        settings={"threads": 8, "iterations": 2000, "trials": 3, "seed": 1234,
                  "budget": 60.0, "total_budget": None, "timeout": 20.0,
                  "import_timeout": 30.0, "memory_bytes": 2147483648,
                  "python_gil_env": "0"},
        caveat="",
        modules=(
            ModuleStress(module=mod, verdict="problems",
                         reason="1 crash, 1 wrong result, 1 exception under concurrency",
                         imported="ok", gil_reenabled=False, driven=driven,
                         undriven=undriven, calls=229500, seconds=41.7, children=2),
            ModuleStress(module="spamcache._speedups", verdict="could not run",
                         reason="import failed: ImportError: undefined symbol: "
                                "PyUnicode_AsUTF8AndSize", imported="failed",
                         gil_reenabled=None, calls=0, seconds=0.4, children=1),
        ))
    modules = (
        ModuleVerdict(module=mod, verdict="not ready",
                      reason="3 errors from the stress phase (a crash, a wrong result, an "
                             "exception) and 6 static errors", declared=False,
                      files=("src/lru.c", "src/spam.c"), errors=9, warnings=5, info=0,
                      stress="problems", free_threaded_evidence=True),
        ModuleVerdict(module="spamcache._speedups", verdict="not exercised",
                      reason="could not be imported for the stress phase; no static findings",
                      declared=None, files=("src/speedups.c",), stress="could not run"),
        ModuleVerdict(module="spamcache._fast", verdict="ready",
                      reason="declares `Py_MOD_GIL_NOT_USED` and stressed clean",
                      declared=True, files=("src/fast.c",), stress="clean",
                      free_threaded_evidence=True),
    )
    diagnostics = (
        Diagnostic(path="src/speedups.c", kind="missing-header",
                   message="`numpy/arrayobject.h` not found: parsed with a fallback; "
                           "findings that need NumPy's types may be missing", line=12),
        Diagnostic(path=None, kind="import-failed",
                   message="spamcache._speedups: ImportError: undefined symbol: "
                           "PyUnicode_AsUTF8AndSize"),
    )
    return dataclasses.replace(
        base, findings=tuple(marked + dynamic), stress=stress, modules=modules,
        diagnostics=diagnostics, generated="2025-11-26T00:50:12Z",
        files={**base.files, "src/speedups.c": "parsed (partial)", "src/fast.c": "parsed"},
        baseline={"path": ".gilaudit-baseline.json", "known": 4, "new": 11},
        seconds=42.3)


def hostile_report(book: RuleBook) -> Report:
    """Everything a finding, a diagnostic and the stress summary can carry, made hostile."""
    finding = Finding(
        rule="FT010", name=f"name {HOSTILE}", category="borrowed-reference", language="c",
        severity="error",
        message=f"message {HOSTILE} {LONG}",
        location=Location(path=f"src/{SCRIPT}/{NON_ASCII}.c", line=7, column=3),
        symbol=f"symbol {IMG}", fix=f"fix {HOSTILE}", module="evil<mod>",
        function=f"fn_{QUOTES}", code=f"code {HOSTILE} {LONG}",
        notes=(Note(message=f"note one {HOSTILE}"),
               Note(message=f"stack {SCRIPT}\n  line two {IMG}\n  {LONG}\n  {NON_ASCII}")),
        reproducer=f"repro/{SCRIPT}.py", fingerprint="abc123")
    plain = Finding(rule="FT001", name="module-without-gil-slot", category="module-declaration",
                    language="c", severity="warning", message="a plain one", location=None,
                    module="plain", callable="f")
    weird = Finding(rule="NOPE999", name="unknown-rule", category=f"cat {SCRIPT}",
                    language="binary", severity="critical",  # type: ignore[arg-type]
                    message="control \x00\x1b[31m\x7f\x85 and a lone surrogate \udcff",
                    location=None)
    stress = StressSummary(
        interpreter={"executable": f"/bin/{SCRIPT}", "version": f"3.13 {IMG}"},
        settings={"threads": 2, "iterations": 3, "trials": 1, "seed": None,
                  f"x{SCRIPT}": LONG},
        caveat=f"caveat {HOSTILE}",
        modules=(ModuleStress(
            module=f"mod {SCRIPT}", verdict=f"weird {IMG}", reason=f"reason {HOSTILE}",
            imported="ok", gil_reenabled=True,
            driven=(Driven(name=f"d {SCRIPT}", kind="function", call=f"mod.f('{LONG}')",
                           setup=f"{IMG}", signature="probed", threads=2, iterations=3,
                           trials=1, calls=6, compared=(QUOTES, NON_ASCII)),),
            undriven=(Undriven(name=f"u {SCRIPT}", reason=f"r {LONG}", skipped=False),)),))
    return Report(
        tool={"name": "gilaudit", "version": f"0.1 {SCRIPT}", "rules_version": IMG},
        targets=(f"target {HOSTILE}", LONG), findings=(finding, plain, weird),
        diagnostics=(Diagnostic(path=f"d/{SCRIPT}", kind=f"kind {IMG}",
                                message=f"diag {HOSTILE} {LONG}", line=3),),
        files={f"f/{SCRIPT}.c": f"failed: {IMG}", LONG: "parsed"},
        options={"select": [SCRIPT], IMG: None}, stress=stress,
        file_modules={f"f/{SCRIPT}.c": "evil<mod>"},
        modules=(ModuleVerdict(module="evil<mod>", verdict=f"odd {SCRIPT}",
                               reason=f"reason {HOSTILE} {LONG}", declared=None,
                               files=(LONG,), errors=1),),
        generated=f"not a date {SCRIPT}",
        baseline={"path": f"b/{IMG}", "known": 0, "new": 1})


def empty_report() -> Report:
    return Report(tool={}, targets=(), findings=(), diagnostics=())


@pytest.fixture(scope="module")
def spamcache(tmp_path_factory: pytest.TempPathFactory) -> Report:
    return spamcache_scan(tmp_path_factory.mktemp("scan") / "report.json")


@pytest.fixture(scope="module")
def realistic(book: RuleBook, spamcache: Report) -> Report:
    return realistic_report(book, spamcache)


# --- the markup, without a browser ----------------------------------------------------------

class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    return parser


def test_autoescape_is_on_for_the_templates() -> None:
    env = template_environment("report/templates")
    assert callable(env.autoescape) and env.autoescape("report.html.j2") is True
    assert env.autoescape("_finding.html.j2") is True


def test_hostile_strings_are_escaped(book: RuleBook) -> None:
    html = render_html(hostile_report(book), book)
    for raw in ("<script>window.__pwned", "<img src=x", 'onerror="window', "</pre></article>"):
        assert raw not in html
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&#34;window.__pwned=2&#34;&gt;" in html
    assert NON_ASCII in html and LONG in html
    parsed = _parse(html)
    assert [t for t, _ in parsed.tags if t == "script"] == ["script"]  # only the page's own
    assert not [t for t, _ in parsed.tags if t == "img"]
    assert not any(k.startswith("on") for _, attrs in parsed.tags for k in attrs)
    text = "".join(parsed.text)
    assert SCRIPT in text and IMG in text and QUOTES in text


def test_control_characters_are_shown_and_the_page_encodes(book: RuleBook) -> None:
    html = render_html(hostile_report(book), book)
    html.encode("utf-8")  # no lone surrogate left
    assert "\x00" not in html and "\x1b" not in html and "\x7f" not in html
    assert "control \u2400\u241b[31m\u2421\\x85 and a lone surrogate \ufffd" in html


def test_nothing_is_loaded_from_the_network(book: RuleBook, realistic: Report) -> None:
    for report in (realistic, hostile_report(book), empty_report()):
        html = render_html(report, book)
        parsed = _parse(html)
        for tag, attrs in parsed.tags:
            for key in ("src", "href", "srcset", "data", "action", "poster"):
                value = (attrs.get(key) or "").strip().lower()
                if tag == "a" and key == "href":
                    assert value.startswith(("#", "https://", "http://")), value
                    continue
                assert not value or value.startswith(("data:", "#")), (tag, key, value)
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", html)
        assert not re.search(r"@import", html)
        csp = [a["content"] for t, a in parsed.tags
               if t == "meta" and (a.get("http-equiv") or "").lower() ==
               "content-security-policy"]
        assert csp and "default-src 'none'" in (csp[0] or "")


def test_only_web_references_become_links(book: RuleBook) -> None:
    rule = book.rules["FT010"]
    evil = dataclasses.replace(rule, references=("javascript:alert(1)",
                                                 "https://example.org/ref"))
    evil_book = RuleBook(rules={**book.rules, "FT010": evil}, version=book.version)
    html = render_html(hostile_report(book), evil_book)
    assert "javascript:" not in html
    assert 'href="https://example.org/ref"' in html


def test_output_is_deterministic(book: RuleBook, realistic: Report) -> None:
    first = render_html(realistic, book)
    again = render_html(dataclasses.replace(realistic, files=dict(
        reversed(list(realistic.files.items())))), book)
    assert first == again
    hostile = render_html(hostile_report(book), book)
    assert hostile == render_html(hostile_report(book), book)


def test_empty_report_renders(book: RuleBook) -> None:
    html = render_html(empty_report(), book)
    assert "No issues found" in html and "Nothing was analysed" in html
    assert 'class="finding' not in html and 'id="filters"' not in html


def test_no_issues_after_a_clean_scan_is_said(book: RuleBook) -> None:
    clean = Report(tool={"name": "gilaudit", "version": "0.1.0"}, targets=("pkg",),
                   findings=(), diagnostics=(), files={"a.c": "parsed"}, lines_analysed=10)
    html = render_html(clean, book)
    assert "No issues found" in html and "empty-state ok" in html
    partial = dataclasses.replace(clean, diagnostics=(
        Diagnostic(path="b.c", kind="parse-error", message="bad"),))
    assert "1 problem kept parts from being checked" in render_html(partial, book)


def test_realistic_report_shows_every_part(book: RuleBook, realistic: Report) -> None:
    html = render_html(realistic, book)
    text = "".join(_parse(html).text)
    for f in realistic.findings:
        assert f.rule in text
        assert book.rules[f.rule].title in text
    for part in ("src/lru.c:19:23", "spamcache._spam.LRU.get", "confirmed by the stress phase",
                 "Reproduce:", "gilaudit-repro/spamcache__spam_LRU_get.py", "not ready",
                 "not exercised", "could not run", "8 \u00d7 2,000 \u00d7 3", "mod.LRU(64)",
                 "its name says it ends or resets the module", "missing-header",
                 "CPython 3.13.1 (free-threaded)", "2025-11-26 00:50:12 UTC",
                 "Fatal Python error: Segmentation fault", realistic.tool["rules_version"]):
        assert part in text, part
    assert html.count('class="finding ') == len(realistic.findings)
    # Without JS every card is visible; the filter bar (useless without JS) is not.
    assert re.search(r'<div id="filters"[^>]*\bhidden\b', html)
    assert not re.search(r"<article[^>]*\bhidden\b", html)
    # Errors first, in the report's order within a severity; a type's collapsed group stands
    # where its first (most serious) card would, and is in that order inside as well.
    order = ["error", "warning", "info"].index
    groups = re.findall(r'<details class="type-group".*?</details>', html, flags=re.S)
    for g in groups:
        inside = re.findall(r'<article class="finding s-(\w+)"', g)
        assert inside == sorted(inside, key=order)
    firsts = re.sub(r'(<details class="type-group".*?<article class="finding s-\w+").*?</details>',
                    r"\1", html, flags=re.S)
    sevs = re.findall(r'<article class="finding s-(\w+)"', firsts)
    assert sevs == sorted(sevs, key=order)


def test_templates_path_named_by_the_issue_exists() -> None:
    link = REPO / "reports" / "templates"
    assert (link / "report.html.j2").is_file()
    assert link.resolve() == (REPO / "src" / "gilaudit" / "report" / "templates").resolve()


# --- in a real browser ----------------------------------------------------------------------



def _open(driver: Any, path: Path, html: str) -> None:
    path.write_text(html, encoding="utf-8")
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(path.resolve().as_uri())


def _visible(driver: Any) -> int:
    return sum(1 for card in driver.find_elements("css selector", "article.finding")
               if card.is_displayed())


def test_page_loads_without_errors_or_requests(browser: Any, tmp_path: Path, book: RuleBook,
                                               realistic: Report) -> None:
    for name, report in (("realistic", realistic), ("hostile", hostile_report(book)),
                         ("empty", empty_report())):
        _open(browser, tmp_path / f"{name}.html", render_html(report, book))
        severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == [], (name, severe)
        resources = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        assert resources == [], (name, resources)
        assert browser.execute_script("return document.readyState") == "complete"


def test_filters_hide_exactly_the_non_matching_cards(browser: Any, tmp_path: Path,
                                                     realistic: Report) -> None:
    from selenium.webdriver.support.select import Select  # noqa: PLC0415

    book = load_rulebook()
    _open(browser, tmp_path / "filters.html", render_html(realistic, book))
    findings = realistic.findings
    total = len(findings)
    assert _visible(browser) == total
    assert browser.find_element("id", "filters").is_displayed()

    def pick(select_id: str, value: str) -> None:
        Select(browser.find_element("id", select_id)).select_by_value(value)

    def reset() -> None:
        browser.find_element("id", "f-reset").click()
        assert _visible(browser) == total

    pick("f-severity", "warning")
    assert _visible(browser) == sum(f.severity == "warning" for f in findings) > 0
    shown = browser.find_element("id", "f-shown").text
    assert shown == f"Showing {_visible(browser)} of {total}"
    reset()

    pick("f-category", "borrowed-reference")
    expected = [f for f in findings if f.category == "borrowed-reference"]
    assert 0 < _visible(browser) == len(expected) < total
    pick("f-severity", "error")  # combined with the category
    assert _visible(browser) == sum(f.severity == "error" for f in expected)
    reset()

    pick("f-language", "python")  # the stress phase's findings
    assert 0 < _visible(browser) == sum(f.language == "python" for f in findings) < total
    reset()

    pick("f-module", "spamcache._spam")
    assert _visible(browser) == sum(f.module == "spamcache._spam" for f in findings)
    reset()

    search = browser.find_element("id", "f-search")
    search.send_keys("PyList_GET_ITEM")
    matching = [f for f in findings if "PyList_GET_ITEM" in (f.message + f.code + f.fix)
                + (f.symbol or "")]
    assert 0 < _visible(browser) == len(matching) < total
    search.send_keys("-no-such-thing")
    assert _visible(browser) == 0
    assert browser.find_element("id", "f-none").is_displayed()
    reset()
    assert not browser.find_element("id", "f-none").is_displayed()

    # The severity tile sets the filter too.
    browser.find_element("css selector", 'a.tile[data-value="warning"]').click()
    assert _visible(browser) == sum(f.severity == "warning" for f in findings)
    reset()


def test_hostile_strings_are_text_and_never_widen_the_page(browser: Any, tmp_path: Path,
                                                           book: RuleBook) -> None:
    report = hostile_report(book)
    _open(browser, tmp_path / "hostile.html", render_html(report, book))
    assert browser.execute_script("return typeof window.__pwned") == "undefined"
    assert browser.execute_script("return document.images.length") == 0
    assert browser.execute_script("return document.scripts.length") == 1
    text = browser.execute_script("return document.body.textContent")
    for needle in (SCRIPT, IMG, QUOTES, NON_ASCII, LONG, f"message {HOSTILE} {LONG}",
                   f"code {HOSTILE} {LONG}", f"fix {HOSTILE}", f"symbol {IMG}",
                   f"src/{SCRIPT}/{NON_ASCII}.c:7:3", f"repro/{SCRIPT}.py",
                   f"caveat {HOSTILE}", f"diag {HOSTILE} {LONG}", f"d {SCRIPT}"):
        assert needle in text, needle[:80]
    browser.set_window_size(1366, 768)
    width = browser.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1] + 1, width
    # Filtering on the hostile module and category works like on any other.
    from selenium.webdriver.support.select import Select  # noqa: PLC0415

    Select(browser.find_element("id", "f-module")).select_by_value("evil<mod>")
    assert _visible(browser) == 1
    Select(browser.find_element("id", "f-module")).select_by_value("")
    Select(browser.find_element("id", "f-category")).select_by_value(f"cat {SCRIPT}")
    assert _visible(browser) == 1


def test_screenshot(browser: Any, tmp_path: Path, book: RuleBook, realistic: Report) -> None:
    _open(browser, tmp_path / "shot.html", render_html(realistic, book))
    browser.set_window_size(1366, 768)
    png = tmp_path / "report-1366x768.png"
    assert browser.save_screenshot(str(png))
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 1000 and height >= 500


def test_without_javascript_everything_is_visible(browser: Any, tmp_path: Path, book: RuleBook,
                                                  realistic: Report) -> None:
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        _open(browser, tmp_path / "nojs.html", render_html(realistic, book))
        assert _visible(browser) == len(realistic.findings)
        assert not browser.find_element("id", "filters").is_displayed()
        assert browser.find_element("id", "stress").is_displayed()
    finally:
        browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})
