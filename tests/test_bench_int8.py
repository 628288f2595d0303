"""The int8 classifier that ``python -m export.quantize`` offers: loads, keeps both outputs, agrees with fp32.

Skips when the models are not exported yet, or when the profile offers no int8 model
(``export.quantize`` withholds it when it costs more than 0.5 pp accuracy).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import MANIFEST, NEU, needs_models, needs_neu

pytestmark = [needs_models, needs_neu]
PROFILE = "neu-steel"


@pytest.fixture(scope="module")
def pair():
    from edge_runtime import Inspector

    entry = json.loads(MANIFEST.read_text())["profiles"].get(PROFILE, {})
    if "int8" not in entry.get("classifier", {}):
        reason = entry.get("metrics", {}).get("int8", {})
        pytest.skip(f"profile {PROFILE} offers no int8 classifier (run python -m export.quantize; last report: "
                    f"accuracy loss {reason.get('accuracy_loss_pp', 'n/a')} pp)")
    return Inspector.from_manifest(MANIFEST, PROFILE, precision="fp32"), \
        Inspector.from_manifest(MANIFEST, PROFILE, precision="int8")


def test_int8_manifest_entry_is_complete():
    entry = json.loads(MANIFEST.read_text())["profiles"][PROFILE]
    if "int8" not in entry["classifier"]:
        pytest.skip("no int8 classifier offered")
    int8 = entry["classifier"]["int8"]
    assert {"path", "sha256"} <= set(int8) and int8["path"].endswith(".onnx")
    assert [o["name"] for o in int8["outputs"]] == ["probabilities", "features"]
    report = entry["metrics"]["int8"]
    assert report["accuracy_loss_pp"] <= report["max_loss_pp"] == 0.5
    assert report["classified_class_agreement"] >= report["min_class_agreement"] == 0.95
    assert report["calibration"]["weight_bits"] == 7  # computes the same with and without VNNI (export.quantize)
    assert report["offered"] is True
    assert entry["precision"] in ("fp32", "int8")  # offered; which one runs is the profile's choice


def test_int8_weights_are_7_bit_so_no_cpu_saturates_their_sums():
    """A CPU without VNNI adds pairs of uint8 x int8 products in a saturating int16 (onnxruntime's AVX2
    kernels); with |weight| <= 64 a pair stays under 2 * 255 * 64 = 32,640 < 32,767, so every x86 CPU
    computes the same integer sums and the golden frames hold on any line PC."""
    import onnx
    from onnx import numpy_helper

    entry = json.loads(MANIFEST.read_text())["profiles"][PROFILE]
    if "int8" not in entry["classifier"]:
        pytest.skip("no int8 classifier offered")
    model = onnx.load(str(MANIFEST.parent / entry["classifier"]["int8"]["path"]))
    weights = [numpy_helper.to_array(t).astype(int) for t in model.graph.initializer
               if t.data_type == onnx.TensorProto.INT8]
    assert weights and max(int(np.abs(w).max()) for w in weights) <= 64


def test_int8_classifier_agrees_with_fp32_on_real_images(pair):
    fp32, int8 = pair
    assert int8.model_sha256["classifier"] != fp32.model_sha256["classifier"]
    images = sorted((NEU / "images").glob("*.jpg"))[::75]  # 20 images, every class
    a = fp32.inspect_batch(images, always_classify=True)
    b = int8.inspect_batch(images, always_classify=True)
    same = [x.defect_class == y.defect_class for x, y in zip(a, b)]
    assert np.mean(same) >= 0.9, same
    for x, y in zip(a, b):
        assert y.gradcam is not None and y.gradcam.shape == x.gradcam.shape and y.gradcam.max() <= 1.0
        assert sum(y.class_probabilities.values()) == pytest.approx(1.0, abs=1e-3)
        if x.defect_class == y.defect_class:  # Grad-CAM from the dequantised features points to the same area
            assert np.corrcoef(x.gradcam.ravel(), y.gradcam.ravel())[0, 1] > 0.5


def test_class_agreement_counts_only_the_frames_both_precisions_classify():
    from types import SimpleNamespace

    from edge_runtime.errors import InspectionError
    from export.quantize import _classified_agreement

    row = lambda cls: (None, SimpleNamespace(defect_class=cls))
    fp32 = [row(None), row(None), row("scratches"), row("patches"), (None, InspectionError("unreadable"))]
    int8 = [row(None), row(None), row("scratches"), row("inclusion"), row("patches")]
    assert _classified_agreement(fp32, int8) == 0.5  # unflagged frames and errors do not count as agreeing
    assert _classified_agreement(fp32[:2], int8[:2]) == 1.0


def test_the_int8_offer_scores_a_new_lines_defect_free_folder_as_normals(monkeypatch):
    """A new line's manifest names its defect-free class folder (``dataset.normal_class``, written by the export):
    scored as a defect class, its frames gave the int8 report an end-to-end accuracy of 0."""
    from types import SimpleNamespace

    from edge_runtime import evaluate as evaluate_module
    from edge_runtime import evaluation_cases
    from export import quantize

    given = {}
    fake = SimpleNamespace(config=SimpleNamespace(raw={"dataset": {"name": "folder", "path": "/data/line-b",
                                                                   "normal_class": "good"}}))
    monkeypatch.setattr(quantize.Inspector, "from_manifest", lambda *args, **kwargs: fake)
    monkeypatch.setattr(evaluation_cases, "build_cases", lambda *args: given.update(args=args) or ([], []))
    monkeypatch.setattr(evaluate_module, "evaluate", lambda inspector, cases, progress: ({}, []))
    quantize.evaluate_precision(MANIFEST, "line-b", "int8", "test")
    assert given["args"][:2] == ("folder", Path("/data/line-b")) and given["args"][4] == "good"


def test_an_int8_refusal_names_only_the_criteria_it_fails():
    from export.quantize import _refusals

    assert _refusals(-11.1, 0.5, 0.933, 0.95) == [
        "it names fp32's class on 93.3% of the frames both classify (every frame of the split, flagged or not; at "
        "least 95.0% needed)"]
    assert _refusals(0.8, 0.5, 0.99, 0.95) == ["it loses 0.80 pp classifier accuracy (at most 0.50 allowed)"]
    assert len(_refusals(0.8, 0.5, 0.9, 0.95)) == 2 and _refusals(0.0, 0.5, 1.0, 0.95) == []
