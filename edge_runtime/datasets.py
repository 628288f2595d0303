"""Data set readers (numpy/OpenCV/stdlib only) and the deterministic split.

Three layouts: NEU-DET (images + Pascal-VOC boxes), the magnetic-tile set (images +
pixel masks, ``MT_Free`` = defect-free) and a generic folder of class sub-folders, so a
plant can retrain on its own images without code changes.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
SPLITS = ("train", "val", "test")


class DatasetError(ValueError):
    """The data folder does not have the layout or content that was asked for."""


@dataclass(frozen=True)
class Box:
    xmin: int
    ymin: int
    xmax: int
    ymax: int


@dataclass(frozen=True)
class Sample:
    """One labelled image. ``label`` is None for defect-free (normal) images."""

    path: Path
    label: str | None
    boxes: tuple[Box, ...] = field(default=())
    mask_path: Path | None = None

    @property
    def is_normal(self) -> bool:
        return self.label is None


def image_files(folder: Path, recursive: bool = False) -> list[Path]:
    """Entries named like images, broken links included: they fail later, by name, as unreadable
    (an evaluation counts them as errors, training skips them with a warning), not silently here.
    macOS's ``._`` resource files, left on a folder copied from a Mac, are not images and are left out.
    ``recursive`` follows linked sub-folders too (a day's frames linked in from another disk), each
    real folder once."""
    entries = _walk(folder) if recursive else folder.iterdir()
    return sorted(p for p in entries
                  if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("._") and not p.is_dir())


def _walk(folder: Path) -> list[Path]:
    """Every entry under ``folder``, through linked sub-folders, without visiting a real folder twice."""
    return [Path(root) / name for root, files in _folders(folder) for name in files]


def _folders(folder: Path) -> list[tuple[str, list[str]]]:
    """(folder, its file names) of ``folder`` and every folder under it, through linked sub-folders, each real
    folder once (a link to a folder above it is not a loop)."""
    found, seen = [], set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        found.append((root, files))
    return found


def is_mask_beside_image(path: Path, image_stems: set[tuple[Path, str]]) -> bool:
    """A ``.png`` with a same-name non-PNG image in its folder is that image's pixel mask (the
    magnetic-tile layout), not a frame. ``image_stems``: (folder, stem) of the non-PNG images
    (``non_png_stems``)."""
    return path.suffix.lower() == ".png" and (path.parent, path.stem) in image_stems


def non_png_stems(files: list[Path]) -> set[tuple[Path, str]]:
    """(folder, stem) of every file that is not a PNG: what ``is_mask_beside_image`` matches masks to."""
    return {(p.parent, p.stem) for p in files if p.suffix.lower() != ".png"}


def frames_and_masks(folder: Path) -> tuple[list[Path], list[Path]]:
    """(frames, masks) of the image files under ``folder``, recursively: a ``.png`` beside a same-name image
    is that image's mask (``is_mask_beside_image``), not a frame to inspect."""
    found = image_files(folder, recursive=True)
    images = non_png_stems(found)
    masks = [file for file in found if is_mask_beside_image(file, images)]
    return [file for file in found if not is_mask_beside_image(file, images)], masks


def read_voc(xml_path: Path) -> tuple[tuple[Box, ...], tuple[str, ...]]:
    """The boxes of a Pascal VOC annotation and their objects' names ("" where one has none); ``DatasetError``
    naming the file if it is not one."""
    try:
        root = ET.parse(xml_path).getroot()
        boxes, names = [], []
        for obj in root.iter("object"):
            bb = obj.find("bndbox")
            boxes.append(Box(*(int(float(bb.find(k).text)) for k in ("xmin", "ymin", "xmax", "ymax"))))
            names.append((obj.findtext("name") or "").strip())
    except (ET.ParseError, OSError, AttributeError, TypeError, ValueError) as error:
        raise DatasetError(f"{xml_path}: not a readable VOC annotation (every <object> needs a <bndbox> with "
                           f"xmin, ymin, xmax and ymax): {error}") from None
    return tuple(boxes), tuple(names)


# NEU-CLS style abbreviations (Cr_1.bmp, ...) of the NEU-DET class names.
NEU_ALIASES = {"cr": "crazing", "in": "inclusion", "pa": "patches", "ps": "pitted_surface",
               "rs": "rolled-in_scale", "sc": "scratches"}


# One number or copy mark at the end of a file's name: "_12", " 17", "-3", " (1)", " - Copy".
_LAST_NUMBER = re.compile(r"[\s_\-]*(?:\(\d+\)|\d+|copy)$", re.IGNORECASE)


def neu_label(stem: str) -> str:
    """Class of a NEU file: the name before its numbers (``crazing_12``, ``crazing 12 (1)``), with NEU-CLS
    abbreviations spelled out (``Cr_12``). A name that is only a number stays as it is."""
    prefix = stem
    while (mark := _LAST_NUMBER.search(prefix)) and mark.start() > 0:  # one mark at a time: no backtracking blow-up
        prefix = prefix[:mark.start()]
    return NEU_ALIASES.get(prefix.lower(), prefix)


def load_neu_det(root: Path, min_classes: int = 2) -> list[Sample]:
    """NEU-DET: ``images/<class>_<n>.jpg`` with ``annotations/<class>_<n>.xml`` (boxes optional).

    Also the layouts NEU-DET is distributed in: upper-case ``IMAGES`` / ``ANNOTATIONS``, and
    images or annotations in sub-folders (per class, or per split); and NEU-CLS's, a folder of
    the images themselves (``Cr_1.bmp``, ``crazing_1.jpg``), with their ``.xml`` files beside
    them where there are boxes; and the split layout (``train/images``, ``validation/images``, each with
    its ``annotations``). An annotation belongs to the image of its name in the mirrored folder (``images/a/``
    and ``annotations/a/``) or beside it. ``min_classes``: defect classes the folder must hold (training
    needs two; an evaluation of held-out images of one class, or of normal images only, needs none)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"data folder not found: {root}")
    files = [path for folder in _image_folders(root) for path in image_files(folder, recursive=True)]
    if not files:
        raise DatasetError(f"{root} is not a NEU-DET folder: no images in it or in its sub-folders")
    annotations = _xml_by_stem(root)
    samples = []
    for path in files:
        xml = _annotation_of(path, annotations.get(path.stem.lower(), []))
        boxes, names = read_voc(xml) if xml else ((), ())
        samples.append(Sample(path, _neu_class(path.stem, names), boxes))
    _require_classes(samples, root, min_classes)
    return samples


# File-name stems that say what a file is, not what it shows: such an image's class comes from its annotation.
GENERIC_NAMES = frozenset({"img", "image", "images", "frame", "pic", "picture", "photo", "sample", "file", "scan",
                           "capture", "snapshot"})


def _neu_class(stem: str, object_names: tuple[str, ...]) -> str:
    """The image's class: from its file name (NEU's own naming; an image of one class may hold boxes of
    others), else, for a name that names no class (``img_0001``, ``0001``), the class its annotation names most."""
    label = neu_label(stem)
    named = [name for name in object_names if name]
    if not named or (label_key(label) not in GENERIC_NAMES and not label.isdigit()):
        return label
    return Counter(named).most_common(1)[0][0]


def label_key(label: str) -> str:
    """A label as compared with class names: letter case, spaces, '-' and '_' do not count."""
    return re.sub(r"[\s_\-]+", "", label.lower())


def _image_folders(root: Path) -> list[Path]:
    """``root/images`` (any letter case); else every folder named so under ``root`` (a split layout); else ``root``."""
    child = _child_folder(root, "images")
    if child is not None:
        return [child]
    nested = sorted({Path(folder) for folder, _ in _folders(root) if Path(folder).name.lower() == "images"})
    nested = [p for p in nested if not any(q in p.parents for q in nested)]
    outside = [p for p in image_files(root, recursive=True) if not any(folder in p.parents for folder in nested)]
    return nested if nested and not outside else [root]  # images outside them: not a split layout, read it all




def _xml_by_stem(root: Path) -> dict[str, list[Path]]:
    """Every ``.xml`` (any letter case) under ``root``, and under its sibling ``annotations`` folder when
    ``root`` is an ``images`` folder, by lower-case stem."""
    folders = [root]
    if root.name.lower() == "images" and (sibling := _child_folder(root.parent, "annotations")) is not None:
        folders.append(sibling)
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for folder in folders:
        for path in _walk(folder):
            if path.suffix.lower() == ".xml":
                by_stem[path.stem.lower()].append(path)
    return by_stem


def _annotation_of(image: Path, candidates: list[Path]) -> Path | None:
    """The one annotation of ``image`` among the same-name ``.xml`` files: the only one, or the one whose folder
    mirrors the image's (``images`` read as ``annotations``) furthest; ``DatasetError`` when two tie."""
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    mirrored = ["annotations" if part.lower() == "images" else part.lower() for part in image.parent.parts]

    def shared_tail(xml: Path) -> int:
        parts = [part.lower() for part in xml.parent.parts]
        return next((n for n in range(min(len(parts), len(mirrored))) if parts[-1 - n] != mirrored[-1 - n]),
                    min(len(parts), len(mirrored)))

    ranked = sorted(candidates, key=shared_tail, reverse=True)
    if shared_tail(ranked[0]) == shared_tail(ranked[1]):
        raise DatasetError(f"{image}: two annotations could be its own, {ranked[0]} and {ranked[1]}; keep each "
                           "image's .xml beside it or in the mirrored folder under annotations/")
    return ranked[0]


def _child_folder(root: Path, name: str) -> Path | None:
    """``root/name`` in any letter case, or None."""
    matches = sorted(p for p in root.iterdir() if p.is_dir() and p.name.lower() == name) if root.is_dir() else []
    return matches[0] if matches else None


def load_magnetic_tile(root: Path, min_classes: int = 2) -> list[Sample]:
    """Magnetic tile: ``MT_<Class>/Imgs/*.jpg`` with same-name ``*.png`` masks; MT_Free is normal
    (folder names in any letter case; the images may also lie in ``MT_<Class>`` itself, or in other
    sub-folders of it). A ``.png`` with no same-name image beside it is an image itself (a set stored as
    PNG, no masks). ``min_classes`` as for ``load_neu_det``."""
    root = Path(root)
    samples = []
    class_folders = sorted(p for p in root.iterdir() if p.is_dir() and p.name.lower().startswith("mt_")) \
        if root.is_dir() else []
    for class_folder in class_folders:
        name = class_folder.name[len("MT_"):].lower()
        label = None if name == "free" else name
        imgs = _child_folder(class_folder, "imgs")
        frames, masks = frames_and_masks(imgs if imgs is not None and image_files(imgs, recursive=True) else class_folder)
        mask_of = _masks_by_frame(masks)
        samples.extend(Sample(path, label, mask_path=mask_of.get((path.parent, path.stem))) for path in frames)
    if not samples:
        raise DatasetError(f"{root} is not a magnetic-tile folder: no images in MT_<Class> folders (MT_Free: "
                           "the defect-free tiles)")
    _require_classes(samples, root, min_classes)
    return samples


def _masks_by_frame(masks: list[Path]) -> dict[tuple[Path, str], Path]:
    """(folder, stem) of a frame -> its pixel mask (``frames_and_masks``; ``.png`` in any letter case)."""
    return {(mask.parent, mask.stem): mask for mask in masks}


def load_class_folders(root: Path, normal_class: str | None = None, min_classes: int = 2) -> list[Sample]:
    """Generic layout: one sub-folder of images per class (images in folders under it count too);
    ``normal_class`` names the defect-free one. ``min_classes`` as for ``load_neu_det``."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"data folder not found: {root}")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if not folders:
        raise DatasetError(f"{root}: no class sub-folders; expected one folder of images per class")
    names = [_class_name(folder) for folder in folders]
    if normal_class is not None and normal_class not in names:
        raise DatasetError(f"{root}: no class folder named '{normal_class}' (the defect-free class); its class "
                           f"folders are {', '.join(names)}")
    samples = []
    for folder in folders:
        label = None if folder.name == normal_class else folder.name
        frames, masks = frames_and_masks(folder)
        mask_of = _masks_by_frame(masks)
        samples.extend(Sample(path, label, mask_path=mask_of.get((path.parent, path.stem))) for path in frames)
    if normal_class is not None and not any(s.is_normal for s in samples):
        raise DatasetError(f"{root}: no images in the normal class folder '{normal_class}'")
    _require_classes(samples, root, min_classes)
    return samples


def _class_name(folder: Path) -> str:
    """The folder's name, which becomes a class name in the manifest, the plots and the logs."""
    try:
        folder.name.encode("utf-8")
    except UnicodeEncodeError:
        raise DatasetError(f"class folder {folder.name!r} in {folder.parent} is not named in UTF-8: rename it "
                           "(its name becomes the class name in the manifest, plots and logs)") from None
    return folder.name


def _require_classes(samples: list[Sample], root: Path, min_classes: int) -> None:
    if not samples:
        raise DatasetError(f"{root}: no images found")
    classes = {s.label for s in samples if s.label is not None}
    if len(classes) < min_classes:
        raise DatasetError(
            f"{root}: found {len(classes)} defect class(es) {sorted(classes)}; at least {min_classes} are needed"
        )


def class_names(samples: list[Sample]) -> list[str]:
    return sorted({s.label for s in samples if s.label is not None})


def file_digest(path: Path) -> str:
    """sha256 of the file's bytes; an unreadable file is a group of its own (it is reported when read)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return f"unreadable:{path}"


def split_samples(
    samples: list[Sample], seed: int = 0, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
) -> dict[str, list[Sample]]:
    """Seeded split, stratified per label; byte-identical files always land in the same split."""
    groups: dict[tuple[str | None, str], list[Sample]] = defaultdict(list)
    for sample in samples:
        groups[(sample.label, file_digest(sample.path))].append(sample)
    by_label: dict[str | None, list[list[Sample]]] = defaultdict(list)
    for (label, _), group in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[1][0].path.name)):
        by_label[label].append(group)
    rng = random.Random(seed)
    splits: dict[str, list[Sample]] = {name: [] for name in SPLITS}
    # Defect classes first, normals last: the defect images' split is then the same whether
    # or not the data set has normal images (the classifier splits the defect images only).
    for label in sorted(by_label, key=lambda name: (name is None, str(name))):
        label_groups = by_label[label]
        rng.shuffle(label_groups)
        n_train = round(fractions[0] * len(label_groups))
        n_val = round(fractions[1] * len(label_groups))
        bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, None)}
        for name, (start, stop) in bounds.items():
            for group in label_groups[start:stop]:
                splits[name].extend(group)
    return splits


def split_digests(splits: dict[str, list[Sample]]) -> dict[str, str]:
    """Per split, a sha256 over the sorted content digests of its files: which images it holds, whatever their
    names or folders. The export records them, so an evaluation can tell the training data set from another one
    of the same size (``evaluation_cases.is_training_data_set``)."""
    return {name: hashlib.sha256("\n".join(sorted(file_digest(s.path) for s in part)).encode()).hexdigest()
            for name, part in splits.items()}


def box_free_mask(shape: tuple[int, int], boxes: tuple[Box, ...], margin: int) -> np.ndarray:
    """True where a pixel is more than ``margin`` pixels away from every box."""
    covered = np.zeros(shape, bool)
    for b in boxes:
        covered[max(0, b.ymin - margin): b.ymax + margin + 1, max(0, b.xmin - margin): b.xmax + margin + 1] = True
    return ~covered


def box_free_corners(
    shape: tuple[int, int], boxes: tuple[Box, ...], size: int, margin: int, step: int = 8
) -> list[tuple[int, int]]:
    """Top-left corners of size x size windows that stay ``margin`` pixels away from every box."""
    height, width = shape
    covered = ~box_free_mask(shape, boxes, margin)
    integral = np.pad(covered.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    return [
        (y, x)
        for y in range(0, height - size + 1, step)
        for x in range(0, width - size + 1, step)
        if integral[y + size, x + size] - integral[y, x + size] - integral[y + size, x] + integral[y, x] == 0
    ]
