"""Throughput (frames/s) at the benchmark's defect rate: threads sharing or owning an Inspector, and
processes with their own, over pre-decoded frames as a camera delivers them."""

from __future__ import annotations

import multiprocessing as mp
import resource
import threading
import time

import numpy as np

from edge_runtime import Inspector, Verdict

PC = time.perf_counter


def _run_share(inspector: Inspector, frames: list[np.ndarray], batch: int, flagged: list) -> None:
    for start in range(0, len(frames), batch):
        results = inspector.inspect_batch(frames[start: start + batch])
        flagged.append(sum(1 for r in results if getattr(r, "verdict", None) is not Verdict.OK))


def throughput_threads(inspectors: list[Inspector], frames: list[np.ndarray], workers: int, batch: int) -> dict:
    """``workers`` Python threads, thread k using inspectors[k % len(inspectors)]."""
    flagged: list[int] = []
    _run_share(inspectors[0], frames[: 2 * batch], batch, [])  # warm-up
    shares = [frames[k::workers] for k in range(workers)]
    threads = [threading.Thread(target=_run_share, args=(inspectors[k % len(inspectors)], shares[k], batch, flagged))
               for k in range(workers)]
    start = PC()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = PC() - start
    return {"fps": len(frames) / elapsed, "frames": len(frames), "seconds": elapsed,
            "flag_rate": sum(flagged) / len(frames)}


def _process_worker(manifest, profile, precision, intra, frames, batch, barrier, queue) -> None:
    inspector = Inspector.from_manifest(manifest, profile, intra, precision)
    _run_share(inspector, frames[: 2 * batch], batch, [])
    flagged: list[int] = []
    barrier.wait()
    start = PC()
    _run_share(inspector, frames, batch, flagged)
    queue.put({"seconds": PC() - start, "flagged": sum(flagged),
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0})


def throughput_processes(args, frames: list[np.ndarray], processes: int, batch: int) -> dict:
    """``processes`` spawned processes, each with its own Inspector (1 intra-op thread each)."""
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(processes + 1), ctx.Queue()
    procs = [ctx.Process(target=_process_worker, args=(args.manifest, args.profile, args.precision, 1,
                                                       frames[k::processes], batch, barrier, queue))
             for k in range(processes)]
    for p in procs:
        p.start()
    barrier.wait()
    start = PC()
    reports = [queue.get() for _ in procs]
    elapsed = PC() - start
    for p in procs:
        p.join()
    return {"fps": len(frames) / elapsed, "frames": len(frames), "seconds": elapsed,
            "flag_rate": sum(r["flagged"] for r in reports) / len(frames),
            "worker_peak_rss_mb": [round(r["peak_rss_mb"], 1) for r in reports]}


def throughput(args, inspector: Inspector, frames: list[np.ndarray]) -> list[dict]:
    rows = []

    def add(label, threads, intra, batch, result):
        rows.append({"config": label, "callers": threads, "intra_op_threads": intra, "batch": batch, **result})

    for batch in args.batch_sizes:
        add(f"1 thread, batch {batch}", 1, 1, batch, throughput_threads([inspector], frames, 1, batch))
    big = max(args.batch_sizes)
    wide = Inspector.from_manifest(args.manifest, args.profile, 2, args.precision)
    add(f"1 thread, intra-op 2, batch {big}", 1, 2, big, throughput_threads([wide], frames, 1, big))
    del wide
    add(f"2 threads, one shared Inspector, batch {big}", 2, 1, big,
        throughput_threads([inspector], frames, 2, big))
    if not args.quick:
        second = Inspector.from_manifest(args.manifest, args.profile, 1, args.precision)
        add(f"2 threads, own Inspector each, batch {big}", 2, 1, big,
            throughput_threads([inspector, second], frames, 2, big))
        del second
        add(f"2 processes, own Inspector each, batch {big}", 2, 1, big,
            throughput_processes(args, frames, 2, big))
    return rows

