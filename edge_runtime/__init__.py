"""Line-side inspection runtime: numpy, OpenCV and onnxruntime only (never TensorFlow)."""

import os

# onnxruntime 1.32 on Linux keeps a telemetry device id and event store under ~/.cache/Microsoft and sends them
# where it can reach the internet. A line PC's runtime is offline by design: opt out before onnxruntime is first
# imported (it reads the variable then). A plant that wants it sets ORT_DISABLE_TELEMETRY=0 itself.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from .errors import (  # noqa: E402 (after the telemetry opt-out)
    FrameQualityError,
    ImageDecodeError,
    InspectionError,
    InvalidImageError,
    ManifestError,
    ModelIntegrityError,
    ModelLoadError,
)
from .inspector import Inspector  # noqa: E402
from .result import InspectionResult, Region, Thresholds, Verdict  # noqa: E402

__all__ = [
    "FrameQualityError", "ImageDecodeError", "InspectionError", "InspectionResult", "Inspector", "InvalidImageError",
    "ManifestError", "ModelIntegrityError", "ModelLoadError", "Region", "Thresholds", "Verdict",
]
