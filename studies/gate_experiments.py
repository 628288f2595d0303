"""``python -m studies.gate_experiments [--profile P] [VARIANT ...]``: gate variants compared.

Every variant is scored with the runtime's own scoring code (edge_runtime.anomaly; the
profile's score normalisation, named in the row when it is not "none", with its level cap and
power; rows measured before the level power, 2026-11-26, had power 1 and no cap) and
the export's calibration protocol (export.calibrate): thresholds at 1% / 5% false alarms
on the validation split's normals (NEU-DET: box-free windows), metrics on the test split.
Writes results/gate_experiments.json (neu-steel) or results/<profile>/gate_experiments.json
and a Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np

from edge_runtime.anomaly import AnomalyScorer
from edge_runtime.datasets import split_samples
from edge_runtime.preprocess import PreprocessSpec, model_input
from export import calibrate
from export.onnx_export import convert
from export.quantize import time_model
from training import autoencoder as ae
from training.data import box_free_crops, read_frames, stack_equal_shapes
from training.keras_session import KerasSession
from training.profiles import PROFILES
from training.train_autoencoder import (fit_bottleneck, fitted_backbone, frame_cell_mask, lends_normal_texture,
                                        normal_cell_mask, normal_vectors, subsample)

ROOT = Path(__file__).resolve().parents[1]


def pixel_baseline(profile, frames, samples) -> tuple[keras.Model, int, int, float]:
    """The issue's trial: 3 strided convs + 3 transposed convs, MSE, 8 epochs on 64x64 box-free crops."""
    crops = np.stack(box_free_crops(frames, samples, (64,), 4, profile.box_margin, profile.seed))[..., None]
    model = ae.pixel_autoencoder()
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    model.fit(crops, crops, batch_size=64, epochs=8, verbose=2)
    image = keras.Input((None, None, 1))
    error = ae.SquaredError()([image, model(image)])
    return keras.Model(image, error), 1, 8, 4.0


def normal_features(profile, frames, samples, taps, extractor: keras.Model | None = None
                    ) -> tuple[keras.Model, np.ndarray]:
    """(the frozen feature extractor for ``taps`` unless one is given, its normal feature cells of the
    training frames, subsampled as the profile says): the start of every per-cell variant."""
    extractor = extractor or ae.feature_extractor(taps)
    uses_boxes = not any(s.is_normal for s in samples)
    vectors = subsample(normal_vectors(extractor, frames, samples, profile, uses_boxes)[0], profile.seed,
                        profile.gate_max_vectors)
    return extractor, vectors


def feature_variant(profile, frames, samples, taps, hidden, whiten: bool, epochs: int = 6):
    extractor, vectors = normal_features(profile, frames, samples, taps)
    mean, projection, model, _ = fit_bottleneck(vectors, whiten, hidden, epochs)
    return ae.anomaly_model(extractor, mean, projection, model), profile.feature_stride, ae.INPUT_MULTIPLE, 1.0


class MaskedMaps:
    """(maps, maps, cell weights) batches of whitened feature maps, one map shape per batch."""

    def __init__(self, maps: list[np.ndarray], masks: list[np.ndarray], batch_size: int, seed: int) -> None:
        self._maps, self._masks, self._rng = maps, masks, np.random.default_rng(seed)
        groups: dict[tuple, list[int]] = {}
        for i, fmap in enumerate(maps):
            groups.setdefault(fmap.shape, []).append(i)
        self._batches = [np.array(ids[i: i + batch_size]) for ids in groups.values()
                         for i in range(0, len(ids), batch_size)]

    def __len__(self) -> int:
        return len(self._batches)

    def __getitem__(self, index: int):
        rows = self._batches[index]
        maps = np.stack([self._maps[i] for i in rows])
        return maps, maps, np.stack([self._masks[i] for i in rows]).astype(np.float32)

    def on_epoch_end(self) -> None:
        self._rng.shuffle(self._batches)


def context_bottleneck(channels: int) -> keras.Model:
    """A cell rebuilt from its 3x3 neighbourhood through a stride-16 bottleneck (separable convs, so
    the gate's arithmetic grows by a few percent only)."""
    whitened = keras.Input((None, None, channels), name="whitened")
    x = keras.layers.SeparableConv2D(96, 3, padding="same", activation="relu")(whitened)
    x = keras.layers.SeparableConv2D(48, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(24, 1, activation="relu")(x)
    x = keras.layers.UpSampling2D(2)(x)
    x = keras.layers.SeparableConv2D(96, 3, padding="same", activation="relu")(x)
    return keras.Model(whitened, keras.layers.Conv2D(channels, 1)(x), name="context_bottleneck")


def context_variant(profile, frames, samples, taps, epochs: int = 30):
    """Feature AE with spatial context, trained on whole whitened feature maps of the training frames
    (loss on box-free cells only) and, for a boxed data set, of stand-alone box-free crops (every
    cell), as the deployed gate's normals are chosen."""
    extractor = ae.feature_extractor(taps)
    crops = box_free_crops(frames, samples, profile.crop_sizes, profile.crops_per_image, profile.box_margin,
                           profile.seed) if any(s.boxes for s in samples) else []
    inputs = [(*model_input(frame, profile.preprocess, ae.INPUT_MULTIPLE, profile.pad_margin), sample)
              for frame, sample in [*zip(frames, samples), *((c, None) for c in crops)]]
    maps, masks = [], []
    for start in range(0, len(inputs), 32):
        chunk = inputs[start: start + 32]
        for batch in stack_equal_shapes([padded[None, :, :, None] for padded, _, _ in chunk]):
            maps.extend(extractor.predict(batch, verbose=0))
        for (_, geometry, sample), fmap in zip(chunk, maps[start:]):
            masks.append(np.ones(fmap.shape[:2], bool) if sample is None else normal_cell_mask(
                sample, fmap.shape[:2], geometry, profile.box_margin, profile.feature_stride))
    vectors = subsample(np.concatenate([m[k] for m, k in zip(maps, masks)]), profile.seed, profile.gate_max_vectors)
    mean, projection = ae.whitening(vectors, full=profile.whiten)
    maps = [ae.normalise(m, mean, projection).astype(np.float32) for m in maps]
    model = context_bottleneck(projection.shape[0])
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    batches = MaskedMaps(maps, masks, 32, profile.seed)
    for epoch in range(epochs):  # batch by batch: Keras' fit fixes the map shape of its first batch
        losses = [model.train_on_batch(*batches[i]) for i in range(len(batches))]
        batches.on_epoch_end()
        print(f"context bottleneck epoch {epoch + 1}/{epochs}: loss {np.mean(losses):.4f}", flush=True)
    return ae.anomaly_model(extractor, mean, projection, model), profile.feature_stride, ae.INPUT_MULTIPLE, 1.0


def ensemble_variant(profile, frames, samples, taps, hidden, members: int, epochs: int, combine: str):
    """``members`` bottlenecks fitted on the same whitened normal vectors from different seeds. The map is
    the mean of their squared errors (``combine="errors"``: their disagreement counts as anomaly too) or
    the squared error of their mean reconstruction (``"reconstructions"``)."""
    extractor, vectors = normal_features(profile, frames, samples, taps)
    bottlenecks = []
    for k in range(members):
        keras.utils.set_random_seed(profile.seed + k)
        mean, projection, model, _ = fit_bottleneck(vectors, profile.whiten, hidden, epochs, name=f"member{k}")
        bottlenecks.append(model)
    image = keras.Input((None, None, 1), name="image")
    whitened = ae._whitened(extractor(image), mean, projection, "whiten")
    rebuilt = [model(whitened) for model in bottlenecks]
    if combine == "errors":
        error = keras.layers.Average(name="error_map")([ae.SquaredError()([whitened, r]) for r in rebuilt])
    else:
        error = ae.SquaredError(name="error_map")([whitened, keras.layers.Average()(rebuilt)])
    return keras.Model(image, error), profile.feature_stride, ae.INPUT_MULTIPLE, 1.0


def trimmed_variant(profile, frames, samples, taps, hidden, epochs: int, trim: float):
    """The normal cells are a noisy proxy (boxes are loose and miss defects). Fit once, drop the ``trim``
    share of normal cells the fit rebuilds worst (likely unboxed defect texture), fit again on the rest."""
    extractor, vectors = normal_features(profile, frames, samples, taps)
    mean, projection, model, _ = fit_bottleneck(vectors, profile.whiten, hidden, epochs)
    whitened = ae.normalise(vectors, mean, projection)[:, None, None, :]
    errors = np.mean(np.square(whitened - model.predict(whitened, batch_size=4096, verbose=0)), axis=(1, 2, 3))
    kept = vectors[errors <= np.quantile(errors, 1.0 - trim)]
    print(f"trimmed {len(vectors) - len(kept)} of {len(vectors)} normal cells", flush=True)
    keras.utils.set_random_seed(profile.seed)
    mean, projection, model, _ = fit_bottleneck(kept, profile.whiten, hidden, epochs)
    return ae.anomaly_model(extractor, mean, projection, model), profile.feature_stride, ae.INPUT_MULTIPLE, 1.0


class NearestMemoryError:
    """Each whitened cell rebuilt as the mean of its ``k`` nearest normal cells in a fixed memory bank;
    the mean squared error over channels, as ``ae.SquaredError`` (a memory-bank reconstruction: the
    nearest-neighbour scoring of PatchCore-style feature methods written as a reconstruction)."""

    def __init__(self, memory: np.ndarray, k: int = 1, chunk: int = 2048) -> None:
        self._memory, self._k, self._chunk = memory.astype(np.float32), k, chunk
        self._sq_norms = np.sum(np.square(self._memory), axis=1)

    def _errors(self, cells: np.ndarray) -> np.ndarray:
        distances = self._sq_norms - 2.0 * cells @ self._memory.T
        nearest = np.argpartition(distances, self._k - 1, axis=1)[:, : self._k]
        rebuilt = self._memory[nearest].mean(axis=1)
        return np.mean(np.square(cells - rebuilt), axis=1)

    def __call__(self, whitened: np.ndarray) -> np.ndarray:
        cells = whitened.reshape(-1, whitened.shape[-1])
        errors = [self._errors(cells[i: i + self._chunk]) for i in range(0, len(cells), self._chunk)]
        return np.concatenate(errors).reshape(*whitened.shape[:3], 1)


def greedy_coreset(vectors: np.ndarray, size: int, seed: int) -> np.ndarray:
    """PatchCore's greedy k-centre selection: each new member the vector farthest from those chosen."""
    sq_norms = np.sum(np.square(vectors), axis=1)
    chosen = [int(np.random.default_rng(seed).integers(len(vectors)))]
    nearest = sq_norms - 2.0 * vectors @ vectors[chosen[0]] + sq_norms[chosen[0]]
    for _ in range(size - 1):
        chosen.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, sq_norms - 2.0 * vectors @ vectors[chosen[-1]] + sq_norms[chosen[-1]])
    return vectors[chosen]


def memory_variant(profile, frames, samples, taps, size: int, k: int, coreset: bool, neighbourhood: int = 1):
    """Memory-bank reconstruction over the same whitened normal cells the bottleneck learns from: a
    ceiling for what the cell features can separate, at a cost (cells x memory x channels) the line's
    budget does not allow for a large memory. ``neighbourhood`` > 1 averages each cell's features over
    that many cells square first, as PatchCore aggregates local patches."""
    extractor = ae.feature_extractor(taps)
    if neighbourhood > 1:
        image = keras.Input((None, None, 1), name="image")
        pooled = keras.layers.AveragePooling2D(neighbourhood, strides=1, padding="same")(extractor(image))
        extractor = keras.Model(image, pooled)
    extractor, vectors = normal_features(profile, frames, samples, taps, extractor)
    mean, projection = ae.whitening(vectors, full=profile.whiten)
    whitened = ae.normalise(vectors, mean, projection).astype(np.float32)
    memory = greedy_coreset(whitened, size, profile.seed) if coreset else subsample(whitened, profile.seed, size)
    error = NearestMemoryError(memory, k)
    whiten = lambda image: ae.normalise(np.asarray(extractor(image, training=False)), mean, projection)
    return _CallableModel(lambda image: error(whiten(image).astype(np.float32))), profile.feature_stride, \
        ae.INPUT_MULTIPLE, 1.0


def pruned_variant(profile, frames, samples, taps, hidden, epochs: int = 60):
    """The recipe on a thinner backbone: MobileNetV2 blocks 1-12 with the profile's ``backbone_keep_ratio``
    of their expansion channels, projections refitted by least squares on training frames
    (``training.pruning``), as ``python -m training autoencoder`` does. Prints the 1-thread onnxruntime
    time of its gate graph against the same bottleneck on the full backbone."""
    base = fitted_backbone(profile, frames).model
    extractor, vectors = normal_features(profile, frames, samples, taps, ae.feature_extractor(taps, base=base))
    mean, projection, model, _ = fit_bottleneck(vectors, profile.whiten, hidden, epochs)
    gate = ae.anomaly_model(extractor, mean, projection, model)
    full_gate = ae.anomaly_model(ae.feature_extractor(taps), mean, projection, model)
    inputs = [model_input(frame, profile.preprocess, ae.INPUT_MULTIPLE, profile.pad_margin)[0][None, ..., None]
              for frame in frames[:4]]
    with tempfile.TemporaryDirectory() as tmp:
        timings = {}
        for name, graph in (("pruned", gate), ("full", full_gate)):
            convert(graph, (None, None, None, 1), ["error_map"], Path(tmp) / f"{name}.onnx")
            timings[name] = time_model(Path(tmp) / f"{name}.onnx", inputs, 100)
    print(f"gate graph, 1 thread, median ms: {json.dumps(timings)}", flush=True)
    return gate, profile.feature_stride, ae.INPUT_MULTIPLE, 1.0


def labelled_cells(extractor, frames, samples, profile) -> tuple[np.ndarray, np.ndarray]:
    """(box-free cells, as the bottleneck's normals are chosen; cells centred inside a box) of the
    training frames."""
    normal, boxed = [], []
    inputs = [(*model_input(frame, profile.preprocess, ae.INPUT_MULTIPLE, profile.pad_margin), sample)
              for frame, sample in zip(frames, samples)]
    for start in range(0, len(inputs), 16):
        chunk = inputs[start: start + 16]
        maps = [m for batch in stack_equal_shapes([padded[None, :, :, None] for padded, _, _ in chunk])
                for m in extractor.predict(batch, verbose=0)]
        for fmap, (_, geometry, sample) in zip(maps, chunk):
            inside = frame_cell_mask(fmap.shape[:2], geometry, profile.feature_stride)
            normal.append(fmap[inside & normal_cell_mask(sample, fmap.shape[:2], geometry, profile.box_margin,
                                                         profile.feature_stride)])
            boxed.append(fmap[inside & ~normal_cell_mask(sample, fmap.shape[:2], geometry, 0,
                                                         profile.feature_stride)])
    return np.concatenate(normal), np.concatenate(boxed)


def supervised_ceiling_variant(profile, frames, samples, taps, hidden: tuple[int, ...], per_class: int = 60_000):
    """Not a gate: a measurement of what the gate's features and NEU's labels allow. A cell classifier
    (an MLP, or logistic regression for ``hidden=()``) learns box cells against box-free cells of the
    training frames, so it sees the defects the product's gate must never see; the map is its
    probability that a cell is a defect, scored and calibrated exactly as a gate's map."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    extractor = ae.feature_extractor(taps)
    normal, boxed = labelled_cells(extractor, frames, samples, profile)
    print(f"{len(normal)} box-free and {len(boxed)} box cells", flush=True)
    normal, boxed = subsample(normal, profile.seed, per_class), subsample(boxed, profile.seed, per_class)
    mean, projection = ae.whitening(normal, full=profile.whiten)
    cells = ae.normalise(np.concatenate([normal, boxed]), mean, projection)
    labels = np.r_[np.zeros(len(normal)), np.ones(len(boxed))]
    classifier = (MLPClassifier(hidden, early_stopping=True, random_state=profile.seed, max_iter=100) if hidden
                  else LogisticRegression(max_iter=1000))
    classifier.fit(cells, labels)

    def defect_probability(image) -> np.ndarray:
        fmap = np.asarray(extractor(image, training=False))
        cells = ae.normalise(fmap.reshape(-1, fmap.shape[-1]), mean, projection)
        return classifier.predict_proba(cells)[:, 1].reshape(*fmap.shape[:3], 1).astype(np.float32)

    return _CallableModel(defect_probability), profile.feature_stride, ae.INPUT_MULTIPLE, 1.0


def synthetic_discriminator_variant(profile, frames, samples, taps, hidden: tuple[int, ...], strength: float,
                                    copies: int = 4, per_class: int = 60_000):
    """A learned norm of the deployed bottleneck's residual (DRAEM's discriminative half, per cell): a
    cell MLP learns the residual (whitened cell minus its reconstruction) of cells with a synthetic
    defect painted on box-free texture (``training.synthetic_defects``) against that of box-free cells.
    Only defect-free texture and paint are seen, no real defect; the map is the MLP's probability
    that a cell's residual is a painted one."""
    from sklearn.neural_network import MLPClassifier

    from training.train_autoencoder import load_bottleneck, synthetic_pairs
    from training.train_residual_detector import residuals

    weights = ROOT / "models" / profile.name / "keras"
    extractor = ae.feature_extractor(taps)
    mean, projection, bottleneck = load_bottleneck(weights, "bottleneck", json.loads(
        (weights / "autoencoder_config.json").read_text())["hidden"])

    def residual(cells: np.ndarray) -> np.ndarray:
        return residuals(cells, mean, projection, bottleneck)

    uses_boxes = not any(s.is_normal for s in samples)
    normal = subsample(normal_vectors(extractor, frames, samples, profile, uses_boxes)[0], profile.seed, per_class)
    painted_profile = replace(profile, gate_synthetic_strength=strength, gate_synthetic_defects=copies)
    painted = subsample(synthetic_pairs(extractor, frames, samples, painted_profile, uses_boxes)[0], profile.seed,
                        per_class)
    print(f"{len(normal)} box-free and {len(painted)} painted cells", flush=True)
    classifier = MLPClassifier(hidden, early_stopping=True, random_state=profile.seed, max_iter=100)
    classifier.fit(np.concatenate([residual(normal), residual(painted)]), np.r_[np.zeros(len(normal)),
                                                                                np.ones(len(painted))])

    def painted_probability(image) -> np.ndarray:
        fmap = np.asarray(extractor(image, training=False))
        cells = residual(fmap.reshape(-1, fmap.shape[-1]))
        return classifier.predict_proba(cells)[:, 1].reshape(*fmap.shape[:3], 1).astype(np.float32)

    return _CallableModel(painted_probability), profile.feature_stride, ae.INPUT_MULTIPLE, 1.0


class _CallableModel:
    """The slice of the Keras model interface that ``KerasSession`` uses, over a plain function."""
    output_names = ["error_map"]

    def __init__(self, function) -> None:
        self._function = function

    def __call__(self, image, training=False):
        return self._function(image)


def _features(taps, hidden, whiten=True, epochs=6):
    return lambda p, f, s: feature_variant(p, f, s, taps, hidden, whiten, epochs)


LOCALISED = ("inclusion", "patches", "scratches")
# name -> (profile overrides, builder(profile, training frames, their samples))
VARIANTS = {
    "pixel AE (baseline, 64x64 crops)": ({}, pixel_baseline),
    "feature AE, block6+13, standardised": ({}, _features(ae.DEFAULT_TAPS, (256, 64, 256), False)),
    "feature AE, block6+13, whitened": ({}, _features(ae.DEFAULT_TAPS, (256, 64, 256))),
    "feature AE, block3+6+13, standardised": (
        {}, _features((("block_3_expand_relu", "pool2"),) + ae.DEFAULT_TAPS, (256, 64, 256), False)),
    "feature AE, block6+13+16, whitened": (
        {}, _features(ae.DEFAULT_TAPS + (("block_16_expand_relu", "up4"),), (256, 64, 256))),
    "feature AE, block3+6+13, whitened": (
        {}, _features((("block_3_expand_relu", "pool2"),) + ae.DEFAULT_TAPS, (256, 64, 256))),
    "feature AE, block6+13, whitened, bottleneck 16": ({}, _features(ae.DEFAULT_TAPS, (128, 16, 128))),
    "feature AE, block6+13, whitened, box margin 32": ({"box_margin": 32}, _features(ae.DEFAULT_TAPS, (256, 64, 256))),
    "feature AE, block6, whitened": ({}, _features((("block_6_expand_relu", "same"),), (128, 32, 128))),
    "feature AE, block3+6, whitened": (
        {}, _features((("block_3_expand_relu", "pool2"), ("block_6_expand_relu", "same")), (192, 48, 192))),
    "feature AE, block6+10, whitened": (
        {}, _features((("block_6_expand_relu", "same"), ("block_10_expand_relu", "up2")), (256, 64, 256))),
    "feature AE, block6+13, whitened, normals from localised-defect images": (
        {"normal_texture_labels": LOCALISED}, _features(ae.DEFAULT_TAPS, (256, 64, 256))),
    "feature AE, block6+13, whitened, normals from localised-defect and rolled-in scale images": (
        {"normal_texture_labels": LOCALISED + ("rolled-in_scale",)}, _features(ae.DEFAULT_TAPS, (256, 64, 256))),
    "feature AE, block5add+12add, whitened": (
        {}, _features(ae.TAPS["block5+12"], (96, 24, 96))),
    "feature AE, block5add+12add, whitened, normals from localised-defect images": (
        {"normal_texture_labels": LOCALISED}, _features(ae.TAPS["block5+12"], (96, 24, 96))),
    "feature AE, block5add+12add, whitened, box margin 32": (
        {"box_margin": 32}, _features(ae.TAPS["block5+12"], (96, 24, 96))),
    "feature AE, block6+12add, whitened": (
        {}, _features((("block_6_expand_relu", "same"), ("block_12_add", "up2")), (192, 48, 192))),
    "feature AE, block5add+12add, whitened, frames at 144x144 (0.72x)": (
        {"preprocess": PreprocessSpec(anomaly_size=(144, 144))}, _features(ae.TAPS["block5+12"], (96, 24, 96))),
    "feature AE, block6+13, whitened, frames at their own size": (
        {"preprocess": PreprocessSpec()}, _features(ae.DEFAULT_TAPS, (256, 64, 256))),
    "context feature AE, block5add+12add, whitened, 3x3 separable convs, stride-16 bottleneck 24, 30 epochs": (
        {}, lambda p, f, s: context_variant(p, f, s, ae.TAPS["block5+12"])),
    "context feature AE, block6+13, whitened, 3x3 separable convs, stride-16 bottleneck 24, 30 epochs": (
        {}, lambda p, f, s: context_variant(p, f, s, ae.DEFAULT_TAPS)),
    "feature AE, block5add, whitened, 60 epochs": (
        {}, _features((("block_5_add", "same"),), (48, 12, 48), epochs=60)),
    "feature AE, block6expand, whitened, 60 epochs": (
        {}, _features((("block_6_expand_relu", "same"),), (128, 32, 128), epochs=60)),
    "feature AE, block5add+12add, whitened, 60 epochs": (
        {}, _features(ae.TAPS["block5+12"], (96, 24, 96), epochs=60)),
    "feature AE, block5add+12add, whitened, 60 epochs, ensemble of 3, mean error": (
        {}, lambda p, f, s: ensemble_variant(p, f, s, ae.TAPS["block5+12"], (96, 24, 96), 3, 60, "errors")),
    "feature AE, block5add+12add, whitened, 60 epochs, ensemble of 3, mean reconstruction": (
        {}, lambda p, f, s: ensemble_variant(p, f, s, ae.TAPS["block5+12"], (96, 24, 96), 3, 60, "reconstructions")),
    "feature AE, block5add+12add, whitened, 60 epochs, worst-rebuilt 10% of normal cells trimmed and refitted": (
        {}, lambda p, f, s: trimmed_variant(p, f, s, ae.TAPS["block5+12"], (96, 24, 96), 60, 0.10)),
    "memory-bank reconstruction, block5add+12add, whitened, random 20000 normal cells, k 1": (
        {}, lambda p, f, s: memory_variant(p, f, s, ae.TAPS["block5+12"], 20_000, 1, coreset=False)),
    "memory-bank reconstruction, block5add+12add, whitened, all 150000 normal cells, k 1": (
        {}, lambda p, f, s: memory_variant(p, f, s, ae.TAPS["block5+12"], 150_000, 1, coreset=False)),
    "memory-bank reconstruction, block5add+12add, whitened, coreset 10000, k 1": (
        {}, lambda p, f, s: memory_variant(p, f, s, ae.TAPS["block5+12"], 10_000, 1, coreset=True)),
    "memory-bank reconstruction, block5add+12add, 3x3 neighbourhood mean, whitened, coreset 10000, k 1": (
        {}, lambda p, f, s: memory_variant(p, f, s, ae.TAPS["block5+12"], 10_000, 1, coreset=True, neighbourhood=3)),
    "feature AE, block5add+12add, whitened, 60 epochs, backbone expansions pruned to 50%": (
        {"backbone_keep_ratio": 0.5}, lambda p, f, s: pruned_variant(p, f, s, ae.TAPS["block5+12"], (96, 24, 96))),
    "feature AE, block5add+12add, whitened, 60 epochs, backbone expansions pruned to 50%, chosen by least squares": (
        {"backbone_keep_ratio": 0.5, "backbone_selection": "least_squares"},
        lambda p, f, s: pruned_variant(p, f, s, ae.TAPS["block5+12"], (96, 24, 96))),
    "feature AE, block5add+12add, whitened, 60 epochs, backbone expansions pruned to 75%": (
        {"backbone_keep_ratio": 0.75}, lambda p, f, s: pruned_variant(p, f, s, ae.TAPS["block5+12"], (96, 24, 96))),
    "supervised ceiling (sees the boxed defects; not a gate), block5add+12add, whitened, cell MLP 64": (
        {"score_normalise": "none"}, lambda p, f, s: supervised_ceiling_variant(p, f, s, ae.TAPS["block5+12"], (64,))),
    "supervised ceiling (sees the boxed defects; not a gate), block5add+12add, whitened, cell logistic regression": (
        {"score_normalise": "none"}, lambda p, f, s: supervised_ceiling_variant(p, f, s, ae.TAPS["block5+12"], ())),
    "residual discriminator on synthetic defects, deployed bottleneck, cell MLP 64, strength 0.4": (
        {"score_normalise": "none"},
        lambda p, f, s: synthetic_discriminator_variant(p, f, s, ae.TAPS["block5+12"], (64,), 0.4)),
    "residual discriminator on synthetic defects, deployed bottleneck, cell MLP 64, strength 1": (
        {"score_normalise": "none"},
        lambda p, f, s: synthetic_discriminator_variant(p, f, s, ae.TAPS["block5+12"], (64,), 1.0)),
    "feature AE, stride 16, block6+12add, whitened": (
        {"feature_stride": 16}, _features((("block_6_expand_relu", "pool2"), ("block_12_add", "same")), (192, 48, 192))),
}


def results_path(profile_name: str) -> Path:
    if profile_name == "neu-steel":
        return ROOT / "results" / "gate_experiments.json"
    return ROOT / "results" / profile_name / "gate_experiments.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studies.gate_experiments", description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", metavar="VARIANT", help="default: all; names as in VARIANTS")
    parser.add_argument("--profile", default="neu-steel", choices=sorted(PROFILES))
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    splits = split_samples(profile.load(), profile.seed, profile.split_fractions)
    has_normals = any(s.is_normal for s in splits["train"])
    frames, samples = read_frames([s for s in splits["train"] if s.is_normal or not has_normals], profile.preprocess)
    out = results_path(profile.name)
    rows = json.loads(out.read_text()) if out.is_file() else {}
    for name in args.variants or VARIANTS:
        keras.utils.set_random_seed(profile.seed)
        overrides, build = VARIANTS[name]
        variant = replace(profile, **overrides)
        lends = [i for i, s in enumerate(samples) if s.is_normal or lends_normal_texture(s, variant)]
        model, stride, multiple, sigma = build(variant, [frames[i] for i in lends], [samples[i] for i in lends])
        for smoothing in (sigma, 2 * sigma):
            scorer = AnomalyScorer(KerasSession(model), variant.preprocess, stride, multiple, smoothing,
                                   variant.ignore_border, variant.pad_margin, variant.score_normalise,
                                   variant.score_cell_centre, level_cap=variant.score_level_cap,
                                   level_power=variant.score_level_power, views=variant.score_views)
            val = calibrate.gate_scores(scorer, splits["val"], variant.preprocess)
            limits = calibrate.thresholds(calibrate.calibration_scores(val, variant.calibration_normals),
                                          variant.false_alarm_rate, variant.warn_false_alarm_rate)
            score = "" if variant.score_normalise == "none" else f", {variant.score_normalise} score"
            score += "" if variant.score_cell_centre == "middle" else f", {variant.score_cell_centre} cell centre"
            score += "" if variant.calibration_normals == "in_context" else f", calibrated on {variant.calibration_normals}"
            row = f"{name}, sigma {smoothing:g} cells{score}"
            rows[row] = calibrate.gate_metrics(
                calibrate.gate_scores(scorer, splits["test"], variant.preprocess), limits,
                variant.calibration_normals)
            val_metrics = calibrate.gate_metrics(val, limits, variant.calibration_normals)
            rows[row].update(val_gate_recall_warn=val_metrics["gate_recall_warn"],
                             val_image_auroc=val_metrics["image_auroc"])
            print(row, json.dumps(rows[row]), flush=True)
            out.write_text(json.dumps(rows, indent=1))  # after every row: a long sweep can be stopped
    print("| variant | region AUROC | window FAR @warn | crop FAR @warn | recall @warn | window FAR @defect "
          "| recall @defect |")
    print("|---|---|---|---|---|---|---|")
    for name, m in rows.items():
        window = {level: m.get(f"window_false_alarm_rate_{level}", m[f"false_alarm_rate_{level}"])  # older rows:
                  for level in ("warn", "defect")}  # in context only, no window_* keys
        print(f"| {name} | {m.get('region_auroc', float('nan')):.3f} | {window['warn']:.3f} | "
              f"{m.get('crop_false_alarm_rate_warn', float('nan')):.3f} | {m['gate_recall_warn']:.3f} | "
              f"{window['defect']:.3f} | {m['gate_recall_defect']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
