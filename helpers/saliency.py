"""Gradient-based saliency maps: the gradient itself, gradient x input, SmoothGrad, Integrated Gradients
and Guided Backpropagation, for a batch of images and one target class per image.

Every function takes a model (images `(N, 3, H, W)` in [0, 1] -> logits `(N, K)`), a batch `x`
`(N, 3, H, W)` and `target` (an int for every image, or a LongTensor `(N,)`), and explains the *logit*
of the target class. Gradients come from `torch.autograd.grad` with respect to the input only; the
model's parameters are not touched (`helpers.load_model` freezes them). The maps are computed in
batches: image `i`'s map never depends on the other images of the batch (models are in eval mode).
Notebook 01 writes each method out by hand; these are the tested versions the later notebooks reuse.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from . import checks
from .checks import model_targets, target_logits
from .contract import Target
from .device import draw
from .layers import capture


def _input_gradient(model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """`input_gradient` without the input checks, for inputs that are not pixels in [0, 1] (noisy copies,
    path points) and targets already checked."""
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        score = target_logits(model(xg), t).sum()
        (grad,) = torch.autograd.grad(score, xg)
    return grad


def input_gradient(model: nn.Module, x: torch.Tensor, target: Target) -> torch.Tensor:
    """d logit_target / d x for each image: `(N, 3, H, W)`, same dtype and device as `x`."""
    return _input_gradient(model, x, model_targets(model, x, target))


def vanilla_saliency(model: nn.Module, x: torch.Tensor, target: Target) -> torch.Tensor:
    """Simonyan et al. (2014): the largest |gradient| over the 3 colour channels, `(N, H, W)`, >= 0."""
    return input_gradient(model, x, target).abs().amax(dim=1)


def grad_times_input(model: nn.Module, x: torch.Tensor, target: Target) -> torch.Tensor:
    """Gradient times input, `(N, 3, H, W)`, signed (its sum over a channel is a first-order estimate of the
    logit's change when the pixels go to black)."""
    return input_gradient(model, x, target) * x.detach()


def smoothgrad(model: nn.Module, x: torch.Tensor, target: Target, samples: int,
               sigma: float = 0.15, generator: torch.Generator | None = None) -> torch.Tensor:
    """SmoothGrad (Smilkov et al. 2017): |gradient| averaged over `samples` noisy copies `x + N(0, sigma^2)`,
    then the largest over the colour channels: `(N, H, W)`, >= 0.

    `sigma` is in pixel units, i.e. a fraction of the [0, 1] input range (0.1-0.2 works well). The noise is
    drawn from `generator` (a `torch.Generator` on any device, for reproducible maps; None: torch's global
    generator). Equals Captum's
    `NoiseTunnel(Saliency(model)).attribute(x, nt_type="smoothgrad", stdevs=sigma, abs=True)` followed by a
    max over channels, up to the noise draws. `sigma=0` gives `vanilla_saliency`.
    """
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be a positive int; got {samples!r}.")
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0; got {sigma}.")
    t = model_targets(model, x, target)
    total = torch.zeros_like(x)
    for _ in range(samples):
        noise = draw("normal", x.shape, generator, device=x.device, dtype=x.dtype)
        total += _input_gradient(model, x.detach() + sigma * noise, t).abs()
    return (total / samples).amax(dim=1)


def path_rule(steps: int, rule: str = "midpoint", device: torch.device | str | None = None,
              dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Points `alphas` in [0, 1] and weights (summing to 1) of a quadrature rule for the path integral of
    Integrated Gradients, each `(P,)`.

    `rule="midpoint"`: `steps` points at the middles of `steps` equal intervals, weights `1/steps` (Captum's
    `method="riemann_middle"`). `rule="trapezoid"`: the `steps + 1` interval ends, weights `1/steps` with
    half weight at both ends (Captum's `"riemann_trapezoid"` with `n_steps=steps + 1` puts the same points
    but weights `1/(steps + 1)`, which sum to `steps/(steps + 1)`). The trapezoid points of `steps/2`
    intervals are every second point of `steps`.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive int; got {steps!r}.")
    if rule == "midpoint":
        alphas = (torch.arange(steps, dtype=dtype, device=device) + 0.5) / steps
        weights = torch.full((steps,), 1.0 / steps, dtype=dtype, device=device)
    elif rule == "trapezoid":
        alphas = torch.arange(steps + 1, dtype=dtype, device=device) / steps
        weights = torch.full((steps + 1,), 1.0 / steps, dtype=dtype, device=device)
        weights[0] /= 2
        weights[-1] /= 2
    else:
        raise ValueError(f"rule must be 'midpoint' or 'trapezoid'; got {rule!r}.")
    return alphas, weights


def integrated_gradients(model: nn.Module, x: torch.Tensor, target: Target,
                         baseline: torch.Tensor | float | None = None, steps: int = 32,
                         batch_size: int | None = None, rule: str = "midpoint") -> torch.Tensor:
    """Integrated Gradients (Sundararajan et al. 2017): `(x - baseline)` times the path-average gradient,
    `(N, 3, H, W)`, signed.

    The integral over alpha in [0, 1] is approximated by `path_rule(steps, rule)`: the midpoint rule with
    `steps` points (default; Captum's `method="riemann_middle"`) or the trapezoid rule on `steps` intervals
    (`steps + 1` points). `baseline` is a tensor broadcastable to `x`, a number, or None for black (zeros).
    Completeness: the attributions of an image sum to logit(x) - logit(baseline), up to the error of the
    rule (more steps, smaller error; check it, e.g. within 5%). `batch_size` path points are evaluated
    per pass (default: about 32 images, at least N).
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int; got {steps!r}.")
    t = model_targets(model, x, target)
    x = x.detach()
    base = checks.baseline_like(baseline, x)
    n = x.shape[0]
    per_pass = max(1, (batch_size or max(32, n)) // n)  # alphas per pass
    alphas, weights = path_rule(steps, rule, x.device, x.dtype)
    diff = x - base
    total = torch.zeros_like(x)
    for chunk, w in zip(alphas.split(per_pass), weights.split(per_pass)):
        k = chunk.numel()
        path = base.unsqueeze(0) + chunk.view(k, 1, 1, 1, 1) * diff.unsqueeze(0)  # (k, N, 3, H, W)
        grads = _input_gradient(model, path.reshape(k * n, *x.shape[1:]), t.repeat(k))
        total += (w.view(k, 1, 1, 1, 1) * grads.view(k, *x.shape)).sum(dim=0)
    return diff * total


# ReLU-like activations whose backward pass guided backpropagation changes: ReLU (torchvision's CNNs) and
# ReLU6 (EfficientNet-Lite and MobileNets), both zero for negative inputs.
GUIDED_ACTIVATIONS: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6)


def guided_backprop(model: nn.Module, x: torch.Tensor, target: Target) -> torch.Tensor:
    """Guided Backpropagation (Springenberg et al. 2015): the input gradient where every ReLU-like activation
    (`GUIDED_ACTIVATIONS`: `nn.ReLU`, `nn.ReLU6`) also blocks negative incoming gradients, `(N, 3, H, W)`.

    Every output of every such module (`helpers.layers.capture`) gets a gradient hook that clamps the
    gradient at zero; the activation's own backward then applies its forward mask (0 < input, and < 6 for
    ReLU6). This works with in-place activations and with one module used several times (torchvision's
    ResNet blocks). The hooks are removed before returning, also on error: the model is left as it was. Activations called
    as functions (`F.relu`) are not seen; a model without such modules raises ValueError. (Captum's
    `GuidedBackprop` changes `nn.ReLU` only, so on ReLU6 networks it is plain gradient there; give it
    `relu6_as_relu(model)` instead.)
    """
    t = model_targets(model, x, target)
    relus = [m for m in model.modules() if isinstance(m, GUIDED_ACTIVATIONS)]
    if not relus:
        raise ValueError("guided backprop needs nn.ReLU or nn.ReLU6 modules in the model; this one has none "
                         "(activations written as F.relu calls cannot be hooked).")

    with torch.enable_grad(), capture(model, relus) as cap:
        xg = x.detach().requires_grad_(True)
        score = target_logits(model(xg), t).sum()
        for outputs in cap.outputs.values():  # every call of every activation: block negative gradients there
            for out in outputs:
                if isinstance(out, torch.Tensor) and out.requires_grad:
                    out.register_hook(lambda g: g.clamp(min=0))
        (grad,) = torch.autograd.grad(score, xg)
    return grad


class CappedReLU(nn.Module):
    """`min(max(z, 0), cap)` written as an `nn.ReLU` module followed by the cap: the same function as
    `nn.ReLU6` (for `cap=6`), in a form whose ReLU tools that act on `nn.ReLU` modules can see. Shapes are
    kept; any tensor."""

    def __init__(self, cap: float = 6.0):
        super().__init__()
        self.relu = nn.ReLU()
        self.cap = float(cap)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.relu(z).clamp(max=self.cap)

    def extra_repr(self) -> str:
        return f"cap={self.cap}"


def relu6_as_relu(model: nn.Module) -> nn.Module:
    """A deep copy of `model` in which every `nn.ReLU6` module is replaced by `CappedReLU(6)`, the same
    function computed as `nn.ReLU` then `min(., 6)`. The copy computes the same outputs; the backward rule
    of a ReLU (as Captum's `GuidedBackprop` changes it) then applies where the original had ReLU6. The
    gradient passes the cap only below 6, as in ReLU6, so guided backpropagation on the copy equals
    `guided_backprop(model, ...)`. A model without ReLU6 comes back as an unchanged copy. `model` itself is
    not modified."""
    clone = copy.deepcopy(model)
    for name, module in list(clone.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.ReLU6):
                setattr(module, child_name, CappedReLU(6.0))
    return clone
