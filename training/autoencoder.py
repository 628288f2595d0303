"""Feature-reconstruction autoencoder (deep feature reconstruction style) and the pixel baseline.

The gate reconstructs frozen ImageNet MobileNetV2 features, not pixels: multi-scale
feature maps are brought to stride 8, whitened with statistics of normal training
features, squeezed through a per-location (1x1) bottleneck and rebuilt. The mean squared
error over channels is the anomaly map. Everything is fully convolutional, so the
exported graph accepts any frame size (a multiple of 16; the runtime pads). The exported
graph has a second output, the backbone's ``block_12_add`` (the stem): the classifier head
continues from it for flagged frames.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from training.backbone import STEM_OUTPUT, fresh_copy, gray_backbone, gray_centred, mobilenet_v2, rebuilt

INPUT_MULTIPLE = 16
# Named gate feature sets: (layer, how to bring it to the gate's stride) per tap.
TAPS = {
    # Block 6 and 13 expansions at stride 8: 768 channels.
    "block6+13": (("block_6_expand_relu", "same"), ("block_13_expand_relu", "up2")),
    # The same at stride 16: a quarter of the cells for the per-cell bottleneck.
    "block6+13/16": (("block_6_expand_relu", "pool2"), ("block_13_expand_relu", "same")),
    # Block 5 and 12 outputs (the projected, narrow ones) at stride 8: 128 channels, so the
    # whitening and bottleneck cost a twentieth of block6+13's and the backbone stops earlier.
    "block5+12": (("block_5_add", "same"), ("block_12_add", "up2")),
    # The same, block 12 upsampled so its cells stay on the stride-8 cells they are centred on.
    "block5+12/aligned": (("block_5_add", "same"), ("block_12_add", "up2_aligned")),
}
DEFAULT_TAPS = TAPS["block6+13"]


class AlignedUpsampling2(layers.Layer):
    """x2 upsampling that keeps each stride-16 cell on the stride-8 cell sharing its centre.

    MobileNetV2 centres a stride-S cell i on pixel S*i + S - 1 (see
    ``edge_runtime.preprocess.FrameGeometry.to_frame``), so stride-16 cell m sits on stride-8
    cell 2m+1, and stride-8 cell 2m lies halfway between stride-16 cells m-1 and m. Odd
    outputs copy, even outputs average the two neighbours (the first row/column repeats).
    Nearest-neighbour upsampling puts cell m on 2m and 2m+1, half a cell off on average."""

    @staticmethod
    def _upsample_axis(x, axis: int):
        first = ops.take(x, [0], axis=axis)
        previous = ops.concatenate([first, ops.take(x, ops.arange(ops.shape(x)[axis] - 1), axis=axis)], axis=axis)
        pairs = ops.stack([0.5 * (previous + x), x], axis=axis + 1)
        shape = ops.shape(x)
        new_shape = [shape[0], shape[1], shape[2], shape[3]]
        new_shape[axis] = shape[axis] * 2
        return ops.reshape(pairs, new_shape)

    def call(self, x):
        return self._upsample_axis(self._upsample_axis(x, 1), 2)


def feature_extractor(taps=DEFAULT_TAPS, with_stem: bool = False, frame_tap: str | None = None,
                      base: keras.Model | None = None) -> keras.Model:
    """Gray frame (N, H, W, 1) in [0, 1] -> multi-scale feature map at one stride, frozen.

    Further outputs, in this order: ``with_stem``, the backbone's ``STEM_OUTPUT`` (for the
    classifier head); ``frame_tap``, that layer averaged over the whole frame (N, 1, 1, C),
    the input of the frame-level bottleneck. ``base``: the backbone (default: the ImageNet MobileNetV2)."""
    base = base or mobilenet_v2((None, None, 3))
    image = keras.Input((None, None, 1), name="image")
    extras = ([STEM_OUTPUT] if with_stem else []) + ([frame_tap] if frame_tap else [])
    names = [name for name, _ in taps] + extras
    base = gray_backbone(base)
    base.trainable = False
    tapped = keras.Model(base.input, [base.get_layer(name).output for name in names])(gray_centred(image))
    tapped = list(tapped) if isinstance(tapped, (list, tuple)) else [tapped]
    extra_outputs = tapped[len(taps):]
    if frame_tap:
        extra_outputs[-1] = layers.GlobalAveragePooling2D(keepdims=True, name="frame_features")(extra_outputs[-1])
    resample = {"same": lambda t: t, "up2": layers.UpSampling2D(2), "up4": layers.UpSampling2D(4),
                "pool2": layers.AveragePooling2D(2), "up2_aligned": AlignedUpsampling2()}
    scaled = [resample[how](t) for t, (_, how) in zip(tapped, taps)]
    features = layers.Concatenate(name="features")(scaled) if len(scaled) > 1 else scaled[0]
    return keras.Model(image, [features, *extra_outputs] if extra_outputs else features, name="feature_extractor")


def whitening(vectors: np.ndarray, full: bool = True, floor: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """(mean, projection) from normal features.

    full: PCA whitening (a CxC matrix; tiny eigenvalues floored for stability). Otherwise
    per-channel standardisation (a length-C scale vector), which is C times cheaper at run time.
    """
    mean = vectors.mean(0)
    if not full:
        return mean.astype(np.float32), (1.0 / (vectors.std(0) + 1e-3)).astype(np.float32)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov((vectors - mean).T))
    eigenvalues = np.maximum(eigenvalues, eigenvalues.max() * floor)
    return mean.astype(np.float32), (eigenvectors / np.sqrt(eigenvalues)).astype(np.float32)


def normalise(vectors: np.ndarray, mean: np.ndarray, projection: np.ndarray) -> np.ndarray:
    centred = vectors - mean
    return centred @ projection if projection.ndim == 2 else centred * projection


def bottleneck(channels: int, hidden: tuple[int, ...], name: str = "bottleneck") -> keras.Model:
    """Per-location autoencoder (Dense on the last axis = 1x1 convolutions). ``name`` also prefixes
    its layers, so two bottlenecks (cells and frame) live in one graph."""
    prefix = "" if name == "bottleneck" else f"{name}_"
    vector = keras.Input((None, None, channels), name=f"{prefix}whitened")
    x = vector
    for i, width in enumerate(hidden):
        x = layers.Dense(width, activation="relu", name=f"{prefix}ae_{i}")(x)
    return keras.Model(vector, layers.Dense(channels, name=f"{prefix}ae_out")(x), name=name)


# What a residual detector may read of each cell (``anomaly_model``'s ``detector_input``).
DETECTOR_INPUTS = ("residual", "residual+cell", "cell")


def residual_detector(channels: int, hidden: tuple[int, ...], members: int = 1) -> keras.Model:
    """Per-location classifier of the bottleneck's residual (whitened cell minus its reconstruction,
    with the whitened cell beside it where ``anomaly_model``'s ``detector_input`` says so): the
    probability that the cell holds a defect (1x1 convolutions, like the bottleneck); ``channels`` is
    what it reads.

    With several ``members``, that many such networks, fitted apart, side by side in one graph, and
    their probabilities averaged: one fit's map varies from seed to seed (docs/gate_design.md, step 11)."""
    residual = keras.Input((None, None, channels), name="residual")
    if members == 1:
        return keras.Model(residual, _detector_member(residual, hidden, ""), name="residual_detector")
    probabilities = [_detector_member(residual, hidden, f"m{m}_") for m in range(members)]
    return keras.Model(residual, layers.Average(name="detector_mean")(probabilities), name="residual_detector")


def _detector_member(residual, hidden: tuple[int, ...], prefix: str):
    x = residual
    for i, width in enumerate(hidden):
        x = layers.Dense(width, activation="relu", name=f"{prefix}detector_{i}")(x)
    return layers.Dense(1, activation="sigmoid", name=f"{prefix}detector_out")(x)


def pointwise(model: keras.Model) -> keras.Model:
    """``model`` (Dense layers on the last axis of feature maps) with every Dense written as the 1x1
    convolution it is, with the same weights. tf2onnx writes a Dense on a 4-D tensor as a Tensordot, with
    reshapes and shape arithmetic around a MatMul; a Conv instead joins onnxruntime's blocked-layout
    convolutions (measured in ``docs/results.md``, "Runtime speed"). The saved weights stay Dense's."""

    def clone(layer):
        if not isinstance(layer, layers.Dense):
            return fresh_copy(layer)
        config = layer.get_config()
        return layers.Conv2D(config["units"], 1, activation=config["activation"], use_bias=config["use_bias"],
                             name=layer.name, trainable=False)

    def weights(source: layers.Layer, _) -> list[np.ndarray]:
        values = source.get_weights()
        if isinstance(source, layers.Dense):
            return [values[0].reshape(1, 1, *values[0].shape), *values[1:]]
        return values

    return rebuilt(model, clone, weights)


class SquaredError(layers.Layer):
    """Mean over channels of (input - reconstruction)^2, keeping a channel axis of 1."""

    def call(self, inputs):
        original, reconstruction = inputs
        return ops.mean(ops.square(original - reconstruction), axis=-1, keepdims=True)


def _whitened(features, mean: np.ndarray, projection: np.ndarray, name: str):
    """``normalise`` as a layer: a fixed 1x1 convolution (PCA whitening) or Rescaling (standardisation)."""
    if projection.ndim == 2:
        whiten = layers.Conv2D(projection.shape[0], 1, name=name, trainable=False)
        whitened = whiten(features)
        whiten.set_weights([projection[None, None], -mean @ projection])
        return whitened
    return layers.Rescaling(projection, offset=-mean * projection, name=name)(features)


def anomaly_model(extractor: keras.Model, mean: np.ndarray, projection: np.ndarray, ae: keras.Model,
                  frame: tuple[np.ndarray, np.ndarray, keras.Model] | None = None,
                  detector: keras.Model | None = None, detector_input: str = "residual") -> keras.Model:
    """The exported graph: image -> error map at the gate's stride (N, H/s, W/s, 1); then the stem
    (N, H/16, W/16, C) when the extractor has one; then, when ``frame`` = (mean, projection,
    bottleneck) of the frame-level autoencoder is given, its reconstruction error (N, 1, 1, 1)
    (the extractor must then pool its ``frame_tap``); then, when a residual ``detector`` is given,
    its map (N, H/s, W/s, 1), read from what ``detector_input`` names: "residual", "residual+cell"
    (the whitened cell after it) or "cell" (the whitened cell alone)."""
    image = keras.Input((None, None, 1), name="image")
    tapped = extractor(image)
    tapped = list(tapped) if isinstance(tapped, (list, tuple)) else [tapped]
    whitened = _whitened(tapped[0], mean, projection, "whiten")
    reconstruction = pointwise(ae)(whitened)
    outputs = [SquaredError(name="error_map")([whitened, reconstruction])]
    if len(tapped) == 2 + (frame is not None):
        outputs.append(layers.Identity(name="stem")(tapped[1]))
    if frame is not None:
        frame_mean, frame_projection, frame_ae = frame
        pooled = _whitened(tapped[-1], frame_mean, frame_projection, "frame_whiten")
        outputs.append(SquaredError(name="frame_error")([pooled, pointwise(frame_ae)(pooled)]))
    if detector is not None:
        outputs.append(layers.Identity(name="residual_map")(pointwise(detector)(
            _detector_reads(whitened, reconstruction, detector_input))))
    return keras.Model(image, outputs if len(outputs) > 1 else outputs[0], name="anomaly")


def _detector_reads(whitened, reconstruction, reads: str):
    if reads == "cell":
        return whitened
    residual = layers.Subtract()([whitened, reconstruction])
    return layers.Concatenate()([residual, whitened]) if reads == "residual+cell" else residual


def pixel_autoencoder() -> keras.Model:
    """Baseline: 3 strided convs 32-64-128 and 3 transposed convs, trained with MSE on pixels."""
    image = keras.Input((None, None, 1), name="image")
    x = image
    for width in (32, 64, 128):
        x = layers.Conv2D(width, 3, strides=2, padding="same", activation="relu")(x)
    for width in (64, 32):
        x = layers.Conv2DTranspose(width, 3, strides=2, padding="same", activation="relu")(x)
    reconstruction = layers.Conv2DTranspose(1, 3, strides=2, padding="same", activation="sigmoid")(x)
    return keras.Model(image, reconstruction, name="pixel_ae")
