"""The measurement scripts behind README figures still run and say what they measured (tiny runs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import needs_tf

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_soak_accounts_for_every_frame_with_the_fake_inspector():
    out = _run("soak.py", "--frames", "300", "--corrupt-rate", "0.05", "--workers", "2", "--inspector", "fake")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["passed"] is True


def test_bench_prune_deletes_the_old_records_in_batches():
    out = _run("bench_prune.py", "--records", "25000")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert (result["records_deleted"], result["kept"], result["batches"]) == (25_000, 1000, 3)
    assert 0 < result["longest_batch_ms"] <= result["seconds"] * 1000


@pytest.mark.skipif(not (ROOT / "models.manifest.json").is_file(), reason="needs the committed models")
def test_frame_size_cost_measures_a_frame_over_the_limit():
    """2100 x 2100 is over the 2048 x 2048 the runtime accepts: the script lifts the limit to measure it."""
    out = _run("frame_size_cost.py", "--sides", "2100")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert "error" not in result, result
    assert result["side"] == 2100 and result["seconds"] > 0 and result["peak_rss_mb"] > 500


@needs_tf
def test_every_command_module_prints_its_usage_for_help_and_runs_nothing():
    """``python -m X --help`` is how a reader checks a command the docs name: it must print usage and stop, not
    start a study that trains for minutes and rewrites a committed result."""
    modules = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for package in ("training", "export", "studies", "bench", "dashboard")
        for path in (ROOT / package).glob("*.py") if '__name__ == "__main__"' in path.read_text())
    script = ("import contextlib, importlib, io, sys\n"
              "for name in sys.argv[1:]:\n"
              "    with contextlib.redirect_stdout(io.StringIO()) as out:\n"
              "        try:\n"
              "            importlib.import_module(name).main(['--help'])\n"
              "        except SystemExit as stop:\n"
              "            assert stop.code in (0, None), (name, stop.code)\n"
              "        else:\n"
              "            raise AssertionError(f'{name}: --help did not stop')\n"
              "    assert 'usage:' in out.getvalue(), name\n"
              "    print(name, 'ok')\n")
    done = subprocess.run([sys.executable, "-c", script, *modules], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split().count("ok") == len(modules) >= 30


def test_setup_leaves_a_venv_that_has_the_extras_alone_so_an_offline_pc_restarts_the_dashboard(tmp_path):
    import hashlib
    import os
    import shutil

    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").symlink_to(sys.executable)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    (tmp_path / ".venv" / ".steel-setup").write_text(f"{digest}\ndashboard\ndev\ntrain\n")
    # Offline, and no Python to build a venv with: anything but the skip fails.
    env = {**os.environ, "PYTHON": "/nonexistent/python3.11", "PIP_INDEX_URL": "http://127.0.0.1:9/simple"}

    def setup(extras: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(tmp_path / "scripts" / "setup.sh"), extras], capture_output=True,
                              text=True, env=env, timeout=60)

    assert setup("dashboard").returncode == 0 and setup("train,dashboard,dev").returncode == 0
    missing = setup("dashboard,gpu")  # an extra not installed yet: it sets up (and here cannot)
    assert missing.returncode == 2 and "python3.11 not found" in missing.stderr
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + "\n# changed\n")
    assert setup("dashboard").returncode == 2  # another pyproject.toml: set up again
