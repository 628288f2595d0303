"""Writing models.manifest.json: file hashes, versions, one profile entry at a time."""

from __future__ import annotations

import json
import time
from pathlib import Path

from edge_runtime.manifest import MANIFEST_SCHEMA, sha256_of, write_manifest


def model_entry(path: Path, root: Path) -> dict:
    entry = {"path": path.relative_to(root).as_posix(), "sha256": sha256_of(path), "bytes": path.stat().st_size}
    if path.suffix == ".onnx":
        from export.onnx_export import describe

        entry.update(describe(path))
    return entry


def versions() -> dict:
    import keras
    import onnx
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    return {"tensorflow": tf.__version__, "keras": keras.__version__, "tf2onnx": tf2onnx.__version__,
            "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def update_manifest(path: Path, profile: str, entry: dict, default_profile: str = "neu-steel") -> list[str]:
    """Replace one profile's entry, keeping the others. Returns what the old entry had that the new one
    drops (int8 models, thresholds commissioned on a line), for the caller to say so."""
    manifest = json.loads(path.read_text()) if path.is_file() else {"profiles": {}}
    manifest["schema_version"] = MANIFEST_SCHEMA
    old = manifest["profiles"].get(profile, {})
    dropped = [f"the int8 {model} (run python -m export.quantize --profile {profile})"
               for model in ("autoencoder", "classifier") if "int8" in old.get(model, {})]
    if "golden" in old:
        dropped.append(f"the golden frames of the self-test (run python -m export.golden --profile {profile})")
    if "commissioned" in old.get("thresholds", {}):
        dropped.append("thresholds commissioned on a line's own frames (commission again: python -m edge_runtime "
                       "calibrate, docs/commissioning.md)")
    manifest["profiles"][profile] = entry
    if default_profile in manifest["profiles"]:
        manifest["default_profile"] = default_profile
    else:
        manifest.setdefault("default_profile", profile)
    write_manifest(path, manifest)
    return dropped
