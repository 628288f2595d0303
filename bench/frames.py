"""The benchmark's frames: real images of the profile's own data set, or of a folder of the line's own frames
(plus synthetic strip), scored once by the gate and split into frames it passes ("normal") and frames it
flags ("defective"), and the mixed stream the throughput runs on. Where no real image is flagged (a line PC
has no data set), synthetic strip with painted defects gives the defective frames, so the benchmark runs
on any PC."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from edge_runtime import Inspector, Verdict
from edge_runtime.capture.synthetic import DEFECT_KINDS, synthetic_frame
from edge_runtime.commissioning import CommissioningError, frame_files
from edge_runtime.datasets import DatasetError
from edge_runtime.errors import InspectionError
from edge_runtime.evaluation_cases import load_samples
from edge_runtime.preprocess import load_image

FRAME_SIDE = 200
SYNTHETIC_PREFIX = "synthetic-"
DEFECT_RATE = 0.05


def _synthetic(seed: int, defect: str | None = None) -> bytes:
    frame = synthetic_frame(np.random.default_rng(seed), defect, FRAME_SIDE)
    return cv2.imencode(".png", frame)[1].tobytes()


def synthetic_defects(per_kind: int = 2) -> list[tuple[str, bytes]]:
    """Synthetic strip with each painted defect kind, ``per_kind`` frames of each (seeds apart from the clean
    strip's)."""
    return [(f"{SYNTHETIC_PREFIX}{kind}-{i}", _synthetic(1000 + i, kind)) for kind in DEFECT_KINDS
            for i in range(per_kind)]


def profile_images(manifest_path: Path, entry: dict) -> list[Path]:
    """The images of the data set the profile was trained on (manifest ``dataset``), masks left out;
    none where that folder is not on this machine."""
    dataset = entry.get("dataset") or {}
    folder = (manifest_path.parent / dataset.get("path", "")).resolve()
    if not dataset.get("name") or not folder.is_dir():
        return []
    try:
        return sorted(sample.path for sample in load_samples(dataset["name"], folder))
    except DatasetError:
        return []


def folder_images(folder: Path) -> list[Path]:
    """Every image under ``folder`` (``--images``: the line's own frames), pixel masks beside images left out."""
    if not folder.is_dir():
        raise SystemExit(f"benchmark: --images {folder} is not a folder")
    try:
        return frame_files([folder]).frames
    except CommissioningError as error:
        raise SystemExit(f"benchmark: {error}") from None


def candidate_frames(count: int, images: list[Path]) -> list[tuple[str, bytes]]:
    """``count`` of the images (every class, evenly spread) plus a few synthetic textures, as encoded
    200x200 frames."""
    picked = images[:: max(1, len(images) // count)][:count] if images else []
    frames = [(p.name, p.read_bytes()) for p in picked]
    frames += [(f"{SYNTHETIC_PREFIX}{i}", _synthetic(i)) for i in range(max(4, count // 8))]
    out = []
    for name, data in frames:
        try:
            out.append((name, _at_frame_side(data)))
        except InspectionError as error:
            print(f"benchmark: skipping {name}: {error}", file=sys.stderr)
    if picked and all(name.startswith(SYNTHETIC_PREFIX) for name, _ in out):
        raise SystemExit(f"benchmark: none of the {len(picked)} images picked could be read (each named above)")
    return out


def _at_frame_side(data: bytes) -> bytes:
    """The encoded frame at the issue's frame size (NEU-DET's), resized where it is not."""
    image = load_image(data)
    if image.shape[:2] == (FRAME_SIDE, FRAME_SIDE):
        return data
    resized = cv2.resize(image, (FRAME_SIDE, FRAME_SIDE), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".png", resized)[1].tobytes()


def pick_frames(inspector: Inspector, count: int, images: list[Path]) -> dict:
    """Score the candidates once; split them into frames the gate passes and frames it flags. Where none is
    flagged, synthetic strip with painted defects is scored too, and the ones flagged are the defective frames."""
    normal, flagged = _scored(inspector, candidate_frames(count, images))
    if not flagged:
        flagged = _scored(inspector, synthetic_defects())[1]
    if not normal or not flagged:
        raise SystemExit(f"benchmark: need frames the gate passes and frames it flags; got {len(normal)} passed, "
                         f"{len(flagged)} flagged out of the candidates"
                         + ("" if normal else "; give it this line's good frames with --images DIR"))
    normal.sort(key=lambda f: f["score"])
    # The defective frame: the highest-scoring real image (a synthetic strip only where there is none);
    # to another product's gate, the synthetic steel is the most anomalous frame of all.
    flagged.sort(key=lambda f: (f["name"].startswith(SYNTHETIC_PREFIX), -f["score"]))
    return {"normal": normal, "flagged": flagged}


def _scored(inspector: Inspector, frames: list[tuple[str, bytes]]) -> tuple[list[dict], list[dict]]:
    """(frames the gate passes, frames it flags), each with its bytes, decoded array, score and verdict."""
    normal, flagged = [], []
    for name, data in frames:
        try:
            result = inspector.inspect(data, source=name)
        except InspectionError as error:  # a frame the runtime refuses (too dark, blank): not a candidate
            print(f"benchmark: skipping {name}: {error}", file=sys.stderr)
            continue
        item = {"name": name, "bytes": data, "array": load_image(data), "score": result.anomaly_score,
                "verdict": result.verdict.value}
        (normal if result.verdict is Verdict.OK else flagged).append(item)
    return normal, flagged


def mixed_stream(frames: dict, n: int, defect_rate: float = DEFECT_RATE) -> list[np.ndarray]:
    """n decoded frames, every round(1/defect_rate)-th one a flagged frame, the rest passed frames."""
    period = round(1.0 / defect_rate)
    normal, flagged = frames["normal"], frames["flagged"]
    return [flagged[(i // period) % len(flagged)]["array"] if i % period == 0 else normal[i % len(normal)]["array"]
            for i in range(n)]

