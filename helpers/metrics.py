"""Scores for explanations: localization, faithfulness and the randomization sanity check.

Every function takes a batch of maps `(N, H, W)` and returns one score per image `(N,)`, so that any
method (saliency, Integrated Gradients, Grad-CAM, LIME, SHAP) can be scored the same way.

- Localization against a ground-truth mask `(N, H, W)` (bool): `energy_in_mask` (the share of a
  non-negative map's total inside the mask, the "energy-based pointing game" of Wang et al. 2020),
  `pointing_game` (does the map's maximum fall on the mask, within a tolerance in pixels; Zhang et al.
  2016) and `centre_baseline`, a map that knows nothing about the image (a centred Gaussian).
- Faithfulness (Petsiuk et al. 2018): `deletion_curve` replaces the most important pixels first with a
  baseline, `insertion_curve` starts from a blurred copy and puts the original pixels back in order of
  importance; `auc` is the area under such a curve on a [0, 1] x-axis. The model is called on batches
  of perturbed images (`batch_size` images per call), never one image or one step at a time.
  Deleting to a constant makes images no network was trained on; `helpers.imputation.linear_imputation`
  fills removed pixels from their neighbours instead, as ROAD does (Rong et al. 2022), and `imputed_deletion_curve`
  is the deletion curve with that fill.
- Sanity check (Adebayo et al. 2018): `spearman` (rank correlation, optionally of absolute values),
  `ssim` (structural similarity of maps scaled to [0, 1]) and `randomization_scores`, which compares a
  map with the map of the same image after the model's weights were randomized.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import checks
from .filters import gaussian_blur  # the course's one blur (insertion starts from a blurred copy)
from .imputation import linear_imputation


# ----------------------------------------------------------------------------------------- checks

def _check_masks(masks: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    if not isinstance(masks, torch.Tensor) or masks.shape[-2:] != maps.shape[-2:]:
        shape = tuple(masks.shape) if isinstance(masks, torch.Tensor) else type(masks).__name__
        raise ValueError(f"masks must be shaped like the maps {tuple(maps.shape)} (or (H, W) for one mask "
                         f"shared by all); got {shape}.")
    if masks.dtype != torch.bool:
        masks = masks > 0.5
    return masks.to(maps.device).expand_as(maps)


# ---------------------------------------------------------------------------------- localization

def energy_in_mask(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Share of each non-negative map's total inside its mask, `(N,)` in [0, 1].

    maps: `(N, H, W)`, non-negative (pass `m.clamp(min=0)` for positive evidence only, or `m.abs()` for
        magnitude, when a method gives signed attributions). masks: `(N, H, W)` or `(H, W)`, bool.
    A map that is zero everywhere expresses no preference and scores like a uniform map: the mask's
    share of the image's area.
    """
    maps = checks.maps(maps)
    masks = _check_masks(masks, maps)
    if (maps < 0).any():
        raise ValueError("energy_in_mask needs non-negative maps; pass maps.clamp(min=0) (positive evidence) "
                         "or maps.abs() (magnitude).")
    total = maps.sum(dim=(1, 2))
    inside = (maps * masks).sum(dim=(1, 2))
    area = masks.float().mean(dim=(1, 2))
    return torch.where(total > 0, inside / total.clamp_min(torch.finfo(maps.dtype).tiny), area)


def dilate(masks: torch.Tensor, radius: int) -> torch.Tensor:
    """Grow bool masks `(N, H, W)` by `radius` pixels (a disk, Euclidean distance <= radius)."""
    if radius < 0:
        raise ValueError(f"radius must be >= 0 pixels; got {radius}.")
    if radius == 0:
        return masks
    r = int(radius)
    yy, xx = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
    disk = ((yy ** 2 + xx ** 2) <= r * r).float().to(masks.device)
    grown = F.conv2d(masks.float()[:, None], disk[None, None], padding=r)
    return grown[:, 0] > 0.5


def pointing_game(maps: torch.Tensor, masks: torch.Tensor, tolerance: int = 0) -> torch.Tensor:
    """Pointing game: is each map's maximum on its mask (within `tolerance` pixels)? `(N,)` float.

    maps: `(N, H, W)`, any sign. masks: `(N, H, W)` or `(H, W)`, bool. tolerance: pixels; a point
    counts as a hit when it lies within this distance of the mask (Zhang et al. 2016 used 15 px at
    224 px). A unique maximum scores 1 (hit) or 0 (miss); when several pixels share the maximum,
    the score is the fraction of them that hit (so a constant map scores the area share of the grown
    mask rather than a lucky 1). The mean over images is the pointing-game accuracy.
    """
    maps = checks.maps(maps)
    masks = dilate(_check_masks(masks, maps).contiguous(), tolerance)
    top = maps == maps.amax(dim=(1, 2), keepdim=True)
    return (top & masks).sum(dim=(1, 2)).float() / top.sum(dim=(1, 2)).float()


def centre_baseline(n: int, height: int, width: int | None = None, sigma: float = 0.25,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """A map that ignores the image: a Gaussian centred on the image, `(N, H, W)` with maximum 1.

    sigma: standard deviation as a fraction of each side (0.25: a quarter of the height and width).
    Photos are framed around their subject, so this baseline is what any explanation must beat.
    """
    width = height if width is None else width
    if n < 0 or height < 1 or width < 1 or sigma <= 0:
        raise ValueError(f"need n >= 0, height, width >= 1 and sigma > 0; got {n}, {height}, {width}, {sigma}.")
    y = (torch.arange(height, dtype=torch.float32, device=device) - (height - 1) / 2) / (sigma * height)
    x = (torch.arange(width, dtype=torch.float32, device=device) - (width - 1) / 2) / (sigma * width)
    g = torch.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2))
    return g.expand(n, height, width).clone()


# ---------------------------------------------------------------------------------- faithfulness

def importance_ranks(maps: torch.Tensor) -> torch.Tensor:
    """Rank of each pixel by decreasing importance, `(N, H*W)` long: 0 for the largest value. Ties keep
    raster order (a stable sort), so the result is deterministic."""
    maps = checks.maps(maps)
    flat = maps.flatten(1)
    order = torch.argsort(flat, dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand_as(order))
    return ranks


def _curve_args(model: torch.nn.Module, x: torch.Tensor, maps: torch.Tensor, target: int | torch.Tensor,
                steps: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The checks every perturbation curve makes: images `x` `(N, 3, H, W)` in [0, 1], maps `(N, H, W)`
    matching them, targets within the model's outputs (for a model that is not a course model, `_scores`
    checks them against the first logits), steps and batch size >= 1; returns the maps on `x`'s device and
    the targets `(N,)`."""
    checks.images(x)
    n, _, h, w = x.shape
    maps = checks.maps(maps, shape=(n, h, w)).to(x.device)
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1; got {steps}, {batch_size}.")
    return maps, checks.targets(target, n, checks.output_classes(model), x.device)


def _scores(model: torch.nn.Module, batch: torch.Tensor, to_score, t: torch.Tensor) -> torch.Tensor:
    """The score of class `t[i]` for each image of `batch`, `(B,)` float."""
    logits = model(batch)
    checks.targets(t, logits.shape[0], logits.shape[1])
    return to_score(logits).gather(1, t[:, None])[:, 0].float()


@torch.no_grad()
def replacement_curve(model: torch.nn.Module, start: torch.Tensor, end: torch.Tensor, maps: torch.Tensor,
                      target: int | torch.Tensor, steps: int = 50, batch_size: int = 64,
                      score: str = "softmax") -> torch.Tensor:
    """The model's score as pixels move from `start` to `end` in order of importance, `(N, steps + 1)`.

    start, end: images `(N, 3, H, W)`. maps: `(N, H, W)`, larger = more important. At step
    t = 0..steps the `round(t * H * W / steps)` most important pixels (all channels) come from `end`,
    the rest from `start`. The `N * (steps + 1)` perturbed images are built by tensor indexing and
    scored `batch_size` at a time. score: "softmax" (probability of `target`) or "logit".
    """
    checks.images(start, "start")
    checks.images(end, "end")
    checks.same_shape(start, end, ("start", "end"))
    maps, tgt = _curve_args(model, start, maps, target, steps, batch_size)
    n, c, h, w = start.shape
    to_score = checks.score_fn(model, score)
    ranks = importance_ranks(maps)  # (N, P)
    counts = torch.round(torch.arange(steps + 1, device=start.device, dtype=torch.float64) * (h * w) / steps).long()
    out = torch.empty(n * (steps + 1), device=start.device)
    for j0 in range(0, n * (steps + 1), batch_size):  # flat index j = t * N + i
        j = torch.arange(j0, min(j0 + batch_size, n * (steps + 1)), device=start.device)
        i, t = j % n, j // n
        take_end = (ranks[i] < counts[t][:, None]).view(-1, 1, h, w)
        batch = torch.where(take_end, end[i], start[i])
        out[j] = _scores(model, batch, to_score, tgt[i])
    return out.view(steps + 1, n).T.contiguous()


def deletion_curve(model: torch.nn.Module, x: torch.Tensor, maps: torch.Tensor, target: int | torch.Tensor,
                   steps: int = 50, baseline: float | torch.Tensor = 0.0, batch_size: int = 64,
                   score: str = "softmax") -> torch.Tensor:
    """Deletion curve (Petsiuk et al. 2018), `(N, steps + 1)`: the score of `target` as the most
    important pixels are replaced first by `baseline` (0 = black, a number, or images `(N, 3, H, W)`).
    A faithful map makes it fall fast: a low `auc` is good. x: `(N, 3, H, W)` in [0, 1]."""
    checks.images(x)
    end = checks.baseline_like(baseline, x)
    return replacement_curve(model, x, end, maps, target, steps, batch_size, score)


def insertion_curve(model: torch.nn.Module, x: torch.Tensor, maps: torch.Tensor, target: int | torch.Tensor,
                    steps: int = 50, blur_sigma: float | None = None, batch_size: int = 64,
                    score: str = "softmax") -> torch.Tensor:
    """Insertion curve (Petsiuk et al. 2018), `(N, steps + 1)`: start from a blurred copy of `x` and
    put the original pixels back, most important first. A faithful map makes it rise fast: a high
    `auc` is good. blur_sigma: pixels, default a 32nd of the image side (7 px at 224 px)."""
    checks.images(x)
    sigma = x.shape[-1] / 32 if blur_sigma is None else blur_sigma
    return replacement_curve(model, gaussian_blur(x, sigma), x, maps, target, steps, batch_size, score)


@torch.no_grad()
def imputed_deletion_curve(model: torch.nn.Module, x: torch.Tensor, maps: torch.Tensor,
                           target: int | torch.Tensor, steps: int = 50, noise: float = 0.01,
                           iterations: int = 10, batch_size: int = 64, score: str = "softmax",
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """Deletion curve with the deleted pixels imputed from their neighbours (`linear_imputation`), as in
    ROAD (Rong et al. 2022), `(N, steps + 1)`: at step t the `round(t * H * W / steps)` most important
    pixels of `maps` `(N, H, W)` are removed and filled in, and the model scores `target`.

    The filled image stays close to a natural one and the shape of the removed region says little, so
    a low area means the map found pixels the model needs, not pixels whose removal makes an odd
    picture. x: `(N, 3, H, W)` in [0, 1]. noise: as in `linear_imputation`, drawn from `generator` (None:
    torch's global generator; pass `torch.Generator().manual_seed(0)` for the same curve every run). Images
    are built and scored `batch_size` at a time.
    """
    maps, tgt = _curve_args(model, x, maps, target, steps, batch_size)
    n, _, h, w = x.shape
    to_score = checks.score_fn(model, score)
    ranks = importance_ranks(maps)
    counts = torch.round(torch.arange(steps + 1, device=x.device, dtype=torch.float64) * (h * w) / steps).long()
    out = torch.empty(n * (steps + 1), device=x.device)
    for j0 in range(0, n * (steps + 1), batch_size):  # flat index j = t * N + i
        j = torch.arange(j0, min(j0 + batch_size, n * (steps + 1)), device=x.device)
        i, t = j % n, j // n
        removed = (ranks[i] < counts[t][:, None]).view(-1, h, w)
        batch = linear_imputation(x[i], removed, noise=noise, iterations=iterations, generator=generator)
        out[j] = _scores(model, batch, to_score, tgt[i])
    return out.view(steps + 1, n).T.contiguous()


def auc(curves: torch.Tensor) -> torch.Tensor:
    """Area under curves `(N, T + 1)` sampled at T + 1 equally spaced points of [0, 1] (trapezoid rule),
    `(N,)`. For probabilities the area lies in [0, 1]."""
    if curves.ndim != 2 or curves.shape[1] < 2:
        raise ValueError(f"curves must be (N, T + 1) with T >= 1; got {tuple(curves.shape)}.")
    return torch.trapezoid(curves, dx=1.0 / (curves.shape[1] - 1), dim=1)


# ------------------------------------------------------------------------------ randomization check

def rank_average(values: torch.Tensor) -> torch.Tensor:
    """Ranks `(N, P)` (float, from 0) of each row of `values` `(N, P)`, tied values sharing the average
    of their ranks (as `scipy.stats.rankdata`, minus 1). Vectorized over rows."""
    n, p = values.shape
    sorted_vals, order = torch.sort(values, dim=1, stable=True)
    new_group = torch.ones_like(sorted_vals, dtype=torch.long)
    new_group[:, 1:] = (sorted_vals[:, 1:] != sorted_vals[:, :-1]).long()
    group = new_group.cumsum(dim=1) - 1 + torch.arange(n, device=values.device)[:, None] * p  # unique per row
    pos = torch.arange(p, device=values.device, dtype=torch.float64).expand(n, p).reshape(-1)
    total = torch.zeros(n * p, dtype=torch.float64, device=values.device).index_add_(0, group.reshape(-1), pos)
    count = torch.zeros(n * p, dtype=torch.float64, device=values.device).index_add_(
        0, group.reshape(-1), torch.ones_like(pos))
    avg_sorted = (total / count.clamp_min(1))[group.reshape(-1)].view(n, p)
    ranks = torch.empty_like(avg_sorted)
    ranks.scatter_(1, order, avg_sorted)
    return ranks


def spearman(a: torch.Tensor, b: torch.Tensor, absolute: bool = False) -> torch.Tensor:
    """Spearman rank correlation between maps `a` and `b` `(N, H, W)`, per image `(N,)` in [-1, 1].

    absolute: rank |a| and |b| instead (Adebayo et al. 2018 report both, since a sign flip of a
    signed map changes its ranks but not its picture). Tied values share their average rank (as
    `scipy.stats.spearmanr`). A map with no variance correlates 0 with anything but an identical map (1),
    where scipy gives nan. The course's one Spearman (notebooks 01, 04 and 07).
    """
    a, b = checks.maps(a, "a"), checks.maps(b, "b")
    checks.same_shape(a, b)
    if absolute:
        a, b = a.abs(), b.abs()
    ra, rb = rank_average(a.flatten(1)), rank_average(b.flatten(1).to(a.device))
    ra = ra - ra.mean(dim=1, keepdim=True)
    rb = rb - rb.mean(dim=1, keepdim=True)
    denom = (ra.norm(dim=1) * rb.norm(dim=1))
    rho = torch.where(denom > 0, (ra * rb).sum(dim=1) / denom.clamp_min(1e-300), torch.zeros_like(denom))
    rho = torch.where((ra == rb).all(dim=1), torch.ones_like(rho), rho)
    return rho.clamp(-1, 1).float()


def ssim(a: torch.Tensor, b: torch.Tensor, normalize: bool = True, sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) of maps `a` and `b` `(N, H, W)`, per image `(N,)`.

    normalize: first scale each map to [0, 1] by its own min and max (a constant map becomes 0), as in
    Adebayo et al. 2018, so only the pattern counts. Gaussian window of `sigma` px (radius 3.5 sigma),
    data range 1, mean over the positions where the window fits inside the map (the same numbers as
    `skimage.metrics.structural_similarity(..., gaussian_weights=True, use_sample_covariance=False,
    data_range=1)`). The course's one SSIM (notebooks 01 and 07): the Gaussian window of Wang et al. (2004);
    scikit-image's default (a 7 x 7 uniform window, sample covariance) gives somewhat different numbers.
    """
    a, b = checks.maps(a, "a"), checks.maps(b, "b").to(a.device)
    checks.same_shape(a, b)
    r = int(3.5 * sigma + 0.5)
    if min(a.shape[-2:]) < 2 * r + 1:
        raise ValueError(f"maps of {tuple(a.shape[-2:])} px are smaller than the SSIM window ({2 * r + 1} px); "
                         "use a smaller sigma or larger maps.")
    a, b = a.double(), b.double()
    if normalize:
        def scale(m: torch.Tensor) -> torch.Tensor:
            lo = m.amin(dim=(1, 2), keepdim=True)
            hi = m.amax(dim=(1, 2), keepdim=True)
            return torch.where(hi > lo, (m - lo) / (hi - lo).clamp_min(1e-300), torch.zeros_like(m))
        a, b = scale(a), scale(b)
    t = torch.arange(-r, r + 1, dtype=torch.float64, device=a.device)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    g = g / g.sum()

    def filt(m: torch.Tensor) -> torch.Tensor:  # valid Gaussian filtering, (N, H, W) -> (N, H-2r, W-2r)
        m = F.conv2d(m[:, None], g.view(1, 1, 1, -1))
        return F.conv2d(m, g.view(1, 1, -1, 1))[:, 0]

    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a ** 2
    var_b = filt(b * b) - mu_b ** 2
    cov = filt(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return s.mean(dim=(1, 2)).float()


def randomization_scores(original: torch.Tensor, randomized: torch.Tensor) -> dict[str, torch.Tensor]:
    """The randomization sanity check as scores: how similar is each map `(N, H, W)` to the map of the
    same image after (cascading) randomization of the model's weights? Returns a dict of `(N,)` tensors:
    "spearman", "spearman_abs" and "ssim". All three are 1 for identical maps; a method that passes
    the check has scores that drop towards 0 as more layers are randomized."""
    return {"spearman": spearman(original, randomized), "spearman_abs": spearman(original, randomized, True),
            "ssim": ssim(original, randomized)}
