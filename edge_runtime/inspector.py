"""The inspection engine: onnxruntime only, built from models.manifest.json.

frame -> autoencoder error map -> anomaly score -> verdict; only when the gate fires
(warn or defect) does the classifier see the region around the anomaly peak, and
Grad-CAM is computed from its exposed feature map.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import onnxruntime as ort

from .anomaly import AnomalyScorer
from .classifier import DefectClassifier
from .errors import InspectionError, ModelLoadError
from .manifest import ProfileConfig, default_manifest_path, load_manifest, profile_config
from .preprocess import ImageSource, preprocess
from .result import InspectionResult, Region, Thresholds, Verdict


def session(path: Path, intra_op_threads: int = 1) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own untyped errors
        raise ModelLoadError(f"could not load model {path.name}: {error}") from error


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


class Inspector:
    """Inspects frames with the models of one manifest profile. Thread-safe for ``inspect``."""

    def __init__(self, config: ProfileConfig, manifest_path: Path, intra_op_threads: int = 1) -> None:
        self.config = config
        self.manifest_path = manifest_path
        self.profile = config.name
        self.precision = config.precision
        self.class_names = list(config.class_names)
        self.thresholds: Thresholds = config.thresholds
        self.model_sha256 = {"autoencoder": config.autoencoder.sha256, "classifier": config.classifier.sha256}
        self.scorer = AnomalyScorer.for_profile(session(config.autoencoder.verify(), intra_op_threads), config)
        with np.load(config.classifier_head.verify()) as head:
            kernel = head["kernel"]
        self.classifier = DefectClassifier(session(config.classifier.verify(), intra_op_threads), kernel,
                                           config.preprocess)

    @classmethod
    def from_manifest(
        cls, manifest_path: str | Path | None = None, profile: str | None = None, intra_op_threads: int = 1,
        precision: str | None = None,
    ) -> "Inspector":
        """``precision`` "fp32" / "int8" overrides the profile's manifest setting (None = the manifest's)."""
        path = Path(manifest_path) if manifest_path is not None else default_manifest_path()
        return cls(profile_config(load_manifest(path), path, profile, precision), path, intra_op_threads)

    def inspect(self, image: ImageSource, source: str | None = None, always_classify: bool = False) -> InspectionResult:
        """Inspect one frame. Raises an ``InspectionError`` subclass for anything that cannot be inspected.

        ``always_classify`` runs the classifier even when the gate passes the frame (for
        evaluation and for an operator who asks); the verdict is the gate's either way.
        """
        result = self.inspect_batch([image], [source], always_classify)[0]
        if isinstance(result, InspectionError):
            raise result
        return result

    def inspect_batch(
        self, images: Sequence[ImageSource], sources: Sequence[str | None] | None = None,
        always_classify: bool = False,
    ) -> list[InspectionResult | InspectionError]:
        """Inspect many frames, batching the classifier call; bad frames come back as their error, in place."""
        sources = list(sources) if sources is not None else [None] * len(images)
        if len(sources) != len(images):
            raise ValueError("inspect_batch: images and sources differ in length")
        if not sources:
            return []
        for i, image in enumerate(images):
            if sources[i] is None and isinstance(image, (str, Path)):
                sources[i] = str(image)
        stages = [self._prepare(image) for image in images]
        self._gate([s for s in stages if not isinstance(s, InspectionError)])
        stages = [s["error"] if isinstance(s, dict) and "error" in s else s for s in stages]
        flagged = [i for i, s in enumerate(stages) if not isinstance(s, InspectionError)
                   and (always_classify or s["verdict"] is not Verdict.OK)]
        if flagged:
            self._classify([stages[i] for i in flagged])
        return [s if isinstance(s, InspectionError) else self._result(s, src) for s, src in zip(stages, sources)]

    def _prepare(self, image: ImageSource) -> dict | InspectionError:
        start = time.perf_counter()
        try:
            frame = preprocess(image, self.config.preprocess)
        except InspectionError as error:
            return error
        return {"frame": frame, "start": start, "timings": {"preprocess": _ms(start)}}

    def _gate(self, stages: list[dict]) -> None:
        """Autoencoder over each frame. One call per frame: batching it gave no measurable gain
        per frame on the CPU (results/benchmark.md, tuning)."""
        for stage in stages:
            start = time.perf_counter()
            anomaly_map = self.scorer.anomaly_map(stage["frame"])
            score = float(anomaly_map.max())
            stage["timings"]["autoencoder"] = _ms(start)
            if not np.isfinite(score):  # a NaN would compare as "below every threshold", i.e. ok
                stage["error"] = InspectionError("the anomaly model returned an invalid (non-finite) score; "
                                                 "frame not inspected")
                continue
            stage.update(anomaly_map=anomaly_map, score=score, verdict=self.thresholds.verdict(score))

    def _region(self, frame: np.ndarray, anomaly_map: np.ndarray) -> Region:
        """Square around the anomaly peak, at the scale the classifier was trained on; whole frame if smaller."""
        height, width = frame.shape
        side = self.config.region_side
        if side is None or (height <= side and width <= side):
            return Region(0, 0, width, height)
        side_h, side_w = min(side, height), min(side, width)
        peak_y, peak_x = np.unravel_index(int(np.argmax(anomaly_map)), anomaly_map.shape)
        y = int(np.clip(peak_y - side_h // 2, 0, height - side_h))
        x = int(np.clip(peak_x - side_w // 2, 0, width - side_w))
        return Region(x, y, side_w, side_h)

    def _classify(self, stages: list[dict]) -> None:
        start = time.perf_counter()
        regions = []
        for stage in stages:
            region = stage["region"] = self._region(stage["frame"], stage["anomaly_map"])
            regions.append(stage["frame"][region.y: region.y + region.height, region.x: region.x + region.width])
        probabilities, features = self.classifier.classify(regions)
        share = _ms(start) / len(stages)
        for stage, probs, feats in zip(stages, probabilities, features):
            stage["timings"]["classifier"] = share
            step = time.perf_counter()
            stage["probabilities"], stage["class_index"] = probs, int(np.argmax(probs))
            stage["gradcam"] = self._frame_heatmap(self.classifier.gradcam(feats, stage["class_index"]), stage)
            stage["timings"]["gradcam"] = _ms(step)

    @staticmethod
    def _frame_heatmap(cam: np.ndarray, stage: dict) -> np.ndarray:
        region, frame = stage["region"], stage["frame"]
        heatmap = np.zeros(frame.shape, np.float32)
        heatmap[region.y: region.y + region.height, region.x: region.x + region.width] = cv2.resize(
            cam, (region.width, region.height), interpolation=cv2.INTER_LINEAR
        )
        return heatmap

    def _result(self, stage: dict, source: str | None) -> InspectionResult:
        timings = dict(stage["timings"])
        timings["total"] = _ms(stage["start"])
        fired = "probabilities" in stage
        probabilities = stage.get("probabilities")
        return InspectionResult(
            verdict=stage["verdict"],
            anomaly_score=stage["score"],
            thresholds=self.thresholds,
            anomaly_map=stage["anomaly_map"],
            frame=stage["frame"],
            profile=self.profile,
            timings_ms=timings,
            defect_class=self.class_names[stage["class_index"]] if fired else None,
            confidence=float(probabilities[stage["class_index"]]) if fired else None,
            class_probabilities=dict(zip(self.class_names, map(float, probabilities))) if fired else {},
            gradcam=stage.get("gradcam"),
            region=stage.get("region"),
            source=source,
        )
