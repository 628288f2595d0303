"""Heat maps over the inspected frame, as uint8 BGR images for the dashboard and reports."""

from __future__ import annotations

import cv2
import numpy as np


def to_uint8(gray01: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(gray01, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def heatmap_overlay(frame: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a [0, 1] heatmap (JET colours) over a gray frame (uint8, or float in [0, 1])."""
    gray = frame if frame.dtype == np.uint8 else to_uint8(frame)
    base = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    colours = cv2.applyColorMap(to_uint8(np.clip(heatmap, 0.0, 1.0)), cv2.COLORMAP_JET)
    return cv2.addWeighted(colours, float(alpha), base, 1.0 - float(alpha), 0.0)


def anomaly_heatmap(anomaly_map: np.ndarray, defect_threshold: float) -> np.ndarray:
    """Anomaly map scaled so the defect threshold sits at 0.5: the colours mean the same on every frame."""
    return np.clip(anomaly_map / (2.0 * defect_threshold), 0.0, 1.0)


def anomaly_overlay(result, alpha: float = 0.5) -> np.ndarray:
    """An InspectionResult's anomaly map over its frame (uint8 BGR), on the threshold-fixed scale."""
    return heatmap_overlay(result.frame, anomaly_heatmap(result.anomaly_map, result.thresholds.defect), alpha)
