"""What the measurement commands of ``export`` share: their arguments and where their results go."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_runtime.anomaly import AnomalyScorer
from edge_runtime.datasets import Sample
from edge_runtime.evaluation_cases import select_split
from edge_runtime.inspector import session
from edge_runtime.manifest import MANIFEST_NAME, ProfileConfig, load_manifest, profile_config
from edge_runtime.result import flagged

ROOT = Path(__file__).resolve().parents[1]


def study_parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """``--profile`` (default neu-steel) and ``--manifest``; the module docstring's first line as description."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0])
    parser.add_argument("--profile", default="neu-steel")
    parser.add_argument("--manifest", type=Path, default=ROOT / MANIFEST_NAME)
    return parser


def write_result(profile: str, name: str, data: dict) -> Path:
    """``results/<profile>/<name>.json``, indented, with a final newline."""
    out = ROOT / "results" / profile / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    return out


def split_figures(images: np.ndarray, labels: np.ndarray, crops: np.ndarray, warn: float, defect: float) -> dict:
    """One split's figures from its scores (``images``: its defect images', labelled by ``labels``; ``crops``:
    its calibration normals'): recall and images flagged at warn and at defect, the misses at warn per class,
    the normals flagged at warn."""
    at_warn, at_defect = flagged(images, warn), flagged(images, defect)
    return {"gate_recall_warn": float(np.mean(at_warn)), "gate_recall_defect": float(np.mean(at_defect)),
            "flagged_warn": int(np.sum(at_warn)), "flagged_defect": int(np.sum(at_defect)),
            "missed_warn_per_class": {label: int(np.sum(~at_warn[labels == label])) for label in sorted(set(labels))},
            "normals_flagged_warn": float(np.mean(flagged(crops, warn)))}


def share_at_or_over(scores: np.ndarray, threshold: float) -> float | None:
    """The share of ``scores`` at or over ``threshold``; None for no scores (a study run without those frames)."""
    return float(np.mean(flagged(scores, threshold))) if len(scores) else None


def share_text(share: float | None) -> str:
    return "-" if share is None else f"{share:.3f}"


@dataclass(frozen=True)
class DeployedGate:
    """What a measurement of a deployed profile starts from."""

    entry: dict  # the profile's manifest entry
    config: ProfileConfig  # as the runtime reads it
    profile: object  # the training profile (``training.profiles.Profile``): seed, calibration normals, rates
    scorer: AnomalyScorer  # the deployed gate, scoring as the runtime does
    splits: dict[str, list[Sample]]  # train / val / test, as the manifest records them


def deployed_gate(manifest_path: Path, profile_name: str) -> DeployedGate:
    from training.data import readable
    from training.profiles import trained_profile

    manifest = load_manifest(manifest_path)
    config = profile_config(manifest, manifest_path, profile_name)
    profile = trained_profile(profile_name)
    samples, entry = profile.load(), manifest["profiles"][profile_name]
    splits = {name: readable(select_split(samples, entry["split"], name), config.preprocess)  # as the export read them
              for name in ("train", "val", "test")}
    return DeployedGate(entry, config, profile, AnomalyScorer.for_profile(session(config.autoencoder.verify()), config),
                        splits)
