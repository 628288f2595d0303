"""``python -m studies.camera_study --profile P``: does re-commissioning absorb a change of camera?

The exposure study scales grey levels. A lens out of focus, a noisier sensor, in-camera
sharpening, a JPEG-streaming camera, motion blur or a camera of lower resolution change the
texture itself, which is what the gate models. Each change is applied to every validation and
test frame as captured (before the runtime's preprocessing), and the test split is measured three
ways:

* at the deployed thresholds;
* re-commissioned: thresholds set again on the validation split's calibration normals seen
  through the same change, as ``python -m edge_runtime calibrate`` sets them on a line's frames;
* for a gate with a frame-level term, re-commissioned with the term's references re-measured on
  those normals too (``export.calibrate.frame_term``, what ``calibrate`` does for such a gate).

The classifier is measured through the same changes: its accuracy on the test split's defect
images, each classified whatever the gate says (as ``evaluate`` measures it), with the
profile's deployed precision. Thresholds do not enter it, so commissioning cannot restore it.

Writes results/<profile>/camera_study.json and a Markdown table to stdout.
"""

from __future__ import annotations

import random
import sys
import zlib
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from edge_runtime.anomaly import AnomalyScorer
from edge_runtime.inspector import Inspector
from edge_runtime.preprocess import preprocess
from export import calibrate
from studies.exposure_study import ChangedFrames
from export.study_cli import deployed_gate, study_parser, write_result

REPORTED = ("false_alarm_rate_warn", "false_alarm_rate_defect", "gate_recall_warn", "gate_recall_defect", "image_auroc")


def defocus(frame: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(frame, (0, 0), 1.0)


def sensor_noise(frame: np.ndarray) -> np.ndarray:
    """Gaussian noise of 2% of full scale, seeded by the frame's content so that every run sees the same."""
    rng = np.random.default_rng(zlib.crc32(frame.tobytes()))
    return np.clip(frame + rng.normal(0.0, 0.02, frame.shape), 0.0, 1.0).astype(np.float32)


def sharpening(frame: np.ndarray) -> np.ndarray:
    return np.clip(cv2.addWeighted(frame, 1.6, cv2.GaussianBlur(frame, (0, 0), 2.0), -0.6, 0.0), 0.0, 1.0)


def jpeg_stream(frame: np.ndarray) -> np.ndarray:
    encoded = cv2.imencode(".jpg", np.round(frame * 255.0).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 50])[1]
    return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0


def motion_blur(frame: np.ndarray) -> np.ndarray:
    """A line camera's exposure too long for the strip speed: each pixel averaged over 5 px along the rows."""
    return cv2.blur(frame, (5, 1))


def resampled(frame: np.ndarray) -> np.ndarray:
    """A camera of lower resolution over the same field of view: down to 0.7x and back."""
    height, width = frame.shape
    small = cv2.resize(frame, (round(width * 0.7), round(height * 0.7)), interpolation=cv2.INTER_AREA)
    return np.clip(cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


# The first four changes are the kinds a residual detector may be trained to ignore
# (training.camera_changes, random strengths around these); the last two are held out of that training.
CHANGES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "as captured": lambda frame: frame,
    "defocus (Gaussian blur, sigma 1 px)": defocus,
    "sensor noise (Gaussian, sigma 0.02)": sensor_noise,
    "in-camera sharpening (unsharp mask 0.6, sigma 2 px)": sharpening,
    "JPEG stream (quality 50)": jpeg_stream,
    "motion blur (5 px along the rows)": motion_blur,
    "lower resolution (0.7x and back)": resampled,
}


def _measured(scorer, splits: dict, spec, profile, limits: dict | None = None) -> dict:
    """Test-split figures at ``limits``, or at thresholds set on the validation split (None)."""
    calibration = profile.calibration_normals
    if limits is None:
        val = calibrate.gate_scores(scorer, splits["val"], spec, profile.seed)
        limits = calibrate.thresholds(calibrate.calibration_scores(val, calibration), profile.false_alarm_rate,
                                      profile.warn_false_alarm_rate)
    metrics = calibrate.gate_metrics(calibrate.gate_scores(scorer, splits["test"], spec, profile.seed), limits,
                                     calibration)
    return {"warn": limits["warn"], "defect": limits["defect"], **{key: metrics[key] for key in REPORTED}}


def change_metrics(scorer: AnomalyScorer, change, splits: dict, spec, profile, deployed: dict) -> dict:
    """The three readings of one change (module docstring)."""
    seen = ChangedFrames(scorer, change)
    rows = {"deployed_thresholds": _measured(seen, splits, spec, profile, deployed),
            "recommissioned": _measured(seen, splits, spec, profile)}
    if scorer.frame_term is not None:
        plain = ChangedFrames(scorer.with_frame_term(None), change)
        references = calibrate.frame_term(plain, splits["val"], spec, scorer.frame_term.weight)
        rows["recommissioned_with_references"] = {
            "map_reference": references.map_reference, "frame_reference": references.frame_reference,
            **_measured(ChangedFrames(scorer.with_frame_term(references), change), splits, spec, profile)}
    return rows


def references_by_split(scorer: AnomalyScorer, splits: dict, spec) -> dict:
    """The frame-level term's references measured on each split's defect-free frames, as captured:
    how much better the gate rebuilds the frames it was trained on (commission on fresh frames)."""
    plain = scorer.with_frame_term(None)
    terms = {name: calibrate.frame_term(plain, samples, spec, scorer.frame_term.weight)
             for name, samples in splits.items() if any(s.is_normal for s in samples)}
    return {name: {"map_reference": t.map_reference, "frame_reference": t.frame_reference} for name, t in terms.items()}


def maps_flagged(scorer: AnomalyScorer, change, samples: list, spec, profile, warn: float) -> dict:
    """For a gate with a residual detector: the shares of the test normals (the profile's calibration
    normals: box-free crops, or defect-free images) whose error map alone and whose detector's map alone
    reach ``warn`` through ``change``. Which of the two maps a camera change moves."""
    rng = random.Random(profile.seed)
    maxima = []
    for sample in samples:
        frame = change(preprocess(sample.path, spec))
        if profile.calibration_normals == "crops":
            normals = calibrate.calibration_crops(frame, sample.boxes, rng) if not sample.is_normal else []
        else:
            normals = [frame] if sample.is_normal else []
        maxima += [tuple(float(m.max()) for m in scorer.map_parts(normal)) for normal in normals]
    error, detector = np.array(maxima).T
    return {"error_map": float(np.mean(error >= warn)), "detector_map": float(np.mean(detector >= warn))}


def classifier_accuracy(inspector: Inspector, change, samples: list, spec, batch: int = 32) -> float:
    """Share of the defect images of ``samples`` whose class the classifier names through ``change``
    (frames handed to the runtime as 16-bit images, as a camera would deliver them; a frame the
    runtime refuses counts as a miss)."""
    defects = [s for s in samples if not s.is_normal]
    named = 0
    for start in range(0, len(defects), batch):
        chunk = defects[start: start + batch]
        frames = [np.round(change(preprocess(s.path, spec)) * 65535.0).astype(np.uint16) for s in chunk]
        results = inspector.inspect_batch(frames, always_classify=True)
        named += sum(getattr(r, "defect_class", None) == s.label for r, s in zip(results, chunk))
    return named / len(defects)


def study(manifest_path: Path, profile_name: str) -> dict:
    gate = deployed_gate(manifest_path, profile_name)
    result = {"calibration_normals": gate.profile.calibration_normals,
              "changes": {name: change_metrics(gate.scorer, change, gate.splits, gate.config.preprocess, gate.profile,
                                               gate.entry["thresholds"])
                          for name, change in CHANGES.items()}}
    if gate.scorer.residual_detector is not None:
        result["test_normals_flagged_by_each_map"] = {
            name: maps_flagged(gate.scorer, change, gate.splits["test"], gate.config.preprocess, gate.profile,
                               gate.entry["thresholds"]["warn"]) for name, change in CHANGES.items()}
    inspector = Inspector.from_manifest(manifest_path, profile_name)
    result["classifier_test_accuracy"] = {"precision": inspector.precision, **{
        name: classifier_accuracy(inspector, change, gate.splits["test"], gate.config.preprocess)
        for name, change in CHANGES.items()}}
    if gate.scorer.frame_term is not None:
        result["frame_term_references_by_split"] = references_by_split(gate.scorer, gate.splits, gate.config.preprocess)
    return result


def _cell(row: dict | None) -> str:
    if row is None:
        return "-"
    return (f"{row['false_alarm_rate_warn']:.3f}, {row['gate_recall_warn']:.3f}, {row['image_auroc']:.3f}")


def main(argv: list[str] | None = None) -> int:
    args = study_parser("python -m studies.camera_study", __doc__).parse_args(argv)
    result = study(args.manifest, args.profile)
    write_result(args.profile, "camera_study", result)
    print("| change (test split; each cell: false alarms at warn, gate recall at warn, image AUROC) | "
          "deployed thresholds | re-commissioned | re-commissioned, frame-term references re-measured |")
    print("|---|---|---|---|")
    for name, rows in result["changes"].items():
        print(f"| {name} | {_cell(rows['deployed_thresholds'])} | {_cell(rows['recommissioned'])} | "
              f"{_cell(rows.get('recommissioned_with_references'))} |")
    if "test_normals_flagged_by_each_map" in result:
        print("\n| change | test normals over warn: error map alone / detector's map alone |\n|---|---|")
        for name, row in result["test_normals_flagged_by_each_map"].items():
            print(f"| {name} | {row['error_map']:.3f} / {row['detector_map']:.3f} |")
    accuracy = result["classifier_test_accuracy"]
    print(f"\n| change | classifier accuracy, test defect images ({accuracy['precision']} head) |\n|---|---|")
    for name, value in accuracy.items():
        if name != "precision":
            print(f"| {name} | {value:.3f} |")
    for split, refs in result.get("frame_term_references_by_split", {}).items():
        print(f"\nframe-term references on the {split} split's defect-free frames: map {refs['map_reference']:.3f}, "
              f"frame error {refs['frame_reference']:.3f}", end="")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
