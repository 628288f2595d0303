"""Training plots (matplotlib, headless)."""

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


def plot_confusion(confusion: np.ndarray, names: list[str], path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.imshow(confusion, cmap="Blues")
    for (i, j), value in np.ndenumerate(np.asarray(confusion)):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_scores(normal: np.ndarray, defect: np.ndarray, thresholds: dict[str, float], path: Path, title: str) -> None:
    from sklearn.metrics import roc_curve

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    bins = np.linspace(min(normal.min(), defect.min()), max(normal.max(), defect.max()), 50)
    axes[0].hist(normal, bins, alpha=0.6, label=f"normal (n={len(normal)})")
    axes[0].hist(defect, bins, alpha=0.6, label=f"defect (n={len(defect)})")
    for name, value in thresholds.items():
        axes[0].axvline(value, ls="--", color="k" if name == "defect" else "orange", label=f"{name} {value:.3g}")
    axes[0].set_xlabel("anomaly score")
    axes[0].legend(fontsize=7)
    fpr, tpr, _ = roc_curve(np.r_[np.zeros(len(normal)), np.ones(len(defect))], np.r_[normal, defect])
    axes[1].plot(fpr, tpr)
    axes[1].plot([0, 1], [0, 1], ":", color="gray")
    axes[1].set_xlabel("false-alarm rate")
    axes[1].set_ylabel("recall")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
