"""Train the MobileNetV2 defect classifier of a profile (Keras transfer learning).

Reads top to bottom: load + split -> cache the frozen stem over 8 dihedral variants ->
train the head -> fine-tune blocks 13-16 (each stage keeps its best-validation weights) -> evaluate on the test split -> save weights,
history, confusion matrix.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import keras
import numpy as np
from tqdm import tqdm

from edge_runtime.datasets import class_names, split_samples
from edge_runtime.evaluation_plots import plot_confusion
from edge_runtime.preprocess import classifier_input
from training import classifier as clf
from training.data import dihedral, read_frames
from training.profiles import Profile
from training.reports import plot_history

log = logging.getLogger(__name__)


def _inputs(frames, spec, variants=(0,)):
    return np.concatenate([classifier_input(dihedral(f, k), spec) for f in frames for k in variants])


def _stem_features(stem, frames, spec, variants, desc):
    batches = []
    for start in tqdm(range(0, len(frames), 32), desc=desc, unit="batch"):
        batch = _inputs(frames[start: start + 32], spec, variants)
        batches.append(stem.predict(batch, verbose=0, batch_size=64))
    return np.concatenate(batches)


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

    base, full = clf.build_classifier(len(names), spec.classifier_size)
    stem = clf.stem_model(base)
    variants = tuple(range(8))
    x_train = _stem_features(stem, data["train"][0], spec, variants, "stem cache (train x8)")
    y_train = np.repeat(data["train"][1], len(variants))
    x_val = _stem_features(stem, data["val"][0], spec, (0,), "stem cache (val)")
    y_val = data["val"][1]

    top = clf.top_model(base, full)
    weights = clf.class_weights(y_train, len(names))
    history = {}
    for stage, (epochs, lr, tune) in {"head": (head_epochs, 1e-3, False), "fine_tune": (tune_epochs, 1e-4, True)}.items():
        clf.set_top_trainable(base, tune)
        top.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
        best = keras.callbacks.EarlyStopping("val_loss", patience=epochs, restore_best_weights=True)
        fit = top.fit(
            x_train, y_train, validation_data=(x_val, y_val), epochs=epochs, batch_size=64,
            class_weight=weights, verbose=2, shuffle=True, callbacks=[best],
        )
        history[stage] = {k: [float(v) for v in vals] for k, vals in fit.history.items()}

    test_frames, y_test, test_samples = data["test"]
    probabilities = full.predict(_inputs(test_frames, spec), verbose=0, batch_size=32)[0]
    predicted = probabilities.argmax(1)
    confusion = np.zeros((len(names), len(names)), int)
    np.add.at(confusion, (y_test, predicted), 1)
    metrics = {
        "test_accuracy": float((predicted == y_test).mean()),
        "test_n": int(len(y_test)),
        "confusion_matrix": confusion.tolist(),
        "misclassified": [
            {"file": s.path.name, "true": names[t], "predicted": names[p]}
            for s, t, p in zip(test_samples, y_test, predicted) if t != p
        ],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    full.save_weights(out_dir / "classifier.weights.h5")
    (out_dir / "classifier_history.json").write_text(json.dumps(history, indent=1))
    result = {"class_names": names, "metrics": metrics, "splits": {k: [s.path.name for s in v[2]] for k, v in data.items()}}
    (out_dir / "classifier_result.json").write_text(json.dumps(result, indent=1))
    plot_history(history, out_dir / "classifier_history.png", f"{profile.name} classifier")
    plot_confusion(confusion, names, out_dir / "classifier_confusion.png", f"{profile.name} test split")
    log.info("%s classifier test accuracy %.4f on %d images", profile.name, metrics["test_accuracy"], len(y_test))
    return result
