"""``python -m edge_runtime`` / ``steel-inspect``: inspect, evaluate, calibrate, thresholds, selftest, watch, record,
history, review, prune, bench."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

from .errors import InspectionError
from .image_io import write_image
from .overlay import anomaly_overlay, heatmap_overlay
from .result import InspectionResult, failure_dict


def _add_common(parser: argparse.ArgumentParser, profile_help: str) -> None:
    parser.add_argument("--manifest", type=Path, default=None,
                        help="models.manifest.json (default: ./models.manifest.json, else the checkout's)")
    parser.add_argument("--profile", default=None, help=profile_help)
    parser.add_argument("--threads", type=thread_count, default=1,
                        help="onnxruntime intra-op threads, 1 to this PC's core count (default 1)")


PROFILE_HELP = {
    None: "model profile (default: the manifest's default_profile, or its only profile)",
    "history": "the profile whose drift is checked (default: the one the log's frames were inspected with; "
               "needed for a log of several)",
}


def _installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("steel-inspect")
    except PackageNotFoundError:
        return "(not installed: run from a checkout)"


def positive_int(text: str) -> int:
    """An argparse type: a whole number of 1 or more (counts, sizes, repetitions)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def thread_count(text: str) -> int:
    """An argparse type: onnxruntime threads, 1 to this PC's cores (more only spin)."""
    count, cores = positive_int(text), os.cpu_count() or 1
    if count > cores:
        raise argparse.ArgumentTypeError(f"must be 1 to {cores} (this PC's cores), got {count}")
    return count


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m edge_runtime", description=__doc__)
    parser.add_argument("--version", action="version", version=f"steel-inspect {_installed_version()}",
                        help="the installed release, to report with a line PC's figures")
    commands = parser.add_subparsers(dest="command", required=True)

    inspect = commands.add_parser("inspect", help="inspect image files (folders: every image under them)")
    inspect.add_argument("paths", nargs="+", type=Path)
    inspect.add_argument("--json", action="store_true", help="one JSON object per image on stdout")
    inspect.add_argument("--save-overlays", type=Path, metavar="DIR", help="write anomaly / Grad-CAM overlays here")
    inspect.set_defaults(func=cmd_inspect)

    evaluate = commands.add_parser("evaluate", help="run the whole pipeline over a labelled data set")
    evaluate.add_argument("--dataset", choices=["neu-det", "magnetic-tile", "folder"], required=True)
    evaluate.add_argument("path", type=Path)
    evaluate.add_argument("--normal-class", help="folder data set: name of the defect-free class sub-folder")
    evaluate.add_argument("--split", choices=["train", "val", "test", "all"], default="all",
                          help="evaluate only that split of the data set the models were trained on (its recorded "
                               "split; another folder is refused); default: every image, for held-out folders")
    evaluate.add_argument("--normal-crops", type=int, default=0, metavar="SIZE",
                          help="NEU-DET: add box-free SIZE x SIZE crops as normal frames (a proxy, see docs/results.md)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--per-image", type=Path, metavar="FILE",
                          help="write one JSON line per image: its file, label and result (or why it was not inspected)")
    evaluate.add_argument("--plots", type=Path, metavar="DIR", help="write confusion matrix, ROC, histograms, gallery")
    evaluate.set_defaults(func=cmd_evaluate)

    calibrate = commands.add_parser("calibrate", help="set thresholds on the line's own defect-free frames")
    calibrate.add_argument("paths", nargs="+", type=Path, help="defect-free frames, or folders of them (recursive)")
    calibrate.add_argument("--false-alarm-rate", type=float, default=0.01,
                           help="share of defect-free frames at or above the defect threshold (default 0.01)")
    calibrate.add_argument("--warn-false-alarm-rate", type=float, default=0.05,
                           help="share at or above the warn threshold (default 0.05)")
    calibrate.add_argument("--write", action="store_true",
                           help="save the thresholds into the manifest (a timestamped backup is kept)")
    calibrate.add_argument("--reason", default="",
                           help="why the thresholds change (required with --write; kept in the manifest's change log)")
    calibrate.add_argument("--by", default=None, help="who changes them (default: this account's user name)")
    calibrate.add_argument("--despite-shift", action="store_true",
                           help="write even though the deployed defect threshold flags most of these frames (frames "
                                "of another product, or a camera far from the training's: check them first)")
    calibrate.add_argument("--json", action="store_true", help="print one JSON object")
    calibrate.set_defaults(func=cmd_calibrate)

    thresholds = commands.add_parser("thresholds", help="the profile's thresholds, where they come from and every change")
    thresholds.add_argument("--restore", type=Path, metavar="BACKUP",
                            help="set the thresholds back to those of an earlier manifest (a backup), logged as a change")
    thresholds.add_argument("--reason", default="", help="with --restore, required: why (kept in the change log)")
    thresholds.add_argument("--by", default=None, help="with --restore: who (default: this account's user name)")
    thresholds.add_argument("--json", action="store_true", help="print one JSON object")
    thresholds.set_defaults(func=cmd_thresholds)

    selftest = commands.add_parser("selftest", help="score the profile's golden frames and compare with the export")
    selftest.add_argument("--json", action="store_true", help="print one JSON object")
    selftest.set_defaults(func=cmd_selftest)

    bench = commands.add_parser("bench", add_help=False,
                                help="latency / throughput / memory benchmark (python -m bench.benchmark)")
    bench.set_defaults(func=cmd_bench)

    from .capture.commands import register

    register(commands)
    for name, sub in commands.choices.items():
        if name != "bench" and not any(a.dest == "manifest" for a in sub._actions):
            _add_common(sub, PROFILE_HELP.get(name, PROFILE_HELP[None]))
    return parser


def _inspector(args):
    from .inspector import Inspector

    return Inspector.from_manifest(args.manifest, args.profile, getattr(args, "threads", 1))


def save_overlays(result: InspectionResult, folder: Path, stem: str) -> list[Path]:
    """``<stem>_anomaly.png`` (and ``<stem>_gradcam.png`` for a classified frame) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    images = {"anomaly": anomaly_overlay(result)}
    if result.gradcam is not None:
        images["gradcam"] = heatmap_overlay(result.frame, result.gradcam)
    written = []
    for kind, image in images.items():
        path = folder / f"{stem}_{kind}.png"
        write_image(path, image)
        written.append(path)
    return written


def _is_folder(path: Path) -> bool:
    """False also for a path that cannot be looked at (a name too long): it is then reported by name."""
    try:
        return path.is_dir()
    except OSError:
        return False


def _expand_folders(paths: list[Path]) -> list[tuple[Path, str]]:
    """(image, overlay name) for each image: a folder is replaced by the images under it (recursively;
    the pixel masks beside them left out, as ``calibrate`` does),
    named by their path inside it (``a/0.png`` -> ``a__0``), so two ``0.png`` in different sub-folders
    keep their own overlays; an empty folder stays, to be reported. Names that would still repeat
    get ``-2``, ``-3``, ..."""
    from .datasets import frames_and_masks

    expanded: list[tuple[Path, str]] = []
    for path in paths:
        inside, masks = frames_and_masks(path) if _is_folder(path) else ([], [])
        if masks:
            print(f"{path}: {len(masks)} pixel masks beside same-name images left out (e.g. {masks[0]})",
                  file=sys.stderr)
        expanded.extend((image, "__".join(image.relative_to(path).with_suffix("").parts)) for image in inside)
        if not inside:
            expanded.append((path, path.stem))
    used: set[str] = set()
    named = []
    for image, name in expanded:
        unique, count = name, 1
        while unique in used:
            count += 1
            unique = f"{name}-{count}"
        used.add(unique)
        named.append((image, unique))
    return named


def cmd_inspect(args) -> int:
    try:
        inspector = _inspector(args)
    except InspectionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failures = 0
    for path, overlay_name in _expand_folders(args.paths):
        try:
            result = inspector.inspect(path)
        except InspectionError as error:
            failures += 1
            record = {"path": str(path), **failure_dict(str(path), error, inspector.profile, inspector.thresholds)}
            print(json.dumps(record) if args.json else f"{path}: ERROR {error}", flush=True)
            continue
        if args.save_overlays:
            try:
                save_overlays(result, args.save_overlays, overlay_name)
            except OSError as error:
                failures += 1
                print(f"{path}: {error}", file=sys.stderr, flush=True)
        record = {"path": str(path), **result.to_dict()}
        if args.json:
            print(json.dumps(record), flush=True)
        else:
            label = f" {result.defect_class} ({result.confidence:.1%})" if result.defect_class else ""
            print(f"{path}: {result.verdict.value.upper()}{label} score={result.anomaly_score:.4g} "
                  f"(warn {result.thresholds.warn:.4g}, defect {result.thresholds.defect:.4g}) "
                  f"{result.latency_ms:.1f} ms", flush=True)
    return 1 if failures else 0


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate
    from .evaluation_cases import build_cases

    try:
        inspector = _inspector(args)
        cases, notices = build_cases(args.dataset, args.path, inspector, args.split, args.normal_class,
                                     args.normal_crops)
    except (InspectionError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for notice in notices:
        print(f"note: {notice}", file=sys.stderr)
    metrics, rows = evaluate(inspector, cases)
    if args.per_image:
        from .evaluate import per_image_records

        args.per_image.parent.mkdir(parents=True, exist_ok=True)
        args.per_image.write_text("".join(json.dumps(record) + "\n" for record in per_image_records(rows)))
    metrics.update(profile=inspector.profile, dataset=args.dataset, path=str(args.path.resolve()), split=args.split,
                   notices=notices,
                   thresholds={"warn": inspector.thresholds.warn, "defect": inspector.thresholds.defect})
    if args.plots:
        from .evaluation_plots import write_plots

        write_plots(metrics, rows, args.plots)
    if args.json:
        print(json.dumps(metrics))
    else:
        for key, value in metrics.items():
            if key not in ("errors", "confusion_matrix", "gate_recall_by_class", "notices"):
                print(f"{key:34s} {value}")
        _print_failures(metrics["errors"])
        for label, entry in metrics.get("gate_recall_by_class", {}).items():
            print(f"gate recall {label:22s} {entry['flagged']:.3f} flagged, {entry['at_defect']:.3f} at defect "
                  f"({entry['n']} images)")
        print("confusion_matrix (rows = true):", *metrics.get("confusion_matrix", []), sep="\n  ")
    return 1 if metrics["errors"] else 0


def _print_failures(errors: list[dict], shown: int = 5) -> None:
    """The images an evaluation could not inspect: they are in no figure above, so they are named."""
    if errors:
        print(f"{len(errors)} image(s) could not be inspected and are in no figure above:")
        for error in errors[:shown]:
            print(f"  {error['name']}: {error['error']}")
        if len(errors) > shown:
            print(f"  ... and {len(errors) - shown} more (--json lists them all)")


RESTART_NOTE = ("a running watch or Live line keeps judging with the thresholds it started with until it is "
                "restarted")


def cmd_thresholds(args) -> int:
    """Read from the manifest only (no model is loaded): current thresholds, their origin, the change log."""
    from .errors import ManifestError
    from .manifest import (changes_newest_first, default_manifest_path, load_manifest, profile_name,
                           restore_thresholds, threshold_origin)

    try:
        manifest = load_manifest(args.manifest)
        name = profile_name(manifest, args.profile)
        if args.restore is not None:
            backup = restore_thresholds(args.manifest or default_manifest_path(), name, args.restore, args.reason,
                                        args.by)
            print(f"thresholds of {name} restored from {args.restore} (the manifest before: {backup}); {RESTART_NOTE}",
                  file=sys.stderr)
            manifest = load_manifest(args.manifest)
    except (ManifestError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    thresholds = manifest["profiles"][name]["thresholds"]
    commissioned, origin = threshold_origin(thresholds)
    changes = changes_newest_first(thresholds)
    if args.json:
        print(json.dumps({"profile": name, "warn": thresholds["warn"], "defect": thresholds["defect"],
                          "commissioned": commissioned, "origin": origin, "changes": changes}))
        return 0
    print(f"{name}: warn {thresholds['warn']:.6g}, defect {thresholds['defect']:.6g}")
    print(f"  {origin}")
    carried = sum(bool(change.get("carried_over_from")) for change in changes)
    print(f"  {len(changes) - carried} change(s) since the export"
          + (f", {carried} carried over from an earlier manifest by a restore" if carried else "")
          + (", newest first:" if changes else ""))
    for change in changes:
        mark = f" (carried over from {change['carried_over_from']})" if change.get("carried_over_from") else ""
        print(f"  {change.get('at')}  {change.get('by')}  {change.get('how')}{mark}: warn {change.get('previous_warn')} -> "
              f"{change.get('warn')}, defect {change.get('previous_defect')} -> {change.get('defect')}; "
              f"reason: {change.get('reason') or '(none given)'}; backup {change.get('backup')}")
    return 0


def cmd_calibrate(args) -> int:
    """Score defect-free frames with the deployed pipeline and propose (or save) thresholds."""
    from . import commissioning
    from .drift import MEASURES
    from .errors import ManifestError
    from .manifest import change_reason, save_thresholds

    try:
        if args.write:
            change_reason(args.reason)  # refused before minutes of scoring, not after
        inspector = _inspector(args)
        files = commissioning.frame_files(args.paths)
        if files.masks:
            print(f"{len(files.masks)} pixel masks beside same-name images left out (e.g. {files.masks[0]})",
                  file=sys.stderr)
        commissioning.minimum_frames_present(len(files.frames), args.false_alarm_rate)
        line = commissioning.commission(inspector, files.frames)
        for path, reason in line.scored.failed:
            print(f"{path}: not inspected, left out: {reason}", file=sys.stderr)
        proposal = line.propose(args.false_alarm_rate, args.warn_false_alarm_rate)
    except (InspectionError, commissioning.CommissioningError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    scored, frame_term, views_from = line.scored, line.frame_term, line.views_from
    current = {"warn": inspector.thresholds.warn, "defect": inspector.thresholds.defect, **line.deployed_rates}
    if warning := line.size_warning():
        print(f"warning: {warning}", file=sys.stderr)
    if args.write and line.shifted and not args.despite_shift:
        print(f"error: {line.shift_message('add --despite-shift')} Nothing was written.", file=sys.stderr)
        return 2
    baselines = line.baselines(proposal["defect"])
    report = {"profile": inspector.profile, "frames_scored": len(scored.scores), "frames_failed": len(scored.failed),
              "current": current, "proposed": proposal, **baselines,
              "frame_term": _references(inspector.frame_term_references, frame_term),
              "views_from": None if views_from is None else {"current": inspector.scorer.views_from,
                                                             "proposed": views_from},
              "written": None}
    if args.write:
        record = line.record(proposal["frames"], args.false_alarm_rate, args.warn_false_alarm_rate, args.paths)
        try:
            backup = save_thresholds(inspector.manifest_path, inspector.profile, proposal["warn"], proposal["defect"],
                                     reason=args.reason, commissioned=record, frame_term=frame_term,
                                     baselines=baselines, changed_by=args.by, views_from=views_from)
        except (ManifestError, OSError) as error:
            print(f"error: cannot write the thresholds into {inspector.manifest_path}: {error}", file=sys.stderr)
            return 2
        report["written"] = {"manifest": str(inspector.manifest_path), "backup": str(backup)}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{inspector.profile}: {len(scored.scores)} defect-free frames scored, {len(scored.failed)} left out")
        for name, entry in (("current", current), ("proposed", proposal)):
            print(f"  {name:8s} warn {entry['warn']:.4g} (flags {entry['flagged_warn']:.1%}), "
                  f"defect {entry['defect']:.4g} (flags {entry['flagged_defect']:.1%})")
        if frame_term is not None:
            shipped = inspector.frame_term_references
            print(f"  frame-level term references: map {frame_term.map_reference:.4g} (was "
                  f"{shipped.map_reference:.4g}), frame error {frame_term.frame_reference:.4g} (was "
                  f"{shipped.frame_reference:.4g}); the proposed thresholds use them")
        if views_from is not None:
            print(f"  mirror views from a one-view score of {views_from:.4g} (was {inspector.scorer.views_from}); "
                  f"the proposed thresholds use it")
        for measure in MEASURES:
            entry = baselines[measure.baseline_key]
            print(f"  {measure.name} drift baseline ({measure.column}): 10th / 50th / 90th percentile {entry['p10']:.4g} / "
                  f"{entry['p50']:.4g} / {entry['p90']:.4g}" if entry else f"  no {measure.name} drift baseline: it needs "
                  "200 frames under the proposed defect threshold (python -m edge_runtime history checks the line "
                  "against it)")
        print(f"  saved to {inspector.manifest_path} (backup {report['written']['backup']}); {RESTART_NOTE}" if args.write
              else "  not saved: add --write to put the proposed thresholds into the manifest")
    return 1 if scored.failed else 0


def _references(current, proposed) -> dict | None:
    """The frame-level term's references before and after commissioning, for the report (None without one)."""
    if proposed is None:
        return None
    return {name: {"map_reference": term.map_reference, "frame_reference": term.frame_reference}
            for name, term in (("current", current), ("proposed", proposed))}


def cmd_selftest(args) -> int:
    """0: this PC computes what the export computed; 1: a golden frame drifted; 2: cannot run."""
    from .selftest import PROBABILITY_ATOL, SCORE_RTOL, run_selftest

    try:
        inspector = _inspector(args)
        checks = run_selftest(inspector)
    except InspectionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    passed = all(check.passed for check in checks)
    if args.json:
        print(json.dumps({"profile": inspector.profile, "precision": inspector.precision, "passed": passed,
                          "score_rtol": SCORE_RTOL, "probability_atol": PROBABILITY_ATOL,
                          "frames": [{**vars(check), "passed": check.passed} for check in checks]}))
    else:
        for check in checks:
            print(f"{check.name}: score {check.score:.6g} (recorded {check.expected_score:.6g}), class probabilities "
                  f"within {check.max_probability_difference:.1e}: {'ok' if check.passed else 'DRIFTED'}")
        print(f"{inspector.profile} ({inspector.precision}): "
              + ("the golden frames score as recorded" if passed else
                 "DRIFT: this PC does not compute what the export computed; before inspecting, check onnxruntime "
                 f"against the version the export used (the manifest's 'training' entry: "
                 f"{inspector.config.raw.get('training', {}).get('onnxruntime', 'not recorded')}, this PC: "
                 f"{_version('onnxruntime')}), and numpy ({_version('numpy')}) and OpenCV ({_version('cv2')}) against "
                 "the pins of the runtime's install (pyproject.toml)"))
    return 0 if passed else 1


def _version(module: str) -> str:
    return getattr(importlib.import_module(module), "__version__", "unknown")


def cmd_bench(bench_args: list[str]) -> int:
    """The benchmark lives beside the runtime (it also drives the Keras reference); forward to it."""
    try:
        from bench.benchmark import main as bench_main
    except ImportError:
        print("error: the benchmark is in the repository's bench/ package; run from the checkout", file=sys.stderr)
        return 2
    return bench_main(bench_args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        return cmd_bench(argv[1:])
    args = build_parser().parse_args(argv)
    return args.func(args)
