"""The dashboard's static site: the markup (escaped, self-contained, deterministic, safe file
names), the trend chart (matplotlib's SVG, inlined without external references), the size per
1,000 packages, and tests in a real headless browser (Debian's chromium driven by Selenium):
no console error or network request, sorting, filters, package pages with their history and
report, hostile metadata shown as text, no overflow at 1366x768, and screenshots."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from gilaudit.cli import main
from gilaudit.dashboard.db import Database
from gilaudit.dashboard.fake import generated_results
from gilaudit.dashboard.model import PackageResult
from gilaudit.dashboard.site import SiteError, page_name, safe_link, trend_svg, write_site
from gilaudit.rulebook import RuleBook, load_rulebook

REPO = Path(__file__).parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
INDEX = "https://pypi.org/simple/"

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=2">'
RTL = "\u202eevil\u202c \u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627"
NON_ASCII = "\u65e5\u672c\u8a9e \U0001f9f5\U0001f525 caf\u00e9"
LONG = "y" * 3000
HOSTILE_NAME = f"{SCRIPT}{IMG}../../etc/passwd"
HOSTILE_SUMMARY = f"{SCRIPT} {IMG} \"q\" 'q' & {RTL} {NON_ASCII} {LONG}"
JS_URL = "javascript:window.__pwned=3"
RUNS = 3
GENERATED = 24


# --- building the database ------------------------------------------------------------------

@pytest.fixture(scope="module")
def spamcache_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real report: gilaudit's scan of its bundled example extension."""
    out = tmp_path_factory.mktemp("scan") / "x.json"
    code = main(["scan", str(REPO / "examples" / "spamcache"), "--format", "json", "-o",
                 str(out), "--no-cache", "--jobs", "1", "--no-progress"])
    assert code in (0, 1)
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def handmade(report: dict[str, Any], k: int) -> list[PackageResult]:
    hostile_report = {**report, "targets": [HOSTILE_SUMMARY],
                      "metadata": {"name": "x", "version": "1", "home_page": JS_URL,
                                   "project_urls": [["Source", "https://example.org/src"],
                                                    ["Evil", JS_URL],
                                                    [SCRIPT, "data:text/html,<b>x</b>"],
                                                    ["Spaced", "https://a b.example/"]]}}
    return [
        PackageResult(name="spamcache", version=f"1.{k}", status="ok",
                      verdict="hazards" if k < 2 else "ready",
                      ft_wheels=("cp313t",) if k else (), declared=True, classifier=k > 0,
                      errors=6, warnings=5, stress="problems" if k == 2 else None,
                      summary="A spam cache with a C extension", report=report, seconds=1.5),
        PackageResult(name=HOSTILE_NAME, version=f"{SCRIPT}1.0", status="ok",
                      verdict=f"{SCRIPT}ready", ft_wheels=(f"cp313t{IMG}",),
                      platforms=(f"{SCRIPT}_x86_64",), stress=f"{IMG}clean", declared=None,
                      summary=HOSTILE_SUMMARY, report=hostile_report),
        PackageResult(name="gone", version=None, status="failed",
                      reason=f"The index answered 404 {SCRIPT}.", verdict="unknown"),
        PackageResult(name="garbled", version="0.1", status="ok", verdict="unknown",
                      report={"findings": "not a list of findings", "targets": [1, 2]}),
    ]


def fill(db: Database, report: dict[str, Any], n: int = GENERATED) -> None:
    for k in range(RUNS):
        run = db.start_run(index_url=INDEX, python=None if k < 2 else "/usr/bin/python3.14t",
                           options={"k": k})
        # Runs a month apart, so the chart has a time axis.
        db._conn.execute("UPDATE runs SET started = ? WHERE id = ?",
                         (f"2026-0{k + 1}-15T10:00:00+00:00", run))
        for r in [*generated_results(n, seed=k), *handmade(report, k)]:
            db.record(run, r)
        db.finish_run(run)


@pytest.fixture(scope="module")
def book() -> RuleBook:
    return load_rulebook()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, spamcache_report: dict[str, Any],
         book: RuleBook) -> Iterator[tuple[Path, Database]]:
    root = tmp_path_factory.mktemp("site")
    with Database.open(root / "results.db") as db:
        fill(db, spamcache_report)
        write_site(db, root / "out", book=book, now=NOW)
        yield root / "out", db


def page(site: tuple[Path, Database], name: str) -> Path:
    return site[0] / "packages" / f"{page_name(name)}.html"


# --- markup ---------------------------------------------------------------------------------

class _Refs(HTMLParser):
    """Every URL-bearing attribute, script, and srcdoc document of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[str, str, str]] = []
        self.srcdocs: list[str] = []
        self.csp: list[str] = []
        self.scripts_with_src = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        for key in ("href", "src", "xlink:href", "action", "poster", "data", "background"):
            if key in a:
                self.refs.append((tag, key, a[key]))
        if tag == "script" and "src" in a:
            self.scripts_with_src += 1
        if "srcdoc" in a:
            self.srcdocs.append(a["srcdoc"])
        if tag == "meta" and a.get("http-equiv", "").lower() == "content-security-policy":
            self.csp.append(a.get("content", ""))


def refs(html: str) -> _Refs:
    parser = _Refs()
    parser.feed(html)
    return parser


def check_self_contained(html: str, where: str) -> None:
    found = refs(html)
    assert found.csp and "default-src 'none'" in found.csp[0], where
    assert found.scripts_with_src == 0, where
    for tag, key, url in found.refs:
        if tag == "a" and key == "href":
            # Navigation only: http(s), a page of the site, or a fragment.
            assert url.startswith(("https://", "http://", "#", "../index.html",
                                   "packages/")) or re.fullmatch(r"[\w-]+\.html", url), \
                (where, url)
            assert safe_link(url) or not url.startswith(("http:", "https:")), (where, url)
        elif tag == "link":
            assert url.startswith("data:"), (where, url)  # the favicon
        else:
            # Inside inline SVG: references to its own elements only.
            assert url.startswith("#"), (where, tag, key, url)
    for doc in found.srcdocs:
        check_self_contained(doc, f"{where} (report)")


def test_every_page_is_written_with_a_safe_name(site: tuple[Path, Database]) -> None:
    out, db = site
    names = [r.name for r in db.latest()]
    assert len(names) == GENERATED + 4
    files = sorted(p.name for p in (out / "packages").iterdir())
    assert files == sorted(f"{page_name(n)}.html" for n in names)
    assert all(re.fullmatch(r"[a-z0-9-]+\.html|_[0-9a-f]{24}\.html", f) for f in files)
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "packages"]
    assert not list(out.rglob(".tmp-*"))


def test_site_info_lists_what_was_written(tmp_path: Path, site: tuple[Path, Database],
                                          book: RuleBook) -> None:
    _, db = site
    info = write_site(db, tmp_path / "again", book=book, now=NOW)
    assert info.packages == GENERATED + 4
    assert info.index == tmp_path / "again" / "index.html"
    assert len(info.files) == info.packages + 1
    for rel, size in info.files:
        assert (info.root / rel).stat().st_size == size
    assert info.total_bytes == sum(s for _, s in info.files)


def test_page_names_come_from_canonical_names_only() -> None:
    assert page_name("numpy") == "numpy"
    assert page_name("zope-interface") == "zope-interface"
    assert page_name("a") == "a"
    hostile = ["../../etc/passwd", "Numpy", "zope.interface", "a_b", "-lead", "trail-", "",
               "x" * 101, "con", "nul", "com1", "a/b", "a\\b", "a\x00b", ".", "..",
               HOSTILE_NAME, "日本"]
    pages = [page_name(n) for n in hostile]
    assert all(re.fullmatch(r"_[0-9a-f]{24}", p) for p in pages), pages
    assert len(set(pages)) == len(hostile)
    assert page_name("bad\udc80") == page_name("bad\udc80")  # encodable, stable


def test_only_http_urls_become_links() -> None:
    for good in ("https://example.org/", "http://127.0.0.1:8080/simple/",
                 "HTTPS://EXAMPLE.ORG/x?y=<z>"):
        assert safe_link(good) == good
    for bad in (JS_URL, " javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,x",
                "vbscript:x", "file:///etc/passwd", "//example.org/", "https:///nohost",
                "https://a b/", "https://example.org/\nx", "ftp://example.org/", None, 3,
                "https://" + "a" * 3000, "https://[::1"):
        assert safe_link(bad) == "", bad


def test_pages_load_nothing_from_the_network(site: tuple[Path, Database]) -> None:
    out, _ = site
    for path in [out / "index.html", *sorted((out / "packages").iterdir())]:
        check_self_contained(path.read_text(encoding="utf-8"), path.name)


def test_hostile_metadata_is_escaped(site: tuple[Path, Database]) -> None:
    out, _ = site
    index = (out / "index.html").read_text(encoding="utf-8")
    hostile = page(site, HOSTILE_NAME).read_text(encoding="utf-8")
    for html in (index, hostile):
        assert SCRIPT not in html and IMG not in html
        assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
        assert JS_URL not in re.findall(r'href="([^"]*)"', html)
        assert "javascript:" not in " ".join(re.findall(r'href="([^"]*)"', html)).lower()
        assert html.count("<script>") <= 1
    # The metadata's URLs are shown; only the https one is a link.
    assert 'href="https://example.org/src"' in hostile
    assert JS_URL in hostile and "data:text/html" in hostile
    assert 'href="https://a b.example/"' not in hostile
    # The page of the failed package says why.
    gone = page(site, "gone").read_text(encoding="utf-8")
    assert "The index answered 404 &lt;script&gt;" in gone
    assert "No report was recorded" in gone


def test_a_report_that_cannot_be_read_is_said(site: tuple[Path, Database]) -> None:
    html = page(site, "garbled").read_text(encoding="utf-8")
    assert "The stored report could not be read" in html
    assert "<iframe" not in html


def test_the_package_page_embeds_the_full_report(site: tuple[Path, Database]) -> None:
    html = page(site, "spamcache").read_text(encoding="utf-8")
    (doc,) = refs(html).srcdocs
    assert doc.startswith("<!DOCTYPE html>")
    assert "spamcache._spam" in doc and "PyList_GET_ITEM" in doc
    assert 'sandbox="allow-scripts' in html and "allow-same-origin" not in html
    assert html.count('<tr>') >= RUNS  # the history rows


def test_the_chart_is_inline_svg_without_external_references(site: tuple[Path,
                                                                          Database]) -> None:
    out, _ = site
    index = (out / "index.html").read_text(encoding="utf-8")
    svg = re.search(r"<svg\b.*?</svg>", index, re.S)
    assert svg is not None
    chart = svg.group()
    assert "<?xml" not in index and index.count("<!DOCTYPE") == 1
    assert "<metadata" not in chart and "<image" not in chart
    assert all(u.startswith("#") for u in re.findall(r'href="([^"]*)"', chart))
    assert re.findall(r"url\((?!#)", chart) == []
    assert "@import" not in chart and "<text" not in chart  # text drawn as paths, no fonts
    assert 'width="100%"' in chart and "viewBox" in chart


def test_trend_svg_edge_cases() -> None:
    assert trend_svg([]) == ""
    zero = dict.fromkeys(("ready", "declared", "hazards", "not ready", "no ft wheels",
                          "unknown"), 0)
    assert trend_svg([("2026-01-01T00:00:00+00:00", zero)]) == ""
    one = trend_svg([("2026-01-01T00:00:00+00:00", {**zero, "ready": 3, "unknown": 1}),
                     ("not a time", {**zero, "ready": 1})])
    assert one.startswith("<svg") and one.endswith("</svg>")
    assert one == trend_svg([("2026-01-01T00:00:00+00:00",
                              {**zero, "ready": 3, "unknown": 1})])  # deterministic


def test_output_is_deterministic(tmp_path: Path, site: tuple[Path, Database],
                                 book: RuleBook) -> None:
    out, db = site
    again = write_site(db, tmp_path / "b", book=book, now=NOW)
    for rel, _ in again.files:
        assert (out / rel).read_bytes() == (again.root / rel).read_bytes(), rel


def test_an_empty_database_makes_an_empty_site(tmp_path: Path, book: RuleBook) -> None:
    with Database.open(tmp_path / "e.db") as db:
        info = write_site(db, tmp_path / "out", book=book, now=NOW)
    html = info.index.read_text(encoding="utf-8")
    assert info.packages == 0 and len(info.files) == 1
    assert "No results yet" in html and "No run has recorded results yet" in html
    assert "<svg" not in html


def test_an_unusable_output_directory_is_an_error(tmp_path: Path, book: RuleBook) -> None:
    (tmp_path / "file").write_text("x")
    with Database.open(tmp_path / "e.db") as db, pytest.raises(SiteError, match="cannot"):
        write_site(db, tmp_path / "file", book=book, now=NOW)


def test_site_size_per_thousand_generated_packages(tmp_path: Path, book: RuleBook) -> None:
    with Database.open(tmp_path / "k.db") as db:
        run = db.start_run(index_url=INDEX, python=None, options={})
        for r in generated_results(1000):
            db.record(run, r)
        db.finish_run(run)
        info = write_site(db, tmp_path / "out", book=book, now=NOW)
    index = info.index.stat().st_size
    print(f"\nsite: {info.total_bytes:,} bytes per 1,000 packages (index.html {index:,}, "
          f"{(info.total_bytes - index) / 1000:,.0f} bytes a package page)")
    assert info.packages == 1000 and 100_000 < index < info.total_bytes


# --- in a real browser ----------------------------------------------------------------------



def _open(driver: Any, path: Path) -> None:
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(path.resolve().as_uri())


def _rows(driver: Any) -> list[Any]:
    return driver.find_elements("css selector", "#overview tbody tr")


def _visible(driver: Any) -> list[str]:
    return [r.get_attribute("data-verdict") for r in _rows(driver) if r.is_displayed()]


def _column(driver: Any, col: int) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#overview tbody tr'))"
        ".map(r => r.cells[arguments[0]].getAttribute('data-v'))", col)


def test_pages_load_without_errors_or_requests(browser: Any,
                                               site: tuple[Path, Database]) -> None:
    out, _ = site
    for path in (out / "index.html", page(site, "spamcache"), page(site, HOSTILE_NAME),
                 page(site, "gone"), page(site, "garbled")):
        _open(browser, path)
        severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == [], (path.name, severe)
        resources = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        assert resources == [], (path.name, resources)
        assert browser.execute_script("return document.readyState") == "complete"
        assert browser.execute_script("return typeof window.__pwned") == "undefined"


def test_clicking_a_header_sorts_the_rows(browser: Any, site: tuple[Path, Database]) -> None:
    out, db = site
    _open(browser, out / "index.html")
    names = _column(browser, 0)
    assert names == sorted(names)  # as written: by name
    errors_header = browser.find_element("css selector", "#overview thead th:nth-child(5)")
    errors_header.find_element("css selector", "button.sort").click()
    errors = [int(v) for v in _column(browser, 4)]
    assert errors == sorted(errors, reverse=True) and errors != sorted(errors)
    assert errors_header.get_attribute("aria-sort") == "descending"
    errors_header.find_element("css selector", "button.sort").click()
    assert [int(v) for v in _column(browser, 4)] == sorted(errors)
    assert errors_header.get_attribute("aria-sort") == "ascending"
    # The verdict column sorts by the order of the verdicts, not alphabetically.
    browser.find_element("css selector", "#overview thead th:nth-child(8) button").click()
    ranks = [int(v) for v in _column(browser, 7)]
    assert ranks == sorted(ranks, reverse=True)
    # Text sorts naturally; rows move whole (the name still links to its own page).
    browser.find_element("css selector", "#overview thead th:nth-child(1) button").click()
    assert _column(browser, 0) == sorted(names, key=str.lower)
    first = _rows(browser)[0]
    link = first.find_element("css selector", "th a").get_attribute("href")
    assert link.endswith(f"packages/{page_name(_column(browser, 0)[0])}.html")
    assert len(_rows(browser)) == len(db.latest())


def test_the_verdict_filter_and_the_search_hide_rows(browser: Any,
                                                     site: tuple[Path, Database]) -> None:
    from selenium.webdriver.support.select import Select  # noqa: PLC0415

    out, db = site
    latest = db.latest()
    _open(browser, out / "index.html")
    assert browser.find_element("id", "filters").is_displayed()
    assert len(_visible(browser)) == len(latest)

    Select(browser.find_element("id", "f-verdict")).select_by_value("ready")
    expected = sum(r.verdict == "ready" for r in latest)
    assert _visible(browser) == ["ready"] * expected and 0 < expected < len(latest)
    assert browser.find_element("id", "f-shown").text == f"Showing {expected} of {len(latest)}"

    search = browser.find_element("id", "f-search")
    search.send_keys("spamcache")
    assert len(_visible(browser)) == 1  # spamcache is "ready" in the newest run
    Select(browser.find_element("id", "f-verdict")).select_by_value("hazards")
    assert _visible(browser) == []
    assert browser.find_element("id", "f-none").is_displayed()

    browser.find_element("id", "f-reset").click()
    assert len(_visible(browser)) == len(latest)
    assert not browser.find_element("id", "f-none").is_displayed()

    # Searching finds the hostile summary's text, as text.
    search.send_keys("__pwned=2")
    assert len(_visible(browser)) == 1
    browser.find_element("id", "f-reset").click()
    # A verdict tile sets the filter.
    browser.find_element("css selector", '.tile[data-verdict="unknown"]').click()
    unknown = sum(r.verdict not in ("ready", "declared", "hazards", "not ready",
                                    "no ft wheels") for r in latest)
    assert _visible(browser) == ["unknown"] * unknown


def test_a_package_page_shows_its_history_and_report(browser: Any,
                                                     site: tuple[Path, Database]) -> None:
    out, _ = site
    _open(browser, out / "index.html")
    browser.find_element("css selector", 'a[href="packages/spamcache.html"]').click()
    assert browser.current_url.endswith("/packages/spamcache.html")
    history = browser.find_elements("css selector", "table.history tbody tr")
    assert len(history) == RUNS
    assert [r.find_element("css selector", "td.ver").text for r in history] == [
        "1.2", "1.1", "1.0"]  # newest first
    assert "problems" in history[0].text and "ready" in history[0].text
    assert browser.find_element("css selector", "h1").text.startswith("spamcache")
    frame = browser.find_element("css selector", "iframe.report-frame")
    assert frame.size["height"] >= 400
    browser.switch_to.frame(frame)
    try:
        text = browser.execute_script("return document.body.textContent")
        assert "spamcache._spam" in text and "PyList_GET_ITEM" in text
        # The report's own script runs inside the sandbox: its filters are shown.
        assert browser.find_element("id", "filters").is_displayed()
    finally:
        browser.switch_to.default_content()
    browser.find_element("css selector", ".crumbs a").click()
    assert browser.current_url.endswith("/index.html")


def test_hostile_metadata_is_shown_as_text(browser: Any, site: tuple[Path, Database]) -> None:
    out, _ = site
    for path in (out / "index.html", page(site, HOSTILE_NAME)):
        _open(browser, path)
        assert browser.execute_script("return typeof window.__pwned") == "undefined"
        assert browser.execute_script("return document.images.length") == 0
        text = browser.execute_script("return document.body.textContent")
        for needle in (HOSTILE_NAME, SCRIPT, IMG, RTL, NON_ASCII, LONG, HOSTILE_SUMMARY):
            assert needle in text, (path.name, needle[:60])
        hrefs = browser.execute_script(
            "return Array.from(document.links).map(a => a.getAttribute('href'))")
        assert all(not h.lower().startswith(("javascript:", "data:")) for h in hrefs), hrefs
    # The package page: the metadata's URLs as text, the https one as a link.
    links = browser.execute_script(
        "return Array.from(document.querySelectorAll('.links a')).map(a => a.href)")
    assert links == ["https://example.org/src"]  # no index link: the name is not canonical
    assert JS_URL in browser.execute_script("return document.body.textContent")
    frame = browser.find_element("css selector", "iframe.report-frame")
    browser.switch_to.frame(frame)
    try:
        assert browser.execute_script("return typeof window.__pwned") == "undefined"
        assert HOSTILE_SUMMARY in browser.execute_script("return document.body.textContent")
    finally:
        browser.switch_to.default_content()


def test_the_chart_is_inline_in_the_page(browser: Any, site: tuple[Path, Database]) -> None:
    out, _ = site
    _open(browser, out / "index.html")
    chart = browser.find_element("css selector", "#trend figure svg")
    assert chart.is_displayed() and chart.size["width"] > 700 and chart.size["height"] > 150
    external = browser.execute_script(
        "return Array.from(document.querySelectorAll('svg *')).flatMap(e => "
        "['href', 'xlink:href', 'src'].map(a => e.getAttribute(a)))"
        ".filter(v => v && !v.startsWith('#'))")
    assert external == []
    assert browser.execute_script("return document.querySelectorAll('svg image').length") == 0
    # Three series: one line per verdict, each with a point per run.
    paths = browser.execute_script(
        "return document.querySelectorAll('#trend svg g[id^=\"line2d\"] path').length")
    assert paths >= 3


def test_nothing_overflows_at_1366x768(browser: Any, site: tuple[Path, Database]) -> None:
    out, _ = site
    browser.set_window_size(1366, 768)
    for path in (out / "index.html", page(site, "spamcache"), page(site, HOSTILE_NAME)):
        _open(browser, path)
        width = browser.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1] + 1, (path.name, width)
    # The overview table fits its panel: no sideways scrolling for ordinary data.
    _open(browser, out / "index.html")
    browser.execute_script(
        "document.querySelectorAll('#overview tbody tr').forEach(r => {"
        " if (r.textContent.indexOf('__pwned') !== -1) r.remove(); })")
    wrap = browser.execute_script(
        "var w = document.querySelector('#packages .table-wrap');"
        "return [w.scrollWidth, w.clientWidth]")
    assert wrap[0] <= wrap[1] + 1, wrap


def test_without_javascript_every_row_is_visible(browser: Any,
                                                 site: tuple[Path, Database]) -> None:
    out, db = site
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        _open(browser, out / "index.html")
        assert len(_visible(browser)) == len(db.latest())
        assert not browser.find_element("id", "filters").is_displayed()
        assert browser.find_element("css selector", "#trend svg").is_displayed()
    finally:
        browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})


def test_screenshots(browser: Any, site: tuple[Path, Database],
                     tmp_path: Path) -> None:
    out, _ = site
    # GILAUDIT_SCREENSHOTS=DIR keeps them for a human to look at.
    keep = os.environ.get("GILAUDIT_SCREENSHOTS")
    folder = Path(keep) if keep else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    browser.set_window_size(1366, 768)
    for name, path in (("dashboard-index", out / "index.html"),
                       ("dashboard-package", page(site, "spamcache"))):
        _open(browser, path)
        png = folder / f"{name}-1366x768.png"
        assert browser.save_screenshot(str(png))
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
        width = int.from_bytes(data[16:20], "big")
        assert width >= 1000
