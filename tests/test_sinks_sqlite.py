"""SQLite inspection log: WAL, round trip, query helpers used by `history` and the dashboard."""

import dataclasses
import sqlite3
import time

import pytest

from edge_runtime.sinks import Record, SqliteLog, parse_since


def _rec(frame_id, verdict, **kw):
    return Record(source="cam", frame_id=frame_id, verdict=verdict, **kw)


@pytest.fixture
def log(tmp_path):
    with SqliteLog(tmp_path / "log.db") as log:
        yield log


def test_a_log_written_by_the_first_schema_gains_the_new_columns_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript("""CREATE TABLE inspections (
        id INTEGER PRIMARY KEY AUTOINCREMENT, recorded_at REAL NOT NULL, captured_at REAL, source TEXT NOT NULL,
        frame_id TEXT NOT NULL, verdict TEXT NOT NULL, score REAL, warn_threshold REAL, defect_threshold REAL,
        defect_class TEXT, confidence REAL, latency_ms REAL, profile TEXT, model_sha256 TEXT, error TEXT,
        overlay_path TEXT);
        INSERT INTO inspections (recorded_at, source, frame_id, verdict, score) VALUES (1.0, 'cam', 'old', 'ok', 0.1);""")
    old.commit()
    old.close()
    with SqliteLog(path) as log:
        log.write([_rec("new", "warn", score=0.4, frame_term=0.3)])
        rows = {row["frame_id"]: row for row in log.rows()}
        assert rows["old"]["score"] == 0.1 and rows["old"]["frame_term"] is None
        assert rows["new"]["frame_term"] == 0.3
        assert log.integrity_check() == "ok"
    with SqliteLog(path) as again:  # opening twice adds nothing twice
        assert again.count() == 2


def _read_only(monkeypatch):
    """Every connection opened read-only, as on a read-only copy or mount (chmod does not stop root)."""
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda path, **kw: connect(f"file:{path}?mode=ro", uri=True, **kw))


def test_a_read_only_log_opens_and_one_an_older_version_wrote_says_it_needs_a_writable_copy(tmp_path, monkeypatch):
    """Reading an archived log needs no write, unless it must first gain this version's tables: then the message
    says so, not that a healthy file is damaged, and the file is left as it was."""
    from edge_runtime.sinks.sqlite_log import InspectionLogError

    current = tmp_path / "current.db"
    with SqliteLog(current) as log:
        log.write([_rec("f1", "ok", score=0.1)])
    old = tmp_path / "old.db"
    with SqliteLog(old) as log:
        log.write([_rec("f1", "ok", score=0.1)])
        log._conn.execute("DROP TABLE runs")  # as a log of the version before the runs table
    before = old.read_bytes()
    _read_only(monkeypatch)
    with SqliteLog(current) as log:
        assert log.count() == 1
    with pytest.raises(InspectionLogError, match="written by an older version .* read-only .* writable copy") as error:
        SqliteLog(old)
    assert "damaged" not in str(error.value) and old.read_bytes() == before


def test_wal_mode_and_integrity(log, tmp_path):
    assert log.pragma("journal_mode") == "wal"
    assert log.pragma("journal_size_limit") == str(64 * 1024 * 1024)  # a big prune's WAL does not stay large
    assert log.integrity_check() == "ok"
    other = sqlite3.connect(tmp_path / "log.db")
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent in the file
    other.close()


def test_round_trip_all_columns(log):
    sha = {"autoencoder": "a" * 64, "classifier": "b" * 64}
    log.write([_rec("f1", "defect", captured_at=1.5, score=0.7, warn_threshold=0.3, defect_threshold=0.5,
                    defect_class="scratch", confidence=0.93, latency_ms=12.5, profile="neu-steel",
                    model_sha256=sha, overlay_path="/o/f1.png", frame_term=0.25)])
    (row,) = log.rows()
    assert row["frame_term"] == 0.25
    assert row["frame_id"] == "f1" and row["verdict"] == "defect" and row["source"] == "cam"
    assert row["score"] == 0.7 and row["warn_threshold"] == 0.3 and row["defect_threshold"] == 0.5
    assert row["defect_class"] == "scratch" and row["confidence"] == 0.93 and row["latency_ms"] == 12.5
    assert row["model_sha256"] == sha and row["overlay_path"] == "/o/f1.png" and row["captured_at"] == 1.5
    assert row["error"] is None and row["profile"] == "neu-steel"


def test_counts_and_last_rejects(log):
    log.write([_rec("1", "ok"), _rec("2", "defect", defect_class="pits"), _rec("3", "warn", defect_class="pits"),
               _rec("4", "defect", defect_class="scratch"), _rec("5", "error", error="bad bytes"),
               _rec("6", "dropped")])
    assert log.counts_by_verdict() == {"ok": 1, "defect": 2, "warn": 1, "error": 1, "dropped": 1}
    assert log.counts_by_class() == {"pits": 2, "scratch": 1}
    assert [r["frame_id"] for r in log.last_rejects(5)] == ["4", "2"]
    assert [r["frame_id"] for r in log.last_rejects(1)] == ["4"]
    assert log.count() == 6


def test_since_filters_on_record_time(log):
    now = time.time()
    log.write([_rec("old", "defect", recorded_at=now - 7200), _rec("new", "defect", recorded_at=now - 60)])
    assert log.counts_by_verdict(since="1h") == {"defect": 1}
    assert [r["frame_id"] for r in log.rows(since=now - 3600)] == ["new"]
    assert log.count() == 2


def test_processed_ids_ignore_dropped_and_other_sources(log):
    log.write([_rec("a", "ok"), _rec("b", "error"), _rec("c", "dropped"),
               Record(source="other", frame_id="d", verdict="ok")])
    assert log.processed_ids("cam") == {"a", "b"}


def test_write_is_one_transaction(log):
    bad = dataclasses.replace(_rec("x", "ok"), score=object())  # not storable -> the whole batch fails
    with pytest.raises(Exception):
        log.write([_rec("fine", "ok"), bad])
    assert log.count() == 0


def test_missing_log_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no inspection log"):
        SqliteLog(tmp_path / "nope.db", create=False)
    assert not (tmp_path / "nope.db").exists()


def test_parse_since():
    assert parse_since("30m", now=10_000.0) == 10_000.0 - 1800
    assert parse_since("2d", now=200_000.0) == 200_000.0 - 172_800
    assert parse_since("1700000000") == 1_700_000_000.0
    assert parse_since(None) is None
    assert parse_since("2024-05-01T08:00") > 1.7e9
    with pytest.raises(ValueError, match="cannot read time"):
        parse_since("yesterday")


def test_errors_by_cause_groups_on_the_exception_type_that_opens_the_text(log):
    log.write([
        Record("camera:0", "1", "error", error="FrameQualityError: noise frame: neighbouring pixels correlate 0.01"),
        Record("camera:0", "2", "error", error="FrameQualityError: dark frame: mean grey 0.01"),
        Record("camera:0", "-", "source_error", error="CameraUnavailableError: camera 0 is frozen: ..."),
        Record("folder", "x.png", "error", error="/data/in/x.png: cannot read file (Permission denied)"),
        Record("folder", "y.png", "error", error="unreadable inspection result: ValueError: bad"),
        Record("camera:0", "3", "defect", score=3.0, error="reject hook failed: ejector exited with status 1"),
        Record("camera:0", "4", "ok", score=1.0),
        Record("camera:0", "5", "dropped"),  # the inspection did not keep up: never inspected either
    ])
    assert log.errors_by_cause() == {"FrameQualityError": 2, "other": 2, "CameraUnavailableError": 1, "dropped": 1}
    assert log.errors_by_cause(since=time.time() + 3600) == {}


def test_times_for_people_name_their_zone_and_audit_stamps_carry_their_offset(monkeypatch):
    """The hour repeated at the end of summer time reads as two moments, and an auditor elsewhere knows which."""
    import re

    from edge_runtime.timestamps import audit_stamp, local_time

    monkeypatch.setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3")  # Berlin's rule spelt out: no time-zone files needed
    time.tzset()
    try:
        summer = 1792888200  # 2026-10-25 00:30 UTC, 02:30 summer time
        assert local_time(summer) == "2026-10-25 02:30 CEST"
        assert local_time(summer + 3600) == "2026-10-25 02:30 CET"
        assert local_time(summer, seconds=True) == "2026-10-25 02:30:00 CEST"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[12]:00", audit_stamp())
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
