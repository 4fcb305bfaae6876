"""benchmarks/dry_run_case_study.py writes look-alike data sets that the real parsers read as Oxford-IIIT Pet
and CelebA in their official layouts (checked here at a small size)."""
import importlib.util
import os
from pathlib import Path

import numpy as np

from helpers.data import celeba, oxford_pets

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("dry_run_case_study", ROOT / "benchmarks" / "dry_run_case_study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dry_run_data_sets_parse_in_the_official_layouts(tmp_path):
    dry = _script()
    pets_base = dry.write_pets(tmp_path, 60, 6)
    species = oxford_pets.read_pet_list(pets_base)
    assert len(species) == 60 and sum(s == 1 for s in species.values()) == 20  # a third cats
    trainval, test = oxford_pets.read_pet_split(pets_base, "trainval"), oxford_pets.read_pet_split(pets_base, "test")
    assert len(trainval) == round(60 * dry.PETS_TRAINVAL / dry.PETS_IMAGES) and len(trainval) + len(test) == 60
    splits = oxford_pets.pets_splits(pets_base, 32, 10, 4, 8)
    x, y = splits["test"][0]
    assert x.shape == (3, 32, 32) and splits["test"].pet_masks([0]).any()
    first = pets_base / "images" / f"{trainval[0]}.jpg"
    assert os.stat(first).st_nlink > 1  # hard links, not copies

    base = dry.write_celeba(tmp_path, 400, 8)
    names, files, attrs = celeba.read_celeba_attributes(base)
    assert tuple(names) == celeba.CELEBA_ATTRIBUTES and len(files) == 400
    part = celeba.read_celeba_partition(base)
    counts = np.bincount([part[f] for f in files], minlength=3)
    assert counts[0] == round(400 * dry.CELEBA_TRAIN / dry.CELEBA_IMAGES) and counts[2] > 0
    lm_files, landmarks = celeba.read_celeba_landmarks(base)
    assert lm_files == files and landmarks.shape == (400, 5, 2)
    male, lipstick = attrs[:, names.index("Male")], attrs[:, names.index("Wearing_Lipstick")]
    assert lipstick[male].float().mean() < 0.1 < lipstick[~male].float().mean()  # CelebA's strongest correlation
    faces = celeba.celeba_splits(base, 32, ["Eyeglasses", "Smiling"], 20, 5, 5)
    assert faces["test"][0][0].shape == (3, 32, 32)
