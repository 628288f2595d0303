"""Evaluation plots (needs matplotlib: the [train] or [dashboard] extra). Training and
export draw their confusion matrices and score plots with these same functions."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .image_io import write_image
from .overlay import anomaly_overlay, heatmap_overlay
from .result import InspectionResult


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise SystemExit("plots need matplotlib: pip install '.[dashboard]'") from error
    return plt


def plot_confusion(confusion, names: list[str], path: Path, title: str) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.imshow(np.asarray(confusion), cmap="Blues")
    for (i, j), value in np.ndenumerate(np.asarray(confusion)):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return _save(fig, path, plt)


def plot_scores(normal: np.ndarray, defect: np.ndarray, thresholds: dict[str, float], path: Path, title: str) -> Path:
    """Score histograms of normal and defect frames with the thresholds, and the ROC curve."""
    from .metrics import separation_auroc

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    bins = np.linspace(min(normal.min(), defect.min()), max(normal.max(), defect.max()), 50)
    axes[0].hist(normal, bins, alpha=0.6, label=f"normal ({len(normal)})")
    axes[0].hist(defect, bins, alpha=0.6, label=f"defect ({len(defect)})")
    for name, value in thresholds.items():
        axes[0].axvline(value, ls="--", color="k" if name == "defect" else "orange", label=f"{name} {value:.3g}")
    axes[0].set_xlabel("anomaly score")
    axes[0].legend(fontsize=7)
    cut = np.unique(np.r_[normal, defect])[::-1]
    axes[1].plot([np.mean(normal >= t) for t in cut], [np.mean(defect >= t) for t in cut])
    axes[1].plot([0, 1], [0, 1], ":", color="gray")
    area = separation_auroc(normal, defect)
    axes[1].set(xlabel="false-alarm rate", ylabel="gate recall", title=f"AUROC {area:.3f}")
    fig.suptitle(title)
    return _save(fig, path, plt)


def write_plots(metrics: dict, rows: list, folder: Path, gallery_size: int = 12) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    done = [(c, r) for c, r in rows if isinstance(r, InspectionResult)]
    if "confusion_matrix" in metrics:
        written.append(plot_confusion(metrics["confusion_matrix"], metrics["class_names"],
                                      folder / "confusion_matrix.png",
                                      f"classifier accuracy {metrics['classifier_accuracy']:.4f}"))
    normal = np.array([r.anomaly_score for c, r in done if c.sample.is_normal])
    defect = np.array([r.anomaly_score for c, r in done if not c.sample.is_normal])
    if len(normal) and len(defect):
        written.append(plot_scores(normal, defect, metrics["thresholds"], folder / "scores_roc.png",
                                   f"{metrics['profile']}: anomaly scores"))
    with_cam = [r for _, r in done if r.gradcam is not None]
    gallery = with_cam[:: max(1, len(with_cam) // gallery_size)][:gallery_size]  # spread over the data set
    if gallery:
        tiles = [np.hstack([cv2.resize(anomaly_overlay(r), (160, 160)),
                            cv2.resize(heatmap_overlay(r.frame, r.gradcam), (160, 160))]) for r in gallery]
        tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % 3)
        written.append(folder / "gallery.png")
        write_image(written[-1], np.vstack([np.hstack(tiles[i: i + 3]) for i in range(0, len(tiles), 3)]))
    return written


def _save(fig, path: Path, plt) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
