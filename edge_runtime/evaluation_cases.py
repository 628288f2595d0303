"""Which frames an evaluation runs over: a data set, optionally one recorded split of it."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from pathlib import Path

from .datasets import (
    NEU_ALIASES,
    DatasetError,
    Sample,
    box_free_corners,
    label_key,
    load_class_folders,
    load_magnetic_tile,
    load_neu_det,
    split_digests,
    split_samples,
)
from .evaluate import Case

NORMAL_CROP_MARGIN = 8


def load_samples(dataset: str, path: Path, normal_class: str | None = None) -> list[Sample]:
    """Any number of defect classes: held-out images of one class, or normal images only, are evaluated too.
    ``normal_class`` names the defect-free folder of the class-folder layout; the NEU-DET and magnetic-tile
    layouts name their own (none, and ``MT_Free``), so it is refused there rather than ignored."""
    if normal_class is not None and dataset != "folder":
        raise DatasetError(f"--normal-class is for --dataset folder (class sub-folders, one of them defect-free); "
                           f"the {dataset} layout names its own defect-free images")
    if dataset == "neu-det":
        return load_neu_det(path, min_classes=0)
    if dataset == "magnetic-tile":
        return load_magnetic_tile(path, min_classes=0)
    return load_class_folders(path, normal_class, min_classes=0)


def select_split(samples: list[Sample], split_info: dict, split: str) -> list[Sample]:
    """Re-create the split recorded in the manifest (seeded, content-hash grouped), of the data set the models were
    trained on only (``is_training_data_set``): any other folder would be split anew, and its "test" figures would
    mix images of every kind, so it is refused (held-out images are evaluated whole)."""
    if split == "all":
        return samples
    if not split_info:
        raise DatasetError("the manifest records no split for this profile; use --split all")
    splits = split_samples(samples, int(split_info["seed"]), tuple(split_info["fractions"]))
    if not is_training_data_set(splits, split_info):
        raise DatasetError(
            f"--split {split} picks the {split} images of the data set the models were trained on "
            f"({_counts(split_info.get('counts', {}))}), but this folder's images split as "
            f"{_counts({name: len(part) for name, part in splits.items()})}: it is another data set. Evaluate "
            "held-out images whole (--split all, the default)")
    return splits[split]


def is_training_data_set(splits: dict[str, list[Sample]], split_info: dict) -> bool:
    """Whether ``splits`` are the recorded split of the training data set: the same files in each split, where the
    manifest records their digests (``datasets.split_digests``); for a manifest without them, the recorded counts
    or a few more files per split (the export counts only the files it could read; ``training.data.readable``)."""
    if "digests" in split_info:
        return split_digests(splits) == split_info["digests"]
    recorded = split_info.get("counts")
    if not recorded:
        return True
    found = {name: len(part) for name, part in splits.items()}
    extra = sum(found.values()) - sum(recorded.values())
    return all(found.get(name, 0) >= count for name, count in recorded.items()) and \
        extra <= 2 + 0.01 * sum(recorded.values())


def _counts(counts: dict) -> str:
    return " / ".join(f"{name} {counts.get(name, 0)}" for name in ("train", "val", "test"))


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
    """Spell a data set's labels as the model does: letter case, spaces, '-' and '_' do not count
    ('Pitted Surface', 'pitted-surface' and 'pitted_surface' are one class), NEU-CLS's abbreviations ('Cr')
    and the tile set's folder names ('MT_Crack') are the class they stand for. A label that matches no class
    is kept as it is (``unknown_labels`` counts them)."""
    by_key = {label_key(name): name for name in class_names}
    by_key.update({alias: name for alias, name in NEU_ALIASES.items() if name in class_names})

    def canonical(label: str | None) -> str | None:
        if label is None:
            return None
        key = label_key(label)
        return by_key.get(key, by_key.get(key.removeprefix("mt"), label))  # MT_Crack: the tile set's folder name

    return [replace(s, label=canonical(s.label)) for s in samples]


def unknown_labels(samples: list[Sample], class_names: list[str]) -> dict[str, int]:
    """Defect labels (after ``match_class_names``) that are not classes of the model, with their image counts:
    those images count in the gate's recall but not in the classifier's accuracy."""
    return dict(sorted(Counter(s.label for s in samples if s.label is not None and s.label not in class_names).items()))


def build_cases(dataset: str, path: Path, inspector, split: str, normal_class: str | None,
                normal_crops: int) -> tuple[list[Case], list[str]]:
    """(the evaluation's frames, notices for the reader: what the figures do and do not cover)."""
    samples = match_class_names(load_samples(dataset, Path(path), normal_class), inspector.class_names)
    split_info = inspector.config.raw.get("split", {})
    chosen = select_split(samples, split_info, split)
    cases = [Case(s.path.name, s) for s in chosen]
    if not cases:
        raise DatasetError(f"{path}: no image in the {split} split")
    notices = _notices(samples, chosen, inspector, split, split_info, dataset)
    if normal_crops:
        crops = box_free_crop_cases([s for s in chosen if s.boxes], normal_crops)
        cases += crops
        if not crops:
            notices.append(f"--normal-crops {normal_crops}: no box-free crops, since no image has VOC boxes (.xml) "
                           "with room beside them, so there is no false-alarm rate")
    return cases, notices


def _notices(samples: list[Sample], chosen: list[Sample], inspector, split: str, split_info: dict,
             dataset: str) -> list[str]:
    notices = []
    if split == "all" and split_info.get("counts") and is_training_data_set(
            split_samples(samples, int(split_info["seed"]), tuple(split_info["fractions"])), split_info):
        notices.append(f"this folder is the data set the models were trained on: --split all includes its "
                       f"{split_info['counts']['train']} training and {split_info['counts']['val']} validation "
                       "images; --split test gives the held-out figures")
    unknown = unknown_labels(chosen, inspector.class_names)
    if unknown:
        notices.append(f"labels that are not classes of profile {inspector.profile} "
                       f"({', '.join(inspector.class_names)}): "
                       + ", ".join(f"{label} ({n} images)" for label, n in unknown.items())
                       + "; they count in the gate's recall, not in the classifier's accuracy (another --profile?"
                       + (" A folder of defect-free images is named with --normal-class.)" if dataset == "folder"
                          else ")"))
    return notices
