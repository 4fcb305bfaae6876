"""Neural style transfer (Gatys, Ecker and Bethge, CVPR 2016): feature extractors, the Gram matrix,
content / style / total-variation losses, and the optimization loop (L-BFGS or Adam). Notebook 05 writes
these out to teach them and checks them against this tested version, which the benchmark
`benchmarks/bench_style.py` times against the classic recipe.

Two extractors, one interface (`extractor(x)` -> {layer: features}, `.layers`, `.mean`):
- `VGGFeatures`, for VGG16/19 as in the paper: layers are named as in the VGG paper (`conv3_1` is the first
  convolution of block 3 and `relu3_1` its rectified output), and the feature stack is cut after the
  deepest wanted layer;
- `LayerFeatures`, for any other course model (EfficientNet-Lite0 in the `offline` and `smoke` profiles,
  ResNets): layers are dotted module names such as `blocks.2` (see `helpers.stage_names`), and the forward
  pass stops as soon as the deepest wanted layer has run.
`feature_extractor(model, layers)` picks the right one, and `default_layers(model)` gives a model's content
and style layers (the paper's for VGG; chosen by resolution from the model's stages otherwise).
Images are batches `(N, 3, H, W)` in [0, 1].

Loss conventions (each is a mean, per image `(N,)`):
- Gram matrix of features F `(C, H*W)`: G = F F^T / (C H W).
- content loss at layer l: ||F_l - P_l||^2 / ||P_l||^2 (P_l: the content photo's features);
- style loss: the mean over style layers of ||G_l - A_l||^2 / ||A_l||^2 (A_l: the style image's Gram).
Dividing each term by the size of its target makes every layer count on the same scale, whatever the
network's weights; it is Gatys's loss with per-layer weights 1 / ||A_l||^2.
- total variation: the mean squared difference between neighbouring pixels (down and right).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import checks
from .device import draw
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


def gram_matrix(f: torch.Tensor) -> torch.Tensor:
    """Gram matrices `(N, C, C)` of features `f` `(N, C, H, W)`: G = F F^T / (C H W), F = f as `(C, H*W)`."""
    if f.ndim != 4:
        raise ValueError(f"features must be (N, C, H, W); got {tuple(f.shape)}.")
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def relative_error(a: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||a - target||^2 / ||target||^2 per image `(N,)`; `target` may have batch size 1 (broadcast)."""
    diff = (a - target).flatten(1).square().sum(1)
    return diff / target.flatten(1).square().sum(1).clamp_min(1e-12)


def content_loss(feats: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean over the layers in `targets` of the relative squared error of the features; `(N,)`."""
    return torch.stack([relative_error(feats[k], t) for k, t in targets.items()]).mean(0)


def style_loss(feats: dict[str, torch.Tensor], grams: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean over the layers in `grams` of the relative squared error of the Gram matrices; `(N,)`."""
    return torch.stack([relative_error(gram_matrix(feats[k]), g) for k, g in grams.items()]).mean(0)


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Total variation per image `(N,)`: the mean of the squared differences between each pixel and its
    neighbour below plus the mean of those with its neighbour to the right."""
    dy = (x[:, :, 1:, :] - x[:, :, :-1, :]).square().flatten(1).mean(1)
    dx = (x[:, :, :, 1:] - x[:, :, :, :-1]).square().flatten(1).mean(1)
    return dy + dx


@dataclass
class StyleResult:
    """The output of `style_transfer`: the images `(N, 3, H, W)` in [0, 1] and the loss history (one
    entry per forward pass: total, content, style, tv, each averaged over the batch)."""

    image: torch.Tensor
    history: dict[str, list[float]] = field(default_factory=dict)


def style_transfer(content: torch.Tensor, style: torch.Tensor | None, steps: int,
                   extractor: VGGFeatures | LayerFeatures | None = None,
                   content_layers: Sequence[str] = CONTENT_LAYERS, style_layers: Sequence[str] = STYLE_LAYERS,
                   content_weight: float = 1.0, style_weight: float = 10.0, tv_weight: float = 1.0,
                   optimizer: str = "lbfgs", lr: float | None = None, init: str | torch.Tensor = "content",
                   callback: Callable[[int, float], None] | None = None,
                   generator: torch.Generator | None = None) -> StyleResult:
    """Gatys-style transfer: minimize content_weight * content + style_weight * style + tv_weight * tv.

    content: `(N, 3, H, W)` in [0, 1]; style: `(1 or N, 3, H', W')` in [0, 1] (any size), or None for
        feature inversion (then `style_weight` is ignored).
    steps: forward/backward passes (L-BFGS evaluations or Adam steps).
    extractor: a `VGGFeatures` or `LayerFeatures` covering the layers (default: a `VGGFeatures` of
        `load_model("vgg19")`); `content_layers` and `style_layers` are names it knows.
    optimizer: "lbfgs" (lr default 1) or "adam" (lr default 0.02). Pixels are clamped to [0, 1] before
        every evaluation.
    init: "content" (start from the photo), "noise" (uniform noise) or images.
    callback: called as `callback(evaluation, total_loss)`.
    generator: the `torch.Generator` that draws the "noise" start (any device: drawn on it, then moved);
        None uses torch's global generator.
    """
    if optimizer not in ("lbfgs", "adam"):
        raise ValueError(f"optimizer must be 'lbfgs' or 'adam'; got {optimizer!r}.")
    checks.images(content, "content")
    if style is not None:
        checks.images(style, "style")
        if style.shape[0] not in (1, content.shape[0]):
            raise ValueError(f"style must be images (1 or N, 3, H, W); got {tuple(style.shape)}: give one style "
                             "image for all, or one per content image.")
    if isinstance(init, torch.Tensor):
        checks.images(init, "init")
    style_layers = tuple(style_layers) if style is not None and style_weight else ()
    needed = tuple(dict.fromkeys(tuple(content_layers) + style_layers))
    if extractor is None:
        extractor = VGGFeatures(layers=needed)
    missing = [n for n in needed if n not in extractor.layers]
    if missing:
        raise ValueError(f"the extractor does not return {missing}; build it with them: "
                         "style.feature_extractor(model, layers=...).")
    device = extractor.mean.device
    content = content.detach().to(device)
    with torch.no_grad():
        feats = extractor(content)
        content_targets = {k: feats[k].detach() for k in content_layers}
        grams = {}
        if style_layers:
            sfeats = extractor(style.detach().to(device))
            grams = {k: gram_matrix(sfeats[k]).detach() for k in style_layers}
        del feats
    if isinstance(init, torch.Tensor):
        start = init.detach().to(device).float()
    elif init == "content":
        start = content
    elif init == "noise":
        start = draw("uniform", content.shape, generator, device)
    else:
        raise ValueError(f"init must be 'content', 'noise' or images; got {init!r}.")
    img = start.clone().requires_grad_(True)
    history: dict[str, list[float]] = {"total": [], "content": [], "style": [], "tv": []}

    @torch.enable_grad()  # works inside a caller's torch.no_grad() too
    def closure() -> torch.Tensor:
        with torch.no_grad():
            img.clamp_(0, 1)
        f = extractor(img)
        c = content_loss(f, content_targets) if content_targets else img.new_zeros(img.shape[0])
        s = style_loss(f, grams) if grams else img.new_zeros(img.shape[0])
        t = tv_loss(img) if tv_weight else img.new_zeros(img.shape[0])
        total = (content_weight * c + style_weight * s + tv_weight * t).sum()
        (grad,) = torch.autograd.grad(total, img)
        img.grad = grad
        n = img.shape[0]
        for key, v in (("total", total / n), ("content", c.mean()), ("style", s.mean()), ("tv", t.mean())):
            history[key].append(float(v.detach()))
        if callback is not None:
            callback(len(history["total"]) - 1, history["total"][-1])
        return total.detach()

    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS([img], lr=1.0 if lr is None else lr, max_iter=steps, max_eval=steps,
                                history_size=50, tolerance_grad=0.0, tolerance_change=0.0)
        opt.step(closure)
    else:
        opt = torch.optim.Adam([img], lr=0.02 if lr is None else lr)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            closure()
            opt.step()
    with torch.no_grad():
        return StyleResult(img.detach().clamp(0, 1), history)
