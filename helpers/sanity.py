"""Sanity checks for saliency maps (Adebayo et al. 2018): cascading model-parameter randomization.

`cascading_randomization(model)` re-initializes a copy of the model block by block from the output down
and yields it after each step; `stage_layer_order(model)` gives a coarser cascade, one step per stage of
`helpers.stage_names` (the head first). The similarity of a map before and after is measured with
`helpers.metrics.spearman` and `helpers.metrics.ssim` (the course's one definition of each). A method whose
maps stay similar while the weights they are supposed to explain are destroyed fails the check. Notebook 01
teaches the check; notebook 07 turns it into a score.
"""
from __future__ import annotations

import copy
from typing import Iterator, Sequence

import torch
from torch import nn

from .contract import network
from .layers import get_layer, stage_names
from .models import Classifier


def default_layer_order(model: nn.Module) -> list[str]:
    """Dotted names of the model's parameterized blocks from the output to the input: containers
    (`nn.Sequential`, e.g. ResNet's `layer4` or VGG's `features`) are opened one level at a time, other
    modules with parameters are kept whole (a ResNet block, a convolution, the classifier)."""
    root = network(model)
    names: list[str] = []

    def walk(module: nn.Module, prefix: str) -> None:
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            if isinstance(child, (nn.Sequential, nn.ModuleList)):
                walk(child, full + ".")
            elif any(True for _ in child.parameters()):
                names.append(full)

    walk(root, "")
    return names[::-1]


def stage_layer_order(model: Classifier) -> list[tuple[str, ...]]:
    """The blocks of `default_layer_order(model)` grouped by network stage, from the output down: first the
    head (every block after the last stage output of `helpers.stage_names`, e.g. ResNet's `fc`, Lite0's
    `classifier`), then one group per stage, the last group holding the stem.

    Each group is a tuple of dotted names in forward order, randomized together as one step by
    `cascading_randomization`; a group that is a whole container is named by it. ResNet-18: `("fc",)`,
    `("layer4",)`, ..., `("layer1",)`, `("conv1", "bn1")`; EfficientNet-Lite0: `("classifier",)`,
    `("conv_head", "bn2")`, `("blocks.6",)`, ..., `("blocks.0",)`, `("conv_stem", "bn1")`. Raises
    ValueError for a model that is not a course `Classifier` (its stages are unknown) or whose stage names
    are not found in it.
    """
    if not isinstance(model, Classifier):
        raise ValueError("stage_layer_order needs a course model (helpers.load_model), whose stages are known; "
                         f"got {type(model).__name__}. Use default_layer_order for other models.")
    # positions in the forward (registration) order of every module, containers included
    position = {name: i for i, (name, _) in enumerate(model.net.named_modules())}
    ends = []
    for stage in stage_names(model):
        inside = [i for name, i in position.items() if name == stage or name.startswith(stage + ".")]
        if not inside:
            raise ValueError(f"stage {stage!r} of {model.name} is not a module of the model.")
        ends.append(max(inside))
    blocks = default_layer_order(model)[::-1]  # input first
    groups: list[list[str]] = [[] for _ in range(len(ends) + 1)]  # one per stage, then the head
    for name in blocks:
        groups[next((k for k, end in enumerate(ends) if position[name] <= end), len(ends))].append(name)

    def compact(group: list[str]) -> tuple[str, ...]:
        # the largest container whose blocks are exactly the group's (layer4.0 + layer4.1 -> layer4)
        members, name = set(group), None
        parts = group[0].split(".")
        for depth in range(len(parts), 0, -1):
            prefix = ".".join(parts[:depth])
            if {n for n in blocks if n == prefix or n.startswith(prefix + ".")} == members:
                name = prefix
        return (name,) if name is not None else tuple(group)

    return [compact(g) for g in groups[::-1] if g]


def group_label(group: str | Sequence[str]) -> str:
    """A short name for a step of the cascade: the layer's name, or the group's names joined by `+`."""
    return group if isinstance(group, str) else "+".join(group)


def randomize_(module: nn.Module, seed: int) -> None:
    """Re-initialize every parameter of `module` in place, with torch's own initializers
    (`reset_parameters`, which also resets batch-norm statistics) and a fixed seed; parameters of modules
    without one are drawn from N(0, 0.01^2)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        covered: set[int] = set()
        for m in module.modules():
            if hasattr(m, "reset_parameters") and callable(m.reset_parameters):
                m.reset_parameters()
                covered.update(id(p) for p in m.parameters(recurse=False))
            elif hasattr(m, "reset_running_stats"):
                m.reset_running_stats()
        with torch.no_grad():
            for p in module.parameters():
                if id(p) not in covered:
                    p.normal_(0.0, 0.01)


def cascading_randomization(model: nn.Module, layer_order: Sequence[str | Sequence[str]] | None = None,
                            seed: int = 0) -> Iterator[tuple[str, nn.Module]]:
    """Yield `(label, randomized)` after re-initializing each step of `layer_order` in turn (default:
    `default_layer_order(model)`, from the output down), cumulatively: at step k the top k steps are random.

    A step is one dotted layer name or a group of names randomized together (as `stage_layer_order`
    gives); `label` is the name, or `group_label` of the group.

    `randomized` is ONE deep copy of `model`, randomized further at every step: use it before asking for
    the next step, or `copy.deepcopy` it to keep it. `model` itself is never changed. The copy stays in
    eval mode with frozen parameters. Deterministic for a given `seed` (the global RNG is left alone).
    Raises KeyError for an unknown layer name.
    """
    order = default_layer_order(model) if layer_order is None else list(layer_order)
    steps = [(step,) if isinstance(step, str) else tuple(step) for step in order]
    if any(not names for names in steps):
        raise ValueError("a step of layer_order is an empty group of layers.")
    clone = copy.deepcopy(model).eval()
    for names in steps:
        for name in names:
            get_layer(clone, name)  # fail early, before any work, on a wrong name
    for step, names in enumerate(steps):
        for k, name in enumerate(names):
            randomize_(get_layer(clone, name), seed + 1000 * step + k)
        clone.requires_grad_(False)
        yield group_label(names), clone
