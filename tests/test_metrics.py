import numpy as np
import pytest

from edge_runtime.datasets import Box
from edge_runtime.metrics import auroc, confusion_matrix, peak_inside_boxes, peak_location, separation_auroc

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


def test_peak_of_a_flat_maximum_is_its_centre():
    heatmap = np.zeros((100, 100))
    heatmap[0:20, 40:60] = 1.0  # an edge cell blown up by interpolation: a plateau touching the border
    assert peak_location(heatmap) == (49.5, 9.5)
    assert peak_inside_boxes(heatmap, [Box(40, 5, 60, 15)])


def test_pointing_tolerance_counts_near_misses_only_when_asked():
    heatmap = np.zeros((100, 100))
    heatmap[50, 70] = 1.0
    box = Box(10, 10, 60, 60)
    assert not peak_inside_boxes(heatmap, [box])
    assert peak_inside_boxes(heatmap, [box], tolerance=15)
    assert not peak_inside_boxes(heatmap, [box], tolerance=5)


def test_separation_auroc_is_the_auroc_with_defects_as_positives():
    normal, defect = np.array([0.1, 0.4, 0.35]), np.array([0.35, 0.8])
    assert separation_auroc(normal, defect) == auroc([0, 0, 0, 1, 1], [0.1, 0.4, 0.35, 0.35, 0.8])
    assert separation_auroc(normal, defect) == pytest.approx(4.5 / 6)  # 0.35 beats 0.1, ties 0.35, loses to 0.4; 0.8 beats all
