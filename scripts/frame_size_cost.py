#!/usr/bin/env python
"""What one large frame costs the deployed gate: seconds and peak resident memory per frame size.

Each size runs in a fresh process (peak RSS is per process), on a synthetic textured frame, with the
profile's ``preprocessing.max_pixels`` lifted for the measurement. The figures set that limit's
default (``edge_runtime.preprocess.PreprocessSpec``).

    python scripts/frame_size_cost.py --sides 1024 2048 4096
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = """
import dataclasses, json, resource, sys, time
import cv2, numpy as np
from edge_runtime import Inspector
inspector = Inspector.from_manifest(profile=sys.argv[2] or None)
spec = dataclasses.replace(inspector.config.preprocess, max_pixels=None)
inspector.config = dataclasses.replace(inspector.config, preprocess=spec)
side = int(sys.argv[1])
frame = cv2.GaussianBlur(np.random.default_rng(0).integers(80, 170, (side, side), dtype=np.uint8), (0, 0), 1.5)
start = time.perf_counter()
inspector.inspect(frame)
print(json.dumps({"side": side, "megapixels": side * side / 1e6, "seconds": round(time.perf_counter() - start, 2),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    parser.add_argument("--profile", default="", help="model profile (default: the manifest's default)")
    args = parser.parse_args()
    for side in args.sides:
        out = subprocess.run([sys.executable, "-c", CHILD, str(side), args.profile], capture_output=True, text=True)
        print(out.stdout.strip() if out.returncode == 0 else json.dumps({"side": side, "error": out.stderr[-400:]}),
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
