"""``python -m studies.line_smoothing_study --profile neu-steel``: the detector's map smoothed along lines.

The deployed gate smooths its residual detector's cells with an isotropic Gaussian (``sigma`` in the
manifest). Each variant here smooths them with an anisotropic Gaussian (sigma along, sigma across, in cells)
in four directions and keeps the largest of the four at each cell, then places the map as the runtime does;
the error map stays as deployed. Per variant: the detector's scale and the thresholds set on the validation
split's calibration crops as ``python -m export`` sets them (the isotropic row reproduces the manifest), recall
at warn and at defect with the misses per class on both splits, the test crops flagged, the validation crops
flagged at warn through the four camera changes a detector is trained to ignore, and the first
``--strip-frames`` clean frames of the synthetic strip flagged at warn. The rule that reads it:
docs/gate_design.md, step 21. Writes results/<profile>/line_smoothing_study.json and a Markdown table.
"""

from __future__ import annotations

import functools
import math
import sys

import cv2
import numpy as np

from edge_runtime.commissioning import threshold_for_false_alarm
from studies.map_join_study import detector_study, figures_cells, figures_header, study_figures
from export.study_cli import write_result

VARIANTS = (None, (4.0, 1.0), (4.0, 2.0), (8.0, 1.0), (8.0, 2.0))  # None: the deployed isotropic smoothing
DIRECTIONS_DEG = (0.0, 45.0, 90.0, 135.0)


def line_kernel(along: float, across: float, degrees: float) -> np.ndarray:
    """A normalised anisotropic Gaussian: ``along`` cells of sigma in the direction ``degrees``, ``across``
    cells across it."""
    radius = math.ceil(3.0 * max(along, across))
    y, x = np.mgrid[-radius: radius + 1, -radius: radius + 1].astype(np.float64)
    angle = math.radians(degrees)
    u = x * math.cos(angle) + y * math.sin(angle)
    v = -x * math.sin(angle) + y * math.cos(angle)
    kernel = np.exp(-0.5 * (u / along) ** 2 - 0.5 * (v / across) ** 2)
    return (kernel / kernel.sum()).astype(np.float32)


def line_smoothed(cells: np.ndarray, along: float, across: float) -> np.ndarray:
    """The cells smoothed along each of ``DIRECTIONS_DEG``, the largest of the four at each cell (borders
    mirrored as the deployed ``cv2.GaussianBlur`` mirrors them)."""
    cells = np.ascontiguousarray(cells, dtype=np.float32)
    return np.max([cv2.filter2D(cells, -1, line_kernel(along, across, d), borderType=cv2.BORDER_REFLECT_101)
                   for d in DIRECTIONS_DEG], axis=0)


def frame_parts(scorer, error_scorer, frame: np.ndarray) -> tuple[np.ndarray, dict]:
    """(the deployed error map, the detector's unscaled map per variant) of one [0, 1] gray frame, from one run
    of the gate graph. ``error_scorer``: ``scorer`` without its detector, which scores the error map alone."""
    batch, geometry = scorer.model_input(frame)
    raw = scorer.viewed_cells(batch)
    error = error_scorer.map_from_cells(raw.cells[0], geometry, raw.frame_error(0))
    cells = raw.residual_cells(0)
    sigma = scorer.residual_detector.sigma
    detector = {variant: scorer.residual_map_from_cells(cells, geometry, sigma) if variant is None
                else scorer.residual_map_from_cells(line_smoothed(cells, *variant), geometry, 0.0)
                for variant in VARIANTS}
    return error, detector


def scores(parts: list, variant, scale: float) -> np.ndarray:
    return np.array([float(max(error.max(), scale * detector[variant].max())) for error, detector in parts])


def variant_row(parts: dict, variant, rates: tuple[float, float]) -> dict:
    """The detector's scale and the thresholds on the validation crops (``rates``: defect, warn), as the
    export sets them, and the figures of ``parts``."""
    crops = parts["val"]["crops"]
    error_level = threshold_for_false_alarm(np.array([float(e.max()) for e, _ in crops]), rates[1])
    detector_level = threshold_for_false_alarm(np.array([float(d[variant].max()) for _, d in crops]), rates[1])
    scale = error_level / detector_level
    return {"along_across": variant, "scale": scale,
            **study_figures(parts, lambda some: scores(some, variant, scale), rates)}


def main(argv: list[str] | None = None) -> int:
    args, rates, parts = detector_study("python -m studies.line_smoothing_study", __doc__, argv,
                                        lambda gate: functools.partial(frame_parts, gate.scorer,
                                                                          gate.scorer.with_residual_detector(None)))
    rows = [variant_row(parts, variant, rates) for variant in VARIANTS]
    out = write_result(args.profile, "line_smoothing_study", {"strip_frames": args.strip_frames, "rows": rows})
    print(f"{out}\n\n| detector smoothing | scale | {figures_header(len(parts['val']['images']))} |\n"
          f"|---|---|---|---|---|---|---|---|")
    for row in rows:
        name = ("isotropic (deployed)" if row["along_across"] is None
                else "along {:g}, across {:g}".format(*row["along_across"]))
        print(f"| {name} | {row['scale']:.3f} | {figures_cells(row)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
