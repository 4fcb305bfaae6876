"""Images in and out: loading (path, URL, named sample), preprocessing to tensors and back.

`load_image` always returns an 8-bit RGB `PIL.Image`: grayscale, RGBA (composited on white), palette,
16-bit and CMYK files are converted, and EXIF orientation is applied. A missing or unreadable file raises
an error that names it. `preprocess` turns images into a batch `(N, 3, S, S)` in [0, 1] (resize the
short side, centre-crop); `to_numpy` is the exact inverse of the tensor conversion, for plotting.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from . import checks
from .config import data_dir
from .data.files import image_tensor

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]
RESIZE_RATIO = 256 / 224  # short side before the centre crop, relative to the crop (torchvision's rule)


@dataclass(frozen=True)
class Sample:
    """A photo that ships with an installed package, so it works offline."""

    name: str
    load: Callable[[], np.ndarray | Image.Image]
    about: str
    licence: str


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        return getattr(data, name)()

    return load


def _grace_hopper() -> Image.Image:
    import matplotlib.cbook

    return Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg"))


def _side_by_side(left: str, right: str) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        a, b = load_image(left), load_image(right)
        h = min(a.height, b.height)
        a = a.resize((round(a.width * h / a.height), h), Image.BICUBIC)
        b = b.resize((round(b.width * h / b.height), h), Image.BICUBIC)
        canvas = Image.new("RGB", (a.width + b.width, h))
        canvas.paste(a, (0, 0))
        canvas.paste(b, (a.width, 0))
        return canvas

    return load


SAMPLES: dict[str, Sample] = {s.name: s for s in [
    Sample("cat", _skimage("chelsea"), "Chelsea the cat (scikit-image)", "CC0, Stefan van der Walt"),
    Sample("coffee", _skimage("coffee"), "a cup of coffee (scikit-image)", "CC0, Rachel Michetti"),
    Sample("astronaut", _skimage("astronaut"), "astronaut Eileen Collins (scikit-image)", "no known copyright restrictions, NASA"),
    Sample("rocket", _skimage("rocket"), "a rocket on its launch pad (scikit-image)", "public domain, SpaceX"),
    Sample("grace_hopper", _grace_hopper, "Rear Admiral Grace Hopper (matplotlib)", "public domain, US Navy"),
    Sample("hubble", _skimage("hubble_deep_field"), "Hubble deep field (scikit-image)", "public domain, NASA"),
    Sample("brick", _skimage("brick"), "brick wall texture (scikit-image, grayscale)", "CC0, CC0Textures"),
    Sample("grass", _skimage("grass"), "grass texture (scikit-image, grayscale)", "CC0, linolafett"),
    Sample("gravel", _skimage("gravel"), "gravel texture (scikit-image, grayscale)", "CC0, CC0Textures"),
    Sample("cat_and_coffee", _side_by_side("cat", "coffee"),
           "the cat and the coffee side by side: two classes in one photo", "as its two parts"),
]}
PHOTOS = ("cat", "coffee", "astronaut", "rocket", "grace_hopper")  # the everyday sample photos


def _to_rgb(img: Image.Image) -> Image.Image:
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def _from_array(arr: np.ndarray) -> Image.Image:
    arr = np.asarray(arr)
    if arr.dtype == np.uint16:
        arr = (arr.astype(np.float64) / 65535.0 * 255.0 + 0.5).astype(np.uint8)
    elif arr.dtype != np.uint8:
        if not np.isfinite(arr).all():
            raise ValueError("the image array holds NaN or infinite values; replace them first "
                             "(np.nan_to_num(arr)).")
        if arr.min() < 0 or arr.max() > 1:
            raise ValueError(f"a float image array must hold values in [0, 1]; got [{arr.min()}, {arr.max()}]. "
                             "For 0-255 pixels divide by 255, or convert to uint8 (arr.astype(np.uint8)).")
        arr = (arr * 255.0 + 0.5).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ValueError(f"an image array must be (H, W), (H, W, 3) or (H, W, 4); got shape {arr.shape}.")
    return Image.fromarray(arr)


def _url_cache(url: str) -> Path:
    suffix = Path(url.split("?")[0]).suffix[:5] or ".img"
    return data_dir() / "images" / (hashlib.sha256(url.encode()).hexdigest()[:16] + suffix)


def load_image(source: ImageLike) -> Image.Image:
    """An 8-bit RGB image from a file path, an http(s) URL (cached in `data/images`), a sample name (see
    `SAMPLES`), a `PIL.Image` or an array `(H, W)`, `(H, W, 3)` or `(H, W, 4)` (uint8, uint16 or floats in
    [0, 1]).

    Raises FileNotFoundError (no such file or sample) or ValueError (not a readable image), naming it.
    """
    if isinstance(source, Image.Image):
        return _to_rgb(source)
    if isinstance(source, np.ndarray):
        return _to_rgb(_from_array(source))
    text = str(source)
    if text in SAMPLES:
        loaded = SAMPLES[text].load()
        return load_image(loaded)
    if text.startswith(("http://", "https://")):
        from .data.download import download

        path = download(text, _url_cache(text))
    else:
        path = Path(text).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"no image file at {path}. Check the path, or use a sample photo: {', '.join(SAMPLES)}.")
    try:
        with Image.open(path) as img:
            img.load()
            return _to_rgb(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(
            f"{path} is not a readable image ({exc}). It may be truncated or not an image at all: "
            f"download or export it again (PNG or JPEG).") from exc


def preprocess(images: ImageLike | Sequence[ImageLike], size: int | None) -> torch.Tensor:
    """A batch `(N, 3, size, size)`, float32 in [0, 1], on the CPU.

    Each image's short side is resized (bicubic, antialiased) to `size * 256 / 224`, then the centre
    `size` x `size` crop is kept, as torchvision's ImageNet evaluation does. `size=None` keeps the
    pixels as they are (all images must then share one size); `to_numpy` inverts that exactly.
    """
    if isinstance(images, (str, os.PathLike, Image.Image, np.ndarray)):
        images = [images]
    tensors = []
    for item in images:
        img = load_image(item)
        if size is not None:
            short = round(size * RESIZE_RATIO)
            w, h = img.size
            scale = short / min(w, h)
            img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC,
                             reducing_gap=None)
            left, top = (img.width - size) // 2, (img.height - size) // 2
            img = img.crop((left, top, left + size, top + size))
        tensors.append(image_tensor(img))
    sizes = {t.shape for t in tensors}
    if len(sizes) > 1:
        raise ValueError(f"images of different sizes {sorted(sizes)} cannot form a batch; pass a size.")
    return torch.stack(tensors)


def load_batch(names: Sequence[ImageLike], size: int) -> torch.Tensor:
    """`preprocess` of several images at once: `(N, 3, size, size)` in [0, 1]."""
    return preprocess(list(names), size)


def to_numpy(x: torch.Tensor) -> np.ndarray:
    """Images `(N, 3, H, W)` or `(3, H, W)` in [0, 1] to uint8 arrays `(N, H, W, 3)` or `(H, W, 3)` for
    plotting and saving. Exact inverse of `preprocess(..., None)`. Images are checked as everywhere
    (`helpers.checks.images`: 0-255 values or NaN raise ValueError); rounding errors just outside [0, 1]
    are clipped."""
    checks.images(x, single=True)
    arr = x.detach().float().cpu().clamp(0, 1).mul(255.0).round().to(torch.uint8)
    return arr.movedim(-3, -1).numpy()
