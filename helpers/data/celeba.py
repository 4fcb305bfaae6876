"""CelebA (Liu et al. 2015, ICCV), aligned and cropped faces, read from its official layout.

Layout under `<root>/celeba/`: `img_align_celeba/<000001>.jpg` (178 x 218 pixels); `list_attr_celeba.txt`
(a count line, a line of 40 attribute names, then `<file> <40 values of 1 or -1>`);
`list_landmarks_align_celeba.txt` (a count line, a header line, then `<file>` and the x y pixel coordinates
of lefteye, righteye, nose, leftmouth, rightmouth); `list_eval_partition.txt` (`<file> <0 train | 1 val |
2 test>`). `celeba_splits` gives deterministic subsets as torch data sets of images `(3, S, S)` in [0, 1]
with their attribute labels and landmarks.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .files import image_tensor, read_rgb, seeded_subset, text_lines

CELEBA_FOLDER = "celeba"
CELEBA_LISTS = ("list_attr_celeba.txt", "list_landmarks_align_celeba.txt", "list_eval_partition.txt")
CELEBA_SIZE = (178, 218)  # width, height of an aligned image, pixels
CELEBA_SPLITS = {"train": 0, "val": 1, "test": 2}
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby",
    "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male",
    "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose",
    "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair",
    "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)


def celeba_ready(base: str | os.PathLike) -> bool:
    """Whether `base` holds the unzipped `img_align_celeba/` folder and the three lists."""
    return (Path(base) / "img_align_celeba").is_dir() and all((Path(base) / f).is_file() for f in CELEBA_LISTS)


def read_celeba_attributes(base: str | os.PathLike) -> tuple[list[str], list[str], torch.Tensor]:
    """`list_attr_celeba.txt`: (attribute names (40), file names (N), values `(N, 40)` bool, True for 1)."""
    path = Path(base) / "list_attr_celeba.txt"
    lines = text_lines(path)
    count, names = int(lines[0].split()[0]), lines[1].split()
    rows = [ln.split() for ln in lines[2:]]
    if len(rows) != count or any(len(r) != len(names) + 1 for r in rows):
        raise ValueError(f"{path}: expected {count} rows of a file name and {len(names)} values; the file is "
                         "truncated or not the official one.")
    values = np.array([r[1:] for r in rows], dtype=np.int8)
    if not np.isin(values, (-1, 1)).all():
        raise ValueError(f"{path}: attribute values must be 1 or -1.")
    return names, [r[0] for r in rows], torch.from_numpy(values == 1)


def read_celeba_landmarks(base: str | os.PathLike) -> tuple[list[str], torch.Tensor]:
    """`list_landmarks_align_celeba.txt`: (file names, `(N, 5, 2)` float x, y pixel coordinates of
    lefteye, righteye, nose, leftmouth, rightmouth in the 178 x 218 aligned image)."""
    path = Path(base) / "list_landmarks_align_celeba.txt"
    lines = text_lines(path)
    count = int(lines[0].split()[0])
    rows = [ln.split() for ln in lines[2:]]
    if len(rows) != count or any(len(r) != 11 for r in rows):
        raise ValueError(f"{path}: expected {count} rows of a file name and 10 coordinates.")
    xy = np.array([r[1:] for r in rows], dtype=np.float32).reshape(count, 5, 2)
    return [r[0] for r in rows], torch.from_numpy(xy)


def read_celeba_partition(base: str | os.PathLike) -> dict[str, int]:
    """`list_eval_partition.txt`: file name -> 0 (train), 1 (val) or 2 (test)."""
    out = {}
    for ln in text_lines(Path(base) / "list_eval_partition.txt"):
        name, part = ln.split()
        out[name] = int(part)
    return out


class CelebADataset(Dataset):
    """CelebA faces: item `i` is `(image (3, S, S) in [0, 1], labels (K,) float 0/1 for `attributes`)`.

    Each aligned 178 x 218 image is cropped to its central 178 x 178 square (20 rows off the top and the
    bottom; the face stays whole) and resized to `S x S`; `landmarks` `(N, 5, 2)` are mapped the same way,
    in pixels of the resized image. `all_attributes` `(N, 40)` bool holds every label.
    """

    def __init__(self, base: str | os.PathLike, files: Sequence[str], all_attributes: torch.Tensor,
                 landmarks: torch.Tensor, attributes: Sequence[str], size: int):
        unknown = [a for a in attributes if a not in CELEBA_ATTRIBUTES]
        if unknown:
            raise ValueError(f"unknown CelebA attributes {unknown}; choose among {', '.join(CELEBA_ATTRIBUTES)}.")
        self.base = Path(base)
        self.files = list(files)
        self.size = int(size)
        self.attributes = list(attributes)
        self.all_attributes = all_attributes
        cols = [CELEBA_ATTRIBUTES.index(a) for a in attributes]
        self.labels = all_attributes[:, cols].float()
        w, h = CELEBA_SIZE
        self.top = (h - w) // 2
        scale = self.size / w
        self.landmarks = (landmarks - torch.tensor([0.0, self.top])) * scale

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = read_rgb(self.base / "img_align_celeba" / self.files[i])
        w, _ = CELEBA_SIZE
        img = img.crop((0, self.top, w, self.top + w)).resize((self.size, self.size), Image.BICUBIC)
        return image_tensor(img), self.labels[i]

    def images(self, idx: Sequence[int] | None = None) -> torch.Tensor:
        """Images `(n, 3, S, S)` in [0, 1] (all when `idx` is None)."""
        idx = range(len(self)) if idx is None else idx
        return torch.stack([self[i][0] for i in idx])

    def attribute(self, name: str) -> torch.Tensor:
        """One attribute for every image, `(N,)` bool (any of the 40, trained on or not)."""
        return self.all_attributes[:, CELEBA_ATTRIBUTES.index(name)]


def celeba_splits(base: str | os.PathLike, size: int, attributes: Sequence[str], n_train: int | None,
                  n_val: int | None, n_test: int | None, seed: int = 0) -> dict[str, CelebADataset]:
    """Deterministic random subsets `{"train", "val", "test"}` of CelebA's official partition under `base`
    (the folder holding `img_align_celeba/` and the three lists); `None` takes a whole split."""
    names, files, attrs = read_celeba_attributes(base)
    if tuple(names) != CELEBA_ATTRIBUTES:
        raise ValueError(f"{base}/list_attr_celeba.txt does not list CelebA's 40 attributes in their usual order.")
    lm_files, landmarks = read_celeba_landmarks(base)
    if lm_files != files:
        raise ValueError("the attribute and landmark files list different images; prepare the data again.")
    part = read_celeba_partition(base)
    split_of = np.array([part.get(f, -1) for f in files])
    rng = np.random.default_rng(seed)
    out = {}
    for key, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        members = np.flatnonzero(split_of == CELEBA_SPLITS[key])
        idx = members[seeded_subset(len(members), n, rng)]
        out[key] = CelebADataset(base, [files[i] for i in idx], attrs[idx], landmarks[idx], attributes, size)
    return out
