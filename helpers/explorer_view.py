"""What the explorer draws: the two panels (photo, map over the photo by `helpers.viz.overlay`) as one PNG,
and the colour bar."""
from __future__ import annotations

import io

import numpy as np
from matplotlib import colormaps
from PIL import Image

from .viz import MAP_CMAP, SIGNED_CMAP

PANEL, GAP = 320, 8  # the displayed picture: two panels of PANEL pixels, GAP pixels apart


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


def colorbar_html(signed: bool) -> str:
    """An HTML colour bar of the map's colour map, labelled at its ends."""
    cmap = colormaps[SIGNED_CMAP if signed else MAP_CMAP]
    stops = ", ".join(f"rgb({r * 255:.0f},{g * 255:.0f},{b * 255:.0f})"
                      for r, g, b, _ in cmap(np.linspace(0, 1, 9)))
    ends = ("negative", "0", "positive") if signed else ("low", "", "high")
    return (f"<div style='display:flex;gap:6px;align-items:center;font-size:12px'>{ends[0]}"
            f"<div style='width:180px;height:10px;background:linear-gradient(to right, {stops})'></div>"
            f"{ends[2]}</div>")
