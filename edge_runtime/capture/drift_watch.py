"""``watch``: the drift checks (``edge_runtime.drift``) on the log the loop writes, every few minutes.

A line that nobody runs ``history`` on still hears of a camera or lamp that drifted: ``watch``
prints a line on stderr when a check turns to drift and when it clears, and ``--status-file``
carries each check's status for the plant's monitoring (``steel_inspect_drifted{check="image"}``
in the Prometheus format). Which frames count and what drift means is ``history``'s rule, unchanged.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Mapping

from ..drift import MEASURES, DriftCheck, check_log

# How often the checks read the log while the loop runs (seconds): drift builds over hundreds of frames.
DRIFT_PERIOD_S = 300.0


class DriftWatch:
    """The drift checks of one profile on one log, the latest reading of each kept for the status file."""

    def __init__(self, log: Any, profile: str, thresholds: Mapping[str, Any],
                 report: Callable[[str], None]) -> None:
        self._log, self._profile, self._thresholds, self._report = log, profile, thresholds, report
        self._drifted: dict[str, bool] = {}
        self.latest: dict[str, dict[str, Any]] = {}

    def check(self) -> dict[str, DriftCheck]:
        """Run every check; report each one that has turned to drift or back since the last reading."""
        checks = {measure.name: check_log(self._log, self._profile, self._thresholds, measure=measure)
                  for measure in MEASURES}
        for name, check in checks.items():
            if check.drifted != self._drifted.get(name, False):
                self._report(f"{name} drift: {check.status.upper()}: {check.message}" if check.drifted
                             else f"{name} drift cleared: {check.message}")
            self._drifted[name] = check.drifted
        self.latest = {name: {"status": check.status, "drifted": check.drifted} for name, check in checks.items()}
        return checks


def keep_checking(watch: DriftWatch, done: threading.Event, period_s: float = DRIFT_PERIOD_S,
                  on_failure: Callable[[Exception], None] | None = None) -> None:
    """``watch.check()`` now and every ``period_s`` until ``done`` is set (for a thread). A failing read
    is handed to ``on_failure`` and the next period tries again: the inspection goes on either way."""
    while True:
        try:
            watch.check()
        except Exception as exc:  # a locked or damaged log must not stop the line
            if on_failure is not None:
                on_failure(exc)
        if done.wait(period_s):
            return
