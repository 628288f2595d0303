"""``python -m export.frame_check_margins --profile P``: how far the data set's frames are from the
dark- and blank-frame limits (``PreprocessSpec.min_mean_grey`` / ``min_contrast``).

Those checks refuse a frame before the gate scores it, so a limit too close to real steel would
refuse good strip. Reads every image of the profile's data set (all splits: the limits are not
fitted, only checked), with the limits of the manifest, and prints the darkest image's mean grey,
the least textured image's grey-level spread, the same for 64x64 crops (on a 34-pixel grid:
NEU-DET's calibration unit, and the smallest frame a line might send), each against its limit,
and how many of those crops the limits would refuse.
Writes results/<profile>/frame_check_margins.json.
"""

from __future__ import annotations

import sys

import numpy as np
from tqdm import tqdm

from edge_runtime.preprocess import PreprocessSpec, grey_levels, preprocess
from export.study_cli import deployed_gate, study_parser, write_result

CROP, STEP = 64, 34


def margins(samples: list, spec: PreprocessSpec) -> dict:
    unchecked = PreprocessSpec(min_side=spec.min_side)  # read every frame, whatever the limits say
    means, spreads, crop_means, crop_spreads = [], [], [], []
    for sample in tqdm(samples, desc="frames", unit="img"):
        frame = preprocess(sample.path, unchecked)
        mean, spread = grey_levels(frame)
        means.append(mean)
        spreads.append(spread)
        for y in range(0, frame.shape[0] - CROP + 1, STEP):
            for x in range(0, frame.shape[1] - CROP + 1, STEP):
                crop_mean, crop_spread = grey_levels(frame[y: y + CROP, x: x + CROP])
                crop_means.append(crop_mean)
                crop_spreads.append(crop_spread)
    darkest, flattest = float(np.min(means)), float(np.min(crop_spreads))
    return {"images": len(means), "crops": len(crop_spreads),
            "darkest_mean_grey": darkest, "min_mean_grey": spec.min_mean_grey,
            "darkest_over_limit": darkest / spec.min_mean_grey,
            "darkest_crop_mean_grey": float(np.min(crop_means)),
            "darkest_crop_over_limit": float(np.min(crop_means)) / spec.min_mean_grey,
            "crops_refused_dark": int(np.sum(np.array(crop_means) < spec.min_mean_grey)),
            "crops_refused_blank": int(np.sum(np.array(crop_spreads) < spec.min_contrast)),
            "least_image_spread": float(np.min(spreads)),
            "least_image_spread_over_limit": float(np.min(spreads)) / spec.min_contrast,
            "least_crop_spread": flattest, "min_contrast": spec.min_contrast,
            "least_spread_over_limit": flattest / spec.min_contrast}


def main(argv: list[str] | None = None) -> int:
    args = study_parser("python -m export.frame_check_margins", __doc__).parse_args(argv)
    gate = deployed_gate(args.manifest, args.profile)  # the limits as the runtime reads them
    result = margins([s for split in gate.splits.values() for s in split], gate.config.preprocess)
    write_result(args.profile, "frame_check_margins", result)
    print(f"{args.profile}: {result['images']} images; darkest mean grey {result['darkest_mean_grey']:.4f} "
          f"({result['darkest_over_limit']:.1f}x the limit {result['min_mean_grey']:g}); least textured image spreads "
          f"{result['least_image_spread']:.4f} ({result['least_image_spread_over_limit']:.1f}x), 64x64 crop "
          f"spreads {result['least_crop_spread']:.4f} ({result['least_spread_over_limit']:.1f}x the limit "
          f"{result['min_contrast']:g}; {result['crops']} crops); darkest 64x64 crop {result['darkest_crop_mean_grey']:.4f} "
          f"({result['darkest_crop_over_limit']:.1f}x); crops that would be refused: {result['crops_refused_dark']} "
          f"dark, {result['crops_refused_blank']} blank")
    return 0


if __name__ == "__main__":
    sys.exit(main())
