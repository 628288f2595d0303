"""Turning InspectionResults into things a page shows or downloads (no model logic).

Plain Python + numpy/OpenCV so it is unit-testable without Streamlit.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Iterable

import cv2
import numpy as np

from edge_runtime.overlay import anomaly_overlay as runtime_anomaly_overlay
from edge_runtime.overlay import heatmap_overlay
from edge_runtime.result import failure_dict

VERDICT_COLOURS = {"ok": "green", "warn": "orange", "defect": "red", "error": "gray"}
VERDICT_HEX = {"ok": "#21a366", "warn": "#f0a202", "defect": "#d62728", "error": "#7f7f7f"}
VERDICT_LABELS = {"ok": "OK", "warn": "WARN", "defect": "DEFECT", "error": "ERROR"}


@dataclass(frozen=True)
class Inspected:
    """One row of the Inspect page: a result or the error that replaced it."""

    name: str
    result: Any | None = None  # edge_runtime.InspectionResult
    error: str | None = None

    @property
    def verdict(self) -> str:
        return "error" if self.result is None else self.result.verdict.value

    def to_dict(self) -> dict:
        if self.result is None:
            return failure_dict(self.name, self.error)
        data = self.result.to_dict()
        data["source"] = data.get("source") or self.name
        return data


def distinct_digits(score: float, *thresholds: float) -> tuple[str, ...]:
    """``score`` and ``thresholds`` as text with 4 significant digits, or as many more as it takes to tell the score
    from each threshold: a score just under a threshold must not read as equal to it beside a lower verdict."""
    for digits in range(4, 17):
        texts = tuple(f"{value:.{digits}g}" for value in (score, *thresholds))
        if all(texts[0] != text for value, text in zip(thresholds, texts[1:]) if value != score):
            return texts
    return texts


def verdict_markdown(verdict: str) -> str:
    """Big coloured verdict badge as Streamlit markdown (no raw HTML needed)."""
    colour = VERDICT_COLOURS.get(verdict, "gray")
    return f"# :{colour}-background[&nbsp;{VERDICT_LABELS.get(verdict, verdict.upper())}&nbsp;]"


BAR_HEIGHT = 34  # plot px; pass height=BAR_CHART_HEIGHT to st.vega_lite_chart (room for the axis)
BAR_CHART_HEIGHT = 120


def score_bar_spec(score: float, warn: float, defect: float) -> dict:
    """Vega-Lite spec: the score as a bar over ok/warn/defect zones with threshold rules."""
    upper = max(defect * 1.5, score * 1.1, warn * 1.5, 1e-6)
    rows = [
        {"zone": "ok", "start": 0.0, "end": float(warn)},
        {"zone": "warn", "start": float(warn), "end": float(defect)},
        {"zone": "defect", "start": float(defect), "end": float(upper)},
        {"zone": "score", "start": 0.0, "end": float(score)},
    ]
    scale = {"domain": ["ok", "warn", "defect"], "range": [VERDICT_HEX[k] for k in ("ok", "warn", "defect")]}
    x = {"field": "start", "type": "quantitative", "scale": {"domain": [0, upper], "nice": False},
         "title": "anomaly score"}
    colour = {"field": "zone", "type": "nominal", "scale": scale, "legend": None}
    def band(lo: float, hi: float) -> dict:
        return {"y": {"datum": lo, "type": "quantitative", "scale": {"domain": [0, 1]}, "axis": None},
                "y2": {"datum": hi}}

    return {
        "height": BAR_HEIGHT,
        "data": {"values": rows},
        "layer": [
            {"transform": [{"filter": "datum.zone != 'score'"}], "mark": {"type": "rect", "opacity": 0.3},
             "encoding": {"x": x, "x2": {"field": "end"}, "color": colour, **band(0, 1)}},
            {"transform": [{"filter": "datum.zone == 'score'"}],
             "mark": {"type": "rect", "color": "#333333"},
             "encoding": {"x": x, "x2": {"field": "end"}, **band(0.28, 0.72),
                          "tooltip": [{"field": "end", "title": "score", "format": ".4g"}]}},
            {"transform": [{"filter": "datum.zone == 'warn' || datum.zone == 'defect'"}],
             "mark": {"type": "rule", "strokeWidth": 2, "strokeDash": [4, 2]},
             "encoding": {"x": x, "color": colour, **band(0, 1),
                          "tooltip": [{"field": "zone", "title": "threshold"}, {"field": "start", "format": ".4g"}]}},
        ],
    }


def normalise_map(values: np.ndarray | None, scale: float | None = None) -> np.ndarray | None:
    """Float map -> [0, 1]: divided by ``scale`` if given, else by its own maximum."""
    if values is None:
        return None
    values = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    values = values - min(float(values.min()), 0.0)
    top = float(scale) if scale else float(values.max())
    return np.clip(values / top, 0.0, 1.0) if top > 0 else np.zeros_like(values)


def overlay_rgb(frame: np.ndarray, heat: np.ndarray, alpha: float = 0.5, region: Any = None) -> np.ndarray:
    """Heat map over the gray frame as an RGB uint8 image."""
    bgr = np.ascontiguousarray(heatmap_overlay(frame, heat, alpha=float(alpha)))
    if region is not None:
        x, y, w, h = (int(v) for v in (region.x, region.y, region.width, region.height))
        cv2.rectangle(bgr, (x, y), (x + w - 1, y + h - 1), (255, 255, 255), 2)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def frame_rgb(frame: np.ndarray) -> np.ndarray:
    gray = np.clip(np.asarray(frame, dtype=np.float32) * 255.0, 0, 255).astype(np.uint8)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)


def anomaly_overlay(result: Any, alpha: float = 0.5) -> np.ndarray:
    """The runtime's anomaly overlay (defect threshold = mid colour), as RGB."""
    return cv2.cvtColor(runtime_anomaly_overlay(result, alpha=float(alpha)), cv2.COLOR_BGR2RGB)


def gradcam_overlay(result: Any, alpha: float = 0.5) -> np.ndarray | None:
    if result.gradcam is None:
        return None
    return overlay_rgb(result.frame, normalise_map(result.gradcam, 1.0), alpha, result.region)


def png_bytes(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("could not encode PNG")
    return buf.tobytes()


def stem(name: str) -> str:
    """File-name-safe stem of an upload/source name."""
    base = PurePath(str(name).replace("\\", "/")).stem or "image"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in base)[:80]


def probabilities_table(result: Any, class_names: Iterable[str] = ()) -> list[dict]:
    """All classes with their probability, best first (empty when the classifier did not run)."""
    probs = dict(result.class_probabilities or {})
    if not probs:
        return []
    for name in class_names:
        probs.setdefault(name, 0.0)
    rows = [{"class": k, "probability": float(v)} for k, v in probs.items()]
    return sorted(rows, key=lambda r: -r["probability"])


CSV_FIELDS = [
    "source", "profile", "verdict", "anomaly_score", "warn_threshold", "threshold", "defect_class",
    "confidence", "latency_ms", "frame_width", "frame_height", "region", "class_probabilities", "error",
]


def flat_row(item: Inspected) -> dict:
    data = item.to_dict()
    size = data.get("frame_size") or [None, None]
    row = {k: data.get(k) for k in CSV_FIELDS}
    row["frame_width"], row["frame_height"] = size[0], size[1]
    for key in ("region", "class_probabilities"):
        row[key] = json.dumps(data[key], sort_keys=True) if data.get(key) else ""
    return row


def results_json(items: list[Inspected]) -> bytes:
    return json.dumps([i.to_dict() for i in items], indent=2, default=float).encode()


def results_csv(items: list[Inspected]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for item in items:
        writer.writerow(flat_row(item))
    return out.getvalue().encode()


def overlays_zip(items: list[Inspected], alpha: float = 0.5) -> bytes:
    """All overlays (anomaly map, Grad-CAM where present) as PNGs in one zip."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        used: set[str] = set()
        for item in items:
            if item.result is None:
                continue
            name = stem(item.name)
            while name in used:
                name += "_"
            used.add(name)
            zf.writestr(f"{name}_anomaly.png", png_bytes(anomaly_overlay(item.result, alpha)))
            cam = gradcam_overlay(item.result, alpha)
            if cam is not None:
                zf.writestr(f"{name}_gradcam.png", png_bytes(cam))
        zf.writestr("results.json", results_json(items))
    return buf.getvalue()


def frame_term_caption(score: float, frame_term: float) -> str:
    """How much of a score the whole frame's texture makes (frame-level autoencoder) and how much its local peak."""
    return (f"Whole-frame texture (frame-level autoencoder) {frame_term:.3g}, local peak {score - frame_term:.3g}: "
            "a high first part means the frame as a whole looks unlike the defect-free ones, so the map is lifted "
            "everywhere.")


def picture_caption(mean_grey: float, neighbour_correlation: float) -> str:
    """What the frame checks measured of the picture, which the History page's drift checks watch over time."""
    return (f"Picture: mean grey {mean_grey:.3f}, neighbour correlation {neighbour_correlation:.3f} (the brightness "
            "and image drift checks on the History page hold these against the line's commissioning frames).")
