"""Shared by soak.py / bench_loop.py: the real Inspector when its models exist, else the fake one."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def load_inspector(kind: str, manifest: str | None, profile: str | None, delay_s: float = 0.0) -> tuple[Any, str]:
    """kind: 'real', 'fake' or 'auto' (real if it loads). Returns (inspector, kind used)."""
    from edge_runtime.capture.fake_inspector import FakeInspector

    if kind == "fake":
        return FakeInspector(delay_s=delay_s), "fake"
    try:
        from edge_runtime.inspector import Inspector

        return Inspector.from_manifest(manifest, profile), "real"
    except Exception as exc:
        if kind == "real":
            raise
        print(f"[note] real Inspector unavailable ({type(exc).__name__}: {exc}); using the fake inspector",
              file=sys.stderr)
        return FakeInspector(delay_s=delay_s), "fake"


def rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None
