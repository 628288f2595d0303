"""Gate calibration protocol (export.calibrate): which scores count as normal, thresholds, metrics.

The scorer is a stand-in whose anomaly map is the frame itself, so every score is known
from the image drawn on disk.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_runtime.datasets import Box, Sample
from edge_runtime.preprocess import PreprocessSpec
from export import calibrate


class FrameIsTheMap:
    def anomaly_map(self, frame: np.ndarray) -> np.ndarray:
        return frame.astype(np.float32)


def _image(path: Path, box: Box, inside: int, outside: int) -> Path:
    image = np.full((200, 200), outside, np.uint8)
    image[box.ymin: box.ymax + 1, box.xmin: box.xmax + 1] = inside
    cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def samples(tmp_path):
    box = Box(10, 10, 60, 60)
    return [
        Sample(_image(tmp_path / "local.png", box, 255, 0), "local", (box,)),
        # A texture-wide defect: the box-free area is bright too (unboxed defect texture).
        Sample(_image(tmp_path / "texture.png", box, 255, 128), "texture", (box,)),
    ]


def test_windows_of_all_labels_are_normal_by_default(samples):
    scores = calibrate.gate_scores(FrameIsTheMap(), samples, PreprocessSpec())
    assert len(scores["normal"]) == 2 * calibrate.WINDOWS_PER_IMAGE
    assert len(scores["normal_crop"]) == len(scores["normal"])
    assert sorted(set(np.round(scores["normal"], 3))) == [0.0, round(128 / 255, 3)]
    assert scores["defect_image"].tolist() == [1.0, 1.0]
    assert scores["defect_region"].tolist() == [1.0, 1.0]
    assert len(scores["texture_window"]) == 0


def test_normal_labels_keep_texture_wide_windows_apart(samples):
    scores = calibrate.gate_scores(FrameIsTheMap(), samples, PreprocessSpec(), normal_labels=("local",))
    assert scores["normal"].tolist() == [0.0] * calibrate.WINDOWS_PER_IMAGE
    assert np.allclose(scores["texture_window"], 128 / 255)
    metrics = calibrate.gate_metrics(scores, calibrate.thresholds(scores["normal"], 0.01, 0.05))
    assert metrics["texture_window_flag_rate_warn"] == 1.0
    assert metrics["gate_recall_warn"] == 1.0 and metrics["false_alarm_rate_warn"] == 1.0  # threshold 0: ties flag


def test_metrics_count_frames_at_or_above_the_thresholds():
    scores = {"normal": np.array([0.1, 0.2, 0.3, 0.4]), "normal_crop": np.array([0.5, 0.5, 0.1, 0.1]),
              "texture_window": np.array([]), "defect_region": np.array([]),
              "defect_image": np.array([0.35, 0.9]), "defect_label": ["a", "b"]}
    limits = {"warn": 0.3, "defect": 0.45}
    metrics = calibrate.gate_metrics(scores, limits)
    assert metrics["false_alarm_rate_warn"] == 0.5 and metrics["false_alarm_rate_defect"] == 0.0
    assert metrics["crop_false_alarm_rate_warn"] == 0.5 and metrics["crop_false_alarm_rate_defect"] == 0.5
    assert metrics["gate_recall_warn"] == 1.0 and metrics["gate_recall_defect"] == 0.5
    assert metrics["gate_recall_warn_per_class"] == {"a": 1.0, "b": 1.0}
    assert metrics["image_auroc_per_class"] == {"a": 0.75, "b": 1.0}  # 0.35 beats 3 of the 4 normals
    assert "region_auroc" not in metrics and "texture_window_flag_rate_warn" not in metrics


def test_crop_calibrated_recall_uses_the_validation_crops_threshold():
    from export.score_options import crop_calibrated

    val = {"normal_crop": np.arange(100, dtype=float), "defect_image": np.array([10.0, 96.0, 99.0, 200.0])}
    test = {"normal_crop": np.array([0.0, 95.0, 97.0, 98.0]), "normal": np.array([1.0, 2.0, 100.0]),
            "defect_image": np.array([94.0, 150.0])}
    out = crop_calibrated({"val": val, "test": test}, 0.05)["crop_calibrated_warn"]
    assert out["threshold"] == np.quantile(np.arange(100), 0.95)  # 94.05
    assert out["val_recall"] == 0.75 and out["test_recall"] == 0.5
    assert out["test_crop_false_alarm_rate"] == 0.75 and out["test_false_alarm_rate"] == 1 / 3
    assert crop_calibrated({"val": {"normal_crop": np.array([])}, "test": test}, 0.05) == {}
