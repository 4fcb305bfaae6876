"""The explorer (helpers.explorer): controls change the figure, the cache avoids model calls, the maps are
the helpers' maps, the layer menu is derived from the module tree, and the widgets work without a browser."""
import datetime
import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import helpers
from helpers import cam, saliency
from helpers.explorer import METHODS, Explorer, ExplorerUI, blend, block_layers


@pytest.fixture(scope="module")
def ex():
    return Explorer(photo="cat", model="resnet18", method="Grad-CAM", models=["resnet18", "alexnet"],
                    device="cpu")


def _fresh(ex):
    ex.set_photo("cat")
    ex.set_method("Grad-CAM")
    ex.set_layer("layer4")
    ex.select_class(ex.predictions()[0][0])
    ex.set_opacity(0.5)


def test_initial_state_and_figure(ex):
    _fresh(ex)
    assert ex.model_name == "resnet18" and ex.layer == "layer4" and ex.method == "Grad-CAM"
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

    ex.set_layer("layer3")
    assert not np.allclose(ex.figure_data(), base) and ex.model_calls == calls + 1


def test_layer_is_ignored_by_methods_that_do_not_use_it(ex):
    _fresh(ex)
    ex.set_method("saliency")
    m = ex.current_map().copy()
    calls = ex.model_calls
    ex.set_layer("layer2")
    np.testing.assert_array_equal(ex.current_map(), m)
    assert ex.model_calls == calls


def test_maps_are_the_helpers_maps(ex):
    _fresh(ex)
    x, t = ex.image(), ex.target
    ex.set_layer("layer3")
    ref = cam.grad_cam(ex.model(), x, t, layer="layer3")[0].numpy()
    np.testing.assert_allclose(ex.current_map(), ref, rtol=1e-5, atol=1e-7)
    ex.set_method("saliency")
    np.testing.assert_allclose(ex.current_map(), saliency.vanilla_saliency(ex.model(), x, t)[0].numpy(),
                               rtol=1e-5, atol=1e-8)
    ex.set_method("Guided Grad-CAM")
    guided = saliency.guided_backprop(ex.model(), x, t) * cam.grad_cam(ex.model(), x, t, "layer3").unsqueeze(1)
    np.testing.assert_allclose(ex.current_map(), guided.abs().amax(dim=1)[0].numpy(), rtol=1e-5, atol=1e-9)


def test_blend_matches_an_explicit_per_pixel_loop():
    rng = np.random.default_rng(0)
    img, heat = rng.random((5, 4, 3)), rng.normal(size=(5, 4))
    from matplotlib import colormaps
    out = blend(img, heat, 0.3, signed=True)
    lim = np.abs(heat).max()
    for i in range(5):
        for j in range(4):
            c = np.array(colormaps[helpers.viz.SIGNED_CMAP](0.5 + 0.5 * heat[i, j] / lim)[:3])
            np.testing.assert_allclose(out[i, j], 0.7 * img[i, j] + 0.3 * c)
    out = blend(img, heat, 0.6)
    lo, hi = heat.min(), heat.max()
    c = np.array(colormaps[helpers.viz.MAP_CMAP]((heat[2, 1] - lo) / (hi - lo))[:3])
    np.testing.assert_allclose(out[2, 1], 0.4 * img[2, 1] + 0.6 * c)


def test_switching_model_and_photo(ex):
    _fresh(ex)
    base = ex.figure_data()
    ex.set_model("alexnet")
    assert ex.layer == "features.11" and ex.layers() == ["features.1", "features.4", "features.11"]
    assert not np.allclose(ex.figure_data(), base)
    ex.set_model("resnet18")
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
    with pytest.raises(ValueError, match="layer4"):
        ex.set_layer("layer5")
    with pytest.raises(ValueError, match="resnet18"):
        ex.set_model("resnet19")
    with pytest.raises(ValueError, match="0 to 999"):
        ex.select_class(1000)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ex.set_opacity(1.5)
    with pytest.raises(ValueError, match="cat"):
        ex.set_photo("dog")
    state = (ex.model_name, ex.layer, ex.target)
    with pytest.raises(ValueError, match="features.11"):
        ex.set_model("alexnet", layer="layer4")  # a ResNet layer name for AlexNet
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
    ex = Explorer(models=["resnet18"], device="cpu")
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


@pytest.mark.parametrize("name", ["resnet18", "vgg16", "alexnet"])
def test_block_layers_follow_the_module_tree(name):
    model = helpers.load_model(name, device="cpu")
    layers = block_layers(model)
    if name.startswith("resnet"):
        assert layers[-4:] == ["layer1", "layer2", "layer3", "layer4"]
    else:
        assert layers == [f"features.{i}" for i in _independent_block_outputs(model.net.features)]
    assert model.target_layer_name in layers


def test_widgets_drive_the_explorer_without_a_browser():
    ex = Explorer(models=["resnet18"], device="cpu")
    ui = ExplorerUI(ex)
    png = ui.image.value
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert ui.method.value == "Grad-CAM" and ui.layer.value == "layer4" and ui.cls.value == ex.target
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
