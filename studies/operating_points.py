"""``python -m studies.operating_points --profile P``: what the deployed gate flags at other false-alarm rates.

The export sets the warn threshold at 5% of the validation normals (NEU-DET: box-free 64x64 crops
scored as frames of their own). This sets it, by the same rule, at each rate of ``RATES`` instead
and reads the recall on the validation and test defect images and the test normals flagged: how
far the gate is from the issue's target (99% of defect images at 5% of normal crops), and what a
line trading false alarms for recall would get; and the defect images the deployed warn threshold
misses, per class and how close under it they score. Nothing is chosen from it; the thresholds stay as
deployed. Writes results/<profile>/operating_points.json and a Markdown table to stdout.
"""

from __future__ import annotations

import sys

import numpy as np

from export import calibrate
from export.study_cli import deployed_gate, study_parser, write_result

RATES = (0.01, 0.02, 0.05, 0.075, 0.10, 0.15, 0.20, 0.30)


def operating_points(manifest_path, profile_name: str) -> dict:
    gate = deployed_gate(manifest_path, profile_name)
    normals_kind = gate.profile.calibration_normals
    scores = {name: calibrate.gate_scores(gate.scorer, gate.splits[name], gate.config.preprocess, gate.profile.seed)
              for name in ("val", "test")}
    val_normals = calibrate.calibration_scores(scores["val"], normals_kind)
    test_normals = calibrate.calibration_scores(scores["test"], normals_kind)
    rows = []
    for rate in RATES:
        threshold = calibrate.thresholds(val_normals, rate, rate)["warn"]
        rows.append({"false_alarm_rate": rate, "threshold": threshold,
                     "val_recall": float(np.mean(scores["val"]["defect_image"] >= threshold)),
                     "test_recall": float(np.mean(scores["test"]["defect_image"] >= threshold)),
                     "test_false_alarms": float(np.mean(test_normals >= threshold))})
    return {"calibration_normals": normals_kind, "n_val_normals": int(len(val_normals)),
            "n_test_normals": int(len(test_normals)), "rows": rows,
            "missed_at_deployed_warn": {name: missed(split_scores, gate.config.thresholds.warn)
                                        for name, split_scores in scores.items()}}


def missed(scores: dict, warn: float) -> dict:
    """The defect images under ``warn``: how many per class, and how close under it they score."""
    images, labels = scores["defect_image"], np.array(scores["defect_label"])
    under = images < warn
    return {"count": int(under.sum()), "of": int(len(images)),
            "per_class": {label: int((under & (labels == label)).sum()) for label in sorted(set(labels))},
            "score_over_warn_quartiles": [float(q) for q in np.percentile(images[under] / warn, [25, 50, 75])]
            if under.any() else None}


def main(argv: list[str] | None = None) -> int:
    args = study_parser("python -m studies.operating_points", __doc__).parse_args(argv)
    result = operating_points(args.manifest, args.profile)
    write_result(args.profile, "operating_points", result)
    print(f"normals: {result['calibration_normals']} ({result['n_val_normals']} validation, "
          f"{result['n_test_normals']} test)")
    print("| threshold set for validation false alarms | threshold | validation recall | test recall | "
          "test false alarms |")
    print("|---|---|---|---|---|")
    for row in result["rows"]:
        print(f"| {row['false_alarm_rate']:.3f} | {row['threshold']:.4f} | {row['val_recall']:.3f} | "
              f"{row['test_recall']:.3f} | {row['test_false_alarms']:.3f} |")
    for split, gone in result["missed_at_deployed_warn"].items():
        quartiles = gone["score_over_warn_quartiles"] or []
        print(f"{split}: {gone['count']} of {gone['of']} defect images under the deployed warn threshold "
              f"({', '.join(f'{k} {v}' for k, v in gone['per_class'].items())}); their score over the threshold, "
              f"quartiles {' / '.join(f'{q:.2f}' for q in quartiles) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
