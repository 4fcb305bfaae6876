"""Device selection: CUDA, then Apple MPS, then the CPU, picked once per process.

`COURSE_DEVICE=cpu` (or `cuda`, `mps`) overrides the choice.
"""
from __future__ import annotations

import os

import torch

_DEVICE: torch.device | None = None


def get_device() -> torch.device:
    """The device every notebook uses: `$COURSE_DEVICE` if set, else CUDA, else MPS, else CPU."""
    global _DEVICE
    if _DEVICE is None:
        wanted = os.environ.get("COURSE_DEVICE", "").strip().lower()
        if wanted:
            _DEVICE = torch.device(wanted)
        elif torch.cuda.is_available():
            _DEVICE = torch.device("cuda")
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            _DEVICE = torch.device("mps")
        else:
            _DEVICE = torch.device("cpu")
    return _DEVICE


def describe_device(device: torch.device) -> str:
    """A short human name, e.g. `cuda (Tesla T4)` or `cpu (2 threads)`."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type
