"""Two or more exported gate graphs timed against each other on the same input, in the same run.

For a change to the exported graph that should compute the same (a rewrite for speed): each graph runs
one intra-op thread with the runtime's session options, in interleaved rounds so that a slower spell of a
shared machine hits every graph alike, and its outputs are compared with the first graph's.

    git show <commit>:models/neu-steel/autoencoder.onnx > /tmp/before.onnx
    python -m bench.compare_graphs /tmp/before.onnx models/neu-steel/autoencoder.onnx [--side 240] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bench.stats import summary
from bench.tuning import model_ms
from edge_runtime.inspector import session


def compare(paths: list[Path], side: int, rounds: int, runs_per_round: int) -> list[dict]:
    """Per graph: its path, the summary of its per-round median times (ms) and, from the second graph on,
    the largest difference of each output from the first graph's on a seeded random frame."""
    sessions = [session(path) for path in paths]
    frame = np.random.default_rng(0).random((1, side, side, 1), dtype=np.float32)
    outputs = [s.run(None, {s.get_inputs()[0].name: frame}) for s in sessions]
    medians: list[list[float]] = [[] for _ in sessions]
    for _ in range(rounds):
        for s, times in zip(sessions, medians):
            times.append(model_ms(s, frame, runs_per_round))
    names = [o.name for o in sessions[0].get_outputs()]
    return [{"path": str(path), "ms": summary(times),
             "max_abs_diff_vs_first": None if i == 0 else
             {name: float(np.max(np.abs(a - b))) for name, a, b in zip(names, outputs[0], out)}}
            for i, (path, times, out) in enumerate(zip(paths, medians, outputs))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare_graphs", description=__doc__.splitlines()[0])
    parser.add_argument("graphs", type=Path, nargs="+", help="ONNX gate graphs; the first is the reference")
    parser.add_argument("--side", type=int, default=240, help="padded input side (240: a 200x200 frame)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=40, help="timed runs per graph and round")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = compare(args.graphs, args.side, args.rounds, args.runs)
    if args.json:
        print(json.dumps(rows))
        return 0
    reference = rows[0]["ms"]["p50"]
    for row in rows:
        diff = row["max_abs_diff_vs_first"]
        print(f"{row['path']}: median {row['ms']['p50']:.3f} ms (min {row['ms']['min']:.3f}), "
              f"{reference / row['ms']['p50']:.2f}x the first" + (f"; outputs differ by at most {diff}" if diff else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
