"""ImageNet classifiers by name (`load_model`), their labels, and their top-k predictions.

Every model the course loads is a `Classifier`: it takes images `(N, 3, H, W)` with values in [0, 1]
and normalizes them itself (ImageNet mean/std, or Xception's 0.5/0.5), so that attacks, optimized
images and baselines all live in plain pixel space. The network itself is `model.net`; layer names
such as `"layer4"` or `"features.29"` are names inside it.

Which models exist and where their weights come from is the table in `helpers.registry`; in `offline` and
`smoke` the architectures other than EfficientNet-Lite0 get random weights unless their files are already
cached (and `load_model` says so).
"""
from __future__ import annotations

import torch
from torch import nn
from torchvision import models as tvm

from . import checks
from .config import get_profile, random_weights, weights_dir
from .device import get_device
from .registry import (WeightsError, fetch_weights, has_pretrained_weights, map_state_dict_by_position, model_spec,
                       read_state_dict, weights_file)


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet class names in the models' output order, offline (torchvision's metadata)."""
    return list(tvm.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


class Classifier(nn.Module):
    """An ImageNet classifier on images in [0, 1]: `forward(x)` normalizes `x` `(N, 3, H, W)` and returns
    logits `(N, num_classes)`. `net` is the wrapped network; `labels` its class names. Satisfies
    `CourseModel` (`multilabel` is False until `helpers.train.new_head` sets it)."""

    multilabel: bool = False

    def __init__(self, net: nn.Module, name: str, mean: tuple[float, ...], std: tuple[float, ...],
                 labels: list[str], target_layer: str):
        super().__init__()
        self.net = net
        self.name = name
        self.labels = labels
        self.target_layer_name = target_layer
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] pixels `(N, 3, H, W)` to the network's input scale."""
        return (x - self.mean) / self.std

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        """The exact inverse of `normalize`."""
        return z * self.std + self.mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))

    @property
    def num_classes(self) -> int:
        return len(self.labels)


def load_model(name: str, pretrained: bool | None = None, device: torch.device | str | None = None,
               frozen: bool = True) -> Classifier:
    """Model `name` (see `MODELS`) as a `Classifier` in eval mode on `device` (default: the course's).

    pretrained: None loads ImageNet weights wherever they can be had: always for EfficientNet-Lite0 (they
        come with its package), in `full` for every model (downloaded once), in `offline` and `smoke` for
        the others only when their files are already cached (else random weights, and a printed line says
        so). `COURSE_WEIGHTS=random` makes None mean random weights everywhere.
    frozen: parameters do not require gradients (explanations need gradients for inputs or one layer
        only; set False to fine-tune).
    Random weights are the same on every call (drawn from a local seed; the global generator is untouched).
    A missing, corrupt or mismatched weight file raises WeightsError (a ValueError) naming the file and the
    fix; no half-loaded model is ever returned.
    """
    spec = model_spec(name)
    if pretrained is None:
        pretrained = has_pretrained_weights(spec.name)
        if not pretrained and not random_weights():
            print(f"{spec.name}: no ImageNet weights in the {get_profile().name} profile (nothing is downloaded; "
                  f"{weights_file(spec.name).name} is not in {weights_dir()}), so it has RANDOM weights.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # random weights are the same on every run
        net = spec.build()
    if pretrained:
        path = fetch_weights(spec.name)
        state = read_state_dict(path, spec)
        if spec.ships_weights:
            state = map_state_dict_by_position(state, net.state_dict(), what=f"the weights in {path}")
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise WeightsError(f"the weight file {path} does not fit {spec.name}'s architecture ({exc}). Delete "
                               "it and run `make assets` again.") from None
    model = Classifier(net, spec.name, spec.mean, spec.std, imagenet_labels(), spec.target_layer)
    model.eval().requires_grad_(not frozen)
    return model.to(device if device is not None else get_device())


@torch.no_grad()
def top_k(model: Classifier, x: torch.Tensor, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k probabilities and class indices, each `(N, k)`, for images `x` `(N, 3, H, W)` in [0, 1]."""
    checks.images(x)
    probs = model(x).softmax(dim=1)
    return probs.topk(k, dim=1)
