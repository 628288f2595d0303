"""Training frames as another camera would deliver them: defocused, noisier, sharpened or JPEG-streamed.

Why: the residual detector reads the whitened feature cell beside its residual (docs/gate_design.md,
step 11), so it knows the texture as this camera renders it. Unlike the error map, its map is not
divided by the frame's own level, so a camera that renders the same steel a little softer, grainier or
blockier moves it over the whole frame: `python -m studies.camera_study` measured 43% of the test crops
flagged after a defocus of 1 px and 57% on a JPEG stream (quality 50), against 2-4% of them by the
error map alone (its ``test_normals_flagged_by_each_map``). With ``residual_camera_copies`` each
training frame also enters as that many changed copies, one change drawn per copy with a random
strength: the copy's box-free cells are normal cells,
and its painted defects are painted first and then seen through the same change, so the detector
learns that the camera's rendering is not a defect and that a defect seen through it still is.

The strengths are ranges around the camera study's fixed changes, so that study measures the
invariance learnt here, not a change the detector never saw; its held-out rows (motion blur and a
resampled frame) are changes no training frame has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from edge_runtime.datasets import Sample

KINDS = ("defocus", "noise", "sharpening", "jpeg")
Change = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class CameraCopies:
    sources: list[np.ndarray]  # the frames as captured, one per copy
    samples: list[Sample]  # their samples: no change moves a box
    changes: list[Change]  # the change each copy is seen through

    @property
    def frames(self) -> list[np.ndarray]:
        return [change(frame) for change, frame in zip(self.changes, self.sources)]


def camera_change(rng: np.random.Generator) -> Change:
    """One camera change drawn at random with a random strength, as a function of a [0, 1] grey float32
    frame that changes every frame alike (the noise too), so a frame and its painted copies can be seen
    through the same camera."""
    kind = KINDS[int(rng.integers(len(KINDS)))]
    if kind == "defocus":
        sigma = rng.uniform(0.5, 1.5)
        return lambda frame: _in_range(cv2.GaussianBlur(frame, (0, 0), sigma))
    if kind == "noise":
        spread, noise_seed = rng.uniform(0.005, 0.03), int(rng.integers(2**32))
        return lambda frame: _in_range(frame + np.random.default_rng(noise_seed).normal(0.0, spread, frame.shape))
    if kind == "sharpening":
        amount, sigma = rng.uniform(0.3, 1.0), rng.uniform(1.0, 3.0)
        return lambda frame: _in_range(cv2.addWeighted(frame, 1.0 + amount, cv2.GaussianBlur(frame, (0, 0), sigma),
                                                       -amount, 0.0))
    quality = int(rng.integers(30, 91))
    return lambda frame: _in_range(_jpeg(frame, quality))


def _jpeg(frame: np.ndarray, quality: int) -> np.ndarray:
    encoded = cv2.imencode(".jpg", np.round(frame * 255.0).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
    return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE) / 255.0


def _in_range(frame: np.ndarray) -> np.ndarray:
    return np.clip(frame, 0.0, 1.0).astype(np.float32)


def changed_copies(frames: list[np.ndarray], samples: list[Sample], copies: int, seed: int) -> CameraCopies:
    """``copies`` changed versions of each frame (``camera_change``), in order, with their samples."""
    if copies < 0:
        raise ValueError(f"copies must be 0 or more, not {copies}")
    rng = np.random.default_rng([seed, 13])
    changes = [camera_change(rng) for _ in range(copies * len(frames))]
    return CameraCopies(list(frames) * copies, list(samples) * copies, changes)
