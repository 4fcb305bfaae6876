"""Every helper that draws random numbers takes `generator=` (the developers' rule: no global reseeding;
a notebook passes a local `torch.Generator`). For each one: the same seed gives the same output, a
different seed a different one, and a call with a generator leaves torch's global generator untouched;
with no generator the global one still draws, as before."""
from __future__ import annotations

from typing import Callable

import pytest
import torch
from torch import nn

from helpers import attacks, optimize, style, synthetic


class _Tiny(nn.Module):
    """A small classifier on [0, 1] images: enough for PGD and `visualize`."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        # built on the meta device (torch's default initializers would draw from the global generator),
        # then filled from a local generator
        self.conv = nn.Conv2d(3, 4, 3, padding=1, device="meta")
        self.fc = nn.Linear(4, 5, device="meta")
        self.to_empty(device="cpu")
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


_X = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))


class _Extractor(nn.Module):
    """A stand-in for style's feature extractors: the image itself as the one layer `f`."""

    layers = ("f",)

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(3))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"f": x}


DRAWS: dict[str, Callable[[torch.Generator | None], torch.Tensor]] = {
    "PixelImage": lambda g: optimize.PixelImage(2, 8, generator=g)().detach(),
    "FourierImage": lambda g: optimize.FourierImage(2, 8, std=0.5, generator=g)().detach(),
    "jitter": lambda g: optimize.jitter(_X, 5, generator=g),
    "random_transform": lambda g: optimize.random_transform(_X, generator=g),
    "visualize (jitter)": lambda g: optimize.visualize(
        optimize.class_logit(_Tiny(), 1), optimize.PixelImage(init=_X), steps=3, lr=0.05, shift=4, generator=g),
    "pgd (random start)": lambda g: attacks.pgd(_Tiny(), _X, 1, 8 / 255, steps=2, generator=g),
    "style_transfer (noise start)": lambda g: style.style_transfer(
        _X, None, steps=1, extractor=_Extractor(), content_layers=("f",), tv_weight=0.0, optimizer="adam",
        init="noise", generator=g).image,
    "SmallCNN (initial weights)": lambda g: torch.cat(
        [p.flatten() for p in synthetic.SmallCNN(4, width=4, generator=g).parameters()]).detach(),
}


@pytest.mark.parametrize("name", list(DRAWS))
def test_a_local_generator_gives_reproducible_draws_and_leaves_the_global_one_alone(name):
    draw = DRAWS[name]
    before = torch.get_rng_state()
    a = draw(torch.Generator().manual_seed(3))
    assert torch.equal(torch.get_rng_state(), before), f"{name} drew from the global generator"
    b = draw(torch.Generator().manual_seed(3))
    c = draw(torch.Generator().manual_seed(4))
    assert torch.equal(a, b), f"{name}: the same seed gave different outputs"
    assert not torch.equal(a, c), f"{name}: different seeds gave the same output"


@pytest.mark.parametrize("name", list(DRAWS))
def test_without_a_generator_the_global_one_draws_as_before(name):
    draw = DRAWS[name]
    before = torch.get_rng_state()
    draw(None)
    assert not torch.equal(torch.get_rng_state(), before), f"{name} no longer draws from the global generator"


@pytest.mark.parametrize("name", list(DRAWS))
def test_a_generator_gives_the_same_stream_as_a_global_seed(name):
    """Passing `torch.Generator().manual_seed(k)` reproduces what `torch.manual_seed(k)` gave (on the
    CPU), so the notebooks' numbers do not move when they switch from a global seed to a local generator."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        old = DRAWS[name](None)
    new = DRAWS[name](torch.Generator().manual_seed(0))
    assert torch.equal(old, new)


def test_one_generator_for_the_start_and_the_steps_continues_one_stream():
    """As the notebooks use it: one generator draws a PixelImage's start, then the jitter offsets and the
    random transformations of every step, in the order the global generator drew them."""
    def run(g):
        image = optimize.PixelImage(2, 16, generator=g)
        return optimize.visualize(optimize.class_logit(_Tiny(), 1), image, steps=3, lr=0.05, shift=4, generator=g,
                                  transform=lambda x: optimize.random_transform(x, generator=g))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        old = run(None)
    assert torch.equal(old, run(torch.Generator().manual_seed(0)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_a_cpu_generator_works_for_gpu_tensors():
    x = _X.cuda()
    out = optimize.random_transform(x, generator=torch.Generator().manual_seed(0))
    image = optimize.PixelImage(1, 8, device="cuda", generator=torch.Generator().manual_seed(0))
    assert out.device.type == "cuda" and image.pixels.device.type == "cuda"
    adv = attacks.pgd(_Tiny().cuda(), x, 1, 8 / 255, steps=1, generator=torch.Generator().manual_seed(0))
    assert adv.device.type == "cuda"


def test_cuda_is_picked_with_exact_float32(monkeypatch):
    """On CUDA, TF32 (cuDNN's default for convolutions) is switched off and cuDNN is deterministic, so the
    exercises' checks against the helpers hold on a GPU as on the CPU."""
    from helpers import device as dev
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    monkeypatch.setattr(dev, "_DEVICE", None)
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    torch.backends.cudnn.allow_tf32 = True
    try:
        assert dev.get_device().type == "cuda"
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    finally:
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
         torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark) = saved
        dev._DEVICE = None
