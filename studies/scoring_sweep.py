"""``python -m studies.scoring_sweep --profile P --option NAME VALUE [VALUE ...]``: one scoring option, swept.

For a scoring option of the deployed gate with no study of its own (a ``ProfileConfig`` field such as
``ignore_border`` or ``score_sigma``), each value is scored on the deployed graph and calibrated as
``python -m export`` calibrates (a frame-level term's references and a residual detector's scale set
again, then the thresholds, on the validation split; ``studies.level_cap_study.scoring_sweep``).
Validation figures are what a choice may rest on; the test split is reported beside them. Values are
read as JSON (``null`` for none). Writes results/<profile>/scoring_sweep_<option>.json and a Markdown table.
"""

from __future__ import annotations

import json
import sys

from studies.level_cap_study import scoring_sweep
from export.study_cli import study_parser, write_result


def study(manifest_path, profile_name: str, option: str, values: list) -> dict:
    gate, readings = scoring_sweep(manifest_path, profile_name, option, values)
    deployed = getattr(gate.config, option)
    rows = {json.dumps(value): {option: value, **{split: reading[split] for split in ("thresholds", "val", "test")}}
            for value, reading in readings.items()}
    return {"option": option, "deployed": deployed, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = study_parser("python -m studies.scoring_sweep", __doc__)
    parser.add_argument("--option", required=True, help="a ProfileConfig scoring field, e.g. ignore_border")
    parser.add_argument("values", nargs="+", type=json.loads, help="values to score, as JSON")
    args = parser.parse_args(argv)
    result = study(args.manifest, args.profile, args.option, args.values)
    out = write_result(args.profile, f"scoring_sweep_{args.option}", result)
    print(f"\n{out}: deployed {args.option} = {json.dumps(result['deployed'])}\n")
    print(f"| {args.option} | val recall @warn / @defect | val normals flagged @warn | val image AUROC | "
          "test recall @warn / @defect | test normals flagged @warn | test image AUROC |")
    print("|---|---|---|---|---|---|---|")
    for name, row in result["rows"].items():
        val, test = row["val"], row["test"]
        print(f"| {name} | {val['gate_recall_warn']:.3f} / {val['gate_recall_defect']:.3f} | "
              f"{val['false_alarm_rate_warn']:.3f} | {val['image_auroc']:.3f} | "
              f"{test['gate_recall_warn']:.3f} / {test['gate_recall_defect']:.3f} | "
              f"{test['false_alarm_rate_warn']:.3f} | {test['image_auroc']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
