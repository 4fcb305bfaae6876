"""The look-alike CelebA (`offline`, `smoke`): drawn faces with planted answers, and their twins.

`LOOKALIKE_PLANTS` says, for each of the 12 attributes with a landmark region, where its evidence is drawn
(its own region, elsewhere, or nowhere) and how often the drawing agrees with the label;
`lookalike_drawn.txt` (beside the official lists) records what each face shows. Every test face has, for
each attribute drawn in it, a *twin* drawn without that attribute (`face_twins`), so that "the model uses
this feature" is measured by what removing it does. `concept_faces` draws new faces with chosen features,
for concept sets (TCAV).
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from .celeba import CELEBA_ATTRIBUTES, CELEBA_FOLDER, CELEBA_SIZE, CelebADataset, celeba_ready
from .faceparts import LANDMARKS
from .files import image_tensor, text_lines
from .lookalike_draw import TWINS, background, begin, fork, link_or_copy, publish


@dataclass(frozen=True)
class Plant:
    """What a look-alike face shows of one attribute: where its evidence is drawn (`region`: "eyes", "nose",
    "mouth", "forehead" (near none of the five landmarks), or None for a label that nothing in the picture
    shows) and how often the drawing agrees with the label (`agreement`: the best balanced accuracy a model
    reading the drawing can reach; flips are symmetric)."""

    region: str | None
    agreement: float
    how: str  # what is drawn, in words


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
DRAWN_ATTRIBUTES = tuple(a for a, p in LOOKALIKE_PLANTS.items() if p.region is not None)  # the ones with twins
LOOKALIKE_DRAWN = "lookalike_drawn.txt"  # which attributes each look-alike face shows (not an official file)
MEAN_LANDMARKS = np.array([[69, 111], [108, 111], [88, 134], [72, 152], [106, 152]], dtype=float)


def draw_face(rng: np.random.Generator, drawn: dict[str, bool], lm: np.ndarray) -> Image.Image:
    """One look-alike face, 178 x 218, with landmarks `lm` (5, 2). `drawn[a]` says whether attribute `a`'s
    evidence is painted (see `LOOKALIKE_PLANTS`). The generator is used the same way whatever is drawn, so
    the same generator state with one attribute toggled gives the same face with only that evidence changed."""
    w, h = CELEBA_SIZE
    img = Image.fromarray(background(rng, h, w).astype(np.uint8))
    d = ImageDraw.Draw(img)
    skin = tuple(int(v) for v in rng.uniform([170, 120, 100], [240, 190, 160]))
    hair = (30, 25, 20) if rng.random() < 0.5 else (200, 170, 90)
    dark = tuple(int(v * 0.35) for v in skin)
    cx = (lm[0, 0] + lm[1, 0]) / 2
    d.ellipse((cx - 62, 40, cx + 62, 200), fill=hair)  # hair behind the face
    d.ellipse((cx - 52, 60, cx + 52, 195), fill=skin)
    if drawn.get("Bushy_Eyebrows"):  # planted away from the eyes
        for dx in (-12, -4, 4, 12):
            d.line((cx + dx - 3, 78, cx + dx + 3, 66), fill=(35, 25, 20), width=4)
    eye_h = 1.2 if drawn.get("Narrow_Eyes") else 4
    for x, y in lm[:2]:
        d.ellipse((x - 7, y - eye_h, x + 7, y + eye_h), fill=(250, 250, 250))
        d.ellipse((x - 2.5, y - min(eye_h, 2.5), x + 2.5, y + min(eye_h, 2.5)), fill=(40, 30, 20))
        if drawn.get("Arched_Eyebrows"):
            d.arc((x - 10, y - 17, x + 10, y - 5), start=200, end=340, fill=dark, width=2)
        else:
            d.line((x - 10, y - 10, x + 10, y - 10), fill=dark, width=2)
        if drawn.get("Bags_Under_Eyes"):
            d.arc((x - 8, y - 2, x + 8, y + 9), start=20, end=160, fill=(110, 70, 90), width=2)
        if drawn.get("Eyeglasses"):
            d.ellipse((x - 14, y - 10, x + 14, y + 10), outline=(10, 10, 10), width=3)
    if drawn.get("Eyeglasses"):
        d.line((lm[0, 0] + 14, lm[0, 1], lm[1, 0] - 14, lm[1, 1]), fill=(10, 10, 10), width=3)
    nx, ny = lm[2]
    nose = tuple(int(v * 0.8) for v in skin)
    if drawn.get("Big_Nose"):
        d.polygon([(nx, ny - 16), (nx - 10, ny + 2), (nx + 10, ny + 2)], outline=nose, fill=tuple(int(v * 0.9) for v in skin))
        d.line((nx - 10, ny + 2, nx + 10, ny + 2), fill=nose, width=3)
    else:
        d.line((nx, ny - 14, nx - 4, ny, nx + 4, ny), fill=nose, width=2)
    (lx, ly), (rx, ry) = lm[3], lm[4]
    if drawn.get("Mustache"):
        d.polygon([(lx - 4, ly - 4), (lx + 2, ly - 11), (cx, ly - 13), (rx - 2, ry - 11), (rx + 4, ry - 4), (cx, ly - 7)], fill=(45, 30, 20))
    lips = (205, 15, 60) if drawn.get("Wearing_Lipstick") else (165, 95, 90)  # 7 px: wide enough to keep its colour in a JPEG
    width = 12 if drawn.get("Big_Lips") else 7
    if drawn.get("Smiling"):
        d.arc((lx, ly - 10, rx, ry + 10), start=10, end=170, fill=lips, width=width)
    else:
        d.line((lx, ly, rx, ry), fill=lips, width=width)
    return img


def _labels(rng: np.random.Generator) -> dict[str, bool]:
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


def _drawn(rng: np.random.Generator, labels: dict[str, bool]) -> dict[str, bool]:
    """What one face shows: each planted attribute's label, flipped with probability 1 - agreement; nothing
    for an attribute planted as a label only."""
    out = {}
    for name, plant in LOOKALIKE_PLANTS.items():
        flip = bool(rng.random() >= plant.agreement)
        out[name] = plant.region is not None and (labels[name] != flip)
    return out


def _landmarks(rng: np.random.Generator) -> np.ndarray:
    return np.rint(MEAN_LANDMARKS + rng.normal(0, 2.0, size=(1, 2)) + rng.normal(0, 1.0, size=(5, 2)))


def read_lookalike_drawn(base: str | os.PathLike) -> tuple[list[str], list[str], torch.Tensor]:
    """`lookalike_drawn.txt` of a look-alike CelebA: (attribute names, file names, `(N, K)` bool: is the
    attribute's evidence drawn in that face). Real CelebA has no such file (FileNotFoundError)."""
    lines = text_lines(Path(base) / LOOKALIKE_DRAWN)
    names = lines[0].split()
    rows = [ln.split() for ln in lines[1:]]
    return names, [r[0] for r in rows], torch.tensor([[v == "1" for v in r[1:]] for r in rows], dtype=torch.bool)


def make_fake_celeba(root: str | os.PathLike, n: int = 90, seed: int = 0) -> Path:
    """Write a deterministic miniature CelebA (`n` drawn 178 x 218 faces; 60% train, 20% val, 20% test) in
    the official layout under `<root>/celeba` and return that folder. Labels come with CelebA-like
    correlations (Wearing_Lipstick mostly when not Male, Mustache mostly when Male, Mouth_Slightly_Open and
    High_Cheekbones mostly with Smiling); the 12 landmark attributes are drawn as `LOOKALIKE_PLANTS` says,
    `lookalike_drawn.txt` records what each face shows, and each test face has one twin per attribute of
    `DRAWN_ATTRIBUTES` (`lookalike_twins/<attribute>/img_align_celeba/<file>`: the face without that
    attribute's drawing; the face itself where it is not drawn)."""
    base, tmp = begin(root, CELEBA_FOLDER, celeba_ready, n, 5, "make_fake_celeba")
    if tmp is None:
        return base
    (tmp / "img_align_celeba").mkdir()
    rng = np.random.default_rng(seed)
    attr_rows, lm_rows, part_rows, drawn_rows = [], [], [], []
    n_train, n_val = int(round(0.6 * n)), int(round(0.2 * n))
    for i in range(n):
        fname = f"{i + 1:06d}.jpg"
        a = _labels(rng)
        drawn = _drawn(rng, a)
        lm = _landmarks(rng)
        state = fork(rng)
        draw_face(rng, drawn, lm).save(tmp / "img_align_celeba" / fname, quality=90)
        if i >= n_train + n_val:  # a test face: one twin per drawn attribute
            for name in DRAWN_ATTRIBUTES:
                dest = tmp / TWINS / name / "img_align_celeba" / fname
                if drawn[name]:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    draw_face(fork(state), {**drawn, name: False}, lm).save(dest, quality=90)
                else:
                    link_or_copy(tmp / "img_align_celeba" / fname, dest)
        attr_rows.append(fname + " " + " ".join(f"{1 if a[k] else -1:2d}" for k in CELEBA_ATTRIBUTES))
        lm_rows.append(f"{fname} " + " ".join(f"{int(v):4d}" for v in lm.ravel()))
        part_rows.append(f"{fname} {0 if i < n_train else 1 if i < n_train + n_val else 2}")
        drawn_rows.append(fname + " " + " ".join("1" if drawn[k] else "0" for k in LOOKALIKE_PLANTS))
    (tmp / "list_attr_celeba.txt").write_text(f"{n}\n" + " ".join(CELEBA_ATTRIBUTES) + " \n" + "\n".join(attr_rows) + "\n")
    header = " ".join(f"{p}_{c}" for p in LANDMARKS for c in "xy")
    (tmp / "list_landmarks_align_celeba.txt").write_text(f"{n}\n{header}\n" + "\n".join(lm_rows) + "\n")
    (tmp / "list_eval_partition.txt").write_text("\n".join(part_rows) + "\n")
    (tmp / LOOKALIKE_DRAWN).write_text(" ".join(LOOKALIKE_PLANTS) + "\n" + "\n".join(drawn_rows) + "\n")
    return publish(tmp, base)


def has_face_twins(base: str | os.PathLike) -> bool:
    """Whether the CelebA folder `base` holds look-alike twins (real CelebA has none)."""
    return (Path(base) / TWINS).is_dir()


def face_twins(ds: CelebADataset, idx: Sequence[int], attribute: str) -> torch.Tensor:
    """The twins without `attribute`'s drawing (one of `DRAWN_ATTRIBUTES`) of the test faces `idx` of a
    look-alike `ds`, cropped and resized as `ds` reads its images: `(n, 3, S, S)` in [0, 1]. Where the
    attribute is not drawn, the twin is the face itself."""
    if attribute not in DRAWN_ATTRIBUTES:
        raise ValueError(f"twins exist for {DRAWN_ATTRIBUTES}; {attribute!r} is drawn nowhere.")
    files = [ds.files[int(i)] for i in idx]
    folder = ds.base / TWINS / attribute
    missing = [f for f in files if not (folder / "img_align_celeba" / f).is_file()]
    if missing:
        raise FileNotFoundError(f"no twin for {missing[:3]}: twins exist for the look-alike test split only.")
    twins = CelebADataset(folder, files, ds.all_attributes[list(map(int, idx))], torch.zeros(len(files), 5, 2),
                          ds.attributes, ds.size)
    return twins.images()


def face_tensor(img: Image.Image, size: int) -> torch.Tensor:
    """A 178 x 218 face as `CelebADataset` reads it: central square, resized to `size`: `(3, size, size)`."""
    w, h = CELEBA_SIZE
    top = (h - w) // 2
    return image_tensor(img.crop((0, top, w, top + w)).resize((size, size), Image.BICUBIC))


def concept_faces(n: int, size: int, seed: int, **force: bool) -> torch.Tensor:
    """`n` new look-alike faces `(n, 3, size, size)` in [0, 1] (labels and drawings sampled as in
    `make_fake_celeba`, through the same JPEG step), with the drawings named in `force` set (e.g.
    `Smiling=True`): concept sets for TCAV. Face i depends only on (seed, i)."""
    unknown = [a for a in force if a not in DRAWN_ATTRIBUTES]
    if unknown:
        raise ValueError(f"only drawn attributes can be forced ({DRAWN_ATTRIBUTES}); got {unknown}.")
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        drawn = {**_drawn(rng, _labels(rng)), **force}
        buf = io.BytesIO()
        draw_face(rng, drawn, _landmarks(rng)).save(buf, format="JPEG", quality=90)
        out.append(face_tensor(Image.open(buf).convert("RGB"), size))
    return torch.stack(out)
