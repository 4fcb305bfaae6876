"""Class activation maps from gradients: Grad-CAM (Selvaraju et al. 2017) and Grad-CAM++ (Chattopadhay
et al. 2018), for a batch of images and any score of the model's outputs.

Both weight the channels of one convolutional layer's output `A` `(N, C, h, w)` by gradients of a score,
sum over channels, keep the positive part and upsample bilinearly to the input size. The score is the
target logit (one class index per image), several logits from the same forward pass (several indices per
image: one map each), or any function of the logits (a callable). They are fast: `helpers.layers.capture`
hands back the layer's output as a leaf that requires grad, so autograd records only the layers after it
and `torch.autograd.grad` asks for the gradient with respect to that output alone (the parameters are
frozen by `helpers.load_model`). The cost is about one forward pass.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import checks
from .contract import Target, is_course_model
from .layers import capture, default_target_layer, get_layer

# What `grad_cam` explains: one class per image (`Target`), several per image (a list of lists, or an integer
# tensor (N, T)), or a function of the logits (N, K) -> scores (N,).
CamTarget = Target | Sequence[Sequence[int]] | Callable[[torch.Tensor], torch.Tensor]


def _resolve_layer(model: nn.Module, layer: str | nn.Module | None) -> nn.Module:
    if layer is None:
        if not is_course_model(model):
            raise ValueError("this model has no default target layer (it is not a course model, see "
                             "helpers.contract.CourseModel); pass layer= (a module or a dotted name).")
        return default_target_layer(model)
    return get_layer(model, layer)


def _several(target: object) -> bool:
    if isinstance(target, torch.Tensor):
        return target.ndim == 2
    return isinstance(target, (list, tuple)) and len(target) > 0 and all(isinstance(t, (list, tuple)) for t in target)


def _scores(model: nn.Module, x: torch.Tensor, target: CamTarget) -> Callable[[torch.Tensor], list[torch.Tensor]]:
    """Check `target` and return logits (N, K) -> the scores to differentiate, one `(N,)` tensor per map."""
    n = x.shape[0]
    if callable(target) and not isinstance(target, torch.Tensor):
        def from_callable(logits: torch.Tensor) -> list[torch.Tensor]:
            s = target(logits)
            if not isinstance(s, torch.Tensor) or s.shape != (n,):
                raise ValueError(f"a callable target must map logits (N, K) to scores (N,) = ({n},); it returned "
                                 f"{checks.shape_text(s)}.")
            return [s]
        return from_callable
    if _several(target):
        t = torch.as_tensor(target)
        if t.ndim != 2 or t.shape[0] != n or t.shape[1] == 0:
            raise ValueError(f"several targets per image must be a table (N, T) = ({n}, T) of class indices; got "
                             f"{checks.shape_text(t)}.")
        cols = [checks.targets(t[:, j], n, checks.output_classes(model), x.device) for j in range(t.shape[1])]
        return lambda logits: [checks.target_logits(logits, c) for c in cols]
    t = checks.targets(target, n, checks.output_classes(model), x.device)
    return lambda logits: [checks.target_logits(logits, t)]


def layer_activations_and_gradients(model: nn.Module, x: torch.Tensor, target: CamTarget,
                                    layer: str | nn.Module | None = None
                                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The target layer's output `A` `(N, C, h, w)` and the gradients of the scores with respect to it,
    `(N, C, h, w)` for one score per image, `(N, T, C, h, w)` for several targets per image; detached.

    target: one class index per image (an int, a list, a LongTensor `(N,)`), several per image (a list of
        lists or a LongTensor `(N, T)`: T gradients from one forward pass), or a callable logits `(N, K)` ->
        scores `(N,)`.
    layer: a module of the model or its dotted name (default: `helpers.default_target_layer(model)`).
    Raises KeyError for an unknown layer name, ValueError for bad images or targets, for a layer that does
    not run exactly once per forward pass (a shared module) or whose output is not `(N, C, h, w)`.
    """
    checks.images(x)
    scores_of = _scores(model, x, target)
    module = _resolve_layer(model, layer)
    with torch.enable_grad(), capture(model, module, leaf=True) as cap:
        logits = model(x.detach())
        acts = cap.output
        if not isinstance(acts, torch.Tensor) or acts.ndim != 4 or acts.shape[0] != x.shape[0]:
            raise ValueError(f"the target layer's output is {checks.shape_text(acts)}; Grad-CAM needs a "
                             "convolutional feature map (N, C, h, w). Pick a convolutional layer or block.")
        scores = scores_of(logits)
        grads = [torch.autograd.grad(s.sum(), acts, retain_graph=j < len(scores) - 1)[0]
                 for j, s in enumerate(scores)]
    several = _several(target)
    return acts.detach(), (torch.stack(grads, dim=1) if several else grads[0])


def upsample(cam: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling of maps `(N, h, w)` (or `(N, T, h, w)`) to `(N, *size)` (`(N, T, *size)`)
    (align_corners=False, as Captum's `LayerAttribution.interpolate`)."""
    if cam.ndim == 4:
        return F.interpolate(cam, size=size, mode="bilinear", align_corners=False)
    return F.interpolate(cam.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)


def _finish(weights: torch.Tensor, acts: torch.Tensor, x: torch.Tensor, resize: bool) -> torch.Tensor:
    # weights (N, [T,] C, 1, 1), acts (N, C, h, w) -> ReLU(sum_c weights_c A_c), upsampled to x when resize
    a = acts if weights.ndim == 4 else acts.unsqueeze(1)
    cam = (weights * a).sum(dim=-3).clamp(min=0)
    return upsample(cam, x.shape[-2:]) if resize else cam


def grad_cam(model: nn.Module, x: torch.Tensor, target: CamTarget, layer: str | nn.Module | None = None,
             resize: bool = True) -> torch.Tensor:
    """Grad-CAM maps for images `x` `(N, 3, H, W)` in [0, 1]: `(N, H, W)`, or `(N, T, H, W)` for T targets
    per image (one forward pass); >= 0, in the units of the layer's activations times gradients, bilinear-
    upsampled to `x`'s H, W (`resize=False`: at the layer's resolution `(N, [T,] h, w)`) and *not* rescaled.

    target: see `layer_activations_and_gradients` (a class index per image, several, or a callable on the
    logits). Channel weights are the spatial means of the gradients; the map is ReLU(sum_c weight_c * A_c).
    Equals Captum's `LayerGradCam(model, layer).attribute(x, target, relu_attributions=True)` upsampled by
    `LayerAttribution.interpolate(..., (H, W), "bilinear")`.
    """
    acts, grads = layer_activations_and_gradients(model, x, target, layer)
    weights = grads.mean(dim=(-2, -1), keepdim=True)  # (N, [T,] C, 1, 1)
    return _finish(weights, acts, x, resize)


def grad_cam_pp(model: nn.Module, x: torch.Tensor, target: CamTarget, layer: str | nn.Module | None = None,
                resize: bool = True) -> torch.Tensor:
    """Grad-CAM++ maps, shaped and upsampled like `grad_cam` (same targets), >= 0, not rescaled.

    Channel weights are sum_ij alpha_ij * ReLU(g_ij) with the closed form of Chattopadhay et al. (2018,
    eq. 19, which assumes an exponential of the score): alpha_ij = g_ij^2 / (2 g_ij^2 + sum_ab A_ab g_ij^3)
    (0 where g_ij <= 0 or the denominator is 0). The `grad-cam` package adds 1e-6 to that denominator,
    which matters only when gradients are tiny.

    The closed form assumes non-negative activations (ReLU outputs), so that sum_ab A_ab >= 0 and, where
    g_ij > 0 (the only places that count), alpha_ij = 1 / (2 + g_ij sum_ab A_ab) lies in (0, 1/2]. Layers
    with signed outputs (EfficientNet's `blocks.N`, which end in a linear projection) can have a negative
    sum; then the denominator nears or crosses zero, alpha explodes or turns negative, and one channel can
    swamp the map or push it below zero everywhere (an all-zero map). We therefore use max(sum_ab A_ab, 0)
    in the denominator: nothing changes for ReLU layers (where the `grad-cam` package agrees), and alpha
    stays in (0, 1/2] on any layer.
    """
    acts, grads = layer_activations_and_gradients(model, x, target, layer)
    a = acts if grads.ndim == 4 else acts.unsqueeze(1)
    g2 = grads.pow(2)
    total = a.sum(dim=(-2, -1), keepdim=True).clamp(min=0)  # >= 0 as the closed form assumes (see above)
    denom = 2 * g2 + total * g2 * grads
    # only g > 0 counts (ReLU(g) below); there denom > 0 unless g^2 underflows. Elsewhere alpha is set to 0,
    # which also avoids 0 * inf = NaN where g < 0 and 2 + g * sum A is (numerically) zero
    keep = (grads > 0) & (denom > 0)
    alpha = torch.where(keep, g2 / torch.where(keep, denom, torch.ones_like(denom)), torch.zeros_like(denom))
    weights = (alpha * grads.clamp(min=0)).sum(dim=(-2, -1), keepdim=True)
    return _finish(weights, acts, x, resize)
