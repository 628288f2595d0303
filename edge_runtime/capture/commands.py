"""``watch``, ``record``, ``history`` and ``prune`` sub-commands; ``register(subparsers)`` is called by the main CLI."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from ..drift import MEASURES, SCORE, Measure, check_log
from ..errors import FrameQualityError
from ..selftest import StartupCheck
from ..sinks import CallbackSink, InspectionLogError, JsonlSink, SqliteLog, parse_since
from ..sinks.callback import command_reject_sink, python_reject_sink
from ..sinks.retention import RetentionReport, image_folders, keep_pruning, prune_log
from ..sinks.reviews import review_summary, summary_line
from ..timestamps import local_time
from .loop import InspectionLoop, LoopConfig
from .record import register_record
from .review import register_review
from .runs import run_settings
from .source_claim import SourceBusyError, claim_source
from .sources import FileListSource, FolderWatcher, FrameSource, VideoSource, source_kind
from .drift_watch import DRIFT_PERIOD_S, DriftWatch, keep_checking
from .status import STATUS_PERIOD_S, StatusFile
from .synthetic import SyntheticStripSource

EXIT_USAGE, EXIT_SOURCE_FAILED, EXIT_RECORDS_LOST = 2, 3, 4


def register(subparsers: Any) -> None:
    watch = subparsers.add_parser("watch", help="inspect frames from a folder, video, camera or synthetic strip",
                                  description="Capture loop: SOURCE -> inspection workers -> SQLite log.")
    watch.add_argument("source", metavar="SOURCE",
                       help="folder to watch (each file name is inspected once: the camera must write unique "
                       "names), video file, image file, camera:N, or synthetic[:defect_rate]")
    watch.add_argument("--log", default="inspections.db", help="SQLite inspection log (default: %(default)s)")
    watch.add_argument("--workers", type=int, default=2, help="inspection threads (default: %(default)s)")
    watch.add_argument("--queue", type=int, default=16, help="frame queue size (default: %(default)s)")
    watch.add_argument("--batch", type=int, default=8,
                       help="most queued frames a worker inspects in one call; it never waits for more, so a "
                       "frame is not held back when the line is slow (default: %(default)s)")
    watch.add_argument("--drop-oldest", action="store_true",
                       help="when the queue is full drop the oldest frame (counted and logged) instead of waiting")
    watch.add_argument("--duration", type=float, metavar="S", help="stop capturing after S seconds")
    watch.add_argument("--max-frames", type=int, metavar="N", help="stop after N captured frames")
    watch.add_argument("--save-overlays", metavar="DIR", help="write heat-map overlay PNGs of warn/defect frames")
    watch.add_argument("--save-frames", metavar="DIR",
                       help="write the warn/defect frames as captured (lossless PNG), for operator review and for "
                            "retraining or commissioning on reviewed frames (review --export)")
    watch.add_argument("--sample-passed", type=int, metavar="N",
                       help="with --save-frames: also every N-th passed frame, a sample to spot-check for misses")
    watch.add_argument("--jsonl", action="store_true", help="also print one JSON line per record on stdout")
    watch.add_argument("--once", action="store_true", help="folder: inspect what is there, then exit")
    watch.add_argument("--on-source-error", choices=("stop", "retry"), default="stop",
                       help="when the source fails (camera unplugged, folder gone): stop, or retry (default: %(default)s)")
    watch.add_argument("--fps", type=float, help="synthetic: frames per second (default: as fast as possible)")
    watch.add_argument("--seed", type=int, default=0, help="synthetic: random seed (default: %(default)s)")
    watch.add_argument("--retain", metavar="AGE",
                       help="delete records older than AGE (e.g. 30d) and their overlays, at start and hourly "
                            "(python -m edge_runtime prune)")
    watch.add_argument("--reject-command", metavar="CMD",
                       help="run CMD (no shell) for every reject, the record as JSON on its stdin: the ejector or "
                            "PLC signal; a failing run is reported and counted, never stops the line")
    watch.add_argument("--reject-hook", metavar="MODULE:FUNCTION",
                       help="call FUNCTION(record) of an importable Python module for every reject, in this "
                            "process: the lowest-latency reject output")
    watch.add_argument("--reject-on", default="defect", metavar="VERDICTS",
                       help="comma-separated verdicts that fire the reject command or hook, among defect, warn, "
                            "error (could not be inspected) and dropped (never inspected) (default: %(default)s)")
    watch.add_argument("--reject-timeout", type=float, default=5.0, metavar="S",
                       help="a --reject-command run longer than S seconds is a failure (default: %(default)s)")
    watch.add_argument("--status-file", metavar="PATH",
                       help="keep the loop's state in this JSON file, rewritten every 2 s (for monitoring; "
                            "\"state\" is \"stopped\" after a clean exit); a path ending in .prom gets the "
                            "Prometheus text format, for node_exporter's textfile collector")
    watch.add_argument("--skip-selftest", action="store_true",
                       help="start without scoring the golden frames first (python -m edge_runtime selftest)")
    watch.set_defaults(func=cmd_watch)

    register_record(subparsers)
    register_review(subparsers)

    history = subparsers.add_parser("history", help="summarise the inspection log",
                                    description="Counts per verdict and defect class, the last rejects, and the score, image "
                                                "and brightness drift since the line was commissioned (exit 1 when the "
                                                "scores or the pictures have drifted or a reject hook failed; 2 when no "
                                                "drift check could run: the frames are of several profiles and --profile "
                                                "names none, or the manifest or the profile cannot be read).")
    history.add_argument("--db", default="inspections.db", help="SQLite inspection log (default: %(default)s)")
    history.add_argument("--since", help="only records since: 30m, 12h, 7d, an ISO date/time or unix seconds")
    history.add_argument("--last", type=int, default=10, help="how many recent rejects to list (default: %(default)s)")
    history.add_argument("--json", action="store_true", help="print the summary as JSON")
    history.set_defaults(func=cmd_history)

    prune = subparsers.add_parser("prune", help="delete old records and their overlay images",
                                  description="Delete the log's records older than a window, and their overlay "
                                              "images inside the overlay folders (default: the log's folder). "
                                              "Records of files still in a watched folder are kept, so they are "
                                              "not inspected again.")
    prune.add_argument("--db", default="inspections.db", help="SQLite inspection log (default: %(default)s)")
    prune.add_argument("--older-than", required=True, metavar="AGE",
                       help="delete records written before this: 30d, 12h, an ISO date/time or unix seconds")
    prune.add_argument("--overlays", type=Path, action="append", default=[], metavar="DIR",
                       help="folder whose overlay images and saved frames may be deleted (repeatable; default: the "
                            "log's folder)")
    prune.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")
    prune.add_argument("--json", action="store_true", help="print the report as JSON")
    prune.set_defaults(func=cmd_prune)


def make_source(spec: str, log: SqliteLog | None, args: argparse.Namespace) -> FrameSource:
    """The frame source SOURCE names. ``log`` (frames a folder watcher has already inspected) is
    needed for a folder only."""
    kind = source_kind(spec)
    if kind == "synthetic":
        rate = float(spec.split(":", 1)[1]) if ":" in spec else 0.1
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"synthetic defect rate must be within 0..1, got {rate}")
        return SyntheticStripSource(rate, seed=getattr(args, "seed", 0), fps=getattr(args, "fps", None))
    if kind == "camera":
        return VideoSource(spec)
    if kind == "folder":
        name = str(Path(spec).resolve())
        return FolderWatcher(spec, already_processed=log.processed_ids(name) if log else (),
                             exit_when_idle=getattr(args, "once", False))
    if not Path(spec).is_file():
        raise ValueError(f"SOURCE not found: {spec} (expected a folder, video file, image file, camera:N or synthetic[:rate])")
    return FileListSource([spec], name=str(Path(spec).resolve())) if kind == "image" else VideoSource(spec)


def build_inspector(args: argparse.Namespace) -> Any:
    from ..inspector import Inspector  # imported late: onnxruntime start-up is not needed for `history`

    return Inspector.from_manifest(getattr(args, "manifest", None), getattr(args, "profile", None),
                                   getattr(args, "threads", 1))


def _quiet_opencv() -> None:
    """Corrupt frames are expected and recorded; OpenCV's decoder warnings would garble the status line."""
    import cv2

    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:
        pass


def status_line(snap: dict[str, Any], queue_size: int, fps: float) -> str:
    verdicts = " ".join(f"{k} {snap['verdicts'].get(k, 0)}" for k in ("ok", "warn", "defect"))
    p50 = snap["latency_ms"]["p50"]
    latency = f"p50 {p50:.1f} ms" if p50 is not None else "p50 -"
    text = (f"[watch] {fps:6.1f} frames/s | queue {snap['queue_depth']}/{queue_size} | {verdicts} | "
            f"errors {snap['errored']} dropped {snap['dropped']} | {latency}")
    if snap.get("records_pending"):
        text += f" | {snap['records_pending']} records waiting for the log"
    if snap.get("records_lost"):
        text += f" | RECORDS LOST {snap['records_lost']}"
    if snap["last_source_error"]:
        text += f" | SOURCE: {snap['last_source_error']}"
    return text


def _show_status(loop: InspectionLoop, done: threading.Event, queue_size: int,
                 status_file: StatusFile | None = None, drift: DriftWatch | None = None) -> None:
    """The status line on stderr (every 0.5 s on a terminal, 10 s in a log) and the ``--status-file``
    (with the drift checks' latest readings, where they run)."""
    tty = sys.stderr.isatty()
    line_period = 0.5 if tty else 10.0
    period = min(line_period, STATUS_PERIOD_S) if status_file else line_period
    last_t, last_n, last_line = time.monotonic(), 0, 0.0
    while not done.wait(period):
        snap = loop.snapshot()
        now, n = time.monotonic(), snap["inspected"] + snap["errored"] + snap["dropped"]
        fps = (n - last_n) / max(now - last_t, 1e-9)
        last_t, last_n = now, n
        if status_file:
            _write_status(status_file, _with_drift(snap, drift), fps)
        if now - last_line >= line_period - 1e-3:
            last_line = now
            line = status_line(snap, queue_size, fps)
            sys.stderr.write(f"\r{line}\033[K" if tty else line + "\n")
            sys.stderr.flush()


def _with_drift(snap: dict[str, Any], drift: DriftWatch | None) -> dict[str, Any]:
    return {**snap, "drift": drift.latest} if drift is not None else snap


def _drift_watch(log: SqliteLog, inspector: Any) -> DriftWatch | None:
    """The drift checks of the inspector's profile on ``log``, against the baselines in its manifest; None for
    an inspector with no manifest behind it (the model-free stand-in)."""
    from ..manifest import load_manifest

    path = getattr(inspector, "manifest_path", None)
    if path is None:
        return None
    thresholds = load_manifest(path)["profiles"][inspector.profile]["thresholds"]
    return DriftWatch(log, inspector.profile, thresholds, lambda text: print(f"\n[watch] {text}", file=sys.stderr))


def _print_drift_failure(exc: Exception) -> None:
    print(f"\n[watch] drift check failed: {exc}", file=sys.stderr)


def _write_status(status_file: StatusFile, snap: dict[str, Any], fps: float, state: str = "running") -> None:
    try:
        status_file.write(snap, fps, state)
    except OSError as exc:  # a full disk or a vanished folder must not stop the inspection
        print(f"\n[watch] cannot write the status file {status_file.path}: {exc}", file=sys.stderr)


def _warn_of_unlogged_thresholds(inspector) -> None:
    """Thresholds the change log does not account for are named at start: the records will carry them."""
    from ..manifest import unlogged_change

    config = getattr(inspector, "config", None)  # the capture tests' fake inspector has none
    unlogged = unlogged_change(config.raw.get("thresholds", {})) if config is not None else None
    if unlogged:
        print(f"[watch] WARNING: {unlogged}", file=sys.stderr)


def _selftest_before_start(inspector: Any) -> StartupCheck:
    """Run the golden-frame self-test (``edge_runtime.selftest``) and say what it found."""
    from ..errors import InspectionError
    from ..selftest import startup_check

    try:
        check = startup_check(inspector)
    except InspectionError as exc:
        check = StartupCheck(False, "failed", f"self-test cannot run: {exc}")
    print(f"[watch] {check.message}" if check.allowed else f"error: {check.message} (--skip-selftest to start anyway)",
          file=sys.stderr)
    return check


def reject_sinks(args: argparse.Namespace) -> list[CallbackSink]:
    """The ``--reject-hook`` and ``--reject-command`` sinks, where given; ``ValueError`` names what is wrong."""
    sinks = [python_reject_sink(args.reject_hook, args.reject_on)] if args.reject_hook else []
    if args.reject_command:
        sinks.append(command_reject_sink(args.reject_command, args.reject_on, args.reject_timeout))
    return sinks


def cmd_watch(args: argparse.Namespace) -> int:
    _quiet_opencv()
    try:
        parse_since(args.retain)
    except ValueError as exc:
        print(f"error: --retain: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.sample_passed is not None and (args.sample_passed < 1 or not args.save_frames):
        print("error: --sample-passed N needs N >= 1 and --save-frames DIR to save the sample in", file=sys.stderr)
        return EXIT_USAGE
    try:
        rejects = reject_sinks(args)
    except ValueError as exc:
        print(f"error: reject output: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        inspector = build_inspector(args)
    except Exception as exc:  # missing manifest/models: say so before touching the log
        print(f"error: cannot load the inspection models: {exc}", file=sys.stderr)
        return EXIT_USAGE
    selftest = StartupCheck(True, "skipped", "--skip-selftest") if args.skip_selftest else _selftest_before_start(inspector)
    if not selftest.allowed:
        return EXIT_USAGE
    _warn_of_unlogged_thresholds(inspector)
    try:
        log = SqliteLog(args.log)
    except InspectionLogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    claim = None
    try:
        source = make_source(args.source, log, args)
        claim = claim_source(source)  # a second loop on this folder or camera would inspect every frame twice
        status_file = StatusFile(args.status_file, source.name, getattr(inspector, "profile", "?")) \
            if args.status_file else None
    except (ValueError, OSError, SourceBusyError) as exc:  # an unknown or busy source, an unwritable status file
        print(f"error: {exc}", file=sys.stderr)
        log.close()
        if claim is not None:
            claim.release()
        return EXIT_USAGE
    sinks: list[Any] = [*rejects, log] + ([JsonlSink()] if args.jsonl else [])  # the hook first: lowest latency
    config = LoopConfig(workers=args.workers, queue_size=args.queue, drop_oldest=args.drop_oldest,
                        batch_size=args.batch, max_frames=args.max_frames, duration_s=args.duration,
                        on_source_error=args.on_source_error,
                        overlay_dir=Path(args.save_overlays) if args.save_overlays else None,
                        frame_dir=Path(args.save_frames) if args.save_frames else None, passed_every=args.sample_passed)
    loop = InspectionLoop(source, inspector, sinks, config)
    options = {key: value for key, value in vars(args).items() if key != "func" and not callable(value)}
    run_id = log.start_run(source.name, run_settings(inspector, selftest.status, options))
    done = threading.Event()
    drift = _drift_watch(log, inspector)
    status = threading.Thread(target=_show_status, args=(loop, done, config.queue_size, status_file, drift),
                              daemon=True)
    print(f"[watch] {source.name} -> {args.log} ({config.workers} workers, profile {getattr(inspector, 'profile', '?')}); "
          "Ctrl-C to stop", file=sys.stderr)
    status.start()
    pruning = None
    if args.retain:
        pruning = threading.Thread(target=keep_pruning, daemon=True, args=(
            log, args.retain, image_folders(args.log, args.save_overlays, args.save_frames), done, _print_retention,
            _print_retention_failure))
        pruning.start()
    checking = None
    if drift is not None:
        checking = threading.Thread(target=keep_checking, args=(drift, done, DRIFT_PERIOD_S, _print_drift_failure),
                                    daemon=True)
        checking.start()
    final: dict[str, Any] = {"stopped_by": "an exception in the loop"}
    try:
        final = loop.run()
    finally:
        done.set()
        status.join()
        for thread in (pruning, checking):
            if thread is not None:
                thread.join()
        try:
            log.end_run(run_id, final)
        except sqlite3.Error as exc:  # the log failing is reported with the lost records below
            print(f"[watch] the run's stop could not be noted in the log: {exc}", file=sys.stderr)
        log.close()
        if claim is not None:
            claim.release()
    if status_file:
        _write_status(status_file, _with_drift(final, drift), 0.0, "stopped")
    print(file=sys.stderr)
    print(json.dumps({"source": source.name, "log": str(args.log), **final}), file=sys.stderr if args.jsonl else sys.stdout)
    if final["records_lost"]:
        print(f"error: {final['records_lost']} record(s) could not be written (the log or --jsonl; the reasons are "
              "above); the loop stopped", file=sys.stderr)
        return EXIT_RECORDS_LOST
    if final["last_source_error"] and config.on_source_error == "stop":
        print(f"error: the source failed: {final['last_source_error']}", file=sys.stderr)
        return EXIT_SOURCE_FAILED
    return 0


def drift_key(measure: Measure) -> str:
    """A drift check's key in ``history``'s summary: "drift" for the score (its key before there were
    others), "<name>_drift" for the rest."""
    return "drift" if measure is SCORE else f"{measure.name}_drift"


def history_summary(log: SqliteLog, since: str | None, last: int,
                    drifts: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Counts, rejects and errors of the log, with ``drifts`` (``profile_drifts``) merged in."""
    return {
        "log": str(log.path),
        "since": since,
        "total": log.count(since),
        "verdicts": log.counts_by_verdict(since),
        "judged_by": log.judged_by(since),
        "runs": log.runs(since),
        "classes": log.counts_by_class(since),
        "last_rejects": log.last_rejects(last, since),
        "unfired_rejects": log.unfired_rejects(since),
        "error_causes": log.errors_by_cause(since),
        "reviews": review_summary(log.latest_reviews(since)),
        "stamped_ahead": log.stamped_ahead(),
        **(drifts or {}),
    }


def profile_drifts(log: SqliteLog, manifest: Path | None, profile: str | None,
                   since: str | None = None) -> dict[str, dict[str, Any]]:
    """Every drift check (``drift_key`` -> its reading) of the profile's newest logged frames against its
    commissioning baselines (``edge_runtime.drift``), with the profile's name; status "unavailable" where
    the manifest cannot be read (the counts are still worth printing), "needs_profile" where the frames
    (since ``since``) are of several profiles and none is named. Without ``profile``, the one profile the
    log's frames (since ``since``) were inspected with (the manifest's default for an empty log)."""
    from ..errors import ManifestError
    from ..manifest import load_manifest, logged_profile_name

    def unavailable(message: str, status: str = "unavailable") -> dict[str, dict[str, Any]]:
        return {drift_key(measure): {"status": status, "drifted": False, "message": message} for measure in MEASURES}

    logged = log.window_profiles(since)
    if profile is None and len(logged) > 1:
        return unavailable(f"no drift check: the log holds frames of the profiles {', '.join(logged)}"
                           + (f" since {since}" if since else "") + "; name one with --profile", "needs_profile")
    try:
        document = load_manifest(manifest)
        name = logged_profile_name(document, logged, profile)
        thresholds = document["profiles"][name]["thresholds"]
    except (ManifestError, KeyError) as exc:
        return unavailable(f"no drift check: {exc}")
    return {drift_key(measure): {"profile": name, **check_log(log, name, thresholds, measure=measure).to_dict()}
            for measure in MEASURES}


def _print_history(summary: dict[str, Any]) -> None:
    window = f" since {summary['since']}" if summary["since"] else ""
    print(f"{summary['log']}: {summary['total']} records{window}")
    if ahead := summary["stamped_ahead"]["records"]:
        print(f"WARNING: {ahead} record(s) stamped in the future (up to {local_time(summary['stamped_ahead']['latest'])}): "
              "this PC's clock was ahead when they were written, so every --since window counts them as new")
    print("per verdict:  " + ("  ".join(f"{k} {v}" for k, v in sorted(summary["verdicts"].items())) or "-"))
    if summary["runs"]:
        print(f"runs:         {len(summary['runs'])} capture loop(s) started{window}, newest first:")
        for run in summary["runs"][:5]:
            settings, when = run["settings"], local_time(run["started_at"])
            stopped = local_time(run["stopped_at"]) if run["stopped_at"] else "not stopped (running, or killed)"
            limits = settings.get("thresholds") or {}
            print(f"  {when} to {stopped}  {run['source']}  {settings.get('profile')} ({settings.get('precision')}) "
                  f"warn {limits.get('warn', float('nan')):.4g} defect {limits.get('defect', float('nan')):.4g}  "
                  f"self-test {settings.get('selftest')}  software {settings.get('software')}")
    if len(summary["judged_by"]) > 1:
        print(f"judged by {len(summary['judged_by'])} settings (the counts above mix them):")
        for judged in summary["judged_by"]:
            models = ", ".join(f"{k} {v[:12]}" for k, v in sorted((judged["model_sha256"] or {}).items())) or "-"
            span = " to ".join(local_time(t) for t in (judged["first"], judged["last"]))
            print(f"  {span}  {judged['profile']}  warn {judged['warn']:.4g}  defect {judged['defect']:.4g}  models "
                  f"{models}:  " + "  ".join(f"{k} {v}" for k, v in sorted(judged["verdicts"].items())))
    print("per class:    " + ("  ".join(f"{k} {v}" for k, v in summary["classes"].items()) or "-"))
    if summary["error_causes"]:
        quality = FrameQualityError.__name__
        print("errors:       " + "  ".join(f"{k} {v}" for k, v in summary["error_causes"].items())
              + (f"  ({quality}: {FrameQualityError.hint})" if quality in summary["error_causes"] else ""))
    checked = {drift["profile"] for measure in MEASURES if (drift := summary.get(drift_key(measure))) and drift.get("profile")}
    if checked:
        print(f"drift checks: profile {', '.join(sorted(checked))}")
    for measure in MEASURES:
        if drift := summary.get(drift_key(measure)):
            status = drift["status"].upper() if drift["drifted"] else drift["status"]
            print(f"{measure.name + ' drift:':13s} {status}: {drift['message']}")
    if summary["unfired_rejects"]:
        print(f"NOT FIRED:    {summary['unfired_rejects']} flagged frame(s) whose reject hook failed: they may still be "
              "on the line (their error reads \"reject hook failed\")")
    print(f"reviews:      {summary_line(summary['reviews'])}")
    print(f"last rejects ({len(summary['last_rejects'])}; to review #N: `review --db LOG N --shows defect|good --by NAME`):")
    for row in summary["last_rejects"]:
        stamp = local_time(row["captured_at"] or row["recorded_at"], seconds=True)
        confidence = f"{row['confidence']:.2f}" if row["confidence"] is not None else "-"
        print(f"  #{row['id']}  {stamp}  {row['source']}  {row['frame_id']}  score {row['score']:.4f}"
              f" (defect >= {row['defect_threshold']:.4f})  {row['defect_class'] or '-'} {confidence}"
              + (f"  {row['overlay_path']}" if row["overlay_path"] else "")
              + (f"  ({row['error']})" if row["error"] else ""))


def _on_log(db: str, read: Callable[[SqliteLog], Any]) -> tuple[Any, int | None]:
    """(``read(log)``, None) on the existing log at ``db``, closed after; (None, EXIT_USAGE) with the error
    printed when there is no log or ``read`` raises ``ValueError`` (an unreadable time, for one)."""
    try:
        log = SqliteLog(db, create=False)
    except FileNotFoundError as exc:
        print(f"error: {exc} (run `watch` first, or pass --db)", file=sys.stderr)
        return None, EXIT_USAGE
    except InspectionLogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None, EXIT_USAGE
    try:
        return read(log), None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None, EXIT_USAGE
    finally:
        log.close()


def cmd_prune(args: argparse.Namespace) -> int:
    report, failed = _on_log(args.db, lambda log: prune_log(log, args.older_than, args.overlays or [Path(args.db).parent],
                                                            args.dry_run))
    if failed is not None:
        return failed
    print(json.dumps(report.to_dict()) if args.json else f"{args.db}: {report.line()}")
    return 0


def _print_retention(report: RetentionReport) -> None:
    if report.deleted_records:
        print(f"\n[watch] retention: {report.line()}", file=sys.stderr)


def _print_retention_failure(exc: Exception) -> None:
    print(f"\n[watch] retention failed: {exc}", file=sys.stderr)


def cmd_history(args: argparse.Namespace) -> int:
    summary, failed = _on_log(args.db, lambda log: history_summary(
        log, args.since, args.last, profile_drifts(log, args.manifest, args.profile, args.since)))
    if failed is not None:
        return failed
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        _print_history(summary)
    drifted = any(summary[drift_key(measure)]["drifted"] for measure in MEASURES)
    if drifted or summary["unfired_rejects"]:
        return 1  # a person must look
    if any(summary[drift_key(measure)]["status"] in ("needs_profile", "unavailable", "clock_behind")
           for measure in MEASURES):
        return EXIT_USAGE  # no drift check could run (two profiles, no manifest, the clock): a cron line must not pass
    return 0
