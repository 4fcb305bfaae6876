"""Dry run of notebook 06 in the `full` profile, without the downloads: how long the case study takes on this
machine once the data and weights are there, section by section.

    .venv/bin/python benchmarks/dry_run_case_study.py            # the real timing: full sizes, one command
    .venv/bin/python benchmarks/dry_run_case_study.py --second-run   # then again, from the checkpoints

It writes, under a scratch folder (`--work`, default a new temporary folder, deleted at the end unless
`--keep`):
- full-size look-alike data sets in the official on-disk formats: Oxford-IIIT Pet with 7,349 images
  (500 x 375 JPEGs, a third cats; 3,680 trainval and 3,669 test, as the official split), their trimaps and
  lists; CelebA with 202,599 aligned 178 x 218 JPEGs, the attribute, landmark and partition lists
  (162,770 / 19,867 / 19,962 faces, the official partition) with CelebA's label rates for the attributes the
  notebook uses. Only `--distinct` images of each are drawn; the other files are hard links to them (the
  notebook reads and decodes every file it uses, so the cost is the same; the labels do not match the
  pictures, which does not matter with random weights);
- random-weight state dicts of ResNet-18 and VGG19 under torchvision's cache names
  (`$TORCH_HOME/hub/checkpoints/resnet18-f37072fd.pth`, `vgg19-dcbb9e9d.pth`), so that `full` loads them as
  it would the downloaded ones; nothing is downloaded (the script checks that no file appeared in the cache
  and no partial download in the data folder).

Then it runs the notebook in a fresh Jupyter kernel with `COURSE_PROFILE=full` and prints the seconds of
each section (a markdown heading `## N.`) and the total. Checks of trained behaviour fail under random
weights; those failures are reported and passed over. `--set key=value` changes a `cfg` setting for a
quicker check of the script itself (the notebook's `cfg` is replaced after its set-up cell; those timings
are not the `full` profile's); `--celeba-images` and `--pets-images` write smaller data sets for the same
purpose. Run the real timing on an otherwise idle machine: a shared CPU overstates times several fold.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "06_case_study_pets_celeba.ipynb"
PETS_IMAGES, PETS_TRAINVAL = 7349, 3680
CELEBA_IMAGES, CELEBA_TRAIN, CELEBA_VAL = 202599, 162770, 19867
PET_SIZE = (500, 375)  # a typical Oxford-IIIT Pet photo
# CelebA's positive rates (training split, rounded) for the attributes the notebook uses; others get 0.2.
CELEBA_RATES = {"Eyeglasses": 0.065, "Narrow_Eyes": 0.115, "Bags_Under_Eyes": 0.20, "Arched_Eyebrows": 0.27,
                "Bushy_Eyebrows": 0.14, "Big_Nose": 0.235, "Pointy_Nose": 0.28, "Smiling": 0.48,
                "Big_Lips": 0.24, "Mustache": 0.04, "Male": 0.42}


def _link_many(sources: list[Path], dests: list[Path]) -> None:
    for i, dest in enumerate(dests):
        os.link(sources[i % len(sources)], dest)


def write_pets(root: Path, n: int, distinct: int) -> Path:
    """Oxford-IIIT Pet in its official layout under root/oxford-iiit-pet, n images (hard links to `distinct`
    drawn look-alikes, resized to 500 x 375 with their trimaps)."""
    from PIL import Image

    from helpers.data import lookalike, oxford_pets

    drawn = lookalike.make_fake_pets(root / "_drawn_pets", max(distinct, 4))
    species_of = oxford_pets.read_pet_list(drawn)
    by_species = {1: [k for k, s in species_of.items() if s == 1], 2: [k for k, s in species_of.items() if s == 2]}
    base = root / oxford_pets.PETS_FOLDER
    (base / "images").mkdir(parents=True)
    (base / "annotations" / "trimaps").mkdir(parents=True)
    big = {}
    for name in species_of:
        img = Image.open(drawn / "images" / f"{name}.jpg").convert("RGB").resize(PET_SIZE, Image.BICUBIC)
        tri = Image.open(drawn / "annotations" / "trimaps" / f"{name}.png").resize(PET_SIZE, Image.NEAREST)
        big[name] = (drawn / f"{name}.big.jpg", drawn / f"{name}.big.png")
        img.save(big[name][0], quality=90)
        tri.save(big[name][1])
    breeds = {1: lookalike.CAT_BREEDS, 2: lookalike.DOG_BREEDS}
    all_breeds = sorted(lookalike.CAT_BREEDS + lookalike.DOG_BREEDS, key=str.lower)
    rows = []
    for i in range(n):
        species = 1 if i % 3 == 0 else 2
        breed = breeds[species][(i // 3) % 3]
        name = f"{breed}_{i + 1}"
        src = by_species[species][i % len(by_species[species])]
        os.link(big[src][0], base / "images" / f"{name}.jpg")
        os.link(big[src][1], base / "annotations" / "trimaps" / f"{name}.png")
        rows.append(f"{name} {all_breeds.index(breed) + 1} {species} {breeds[species].index(breed) + 1}")
    n_trainval = round(n * PETS_TRAINVAL / PETS_IMAGES)
    (base / "annotations" / "list.txt").write_text("#Image CLASS-ID SPECIES BREED ID\n" + "\n".join(rows) + "\n")
    (base / "annotations" / "trainval.txt").write_text("\n".join(rows[:n_trainval]) + "\n")
    (base / "annotations" / "test.txt").write_text("\n".join(rows[n_trainval:]) + "\n")
    shutil.rmtree(root / "_drawn_pets")
    return base


def write_celeba(root: Path, n: int, distinct: int, seed: int = 0) -> Path:
    """CelebA in its official layout under root/celeba: n faces (hard links to `distinct` drawn look-alikes,
    with their landmarks), labels drawn with CelebA's rates and its strongest correlations, the official
    partition boundaries scaled to n."""
    from helpers.data import celeba, lookalike

    drawn = lookalike.make_fake_celeba(root / "_drawn_celeba", max(distinct, 5))
    lm_files, lm = celeba.read_celeba_landmarks(drawn)
    base = root / celeba.CELEBA_FOLDER
    (base / "img_align_celeba").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    names = celeba.CELEBA_ATTRIBUTES
    col = {a: i for i, a in enumerate(names)}
    attrs = rng.random((n, len(names))) < np.array([CELEBA_RATES.get(a, 0.2) for a in names])
    male = attrs[:, col["Male"]]
    u = rng.random((n, 4))
    attrs[:, col["Wearing_Lipstick"]] = u[:, 0] < np.where(male, 0.01, 0.80)
    attrs[:, col["Heavy_Makeup"]] = attrs[:, col["Wearing_Lipstick"]] & (u[:, 1] < 0.8)
    attrs[:, col["Mustache"]] = u[:, 2] < np.where(male, 0.095, 0.001)
    attrs[:, col["Mouth_Slightly_Open"]] = u[:, 3] < np.where(attrs[:, col["Smiling"]], 0.7, 0.27)
    files = [f"{i + 1:06d}.jpg" for i in range(n)]
    _link_many([drawn / "img_align_celeba" / f for f in lm_files], [base / "img_align_celeba" / f for f in files])
    values = np.where(attrs, " 1", "-1")
    with open(base / "list_attr_celeba.txt", "w") as f:
        f.write(f"{n}\n" + " ".join(names) + " \n")
        f.writelines(file + " " + " ".join(row) + "\n" for file, row in zip(files, values))
    xy = lm.reshape(len(lm_files), 10).int().tolist()
    header = " ".join(f"{p}_{c}" for p in ("lefteye", "righteye", "nose", "leftmouth", "rightmouth") for c in "xy")
    with open(base / "list_landmarks_align_celeba.txt", "w") as f:
        f.write(f"{n}\n{header}\n")
        f.writelines(file + " " + " ".join(f"{v:4d}" for v in xy[i % len(xy)]) + "\n" for i, file in enumerate(files))
    n_train, n_val = round(n * CELEBA_TRAIN / CELEBA_IMAGES), round(n * CELEBA_VAL / CELEBA_IMAGES)
    with open(base / "list_eval_partition.txt", "w") as f:
        f.writelines(f"{file} {0 if i < n_train else 1 if i < n_train + n_val else 2}\n" for i, file in enumerate(files))
    shutil.rmtree(root / "_drawn_celeba")
    return base


def write_random_weights(checkpoints: Path) -> list[Path]:
    """Random-weight state dicts of ResNet-18 and VGG19 under torchvision's cache names."""
    import torch
    import torchvision

    from helpers import models

    checkpoints.mkdir(parents=True, exist_ok=True)
    out = []
    for name, build in (("resnet18", torchvision.models.resnet18), ("vgg19", torchvision.models.vgg19)):
        path = checkpoints / models.model_spec(name).filename
        torch.save(build(weights=None).state_dict(), path)
        out.append(path)
    return out


def _section(cell) -> str | None:
    for line in cell.source.splitlines():
        if line.startswith("## "):
            return line[3:].strip()
    return None


def run_notebook(path: Path, env: dict[str, str], overrides: dict[str, object]) -> list[tuple[str, float]]:
    """Execute the notebook in a fresh kernel; (section, seconds) in order, exercises included."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    if overrides:
        first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
        nb.cells.insert(first_code + 1, nbformat.v4.new_code_cell(
            f"from helpers.settings import changed\ncfg = changed(cfg, **{overrides!r})\nprint('dry run: cfg changed', {overrides!r})"))
    old_env = dict(os.environ)
    os.environ.update(env)
    try:
        client = NotebookClient(nb, timeout=7200, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
        sections: dict[str, float] = {}
        current = "set-up"
        with client.setup_kernel():
            for i, cell in enumerate(nb.cells):
                if cell.cell_type == "markdown":
                    current = _section(cell) or current
                    continue
                t = time.perf_counter()
                try:
                    client.execute_cell(cell, i)
                except Exception as exc:  # nbclient's CellExecutionError
                    if "AssertionError" not in str(exc):
                        raise
                    print(f"          (cell {i}: a check of trained behaviour failed: random weights)", flush=True)
                dt = time.perf_counter() - t
                sections[current] = sections.get(current, 0.0) + dt
                print(f"{dt:8.1f} s  [{current[:40]}] {cell.source.strip().splitlines()[0][:60]}", flush=True)
    finally:
        os.environ.clear()
        os.environ.update(old_env)
    return list(sections.items())


def _value(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="scratch folder (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (data, weights, checkpoints)")
    parser.add_argument("--second-run", action="store_true", help="run the notebook again, from its checkpoints")
    parser.add_argument("--pets-images", type=int, default=PETS_IMAGES)
    parser.add_argument("--celeba-images", type=int, default=CELEBA_IMAGES)
    parser.add_argument("--distinct", type=int, default=300, help="distinct drawings per data set")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change a cfg setting (for checking this script quickly; not the full timing)")
    parser.add_argument("--json", type=Path, help="also write the per-section seconds here")
    args = parser.parse_args()
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = _value(value)
    sys.path.insert(0, str(ROOT))
    from helpers import settings

    unknown = [k for k in overrides if k not in settings.setting_names(settings.SETTINGS["full"])]
    if unknown:
        parser.error(f"unknown settings {unknown}")

    work = args.work or Path(tempfile.mkdtemp(prefix="dry-run-06-"))
    work.mkdir(parents=True, exist_ok=True)
    data, torch_home = work / "data", work / "torch"
    try:
        t = time.perf_counter()
        if not (data / "celeba").is_dir():
            data.mkdir(parents=True, exist_ok=True)
            write_pets(data, args.pets_images, args.distinct)
            write_celeba(data, args.celeba_images, args.distinct)
        cache = torch_home / "hub" / "checkpoints"
        if not cache.is_dir():
            write_random_weights(cache)
        before = sorted(p.name for p in cache.iterdir())
        print(f"data and weights ready in {time.perf_counter() - t:.0f} s under {work} "
              f"({args.pets_images} pets, {args.celeba_images} faces, {args.distinct} distinct drawings each)", flush=True)
        env = {"COURSE_PROFILE": "full", "COURSE_DATA": str(data), "TORCH_HOME": str(torch_home), "MPLBACKEND": "Agg",
               "COURSE_WEIGHTS": "pretrained"}  # the cached files are loaded as downloaded weights would be
        results = {}
        for run in (["first run", "second run (checkpoints)"] if args.second_run else ["first run"]):
            start = time.perf_counter()
            sections = run_notebook(NOTEBOOK, env, overrides)
            total = time.perf_counter() - start
            results[run] = {"total_s": round(total, 1), "sections": [[s, round(v, 1)] for s, v in sections]}
            print(f"\n{NOTEBOOK.name}, profile full, random weights from torchvision's cache names, {run}"
                  + (f", cfg changed: {overrides}" if overrides else "") + ":")
            for name, seconds in sections:
                print(f"  {seconds:8.1f} s  {name}")
            print(f"  {total:8.1f} s  in total (load average {os.getloadavg()[0]:.1f} at the end)", flush=True)
        after = sorted(p.name for p in cache.iterdir())
        partial = [str(p) for p in data.rglob("*.part")]
        if after != before or partial:
            raise SystemExit(f"a download was attempted: weights cache {before} -> {after}; partial files {partial}")
        print("no download attempted (weights cache unchanged, no partial files)")
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
