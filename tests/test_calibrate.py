"""Gate calibration protocol (export.calibrate): which scores count as normal, thresholds, metrics.

The scorer is a stand-in whose anomaly map is the frame itself, so every score is known
from the image drawn on disk.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_runtime.datasets import Box, Sample
from edge_runtime.preprocess import PreprocessSpec
from export import calibrate


class FrameIsTheMap:
    residual_detector = None

    def anomaly_map(self, frame: np.ndarray) -> np.ndarray:
        return frame.astype(np.float32)

    def scored_area(self, shape: tuple[int, int]) -> tuple[slice, slice]:
        return slice(0, shape[0]), slice(0, shape[1])

    def normalising_level(self, values: np.ndarray) -> float:
        return 1.0


class FrameOverItsMean(FrameIsTheMap):
    """A normalised score: the map is the frame divided by its own mean, as ``frame_mean`` does."""

    def anomaly_map(self, frame: np.ndarray) -> np.ndarray:
        return frame.astype(np.float32) / frame.mean()

    def normalising_level(self, values: np.ndarray) -> float:
        return float(values.mean())


def _image(path: Path, box: Box, inside: int, outside: int) -> Path:
    image = np.full((200, 200), outside, np.uint8)
    image[box.ymin: box.ymax + 1, box.xmin: box.xmax + 1] = inside
    cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def samples(tmp_path):
    box = Box(10, 10, 60, 60)
    return [
        Sample(_image(tmp_path / "local.png", box, 255, 0), "local", (box,)),
        # A texture-wide defect: the box-free area is bright too (unboxed defect texture).
        Sample(_image(tmp_path / "texture.png", box, 255, 128), "texture", (box,)),
    ]


def test_windows_of_every_label_are_normal(samples):
    scores = calibrate.gate_scores(FrameIsTheMap(), samples, PreprocessSpec())
    assert len(scores["normal"]) == 2 * calibrate.WINDOWS_PER_IMAGE
    assert len(scores["normal_crop"]) == len(scores["normal"])
    assert sorted(set(np.round(scores["normal"], 3))) == [0.0, round(128 / 255, 3)]
    assert scores["defect_image"].tolist() == [1.0, 1.0]
    assert scores["defect_region"].tolist() == [1.0, 1.0]


def _scores(**overrides) -> dict:
    scores = {"normal": np.array([0.1, 0.2, 0.3, 0.4]), "normal_crop": np.array([0.5, 0.5, 0.1, 0.1]),
              "normal_boxfree_level": np.array([0.2, 0.3, 0.4, 0.5]),
              "defect_region": np.array([]),
              "defect_image": np.array([0.35, 0.9]), "defect_label": ["a", "b"]}
    return {**scores, **overrides}


def test_metrics_count_frames_at_or_above_the_thresholds():
    metrics = calibrate.gate_metrics(_scores(), {"warn": 0.3, "defect": 0.45})
    assert metrics["calibration_normals"] == "in_context"
    assert metrics["false_alarm_rate_warn"] == 0.5 and metrics["false_alarm_rate_defect"] == 0.0
    assert metrics["window_false_alarm_rate_warn"] == 0.5
    assert metrics["window_boxfree_level_false_alarm_rate_warn"] == 0.75
    assert metrics["window_boxfree_level_false_alarm_rate_defect"] == 0.25
    assert metrics["crop_false_alarm_rate_warn"] == 0.5 and metrics["crop_false_alarm_rate_defect"] == 0.5
    assert metrics["gate_recall_warn"] == 1.0 and metrics["gate_recall_defect"] == 0.5
    assert metrics["gate_recall_warn_per_class"] == {"a": 1.0, "b": 1.0}
    assert metrics["image_auroc_per_class"] == {"a": 0.75, "b": 1.0}  # 0.35 beats 3 of the 4 normals
    assert "region_auroc" not in metrics


def test_crop_calibration_counts_false_alarms_and_auroc_on_the_crops():
    scores = _scores(defect_region=np.array([0.45]))
    metrics = calibrate.gate_metrics(scores, {"warn": 0.3, "defect": 0.45}, "crops")
    assert metrics["calibration_normals"] == "crops"
    assert metrics["false_alarm_rate_warn"] == 0.5 and metrics["false_alarm_rate_defect"] == 0.5
    assert metrics["window_false_alarm_rate_warn"] == 0.5  # the in-context reading, still reported
    assert metrics["image_auroc_per_class"] == {"a": 0.5, "b": 1.0}  # 0.35 beats the two 0.1 crops
    assert metrics["region_auroc"] == 1.0  # regions are compared with in-context windows


def test_thresholds_come_from_the_profile_s_calibration_normals():
    scores = _scores(normal=np.arange(100, dtype=float), normal_crop=np.arange(100, 200, dtype=float))
    crops = calibrate.thresholds(calibrate.calibration_scores(scores, "crops"), 0.01, 0.05)
    normals = np.arange(100, 200, dtype=float)
    assert np.sum(normals >= crops["warn"]) == 5 and np.sum(normals >= crops["defect"]) == 1  # at most 5% / 1%
    assert crops["warn"] == pytest.approx(194.194)  # a margin (1e-3) above the sixth highest: the runtime's commissioning rule
    odd = calibrate.thresholds(np.arange(107, dtype=float), 0.01, 0.05)  # 5% of 107 is 5.35 frames: 5 flagged
    assert np.sum(np.arange(107) >= odd["warn"]) == 5 and np.sum(np.arange(107) >= odd["defect"]) == 1
    with pytest.raises(ValueError, match="calibration_normals"):
        calibrate.calibration_scores(scores, "frames")
    with pytest.raises(ValueError, match="boxed"):
        calibrate.calibration_scores(_scores(normal_crop=np.array([])), "crops")


def test_thresholds_on_too_few_normals_to_resolve_their_rates_say_so():
    """A new line's validation split of 6 normals cannot resolve 1% or 5%: both thresholds sit above all six (no
    warn band), and the entry says so instead of passing for 1% / 5% thresholds."""
    few = calibrate.thresholds(np.arange(6, dtype=float), 0.01, 0.05)
    assert few["warn"] == few["defect"] > 5
    assert "set on 6 validation normals, too few to resolve a false-alarm rate of 1.0% (it needs 100) or 5.0% (it " \
           "needs 20)" in few["note"]
    fifty = calibrate.thresholds(np.arange(50, dtype=float), 0.01, 0.05)
    assert "1.0% (it needs 100):" in fifty["note"] and "5.0%" not in fifty["note"]
    assert "note" not in calibrate.thresholds(np.arange(100, dtype=float), 0.01, 0.05)


def test_scores_by_sample_keep_each_image_s_windows_with_it_and_join_to_gate_scores(samples):
    per_sample = calibrate.gate_scores_by_sample(FrameIsTheMap(), samples, PreprocessSpec())
    assert [len(s["normal_crop"]) for s in per_sample] == [calibrate.WINDOWS_PER_IMAGE] * 2
    assert set(np.round(per_sample[1]["normal"], 3)) == {round(128 / 255, 3)}  # the texture image's own steel
    joined, whole = calibrate.joined_scores(per_sample), calibrate.gate_scores(FrameIsTheMap(), samples, PreprocessSpec())
    for key in calibrate.SCORE_KEYS:
        np.testing.assert_array_equal(joined[key], whole[key])


def test_gate_intervals_draw_whole_images_and_bracket_the_measured_figures():
    from types import SimpleNamespace

    from export.gate_intervals import bootstrap, drawn, headline, wilson

    def image(score, crops):
        return {"defect_image": [score], "defect_label": ["a"], "normal_crop": list(crops), "normal": list(crops),
                "normal_boxfree_level": list(crops), "defect_region": []}

    rng = np.random.default_rng(0)
    val = [image(0.5 + 0.5 * rng.random(), rng.random(3) * 0.6) for _ in range(40)]
    test = [image(0.4 + 0.6 * rng.random(), rng.random(3) * 0.6) for _ in range(40)]
    draw = drawn(test, np.random.default_rng(1))
    assert len(draw["defect_image"]) == 40 and len(draw["normal_crop"]) == 120  # an image's three windows go with it
    limits = {"warn": 0.55, "defect": 0.58}
    measured = headline(calibrate.joined_scores(test), limits, "crops")
    assert measured["gate_recall_warn"] == np.mean(calibrate.joined_scores(test)["defect_image"] >= 0.55)
    profile = SimpleNamespace(seed=0, calibration_normals="crops", false_alarm_rate=0.01, warn_false_alarm_rate=0.05)
    ranges = bootstrap(val, test, limits, profile, rounds=200)
    for key, value in measured.items():
        low, high = ranges[key]["thresholds_as_deployed"]
        assert low <= value <= high and low < high
    low, high = wilson(calibrate.joined_scores(test), 0.55)
    assert low < measured["gate_recall_warn"] < high


def test_gate_intervals_of_a_small_split_redraw_a_draw_without_normals_or_defects():
    """A new line's first export: a handful of defect-free images, so some bootstrap draws hold none."""
    from types import SimpleNamespace

    from export.gate_intervals import bootstrap

    def image(defect, normal):
        return {"defect_image": [defect] if defect is not None else [], "defect_label": ["a"] if defect is not None else [],
                "normal": [normal] if normal is not None else [], "normal_crop": [], "normal_boxfree_level": [],
                "defect_region": []}

    val = [image(0.9, None)] * 8 + [image(None, 0.2)] * 2
    test = [image(0.8, None)] * 8 + [image(None, 0.3)]
    profile = SimpleNamespace(seed=0, calibration_normals="in_context", false_alarm_rate=0.01, warn_false_alarm_rate=0.05)
    ranges = bootstrap(val, test, {"warn": 0.5, "defect": 0.6}, profile, rounds=200)
    assert ranges["gate_recall_warn"]["thresholds_as_deployed"] == [1.0, 1.0]
    assert ranges["false_alarm_rate_warn"]["thresholds_as_deployed"] == [0.0, 0.0]


def test_a_defect_in_the_frame_lowers_normalised_window_scores_and_the_box_free_level_undoes_it(samples):
    """The bias that made NEU calibrate on crops: with a frame-mean score, the bright box
    raises the frame's mean, so the dark box-free windows score lower than in a clean frame."""
    scores = calibrate.gate_scores(FrameOverItsMean(), samples[1:], PreprocessSpec())
    frame = cv2.imread(str(samples[1].path), cv2.IMREAD_GRAYSCALE) / 255.0
    free = box_free_mask_of(samples[1])
    assert np.allclose(scores["normal"], (128 / 255) / frame.mean(), rtol=1e-5)
    assert np.allclose(scores["normal_boxfree_level"], (128 / 255) / frame[free].mean(), rtol=1e-5)
    assert np.all(scores["normal"] < scores["normal_boxfree_level"])  # the bright box lowered the in-context scores
    assert np.allclose(scores["normal_crop"], 1.0)  # a uniform crop is its own mean


def box_free_mask_of(sample: Sample) -> np.ndarray:
    from edge_runtime.datasets import box_free_mask

    return box_free_mask((200, 200), sample.boxes, calibrate.WINDOW_MARGIN)


def test_area_study_scores_the_box_free_area_as_if_the_frame_held_no_defect():
    from studies import area_study

    frame = np.tile(np.linspace(0.2, 0.6, 200, dtype=np.float32), (200, 1))  # brighter to the right
    frame[0:120, 150:200] = 1.0  # the defect, in its box
    box = Box(150, 0, 199, 119)
    sample = Sample(Path("x.png"), "defect", (box,))
    scorer = FrameOverItsMean()
    score = area_study.boxfree_area_score(scorer, frame, scorer.anomaly_map(frame), sample, margin=8)
    free = box_free_mask_of(sample)
    assert score == pytest.approx(frame[free].max() / frame[free].mean(), rel=1e-5)  # the box neither counts nor lowers it
    big = Sample(Path("y.png"), "defect", (Box(0, 0, 199, 185),))  # leaves 6 rows: under 64x64 = 4096 px
    assert area_study.boxfree_area_score(scorer, frame, scorer.anomaly_map(frame), big, margin=8) is None


def test_area_study_recalibrates_the_warn_threshold_on_each_reading():
    from studies import area_study

    readings = {
        "val": {"defect_image": np.array([5.0]), "crop_64": np.arange(100.0), "crop_128": np.array([])},
        "test": {"defect_image": np.array([50.0, 96.0, 99.0, 200.0]), "crop_64": np.array([10.0, 97.0]),
                 "crop_128": np.array([])},
    }
    out = area_study.recalibrated(readings, 0.05)
    assert set(out) == {"crop_64"}  # an empty reading sets no threshold
    assert out["crop_64"]["warn_threshold"] == pytest.approx(94.094)  # flags 5 of the 100 validation readings
    assert out["crop_64"]["test_gate_recall"] == 0.75 and out["crop_64"]["test_false_alarm_rate"] == 0.5


def test_area_study_gallery_shows_the_highest_scoring_crops_first(tmp_path):
    from studies import area_study

    frame = np.zeros((200, 200), np.float32)
    sample = Sample(Path("crazing_1.jpg"), "crazing", (Box(150, 0, 199, 60),))
    largest = [(area_study.CropReading(score, (10, 10), (40, 40)), sample, frame + score / 10) for score in
               (1.0, 3.0, 2.0, 5.0, 4.0)]
    out = area_study.top_crop_gallery(largest, 128, tmp_path / "gallery.png", count=4)
    image = cv2.imread(str(out))
    assert image.shape == (200, 800, 3)  # one row of four tiles, the lowest score left out
    brightness = [image[100, 100 + 200 * i, 1] for i in range(4)]  # green channel inside each crop, off the drawings
    assert brightness == sorted(brightness, reverse=True)  # scores 5, 4, 3, 2 from left to right


def test_exposure_study_sees_each_frame_and_crop_at_the_gain_and_keeps_the_thresholds(samples):
    from studies.exposure_study import GainScorer, gain_metrics, median_grey_levels

    frame = np.full((8, 8), 0.6, np.float32)
    assert np.allclose(GainScorer(FrameIsTheMap(), 1.5).anomaly_map(frame), 0.9)
    assert np.allclose(GainScorer(FrameIsTheMap(), 2.0).anomaly_map(frame), 1.0)  # clipped like a saturated camera
    assert GainScorer(FrameIsTheMap(), 2.0).normalising_level(np.ones(3)) == 1.0  # the rest is the scorer's
    limits = {"warn": 0.4, "defect": 0.6}
    rows = gain_metrics(FrameIsTheMap(), samples, PreprocessSpec(), limits, "crops", gains=(0.5, 1.0, 2.0))
    assert list(rows) == ["0.5", "1", "2"]
    # The texture image's box-free crops read 128/255 = 0.50: flagged at warn at gain 1 and 2, not at 0.5.
    assert [rows[g]["false_alarm_rate_warn"] for g in rows] == [0.0, 0.5, 0.5]
    assert [rows[g]["false_alarm_rate_defect"] for g in rows] == [0.0, 0.0, 0.5]
    assert [rows[g]["gate_recall_warn"] for g in rows] == [1.0, 1.0, 1.0]  # the boxes read 0.5, 1 and 1 (clipped)
    assert rows["0.5"]["clipped_pixel_share"] == 0.0 and rows["1"]["clipped_pixel_share"] == 0.0
    assert 0.0 < rows["2"]["clipped_pixel_share"] < 1.0  # the boxes and the texture image's background clip
    levels = median_grey_levels(samples, PreprocessSpec())  # backgrounds 0 and 128: the medians
    assert levels["p50"] == pytest.approx(64 / 255, abs=1e-3) and levels["p5"] < levels["p50"] < levels["p95"]


def test_camera_changes_are_deterministic_gray_frames_that_change_the_texture():
    from studies.camera_study import CHANGES
    from studies.exposure_study import ChangedFrames

    texture = np.random.default_rng(0).uniform(0.2, 0.8, (64, 80)).astype(np.float32)
    for name, change in CHANGES.items():
        seen = change(texture)
        assert seen.shape == texture.shape and seen.dtype == np.float32, name
        assert 0.0 <= seen.min() and seen.max() <= 1.0, name
        assert np.array_equal(change(texture), seen), name  # the noise too is the same on every run
        assert np.array_equal(seen, texture) == (name == "as captured"), name
        assert abs(float(seen.mean()) - float(texture.mean())) < 0.01, name  # the texture changes, not the exposure
    blur = CHANGES["defocus (Gaussian blur, sigma 1 px)"]
    assert np.allclose(ChangedFrames(FrameIsTheMap(), blur).anomaly_map(texture), blur(texture))


def test_the_drift_study_commissions_on_defect_free_images_whole_and_on_box_free_windows_of_boxed_ones():
    import random

    from edge_runtime.datasets import Box, Sample
    from export.calibrate import WINDOW, WINDOW_MARGIN
    from studies.drift_study import defect_free_views

    frame = np.random.default_rng(0).uniform(0.0, 1.0, (200, 200)).astype(np.float32)
    assert [v is frame for v in defect_free_views(frame, Sample(None, None), random.Random(0))] == [True]
    box = Box(0, 0, 120, 200)  # the left 120 columns are defect
    views = defect_free_views(frame, Sample(None, "patches", boxes=(box,)), random.Random(0))
    assert len(views) == 3 and all(v.shape == (WINDOW, WINDOW) for v in views)
    for view in views:  # each window is a piece of the frame clear of the box by the margin
        hits = [(y, x) for y in range(200 - WINDOW + 1) for x in range(120 + WINDOW_MARGIN, 200 - WINDOW + 1)
                if np.array_equal(frame[y: y + WINDOW, x: x + WINDOW], view)]
        assert len(hits) == 1
    assert defect_free_views(frame, Sample(None, "patches", boxes=(Box(0, 0, 200, 200),)), random.Random(0)) == []
    assert defect_free_views(frame, Sample(None, "crack"), random.Random(0)) == []  # a mask, no boxes: nothing


def test_gate_check_reads_the_validation_normals_through_every_camera_change(samples):
    from types import SimpleNamespace

    from studies.camera_study import CHANGES
    from studies.gate_check import camera_normals_flagged

    profile = SimpleNamespace(preprocess=PreprocessSpec(), seed=0, calibration_normals="crops")
    # The map is the frame: the local image's box-free crops read 0, the texture image's 0.5 through every change.
    flagged = camera_normals_flagged(FrameIsTheMap(), samples, profile, warn=0.4)
    assert list(flagged) == [name for name in CHANGES if name != "as captured"]
    assert set(flagged.values()) == {0.5}
    assert set(camera_normals_flagged(FrameIsTheMap(), samples, profile, warn=0.6).values()) == {0.0}


def test_operating_points_names_the_defect_images_under_the_warn_threshold():
    from studies.operating_points import missed

    scores = {"defect_image": np.array([1.0, 1.8, 2.5, 1.9, 3.0]),
              "defect_label": ["patches", "patches", "patches", "scratches", "scratches"]}
    out = missed(scores, warn=2.0)
    assert (out["count"], out["of"], out["per_class"]) == (3, 5, {"patches": 2, "scratches": 1})
    assert out["score_over_warn_quartiles"] == pytest.approx([0.7, 0.9, 0.925])
    assert missed(scores, warn=0.5)["score_over_warn_quartiles"] is None


def test_crop_false_alarms_counts_the_crops_the_export_scores_per_source_class(samples):
    from types import SimpleNamespace

    from studies import crop_false_alarms

    gate = SimpleNamespace(profile=SimpleNamespace(seed=0), config=SimpleNamespace(preprocess=PreprocessSpec()),
                           scorer=FrameIsTheMap())
    counts, drawn = crop_false_alarms.flagged_crops(gate, samples, warn=0.3)
    per_image = calibrate.WINDOWS_PER_IMAGE
    assert counts == {"local": [0, per_image], "texture": [per_image, per_image]}  # unboxed texture is flagged
    exported = calibrate.gate_scores(FrameIsTheMap(), samples, PreprocessSpec())["normal_crop"]
    assert int(np.sum(exported >= 0.3)) == len(drawn) == per_image  # the same windows as the export's
    sheet = crop_false_alarms.montage(drawn)
    assert sheet.shape == (160, 160 * crop_false_alarms.MONTAGE_COLUMNS, 3)
    assert (sheet[..., 1] == 255).any()  # the crop is drawn in green


def test_the_views_cascade_takes_the_three_view_score_only_from_the_band_up():
    from studies.views_study import cascade

    one = {key: np.array([1.0, 2.0, 3.0]) for key in ("normal", "normal_crop", "defect_image")}
    three = {key: np.array([9.0, 1.5, 2.5]) for key in ("normal", "normal_crop", "defect_image")}
    mixed = cascade(one, three, band=2.0)
    for key in one:  # below the band the one-view score stands, even where three views would read higher
        np.testing.assert_array_equal(mixed[key], [1.0, 1.5, 2.5])


class BlockSession:
    """A gate graph stand-in with a residual detector: ``error_map`` is each 8x8 block's mean of the
    padded image, ``residual_map`` three times its square, or nothing (``zero_errors``)."""

    def __init__(self, zero_errors: bool = False) -> None:
        self.zero_errors = zero_errors

    def get_inputs(self):
        return [type("Input", (), {"name": "image"})]

    def get_outputs(self):
        return [type("Output", (), {"name": name}) for name in ("error_map", "residual_map")]

    def run(self, _outputs, feeds):
        image = feeds["image"][..., 0]
        batch, height, width = image.shape
        cells = image.reshape(batch, height // 8, 8, width // 8, 8).mean(axis=(2, 4))[..., None].astype(np.float32)
        return [np.zeros_like(cells) if self.zero_errors else cells, 3 * cells ** 2]


def test_the_residual_detector_is_scaled_so_that_either_map_alone_flags_the_warn_rate_alike(tmp_path):
    from types import SimpleNamespace

    from edge_runtime.anomaly import AnomalyScorer
    from edge_runtime.commissioning import threshold_for_false_alarm
    from tests.conftest import textured

    box, samples = Box(10, 10, 60, 60), []
    for i, level in enumerate((40, 90, 140, 200)):
        image = textured((200, 200), level, seed=i, spread=30.0)
        cv2.imwrite(str(tmp_path / f"{i}.png"), image)
        samples.append(Sample(tmp_path / f"{i}.png", "defect", (box,)))
    profile = SimpleNamespace(preprocess=PreprocessSpec(), seed=0, calibration_normals="crops",
                              warn_false_alarm_rate=0.25, residual_sigma=0.0)
    scorer = AnomalyScorer(BlockSession(), PreprocessSpec(), 8, 16, 0.0)
    detector = calibrate.residual_detector(scorer, profile, samples)
    detector_only = AnomalyScorer(BlockSession(zero_errors=True), PreprocessSpec(), 8, 16, 0.0,
                                  residual_detector=detector)
    warn = [threshold_for_false_alarm(calibrate.gate_scores(s, samples, PreprocessSpec())["normal_crop"], 0.25)
            for s in (scorer, detector_only)]
    assert detector.sigma == 0.0 and detector.scale != pytest.approx(1.0, abs=0.05)
    assert warn[1] == pytest.approx(warn[0], rel=1e-5)  # scaled, the detector's map flags the same crops as the error map


def test_at_its_box_free_level_only_the_error_map_is_rescaled_not_the_residual_detector_s():
    """The runtime divides the error map by the frame's level and never the detector's map, so the reading
    'as if the frame held no defect' rescales the error map alone."""
    from edge_runtime.anomaly import AnomalyScorer
    from edge_runtime.manifest import ResidualDetector
    from tests.conftest import textured

    frame = textured((64, 64), 120, seed=3, spread=20.0) / 255.0
    frame[:24, :24] = 0.95  # the defect, in its box: it raises the frame's level
    boxes = (Box(0, 0, 23, 23),)
    plain = AnomalyScorer(BlockSession(), PreprocessSpec(), 8, 16, 0.0, normalise="frame_mean")
    scorer = AnomalyScorer(BlockSession(), PreprocessSpec(), 8, 16, 0.0, normalise="frame_mean",
                           residual_detector=ResidualDetector(0.0, 2.0))
    error, detector = scorer.map_parts(frame)
    np.testing.assert_allclose(np.maximum(error, detector), scorer.anomaly_map(frame), rtol=1e-6)
    np.testing.assert_allclose(error, plain.anomaly_map(frame), rtol=1e-6)
    rescaled = calibrate.map_at_boxfree_level(scorer, frame, scorer.anomaly_map(frame), boxes, 8)
    level = calibrate.boxfree_level_of(plain, error, boxes, 8)
    assert level < 1.0  # the box-free area is quieter than the frame, whose level its defect raised
    np.testing.assert_allclose(rescaled, np.maximum(error / level, detector), rtol=1e-6)
    combined = scorer.anomaly_map(frame)  # dividing the joined map would divide the detector's part as well
    assert not np.allclose(rescaled, combined / calibrate.boxfree_level_of(scorer, combined, boxes, 8), rtol=1e-3)
    np.testing.assert_allclose(calibrate.map_at_boxfree_level(plain, frame, error, boxes, 8), error / level, rtol=1e-6)


def test_the_strip_study_takes_the_synthetic_strip_apart_as_its_variants_say():
    from edge_runtime.capture.synthetic import synthetic_frame
    from studies.strip_study import VARIANTS, variant_frame

    assert np.array_equal(variant_frame(3), synthetic_frame(np.random.default_rng([3, 5]), None))  # the demo strip

    def along_and_across(frame):  # mean step along the rows and across them
        grey = frame.astype(np.float32)
        return np.abs(np.diff(grey, axis=1)).mean(), np.abs(np.diff(grey, axis=0)).mean()

    streaks, grain, mottled = (variant_frame(0, **VARIANTS[name]) for name in (
        "streaks only (no grain)", "grain only (no streaks)", "mottling without a direction (50 x 50 noise points)"))
    along, across = along_and_across(streaks)
    assert along < 0.25 * across  # lines along the rows
    along, across = along_and_across(grain)
    assert 0.8 < along / across < 1.25  # no direction
    along, across = along_and_across(mottled)
    assert 0.8 < along / across < 1.25  # no direction either, unlike the streaks


def test_the_strip_study_reads_each_map_apart_against_the_warn_threshold():
    from types import SimpleNamespace

    from studies.strip_study import VARIANTS, study

    class Maps:  # the error map reads the frame's grey level, the detector's map a constant 0.5
        def map_parts(self, frame):
            return frame, np.full_like(frame, 0.5)

    result = study(SimpleNamespace(scorer=Maps(), thresholds=SimpleNamespace(warn=0.55)), frames=3)
    assert list(result["variants"]) == list(VARIANTS) and result["frames"] == 3
    for row in result["variants"].values():
        assert row["detector_map_median"] == 0.5 and 0.5 < row["error_map_median"] <= 1.0
        assert row["flagged_warn"] == 1.0  # every frame holds grey levels over 0.55 * 255
    assert study(SimpleNamespace(scorer=Maps(), thresholds=SimpleNamespace(warn=2.0)), frames=2)["variants"][
        "grain only (no streaks)"]["flagged_warn"] == 0.0


def test_the_camera_study_reads_which_map_a_change_moves(samples):
    from types import SimpleNamespace

    from studies.camera_study import maps_flagged

    class Maps:  # the error map is the frame, the detector's map the frame's mean, doubled
        def map_parts(self, frame):
            return frame, np.full_like(frame, 2 * frame.mean())

    profile = SimpleNamespace(seed=0, calibration_normals="crops")
    # Box-free crops read 0 (local image) and 0.5 (texture image): the error map flags the texture one at 0.6
    # only through a change that brightens it; the detector's map (1.0 there) flags it as captured.
    as_captured = maps_flagged(Maps(), lambda f: f, samples, PreprocessSpec(), profile, warn=0.6)
    assert as_captured == {"error_map": 0.0, "detector_map": 0.5}
    brighter = maps_flagged(Maps(), lambda f: np.clip(f * 1.5, 0, 1), samples, PreprocessSpec(), profile, warn=0.6)
    assert brighter == {"error_map": 0.5, "detector_map": 0.5}


def test_the_camera_study_reads_the_classifier_through_a_change_and_counts_a_refused_frame_as_a_miss(samples):
    from types import SimpleNamespace

    from edge_runtime.errors import InspectionError
    from studies.camera_study import classifier_accuracy

    class NamesByBrightness:  # "texture" for a frame brighter than 0.2 on average, else "local"; refuses black
        def inspect_batch(self, frames, always_classify=False):
            assert always_classify and all(f.dtype == np.uint16 for f in frames)
            means = [f.mean() / 65535.0 for f in frames]
            return [InspectionError("black") if m == 0 else SimpleNamespace(defect_class="texture" if m > 0.2 else "local")
                    for m in means]

    as_captured = classifier_accuracy(NamesByBrightness(), lambda f: f, samples, PreprocessSpec())
    assert as_captured == 1.0  # local: mean 0.07; texture: 0.53
    brighter = classifier_accuracy(NamesByBrightness(), lambda f: np.clip(f + 0.2, 0, 1), samples, PreprocessSpec())
    assert brighter == 0.5  # local now reads as texture
    assert classifier_accuracy(NamesByBrightness(), lambda f: f * 0.0, samples, PreprocessSpec()) == 0.0
