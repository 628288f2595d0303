"""Line-side inspection runtime: numpy, OpenCV and onnxruntime only (never TensorFlow)."""

from .errors import (
    FrameQualityError,
    ImageDecodeError,
    InspectionError,
    InvalidImageError,
    ManifestError,
    ModelIntegrityError,
    ModelLoadError,
)
from .inspector import Inspector
from .result import InspectionResult, Region, Thresholds, Verdict

__all__ = [
    "FrameQualityError", "ImageDecodeError", "InspectionError", "InspectionResult", "Inspector", "InvalidImageError",
    "ManifestError", "ModelIntegrityError", "ModelLoadError", "Region", "Thresholds", "Verdict",
]
