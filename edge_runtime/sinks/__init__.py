"""Where records go after inspection: SQLite log, JSON lines, reject callback."""

from typing import Protocol, Sequence

from .callback import CallbackSink
from .jsonl import JsonlSink
from .record import Record
from .reviews import Review
from .sqlite_log import InspectionLogError, SqliteLog, parse_since


class Sink(Protocol):
    """Anything with ``write(records)`` and ``close()``; ``write`` gets batches in completion order."""

    def write(self, records: Sequence[Record]) -> None: ...

    def close(self) -> None: ...


__all__ = ["CallbackSink", "InspectionLogError", "JsonlSink", "Record", "Review", "Sink", "SqliteLog", "parse_since"]
