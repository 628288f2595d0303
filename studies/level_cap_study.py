"""``python -m studies.level_cap_study --profile P``: how far a normalised map may divide itself down.

A gate that divides its map by the frame's own error level (``normalise`` frame_mean / median)
reads any frame whose whole level is raised as ordinary: a foreign object over much of the frame,
a frame that is not strip at all. ``AnomalyScorer``'s ``level_cap`` bounds what the map is
divided by. For each cap this measures, on the deployed gate and scoring otherwise: thresholds
set on the validation normals exactly as ``python -m export`` sets them, validation and test
recall and false alarms, and the verdicts of synthetic frames that show no steel
(``NOT_STEEL``). The rule the profile's cap follows: the lowest cap that leaves every validation
figure as it is without a cap. Writes results/<profile>/level_cap_study.json.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Callable

import cv2
import numpy as np

from edge_runtime.anomaly import AnomalyScorer
from edge_runtime.inspector import session
from edge_runtime.result import Thresholds
from export import calibrate
from studies.score_options import MemoSession
from export.study_cli import deployed_gate, study_parser, write_result

CAPS = (None, 4.0, 3.0, 2.5, 2.0, 1.75, 1.5, 1.25, 1.0)
SIDE = 200


def _checkerboard(rng: np.random.Generator) -> np.ndarray:
    return (np.indices((SIDE, SIDE)).sum(0) // 25 % 2 * 120 + 60).astype(np.uint8)


def _blobs(rng: np.random.Generator) -> np.ndarray:
    frame = np.full((SIDE, SIDE), 90, np.uint8)
    for _ in range(15):
        centre = tuple(int(v) for v in rng.integers(0, SIDE, 2))
        cv2.circle(frame, centre, int(rng.integers(5, 40)), int(rng.integers(0, 255)), -1)
    return frame


def _label(rng: np.random.Generator) -> np.ndarray:
    frame = np.full((SIDE, SIDE), 200, np.uint8)
    cv2.putText(frame, "LOT 42", (10, 110), cv2.FONT_HERSHEY_SIMPLEX, 1.8, 20, 5)
    return frame


def _gradient(rng: np.random.Generator) -> np.ndarray:
    return np.tile(np.linspace(30, 220, SIDE), (SIDE, 1)).astype(np.uint8)


def _noise(rng: np.random.Generator) -> np.ndarray:
    return np.clip(rng.normal(128, 40, (SIDE, SIDE)), 0, 255).astype(np.uint8)


# Frames that show no steel (uint8, 200x200, from a seeded generator): what a line might send when
# the camera sees something else.
NOT_STEEL: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "checkerboard": _checkerboard, "paint blobs": _blobs, "printed label": _label, "grey gradient": _gradient,
    "sensor noise": _noise,
}


def not_steel_frames(seed: int = 0) -> dict[str, np.ndarray]:
    return {name: make(np.random.default_rng(seed)) for name, make in NOT_STEEL.items()}


def study(manifest_path, profile_name: str) -> dict:
    _, readings = scoring_sweep(manifest_path, profile_name, "score_level_cap", CAPS)
    rows = {"none" if cap is None else f"{cap:g}": {"level_cap": cap, **reading} for cap, reading in readings.items()}
    return {"rows": rows, "chosen": lowest_cap_leaving_validation(rows)}


def scoring_sweep(manifest_path, profile_name: str, option: str, values) -> tuple[object, dict]:
    """(the deployed gate, ``calibrated_scoring`` with the scoring ``option`` (a ``ProfileConfig`` field)
    set to each of ``values`` in turn, the rest as deployed); the graph runs once per frame."""
    gate = deployed_gate(manifest_path, profile_name)
    shared = MemoSession(session(gate.config.autoencoder.verify()))
    readings = {}
    for value in values:
        scorer = rescored(gate, shared, **{option: value})
        readings[value] = calibrated_scoring(gate, scorer)
        print(f"{option} {value}: validation recall at warn {readings[value]['val']['gate_recall_warn']:.3f}", flush=True)
    return gate, readings


def rescored(gate, shared, residual_sigma: float | None = None, **options) -> AnomalyScorer:
    """The deployed gate over ``shared`` (its session, e.g. a ``MemoSession``) with the scoring ``options``
    (``ProfileConfig`` fields) set, the rest as deployed. What the export sets on the validation split from
    the scoring is set again there: a frame-level term's references, and the residual detector's scale (the
    error map's warn threshold over the detector map's, which moves with the error map's scoring), its map
    smoothed over ``residual_sigma`` cells (None: as deployed)."""
    scorer = AnomalyScorer.for_profile(shared, replace(gate.config, **options))
    val = gate.splits["val"]
    if gate.config.frame_term is not None:
        scorer = scorer.with_frame_term(calibrate.frame_term(scorer.with_frame_term(None), val,
                                                             gate.config.preprocess, gate.config.frame_term.weight))
    if gate.config.residual_detector is not None:
        sigma = gate.config.residual_detector.sigma if residual_sigma is None else residual_sigma
        profile = replace(gate.profile, residual_sigma=sigma)
        scorer = scorer.with_residual_detector(calibrate.residual_detector(scorer, profile, val))
    return scorer


def calibrated_scoring(gate, scorer: AnomalyScorer) -> dict:
    """One scoring of the deployed gate, calibrated as ``python -m export`` calibrates: its thresholds,
    validation and test metrics, and the reading of each frame that shows no steel."""
    from edge_runtime.preprocess import to_gray01

    config, profile = gate.config, gate.profile
    calibration = profile.calibration_normals
    scores = {name: calibrate.gate_scores(scorer, gate.splits[name], config.preprocess, profile.seed)
              for name in ("val", "test")}
    limits = calibrate.thresholds(calibrate.calibration_scores(scores["val"], calibration),
                                  profile.false_alarm_rate, profile.warn_false_alarm_rate)
    verdicts = Thresholds(limits["warn"], limits["defect"])
    return {
        "thresholds": {k: limits[k] for k in ("warn", "defect")},
        "val": calibrate.gate_metrics(scores["val"], limits, calibration),
        "test": calibrate.gate_metrics(scores["test"], limits, calibration),
        "not_steel": {name: _reading(float(scorer.anomaly_map(to_gray01(frame)).max()), verdicts)
                      for name, frame in not_steel_frames().items()},
    }


def _reading(score: float, thresholds: Thresholds) -> dict:
    return {"score": score, "verdict": thresholds.verdict(score).value}


VALIDATION_FIGURES = ("gate_recall_warn", "gate_recall_defect", "false_alarm_rate_warn", "false_alarm_rate_defect")


def lowest_cap_leaving_validation(rows: dict) -> float | None:
    """The lowest cap whose validation figures (``VALIDATION_FIGURES``) equal those without a cap."""
    uncapped = rows["none"]["val"]
    same = [row["level_cap"] for row in rows.values() if row["level_cap"] is not None
            and all(row["val"][key] == uncapped[key] for key in VALIDATION_FIGURES)]
    return min(same) if same else None


def main(argv: list[str] | None = None) -> int:
    args = study_parser("python -m studies.level_cap_study", __doc__).parse_args(argv)
    result = study(args.manifest, args.profile)
    write_result(args.profile, "level_cap_study", result)
    names = list(NOT_STEEL)
    print("| level cap | val recall @warn / @defect | val FAR @warn / @defect | test recall @warn / @defect | "
          "test FAR @warn / @defect | " + " | ".join(names) + " |")
    print("|---|---|---|---|---|" + "---|" * len(names))
    for name, row in result["rows"].items():
        val, test = row["val"], row["test"]
        print(f"| {name} | {val['gate_recall_warn']:.3f} / {val['gate_recall_defect']:.3f} | "
              f"{val['false_alarm_rate_warn']:.3f} / {val['false_alarm_rate_defect']:.3f} | "
              f"{test['gate_recall_warn']:.3f} / {test['gate_recall_defect']:.3f} | "
              f"{test['false_alarm_rate_warn']:.3f} / {test['false_alarm_rate_defect']:.3f} | "
              + " | ".join(f"{row['not_steel'][n]['verdict']} ({row['not_steel'][n]['score']:.2f})" for n in names)
              + " |")
    print(f"\nlowest cap leaving validation as without one: {result['chosen']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
