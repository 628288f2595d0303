"""Train a gate's residual detector on synthetic defects painted on defect-free texture.

Reads top to bottom: the trained gate (backbone, whitening, bottleneck) -> normal feature cells of
the training frames, as the bottleneck learnt them -> the same frames with synthetic defects
painted on their normal texture (``training.synthetic_defects``), the cells under the paint ->
each cell's residual (whitened cell minus the bottleneck's reconstruction) -> a small per-cell
network learns painted residuals against normal ones -> saved beside the gate, recorded in its
``autoencoder_config.json``.

Why: the squared reconstruction error weighs every direction of the residual alike, so a faint
defect that moves a few feature directions the normal texture never moves scores like ordinary
texture noise spread over many. The detector learns which residuals a departure from the texture
leaves (the discriminative half of DRAEM: Zavrtanik, Kristan and Skocaj, ICCV 2021, here on the
feature residual). It sees no real defect: only defect-free texture and paint.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np

from edge_runtime.datasets import split_samples
from training import autoencoder as ae
from training.backbone import profile_backbone
from training.data import read_frames
from training.profiles import Profile
from training.camera_changes import changed_copies
from training.surface_marks import marked_copies
from training.synthetic_defects import check_kinds
from training.train_autoencoder import (RESIDUAL_DETECTOR_FILE, lends_normal_texture, load_bottleneck,
                                        normal_vectors, subsample, synthetic_pairs, turned)

log = logging.getLogger(__name__)


def residuals(cells: np.ndarray, mean: np.ndarray, projection: np.ndarray, bottleneck: keras.Model,
              reads: str = "residual") -> np.ndarray:
    """What the detector ``reads`` of each feature cell: "residual", the whitened cell minus the
    bottleneck's reconstruction of it; "residual+cell", the whitened cell after it; "cell", the whitened
    cell alone (a trial: a painted-texture classifier that ignores the bottleneck)."""
    whitened = ae.normalise(cells, mean, projection).astype(np.float32)[:, None, None, :]
    if reads == "cell":
        return whitened[:, 0, 0, :]
    residual = (whitened - bottleneck.predict(whitened, batch_size=4096, verbose=0))[:, 0, 0, :]
    return np.concatenate([residual, whitened[:, 0, 0, :]], axis=1) if reads == "residual+cell" else residual


def train_residual_detector(profile: Profile, out_dir: Path) -> dict:
    """Fit the detector of ``profile`` on the gate saved in ``out_dir``; returns its config entry."""
    if profile.residual_input not in ae.DETECTOR_INPUTS:
        raise ValueError(f"residual_input {profile.residual_input!r} is not one of {', '.join(ae.DETECTOR_INPUTS)}")
    if profile.residual_members < 1:
        raise ValueError(f"residual_members must be at least 1, not {profile.residual_members}")
    if profile.residual_surface_copies < 0:
        raise ValueError(f"residual_surface_copies must be 0 or more, not {profile.residual_surface_copies}")
    if profile.residual_camera_copies < 0:
        raise ValueError(f"residual_camera_copies must be 0 or more, not {profile.residual_camera_copies}")
    check_kinds(profile.residual_kinds, "residual_kinds")
    config_path = out_dir / "autoencoder_config.json"
    config = json.loads(config_path.read_text())
    keras.utils.set_random_seed(profile.residual_seed)
    extractor = ae.feature_extractor(tuple(tuple(t) for t in config["taps"]), base=profile_backbone(out_dir))
    mean, projection, bottleneck = load_bottleneck(out_dir, "bottleneck", config["hidden"])
    samples = profile.load()
    uses_boxes = not any(s.is_normal for s in samples)
    train = [s for s in split_samples(samples, profile.seed, profile.split_fractions)["train"]
             if (uses_boxes and lends_normal_texture(s, profile)) or s.is_normal]
    frames, kept = read_frames(train, profile.preprocess)
    if profile.residual_turns:
        extra_frames, extra_samples = turned(frames, kept)
        frames, kept = frames + extra_frames, kept + extra_samples
    marked = marked_copies(frames, kept, profile.residual_surface_copies, profile.residual_seed,
                           tuple(profile.residual_surface_amplitude))
    frames, kept = frames + marked.frames, kept + marked.samples
    camera = changed_copies(frames, kept, profile.residual_camera_copies, profile.residual_seed)

    limit = profile.residual_max_vectors
    normal = subsample(normal_vectors(extractor, frames + camera.frames, kept + camera.samples, profile, uses_boxes)[0],
                       profile.seed, limit)
    painting = replace(profile, gate_synthetic_defects=profile.residual_copies,
                       gate_synthetic_strength=profile.residual_strength, gate_seed=profile.residual_seed,
                       gate_synthetic_kinds=profile.residual_kinds)
    painted = [synthetic_pairs(extractor, frames, kept, painting, uses_boxes)[0]]
    if camera.sources:  # painted first, then seen through the copy's camera; other paint than the plain frames'
        painted.append(synthetic_pairs(extractor, camera.sources, camera.samples,
                                       replace(painting, gate_seed=painting.gate_seed + 1), uses_boxes,
                                       changes=camera.changes)[0])
    painted = subsample(np.concatenate(painted), profile.seed, limit)
    inputs = np.concatenate([residuals(normal, mean, projection, bottleneck, profile.residual_input),
                             residuals(painted, mean, projection, bottleneck, profile.residual_input)])
    labels = np.r_[np.zeros(len(normal)), np.ones(len(painted))].astype(np.float32)

    members = [_fit_member(inputs, labels, profile, profile.residual_seed + m) for m in range(profile.residual_members)]
    detector = _joined(members, inputs.shape[-1], profile.residual_hidden)
    detector.save_weights(out_dir / RESIDUAL_DETECTOR_FILE)
    entry = {"channels": int(inputs.shape[-1]), "hidden": list(profile.residual_hidden),
             "members": len(members), "input": profile.residual_input, "strength": profile.residual_strength,
             "copies": profile.residual_copies, "kinds": list(profile.residual_kinds), "turns": profile.residual_turns,
             "surface_copies": profile.residual_surface_copies,
             "surface_amplitude": list(profile.residual_surface_amplitude),
             "camera_copies": profile.residual_camera_copies,
             "seed": profile.residual_seed, "n_normal_cells": int(len(normal)), "n_painted_cells": int(len(painted)),
             "epochs_run": [len(history["loss"]) for _, history in members],
             "history": [history for _, history in members]}
    config["residual_detector"] = entry
    config_path.write_text(json.dumps(config, indent=1))
    log.info("%s residual detector: %d normal and %d painted cells, %d member(s), validation accuracy %s",
             profile.name, len(normal), len(painted), len(members),
             " ".join(f"{max(history['val_accuracy']):.3f}" for _, history in members))
    return entry


def _fit_member(inputs: np.ndarray, labels: np.ndarray, profile: Profile, seed: int) -> tuple[keras.Model, dict]:
    """One detector fitted from ``seed`` (initial weights, batch order); (model, its history)."""
    keras.utils.set_random_seed(seed)
    order = np.random.default_rng(seed).permutation(len(labels))  # validation_split takes the end
    detector = ae.residual_detector(inputs.shape[-1], profile.residual_hidden)
    detector.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", metrics=["accuracy"])
    fit = detector.fit(inputs[order][:, None, None, :], labels[order][:, None, None, None], batch_size=256,
                       epochs=profile.residual_epochs, validation_split=0.1, verbose=2, shuffle=True,
                       callbacks=[keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)])
    return detector, {k: [float(v) for v in vals] for k, vals in fit.history.items()}


def _joined(members: list[tuple[keras.Model, dict]], channels: int, hidden: tuple[int, ...]) -> keras.Model:
    """The fitted members as one detector averaging their probabilities (``ae.residual_detector``)."""
    if len(members) == 1:
        return members[0][0]
    joined = ae.residual_detector(channels, hidden, len(members))
    for m, (member, _) in enumerate(members):
        for layer in member.layers[1:]:
            joined.get_layer(f"m{m}_{layer.name}").set_weights(layer.get_weights())
    return joined
