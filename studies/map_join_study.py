"""``python -m studies.map_join_study --profile neu-steel``: the error map and the detector's map, joined otherwise.

The gate's map is the pixel-wise maximum of its error map and its residual detector's scaled map
(``edge_runtime.anomaly.join_maps``). A power mean of the two, ((e^p + d^p) / 2)^(1/p), also counts a pixel
that is high on both. For each join (the maximum and ``POWERS``): thresholds set on the validation split's
calibration crops as ``python -m export`` sets them (the detector's scale as deployed), recall at warn and at
defect with the misses per class on both splits, the test crops flagged, the validation crops flagged at
warn through each of the four camera changes a detector is trained to ignore (``studies.camera_study``), and
the first ``--strip-frames`` clean frames of the synthetic strip flagged at warn. Each frame's two maps are
computed once and joined every way. The rule that reads it: docs/gate_design.md, step 19.
Writes results/<profile>/map_join_study.json and a Markdown table.
"""

from __future__ import annotations

import random
import sys

import numpy as np

from edge_runtime.anomaly import join_maps
from edge_runtime.commissioning import threshold_for_false_alarm
from edge_runtime.preprocess import preprocess
from export import calibrate
from studies.camera_study import CHANGES
from studies.strip_study import clean_frames
from export.study_cli import deployed_gate, share_at_or_over, share_text, split_figures, study_parser, write_result

POWERS = (None, 8.0, 4.0, 2.0, 1.0)  # None: the maximum, as deployed
TRAINED_CHANGES = tuple(CHANGES)[1:5]  # the four a detector's camera copies cover


def split_parts(gate, split: str, read, change=lambda frame: frame) -> dict:
    """What ``read`` gives of a split's defect images (with labels) and of its calibration crops, every frame
    seen through ``change``."""
    rng = random.Random(gate.profile.seed)
    images, labels, crops = [], [], []
    for sample in gate.splits[split]:
        frame = change(preprocess(sample.path, gate.config.preprocess))
        if not sample.is_normal:
            images.append(read(frame))
            labels.append(sample.label)
        crops += [read(crop) for crop in calibrate.calibration_crops(frame, sample.boxes, rng)]
    return {"images": images, "labels": np.array(labels), "crops": crops}


def study_parts(gate, strip_frames: int, read) -> dict:
    """What ``read`` (one [0, 1] gray frame -> anything) gives of the frames a map study reads: both splits
    (``split_parts``), the validation split through each of the four trained camera changes, and the first
    ``strip_frames`` clean frames of the synthetic strip ("strip")."""
    parts = {split: split_parts(gate, split, read) for split in ("val", "test")}
    parts |= {name: split_parts(gate, "val", read, CHANGES[name]) for name in TRAINED_CHANGES}
    return parts | {"strip": [read(frame) for frame in clean_frames(strip_frames)]}


def scores(parts: list, power: float | None) -> np.ndarray:
    return np.array([float(join_maps(error, detector, power).max()) for error, detector in parts])


def study_figures(parts: dict, score, rates: tuple[float, float]) -> dict:
    """Thresholds on the validation crops (``rates``: defect, warn) and, at them, the figures of ``parts``
    (``study_parts``): both splits', the validation crops' through each camera change and the clean strip
    frames'. ``score``: a list of parts -> their scores."""
    defect, warn = (threshold_for_false_alarm(score(parts["val"]["crops"]), rate) for rate in rates)
    row = {"thresholds": {"warn": warn, "defect": defect}}
    for split in ("val", "test"):
        row[split] = split_figures(score(parts[split]["images"]), parts[split]["labels"], score(parts[split]["crops"]),
                                   warn, defect)
    row["val_crops_flagged_warn_through_camera_changes"] = {
        name: float(np.mean(score(parts[name]["crops"]) >= warn)) for name in TRAINED_CHANGES}
    row["val_camera_mean"] = float(np.mean(list(row["val_crops_flagged_warn_through_camera_changes"].values())))
    row["strip_clean_flagged_warn"] = share_at_or_over(score(parts["strip"]), warn)
    return row


def figures_header(n_val: int) -> str:
    """The Markdown header cells of ``figures_cells``."""
    return (f"val flagged @warn / @defect (of {n_val}) | test recall @warn / @defect | test crops @warn | val camera | "
            "clean strip @warn | val misses @warn")


def figures_cells(row: dict) -> str:
    """A ``study_figures`` row as Markdown table cells."""
    val, test = row["val"], row["test"]
    missed = ", ".join(f"{label} {n}" for label, n in val["missed_warn_per_class"].items() if n)
    return (f"{val['flagged_warn']} / {val['flagged_defect']} | {test['gate_recall_warn']:.3f} / "
            f"{test['gate_recall_defect']:.3f} | {test['normals_flagged_warn']:.3f} | {row['val_camera_mean']:.3f} | "
            f"{share_text(row['strip_clean_flagged_warn'])} | {missed or '-'}")


def join_row(parts: dict, power: float | None, rates: tuple[float, float]) -> dict:
    return {"power": power, **study_figures(parts, lambda some: scores(some, power), rates)}


def detector_study(prog: str, doc: str, argv: list[str] | None, reader):
    """(arguments, rates, ``study_parts``) of a study of a deployed gate's residual detector: ``--profile``,
    ``--manifest`` and ``--strip-frames``; the profile's (defect, warn) false-alarm rates; the parts
    ``reader(gate)`` (-> one [0, 1] gray frame -> anything) reads."""
    parser = study_parser(prog, doc)
    parser.add_argument("--strip-frames", type=int, default=600, help="clean synthetic strip frames (default 600)")
    args = parser.parse_args(argv)
    gate = deployed_gate(args.manifest, args.profile)
    if gate.scorer.residual_detector is None:
        parser.error(f"profile {args.profile} has no residual detector: its map is the error map alone")
    rates = (gate.profile.false_alarm_rate, gate.profile.warn_false_alarm_rate)
    return args, rates, study_parts(gate, args.strip_frames, reader(gate))


def main(argv: list[str] | None = None) -> int:
    args, rates, parts = detector_study("python -m studies.map_join_study", __doc__, argv,
                                        lambda gate: gate.scorer.map_parts)
    rows = [join_row(parts, power, rates) for power in POWERS]
    out = write_result(args.profile, "map_join_study", {"strip_frames": args.strip_frames, "rows": rows})
    print(f"{out}\n\n| join | {figures_header(len(parts['val']['images']))} |\n|---|---|---|---|---|---|---|")
    for row in rows:
        name = "maximum (deployed)" if row["power"] is None else f"power mean, p = {row['power']:g}"
        print(f"| {name} | {figures_cells(row)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
