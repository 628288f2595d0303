"""Threshold-tuning maths for the Tuning page: score a validation folder, ROC, rates (no UI).

Rates are defined on the anomaly gate with the runtime's rule (``score >= threshold``
flags the frame): false-alarm rate = normal images flagged, escape rate = defect
images not flagged.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from edge_runtime.result import flagged

LAYOUTS = ("class folders", "magnetic-tile", "defect-free frames")
# Layouts whose normal images need no class name.
NAMED_NORMALS = ("class folders",)


def load_samples(folder: Path, layout: str, normal_class: str | None) -> list:
    """Samples of a validation folder, with any number of defect classes. "defect-free frames": every
    image under the folder is normal (commissioning a line on its own good frames)."""
    from edge_runtime.commissioning import frame_files
    from edge_runtime.datasets import Sample, load_class_folders, load_magnetic_tile

    if layout == "magnetic-tile":
        return load_magnetic_tile(folder, min_classes=0)
    if layout == "defect-free frames":
        return [Sample(path, None) for path in frame_files([folder]).frames]
    if not normal_class:
        raise ValueError("name the folder that holds the normal (defect-free) images")
    return load_class_folders(folder, normal_class=normal_class, min_classes=0)


def subsample(samples: Sequence, per_class: int | None, seed: int = 0) -> list:
    """At most ``per_class`` samples of each label (normal counts as one label), seeded."""
    if not per_class:
        return list(samples)
    groups: dict[Any, list] = {}
    for sample in samples:
        groups.setdefault(sample.label, []).append(sample)
    rng = random.Random(seed)
    out = []
    for label in sorted(groups, key=str):
        group = groups[label]
        out.extend(rng.sample(group, per_class) if len(group) > per_class else group)
    return out


def score_samples(inspector: Any, samples: Sequence, progress: Callable[[int, int], None] | None = None,
                  batch: int = 16) -> pd.DataFrame:
    """One row per image: path, label ('normal' for normal), is_normal, score and the other drift measures
    (``edge_runtime.drift.MEASURES``; NaN + error if failed)."""
    from edge_runtime.drift import MEASURES
    from edge_runtime.commissioning import inspected

    measures = [m for m in MEASURES if m.column != "score"]
    rows = []
    results = inspected(inspector, [s.path for s in samples], batch, progress)
    for sample, (_, result) in zip(samples, results):
        ok = not isinstance(result, Exception)
        rows.append({
            "path": str(sample.path), "label": sample.label or "normal", "is_normal": sample.is_normal,
            "score": float(result.anomaly_score) if ok else math.nan,
            **{m.column: float(getattr(result, m.result_field)) if ok else math.nan for m in measures},
            "error": None if ok else str(result),
        })
    return pd.DataFrame(rows, columns=["path", "label", "is_normal", "score", *(m.column for m in measures), "error"])


def _split(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    valid = df.dropna(subset=["score"])
    return (valid.loc[valid["is_normal"], "score"].to_numpy(float),
            valid.loc[~valid["is_normal"], "score"].to_numpy(float))


def rates(df: pd.DataFrame, threshold: float) -> dict[str, float]:
    normal, defect = _split(df)
    false_alarms = int(flagged(normal, threshold).sum())
    escapes = int((~flagged(defect, threshold)).sum())
    return {
        "threshold": float(threshold),
        "false_alarm_rate": false_alarms / len(normal) if len(normal) else math.nan,
        "escape_rate": escapes / len(defect) if len(defect) else math.nan,
        "false_alarms": false_alarms, "escapes": escapes, "normals": len(normal), "defects": len(defect),
    }


def roc(df: pd.DataFrame) -> dict[str, Any]:
    """ROC of the anomaly score (defect = positive): fpr, tpr, thresholds, auc."""
    from sklearn.metrics import roc_auc_score, roc_curve

    normal, defect = _split(df)
    if not len(normal) or not len(defect):
        raise ValueError("the ROC needs both normal and defect images with scores")
    y = np.r_[np.zeros(len(normal)), np.ones(len(defect))]
    s = np.r_[normal, defect]
    fpr, tpr, thr = roc_curve(y, s)
    return {"fpr": fpr, "tpr": tpr, "thresholds": thr, "auc": float(roc_auc_score(y, s))}


def threshold_for_false_alarm(df: pd.DataFrame, max_rate: float) -> float:
    """Lowest threshold whose false-alarm rate on the normal images is <= ``max_rate``
    (``edge_runtime.commissioning``, the rule ``python -m edge_runtime calibrate`` uses)."""
    from edge_runtime.commissioning import threshold_for_false_alarm as rule

    return rule(_split(df)[0], max_rate)  # CommissioningError is a ValueError


def minimum_frames(false_alarm_rate: float) -> int:
    """Fewest defect-free frames a commissioning at ``false_alarm_rate`` rests on (``calibrate``'s rule)."""
    from edge_runtime.commissioning import minimum_frames as rule

    return rule(false_alarm_rate)


def commission_folder(inspector: Any, samples: Sequence, progress: Callable[[int, int], None] | None = None
                      ) -> tuple[Any, pd.DataFrame]:
    """(``edge_runtime.commissioning.Commissioning``, one row per frame as ``score_samples`` gives) for a folder of
    defect-free frames: what ``python -m edge_runtime calibrate`` computes, the scores in the units of the
    frame-level term's references or the mirror views' band re-measured on these frames where the gate has them."""
    from edge_runtime.commissioning import commission
    from edge_runtime.drift import MEASURES

    line = commission(inspector, [s.path for s in samples], progress)
    measures = [m for m in MEASURES if m.column != "score"]
    scored = pd.DataFrame({"path": list(line.scored.frames), "label": "normal", "is_normal": True,
                           "score": line.line_scores, **{m.column: line.scored.measured[m.column] for m in measures},
                           "error": None})
    failed = pd.DataFrame({"path": [path for path, _ in line.scored.failed], "label": "normal", "is_normal": True,
                           "score": math.nan, **{m.column: math.nan for m in measures},
                           "error": [reason for _, reason in line.scored.failed]})
    return line, pd.concat([scored, failed], ignore_index=True) if len(failed) else scored


def in_deployed_units(df: pd.DataFrame, line: Any) -> pd.DataFrame:
    """``commission_folder``'s rows with the deployed gate's scores (``line.scored``), in the units of the thresholds
    in use, where the proposal's are in re-measured ones."""
    deployed = df.copy()
    deployed.loc[deployed["error"].isna(), "score"] = line.scored.scores  # scored rows first, in order
    return deployed


def commissioning_to_save(line: Any, warn: float, defect: float, folder: Path) -> dict:
    """``save_thresholds``' commissioning arguments for thresholds set on a folder of defect-free frames, as
    ``calibrate --write`` saves them: the ``commissioned`` record (the rates are the shares of these frames the
    saved thresholds flag), the drift baselines under the defect threshold, the re-measured references or band."""
    from edge_runtime.commissioning import flagged_rates

    flagged = flagged_rates(line.line_scores, warn, defect)
    record = line.record(int(len(line.line_scores)), round(flagged["flagged_defect"], 4),
                         round(flagged["flagged_warn"], 4), [folder], set_with="dashboard threshold tuning")
    return {"commissioned": record, "baselines": line.baselines(defect), "frame_term": line.frame_term,
            "views_from": line.views_from}


def sentence(text: str) -> str:
    """``text`` (a message the CLI prints after "error: ") as a sentence on the page."""
    return text[:1].upper() + text[1:]


def rates_table(df: pd.DataFrame, current: tuple[float, float], proposed: tuple[float, float],
                current_df: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rates at the current and proposed thresholds; ``current_df``: the scores in the units the current thresholds
    are in, where a commissioning re-measured the gate's references (``in_deployed_units``)."""
    rows = []
    for setting, (warn, defect), frame in (("current", current, df if current_df is None else current_df),
                                           ("proposed", proposed, df)):
        for name, t in (("warn", warn), ("defect", defect)):
            r = rates(frame, t)
            rows.append({"setting": setting, "threshold": name, "value": t,
                         "false-alarm rate": r["false_alarm_rate"], "escape rate": r["escape_rate"],
                         "false alarms": r["false_alarms"], "escapes": r["escapes"]})
    return pd.DataFrame(rows)


def histogram_figure(df: pd.DataFrame, current: tuple[float, float] | None, proposed: tuple[float, float]):
    """Score histograms with the thresholds drawn; ``current`` None where the scores are in other units than the
    thresholds in use (a commissioning that re-measured the gate's references)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    normal, defect = _split(df)
    fig = Figure(figsize=(6.4, 3.4), dpi=100)
    ax = fig.subplots()
    both = np.r_[normal, defect]
    bins = np.linspace(both.min(), both.max(), 40) if len(both) and both.max() > both.min() else 20
    ax.hist(normal, bins=bins, alpha=0.6, color="#21a366", label=f"normal ({len(normal)})")
    ax.hist(defect, bins=bins, alpha=0.6, color="#d62728", label=f"defect ({len(defect)})")
    for (warn, dfct), style, tag in [(t, style, tag) for t, style, tag in
                                     ((current, "-", "current"), (proposed, "--", "proposed")) if t is not None]:
        ax.axvline(warn, color="#f0a202", ls=style, lw=1.5, label=f"{tag} warn {warn:.4g}")
        ax.axvline(dfct, color="#7b1113", ls=style, lw=1.5, label=f"{tag} defect {dfct:.4g}")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("images")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def roc_figure(curve: dict, points: dict[str, tuple[float, float]]):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.6, 3.4), dpi=100)
    ax = fig.subplots()
    ax.plot(curve["fpr"], curve["tpr"], color="#1f77b4", label=f"AUC {curve['auc']:.3f}")
    ax.plot([0, 1], [0, 1], color="#999999", lw=0.8, ls=":")
    for (name, (fpr, tpr)), marker in zip(points.items(), "osD^"):
        ax.plot([fpr], [tpr], marker=marker, ls="", label=name)
    ax.set_xlabel("false-alarm rate")
    ax.set_ylabel("detection rate (1 - escape)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
