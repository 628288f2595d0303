"""The benchmark's frames: real images of the profile's own data set (plus synthetic strip), scored once by
the gate and split into frames it passes ("normal") and frames it flags ("defective"), and the mixed
stream the throughput runs on."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge_runtime import Inspector, Verdict
from edge_runtime.datasets import DatasetError
from edge_runtime.evaluation_cases import load_samples
from edge_runtime.preprocess import load_image

FRAME_SIDE = 200
SYNTHETIC_PREFIX = "synthetic-"
DEFECT_RATE = 0.05


def _synthetic(seed: int) -> bytes:
    from edge_runtime.capture.synthetic import steel_texture

    texture = np.clip(steel_texture(np.random.default_rng(seed), FRAME_SIDE), 0, 255).astype(np.uint8)
    return cv2.imencode(".png", texture)[1].tobytes()


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


def candidate_frames(count: int, images: list[Path]) -> list[tuple[str, bytes]]:
    """``count`` of the images (every class, evenly spread) plus a few synthetic textures, as encoded
    200x200 frames."""
    picked = images[:: max(1, len(images) // count)][:count] if images else []
    frames = [(p.name, p.read_bytes()) for p in picked]
    frames += [(f"{SYNTHETIC_PREFIX}{i}", _synthetic(i)) for i in range(max(4, count // 8))]
    out = []
    for name, data in frames:  # the frame size (NEU-DET's)
        image = load_image(data)
        if image.shape[:2] != (FRAME_SIDE, FRAME_SIDE):
            image = cv2.resize(image, (FRAME_SIDE, FRAME_SIDE), interpolation=cv2.INTER_AREA)
            data = cv2.imencode(".png", image)[1].tobytes()
        out.append((name, data))
    return out


def pick_frames(inspector: Inspector, count: int, images: list[Path]) -> dict:
    """Score the candidates once; split them into frames the gate passes and frames it flags."""
    normal, flagged = [], []
    for name, data in candidate_frames(count, images):
        result = inspector.inspect(data, source=name)
        item = {"name": name, "bytes": data, "array": load_image(data), "score": result.anomaly_score,
                "verdict": result.verdict.value}
        (normal if result.verdict is Verdict.OK else flagged).append(item)
    if not normal or not flagged:
        raise SystemExit(f"benchmark: need frames the gate passes and frames it flags; got {len(normal)} passed, "
                         f"{len(flagged)} flagged out of the candidates")
    normal.sort(key=lambda f: f["score"])
    # The defective frame: the highest-scoring real image (a synthetic strip only where there is none);
    # to another product's gate, the synthetic steel is the most anomalous frame of all.
    flagged.sort(key=lambda f: (f["name"].startswith(SYNTHETIC_PREFIX), -f["score"]))
    return {"normal": normal, "flagged": flagged}


def mixed_stream(frames: dict, n: int, defect_rate: float = DEFECT_RATE) -> list[np.ndarray]:
    """n decoded frames, every round(1/defect_rate)-th one a flagged frame, the rest passed frames."""
    period = round(1.0 / defect_rate)
    normal, flagged = frames["normal"], frames["flagged"]
    return [flagged[(i // period) % len(flagged)]["array"] if i % period == 0 else normal[i % len(normal)]["array"]
            for i in range(n)]

