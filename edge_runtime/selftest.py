"""Golden-frame self-test: does this PC compute what the export computed?

The export scores a few committed frames with the deployed pipeline and records the results in
the manifest's ``golden`` entry (``python -m export.golden``). On a line PC, after an update of
onnxruntime, OpenCV or numpy, a new CPU, or a copied model folder, ``python -m edge_runtime
selftest`` scores the same files again and compares: a preprocessing or runtime change that
silently moves scores shows here, not in the reject rate weeks later.

What is compared does not depend on a line's commissioning: the anomaly score under the frame
term references the export used (commissioning may re-measure them) and the class
probabilities of a classification forced on every frame. Thresholds are not involved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import ManifestError
from .manifest import FrameTerm, ModelFile

# float32 results move in the last digits between CPUs; int8 kernels differ more (onnxruntime picks
# another kernel where the CPU has VNNI), so an int8 head is held to its top class and a looser bound.
SCORE_RTOL = 1e-3
PROBABILITY_ATOL = {"fp32": 1e-4, "int8": 0.05}


@dataclass(frozen=True)
class GoldenCheck:
    """One golden frame: what the export recorded, what this PC computed, and whether they agree.
    The score is compared in its two parts where the gate has a frame-level term (the map's own
    part and the term), so a large term cannot hide a drifted map."""

    name: str
    expected_score: float
    score: float
    expected_frame_term: float
    frame_term: float
    max_probability_difference: float
    same_top_class: bool
    probability_atol: float

    @property
    def passed(self) -> bool:
        return (_close(self.score - self.frame_term, self.expected_score - self.expected_frame_term)
                and _close(self.frame_term, self.expected_frame_term)
                and self.same_top_class and self.max_probability_difference <= self.probability_atol)


def _close(value: float, expected: float) -> bool:
    return abs(value - expected) <= SCORE_RTOL * abs(expected)


def golden_entry(inspector) -> dict:
    """The profile's ``golden`` manifest entry, recorded for the model files the inspector runs."""
    entry = inspector.config.raw.get("golden")
    if not entry:
        raise ManifestError(f"profile '{inspector.profile}' has no golden frames: run python -m export.golden "
                            f"--profile {inspector.profile}")
    if entry.get("models") != dict(inspector.model_sha256) or entry.get("precision") != inspector.precision:
        raise ManifestError(f"the golden frames were recorded for other model files or another precision than "
                            f"the inspector runs ({inspector.precision}): run python -m export.golden --profile "
                            f"{inspector.profile}")
    return entry


def run_selftest(inspector) -> list[GoldenCheck]:
    """Score every golden frame of the inspector's profile and compare it with the recorded result.
    A golden file that is missing or altered raises ``ModelIntegrityError``, like a model file; a
    malformed entry ``ManifestError``."""
    entry = golden_entry(inspector)
    try:
        recorded = entry.get("frame_term")
        scoring = inspector if recorded is None else inspector.with_frame_term(FrameTerm(**recorded))
        root = inspector.manifest_path.resolve().parent
        if not entry["frames"]:
            raise ValueError("it lists no frames, so a self-test would check nothing")
        return [_check(scoring, root, frame, PROBABILITY_ATOL[inspector.precision]) for frame in entry["frames"]]
    except (KeyError, TypeError, ValueError) as error:
        raise ManifestError(f"profile '{inspector.profile}': malformed golden entry ({error!r}): run python -m "
                            f"export.golden --profile {inspector.profile}") from error


def _check(inspector, root: Path, frame: dict, probability_atol: float) -> GoldenCheck:
    path = ModelFile(root / frame["path"], frame["sha256"], "golden frame").verify()
    result = inspector.inspect(path, source="selftest", always_classify=True)
    expected = frame["class_probabilities"]
    difference = max(abs(result.class_probabilities[name] - p) for name, p in expected.items())
    return GoldenCheck(Path(frame["path"]).stem, frame["anomaly_score"], result.anomaly_score,
                       frame["frame_term"] or 0.0, result.frame_term or 0.0, difference,
                       result.defect_class == max(expected, key=expected.get), probability_atol)


@dataclass(frozen=True)
class StartupCheck:
    """The self-test before a capture loop starts: may it start, what the run's record says of the self-test
    ("passed", "no golden frames" or "failed"), and what to tell the operator."""

    allowed: bool
    status: str
    message: str


def startup_check(inspector) -> StartupCheck:
    """The self-test before ``watch`` or the Live line runs. A profile without golden frames (or a model-free
    stand-in, ``config`` None) starts with a note, and its run says the self-test had nothing to check; a drifted
    frame stops it. A golden file that is missing or altered raises, like a model file."""
    if inspector.config is None or not inspector.config.raw.get("golden"):
        return StartupCheck(True, "no golden frames", "no golden frames in the manifest: self-test skipped "
                            "(python -m export.golden records them)")
    checks = run_selftest(inspector)
    drifted = [check.name for check in checks if not check.passed]
    if drifted:
        return StartupCheck(False, "failed", (
            f"self-test failed: golden frame(s) {', '.join(drifted)} no longer score as the export recorded; this "
            "PC does not compute what the export computed (python -m edge_runtime selftest shows the figures)"))
    return StartupCheck(True, "passed", f"self-test passed ({len(checks)} golden frames)")
