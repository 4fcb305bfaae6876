"""Neural style transfer (Gatys, Ecker and Bethge, CVPR 2016): the Gram matrix,
content / style / total-variation losses, and the optimization loop (L-BFGS or Adam). Notebook 05 writes
these out to teach them and checks them against this tested version, which the benchmark
`benchmarks/bench_style.py` times against the classic recipe.

The feature extractors and each model's content and style layers are in `helpers.features`.
Images are batches `(N, 3, H, W)` in [0, 1].

Loss conventions (each is a mean, per image `(N,)`):
- Gram matrix of features F `(C, H*W)`: G = F F^T / (C H W).
- content loss at layer l: ||F_l - P_l||^2 / ||P_l||^2 (P_l: the content photo's features);
- style loss: the mean over style layers of ||G_l - A_l||^2 / ||A_l||^2 (A_l: the style image's Gram).
Dividing each term by the size of its target makes every layer count on the same scale, whatever the
network's weights; it is Gatys's loss with per-layer weights 1 / ||A_l||^2.
- total variation: the mean squared difference between neighbouring pixels (down and right).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from . import checks
from .device import draw
from .features import CONTENT_LAYERS, STYLE_LAYERS, LayerFeatures, VGGFeatures

def gram_matrix(f: torch.Tensor) -> torch.Tensor:
    """Gram matrices `(N, C, C)` of features `f` `(N, C, H, W)`: G = F F^T / (C H W), F = f as `(C, H*W)`."""
    if f.ndim != 4:
        raise ValueError(f"features must be (N, C, H, W); got {tuple(f.shape)}.")
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def relative_error(a: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||a - target||^2 / ||target||^2 per image `(N,)`; `target` may have batch size 1 (broadcast)."""
    diff = (a - target).flatten(1).square().sum(1)
    return diff / target.flatten(1).square().sum(1).clamp_min(1e-12)


def content_loss(feats: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean over the layers in `targets` of the relative squared error of the features; `(N,)`."""
    return torch.stack([relative_error(feats[k], t) for k, t in targets.items()]).mean(0)


def style_loss(feats: dict[str, torch.Tensor], grams: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean over the layers in `grams` of the relative squared error of the Gram matrices; `(N,)`."""
    return torch.stack([relative_error(gram_matrix(feats[k]), g) for k, g in grams.items()]).mean(0)


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Total variation per image `(N,)`: the mean of the squared differences between each pixel and its
    neighbour below plus the mean of those with its neighbour to the right."""
    dy = (x[:, :, 1:, :] - x[:, :, :-1, :]).square().flatten(1).mean(1)
    dx = (x[:, :, :, 1:] - x[:, :, :, :-1]).square().flatten(1).mean(1)
    return dy + dx


@dataclass
class StyleResult:
    """The output of `style_transfer`: the images `(N, 3, H, W)` in [0, 1] and the loss history (one
    entry per forward pass: total, content, style, tv, each averaged over the batch)."""

    image: torch.Tensor
    history: dict[str, list[float]] = field(default_factory=dict)


def style_transfer(content: torch.Tensor, style: torch.Tensor | None, steps: int,
                   extractor: VGGFeatures | LayerFeatures | None = None,
                   content_layers: Sequence[str] = CONTENT_LAYERS, style_layers: Sequence[str] = STYLE_LAYERS,
                   content_weight: float = 1.0, style_weight: float = 10.0, tv_weight: float = 1.0,
                   optimizer: str = "lbfgs", lr: float | None = None, init: str | torch.Tensor = "content",
                   callback: Callable[[int, float], None] | None = None,
                   generator: torch.Generator | None = None) -> StyleResult:
    """Gatys-style transfer: minimize content_weight * content + style_weight * style + tv_weight * tv.

    content: `(N, 3, H, W)` in [0, 1]; style: `(1 or N, 3, H', W')` in [0, 1] (any size), or None for
        feature inversion (then `style_weight` is ignored).
    steps: forward/backward passes (L-BFGS evaluations or Adam steps).
    extractor: a `VGGFeatures` or `LayerFeatures` covering the layers (default: a `VGGFeatures` of
        `load_model("vgg19")`); `content_layers` and `style_layers` are names it knows.
    optimizer: "lbfgs" (lr default 1) or "adam" (lr default 0.02). Pixels are clamped to [0, 1] before
        every evaluation.
    init: "content" (start from the photo), "noise" (uniform noise) or images.
    callback: called as `callback(evaluation, total_loss)`.
    generator: the `torch.Generator` that draws the "noise" start (any device: drawn on it, then moved);
        None uses torch's global generator.
    """
    if optimizer not in ("lbfgs", "adam"):
        raise ValueError(f"optimizer must be 'lbfgs' or 'adam'; got {optimizer!r}.")
    checks.images(content, "content")
    if style is not None:
        checks.images(style, "style")
        if style.shape[0] not in (1, content.shape[0]):
            raise ValueError(f"style must be images (1 or N, 3, H, W); got {tuple(style.shape)}: give one style "
                             "image for all, or one per content image.")
    if isinstance(init, torch.Tensor):
        checks.images(init, "init")
    style_layers = tuple(style_layers) if style is not None and style_weight else ()
    needed = tuple(dict.fromkeys(tuple(content_layers) + style_layers))
    if extractor is None:
        extractor = VGGFeatures(layers=needed)
    missing = [n for n in needed if n not in extractor.layers]
    if missing:
        raise ValueError(f"the extractor does not return {missing}; build it with them: "
                         "helpers.features.feature_extractor(model, layers=...).")
    device = extractor.mean.device
    content = content.detach().to(device)
    with torch.no_grad():
        feats = extractor(content)
        content_targets = {k: feats[k].detach() for k in content_layers}
        grams = {}
        if style_layers:
            sfeats = extractor(style.detach().to(device))
            grams = {k: gram_matrix(sfeats[k]).detach() for k in style_layers}
        del feats
    if isinstance(init, torch.Tensor):
        start = init.detach().to(device).float()
    elif init == "content":
        start = content
    elif init == "noise":
        start = draw("uniform", content.shape, generator, device)
    else:
        raise ValueError(f"init must be 'content', 'noise' or images; got {init!r}.")
    img = start.clone().requires_grad_(True)
    history: dict[str, list[float]] = {"total": [], "content": [], "style": [], "tv": []}

    @torch.enable_grad()  # works inside a caller's torch.no_grad() too
    def closure() -> torch.Tensor:
        with torch.no_grad():
            img.clamp_(0, 1)
        f = extractor(img)
        c = content_loss(f, content_targets) if content_targets else img.new_zeros(img.shape[0])
        s = style_loss(f, grams) if grams else img.new_zeros(img.shape[0])
        t = tv_loss(img) if tv_weight else img.new_zeros(img.shape[0])
        total = (content_weight * c + style_weight * s + tv_weight * t).sum()
        (grad,) = torch.autograd.grad(total, img)
        img.grad = grad
        n = img.shape[0]
        for key, v in (("total", total / n), ("content", c.mean()), ("style", s.mean()), ("tv", t.mean())):
            history[key].append(float(v.detach()))
        if callback is not None:
            callback(len(history["total"]) - 1, history["total"][-1])
        return total.detach()

    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS([img], lr=1.0 if lr is None else lr, max_iter=steps, max_eval=steps,
                                history_size=50, tolerance_grad=0.0, tolerance_change=0.0)
        opt.step(closure)
    else:
        opt = torch.optim.Adam([img], lr=0.02 if lr is None else lr)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            closure()
            opt.step()
    with torch.no_grad():
        return StyleResult(img.detach().clamp(0, 1), history)
