import cv2
import numpy as np
import pytest

from edge_runtime.errors import ImageDecodeError, InvalidImageError
from edge_runtime.preprocess import PreprocessSpec, classifier_input, load_image, preprocess, to_gray01


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


def test_path_bytes_and_array_sources_agree(tmp_path):
    gray = np.random.default_rng(1).integers(0, 256, (50, 70), dtype=np.uint8)
    path = tmp_path / "f.png"
    cv2.imwrite(str(path), gray)
    spec = PreprocessSpec()
    from_path = preprocess(path, spec)
    np.testing.assert_array_equal(from_path, preprocess(path.read_bytes(), spec))
    np.testing.assert_array_equal(from_path, preprocess(gray, spec))


def test_sixteen_bit_png_roundtrip(tmp_path):
    image = np.random.default_rng(2).integers(0, 65536, (64, 64), dtype=np.uint16)
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


def test_classifier_input_shape_and_range():
    spec = PreprocessSpec(classifier_size=(224, 224))
    x = classifier_input(to_gray01(np.full((200, 200), 255, np.uint8)), spec)
    assert x.shape == (1, 224, 224, 1) and x.dtype == np.float32
    assert x.max() == pytest.approx(1.0)


def test_spec_roundtrips_through_manifest_dict():
    spec = PreprocessSpec(anomaly_size=(256, 256))
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
