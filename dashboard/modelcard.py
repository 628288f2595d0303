"""Model-card facts from the manifest: model files + sha256 check, classes, metrics (no UI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from dashboard.config import is_inside
from edge_runtime.manifest import changes_newest_first, profile_name, sha256_of

PLOT_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg")


def profile_entry(manifest: dict, profile: str | None) -> tuple[str, dict]:
    """(name, entry) of the profile (``edge_runtime.manifest.profile_name``'s rule); ManifestError if none."""
    name = profile_name(manifest, profile)
    return name, manifest["profiles"][name]


def _file_entries(node: Any, role: str = "") -> Iterator[tuple[str, dict]]:
    """Every dict under ``node`` that names a model file (a path with a sha256, or an .onnx path)."""
    if isinstance(node, dict):
        path = node.get("path", node.get("file"))
        if isinstance(path, str) and ("sha256" in node or path.endswith(".onnx")):
            yield role or "model", node
        for key, value in node.items():
            yield from _file_entries(value, f"{role}.{key}" if role else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _file_entries(value, f"{role}[{i}]")


def is_runtime_role(role: str) -> bool:
    """Files the line-side runtime loads (not training artefacts such as Keras weights)."""
    return "keras" not in role and "weights" not in role


def model_files(entry: dict, manifest_path: Path) -> list[dict]:
    """One row per model file: role, path, expected/actual sha256, status verified|MISMATCH|missing|refused."""
    base = Path(manifest_path).resolve().parent
    rows = []
    for role, spec in _file_entries(entry.get("models", entry)):
        rel = spec.get("path", spec.get("file"))
        path = (base / rel).resolve()
        expected = spec.get("sha256")
        row = {"role": role, "file": rel, "expected_sha256": expected, "sha256": None,
               "size_mb": None, "status": "missing", "runtime": is_runtime_role(role)}
        if not is_inside((base,), path):
            row["status"] = "refused (outside the manifest folder)"
        elif path.is_file():
            row["sha256"] = sha256_of(path)
            row["size_mb"] = round(path.stat().st_size / 1e6, 2)
            row["status"] = "verified" if expected and row["sha256"] == expected else (
                "MISMATCH" if expected else "no sha256 in manifest")
        rows.append(row)
    return rows


def _text(value: Any, limit: int = 120) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list) and value and isinstance(value[0], list):
        return f"{len(value)}x{len(value[0])} matrix (see plots)"
    text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def flatten(data: Any, prefix: str = "") -> list[dict]:
    """Nested metrics dict -> rows of (metric, value-as-text) with dotted names (one column type)."""
    rows = []
    if isinstance(data, dict):
        for key, value in data.items():
            rows.extend(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    else:
        rows.append({"metric": prefix, "value": _text(data)})
    return rows


def find_section(entry: dict, manifest: dict, *names: str) -> Any:
    for name in names:
        if name in entry:
            return entry[name]
    for name in names:
        if name in manifest:
            return manifest[name]
    return None


def threshold_changes(thresholds: dict) -> list[dict]:
    """The thresholds' change log (``edge_runtime.manifest.save_thresholds``), newest first, one row each; a
    restore's row is followed by the rows it carried over from the manifest it restored."""
    rows = []
    for change in changes_newest_first(thresholds):
        rows.append({"when": change.get("at"), "by": change.get("by"), "how": change.get("how"),
                     "warn": f"{_text(change.get('previous_warn'))} -> {_text(change.get('warn'))}",
                     "defect": f"{_text(change.get('previous_defect'))} -> {_text(change.get('defect'))}",
                     "reason": change.get("reason") or "(none given)", "backup": change.get("backup"),
                     "carried over from": change.get("carried_over_from")})
    return rows


_NORMALISATION_WORDS = {"frame_mean": "divided by its own mean", "frame_median": "divided by its own median"}


def score_description(entry: dict) -> str | None:
    """One paragraph on how the anomaly score is computed, from the manifest's ``autoencoder.score``."""
    score = (entry.get("autoencoder") or {}).get("score")
    if not isinstance(score, dict):
        return None
    parts = [f"Gaussian smoothing {score.get('sigma_cells', '?')} map cells"]
    if score.get("views", 1) == 3:
        views = "error cells averaged over the frame and its two mirror images"
        if score.get("views_from") is not None:
            views += f" where the frame alone scores {_text(score['views_from'])} or more"
        parts.insert(0, views)
    if score.get("ignore_border"):
        parts.append(f"outer {float(score['ignore_border']):.0%} of the frame left out")
    if score.get("normalise", "none") != "none":
        words = _NORMALISATION_WORDS.get(score["normalise"], f"normalised ({score['normalise']})")
        if score.get("level_cap"):
            words += f" (at most {_text(score['level_cap'])})"
        if float(score.get("level_power", 1.0)) != 1.0:
            words += f" raised to the power {_text(score['level_power'])}"
        parts.append(words)
    text = f"The score is the maximum of the anomaly map ({'; '.join(parts)})."
    term = score.get("frame_term")
    if isinstance(term, dict):
        text += (f" A frame-level autoencoder adds its reconstruction error to every scored cell, in units of its "
                 f"typical value on defect-free frames, weighted {_text(term.get('weight', 1.0))}; the map itself is "
                 f"first put in units of its typical peak. Defects that change the whole frame's texture lift "
                 f"the whole map.")
    detector = score.get("residual_detector")
    if isinstance(detector, dict):
        beside = ", beside the cell itself" if detector.get("input") == "residual+cell" else ""
        kinds = f" ({', '.join(detector['kinds'])})" if detector.get("kinds") else ""
        camera = f", also{_camera_copies(detector)}," if detector.get("camera_copies") else ","
        text += (f" A residual detector, trained on synthetic defects{kinds} painted on defect-free texture{camera} "
                 f"reads how each cell departs from its reconstruction{beside}; its map "
                 f"(smoothed {_text(detector.get('sigma_cells'))} "
                 f"cells, times {_text(detector.get('scale'))}) joins the error map by the larger of the two at "
                 f"each pixel.")
    return text


def classifier_description(entry: dict) -> str | None:
    """One paragraph on what the classifier sees and what its training made it tolerate, from the manifest."""
    classifier = entry.get("classifier")
    if not isinstance(classifier, dict):
        return None
    window = classifier.get("stem_window")
    sees = (f"a window of {window[0]}x{window[1]} stem cells ({_text(classifier.get('region_side'))} px) around the "
            f"anomaly peak" if window else "the whole frame")
    text = (f"A MobileNetV2 head ({entry.get('precision', 'fp32')}) continues from the gate's backbone and sees "
            f"{sees}; Grad-CAM shows where it looked.")
    if classifier.get("camera_copies"):
        text += f" It was trained on its frames and{_camera_copies(classifier)}."
    return text


def _camera_copies(entry: dict) -> str:
    copies = int(entry["camera_copies"])
    return (f" on {copies} cop{'y' if copies == 1 else 'ies'} of each training frame seen through another camera "
            f"(a random defocus, sensor noise, sharpening or JPEG change)")


def figures_at_other_thresholds(thresholds: dict) -> str | None:
    """A note for the metrics table where the thresholds in use are not the export's: the manifest's test figures
    were measured at the export's (the oldest change's values before it), so they do not describe the gate as it
    runs now. None where the thresholds are as exported."""
    changes = changes_newest_first(thresholds)
    if not changes:
        return None
    first = changes[-1]
    exported = (first.get("previous_warn"), first.get("previous_defect"))
    if exported == (thresholds.get("warn"), thresholds.get("defect")):
        return None
    return (f"The test figures below were measured at the export's thresholds (warn {_text(exported[0])}, defect "
            f"{_text(exported[1])}); the thresholds in use are warn {_text(thresholds.get('warn'))}, defect "
            f"{_text(thresholds.get('defect'))}, so the gate's recall and false alarms differ from them "
            "(`python -m edge_runtime evaluate` measures them at the thresholds in use).")


def result_plots(results_dir: Path, profile: str | None, limit: int = 24) -> list[Path]:
    """Plot images in ``results_dir`` (recursively, 2 levels), this profile's first."""
    root = Path(results_dir)
    if not root.is_dir():
        return []
    files = [p for p in sorted(root.glob("*")) + sorted(root.glob("*/*"))
             if p.suffix.lower() in PLOT_SUFFIXES and p.is_file() and is_inside((root.resolve(),), p)]
    files = [p for p in files if not p.name.startswith("dashboard_")]
    tags = {profile or "", (profile or "").replace("-", "_")} - {""}
    mine = [p for p in files if any(t in str(p.relative_to(root)) for t in tags)]
    return (mine or files)[:limit]


def selftest_rows(inspector: Any) -> list[dict]:
    """One row per golden frame (``edge_runtime.selftest``): recorded and computed score, the largest
    class-probability difference, passed."""
    from edge_runtime.selftest import run_selftest

    return [{"frame": check.name, "recorded score": check.expected_score, "score now": check.score,
             "largest probability difference": check.max_probability_difference, "passed": check.passed}
            for check in run_selftest(inspector)]
