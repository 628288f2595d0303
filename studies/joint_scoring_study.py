"""``python -m studies.joint_scoring_study --profile P``: the level power, level cap and detector smoothing chosen together.

The level power and cap (``studies.level_power_study``, ``studies.level_cap_study``) and the smoothing of a
residual detector's map were each chosen with the others held as deployed, on different gates
(docs/gate_design.md, steps 8, 10 and 14). This scores every combination of ``POWERS`` x ``CAPS`` x
``DETECTOR_SIGMAS`` on the deployed graph, each calibrated as ``python -m export`` calibrates (the
detector's scale set again, then the thresholds, on the validation split), and applies one rule,
fixed before the study was first run:

1. *Eligible*: no defect class loses more than ``TIE_IMAGES`` validation images at warn against the
   deployed scoring.
2. The deployed scoring stays unless an eligible scoring flags more than ``TIE_IMAGES`` validation
   images more at warn than it does (the design log's tie).
3. Among those that do: the most validation images at warn; scorings within ``TIE_IMAGES`` images of it
   tie, and among them the most at defect, again with ties of ``TIE_IMAGES`` images, which go to the
   fewest options changed from the deployed scoring, then to the power nearest the deployed one.

The test split is reported, never used to choose. A gate without a residual detector sweeps power and
cap only. Writes results/<profile>/joint_scoring_study.json and a Markdown table of the best rows.
"""

from __future__ import annotations

import itertools
import sys
from collections import Counter
from dataclasses import dataclass

from edge_runtime.inspector import session
from studies.level_cap_study import calibrated_scoring, rescored
from studies.level_power_study import TIE_IMAGES
from studies.score_options import MemoSession
from export.study_cli import deployed_gate, study_parser, write_result

POWERS = (1.0, 1.1, 1.25, 1.4, 1.5, 1.75, 2.0)
CAPS = (None, 3.0, 2.5, 2.0, 1.75, 1.5)
DETECTOR_SIGMAS = (3.0, 4.0, 5.0)
TABLE_ROWS = 15


@dataclass(frozen=True)
class Scoring:
    """One combination of the three options."""

    level_power: float
    level_cap: float | None
    detector_sigma: float | None  # None: the gate has no residual detector

    @property
    def name(self) -> str:
        cap = "none" if self.level_cap is None else f"{self.level_cap:g}"
        sigma = "" if self.detector_sigma is None else f", detector sigma {self.detector_sigma:g}"
        return f"power {self.level_power:g}, cap {cap}{sigma}"

    def changes_from(self, other: "Scoring") -> int:
        return sum(a != b for a, b in zip(
            (self.level_power, self.level_cap, self.detector_sigma),
            (other.level_power, other.level_cap, other.detector_sigma)))


def study(manifest_path, profile_name: str) -> dict:
    gate = deployed_gate(manifest_path, profile_name)
    shared = MemoSession(session(gate.config.autoencoder.verify()))
    detector = gate.config.residual_detector
    deployed = Scoring(gate.config.score_level_power, gate.config.score_level_cap,
                       None if detector is None else detector.sigma)
    sigmas = (None,) if detector is None else DETECTOR_SIGMAS
    grid = [Scoring(*options) for options in itertools.product(POWERS, CAPS, sigmas)]
    if deployed not in grid:
        grid.append(deployed)
    rows = {}
    for scoring in grid:
        scorer = rescored(gate, shared, residual_sigma=scoring.detector_sigma,
                          score_level_power=scoring.level_power, score_level_cap=scoring.level_cap)
        rows[scoring.name] = {"level_power": scoring.level_power, "level_cap": scoring.level_cap,
                              "detector_sigma": scoring.detector_sigma, **calibrated_scoring(gate, scorer)}
        print(f"{scoring.name}: validation recall at warn {rows[scoring.name]['val']['gate_recall_warn']:.3f}",
              flush=True)
    class_sizes = Counter(sample.label for sample in gate.splits["val"] if not sample.is_normal)
    chosen = chosen_scoring(rows, deployed.name, class_sizes)
    return {"deployed": deployed.name, "chosen": chosen, "val_class_sizes": dict(class_sizes), "rows": rows}


def chosen_scoring(rows: dict, deployed: str, class_sizes: dict[str, int]) -> str:
    """The rule in the module docstring, on the validation figures of ``rows`` (keyed by scoring name)."""
    n_images = sum(class_sizes.values())
    images = {name: {key: row["val"][key] * n_images for key in ("gate_recall_warn", "gate_recall_defect")}
              for name, row in rows.items()}
    before = rows[deployed]["val"]["gate_recall_warn_per_class"]

    def most_lost(name: str) -> float:
        per_class = rows[name]["val"]["gate_recall_warn_per_class"]
        return max((before[label] - per_class[label]) * size for label, size in class_sizes.items())

    gainers = [name for name in rows if most_lost(name) <= TIE_IMAGES + 1e-9
               and images[name]["gate_recall_warn"] > images[deployed]["gate_recall_warn"] + TIE_IMAGES + 1e-9]
    if not gainers:
        return deployed
    best_warn = max(images[name]["gate_recall_warn"] for name in gainers)
    at_warn = [name for name in gainers if images[name]["gate_recall_warn"] >= best_warn - TIE_IMAGES - 1e-9]
    best_defect = max(images[name]["gate_recall_defect"] for name in at_warn)
    at_defect = [name for name in at_warn if images[name]["gate_recall_defect"] >= best_defect - TIE_IMAGES - 1e-9]
    reference = _scoring(rows[deployed])
    return min(at_defect, key=lambda name: (_scoring(rows[name]).changes_from(reference),
                                            abs(rows[name]["level_power"] - reference.level_power)))


def _scoring(row: dict) -> Scoring:
    return Scoring(row["level_power"], row["level_cap"], row["detector_sigma"])


def main(argv: list[str] | None = None) -> int:
    args = study_parser("python -m studies.joint_scoring_study", __doc__).parse_args(argv)
    result = study(args.manifest, args.profile)
    out = write_result(args.profile, "joint_scoring_study", result)
    print(f"\n{out}: deployed {result['deployed']}; chosen {result['chosen']}\n")
    print("| scoring | val recall @warn / @defect | test recall @warn / @defect | test crops flagged @warn | "
          "test image AUROC | frames that show no steel, flagged |")
    print("|---|---|---|---|---|---|")
    ranked = sorted(result["rows"], key=lambda name: (-result["rows"][name]["val"]["gate_recall_warn"],
                                                      -result["rows"][name]["val"]["gate_recall_defect"]))
    shown = ranked[:TABLE_ROWS] + [name for name in (result["deployed"], result["chosen"])
                                   if name not in ranked[:TABLE_ROWS]]
    for name in shown:
        row = result["rows"][name]
        val, test = row["val"], row["test"]
        flagged = sum(reading["verdict"] != "ok" for reading in row["not_steel"].values())
        mark = " (deployed)" if name == result["deployed"] else ""
        print(f"| {name}{mark} | {val['gate_recall_warn']:.3f} / {val['gate_recall_defect']:.3f} | "
              f"{test['gate_recall_warn']:.3f} / {test['gate_recall_defect']:.3f} | "
              f"{test['false_alarm_rate_warn']:.3f} | {test['image_auroc']:.3f} | {flagged} of {len(row['not_steel'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
