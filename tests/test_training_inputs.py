"""Training data problems are reported by name, or stop the run at once with a reason."""

import logging

import cv2
import numpy as np
import pytest

from edge_runtime.datasets import DatasetError, load_class_folders
from edge_runtime.preprocess import PreprocessSpec
from tests.conftest import make_class_folders, needs_tf


def test_unreadable_training_files_are_named_and_skipped(tmp_path, caplog):
    from training.data import read_frames

    root = make_class_folders(tmp_path, ["good", "a", "b"], n=4)
    (root / "a" / "empty.png").write_bytes(b"")
    (root / "b" / "truncated.jpg").write_bytes(cv2.imencode(".jpg", np.zeros((64, 64), np.uint8))[1].tobytes()[:50])
    (root / "b" / "tiny.png").write_bytes(cv2.imencode(".png", np.zeros((8, 8), np.uint8))[1].tobytes())
    samples = load_class_folders(root, normal_class="good")
    with caplog.at_level(logging.WARNING):
        frames, kept = read_frames(samples, PreprocessSpec())
    assert len(frames) == len(kept) == 12
    skipped = " ".join(caplog.messages)
    for name in ("empty.png", "truncated.jpg", "tiny.png"):
        assert name in skipped


def test_a_folder_of_only_unreadable_images_fails_with_a_reason(tmp_path):
    from training.data import read_frames

    root = make_class_folders(tmp_path, ["a", "b"], n=0)
    (root / "a" / "x.png").write_bytes(b"junk")
    (root / "b" / "y.png").write_bytes(b"junk")
    with pytest.raises(DatasetError, match="none of the images"):
        read_frames(load_class_folders(root), PreprocessSpec())


@needs_tf
def test_gate_training_without_normal_images_or_boxes_stops_at_once(tmp_path):
    from training.profiles import folder_profile
    from training.train_autoencoder import train_autoencoder

    root = make_class_folders(tmp_path / "data", ["a", "b"], n=4)
    with pytest.raises(DatasetError, match="no defect-free images"):
        train_autoencoder(folder_profile("t", root, None), tmp_path / "out")
    assert not (tmp_path / "out").exists()


@needs_tf
def test_gate_taps_that_disagree_with_the_feature_stride_stop_before_any_data_is_read(tmp_path):
    from dataclasses import replace

    from training.profiles import folder_profile
    from training.train_autoencoder import train_autoencoder

    profile = replace(folder_profile("t", tmp_path / "no-such-folder", None), gate_taps="block6+13/16")
    with pytest.raises(ValueError, match="give stride 16, but feature_stride is 8"):
        train_autoencoder(profile, tmp_path / "out")
