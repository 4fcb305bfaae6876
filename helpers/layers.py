"""Which layers of a network to offer as target layers: the outputs of its convolutional blocks, found from
the module tree (`block_layers`), kept when they give one feature map per forward pass (`feature_map_layers`).
"""
from __future__ import annotations

import torch
from torch import nn

from .models import Classifier, get_layer, layer_names

_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SiLU, nn.GELU, nn.Hardswish)


def _has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


def _is_leaf(module: nn.Module) -> bool:
    return next(module.children(), None) is None


def _is_conv(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) or "Conv" in type(module).__name__  # also separable convs


def _acts(module: nn.Module) -> bool:
    """An activation, or a module without convolutions that ends in one (timm's `BatchNormAct2d`: a batch norm
    and its ReLU6 in one module, as in EfficientNet-Lite0's `bn1` and `bn2`)."""
    if isinstance(module, _ACTIVATIONS):
        return True
    return not _is_leaf(module) and not _has_conv(module) and any(isinstance(m, _ACTIVATIONS) for m in module.modules())


def _is_stage_container(module: nn.Module) -> bool:
    """A container whose children are themselves sequences of blocks (EfficientNet's `blocks`: `blocks.0` ...
    `blocks.6`, one stage each), as opposed to a sequence of blocks (ResNet's `layer1`)."""
    kids = list(module.children())
    return (isinstance(module, (nn.Sequential, nn.ModuleList)) and bool(kids)
            and all(isinstance(k, (nn.Sequential, nn.ModuleList)) and _has_conv(k) for k in kids))


def block_layers(model: Classifier) -> list[str]:
    """The dotted names of the outputs of the model's convolutional blocks, in forward order: the
    natural target layers to offer (ResNet: `relu` (stem), `layer1` ... `layer4`; VGG and AlexNet: the
    ReLU before each max-pool, e.g. `features.29`; EfficientNet-Lite0: `bn1` (stem), `blocks.0` ...
    `blocks.6`, `bn2`; Xception: `act2`, `block1` ... `block12`, `act4`).

    Derived from the module tree: a top-level child that contains convolutions is a block; a flat
    `nn.Sequential` of layers (VGG's `features`) is read layer by layer, and a container of stages
    (EfficientNet's `blocks`) stage by stage. An activation (or a norm-and-activation module) that follows a
    convolution counts when the next layer is a pooling layer, a block, or nothing. The model's default
    target layer is always included.
    """
    seq: list[tuple[str, nn.Module]] = []
    for name, child in model.net.named_children():
        kids = list(child.named_children())
        if isinstance(child, nn.Sequential) and kids and all(_is_leaf(k) for _, k in kids):
            seq += [(f"{name}.{n}", k) for n, k in kids]
        elif _is_stage_container(child):
            seq += [(f"{name}.{n}", k) for n, k in kids]
        else:
            seq.append((name, child))
    out: list[str] = []
    after_conv = False
    for i, (name, mod) in enumerate(seq):
        if _is_conv(mod):
            after_conv = True
        elif not _is_leaf(mod) and _has_conv(mod):
            out.append(name)
            after_conv = True
        elif _acts(mod) and after_conv:
            nxt = seq[i + 1][1] if i + 1 < len(seq) else None
            if nxt is None or "Pool" in type(nxt).__name__ or (
                    not _is_leaf(nxt) and not _is_conv(nxt) and _has_conv(nxt)):
                out.append(name)
        elif isinstance(mod, nn.Linear):
            after_conv = False
    default = model.target_layer_name
    if default not in out:
        order = {n: i for i, n in enumerate(layer_names(model))}
        out = sorted(out + [default], key=lambda n: order.get(n, len(order)))
    return out


def feature_map_layers(model: Classifier, names: list[str], size: int) -> list[str]:
    """The layers among `names` that run once per forward pass of an `size` x `size` image and give a
    feature map `(N, C, h, w)` (a block called twice, or one that returns a tuple, is dropped)."""
    seen: dict[str, list[tuple[int, ...]]] = {n: [] for n in names}
    hooks = [get_layer(model, n).register_forward_hook(
        lambda mod, inp, out, n=n: seen[n].append(tuple(out.shape) if isinstance(out, torch.Tensor) else ()))
        for n in names]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    return [n for n in names if len(seen[n]) == 1 and len(seen[n][0]) == 4]
