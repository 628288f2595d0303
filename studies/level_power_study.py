"""``python -m studies.level_power_study --profile P``: how hard a normalised map divides by its level.

A normalised gate (``normalise`` frame_mean / median) divides its map by the frame's own error level,
capped at ``level_cap``. ``AnomalyScorer``'s ``level_power`` raises that level to a power first: 1 reads
"times this frame's typical error", 0 is the plain map, above 1 a frame whose whole texture is off is
held back further against a frame whose peak stands out from a well-rebuilt texture. For each power
this measures, on the deployed gate and scoring otherwise: thresholds set on the validation normals as
``python -m export`` sets them, validation and test recall and false alarms (on the calibration normals
and on every reading of a boxed data set's normals), and the verdicts of frames that show no steel.

Higher powers trade one defect class against another (on neu-steel, patches against crazing and
inclusions), so the rule the profile's power follows (validation only) protects every class first:
among the powers under which no defect class loses more than ``TIE_IMAGES`` validation images at warn
against power 1 (plain "times its typical error"), the best validation recall at warn; powers within
``TIE_IMAGES`` images of it tie, and among those the best validation recall at defect (the defects
rejected at once) wins, again with ties of ``TIE_IMAGES`` images, which go to the power nearest 1 (the
scoring as it was). Writes results/<profile>/level_power_study.json and
a Markdown table.
"""

from __future__ import annotations

import sys
from collections import Counter

from studies.level_cap_study import scoring_sweep
from export.study_cli import study_parser, write_result

POWERS = (0.0, 0.5, 0.75, 1.0, 1.1, 1.25, 1.4, 1.5, 1.75, 2.0)
TIE_IMAGES = 3  # the design log's rule: differences of up to three validation images are ties


def study(manifest_path, profile_name: str) -> dict:
    gate, readings = scoring_sweep(manifest_path, profile_name, "score_level_power", POWERS)
    rows = {f"{power:g}": {"level_power": power, **reading} for power, reading in readings.items()}
    class_sizes = Counter(sample.label for sample in gate.splits["val"] if not sample.is_normal)
    return {"rows": rows, "val_class_sizes": dict(class_sizes), "chosen": chosen_power(rows, class_sizes)}


def chosen_power(rows: dict, class_sizes: dict[str, int]) -> float:
    """The rule in the module docstring, on the validation figures of ``rows`` (one has power 1)."""
    val = {row["level_power"]: row["val"] for row in rows.values()}
    before = val[1.0]["gate_recall_warn_per_class"]

    def images_lost(power: float) -> float:
        return max((before[name] - val[power]["gate_recall_warn_per_class"][name]) * size
                   for name, size in class_sizes.items())

    safe = [power for power in val if images_lost(power) <= TIE_IMAGES + 1e-9]
    tie = TIE_IMAGES / sum(class_sizes.values())
    best = max(val[power]["gate_recall_warn"] for power in safe)
    tied = [power for power in safe if val[power]["gate_recall_warn"] >= best - tie - 1e-12]
    best_defect = max(val[power]["gate_recall_defect"] for power in tied)
    tied = [power for power in tied if val[power]["gate_recall_defect"] >= best_defect - tie - 1e-12]
    return min(tied, key=lambda power: abs(power - 1.0))


def main(argv: list[str] | None = None) -> int:
    args = study_parser("python -m studies.level_power_study", __doc__).parse_args(argv)
    result = study(args.manifest, args.profile)
    out = write_result(args.profile, "level_power_study", result)
    print(f"\n{out}: chosen level power {result['chosen']:g}\n")
    print("| level power | val recall @warn / @defect | val image AUROC | test recall @warn / @defect | "
          "test FAR @warn (calibration normals) | test in-context window FAR @warn | test image AUROC | "
          "frames that show no steel, flagged |")
    print("|---|---|---|---|---|---|---|---|")
    for name, row in result["rows"].items():
        val, test = row["val"], row["test"]
        flagged = sum(reading["verdict"] != "ok" for reading in row["not_steel"].values())
        print(f"| {name} | {val['gate_recall_warn']:.3f} / {val['gate_recall_defect']:.3f} | {val['image_auroc']:.3f} | "
              f"{test['gate_recall_warn']:.3f} / {test['gate_recall_defect']:.3f} | {test['false_alarm_rate_warn']:.3f} | "
              f"{test.get('window_false_alarm_rate_warn', float('nan')):.3f} | {test['image_auroc']:.3f} | "
              f"{flagged} of {len(row['not_steel'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
