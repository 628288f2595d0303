"""JSON-lines sink: one JSON object per record (stdout by default), for piping into other tools."""

from __future__ import annotations

import sys
from typing import Sequence, TextIO

from .record import Record


class JsonlSink:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout

    def write(self, records: Sequence[Record]) -> None:
        self.stream.write("".join(record.to_json() + "\n" for record in records))
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()
