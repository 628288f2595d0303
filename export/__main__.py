"""``python -m export --profile NAME``: Keras -> ONNX, parity, threshold calibration, manifest.

Reads the Keras weights that ``python -m training`` wrote to ``models/<profile>/keras/``,
writes ``models/<profile>/{autoencoder,classifier}.onnx`` + the Grad-CAM head, calibrates
the anomaly thresholds on the validation split through the runtime's scoring code,
measures the test split, and records everything in ``models.manifest.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

from edge_runtime.anomaly import FRAME_OUTPUT, MAP_OUTPUT, RESIDUAL_OUTPUT, STEM_OUTPUT, AnomalyScorer
from edge_runtime.classifier import DefectClassifier, window_around_peak
from edge_runtime.datasets import split_digests, split_samples
from edge_runtime.inspector import session
from edge_runtime.manifest import MANIFEST_NAME
from edge_runtime.preprocess import preprocess
from export import calibrate
from export.gate_intervals import intervals
from export.manifest_writer import model_entry, update_manifest, versions
from training.data import readable
from training.profiles import trained_profile, with_overrides
from training.synthetic_defects import KINDS

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("export")


def _export_classifier(weights: Path, out: Path, n_classes: int, stems: list[np.ndarray]) -> dict:
    """Classifier head -> ONNX (gate stem in; probabilities + feature map out) and the Grad-CAM kernel;
    parity on random and real stems."""
    import keras

    from export.onnx_export import convert, max_abs_difference
    from training.backbone import profile_backbone
    from training.classifier import build_classifier, head_model

    base, full = build_classifier(n_classes, base=profile_backbone(weights))
    full.load_weights(weights / "classifier.weights.h5")
    head = head_model(base, full)
    head = keras.Model(head.input, head.outputs[:2])
    convert(head, (None, None, None, stems[0].shape[-1]), ["probabilities", "features"], out / "classifier.onnx",
            input_name="stem")
    kernel, bias = full.get_layer("logits").get_weights()
    np.savez(out / "classifier_head.npz", kernel=kernel, bias=bias)
    rng = np.random.default_rng(0)
    random_stems = [rng.normal(0, 2, (2, *stems[0].shape)).astype(np.float32)]
    parity = np.max([max_abs_difference(head, out / "classifier.onnx", batch)
                     for batch in random_stems + [s[None] for s in stems]], axis=0)
    return {"kernel": kernel, "parity": dict(zip(["probabilities", "features"], map(float, parity)))}


def _export_autoencoder(weights: Path, out: Path, ae_config: dict, profile, real,
                        val: list) -> tuple[AnomalyScorer, dict]:
    """Gate -> ONNX (backbone + autoencoder + error map, stem, frame-level error where trained); parity
    on random and real padded frames. A frame-level term gets its references from ``val``'s normals."""
    from export.onnx_export import convert, max_abs_difference
    from training.train_autoencoder import load_anomaly_model

    anomaly = load_anomaly_model(weights)
    outputs = [MAP_OUTPUT, STEM_OUTPUT] + ([FRAME_OUTPUT] if ae_config.get("frame") else []) \
        + ([RESIDUAL_OUTPUT] if ae_config.get("residual_detector") else [])
    convert(anomaly, (None, None, None, 1), outputs, out / "autoencoder.onnx")
    gate = session(out / "autoencoder.onnx")
    scorer = calibrate.exported_scorer(gate, profile, ae_config, val)
    random_frames = np.random.default_rng(0).random((2, 208, 256, 1), np.float32)
    parity = np.max([max_abs_difference(anomaly, out / "autoencoder.onnx", batch)
                     for batch in [random_frames] + [scorer.model_input(f)[0][..., None] for f in real]], axis=0)
    return scorer, dict(zip(outputs, map(float, parity)))


def _views_entry(scorer: AnomalyScorer, profile) -> dict:
    """The manifest's ``score.views`` (and, for a cascade, the band the mirror views run from); nothing
    for one view, which a manifest without the key means."""
    if profile.score_views == 1:
        return {}
    return {"views": profile.score_views, "views_band": profile.score_views_band, "views_from": scorer.views_from}


def _frame_term_entry(scorer: AnomalyScorer, ae_config: dict) -> dict:
    """The manifest's ``score.frame_term`` (and how the frame branch was built), where the gate has one."""
    if not ae_config.get("frame"):
        return {}
    term, frame = scorer.frame_term, ae_config["frame"]
    return {"frame_term": {"output": FRAME_OUTPUT, "map_reference": term.map_reference,
                           "frame_reference": term.frame_reference, "weight": term.weight,
                           "references_from": "median over the validation split's defect-free images",
                           "tap": frame["tap"], "hidden": frame["hidden"], "epochs": frame["epochs"],
                           "n_train_frames": frame["n_vectors"]}}


def _residual_detector_entry(scorer: AnomalyScorer, ae_config: dict) -> dict:
    """The manifest's ``score.residual_detector`` (and how the detector was trained), where the gate has one."""
    if not ae_config.get("residual_detector"):
        return {}
    detector, trained = scorer.residual_detector, ae_config["residual_detector"]
    return {"residual_detector": {
        "output": RESIDUAL_OUTPUT, "sigma_cells": detector.sigma, "scale": detector.scale,
        "scale_from": "warn-rate thresholds of the error map and of the detector's map on the validation split's "
                      "calibration normals",
        "members": trained.get("members", 1), "input": trained.get("input", "residual"),
        "kinds": trained.get("kinds", list(KINDS)),
        **{key: trained[key] for key in ("hidden", "strength", "copies", "seed", "n_normal_cells", "n_painted_cells")},
        **{key: trained[key] for key in ("turns", "surface_copies", "camera_copies") if trained.get(key)},
        **({"surface_amplitude": trained["surface_amplitude"]} if trained.get("surface_copies") else {})}}


def _calibrate_gate(scorer: AnomalyScorer, splits: dict, profile, results: Path) -> tuple[dict, dict, dict]:
    """Thresholds from the validation split's normals; gate metrics and plot on the test split. The
    third item records the calibration and the validation figures recipes are chosen by."""
    from edge_runtime.evaluation_plots import plot_scores

    result = calibrate.calibrate_on_splits(scorer, splits, profile)
    limits, val = result.limits, result.val
    results.mkdir(parents=True, exist_ok=True)
    plot_scores(calibrate.calibration_scores(result.test_scores, profile.calibration_normals),
                result.test_scores["defect_image"], {k: limits[k] for k in ("warn", "defect")},
                results / "gate_scores.png", f"{profile.name}: anomaly scores, test split")
    calibration = {"split": "val", "normals": profile.calibration_normals, "n_normal": val["n_normal"],
                   "gate_recall_warn": val["gate_recall_warn"], "image_auroc": val["image_auroc"],
                   "gate_recall_defect": val["gate_recall_defect"],
                   "gate_recall_warn_per_class": val.get("gate_recall_warn_per_class")}
    log.info("%s gate on the validation split: recall at warn %.3f, image AUROC %.3f", profile.name,
             val["gate_recall_warn"], val["image_auroc"])
    test = {**result.test, "intervals_95": intervals(result.by_sample["val"], result.by_sample["test"], limits, profile)}
    return limits, test, calibration


def _onnx_test_accuracy(out: Path, scorer: AnomalyScorer, kernel: np.ndarray, spec, names: list[str],
                        test: list, stem_window: tuple[int, int] | None) -> float:
    """Test-split accuracy of the exported pair: gate stem -> classifier head on the stem window the
    runtime feeds it (``window_around_peak``), through the runtime's code."""
    classifier = DefectClassifier(session(out / "classifier.onnx"), kernel)
    defects = [s for s in test if not s.is_normal]
    stems = [window_around_peak(scorer.run(preprocess(s.path, spec)), stem_window).stem for s in defects]
    predicted = [names[int(np.argmax(p))] for p in classifier.classify(stems)[0]]
    return float(np.mean([p == s.label for p, s in zip(predicted, defects)]))


def export_profile(name: str, manifest_path: Path) -> dict:
    from training.train_autoencoder import gate_files

    profile = trained_profile(name)
    spec = profile.preprocess
    out, weights = ROOT / "models" / name, ROOT / "models" / name / "keras"
    trained = json.loads((weights / "classifier_result.json").read_text())
    ae_config = json.loads((weights / "autoencoder_config.json").read_text())
    listed = split_samples(profile.load(), profile.seed, profile.split_fractions)
    splits = {split: readable(samples, spec) for split, samples in listed.items()}  # the files training skipped
    real = [preprocess(s.path, spec) for s in splits["test"][:: max(1, len(splits["test"]) // 8)][:8]]

    scorer, ae_parity = _export_autoencoder(weights, out, ae_config, profile, real, splits["val"])
    classifier = _export_classifier(weights, out, len(trained["class_names"]), [scorer.run(f).stem for f in real])
    log.info("parity: classifier %s, autoencoder %s", classifier["parity"], ae_parity)
    limits, gate, gate_calibration = _calibrate_gate(scorer, splits, profile, ROOT / "results" / name)
    stem_window = None if profile.region_side is None \
        else tuple(scorer.run(np.zeros((profile.region_side,) * 2, np.float32)).stem.shape[:2])
    onnx_accuracy = _onnx_test_accuracy(out, scorer, classifier["kernel"], spec, trained["class_names"],
                                        splits["test"], stem_window)

    entry = {
        "description": f"{name}: feature-reconstruction anomaly gate + MobileNetV2 classifier",
        "dataset": {"name": profile.dataset, "path": os.path.relpath(profile.data_dir, ROOT),
                    "normal_source": ae_config["normal_source"],
                    **({"normal_class": profile.normal_class} if profile.normal_class else {})},
        "split": {"seed": profile.seed, "fractions": list(profile.split_fractions),
                  "counts": {k: len(v) for k, v in splits.items()}, "digests": split_digests(listed)},
        "preprocessing": spec.to_dict(),
        "class_names": trained["class_names"],
        "autoencoder": {
            **model_entry(out / "autoencoder.onnx", ROOT), "variant": ae_config["variant"],
            "taps": ae_config["taps"], "hidden": ae_config["hidden"],
            "feature_stride": ae_config["feature_stride"], "input_multiple": ae_config["input_multiple"],
            "pad_margin": ae_config["pad_margin"], "stem_output": "stem",
            "score": {"reduce": "max", "sigma_cells": profile.score_sigma, "ignore_border": profile.ignore_border,
                      "normalise": profile.score_normalise, "cell_centre": profile.score_cell_centre,
                      "level_cap": profile.score_level_cap, "level_power": profile.score_level_power,
                      **_views_entry(scorer, profile), **_frame_term_entry(scorer, ae_config),
                      **_residual_detector_entry(scorer, ae_config)},
            "parity_max_abs_diff": ae_parity,
            "keras_weights": [model_entry(weights / f, ROOT) for f in gate_files(ae_config)],
        },
        "classifier": {
            **model_entry(out / "classifier.onnx", ROOT),
            "input": "the autoencoder's stem output (MobileNetV2 block_12_add over the padded frame)",
            "probability_output": "probabilities", "feature_output": "features",
            "head": model_entry(out / "classifier_head.npz", ROOT),
            "region_side": profile.region_side,
            "stem_window": None if stem_window is None else list(stem_window),
            **({"camera_copies": trained["camera_copies"]} if trained.get("camera_copies") else {}),
            "parity_max_abs_diff": classifier["parity"],
            "keras_weights": [model_entry(weights / "classifier.weights.h5", ROOT)],
        },
        "thresholds": limits,
        "metrics": {
            "classifier": {**trained["metrics"], "onnx_test_accuracy": onnx_accuracy},
            "gate_test": gate,
            "gate_calibration": gate_calibration,
        },
        "training": versions(),
    }
    for what in update_manifest(manifest_path, name, entry):
        log.warning("%s: the new manifest entry no longer has %s", name, what)
    return entry


def _apply_scoring(entry: dict, profile) -> bool:
    """Write the profile's scoring options into the manifest entry; whether any changed. A gate with a
    frame-level term has references measured under the old scoring: it must be exported again."""
    score = entry["autoencoder"]["score"]
    chosen = {"sigma_cells": profile.score_sigma, "normalise": profile.score_normalise,
              "cell_centre": profile.score_cell_centre, "level_cap": profile.score_level_cap,
              "level_power": profile.score_level_power}
    views = {"views": profile.score_views, "views_band": profile.score_views_band}
    defaults = {"level_power": 1.0, "views": 1}
    changed = any(score.get(key, defaults.get(key)) != value for key, value in {**chosen, **views}.items())
    if changed and score.get("frame_term"):
        raise SystemExit(f"{profile.name}: the scoring changed and its frame-level term's references were measured "
                         f"under the old one; export it again (python -m export --profile {profile.name})")
    if changed:
        score.update(chosen)
        for key in ("views", "views_band", "views_from"):  # views_from is measured by the recalibration
            score.pop(key, None)
        if profile.score_views != 1:
            score.update(views)
    return changed


def recalibrate_profile(name: str, manifest_path: Path, results: Path | None = None,
                        overrides: tuple[str, ...] = ()) -> dict:
    """Thresholds and gate metrics set again on the deployed graph, as ``export_profile`` sets them,
    without converting anything (the residual detector's scale too, where the gate has one): the model files,
    their hashes and the int8 entries stay. For a change
    of the calibration rule, of the profile's false-alarm rates or of its scoring options (written into
    the manifest first; a changed scoring drops the golden frames, whose scores it changes). A profile
    commissioned on a line (thresholds or frame-term references) is refused: the two would not fit
    together. Thresholds changed since the export keep their change log, with this change at its end and a
    backup of the manifest before it. The calibration plots go to ``results`` (default: ``results/<profile>`` beside the manifest,
    so a trial on a copy of the manifest leaves the repository's plots alone)."""
    from edge_runtime.manifest import CHANGE_LOG_KEY, backup_manifest, load_manifest, threshold_change, write_manifest
    from edge_runtime.timestamps import audit_stamp
    from export.study_cli import deployed_gate

    manifest = load_manifest(manifest_path)
    entry = manifest["profiles"][name]
    references = (entry["autoencoder"]["score"].get("frame_term") or {}).get("references_from", "")
    commissioned = "commissioned" in entry["thresholds"] or "commissioning" in references
    if commissioned:  # the validation split's thresholds would not fit references set on a line's frames
        raise SystemExit(f"{name}: its thresholds or frame-term references were commissioned on a line's own frames; "
                         f"--thresholds-only would mix them with the validation split's. Re-export the profile "
                         f"(python -m export --profile {name}) or commission it again.")
    changed = entry["thresholds"].get(CHANGE_LOG_KEY)
    backup = backup_manifest(manifest_path) if changed else None  # the manifest as its change log last left it
    profile = with_overrides(trained_profile(name), list(overrides))
    if _apply_scoring(entry, profile) and entry.pop("golden", None):
        log.warning("%s: the scoring changed, so the golden frames were dropped (python -m export.golden --profile %s)",
                    name, name)
    write_manifest(manifest_path, manifest)
    gate = deployed_gate(manifest_path, name)
    scorer, score = gate.scorer, entry["autoencoder"]["score"]
    scoring_before = json.dumps(score, sort_keys=True)
    if scorer.residual_detector is not None:  # its scale is set against the scoring, as the export sets it
        detector = calibrate.residual_detector(scorer, profile, gate.splits["val"])
        scorer = scorer.with_residual_detector(detector)
        score["residual_detector"].update(sigma_cells=detector.sigma, scale=detector.scale)
    scorer = calibrate.with_views_band(scorer, profile, gate.splits["val"])  # the band is measured again
    if scorer.views_from is not None:
        score["views_from"] = scorer.views_from
    if json.dumps(score, sort_keys=True) != scoring_before and entry.pop("golden", None):
        log.warning("%s: the detector's scale or the views band moved, and with them the golden frames' scores: they "
                    "were dropped (python -m export.golden --profile %s)", name, name)
    limits, gate_test, calibration = _calibrate_gate(scorer, gate.splits, gate.profile,
                                                     results or manifest_path.resolve().parent / "results" / name)
    if changed:  # the change log stays, with this change at its end
        change = threshold_change(entry["thresholds"], limits["warn"], limits["defect"], audit_stamp(),
                                  None, "set again on the validation split", None, backup.name,
                                  how="set again by python -m export --thresholds-only")
        limits[CHANGE_LOG_KEY] = [*changed, change]
    entry["thresholds"] = limits
    entry["metrics"].update(gate_test=gate_test, gate_calibration=calibration)
    write_manifest(manifest_path, manifest)
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="append", required=True,
                        help="profile to export (repeat for several): an export replaces the profile's models, "
                        "thresholds, int8 files and golden frames, so nothing is exported unnamed")
    parser.add_argument("--manifest", type=Path, default=ROOT / MANIFEST_NAME)
    parser.add_argument("--thresholds-only", action="store_true",
                        help="only set the thresholds and gate metrics again on the deployed models (no conversion)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="with --thresholds-only: a scoring option of the profile set otherwise for this "
                        "calibration, e.g. score_views=3 (the manifest keeps it until the next export)")
    args = parser.parse_args(argv)
    if args.set and not args.thresholds_only:
        parser.error("--set goes with --thresholds-only (a full export takes the profile as training recorded it)")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name in args.profile:
        entry = recalibrate_profile(name, args.manifest, overrides=tuple(args.set)) if args.thresholds_only \
            else export_profile(name, args.manifest)
        print(json.dumps({"profile": name, "thresholds": entry["thresholds"], "metrics": entry["metrics"]["gate_test"],
                          "classifier_onnx_test_accuracy": entry["metrics"]["classifier"]["onnx_test_accuracy"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
