"""LIME and SHAP for image classifiers, as per-pixel maps: thin batched wrappers around the `lime` and
`shap` packages so that every notebook (the case study, the explorer) uses the same settings.

Both explain one class per image by switching regions of the image off and watching the model:
- `lime_map`: LIME (Ribeiro et al. 2016) over SLIC superpixels; the map paints each superpixel with the
  weight of its linear surrogate model (signed).
- `shap_map`: SHAP's Partition explainer (Lundberg & Lee 2017) with an Image masker that blurs the
  hidden regions; the map is the per-pixel Shapley estimate summed over colour channels (signed).

The model is called on batches of `batch_size` perturbed images (under `torch.no_grad`), never one at a
time. `progress(done, total)` is called after each batch, for progress bars. Both run on the model's
device and return maps `(N, H, W)` on the device of `x`.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .images import check_images

Progress = Callable[[int, int], None]


def _targets(target: int | Sequence[int] | torch.Tensor, n: int, num_classes: int | None) -> list[int]:
    if isinstance(target, torch.Tensor):
        target = target.flatten().tolist()
    elif isinstance(target, (int, np.integer)):
        target = [int(target)] * n
    target = [int(t) for t in target]
    if len(target) != n:
        raise ValueError(f"target must be an int or hold one class per image ({n}); got {len(target)}.")
    if num_classes is not None and any(not 0 <= t < num_classes for t in target):
        raise ValueError(f"class indices must lie in [0, {num_classes}); got {target}.")
    return target


def _probabilities(model: nn.Module, batch_size: int, counter: list[int], total: int,
                   progress: Progress | None) -> Callable[[np.ndarray], np.ndarray]:
    """A function from images `(B, H, W, 3)` in [0, 1] (NumPy) to class probabilities `(B, classes)`,
    calling `model` on chunks of at most `batch_size`."""
    device = next(model.parameters()).device

    def f(images: np.ndarray) -> np.ndarray:
        out = []
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                chunk = torch.as_tensor(np.ascontiguousarray(images[start:start + batch_size]), dtype=torch.float32)
                probs = model(chunk.permute(0, 3, 1, 2).to(device)).softmax(dim=1)
                out.append(probs.cpu().numpy())
                counter[0] += len(chunk)
                if progress is not None:
                    progress(min(counter[0], total), total)
        return np.concatenate(out)

    return f


def superpixels(x: torch.Tensor, n_segments: int = 50, compactness: float = 10.0) -> torch.Tensor:
    """SLIC superpixels of each image `(N, 3, H, W)` in [0, 1]: labels `(N, H, W)` (long, from 0)."""
    from skimage.segmentation import slic

    check_images(x)
    imgs = x.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    seg = [slic(img, n_segments=n_segments, compactness=compactness, start_label=0) for img in imgs]
    return torch.as_tensor(np.stack(seg), dtype=torch.long)


def lime_map(model: nn.Module, x: torch.Tensor, target: int | Sequence[int] | torch.Tensor, samples: int,
             n_segments: int = 50, batch_size: int = 64, hide_color: float | None = None, seed: int = 0,
             progress: Progress | None = None) -> torch.Tensor:
    """LIME maps `(N, H, W)` (signed superpixel weights) for images `x` `(N, 3, H, W)` in [0, 1].

    samples: perturbed images per photo (LIME's `num_samples`); batch_size: images per model call;
    hide_color: the value of switched-off superpixels (None: each superpixel's mean colour, LIME's
    default); seed: LIME's random state, so a re-run gives the same map.
    """
    from lime import lime_image

    check_images(x)
    if samples < 2:
        raise ValueError(f"LIME needs at least 2 samples per image; got samples={samples}.")
    n = x.shape[0]
    targets = _targets(target, n, getattr(model, "num_classes", None))
    segments = superpixels(x, n_segments)
    total = samples * n
    counter = [0]
    f = _probabilities(model, batch_size, counter, total, progress)
    maps = torch.zeros(n, *x.shape[-2:], dtype=torch.float32)
    quiet_tqdm = lime_image.tqdm
    lime_image.tqdm = lambda it, *a, **k: it  # lime 0.2 prints its own bar to stderr; we report via progress
    try:
        for i in range(n):  # LIME fits one surrogate per image
            img = x[i].detach().float().cpu().permute(1, 2, 0).numpy().astype(np.float64)
            seg = segments[i].numpy()
            explainer = lime_image.LimeImageExplainer(random_state=seed)
            exp = explainer.explain_instance(
                img, f, labels=(targets[i],), top_labels=None, hide_color=hide_color,
                num_features=int(seg.max()) + 1, num_samples=samples, batch_size=batch_size,
                segmentation_fn=lambda _img, s=seg: s, random_seed=seed)
            weights = torch.zeros(int(seg.max()) + 1)
            for region, w in exp.local_exp[targets[i]]:
                weights[region] = float(w)
            maps[i] = weights[segments[i]]
    finally:
        lime_image.tqdm = quiet_tqdm
    return maps.to(x.device)


def shap_map(model: nn.Module, x: torch.Tensor, target: int | Sequence[int] | torch.Tensor, evals: int,
             blur: int | None = None, batch_size: int = 64, progress: Progress | None = None) -> torch.Tensor:
    """SHAP Partition maps `(N, H, W)` (signed, summed over colour channels) for images `x`
    `(N, 3, H, W)` in [0, 1].

    evals: model evaluations per image (SHAP's `max_evals`; more gives finer regions); blur: side of the
    blur kernel that hides regions, pixels (default: about an eighth of the image, odd).
    """
    import shap

    check_images(x)
    if evals < 4:
        raise ValueError(f"SHAP needs at least 4 evaluations per image; got evals={evals}.")
    n, _, h, w = x.shape
    targets = _targets(target, n, getattr(model, "num_classes", None))
    k = blur or (max(3, min(h, w) // 8) | 1)
    masker = shap.maskers.Image(f"blur({k},{k})", (h, w, 3))
    counter = [0]
    # Partition may spend a few evaluations more than asked; the bar stops at the total.
    f = _probabilities(model, batch_size, counter, evals * n, progress)
    explainer = shap.Explainer(f, masker)
    imgs = x.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    maps = []
    for img, t in zip(imgs, targets):  # SHAP applies `outputs` to every row alike: one call per class
        exp = explainer(img[None], max_evals=evals, batch_size=batch_size, outputs=[t], silent=True)
        maps.append(np.asarray(exp.values)[0, ..., 0].sum(axis=-1))  # (H, W, 3, 1) -> (H, W)
    return torch.as_tensor(np.stack(maps), dtype=torch.float32).to(x.device)
