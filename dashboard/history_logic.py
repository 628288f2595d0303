"""Reading the SQLite inspection log for the History page (pandas, no UI)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping, NamedTuple, Sequence

import pandas as pd

from dashboard.config import is_inside
from edge_runtime.sinks.record import INSPECTED

WINDOWS = {"last hour": "1h", "last 12 hours": "12h", "last 24 hours": "24h", "last 7 days": "7d",
           "last 30 days": "30d", "everything": None}
ROW_LIMIT = 200_000  # newest rows held for charts and the table; the totals are counted in SQL


class History(NamedTuple):
    """What the History page shows of a time window, read through one connection."""

    rows: pd.DataFrame  # the newest rows (at most the row limit), with a ``time`` column
    counts: dict[str, int]  # records per verdict over the whole window
    unfired_rejects: int  # records whose reject hook failed, over the whole window
    error_causes: dict[str, int]  # frames not inspected and source outages per cause, over the whole window
    reviews: dict  # operators' reviews of the window's records, summed up (edge_runtime.sinks.reviews)


def local_times(stamps: pd.Series) -> pd.Series:
    """Unix seconds as this PC's local time (what ``python -m edge_runtime history`` prints), zone-aware: each
    keeps its own UTC offset, so a summer-time change does not shift the older records, and the hour repeated
    when summer time ends stays two hours in the charts, the table and the CSV export."""
    from dateutil.tz import tzlocal

    return pd.to_datetime(stamps.astype(float), unit="s", utc=True).dt.tz_convert(tzlocal())


def utc_times(stamps: pd.Series) -> pd.Series:
    """Unix seconds as ISO 8601 UTC text: the export's unambiguous time (local wall-clock time repeats an hour when
    summer time ends)."""
    return pd.Series([datetime.fromtimestamp(float(t), timezone.utc).isoformat(timespec="milliseconds")
                      for t in stamps], index=stamps.index, dtype=object)


def load_history(db: Path, since: str | None = None, limit: int | None = None) -> History:
    """The window's newest log rows and, counted in SQL so that they hold beyond the row limit, its
    records per verdict, unfired rejects and errors per cause, as ``python -m edge_runtime history``
    counts them; empty where there is no log."""
    from edge_runtime.sinks import SqliteLog

    from edge_runtime.sinks.reviews import review_summary

    if not Path(db).is_file():
        return History(pd.DataFrame(), {}, 0, {}, review_summary([]))
    with SqliteLog(db, create=False) as log:
        rows = log.rows(since=since, limit=limit or ROW_LIMIT)
        latest = log.latest_reviews(since)
        history = History(_with_reviews(pd.DataFrame(rows), latest), log.counts_by_verdict(since),
                          log.unfired_rejects(since), log.errors_by_cause(since), review_summary(latest))
    df = history.rows
    if not df.empty:
        stamp = df["captured_at"].fillna(df["recorded_at"]) if "captured_at" in df else df["recorded_at"]
        df["time"] = local_times(stamp)
        df["time_utc"] = utc_times(stamp)
    return history


REVIEW_COLUMNS = {"shows": "reviewed_as", "reviewed_class": "reviewed_class", "reviewer": "reviewed_by"}


def _with_reviews(df: pd.DataFrame, latest: Sequence[Mapping]) -> pd.DataFrame:
    """The log rows with the newest review of each (``REVIEW_COLUMNS``; empty where none)."""
    if df.empty:
        return df
    by_id = {row["inspection_id"]: row for row in latest}
    for column, name in REVIEW_COLUMNS.items():
        df[name] = df["id"].map(lambda i: by_id[i][column] if i in by_id else None)
    return df


def text_or_none(value) -> str | None:
    """A table cell as text: None for a missing value (None or NaN) or an empty string."""
    return value if isinstance(value, str) and value else None


def profile_classes(manifest: Mapping | None, profile: str | None) -> list[str]:
    """The class names of a profile (default: the manifest's default), to offer a reviewer; none where the
    manifest or the profile cannot be read."""
    from edge_runtime.errors import ManifestError
    from edge_runtime.manifest import profile_name

    try:
        return list(manifest["profiles"][profile_name(manifest, profile)]["class_names"])
    except (ManifestError, KeyError, TypeError, AttributeError):
        return []


def save_review(db: Path, review) -> int:
    """Append an operator's review (``edge_runtime.sinks.Review``) to the log; ValueError says why one is refused."""
    from edge_runtime.sinks import SqliteLog

    with SqliteLog(db, create=False) as log:
        return log.add_review(review)


def bucket_for(df: pd.DataFrame) -> str:
    """Pandas frequency giving roughly 20-200 bars over the rows' time span."""
    if df.empty:
        return "1h"
    span = (df["time"].max() - df["time"].min()).total_seconds()
    for freq, seconds in (("1min", 60), ("5min", 300), ("15min", 900), ("1h", 3600), ("6h", 21600)):
        if span / seconds <= 200:
            return freq
    return "1D"


def counts_over_time(df: pd.DataFrame, column: str, freq: str | None = None,
                     keep: Sequence[str] | None = None) -> pd.DataFrame:
    """Wide frame: one row per time bucket, one column per value of ``column``."""
    if df.empty or column not in df:
        return pd.DataFrame()
    data = df.dropna(subset=[column])
    if keep is not None:
        data = data[data[column].isin(keep)]
    if data.empty:
        return pd.DataFrame()
    freq = freq or bucket_for(df)
    wide = (data.groupby([pd.Grouper(key="time", freq=freq), column]).size()
            .unstack(column, fill_value=0).sort_index())
    wide.columns = [str(c) for c in wide.columns]
    return wide


def drift_profile(db: Path, manifest: Mapping, selected: str | None, since: str | None = None) -> str:
    """The profile whose drift the page checks: the one the window's frames were inspected with (in a quiet window,
    the one the line last ran), as ``python -m edge_runtime history --since`` picks it; the sidebar's ``selected``
    profile only where the window holds frames of several (the CLI's ``--profile``)."""
    from edge_runtime.manifest import logged_profile_name
    from edge_runtime.sinks import SqliteLog

    with SqliteLog(db, create=False) as log:
        logged = log.window_profiles(since)
    return logged_profile_name(dict(manifest), logged, selected if len(logged) > 1 else None)


def drift_check(db: Path, manifest: Mapping, profile: str, measure=None):
    """(``edge_runtime.drift.DriftCheck`` of ``measure`` (default the score) on the profile's newest logged
    frames, its ``Baseline`` or None); with ``drift_profile``'s profile, the check ``python -m edge_runtime
    history`` prints."""
    from edge_runtime.drift import SCORE, Baseline, check_log
    from edge_runtime.sinks import SqliteLog

    measure = measure or SCORE
    thresholds = manifest["profiles"][profile]["thresholds"]
    with SqliteLog(db, create=False) as log:
        return check_log(log, profile, thresholds, measure=measure), Baseline.from_manifest(thresholds, measure)


def values_over_time(df: pd.DataFrame, freq: str, baseline=None, column: str = "score") -> pd.DataFrame:
    """Median and 90th percentile of ``column`` over the frames the drift check counts (passed or warned
    on) per time bucket, and the baseline's 10th, 50th and 90th percentiles beside them where the line
    was commissioned."""
    from edge_runtime.drift import COUNTED_VERDICTS

    if df.empty or column not in df:
        return pd.DataFrame()
    inspected = df[df["verdict"].isin(COUNTED_VERDICTS)].dropna(subset=[column])
    if inspected.empty:
        return pd.DataFrame()
    grouped = inspected.groupby(pd.Grouper(key="time", freq=freq))[column]
    wide = pd.DataFrame({"median": grouped.median(), "90th percentile": grouped.quantile(0.9)}).dropna()
    if baseline is not None:
        for name, value in (("commissioning p10", baseline.p10), ("commissioning p50", baseline.p50),
                            ("commissioning p90", baseline.p90)):
            wide[name] = value
    return wide


def filter_rows(df: pd.DataFrame, verdicts: Sequence[str] = (), classes: Sequence[str] = (),
                sources: Sequence[str] = (), min_score: float | None = None) -> pd.DataFrame:
    if df.empty:
        return df
    mask = pd.Series(True, index=df.index)
    if verdicts:
        mask &= df["verdict"].isin(verdicts)
    if classes:
        mask &= df["defect_class"].isin(classes)
    if sources:
        mask &= df["source"].isin(sources)
    if min_score is not None:
        mask &= df["score"].fillna(float("-inf")) >= min_score
    return df[mask]


def summary(counts: Mapping[str, int]) -> dict[str, float]:
    """Frames, inspected frames, rejects and reject rate from the counts of ``load_history``. A source outage's
    record belongs to no frame, so it is not counted among the frames."""
    from edge_runtime.sinks.record import SOURCE_ERROR

    inspected = sum(counts.get(verdict, 0) for verdict in INSPECTED)
    rejects = counts.get("defect", 0)
    frames = sum(n for verdict, n in counts.items() if verdict != SOURCE_ERROR)
    return {"frames": frames, "inspected": inspected, "rejects": rejects,
            "reject_rate": rejects / inspected if inspected else 0.0}


def unfired_rejects(df: pd.DataFrame) -> pd.DataFrame:
    """The rows whose reject hook (ejector, PLC signal) failed: flagged, but maybe not taken off the line."""
    from edge_runtime.sinks.record import REJECT_HOOK_FAILED

    if df.empty or "error" not in df:
        return df.head(0)
    return df[df["error"].fillna("").str.contains(REJECT_HOOK_FAILED, regex=False)]


EXPORT_COLUMNS = ["id", "time", "time_utc", "source", "frame_id", "verdict", "score", "frame_term", "warn_threshold",
                  "defect_threshold", "defect_class", "confidence", "reviewed_as", "reviewed_class", "reviewed_by",
                  "latency_ms", "neighbour_correlation", "mean_grey", "profile", "model_sha256", "error", "overlay_path",
                  "frame_path"]


def to_csv(df: pd.DataFrame) -> bytes:
    """The rows with the columns that let an export stand alone: when (local and UTC), what was judged, by which
    thresholds and model files, and what an operator said of it."""
    out = df[[c for c in EXPORT_COLUMNS if c in df]].copy()
    if "model_sha256" in out:
        out["model_sha256"] = [json.dumps(v, sort_keys=True) if isinstance(v, dict) else v for v in out["model_sha256"]]
    return out.to_csv(index=False).encode()


def overlay_file(path: str | None, allowed_roots: Sequence[Path]) -> Path | None:
    """The overlay image of a log row, only if it exists inside an allowed folder."""
    if not path:
        return None
    roots = tuple(Path(r) for r in allowed_roots)
    candidates = [Path(path)] if Path(path).is_absolute() else [r / path for r in roots]
    for candidate in candidates:
        if candidate.is_file() and is_inside(roots, candidate):
            return candidate
    return None
