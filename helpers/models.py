"""ImageNet classifiers by name, their labels, and target layers by dotted name.

Every model the course loads is a `Classifier`: it takes images `(N, 3, H, W)` with values in [0, 1]
and normalizes them itself (ImageNet mean/std, or Xception's 0.5/0.5), so that attacks, optimized
images and baselines all live in plain pixel space. The network itself is `model.net`; layer names
such as `"layer4"` or `"features.29"` are names inside it.

Weights come from the same cache torchvision uses (`$TORCH_HOME/hub/checkpoints`) and are downloaded
once, with their checksum, when missing. In the `smoke` profile the same architectures get random
weights and nothing is downloaded.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torchvision import models as tvm

from .config import get_profile, weights_dir
from .device import get_device
from .download import DownloadError, download

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelSpec:
    """How to build one model: architecture, weight file, normalization, default Grad-CAM layer."""

    name: str
    build: Callable[[], nn.Module]  # the architecture with random weights
    url: str  # where the pretrained state dict is downloaded from
    sha256: str  # prefix of the file's SHA-256 (the part of torchvision's file names after the dash)
    target_layer: str  # default Grad-CAM layer: the last convolutional block's output
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    input_size: int = 224  # the side the model was trained at, pixels

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def _timm_xception() -> nn.Module:
    import timm

    return timm.create_model("legacy_xception", pretrained=False)


def _tv(name: str) -> tuple[Callable[[], nn.Module], str, str]:
    weights = tvm.get_model_weights(name).IMAGENET1K_V1
    return (lambda: tvm.get_model(name, weights=None)), weights.url, weights.url.rsplit("-", 1)[-1].split(".")[0]


def _spec(name: str, target_layer: str) -> ModelSpec:
    build, url, sha = _tv(name)
    return ModelSpec(name, build, url, sha, target_layer)


MODELS: dict[str, ModelSpec] = {
    "resnet18": _spec("resnet18", "layer4"),
    "resnet50": _spec("resnet50", "layer4"),
    "vgg16": _spec("vgg16", "features.29"),  # ReLU after the last conv, before the last max-pool
    "vgg19": _spec("vgg19", "features.35"),
    "alexnet": _spec("alexnet", "features.11"),
    "xception": ModelSpec(
        "xception", _timm_xception,
        "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-cadene/xception-43020ad28.pth",
        "43020ad28", "act4", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size=299,
    ),
}


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet class names in the models' output order, offline (torchvision's metadata)."""
    return list(tvm.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def model_spec(name: str) -> ModelSpec:
    """The spec of a model by name; ValueError listing the valid names otherwise."""
    key = name.lower().replace("-", "").replace("_", "")
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}.")
    return MODELS[key]


def weights_file(name: str) -> Path:
    """Where the pretrained weights of model `name` are cached."""
    return weights_dir() / model_spec(name).filename


def default_weights_file() -> Path:
    """The file whose presence makes the default profile `full` (ResNet-18's weights)."""
    return weights_file("resnet18")


def fetch_weights(name: str, progress: bool = True) -> Path:
    """The cached weight file of model `name`, downloaded (with checksum) when missing."""
    spec = model_spec(name)
    path = weights_file(name)
    if path.is_file():
        return path
    try:
        return download(spec.url, path, sha256=spec.sha256, progress=progress)
    except DownloadError as exc:
        raise DownloadError(
            f"the pretrained weights of {spec.name} are not in the cache ({path}) and could not be "
            f"downloaded. On a machine with a network run `make assets`, or download {spec.url} and save it "
            f"as {path}; or use the smoke profile (COURSE_PROFILE=smoke). Cause: {exc}") from exc


class Classifier(nn.Module):
    """An ImageNet classifier on images in [0, 1]: `forward(x)` normalizes `x` `(N, 3, H, W)` and returns
    logits `(N, num_classes)`. `net` is the wrapped network; `labels` its class names."""

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

    pretrained: None follows the profile (ImageNet weights in `full`, random weights in `smoke`).
    frozen: parameters do not require gradients (explanations need gradients for inputs or one layer
        only; set False to fine-tune).
    """
    spec = model_spec(name)
    if pretrained is None:
        pretrained = get_profile().full
    torch.manual_seed(0)  # random weights are the same on every run
    net = spec.build()
    if pretrained:
        state = torch.load(fetch_weights(spec.name), map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    model = Classifier(net, spec.name, spec.mean, spec.std, imagenet_labels(), spec.target_layer)
    model.eval().requires_grad_(not frozen)
    return model.to(device if device is not None else get_device())


def layer_names(model: nn.Module, types: tuple[type, ...] | None = None) -> list[str]:
    """Dotted names of the submodules of `model` (of `model.net` for a `Classifier`), optionally only
    those of the given types, e.g. `(nn.Conv2d,)`."""
    root = model.net if isinstance(model, Classifier) else model
    return [n for n, m in root.named_modules() if n and (types is None or isinstance(m, types))]


def get_layer(model: nn.Module, layer: str | nn.Module) -> nn.Module:
    """The submodule called `layer` (a dotted name inside `model.net`, e.g. `"layer4.1.conv2"`), or
    `layer` itself when it is already a module of the model. KeyError listing valid names otherwise."""
    root = model.net if isinstance(model, Classifier) else model
    if isinstance(layer, nn.Module):
        if any(layer is m for m in model.modules()):
            return layer
        raise KeyError(f"the module {type(layer).__name__} given as a layer is not part of this model.")
    name = layer[4:] if isinstance(model, Classifier) and layer.startswith("net.") else layer
    try:
        return root.get_submodule(name)
    except AttributeError:
        names = layer_names(model)
        top = [n for n in names if "." not in n]
        raise KeyError(
            f"no layer named {layer!r} in {getattr(model, 'name', type(root).__name__)}. Top-level blocks: "
            f"{', '.join(top)}. All {len(names)} names: helpers.layer_names(model); the default Grad-CAM layer "
            f"is {getattr(model, 'target_layer_name', '?')!r}.") from None


def default_target_layer(model: Classifier) -> nn.Module:
    """The model's default Grad-CAM layer (its last convolutional block's output)."""
    return get_layer(model, model.target_layer_name)


@torch.no_grad()
def top_k(model: Classifier, x: torch.Tensor, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k probabilities and class indices, each `(N, k)`, for images `x` `(N, 3, H, W)` in [0, 1]."""
    probs = model(x).softmax(dim=1)
    return probs.topk(k, dim=1)
