"""Keras -> ONNX with tf2onnx, checked by onnx.checker and by Keras/onnxruntime parity."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import onnx
import onnxruntime as ort
import tensorflow as tf
import tf2onnx

OPSET = 17


def convert(model: keras.Model, input_shape: tuple, output_names: list[str], path: Path,
            input_name: str = "image") -> onnx.ModelProto:
    """Convert with an explicit input signature (required for Keras 3) and stable input/output names."""
    signature = [tf.TensorSpec(input_shape, tf.float32, name=input_name)]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=OPSET)
    renames = dict(zip([o.name for o in proto.graph.output], output_names))
    for node in proto.graph.node:
        node.output[:] = [renames.get(name, name) for name in node.output]
    for output in proto.graph.output:
        output.name = renames[output.name]
    proto.graph.input[0].name = input_name
    for node in proto.graph.node:
        node.input[:] = [input_name if name in (signature[0].name, f"{input_name}:0") else name for name in node.input]
    onnx.checker.check_model(proto, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    return proto


def describe(path: Path) -> dict:
    """Input/output names, shapes (None = dynamic) and opset, as written into the manifest."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    proto = onnx.load(str(path))
    shape = lambda s: [d if isinstance(d, int) else None for d in s]  # noqa: E731
    return {
        "opset": max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
        "inputs": [{"name": i.name, "shape": shape(i.shape), "dtype": "float32"} for i in session.get_inputs()],
        "outputs": [{"name": o.name, "shape": shape(o.shape), "dtype": "float32"} for o in session.get_outputs()],
    }


def max_abs_difference(model: keras.Model, path: Path, batch: np.ndarray) -> list[float]:
    """Per output, max |Keras - onnxruntime| on the same batch. Outputs of another shape are refused, not
    compared: numpy would broadcast (1, 38, 30, 1) against (1, 1, 38, 30, 1) and call a wrong graph equal."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ours = session.run(None, {session.get_inputs()[0].name: batch.astype(np.float32)})
    theirs = model(batch, training=False)
    theirs = [np.asarray(t) for t in (theirs if isinstance(theirs, (list, tuple)) else [theirs])]
    if len(theirs) != len(ours):
        raise ValueError(f"{path} has {len(ours)} outputs, the Keras model {len(theirs)}")
    for output, keras_value, onnx_value in zip(session.get_outputs(), theirs, ours):
        if keras_value.shape != onnx_value.shape:
            raise ValueError(f"{path}: output {output.name!r} has shape {onnx_value.shape}, the Keras model's "
                             f"{keras_value.shape}: the conversion went wrong (export again)")
    return [float(np.max(np.abs(t - o))) for t, o in zip(theirs, ours)]
