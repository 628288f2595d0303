"""Grad-CAM from the classifier's exposed feature-map output, without TensorFlow.

The head is GlobalAveragePooling -> Dense(logits), so d logit_c / d A[i, j, k] is
``kernel[k, c] / (H * W)`` at every position: the Grad-CAM channel weights are the
Dense kernel column divided by H*W, exactly what ``GradientTape`` would compute.
"""

from __future__ import annotations

import numpy as np


def gradcam(features: np.ndarray, kernel: np.ndarray, class_index: int) -> np.ndarray:
    """features: HxWxK feature map of one image; kernel: KxC Dense kernel. Returns HxW in [0, 1]."""
    height, width, _ = features.shape
    weights = kernel[:, class_index] / np.float32(height * width)
    cam = np.maximum(features @ weights, 0.0)
    peak = cam.max()
    return (cam / peak if peak > 0 else cam).astype(np.float32)
