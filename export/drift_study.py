"""``python -m export.drift_study --profile P``: does the drift check see a changed camera or lamp?

The line is commissioned on defect-free frames: their scores give the baseline, as ``python -m
edge_runtime calibrate --write`` records it. Defect-free frames are then inspected as captured and
through each change of the camera study (defocus, sensor noise, sharpening, JPEG) and two exposure
gains, and ``edge_runtime.drift.check_drift`` judges each set's ok and warn frames, as ``history``
judges a line's newest logged frames.

Frames: neu-steel has no defect-free frames of a line's size (NEU-DET is boxed), so the synthetic
steel strip (as ``record synthetic:0`` saves it), commissioning and line frames drawn with different
seeds. The magnetic tile: its validation and test splits' defect-free tiles (214), too few to split,
so the line frames are the commissioning frames seen through each change ("as captured" is then no
test of false drift alarms). Writes results/<profile>/drift_study.json and a Markdown table.
"""

from __future__ import annotations

import sys
import threading
from typing import Callable

import numpy as np

from edge_runtime import Inspector
from edge_runtime.capture.synthetic import SyntheticStripSource
from edge_runtime.drift import COUNTED_VERDICTS, ScoreBaseline, check_drift
from edge_runtime.preprocess import preprocess
from export.camera_study import CHANGES
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


def counted_scores(inspector: Inspector, frames: list[np.ndarray], change) -> list[float]:
    """Scores of the frames the gate passes or warns on, each frame changed and captured as 8-bit."""
    captured = [np.round(np.clip(change(frame), 0.0, 1.0) * 255.0).astype(np.uint8) for frame in frames]
    results = inspector.inspect_batch(captured)
    return [r.anomaly_score for r in results if not isinstance(r, Exception) and r.verdict.value in COUNTED_VERDICTS]


def main(argv: list[str] | None = None) -> int:
    parser = study_parser("python -m export.drift_study", __doc__)
    parser.add_argument("--frames", type=int, default=400, help="synthetic strip: frames per set (default 400)")
    args = parser.parse_args(argv)
    inspector = Inspector.from_manifest(args.manifest, args.profile)
    if args.profile == "neu-steel":
        commissioning, line = synthetic_frames(1, args.frames), synthetic_frames(2, args.frames)
        frames_from = f"synthetic strip, {args.frames} commissioning frames (seed 1) and {args.frames} line frames (seed 2)"
    else:
        commissioning = line = defect_free_tiles(args.manifest, args.profile)
        frames_from = f"the validation and test splits' {len(line)} defect-free tiles, for both"
    baseline = ScoreBaseline.from_scores(counted_scores(inspector, commissioning, CHANGES["as captured"]))
    rows = {}
    for name, change in STUDIED.items():
        check = check_drift(counted_scores(inspector, line, change), baseline, min_frames=1)
        rows[name] = {key: value for key, value in check.to_dict().items() if key != "message"}
        print(name, rows[name], flush=True)
    out = write_result(args.profile, "drift_study", {"frames": frames_from, "baseline": baseline.to_dict(), "changes": rows})
    print(f"\n{out}\n\n| change | status | share above p90 | share below p10 | frames counted |\n|---|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['status']} | {row['share_above_p90']:.2f} | {row['share_below_p10']:.2f} | {row['frames']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
