"""The one preprocessing definition, shared by training and the runtime.

Training imports these functions to build its inputs, the exporter writes the
``PreprocessSpec`` into models.manifest.json, and the runtime reads it back. The
input value range is decided by the image's dtype (uint8 -> /255, uint16 -> /65535),
never guessed from the pixel values.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Union

import cv2
import numpy as np

from .errors import FrameQualityError, ImageDecodeError, InvalidImageError, ManifestError
from .image_io import declared_size

ImageSource = Union[str, Path, bytes, bytearray, memoryview, np.ndarray]

_DTYPE_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_INTERPOLATION = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}


@dataclass(frozen=True)
class PreprocessSpec:
    """How a frame becomes model input. Stored verbatim in the manifest.

    Both models take single-channel float32 NHWC input in [0, 1]; the ImageNet
    normalisation of MobileNetV2 happens inside the ONNX graphs.
    """

    anomaly_size: tuple[int, int] | None = None
    interpolation: str = "area"
    min_side: int = 32
    # A frame whose grey levels spread less than this (standard deviation, [0, 1] units; 0.002 is
    # half an 8-bit grey level) shows no surface to inspect: lens cap, lamp off, or fully over- or
    # under-exposed. It is refused, never scored: the gate's normalised score reads a texture-free
    # frame as ordinary (about 1). Real steel is smoother than one might think: the least textured
    # 64x64 crop of NEU-DET spreads 0.0049 (whole images 0.023, magnetic tiles 0.037; python -m
    # studies.frame_check_margins), about as much as a capped sensor's dark noise, which the dark
    # check below refuses instead.
    min_contrast: float = 0.002
    # A frame darker than this on average (0.04 is about 10 8-bit grey levels) is not lit: a lens
    # cap or a lamp that is off, whatever sensor noise it carries. Refused too: the normalised score
    # reads such noise as ordinary steel. The darkest images of the data sets average 0.13 (NEU-DET)
    # and 0.19 (magnetic tile).
    min_mean_grey: float = 0.04
    # The largest frame accepted, in pixels (2048 x 2048). The neu-steel gate sees a frame at its own
    # size and needs about 250 bytes of working memory per pixel (1.0 GB and 2 s at this limit, 4.4 GB and 17 s
    # for a 4096 x 4096 frame on the project machine; python scripts/frame_size_cost.py), so a larger
    # frame is refused with a typed error rather than left to exhaust the line PC's memory. A line with
    # larger frames crops or tiles them, or raises the limit in the manifest.
    max_pixels: int | None = 4_194_304
    # A frame whose neighbouring pixels correlate less than this shows sensor noise, not a surface: a
    # camera at high gain with the lamp off or the lens capped whose black level is offset (so the dark
    # check passes), or a faulty link. Refused: the feature autoencoder rebuilds noise well and the
    # normalised score reads it as ordinary steel. Any imaged surface correlates strongly, because the
    # optics spread each point over neighbouring pixels: NEU-DET's least correlated image 0.71, 64x64
    # crop 0.36; magnetic tiles 0.73 and 0.37; white noise about 0, also after JPEG (python -m
    # studies.frame_check_margins). Slightly blurred noise (0.59) passes. None: no check.
    min_neighbour_correlation: float | None = 0.2
    color: str = "gray"
    value_range: tuple[float, float] = (0.0, 1.0)
    # Scale the model's view of each frame so its median grey level is this (None: as captured).
    # The frame kept for display and the log stays as captured (``anomaly_frame``).
    exposure_median: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PreprocessSpec":
        """The spec a manifest describes. This runtime builds gray [0, 1] input only: a manifest asking
        for anything else was written for another runtime and is refused, not silently reinterpreted."""
        if data["color"] != "gray" or tuple(data["value_range"]) != (0.0, 1.0):
            raise ManifestError(f"preprocessing asks for color {data['color']!r}, value range "
                                f"{list(data['value_range'])}; this runtime builds gray input in [0, 1] only")
        anomaly_size = data.get("anomaly_size")
        return cls(
            anomaly_size=tuple(anomaly_size) if anomaly_size else None,
            interpolation=data["interpolation"],
            min_side=int(data["min_side"]),
            min_contrast=float(data.get("min_contrast", cls.min_contrast)),
            min_mean_grey=float(data.get("min_mean_grey", cls.min_mean_grey)),
            max_pixels=_optional(int, data.get("max_pixels", cls.max_pixels)),
            min_neighbour_correlation=_optional(float, data.get("min_neighbour_correlation",
                                                                 cls.min_neighbour_correlation)),
            color=data["color"],
            value_range=tuple(data["value_range"]),
            exposure_median=_optional(float, data.get("exposure_median")),
        )


def _optional(kind: type, value: object) -> object:
    """``kind(value)``, None kept: a manifest value of the wrong type fails here, as a malformed manifest."""
    return None if value is None else kind(value)


def load_image(source: ImageSource, max_pixels: int | None = None) -> np.ndarray:
    """Return the image as a uint8/uint16 array (HxW, or HxWxC in OpenCV's BGR order). An encoded image
    whose header declares more than ``max_pixels`` is refused before it is decoded."""
    if isinstance(source, np.ndarray):
        return source
    if isinstance(source, (str, Path)):
        data, name = _read_file(Path(source)), str(source)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), "uploaded bytes"
    else:
        raise InvalidImageError(f"expected an image path, encoded bytes or a numpy array, got {type(source).__name__}")
    if not data:
        raise ImageDecodeError(f"{name}: the file is empty (0 bytes)")
    declared = declared_size(data)
    if max_pixels is not None and declared is not None and declared[0] * declared[1] > max_pixels:
        raise too_many_pixels(*declared, max_pixels)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageDecodeError(f"{name}: not a readable image (corrupt, truncated or unsupported format)")
    return image


def _read_file(path: Path) -> bytes:
    """The file's bytes; ``ImageDecodeError`` for a folder, a missing file or one that cannot be read."""
    try:
        if path.is_dir():
            from .datasets import image_files

            holds = "" if image_files(path, recursive=True) else " (and it holds no image files)"
            raise ImageDecodeError(f"{path} is a folder, not an image{holds}")
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageDecodeError(f"image file not found: {path}") from None
    except OSError as exc:  # no permission, an I/O error, a name too long
        raise ImageDecodeError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def too_many_pixels(width: int, height: int, max_pixels: int) -> InvalidImageError:
    return InvalidImageError(
        f"frame is {width}x{height} pixels ({width * height:,}, {width * height / 1e6:.2f} megapixels), more than the "
        f"{max_pixels:,} ({max_pixels / 1e6:.2f} megapixels) this profile inspects in one frame (preprocessing.max_pixels "
        f"in the manifest, set by the working memory a frame needs); crop or tile the frame, or raise the limit")


@dataclass(frozen=True)
class FrameQuality:
    """What the frame checks measured on a frame that passed them. ``neighbour_correlation`` also tells how
    smooth the camera's picture is: a lens out of focus, motion blur or heavy compression raise it, sensor
    noise or in-camera sharpening lower it, while exposure leaves it; ``mean_grey`` how bright it is
    (``edge_runtime.drift`` watches both)."""

    mean_grey: float
    grey_spread: float
    neighbour_correlation: float


def to_gray01(image: np.ndarray, min_side: int = 32, min_contrast: float = 0.0,
              min_mean_grey: float = 0.0, max_pixels: int | None = None,
              min_neighbour_correlation: float | None = None) -> np.ndarray:
    """Validate a decoded frame and return it as float32 HxW grayscale in [0, 1] (``PreprocessSpec``
    says what ``min_side``, ``min_contrast``, ``min_mean_grey``, ``max_pixels`` and
    ``min_neighbour_correlation`` refuse)."""
    return gray01_with_quality(image, min_side, min_contrast, min_mean_grey, max_pixels, min_neighbour_correlation)[0]


def gray01_with_quality(image: np.ndarray, min_side: int = 32, min_contrast: float = 0.0,
                        min_mean_grey: float = 0.0, max_pixels: int | None = None,
                        min_neighbour_correlation: float | None = None) -> tuple[np.ndarray, FrameQuality]:
    """``to_gray01``'s frame and what its checks measured on it."""
    if not isinstance(image, np.ndarray):
        raise InvalidImageError(f"expected a numpy array, got {type(image).__name__}")
    if image.dtype not in _DTYPE_MAX:
        raise InvalidImageError(
            f"unsupported pixel type {image.dtype}: frames must be uint8 or uint16 as the camera delivers them"
        )
    if max_pixels is not None and image.ndim in (2, 3) and image.shape[0] * image.shape[1] > max_pixels:
        raise too_many_pixels(image.shape[1], image.shape[0], max_pixels)
    if image.size == 0:
        raise InvalidImageError(f"empty image of shape {image.shape}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        code = cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
        image = cv2.cvtColor(image, code)
    if image.ndim != 2:
        raise InvalidImageError(f"unsupported image shape {image.shape}: expected HxW or HxWx(1|3|4)")
    height, width = image.shape
    if min(height, width) < min_side:
        raise InvalidImageError(f"frame is {width}x{height} pixels; at least {min_side}x{min_side} is needed")
    gray = image.astype(np.float32) / np.float32(_DTYPE_MAX[image.dtype])
    mean, spread = grey_levels(gray)
    if mean < min_mean_grey:
        raise FrameQualityError(
            f"dark frame: mean grey {mean:.4f}, below the {min_mean_grey:g} of a lit surface; check the lens "
            f"cap, the lamp and the exposure{_bit_depth_hint(image)}"
        )
    if spread < min_contrast:
        raise FrameQualityError(
            f"blank frame: grey levels spread {spread:.4f} (standard deviation), below the {min_contrast:g} a "
            f"surface shows; check the lens cap, the lamp and the exposure"
        )
    correlation = neighbour_correlation(gray)
    if min_neighbour_correlation is not None and correlation < min_neighbour_correlation:
        raise FrameQualityError(
            f"noise frame: neighbouring pixels correlate {correlation:.3f}, below the "
            f"{min_neighbour_correlation:g} of an imaged surface; the camera delivers sensor noise, not a "
            f"picture: check the lamp, the lens cap, the gain and the camera link"
        )
    return gray, FrameQuality(mean, spread, correlation)


def _bit_depth_hint(image: np.ndarray) -> str:
    """For a 16-bit frame that never uses the top of its range: the likely real cause of a dark reading."""
    if image.dtype == np.uint16 and int(image.max()) < 4096:
        return (f" (or a 10/12-bit camera delivering 16-bit frames: the brightest pixel is {int(image.max())} of "
                f"65535, and 16-bit frames are read as 0..65535)")
    return ""


def grey_levels(gray: np.ndarray, samples: int = 16384) -> tuple[float, float]:
    """(mean, standard deviation) of the grey levels, from about ``samples`` pixels at most: the dark-
    and blank-frame checks cost the same on a 200x200 frame and on a 5-megapixel one. The pixels are
    every ``step``-th of the frame read row after row, with ``step`` coprime to the width, so each
    row starts at another column: stripes of any period cannot fall on the sampled columns only."""
    step = max(1, gray.size // samples)
    while step > 1 and math.gcd(step, gray.shape[1]) != 1:
        step += 1
    picked = np.ascontiguousarray(gray).reshape(-1)[::step]
    return float(picked.mean()), float(picked.std())


def neighbour_correlation(gray: np.ndarray) -> float:
    """Pearson correlation of pixels with their right and with their lower neighbours (the mean of the
    two), from a grid of at most ``NEIGHBOUR_SAMPLES`` pixels spread over the frame (every pixel of a small
    frame), so it costs the same tens of microseconds on any frame size; 0 for a flat frame. White noise
    reads 0 within about 0.02."""
    flat = np.ascontiguousarray(gray).reshape(-1)
    here, right, below = _neighbour_pairs(*gray.shape)
    values = flat[here].astype(np.float64)
    return 0.5 * (_pearson(values, flat[right].astype(np.float64)) + _pearson(values, flat[below].astype(np.float64)))


NEIGHBOUR_SAMPLES = 8192


@functools.lru_cache(maxsize=16)
def _neighbour_pairs(height: int, width: int) -> tuple[np.ndarray, ...]:
    """Flat indices of the sampled pixels (up to 256 columns, as many rows as the budget leaves), of their
    right and of their lower neighbours."""
    cols = min(width - 1, 256)
    rows = min(height - 1, max(1, NEIGHBOUR_SAMPLES // cols))
    row = np.unique(np.linspace(0, height - 2, rows).astype(np.intp))
    col = np.unique(np.linspace(0, width - 2, cols).astype(np.intp))
    here = (row[:, None] * width + col[None, :]).reshape(-1)
    return here, here + 1, here + width


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / denominator if denominator > 0 else 0.0


def resize(gray: np.ndarray, size: tuple[int, int], interpolation: str) -> np.ndarray:
    """Resize an HxW float image to ``size`` = (height, width)."""
    height, width = size
    if gray.shape == (height, width):
        return gray
    return cv2.resize(gray, (width, height), interpolation=_INTERPOLATION[interpolation])


def anomaly_frame(gray: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """The frame as the models see it: at the working size (native unless the profile fixes one), and
    at the profile's exposure where it fixes one."""
    work = resize(gray, spec.anomaly_size, spec.interpolation) if spec.anomaly_size else gray
    return normalise_exposure(work, spec.exposure_median) if spec.exposure_median else work


MAX_EXPOSURE_GAIN = 4.0


def normalise_exposure(gray: np.ndarray, median: float) -> np.ndarray:
    """Grey levels scaled so the frame's median is ``median`` (a gain of 1/4 to 4 at most), clipped to
    [0, 1]: a brighter or darker exposure of the same surface looks the same to the models."""
    level = float(np.median(gray))
    gain = float(np.clip(median / max(level, 1e-6), 1.0 / MAX_EXPOSURE_GAIN, MAX_EXPOSURE_GAIN))
    return np.clip(gray * gain, 0.0, 1.0).astype(np.float32)


def cell_centre_offset(stride: int, centre: str = "middle") -> float:
    """Where cell 0 of a stride-``stride`` map is centred, in input pixels (see ``FrameGeometry.to_frame``)."""
    return stride - 1 if centre == "receptive" else stride / 2 - 0.5


@dataclass(frozen=True)
class FrameGeometry:
    """Where the frame sits in the padded model input: maps model-resolution maps back to the frame."""

    top: int
    left: int
    work_shape: tuple[int, int]
    padded_shape: tuple[int, int]
    frame_shape: tuple[int, int]

    def to_frame(self, cells: np.ndarray, stride: int | None = None, origin: tuple[int, int] = (0, 0),
                 centre: str = "middle") -> np.ndarray:
        """A coarse map over the padded input (error cells, Grad-CAM) -> float32 map in frame pixels.

        Cell i is placed on padded pixel origin + stride*i + c. ``centre="middle"``: c is the
        middle of the cell's stride (stride/2 - 0.5). ``"receptive"``: c = stride - 1, where
        MobileNetV2's stride-2 convolutions (padding only after an even input, as
        TensorFlow's "same" does) centre what a cell sees. Which one scores better is
        measured per profile (``python -m studies.score_options``). ``stride`` defaults to
        padded size / map size; ``origin`` is where the map starts in padded pixels."""
        stride = stride or self.padded_shape[0] // cells.shape[0]
        offset = cell_centre_offset(stride, centre)
        place = np.float32([[stride, 0, origin[1] + offset], [0, stride, origin[0] + offset]])
        padded = cv2.warpAffine(np.ascontiguousarray(cells, dtype=np.float32), place,
                                (self.padded_shape[1], self.padded_shape[0]), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        work = padded[self.top: self.top + self.work_shape[0], self.left: self.left + self.work_shape[1]]
        if work.shape != tuple(self.frame_shape):
            work = cv2.resize(work, (self.frame_shape[1], self.frame_shape[0]), interpolation=cv2.INTER_LINEAR)
        return np.ascontiguousarray(work, dtype=np.float32)

    def to_padded(self, y: float, x: float) -> tuple[float, float]:
        """Frame pixel -> padded-input pixel."""
        return (y * self.work_shape[0] / self.frame_shape[0] + self.top,
                x * self.work_shape[1] / self.frame_shape[1] + self.left)

    def frame_rect(self, y: int, x: int, height: int, width: int) -> tuple[int, int, int, int]:
        """Padded-input rectangle -> (x, y, width, height) in frame pixels, clipped to the frame."""
        scale_y, scale_x = self.frame_shape[0] / self.work_shape[0], self.frame_shape[1] / self.work_shape[1]
        top = int(np.clip(round((y - self.top) * scale_y), 0, self.frame_shape[0]))
        bottom = int(np.clip(round((y + height - self.top) * scale_y), 0, self.frame_shape[0]))
        left = int(np.clip(round((x - self.left) * scale_x), 0, self.frame_shape[1]))
        right = int(np.clip(round((x + width - self.left) * scale_x), 0, self.frame_shape[1]))
        return left, top, right - left, bottom - top


def model_input(gray: np.ndarray, spec: PreprocessSpec, multiple: int, margin: int) -> tuple[np.ndarray, FrameGeometry]:
    """The frame as both models' shared backbone sees it: at the working size, reflect-padded.

    Returns the padded HxW frame and its geometry. Training (gate and classifier) and the
    runtime build their inputs here, so they cannot drift apart.
    """
    work = anomaly_frame(gray, spec)
    padded, top, left = pad_for_anomaly(work, multiple, margin)
    return padded, FrameGeometry(top, left, work.shape, padded.shape, gray.shape)


def pad_for_anomaly(gray: np.ndarray, multiple: int, margin: int) -> tuple[np.ndarray, int, int]:
    """Reflect-pad by at least ``margin`` per side, up to a multiple of ``multiple``.

    The margin keeps the backbone's zero padding away from the real frame, so its
    borders look like the texture inside it. Returns (padded, top, left).
    """
    height, width = gray.shape
    extra_h = 2 * margin + (-(height + 2 * margin)) % multiple
    extra_w = 2 * margin + (-(width + 2 * margin)) % multiple
    top, left = extra_h // 2, extra_w // 2
    padded = cv2.copyMakeBorder(gray, top, extra_h - top, left, extra_w - left, cv2.BORDER_REFLECT_101)
    return padded, top, left


def preprocess(source: ImageSource, spec: PreprocessSpec) -> np.ndarray:
    """Decode and validate any supported source into a float32 HxW frame in [0, 1]."""
    return preprocess_with_quality(source, spec)[0]


def preprocess_with_quality(source: ImageSource, spec: PreprocessSpec) -> tuple[np.ndarray, FrameQuality]:
    """``preprocess``'s frame and what the frame checks measured on it."""
    return checked_gray01(load_image(source, spec.max_pixels), spec)


def checked_gray01(image: np.ndarray, spec: PreprocessSpec) -> tuple[np.ndarray, FrameQuality]:
    """A decoded image through every frame check of ``spec``, as float32 gray in [0, 1], with what they measured."""
    return gray01_with_quality(image, spec.min_side, spec.min_contrast, spec.min_mean_grey, spec.max_pixels,
                               spec.min_neighbour_correlation)
