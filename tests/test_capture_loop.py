"""The capture loop: exact accounting, queue policies, failures, shutdown. Uses the fake inspector."""

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from edge_runtime.capture.fake_inspector import FakeInspector
from edge_runtime.capture.loop import InspectionLoop, LoopConfig
from edge_runtime.capture.sources import Frame, FrameSource, SourceLostError
from edge_runtime.capture.synthetic import SyntheticStripSource
from edge_runtime.sinks import CallbackSink, SqliteLog
from tests.conftest import textured


class ListSink:
    def __init__(self):
        self.records = []

    def write(self, records):
        self.records.extend(records)

    def close(self):
        pass


class GatedInspector(FakeInspector):
    """Blocks every inspect() until ``gate`` is set."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.gate = threading.Event()

    def inspect(self, image, source=None):
        self.gate.wait()
        return super().inspect(image, source)


class CountingSource(FrameSource):
    """Endless clean frames; counts how many were pulled; optionally fails after ``fail_after``."""

    name = "counting"

    def __init__(self, fail_after=None, fail_times=1):
        self.pulled, self.fail_after, self.fail_times, self.opens = 0, fail_after, fail_times, 0
        self.image = textured((64, 64))

    def frames(self, stop):
        self.opens += 1
        n = 0
        while not stop.is_set():
            if self.fail_after is not None and n == self.fail_after and self.opens <= self.fail_times:
                raise SourceLostError("camera link lost")
            self.pulled += 1
            n += 1
            yield Frame(f"{self.pulled:06d}", self.name, self.image, time.time())


def wait_for(predicate, timeout=20.0):
    """Poll a condition (the tests assert outcomes, never durations)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def _accounting_holds(snap, records):
    verdicts = [r.verdict for r in records if r.verdict != "source_error"]
    assert snap["captured"] == len(verdicts) == snap["inspected"] + snap["errored"] + snap["dropped"]
    assert snap["in_progress"] == 0
    assert snap["errored"] == verdicts.count("error") and snap["dropped"] == verdicts.count("dropped")
    assert snap["inspected"] == sum(verdicts.count(v) for v in ("ok", "warn", "defect"))
    assert len({(r.source, r.frame_id) for r in records if r.verdict != "source_error"}) == len(verdicts)


@pytest.mark.parametrize("workers,batch", [(1, 1), (3, 1), (2, 4)])
def test_exact_accounting_with_corrupt_frames(tmp_path, workers, batch):
    source = SyntheticStripSource(0.3, seed=2, count=300, corrupt_rate=0.1, encoding="png")
    expected_corrupt = sum(f.meta["label"] == "corrupt" for f in
                           SyntheticStripSource(0.3, seed=2, count=300, corrupt_rate=0.1, encoding="png")
                           .frames(threading.Event()))
    log, sink = SqliteLog(tmp_path / "log.db"), ListSink()
    snap = InspectionLoop(source, FakeInspector(), [sink, log],
                          LoopConfig(workers=workers, batch_size=batch, queue_size=4)).run()
    _accounting_holds(snap, sink.records)
    assert snap["captured"] == 300 and snap["dropped"] == 0 and snap["sink_errors"] == 0
    assert snap["errored"] == expected_corrupt > 0
    assert all("ImageDecodeError" in r.error for r in sink.records if r.verdict == "error")
    counts = log.counts_by_verdict()
    assert sum(counts.values()) == 300 and counts["error"] == expected_corrupt
    assert sum(snap["verdicts"].values()) == snap["inspected"]
    assert snap["latency_ms"]["p50"] is not None and snap["latency_ms"]["p99"] >= snap["latency_ms"]["p50"]
    log.close()


def test_back_pressure_blocks_the_source_and_drops_nothing():
    inspector, source, sink = GatedInspector(), CountingSource(), ListSink()
    cfg = LoopConfig(workers=2, queue_size=3, max_frames=50)
    loop = InspectionLoop(source, inspector, [sink], cfg)
    runner = threading.Thread(target=loop.run, kwargs={"handle_signals": False}, daemon=True)
    runner.start()
    held = cfg.workers + cfg.queue_size + 1  # one per worker, a full queue, one waiting in capture
    wait_for(lambda: source.pulled == held)
    time.sleep(0.2)
    assert source.pulled == held and loop.snapshot()["queue_depth"] == cfg.queue_size
    inspector.gate.set()
    runner.join(30)
    snap = loop.snapshot()
    assert snap["captured"] == 50 == snap["inspected"] and snap["dropped"] == 0
    _accounting_holds(snap, sink.records)


def test_drop_oldest_counts_and_records_every_drop(tmp_path):
    inspector, source, sink = GatedInspector(), CountingSource(), ListSink()
    log = SqliteLog(tmp_path / "log.db")
    loop = InspectionLoop(source, inspector, [sink, log],
                          LoopConfig(workers=1, queue_size=2, drop_oldest=True, max_frames=40))
    runner = threading.Thread(target=loop.run, kwargs={"handle_signals": False}, daemon=True)
    runner.start()
    wait_for(lambda: loop.snapshot()["captured"] == 40)
    inspector.gate.set()
    runner.join(30)
    snap = loop.snapshot()
    # at most one frame was inside the worker; the 2 newest were queued; everything else was dropped
    assert snap["inspected"] in (2, 3) and snap["dropped"] == 40 - snap["inspected"] >= 37
    _accounting_holds(snap, sink.records)
    dropped = [r for r in sink.records if r.verdict == "dropped"]
    assert all("drop-oldest" in r.error for r in dropped)
    inspected_ids = sorted(r.frame_id for r in sink.records if r.verdict == "ok")
    assert inspected_ids[-2:] == ["000039", "000040"]  # the newest survive
    assert log.counts_by_verdict()["dropped"] == snap["dropped"]
    log.close()


def test_failing_source_gives_a_record_and_stops():
    source, sink = CountingSource(fail_after=5), ListSink()
    snap = InspectionLoop(source, FakeInspector(), [sink], LoopConfig(workers=2)).run(handle_signals=False)
    assert snap["captured"] == 5 == snap["inspected"]
    assert snap["source_errors"] == 1 and "camera link lost" in snap["last_source_error"]
    (err,) = [r for r in sink.records if r.verdict == "source_error"]
    assert err.source == "counting" and "SourceLostError: camera link lost" in err.error
    _accounting_holds(snap, sink.records)


@pytest.mark.parametrize("fail_after,outages", [(0, 1), (3, 2)])
def test_failing_source_retry_keeps_going(fail_after, outages):
    source, sink = CountingSource(fail_after=fail_after, fail_times=2), ListSink()
    cfg = LoopConfig(workers=1, on_source_error="retry", retry_delay_s=0.01, max_frames=20)
    snap = InspectionLoop(source, FakeInspector(), [sink], cfg).run(handle_signals=False)
    assert source.opens == 3 and snap["captured"] == 20 == snap["inspected"]
    assert snap["source_errors"] == outages  # one record per outage, not one per retry
    _accounting_holds(snap, sink.records)


class BrokenInspector(FakeInspector):
    def inspect(self, image, source=None):
        if source.endswith("3"):
            raise RuntimeError("onnxruntime exploded")
        return super().inspect(image, source)


def test_unexpected_inspector_exception_is_an_error_record_and_the_loop_goes_on():
    sink = ListSink()
    snap = InspectionLoop(CountingSource(), BrokenInspector(), [sink], LoopConfig(workers=2, max_frames=30)).run(
        handle_signals=False)
    assert snap["captured"] == 30 and snap["errored"] == 3 and snap["inspected"] == 27
    assert all(r.error == "RuntimeError: onnxruntime exploded" for r in sink.records if r.verdict == "error")
    _accounting_holds(snap, sink.records)


def test_read_error_frames_become_error_records_without_inspection():
    class Unreadable(FrameSource):
        name = "files"

        def frames(self, stop):
            yield Frame("gone.png", self.name, b"", time.time(), {"read_error": "gone.png: cannot read file"})

    inspector, sink = FakeInspector(), ListSink()
    snap = InspectionLoop(Unreadable(), inspector, [sink]).run(handle_signals=False)
    assert snap["errored"] == 1 and inspector.calls == 0
    assert sink.records[0].error == "gone.png: cannot read file"


def test_overlay_failure_keeps_the_record(tmp_path):
    not_a_dir = tmp_path / "full-disk"
    not_a_dir.write_text("a file where the overlay folder should be")
    sink = ListSink()
    cfg = LoopConfig(workers=2, overlay_dir=not_a_dir)
    snap = InspectionLoop(SyntheticStripSource(0.5, seed=3, count=60), FakeInspector(), [sink], cfg).run(
        handle_signals=False)
    flagged = [r for r in sink.records if r.verdict in ("warn", "defect")]
    assert flagged and snap["inspected"] == 60 and snap["errored"] == 0
    assert snap["overlay_errors"] == len(flagged)
    assert all(r.error.startswith("overlay not saved") and r.overlay_path is None for r in flagged)
    assert all(r.score is not None for r in flagged)


def test_overlays_saved_for_flagged_frames(tmp_path):
    sink = ListSink()
    cfg = LoopConfig(workers=2, overlay_dir=tmp_path / "ov")
    InspectionLoop(SyntheticStripSource(0.5, seed=3, count=30), FakeInspector(), [sink], cfg).run(handle_signals=False)
    flagged = [r for r in sink.records if r.verdict in ("warn", "defect")]
    assert flagged and all(r.overlay_path and os.path.getsize(r.overlay_path) > 0 for r in flagged)
    assert all(r.overlay_path is None for r in sink.records if r.verdict == "ok")
    assert len(list((tmp_path / "ov").iterdir())) == len(flagged)


def test_saved_image_paths_are_absolute_whatever_the_working_folder(tmp_path, monkeypatch):
    """prune, review --export and the History page read the paths from other folders than watch ran in."""
    monkeypatch.chdir(tmp_path)
    sink = ListSink()
    InspectionLoop(SyntheticStripSource(0.5, seed=3, count=30), FakeInspector(), [sink],
                   LoopConfig(workers=2, overlay_dir=Path("ov"), frame_dir=Path("fr"))).run(handle_signals=False)
    flagged = [r for r in sink.records if r.verdict in ("warn", "defect")]
    assert flagged
    for path in [r.overlay_path for r in flagged] + [r.frame_path for r in flagged]:
        assert Path(path).is_absolute() and Path(path).is_file() and Path(path).is_relative_to(tmp_path)


def test_frames_saved_as_captured_and_a_failed_save_keeps_the_record(tmp_path):
    """16-bit frames stay 16-bit, encoded files are saved as their pixels, and a save that fails (a file where
    the folder should be) notes it in the record without losing the verdict."""
    import cv2
    import numpy as np

    from edge_runtime.capture.overlay_writer import save_frame

    deep = np.arange(64 * 80, dtype=np.uint16).reshape(64, 80) * 13
    saved = cv2.imread(str(save_frame(deep, tmp_path / "f", "cam/0001", "warn")), cv2.IMREAD_UNCHANGED)
    assert saved.dtype == np.uint16 and np.array_equal(saved, deep)
    ok, jpeg = cv2.imencode(".jpg", (deep >> 8).astype(np.uint8))
    from_file = cv2.imread(str(save_frame(jpeg.tobytes(), tmp_path / "f", "a.jpg", "defect")), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(from_file, cv2.imdecode(jpeg, cv2.IMREAD_UNCHANGED))
    with pytest.raises(OSError, match="could not be decoded"):
        save_frame(b"not an image", tmp_path / "f", "b.jpg", "warn")

    not_a_dir = tmp_path / "full-disk"
    not_a_dir.write_text("a file where the frame folder should be")
    sink = ListSink()
    snap = InspectionLoop(SyntheticStripSource(0.5, seed=3, count=30), FakeInspector(), [sink],
                          LoopConfig(workers=2, frame_dir=not_a_dir)).run(handle_signals=False)
    flagged = [r for r in sink.records if r.verdict in ("warn", "defect")]
    assert flagged and snap["frame_save_errors"] == len(flagged) and snap["errored"] == 0
    assert all(r.error.startswith("frame not saved") and r.frame_path is None for r in flagged)


def test_stop_without_drain_records_queued_frames_as_dropped():
    inspector, source, sink = GatedInspector(), CountingSource(), ListSink()
    loop = InspectionLoop(source, inspector, [sink], LoopConfig(workers=1, queue_size=5))
    runner = threading.Thread(target=loop.run, kwargs={"handle_signals": False}, daemon=True)
    runner.start()
    wait_for(lambda: source.pulled == 7)
    loop.request_stop(drain=False)
    inspector.gate.set()
    runner.join(30)
    snap = loop.snapshot()
    assert snap["captured"] == 7 and snap["dropped"] >= 5
    _accounting_holds(snap, sink.records)
    assert all(r.error == "not inspected: shutdown" for r in sink.records if r.verdict == "dropped")


def test_hung_inspector_does_not_hang_shutdown():
    inspector, source, sink = GatedInspector(), CountingSource(), ListSink()
    cfg = LoopConfig(workers=1, queue_size=2, drain_timeout_s=0.1, hung_grace_s=0.1)
    loop = InspectionLoop(source, inspector, [sink], cfg)
    runner = threading.Thread(target=loop.run, kwargs={"handle_signals": False}, daemon=True)
    runner.start()
    wait_for(lambda: source.pulled == 4)
    loop.request_stop()
    runner.join(30)
    assert not runner.is_alive()
    snap = loop.snapshot()
    _accounting_holds(snap, sink.records)
    assert [r.error for r in sink.records if r.verdict == "error"] == [
        "inspection did not finish before shutdown (inspector hung?)"]
    inspector.gate.set()  # the stuck worker finishes late; its result is not recorded twice
    time.sleep(0.1)
    assert len(sink.records) == 4


class FiniteSource(CountingSource):
    """Three frames, then the end (a folder or a video that has been read)."""

    def frames(self, stop):
        for frame, _ in zip(super().frames(stop), range(3)):
            yield frame


@pytest.mark.parametrize("limit,source", [({"max_frames": 3}, CountingSource), ({"duration_s": 0.2}, CountingSource),
                                          ({}, FiniteSource)], ids=["max-frames", "duration", "source-ends"])
def test_a_run_limit_stops_even_with_a_hung_inspector(limit, source):
    """``watch --max-frames`` / ``--duration`` and the end of a finite source start the same drain
    clock as a stop request."""
    inspector, source, sink = GatedInspector(), source(), ListSink()
    cfg = LoopConfig(workers=1, queue_size=2, drain_timeout_s=0.1, hung_grace_s=0.1, **limit)
    loop = InspectionLoop(source, inspector, [sink], cfg)
    runner = threading.Thread(target=loop.run, kwargs={"handle_signals": False}, daemon=True)
    runner.start()
    runner.join(30)
    assert not runner.is_alive()
    _accounting_holds(loop.snapshot(), sink.records)
    assert "inspection did not finish before shutdown (inspector hung?)" in [r.error for r in sink.records]
    inspector.gate.set()


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals need the main thread")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly_and_drains(signum):
    sink = ListSink()

    def on_reject(record):
        pass

    class KillAfter(FakeInspector):
        def inspect(self, image, source=None):
            if source == "000020":
                os.kill(os.getpid(), signum)
            return super().inspect(image, source)

    before = signal.getsignal(signum)
    snap = InspectionLoop(CountingSource(), KillAfter(), [CallbackSink(on_reject), sink],
                          LoopConfig(workers=2, queue_size=4)).run()
    assert signal.getsignal(signum) is before
    assert snap["captured"] >= 20 and snap["dropped"] == 0  # drained, nothing lost
    _accounting_holds(snap, sink.records)


def test_sink_failure_is_counted_and_other_sinks_still_get_records():
    class FullDisk:
        def write(self, records):
            raise OSError(28, "No space left on device")

        def close(self):
            pass

    seen, sink = [], ListSink()
    loop = InspectionLoop(CountingSource(), FakeInspector(), [FullDisk(), sink],
                          LoopConfig(max_frames=10, store_retry_s=(0.01,)), on_sink_error=lambda s, e: seen.append(str(e)))
    snap = loop.run(handle_signals=False)
    assert len(sink.records) == 10 and snap["sink_errors"] == 10 and "No space left" in seen[0]
    assert snap["records_lost"] == 10


def test_a_store_that_keeps_failing_stops_the_loop_and_counts_what_it_lost():
    """A line must not run unrecorded: the log that still fails after its retries stops the capture."""
    class BrokenLog:
        def write(self, records):
            raise OSError(28, "No space left on device")

    source, sink = CountingSource(), ListSink()
    loop = InspectionLoop(source, FakeInspector(), [sink, BrokenLog()], LoopConfig(workers=1, store_retry_s=(0.01,)),
                          on_sink_error=lambda s, e: None)
    snap = loop.run(handle_signals=False)  # an endless source: only the failing log can end this run
    assert snap["records_lost"] == len(sink.records) == snap["captured"] > 0
    _accounting_holds(snap, sink.records)


def test_a_store_that_fails_once_is_tried_again_and_loses_nothing():
    class LockedOnce(ListSink):
        def __init__(self):
            super().__init__()
            self.failures = 0

        def write(self, records):
            if not self.failures:
                self.failures += 1
                raise OSError("database is locked")
            super().write(records)

    log, seen = LockedOnce(), []
    snap = InspectionLoop(CountingSource(), FakeInspector(), [log], LoopConfig(max_frames=40, store_retry_s=(0.01,)),
                          on_sink_error=lambda s, e: seen.append(e)).run(handle_signals=False)
    assert log.failures == 1 and len(log.records) == 40 and snap["records_lost"] == snap["sink_errors"] == 0
    assert seen == []


def test_a_reject_hook_that_exits_does_not_cost_a_record(tmp_path):
    """A hook calling sys.exit() (a vendor helper giving up on the PLC) fails that reject only."""
    def exits(record):
        raise SystemExit(1)

    log = SqliteLog(tmp_path / "log.db")
    snap = InspectionLoop(SyntheticStripSource(0.3, seed=5, count=80), FakeInspector(), [CallbackSink(exits), log],
                          LoopConfig(workers=2), on_sink_error=lambda s, e: None).run(handle_signals=False)
    rows = log.rows(limit=1000)
    rejects = [r for r in rows if r["verdict"] == "defect"]
    assert len(rows) == snap["captured"] == 80 and rejects
    assert all("reject hook failed" in r["error"] for r in rejects) and snap["sink_errors"] == len(rejects)
    assert log.unfired_rejects() == len(rejects)
    log.close()


def test_a_hanging_reject_hook_holds_the_loop_back_and_cannot_hold_the_stop(tmp_path):
    """Records wait in a bounded queue (capture waits behind it); past the drain timeout the hook is no longer
    called and every waiting record is written, its reject noted as not fired."""
    release = threading.Event()

    def hangs(record):
        release.wait(5)

    source, log = CountingSource(), SqliteLog(tmp_path / "log.db")
    cfg = LoopConfig(workers=1, queue_size=2, record_queue_size=4, drain_timeout_s=0.3, hung_grace_s=30)
    loop = InspectionLoop(source, FakeInspector(), [CallbackSink(hangs, lambda r: True), log], cfg,
                          on_sink_error=lambda s, e: None)
    runner = threading.Thread(target=loop.run, kwargs={"handle_signals": False}, daemon=True)
    runner.start()
    try:
        wait_for(lambda: loop.snapshot()["records_pending"] == 4)
        time.sleep(0.3)  # the frames already on their way (capture queue, worker, the source's hand) settle
        pulled = source.pulled
        time.sleep(0.3)
        # Held back: the records do not pile up in memory. At most the record queue (4), the hung hook's batch (the
        # sink takes what the record queue held: 4), the capture queue (2), the worker's batch (its frame and what was
        # queued behind it: 3) and one frame in the source's hand are out.
        assert source.pulled == pulled <= 4 + 4 + 2 + 3 + 1
    finally:  # a failed check must not leave the loop holding the test run open
        loop.request_stop()
        runner.join(30)
    assert not runner.is_alive()
    snap, rows = loop.snapshot(), log.rows(limit=1000)
    assert len(rows) == snap["captured"] and snap["records_lost"] == 0
    assert sum("not fired" in (r["error"] or "") for r in rows) >= 4
    release.set()
    log.close()


def test_a_reject_hook_that_never_returns_loses_no_record_and_writes_none_twice(tmp_path):
    """After the grace period the stop takes the hook's batch over and writes it with the rest; the hook's
    thread, should it ever return, writes nothing more."""
    release = threading.Event()
    source, log = CountingSource(), SqliteLog(tmp_path / "log.db")
    cfg = LoopConfig(workers=1, queue_size=2, record_queue_size=4, drain_timeout_s=0.2, hung_grace_s=0.3)
    loop = InspectionLoop(source, FakeInspector(), [CallbackSink(lambda r: release.wait(), lambda r: True), log], cfg,
                          on_sink_error=lambda s, e: None)
    runner = threading.Thread(target=loop.run, kwargs={"handle_signals": False}, daemon=True)
    runner.start()
    wait_for(lambda: loop.snapshot()["records_pending"] == 4)
    loop.request_stop()
    runner.join(30)
    assert not runner.is_alive()
    release.set()
    time.sleep(0.2)
    snap, rows = loop.snapshot(), log.rows(limit=1000)
    assert len(rows) == snap["captured"] == len({r["frame_id"] for r in rows})
    assert all("not fired" in r["error"] for r in rows)
    log.close()


def test_watched_folder_disappearing_stops_the_loop_with_a_record(tmp_path):
    import shutil

    import cv2

    from edge_runtime.capture.sources import FolderWatcher

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), textured((64, 64), 100 + i, seed=i))
    sink = ListSink()
    loop = InspectionLoop(FolderWatcher(folder, poll_s=0.01), FakeInspector(), [sink], LoopConfig())
    runner = threading.Thread(target=loop.run, kwargs={"handle_signals": False}, daemon=True)
    runner.start()
    wait_for(lambda: loop.snapshot()["inspected"] == 3)
    shutil.rmtree(folder)
    runner.join(30)
    assert not runner.is_alive()
    snap = loop.snapshot()
    assert snap["source_errors"] == 1 and "is gone" in snap["last_source_error"]
    assert [r.verdict for r in sink.records].count("source_error") == 1
    _accounting_holds(snap, sink.records)


def test_abort_while_queue_full_keeps_worker_stop_markers():
    """Dropping queued frames at shutdown must not swallow the workers' stop markers (no hang)."""
    inspector, source, sink = GatedInspector(), CountingSource(), ListSink()
    cfg = LoopConfig(workers=3, queue_size=3, max_frames=5, hung_grace_s=60)
    loop = InspectionLoop(source, inspector, [sink], cfg)
    runner = threading.Thread(target=loop.run, kwargs={"handle_signals": False}, daemon=True)
    runner.start()
    # 3 frames inside workers, 2 queued + the first stop marker: the queue is full again
    wait_for(lambda: loop.snapshot()["captured"] == 5 and loop.snapshot()["queue_depth"] == 3)
    loop.request_stop(drain=False)
    wait_for(lambda: loop.snapshot()["dropped"] == 2)  # the queued frames, recorded while workers are busy
    inspector.gate.set()
    runner.join(30)
    assert not runner.is_alive()
    snap = loop.snapshot()
    _accounting_holds(snap, sink.records)
    assert snap["inspected"] == 3 and snap["dropped"] == 2


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals")
def test_a_second_signal_stops_at_once_recording_the_queue_as_dropped():
    holder = {}

    class SignalTwice(FakeInspector):
        def inspect(self, image, source=None):
            if source == "000010":
                os.kill(os.getpid(), signal.SIGINT)
                while holder["loop"]._stop_requested_at is None:
                    time.sleep(0.005)
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.3)  # the main thread runs the handler
            return super().inspect(image, source)

    sink = ListSink()
    loop = InspectionLoop(CountingSource(), SignalTwice(delay_s=0.05), [sink],
                          LoopConfig(workers=1, queue_size=8, drain_timeout_s=60.0))
    holder["loop"] = loop
    snap = loop.run()
    assert snap["dropped"] > 0
    _accounting_holds(snap, sink.records)


def test_loop_rates_are_timed_on_the_monotonic_clock_not_the_wall_clock(monkeypatch):
    """NTP stepping the wall clock back during a run must not report billions of frames per second (status file,
    runs table, the Live line's rate)."""
    from edge_runtime.capture.stats import LoopStats
    from edge_runtime.sinks import Record

    stats = LoopStats()
    stats.count_captured()
    stats.count_record(Record("camera:0", "f0", "ok", latency_ms=1.0))
    time.sleep(0.01)  # one frame in at least 10 ms: at most 100 frames/s
    monkeypatch.setattr(time, "time", lambda: 0.0)  # the wall clock stepped back decades
    snapshot = stats.snapshot()
    assert 0 < snapshot["frames_per_s"] <= 100 and snapshot["elapsed_s"] < 60
