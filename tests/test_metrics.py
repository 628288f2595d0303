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


def test_pointing_game_counts_a_peak_on_the_box_edge_and_within_the_tolerance():
    heatmap = np.zeros((100, 200))
    heatmap[20, 160] = 1.0  # x 160, y 20
    assert peak_inside_boxes(heatmap, [Box(140, 5, 160, 20)])  # on the corner
    assert not peak_inside_boxes(heatmap, [Box(140, 5, 150, 20)])
    assert peak_inside_boxes(heatmap, [Box(140, 5, 150, 20)], tolerance=10.0)
    assert not peak_inside_boxes(heatmap, [Box(140, 5, 150, 20)], tolerance=9.0)


def test_every_evaluation_figure_from_known_rows():
    """Made-up results with known verdicts and classes: each figure ``evaluate`` reports, counted by hand."""
    from pathlib import Path

    from edge_runtime.datasets import Sample
    from edge_runtime.errors import ImageDecodeError
    from edge_runtime.evaluate import Case, _metrics
    from edge_runtime.result import InspectionResult, Thresholds, Verdict

    names = ["pits", "scratch"]
    peak_at = lambda x, y: np.pad(np.ones((1, 1), np.float32), ((y, 39 - y), (x, 39 - x)))  # noqa: E731
    box = (Box(0, 0, 9, 9),)

    def row(label, verdict, score, cls=None, cam=(5, 5), anomaly=(5, 5)):
        sample = Sample(Path(f"{label}-{score}.png"), label, box if label else ())
        result = InspectionResult(verdict=verdict, anomaly_score=score, thresholds=Thresholds(1.0, 2.0),
                                  anomaly_map=peak_at(*anomaly), frame=np.zeros((40, 40), np.float32), profile="p",
                                  defect_class=cls, gradcam=peak_at(*cam), timings_ms={"total": 1.0})
        return Case(sample.path.name, sample), result

    rows = [
        row("pits", Verdict.DEFECT, 3.0, "pits", anomaly=(30, 30)),  # flagged at defect, named right
        row("pits", Verdict.WARN, 1.5, "scratch", cam=(30, 30)),  # flagged at warn, named wrong, CAM outside the box
        row("scratch", Verdict.OK, 0.5, "scratch", anomaly=(30, 30)),  # passed by the gate (classified all the same)
        row("scratch", Verdict.DEFECT, 2.5, "scratch"),
        row(None, Verdict.OK, 0.2),
        row(None, Verdict.WARN, 1.2),
        row(None, Verdict.OK, 0.1),
        row(None, Verdict.DEFECT, 2.2),
        (Case("broken.png", Sample(Path("broken.png"), "pits")), ImageDecodeError("broken.png: truncated")),
    ]
    m = _metrics(rows, names)
    assert (m["n"], m["n_defect"], m["n_normal"], m["n_classified"]) == (9, 4, 4, 4)
    assert m["errors"] == [{"name": "broken.png", "error": "broken.png: truncated"}]
    assert m["classifier_accuracy"] == 0.75  # every known defect image, the gate's verdict aside
    assert m["confusion_matrix"] == [[1, 1], [0, 2]]
    assert (m["gate_recall"], m["gate_recall_defect_threshold"]) == (0.75, 0.5)
    assert m["gate_recall_by_class"] == {"pits": {"n": 2, "flagged": 1.0, "at_defect": 0.5},
                                         "scratch": {"n": 2, "flagged": 0.5, "at_defect": 0.5}}
    assert (m["false_alarm_rate"], m["false_alarm_rate_defect_threshold"]) == (0.5, 0.25)
    assert m["image_auroc"] == pytest.approx(sklearn_metrics.roc_auc_score([0, 0, 0, 0, 1, 1, 1, 1],
                                                                           [0.2, 1.2, 0.1, 2.2, 3.0, 1.5, 0.5, 2.5]))
    assert m["end_to_end_accuracy"] == 0.5  # right: pits@defect, scratch@defect, two normals passed
    assert (m["cam_pointing_game"], m["anomaly_pointing_game"]) == (0.75, 0.5)
    assert (m["cam_pointing_game_strict"], m["anomaly_pointing_game_strict"]) == (0.75, 0.5)
