"""Operator reviews in a real SQLite log: appended, checked, newest counts, pruned with their record, summarised."""

import sqlite3
import time

import pytest

from edge_runtime.sinks import Record, Review, SqliteLog
from edge_runtime.sinks.reviews import review_summary, summary_line


def _rec(frame_id, verdict, defect_class=None, recorded_at=None):
    return Record(source="cam", frame_id=frame_id, verdict=verdict, defect_class=defect_class,
                  recorded_at=recorded_at or time.time(), score=0.5)


@pytest.fixture
def log(tmp_path):
    with SqliteLog(tmp_path / "log.db") as log:
        log.write([_rec("a", "defect", "scratches"), _rec("b", "warn", "patches"), _rec("c", "ok"),
                   _rec("d", "error"), _rec("e", "defect", "inclusion")])
        yield log


def _ids(log):
    return {row["frame_id"]: row["id"] for row in log.rows()}


def test_a_review_names_what_the_frame_shows_and_who_said_so():
    with pytest.raises(ValueError, match="one of"):
        Review(1, "scratch", "anna")
    with pytest.raises(ValueError, match="reviewer"):
        Review(1, "good", "  ")
    with pytest.raises(ValueError, match="only goes with a frame that shows a defect"):
        Review(1, "good", "anna", defect_class="patches")


def test_reviews_are_appended_and_the_newest_counts(log):
    ids = _ids(log)
    first = log.add_review(Review(ids["b"], "defect", "anna", "patches"))
    second = log.add_review(Review(ids["b"], "good", "ben", note="oil stain, wiped off"))
    assert second > first
    latest = {row["frame_id"]: row for row in log.latest_reviews()}
    assert set(latest) == {"b"}
    assert (latest["b"]["shows"], latest["b"]["reviewer"], latest["b"]["reviews"]) == ("good", "ben", 2)
    assert latest["b"]["note"] == "oil stain, wiped off" and latest["b"]["predicted_class"] == "patches"
    assert latest["b"]["verdict"] == "warn"
    assert [row["frame_id"] for row in log.latest_reviews(record=ids["b"])] == ["b"]
    assert log.latest_reviews(record=ids["a"]) == []  # a record nobody reviewed


def test_a_record_without_an_inspected_frame_cannot_be_reviewed(log):
    ids = _ids(log)
    with pytest.raises(ValueError, match="'error': no frame was inspected"):
        log.add_review(Review(ids["d"], "good", "anna"))
    with pytest.raises(ValueError, match="no record 999"):
        log.add_review(Review(999, "good", "anna"))
    assert log.latest_reviews() == []


def test_the_database_refuses_what_the_review_object_would(log):
    """The CHECK constraint holds for writers that bypass ``Review`` (another tool on the same file)."""
    ids = _ids(log)
    with pytest.raises(sqlite3.IntegrityError):
        with sqlite3.connect(log.path) as other:
            other.execute("INSERT INTO reviews (inspection_id, reviewed_at, reviewer, shows) VALUES (?, 0, 'x', 'maybe')",
                          (ids["a"],))


def test_pruning_a_record_deletes_its_reviews(tmp_path):
    with SqliteLog(tmp_path / "log.db") as log:
        log.write([_rec("old", "defect", "scratches", recorded_at=1000.0), _rec("new", "defect", "scratches")])
        ids = _ids(log)
        log.add_review(Review(ids["old"], "defect", "anna"))
        log.add_review(Review(ids["new"], "good", "anna"))
        assert log.prune(before=2000.0).deleted == 1
        assert [row["frame_id"] for row in log.latest_reviews()] == ["new"]
        assert log.integrity_check() == "ok"
        with sqlite3.connect(log.path) as other:
            assert other.execute("SELECT COUNT(*) FROM reviews").fetchone()[0] == 1


def test_since_filters_on_the_records_time(tmp_path):
    with SqliteLog(tmp_path / "log.db") as log:
        log.write([_rec("old", "warn", recorded_at=1000.0), _rec("new", "warn")])
        ids = _ids(log)
        for frame in ("old", "new"):
            log.add_review(Review(ids[frame], "defect", "anna"))
        assert [row["frame_id"] for row in log.latest_reviews(since="1h")] == ["new"]
        assert len(log.latest_reviews()) == 2


def test_summary_counts_confirmed_flags_false_alarms_class_agreement_and_misses(log):
    ids = _ids(log)
    log.add_review(Review(ids["a"], "defect", "anna", "Scratches"))  # confirmed, class agrees (case aside)
    log.add_review(Review(ids["b"], "good", "anna"))  # false alarm
    log.add_review(Review(ids["e"], "defect", "anna", "patches"))  # confirmed, classifier said inclusion
    log.add_review(Review(ids["c"], "defect", "anna"))  # an ok frame with a defect: missed
    summary = review_summary(log.latest_reviews())
    assert summary == {"reviewed": 4, "flagged_reviewed": 3, "confirmed": 2, "false_alarms": 1,
                       "flag_precision": pytest.approx(2 / 3), "class_named": 2, "class_agreed": 1,
                       "class_agreement": 0.5, "spot_checked": 1, "missed": 1}
    line = summary_line(summary)
    assert "2 defect(s) confirmed, 1 false alarm(s) (67% of flags confirmed)" in line
    assert "class named right on 1 of 2" in line and "1 missed defect(s)" in line


def test_summary_of_no_reviews():
    summary = review_summary([])
    assert summary["reviewed"] == 0 and summary["flag_precision"] is None and summary["class_agreement"] is None
    assert summary_line(summary) == "no frames reviewed by an operator"
