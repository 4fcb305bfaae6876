"""Class activation maps from gradients: Grad-CAM (Selvaraju et al. 2017) and Grad-CAM++ (Chattopadhay
et al. 2018), for a batch of images and one target class per image.

Both weight the channels of one convolutional layer's output `A` `(N, C, h, w)` by gradients of the
target logit, sum over channels, keep the positive part and upsample bilinearly to the input size.
They are fast: a forward hook replaces the layer's output by a detached copy that requires grad, so that
autograd records only the layers after the target layer and `torch.autograd.grad` asks for the gradient
with respect to that output alone (the parameters are frozen by `helpers.load_model`). The cost is about
one forward pass. The hook is removed before returning, also on error.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .models import default_target_layer, get_layer, is_course_model
from .saliency import Target, _prepare, _score


def _resolve_layer(model: nn.Module, layer: str | nn.Module | None) -> nn.Module:
    if layer is None:
        if not is_course_model(model):
            raise ValueError("this model has no default target layer (it is not a course model, see "
                             "helpers.models.CourseModel); pass layer= (a module or a dotted name).")
        return default_target_layer(model)
    return get_layer(model, layer)


def layer_activations_and_gradients(model: nn.Module, x: torch.Tensor, target: Target,
                                    layer: str | nn.Module | None = None
                                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The target layer's output `A` and d logit_target / d A, both `(N, C, h, w)`, detached.

    `layer` is a module of the model or its dotted name (default: `helpers.default_target_layer(model)`).
    Raises KeyError for an unknown layer name, ValueError for bad images or targets, for a layer that does
    not run exactly once per forward pass (a shared module) or whose output is not `(N, C, h, w)`.
    """
    t = _prepare(model, x, target)
    module = _resolve_layer(model, layer)
    kept: list[torch.Tensor] = []

    def keep(mod: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        if not isinstance(output, torch.Tensor):
            raise ValueError(f"the target layer {type(mod).__name__} returns {type(output).__name__}, not a "
                             "tensor; pick a convolutional layer or block.")
        leaf = output.detach().requires_grad_(True)
        kept.append(leaf)
        return leaf.clone()  # later in-place ops (e.g. a ReLU after a conv) must not touch `leaf`

    handle = module.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            logits = model(x.detach())
            if len(kept) != 1:
                raise ValueError(f"the target layer {type(module).__name__} ran {len(kept)} times in one forward "
                                 "pass; pick a layer that runs exactly once (a block or a convolution, not a "
                                 "shared activation module).")
            acts = kept[0]
            if acts.ndim != 4 or acts.shape[0] != x.shape[0]:
                raise ValueError(f"the target layer's output has shape {tuple(acts.shape)}; Grad-CAM needs a "
                                 "convolutional feature map (N, C, h, w). Pick a convolutional layer or block.")
            (grads,) = torch.autograd.grad(_score(logits, t), acts)
    finally:
        handle.remove()
        kept.clear()
    return acts.detach(), grads


def upsample(cam: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling of maps `(N, h, w)` to `(N, *size)` (align_corners=False, as Captum's
    `LayerAttribution.interpolate`)."""
    return F.interpolate(cam.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)


def grad_cam(model: nn.Module, x: torch.Tensor, target: Target,
             layer: str | nn.Module | None = None) -> torch.Tensor:
    """Grad-CAM maps `(N, H, W)` for images `x` `(N, 3, H, W)` in [0, 1]: >= 0, in the units of the
    layer's activations times gradients, bilinear-upsampled to `x`'s H, W and *not* rescaled.

    Channel weights are the spatial means of the gradients; the map is ReLU(sum_c weight_c * A_c).
    Equals Captum's `LayerGradCam(model, layer).attribute(x, target, relu_attributions=True)` upsampled by
    `LayerAttribution.interpolate(..., (H, W), "bilinear")`.
    """
    acts, grads = layer_activations_and_gradients(model, x, target, layer)
    weights = grads.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
    cam = (weights * acts).sum(dim=1).clamp(min=0)  # (N, h, w)
    return upsample(cam, x.shape[-2:])


def grad_cam_pp(model: nn.Module, x: torch.Tensor, target: Target,
                layer: str | nn.Module | None = None) -> torch.Tensor:
    """Grad-CAM++ maps `(N, H, W)`, >= 0, upsampled like `grad_cam`, not rescaled.

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
    g2 = grads.pow(2)
    total = acts.sum(dim=(2, 3), keepdim=True).clamp(min=0)  # >= 0 as the closed form assumes (see above)
    denom = 2 * g2 + total * g2 * grads
    # only g > 0 counts (ReLU(g) below); there denom > 0 unless g^2 underflows. Elsewhere alpha is set to 0,
    # which also avoids 0 * inf = NaN where g < 0 and 2 + g * sum A is (numerically) zero
    keep = (grads > 0) & (denom > 0)
    alpha = torch.where(keep, g2 / torch.where(keep, denom, torch.ones_like(denom)), torch.zeros_like(denom))
    weights = (alpha * grads.clamp(min=0)).sum(dim=(2, 3), keepdim=True)
    cam = (weights * acts).sum(dim=1).clamp(min=0)
    return upsample(cam, x.shape[-2:])
