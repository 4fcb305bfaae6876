"""Claims of notebooks 07 (evaluating explanations) and 08 (the explorer), checked on the real pretrained
course model at the `offline` profile's sizes, as tests/test_lessons.py does for the others.

Each claim is about trained weights: with `COURSE_WEIGHTS=random` every test here fails (checked when they
were written), so none of them is met by any network whatever.
"""
from __future__ import annotations

import pytest
import torch

import helpers
from helpers import cam, imputation, metrics, settings

OFFLINE = settings.SETTINGS["offline"]
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
        filled = {name: prob(imputation.linear_imputation(x, r, noise=0.01, generator=torch.Generator().manual_seed(0)))
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
    road = {name: metrics.auc(metrics.imputed_deletion_curve(model, x, m, target, steps=8,
                                                            generator=torch.Generator().manual_seed(0)))
            for name, m in (("gradcam", gradcam), ("random", random))}
    assert (road["random"] > black + 0.15).all(), (road, black)
    assert (road["gradcam"] < road["random"] - 0.05).all(), road


def _quantus_deletion(model, x, maps, target, steps, images=None):
    """Quantus's pixel flipping (deletion to 0) in the course's order, as notebook 07 runs it: `features_in_step`
    = H*W/steps channel values, so 3*steps points, every third one deleting whole pixels. Returns Quantus's own
    AUC (trapezoid rule with dx = 1 over its 3*steps points: quantus.helpers.utils.calculate_auc, written out since
    numpy 2 has no np.trapz) and the course's AUC of the matched curve (the clean image's score put in front)."""
    np = pytest.importorskip("numpy")
    quantus = pytest.importorskip("quantus")
    n, _, h, w = x.shape
    order = -metrics.importance_ranks(maps).float().view_as(maps)  # ties broken in raster order, as the course does
    flip = quantus.PixelFlipping(features_in_step=h * w // steps, perturb_baseline=0.0, normalise=False,
                                 disable_warnings=True)
    fed = x if images is None else images
    curve = np.array(flip(model=model, x_batch=fed.numpy(), y_batch=target.numpy(), a_batch=order[:, None].numpy(),
                          device="cpu"))
    with torch.no_grad():
        clean = model(fed).softmax(dim=1).gather(1, target[:, None])[:, 0]
    matched = torch.cat([clean[:, None], torch.as_tensor(curve[:, 2::3]).float()], dim=1)
    return float(np.trapezoid(curve, axis=1).mean()), metrics.auc(matched).mean().item()


def test_07_quantus_pixel_flipping_matches_the_course_deletion_auc(model):
    """Notebook 07, section 7: Quantus's PixelFlipping (Hedstrom et al., JMLR 2023) on the real course model, with
    matched steps, gives the course's deletion AUC of Grad-CAM's maps to 3 decimals; its own AUC (not divided by
    the number of steps, without the clean image) does not, nor does feeding it ImageNet-normalized images (the
    course model normalizes [0, 1] images itself)."""
    size, steps = 96, 8
    x = helpers.load_batch(["cat", "coffee"], size)
    with torch.no_grad():
        target = model(x).argmax(dim=1)
    gradcam = cam.grad_cam(model, x, target).detach()
    ours = metrics.auc(metrics.deletion_curve(model, x, gradcam, target, steps=steps)).mean().item()
    raw, matched = _quantus_deletion(model, x, gradcam, target, steps)
    assert abs(matched - ours) < 5e-4, (matched, ours)
    assert abs(raw - ours) > 0.1, (raw, ours)  # Quantus's own AUC is on another scale
    normalized = model.normalize(x)  # a wrong input: the model would normalize it a second time
    _, wrong = _quantus_deletion(model, x, gradcam, target, steps, images=normalized)
    assert abs(wrong - ours) > 5e-3, (wrong, ours)
