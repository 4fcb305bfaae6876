"""Where the parts of a CelebA face are: the five landmarks, the parts an attribute is about, masks around them."""
from __future__ import annotations

from typing import Sequence

import torch

LANDMARKS = ("lefteye", "righteye", "nose", "leftmouth", "rightmouth")
EYES = ("lefteye", "righteye")
MOUTH = ("leftmouth", "rightmouth")
# The landmarks near which the evidence for an attribute should lie (used to score explanations).
ATTRIBUTE_PARTS: dict[str, tuple[str, ...]] = {
    "Eyeglasses": EYES, "Narrow_Eyes": EYES, "Bags_Under_Eyes": EYES, "Arched_Eyebrows": EYES,
    "Bushy_Eyebrows": EYES,
    "Smiling": MOUTH, "Mouth_Slightly_Open": MOUTH, "Wearing_Lipstick": MOUTH, "Big_Lips": MOUTH,
    "Mustache": MOUTH, "Goatee": MOUTH,
    "Big_Nose": ("nose",), "Pointy_Nose": ("nose",),
}


def landmark_mask(landmarks: torch.Tensor, parts: Sequence[str], size: int | tuple[int, int],
                  radius: float) -> torch.Tensor:
    """Bool masks `(N, H, W)`: pixels within `radius` pixels of any of the landmarks named in `parts`.

    landmarks: `(N, 5, 2)` x, y pixel coordinates in `LANDMARKS` order (as `CelebADataset.landmarks`).
    parts: names from `LANDMARKS`, e.g. `EYES` or `ATTRIBUTE_PARTS["Smiling"]`. size: S or (H, W).
    """
    unknown = [p for p in parts if p not in LANDMARKS]
    if unknown or not parts:
        raise ValueError(f"parts must be a non-empty selection of {LANDMARKS}; got {list(parts)}.")
    if landmarks.ndim != 3 or landmarks.shape[1:] != (5, 2):
        raise ValueError(f"landmarks must be (N, 5, 2); got {tuple(landmarks.shape)}.")
    h, w = (size, size) if isinstance(size, int) else size
    pts = landmarks[:, [LANDMARKS.index(p) for p in parts]].float()  # (N, P, 2)
    ys = torch.arange(h, dtype=torch.float32, device=pts.device).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=torch.float32, device=pts.device).view(1, 1, 1, w)
    d2 = (xs - pts[..., 0, None, None]) ** 2 + (ys - pts[..., 1, None, None]) ** 2  # (N, P, H, W)
    return (d2 <= radius ** 2).any(dim=1)


def interocular(landmarks: torch.Tensor) -> torch.Tensor:
    """Distance between the two eyes `(N,)` in pixels: the natural length unit of a face."""
    return (landmarks[:, 0] - landmarks[:, 1]).norm(dim=-1)
