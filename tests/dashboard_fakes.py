"""A model-free stand-in for edge_runtime.Inspector used by the dashboard tests.

It decodes images with the real preprocessing (so corrupt bytes raise the real
ImageDecodeError) and returns real InspectionResult objects; the "score" is simply
the frame's mean brightness, so tests can steer verdicts with synthetic images.
"""

from __future__ import annotations

import types
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.preprocess import PreprocessSpec, preprocess_with_quality
from edge_runtime.result import InspectionResult, Region, Thresholds

CLASSES = ["crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches"]


class FakeInspector:
    # No golden frames for the self-test, no mirror views or frame-level term for a commissioning to re-measure.
    config = types.SimpleNamespace(raw={"autoencoder": {"score": {}}}, score_views=1)

    def __init__(self, profile: str = "neu-steel", warn: float = 0.3, defect: float = 0.6):
        self.profile = profile
        self.class_names = list(CLASSES)
        self.thresholds = Thresholds(warn, defect)
        self.model_sha256 = {"autoencoder": "0" * 64, "classifier": "1" * 64}
        self.manifest_path = Path("models.manifest.json")
        self.calls = 0
        self.frame_term: float | None = None  # set: results carry a frame-level share, as the tile's gate gives
        self.frame_term_references = None  # Inspector.frame_term_references: the gate's term, None without one

    def inspect(self, image, source=None, always_classify=False):
        self.calls += 1
        frame, quality = preprocess_with_quality(image, PreprocessSpec(min_contrast=0.0))  # scores: grey levels
        score = float(frame.mean())
        verdict = self.thresholds.verdict(score)
        h, w = frame.shape
        amap = np.abs(frame - cv2.GaussianBlur(frame, (0, 0), 3)).astype(np.float32)
        extra = {}
        if verdict.value != "ok" or always_classify:
            probs = np.linspace(1, 2, len(CLASSES))
            probs = probs / probs.sum()
            extra = dict(
                defect_class=CLASSES[-1], confidence=float(probs[-1]),
                class_probabilities={c: float(p) for c, p in zip(CLASSES, probs)},
                gradcam=np.clip(amap / (amap.max() + 1e-6), 0, 1), region=Region(0, 0, w // 2, h // 2),
            )
        return InspectionResult(verdict=verdict, anomaly_score=score, thresholds=self.thresholds,
                                anomaly_map=amap, frame=frame, profile=self.profile,
                                timings_ms={"total": 1.0}, source=source, frame_term=self.frame_term,
                                neighbour_correlation=quality.neighbour_correlation, mean_grey=quality.mean_grey,
                                **extra)

    def inspect_batch(self, images, sources=None):
        from edge_runtime.errors import InspectionError

        out = []
        for i, image in enumerate(images):
            try:
                out.append(self.inspect(image, None if sources is None else sources[i]))
            except InspectionError as exc:
                out.append(exc)
        return out


def png(value: int, size: int = 64) -> bytes:
    """A flat gray PNG: value/255 is the fake score."""
    img = np.full((size, size), value, np.uint8)
    img[size // 4: size // 2, size // 4: size // 2] = 255 - value
    return cv2.imencode(".png", img)[1].tobytes()
