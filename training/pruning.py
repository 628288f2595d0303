"""A thinner MobileNetV2 for the gate: expansion channels pruned, projections refitted on the line's texture.

The gate runs MobileNetV2 blocks 0-12 on every frame; their inverted-residual blocks widen
each block's input six times (the "expansion"), filter it depthwise and project it back.
Most of the arithmetic is in those wide layers. Channel pruning with feature
reconstruction (He, Zhang and Sun, "Channel pruning for accelerating very deep neural
networks", ICCV 2017) keeps the expansion channels that carry most of a block's output on
this product's own frames and refits the block's projection by least squares so that its
output stays what the full network gives, block by block from the input, each fitted on
the outputs of the blocks already pruned (so errors do not pile up unseen). No gradient
training: a few linear solves over sampled feature cells.

The block outputs keep their widths, so the gate's taps and the classifier's stem keep
their meaning; the pruned network is an approximation of the ImageNet one, judged by the
gate's own recall (``python -m studies.gate_experiments``; docs/gate_design.md, "A pruned
backbone").

``distil`` can then fine-tune every weight of the pruned blocks by gradient descent so that
each block's output matches the full network's on the same frames (feature distillation, as
in Romero et al., "FitNets", ICLR 2015): the least-squares refit only moves the projections.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from training.backbone import rebuilt

BN_EPSILON = 1e-3
# Blocks the gate's taps reach (block_12_add is the deepest); block 0 has no expansion.
PRUNABLE_BLOCKS = tuple(range(1, 13))


@dataclass(frozen=True)
class FoldedBlock:
    """One inverted-residual block with its batch norms folded into the convolutions."""
    expand: np.ndarray      # (C_in, E)
    expand_bias: np.ndarray
    depthwise: np.ndarray   # (3, 3, E, 1)
    depthwise_bias: np.ndarray
    project: np.ndarray     # (E, C_out)
    project_bias: np.ndarray
    stride: int
    residual: bool


def _bn_scale_shift(layer) -> tuple[np.ndarray, np.ndarray]:
    gamma, beta, mean, variance = layer.get_weights()
    scale = gamma / np.sqrt(variance + layer.epsilon)
    return scale, beta - mean * scale


def folded_block(base: keras.Model, block: int) -> FoldedBlock:
    prefix = f"block_{block}_"
    names = {layer.name for layer in base.layers}
    s_e, t_e = _bn_scale_shift(base.get_layer(prefix + "expand_BN"))
    s_d, t_d = _bn_scale_shift(base.get_layer(prefix + "depthwise_BN"))
    s_p, t_p = _bn_scale_shift(base.get_layer(prefix + "project_BN"))
    expand = base.get_layer(prefix + "expand").get_weights()[0][0, 0] * s_e
    depthwise = base.get_layer(prefix + "depthwise").get_weights()[0] * s_d[None, None, :, None]
    project = base.get_layer(prefix + "project").get_weights()[0][0, 0] * s_p
    stride = base.get_layer(prefix + "depthwise").strides[0]
    return FoldedBlock(expand, t_e, depthwise, t_d, project, t_p, stride, prefix + "add" in names)


def expanded(block: FoldedBlock, x: tf.Tensor, keep: np.ndarray | None = None) -> tf.Tensor:
    """The block's depthwise output (the projection's input), for the channels ``keep`` (default all)."""
    keep = np.arange(block.expand.shape[1]) if keep is None else keep
    h = tf.nn.relu6(tf.tensordot(x, block.expand[:, keep], 1) + block.expand_bias[keep])
    if block.stride == 2:
        h = tf.pad(h, [[0, 0], [0, 1], [0, 1], [0, 0]])  # Keras' correct_pad for an unknown input size
    h = tf.nn.depthwise_conv2d(h, block.depthwise[:, :, keep], [1, block.stride, block.stride, 1],
                               "VALID" if block.stride == 2 else "SAME")
    return tf.nn.relu6(h + block.depthwise_bias[keep])


def block_output(block: FoldedBlock, x: tf.Tensor, keep: np.ndarray | None = None, project: np.ndarray | None = None,
                 bias: np.ndarray | None = None) -> tf.Tensor:
    """The block's output, with ``keep``'s channels and a refitted ``project`` / ``bias`` where given."""
    project = block.project if project is None else project
    bias = block.project_bias if bias is None else bias
    out = tf.tensordot(expanded(block, x, keep), project, 1) + bias
    return out + x if block.residual else out


def _ridge_fit(design: np.ndarray, targets: np.ndarray, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """(weights, bias) of the least-squares map design -> targets, the weights (not the bias) shrunk by
    ``ridge`` x trace(Gram matrix of [design, 1]) / channels."""
    design, gram = _ridge_gram(design, ridge)
    solution = np.linalg.solve(gram, design.T @ targets.astype(np.float64))
    return solution[:-1].astype(np.float32), solution[-1].astype(np.float32)


@dataclass(frozen=True)
class PrunedBlock:
    keep: np.ndarray        # expansion channels kept
    project: np.ndarray     # refitted (len(keep), C_out)
    project_bias: np.ndarray


def _batches(x: np.ndarray, size: int = 32):
    for start in range(0, len(x), size):
        yield start, tf.constant(x[start: start + size])


def _ridge_gram(design: np.ndarray, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """([design, 1] as float64, its Gram matrix with ``_ridge_fit``'s shrinkage on the channels)."""
    design = np.concatenate([design, np.ones((len(design), 1))], axis=1).astype(np.float64)
    gram = design.T @ design
    channels = design.shape[1] - 1
    gram[np.arange(channels), np.arange(channels)] += ridge * np.trace(gram) / channels
    return design, gram


def least_squares_selection(design: np.ndarray, targets: np.ndarray, width: int, ridge: float) -> np.ndarray:
    """The ``width`` channels kept by backward elimination: again and again, drop the channel whose
    removal raises the least-squares residual least (the deletion formula of linear regression,
    beta_j^2 / [G^-1]_jj summed over the outputs), the others refitted each time."""
    design, gram = _ridge_gram(design, ridge)
    cross = design.T @ targets.astype(np.float64)
    bias = design.shape[1] - 1
    active = list(range(bias))
    while len(active) > width:
        rows = active + [bias]
        inverse = np.linalg.inv(gram[np.ix_(rows, rows)])
        beta = inverse @ cross[rows]
        cost = np.square(beta[:-1]).sum(axis=1) / np.diag(inverse)[:-1]
        active.pop(int(np.argmin(cost)))
    return np.array(active)


def prune_block(block: FoldedBlock, inputs: np.ndarray, pruned_inputs: np.ndarray, width: int,
                rows_per_frame: int, rng: np.random.Generator, ridge: float = 1e-4,
                selection: str = "energy") -> tuple[PrunedBlock, np.ndarray, np.ndarray]:
    """Keep ``width`` expansion channels and refit the projection so the pruned block, fed the pruned
    network's own inputs, gives the full block's output. ``selection``: "energy" keeps the channels with
    the most output energy (mean square times projection weights), "least_squares" the ones backward
    elimination keeps. Returns (the pruned block, the full network's outputs, the pruned network's
    outputs) for the next block."""
    energy = np.zeros(block.expand.shape[1])
    targets, full_out, cells = [], [], []
    for start, batch in _batches(pruned_inputs):
        h = expanded(block, batch).numpy()
        energy += np.square(h).sum(axis=(0, 1, 2))
        original = block_output(block, tf.constant(inputs[start: start + len(batch)])).numpy()
        full_out.append(original)
        target = original - batch.numpy() if block.residual else original
        flat_h, flat_t = h.reshape(len(h), -1, h.shape[-1]), target.reshape(len(h), -1, target.shape[-1])
        picks = rng.integers(0, flat_h.shape[1], (len(h), rows_per_frame))
        cells.append(np.take_along_axis(flat_h, picks[..., None], 1).reshape(-1, h.shape[-1]))
        targets.append(np.take_along_axis(flat_t, picks[..., None], 1).reshape(-1, target.shape[-1]))
    cells, targets = np.concatenate(cells), np.concatenate(targets)
    if selection == "least_squares":
        keep = least_squares_selection(cells, targets, width, ridge)
    else:
        keep = np.sort(np.argsort(energy * np.square(block.project).sum(axis=1))[::-1][:width])
    weights, bias = _ridge_fit(cells[:, keep], targets, ridge)
    pruned = PrunedBlock(keep, weights, bias)
    pruned_out = [block_output(block, batch, keep, pruned.project, pruned.project_bias).numpy()
                  for _, batch in _batches(pruned_inputs)]
    return pruned, np.concatenate(full_out), np.concatenate(pruned_out)


def prune_mobilenet_v2(base: keras.Model, inputs: np.ndarray, keep_ratio: float, rows_per_frame: int = 64,
                       seed: int = 0, selection: str = "energy") -> dict[int, PrunedBlock]:
    """Blocks 1-12 with ``keep_ratio`` of their expansion channels (rounded up to a multiple of 8, the
    vector width of onnxruntime's AVX2 convolutions), fitted on ``inputs`` (N, H, W, 3) in [-1, 1]."""
    rng = np.random.default_rng(seed)
    stem = keras.Model(base.input, base.get_layer("expanded_conv_project_BN").output)
    full = np.concatenate([stem.predict(inputs[i: i + 32], verbose=0) for i in range(0, len(inputs), 32)])
    pruned_inputs, pruned = full, {}
    for number in PRUNABLE_BLOCKS:
        block = folded_block(base, number)
        width = min(block.expand.shape[1], int(np.ceil(block.expand.shape[1] * keep_ratio / 8) * 8))
        pruned[number], full, pruned_inputs = prune_block(block, full, pruned_inputs, width, rows_per_frame, rng,
                                                          selection=selection)
    return pruned


def _block_number(name: str) -> int | None:
    parts = name.split("_")
    return int(parts[1]) if len(parts) > 2 and parts[0] == "block" and parts[1].isdigit() else None


def pruned_backbone(base: keras.Model, blocks: dict[int, PrunedBlock],
                    tuned: dict[str, list[np.ndarray]] | None = None) -> keras.Model:
    """``base`` (the ImageNet MobileNetV2) with ``blocks`` pruned: same layer names, so taps, the stem
    and the classifier's top blocks (13-16, unchanged) are found as in the full network. Each
    refitted projection carries its bias in its batch norm, set to the identity plus that bias.
    ``tuned``: the layers' weights after ``distil`` (``tuned_weights``), set over those."""

    def clone(layer):
        config = layer.get_config()
        if layer.name.endswith("_expand") and _block_number(layer.name) in blocks:
            config["filters"] = len(blocks[_block_number(layer.name)].keep)
        return layer.__class__.from_config(config)

    def weights(source: keras.layers.Layer, layer: keras.layers.Layer) -> list[np.ndarray]:
        values = source.get_weights()
        pruned = blocks.get(_block_number(layer.name))
        if pruned is None:
            return values
        suffix = layer.name.split("_", 2)[2]
        if suffix == "expand":
            values = [values[0][..., pruned.keep]]
        elif suffix in ("expand_BN", "depthwise_BN"):
            values = [w[pruned.keep] for w in values]
        elif suffix == "depthwise":
            values = [values[0][:, :, pruned.keep]]
        elif suffix == "project":
            values = [pruned.project[None, None]]
        elif suffix == "project_BN":
            channels = len(pruned.project_bias)
            values = [np.full(channels, np.sqrt(1.0 + layer.epsilon), np.float32), pruned.project_bias,
                      np.zeros(channels, np.float32), np.ones(channels, np.float32)]
        return (tuned or {}).get(layer.name, values)

    return rebuilt(base, clone, weights)


def _block_output_names(model: keras.Model) -> list[str]:
    """Each prunable block's output layer: its residual add, or its projection's batch norm."""
    names = {layer.name for layer in model.layers}
    return [f"block_{n}_add" if f"block_{n}_add" in names else f"block_{n}_project_BN" for n in PRUNABLE_BLOCKS]


def distil(base: keras.Model, student: keras.Model, inputs: np.ndarray, epochs: int, batch_size: int = 16,
           learning_rate: float = 3e-4, crop: int = 128, seed: int = 0) -> list[float]:
    """Fine-tune blocks 1-12 of ``student`` (``pruned_backbone(base, ...)``) so that each block's output
    matches ``base``'s on ``inputs`` (N, H, W, 3) in [-1, 1]: the mean over the blocks of the squared
    error per channel in units of the full network's variance of that channel. Each step sees random
    ``crop`` x ``crop`` windows of a batch of frames, mirrored at random (both networks see the same
    window, so no border is wrong; a third of the arithmetic of whole 240x240 frames). Batch norms stay
    in inference mode (their statistics are the ImageNet ones, folded into the weights the gradient
    moves). Returns the loss per epoch."""
    names = _block_output_names(base)
    teacher = keras.Model(base.input, [base.get_layer(n).output for n in names])
    pupil = keras.Model(student.input, [student.get_layer(n).output for n in names])
    for layer in student.layers:
        layer.trainable = _block_number(layer.name) in PRUNABLE_BLOCKS
    scales = [tf.constant(np.var(t, axis=(0, 1, 2)) + 1e-6) for t in teacher.predict(inputs[:32], verbose=0)]
    weights = pupil.trainable_weights
    optimizer = keras.optimizers.Adam(learning_rate)

    @tf.function
    def step(x):
        targets = teacher(x, training=False)
        with tf.GradientTape() as tape:
            outputs = pupil(x, training=False)
            loss = tf.add_n([tf.reduce_mean(tf.square(o - t) / s) for o, t, s in zip(outputs, targets, scales)])
            loss = loss / len(scales)
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        return loss

    rng, history = np.random.default_rng(seed), []
    for _ in range(epochs):
        order, losses = rng.permutation(len(inputs)), []
        for start in range(0, len(inputs) - batch_size + 1, batch_size):
            y, x = (int(rng.integers(0, side - crop + 1)) for side in inputs.shape[1:3])
            batch = inputs[order[start: start + batch_size], y: y + crop, x: x + crop]
            if rng.random() < 0.5:
                batch = batch[:, :, ::-1]
            losses.append(float(step(tf.constant(np.ascontiguousarray(batch)))))
        history.append(float(np.mean(losses)))
    return history


def tuned_weights(model: keras.Model) -> dict[str, list[np.ndarray]]:
    """The weights of blocks 1-12's layers, by layer name (what ``distil`` moved)."""
    return {layer.name: layer.get_weights() for layer in model.layers
            if _block_number(layer.name) in PRUNABLE_BLOCKS and layer.get_weights()}


def save(path, blocks: dict[int, PrunedBlock], tuned: dict[str, list[np.ndarray]] | None = None) -> None:
    """The pruned blocks and, after ``distil``, their fine-tuned layers' weights, in one ``.npz``."""
    arrays = {f"{key}_{number}": getattr(block, field) for number, block in blocks.items()
              for key, field in (("keep", "keep"), ("project", "project"), ("bias", "project_bias"))}
    arrays.update({f"tuned:{name}:{i}": w for name, weights in (tuned or {}).items() for i, w in enumerate(weights)})
    np.savez(path, **arrays)


def load(path) -> dict[int, PrunedBlock]:
    with np.load(path) as data:
        numbers = sorted(int(name.split("_")[1]) for name in data.files if name.startswith("keep_"))
        return {n: PrunedBlock(data[f"keep_{n}"], data[f"project_{n}"], data[f"bias_{n}"]) for n in numbers}


def load_tuned(path) -> dict[str, list[np.ndarray]]:
    """The fine-tuned layers' weights ``save`` stored (empty where the backbone was not distilled)."""
    tuned: dict[str, list[tuple[int, np.ndarray]]] = {}
    with np.load(path) as data:
        for key in data.files:
            if key.startswith("tuned:"):
                _, name, index = key.split(":")
                tuned.setdefault(name, []).append((int(index), data[key]))
    return {name: [w for _, w in sorted(parts, key=lambda part: part[0])] for name, parts in tuned.items()}
