import cv2
import numpy as np
import pytest

from edge_runtime.errors import ImageDecodeError, InvalidImageError
from edge_runtime.preprocess import PreprocessSpec, load_image, model_input, preprocess, to_gray01
from tests.conftest import NEU, needs_neu, textured


def test_uint8_and_uint16_scale_by_dtype_not_by_content():
    dark8 = np.full((40, 40), 10, np.uint8)
    dark16 = np.full((40, 40), 10 * 257, np.uint16)
    assert to_gray01(dark8)[0, 0] == pytest.approx(10 / 255)
    assert to_gray01(dark16)[0, 0] == pytest.approx(10 / 255)


def test_colour_and_gray_give_the_same_frame():
    gray = np.random.default_rng(0).integers(0, 256, (48, 64), dtype=np.uint8)
    bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    np.testing.assert_allclose(to_gray01(bgr), to_gray01(gray), atol=1 / 255)
    assert to_gray01(gray[:, :, None]).shape == (48, 64)


def test_colour_frames_are_read_in_opencv_s_bgr_order():
    """Arrays are BGR, as OpenCV decodes files (docs/runtime_api.md): blue weighs 0.114 in the grey, red 0.299."""
    bgr = np.zeros((40, 40, 3), np.uint8)
    bgr[:20, :, 0] = 200  # blue at the top
    bgr[20:, :, 2] = 200  # red at the bottom
    gray = to_gray01(bgr)
    assert gray[:20].mean() == pytest.approx(0.114 * 200 / 255, abs=1 / 255)
    assert gray[20:].mean() == pytest.approx(0.299 * 200 / 255, abs=1 / 255)


def test_path_bytes_and_array_sources_agree(tmp_path):
    gray = textured((50, 70), 128, seed=1, spread=40.0)
    path = tmp_path / "f.png"
    cv2.imwrite(str(path), gray)
    spec = PreprocessSpec()
    from_path = preprocess(path, spec)
    np.testing.assert_array_equal(from_path, preprocess(path.read_bytes(), spec))
    np.testing.assert_array_equal(from_path, preprocess(gray, spec))


def test_sixteen_bit_png_roundtrip(tmp_path):
    image = textured((64, 64), 128, seed=2, spread=40.0).astype(np.uint16) * 257 + 100
    path = tmp_path / "f16.png"
    cv2.imwrite(str(path), image)
    assert load_image(path).dtype == np.uint16
    np.testing.assert_allclose(preprocess(path, PreprocessSpec()), image / 65535.0, atol=1e-6)


@pytest.mark.parametrize(
    "source, error",
    [
        (b"", ImageDecodeError),
        (b"not an image at all", ImageDecodeError),
        (np.zeros((10, 10), np.uint8), InvalidImageError),
        (np.zeros((0, 64), np.uint8), InvalidImageError),
        (np.full((64, 64), np.nan, np.float32), InvalidImageError),
        (np.zeros((64, 64), np.float64), InvalidImageError),
        (np.zeros((64, 64, 2), np.uint8), InvalidImageError),
        (np.zeros((2, 64, 64, 3), np.uint8), InvalidImageError),
        ("/no/such/file.png", ImageDecodeError),
    ],
)
def test_bad_input_raises_a_typed_error_with_a_reason(source, error):
    with pytest.raises(error) as raised:
        preprocess(source, PreprocessSpec())
    assert str(raised.value)


def test_truncated_jpeg_is_refused(tmp_path):
    ok, encoded = cv2.imencode(".jpg", np.random.default_rng(3).integers(0, 256, (100, 100), dtype=np.uint8))
    assert ok
    with pytest.raises(ImageDecodeError):
        preprocess(encoded.tobytes()[:200], PreprocessSpec())


@pytest.mark.parametrize("anomaly_size", [None, (256, 256)])
def test_model_input_pads_to_the_multiple_and_its_geometry_maps_back(anomaly_size):
    spec = PreprocessSpec(anomaly_size=anomaly_size)
    frame = np.random.default_rng(0).random((150, 333), np.float32)
    padded, geometry = model_input(frame, spec, 16, 16)
    assert padded.shape[0] % 16 == 0 and padded.shape[1] % 16 == 0
    assert geometry.top >= 16 and geometry.left >= 16 and geometry.padded_shape == padded.shape
    back = geometry.to_frame(padded)  # a map over the padded input, at stride 1
    assert back.shape == frame.shape and back.dtype == np.float32
    if anomaly_size is None:
        np.testing.assert_array_equal(back, frame)
    else:
        assert np.abs(back - frame).mean() < 0.2  # resized twice, same content
    cells = geometry.to_frame(np.ones((padded.shape[0] // 8, padded.shape[1] // 8), np.float32))
    assert cells.shape == frame.shape and np.allclose(cells, 1.0)


def test_spec_roundtrips_through_manifest_dict():
    spec = PreprocessSpec(anomaly_size=(256, 256), min_contrast=0.004, min_mean_grey=0.02)
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
    older = {k: v for k, v in spec.to_dict().items() if k not in ("min_contrast", "min_mean_grey")}  # before the checks
    assert PreprocessSpec.from_dict(older) == PreprocessSpec(anomaly_size=(256, 256))


def test_the_frame_size_limit_travels_in_the_manifest_and_null_lifts_it():
    from edge_runtime.errors import InvalidImageError
    from edge_runtime.preprocess import to_gray01

    spec = PreprocessSpec(max_pixels=100 * 100)
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
    older = {k: v for k, v in spec.to_dict().items() if k != "max_pixels"}
    assert PreprocessSpec.from_dict(older).max_pixels == 2048 * 2048  # a manifest from before the limit
    assert PreprocessSpec.from_dict({**spec.to_dict(), "max_pixels": None}).max_pixels is None
    frame = np.random.default_rng(0).integers(60, 200, (100, 101, 3), dtype=np.uint8)
    with pytest.raises(InvalidImageError, match="101x100 pixels"):
        to_gray01(frame, max_pixels=100 * 100)
    assert to_gray01(frame[:, :100], max_pixels=100 * 100).shape == (100, 100)  # at the limit: inspected
    assert to_gray01(frame).shape == (100, 101)  # no limit


@pytest.mark.parametrize("change", [{"color": "rgb"}, {"value_range": [-1.0, 1.0]}])
def test_a_manifest_asking_for_input_this_runtime_does_not_build_is_refused(change):
    from edge_runtime.errors import ManifestError

    with pytest.raises(ManifestError, match="gray input in \\[0, 1\\] only"):
        PreprocessSpec.from_dict({**PreprocessSpec().to_dict(), **change})


def test_exposure_normalisation_gives_the_models_one_exposure_of_a_surface():
    from edge_runtime.preprocess import anomaly_frame, normalise_exposure

    surface = np.random.default_rng(0).uniform(0.2, 0.6, (64, 64)).astype(np.float32)
    spec = PreprocessSpec(exposure_median=0.43)
    dark, bright = anomaly_frame(surface * 0.8, spec), anomaly_frame(surface * 1.2, spec)
    assert np.median(dark) == pytest.approx(0.43, abs=1e-3)
    assert np.allclose(dark, bright, atol=1e-5)  # nothing clips here: the same view either way
    assert np.allclose(anomaly_frame(surface, PreprocessSpec()), surface)  # off unless the profile sets it
    black = normalise_exposure(np.full((8, 8), 0.01, np.float32), 0.43)
    assert black.max() == pytest.approx(0.04)  # the gain stops at 4: a lens cap is not turned into steel
    assert normalise_exposure(np.full((8, 8), 0.9, np.float32), 0.43).max() <= 1.0


def test_exposure_travels_in_the_manifest_and_old_manifests_mean_none():
    spec = PreprocessSpec(anomaly_size=(256, 256), exposure_median=0.43)
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
    old = {k: v for k, v in PreprocessSpec().to_dict().items() if k != "exposure_median"}
    assert PreprocessSpec.from_dict(old).exposure_median is None


def test_the_dark_and_blank_frame_checks_sample_large_frames_and_read_their_levels():
    from edge_runtime.preprocess import grey_levels

    large = np.random.default_rng(1).normal(0.5, 0.03, (1600, 2048)).astype(np.float32)
    mean, spread = grey_levels(large)
    assert mean == pytest.approx(float(large.mean()), rel=0.01)
    assert spread == pytest.approx(float(large.std()), rel=0.05)
    small = np.random.default_rng(2).normal(0.5, 0.005, (64, 64)).astype(np.float32)
    assert grey_levels(small) == pytest.approx((float(small.mean()), float(small.std())), rel=1e-5)  # every pixel


def test_stripes_of_any_period_are_not_read_as_a_blank_frame():
    from edge_runtime.preprocess import grey_levels

    for period in (2, 7, 14, 16, 200):
        columns = (np.arange(2048) % period < period // 2 + 1).astype(np.float32) * 0.1 + 0.4
        stripes = np.tile(columns, (1600, 1))
        assert grey_levels(stripes)[1] == pytest.approx(float(stripes.std()), rel=0.1), period


def test_a_dark_16_bit_frame_names_a_10_or_12_bit_camera_as_a_likely_cause():
    from edge_runtime.errors import InvalidImageError
    from edge_runtime.preprocess import to_gray01

    twelve_bit = np.random.default_rng(0).integers(0, 2000, (64, 64)).astype(np.uint16)
    with pytest.raises(InvalidImageError, match="12-bit camera delivering 16-bit frames"):
        to_gray01(twelve_bit, min_mean_grey=0.04)


def test_neighbour_correlation_tells_an_imaged_surface_from_white_sensor_noise():
    from edge_runtime.preprocess import neighbour_correlation

    rng = np.random.default_rng(0)
    noise = rng.normal(0.5, 0.1, (200, 200)).astype(np.float32)
    assert abs(neighbour_correlation(noise)) < 0.05
    assert neighbour_correlation(cv2.GaussianBlur(noise, (0, 0), 1.0)) > 0.6  # optics spread each point
    assert neighbour_correlation(np.full((64, 64), 0.5, np.float32)) == 0.0  # flat: no correlation to speak of
    ramp = np.tile(np.linspace(0.2, 0.8, 300, dtype=np.float32), (2000, 1))
    assert neighbour_correlation(ramp) > 0.99  # a tall frame reads the same from its sampled rows


def test_preprocessing_hands_on_what_the_frame_checks_measured():
    from edge_runtime.preprocess import neighbour_correlation, preprocess_with_quality

    frame = cv2.GaussianBlur(np.random.default_rng(0).integers(40, 220, (120, 160), dtype=np.uint8), (0, 0), 1.0)
    gray, quality = preprocess_with_quality(frame, PreprocessSpec())
    np.testing.assert_array_equal(gray, preprocess(frame, PreprocessSpec()))
    assert quality.neighbour_correlation == neighbour_correlation(gray)
    assert quality.mean_grey == pytest.approx(gray.mean(), abs=2e-3) and quality.grey_spread > 0.02
    unchecked = preprocess_with_quality(frame, PreprocessSpec(min_neighbour_correlation=None))[1]
    assert unchecked == quality  # measured whether or not the profile refuses noise


def test_noise_frames_are_refused_by_the_limit_the_manifest_carries():
    from edge_runtime.preprocess import neighbour_correlation

    noise = np.random.default_rng(0).integers(40, 220, (120, 160), dtype=np.uint8)
    with pytest.raises(InvalidImageError, match="noise frame: neighbouring pixels correlate -?0\\.0"):
        to_gray01(noise, min_neighbour_correlation=0.2)
    assert to_gray01(noise).shape == (120, 160)  # no limit
    jpeg = cv2.imdecode(cv2.imencode(".jpg", noise)[1], cv2.IMREAD_GRAYSCALE)
    assert neighbour_correlation(jpeg / 255.0) < 0.2  # compression does not make noise look like a surface
    spec = PreprocessSpec(min_neighbour_correlation=0.3)
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
    older = {k: v for k, v in spec.to_dict().items() if k != "min_neighbour_correlation"}
    assert PreprocessSpec.from_dict(older).min_neighbour_correlation == 0.2  # a manifest from before the check
    assert PreprocessSpec.from_dict({**spec.to_dict(), "min_neighbour_correlation": None}).min_neighbour_correlation is None


@needs_neu
def test_no_neu_image_is_refused_as_noise():
    """Real steel is far from the noise limit (``python -m studies.frame_check_margins`` gives the margins)."""
    spec = PreprocessSpec()
    for path in sorted((NEU / "images").glob("*.jpg"))[::5]:
        preprocess(path, spec)  # raises on a refused frame


def test_declared_size_reads_every_format_a_line_camera_writes():
    """The size refusal before decoding rests on these headers: PNG, baseline and progressive JPEG, BMP stored
    bottom-up or top-down (a negative height), TIFF."""
    import struct

    from edge_runtime.image_io import declared_size

    image = np.random.default_rng(0).integers(0, 255, (50, 70), dtype=np.uint8)  # 70 wide, 50 high
    for suffix, flags in ((".png", []), (".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), (".bmp", []),
                          (".tif", [])):
        assert declared_size(cv2.imencode(suffix, image, flags)[1].tobytes()) == (70, 50), (suffix, flags)
    top_down = bytearray(cv2.imencode(".bmp", image)[1].tobytes())
    top_down[22:26] = struct.pack("<i", -50)
    assert declared_size(bytes(top_down)) == (70, 50)
    assert declared_size(b"GIF89a" + bytes(20)) is None and declared_size(b"\x89PNG\r\n\x1a\n") is None


@pytest.mark.parametrize("suffix", [".bmp", ".tif"])
def test_a_bmp_or_tiff_declaring_a_huge_frame_is_refused_before_it_is_decoded(suffix):
    import struct

    data = bytearray(cv2.imencode(suffix, np.zeros((8, 8), np.uint8))[1].tobytes())
    if suffix == ".bmp":
        data[18:26] = struct.pack("<ii", 20000, -20000)  # top-down: the height is negative
    else:
        assert data[:4] == b"II*\x00"
        directory = struct.unpack("<I", data[4:8])[0]
        for index in range(struct.unpack("<H", data[directory:directory + 2])[0]):
            at = directory + 2 + 12 * index
            tag, kind = struct.unpack("<HH", data[at:at + 4])
            if tag in (256, 257):
                data[at + 8:at + 12] = struct.pack("<H", 20000) + b"\0\0" if kind == 3 else struct.pack("<I", 20000)
    with pytest.raises(InvalidImageError, match="20000x20000 pixels"):
        load_image(bytes(data), max_pixels=2048 * 2048)


def test_the_smallest_side_accepted_is_min_side_itself():
    texture = textured((64, 64), 128, seed=2, spread=40.0)
    assert to_gray01(texture[:32], min_side=32).shape == (32, 64)
    with pytest.raises(InvalidImageError, match="64x31 pixels; at least 32x32 is needed"):
        to_gray01(texture[:31], min_side=32)
