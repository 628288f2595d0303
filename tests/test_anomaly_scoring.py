"""How the gate's error cells become an anomaly map and score (edge_runtime.anomaly), with a stand-in model."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.anomaly import AnomalyScorer
from edge_runtime.errors import ManifestError
from edge_runtime.manifest import FrameTerm, ResidualDetector
from edge_runtime.inspector import Inspector
from edge_runtime.preprocess import PreprocessSpec
from tests.conftest import MANIFEST, ROOT, needs_models, needs_neu, needs_tile, textured


class CellsSession:
    """Returns fixed stride-8 error cells for any 1xHxWx1 input, and a fixed frame-level error when
    given one (the outputs in another order than the real graph's, as only their names count)."""

    def __init__(self, cells: np.ndarray, frame_error: float | None = None) -> None:
        self.cells, self.frame_error = cells, frame_error

    def get_inputs(self):
        return [type("Input", (), {"name": "image"})]

    def get_outputs(self):
        names = ["error_map"] if self.frame_error is None else ["frame_error", "error_map"]
        return [type("Output", (), {"name": name}) for name in names]

    def run(self, _outputs, feeds):
        batch, height, width, _ = feeds["image"].shape
        assert (height // 8, width // 8) == self.cells.shape
        cells = np.broadcast_to(self.cells, (batch, *self.cells.shape))[..., None].astype(np.float32)
        if self.frame_error is None:
            return [cells]
        return [np.full((batch, 1, 1, 1), self.frame_error, np.float32), cells]


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


@pytest.mark.parametrize("normalise", ["frame_mean", "frame_median"])
def test_a_level_cap_keeps_a_raised_frame_from_dividing_its_deviation_away(normalise):
    frame = np.zeros((64, 64), np.float32)

    def score(scale, cap):
        scorer = AnomalyScorer(CellsSession(_cells(scale)), PreprocessSpec(), 8, 16, 0.0, 0.0, 0, normalise,
                               level_cap=cap)
        return scorer.anomaly_map(frame).max()

    plain = _scorer(_cells(1.0), "none").anomaly_map(frame)
    level = plain.mean() if normalise == "frame_mean" else np.median(plain)
    assert score(1.0, 10 * level) == pytest.approx(score(1.0, None), rel=1e-6)  # below the cap: as before
    assert score(100.0, None) == pytest.approx(score(1.0, None), rel=1e-5)  # uncapped: any level reads the same
    capped = score(100.0, 10 * level)  # a level 100x the usual one is divided by 10x at most
    assert capped == pytest.approx(10 * score(1.0, None), rel=1e-5)


def _manifest_with_score(folder: Path, **score) -> Path:
    """A copy of the committed manifest with neu-steel's ``autoencoder.score`` entries set (the text
    "inf" written as JSON's Infinity)."""
    from tests.conftest import editable_manifest

    folder.mkdir(parents=True, exist_ok=True)
    path = editable_manifest(folder)
    manifest = json.loads(path.read_text())
    manifest["profiles"]["neu-steel"]["autoencoder"]["score"].update(score)
    path.write_text(json.dumps(manifest).replace('"inf"', "Infinity"))
    return path


def test_a_non_positive_level_cap_in_the_manifest_is_refused(tmp_path):
    with pytest.raises(ManifestError, match="level_cap must be positive"):
        Inspector.from_manifest(_manifest_with_score(tmp_path, level_cap=0), "neu-steel")


@pytest.mark.parametrize("power", [0.5, 1.5])
def test_a_level_power_divides_by_the_capped_level_raised_to_it(power):
    frame = np.zeros((64, 64), np.float32)

    def score(scale, cap=None):
        scorer = AnomalyScorer(CellsSession(_cells(scale)), PreprocessSpec(), 8, 16, 0.0, 0.0, 0, "frame_mean",
                               level_cap=cap, level_power=power)
        return scorer.anomaly_map(frame).max()

    plain = _scorer(_cells(1.0), "none").anomaly_map(frame)
    assert score(1.0) == pytest.approx(plain.max() / plain.mean() ** power, rel=1e-5)
    # A level four times higher: the peak keeps 4 ** (1 - power) of its ratio to the level.
    assert score(4.0) == pytest.approx(score(1.0) * 4.0 ** (1.0 - power), rel=1e-5)
    assert score(4.0, cap=plain.mean()) == pytest.approx(4.0 * score(1.0), rel=1e-5)  # capped at the old level
    assert _scorer(_cells(4.0), "none").anomaly_map(frame).max() == pytest.approx(4.0 * plain.max(), rel=1e-5)


@pytest.mark.parametrize("power", [0, -1, "inf", None])
def test_a_level_power_that_is_not_a_positive_number_is_refused(tmp_path, power):
    with pytest.raises(ManifestError, match="level_power must be a positive number|malformed"):
        Inspector.from_manifest(_manifest_with_score(tmp_path, level_power=power), "neu-steel")


def test_level_power_study_protects_every_class_then_picks_by_validation_recall():
    from studies.level_power_study import chosen_power

    def row(power, warn, defect, per_class):
        return {"level_power": power, "val": {"gate_recall_warn": warn, "gate_recall_defect": defect,
                                              "gate_recall_warn_per_class": dict(zip("ab", per_class))}}

    sizes = {"a": 100, "b": 100}
    rows = {"1": row(1.0, 0.80, 0.30, (0.80, 0.80)), "1.25": row(1.25, 0.86, 0.40, (0.90, 0.82)),
            "1.5": row(1.5, 0.85, 0.60, (0.92, 0.78)), "2": row(2.0, 0.90, 0.65, (1.00, 0.70))}
    assert chosen_power(rows, sizes) == 1.5  # 2 images behind 1.25 is a tie, and it rejects more at once;
    # 2.0 has the best recall but costs class b 10 images
    rows["1.5"] = row(1.5, 0.85, 0.60, (0.96, 0.76))  # class b loses 4 images: no longer allowed
    assert chosen_power(rows, sizes) == 1.25
    rows = {"1": row(1.0, 0.80, 0.30, (0.80, 0.80)), "0.75": row(0.75, 0.81, 0.31, (0.81, 0.81))}
    assert chosen_power(rows, sizes) == 1.0  # a tie at warn and at defect keeps the scoring as it was


def test_joint_scoring_study_keeps_the_deployed_scoring_unless_a_safe_one_gains_more_than_a_tie():
    from studies.joint_scoring_study import Scoring, chosen_scoring

    def row(power, cap, sigma, warn, defect, per_class):
        return Scoring(power, cap, sigma).name, {
            "level_power": power, "level_cap": cap, "detector_sigma": sigma,
            "val": {"gate_recall_warn": warn, "gate_recall_defect": defect,
                    "gate_recall_warn_per_class": dict(zip("ab", per_class))}}

    sizes = {"a": 50, "b": 50}
    deployed, deployed_row = row(1.4, 2.0, 4.0, 0.90, 0.70, (0.90, 0.90))
    rows = dict([(deployed, deployed_row), row(1.5, 2.0, 4.0, 0.93, 0.80, (0.96, 0.90))])
    assert chosen_scoring(rows, deployed, sizes) == deployed  # 3 more images at warn is a tie
    rows = dict([(deployed, deployed_row), row(1.5, 2.0, 4.0, 0.94, 0.72, (0.98, 0.90)),
                 row(1.75, 2.0, 5.0, 0.95, 0.80, (1.00, 0.90)), row(2.0, None, 4.0, 0.99, 0.90, (1.00, 0.98))])
    rows[Scoring(2.0, None, 4.0).name]["val"]["gate_recall_warn_per_class"] = {"a": 1.0, "b": 0.82}
    # 2.0 gains most but costs class b 4 images; 1.5 and 1.75 tie at warn, 1.75 rejects 4 more at once
    assert chosen_scoring(rows, deployed, sizes) == Scoring(1.75, 2.0, 5.0).name
    rows[Scoring(1.75, 2.0, 5.0).name]["val"]["gate_recall_defect"] = 0.74
    # now a tie at defect too: the fewest options changed from the deployed scoring
    assert chosen_scoring(rows, deployed, sizes) == Scoring(1.5, 2.0, 4.0).name


@needs_neu
@needs_models
def test_a_scoring_sweep_sets_the_detectors_scale_again_as_the_export_does():
    """A study that changes the error map's scoring (``studies.level_cap_study.rescored``) sets the residual
    detector's scale again on the validation split: with the deployed scoring it is the manifest's scale,
    with another level power another one."""
    from studies.level_cap_study import rescored
    from studies.score_options import MemoSession
    from export.study_cli import deployed_gate
    from edge_runtime.inspector import session

    gate = deployed_gate(MANIFEST, "neu-steel")
    shared = MemoSession(session(gate.config.autoencoder.verify()))
    deployed = gate.config.residual_detector
    assert rescored(gate, shared).residual_detector.scale == pytest.approx(deployed.scale, rel=1e-6)
    other = rescored(gate, shared, score_level_power=2.0).residual_detector
    assert other.sigma == deployed.sigma and abs(other.scale - deployed.scale) > 0.01 * deployed.scale


@needs_tile
@needs_models
def test_a_scoring_sweep_at_the_deployed_value_gives_the_export_s_figures(tmp_path, monkeypatch):
    """``python -m studies.scoring_sweep`` calibrates each value as the export does: at the tile's deployed
    edge band it reproduces the thresholds and validation figures the export wrote into the manifest, and a
    band of another width gives other ones."""
    from export import study_cli
    from studies import scoring_sweep

    monkeypatch.setattr(study_cli, "ROOT", tmp_path)
    assert scoring_sweep.main(["--profile", "magnetic-tile", "--manifest", str(MANIFEST), "--option", "ignore_border",
                               "0.1", "0"]) == 0
    rows = json.loads((tmp_path / "results" / "magnetic-tile" / "scoring_sweep_ignore_border.json").read_text())["rows"]
    entry = json.loads(MANIFEST.read_text())["profiles"]["magnetic-tile"]
    assert rows["0.1"]["thresholds"]["warn"] == pytest.approx(entry["thresholds"]["warn"], rel=1e-5)
    assert rows["0.1"]["val"]["gate_recall_warn"] == pytest.approx(entry["metrics"]["gate_calibration"]["gate_recall_warn"])
    assert rows["0"]["thresholds"]["warn"] != pytest.approx(rows["0.1"]["thresholds"]["warn"], rel=1e-3)


@needs_neu
@needs_models
def test_the_map_join_study_at_the_maximum_gives_the_export_s_figures(tmp_path, monkeypatch):
    """``python -m studies.map_join_study`` calibrates each join as the export does: its maximum row is the
    deployed gate (the manifest's thresholds and validation recall), and a power mean sets other thresholds."""
    from export import study_cli
    from studies import map_join_study

    monkeypatch.setattr(study_cli, "ROOT", tmp_path)
    assert map_join_study.main(["--profile", "neu-steel", "--manifest", str(MANIFEST), "--strip-frames", "12"]) == 0
    rows = json.loads((tmp_path / "results" / "neu-steel" / "map_join_study.json").read_text())["rows"]
    entry = json.loads(MANIFEST.read_text())["profiles"]["neu-steel"]
    maximum, mean = rows[0], rows[-1]
    assert maximum["power"] is None and mean["power"] == 1.0
    for level in ("warn", "defect"):
        assert maximum["thresholds"][level] == pytest.approx(entry["thresholds"][level], rel=1e-5)
    assert maximum["val"]["gate_recall_warn"] == pytest.approx(entry["metrics"]["gate_calibration"]["gate_recall_warn"])
    assert mean["thresholds"]["warn"] < maximum["thresholds"]["warn"]  # the mean of two maps never exceeds their maximum


@needs_neu
@needs_models
def test_the_gate_intervals_recalibrate_the_deployed_thresholds_and_bracket_the_test_figures():
    """``python -m export.gate_intervals`` scores the splits as the export does: from the validation split it
    sets the manifest's thresholds again, and its test figures are the manifest's, inside their intervals."""
    from export.gate_intervals import study

    result = study(MANIFEST, "neu-steel", rounds=100)
    entry = json.loads(MANIFEST.read_text())["profiles"]["neu-steel"]
    for level in ("warn", "defect"):
        assert result["thresholds_recalibrated"][level] == pytest.approx(entry["thresholds"][level], rel=1e-5)
    assert result["test"]["gate_recall_warn"] == pytest.approx(entry["metrics"]["gate_test"]["gate_recall_warn"])
    assert result["test"]["false_alarm_rate_warn"] == pytest.approx(entry["metrics"]["gate_test"]["false_alarm_rate_warn"])
    for key, value in result["test"].items():
        low, high = result["bootstrap"][key]["whole_protocol"]
        assert low <= value <= high


def test_line_smoothing_keeps_a_line_s_height_where_isotropic_smoothing_spreads_it():
    from studies.line_smoothing_study import line_kernel, line_smoothed

    for degrees in (0.0, 45.0, 90.0, 135.0):
        assert line_kernel(4.0, 1.0, degrees).sum() == pytest.approx(1.0, rel=1e-5)
    assert np.allclose(line_kernel(2.0, 2.0, 0.0), line_kernel(2.0, 2.0, 45.0), atol=1e-6)  # round: no direction
    cells = np.zeros((30, 30), np.float32)
    cells[15, :] = 1.0  # a line one cell wide along the rows
    along = line_smoothed(cells, 4.0, 1.0)[15, 15]
    round_ = line_smoothed(cells, 4.0, 4.0)[15, 15]
    assert along == pytest.approx(1.0 / np.sqrt(2 * np.pi), rel=0.02)  # only the across sigma of 1 cell spreads it
    assert round_ == pytest.approx(along / 4.0, rel=0.02)
    assert line_smoothed(cells.T, 4.0, 1.0)[15, 15] == pytest.approx(along, rel=1e-5)  # the same along the columns


@needs_neu
@needs_models
def test_the_line_smoothing_study_s_isotropic_row_is_the_deployed_gate(tmp_path, monkeypatch):
    """``python -m studies.line_smoothing_study`` sets each variant's detector scale and thresholds as the export
    does: its isotropic row gives the manifest's scale, thresholds and validation recall."""
    from export import study_cli
    from studies import line_smoothing_study

    monkeypatch.setattr(study_cli, "ROOT", tmp_path)
    assert line_smoothing_study.main(["--profile", "neu-steel", "--manifest", str(MANIFEST), "--strip-frames", "0"]) == 0
    rows = json.loads((tmp_path / "results" / "neu-steel" / "line_smoothing_study.json").read_text())["rows"]
    entry = json.loads(MANIFEST.read_text())["profiles"]["neu-steel"]
    deployed = rows[0]
    assert deployed["along_across"] is None and deployed["strip_clean_flagged_warn"] is None
    assert deployed["scale"] == pytest.approx(entry["autoencoder"]["score"]["residual_detector"]["scale"], rel=1e-5)
    for level in ("warn", "defect"):
        assert deployed["thresholds"][level] == pytest.approx(entry["thresholds"][level], rel=1e-5)
    assert deployed["val"]["gate_recall_warn"] == pytest.approx(entry["metrics"]["gate_calibration"]["gate_recall_warn"])
    assert all(row["scale"] != pytest.approx(deployed["scale"], rel=1e-3) for row in rows[1:])


@needs_neu
@needs_models
def test_the_shipped_neu_gate_reads_another_camera_s_rendering_of_defect_free_steel_as_steel():
    """At the shipped warn threshold, a 1 px defocus or a JPEG stream at quality 50 flagged 32% and 45% of
    the validation crops with the gate of step 14, whose residual detector read the texture as this camera
    renders it; trained on camera copies of its frames (docs/gate_design.md, step 15): 9% and 10%, against
    4.8% as captured. The bound leaves room for a retrained detector, not for the fragility."""
    from export.calibrate import gate_scores
    from studies.camera_study import CHANGES
    from studies.exposure_study import ChangedFrames
    from export.study_cli import deployed_gate

    gate = deployed_gate(MANIFEST, "neu-steel")
    warn = gate.entry["thresholds"]["warn"]
    for name in ("defocus (Gaussian blur, sigma 1 px)", "JPEG stream (quality 50)"):
        seen = ChangedFrames(gate.scorer, CHANGES[name])
        crops = gate_scores(seen, gate.splits["val"], gate.config.preprocess, gate.profile.seed)["normal_crop"]
        assert np.mean(np.asarray(crops) >= warn) <= 0.15, name


def test_the_pooling_study_reads_the_mean_of_the_hottest_pixels():
    from studies.pooling_study import top_mean

    anomaly_map = np.zeros((10, 10), np.float32)
    anomaly_map[0, :4] = (4.0, 3.0, 2.0, 1.0)
    assert top_mean(anomaly_map, 1) == 4.0  # the deployed maximum
    assert top_mean(anomaly_map, 2) == 3.5 and top_mean(anomaly_map, 8) == pytest.approx(10.0 / 8)
    assert top_mean(anomaly_map, 1000) == pytest.approx(0.1)  # more pixels than the map has: its mean


def test_a_study_run_without_strip_frames_reports_no_share_rather_than_zero():
    from export.study_cli import share_at_or_over, share_text

    assert share_at_or_over(np.array([1.0, 2.0, 3.0, 4.0]), 3.0) == 0.5
    assert share_at_or_over(np.array([]), 3.0) is None
    assert share_text(None) == "-" and share_text(0.0) == "0.000"


def test_the_two_maps_join_by_their_maximum_or_a_power_mean():
    from edge_runtime.anomaly import join_maps

    error = np.array([[3.0, 1.0], [2.0, 0.0]], np.float32)
    detector = np.array([[1.0, 1.0], [2.0, 4.0]], np.float32)
    np.testing.assert_array_equal(join_maps(error, detector), np.maximum(error, detector))  # deployed
    np.testing.assert_allclose(join_maps(error, detector, 1.0), (error + detector) / 2)
    np.testing.assert_allclose(join_maps(error, detector, 2.0)[0, 0], np.sqrt(5.0), rtol=1e-6)
    assert join_maps(error, detector, 4.0).dtype == np.float32
    np.testing.assert_allclose(join_maps(error, detector, 2.0)[1, 0], 2.0, rtol=1e-6)  # equal maps: that value
    high = join_maps(error, detector, 64.0)
    assert np.all(high <= np.maximum(error, detector) + 1e-6) and np.allclose(high, np.maximum(error, detector), rtol=0.02)


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


def test_frame_term_adds_the_frame_error_in_units_of_its_reference_to_the_scored_area():
    frame = np.zeros((64, 64), np.float32)
    term = FrameTerm(map_reference=2.0, frame_reference=0.5, weight=3.0)
    plain = _scorer(_cells(), "none", ignore_border=0.25).anomaly_map(frame)
    scorer = AnomalyScorer(CellsSession(_cells(), frame_error=1.5), PreprocessSpec(), 8, 16, 0.0, 0.25, 0, "none",
                           frame_term=term)
    combined = scorer.run(frame)
    area = (slice(16, 48), slice(16, 48))
    assert np.allclose(combined.anomaly_map[area], plain[area] / 2.0 + 3.0 * 1.5 / 0.5, rtol=1e-6)
    assert np.all(combined.anomaly_map[:16] == 0)  # the ignored band stays out of the score
    assert combined.score == pytest.approx(plain.max() / 2.0 + 9.0, rel=1e-6)
    assert combined.frame_term == pytest.approx(9.0) and _scorer(_cells(), "none").run(frame).frame_term is None
    plain_twin = scorer.with_frame_term(None)  # same session and scoring, no term: the map as it was
    assert plain_twin.frame_term is None and scorer.frame_term == term
    assert np.allclose(plain_twin.run(frame).anomaly_map, plain)
    assert np.unravel_index(combined.anomaly_map.argmax(), frame.shape) == np.unravel_index(plain.argmax(), frame.shape)


def test_a_high_frame_error_flags_a_frame_whose_cells_all_look_normal():
    frame = np.zeros((64, 64), np.float32)
    flat = np.full((8, 8), 0.5, np.float32)
    term = FrameTerm(map_reference=0.5, frame_reference=1.0)
    typical = AnomalyScorer(CellsSession(flat, 1.0), PreprocessSpec(), 8, 16, 0.0, frame_term=term).run(frame)
    uneven = AnomalyScorer(CellsSession(flat, 4.0), PreprocessSpec(), 8, 16, 0.0, frame_term=term).run(frame)
    assert typical.score == pytest.approx(2.0) and uneven.score == pytest.approx(5.0)


def test_frame_term_needs_the_graphs_frame_output_and_positive_references():
    with pytest.raises(ManifestError, match="no 'frame_error' output"):
        AnomalyScorer(CellsSession(_cells()), PreprocessSpec(), 8, 16, 0.0, frame_term=FrameTerm(1.0, 1.0))
    with pytest.raises(ManifestError, match="no 'frame_error' output"):
        _scorer(_cells(), "none").with_frame_term(FrameTerm(1.0, 1.0))
    for references in ((0.0, 1.0), (1.0, -1.0), (1.0, 1.0, 0.0)):
        with pytest.raises(ValueError, match="must be positive"):
            FrameTerm(*references)


class ResidualCellsSession(CellsSession):
    """Fixed error cells and fixed residual-detector cells (outputs ``error_map`` and ``residual_map``)."""

    def __init__(self, cells: np.ndarray, residual: np.ndarray) -> None:
        super().__init__(cells)
        self.residual = residual

    def get_outputs(self):
        return [type("Output", (), {"name": name}) for name in ("residual_map", "error_map")]

    def run(self, _outputs, feeds):
        batch = feeds["image"].shape[0]
        cells, residual = (np.broadcast_to(c, (batch, *c.shape))[..., None].astype(np.float32)
                           for c in (self.cells, self.residual))
        return [residual, cells]


def test_the_residual_detector_s_scaled_map_and_the_error_map_join_by_their_maximum():
    frame = np.zeros((64, 64), np.float32)
    residual = np.zeros((8, 8), np.float32)
    residual[5:7, 1:3] = 0.9  # a departure the error map does not see (its cells there are 0.5, as everywhere)
    detector = ResidualDetector(sigma=0.0, scale=5.0)
    scorer = AnomalyScorer(ResidualCellsSession(_cells(), residual), PreprocessSpec(), 8, 16, 0.0, 0.125, 0, "none",
                           residual_detector=detector)
    plain = _scorer(_cells(), "none", ignore_border=0.125).anomaly_map(frame)
    combined = scorer.run(frame)
    detector_map = scorer.residual_map_from_cells(residual, scorer.model_input(frame)[1], 0.0)
    assert detector_map.max() == pytest.approx(0.9) and np.all(detector_map[:8] == 0)
    np.testing.assert_allclose(combined.anomaly_map, np.maximum(plain, 5.0 * detector_map), rtol=1e-6)
    assert plain.max() <= 4.0 and combined.score == pytest.approx(4.5)  # the detector's 0.9 x 5 beats the error map
    assert np.unravel_index(combined.anomaly_map.argmax(), frame.shape)[0] // 8 in (5, 6)
    assert np.all(combined.anomaly_map[:8] == 0)  # the ignored band stays out of the score
    np.testing.assert_allclose(scorer.with_residual_detector(None).anomaly_map(frame), plain)
    assert scorer.residual_detector == detector


def test_the_residual_detector_needs_the_graphs_output_and_a_positive_scale():
    with pytest.raises(ManifestError, match="no 'residual_map' output"):
        AnomalyScorer(CellsSession(_cells()), PreprocessSpec(), 8, 16, 0.0,
                      residual_detector=ResidualDetector(1.0, 1.0))
    with pytest.raises(ManifestError, match="no 'residual_map' output"):
        _scorer(_cells(), "none").with_residual_detector(ResidualDetector(1.0, 1.0))
    for sigma, scale in ((1.0, 0.0), (-1.0, 1.0)):
        with pytest.raises(ValueError, match="residual detector sigma"):
            ResidualDetector(sigma, scale)


def test_three_views_average_the_residual_detector_s_cells_as_well():
    frame = np.zeros((64, 48), np.float32)
    column = np.tile(np.arange(6, dtype=np.float32), (8, 1)) / 10  # fixed to the sensor: does not mirror
    session = ResidualCellsSession(np.zeros((8, 6), np.float32), column)
    scorer = AnomalyScorer(session, PreprocessSpec(), 8, 16, 0.0, views=3,
                           residual_detector=ResidualDetector(0.0, 1.0))
    averaged = AnomalyScorer(ResidualCellsSession(np.zeros((8, 6), np.float32), (2 * column + column[:, ::-1]) / 3),
                             PreprocessSpec(), 8, 16, 0.0, residual_detector=ResidualDetector(0.0, 1.0))
    np.testing.assert_allclose(scorer.anomaly_map(frame), averaged.anomaly_map(frame), rtol=1e-5, atol=1e-7)


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
def test_manifest_with_a_broken_frame_term_is_a_clear_error(tmp_path):
    shutil.copytree(ROOT / "models", tmp_path / "models")
    manifest = json.loads((ROOT / "models.manifest.json").read_text())
    manifest["profiles"]["magnetic-tile"]["autoencoder"]["score"]["frame_term"]["frame_reference"] = -1.0
    (tmp_path / "models.manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="must be positive"):
        Inspector.from_manifest(tmp_path / "models.manifest.json", "magnetic-tile")


@needs_models
def test_the_inspector_scores_as_its_manifest_says():
    inspector = Inspector.from_manifest(profile="neu-steel")
    assert inspector.config.score_normalise == "frame_mean"
    tile = Inspector.from_manifest(profile="magnetic-tile")
    assert tile.config.score_normalise == "frame_median"
    frame = textured((200, 200), 128, seed=0, spread=40.0)
    result = tile.inspect(frame)
    assert 0 < result.frame_term < result.anomaly_score and result.to_dict()["frame_term"] == result.frame_term
    # The tile's models see one exposure; the frame shown and logged stays as captured.
    assert tile.config.preprocess.exposure_median is not None
    assert np.allclose(result.frame, frame / 255.0, atol=1e-6)
    assert inspector.inspect(frame).frame_term is None
    assert inspector.scorer.frame_term is None and tile.scorer.frame_term == tile.config.frame_term
    assert tile.config.frame_term.map_reference > 0 and tile.config.frame_term.frame_reference > 0


class ImageCellsSession(CellsSession):
    """Error cells = the input's mean over each 8x8 block, optionally plus a fixed pattern that does
    not mirror with the input (as a real backbone's features do not)."""

    def __init__(self, fixed: np.ndarray | None = None) -> None:
        super().__init__(np.zeros((1, 1), np.float32))
        self.fixed, self.calls = fixed, 0

    def run(self, _outputs, feeds):
        self.calls += 1
        image = feeds["image"][..., 0]
        batch, height, width = image.shape
        cells = image.reshape(batch, height // 8, 8, width // 8, 8).mean(axis=(2, 4))
        if self.fixed is not None:
            cells = cells + self.fixed
        return [cells[..., None].astype(np.float32)]


def test_three_views_mirror_each_views_cells_back_before_averaging():
    frame = np.random.default_rng(0).random((64, 48), np.float32)
    session = ImageCellsSession()
    one = AnomalyScorer(session, PreprocessSpec(), 8, 16, 0.0).anomaly_map(frame)
    three = AnomalyScorer(session, PreprocessSpec(), 8, 16, 0.0, views=3).anomaly_map(frame)
    assert session.calls == 4
    np.testing.assert_allclose(three, one, rtol=1e-5)  # cells that mirror with the frame: the views agree
    column = np.tile(np.arange(6, dtype=np.float32), (8, 1))  # a pattern fixed to the sensor, not the frame
    fixed = AnomalyScorer(ImageCellsSession(column), PreprocessSpec(), 8, 16, 0.0, views=3)
    plain = AnomalyScorer(ImageCellsSession(), PreprocessSpec(), 8, 16, 0.0).anomaly_map(frame)
    pattern = AnomalyScorer(CellsSession((2 * column + column[:, ::-1]) / 3), PreprocessSpec(), 8, 16, 0.0)
    np.testing.assert_allclose(fixed.anomaly_map(frame), plain + pattern.anomaly_map(frame), rtol=1e-5, atol=1e-6)


def test_with_a_cascade_only_frames_that_reach_the_band_are_scored_in_three_views():
    frame = np.random.default_rng(1).random((64, 48), np.float32)
    column = np.tile(np.arange(6, dtype=np.float32), (8, 1))
    one = AnomalyScorer(ImageCellsSession(column), PreprocessSpec(), 8, 16, 0.0).run(frame)
    three = AnomalyScorer(ImageCellsSession(column), PreprocessSpec(), 8, 16, 0.0, views=3).run(frame)
    assert (one.views, three.views) == (1, 3) and three.score != pytest.approx(one.score)
    for band, expected in ((one.score, three), (one.score + 1e-3, one)):
        session = ImageCellsSession(column)
        cascade = AnomalyScorer(session, PreprocessSpec(), 8, 16, 0.0, views=3, views_from=band).run(frame)
        assert cascade.views == expected.views and cascade.score == pytest.approx(expected.score)
        assert session.calls == expected.views  # the mirror views run only from the band up


def test_views_other_than_one_or_three_and_a_negative_band_are_refused(tmp_path):
    with pytest.raises(ValueError, match="views"):
        AnomalyScorer(ImageCellsSession(), PreprocessSpec(), 8, 16, 0.0, views=2)
    with pytest.raises(ManifestError, match="views must be one of"):
        Inspector.from_manifest(_manifest_with_score(tmp_path / "a", views=2), "neu-steel")
    with pytest.raises(ManifestError, match="views_from must be a non-negative number"):
        Inspector.from_manifest(_manifest_with_score(tmp_path / "b", views=3, views_from=-1.0), "neu-steel")


def test_three_views_with_a_frame_level_term_average_its_error_and_refuse_a_band():
    term = FrameTerm(1.0, 0.5, 2.0)
    frame = np.zeros((64, 64), np.float32)
    one = AnomalyScorer(CellsSession(_cells(), frame_error=0.5), PreprocessSpec(), 8, 16, 0.0, frame_term=term)
    three = AnomalyScorer(CellsSession(_cells(), frame_error=0.5), PreprocessSpec(), 8, 16, 0.0, frame_term=term,
                          views=3)
    assert three.run(frame).frame_term == pytest.approx(one.run(frame).frame_term)  # the same error in every view
    with pytest.raises(ManifestError, match="band"):
        AnomalyScorer(CellsSession(_cells(), frame_error=0.5), PreprocessSpec(), 8, 16, 0.0, frame_term=term,
                      views=3, views_from=1.0)
    with pytest.raises(ManifestError, match="band"):
        three.with_views(3, 1.0)


def test_the_manifest_s_level_cap_reaches_the_deployed_score(tmp_path):
    """The cap is what keeps a frame of something else than strip from dividing its deviation away: the deployed
    inspector must score with it (a frame's verdict alone would not show a cap dropped on the way)."""
    from studies.level_cap_study import not_steel_frames

    frame = not_steel_frames()["printed label"]
    manifest = json.loads(_manifest_with_score(tmp_path, level_cap=None).read_text())
    del manifest["profiles"]["neu-steel"]["autoencoder"]["score"]["level_cap"]
    (tmp_path / "models.manifest.json").write_text(json.dumps(manifest))
    uncapped = Inspector.from_manifest(tmp_path / "models.manifest.json", "neu-steel").inspect(frame).anomaly_score
    capped = Inspector.from_manifest(MANIFEST, "neu-steel").inspect(frame).anomaly_score
    assert capped > 1.2 * uncapped
