"""``python -m studies.drift_study --profile P``: does the drift check see a changed camera or lamp?

The line is commissioned on defect-free frames: their scores give the baseline, as ``python -m
edge_runtime calibrate --write`` records it. Defect-free frames are then inspected as captured and
through each change of the camera study (defocus, sensor noise, sharpening, JPEG) and two exposure
gains, and ``edge_runtime.drift.check_drift`` judges each set's ok and warn frames on every measure
(the anomaly score, the pictures' neighbour correlation and their mean grey level), as ``history``
judges a line's newest logged frames.

Frames: neu-steel has no defect-free frames of a line's size (NEU-DET is boxed), so the synthetic
steel strip (as ``record synthetic:0`` saves it), commissioning and line frames drawn with different
seeds. The magnetic tile: its validation and test splits' defect-free tiles (214), too few to split,
so the line frames are the commissioning frames seen through each change ("as captured" is then no
test of false drift alarms). With ``--dataset-halves``, the profile's own data set instead: the
defect-free views of all of its images (a defect-free image whole, a boxed image's box-free 64x64
windows as the calibration cuts them; only those the gate passes or warns on count, as always) in two
random halves of the images, one to commission on and one as the line. For NEU-DET that is real
steel beside every defect class: a far less uniform line than a real one, so a harder test of both
the false drift alarms and the changes seen. (Until the seventeenth session it took the whole images,
defects and all; the gate now flags so many of them that fewer than the 200 a baseline needs pass.)
Writes results/<profile>/drift_study.json (drift_study_halves.json) and a Markdown table.
"""

from __future__ import annotations

import random
import sys
import threading
from typing import Callable

import numpy as np

from edge_runtime import Inspector
from edge_runtime.capture.synthetic import SyntheticStripSource
from edge_runtime.datasets import Sample
from edge_runtime.drift import COUNTED_VERDICTS, MEASURES, Baseline, check_drift
from edge_runtime.preprocess import preprocess
from export import calibrate
from studies.camera_study import CHANGES
from export.study_cli import deployed_gate, study_parser, write_result


def _gain(factor: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda frame: np.clip(frame * factor, 0.0, 1.0)


STUDIED = {**CHANGES, "exposure x0.8": _gain(0.8), "exposure x1.2": _gain(1.2)}


def synthetic_frames(seed: int, count: int) -> list[np.ndarray]:
    return [frame.data.astype(np.float32) / 255.0
            for frame in SyntheticStripSource(0.0, seed=seed, count=count).frames(threading.Event())]


def defect_free_tiles(manifest, profile: str) -> list[np.ndarray]:
    gate = deployed_gate(manifest, profile)
    return [preprocess(sample.path, gate.config.preprocess) for split in ("val", "test")
            for sample in gate.splits[split] if sample.is_normal]


def dataset_halves(manifest, profile: str, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The defect-free views of every image of the profile's data set, as the runtime reads them, in two
    random halves of the images: a defect-free image whole, a boxed one's box-free windows as the
    calibration cuts them (``export.calibrate.calibration_windows``)."""
    gate = deployed_gate(manifest, profile)
    rng = random.Random(seed)
    views = [defect_free_views(preprocess(sample.path, gate.config.preprocess), sample, rng)
             for split in ("train", "val", "test") for sample in gate.splits[split]]
    order = np.random.default_rng(seed).permutation(len(views))
    return ([frame for i in order[: len(views) // 2] for frame in views[i]],
            [frame for i in order[len(views) // 2:] for frame in views[i]])


def defect_free_views(frame: np.ndarray, sample: Sample, rng: random.Random) -> list[np.ndarray]:
    """``frame`` itself where ``sample`` is defect-free, else its box-free calibration windows (none where it
    has no boxes)."""
    return [frame] if sample.is_normal else calibrate.calibration_crops(frame, sample.boxes, rng)


def counted_values(inspector: Inspector, frames: list[np.ndarray], change) -> dict[str, list[float]]:
    """Each measure (log column: values) of the frames the gate passes or warns on, each frame changed and
    captured as 8-bit."""
    captured = [np.round(np.clip(change(frame), 0.0, 1.0) * 255.0).astype(np.uint8) for frame in frames]
    counted = [r for r in inspector.inspect_batch(captured)
               if not isinstance(r, Exception) and r.verdict.value in COUNTED_VERDICTS]
    return {m.column: [float(getattr(r, m.result_field)) for r in counted] for m in MEASURES}


def main(argv: list[str] | None = None) -> int:
    parser = study_parser("python -m studies.drift_study", __doc__)
    parser.add_argument("--frames", type=int, default=400, help="synthetic strip: frames per set (default 400)")
    parser.add_argument("--dataset-halves", action="store_true",
                        help="the data set's own images in two random halves (commissioning, line)")
    args = parser.parse_args(argv)
    inspector = Inspector.from_manifest(args.manifest, args.profile)
    if args.dataset_halves:
        commissioning, line = dataset_halves(args.manifest, args.profile)
        frames_from = f"the defect-free views of every image of the data set (box-free windows of a boxed one) in " \
                      f"two random halves of the images: {len(commissioning)} to commission on, {len(line)} as the line"
    elif args.profile == "neu-steel":
        commissioning, line = synthetic_frames(1, args.frames), synthetic_frames(2, args.frames)
        frames_from = f"synthetic strip, {args.frames} commissioning frames (seed 1) and {args.frames} line frames (seed 2)"
    else:
        commissioning = line = defect_free_tiles(args.manifest, args.profile)
        frames_from = f"the validation and test splits' {len(line)} defect-free tiles, for both"
    at_commissioning = counted_values(inspector, commissioning, CHANGES["as captured"])
    baselines = {m.column: Baseline.from_values(at_commissioning[m.column]) for m in MEASURES}
    rows = {}
    for name, change in STUDIED.items():
        values = counted_values(inspector, line, change)
        rows[name] = {m.column: {key: value for key, value in check_drift(
            values[m.column], baselines[m.column], min_frames=1, measure=m).to_dict().items() if key != "message"}
            for m in MEASURES}
        print(name, rows[name], flush=True)
    name = "drift_study_halves" if args.dataset_halves else "drift_study"
    out = write_result(args.profile, name, {"frames": frames_from, "changes": rows,
                                                     "baselines": {k: b.to_dict() for k, b in baselines.items()}})
    print(f"\n{out}\n\n| change | " + " | ".join(f"{m.name} drift (share above p90 / below p10)" for m in MEASURES)
          + " | frames counted |\n|---|" + "---|" * (len(MEASURES) + 1))
    for name, row in rows.items():
        cells = [f"{row[m.column]['status']} ({row[m.column]['share_above_p90']:.2f} / "
                 f"{row[m.column]['share_below_p10']:.2f})" for m in MEASURES]
        print(f"| {name} | {' | '.join(cells)} | {row['score']['frames']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
