"""``python -m studies.gate_check [--profile P] [--set KEY=VALUE ...] [--weights DIR] [--camera]``: a trained gate, checked.

Scores a gate's Keras weights (``python -m training autoencoder``, by default the profile's own in
``models/<profile>/keras``) with the profile's scoring, sets its thresholds on the validation split
as the export does (``export.calibrate``; with the frame-level term where the gate has one, its
references from the validation split's defect-free images as the export sets them) and prints one
JSON object: recall at warn and at defect, overall and per class, and the image AUROC on the
validation and the test split, the share of test normals flagged, and the share of the synthetic
strip's clean and defective frames flagged (a texture no gate is trained on: a clean one should
pass); with ``--camera``, also the validation normals flagged through each camera change of
``studies.camera_study``. It converts nothing and writes nothing, so a trial gate (``--out`` of the
training) can be compared with the deployed one, per class as well, before it is exported.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from edge_runtime.anomaly import AnomalyScorer
from edge_runtime.capture.synthetic import DEFECT_KINDS, synthetic_frame
from edge_runtime.datasets import split_samples
from edge_runtime.preprocess import PreprocessSpec, preprocess
from export import calibrate
from studies.camera_study import CHANGES
from studies.exposure_study import ChangedFrames
from training.keras_session import KerasSession
from training.profiles import PROFILES, trained_profile, with_overrides
from training.train_autoencoder import load_anomaly_model

ROOT = Path(__file__).resolve().parents[1]
REPORTED = ("gate_recall_warn", "gate_recall_defect", "gate_recall_warn_per_class", "image_auroc")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studies.gate_check", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None,
                        help=f"{', '.join(sorted(PROFILES))} or a new line trained with python -m training --data "
                        "(default: the one --weights were trained for, else neu-steel)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="scoring settings of a trial, as given to python -m training")
    parser.add_argument("--weights", type=Path, default=None, help="default: models/<profile>/keras")
    parser.add_argument("--camera", action="store_true",
                        help="also the validation normals flagged at warn through each change of studies.camera_study "
                             "(about a minute per change)")
    args = parser.parse_args(argv)
    record = args.weights / "profile.json" if args.weights else None
    trained_for = json.loads(record.read_text()).get("name") if record and record.is_file() else None
    if args.profile and trained_for and args.profile != trained_for:
        parser.error(f"{args.weights} holds weights trained for profile {trained_for!r}, not {args.profile!r}")
    try:
        profile = with_overrides(trained_profile(args.profile or trained_for or "neu-steel", weights=args.weights),
                                 args.set)
    except KeyError as error:
        parser.error(str(error.args[0]))
    weights = args.weights or ROOT / "models" / profile.name / "keras"
    config = json.loads((weights / "autoencoder_config.json").read_text())
    splits = split_samples(profile.load(), profile.seed, profile.split_fractions)
    scorer = calibrate.exported_scorer(KerasSession(load_anomaly_model(weights, with_stem=False)), profile, config,
                                       splits["val"])
    result = calibrate.calibrate_on_splits(scorer, splits, profile)
    report = {"weights": str(weights), "thresholds": {k: result.limits[k] for k in ("warn", "defect")}}
    for split, metrics in (("val", result.val), ("test", result.test)):
        report[split] = {key: metrics[key] for key in REPORTED if key in metrics}
        report[split]["normals_flagged_warn"] = metrics["false_alarm_rate_warn"]
    report["synthetic_strip"] = synthetic_strip_flagged(scorer, profile.preprocess, result.limits["warn"])
    if args.camera:
        report["val_normals_flagged_warn_through_camera_changes"] = camera_normals_flagged(
            scorer, splits["val"], profile, result.limits["warn"])
    print(json.dumps(report))
    return 0


def synthetic_strip_flagged(scorer: AnomalyScorer, spec: PreprocessSpec, warn: float, frames: int = 24) -> dict:
    """Shares of the synthetic strip's frames (``edge_runtime.capture.synthetic``: rolled-steel-like streaks
    and grain) flagged at ``warn``: clean ones, and ones with each of its painted defects."""
    def flagged(defect: str | None) -> float:
        scores = [scorer.anomaly_map(preprocess(synthetic_frame(np.random.default_rng([seed, 7]), defect), spec)).max()
                  for seed in range(frames)]
        return float(np.mean(np.array(scores) >= warn))
    return {"clean_flagged_warn": flagged(None), **{f"{kind}_flagged_warn": flagged(kind) for kind in DEFECT_KINDS}}


def camera_normals_flagged(scorer: AnomalyScorer, samples: list, profile, warn: float) -> dict:
    """Shares of the calibration normals of ``samples`` (the validation split) flagged at ``warn`` with every
    frame seen through each change of ``studies.camera_study``: the same steel as another camera renders it.
    docs/gate_design.md, step 15, chose the detector's camera copies by the mean of the first four."""
    flagged = {}
    for name, change in CHANGES.items():
        if name == "as captured":
            continue
        scores = calibrate.gate_scores(ChangedFrames(scorer, change), samples, profile.preprocess, profile.seed)
        flagged[name] = float(np.mean(calibrate.calibration_scores(scores, profile.calibration_normals) >= warn))
    return flagged


if __name__ == "__main__":
    sys.exit(main())
