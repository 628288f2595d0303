"""``watch --reject-command``: the ejector / PLC hook as a command, one run per reject, record JSON on stdin."""

from __future__ import annotations

import json
import shlex
import sys
import threading

import cv2
import pytest

from edge_runtime.capture import commands
from edge_runtime.capture.synthetic import SyntheticStripSource
from edge_runtime.sinks import CallbackSink, Record, SqliteLog
from edge_runtime.sinks.callback import CommandHook, RejectHookError, verdict_predicate

# Appends its stdin (one record) as a line to the file named by its argument; exits 3 for frame "fail".
HOOK = """
import json, sys
record = json.load(sys.stdin)
if record["frame_id"] == "fail":
    sys.exit("ejector not ready")
with open(sys.argv[1], "a") as out:
    out.write(json.dumps(record) + "\\n")
"""


@pytest.fixture
def cli(capture_cli):
    return capture_cli


@pytest.fixture
def hook(tmp_path):
    script = tmp_path / "hook.py"
    script.write_text(HOOK)
    fired = tmp_path / "fired.jsonl"
    return [sys.executable, str(script), str(fired)], fired


def _fired(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_the_command_gets_each_reject_as_json_and_a_failing_run_is_reported(hook):
    command, fired = hook
    sink = CallbackSink(CommandHook(command), verdict_predicate(["defect"]))
    records = [Record("camera:0", "a", "defect", score=3.0, defect_class="scratches"),
               Record("camera:0", "b", "ok", score=1.0),
               Record("camera:0", "fail", "defect", score=4.0),
               Record("camera:0", "c", "defect", score=5.0)]
    with pytest.raises(RejectHookError, match="failed for 1 record.*frame fail.*status 1.*ejector not ready") as raised:
        sink.write(records)
    assert [record.frame_id for record, _ in raised.value.failures] == ["fail"]
    assert [(r["frame_id"], r["defect_class"]) for r in _fired(fired)] == [("a", "scratches"), ("c", None)]
    assert (sink.calls, sink.failed) == (3, 1)  # the reject after the failing one still fired
    assert all(record.error is None for record in records)  # the loop notes the failure for the sinks after


def test_a_command_that_hangs_is_a_failure_not_a_stalled_line(tmp_path):
    hook = CommandHook([sys.executable, "-c", "import time; time.sleep(5)"], timeout_s=0.3)
    with pytest.raises(RuntimeError, match="did not finish within 0.3 s"):
        hook(Record("camera:0", "a", "defect"))


def test_what_the_hook_needs_is_checked_before_the_line_starts():
    with pytest.raises(ValueError, match="not found"):
        CommandHook(["no-such-ejector-tool-xyz"])
    with pytest.raises(ValueError, match="empty"):
        CommandHook([])
    with pytest.raises(ValueError, match="among defect, warn, error, dropped"):
        verdict_predicate(["ok"])
    fail_safe = verdict_predicate(["defect", "error", "dropped"])
    assert [fail_safe(Record("s", "f", v)) for v in ("ok", "warn", "defect", "error", "dropped")] == \
        [False, False, True, True, True]


def test_watch_fires_the_command_for_every_defect_and_unreadable_frame(cli, tmp_path, hook, capsys):
    """A fail-safe line (``--reject-on defect,error``): the frames the log holds as defect or error are
    exactly the ones the command was run for."""
    command, fired = hook
    folder, db = tmp_path / "in", tmp_path / "i.db"
    folder.mkdir()
    for frame in SyntheticStripSource(0.5, seed=3, count=16).frames(threading.Event()):
        cv2.imwrite(str(folder / f"{frame.frame_id}.png"), frame.data)
    (folder / "broken.png").write_bytes(b"\x89PNG truncated")
    assert cli("watch", str(folder), "--log", str(db), "--once", "--reject-command", shlex.join(command),
               "--reject-on", "defect,error") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["captured"] == 17
    with SqliteLog(db, create=False) as log:
        expected = {(r["frame_id"], r["verdict"]) for r in log.rows(verdicts=("defect", "error"))}
    assert ("broken.png", "error") in expected and any(v == "defect" for _, v in expected)
    assert {(r["frame_id"], r["verdict"]) for r in _fired(fired)} == expected


def test_watch_refuses_a_hook_it_cannot_run(cli, tmp_path, capsys):
    db = tmp_path / "i.db"
    assert cli("watch", "synthetic", "--log", str(db), "--max-frames", "1", "--reject-command",
               "no-such-ejector-tool-xyz --fire") == commands.EXIT_USAGE
    assert "reject output: reject command not found" in capsys.readouterr().err
    assert cli("watch", "synthetic", "--log", str(db), "--max-frames", "1", "--reject-command", "true",
               "--reject-on", "defect,ok") == commands.EXIT_USAGE
    assert not db.exists()  # refused before the log is opened


def test_a_reject_the_hook_could_not_fire_is_marked_in_the_log(cli, tmp_path, capsys):
    db = tmp_path / "i.db"
    assert cli("watch", "synthetic:0.5", "--log", str(db), "--max-frames", "20", "--reject-command", "false") == 0
    summary = json.loads(capsys.readouterr().out)
    with SqliteLog(db, create=False) as log:
        defects, others = log.rows(verdicts=("defect",)), log.rows(verdicts=("ok", "warn"))
    assert defects and summary["sink_errors"] == len(defects)
    assert all(row["error"] == "reject hook failed: false exited with status 1: no message" for row in defects)
    assert all(row["error"] is None for row in others)
    assert cli("history", "--db", str(db), "--last", "3") == 1  # a person must look: exit 1, as on drift
    out = capsys.readouterr().out
    assert f"NOT FIRED:    {len(defects)} flagged frame(s) whose reject hook failed" in out
    assert "(reject hook failed: false exited with status 1" in out
    with SqliteLog(db, create=False) as log:
        assert log.unfired_rejects() == len(defects) and log.unfired_rejects(since="0s") == 0


def test_watch_calls_a_python_reject_hook_in_process(cli, tmp_path, monkeypatch, capsys):
    """``--reject-hook MODULE:FUNCTION``: no process per reject; the same records a command would get."""
    (tmp_path / "line_ejector.py").write_text("FIRED = []\n\ndef fire(record):\n    FIRED.append(record.frame_id)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    db = tmp_path / "i.db"
    assert cli("watch", "synthetic:0.5", "--log", str(db), "--max-frames", "30", "--reject-hook", "line_ejector:fire") == 0
    import line_ejector

    with SqliteLog(db, create=False) as log:
        defects = {row["frame_id"] for row in log.rows(verdicts=("defect",))}
    assert defects and set(line_ejector.FIRED) == defects and len(line_ejector.FIRED) == len(defects)
    for bad, message in (("line_ejector", "MODULE:FUNCTION"), ("no_such_module_xyz:fire", "cannot import"),
                         ("line_ejector:missing", "has no function missing")):
        assert cli("watch", "synthetic", "--log", str(db), "--max-frames", "1", "--reject-hook", bad) == commands.EXIT_USAGE
        assert message in capsys.readouterr().err


def test_a_shell_hook_reads_the_record_as_one_line(tmp_path):
    """``read -r`` needs the line's end: without it a ``set -e`` shell hook fails on every reject."""
    out = tmp_path / "line.json"
    script = tmp_path / "hook.sh"
    script.write_text(f"#!/bin/sh\nset -e\nread -r record\nprintf '%s' \"$record\" > {shlex.quote(str(out))}\n")
    script.chmod(0o755)
    CommandHook([str(script)])(Record("camera:0", "a", "defect", score=3.0))
    assert json.loads(out.read_text())["frame_id"] == "a"
