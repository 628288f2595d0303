"""``python -m export.golden --profile P``: record the golden frames the line PC's self-test checks.

Writes four synthetic strip frames (``edge_runtime.capture.synthetic``: plain strip, a scratch, a
patch, an inclusion; seeded, 200x200) as PNG files to ``models/<profile>/golden/``, scores each
with the deployed pipeline as ``edge_runtime.selftest`` will (a classification forced on every
frame), and records files, hashes, scores (and the frame-level term's share of each), class probabilities, the
model files and precision they were computed with and the frame-term references used in the
manifest's ``golden`` entry. Run it after ``python -m export`` and
``python -m export.quantize``, on the machine the models were exported on: the self-test then
tells a line PC whether it computes the same.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.capture.synthetic import synthetic_frame
from edge_runtime.inspector import Inspector
from edge_runtime.manifest import load_manifest, write_manifest
from export.manifest_writer import model_entry
from export.study_cli import study_parser

# (file name, injected defect or None, seed)
GOLDEN_FRAMES = (("strip", None, 101), ("scratch", "scratch", 102), ("patch", "patch", 103),
                 ("inclusion", "inclusion", 104))


def record(manifest_path: Path, profile: str) -> dict:
    inspector = Inspector.from_manifest(manifest_path, profile)
    root = manifest_path.resolve().parent
    folder = root / "models" / profile / "golden"
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for name, defect, seed in GOLDEN_FRAMES:
        path = folder / f"{name}.png"
        if not cv2.imwrite(str(path), synthetic_frame(np.random.default_rng(seed), defect)):
            raise OSError(f"cannot write {path}")
        result = inspector.inspect(path, source="golden", always_classify=True)
        frames.append({**model_entry(path, root), "anomaly_score": result.anomaly_score,
                       "frame_term": result.frame_term, "class_probabilities": dict(result.class_probabilities)})
    term = inspector.frame_term_references
    entry = {"precision": inspector.precision, "models": dict(inspector.model_sha256),
             "frame_term": None if term is None else asdict(term), "frames": frames}
    manifest = load_manifest(manifest_path)
    manifest["profiles"][profile]["golden"] = entry
    write_manifest(manifest_path, manifest)
    return entry


def main(argv: list[str] | None = None) -> int:
    args = study_parser("python -m export.golden", __doc__).parse_args(argv)
    entry = record(args.manifest, args.profile)
    for frame in entry["frames"]:
        top = max(frame["class_probabilities"], key=frame["class_probabilities"].get)
        print(f"{frame['path']}: score {frame['anomaly_score']:.6g}, top class {top}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
