"""How the product writes a moment for people: with its time zone, so a record read in another zone, or in the
hour repeated at the end of summer time, names one moment. Stored times stay unix seconds (the log) or carry their
UTC offset (the manifest's audit entries)."""

from __future__ import annotations

import time
from datetime import datetime


def local_time(unix: float, seconds: bool = False) -> str:
    """``2026-10-25 02:40 CEST``: this PC's local time with its zone's name."""
    return time.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z", time.localtime(unix))


def audit_stamp() -> str:
    """Now, for the manifest's audit entries: local time with its UTC offset (``2026-10-25T02:40:05+02:00``)."""
    return datetime.now().astimezone().isoformat(timespec="seconds")
