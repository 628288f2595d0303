"""Thread-safe loop counters and latency percentiles."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any

import numpy as np

from ..sinks.record import DROPPED, ERROR, INSPECTED, SOURCE_ERROR, Record


def percentiles(values: list[float] | deque, qs: tuple[int, ...] = (50, 90, 99)) -> dict[str, float | None]:
    if not values:
        return {f"p{q}": None for q in qs}
    result = np.percentile(np.asarray(values, dtype=np.float64), qs)
    return {f"p{q}": round(float(v), 3) for q, v in zip(qs, result)}


class LoopStats:
    """Counts every frame's fate; ``captured == inspected + errored + dropped + in_progress`` at all times."""

    def __init__(self, window: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._started = time.monotonic()  # not the wall clock: NTP may step it, and a rate with it
        self.captured = self.inspected = self.errored = self.dropped = 0
        self.source_errors = self.sink_errors = self.overlay_errors = self.frame_save_errors = 0
        self.records_lost = 0  # records a store (the log) could not take, after its retries
        self.verdicts: Counter[str] = Counter()
        self.last_source_error: str | None = None
        self._latency_ms: deque[float] = deque(maxlen=window)
        self._e2e_ms: deque[float] = deque(maxlen=window)

    def count_captured(self) -> int:
        with self._lock:
            self.captured += 1
            return self.captured

    def count_record(self, record: Record) -> None:
        with self._lock:
            self.verdicts[record.verdict] += 1
            if record.verdict in INSPECTED:
                self.inspected += 1
                if record.latency_ms is not None:
                    self._latency_ms.append(record.latency_ms)
            elif record.verdict == ERROR:
                self.errored += 1
            elif record.verdict == DROPPED:
                self.dropped += 1
            elif record.verdict == SOURCE_ERROR:
                self.source_errors += 1
                self.last_source_error = record.error
            if record.captured_at is not None and record.verdict != DROPPED:
                self._e2e_ms.append((record.recorded_at - record.captured_at) * 1000.0)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            elapsed = max(time.monotonic() - self._started, 1e-9)
            done = self.inspected + self.errored + self.dropped
            return {
                "elapsed_s": round(elapsed, 3),
                "captured": self.captured,
                "inspected": self.inspected,
                "errored": self.errored,
                "dropped": self.dropped,
                "in_progress": self.captured - done,
                "verdicts": {k: v for k, v in sorted(self.verdicts.items()) if k in INSPECTED},
                "source_errors": self.source_errors,
                "last_source_error": self.last_source_error,
                "sink_errors": self.sink_errors,
                "records_lost": self.records_lost,
                "overlay_errors": self.overlay_errors,
                "frame_save_errors": self.frame_save_errors,
                "frames_per_s": round(done / elapsed, 2),
                "latency_ms": percentiles(self._latency_ms),
                "end_to_end_ms": percentiles(self._e2e_ms),
            }
