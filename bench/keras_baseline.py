"""The Keras reference design the ONNX runtime is compared with (needs TensorFlow).

The same two models, built from the training code and the committed Keras weights in
``models/<profile>/keras/``, run the way a straightforward TensorFlow implementation
would: one ``model.predict`` per image for the autoencoder and for the classifier, and a
``tf.GradientTape`` Grad-CAM (forward pass + gradient of the class logit with respect to
the last feature map). Decoding, preprocessing and the gate's map post-processing are
the runtime's own code, so only the model side differs.

    python -m bench.keras_baseline --normal FRAME --defect FRAME [--threads 1] [--iterations 20] --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench.stats import summary  # noqa: E402
from edge_runtime.anomaly import AnomalyScorer  # noqa: E402
from edge_runtime.manifest import default_manifest_path, load_manifest, profile_config  # noqa: E402
from edge_runtime.preprocess import model_input, preprocess  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class KerasReference:
    def __init__(self, manifest_path: Path, profile: str | None, threads: int) -> None:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        import keras

        from training.backbone import profile_backbone
        from training.classifier import build_classifier
        from training.keras_session import KerasSession
        from training.train_autoencoder import load_anomaly_model

        self.tf = tf
        self.config = profile_config(load_manifest(manifest_path), manifest_path, profile, "fp32")
        weights = ROOT / "models" / self.config.name / "keras"
        _, self.full = build_classifier(len(self.config.class_names), base=profile_backbone(weights))
        self.full.load_weights(weights / "classifier.weights.h5")
        self.classifier = keras.Model(self.full.input, self.full.outputs[0])
        self.anomaly = load_anomaly_model(weights, with_stem=False)
        self.scorer = AnomalyScorer.for_profile(KerasSession(self.anomaly, predict=True), self.config)

    def gradcam(self, x: np.ndarray, class_index: int) -> np.ndarray:
        tf = self.tf
        with tf.GradientTape() as tape:
            _, features, logits = self.full(x, training=False)
            score = logits[:, class_index]
        grads = tape.gradient(score, features)
        weights = tf.reduce_mean(grads, axis=(1, 2))
        cam = tf.nn.relu(tf.reduce_sum(features * weights[:, None, None, :], axis=-1))[0].numpy()
        peak = cam.max()
        return cam / peak if peak > 0 else cam

    def inspect(self, data: bytes, classify: bool) -> dict:
        """One frame, timed per stage (ms)."""
        t = [time.perf_counter()]
        frame = preprocess(data, self.config.preprocess)
        t.append(time.perf_counter())
        anomaly_map = self.scorer.anomaly_map(frame)
        verdict = self.config.thresholds.verdict(float(anomaly_map.max()))
        t.append(time.perf_counter())
        stages = {"preprocess": t[1] - t[0], "autoencoder": t[2] - t[1]}
        if classify or verdict.value != "ok":
            padded, geometry = model_input(frame, self.config.preprocess, self.config.input_multiple,
                                           self.config.pad_margin)
            x = padded[None, :, :, None]
            probabilities = self.classifier.predict(x, verbose=0)[0]
            t.append(time.perf_counter())
            geometry.to_frame(self.gradcam(x, int(np.argmax(probabilities))), stride=32)  # MobileNetV2's output stride
            t.append(time.perf_counter())
            stages.update(classifier=t[3] - t[2], gradcam=t[4] - t[3])
        stages["total"] = t[-1] - t[0]
        return {k: v * 1000.0 for k, v in stages.items()}


def run(manifest_path: Path, profile: str | None, threads: int, normal: bytes, defect: bytes,
        iterations: int, warmup: int = 3) -> dict:
    start = time.perf_counter()
    reference = KerasReference(manifest_path, profile, threads)
    reference.inspect(defect, True)
    load_s = time.perf_counter() - start
    for _ in range(warmup):
        reference.inspect(normal, False)
        reference.inspect(defect, True)
    normal_runs = [reference.inspect(normal, False) for _ in range(iterations)]
    defect_runs = [reference.inspect(defect, True) for _ in range(iterations)]
    import resource

    return {
        "threads": threads, "iterations": iterations, "load_and_first_result_s": load_s,
        "stages_ms": {k: summary([r[k] for r in defect_runs])
                      for k in ("preprocess", "autoencoder", "classifier", "gradcam")},
        "end_to_end_ms": {"normal": summary([r["total"] for r in normal_runs]),
                          "defective": summary([r["total"] for r in defect_runs])},
        "normal_frame_classified": any("classifier" in r for r in normal_runs),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.keras_baseline", description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=None)
    parser.add_argument("--profile", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--normal", type=Path, required=True, help="encoded frame the gate passes")
    parser.add_argument("--defect", type=Path, required=True, help="encoded frame the gate flags")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    path = args.manifest or default_manifest_path()
    result = run(path, args.profile, args.threads, args.normal.read_bytes(), args.defect.read_bytes(),
                 args.iterations)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
