"""The course's one Gaussian blur (`gaussian_blur`) and its kernel: the regularizer of `optimize`, the
start of `metrics`' insertion curve, the hidden regions of `blackbox`'s SHAP, the defence of notebook 04.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .checks import shape_text


def gaussian_kernel1d(sigma: float, radius: int | None = None, dtype: torch.dtype = torch.float32,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """A normalized 1-D Gaussian of standard deviation `sigma` pixels, `(2 * radius + 1,)`; radius
    `ceil(3 sigma)` (at least 1) unless given."""
    radius = max(1, math.ceil(3.0 * sigma)) if radius is None else int(radius)
    t = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur each channel of `x` `(N, C, H, W)` with a Gaussian of standard deviation `sigma` pixels:
    separable, radius `ceil(3 sigma)` (at least 1, at most one less than the image's shorter side, so that
    a very wide blur tends to the image's mean instead of failing), borders reflected (`d c b | a b c d`,
    scipy's "mirror"). `sigma <= 0` returns `x` itself. Differentiable."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x must be a batch (N, C, H, W) to blur; got {shape_text(x)}. For one image use "
                         "x.unsqueeze(0).")
    if sigma <= 0:
        return x
    h, w = x.shape[-2:]
    if min(h, w) < 2:
        raise ValueError(f"cannot blur images of {h} x {w} pixels; they need at least 2 pixels per side.")
    r = min(max(1, math.ceil(3.0 * sigma)), h - 1, w - 1)
    k = gaussian_kernel1d(sigma, r, x.dtype, x.device)
    c = x.shape[1]
    out = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(out, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
