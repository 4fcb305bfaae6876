"""Adversarial images in pixel space (notebook 04): targeted fooling by normalized gradient ascent (to the
decision boundary or on to a confidence), and the L-infinity attacks FGSM and PGD, with their success rate.

All images are batches `(N, 3, H, W)` in [0, 1] (the models normalize inside), every result stays in
[0, 1], and budgets `eps` are in the same units (8/255 is eight grey levels of an 8-bit image).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import checks
from .device import draw


def _labels(model: nn.Module, x: torch.Tensor, label: int | Sequence[int] | torch.Tensor,
            name: str = "label") -> torch.Tensor:
    """The class indices (N,), range-checked now for a course model, after the first forward otherwise."""
    return checks.targets(label, x.shape[0], checks.output_classes(model), x.device, name)


def fool(model: nn.Module, x: torch.Tensor, target: int | Sequence[int] | torch.Tensor, step_size: float = 0.5,
         max_steps: int = 100, confidence: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Targeted fooling: move each image `x` `(N, 3, H, W)` in [0, 1] up the gradient of its target logit,
    a step of L2 length `step_size` (in [0, 1] pixel units) at a time, clamped to [0, 1], until the model's
    top class is the target with a softmax probability of at least `confidence` (0: the first step at which
    the target is the top class, the decision boundary), or `max_steps` steps are spent. Images stop
    changing once fooled.

    Returns the images `(N, 3, H, W)` and the number of steps each needed `(N,)` (-1: not fooled).
    ValueError for a non-positive `step_size`, a negative `max_steps` or `confidence` outside [0, 1).
    """
    checks.images(x)
    if step_size <= 0 or max_steps < 0 or not 0.0 <= confidence < 1.0:
        raise ValueError(f"need step_size > 0, max_steps >= 0 and 0 <= confidence < 1; got step_size={step_size}, "
                         f"max_steps={max_steps}, confidence={confidence}.")
    t = _labels(model, x, target, "target")
    x_adv = x.detach().clone()
    steps = torch.full((x.shape[0],), -1, dtype=torch.long, device=x.device)
    for step in range(max_steps + 1):
        with torch.enable_grad():  # works inside a caller's torch.no_grad() too
            x_adv.requires_grad_(True)
            logits = model(x_adv)
            if step == 0:
                checks.targets(t, logits.shape[0], logits.shape[1], name="target")
            p_target = logits.softmax(1).gather(1, t.view(-1, 1)).squeeze(1)
            done = (logits.argmax(1) == t) & (p_target >= confidence)
            steps[done & (steps < 0)] = step
            active = steps < 0
            if not active.any() or step == max_steps:
                break
            score = logits.gather(1, t.view(-1, 1)).sum()
            (grad,) = torch.autograd.grad(score, x_adv)
        with torch.no_grad():
            norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
            x_adv = (x_adv + step_size * active.view(-1, 1, 1, 1) * grad / norm).clamp_(0, 1)
    return x_adv.detach(), steps


def _loss_grad(model: nn.Module, x: torch.Tensor, label: torch.Tensor, targeted: bool) -> torch.Tensor:
    """Gradient of the per-image cross-entropy, signed so that adding it helps the attacker."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():  # works inside a caller's torch.no_grad() too
        logits = model(x)
        checks.targets(label, logits.shape[0], logits.shape[1], name="label")
        loss = F.cross_entropy(logits, label, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return -grad if targeted else grad


def fgsm(model: nn.Module, x: torch.Tensor, label: int | Sequence[int] | torch.Tensor, eps: float,
         targeted: bool = False) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2015): one step of size `eps` along the sign of the
    loss gradient. Untargeted (`label` = the true class): raise its loss. Targeted (`label` = the wanted
    class): lower its loss. Returns `(N, 3, H, W)` within `eps` of `x` (L-infinity) and in [0, 1]."""
    checks.images(x)
    if eps < 0:
        raise ValueError(f"eps must be >= 0; got {eps}.")
    grad = _loss_grad(model, x, _labels(model, x, label), targeted)
    return (x.detach() + eps * grad.sign()).clamp_(0, 1)


def project_linf(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """The nearest images to `x_adv` that are within `eps` of `x` (L-infinity) and in [0, 1]."""
    checks.images(x)
    checks.images(x_adv, "x_adv", check_range=False)  # a step may have left [0, 1]: projecting brings it back
    return torch.minimum(torch.maximum(x_adv, x - eps), x + eps).clamp_(0, 1)


def pgd(model: nn.Module, x: torch.Tensor, label: int | Sequence[int] | torch.Tensor, eps: float,
        steps: int = 10, alpha: float | None = None, targeted: bool = False, random_start: bool = True,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """Projected gradient descent (Madry et al. 2018) in the L-infinity ball of radius `eps`: `steps`
    signed-gradient steps of size `alpha` (default 2.5 * eps / steps), each followed by projection onto
    the ball and [0, 1]. `random_start` begins at a uniform random point of the ball, drawn by
    `generator` (a `torch.Generator` on any device: drawn there, then moved to `x`'s device) or by torch's
    global generator if None. Returns `(N, 3, H, W)`."""
    checks.images(x)
    if eps < 0 or steps < 1:
        raise ValueError(f"need eps >= 0 and steps >= 1; got eps={eps}, steps={steps}.")
    y = _labels(model, x, label)
    x = x.detach()
    alpha = 2.5 * eps / steps if alpha is None else alpha
    x_adv = x.clone()
    if random_start and eps > 0:
        start = draw("uniform", x.shape, generator, x.device, x.dtype, -eps, eps)
        x_adv = project_linf(x_adv + start, x, eps)
    for _ in range(steps):
        grad = _loss_grad(model, x_adv, y, targeted)
        x_adv = project_linf(x_adv + alpha * grad.sign(), x, eps)
    return x_adv


@torch.no_grad()
def success_rate(model: nn.Module, x_adv: torch.Tensor, label: int | Sequence[int] | torch.Tensor,
                 targeted: bool = False) -> float:
    """Share of images on which the attack worked: the top class differs from `label` (untargeted) or
    equals it (targeted)."""
    checks.images(x_adv, "x_adv")
    y = _labels(model, x_adv, label)
    logits = model(x_adv)
    checks.targets(y, logits.shape[0], logits.shape[1], name="label")
    pred = logits.argmax(1)
    hit = pred == y if targeted else pred != y
    return hit.float().mean().item()
