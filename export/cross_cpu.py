"""``python -m export.cross_cpu MODEL.onnx [...] [--cpu Haswell ...]``: do ONNX models compute the same on other x86 CPUs?

onnxruntime picks its kernels by what the CPU offers, and its integer kernels do not all add the
same way: without VNNI (AVX2 only) pairs of 8-bit products are summed in 16 bits and saturate
with full-range weights, with VNNI they are not. An int8 model recorded on one CPU can then give
other class probabilities on another and fail the line PC's self-test (it happened: the 8-bit
head of the tenth session, `docs/results.md`, "Why 7-bit weights").

This runs each model on fixed random inputs here and, through Debian's ``qemu-user``, on emulated
CPUs (``qemu-x86_64 -cpu MODEL``: the same Python, onnxruntime and model, the CPU's feature flags
as that model has them), and prints the largest difference of each output. Only the kernel choice
differs between the runs, so a difference is the CPU's. Speed under emulation means nothing.
The default CPU, Haswell, has AVX2 and FMA and no AVX-512 or VNNI: the oldest feature set the
benchmark figures cover. ``python -m edge_runtime selftest`` run the same way (``qemu-x86_64 -cpu
Haswell .venv/bin/python -m edge_runtime selftest``) checks the golden frames end to end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

EMULATOR = "qemu-x86_64"
DEFAULT_CPUS = ("Haswell",)
# Dynamic input dimensions (batch, height, width) are set to these sizes, in order of appearance.
DYNAMIC_SIZES = (2, 32, 32)


class EmulatorMissing(RuntimeError):
    """qemu-user is not installed (Debian: ``apt-get install qemu-user``)."""


def model_inputs(session, seed: int = 0) -> dict[str, np.ndarray]:
    """Fixed uniform [0, 1) float32 inputs for every input of an onnxruntime session's model, dynamic sizes
    from ``DYNAMIC_SIZES``."""
    rng = np.random.default_rng(seed)
    inputs = {}
    for spec in session.get_inputs():
        sizes = iter(DYNAMIC_SIZES)
        shape = [dim if isinstance(dim, int) else next(sizes, DYNAMIC_SIZES[-1]) for dim in spec.shape]
        inputs[spec.name] = rng.random(shape, dtype=np.float32)
    return inputs


def model_outputs(path: Path) -> dict[str, np.ndarray]:
    """Every output of the model on ``model_inputs``, on this CPU, in a session as the runtime opens one
    (``edge_runtime.inspector.session``: one intra-op thread)."""
    from edge_runtime.inspector import session as runtime_session

    session = runtime_session(Path(path))
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, model_inputs(session))))


def emulated_outputs(path: Path, cpu: str) -> dict[str, np.ndarray]:
    """``model_outputs`` computed in a child Python under ``qemu-x86_64 -cpu cpu``."""
    emulator = shutil.which(EMULATOR)
    if emulator is None:
        raise EmulatorMissing(f"{EMULATOR} not found: install Debian's qemu-user to run models on emulated CPUs")
    with tempfile.TemporaryDirectory() as folder:
        dump = Path(folder) / "outputs.npz"
        command = [emulator, "-cpu", cpu, sys.executable, "-m", "export.cross_cpu", "--dump", str(dump), str(path)]
        done = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
        if done.returncode != 0:
            tail = "\n".join(line for line in done.stderr.splitlines() if "TCG doesn't support" not in line)[-2000:]
            raise RuntimeError(f"{path.name} under {EMULATOR} -cpu {cpu} failed ({done.returncode}):\n{tail}")
        with np.load(dump) as saved:
            return {name: saved[name] for name in saved.files}


def differences(path: Path, cpus: tuple[str, ...] = DEFAULT_CPUS) -> dict[str, dict[str, float]]:
    """cpu -> output name -> largest absolute difference from this CPU's result."""
    here = model_outputs(path)
    report = {}
    for cpu in cpus:
        there = emulated_outputs(path, cpu)
        report[cpu] = {name: float(np.max(np.abs(here[name].astype(np.float64) - there[name]))) for name in here}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.cross_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--cpu", action="append", default=None, help=f"qemu CPU model (default: {DEFAULT_CPUS[0]})")
    parser.add_argument("--dump", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.dump is not None:
        np.savez(args.dump, **model_outputs(args.models[0]))
        return 0
    try:
        report = {str(path): differences(path, tuple(args.cpu or DEFAULT_CPUS)) for path in args.models}
    except EmulatorMissing as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
