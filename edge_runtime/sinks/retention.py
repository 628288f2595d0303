"""Retention: keep the line PC's disk from filling with old records, overlay images and saved frames.

A line inspecting 10 frames/s writes about 860,000 log rows a day and, at 5% flagged frames, some
43,000 overlay images. ``python -m edge_runtime prune`` (or ``watch --retain``) deletes the records
older than a window together with their overlays. Overlays are deleted only inside the folders
named for them, so a tampered or odd path in the log never deletes anything else. SQLite reuses the
freed pages, so the log file stops growing rather than shrinking.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..timestamps import local_time
from .sqlite_log import SqliteLog, parse_since


@dataclass(frozen=True)
class RetentionReport:
    before: float  # unix seconds: records written before it were deleted
    deleted_records: int
    kept_in_folder: int  # records of files still in a watched folder, kept so they are not inspected again
    deleted_overlays: int
    overlays_outside: int  # overlay paths outside the image folders: left alone
    overlays_missing: int
    dry_run: bool
    deleted_frames: int = 0  # saved frames (watch --save-frames)
    frames_outside: int = 0
    frames_missing: int = 0
    deleted_reviews: int = 0  # operator reviews of the deleted records
    kept_out_of_order: int = 0  # stamped before the cut, logged after newer records (the clock was set back)

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return (f"{verb} {self.deleted_records} records written before "
                f"{local_time(self.before, seconds=True)}, {self.deleted_overlays} "
                f"overlay images, {self.deleted_frames} saved frames and {self.deleted_reviews} operator reviews; "
                f"kept {self.kept_in_folder} records of files "
                f"still in watched folders; {self.overlays_outside + self.frames_outside} image paths outside the "
                f"image folders left alone, {self.overlays_missing + self.frames_missing} already gone"
                + (f"; kept {self.kept_out_of_order} records stamped before the cut but logged after newer ones (this "
                   "PC's clock was set back)" if self.kept_out_of_order else ""))


def image_folders(log_path: Path, *folders: Path | str | None) -> list[Path]:
    """The folders whose images a prune of the log at ``log_path`` may delete: the log's own and the
    overlay and frame folders given (None: not used)."""
    return [Path(log_path).parent, *(Path(folder) for folder in folders if folder)]


def prune_log(log: SqliteLog, older_than: str | float, image_dirs: Sequence[Path], dry_run: bool = False,
              now: float | None = None) -> RetentionReport:
    """Delete the records written before ``older_than`` ("30d", "12h", an ISO date or unix seconds) and
    their overlay images and saved frames inside ``image_dirs`` (a relative path is read against the log's
    folder)."""
    before = parse_since(older_than, now)
    if before is None:
        raise ValueError("name how old a record must be to go: e.g. 30d")
    pruned = log.prune(before, dry_run, now=now)
    roots = [Path(d).resolve() for d in image_dirs]
    overlays = _delete_inside(pruned.overlay_paths, roots, log.path.parent, dry_run)
    frames = _delete_inside(pruned.frame_paths, roots, log.path.parent, dry_run)
    return RetentionReport(before, pruned.deleted, pruned.kept_in_folder, *overlays, dry_run, *frames, pruned.reviews,
                           pruned.kept_out_of_order)


def _delete_inside(paths: Sequence[str], roots: Sequence[Path], base: Path, dry_run: bool) -> tuple[int, int, int]:
    """Delete the files among ``paths`` that lie inside one of ``roots``: (deleted, outside, missing)."""
    deleted = outside = missing = 0
    for text in paths:
        path = (Path(text) if Path(text).is_absolute() else base / text).resolve()
        if not any(path.is_relative_to(root) for root in roots):
            outside += 1
        elif not path.is_file():
            missing += 1
        else:
            if not dry_run:
                path.unlink()
            deleted += 1
    return deleted, outside, missing


def keep_pruning(log: SqliteLog, older_than: str, image_dirs: Sequence[Path], stop: threading.Event,
                 on_report: Callable[[RetentionReport], None], on_failure: Callable[[Exception], None],
                 period_s: float = 3600.0) -> None:
    """Prune at once and then every ``period_s`` until ``stop`` is set (``watch --retain``, the dashboard's
    live line). A failure is handed to ``on_failure`` and tried again next period: retention never stops
    the inspection."""
    while True:
        try:
            on_report(prune_log(log, older_than, image_dirs))
        except (OSError, ValueError, sqlite3.Error) as exc:
            on_failure(exc)
        if stop.wait(period_s):
            return
