"""Train the MobileNetV2 defect classifier of a profile (Keras transfer learning).

Reads top to bottom: load + split -> frames prepared exactly as the gate prepares them, with
``classifier_camera_copies`` copies of each seen through another camera (``training.camera_changes``) ->
cache the frozen stem over 8 dihedral variants -> train the head -> fine-tune blocks
13-16 (each stage keeps its best-validation weights) -> evaluate on the test split ->
save weights, history, confusion matrix.

Where the profile sets ``region_side``, the runtime feeds the head a window of stem cells
around the anomaly peak (``classifier.window_around_peak``), which may lie anywhere in the
stem. With ``head_window_training`` the head is trained on windows of that size at random
offsets (a fresh one per epoch) and validated and tested on the centred window; by default
on whole stems, which measured better (``training.profiles``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np
from tqdm import tqdm

from edge_runtime.datasets import class_names, split_samples
from edge_runtime.evaluation_plots import plot_confusion
from edge_runtime.preprocess import model_input
from training import classifier as clf
from training.autoencoder import INPUT_MULTIPLE
from training.backbone import profile_backbone
from training.camera_changes import changed_copies
from training.data import dihedral, read_frames, stack_equal_shapes
from training.profiles import Profile
from training.reports import plot_history

if TYPE_CHECKING:
    import tensorflow as tf

log = logging.getLogger(__name__)


def gate_inputs(frames, profile: Profile, variants=(0,)) -> list[np.ndarray]:
    """1xHxWx1 model inputs: each frame (and its dihedral variants) padded as the runtime's gate pads it."""
    return [model_input(dihedral(frame, k), profile.preprocess, INPUT_MULTIPLE, profile.pad_margin)[0][None, :, :, None]
            for frame in frames for k in variants]


def _stem_features(stem, frames, profile: Profile, variants, desc) -> list[np.ndarray]:
    """One cached stem tensor (h x w x C) per frame and variant, in order."""
    out = []
    for start in tqdm(range(0, len(frames), 32), desc=desc, unit="batch"):
        for batch in stack_equal_shapes(gate_inputs(frames[start: start + 32], profile, variants)):
            out.extend(stem.predict(batch, verbose=0, batch_size=64))
    return out


def window_cells(stem, profile: Profile) -> tuple[int, int] | None:
    """Stem cells of a ``region_side`` square frame: the window the runtime's head sees (None: whole stem)."""
    if profile.region_side is None:
        return None
    square = np.zeros((profile.region_side, profile.region_side), np.float32)
    return tuple(stem.predict(gate_inputs([square], profile)[0], verbose=0).shape[1:3])


def stem_window(stem: np.ndarray, window: tuple[int, int] | None, rng: np.random.Generator | None) -> np.ndarray:
    """At most ``window`` cells of an h x w x C stem: at a random offset with ``rng``, else centred."""
    if window is None:
        return stem
    height, width = min(window[0], stem.shape[0]), min(window[1], stem.shape[1])
    spare_y, spare_x = stem.shape[0] - height, stem.shape[1] - width
    row, col = (rng.integers(0, spare_y + 1), rng.integers(0, spare_x + 1)) if rng else (spare_y // 2, spare_x // 2)
    return stem[row: row + height, col: col + width]


def with_camera_copies(split: tuple, copies: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """A split's frames and labels, then ``copies`` copies of them, each copy seen through one camera change
    drawn at random (``training.camera_changes``)."""
    frames, labels, kept = split
    camera = changed_copies(frames, kept, copies, seed)
    return list(frames) + camera.frames, np.concatenate([labels] * (1 + copies))


class ShapeBatches(keras.utils.PyDataset):
    """(stems, labels, sample weights) batches; stems of one shape per batch (frames may differ in size).

    With ``window``, each stem is cut to that many cells (``stem_window``): at a random offset
    when shuffling (training), centred otherwise."""

    def __init__(self, stems: list[np.ndarray], labels: np.ndarray, weights: dict[int, float] | None,
                 batch_size: int, shuffle: bool, seed: int, window: tuple[int, int] | None = None) -> None:
        super().__init__()
        self._stems, self._labels, self._window = stems, labels, window
        self._weights = np.array([weights[int(y)] if weights else 1.0 for y in labels], np.float32)
        self._size, self._shuffle, self._rng = batch_size, shuffle, np.random.default_rng(seed)
        self._batches = self._plan()

    def _plan(self) -> list[np.ndarray]:
        groups: dict[tuple, list[int]] = {}
        for i, stem in enumerate(self._stems):
            groups.setdefault(stem.shape, []).append(i)
        batches = []
        for indices in groups.values():
            indices = np.array(indices)
            if self._shuffle:
                self._rng.shuffle(indices)
            batches.extend(np.array_split(indices, max(1, -(-len(indices) // self._size))))
        if self._shuffle:
            self._rng.shuffle(batches)
        return batches

    @property
    def shapes(self) -> set[tuple[int, ...]]:
        """The shapes of the stems as batched (windowed)."""
        return {stem_window(stem, self._window, None).shape for stem in self._stems}

    def for_fit(self) -> "ShapeBatches | tf.data.Dataset":
        """What ``fit`` is given. Keras fixes every input dimension its first two batches agree on, so stems of
        several shapes (a plant's frames of several sizes, and their turned copies) would fail later in the
        epoch; they go through a dataset whose declared signature leaves height and width open."""
        if len(self.shapes) == 1:
            return self
        import tensorflow as tf

        stems, labels, weights = self[0]
        signature = (tf.TensorSpec((None, None, None, stems.shape[-1]), tf.as_dtype(stems.dtype)),
                     tf.TensorSpec((None,), tf.as_dtype(labels.dtype)), tf.TensorSpec((None,), tf.float32))

        def epoch():
            for index in range(len(self)):
                yield self[index]
            self.on_epoch_end()

        return tf.data.Dataset.from_generator(epoch, output_signature=signature)

    def __len__(self) -> int:
        return len(self._batches)

    def __getitem__(self, index: int):
        rows = self._batches[index]
        rng = self._rng if self._shuffle else None
        stems = np.stack([stem_window(self._stems[i], self._window, rng) for i in rows])
        return stems, self._labels[rows], self._weights[rows]

    def on_epoch_end(self) -> None:
        self._batches = self._plan()


def train_classifier(profile: Profile, out_dir: Path, head_epochs: int = 8, tune_epochs: int = 12) -> dict:
    keras.utils.set_random_seed(profile.seed)
    samples = profile.load()
    names = class_names(samples)
    splits = {k: [s for s in v if not s.is_normal] for k, v in split_samples(samples, profile.seed, profile.split_fractions).items()}
    spec = profile.preprocess
    data = {}
    for split, items in splits.items():
        frames, kept = read_frames(items, spec)
        data[split] = (frames, np.array([names.index(s.label) for s in kept]), kept)

    base, full = clf.build_classifier(len(names), base=profile_backbone(out_dir))  # the gate's, pruned or not
    stem = clf.stem_model(base)
    variants = tuple(range(8))
    copies = profile.classifier_camera_copies
    train_frames, y_train = with_camera_copies(data["train"], copies, profile.seed)
    x_train = _stem_features(stem, train_frames, profile, variants, f"stem cache (train x{len(variants)})")
    y_train = np.repeat(y_train, len(variants))
    # The best epoch is kept on the validation frames as captured and through other changes than training's.
    val_frames, y_val = with_camera_copies(data["val"], copies, profile.seed + 1)
    x_val = _stem_features(stem, val_frames, profile, (0,), "stem cache (val)")

    window = window_cells(stem, profile) if profile.head_window_training else None
    head = clf.head_model(base, full)
    top = keras.Model(head.input, head.outputs[0])
    weights = clf.class_weights(y_train, len(names))
    train_batches = ShapeBatches(x_train, y_train, weights, 64, True, profile.seed, window)
    val_batches = ShapeBatches(x_val, y_val, None, 64, False, profile.seed, window)
    history = {}
    stages = {"head": (head_epochs, 1e-3, False), "fine_tune": (tune_epochs, profile.classifier_tune_rate, True)}
    for stage, (epochs, lr, tune) in stages.items():
        clf.set_top_trainable(base, tune)
        top.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
        best = keras.callbacks.EarlyStopping("val_loss", patience=epochs, restore_best_weights=True)
        fit = top.fit(train_batches.for_fit(), validation_data=val_batches.for_fit(), epochs=epochs, verbose=2,
                      callbacks=[best])
        history[stage] = {k: [float(v) for v in vals] for k, vals in fit.history.items()}

    test_frames, y_test, test_samples = data["test"]
    x_test = _stem_features(stem, test_frames, profile, (0,), "stem cache (test)")
    predicted = np.array([int(np.argmax(top.predict(stem_window(x, window, None)[None], verbose=0)[0]))
                          for x in x_test])
    confusion = np.zeros((len(names), len(names)), int)
    np.add.at(confusion, (y_test, predicted), 1)
    metrics = {
        "test_accuracy": float((predicted == y_test).mean()),
        "test_n": int(len(y_test)),
        "stem_window": None if window is None else list(window),
        "confusion_matrix": confusion.tolist(),
        "misclassified": [
            {"file": s.path.name, "true": names[t], "predicted": names[p]}
            for s, t, p in zip(test_samples, y_test, predicted) if t != p
        ],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    full.save_weights(out_dir / "classifier.weights.h5")
    (out_dir / "classifier_history.json").write_text(json.dumps(history, indent=1))
    result = {"class_names": names, "camera_copies": profile.classifier_camera_copies, "metrics": metrics,
              "splits": {k: [s.path.name for s in v[2]] for k, v in data.items()}}
    (out_dir / "classifier_result.json").write_text(json.dumps(result, indent=1))
    plot_history(history, out_dir / "classifier_history.png", f"{profile.name} classifier")
    plot_confusion(confusion, names, out_dir / "classifier_confusion.png", f"{profile.name} test split")
    log.info("%s classifier test accuracy %.4f on %d images", profile.name, metrics["test_accuracy"], len(y_test))
    return result
