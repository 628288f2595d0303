"""How the gate's error cells become an anomaly map and score (edge_runtime.anomaly), with a stand-in model."""

import json
import shutil

import numpy as np
import pytest

from edge_runtime.anomaly import AnomalyScorer
from edge_runtime.errors import ManifestError
from edge_runtime.inspector import Inspector
from edge_runtime.preprocess import PreprocessSpec
from tests.conftest import ROOT, needs_models


class CellsSession:
    """Returns fixed stride-8 error cells for any 1xHxWx1 input."""

    def __init__(self, cells: np.ndarray) -> None:
        self.cells = cells

    def get_inputs(self):
        return [type("Input", (), {"name": "image"})]

    def run(self, _outputs, feeds):
        batch, height, width, _ = feeds["image"].shape
        assert (height // 8, width // 8) == self.cells.shape
        return [np.broadcast_to(self.cells, (batch, *self.cells.shape))[..., None].astype(np.float32)]


def _cells(scale: float = 1.0) -> np.ndarray:
    cells = np.full((8, 8), 0.5, np.float32)
    cells[3, 4] = 4.0
    return cells * scale


def _scorer(cells: np.ndarray, normalise: str, ignore_border: float = 0.0) -> AnomalyScorer:
    return AnomalyScorer(CellsSession(cells), PreprocessSpec(), 8, 16, 0.0, ignore_border, 0, normalise)


def test_frame_mean_divides_the_map_by_its_own_mean():
    frame = np.zeros((64, 64), np.float32)
    plain = _scorer(_cells(), "none").anomaly_map(frame)
    normalised = _scorer(_cells(), "frame_mean").anomaly_map(frame)
    assert normalised.mean() == pytest.approx(1.0, rel=1e-5)
    assert np.allclose(normalised, plain / plain.mean(), rtol=1e-5)


def test_frame_mean_score_ignores_a_global_change_of_the_error_level():
    frame = np.zeros((64, 64), np.float32)
    low = _scorer(_cells(1.0), "frame_mean").anomaly_map(frame).max()
    high = _scorer(_cells(7.0), "frame_mean").anomaly_map(frame).max()
    assert high == pytest.approx(low, rel=1e-5)
    assert _scorer(_cells(7.0), "none").anomaly_map(frame).max() == pytest.approx(7 * _scorer(
        _cells(1.0), "none").anomaly_map(frame).max(), rel=1e-5)


def test_frame_mean_uses_only_the_scored_area_and_keeps_the_border_band_at_zero():
    frame = np.zeros((64, 64), np.float32)
    cells = _cells()
    cells[0, :] = 100.0  # only in the ignored band: must not raise the baseline
    anomaly_map = _scorer(cells, "frame_mean", ignore_border=0.25).anomaly_map(frame)
    assert np.all(anomaly_map[:16] == 0) and np.all(anomaly_map[:, :16] == 0)
    assert anomaly_map[16:48, 16:48].mean() == pytest.approx(1.0, rel=1e-5)


def test_frame_median_divides_the_map_by_its_median_which_a_small_defect_does_not_move():
    frame = np.zeros((64, 64), np.float32)
    plain = _scorer(_cells(), "none").anomaly_map(frame)
    normalised = _scorer(_cells(), "frame_median").anomaly_map(frame)
    assert np.median(normalised) == pytest.approx(1.0, rel=1e-5)
    assert np.allclose(normalised, plain / np.median(plain), rtol=1e-5)
    assert np.median(plain) == pytest.approx(0.5)  # the 4.0 cell moves the mean, not the median


def test_normalising_level_and_scored_area_are_what_the_map_uses():
    scorer = _scorer(_cells(), "frame_mean", ignore_border=0.25)
    assert scorer.scored_area((64, 64)) == (slice(16, 48), slice(16, 48))
    assert scorer.normalising_level(np.array([1.0, 2.0, 6.0])) == pytest.approx(3.0)
    assert _scorer(_cells(), "frame_median").normalising_level(np.array([1.0, 2.0, 6.0])) == pytest.approx(2.0)
    assert _scorer(_cells(), "none").normalising_level(np.array([1.0, 2.0, 6.0])) == 1.0


def test_unknown_normalisation_is_refused():
    with pytest.raises(ValueError, match="normalisation 'median'"):
        _scorer(_cells(), "median")


@needs_models
def test_manifest_with_an_unknown_normalisation_is_a_clear_error(tmp_path):
    shutil.copytree(ROOT / "models", tmp_path / "models")
    manifest = json.loads((ROOT / "models.manifest.json").read_text())
    manifest["profiles"]["neu-steel"]["autoencoder"]["score"]["normalise"] = "median"
    (tmp_path / "models.manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="normalise 'median'"):
        Inspector.from_manifest(tmp_path / "models.manifest.json")


@needs_models
def test_the_inspector_scores_as_its_manifest_says():
    inspector = Inspector.from_manifest(profile="neu-steel")
    assert inspector.config.score_normalise == "frame_mean"
    assert Inspector.from_manifest(profile="magnetic-tile").config.score_normalise == "none"
