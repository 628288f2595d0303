import dataclasses

import numpy as np
import pytest

from edge_runtime.gradcam import gradcam
from edge_runtime.result import InspectionResult, Thresholds, Verdict


def _result(**overrides):
    fields = dict(verdict=Verdict.OK, anomaly_score=0.1, thresholds=Thresholds(0.5, 1.0),
                  anomaly_map=np.zeros((8, 8), np.float32), frame=np.zeros((8, 8), np.float32),
                  profile="p", timings_ms={"total": 2.0})
    fields.update(overrides)
    return InspectionResult(**fields)


def test_result_is_immutable_including_its_arrays_and_mappings():
    result = _result(class_probabilities={"a": 1.0})
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.verdict = Verdict.DEFECT
    with pytest.raises(ValueError):
        result.anomaly_map[0, 0] = 1.0
    with pytest.raises(TypeError):
        result.class_probabilities["a"] = 0.0


def test_result_does_not_alias_the_callers_array():
    source = np.zeros((8, 8), np.float32)
    result = _result(anomaly_map=source)
    source[0, 0] = 5.0
    assert result.anomaly_map[0, 0] == 0.0


@pytest.mark.parametrize("score, verdict", [(0.49, Verdict.OK), (0.5, Verdict.WARN), (0.99, Verdict.WARN), (1.0, Verdict.DEFECT)])
def test_thresholds_give_the_verdict(score, verdict):
    assert Thresholds(0.5, 1.0).verdict(score) is verdict


def test_to_dict_is_json_ready():
    import json

    record = _result().to_dict()
    assert json.loads(json.dumps(record))["verdict"] == "ok" and record["error"] is None
    assert record["frame_term"] is None and _result(frame_term=1.5).to_dict()["frame_term"] == 1.5
    assert (record["threshold"], record["warn_threshold"]) == (1.0, 0.5)  # the defect cut, and the warn one beside it


@pytest.mark.parametrize("verdict, reject", [(Verdict.OK, False), (Verdict.WARN, False), (Verdict.DEFECT, True)])
def test_only_a_defect_is_a_reject(verdict, reject):
    """``is_reject`` is what an integrator wires an ejector to (docs/runtime_api.md): a warn frame is not ejected."""
    assert _result(verdict=verdict).is_reject is reject


def test_a_frame_that_could_not_be_inspected_is_written_with_the_same_keys_and_never_ok():
    import json

    from edge_runtime.errors import ImageDecodeError
    from edge_runtime.result import failure_dict

    failure = failure_dict("cam:3", ImageDecodeError("truncated"), "neu-steel", Thresholds(1.0, 2.0))
    assert set(failure) == set(_result().to_dict()) and json.loads(json.dumps(failure))["verdict"] == "error"
    assert (failure["error"], failure["error_type"], failure["warn_threshold"]) == ("truncated", "ImageDecodeError", 1.0)


def test_gradcam_equals_the_analytic_gradient_of_a_gap_dense_head():
    rng = np.random.default_rng(0)
    features = rng.random((7, 7, 16)).astype(np.float32)
    kernel = rng.normal(size=(16, 3)).astype(np.float32)
    cls = 2
    # d logit / d A[i, j, k] for logit = mean_ij(A) @ kernel, by finite differences on one position
    eps = 1e-2
    bumped = features.copy()
    bumped[3, 4, 5] += eps
    numeric = ((bumped.mean((0, 1)) - features.mean((0, 1))) @ kernel)[cls] / eps
    assert numeric == pytest.approx(kernel[5, cls] / 49, rel=1e-3)
    expected = np.maximum((features * (kernel[:, cls] / 49)).sum(-1), 0)
    np.testing.assert_allclose(gradcam(features, kernel, cls), expected / expected.max(), atol=1e-6)


def _gate_output(frame_shape, peak, stem_cells, margin=16, multiple=16):
    from edge_runtime.anomaly import GateOutput
    from edge_runtime.preprocess import PreprocessSpec, model_input

    padded, geometry = model_input(np.zeros(frame_shape, np.float32), PreprocessSpec(), multiple, margin)
    stride = padded.shape[0] // stem_cells
    stem = np.random.default_rng(0).random((padded.shape[0] // stride, padded.shape[1] // stride, 4), np.float32)
    anomaly_map = np.zeros(frame_shape, np.float32)
    anomaly_map[peak] = 1.0
    return GateOutput(anomaly_map, 1.0, stem, geometry)


def test_stem_window_on_a_wide_strip_is_centred_on_the_anomaly_peak():
    from edge_runtime.classifier import window_around_peak

    gate = _gate_output((256, 1600), (100, 1200), 18)  # padded 288 x 1632: 18 x 102 stem cells of 16 px
    window = window_around_peak(gate, (15, 15))
    assert window.stem.shape[:2] == (15, 15) and window.stride == 16
    np.testing.assert_array_equal(window.stem, gate.stem[window.row: window.row + 15, window.col: window.col + 15])
    region = window.region()
    assert region.x <= 1200 < region.x + region.width and region.y <= 100 < region.y + region.height
    assert abs(region.x + region.width / 2 - 1200) <= 16  # centred on the peak, within a cell: context on all sides
    assert 15 * 16 - 32 <= region.width <= 15 * 16
    cam = window.cam_to_frame(np.ones((8, 8), np.float32))
    assert cam.shape == (256, 1600)
    inside = np.zeros(cam.shape, bool)
    inside[region.y: region.y + region.height, region.x: region.x + region.width] = True
    assert cam[~inside].max() == 0 and cam[inside].min() > 0


@pytest.mark.parametrize("window_cells", [None, (15, 15), (40, 40)])
def test_stem_window_is_the_whole_stem_when_the_frame_is_not_larger(window_cells):
    from edge_runtime.classifier import window_around_peak

    gate = _gate_output((200, 200), (5, 190), 15)  # the NEU case: padded 240 x 240, 15 x 15 cells
    window = window_around_peak(gate, window_cells)
    assert (window.row, window.col) == (0, 0) and window.stem.shape == gate.stem.shape
    region = window.region()
    assert (region.x, region.y, region.width, region.height) == (0, 0, 200, 200)
    heatmap = window.cam_to_frame(np.ones((7, 7), np.float32))  # 7x7 cells of 32 px over the padded 240
    np.testing.assert_allclose(heatmap[30:180, 30:180], 1.0)
    # the first row/column of cells is centred on the reflected margin (padded pixel 15.5 < 20): left out
    assert heatmap[0, 100] < 0.5 and heatmap[100, 0] < 0.5 and heatmap.max() == 1.0


def test_flagged_reads_many_scores_as_the_verdict_reads_one():
    from edge_runtime.result import flagged

    thresholds = Thresholds(warn=0.5, defect=0.8)
    scores = np.array([0.0, np.nextafter(0.5, 0), 0.5, 0.79, 0.8, np.nextafter(0.8, 1), 3.0])
    verdicts = [thresholds.verdict(float(s)) for s in scores]
    assert list(flagged(scores, thresholds.warn)) == [v is not Verdict.OK for v in verdicts]
    assert list(flagged(scores, thresholds.defect)) == [v is Verdict.DEFECT for v in verdicts]
