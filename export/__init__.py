"""ONNX export, parity checks, threshold calibration and the manifest (``python -m export``); the train extra."""

from edge_runtime.extras import require

require("export", "train", "tensorflow", "tf2onnx", "onnx", "scipy", "sklearn")
