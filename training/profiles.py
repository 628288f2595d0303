"""Training profiles: which data, which normal set, which preprocessing.

A new product line is a new entry here (or ``--data DIR --normal-class NAME`` for a
folder of class sub-folders), trained with the same commands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edge_runtime.datasets import Sample, load_class_folders, load_magnetic_tile, load_neu_det
from edge_runtime.preprocess import PreprocessSpec

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
    crop_sizes: tuple[int, ...] = field(default=(64, 96, 128))
    crops_per_image: int = 2
    standalone_crops: bool = True
    false_alarm_rate: float = 0.01
    warn_false_alarm_rate: float = 0.05
    # Side of the square the classifier sees around the anomaly peak, in frame pixels
    # (the size of its training images); None = always the whole frame.
    region_side: int | None = None
    # Fraction of the frame per side left out of the anomaly score (part edges, fixtures).
    ignore_border: float = 0.0
    # Gate features: PCA-whitened (True) or per-channel standardised (False); chosen by
    # measurement per profile (results/gate_experiments.json).
    whiten: bool = True
    # Reflect padding (pixels per side, at least) before the backbone, so frame borders
    # are not scored as anomalies because of the backbone's zero padding.
    pad_margin: int = 16
    # Output stride of the gate's feature map (8 or 16): 16 is about 3x cheaper per frame.
    feature_stride: int = 8

    def load(self) -> list[Sample]:
        if self.dataset == "neu-det":
            return load_neu_det(self.data_dir)
        if self.dataset == "magnetic-tile":
            return load_magnetic_tile(self.data_dir)
        return load_class_folders(self.data_dir, self.normal_class)


PROFILES = {
    "neu-steel": Profile("neu-steel", "neu-det", SHARED_DATA / "neu-det", PreprocessSpec(), region_side=200),
    "magnetic-tile": Profile(
        "magnetic-tile", "magnetic-tile", SHARED_DATA / "magnetic-tile", PreprocessSpec(anomaly_size=(256, 256)),
        ignore_border=0.1,
        pad_margin=0,
    ),
}


def folder_profile(name: str, data_dir: Path, normal_class: str | None) -> Profile:
    return Profile(name, "folder", Path(data_dir), PreprocessSpec(), normal_class=normal_class)
