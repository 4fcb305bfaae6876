"""A generated image set with known ground truth, a small CNN for it, and a short training loop.

`make_shapes` draws coloured shapes (circle, square, triangle, cross; varied size, colour, position and
tilt) on textured backgrounds, with each object's mask. With `shortcut=s` it also plants a small
black-and-white marker in a random corner, with a probability that depends on the class:
P(marker | shortcut class) = (1 + s) / 2 and P(marker | any other class) = (1 - s) / 2. At s = 0 the
marker is present on half of the images and says nothing about the label; at s = 1 it is present exactly
on the shortcut class. Everything is generated with tensor operations in about a second, and the same
seed gives the same images.

`SmallCNN` is a six-convolution network with global max pooling whose last block keeps a quarter of the
input resolution (12 x 12 cells at 48 px), so that Grad-CAM on it can tell a corner from the object.
`train` fits it on the CPU in about a minute at the `full` profile's sizes (2000 images of 48 px, 5 epochs);
`helpers.train.predict` and `helpers.train.accuracy` measure it.
"""
from __future__ import annotations

import contextlib
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from . import checks

CLASSES = ("circle", "square", "triangle", "cross")
OPACITY = (0.7, 1.0)  # range of the objects' opacity over the background texture (lower = harder)
GRAIN = 0.05  # standard deviation of the fine pixel noise


class ShapeSet(NamedTuple):
    """A generated set: images `(N, 3, S, S)` in [0, 1], labels `(N,)` long, object masks and marker masks
    `(N, S, S)` bool (the marker's pixels are not part of the object mask)."""

    images: torch.Tensor
    labels: torch.Tensor
    object_masks: torch.Tensor
    marker_masks: torch.Tensor

    def subset(self, index: torch.Tensor) -> "ShapeSet":
        """The images selected by `index` (a bool mask `(N,)` or indices)."""
        return ShapeSet(*(t[index] for t in self))

    @property
    def has_marker(self) -> torch.Tensor:
        """`(N,)` bool: the image carries the marker."""
        return self.marker_masks.flatten(1).any(dim=1)


def marker_size(size: int) -> int:
    """Side of the marker in pixels for images of side `size`: about a fifth of the side, even, at least 4
    (10 px at 48 px: about 4% of the image's area, less than the object's)."""
    return max(4, 2 * round(size / 10))


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Colours `(N, 3)` from hue, saturation, value in [0, 1], each `(N,)`."""
    k = (torch.tensor([5.0, 3.0, 1.0]) + h[:, None] * 6) % 6
    return v[:, None] - v[:, None] * s[:, None] * (torch.minimum(k, 4 - k).clamp(0, 1))


def _shape_masks(labels: torch.Tensor, u: torch.Tensor, v: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Bool masks `(N, S, S)` of each image's shape, in its own rotated coordinates u, v `(N, S, S)`
    (pixels from the centre) with radius r `(N, 1, 1)`. Shapes are sized to similar areas."""
    masks = torch.zeros(u.shape, dtype=torch.bool)
    for k, name in enumerate(CLASSES):
        i = labels == k
        uu, vv, rr = u[i], v[i], r[i]
        if name == "circle":
            m = uu ** 2 + vv ** 2 <= rr ** 2
        elif name == "square":
            m = torch.maximum(uu.abs(), vv.abs()) <= 0.85 * rr
        elif name == "triangle":  # equilateral, apex up; the three edges are at distance R/2 from the centre
            big_r = 1.3 * rr
            m = torch.ones_like(uu, dtype=torch.bool)
            for a in (math.pi / 2, math.pi / 2 + 2 * math.pi / 3, math.pi / 2 + 4 * math.pi / 3):
                m &= uu * math.cos(a) + vv * math.sin(a) <= big_r / 2
        else:  # cross: two bars of half-width r/3
            half = rr / 3
            m = ((uu.abs() <= half) & (vv.abs() <= rr)) | ((vv.abs() <= half) & (uu.abs() <= rr))
        masks[i] = m
    return masks


def _textures(n: int, size: int, g: torch.Generator) -> torch.Tensor:
    """Textured backgrounds `(N, 3, S, S)` in [0, 1]: a grating of random frequency and orientation mixed
    with smooth noise, between two muted random colours."""
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    theta = torch.rand(n, 1, 1, generator=g) * math.pi
    freq = (2 + 4 * torch.rand(n, 1, 1, generator=g)) / size  # 2 to 6 cycles across the image
    phase = torch.rand(n, 1, 1, generator=g) * 2 * math.pi
    grating = torch.sin(2 * math.pi * freq * (xx * torch.cos(theta) + yy * torch.sin(theta)) + phase)
    coarse = torch.rand(n, 1, max(2, size // 8), max(2, size // 8), generator=g)
    smooth = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[:, 0]
    t = (0.5 + 0.25 * grating + 0.5 * (smooth - 0.5)).clamp(0, 1)[:, None]  # (N, 1, S, S)
    c1 = 0.15 + 0.45 * torch.rand(n, 3, 1, 1, generator=g)
    c2 = 0.15 + 0.45 * torch.rand(n, 3, 1, 1, generator=g)
    return torch.lerp(c1, c2, t)


def make_shapes(n: int, size: int = 48, seed: int = 0, shortcut: float | None = None,
                shortcut_class: int = 0, opacity: tuple[float, float] = OPACITY, grain: float = GRAIN) -> ShapeSet:
    """Generate `n` images of side `size` px with ground truth (see the module docstring).

    Labels are balanced (n // 4 or one more per class) in random order. shortcut: None for no markers at
    all, or the strength s in [0, 1] of the marker's correlation with `shortcut_class`. opacity: range of
    the objects' opacity over the texture; grain: standard deviation of the pixel noise (both set how hard
    the shapes are). Deterministic for given arguments; generated on the CPU. The marker is drawn last from
    its own random numbers, so the same seed with `shortcut=None` gives the same images without markers.
    """
    if n < 1 or size < 16:
        raise ValueError(f"need n >= 1 images of size >= 16 px; got n={n}, size={size}.")
    if shortcut is not None and not 0.0 <= shortcut <= 1.0:
        raise ValueError(f"shortcut is a strength in [0, 1] (or None for no marker); got {shortcut}.")
    if not 0 <= shortcut_class < len(CLASSES):
        raise ValueError(f"shortcut_class must be a class index in [0, {len(CLASSES)}); got {shortcut_class}.")
    g = torch.Generator().manual_seed(seed)
    labels = (torch.arange(n) % len(CLASSES))[torch.randperm(n, generator=g)]
    noise = torch.randn(n, 1, size, size, generator=g)  # fine grain, the same in the three channels
    images = _textures(n, size, g)

    # the object: radius, centre (kept inside the image), tilt, colour
    r = size * (0.13 + 0.08 * torch.rand(n, generator=g))
    lo = 1.3 * r
    cy = lo + (size - 2 * lo) * torch.rand(n, generator=g)
    cx = lo + (size - 2 * lo) * torch.rand(n, generator=g)
    tilt = torch.rand(n, generator=g) * 2 * math.pi
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    dy = coords.view(1, -1, 1) - cy.view(-1, 1, 1)
    dx = coords.view(1, 1, -1) - cx.view(-1, 1, 1)
    cos, sin = torch.cos(tilt).view(-1, 1, 1), torch.sin(tilt).view(-1, 1, 1)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    objects = _shape_masks(labels, u, v, r.view(-1, 1, 1))
    colour = _hsv_to_rgb(torch.rand(n, generator=g), 0.6 + 0.4 * torch.rand(n, generator=g),
                         0.75 + 0.25 * torch.rand(n, generator=g))
    alpha = opacity[0] + (opacity[1] - opacity[0]) * torch.rand(n, 1, 1, 1, generator=g)
    images = torch.where(objects[:, None], torch.lerp(images, colour.view(n, 3, 1, 1), alpha), images)
    images = images.add_(noise, alpha=grain).clamp_(0, 1)

    # the marker: a 2 x 2 black-and-white checkerboard in a random corner
    markers = torch.zeros(n, size, size, dtype=torch.bool)
    p_marker = torch.rand(n, generator=g)  # always drawn, so the objects do not depend on `shortcut`
    corner = torch.randint(0, 4, (n,), generator=g)
    if shortcut is not None:
        prob = torch.where(labels == shortcut_class, (1 + shortcut) / 2, (1 - shortcut) / 2)
        on = p_marker < prob
        m = marker_size(size)
        top = torch.where(corner < 2, 0, size - m)
        left = torch.where(corner % 2 == 0, 0, size - m)
        iy = torch.arange(size).view(1, -1, 1) - top.view(-1, 1, 1)
        ix = torch.arange(size).view(1, 1, -1) - left.view(-1, 1, 1)
        inside = (iy >= 0) & (iy < m) & (ix >= 0) & (ix < m)
        markers = inside & on.view(-1, 1, 1)
        white = ((iy * 2 // m) + (ix * 2 // m)) % 2 == 0
        images = torch.where(markers[:, None], white[:, None].float().expand(-1, 3, -1, -1), images)
        objects &= ~markers
    return ShapeSet(images.contiguous(), labels, objects, markers)


class SmallCNN(nn.Module):
    """A small classifier for `make_shapes` images `(N, 3, S, S)` in [0, 1] -> logits `(N, classes)`;
    a course model (`helpers.contract.CourseModel`: `labels`, `num_classes`, `target_layer_name`, ...).

    Three blocks of two 3x3 convolutions (batch norm, ReLU) with max-pooling after the first two, so the
    last block (`features.block3`, the default Grad-CAM layer) keeps S/4 x S/4 cells (12 x 12 at 48 px);
    then global *max* pooling and one linear layer. Max pooling makes each feature count where it is
    strongest, not everywhere it is present: the network learns faster, and its Grad-CAM maps stay
    compact enough to tell a corner marker (2 x 2 cells) from the object.
    """

    target_layer_name = "features.block3"
    multilabel = False

    def __init__(self, num_classes: int = len(CLASSES), width: int = 16, generator: torch.Generator | None = None):
        """generator: a CPU `torch.Generator` for the initial weights (PyTorch's default initialization, drawn
        in the same order, so a generator seeded with k gives what seeding the global generator with k would);
        None draws from torch's global generator, as `nn.Module` does."""
        super().__init__()

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                                 nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())

        # with a generator, the layers' own draws from the global generator are undone (fork_rng restores its
        # state) and the weights are drawn again from `generator` below
        with torch.random.fork_rng(devices=[]) if generator is not None else contextlib.nullcontext():
            self.features = nn.Sequential()
            self.features.add_module("block1", block(3, width))
            self.features.add_module("pool1", nn.MaxPool2d(2))
            self.features.add_module("block2", block(width, 2 * width))
            self.features.add_module("pool2", nn.MaxPool2d(2))
            self.features.add_module("block3", block(2 * width, 4 * width))
            self.head = nn.Linear(4 * width, num_classes)
        self.labels = list(CLASSES[:num_classes]) if num_classes <= len(CLASSES) else [str(i) for i in range(num_classes)]
        # the network sees (x - mean) / std = x - 0.5; not saved in the state dict
        self.register_buffer("mean", torch.full((1, 3, 1, 1), 0.5), persistent=False)
        self.register_buffer("std", torch.ones(1, 3, 1, 1), persistent=False)
        if generator is not None:
            self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator) -> None:
        """Draw the convolutions' and the linear layer's weights (and biases) again from `generator`, as their
        own `reset_parameters` would from the global generator (Kaiming-uniform with a = sqrt(5)); batch norm
        starts at weight 1 and bias 0."""
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                if module.bias is not None:
                    bound = 1.0 / math.sqrt(module.weight[0].numel())
                    nn.init.uniform_(module.bias, -bound, bound, generator=generator)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def net(self) -> nn.Module:
        """The model itself: its layer names (`features.block3`) need no prefix (see `CourseModel`)."""
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features((x - self.mean) / self.std).amax(dim=(2, 3)))


def train(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, epochs: int, batch_size: int = 64,
          lr: float = 3e-3, seed: int = 0) -> list[float]:
    """Fit `model` with Adam and a one-cycle learning rate on images `(N, 3, S, S)` and labels `(N,)`, on
    the model's device; the model is left in eval mode with frozen parameters. Returns the mean loss of
    each epoch. Deterministic for a given seed (shuffling and initialization are seeded by the caller's
    model construction and `seed`)."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1; got {epochs}.")
    checks.images(images, "images")
    if isinstance(labels, torch.Tensor) and labels.ndim == 1 and images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels; give one label per image.")
    labels = checks.targets(labels, images.shape[0], checks.output_classes(model, images), name="labels")
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.requires_grad_(True)
    steps_per_epoch = math.ceil(images.shape[0] / batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    history = []
    model.train()
    try:
        for _ in range(epochs):
            order = torch.randperm(images.shape[0], generator=g)
            total = 0.0
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                xb, yb = images[idx].to(device), labels[idx].to(device)
                loss = F.cross_entropy(model(xb), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
            history.append(total / images.shape[0])
    finally:
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
    return history
