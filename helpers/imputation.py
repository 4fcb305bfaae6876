"""Filling removed pixels from their neighbours: the noisy linear imputation of ROAD (Rong et al. 2022),
which `helpers.metrics.imputed_deletion_curve` deletes with (notebook 07). Images `(N, C, H, W)` in [0, 1].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import checks
from .device import draw


def _neighbour_sum(image: torch.Tensor) -> torch.Tensor:
    """ROAD's weighted sum of the eight neighbours of every pixel of `image` `(N, C, H, W)`, zero outside
    the image: the 3 x 3 kernel [[1, 2, 1], [2, 0, 2], [1, 2, 1]] / 12 is the separable [1, 2, 1] x
    [1, 2, 1] minus 4 times the centre, so it costs a few shifted additions (no convolution)."""
    p = F.pad(image, (1, 1, 1, 1))
    rows = p[..., :-2] + 2 * p[..., 1:-1] + p[..., 2:]
    return (rows[..., :-2, :] + 2 * rows[..., 1:-1, :] + rows[..., 2:, :] - 4 * image) / 12


def _jacobi(image: torch.Tensor, filled: torch.Tensor, removed: torch.Tensor, sweeps: int) -> torch.Tensor:
    """`sweeps` Jacobi sweeps of the imputation system: every removed pixel of `filled` `(N, C, H, W)`
    becomes the weighted mean of its neighbours (ROAD's weights, renormalized at the border); the other
    pixels are those of `image`. removed: `(N, 1, H, W)` bool."""
    h, w = image.shape[-2:]
    norm = _neighbour_sum(torch.ones(1, 1, h, w, device=image.device, dtype=image.dtype))  # 1 inside, less at the border
    out = torch.where(removed, filled, image)
    for _ in range(sweeps):
        out = torch.where(removed, _neighbour_sum(out) / norm, image)
    return out


def _multiscale_fill(values: torch.Tensor, weights: torch.Tensor, sweeps: int) -> torch.Tensor:
    """Fill the pixels that hold no known image, coarse to fine. values: weighted sums `(N, C, H, W)`;
    weights: how much known image each pixel holds, `(N, 1, H, W)` in [0, 1]. The level below pools
    2 x 2 blocks; its filled image, upsampled, is the first guess for the empty pixels here, which
    `sweeps` Jacobi sweeps then smooth (a cascadic multigrid: large holes fill in at coarse levels)."""
    known = weights > 0
    h, w = values.shape[-2:]
    mean = values / weights.clamp_min(1e-12)
    if bool(known.all()) or max(h, w) == 1:
        return mean
    coarse = _multiscale_fill(F.avg_pool2d(values, 2, ceil_mode=True), F.avg_pool2d(weights, 2, ceil_mode=True),
                              sweeps)
    up = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return _jacobi(torch.where(known, mean, up), up, ~known, sweeps)


def linear_imputation(x: torch.Tensor, removed: torch.Tensor, noise: float = 0.0, iterations: int = 10,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill the `removed` pixels of images `x` from the pixels around them, `(N, C, H, W)` in [0, 1].

    x: images `(N, C, H, W)`; removed: `(N, H, W)` bool, True where a pixel is to be replaced (all
    channels). Each removed pixel becomes the weighted mean of its eight neighbours (weights 1/6 for the
    direct, 1/12 for the diagonal ones, renormalized at the border), known or themselves imputed: a
    linear system, the "noisy linear imputation" of ROAD (Rong et al. 2022), which solves it exactly with
    a sparse solver. Here a coarse-to-fine fill gives a smooth first guess and `iterations` Jacobi sweeps
    (a few shifted additions each, for the whole batch) bring it close to that solution. noise: standard
    deviation of Gaussian noise added to the imputed pixels (ROAD uses 0.01), drawn from `generator` (a
    `torch.Generator` on any device; None: torch's global generator). Kept pixels are
    returned unchanged. An image with every pixel removed becomes mid-grey (0.5).
    """
    checks.images(x, any_channels=True)
    n, c, h, w = x.shape
    if not isinstance(removed, torch.Tensor) or removed.shape != (n, h, w):
        raise ValueError(f"removed must be a bool mask shaped (N, H, W) = {(n, h, w)}; "
                         f"got {tuple(getattr(removed, 'shape', ()))}.")
    if noise < 0 or iterations < 0:
        raise ValueError(f"noise and iterations must be >= 0; got {noise}, {iterations}.")
    removed = removed.to(x.device, torch.bool)[:, None]  # (N, 1, H, W)
    keep = (~removed).to(x.dtype)
    out = _multiscale_fill(x * keep, keep, sweeps=iterations)
    out = torch.where(keep.flatten(1).any(dim=1).view(n, 1, 1, 1), out, torch.full_like(x, 0.5))
    out = torch.where(removed, out, x)
    if noise > 0:
        eps = draw("normal", out.shape, generator, device=x.device, dtype=x.dtype)
        out = torch.where(removed, out + noise * eps, out)
    return out.clamp(0, 1)
