"""Stage 1, the gate: autoencoder reconstruction error -> anomaly map and score."""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort

from .preprocess import PreprocessSpec, resize


class AnomalyScorer:
    """Runs the exported autoencoder graph (backbone + autoencoder + error map) over a whole frame.

    The graph is fully convolutional; the frame is reflect-padded to a multiple of the
    backbone's stride, the stride-``feature_stride`` error map is smoothed with a Gaussian
    (``sigma`` in map cells), upsampled and cropped back to frame coordinates. The anomaly
    score is the maximum of that map. ``ignore_border`` (a fraction of the frame per side)
    zeroes the outer band of the map for profiles whose frames show part edges there.
    """

    def __init__(self, session: ort.InferenceSession, spec: PreprocessSpec, feature_stride: int,
                 input_multiple: int, sigma: float, ignore_border: float = 0.0) -> None:
        self._session = session
        self._input = session.get_inputs()[0].name
        self._spec = spec
        self._stride = feature_stride
        self._multiple = input_multiple
        self._sigma = sigma
        self._ignore_border = ignore_border

    def error_cells(self, frames: np.ndarray) -> np.ndarray:
        """Raw error maps (N x h x w) for a batch of equally sized, already padded frames."""
        errors = self._session.run(None, {self._input: frames[:, :, :, None]})[0]
        return errors[..., 0] if errors.ndim == 4 else errors

    def anomaly_map(self, frame: np.ndarray) -> np.ndarray:
        """float32 HxW map in frame coordinates for a [0, 1] gray frame."""
        spec = self._spec
        work = resize(frame, spec.anomaly_size, spec.interpolation) if spec.anomaly_size else frame
        height, width = work.shape
        pad_h, pad_w = (-height) % self._multiple, (-width) % self._multiple
        top, left = pad_h // 2, pad_w // 2
        padded = cv2.copyMakeBorder(work, top, pad_h - top, left, pad_w - left, cv2.BORDER_REFLECT_101)
        cells = self.error_cells(padded[None])[0]
        if self._sigma > 0:
            cells = cv2.GaussianBlur(cells, (0, 0), self._sigma)
        upsampled = cv2.resize(cells, (cells.shape[1] * self._stride, cells.shape[0] * self._stride),
                               interpolation=cv2.INTER_LINEAR)
        valid = upsampled[top: top + height, left: left + width]
        if valid.shape != frame.shape:
            valid = cv2.resize(valid, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)
        anomaly_map = np.array(valid, dtype=np.float32)
        if self._ignore_border > 0:
            band_y, band_x = int(frame.shape[0] * self._ignore_border), int(frame.shape[1] * self._ignore_border)
            inside = anomaly_map[band_y: frame.shape[0] - band_y, band_x: frame.shape[1] - band_x].copy()
            anomaly_map[:] = 0.0
            anomaly_map[band_y: frame.shape[0] - band_y, band_x: frame.shape[1] - band_x] = inside
        return anomaly_map
