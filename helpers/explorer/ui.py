"""The explorer's controls: ipywidgets bound to an `Explorer`, and `explore()`, which builds and shows them.

Every control calls the explorer's setter and every state change (also from code) redraws an `Image`
widget in place; slow methods (SmoothGrad, Integrated Gradients, LIME, SHAP) report progress. Run headless
(nbval, nbconvert), `explore()` computes and renders the initial state at once and waits for nothing.
"""
from __future__ import annotations

import html
from typing import Any, Callable

from ..colab import in_colab
from .state import Explorer
from .view import GAP, PANEL, colorbar_html

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

    def _clip_note(self) -> str:
        """The colour bar's note: the percentile at which the map is clipped for display ('' if none)."""
        p = self.ex.clip_percentile
        return f"clipped at the {p:g}th percentile of |map|" if p else ""

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
                                  f"{colorbar_html(self.ex.methods[self.ex.method].signed, self._clip_note())}")
            self.status.value = f"model calls so far: {self.ex.model_calls}"
            self.progress.bar_style = "success"
            self.progress.value = 1.0
        except Exception as exc:
            self._error(exc)


def _enable_colab_widgets() -> None:
    if in_colab():
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
