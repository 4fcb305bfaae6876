"""Plotting: maps over photos and grids of panels, with one colormap convention for the course.

Convention: non-negative maps (saliency, Grad-CAM) use `MAP_CMAP` scaled per image to [0, 1];
signed attributions (gradient x input, Integrated Gradients, LIME, SHAP) use `SIGNED_CMAP`, symmetric
around 0 (`overlay(..., signed=True)`, `show_grid(..., signed=True)`).
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import colormaps

from . import checks

MAP_CMAP = "inferno"
SIGNED_CMAP = "RdBu_r"


def _np(a: torch.Tensor | np.ndarray) -> np.ndarray:
    return a.detach().float().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def as_image(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """One image for display as float `(H, W, 3)` in [0, 1], from a tensor `(3, H, W)` in [0, 1] or an
    array `(H, W, 3)` (uint8 or [0, 1] floats); a single channel is repeated. Float values outside [0, 1]
    (0-255 pixels: divide by 255) or NaN raise ValueError, as `helpers.checks.images` does."""
    a = _np(x)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = np.moveaxis(a, 0, -1)
    if a.dtype == np.uint8:
        a = a / 255.0
    if a.ndim == 3 and a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"image must be one RGB image (3, H, W) or (H, W, 3); got shape {a.shape}. For a batch, "
                         "pass one image at a time (x[i]).")
    checks.images(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)).permute(2, 0, 1), "image",
                  single=True)
    return np.clip(a.astype(np.float64), 0.0, 1.0)


def normalize_map(m: torch.Tensor | np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Scale each map of `m` `(H, W)` or `(N, H, W)` to [0, 1] by its own min and max (a constant map
    becomes zeros). NaN or infinite values raise ValueError."""
    a = _np(m).astype(np.float64)
    if a.ndim < 2:
        raise ValueError(f"m must be a map (H, W) or maps (N, H, W); got shape {a.shape}.")
    if not np.isfinite(a).all():
        checks.maps(torch.from_numpy(a.reshape(-1, *a.shape[-2:])), "map")
    flat = a.reshape(-1, *a.shape[-2:]) if a.ndim > 2 else a[None]
    lo = flat.min(axis=(1, 2), keepdims=True)
    hi = flat.max(axis=(1, 2), keepdims=True)
    out = (flat - lo) / np.maximum(hi - lo, eps)
    return out.reshape(a.shape)


def signed_colors(heat: torch.Tensor | np.ndarray, cmap: str = SIGNED_CMAP) -> np.ndarray:
    """A signed map `(H, W)` coloured `(H, W, 3)` with `cmap` symmetric around 0: divided by its largest
    magnitude, so 0 is the colormap's middle (white for `SIGNED_CMAP`), positive red, negative blue."""
    a = checks.maps(torch.as_tensor(_np(heat), dtype=torch.float64)[None], "heat")[0].numpy()
    lim = float(np.abs(a).max()) or 1.0
    return colormaps[cmap](0.5 + 0.5 * a / lim)[..., :3]


def overlay(image: torch.Tensor | np.ndarray, heat: torch.Tensor | np.ndarray, alpha: float = 0.5,
            cmap: str | None = None, signed: bool = False) -> np.ndarray:
    """Blend a map `(H, W)` over an image; returns `(H, W, 3)` in [0, 1]. `alpha` is the map's opacity: 0
    shows the photo only, 1 the map only.

    signed=False: the map (any range) is scaled to [0, 1] by its min and max and coloured with `cmap`
    (default `MAP_CMAP`), for non-negative maps (saliency, Grad-CAM). signed=True: the map is divided by
    its largest magnitude, so that 0 stays in the middle of `cmap` (default `SIGNED_CMAP`: evidence for the
    class red, against it blue), for signed attributions (gradient x input, Integrated Gradients, LIME,
    SHAP). Scaling a signed map by its min and max would move its zero and paint "no effect" as evidence.
    """
    img = as_image(image)
    if _np(heat).shape != img.shape[:2]:
        raise ValueError(f"heat {_np(heat).shape} and image {img.shape[:2]} differ in size; the map must be (H, W) "
                         "of the image: upsample it first (helpers.cam.upsample).")
    checks.maps(torch.as_tensor(_np(heat), dtype=torch.float64)[None], "heat")
    if signed:
        colored = signed_colors(heat, cmap or SIGNED_CMAP)
    else:
        colored = colormaps[cmap or MAP_CMAP](normalize_map(heat))[..., :3]
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
                ax.imshow(a, cmap=SIGNED_CMAP, vmin=-lim, vmax=lim)  # the scale of signed_colors
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
              alpha: float = 0.5, cmap: str | None = None, size: float = 2.6, signed: bool = False) -> plt.Figure:
    """Each image `(N, 3, H, W)` in [0, 1] beside its map `(N, H, W)` laid over it (`overlay`, signed or
    not): a 2-row grid."""
    checks.images(images, "images")
    maps = checks.maps(torch.as_tensor(_np(maps)), shape=(images.shape[0], *images.shape[-2:]))
    imgs = [as_image(x) for x in images]
    panels = imgs + [overlay(i, m, alpha, cmap, signed) for i, m in zip(imgs, _np(maps))]
    t = list(titles) if titles is not None else [""] * len(imgs)
    return show_grid(panels, t + [f"map: {s}" if s else "map" for s in t], ncols=len(imgs), size=size)
