"""Keras training of the gate and the classifier (``python -m training``); the train extra."""

from edge_runtime.extras import require

require("training", "train", "tensorflow", "keras", "scipy", "sklearn")
