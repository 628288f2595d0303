"""Image files read and written through bytes, and the size an encoded image's header declares.

OpenCV's path functions (``cv2.imread``, ``cv2.imwrite``) crash the process on a file name that is
not valid UTF-8; everything here goes through Python's file functions and ``cv2.imencode`` /
``cv2.imdecode`` instead.

A PNG of a few megabytes can declare 20000x20000 16-bit pixels, which OpenCV would decode into
gigabytes before the frame-size limit (``preprocessing.max_pixels``) could refuse it. The formats
a line camera writes (PNG, JPEG, BMP, TIFF) state their size in a header of fixed layout, so the
limit is applied to that first. Other formats, and headers that cannot be read, give None: the
limit is then applied after decoding, as before.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header of a PNG, JPEG, BMP or TIFF file; None for anything else."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            return struct.unpack(">II", data[16:24])
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
        if data.startswith(b"BM"):
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(data)
    except struct.error:
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The size in the first start-of-frame segment, walking the segments from the start."""
    at = 2
    while at + 9 < len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return width, height
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7:  # markers without a length
            at += 2
            continue
        at += 2 + struct.unpack(">H", data[at + 2:at + 4])[0]
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """ImageWidth (256) and ImageLength (257) of the first image file directory."""
    order = "<" if data[:2] == b"II" else ">"
    directory = struct.unpack(order + "I", data[4:8])[0]
    count = struct.unpack(order + "H", data[directory:directory + 2])[0]
    values = {}
    for index in range(count):
        entry = data[directory + 2 + 12 * index:directory + 14 + 12 * index]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):
            values[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), entry[8:10] if kind == 3 else entry[8:12])[0]
    return (values[256], values[257]) if len(values) == 2 else None


def write_image(path: Path, image: np.ndarray) -> None:
    """Encode ``image`` in the format of ``path``'s suffix and write it; ``OSError`` if either fails."""
    ok, encoded = cv2.imencode(Path(path).suffix, image)
    if not ok:
        raise OSError(f"cannot encode {path}")
    Path(path).write_bytes(encoded.tobytes())


def read_gray(path: Path) -> np.ndarray | None:
    """The file decoded to 8-bit grey; None if it cannot be read or decoded."""
    try:
        data = np.fromfile(path, np.uint8)
    except OSError:
        return None
    return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
