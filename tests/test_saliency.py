"""helpers.saliency against Captum and explicit loops: values, batching, completeness, hooks, errors."""
import gc
import warnings

import pytest
import torch
from torch import nn

import helpers
from helpers import saliency

warnings.filterwarnings("ignore", message=".*(did not already require gradients|Setting backward hooks).*")

HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
              "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called",
              "_state_dict_hooks", "_load_state_dict_pre_hooks")


def hooks_left(model: nn.Module) -> list[str]:
    """Every (module, hook dict) pair of the model that is not empty, plus PyTorch's global module hooks."""
    left = [f"{name or '<root>'}.{attr}" for name, m in model.named_modules() for attr in HOOK_DICTS
            if getattr(m, attr, None)]
    glob = torch.nn.modules.module
    for attr in ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                 "_global_backward_pre_hooks"):
        if getattr(glob, attr, None):
            left.append(attr)
    return left


def live_tensors() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if issubclass(type(o), torch.Tensor))



class TinyNet(nn.Module):
    """A small CNN without `num_classes` (so that targets are checked after the forward pass), with one
    in-place ReLU module used twice, like torchvision's ResNet blocks."""

    def __init__(self, classes: int = 10, act: type[nn.Module] = nn.ReLU):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.act = act(inplace=True) if act is nn.ReLU else act()
        self.head = nn.Linear(8, classes)

    def forward(self, x):
        x = self.act(self.conv1(x))
        x = self.act(self.conv2(x))
        return self.head(x.mean(dim=(2, 3)))




@pytest.fixture(scope="module")
def images():
    return torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))


TARGETS = torch.tensor([1, 281, 967])


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-30))


def test_vanilla_saliency_equals_captum_saliency(random_resnet18, images):
    from captum.attr import Saliency

    ours = saliency.vanilla_saliency(random_resnet18, images, TARGETS)
    ref = Saliency(random_resnet18).attribute(images.clone(), target=TARGETS, abs=True).amax(dim=1)
    assert ours.shape == (3, 32, 32) and (ours >= 0).all() and ref.abs().max() > 0
    assert rel_err(ours, ref) < 1e-5


def test_input_gradient_and_grad_times_input_match_an_explicit_gradient(random_resnet18, images):
    x = images[:1].clone().requires_grad_(True)
    random_resnet18(x)[0, 281].backward()
    g = saliency.input_gradient(random_resnet18, images[:1], 281)
    assert rel_err(g, x.grad) < 1e-6
    assert rel_err(saliency.grad_times_input(random_resnet18, images[:1], 281), x.grad * images[:1]) < 1e-6


def test_guided_backprop_equals_captum_and_leaves_the_model_as_it_was(random_resnet18, images):
    from captum.attr import GuidedBackprop

    before = saliency.input_gradient(random_resnet18, images, TARGETS)
    ours = saliency.guided_backprop(random_resnet18, images, TARGETS)
    ref = GuidedBackprop(random_resnet18).attribute(images.clone(), target=TARGETS)
    assert rel_err(ours, ref) < 1e-5
    assert rel_err(ours, before) > 0.1  # the guided gradient is not the plain gradient
    assert hooks_left(random_resnet18) == []
    after = saliency.input_gradient(random_resnet18, images, TARGETS)
    assert torch.equal(before, after)  # plain gradients are unchanged after a guided call


def test_guided_backprop_by_hand_on_a_tiny_net():
    """Explicit reference: backpropagate by hand through relu(conv2(relu(conv1 x))) with the guided rule."""
    torch.manual_seed(0)
    net = TinyNet().double().eval().requires_grad_(False)
    x = torch.rand(2, 3, 8, 8, dtype=torch.double)
    z1 = net.conv1(x)
    a1 = z1.clamp(min=0)
    z2 = net.conv2(a1)
    a2 = z2.clamp(min=0)
    g_a2 = net.head.weight[[3, 7]].view(2, 8, 1, 1).expand_as(a2) / (8 * 8)
    g_z2 = g_a2.clamp(min=0) * (z2 > 0)
    g_a1 = torch.nn.grad.conv2d_input(a1.shape, net.conv2.weight, g_z2, padding=1)
    g_z1 = g_a1.clamp(min=0) * (z1 > 0)
    g_x = torch.nn.grad.conv2d_input(x.shape, net.conv1.weight, g_z1, padding=1)
    ours = saliency.guided_backprop(net, x, torch.tensor([3, 7]))
    assert rel_err(ours, g_x) < 1e-10


def test_smoothgrad_equals_captum_noise_tunnel_with_the_same_noise(random_resnet18, images):
    from captum.attr import NoiseTunnel, Saliency

    x = images[:1]  # for one image Captum draws the noise in the same order as the helper
    torch.manual_seed(3)
    ours = saliency.smoothgrad(random_resnet18, x, 281, samples=4, sigma=0.2)
    torch.manual_seed(3)
    ref = NoiseTunnel(Saliency(random_resnet18)).attribute(x.clone(), nt_type="smoothgrad", nt_samples=4, stdevs=0.2,
                                                  target=281, abs=True).amax(dim=1)
    assert rel_err(ours, ref) < 1e-5
    assert rel_err(ours, saliency.vanilla_saliency(random_resnet18, x, 281)) > 0.05  # the noise did something
    assert torch.allclose(saliency.smoothgrad(random_resnet18, x, 281, samples=2, sigma=0.0),
                          saliency.vanilla_saliency(random_resnet18, x, 281))


def test_integrated_gradients_equals_captum_riemann_middle(random_resnet18, images):
    from captum.attr import IntegratedGradients

    base = torch.full_like(images, 0.5)
    ours = saliency.integrated_gradients(random_resnet18, images, TARGETS, baseline=base, steps=6, batch_size=8)
    ref = IntegratedGradients(random_resnet18).attribute(images.clone(), baselines=base, target=TARGETS, n_steps=6,
                                                method="riemann_middle")
    assert rel_err(ours, ref) < 1e-5


@pytest.mark.parametrize("act", [nn.ReLU, nn.Softplus])
def test_integrated_gradients_completeness_within_one_percent(act):
    torch.manual_seed(1)
    net = TinyNet(act=act).double().eval().requires_grad_(False)
    with torch.no_grad():
        net.head.weight.mul_(50)  # larger logit differences (the relative error does not depend on it)
    x = torch.rand(4, 3, 12, 12, dtype=torch.double)
    base = torch.rand(1, 3, 1, 1, dtype=torch.double)  # a flat colour, broadcast
    t = torch.tensor([0, 3, 5, 9])
    attr = saliency.integrated_gradients(net, x, t, baseline=base, steps=256)
    with torch.no_grad():
        delta = (net(x) - net(base.expand_as(x))).gather(1, t.view(-1, 1)).squeeze(1)
    assert delta.abs().min() > 1e-3  # a meaningful difference to explain
    err = (attr.sum(dim=(1, 2, 3)) - delta).abs() / delta.abs()
    assert err.max() < 0.01, err


def test_a_batch_gives_the_same_maps_as_one_image_at_a_time(random_resnet18, images):
    methods = {
        "vanilla": lambda x, t: saliency.vanilla_saliency(random_resnet18, x, t),
        "gxi": lambda x, t: saliency.grad_times_input(random_resnet18, x, t),
        "ig": lambda x, t: saliency.integrated_gradients(random_resnet18, x, t, steps=3),
        "guided": lambda x, t: saliency.guided_backprop(random_resnet18, x, t),
        "smooth0": lambda x, t: saliency.smoothgrad(random_resnet18, x, t, samples=1, sigma=0.0),
    }
    for name, f in methods.items():
        batch = f(images, TARGETS)
        single = torch.cat([f(images[i:i + 1], int(TARGETS[i])) for i in range(3)])
        assert rel_err(batch, single) < 1e-5, name


def test_one_int_target_means_the_same_class_for_every_image(random_resnet18, images):
    a = saliency.vanilla_saliency(random_resnet18, images, 5)
    b = saliency.vanilla_saliency(random_resnet18, images, torch.tensor([5, 5, 5]))
    assert torch.equal(a, b)


@pytest.mark.parametrize("bad, match", [
    (1000, "outside the model's outputs.*0 to 999"),
    (-1, "negative class index -1.*0 to 999"),
    (torch.tensor([1, 2]), "2 class indices for a batch of 3"),
    (torch.tensor([1.0, 2.0, 3.0]), "integer class indices"),
    ("cat", "class index"),
])
def test_bad_targets_are_explained(random_resnet18, images, bad, match):
    with pytest.raises(ValueError, match=match):
        saliency.vanilla_saliency(random_resnet18, images, bad)


@pytest.mark.parametrize("shape", [(3, 32, 32), (2, 1, 32, 32), (2, 32, 32, 3), (2, 3, 32)])
def test_non_image_shapes_are_explained(random_resnet18, shape):
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        saliency.vanilla_saliency(random_resnet18, torch.rand(*shape), 0)


def test_guided_backprop_removes_its_hooks_when_the_call_fails():
    net = TinyNet().eval().requires_grad_(False)  # no num_classes: the target fails after the hooks are on
    with pytest.raises(ValueError, match="outside the model's outputs"):
        saliency.guided_backprop(net, torch.rand(2, 3, 8, 8), 10)
    assert hooks_left(net) == []
    with pytest.raises(ValueError, match="nn.ReLU"):
        saliency.guided_backprop(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4)), torch.rand(1, 3, 8, 8), 0)


def test_a_hundred_calls_leave_no_hooks_and_no_tensors_behind():
    net = TinyNet().eval().requires_grad_(False)
    x = torch.rand(2, 3, 16, 16)
    for f in (saliency.guided_backprop, saliency.vanilla_saliency):
        f(net, x, 1)  # warm-up
        before = live_tensors()
        for _ in range(100):
            out = f(net, x, 1)
        del out
        after = live_tensors()
        assert after - before <= 2, (f.__name__, before, after)
        assert hooks_left(net) == []
    assert all(p.grad is None for p in net.parameters())


class _GuidedReLU6Function(torch.autograd.Function):
    """Independent reference for guided backpropagation through ReLU6: the forward is min(max(z, 0), 6); the
    backward passes only positive incoming gradients, and only where 0 < z < 6."""

    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return z.clamp(0.0, 6.0)

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return g.clamp(min=0) * ((z > 0) & (z < 6)).to(g.dtype)


class _GuidedReLU6(nn.Module):
    def forward(self, z):
        return _GuidedReLU6Function.apply(z)


def guided_reference(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Input gradient of a deep copy of `model` whose every nn.ReLU6 is replaced by the guided function."""
    import copy

    clone = copy.deepcopy(model)
    swapped = 0
    for module in list(clone.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.ReLU6):
                setattr(module, name, _GuidedReLU6())
                swapped += 1
    assert swapped > 0 and not any(isinstance(m, (nn.ReLU, nn.ReLU6)) for m in clone.modules())
    xg = x.clone().requires_grad_(True)
    clone(xg).gather(1, target.view(-1, 1)).sum().backward()
    return xg.grad


class ReLU6Net(nn.Module):
    """Two convolutions with in-place ReLU6 (as in timm's EfficientNet-Lite) and one shared plain ReLU6."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.act1 = nn.ReLU6(inplace=True)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.act2 = nn.ReLU6()
        self.head = nn.Linear(8, classes)

    def forward(self, x):
        x = self.act1(self.conv1(x) * 20)  # large enough that some units reach the cap of 6
        x = self.act2(self.conv2(x))
        return self.head(x.mean(dim=(2, 3)))


def test_guided_backprop_on_relu6_matches_an_explicit_guided_function():
    torch.manual_seed(0)
    net = ReLU6Net().double().eval().requires_grad_(False)
    x = torch.rand(3, 3, 10, 10, dtype=torch.double)
    t = torch.tensor([1, 4, 9])
    with torch.no_grad():
        z1 = net.conv1(x) * 20
    assert (z1 > 6).any() and (z1 < 0).any()  # both sides of ReLU6 are exercised
    ours = saliency.guided_backprop(net, x, t)
    ref = guided_reference(net, x, t)
    assert rel_err(ours, ref) < 1e-10
    assert rel_err(ours, saliency.input_gradient(net, x, t)) > 0.05  # guided is not the plain gradient
    assert hooks_left(net) == []


def test_guided_backprop_on_lite0_matches_the_explicit_reference_and_captum_on_relu6_as_relu():
    from captum.attr import GuidedBackprop

    lite0 = helpers.load_model("efficientnet_lite0", pretrained=False, device="cpu")
    assert any(isinstance(m, nn.ReLU6) for m in lite0.modules())
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 64, 64, generator=g)
    t = torch.tensor([3, 500])
    ours = saliency.guided_backprop(lite0, x, t)
    plain = saliency.input_gradient(lite0, x, t)
    assert rel_err(ours, guided_reference(lite0, x, t)) < 1e-4
    assert rel_err(ours, plain) > 0.5
    # Captum changes nn.ReLU only: on Lite0 as it is, its "guided" map is the plain gradient ...
    assert rel_err(GuidedBackprop(lite0).attribute(x.clone(), target=t), plain) < 1e-6
    # ... and on the copy with ReLU6 written as ReLU + cap, it equals ours
    swapped = saliency.relu6_as_relu(lite0)
    assert not any(isinstance(m, nn.ReLU6) for m in swapped.modules())
    assert any(isinstance(m, nn.ReLU6) for m in lite0.modules())  # the original is left as it was
    with torch.no_grad():
        assert torch.equal(swapped(x), lite0(x))
    assert rel_err(GuidedBackprop(swapped).attribute(x.clone(), target=t), ours) < 1e-5
    assert hooks_left(lite0) == []


def test_capped_relu_is_relu6():
    z = torch.linspace(-3, 9, 101)
    assert torch.equal(saliency.CappedReLU(6.0)(z), nn.ReLU6()(z))


@pytest.mark.parametrize("steps", [1, 4, 7])
def test_path_rules_points_and_weights(steps):
    a, w = saliency.path_rule(steps, "midpoint", dtype=torch.float64)
    assert a.shape == w.shape == (steps,) and torch.allclose(w.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert torch.allclose(a, (torch.arange(steps, dtype=torch.float64) + 0.5) / steps)
    a, w = saliency.path_rule(steps, "trapezoid", dtype=torch.float64)
    assert a.shape == w.shape == (steps + 1,) and a[0] == 0 and a[-1] == 1
    assert torch.allclose(w.sum(), torch.tensor(1.0, dtype=torch.float64)) and w[0] == w[-1] == 0.5 / steps
    # exact for a polynomial of degree 1, as both rules are: the integral of 3 + 2 alpha is 4
    assert torch.allclose((w * (3 + 2 * a)).sum(), torch.tensor(4.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="rule"):
        saliency.path_rule(steps, "simpson")
    with pytest.raises(ValueError, match="positive int"):
        saliency.path_rule(0)


def test_trapezoid_halving_reuses_every_second_point():
    a8, _ = saliency.path_rule(8, "trapezoid", dtype=torch.float64)
    a4, _ = saliency.path_rule(4, "trapezoid", dtype=torch.float64)
    assert torch.equal(a8[::2], a4)


def test_integrated_gradients_trapezoid_equals_captum_up_to_its_weight_sum(random_resnet18, images):
    from captum.attr import IntegratedGradients

    base = torch.full_like(images, 0.5)
    ours = saliency.integrated_gradients(random_resnet18, images, TARGETS, baseline=base, steps=6, rule="trapezoid")
    ref = IntegratedGradients(random_resnet18).attribute(images.clone(), baselines=base, target=TARGETS, n_steps=7,
                                                method="riemann_trapezoid")
    # Captum's trapezoid weights are 1/n for n = 7 points: they sum to 6/7 instead of 1
    assert rel_err(ours * 6 / 7, ref) < 1e-5
    assert rel_err(ours, ref) > 0.1


def test_integrated_gradients_trapezoid_completeness_on_a_smooth_net():
    torch.manual_seed(1)
    net = TinyNet(act=nn.Softplus).double().eval().requires_grad_(False)
    with torch.no_grad():
        net.head.weight.mul_(50)
    x = torch.rand(3, 3, 12, 12, dtype=torch.double)
    t = torch.tensor([0, 3, 5])
    attr = saliency.integrated_gradients(net, x, t, steps=128, rule="trapezoid")
    with torch.no_grad():
        delta = (net(x) - net(torch.zeros_like(x))).gather(1, t.view(-1, 1)).squeeze(1)
    err = (attr.sum(dim=(1, 2, 3)) - delta).abs() / delta.abs()
    assert delta.abs().min() > 1e-3 and err.max() < 1e-3, err
