"""Profiles, pretrained weights from the cache, and models/layers by name."""
import pytest
import torch
from torch import nn

import helpers
from helpers import config, models
from helpers.download import DownloadError


@pytest.fixture(autouse=True)
def fresh_profile():
    config.set_profile(None)
    yield
    config._PROFILE = None


def test_pretrained_weights_load_from_a_filled_cache_without_network(torch_home, no_network):
    net = models.model_spec("resnet18").build()
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


def test_no_cache_no_network_falls_back_to_smoke_and_says_so(torch_home, no_network, monkeypatch, capsys):
    prof = config.resolve_profile(environ={})
    assert prof.name == "smoke"
    assert "cannot be reached" in prof.reason and str(torch_home) in prof.reason
    monkeypatch.delenv("COURSE_PROFILE")
    config._PROFILE = None
    helpers.setup()
    out = capsys.readouterr().out
    assert "profile: smoke" in out and "SMOKE PROFILE" in out and "mean nothing" in out


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
    with pytest.raises(ValueError, match="full.*smoke"):
        config.resolve_profile(environ={"COURSE_PROFILE": "fast"})


def test_profiles_share_the_same_fields_and_smoke_is_smaller():
    full, smoke = config.SETTINGS["full"], config.SETTINGS["smoke"]
    assert full.image_size == 224 and smoke.image_size < full.image_size
    for field in ("cmv_steps", "style_steps", "ig_steps", "smoothgrad_samples", "lime_samples"):
        assert getattr(smoke, field) <= getattr(full, field), field


@pytest.mark.parametrize("name", list(models.MODELS))
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
    for name in models.MODELS:
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
