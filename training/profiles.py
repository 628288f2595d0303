"""Training profiles: which data, which normal set, which preprocessing.

A new product line is a new entry here (or ``--data DIR --normal-class NAME`` for a
folder of class sub-folders), trained with the same commands.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from edge_runtime.datasets import Sample, load_class_folders, load_magnetic_tile, load_neu_det
from edge_runtime.preprocess import PreprocessSpec
from training.synthetic_defects import KINDS

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MODELS = Path(__file__).resolve().parents[1] / "models"


@dataclass(frozen=True)
class Profile:
    name: str
    dataset: str  # "neu-det" | "magnetic-tile" | "folder"
    data_dir: Path
    preprocess: PreprocessSpec
    normal_class: str | None = None
    seed: int = 0
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    # NEU has no defect-free images: normal texture = crops this far outside every box.
    box_margin: int = 8
    # Labels whose images lend their box-free area as normal texture (None = every label).
    # Texture-wide defects (NEU crazing, pitted surface) cover the whole strip image and are
    # boxed only in part: their box-free area is the defect texture itself, not clean steel.
    # Also read by the residual detector. neu-steel, 2026-11-27: its detector without the scratch
    # images' box-free steel flags every test scratch, but also every clean synthetic strip frame
    # (docs/gate_design.md, step 20), so every label lends.
    normal_texture_labels: tuple[str, ...] | None = None
    # Box-free crops (of these sizes, so many per image) as training frames of their own, beside
    # the box-free cells of whole images. Off since 2026-11-26: with thresholds set on such crops,
    # the neu-steel gate trained without them flags more defect images at the same crop
    # false-alarm rate (validation recall 0.816 against 0.750; docs/gate_design.md).
    crop_sizes: tuple[int, ...] = field(default=(64, 96, 128))
    crops_per_image: int = 2
    standalone_crops: bool = False
    # Whether feature cells centred on the reflect-padded margin (``pad_margin``) count as normal
    # examples: they are real texture, mirrored, and never scored themselves. Leaving them out on
    # neu-steel (2026-11-26) dropped validation recall from 0.816 to 0.364: small frames, such as
    # the stand-alone crops thresholds are set on, are mostly seen through that margin.
    normal_cells_in_margin: bool = True
    # Normal training frames mirrored left-right and top-bottom as well (boxes mirrored with them).
    # neu-steel, 2026-11-26: validation recall 0.829 against 0.816 (a tie: three images) at a lower
    # validation AUROC (0.963 against 0.966), so not kept.
    normal_mirrors: bool = False
    false_alarm_rate: float = 0.01
    warn_false_alarm_rate: float = 0.05
    # Normals the thresholds are set on (export.calibrate.CALIBRATION_NORMALS): "in_context"
    # (defect-free images, or box-free windows of the whole frame's map) or "crops" (those
    # windows as frames of their own). With a normalised score, in-context windows of defect
    # images under-state false alarms (the defect raises the frame's level), so a boxed data
    # set without defect-free images calibrates on crops.
    calibration_normals: str = "in_context"
    # Side (frame pixels) of the square the classifier head sees around the anomaly peak
    # (on frames larger than it). None = always the whole frame. neu-steel: 176 px, 13x13
    # stem cells of the 15x15 a 200x200 frame gives; chosen on the validation split, where it
    # puts more Grad-CAM peaks on the defect at the same accuracy (docs/results.md, "Classifier").
    region_side: int | None = None
    # Train the head on stem windows of that size at random offsets (validated on the centred
    # window), as the runtime feeds it, instead of on whole stems. Measured on neu-steel and
    # not kept: validation accuracy 0.996 and Grad-CAM pointing 0.789 against 1.000 and 0.820
    # with whole stems (docs/results.md, "Classifier").
    head_window_training: bool = False
    # Each training frame of the classifier also enters as this many copies, each seen through one camera
    # change drawn at random (training.camera_changes: defocus, sensor noise, sharpening, JPEG), so that
    # a defect is still named when the camera renders it a little softer, grainier or blockier
    # (docs/results.md, "Classifier"; measured with ``python -m studies.camera_study``). neu-steel: 1, with
    # the fine-tuning rate below at 3e-5; at 1e-4 the copies cost 3% of the test images as captured.
    classifier_camera_copies: int = 0
    # Adam's learning rate while blocks 13-16 are fine-tuned (the head alone is trained at 1e-3 before).
    classifier_tune_rate: float = 1e-4
    # Fraction of the frame per side left out of the anomaly score (part edges, fixtures).
    ignore_border: float = 0.0
    # Anomaly-map normalisation before the score (edge_runtime.anomaly): "none", "frame_mean"
    # or "frame_median"; chosen on the validation split by ``python -m studies.score_options``.
    score_normalise: str = "none"
    # Where each error-map cell sits in the frame: "middle" of its stride or "receptive"
    # (where the backbone centres it); same choice (edge_runtime.preprocess.FrameGeometry).
    score_cell_centre: str = "middle"
    # Gaussian smoothing of the error cells before the maximum (in cells); same choice.
    score_sigma: float = 1.0
    # The most a normalised map is divided by (edge_runtime.anomaly.AnomalyScorer), so a frame whose
    # whole level is off the normal scale cannot normalise its deviation away; None = no cap.
    # Chosen by ``python -m studies.level_cap_study``: the lowest cap that leaves validation unchanged.
    score_level_cap: float | None = None
    # The normalising level is raised to this power (edge_runtime.anomaly.AnomalyScorer); chosen by
    # ``python -m studies.level_power_study`` on the validation split.
    score_level_power: float = 1.0
    # Views the gate scores (edge_runtime.anomaly.AnomalyScorer): 1, or 3 with the two mirror images
    # (three runs of the gate graph; docs/gate_design.md, "Mirror views").
    score_views: int = 1
    # With 3 views: the quantile of the validation calibration normals' one-view scores from which a
    # frame gets the mirror views (the manifest's ``views_from``); None = every frame.
    score_views_band: float | None = None
    # Gate features: PCA-whitened (True) or per-channel standardised (False); chosen by
    # measurement per profile (results/gate_experiments.json).
    whiten: bool = True
    # Reflect padding (pixels per side, at least) before the backbone, so frame borders
    # are not scored as anomalies because of the backbone's zero padding.
    pad_margin: int = 16
    # The gate's backbone features (a key of training.autoencoder.TAPS), their output stride
    # and the per-cell bottleneck widths; chosen by measurement (results/gate_experiments.json).
    gate_taps: str = "block6+13"
    feature_stride: int = 8
    gate_hidden: tuple[int, ...] = (256, 64, 256)
    gate_epochs: int = 6
    # Normal feature vectors the bottleneck is fitted on (a random subset when there are more).
    gate_max_vectors: int = 150_000
    # Painted copies of every training frame with a synthetic defect on its normal texture
    # (training.synthetic_defects); the bottleneck learns to rebuild their cells as the clean frame's
    # (denoising). 0 = normal cells only. neu-steel, 2026-11-26: 4 copies at strength 0.4 flag 2-7
    # more of the 228 validation images at warn than the same seed without, over three seeds, and
    # fewer test crops (docs/gate_design.md, step 9).
    gate_synthetic_defects: int = 0
    # Scales every painted defect's strength (1: 1.5-4 times the frame's grey spread for blobs and
    # lines). Faint defects teach the bottleneck more than obvious ones, which it fails on anyway.
    gate_synthetic_strength: float = 1.0
    # Which kinds of synthetic defect are painted (training.synthetic_defects.ALL_KINDS). neu-steel,
    # 2026-11-27: adding long streaks keeps the synthetic strip clean but ties with the four over three
    # seeds (docs/gate_design.md, step 13).
    gate_synthetic_kinds: tuple[str, ...] = KINDS
    # Share of MobileNetV2's expansion channels (blocks 1-12) kept, their projections refitted on
    # ``backbone_fit_frames`` training frames (training.pruning); the classifier shares the pruned
    # stem. None = the ImageNet backbone as it is. neu-steel, 2026-11-26: 0.5 makes the gate graph
    # 35% faster at the same validation recall overall, but crazing loses 7 of its 38 validation
    # images; 0.75 loses 4-7 of them too; so neither is deployed (docs/gate_design.md, "A pruned
    # backbone").
    backbone_keep_ratio: float | None = None
    backbone_fit_frames: int = 300
    # How the kept channels are chosen (training.pruning.prune_block): "energy" or "least_squares".
    backbone_selection: str = "energy"
    # Epochs of feature distillation of the pruned blocks towards the full network on the same frames
    # (training.pruning.distil); 0: the least-squares refit alone. neu-steel, 2026-11-26: 100 epochs at
    # 1e-3 on the half-pruned backbone, validation recall 0.794, crazing 26 of 38: not deployed.
    backbone_distil_epochs: int = 0
    backbone_distil_lr: float = 3e-4
    # Seed of the bottleneck's initial weights and batch order (``seed`` fixes the splits). One fit
    # of the same recipe varies by several points of validation recall from seed to seed, so a
    # profile may keep the best of a few on validation (the test split is only reported).
    gate_seed: int = 0
    # A second, frame-level autoencoder in the same graph: this backbone layer averaged over the
    # whole frame, whitened and rebuilt through ``frame_hidden``. Its reconstruction error, in
    # units of its typical value on normal frames and times ``frame_weight`` (chosen on the
    # validation split by ``python -m studies.score_options``), is added to the map's
    # (edge_runtime.anomaly).
    # It sees defects that change the texture of the whole frame, which look normal cell by cell
    # (magnetic tile: uneven surfaces, long cracks). None = no frame-level autoencoder.
    frame_tap: str | None = None
    frame_hidden: tuple[int, ...] = (64,)
    frame_epochs: int = 300
    frame_weight: float = 1.0
    # A residual detector beside the error map (training/train_residual_detector.py,
    # edge_runtime.anomaly): a per-cell network with these hidden widths learns the bottleneck's
    # residuals of ``residual_copies`` painted copies of each training frame (synthetic defects at
    # ``residual_strength``) against those of normal cells; its map, smoothed over
    # ``residual_sigma`` cells, joins the error map by a pixel-wise maximum. () = none. neu-steel,
    # 2026-11-27: validation recall at warn 0.917-0.943 over three seeds against 0.882 without it
    # (docs/gate_design.md, step 10); 0.952-0.961 when it also reads the whitened cell (step 11), the
    # seed best on validation deployed, its map smoothed over 4 cells (sigma 3-5 compared on validation).
    residual_hidden: tuple[int, ...] = ()
    residual_strength: float = 0.4
    residual_copies: int = 4
    residual_sigma: float = 2.0
    residual_epochs: int = 50
    residual_max_vectors: int = 60_000
    # Seed of the detector's painting, initial weights and batch order (the bottleneck keeps ``gate_seed``).
    residual_seed: int = 0
    # Detectors fitted on the same painted cells from seeds residual_seed, residual_seed + 1, ...;
    # the map averages their probabilities.
    residual_members: int = 1
    # What the detector reads: "residual" (whitened cell minus its reconstruction), "residual+cell"
    # (the whitened cell beside it) or "cell" (the whitened cell alone, a trial).
    residual_input: str = "residual"
    # Which kinds of synthetic defect the detector's painted cells carry (training.synthetic_defects).
    # neu-steel, 2026-11-27: adding long streaks gives validation recall at warn 0.978-0.982 over
    # three seeds against 0.952-0.961 without, but flags every clean frame of the synthetic strip, so
    # it is not deployed; the zoomed texture and a single long line tie (docs/gate_design.md, step 12).
    # Fine pits over a large area ("pits") raise it to 0.982-0.991 and pass the strip: deployed on
    # neu-steel in the nineteenth session (step 17). Bright scratches ("scratches") tie on validation
    # (step 18): not deployed.
    residual_kinds: tuple[str, ...] = KINDS
    # The detector's training frames also enter turned a quarter (normal and painted cells alike): the
    # strip's texture along either image axis, as cameras are mounted either way.
    residual_turns: bool = False
    # Copies of each of the detector's training frames with rolling marks over the whole frame
    # (training.surface_marks): normal cells of a marked surface, and painted defects on it. A trial
    # setting: with streaks among the detector's kinds it keeps their gain, but the synthetic strip's
    # clean frames are still all flagged (docs/gate_design.md, step 13).
    residual_surface_copies: int = 0
    # Their strength, a range in units of the frame's own grey spread.
    residual_surface_amplitude: tuple[float, float] = (0.25, 1.0)
    # Copies of each of the detector's training frames as another camera would deliver them
    # (training.camera_changes: defocus, sensor noise, sharpening or JPEG, random strength): normal
    # cells of the same steel, and defects painted on it before the change. neu-steel, 2026-11-27: 2
    # copies cut the validation crops flagged through those changes from 18-27% to 7-8% over three seeds,
    # for a tie in validation recall (docs/gate_design.md, step 15).
    residual_camera_copies: int = 0
    # Copies of each of the bottleneck's (and the frame-level autoencoder's) normal training frames as
    # another camera would deliver them (training.camera_changes): their cells and pooled features are
    # normal too, so the gate models the steel, not one camera's rendering of it. A trial setting
    # (docs/gate_design.md, magnetic tile, "Camera copies for the tile's gate").
    gate_camera_copies: int = 0

    def load(self) -> list[Sample]:
        if self.dataset == "neu-det":
            return load_neu_det(self.data_dir)
        if self.dataset == "magnetic-tile":
            return load_magnetic_tile(self.data_dir)
        return load_class_folders(self.data_dir, self.normal_class)


# The layer the frame-level autoencoder averages: measured on the magnetic tile (docs/gate_design.md).
FRAME_TAP = "block_13_expand_relu"

PROFILES = {
    "neu-steel": Profile("neu-steel", "neu-det", SHARED_DATA / "neu-det", PreprocessSpec(), region_side=176,
                         gate_taps="block5+12", gate_hidden=(96, 24, 96), gate_epochs=60,
                         score_normalise="frame_mean", score_level_cap=2.0, score_level_power=1.4,
                         calibration_normals="crops", gate_synthetic_defects=4, gate_synthetic_strength=0.4,
                         residual_hidden=(64,), residual_input="residual+cell", residual_sigma=4.0,
                         residual_kinds=("blob", "line", "patch", "grain", "pits"),
                         residual_camera_copies=2, residual_seed=1, classifier_camera_copies=1,
                         classifier_tune_rate=3e-5),
    "magnetic-tile": Profile(
        "magnetic-tile", "magnetic-tile", SHARED_DATA / "magnetic-tile", PreprocessSpec(anomaly_size=(256, 256), exposure_median=0.43),
        ignore_border=0.1,
        pad_margin=0,
        frame_tap=FRAME_TAP,
        frame_weight=2.0,
        score_normalise="frame_median",
        gate_taps="block5+12", gate_hidden=(96, 24, 96), gate_epochs=60,
        classifier_camera_copies=1, classifier_tune_rate=3e-5,
    ),
}


def folder_profile(name: str, data_dir: Path, normal_class: str | None, frame_level: bool = False) -> Profile:
    """A new product line from a folder of class sub-folders.

    ``frame_level``: the magnetic tile's measured gate recipe as the starting point (block 5 + 12 cell
    map, frame-level autoencoder weighted 2, median-normalised map; docs/gate_design.md); compare
    the scoring options on the line's own validation split with ``python -m studies.score_options``.
    Without it, the block 6 + 13 cell gate alone, which beat block 5 + 12 on the tile without the
    frame term."""
    profile = Profile(name, "folder", Path(data_dir), PreprocessSpec(), normal_class=normal_class)
    if not frame_level:
        return profile
    tile = PROFILES["magnetic-tile"]
    return replace(profile, frame_tap=tile.frame_tap, frame_weight=tile.frame_weight, gate_taps=tile.gate_taps,
                   gate_hidden=tile.gate_hidden, gate_epochs=tile.gate_epochs, score_normalise=tile.score_normalise)


def with_overrides(profile: Profile, assignments: list[str]) -> Profile:
    """``profile`` with ``KEY=VALUE`` settings for a trial (``python -m training ... --set``): values are
    read as JSON (numbers, true/false, null, lists), else as text; a list becomes a tuple where the
    field holds one."""
    if not assignments:
        return profile
    changes = {}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or key not in {f.name for f in fields(Profile)}:
            raise ValueError(f"--set {assignment!r}: expected KEY=VALUE with KEY a profile field")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        changes[key] = tuple(value) if isinstance(value, list) and isinstance(getattr(profile, key), tuple) else value
    return replace(profile, **changes)


def trained_profile(name: str, models_dir: Path = MODELS, weights: Path | None = None) -> Profile:
    """The profile the weights in ``models/<name>/keras`` (or ``weights``, a trial's folder) were trained with, as
    ``python -m training`` recorded it there (``profile.json``): a built-in one, or a new line (``--data``), with
    the ``--set`` of its training."""
    record = (Path(weights) if weights is not None else Path(models_dir) / name / "keras") / "profile.json"
    if name not in PROFILES and not record.is_file():
        raise KeyError(f"profile {name!r} is neither built in ({', '.join(PROFILES)}) nor trained ({record} missing)")
    saved = json.loads(record.read_text()) if record.is_file() else {}
    profile = PROFILES[name] if name in PROFILES else folder_profile(
        name, Path(saved["data_dir"]), saved["normal_class"], bool(saved.get("frame_tap")))
    return with_overrides(profile, saved.get("overrides", []))
