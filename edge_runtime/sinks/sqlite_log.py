"""Durable inspection log: stdlib sqlite3 in WAL mode, one row per frame.

Writes are batched into one transaction per call, so a crash (even SIGKILL) loses at
most the batch being written and never corrupts the file. ``synchronous=FULL`` (the
default) also survives a power cut; ``NORMAL`` is faster and still crash-safe.
The query helpers are shared by the ``history`` command and the dashboard.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..drift import MEASURES
from .record import DROPPED, ERROR, INSPECTED, REJECT_HOOK_FAILED, SOURCE_ERROR, Record
from .reviews import Review

COLUMNS = (
    "recorded_at", "captured_at", "source", "frame_id", "verdict", "score", "warn_threshold",
    "defect_threshold", "defect_class", "confidence", "latency_ms", "profile", "model_sha256",
    "error", "overlay_path", "frame_term", "neighbour_correlation", "mean_grey", "frame_path",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inspections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_at REAL NOT NULL,      -- unix time the record was written
    captured_at REAL,               -- unix time the frame was captured
    source TEXT NOT NULL,
    frame_id TEXT NOT NULL,
    verdict TEXT NOT NULL,          -- ok | warn | defect | error | dropped | source_error
    score REAL,
    warn_threshold REAL,
    defect_threshold REAL,
    defect_class TEXT,
    confidence REAL,
    latency_ms REAL,
    profile TEXT,
    model_sha256 TEXT,              -- JSON {"autoencoder": ..., "classifier": ...}
    error TEXT,
    overlay_path TEXT,
    frame_term REAL,                -- the frame-level autoencoder's share of score (NULL: none)
    neighbour_correlation REAL,     -- how smooth the picture was: focus, noise (edge_runtime.drift)
    mean_grey REAL,                 -- how bright the picture was, [0, 1]: the lamp (edge_runtime.drift)
    frame_path TEXT                 -- the frame as captured, PNG (watch --save-frames), for review and retraining
);
CREATE INDEX IF NOT EXISTS inspections_frame ON inspections (source, frame_id);
CREATE INDEX IF NOT EXISTS inspections_time ON inspections (recorded_at);
CREATE INDEX IF NOT EXISTS inspections_verdict ON inspections (verdict, recorded_at);
CREATE TABLE IF NOT EXISTS reviews (    -- operators' readings of inspected records (sinks.reviews), append-only
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    inspection_id INTEGER NOT NULL REFERENCES inspections (id) ON DELETE CASCADE,
    reviewed_at REAL NOT NULL,
    reviewer TEXT NOT NULL,
    shows TEXT NOT NULL CHECK (shows IN ('defect', 'good')),
    defect_class TEXT,              -- the class the reviewer names (NULL: none named)
    note TEXT
);
CREATE INDEX IF NOT EXISTS reviews_inspection ON reviews (inspection_id, id);
CREATE TABLE IF NOT EXISTS runs (       -- each capture loop's start and stop (watch, the dashboard's Live line)
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at REAL NOT NULL,
    stopped_at REAL,                    -- NULL: still running, or the process was killed
    source TEXT NOT NULL,
    settings TEXT NOT NULL,             -- JSON: software, manifest and its sha256, profile, precision, thresholds,
                                        -- model files, self-test, options: what judged the run's frames
    summary TEXT                        -- JSON: the loop's counts when it stopped
);
"""

# Columns added after the first schema: (name, type). A log written by an older version gets them
# on opening (NULL in its old rows), so one file keeps its history across updates.
_ADDED_COLUMNS = (("frame_term", "REAL"), ("neighbour_correlation", "REAL"), ("mean_grey", "REAL"),
                  ("frame_path", "TEXT"))
# Per-frame measurements the drift checks read back (``SqliteLog.recent_values``).
DRIFT_COLUMNS = tuple(measure.column for measure in MEASURES)

# Rows deleted per transaction by ``SqliteLog.prune`` (about 60 ms each on the project machine).
PRUNE_BATCH = 10_000
_NO_ID = 2**63 - 1  # above every record id: no record was written at or after a prune's cut
_CLOCKS_APART_S = 60.0  # two processes writing one log stamp records a few ms out of order; a clock set back, more

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(value: str | float | None, now: float | None = None) -> float | None:
    """'90s' / '30m' / '12h' / '7d' (ago), an ISO date/time, or unix seconds -> unix seconds."""
    if value is None or isinstance(value, (int, float)):
        return value
    text = value.strip()
    match = _RELATIVE.match(text)
    if match:
        return (time.time() if now is None else now) - float(match[1]) * _UNIT_S[match[2]]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(f"cannot read time '{value}': use e.g. 30m, 12h, 7d, 2024-05-01 or 2024-05-01T08:00") from None


@dataclass(frozen=True)
class PruneResult:
    """What ``SqliteLog.prune`` deleted: records, records kept for files still in a watched folder, and the
    overlay and saved frame files the deleted records pointed at."""

    deleted: int
    kept_in_folder: int
    overlay_paths: tuple[str, ...]
    frame_paths: tuple[str, ...] = ()
    reviews: int = 0  # operator reviews of the deleted records, deleted with them
    kept_out_of_order: int = 0  # stamped before the cut but logged after a newer record: the clock was set back


class InspectionLogError(sqlite3.DatabaseError):
    """The inspection log cannot be opened: not an SQLite file, damaged, a folder, or a path that cannot be
    created. The message names the file and the cause."""


class SqliteLog:
    """Thread-safe (one connection behind a lock) inspection log; also a loop sink."""

    def __init__(self, path: str | Path, synchronous: str = "FULL", create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise FileNotFoundError(f"no inspection log at {self.path}")
        self._lock = threading.Lock()
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise InspectionLogError(f"cannot open the inspection log {self.path}: {exc}") from exc
        try:
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA journal_size_limit=67108864")  # a big prune's WAL shrinks back to 64 MB
            self._conn.execute(f"PRAGMA synchronous={synchronous}")
            self._conn.execute("PRAGMA foreign_keys=ON")  # a pruned record takes its reviews with it
            with self._conn:
                self._conn.executescript(_SCHEMA)
                self._add_missing_columns()
        except sqlite3.Error as exc:
            self._conn.close()
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_READONLY:
                raise InspectionLogError(
                    f"cannot open the inspection log {self.path}: it was written by an older version and needs the "
                    f"tables or columns this one added, but it is read-only ({exc}); open a writable copy of it, or "
                    "make it writable") from exc
            raise InspectionLogError(f"cannot open the inspection log {self.path}: {exc} (damaged, or not an "
                                     "inspection log?)") from exc

    def _add_missing_columns(self) -> None:
        present = {row["name"] for row in self._conn.execute("PRAGMA table_info(inspections)")}
        for name, kind in _ADDED_COLUMNS:
            if name not in present:
                self._conn.execute(f"ALTER TABLE inspections ADD COLUMN {name} {kind}")

    # -- writing -------------------------------------------------------------------
    def write(self, records: Sequence[Record]) -> None:
        """Append records in one transaction (all or none)."""
        rows = [_row(record) for record in records]
        placeholders = ", ".join("?" for _ in COLUMNS)
        with self._lock, self._conn:
            self._conn.executemany(
                f"INSERT INTO inspections ({', '.join(COLUMNS)}) VALUES ({placeholders})", rows
            )

    def add_review(self, review: Review) -> int:
        """Append an operator's review of an inspected record; returns the review's id. A record that
        does not exist, or whose frame was never inspected (error, dropped, source error), is refused."""
        with self._lock, self._conn:
            found = self._conn.execute("SELECT verdict FROM inspections WHERE id = ?", (review.inspection_id,)).fetchone()
            if found is None:
                raise ValueError(f"no record {review.inspection_id} in {self.path}")
            if found[0] not in INSPECTED:
                raise ValueError(f"record {review.inspection_id} is '{found[0]}': no frame was inspected, so there is "
                                 "no verdict to review")
            cursor = self._conn.execute(
                "INSERT INTO reviews (inspection_id, reviewed_at, reviewer, shows, defect_class, note) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (review.inspection_id, review.reviewed_at, review.reviewer.strip(), review.shows,
                 review.defect_class or None, review.note or None))
            return int(cursor.lastrowid)

    def prune(self, before: float, dry_run: bool = False, batch: int = PRUNE_BATCH,
              after_batch: Callable[[int], None] | None = None, now: float | None = None) -> PruneResult:
        """Delete the records written before ``before`` (unix seconds), ``batch`` rows per transaction.

        The first prune of a log kept for months deletes millions of rows (about 6 s per million on
        the project machine); as one transaction it would hold the write lock long enough for a capture
        loop writing to the same file to fail its inserts (30 s busy timeout) and lose their records,
        and it would grow the WAL by the whole deletion. Between batches the lock is free;
        ``after_batch`` is called with the rows deleted so far after each commit.

        The record of a file still in its watched folder (source = the folder, frame id = the path in
        it, as ``FolderWatcher`` names them) is kept: the watcher skips the files the log holds, so
        deleting it would inspect the file again. Returns the counts and the overlay files of the
        deleted records (the caller decides about those files).

        Only records logged before the first one written at or after ``before`` go: the log's order is the
        order things happened, its clock times are only the PC's clock. A clock set back (NTP correcting a
        clock that ran ahead, a wrong date put right) stamps new records with old times; they are kept and
        counted (``kept_out_of_order``), never taken for old records. Records stamped ahead of ``now`` (default: this
        PC's clock; written while it ran ahead) do not set the cut: one of them would hold every later prune off."""
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        kept = self._mark_kept_in_folder(before)
        ahead = (time.time() if now is None else now) + _CLOCKS_APART_S
        cut = self._query("SELECT MIN(id) FROM inspections WHERE recorded_at >= ? AND recorded_at <= ?",
                          (before, ahead))[0][0]
        cut = _NO_ID if cut is None else cut
        out_of_order = self._query("SELECT COUNT(*) FROM inspections WHERE recorded_at < ? AND id > ?",
                                   (before - _CLOCKS_APART_S, cut))[0][0]
        where = "WHERE recorded_at < ? AND id < ? AND id NOT IN (SELECT id FROM kept_ids)"
        reviews = self._query(f"SELECT COUNT(*) FROM reviews WHERE inspection_id IN (SELECT id FROM inspections {where})",
                              (before, cut))[0][0]
        if dry_run:
            rows = self._query(f"SELECT overlay_path, frame_path FROM inspections {where}", (before, cut))
            return PruneResult(len(rows), kept, *_files(rows), reviews, out_of_order)
        deleted, files = 0, []
        while True:
            with self._lock, self._conn:
                rows = self._conn.execute(f"DELETE FROM inspections WHERE id IN (SELECT id FROM inspections {where} "
                                          "LIMIT ?) RETURNING overlay_path, frame_path", (before, cut, batch)).fetchall()
            deleted += len(rows)
            files.extend(rows)
            if rows and after_batch is not None:
                after_batch(deleted)
            if len(rows) < batch:
                return PruneResult(deleted, kept, *_files(files), reviews, out_of_order)

    def _mark_kept_in_folder(self, before: float) -> int:
        """Fill the connection's temporary ``kept_ids`` with the old records of files still in their watched
        folder; returns their count."""
        with self._lock, self._conn:
            sources = [row[0] for row in self._conn.execute(
                "SELECT DISTINCT source FROM inspections WHERE recorded_at < ?", (before,))]
            kept_ids = [row[0] for source in sources if Path(source).is_dir() for row in self._conn.execute(
                "SELECT id, frame_id FROM inspections WHERE recorded_at < ? AND source = ?", (before, source))
                if (Path(source) / row[1]).exists()]
            self._conn.execute("CREATE TEMP TABLE IF NOT EXISTS kept_ids (id INTEGER PRIMARY KEY)")
            self._conn.execute("DELETE FROM kept_ids")
            self._conn.executemany("INSERT INTO kept_ids VALUES (?)", ((i,) for i in kept_ids))
        return len(kept_ids)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "SqliteLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries -------------------------------------------------------------------
    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    def pragma(self, name: str) -> str:
        return str(self._query(f"PRAGMA {name}")[0][0])

    def integrity_check(self) -> str:
        return self.pragma("integrity_check")

    def count(self, since: str | float | None = None) -> int:
        where, params = _since_clause(since)
        return int(self._query(f"SELECT COUNT(*) FROM inspections {where}", params)[0][0])

    def processed_ids(self, source: str) -> set[str]:
        """Frame ids of ``source`` that were inspected or errored (dropped frames do not count)."""
        rows = self._query(
            "SELECT DISTINCT frame_id FROM inspections WHERE source = ? AND verdict != ?", (source, DROPPED)
        )
        return {row[0] for row in rows}

    def profile_of(self, record_id: int) -> str | None:
        """The model profile record ``record_id`` was inspected with (None: no such record, or none logged)."""
        rows = self._query("SELECT profile FROM inspections WHERE id = ?", (record_id,))
        return rows[0][0] if rows else None

    def profiles(self, since: str | float | None = None) -> list[str]:
        """The model profiles whose frames the log holds (since ``since``)."""
        where, params = _since_clause(since, "profile IS NOT NULL")
        return sorted(row[0] for row in self._query(f"SELECT DISTINCT profile FROM inspections {where}", params))

    def window_profiles(self, since: str | float | None = None) -> list[str]:
        """The profiles of the frames since ``since``; in a quiet window, those the line ran before it (the
        profile a drift check of the window is for)."""
        return self.profiles(since) or self.profiles()

    def counts_by_verdict(self, since: str | float | None = None) -> dict[str, int]:
        where, params = _since_clause(since)
        rows = self._query(f"SELECT verdict, COUNT(*) FROM inspections {where} GROUP BY verdict", params)
        return {row[0]: int(row[1]) for row in rows}

    def start_run(self, source: str, settings: Mapping[str, Any]) -> int:
        """Note a capture loop's start and the settings it judges with; returns the run's id (``end_run``)."""
        with self._lock, self._conn:
            return int(self._conn.execute("INSERT INTO runs (started_at, source, settings) VALUES (?, ?, ?)",
                                          (time.time(), source, json.dumps(settings, sort_keys=True, default=str))
                                          ).lastrowid)

    def end_run(self, run_id: int, summary: Mapping[str, Any]) -> None:
        with self._lock, self._conn:
            self._conn.execute("UPDATE runs SET stopped_at = ?, summary = ? WHERE id = ?",
                               (time.time(), json.dumps(summary, sort_keys=True, default=str), run_id))

    def runs(self, since: str | float | None = None) -> list[dict[str, Any]]:
        """The capture loops started since ``since``, newest first, their settings and summary decoded."""
        where, params = _since_clause(since, column="started_at")
        rows = self._query(f"SELECT * FROM runs {where} ORDER BY id DESC", params)
        return [{**dict(row), "settings": json.loads(row["settings"]),
                 "summary": json.loads(row["summary"]) if row["summary"] else None} for row in rows]

    def judged_by(self, since: str | float | None = None) -> list[dict[str, Any]]:
        """The settings that judged the window's inspected frames, oldest first: per profile, thresholds and
        model files, the frames per verdict and the first and last time. More than one means the counts mix
        verdicts given at different thresholds or by different models."""
        where, params = _since_clause(since, "warn_threshold IS NOT NULL")
        rows = self._query(
            "SELECT profile, warn_threshold, defect_threshold, model_sha256, verdict, COUNT(*) AS frames, "
            f"MIN(recorded_at) AS first, MAX(recorded_at) AS last FROM inspections {where} "
            "GROUP BY profile, warn_threshold, defect_threshold, model_sha256, verdict", params)
        sets: dict[tuple, dict[str, Any]] = {}
        for row in rows:
            key = (row["profile"], row["warn_threshold"], row["defect_threshold"], row["model_sha256"])
            judged = sets.setdefault(key, {"profile": row["profile"], "warn": row["warn_threshold"],
                                           "defect": row["defect_threshold"],
                                           "model_sha256": json.loads(row["model_sha256"]) if row["model_sha256"] else None,
                                           "verdicts": {}, "first": row["first"], "last": row["last"]})
            judged["verdicts"][row["verdict"]] = int(row["frames"])
            judged["first"], judged["last"] = min(judged["first"], row["first"]), max(judged["last"], row["last"])
        return sorted(sets.values(), key=lambda judged: judged["first"])

    def counts_by_class(self, since: str | float | None = None) -> dict[str, int]:
        """Classified frames (warn/defect with a class) per defect class."""
        where, params = _since_clause(since, "defect_class IS NOT NULL")
        rows = self._query(
            f"SELECT defect_class, COUNT(*) FROM inspections {where} GROUP BY defect_class ORDER BY 2 DESC", params
        )
        return {row[0]: int(row[1]) for row in rows}

    def unfired_rejects(self, since: str | float | None = None) -> int:
        """Records whose reject hook failed (``REJECT_HOOK_FAILED`` in their error): flagged, maybe still on the line."""
        where, params = _since_clause(since, "error LIKE ?")
        return int(self._query(f"SELECT COUNT(*) FROM inspections {where}", [*params, f"%{REJECT_HOOK_FAILED}%"])[0][0])

    def errors_by_cause(self, since: str | float | None = None) -> dict[str, int]:
        """Frames that were not inspected and source outages, per cause: the exception type that opens
        their error text ("FrameQualityError: noise frame: ..."), "dropped" for frames dropped from a full
        queue (the inspection did not keep up), "other" where none says. Most first."""
        where, params = _since_clause(since, "verdict IN (?, ?, ?)")
        cause = (f"CASE WHEN verdict = '{DROPPED}' THEN '{DROPPED}' "
                 "WHEN instr(error, ':') > 5 AND substr(error, instr(error, ':') - 5, 5) = 'Error' "
                 "AND instr(substr(error, 1, instr(error, ':') - 1), ' ') = 0 "
                 "THEN substr(error, 1, instr(error, ':') - 1) ELSE 'other' END")
        rows = self._query(f"SELECT {cause} AS cause, COUNT(*) FROM inspections {where} GROUP BY cause "
                           "ORDER BY 2 DESC, 1", [*params, ERROR, SOURCE_ERROR, DROPPED])
        return {row[0]: int(row[1]) for row in rows}

    def last_rejects(self, limit: int = 10, since: str | float | None = None) -> list[dict[str, Any]]:
        return self.rows(since=since, verdicts=("defect",), limit=limit)

    def rows(self, since: str | float | None = None, verdicts: Sequence[str] | None = None,
             limit: int | None = None, newest_first: bool = True) -> list[dict[str, Any]]:
        """Rows as plain dicts (``model_sha256`` decoded), newest first by default."""
        extra = f"verdict IN ({', '.join('?' for _ in verdicts)})" if verdicts else None
        where, params = _since_clause(since, extra)
        params = [*params, *(verdicts or ())]
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT * FROM inspections {where} ORDER BY id {order}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [_as_dict(row) for row in self._query(sql, params)]

    def recent_values(self, column: str, limit: int, since: str | float | None = None, profile: str | None = None,
                      verdicts: Sequence[str] = INSPECTED) -> list[float]:
        """``column`` (one of ``DRIFT_COLUMNS``) of the newest ``limit`` frames with one of ``verdicts`` that
        have it (of ``profile``, where given), newest first."""
        if column not in DRIFT_COLUMNS:
            raise ValueError(f"no per-frame measurement {column!r} in the log; expected one of {DRIFT_COLUMNS}")
        extra = f"verdict IN ({', '.join('?' for _ in verdicts)}) AND {column} IS NOT NULL"
        extra += " AND profile = ?" if profile else ""
        where, params = _since_clause(since, extra)
        params = [*params, *verdicts, *([profile] if profile else []), int(limit)]
        return [float(row[0]) for row in self._query(
            f"SELECT {column} FROM inspections {where} ORDER BY id DESC LIMIT ?", params)]

    def stamped_ahead(self, now: float | None = None, slack_s: float = _CLOCKS_APART_S) -> dict[str, Any]:
        """Records stamped later than ``now`` (plus ``slack_s``): written while this PC's clock was ahead. Every
        ``since`` window and a prune read them as new until real time passes them. {"records": n, "latest": t}."""
        row = self._query("SELECT COUNT(*), MAX(recorded_at) FROM inspections WHERE recorded_at > ?",
                          ((time.time() if now is None else now) + slack_s,))[0]
        return {"records": int(row[0]), "latest": row[1]}

    def newest_record(self, profile: str | None = None) -> dict[str, Any] | None:
        """The last record written (of ``profile``, where given), by log order, not by its clock time."""
        where, params = ("WHERE profile = ?", [profile]) if profile else ("", [])
        rows = self._query(f"SELECT * FROM inspections {where} ORDER BY id DESC LIMIT 1", params)
        return dict(rows[0]) if rows else None

    def latest_reviews(self, since: str | float | None = None, record: int | None = None) -> list[dict[str, Any]]:
        """The newest review of each reviewed record (of records written since ``since``; of the one record
        ``record`` where given), with the record's verdict and class: inspection_id, source, frame_id,
        frame_path, verdict, predicted_class, shows, reviewed_class, reviewer, reviewed_at, note, reviews (how
        many the record has). Newest record first."""
        where, params = _since_clause(since, None if record is None else "i.id = ?", column="i.recorded_at")
        params += [] if record is None else [record]
        rows = self._query(
            "SELECT i.id AS inspection_id, i.source, i.frame_id, i.frame_path, i.verdict, i.defect_class AS predicted_class, "
            "r.shows, r.defect_class AS reviewed_class, r.reviewer, r.reviewed_at, r.note, "
            "(SELECT COUNT(*) FROM reviews WHERE inspection_id = i.id) AS reviews "
            "FROM reviews r JOIN inspections i ON i.id = r.inspection_id "
            "AND r.id = (SELECT MAX(id) FROM reviews WHERE inspection_id = i.id) "
            f"{where} ORDER BY i.id DESC", params)
        return [dict(row) for row in rows]


    def all_reviews(self, since: str | float | None = None) -> list[dict[str, Any]]:
        """Every review of the records written since ``since``, with the record's verdict and class: the newest
        record first, its reviews oldest first (the last is the one ``latest_reviews`` counts)."""
        where, params = _since_clause(since, column="i.recorded_at")
        rows = self._query(
            "SELECT r.id AS review_id, i.id AS inspection_id, i.source, i.frame_id, i.frame_path, i.verdict, "
            "i.defect_class AS predicted_class, r.shows, r.defect_class AS reviewed_class, r.reviewer, r.reviewed_at, "
            f"r.note FROM reviews r JOIN inspections i ON i.id = r.inspection_id {where} ORDER BY i.id DESC, r.id",
            params)
        return [dict(row) for row in rows]


def _since_clause(since: str | float | None, extra: str | None = None,
                  column: str = "recorded_at") -> tuple[str, list[Any]]:
    clauses, params = [], []
    start = parse_since(since)
    if start is not None:
        clauses.append(f"{column} >= ?")
        params.append(start)
    if extra:
        clauses.append(extra)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _files(rows: Sequence[Sequence[Any]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(overlay paths, frame paths) of (overlay_path, frame_path) rows, the missing ones left out."""
    return tuple(r[0] for r in rows if r[0] is not None), tuple(r[1] for r in rows if r[1] is not None)


def _row(record: Record) -> tuple[Any, ...]:
    data = record.to_dict()
    data["model_sha256"] = json.dumps(data["model_sha256"], sort_keys=True) if data["model_sha256"] else None
    return tuple(data[column] for column in COLUMNS)


def _as_dict(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    if data.get("model_sha256"):
        data["model_sha256"] = json.loads(data["model_sha256"])
    return data
