"""Rolling marks over the whole frame: a normal variation of strip, for the residual detector's normal cells.

Good strip often carries fine marks along the rolling direction from edge to edge (roll grinding,
work-roll wear, lubrication), stronger on one coil than on the next. A detector that has learnt
"parallel lines are a defect" from painted streaks (``training.synthetic_defects``, kind ``streak``)
could flag such strip everywhere. Defects are local departures from the surface; a pattern that runs
over the whole frame is the surface. Frames with marks laid over all of them enter the detector's
training as *normal* (their box-free cells are normal cells, and defects are painted on them too)
with ``residual_surface_copies`` (a trial setting: measured on neu-steel and not deployed,
docs/gate_design.md, step 13).

The marks are made here, from noise: fine lines across one image axis with a random line width, each
line's strength varying slowly along it; strengths in units of the frame's own grey spread, as the
painted defects' are. Nothing is taken from any data set or from the demo strip
(``edge_runtime.capture.synthetic``), whose clean frames stay a check the detector never trains on.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_runtime.datasets import Sample


@dataclass(frozen=True)
class MarkedFrames:
    frames: list[np.ndarray]  # [0, 1] grey, each with marks over the whole of it
    samples: list[Sample]  # the source frames' samples: the marks move no box


def rolling_marks(frame: np.ndarray, rng: np.random.Generator,
                  amplitude: tuple[float, float] = (0.25, 1.0)) -> np.ndarray:
    """``frame`` ([0, 1] grey) with fine parallel marks over the whole of it along one image axis (either,
    at random), their amplitude ``amplitude`` (a range) times the frame's grey spread."""
    along_rows = rng.random() < 0.5
    lines, length = frame.shape if along_rows else frame.shape[::-1]
    across = cv2.GaussianBlur(rng.normal(0.0, 1.0, (lines, 1)).astype(np.float32), (1, 0), rng.uniform(0.7, 3.0))
    knots = int(rng.integers(3, 9))
    along = cv2.resize(rng.uniform(0.3, 1.0, (lines, knots)).astype(np.float32), (length, lines),
                       interpolation=cv2.INTER_CUBIC)
    marks = across * along
    marks = marks if along_rows else marks.T
    spread = max(float(frame.std()), 1e-3) * rng.uniform(*amplitude)
    return np.clip(frame + marks / max(float(marks.std()), 1e-6) * spread, 0.0, 1.0).astype(np.float32)


def marked_copies(frames: list[np.ndarray], samples: list[Sample], copies: int, seed: int,
                  amplitude: tuple[float, float] = (0.25, 1.0)) -> MarkedFrames:
    """``copies`` marked versions of each frame (``rolling_marks`` at ``amplitude``), in order, with their samples."""
    if copies < 0:
        raise ValueError(f"copies must be 0 or more, not {copies}")
    rng = np.random.default_rng([seed, 11])
    out_frames, out_samples = [], []
    for _ in range(copies):
        for frame, sample in zip(frames, samples):
            out_frames.append(rolling_marks(frame, rng, amplitude))
            out_samples.append(sample)
    return MarkedFrames(out_frames, out_samples)
