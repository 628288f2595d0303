"""The one immutable result object that travels from the runtime to the log, CLI and UI."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Mapping

import numpy as np


class Verdict(str, Enum):
    OK = "ok"
    WARN = "warn"
    DEFECT = "defect"


@dataclass(frozen=True)
class Thresholds:
    """Anomaly-score thresholds: ``warn <= score < defect`` is a warning, ``score >= defect`` a defect."""

    warn: float
    defect: float

    def verdict(self, score: float) -> Verdict:
        if score >= self.defect:
            return Verdict.DEFECT
        if score >= self.warn:
            return Verdict.WARN
        return Verdict.OK


def flagged(scores: np.ndarray, threshold: float) -> np.ndarray:
    """The verdict rule over many scores at once: True where a score is at or over ``threshold``, as
    ``Thresholds.verdict`` reads one score. Rates, intervals and commissioning count flags with it."""
    return np.asarray(scores, dtype=float) >= threshold


@dataclass(frozen=True)
class Region:
    """Rectangle in frame pixel coordinates (x, y = top-left corner)."""

    x: int
    y: int
    width: int
    height: int


def _frozen(array: np.ndarray | None) -> np.ndarray | None:
    if array is None:
        return None
    array = np.array(array, copy=True)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class InspectionResult:
    """Everything the runtime knows about one inspected frame.

    ``anomaly_map`` and ``gradcam`` are float32 arrays in frame coordinates (HxW).
    The class fields and ``gradcam`` are set when the gate fired (verdict warn or defect), or
    when the caller asked for a classification of every frame (``always_classify``: evaluation,
    self-test, the dashboard's toggle); otherwise, on ``ok`` frames, the classifier never runs. ``frame_term`` is the part of
    ``anomaly_score`` that a frame-level autoencoder adds to every cell of the map (the whole
    frame's texture, not a local peak); None where the profile's gate has none.
    ``neighbour_correlation`` (how smooth the camera's picture was) and ``mean_grey`` (how bright) are
    what the frame checks measured (``preprocess.FrameQuality``), logged so that a lens going out of
    focus or an ageing lamp shows in the drift checks (``edge_runtime.drift``).
    """

    verdict: Verdict
    anomaly_score: float
    thresholds: Thresholds
    anomaly_map: np.ndarray
    frame: np.ndarray
    profile: str
    timings_ms: Mapping[str, float]
    defect_class: str | None = None
    confidence: float | None = None
    class_probabilities: Mapping[str, float] = field(default_factory=dict)
    gradcam: np.ndarray | None = None
    region: Region | None = None
    source: str | None = None
    frame_term: float | None = None
    neighbour_correlation: float | None = None
    mean_grey: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "anomaly_map", _frozen(self.anomaly_map))
        object.__setattr__(self, "frame", _frozen(self.frame))
        object.__setattr__(self, "gradcam", _frozen(self.gradcam))
        object.__setattr__(self, "timings_ms", MappingProxyType(dict(self.timings_ms)))
        object.__setattr__(self, "class_probabilities", MappingProxyType(dict(self.class_probabilities)))

    @property
    def latency_ms(self) -> float:
        return float(self.timings_ms.get("total", sum(self.timings_ms.values())))

    @property
    def is_reject(self) -> bool:
        return self.verdict is Verdict.DEFECT

    def to_dict(self) -> dict:
        """JSON-ready summary (no pixel arrays)."""
        return {
            "source": self.source,
            "profile": self.profile,
            "verdict": self.verdict.value,
            "anomaly_score": self.anomaly_score,
            "frame_term": self.frame_term,
            "neighbour_correlation": self.neighbour_correlation,
            "mean_grey": self.mean_grey,
            "threshold": self.thresholds.defect,
            "warn_threshold": self.thresholds.warn,
            "defect_class": self.defect_class,
            "confidence": self.confidence,
            "class_probabilities": dict(self.class_probabilities),
            "region": None if self.region is None else vars(self.region).copy(),
            "frame_size": [int(self.frame.shape[1]), int(self.frame.shape[0])],
            "latency_ms": self.latency_ms,
            "timings_ms": dict(self.timings_ms),
            "error": None,
            "error_type": None,
        }


def failure_dict(source: str | None, error: BaseException | str, profile: str | None = None,
                 thresholds: Thresholds | None = None) -> dict:
    """``InspectionResult.to_dict``'s keys for a frame that could not be inspected: verdict "error" (never "ok"),
    no score, the reason in ``error`` and its class in ``error_type``, so the CLI, the log and the dashboard
    write such a frame alike."""
    return {
        "source": source, "profile": profile, "verdict": "error", "anomaly_score": None, "frame_term": None,
        "neighbour_correlation": None, "mean_grey": None,
        "threshold": None if thresholds is None else thresholds.defect,
        "warn_threshold": None if thresholds is None else thresholds.warn,
        "defect_class": None, "confidence": None, "class_probabilities": {}, "region": None, "frame_size": None,
        "latency_ms": None, "timings_ms": {}, "error": str(error),
        "error_type": None if isinstance(error, str) else type(error).__name__,
    }
