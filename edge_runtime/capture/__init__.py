"""Camera/folder/video capture loop feeding the inspection runtime and the durable log."""

from .loop import InspectionLoop, LoopConfig
from .sources import (CameraUnavailableError, CaptureError, FileListSource, FolderWatcher, Frame,
                      FrameSource, SourceLostError, VideoSource)
from .synthetic import SyntheticStripSource

__all__ = [
    "CameraUnavailableError", "CaptureError", "FileListSource", "FolderWatcher", "Frame", "FrameSource",
    "InspectionLoop", "LoopConfig", "SourceLostError", "SyntheticStripSource", "VideoSource",
]
