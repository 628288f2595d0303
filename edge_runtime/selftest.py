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

# A different CPU's vector kernels move float32 results in the last digits, not more.
SCORE_RTOL = 1e-3
PROBABILITY_ATOL = 1e-3


@dataclass(frozen=True)
class GoldenCheck:
    """One golden frame: what the export recorded, what this PC computed, and whether they agree."""

    name: str
    expected_score: float
    score: float
    max_probability_difference: float

    @property
    def passed(self) -> bool:
        return (abs(self.score - self.expected_score) <= SCORE_RTOL * abs(self.expected_score)
                and self.max_probability_difference <= PROBABILITY_ATOL)


def golden_entry(inspector) -> dict:
    """The profile's ``golden`` manifest entry, for the precision the inspector runs."""
    entry = inspector.config.raw.get("golden")
    if not entry:
        raise ManifestError(f"profile '{inspector.profile}' has no golden frames: run python -m export.golden "
                            f"--profile {inspector.profile}")
    if entry["precision"] != inspector.precision:
        raise ManifestError(f"the golden frames were recorded at {entry['precision']} precision, the inspector "
                            f"runs {inspector.precision}: run python -m export.golden --profile {inspector.profile}")
    return entry


def run_selftest(inspector) -> list[GoldenCheck]:
    """Score every golden frame of the inspector's profile and compare it with the recorded result.
    A golden file that is missing or altered raises ``ModelIntegrityError``, like a model file."""
    entry = golden_entry(inspector)
    recorded = entry.get("frame_term")
    scoring = inspector if recorded is None else inspector.with_frame_term(FrameTerm(**recorded))
    root = inspector.manifest_path.resolve().parent
    checks = []
    for frame in entry["frames"]:
        path = ModelFile(root / frame["path"], frame["sha256"]).verify()
        result = scoring.inspect(path, source="selftest", always_classify=True)
        difference = max(abs(result.class_probabilities[name] - p) for name, p in frame["class_probabilities"].items())
        checks.append(GoldenCheck(Path(frame["path"]).stem, frame["anomaly_score"], result.anomaly_score, difference))
    return checks


def startup_check(inspector) -> tuple[bool, str]:
    """(may the capture loop start, what to tell the operator): the self-test before ``watch`` runs.
    A profile without golden frames (or a model-free stand-in, ``config`` None) starts with a note;
    a drifted frame stops it. A golden file
    that is missing or altered raises, like a model file."""
    if inspector.config is None or not inspector.config.raw.get("golden"):
        return True, "no golden frames in the manifest: self-test skipped (python -m export.golden records them)"
    checks = run_selftest(inspector)
    drifted = [check.name for check in checks if not check.passed]
    if drifted:
        return False, (f"self-test failed: golden frame(s) {', '.join(drifted)} no longer score as the export "
                       f"recorded; this PC does not compute what the export computed (python -m edge_runtime "
                       f"selftest shows the figures)")
    return True, f"self-test passed ({len(checks)} golden frames)"
