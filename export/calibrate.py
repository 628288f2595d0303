"""Anomaly-threshold calibration and gate metrics, through the runtime's own scoring code.

Normal scores: for data sets with defect-free images, the score of each held-out normal
image. For boxed data sets without them (NEU-DET), box-free 64x64 windows of held-out
images, read two ways: the maximum of the whole frame's anomaly map inside the window
(``normal``, normal steel seen in context) and the window scored as a frame of its own
(``normal_crop``, a small frame with less context).
Every image lends its box-free windows, whatever the profile trained on (its
``normal_texture_labels``): the protocol that judges a gate does not change with it.

Which normals set the thresholds is the profile's ``calibration_normals``: "in_context"
(defect-free images, or the box-free windows) or "crops" (the windows as frames of their
own). With a normalised score (``AnomalyScorer`` ``normalise``), a box-free window is
divided by a level that the defect elsewhere in its frame has raised, so in-context windows
score lower than the same steel would in a defect-free frame. ``normal_boxfree_level``
measures that: the window divided by the level of the frame's box-free area only.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from edge_runtime.anomaly import AnomalyScorer, frame_term_references, join_maps
from edge_runtime.commissioning import minimum_frames, threshold_for_false_alarm
from edge_runtime.datasets import Sample, box_free_corners, box_free_mask
from edge_runtime.manifest import FrameTerm, ResidualDetector
from edge_runtime.metrics import separation_auroc
from edge_runtime.preprocess import PreprocessSpec, preprocess

log = logging.getLogger(__name__)

WINDOW = 64
WINDOW_MARGIN = 8
WINDOWS_PER_IMAGE = 3
# profile.calibration_normals -> the gate_scores entry whose quantiles become the thresholds.
CALIBRATION_NORMALS = {"in_context": "normal", "crops": "normal_crop"}
# Readings of the false-alarm rate reported for boxed data sets: metric prefix -> scores entry.
BOXED_NORMALS = {"window": "normal", "window_boxfree_level": "normal_boxfree_level", "crop": "normal_crop"}


SCORE_KEYS = ("normal", "normal_crop", "normal_boxfree_level", "defect_region", "defect_image", "defect_label")


def gate_scores(scorer: AnomalyScorer, samples: list[Sample], spec: PreprocessSpec, seed: int = 0) -> dict:
    """normal / normal_crop / normal_boxfree_level / defect_region / defect_image / defect_label arrays
    for one split."""
    return joined_scores(gate_scores_by_sample(scorer, samples, spec, seed))


def gate_scores_by_sample(scorer: AnomalyScorer, samples: list[Sample], spec: PreprocessSpec, seed: int = 0) -> list[dict]:
    """``gate_scores``, one dict of lists per sample (what its frame, boxes and box-free windows gave), in
    the samples' order: for measurements that resample images with their windows."""
    rng = random.Random(seed)
    return [sample_scores(scorer, sample, preprocess(sample.path, spec), rng)
            for sample in tqdm(samples, desc="gate scores", unit="img")]


def joined_scores(per_sample: list[dict]) -> dict:
    """The per-sample score lists of ``gate_scores_by_sample`` joined into ``gate_scores``' arrays."""
    return {k: np.array([v for scores in per_sample for v in scores[k]]) for k in SCORE_KEYS}


def sample_scores(scorer: AnomalyScorer, sample: Sample, frame: np.ndarray, rng: random.Random) -> dict:
    """What one sample adds to ``gate_scores`` (lists under its keys); ``rng`` draws its box-free windows."""
    scores = {k: [] for k in SCORE_KEYS}
    anomaly_map = scorer.anomaly_map(frame)
    if sample.is_normal:
        scores["normal"].append(float(anomaly_map.max()))
        return scores
    scores["defect_image"].append(float(anomaly_map.max()))
    scores["defect_label"].append(sample.label)
    for box in sample.boxes:
        scores["defect_region"].append(float(anomaly_map[box.ymin: box.ymax + 1, box.xmin: box.xmax + 1].max()))
    corners = calibration_windows(anomaly_map.shape, sample.boxes, rng)
    at_boxfree_level = map_at_boxfree_level(scorer, frame, anomaly_map, sample.boxes, WINDOW_MARGIN) \
        if corners else anomaly_map
    for y, x in corners:
        scores["normal"].append(float(anomaly_map[y: y + WINDOW, x: x + WINDOW].max()))
        scores["normal_boxfree_level"].append(float(at_boxfree_level[y: y + WINDOW, x: x + WINDOW].max()))
        scores["normal_crop"].append(float(scorer.anomaly_map(frame[y: y + WINDOW, x: x + WINDOW]).max()))
    return scores


def calibration_windows(shape: tuple[int, int], boxes: tuple, rng: random.Random) -> list[tuple[int, int]]:
    """Top-left corners of the box-free ``WINDOW`` x ``WINDOW`` windows the calibration cuts from one image:
    ``WINDOWS_PER_IMAGE`` drawn by ``rng`` among those clear of every box by ``WINDOW_MARGIN``."""
    corners = box_free_corners(shape, boxes, WINDOW, WINDOW_MARGIN) if boxes else []
    rng.shuffle(corners)
    return corners[:WINDOWS_PER_IMAGE]


def calibration_crops(frame: np.ndarray, boxes: tuple, rng: random.Random) -> list[np.ndarray]:
    """The box-free ``WINDOW`` x ``WINDOW`` crops of ``frame`` the calibration cuts (``calibration_windows``)."""
    return [frame[y: y + WINDOW, x: x + WINDOW] for y, x in calibration_windows(frame.shape, boxes, rng)]


def boxfree_values(scorer: AnomalyScorer, anomaly_map: np.ndarray, boxes: tuple, margin: int) -> np.ndarray:
    """The map over the frame's box-free scored area (``margin`` pixels from every box), flattened."""
    area = scorer.scored_area(anomaly_map.shape)
    return anomaly_map[area][box_free_mask(anomaly_map.shape, boxes, margin)[area]]


def boxfree_level_of(scorer: AnomalyScorer, anomaly_map: np.ndarray, boxes: tuple, margin: int) -> float:
    """The normalising level of the (already normalised) map over the frame's box-free scored area:
    dividing by it rescales the map as if the frame held no defect (1 for an unnormalised score)."""
    return scorer.normalising_level(boxfree_values(scorer, anomaly_map, boxes, margin))


def map_at_boxfree_level(scorer: AnomalyScorer, frame: np.ndarray, anomaly_map: np.ndarray, boxes: tuple,
                         margin: int) -> np.ndarray:
    """``anomaly_map`` (the map of ``frame``) as if the frame held no defect: divided by the normalising level
    of its box-free scored area. A residual detector's scaled map is never divided by a level, so where the
    scorer has one the error map is rescaled alone and joined with it again (``AnomalyScorer.map_parts``)."""
    if scorer.residual_detector is None:
        return anomaly_map / boxfree_level_of(scorer, anomaly_map, boxes, margin)
    error, detector = scorer.map_parts(frame)
    return join_maps(error / boxfree_level_of(scorer, error, boxes, margin), detector)


def frame_term(scorer: AnomalyScorer, samples: list[Sample], spec: PreprocessSpec, weight: float) -> FrameTerm:
    """The references of a gate's frame-level term (``anomaly.frame_term_references``) on the
    defect-free ``samples``, ``scorer`` scoring without the term."""
    normals = [s for s in samples if s.is_normal]
    if not normals:
        raise ValueError("a frame-level autoencoder needs defect-free images to set its references on")
    frames = (preprocess(sample.path, spec) for sample in tqdm(normals, desc="frame-term references", unit="img"))
    return frame_term_references(scorer, frames, weight)


def profile_scorer(session, profile, gate_config: dict) -> AnomalyScorer:
    """The runtime's scorer over a gate ``session`` (onnxruntime, or ``training.keras_session``), with a
    training profile's scoring options and the geometry its gate was trained with (``gate_config``:
    ``autoencoder_config.json``)."""
    return AnomalyScorer(session, profile.preprocess, gate_config["feature_stride"], gate_config["input_multiple"],
                         profile.score_sigma, profile.ignore_border, gate_config["pad_margin"],
                         profile.score_normalise, profile.score_cell_centre, level_cap=profile.score_level_cap,
                         level_power=profile.score_level_power, views=profile.score_views)


def exported_scorer(session, profile, gate_config: dict, val: list[Sample]) -> AnomalyScorer:
    """``profile_scorer`` as the export sets a gate up: with its frame-level term, where the gate was
    trained with one, the term's references set on ``val``'s defect-free images; with the band from
    which the mirror views run, where the profile scores three views from a band."""
    scorer = profile_scorer(session, profile, gate_config)
    if gate_config.get("frame"):
        scorer = scorer.with_frame_term(frame_term(scorer, val, profile.preprocess, profile.frame_weight))
    if gate_config.get("residual_detector"):
        scorer = scorer.with_residual_detector(residual_detector(scorer, profile, val))
    return with_views_band(scorer, profile, val)


class _DetectorMap:
    """What ``gate_scores`` reads of a scorer, over its residual detector's own map (unscaled)."""

    residual_detector = None  # the map it gives is the only one

    def __init__(self, scorer: AnomalyScorer, sigma: float) -> None:
        self._scorer, self._sigma = scorer, sigma

    def anomaly_map(self, frame: np.ndarray) -> np.ndarray:
        batch, geometry = self._scorer.model_input(frame)
        raw = self._scorer.viewed_cells(batch)
        return self._scorer.residual_map_from_cells(raw.residual_cells(0), geometry, self._sigma)

    def scored_area(self, frame_shape: tuple[int, int]) -> tuple[slice, slice]:
        return self._scorer.scored_area(frame_shape)

    def normalising_level(self, values: np.ndarray) -> float:
        return 1.0


def residual_detector(scorer: AnomalyScorer, profile, val: list[Sample]) -> ResidualDetector:
    """The gate's residual detector, its scale set on ``val``'s calibration normals: the threshold that
    flags the profile's warn rate of them on the error map (``scorer`` without a detector) over the one
    that flags the same rate on the detector's map. Scaled so, a pixel over the warn threshold on either
    map alone is over it on their maximum, and the two count alike."""
    plain = scorer.with_residual_detector(None)
    levels = [threshold_for_false_alarm(calibration_scores(gate_scores(source, val, profile.preprocess, profile.seed),
                                                           profile.calibration_normals),
                                        profile.warn_false_alarm_rate)
              for source in (plain, _DetectorMap(plain, profile.residual_sigma))]
    return ResidualDetector(profile.residual_sigma, levels[0] / levels[1])


def with_views_band(scorer: AnomalyScorer, profile, val: list[Sample]) -> AnomalyScorer:
    """``scorer`` with its mirror views running from the profile's ``score_views_band`` quantile of the
    one-view scores of ``val``'s calibration normals (unchanged where the profile scores one view, or
    three on every frame)."""
    if profile.score_views == 1 or profile.score_views_band is None:
        return scorer.with_views(profile.score_views)
    one_view = calibration_scores(gate_scores(scorer.with_views(1), val, profile.preprocess, profile.seed),
                                  profile.calibration_normals)
    return scorer.with_views(3, float(np.quantile(one_view, profile.score_views_band)))


@dataclass(frozen=True)
class SplitCalibration:
    """Thresholds set on the validation split and the gate's figures on both splits."""
    limits: dict
    val_scores: dict
    test_scores: dict
    val: dict   # gate_metrics on the validation split
    test: dict  # gate_metrics on the test split
    by_sample: dict  # split -> gate_scores_by_sample, for measurements that resample images


def calibrate_on_splits(scorer: AnomalyScorer, splits: dict, profile) -> SplitCalibration:
    """The export's protocol: thresholds from the validation split's normals (the profile's
    ``calibration_normals`` and false-alarm rates), gate metrics on the validation and test splits."""
    by_sample = {split: gate_scores_by_sample(scorer, splits[split], profile.preprocess, profile.seed)
                 for split in ("val", "test")}
    scores = {split: joined_scores(per_sample) for split, per_sample in by_sample.items()}
    limits = thresholds(calibration_scores(scores["val"], profile.calibration_normals), profile.false_alarm_rate,
                        profile.warn_false_alarm_rate)
    return SplitCalibration(limits, scores["val"], scores["test"],
                            gate_metrics(scores["val"], limits, profile.calibration_normals),
                            gate_metrics(scores["test"], limits, profile.calibration_normals), by_sample)


def calibration_scores(scores: dict, calibration_normals: str) -> np.ndarray:
    """The normal scores a profile's thresholds are set on (``CALIBRATION_NORMALS``)."""
    if calibration_normals not in CALIBRATION_NORMALS:
        raise ValueError(f"calibration_normals must be one of {tuple(CALIBRATION_NORMALS)}, not {calibration_normals!r}")
    normals = scores[CALIBRATION_NORMALS[calibration_normals]]
    if not len(normals):
        raise ValueError(f"no {calibration_normals} normal scores to calibrate on (crops need a boxed data set)")
    return normals


def thresholds(normal_scores: np.ndarray, false_alarm_rate: float, warn_false_alarm_rate: float) -> dict:
    """warn / defect thresholds that flag at most each rate of ``normal_scores``: the one rule the
    runtime's commissioning, the dashboard and the export share (``threshold_for_false_alarm``). Too few
    normals to resolve a rate (a new line's small validation split) put its threshold above every one of them:
    the entry then says so (``note``, shown on the Model card), as ``calibrate`` refuses such a set outright."""
    limits = {
        "defect": threshold_for_false_alarm(normal_scores, false_alarm_rate),
        "warn": threshold_for_false_alarm(normal_scores, warn_false_alarm_rate),
        "false_alarm_rate": false_alarm_rate,
        "warn_false_alarm_rate": warn_false_alarm_rate,
    }
    unresolved = [f"{rate:.1%} (it needs {minimum_frames(rate)})" for rate in (false_alarm_rate, warn_false_alarm_rate)
                  if len(normal_scores) < minimum_frames(rate)]
    if unresolved:
        limits["note"] = (f"set on {len(normal_scores)} validation normals, too few to resolve a false-alarm rate of "
                          f"{' or '.join(unresolved)}: such a threshold sits above every one of them and its rate is "
                          "not known; commission the line on its own defect-free frames (python -m edge_runtime "
                          "calibrate)")
        log.warning("%s", limits["note"])
    return limits


def headline_metrics(normal: np.ndarray, images: np.ndarray, limits: dict) -> dict:
    """False alarms on the ``normal`` scores and recall on the defect ``images`` at the warn and defect
    ``limits``, and the image AUROC between the two."""
    return {"false_alarm_rate_warn": float(np.mean(normal >= limits["warn"])),
            "false_alarm_rate_defect": float(np.mean(normal >= limits["defect"])),
            "gate_recall_warn": float(np.mean(images >= limits["warn"])),
            "gate_recall_defect": float(np.mean(images >= limits["defect"])),
            "image_auroc": separation_auroc(normal, images)}


def gate_metrics(scores: dict, limits: dict, calibration_normals: str = "in_context") -> dict:
    """Recall and false alarms at the thresholds; false alarms and AUROC against the calibration normals,
    and on a boxed data set against every reading of its normals (``BOXED_NORMALS``)."""
    normal, images = calibration_scores(scores, calibration_normals), scores["defect_image"]
    labels = np.array(scores["defect_label"])
    metrics = {
        "calibration_normals": calibration_normals,
        "n_normal": int(len(normal)), "n_defect_images": int(len(images)),
        **headline_metrics(normal, images, limits),
        "gate_recall_warn_per_class": {
            label: float(np.mean(images[labels == label] >= limits["warn"])) for label in sorted(set(labels))
        },
        "image_auroc_per_class": {label: separation_auroc(normal, images[labels == label])
                                  for label in sorted(set(labels))},
    }
    if len(scores["normal_crop"]):
        for prefix, key in BOXED_NORMALS.items():
            reading = scores[key]
            metrics[f"{prefix}_false_alarm_rate_warn"] = float(np.mean(reading >= limits["warn"]))
            metrics[f"{prefix}_false_alarm_rate_defect"] = float(np.mean(reading >= limits["defect"]))
            metrics[f"{prefix}_image_auroc"] = separation_auroc(reading, images)
    if len(scores["defect_region"]):
        metrics["region_auroc"] = separation_auroc(scores["normal"], scores["defect_region"])  # both in context
    return metrics
