"""Training curves (matplotlib, headless). Confusion matrices and score plots come from
edge_runtime.evaluation_plots, so training, export and evaluate draw them alike."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_history(history: dict[str, dict[str, list[float]]], path: Path, title: str) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    offset = 0
    for stage, curves in history.items():
        for key, values in curves.items():
            ax = axes[0] if "loss" in key else axes[1]
            ax.plot(np.arange(offset, offset + len(values)) + 1, values, label=f"{stage} {key}")
        offset += len(next(iter(curves.values())))
    for ax, name in zip(axes, ("loss", "metric")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
