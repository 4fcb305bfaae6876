"""The explorer's methods: each explanation method as a map function of one signature, in one registry.

A map function takes `(model, x (1, 3, H, W), target class, layer name, progress)` and returns a map
`(1, H, W)`; `progress(done, total)` reports the images seen so far (the slow methods call it). The methods
come from `helpers.saliency`, `helpers.cam` and `helpers.blackbox` (LIME, SHAP); their numbers of samples and
steps from the profile (`cfg.saliency.smoothgrad_samples`, `cfg.saliency.ig_steps`, `cfg.lime_samples`, `cfg.shap_evals`).
`Explorer.add_method` adds one to an explorer's own copy of `METHODS`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..config import get_profile
from ..models import Classifier

# A map function takes (model, x (1, 3, H, W), target class, layer name, progress) and returns (1, H, W).
MapFn = Callable[[Classifier, torch.Tensor, int, str, Callable[[int, int], None]], torch.Tensor]


@dataclass(frozen=True)
class Method:
    """One explanation method as the explorer uses it."""

    name: str
    fn: MapFn
    uses_layer: bool = False  # the map depends on the target layer (CAM methods)
    signed: bool = False  # show with SIGNED_CMAP, symmetric around 0
    slow: bool = False  # many model calls: show a progress bar


def _saliency(model, x, target, layer, progress):
    from ..saliency import vanilla_saliency

    return vanilla_saliency(model, x, target)


def _smoothgrad(model, x, target, layer, progress):
    from ..saliency import smoothgrad

    g = torch.Generator(device=x.device).manual_seed(0)  # the same noise every time: reproducible and cacheable
    return smoothgrad(model, x, target, samples=get_profile().settings.saliency.smoothgrad_samples, generator=g)


def _integrated_gradients(model, x, target, layer, progress):
    from ..saliency import integrated_gradients

    return integrated_gradients(model, x, target, steps=get_profile().settings.saliency.ig_steps).sum(dim=1)


def _grad_cam(model, x, target, layer, progress):
    from ..cam import grad_cam

    return grad_cam(model, x, target, layer=layer)


def _grad_cam_pp(model, x, target, layer, progress):
    from ..cam import grad_cam_pp

    return grad_cam_pp(model, x, target, layer=layer)


def _guided_grad_cam(model, x, target, layer, progress):
    from ..cam import grad_cam
    from ..saliency import guided_backprop

    guided = guided_backprop(model, x, target)  # (1, 3, H, W)
    return (guided * grad_cam(model, x, target, layer=layer).unsqueeze(1)).abs().amax(dim=1)


class _Reporting(nn.Module):
    """A model that reports how many images it has seen out of `total` after every call (for the
    progress bar of LIME and SHAP, which call the model on many batches of perturbed images). It passes the
    wrapped model's contract on (`helpers.contract.CourseModel`: labels, num_classes, target layer, ...)."""

    def __init__(self, model: nn.Module, total: int, report: Callable[[int, int], None]):
        super().__init__()
        self.model, self.total, self.report, self.done = model, total, report, 0

    net = property(lambda self: self.model.net)
    labels = property(lambda self: self.model.labels)
    num_classes = property(lambda self: self.model.num_classes)
    target_layer_name = property(lambda self: self.model.target_layer_name)
    multilabel = property(lambda self: self.model.multilabel)
    mean = property(lambda self: self.model.mean)
    std = property(lambda self: self.model.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        self.done += x.shape[0]
        self.report(min(self.done, self.total), self.total)
        return out


def _lime(model, x, target, layer, progress):
    from ..blackbox import lime_maps

    n = get_profile().settings.lime_samples
    return lime_maps(_Reporting(model, n, progress), x, target, num_samples=n)


def _shap(model, x, target, layer, progress):
    from ..blackbox import shap_maps

    n = get_profile().settings.shap_evals
    return shap_maps(_Reporting(model, n, progress), x, target, max_evals=n)


METHODS: dict[str, Method] = {m.name: m for m in [
    Method("saliency", _saliency),
    Method("SmoothGrad", _smoothgrad, slow=True),
    Method("Integrated Gradients", _integrated_gradients, signed=True, slow=True),
    Method("Grad-CAM", _grad_cam, uses_layer=True),
    Method("Grad-CAM++", _grad_cam_pp, uses_layer=True),
    Method("Guided Grad-CAM", _guided_grad_cam, uses_layer=True),
    Method("LIME", _lime, signed=True, slow=True),
    Method("SHAP", _shap, signed=True, slow=True),
]}
