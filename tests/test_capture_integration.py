"""Capture loop + SQLite log with the real ONNX Inspector and the real CLI."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edge_runtime.capture.loop import InspectionLoop, LoopConfig
from edge_runtime.capture.synthetic import SyntheticStripSource
from edge_runtime.inspector import Inspector
from edge_runtime.sinks import SqliteLog
from tests.conftest import needs_models

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, needs_models]


@pytest.fixture(scope="module")
def inspector():
    return Inspector.from_manifest(None, None)


def test_real_inspector_exact_accounting_and_provenance(inspector, tmp_path):
    source = SyntheticStripSource(0.3, seed=11, count=80, corrupt_rate=0.1, encoding="png")
    corrupt = sum(f.meta["label"] == "corrupt" for f in
                  SyntheticStripSource(0.3, seed=11, count=80, corrupt_rate=0.1, encoding="png").frames(threading.Event()))
    log = SqliteLog(tmp_path / "log.db")
    snap = InspectionLoop(source, inspector, [log], LoopConfig(workers=2, overlay_dir=tmp_path / "ov")).run(
        handle_signals=False)
    assert snap["captured"] == 80 == snap["inspected"] + snap["errored"] and snap["errored"] == corrupt
    counts = log.counts_by_verdict()
    assert sum(counts.values()) == 80 and counts.get("error", 0) == corrupt
    rows = log.rows(verdicts=("ok", "warn", "defect"))
    assert all(r["model_sha256"] == dict(inspector.model_sha256) for r in rows)
    assert all(r["defect_threshold"] == pytest.approx(inspector.thresholds.defect) for r in rows)
    assert all(r["profile"] == inspector.profile for r in rows)
    flagged = [r for r in rows if r["verdict"] != "ok"]
    assert all(r["overlay_path"] and Path(r["overlay_path"]).is_file() for r in flagged)
    assert flagged and all(r["defect_class"] in inspector.class_names for r in flagged)  # every flagged frame classified
    log.close()


def _cli(*argv, timeout=300):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "edge_runtime", *map(str, argv)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_watch_and_history(inspector, tmp_path):
    db = tmp_path / "i.db"
    done = _cli("watch", "synthetic:0.3", "--log", db, "--max-frames", "20", "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "self-test passed (4 golden frames)" in done.stderr  # before the first frame
    assert json.loads(done.stdout.strip().splitlines()[-1])["captured"] == 20
    history = _cli("history", "--db", db, "--json")
    assert history.returncode == 0, history.stderr
    assert json.loads(history.stdout)["total"] == 20


def test_watch_refuses_to_start_on_a_pc_that_does_not_compute_what_the_export_computed(tmp_path):
    from tests.conftest import editable_manifest

    path = editable_manifest(tmp_path)
    manifest = json.loads(path.read_text())
    manifest["profiles"]["neu-steel"]["golden"]["frames"][2]["anomaly_score"] *= 0.98
    path.write_text(json.dumps(manifest))
    db = tmp_path / "i.db"
    refused = _cli("watch", "synthetic:0.3", "--log", db, "--max-frames", "5", "--manifest", path)
    assert refused.returncode == 2 and "golden frame(s) patch no longer score" in refused.stderr
    assert not db.exists()  # nothing was captured or logged
    forced = _cli("watch", "synthetic:0.3", "--log", db, "--max-frames", "5", "--manifest", path, "--skip-selftest")
    assert forced.returncode == 0, forced.stderr
