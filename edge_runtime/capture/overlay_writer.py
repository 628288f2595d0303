"""Saves heat-map overlay PNGs next to the log; a failure raises ``OSError`` for the caller to record."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _overlay(frame: np.ndarray, heat: np.ndarray) -> np.ndarray:
    try:
        from ..overlay import heatmap_overlay
    except ImportError:  # runtime overlay module not installed: simple local fallback
        gray = cv2.cvtColor((np.clip(frame, 0, 1) * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
        color = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
        return cv2.addWeighted(gray, 0.5, color, 0.5, 0)
    return heatmap_overlay(frame, heat, alpha=0.5)


def save_overlay(result: Any, directory: Path, frame_id: str) -> Path:
    """Write frame + normalised anomaly map as PNG (atomically: temp file then rename)."""
    anomaly = np.asarray(result.anomaly_map, dtype=np.float32)
    heat = np.clip(anomaly / max(float(anomaly.max()), 1e-6), 0.0, 1.0)
    ok, png = cv2.imencode(".png", _overlay(result.frame, heat))
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
