"""Shared fixtures and skip rules: tests that need ../shared, the committed models or
TensorFlow say so when those are absent."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
NEU = SHARED / "data" / "neu-det"
MAGNETIC_TILE = SHARED / "data" / "magnetic-tile"
MANIFEST = ROOT / "models.manifest.json"

needs_neu = pytest.mark.skipif(not NEU.is_dir(), reason=f"NEU-DET data not found at {NEU} (../shared absent)")
needs_tile = pytest.mark.skipif(
    not MAGNETIC_TILE.is_dir(), reason=f"magnetic-tile data not found at {MAGNETIC_TILE} (../shared absent)"
)
needs_models = pytest.mark.skipif(not MANIFEST.is_file(), reason="models.manifest.json not present (models not exported yet)")
needs_tf = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="TensorFlow not installed (install the [train] extra)"
)


@pytest.fixture(scope="session")
def base():
    """The ImageNet MobileNetV2 (3-channel input) both models start from; needs TensorFlow and ../shared."""
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow not installed (install the [train] extra)")
    from training.backbone import SHARED_WEIGHTS, mobilenet_v2

    if not SHARED_WEIGHTS.is_file():
        pytest.skip(f"ImageNet MobileNetV2 weights not found at {SHARED_WEIGHTS} (../shared absent)")
    return mobilenet_v2((None, None, 3))


def textured(shape: tuple[int, ...], level: int = 120, seed: int = 0, spread: float = 3.0):
    """A uint8 frame of fine random texture around grey ``level`` (``spread`` grey levels of standard
    deviation): something the runtime inspects. A flat frame is refused as blank
    (``PreprocessSpec.min_contrast``), white noise as a noise frame (``min_neighbour_correlation``): the
    texture is noise blurred over a couple of pixels, as optics blur a surface."""
    import cv2
    import numpy as np

    noise = np.random.default_rng(seed).normal(0.0, 1.0, shape).astype(np.float32)
    blurred = cv2.GaussianBlur(noise, (0, 0), 1.5)
    return np.clip(level + spread * blurred / blurred.std(), 0, 255).astype(np.uint8)


def make_class_folders(root: Path, classes: list[str], n: int = 6, side: int = 48) -> Path:
    """A 'folder of class sub-folders' data set of random gray textures as PNGs."""
    import cv2

    seed = 0
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(root / name / f"{i}.png"), textured((side, side), 128, seed, spread=40.0))
            seed += 1
    return root


def manifest_file_entries(node):
    """Every {"path", "sha256"} entry of a manifest, at any depth (fp32, int8, heads, weights)."""
    if isinstance(node, dict):
        if "path" in node and "sha256" in node:
            yield node
        for value in node.values():
            yield from manifest_file_entries(value)
    elif isinstance(node, list):
        for value in node:
            yield from manifest_file_entries(value)


def editable_manifest(folder: Path) -> Path:
    """A copy of the committed manifest in ``folder`` whose model paths point at the checkout's files,
    for tests that edit it."""
    manifest = json.loads(MANIFEST.read_text())
    for entry in manifest_file_entries(manifest["profiles"]):
        entry["path"] = str((ROOT / entry["path"]).resolve())
    path = folder / "models.manifest.json"
    path.write_text(json.dumps(manifest))
    return path


@pytest.fixture(scope="session")
def manifest() -> dict:
    return json.loads(MANIFEST.read_text())


@pytest.fixture(scope="session")
def inspector():
    from edge_runtime import Inspector

    return Inspector.from_manifest(MANIFEST)


@pytest.fixture(scope="session")
def neu_images() -> list[Path]:
    return sorted((NEU / "images").glob("*.jpg"))


@pytest.fixture
def capture_cli(monkeypatch):
    """The ``watch`` / ``history`` / ``prune`` sub-commands in-process, with the model-free FakeInspector."""
    import argparse

    from edge_runtime.capture import commands
    from edge_runtime.capture.fake_inspector import FakeInspector

    monkeypatch.setattr(commands, "build_inspector", lambda args: FakeInspector())
    parser = argparse.ArgumentParser()
    parser.add_argument("--manifest")
    parser.add_argument("--profile")
    commands.register(parser.add_subparsers(dest="command", required=True))

    def run(*argv):
        args = parser.parse_args(list(argv))
        return args.func(args)

    return run
