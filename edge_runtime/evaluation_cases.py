"""Which frames an evaluation runs over: a data set, optionally one recorded split of it."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

from .datasets import (
    NEU_ALIASES,
    DatasetError,
    Sample,
    box_free_corners,
    load_class_folders,
    load_magnetic_tile,
    load_neu_det,
    split_samples,
)
from .evaluate import Case

NORMAL_CROP_MARGIN = 8


def load_samples(dataset: str, path: Path, normal_class: str | None = None) -> list[Sample]:
    """Any number of defect classes: held-out images of one class, or normal images only, are evaluated too."""
    if dataset == "neu-det":
        return load_neu_det(path, min_classes=0)
    if dataset == "magnetic-tile":
        return load_magnetic_tile(path, min_classes=0)
    return load_class_folders(path, normal_class, min_classes=0)


def select_split(samples: list[Sample], split_info: dict, split: str) -> list[Sample]:
    """Re-create the split recorded in the manifest (seeded, content-hash grouped)."""
    if split == "all":
        return samples
    if not split_info:
        raise DatasetError("the manifest records no split for this profile; use --split all")
    return split_samples(samples, int(split_info["seed"]), tuple(split_info["fractions"]))[split]


def box_free_crop_cases(samples: list[Sample], size: int, seed: int = 0) -> list[Case]:
    """One box-free SIZE x SIZE crop per image that has one: NEU's only defect-free texture (a proxy).
    An image that does not decode lends none (it is reported as an error case of its own)."""
    from .errors import InspectionError
    from .preprocess import load_image

    rng = random.Random(seed)
    cases = []
    for sample in samples:
        try:
            height, width = load_image(sample.path).shape[:2]
        except InspectionError:
            continue
        corners = box_free_corners((height, width), sample.boxes, size, NORMAL_CROP_MARGIN)
        if corners:
            y, x = rng.choice(corners)
            normal = Sample(sample.path, None)
            cases.append(Case(f"{sample.path.name}@crop{y},{x},{size}", normal, (y, x, size)))
    return cases


def match_class_names(samples: list[Sample], class_names: list[str]) -> list[Sample]:
    """Spell a data set's labels as the model does: 'Crazing', 'crazing' and 'Cr' are one class, as are
    'MT_Crack' and 'crack'."""
    by_key = {name.lower(): name for name in class_names}
    by_key.update({alias: name for alias, name in NEU_ALIASES.items() if name in class_names})

    def canonical(label: str | None) -> str | None:
        if label is None:
            return None
        key = label.lower()
        return by_key.get(key, by_key.get(key.removeprefix("mt_"), label))  # MT_Crack: the tile set's folder name

    return [replace(s, label=canonical(s.label)) for s in samples]


def build_cases(dataset: str, path: Path, inspector, split: str, normal_class: str | None, normal_crops: int) -> list[Case]:
    samples = match_class_names(load_samples(dataset, Path(path), normal_class), inspector.class_names)
    split_info = inspector.config.raw.get("split", {})
    chosen = select_split(samples, split_info, split)
    cases = [Case(s.path.name, s) for s in chosen]
    if normal_crops:
        cases += box_free_crop_cases([s for s in chosen if s.boxes], normal_crops)
    return cases
