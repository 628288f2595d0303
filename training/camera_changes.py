"""Training frames as another camera would deliver them: defocused, noisier, sharpened or JPEG-streamed.

Why: the residual detector reads the whitened feature cell beside its residual (docs/gate_design.md,
step 11), so it knows the texture as this camera renders it. Unlike the error map, its map is not
divided by the frame's own level, so a camera that renders the same steel a little softer, grainier or
blockier moves it over the whole frame: `python -m export.camera_study` measured 43% of the test crops
flagged after a defocus of 1 px and 57% on a JPEG stream (quality 50), against 3-4% of them by the
error map alone. With ``residual_camera_copies`` each training frame also enters as that many changed
copies, one change drawn per copy with random strength; their box-free cells are normal cells and
defects are painted on them as on the others, so the detector learns that the camera's rendering is
not a defect and a painted departure still is.

The strengths are ranges around the camera study's fixed changes, so that study measures the
invariance learnt here, not a change the detector never saw; its held-out rows (motion blur and a
resampled frame) are changes no training frame has.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_runtime.datasets import Sample

KINDS = ("defocus", "noise", "sharpening", "jpeg")


@dataclass(frozen=True)
class ChangedFrames:
    frames: list[np.ndarray]  # [0, 1] grey, each through one camera change
    samples: list[Sample]  # the source frames' samples: no change moves a box


def camera_change(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``frame`` ([0, 1] grey, float32) through one camera change drawn at random, with a random strength."""
    kind = KINDS[int(rng.integers(len(KINDS)))]
    if kind == "defocus":
        changed = cv2.GaussianBlur(frame, (0, 0), rng.uniform(0.5, 1.5))
    elif kind == "noise":
        changed = frame + rng.normal(0.0, rng.uniform(0.005, 0.03), frame.shape)
    elif kind == "sharpening":
        amount = rng.uniform(0.3, 1.0)
        changed = cv2.addWeighted(frame, 1.0 + amount, cv2.GaussianBlur(frame, (0, 0), rng.uniform(1.0, 3.0)),
                                  -amount, 0.0)
    else:
        quality = int(rng.integers(30, 91))
        encoded = cv2.imencode(".jpg", np.round(frame * 255.0).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
        changed = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE) / 255.0
    return np.clip(changed, 0.0, 1.0).astype(np.float32)


def changed_copies(frames: list[np.ndarray], samples: list[Sample], copies: int, seed: int) -> ChangedFrames:
    """``copies`` changed versions of each frame (``camera_change``), in order, with their samples."""
    if copies < 0:
        raise ValueError(f"copies must be 0 or more, not {copies}")
    rng = np.random.default_rng([seed, 13])
    out_frames, out_samples = [], []
    for _ in range(copies):
        for frame, sample in zip(frames, samples):
            out_frames.append(camera_change(frame, rng))
            out_samples.append(sample)
    return ChangedFrames(out_frames, out_samples)
