"""Stage 2: the defect classifier and its Grad-CAM, for frames the gate flagged."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from .gradcam import gradcam
from .preprocess import PreprocessSpec, classifier_input


class DefectClassifier:
    """MobileNetV2 ONNX graph with two outputs: class probabilities and the last feature map."""

    def __init__(self, session: ort.InferenceSession, head_kernel: np.ndarray, spec: PreprocessSpec) -> None:
        self._session = session
        self._input = session.get_inputs()[0].name
        self._kernel = head_kernel.astype(np.float32)
        self._spec = spec

    def classify(self, regions: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """[0, 1] gray regions -> (N x classes probabilities, N x h x w x K feature maps)."""
        batch = np.concatenate([classifier_input(region, self._spec) for region in regions])
        probabilities, features = self._session.run(None, {self._input: batch})[:2]
        return probabilities, features

    def gradcam(self, features: np.ndarray, class_index: int) -> np.ndarray:
        """Grad-CAM (h x w, in [0, 1]) of one region's feature map for one class."""
        return gradcam(features, self._kernel, class_index)
