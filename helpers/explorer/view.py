"""What the explorer draws: the two panels (photo, map over the photo by `helpers.viz.overlay`) as one PNG,
and the colour bar."""
from __future__ import annotations

import html
import io

import numpy as np
from matplotlib import colormaps
from PIL import Image

from ..viz import MAP_CMAP, SIGNED_CMAP

PANEL, GAP = 320, 8  # the displayed picture: two panels of PANEL pixels, GAP pixels apart
CLIP_PERCENTILE = 99.0  # maps are clipped at this percentile of their magnitude before display


def clip_map(heat: np.ndarray, percentile: float | None = CLIP_PERCENTILE, signed: bool = False) -> np.ndarray:
    """A map `(H, W)` (any float range) clipped for display at a high percentile (Captum's visualization clips
    similarly, at the value below which a percentile of the total |map| lies): with q the `percentile` (in [0, 100]) of |heat|, a signed map is clipped to [-q, q] (its zero stays
    put) and a non-negative (unsigned) map to [min, q] with q the percentile of `heat`. A few extreme pixels
    then no longer take the whole colour range, so a sparse map (saliency, Guided Grad-CAM) is not drawn
    black. Returns a new `(H, W)` float array; `percentile=None`, or q = 0 (a map that is zero almost
    everywhere), or q not below the maximum, returns the map unchanged (as float)."""
    m = np.asarray(heat, dtype=np.float64)
    if percentile is None or m.size == 0:
        return m.copy()
    if signed:
        q = float(np.percentile(np.abs(m), percentile))
        return np.clip(m, -q, q) if 0 < q < np.abs(m).max() else m.copy()
    q = float(np.percentile(m, percentile))
    return np.minimum(m, q) if m.min() < q < m.max() else m.copy()


def colorbar_figure_axes(fig, ax, signed: bool, label: str = "", short: bool = False):
    """Add a horizontal colour bar of the map's colour map (SIGNED_CMAP from -1 to 1 when `signed`, MAP_CMAP
    from 0 to 1 otherwise: the display scale after clipping) just under the matplotlib axes `ax`, in an inset
    that takes no room from the picture; `short` labels the ends with symbols (for small grids). Returns it."""
    from matplotlib import cm
    from matplotlib.colors import Normalize

    norm = Normalize(-1.0, 1.0) if signed else Normalize(0.0, 1.0)
    sm = cm.ScalarMappable(norm=norm, cmap=SIGNED_CMAP if signed else MAP_CMAP)
    cax = ax.inset_axes([0.05, -0.07, 0.9, 0.04])
    bar = fig.colorbar(sm, cax=cax, orientation="horizontal")
    bar.set_ticks([-1.0, 0.0, 1.0] if signed else [0.0, 1.0])
    if short:
        bar.set_ticklabels(["\u2212", "0", "+"] if signed else ["low", "high"])
    else:
        bar.set_ticklabels(["negative", "0", "positive"] if signed else ["low", "high"])
    bar.ax.tick_params(labelsize=7, length=2, pad=1)
    if label:
        bar.set_label(label, fontsize=8)
    return bar


def side_by_side_png(left: np.ndarray, right: np.ndarray, panel: int = PANEL, gap: int = GAP) -> bytes:
    """Two pictures `(H, W, 3)` in [0, 1], each resized to `panel` x `panel` pixels, `gap` pixels apart on
    white, as PNG bytes."""
    tiles = [Image.fromarray((np.clip(p, 0, 1) * 255 + 0.5).astype(np.uint8)).resize(
        (panel, panel), Image.BILINEAR) for p in (left, right)]
    canvas = Image.new("RGB", (2 * panel + gap, panel), (255, 255, 255))
    canvas.paste(tiles[0], (0, 0))
    canvas.paste(tiles[1], (panel + gap, 0))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


def colorbar_html(signed: bool, note: str = "") -> str:
    """An HTML colour bar of the map's colour map, labelled at its ends, followed by `note` (escaped text,
    e.g. the clipping percentile; empty: nothing)."""
    cmap = colormaps[SIGNED_CMAP if signed else MAP_CMAP]
    stops = ", ".join(f"rgb({r * 255:.0f},{g * 255:.0f},{b * 255:.0f})"
                      for r, g, b, _ in cmap(np.linspace(0, 1, 9)))
    ends = ("negative", "0", "positive") if signed else ("low", "", "high")
    return (f"<div style='display:flex;gap:6px;align-items:center;font-size:12px'>{ends[0]}"
            f"<div style='width:180px;height:10px;background:linear-gradient(to right, {stops})'></div>"
            f"{ends[2]}{' (' + html.escape(note) + ')' if note else ''}</div>")
