"""`watch` / `history` commands in-process, with the fake inspector patched in."""

import argparse
import json
import sqlite3
import threading
import time

import cv2
import numpy as np
import pytest

from edge_runtime.capture import commands
from edge_runtime.capture.synthetic import SyntheticStripSource
from edge_runtime.sinks import SqliteLog
from tests.conftest import manifest_file_entries, needs_models


@pytest.fixture
def cli(capture_cli):
    return capture_cli


def test_watch_synthetic_logs_every_frame(cli, tmp_path, capsys):
    db = tmp_path / "i.db"
    assert cli("watch", "synthetic:0.3", "--log", str(db), "--max-frames", "40", "--workers", "2",
               "--save-overlays", str(tmp_path / "ov")) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["captured"] == 40 == summary["inspected"]
    with SqliteLog(db, create=False) as log:
        assert sum(log.counts_by_verdict().values()) == 40
        flagged = log.rows(verdicts=("warn", "defect"))
        assert flagged and all(row["overlay_path"] for row in flagged)


def test_watch_jsonl_prints_records(cli, tmp_path, capsys):
    assert cli("watch", "synthetic", "--log", str(tmp_path / "i.db"), "--max-frames", "5", "--jsonl") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(line["frame_id"] for line in lines) == [f"{i:08d}" for i in range(5)]  # completion order


def test_watch_missing_camera_fails_clearly_and_logs_it(cli, tmp_path, capsys):
    db = tmp_path / "i.db"
    assert cli("watch", "camera:57", "--log", str(db)) == commands.EXIT_SOURCE_FAILED
    assert "camera 57 could not be opened" in capsys.readouterr().err
    with SqliteLog(db, create=False) as log:
        (row,) = log.rows()
        assert row["verdict"] == "source_error" and "CameraUnavailableError" in row["error"]


def test_watch_unknown_source_is_a_usage_error(cli, tmp_path, capsys):
    assert cli("watch", str(tmp_path / "nothing.mp4"), "--log", str(tmp_path / "i.db")) == commands.EXIT_USAGE
    assert "SOURCE not found" in capsys.readouterr().err


def test_watch_missing_models_is_a_usage_error(tmp_path, capsys, monkeypatch):
    def boom(args):
        raise FileNotFoundError("models.manifest.json not found")

    monkeypatch.setattr(commands, "build_inspector", boom)
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["watch", "synthetic", "--log", str(tmp_path / "i.db")])
    args.manifest = args.profile = None
    assert args.func(args) == commands.EXIT_USAGE
    assert "cannot load the inspection models" in capsys.readouterr().err
    assert not (tmp_path / "i.db").exists()


def test_watch_folder_once_then_only_new_files(cli, tmp_path, capsys):
    folder, db = tmp_path / "in", tmp_path / "i.db"
    folder.mkdir()
    frames = list(SyntheticStripSource(0.3, seed=4, count=12).frames(threading.Event()))
    for frame in frames[:8]:
        cv2.imwrite(str(folder / f"{frame.frame_id}.png"), frame.data)
    (folder / "broken.png").write_bytes(b"\x89PNG truncated")
    assert cli("watch", str(folder), "--log", str(db), "--once") == 0
    assert json.loads(capsys.readouterr().out)["captured"] == 9
    for frame in frames[8:]:
        cv2.imwrite(str(folder / f"{frame.frame_id}.png"), frame.data)
    assert cli("watch", str(folder), "--log", str(db), "--once") == 0
    assert json.loads(capsys.readouterr().out)["captured"] == 4
    with SqliteLog(db, create=False) as log:
        rows = log.rows()
        assert len(rows) == 13 and len({r["frame_id"] for r in rows}) == 13
        assert [r["verdict"] for r in rows if r["frame_id"] == "broken.png"] == ["error"]


def test_history_prints_counts_and_rejects(cli, tmp_path, capsys):
    db = str(tmp_path / "i.db")
    cli("watch", "synthetic:0.5", "--log", db, "--max-frames", "30")
    capsys.readouterr()
    assert cli("--profile", "neu-steel", "history", "--db", db, "--last", "3") == 0  # the fake's profile is "fake"
    out = capsys.readouterr().out
    assert "30 records" in out and "per verdict:" in out and "per class:" in out
    assert sum(line.startswith("  ") and " score " in line for line in out.splitlines()) == 3  # the rejects
    assert "score drift:  no_baseline: No score baseline" in out  # the shipped thresholds were not commissioned
    assert cli("--profile", "neu-steel", "history", "--db", db, "--since", "1h", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["total"] == 30 and sum(summary["verdicts"].values()) == 30
    assert all(row["verdict"] == "defect" for row in summary["last_rejects"])


def test_history_names_what_kept_frames_from_being_inspected(cli, tmp_path, capsys):
    """A camera or lighting fault (noise, dark or blank frames) is told apart from unreadable files."""
    import numpy as np

    folder, db = tmp_path / "in", str(tmp_path / "i.db")
    folder.mkdir()
    frames = list(SyntheticStripSource(0.0, seed=1, count=3).frames(threading.Event()))
    for frame in frames:
        cv2.imwrite(str(folder / f"{frame.frame_id}.png"), frame.data)
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(folder / f"noise{i}.png"), rng.integers(30, 220, (120, 160), dtype=np.uint8))
    cv2.imwrite(str(folder / "capped.png"), np.zeros((120, 160), np.uint8))
    (folder / "broken.png").write_bytes(b"\x89PNG truncated")
    cli("watch", str(folder), "--log", db, "--once")
    capsys.readouterr()
    assert cli("--profile", "neu-steel", "history", "--db", db) == 0
    out = capsys.readouterr().out
    assert "errors:       FrameQualityError 3  ImageDecodeError 1  (FrameQualityError: dark, blank or noise" in out
    assert cli("--profile", "neu-steel", "history", "--db", db, "--json") == 0
    assert json.loads(capsys.readouterr().out)["error_causes"] == {"FrameQualityError": 3, "ImageDecodeError": 1}


def test_review_a_reject_from_history_and_see_it_summed_up(cli, tmp_path, capsys):
    db = str(tmp_path / "i.db")
    cli("watch", "synthetic:0.5", "--log", db, "--max-frames", "30")
    capsys.readouterr()
    assert cli("--profile", "neu-steel", "history", "--db", db, "--last", "2") == 0
    numbers = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("  #")]
    assert len(numbers) == 2
    with SqliteLog(db, create=False) as log:
        passed = log.rows(verdicts=("ok",), limit=1)[0]["id"]
    assert cli("review", "--db", db, numbers[0], "--shows", "good", "--by", "anna", "--note", "water drop") == 0
    assert "shows good, by anna" in capsys.readouterr().out
    assert cli("review", "--db", db, numbers[1].lstrip("#"), "--shows", "defect", "--by", "anna") == 0
    assert cli("review", "--db", db, str(passed), "--shows", "defect", "--by", "ben") == 0
    capsys.readouterr()
    assert cli("--profile", "neu-steel", "history", "--db", db) == 0
    assert ("reviews:      2 flagged frame(s) reviewed: 1 defect(s) confirmed, 1 false alarm(s) (50% of flags "
            "confirmed); 1 passed frame(s) reviewed: 1 missed defect(s)") in capsys.readouterr().out
    assert cli("review", "--db", db, "--list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [row["inspection_id"] for row in listed] == sorted((row["inspection_id"] for row in listed), reverse=True)
    assert {row["note"] for row in listed} == {"water drop", None} and len(listed) == 3
    # a second opinion on the first record: --list shows the newest, --list --all both, oldest first
    assert cli("review", "--db", db, numbers[0], "--shows", "defect", "--by", "ben", "--note", "a pit after all") == 0
    capsys.readouterr()
    assert cli("review", "--db", db, "--list", "--json") == 0
    assert len(json.loads(capsys.readouterr().out)) == 3
    assert cli("review", "--db", db, "--list", "--all", "--json") == 0
    every = json.loads(capsys.readouterr().out)
    first = [row for row in every if row["inspection_id"] == int(numbers[0].lstrip("#"))]
    assert len(every) == 4 and [(row["reviewer"], row["note"]) for row in first] == [
        ("anna", "water drop"), ("ben", "a pit after all")]
    assert cli("review", "--db", db, numbers[0], "--all") == 2 and "--all goes with --list" in capsys.readouterr().err


def test_saved_frames_reviewed_and_exported_as_class_folders(cli, tmp_path, capsys):
    """watch --save-frames keeps the flagged frames as captured (and a sample of passed ones); the reviewed ones
    export into the class-folder layout that training and calibrate read, what they show deciding the folder."""
    from edge_runtime.datasets import load_class_folders

    db, frames, out = str(tmp_path / "i.db"), tmp_path / "frames", tmp_path / "reviewed"
    assert cli("watch", "synthetic:0.3", "--log", db, "--max-frames", "40", "--save-frames", str(frames),
               "--sample-passed", "5") == 0
    assert json.loads(capsys.readouterr().out)["frame_save_errors"] == 0
    with SqliteLog(db, create=False) as log:
        rows = log.rows()
    flagged = [r for r in rows if r["verdict"] in ("warn", "defect")]
    passed = [r for r in rows if r["verdict"] == "ok"]
    assert flagged and all(r["frame_path"] for r in flagged)
    assert sum(bool(r["frame_path"]) for r in passed) == len(passed) // 5
    saved = cv2.imread(flagged[0]["frame_path"], cv2.IMREAD_UNCHANGED)
    assert saved is not None and saved.dtype == np.uint8 and saved.ndim == 2  # the synthetic strip as captured
    sampled = next(r for r in passed if r["frame_path"])
    for row, shows, extra in ((flagged[0], "good", []), (flagged[1], "defect", ["--class", "Rolled-in scale"]),
                              (flagged[2], "defect", []), (sampled, "defect", ["--class", "../../etc"])):
        assert cli("review", "--db", db, str(row["id"]), "--shows", shows, "--by", "anna", *extra) == 0
    without_frame = next(r for r in passed if not r["frame_path"])
    assert cli("review", "--db", db, str(without_frame["id"]), "--shows", "good", "--by", "anna") == 0
    capsys.readouterr()
    assert cli("review", "--db", db, "--export", str(out), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {"copied": 4, "without_frame": 1, "missing": 0,
                      "folders": {"good": 1, "Rolled-in_scale": 1, "unnamed_defect": 1, "etc": 1}}
    assert sorted(p.relative_to(out).parts[0] for p in out.rglob("*.png")) == sorted(report["folders"])
    assert {s.label for s in load_class_folders(out, "good", min_classes=1)} == {None, "Rolled-in_scale", "unnamed_defect", "etc"}
    assert cli("watch", "synthetic", "--log", db, "--max-frames", "2", "--sample-passed", "5") == commands.EXIT_USAGE
    assert "--save-frames" in capsys.readouterr().err


def test_review_errors(cli, tmp_path, capsys):
    db = str(tmp_path / "i.db")
    assert cli("review", "--db", db, "1", "--shows", "good", "--by", "anna") == commands.EXIT_USAGE
    assert "no inspection log" in capsys.readouterr().err
    cli("watch", "synthetic:0.5", "--log", db, "--max-frames", "3")
    capsys.readouterr()
    assert cli("review", "--db", db, "1", "--shows", "good") == commands.EXIT_USAGE  # who looked?
    assert "--by" in capsys.readouterr().err
    assert cli("review", "--db", db, "999", "--shows", "good", "--by", "anna") == commands.EXIT_USAGE
    assert "no record 999" in capsys.readouterr().err
    assert cli("review", "--db", db, "1", "--shows", "good", "--class", "patches", "--by", "anna") == commands.EXIT_USAGE
    assert "only goes with a frame that shows a defect" in capsys.readouterr().err
    assert cli("review", "--db", db, "--list", "1") == commands.EXIT_USAGE


def test_history_errors(cli, tmp_path, capsys):
    assert cli("history", "--db", str(tmp_path / "none.db")) == commands.EXIT_USAGE
    assert "no inspection log" in capsys.readouterr().err
    SqliteLog(tmp_path / "i.db").close()
    assert cli("history", "--db", str(tmp_path / "i.db"), "--since", "someday") == commands.EXIT_USAGE
    assert "cannot read time" in capsys.readouterr().err


def test_a_reviewed_class_is_spelled_as_the_records_profile_spells_it(tmp_path, capsys):
    """A misspelt class would skew the class agreement and become a class folder of its own in --export."""
    from edge_runtime.cli import main as cli_main
    from edge_runtime.sinks import Record

    db = tmp_path / "log.db"
    with SqliteLog(db) as log:
        log.write([Record("cam", "1", "defect", score=5.0, defect_class="scratches", profile="neu-steel")])
    review = ["review", "--db", str(db), "1", "--shows", "defect", "--by", "A. Novak", "--json"]
    assert cli_main([*review, "--class", "Scratches "]) == 0
    assert json.loads(capsys.readouterr().out)["reviewed_class"] == "scratches"
    assert cli_main([*review, "--class", "crazzing"]) == commands.EXIT_USAGE
    assert "'crazzing' is not a class of profile neu-steel: crazing, inclusion" in capsys.readouterr().err


def test_history_checks_drift_for_the_profile_the_log_was_inspected_with(tmp_path):
    """The cron line names no profile: a magnetic-tile line must not be checked against neu-steel's baselines."""
    from edge_runtime.sinks import Record
    from tests.conftest import MANIFEST

    with SqliteLog(tmp_path / "tile.db") as log:
        log.write([Record("cam", f"{i}", "ok", score=1.0, profile="magnetic-tile") for i in range(3)])
        assert {reading["profile"] for reading in commands.profile_drifts(log, MANIFEST, None).values()} == {
            "magnetic-tile"}
        log.write([Record("cam", "x", "ok", score=1.0, profile="neu-steel")])
        readings = commands.profile_drifts(log, MANIFEST, None)
        assert all(r["status"] == "needs_profile" and "name one with --profile" in r["message"] for r in readings.values())
        assert {r["profile"] for r in commands.profile_drifts(log, MANIFEST, "neu-steel").values()} == {"neu-steel"}


def test_history_reads_the_profile_of_the_window_and_fails_a_cron_line_that_cannot_tell(tmp_path, capsys):
    """After a product changeover the log holds two profiles: --since 24h sees only today's; a window that holds
    both, with no --profile, is a usage error (exit 2), not a quiet pass."""
    from edge_runtime.cli import main as cli_main
    from edge_runtime.sinks import Record

    db = tmp_path / "log.db"
    now = time.time()
    with SqliteLog(db) as log:
        log.write([Record("cam", f"t{i}", "ok", score=1.0, profile="magnetic-tile", captured_at=now - 10 * 86400)
                   for i in range(3)])
        log.write([Record("cam", f"n{i}", "ok", score=1.0, profile="neu-steel") for i in range(3)])
    with sqlite3.connect(db) as connection:  # written ten days ago
        connection.execute("UPDATE inspections SET recorded_at = ? WHERE profile = 'magnetic-tile'", (now - 10 * 86400,))
    assert cli_main(["history", "--db", str(db), "--since", "24h", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["drift"]["profile"] == "neu-steel"
    assert cli_main(["history", "--db", str(db)]) == commands.EXIT_USAGE
    assert "holds frames of the profiles magnetic-tile, neu-steel; name one with --profile" in capsys.readouterr().out
    assert cli_main(["history", "--db", str(db), "--profile", "neu_steel"]) == commands.EXIT_USAGE  # no check ran
    assert "profile 'neu_steel' is not in the manifest" in capsys.readouterr().out


def test_history_of_a_quiet_window_checks_the_profile_the_line_last_ran(tmp_path, capsys):
    from edge_runtime.cli import main as cli_main
    from edge_runtime.sinks import Record

    db = tmp_path / "log.db"
    with SqliteLog(db) as log:
        log.write([Record("cam", "t", "ok", score=1.0, profile="magnetic-tile")])
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE inspections SET recorded_at = ?", (time.time() - 3 * 86400,))
    assert cli_main(["history", "--db", str(db), "--since", "24h", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["drift"]["profile"] == "magnetic-tile"


@pytest.mark.parametrize("command", [["history"], ["prune", "--older-than", "1d"], ["review", "--list"]])
def test_a_damaged_log_is_a_usage_error_that_names_it(cli, tmp_path, capsys, command):
    """Exit 2, not a traceback: `history`'s exit 1 means drift to cron, and systemd does not restart on 2."""
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    assert cli(*command[:1], "--db", str(damaged), *command[1:]) == commands.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"cannot open the inspection log {damaged}" in err and "not a database" in err


def test_watch_on_a_log_it_cannot_open_is_a_usage_error(cli, tmp_path, capsys):
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"not sqlite" * 500)
    for log in (damaged, tmp_path):  # a damaged file; a folder
        assert cli("watch", "synthetic", "--log", str(log), "--max-frames", "2") == commands.EXIT_USAGE
        assert "cannot open the inspection log" in capsys.readouterr().err


def test_watch_status_file_shows_the_loop_running_then_stopped(cli, tmp_path, capsys):
    """For the plant's monitoring: rewritten while the loop runs, "stopped" with the final counts after."""
    status, seen = tmp_path / "status" / "watch.json", []
    run = threading.Thread(target=cli, args=("watch", "synthetic:0.2", "--log", str(tmp_path / "i.db"), "--fps", "20",
                                             "--duration", "3", "--status-file", str(status)), daemon=True)
    run.start()
    while run.is_alive():
        if status.exists():
            seen.append(json.loads(status.read_text()))
        run.join(0.2)
    final = json.loads(status.read_text())
    assert any(s["state"] == "running" and s["captured"] > 0 for s in seen)
    assert final["state"] == "stopped" and final["captured"] == final["inspected"] > 0
    assert final["source"].startswith("synthetic") and final["last_capture_at"] >= final["started_at"]
    assert not list(status.parent.glob("*.tmp"))  # replaced atomically


def test_status_file_keeps_the_last_capture_time_while_nothing_is_captured(tmp_path, monkeypatch):
    from edge_runtime.capture import status as status_module

    clock = iter([100.0, 100.0, 101.0, 160.0, 220.0])
    monkeypatch.setattr(status_module.time, "time", lambda: next(clock))
    out = status_module.StatusFile(tmp_path / "s.json", "camera:0", "neu-steel")  # started at 100
    for captured in (5, 5, 5):
        out.write({"captured": captured}, 0.0)
    written = json.loads((tmp_path / "s.json").read_text())
    assert (written["last_capture_at"], written["updated_at"]) == (101.0, 220.0)  # a stalled camera shows


def test_status_file_ending_in_prom_is_read_by_the_prometheus_parser(tmp_path):
    """The textfile collector's format, checked with the Prometheus client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    from edge_runtime.capture.status import StatusFile

    out = StatusFile(tmp_path / "steel.prom", 'camera:"0"', "neu-steel")
    out.write({"captured": 12, "inspected": 10, "errored": 1, "dropped": 1, "queue_depth": 0,
               "verdicts": {"ok": 8, "warn": 1, "defect": 1}, "source_errors": 0, "sink_errors": 2}, 9.5)
    samples = {(s.name, s.labels.get("verdict")): s for family in
               text_string_to_metric_families((tmp_path / "steel.prom").read_text()) for s in family.samples}
    assert samples[("steel_inspect_up", None)].value == 1
    assert samples[("steel_inspect_captured_frames_total", None)].value == 12
    assert samples[("steel_inspect_sink_errors_total", None)].value == 2
    assert samples[("steel_inspect_verdicts_total", "defect")].value == 1
    assert samples[("steel_inspect_last_capture_timestamp_seconds", None)].value > 1.7e9  # not rounded to %g
    assert samples[("steel_inspect_up", None)].labels == {"source": 'camera:"0"', "profile": "neu-steel"}
    out.write({"captured": 12}, 0.0, "stopped")
    stopped = (tmp_path / "steel.prom").read_text()
    assert 'steel_inspect_up{source="camera:\\"0\\"",profile="neu-steel"} 0.0' in stopped
    out.write({"captured": 12, "drift": {"score": {"status": "ok", "drifted": False},
                                         "image": {"status": "high", "drifted": True}}}, 0.0)
    drifted = {s.labels["check"]: s.value for family in text_string_to_metric_families((tmp_path / "steel.prom").read_text())
               for s in family.samples if s.name == "steel_inspect_drifted"}
    assert drifted == {"score": 0, "image": 1}


def test_watch_refuses_a_status_file_it_cannot_write(cli, tmp_path, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    assert cli("watch", "synthetic", "--log", str(tmp_path / "i.db"), "--max-frames", "1",
               "--status-file", str(blocker / "watch.json")) == commands.EXIT_USAGE
    assert "not-a-folder" in capsys.readouterr().err


def test_watch_and_record_run_the_inspector_with_the_threads_asked_for(monkeypatch):
    from edge_runtime.inspector import Inspector

    asked = []
    monkeypatch.setattr(Inspector, "from_manifest", classmethod(lambda cls, *args: asked.append(args)))
    commands.build_inspector(argparse.Namespace(manifest=None, profile="neu-steel", threads=2))
    assert asked == [(None, "neu-steel", 2)]


def test_watch_exits_4_when_the_log_loses_records(capture_cli, tmp_path, capsys, monkeypatch):
    def broken(self, records):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(SqliteLog, "write", broken)
    code = capture_cli("watch", "synthetic", "--log", str(tmp_path / "i.db"), "--max-frames", "5")
    assert code == commands.EXIT_RECORDS_LOST
    assert "could not be written" in capsys.readouterr().err


def test_watch_passes_drop_oldest_to_the_loop(capture_cli, tmp_path, monkeypatch, capsys):
    seen = []
    real = commands.InspectionLoop

    def recording(source, inspector, sinks, config):
        seen.append(config)
        return real(source, inspector, sinks, config)

    monkeypatch.setattr(commands, "InspectionLoop", recording)
    assert capture_cli("watch", "synthetic", "--log", str(tmp_path / "i.db"), "--max-frames", "3", "--drop-oldest") == 0
    assert seen[0].drop_oldest is True


def test_watch_names_thresholds_the_change_log_does_not_account_for(capsys):
    from types import SimpleNamespace

    entry = {"thresholds": {"warn": 1.0, "defect": 4.5,
                            "changes": [{"at": "t", "warn": 1.0, "defect": 2.0, "previous_warn": 1.0, "previous_defect": 3.0}]}}
    commands._warn_of_unlogged_thresholds(SimpleNamespace(config=SimpleNamespace(raw=entry)))
    assert "[watch] WARNING: the thresholds in use (warn 1.0, defect 4.5)" in capsys.readouterr().err
    entry["thresholds"]["defect"] = 2.0
    commands._warn_of_unlogged_thresholds(SimpleNamespace(config=SimpleNamespace(raw=entry)))
    assert capsys.readouterr().err == ""


def test_history_says_when_its_counts_mix_verdicts_of_several_thresholds(cli, tmp_path, capsys):
    """A threshold change in the window: the verdict counts add up frames judged at different thresholds, and an
    auditor must see which were judged by which."""
    from edge_runtime.sinks import Record

    db = tmp_path / "i.db"
    models = {"autoencoder": "a" * 64, "classifier": "b" * 64}
    start = time.time() - 600
    with SqliteLog(db) as log:
        log.write([Record("cam", str(i), "defect" if i % 3 == 0 else "ok", recorded_at=start + i, score=1.0,
                          warn_threshold=2.0, defect_threshold=3.0 if i < 6 else 2.5, profile="neu-steel",
                          model_sha256=models) for i in range(10)]
                  + [Record("cam", "lost", "error", recorded_at=start + 20, error="ImageDecodeError: x")])
    cli("--profile", "neu-steel", "history", "--db", str(db))  # its exit code is the drift check's (no baseline here)
    out = capsys.readouterr().out
    assert "judged by 2 settings (the counts above mix them):" in out
    assert "warn 2  defect 3  models autoencoder aaaaaaaaaaaa, classifier bbbbbbbbbbbb:  defect 2  ok 4" in out
    assert "warn 2  defect 2.5  models autoencoder aaaaaaaaaaaa, classifier bbbbbbbbbbbb:  defect 2  ok 2" in out
    cli("--profile", "neu-steel", "history", "--db", str(db), "--json")
    judged = json.loads(capsys.readouterr().out)["judged_by"]
    assert [(j["defect"], j["verdicts"]) for j in judged] == [(3.0, {"defect": 2, "ok": 4}), (2.5, {"defect": 2, "ok": 2})]


def test_a_second_loop_on_the_same_folder_is_refused(cli, tmp_path, capsys):
    """Two loops on one folder would each inspect and reject every file: the second one does not start."""
    from edge_runtime.capture.source_claim import SourceBusyError, claim_source
    from edge_runtime.capture.sources import FolderWatcher
    from edge_runtime.capture.synthetic import SyntheticStripSource

    folder = tmp_path / "in"
    folder.mkdir()
    claim = claim_source(FolderWatcher(folder))
    try:
        with pytest.raises(SourceBusyError, match="already inspected by another capture loop on this PC \\(pid "):
            claim_source(FolderWatcher(folder / "."))
        assert cli("watch", str(folder), "--once", "--log", str(tmp_path / "i.db")) == 2
        assert "already inspected by another capture loop" in capsys.readouterr().err
        assert claim_source(SyntheticStripSource()) is None  # the synthetic strip may feed any number of loops
    finally:
        claim.release()
    assert cli("watch", str(folder), "--once", "--log", str(tmp_path / "i.db")) == 0  # free again
    claim_source(FolderWatcher(folder)).release()  # and watch let go of it when it ended


@needs_models
def test_each_watch_notes_its_run_and_what_judged_it(tmp_path, capsys):
    """An auditor asks which software, manifest, thresholds and model files judged a frame, and whether the self-test
    ran: each run of watch is a row of the log's ``runs``, with its counts when it stopped."""
    import hashlib

    from edge_runtime.cli import main as cli_main
    from edge_runtime.manifest import default_manifest_path

    def cli(*args):
        return cli_main(list(args))

    db = str(tmp_path / "i.db")
    assert cli("watch", "synthetic:0", "--log", db, "--max-frames", "4") == 0
    assert cli("watch", "synthetic:0", "--log", db, "--max-frames", "3", "--skip-selftest") == 0
    capsys.readouterr()
    with SqliteLog(db, create=False) as log:
        later, first = log.runs()
    manifest = default_manifest_path()
    assert (first["settings"]["selftest"], later["settings"]["selftest"]) == ("passed", "skipped")
    assert first["settings"]["manifest_sha256"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert set(first["settings"]["models"]) == {"autoencoder", "classifier", "classifier_head"}
    assert first["settings"]["profile"] == "neu-steel" and first["settings"]["options"]["max_frames"] == 4
    assert first["summary"]["captured"] == 4 and later["summary"]["captured"] == 3
    assert first["stopped_at"] >= first["started_at"]
    cli("history", "--db", db)
    out = capsys.readouterr().out
    assert "runs:         2 capture loop(s) started" in out and "self-test skipped" in out
    no_golden = json.loads(default_manifest_path().read_text())
    del no_golden["profiles"]["neu-steel"]["golden"]  # as right after a re-export: nothing for the self-test to check
    for entry in manifest_file_entries(no_golden["profiles"]):
        entry["path"] = str((default_manifest_path().parent / entry["path"]).resolve())
    (tmp_path / "m.json").write_text(json.dumps(no_golden))
    assert cli("watch", "synthetic:0", "--manifest", str(tmp_path / "m.json"), "--log", db, "--max-frames", "2") == 0
    with SqliteLog(db, create=False) as log:
        assert log.runs()[0]["settings"]["selftest"] == "no golden frames"  # not "passed"


def test_history_warns_of_records_stamped_in_the_future(cli, tmp_path, capsys):
    """Written while the clock ran a day ahead, then corrected: every --since window holds them, so history says so."""
    from edge_runtime.sinks import Record

    db = tmp_path / "i.db"
    with SqliteLog(db) as log:
        log.write([Record("camera:0", f"a{i}", "ok", profile="fake", recorded_at=time.time() + 86_400 + i)
                   for i in range(4)] + [Record("camera:0", "now", "ok", profile="fake")])
    assert cli("history", "--db", str(db), "--since", "1h") in (0, 2)
    out = capsys.readouterr().out
    assert "5 records since 1h" in out and "WARNING: 4 record(s) stamped in the future" in out
    cli("history", "--db", str(db), "--json")
    assert json.loads(capsys.readouterr().out)["stamped_ahead"]["records"] == 4
