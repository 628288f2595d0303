"""``python -m studies.score_options --profile P``: how the exported gate's map becomes a score.

The autoencoder graph is fixed; what is compared here is the scoring around it: the
Gaussian smoothing (sigma, in map cells), the normalisation of the map
(``AnomalyScorer``: none, or by the frame's own mean or median, at most the profile's ``level_cap``) and where each map cell is placed in
the frame (``FrameGeometry.to_frame``: the middle of its stride, or where the backbone
centres it) and, for a gate with a frame-level autoencoder, the weight of its term
(``FrameTerm``; references recomputed for each scoring on the validation normals, as
``python -m export`` does) and, for a gate with a residual detector, its scale (set again for each
scoring, as the export sets it). Each option is calibrated on the
validation split exactly as ``python -m export`` calibrates (1% / 5% false alarms, on the
profile's ``calibration_normals``) and chosen by its validation recall; the test split is
reported beside it, not used to choose.
Writes results/<profile>/score_options.json and a Markdown table to stdout.
"""

from __future__ import annotations

import hashlib
import itertools
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge_runtime.anomaly import AnomalyScorer
from edge_runtime.inspector import session
from edge_runtime.manifest import CELL_CENTRES, NORMALISATIONS
from export import calibrate
from export.study_cli import deployed_gate, study_parser, write_result

SIGMAS = (0.5, 1.0, 1.5)
FRAME_WEIGHTS = (0.5, 1.0, 2.0, 4.0, 8.0)


class MemoSession:
    """Runs each distinct input once: every option re-scores the same padded frames."""

    def __init__(self, inner) -> None:
        self._inner, self._cache = inner, {}

    def get_inputs(self):
        return self._inner.get_inputs()

    def get_outputs(self):
        return self._inner.get_outputs()

    def run(self, outputs, feeds):
        key = hashlib.sha1(b"".join(np.ascontiguousarray(v).tobytes() + str(v.shape).encode()
                                    for v in feeds.values())).hexdigest()
        if key not in self._cache:
            self._cache[key] = self._inner.run(outputs, feeds)
        return self._cache[key]


def compare(manifest_path: Path, profile: str, calibration: str | None = None) -> dict:
    gate = deployed_gate(manifest_path, profile)
    config, training_profile = gate.config, gate.profile
    splits = {name: gate.splits[name] for name in ("val", "test")}
    shared = MemoSession(session(config.autoencoder.verify()))
    rows = {}
    calibration = calibration or training_profile.calibration_normals
    weights = FRAME_WEIGHTS if config.frame_term else (None,)
    for normalise, sigma, centre in itertools.product(NORMALISATIONS, SIGMAS, CELL_CENTRES):
        plain = AnomalyScorer(shared, config.preprocess, config.feature_stride, config.input_multiple, sigma,
                              config.ignore_border, config.pad_margin, normalise, centre,
                              level_cap=config.score_level_cap, level_power=config.score_level_power)
        if config.residual_detector:  # its scale is set against this scoring of the error map
            plain = plain.with_residual_detector(calibrate.residual_detector(plain, training_profile, splits["val"]))
        references = calibrate.frame_term(plain, splits["val"], config.preprocess, 1.0) if config.frame_term else None
        for weight in weights:
            scorer = plain if weight is None else plain.with_frame_term(replace(references, weight=weight))
            scores = {name: calibrate.gate_scores(scorer, split, config.preprocess, training_profile.seed)
                      for name, split in splits.items()}
            limits = calibrate.thresholds(calibrate.calibration_scores(scores["val"], calibration),
                                          training_profile.false_alarm_rate, training_profile.warn_false_alarm_rate)
            name = f"normalise {normalise}, sigma {sigma:g} cells, {centre} cell centre"
            rows[name if weight is None else f"{name}, frame weight {weight:g}"] = {
                "normalise": normalise, "sigma_cells": sigma, "cell_centre": centre, "frame_weight": weight,
                "calibration_normals": calibration,
                "val": calibrate.gate_metrics(scores["val"], limits, calibration),
                "test": calibrate.gate_metrics(scores["test"], limits, calibration),
            }
    return rows


def _rate(metrics: dict, key: str) -> str:
    return "-" if key not in metrics else f"{metrics[key]:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = study_parser("python -m studies.score_options", __doc__)
    parser.add_argument("--calibration-normals", choices=sorted(calibrate.CALIBRATION_NORMALS),
                        help="normals the thresholds are set on (default: the profile's)")
    args = parser.parse_args(argv)
    rows = compare(args.manifest, args.profile, args.calibration_normals)
    suffix = "" if args.calibration_normals is None else f"_{args.calibration_normals}"
    write_result(args.profile, f"score_options{suffix}", rows)
    print("| scoring | val recall @warn | val image AUROC | test recall @warn | test FAR @warn | test window FAR | "
          "test window FAR, box-free level | test crop FAR | test image AUROC |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        val, test = row["val"], row["test"]
        print(f"| {name} | {val['gate_recall_warn']:.3f} | {val['image_auroc']:.3f} | {test['gate_recall_warn']:.3f} | "
              f"{test['false_alarm_rate_warn']:.3f} | {_rate(test, 'window_false_alarm_rate_warn')} | "
              f"{_rate(test, 'window_boxfree_level_false_alarm_rate_warn')} | "
              f"{_rate(test, 'crop_false_alarm_rate_warn')} | {test['image_auroc']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
