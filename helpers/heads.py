"""Head surgery for fine-tuning (notebook 06): a new classification layer (`new_head`), and the split of a
network into a frozen prefix and the trained last block (`trainable_parts`, `split_model`).

The parts are found the same way for every model: the head is the network's last `nn.Linear`; the block
starts at the module named by the model's `last_block` (in `helpers.registry.MODELS`) and runs up to the
top-level module that holds the head (ResNet: `layer4`; VGG19: its fifth convolutional block, `features.28`
to `features.36`; EfficientNet-Lite0: `blocks.6`, `conv_head` and `bn2`). The network's top-level modules
must run one after the other, and `split_model` checks on a random input that the two halves reproduce the
whole network.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .models import Classifier
from .registry import MODELS, model_spec


def last_block(name: str) -> str:
    """The first module of model `name`'s last block (`ModelSpec.last_block` in `helpers.registry.MODELS`):
    the part of the network trained together with the new head, from this module up to the top-level module
    holding the head. ValueError naming the models that can be fine-tuned otherwise."""
    try:
        start = model_spec(name).last_block
    except ValueError:
        start = ""
    if not start:
        known = [n for n, s in MODELS.items() if s.last_block]
        raise ValueError(f"fine_tune knows {', '.join(known)}; got {name!r}.")
    return start


def head_name(net: nn.Module) -> str:
    """Dotted name of the network's last `nn.Linear` (its classification layer), e.g. `"fc"` (ResNet),
    `"classifier.6"` (VGG), `"classifier"` (EfficientNet-Lite0). ValueError when it has none."""
    names = [n for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise ValueError(f"{type(net).__name__} has no nn.Linear layer to replace by a new head.")
    return names[-1]


def new_head(model: Classifier, labels: Sequence[str], multilabel: bool) -> Classifier:
    """Replace `model`'s last linear layer by a freshly initialised one with `len(labels)` outputs (in place;
    returns `model`). `model.multilabel` records whether outputs are independent logits (sigmoid) or one
    softmax over classes. The new layer's initial weights come from a local seed (the global random
    generator is untouched), so they are the same on every run."""
    if len(labels) == 0:
        raise ValueError("new_head needs at least one label.")
    name = head_name(model.net)
    parent_name, _, leaf = name.rpartition(".")
    parent = model.net.get_submodule(parent_name) if parent_name else model.net
    old = getattr(parent, leaf)
    layer = nn.utils.skip_init(nn.Linear, old.in_features, len(labels))  # no draw from the global generator
    # nn.Linear's own initialization (uniform in +-1/sqrt(fan_in)), drawn from a local generator
    g = torch.Generator().manual_seed(0)
    bound = 1.0 / old.in_features ** 0.5
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=g)
        layer.bias.uniform_(-bound, bound, generator=g)
    setattr(parent, leaf, layer.to(old.weight.device))
    model.labels = list(labels)
    model.multilabel = multilabel
    return model


def _chain(module: nn.Module, start: str, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """`module`'s children as (dotted name, module) in order, with the child that contains `start`
    expanded (recursively) so that `start` is one of the entries."""
    out = []
    for name, child in module.named_children():
        full = prefix + name
        if start.startswith(full + "."):
            if not isinstance(child, nn.Sequential):
                raise ValueError(f"cannot split {type(child).__name__} {full!r} at {start!r}: only nn.Sequential "
                                 "containers run their children one after the other.")
            out.extend(_chain(child, start, full + "."))
        else:
            out.append((full, child))
    return out


def trainable_parts(model: Classifier) -> tuple[str, list[str]]:
    """(head, block) of `model`: the dotted name of the layer `new_head` replaces, and the names of the
    modules of the last block, in order (see `last_block`; names inside `model.net`)."""
    start, head = last_block(model.name), head_name(model.net)
    chain = [n for n, _ in _chain(model.net, start)]
    if start not in chain:
        raise ValueError(f"{model.name} has no module {start!r} at the start of a block.")
    head_top = head.split(".")[0]
    i, j = chain.index(start), chain.index(head_top)
    if j <= i:
        raise ValueError(f"{model.name}: the head {head!r} does not come after the block start {start!r}.")
    return head, chain[i:j]


def split_model(model: Classifier) -> tuple[nn.Module, nn.Module]:
    """(prefix, suffix) such that `suffix(prefix(model.normalize(x))) == model(x)`: prefix is the frozen
    part before the last block; suffix is the block, the pooling and the classifier (sharing modules; a
    flatten is inserted before the classifier). Checked on a random 64-pixel input: RuntimeError when the
    network's modules do not run in the order they are registered."""
    start, head = last_block(model.name), head_name(model.net)
    chain = _chain(model.net, start)
    names = [n for n, _ in chain]
    i, j = names.index(start), names.index(head.split(".")[0])
    prefix = nn.Sequential(*[m for _, m in chain[:i]])
    suffix = nn.Sequential(*[m for _, m in chain[i:j]], nn.Flatten(1), *[m for _, m in chain[j:]])
    device = next(model.parameters()).device
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)).to(device)
    with torch.no_grad():
        whole, parts = model(x), suffix(prefix(model.normalize(x)))
    if whole.shape != parts.shape or not torch.allclose(whole, parts, atol=1e-4, rtol=1e-4):
        raise RuntimeError(f"{model.name}: its top-level modules in order do not reproduce its forward pass, so "
                           "it cannot be split into a frozen prefix and a trained block.")
    return prefix, suffix
