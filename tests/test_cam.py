"""helpers.cam against Captum's LayerGradCam and the grad-cam package: values, batching, hooks, errors."""
import gc

import numpy as np
import pytest
import torch
from torch import nn

import helpers
from helpers import cam
from test_saliency import TinyNet, hooks_left, live_tensors, rel_err




@pytest.fixture(scope="module")
def images():
    return torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))


TARGETS = torch.tensor([281, 967, 504])


class Scaled(nn.Module):
    """`model` with its logits multiplied by `factor`."""

    def __init__(self, model, factor):
        super().__init__()
        self.model, self.factor, self.num_classes = model, factor, model.num_classes

    def forward(self, x):
        return self.factor * self.model(x)


def captum_grad_cam(model, x, target, layer):
    from captum.attr import LayerAttribution, LayerGradCam

    attr = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)
    return LayerAttribution.interpolate(attr, tuple(x.shape[-2:]), "bilinear").squeeze(1).detach()


@pytest.mark.parametrize("name", ["resnet18", "vgg16"])
def test_grad_cam_equals_captum_layer_grad_cam(name, random_resnet18, images):
    model = random_resnet18 if name == "resnet18" else helpers.load_model(name, pretrained=False, device="cpu")
    x = images[:2]
    ours = cam.grad_cam(model, x, TARGETS[:2])
    ref = captum_grad_cam(model, x, TARGETS[:2], helpers.default_target_layer(model))
    assert ours.shape == (2, 64, 64) and (ours >= 0).all()
    assert ref.max() > 0 and (ref > 0).float().mean() > 0.05  # a non-trivial map to compare
    assert rel_err(ours, ref) < 1e-5
    assert hooks_left(model) == []


def test_grad_cam_on_an_earlier_layer_by_name_and_by_module(random_resnet18, images):
    by_name = cam.grad_cam(random_resnet18, images, TARGETS, layer="layer3")
    by_module = cam.grad_cam(random_resnet18, images, TARGETS, layer=random_resnet18.net.layer3)
    ref = captum_grad_cam(random_resnet18, images, TARGETS, random_resnet18.net.layer3)
    assert torch.equal(by_name, by_module) and rel_err(by_name, ref) < 1e-5


def grad_cam_package(method, model, x, targets, layer):
    """The package's raw map at the layer's resolution (before its min-max scaling and cv2 resize), and
    its final output."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    tgts = [ClassifierOutputTarget(int(t)) for t in targets]
    with method(model=model, target_layers=[layer]) as c:
        final = c(input_tensor=x.clone().requires_grad_(True), targets=tgts)  # frozen weights: grad via input
        acts = c.activations_and_grads.activations[0].numpy()
        grads = c.activations_and_grads.gradients[0].numpy()
        raw = np.maximum(c.get_cam_image(x, layer, tgts, acts, grads), 0)
    return torch.from_numpy(raw), final


def test_grad_cam_equals_the_grad_cam_package(random_resnet18, images):
    from pytorch_grad_cam import GradCAM

    layer = helpers.default_target_layer(random_resnet18)
    raw, final = grad_cam_package(GradCAM, random_resnet18, images, TARGETS, layer)
    ours = cam.grad_cam(random_resnet18, images, TARGETS)
    assert rel_err(ours, cam.upsample(raw, (64, 64))) < 1e-5
    # the package scales each map to [0, 1] after cv2's bilinear resize (same pixel-centre convention)
    scaled = torch.from_numpy(helpers.normalize_map(ours)).float()
    assert (scaled - torch.from_numpy(final)).abs().max() < 1e-3


def test_grad_cam_pp_equals_the_grad_cam_package(random_resnet18, images):
    from pytorch_grad_cam import GradCAMPlusPlus

    # random weights give gradients of ~0.01, where the package's +1e-6 in the denominator of alpha
    # (about 2 g^2) would matter; scaling the logits by 100 makes it negligible for both implementations
    scaled = Scaled(random_resnet18, 100.0)
    layer = helpers.default_target_layer(random_resnet18)
    acts, grads = cam.layer_activations_and_gradients(scaled, images, TARGETS, layer)
    assert grads.abs().max() > 0.5
    raw, _ = grad_cam_package(GradCAMPlusPlus, scaled, images, TARGETS, layer)
    ours = cam.grad_cam_pp(scaled, images, TARGETS, layer=layer)
    assert ours.shape == (3, 64, 64) and (ours >= 0).all() and raw.max() > 0
    assert rel_err(ours, cam.upsample(raw, (64, 64))) < 1e-4
    assert rel_err(ours, cam.grad_cam(scaled, images, TARGETS, layer=layer)) > 0.01  # not Grad-CAM renamed


def test_grad_cam_pp_by_the_formula_with_explicit_loops(random_resnet18, images):
    acts, grads = cam.layer_activations_and_gradients(random_resnet18, images[:1], 281)
    a, g = acts[0].double(), grads[0].double()
    C, h, w = a.shape
    weights = torch.zeros(C, dtype=torch.double)
    for c in range(C):
        s = a[c].sum()
        for i in range(h):
            for j in range(w):
                gij = g[c, i, j]
                d = 2 * gij ** 2 + s * gij ** 3
                if d != 0:
                    weights[c] += gij ** 2 / d * max(gij, 0)
    ref = (weights.view(C, 1, 1) * a).sum(0).clamp(min=0)
    ours = cam.grad_cam_pp(random_resnet18, images[:1], 281)
    assert rel_err(ours, cam.upsample(ref[None].float(), (64, 64))) < 1e-4


def test_a_batch_gives_the_same_maps_as_one_image_at_a_time(random_resnet18, images):
    for f in (cam.grad_cam, cam.grad_cam_pp):
        batch = f(random_resnet18, images, TARGETS)
        single = torch.cat([f(random_resnet18, images[i:i + 1], int(TARGETS[i])) for i in range(3)])
        assert rel_err(batch, single) < 1e-5, f.__name__


def test_grad_cam_of_a_conv_followed_by_an_in_place_relu_uses_the_conv_output():
    vgg_like = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(4, 3)).eval().requires_grad_(False)
    x = torch.rand(2, 3, 8, 8)
    acts, grads = cam.layer_activations_and_gradients(vgg_like, x, 1, layer="0")
    z = vgg_like[0](x)
    assert torch.allclose(acts, z)  # pre-ReLU values, not overwritten by the in-place ReLU
    expected = vgg_like[4].weight[1].view(1, 4, 1, 1) * (z > 0) / 64
    assert torch.allclose(grads, expected.expand_as(grads))


def test_the_target_layer_is_the_only_gradient_computed(random_resnet18, images):
    x = images[:1]
    cam.grad_cam(random_resnet18, x, 1)
    assert not x.requires_grad and x.grad is None
    assert all(p.grad is None and not p.requires_grad for p in random_resnet18.parameters())


def test_unknown_layer_name_is_a_key_error_naming_it(random_resnet18, images):
    with pytest.raises(KeyError, match="layer5.*layer4"):
        cam.grad_cam(random_resnet18, images, 1, layer="layer5")
    assert hooks_left(random_resnet18) == []


@pytest.mark.parametrize("bad", [1000, -1, torch.tensor([1, 2])])
def test_bad_class_index_is_a_value_error(random_resnet18, images, bad):
    with pytest.raises(ValueError, match="outside the model's outputs|class indices for a batch"):
        cam.grad_cam_pp(random_resnet18, images, bad)


@pytest.mark.parametrize("shape", [(3, 64, 64), (1, 4, 64, 64), (64, 64)])
def test_non_image_shape_is_a_value_error(random_resnet18, shape):
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        cam.grad_cam(random_resnet18, torch.rand(*shape), 1)


def test_errors_raised_while_the_hook_is_on_still_remove_it(random_resnet18, images):
    with pytest.raises(ValueError, match="ran 2 times"):  # one ReLU module shared inside a block
        cam.grad_cam(random_resnet18, images, 1, layer="layer4.1.relu")
    with pytest.raises(ValueError, match=r"\(N, C, h, w\)"):
        cam.grad_cam(random_resnet18, images, 1, layer="fc")
    assert hooks_left(random_resnet18) == []
    net = TinyNet().eval().requires_grad_(False)  # no num_classes: the target is checked after the forward
    with pytest.raises(ValueError, match="outside the model's outputs"):
        cam.grad_cam(net, images, 10, layer="conv2")
    assert hooks_left(net) == []


def test_a_hundred_calls_leave_no_hooks_and_no_tensors_behind():
    net = TinyNet().eval().requires_grad_(False)
    x = torch.rand(2, 3, 16, 16)
    for f in (cam.grad_cam, cam.grad_cam_pp):
        f(net, x, 1, layer="conv2")  # warm-up
        before = live_tensors()
        for _ in range(100):
            out = f(net, x, 1, layer="conv2")
        del out
        assert live_tensors() - before <= 2, f.__name__
        assert hooks_left(net) == []
    gc.collect()


# ------------------------------------------------------------- the course model of offline/smoke: Lite0


@pytest.fixture(scope="module")
def photos(pretrained_lite0):
    """Three sample photos at 96 px and Lite0's top-1 class for each (real evidence, non-empty maps)."""
    x = helpers.load_batch(["cat", "coffee", "astronaut"], 96)
    return x, helpers.top_k(pretrained_lite0, x, k=1)[1][:, 0]


def cat_and_coffee(size):
    """The sample with the cat on the left and the coffee on the right, fitted to a 2:1 strip and padded
    to a square (as notebook 02 does), `(1, 3, size, size)`."""
    from PIL import ImageOps

    strip = ImageOps.fit(helpers.load_image("cat_and_coffee"), (600, 300))
    return helpers.preprocess(ImageOps.pad(strip, (size, size), color=(128, 128, 128)), None)


def test_on_lite0_grad_cam_at_bn2_equals_captum_and_the_grad_cam_package(pretrained_lite0, photos):
    from pytorch_grad_cam import GradCAM

    x, top1 = photos
    layer = helpers.default_target_layer(pretrained_lite0)  # bn2: batch norm + in-place ReLU6 in one timm module
    assert layer is pretrained_lite0.net.bn2
    ours = cam.grad_cam(pretrained_lite0, x, top1)
    assert ours.shape == (3, 96, 96) and ours.amax(dim=(1, 2)).min() > 0
    assert rel_err(ours, captum_grad_cam(pretrained_lite0, x, top1, layer)) < 1e-5
    raw, _ = grad_cam_package(GradCAM, pretrained_lite0, x, top1, layer)
    assert rel_err(ours, cam.upsample(raw, (96, 96))) < 1e-5
    assert hooks_left(pretrained_lite0) == []


def test_on_lite0_grad_cam_at_bn2_is_cam_from_the_classifier_weights(pretrained_lite0, photos):
    # bn2 is followed by global average pooling and one linear layer: Grad-CAM = ReLU(sum_k W_ck A_k) / hw
    x, top1 = photos
    acts, grads = cam.layer_activations_and_gradients(pretrained_lite0, x, top1)
    h, w = acts.shape[-2:]
    weight = pretrained_lite0.net.classifier.weight[top1]  # (3, C)
    assert torch.allclose(grads, (weight / (h * w))[:, :, None, None].expand_as(grads), atol=1e-9)
    cam_map = torch.relu(torch.einsum("nc,nchw->nhw", weight, acts)) / (h * w)
    assert cam_map.amax(dim=(1, 2)).min() > 0
    assert rel_err(cam.grad_cam(pretrained_lite0, x, top1), cam.upsample(cam_map, (96, 96))) < 1e-5


@pytest.mark.parametrize("size", [96, 224])
def test_on_lite0_the_tabby_map_lies_on_the_cat_and_the_espresso_map_on_the_cup(pretrained_lite0, size):
    # the real pretrained network on a real photo: class-discriminative maps at smoke and offline sizes
    pair = cat_and_coffee(size).repeat(2, 1, 1, 1)
    maps = cam.grad_cam(pretrained_lite0, pair, torch.tensor([281, 967]))  # tabby, espresso
    left = maps[..., : size // 2].sum(dim=(1, 2)) / maps.sum(dim=(1, 2))
    assert left[0] > 0.7 and left[1] < 0.35, left.tolist()


def test_on_lite0_grad_cam_pp_equals_the_package_and_keeps_positive_gradient_channels(pretrained_lite0, photos):
    from pytorch_grad_cam import GradCAMPlusPlus

    x, targets = photos
    scaled = Scaled(pretrained_lite0, 100.0)  # the package's +1e-6 in alpha's denominator is negligible then
    layer = helpers.default_target_layer(pretrained_lite0)
    raw, _ = grad_cam_package(GradCAMPlusPlus, scaled, x, targets, layer)
    ours = cam.grad_cam_pp(scaled, x, targets, layer=layer)
    assert rel_err(ours, cam.upsample(raw, (96, 96))) < 1e-4
    # behind global average pooling the gradient is constant per channel, so Grad-CAM++ weights each channel
    # by hw * relu(g) / (2 + g sum A): channels with a negative gradient drop out
    acts, grads = cam.layer_activations_and_gradients(scaled, x, targets, layer)
    g = grads[:, :, :1, :1]
    h, w = acts.shape[-2:]
    weights = h * w * g.clamp(min=0) / (2 + g * acts.sum(dim=(2, 3), keepdim=True))
    ref = cam.upsample(torch.relu((weights * acts).sum(dim=1)), (96, 96))
    assert rel_err(ours, ref) < 1e-4


# ------------------------------------------------------ several targets, callables, resize=False, capture
def test_on_lite0_several_targets_per_image_equal_one_captum_call_per_target(pretrained_lite0, photos):
    # (N, T) targets: T maps from one forward pass, each equal to Captum's map for that column of targets
    x, top1 = photos
    table = torch.stack([top1, torch.tensor([281, 967, 504])], dim=1)  # (3, 2)
    maps = cam.grad_cam(pretrained_lite0, x, table)
    assert maps.shape == (3, 2, 96, 96)
    layer = helpers.default_target_layer(pretrained_lite0)
    for j in range(2):
        ref = captum_grad_cam(pretrained_lite0, x, table[:, j], layer)
        assert ref.amax(dim=(1, 2)).min() > 0
        assert rel_err(maps[:, j], ref) < 1e-5
    assert torch.equal(cam.grad_cam(pretrained_lite0, x, table.tolist()), maps)  # a list of lists is the same table
    assert hooks_left(pretrained_lite0) == []


def test_on_lite0_a_callable_target_explains_any_score_of_the_logits(pretrained_lite0, photos):
    # the tabby-minus-tiger-cat contrast: Grad-CAM of a difference of logits equals the difference of the
    # gradients, so before the ReLU it is the difference of the two pre-ReLU maps
    x, _ = photos
    contrast = lambda logits: logits[:, 281] - logits[:, 282]  # noqa: E731
    low = cam.grad_cam(pretrained_lite0, x, contrast, resize=False)
    acts, g = cam.layer_activations_and_gradients(pretrained_lite0, x, torch.tensor([[281, 282]] * 3))
    pre = ((g[:, 0] - g[:, 1]).mean(dim=(2, 3), keepdim=True) * acts).sum(dim=1)
    assert low.shape == acts.shape[:1] + acts.shape[2:] and low.amax() > 0
    assert torch.allclose(low, pre.clamp(min=0), atol=1e-6 * pre.abs().max().item())
    assert torch.allclose(cam.upsample(low, (96, 96)), cam.grad_cam(pretrained_lite0, x, contrast))


@pytest.mark.parametrize("bad", [lambda z: z, lambda z: z[:2, 0], [[1, 2], [3]], torch.zeros(3, 0, dtype=torch.long)])
def test_bad_several_or_callable_targets_are_value_errors(random_resnet18, images, bad):
    with pytest.raises(ValueError):
        cam.grad_cam(random_resnet18, images, bad)
    assert hooks_left(random_resnet18) == []


def test_capture_records_stops_and_removes_its_hooks(random_resnet18, images):
    from helpers.layers import capture

    with torch.no_grad(), capture(random_resnet18, ["layer1", "layer3"]) as cap:
        logits = random_resnet18(images)
    assert cap.order == ["layer1", "layer3"] and logits.shape == (3, 1000)
    ref = random_resnet18.net.layer1(random_resnet18.net.maxpool(random_resnet18.net.relu(random_resnet18.net.bn1(random_resnet18.net.conv1(random_resnet18.normalize(images))))))
    assert torch.allclose(cap.outputs["layer1"][0], ref, atol=1e-6)
    calls = []
    random_resnet18.net.layer4.register_forward_hook(lambda *a: calls.append(1))
    try:
        with torch.no_grad(), capture(random_resnet18, "layer3", stop=True) as cap:
            random_resnet18(images)
            raise AssertionError("the forward pass should have stopped after layer3")
        assert calls == [] and cap.output.shape == (3, 256, 4, 4)
    finally:
        random_resnet18.net.layer4._forward_hooks.clear()
    with pytest.raises(RuntimeError), capture(random_resnet18, "layer2", leaf=True):
        raise RuntimeError("an error inside the block")
    assert hooks_left(random_resnet18) == []
    with pytest.raises(KeyError):
        with capture(random_resnet18, "layer9"):
            pass


def test_capture_is_the_only_helper_that_registers_hooks():
    # every helper (Grad-CAM, guided backprop, channel objectives, style features, the explorer's layer menu)
    # reaches a layer's output through layers.capture
    from pathlib import Path

    root = Path(helpers.__file__).parent
    users = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                   if "register_forward_hook" in p.read_text())
    assert users == ["layers.py"], users
