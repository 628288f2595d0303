"""Reading training images robustly: a bad file is reported by name and skipped."""

from __future__ import annotations

import logging
import random

import numpy as np

from edge_runtime.datasets import DatasetError, Sample, box_free_corners
from edge_runtime.errors import InspectionError
from edge_runtime.preprocess import PreprocessSpec, preprocess

log = logging.getLogger(__name__)


def read_frames(samples: list[Sample], spec: PreprocessSpec) -> tuple[list[np.ndarray], list[Sample]]:
    """Decode every sample with the runtime's preprocessing; skip (and name) unreadable files."""
    frames, kept = [], []
    for sample in samples:
        try:
            frames.append(preprocess(sample.path, spec))
            kept.append(sample)
        except InspectionError as error:
            log.warning("skipping %s: %s", sample.path, error)
    if not frames:
        raise DatasetError("none of the images could be read")
    return frames, kept


def box_free_crops(
    frames: list[np.ndarray], samples: list[Sample], sizes: tuple[int, ...], per_image: int, margin: int, seed: int
) -> list[np.ndarray]:
    """Proxy 'defect-free' steel texture: crops outside every annotated box (boxes are loose, so noisy)."""
    rng = random.Random(seed)
    crops = []
    for frame, sample in zip(frames, samples):
        for size in sizes:
            corners = box_free_corners(frame.shape, sample.boxes, size, margin)
            rng.shuffle(corners)
            crops.extend(frame[y: y + size, x: x + size] for y, x in corners[:per_image])
    return crops


def dihedral(image: np.ndarray, k: int) -> np.ndarray:
    """The k-th of the 8 flips/rotations: steel texture has no preferred orientation on the strip image."""
    out = np.rot90(image, k % 4)
    return np.ascontiguousarray(out[:, ::-1] if k >= 4 else out)


def stack_equal_shapes(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Concatenate consecutive arrays of equal shape along the first axis (order kept): model batches
    from frames that may differ in size."""
    runs: list[list[np.ndarray]] = []
    for array in arrays:
        if runs and runs[-1][0].shape == array.shape:
            runs[-1].append(array)
        else:
            runs.append([array])
    return [np.concatenate(run) for run in runs]
