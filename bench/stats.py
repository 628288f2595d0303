"""Latency summaries shared by the benchmark scripts."""

from __future__ import annotations

import numpy as np


def summary(values_ms) -> dict:
    """p50 / p90 / p99 / mean / min (ms) and the sample count."""
    v = np.asarray(list(values_ms), dtype=np.float64)
    p50, p90, p99 = np.percentile(v, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(v.mean()),
            "min": float(v.min()), "n": int(v.size)}
