"""MobileNetV2 transfer-learning defect classifier with an exact, TensorFlow-free Grad-CAM.

Head: last feature map (``out_relu``) -> GlobalAveragePooling -> Dropout -> Dense logits
-> Softmax. For this head the gradient of a class logit with respect to the feature map
is the Dense kernel column divided by H*W, so the runtime computes Grad-CAM from the
exported feature-map output and the kernel alone.

The classifier sees the frame exactly as the gate does (working size, reflect-padded) and
its frozen stem (input -> ``block_12_add``) is the gate's: the same ImageNet layers. So
only the head (blocks 13-16, Conv_1, GlobalAveragePooling, Dense) is exported, with the
stem as its input, and a flagged frame does not run the backbone twice.

Training on 2 CPU cores: the stem is run once per image and dihedral variant and cached;
the top blocks and the head are then fine-tuned on the cached tensors. BatchNorm stays in
inference mode throughout.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from training.backbone import STEM_OUTPUT, gray_to_imagenet, mobilenet_v2

FIRST_TUNED_BLOCK = 13
FEATURE_LAYER = "out_relu"


def build_classifier(num_classes: int, dropout: float = 0.2, base: keras.Model | None = None):
    """Return (base, full_model). ``full_model``: gray image of any size -> [probabilities, feature map, logits].
    ``base``: the profile's backbone (``training.backbone.profile_backbone``; default the ImageNet one)."""
    base = base or mobilenet_v2((None, None, 3))
    for layer in base.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
    image = keras.Input((None, None, 1), name="image")
    features = base(gray_to_imagenet(image))
    pooled = layers.GlobalAveragePooling2D(name="gap")(features)
    logits = layers.Dense(num_classes, name="logits")(layers.Dropout(dropout, name="dropout")(pooled))
    probabilities = layers.Softmax(name="probabilities")(logits)
    full = keras.Model(image, [probabilities, features, logits], name="classifier")
    return base, full


def stem_model(base: keras.Model) -> keras.Model:
    """Frozen input -> block_12_add part, run once to build the feature cache."""
    image = keras.Input((None, None, 1))
    stem = keras.Model(base.input, base.get_layer(STEM_OUTPUT).output)
    stem.trainable = False
    return keras.Model(image, stem(gray_to_imagenet(image)))


def apply_top_blocks(base: keras.Model, x):
    """Re-apply base's layers from block 13 to out_relu (shared weights) on a new tensor."""
    names = [layer.name for layer in base.layers]
    block_input, current_block = x, None
    for layer in base.layers[names.index(f"block_{FIRST_TUNED_BLOCK}_expand"):]:
        if layer.name.startswith("block_"):
            block = "_".join(layer.name.split("_")[:2])
            if block != current_block:
                current_block, block_input = block, x
        x = layer([block_input, x]) if layer.name.endswith("_add") else layer(x)
    return x


def head_model(base: keras.Model, full: keras.Model) -> keras.Model:
    """Stem tensor (any size) -> [probabilities, feature map, logits], sharing every weight with ``full``.

    The exported classifier graph (its first two outputs) and, with the first output only,
    the model trained on the cached stems."""
    stem = keras.Input((None, None, base.get_layer(STEM_OUTPUT).output.shape[-1]), name="stem")
    features = apply_top_blocks(base, stem)
    logits = full.get_layer("logits")(full.get_layer("dropout")(full.get_layer("gap")(features)))
    return keras.Model(stem, [full.get_layer("probabilities")(logits), features, logits], name="classifier_head")


def set_top_trainable(base: keras.Model, trainable: bool) -> None:
    names = [layer.name for layer in base.layers]
    for layer in base.layers[names.index(f"block_{FIRST_TUNED_BLOCK}_expand"):]:
        if not isinstance(layer, layers.BatchNormalization):
            layer.trainable = trainable


def class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    return {i: float(len(labels) / (num_classes * max(c, 1.0))) for i, c in enumerate(counts)}
