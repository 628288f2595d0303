"""``python -m studies.crop_false_alarms --profile neu-steel``: where the gate's false alarms on box-free crops come from.

NEU-DET has no defect-free images, so the gate's false alarms are measured on 64x64 windows cut
from the box-free areas of its defect images and scored as frames of their own (the export's
``normal_crop`` scores, ``export.calibrate.calibration_windows``). The deployed warn threshold is
set to flag at most 5% of the validation split's crops; this splits the crops it flags by the
class of the image they were cut from, on the validation and the test split, and draws the flagged
test crops in their images (boxes red, the crop green) so that a person can judge whether they show
defect-free steel or defects the boxes left out. Writes results/<profile>/crop_false_alarms.json
and crop_false_alarms.jpg.
"""

from __future__ import annotations

import random
import sys
from collections import defaultdict

import cv2
import numpy as np
from tqdm import tqdm

from edge_runtime.preprocess import preprocess
from export.calibrate import WINDOW, calibration_windows
from export.study_cli import ROOT, deployed_gate, study_parser, write_result

MONTAGE_COLUMNS = 6


def flagged_crops(gate, samples: list, warn: float) -> tuple[dict, list[np.ndarray]]:
    """({class: [flagged, crops]}, the flagged crops drawn in their images), crops cut as the export cuts them."""
    rng = random.Random(gate.profile.seed)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    drawn = []
    for sample in tqdm(samples, desc="crops", unit="img"):
        frame = preprocess(sample.path, gate.config.preprocess)
        for y, x in calibration_windows(frame.shape, sample.boxes, rng):
            score = float(gate.scorer.anomaly_map(frame[y: y + WINDOW, x: x + WINDOW]).max())
            counts[sample.label][1] += 1
            if score >= warn:
                counts[sample.label][0] += 1
                drawn.append(_drawn(frame, sample.boxes, y, x))
    return dict(counts), drawn


def _drawn(frame: np.ndarray, boxes: tuple, y: int, x: int) -> np.ndarray:
    image = cv2.cvtColor(np.round(frame * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    for box in boxes:
        cv2.rectangle(image, (box.xmin, box.ymin), (box.xmax, box.ymax), (0, 0, 255), 1)
    cv2.rectangle(image, (x, y), (x + WINDOW - 1, y + WINDOW - 1), (0, 255, 0), 2)
    return cv2.resize(image, (160, 160), interpolation=cv2.INTER_AREA)


def montage(images: list[np.ndarray]) -> np.ndarray:
    blank = np.zeros_like(images[0])
    padded = images + [blank] * (-len(images) % MONTAGE_COLUMNS)
    return np.vstack([np.hstack(padded[i: i + MONTAGE_COLUMNS]) for i in range(0, len(padded), MONTAGE_COLUMNS)])


def main(argv: list[str] | None = None) -> int:
    args = study_parser("python -m studies.crop_false_alarms", __doc__).parse_args(argv)
    gate = deployed_gate(args.manifest, args.profile)
    warn = gate.config.thresholds.warn
    result, drawn = {"warn": warn}, []
    for split in ("val", "test"):
        counts, crops = flagged_crops(gate, [s for s in gate.splits[split] if s.boxes], warn)
        flagged, total = sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values())
        result[split] = {"flagged": flagged, "crops": total, "rate": flagged / total if total else None,
                         "per_class": {label: {"flagged": f, "crops": n} for label, (f, n) in sorted(counts.items())}}
        print(f"{split}: {flagged} of {total} crops flagged at warn {warn:.4g} ("
              + ", ".join(f"{label} {f}/{n}" for label, (f, n) in sorted(counts.items())) + ")")
        drawn = crops
    write_result(args.profile, "crop_false_alarms", result)
    if drawn:
        out = ROOT / "results" / args.profile / "crop_false_alarms.jpg"
        cv2.imwrite(str(out), montage(drawn), [cv2.IMWRITE_JPEG_QUALITY, 85])
        print(f"{len(drawn)} flagged test crops drawn in their images: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
