"""``record``: save frames from a camera, a video file or the synthetic strip as lossless PNG files.

The first step of commissioning a line (docs/commissioning.md): record good strip with the
line's own camera, have a person look the frames over, then set the thresholds on them
with ``python -m edge_runtime calibrate``. Nothing is inspected here.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InspectionError
from ..image_io import write_image
from ..preprocess import load_image
from .sources import CaptureError, Frame, FrameSource, source_kind

EXIT_USAGE, EXIT_SHORT, EXIT_SOURCE_FAILED = 2, 1, 3


@dataclass(frozen=True)
class Recording:
    saved: tuple[Path, ...]
    unreadable: tuple[str, ...]  # frame ids the source delivered but that do not decode
    source_ended: bool  # a video file ran out before ``count`` frames were saved


def frame_image(frame: Frame) -> np.ndarray | None:
    """The frame as an array (``preprocess.load_image``: bit depth kept); None if it does not decode."""
    try:
        return load_image(frame.data)
    except InspectionError:
        return None


def recording_prefix(out: Path, now: float | None = None) -> str:
    """A file-name prefix for one recording into ``out`` that no file there has yet: frame ids restart at 0
    on every run, and commissioning records one folder over several runs (coils, grades, shifts)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    prefix, n = stamp, 1
    while any(out.glob(f"{prefix}_frame_*")):
        n += 1
        prefix = f"{stamp}-{n}"
    return prefix


def save_frames(source: FrameSource, out: Path, count: int, every: int = 1) -> Recording:
    """Write every ``every``-th frame of ``source`` to ``out`` until ``count`` are saved or the source ends;
    earlier recordings in ``out`` are kept (each run's files have a prefix of their own)."""
    out.mkdir(parents=True, exist_ok=True)
    prefix = recording_prefix(out)
    stop = threading.Event()
    saved: list[Path] = []
    unreadable: list[str] = []
    try:
        for index, frame in enumerate(source.frames(stop)):
            if index % every:
                continue
            image = frame_image(frame)
            if image is None:
                unreadable.append(frame.frame_id)
                continue
            path = out / f"{prefix}_frame_{frame.frame_id}.png"
            write_image(path, image)
            saved.append(path)
            if len(saved) >= count:
                stop.set()
                break
    finally:
        source.close()
    return Recording(tuple(saved), tuple(unreadable), source_ended=len(saved) < count)


def register_record(subparsers: Any) -> None:
    record = subparsers.add_parser(
        "record", help="save frames from a camera, video file or synthetic strip as PNG (e.g. good strip to commission on)",
        description=__doc__.splitlines()[0])
    record.add_argument("source", metavar="SOURCE", help="camera:N, a video file, or synthetic[:defect_rate]")
    record.add_argument("--out", type=Path, required=True, help="folder to write the frames to (created if missing)")
    record.add_argument("--frames", type=int, required=True, help="how many frames to save")
    record.add_argument("--every", type=int, default=1,
                        help="keep every N-th frame, to spread the recording along the strip (default: %(default)s)")
    record.add_argument("--seed", type=int, default=0, help="synthetic: random seed (default: %(default)s)")
    record.set_defaults(func=cmd_record)


def cmd_record(args: argparse.Namespace) -> int:
    from .commands import make_source

    if args.frames < 1 or args.every < 1:
        print("error: --frames and --every must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if source_kind(args.source) in ("folder", "image"):
        print(f"error: {args.source} is already image files: give it to calibrate as it is", file=sys.stderr)
        return EXIT_USAGE
    try:
        source = make_source(args.source, None, args)
        recording = save_frames(source, args.out, args.frames, args.every)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CaptureError as exc:
        print(f"error: the source failed: {exc}", file=sys.stderr)
        return EXIT_SOURCE_FAILED
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for frame_id in recording.unreadable:
        print(f"frame {frame_id}: does not decode, not saved", file=sys.stderr)
    print(f"saved {len(recording.saved)} frames from {source.name} to {args.out}")
    if recording.source_ended:
        print(f"error: the source ended after {len(recording.saved)} of {args.frames} frames", file=sys.stderr)
        return EXIT_SHORT
    return 0
