"""Saves heat-map overlay PNGs next to the log; a failure raises ``OSError`` for the caller to record."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import cv2

from ..overlay import anomaly_overlay

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def save_overlay(result: Any, directory: Path, frame_id: str) -> Path:
    """Write the anomaly overlay as PNG (atomically: temp file then rename).

    Same colour scale as the CLI and dashboard (defect threshold = mid colour), so an ok
    frame does not look as hot as a defect in the History page."""
    ok, png = cv2.imencode(".png", anomaly_overlay(result))
    if not ok:
        raise OSError("PNG encoding of the overlay failed")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    verdict = getattr(result.verdict, "value", result.verdict)
    name = f"{int(time.time() * 1000)}_{_UNSAFE.sub('_', frame_id)[-80:]}_{verdict}.png"
    path = directory / name
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_bytes(png.tobytes())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return path
