"""Train the anomaly gate of a profile on defect-free texture only.

Reads top to bottom: load + split -> frames padded exactly as the runtime pads them ->
frozen multi-scale features -> keep only normal feature cells -> whiten -> fit the
per-location bottleneck -> save. Thresholds are calibrated later, by ``python -m export``,
through the exported ONNX graph and the runtime's own scoring code.

Normal cells: for NEU-DET (no defect-free images) the cells of training images whose
centre lies at least ``box_margin`` pixels outside every annotated box; boxes are loose
and not exhaustive, so this normal set is a noisy proxy. For data sets with real
defect-free images (magnetic tile, folder layout) every cell of every normal image.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import cv2
import keras
import numpy as np
from tqdm import tqdm

from edge_runtime.datasets import Box, DatasetError, Sample, box_free_mask, split_samples
from edge_runtime.preprocess import FrameGeometry, model_input
from training import autoencoder as ae
from training import pruning
from training.backbone import PRUNING_FILE, mobilenet_v2, profile_backbone
from training.camera_changes import changed_copies
from training.data import box_free_crops, read_frames
from training.profiles import Profile
from training.synthetic_defects import defect_centre, paint_defect

log = logging.getLogger(__name__)
# The frame-level autoencoder learns from one vector per defect-free training frame: below this
# its whitening and its 10% validation hold-out mean nothing.
MIN_FRAME_LEVEL_FRAMES = 20
RESIDUAL_DETECTOR_FILE = "residual_detector.weights.h5"


def lends_normal_texture(sample: Sample, profile: Profile) -> bool:
    return profile.normal_texture_labels is None or sample.label in profile.normal_texture_labels


def cell_centres(grid: tuple[int, int], geometry: FrameGeometry, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """(row centres, column centres) of a padded frame's feature cells, in frame pixels."""
    scale_y = geometry.frame_shape[0] / geometry.work_shape[0]
    scale_x = geometry.frame_shape[1] / geometry.work_shape[1]
    return ((np.arange(grid[0]) * stride + stride / 2 - geometry.top) * scale_y,
            (np.arange(grid[1]) * stride + stride / 2 - geometry.left) * scale_x)


def frame_cell_mask(grid: tuple[int, int], geometry: FrameGeometry, stride: int) -> np.ndarray:
    """Feature cells centred inside the frame, not on its reflect-padded margin."""
    centres_y, centres_x = cell_centres(grid, geometry, stride)
    rows = (centres_y >= 0) & (centres_y < geometry.frame_shape[0])
    cols = (centres_x >= 0) & (centres_x < geometry.frame_shape[1])
    return rows[:, None] & cols[None, :]


def normal_cell_mask(sample: Sample, grid: tuple[int, int], geometry: FrameGeometry, margin: int,
                     stride: int) -> np.ndarray:
    """Feature cells whose centre (in frame pixels) keeps ``margin`` away from every box."""
    centres_y, centres_x = cell_centres(grid, geometry, stride)
    covered = np.zeros(grid, bool)
    for b in sample.boxes:
        rows = (centres_y >= b.ymin - margin) & (centres_y <= b.ymax + margin)
        cols = (centres_x >= b.xmin - margin) & (centres_x <= b.xmax + margin)
        covered |= rows[:, None] & cols[None, :]
    return ~covered


def normal_vectors(extractor, frames, samples, profile: Profile, uses_boxes: bool) -> tuple[np.ndarray, np.ndarray]:
    """(normal feature cells, frame-pooled features of the normal frames) from the extractor's
    outputs; the second is empty unless the extractor pools a ``frame_tap``."""
    spec = profile.preprocess
    groups = defaultdict(list)
    for frame, sample in zip(frames, samples):
        padded, geometry = model_input(frame, spec, ae.INPUT_MULTIPLE, profile.pad_margin)
        groups[padded.shape].append((padded, sample, geometry))
    vectors, pooled = [], []
    for items in tqdm(groups.values(), desc="features", unit="size"):
        for start in range(0, len(items), 16):
            chunk = items[start: start + 16]
            outputs = extractor.predict(np.stack([p for p, *_ in chunk])[..., None], verbose=0)
            maps, frame_features = (outputs[0], outputs[-1]) if isinstance(outputs, list) else (outputs, None)
            for i, (fmap, (_, sample, geometry)) in enumerate(zip(maps, chunk)):
                keep = np.ones(fmap.shape[:2], bool)
                if uses_boxes:
                    keep &= normal_cell_mask(sample, fmap.shape[:2], geometry, profile.box_margin,
                                             profile.feature_stride)
                if not profile.normal_cells_in_margin:
                    keep &= frame_cell_mask(fmap.shape[:2], geometry, profile.feature_stride)
                vectors.append(fmap[keep])
                if frame_features is not None and sample.is_normal:
                    pooled.append(frame_features[i].reshape(-1))
    return np.concatenate(vectors), np.array(pooled, np.float32)


def painted_cell_mask(mask: np.ndarray, grid: tuple[int, int], geometry: FrameGeometry, stride: int) -> np.ndarray:
    """Feature cells with a painted pixel (``mask``, frame pixels) in the stride-wide square around
    their centre."""
    painted = cv2.integral(mask.astype(np.uint8))
    centres_y, centres_x = cell_centres(grid, geometry, stride)
    y0, y1 = (np.clip(np.ceil(centres_y + d), 0, mask.shape[0]).astype(int) for d in (-stride / 2, stride / 2))
    x0, x1 = (np.clip(np.ceil(centres_x + d), 0, mask.shape[1]).astype(int) for d in (-stride / 2, stride / 2))
    counts = painted[np.ix_(y1, x1)] - painted[np.ix_(y0, x1)] - painted[np.ix_(y1, x0)] + painted[np.ix_(y0, x0)]
    return counts > 0


def synthetic_pairs(extractor, frames, samples, profile: Profile, uses_boxes: bool,
                    changes: list[Callable[[np.ndarray], np.ndarray]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(cells of frames with a synthetic defect painted on normal texture, the same cells of the clean
    frames): ``gate_synthetic_defects`` painted copies of every training frame
    (``training.synthetic_defects``), only cells near the paint and on normal texture. ``changes``
    (one per frame): each frame and its painted copies are then seen through its change
    (``training.camera_changes``)."""
    rng = np.random.default_rng(profile.gate_seed)
    inputs, targets = [], []
    changes = changes if changes is not None else [lambda frame: frame] * len(frames)
    for frame, sample, change in tqdm(list(zip(frames, samples, changes)), desc="synthetic defects", unit="frame"):
        allowed = box_free_mask(frame.shape, sample.boxes, profile.box_margin) if uses_boxes else np.ones(frame.shape, bool)
        painted = [paint_defect(frame, centre, rng, profile.gate_synthetic_strength, profile.gate_synthetic_kinds)
                   for _ in range(profile.gate_synthetic_defects)
                   if (centre := defect_centre(allowed, rng)) is not None]
        if not painted:
            continue
        padded = [model_input(change(f), profile.preprocess, ae.INPUT_MULTIPLE, profile.pad_margin) for f in
                  [frame, *(p.frame for p in painted)]]
        outputs = extractor.predict(np.stack([p for p, _ in padded])[..., None], verbose=0)
        maps = outputs[0] if isinstance(outputs, list) else outputs
        geometry, grid = padded[0][1], maps.shape[1:3]
        keep = normal_cell_mask(sample, grid, geometry, profile.box_margin, profile.feature_stride) if uses_boxes \
            else np.ones(grid, bool)
        for fmap, defect in zip(maps[1:], painted):
            cells = keep & painted_cell_mask(defect.mask, grid, geometry, profile.feature_stride)
            inputs.append(fmap[cells])
            targets.append(maps[0][cells])
    if not inputs:
        raise DatasetError(f"{profile.name}: no normal texture to paint synthetic defects on "
                           f"(gate_synthetic_defects={profile.gate_synthetic_defects})")
    return np.concatenate(inputs), np.concatenate(targets)


def mirrored(frames: list[np.ndarray], samples: list[Sample]) -> tuple[list[np.ndarray], list[Sample]]:
    """Each frame mirrored left-right and top-bottom, its boxes with it: the strip's texture in the
    orientations the line can show it (the classifier trains on such flips too)."""
    out_frames, out_samples = [], []
    for frame, sample in zip(frames, samples):
        height, width = frame.shape[:2]
        left_right = tuple(Box(width - 1 - b.xmax, b.ymin, width - 1 - b.xmin, b.ymax) for b in sample.boxes)
        top_bottom = tuple(Box(b.xmin, height - 1 - b.ymax, b.xmax, height - 1 - b.ymin) for b in sample.boxes)
        out_frames += [np.ascontiguousarray(frame[:, ::-1]), np.ascontiguousarray(frame[::-1])]
        out_samples += [replace(sample, boxes=left_right), replace(sample, boxes=top_bottom)]
    return out_frames, out_samples


def turned(frames: list[np.ndarray], samples: list[Sample]) -> tuple[list[np.ndarray], list[Sample]]:
    """Each frame turned a quarter (``np.rot90``), its boxes with it: the strip's texture as a camera
    mounted across the rolling direction shows it."""
    out_frames, out_samples = [], []
    for frame, sample in zip(frames, samples):
        width = frame.shape[1]
        boxes = tuple(Box(b.ymin, width - 1 - b.xmax, b.ymax, width - 1 - b.xmin) for b in sample.boxes)
        out_frames.append(np.ascontiguousarray(np.rot90(frame)))
        out_samples.append(replace(sample, boxes=boxes))
    return out_frames, out_samples


def subsample(vectors: np.ndarray, seed: int, limit: int) -> np.ndarray:
    if len(vectors) <= limit:
        return vectors
    return vectors[np.random.default_rng(seed).choice(len(vectors), limit, replace=False)]


def fit_bottleneck(vectors: np.ndarray, whiten: bool, hidden: tuple[int, ...], epochs: int, batch_size: int = 1024,
                   name: str = "bottleneck", pairs: tuple[np.ndarray, np.ndarray] | None = None, seed: int = 0):
    """Whitening statistics and the per-cell bottleneck fitted on normal feature vectors, each rebuilt
    as itself; ``pairs`` (inputs, targets) are rebuilt as their target too (denoising), the
    whitening stays that of the normal vectors.

    Returns (mean, projection, bottleneck model, Keras fit history)."""
    mean, projection = ae.whitening(vectors, full=whiten)
    inputs = targets = ae.normalise(vectors, mean, projection)
    if pairs is not None:
        order = np.random.default_rng(seed).permutation(len(vectors) + len(pairs[0]))  # validation_split takes the end
        inputs = np.concatenate([inputs, ae.normalise(pairs[0], mean, projection)])[order]
        targets = np.concatenate([targets, ae.normalise(pairs[1], mean, projection)])[order]
    model = ae.bottleneck(inputs.shape[-1], tuple(hidden), name)
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    fit = model.fit(inputs[:, None, None, :], targets[:, None, None, :], batch_size=batch_size, epochs=epochs,
                    validation_split=0.1, verbose=2, shuffle=True)
    return mean, projection, model, fit


def fit_frame_branch(pooled: np.ndarray, profile: Profile, out_dir: Path) -> dict:
    """The frame-level autoencoder: the ``frame_tap`` layer averaged over each normal frame, whitened
    and rebuilt through its own small bottleneck. One vector per frame, so a few hundred in all:
    small batches, many epochs. Saves its weights beside the cell bottleneck's; returns its config."""
    mean, projection, model, fit = fit_bottleneck(pooled, True, profile.frame_hidden, profile.frame_epochs,
                                                  batch_size=64, name="frame")
    _save_bottleneck(out_dir, "frame", model, mean, projection)
    return {"tap": profile.frame_tap, "hidden": list(profile.frame_hidden), "epochs": profile.frame_epochs,
            "n_vectors": int(len(pooled)),
            "history": {k: [float(v) for v in vals] for k, vals in fit.history.items()}}


def pruning_inputs(profile: Profile, frames: list[np.ndarray]) -> np.ndarray:
    """Up to ``backbone_fit_frames`` training frames, padded as the gate pads them, as the backbone's
    3-channel [-1, 1] input; of the most common padded size where frame sizes differ."""
    groups = defaultdict(list)
    for i in np.random.default_rng(profile.seed).permutation(len(frames)):
        padded = model_input(frames[i], profile.preprocess, ae.INPUT_MULTIPLE, profile.pad_margin)[0]
        groups[padded.shape].append(padded)
    chosen = np.stack(max(groups.values(), key=len)[: profile.backbone_fit_frames])
    return np.repeat(chosen[..., None], 3, -1) * 2.0 - 1.0


@dataclass(frozen=True)
class FittedBackbone:
    """The profile's MobileNetV2, and how it was pruned (None: the ImageNet one as it is)."""

    model: keras.Model
    blocks: dict | None = None
    tuned: dict | None = None  # the pruned blocks' weights after distillation (``pruning.distil``)
    distil_loss: list[float] | None = None


def fitted_backbone(profile: Profile, frames: list[np.ndarray], base: keras.Model | None = None) -> FittedBackbone:
    """``base`` (default: a new ImageNet MobileNetV2) pruned and refitted on training frames where
    ``backbone_keep_ratio`` says so, then distilled for ``backbone_distil_epochs`` (``training.pruning``),
    else ``base`` itself."""
    base = base or mobilenet_v2((None, None, 3))
    if profile.backbone_keep_ratio is None:
        return FittedBackbone(base)
    inputs = pruning_inputs(profile, frames)
    blocks = pruning.prune_mobilenet_v2(base, inputs, profile.backbone_keep_ratio, seed=profile.seed,
                                        selection=profile.backbone_selection)
    model = pruning.pruned_backbone(base, blocks)
    if not profile.backbone_distil_epochs:
        return FittedBackbone(model, blocks)
    loss = pruning.distil(base, model, inputs, profile.backbone_distil_epochs,
                          learning_rate=profile.backbone_distil_lr, seed=profile.seed)
    return FittedBackbone(model, blocks, pruning.tuned_weights(model), loss)


def check_feature_stride(profile: Profile, base: keras.Model) -> None:
    """Refuse, before any data is read, taps of ``base`` whose stride is not the profile's ``feature_stride``."""
    extractor = ae.feature_extractor(ae.TAPS[profile.gate_taps], frame_tap=profile.frame_tap, base=base)
    shapes = extractor.compute_output_shape((1, 64, 64, 1))
    stride = 64 // (shapes[0] if profile.frame_tap else shapes)[1]
    if stride != profile.feature_stride:
        raise ValueError(f"profile {profile.name}: gate_taps {profile.gate_taps!r} give stride {stride}, "
                         f"but feature_stride is {profile.feature_stride}")


def train_autoencoder(profile: Profile, out_dir: Path, epochs: int | None = None) -> dict:
    taps, hidden = ae.TAPS[profile.gate_taps], profile.gate_hidden
    epochs = epochs or profile.gate_epochs
    keras.utils.set_random_seed(profile.gate_seed)  # the backbone's clone, the bottleneck's weights, its batches
    imagenet = mobilenet_v2((None, None, 3))
    check_feature_stride(profile, imagenet)
    samples = profile.load()
    uses_boxes = not any(s.is_normal for s in samples)
    if uses_boxes and not any(s.boxes for s in samples):
        raise DatasetError(f"{profile.data_dir}: no defect-free images and no boxes to cut normal texture from")
    train = [s for s in split_samples(samples, profile.seed, profile.split_fractions)["train"]
             if (uses_boxes and lends_normal_texture(s, profile)) or s.is_normal]
    frames, kept = read_frames(train, profile.preprocess)
    training_frames, training_samples = frames, kept
    if profile.normal_mirrors:
        extra_frames, extra_samples = mirrored(frames, kept)
        frames, kept = frames + extra_frames, kept + extra_samples
    if uses_boxes and profile.standalone_crops:
        # Box-free crops as frames of their own too, so small frames (little context) are normal as well.
        crops = box_free_crops(frames, kept, profile.crop_sizes, profile.crops_per_image, profile.box_margin,
                               profile.seed)
        frames, kept = frames + crops, kept + [Sample(Path("box-free crop"), None)] * len(crops)
    normal_frames = sum(sample.is_normal for sample in kept)
    if profile.frame_tap and normal_frames < MIN_FRAME_LEVEL_FRAMES:
        raise DatasetError(f"{profile.name}: {normal_frames} normal training frames are too few for the "
                           f"frame-level autoencoder (it needs {MIN_FRAME_LEVEL_FRAMES} at least; one vector per frame)")
    if profile.gate_camera_copies:
        camera = changed_copies(frames, kept, profile.gate_camera_copies, profile.gate_seed)
        frames, kept = frames + camera.frames, kept + camera.samples
    backbone = fitted_backbone(profile, training_frames, imagenet)
    pruned_blocks = backbone.blocks
    extractor = ae.feature_extractor(taps, frame_tap=profile.frame_tap, base=backbone.model)
    vectors, pooled = normal_vectors(extractor, frames, kept, profile, uses_boxes)
    vectors = subsample(vectors, profile.seed, profile.gate_max_vectors)
    pairs = synthetic_pairs(extractor, training_frames, training_samples, profile, uses_boxes) \
        if profile.gate_synthetic_defects else None
    mean, projection, model, fit = fit_bottleneck(vectors, profile.whiten, hidden, epochs, pairs=pairs,
                                                  seed=profile.gate_seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    _save_bottleneck(out_dir, "bottleneck", model, mean, projection)
    (out_dir / PRUNING_FILE).unlink(missing_ok=True)  # the classifier and the export take its presence as the word
    if pruned_blocks is not None:
        pruning.save(out_dir / PRUNING_FILE, pruned_blocks, backbone.tuned)
    frame = fit_frame_branch(pooled, profile, out_dir) if profile.frame_tap else None
    config = {
        "variant": "mobilenetv2-feature-reconstruction, " + ("PCA-whitened" if profile.whiten else "standardised"),
        "taps": [list(t) for t in taps], "hidden": list(hidden), "epochs": epochs, "gate_seed": profile.gate_seed,
        "feature_stride": profile.feature_stride, "input_multiple": ae.INPUT_MULTIPLE, "pad_margin": profile.pad_margin,
        "normal_source": ("box-free cells of NEU-DET training images"
                          + (" and box-free crops as frames" if profile.standalone_crops else "") + " (proxy)")
        if uses_boxes
        else "all cells of defect-free training images",
        "box_margin": profile.box_margin if uses_boxes else None,
        "normal_texture_labels": list(profile.normal_texture_labels or []) or None,
        "n_train_images": len(kept), "n_vectors": int(len(vectors)),
        "synthetic_defects": profile.gate_synthetic_defects,
        "synthetic_strength": profile.gate_synthetic_strength,
        "synthetic_kinds": list(profile.gate_synthetic_kinds),
        "camera_copies": profile.gate_camera_copies,
        "n_synthetic_vectors": 0 if pairs is None else int(len(pairs[0])),
        "history": {k: [float(v) for v in vals] for k, vals in fit.history.items()},
        "frame": frame,
        "backbone": None if pruned_blocks is None else {
            "keep_ratio": profile.backbone_keep_ratio, "fit_frames": profile.backbone_fit_frames,
            "selection": profile.backbone_selection, "distil_epochs": profile.backbone_distil_epochs,
            "distil_lr": profile.backbone_distil_lr,
            "distil_loss": backbone.distil_loss,
            "expansion_widths": {str(n): len(b.keep) for n, b in pruned_blocks.items()}},
    }
    (out_dir / "autoencoder_config.json").write_text(json.dumps(config, indent=1))
    (out_dir / RESIDUAL_DETECTOR_FILE).unlink(missing_ok=True)  # it read the previous bottleneck's residuals
    log.info("%s autoencoder trained on %d vectors from %d images", profile.name, len(vectors), len(kept))
    if profile.residual_hidden:
        from training.train_residual_detector import train_residual_detector

        config["residual_detector"] = train_residual_detector(profile, out_dir)
    return config


def load_anomaly_model(out_dir: Path, with_stem: bool = True) -> keras.Model:
    """The exported gate graph: error map, the backbone stem unless ``with_stem`` is False, and the
    frame-level error where the gate was trained with a ``frame_tap``."""
    config = json.loads((out_dir / "autoencoder_config.json").read_text())
    frame_config = config.get("frame")
    extractor = ae.feature_extractor(tuple(tuple(t) for t in config["taps"]), with_stem,
                                     frame_config["tap"] if frame_config else None, profile_backbone(out_dir))
    mean, projection, model = load_bottleneck(out_dir, "bottleneck", config["hidden"])
    frame = load_bottleneck(out_dir, "frame", frame_config["hidden"]) if frame_config else None
    return ae.anomaly_model(extractor, mean, projection, model, frame, load_residual_detector(out_dir, config),
                            (config.get("residual_detector") or {}).get("input", "residual"))


def load_residual_detector(out_dir: Path, config: dict) -> keras.Model | None:
    """The residual detector ``python -m training residual-detector`` saved, where the gate has one."""
    detector_config = config.get("residual_detector")
    if not detector_config:
        return None
    detector = ae.residual_detector(detector_config["channels"], tuple(detector_config["hidden"]),
                                    detector_config.get("members", 1))
    detector.load_weights(out_dir / RESIDUAL_DETECTOR_FILE)
    return detector


def bottleneck_files(name: str) -> tuple[str, str]:
    """(weights, whitening) file names of a saved bottleneck: "bottleneck" (the cells') or "frame"."""
    prefix = "" if name == "bottleneck" else f"{name}_"
    return f"{prefix}bottleneck.weights.h5", f"{prefix}whitening.npz"


def gate_files(config: dict) -> list[str]:
    """Every file a trained gate (``autoencoder_config.json``) saved beside its config."""
    names = ["bottleneck"] + (["frame"] if config.get("frame") else [])
    return ([file for name in names for file in bottleneck_files(name)] + ([PRUNING_FILE] if config.get("backbone") else [])
            + ([RESIDUAL_DETECTOR_FILE] if config.get("residual_detector") else []))


def _save_bottleneck(out_dir: Path, name: str, model: keras.Model, mean: np.ndarray, projection: np.ndarray) -> None:
    weights, whitening = bottleneck_files(name)
    model.save_weights(out_dir / weights)
    np.savez(out_dir / whitening, mean=mean, projection=projection)


def load_bottleneck(out_dir: Path, name: str, hidden: list[int]) -> tuple[np.ndarray, np.ndarray, keras.Model]:
    """(mean, projection, bottleneck) as ``_save_bottleneck`` saved them."""
    weights, whitening_file = bottleneck_files(name)
    whitening = np.load(out_dir / whitening_file)
    model = ae.bottleneck(whitening["projection"].shape[0], tuple(hidden), name)
    model.load_weights(out_dir / weights)
    return whitening["mean"], whitening["projection"], model
