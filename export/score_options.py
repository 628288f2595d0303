"""``python -m export.score_options --profile P``: how the exported gate's map becomes a score.

The autoencoder graph is fixed; what is compared here is the scoring around it: the
Gaussian smoothing (sigma, in map cells), the normalisation of the map
(``AnomalyScorer``: none, or by the frame's own mean) and where each map cell is placed in
the frame (``FrameGeometry.to_frame``: the middle of its stride, or where the backbone
centres it). Each option is calibrated on the
validation split exactly as ``python -m export`` calibrates (1% / 5% false alarms) and
chosen by its validation recall; the test split is reported beside it, not used to choose.
Writes results/<profile>/score_options.json and a Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from edge_runtime.anomaly import AnomalyScorer
from edge_runtime.evaluation_cases import select_split
from edge_runtime.inspector import session
from edge_runtime.manifest import CELL_CENTRES, MANIFEST_NAME, NORMALISATIONS, load_manifest, profile_config
from export import calibrate

ROOT = Path(__file__).resolve().parents[1]
SIGMAS = (0.5, 1.0, 1.5)


class MemoSession:
    """Runs each distinct input once: every option re-scores the same padded frames."""

    def __init__(self, inner) -> None:
        self._inner, self._cache = inner, {}

    def get_inputs(self):
        return self._inner.get_inputs()

    def run(self, outputs, feeds):
        key = hashlib.sha1(b"".join(np.ascontiguousarray(v).tobytes() + str(v.shape).encode()
                                    for v in feeds.values())).hexdigest()
        if key not in self._cache:
            self._cache[key] = self._inner.run(outputs, feeds)
        return self._cache[key]


def compare(manifest_path: Path, profile: str) -> dict:
    from training.profiles import PROFILES

    manifest = load_manifest(manifest_path)
    config = profile_config(manifest, manifest_path, profile)
    training_profile = PROFILES[profile]
    samples = training_profile.load()
    splits = {name: select_split(samples, manifest["profiles"][profile]["split"], name) for name in ("val", "test")}
    shared = MemoSession(session(config.autoencoder.verify()))
    rows = {}
    for normalise, sigma, centre in itertools.product(NORMALISATIONS, SIGMAS, CELL_CENTRES):
        scorer = AnomalyScorer(shared, config.preprocess, config.feature_stride, config.input_multiple, sigma,
                               config.ignore_border, config.pad_margin, normalise, centre)
        scores = {name: calibrate.gate_scores(scorer, split, config.preprocess, training_profile.seed,
                                              training_profile.normal_texture_labels)
                  for name, split in splits.items()}
        limits = calibrate.thresholds(scores["val"]["normal"], training_profile.false_alarm_rate,
                                      training_profile.warn_false_alarm_rate)
        rows[f"normalise {normalise}, sigma {sigma:g} cells, {centre} cell centre"] = {
            "normalise": normalise, "sigma_cells": sigma, "cell_centre": centre,
            "val": calibrate.gate_metrics(scores["val"], limits), "test": calibrate.gate_metrics(scores["test"], limits),
            **crop_calibrated(scores, training_profile.warn_false_alarm_rate),
        }
    return rows


def crop_calibrated(scores: dict, false_alarm_rate: float) -> dict:
    """Recall when the warn threshold is set on stand-alone box-free crops instead of in-context
    windows (NEU-DET only): the other reading of "box-free normal crops"."""
    if not len(scores["val"]["normal_crop"]):
        return {}
    warn = float(np.quantile(scores["val"]["normal_crop"], 1.0 - false_alarm_rate))
    test = scores["test"]
    return {"crop_calibrated_warn": {
        "threshold": warn, "val_recall": float(np.mean(scores["val"]["defect_image"] >= warn)),
        "test_recall": float(np.mean(test["defect_image"] >= warn)),
        "test_crop_false_alarm_rate": float(np.mean(test["normal_crop"] >= warn)),
        "test_false_alarm_rate": float(np.mean(test["normal"] >= warn))}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.score_options", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="neu-steel")
    parser.add_argument("--manifest", type=Path, default=ROOT / MANIFEST_NAME)
    args = parser.parse_args(argv)
    rows = compare(args.manifest, args.profile)
    out = ROOT / "results" / args.profile / "score_options.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1) + "\n")
    print("| scoring | val recall @warn | test recall @warn | test FAR @warn | test crop FAR @warn | test image AUROC "
          "| warn set on crops: val / test recall, test crop FAR |")
    print("|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        val, test = row["val"], row["test"]
        crop = test.get("crop_false_alarm_rate_warn")
        on_crops = row.get("crop_calibrated_warn")
        on_crops = "-" if on_crops is None else (f"{on_crops['val_recall']:.3f} / {on_crops['test_recall']:.3f}, "
                                                 f"{on_crops['test_crop_false_alarm_rate']:.3f}")
        print(f"| {name} | {val['gate_recall_warn']:.3f} | {test['gate_recall_warn']:.3f} | "
              f"{test['false_alarm_rate_warn']:.3f} | {'-' if crop is None else f'{crop:.3f}'} | "
              f"{test['image_auroc']:.3f} | {on_crops} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
