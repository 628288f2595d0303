"""Stage 2: the defect classifier and its Grad-CAM, for frames the gate flagged.

The classifier graph is MobileNetV2's top (blocks 13-16, GlobalAveragePooling, Dense).
Its input is the gate's backbone stem (``block_12_add`` over the padded frame): blocks
0-12 are the same frozen ImageNet weights in both models, so a flagged frame continues
from the features the gate already computed instead of running them a second time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from .anomaly import GateOutput
from .gradcam import gradcam
from .preprocess import FrameGeometry, cell_centre_offset
from .result import Region


@dataclass(frozen=True)
class StemWindow:
    """The part of a frame's stem the classifier head sees, and where it lies in the frame.

    The head sees at most the manifest's ``stem_window`` of stem cells around the anomaly
    peak: on a wide strip a small defect is not averaged away, and on neu-steel the window
    is a little smaller than a whole 200x200 frame, which puts more Grad-CAM peaks on the
    defect at the same accuracy (chosen on the validation split)."""

    stem: np.ndarray  # h x w x C
    row: int  # first stem cell of the window
    col: int
    stride: int  # padded-input pixels per stem cell
    geometry: FrameGeometry

    def padded_rect(self) -> tuple[int, int, int, int]:
        """(y, x, height, width) of the window's cells in padded-input pixels."""
        s = self.stride
        return self.row * s, self.col * s, self.stem.shape[0] * s, self.stem.shape[1] * s

    def region(self) -> Region:
        return Region(*self.geometry.frame_rect(*self.padded_rect()))

    def cam_to_frame(self, cam: np.ndarray) -> np.ndarray:
        """Grad-CAM over the window -> frame-sized map, zero outside the window.

        Its cells are placed at the middle of their stride (``FrameGeometry.to_frame``): on the
        NEU validation split that put more Grad-CAM peaks on the defect's box than the
        "receptive" placement the neu-steel gate map uses. Cells centred on the reflected
        margin around the frame are left out (see ``_frame_cells``)."""
        cam_stride = self.stride * max(1, round(self.stem.shape[0] / cam.shape[0]))
        origin = (self.row * self.stride, self.col * self.stride)
        heatmap = self.geometry.to_frame(self._frame_cells(cam, cam_stride, origin), cam_stride, origin)
        region = self.region()
        inside = np.zeros(heatmap.shape, bool)
        inside[region.y: region.y + region.height, region.x: region.x + region.width] = True
        heatmap[~inside] = 0.0
        return heatmap

    def _frame_cells(self, cam: np.ndarray, cam_stride: int, origin: tuple[int, int]) -> np.ndarray:
        """The cam with cells centred outside the frame zeroed: they show the reflected margin the
        gate pads with, and their interpolated edge would pull peaks onto the frame border.
        Kept whole if no cell is centred inside."""
        geometry = self.geometry
        centres_y = origin[0] + cam_stride * np.arange(cam.shape[0]) + cell_centre_offset(cam_stride)
        centres_x = origin[1] + cam_stride * np.arange(cam.shape[1]) + cell_centre_offset(cam_stride)
        rows = (centres_y >= geometry.top) & (centres_y < geometry.top + geometry.work_shape[0])
        cols = (centres_x >= geometry.left) & (centres_x < geometry.left + geometry.work_shape[1])
        if not rows.any() or not cols.any():
            return cam
        return np.where(rows[:, None] & cols[None, :], cam, 0.0).astype(np.float32)


def window_around_peak(gate: GateOutput, window: tuple[int, int] | None) -> StemWindow:
    """At most ``window`` stem cells centred on the anomaly map's peak (the whole stem if smaller or None)."""
    rows, cols = gate.stem.shape[:2]
    height, width = (rows, cols) if window is None else (min(window[0], rows), min(window[1], cols))
    stride = gate.geometry.padded_shape[0] // rows
    peak_y, peak_x = np.unravel_index(int(np.argmax(gate.anomaly_map)), gate.anomaly_map.shape)
    y, x = gate.geometry.to_padded(peak_y + 0.5, peak_x + 0.5)
    row = int(np.clip(int(y // stride) - height // 2, 0, rows - height))
    col = int(np.clip(int(x // stride) - width // 2, 0, cols - width))
    return StemWindow(gate.stem[row: row + height, col: col + width], row, col, stride, gate.geometry)


class DefectClassifier:
    """Classifier-head ONNX graph with two outputs: class probabilities and the last feature map."""

    def __init__(self, session: ort.InferenceSession, head_kernel: np.ndarray) -> None:
        self._session = session
        self._input = session.get_inputs()[0].name
        self._kernel = head_kernel.astype(np.float32)

    def classify(self, stems: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """h x w x C gate stems -> (per frame: class probabilities, h' x w' x K feature map).

        Stems of one shape run as one batch; frames of different sizes run in groups."""
        probabilities: list = [None] * len(stems)
        features: list = [None] * len(stems)
        groups: dict[tuple, list[int]] = {}
        for i, stem in enumerate(stems):
            groups.setdefault(stem.shape, []).append(i)
        for indices in groups.values():
            batch = np.stack([stems[i] for i in indices])
            probs, feats = self._session.run(None, {self._input: batch})[:2]
            for row, i in enumerate(indices):
                probabilities[i], features[i] = probs[row], feats[row]
        return probabilities, features

    def gradcam(self, features: np.ndarray, class_index: int) -> np.ndarray:
        """Grad-CAM (h x w, in [0, 1]) of one frame's feature map for one class."""
        return gradcam(features, self._kernel, class_index)
