"""Look-alike data sets for `offline` and `smoke`: drawn pets and faces written in the official layouts.

The drawing lives in `lookalike_pets` (pets whose label only their ears' shape carries, at random positions,
scales and colours) and `lookalike_faces` (faces with planted answers), the shared plumbing in
`lookalike_draw`; this module gathers what the rest of the course calls, and says how many images a
profile's subsets need (`lookalike_sizes`). Both writers are deterministic (a local generator) and write a
finished folder in one step, with a *twin* of each test image drawn without its planted feature.
"""
from __future__ import annotations

import math

from .lookalike_draw import TWINS
from .lookalike_faces import (DRAWN_ATTRIBUTES, LOOKALIKE_DRAWN, LOOKALIKE_PLANTS, Plant, concept_faces, draw_face,
                              face_twins, has_face_twins, make_fake_celeba, read_lookalike_drawn)
from .lookalike_pets import (CAT_BREEDS, DOG_BREEDS, PET_FEATURE, draw_pet, has_pet_twins, make_fake_pets,
                             pet_feature_masks, pet_twins)

SMOKE_PETS = 60  # the fewest images in a look-alike Pets (36 trainval, 24 test); more when a profile needs more
SMOKE_CELEBA = 90  # the fewest images in a look-alike CelebA (54 train, 18 val, 18 test); likewise

__all__ = ["CAT_BREEDS", "DOG_BREEDS", "DRAWN_ATTRIBUTES", "LOOKALIKE_DRAWN", "LOOKALIKE_PLANTS", "PET_FEATURE",
           "Plant", "SMOKE_CELEBA", "SMOKE_PETS", "TWINS", "concept_faces", "draw_face", "draw_pet", "face_twins",
           "has_face_twins", "has_pet_twins", "lookalike_sizes", "make_fake_celeba", "make_fake_pets",
           "pet_feature_masks", "pet_twins", "read_lookalike_drawn"]


def lookalike_sizes(n_train: int, n_val: int, n_test: int) -> tuple[int, int]:
    """(Pets, CelebA) image counts of look-alikes large enough for subsets of `n_train`, `n_val` and `n_test`
    images (the look-alikes put 60% of Pets in trainval and 40% in test, and 60/20/20% of CelebA in its
    train/val/test partitions); at least `SMOKE_PETS` and `SMOKE_CELEBA`."""
    if min(n_train, n_val, n_test) < 0:
        raise ValueError(f"subset sizes must be >= 0; got {n_train}, {n_val}, {n_test}.")
    pets = max(math.ceil((n_train + n_val) / 0.6), math.ceil(n_test / 0.4)) + 2
    celeba = max(math.ceil(n_train / 0.6), math.ceil(n_val / 0.2), math.ceil(n_test / 0.2)) + 2
    return max(SMOKE_PETS, pets), max(SMOKE_CELEBA, celeba)
