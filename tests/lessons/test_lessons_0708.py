"""Claims of notebooks 07 (evaluating explanations) and 08 (the explorer), checked on the real pretrained
course model at the `offline` profile's sizes, as tests/test_lessons.py does for the others.

Each claim is about trained weights: with `COURSE_WEIGHTS=random` every test here fails (checked when they
were written), so none of them is met by any network whatever.
"""
from __future__ import annotations

import pytest
import torch

import helpers
from helpers import cam, config, metrics

OFFLINE = config.SETTINGS["offline"]
SIZE = OFFLINE.image_size  # 224


@pytest.fixture(scope="module")
def photos_and_gradcam(model):
    x = helpers.load_batch(["cat", "coffee"], SIZE)
    with torch.no_grad():
        target = model(x).argmax(dim=1)
    return x, target, cam.grad_cam(model, x, target)


# ------------------------------------------------------------------------ 07 evaluating explanations
def test_07_imputing_the_deleted_pixels_takes_away_the_random_orders_advantage(model, photos_and_gradcam):
    """Notebook 07, section 7 (ROAD, Rong et al. 2022): deleted to black, 20% of the pixels in a random order
    destroy the class far more than Grad-CAM's top 20% (scattered black pixels are foreign to the network);
    filled from their neighbours, the same random holes barely matter, while Grad-CAM's region still costs
    the class more than they do."""
    x, target, gradcam = photos_and_gradcam
    random = torch.rand(gradcam.shape, generator=torch.Generator().manual_seed(0))
    count = round(0.2 * SIZE * SIZE)
    removed = {name: (metrics.importance_ranks(m) < count).view(-1, SIZE, SIZE)
               for name, m in (("gradcam", gradcam), ("random", random))}
    with torch.no_grad():
        def prob(images):
            return model(images).softmax(dim=1).gather(1, target[:, None])[:, 0]
        clean = prob(x)
        black = {name: prob(x * ~r[:, None]) for name, r in removed.items()}
        filled = {name: prob(metrics.linear_imputation(x, r, noise=0.01, generator=torch.Generator().manual_seed(0)))
                  for name, r in removed.items()}
    assert (black["random"] < 0.5 * black["gradcam"]).all(), (black, clean)
    assert (filled["random"] > 0.6 * clean).all(), (filled, clean)
    assert (filled["gradcam"] < filled["random"]).all(), filled


def test_07_imputed_deletion_ranks_grad_cam_above_a_random_order(model, photos_and_gradcam):
    """Notebook 07, section 7: with imputed pixels the random order's deletion AUC rises far above its
    deletion-to-black AUC, and Grad-CAM's order now beats it clearly."""
    x, target, gradcam = photos_and_gradcam
    random = torch.rand(gradcam.shape, generator=torch.Generator().manual_seed(0))
    black = metrics.auc(metrics.deletion_curve(model, x, random, target, steps=8))
    road = {name: metrics.auc(metrics.imputed_deletion_curve(model, x, m, target, steps=8))
            for name, m in (("gradcam", gradcam), ("random", random))}
    assert (road["random"] > black + 0.15).all(), (road, black)
    assert (road["gradcam"] < road["random"] - 0.05).all(), road
