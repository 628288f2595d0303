"""Drift: does the line still look and score like the defect-free frames it was commissioned on?

A lamp that ages, a lens that gets dirty or slips out of focus, a new strip grade or a changed
exposure moves every frame, slowly, long before anyone reads the thresholds again. So commissioning
(``python -m edge_runtime calibrate --write``) records where the line's good frames lay (their 10th,
50th and 90th percentiles) on two measurements, and the newest logged frames are held against them:

* the anomaly score (``SCORE``): rising scores bring false alarms; falling scores can hide defects
  under the thresholds;
* the neighbour correlation of the picture (``SMOOTHNESS``, ``preprocess.FrameQuality``), which the
  models do not see: a lens out of focus, motion blur or heavy compression raise it, sensor noise or
  in-camera sharpening lower it, exposure leaves it. It sees camera changes that move the scores
  too little for the score check (``python -m studies.drift_study``);
* the picture's mean grey level (``BRIGHTNESS``): a lamp that ages or a diffuser that gets dirty
  darkens every frame long before the dark-frame check refuses one, and the gates, which read
  each frame relative to its own level, do not show it in their scores.

The check counts shares, not means: of the newest frames, the share above the baseline's 90th
percentile and the share below its 10th should each be about 10%. Twice that (20%) is drift. Only
frames the gate passed or warned on are counted: rejects are left out, so a run of real defects
does not read as drift, and a shift so large that frames are rejected still shows in the frames
that are not (and in the reject rate).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np

from .timestamps import local_time

EXPECTED_SHARE = 0.10  # of frames above the baseline's p90, and below its p10, when nothing moved
DRIFT_SHARE = 0.20     # twice that is drift
MIN_FRAMES = 200       # newest frames needed before the check says anything
RECENT_FRAMES = 500    # newest frames the check looks at
COUNTED_VERDICTS = ("ok", "warn")  # rejects are left out: real defects are not drift
RECOMMISSION = "if the line has changed for good, re-commission it."


@dataclass(frozen=True)
class Measure:
    """A per-frame measurement the drift check watches: its log column, its baseline's key among the
    manifest's thresholds, and what a rise or a fall means to the operator."""

    column: str        # the log's column
    result_field: str  # the ``InspectionResult`` field that holds it
    name: str          # "score" / "image" / "brightness": the check's name in reports
    baseline_key: str
    absent: str        # the message where the manifest holds no baseline for it
    reading: str       # "{share} {reading} above the commissioning frames' 90th percentile"
    risen: str         # the message when too many frames lie above the baseline's p90 ...
    fallen: str        # ... and below its p10; "{seen}" is replaced by the counts


NOT_COMMISSIONED = ("the thresholds were not commissioned on this line's frames (`python -m edge_runtime calibrate "
                    "--write`), so drift cannot be checked.")


def _absent_since_2026_11_26(name: str) -> str:
    """The missing-baseline message of a measure that commissioning records only since 2026-11-26."""
    return f"No {name} baseline: " + NOT_COMMISSIONED[:-1] + " (a commissioning before 2026-11-26 recorded none)."


SCORE = Measure(
    column="score", result_field="anomaly_score", name="score", baseline_key="score_baseline",
    absent="No score baseline: " + NOT_COMMISSIONED, reading="score",
    risen="Scores have risen: {seen}. False alarms will rise. Check the lamp, the lens and the exposure; "
          + RECOMMISSION,
    fallen="Scores have fallen: {seen}. Defects can stay under the thresholds. Check focus, exposure and the "
           "camera's settings; " + RECOMMISSION)
SMOOTHNESS = Measure(
    column="neighbour_correlation", result_field="neighbour_correlation", name="image", baseline_key="image_baseline",
    absent=_absent_since_2026_11_26("image"),
    reading="have a neighbour correlation",
    risen="Pictures are smoother than at commissioning: {seen}. Fine defects can blur away under the thresholds. "
          "Check focus, dirt or condensation on the lens, motion blur (exposure time against line speed) and the "
          "camera's compression; " + RECOMMISSION,
    fallen="Pictures are grainier than at commissioning: {seen}. Check the camera's gain, sensor noise, in-camera "
           "sharpening and the lamp; " + RECOMMISSION)
BRIGHTNESS = Measure(
    column="mean_grey", result_field="mean_grey", name="brightness", baseline_key="brightness_baseline",
    absent=_absent_since_2026_11_26("brightness"),
    reading="have a mean grey level",
    risen="Pictures are brighter than at commissioning: {seen}. Check the exposure time, the gain, the aperture "
          "and whether stray light reaches the strip; " + RECOMMISSION,
    fallen="Pictures are darker than at commissioning: {seen}. Check the lamp (ageing, a failed segment, dirt on "
           "the diffuser or the lens), the exposure time and the aperture; " + RECOMMISSION)
MEASURES = (SCORE, SMOOTHNESS, BRIGHTNESS)
BASELINE_KEYS = tuple(measure.baseline_key for measure in MEASURES)


@dataclass(frozen=True)
class Baseline:
    """Where a line's defect-free frames lay on one measurement at commissioning (manifest
    ``thresholds.<measure.baseline_key>``)."""

    p10: float
    p50: float
    p90: float
    frames: int
    measured_at: float  # unix time; frames logged before it are not compared with it

    @classmethod
    def from_values(cls, values: Sequence[float], measured_at: float | None = None) -> "Baseline":
        values = np.asarray(values, float)
        if values.size < MIN_FRAMES:
            raise ValueError(f"a drift baseline needs at least {MIN_FRAMES} defect-free frames, got {values.size}")
        p10, p50, p90 = np.percentile(values, [10, 50, 90])
        return cls(float(p10), float(p50), float(p90), int(values.size),
                   time.time() if measured_at is None else float(measured_at))

    @classmethod
    def from_manifest(cls, thresholds: Mapping[str, Any], measure: Measure = SCORE) -> "Baseline | None":
        """The baseline recorded with a profile's thresholds, or None where the line was not commissioned."""
        entry = thresholds.get(measure.baseline_key)
        return cls(**{name: entry[name] for name in ("p10", "p50", "p90", "frames", "measured_at")}) if entry else None

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class DriftCheck:
    """The newest frames against the baseline. ``status``: "ok", "high", "low", "too_few", "no_baseline" or
    "clock_behind" (``check_log``: frames since the baseline are stamped before it)."""

    status: str
    frames: int
    share_above_p90: float | None
    share_below_p10: float | None
    median: float | None
    message: str
    measure: str = SCORE.column

    @property
    def drifted(self) -> bool:
        return self.status in ("high", "low")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drifted": self.drifted}


def check_drift(recent_values: Sequence[float], baseline: Baseline | None, min_frames: int = MIN_FRAMES,
                measure: Measure = SCORE) -> DriftCheck:
    """Hold the newest inspected frames' ``measure`` (logged since ``baseline.measured_at``) against it."""
    values = np.asarray(recent_values, float)
    median = float(np.median(values)) if values.size else None
    if baseline is None:
        return DriftCheck("no_baseline", int(values.size), None, None, median, measure.absent, measure.column)
    if values.size < min_frames:
        return DriftCheck("too_few", int(values.size), None, None, median,
                          f"{values.size} frames passed or warned on since commissioning; the drift check needs "
                          f"{min_frames}.", measure.column)
    above = float(np.mean(values > baseline.p90))
    below = float(np.mean(values < baseline.p10))
    seen = (f"of the newest {values.size} frames passed or warned on, {above:.0%} {measure.reading} above the "
            f"commissioning frames' 90th percentile ({baseline.p90:.4g}) and {below:.0%} below their 10th "
            f"({baseline.p10:.4g}); about {EXPECTED_SHARE:.0%} each is expected")
    if above >= DRIFT_SHARE and above >= below:
        return DriftCheck("high", int(values.size), above, below, median, measure.risen.format(seen=seen),
                          measure.column)
    if below >= DRIFT_SHARE:
        return DriftCheck("low", int(values.size), above, below, median, measure.fallen.format(seen=seen),
                          measure.column)
    return DriftCheck("ok", int(values.size), above, below, median, f"No drift: {seen}.", measure.column)


def check_log(log: Any, profile: str, thresholds: Mapping[str, Any], recent: int = RECENT_FRAMES,
              measure: Measure = SCORE) -> DriftCheck:
    """``check_drift`` on ``measure`` of the newest ``recent`` ok and warn frames of ``profile`` that ``log``
    (an ``edge_runtime.sinks.SqliteLog``) holds since the profile's baseline (manifest ``thresholds``) was set."""
    baseline = Baseline.from_manifest(thresholds, measure)
    since = baseline.measured_at if baseline else None
    values = log.recent_values(measure.column, recent, since=since, profile=profile, verdicts=COUNTED_VERDICTS)
    if baseline is not None and len(values) < MIN_FRAMES and (behind := _clock_behind(log, profile, thresholds,
                                                                                      baseline)):
        return DriftCheck("clock_behind", len(values), None, None, None, behind, measure.column)
    if baseline is None and "commissioned" in thresholds:  # commissioned, on too few frames for a baseline
        frames = thresholds["commissioned"].get("frames")
        measure = replace(measure, absent=f"No {measure.name} baseline: the thresholds were commissioned on {frames} "
                          f"frames, and a drift baseline needs {MIN_FRAMES} under the defect threshold; "
                          "commission again on more good strip to check drift.")
    return check_drift(values, baseline, measure=measure)


def _clock_behind(log: Any, profile: str, thresholds: Mapping[str, Any], baseline: Baseline) -> str | None:
    """Why no frame counts since the baseline, where the reason is this PC's clock: the newest record was judged
    by the thresholds in use, which the last change set and no earlier one had (``changes_newest_first``), so it
    was written after that change, yet it is stamped before the baseline was measured. The clock was set back (or
    was ahead while commissioning); frames count again once it is right."""
    from .manifest import changes_newest_first  # the manifest module reads this one's baselines

    newest = log.newest_record(profile)
    if newest is None or newest["recorded_at"] >= baseline.measured_at:
        return None
    in_use = (thresholds.get("warn"), thresholds.get("defect"))
    if (newest["warn_threshold"], newest["defect_threshold"]) != in_use:
        return None
    last, *before = changes_newest_first(thresholds) or [{}]
    earlier = {(last.get("previous_warn"), last.get("previous_defect"))} | {
        values for change in before for values in ((change.get("warn"), change.get("defect")),
                                                   (change.get("previous_warn"), change.get("previous_defect")))}
    if not last or in_use in earlier:  # no log, or values in use before the last change too: frames judged by
        return None  # them before it are no sign of the clock
    return (f"This PC's clock is behind the commissioning: the newest frame, judged by today's thresholds, is stamped "
            f"{local_time(newest['recorded_at'])}, before the baseline was measured ({local_time(baseline.measured_at)}), "
            "so no frame counts "
            "as inspected since; set the clock right (NTP) to check drift.")
