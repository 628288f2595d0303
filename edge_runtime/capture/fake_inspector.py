"""A model-free stand-in for ``Inspector`` with the same duck-typed contract.

Used by the capture tests, and by ``scripts/soak.py`` / ``scripts/bench_loop.py`` when
the ONNX models are not there. It decodes and validates input exactly like the real
runtime (so corrupt bytes raise ``ImageDecodeError``) and scores a frame by its
strongest local deviation from a smoothed background.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Sequence

import cv2
import numpy as np

from ..errors import InspectionError
from ..preprocess import PreprocessSpec, preprocess_with_quality
from ..result import InspectionResult, Region, Thresholds

CLASSES = ["inclusion", "patch", "pits", "scratch"]


class FakeInspector:
    profile = "fake"
    class_names = CLASSES
    config = None  # no manifest behind it: nothing for the golden-frame self-test to check

    def __init__(self, delay_s: float = 0.0, thresholds: Thresholds = Thresholds(0.12, 0.2)) -> None:
        self.delay_s = delay_s
        self.thresholds = thresholds
        self.model_sha256 = {"autoencoder": "a" * 64, "classifier": "c" * 64}
        self.spec = PreprocessSpec()
        self.calls = 0
        self.sources: list[str | None] = []
        self._lock = threading.Lock()

    def inspect(self, image: Any, source: str | None = None) -> InspectionResult:
        start = time.perf_counter()
        with self._lock:
            self.calls += 1
            self.sources.append(source)
        gray, quality = preprocess_with_quality(image, self.spec)
        if self.delay_s:
            time.sleep(self.delay_s)  # stands in for model time (releases the GIL like onnxruntime)
        anomaly = np.abs(gray - cv2.blur(gray, (31, 31)))
        score = float(np.percentile(anomaly, 99.9))
        verdict = self.thresholds.verdict(score)
        extra: dict[str, Any] = {}
        if verdict.value != "ok":
            y, x = np.unravel_index(int(np.argmax(anomaly)), anomaly.shape)
            extra = dict(defect_class=CLASSES[int(x + y) % len(CLASSES)], confidence=0.9,
                         gradcam=anomaly / max(float(anomaly.max()), 1e-6),
                         region=Region(max(0, int(x) - 16), max(0, int(y) - 16), 32, 32))
        total = (time.perf_counter() - start) * 1000.0
        return InspectionResult(verdict, score, self.thresholds, anomaly, gray, self.profile,
                                {"total": total}, source=source, neighbour_correlation=quality.neighbour_correlation,
                                mean_grey=quality.mean_grey, **extra)

    def inspect_batch(self, images: Sequence[Any], sources: Sequence[str | None] | None = None) -> list:
        sources = list(sources) if sources is not None else [None] * len(images)
        out: list[InspectionResult | InspectionError] = []
        for image, source in zip(images, sources):
            try:
                out.append(self.inspect(image, source))
            except InspectionError as exc:
                out.append(exc)
        return out
