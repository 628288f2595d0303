"""``python -m studies.frame_check_margins --profile P``: how far the data set's frames are from the
dark-, blank- and noise-frame limits (``PreprocessSpec.min_mean_grey`` / ``min_contrast`` /
``min_neighbour_correlation``).

Those checks refuse a frame before the gate scores it, so a limit too close to real steel would
refuse good strip. Reads every image of the profile's data set (all splits: the limits are not
fitted, only checked), with the limits of the manifest, and prints the darkest image's mean grey,
the least textured image's grey-level spread, the least neighbour correlation, the same for 64x64
crops (on a 34-pixel grid: NEU-DET's calibration unit, and the smallest frame a line might send),
each against its limit, and how many of those crops the limits would refuse; the neighbour
correlation of white sensor noise (raw and after JPEG), which the noise limit is there to refuse;
and whether a per-frame limit could refuse a lens out of focus (the images through a Gaussian blur
of sigma 1 pixel against the images as captured: how many sharp images a limit that refuses every
blurred one would refuse too). Writes results/<profile>/frame_check_margins.json.
"""

from __future__ import annotations

import sys

import cv2
import numpy as np
from tqdm import tqdm

from edge_runtime.preprocess import PreprocessSpec, grey_levels, neighbour_correlation, preprocess
from export.study_cli import deployed_gate, study_parser, write_result

CROP, STEP = 64, 34


def margins(samples: list, spec: PreprocessSpec) -> dict:
    unchecked = PreprocessSpec(min_side=spec.min_side, min_neighbour_correlation=None)  # read every frame
    means, spreads, correlations, crop_means, crop_spreads, crop_correlations = [], [], [], [], [], []
    blurred = []
    for sample in tqdm(samples, desc="frames", unit="img"):
        frame = preprocess(sample.path, unchecked)
        mean, spread = grey_levels(frame)
        means.append(mean)
        spreads.append(spread)
        correlations.append(neighbour_correlation(frame))
        blurred.append(neighbour_correlation(_captured(cv2.GaussianBlur(frame, (0, 0), DEFOCUS_SIGMA))))
        for y in range(0, frame.shape[0] - CROP + 1, STEP):
            for x in range(0, frame.shape[1] - CROP + 1, STEP):
                crop = frame[y: y + CROP, x: x + CROP]
                crop_mean, crop_spread = grey_levels(crop)
                crop_means.append(crop_mean)
                crop_spreads.append(crop_spread)
                crop_correlations.append(neighbour_correlation(crop))
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
            "least_spread_over_limit": flattest / spec.min_contrast,
            **correlation_margins(correlations, crop_correlations, spec.min_neighbour_correlation),
            **defocus_overlap(correlations, blurred)}


DEFOCUS_SIGMA = 1.0  # the camera study's lens out of focus


def _captured(frame: np.ndarray) -> np.ndarray:
    """The frame as an 8-bit camera would deliver it."""
    return np.round(np.clip(frame, 0.0, 1.0) * 255.0) / 255.0


def defocus_overlap(sharp: list[float], blurred: list[float]) -> dict:
    """How far apart the images' neighbour correlation lies as captured and out of focus: a per-frame
    limit that refuses every blurred image refuses the sharp images at or above the least blurred one."""
    least_blurred = float(np.min(blurred))
    return {"defocus_sigma": DEFOCUS_SIGMA, "most_image_correlation": float(np.max(sharp)),
            "least_blurred_image_correlation": least_blurred,
            "sharp_images_refused_by_a_defocus_limit": int(np.sum(np.array(sharp) >= least_blurred))}


def correlation_margins(images: list[float], crops: list[float], limit: float | None) -> dict:
    """The least correlated image and crop against the noise limit, and white noise's correlation."""
    noise = np.random.default_rng(0).integers(0, 256, (200, 200), dtype=np.uint8)
    jpeg = cv2.imdecode(cv2.imencode(".jpg", noise)[1], cv2.IMREAD_GRAYSCALE)
    result = {"min_neighbour_correlation": limit,
              "least_image_correlation": float(np.min(images)), "least_crop_correlation": float(np.min(crops)),
              "white_noise_correlation": neighbour_correlation(noise / 255.0),
              "white_noise_jpeg_correlation": neighbour_correlation(jpeg / 255.0)}
    if limit:
        result.update(least_image_correlation_over_limit=result["least_image_correlation"] / limit,
                      least_crop_correlation_over_limit=result["least_crop_correlation"] / limit,
                      crops_refused_noise=int(np.sum(np.array(crops) < limit)))
    return result


def main(argv: list[str] | None = None) -> int:
    args = study_parser("python -m studies.frame_check_margins", __doc__).parse_args(argv)
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
    if result["min_neighbour_correlation"]:
        print(f"neighbour correlation: least image {result['least_image_correlation']:.3f} "
              f"({result['least_image_correlation_over_limit']:.1f}x the limit {result['min_neighbour_correlation']:g}), "
              f"least 64x64 crop {result['least_crop_correlation']:.3f} ({result['least_crop_correlation_over_limit']:.1f}x; "
              f"{result['crops_refused_noise']} crops would be refused); white noise "
              f"{result['white_noise_correlation']:.3f}, after JPEG {result['white_noise_jpeg_correlation']:.3f}")
    print(f"defocus (blur sigma {result['defocus_sigma']:g}): least correlated blurred image "
          f"{result['least_blurred_image_correlation']:.3f}, most correlated sharp image "
          f"{result['most_image_correlation']:.3f}; a per-frame limit refusing every blurred image would refuse "
          f"{result['sharp_images_refused_by_a_defocus_limit']} of the {result['images']} sharp ones")
    return 0


if __name__ == "__main__":
    sys.exit(main())
