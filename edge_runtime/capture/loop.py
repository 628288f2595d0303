"""Capture -> bounded queue -> N inspection workers -> sinks.

Every captured frame ends in exactly one record: a verdict, an ``error`` record, or a
``dropped`` record (drop-oldest policy, or shutdown before it could be inspected).
Threads: one capture thread, ``workers`` inspection threads (onnxruntime releases the
GIL), one sink thread that writes batches in one transaction. The caller's thread
waits, watches the duration limit and handles SIGINT/SIGTERM: the first signal stops
capture and drains the queue, a second one (or ``drain_timeout_s``) records what is
left as dropped instead of inspecting it. A run limit (``max_frames``, ``duration_s``) and the
end of a finite source stop the same way as the first signal.

The records wait for the sink thread in a bounded queue, so a slow sink (a reject command that
hangs) holds back inspection and capture instead of piling records up in memory, where a kill
would lose them. After a forced stop the reject hooks are no longer called: the records still
waiting are written at once, each reject noted as not fired. A store (the log) that still fails
after its retries stops the loop like a first signal, and the records it lost are counted
(``records_lost``), never passed over in silence.
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

from ..sinks.callback import CallbackSink
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
    record_queue_size: int = 2048      # records waiting for the sinks; when full, inspection waits
    store_retry_s: tuple[float, ...] = (0.5, 2.0)  # waits before each new try of a failed store (the log)


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
        self._out: queue.Queue[Record | None] = queue.Queue(maxsize=max(1, self.config.record_queue_size))
        self._stop = threading.Event()      # stop capturing
        self._abort = threading.Event()     # stop inspecting; record the rest as dropped
        self._stop_requested_at: float | None = None
        self._inflight: dict[int, Frame] = {}
        self._inflight_lock = threading.Lock()
        self._source_failing = False
        self._hook_lock = threading.Lock()
        self._in_hook: list[Record] | None = None  # the batch a reject hook is firing on
        self._set_aside: list[Record] = []  # records emitted once the sink thread is taken for stuck
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
        snap["records_pending"] = self._out.qsize()
        return snap

    def run(self, handle_signals: bool = True) -> dict[str, Any]:
        """Run until the source ends, a limit is hit or a stop is requested; return the final snapshot."""
        restore = self._install_signals() if handle_signals else {}
        threads = self._start_threads()
        try:
            self._wait_capture(threads["capture"])
            self.request_stop()  # the source is done: what is queued drains, on the same clock as a stop
            self._finish_workers(threads["workers"])
            self._finish_sinks(threads["sink"])
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

    def _finish_sinks(self, sink_thread: threading.Thread) -> None:
        """Wait for the sink thread to write what is queued. Past the drain timeout the reject hooks are
        skipped; a sink still stuck after the grace period (a reject hook that never returns) is left, and
        the queued records are written here, without it."""
        if self._put_record(None):
            while sink_thread.is_alive():
                sink_thread.join(0.1)
                self._check_drain_timeout()
                if self._hung():
                    break
            else:
                return
        print("\n[watch] a sink does not return (a reject hook that hangs?); writing the waiting records "
              "without it", file=sys.stderr, flush=True)
        with self._hook_lock:
            waiting, self._in_hook = self._in_hook or [], None
            waiting, self._set_aside = waiting + self._set_aside, []
        while True:
            try:
                record = self._out.get_nowait()
            except queue.Empty:
                break
            if record is not None:
                waiting.append(record)
        for sink in self.sinks:
            if waiting:
                waiting = self._fire(sink, waiting) if isinstance(sink, CallbackSink) else self._store(sink, waiting)

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
        self._put_record(record)

    def _put_record(self, record: Record | None) -> bool:
        """Queue a record for the sinks, waiting while the queue is full (a slow sink holds the loop back).
        Past the grace period of a stop the sink thread is taken for stuck: the record is set aside for
        ``_finish_sinks`` instead, and False returned."""
        while True:
            try:
                self._out.put(record, timeout=0.1)
                return True
            except queue.Full:
                self._check_drain_timeout()
                if self._hung():
                    if record is not None:
                        with self._hook_lock:
                            self._set_aside.append(record)
                    return False

    # -- sinks ---------------------------------------------------------------------
    def _sink_main(self) -> None:
        """Deliver batches of records to every sink until the end marker; never dies on a sink's failure."""
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
            if records:
                self._deliver(records)

    def _deliver(self, records: list[Record]) -> None:
        """One batch through every sink in order. While a reject hook runs, the batch is ``_in_hook``: a stop
        that gives up on a hook that never returns takes the batch from there and writes it itself."""
        for sink in self.sinks:
            if isinstance(sink, CallbackSink):
                with self._hook_lock:
                    self._in_hook = records
                records = self._fire(sink, records)
                with self._hook_lock:
                    if self._in_hook is None:
                        return  # taken over by _finish_sinks
                    self._in_hook = None
            else:
                self._store(sink, records)

    def _fire(self, sink: CallbackSink, records: list[Record]) -> list[Record]:
        """Call the reject hook; the records for the later sinks, each failed (or, after a forced stop, not
        fired) reject noted in its ``error`` field."""
        try:
            sink.write(records, cancelled=self._abort.is_set)
            return records
        except BaseException as error:  # noqa: BLE001 - the records still go to the log
            failures = getattr(error, "failures", None) or [(r, error) for r in records]
            self.stats.add("sink_errors", len(failures))
            self.on_sink_error(sink, error)
            return _noted_unfired(records, failures)

    def _store(self, sink: Any, records: list[Record]) -> list[Record]:
        """Write the records to a store (the log), trying again after ``store_retry_s``; a store that still
        fails loses them: they are counted and the loop stops, since a line must not run unrecorded."""
        for wait in (*self.config.store_retry_s, None):
            try:
                sink.write(records)
                return records
            except BaseException as error:  # noqa: BLE001 - counted and reported below, never silent
                exc = error
            if wait is None or self._abort.is_set():
                break
            time.sleep(wait)
        self.stats.add("sink_errors", len(records))
        self.stats.add("records_lost", len(records))
        self.on_sink_error(sink, exc)
        self.request_stop()
        return records


def _noted_unfired(records: list[Record], failures: Sequence[tuple[Record, BaseException]]) -> list[Record]:
    """The batch for the sinks after a reject hook, each record the hook failed for carrying the failure in
    its ``error`` field: the log then keeps which frames were flagged but maybe not taken off the line."""
    notes = {id(record): f"{REJECT_HOOK_FAILED}: {error}" for record, error in failures}
    return [replace(r, error=f"{r.error}; {notes[id(r)]}" if r.error else notes[id(r)]) if id(r) in notes else r
            for r in records]
