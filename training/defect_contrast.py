"""``python -m training.defect_contrast [--profile neu-steel] [--split train]``: how far each class's defects stand out.

For every image with boxes: how far the 99th percentile of the grey levels inside its boxes lies above the
median of its box-free steel (bright), and the 1st percentile below it (dark), in grey spreads (standard
deviations) of that box-free steel; per class, the quartiles over the split's images. How strongly the
synthetic defects are painted should follow it (``training.synthetic_defects``: ``scratches``,
docs/gate_design.md, step 18). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from edge_runtime.datasets import box_free_mask, split_samples
from edge_runtime.preprocess import preprocess
from training.profiles import PROFILES

MIN_PIXELS = {"box_free": 500, "boxed": 100}  # images with less of either are left out


def contrast(frame: np.ndarray, boxes: tuple) -> tuple[float, float] | None:
    """(bright, dark) of one [0, 1] grey frame, or None where it has too little steel inside or outside its boxes."""
    free = box_free_mask(frame.shape, boxes, 0)
    if free.sum() < MIN_PIXELS["box_free"] or (~free).sum() < MIN_PIXELS["boxed"]:
        return None
    steel, boxed = frame[free], frame[~free]
    median, spread = float(np.median(steel)), max(float(steel.std()), 1e-6)
    return (float(np.percentile(boxed, 99)) - median) / spread, (median - float(np.percentile(boxed, 1))) / spread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.defect_contrast", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="neu-steel", choices=sorted(PROFILES))
    parser.add_argument("--split", default="train", choices=("train", "val", "test"))
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    samples = split_samples(profile.load(), profile.seed, profile.split_fractions)[args.split]
    by_class: dict[str, list[tuple[float, float]]] = {}
    for sample in samples:
        if sample.boxes and (reading := contrast(preprocess(sample.path, profile.preprocess), sample.boxes)):
            by_class.setdefault(sample.label, []).append(reading)
    report = {label: {"images": len(readings),
                      **{side: [round(float(q), 1) for q in np.percentile(np.array(readings)[:, i], (25, 50, 75))]
                         for i, side in enumerate(("bright_quartiles", "dark_quartiles"))}}
              for label, readings in sorted(by_class.items())}
    print(json.dumps({"profile": profile.name, "split": args.split, "classes": report}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
