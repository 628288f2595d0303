"""Frozen ImageNet MobileNetV2 pieces shared by both models.

Keras looks for the ImageNet file in its cache and cannot download here, so
``ensure_imagenet_weights`` copies it from ``../shared/weights`` into the cache first.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

import keras
import numpy as np
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


class GrayCentred(layers.Layer):
    """Gray [0, 1] NHWC1 -> [-0.5, 0.5], the input of ``gray_backbone``. The half is a 1x1x1x1 tensor, not
    a scalar: onnxruntime 1.32 subtracts a scalar from an N x H x W x 1 tensor element by element, many times
    slower (docs/results.md, "The same gate in less time")."""

    def call(self, x):
        return x - np.full((1, 1, 1, 1), 0.5, np.float32)


def gray_centred(x):
    return GrayCentred(name="gray_centred")(x)


def gray_backbone(base: keras.Model) -> keras.Model:
    """``base`` (3-channel, [-1, 1] input) as a model of the one-channel ``gray_centred`` frame, computing the
    same: its first convolution's kernel summed over the three identical channels and doubled (the [-1, 1]
    scaling is 2 (x - 0.5)). Its zero padding stays exact, since 2 (x - 0.5) is zero where x - 0.5 is. The
    exported gate then neither copies the frame three times nor convolves three channels (with
    ``training.autoencoder.pointwise``, the gate graph takes 7% less time: docs/results.md, "Runtime speed")."""
    first = base.layers[1]
    if not isinstance(first, layers.Conv2D) or first.get_weights()[0].shape[2] != 3:
        raise ValueError(f"{base.name}'s first layer is {first.name}, not a 3-channel convolution")

    def weights(source: layers.Layer, _) -> list[np.ndarray]:
        values = source.get_weights()
        if source.name == first.name:
            return [2.0 * values[0].sum(axis=2, keepdims=True), *values[1:]]
        return values

    return rebuilt(base, fresh_copy, weights, input_tensors=keras.Input((None, None, 1), name="gray"))


def fresh_copy(layer: layers.Layer) -> layers.Layer:
    """A new layer of ``layer``'s class and configuration: ``rebuilt``'s ``clone_layer`` for a layer kept as it is."""
    return layer.__class__.from_config(layer.get_config())


def rebuilt(model: keras.Model, clone_layer: Callable[[layers.Layer], layers.Layer],
            weights: Callable[[layers.Layer, layers.Layer], list[np.ndarray]],
            input_tensors=None) -> keras.Model:
    """``model`` cloned layer by layer through ``clone_layer``; each clone that has weights gets
    ``weights(source, clone)``, ``source`` being the layer of ``model`` with the clone's name. The graph
    rewrites (``gray_backbone``, ``training.autoencoder.pointwise``) and the pruned backbone
    (``training.pruning``) are all this: the same graph with some layers changed and their weights
    carried over, changed where they must be."""
    clone = keras.models.clone_model(model, input_tensors=input_tensors, clone_function=clone_layer)
    for layer in clone.layers:
        if layer.weights:  # the input layer, which the clone may name anew, has none
            layer.set_weights(weights(model.get_layer(layer.name), layer))
    return clone


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
