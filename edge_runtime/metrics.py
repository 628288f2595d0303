"""Evaluation metrics in plain numpy (the runtime install has no scikit-learn; tests check
these against scikit-learn)."""

from __future__ import annotations

import numpy as np


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties). labels: 1 = positive."""
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, np.float64).ravel()
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUROC needs both positive and negative samples")
    unique, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    first_rank = np.cumsum(counts) - counts + 1
    average_rank = first_rank + (counts - 1) / 2.0
    rank_sum = average_rank[inverse][labels].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def separation_auroc(normal_scores, defect_scores) -> float:
    """AUROC of scores that should be higher for defects than for normals (defect = positive)."""
    normal_scores, defect_scores = np.ravel(normal_scores), np.ravel(defect_scores)
    return auroc(np.r_[np.zeros(len(normal_scores)), np.ones(len(defect_scores))], np.r_[normal_scores, defect_scores])


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    matrix = np.zeros((n_classes, n_classes), int)
    np.add.at(matrix, (np.asarray(true, int), np.asarray(predicted, int)), 1)
    return matrix


def peak_location(heatmap: np.ndarray) -> tuple[float, float]:
    """(x, y) of the heatmap's maximum; the centre of the plateau when the maximum is flat
    (an upsampled 7x7 map is flat out to the frame edge beyond its outer cell centres)."""
    ys, xs = np.nonzero(heatmap >= heatmap.max())
    return float(xs.mean()), float(ys.mean())


def peak_inside_boxes(heatmap: np.ndarray, boxes, tolerance: float = 0.0) -> bool:
    """Pointing game: is the heatmap's maximum inside (or within ``tolerance`` pixels of) a box?

    The pointing game of Zhang et al. (ECCV 2016, "Top-down neural attention by excitation
    backprop") uses a 15-pixel tolerance; ``evaluate`` reports both 0 and 15.
    """
    x, y = peak_location(heatmap)
    return any(
        box.xmin - tolerance <= x <= box.xmax + tolerance and box.ymin - tolerance <= y <= box.ymax + tolerance
        for box in boxes
    )
