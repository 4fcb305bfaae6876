"""Reading the data sets' files: RGB images as tensors in [0, 1], non-empty text lines, seeded subsets."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def read_rgb(path: str | os.PathLike) -> Image.Image:
    """The image file at `path` as 8-bit RGB; ValueError naming the file when it cannot be read."""
    # A few Pets "JPEGs" are PNGs, grayscale or CMYK; PIL reads them all, convert makes them RGB.
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable image ({exc}); delete it and prepare the data again.") from exc


def image_tensor(img: Image.Image) -> torch.Tensor:
    """An RGB `PIL.Image` as a float tensor `(3, H, W)` in [0, 1] (value / 255): the course's one conversion
    (`helpers.images.preprocess` and the data sets use it)."""
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0


def text_lines(path: str | os.PathLike) -> list[str]:
    """The non-empty lines of a text file; FileNotFoundError saying to prepare the data again."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; prepare the data again (see the notebook's data section).")
    return [ln for ln in path.read_text().splitlines() if ln.strip()]


def seeded_subset(n_items: int, n: int | None, rng: np.random.Generator) -> np.ndarray:
    """`n` distinct indices below `n_items` in `rng`'s random order (all of them when `n` is None)."""
    order = rng.permutation(n_items)
    return order if n is None else order[: min(n, n_items)]
