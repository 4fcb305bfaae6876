"""Optimizing an image instead of explaining one: image parameterizations, random transformations,
blur, objectives and one gradient-ascent loop (notebooks 03 and 04; style transfer in `style.py`).

- Parameterizations are small modules whose `forward()` returns images `(N, 3, H, W)` in [0, 1]:
  `PixelImage` stores the pixels themselves (clamped to [0, 1] after each step); `FourierImage` stores a
  colour-decorrelated, frequency-scaled Fourier spectrum passed through a sigmoid (Olah et al. 2017).
- Transformations: `jitter` (one random roll for the batch), `random_transform` (a random scale, rotation
  and shift per image); the blur regularizer is the course's one blur, `helpers.filters.gaussian_blur`.
- Objectives map images `(N, 3, H, W)` to one score per image `(N,)`: `class_logit`, `channel_mean`.
- `visualize` runs gradient ascent on an objective with any mix of the regularizers above.

The models of the course normalize their input themselves, so everything here lives in [0, 1] pixels.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import checks
from .filters import gaussian_blur  # the course's one blur, a regularizer here
from .device import draw
from .layers import capture, get_layer

Objective = Callable[[torch.Tensor], torch.Tensor]  # images (N, 3, H, W) in [0, 1] -> scores (N,)

# Square root of the RGB covariance of the course's five sample photos (cat, coffee, astronaut, rocket,
# grace_hopper at 224 px), scaled so that its largest column has norm 1. Recompute it with
# `color_correlation_sqrt(helpers.load_batch(helpers.images.PHOTOS, 224))`; a test checks that it matches.
COLOR_SQRT = torch.tensor([
    [0.9050, 0.4038, 0.1336],
    [0.4038, 0.5764, 0.4063],
    [0.1336, 0.4063, 0.6905],
])


def _size2(size: int | Sequence[int]) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if h < 2 or w < 2:
        raise ValueError(f"image size must be at least 2 x 2 pixels; got {h} x {w}.")
    return int(h), int(w)


def color_correlation_sqrt(x: torch.Tensor) -> torch.Tensor:
    """The symmetric square root `(3, 3)` of the RGB covariance of images `x` `(N, 3, H, W)`, scaled so
    that its largest column norm is 1. Mixing independent channels with it gives them the colour
    correlations of natural photos."""
    checks.images(x)
    pixels = x.detach().double().movedim(1, 0).reshape(3, -1)
    eigval, eigvec = torch.linalg.eigh(torch.cov(pixels))
    root = eigvec @ torch.diag(eigval.clamp_min(0).sqrt()) @ eigvec.T
    return (root / root.norm(dim=0).max()).float()


class PixelImage(nn.Module):
    """A batch of images stored as raw pixels: `forward()` returns the parameter `pixels` `(N, 3, H, W)`.

    init: starting images `(N, 3, H, W)` in [0, 1] (copied), or None for grey plus Gaussian noise of
        standard deviation `std`, clamped to [0, 1].
    generator: the `torch.Generator` that draws that noise (any device; the noise is drawn on its device,
        then moved); None uses torch's global generator.
    Call `project_()` after each step to clamp the pixels back into [0, 1].
    """

    def __init__(self, n: int = 1, size: int | Sequence[int] = 224, init: torch.Tensor | None = None,
                 std: float = 0.1, device: torch.device | str | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        if init is not None:
            checks.images(init, "init")
            pixels = init.detach().clone().float()
        else:
            h, w = _size2(size)
            noise = draw("normal", (n, 3, h, w), generator, device="cpu" if generator is not None else None)
            pixels = (0.5 + std * noise).clamp_(0, 1)
        self.pixels = nn.Parameter(pixels.to(device) if device is not None else pixels)

    def forward(self) -> torch.Tensor:
        return self.pixels

    @torch.no_grad()
    def project_(self) -> None:
        """Clamp the pixels to [0, 1] in place."""
        self.pixels.clamp_(0, 1)


def spectrum_scale(h: int, w: int, decay: float = 1.0) -> torch.Tensor:
    """Weights `(h, w // 2 + 1)` for the coefficients of a real 2-D FFT: `1 / f**decay` with `f` the
    frequency in cycles per pixel (the constant term uses `f = 1 / max(h, w)`), scaled to a root mean
    square of 1 so that coefficients of standard deviation s give pixels of standard deviation about s."""
    fy = torch.fft.fftfreq(h).view(-1, 1)
    fx = torch.fft.rfftfreq(w).view(1, -1)
    freq = (fx.square() + fy.square()).sqrt().clamp_min(1.0 / max(h, w))
    scale = freq.pow(-decay)
    return scale / scale.square().mean().sqrt()


class FourierImage(nn.Module):
    """A batch of images parameterized by a decorrelated Fourier spectrum (Olah et al. 2017).

    forward():  y = irfft2(spectrum * spectrum_scale)   (per channel, orthonormal FFT)
                x = sigmoid(COLOR_SQRT @ y)             (per pixel)   -> (N, 3, H, W) in (0, 1)
    Low frequencies get large weights (`decay`), so a gradient step changes the image mostly at large
    scales, and the colour mixing makes independent parameter channels into correlated RGB colours.
    The parameter `spectrum` is real, `(N, 3, H, W // 2 + 1, 2)` (real and imaginary parts).

    init: images `(N, 3, H, W)` in [0, 1] to start from (the exact inverse is used, so
        `FourierImage(init=x)()` gives `x` back up to clamping to [1e-4, 1 - 1e-4]), or None for a small
        random spectrum of standard deviation `std`.
    generator: the `torch.Generator` that draws that spectrum (any device; drawn on its device, then
        moved); None uses torch's global generator.
    """

    def __init__(self, n: int = 1, size: int | Sequence[int] = 224, init: torch.Tensor | None = None,
                 std: float = 0.01, decay: float = 1.0, color: torch.Tensor | None = None,
                 device: torch.device | str | None = None, generator: torch.Generator | None = None):
        super().__init__()
        if init is not None:
            checks.images(init, "init")
            n, h, w = init.shape[0], init.shape[2], init.shape[3]
        else:
            h, w = _size2(size)
        self.size = (h, w)
        self.register_buffer("scale", spectrum_scale(h, w, decay))
        self.register_buffer("color", (COLOR_SQRT if color is None else color).float().clone())
        if init is not None:
            spectrum = self._spectrum_of(init.detach().float().to(self.scale.device))
        else:
            spectrum = std * draw("normal", (n, 3, h, w // 2 + 1, 2), generator,
                                   device="cpu" if generator is not None else None)
        self.spectrum = nn.Parameter(spectrum)
        if device is not None:
            self.to(device)

    def _spectrum_of(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.logit(x.clamp(1e-4, 1 - 1e-4))
        y = torch.einsum("ij,njhw->nihw", torch.linalg.inv(self.color), z)
        coeffs = torch.fft.rfft2(y, norm="ortho") / self.scale
        return torch.view_as_real(coeffs).contiguous()

    def forward(self) -> torch.Tensor:
        coeffs = torch.view_as_complex(self.spectrum) * self.scale
        y = torch.fft.irfft2(coeffs, s=self.size, norm="ortho")
        return torch.sigmoid(torch.einsum("ij,njhw->nihw", self.color, y))

    def project_(self) -> None:
        """Nothing to do: the sigmoid keeps the images in (0, 1)."""


def jitter(x: torch.Tensor, shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Roll the whole batch `(N, 3, H, W)` by one random offset in [-shift, shift] pixels along each
    axis; pixels leaving one side come back on the other. The offsets are drawn by `generator` (a
    `torch.Generator` on any device), or by torch's global generator if None."""
    if shift <= 0:
        return x
    where = generator.device if generator is not None else None
    dy, dx = torch.randint(-shift, shift + 1, (2,), generator=generator, device=where).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def random_transform(x: torch.Tensor, scale: tuple[float, float] = (0.9, 1.1), degrees: float = 10.0,
                     shift: int = 8, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random zoom (factor drawn from `scale`), rotation (uniform in +-`degrees`) and shift (uniform in
    +-`shift` pixels) per image of `x` `(N, 3, H, W)`, bilinear, borders reflected. Differentiable; the
    draws use `generator` (a `torch.Generator` on any device: drawn there, then moved to `x`'s device),
    or torch's global generator if None. Returns a tensor of the same shape. To use it in `visualize`
    with a generator: `transform=lambda x: random_transform(x, generator=g)`."""
    checks.images(x)
    n, _, h, w = x.shape
    dev, dt = x.device, x.dtype
    zoom = draw("uniform", (n,), generator, dev, dt, *scale)
    angle = draw("uniform", (n,), generator, dev, dt, -degrees, degrees) * (math.pi / 180.0)
    move = draw("uniform", (n, 2), generator, dev, dt, -shift, shift) * torch.tensor(
        [2.0 / w, 2.0 / h], device=dev, dtype=dt)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, move[:, 0]], 1), torch.stack([sin, cos, move[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def class_logit(model: nn.Module, target: int | Sequence[int] | torch.Tensor) -> Objective:
    """Objective: the logit of class `target` (an int for every image, or one per image) for images
    `(N, 3, H, W)` in [0, 1]; returns `(N,)`."""
    def score(x: torch.Tensor) -> torch.Tensor:
        logits = model(x)
        t = checks.targets(target, x.shape[0], logits.shape[1], logits.device)
        return logits.gather(1, t.view(-1, 1)).squeeze(1)

    return score


def channel_mean(model: nn.Module, layer: str | nn.Module, channel: int | Sequence[int] | torch.Tensor) -> Objective:
    """Objective: the mean activation of `channel` (one int, or one per image) of `layer` (a module or a
    dotted name) over all positions; returns `(N,)`. The forward pass stops at `layer`, so early layers
    are cheap; the hook is always removed."""
    module = get_layer(model, layer)

    def score(x: torch.Tensor) -> torch.Tensor:
        with capture(model, module, stop=True) as cap:
            model(x)
        act = cap.output
        ch = checks.targets(channel, x.shape[0], act.shape[1], act.device, name="channel")
        return act[torch.arange(act.shape[0], device=act.device), ch].flatten(1).mean(1)

    return score


def visualize(objective: Objective, image: PixelImage | FourierImage, steps: int, lr: float,
              optimizer: str = "ascent", decay: float = 0.0, shift: int = 0, blur_every: int = 0,
              blur_sigma: float = 0.5, transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
              callback: Callable[[int, torch.Tensor], None] | None = None,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Gradient ascent on `objective(image())`; returns the final images `(N, 3, H, W)` in [0, 1]
    (detached). `image` is updated in place.

    optimizer: "ascent" moves each image by `lr` times its gradient divided by the gradient's mean
        absolute value (so every step changes a pixel by about `lr`); "adam" uses Adam with rate `lr`.
    decay: L2 regularization as a pull towards grey after each step, x <- 0.5 + (1 - decay)(x - 0.5)
        (pixel images only).
    shift: jitter, a random roll of up to `shift` pixels before each forward pass.
    blur_every, blur_sigma: every `blur_every` steps blur the pixels (pixel images only).
    transform: applied to the images before the objective at each step (e.g. `random_transform`).
    callback: called as `callback(step, scores)` with the scores `(N,)` of that step.
    generator: the `torch.Generator` that draws the jitter offsets (None: torch's global generator).
        `transform` draws with its own; pass the same generator to it, e.g.
        `transform=lambda x: random_transform(x, generator=g)`.
    """
    if optimizer not in ("ascent", "adam"):
        raise ValueError(f"optimizer must be 'ascent' or 'adam'; got {optimizer!r}.")
    pixel_only = decay > 0 or blur_every > 0
    if pixel_only and not isinstance(image, PixelImage):
        raise ValueError("decay and blur act on pixels; use them with a PixelImage.")
    params = [p for p in image.parameters() if p.requires_grad]
    adam = torch.optim.Adam(params, lr=lr) if optimizer == "adam" else None
    for step in range(steps):
        with torch.enable_grad():  # works inside a caller's torch.no_grad() too
            x = image()
            if shift:
                x = jitter(x, shift, generator=generator)
            if transform is not None:
                x = transform(x)
            scores = objective(x)
            grads = torch.autograd.grad(scores.sum(), params)
        with torch.no_grad():
            if adam is not None:
                for p, g in zip(params, grads):
                    p.grad = -g  # Adam minimizes; we ascend
                adam.step()
            else:
                for p, g in zip(params, grads):
                    dims = tuple(range(1, g.ndim))
                    p.add_(lr * g / g.abs().mean(dim=dims, keepdim=True).clamp_min(1e-12))
            if decay > 0:
                image.pixels.sub_(0.5).mul_(1.0 - decay).add_(0.5)
            if blur_every > 0 and (step + 1) % blur_every == 0:
                image.pixels.copy_(gaussian_blur(image.pixels, blur_sigma))
            image.project_()
        if callback is not None:
            callback(step, scores.detach())
    with torch.no_grad():
        return image().detach().clone()
