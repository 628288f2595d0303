"""Score drift: does the line still score like the defect-free frames it was commissioned on?

A lamp that ages, a lens that gets dirty, a new strip grade or a changed exposure moves every
anomaly score, slowly, long before anyone reads the thresholds again. Rising scores bring false
alarms; falling scores can hide defects under the thresholds. So commissioning
(``python -m edge_runtime calibrate --write``) records where the line's good frames scored (their
10th, 50th and 90th percentiles), and the newest logged scores are held against that baseline.

The check counts shares, not means: of the newest frames, the share above the baseline's 90th
percentile and the share below its 10th should each be about 10%. Twice that (20%) is drift. Only
frames the gate passed or warned on are counted: rejects are left out, so a run of real defects
does not read as drift, and a shift so large that frames are rejected still shows in the frames
that are not (and in the reject rate).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np

EXPECTED_SHARE = 0.10  # of frames above the baseline's p90, and below its p10, when nothing moved
DRIFT_SHARE = 0.20     # twice that is drift
MIN_FRAMES = 200       # newest frames needed before the check says anything
RECENT_FRAMES = 500    # newest frames the check looks at
COUNTED_VERDICTS = ("ok", "warn")  # rejects are left out: real defects are not drift


@dataclass(frozen=True)
class ScoreBaseline:
    """Where a line's defect-free frames scored at commissioning (manifest ``thresholds.score_baseline``)."""

    p10: float
    p50: float
    p90: float
    frames: int
    measured_at: float  # unix time; frames logged before it are not compared with it

    @classmethod
    def from_scores(cls, scores: Sequence[float], measured_at: float | None = None) -> "ScoreBaseline":
        values = np.asarray(scores, float)
        if values.size < MIN_FRAMES:
            raise ValueError(f"a score baseline needs at least {MIN_FRAMES} defect-free frames, got {values.size}")
        p10, p50, p90 = np.percentile(values, [10, 50, 90])
        return cls(float(p10), float(p50), float(p90), int(values.size),
                   time.time() if measured_at is None else float(measured_at))

    @classmethod
    def from_manifest(cls, thresholds: Mapping[str, Any]) -> "ScoreBaseline | None":
        """The baseline recorded with a profile's thresholds, or None where the line was not commissioned."""
        entry = thresholds.get("score_baseline")
        return cls(**{name: entry[name] for name in ("p10", "p50", "p90", "frames", "measured_at")}) if entry else None

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class DriftCheck:
    """The newest scores against the baseline. ``status``: "ok", "high", "low", "too_few" or "no_baseline"."""

    status: str
    frames: int
    share_above_p90: float | None
    share_below_p10: float | None
    median: float | None
    message: str

    @property
    def drifted(self) -> bool:
        return self.status in ("high", "low")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drifted": self.drifted}


def check_drift(recent_scores: Sequence[float], baseline: ScoreBaseline | None,
                min_frames: int = MIN_FRAMES) -> DriftCheck:
    """Hold the newest inspected frames' scores (logged since ``baseline.measured_at``) against it."""
    scores = np.asarray(recent_scores, float)
    median = float(np.median(scores)) if scores.size else None
    if baseline is None:
        return DriftCheck("no_baseline", int(scores.size), None, None, median,
                          "No score baseline: the thresholds were not commissioned on this line's frames "
                          "(`python -m edge_runtime calibrate --write`), so drift cannot be checked.")
    if scores.size < min_frames:
        return DriftCheck("too_few", int(scores.size), None, None, median,
                          f"{scores.size} frames passed or warned on since commissioning; the drift check needs "
                          f"{min_frames}.")
    above = float(np.mean(scores > baseline.p90))
    below = float(np.mean(scores < baseline.p10))
    seen = (f"of the newest {scores.size} frames passed or warned on, {above:.0%} score above the commissioning frames' 90th "
            f"percentile ({baseline.p90:.4g}) and {below:.0%} below their 10th ({baseline.p10:.4g}); "
            f"about {EXPECTED_SHARE:.0%} each is expected")
    if above >= DRIFT_SHARE and above >= below:
        return DriftCheck("high", int(scores.size), above, below, median,
                          f"Scores have risen: {seen}. False alarms will rise. Check the lamp, the lens and the "
                          "exposure; if the line has changed for good, re-commission it.")
    if below >= DRIFT_SHARE:
        return DriftCheck("low", int(scores.size), above, below, median,
                          f"Scores have fallen: {seen}. Defects can stay under the thresholds. Check focus, "
                          "exposure and the camera's settings; if the line has changed for good, re-commission it.")
    return DriftCheck("ok", int(scores.size), above, below, median, f"No drift: {seen}.")


def check_log(log: Any, profile: str, thresholds: Mapping[str, Any], recent: int = RECENT_FRAMES) -> DriftCheck:
    """``check_drift`` on the newest ``recent`` ok and warn frames of ``profile`` that ``log`` (an
    ``edge_runtime.sinks.SqliteLog``) holds since the profile's baseline (manifest ``thresholds``) was set."""
    baseline = ScoreBaseline.from_manifest(thresholds)
    since = baseline.measured_at if baseline else None
    return check_drift(log.recent_scores(recent, since=since, profile=profile, verdicts=COUNTED_VERDICTS), baseline)
