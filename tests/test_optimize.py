"""helpers.optimize and helpers.attacks against independent references: SciPy's Gaussian filter,
explicit hooks, Captum's FGSM and PGD; parameterizations round-trip; the gradient ascent reaches its goal
(random weights) and the fooling loop reaches the boundary and a confidence on the pretrained course model at
smoke sizes; attacks stay inside their budget and [0, 1]."""
import pytest
import torch

import helpers
from helpers import attacks, optimize
from helpers.settings import SETTINGS

SMOKE = SETTINGS["smoke"]
pytestmark = pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")





def forward_hooks_left(model):
    return [n for n, m in model.named_modules() if m._forward_hooks]


# --- parameterizations -------------------------------------------------------------------------

def test_color_matrix_is_the_sample_photos_covariance_root():
    x = helpers.load_batch(list(helpers.images.PHOTOS), 224)
    root = optimize.color_correlation_sqrt(x)
    assert torch.allclose(root, optimize.COLOR_SQRT, atol=2e-4)
    # It is a square root of the covariance, up to the scale: root @ root is proportional to cov.
    pixels = x.movedim(1, 0).reshape(3, -1).double()
    cov = torch.cov(pixels).float()
    prod = root @ root
    assert torch.allclose(prod / prod[0, 0], cov / cov[0, 0], atol=1e-4)


@pytest.mark.parametrize("size", [(16, 16), (15, 22)])
def test_fourier_image_round_trips(size):
    torch.manual_seed(0)
    x = 0.05 + 0.9 * torch.rand(2, 3, *size)
    param = optimize.FourierImage(init=x)
    assert param.spectrum.shape == (2, 3, size[0], size[1] // 2 + 1, 2)
    assert torch.allclose(param(), x, atol=1e-4)


def test_fourier_image_is_in_range_and_differentiable():
    torch.manual_seed(0)
    param = optimize.FourierImage(3, 20, std=5.0)  # large coefficients: the sigmoid must still hold
    x = param()
    assert x.shape == (3, 3, 20, 20)
    assert x.min() >= 0 and x.max() <= 1
    x.sum().backward()
    assert param.spectrum.grad is not None and param.spectrum.grad.abs().sum() > 0


def test_spectrum_scale_favours_low_frequencies():
    s = optimize.spectrum_scale(32, 32)
    assert s.shape == (32, 17)
    assert torch.isclose(s.square().mean(), torch.tensor(1.0))
    assert s[0, 0] == s.max() and s[16, 16] == s.min()


def test_pixel_image_init_and_projection():
    torch.manual_seed(0)
    p = optimize.PixelImage(2, (8, 10))
    assert p().shape == (2, 3, 8, 10) and p().min() >= 0 and p().max() <= 1
    with torch.no_grad():
        p.pixels.mul_(10)
    p.project_()
    assert p().min() >= 0 and p().max() <= 1
    x = torch.rand(1, 3, 5, 5)
    assert torch.equal(optimize.PixelImage(init=x)(), x)


# --- transformations ---------------------------------------------------------------------------

def test_jitter_is_a_roll():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 9, 9)
    y = optimize.jitter(x, 3)
    rolls = [torch.roll(x, (dy, dx), (2, 3)) for dy in range(-3, 4) for dx in range(-3, 4)]
    assert any(torch.equal(y, r) for r in rolls)
    assert optimize.jitter(x, 0) is x


def test_random_transform_identity_and_shape():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 16, 16)
    same = optimize.random_transform(x, scale=(1.0, 1.0), degrees=0.0, shift=0)
    assert torch.allclose(same, x, atol=1e-5)
    moved = optimize.random_transform(x)
    assert moved.shape == x.shape and not torch.allclose(moved, x)
    assert moved.min() >= x.min() - 1e-6 and moved.max() <= x.max() + 1e-6  # bilinear: a convex mix


# --- objectives and the ascent loop ----------------------------------------------------------

def test_class_logit_matches_model(random_resnet18):
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        logits = random_resnet18(x)
        got = optimize.class_logit(random_resnet18, [1, 2, 3])(x)
        one = optimize.class_logit(random_resnet18, 7)(x)
    assert torch.allclose(got, logits[torch.arange(3), torch.tensor([1, 2, 3])])
    assert torch.allclose(one, logits[:, 7])
    with pytest.raises(ValueError, match="2 class indices for a batch of 3"):
        optimize.class_logit(random_resnet18, [1, 2])(x)
    with pytest.raises(ValueError, match="outside the model.s outputs.*0 to 999"):
        optimize.class_logit(random_resnet18, 1000)(x)


def test_channel_mean_matches_an_explicit_hook_and_removes_its_hook(random_resnet18):
    x = torch.rand(2, 3, 32, 32)
    seen = []
    h = random_resnet18.net.layer2.register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))
    try:
        with torch.no_grad():
            random_resnet18(x)
    finally:
        h.remove()
    ref = seen[0][torch.arange(2), torch.tensor([5, 9])].mean(dim=(1, 2))
    with torch.no_grad():
        got = optimize.channel_mean(random_resnet18, "layer2", [5, 9])(x)
    assert torch.allclose(got, ref, atol=1e-6)
    assert forward_hooks_left(random_resnet18) == []
    with pytest.raises(ValueError):
        optimize.channel_mean(random_resnet18, "layer2", 10_000)(x)
    assert forward_hooks_left(random_resnet18) == []


@pytest.mark.parametrize("recipe", ["classic", "robust"])
def test_visualize_raises_the_class_score(random_resnet18, recipe):
    torch.manual_seed(0)
    target = torch.tensor([3, 500])
    objective = optimize.class_logit(random_resnet18, target)
    if recipe == "classic":
        image = optimize.PixelImage(2, 48)
        kw = dict(lr=0.02, decay=0.005, shift=2, blur_every=4, blur_sigma=0.5)
    else:
        image = optimize.FourierImage(2, 48)
        kw = dict(lr=0.05, optimizer="adam", transform=optimize.random_transform)
    with torch.no_grad():
        before = objective(image())
    out = optimize.visualize(objective, image, steps=15, **kw)
    with torch.no_grad():
        after = objective(out)
    assert out.shape == (2, 3, 48, 48) and out.min() >= 0 and out.max() <= 1
    assert (after > before + 0.05).all(), (before, after)


def test_visualize_rejects_pixel_regularizers_on_fourier(random_resnet18):
    with pytest.raises(ValueError, match="PixelImage"):
        optimize.visualize(optimize.class_logit(random_resnet18, 0), optimize.FourierImage(1, 16), 1, 0.1, decay=0.1)


# --- attacks ---------------------------------------------------------------------------------



def test_fooling_reaches_the_target_within_the_smoke_budget(pretrained_lite0):
    x = helpers.load_batch(["cat", "coffee", "astronaut"], SMOKE.image_size)
    target = pretrained_lite0.labels.index("ostrich")
    x_fool, steps = attacks.fool(pretrained_lite0, x, target, step_size=SMOKE.attacks.step, max_steps=SMOKE.attacks.steps)
    with torch.no_grad():
        probs = pretrained_lite0(x_fool).softmax(1)
    assert (probs.argmax(1) == target).all() and (steps >= 1).all() and (steps <= SMOKE.attacks.steps).all(), steps
    assert x_fool.min() >= 0 and x_fool.max() <= 1
    # fooled images no longer move: asking again for the decision boundary takes no step
    again, zero = attacks.fool(pretrained_lite0, x_fool, target, step_size=SMOKE.attacks.step, max_steps=5)
    assert (zero == 0).all() and torch.equal(again, x_fool)
    # going on to a confidence: the target's probability ends at or above it, after more steps
    sure, more = attacks.fool(pretrained_lite0, x_fool, target, step_size=SMOKE.attacks.step, max_steps=SMOKE.attacks.steps,
                              confidence=0.9)
    with torch.no_grad():
        p_sure = pretrained_lite0(sure).softmax(1)[:, target]
    assert (more >= 0).all() and (p_sure >= 0.9).all(), (more, p_sure)
    assert ((more > 0) == (probs[:, target] < 0.9)).all()


def test_fool_rejects_bad_settings(random_resnet18):
    x = torch.rand(1, 3, 16, 16)
    for kw in (dict(step_size=0.0), dict(max_steps=-1), dict(confidence=1.0), dict(confidence=-0.1)):
        with pytest.raises(ValueError, match="step_size"):
            attacks.fool(random_resnet18, x, 0, **kw)


@pytest.mark.parametrize("eps", [1 / 255, 8 / 255])
def test_fgsm_and_pgd_stay_in_budget_and_range(random_resnet18, eps):
    torch.manual_seed(0)
    x = torch.rand(3, 3, 32, 32)
    x[:, :, :4] = 0.0  # pixels at the edges of the valid range must not be pushed outside it
    x[:, :, -4:] = 1.0
    y = torch.tensor([1, 2, 3])
    for adv in (attacks.fgsm(random_resnet18, x, y, eps), attacks.pgd(random_resnet18, x, y, eps, steps=3),
                attacks.pgd(random_resnet18, x, 9, eps, steps=3, targeted=True)):
        assert (adv - x).abs().max() <= eps + 1e-6
        assert adv.min() >= 0 and adv.max() <= 1
        assert (adv - x).abs().max() > 0.5 * eps  # it did move


def test_fgsm_and_pgd_match_captum(random_resnet18):
    from captum.robust import FGSM, PGD

    # Captum's default loss expects probabilities; give it the cross-entropy of our logits. It leaves
    # pixels whose gradient is below 1e-6 unchanged; scaling the loss up makes that threshold moot.
    def loss(out, t):
        return 1e6 * torch.nn.functional.cross_entropy(out, t, reduction="none")

    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    y = torch.tensor([4, 8])
    eps = 4 / 255
    fg = FGSM(random_resnet18, loss_func=loss, lower_bound=0.0, upper_bound=1.0)
    assert torch.allclose(attacks.fgsm(random_resnet18, x, y, eps), fg.perturb(x, eps, y), atol=1e-6)
    assert torch.allclose(attacks.fgsm(random_resnet18, x, y, eps, targeted=True), fg.perturb(x, eps, y, targeted=True),
                          atol=1e-6)
    ref = PGD(random_resnet18, loss_func=loss, lower_bound=0.0, upper_bound=1.0).perturb(x, eps, eps / 4, 3, y)
    assert torch.allclose(attacks.pgd(random_resnet18, x, y, eps, steps=3, alpha=eps / 4, random_start=False), ref, atol=1e-6)


def test_success_rate(random_resnet18):
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        pred = random_resnet18(x).argmax(1)
    assert attacks.success_rate(random_resnet18, x, pred) == 0.0
    assert attacks.success_rate(random_resnet18, x, pred, targeted=True) == 1.0


def test_attacks_reject_bad_input(random_resnet18):
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        attacks.fgsm(random_resnet18, torch.rand(3, 32, 32), 0, 0.1)
    with pytest.raises(ValueError, match="eps"):
        attacks.pgd(random_resnet18, torch.rand(1, 3, 32, 32), 0, -0.1)


def test_attacks_and_ascent_work_inside_no_grad(random_resnet18):
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        adv = attacks.pgd(random_resnet18, x, 1, 2 / 255, steps=2)
        fooled, _ = attacks.fool(random_resnet18, x, 1, step_size=1.0, max_steps=2)
        vis = optimize.visualize(optimize.class_logit(random_resnet18, 1), optimize.PixelImage(1, 16), 2, 0.01)
    assert (adv != x).any() and (fooled != x).any() and vis.shape == (1, 3, 16, 16)
