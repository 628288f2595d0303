"""The log record: one per captured frame, whatever happened to it.

A frame ends as exactly one record whose ``verdict`` is ``ok``/``warn``/``defect``
(inspected), ``error`` (could not be inspected) or ``dropped`` (never inspected,
e.g. drop-oldest queue policy or shutdown). ``source_error`` records describe a
failing source (camera gone, folder removed) and belong to no frame.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from ..result import InspectionResult

INSPECTED = ("ok", "warn", "defect")
FLAGGED = ("warn", "defect")  # the inspected verdicts the gate raised
ERROR = "error"
DROPPED = "dropped"
SOURCE_ERROR = "source_error"
ALL_VERDICTS = (*INSPECTED, ERROR, DROPPED, SOURCE_ERROR)
# How a record's ``error`` field says its reject hook (ejector, PLC signal) failed for it: the frame was
# flagged but may still be on the line (``InspectionLoop``; ``history`` and the History page look for it).
REJECT_HOOK_FAILED = "reject hook failed"


@dataclass(frozen=True)
class Record:
    source: str
    frame_id: str
    verdict: str
    captured_at: float | None = None
    recorded_at: float = field(default_factory=time.time)
    score: float | None = None
    warn_threshold: float | None = None
    defect_threshold: float | None = None
    defect_class: str | None = None
    confidence: float | None = None
    latency_ms: float | None = None
    profile: str | None = None
    model_sha256: Mapping[str, str] | None = None
    error: str | None = None
    overlay_path: str | None = None
    frame_path: str | None = None  # the frame as captured, saved for review and retraining (``watch --save-frames``)
    frame_term: float | None = None  # the frame-level autoencoder's share of ``score``, where the gate has one
    neighbour_correlation: float | None = None  # how smooth the picture was (``preprocess.FrameQuality``)
    mean_grey: float | None = None  # how bright the picture was, [0, 1]

    @property
    def is_reject(self) -> bool:
        return self.verdict == "defect"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["model_sha256"] = dict(self.model_sha256) if self.model_sha256 else None
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def record_from_result(frame_source: str, frame_id: str, captured_at: float | None, result: InspectionResult,
                       model_sha256: Mapping[str, str] | None) -> Record:
    """Build the record of an inspected frame from its ``InspectionResult`` (a renamed field fails here, loudly,
    rather than leaving a drift column empty)."""
    return Record(
        source=frame_source,
        frame_id=frame_id,
        verdict=result.verdict.value,
        captured_at=captured_at,
        score=float(result.anomaly_score),
        warn_threshold=float(result.thresholds.warn),
        defect_threshold=float(result.thresholds.defect),
        defect_class=result.defect_class,
        confidence=None if result.confidence is None else float(result.confidence),
        latency_ms=float(result.latency_ms),
        profile=result.profile,
        model_sha256=model_sha256,
        frame_term=_optional_float(result.frame_term),
        neighbour_correlation=_optional_float(result.neighbour_correlation),
        mean_grey=_optional_float(result.mean_grey),
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
