"""Callback sink: calls a function for every reject, e.g. a PLC hook that fires the ejector.

The loop delivers records in a batch right after inspection, before later sinks run,
so put this sink first for the lowest reject latency. After a crash, frames whose
records were not committed are inspected again, so the hook is at-least-once.
"""

from __future__ import annotations

from typing import Callable, Sequence

from .record import Record

RejectHook = Callable[[Record], None]


def is_reject(record: Record) -> bool:
    return record.verdict == "defect"


class CallbackSink:
    def __init__(self, callback: RejectHook, predicate: Callable[[Record], bool] = is_reject) -> None:
        self.callback = callback
        self.predicate = predicate
        self.calls = 0

    def write(self, records: Sequence[Record]) -> None:
        for record in records:
            if self.predicate(record):
                self.calls += 1
                self.callback(record)

    def close(self) -> None:
        pass
