"""Every helper that draws random numbers takes `generator=` (the developers' rule: no global reseeding;
a notebook passes a local `torch.Generator`). For each one: the same seed gives the same output, a
different seed a different one, and a call with a generator leaves torch's global generator untouched;
with no generator the global one still draws, as before."""
from __future__ import annotations

from typing import Callable

import pytest
import torch
from torch import nn

import helpers
from helpers import attacks, imputation, metrics, optimize, saliency, style, synthetic


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
    "smoothgrad": lambda g: saliency.smoothgrad(_Tiny(), _X, 1, samples=2, generator=g),
    "linear_imputation (noise)": lambda g: imputation.linear_imputation(
        _X, torch.ones(2, 16, 16, dtype=torch.bool).triu(), noise=0.05, generator=g),
    "imputed_deletion_curve (noise)": lambda g: metrics.imputed_deletion_curve(
        _Tiny(), _X, _X.mean(dim=1), 1, steps=2, noise=0.5, generator=g),
}
# The public functions that draw random numbers at call time, by the name DRAWS lists them under (the test
# below finds every drawing function in the source and fails on one that is not here).
DRAWING = {"PixelImage": "PixelImage", "FourierImage": "FourierImage", "jitter": "jitter",
           "random_transform": "random_transform", "visualize": "visualize (jitter)", "pgd": "pgd (random start)",
           "style_transfer": "style_transfer (noise start)", "SmallCNN": "SmallCNN (initial weights)",
           "smoothgrad": "smoothgrad", "linear_imputation": "linear_imputation (noise)",
           "imputed_deletion_curve": "imputed_deletion_curve (noise)"}


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


def _public_signatures():
    import importlib
    import inspect
    import pkgutil

    for info in pkgutil.walk_packages(helpers.__path__, "helpers."):
        mod = importlib.import_module(info.name)
        for name, obj in vars(mod).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                try:
                    yield f"{info.name}.{name}", obj, inspect.signature(obj)
                except (TypeError, ValueError):
                    continue


def test_random_numbers_come_from_generator_or_seed_with_one_meaning_each():
    """`generator`: a torch.Generator, None meaning torch's global one; `seed`: an int that makes the result
    the same on every run, the global generator untouched; `rng`: a NumPy Generator (the drawn data sets),
    always given. No other spelling."""
    bad = []
    for qualname, _, sig in _public_signatures():
        for p in sig.parameters.values():
            if p.name == "generator" and p.default is not None and p.default is not p.empty:
                bad.append(f"{qualname}: generator defaults to {p.default!r}, not None")
            if p.name == "seed" and p.default is not p.empty and not isinstance(p.default, int):
                bad.append(f"{qualname}: seed defaults to {p.default!r}, not an int")
            if p.name == "rng" and ("np.random.Generator" not in str(p.annotation) or p.default is not p.empty):
                bad.append(f"{qualname}: rng must be a NumPy Generator, always given")
            if p.name in ("generator_seed", "random_seed", "random_state", "gen"):
                bad.append(f"{qualname}: parameter {p.name!r} (call it generator or seed)")
    assert not bad, bad


FIXED_DRAWS = {  # draws from a fixed local seed inside, the same every call: nothing to pass
    "helpers.heads.new_head": "the new layer's initial weights",
    "helpers.heads.split_model": "a random probe input that checks the split",
    "helpers.device.draw": "the one drawing helper itself",
}


def test_every_function_that_draws_is_listed():
    """A public function whose own code draws (torch.rand*, normal_/uniform_, helpers.device.draw) without a
    `seed` parameter must be in DRAWING, and so tested above for its generator."""
    import inspect
    import re

    draws = re.compile(r"\b(torch\.(rand|randn|randint|randperm|normal|bernoulli|multinomial)\(|\.(normal_|uniform_)\(|"
                       r"(?<![\w.])draw\()")
    missing = []
    for qualname, obj, sig in _public_signatures():
        try:
            src = inspect.getsource(obj)
        except (OSError, TypeError):
            continue
        if "seed" in sig.parameters or not draws.search(src):
            continue
        if qualname.rsplit(".", 1)[-1] not in DRAWING and qualname not in FIXED_DRAWS:
            missing.append(qualname)
    assert not missing, f"functions that draw random numbers but are not in DRAWING/DRAWS: {missing}"
    assert set(DRAWING.values()) == set(DRAWS)
