"""Device selection: CUDA, then Apple MPS, then the CPU, picked once per process; and random draws on a
device from a local generator (`draw`).

`COURSE_DEVICE=cpu` (or `cuda`, `mps`) overrides the choice. On CUDA the course trades a little speed for
float32 arithmetic that repeats: TF32 is off for convolutions and matrix products (cuDNN uses TF32 for
convolutions by default, about 1e-3 relative error, which made the exercises' checks against the helpers fail
on an H200) and cuDNN picks deterministic algorithms.
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
        if _DEVICE.type == "cuda":
            exact_cuda()
    return _DEVICE


def exact_cuda() -> None:
    """Full float32 precision and deterministic cuDNN algorithms for every later CUDA computation."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def describe_device(device: torch.device) -> str:
    """A short human name, e.g. `cuda (Tesla T4)` or `cpu (2 threads)`."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def draw(kind: str, shape: tuple[int, ...] | torch.Size, generator: torch.Generator | None,
         device: torch.device | str | None = None, dtype: torch.dtype | None = None, low: float = 0.0,
         high: float = 1.0) -> torch.Tensor:
    """Random numbers of `shape` on `device`: "normal" (standard normal) or "uniform" (in [low, high)).
    With a `generator` they are drawn on the generator's device (so a CPU generator serves a GPU tensor,
    and a generator seeded with k gives what seeding the global generator with k would on that device),
    then moved; with None, torch's global generator draws on `device`."""
    if kind not in ("normal", "uniform"):
        raise ValueError(f"kind must be 'normal' or 'uniform'; got {kind!r}.")
    where = generator.device if generator is not None else device
    if kind == "normal":
        out = torch.randn(tuple(shape), generator=generator, device=where, dtype=dtype)
    else:
        out = torch.empty(tuple(shape), device=where, dtype=dtype).uniform_(low, high, generator=generator)
    return out.to(device) if device is not None else out
