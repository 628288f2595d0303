"""A Keras model behind the onnxruntime session interface that ``edge_runtime.anomaly.AnomalyScorer`` drives.

The gate studies score Keras models with the runtime's own post-processing, and the benchmark's
Keras reference runs the gate the way the reference design did (one ``model.predict`` per image):
both go through this one adapter.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np


class KerasSession:
    """``get_inputs`` / ``get_outputs`` / ``run`` over a Keras model whose one input the scorer feeds as
    "image". ``predict=True`` runs ``model.predict`` (the reference design), else a plain call."""

    def __init__(self, model, predict: bool = False) -> None:
        self.model, self._predict = model, predict

    def get_inputs(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(name="image")]

    def get_outputs(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(name=name) for name in self.model.output_names]

    def run(self, _outputs, feeds) -> list[np.ndarray]:
        image = feeds["image"]
        outputs = self.model.predict(image, verbose=0) if self._predict else self.model(image, training=False)
        return [np.asarray(o) for o in outputs] if isinstance(outputs, (list, tuple)) else [np.asarray(outputs)]
