"""The inspection engine: onnxruntime only, built from models.manifest.json.

frame -> autoencoder error map -> anomaly score -> verdict; only when the gate fires
(warn or defect) does the classifier head continue from the gate's backbone stem, and
Grad-CAM is computed from its exposed feature map.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import onnxruntime as ort

from .anomaly import AnomalyScorer
from .classifier import DefectClassifier, window_around_peak
from .errors import InspectionError, ManifestError, ModelLoadError
from .manifest import FrameTerm, ProfileConfig, default_manifest_path, load_manifest, profile_config
from .preprocess import ImageSource, preprocess_with_quality
from .result import InspectionResult, Thresholds, Verdict


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
        gate = session(config.autoencoder.verify(), intra_op_threads)
        if len(gate.get_outputs()) < 2:
            raise ModelLoadError(f"{config.autoencoder.path.name} has no backbone-stem output for the classifier; "
                                 "re-export the profile (python -m export)")
        self.scorer = AnomalyScorer.for_profile(gate, config)
        with np.load(config.classifier_head.verify()) as head:
            kernel = head["kernel"]
        if kernel.ndim != 2 or kernel.shape[1] != len(self.class_names):
            raise ManifestError(f"profile '{config.name}' names {len(self.class_names)} classes, but its classifier "
                                f"head has {kernel.shape[-1]} outputs: the manifest's class_names do not belong to "
                                "these models")
        self.classifier = DefectClassifier(session(config.classifier.verify(), intra_op_threads), kernel)

    @classmethod
    def from_manifest(
        cls, manifest_path: str | Path | None = None, profile: str | None = None, intra_op_threads: int = 1,
        precision: str | None = None,
    ) -> "Inspector":
        """``precision`` "fp32" / "int8" overrides the profile's manifest setting (None = the manifest's)."""
        path = Path(manifest_path) if manifest_path is not None else default_manifest_path()
        return cls(profile_config(load_manifest(path), path, profile, precision), path, intra_op_threads)

    @property
    def frame_term_references(self) -> FrameTerm | None:
        """The gate's frame-level term (its references and weight), or None where it has none."""
        return self.scorer.frame_term

    def with_frame_term(self, frame_term: FrameTerm | None) -> "Inspector":
        """The same inspector (sessions, thresholds) scoring with another frame-level term, such as one
        whose references commissioning re-measured on the line's own frames."""
        twin = copy.copy(self)
        twin.scorer = self.scorer.with_frame_term(frame_term)
        return twin

    def with_views(self, views: int, views_from: float | None = None) -> "Inspector":
        """The same inspector scoring ``views`` views of each frame (``AnomalyScorer.with_views``), such as
        one view to set a three-view gate's band on a line's own frames."""
        twin = copy.copy(self)
        twin.scorer = self.scorer.with_views(views, views_from)
        return twin

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
            frame, quality = preprocess_with_quality(image, self.config.preprocess)
        except InspectionError as error:
            return error
        return {"frame": frame, "quality": quality, "start": start, "timings": {"preprocess": _ms(start)}}

    def _gate(self, stages: list[dict]) -> None:
        """Autoencoder over each frame. One call per frame: batching it gave no measurable gain
        per frame on the CPU (results/benchmark.md, tuning)."""
        for stage in stages:
            start = time.perf_counter()
            try:
                gate = self.scorer.run(stage["frame"])
            except InspectionError as error:
                stage["error"] = error
                continue
            stage["timings"]["autoencoder"] = _ms(start)
            if not np.isfinite(gate.score):  # a NaN would compare as "below every threshold", i.e. ok
                stage["error"] = InspectionError("the anomaly model returned an invalid (non-finite) score; "
                                                 "frame not inspected")
                continue
            stage.update(gate=gate, verdict=self.thresholds.verdict(gate.score))

    def _classify(self, stages: list[dict]) -> None:
        start = time.perf_counter()
        windows = [window_around_peak(stage["gate"], self.config.stem_window) for stage in stages]
        probabilities, features = self.classifier.classify([window.stem for window in windows])
        share = _ms(start) / len(stages)
        for stage, window, probs, feats in zip(stages, windows, probabilities, features):
            stage["timings"]["classifier"] = share
            step = time.perf_counter()
            stage["probabilities"], stage["class_index"] = probs, int(np.argmax(probs))
            stage["gradcam"] = window.cam_to_frame(self.classifier.gradcam(feats, stage["class_index"]))
            stage["region"] = window.region()
            stage["timings"]["gradcam"] = _ms(step)

    def _result(self, stage: dict, source: str | None) -> InspectionResult:
        timings = dict(stage["timings"])
        timings["total"] = _ms(stage["start"])
        fired = "probabilities" in stage
        probabilities = stage.get("probabilities")
        return InspectionResult(
            verdict=stage["verdict"],
            anomaly_score=stage["gate"].score,
            thresholds=self.thresholds,
            anomaly_map=stage["gate"].anomaly_map,
            frame=stage["frame"],
            profile=self.profile,
            timings_ms=timings,
            defect_class=self.class_names[stage["class_index"]] if fired else None,
            confidence=float(probabilities[stage["class_index"]]) if fired else None,
            class_probabilities=dict(zip(self.class_names, map(float, probabilities))) if fired else {},
            gradcam=stage.get("gradcam"),
            region=stage.get("region"),
            source=source,
            frame_term=stage["gate"].frame_term,
            neighbour_correlation=stage["quality"].neighbour_correlation,
            mean_grey=stage["quality"].mean_grey,
        )
