"""Frame sources: files, folder watcher, video/camera, synthetic strips."""

import os
import shutil
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_runtime.capture.sources import (CameraUnavailableError, FileListSource, FolderWatcher, SourceLostError,
                                          VideoSource, source_kind)
from edge_runtime.capture.synthetic import DEFECT_KINDS, SyntheticStripSource


def _img(path, value=128):
    cv2.imwrite(str(path), np.full((64, 64), value, np.uint8))


def _age(path, seconds=60):
    """Make a file look settled (written a while ago)."""
    st = os.stat(path)
    os.utime(path, (st.st_atime - seconds, st.st_mtime - seconds))


def test_file_list_reads_bytes_and_keeps_unreadable_as_read_error(tmp_path):
    _img(tmp_path / "a.png")
    frames = list(FileListSource([tmp_path / "a.png", tmp_path / "missing.png"]).frames(threading.Event()))
    assert cv2.imdecode(np.frombuffer(frames[0].data, np.uint8), 0).shape == (64, 64)
    assert frames[0].frame_id == str(tmp_path / "a.png") and not frames[0].meta
    assert frames[1].data == b"" and "cannot read file" in frames[1].meta["read_error"]


def test_folder_watcher_yields_each_file_once_and_skips_processed(tmp_path):
    for name in ("b.png", "a.png", "c.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
        _age(tmp_path / name)
    watcher = FolderWatcher(tmp_path, already_processed={"c.jpg"}, poll_s=0.01, exit_when_idle=True)
    assert [f.frame_id for f in watcher.frames(threading.Event())] == ["a.png", "b.png"]
    (tmp_path / "d.png").write_bytes(b"y")
    _age(tmp_path / "d.png")
    assert [f.frame_id for f in watcher.frames(threading.Event())] == ["d.png"]  # nothing repeated


def test_folder_watcher_waits_until_a_new_file_is_settled(tmp_path):
    _img(tmp_path / "new.png")  # taken on the second scan with the same size/mtime
    watcher = FolderWatcher(tmp_path, poll_s=0.01, exit_when_idle=True)
    ready, pending = watcher._scan()
    assert ready == [] and pending
    ready, pending = watcher._scan()
    assert ready == ["new.png"] and not pending


def test_a_half_written_file_with_an_old_mtime_is_not_taken_for_a_settled_one(tmp_path):
    """A camera PC or file server whose clock is behind this PC's, or a copy that keeps its source's mtime: the
    file being written looks minutes old. Only its size and mtime staying the same between listings count."""
    frame = tmp_path / "coil_1.png"
    frame.write_bytes(b"\x89PNG\r\n\x1a\n half")
    written_at = time.time() - 120  # a clock two minutes behind this PC's
    os.utime(frame, (written_at, written_at))
    watcher = FolderWatcher(tmp_path, poll_s=0.01)
    assert watcher._scan() == ([], True)
    with frame.open("ab") as more:
        more.write(b" and the rest")
    os.utime(frame, (written_at, written_at))  # the same mtime, a new size
    assert watcher._scan() == ([], True)
    assert watcher._scan() == (["coil_1.png"], False)


def test_folder_watcher_recursive_ids_are_relative_paths(tmp_path):
    (tmp_path / "line1").mkdir()
    _img(tmp_path / "line1" / "x.png")
    _age(tmp_path / "line1" / "x.png")
    watcher = FolderWatcher(tmp_path, recursive=True, exit_when_idle=True)
    assert [f.frame_id for f in watcher.frames(threading.Event())] == ["line1/x.png"]


def test_folder_removed_is_a_typed_error(tmp_path):
    folder = tmp_path / "watched"
    folder.mkdir()
    watcher = FolderWatcher(folder, poll_s=0.01)
    shutil.rmtree(folder)
    with pytest.raises(SourceLostError, match="gone"):
        next(watcher.frames(threading.Event()))


def test_missing_camera_is_a_clear_typed_error():
    source = VideoSource("camera:57")
    assert source.is_camera and source.name == "camera:57"
    with pytest.raises(CameraUnavailableError, match="camera 57 could not be opened.*plugged in"):
        next(source.frames(threading.Event()))


def test_missing_video_file_is_a_typed_error(tmp_path):
    with pytest.raises(SourceLostError, match="video file not found"):
        next(VideoSource(tmp_path / "gone.avi").frames(threading.Event()))


def test_video_file_frames_then_normal_end(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write MJPG/AVI")
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    frames = list(VideoSource(path).frames(threading.Event()))
    assert [f.frame_id for f in frames] == [f"{i:08d}" for i in range(5)]
    assert frames[0].data.shape[:2] == (48, 64)


def test_source_kind(tmp_path):
    assert source_kind("synthetic") == source_kind("synthetic:0.3") == "synthetic"
    assert source_kind("camera:0") == "camera"
    assert source_kind(str(tmp_path)) == "folder"
    assert source_kind("x.png") == "image" and source_kind("x.mp4") == "video"


def test_synthetic_is_seeded_and_injects_defects():
    take = lambda: list(SyntheticStripSource(0.5, seed=7, count=40).frames(threading.Event()))
    first, second = take(), take()
    assert all(np.array_equal(a.data, b.data) for a, b in zip(first, second))
    assert first[0].data.shape == (200, 200) and first[0].data.dtype == np.uint8
    labels = [f.meta["label"] for f in first]
    assert None in labels and set(labels) - {None} <= set(DEFECT_KINDS) and len(set(labels)) >= 3
    clean = [f.data for f in first if f.meta["label"] is None]
    defect = [f.data for f in first if f.meta["label"] is not None]
    local = lambda a: np.percentile(np.abs(a.astype(np.float32) - cv2.blur(a, (31, 31))), 99.9)
    assert np.median([local(a) for a in defect]) > np.median([local(a) for a in clean])


def test_synthetic_corrupt_frames_do_not_decode():
    frames = list(SyntheticStripSource(0.1, seed=1, count=300, corrupt_rate=0.2, encoding="png")
                  .frames(threading.Event()))
    corrupt = [f for f in frames if f.meta["label"] == "corrupt"]
    good = [f for f in frames if f.meta["label"] != "corrupt"]
    assert 30 < len(corrupt) < 90
    assert all(not f.data or cv2.imdecode(np.frombuffer(f.data, np.uint8), 0) is None for f in corrupt)
    assert cv2.imdecode(np.frombuffer(good[0].data, np.uint8), 0).shape == (200, 200)


def test_synthetic_stops_on_request():
    stop = threading.Event()
    frames = SyntheticStripSource(seed=0).frames(stop)  # endless
    next(frames)
    stop.set()
    assert list(frames) == []


class _FakeCamera:
    """A cv2.VideoCapture stand-in: ``frame(i)`` is the i-th read's image."""

    def __init__(self, frame) -> None:
        self._frame, self._reads = frame, 0

    def isOpened(self) -> bool:
        return True

    def read(self):
        self._reads += 1
        return True, self._frame(self._reads)

    def release(self) -> None:
        pass


def test_a_frozen_camera_is_a_typed_error_not_a_stream_of_ok_frames(monkeypatch):
    """A hung driver handing back its last buffer: every copy would read ok while the strip moves on."""
    import edge_runtime.capture.sources as sources

    stuck = np.full((48, 64), 90, np.uint8)
    monkeypatch.setattr(sources.cv2, "VideoCapture", lambda target: _FakeCamera(lambda i: stuck.copy()))
    frames = VideoSource("camera:3", max_identical_frames=10).frames(threading.Event())
    assert len([next(frames) for _ in range(9)]) == 9  # a few repeats are inspected as they come
    with pytest.raises(CameraUnavailableError, match="camera 3 is frozen: it delivered the same frame 10 times"):
        next(frames)


def test_a_live_camera_on_a_stopped_line_is_not_frozen(monkeypatch):
    """The same scene with a real sensor's noise: no two frames are bit-identical. A video file may repeat
    frames (a still scene) and is never called frozen."""
    import edge_runtime.capture.sources as sources

    scene = np.full((48, 64), 90, np.uint8)
    rng = np.random.default_rng(0)
    monkeypatch.setattr(sources.cv2, "VideoCapture", lambda target: _FakeCamera(
        lambda i: np.clip(scene + rng.integers(-1, 2, scene.shape), 0, 255).astype(np.uint8)))
    frames = VideoSource("camera:3", max_identical_frames=3).frames(threading.Event())
    assert len([next(frames) for _ in range(50)]) == 50
    monkeypatch.setattr(sources.cv2, "VideoCapture", lambda target: _FakeCamera(lambda i: scene))
    monkeypatch.setattr(sources.Path, "is_file", lambda self: True)
    still = VideoSource("still.avi", max_identical_frames=3).frames(threading.Event())
    assert len([next(still) for _ in range(20)]) == 20


def test_folder_watcher_forgets_the_names_of_files_that_left_the_folder(tmp_path):
    """A watch of weeks must not grow with every frame it has seen: a name missing from two listings
    ``forget_after_s`` apart is dropped, and a file written again under it is a new frame."""
    for name in ("a.png", "b.png"):
        _img(tmp_path / name)
        _age(tmp_path / name)
    watcher = FolderWatcher(tmp_path, already_processed={"a.png", "cleared-last-week.png"}, exit_when_idle=True,
                            forget_after_s=0.0)
    assert [f.frame_id for f in watcher.frames(threading.Event())] == ["b.png"]
    (tmp_path / "a.png").unlink()
    watcher._scan()
    assert watcher.seen == {"a.png", "b.png"}  # missed by one listing since it left: kept
    watcher._scan()
    assert watcher.seen == {"b.png"}
    _img(tmp_path / "a.png")
    _age(tmp_path / "a.png")
    assert [f.frame_id for f in watcher.frames(threading.Event())] == ["a.png"]


def test_folder_watcher_forgets_nothing_while_a_share_is_away_for_less_than_forget_after_s(tmp_path):
    """An unmounted share leaves an empty folder, or one with a stray local frame: forgetting there would inspect
    every old frame again on its return, and fire the reject hook for frames long shipped."""
    for name in ("a.png", "b.png"):
        _img(tmp_path / name)
        _age(tmp_path / name)
    watcher = FolderWatcher(tmp_path, already_processed={"a.png", "b.png"}, exit_when_idle=True)
    hidden = tmp_path.parent / f"{tmp_path.name}-unmounted"
    hidden.mkdir()
    for name in ("a.png", "b.png"):
        (tmp_path / name).rename(hidden / name)
    _img(tmp_path / "stray.png")
    _age(tmp_path / "stray.png")
    assert [f.frame_id for f in watcher.frames(threading.Event())] == ["stray.png"]
    for _ in range(3):
        watcher._scan()
    for name in ("a.png", "b.png"):
        (hidden / name).rename(tmp_path / name)
    assert list(watcher.frames(threading.Event())) == []


def test_folder_watcher_gives_a_name_that_is_not_utf8_an_id_the_log_can_store(tmp_path):
    from edge_runtime.sinks import Record, SqliteLog

    raw = os.fsencode(str(tmp_path)) + b"/bad\xff.png"
    with open(raw, "wb") as handle:
        handle.write(cv2.imencode(".png", np.full((64, 64), 128, np.uint8))[1].tobytes())
    os.utime(raw, (time.time() - 60, time.time() - 60))
    [frame] = FolderWatcher(tmp_path, exit_when_idle=True).frames(threading.Event())
    assert frame.frame_id == "bad\\xff.png" and frame.data and not frame.meta
    with SqliteLog(tmp_path / "log.db") as log:
        log.write([Record(str(tmp_path), frame.frame_id, "ok")])
        assert FolderWatcher(tmp_path, log.processed_ids(str(tmp_path)), exit_when_idle=True).seen == {frame.frame_id}


def test_folder_watcher_takes_image_files_only_and_does_not_follow_linked_folders(tmp_path):
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    elsewhere.mkdir()
    _img(elsewhere / "linked.png")
    (tmp_path / "line1" / "deep").mkdir(parents=True)
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "link").symlink_to(elsewhere, target_is_directory=True)
    for path in (tmp_path / "line1" / "deep" / "x.PNG", tmp_path / "top.bmp", elsewhere / "linked.png"):
        _img(path)
        _age(path)
    (tmp_path / "notes.txt").write_text("x")
    for temporary in (".part_1.jpg", "~coil.png", "._top.bmp", ".jpg"):  # written, then renamed to their real name
        _img(tmp_path / temporary)
        _age(tmp_path / temporary)
    flat = FolderWatcher(tmp_path, exit_when_idle=True)
    assert [f.frame_id for f in flat.frames(threading.Event())] == ["top.bmp"]
    deep = FolderWatcher(tmp_path, recursive=True, exit_when_idle=True)
    assert [f.frame_id for f in deep.frames(threading.Event())] == ["line1/deep/x.PNG", "top.bmp"]


def test_a_camera_with_sporadic_failed_reads_is_not_declared_lost(monkeypatch):
    """25 failed reads in a row mean the camera is gone; 25 spread over hours of good frames do not."""
    import edge_runtime.capture.sources as sources
    from edge_runtime.capture.sources import VideoSource

    rng = np.random.default_rng(0)

    class Flaky:
        reads = 0

        def isOpened(self):
            return True

        def read(self):
            self.reads += 1
            if self.reads % 4 == 0:
                return False, None  # a dropped USB packet now and then
            return True, rng.integers(0, 255, (32, 32), dtype=np.uint8)

        def release(self):
            pass

    monkeypatch.setattr(sources.cv2, "VideoCapture", lambda target: Flaky())
    frames = VideoSource("camera:0", max_failed_reads=5).frames(threading.Event())
    assert len([next(frames) for _ in range(60)]) == 60


def test_a_recursive_watch_leaves_out_a_sub_folder_it_cannot_read(tmp_path, monkeypatch):
    import edge_runtime.capture.sources as sources

    for path in (tmp_path / "a.png", tmp_path / "ok" / "b.png", tmp_path / "locked" / "c.png"):
        path.parent.mkdir(exist_ok=True)
        _img(path)
        _age(path)
    real = os.scandir

    def refuses_locked(path):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(sources.os, "scandir", refuses_locked)
    watcher = FolderWatcher(tmp_path, recursive=True, exit_when_idle=True)
    assert [f.frame_id for f in watcher.frames(threading.Event())] == ["a.png", "ok/b.png"]
