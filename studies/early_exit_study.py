"""``python -m studies.early_exit_study``: would a cheap first stage in front of the gate pay?

The neu-steel gate runs MobileNetV2 blocks 0-12 on every frame. An early-exit cascade would
run blocks 0-5 and a small bottleneck on their output first, pass frames that score low
there, and continue to blocks 6-12 (from the block 5 output, so nothing runs twice) only for
the rest. It pays if many normal frames exit and no defect the full gate flags does.

Measured here: the stage-one gate is trained like the deployed one (same normals, same
scoring) on block 5 alone. Its exit threshold is the lowest stage-one score among the
validation images the deployed gate flags, so no flagged validation image would exit. On
the test split: flagged images that would exit (recall lost), passed images and stand-alone
box-free crops that would exit (the work saved), and the 1-thread onnxruntime time of
blocks 0-5 against the whole deployed gate. Writes results/neu-steel/early_exit.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np

from edge_runtime.anomaly import AnomalyScorer
from edge_runtime.datasets import box_free_corners, split_samples
from edge_runtime.inspector import session
from edge_runtime.manifest import MANIFEST_NAME, load_manifest, profile_config
from edge_runtime.preprocess import preprocess
from export.calibrate import WINDOW, WINDOW_MARGIN
from export.onnx_export import convert
from export.quantize import time_model
from training.backbone import gray_to_imagenet, mobilenet_v2
from training.data import read_frames
from studies.gate_experiments import feature_variant
from training.keras_session import KerasSession
from training.profiles import PROFILES

ROOT = Path(__file__).resolve().parents[1]
STAGE_ONE_TAPS = (("block_5_add", "same"),)
STAGE_ONE_HIDDEN = (48, 12, 48)


def frame_and_crop_scores(scorers: dict, samples, spec, seed: int) -> dict:
    """Per scorer: whole-image scores and one box-free 64x64 crop per image scored as a frame."""
    rng = random.Random(seed)
    out = {name: {"image": [], "crop": []} for name in scorers}
    for sample in samples:
        frame = preprocess(sample.path, spec)
        corners = box_free_corners(frame.shape, sample.boxes, WINDOW, WINDOW_MARGIN)
        crop = None
        if corners:
            y, x = rng.choice(corners)
            crop = frame[y: y + WINDOW, x: x + WINDOW]
        for name, scorer in scorers.items():
            out[name]["image"].append(scorer.anomaly_map(frame).max())
            if crop is not None:
                out[name]["crop"].append(scorer.anomaly_map(crop).max())
    return {name: {k: np.array(v) for k, v in kinds.items()} for name, kinds in out.items()}


def backbone_time_ms(layer: str, gate_path: Path, side: int) -> dict:
    """1-thread onnxruntime median ms of MobileNetV2 up to ``layer`` and of the deployed gate."""
    base = mobilenet_v2((None, None, 3))
    image = keras.Input((None, None, 1), name="image")
    cut = keras.Model(image, keras.Model(base.input, base.get_layer(layer).output)(gray_to_imagenet(image)))
    frames = [np.random.default_rng(i).random((1, side, side, 1), dtype=np.float32) for i in range(4)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cut.onnx"
        convert(cut, (None, None, None, 1), ["features"], path)
        return {f"blocks 0-{layer.split('_')[1]}": time_model(path, frames, 100),
                "deployed gate": time_model(gate_path, frames, 100)}


def main(argv: list[str] | None = None) -> int:
    profile = PROFILES["neu-steel"]
    parser = argparse.ArgumentParser(prog="python -m studies.early_exit_study", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / profile.name / "early_exit.json",
                        help="the report (default: %(default)s)")
    args = parser.parse_args(argv)
    manifest_path = ROOT / MANIFEST_NAME
    config = profile_config(load_manifest(manifest_path), manifest_path, profile.name)
    keras.utils.set_random_seed(profile.seed)
    splits = split_samples(profile.load(), profile.seed, profile.split_fractions)
    frames, samples = read_frames(splits["train"], profile.preprocess)
    model, stride, multiple, _ = feature_variant(profile, frames, samples, STAGE_ONE_TAPS, STAGE_ONE_HIDDEN,
                                                 profile.whiten, profile.gate_epochs)
    scorers = {
        "stage_one": AnomalyScorer(KerasSession(model), profile.preprocess, stride, multiple, config.score_sigma,
                                   config.ignore_border, config.pad_margin, config.score_normalise,
                                   config.score_cell_centre),
        "gate": AnomalyScorer.for_profile(session(config.autoencoder.verify()), config),
    }
    scores = {split: frame_and_crop_scores(scorers, splits[split], profile.preprocess, profile.seed)
              for split in ("val", "test")}
    warn = config.thresholds.warn
    val_flagged = scores["val"]["gate"]["image"] >= warn
    exit_below = float(scores["val"]["stage_one"]["image"][val_flagged].min())
    test = scores["test"]
    flagged = test["gate"]["image"] >= warn
    one = test["stage_one"]["image"]
    report = {
        "exit_threshold": exit_below,
        "test_flagged_images": int(flagged.sum()),
        "test_flagged_that_would_exit": int((one[flagged] < exit_below).sum()),
        "test_passed_images_that_would_exit": float(np.mean(one[~flagged] < exit_below)),
        "test_crops_that_would_exit": float(np.mean(test["stage_one"]["crop"] < exit_below)),
        "score_correlation_test_images": float(np.corrcoef(test["gate"]["image"], one)[0, 1]),
        "median_ms_240x240": backbone_time_ms(STAGE_ONE_TAPS[0][0], config.autoencoder.path, 240),
        "stage_one": {"taps": [list(t) for t in STAGE_ONE_TAPS], "hidden": list(STAGE_ONE_HIDDEN),
                      "epochs": profile.gate_epochs},
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
