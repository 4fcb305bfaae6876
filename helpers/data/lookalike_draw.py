"""Shared plumbing of the look-alike data sets: folders written in one step, backgrounds, colours, twins.

A *twin* is the same drawing with one planted feature left out (the pet's ears; a face's attribute): the
writers of `lookalike_pets` and `lookalike_faces` save the twins of the test images under
`<data set folder>/lookalike_twins/`, in the data set's own layout, so that the data set's reader loads them.
"""
from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

TWINS = "lookalike_twins"  # the folder of the twins, beside the official files (not an official folder)


def begin(root: str | os.PathLike, folder: str, ready: Callable[[Path], bool], n: int, least: int,
          writer: str) -> tuple[Path, Path | None]:
    """(`<root>/<folder>`, a new hidden temporary folder beside it to write into), or (the folder, None) when a
    complete one is already there; ValueError when fewer than `least` images are asked for."""
    if n < least:
        raise ValueError(f"{writer} needs n >= {least} images; got {n}.")
    base = Path(root) / folder
    if ready(base):
        return base, None
    Path(root).mkdir(parents=True, exist_ok=True)
    return base, Path(tempfile.mkdtemp(prefix=f".{writer}-", dir=root))


def publish(tmp: Path, base: Path) -> Path:
    """Move a finished folder into place in one step (a concurrent or interrupted writer leaves no half)."""
    if base.exists():
        shutil.rmtree(tmp, ignore_errors=True)
        return base
    os.replace(tmp, base)
    return base


def background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A textured background, float `(h, w, 3)` in [0, 255]: a random base colour, a smooth ramp, noise."""
    base = rng.uniform(60, 200, size=3)
    yy, xx = np.mgrid[0:h, 0:w]
    ramp = (np.sin(xx / rng.uniform(8, 20)) + np.cos(yy / rng.uniform(8, 20)))[..., None] * 12
    noise = rng.normal(0, 10, size=(h, w, 3))
    return np.clip(base + ramp + noise, 0, 255)


def contrasting_colour(rng: np.random.Generator, against: np.ndarray, least: float = 90.0) -> np.ndarray:
    """A random RGB colour `(3,)` in [20, 235] at Euclidean distance >= `least` from the colour `against`
    (drawn again until it is: any hue, whatever the label)."""
    while True:
        colour = rng.uniform(20, 235, size=3)
        if np.linalg.norm(colour - against) >= least:
            return colour


def fork(rng: np.random.Generator) -> np.random.Generator:
    """An independent copy of `rng` in its current state: drawing a twin from it repeats the same draws."""
    return copy.deepcopy(rng)


def link_or_copy(src: Path, dest: Path) -> None:
    """`dest` as a hard link to `src` (a twin identical to its original), or a copy where links fail."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
