"""The checks and conversions every public function of `helpers` applies to its inputs: class targets,
image batches, maps and score functions.

A bad input gets the same `ValueError` from every method: the message names the argument, says what was
wrong, and says what to do (divide by 255, add the batch dimension, reduce the channels, ...).

- `targets(target, n, num_classes)`: one int, or one index per image (list or integer tensor) ->
  LongTensor `(n,)`, each in `[0, num_classes)`. Floats, bools and negative indices are refused.
- `images(x)`: a float batch `(N, 3, H, W)` with finite values in [0, 1] (the most common mistake,
  0-255 pixels, gets "divide by 255"). Channels-last and grayscale get the conversion to write.
- `maps(m, shape=...)`: float maps `(N, H, W)`, finite, of the expected shape.
- `model_targets(model, x, target)`, `target_logits(logits, t)`: images and targets checked together; each
  image's target logit `(N,)`.
- `output_classes(model, x)`: how many outputs a model has, from its contract (`helpers.contract.CourseModel`)
  or, for any other module, from one forward pass of one image.
- `score_fn(model, score)`: logits -> the score explained ("softmax", "sigmoid", "logit", or None for
  the model's own).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from .contract import Target, is_course_model

TOLERANCE = 1e-3  # how far outside [0, 1] rounding may take an image before it is refused



def shape_text(x: object) -> str:
    """How to name `x` in an error message: its shape `(N, 3, H, W)` for a tensor, else its type."""
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor) else f"a {type(x).__name__}"


# -------------------------------------------------------------------------------------------- targets

def targets(target: Target, n: int, num_classes: int | None = None, device: torch.device | str | None = None,
            name: str = "target") -> torch.Tensor:
    """`target` as a LongTensor `(n,)` of class indices on `device`.

    `target` is one int (the same class for all `n` images) or one index per image (a list of ints or an
    integer tensor `(n,)`). With `num_classes`, each index must lie in `[0, num_classes)`; negative
    indices are always refused (Python's -1 for "the last class" is almost always a mistake here).
    ValueError naming `name` and the fix otherwise.
    """
    fix = f"pass an int class index, or a LongTensor ({n},) of them (e.g. model(x).argmax(1))"
    if isinstance(target, bool) or (isinstance(target, torch.Tensor) and target.dtype == torch.bool):
        raise ValueError(f"{name} must be a class index, not a bool ({target!r}); {fix}.")
    if isinstance(target, int):
        t = torch.full((n,), target, dtype=torch.long)
    elif isinstance(target, float):
        raise ValueError(f"{name} must be an integer class index; got the float {target!r}. Convert it with "
                         f"int({name}) if it is a whole number.")
    elif isinstance(target, torch.Tensor):
        if target.is_floating_point() or target.is_complex():
            raise ValueError(f"{name} must hold integer class indices; got a {target.dtype} tensor. Convert it "
                             f"with {name}.long() (after checking the values are whole numbers).")
        if target.ndim > 1:
            raise ValueError(f"{name} must be an int or a 1-D tensor of {n} class indices; got shape "
                             f"{tuple(target.shape)}. Flatten it ({name}.flatten()) if it holds one per image.")
        t = target.detach().reshape(-1).long().cpu()
        if target.ndim == 0:
            t = t.expand(n)
    elif isinstance(target, Sequence) and not isinstance(target, str):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in target):
            kinds = sorted({type(v).__name__ for v in target})
            raise ValueError(f"{name} must hold integer class indices; got a list of {', '.join(kinds)}. "
                             f"Convert with [int(v) for v in {name}], or {fix}.")
        t = torch.tensor(list(target), dtype=torch.long)
    else:
        raise ValueError(f"{name} must be a class index; got a {type(target).__name__}. {fix[0].upper()}{fix[1:]}.")
    if t.numel() != n:
        raise ValueError(f"{name} has {t.numel()} class indices for a batch of {n} images; give one per image, "
                         "or a single int for all.")
    if t.numel():
        if bool((t < 0).any()):
            top = f"0 to {num_classes - 1}" if num_classes is not None else "0 and up"
            raise ValueError(f"{name} holds the negative class index {int(t.min())}, outside the model's outputs "
                             f"(negative indices are not accepted): use an index from {top} (for the last class, "
                             "num_classes - 1).")
        if num_classes is not None and bool((t >= num_classes).any()):
            raise ValueError(f"{name} holds the class index {int(t.max())}, outside the model's outputs: use an "
                             f"index from 0 to {num_classes - 1} (it has {num_classes}; see model.labels, or "
                             "model(x).argmax(1)).")
    return t.to(device) if device is not None else t


def output_classes(model: nn.Module, x: torch.Tensor | None = None) -> int | None:
    """How many outputs `model` has: `model.num_classes` for a model that states the course's contract
    (`helpers.contract.CourseModel`); for any other module the width of its logits on the first image of `x`
    (one forward pass, no gradients), or None without `x`."""
    if is_course_model(model):
        return int(model.num_classes)
    if x is None or not isinstance(x, torch.Tensor) or x.shape[0] == 0:
        return None
    with torch.no_grad():
        out = model(x[:1])
    return int(out.shape[1]) if isinstance(out, torch.Tensor) and out.ndim == 2 else None


def model_targets(model: nn.Module, x: torch.Tensor, target: Target) -> torch.Tensor:
    """Check images `x` `(N, 3, H, W)` and return the targets as a LongTensor `(N,)` on `x`'s device, checked
    against `model.num_classes` for a course model (for any other model `target_logits` checks them against
    the logits)."""
    images(x)
    return targets(target, x.shape[0], output_classes(model), x.device)


def target_logits(logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Each image's target logit, `(N,)`, from logits `(N, K)` and targets `(N,)` (checked against K)."""
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        raise ValueError(f"the model must return logits (N, K); it returned {shape_text(logits)}.")
    targets(t, logits.shape[0], logits.shape[1])
    return logits.gather(1, t.view(-1, 1).to(logits.device)).squeeze(1)


# --------------------------------------------------------------------------------------------- images

def images(x: torch.Tensor, name: str = "x", single: bool = False, check_range: bool = True,
           any_channels: bool = False) -> None:
    """Raise ValueError unless `x` is a batch of RGB images `(N, 3, H, W)` (or, with `single`, also one
    image `(3, H, W)`; with `any_channels`, `(N, C, H, W)`), floating point, finite and in [0, 1] (up to
    `TOLERANCE`).

    The message names `name` and the conversion that fixes the input: `x / 255` for 0-255 pixels,
    `x.unsqueeze(0)` for one image, `x.permute(...)` for channels-last, `x.expand(-1, 3, -1, -1)` for
    grayscale. `check_range=False` skips the range check (inputs that are not pixels, such as the noisy
    copies SmoothGrad makes).
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of images (N, 3, H, W) in [0, 1]; got a "
                         f"{type(x).__name__}. Load photos with helpers.load_batch / helpers.preprocess, or "
                         f"convert an array with torch.as_tensor({name}).")
    shape = tuple(x.shape)
    if any_channels:
        if x.ndim != 4:
            raise ValueError(f"{name} must be images shaped (N, C, H, W); got {shape}."
                             + (f" For one image use {name}.unsqueeze(0)." if x.ndim == 3 else ""))
        x = x.reshape(-1, 1, *shape[2:]).expand(-1, 3, -1, -1)  # check every channel as one RGB image
    want = "(N, 3, H, W)" + (" or (3, H, W)" if single else "")
    if x.ndim == 3 and not single:
        if shape[0] == 3:
            raise ValueError(f"{name} is one image {shape}; {want} is needed: add the batch dimension with "
                             f"{name}.unsqueeze(0).")
        if shape[-1] in (1, 3):
            raise ValueError(f"{name} looks like one channels-last image (H, W, C) {shape}; {want} is needed: "
                             f"use {name}.permute(2, 0, 1).unsqueeze(0).")
    if x.ndim == 4 and shape[1] != 3 and shape[-1] in (1, 3):
        raise ValueError(f"{name} looks channels-last (N, H, W, C) {shape}; {want} is needed: use "
                         f"{name}.permute(0, 3, 1, 2).")
    channels = shape[1] if x.ndim == 4 else shape[0] if x.ndim == 3 else None
    if x.ndim in ((3, 4) if single else (4,)) and channels == 1:
        raise ValueError(f"{name} is grayscale (1 channel) {shape}; the models take RGB {want}: repeat the "
                         f"channel with {name}.expand(-1, 3, -1, -1)" + (" (one image: .expand(3, -1, -1))"
                                                                          if single else "") + ".")
    if x.ndim not in ((3, 4) if single else (4,)) or channels != 3:
        hint = f" For one image use {name}.unsqueeze(0)." if x.ndim == 3 else ""
        raise ValueError(f"{name} must be RGB images shaped {want}; got {shape}.{hint}")
    if not x.is_floating_point():
        raise ValueError(f"{name} has dtype {x.dtype}; images must be floats in [0, 1]: convert with "
                         f"{name}.float() / 255.")
    if x.numel() == 0:
        return
    x = x.detach()
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ValueError(f"{name} holds {bad} NaN or infinite values; images must be finite. Find where they "
                         f"come from (a division by zero, a log of 0), or replace them: torch.nan_to_num({name}).")
    if check_range:
        lo, hi = float(x.min()), float(x.max())
        if hi > 1 + TOLERANCE and lo >= -TOLERANCE and hi > 2:
            raise ValueError(f"{name} holds values up to {hi:.4g}: it looks like 0-255 pixels. Images must be in "
                             f"[0, 1]: divide by 255 ({name} / 255).")
        if lo < -TOLERANCE and hi <= 4:
            raise ValueError(f"{name} holds negative values (min {lo:.4g}): it looks normalized with a mean and a "
                             f"std. Pass pixels in [0, 1]; the course's models normalize inside (model.denormalize "
                             f"undoes a normalization). For 0-255 pixels, divide by 255.")
        if lo < -TOLERANCE or hi > 1 + TOLERANCE:
            raise ValueError(f"{name} holds values in [{lo:.4g}, {hi:.4g}]; images must be in [0, 1]. Clamp with "
                             f"{name}.clamp(0, 1), or divide 0-255 pixels by 255.")


def baseline_like(baseline: float | torch.Tensor | None, x: torch.Tensor, name: str = "baseline") -> torch.Tensor:
    """`baseline` as images shaped like `x` `(N, 3, H, W)`: None or a number gives a constant image (None = 0,
    black), images `(N, 3, H, W)` or `(1, 3, H, W)` are checked like `x` and broadcast. ValueError, naming
    `name`, for anything that does not broadcast to `x`."""
    base = torch.as_tensor(0.0 if baseline is None else baseline, dtype=x.dtype, device=x.device)
    if base.ndim == 4:
        images(base, name)
    try:
        return base.expand_as(x)
    except RuntimeError:
        raise ValueError(f"{name} must be a number or images shaped like x {tuple(x.shape)}; got "
                         f"{tuple(base.shape)}.") from None


def labels_like(labels: torch.Tensor, logits: torch.Tensor, name: str = "labels") -> torch.Tensor:
    """Labels for logits `(N, K)`: class indices `(N,)` in `[0, K)` (checked with `targets`), or 0/1 values
    `(N, K)` for a multi-label model. Returned on the logits' device."""
    if isinstance(labels, torch.Tensor) and labels.ndim == 2:
        if labels.shape != logits.shape:
            raise ValueError(f"{name} {tuple(labels.shape)} must match the logits {tuple(logits.shape)} (one 0/1 "
                             "column per output), or be class indices (N,).")
        return labels.to(logits.device)
    return targets(labels, logits.shape[0], logits.shape[1], logits.device, name)


# ----------------------------------------------------------------------------------------------- maps

def maps(m: torch.Tensor, name: str = "maps", shape: Sequence[int] | None = None) -> torch.Tensor:
    """`m` as float maps `(N, H, W)`, after checking them: a tensor of that rank (of exactly `shape` when
    given, e.g. the images' `(N, H, W)`), with finite values. ValueError naming `name` and the fix."""
    if not isinstance(m, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of maps (N, H, W); got a {type(m).__name__}. Convert "
                         f"with torch.as_tensor({name}).")
    if m.ndim == 4:
        raise ValueError(f"{name} must be maps shaped (N, H, W); got {tuple(m.shape)}. For attributions "
                         "(N, C, H, W) reduce the channels first, e.g. .abs().amax(1), .sum(1) or "
                         ".sum(1).clamp(min=0).")
    if m.ndim != 3:
        hint = f" For one map use {name}.unsqueeze(0)." if m.ndim == 2 else ""
        raise ValueError(f"{name} must be maps shaped (N, H, W); got {tuple(m.shape)}.{hint}")
    if shape is not None and tuple(m.shape) != tuple(shape):
        raise ValueError(f"{name} must be (N, H, W) = {tuple(shape)} to match the images; got {tuple(m.shape)}. "
                         "Upsample maps to the image size first (helpers.cam.upsample), one map per image.")
    if not m.is_floating_point():
        m = m.float()
    if m.numel() and not bool(torch.isfinite(m).all()):
        bad = int((~torch.isfinite(m)).sum())
        raise ValueError(f"{name} holds {bad} NaN or infinite values; maps must be finite. Find where they come "
                         f"from (often a division by a zero norm), or replace them: torch.nan_to_num({name}).")
    return m


def same_shape(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str] = ("a", "b")) -> None:
    """ValueError unless `a` and `b` have the same shape."""
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} {tuple(a.shape)} and {names[1]} {tuple(b.shape)} must have the same shape; "
                         "compare maps of the same images at the same size.")


# ------------------------------------------------------------------------------------ score functions

SCORES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "softmax": lambda z: z.softmax(dim=1),
    "sigmoid": torch.sigmoid,
    "logit": lambda z: z,
}


def score_fn(model: nn.Module | None, score: str | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """logits `(B, K)` -> scores `(B, K)`: "softmax" (one probability per class, as in Petsiuk et al. 2018),
    "sigmoid" (independent probabilities, multi-label models), "logit" (the raw score), or None for the
    model's own: sigmoid when `model.multilabel`, else softmax."""
    if score is None:
            score = "sigmoid" if is_course_model(model) and model.multilabel else "softmax"
    if score not in SCORES:
        raise ValueError(f"score must be one of {list(SCORES)} (or None for the model's own); got {score!r}.")
    return SCORES[score]
