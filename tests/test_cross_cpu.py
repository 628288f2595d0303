"""The deployed models compute the same on an x86 CPU without AVX-512 or VNNI (emulated: ``export.cross_cpu``).

The project's machine has been an AVX2-only CPU and one with AVX-512 and VNNI; an int8 head recorded
on one failed the self-test on the other. These tests run the models, and the self-test, under
``qemu-x86_64 -cpu Haswell`` (AVX2, no AVX-512, no VNNI). The control builds a small model
quantised with full-range 8-bit weights and checks the emulation does expose the difference,
on a host with VNNI, where the emulated CPU's kernels differ from the host's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import MANIFEST, ROOT, needs_models

needs_qemu = pytest.mark.skipif(shutil.which("qemu-x86_64") is None,
                                reason="qemu-x86_64 not installed (Debian's qemu-user; scripts/test.sh installs it)")
pytestmark = needs_qemu
# Probabilities may move in their last float bits where a dequantisation rounds differently; the
# self-test allows 1e-3. Integer sums that differ move them by 1e-3 to 0.3.
SAME = 1e-6


def _host_has_vnni() -> bool:
    cpuinfo = Path("/proc/cpuinfo")
    flags = cpuinfo.read_text() if cpuinfo.is_file() else ""
    return " avx512_vnni" in flags or " avx_vnni" in flags


def _int8_models() -> list[Path]:
    profiles = json.loads(MANIFEST.read_text())["profiles"].values()
    return [ROOT / entry["classifier"]["int8"]["path"] for entry in profiles if "int8" in entry["classifier"]]


@needs_models
def test_deployed_int8_heads_compute_the_same_without_vnni():
    from export.cross_cpu import differences

    models = _int8_models()
    if not models:
        pytest.skip("no profile offers an int8 classifier")
    for path in models:
        for output, difference in differences(path)["Haswell"].items():
            assert difference <= SAME, f"{path.name} output {output} differs by {difference} on an AVX2 CPU"


@needs_models
def test_selftest_passes_on_an_avx2_cpu():
    for profile in json.loads(MANIFEST.read_text())["profiles"]:
        done = subprocess.run(["qemu-x86_64", "-cpu", "Haswell", sys.executable, "-m", "edge_runtime", "selftest",
                               "--profile", profile, "--json"], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, f"{profile}: {done.stdout[-1500:]}"


def _quantised_matmul(folder: Path, reduce_range: bool) -> Path:
    """A 256 -> 64 MatMul, QDQ-quantised per channel on uniform [0, 1) inputs (8- or 7-bit weights)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.normal(0.0, 1.0, (256, 64)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "m",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 256])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 64])], [weights])
    fp32 = folder / "fp32.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), fp32)

    class Uniform(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"x": rng.random((8, 256), dtype=np.float32)} for _ in range(4)])

        def get_next(self):
            return next(self.batches, None)

    out = folder / f"int8_reduce_{reduce_range}.onnx"
    quantize_static(fp32, out, Uniform(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=reduce_range)
    return out


@pytest.mark.skipif(not _host_has_vnni(), reason="the host has no VNNI, so its int8 kernels are the emulated CPU's")
def test_the_emulation_exposes_saturating_8bit_sums(tmp_path):
    from export.cross_cpu import differences

    full_range = differences(_quantised_matmul(tmp_path, reduce_range=False))["Haswell"]["y"]
    seven_bit = differences(_quantised_matmul(tmp_path, reduce_range=True))["Haswell"]["y"]
    assert full_range > 1e-3, "8-bit weights should saturate the AVX2 kernel's 16-bit pair sums"
    assert seven_bit <= SAME
