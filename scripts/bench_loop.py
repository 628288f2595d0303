#!/usr/bin/env python
"""Loop overhead: frames/s through the capture loop (+ SQLite log) vs bare ``inspect_batch``.

Both sides use the same inspector, the same pre-generated frames and the same number
of threads (bare: each thread calls ``inspect_batch`` on its share in chunks). Target:
loop overhead < 10%.

    python scripts/bench_loop.py --threads 2 --frames 2000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from _inspector_choice import load_inspector

from edge_runtime.capture.loop import InspectionLoop, LoopConfig
from edge_runtime.capture.sources import Frame, FrameSource
from edge_runtime.capture.synthetic import SyntheticStripSource
from edge_runtime.sinks import SqliteLog


class MemorySource(FrameSource):
    """Pre-generated frames, so frame synthesis is not part of the measurement."""

    name = "bench"

    def __init__(self, images: list[np.ndarray]) -> None:
        self.images = images

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        for i, image in enumerate(self.images):
            if stop.is_set():
                return
            yield Frame(f"{i:08d}", self.name, image, time.time())


def bare_fps(inspector: Any, images: list[np.ndarray], threads: int, chunk: int) -> float:
    shares = [images[i::threads] for i in range(threads)]

    def work(share: list[np.ndarray]) -> None:
        for start in range(0, len(share), chunk):
            inspector.inspect_batch(share[start:start + chunk])

    pool = [threading.Thread(target=work, args=(share,)) for share in shares]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return len(images) / (time.perf_counter() - started)


def loop_fps(inspector: Any, images: list[np.ndarray], threads: int, args: argparse.Namespace) -> float:
    sinks = []
    if not args.no_log:
        sinks.append(SqliteLog(Path(tempfile.mkdtemp(prefix="bench-")) / "bench.db"))
    config = LoopConfig(workers=threads, queue_size=args.queue, batch_size=args.loop_batch)
    started = time.perf_counter()
    snap = InspectionLoop(MemorySource(images), inspector, sinks, config).run(handle_signals=False)
    elapsed = time.perf_counter() - started
    for sink in sinks:
        sink.close()
    assert snap["inspected"] + snap["errored"] == len(images), snap
    return len(images) / elapsed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--frames", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--chunk", type=int, default=16, help="bare inspect_batch chunk size")
    p.add_argument("--loop-batch", type=int, default=8, help="loop worker batch size (default: watch's --batch)")
    p.add_argument("--queue", type=int, default=16)
    p.add_argument("--no-log", action="store_true", help="loop without the SQLite sink")
    p.add_argument("--defect-rate", type=float, default=0.1)
    p.add_argument("--inspector", choices=("auto", "real", "fake"), default="auto")
    p.add_argument("--fake-delay", type=float, default=0.005, help="fake inspector: seconds of 'model time' per frame")
    p.add_argument("--manifest")
    p.add_argument("--profile")
    args = p.parse_args()
    inspector, kind = load_inspector(args.inspector, args.manifest, args.profile, args.fake_delay)
    images = [f.data for f in SyntheticStripSource(args.defect_rate, seed=1, count=args.frames).frames(threading.Event())]
    bare_fps(inspector, images[:50], args.threads, args.chunk)  # warm-up
    bare, loop = [], []
    for _ in range(args.repeats):
        bare.append(bare_fps(inspector, images, args.threads, args.chunk))
        loop.append(loop_fps(inspector, images, args.threads, args))
    bare_med, loop_med = statistics.median(bare), statistics.median(loop)
    result = {
        "inspector": kind, "profile": getattr(inspector, "profile", None), "threads": args.threads,
        "frames": args.frames, "repeats": args.repeats, "sqlite_log": not args.no_log, "loop_batch": args.loop_batch,
        "fake_delay_s": args.fake_delay if kind == "fake" else None,
        "bare_fps": [round(v, 1) for v in bare], "loop_fps": [round(v, 1) for v in loop],
        "bare_fps_median": round(bare_med, 1), "loop_fps_median": round(loop_med, 1),
        "overhead_pct": round(100.0 * (1.0 - loop_med / bare_med), 2),
    }
    result["target_met"] = result["overhead_pct"] < 10.0
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
