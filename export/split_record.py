"""``python -m export.split_record --profile P``: record which images each split of a profile holds.

The export writes ``split.digests`` (``edge_runtime.datasets.split_digests``) into the manifest; this command
writes them for a profile exported before it did, from the profile's data set, without touching the models,
thresholds or anything else. It refuses when the data set no longer splits into the recorded counts: the digests
must describe the images the models were trained on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge_runtime.datasets import split_digests, split_samples
from edge_runtime.manifest import MANIFEST_NAME, load_manifest, write_manifest
from training.data import readable
from training.profiles import trained_profile

ROOT = Path(__file__).resolve().parents[1]


def record_split(manifest_path: Path, name: str) -> dict[str, str]:
    manifest = load_manifest(manifest_path)
    entry = manifest["profiles"][name]["split"]
    profile = trained_profile(name)
    listed = split_samples(profile.load(), profile.seed, profile.split_fractions)
    counts = {split: len(readable(samples, profile.preprocess)) for split, samples in listed.items()}
    if counts != entry["counts"]:
        raise SystemExit(f"split_record: {name}'s data set splits as {counts} now, the manifest records "
                         f"{entry['counts']}: it is not the data set the models were trained on")
    entry["digests"] = split_digests(listed)
    write_manifest(manifest_path, manifest)
    return entry["digests"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.split_record", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True)
    parser.add_argument("--manifest", type=Path, default=ROOT / MANIFEST_NAME)
    args = parser.parse_args(argv)
    print(json.dumps(record_split(args.manifest, args.profile), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
