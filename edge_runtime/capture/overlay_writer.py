"""Saves heat-map overlays and captured frames as PNG next to the log; a failure raises ``OSError`` for the
caller to record. The paths returned (and logged) are absolute: ``prune``, ``review --export`` and the
dashboard read them from other working folders than the ``watch`` that wrote them."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..overlay import anomaly_overlay

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_safe(text: str) -> str:
    """``text`` as part of a file or folder name: runs of anything but letters, digits, '.', '_' and '-' become
    one '_', so a frame id or a reviewer's class never names a path elsewhere."""
    return _UNSAFE.sub("_", text)


def save_overlay(result: Any, directory: Path, frame_id: str) -> Path:
    """Write the anomaly overlay as PNG (atomically: temp file then rename).

    Same colour scale as the CLI and dashboard (defect threshold = mid colour), so an ok
    frame does not look as hot as a defect in the History page."""
    verdict = getattr(result.verdict, "value", result.verdict)
    return _write_png(anomaly_overlay(result), directory, f"{file_safe(frame_id)[-80:]}_{verdict}")


def save_frame(data: bytes | np.ndarray, directory: Path, frame_id: str, verdict: str) -> Path:
    """Write the frame as the camera gave it (8 or 16 bit, grey or colour) as lossless PNG: what a reviewer
    judges and what a retraining or a commissioning on reviewed frames reads (``review --export``). An
    encoded file (a watched folder's) is decoded first, so every saved frame is a PNG of its pixels."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if data is None:
            raise OSError("the frame's file could not be decoded to save it")
    return _write_png(data, directory, f"{file_safe(frame_id)[-80:]}_{verdict}_frame")


def _write_png(image: Any, directory: Path, stem: str) -> Path:
    ok, png = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"PNG encoding of {stem} failed")
    directory = Path(directory).absolute()  # the log keeps this path: readers must not depend on watch's folder
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{int(time.time() * 1000)}_{stem}.png"
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_bytes(png.tobytes())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return path
