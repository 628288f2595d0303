"""``python -m training {classifier,autoencoder,residual-detector,all} --profile NAME``: train a profile's models.

``autoencoder`` trains the gate, and its residual detector where the profile has one;
``residual-detector`` trains the detector alone, on the gate already trained.

Keras weights go to ``models/<profile>/keras/`` (the reference the ONNX parity tests
compare against) with the training histories (JSON); plots go to ``results/<profile>/``. Then run
``python -m export --profile NAME``.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import sys
from pathlib import Path

from edge_runtime.cli import positive_int
from edge_runtime.datasets import DatasetError, split_samples
from training.data import check_splits
from training.profiles import PROFILES, folder_profile, with_overrides

ROOT = Path(__file__).resolve().parents[1]


PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["classifier", "autoencoder", "residual-detector", "all"])
    parser.add_argument("--profile", default="neu-steel", help=f"one of {', '.join(PROFILES)} or a new name with --data")
    parser.add_argument("--data", type=Path, help="folder of class sub-folders (a new product line)")
    parser.add_argument("--normal-class", help="with --data: the defect-free sub-folder")
    parser.add_argument("--frame-level", action="store_true",
                        help="with --data: add the frame-level autoencoder to the gate (for defects that change a "
                             "whole frame's texture; see docs/gate_design.md)")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="override the number of fine-tuning / AE epochs (1 or more)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a profile field for a trial, e.g. --set gate_seed=2 (see training/profiles.py)")
    parser.add_argument("--out", type=Path, default=None,
                        help="write the weights and plots here for a trial (default: models/<profile>/keras, "
                             "the weights the export reads)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    if args.frame_level and not args.data:
        parser.error("--frame-level is for a new product line (--data); the built-in profiles fix their own gate")
    if args.data and args.profile in PROFILES:
        parser.error(f"{args.profile!r} is a built-in profile with its own data set; name the new product line "
                     "(--profile my-line --data DIR)")
    if not PROFILE_NAME.fullmatch(args.profile):
        parser.error(f"profile name {args.profile!r}: letters, digits, '-', '_' and '.' only, starting with a letter "
                     "or digit (it names folders under models/ and results/)")
    if args.data and not args.normal_class:
        folders = sorted(p.name for p in args.data.iterdir() if p.is_dir()) if args.data.is_dir() else []
        parser.error("name the defect-free class sub-folder with --normal-class (the gate learns from it alone)"
                     + (f"; the sub-folders of {args.data} are {', '.join(folders)}" if folders else ""))
    profile = (folder_profile(args.profile, args.data, args.normal_class, args.frame_level) if args.data
               else PROFILES.get(args.profile))
    if profile is None:
        parser.error(f"unknown profile {args.profile!r}; give --data DIR for a new one")
    try:
        profile = with_overrides(profile, args.set)
    except (ValueError, TypeError) as error:
        parser.error(str(error))
    weights_dir = args.out or ROOT / "models" / profile.name / "keras"
    results_dir = args.out or ROOT / "results" / profile.name
    earlier = _recorded_overrides(weights_dir)
    deployed = weights_dir.resolve() == (ROOT / "models" / profile.name / "keras").resolve()
    if deployed and args.step != "all" and earlier is not None and earlier != sorted(args.set):
        parser.error(f"{weights_dir} holds weights trained with --set {earlier or 'nothing'}; training the "
                     f"{args.step} with --set {sorted(args.set) or 'nothing'} would leave the deployed models trained "
                     "on different settings, and the export reads one profile: give the same --set, train all, or "
                     "train the trial into --out DIR (a copy of the weights may mix them: it is checked with "
                     "python -m studies.gate_check --weights DIR --set ...)")
    try:
        check_splits(split_samples(profile.load(), profile.seed, profile.split_fractions), profile.preprocess)
        results_dir.mkdir(parents=True, exist_ok=True)  # only once the data can be trained on: no empty folders
        weights_dir.mkdir(parents=True, exist_ok=True)
        if args.step in ("autoencoder", "all"):
            from training.train_autoencoder import train_autoencoder

            kwargs = {"epochs": args.epochs} if args.epochs else {}
            train_autoencoder(profile, weights_dir, **kwargs)
        if args.step == "residual-detector":
            from training.train_residual_detector import train_residual_detector

            if not profile.residual_hidden:
                parser.error(f"profile {profile.name} has no residual detector (residual_hidden is empty; "
                             f"--set residual_hidden=[64] for a trial)")
            train_residual_detector(profile, weights_dir)
        if args.step in ("classifier", "all"):
            from training.train_classifier import train_classifier

            kwargs = {"tune_epochs": args.epochs} if args.epochs else {}
            train_classifier(profile, weights_dir, **kwargs)
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    _record_profile(profile, weights_dir, args.set if deployed or args.step == "all" else _merged(earlier, args.set))
    for report in weights_dir.glob("*.png") if results_dir != weights_dir else ():
        shutil.move(report, results_dir / report.name)
    return 0


def _record_profile(profile, weights_dir: Path, overrides: list[str]) -> None:
    """What the export needs to find a new line's data again and to rebuild the profile the weights were trained
    with, ``--set`` included (``profiles.trained_profile``): an export on the defaults would split the data set
    otherwise (its test images among the training ones) or build other graphs. Written only once a step has
    trained: a failed run leaves no record beside weights it did not make."""
    (weights_dir / "profile.json").write_text(json.dumps(
        {"name": profile.name, "dataset": profile.dataset, "data_dir": str(profile.data_dir),
         "normal_class": profile.normal_class, "frame_tap": profile.frame_tap, "overrides": sorted(overrides)},
        indent=1))


def _merged(earlier: list[str] | None, overrides: list[str]) -> list[str]:
    """A trial folder's settings after one more step: the earlier steps' ``--set``, this step's replacing theirs
    key by key, so the record describes every model in the folder (``studies.gate_check --weights`` reads it)."""
    settings = {item.partition("=")[0]: item for item in earlier or []}
    settings.update({item.partition("=")[0]: item for item in overrides})
    return sorted(settings.values())


def _recorded_overrides(weights_dir: Path) -> list[str] | None:
    """The ``--set`` the weights in ``weights_dir`` were trained with; None where nothing was trained there."""
    record = weights_dir / "profile.json"
    return sorted(json.loads(record.read_text()).get("overrides", [])) if record.is_file() else None


if __name__ == "__main__":
    sys.exit(main())
