"""Retention: old records and their overlays are deleted, nothing else is (``prune``, ``watch --retain``)."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from edge_runtime.capture import commands
from edge_runtime.capture.sources import FolderWatcher
from edge_runtime.sinks import Record, SqliteLog
from edge_runtime.sinks.retention import prune_log
from edge_runtime.sinks.reviews import Review

DAY = 86_400.0


@pytest.fixture
def cli(capture_cli):
    return capture_cli


def _log_with_old_and_new(tmp_path):
    """A log in tmp/log: 10 camera records 40 days old (4 rejects with overlays, one pointing outside
    the overlay folder, one whose file is gone), 5 from today, and 3 old records of a watched folder
    whose files are still in it (2) or gone (1)."""
    overlays, elsewhere, folder = tmp_path / "log" / "overlays", tmp_path / "elsewhere", tmp_path / "watched"
    for path in (overlays, elsewhere, folder):
        path.mkdir(parents=True)
    now = time.time()
    old = now - 40 * DAY
    records = []
    for i in range(10):
        overlay = None
        if i in (0, 1, 2):
            overlay = overlays / f"old{i}.png"
            overlay.write_bytes(b"png")
        if i == 3:
            overlay = elsewhere / "precious.png"
            overlay.write_bytes(b"keep me")
        if i == 4:
            overlay = overlays / "gone.png"
        frame = None
        if i in (0, 1):  # saved frames (watch --save-frames) go with their records
            frame = overlays / f"old{i}_frame.png"
            frame.write_bytes(b"png")
        if i == 3:
            frame = elsewhere / "precious_frame.png"
            frame.write_bytes(b"keep me")
        records.append(Record("camera:0", f"f{i}", "defect" if overlay else "ok", recorded_at=old + i,
                              overlay_path=str(overlay) if overlay else None, frame_path=str(frame) if frame else None))
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes(b"png")
    records += [Record(str(folder.resolve()), name, "ok", recorded_at=old + 10) for name in ("a.png", "b.png", "c.png")]
    (overlays / "new.png").write_bytes(b"png")
    records += [Record("camera:0", f"n{i}", "ok", recorded_at=now - 4 + i,
                       overlay_path=str(overlays / "new.png") if i == 0 else None) for i in range(5)]
    db = tmp_path / "log" / "inspections.db"
    with SqliteLog(db) as log:
        log.write(records)
        for record_id, reviewer in ((1, "anna"), (1, "ben"), (14, "anna")):  # two of old f0, one of new n0
            log.add_review(Review(record_id, "defect", reviewer))
    return db, overlays, elsewhere, folder


def test_prune_deletes_old_records_and_their_overlays_only(tmp_path):
    db, overlays, elsewhere, folder = _log_with_old_and_new(tmp_path)
    with SqliteLog(db) as log:
        dry = prune_log(log, "30d", [overlays], dry_run=True)
        assert (dry.deleted_records, dry.deleted_overlays, log.count()) == (11, 3, 18)  # nothing gone yet
        assert dry.deleted_reviews == 2 and len(log.all_reviews()) == 3
        assert all((overlays / f"old{i}.png").is_file() for i in range(3))
        report = prune_log(log, "30d", [overlays])
        assert report.to_dict() | {"before": 0} == {
            "before": 0, "deleted_records": 11, "kept_in_folder": 2, "deleted_overlays": 3, "overlays_outside": 1,
            "overlays_missing": 1, "dry_run": False, "deleted_frames": 2, "frames_outside": 1, "frames_missing": 0,
            "deleted_reviews": 2, "kept_out_of_order": 0}
        assert [row["inspection_id"] for row in log.all_reviews()] == [14]  # the new record's review stays
        assert "and 2 operator reviews" in report.line()
        assert log.count() == 7 and {r["frame_id"] for r in log.rows()} == {"n0", "n1", "n2", "n3", "n4", "a.png", "b.png"}
        # The watched folder's files still in it keep their records: the watcher does not inspect them again.
        assert set(FolderWatcher(folder, log.processed_ids(str(folder.resolve()))).seen) == {"a.png", "b.png"}
    assert not any((overlays / f"old{i}.png").exists() for i in range(3))
    assert not any((overlays / f"old{i}_frame.png").exists() for i in range(2))
    assert (overlays / "new.png").is_file() and (elsewhere / "precious.png").read_bytes() == b"keep me"
    assert (elsewhere / "precious_frame.png").read_bytes() == b"keep me"


def test_prune_frees_the_log_between_batches_for_other_writers(tmp_path):
    """A capture loop writing to the same file (another connection, here with no busy wait at all) can
    write between the prune's batches, and the batches together delete exactly what one would."""
    db, overlays, _, _ = _log_with_old_and_new(tmp_path)
    with SqliteLog(db) as log, sqlite3.connect(db, timeout=0) as other:
        written_between = []

        def other_writer(deleted_so_far: int) -> None:
            other.execute("INSERT INTO inspections (recorded_at, source, frame_id, verdict) VALUES (?, ?, ?, ?)",
                          (time.time(), "camera:1", f"w{deleted_so_far}", "ok"))
            other.commit()  # raises "database is locked" if the prune held the write lock
            written_between.append(deleted_so_far)

        pruned = log.prune(time.time() - 30 * DAY, batch=3, after_batch=other_writer)
        assert (pruned.deleted, pruned.kept_in_folder, len(pruned.overlay_paths)) == (11, 2, 5)
        assert written_between == [3, 6, 9, 11]
        assert log.count() == 7 + 4 and log.integrity_check() == "ok"
    with SqliteLog(db) as log, pytest.raises(ValueError, match="batch"):
        log.prune(0.0, batch=0)


def test_prune_command_reports_and_refuses_what_it_cannot_read(cli, tmp_path, capsys):
    db, overlays, _, _ = _log_with_old_and_new(tmp_path)
    assert cli("prune", "--db", str(db), "--older-than", "30d", "--overlays", str(overlays), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["deleted_records"] == 11 and report["deleted_overlays"] == 3
    assert cli("prune", "--db", str(db), "--older-than", "30d") == 0  # the log's folder by default: nothing left
    assert "deleted 0 records" in capsys.readouterr().out
    assert cli("prune", "--db", str(db), "--older-than", "someday") == commands.EXIT_USAGE
    assert "cannot read time" in capsys.readouterr().err
    assert cli("prune", "--db", str(tmp_path / "none.db"), "--older-than", "1d") == commands.EXIT_USAGE


def test_watch_retain_prunes_while_it_logs(cli, tmp_path, capsys):
    db, overlays, _, _ = _log_with_old_and_new(tmp_path)
    assert cli("watch", "synthetic:0.2", "--log", str(db), "--max-frames", "20", "--retain", "30d",
               "--save-overlays", str(overlays), "--skip-selftest") == 0
    assert "[watch] retention: deleted 11 records" in capsys.readouterr().err
    with SqliteLog(db, create=False) as log:
        assert log.count() == 7 + 20
    assert not (overlays / "old0.png").exists()
    assert cli("watch", "synthetic:0.2", "--log", str(db), "--max-frames", "1", "--retain", "soon") == commands.EXIT_USAGE


def test_a_clock_set_back_does_not_make_new_records_look_old_to_a_prune(tmp_path):
    """NTP putting right a clock that ran a year ahead: the records after it carry times a year before the ones
    logged minutes earlier. The log's order says which came last, so a prune keeps them, and says why."""
    now = time.time()
    truly_old = [Record("camera:0", f"o{i}", "ok", recorded_at=now - 400 * DAY + i) for i in range(3)]
    ahead = [Record("camera:0", f"a{i}", "ok", recorded_at=now + 365 * DAY + i) for i in range(10)]
    set_back = [Record("camera:0", f"b{i}", "ok", recorded_at=now + i) for i in range(10)]
    with SqliteLog(tmp_path / "log.db") as log:
        log.write(truly_old + ahead + set_back)
        report = prune_log(log, "30d", [tmp_path], now=now + 365 * DAY)  # retention run while the clock was ahead
        assert (report.deleted_records, report.kept_out_of_order) == (3, 10)
        assert "kept 10 records stamped before the cut but logged after newer ones" in report.line()
        assert {row["frame_id"] for row in log.rows()} == {r.frame_id for r in ahead + set_back}
        report = prune_log(log, "30d", [tmp_path], now=now)  # and once the clock is right again
        assert (report.deleted_records, report.kept_out_of_order) == (0, 0) and log.count() == 20


def test_a_record_stamped_far_ahead_does_not_hold_retention_off(tmp_path):
    """One record typed a year ahead, then the clock right again: the daily records still go after 30 days."""
    now = time.time()
    with SqliteLog(tmp_path / "log.db") as log:
        log.write([Record("camera:0", "typo", "ok", recorded_at=now + 365 * DAY)]
                  + [Record("camera:0", f"d{day}", "ok", recorded_at=now + day * DAY) for day in range(60)])
        report = prune_log(log, "30d", [tmp_path], now=now + 60 * DAY)
        assert report.deleted_records == 30 and log.count() == 31
