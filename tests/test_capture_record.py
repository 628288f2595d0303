"""`record`: frames from a camera, video or the synthetic strip saved as PNG for commissioning."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from edge_runtime.capture.record import EXIT_SHORT, EXIT_SOURCE_FAILED, EXIT_USAGE, save_frames
from edge_runtime.capture.sources import Frame, FrameSource
from edge_runtime.capture.synthetic import SyntheticStripSource
from edge_runtime.cli import main as cli_main


def _video(path, frames: int = 6):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    return path


def test_record_saves_every_nth_synthetic_frame_losslessly(tmp_path, capsys):
    out = tmp_path / "good"
    assert cli_main(["record", "synthetic:0", "--out", str(out), "--frames", "4", "--every", "2"]) == 0
    saved = sorted(out.glob("*.png"))
    assert [p.name.split("_", 1)[1] for p in saved] == [f"frame_{i:08d}.png" for i in (0, 2, 4, 6)]
    first = next(SyntheticStripSource(0.0, seed=0).frames(threading.Event())).data
    np.testing.assert_array_equal(cv2.imread(str(saved[0]), cv2.IMREAD_UNCHANGED), first)  # PNG: no loss
    assert "saved 4 frames" in capsys.readouterr().out


def test_a_second_recording_into_the_same_folder_keeps_the_first(tmp_path):
    """Commissioning records one folder over several coils and shifts; frame ids restart at 0 on every run."""
    out = tmp_path / "good"
    for seed in ("1", "2"):
        assert cli_main(["record", "synthetic:0", "--out", str(out), "--frames", "3", "--seed", seed]) == 0
    saved = sorted(out.glob("*.png"))
    assert len(saved) == 6 and len({p.name.split("_frame_")[0] for p in saved}) == 2


def test_record_from_a_video_that_ends_early_says_so(tmp_path, capsys):
    video = _video(tmp_path / "strip.avi", frames=6)
    code = cli_main(["record", str(video), "--out", str(tmp_path / "good"), "--frames", "10"])
    assert code == EXIT_SHORT and "ended after 6 of 10" in capsys.readouterr().err
    assert len(list((tmp_path / "good").glob("*.png"))) == 6


def test_record_refuses_image_folders_and_bad_counts_and_reports_a_missing_camera(tmp_path, capsys):
    (tmp_path / "frames").mkdir()
    assert cli_main(["record", str(tmp_path / "frames"), "--out", str(tmp_path / "o"), "--frames", "3"]) == EXIT_USAGE
    assert "give it to calibrate" in capsys.readouterr().err
    assert cli_main(["record", "synthetic:0", "--out", str(tmp_path / "o"), "--frames", "0"]) == EXIT_USAGE
    assert cli_main(["record", "camera:97", "--out", str(tmp_path / "o"), "--frames", "3"]) == EXIT_SOURCE_FAILED
    assert "camera 97 could not be opened" in capsys.readouterr().err


class _Bytes(FrameSource):
    name = "bytes"

    def __init__(self, payloads):
        self.payloads, self.closed = payloads, False

    def frames(self, stop):
        for i, data in enumerate(self.payloads):
            yield Frame(f"{i:08d}", self.name, data, 0.0)

    def close(self):
        self.closed = True


def test_undecodable_frames_are_named_not_saved_and_16_bit_depth_is_kept(tmp_path):
    deep = np.arange(48 * 64, dtype=np.uint16).reshape(48, 64) * 16
    good = cv2.imencode(".png", deep)[1].tobytes()
    source = _Bytes([good, b"\x89PNG broken", good])
    recording = save_frames(source, tmp_path, count=5)
    assert recording.unreadable == ("00000001",) and len(recording.saved) == 2 and recording.source_ended
    assert source.closed
    back = cv2.imread(str(recording.saved[0]), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and np.array_equal(back, deep)
