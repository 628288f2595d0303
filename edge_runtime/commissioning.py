"""Commissioning: set a profile's thresholds on the line's own defect-free frames.

The thresholds shipped with a profile come from its training data. Where that data has no
defect-free frames of the line's size (NEU-DET: small box-free crops only), a threshold set
for 5% false alarms on crops flags far more whole frames (``python -m studies.area_study``).
And a new camera, lens or lighting moves every score. So a line is commissioned on its own
frames: record a few hundred frames of good strip, score them with the deployed gate, and
put each threshold at the score quantile that gives the wanted false-alarm rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .anomaly import frame_term_references
from .drift import MEASURES, Baseline
from .datasets import IMAGE_SUFFIXES, frames_and_masks
from .errors import InspectionError
from .manifest import FrameTerm
from .preprocess import preprocess
from .result import flagged
from .selftest import SCORE_RTOL


class CommissioningError(ValueError):
    """The frames given cannot set thresholds (too few, none readable, rates out of order)."""


@dataclass(frozen=True)
class GateScores:
    """Anomaly scores of defect-free frames, the frames that could not be inspected (path, reason), and
    every drift measure of the scored frames (``edge_runtime.drift.MEASURES``: column -> values, same order
    as ``scores``)."""

    scores: np.ndarray
    failed: tuple[tuple[str, str], ...]
    measured: dict[str, np.ndarray]
    sizes: tuple[tuple[int, int], ...] = ()  # the distinct frame sizes (width, height) scored
    frames: tuple[str, ...] = ()  # the scored frames' paths, in the order of ``scores``


# A commissioning is refused (unless the operator insists) when the deployed defect threshold flags more than
# this share of the "defect-free" frames: 50 times its nominal 1%. The gate then reads most of them as
# defects: frames of another product, a camera or lamp far from the training's, or defects among them.
SHIFT_LIMIT = 0.5


@dataclass(frozen=True)
class FrameFiles:
    """The frames found under the paths given, and the pixel masks found beside them and left out."""

    frames: list[Path]
    masks: tuple[Path, ...]


def frame_files(paths: Sequence[Path]) -> FrameFiles:
    """Image files among ``paths``; folders are searched recursively. In a folder, a ``.png`` beside a
    same-name image is that image's mask (the magnetic-tile layout) and is left out; a file named
    explicitly is always a frame. A missing path, or no frame at all, is an error."""
    frames: list[Path] = []
    masks: list[Path] = []
    for path in paths:
        if path.is_dir():
            found, beside = frames_and_masks(path)  # broken links too: reported when read
            frames += found
            masks += beside
        elif path.is_file():
            frames.append(path)
        else:
            raise CommissioningError(f"{path} does not exist")
    if not frames:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise CommissioningError(f"no image files ({suffixes}) under {', '.join(map(str, paths))}")
    return FrameFiles(_each_once(frames), tuple(_each_once(masks)))


def _each_once(files: list[Path]) -> list[Path]:
    """``files`` without repeats of one file (a folder given twice, or with a sub-folder of it): a frame
    counted twice would fake the frame count a false-alarm rate needs and halve the rate it reaches."""
    seen: set[Path] = set()
    kept = []
    for file in files:
        real = file.resolve()
        if real not in seen:
            seen.add(real)
            kept.append(file)
    return kept


def minimum_frames(false_alarm_rate: float) -> int:
    """Fewest frames for which a ``false_alarm_rate`` quantile rests on at least one frame above it."""
    return math.ceil(1.0 / false_alarm_rate)


def minimum_frames_present(frames: int, false_alarm_rate: float) -> None:
    """Refuse, before scoring anything, a set of frames too small for the rate (``propose_thresholds``
    checks the frames actually scored)."""
    if 0.0 < false_alarm_rate and frames < minimum_frames(false_alarm_rate):
        raise CommissioningError(f"{frames} defect-free frames given; a {false_alarm_rate:.1%} false-alarm "
                                 f"threshold needs at least {minimum_frames(false_alarm_rate)}")


def threshold_for_false_alarm(normal_scores: np.ndarray, max_rate: float) -> float:
    """A threshold that flags at most ``max_rate`` of ``normal_scores`` (the rule is ``score >= threshold``), set a
    margin above the highest score it passes: one float step above it, a PC whose arithmetic differs in the last
    digit would flag that frame. The margin is the self-test's score tolerance (``SCORE_RTOL``), so a PC that
    passes the self-test keeps the frames' verdicts; it stops halfway to the next higher score."""
    if not len(normal_scores):
        raise CommissioningError("no normal frames with scores")
    ordered = np.sort(np.asarray(normal_scores, float))
    allowed = int(math.floor(max(0.0, min(1.0, max_rate)) * len(ordered) + 1e-9))
    if allowed >= len(ordered):
        return float(ordered[0])
    passed = ordered[len(ordered) - allowed - 1]
    threshold = passed + SCORE_RTOL * abs(passed)
    higher = ordered[ordered > passed]  # scores tied with ``passed`` are passed with it, whatever the margin
    if len(higher):
        threshold = min(threshold, (passed + higher[0]) / 2)
    return float(max(threshold, np.nextafter(passed, np.inf)))


def inspected(inspector, paths: Sequence[Path], batch: int = 16,
              progress: Callable[[int, int], None] | None = None) -> Iterator[tuple[Path, Any]]:
    """(path, ``InspectionResult`` or ``InspectionError``) per frame, in order, ``batch`` frames per
    ``Inspector.inspect_batch`` call: exactly the runtime's preprocessing and scoring."""
    for start in range(0, len(paths), batch):
        chunk = list(paths[start: start + batch])
        yield from zip(chunk, inspector.inspect_batch(chunk))
        if progress:
            progress(min(start + batch, len(paths)), len(paths))


def score_frames(inspector, paths: Sequence[Path], batch: int = 16,
                 progress: Callable[[int, int], None] | None = None) -> GateScores:
    """The deployed pipeline's anomaly score of each frame; frames that cannot be inspected are listed,
    not scored. Only each frame's numbers are kept, never its result (a 1920 x 1200 frame's maps are 26 MB: 500
    of them would not fit a line PC's memory)."""
    values: dict[str, list[float]] = {m.column: [] for m in MEASURES}
    failed, frames, sizes = [], [], set()
    for path, result in inspected(inspector, paths, batch, progress):
        if isinstance(result, InspectionError):
            failed.append((str(path), str(result)))
            continue
        for measure in MEASURES:
            values[measure.column].append(getattr(result, measure.result_field))
        sizes.add((result.anomaly_map.shape[1], result.anomaly_map.shape[0]))
        frames.append(str(path))
    measured = {column: np.array(kept, float) for column, kept in values.items()}
    return GateScores(measured["score"], tuple(failed), measured, tuple(sorted(sizes)), tuple(frames))


@dataclass(frozen=True)
class Commissioning:
    """A line's defect-free frames scored for commissioning, the one computation behind ``calibrate`` and the
    dashboard's commissioning: the deployed gate's scores (``scored``), and the scores the proposed thresholds
    are in (``line_scores``), under the frame-level term's references or the mirror views' band re-measured on
    these frames where the gate has them (``frame_term``, ``views_from``; None otherwise)."""

    scored: GateScores
    line_scores: np.ndarray
    frame_term: FrameTerm | None
    views_from: float | None
    deployed_warn: float
    deployed_defect: float

    @property
    def deployed_rates(self) -> dict:
        """Shares of the frames the deployed thresholds flag (``flagged_rates``)."""
        return flagged_rates(self.scored.scores, self.deployed_warn, self.deployed_defect)

    @property
    def shifted(self) -> bool:
        """The deployed gate reads most of these "defect-free" frames as defects (``SHIFT_LIMIT``)."""
        return self.deployed_rates["flagged_defect"] > SHIFT_LIMIT

    def shift_message(self, insist: str) -> str:
        """Why thresholds set on shifted frames are not saved unless the operator insists (``insist``: how)."""
        return (f"the deployed gate flags {self.deployed_rates['flagged_defect']:.0%} of these frames at its defect "
                "threshold: it reads most of these 'defect-free' frames as defects. Frames of another product, a "
                f"camera or lamp far from the training's, or defects among them? Look at them; to commission on them "
                f"anyway, {insist}.")

    def size_warning(self) -> str | None:
        sizes = self.scored.sizes
        if len(sizes) <= 1:
            return None
        named = ", ".join(f"{w}x{h}" for w, h in sizes[:5]) + (f" and {len(sizes) - 5} more" if len(sizes) > 5 else "")
        return f"the frames come in {len(sizes)} sizes ({named}); a line's camera gives one: are they all from it?"

    def propose(self, false_alarm_rate: float, warn_false_alarm_rate: float) -> dict:
        return propose_thresholds(self.line_scores, false_alarm_rate, warn_false_alarm_rate)

    def baselines(self, defect: float) -> dict[str, dict | None]:
        """The drift checks' baselines over the frames under the ``defect`` threshold (``drift_baselines``)."""
        return drift_baselines(self.scored.measured, self.line_scores, defect)

    def record(self, frames: int, false_alarm_rate: float, warn_false_alarm_rate: float, sources: Sequence[Path],
               **extra: Any) -> dict:
        """The manifest's ``commissioned`` entry: how many frames, the rates, where an audit finds the frames."""
        return {"frames": frames, "false_alarm_rate": false_alarm_rate,
                "warn_false_alarm_rate": warn_false_alarm_rate,
                "sources": [str(Path(p).resolve()) for p in sources], **extra}


def commission(inspector, paths: Sequence[Path], progress: Callable[[int, int], None] | None = None) -> Commissioning:
    """Score a line's defect-free frames with the deployed pipeline and re-measure, on them, what the gate's
    score is relative to (the frame-level term's references, or the mirror views' band)."""
    scored = score_frames(inspector, paths, progress=progress)
    if not len(scored.scores):
        raise CommissioningError(f"none of the {len(paths)} frames could be inspected")
    frame_term = remeasured_frame_term(inspector, paths)
    views_from = remeasured_views_from(inspector, paths)
    rescoring = inspector.with_frame_term(frame_term) if frame_term is not None \
        else inspector.with_views(3, views_from) if views_from is not None else None
    line_scores = scored.scores if rescoring is None else score_frames(rescoring, paths).scores
    return Commissioning(scored, line_scores, frame_term, views_from, inspector.thresholds.warn,
                         inspector.thresholds.defect)


def propose_thresholds(scores: np.ndarray, false_alarm_rate: float, warn_false_alarm_rate: float) -> dict:
    """warn / defect thresholds for the two rates on defect-free ``scores``, with the rates they reach there."""
    if not 0.0 < false_alarm_rate <= warn_false_alarm_rate < 1.0:
        raise CommissioningError(f"need 0 < false-alarm rate ({false_alarm_rate}) <= warn false-alarm rate "
                                 f"({warn_false_alarm_rate}) < 1")
    needed = minimum_frames(false_alarm_rate)
    if len(scores) < needed:
        raise CommissioningError(f"{len(scores)} defect-free frames scored; a {false_alarm_rate:.1%} false-alarm "
                                 f"threshold needs at least {needed}")
    defect = threshold_for_false_alarm(scores, false_alarm_rate)
    warn = threshold_for_false_alarm(scores, warn_false_alarm_rate)
    return {"warn": warn, "defect": defect, "false_alarm_rate": false_alarm_rate,
            "warn_false_alarm_rate": warn_false_alarm_rate, "frames": int(len(scores)),
            **flagged_rates(scores, warn, defect)}


def drift_baselines(measured: dict[str, np.ndarray], scores: np.ndarray, defect: float) -> dict[str, dict | None]:
    """The drift checks' baselines (``edge_runtime.drift``; manifest key -> ``Baseline.to_dict()``) from the
    line's defect-free frames under the ``defect`` threshold: the checks count the frames the gate passes or
    warns on, so the baselines hold the same ones. ``measured``: each measure's values, frame by frame with
    ``scores`` (the score's own values are ``scores``: after re-measured frame-term references they are not
    ``measured["score"]``). None for a measure whose frames are too few (the thresholds are still written)."""
    under = np.asarray(scores) < defect
    values = {**measured, "score": scores}
    return {m.baseline_key: _baseline(np.asarray(values[m.column], float)[under]) for m in MEASURES}


def _baseline(values: np.ndarray) -> dict | None:
    try:
        return Baseline.from_values(values).to_dict()
    except ValueError:
        return None


def flagged_rates(scores: np.ndarray, warn: float, defect: float) -> dict:
    """Share of ``scores`` at or above each threshold."""
    return {"flagged_warn": float(np.mean(flagged(scores, warn))), "flagged_defect": float(np.mean(flagged(scores, defect)))}


def remeasured_frame_term(inspector, paths: Sequence[Path]) -> FrameTerm | None:
    """The profile's frame-level term with its references re-measured on the line's defect-free frames
    (None for a gate without one). Its two parts are in units of their typical value on normal
    frames; a new camera moves both, and not by the same factor, so the balance the weight was
    chosen for holds only when both are measured on the line's frames
    (``python -m studies.camera_study``). Frames that cannot be read are skipped; ``score_frames``
    names them."""
    term = inspector.frame_term_references
    if term is None:
        return None
    plain = inspector.scorer.with_frame_term(None)
    return frame_term_references(plain, _readable_frames(paths, inspector.config.preprocess), term.weight)


def remeasured_views_from(inspector, paths: Sequence[Path]) -> float | None:
    """For a gate that runs its mirror views from a band (manifest ``score.views_band``, a quantile of
    defect-free one-view scores), the band set again on the line's own frames; None otherwise. Whole
    frames of a line score otherwise than the crops the export set it on, and the band decides how
    many frames pay for three views."""
    quantile = inspector.config.raw["autoencoder"]["score"].get("views_band")
    if inspector.config.score_views != 3 or quantile is None:
        return None
    one_view = score_frames(inspector.with_views(1), paths).scores
    if not len(one_view):
        raise CommissioningError("no frame could be scored to set the mirror views' band on")
    return float(np.quantile(one_view, quantile))


def _readable_frames(paths: Sequence[Path], spec) -> Iterator[np.ndarray]:
    for path in paths:
        try:
            yield preprocess(path, spec)
        except InspectionError:
            continue
