"""Frozen ImageNet MobileNetV2 pieces shared by both models.

Keras looks for the ImageNet file in its cache and cannot download here, so
``ensure_imagenet_weights`` copies it from ``../shared/weights`` into the cache first.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import keras
from keras import layers

# The last frozen layer both models share: the gate's graph outputs it, the classifier head starts from it.
STEM_OUTPUT = "block_12_add"
# Saved beside the gate's weights when the profile prunes the backbone (training.pruning).
PRUNING_FILE = "backbone_pruning.npz"
WEIGHTS_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
SHARED_WEIGHTS = Path(__file__).resolve().parents[1].parent / "shared" / "weights" / WEIGHTS_FILE


def ensure_imagenet_weights() -> Path:
    """Copy the ImageNet MobileNetV2 file into the (writable) Keras cache if it is not there."""
    cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
    target = cache / WEIGHTS_FILE
    if not target.is_file():
        if not SHARED_WEIGHTS.is_file():
            raise FileNotFoundError(
                f"ImageNet MobileNetV2 weights not found in {cache} nor at {SHARED_WEIGHTS}; "
                "put the shared/ folder beside the checkout"
            )
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHARED_WEIGHTS, target)
    return target


def gray_to_imagenet(x):
    """Gray [0, 1] NHWC1 -> 3-channel [-1, 1], MobileNetV2's own input scaling."""
    x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    return layers.Rescaling(2.0, offset=-1.0, name="to_minus1_1")(x)


def mobilenet_v2(input_shape: tuple) -> keras.Model:
    ensure_imagenet_weights()
    return keras.applications.MobileNetV2(input_shape=input_shape, include_top=False, weights="imagenet")


def profile_backbone(weights_dir: Path | None = None) -> keras.Model:
    """The MobileNetV2 a profile's models share: the ImageNet one, pruned (``training.pruning``) where the
    gate's training saved a ``PRUNING_FILE`` in ``weights_dir``."""
    base = mobilenet_v2((None, None, 3))
    if weights_dir is not None and (weights_dir / PRUNING_FILE).is_file():
        from training import pruning

        path = weights_dir / PRUNING_FILE
        base = pruning.pruned_backbone(base, pruning.load(path), pruning.load_tuned(path))
    return base
