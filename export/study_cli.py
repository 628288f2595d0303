"""What the measurement commands of ``export`` share: their arguments and where their results go."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_runtime.manifest import MANIFEST_NAME

ROOT = Path(__file__).resolve().parents[1]


def study_parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """``--profile`` (default neu-steel) and ``--manifest``; the module docstring's first line as description."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0])
    parser.add_argument("--profile", default="neu-steel")
    parser.add_argument("--manifest", type=Path, default=ROOT / MANIFEST_NAME)
    return parser


def write_result(profile: str, name: str, data: dict) -> Path:
    """``results/<profile>/<name>.json``, indented, with a final newline."""
    out = ROOT / "results" / profile / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    return out
