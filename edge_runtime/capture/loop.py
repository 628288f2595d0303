"""Capture -> bounded queue -> N inspection workers -> sinks.

Every captured frame ends in exactly one record: a verdict, an ``error`` record, or a
``dropped`` record (drop-oldest policy, or shutdown before it could be inspected).
Threads: one capture thread, ``workers`` inspection threads (onnxruntime releases the
GIL), one sink thread that writes batches in one transaction. The caller's thread
waits, watches the duration limit and handles SIGINT/SIGTERM: the first signal stops
capture and drains the queue, a second one (or ``drain_timeout_s``) records what is
left as dropped instead of inspecting it. A run limit (``max_frames``, ``duration_s``) and the
end of a finite source stop the same way as the first signal.
"""

from __future__ import annotations

import itertools
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from ..sinks.record import DROPPED, ERROR, FLAGGED, REJECT_HOOK_FAILED, SOURCE_ERROR, Record, record_from_result
from .overlay_writer import save_frame, save_overlay
from .sources import Frame, FrameSource
from .stats import LoopStats

SinkErrorHandler = Callable[[Any, BaseException], None]


@dataclass
class LoopConfig:
    workers: int = 2
    queue_size: int = 16
    drop_oldest: bool = False          # False: block the source (back-pressure)
    batch_size: int = 1                # >1: workers call inspect_batch on what is queued
    max_frames: int | None = None
    duration_s: float | None = None
    on_source_error: str = "stop"      # "stop" or "retry" (reopen after retry_delay_s)
    retry_delay_s: float = 2.0
    drain_timeout_s: float = 30.0      # after a stop request; then the rest is recorded as dropped
    hung_grace_s: float = 10.0         # after that, frames still inside inspect() are recorded as errors
    overlay_dir: Path | None = None
    overlay_verdicts: tuple[str, ...] = FLAGGED
    frame_dir: Path | None = None      # the frames as captured, PNG, for review and retraining
    frame_verdicts: tuple[str, ...] = FLAGGED
    passed_every: int | None = None    # also every N-th passed frame, a systematic sample to spot-check


def _report_sink_error(sink: Any, exc: BaseException) -> None:
    print(f"\n[watch] {type(sink).__name__} failed to write records: {exc}", file=sys.stderr, flush=True)


class InspectionLoop:
    def __init__(self, source: FrameSource, inspector: Any, sinks: Sequence[Any] = (),
                 config: LoopConfig | None = None, on_sink_error: SinkErrorHandler = _report_sink_error) -> None:
        self.source, self.inspector, self.sinks = source, inspector, list(sinks)
        self.config = config or LoopConfig()
        self.on_sink_error = on_sink_error
        self.stats = LoopStats()
        self._passed = itertools.count(1)  # passed frames seen, for ``passed_every`` (next() is atomic in CPython)
        self._frames: queue.Queue[Frame | None] = queue.Queue(maxsize=max(1, self.config.queue_size))
        self._out: queue.Queue[Record | None] = queue.Queue()
        self._stop = threading.Event()      # stop capturing
        self._abort = threading.Event()     # stop inspecting; record the rest as dropped
        self._stop_requested_at: float | None = None
        self._inflight: dict[int, Frame] = {}
        self._inflight_lock = threading.Lock()
        self._source_failing = False
        self._model_sha = dict(getattr(inspector, "model_sha256", {}) or {})
        self._profile = getattr(inspector, "profile", None)

    # -- control -------------------------------------------------------------------
    def request_stop(self, drain: bool = True) -> None:
        if self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()
        self._stop.set()
        if not drain:
            self._abort.set()

    def snapshot(self) -> dict[str, Any]:
        snap = self.stats.snapshot()
        snap["queue_depth"] = self._frames.qsize()
        return snap

    def run(self, handle_signals: bool = True) -> dict[str, Any]:
        """Run until the source ends, a limit is hit or a stop is requested; return the final snapshot."""
        restore = self._install_signals() if handle_signals else {}
        threads = self._start_threads()
        try:
            self._wait_capture(threads["capture"])
            self.request_stop()  # the source is done: what is queued drains, on the same clock as a stop
            self._finish_workers(threads["workers"])
            self._out.put(None)
            threads["sink"].join()
        finally:
            for signum, handler in restore.items():
                signal.signal(signum, handler)
        return self.snapshot()

    def _start_threads(self) -> dict[str, Any]:
        threads = {
            "sink": threading.Thread(target=self._sink_main, name="sinks", daemon=True),
            "workers": [threading.Thread(target=self._worker_main, name=f"inspect-{i}", daemon=True)
                        for i in range(max(1, self.config.workers))],
            "capture": threading.Thread(target=self._capture_main, name="capture", daemon=True),
        }
        for thread in [threads["sink"], *threads["workers"], threads["capture"]]:
            thread.start()
        return threads

    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum: int, _frame: Any) -> None:
            drain = self._stop_requested_at is None  # first signal drains, the second stops now
            self.request_stop(drain=drain)
            what = f"finishing {self._frames.qsize()} queued frame(s); signal again to stop now" if drain \
                else "recording queued frames as dropped"
            print(f"\n[watch] {signal.Signals(signum).name}: stopping, {what}", file=sys.stderr, flush=True)

        return {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}

    def _wait_capture(self, capture: threading.Thread) -> None:
        deadline = None if self.config.duration_s is None else time.monotonic() + self.config.duration_s
        while capture.is_alive():
            capture.join(0.1)
            if deadline is not None and time.monotonic() >= deadline:
                self.request_stop()  # starts the drain clock: a hung worker cannot hold the stop
            self._check_drain_timeout()
            if self._hung():  # source blocked in a read that never returns: do not hang with it
                print("\n[watch] the source does not return; giving up on it", file=sys.stderr, flush=True)
                return

    def _finish_workers(self, workers: list[threading.Thread]) -> None:
        for _ in workers:
            while True:
                try:
                    self._frames.put(None, timeout=0.1)
                    break
                except queue.Full:
                    self._check_drain_timeout()
                    if self._abort.is_set():
                        self._drop_queued()
        while any(w.is_alive() for w in workers):
            for worker in workers:
                worker.join(0.1)
            self._check_drain_timeout()
            if self._hung():
                self._give_up_on_hung_workers()
                return

    def _check_drain_timeout(self) -> None:
        started = self._stop_requested_at
        if started is not None and time.monotonic() - started > self.config.drain_timeout_s:
            self._abort.set()

    def _hung(self) -> bool:
        started = self._stop_requested_at
        limit = self.config.drain_timeout_s + self.config.hung_grace_s
        return started is not None and time.monotonic() - started > limit

    def _drop_queued(self) -> None:
        """Record every queued frame as dropped; worker stop markers taken out are put back."""
        markers = 0
        while True:
            try:
                frame = self._frames.get_nowait()
            except queue.Empty:
                break
            if frame is None:
                markers += 1
            else:
                self._emit(self._dropped(frame, "not inspected: shutdown"))
        for _ in range(markers):
            self._frames.put_nowait(None)

    def _give_up_on_hung_workers(self) -> None:
        """Workers stuck inside inspect(): record their frames as errors (their late results are discarded)."""
        self._drop_queued()
        with self._inflight_lock:
            stuck = list(self._inflight.values())
            self._inflight.clear()
        for frame in stuck:
            self._emit(self._error(frame, "inspection did not finish before shutdown (inspector hung?)"))

    # -- capture -------------------------------------------------------------------
    def _capture_main(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._pump_source()
                    return
                except Exception as exc:  # CaptureError or a bug in a source: never a silent hang
                    self._source_failed(exc)
                    if self.config.on_source_error != "retry":
                        return
                    self._stop.wait(self.config.retry_delay_s)
        finally:
            self.source.close()

    def _pump_source(self) -> None:
        limit = self.config.max_frames
        for frame in self.source.frames(self._stop):
            self._source_failing = False
            captured = self.stats.count_captured()
            self._enqueue(frame)
            if limit is not None and captured >= limit:
                self.request_stop()
            if self._stop.is_set():
                return

    def _source_failed(self, exc: BaseException) -> None:
        if self._source_failing:
            return  # one record per outage, not one per retry
        self._source_failing = True
        text = f"{type(exc).__name__}: {exc}"
        self._emit(Record(self.source.name, "-", SOURCE_ERROR, error=text, profile=self._profile))

    def _enqueue(self, frame: Frame) -> None:
        if self.config.drop_oldest:
            while True:
                try:
                    self._frames.put_nowait(frame)
                    return
                except queue.Full:
                    try:
                        oldest = self._frames.get_nowait()
                    except queue.Empty:
                        continue
                    self._emit(self._dropped(oldest, "dropped: queue full (drop-oldest policy)"))
        while True:
            try:
                self._frames.put(frame, timeout=0.1)
                return
            except queue.Full:
                if self._abort.is_set():
                    self._emit(self._dropped(frame, "not inspected: shutdown"))
                    return

    # -- inspection ----------------------------------------------------------------
    def _worker_main(self) -> None:
        while True:
            frame = self._frames.get()
            if frame is None:
                return
            batch, last = [frame], False
            while len(batch) < self.config.batch_size:
                try:
                    extra = self._frames.get_nowait()
                except queue.Empty:
                    break
                if extra is None:
                    last = True
                    break
                batch.append(extra)
            self._process(batch)
            if last:
                return

    def _process(self, frames: list[Frame]) -> None:
        with self._inflight_lock:
            self._inflight.update((id(f), f) for f in frames)
        if self._abort.is_set():
            for frame in frames:
                self._finish(frame, self._dropped(frame, "not inspected: shutdown"))
            return
        todo = []
        for frame in frames:
            if frame.meta.get("read_error"):
                self._finish(frame, self._error(frame, str(frame.meta["read_error"])))
            else:
                todo.append(frame)
        for frame, outcome in zip(todo, self._inspect(todo)):
            self._finish(frame, self._outcome_record(frame, outcome))

    def _inspect(self, frames: list[Frame]) -> list[Any]:
        """Results or exceptions, one per frame, in order."""
        if not frames:
            return []
        try:
            if len(frames) == 1:
                return [self.inspector.inspect(frames[0].data, source=frames[0].frame_id)]
            return list(self.inspector.inspect_batch([f.data for f in frames], sources=[f.frame_id for f in frames]))
        except Exception as exc:
            return [exc] * len(frames)

    def _outcome_record(self, frame: Frame, outcome: Any) -> Record:
        if isinstance(outcome, BaseException):
            return self._error(frame, f"{type(outcome).__name__}: {outcome}")
        try:
            record = record_from_result(frame.source, frame.frame_id, frame.captured_at, outcome, self._model_sha)
        except Exception as exc:  # malformed result: still one record
            return self._error(frame, f"unreadable inspection result: {type(exc).__name__}: {exc}")
        if self.config.overlay_dir is not None and record.verdict in self.config.overlay_verdicts:
            try:
                record = replace(record, overlay_path=str(save_overlay(outcome, self.config.overlay_dir, frame.frame_id)))
            except Exception as exc:  # full disk etc.: keep the verdict, note the failure
                self.stats.add("overlay_errors")
                record = replace(record, error=f"overlay not saved: {type(exc).__name__}: {exc}")
        if self._keeps_frame(record.verdict):
            try:
                record = replace(record, frame_path=str(save_frame(frame.data, self.config.frame_dir, frame.frame_id,
                                                                   record.verdict)))
            except Exception as exc:
                self.stats.add("frame_save_errors")
                note = f"frame not saved: {type(exc).__name__}: {exc}"
                record = replace(record, error=f"{record.error}; {note}" if record.error else note)
        return record

    def _keeps_frame(self, verdict: str) -> bool:
        """Whether the captured frame of a record with ``verdict`` is saved: every flagged one, and every
        ``passed_every``-th passed one (counted over the run)."""
        if self.config.frame_dir is None:
            return False
        if verdict in self.config.frame_verdicts:
            return True
        return verdict == "ok" and bool(self.config.passed_every) and next(self._passed) % self.config.passed_every == 0

    # -- records -------------------------------------------------------------------
    def _error(self, frame: Frame, text: str) -> Record:
        return Record(frame.source, frame.frame_id, ERROR, captured_at=frame.captured_at, error=text,
                      profile=self._profile, model_sha256=self._model_sha)

    def _dropped(self, frame: Frame, text: str) -> Record:
        return Record(frame.source, frame.frame_id, DROPPED, captured_at=frame.captured_at, error=text,
                      profile=self._profile)

    def _finish(self, frame: Frame, record: Record) -> None:
        """Emit the record of an in-flight frame once (a frame given up on as hung is not recorded again)."""
        with self._inflight_lock:
            if self._inflight.pop(id(frame), None) is None:
                return
        self._emit(record)

    def _emit(self, record: Record) -> None:
        record = replace(record, recorded_at=time.time())
        self.stats.count_record(record)
        self._out.put(record)

    def _sink_main(self) -> None:
        done = False
        while not done:
            batch = [self._out.get()]
            while len(batch) < 512:
                try:
                    batch.append(self._out.get_nowait())
                except queue.Empty:
                    break
            done = batch[-1] is None
            records = [r for r in batch if r is not None]
            for sink in self.sinks:
                try:
                    if records:
                        sink.write(records)
                except Exception as exc:
                    failures = getattr(exc, "failures", None)  # a reject hook names the records it failed for
                    self.stats.add("sink_errors", len(records) if failures is None else len(failures))
                    if failures:
                        records = _noted_unfired(records, failures)
                    self.on_sink_error(sink, exc)


def _noted_unfired(records: list[Record], failures: Sequence[tuple[Record, Exception]]) -> list[Record]:
    """The batch for the sinks after a reject hook, each record the hook failed for carrying the failure in
    its ``error`` field: the log then keeps which frames were flagged but maybe not taken off the line."""
    notes = {id(record): f"{REJECT_HOOK_FAILED}: {error}" for record, error in failures}
    return [replace(r, error=f"{r.error}; {notes[id(r)]}" if r.error else notes[id(r)]) if id(r) in notes else r
            for r in records]
