"""Procedural rolled-steel frames for demos, benchmarks and soak tests (no camera, no data set).

Grayscale strip texture (streaks along the rolling direction + grain) with injected
scratches, patches, inclusions and pits at ``defect_rate``. ``corrupt_rate`` makes
some frames truncated or garbage encoded bytes, as a flaky camera link would.
``meta['label']`` says what was injected (None = clean, 'corrupt').
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterator

import cv2
import numpy as np

from .sources import Frame, FrameSource

DEFECT_KINDS = ("scratch", "patch", "inclusion", "pits")


def steel_texture(rng: np.random.Generator, size: int = 200, streak_amplitude: float = 9.0,
                  grain_amplitude: float = 6.0, streak_rows: int | None = None, streak_knots: int = 6) -> np.ndarray:
    """Clean rolled-steel-like float32 texture in gray levels (not clipped): streaks along the rows (noise
    on ``streak_rows`` rows, default a quarter of ``size``, and ``streak_knots`` points along them, smoothly
    resized) plus fine grain. The parameters take the texture apart for ``studies.strip_study``."""
    rows = size // 4 if streak_rows is None else streak_rows
    streaks = cv2.resize(rng.normal(0, 1, (rows, streak_knots)).astype(np.float32), (size, size),
                         interpolation=cv2.INTER_CUBIC)
    grain = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 0.8)
    return rng.uniform(110, 150) + streak_amplitude * streaks + grain_amplitude * grain


def _scratch(img: np.ndarray, rng: np.random.Generator) -> None:
    size = img.shape[0]
    angle = np.deg2rad(rng.uniform(-35, 35) + rng.choice([0, 90]))
    length = rng.uniform(0.3, 0.8) * size
    cx, cy = rng.uniform(0.25, 0.75, 2) * size
    dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
    mask = np.zeros_like(img)
    cv2.line(mask, (int(cx - dx), int(cy - dy)), (int(cx + dx), int(cy + dy)), 1.0, int(rng.integers(1, 3)))
    img += rng.choice([-1, 1]) * rng.uniform(45, 80) * mask


def _patch(img: np.ndarray, rng: np.random.Generator) -> None:
    size = img.shape[0]
    mask = np.zeros_like(img)
    center = tuple(int(v) for v in rng.uniform(0.2, 0.8, 2) * size)
    axes = tuple(int(v) for v in rng.uniform(0.08, 0.22, 2) * size)
    cv2.ellipse(mask, center, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask * rng.uniform(0.6, 1.0, mask.shape).astype(np.float32), (0, 0), 4)
    img -= rng.uniform(40, 70) * mask


def _inclusion(img: np.ndarray, rng: np.random.Generator) -> None:
    size = img.shape[0]
    mask = np.zeros_like(img)
    for _ in range(int(rng.integers(1, 4))):
        center = tuple(int(v) for v in rng.uniform(0.1, 0.9, 2) * size)
        cv2.ellipse(mask, center, (int(rng.integers(6, 22)), int(rng.integers(1, 3))), float(rng.uniform(-8, 8)), 0, 360, 1.0, -1)
    img -= rng.uniform(50, 85) * cv2.GaussianBlur(mask, (0, 0), 0.7)


def _pits(img: np.ndarray, rng: np.random.Generator) -> None:
    size = img.shape[0]
    mask = np.zeros_like(img)
    cx, cy = rng.uniform(0.2, 0.8, 2) * size
    for _ in range(int(rng.integers(6, 30))):
        x, y = rng.normal((cx, cy), size * 0.08)
        cv2.circle(mask, (int(x), int(y)), int(rng.integers(1, 4)), 1.0, -1)
    img -= rng.uniform(45, 80) * mask


_INJECT: dict[str, Callable[[np.ndarray, np.random.Generator], None]] = {
    "scratch": _scratch, "patch": _patch, "inclusion": _inclusion, "pits": _pits,
}


def synthetic_frame(rng: np.random.Generator, defect: str | None, size: int = 200) -> np.ndarray:
    img = steel_texture(rng, size)
    if defect is not None:
        _INJECT[defect](img, rng)
    return np.clip(img, 0, 255).astype(np.uint8)


def corrupt_bytes(image: np.ndarray, rng: np.random.Generator) -> bytes:
    """Truncated PNG, random garbage, or nothing: bytes no decoder accepts."""
    kind = rng.integers(0, 3)
    if kind == 0:
        data = cv2.imencode(".png", image)[1].tobytes()
        return data[: int(rng.integers(8, len(data) // 2))]
    if kind == 1:
        return rng.integers(0, 256, int(rng.integers(16, 4096)), dtype=np.uint8).tobytes()
    return b""


class SyntheticStripSource(FrameSource):
    """Endless (or ``count``-limited) seeded synthetic frames; ``fps`` paces them like a line camera."""

    def __init__(self, defect_rate: float = 0.1, seed: int = 0, count: int | None = None, size: int = 200,
                 corrupt_rate: float = 0.0, encoding: str = "raw", fps: float | None = None) -> None:
        if encoding not in ("raw", "png"):
            raise ValueError("encoding must be 'raw' (uint8 arrays) or 'png' (encoded bytes)")
        self.defect_rate, self.seed, self.count, self.size = defect_rate, seed, count, size
        self.corrupt_rate, self.encoding, self.fps = corrupt_rate, encoding, fps
        self.name = f"synthetic:{defect_rate:g}:seed{seed}"
        self._index = 0

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        rng = np.random.default_rng([self.seed, self._index])
        next_at = time.monotonic()
        while not stop.is_set() and (self.count is None or self._index < self.count):
            yield self._make(rng)
            self._index += 1
            if self.fps:
                next_at += 1.0 / self.fps
                stop.wait(max(0.0, next_at - time.monotonic()))

    def _make(self, rng: np.random.Generator) -> Frame:
        defect = str(rng.choice(DEFECT_KINDS)) if rng.random() < self.defect_rate else None
        image = synthetic_frame(rng, defect, self.size)
        frame_id = f"{self._index:08d}"
        if rng.random() < self.corrupt_rate:
            return Frame(frame_id, self.name, corrupt_bytes(image, rng), time.time(), {"label": "corrupt"})
        data = image if self.encoding == "raw" else cv2.imencode(".png", image)[1].tobytes()
        return Frame(frame_id, self.name, data, time.time(), {"label": defect})
