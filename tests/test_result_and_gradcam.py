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
