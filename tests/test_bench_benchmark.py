"""bench.benchmark / bench.flops and the manifest's precision switch.

Most tests run on two tiny hand-built ONNX graphs with the runtime's interfaces (an
autoencoder-shaped and a classifier-shaped one), so they need neither trained models nor
TensorFlow; one runs the benchmark on the real models when they exist. No timing asserts.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import MANIFEST, NEU, ROOT, needs_models, needs_tile

onnx = pytest.importorskip("onnx", reason="onnx not installed (dev extra) - needed to build the tiny test graphs")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edge_runtime.errors import ManifestError, ModelIntegrityError  # noqa: E402
from edge_runtime.manifest import sha256_of  # noqa: E402
from edge_runtime.preprocess import PreprocessSpec  # noqa: E402

CLASSES = ["a", "b", "c"]


def _save(nodes, inputs, outputs, weights, path):
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _tiny_models(folder, seed=0):
    """autoencoder: image NHWC -> stride-8 error map; classifier: 224x224 -> (probabilities, 7x7xK features)."""
    rng = np.random.default_rng(seed)
    w = lambda name, shape, s: numpy_helper.from_array(rng.normal(0, s, shape).astype(np.float32), name)  # noqa: E731
    image = lambda shape: helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)  # noqa: E731
    _save([helper.make_node("Transpose", ["image"], ["x"], perm=[0, 3, 1, 2]),
           helper.make_node("Conv", ["x", "W1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
           helper.make_node("Relu", ["c1"], ["r1"]),
           helper.make_node("Conv", ["r1", "W2"], ["c2"], strides=[4, 4], pads=[1, 1, 1, 1]),
           helper.make_node("Mul", ["c2", "c2"], ["sq"]),
           helper.make_node("ReduceMean", ["sq"], ["m"], keepdims=1, axes=[1]),
           helper.make_node("Transpose", ["m"], ["error_map"], perm=[0, 2, 3, 1]),
           helper.make_node("Transpose", ["c2"], ["stem"], perm=[0, 2, 3, 1])],
          [image([None, None, None, 1])],
          [helper.make_tensor_value_info("error_map", TensorProto.FLOAT, [None, None, None, 1]),
           helper.make_tensor_value_info("stem", TensorProto.FLOAT, [None, None, None, 16])],
          [w("W1", (8, 1, 3, 3), 0.3), w("W2", (16, 8, 3, 3), 0.1)], folder / "autoencoder.onnx")
    kernel = rng.normal(0, 0.3, (16, len(CLASSES))).astype(np.float32)
    stem = helper.make_tensor_value_info("stem", TensorProto.FLOAT, [None, None, None, 16])
    _save([helper.make_node("Transpose", ["stem"], ["x"], perm=[0, 3, 1, 2]),
           helper.make_node("Conv", ["x", "W3"], ["c3"], strides=[4, 4], pads=[1, 1, 1, 1]),
           helper.make_node("Relu", ["c3"], ["r3"]),
           helper.make_node("Transpose", ["r3"], ["features"], perm=[0, 2, 3, 1]),
           helper.make_node("GlobalAveragePool", ["r3"], ["gap"]),
           helper.make_node("Flatten", ["gap"], ["flat"]),
           helper.make_node("MatMul", ["flat", "K"], ["logits"]),
           helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1)],
          [stem],
          [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, len(CLASSES)]),
           helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, None, None, 16])],
          [w("W3", (16, 16, 3, 3), 0.1), numpy_helper.from_array(kernel, "K")],
          folder / "classifier.onnx")
    np.savez(folder / "classifier_head.npz", kernel=kernel, bias=np.zeros(len(CLASSES), np.float32))


def _entry(path, root):
    return {"path": path.relative_to(root).as_posix(), "sha256": sha256_of(path)}


@pytest.fixture(scope="module")
def tiny_manifest(tmp_path_factory):
    """A manifest over the tiny graphs (+ a copy of the classifier as its 'int8' file), thresholds set so
    that some benchmark candidate frames pass the gate and some are flagged."""
    root = tmp_path_factory.mktemp("tiny")
    models = root / "models" / "tiny"
    models.mkdir(parents=True)
    _tiny_models(models)
    (models / "classifier.int8.onnx").write_bytes((models / "classifier.onnx").read_bytes())
    entry = {
        "preprocessing": PreprocessSpec().to_dict(), "class_names": CLASSES,
        "autoencoder": {**_entry(models / "autoencoder.onnx", root), "feature_stride": 8, "input_multiple": 16,
                        "score": {"reduce": "max", "sigma_cells": 1.0}},
        "classifier": {**_entry(models / "classifier.onnx", root), "head": _entry(models / "classifier_head.npz", root),
                       "int8": _entry(models / "classifier.int8.onnx", root)},
        "thresholds": {"warn": 1e9, "defect": 1e9},
        "dataset": {"name": "neu-det", "path": str(NEU)},  # absolute: candidate frames where the data is here
    }
    path = root / "models.manifest.json"
    path.write_text(json.dumps({"schema_version": 1, "default_profile": "tiny", "profiles": {"tiny": entry}}))
    from bench.frames import candidate_frames, profile_images
    from edge_runtime import Inspector

    inspector = Inspector.from_manifest(path)
    scores = [inspector.inspect(data).anomaly_score for _, data in candidate_frames(16, profile_images(path, entry))]
    entry["thresholds"] = {"warn": float(np.quantile(scores, 0.6)), "defect": float(np.quantile(scores, 0.7))}
    path.write_text(json.dumps({"schema_version": 1, "default_profile": "tiny", "profiles": {"tiny": entry}}))
    return path


def test_summary_percentiles_are_ordered():
    from bench.stats import summary

    s = summary(np.arange(1, 101, dtype=float))
    assert s["p50"] == pytest.approx(50.5) and s["p99"] == pytest.approx(99.01)
    assert s["min"] <= s["p50"] <= s["p90"] <= s["p99"] and s["n"] == 100


def test_stream_mixes_the_end_to_end_p50s_at_the_defect_rate():
    from bench.report import stream, targets

    report = {"defect_rate": 0.05, "throughput": [{"fps": 100.0}],
              "end_to_end_ms": {"normal": {"p50": 4.0}, "defective": {"p50": 10.0}}}
    assert stream(report) is None  # no Keras reference, nothing to compare
    report["keras"] = {"end_to_end_ms": {"normal": {"p50": 40.0}, "defective": {"p50": 200.0}}}
    mixed = stream(report)
    assert mixed["onnx"] == pytest.approx(0.95 * 4 + 0.05 * 10)
    assert mixed["keras_gated"] == pytest.approx(0.95 * 40 + 0.05 * 200)
    assert mixed["keras_every_frame"] == 200.0
    report["stream_ms"] = mixed
    rows = {t["target"]: t for t in targets(report)}
    assert rows["ONNX end to end >= 20x faster than Keras"]["met"] is False  # 10x on the normal frame
    information = [t for t in rows.values() if "stream" in t["target"]]
    assert len(information) == 1 and information[0]["met"] is None  # read beside the target, never counted as met


def test_mac_count_matches_hand_arithmetic(tiny_manifest):
    from bench.flops import count_macs

    models = tiny_manifest.parent / "models" / "tiny"
    ae = count_macs(models / "autoencoder.onnx", (1, 208, 208, 1))
    # conv1: 8 x 104 x 104 outputs x (1*3*3); conv2: 16 x 26 x 26 outputs x (8*3*3)
    assert ae["by_op"]["Conv"] == 8 * 104 * 104 * 9 + 16 * 26 * 26 * 72
    clf = count_macs(models / "classifier.onnx", (2, 26, 26, 16))  # the gate's stem for that frame
    # batch 2: conv3 16x7x7x(16*9), MatMul 3 outputs x 16
    assert clf["macs"] == 2 * (16 * 7 * 7 * 144 + 3 * 16)


def test_precision_switch_loads_the_int8_file_and_verifies_it(tiny_manifest, tmp_path):
    from edge_runtime import Inspector

    fp32 = Inspector.from_manifest(tiny_manifest)
    int8 = Inspector.from_manifest(tiny_manifest, precision="int8")
    assert fp32.precision == "fp32" and int8.precision == "int8"
    assert int8.config.classifier.path.name == "classifier.int8.onnx"
    assert int8.config.autoencoder.path == fp32.config.autoencoder.path  # no int8 autoencoder: fp32 one
    manifest = json.loads(tiny_manifest.read_text())
    manifest["profiles"]["tiny"]["precision"] = "int8"
    copy = tiny_manifest.with_name("int8.manifest.json")
    copy.write_text(json.dumps(manifest))
    assert Inspector.from_manifest(copy).precision == "int8"
    assert Inspector.from_manifest(copy, precision="fp32").config.classifier.path.name == "classifier.onnx"
    manifest["profiles"]["tiny"]["classifier"]["int8"]["sha256"] = "0" * 64
    copy.write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError):
        Inspector.from_manifest(copy)
    manifest["profiles"]["tiny"]["classifier"].pop("int8")
    copy.write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="no int8 classifier"):
        Inspector.from_manifest(copy)
    manifest["profiles"]["tiny"]["precision"] = "fp16"
    copy.write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="precision"):
        Inspector.from_manifest(copy)


def _run_benchmark(manifest, *extra):
    cmd = [sys.executable, "-m", "bench.benchmark", "--json", "--quick", "--no-write", "--manifest", str(manifest),
           *extra]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _check_report(report):
    stages = {"decode", "preprocess", "autoencoder", "gate", "classifier", "gradcam", "overlay"}
    assert stages <= set(report["stages_ms"])
    for name in stages:
        s = report["stages_ms"][name]
        assert 0 <= s["min"] <= s["p50"] <= s["p90"] <= s["p99"]
    assert report["stages_ms"]["_gate_max_abs_diff_vs_runtime"] < 1e-5
    e2e = report["end_to_end_ms"]
    assert not e2e["normal"]["classified"] and e2e["defective"]["classified"]
    assert 0 < e2e["normal"]["p50"] and 0 < e2e["defective"]["p50"]
    assert report["throughput"] and all(row["fps"] > 0 for row in report["throughput"])
    # 5% of the stream are flagged frames, the rest frames the gate passed during selection
    assert all(row["flag_rate"] == pytest.approx(0.05, abs=0.03) for row in report["throughput"])
    cold = report["cold_start"]["median_run"]
    assert cold["wall_s"] > cold["load_s"] > 0 and cold["peak_rss_mb"] > 10
    assert report["cpu"]["model"] and report["command"].startswith("python -m bench.benchmark")
    assert {t["target"] for t in report["targets"]} >= {"normal frame p50 <= 5 ms", "RSS < 300 MB"}


def test_benchmark_json_on_tiny_models(tiny_manifest, tmp_path):
    report = _run_benchmark(tiny_manifest, "--tune")
    _check_report(report)
    assert report["profile"] == "tiny" and report["precision"] == "fp32"
    floor = report["floor"]
    assert floor["peak_gflops_1thread"] > 0 and floor["autoencoder"]["floor_ms"] > 0
    assert floor["autoencoder"]["ratio_to_floor"] > 0
    assert "int8_speedup" in report["tuning"]["classifier"]


def test_benchmark_writes_markdown(tiny_manifest, tmp_path):
    out = tmp_path / "bench.md"
    cmd = [sys.executable, "-m", "bench.benchmark", "--quick", "--no-floor", "--cold-starts", "0",
           "--manifest", str(tiny_manifest), "--output", str(out)]
    subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=True)
    text = out.read_text()
    assert "| autoencoder |" in text and "frames/s" in text and "CPU:" in text and "intra-op threads 1" in text


@pytest.mark.slow
@needs_models
def test_benchmark_json_on_real_models():
    report = _run_benchmark(MANIFEST, "--no-floor")
    _check_report(report)


@needs_models
@needs_tile
def test_benchmark_candidates_come_from_the_profiles_own_data_set_without_masks(tmp_path):
    from bench.frames import profile_images
    from edge_runtime.manifest import load_manifest

    tile = load_manifest(MANIFEST)["profiles"]["magnetic-tile"]
    images = profile_images(MANIFEST, tile)
    assert len(images) > 500 and all(p.suffix == ".jpg" for p in images)  # the PNG masks are not frames
    assert {p.parent.parent.name for p in images} >= {"MT_Free", "MT_Crack", "MT_Uneven"}
    assert profile_images(tmp_path / "models.manifest.json", {**tile, "dataset": {"name": "magnetic-tile",
                                                                                  "path": "nowhere"}}) == []


@needs_models
def test_without_a_data_set_the_defective_frame_is_synthetic_strip_with_a_painted_defect():
    """A line PC has no data set: the benchmark still finds a frame the deployed gate passes (clean synthetic
    strip) and frames it flags (the same strip with painted defects), so it runs anywhere."""
    from bench.frames import SYNTHETIC_PREFIX, pick_frames
    from edge_runtime import Inspector
    from edge_runtime.capture.synthetic import DEFECT_KINDS

    frames = pick_frames(Inspector.from_manifest(MANIFEST, "neu-steel"), 24, [])
    assert frames["normal"] and all(f["verdict"] == "ok" for f in frames["normal"])
    assert frames["flagged"] and all(f["verdict"] != "ok" for f in frames["flagged"])
    painted = {f["name"].removeprefix(SYNTHETIC_PREFIX).rsplit("-", 1)[0] for f in frames["flagged"]}
    assert painted <= set(DEFECT_KINDS) and len(painted) >= 3


def test_benchmark_images_option_reads_a_folder_of_the_line_s_frames_and_skips_masks_and_unreadable_files(tmp_path):
    import cv2

    from bench.frames import candidate_frames, folder_images
    from edge_runtime.capture.synthetic import synthetic_frame

    line = tmp_path / "line" / "shift1"
    line.mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(line / f"good_{i}.jpg"), synthetic_frame(np.random.default_rng(i), None, 320))
    cv2.imwrite(str(line / "good_0.png"), np.zeros((320, 320), np.uint8))  # good_0.jpg's pixel mask
    (line / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    images = folder_images(tmp_path / "line")
    assert sorted(p.name for p in images) == ["broken.png", "good_0.jpg", "good_1.jpg", "good_2.jpg"]
    frames = dict(candidate_frames(8, images))
    assert "broken.png" not in frames and {"good_0.jpg", "good_1.jpg", "good_2.jpg"} <= set(frames)
    assert all(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED).shape[:2] == (200, 200)
               for data in frames.values())
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no image files"):
        folder_images(tmp_path / "empty")
    with pytest.raises(SystemExit, match="not a folder"):
        folder_images(tmp_path / "nowhere")
    with pytest.raises(SystemExit, match="none of the 1 images picked could be read"):
        candidate_frames(8, [line / "broken.png"])  # not a quiet run on synthetic frames instead


@pytest.mark.parametrize("args,message", [
    (["--iterations", "0"], "must be 1 or more"), (["--frames", "-5"], "must be 1 or more"),
    (["--batch-sizes", "8,-4"], "batch sizes: must be 1 or more"), (["--cold-starts", "-1"], "must be 1 or more"),
    (["--threads", "10000"], "this PC's cores"), (["--candidates", "0"], "must be 1 or more"),
])
def test_benchmark_arguments_that_would_give_a_false_figure_or_fail_late_are_refused(args, message, capsys):
    from bench.benchmark import main

    with pytest.raises(SystemExit) as stopped:
        main(["--no-write", *args])
    assert stopped.value.code == 2 and message in capsys.readouterr().err


def test_a_report_that_could_not_be_written_stops_the_benchmark_before_it_measures(tmp_path, capsys):
    from bench.benchmark import main

    (tmp_path / "file").write_text("a file where the report's folder should be")
    with pytest.raises(SystemExit, match="cannot write the report"):
        main(["--output", str(tmp_path / "file" / "benchmark.md")])


@pytest.mark.parametrize("args,sizes,iterations", [
    ([], [1, 8, 32], 100), (["--quick"], [1, 8], 8), (["--quick", "--batch-sizes", "2,4"], [2, 4], 8),
    (["--batch-sizes", "16"], [16], 100),
])
def test_quick_caps_the_sample_counts_but_keeps_batch_sizes_given_on_the_command_line(args, sizes, iterations):
    from bench.benchmark import _size_run, build_parser

    parsed = build_parser().parse_args(args)
    _size_run(parsed)
    assert parsed.batch_sizes == sizes and parsed.iterations == iterations
