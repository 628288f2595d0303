"""``python -m studies.pruning_study [--keep R ...] [--selection S ...]``: how close a pruned backbone stays.

For each kept share of expansion channels and each channel selection (``training.pruning``), the
backbone is pruned on the profile's training frames as ``python -m training autoencoder`` prunes it,
and the relative error ||pruned - ImageNet|| / ||ImageNet|| of the gate's taps is measured on
validation frames (padded as the gate pads them). With ``--distil-epochs N`` each pruned backbone is
then distilled for N epochs on the same training frames (``pruning.distil``) and measured again.
Whether the gate still works is a separate question, answered by ``python -m studies.gate_check``
on a gate trained with the same settings.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

import keras
import numpy as np

from edge_runtime.datasets import split_samples
from training import pruning
from training.autoencoder import TAPS
from training.backbone import mobilenet_v2
from training.data import read_frames
from training.profiles import PROFILES
from training.train_autoencoder import pruning_inputs


def tap_outputs(model: keras.Model, inputs: np.ndarray, names: list[str]) -> list[np.ndarray]:
    return keras.Model(model.input, [model.get_layer(n).output for n in names]).predict(inputs, verbose=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studies.pruning_study", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="neu-steel", choices=sorted(PROFILES))
    parser.add_argument("--keep", type=float, nargs="+", default=[0.5, 0.75])
    parser.add_argument("--selection", nargs="+", default=["energy", "least_squares"])
    parser.add_argument("--val-frames", type=int, default=60)
    parser.add_argument("--distil-epochs", type=int, default=0, help="then distil each for this many epochs")
    parser.add_argument("--distil-lr", type=float, default=3e-4, help="the distillation's Adam learning rate")
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    splits = split_samples(profile.load(), profile.seed, profile.split_fractions)
    train = pruning_inputs(profile, read_frames(splits["train"], profile.preprocess)[0])
    val = pruning_inputs(replace(profile, backbone_fit_frames=args.val_frames),
                         read_frames(splits["val"], profile.preprocess)[0])
    taps = [name for name, _ in TAPS[profile.gate_taps]]
    base = mobilenet_v2((None, None, 3))
    reference = tap_outputs(base, val, taps)
    rows = []
    for keep in args.keep:
        for selection in args.selection:
            blocks = pruning.prune_mobilenet_v2(base, train, keep, seed=profile.seed, selection=selection)
            model = pruning.pruned_backbone(base, blocks)
            for epochs in sorted({0, args.distil_epochs}):
                loss = pruning.distil(base, model, train, epochs, learning_rate=args.distil_lr,
                                      seed=profile.seed) if epochs else None
                errors = {tap: float(np.linalg.norm(o - r) / np.linalg.norm(r))
                          for tap, o, r in zip(taps, tap_outputs(model, val, taps), reference)}
                rows.append({"keep_ratio": keep, "selection": selection, "distil_epochs": epochs, "distil_lr": args.distil_lr,
                             "distil_loss": loss, "relative_error": errors})
                print(json.dumps(rows[-1]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
