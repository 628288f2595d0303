"""Latency / throughput / memory / cold-start benchmark of the edge runtime, optionally against Keras.

    python -m bench.benchmark [--json] [--profile P] [--threads N] [--baseline keras] [--tune]

* per-stage latency p50/p90/p99 on a 200x200 frame the gate flags: decode (JPEG bytes ->
  array), preprocess (validate, gray, [0, 1]), autoencoder (padding + ONNX run), gate
  (error map -> smoothed, upsampled anomaly map, score, verdict), classifier (the head
  graph on the gate's backbone stem), Grad-CAM (from the feature output, into frame coordinates), overlay (anomaly
  and Grad-CAM overlays, as the dashboard draws them);
* end to end ``Inspector.inspect(jpeg bytes)``: a normal frame (gate only) and a
  defective frame (``always_classify=True``: every stage but the overlay);
* throughput (frames/s) at a 5% defect rate over pre-decoded frames, as a camera delivers
  them, for several batch sizes / threads / processes;
* peak RSS and cold start in a fresh subprocess (import + ``Inspector.from_manifest`` +
  first result, wall time from process start);
* the arithmetic floor: ONNX MACs / this CPU's measured 1-thread float32 peak;
* ``--baseline keras``: the Keras reference design (``bench.keras_baseline``) in a subprocess;
* ``--tune``: session options / batching / precision micro-benchmarks behind the runtime's settings.

Frames: real images of the profile's own data set (the manifest's ``dataset``; NEU-DET for
neu-steel, 200x200) scored once by the gate: a "normal" frame is one it passes, a "defective"
frame one it flags; if the data set is missing, synthetic steel texture.
Writes ``results/benchmark.md`` (unless ``--no-write``); ``--json`` prints one JSON object.
The pieces: ``bench.frames`` (which frames), ``bench.throughput``, ``bench.tuning``, ``bench.report``
(Markdown and targets); latency, cold start, the floor and the Keras baseline are run from here.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from bench.frames import DEFECT_RATE, FRAME_SIDE, folder_images, mixed_stream, pick_frames, profile_images
from bench.report import markdown, stream, targets
from bench.stats import summary
from bench.throughput import throughput
from bench.tuning import head_input, tuning
from edge_runtime import Inspector
from edge_runtime.anomaly import GateOutput
from edge_runtime.classifier import window_around_peak
from edge_runtime.cli import positive_int, thread_count
from edge_runtime.errors import InspectionError
from edge_runtime.manifest import default_manifest_path, load_manifest
from edge_runtime.overlay import anomaly_heatmap, anomaly_overlay, heatmap_overlay
from edge_runtime.preprocess import checked_gray01, load_image, to_gray01

ROOT = Path(__file__).resolve().parents[1]
PC = time.perf_counter


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return sorted(f for f in flags if f in {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8",
                                                        "amx_bf16", "fma"})
    except OSError:
        pass
    return []


# ----------------------------------------------------------------------------- latency

def stage_latency(inspector: Inspector, data: bytes, iterations: int) -> dict:
    """Each stage of the defective path timed on its own, with the runtime's own components."""
    spec, scorer, classifier = inspector.config.preprocess, inspector.scorer, inspector.classifier
    names = ("decode", "preprocess", "autoencoder", "gate", "classifier", "gradcam", "overlay")
    times = {k: [] for k in names}
    check = None
    for i in range(iterations + 3):
        t0 = PC()
        image = load_image(data)
        t1 = PC()
        frame = checked_gray01(image, spec)[0]  # every frame check the runtime makes
        t2 = PC()
        padded, geometry = scorer.model_input(frame)
        raw = scorer.run_model(padded)
        t3 = PC()
        anomaly_map = scorer.map_from_cells(raw.cells[0], geometry, raw.frame_error(0), raw.residual_cells(0))
        inspector.thresholds.verdict(float(anomaly_map.max()))
        t4 = PC()
        window = window_around_peak(GateOutput(anomaly_map, float(anomaly_map.max()), raw.stem[0], geometry),
                                    inspector.config.stem_window)
        probabilities, features = classifier.classify([window.stem])
        t5 = PC()
        index = int(np.argmax(probabilities[0]))
        cam = window.cam_to_frame(classifier.gradcam(features[0], index))
        t6 = PC()
        heatmap_overlay(frame, anomaly_heatmap(anomaly_map, inspector.thresholds.defect))
        heatmap_overlay(frame, cam)
        t7 = PC()
        if i < 3:  # warm-up; check the re-timed gate against the runtime's own map once
            check = check if check is not None else float(np.abs(anomaly_map - scorer.anomaly_map(frame)).max())
            continue
        for name, a, b in zip(names, (t0, t1, t2, t3, t4, t5, t6), (t1, t2, t3, t4, t5, t6, t7)):
            times[name].append((b - a) * 1000.0)
    out = {k: summary(v) for k, v in times.items()}
    out["_gate_max_abs_diff_vs_runtime"] = check
    return out


def end_to_end(inspector: Inspector, data: bytes, iterations: int, classify: bool, overlay: bool = False) -> dict:
    for _ in range(3):
        inspector.inspect(data, always_classify=classify)
    times = []
    for _ in range(iterations):
        start = PC()
        result = inspector.inspect(data, always_classify=classify)
        if overlay:
            anomaly_overlay(result)
            if result.gradcam is not None:
                heatmap_overlay(result.frame, result.gradcam)
        times.append((PC() - start) * 1000.0)
    out = summary(times)
    out["classified"] = result.defect_class is not None
    return out


# ----------------------------------------------------------------------------- cold start / RSS

_COLD = r"""
import sys, time
t0 = time.perf_counter()
from edge_runtime import Inspector
t1 = time.perf_counter()
manifest, profile, precision, normal, defect = sys.argv[1:6]
inspector = Inspector.from_manifest(manifest, profile or None, 1, precision or None)
t2 = time.perf_counter()
inspector.inspect(open(normal, "rb").read())
t3 = time.perf_counter()
print("FIRST", t1 - t0, t2 - t1, t3 - t2, flush=True)
data = [open(normal, "rb").read(), open(defect, "rb").read()]
for i in range(40):
    inspector.inspect(data[i % 2], always_classify=True)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the (large) parent across fork.
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print("RSS", hwm_kb / 1024.0, flush=True)
"""


def cold_start(args, normal: Path, defect: Path, repeats: int) -> dict:
    """Wall time from process spawn to the first result (+ its split), and the runtime-only peak RSS."""
    runs = []
    for _ in range(repeats):
        start = PC()
        proc = subprocess.Popen([sys.executable, "-c", _COLD, str(args.manifest), args.profile or "",
                                 args.precision or "", str(normal), str(defect)],
                                cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        first = proc.stdout.readline().split()
        wall = PC() - start
        rss = float(proc.stdout.readline().split()[1])
        proc.wait()
        runs.append({"wall_s": wall, "import_s": float(first[1]), "load_s": float(first[2]),
                     "first_result_s": float(first[3]), "peak_rss_mb": rss})
    best = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
    return {"median_run": best, "wall_s_all": [round(r["wall_s"], 3) for r in runs]}


# ----------------------------------------------------------------------------- floor, baseline


def floor(inspector: Inspector, stages: dict, frame_shape: tuple[int, int]) -> dict:
    from bench.flops import count_macs, peak_gflops

    config = load_manifest(inspector.manifest_path)["profiles"][inspector.profile]
    root = inspector.manifest_path.resolve().parent
    frame = np.zeros(frame_shape, np.float32)
    ae_shape = (*inspector.scorer.model_input(frame)[0].shape, 1)
    macs = {"autoencoder": count_macs(root / config["autoencoder"]["path"], ae_shape),
            "classifier": count_macs(root / config["classifier"]["path"], head_input(inspector, frame).shape)}
    peak = peak_gflops(1)
    out = {"peak_gflops_1thread": peak["gflops"], "peak_method": f"float32 numpy matmul {peak['n']}^3, 1 thread"}
    for name in ("autoencoder", "classifier"):
        gflop = 2 * macs[name]["macs"] / 1e9
        floor_ms = gflop / peak["gflops"] * 1000.0
        # The stage runs the int8 file where the profile's precision picks one: a float32 peak does not bound it.
        precision = "int8" if inspector.precision == "int8" and "int8" in config[name] else "fp32"
        out[name] = {"precision": precision, "gflop": gflop, "macs_by_op": macs[name]["by_op"],
                     "input_shape": macs[name]["input_shape"],
                     "floor_ms": floor_ms, "measured_p50_ms": stages[name]["p50"],
                     "ratio_to_floor": stages[name]["p50"] / floor_ms,
                     "achieved_gflops": gflop / stages[name]["p50"] * 1000.0}
    return out


def keras_baseline(args, normal: Path, defect: Path) -> dict:
    cmd = [sys.executable, "-m", "bench.keras_baseline", "--manifest", str(args.manifest), "--threads",
           str(args.threads), "--iterations", str(args.keras_iterations), "--normal", str(normal),
           "--defect", str(defect), "--json"] + (["--profile", args.profile] if args.profile else [])
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- main

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.benchmark", description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--manifest", type=Path, default=None)
    p.add_argument("--profile", default=None)
    p.add_argument("--precision", choices=["fp32", "int8"], default=None, help="default: the manifest's")
    p.add_argument("--threads", type=thread_count, default=1, help="onnxruntime intra-op threads for latency (default 1)")
    p.add_argument("--iterations", type=positive_int, default=100, help="latency samples per measurement")
    p.add_argument("--frames", type=positive_int, default=400, help="frames per throughput configuration")
    p.add_argument("--batch-sizes", type=_sizes, default=None,
                   help="comma-separated, e.g. 1,8,32 (default 1,8,32; 1,8 with --quick)")
    p.add_argument("--candidates", type=positive_int, default=60,
                   help="images (of the profile's data set, or of --images) scored to find normal/defective frames")
    p.add_argument("--images", type=Path, default=None,
                   help="a folder of this line's own frames to pick the normal and defective frames from, instead "
                        "of the profile's data set (resized to 200x200 like every candidate)")
    p.add_argument("--cold-starts", type=_count, default=3, help="fresh-process cold starts (0 = skip)")
    p.add_argument("--baseline", choices=["keras"], default=None)
    p.add_argument("--keras-iterations", type=positive_int, default=20)
    p.add_argument("--tune", action="store_true", help="session option / batching / precision micro-benchmarks")
    p.add_argument("--no-floor", action="store_true", help="skip the FLOP count and CPU peak measurement")
    p.add_argument("--quick", action="store_true",
                   help="tiny run (tests): few samples, fewer configurations; explicit --batch-sizes are kept")
    p.add_argument("--output", type=Path, default=Path("results") / "benchmark.md",
                   help="the Markdown report (default: results/benchmark.md under the current folder)")
    p.add_argument("--no-write", action="store_true", help="do not write the Markdown report")
    return p


def _sizes(text: str) -> list[int]:
    try:
        return [positive_int(v) for v in text.split(",")]
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"batch sizes: {error}") from None


def _count(text: str) -> int:
    return 0 if text.strip() == "0" else positive_int(text)


def _writable(path: Path) -> None:
    """Stop before measuring, not after, when the report could not be written there."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a"):
            pass
    except OSError as error:
        raise SystemExit(f"benchmark: cannot write the report to {path}: {error}") from None


def _size_run(args: argparse.Namespace) -> None:
    """``--quick`` caps the sample counts; batch sizes given on the command line are kept."""
    if args.quick:
        args.iterations, args.frames = min(args.iterations, 8), min(args.frames, 40)
        args.candidates, args.cold_starts = min(args.candidates, 24), min(args.cold_starts, 1)
        args.keras_iterations = min(args.keras_iterations, 3)
    args.batch_sizes = args.batch_sizes or ([1, 8] if args.quick else [1, 8, 32])


def _without_onnx_package(args: argparse.Namespace) -> None:
    """A runtime-only install (a line PC) has onnxruntime but not the onnx package, which the FLOP count and
    the layout variant of ``--tune`` read graphs with: the floor is left out, saying so; ``--tune`` stops."""
    if importlib.util.find_spec("onnx") is not None:
        return
    if args.tune:
        raise SystemExit("benchmark: --tune needs the onnx package (pip install '.[dev]')")
    if not args.no_floor:
        print("benchmark: no arithmetic floor: it needs the onnx package (pip install '.[dev]'), which a "
              "runtime-only install leaves out", file=sys.stderr)
        args.no_floor = True


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    _size_run(args)
    _without_onnx_package(args)
    if not args.no_write:
        _writable(args.output)
    args.manifest = (args.manifest or default_manifest_path()).resolve()
    try:
        inspector = Inspector.from_manifest(args.manifest, args.profile, args.threads, args.precision)
    except InspectionError as error:
        raise SystemExit(f"benchmark: {error}") from None
    args.profile, args.precision = inspector.profile, inspector.precision
    images = folder_images(args.images) if args.images else profile_images(args.manifest, inspector.config.raw)
    frames = pick_frames(inspector, args.candidates, images)
    normal, defect = frames["normal"][len(frames["normal"]) // 2], frames["flagged"][0]

    report: dict = {
        "command": "python -m bench.benchmark " + shlex.join(argv),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "cpu": {"model": cpu_model(), "logical_cpus": os.cpu_count(), "flags": cpu_flags(),
                "load_average_at_start": [round(v, 2) for v in os.getloadavg()]},
        "versions": {"onnxruntime": ort.__version__, "numpy": np.__version__, "opencv": cv2.__version__,
                     "python": platform.python_version()},
        "profile": inspector.profile, "precision": inspector.precision, "threads": args.threads,
        "model_sha256": inspector.model_sha256,
        "thresholds": {"warn": inspector.thresholds.warn, "defect": inspector.thresholds.defect},
        "frames": {"normal": normal["name"], "normal_score": normal["score"], "defective": defect["name"],
                   "defective_score": defect["score"], "candidates_passed": len(frames["normal"]),
                   "candidates_flagged": len(frames["flagged"]), "size": [FRAME_SIDE, FRAME_SIDE]},
        "defect_rate": DEFECT_RATE,
    }
    report["stages_ms"] = stage_latency(inspector, defect["bytes"], args.iterations)
    report["end_to_end_ms"] = {
        "normal": end_to_end(inspector, normal["bytes"], args.iterations, False),
        "defective": end_to_end(inspector, defect["bytes"], args.iterations, True),
        "defective_with_overlay": end_to_end(inspector, defect["bytes"], args.iterations, True, overlay=True),
    }
    report["throughput"] = throughput(args, inspector, mixed_stream(frames, args.frames))
    with tempfile.TemporaryDirectory() as tmp:
        normal_path, defect_path = Path(tmp) / "normal.img", Path(tmp) / "defect.img"
        normal_path.write_bytes(normal["bytes"])
        defect_path.write_bytes(defect["bytes"])
        if args.cold_starts:
            report["cold_start"] = cold_start(args, normal_path, defect_path, args.cold_starts)
        if args.baseline == "keras":
            report["keras"] = keras_baseline(args, normal_path, defect_path)
    if not args.no_floor:
        report["floor"] = floor(inspector, report["stages_ms"], (FRAME_SIDE, FRAME_SIDE))
    if args.tune:
        report["tuning"] = tuning(inspector, to_gray01(defect["array"]), max(5, args.iterations // 4))
    report["peak_rss_mb_benchmark_process"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    report["stream_ms"] = stream(report)
    report["targets"] = targets(report)
    print(json.dumps(report) if args.json else markdown(report), flush=True)  # first: nothing measured is lost
    if not args.no_write:
        args.output.write_text(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
