"""``python -m studies.strip_study --profile neu-steel [--manifest M]``: what in the synthetic strip each map reads.

The synthetic strip (``edge_runtime.capture.synthetic``, which demos, soak runs and the benchmark feed the
runtime) is streaks along the rolling direction plus fine grain, a texture no gate is trained on. A
residual detector trained with painted streaks flagged every clean frame of it (docs/gate_design.md,
steps 12, 13 and 15). This study takes the texture apart: each variant changes one part of the
generator (``steel_texture``'s parameters), and the gate of ``--manifest`` (the deployed one, or a
trial's exported in a scratch copy) scores frames of it with the error map and the detector's map
apart (``AnomalyScorer.map_parts``): the median over the frames of each map's maximum, against the warn
threshold. Writes results/<profile>/strip_study.json and a Markdown table.
"""

from __future__ import annotations

import sys

import numpy as np

from edge_runtime.capture.synthetic import steel_texture
from edge_runtime.inspector import Inspector
from edge_runtime.preprocess import to_gray01
from export.study_cli import study_parser, write_result

FRAMES = 12
VARIANTS: dict[str, dict] = {
    "as generated (streaks 9 grey levels, grain 6)": {},
    "streaks only (no grain)": {"grain_amplitude": 0.0},
    "grain only (no streaks)": {"streak_amplitude": 0.0},
    "streaks at half strength": {"streak_amplitude": 4.5},
    "grain at double strength": {"grain_amplitude": 12.0},
    "coarser streaks (25 rows of noise, not 50)": {"streak_rows": 25},
    "finer streaks (100 rows of noise)": {"streak_rows": 100},
    "mottling without a direction (50 x 50 noise points)": {"streak_knots": 50},
}


def variant_frame(seed: int, **texture) -> np.ndarray:
    """One clean 200x200 strip frame of a variant, as the strip's source delivers it (8-bit)."""
    return np.clip(steel_texture(np.random.default_rng([seed, 5]), **texture), 0, 255).astype(np.uint8)


def clean_frames(count: int) -> list[np.ndarray]:
    """The first ``count`` clean strip frames as generated, [0, 1] grey: the clean frames other studies score."""
    return [to_gray01(variant_frame(seed)) for seed in range(count)]


def map_maxima(inspector: Inspector, frame: np.ndarray) -> tuple[float, float | None]:
    """(the error map's maximum, the detector's scaled map's maximum or None) of one 8-bit frame."""
    error, detector = inspector.scorer.map_parts(to_gray01(frame))
    return float(error.max()), None if detector is None else float(detector.max())


def study(inspector: Inspector, frames: int = FRAMES) -> dict:
    rows = {}
    for name, texture in VARIANTS.items():
        maxima = [map_maxima(inspector, variant_frame(seed, **texture)) for seed in range(frames)]
        detector = [d for _, d in maxima if d is not None]
        rows[name] = {"texture": texture, "error_map_median": float(np.median([e for e, _ in maxima])),
                      "detector_map_median": float(np.median(detector)) if detector else None,
                      "flagged_warn": float(np.mean([max(e, d or 0.0) >= inspector.thresholds.warn for e, d in maxima]))}
    return {"warn": inspector.thresholds.warn, "frames": frames, "variants": rows}


def main(argv: list[str] | None = None) -> int:
    parser = study_parser("python -m studies.strip_study", __doc__)
    parser.add_argument("--frames", type=int, default=FRAMES, help=f"frames per variant (default {FRAMES})")
    args = parser.parse_args(argv)
    result = study(Inspector.from_manifest(args.manifest, args.profile), args.frames)
    out = write_result(args.profile, "strip_study", result)
    print(f"{out}\n\nwarn threshold {result['warn']:.3f}\n\n| strip variant | error map (median maximum) | "
          f"detector's map (median maximum) | frames flagged at warn |\n|---|---|---|---|")
    for name, row in result["variants"].items():
        detector = "-" if row["detector_map_median"] is None else f"{row['detector_map_median']:.2f}"
        print(f"| {name} | {row['error_map_median']:.2f} | {detector} | {row['flagged_warn']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
