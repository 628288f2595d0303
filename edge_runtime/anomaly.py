"""Stage 1, the gate: autoencoder reconstruction error -> anomaly map and score."""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort

from .manifest import NORMALISATIONS
from .preprocess import PreprocessSpec, anomaly_frame, pad_for_anomaly


class AnomalyScorer:
    """Runs the exported autoencoder graph (backbone + autoencoder + error map) over a whole frame.

    The graph is fully convolutional; the frame is reflect-padded (``pad_margin`` pixels at
    least, up to a multiple of the backbone's stride), the stride-``feature_stride`` error map is smoothed with a Gaussian
    (``sigma`` in map cells), upsampled and cropped back to frame coordinates. The anomaly
    score is the maximum of that map. ``ignore_border`` (a fraction of the frame per side)
    zeroes the outer band of the map for profiles whose frames show part edges there.

    ``normalise="frame_mean"`` divides the map by its own mean over the scored area, so the
    score reads "times this frame's typical reconstruction error". That factors out how well
    the frame's texture as a whole is reconstructed (steel strips differ in tone and grain
    from coil to coil) and leaves local departures; a defect that covers most of the frame
    raises its own baseline and scores lower. Chosen per profile on the validation split
    (``python -m export.score_options``).
    """

    def __init__(self, session: ort.InferenceSession, spec: PreprocessSpec, feature_stride: int,
                 input_multiple: int, sigma: float, ignore_border: float = 0.0, pad_margin: int = 0,
                 normalise: str = "none") -> None:
        if normalise not in NORMALISATIONS:
            raise ValueError(f"unknown anomaly-map normalisation {normalise!r}; expected one of {NORMALISATIONS}")
        self._session = session
        self._input = session.get_inputs()[0].name
        self._spec = spec
        self._stride = feature_stride
        self._multiple = input_multiple
        self._sigma = sigma
        self._ignore_border = ignore_border
        self._pad_margin = pad_margin
        self._normalise = normalise

    @classmethod
    def for_profile(cls, session, config) -> "AnomalyScorer":
        """The scorer a manifest profile (``manifest.ProfileConfig``) describes, around any session."""
        return cls(session, config.preprocess, config.feature_stride, config.input_multiple, config.score_sigma,
                   config.ignore_border, config.pad_margin, config.score_normalise)

    def model_input(self, frame: np.ndarray) -> tuple[np.ndarray, int, int, tuple[int, int]]:
        """(1xHxW padded batch, top, left, working size) for a [0, 1] gray frame."""
        work = anomaly_frame(frame, self._spec)
        padded, top, left = pad_for_anomaly(work, self._multiple, self._pad_margin)
        return padded[None], top, left, work.shape

    def error_cells(self, frames: np.ndarray) -> np.ndarray:
        """Raw error maps (N x h x w) for a batch of equally sized, already padded frames."""
        errors = self._session.run(None, {self._input: frames[:, :, :, None]})[0]
        return errors[..., 0] if errors.ndim == 4 else errors

    def anomaly_map(self, frame: np.ndarray) -> np.ndarray:
        """float32 HxW map in frame coordinates for a [0, 1] gray frame."""
        batch, top, left, work_shape = self.model_input(frame)
        return self.map_from_cells(self.error_cells(batch)[0], top, left, work_shape, frame.shape)

    def map_from_cells(self, cells: np.ndarray, top: int, left: int, work_shape: tuple[int, int],
                       frame_shape: tuple[int, int]) -> np.ndarray:
        """Smooth the stride-level error cells and bring them back to frame coordinates."""
        if self._sigma > 0:
            cells = cv2.GaussianBlur(cells, (0, 0), self._sigma)
        upsampled = cv2.resize(cells, (cells.shape[1] * self._stride, cells.shape[0] * self._stride),
                               interpolation=cv2.INTER_LINEAR)
        valid = upsampled[top: top + work_shape[0], left: left + work_shape[1]]
        if valid.shape != tuple(frame_shape):
            valid = cv2.resize(valid, (frame_shape[1], frame_shape[0]), interpolation=cv2.INTER_LINEAR)
        band_y, band_x = int(frame_shape[0] * self._ignore_border), int(frame_shape[1] * self._ignore_border)
        scored = np.array(valid[band_y: frame_shape[0] - band_y, band_x: frame_shape[1] - band_x], dtype=np.float32)
        if self._normalise == "frame_mean":
            scored /= max(float(scored.mean()), 1e-12)
        anomaly_map = np.zeros(frame_shape, np.float32)
        anomaly_map[band_y: frame_shape[0] - band_y, band_x: frame_shape[1] - band_x] = scored
        return anomaly_map
