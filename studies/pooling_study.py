"""``python -m studies.pooling_study --profile P``: the score as the mean of the map's hottest pixels, not its maximum.

The deployed score is the maximum of the gate's map. A mean over the ``k`` hottest pixels asks a departure
to cover an area before it counts in full, which a lone hot pixel of texture noise does not. ``k`` is a
pixel count, not a share of the frame, so a 64x64 calibration crop and a whole frame are read alike. For
each ``k``: the deployed map (error map and detector, as the runtime joins them), thresholds set on the
validation split's calibration normals as ``python -m export`` sets them, recall at warn and at defect
and the misses per class on both splits, the test normals flagged, and the share of the synthetic
strip's clean frames flagged at warn (whole clean frames, which the crops are not; ``--strip-frames``).
A measurement only: the runtime scores the maximum (docs/gate_design.md, steps 14 and 18).
Writes results/<profile>/pooling_study.json and a Markdown table.
"""

from __future__ import annotations

import random
import sys

import numpy as np

from edge_runtime.commissioning import threshold_for_false_alarm
from edge_runtime.preprocess import preprocess
from export import calibrate
from studies.strip_study import clean_frames
from export.study_cli import deployed_gate, share_at_or_over, share_text, split_figures, study_parser, write_result

TOP_PIXELS = (1, 64, 256, 512, 1024, 2048)  # 1: the maximum, as deployed


def top_mean(anomaly_map: np.ndarray, k: int) -> float:
    """Mean of the ``k`` largest values of ``anomaly_map`` (all of them where it has fewer)."""
    values = anomaly_map.ravel()
    k = min(k, values.size)
    return float(np.partition(values, values.size - k)[values.size - k:].mean())


def split_maps(gate, split: str) -> dict:
    """The deployed maps of a split: its defect images' (with labels) and its calibration crops'."""
    scorer, spec = gate.scorer, gate.config.preprocess
    rng = random.Random(gate.profile.seed)
    images, labels, crops = [], [], []
    for sample in gate.splits[split]:
        frame = preprocess(sample.path, spec)
        if sample.is_normal:
            crops.append(scorer.anomaly_map(frame))
            continue
        images.append(scorer.anomaly_map(frame))
        labels.append(sample.label)
        crops += [scorer.anomaly_map(crop) for crop in calibrate.calibration_crops(frame, sample.boxes, rng)]
    return {"images": images, "labels": np.array(labels), "crops": crops}


def strip_maps(gate, frames: int) -> list[np.ndarray]:
    """The deployed maps of the synthetic strip's first ``frames`` clean frames (those of strip_study)."""
    return [gate.scorer.anomaly_map(frame) for frame in clean_frames(frames)]


def pooled_row(maps: dict, k: int, rates: tuple[float, float]) -> dict:
    """Thresholds on the validation crops (``rates``: defect, warn) and the figures of both splits."""
    def scores(key: str, split: str) -> np.ndarray:
        return np.array([top_mean(m, k) for m in maps[split][key]])

    normals = scores("crops", "val")
    defect, warn = (threshold_for_false_alarm(normals, rate) for rate in rates)
    row = {"top_pixels": k, "thresholds": {"warn": warn, "defect": defect}}
    for split in ("val", "test"):
        row[split] = split_figures(scores("images", split), maps[split]["labels"], scores("crops", split), warn, defect)
    row["strip_clean_flagged_warn"] = share_at_or_over(np.array([top_mean(m, k) for m in maps["strip"]]), warn)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = study_parser("python -m studies.pooling_study", __doc__)
    parser.add_argument("--strip-frames", type=int, default=600, help="clean synthetic strip frames (default 600)")
    args = parser.parse_args(argv)
    gate = deployed_gate(args.manifest, args.profile)
    maps = {split: split_maps(gate, split) for split in ("val", "test")} | {"strip": strip_maps(gate, args.strip_frames)}
    rates = (gate.profile.false_alarm_rate, gate.profile.warn_false_alarm_rate)
    rows = [pooled_row(maps, k, rates) for k in TOP_PIXELS]
    out = write_result(args.profile, "pooling_study", {"rows": rows})
    print(f"{out}\n\n| score | val recall @warn / @defect | test recall @warn / @defect | test normals flagged @warn "
          f"| clean strip flagged @warn | test misses at warn per class |\n|---|---|---|---|---|---|")
    for row in rows:
        name = "maximum (deployed)" if row["top_pixels"] == 1 else f"mean of the top {row['top_pixels']} px"
        val, test = row["val"], row["test"]
        missed = ", ".join(f"{label} {count}" for label, count in test["missed_warn_per_class"].items())
        print(f"| {name} | {val['gate_recall_warn']:.3f} / {val['gate_recall_defect']:.3f} | "
              f"{test['gate_recall_warn']:.3f} / {test['gate_recall_defect']:.3f} | "
              f"{test['normals_flagged_warn']:.3f} | {share_text(row['strip_clean_flagged_warn'])} | {missed} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
