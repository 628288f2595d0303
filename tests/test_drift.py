"""Score drift: the newest logged scores against the baseline recorded at commissioning."""

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
from edge_runtime.drift import ScoreBaseline, check_drift
from edge_runtime.manifest import save_thresholds
from edge_runtime.sinks import Record, SqliteLog
from tests.conftest import editable_manifest, needs_models


def _normal_scores(n: int, seed: int, scale: float = 1.0) -> np.ndarray:
    return scale * np.random.default_rng(seed).lognormal(0.5, 0.1, n)


def test_baseline_holds_the_percentiles_and_needs_enough_frames():
    scores = np.arange(1.0, 301.0)
    baseline = ScoreBaseline.from_scores(scores, measured_at=5.0)
    assert (baseline.p10, baseline.p50, baseline.p90) == (pytest.approx(30.9), pytest.approx(150.5), pytest.approx(270.1))
    assert baseline.frames == 300 and baseline.measured_at == 5.0
    assert ScoreBaseline.from_manifest({"score_baseline": baseline.to_dict()}) == baseline
    assert ScoreBaseline.from_manifest({"warn": 1.0}) is None
    with pytest.raises(ValueError, match=f"at least {drift.MIN_FRAMES}"):
        ScoreBaseline.from_scores(scores[:150])


def test_unchanged_line_is_ok_and_a_shift_either_way_is_drift():
    baseline = ScoreBaseline.from_scores(_normal_scores(400, seed=1))
    same = check_drift(_normal_scores(500, seed=2), baseline)
    assert same.status == "ok" and not same.drifted
    assert 0.05 < same.share_above_p90 < drift.DRIFT_SHARE and 0.05 < same.share_below_p10 < drift.DRIFT_SHARE
    risen = check_drift(_normal_scores(500, seed=3, scale=1.15), baseline)
    assert risen.status == "high" and risen.drifted and "False alarms will rise" in risen.message
    fallen = check_drift(_normal_scores(500, seed=4, scale=0.85), baseline)
    assert fallen.status == "low" and fallen.drifted and "Defects can stay under the thresholds" in fallen.message


def test_rejects_are_left_out_so_a_run_of_defects_is_not_drift(tmp_path):
    scores = _normal_scores(600, seed=1)
    baseline = ScoreBaseline.from_scores(scores[:300], measured_at=time.time() - 60)
    verdicts = ["defect" if i % 5 == 0 else "ok" for i in range(300)]  # 20% rejects, far above every threshold
    with SqliteLog(tmp_path / "i.db") as log:
        log.write([Record(source="s", frame_id=f"f{i}", verdict=verdict, profile="p",
                          score=float(score) * (3.0 if verdict == "defect" else 1.0))
                   for i, (verdict, score) in enumerate(zip(verdicts, scores[300:]))])
        assert check_drift(log.recent_scores(500, profile="p"), baseline).status == "high"  # counted, they would be
        checked = drift.check_log(log, "p", {"score_baseline": baseline.to_dict()})
    assert checked.status == "ok" and checked.frames == 240


def test_no_baseline_or_too_few_frames_says_so_instead_of_judging():
    baseline = ScoreBaseline.from_scores(_normal_scores(400, seed=1))
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
        assert log.recent_scores(4, profile="neu-steel") == [37.0, 36.0, 35.0, 32.0]  # newest first, no errors
        assert len(log.recent_scores(100, profile="neu-steel")) == 24
        assert log.recent_scores(2) == [47.0, 46.0]
        assert log.recent_scores(100, since=time.time() + 60) == []


def test_commissioning_records_a_baseline_that_hand_edits_keep_and_a_new_commissioning_replaces(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"profiles": {"p": {"thresholds": {"warn": 1.0, "defect": 2.0}}}}))
    first = ScoreBaseline.from_scores(_normal_scores(300, seed=1)).to_dict()
    save_thresholds(path, "p", 1.5, 2.5, commissioned={"frames": 300}, score_baseline=first)
    assert json.loads(path.read_text())["profiles"]["p"]["thresholds"]["score_baseline"] == first
    save_thresholds(path, "p", 1.4, 2.5)  # moved by hand: the scores are the same, so is their baseline
    assert json.loads(path.read_text())["profiles"]["p"]["thresholds"]["score_baseline"] == first
    save_thresholds(path, "p", 1.5, 2.5, commissioned={"frames": 120})  # too few frames for a new baseline
    assert "score_baseline" not in json.loads(path.read_text())["profiles"]["p"]["thresholds"]


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
    baseline = ScoreBaseline.from_scores(_normal_scores(300, seed=1)).to_dict()
    commissioned = save_thresholds(path, "p", 1.5, 2.5, commissioned={"frames": 300}, score_baseline=baseline,
                                   frame_term=FrameTerm(3.0, 0.7, 2.0), reason="line start")
    trial = save_thresholds(path, "p", 1.2, 2.2, reason="trial")  # its backup holds the commissioned values
    assert trial != commissioned
    code = cli_main(["thresholds", "--manifest", str(path), "--restore", str(trial), "--reason", "trial over",
                     "--by", "J. Q.", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and (report["warn"], report["defect"], report["commissioned"]) == (1.5, 2.5, True)
    entry = json.loads(path.read_text())["profiles"]["p"]
    assert entry["thresholds"]["score_baseline"] == baseline and entry["thresholds"]["commissioned"]["frames"] == 300
    assert entry["autoencoder"]["score"]["frame_term"]["map_reference"] == 3.0  # the thresholds' units come back too
    last = report["changes"][0]
    assert (last["how"], last["reason"], last["by"]) == (f"restored from {trial.name}", "trial over", "J. Q.")
    assert (last["previous_warn"], last["warn"]) == (1.2, 1.5) and len(report["changes"]) == 3


def test_thresholds_of_other_models_are_not_restored(tmp_path, capsys):
    path = _minimal_manifest(tmp_path / "m.json")
    other = _minimal_manifest(tmp_path / "other.json", 0.1, 0.2, gate_sha="c" * 64)
    before = path.read_text()
    assert cli_main(["thresholds", "--manifest", str(path), "--restore", str(other)]) == 2
    assert "describes another autoencoder" in capsys.readouterr().err and path.read_text() == before
    assert cli_main(["thresholds", "--manifest", str(path), "--restore", str(tmp_path / "missing.bak")]) == 2
    assert "not found" in capsys.readouterr().err and path.read_text() == before


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
    assert cli_main(["calibrate", str(good), "--manifest", str(manifest), "--write", "--json"]) == 0
    baseline = json.loads(manifest.read_text())["profiles"]["neu-steel"]["thresholds"]["score_baseline"]
    thresholds = json.loads(manifest.read_text())["profiles"]["neu-steel"]["thresholds"]
    assert drift.MIN_FRAMES <= baseline["frames"] < drift.MIN_FRAMES + 20  # the frames under the new defect threshold
    assert baseline["p10"] < baseline["p50"] < baseline["p90"] < thresholds["defect"]
    assert json.loads(capsys.readouterr().out)["score_baseline"] == baseline
    db = tmp_path / "inspections.db"
    history = ["history", "--db", str(db), "--manifest", str(manifest), "--json"]

    line = _write_frames(tmp_path / "line", seed=2, count=drift.MIN_FRAMES + 40)  # a few may be rejects
    assert cli_main(["watch", str(line), "--once", "--log", str(db), "--manifest", str(manifest)]) == 0
    capsys.readouterr()
    assert cli_main(history) == 0
    assert json.loads(capsys.readouterr().out)["drift"]["status"] == "ok"

    blurred = _write_frames(tmp_path / "blurred", seed=3, count=drift.RECENT_FRAMES - 200,
                            change=lambda frame: cv2.GaussianBlur(frame, (0, 0), 1.5))
    assert cli_main(["watch", str(blurred), "--once", "--log", str(db), "--manifest", str(manifest)]) == 0
    capsys.readouterr()
    assert cli_main(history) == 1
    report = json.loads(capsys.readouterr().out)["drift"]
    assert report["status"] == "low" and report["profile"] == "neu-steel" and report["share_below_p10"] > drift.DRIFT_SHARE
    assert cli_main(history[:-1]) == 1
    assert "score drift:  LOW: Scores have fallen" in capsys.readouterr().out
