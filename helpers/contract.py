"""The course's model contract, written once, at the bottom of the package: what a course model is
(`CourseModel`, `is_course_model`), the module its layer names refer to (`network`), and what a target is
(`Target`). Every other module may import it; it imports nothing from `helpers`.
"""
from __future__ import annotations

from typing import Protocol, Sequence

import torch
from torch import nn

# One class index for every image, or one per image (a list, or an integer tensor (N,)); `helpers.cam` also
# takes several per image and callables on the logits (see `cam.grad_cam`).
Target = int | Sequence[int] | torch.Tensor


class CourseModel(Protocol):
    """What the helpers read from a model: the course's model contract, written once.

    A course model is called on images `(N, 3, H, W)` in [0, 1] and returns logits `(N, num_classes)`;
    it normalizes its input itself. `Classifier` (every `load_model` network, and the fine-tuned ones of
    `helpers.train`), `helpers.synthetic.SmallCNN` and the explorer's reporting wrapper satisfy it
    (`is_course_model(model)` checks that the attributes exist; `isinstance` with a Protocol cannot see a
    module's registered submodules and buffers on Python 3.12). Functions of `helpers` accept any
    `nn.Module` returning logits; from a course model they also read:

    - `net`: the module whose submodules the dotted layer names refer to (`get_layer`, `layer_names`);
    - `labels`: the class (or attribute) names, in output order; `num_classes == len(labels)`;
    - `target_layer_name`: the default Grad-CAM layer, a dotted name inside `net`;
    - `multilabel`: outputs are independent sigmoids (True) or one softmax over classes (False), which
      decides the score LIME and SHAP explain;
    - `mean`, `std`: tensors `(1, 3, 1, 1)`; the network sees `(x - mean) / std`.
    """

    net: nn.Module
    labels: list[str]
    target_layer_name: str
    multilabel: bool
    mean: torch.Tensor
    std: torch.Tensor

    @property
    def num_classes(self) -> int: ...

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


CONTRACT = ("net", "labels", "num_classes", "target_layer_name", "multilabel", "mean", "std")


def is_course_model(model: object) -> bool:
    """True when `model` has every attribute of the `CourseModel` contract (`CONTRACT`)."""
    return all(hasattr(model, name) for name in CONTRACT)


def network(model: nn.Module) -> nn.Module:
    """The module that layer names refer to: `model.net` for a course model (`CourseModel`), else `model`."""
    return model.net if is_course_model(model) else model
