"""Plotting: maps over photos and grids of panels, with one colormap convention for the course.

Convention: non-negative maps (saliency, Grad-CAM) use `MAP_CMAP` scaled per image to [0, 1];
signed attributions (gradient x input, Integrated Gradients) use `SIGNED_CMAP`, symmetric around 0.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import colormaps

MAP_CMAP = "inferno"
SIGNED_CMAP = "RdBu_r"


def _np(a: torch.Tensor | np.ndarray) -> np.ndarray:
    return a.detach().float().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def as_image(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """One image for display as float `(H, W, 3)` in [0, 1], from a tensor `(3, H, W)` in [0, 1] or an
    array `(H, W, 3)` (uint8 or [0, 1] floats)."""
    a = _np(x)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = np.moveaxis(a, 0, -1)
    if a.dtype == np.uint8:
        a = a / 255.0
    if a.ndim == 3 and a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    return np.clip(a.astype(np.float64), 0.0, 1.0)


def normalize_map(m: torch.Tensor | np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Scale each map of `m` `(H, W)` or `(N, H, W)` to [0, 1] by its own min and max (a constant map
    becomes zeros)."""
    a = _np(m).astype(np.float64)
    flat = a.reshape(-1, *a.shape[-2:]) if a.ndim > 2 else a[None]
    lo = flat.min(axis=(1, 2), keepdims=True)
    hi = flat.max(axis=(1, 2), keepdims=True)
    out = (flat - lo) / np.maximum(hi - lo, eps)
    return out.reshape(a.shape)


def overlay(image: torch.Tensor | np.ndarray, heat: torch.Tensor | np.ndarray, alpha: float = 0.5,
            cmap: str = MAP_CMAP) -> np.ndarray:
    """Blend a map `(H, W)` (any range; scaled to [0, 1]) over an image; returns `(H, W, 3)` in [0, 1].
    `alpha` is the map's opacity: 0 shows the photo only, 1 the map only."""
    img = as_image(image)
    h = normalize_map(heat)
    if h.shape != img.shape[:2]:
        raise ValueError(f"map {h.shape} and image {img.shape[:2]} differ in size; upsample the map first.")
    colored = colormaps[cmap](h)[..., :3]
    return (1.0 - alpha) * img + alpha * colored


def show_grid(panels: Sequence[torch.Tensor | np.ndarray], titles: Sequence[str] | None = None,
              ncols: int | None = None, cmap: str = MAP_CMAP, signed: bool = False, size: float = 2.6,
              suptitle: str | None = None) -> plt.Figure:
    """Plot panels in a grid: an RGB image `(H, W, 3)` / `(3, H, W)` is shown as it is, a map `(H, W)` with
    `cmap` (or `SIGNED_CMAP` symmetric around 0 when `signed`). Returns the figure."""
    n = len(panels)
    ncols = ncols or min(n, 6)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        a = _np(panels[i])
        if a.ndim == 2:
            if signed:
                lim = float(np.abs(a).max()) or 1.0
                ax.imshow(a, cmap=SIGNED_CMAP, vmin=-lim, vmax=lim)
            else:
                ax.imshow(normalize_map(a), cmap=cmap, vmin=0, vmax=1)
        else:
            ax.imshow(as_image(a))
        if titles is not None and i < len(titles):
            ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def show_maps(images: torch.Tensor, maps: torch.Tensor | np.ndarray, titles: Sequence[str] | None = None,
              alpha: float = 0.5, cmap: str = MAP_CMAP, size: float = 2.6) -> plt.Figure:
    """Each image `(N, 3, H, W)` in [0, 1] beside its map `(N, H, W)` laid over it: a 2-row grid."""
    imgs = [as_image(x) for x in images]
    maps = _np(maps)
    panels = imgs + [overlay(i, m, alpha, cmap) for i, m in zip(imgs, maps)]
    t = list(titles) if titles is not None else [""] * len(imgs)
    return show_grid(panels, t + [f"map: {s}" if s else "map" for s in t], ncols=len(imgs), size=size)
