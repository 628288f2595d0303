"""The benchmark report: the Markdown written to ``results/benchmark.md`` and the issue's targets, read
from the JSON report ``bench.benchmark`` builds."""

from __future__ import annotations

from bench.frames import DEFECT_RATE, FRAME_SIDE


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
    if r.get("stream_ms"):
        st = r["stream_ms"]
        lines += ["", f"## A stream at {st['defect_rate']:.0%} defects (mean per frame from the end-to-end p50s, ms)", "",
                  "| path | per frame | its time / ONNX |", "|---|---:|---:|",
                  f"| ONNX, gated as deployed | {_fmt(st['onnx'])} | 1.0 |",
                  f"| Keras, gated the same way (gate only on a passed frame) | {_fmt(st['keras_gated'])} | "
                  f"{_fmt(st['keras_gated'] / st['onnx'], 1)} |",
                  f"| Keras, both models and Grad-CAM on every frame | {_fmt(st['keras_every_frame'])} | "
                  f"{_fmt(st['keras_every_frame'] / st['onnx'], 1)} |", "",
                  "The rows are arithmetic on the measured p50s, not a timed stream. The gated Keras row compares the "
                  "two runtimes on the same work; the every-frame row also counts the classifier and Grad-CAM that "
                  "the gate saves."]
    if r.get("tuning"):
        lines += ["", "## Tuning (model-level medians, ms)", ""]
        for name, row in r["tuning"].items():
            lines.append(f"* {name}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in row.items()))
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for t in r["targets"]:
        lines.append(f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'no' if t['met'] is not None else '-'} |")
    return "\n".join(lines) + "\n"


def stream(r: dict) -> dict | None:
    """Mean time per frame of a stream at the benchmark's defect rate, from the end-to-end p50s: the ONNX
    path, a Keras path gated the same way, and a Keras path that runs both models and Grad-CAM on every frame."""
    keras = r.get("keras", {}).get("end_to_end_ms")
    if not keras:
        return None
    rate, e2e = r.get("defect_rate", DEFECT_RATE), r["end_to_end_ms"]
    mixed = lambda times: (1 - rate) * times["normal"]["p50"] + rate * times["defective"]["p50"]  # noqa: E731
    return {"defect_rate": rate, "onnx": mixed(e2e), "keras_gated": mixed(keras),
            "keras_every_frame": keras["defective"]["p50"]}


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
    if r.get("stream_ms"):
        st = r["stream_ms"]
        out.append({"target": f"for information: a stream at {st['defect_rate']:.0%} defects against Keras gated / "
                              "on every frame",
                    "measured": f"{st['keras_gated'] / st['onnx']:.1f}x / {st['keras_every_frame'] / st['onnx']:.1f}x",
                    "met": None})
    clf = r.get("tuning", {}).get("classifier", {})
    if "int8_speedup" in clf:
        out.append({"target": "int8 classifier >= 1.8x faster", "measured": f"{clf['int8_speedup']:.2f}x",
                    "met": clf["int8_speedup"] >= 1.8})
    return out

