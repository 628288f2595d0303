"""Model-level micro-benchmarks behind the runtime's settings: graph optimisation level, intra-op threads
and spinning, input layout, batching, precision (``python -m bench.benchmark --tune``)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge_runtime import Inspector
from edge_runtime.classifier import window_around_peak
from edge_runtime.manifest import load_manifest

PC = time.perf_counter


def head_input(inspector: Inspector, frame: np.ndarray) -> np.ndarray:
    """The stem window the classifier head gets for this frame, as deployed (1 x h x w x C)."""
    return window_around_peak(inspector.scorer.run(frame), inspector.config.stem_window).stem[None]


def _session(path: Path, intra: int, level, spinning: bool | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra
    options.inter_op_num_threads = 1
    options.graph_optimization_level = level
    if spinning is not None:
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def model_ms(sess: ort.InferenceSession, x: np.ndarray, runs: int) -> float:
    """The median of ``runs`` timed runs of ``sess`` on ``x`` (ms), after three warm-up runs."""
    name = sess.get_inputs()[0].name
    for _ in range(3):
        sess.run(None, {name: x})
    times = []
    for _ in range(runs):
        start = PC()
        sess.run(None, {name: x})
        times.append((PC() - start) * 1000.0)
    return float(np.median(times))


def nchw_variant(path: Path) -> bytes | None:
    """The graph with a 1-channel NCHW input instead of NHWC + Transpose (same bytes in memory), or None."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    name = graph.input[0].name
    first = [n for n in graph.node if name in n.input]
    if len(first) != 1 or first[0].op_type != "Transpose" or list(first[0].attribute[0].ints) != [0, 3, 1, 2]:
        return None
    transpose = first[0]
    for node in graph.node:
        node.input[:] = [name if i == transpose.output[0] else i for i in node.input]
    graph.node.remove(transpose)
    dims = graph.input[0].type.tensor_type.shape.dim
    order = [dims[0], dims[3], dims[1], dims[2]]
    copies = [onnx.TensorShapeProto.Dimension() for _ in order]
    for target, source in zip(copies, order):
        target.CopyFrom(source)
    del dims[:]
    dims.extend(copies)
    return model.SerializeToString()


def tuning(inspector: Inspector, frame: np.ndarray, runs: int) -> dict:
    """Model-level medians (ms) for the settings the runtime could choose."""
    config = load_manifest(inspector.manifest_path)["profiles"][inspector.profile]
    root = inspector.manifest_path.resolve().parent
    ae_x = inspector.scorer.model_input(frame)[0][..., None]
    clf_x = head_input(inspector, frame)
    models = {"autoencoder": (root / config["autoencoder"]["path"], ae_x),
              "classifier": (root / config["classifier"]["path"], clf_x)}
    levels = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    out: dict = {}
    for name, (path, x) in models.items():
        row = {f"opt_{k}_intra1": model_ms(_session(path, 1, lvl), x, runs) for k, lvl in levels.items()}
        row["opt_all_intra2_spin"] = model_ms(_session(path, 2, levels["all"], True), x, runs)
        row["opt_all_intra2_nospin"] = model_ms(_session(path, 2, levels["all"], False), x, runs)
        nchw = nchw_variant(path)
        if nchw is not None:
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
            sess = ort.InferenceSession(nchw, options, providers=["CPUExecutionProvider"])
            row["opt_all_intra1_nchw_input"] = model_ms(sess, np.ascontiguousarray(x.transpose(0, 3, 1, 2)), runs)
        batch = 8 if name == "classifier" else 4
        row[f"opt_all_intra1_batch{batch}_per_frame"] = model_ms(
            _session(path, 1, levels["all"]), np.repeat(x, batch, 0), max(3, runs // 2)) / batch
        int8 = config[name].get("int8")
        if int8:
            row["int8_opt_all_intra1"] = model_ms(_session(root / int8["path"], 1, levels["all"]), x, runs)
            row["int8_speedup"] = row["opt_all_intra1"] / row["int8_opt_all_intra1"]
        out[name] = row
    return out

