"""Claims of notebooks 04 (fooling images) and 05 (style transfer), checked on the real pretrained course
model at the `offline` profile's sizes, as tests/test_lessons.py does for the others.

Each claim is about trained weights: with `COURSE_WEIGHTS=random` every test here fails (checked when they
were written), so none of them is met by any network whatever.
"""
from __future__ import annotations

import pytest
import torch

import helpers
from helpers import attacks, metrics, saliency, settings

OFFLINE = settings.SETTINGS["offline"]
SIZE = OFFLINE.image_size  # 224


# ----------------------------------------------------------------------------------- 04 fooling
def test_04_a_targeted_perturbation_moves_the_saliency_map_more_than_noise_of_its_size(model):
    """Notebook 04, section 3: fooled to 'ostrich' (to the decision boundary, L2 steps of the offline length),
    the vanilla saliency map of the photo's *own* class changes far more than under Gaussian noise of the
    same L2 norm (Ghorbani et al. 2019; Dombrowski et al. 2019): the gradient map is fragile to a small
    perturbation aimed at the network, not to any small perturbation."""
    x = helpers.load_batch(["cat", "coffee", "rocket"], SIZE)
    with torch.no_grad():
        own = model(x).argmax(1)
    target = model.labels.index("ostrich")
    fooled, steps = attacks.fool(model, x, target, step_size=OFFLINE.attacks.step, max_steps=40)
    assert (steps > 0).all(), steps  # fooled, and not already an ostrich
    diff = (fooled - x).flatten(1)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    noisy = (x + noise * (diff.norm(dim=1) / noise.flatten(1).norm(dim=1)).view(-1, 1, 1, 1)).clamp(0, 1)
    ref = saliency.vanilla_saliency(model, x, own)
    r_fooled = metrics.spearman(saliency.vanilla_saliency(model, fooled, own), ref)
    r_noise = metrics.spearman(saliency.vanilla_saliency(model, noisy, own), ref)
    assert (r_noise > 0.5).all() and (r_fooled < r_noise - 0.15).all(), (r_fooled, r_noise)
