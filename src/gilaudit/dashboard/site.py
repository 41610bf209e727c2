"""The dashboard's static site: an overview page with the trend chart and a sortable,
filterable table, and one page per package with its history and its full gilaudit report.

Every page is self-contained (inline CSS, JS and SVG; a Content-Security-Policy that allows no
network load), rendered by Jinja2 with autoescaping: package metadata is hostile input and is
only ever shown as text. Package pages are named from canonical names only; anything else
gets a name derived from its hash, so a name never chooses a path.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from markupsafe import Markup

from gilaudit.dashboard.db import Database, RunInfo
from gilaudit.dashboard.model import DASHBOARD_VERDICTS, PackageResult
from gilaudit.errors import GilauditError
from gilaudit.report.html_report import clean, render_html, template_environment
from gilaudit.report.merge import finalise, report_from_dict
from gilaudit.rulebook import RuleBook, load_rulebook

__all__ = ["SiteError", "SiteInfo", "page_name", "safe_link", "trend_svg", "write_site"]

_CANONICAL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?")
# Device names Windows will not create a file for, whatever the extension.
_RESERVED = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                       *(f"lpt{i}" for i in range(10))})
_VERDICT_CLASS = {"ready": "ok", "declared": "info", "hazards": "warning",
                  "not ready": "error", "no ft wheels": "nowheels", "unknown": "neutral"}
_VERDICT_RANK = {v: i for i, v in enumerate(DASHBOARD_VERDICTS)}
_STRESS_CLASS = {"clean": "ok", "problems": "error", "not exercised": "neutral",
                 "could not run": "violet"}
_STATUS_CLASS = {"ok": "ok", "failed": "error", "skipped": "neutral"}
# The trend chart's series, with the colours of their badges.
_SERIES = (("ready", "#30a46c"), ("declared", "#3e8bdc"), ("hazards", "#f0a400"))
_LABELLED_RUNS = 6  # up to this many runs, each gets its own date label on the chart


class SiteError(GilauditError):
    """The site cannot be written (the output directory is not usable)."""

    exit_code = 2


@dataclass(frozen=True, kw_only=True, slots=True)
class SiteInfo:
    """What write_site wrote: paths relative to ``root`` (POSIX style) and their sizes."""

    root: Path
    files: tuple[tuple[str, int], ...]
    packages: int

    @property
    def index(self) -> Path:
        return self.root / "index.html"

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)


# --- names and links ------------------------------------------------------------------------

def page_name(name: str) -> str:
    """The file stem of a package's page: the canonical name itself when it is one
    ([a-z0-9-], at most 100 characters, not a Windows device name), else a hash of it."""
    if _CANONICAL.fullmatch(name) and name not in _RESERVED:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return f"_{digest}"  # '_' is never in a canonical name: no collision with a real one


def safe_link(url: object) -> str:
    """The URL when it is an absolute http(s) URL a browser will read as such; else ""."""
    if not isinstance(url, str) or len(url) > 2048:
        return ""
    if any(ch.isspace() or ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in url):
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return ""
    return url


# --- the trend chart ------------------------------------------------------------------------

def _parse_time(stamp: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.astimezone(timezone.utc) if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _shares(trend: list[tuple[str, dict[str, int]]]
            ) -> list[tuple[datetime, int, dict[str, float]]]:
    out = []
    for stamp, counts in trend:
        when = _parse_time(stamp)
        total = sum(counts.values())
        if when is None or total == 0:
            continue
        out.append((when, total, {v: 100.0 * counts.get(v, 0) / total for v in DASHBOARD_VERDICTS}))
    return out


_SVG_PROLOG = re.compile(r"\A\s*(?:<\?xml[^>]*\?>\s*)?(?:<!DOCTYPE[^>]*>\s*)?", re.S)
_SVG_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_SVG_SIZE = re.compile(r'(<svg\b[^>]*?)\s+width="[^"]*"\s+height="[^"]*"')


def trend_svg(trend: list[tuple[str, dict[str, int]]]) -> str:
    """The share of ready / declared / hazards packages per run, as an SVG element to inline
    ("" when no run has results). Text is drawn as paths: no font is loaded."""
    points = _shares(trend)
    if not points:
        return ""
    # Imported here: matplotlib takes a while to import and only this needs it. Figure and
    # the SVG canvas directly, not pyplot: no global figure state, no GUI backend chosen.
    import matplotlib as mpl  # noqa: PLC0415
    import matplotlib.dates as mdates  # noqa: PLC0415
    from matplotlib.backends.backend_svg import FigureCanvasSVG  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415
    from matplotlib.ticker import PercentFormatter  # noqa: PLC0415

    # Days since matplotlib's epoch, for its date axis (its date helpers carry no types).
    days = [float(mdates.date2num(t.replace(tzinfo=None)))  # type: ignore[no-untyped-call]
            for t, _, _ in points]
    with mpl.rc_context({"svg.fonttype": "path", "svg.hashsalt": "gilaudit-dashboard",
                         "font.size": 9, "axes.edgecolor": "#a0a8b5",
                         "xtick.color": "#5b6576", "ytick.color": "#5b6576",
                         "axes.labelcolor": "#5b6576"}):
        fig = Figure(figsize=(8.4, 2.5), dpi=96)
        FigureCanvasSVG(fig)
        ax = fig.add_subplot()
        for verdict, colour in _SERIES:
            ax.plot(days, [s[verdict] for _, _, s in points], marker="o", markersize=4,
                    linewidth=2, color=colour, label=verdict)
        # From 0, up to a round value above the highest share: low shares stay readable.
        top = max(s[v] for _, _, s in points for v, _ in _SERIES)
        ax.set_ylim(0, min(100, max(10, 10 * math.ceil(top * 1.15 / 10))))
        ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
        ax.xaxis_date()
        if len(set(days)) <= _LABELLED_RUNS:
            # A few runs: a labelled tick on each, so every point reads as a date.
            ax.set_xticks(sorted(set(days)))
            same_day = len({math.floor(d) for d in days}) < len(set(days))
            ax.xaxis.set_major_formatter(mdates.DateFormatter(  # type: ignore[no-untyped-call]
                "%Y-%m-%d\n%H:%M" if same_day else "%Y-%m-%d"))
        else:
            locator = mdates.AutoDateLocator(maxticks=8)  # type: ignore[no-untyped-call]
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(
                mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        if len(set(days)) == 1:  # one run: a point in the middle of a day
            ax.set_xlim(days[0] - 0.5, days[0] + 0.5)
        ax.grid(True, axis="y", color="#dfe3ea", linewidth=0.8)
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=len(_SERIES), frameon=False,
                  borderaxespad=0.3, handlelength=1.6)
        # Room for the legend above and the dates below the axis (two lines at most).
        fig.subplots_adjust(left=0.065, right=0.975, top=0.86, bottom=0.16)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None}, transparent=True)
    svg = _SVG_PROLOG.sub("", buffer.getvalue(), count=1)
    svg = _SVG_METADATA.sub("", svg, count=1)
    # Scale with the page: keep the viewBox, drop the fixed size in points.
    svg = _SVG_SIZE.sub(r'\1 width="100%" role="img" aria-labelledby="trend-caption"', svg,
                        count=1)
    return svg.strip()


# --- view models ----------------------------------------------------------------------------

def _when(stamp: str | None) -> dict[str, str]:
    raw = clean(stamp or "")
    when = _parse_time(raw) if raw else None
    if when is None:
        return {"iso": "", "text": raw or "\u2014", "date": raw or "\u2014"}
    return {"iso": raw, "text": when.strftime("%Y-%m-%d %H:%M UTC"),
            "date": when.strftime("%Y-%m-%d")}


def _declared(r: PackageResult) -> dict[str, str]:
    if r.classifier:
        return {"text": "yes", "how": "classifier", "cls": "ok", "sort": "2",
                "title": "has the Free Threading classifier"}
    if r.declared:
        return {"text": "yes", "how": "code", "cls": "ok", "sort": "1",
                "title": "declares support in its code (Py_mod_gil, Cython directive, ...)"}
    if r.declared is False:
        return {"text": "no", "how": "", "cls": "no", "sort": "0",
                "title": "declares no free-threading support"}
    return {"text": "\u2014", "how": "", "cls": "none", "sort": "-1", "title": "nothing says"}


def _stress(r: PackageResult) -> dict[str, str]:
    if r.stress is None:
        return {"text": "", "cls": ""}
    return {"text": r.stress, "cls": _STRESS_CLASS.get(r.stress, "neutral")}


def _verdict(r: PackageResult) -> dict[str, Any]:
    known = r.verdict if r.verdict in _VERDICT_RANK else "unknown"
    return {"text": r.verdict, "cls": _VERDICT_CLASS[known], "rank": _VERDICT_RANK[known],
            "key": known}


def _row(r: PackageResult) -> dict[str, Any]:
    return {
        "name": r.name,
        "page": f"packages/{page_name(r.name)}.html",
        "version": r.version or "",
        "status": r.status,
        "status_cls": _STATUS_CLASS.get(r.status, "neutral"),
        "reason": r.reason,
        "ft_wheels": list(r.ft_wheels),
        "abi3": r.abi3,
        "declared": _declared(r),
        "errors": r.errors,
        "warnings": r.warnings,
        "info": r.info,
        "stress": _stress(r),
        "verdict": _verdict(r),
        "summary": r.summary,
    }


def _interpreter(run: RunInfo | None) -> str:
    if run is None:
        return "\u2014"
    return run.python or "none (static analysis only)"


def _trend_rows(trend: list[tuple[str, dict[str, int]]]) -> list[dict[str, Any]]:
    rows = []
    for when, total, share in _shares(trend):
        rows.append({"when": when.strftime("%Y-%m-%d %H:%M UTC"), "total": total,
                     "shares": [(v, f"{share[v]:.1f}%") for v, _ in _SERIES]})
    return rows


def _index_context(results: list[PackageResult], runs: list[RunInfo],
                   trend: list[tuple[str, dict[str, int]]], title: str,
                   now: datetime) -> dict[str, Any]:
    latest_run = runs[-1] if runs else None
    counts = Counter(_verdict(r)["key"] for r in results)
    total = len(results)
    return {
        "title": title,
        "generated": _when(now.isoformat(timespec="seconds")),
        "total": total,
        "run": None if latest_run is None else {
            "started": _when(latest_run.started),
            "status": latest_run.status,
            "index_url": latest_run.index_url,
            "index_link": safe_link(latest_run.index_url),
            "interpreter": _interpreter(latest_run),
        },
        "runs": len(runs),
        "tiles": [{"verdict": v, "cls": _VERDICT_CLASS[v], "count": counts.get(v, 0),
                   "pct": f"{100 * counts.get(v, 0) / total:.0f}%" if total else "\u2014"}
                  for v in DASHBOARD_VERDICTS],
        "chart": Markup(trend_svg(trend)),  # matplotlib's SVG of our own numbers
        "trend": _trend_rows(trend),
        "series": [v for v, _ in _SERIES],
        "rows": [_row(r) for r in results],
    }


def _metadata_links(report: dict[str, Any] | None) -> list[dict[str, str]]:
    """Project URLs when the report carries the release's core metadata ("metadata", as
    ProjectMeta.to_dict()); each shown as text, a link only when it is http(s)."""
    meta = report.get("metadata") if isinstance(report, dict) else None
    if not isinstance(meta, dict):
        return []
    pairs: list[tuple[object, object]] = []
    if meta.get("home_page"):
        pairs.append(("Home page", meta["home_page"]))
    urls = meta.get("project_urls")
    if isinstance(urls, list):
        pairs.extend((p[0], p[1]) for p in urls if isinstance(p, (list, tuple)) and len(p) == 2)
    return [{"label": str(label), "url": str(url), "link": safe_link(url)}
            for label, url in pairs[:50]]


def _report_html(report: dict[str, Any] | None, book: RuleBook, now: datetime
                 ) -> tuple[str, str]:
    """(the report as a standalone HTML page, or "", why there is none)."""
    if report is None:
        return "", "No report was recorded for this result."
    try:
        parsed = finalise(report_from_dict(report), now=now)
        return render_html(parsed, book), ""
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return "", f"The stored report could not be read ({type(exc).__name__}: {exc})."


def _history_row(run: RunInfo, r: PackageResult) -> dict[str, Any]:
    row = _row(r)
    row.update(run=_when(run.started), run_status=run.status,
               interpreter=_interpreter(run))
    return row


def _package_context(result: PackageResult, report: dict[str, Any] | None,
                     history: list[tuple[RunInfo, PackageResult]], book: RuleBook,
                     title: str, now: datetime) -> dict[str, Any]:
    html, missing = _report_html(report, book, now)
    last_run = history[-1][0] if history else None
    index_page = ""
    if last_run is not None and page_name(result.name) == result.name:
        base = safe_link(last_run.index_url)
        if base:
            index_page = safe_link(base.rstrip("/") + "/" + quote(result.name) + "/")
    return {
        "title": title,
        "generated": _when(now.isoformat(timespec="seconds")),
        "r": _row(result),
        "platforms": list(result.platforms),
        "seconds": f"{result.seconds:.1f} s",
        "links": _metadata_links(report),
        "index_page": index_page,
        "interpreter": _interpreter(last_run),
        # Newest first: what changed lately is what people come for.
        "history": [_history_row(run, r) for run, r in reversed(history)],
        "report_html": html,
        "report_missing": missing,
    }


# --- rendering ------------------------------------------------------------------------------

def _write(path: Path, text: str) -> int:
    """Write atomically (a reader never sees half a page); returns the size in bytes."""
    data = text.encode("utf-8", "replace")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".html")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(data)


def _pages(db: Database, results: list[PackageResult], book: RuleBook, title: str,
           now: datetime) -> Iterator[tuple[str, str]]:
    template = template_environment("dashboard/templates").get_template("package.html.j2")
    for result in results:
        # One report in memory at a time: a site of thousands of packages stays small.
        context = _package_context(result, db.report(result.name), db.history(result.name),
                                   book, title, now)
        yield f"packages/{page_name(result.name)}.html", template.render(**context)


def write_site(db: Database, out_dir: Path, *, title: str = "Free-threading readiness",
               book: RuleBook | None = None, now: datetime | None = None) -> SiteInfo:
    """Write index.html and packages/<name>.html under ``out_dir`` from the database."""
    book = book if book is not None else load_rulebook()
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    results = db.latest()
    try:
        (out_dir / "packages").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SiteError(f"cannot create the site directory {out_dir}: {exc}.") from exc
    written: list[tuple[str, int]] = []
    try:
        index = template_environment("dashboard/templates").get_template("index.html.j2").render(
            **_index_context(results, db.runs(), db.trend(), title, now))
        written.append(("index.html", _write(out_dir / "index.html", index)))
        for rel, html in _pages(db, results, book, title, now):
            written.append((rel, _write(out_dir / rel, html)))
    except OSError as exc:
        raise SiteError(f"cannot write the site into {out_dir}: {exc}.") from exc
    return SiteInfo(root=out_dir, files=tuple(written), packages=len(results))
