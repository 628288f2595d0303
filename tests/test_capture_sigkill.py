"""Crash safety: SIGKILL the real `watch` command mid-run, restart, nothing lost or repeated."""

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import pytest

from edge_runtime.capture.synthetic import SyntheticStripSource

REPO = Path(__file__).resolve().parents[1]

# `watch` exactly as the CLI runs it, with the model-free inspector patched in.
RUNNER = """
import argparse, sys
from edge_runtime.capture import commands
from edge_runtime.capture.fake_inspector import FakeInspector
commands.build_inspector = lambda args: FakeInspector(delay_s=float(sys.argv[1]))
parser = argparse.ArgumentParser()
parser.add_argument("--manifest"); parser.add_argument("--profile")
commands.register(parser.add_subparsers(dest="command"))
args = parser.parse_args(sys.argv[2:])
sys.exit(args.func(args))
"""


def _watch(delay, *argv):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(delay), "watch", *map(str, argv)], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rows(db):
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT id, frame_id, verdict FROM inspections ORDER BY id").fetchall()
    except sqlite3.OperationalError:
        return []  # table not created yet
    finally:
        conn.close()


def _settled_images(folder, n):
    folder.mkdir()
    old = time.time() - 60
    for frame in SyntheticStripSource(0.3, seed=9, count=n, size=64).frames(threading.Event()):
        path = folder / f"{frame.frame_id}.png"
        cv2.imwrite(str(path), frame.data)
        os.utime(path, (old, old))
    (folder / "zz_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    os.utime(folder / "zz_corrupt.png", (old, old))


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_mid_run_then_restart(tmp_path):
    folder, db, n = tmp_path / "in", tmp_path / "log.db", 120
    _settled_images(folder, n)
    proc = _watch(0.05, folder, "--log", db, "--workers", "2", "--queue", "4", "--once")
    deadline = time.monotonic() + 60
    while len(_rows(db)) < 20:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "watch never logged 20 records"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    before = _rows(db)
    assert 20 <= len(before) < n + 1, "the run was not interrupted mid-way"

    proc = _watch(0.0, folder, "--log", db, "--once")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    after = _rows(db)
    assert after[: len(before)] == before  # every committed record survived unchanged
    ids = [frame_id for _, frame_id, _ in after]
    assert sorted(ids) == sorted({f"{i:08d}.png" for i in range(n)} | {"zz_corrupt.png"})  # each file exactly once
    assert [v for _, f, v in after if f == "zz_corrupt.png"] == ["error"]
    assert {v for _, _, v in after} <= {"ok", "warn", "defect", "error"}
