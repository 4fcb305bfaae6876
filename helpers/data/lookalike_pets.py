"""The look-alike Oxford-IIIT Pet (`offline`, `smoke`): drawn pets whose label only their ears' shape carries.

Each image is a textured background with one pet at a random position and scale (off-centre as often as
not), in a random colour drawn whatever the species: an elliptic body with two eyes and a nose, and ears
that say the species (cats: two pointed ears on top; dogs: two floppy ears hanging at the sides). So the
centre of the image is no better a guess than anywhere else, colour says nothing about the label, and the
ears are the planted feature. Every test image has a *twin* drawn without the ears (the background shows
where they were), with the ears' region as a mask: `pet_twins` and `pet_feature_masks` read them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from .lookalike_draw import TWINS, background, begin, contrasting_colour, publish
from .oxford_pets import PETS_FOLDER, TRIMAP_BACKGROUND, TRIMAP_BORDER, TRIMAP_PET, PetsDataset, pets_ready

CAT_BREEDS = ("Abyssinian", "Bengal", "Persian")  # Pets names cat breeds capitalized, dog breeds not
DOG_BREEDS = ("beagle", "boxer", "pug")
PET_FEATURE = "ears"  # the planted feature: the only part of the drawing that differs between cats and dogs


def draw_pet(rng: np.random.Generator, species: int, h: int, w: int) -> dict[str, np.ndarray]:
    """One look-alike pet of `species` (1 cat, 2 dog) in an `h` x `w` image: {"image", "twin"} uint8
    `(h, w, 3)` (the twin: the same drawing without the ears), {"pet", "ears"} bool `(h, w)` (the whole pet;
    the ears outside the body). The generator is used the same way for cats and dogs."""
    bg = background(rng, h, w)
    ry = rng.uniform(0.12, 0.2) * min(h, w)
    rx = ry * rng.uniform(0.95, 1.3)
    cx, cy = rng.uniform(1.35 * rx, w - 1.35 * rx), rng.uniform(1.8 * ry, h - 1.05 * ry)
    colour = contrasting_colour(rng, bg.mean(axis=(0, 1)))
    noise = rng.normal(0, 12, size=(h, w, 3))
    body_img, ears_img = Image.new("L", (w, h), 0), Image.new("L", (w, h), 0)
    ImageDraw.Draw(body_img).ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=255)
    d = ImageDraw.Draw(ears_img)
    for side in (-1, 1):
        if species == 1:  # pointed ears on top
            ex = cx + side * 0.55 * rx
            d.polygon([(ex - 0.32 * rx, cy - 0.6 * ry), (ex + 0.32 * rx, cy - 0.6 * ry),
                       (ex + side * 0.1 * rx, cy - 1.75 * ry)], fill=255)
        else:  # floppy ears hanging at the sides
            ex, ey = cx + side * 1.0 * rx, cy + 0.05 * ry
            d.ellipse((ex - 0.3 * rx, ey - 0.6 * ry, ex + 0.3 * rx, ey + 0.6 * ry), fill=255)
    body = np.asarray(body_img) > 127
    ears = (np.asarray(ears_img) > 127) & ~body
    out = {}
    for key, shape in (("image", body | ears), ("twin", body)):
        arr = bg.copy()
        arr[shape] = np.clip(colour + noise[shape], 0, 255)
        img = Image.fromarray(arr.astype(np.uint8))
        face = ImageDraw.Draw(img)
        for ex, ey, r in ((cx - 0.35 * rx, cy - 0.15 * ry, 0.1 * ry), (cx + 0.35 * rx, cy - 0.15 * ry, 0.1 * ry),
                          (cx, cy + 0.25 * ry, 0.08 * ry)):  # eyes and nose, the same for both species
            face.ellipse((ex - r, ey - r, ex + r, ey + r), fill=(25, 25, 25))
        out[key] = np.asarray(img)
    return {**out, "pet": body | ears, "ears": ears}


def _trimap(pet: np.ndarray) -> np.ndarray:
    outline = Image.fromarray(pet.astype(np.uint8) * 255)
    grown = np.asarray(outline.filter(ImageFilter.MaxFilter(5))) > 127
    shrunk = np.asarray(outline.filter(ImageFilter.MinFilter(5))) > 127
    trimap = np.full(pet.shape, TRIMAP_BACKGROUND, np.uint8)
    trimap[grown & ~shrunk] = TRIMAP_BORDER
    trimap[shrunk] = TRIMAP_PET
    return trimap


def make_fake_pets(root: str | os.PathLike, n: int = 60, seed: int = 0) -> Path:
    """Write a deterministic miniature Oxford-IIIT Pet (`n` images, 60% trainval, 40% test; a third cats) in
    the official layout under `<root>/oxford-iiit-pet` and return that folder: `draw_pet` images, trimaps
    (1 pet, 3 a 2-pixel border band, 2 elsewhere), the lists; and for each test image its twin without the
    ears (`lookalike_twins/images/<name>.jpg`) and the ears' mask (`lookalike_twins/regions/<name>.png`)."""
    base, tmp = begin(root, PETS_FOLDER, pets_ready, n, 4, "make_fake_pets")
    if tmp is None:
        return base
    for sub in ("images", "annotations/trimaps", f"{TWINS}/images", f"{TWINS}/regions"):
        (tmp / sub).mkdir(parents=True)
    rng = np.random.default_rng(seed)
    breeds = sorted(CAT_BREEDS + DOG_BREEDS, key=str.lower)  # class ids follow this order, as in list.txt
    n_trainval = int(round(0.6 * n))
    rows = []
    for i in range(n):
        species = 1 if i % 3 == 0 else 2  # a third cats, two thirds dogs, as in Pets
        breed = (DOG_BREEDS if species == 2 else CAT_BREEDS)[(i // 3) % 3]
        name = f"{breed}_{i + 1}"
        h, w = int(rng.integers(100, 150)), int(rng.integers(110, 170))
        pet = draw_pet(rng, species, h, w)
        Image.fromarray(pet["image"]).save(tmp / "images" / f"{name}.jpg", quality=90)
        Image.fromarray(_trimap(pet["pet"]), "L").save(tmp / "annotations" / "trimaps" / f"{name}.png")
        if i >= n_trainval:  # a test image: its twin and the planted region
            Image.fromarray(pet["twin"]).save(tmp / TWINS / "images" / f"{name}.jpg", quality=90)
            Image.fromarray(pet["ears"].astype(np.uint8) * 255, "L").save(tmp / TWINS / "regions" / f"{name}.png")
        class_id = breeds.index(breed) + 1
        breed_id = (CAT_BREEDS if species == 1 else DOG_BREEDS).index(breed) + 1
        rows.append(f"{name} {class_id} {species} {breed_id}")
    header = ["#Image CLASS-ID SPECIES BREED ID", "#CLASS-ID: 1:37 Class ids", "#SPECIES: 1:Cat 2:Dog",
              "#BREED ID: 1-12:Cat 1-25:Dog", "#All images with 1st letter as capital are cat images",
              "#images with small first letter are dog images"]
    (tmp / "annotations" / "list.txt").write_text("\n".join(header + rows) + "\n")
    (tmp / "annotations" / "trainval.txt").write_text("\n".join(rows[:n_trainval]) + "\n")
    (tmp / "annotations" / "test.txt").write_text("\n".join(rows[n_trainval:]) + "\n")
    return publish(tmp, base)


def has_pet_twins(base: str | os.PathLike) -> bool:
    """Whether the Pets folder `base` holds look-alike twins (real Oxford-IIIT Pet has none)."""
    return (Path(base) / TWINS / "images").is_dir()


def _idx(ds: PetsDataset, idx: Sequence[int] | None) -> list[int]:
    return list(range(len(ds))) if idx is None else [int(i) for i in idx]


def pet_twins(ds: PetsDataset, idx: Sequence[int] | None = None) -> torch.Tensor:
    """The twins (the same pets without their ears) of the test images `idx` of a look-alike `ds`, read and
    resized as `ds` reads its images: `(n, 3, S, S)` in [0, 1]. FileNotFoundError for an image without twin."""
    idx = _idx(ds, idx)
    twins = PetsDataset(ds.base / TWINS, [ds.names[i] for i in idx], [int(ds.labels[i]) + 1 for i in idx], ds.size)
    missing = [n for n in twins.names if not (twins.base / "images" / f"{n}.jpg").is_file()]
    if missing:
        raise FileNotFoundError(f"no twin for {missing[:3]}: twins exist for the look-alike test split only.")
    return twins.images()


def pet_feature_masks(ds: PetsDataset, idx: Sequence[int] | None = None) -> torch.Tensor:
    """Bool masks `(n, S, S)` of the planted feature (the ears outside the body) of the test images `idx` of
    a look-alike `ds`, resized with nearest neighbours like the trimaps."""
    out = []
    for i in _idx(ds, idx):
        with Image.open(ds.base / TWINS / "regions" / f"{ds.names[i]}.png") as img:
            out.append(np.asarray(img.convert("L").resize((ds.size, ds.size), Image.NEAREST)) > 127)
    return torch.from_numpy(np.stack(out))
