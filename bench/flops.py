"""Arithmetic floor: multiply-accumulates of an ONNX graph and this CPU's measured float32 peak.

MACs are counted for Conv, ConvTranspose, MatMul and Gemm only (everything else is
memory-bound and small next to them): ``prod(output shape) * prod(weight shape[1:])`` for a
convolution (``Cin/group * kh * kw`` per output value), ``prod(output shape) * K`` for a
matrix product. Shapes are the real ones: every counted node's output (and left input) is
exposed as a graph output and the unoptimised graph is run once on an input of the
benchmark's size, so dynamic dimensions need no symbolic shape inference.

The peak is a large float32 ``numpy`` matmul on one thread (OpenBLAS' best kernel on this
CPU), in a fresh subprocess so the BLAS thread count can be pinned before numpy loads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

COUNTED = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def count_macs(path: str | Path, input_shape: tuple[int, ...]) -> dict:
    """{'macs': total, 'by_op': {op_type: macs}, 'nodes': n} for one input of ``input_shape``."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {t.name: tuple(t.dims) for t in graph.initializer}
    nodes = [n for n in graph.node if n.op_type in COUNTED]
    existing = {o.name for o in graph.output}
    wanted = []
    for node in nodes:
        for name in (node.output[0], node.input[0], node.input[1]):
            if name not in existing and name not in initializers and name not in wanted:
                wanted.append(name)
    graph.output.extend(onnx.helper.make_empty_tensor_value_info(name) for name in wanted)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    values = sess.run(None, {sess.get_inputs()[0].name: np.random.default_rng(0).random(input_shape, np.float32)})
    shapes = {name: v.shape for name, v in zip(names, values)}
    shape = lambda name: initializers.get(name) or shapes[name]  # noqa: E731
    by_op: dict[str, int] = {}
    for node in nodes:
        out = shape(node.output[0])
        if node.op_type in ("Conv", "ConvTranspose"):
            w = shape(node.input[1])
            per_output = int(np.prod(w[1:]))
            if node.op_type == "ConvTranspose":  # weight is (Cin, Cout/g, kh, kw): MACs per input value
                out, per_output = shape(node.input[0]), int(np.prod(w[1:]))
            macs = int(np.prod(out)) * per_output
        elif node.op_type == "Gemm":
            a = shape(node.input[0])
            trans_a = any(att.name == "transA" and att.i for att in node.attribute)
            macs = int(np.prod(out)) * int(a[0] if trans_a else a[-1])
        else:  # MatMul
            macs = int(np.prod(out)) * int(shape(node.input[0])[-1])
        by_op[node.op_type] = by_op.get(node.op_type, 0) + macs
    return {"macs": int(sum(by_op.values())), "by_op": by_op, "nodes": len(nodes),
            "input_shape": list(input_shape)}


_PEAK_SCRIPT = """
import json, time, numpy as np
n = {n}
a = np.random.default_rng(0).random((n, n), np.float32); b = np.random.default_rng(1).random((n, n), np.float32)
a @ b
best = min((lambda t: (a @ b, time.perf_counter() - t)[1])(time.perf_counter()) for _ in range({repeats}))
print(json.dumps({{"gflops": 2 * n ** 3 / best / 1e9, "n": n, "seconds": best}}))
"""


def peak_gflops(threads: int = 1, n: int = 2048, repeats: int = 5) -> dict:
    """Best float32 GFLOP/s of an n x n matmul on ``threads`` BLAS threads (fresh subprocess)."""
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    out = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT.format(n=n, repeats=repeats)], env=env,
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["threads"] = threads
    return result
