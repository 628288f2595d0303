"""Operator reviews of logged frames: what the frame really showed, as the line's own ground truth.

The gate and the classifier are measured on data sets; a line learns how they do on its own strip
only from people looking at its frames. An operator (or the quality engineer) reviews a logged
record and says what the frame shows: a defect (and, where they know it, which class) or good
strip. Against the record's verdict that makes a flagged frame a confirmed defect or a false alarm,
and a passed frame a spot-checked good one or a missed defect (an escape found later). Reviews are
appended, never edited: a second review of the same record (a correction, a second opinion) is
kept beside the first, and the newest one counts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .record import FLAGGED

SHOWS = ("defect", "good")


@dataclass(frozen=True)
class Review:
    """One person's reading of one inspected record (``inspections.id``)."""

    inspection_id: int
    shows: str  # "defect" | "good"
    reviewer: str
    defect_class: str | None = None  # the class the reviewer names, where the frame shows a defect
    note: str | None = None
    reviewed_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.shows not in SHOWS:
            raise ValueError(f"a review says the frame shows one of {SHOWS}, not {self.shows!r}")
        if not self.reviewer.strip():
            raise ValueError("a review needs the reviewer's name: the log keeps who said what")
        if self.defect_class and self.shows != "defect":
            raise ValueError(f"a class ({self.defect_class!r}) only goes with a frame that shows a defect")


def review_summary(latest: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """What the newest review of each reviewed record (``SqliteLog.latest_reviews``) says about the line.

    ``flag_precision``: the share of reviewed flagged frames that show a defect. ``class_agreement``:
    of the confirmed defects the reviewer named a class for, the share the classifier named the same.
    ``missed``: passed frames a reviewer found a defect on; ``spot_checked`` counts all reviewed
    passed frames, so missed / spot_checked estimates the escape rate only where the spot checks were
    drawn at random (escapes reported from downstream are not)."""
    rows = list(latest)
    flagged = [r for r in rows if r["verdict"] in FLAGGED]
    passed = [r for r in rows if r["verdict"] not in FLAGGED]
    confirmed = [r for r in flagged if r["shows"] == "defect"]
    named = [r for r in confirmed if r["reviewed_class"]]
    agreed = [r for r in named if _same_class(r["reviewed_class"], r["predicted_class"])]
    return {
        "reviewed": len(rows),
        "flagged_reviewed": len(flagged),
        "confirmed": len(confirmed),
        "false_alarms": len(flagged) - len(confirmed),
        "flag_precision": len(confirmed) / len(flagged) if flagged else None,
        "class_named": len(named),
        "class_agreed": len(agreed),
        "class_agreement": len(agreed) / len(named) if named else None,
        "spot_checked": len(passed),
        "missed": sum(r["shows"] == "defect" for r in passed),
    }


def summary_line(summary: Mapping[str, Any]) -> str:
    """``review_summary`` in one sentence, for ``history`` and the dashboard."""
    if not summary["reviewed"]:
        return "no frames reviewed by an operator"
    parts = []
    if summary["flagged_reviewed"]:
        parts.append(f"{summary['flagged_reviewed']} flagged frame(s) reviewed: {summary['confirmed']} defect(s) "
                     f"confirmed, {summary['false_alarms']} false alarm(s) ({summary['flag_precision']:.0%} of flags "
                     "confirmed)")
    if summary["class_named"]:
        parts.append(f"class named right on {summary['class_agreed']} of {summary['class_named']} confirmed with a class")
    if summary["spot_checked"]:
        parts.append(f"{summary['spot_checked']} passed frame(s) reviewed: {summary['missed']} missed defect(s)")
    return "; ".join(parts)


def _same_class(reviewed: str, predicted: str | None) -> bool:
    return predicted is not None and reviewed.strip().lower() == predicted.strip().lower()
