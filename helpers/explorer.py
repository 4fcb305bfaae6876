"""An interactive explorer of explanations (notebook 08): pick a photo, a model, a target layer, a method,
a class among the top-k predictions and the overlay's opacity, and see the map over the photo.

Two layers, so that the logic is testable without a browser:
- `Explorer` holds the state and does the work: `set_photo`, `add_photo` (an upload), `set_model`,
  `set_layer`, `set_method`, `select_class`, `set_opacity`; `current_map()` `(H, W)`, `figure_data()`
  (the overlay `(H, W, 3)` in [0, 1]) and `png()`. Predictions are cached per (photo, model) and maps per
  (photo, model, layer, method, class), so changing only the opacity, or going back to a class already
  seen, calls no model. `model_calls` counts every forward pass of every model it loaded.
- `ExplorerUI` (ipywidgets) shows the controls and an `Image` widget that is redrawn in place; slow
  methods (SmoothGrad, Integrated Gradients, LIME, SHAP) report progress. `explore()` builds both and
  displays them. Run headless (nbval, nbconvert), it computes and renders the initial state at once and
  waits for nothing.

Methods come from `helpers.saliency`, `helpers.cam` and `helpers.blackbox` (LIME, SHAP); the numbers of samples and
steps from the profile (`cfg.smoothgrad_samples`, `cfg.ig_steps`, `cfg.lime_samples`, `cfg.shap_evals`).
"""
from __future__ import annotations

import hashlib
import html
import io
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image
from torch import nn

from .config import get_profile
from .device import get_device
from .images import SAMPLES, ImageLike, load_image, preprocess
from .models import MODELS, Classifier, get_layer, has_pretrained_weights, layer_names, load_model
from .viz import MAP_CMAP, SIGNED_CMAP, as_image, normalize_map

PANEL, GAP = 320, 8  # the displayed picture: two panels of PANEL pixels, GAP pixels apart

# A map function takes (model, x (1, 3, H, W), target class, layer name, progress) and returns (1, H, W).
MapFn = Callable[[Classifier, torch.Tensor, int, str, Callable[[int, int], None]], torch.Tensor]


@dataclass(frozen=True)
class Method:
    """One explanation method as the explorer uses it."""

    name: str
    fn: MapFn
    uses_layer: bool = False  # the map depends on the target layer (CAM methods)
    signed: bool = False  # show with SIGNED_CMAP, symmetric around 0
    slow: bool = False  # many model calls: show a progress bar


def _saliency(model, x, target, layer, progress):
    from .saliency import vanilla_saliency

    return vanilla_saliency(model, x, target)


def _smoothgrad(model, x, target, layer, progress):
    from .saliency import smoothgrad

    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        torch.manual_seed(0)  # the same noise every time: the map is reproducible and cacheable
        return smoothgrad(model, x, target, samples=get_profile().settings.smoothgrad_samples)


def _integrated_gradients(model, x, target, layer, progress):
    from .saliency import integrated_gradients

    return integrated_gradients(model, x, target, steps=get_profile().settings.ig_steps).sum(dim=1)


def _grad_cam(model, x, target, layer, progress):
    from .cam import grad_cam

    return grad_cam(model, x, target, layer=layer)


def _grad_cam_pp(model, x, target, layer, progress):
    from .cam import grad_cam_pp

    return grad_cam_pp(model, x, target, layer=layer)


def _guided_grad_cam(model, x, target, layer, progress):
    from .cam import grad_cam
    from .saliency import guided_backprop

    guided = guided_backprop(model, x, target)  # (1, 3, H, W)
    return (guided * grad_cam(model, x, target, layer=layer).unsqueeze(1)).abs().amax(dim=1)


class _Reporting(nn.Module):
    """A model that reports how many images it has seen out of `total` after every call (for the
    progress bar of LIME and SHAP, which call the model on many batches of perturbed images)."""

    def __init__(self, model: nn.Module, total: int, report: Callable[[int, int], None]):
        super().__init__()
        self.model, self.total, self.report, self.done = model, total, report, 0
        self.num_classes = getattr(model, "num_classes", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        self.done += x.shape[0]
        self.report(min(self.done, self.total), self.total)
        return out


def _lime(model, x, target, layer, progress):
    from .blackbox import lime_maps

    n = get_profile().settings.lime_samples
    return lime_maps(_Reporting(model, n, progress), x, target, num_samples=n)


def _shap(model, x, target, layer, progress):
    from .blackbox import shap_maps

    n = get_profile().settings.shap_evals
    return shap_maps(_Reporting(model, n, progress), x, target, max_evals=n)


METHODS: dict[str, Method] = {m.name: m for m in [
    Method("saliency", _saliency),
    Method("SmoothGrad", _smoothgrad, slow=True),
    Method("Integrated Gradients", _integrated_gradients, signed=True, slow=True),
    Method("Grad-CAM", _grad_cam, uses_layer=True),
    Method("Grad-CAM++", _grad_cam_pp, uses_layer=True),
    Method("Guided Grad-CAM", _guided_grad_cam, uses_layer=True),
    Method("LIME", _lime, signed=True, slow=True),
    Method("SHAP", _shap, signed=True, slow=True),
]}

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


def _checked_layers(model: Classifier, names: list[str], size: int) -> list[str]:
    """Keep the layers that run once per forward pass and give a feature map (N, C, h, w)."""
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


def blend(image: np.ndarray, heat: np.ndarray, alpha: float, signed: bool = False) -> np.ndarray:
    """The photo `(H, W, 3)` in [0, 1] with a map `(H, W)` laid over it at opacity `alpha`: `(H, W, 3)`.

    A non-negative map is scaled to [0, 1] by its min and max and coloured with `MAP_CMAP`; a signed one
    is divided by its largest magnitude (0 stays in the middle) and coloured with `SIGNED_CMAP`.
    """
    if signed:
        lim = float(np.abs(heat).max()) or 1.0
        colored = colormaps[SIGNED_CMAP](0.5 + 0.5 * np.asarray(heat, dtype=np.float64) / lim)[..., :3]
    else:
        colored = colormaps[MAP_CMAP](normalize_map(heat))[..., :3]
    return (1.0 - alpha) * image + alpha * colored


class Explorer:
    """The explorer's state and computations (no widgets; see `ExplorerUI`).

    photo: a sample name (`helpers.SAMPLES`); model: a name in `helpers.MODELS` (default: the profile's
    course model, `cfg.model`); method: a name in `METHODS`; layer: a dotted name among `layers()`
    (default: the model's default target layer); top: how many predictions to offer as classes; opacity:
    the map's opacity in [0, 1]; size: the model input's side in pixels (default `cfg.image_size`);
    models / photos: restrict the choices (the model menu marks those without ImageNet weights in this
    profile, see `has_imagenet_weights`).
    """

    def __init__(self, photo: str = "cat", model: str | None = None, method: str = "Grad-CAM",
                 layer: str | None = None, top: int = 5, opacity: float = 0.5, size: int | None = None,
                 models: list[str] | None = None, photos: list[str] | None = None,
                 device: torch.device | str | None = None, max_models: int = 2):
        self.size = size or get_profile().settings.image_size
        self.device = torch.device(device) if device is not None else get_device()
        self.model_names = list(models or MODELS)
        self.photos: dict[str, ImageLike] = {p: p for p in (photos or SAMPLES)}
        self.methods: dict[str, Method] = dict(METHODS)
        self.top = top
        self.max_models = max_models
        self.model_calls = 0  # forward passes of any loaded model
        self.maps_computed = 0  # cache misses of current_map()
        self.progress: Callable[[str, float | None], None] | None = None  # set by the UI
        self.ui: ExplorerUI | None = None  # set by explore()
        self._listeners: list[Callable[[], None]] = []
        self._models: dict[str, Classifier] = {}
        self._layers: dict[str, list[str]] = {}
        self._images: dict[str, torch.Tensor] = {}
        self._preds: dict[tuple[str, str], tuple[list[float], list[int], torch.Tensor]] = {}
        self._maps: dict[tuple, np.ndarray] = {}
        self.model_name, self.layer, self.method, self.target, self.opacity = "", "", "", -1, 0.5
        self.set_opacity(opacity)
        self.set_method(method)
        self.photo = self._check_photo(photo)
        self.set_model(model or get_profile().settings.model, layer=layer)

    # ------------------------------------------------------------------ loading and predictions
    def _check_photo(self, photo: str) -> str:
        if photo not in self.photos:
            raise ValueError(f"unknown photo {photo!r}; choose one of {', '.join(self.photos)} or add one "
                             "with add_photo(name, image).")
        return photo

    def model(self, name: str | None = None) -> Classifier:
        """The loaded model `name` (default: the current one), loaded on first use. At most `max_models`
        stay in memory; each counts its forward passes into `model_calls`."""
        name = name or self.model_name
        if name not in self.model_names:
            raise ValueError(f"unknown model {name!r}; choose one of {', '.join(self.model_names)}.")
        if name not in self._models:
            while len(self._models) >= self.max_models:
                self._models.pop(next(iter(self._models)))
            m = load_model(name, device=self.device)
            if name not in self._layers:
                self._layers[name] = _checked_layers(m, block_layers(m), self.size)
            m.register_forward_pre_hook(self._count_call)
            self._models[name] = m
        return self._models[name]

    def has_imagenet_weights(self, name: str | None = None) -> bool:
        """True when model `name` (default: the current one) gets its ImageNet weights in this profile (see
        `helpers.load_model`): in `full` every model, in `offline` and `smoke` EfficientNet-Lite0 and any model
        whose weights are already cached; never with `COURSE_WEIGHTS=random`."""
        name = name or self.model_name
        if name not in self.model_names:
            raise ValueError(f"unknown model {name!r}; choose one of {', '.join(self.model_names)}.")
        return has_pretrained_weights(name)

    def _count_call(self, module: nn.Module, inputs: tuple) -> None:
        self.model_calls += 1

    def layers(self, model: str | None = None) -> list[str]:
        """Target layers offered for `model` (default: the current one): see `block_layers`."""
        name = model or self.model_name
        if name not in self._layers:
            self.model(name)
        return self._layers[name]

    def image(self, photo: str | None = None) -> torch.Tensor:
        """The photo as a model input `(1, 3, size, size)` in [0, 1] on the explorer's device."""
        photo = photo or self.photo
        if photo not in self._images:
            self._images[photo] = preprocess(load_image(self.photos[photo]), self.size).to(self.device)
        return self._images[photo]

    def predictions(self) -> list[tuple[int, str, float]]:
        """The top-k of the current photo and model as (class index, label, probability), cached."""
        key = (self.photo, self.model_name)
        if key not in self._preds:
            model = self.model()
            with torch.no_grad():
                probs = model(self.image()).softmax(dim=1)[0]
            p, c = probs.topk(self.top)
            self._preds[key] = (p.tolist(), c.tolist(), probs.cpu())
        p, c, _ = self._preds[key]
        labels = self.model().labels
        return [(ci, labels[ci], pi) for pi, ci in zip(p, c)]

    def probability(self, cls: int) -> float:
        """The current model's probability of class `cls` for the current photo."""
        self.predictions()
        return float(self._preds[(self.photo, self.model_name)][2][cls])

    # ------------------------------------------------------------------ state changes
    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback()` after every state change (the UI redraws itself this way)."""
        self._listeners.append(callback)

    def _changed(self) -> None:
        for cb in list(self._listeners):
            cb()

    def _keep_or_top1(self) -> None:
        classes = [c for c, _, _ in self.predictions()]
        if self.target not in classes:
            self.target = classes[0]

    def set_photo(self, photo: str) -> None:
        """Explain another photo (a sample name or a name given to `add_photo`). The class stays when it
        is among the new top-k, else the top-1 class is selected."""
        self.photo = self._check_photo(photo)
        self._keep_or_top1()
        self._changed()

    def add_photo(self, name: str, image: ImageLike | bytes) -> str:
        """Add a photo (file bytes as uploaded, a path, a PIL image or an array) and select it. Returns its
        key: `name` plus a short hash of the content, so that two uploads with one name stay apart."""
        if isinstance(image, (bytes, bytearray, memoryview)):
            data = bytes(image)
            try:
                img = load_image(Image.open(io.BytesIO(data)))
            except Exception as exc:
                raise ValueError(f"{name!r} is not a readable image ({exc}); upload a PNG or JPEG file.") from exc
        else:
            img = load_image(image)
            data = np.asarray(img).tobytes()
        key = f"{name} ({hashlib.sha256(data).hexdigest()[:6]})"
        self.photos[key] = img
        self.set_photo(key)
        return key

    def set_model(self, name: str, layer: str | None = None) -> None:
        """Explain with another model; the layer becomes `layer` or the model's default target layer."""
        layer = layer or self.model(name).target_layer_name
        if layer not in self.layers(name):
            raise ValueError(f"{layer!r} is not a block of {name}; choose one of {', '.join(self.layers(name))}.")
        self.model_name, self.layer = name, layer
        self._keep_or_top1()
        self._changed()

    def set_layer(self, layer: str) -> None:
        """The target layer of the CAM methods, one of `layers()`."""
        if layer not in self.layers():
            raise ValueError(f"{layer!r} is not a block of {self.model_name}; choose one of "
                             f"{', '.join(self.layers())}.")
        self.layer = layer
        self._changed()

    def set_method(self, method: str) -> None:
        """The explanation method, one of `methods` (see `METHODS`)."""
        if method not in self.methods:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(self.methods)}.")
        self.method = method
        if self.model_name:
            self._changed()

    def add_method(self, name: str, fn: MapFn, uses_layer: bool = False, signed: bool = False,
                   slow: bool = False) -> None:
        """Offer another method: `fn(model, x (1, 3, H, W), target, layer, progress)` returns a map
        `(1, H, W)` (a tensor or an array)."""
        self.methods[name] = Method(name, fn, uses_layer, signed, slow)
        self._maps = {k: v for k, v in self._maps.items() if k[3] != name}

    def select_class(self, cls: int) -> None:
        """Explain class index `cls` (any ImageNet class; the UI offers the top-k)."""
        n = self.model().num_classes
        if isinstance(cls, bool) or not isinstance(cls, (int, np.integer)) or not 0 <= cls < n:
            raise ValueError(f"a class is an index from 0 to {n - 1}; got {cls!r}.")
        self.target = int(cls)
        self._changed()

    def set_opacity(self, alpha: float) -> None:
        """The map's opacity over the photo, from 0 (photo only) to 1 (map only). Recomputes nothing."""
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"opacity must lie in [0, 1]; got {alpha}.")
        self.opacity = float(alpha)
        if self.model_name:
            self._changed()

    # ------------------------------------------------------------------ maps and figures
    def key(self) -> tuple[str, str, str | None, str, int]:
        """The cache key of the current map: (photo, model, layer or None, method, class)."""
        layer = self.layer if self.methods[self.method].uses_layer else None
        return (self.photo, self.model_name, layer, self.method, self.target)

    def is_cached(self) -> bool:
        """True when the current map is already computed (showing it calls no model)."""
        return self.key() in self._maps

    def current_map(self) -> np.ndarray:
        """The current method's map `(H, W)` (float, in the method's units) for the current photo,
        model, layer and class; computed once, then taken from the cache."""
        key = self.key()
        if key not in self._maps:
            method = self.methods[self.method]
            label = self.model().labels[self.target]
            report = self.progress or (lambda msg, frac: None)
            report(f"computing {method.name} for '{label}' ...", 0.0)
            m = method.fn(self.model(), self.image(), self.target, self.layer,
                          lambda done, total: report(f"computing {method.name}: {done}/{total} images",
                                                     done / max(total, 1)))
            m = m.detach().float().cpu().numpy() if isinstance(m, torch.Tensor) else np.asarray(m, dtype=np.float64)
            if m.shape != (1, self.size, self.size):
                raise ValueError(f"method {method.name!r} returned a map of shape {m.shape}; expected "
                                 f"(1, {self.size}, {self.size}).")
            self._maps[key] = m[0]
            self.maps_computed += 1
            report(f"{method.name}: done", 1.0)
        return self._maps[key]

    def photo_array(self) -> np.ndarray:
        """The model's view of the photo, `(H, W, 3)` in [0, 1]."""
        return as_image(self.image()[0])

    def figure_data(self) -> np.ndarray:
        """What the explorer shows: the current map over the photo at the current opacity,
        `(H, W, 3)` floats in [0, 1]."""
        return blend(self.photo_array(), self.current_map(), self.opacity, self.methods[self.method].signed)

    def title(self) -> str:
        """One line saying what is shown."""
        label = self.model().labels[self.target]
        layer = f", layer {self.layer}" if self.methods[self.method].uses_layer else ""
        weights = "" if self.has_imagenet_weights() else " (random weights)"
        return (f"{self.method} of '{label}' ({self.probability(self.target):.1%}) | {self.model_name}{weights}{layer}"
                f" | {self.photo} | profile {get_profile().name}")

    def png(self, panel: int = PANEL) -> bytes:
        """The photo and the overlay side by side as PNG bytes, each panel `panel` pixels wide."""
        panels = [self.photo_array(), self.figure_data()]
        tiles = [Image.fromarray((np.clip(p, 0, 1) * 255 + 0.5).astype(np.uint8)).resize(
            (panel, panel), Image.BILINEAR) for p in panels]
        gap = GAP
        canvas = Image.new("RGB", (2 * panel + gap, panel), (255, 255, 255))
        canvas.paste(tiles[0], (0, 0))
        canvas.paste(tiles[1], (panel + gap, 0))
        buf = io.BytesIO()
        canvas.save(buf, format="PNG")
        return buf.getvalue()

    def show(self, size: float = 3.2):
        """A matplotlib figure of the current state: the photo, the map alone and the overlay."""
        from .viz import show_grid

        signed = self.methods[self.method].signed
        m = self.current_map()
        fig = show_grid([self.photo_array(), m, self.figure_data()],
                        ["photo", f"{self.method} map", f"overlay (opacity {self.opacity:.2f})"],
                        signed=signed, size=size)
        fig.suptitle(self.title(), fontsize=9)
        fig.tight_layout()  # again, so that the panels' titles make room for the figure's
        return fig


def _colorbar_html(signed: bool) -> str:
    cmap = colormaps[SIGNED_CMAP if signed else MAP_CMAP]
    stops = ", ".join(f"rgb({r * 255:.0f},{g * 255:.0f},{b * 255:.0f})"
                      for r, g, b, _ in cmap(np.linspace(0, 1, 9)))
    ends = ("negative", "0", "positive") if signed else ("low", "", "high")
    return (f"<div style='display:flex;gap:6px;align-items:center;font-size:12px'>{ends[0]}"
            f"<div style='width:180px;height:10px;background:linear-gradient(to right, {stops})'></div>"
            f"{ends[2]}</div>")


class ExplorerUI:
    """ipywidgets controls bound to an `Explorer`; `widget` is the box to display. Every control calls
    the explorer's setter, and every state change (also from code) redraws the `Image` in place."""

    def __init__(self, explorer: Explorer):
        import ipywidgets as w

        self.ex = explorer
        self._syncing = False
        style = {"description_width": "60px"}
        wide = w.Layout(width="300px")
        self.photo = w.Dropdown(description="photo", options=list(explorer.photos), style=style, layout=wide)
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="upload a photo",
                                   layout=w.Layout(width="200px"))
        self.model = w.Dropdown(description="model", style=style, layout=wide, options=[
            (n if explorer.has_imagenet_weights(n) else f"{n} (random weights)", n) for n in explorer.model_names])
        self.layer = w.Dropdown(description="layer", options=[], style=style, layout=wide)
        self.method = w.Dropdown(description="method", options=list(explorer.methods), style=style, layout=wide)
        self.cls = w.Dropdown(description="class", options=[], style=style, layout=w.Layout(width="420px"))
        self.opacity = w.FloatSlider(description="opacity", min=0.0, max=1.0, step=0.05, value=explorer.opacity,
                                     continuous_update=True, style=style, layout=wide, readout_format=".2f")
        self.progress = w.FloatProgress(min=0.0, max=1.0, value=1.0, layout=w.Layout(width="300px"))
        self.status = w.HTML()
        self.caption = w.HTML()
        self.image = w.Image(format="png", layout=w.Layout(width=f"{2 * PANEL + GAP}px", max_width="100%"))
        self.image.add_class("course-explorer-image")
        self.widget = w.VBox([
            w.HBox([self.photo, self.upload]),
            w.HBox([self.model, self.layer]),
            w.HBox([self.method, self.cls]),
            w.HBox([self.opacity, self.progress]),
            self.status, self.caption, self.image,
        ])
        self.widget.add_class("course-explorer")
        explorer.progress = self._report
        explorer.on_change(self.refresh)
        self.photo.observe(lambda ch: self._act(self.ex.set_photo, ch["new"]), names="value")
        self.model.observe(lambda ch: self._act(self.ex.set_model, ch["new"]), names="value")
        self.layer.observe(lambda ch: self._act(self.ex.set_layer, ch["new"]), names="value")
        self.method.observe(lambda ch: self._act(self.ex.set_method, ch["new"]), names="value")
        self.cls.observe(lambda ch: self._act(self.ex.select_class, ch["new"]), names="value")
        self.opacity.observe(lambda ch: self._act(self.ex.set_opacity, ch["new"]), names="value")
        self.upload.observe(self._uploaded, names="value")
        self.refresh()

    def _act(self, setter: Callable[[Any], None], value: Any) -> None:
        if self._syncing or value is None:
            return
        try:
            setter(value)
        except Exception as exc:  # show the problem next to the controls instead of in a hidden log
            self._error(exc)

    def _error(self, exc: Exception) -> None:
        self.progress.bar_style = "danger"
        self.status.value = f"<span style='color:#b00'>{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</span>"

    def _uploaded(self, change: dict) -> None:
        files = change["new"]
        if not files:
            return
        f = files[0] if isinstance(files, (list, tuple)) else next(iter(files.values()))  # ipywidgets 8 / 7
        try:
            self.ex.add_photo(f["name"] if "name" in f else f["metadata"]["name"], f["content"])
        except Exception as exc:
            self._error(exc)

    def _report(self, message: str, fraction: float | None) -> None:
        self.status.value = html.escape(message)
        self.progress.bar_style = "info" if (fraction or 0) < 1 else "success"
        self.progress.value = fraction if fraction is not None else 0.0

    def _sync_controls(self) -> None:
        ex = self.ex
        self._syncing = True
        try:
            if list(self.photo.options) != list(ex.photos):
                self.photo.options = list(ex.photos)
            self.photo.value = ex.photo
            self.model.value = ex.model_name
            if list(self.layer.options) != ex.layers():
                self.layer.options = ex.layers()
            self.layer.value = ex.layer
            self.layer.disabled = not ex.methods[ex.method].uses_layer
            if list(self.method.options) != list(ex.methods):
                self.method.options = list(ex.methods)
            self.method.value = ex.method
            options = [(f"{label} ({p:.1%})", c) for c, label, p in ex.predictions()]
            if ex.target not in [c for _, c in options]:
                options.append((f"{ex.model().labels[ex.target]} ({ex.probability(ex.target):.1%})", ex.target))
            if list(self.cls.options) != options:
                self.cls.options = options
            self.cls.value = ex.target
            self.opacity.value = ex.opacity
        finally:
            self._syncing = False

    def refresh(self) -> None:
        """Bring the controls in line with the explorer and redraw the figure (computing the map if it is
        not cached)."""
        try:
            self._sync_controls()
            if not self.ex.is_cached():
                self.progress.bar_style = "info"
                self.progress.value = 0.0
            self.image.value = self.ex.png()
            self.caption.value = (f"<b>{html.escape(self.ex.title())}</b>"
                                  f"{_colorbar_html(self.ex.methods[self.ex.method].signed)}")
            self.status.value = f"model calls so far: {self.ex.model_calls}"
            self.progress.bar_style = "success"
            self.progress.value = 1.0
        except Exception as exc:
            self._error(exc)


def _enable_colab_widgets() -> None:
    import sys

    if "google.colab" in sys.modules:
        try:
            from google.colab import output  # type: ignore[import-not-found]

            output.enable_custom_widget_manager()
        except Exception:  # older Colab: its built-in manager shows core ipywidgets
            pass


def explore(**kwargs: Any) -> Explorer:
    """Build an `Explorer` (arguments as for `Explorer`), display its controls and return it. The first
    state is computed and drawn at once; the controls then update it in place."""
    from IPython.display import display

    _enable_colab_widgets()
    ex = Explorer(**kwargs)
    ex.ui = ExplorerUI(ex)
    display(ex.ui.widget)
    return ex
