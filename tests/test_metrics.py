import numpy as np
import pytest

from edge_runtime.datasets import Box
from edge_runtime.metrics import auroc, confusion_matrix, peak_inside_boxes

sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn (dev extra) is the reference")


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_scikit_learn_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(labels * 0.7, 1.0), 1)
    assert auroc(labels, scores) == pytest.approx(sklearn_metrics.roc_auc_score(labels, scores), abs=1e-12)


def test_confusion_matrix_matches_scikit_learn():
    rng = np.random.default_rng(0)
    true, predicted = rng.integers(0, 4, 100), rng.integers(0, 4, 100)
    np.testing.assert_array_equal(confusion_matrix(true, predicted, 4), sklearn_metrics.confusion_matrix(true, predicted))


def test_pointing_game_uses_x_and_y_correctly():
    heatmap = np.zeros((100, 200))
    heatmap[10, 150] = 1.0
    assert peak_inside_boxes(heatmap, [Box(140, 5, 160, 20)])
    assert not peak_inside_boxes(heatmap, [Box(5, 140, 20, 160)])
