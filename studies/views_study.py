"""``python -m studies.views_study --profile P``: what scoring mirror views gains, and what a cascade keeps.

The deployed gate scored with one view (the frame) and with three (``AnomalyScorer(views=3)``: also
its left-right and top-bottom mirror images, their error cells averaged), each calibrated as
``python -m export`` calibrates: thresholds on the validation split's calibration normals, recall
on both splits. Then a cascade, simulated on the same scores: a frame gets its three-view score
only where its one-view score reaches a band (a quantile of the validation calibration normals'
one-view scores), else its one-view score, and the thresholds are set again on those mixed scores.
``slow_share`` is the share of calibration normals that would run the two extra views (a simulation:
the runtime does not run a band with a frame-level term). Each row also gives the operating point of
99% validation recall: the validation normals flagged there and the test recall.
Writes results/<profile>/views_study.json and a Markdown table.
"""

from __future__ import annotations

import sys

import numpy as np

from edge_runtime.inspector import session
from export import calibrate
from studies.level_cap_study import rescored
from studies.score_options import MemoSession
from export.study_cli import deployed_gate, study_parser, write_result

BAND_QUANTILES = (0.5, 0.7, 0.8, 0.9)
SPLITS = ("val", "test")


def view_scores(gate, shared, views: int) -> dict:
    """{split: ``calibrate.gate_scores``} of the deployed gate scoring ``views`` views on every frame."""
    scorer = rescored(gate, shared, score_views=views, score_views_from=None)
    return {split: calibrate.gate_scores(scorer, gate.splits[split], gate.config.preprocess, gate.profile.seed)
            for split in SPLITS}


def cascade(one: dict, three: dict, band: float) -> dict:
    """Per frame: the three-view score where the one-view score reaches ``band``, else the one-view one."""
    return {key: np.where(one[key] >= band, three[key], one[key]) for key in ("normal", "normal_crop", "defect_image")}


def reading(scores: dict, calibration: str, profile) -> dict:
    """Thresholds on the validation calibration normals; recall and normals flagged on both splits."""
    limits = calibrate.thresholds(calibrate.calibration_scores(scores["val"], calibration), profile.false_alarm_rate,
                                  profile.warn_false_alarm_rate)
    out = {"thresholds": {level: limits[level] for level in ("warn", "defect")}}
    for split in SPLITS:
        images, normals = scores[split]["defect_image"], calibrate.calibration_scores(scores[split], calibration)
        out[split] = {f"{what}_{level}": float(np.mean(values >= limits[level]))
                      for level in ("warn", "defect")
                      for what, values in (("gate_recall", images), ("normals_flagged", normals))}
    out["at_99_percent_val_recall"] = at_recall(scores, calibration, 0.99)
    return out


def at_recall(scores: dict, calibration: str, recall: float) -> dict:
    """The highest threshold that flags ``recall`` of the validation defect images, and what it flags:
    the share of validation and test calibration normals, and the test defect images."""
    images = np.sort(scores["val"]["defect_image"])
    threshold = float(images[int(np.floor((1.0 - recall) * len(images) + 1e-9))])
    flagged = {split: float(np.mean(calibrate.calibration_scores(scores[split], calibration) >= threshold))
               for split in SPLITS}
    return {"threshold": threshold, "val_normals_flagged": flagged["val"], "test_normals_flagged": flagged["test"],
            "test_recall": float(np.mean(scores["test"]["defect_image"] >= threshold))}


def study(manifest_path, profile_name: str) -> dict:
    gate = deployed_gate(manifest_path, profile_name)
    calibration = gate.profile.calibration_normals
    shared = MemoSession(session(gate.config.autoencoder.verify()))  # the frame's own view runs once for both
    one, three = view_scores(gate, shared, 1), view_scores(gate, shared, 3)
    rows = {"1 view": reading(one, calibration, gate.profile), "3 views": reading(three, calibration, gate.profile)}
    for quantile in BAND_QUANTILES:
        band = float(np.quantile(calibrate.calibration_scores(one["val"], calibration), quantile))
        mixed = {split: cascade(one[split], three[split], band) for split in SPLITS}
        rows[f"cascade from the {quantile:.0%} quantile"] = {
            **reading(mixed, calibration, gate.profile), "band": band,
            "slow_share": {split: float(np.mean(calibrate.calibration_scores(one[split], calibration) >= band))
                           for split in SPLITS}}
    flagged = three["val"]["defect_image"] >= rows["3 views"]["thresholds"]["warn"]
    lowest = float(one["val"]["defect_image"][flagged].min()) if flagged.any() else None
    return {"calibration_normals": calibration, "rows": rows,
            # where a band must stay under to keep every validation image three views flag at warn
            "lowest_one_view_score_of_a_flagged_val_image": lowest,
            "its_quantile_among_val_normals": None if lowest is None else float(
                np.mean(calibrate.calibration_scores(one["val"], calibration) < lowest))}


def main(argv: list[str] | None = None) -> int:
    args = study_parser("python -m studies.views_study", __doc__).parse_args(argv)
    result = study(args.manifest, args.profile)
    out = write_result(args.profile, "views_study", result)
    print(f"\n{out}: the lowest one-view score of a validation image three views flag at warn sits at the "
          f"{result['its_quantile_among_val_normals']} quantile of the validation normals' one-view scores\n")
    print("| scoring | val recall @warn / @defect | test recall @warn / @defect | test normals flagged @warn | "
          "normals running 3 views (val / test) | val normals flagged for 99% val recall (test recall there) |")
    print("|---|---|---|---|---|---|")
    for name, row in result["rows"].items():
        val, test, at_99 = row["val"], row["test"], row["at_99_percent_val_recall"]
        slow = row.get("slow_share")
        share = "-" if slow is None else f"{slow['val']:.2f} / {slow['test']:.2f}"
        print(f"| {name} | {val['gate_recall_warn']:.3f} / {val['gate_recall_defect']:.3f} | "
              f"{test['gate_recall_warn']:.3f} / {test['gate_recall_defect']:.3f} | "
              f"{test['normals_flagged_warn']:.3f} | {share} | {at_99['val_normals_flagged']:.3f} "
              f"({at_99['test_recall']:.3f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
