"""``python -m studies.exposure_study --profile P``: do the deployed thresholds survive a change of lighting?

A line's thresholds hold for the exposure they were set at. A brighter or darker camera, an
ageing lamp or a dirty lens changes the grey levels of every frame; the backbone's features,
and with them the reconstruction errors, move too. This scales each test-split frame's grey
levels by a gain (clipped to [0, 1]) and measures, at the deployed thresholds, what the
export measures: false alarms on the profile's calibration normals, gate recall and image
AUROC (``export.calibrate``). The answer for a plant: re-commission (``python -m
edge_runtime calibrate``) after any change of lighting or camera settings.
Writes results/<profile>/exposure_study.json and a Markdown table to stdout.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import numpy as np

from edge_runtime.anomaly import AnomalyScorer
from edge_runtime.preprocess import preprocess
from export import calibrate
from export.study_cli import deployed_gate, study_parser, write_result

GAINS = (0.8, 0.9, 1.0, 1.1, 1.2)


class ChangedFrames:
    """An ``AnomalyScorer`` that sees every frame through ``change`` (a [0, 1] gray frame in, one out), as
    if a different camera had captured it; everything else is the wrapped scorer's."""

    def __init__(self, scorer: AnomalyScorer, change: Callable[[np.ndarray], np.ndarray]) -> None:
        self._scorer, self._change = scorer, change

    def seen(self, frame: np.ndarray) -> np.ndarray:
        return self._change(frame)

    def anomaly_map(self, frame: np.ndarray) -> np.ndarray:
        return self._scorer.anomaly_map(self.seen(frame))

    def model_input(self, frame: np.ndarray):
        return self._scorer.model_input(self.seen(frame))

    def __getattr__(self, name: str):
        return getattr(self._scorer, name)


class GainScorer(ChangedFrames):
    """Every frame with its grey levels times ``gain``, clipped to [0, 1] (counted in ``clipped_share``)."""

    def __init__(self, scorer: AnomalyScorer, gain: float) -> None:
        super().__init__(scorer, lambda frame: np.clip(frame * gain, 0.0, 1.0).astype(np.float32))
        self._gain = gain
        self._clipped = self._pixels = 0

    @property
    def clipped_share(self) -> float:
        """Share of the pixels seen so far that the gain pushed past white."""
        return self._clipped / self._pixels if self._pixels else 0.0

    def seen(self, frame: np.ndarray) -> np.ndarray:
        self._clipped += int(np.count_nonzero(frame * self._gain > 1.0))
        self._pixels += frame.size
        return super().seen(frame)


def gain_metrics(scorer: AnomalyScorer, samples: list, spec, limits: dict, calibration_normals: str,
                 gains: tuple[float, ...] = GAINS, seed: int = 0) -> dict:
    """``calibrate.gate_metrics`` at fixed thresholds for each gain, with the share of clipped pixels:
    {"0.8": metrics, ...}."""
    rows = {}
    for gain in gains:
        scaled = GainScorer(scorer, gain)
        scores = calibrate.gate_scores(scaled, samples, spec, seed)
        rows[f"{gain:g}"] = {**calibrate.gate_metrics(scores, limits, calibration_normals),
                             "clipped_pixel_share": scaled.clipped_share}
    return rows


def median_grey_levels(samples: list, spec) -> dict:
    """5th / 50th / 95th percentile of the frames' median grey level, as captured: how much exposure
    varies within a data set (and where a profile's ``exposure_median`` comes from)."""
    medians = [float(np.median(preprocess(sample.path, spec))) for sample in samples]
    return dict(zip(("p5", "p50", "p95"), map(float, np.percentile(medians, [5, 50, 95]))))


def study(manifest_path: Path, profile: str) -> dict:
    gate = deployed_gate(manifest_path, profile)
    limits = gate.entry["thresholds"]
    return {"thresholds": {k: limits[k] for k in ("warn", "defect")},
            "training_split_median_grey": median_grey_levels(gate.splits["train"], gate.config.preprocess),
            "calibration_normals": gate.profile.calibration_normals,
            "gains": gain_metrics(gate.scorer, gate.splits["test"], gate.config.preprocess, limits,
                                  gate.profile.calibration_normals, seed=gate.profile.seed)}


def main(argv: list[str] | None = None) -> int:
    args = study_parser("python -m studies.exposure_study", __doc__).parse_args(argv)
    result = study(args.manifest, args.profile)
    write_result(args.profile, "exposure_study", result)
    levels = result["training_split_median_grey"]
    print(f"median grey of the training split's frames: p5 {levels['p5']:.3f}, p50 {levels['p50']:.3f}, "
          f"p95 {levels['p95']:.3f}\n")
    print("| grey-level gain | pixels clipped | false alarms at warn / defect | gate recall at warn / defect | image AUROC |")
    print("|---|---|---|---|---|")
    for gain, row in result["gains"].items():
        print(f"| {gain} | {row['clipped_pixel_share']:.4f} | {row['false_alarm_rate_warn']:.3f} / "
              f"{row['false_alarm_rate_defect']:.3f} | {row['gate_recall_warn']:.3f} / {row['gate_recall_defect']:.3f} | "
              f"{row['image_auroc']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
