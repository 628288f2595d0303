"""Reading training images robustly: a bad file is reported by name and skipped."""

from __future__ import annotations

import logging
import random
from collections import Counter

import numpy as np

from edge_runtime.datasets import DatasetError, Sample, box_free_corners
from edge_runtime.errors import InspectionError
from edge_runtime.preprocess import PreprocessSpec, preprocess

log = logging.getLogger(__name__)


def decoded(sample: Sample, spec: PreprocessSpec) -> np.ndarray | None:
    """The sample's frame with the runtime's preprocessing; None (the file named in the log) if unreadable."""
    try:
        return preprocess(sample.path, spec)
    except InspectionError as error:
        log.warning("skipping %s: %s", sample.path, error)
        return None


def readable(samples: list[Sample], spec: PreprocessSpec) -> list[Sample]:
    """The samples whose files decode, as training read them (the export calibrates on the same)."""
    return [sample for sample in samples if decoded(sample, spec) is not None]


def read_frames(samples: list[Sample], spec: PreprocessSpec) -> tuple[list[np.ndarray], list[Sample]]:
    """Decode every sample with the runtime's preprocessing; skip (and name) unreadable files."""
    frames, kept = [], []
    for sample in samples:
        frame = decoded(sample, spec)
        if frame is not None:
            frames.append(frame)
            kept.append(sample)
    if not frames:
        raise DatasetError(f"none of the {len(samples)} images could be read" if samples else "no images to read")
    return frames, kept


def check_splits(splits: dict[str, list[Sample]], spec: PreprocessSpec) -> None:
    """Before any training: every class, and the defect-free images where the data set has them, has a
    readable image in every split; otherwise ``DatasetError`` says which are missing where. Decodes each
    file once (seconds), naming the unreadable ones, so a class of only broken files never becomes a
    class of the model and a data set too small to split stops before a long training, not after it."""
    counts: Counter[tuple[str, str | None]] = Counter(
        (split, sample.label) for split, samples in splits.items() for sample in readable(samples, spec))
    labels = sorted({s.label for samples in splits.values() for s in samples}, key=lambda label: (label is None, str(label)))
    missing = [f"{label or 'defect-free'} in {split}" for label in labels for split in splits if not counts[split, label]]
    if missing:
        totals = ", ".join(f"{label or 'defect-free'} {sum(counts[split, label] for split in splits)}" for label in labels)
        raise DatasetError(f"no readable image of {'; '.join(missing)} (readable images: {totals}). The 70/15/15 "
                           "split gives every part an image of a class from 6 images of it on; add images, or "
                           "remove a class folder whose files cannot be read")


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
