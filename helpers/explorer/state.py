"""An interactive explorer of explanations (notebook 08): the state and the work, without widgets.

`Explorer` holds the choices (photo, model, target layer, method, class among the top-k predictions, the
overlay's opacity) and does the work: `set_photo`, `add_photo` (an upload), `set_model`, `set_layer`,
`set_method`, `add_method`, `select_class`, `set_opacity`; `current_map()` `(H, W)`, `figure_data()` (the
overlay `(H, W, 3)` in [0, 1]), `png()` and `show()`. Predictions are cached per (photo, model) and maps per
(photo, model, layer, method, class), so changing only the opacity, or going back to a class already seen,
calls no model. `model_calls` counts every forward pass of every model it loaded. The widgets that drive it
are in `helpers.explorer.ui` (`explore()`), the methods in `helpers.explorer.methods`, the drawing in
`helpers.explorer.view`, the choice of layers in `helpers.layers.block_layers`.
"""
from __future__ import annotations

import hashlib
import io
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..config import get_profile
from ..device import get_device
from .methods import METHODS, MapFn, Method
from .view import CLIP_PERCENTILE, PANEL, clip_map, colorbar_figure_axes, side_by_side_png
from ..images import SAMPLES, ImageLike, load_image, preprocess
from ..layers import block_layers, feature_map_layers
from ..models import Classifier, load_model, top_k
from ..registry import MODELS, has_pretrained_weights
from ..viz import as_image, overlay

if TYPE_CHECKING:
    from .ui import ExplorerUI


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
                 device: torch.device | str | None = None, max_models: int = 2,
                 clip_percentile: float | None = CLIP_PERCENTILE):
        self.clip_percentile = clip_percentile  # display only: see `display_map`
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
                self._layers[name] = feature_map_layers(m, block_layers(m), self.size)
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
            p, c = top_k(model, self.image(), k=model.num_classes)  # every class, sorted: one forward pass
            probs = torch.empty_like(p[0]).scatter_(0, c[0], p[0]).cpu()  # back in class order
            self._preds[key] = (p[0, :self.top].tolist(), c[0, :self.top].tolist(), probs)
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

    def display_map(self) -> np.ndarray:
        """The current map `(H, W)` as drawn: clipped at `clip_percentile` of its magnitude (`clip_map`; None
        draws the raw map). The cached map (`current_map`) is not changed."""
        return clip_map(self.current_map(), self.clip_percentile, signed=self.methods[self.method].signed)

    def figure_data(self) -> np.ndarray:
        """What the explorer shows: the current map, clipped for display (`display_map`), over the photo at
        the current opacity, `(H, W, 3)` floats in [0, 1]."""
        return overlay(self.photo_array(), self.display_map(), self.opacity,
                       signed=self.methods[self.method].signed)

    def title(self) -> str:
        """One line saying what is shown."""
        label = self.model().labels[self.target]
        layer = f", layer {self.layer}" if self.methods[self.method].uses_layer else ""
        weights = "" if self.has_imagenet_weights() else " (random weights)"
        return (f"{self.method} of '{label}' ({self.probability(self.target):.1%}) | {self.model_name}{weights}{layer}"
                f" | {self.photo} | profile {get_profile().name}")

    def png(self, panel: int = PANEL) -> bytes:
        """The photo and the overlay side by side as PNG bytes, each panel `panel` pixels wide."""
        return side_by_side_png(self.photo_array(), self.figure_data(), panel)

    def show(self, size: float = 3.2):
        """A matplotlib figure of the current state: the photo, the map alone and the overlay."""
        from ..viz import show_grid

        signed = self.methods[self.method].signed
        m = self.display_map()
        fig = show_grid([self.photo_array(), m, self.figure_data()],
                        ["photo", f"{self.method} map", f"overlay (opacity {self.opacity:.2f})"],
                        signed=signed, size=size)
        fig.suptitle(self.title(), fontsize=9)
        fig.tight_layout()  # again, so that the panels' titles make room for the figure's
        if signed:  # where zero lies, and which colour is evidence for the class
            colorbar_figure_axes(fig, fig.axes[1], signed=True)
        return fig

    def widget_figure(self, size: float = 3.2):
        """A matplotlib figure of what the widget shows now, for a page without a browser: the photo and the
        overlay side by side (`figure_data`), the colour bar of the map's scale under the overlay (negative /
        0 / positive for a signed method, low / high otherwise; 'high' is the clipping percentile) and the
        title line. Returns the figure (2 image axes and the colour bar's axes)."""
        import matplotlib.pyplot as plt

        signed = self.methods[self.method].signed
        fig, axes = plt.subplots(1, 2, figsize=(2 * size, size + 0.6))
        for ax, img, name in zip(axes, (self.photo_array(), self.figure_data()),
                                 ("what the model sees", f"{self.method} (opacity {self.opacity:.2f})")):
            ax.imshow(img)
            ax.set_title(name, fontsize=9)
            ax.axis("off")
        clip = f", clipped at the {self.clip_percentile:g}th percentile" if self.clip_percentile else ""
        colorbar_figure_axes(fig, axes[1], signed, label=f"map{clip}")
        fig.suptitle(self.title(), fontsize=8)
        return fig
