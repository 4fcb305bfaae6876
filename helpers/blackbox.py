"""Model-agnostic explanations by perturbation, LIME and SHAP, as maps `(N, H, W)` like every other method
of the course, with the model called on large batches.

- LIME (Ribeiro et al. 2016, the `lime` package): the image is cut into superpixels (SLIC), random subsets
  of them are greyed out (filled with their mean colour), and a weighted linear model of the class score
  on the on/off pattern gives each superpixel a weight; the map paints every pixel with its superpixel's
  weight. Its default of 10 images per model call is slow; `batch_size` raises it.
- SHAP (Lundberg and Lee 2017, the `shap` package), Partition explainer: Owen values over a hierarchy of
  axis-aligned image halves, computed with `max_evals` model calls; hidden regions are replaced by a
  blurred copy of the image (no OpenCV needed). Its maps are blocky at small budgets but additive: the
  values add up to score(image) - score(fully blurred image).

Both explain the model's *score* for `target` (`helpers.checks.score_fn`): the softmax probability for a
single-label classifier, the sigmoid for a multi-label one (`model.multilabel`), or the raw logit
(`score="logit"`). With
`progress=True` a bar counts the images explained (each costs `num_samples` or `max_evals` model calls).
"""
from __future__ import annotations

import functools
import inspect
from typing import Callable

import numpy as np
import torch
from torch import nn

from . import checks
from .filters import gaussian_blur


def predict_numpy(model: nn.Module, batch_size: int = 128, score: str | None = None,
                  columns: list[int] | None = None, targets: list[int] | None = None
                  ) -> Callable[[np.ndarray], np.ndarray]:
    """The function LIME and SHAP call: images `(B, H, W, 3)` floats in [0, 1] -> scores `(B, K)` (or the
    given `columns` only), computed on the model's device `batch_size` images at a time, without gradients.
    `targets` (class indices) and `columns` are checked against the model's K outputs on the first call."""
    device = next(model.parameters()).device
    to_score = checks.score_fn(model, score)
    checked = []

    @torch.no_grad()
    def predict(images: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(images, dtype=np.float32)).permute(0, 3, 1, 2)
        out = []
        for chunk in x.split(batch_size):
            s = to_score(model(chunk.to(device)))
            if not checked:
                for name, t in (("target", targets), ("columns", columns)):
                    if t is not None:
                        checks.targets(list(t), len(t), s.shape[1], name=name)
                checked.append(True)
            out.append((s if columns is None else s[:, columns]).float().cpu())
        return torch.cat(out).numpy()

    return predict


def _bar(items: list, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="image", disable=not progress, leave=False)


def lime_maps(model: nn.Module, x: torch.Tensor, target: int | torch.Tensor, num_samples: int,
              n_segments: int = 50, compactness: float = 10.0, batch_size: int = 128, score: str | None = None,
              seed: int = 0, progress: bool = False) -> torch.Tensor:
    """LIME maps `(N, H, W)` (signed superpixel weights, in score units per superpixel) for images `x`
    `(N, 3, H, W)` in [0, 1] and `target` (int or `(N,)`), from `num_samples` perturbed images each.
    `n_segments`: about how many SLIC superpixels (50 suits 224 px; fewer for small images).
    `progress`: show a bar over the images."""
    from lime import lime_image
    from skimage.segmentation import slic

    checks.images(x)
    targets = checks.targets(target, len(x), checks.output_classes(model)).tolist()
    predict = predict_numpy(model, batch_size, score, targets=targets)

    def segment(img: np.ndarray) -> np.ndarray:
        seg = slic(img, n_segments=n_segments, compactness=compactness, start_label=0)
        if seg.max() == 0:  # SLIC found a single region (e.g. pure noise): fall back to a square grid
            side = max(1, int(round(np.sqrt(img.shape[0] * img.shape[1] / n_segments))))
            rows, cols = np.arange(img.shape[0]) // side, np.arange(img.shape[1]) // side
            seg = rows[:, None] * (cols.max() + 1) + cols[None, :]
        return seg

    # lime >= 0.2.1 takes progress_bar=False; older versions always draw a bar, silenced here and restored.
    quiet = {"progress_bar": False} if "progress_bar" in inspect.signature(
        lime_image.LimeImageExplainer.explain_instance).parameters else {}
    original_tqdm = lime_image.tqdm
    lime_image.tqdm = functools.partial(original_tqdm, disable=True)
    maps = []
    try:
        images = list(x.detach().cpu().permute(0, 2, 3, 1).double().numpy())
        for img, t in _bar(list(zip(images, targets)), f"LIME ({num_samples} samples per image)", progress):
            explainer = lime_image.LimeImageExplainer(random_state=seed)
            exp = explainer.explain_instance(img, predict, labels=(t,), top_labels=None, num_features=10 ** 6,
                                             num_samples=num_samples, batch_size=batch_size,
                                             segmentation_fn=segment, random_seed=seed, **quiet)
            weights = np.zeros(exp.segments.max() + 1)
            for seg, w in exp.local_exp[t]:
                weights[seg] = w
            maps.append(torch.from_numpy(weights[exp.segments]).float())
    finally:
        lime_image.tqdm = original_tqdm
    return torch.stack(maps).to(x.device)


def shap_maps(model: nn.Module, x: torch.Tensor, target: int | torch.Tensor, max_evals: int,
              batch_size: int = 128, score: str | None = None, blur_sigma: float | None = None,
              progress: bool = False) -> torch.Tensor:
    """Partition-SHAP maps `(N, H, W)` (signed, summed over colour channels) for images `x` `(N, 3, H, W)` in
    [0, 1] and `target` (int or `(N,)`), from about `max_evals` model evaluations each. Hidden regions show
    the image blurred with a Gaussian of `blur_sigma` pixels (default: an eighth of the side).
    `progress`: show a bar over the images."""
    import shap

    checks.images(x)
    targets = checks.targets(target, len(x), checks.output_classes(model)).tolist()
    h, w = x.shape[-2:]
    sigma = blur_sigma if blur_sigma is not None else max(h, w) / 8
    maps = []
    for img, t in _bar(list(zip(x.detach().cpu(), targets)), f"SHAP ({max_evals} evaluations per image)", progress):
        background = gaussian_blur(img[None], sigma)[0].permute(1, 2, 0).numpy().astype(np.float32)
        masker = shap.maskers.Image(background, shape=(h, w, 3))
        predict = predict_numpy(model, batch_size, score, columns=[t])
        explainer = shap.explainers.Partition(predict, masker)
        values = explainer(img.permute(1, 2, 0).numpy()[None].astype(np.float32), max_evals=max_evals,
                           batch_size=batch_size, silent=True).values  # (1, H, W, 3, 1)
        maps.append(torch.from_numpy(np.asarray(values, dtype=np.float32).reshape(h, w, 3, -1)[..., 0].sum(-1)))
    return torch.stack(maps).to(x.device)
