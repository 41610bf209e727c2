"""The dashboard's results database: SQLite, one row per package, version and run.

One connection per ``Database`` (autocommit; every write is its own short transaction), WAL
mode so the site can be built while a run writes, foreign keys on. Each recorded row is
committed at once, so a run that is killed loses nothing it already recorded and can resume.

The schema is versioned: ``MIGRATIONS`` is a list of (version, SQL) applied in order, each in
its own transaction, and ``PRAGMA user_version`` says which ones a file has.
"""

from __future__ import annotations

import json
import re
import sqlite3
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from gilaudit.dashboard.model import DASHBOARD_VERDICTS, PackageResult
from gilaudit.errors import GilauditError

__all__ = ["MIGRATIONS", "Database", "DatabaseError", "DatabaseTooNewError",
           "NotADatabaseError", "RunInfo"]

Migration = tuple[int, str]

MIGRATIONS: list[Migration] = [
    (1, """
    CREATE TABLE runs (
        id        INTEGER PRIMARY KEY,
        started   TEXT NOT NULL,              -- ISO 8601 UTC
        finished  TEXT,
        status    TEXT NOT NULL,              -- running | finished | anything the caller says
        index_url TEXT NOT NULL,
        python    TEXT,                       -- the stress interpreter; NULL: static only
        options   TEXT NOT NULL DEFAULT '{}'  -- JSON
    );
    CREATE TABLE results (
        id         INTEGER PRIMARY KEY,
        run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        name       TEXT NOT NULL,             -- canonical
        version    TEXT,                      -- NULL: no release found
        status     TEXT NOT NULL,             -- ok | failed | skipped
        reason     TEXT NOT NULL DEFAULT '',
        verdict    TEXT NOT NULL,
        ft_wheels  TEXT NOT NULL DEFAULT '[]',  -- JSON list
        abi3       INTEGER NOT NULL DEFAULT 0,
        platforms  TEXT NOT NULL DEFAULT '[]',  -- JSON list
        declared   INTEGER,                   -- NULL: nothing says
        classifier INTEGER NOT NULL DEFAULT 0,
        errors     INTEGER NOT NULL DEFAULT 0,
        warnings   INTEGER NOT NULL DEFAULT 0,
        info       INTEGER NOT NULL DEFAULT 0,
        stress     TEXT,
        summary    TEXT NOT NULL DEFAULT '',
        report     BLOB,                      -- zlib-compressed JSON report
        seconds    REAL NOT NULL DEFAULT 0,
        recorded   TEXT NOT NULL
    );
    -- One row per (run, package, version); NULL versions are one version too.
    CREATE UNIQUE INDEX results_row ON results(run_id, name, ifnull(version, ''));
    """),
    (2, """
    -- A row copied from an earlier run points at the row that holds the report, instead of
    -- storing the same report again.
    ALTER TABLE results ADD COLUMN reused_from INTEGER REFERENCES results(id);
    CREATE INDEX results_by_name ON results(name, run_id);
    CREATE INDEX results_by_version ON results(name, version, status);
    CREATE INDEX runs_by_key ON runs(index_url, python, status);
    """),
]

# Never set lower: a connection waits this long for another writer instead of failing.
_BUSY_TIMEOUT_MS = 30_000
_SURROGATE = re.compile("[\ud800-\udfff]")


class DatabaseError(GilauditError):
    """The results database cannot be used; the message says why in one sentence."""

    exit_code = 2


class DatabaseTooNewError(DatabaseError):
    """The file was written by a newer gilaudit (a schema this code does not know)."""


class NotADatabaseError(DatabaseError):
    """The file exists but is not an SQLite database."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RunInfo:
    id: int
    started: str
    finished: str | None
    status: str
    index_url: str
    python: str | None
    options: dict[str, Any] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _text(value: str) -> str:
    # SQLite stores UTF-8; a lone surrogate (from a badly decoded file name or metadata)
    # cannot be encoded and would make the whole row fail, so it becomes U+FFFD.
    return _SURROGATE.sub("\ufffd", value)


def _opt_text(value: str | None) -> str | None:
    return None if value is None else _text(value)


def _json_list(values: Sequence[str]) -> str:
    # ensure_ascii: surrogates survive as escapes, so lists round-trip exactly.
    return json.dumps(list(values))


def _pack(report: dict[str, Any] | None) -> bytes | None:
    if report is None:
        return None
    raw = json.dumps(report, separators=(",", ":"), default=str).encode("ascii")
    return zlib.compress(raw, 6)


def _unpack(blob: bytes | None) -> dict[str, Any] | None:
    if blob is None:
        return None
    try:
        data = json.loads(zlib.decompress(blob))
    except (zlib.error, ValueError):
        return None  # a damaged report: the row still counts, the page says "no report"
    return data if isinstance(data, dict) else None


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (executescript would commit the open transaction).
    sqlite3.complete_statement knows comments and strings, so a ';' inside them is kept."""
    out: list[str] = []
    pending = ""
    for piece in sql.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            code = [ln for ln in pending.splitlines() if not ln.strip().startswith("--")]
            if "".join(code).strip(" \t;"):
                out.append(pending)
            pending = ""
    return out


def _options(text: str) -> dict[str, Any]:
    try:
        options = json.loads(text)
    except ValueError:
        return {}
    return options if isinstance(options, dict) else {}


_RESULT_COLUMNS = ("name, version, status, reason, verdict, ft_wheels, abi3, platforms, "
                   "declared, classifier, errors, warnings, info, stress, summary, seconds")


def _row_values(result: PackageResult) -> tuple[Any, ...]:
    return (_text(result.name), _opt_text(result.version), _text(result.status),
            _text(result.reason), _text(result.verdict), _json_list(result.ft_wheels),
            int(result.abi3), _json_list(result.platforms),
            None if result.declared is None else int(result.declared), int(result.classifier),
            int(result.errors), int(result.warnings), int(result.info),
            _opt_text(result.stress), _text(result.summary), float(result.seconds))


def _result(row: sqlite3.Row, report: dict[str, Any] | None) -> PackageResult:
    declared = row["declared"]
    return PackageResult(
        name=row["name"], version=row["version"], status=row["status"], reason=row["reason"],
        verdict=row["verdict"], ft_wheels=tuple(json.loads(row["ft_wheels"])),
        abi3=bool(row["abi3"]), platforms=tuple(json.loads(row["platforms"])),
        declared=None if declared is None else bool(declared),
        classifier=bool(row["classifier"]), errors=row["errors"], warnings=row["warnings"],
        info=row["info"], stress=row["stress"], summary=row["summary"], report=report,
        seconds=row["seconds"])


def _run(row: sqlite3.Row) -> RunInfo:
    return RunInfo(id=row["id"], started=row["started"], finished=row["finished"],
                   status=row["status"], index_url=row["index_url"], python=row["python"],
                   options=_options(row["options"]))


# The report of a row: its own, or the one of the row it was copied from.
_REPORT = "coalesce(r.report, src.report)"
_FROM = "results r LEFT JOIN results src ON src.id = r.reused_from"


class Database:
    """The results of dashboard runs. Open with ``Database.open(path)``; use as a context
    manager (closing commits nothing: every write is committed when it is made)."""

    SCHEMA_VERSION: int = MIGRATIONS[-1][0]

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    # --- opening ----------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | str, *, migrations: Sequence[Migration] = MIGRATIONS
             ) -> Database:
        """Open (creating and migrating as needed) the database at ``path``."""
        path = Path(path)
        if path.is_dir():
            raise DatabaseError(f"{path} is a directory, not a results database file.")
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot open the results database {path}: {exc}.") from exc
        conn.row_factory = sqlite3.Row
        try:
            _configure(conn, path)
            _migrate(conn, path, migrations)
        except BaseException:
            conn.close()
            raise
        return cls(conn, path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def version(self) -> int:
        """The schema version of the open file."""
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # --- runs -------------------------------------------------------------------------------

    def start_run(self, *, index_url: str, python: str | None, options: dict[str, Any]) -> int:
        """A new run (status "running"); returns its id."""
        cur = self._conn.execute(
            "INSERT INTO runs (started, status, index_url, python, options) "
            "VALUES (?, 'running', ?, ?, ?)",
            (_now(), _text(index_url), _opt_text(python),
             json.dumps(options, sort_keys=True, default=str)))
        return int(cur.lastrowid or 0)

    def unfinished_run(self, *, index_url: str, python: str | None) -> int | None:
        """The newest run still "running" against the same index and interpreter: resume it."""
        row = self._conn.execute(
            "SELECT id FROM runs WHERE status = 'running' AND index_url = ? AND python IS ? "
            "ORDER BY started DESC, id DESC LIMIT 1",
            (_text(index_url), _opt_text(python))).fetchone()
        return None if row is None else int(row["id"])

    def finish_run(self, run_id: int, status: str = "finished") -> None:
        cur = self._conn.execute("UPDATE runs SET status = ?, finished = ? WHERE id = ?",
                                 (_text(status), _now(), run_id))
        if cur.rowcount == 0:
            raise DatabaseError(f"there is no run {run_id} in {self.path}.")

    def runs(self) -> list[RunInfo]:
        """Every run, oldest first."""
        rows = self._conn.execute("SELECT * FROM runs ORDER BY started, id").fetchall()
        return [_run(r) for r in rows]

    def run(self, run_id: int) -> RunInfo | None:
        row = self._conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else _run(row)

    # --- results ----------------------------------------------------------------------------

    def done(self, run_id: int) -> set[str]:
        """The packages already recorded in this run (a resumed run skips them)."""
        rows = self._conn.execute("SELECT DISTINCT name FROM results WHERE run_id = ?",
                                  (run_id,))
        return {r["name"] for r in rows}

    def analysed(self, name: str, version: str, python: str | None) -> bool:
        """This version already has an "ok" result from a run with the same interpreter."""
        return self._source(name, version, python) is not None

    def record(self, run_id: int, result: PackageResult) -> None:
        """Record one result, replacing the run's row for the same package and version.
        Committed before returning."""
        values = (*_row_values(result), _pack(result.report), _now())
        key = (run_id, _text(result.name), _opt_text(result.version) or "")
        with self._transaction():
            cur = self._conn.execute(
                f"UPDATE results SET ({_RESULT_COLUMNS}, report, recorded, reused_from) = "
                f"({', '.join('?' * 18)}, NULL) "
                "WHERE run_id = ? AND name = ? AND ifnull(version, '') = ?", (*values, *key))
            if cur.rowcount == 0:
                self._conn.execute(
                    f"INSERT INTO results (run_id, {_RESULT_COLUMNS}, report, recorded) "
                    f"VALUES (?, {', '.join('?' * 18)})", (run_id, *values))

    def record_reused(self, run_id: int, name: str, version: str, python: str | None) -> bool:
        """Copy the newest "ok" result of this version (same interpreter) into the run,
        pointing at the stored report; False when there is none to reuse."""
        with self._transaction():
            present = self._conn.execute(
                "SELECT 1 FROM results WHERE run_id = ? AND name = ? AND ifnull(version, '') = ?",
                (run_id, _text(name), _text(version))).fetchone()
            if present is not None:
                return True  # already in this run (a resumed run): nothing to copy
            source = self._source(name, version, python, excluding=run_id)
            if source is None:
                return False
            root, report_holder = source
            self._conn.execute(
                f"INSERT INTO results (run_id, {_RESULT_COLUMNS}, report, recorded, "
                f"reused_from) SELECT ?, {_RESULT_COLUMNS}, NULL, ?, ? FROM results "
                "WHERE id = ?", (run_id, _now(), report_holder, root))
        return True

    def _source(self, name: str, version: str, python: str | None,
                excluding: int | None = None) -> tuple[int, int] | None:
        """(row id, id of the row holding its report) of the newest reusable result."""
        row = self._conn.execute(
            "SELECT r.id, coalesce(r.reused_from, r.id) AS holder FROM results r "
            "JOIN runs ON runs.id = r.run_id "
            "WHERE r.name = ? AND r.version = ? AND r.status = 'ok' AND runs.python IS ? "
            "AND r.run_id IS NOT ? ORDER BY runs.started DESC, r.id DESC LIMIT 1",
            (_text(name), _text(version), _opt_text(python), excluding)).fetchone()
        return None if row is None else (int(row["id"]), int(row["holder"]))

    def latest(self, *, with_reports: bool = False) -> list[PackageResult]:
        """The newest result of every package (newest run, then newest row), by name."""
        report = _REPORT if with_reports else "NULL"
        rows = self._conn.execute(
            f"SELECT * FROM (SELECT r.*, {report} AS full_report, row_number() OVER ("
            "  PARTITION BY r.name ORDER BY runs.started DESC, runs.id DESC, r.id DESC) AS n "
            f"  FROM {_FROM} JOIN runs ON runs.id = r.run_id) WHERE n = 1 ORDER BY name")
        return [_result(r, _unpack(r["full_report"])) for r in rows]

    def report(self, name: str) -> dict[str, Any] | None:
        """The full report of the package's newest result (None when it has none)."""
        row = self._conn.execute(
            f"SELECT {_REPORT} AS full_report FROM {_FROM} JOIN runs ON runs.id = r.run_id "
            "WHERE r.name = ? ORDER BY runs.started DESC, runs.id DESC, r.id DESC LIMIT 1",
            (_text(name),)).fetchone()
        return None if row is None else _unpack(row["full_report"])

    def history(self, name: str, *, with_reports: bool = False
                ) -> list[tuple[RunInfo, PackageResult]]:
        """Every run's row for the package, oldest first."""
        report = _REPORT if with_reports else "NULL"
        rows = self._conn.execute(
            f"SELECT r.*, {report} AS full_report, runs.id AS run_key, runs.started AS "
            "run_started, runs.finished AS run_finished, runs.status AS run_status, "
            "runs.index_url AS run_index, runs.python AS run_python, runs.options AS "
            f"run_options FROM {_FROM} JOIN runs ON runs.id = r.run_id WHERE r.name = ? "
            "ORDER BY runs.started, runs.id, r.id", (_text(name),)).fetchall()
        out = []
        for r in rows:
            run = RunInfo(id=r["run_key"], started=r["run_started"],
                          finished=r["run_finished"], status=r["run_status"],
                          index_url=r["run_index"], python=r["run_python"],
                          options=_options(r["run_options"]))
            out.append((run, _result(r, _unpack(r["full_report"]))))
        return out

    def trend(self) -> list[tuple[str, dict[str, int]]]:
        """Per finished or running run with results, oldest first: (started, verdict counts).
        A verdict outside DASHBOARD_VERDICTS counts as "unknown"."""
        rows = self._conn.execute(
            "SELECT runs.id, runs.started, r.verdict, count(*) AS n FROM runs "
            "JOIN results r ON r.run_id = runs.id "
            "WHERE runs.status IN ('finished', 'running') "
            "GROUP BY runs.id, r.verdict ORDER BY runs.started, runs.id").fetchall()
        out: list[tuple[str, dict[str, int]]] = []
        last: int | None = None
        for row in rows:
            if row["id"] != last:
                out.append((row["started"], dict.fromkeys(DASHBOARD_VERDICTS, 0)))
                last = row["id"]
            verdict = row["verdict"] if row["verdict"] in DASHBOARD_VERDICTS else "unknown"
            out[-1][1][verdict] += row["n"]
        return out

    # --- internals --------------------------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (the connection is in
    autocommit mode, so nothing else opens transactions behind our back)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is None:
            self._conn.execute("COMMIT")
        else:
            self._conn.execute("ROLLBACK")


def _configure(conn: sqlite3.Connection, path: Path) -> None:
    try:
        # The first read of the file: a non-SQLite file fails here.
        conn.execute("PRAGMA schema_version").fetchone()
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL").fetchone()
        # In WAL mode NORMAL survives a killed process (only a power loss can drop the last
        # commits, never corrupt the file); FULL would fsync on every recorded package.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc) or "malformed" in str(exc):
            raise NotADatabaseError(
                f"{path} is not an SQLite database (is it the right file?).") from exc
        raise DatabaseError(f"cannot use the results database {path}: {exc}.") from exc


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _too_new(path: Path, current: int, known: int) -> DatabaseTooNewError:
    return DatabaseTooNewError(
        f"{path} has schema version {current}, newer than the {known} this gilaudit knows: "
        "upgrade gilaudit to use it.")


def _migrate(conn: sqlite3.Connection, path: Path, migrations: Sequence[Migration]) -> None:
    known = max((v for v, _ in migrations), default=0)
    current = _user_version(conn)
    if current > known:
        raise _too_new(path, current, known)
    for version, sql in sorted(migrations, key=lambda m: m[0]):
        if version <= current:
            continue
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot migrate the results database {path}: {exc}.") from exc
        try:
            # Read again inside the transaction: another process may have migrated meanwhile.
            current = _user_version(conn)
            if version > current:
                for statement in _statements(sql):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {int(version)}")
                current = version
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise DatabaseError(f"cannot migrate the results database {path} to version "
                                f"{version}: {exc}.") from exc
        except BaseException:
            conn.execute("ROLLBACK")
            raise
