"""helpers.style against explicit loops and hooks on the original network: Gram matrix, total
variation, layer names, the cut feature stack (in-place ReLUs handled safely), zero losses at their
targets, and a short optimization that lowers the loss."""
import pytest
import torch
from torch import nn

import helpers
from helpers import features, style



@pytest.fixture(scope="module")
def vgg():
    return helpers.load_model("vgg19", pretrained=False, device="cpu")


@pytest.fixture(scope="module")
def extractor(vgg):
    return features.VGGFeatures(vgg, layers=features.STYLE_LAYERS + features.CONTENT_LAYERS)


def test_gram_matrix_equals_an_explicit_loop():
    torch.manual_seed(0)
    f = torch.randn(2, 4, 3, 5, dtype=torch.float64)
    n, c, h, w = f.shape
    ref = torch.zeros(n, c, c, dtype=torch.float64)
    for b in range(n):
        for i in range(c):
            for j in range(c):
                total = 0.0
                for y in range(h):
                    for x in range(w):
                        total += f[b, i, y, x] * f[b, j, y, x]
                ref[b, i, j] = total / (c * h * w)
    assert torch.allclose(style.gram_matrix(f), ref)


def test_tv_loss_equals_an_explicit_loop():
    torch.manual_seed(0)
    img = torch.rand(2, 3, 4, 6, dtype=torch.float64)
    n, c, h, w = img.shape
    for b in range(n):
        down = sum((img[b, k, y + 1, x] - img[b, k, y, x]) ** 2 for k in range(c) for y in range(h - 1) for x in range(w))
        right = sum((img[b, k, y, x + 1] - img[b, k, y, x]) ** 2 for k in range(c) for y in range(h) for x in range(w - 1))
        ref = down / (c * (h - 1) * w) + right / (c * h * (w - 1))
        assert torch.isclose(style.tv_loss(img)[b], ref)
    assert torch.equal(style.tv_loss(torch.full((1, 3, 5, 5), 0.3)), torch.zeros(1))


def test_layer_names_follow_the_paper(vgg):
    names = features.vgg_layer_names(vgg.net.features)
    assert len(names) == len(vgg.net.features) == 37
    assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert names[21] == "conv4_2" and names[29] == "relu5_1" and names[-1] == "pool5"


def test_features_equal_hooks_on_the_original_network(vgg):
    layers = ("conv1_1", "relu2_1", "conv3_1", "relu4_2")  # conv outputs are followed by in-place ReLUs
    ext = features.VGGFeatures(vgg, layers=layers)
    assert len(ext.stack) == 23  # cut right after relu4_2
    assert all(not p.requires_grad for p in ext.parameters())
    index = {n: i for i, n in enumerate(features.vgg_layer_names(vgg.net.features))}
    seen = {}
    hooks = [vgg.net.features[index[n]].register_forward_hook(
        lambda m, i, o, n=n: seen.__setitem__(n, o.detach().clone())) for n in layers]
    x = torch.rand(2, 3, 40, 40)
    try:
        with torch.no_grad():
            vgg(x)
    finally:
        for h in hooks:
            h.remove()
    x.requires_grad_(True)
    feats = ext(x)
    assert list(feats) == list(layers)
    for n in layers:
        assert torch.allclose(feats[n], seen[n], atol=1e-5), n
    assert (feats["conv1_1"] < 0).any()  # not overwritten by the following ReLU
    # The gradient through every collected tensor is well-defined (no in-place modification error).
    sum(style.gram_matrix(f).sum() for f in feats.values()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_building_the_extractor_leaves_the_model_alone(vgg):
    ext = features.VGGFeatures(vgg, layers=("relu3_1",), pool="avg")
    assert any(isinstance(m, nn.AvgPool2d) for m in ext.stack)
    assert not any(isinstance(m, nn.AvgPool2d) for m in vgg.net.features)
    assert all(m.inplace for m in vgg.net.features if isinstance(m, nn.ReLU))
    assert len(vgg.net.features) == 37


def test_extractor_rejects_unknown_layers_and_non_vgg(vgg):
    with pytest.raises(ValueError, match="relu1_1"):
        features.VGGFeatures(vgg, layers=("relu9_9",))
    with pytest.raises(ValueError, match="vgg19"):
        features.VGGFeatures(helpers.load_model("alexnet", pretrained=False, device="cpu").net.avgpool, layers=("relu1_1",))


def test_losses_are_zero_at_their_targets(extractor):
    torch.manual_seed(0)
    img, other = torch.rand(1, 3, 48, 48), torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        f = extractor(img)
        grams = {k: style.gram_matrix(f[k]) for k in features.STYLE_LAYERS}
        assert style.style_loss(f, grams).item() == pytest.approx(0.0, abs=1e-10)
        assert style.content_loss(f, {k: f[k] for k in features.CONTENT_LAYERS}).item() == 0.0
        g = extractor(other)
        assert style.style_loss(g, grams).item() > 1e-4
        assert style.content_loss(g, {k: f[k] for k in features.CONTENT_LAYERS}).item() > 1e-4


def test_style_loss_ignores_where_things_are(extractor):
    """A Gram matrix sums over positions: a circularly shifted texture has nearly the same style."""
    torch.manual_seed(0)
    tex = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        f = extractor(tex)
        grams = {k: style.gram_matrix(f[k]) for k in features.STYLE_LAYERS[:2]}
        rolled = extractor(torch.roll(tex, (16, 16), (2, 3)))
        fresh = extractor(torch.rand(1, 3, 64, 64))
        assert style.style_loss(rolled, grams) < 0.1 * style.style_loss(fresh, grams)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_short_run_lowers_the_loss(extractor, optimizer):
    content = helpers.load_batch(["cat"], 48)
    style_img = helpers.load_batch(["brick"], 40)
    calls = []
    res = style.style_transfer(content, style_img, 6, extractor, optimizer=optimizer,
                               callback=lambda i, loss: calls.append(i))
    total = res.history["total"]
    assert len(total) == 6 and calls == list(range(6))
    assert total[-1] < 0.8 * total[0]
    assert res.image.shape == content.shape and res.image.min() >= 0 and res.image.max() <= 1


def test_feature_inversion_from_noise(extractor):
    torch.manual_seed(0)
    content = helpers.load_batch(["coffee"], 32)
    res = style.style_transfer(content, None, 5, extractor, init="noise", tv_weight=0.0)
    assert res.history["style"] == [0.0] * 5
    assert res.history["content"][-1] < res.history["content"][0]


def test_style_transfer_rejects_bad_input(extractor):
    with pytest.raises(ValueError, match="optimizer"):
        style.style_transfer(torch.rand(1, 3, 32, 32), None, 1, extractor, optimizer="sgd")
    with pytest.raises(ValueError, match="init"):
        style.style_transfer(torch.rand(1, 3, 32, 32), None, 1, extractor, init="zeros")
    with pytest.raises(ValueError, match="does not return"):
        style.style_transfer(torch.rand(1, 3, 32, 32), None, 1, extractor, content_layers=("relu2_2",))


# ------------------------------------------------------------------ any course model: LayerFeatures


def _hooked_outputs(model, layers, x):
    seen = {}

    def keep(name):
        def hook(module, inputs, output):  # returns None: the output itself is left as it is
            seen.setdefault(name, output.detach().clone())
        return hook

    hooks = [model.net.get_submodule(n).register_forward_hook(keep(n)) for n in layers]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def test_layer_features_equal_hooks_on_the_original_network(pretrained_lite0):
    layers = ("blocks.2", "bn1", "blocks.0.0.conv_dw")  # any order in, the network's order out
    ext = features.LayerFeatures(pretrained_lite0, layers)
    assert ext.order == ["bn1", "blocks.0.0.conv_dw", "blocks.2"] and ext.last == "blocks.2"
    assert all(not p.requires_grad for p in ext.parameters())
    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 64)
    seen = _hooked_outputs(pretrained_lite0, layers, x)
    x.requires_grad_(True)
    feats = ext(x)
    assert list(feats) == ext.order
    for n in layers:
        assert torch.allclose(feats[n], seen[n], atol=1e-5), n
    sum(style.gram_matrix(f).sum() for f in feats.values()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # The model itself is left alone: no hooks, and its copy's frozen weights are not its own.
    assert not any(m._forward_hooks for m in pretrained_lite0.net.modules())
    assert all(p.data_ptr() != q.data_ptr() for p, q in zip(ext.net.parameters(), pretrained_lite0.net.parameters()))


def test_layer_features_stop_after_the_deepest_layer(pretrained_lite0):
    ext = features.LayerFeatures(pretrained_lite0, ("bn1", "blocks.1"))
    calls = []
    ext.net.get_submodule("blocks.2").register_forward_hook(lambda *a: calls.append("blocks.2"))
    ext.net.get_submodule("conv_head").register_forward_hook(lambda *a: calls.append("conv_head"))
    with torch.no_grad():
        feats = ext(torch.rand(1, 3, 64, 64))
    assert calls == [] and set(feats) == {"bn1", "blocks.1"}


def test_layer_features_keep_an_output_that_a_later_inplace_relu_overwrites():
    resnet = helpers.load_model("resnet18", pretrained=False, device="cpu")  # bn1 is followed by ReLU(inplace=True)
    ext = features.LayerFeatures(resnet, ("bn1", "layer1"))
    x = torch.rand(1, 3, 64, 64)
    seen = _hooked_outputs(resnet, ("bn1",), x)
    assert (seen["bn1"] < 0).any()
    x.requires_grad_(True)
    feats = ext(x)
    assert torch.allclose(feats["bn1"], seen["bn1"], atol=1e-5)  # negatives kept: not overwritten
    sum(style.gram_matrix(f).sum() for f in feats.values()).backward()  # no in-place modification error
    assert x.grad.abs().sum() > 0


def test_layer_features_reject_bad_input(pretrained_lite0):
    with pytest.raises(ValueError, match="blocks.0"):  # the message lists the stage names
        features.LayerFeatures(pretrained_lite0, ("blocks.9",))
    with pytest.raises(ValueError, match="feature map"):
        features.LayerFeatures(pretrained_lite0, ("classifier",))  # (N, 1000) logits
    with pytest.raises(ValueError, match="no layers"):
        features.LayerFeatures(pretrained_lite0, ())
    with pytest.raises(ValueError, match="Classifier"):
        features.LayerFeatures(pretrained_lite0.net, ("bn1",))
    ext = features.LayerFeatures(pretrained_lite0, ("bn1",))
    with pytest.raises(ValueError, match="images"):
        ext(torch.rand(3, 32, 32))


def test_feature_extractor_fits_the_model(vgg, pretrained_lite0):
    assert isinstance(features.feature_extractor(vgg, ("relu1_1",)), features.VGGFeatures)
    assert isinstance(features.feature_extractor(pretrained_lite0, ("bn1",)), features.LayerFeatures)
    assert features.feature_extractor(vgg, ("relu1_1", "relu2_1")).last == "relu2_1"


def test_default_layers_follow_the_paper_and_the_stage_resolutions(vgg, pretrained_lite0):
    v = features.default_layers(vgg)
    assert v.content == features.CONTENT_LAYERS and v.style == features.STYLE_LAYERS
    assert features.stage_strides(pretrained_lite0) == {"bn1": 2, "blocks.0": 2, "blocks.1": 4, "blocks.2": 8, "blocks.3": 16,
                                         "blocks.4": 16, "blocks.5": 32, "blocks.6": 32, "bn2": 32}
    e = features.default_layers(pretrained_lite0)
    assert e.style == ("bn1", "blocks.0", "blocks.1", "blocks.2", "blocks.3")
    assert e.content == ("blocks.2",)
    assert e.inversion == ("blocks.0", "blocks.1", "blocks.2", "blocks.4", "bn2")
    assert e.content_choices == e.inversion[:-1]
    r = features.default_layers(helpers.load_model("resnet50", pretrained=False, device="cpu"))
    assert r.style == ("maxpool", "layer1", "layer2", "layer3") and r.content == ("layer2",)
    assert r.inversion == ("layer1", "layer2", "layer3", "layer4")
    for layers in (e, r):  # every name is one the extractor accepts
        assert set(layers.content) <= set(layers.content_choices)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_short_run_on_lite0_lowers_the_loss(pretrained_lite0, optimizer):
    layers = features.default_layers(pretrained_lite0)
    ext = features.feature_extractor(pretrained_lite0, layers.content + layers.style)
    res = style.style_transfer(helpers.load_batch(["cat"], 64), helpers.load_batch(["brick"], 48), 6, ext,
                               layers.content, layers.style, optimizer=optimizer)
    total = res.history["total"]
    assert len(total) == 6 and total[-1] < 0.8 * total[0]
    with pytest.raises(ValueError, match="does not return"):
        style.style_transfer(torch.rand(1, 3, 32, 32), None, 1, ext, content_layers=("blocks.5",))


def test_texture_synthesis_without_content_on_lite0(pretrained_lite0):
    ext = features.feature_extractor(pretrained_lite0, ("bn1", "blocks.1"))
    tex = helpers.load_batch(["gravel"], 48)
    torch.manual_seed(0)
    res = style.style_transfer(tex, tex, 8, ext, content_layers=(), style_layers=("bn1", "blocks.1"),
                               content_weight=0.0, init="noise")
    assert res.history["content"] == [0.0] * 8
    assert res.history["style"][-1] < 0.5 * res.history["style"][0]


def test_pretrained_gram_matrices_tell_textures_apart(pretrained_lite0):
    """Two pieces of the same texture are nearer in style than pieces of different textures (real weights)."""
    import skimage.data

    sources = [skimage.data.immunohistochemistry(), "hubble", "brick", "grass", "gravel"]
    g = 32
    big = torch.cat([helpers.load_batch([s], 2 * g) for s in sources])
    ext = features.feature_extractor(pretrained_lite0, features.default_layers(pretrained_lite0).style)
    with torch.no_grad():
        fa, fb = ext(big[:, :, :g, :g]), ext(big[:, :, g:, g:])
    n = len(sources)
    d = torch.stack([torch.stack([
        style.style_loss({k: v[i:i + 1] for k, v in fa.items()}, {k: style.gram_matrix(v[j:j + 1]) for k, v in fb.items()})[0]
        for j in range(n)]) for i in range(n)])
    assert d.argmin(1).tolist() == list(range(n))
