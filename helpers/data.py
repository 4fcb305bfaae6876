"""The case study's data sets (notebook 06), read from their official on-disk formats.

- Oxford-IIIT Pet (Parkhi et al. 2012) as a binary cat/dog task with its trimaps. Layout under
  `<root>/oxford-iiit-pet/`: `images/<name>.jpg`; `annotations/list.txt` (comment lines starting with `#`,
  then `<name> <class id 1-37> <species 1=cat 2=dog> <breed id>`); `annotations/trainval.txt` and
  `annotations/test.txt` (the official split, same columns); `annotations/trimaps/<name>.png`, one 8-bit
  channel with 1 = pet, 2 = background, 3 = border (the uncertain outline of the pet).
- CelebA (Liu et al. 2015), aligned and cropped faces. Layout under `<root>/celeba/`:
  `img_align_celeba/<000001>.jpg` (178 x 218 pixels); `list_attr_celeba.txt` (a count line, a line of 40
  attribute names, then `<file> <40 values of 1 or -1>`); `list_landmarks_align_celeba.txt` (a count line,
  a header line, then `<file>` and the x y pixel coordinates of lefteye, righteye, nose, leftmouth,
  rightmouth); `list_eval_partition.txt` (`<file> <0 train | 1 val | 2 test>`).

`pets_splits` / `celeba_splits` give deterministic subsets (sizes from `cfg.case_*`) as torch data sets of
images `(3, S, S)` in [0, 1]; `pet_masks` and `landmark_mask` give the ground truth the case study scores
explanations against. `prepare_pets` / `prepare_celeba` find the data, download it in `full` (with a
progress bar, checksums and manual instructions when the host refuses), or write look-alikes in the same
formats in `offline` and `smoke` (`make_fake_pets`, `make_fake_celeba`: drawn pets and faces, as many as
the profile's subsets need), so the same parsing code runs. Numbers measured on the look-alikes describe
the look-alikes only.
"""
from __future__ import annotations

import math
import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter
from torch.utils.data import Dataset

from .config import data_dir, get_profile
from .download import DownloadError, download

# ---------------------------------------------------------------------------------------- constants

PETS_FOLDER = "oxford-iiit-pet"
PETS_PAGE = "https://www.robots.ox.ac.uk/~vgg/data/pets/"
# (archive, URL, MD5): the official files, with the MD5 sums that torchvision's OxfordIIITPet checks.
PETS_ARCHIVES = (
    ("images.tar.gz", "https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz",
     "5c4f3ee8e5d25df40f4fd59a7f44e54c"),
    ("annotations.tar.gz", "https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz",
     "95a8c909bbe2e81eed6a22bccdf3f68f"),
)
PET_CLASSES = ("cat", "dog")  # label 0 and 1 (species 1 and 2 in list.txt)
TRIMAP_PET, TRIMAP_BACKGROUND, TRIMAP_BORDER = 1, 2, 3

CELEBA_FOLDER = "celeba"
CELEBA_PAGE = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
# Google Drive file ids and MD5 sums of the official files (the ones torchvision's CelebA uses).
CELEBA_FILES = {
    "img_align_celeba.zip": ("0B7EVK8r0v71pZjFTYXZWM3FlRnM", "00d2c5bc6d35e252742224ab0c1e8fcb"),
    "list_attr_celeba.txt": ("0B7EVK8r0v71pblRyaVFSWGxPY0U", "75e246fa4810816ffd6ee81facbd244c"),
    "list_landmarks_align_celeba.txt": ("0B7EVK8r0v71pd0FJY3Blby1HUTQ", "cc24ecafdb5b50baae59b03474781f8c"),
    "list_eval_partition.txt": ("0B7EVK8r0v71pY0NSMzRuSXJEVkk", "d32c9cbf5e040fd4025c592c306e6668"),
}
# `confirm=t` skips Drive's "cannot scan this file for viruses" page for the 1.4 GB zip.
CELEBA_URL = "https://drive.usercontent.google.com/download?id={id}&export=download&confirm=t"
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
LANDMARKS = ("lefteye", "righteye", "nose", "leftmouth", "rightmouth")
EYES = ("lefteye", "righteye")
MOUTH = ("leftmouth", "rightmouth")
# The landmarks near which the evidence for an attribute should lie (used to score explanations).
ATTRIBUTE_PARTS: dict[str, tuple[str, ...]] = {
    "Eyeglasses": EYES, "Narrow_Eyes": EYES, "Bags_Under_Eyes": EYES, "Arched_Eyebrows": EYES,
    "Bushy_Eyebrows": EYES,
    "Smiling": MOUTH, "Mouth_Slightly_Open": MOUTH, "Wearing_Lipstick": MOUTH, "Big_Lips": MOUTH,
    "Mustache": MOUTH, "Goatee": MOUTH,
    "Big_Nose": ("nose",), "Pointy_Nose": ("nose",),
}

SMOKE_PETS = 60  # the fewest images in a look-alike Pets (36 trainval, 24 test); more when a profile needs more
SMOKE_CELEBA = 80  # the fewest images in a look-alike CelebA (48 train, 16 val, 16 test); likewise


class DataUnavailable(DownloadError):
    """A data set is missing and could not be downloaded; the message says how to get it by hand."""


# ------------------------------------------------------------------------------------ image helpers

def _rgb(path: Path) -> Image.Image:
    # A few Pets "JPEGs" are PNGs, grayscale or CMYK; PIL reads them all, convert makes them RGB.
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable image ({exc}); delete it and prepare the data again.") from exc


def _to_tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; prepare the data again (see the notebook's data section).")
    return [ln for ln in path.read_text().splitlines() if ln.strip()]


# ------------------------------------------------------------------------------------------- Pets

def read_pet_list(base: str | os.PathLike) -> dict[str, int]:
    """`annotations/list.txt` of Oxford-IIIT Pet under `base`: image name -> species (1 cat, 2 dog)."""
    species = {}
    path = Path(base) / "annotations" / "list.txt"
    for ln in _lines(path):
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
    return [ln.split()[0] for ln in _lines(Path(base) / "annotations" / f"{split}.txt") if not ln.startswith("#")]


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
        img = _rgb(self.base / "images" / f"{self.names[i]}.jpg").resize((self.size, self.size), Image.BICUBIC)
        return _to_tensor(img), self.labels[i]

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


def _subset(n_items: int, n: int | None, rng: np.random.Generator) -> np.ndarray:
    order = rng.permutation(n_items)
    return order if n is None else order[: min(n, n_items)]


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
            "test": [test[i] for i in _subset(len(test), n_test, rng)]}
    return {k: PetsDataset(base, v, [species[n] for n in v], size) for k, v in pick.items()}


# ------------------------------------------------------------------------------------------ CelebA

def read_celeba_attributes(base: str | os.PathLike) -> tuple[list[str], list[str], torch.Tensor]:
    """`list_attr_celeba.txt`: (attribute names (40), file names (N), values `(N, 40)` bool, True for 1)."""
    path = Path(base) / "list_attr_celeba.txt"
    lines = _lines(path)
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
    lines = _lines(path)
    count = int(lines[0].split()[0])
    rows = [ln.split() for ln in lines[2:]]
    if len(rows) != count or any(len(r) != 11 for r in rows):
        raise ValueError(f"{path}: expected {count} rows of a file name and 10 coordinates.")
    xy = np.array([r[1:] for r in rows], dtype=np.float32).reshape(count, 5, 2)
    return [r[0] for r in rows], torch.from_numpy(xy)


def read_celeba_partition(base: str | os.PathLike) -> dict[str, int]:
    """`list_eval_partition.txt`: file name -> 0 (train), 1 (val) or 2 (test)."""
    out = {}
    for ln in _lines(Path(base) / "list_eval_partition.txt"):
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
        img = _rgb(self.base / "img_align_celeba" / self.files[i])
        w, _ = CELEBA_SIZE
        img = img.crop((0, self.top, w, self.top + w)).resize((self.size, self.size), Image.BICUBIC)
        return _to_tensor(img), self.labels[i]

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
        idx = members[_subset(len(members), n, rng)]
        out[key] = CelebADataset(base, [files[i] for i in idx], attrs[idx], landmarks[idx], attributes, size)
    return out


def landmark_mask(landmarks: torch.Tensor, parts: Sequence[str], size: int | tuple[int, int],
                  radius: float) -> torch.Tensor:
    """Bool masks `(N, H, W)`: pixels within `radius` pixels of any of the landmarks named in `parts`.

    landmarks: `(N, 5, 2)` x, y pixel coordinates in `LANDMARKS` order (as `CelebADataset.landmarks`).
    parts: names from `LANDMARKS`, e.g. `EYES` or `ATTRIBUTE_PARTS["Smiling"]`. size: S or (H, W).
    """
    unknown = [p for p in parts if p not in LANDMARKS]
    if unknown or not parts:
        raise ValueError(f"parts must be a non-empty selection of {LANDMARKS}; got {list(parts)}.")
    if landmarks.ndim != 3 or landmarks.shape[1:] != (5, 2):
        raise ValueError(f"landmarks must be (N, 5, 2); got {tuple(landmarks.shape)}.")
    h, w = (size, size) if isinstance(size, int) else size
    pts = landmarks[:, [LANDMARKS.index(p) for p in parts]].float()  # (N, P, 2)
    ys = torch.arange(h, dtype=torch.float32, device=pts.device).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=torch.float32, device=pts.device).view(1, 1, 1, w)
    d2 = (xs - pts[..., 0, None, None]) ** 2 + (ys - pts[..., 1, None, None]) ** 2  # (N, P, H, W)
    return (d2 <= radius ** 2).any(dim=1)


def interocular(landmarks: torch.Tensor) -> torch.Tensor:
    """Distance between the two eyes `(N,)` in pixels: the natural length unit of a face."""
    return (landmarks[:, 0] - landmarks[:, 1]).norm(dim=-1)


# ------------------------------------------------------------------------- finding and downloading

def _extract_tar(archive: Path, dest: Path) -> None:
    # Unpack into a temporary folder beside `dest`, then move each top-level entry into place, so an
    # interrupted extraction never leaves a half-filled images/ or annotations/ folder.
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
    try:
        with tarfile.open(archive) as tar:
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(tmp, **kwargs)
        for entry in tmp.iterdir():
            target = dest / entry.name
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            os.replace(entry, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _pets_ready(base: Path) -> bool:
    return all((base / p).exists() for p in ("images", "annotations/list.txt", "annotations/trainval.txt",
                                              "annotations/test.txt", "annotations/trimaps"))


def pets_manual_steps(base: Path) -> str:
    """What to do by hand when Oxford-IIIT Pet cannot be downloaded."""
    return (f"To install Oxford-IIIT Pet by hand: download images.tar.gz and annotations.tar.gz from {PETS_PAGE} "
            f"(the 'Downloads' section) and extract both into {base}, so that {base}/images/*.jpg, "
            f"{base}/annotations/list.txt, trainval.txt, test.txt and {base}/annotations/trimaps/*.png exist. "
            "Then run the cell again.")


def fetch_pets(root: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """The real Oxford-IIIT Pet folder `<root>/oxford-iiit-pet` (root: `data_dir()`), downloaded (about
    800 MB, MD5-checked) and extracted when missing. Raises DataUnavailable with manual steps."""
    base = Path(root or data_dir()) / PETS_FOLDER
    if _pets_ready(base):
        return base
    base.mkdir(parents=True, exist_ok=True)
    for name, url, md5 in PETS_ARCHIVES:
        archive = base / name
        try:
            download(url, archive, md5=md5, progress=progress)
        except DownloadError as exc:
            raise DataUnavailable(f"Oxford-IIIT Pet could not be downloaded: {exc}\n{pets_manual_steps(base)}") from exc
        _extract_tar(archive, base)
        archive.unlink()  # the extracted folders are the cache
    if not _pets_ready(base):
        raise DataUnavailable(f"the archives did not contain the expected files.\n{pets_manual_steps(base)}")
    return base


def celeba_manual_steps(base: Path) -> str:
    """What to do by hand when CelebA cannot be downloaded (Google Drive often refuses)."""
    files = ", ".join(CELEBA_FILES)
    return (f"To install CelebA by hand: open {CELEBA_PAGE}, follow its Google Drive link ('Align&Cropped "
            f"Images' and 'Anno', 'Eval'), and download {files}. Put them in {base} (create the folder), so "
            f"that {base}/img_align_celeba.zip (or the folder {base}/img_align_celeba/ with 202599 JPEGs) and "
            f"{base}/list_attr_celeba.txt, list_landmarks_align_celeba.txt, list_eval_partition.txt exist. "
            "Google Drive limits how often a file is downloaded per day ('quota exceeded'): try again later, "
            "or from a browser signed in to Google. Then run the cell again.")


def _html_or_bad_zip(path: Path, base: Path, want_zip: bool) -> None:
    # The `check` of `download`: Drive answers a refused download with an HTML page (200 OK).
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        raise DataUnavailable(
            f"Google Drive sent an HTML page instead of {path.name.removesuffix('.part')} (its download quota is "
            f"probably exceeded, or it asks for a confirmation). The bad file was deleted.\n"
            f"{celeba_manual_steps(base)}")
    if want_zip and not zipfile.is_zipfile(path):
        raise DataUnavailable(f"{path.name.removesuffix('.part')} is not a valid zip file; it was deleted.\n"
                              f"{celeba_manual_steps(base)}")


def _extract_zip(archive: Path, base: Path, progress: bool) -> None:
    from tqdm.auto import tqdm

    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=base))
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in tqdm(zf.infolist(), desc="unzip img_align_celeba", disable=not progress):
                zf.extract(member, tmp)
        os.replace(tmp / "img_align_celeba", base / "img_align_celeba")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _celeba_ready(base: Path) -> bool:
    return (base / "img_align_celeba").is_dir() and all(
        (base / f).is_file() for f in CELEBA_FILES if f.endswith(".txt"))


def fetch_celeba(root: str | os.PathLike | None = None, progress: bool = True,
                 url_template: str = CELEBA_URL) -> Path:
    """The real CelebA folder `<root>/celeba` (root: `data_dir()`), downloaded from Google Drive (1.4 GB
    zip and three lists, MD5-checked) and unzipped when missing. An HTML page in place of a file (Drive's
    "quota exceeded") or a broken zip is deleted, and DataUnavailable explains the manual steps."""
    base = Path(root or data_dir()) / CELEBA_FOLDER
    if _celeba_ready(base):
        return base
    base.mkdir(parents=True, exist_ok=True)
    for name, (file_id, md5) in CELEBA_FILES.items():
        dest = base / name
        if name == "img_align_celeba.zip" and (base / "img_align_celeba").is_dir():
            continue
        want_zip = name.endswith(".zip")
        if dest.is_file():  # placed by hand, or left from an earlier attempt: validate before trusting it
            try:
                _html_or_bad_zip(dest, base, want_zip)
            except DataUnavailable:
                dest.unlink()
                raise
            continue
        try:
            download(url_template.format(id=file_id), dest, md5=md5, progress=progress,
                     check=lambda p, z=want_zip: _html_or_bad_zip(p, base, z))
        except DataUnavailable:
            raise
        except DownloadError as exc:
            raise DataUnavailable(f"CelebA could not be downloaded: {exc}\n{celeba_manual_steps(base)}") from exc
    if not (base / "img_align_celeba").is_dir():
        _extract_zip(base / "img_align_celeba.zip", base, progress)
        (base / "img_align_celeba.zip").unlink()
    return base


def lookalike_sizes(n_train: int, n_val: int, n_test: int) -> tuple[int, int]:
    """(Pets, CelebA) image counts of look-alikes large enough for subsets of `n_train`, `n_val` and `n_test`
    images (the look-alikes put 60% of Pets in trainval and 40% in test, and 60/20/20% of CelebA in its
    train/val/test partitions); at least `SMOKE_PETS` and `SMOKE_CELEBA`."""
    if min(n_train, n_val, n_test) < 0:
        raise ValueError(f"subset sizes must be >= 0; got {n_train}, {n_val}, {n_test}.")
    pets = max(math.ceil((n_train + n_val) / 0.6), math.ceil(n_test / 0.4)) + 2
    celeba = max(math.ceil(n_train / 0.6), math.ceil(n_val / 0.2), math.ceil(n_test / 0.2)) + 2
    return max(SMOKE_PETS, pets), max(SMOKE_CELEBA, celeba)


def _lookalike_folder(root: str | os.PathLike | None) -> Path:
    return Path(root) if root is not None else data_dir() / get_profile().name


def _profile_lookalike_sizes() -> tuple[int, int]:
    cfg = get_profile().settings
    return lookalike_sizes(cfg.case_train_images, cfg.case_val_images, cfg.case_test_images)


def prepare_pets(root: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """The Oxford-IIIT Pet folder for the current profile: the real one in `full` (`fetch_pets`); in
    `offline` and `smoke` the look-alike written by `make_fake_pets` under `<data_dir>/<profile>` (or
    `root`), with as many images as the profile's subsets need (`lookalike_sizes`). A look-alike of
    another size is written again."""
    if get_profile().full:
        return fetch_pets(root, progress)
    n = _profile_lookalike_sizes()[0]
    base = _lookalike_folder(root) / PETS_FOLDER
    if _pets_ready(base):
        if len(read_pet_list(base)) == n:
            return base
        shutil.rmtree(base)
    return make_fake_pets(base.parent, n)


def prepare_celeba(root: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """The CelebA folder for the current profile: the real one in `full` (`fetch_celeba`); in `offline`
    and `smoke` the look-alike written by `make_fake_celeba` under `<data_dir>/<profile>` (or `root`), with
    as many faces as the profile's subsets need (`lookalike_sizes`). A look-alike of another size is
    written again."""
    if get_profile().full:
        return fetch_celeba(root, progress)
    n = _profile_lookalike_sizes()[1]
    base = _lookalike_folder(root) / CELEBA_FOLDER
    if _celeba_ready(base):
        if len(read_celeba_partition(base)) == n:
            return base
        shutil.rmtree(base)
    return make_fake_celeba(base.parent, n)


# ------------------------------------------------------------------ look-alikes for offline and smoke

def _publish(tmp: Path, base: Path) -> Path:
    # Move a finished folder into place in one step (a concurrent or interrupted writer leaves no half).
    if base.exists():
        shutil.rmtree(tmp, ignore_errors=True)
        return base
    os.replace(tmp, base)
    return base


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = rng.uniform(60, 200, size=3)
    yy, xx = np.mgrid[0:h, 0:w]
    ramp = (np.sin(xx / rng.uniform(8, 20)) + np.cos(yy / rng.uniform(8, 20)))[..., None] * 12
    noise = rng.normal(0, 10, size=(h, w, 3))
    return np.clip(base + ramp + noise, 0, 255)


CAT_BREEDS = ("Abyssinian", "Bengal", "Persian")  # Pets names cat breeds capitalized, dog breeds not
DOG_BREEDS = ("beagle", "boxer", "pug")


def make_fake_pets(root: str | os.PathLike, n: int = SMOKE_PETS, seed: int = 0) -> Path:
    """Write a deterministic miniature Oxford-IIIT Pet (`n` images, 60% trainval, 40% test) in the official
    layout under `<root>/oxford-iiit-pet` and return that folder. Each image has a textured background
    and an elliptic "pet" (warm colours and pointed ears for cats, cool colours and floppy ears for dogs),
    and a trimap PNG with 1 on the pet, 3 on a 2-pixel border band, 2 elsewhere."""
    if n < 4:
        raise ValueError(f"make_fake_pets needs n >= 4 images; got {n}.")
    base = Path(root) / PETS_FOLDER
    if _pets_ready(base):
        return base
    Path(root).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".fake-pets-", dir=root))
    (tmp / "images").mkdir()
    (tmp / "annotations" / "trimaps").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    breeds = sorted(CAT_BREEDS + DOG_BREEDS, key=str.lower)  # class ids follow this order, as in list.txt
    rows = []
    for i in range(n):
        species = 1 if i % 3 == 0 else 2  # a third cats, two thirds dogs, as in Pets
        breed = (DOG_BREEDS if species == 2 else CAT_BREEDS)[(i // 3) % 3]
        name = f"{breed}_{i + 1}"
        h, w = int(rng.integers(100, 150)), int(rng.integers(110, 170))
        img = Image.fromarray(_background(rng, h, w).astype(np.uint8))
        cx, cy = rng.uniform(0.35, 0.65) * w, rng.uniform(0.4, 0.65) * h
        rx, ry = rng.uniform(0.15, 0.25) * w, rng.uniform(0.15, 0.25) * h
        colour = (rng.uniform(180, 250), rng.uniform(90, 150), rng.uniform(20, 70)) if species == 1 else \
                 (rng.uniform(20, 80), rng.uniform(60, 120), rng.uniform(160, 240))
        colour = tuple(int(c) for c in colour)
        shape = Image.new("L", (w, h), 0)
        d = ImageDraw.Draw(shape)
        d.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=255)
        ear = 0.5 * ry
        for side in (-1, 1):
            ex = cx + side * 0.6 * rx
            if species == 1:  # pointed ears
                d.polygon([(ex - 0.3 * rx, cy - 0.7 * ry), (ex + 0.3 * rx, cy - 0.7 * ry), (ex, cy - ry - ear)],
                          fill=255)
            else:  # floppy ears hanging at the sides
                d.ellipse((ex + side * 0.3 * rx - 0.25 * rx, cy - 0.6 * ry, ex + side * 0.3 * rx + 0.25 * rx,
                           cy + 0.3 * ry), fill=255)
        body = np.asarray(shape) > 127
        arr = np.asarray(img).copy()
        arr[body] = np.clip(np.array(colour) + rng.normal(0, 12, size=(body.sum(), 3)), 0, 255)
        Image.fromarray(arr).save(tmp / "images" / f"{name}.jpg", quality=90)
        outline = Image.fromarray(body.astype(np.uint8) * 255)
        grown = np.asarray(outline.filter(ImageFilter.MaxFilter(5))) > 127
        shrunk = np.asarray(outline.filter(ImageFilter.MinFilter(5))) > 127
        trimap = np.full((h, w), TRIMAP_BACKGROUND, np.uint8)
        trimap[grown & ~shrunk] = TRIMAP_BORDER
        trimap[shrunk] = TRIMAP_PET
        Image.fromarray(trimap, "L").save(tmp / "annotations" / "trimaps" / f"{name}.png")
        class_id = breeds.index(breed) + 1
        breed_id = (CAT_BREEDS if species == 1 else DOG_BREEDS).index(breed) + 1
        rows.append(f"{name} {class_id} {species} {breed_id}")
    header = ["#Image CLASS-ID SPECIES BREED ID", "#CLASS-ID: 1:37 Class ids", "#SPECIES: 1:Cat 2:Dog",
              "#BREED ID: 1-12:Cat 1-25:Dog", "#All images with 1st letter as capital are cat images",
              "#images with small first letter are dog images"]
    (tmp / "annotations" / "list.txt").write_text("\n".join(header + rows) + "\n")
    n_trainval = int(round(0.6 * n))
    (tmp / "annotations" / "trainval.txt").write_text("\n".join(rows[:n_trainval]) + "\n")
    (tmp / "annotations" / "test.txt").write_text("\n".join(rows[n_trainval:]) + "\n")
    return _publish(tmp, base)


def _fake_face(rng: np.random.Generator, attrs: dict[str, bool], lm: np.ndarray) -> Image.Image:
    w, h = CELEBA_SIZE
    img = Image.fromarray(_background(rng, h, w).astype(np.uint8))
    d = ImageDraw.Draw(img)
    skin = tuple(int(v) for v in rng.uniform([170, 120, 100], [240, 190, 160]))
    hair = (30, 25, 20) if rng.random() < 0.5 else (200, 170, 90)
    cx = (lm[0, 0] + lm[1, 0]) / 2
    d.ellipse((cx - 62, 40, cx + 62, 200), fill=hair)  # hair behind the face
    d.ellipse((cx - 52, 60, cx + 52, 195), fill=skin)
    for x, y in lm[:2]:
        d.ellipse((x - 6, y - 3, x + 6, y + 3), fill=(250, 250, 250))
        d.ellipse((x - 2.5, y - 2.5, x + 2.5, y + 2.5), fill=(40, 30, 20))
        if attrs["Eyeglasses"]:
            d.ellipse((x - 14, y - 10, x + 14, y + 10), outline=(10, 10, 10), width=3)
    if attrs["Eyeglasses"]:
        d.line((lm[0, 0] + 14, lm[0, 1], lm[1, 0] - 14, lm[1, 1]), fill=(10, 10, 10), width=3)
    nx, ny = lm[2]
    d.line((nx, ny - 14, nx - 4, ny, nx + 4, ny), fill=tuple(int(v * 0.8) for v in skin), width=2)
    (lx, ly), (rx, ry) = lm[3], lm[4]
    lips = (205, 15, 60) if attrs["Wearing_Lipstick"] else (165, 95, 90)  # 7 px: wide enough to keep its colour in a JPEG
    if attrs["Smiling"]:
        d.arc((lx, ly - 10, rx, ry + 10), start=10, end=170, fill=lips, width=7)
    else:
        d.line((lx, ly, rx, ry), fill=lips, width=7)
    return img


def make_fake_celeba(root: str | os.PathLike, n: int = SMOKE_CELEBA, seed: int = 0) -> Path:
    """Write a deterministic miniature CelebA (`n` drawn 178 x 218 faces; 60% train, 20% val, 20% test) in
    the official layout under `<root>/celeba` and return that folder. Attributes are drawn with CelebA-like
    correlations (Wearing_Lipstick mostly when not Male, High_Cheekbones mostly with Smiling); glasses, the
    smile and lipstick are painted at the jittered landmarks, so a model can learn them."""
    if n < 5:
        raise ValueError(f"make_fake_celeba needs n >= 5 images; got {n}.")
    base = Path(root) / CELEBA_FOLDER
    if _celeba_ready(base):
        return base
    Path(root).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".fake-celeba-", dir=root))
    (tmp / "img_align_celeba").mkdir()
    rng = np.random.default_rng(seed)
    mean_lm = np.array([[69, 111], [108, 111], [88, 134], [72, 152], [106, 152]], dtype=float)
    attr_rows, lm_rows, part_rows = [], [], []
    n_train, n_val = int(round(0.6 * n)), int(round(0.2 * n))
    for i in range(n):
        fname = f"{i + 1:06d}.jpg"
        a = {name: bool(rng.random() < 0.2) for name in CELEBA_ATTRIBUTES}
        a["Male"] = bool(rng.random() < 0.42)
        a["Wearing_Lipstick"] = bool(rng.random() < (0.05 if a["Male"] else 0.8))
        a["Heavy_Makeup"] = bool(a["Wearing_Lipstick"] and rng.random() < 0.7)
        a["No_Beard"] = bool(not a["Male"] or rng.random() < 0.6)
        a["Smiling"] = bool(rng.random() < 0.48)
        a["High_Cheekbones"] = bool(rng.random() < (0.8 if a["Smiling"] else 0.15))
        a["Mouth_Slightly_Open"] = bool(rng.random() < (0.7 if a["Smiling"] else 0.3))
        a["Eyeglasses"] = bool(rng.random() < (0.35 if a["Male"] else 0.2))
        a["Young"] = bool(rng.random() < 0.75)
        lm = np.rint(mean_lm + rng.normal(0, 2.0, size=(1, 2)) + rng.normal(0, 1.0, size=(5, 2)))
        _fake_face(rng, a, lm).save(tmp / "img_align_celeba" / fname, quality=90)
        attr_rows.append(fname + " " + " ".join(f"{1 if a[k] else -1:2d}" for k in CELEBA_ATTRIBUTES))
        lm_rows.append(f"{fname} " + " ".join(f"{int(v):4d}" for v in lm.ravel()))
        part_rows.append(f"{fname} {0 if i < n_train else 1 if i < n_train + n_val else 2}")
    (tmp / "list_attr_celeba.txt").write_text(f"{n}\n" + " ".join(CELEBA_ATTRIBUTES) + " \n" + "\n".join(attr_rows) + "\n")
    header = " ".join(f"{p}_{c}" for p in LANDMARKS for c in "xy")
    (tmp / "list_landmarks_align_celeba.txt").write_text(f"{n}\n{header}\n" + "\n".join(lm_rows) + "\n")
    (tmp / "list_eval_partition.txt").write_text("\n".join(part_rows) + "\n")
    return _publish(tmp, base)
