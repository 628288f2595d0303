"""Drift: the newest logged scores and pictures against the baselines recorded at commissioning."""

from __future__ import annotations

import json
import threading
import time

import cv2
import numpy as np
import pytest

from edge_runtime import drift
from edge_runtime.capture.synthetic import SyntheticStripSource
from edge_runtime.cli import main as cli_main
from edge_runtime.drift import BRIGHTNESS, SMOOTHNESS, Baseline, check_drift
from edge_runtime.manifest import save_thresholds
from edge_runtime.sinks import Record, SqliteLog
from tests.conftest import editable_manifest, needs_models


def _normal_scores(n: int, seed: int, scale: float = 1.0) -> np.ndarray:
    return scale * np.random.default_rng(seed).lognormal(0.5, 0.1, n)


def test_baseline_holds_the_percentiles_and_needs_enough_frames():
    scores = np.arange(1.0, 301.0)
    baseline = Baseline.from_values(scores, measured_at=5.0)
    assert (baseline.p10, baseline.p50, baseline.p90) == (pytest.approx(30.9), pytest.approx(150.5), pytest.approx(270.1))
    assert baseline.frames == 300 and baseline.measured_at == 5.0
    assert Baseline.from_manifest({"score_baseline": baseline.to_dict()}) == baseline
    assert Baseline.from_manifest({"warn": 1.0}) is None
    with pytest.raises(ValueError, match=f"at least {drift.MIN_FRAMES}"):
        Baseline.from_values(scores[:150])


def test_unchanged_line_is_ok_and_a_shift_either_way_is_drift():
    baseline = Baseline.from_values(_normal_scores(400, seed=1))
    same = check_drift(_normal_scores(500, seed=2), baseline)
    assert same.status == "ok" and not same.drifted
    assert 0.05 < same.share_above_p90 < drift.DRIFT_SHARE and 0.05 < same.share_below_p10 < drift.DRIFT_SHARE
    risen = check_drift(_normal_scores(500, seed=3, scale=1.15), baseline)
    assert risen.status == "high" and risen.drifted and "False alarms will rise" in risen.message
    fallen = check_drift(_normal_scores(500, seed=4, scale=0.85), baseline)
    assert fallen.status == "low" and fallen.drifted and "Defects can stay under the thresholds" in fallen.message


def test_smoother_or_grainier_pictures_are_image_drift_with_their_own_advice():
    correlations = np.random.default_rng(1).normal(0.90, 0.02, 400)
    baseline = Baseline.from_values(correlations)
    thresholds = {"score_baseline": {"p10": 1, "p50": 2, "p90": 3, "frames": 300, "measured_at": 0.0},
                  "image_baseline": baseline.to_dict()}
    assert Baseline.from_manifest(thresholds, SMOOTHNESS) == baseline
    assert Baseline.from_manifest(thresholds).p90 == 3  # the score's, by default
    same = check_drift(np.random.default_rng(2).normal(0.90, 0.02, 500), baseline, measure=SMOOTHNESS)
    assert same.status == "ok" and same.measure == "neighbour_correlation"
    smoother = check_drift(np.random.default_rng(3).normal(0.95, 0.02, 500), baseline, measure=SMOOTHNESS)
    assert smoother.status == "high" and "Pictures are smoother" in smoother.message and "focus" in smoother.message
    assert "have a neighbour correlation above" in smoother.message
    grainier = check_drift(np.random.default_rng(4).normal(0.85, 0.02, 500), baseline, measure=SMOOTHNESS)
    assert grainier.status == "low" and "Pictures are grainier" in grainier.message and "gain" in grainier.message
    missing = check_drift(correlations, None, measure=SMOOTHNESS)
    assert missing.status == "no_baseline" and missing.message.startswith("No image baseline")


def test_darker_or_brighter_pictures_are_brightness_drift_pointing_at_the_lamp_or_the_exposure():
    baseline = Baseline.from_values(np.random.default_rng(1).normal(0.40, 0.03, 400))
    assert check_drift(np.random.default_rng(2).normal(0.40, 0.03, 500), baseline, measure=BRIGHTNESS).status == "ok"
    darker = check_drift(np.random.default_rng(3).normal(0.32, 0.03, 500), baseline, measure=BRIGHTNESS)
    assert darker.status == "low" and darker.message.startswith("Pictures are darker") and "lamp" in darker.message
    brighter = check_drift(np.random.default_rng(4).normal(0.48, 0.03, 500), baseline, measure=BRIGHTNESS)
    assert brighter.status == "high" and "exposure time" in brighter.message
    assert check_drift([], None, measure=BRIGHTNESS).message.startswith("No brightness baseline")


def test_the_log_keeps_each_frames_picture_smoothness_and_adds_the_column_to_an_older_log(tmp_path):
    import sqlite3

    db = tmp_path / "old.db"
    with sqlite3.connect(db) as old:  # a log written before the column existed
        old.execute("CREATE TABLE inspections (id INTEGER PRIMARY KEY AUTOINCREMENT, recorded_at REAL NOT NULL, "
                    "captured_at REAL, source TEXT NOT NULL, frame_id TEXT NOT NULL, verdict TEXT NOT NULL, score REAL, "
                    "warn_threshold REAL, defect_threshold REAL, defect_class TEXT, confidence REAL, latency_ms REAL, "
                    "profile TEXT, model_sha256 TEXT, error TEXT, overlay_path TEXT, frame_term REAL)")
        old.execute("INSERT INTO inspections (recorded_at, source, frame_id, verdict, score, profile) "
                    "VALUES (1.0, 's', 'old', 'ok', 1.5, 'p')")
    with SqliteLog(db) as log:
        log.write([Record(source="s", frame_id="new", verdict="ok", score=1.6, profile="p", neighbour_correlation=0.93)])
        assert log.recent_values("neighbour_correlation", 10, profile="p") == [0.93]  # the old row has none
        assert log.recent_values("score", 10, profile="p") == [1.6, 1.5]
        with pytest.raises(ValueError, match="no per-frame measurement 'error'"):
            log.recent_values("error", 10)


def test_rejects_are_left_out_so_a_run_of_defects_is_not_drift(tmp_path):
    scores = _normal_scores(600, seed=1)
    baseline = Baseline.from_values(scores[:300], measured_at=time.time() - 60)
    verdicts = ["defect" if i % 5 == 0 else "ok" for i in range(300)]  # 20% rejects, far above every threshold
    with SqliteLog(tmp_path / "i.db") as log:
        log.write([Record(source="s", frame_id=f"f{i}", verdict=verdict, profile="p",
                          score=float(score) * (3.0 if verdict == "defect" else 1.0))
                   for i, (verdict, score) in enumerate(zip(verdicts, scores[300:]))])
        assert check_drift(log.recent_values("score", 500, profile="p"), baseline).status == "high"  # counted, they would be
        checked = drift.check_log(log, "p", {"score_baseline": baseline.to_dict()})
    assert checked.status == "ok" and checked.frames == 240


def test_a_clock_set_back_past_the_commissioning_is_reported_not_read_as_too_few_frames(tmp_path, capsys):
    """Frames judged by the commissioned thresholds cannot predate the commissioning: stamped before it, they say
    this PC's clock is behind, and ``history`` exits 2 (no drift check could run) instead of passing quietly.
    Frames of the thresholds before are just too few frames since."""
    manifest = _minimal_manifest(tmp_path / "m.json", warn=1.5, defect=2.5)
    document = json.loads(manifest.read_text())
    commissioned_at = time.time()
    document["profiles"]["p"]["thresholds"].update(
        commissioned={"frames": 300}, score_baseline=Baseline.from_values(_normal_scores(300, seed=1),
                                                                          measured_at=commissioned_at).to_dict(),
        changes=[{"previous_warn": 1.2, "previous_defect": 2.2, "warn": 1.5, "defect": 2.5}])
    manifest.write_text(json.dumps(document))
    thresholds = document["profiles"]["p"]["thresholds"]

    def frames(count, warn, defect):
        return [Record(source="s", frame_id=f"f{i}", verdict="ok", profile="p", score=float(score),
                       warn_threshold=warn, defect_threshold=defect, recorded_at=commissioned_at - 7200 + i)
                for i, score in enumerate(_normal_scores(count, seed=2))]

    with SqliteLog(tmp_path / "before.db") as log:
        log.write(frames(300, 1.2, 2.2))  # judged before the commissioning, by the thresholds of then
        assert drift.check_log(log, "p", thresholds).status == "too_few"
    with SqliteLog(tmp_path / "behind.db") as log:
        log.write(frames(300, 1.5, 2.5))  # judged by the commissioned thresholds, stamped two hours before them
        checked = drift.check_log(log, "p", thresholds)
    assert checked.status == "clock_behind" and "clock is behind the commissioning" in checked.message
    assert cli_main(["history", "--db", str(tmp_path / "behind.db"), "--manifest", str(manifest)]) == 2
    assert "clock is behind the commissioning" in capsys.readouterr().out
    kept = {**thresholds, "changes": [{"previous_warn": 1.5, "previous_defect": 2.5, "warn": 1.5, "defect": 2.5}]}
    again = {**thresholds, "changes": [{"previous_warn": 1.2, "previous_defect": 2.2, "warn": 1.5, "defect": 2.5},
                                       {"previous_warn": 1.5, "previous_defect": 2.5, "warn": 1.2, "defect": 2.2},
                                       {"previous_warn": 1.2, "previous_defect": 2.2, "warn": 1.5, "defect": 2.5}]}
    with SqliteLog(tmp_path / "behind.db") as log:  # a commissioning that kept the values, or set them again after
        for earlier in (kept, again, {k: v for k, v in thresholds.items() if k != "changes"}):  # a trial, or no log:
            assert drift.check_log(log, "p", earlier).status == "too_few"  # yesterday's frames, judged by them too


def test_no_baseline_or_too_few_frames_says_so_instead_of_judging():
    baseline = Baseline.from_values(_normal_scores(400, seed=1))
    assert check_drift(_normal_scores(500, seed=2), None).status == "no_baseline"
    few = check_drift(_normal_scores(drift.MIN_FRAMES - 1, seed=2, scale=2.0), baseline)
    assert few.status == "too_few" and not few.drifted and few.to_dict()["drifted"] is False


def test_log_gives_the_newest_inspected_scores_of_a_profile_since_a_time(tmp_path):
    now = time.time()
    records = [Record(source="s", frame_id=f"f{i}", verdict=("ok", "warn", "defect", "error", "dropped")[i % 5],
                      score=float(i) if i % 5 < 3 else None, profile="neu-steel" if i < 40 else "other",
                      captured_at=now) for i in range(50)]
    with SqliteLog(tmp_path / "i.db") as log:
        log.write(records)
        assert log.recent_values("score", 4, profile="neu-steel") == [37.0, 36.0, 35.0, 32.0]  # newest first, no errors
        assert len(log.recent_values("score", 100, profile="neu-steel")) == 24
        assert log.recent_values("score", 2) == [47.0, 46.0]
        assert log.recent_values("score", 100, since=time.time() + 60) == []


def test_commissioning_records_a_baseline_that_hand_edits_keep_and_a_new_commissioning_replaces(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"profiles": {"p": {"thresholds": {"warn": 1.0, "defect": 2.0}}}}))
    first = Baseline.from_values(_normal_scores(300, seed=1)).to_dict()
    save_thresholds(path, "p", 1.5, 2.5, reason="test", commissioned={"frames": 300}, baselines={"score_baseline": first})
    assert json.loads(path.read_text())["profiles"]["p"]["thresholds"]["score_baseline"] == first
    save_thresholds(path, "p", 1.4, 2.5, reason="test")  # moved by hand: the scores are the same, so is their baseline
    assert json.loads(path.read_text())["profiles"]["p"]["thresholds"]["score_baseline"] == first
    save_thresholds(path, "p", 1.5, 2.5, reason="test", commissioned={"frames": 120})  # too few frames for a new baseline
    assert "score_baseline" not in json.loads(path.read_text())["profiles"]["p"]["thresholds"]


def test_the_picture_baselines_are_set_by_commissioning_only_and_restored_with_the_thresholds(tmp_path):
    from edge_runtime.errors import ManifestError

    path = tmp_path / "m.json"
    path.write_text(json.dumps({"profiles": {"p": {"thresholds": {"warn": 1.0, "defect": 2.0}}}}))
    image = Baseline.from_values(np.random.default_rng(1).normal(0.9, 0.02, 300)).to_dict()
    commissioned = save_thresholds(path, "p", 1.5, 2.5, reason="test", commissioned={"frames": 300},
                                   baselines={"image_baseline": image})
    save_thresholds(path, "p", 1.4, 2.5, reason="test")  # moved by hand: the pictures are the same
    assert json.loads(path.read_text())["profiles"]["p"]["thresholds"]["image_baseline"] == image
    hand = save_thresholds(path, "p", 1.5, 2.5, reason="test", commissioned={"frames": 120})  # too few frames for a new baseline
    assert "image_baseline" not in json.loads(path.read_text())["profiles"]["p"]["thresholds"]
    save_thresholds(path, "p", 1.5, 2.5, reason="test", baselines={"image_baseline": image}, restored_from="x")  # as a restore does
    assert json.loads(path.read_text())["profiles"]["p"]["thresholds"]["image_baseline"] == image
    save_thresholds(path, "p", 1.0, 2.0, reason="test", restored_from="shipped.bak")  # a restore of none drops the current one
    assert "image_baseline" not in json.loads(path.read_text())["profiles"]["p"]["thresholds"]
    assert commissioned.is_file() and hand.is_file()
    with pytest.raises(ManifestError, match="unknown drift baseline"):
        save_thresholds(path, "p", 1.5, 2.5, reason="test", baselines={"focus_baseline": image})


def test_every_threshold_change_is_logged_with_who_how_why_and_the_values_before(tmp_path):
    import getpass

    path = tmp_path / "m.json"
    path.write_text(json.dumps({"profiles": {"p": {"thresholds": {"warn": 1.0, "defect": 2.0}}}}))
    first = save_thresholds(path, "p", 1.5, 2.5, commissioned={"frames": 300}, reason="line start")
    second = save_thresholds(path, "p", 1.4, 2.5, reason="  fewer false alarms on coil 4711 ", changed_by="J. Q.")
    changes = json.loads(path.read_text())["profiles"]["p"]["thresholds"]["changes"]
    assert [(c["previous_warn"], c["previous_defect"], c["warn"], c["defect"]) for c in changes] == [
        (1.0, 2.0, 1.5, 2.5), (1.5, 2.5, 1.4, 2.5)]
    assert [c["how"] for c in changes] == ["commissioned on 300 defect-free frames", "set by hand"]
    assert [c["reason"] for c in changes] == ["line start", "fewer false alarms on coil 4711"]
    assert [c["by"] for c in changes] == [getpass.getuser(), "J. Q."]  # default: the account that saved
    assert [c["backup"] for c in changes] == [first.name, second.name]
    assert len(json.loads(second.read_text())["profiles"]["p"]["thresholds"]["changes"]) == 1  # the log before it


def test_the_thresholds_command_reads_the_change_log_without_loading_a_model(tmp_path, capsys):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"default_profile": "p", "profiles": {"p": {"thresholds": {"warn": 1.0, "defect": 2.0}}}}))
    assert cli_main(["thresholds", "--manifest", str(path)]) == 0  # no model files exist here
    assert "As shipped" in capsys.readouterr().out
    save_thresholds(path, "p", 1.5, 2.5, commissioned={"frames": 300}, reason="line start", changed_by="A. E.")
    save_thresholds(path, "p", 1.4, 2.5, reason="fewer false alarms on coil 4711", changed_by="J. Q.")
    assert cli_main(["thresholds", "--manifest", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["profile"], report["warn"], report["defect"], report["commissioned"]) == ("p", 1.4, 2.5, False)
    assert [c["reason"] for c in report["changes"]] == ["fewer false alarms on coil 4711", "line start"]  # newest first
    assert cli_main(["thresholds", "--manifest", str(path)]) == 0
    text = capsys.readouterr().out
    assert "p: warn 1.4, defect 2.5" in text and "Edited by hand" in text and "2 change(s)" in text
    assert text.index("J. Q.") < text.index("A. E.") and "warn 1.5 -> 1.4" in text
    assert cli_main(["thresholds", "--manifest", str(path), "--profile", "other"]) == 2
    assert "profile 'other' is not in the manifest" in capsys.readouterr().err


def _minimal_manifest(path, warn=1.0, defect=2.0, gate_sha="a" * 64):
    term = {"map_reference": 1.0, "frame_reference": 0.5, "weight": 2.0}
    path.write_text(json.dumps({"default_profile": "p", "profiles": {"p": {
        "autoencoder": {"sha256": gate_sha, "score": {"frame_term": term}}, "classifier": {"sha256": "b" * 64},
        "thresholds": {"warn": warn, "defect": defect}}}}))
    return path


def test_thresholds_restored_from_a_backup_are_one_more_logged_change(tmp_path, capsys):
    from edge_runtime.manifest import FrameTerm

    path = _minimal_manifest(tmp_path / "m.json")
    baseline = Baseline.from_values(_normal_scores(300, seed=1)).to_dict()
    image = Baseline.from_values(np.random.default_rng(1).normal(0.9, 0.02, 300)).to_dict()
    commissioned = save_thresholds(path, "p", 1.5, 2.5, commissioned={"frames": 300}, frame_term=FrameTerm(3.0, 0.7, 2.0),
                                   baselines={"score_baseline": baseline, "image_baseline": image}, reason="line start")
    trial = save_thresholds(path, "p", 1.2, 2.2, reason="trial")  # its backup holds the commissioned values
    assert trial != commissioned
    code = cli_main(["thresholds", "--manifest", str(path), "--restore", str(trial), "--reason", "trial over",
                     "--by", "J. Q.", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and (report["warn"], report["defect"], report["commissioned"]) == (1.5, 2.5, True)
    entry = json.loads(path.read_text())["profiles"]["p"]
    assert entry["thresholds"]["score_baseline"] == baseline and entry["thresholds"]["commissioned"]["frames"] == 300
    assert entry["thresholds"]["image_baseline"] == image
    assert entry["autoencoder"]["score"]["frame_term"]["map_reference"] == 3.0  # the thresholds' units come back too
    last = report["changes"][0]
    assert (last["how"], last["reason"], last["by"]) == (f"restored from {trial.name}", "trial over", "J. Q.")
    assert (last["previous_warn"], last["warn"]) == (1.2, 1.5) and len(report["changes"]) == 3


def test_every_threshold_change_needs_a_reason_and_nothing_is_written_without_one(tmp_path, capsys):
    """A change log entry without "why" is the one thing an audit cannot reconstruct: a save, a commissioning
    and a restore without a reason are refused before anything (a backup included) is written."""
    from edge_runtime.errors import ManifestError

    path = _minimal_manifest(tmp_path / "m.json")
    trial = save_thresholds(path, "p", 1.2, 2.2, reason="trial")
    frames = tmp_path / "good"
    frames.mkdir()
    before, files = path.read_text(), sorted(tmp_path.iterdir())
    for reason in ("", "   "):
        with pytest.raises(ManifestError, match="needs a reason"):
            save_thresholds(path, "p", 1.4, 2.4, reason=reason, commissioned={"frames": 300})
    assert cli_main(["thresholds", "--manifest", str(path), "--restore", str(trial)]) == 2
    assert "needs a reason" in capsys.readouterr().err
    # refused before minutes of scoring: this manifest names no model file, so a load would fail otherwise
    assert cli_main(["calibrate", str(frames), "--manifest", str(path), "--write"]) == 2
    assert "needs a reason" in capsys.readouterr().err
    assert path.read_text() == before and sorted(tmp_path.iterdir()) == files


def test_thresholds_of_other_models_are_not_restored(tmp_path, capsys):
    path = _minimal_manifest(tmp_path / "m.json")
    other = _minimal_manifest(tmp_path / "other.json", 0.1, 0.2, gate_sha="c" * 64)
    before = path.read_text()
    assert cli_main(["thresholds", "--manifest", str(path), "--restore", str(other), "--reason", "roll back"]) == 2
    assert "describes another autoencoder" in capsys.readouterr().err and path.read_text() == before
    assert cli_main(["thresholds", "--manifest", str(path), "--restore", str(tmp_path / "missing.bak"), "--reason", "roll back"]) == 2
    assert "not found" in capsys.readouterr().err and path.read_text() == before


def test_a_restore_after_a_software_update_keeps_the_lines_change_history_and_commissioning_date(tmp_path, capsys):
    """The update brings a manifest without the line's change log; restoring the line's thresholds carries its
    earlier changes over (who commissioned, who changed what and why) and dates the commissioning when it was done.
    A roll-back within one manifest's history carries nothing twice."""
    line = _minimal_manifest(tmp_path / "line.json")
    save_thresholds(line, "p", 1.6, 2.6, reason="too many false alarms", changed_by="carl")
    save_thresholds(line, "p", 1.5, 2.5, reason="commissioning", changed_by="anna", commissioned={"frames": 300})
    document = json.loads(line.read_text())
    thresholds = document["profiles"]["p"]["thresholds"]
    thresholds["commissioned"].pop("at")  # as an older version wrote it: dated by its change log entry only
    thresholds["changes"][-1]["at"] = "2026-11-20T08:00:00"
    thresholds["edited_at"] = "2026-11-21T09:00:00"  # a later save that dates nothing (an older version's restore)
    (tmp_path / "kept.json").write_text(json.dumps(document))
    update = _minimal_manifest(tmp_path / "m.json")  # the release: same models, shipped thresholds, no log
    assert cli_main(["thresholds", "--manifest", str(update), "--restore", str(tmp_path / "kept.json"),
                     "--reason", "software update", "--by", "it"]) == 0
    capsys.readouterr()
    assert cli_main(["thresholds", "--manifest", str(update), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(c["by"], c["reason"], c.get("carried_over_from")) for c in report["changes"]] == [
        ("it", "software update", None), ("anna", "commissioning", "kept.json"),
        ("carl", "too many false alarms", "kept.json")]
    assert report["commissioned"] and "2026-11-20T08:00:00" in report["origin"] and "WARNING" not in report["origin"]
    assert cli_main(["thresholds", "--manifest", str(update)]) == 0
    text = capsys.readouterr().out
    assert "1 change(s) since the export, 2 carried over from an earlier manifest by a restore" in text
    assert "commissioned on 300 defect-free frames (carried over from kept.json)" in text
    backup = save_thresholds(update, "p", 1.7, 2.7, reason="trial", changed_by="carl")  # the manifest before it
    assert cli_main(["thresholds", "--manifest", str(update), "--restore", str(backup), "--reason", "trial over",
                     "--json"]) == 0
    changes = json.loads(capsys.readouterr().out)["changes"]
    assert [c["reason"] for c in changes] == ["trial over", "trial", "software update", "commissioning",
                                              "too many false alarms"]
    capsys.readouterr()  # the same restore again: nothing to restore, nothing carried twice
    assert cli_main(["thresholds", "--manifest", str(update), "--restore", str(tmp_path / "kept.json"),
                     "--reason", "software update"]) == 2
    assert "nothing to restore" in capsys.readouterr().err
    assert cli_main(["thresholds", "--manifest", str(update), "--json"]) == 0
    reasons = [c["reason"] for c in json.loads(capsys.readouterr().out)["changes"]]
    assert reasons.count("commissioning") == 1 and reasons.count("too many false alarms") == 1


def test_restores_across_several_updates_carry_each_change_once_and_date_commissionings_by_their_own_entry(
        tmp_path, capsys):
    from edge_runtime.manifest import changes_newest_first, restore_thresholds, threshold_origin

    line = _minimal_manifest(tmp_path / "line.json")
    save_thresholds(line, "p", 1.5, 2.5, reason="line start", commissioned={"frames": 300})
    first_update = _minimal_manifest(tmp_path / "u1.json")
    restore_thresholds(first_update, "p", line, "update 1")
    save_thresholds(first_update, "p", 1.6, 2.6, reason="hand change")
    (tmp_path / "u1_kept.json").write_text(first_update.read_text())  # its log holds "line start" carried inside
    second_update = _minimal_manifest(tmp_path / "u2.json")
    restore_thresholds(second_update, "p", line, "update 2")  # carries "line start" once
    restore_thresholds(second_update, "p", tmp_path / "u1_kept.json", "back to u1's values")
    reasons = [change["reason"] for change in
               changes_newest_first(json.loads(second_update.read_text())["profiles"]["p"]["thresholds"])]
    assert reasons.count("line start") == 1 and {"update 1", "hand change"} <= set(reasons)

    older = json.loads(line.read_text())  # an older version's: undated commissioning records, restored once
    thresholds = older["profiles"]["p"]["thresholds"]
    thresholds["changes"] = [
        {"at": "2026-01-10T08:00:00", "how": "commissioned on 300 defect-free frames", "warn": 1.5, "defect": 2.5},
        {"at": "2026-02-10T08:00:00", "how": "commissioned on 250 defect-free frames", "warn": 1.4, "defect": 2.4},
        {"at": "2026-03-01T08:00:00", "how": "restored from x.bak", "warn": 1.5, "defect": 2.5}]
    thresholds["commissioned"] = {"frames": 300}
    thresholds["edited_at"] = "2026-03-01T08:00:00"
    (tmp_path / "older.json").write_text(json.dumps(older))
    restore_thresholds(_minimal_manifest(tmp_path / "u3.json"), "p", tmp_path / "older.json", "update 3")
    origin = threshold_origin(json.loads((tmp_path / "u3.json").read_text())["profiles"]["p"]["thresholds"])[1]
    assert "2026-01-10T08:00:00" in origin  # the 300-frame commissioning's own entry, not the newest one
    thresholds["changes"] = thresholds["changes"][1:]  # its own entry gone: say so, do not guess
    (tmp_path / "older.json").write_text(json.dumps(older))
    restore_thresholds(_minimal_manifest(tmp_path / "u4.json"), "p", tmp_path / "older.json", "update 4")
    assert "date not recorded" in threshold_origin(json.loads((tmp_path / "u4.json").read_text())["profiles"]["p"]
                                                   ["thresholds"])[1]


def test_the_exports_words_on_its_thresholds_go_with_them_and_come_back_with_them(tmp_path):
    path = _minimal_manifest(tmp_path / "m.json")
    document = json.loads(path.read_text())
    words = {"false_alarm_rate": 0.01, "warn_false_alarm_rate": 0.05, "note": "set on 12 validation normals ..."}
    document["profiles"]["p"]["thresholds"].update(words)
    path.write_text(json.dumps(document))
    shipped = save_thresholds(path, "p", 1.5, 2.5, reason="trial")
    assert not set(words) & set(json.loads(path.read_text())["profiles"]["p"]["thresholds"])
    from edge_runtime.manifest import restore_thresholds

    restore_thresholds(path, "p", shipped, "trial over")
    restored = json.loads(path.read_text())["profiles"]["p"]["thresholds"]
    assert {key: restored.get(key) for key in words} == words


def test_thresholds_set_under_other_scoring_are_not_restored(tmp_path, capsys):
    """An update can change how frames are scored without touching a model file (``export --thresholds-only``
    moving the detector's scale, a new level power, another preprocessing): the line's old thresholds are then in
    other units, and the restore says so by name instead of bringing them back."""
    path = _minimal_manifest(tmp_path / "m.json")
    before = path.read_text()
    for part, key, value in (("score", "level_power", 1.25), ("preprocessing", "exposure_median", 0.4),
                             ("score", "frame_term", {"map_reference": 1.0, "frame_reference": 0.5, "weight": 3.0})):
        named = f"{part}.{key}" + (".weight" if key == "frame_term" else "")
        old = json.loads(before)
        entry = old["profiles"]["p"]
        (entry["autoencoder"]["score"] if part == "score" else entry.setdefault("preprocessing", {}))[key] = value
        entry["thresholds"].update(warn=0.5, defect=0.7)
        (tmp_path / "old.bak").write_text(json.dumps(old))
        assert cli_main(["thresholds", "--manifest", str(path), "--restore", str(tmp_path / "old.bak"),
                         "--reason", "software update"]) == 2
        err = capsys.readouterr().err
        assert f"({named} changed since)" in err and "commission the line again" in err
        assert path.read_text() == before
    old = json.loads(before)  # a frame check's limit raised since (larger frames, a darker lamp): scores unchanged
    old["profiles"]["p"]["preprocessing"] = {"max_pixels": 4_194_304, "min_mean_grey": 0.04}
    old["profiles"]["p"]["autoencoder"]["score"]["frame_term"]["weight"] = 2.0 * (1 + 9e-5)  # a recalibration's digits
    old["profiles"]["p"]["thresholds"].update(warn=0.5, defect=0.7)
    (tmp_path / "old.bak").write_text(json.dumps(old))
    assert cli_main(["thresholds", "--manifest", str(path), "--restore", str(tmp_path / "old.bak"),
                     "--reason", "roll back"]) == 0


def test_a_line_commissioned_on_too_few_frames_is_told_so_not_that_it_was_never_commissioned(tmp_path):
    from edge_runtime.drift import check_log
    from edge_runtime.sinks import SqliteLog

    with SqliteLog(tmp_path / "log.db") as log:
        reading = check_log(log, "p", {"warn": 1.0, "defect": 2.0, "commissioned": {"frames": 120}})
        assert reading.status == "no_baseline" and "commissioned on 120 frames" in reading.message
        assert "not commissioned" in check_log(log, "p", {"warn": 1.0, "defect": 2.0}).message


def test_a_restore_checks_every_deployed_file_and_refuses_one_that_changes_nothing(tmp_path, capsys):
    path = _minimal_manifest(tmp_path / "m.json")
    before = path.read_text()
    other = json.loads(before)
    other["profiles"]["p"]["classifier"]["int8"] = {"sha256": "d" * 64}  # the int8 head the line runs differs
    other["profiles"]["p"]["thresholds"].update(warn=0.5, defect=0.7)
    (tmp_path / "int8.bak").write_text(json.dumps(other))
    assert cli_main(["thresholds", "--manifest", str(path), "--restore", str(tmp_path / "int8.bak"), "--reason", "roll back"]) == 2
    assert "describes another classifier int8" in capsys.readouterr().err
    (tmp_path / "same.bak").write_text(before)
    assert cli_main(["thresholds", "--manifest", str(path), "--restore", str(tmp_path / "same.bak"), "--reason", "roll back"]) == 2
    assert "nothing to restore" in capsys.readouterr().err
    (tmp_path / "odd.bak").write_text(json.dumps({"profiles": {"p": {"thresholds": {"warn": 1, "defect": 2}}}}))
    assert cli_main(["thresholds", "--manifest", str(path), "--restore", str(tmp_path / "odd.bak"), "--reason", "roll back"]) == 2
    assert "malformed profile entry" in capsys.readouterr().err and path.read_text() == before


def _write_frames(folder, seed: int, count: int, change=lambda frame: frame):
    folder.mkdir()
    for frame in SyntheticStripSource(0.0, seed=seed, count=count).frames(threading.Event()):
        cv2.imwrite(str(folder / f"{frame.frame_id}.png"), change(frame.data))
    return folder


@needs_models
def test_a_blurred_camera_is_reported_as_drift_after_commissioning(tmp_path, capsys):
    """The documented procedure on the default line with the real models: commission on good synthetic
    strip, inspect more of it (no drift), then the same strip through a lens out of focus (drift)."""
    manifest = editable_manifest(tmp_path)
    good = _write_frames(tmp_path / "good", seed=1, count=drift.MIN_FRAMES + 20)
    assert cli_main(["calibrate", str(good), "--manifest", str(manifest), "--write", "--reason", "line start", "--json"]) == 0
    baseline = json.loads(manifest.read_text())["profiles"]["neu-steel"]["thresholds"]["score_baseline"]
    thresholds = json.loads(manifest.read_text())["profiles"]["neu-steel"]["thresholds"]
    assert drift.MIN_FRAMES <= baseline["frames"] < drift.MIN_FRAMES + 20  # the frames under the new defect threshold
    assert baseline["p10"] < baseline["p50"] < baseline["p90"] < thresholds["defect"]
    image, brightness = thresholds["image_baseline"], thresholds["brightness_baseline"]
    assert image["frames"] == baseline["frames"] and 0.5 < image["p10"] < image["p50"] < image["p90"] < 1.0
    assert brightness["frames"] == baseline["frames"] and 0.04 < brightness["p10"] < brightness["p90"] < 1.0
    report = json.loads(capsys.readouterr().out)
    assert (report["image_baseline"], report["brightness_baseline"]) == (image, brightness)
    db = tmp_path / "inspections.db"
    history = ["history", "--db", str(db), "--manifest", str(manifest), "--json"]

    line = _write_frames(tmp_path / "line", seed=2, count=drift.MIN_FRAMES + 40)  # a few may be rejects
    assert cli_main(["watch", str(line), "--once", "--log", str(db), "--manifest", str(manifest)]) == 0
    capsys.readouterr()
    assert cli_main(history) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["drift"]["status"] == "ok" and report["image_drift"]["status"] == "ok"

    blurred = _write_frames(tmp_path / "blurred", seed=3, count=drift.RECENT_FRAMES - 200,
                            change=lambda frame: cv2.GaussianBlur(frame, (0, 0), 1.5))
    assert cli_main(["watch", str(blurred), "--once", "--log", str(db), "--manifest", str(manifest)]) == 0
    capsys.readouterr()
    assert cli_main(history) == 1
    summary = json.loads(capsys.readouterr().out)
    report, image = summary["drift"], summary["image_drift"]
    assert report["status"] == "low" and report["profile"] == "neu-steel" and report["share_below_p10"] > drift.DRIFT_SHARE
    assert image["status"] == "high" and image["share_above_p90"] > drift.DRIFT_SHARE  # smoother pictures
    assert summary["brightness_drift"]["status"] == "ok"  # a blur leaves the lamp's light as it was
    assert cli_main(history[:-1]) == 1
    text = capsys.readouterr().out
    assert "score drift:  LOW: Scores have fallen" in text and "image drift:  HIGH: Pictures are smoother" in text

    status = tmp_path / "line.prom"  # the next start of the line reads the same log: the monitoring hears of it
    one = _write_frames(tmp_path / "one", seed=4, count=1)
    assert cli_main(["watch", str(one), "--once", "--log", str(db), "--manifest", str(manifest),
                     "--status-file", str(status)]) == 0
    assert "[watch] image drift: HIGH: Pictures are smoother" in capsys.readouterr().err
    assert 'check="image"} 1' in status.read_text() and 'check="score"} 1' in status.read_text()


def _frames(count: int, correlation: float, seed: int, start: float) -> list:
    rng = np.random.default_rng(seed)
    return [Record(source="camera:0", frame_id=f"{seed}-{i}", verdict="ok", score=float(rng.lognormal(0.5, 0.1)),
                   profile="p", captured_at=start + i, neighbour_correlation=float(rng.normal(correlation, 0.02)),
                   mean_grey=float(rng.normal(0.40, 0.03)))
            for i in range(count)]


def test_watch_reports_a_check_when_it_turns_to_drift_and_when_it_clears(tmp_path):
    from edge_runtime.capture.drift_watch import DriftWatch

    rng = np.random.default_rng(0)
    thresholds = {"score_baseline": Baseline.from_values(rng.lognormal(0.5, 0.1, 300), measured_at=0.0).to_dict(),
                  "image_baseline": Baseline.from_values(rng.normal(0.90, 0.02, 300), measured_at=0.0).to_dict(),
                  "brightness_baseline": Baseline.from_values(rng.normal(0.40, 0.03, 300), measured_at=0.0).to_dict()}
    reports: list[str] = []
    with SqliteLog(tmp_path / "i.db") as log:
        watch = DriftWatch(log, "p", thresholds, reports.append)
        log.write(_frames(300, 0.90, seed=1, start=1.0))
        watch.check()
        assert reports == [] and watch.latest == {name: {"status": "ok", "drifted": False}
                                                  for name in ("score", "image", "brightness")}
        log.write(_frames(300, 0.95, seed=2, start=400.0))  # the lens slips out of focus
        watch.check()
        watch.check()  # still drifted: said once
        assert len(reports) == 1 and reports[0].startswith("image drift: HIGH: Pictures are smoother")
        assert watch.latest["image"] == {"status": "high", "drifted": True} and not watch.latest["score"]["drifted"]
        log.write(_frames(drift.RECENT_FRAMES, 0.90, seed=3, start=800.0))  # refocused
        checks = watch.check()
        assert reports[1].startswith("image drift cleared: No drift") and checks["image"].status == "ok"


def test_the_watching_thread_checks_at_once_survives_a_failure_and_stops_when_told(tmp_path):
    from edge_runtime.capture.drift_watch import keep_checking

    class Failing:
        calls = 0

        def check(self):
            self.calls += 1
            raise OSError("database is locked")

    done, failures, watch = threading.Event(), [], Failing()
    thread = threading.Thread(target=keep_checking, args=(watch, done, 0.01, failures.append), daemon=True)
    thread.start()
    time.sleep(0.1)
    done.set()
    thread.join(timeout=5)
    assert not thread.is_alive() and watch.calls >= 2 and len(failures) == watch.calls
    assert isinstance(failures[0], OSError)


def test_restoring_the_same_backup_twice_changes_nothing_the_second_time(tmp_path, capsys):
    """The second time the thresholds are the backup's already; only the change log differs, which decides nothing."""
    path = _minimal_manifest(tmp_path / "m.json")
    earlier = tmp_path / "earlier.bak"
    earlier.write_text(path.read_text())
    document = json.loads(path.read_text())
    document["profiles"]["p"]["thresholds"].update(warn=0.5, defect=0.7)
    path.write_text(json.dumps(document))
    assert cli_main(["thresholds", "--manifest", str(path), "--restore", str(earlier), "--reason", "roll back"]) == 0
    capsys.readouterr()
    assert cli_main(["thresholds", "--manifest", str(path), "--restore", str(earlier), "--reason", "again"]) == 2
    assert "nothing to restore" in capsys.readouterr().err


def test_a_backup_that_differs_only_in_the_frame_terms_references_is_restored(tmp_path, capsys):
    """The references are the thresholds' units: a backup with the same thresholds but other references changes the
    verdicts, so it is restored, not refused as 'nothing to restore'."""
    path = _minimal_manifest(tmp_path / "m.json")
    document = json.loads(path.read_text())
    document["profiles"]["p"]["autoencoder"]["score"]["frame_term"]["map_reference"] = 4.0
    (tmp_path / "units.bak").write_text(json.dumps(document))
    assert cli_main(["thresholds", "--manifest", str(path), "--restore", str(tmp_path / "units.bak"),
                     "--reason", "references back"]) == 0
    assert json.loads(path.read_text())["profiles"]["p"]["autoencoder"]["score"]["frame_term"]["map_reference"] == 4.0


def test_check_log_ignores_frames_logged_before_the_baseline(tmp_path):
    t0 = time.time()
    baseline = Baseline.from_values(_normal_scores(300, 1), measured_at=t0)
    old = [Record(source="s", frame_id=f"o{i}", verdict="ok", profile="p", score=float(s), recorded_at=t0 - 100)
           for i, s in enumerate(_normal_scores(300, 2, scale=1.3))]  # the line before it was re-commissioned
    new = [Record(source="s", frame_id=f"n{i}", verdict="ok", profile="p", score=float(s), recorded_at=t0 + 1)
           for i, s in enumerate(_normal_scores(250, 3))]
    with SqliteLog(tmp_path / "i.db") as log:
        log.write(old + new)
        checked = drift.check_log(log, "p", {"score_baseline": baseline.to_dict()})
    assert checked.frames == 250 and checked.status == "ok"


def test_check_log_counts_only_the_named_profiles_frames(tmp_path):
    baseline = Baseline.from_values(_normal_scores(300, 1), measured_at=0.0)
    mine = [Record(source="s", frame_id=f"p{i}", verdict="ok", profile="p", score=float(s))
            for i, s in enumerate(_normal_scores(300, 2))]
    other = [Record(source="s", frame_id=f"q{i}", verdict="ok", profile="q", score=float(s))
             for i, s in enumerate(_normal_scores(300, 3, scale=3.0))]  # another model: other score units
    with SqliteLog(tmp_path / "i.db") as log:
        log.write(mine + other)
        checked = drift.check_log(log, "p", {"score_baseline": baseline.to_dict()})
    assert checked.frames == 300 and checked.status == "ok"


def test_drift_at_exactly_the_limits():
    baseline = Baseline(p10=1.0, p50=5.0, p90=9.0, frames=300, measured_at=0.0)
    values = [10.0] * 40 + [5.0] * 160  # MIN_FRAMES frames, exactly DRIFT_SHARE above p90
    assert len(values) == drift.MIN_FRAMES
    assert check_drift(values, baseline).status == "high"


def test_thresholds_edited_outside_the_change_log_are_named(tmp_path, capsys):
    """An auditor must see when the values in use are not the ones the change log ends with: a manifest edited by hand,
    or a backup with an older log copied over it."""
    from edge_runtime.manifest import unlogged_change

    path = _minimal_manifest(tmp_path / "m.json")
    save_thresholds(path, "p", 1.5, 2.5, reason="trial", changed_by="QE")
    assert cli_main(["thresholds", "--manifest", str(path)]) == 0 and "WARNING" not in capsys.readouterr().out
    document = json.loads(path.read_text())
    document["profiles"]["p"]["thresholds"]["defect"] = 4.5  # by hand
    path.write_text(json.dumps(document))
    assert cli_main(["thresholds", "--manifest", str(path)]) == 0
    assert "WARNING: the thresholds in use (warn 1.5, defect 4.5) are not the last logged change's" in \
        capsys.readouterr().out
    save_thresholds(path, "p", 1.6, 2.6, reason="next", changed_by="QE")  # starts from 4.5: the log has a gap
    assert "the change log has a gap" in unlogged_change(json.loads(path.read_text())["profiles"]["p"]["thresholds"])


def test_a_restore_is_not_called_an_edit_by_hand(tmp_path, capsys):
    path = _minimal_manifest(tmp_path / "m.json")
    shipped = tmp_path / "shipped.bak"
    shipped.write_text(path.read_text())
    save_thresholds(path, "p", 1.5, 2.5, reason="trial", changed_by="QE")
    assert cli_main(["thresholds", "--manifest", str(path), "--restore", str(shipped), "--reason", "trial over"]) == 0
    captured = capsys.readouterr()
    assert "Restored on" in captured.out and "restored from shipped.bak" in captured.out
    assert "Edited by hand" not in captured.out
    assert "a running watch or Live line keeps judging with the thresholds it started with" in captured.err


def test_saves_at_the_same_time_keep_every_change_log_entry(tmp_path):
    """``calibrate --write`` and the Tuning page saving at once: each save reads, changes and writes the whole
    manifest, so without the manifest's lock the later one dropped the earlier one's entry."""
    from concurrent.futures import ProcessPoolExecutor

    path = _minimal_manifest(tmp_path / "m.json")
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_save_many, [(str(path), "A"), (str(path), "B")]))
    changes = json.loads(path.read_text())["profiles"]["p"]["thresholds"]["changes"]
    assert sorted(c["by"] for c in changes) == ["A"] * 12 + ["B"] * 12
    assert len(list(tmp_path.glob("m.json.*.bak"))) == 24 and not list(tmp_path.glob("*.tmp"))


def _save_many(job: tuple[str, str]) -> None:
    path, who = job
    for i in range(12):
        save_thresholds(path, "p", 1.0 + i / 100, 2.0 + i / 100, reason="race", changed_by=who)
