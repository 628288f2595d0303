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
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from bench.stats import summary
from edge_runtime import Inspector, Verdict
from edge_runtime.anomaly import GateOutput
from edge_runtime.classifier import window_around_peak
from edge_runtime.datasets import DatasetError
from edge_runtime.evaluation_cases import load_samples
from edge_runtime.manifest import default_manifest_path, load_manifest
from edge_runtime.overlay import anomaly_heatmap, anomaly_overlay, heatmap_overlay
from edge_runtime.preprocess import load_image, to_gray01

ROOT = Path(__file__).resolve().parents[1]
FRAME_SIDE = 200
SYNTHETIC_PREFIX = "synthetic-"
DEFECT_RATE = 0.05
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


# ----------------------------------------------------------------------------- frames

def _synthetic(seed: int) -> bytes:
    from edge_runtime.capture.synthetic import steel_texture

    texture = np.clip(steel_texture(np.random.default_rng(seed), FRAME_SIDE), 0, 255).astype(np.uint8)
    return cv2.imencode(".png", texture)[1].tobytes()


def profile_images(manifest_path: Path, entry: dict) -> list[Path]:
    """The images of the data set the profile was trained on (manifest ``dataset``), masks left out;
    none where that folder is not on this machine."""
    dataset = entry.get("dataset") or {}
    folder = (manifest_path.parent / dataset.get("path", "")).resolve()
    if not dataset.get("name") or not folder.is_dir():
        return []
    try:
        return sorted(sample.path for sample in load_samples(dataset["name"], folder))
    except DatasetError:
        return []


def candidate_frames(count: int, images: list[Path]) -> list[tuple[str, bytes]]:
    """``count`` of the images (every class, evenly spread) plus a few synthetic textures, as encoded
    200x200 frames."""
    picked = images[:: max(1, len(images) // count)][:count] if images else []
    frames = [(p.name, p.read_bytes()) for p in picked]
    frames += [(f"{SYNTHETIC_PREFIX}{i}", _synthetic(i)) for i in range(max(4, count // 8))]
    out = []
    for name, data in frames:  # the frame size (NEU-DET's)
        image = load_image(data)
        if image.shape[:2] != (FRAME_SIDE, FRAME_SIDE):
            image = cv2.resize(image, (FRAME_SIDE, FRAME_SIDE), interpolation=cv2.INTER_AREA)
            data = cv2.imencode(".png", image)[1].tobytes()
        out.append((name, data))
    return out


def pick_frames(inspector: Inspector, count: int, images: list[Path]) -> dict:
    """Score the candidates once; split them into frames the gate passes and frames it flags."""
    normal, flagged = [], []
    for name, data in candidate_frames(count, images):
        result = inspector.inspect(data, source=name)
        item = {"name": name, "bytes": data, "array": load_image(data), "score": result.anomaly_score,
                "verdict": result.verdict.value}
        (normal if result.verdict is Verdict.OK else flagged).append(item)
    if not normal or not flagged:
        raise SystemExit(f"benchmark: need frames the gate passes and frames it flags; got {len(normal)} passed, "
                         f"{len(flagged)} flagged out of the candidates")
    normal.sort(key=lambda f: f["score"])
    # The defective frame: the highest-scoring real image (a synthetic strip only where there is none);
    # to another product's gate, the synthetic steel is the most anomalous frame of all.
    flagged.sort(key=lambda f: (f["name"].startswith(SYNTHETIC_PREFIX), -f["score"]))
    return {"normal": normal, "flagged": flagged}


def mixed_stream(frames: dict, n: int, defect_rate: float = DEFECT_RATE) -> list[np.ndarray]:
    """n decoded frames, every round(1/defect_rate)-th one a flagged frame, the rest passed frames."""
    period = round(1.0 / defect_rate)
    normal, flagged = frames["normal"], frames["flagged"]
    return [flagged[(i // period) % len(flagged)]["array"] if i % period == 0 else normal[i % len(normal)]["array"]
            for i in range(n)]


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
        frame = to_gray01(image, spec.min_side, spec.min_contrast, spec.min_mean_grey)
        t2 = PC()
        padded, geometry = scorer.model_input(frame)
        raw = scorer.run_model(padded)
        t3 = PC()
        anomaly_map = scorer.map_from_cells(raw.cells[0], geometry, raw.frame_error(0))
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


# ----------------------------------------------------------------------------- throughput

def _run_share(inspector: Inspector, frames: list[np.ndarray], batch: int, flagged: list) -> None:
    for start in range(0, len(frames), batch):
        results = inspector.inspect_batch(frames[start: start + batch])
        flagged.append(sum(1 for r in results if getattr(r, "verdict", None) is not Verdict.OK))


def throughput_threads(inspectors: list[Inspector], frames: list[np.ndarray], workers: int, batch: int) -> dict:
    """``workers`` Python threads, thread k using inspectors[k % len(inspectors)]."""
    flagged: list[int] = []
    _run_share(inspectors[0], frames[: 2 * batch], batch, [])  # warm-up
    shares = [frames[k::workers] for k in range(workers)]
    threads = [threading.Thread(target=_run_share, args=(inspectors[k % len(inspectors)], shares[k], batch, flagged))
               for k in range(workers)]
    start = PC()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = PC() - start
    return {"fps": len(frames) / elapsed, "frames": len(frames), "seconds": elapsed,
            "flag_rate": sum(flagged) / len(frames)}


def _process_worker(manifest, profile, precision, intra, frames, batch, barrier, queue) -> None:
    inspector = Inspector.from_manifest(manifest, profile, intra, precision)
    _run_share(inspector, frames[: 2 * batch], batch, [])
    flagged: list[int] = []
    barrier.wait()
    start = PC()
    _run_share(inspector, frames, batch, flagged)
    queue.put({"seconds": PC() - start, "flagged": sum(flagged),
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0})


def throughput_processes(args, frames: list[np.ndarray], processes: int, batch: int) -> dict:
    """``processes`` spawned processes, each with its own Inspector (1 intra-op thread each)."""
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(processes + 1), ctx.Queue()
    procs = [ctx.Process(target=_process_worker, args=(args.manifest, args.profile, args.precision, 1,
                                                       frames[k::processes], batch, barrier, queue))
             for k in range(processes)]
    for p in procs:
        p.start()
    barrier.wait()
    start = PC()
    reports = [queue.get() for _ in procs]
    elapsed = PC() - start
    for p in procs:
        p.join()
    return {"fps": len(frames) / elapsed, "frames": len(frames), "seconds": elapsed,
            "flag_rate": sum(r["flagged"] for r in reports) / len(frames),
            "worker_peak_rss_mb": [round(r["peak_rss_mb"], 1) for r in reports]}


def throughput(args, inspector: Inspector, frames: list[np.ndarray]) -> list[dict]:
    rows = []

    def add(label, threads, intra, batch, result):
        rows.append({"config": label, "callers": threads, "intra_op_threads": intra, "batch": batch, **result})

    for batch in args.batch_sizes:
        add(f"1 thread, batch {batch}", 1, 1, batch, throughput_threads([inspector], frames, 1, batch))
    big = max(args.batch_sizes)
    wide = Inspector.from_manifest(args.manifest, args.profile, 2, args.precision)
    add(f"1 thread, intra-op 2, batch {big}", 1, 2, big, throughput_threads([wide], frames, 1, big))
    del wide
    add(f"2 threads, one shared Inspector, batch {big}", 2, 1, big,
        throughput_threads([inspector], frames, 2, big))
    if not args.quick:
        second = Inspector.from_manifest(args.manifest, args.profile, 1, args.precision)
        add(f"2 threads, own Inspector each, batch {big}", 2, 1, big,
            throughput_threads([inspector, second], frames, 2, big))
        del second
        add(f"2 processes, own Inspector each, batch {big}", 2, 1, big,
            throughput_processes(args, frames, 2, big))
    return rows


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


# ----------------------------------------------------------------------------- floor, baseline, tuning

def head_input(inspector: Inspector, frame: np.ndarray) -> np.ndarray:
    """The stem window the classifier head gets for this frame, as deployed (1 x h x w x C)."""
    return window_around_peak(inspector.scorer.run(frame), inspector.config.stem_window).stem[None]


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


def _session(path: Path, intra: int, level, spinning: bool | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra
    options.inter_op_num_threads = 1
    options.graph_optimization_level = level
    if spinning is not None:
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _model_ms(sess: ort.InferenceSession, x: np.ndarray, runs: int) -> float:
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
        row = {f"opt_{k}_intra1": _model_ms(_session(path, 1, lvl), x, runs) for k, lvl in levels.items()}
        row["opt_all_intra2_spin"] = _model_ms(_session(path, 2, levels["all"], True), x, runs)
        row["opt_all_intra2_nospin"] = _model_ms(_session(path, 2, levels["all"], False), x, runs)
        nchw = nchw_variant(path)
        if nchw is not None:
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
            sess = ort.InferenceSession(nchw, options, providers=["CPUExecutionProvider"])
            row["opt_all_intra1_nchw_input"] = _model_ms(sess, np.ascontiguousarray(x.transpose(0, 3, 1, 2)), runs)
        batch = 8 if name == "classifier" else 4
        row[f"opt_all_intra1_batch{batch}_per_frame"] = _model_ms(
            _session(path, 1, levels["all"]), np.repeat(x, batch, 0), max(3, runs // 2)) / batch
        int8 = config[name].get("int8")
        if int8:
            row["int8_opt_all_intra1"] = _model_ms(_session(root / int8["path"], 1, levels["all"]), x, runs)
            row["int8_speedup"] = row["opt_all_intra1"] / row["int8_opt_all_intra1"]
        out[name] = row
    return out


# ----------------------------------------------------------------------------- report

def _fmt(v, digits=2):
    return "-" if v is None else f"{v:.{digits}f}"


def markdown(report: dict) -> str:
    r = report
    lines = [
        "# Edge runtime benchmark", "",
        f"* command: `{r['command']}`",
        f"* CPU: {r['cpu']['model']} ({r['cpu']['logical_cpus']} logical CPUs; {', '.join(r['cpu']['flags'])})",
        f"* onnxruntime {r['versions']['onnxruntime']}, numpy {r['versions']['numpy']}, "
        f"OpenCV {r['versions']['opencv']}, Python {r['versions']['python']}",
        f"* profile `{r['profile']}`, precision `{r['precision']}`, frames {FRAME_SIDE}x{FRAME_SIDE}; "
        f"intra-op threads {r['threads']}, inter-op 1, graph optimisation ORT_ENABLE_ALL",
        f"* frames: normal = `{r['frames']['normal']}` (score {_fmt(r['frames']['normal_score'], 4)}), "
        f"defective = `{r['frames']['defective']}` (score {_fmt(r['frames']['defective_score'], 4)}); "
        f"thresholds warn {_fmt(r['thresholds']['warn'], 4)} / defect {_fmt(r['thresholds']['defect'], 4)}",
        f"* run at {r['timestamp']}; load average at start {r['cpu']['load_average_at_start']} "
        "(the 2 cores are shared: other processes inflate the figures)", "",
        "## Per-stage latency (defective frame, ms)", "",
        "| stage | p50 | p90 | p99 |" + (" Keras p50 | Keras / ONNX |" if "keras" in r else ""),
        "|---|---:|---:|---:|" + ("---:|---:|" if "keras" in r else ""),
    ]
    keras_stages = r.get("keras", {}).get("stages_ms", {})
    for stage, s in r["stages_ms"].items():
        if stage.startswith("_"):
            continue
        row = f"| {stage} | {_fmt(s['p50'])} | {_fmt(s['p90'])} | {_fmt(s['p99'])} |"
        if "keras" in r:
            k = keras_stages.get(stage)
            row += f" {_fmt(k['p50']) if k else '-'} | {_fmt(k['p50'] / s['p50'], 1) if k else '-'} |"
        lines.append(row)
    lines += ["", "## End to end (`Inspector.inspect(jpeg bytes)`, ms)", "",
              "| frame | p50 | p90 | p99 | target p50 |" + (" Keras p50 | Keras / ONNX |" if "keras" in r else ""),
              "|---|---:|---:|---:|---:|" + ("---:|---:|" if "keras" in r else "")]
    targets = {"normal": 5.0, "defective": 15.0, "defective_with_overlay": None}
    for name, s in r["end_to_end_ms"].items():
        row = f"| {name} | {_fmt(s['p50'])} | {_fmt(s['p90'])} | {_fmt(s['p99'])} | {_fmt(targets.get(name), 0)} |"
        if "keras" in r:
            k = r["keras"].get("end_to_end_ms", {}).get(name)
            row += f" {_fmt(k['p50']) if k else '-'} | {_fmt(k['p50'] / s['p50'], 1) if k else '-'} |"
        lines.append(row)
    lines += ["", f"## Throughput at {DEFECT_RATE:.0%} defect rate (pre-decoded frames, frames/s)", "",
              "| configuration | frames/s | measured flag rate |", "|---|---:|---:|"]
    for row in r["throughput"]:
        lines.append(f"| {row['config']} | {_fmt(row['fps'], 1)} | {_fmt(100 * row['flag_rate'], 1)}% |")
    if r.get("cold_start"):
        c = r["cold_start"]["median_run"]
        lines += ["", "## Cold start and memory", "",
                  f"* cold start (spawn -> first result, median of {len(r['cold_start']['wall_s_all'])}): "
                  f"**{_fmt(c['wall_s'], 3)} s** (import {_fmt(c['import_s'], 3)} s, Inspector.from_manifest "
                  f"{_fmt(c['load_s'], 3)} s, first inspect {_fmt(c['first_result_s'], 3)} s); all runs "
                  f"{r['cold_start']['wall_s_all']}",
                  f"* peak RSS of a runtime-only process after 40 classified frames: **{_fmt(c['peak_rss_mb'], 1)} MB**",
                  f"* peak RSS of this benchmark process: {_fmt(r['peak_rss_mb_benchmark_process'], 1)} MB"]
    if r.get("floor"):
        f = r["floor"]
        lines += ["", "## Arithmetic floor", "",
                  f"Peak: {_fmt(f['peak_gflops_1thread'], 1)} GFLOP/s ({f['peak_method']}). FLOPs = 2 x MACs of "
                  "Conv/MatMul/Gemm nodes with shapes from an actual run. The floor is a float32 one: a stage "
                  "that runs an int8 model is timed as deployed and may beat it.", "",
                  "| model | input | GFLOP | floor ms | measured p50 ms | measured / floor | achieved GFLOP/s |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for name in ("autoencoder", "classifier"):
            m = f[name]
            label = name if m.get("precision", "fp32") == "fp32" else f"{name} ({m['precision']}, not bounded by it)"
            lines.append(f"| {label} | {m['input_shape']} | {_fmt(m['gflop'], 3)} | {_fmt(m['floor_ms'])} | "
                         f"{_fmt(m['measured_p50_ms'])} | {_fmt(m['ratio_to_floor'], 1)} | "
                         f"{_fmt(m['achieved_gflops'], 1)} |")
    if "keras" in r:
        k = r["keras"]
        lines += ["", "## Keras reference", "",
                  f"Per-image `model.predict` for both models + `tf.GradientTape` Grad-CAM, TensorFlow intra-op "
                  f"threads {r['threads']}, inter-op 1." +
                  (f" Error: {k['error']}" if "error" in k else
                   f" Peak RSS {_fmt(k['peak_rss_mb'], 0)} MB; load + first result {_fmt(k['load_and_first_result_s'], 1)} s.")]
    if r.get("tuning"):
        lines += ["", "## Tuning (model-level medians, ms)", ""]
        for name, row in r["tuning"].items():
            lines.append(f"* {name}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in row.items()))
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for t in r["targets"]:
        lines.append(f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'no' if t['met'] is not None else '-'} |")
    return "\n".join(lines) + "\n"


def targets(r: dict) -> list[dict]:
    e2e = r["end_to_end_ms"]
    best_fps = max(row["fps"] for row in r["throughput"])
    out = [
        {"target": "normal frame p50 <= 5 ms", "measured": f"{e2e['normal']['p50']:.2f} ms",
         "met": e2e["normal"]["p50"] <= 5.0},
        {"target": "defective frame p50 <= 15 ms", "measured": f"{e2e['defective']['p50']:.2f} ms",
         "met": e2e["defective"]["p50"] <= 15.0},
        {"target": ">= 300 frames/s on 2 cores at 5% defects", "measured": f"{best_fps:.1f} frames/s (best config)",
         "met": best_fps >= 300},
    ]
    if r.get("cold_start"):
        c = r["cold_start"]["median_run"]
        out += [{"target": "cold start < 1.5 s", "measured": f"{c['wall_s']:.2f} s", "met": c["wall_s"] < 1.5},
                {"target": "RSS < 300 MB", "measured": f"{c['peak_rss_mb']:.0f} MB", "met": c["peak_rss_mb"] < 300}]
    k = r.get("keras", {})
    if "end_to_end_ms" in k:
        ratios = {n: k["end_to_end_ms"][n]["p50"] / e2e[n]["p50"] for n in ("normal", "defective")}
        out.append({"target": "ONNX end to end >= 20x faster than Keras",
                    "measured": ", ".join(f"{n} {v:.1f}x" for n, v in ratios.items()),
                    "met": min(ratios.values()) >= 20})
    clf = r.get("tuning", {}).get("classifier", {})
    if "int8_speedup" in clf:
        out.append({"target": "int8 classifier >= 1.8x faster", "measured": f"{clf['int8_speedup']:.2f}x",
                    "met": clf["int8_speedup"] >= 1.8})
    return out


# ----------------------------------------------------------------------------- main

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.benchmark", description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--manifest", type=Path, default=None)
    p.add_argument("--profile", default=None)
    p.add_argument("--precision", choices=["fp32", "int8"], default=None, help="default: the manifest's")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads for latency (default 1)")
    p.add_argument("--iterations", type=int, default=100, help="latency samples per measurement")
    p.add_argument("--frames", type=int, default=400, help="frames per throughput configuration")
    p.add_argument("--batch-sizes", type=lambda s: [int(v) for v in s.split(",")], default=[1, 8, 32])
    p.add_argument("--candidates", type=int, default=60, help="images of the profile's data set scored to find normal/defective frames")
    p.add_argument("--cold-starts", type=int, default=3, help="fresh-process cold starts (0 = skip)")
    p.add_argument("--baseline", choices=["keras"], default=None)
    p.add_argument("--keras-iterations", type=int, default=20)
    p.add_argument("--tune", action="store_true", help="session option / batching / precision micro-benchmarks")
    p.add_argument("--no-floor", action="store_true", help="skip the FLOP count and CPU peak measurement")
    p.add_argument("--quick", action="store_true", help="tiny run (tests): few samples, fewer configurations")
    p.add_argument("--output", type=Path, default=ROOT / "results" / "benchmark.md")
    p.add_argument("--no-write", action="store_true", help="do not write the Markdown report")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.quick:
        args.iterations, args.frames, args.batch_sizes = min(args.iterations, 8), min(args.frames, 40), [1, 8]
        args.candidates, args.cold_starts = min(args.candidates, 24), min(args.cold_starts, 1)
        args.keras_iterations = min(args.keras_iterations, 3)
    args.manifest = (args.manifest or default_manifest_path()).resolve()
    inspector = Inspector.from_manifest(args.manifest, args.profile, args.threads, args.precision)
    args.profile, args.precision = inspector.profile, inspector.precision
    frames = pick_frames(inspector, args.candidates, profile_images(args.manifest, inspector.config.raw))
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
    report["targets"] = targets(report)
    if not args.no_write:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(markdown(report))
    print(json.dumps(report) if args.json else markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
