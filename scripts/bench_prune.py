#!/usr/bin/env python
"""Retention cost: how long ``SqliteLog.prune`` takes on a large log, and the longest it holds the write lock.

Fills a fresh log with ``--records`` records 40 days old (and 1,000 from today), then prunes everything
older than 30 days in batches (``SqliteLog.prune``'s default). The longest batch is the longest a
capture loop writing to the same file waits; SQLite's busy timeout in ``SqliteLog`` is 30 s.

    python scripts/bench_prune.py --records 1000000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from edge_runtime.sinks import Record, SqliteLog

DAY = 86_400.0


def fill(log: SqliteLog, records: int, now: float, chunk: int = 50_000) -> None:
    old = now - 40 * DAY
    for start in range(0, records, chunk):
        log.write([Record("camera:0", f"f{i}", "ok", recorded_at=old + i * 0.1, score=1.0)
                   for i in range(start, min(records, start + chunk))])
    log.write([Record("camera:0", f"n{i}", "ok", recorded_at=now - i) for i in range(1000)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="old records to prune (default: %(default)s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, SqliteLog(Path(tmp) / "log.db", synchronous="NORMAL") as log:
        now = time.time()
        fill(log, args.records, now)
        commits = [time.perf_counter()]
        pruned = log.prune(now - 30 * DAY, after_batch=lambda _: commits.append(time.perf_counter()))
        total = time.perf_counter() - commits[0]
        longest = max(b - a for a, b in zip(commits, commits[1:])) if len(commits) > 1 else total
        print(json.dumps({"records_deleted": pruned.deleted, "kept": log.count(), "seconds": round(total, 2),
                          "seconds_per_million": round(total / max(pruned.deleted, 1) * 1e6, 2),
                          "batches": len(commits) - 1, "longest_batch_ms": round(longest * 1000, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
