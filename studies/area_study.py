"""``python -m studies.area_study --profile neu-steel``: how false alarms grow with the normal area.

A boxed data set without defect-free images (NEU-DET) calibrates on small box-free crops,
but the line sees whole frames. The score is a maximum over the map, so a larger defect-free
area scores higher, and a threshold set on 64x64 crops flags more whole frames than 5%.
This measures that at the deployed thresholds, two ways, on the validation and test splits:

* **crops by side**: box-free crops of each side, scored as frames of their own (no defect
  in the model's input; two per image that has room for one). Larger crops fit only in
  images with small boxes, so they come from fewer images.
* **box-free area**: each image's whole box-free area (``margin`` pixels from every box,
  at least 64x64 pixels of it), its map divided by that area's own level
  (``calibrate.boxfree_values``), as if the frame held no defect. The backbone sees the
  defect next to it, so this reading leaks some defect error and bounds the false-alarm
  rate from above; a wider margin leaks less and leaves fewer images.

NEU-DET's boxes also miss some defects, which raises both readings. Neither is a defect-free
frame: the plant's own defect-free frames are (``python -m edge_runtime calibrate``).
Also the other side of the trade: the warn threshold set for the same rate on each
validation reading instead, and the test recall it would give.
Writes results/<profile>/area_study.json and Markdown tables to stdout.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edge_runtime.anomaly import AnomalyScorer
from edge_runtime.datasets import Sample, box_free_corners
from edge_runtime.commissioning import threshold_for_false_alarm
from edge_runtime.metrics import separation_auroc
from edge_runtime.preprocess import preprocess
from export.calibrate import WINDOW_MARGIN, boxfree_values, map_at_boxfree_level
from export.study_cli import deployed_gate, study_parser, write_result

ROOT = Path(__file__).resolve().parents[1]
CROP_SIDES = (64, 96, 128)
CROPS_PER_IMAGE = 2
AREA_MARGINS = (8, 24, 40)
MIN_AREA = 64 * 64


@dataclass(frozen=True)
class CropReading:
    score: float
    corner: tuple[int, int]  # top-left of the crop in the frame
    peak: tuple[int, int]  # the crop map's maximum, in frame pixels


def crop_readings(scorer: AnomalyScorer, frame: np.ndarray, sample: Sample, side: int,
                  rng: random.Random) -> list[CropReading]:
    corners = box_free_corners(frame.shape, sample.boxes, side, WINDOW_MARGIN)
    rng.shuffle(corners)
    readings = []
    for y, x in corners[:CROPS_PER_IMAGE]:
        gate = scorer.run(frame[y: y + side, x: x + side])
        peak_y, peak_x = np.unravel_index(int(np.argmax(gate.anomaly_map)), gate.anomaly_map.shape)
        readings.append(CropReading(gate.score, (y, x), (y + int(peak_y), x + int(peak_x))))
    return readings


def boxfree_area_score(scorer: AnomalyScorer, frame: np.ndarray, anomaly_map: np.ndarray, sample: Sample,
                       margin: int) -> float | None:
    """Maximum of the map over the box-free scored area, at that area's own level (None: under 64x64 px)."""
    if boxfree_values(scorer, anomaly_map, sample.boxes, margin).size < MIN_AREA:
        return None
    at_level = map_at_boxfree_level(scorer, frame, anomaly_map, sample.boxes, margin)
    return float(boxfree_values(scorer, at_level, sample.boxes, margin).max())


def split_readings(scorer: AnomalyScorer, samples: list[Sample], spec, seed: int,
                   largest: list | None = None) -> dict:
    """Scores per reading. The largest crops go to ``largest`` as (reading, sample, frame) too."""
    rng = random.Random(seed)
    readings = {"defect_image": [], **{f"crop_{side}": [] for side in CROP_SIDES},
                **{f"area_margin_{margin}": [] for margin in AREA_MARGINS}}
    for sample in tqdm(samples, desc="area study", unit="img"):
        frame = preprocess(sample.path, spec)
        gate = scorer.run(frame)
        readings["defect_image"].append(gate.score)
        for side in CROP_SIDES:
            crops = crop_readings(scorer, frame, sample, side, rng)
            readings[f"crop_{side}"].extend(c.score for c in crops)
            if side == CROP_SIDES[-1] and largest is not None:
                largest.extend((c, sample, frame) for c in crops)
        for margin in AREA_MARGINS:
            score = boxfree_area_score(scorer, frame, gate.anomaly_map, sample, margin)
            if score is not None:
                readings[f"area_margin_{margin}"].append(score)
    return {k: np.array(v) for k, v in readings.items()}


def top_crop_gallery(largest: list, side: int, out: Path, count: int = 8) -> Path:
    """The highest-scoring largest box-free crops in their frames: boxes red, crop green, its map's peak
    cyan, score top left. What a reader checks by eye: unboxed defects, or clean steel?"""
    tiles = []
    for crop, sample, frame in sorted(largest, key=lambda item: -item[0].score)[:count]:
        image = cv2.cvtColor(np.clip(frame * 255.0, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
        for b in sample.boxes:
            cv2.rectangle(image, (b.xmin, b.ymin), (b.xmax, b.ymax), (0, 0, 255), 1)
        (y, x), (peak_y, peak_x) = crop.corner, crop.peak
        cv2.rectangle(image, (x, y), (x + side - 1, y + side - 1), (0, 255, 0), 1)
        cv2.circle(image, (peak_x, peak_y), 6, (255, 255, 0), 2)
        cv2.putText(image, f"{crop.score:.2f} {sample.path.stem}", (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 255, 255), 1)
        tiles.append(cv2.resize(image, (200, 200), interpolation=cv2.INTER_AREA))
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % 4)
    cv2.imwrite(str(out), np.vstack([np.hstack(tiles[i: i + 4]) for i in range(0, len(tiles), 4)]))
    return out


def summarise(readings: dict, limits: dict) -> dict:
    images = readings["defect_image"]
    out = {}
    for name, normals in readings.items():
        if name == "defect_image" or not len(normals):
            continue
        out[name] = {"n": int(len(normals)),
                     "false_alarm_rate_warn": float(np.mean(normals >= limits["warn"])),
                     "false_alarm_rate_defect": float(np.mean(normals >= limits["defect"])),
                     "image_auroc": separation_auroc(normals, images)}
    return out


def study(manifest_path: Path, profile: str) -> dict:
    gate = deployed_gate(manifest_path, profile)
    boxed = {split: [s for s in gate.splits[split] if s.boxes] for split in ("val", "test")}
    if not any(boxed.values()):
        raise SystemExit(f"profile {profile!r} has no boxed images: its thresholds are set on defect-free frames")
    limits = gate.entry["thresholds"]
    result = {"thresholds": {k: limits[k] for k in ("warn", "defect")}}
    readings, largest = {}, []
    for split, chosen in boxed.items():
        readings[split] = split_readings(gate.scorer, chosen, gate.config.preprocess, gate.profile.seed, largest)
        result[split] = summarise(readings[split], limits)
    result["recalibrated"] = recalibrated(readings, limits["warn_false_alarm_rate"])
    if largest:
        gallery = top_crop_gallery(largest, CROP_SIDES[-1], ROOT / "results" / profile / "area_study_top_crops.png")
        result["top_crop_gallery"] = gallery.relative_to(ROOT).as_posix()
    return result


def recalibrated(readings: dict, rate: float) -> dict:
    """The warn threshold set for ``rate`` on each validation reading instead, and what it gives on test."""
    out = {}
    for name, normals in readings["val"].items():
        if name == "defect_image" or not len(normals):
            continue
        threshold = threshold_for_false_alarm(normals, rate)
        out[name] = {"warn_threshold": threshold,
                     "test_gate_recall": float(np.mean(readings["test"]["defect_image"] >= threshold)),
                     "test_false_alarm_rate": float(np.mean(readings["test"][name] >= threshold))
                     if len(readings["test"][name]) else None}
    return out


def main(argv: list[str] | None = None) -> int:
    args = study_parser("python -m studies.area_study", __doc__).parse_args(argv)
    result = study(args.manifest, args.profile)
    write_result(args.profile, "area_study", result)
    print("| normal reading | val n | val FAR warn / defect | test n | test FAR warn / defect | test image AUROC |")
    print("|---|---|---|---|---|---|")
    for name, test in result["test"].items():
        val = result["val"].get(name, {"n": 0, "false_alarm_rate_warn": float("nan"), "false_alarm_rate_defect": float("nan")})
        print(f"| {name} | {val['n']} | {val['false_alarm_rate_warn']:.3f} / {val['false_alarm_rate_defect']:.3f} | "
              f"{test['n']} | {test['false_alarm_rate_warn']:.3f} / {test['false_alarm_rate_defect']:.3f} | "
              f"{test['image_auroc']:.3f} |")
    print("\n| warn threshold set on | threshold | test gate recall | test false alarms on that reading |")
    print("|---|---|---|---|")
    for name, row in result["recalibrated"].items():
        far = "-" if row["test_false_alarm_rate"] is None else f"{row['test_false_alarm_rate']:.3f}"
        print(f"| {name} | {row['warn_threshold']:.3f} | {row['test_gate_recall']:.3f} | {far} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
