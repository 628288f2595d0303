"""``watch --status-file``: the loop's state as one JSON file, rewritten every few seconds.

For the plant's monitoring (SCADA, a Prometheus textfile collector, a shell check): a service
that is running but no longer capturing (a camera that hangs, a source that keeps failing) is
visible as a ``last_capture_at`` that stops moving while ``updated_at`` goes on. The file is
replaced atomically (written beside it, then renamed), so a reader never sees half of it.

A path ending in ``.prom`` gets the Prometheus text exposition format instead of JSON, for
node_exporter's textfile collector: the counters as ``steel_inspect_*`` samples labelled with the
source and profile, and the time of the last captured frame (``steel_inspect_last_capture_timestamp_seconds``)
to alert on a camera that stopped, and each drift check's reading (``steel_inspect_drifted``, 1 while
the check reads drift since commissioning; ``edge_runtime.capture.drift_watch``).
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
        text = prometheus_text(status) if self.path.suffix == ".prom" else json.dumps(status) + "\n"
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(text)
            tmp.replace(self.path)
        except OSError:
            tmp.unlink(missing_ok=True)  # a full disk: no half-written file left beside the status
            raise


# (sample name, status key, Prometheus type, help text); a key missing from the status is left out.
PROMETHEUS_SAMPLES = (
    ("up", "up", "gauge", "1 while the capture loop runs, 0 once it has stopped"),
    ("captured_frames_total", "captured", "counter", "frames taken from the source"),
    ("inspected_frames_total", "inspected", "counter", "frames given a verdict"),
    ("errored_frames_total", "errored", "counter", "frames that could not be inspected"),
    ("dropped_frames_total", "dropped", "counter", "frames dropped before inspection (queue full)"),
    ("source_errors_total", "source_errors", "counter", "failed reads from the source"),
    ("sink_errors_total", "sink_errors", "counter", "failed writes to the log or failed reject hooks"),
    ("queue_depth", "queue_depth", "gauge", "frames waiting for inspection"),
    ("records_pending", "records_pending", "gauge", "records waiting for the reject hook and the log"),
    ("records_lost_total", "records_lost", "counter", "records the log could not take after its retries"),
    ("frames_per_second", "frames_per_s_recent", "gauge", "frames done per second, recent"),
    ("last_capture_timestamp_seconds", "last_capture_at", "gauge", "Unix time of the last captured frame"),
    ("updated_timestamp_seconds", "updated_at", "gauge", "Unix time this file was written"),
    ("started_timestamp_seconds", "started_at", "gauge", "Unix time the loop started"),
)


def prometheus_text(status: dict[str, Any]) -> str:
    """The status in the Prometheus text exposition format (version 0.0.4)."""
    labels = ",".join(f'{key}="{_escaped(str(status[key]))}"' for key in ("source", "profile"))
    values = {**status, "up": 0 if status["state"] == "stopped" else 1}
    lines = []
    for name, key, kind, help_text in PROMETHEUS_SAMPLES:
        if values.get(key) is None:
            continue
        lines += [f"# HELP steel_inspect_{name} {help_text}", f"# TYPE steel_inspect_{name} {kind}",
                  f"steel_inspect_{name}{{{labels}}} {float(values[key])!r}"]
    verdicts = status.get("verdicts") or {}
    lines += ["# HELP steel_inspect_verdicts_total inspected frames per verdict",
              "# TYPE steel_inspect_verdicts_total counter"]
    lines += [f'steel_inspect_verdicts_total{{{labels},verdict="{_escaped(v)}"}} {n}' for v, n in sorted(verdicts.items())]
    drift = status.get("drift") or {}
    if drift:
        lines += ["# HELP steel_inspect_drifted 1 while the drift check reads drift since commissioning (score, image, brightness)",
                  "# TYPE steel_inspect_drifted gauge"]
        lines += [f'steel_inspect_drifted{{{labels},check="{_escaped(name)}"}} {int(reading["drifted"])}'
                  for name, reading in sorted(drift.items())]
    return "\n".join(lines) + "\n"


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
