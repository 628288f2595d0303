"""Typed errors of the inspection runtime.

Every message is written for a line operator: it says what is wrong and what to check.
An image that raises one of these is never reported as ``ok``.
"""


class InspectionError(Exception):
    """Base class of every error the runtime raises on purpose."""


class ImageDecodeError(InspectionError):
    """The bytes or file could not be decoded as an image (empty, truncated, not an image)."""


class InvalidImageError(InspectionError):
    """The image decoded but cannot be inspected (wrong dtype, too small, NaN, bad shape)."""


class FrameQualityError(InvalidImageError):
    """The frame decoded but shows no surface to inspect: dark, blank or sensor noise. A camera or lighting
    fault, not a defect of the strip; its own type so that a log can tell the two apart."""

    # What a count of these in a log means, for the operator reading it (``history``, the History page).
    hint = "dark, blank or noise frames: check the camera and the lighting, not the strip"


class ManifestError(InspectionError):
    """models.manifest.json is missing, malformed, or does not describe the requested profile."""


class ModelIntegrityError(InspectionError):
    """A model file does not match the sha256 recorded in the manifest."""


class ModelLoadError(InspectionError):
    """onnxruntime could not load a model file."""
