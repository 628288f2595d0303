"""A line-side install (`pip install .`, no extras) has no TensorFlow and still inspects."""

import json
import shutil
from pathlib import Path
import subprocess
import venv

import cv2
import pytest

from tests.conftest import ROOT, needs_models, textured

pytestmark = [needs_models, pytest.mark.slow]


def test_base_install_has_no_tensorflow_and_runs_inspect(tmp_path):
    env_dir = tmp_path / "line-pc"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT)], capture_output=True, text=True,
                             timeout=900)
    assert install.returncode == 0, install.stderr[-2000:]
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=json"], capture_output=True, text=True)
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert not names & {"tensorflow", "tensorflow-cpu", "keras", "tf2onnx"}
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), textured((200, 200), 110))
    # Run outside the checkout, so Python imports the installed package, not the repository's folder.
    where = subprocess.run([str(python), "-c", "import edge_runtime; print(edge_runtime.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert where.returncode == 0 and where.stdout.strip().startswith(str(env_dir)), where.stdout + where.stderr
    out = subprocess.run([str(python), "-m", "edge_runtime", "inspect", str(image), "--json",
                          "--manifest", str(ROOT / "models.manifest.json")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["verdict"] in ("ok", "warn", "defect")
    # The fresh install computes what the export computed (golden frames, edge_runtime.selftest).
    check = subprocess.run([str(python), "-m", "edge_runtime", "selftest", "--json",
                            "--manifest", str(ROOT / "models.manifest.json")], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0 and json.loads(check.stdout)["passed"], check.stdout + check.stderr
    # A line PC has neither the data sets nor the onnx package: the benchmark still times the runtime there,
    # on synthetic strip with painted defects, and says why it leaves the arithmetic floor out.
    pc = tmp_path / "pc"
    shutil.copytree(ROOT / "models", pc / "models", ignore=shutil.ignore_patterns("keras"))
    shutil.copy(ROOT / "models.manifest.json", pc)
    bench = subprocess.run([str(python), "-m", "edge_runtime", "bench", "--quick", "--json", "--no-write",
                            "--cold-starts", "0", "--manifest", str(pc / "models.manifest.json")], cwd=tmp_path,
                           capture_output=True, text=True, timeout=600)
    assert bench.returncode == 0, bench.stderr[-2000:]
    report = json.loads(bench.stdout.strip().splitlines()[-1])
    assert report["frames"]["defective"].startswith("synthetic-") and "floor" not in report
    assert report["end_to_end_ms"]["defective"]["classified"] and "onnx package" in bench.stderr
    # The packages of the extras say which extra they need; the manifest is found through the line's variable.
    for package, extra in (("export", "train"), ("training", "train"), ("dashboard", "dashboard")):
        told = subprocess.run([str(python), "-m", package, "--help"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)
        assert told.returncode != 0 and f"needs the '{extra}' extra" in told.stderr, (package, told.stderr[-500:])
    found = subprocess.run([str(python), "-m", "edge_runtime", "thresholds"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=120,
                           env={"PATH": "/usr/bin:/bin", "STEEL_INSPECT_MANIFEST": str(pc / "models.manifest.json")})
    assert found.returncode == 0 and "neu-steel: warn" in found.stdout, found.stderr


def _python_312() -> str | None:
    """A Python 3.12 interpreter on this machine (on PATH, or one pyenv holds), or None."""
    import glob

    candidates = [shutil.which("python3.12"), *sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.12*/bin/python3.12")))]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "import venv"], capture_output=True).returncode == 0:
            return candidate
    return None


def test_the_runtime_installs_and_computes_what_the_export_computed_on_python_3_12(tmp_path):
    """Line PCs on a newer system Python (Ubuntu 24.04 ships 3.12) install the runtime only."""
    python312 = _python_312()
    if python312 is None:
        pytest.skip("no Python 3.12 on this machine")
    env_dir = tmp_path / "line-pc-312"
    subprocess.run([python312, "-m", "venv", str(env_dir)], check=True, timeout=300)
    python = env_dir / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT)], capture_output=True, text=True,
                             timeout=900)
    assert install.returncode == 0, install.stderr[-2000:]
    for profile in ("neu-steel", "magnetic-tile"):
        check = subprocess.run([str(python), "-m", "edge_runtime", "selftest", "--json", "--profile", profile,
                                "--manifest", str(ROOT / "models.manifest.json")], cwd=tmp_path,
                               capture_output=True, text=True, timeout=300)
        assert check.returncode == 0 and json.loads(check.stdout)["passed"], check.stdout + check.stderr
