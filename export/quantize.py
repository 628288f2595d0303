"""``python -m export.quantize --profile NAME``: int8 (static, QDQ, per-channel) models for one profile.

Reads the fp32 ONNX models that ``python -m export`` recorded in models.manifest.json,
calibrates activation ranges on training-split images prepared by edge_runtime's own
preprocessing (the classifier head sees the window of the fp32 gate's stem that
``DefectClassifier.classify`` gets; the autoencoder the reflect-padded frame ``AnomalyScorer`` feeds it), and writes
``models/<profile>/classifier.int8.onnx`` (and ``autoencoder.int8.onnx`` with
``--autoencoder``). Both classifier outputs are kept (probabilities, and the feature map
Grad-CAM needs, dequantised to float).

Then it measures what int8 costs: the test split goes through the whole pipeline with
``edge_runtime.evaluate`` (the code behind ``python -m edge_runtime evaluate``) at fp32
and at int8. The int8 entries are recorded next to the fp32 ones and the profile's
``precision`` is set to ``int8`` only when the classifier accuracy drops by at most
``--max-loss-pp`` points and the int8 head names the fp32 head's class on at least
``--min-class-agreement`` of the frames both classify (and, for the autoencoder, when it is
faster and keeps the gate's verdicts); otherwise the int8 files are not offered and precision
stays fp32.

Weights are quantised to 7 bits by default (``reduce_range``). A CPU without VNNI (AVX2 only) sums
pairs of 8-bit products in 16 bits and saturates with full-range weights, one with VNNI does not,
so the same int8 model gives different class probabilities on the two (0.11 on a golden frame,
enough to fail the self-test); with 7-bit weights no pair can saturate and both compute the same
integer sums, so the model, its accuracy and its golden frames hold on any x86 line PC
(onnxruntime's guidance for CPUs without VNNI). ``--full-range`` keeps 8-bit weights for a fleet
known to have VNNI.

Run it again after every ``python -m export`` (which rewrites the profile's entry).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from edge_runtime.anomaly import AnomalyScorer
from edge_runtime.classifier import window_around_peak
from edge_runtime.datasets import split_samples
from edge_runtime.errors import InspectionError
from edge_runtime.inspector import Inspector, session
from edge_runtime.manifest import MANIFEST_NAME, load_manifest, profile_config, write_manifest
from edge_runtime.preprocess import model_input, preprocess

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("export.quantize")

# Kept in float: the softmax (where rounding would move probabilities). The logits Gemm is quantised with the rest.
CLASSIFIER_FLOAT_OPS = ("Softmax",)
# Autoencoder: only the convolutional backbone is quantised; whitening, bottleneck and the squared
# error stay float (whitening amplifies small-variance directions, i.e. quantisation noise, up to 100x).
AUTOENCODER_INT8_OPS = ("Conv",)


class FrameReader(CalibrationDataReader):
    """Feeds preprocessed calibration inputs one at a time (batch 1, as the runtime mostly runs)."""

    def __init__(self, input_name: str, inputs: list[np.ndarray]) -> None:
        self._name, self._inputs, self._i = input_name, inputs, 0

    def get_next(self) -> dict | None:
        if self._i >= len(self._inputs):
            return None
        self._i += 1
        return {self._name: self._inputs[self._i - 1]}

    def rewind(self) -> None:
        self._i = 0


def calibration_samples(profile_name: str, entry: dict, count: int):
    """Up to ``count`` training-split samples, spread evenly over the (label-sorted) split."""
    from training.profiles import trained_profile

    profile = trained_profile(profile_name)
    split = entry["split"]
    train = split_samples(profile.load(), int(split["seed"]), tuple(split["fractions"]))["train"]
    train = sorted(train, key=lambda s: (str(s.label), s.path.name))
    step = max(1, len(train) // count)
    return train[::step][:count]


def _frames(samples, spec) -> list[np.ndarray]:
    frames = []
    for sample in samples:
        try:
            frames.append(preprocess(sample.path, spec))
        except InspectionError as error:
            log.warning("calibration: skipping %s: %s", sample.path, error)
    return frames


def classifier_inputs(frames, config) -> list[np.ndarray]:
    """What the runtime feeds the classifier head: the window of the fp32 gate's stem around the anomaly
    peak (``window_around_peak``, the manifest's ``stem_window``; same code path)."""
    scorer = AnomalyScorer.for_profile(session(config.autoencoder.path), config)
    return [window_around_peak(scorer.run(frame), config.stem_window).stem[None] for frame in frames]


def autoencoder_inputs(frames, config) -> list[np.ndarray]:
    """The padded frame ``AnomalyScorer.run`` feeds the autoencoder (same code path)."""
    return [model_input(frame, config.preprocess, config.input_multiple, config.pad_margin)[0][None, :, :, None]
            for frame in frames]


def quantize_model(source: Path, target: Path, inputs: list[np.ndarray], op_types: tuple[str, ...] | None,
                   exclude_op_types: tuple[str, ...], method: CalibrationMethod, activation: QuantType,
                   exclude_names: tuple[str, ...] = (), reduce_range: bool = True) -> Path:
    """Pre-process (shape inference + fusions), then static QDQ per-channel quantisation."""
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        model = onnx.load(str(prepared))
        exclude = [n.name for n in model.graph.node
                   if n.op_type in exclude_op_types or any(part in n.name for part in exclude_names)]
        name = model.graph.input[0].name
        quantize_static(
            str(prepared), str(target), FrameReader(name, inputs), quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(op_types) if op_types else None, per_channel=True, reduce_range=reduce_range,
            activation_type=activation, weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
            calibrate_method=method,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True,
                           "CalibTensorRangeSymmetric": False},
        )
    onnx.checker.check_model(str(target))
    return target


def time_model(path: Path, inputs: list[np.ndarray], runs: int = 40) -> float:
    """Median ms of one batch-1 run on 1 intra-op thread."""
    sess = session(path, 1)
    name = sess.get_inputs()[0].name
    for x in inputs[:3]:
        sess.run(None, {name: x})
    times = []
    for i in range(runs):
        x = inputs[i % len(inputs)]
        start = time.perf_counter()
        sess.run(None, {name: x})
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))


def evaluate_precision(manifest_path: Path, profile: str, precision: str, split: str) -> tuple[dict, list]:
    """The metrics ``python -m edge_runtime evaluate --split SPLIT`` reports, at one precision."""
    from edge_runtime.evaluate import evaluate
    from edge_runtime.evaluation_cases import build_cases

    inspector = Inspector.from_manifest(manifest_path, profile, precision=precision)
    entry = inspector.config.raw
    dataset = entry["dataset"]  # a new line's defect-free class folder is its normals, not a defect class
    cases, _ = build_cases(dataset["name"], Path(dataset["path"]), inspector, split, dataset.get("normal_class"), 0)
    metrics, rows = evaluate(inspector, cases, progress=False)
    return metrics, rows


def _both_inspected(fp32_rows: list, int8_rows: list) -> list[tuple]:
    """(fp32 result, int8 result) of each frame both precisions inspected without an error."""
    return [(a, b) for (_, a), (_, b) in zip(fp32_rows, int8_rows)
            if not isinstance(a, InspectionError) and not isinstance(b, InspectionError)]


def _agreement(fp32_rows: list, int8_rows: list, field: str) -> float:
    """Share of frames inspected by both precisions on which ``field`` of the result agrees."""
    return float(np.mean([getattr(a, field) == getattr(b, field) for a, b in _both_inspected(fp32_rows, int8_rows)]))


def _classified_agreement(fp32_rows: list, int8_rows: list) -> float:
    """Share of the frames both precisions classify on which they name the same class: how faithful a
    copy of the fp32 head the int8 one is (an unclassified frame would count as agreeing in
    ``_agreement``). ``evaluate`` classifies every frame, flagged or not, so over its rows this is the
    agreement on every frame both precisions inspected: stricter than on the flagged frames alone, the
    ones the line classifies."""
    same = [a.defect_class == b.defect_class for a, b in _both_inspected(fp32_rows, int8_rows)
            if a.defect_class is not None and b.defect_class is not None]
    return float(np.mean(same)) if same else 1.0


def quantize_profile(args) -> dict:
    from export.manifest_writer import model_entry

    manifest_path = args.manifest
    manifest = load_manifest(manifest_path)
    entry = manifest["profiles"][args.profile]
    for key in ("autoencoder", "classifier"):  # start from a clean fp32 entry
        entry[key].pop("int8", None)
    entry["precision"] = "fp32"
    if entry.pop("golden", None):  # recorded for the models being replaced
        log.warning("%s: the golden frames of the self-test are dropped: run python -m export.golden --profile %s "
                    "after this", args.profile, args.profile)
    write_manifest(manifest_path, manifest)
    config = profile_config(manifest, manifest_path, args.profile, "fp32")
    root = manifest_path.resolve().parent
    out = config.classifier.path.parent  # beside the fp32 models
    method = CalibrationMethod[args.calibration]
    activation = QuantType[args.activation_type]

    samples = calibration_samples(args.profile, entry, args.calibration_images)
    frames = _frames(samples, config.preprocess)
    log.info("calibrating on %d training-split frames (%s)", len(frames), method.name)
    report: dict = {"calibration": {"split": "train", "images": len(frames), "method": method.name,
                                    "float_nodes_matching": list(args.exclude),
                                    "activation_type": activation.name, "weight_type": "QInt8",
                                    "weight_bits": 8 if args.full_range else 7,
                                    "format": "QDQ", "per_channel": True}}

    clf_in = classifier_inputs(frames, config)
    clf_int8 = quantize_model(config.classifier.path, out / "classifier.int8.onnx", clf_in, None,
                              CLASSIFIER_FLOAT_OPS, method, activation, tuple(args.exclude), not args.full_range)
    report["classifier_ms"] = {"fp32": time_model(config.classifier.path, clf_in),
                               "int8": time_model(clf_int8, clf_in)}
    report["classifier_speedup"] = report["classifier_ms"]["fp32"] / report["classifier_ms"]["int8"]
    entry["classifier"]["int8"] = model_entry(clf_int8, root)
    log.info("classifier int8: %.2f ms -> %.2f ms (x%.2f)", report["classifier_ms"]["fp32"],
             report["classifier_ms"]["int8"], report["classifier_speedup"])

    if args.autoencoder:
        ae_in = autoencoder_inputs(frames, config)
        ae_int8 = quantize_model(config.autoencoder.path, out / "autoencoder.int8.onnx", ae_in,
                                 AUTOENCODER_INT8_OPS, (), method, activation, reduce_range=not args.full_range)
        report["autoencoder_ms"] = {"fp32": time_model(config.autoencoder.path, ae_in, 20),
                                    "int8": time_model(ae_int8, ae_in, 20)}
        report["autoencoder_speedup"] = report["autoencoder_ms"]["fp32"] / report["autoencoder_ms"]["int8"]
        entry["autoencoder"]["int8"] = model_entry(ae_int8, root)
        log.info("autoencoder int8: %.2f ms -> %.2f ms (x%.2f)", report["autoencoder_ms"]["fp32"],
                 report["autoencoder_ms"]["int8"], report["autoencoder_speedup"])
    write_manifest(manifest_path, manifest)

    fp32, fp32_rows = evaluate_precision(manifest_path, args.profile, "fp32", args.split)
    int8, int8_rows = evaluate_precision(manifest_path, args.profile, "int8", args.split)
    if args.autoencoder:
        agreement = _agreement(fp32_rows, int8_rows, "verdict")
        keep_ae = report["autoencoder_speedup"] >= 1.2 and agreement >= 0.99
        report.update(autoencoder_offered=keep_ae, autoencoder_verdict_agreement=agreement)
        if not keep_ae:  # the int8 head is then judged on the fp32 gate's stems, the ones it will get
            entry["autoencoder"].pop("int8")
            (out / "autoencoder.int8.onnx").unlink(missing_ok=True)
            write_manifest(manifest_path, manifest)
            int8, int8_rows = evaluate_precision(manifest_path, args.profile, "int8", args.split)
    keys = ("classifier_accuracy", "end_to_end_accuracy", "gate_recall", "image_auroc", "cam_pointing_game")
    report["evaluate"] = {"split": args.split, "fp32": {k: fp32.get(k) for k in keys},
                          "int8": {k: int8.get(k) for k in keys}}
    loss_pp = 100.0 * (fp32["classifier_accuracy"] - int8["classifier_accuracy"])
    report.update(accuracy_loss_pp=loss_pp, class_agreement=_agreement(fp32_rows, int8_rows, "defect_class"),
                  verdict_agreement=_agreement(fp32_rows, int8_rows, "verdict"), max_loss_pp=args.max_loss_pp)
    classified = _classified_agreement(fp32_rows, int8_rows)
    report.update(classified_class_agreement=classified, min_class_agreement=args.min_class_agreement)
    offered = loss_pp <= args.max_loss_pp and classified >= args.min_class_agreement
    report["offered"] = offered
    if offered:
        entry["precision"] = "int8"
    else:
        log.warning("int8 not offered, precision stays fp32: %s", "; ".join(_refusals(
            loss_pp, args.max_loss_pp, classified, args.min_class_agreement)))
        for key in ("autoencoder", "classifier"):
            entry[key].pop("int8", None)
            (out / f"{key}.int8.onnx").unlink(missing_ok=True)
    entry.setdefault("metrics", {})["int8"] = report
    write_manifest(manifest_path, manifest)
    return report


def _refusals(loss_pp: float, max_loss_pp: float, classified: float, min_agreement: float) -> list[str]:
    """The criteria the int8 head fails, each with its figure (never one it meets)."""
    reasons = []
    if loss_pp > max_loss_pp:
        reasons.append(f"it loses {loss_pp:.2f} pp classifier accuracy (at most {max_loss_pp:.2f} allowed)")
    if classified < min_agreement:
        reasons.append(f"it names fp32's class on {100 * classified:.1f}% of the frames both classify (every frame "
                       f"of the split, flagged or not; at least {100 * min_agreement:.1f}% needed)")
    return reasons


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.quantize", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="neu-steel")
    parser.add_argument("--manifest", type=Path, default=ROOT / MANIFEST_NAME)
    parser.add_argument("--calibration-images", type=int, default=200)
    parser.add_argument("--calibration", choices=[m.name for m in CalibrationMethod], default="MinMax")
    parser.add_argument("--activation-type", choices=["QUInt8", "QInt8"], default="QUInt8")
    parser.add_argument("--exclude", action="append", default=[], metavar="SUBSTRING",
                        help="keep classifier nodes whose name contains SUBSTRING in float (repeatable)")
    parser.add_argument("--full-range", action="store_true",
                        help="8-bit weights: faithful only on CPUs with VNNI (default: 7-bit, the same on every "
                        "x86 CPU)")
    parser.add_argument("--autoencoder", action="store_true", help="also quantise the autoencoder backbone")
    parser.add_argument("--split", default="test", help="split the accuracy loss is measured on (default test: the "
                        "acceptance rule the int8 issue states)")
    parser.add_argument("--max-loss-pp", type=float, default=0.5,
                        help="largest classifier accuracy loss (percentage points) int8 may cost")
    parser.add_argument("--min-class-agreement", type=float, default=0.95,
                        help="smallest share of the classified frames on which int8 must name fp32's class: a "
                        "small test split can hide a head that is no longer a copy of fp32 (default 0.95)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    report = quantize_profile(args)
    print(json.dumps({"profile": args.profile, **report}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
