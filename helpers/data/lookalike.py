"""Look-alike data sets for `offline` and `smoke`: drawn pets and faces written in the official layouts.

`make_fake_pets` and `make_fake_celeba` are deterministic (a local generator) and write a finished folder in
one step; `lookalike_sizes` says how many images a profile's subsets need. The faces have planted answers:
`LOOKALIKE_PLANTS` says, for each of the 12 attributes with a landmark region, where its evidence is drawn
(its own region, elsewhere, or nowhere) and how often the drawing agrees with the label, and
`lookalike_drawn.txt` (beside the official lists) records what each face shows, so that the case study's
accuracy and localization scores can be checked against known answers.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from .celeba import CELEBA_ATTRIBUTES, CELEBA_FOLDER, CELEBA_SIZE, celeba_ready
from .files import text_lines
from .faceparts import LANDMARKS
from .oxford_pets import PETS_FOLDER, TRIMAP_BACKGROUND, TRIMAP_BORDER, TRIMAP_PET, pets_ready

SMOKE_PETS = 60  # the fewest images in a look-alike Pets (36 trainval, 24 test); more when a profile needs more
SMOKE_CELEBA = 90  # the fewest images in a look-alike CelebA (54 train, 18 val, 18 test); likewise


def lookalike_sizes(n_train: int, n_val: int, n_test: int) -> tuple[int, int]:
    """(Pets, CelebA) image counts of look-alikes large enough for subsets of `n_train`, `n_val` and `n_test`
    images (the look-alikes put 60% of Pets in trainval and 40% in test, and 60/20/20% of CelebA in its
    train/val/test partitions); at least `SMOKE_PETS` and `SMOKE_CELEBA`."""
    if min(n_train, n_val, n_test) < 0:
        raise ValueError(f"subset sizes must be >= 0; got {n_train}, {n_val}, {n_test}.")
    pets = max(math.ceil((n_train + n_val) / 0.6), math.ceil(n_test / 0.4)) + 2
    celeba = max(math.ceil(n_train / 0.6), math.ceil(n_val / 0.2), math.ceil(n_test / 0.2)) + 2
    return max(SMOKE_PETS, pets), max(SMOKE_CELEBA, celeba)


def _begin(root: str | os.PathLike, folder: str, ready: Callable[[Path], bool], n: int, least: int,
           writer: str) -> tuple[Path, Path | None]:
    """(`<root>/<folder>`, a new hidden temporary folder beside it to write into), or (the folder, None) when a
    complete one is already there; ValueError when fewer than `least` images are asked for."""
    if n < least:
        raise ValueError(f"{writer} needs n >= {least} images; got {n}.")
    base = Path(root) / folder
    if ready(base):
        return base, None
    Path(root).mkdir(parents=True, exist_ok=True)
    return base, Path(tempfile.mkdtemp(prefix=f".{writer}-", dir=root))


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
    base, tmp = _begin(root, PETS_FOLDER, pets_ready, n, 4, "make_fake_pets")
    if tmp is None:
        return base
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


@dataclass(frozen=True)
class Plant:
    """What a look-alike face shows of one attribute: where its evidence is drawn (`region`: "eyes", "nose",
    "mouth", "forehead" (near none of the five landmarks), or None for a label that nothing in the picture
    shows) and how often the drawing agrees with the label (`agreement`: the best balanced accuracy a model
    reading the drawing can reach; flips are symmetric)."""

    region: str | None
    agreement: float
    how: str  # what is drawn, in words


# The planted answers of the look-alike CelebA for the 12 attributes with a landmark region
# (`faceparts.ATTRIBUTE_PARTS`): accuracy and map position are known for each.
LOOKALIKE_PLANTS: dict[str, Plant] = {
    "Eyeglasses": Plant("eyes", 1.0, "black frames around the eyes"),
    "Narrow_Eyes": Plant("eyes", 0.8, "slit eyes"),
    "Bags_Under_Eyes": Plant("eyes", 0.9, "dark arcs under the eyes"),
    "Arched_Eyebrows": Plant("eyes", 1.0, "arched brows instead of straight ones"),
    "Bushy_Eyebrows": Plant("forehead", 1.0, "a dark tuft high on the forehead, away from the eyes"),
    "Big_Nose": Plant("nose", 0.9, "a wide nose"),
    "Pointy_Nose": Plant(None, 0.5, "nothing (a label only, independent of the rest)"),
    "Smiling": Plant("mouth", 1.0, "a curved mouth"),
    "Mouth_Slightly_Open": Plant(None, 0.5, "nothing (a label only, 70% of smiling faces, 30% of the others)"),
    "Wearing_Lipstick": Plant("mouth", 1.0, "red lips"),
    "Big_Lips": Plant("mouth", 0.8, "thick lips"),
    "Mustache": Plant("mouth", 1.0, "a dark band above the upper lip"),
}
LOOKALIKE_DRAWN = "lookalike_drawn.txt"  # which attributes each look-alike face shows (not an official file)


def _fake_face(rng: np.random.Generator, drawn: dict[str, bool], lm: np.ndarray) -> Image.Image:
    """One look-alike face, 178 x 218, with landmarks `lm` (5, 2). `drawn[a]` says whether attribute `a`'s
    evidence is painted (see `LOOKALIKE_PLANTS`). The generator is used the same way whatever is drawn, so
    the same generator state with one attribute toggled gives the same face with only that evidence changed."""
    w, h = CELEBA_SIZE
    img = Image.fromarray(_background(rng, h, w).astype(np.uint8))
    d = ImageDraw.Draw(img)
    skin = tuple(int(v) for v in rng.uniform([170, 120, 100], [240, 190, 160]))
    hair = (30, 25, 20) if rng.random() < 0.5 else (200, 170, 90)
    dark = tuple(int(v * 0.35) for v in skin)
    cx = (lm[0, 0] + lm[1, 0]) / 2
    d.ellipse((cx - 62, 40, cx + 62, 200), fill=hair)  # hair behind the face
    d.ellipse((cx - 52, 60, cx + 52, 195), fill=skin)
    if drawn["Bushy_Eyebrows"]:  # planted away from the eyes
        for dx in (-12, -4, 4, 12):
            d.line((cx + dx - 3, 78, cx + dx + 3, 66), fill=(35, 25, 20), width=4)
    eye_h = 1.2 if drawn["Narrow_Eyes"] else 4
    for x, y in lm[:2]:
        d.ellipse((x - 7, y - eye_h, x + 7, y + eye_h), fill=(250, 250, 250))
        d.ellipse((x - 2.5, y - min(eye_h, 2.5), x + 2.5, y + min(eye_h, 2.5)), fill=(40, 30, 20))
        if drawn["Arched_Eyebrows"]:
            d.arc((x - 10, y - 17, x + 10, y - 5), start=200, end=340, fill=dark, width=2)
        else:
            d.line((x - 10, y - 10, x + 10, y - 10), fill=dark, width=2)
        if drawn["Bags_Under_Eyes"]:
            d.arc((x - 8, y - 2, x + 8, y + 9), start=20, end=160, fill=(110, 70, 90), width=2)
        if drawn["Eyeglasses"]:
            d.ellipse((x - 14, y - 10, x + 14, y + 10), outline=(10, 10, 10), width=3)
    if drawn["Eyeglasses"]:
        d.line((lm[0, 0] + 14, lm[0, 1], lm[1, 0] - 14, lm[1, 1]), fill=(10, 10, 10), width=3)
    nx, ny = lm[2]
    nose = tuple(int(v * 0.8) for v in skin)
    if drawn["Big_Nose"]:
        d.polygon([(nx, ny - 16), (nx - 10, ny + 2), (nx + 10, ny + 2)], outline=nose, fill=tuple(int(v * 0.9) for v in skin))
        d.line((nx - 10, ny + 2, nx + 10, ny + 2), fill=nose, width=3)
    else:
        d.line((nx, ny - 14, nx - 4, ny, nx + 4, ny), fill=nose, width=2)
    (lx, ly), (rx, ry) = lm[3], lm[4]
    if drawn["Mustache"]:
        d.polygon([(lx - 4, ly - 4), (lx + 2, ly - 11), (cx, ly - 13), (rx - 2, ry - 11), (rx + 4, ry - 4), (cx, ly - 7)], fill=(45, 30, 20))
    lips = (205, 15, 60) if drawn["Wearing_Lipstick"] else (165, 95, 90)  # 7 px: wide enough to keep its colour in a JPEG
    width = 12 if drawn["Big_Lips"] else 7
    if drawn["Smiling"]:
        d.arc((lx, ly - 10, rx, ry + 10), start=10, end=170, fill=lips, width=width)
    else:
        d.line((lx, ly, rx, ry), fill=lips, width=width)
    return img


def _lookalike_labels(rng: np.random.Generator) -> dict[str, bool]:
    """CelebA's 40 labels for one look-alike face, with CelebA-like correlations."""
    a = {name: bool(rng.random() < 0.2) for name in CELEBA_ATTRIBUTES}
    male = a["Male"] = bool(rng.random() < 0.42)
    a["Wearing_Lipstick"] = bool(rng.random() < (0.12 if male else 0.85))
    a["Heavy_Makeup"] = bool(a["Wearing_Lipstick"] and rng.random() < 0.7)
    a["Mustache"] = bool(rng.random() < (0.3 if male else 0.02))
    a["No_Beard"] = bool(not male or rng.random() < 0.6)
    a["Smiling"] = bool(rng.random() < 0.48)
    a["High_Cheekbones"] = bool(rng.random() < (0.8 if a["Smiling"] else 0.15))
    a["Mouth_Slightly_Open"] = bool(rng.random() < (0.7 if a["Smiling"] else 0.3))
    a["Eyeglasses"] = bool(rng.random() < (0.35 if male else 0.2))
    a["Arched_Eyebrows"] = bool(rng.random() < (0.15 if male else 0.5))
    a["Bushy_Eyebrows"] = bool(rng.random() < (0.4 if male else 0.2))
    a["Big_Nose"] = bool(rng.random() < (0.4 if male else 0.2))
    for name in ("Narrow_Eyes", "Bags_Under_Eyes", "Pointy_Nose", "Big_Lips"):
        a[name] = bool(rng.random() < 0.3)
    a["Young"] = bool(rng.random() < 0.75)
    return a


def _lookalike_drawn(rng: np.random.Generator, labels: dict[str, bool]) -> dict[str, bool]:
    """What one face shows: each planted attribute's label, flipped with probability 1 - agreement; nothing
    for an attribute planted as a label only."""
    out = {}
    for name, plant in LOOKALIKE_PLANTS.items():
        flip = bool(rng.random() >= plant.agreement)
        out[name] = plant.region is not None and (labels[name] != flip)
    return out


def read_lookalike_drawn(base: str | os.PathLike) -> tuple[list[str], list[str], torch.Tensor]:
    """`lookalike_drawn.txt` of a look-alike CelebA: (attribute names, file names, `(N, K)` bool: is the
    attribute's evidence drawn in that face). Real CelebA has no such file (FileNotFoundError)."""
    lines = text_lines(Path(base) / LOOKALIKE_DRAWN)
    names = lines[0].split()
    rows = [ln.split() for ln in lines[1:]]
    return names, [r[0] for r in rows], torch.tensor([[v == "1" for v in r[1:]] for r in rows], dtype=torch.bool)


def make_fake_celeba(root: str | os.PathLike, n: int = SMOKE_CELEBA, seed: int = 0) -> Path:
    """Write a deterministic miniature CelebA (`n` drawn 178 x 218 faces; 60% train, 20% val, 20% test) in
    the official layout under `<root>/celeba` and return that folder. Labels come with CelebA-like
    correlations (Wearing_Lipstick mostly when not Male, Mustache mostly when Male, Mouth_Slightly_Open and
    High_Cheekbones mostly with Smiling); the 12 landmark attributes are drawn as `LOOKALIKE_PLANTS` says,
    and `lookalike_drawn.txt` records what each face shows."""
    base, tmp = _begin(root, CELEBA_FOLDER, celeba_ready, n, 5, "make_fake_celeba")
    if tmp is None:
        return base
    (tmp / "img_align_celeba").mkdir()
    rng = np.random.default_rng(seed)
    mean_lm = np.array([[69, 111], [108, 111], [88, 134], [72, 152], [106, 152]], dtype=float)
    attr_rows, lm_rows, part_rows, drawn_rows = [], [], [], []
    n_train, n_val = int(round(0.6 * n)), int(round(0.2 * n))
    for i in range(n):
        fname = f"{i + 1:06d}.jpg"
        a = _lookalike_labels(rng)
        drawn = _lookalike_drawn(rng, a)
        lm = np.rint(mean_lm + rng.normal(0, 2.0, size=(1, 2)) + rng.normal(0, 1.0, size=(5, 2)))
        _fake_face(rng, drawn, lm).save(tmp / "img_align_celeba" / fname, quality=90)
        attr_rows.append(fname + " " + " ".join(f"{1 if a[k] else -1:2d}" for k in CELEBA_ATTRIBUTES))
        lm_rows.append(f"{fname} " + " ".join(f"{int(v):4d}" for v in lm.ravel()))
        part_rows.append(f"{fname} {0 if i < n_train else 1 if i < n_train + n_val else 2}")
        drawn_rows.append(fname + " " + " ".join("1" if drawn[k] else "0" for k in LOOKALIKE_PLANTS))
    (tmp / "list_attr_celeba.txt").write_text(f"{n}\n" + " ".join(CELEBA_ATTRIBUTES) + " \n" + "\n".join(attr_rows) + "\n")
    header = " ".join(f"{p}_{c}" for p in LANDMARKS for c in "xy")
    (tmp / "list_landmarks_align_celeba.txt").write_text(f"{n}\n{header}\n" + "\n".join(lm_rows) + "\n")
    (tmp / "list_eval_partition.txt").write_text("\n".join(part_rows) + "\n")
    (tmp / LOOKALIKE_DRAWN).write_text(" ".join(LOOKALIKE_PLANTS) + "\n" + "\n".join(drawn_rows) + "\n")
    return _publish(tmp, base)
