#!/usr/bin/env python
"""Soak test: >=10,000 synthetic frames (1% corrupt) through the real loop and SQLite log.

Asserts no crash and exact accounting (captured == logged verdicts + logged errors +
counted drops, every corrupt frame an error record, integrity ok); prints a JSON summary.

    python scripts/soak.py --frames 10000 --corrupt-rate 0.01 --workers 2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Iterator

from _inspector_choice import load_inspector, rss_mb

from edge_runtime.capture.commands import _quiet_opencv
from edge_runtime.capture.loop import InspectionLoop, LoopConfig
from edge_runtime.capture.sources import Frame
from edge_runtime.capture.synthetic import SyntheticStripSource
from edge_runtime.sinks import SqliteLog


class CountingSynthetic(SyntheticStripSource):
    """Counts the corrupt frames it hands out, so the log can be checked against them."""

    corrupt = 0

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        for frame in super().frames(stop):
            self.corrupt += frame.meta.get("label") == "corrupt"
            yield frame


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=10_000)
    p.add_argument("--corrupt-rate", type=float, default=0.01)
    p.add_argument("--defect-rate", type=float, default=0.1)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--queue", type=int, default=16)
    p.add_argument("--batch", type=int, default=8, help="worker batch size (default: watch's --batch)")
    p.add_argument("--drop-oldest", action="store_true")
    p.add_argument("--fps", type=float, help="pace the source (default: as fast as possible, back-pressure)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--db", help="log file (default: a temporary one)")
    p.add_argument("--inspector", choices=("auto", "real", "fake"), default="auto")
    p.add_argument("--fake-delay", type=float, default=0.0, help="fake inspector: seconds per frame")
    p.add_argument("--manifest")
    p.add_argument("--profile")
    return p.parse_args()


def check(summary: dict, source: CountingSynthetic, frames: int) -> list[str]:
    loop, db = summary["loop"], summary["db"]
    logged = sum(db["verdicts"].get(v, 0) for v in ("ok", "warn", "defect"))
    problems = []
    if summary["crashes"]:
        problems.append(f"{summary['crashes']} crash(es)")
    if loop["captured"] != frames:
        problems.append(f"captured {loop['captured']} != {frames} frames")
    if loop["captured"] != logged + db["verdicts"].get("error", 0) + loop["dropped"]:
        problems.append("captured != logged verdicts + logged errors + counted drops")
    if db["verdicts"].get("dropped", 0) != loop["dropped"]:
        problems.append("logged drops != counted drops")
    if loop["dropped"] == 0 and db["verdicts"].get("error", 0) != source.corrupt:
        problems.append(f"{source.corrupt} corrupt frames but {db['verdicts'].get('error', 0)} error records")
    if db["integrity"] != "ok" or loop["sink_errors"]:
        problems.append(f"log integrity {db['integrity']}, {loop['sink_errors']} sink errors")
    return problems


def main() -> int:
    args = parse_args()
    _quiet_opencv()
    inspector, kind = load_inspector(args.inspector, args.manifest, args.profile, args.fake_delay)
    db_path = Path(args.db or Path(tempfile.mkdtemp(prefix="soak-")) / "soak.db")
    source = CountingSynthetic(args.defect_rate, seed=args.seed, count=args.frames,
                               corrupt_rate=args.corrupt_rate, encoding="png", fps=args.fps)
    log = SqliteLog(db_path)
    config = LoopConfig(workers=args.workers, queue_size=args.queue, drop_oldest=args.drop_oldest,
                        batch_size=args.batch)
    rss_start, crashes, started = rss_mb(), 0, time.perf_counter()
    try:
        snap = InspectionLoop(source, inspector, [log], config).run()
    except Exception:
        traceback.print_exc()
        crashes, snap = 1, {"captured": -1, "dropped": 0, "sink_errors": -1}
    wall = time.perf_counter() - started
    db = {"path": str(db_path), "integrity": log.integrity_check(), "journal_mode": log.pragma("journal_mode"),
          "verdicts": log.counts_by_verdict(), "classes": log.counts_by_class()}
    log.close()
    summary = {"inspector": kind, "profile": getattr(inspector, "profile", None), "frames": args.frames,
               "corrupt_injected": source.corrupt, "workers": args.workers, "batch": args.batch,
               "wall_s": round(wall, 2),
               "frames_per_s": round(args.frames / wall, 1), "crashes": crashes,
               "rss_mb_start": rss_start, "rss_mb_end": rss_mb(), "loop": snap, "db": db}
    summary["problems"] = check(summary, source, args.frames)
    summary["passed"] = not summary["problems"]
    print(json.dumps(summary, indent=2))
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
