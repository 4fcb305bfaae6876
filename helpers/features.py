"""Features at named layers, for style transfer (notebook 05): two extractors with one interface
(`extractor(x)` -> {layer: features `(N, C, h, w)`}, `.layers`, `.mean`), and each model's content and style
layers.

- `VGGFeatures`, for VGG16/19 as in Gatys et al. (2016): layers are named as in the VGG paper (`conv3_1` is
  the first convolution of block 3 and `relu3_1` its rectified output), and the feature stack is cut after
  the deepest wanted layer;
- `LayerFeatures`, for any other course model (EfficientNet-Lite0, ResNets): layers are dotted module names
  such as `blocks.2` (see `helpers.stage_names`), captured with `helpers.layers.capture`, and the forward
  pass stops as soon as the deepest wanted layer has run.
`feature_extractor(model, layers)` picks the right one, and `default_layers(model)` gives a model's content
and style layers (the paper's for VGG; chosen by resolution from the model's stages otherwise). Images are
batches `(N, 3, H, W)` in [0, 1].
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from .contract import is_course_model, network
from .layers import capture, stage_names
from .models import Classifier, load_model
from .registry import IMAGENET_MEAN, IMAGENET_STD

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")  # Gatys et al. 2016
CONTENT_LAYERS = ("relu4_2",)
# The layers of the notebook's VGG grids: candidate content layers and layers to invert, shallow to deep.
VGG_CONTENT_CHOICES = ("relu2_2", "relu3_2", "relu4_2", "relu5_2")
VGG_INVERSION_LAYERS = ("relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2")


def vgg_layer_names(features: nn.Sequential) -> list[str]:
    """Paper names (`conv1_1`, `relu1_1`, ..., `pool1`, ...) of the modules of a VGG `features` stack, in
    order."""
    names, block, conv = [], 1, 0
    for m in features:
        if isinstance(m, nn.Conv2d):
            conv += 1
            names.append(f"conv{block}_{conv}")
        elif isinstance(m, nn.ReLU):
            names.append(f"relu{block}_{conv}")
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            names.append(f"{type(m).__name__.lower()}{block}_{conv}")
    return names


class VGGFeatures(nn.Module):
    """The features of a VGG network at named layers, in one forward pass.

    model: a `Classifier` wrapping a VGG (default: `load_model("vgg19")`, pretrained as the profile says).
    layers: paper names of the layers to return (see `vgg_layer_names`).
    pool: "max" keeps VGG's max-pooling; "avg" swaps in average pooling (Gatys et al. found the images
        slightly smoother).
    channels_last: run the convolutions in channels-last memory layout (faster on CPUs with oneDNN for
        large images; None: on for CPU when the image side is at least 192 pixels).

    The stack is a copy of `features` cut after the deepest wanted layer (`last`), with frozen weights; the
    in-place ReLUs are kept except right after a wanted convolution (whose output they would overwrite).
    `forward(x)` takes `(N, 3, H, W)` in [0, 1] and returns {layer name: `(N, C, h, w)`}.
    """

    def __init__(self, model: Classifier | None = None, layers: Sequence[str] = STYLE_LAYERS + CONTENT_LAYERS,
                 pool: str = "max", channels_last: bool | None = None):
        super().__init__()
        model = load_model("vgg19") if model is None else model
        net = network(model)
        features = getattr(net, "features", None)
        if not isinstance(features, nn.Sequential):
            raise ValueError(f"{getattr(model, 'name', type(net).__name__)} has no VGG `features` stack; "
                             "use helpers.load_model('vgg19') (or vgg16).")
        names = vgg_layer_names(features)
        layers = list(dict.fromkeys(layers))
        unknown = [n for n in layers if n not in names]
        if not layers or unknown:
            raise ValueError(f"unknown layer(s) {unknown}; this network has: {', '.join(names)}.")
        if pool not in ("max", "avg"):
            raise ValueError(f"pool must be 'max' or 'avg'; got {pool!r}.")
        last = max(names.index(n) for n in layers)
        stack = copy.deepcopy(features[: last + 1]).requires_grad_(False).eval()
        for i, m in enumerate(stack):
            if isinstance(m, nn.ReLU):
                stack[i] = nn.ReLU(inplace=names[i - 1] not in layers)
            elif isinstance(m, nn.MaxPool2d) and pool == "avg":
                stack[i] = nn.AvgPool2d(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode)
        self.stack = stack
        self.names = names[: last + 1]
        self.layers = layers
        self.last = self.names[-1]  # the deepest layer computed
        self.channels_last = channels_last
        course = is_course_model(model)  # else a bare VGG that expects ImageNet-normalized input
        mean = model.mean if course else torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = model.std if course else torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.register_buffer("mean", mean.detach().clone())
        self.register_buffer("std", std.detach().clone())
        self.to(mean.device)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images (N, 3, H, W); got {tuple(x.shape)}.")
        h = (x - self.mean) / self.std
        cl = self.channels_last
        if cl is None:
            cl = x.device.type == "cpu" and min(x.shape[-2:]) >= 192
        if cl:
            h = h.contiguous(memory_format=torch.channels_last)
        out: dict[str, torch.Tensor] = {}
        for name, module in zip(self.names, self.stack):
            h = module(h)
            if name in self.layers:
                out[name] = h
        return out


class LayerFeatures(nn.Module):
    """The features of any course model at dotted layer names (e.g. `helpers.stage_names(model)`), in one
    forward pass that stops right after the deepest wanted layer.

    model: a `Classifier` (EfficientNet-Lite0, a ResNet, ...); it is copied, so hooks and frozen weights
        never touch it.
    layers: dotted module names inside `model.net`, e.g. `("bn1", "blocks.2")`.

    Each wanted module's output is cloned as it is produced, so a following in-place operation (ResNet's
    `relu` after `bn1`, say) cannot overwrite it. A module that runs several times in one pass gives its
    first output. `order` lists the layers in the order the network computes them; `last` is the deepest.
    `forward(x)` takes `(N, 3, H, W)` in [0, 1] and returns {layer name: `(N, C, h, w)`}.
    Raises ValueError for an unknown layer name, a layer that never runs, or a layer whose output is not
    a feature map `(N, C, h, w)`.
    """

    def __init__(self, model: Classifier, layers: Sequence[str]):
        super().__init__()
        if not isinstance(model, Classifier):
            raise ValueError(f"expected a helpers.Classifier (helpers.load_model(...)); got {type(model).__name__}.")
        layers = list(dict.fromkeys(layers))
        if not layers:
            raise ValueError("no layers asked for; e.g. helpers.stage_names(model) lists the stage outputs.")
        names = {n for n, _ in model.net.named_modules() if n}
        unknown = [n for n in layers if n not in names]
        if unknown:
            raise ValueError(f"unknown layer(s) {unknown} in {model.name}; its stage outputs are "
                             f"{', '.join(stage_names(model))} (all names: helpers.layer_names(model)).")
        self.net = copy.deepcopy(model.net).requires_grad_(False).eval()
        self.layers = layers
        self.register_buffer("mean", model.mean.detach().clone())
        self.register_buffer("std", model.std.detach().clone())
        self.order: list[str] = []
        self.last: str | None = None
        with torch.no_grad():  # a dry run: checks every layer runs and gives a feature map, learns the order
            probe = self(torch.full((1, 3, 64, 64), 0.5, device=self.mean.device))
        self.order = list(probe)
        self.last = self.order[-1]
        self.to(self.mean.device)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images (N, 3, H, W); got {tuple(x.shape)}.")
        with capture(self.net, self.layers, stop=True) as cap:
            self.net((x - self.mean) / self.std)
        missing = [n for n in self.layers if not cap.outputs[n]]
        if missing:
            raise ValueError(f"layer(s) {missing} never ran in the forward pass (not part of the computation).")
        out = {n: cap.outputs[n][0] for n in self.layers}  # a layer that runs several times: its first output
        bad = [n for n, v in out.items() if not (isinstance(v, torch.Tensor) and v.ndim == 4)]
        if bad:
            raise ValueError(f"layer {bad[0]!r} gives {type(out[bad[0]]).__name__} "
                             f"{tuple(getattr(out[bad[0]], 'shape', ()))}, not a feature map (N, C, h, w).")
        return {n: out[n] for n in (self.order or cap.order)}


def feature_extractor(model: Classifier, layers: Sequence[str]) -> VGGFeatures | LayerFeatures:
    """The extractor that fits `model`: `VGGFeatures` (paper names such as `relu4_2`) for a VGG, else
    `LayerFeatures` (dotted names such as `blocks.2`)."""
    if isinstance(getattr(network(model), "features", None), nn.Sequential):
        return VGGFeatures(model, layers=layers)
    return LayerFeatures(model, layers)


@dataclass(frozen=True)
class StyleLayers:
    """A model's layers for style transfer, each tuple from shallow to deep: `content` and `style` (the
    defaults), `content_choices` (candidate content layers) and `inversion` (layers to invert)."""

    content: tuple[str, ...]
    style: tuple[str, ...]
    content_choices: tuple[str, ...]
    inversion: tuple[str, ...]


def stage_strides(model: Classifier, size: int = 128) -> dict[str, int]:
    """How much each stage of `model` (see `helpers.stage_names`) downsamples: {stage: input side / its
    side}, measured with one forward pass of a `size`-pixel image."""
    ext = LayerFeatures(model, stage_names(model))
    with torch.no_grad():
        feats = ext(torch.full((1, 3, size, size), 0.5, device=ext.mean.device))
    return {n: round(size / f.shape[-1]) for n, f in feats.items()}


def default_layers(model: Classifier) -> StyleLayers:
    """The content and style layers for `model`.

    VGG: the paper's (content `relu4_2`; style `relu1_1` ... `relu5_1`, the first of each block). Any other
    model, by analogy from its stages' resolutions (`stage_strides`): style = every stage up to the first at
    1/16 of the input side (VGG's `relu5_1` is there); content = the last stage at 1/8 (where `relu4_2` is);
    inversion = the last stage at each resolution; content choices = those, but the coarsest.
    """
    if isinstance(getattr(network(model), "features", None), nn.Sequential):
        return StyleLayers(CONTENT_LAYERS, STYLE_LAYERS, VGG_CONTENT_CHOICES, VGG_INVERSION_LAYERS)
    strides = stage_strides(model)
    names = list(strides)
    deep = [n for n in names if strides[n] >= 16]
    style_layers = names[: names.index(deep[0]) + 1] if deep else names
    at8 = [n for n in names if strides[n] <= 8]
    content = (at8[-1] if at8 else names[0],)
    last_per_stride = {}
    for n in names:
        last_per_stride[strides[n]] = n
    inversion = tuple(sorted(last_per_stride.values(), key=names.index))
    choices = inversion[:-1] if len(inversion) > 1 else inversion
    return StyleLayers(content, tuple(style_layers), choices, inversion)
