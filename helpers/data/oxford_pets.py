"""Oxford-IIIT Pet (Parkhi et al. 2012, CVPR) read from its official layout, as a cat/dog task with trimaps.

Layout under `<root>/oxford-iiit-pet/`: `images/<name>.jpg`; `annotations/list.txt` (comment lines
starting with `#`, then `<name> <class id 1-37> <species 1=cat 2=dog> <breed id>`); `annotations/trainval.txt`
and `annotations/test.txt` (the official split, same columns); `annotations/trimaps/<name>.png`, one 8-bit
channel with 1 = pet, 2 = background, 3 = border (the uncertain outline of the pet). `pets_splits` gives
deterministic subsets as torch data sets of images `(3, S, S)` in [0, 1]; `PetsDataset.pet_masks` the
ground truth the case study scores explanations against.
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

PETS_FOLDER = "oxford-iiit-pet"
PET_CLASSES = ("cat", "dog")  # label 0 and 1 (species 1 and 2 in list.txt)
TRIMAP_PET, TRIMAP_BACKGROUND, TRIMAP_BORDER = 1, 2, 3


def pets_ready(base: str | os.PathLike) -> bool:
    """Whether `base` holds the images, the three lists and the trimaps of the official layout."""
    return all((Path(base) / p).exists() for p in ("images", "annotations/list.txt", "annotations/trainval.txt",
                                                    "annotations/test.txt", "annotations/trimaps"))


def read_pet_list(base: str | os.PathLike) -> dict[str, int]:
    """`annotations/list.txt` of Oxford-IIIT Pet under `base`: image name -> species (1 cat, 2 dog)."""
    species = {}
    path = Path(base) / "annotations" / "list.txt"
    for ln in text_lines(path):
        if ln.startswith("#"):
            continue
        parts = ln.split()
        if len(parts) != 4 or parts[2] not in ("1", "2"):
            raise ValueError(f"{path}: expected '<name> <class> <species 1|2> <breed>', got {ln!r}.")
        species[parts[0]] = int(parts[2])
    return species


def read_pet_split(base: str | os.PathLike, split: str) -> list[str]:
    """Image names of the official split `"trainval"` or `"test"` (`annotations/<split>.txt`), in file order."""
    if split not in ("trainval", "test"):
        raise ValueError(f"Oxford-IIIT Pet has the splits 'trainval' and 'test'; got {split!r}.")
    return [ln.split()[0] for ln in text_lines(Path(base) / "annotations" / f"{split}.txt") if not ln.startswith("#")]


def read_trimap(path: str | os.PathLike) -> np.ndarray:
    """A trimap PNG as uint8 `(H, W)` with 1 = pet, 2 = background, 3 = border."""
    with Image.open(path) as img:
        a = np.asarray(img)
    if a.ndim == 3:  # saved as RGB by some tool: all channels hold the same value
        a = a[..., 0]
    values = set(np.unique(a).tolist())
    if not values <= {TRIMAP_PET, TRIMAP_BACKGROUND, TRIMAP_BORDER}:
        raise ValueError(f"{path}: a trimap holds only 1, 2 and 3; found {sorted(values)[:8]}.")
    return a.astype(np.uint8)


class PetsDataset(Dataset):
    """Oxford-IIIT Pet images as cat (0) / dog (1): item `i` is `(image (3, S, S) in [0, 1], label)`.

    Images are resized to `S x S` without cropping (the aspect ratio changes a little, but the whole pet and
    its trimap stay in view). `labels` `(N,)` LongTensor; `names` the image names; `trimaps(idx)` and
    `pet_masks(idx)` the resized ground truth.
    """

    classes = PET_CLASSES

    def __init__(self, base: str | os.PathLike, names: Sequence[str], species: Sequence[int], size: int):
        self.base = Path(base)
        self.names = list(names)
        self.labels = torch.tensor([s - 1 for s in species], dtype=torch.long)
        self.size = int(size)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = read_rgb(self.base / "images" / f"{self.names[i]}.jpg").resize((self.size, self.size), Image.BICUBIC)
        return image_tensor(img), self.labels[i]

    def images(self, idx: Sequence[int] | None = None) -> torch.Tensor:
        """Images `(n, 3, S, S)` in [0, 1] (all when `idx` is None)."""
        idx = range(len(self)) if idx is None else idx
        return torch.stack([self[i][0] for i in idx])

    def trimaps(self, idx: Sequence[int] | None = None) -> torch.Tensor:
        """Trimaps `(n, S, S)` uint8 (1 pet, 2 background, 3 border), resized with nearest neighbours."""
        idx = range(len(self)) if idx is None else idx
        out = []
        for i in idx:
            t = read_trimap(self.base / "annotations" / "trimaps" / f"{self.names[i]}.png")
            out.append(np.asarray(Image.fromarray(t).resize((self.size, self.size), Image.NEAREST)))
        return torch.from_numpy(np.stack(out))

    def pet_masks(self, idx: Sequence[int] | None = None) -> torch.Tensor:
        """Bool masks `(n, S, S)`: True on the pet and its border (everything but background)."""
        return self.trimaps(idx) != TRIMAP_BACKGROUND


def pets_splits(base: str | os.PathLike, size: int, n_train: int | None, n_val: int | None,
                n_test: int | None, seed: int = 0) -> dict[str, PetsDataset]:
    """Deterministic random subsets `{"train", "val", "test"}` of Oxford-IIIT Pet under `base` (the folder
    holding `images/` and `annotations/`). train and val are disjoint parts of the official trainval split,
    test comes from the official test split; `None` takes all."""
    species = read_pet_list(base)
    rng = np.random.default_rng(seed)
    trainval, test = read_pet_split(base, "trainval"), read_pet_split(base, "test")
    missing = [n for n in trainval + test if n not in species]
    if missing:
        raise ValueError(f"{len(missing)} images of the split files are not in list.txt (e.g. {missing[0]}); "
                         "the annotations are incomplete: prepare the data again.")
    order = rng.permutation(len(trainval))
    n_tr = len(trainval) if n_train is None else min(n_train, len(trainval))
    n_va = len(trainval) - n_tr if n_val is None else min(n_val, len(trainval) - n_tr)
    pick = {"train": [trainval[i] for i in order[:n_tr]], "val": [trainval[i] for i in order[n_tr:n_tr + n_va]],
            "test": [test[i] for i in seeded_subset(len(test), n_test, rng)]}
    return {k: PetsDataset(base, v, [species[n] for n in v], size) for k, v in pick.items()}
