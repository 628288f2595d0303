"""``python -m edge_runtime review``: say what a logged frame really showed (``sinks.reviews``).

    python -m edge_runtime review --db inspections.db 17 --shows good --by "A. Novak" --note "oil stain"
    python -m edge_runtime review --db inspections.db 18 --shows defect --class scratches --by "A. Novak"
    python -m edge_runtime review --db inspections.db --list --since 8h
    python -m edge_runtime review --db inspections.db --export reviewed/   # reviewed/good/, reviewed/<class>/

The record numbers are those ``history`` prints beside the last rejects (``#17``) and the dashboard's
History table shows. ``history`` sums the reviews up: how many flags were confirmed, how many were false
alarms, whether the classifier named the class the reviewer did, and the passed frames found defective.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Iterable

from ..sinks import Review, SqliteLog
from ..sinks.reviews import SHOWS
from ..timestamps import local_time
from .overlay_writer import file_safe

EXIT_USAGE = 2


def register_review(subparsers: Any) -> None:
    review = subparsers.add_parser("review", help="record what a logged frame really showed (operator review)",
                                   description=__doc__.splitlines()[0])
    review.add_argument("--db", default="inspections.db", help="SQLite inspection log (default: %(default)s)")
    review.add_argument("record", type=_record_number, nargs="?",
                        help="the record's number (history's #N, the dashboard's id)")
    review.add_argument("--shows", choices=SHOWS, help="what the frame shows: a defect, or good strip")
    review.add_argument("--class", dest="defect_class", default=None,
                        help="with --shows defect: the defect's class, where you know it")
    review.add_argument("--by", default=None, help="who looked at the frame (kept in the log)")
    review.add_argument("--note", default=None, help="a remark kept with the review")
    review.add_argument("--list", action="store_true", help="list the newest review of each reviewed record instead")
    review.add_argument("--all", action="store_true",
                        help="with --list: every review of each record, oldest first (the newest is the one that counts)")
    review.add_argument("--export", type=Path, metavar="DIR",
                        help="copy the saved frames (watch --save-frames) of the reviewed records into DIR/good/ and "
                             "DIR/<class>/, the class-folder layout training and calibrate read")
    review.add_argument("--since", help="with --list or --export: only records since 30m, 12h, 7d, an ISO date/time "
                                        "or unix seconds")
    review.add_argument("--json", action="store_true", help="print JSON")
    review.set_defaults(func=cmd_review)


def _record_number(text: str) -> int:
    try:
        return int(text.lstrip("#"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a record number (history prints them as #17)") from None


def cmd_review(args: argparse.Namespace) -> int:
    if sum((args.record is not None, args.list, args.export is not None)) != 1:
        print("error: give a record number to review, or --list, or --export DIR", file=sys.stderr)
        return EXIT_USAGE
    if args.all and not args.list:
        print("error: --all goes with --list", file=sys.stderr)
        return EXIT_USAGE
    from .commands import _on_log

    command = _export if args.export is not None else _list if args.list else _add
    status, failed = _on_log(args.db, lambda log: command(log, args))
    return failed if failed is not None else status


def _add(log: SqliteLog, args: argparse.Namespace) -> int:
    if args.shows is None or not args.by:
        raise ValueError("a review needs --shows (defect or good) and --by (who looked at the frame)")
    defect_class = _known_class(args.defect_class, log.profile_of(args.record), getattr(args, "manifest", None))
    review = Review(args.record, args.shows, args.by, defect_class, args.note)
    review_id = log.add_review(review)
    [latest] = log.latest_reviews(record=args.record)
    if args.json:
        print(json.dumps({"review_id": review_id, **latest}))
    else:
        print(f"review {review_id} of record #{args.record} ({_verdict(latest)}): shows {review.shows}"
              + (f" ({review.defect_class})" if review.defect_class else "") + f", by {review.reviewer}"
              + (f"; record reviewed {latest['reviews']} times, the newest counts" if latest["reviews"] > 1 else ""))
    return 0


def _known_class(name: str | None, profile: str | None, manifest: Path | None) -> str | None:
    """The class as the record's profile spells it (case and blanks aside): a misspelt class would skew the
    class agreement and become a class folder of its own in ``--export``, which training would learn.
    Without the profile in the manifest the name is kept as given, blanks trimmed."""
    from ..errors import ManifestError
    from ..manifest import load_manifest

    if name is None:
        return None
    try:
        classes = load_manifest(manifest)["profiles"][profile]["class_names"]
    except (ManifestError, KeyError, TypeError):
        return name.strip()
    spelled = {known.lower(): known for known in classes}.get(name.strip().lower())
    if spelled is None:
        raise ValueError(f"{name!r} is not a class of profile {profile}: {', '.join(classes)}")
    return spelled


def _list(log: SqliteLog, args: argparse.Namespace) -> int:
    rows = log.all_reviews(args.since) if args.all else log.latest_reviews(args.since)
    if args.json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        stamp = local_time(row["reviewed_at"])
        print(f"#{row['inspection_id']}  {row['source']}  {row['frame_id']}  {_verdict(row)}  ->  shows {row['shows']}"
              + (f" ({row['reviewed_class']})" if row["reviewed_class"] else "")
              + f"  by {row['reviewer']} {stamp}" + (f"  \"{row['note']}\"" if row["note"] else ""))
    print(f"{len(rows)} review(s)" if args.all else f"{len(rows)} reviewed record(s)")
    return 0


def _export(log: SqliteLog, args: argparse.Namespace) -> int:
    report = export_reviewed(log.latest_reviews(args.since), args.export, log.path.parent)
    if args.json:
        print(json.dumps(report))
    else:
        folders = ", ".join(f"{name}/ {count}" for name, count in sorted(report["folders"].items())) or "none"
        print(f"{args.export}: {report['copied']} reviewed frame(s) copied ({folders}); {report['without_frame']} "
              f"reviewed record(s) without a saved frame (watch --save-frames keeps them), {report['missing']} whose "
              "frame file is gone")
    return 0


def export_reviewed(rows: Iterable[dict[str, Any]], out: Path, base: Path) -> dict[str, Any]:
    """Copy the saved frame of each reviewed record (``SqliteLog.latest_reviews``) into ``out``/``good``/ for
    good strip, ``out``/<the reviewer's class>/ for a defect (``unnamed_defect``/ where none was named): the
    layout ``python -m training all --data out --normal-class good`` trains on and ``calibrate out/good``
    commissions on. A relative frame path is read against ``base`` (the log's folder). File names start with
    the record number, so a frame exported twice is one file."""
    report: dict[str, Any] = {"copied": 0, "without_frame": 0, "missing": 0, "folders": {}}
    for row in rows:
        if not row["frame_path"]:
            report["without_frame"] += 1
            continue
        source = Path(row["frame_path"]) if Path(row["frame_path"]).is_absolute() else base / row["frame_path"]
        if not source.is_file():
            report["missing"] += 1
            continue
        folder = "good" if row["shows"] == "good" else _folder_name(row["reviewed_class"] or "unnamed_defect")
        target = Path(out) / folder / f"{row['inspection_id']}_{source.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        report["copied"] += 1
        report["folders"][folder] = report["folders"].get(folder, 0) + 1
    return report


def _folder_name(label: str) -> str:
    """A reviewer's class as a folder name (``file_safe``), never '..' or empty."""
    return file_safe(label.strip()).strip("._") or "unnamed_defect"


def _verdict(row: dict[str, Any]) -> str:
    return row["verdict"] + (f" {row['predicted_class']}" if row["predicted_class"] else "")
