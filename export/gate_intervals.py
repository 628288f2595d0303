"""``python -m export.gate_intervals --profile neu-steel``: how sure the gate's headline figures are.

The export sets the thresholds on the validation split's calibration normals and reads the gate on the
test split (``python -m export``, ``metrics.gate_test`` in the manifest). Both splits are samples, so each
figure carries the noise of both. Here, 95% intervals from a bootstrap over images (an image's box-free
windows go with it: they share its steel and its lighting, so they are not independent draws):

* *whole protocol*: each round draws the validation images with replacement, sets the thresholds on their
  calibration normals as the export does, draws the test images with replacement and reads the test
  figures at those thresholds;
* *thresholds as deployed*: the manifest's thresholds held, only the test images drawn;
* for the recalls, also the Wilson interval of the proportion (``scipy.stats.binomtest``), which counts
  the test images alone.

Figures: recall at warn and at defect, the share of the calibration normals flagged at warn, the image
AUROC against them. Writes results/<profile>/gate_intervals.json and a Markdown table.
"""

from __future__ import annotations

import sys

import numpy as np
from scipy.stats import binomtest

from edge_runtime.result import flagged
from export.calibrate import calibrate_on_splits, calibration_scores, headline_metrics, joined_scores, thresholds
from export.study_cli import deployed_gate, study_parser, write_result

FIGURES = ("gate_recall_warn", "gate_recall_defect", "false_alarm_rate_warn", "image_auroc")


def headline(scores: dict, limits: dict, calibration_normals: str) -> dict:
    """The figures of one split's scores (``calibrate.gate_scores``) at ``limits``, as the export reads them
    (``false_alarm_rate_warn``: the calibration normals flagged at warn)."""
    figures = headline_metrics(calibration_scores(scores, calibration_normals), scores["defect_image"], limits)
    return {key: figures[key] for key in FIGURES}


def drawn(per_sample: list[dict], rng: np.random.Generator) -> dict:
    """One bootstrap draw of a split: its samples drawn with replacement, each with all its scores."""
    return joined_scores([per_sample[i] for i in rng.integers(len(per_sample), size=len(per_sample))])


def usable_draw(per_sample: list[dict], rng: np.random.Generator, calibration_normals: str) -> dict:
    """A draw with calibration normals and defect images in it: a small split can draw none of one kind, and
    such a draw has no threshold or no recall, so it is drawn again (a large split's first draw is kept, so
    its intervals are those of plain draws)."""
    for _ in range(1000):
        draw = drawn(per_sample, rng)
        try:
            calibration_scores(draw, calibration_normals)
        except ValueError:
            continue
        if len(draw["defect_image"]):
            return draw
    raise ValueError("the split is too small to bootstrap: its draws hold no defect-free or no defect image")


def interval(values: list[float]) -> list[float]:
    return [float(v) for v in np.percentile(values, [2.5, 97.5])]


def bootstrap(val: list[dict], test: list[dict], deployed: dict, profile, rounds: int) -> dict:
    """Per figure, the 95% intervals of the whole protocol and of the test draw at the deployed thresholds."""
    rng = np.random.default_rng(profile.seed)
    whole, fixed = {k: [] for k in FIGURES}, {k: [] for k in FIGURES}
    for _ in range(rounds):
        limits = thresholds(calibration_scores(usable_draw(val, rng, profile.calibration_normals),
                                               profile.calibration_normals),
                            profile.false_alarm_rate, profile.warn_false_alarm_rate)
        test_draw = usable_draw(test, rng, profile.calibration_normals)
        for figures, at in ((whole, limits), (fixed, deployed)):
            for key, value in headline(test_draw, at, profile.calibration_normals).items():
                figures[key].append(value)
    return {key: {"whole_protocol": interval(whole[key]), "thresholds_as_deployed": interval(fixed[key])}
            for key in FIGURES}


def wilson(scores: dict, threshold: float) -> list[float]:
    images = scores["defect_image"]
    low, high = binomtest(int(np.sum(flagged(images, threshold))), len(images)).proportion_ci(0.95, method="wilson")
    return [float(low), float(high)]


def intervals(val: list[dict], test: list[dict], limits: dict, profile, rounds: int = 2000) -> dict:
    """The 95% intervals of the test figures at ``limits`` (the thresholds set on ``val``), as the export
    records them in the manifest (``metrics.gate_test.intervals_95``): per figure the bootstrap's two readings,
    and the Wilson intervals of the recalls. ``val`` / ``test``: ``calibrate.gate_scores_by_sample``."""
    test_scores = joined_scores(test)
    return {"rounds": rounds, "bootstrap": bootstrap(val, test, limits, profile, rounds),
            "wilson": {"gate_recall_warn": wilson(test_scores, limits["warn"]),
                       "gate_recall_defect": wilson(test_scores, limits["defect"])}}


def study(manifest_path, profile_name: str, rounds: int) -> dict:
    """The deployed gate scored by the export's protocol (``calibrate.calibrate_on_splits``), its test figures
    read at the manifest's thresholds, and their intervals."""
    gate = deployed_gate(manifest_path, profile_name)
    profile = gate.profile
    calibration = calibrate_on_splits(gate.scorer, gate.splits, profile)
    deployed = {level: gate.entry["thresholds"][level] for level in ("warn", "defect")}
    return {"calibration_normals": profile.calibration_normals,
            "n_test_images": int(calibration.test["n_defect_images"]),
            "n_test_normals": int(calibration.test["n_normal"]),
            "thresholds_deployed": deployed,
            "thresholds_recalibrated": {level: calibration.limits[level] for level in ("warn", "defect")},
            "test": headline(calibration.test_scores, deployed, profile.calibration_normals),
            **intervals(calibration.by_sample["val"], calibration.by_sample["test"], deployed, profile, rounds)}


def main(argv: list[str] | None = None) -> int:
    parser = study_parser("python -m export.gate_intervals", __doc__)
    parser.add_argument("--rounds", type=int, default=2000, help="bootstrap rounds (default 2000)")
    args = parser.parse_args(argv)
    result = study(args.manifest, args.profile, args.rounds)
    out = write_result(args.profile, "gate_intervals", result)
    span = lambda pair: f"{pair[0]:.3f}-{pair[1]:.3f}" if pair else "-"  # noqa: E731
    print(f"{out}\n\ntest split: {result['n_test_images']} defect images, {result['n_test_normals']} calibration "
          f"normals ({result['calibration_normals']})\n\n| figure (test split) | measured | 95% interval, whole protocol "
          "| 95% interval, thresholds as deployed | Wilson (test images) |\n|---|---|---|---|---|")
    for key in FIGURES:
        ranges = result["bootstrap"][key]
        print(f"| {key} | {result['test'][key]:.3f} | {span(ranges['whole_protocol'])} | "
              f"{span(ranges['thresholds_as_deployed'])} | {span(result['wilson'].get(key))} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
