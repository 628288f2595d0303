"""Callback sink: calls a function for every reject, e.g. a PLC hook that fires the ejector.

The loop delivers records in a batch right after inspection, before later sinks run,
so put this sink first for the lowest reject latency. After a crash, frames whose
records were not committed are inspected again, so the hook is at-least-once.
"""

from __future__ import annotations

from typing import Callable, Sequence

from .record import Record

RejectHook = Callable[[Record], None]


class RejectHookError(RuntimeError):
    """The hook failed for some records of a batch; it was still called for every other one."""

    def __init__(self, failures: list[tuple[Record, Exception]]) -> None:
        self.failures = failures
        first_record, first_error = failures[0]
        super().__init__(f"the reject hook failed for {len(failures)} record(s), first for frame "
                         f"{first_record.frame_id} of {first_record.source}: {first_error}")


class CallbackSink:
    def __init__(self, callback: RejectHook, predicate: Callable[[Record], bool] = lambda r: r.is_reject) -> None:
        self.callback = callback
        self.predicate = predicate
        self.calls = 0

    def write(self, records: Sequence[Record]) -> None:
        """Calls the hook for each matching record, in order. A failing call does not skip the
        rejects after it (each is an ejector firing); the failures are raised together at the end."""
        failures = []
        for record in records:
            if self.predicate(record):
                self.calls += 1
                try:
                    self.callback(record)
                except Exception as error:  # noqa: BLE001 - any hook failure is reported, none stops the others
                    failures.append((record, error))
        if failures:
            raise RejectHookError(failures)

    def close(self) -> None:
        pass
