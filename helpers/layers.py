"""Layers by dotted name: finding them (`get_layer`, `layer_names`, `stage_names`, `block_layers`) and
capturing their outputs during a forward pass (`capture`), the one place in `helpers` that registers hooks.

Layer names are dotted names inside `model.net` for a course model (`helpers.contract.CourseModel`), inside
the model itself otherwise: `"layer4"`, `"features.29"`, `"blocks.6"`, `"bn2"`.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from torch import nn

from .contract import CourseModel, network
from .registry import model_spec


class _StopForward(Exception):
    """Raised by `capture`'s hooks (stop=True) once every wanted layer has run; `capture` swallows it."""


class Captured:
    """What `capture` recorded: `outputs[name]`, the outputs of layer `name` (a list, one per call, in call
    order) during the `with` block; `order`, the names in the order the layers first finished; `output`, the
    one output of the one layer (ValueError unless exactly one layer ran exactly once)."""

    def __init__(self, names: list[str]):
        self.names = names
        self.outputs: dict[str, list[torch.Tensor]] = {n: [] for n in names}
        self.order: list[str] = []

    @property
    def output(self) -> torch.Tensor:
        if len(self.names) != 1:
            raise ValueError(f"{len(self.names)} layers were captured; read cap.outputs[name] instead.")
        (name,) = self.names
        got = self.outputs[name]
        if len(got) != 1:
            raise ValueError(f"layer {name!r} ran {len(got)} times in the forward pass; pick a layer that runs "
                             "exactly once (a block or a convolution, not a shared activation module).")
        return got[0]


def _name_of(root: nn.Module, module: nn.Module) -> str:
    return next((n for n, m in root.named_modules() if m is module), type(module).__name__)


@contextmanager
def capture(model: nn.Module, layers: str | nn.Module | Sequence[str | nn.Module], *, leaf: bool = False,
            stop: bool = False) -> Iterator[Captured]:
    """Record the outputs of `layers` during every forward pass of `model` run inside the `with` block.

    layers: one layer or several, each a module of the model or a dotted name (`get_layer`); recorded under
        its dotted name in `cap.outputs`.
    leaf: each recorded output is a detached copy that requires grad, and the network continues from a clone
        of it; autograd then stops there, so `torch.autograd.grad(score, cap.output)` is the gradient with
        respect to the layer's output and costs only the layers above it (Grad-CAM's way).
    stop: once every layer has run, the forward pass is cut short (the model call in the block raises an
        internal exception that `capture` swallows, so write the call last in the block); early layers are
        then cheap to reach.
    The recorded output is not touched by later in-place operations (the network continues from a clone).
    Hooks are removed when the block ends, also on an exception. KeyError for an unknown layer name.
    """
    many = isinstance(layers, (list, tuple))
    modules = [get_layer(model, layer) for layer in (layers if many else [layers])]
    root = network(model)
    names = [layer if isinstance(layer, str) else _name_of(root, mod)
             for layer, mod in zip(layers if many else [layers], modules)]
    cap = Captured(names)

    def hook_for(name: str):
        def hook(module: nn.Module, inputs: tuple, output: object) -> object:
            if not cap.outputs[name]:
                cap.order.append(name)
            if isinstance(output, torch.Tensor):
                kept = output.detach().requires_grad_(True) if leaf else output
                cap.outputs[name].append(kept)
                output = kept.clone()
            else:
                cap.outputs[name].append(output)
            if stop and all(cap.outputs[n] for n in names):
                raise _StopForward
            return output
        return hook

    handles = [mod.register_forward_hook(hook_for(name)) for name, mod in zip(names, modules)]
    try:
        yield cap
    except _StopForward:
        pass
    finally:
        for h in handles:
            h.remove()


def layer_names(model: nn.Module, types: tuple[type, ...] | None = None) -> list[str]:
    """Dotted names of the submodules of `model` (of `model.net` for a `CourseModel`), optionally only
    those of the given types, e.g. `(nn.Conv2d,)`."""
    root = network(model)
    return [n for n, m in root.named_modules() if n and (types is None or isinstance(m, types))]


def get_layer(model: nn.Module, layer: str | nn.Module) -> nn.Module:
    """The submodule called `layer` (a dotted name inside `model.net`, e.g. `"layer4.1.conv2"`), or
    `layer` itself when it is already a module of the model. KeyError listing valid names otherwise."""
    root = network(model)
    if isinstance(layer, nn.Module):
        if any(layer is m for m in model.modules()):
            return layer
        raise KeyError(f"the module {type(layer).__name__} given as a layer is not part of this model.")
    name = layer[4:] if root is not model and layer.startswith("net.") else layer
    try:
        return root.get_submodule(name)
    except AttributeError:
        names = layer_names(model)
        top = [n for n in names if "." not in n]
        raise KeyError(
            f"no layer named {layer!r} in {getattr(model, 'name', type(root).__name__)}. Top-level blocks: "
            f"{', '.join(top)}. All {len(names)} names: helpers.layer_names(model); the default Grad-CAM layer "
            f"is {getattr(model, 'target_layer_name', '?')!r}.") from None


def default_target_layer(model: CourseModel) -> nn.Module:
    """The model's default Grad-CAM layer (its last convolutional block's output)."""
    return get_layer(model, model.target_layer_name)


def stage_names(model: CourseModel) -> list[str]:
    """Dotted names of the outputs of the network's stages, from the input to the output: for ResNets
    `maxpool, layer1 ... layer4`; for EfficientNet-Lite0 `bn1, blocks.0 ... blocks.6, bn2`; for VGG the last
    ReLU before each max-pool. Use them to compare early and late layers on any course model."""
    return list(model_spec(model.name).stages)


# Which layers to offer as target layers (the explorer's menu): the outputs of the convolutional blocks,
# found from the module tree, kept when they give one feature map per forward pass.

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


def block_layers(model: CourseModel) -> list[str]:
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


def feature_map_layers(model: CourseModel, names: list[str], size: int) -> list[str]:
    """The layers among `names` that run once per forward pass of an `size` x `size` image and give a
    feature map `(N, C, h, w)` (a block called twice, or one that returns a tuple, is dropped)."""
    with torch.no_grad(), capture(model, names) as cap:
        model(torch.zeros(1, 3, size, size, device=next(model.parameters()).device))
    return [n for n in names if len(cap.outputs[n]) == 1 and isinstance(cap.outputs[n][0], torch.Tensor)
            and cap.outputs[n][0].ndim == 4]
