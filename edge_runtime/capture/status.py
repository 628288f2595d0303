"""``watch --status-file``: the loop's state as one JSON file, rewritten every few seconds.

For the plant's monitoring (SCADA, a Prometheus textfile collector, a shell check): a service
that is running but no longer capturing (a camera that hangs, a source that keeps failing) is
visible as a ``last_capture_at`` that stops moving while ``updated_at`` goes on. The file is
replaced atomically (written beside it, then renamed), so a reader never sees half of it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

# How often the file is rewritten while the loop runs (seconds).
STATUS_PERIOD_S = 2.0


class StatusFile:
    def __init__(self, path: str | Path, source: str, profile: str) -> None:
        """Writes a first "starting" status at once: a path that cannot be written raises ``OSError`` here,
        before the line starts, not later."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fixed = {"source": source, "profile": profile, "pid": os.getpid(), "started_at": time.time()}
        self._captured, self._last_capture_at = 0, None
        self.write({"captured": 0}, 0.0, "starting")

    def write(self, snap: dict[str, Any], frames_per_s: float, state: str = "running") -> None:
        """``snap``: ``InspectionLoop.snapshot()``; ``state``: "starting", "running" or "stopped"."""
        now = time.time()
        if snap["captured"] > self._captured:
            self._captured, self._last_capture_at = snap["captured"], now
        status = {"state": state, "updated_at": now, "last_capture_at": self._last_capture_at,
                  "frames_per_s_recent": round(frames_per_s, 2), **self._fixed, **snap}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(status) + "\n")
        tmp.replace(self.path)
