"""The explorer (helpers.explorer: state, methods, view, ui; layers.block_layers): controls change
the figure, the cache avoids model calls, the maps are the helpers' maps, the layer menu is derived from
the module tree, and the widgets work without a browser.

The explorer here runs the course model of the smoke profile, EfficientNet-Lite0 with its real ImageNet
weights at 96 px, so a few tests can ask for real behaviour (the cat is a cat); AlexNet (random weights
unless cached) is the second model, for switching."""
import datetime
import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import helpers
from helpers import cam, saliency
from helpers.explorer.state import Explorer
from helpers.explorer.methods import METHODS
from helpers.explorer.ui import ExplorerUI
from helpers.viz import overlay
from helpers.layers import block_layers

LITE0 = "efficientnet_lite0"


@pytest.fixture(scope="module")
def ex():
    return Explorer(photo="cat", method="Grad-CAM", models=[LITE0, "alexnet"], device="cpu")


def _fresh(ex):
    ex.set_model(LITE0)
    ex.set_photo("cat")
    ex.set_method("Grad-CAM")
    ex.set_layer("bn2")
    ex.select_class(ex.predictions()[0][0])
    ex.set_opacity(0.5)


def test_initial_state_and_figure(ex):
    _fresh(ex)
    assert ex.model_name == helpers.config.get_profile().settings.model == LITE0  # the course model by default
    assert ex.layer == "bn2" and ex.method == "Grad-CAM"
    assert ex.target == ex.predictions()[0][0]
    data = ex.figure_data()
    s = helpers.config.get_profile().settings.image_size
    assert data.shape == (s, s, 3) and 0.0 <= data.min() and data.max() <= 1.0
    probs = [p for _, _, p in ex.predictions()]
    assert len(probs) == 5 and probs == sorted(probs, reverse=True)
    png = Image.open(io.BytesIO(ex.png(panel=100)))
    assert png.size == (208, 100)


def test_opacity_changes_the_figure_but_calls_no_model(ex):
    _fresh(ex)
    before, calls, computed = ex.figure_data(), ex.model_calls, ex.maps_computed
    ex.set_opacity(0.9)
    after = ex.figure_data()
    assert ex.model_calls == calls and ex.maps_computed == computed
    assert not np.allclose(before, after)
    ex.set_opacity(0.0)
    np.testing.assert_allclose(ex.figure_data(), ex.photo_array())
    assert ex.model_calls == calls


def test_method_class_and_layer_change_the_figure(ex):
    _fresh(ex)
    base = ex.figure_data()
    calls = ex.model_calls
    ex.set_method("saliency")
    assert not np.allclose(ex.figure_data(), base) and ex.model_calls > calls

    ex.set_method("Grad-CAM")
    calls = ex.model_calls
    np.testing.assert_array_equal(ex.figure_data(), base)  # cached
    assert ex.model_calls == calls

    first, second = ex.predictions()[0][0], ex.predictions()[1][0]
    ex.select_class(second)
    other = ex.figure_data()
    assert ex.model_calls > calls and not np.allclose(other, base)
    calls = ex.model_calls
    ex.select_class(first)  # back to a class already computed: instant
    np.testing.assert_array_equal(ex.figure_data(), base)
    assert ex.model_calls == calls

    ex.set_layer("blocks.4")
    assert not np.allclose(ex.figure_data(), base) and ex.model_calls == calls + 1


def test_layer_is_ignored_by_methods_that_do_not_use_it(ex):
    _fresh(ex)
    ex.set_method("saliency")
    m = ex.current_map().copy()
    calls = ex.model_calls
    ex.set_layer("blocks.2")
    np.testing.assert_array_equal(ex.current_map(), m)
    assert ex.model_calls == calls


def test_maps_are_the_helpers_maps(ex):
    _fresh(ex)
    x, t = ex.image(), ex.target
    ex.set_layer("blocks.4")
    ref = cam.grad_cam(ex.model(), x, t, layer="blocks.4")[0].numpy()
    np.testing.assert_allclose(ex.current_map(), ref, rtol=1e-5, atol=1e-7)
    ex.set_method("saliency")
    np.testing.assert_allclose(ex.current_map(), saliency.vanilla_saliency(ex.model(), x, t)[0].numpy(),
                               rtol=1e-5, atol=1e-8)
    ex.set_method("Guided Grad-CAM")
    grad_cam = cam.grad_cam(ex.model(), x, t, "blocks.4").unsqueeze(1)
    guided = saliency.guided_backprop(ex.model(), x, t) * grad_cam
    np.testing.assert_allclose(ex.current_map(), guided.abs().amax(dim=1)[0].numpy(), rtol=1e-5, atol=1e-9)
    # Lite0's activations are ReLU6: the guided map must not be the plain gradient's (Captum's GuidedBackprop
    # would leave them ungated and give exactly that)
    plain = (saliency.input_gradient(ex.model(), x, t) * grad_cam).abs().amax(dim=1)[0].numpy()
    assert not np.allclose(ex.current_map(), plain, rtol=1e-3, atol=1e-6)


def test_the_explorers_overlay_matches_an_explicit_per_pixel_loop():
    rng = np.random.default_rng(0)
    img, heat = rng.random((5, 4, 3)), rng.normal(size=(5, 4))
    from matplotlib import colormaps
    out = overlay(img, heat, 0.3, signed=True)
    lim = np.abs(heat).max()
    for i in range(5):
        for j in range(4):
            c = np.array(colormaps[helpers.viz.SIGNED_CMAP](0.5 + 0.5 * heat[i, j] / lim)[:3])
            np.testing.assert_allclose(out[i, j], 0.7 * img[i, j] + 0.3 * c)
    out = overlay(img, heat, 0.6)
    lo, hi = heat.min(), heat.max()
    c = np.array(colormaps[helpers.viz.MAP_CMAP]((heat[2, 1] - lo) / (hi - lo))[:3])
    np.testing.assert_allclose(out[2, 1], 0.4 * img[2, 1] + 0.6 * c)


def test_switching_model_and_photo(ex):
    _fresh(ex)
    base = ex.figure_data()
    ex.set_model("alexnet")
    assert ex.layer == "features.11" and ex.layers() == ["features.1", "features.4", "features.11"]
    assert not np.allclose(ex.figure_data(), base)
    ex.set_model(LITE0)
    ex.set_photo("coffee")
    assert ex.target in [c for c, _, _ in ex.predictions()]
    assert not np.allclose(ex.figure_data(), base)


def test_upload_adds_a_photo(ex):
    buf = io.BytesIO()
    Image.fromarray(np.tile(np.arange(64, dtype=np.uint8)[:, None, None] * 4, (1, 80, 3))).save(buf, "PNG")
    key = ex.add_photo("ramp.png", buf.getvalue())
    assert key.startswith("ramp.png (") and ex.photo == key
    assert ex.figure_data().shape[:2] == ex.image().shape[-2:]
    with pytest.raises(ValueError, match="not a readable image"):
        ex.add_photo("notes.txt", b"not an image")


def test_bad_choices_say_what_is_valid(ex):
    with pytest.raises(ValueError, match="Grad-CAM"):
        ex.set_method("gradcam")
    with pytest.raises(ValueError, match="bn2"):
        ex.set_layer("blocks.7")
    with pytest.raises(ValueError, match=LITE0):
        ex.set_model("resnet19")
    with pytest.raises(ValueError, match="0 to 999"):
        ex.select_class(1000)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ex.set_opacity(1.5)
    with pytest.raises(ValueError, match="cat"):
        ex.set_photo("dog")
    state = (ex.model_name, ex.layer, ex.target)
    with pytest.raises(ValueError, match="features.11"):
        ex.set_model("alexnet", layer="bn2")  # a Lite0 layer name for AlexNet
    assert (ex.model_name, ex.layer, ex.target) == state


def test_slow_methods_report_progress_and_every_method_runs(ex):
    _fresh(ex)
    seen = []
    ex.progress = lambda msg, frac: seen.append(frac)
    try:
        for name in METHODS:
            ex.set_method(name)
            m = ex.current_map()
            assert m.shape == ex.image().shape[-2:] and np.isfinite(m).all(), name
    finally:
        ex.progress = None
    assert seen[-1] == 1.0 and any(0 < f < 1 for f in seen if f is not None)  # SHAP reports per batch


def test_add_method_and_its_cache():
    ex = Explorer(models=[LITE0], device="cpu")
    calls = []

    def centre(model, x, target, layer, progress):
        calls.append(target)
        h, w = x.shape[-2:]
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        return -((yy - h / 2) ** 2 + (xx - w / 2) ** 2).float()[None]

    ex.add_method("centre", centre)
    ex.set_method("centre")
    ex.current_map()
    ex.set_opacity(0.1)
    ex.figure_data()
    assert len(calls) == 1


def _independent_block_outputs(features: nn.Sequential) -> list[int]:
    """Indices of the ReLUs directly before a max-pool (an explicit scan)."""
    mods = list(features)
    return [i for i in range(len(mods) - 1) if isinstance(mods[i], nn.ReLU) and isinstance(mods[i + 1], nn.MaxPool2d)]


def _architecture(name: str) -> helpers.Classifier:
    """Model `name` without weights (on the meta device: shapes only, instant), for tests of its module tree."""
    spec = helpers.registry.model_spec(name)
    with torch.device("meta"):
        net = spec.build()
    return helpers.Classifier(net, name, spec.mean, spec.std, helpers.imagenet_labels(), spec.target_layer)


@pytest.mark.parametrize("name", list(helpers.MODELS))
def test_block_layers_follow_the_module_tree(name):
    model = _architecture(name)
    layers = block_layers(model)
    assert model.target_layer_name in layers
    order = helpers.layer_names(model)
    assert layers == sorted(layers, key=order.index)  # forward order, no duplicates
    assert len(set(layers)) == len(layers)
    stages = [s for s in helpers.stage_names(model) if s != "maxpool"]  # ResNet's stem: `relu` in the explorer
    assert [n for n in layers if n in stages] == stages  # every stage of the course's list is offered
    if name.startswith("resnet"):
        assert layers == ["relu", "layer1", "layer2", "layer3", "layer4"]
    elif name in ("vgg16", "vgg19", "alexnet"):
        assert layers == [f"features.{i}" for i in _independent_block_outputs(model.net.features)]
    elif name == LITE0:  # the stem's batch norm + ReLU6, each stage of inverted residual blocks, the head
        assert layers == ["bn1"] + [f"blocks.{i}" for i in range(len(model.net.blocks))] + ["bn2"]


def test_lite0_layers_all_give_feature_maps(ex):
    """Every offered layer of Lite0 runs once per forward pass and gives (N, C, h, w), coarser going deeper."""
    _fresh(ex)
    assert ex.layers() == helpers.stage_names(ex.model())
    sizes = []
    hooks = [helpers.get_layer(ex.model(), n).register_forward_hook(
        lambda mod, inp, out: sizes.append(tuple(out.shape))) for n in ex.layers()]
    try:
        with torch.no_grad():
            ex.model()(ex.image())
    finally:
        for h in hooks:
            h.remove()
    assert len(sizes) == len(ex.layers()) and all(len(s) == 4 for s in sizes)
    sides = [s[-1] for s in sizes]
    assert sides == sorted(sides, reverse=True) and sides[0] > sides[-1]


def test_the_pretrained_course_model_sees_a_cat(ex):
    """Real behaviour at smoke size: Lite0's top-1 for the cat is one of ImageNet's five cat classes, and
    the Grad-CAM of a cat class differs from that of an unrelated class."""
    _fresh(ex)
    labels = ex.model().labels
    top = ex.predictions()
    assert top[0][1] in labels[281:286], top
    assert top[0][2] > 0.3
    cat_map = ex.current_map().copy()
    ex.select_class(labels.index("espresso"))
    assert not np.allclose(ex.current_map(), cat_map)
    ex.set_photo("coffee")
    assert ex.predictions()[0][1] == "espresso"


def test_has_imagenet_weights_follows_the_profile(ex, monkeypatch):
    assert ex.has_imagenet_weights(LITE0)  # they ship with its package: every profile has them
    assert ex.has_imagenet_weights("alexnet") == helpers.registry.weights_available("alexnet")
    monkeypatch.setenv("COURSE_WEIGHTS", "random")
    assert not ex.has_imagenet_weights(LITE0)
    with pytest.raises(ValueError, match="unknown model"):
        ex.has_imagenet_weights("resnet19")


def test_widgets_drive_the_explorer_without_a_browser():
    ex = Explorer(models=[LITE0, "alexnet"], device="cpu")
    ui = ExplorerUI(ex)
    png = ui.image.value
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert ui.method.value == "Grad-CAM" and ui.layer.value == "bn2" and ui.cls.value == ex.target
    # the model menu says which models have no ImageNet weights in this profile
    assert ui.model.options[0] == (LITE0, LITE0)
    alexnet_label = "alexnet" if helpers.registry.weights_available("alexnet") else "alexnet (random weights)"
    assert ui.model.options[1] == (alexnet_label, "alexnet")
    assert len(ui.cls.options) == 5
    ui.method.value = "saliency"
    assert ex.method == "saliency" and ui.image.value != png and ui.layer.disabled
    calls = ex.model_calls
    ui.opacity.value = 0.2
    assert ex.opacity == 0.2 and ex.model_calls == calls
    ex.set_method("Grad-CAM++")  # code drives the widgets too
    assert ui.method.value == "Grad-CAM++" and not ui.layer.disabled
    ui.cls.value = ui.cls.options[2][1]
    assert ex.target == ui.cls.options[2][1]
    ui.upload.value = ({"name": "bad.png", "type": "image/png", "size": 3, "content": memoryview(b"bad"),
                        "last_modified": datetime.datetime.now(datetime.timezone.utc)},)
    assert "not a readable image" in ui.status.value  # shown next to the controls, not raised
