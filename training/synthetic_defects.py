"""Synthetic defects painted onto defect-free texture, for a denoising gate.

``python -m training.synthetic_defects [--profile P] [--strength S] [--kinds K,...] --out FILE.jpg`` draws a few, on
training frames of the profile, as the gate's training paints them (the painted area outlined in red).

The gate's bottleneck learns to rebuild normal feature cells. Trained on normal cells only, it
also rebuilds much of what it has never seen, because a small per-cell bottleneck generalises.
Shown cells of a frame with a defect painted in, and asked for the same cells of the clean
frame, it learns to pull departures from the texture back onto it, so that a real defect leaves
a larger error (the reconstructive half of DRAEM: Zavrtanik, Kristan and Skocaj, ICCV 2021).
Everything here is made from the defect-free texture itself: the gate still sees no real defect.

The kinds follow how steel-strip defects depart from their texture: a darker or brighter blob
(patches, inclusions), a thin line (scratches), a piece of the texture from elsewhere turned
and re-levelled (scale, a change of grain), and a grainy region (pitting, crazing). More kinds
may be asked for (``paint_defect(kinds=...)``, ``ALL_KINDS``): a long streak of one to three
parallel lines, mostly along an image axis as rolling marks run (``streak``; at any angle,
``streak_any``; one thin line, ``long_line``), and the frame's texture zoomed and turned under an
irregular mask (``texture``: DRAEM's foreign texture, here the frame's own at another scale).
Measured on neu-steel and not deployed (docs/gate_design.md, step 12). Fine pits over a large area
(``pits``) are deployed on neu-steel (step 17). ``scratches`` are the bright, sharp, high-contrast lines
a scratch leaves where it lays bare metal: several in parallel, long, broken, painted much brighter than
any other kind (over NEU's training split, the 99th percentile inside a scratch image's boxes lies 7.6-12.6
grey spreads of its box-free steel above that steel's median, quartiles; at most 3.7 for any other class),
so that a detector can tell them from low-contrast rolling marks (``python -m training.defect_contrast``).
Measured, not deployed (step 18).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np

KINDS = ("blob", "line", "patch", "grain")
ALL_KINDS = KINDS + ("streak", "texture", "streak_any", "long_line", "pits", "scratches")
# How much brighter or darker than the texture a kind is painted, in grey spreads at strength 1,
# and the chance that it is brighter.
_CONTRAST = {"scratches": ((10.0, 30.0), 0.9)}
_DEFAULT_CONTRAST = ((1.5, 4.0), 0.5)


@dataclass(frozen=True)
class PaintedDefect:
    frame: np.ndarray  # the frame with the defect, [0, 1] grey
    mask: np.ndarray  # bool, where the defect was painted


def paint_defect(frame: np.ndarray, centre: tuple[int, int], rng: np.random.Generator,
                 strength: float = 1.0, kinds: tuple[str, ...] = KINDS) -> PaintedDefect:
    """One synthetic defect of a random kind of ``kinds``, centred on ``centre`` (row, column) of a
    [0, 1] grey frame.

    Strengths are in units of the frame's own grey spread, so a defect stands out as much on a
    dark, flat strip as on a bright, grainy one; ``strength`` scales them all."""
    check_kinds(kinds)
    kind = kinds[rng.integers(len(kinds))]
    spread = max(float(frame.std()), 1e-3) * strength
    weight = _KIND_MASKS[kind](frame.shape, centre, rng)
    if kind == "patch":
        painted = _relevelled_patch(frame, rng, spread)
    elif kind == "texture":
        painted = _zoomed_texture(frame, rng, spread)
    elif kind == "grain":
        noise = cv2.GaussianBlur(rng.normal(0.0, 1.0, frame.shape).astype(np.float32), (0, 0), rng.uniform(0.5, 1.5))
        painted = frame + noise / max(float(noise.std()), 1e-6) * spread * rng.uniform(1.0, 2.5)
    else:
        (low, high), bright = _CONTRAST.get(kind, _DEFAULT_CONTRAST)
        painted = frame + (1.0 if rng.random() < bright else -1.0) * spread * rng.uniform(low, high)
    out = np.clip(frame * (1.0 - weight) + painted * weight, 0.0, 1.0).astype(np.float32)
    return PaintedDefect(out, weight > 0.25)


def check_kinds(kinds: tuple[str, ...], setting: str = "synthetic defect kinds") -> None:
    """Raise ValueError, naming ``setting``, unless ``kinds`` names one or more of ``ALL_KINDS``."""
    if not kinds or set(kinds) - set(ALL_KINDS):
        raise ValueError(f"{setting} {kinds!r}: expected some of {', '.join(ALL_KINDS)}")


def _signed(rng: np.random.Generator) -> float:
    return 1.0 if rng.random() < 0.5 else -1.0


def _soft(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), rng.uniform(0.7, 2.0))


def _blob_mask(shape, centre, rng) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    axes = (int(rng.integers(3, max(4, shape[1] // 6))), int(rng.integers(3, max(4, shape[0] // 6))))
    cv2.ellipse(mask, (centre[1], centre[0]), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return _soft(mask, rng)


def _line_mask(shape, centre, rng) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    angle = rng.uniform(0, np.pi)
    half = rng.uniform(10, max(12, min(shape) / 2))
    dy, dx = half * np.sin(angle), half * np.cos(angle)
    start = (int(centre[1] - dx), int(centre[0] - dy))
    end = (int(centre[1] + dx), int(centre[0] + dy))
    cv2.line(mask, start, end, 1, int(rng.integers(1, 4)))
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.7)


def _patch_mask(shape, centre, rng) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    half = int(rng.integers(6, max(7, min(shape) // 5)))
    cv2.rectangle(mask, (centre[1] - half, centre[0] - half), (centre[1] + half, centre[0] + half), 1, -1)
    return _soft(mask, rng)


def _streak_mask(shape, centre, rng, along_axis: float = 0.7, lines: int = 3, width: int = 5) -> np.ndarray:
    """One to ``lines`` parallel lines through ``centre``, long, 1 to ``width`` px wide, along an image axis
    (within about 3 degrees) with probability ``along_axis`` and at any angle otherwise, their strength
    varying along their length."""
    mask = np.zeros(shape, np.float32)
    angle = rng.choice([0.0, np.pi / 2]) + rng.normal(0.0, 0.05) if rng.random() < along_axis else rng.uniform(0, np.pi)
    half = rng.uniform(0.3, 1.0) * max(shape)
    along, across = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    offset = 0.0
    for _ in range(int(rng.integers(1, lines + 1))):
        mid = np.array([centre[1], centre[0]]) + across * offset
        start, end = (mid - along * half).astype(int), (mid + along * half).astype(int)
        line = np.zeros(shape, np.uint8)
        cv2.line(line, tuple(int(v) for v in start), tuple(int(v) for v in end), 1, int(rng.integers(1, width + 1)))
        mask = np.maximum(mask, line * rng.uniform(0.5, 1.0))
        offset += _signed(rng) * rng.uniform(3, 15)
    variation = cv2.GaussianBlur(rng.uniform(0.4, 1.0, shape).astype(np.float32), (0, 0), 6.0)
    return cv2.GaussianBlur(mask * variation / variation.max(), (0, 0), 0.7)


def _irregular_mask(shape, centre, rng) -> np.ndarray:
    """Smooth noise thresholded inside a soft disc around ``centre`` (DRAEM's Perlin-noise masks),
    always covering the centre itself."""
    noise = cv2.GaussianBlur(rng.normal(0.0, 1.0, shape).astype(np.float32), (0, 0), rng.uniform(2.0, 6.0))
    region = np.zeros(shape, np.uint8)
    cv2.circle(region, (centre[1], centre[0]), int(rng.integers(8, max(9, min(shape) // 4))), 1, -1)
    mask = ((noise > np.quantile(noise, rng.uniform(0.3, 0.6))) & (region > 0)).astype(np.uint8)
    cv2.circle(mask, (centre[1], centre[0]), 3, 1, -1)
    return _soft(mask, rng)


def _pits_mask(shape, centre, rng) -> np.ndarray:
    """Small pits, 1-3 px across, scattered at a random density (0.3-3% of the pixels) over a disc around
    ``centre`` up to half the frame across: pitting, which covers large areas in a fine pattern."""
    region = np.zeros(shape, np.uint8)
    cv2.circle(region, (centre[1], centre[0]), int(rng.integers(12, max(13, min(shape) // 2))), 1, -1)
    pits = ((rng.random(shape) < rng.uniform(0.003, 0.03)) & (region > 0)).astype(np.uint8)
    pits[centre] = 1
    if rng.random() < 0.5:
        pits = cv2.dilate(pits, np.ones((2, 2), np.uint8))
    return np.minimum(cv2.GaussianBlur(pits.astype(np.float32), (0, 0), rng.uniform(0.5, 0.9)) * 2.0, 1.0)


def _scratches_mask(shape, centre, rng) -> np.ndarray:
    """One to six parallel lines side by side, 4-40 px apart, 1-3 px wide and sharp-edged, each 50-100% of
    the frame's side long, their strength varying along them; the first runs through ``centre``, the others
    are broken into one to four pieces. Along an image axis (within about 3 degrees) eight times in ten,
    at any angle otherwise."""
    mask = np.zeros(shape, np.float32)
    angle = rng.choice([0.0, np.pi / 2]) + rng.normal(0.0, 0.05) if rng.random() < 0.8 else rng.uniform(0, np.pi)
    along, across = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    offset, side = 0.0, _signed(rng)
    for _ in range(int(rng.integers(1, 7))):
        half = rng.uniform(0.25, 0.5) * max(shape)
        mid = np.array([centre[1], centre[0]]) + across * offset + along * rng.uniform(-0.5, 0.5) * half * (offset != 0)
        cuts = np.sort(rng.uniform(-half, half, 2 * int(rng.integers(0, 4)) * (offset != 0)))
        ends = np.concatenate([[-half], cuts, [half]]).reshape(-1, 2)
        line = np.zeros(shape, np.uint8)
        for a, b in ends:
            start, end = (mid + along * a).astype(int), (mid + along * b).astype(int)
            cv2.line(line, tuple(int(v) for v in start), tuple(int(v) for v in end), 1, int(rng.integers(1, 4)))
        mask = np.maximum(mask, line * rng.uniform(0.6, 1.0))
        offset += side * rng.uniform(4, 40)
    variation = cv2.GaussianBlur(rng.uniform(0.3, 1.0, shape).astype(np.float32), (0, 0), 4.0)
    return cv2.GaussianBlur(mask * variation / variation.max(), (0, 0), 0.5)


_KIND_MASKS = {"blob": _blob_mask, "line": _line_mask, "patch": _patch_mask, "grain": _blob_mask,
               "streak": _streak_mask, "texture": _irregular_mask,
               "streak_any": partial(_streak_mask, along_axis=0.0),
               "long_line": partial(_streak_mask, along_axis=0.0, lines=1, width=3), "pits": _pits_mask,
               "scratches": _scratches_mask}


def _relevelled_patch(frame: np.ndarray, rng: np.random.Generator, spread: float) -> np.ndarray:
    """The whole frame turned (90-degree steps, or a flip) and shifted, re-levelled about its mean:
    under the patch's mask, a piece of the texture from elsewhere, in another orientation and tone."""
    turned = np.rot90(frame, int(rng.integers(1, 4))) if frame.shape[0] == frame.shape[1] else frame[::-1, ::-1]
    shifted = np.roll(turned, (int(rng.integers(frame.shape[0])), int(rng.integers(frame.shape[1]))), (0, 1))
    mean = float(shifted.mean())
    contrast = 1.0 + (rng.uniform(0.5, 2.0) - 1.0) * spread / max(float(frame.std()), 1e-3)
    return mean + (shifted - mean) * contrast + _signed(rng) * rng.uniform(0.5, 2.0) * spread


def _zoomed_texture(frame: np.ndarray, rng: np.random.Generator, spread: float) -> np.ndarray:
    """The whole frame zoomed (0.5-2x), turned by any angle and re-levelled: the strip's own texture
    at another grain size and orientation."""
    height, width = frame.shape
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), float(rng.uniform(0, 360)), float(rng.uniform(0.5, 2.0)))
    zoomed = cv2.warpAffine(frame, turn, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    mean = float(zoomed.mean())
    contrast = 1.0 + (rng.uniform(0.5, 2.0) - 1.0) * spread / max(float(frame.std()), 1e-3)
    return mean + (zoomed - mean) * contrast + _signed(rng) * rng.uniform(0.5, 2.0) * spread


def defect_centre(allowed: np.ndarray, rng: np.random.Generator) -> tuple[int, int] | None:
    """A random (row, column) where ``allowed`` is True, or None where it is nowhere."""
    rows, cols = np.nonzero(allowed)
    if len(rows) == 0:
        return None
    i = int(rng.integers(len(rows)))
    return int(rows[i]), int(cols[i])


def contact_sheet(frames: list[np.ndarray], allowed: list[np.ndarray], strength: float, seed: int,
                  kinds: tuple[str, ...] = KINDS, columns: int = 4) -> np.ndarray:
    """Each frame with one painted defect, its outline in red beside it (BGR, 8 bit)."""
    rng = np.random.default_rng(seed)
    tiles = []
    for frame, free in zip(frames, allowed):
        centre = defect_centre(free, rng)
        if centre is None:
            continue
        defect = paint_defect(frame, centre, rng, strength, kinds)
        painted = cv2.cvtColor((defect.frame * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
        outline, _ = cv2.findContours(defect.mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        tiles.append(np.concatenate([painted, cv2.drawContours(painted.copy(), outline, -1, (0, 0, 255), 1)], 1))
    rows = [np.concatenate(tiles[i: i + columns], 1) for i in range(0, len(tiles) - columns + 1, columns)]
    return np.concatenate(rows, 0)


def main(argv: list[str] | None = None) -> int:
    from edge_runtime.datasets import box_free_mask, split_samples
    from training.data import read_frames
    from training.profiles import PROFILES

    parser = argparse.ArgumentParser(prog="python -m training.synthetic_defects", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="neu-steel", choices=sorted(PROFILES))
    parser.add_argument("--strength", type=float, default=None, help="default: the profile's gate_synthetic_strength")
    parser.add_argument("--kinds", default=None, help="comma-separated, some of " + ", ".join(ALL_KINDS)
                        + "; default: the kinds the profile's residual detector is trained on")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    train = split_samples(profile.load(), profile.seed, profile.split_fractions)["train"]
    chosen = [train[i] for i in np.random.default_rng(profile.seed).choice(len(train), args.frames, replace=False)]
    frames, kept = read_frames(chosen, profile.preprocess)
    allowed = [box_free_mask(f.shape, s.boxes, profile.box_margin) for f, s in zip(frames, kept)]
    strength = profile.gate_synthetic_strength if args.strength is None else args.strength
    kinds = profile.residual_kinds if args.kinds is None else tuple(args.kinds.split(","))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), contact_sheet(frames, allowed, strength, profile.gate_seed, kinds))
    print(f"{args.out}: {len(frames)} training frames of {profile.name}, strength {strength:g}, kinds {', '.join(kinds)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
