"""Frame sources: where frames come from. Each yields ``Frame`` objects until exhausted or stopped.

A source raises ``CaptureError`` (typed, operator-readable) when it cannot deliver
frames any more; the loop turns that into a ``source_error`` record and stops or
retries as configured. ``frames()`` may be called again to reopen after a failure.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Iterable, Iterator, Mapping

import cv2
import numpy as np

from ..datasets import IMAGE_SUFFIXES

_IMAGE_ENDINGS = tuple(IMAGE_SUFFIXES)
_TEMPORARY = (".", "~")  # hidden and temporary names: a camera writes ``.part_1.jpg``, then renames it


class CaptureError(Exception):
    """The source cannot deliver frames (base class)."""


class CameraUnavailableError(CaptureError):
    """The camera could not be opened or stopped delivering frames (unplugged, busy, wrong index)."""


class SourceLostError(CaptureError):
    """The source went away while running (folder removed, file deleted)."""


@dataclass(frozen=True)
class Frame:
    frame_id: str
    source: str
    data: bytes | np.ndarray
    captured_at: float
    meta: Mapping[str, Any] = field(default_factory=dict)  # e.g. read_error, synthetic label


class FrameSource:
    """Base class: ``name`` identifies the source in the log; ``frames`` yields until done or ``stop``."""

    name: str = "source"

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release devices/handles; safe to call twice."""


def read_file_frame(path: Path, frame_id: str, source: str) -> Frame:
    """Read a file into a frame; a read failure becomes ``meta['read_error']`` so it is still recorded."""
    try:
        data, meta = path.read_bytes(), {}
    except OSError as exc:
        data, meta = b"", {"read_error": f"{path}: cannot read file ({exc.strerror or exc})"}
    return Frame(frame_id, source, data, time.time(), meta)


class FileListSource(FrameSource):
    """A fixed list of image files, each read once in order; frame id = the path as given."""

    def __init__(self, paths: Iterable[str | Path], name: str = "files") -> None:
        self.paths = [Path(p) for p in paths]
        self.name = name

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        for path in self.paths:
            if stop.is_set():
                return
            yield read_file_frame(path, str(path), self.name)


class FolderWatcher(FrameSource):
    """New image files in a folder, each yielded once, also across restarts.

    ``already_processed`` holds the frame ids (paths relative to the folder) that the
    log has recorded, e.g. ``SqliteLog.processed_ids(watcher.name)``; those are skipped.
    A file is taken once its size and mtime are the same in two listings, so half-written files are not
    inspected. That is judged on this PC alone: comparing a file's mtime with this PC's clock would take a
    half-written file for an old one when the camera PC's or file server's clock is behind, or when a copy
    keeps its source's mtime. ``exit_when_idle``
    ends the iteration when a scan finds nothing new (batch mode, tests).

    A file name is taken once: a file written again under a name already inspected (a camera
    that overwrites ``latest.png``, a ring buffer of names) is not inspected again. Such a
    camera must write unique names (a counter, a time stamp) for the folder to be watched.
    A name whose file has left the folder (the camera software or a cron job clears old frames)
    is forgotten once two listings ``forget_after_s`` apart both miss it, so a watch of weeks does
    not grow with every frame it has seen; a file written under that name afterwards is a new
    frame in this run (after a restart the log still holds the name, and it is skipped). A share
    unmounted for less than that, which lists empty or nearly so, forgets nothing.

    Each poll lists the folder with ``os.scandir`` and stats only the files not yet taken, and
    the next listing starts twice the last one's time after it at the earliest: a folder of many
    thousand frames costs a fraction of a second per listing and at most a third of a core. A name
    that is not valid UTF-8 gets a frame id with the bad bytes escaped (``\\xff``), which the log
    can store. A sub-folder that cannot be read is left out of a recursive listing. Names starting
    with ``.`` or ``~`` are not frames: camera software that writes ``.part_1.jpg`` and renames it
    to ``coil_1.jpg`` publishes each frame once, and macOS's ``._`` files are skipped.
    """

    def __init__(self, folder: str | Path, already_processed: Collection[str] = (), poll_s: float = 0.2,
                 recursive: bool = False, exit_when_idle: bool = False, forget_after_s: float = 3600.0) -> None:
        self.folder = Path(folder)
        self.name = str(self.folder.resolve())
        self.poll_s, self.forget_after_s = poll_s, forget_after_s
        self.recursive, self.exit_when_idle = recursive, exit_when_idle
        self.seen: set[str] = set(already_processed)
        self._last_stat: dict[str, tuple[int, int]] = {}
        self._paths: dict[str, Path] = {}
        self._missing: set[str] = set()
        self._checked_at = time.monotonic()

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        while not stop.is_set():
            started = time.monotonic()
            ready, pending = self._scan()
            next_scan = started + max(self.poll_s, 2 * (time.monotonic() - started))
            for frame_id in ready:
                if stop.is_set():
                    return
                self.seen.add(frame_id)
                yield read_file_frame(self._paths[frame_id], frame_id, self.name)
            if not ready and not pending and self.exit_when_idle:
                return
            stop.wait(max(0.0, next_scan - time.monotonic()))

    def _scan(self) -> tuple[list[str], bool]:
        """Return (new settled files in name order, whether unsettled files are waiting)."""
        if not self.folder.is_dir():
            raise SourceLostError(f"watched folder {self.folder} is gone or not a folder (unmounted? deleted?)")
        ready, pending, stats, listed, paths = [], False, {}, set(), {}
        for frame_id, entry in self._image_entries():
            listed.add(frame_id)
            if frame_id in self.seen:
                continue
            try:
                st = entry.stat()
            except OSError:
                continue  # vanished between listing and stat
            stats[frame_id], paths[frame_id] = (st.st_size, st.st_mtime_ns), Path(entry.path)
            if self._last_stat.get(frame_id) == stats[frame_id]:
                ready.append(frame_id)
            else:
                pending = True
        self._forget_cleared(listed)
        self._last_stat, self._paths = stats, paths
        return sorted(ready), pending

    def _forget_cleared(self, listed: set[str]) -> None:
        """Forget the names that two listings ``forget_after_s`` apart both miss. One listing is not enough: a
        share unmounted for a moment lists empty, or only a stray local frame, and forgetting then would inspect
        every old frame again when it comes back."""
        if time.monotonic() - self._checked_at < self.forget_after_s:
            return
        missing = self.seen - listed
        forgotten = missing & self._missing
        self.seen -= forgotten
        self._missing, self._checked_at = missing - forgotten, time.monotonic()

    def _image_entries(self) -> Iterator[tuple[str, os.DirEntry]]:
        """(frame id, directory entry) of each image file in the folder, or under it when recursive (links to
        folders are not followed and unreadable sub-folders are left out, as ``Path.glob("**")`` did)."""
        folders = [(self.folder, "")]
        while folders:
            folder, prefix = folders.pop()
            try:
                entries = os.scandir(folder)
            except OSError:
                if not prefix:
                    raise  # the watched folder itself: the loop reports it as a source error
                continue
            with entries:
                for entry in entries:
                    name = entry.name.lower()
                    if self.recursive and entry.is_dir(follow_symlinks=False):
                        folders.append((Path(entry.path), f"{prefix}{_printable(entry.name)}/"))
                    elif name.endswith(_IMAGE_ENDINGS) and not name.startswith(_TEMPORARY) and entry.is_file():
                        yield prefix + _printable(entry.name), entry


def _printable(name: str) -> str:
    """A file name as text the log can store: bytes that are not UTF-8 (kept by Python as surrogates) escaped."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def parse_camera(spec: str) -> int | None:
    """'camera:0' -> 0; anything else -> None."""
    if spec.startswith("camera:") and spec[len("camera:"):].isdigit():
        return int(spec[len("camera:"):])
    return None


class VideoSource(FrameSource):
    """OpenCV ``VideoCapture`` on a video file or a camera index; yields BGR/gray arrays.

    A camera that cannot be opened raises ``CameraUnavailableError`` at once; a camera
    that stops delivering (``max_failed_reads`` reads in a row fail) raises it mid-run, and so
    does a frozen camera: ``max_identical_frames`` bit-identical frames in a row. A real sensor's
    noise never repeats a frame exactly, even on a stopped line, but a hung driver can hand back its
    last buffer for ever, and every copy would be inspected and read ``ok`` while the strip moves on
    unseen. The loop records the error and, with ``on_source_error="retry"``, reopens the camera.
    A video file ends normally at its last frame (and may repeat frames: a still scene).
    """

    def __init__(self, target: str | int | Path, max_failed_reads: int = 25, max_identical_frames: int = 10) -> None:
        camera = parse_camera(target) if isinstance(target, str) else None
        self.target: str | int = camera if camera is not None else (target if isinstance(target, int) else str(target))
        self.is_camera = isinstance(self.target, int)
        self.name = f"camera:{self.target}" if self.is_camera else str(Path(self.target).resolve())
        self.max_failed_reads = max_failed_reads
        self.max_identical_frames = max_identical_frames
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> cv2.VideoCapture:
        if not self.is_camera and not Path(self.target).is_file():
            raise SourceLostError(f"video file not found: {self.target}")
        cap = cv2.VideoCapture(self.target)
        if not cap.isOpened():
            cap.release()
            if self.is_camera:
                raise CameraUnavailableError(
                    f"camera {self.target} could not be opened: check that it is plugged in, powered, "
                    "not used by another program, and that the index is right"
                )
            raise CaptureError(f"{self.target}: OpenCV cannot read this video file (codec or format)")
        return cap

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        self.close()
        self._cap = cap = self.open()
        index, failures, previous, repeats = 0, 0, None, 0
        while not stop.is_set():
            ok, image = cap.read()
            if ok and image is not None:
                failures = 0
                if self.is_camera:
                    repeats = repeats + 1 if previous is not None and np.array_equal(image, previous) else 0
                    if repeats + 1 >= self.max_identical_frames:
                        raise CameraUnavailableError(
                            f"camera {self.target} is frozen: it delivered the same frame {repeats + 1} times in a "
                            "row (a real sensor's noise never repeats exactly); the driver or the camera hung, or "
                            "the frames carry no noise at all (a capped lens with the black level clipped to 0)"
                        )
                    previous = image  # a new array per read: nothing to copy
                yield Frame(f"{index:08d}", self.name, image, time.time())
                index += 1
                continue
            if not self.is_camera:
                return  # end of the video file
            failures += 1
            if failures >= self.max_failed_reads:
                raise CameraUnavailableError(
                    f"camera {self.target} stopped delivering frames after {index} frames (unplugged?)"
                )
            stop.wait(0.02)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def source_kind(spec: str) -> str:
    """Classify a SOURCE argument: 'synthetic', 'camera', 'folder', 'video' or 'image'."""
    if spec == "synthetic" or spec.startswith("synthetic:"):
        return "synthetic"
    if parse_camera(spec) is not None:
        return "camera"
    path = Path(spec)
    if path.is_dir():
        return "folder"
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return "image"
    return "video"


__all__ = [
    "CameraUnavailableError", "CaptureError", "FileListSource", "FolderWatcher", "Frame", "FrameSource",
    "SourceLostError", "VideoSource", "parse_camera", "read_file_frame", "source_kind",
]
