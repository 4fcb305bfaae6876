"""The same bad input gets the same clear ValueError from every public function of `helpers` (issue 12).

Every module-level function and class of `helpers` whose parameters take class targets, images or maps
(found by parameter name, see TARGET/IMAGE/MAP_PARAMS) must be listed in CALLS (how to call it, and which
argument each battery case goes to) or in EXEMPT (with the reason): a new function is never skipped
silently. Each listed function then gets the battery: a class out of range, negative or float; images in
0-255, channels-last, grayscale or with a NaN; maps of the wrong shape or with a NaN. Each must raise a
ValueError whose message names the argument and says the fix. Validation happens before any work, so
the whole battery takes a few seconds.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest
import torch

import helpers
from helpers import attacks, blackbox, cam, images, imputation, metrics, models, optimize, saliency, style, synthetic, train, viz

TARGET_PARAMS = {"target", "label", "labels", "channel"}
IMAGE_PARAMS = {"x", "images", "image", "start", "end", "content", "style", "x_adv", "init"}
MAP_PARAMS = {"maps", "heat", "a", "b", "original", "randomized", "m"}

K, N, S = 4, 2, 16  # classes of the test model, images, side


@dataclass
class Case:
    call: Callable[..., object]  # call(model, x, target, maps), each argument replaced by a bad one in turn
    target: str | None = None  # the argument's name as the message must say it (None: not tested)
    images: str | None = None
    maps: str | None = None
    single_image: bool = False  # takes one image (3, H, W) or (H, W, 3): channels-last and grayscale are fine
    map_fix: str = "Upsample"  # the fix a map of the wrong shape is told
    extra: dict = field(default_factory=dict)


def _curve(f):
    return lambda m, x, t, mp: f(m, x, mp, t, steps=2)


CALLS: dict[str, Case] = {
    # saliency and CAM
    "saliency.input_gradient": Case(lambda m, x, t, mp: saliency.input_gradient(m, x, t), "target", "x"),
    "saliency.vanilla_saliency": Case(lambda m, x, t, mp: saliency.vanilla_saliency(m, x, t), "target", "x"),
    "saliency.grad_times_input": Case(lambda m, x, t, mp: saliency.grad_times_input(m, x, t), "target", "x"),
    "saliency.smoothgrad": Case(lambda m, x, t, mp: saliency.smoothgrad(m, x, t, samples=1), "target", "x"),
    "saliency.integrated_gradients": Case(lambda m, x, t, mp: saliency.integrated_gradients(m, x, t, steps=2),
                                          "target", "x"),
    "saliency.guided_backprop": Case(lambda m, x, t, mp: saliency.guided_backprop(m, x, t), "target", "x"),
    "cam.layer_activations_and_gradients": Case(lambda m, x, t, mp: cam.layer_activations_and_gradients(m, x, t),
                                                "target", "x"),
    "cam.grad_cam": Case(lambda m, x, t, mp: cam.grad_cam(m, x, t), "target", "x"),
    "cam.grad_cam_pp": Case(lambda m, x, t, mp: cam.grad_cam_pp(m, x, t), "target", "x"),
    # perturbation methods
    "blackbox.lime_maps": Case(lambda m, x, t, mp: blackbox.lime_maps(m, x, t, num_samples=4), "target", "x"),
    "blackbox.shap_maps": Case(lambda m, x, t, mp: blackbox.shap_maps(m, x, t, max_evals=8), "target", "x"),
    # attacks
    "attacks.fool": Case(lambda m, x, t, mp: attacks.fool(m, x, t, max_steps=1), "target", "x"),
    "attacks.fgsm": Case(lambda m, x, t, mp: attacks.fgsm(m, x, t, eps=0.01), "label", "x"),
    "attacks.pgd": Case(lambda m, x, t, mp: attacks.pgd(m, x, t, eps=0.01, steps=1), "label", "x"),
    "attacks.success_rate": Case(lambda m, x, t, mp: attacks.success_rate(m, x, t), "label", "x_adv"),
    "attacks.project_linf": Case(lambda m, x, t, mp: attacks.project_linf(x, x, 0.01),
                                 None, "x"),
    # optimization
    "optimize.class_logit": Case(lambda m, x, t, mp: optimize.class_logit(m, t)(x), "target"),
    "optimize.channel_mean": Case(lambda m, x, t, mp: optimize.channel_mean(m, "features.block1", t)(x), "channel"),
    "optimize.color_correlation_sqrt": Case(lambda m, x, t, mp: optimize.color_correlation_sqrt(x), None, "x"),
    "optimize.random_transform": Case(lambda m, x, t, mp: optimize.random_transform(x), None, "x"),
    "optimize.PixelImage": Case(lambda m, x, t, mp: optimize.PixelImage(init=x), None, "init"),
    "optimize.FourierImage": Case(lambda m, x, t, mp: optimize.FourierImage(init=x), None, "init"),
    "style.style_transfer": Case(lambda m, x, t, mp: style.style_transfer(x, None, steps=1), None, "content"),
    # metrics
    "metrics.energy_in_mask": Case(lambda m, x, t, mp: metrics.energy_in_mask(mp.abs(), torch.ones(S, S, dtype=bool)),
                                   maps="maps", map_fix="masks must be shaped like the maps"),
    "metrics.pointing_game": Case(lambda m, x, t, mp: metrics.pointing_game(mp, torch.ones(S, S, dtype=bool)),
                                  maps="maps", map_fix="masks must be shaped like the maps"),
    "metrics.importance_ranks": Case(lambda m, x, t, mp: metrics.importance_ranks(mp), maps="maps", map_fix=None),
    "metrics.replacement_curve": Case(lambda m, x, t, mp: metrics.replacement_curve(m, x, x.flip(-1), mp, t, steps=2),
                                      "target", "start", "maps"),
    "metrics.deletion_curve": Case(_curve(metrics.deletion_curve), "target", "x", "maps"),
    "metrics.insertion_curve": Case(_curve(metrics.insertion_curve), "target", "x", "maps"),
    "metrics.imputed_deletion_curve": Case(_curve(metrics.imputed_deletion_curve), "target", "x", "maps"),
    "imputation.linear_imputation": Case(lambda m, x, t, mp: imputation.linear_imputation(x, torch.zeros(N, S, S, dtype=bool)),
                                      None, "x", extra={"channels": "any"}),
    "metrics.spearman": Case(lambda m, x, t, mp: metrics.spearman(mp, torch.rand(N, S, S)), maps="a",
                             map_fix="same shape"),
    "metrics.ssim": Case(lambda m, x, t, mp: metrics.ssim(mp, torch.rand(N, S, S)), maps="a", map_fix="same shape"),
    "metrics.randomization_scores": Case(lambda m, x, t, mp: metrics.randomization_scores(mp, torch.rand(N, S, S)),
                                         maps="a", map_fix="same shape"),
    # models, training, images, plots
    "models.top_k": Case(lambda m, x, t, mp: models.top_k(m, x, k=1), None, "x"),
    "synthetic.train": Case(lambda m, x, t, mp: synthetic.train(m, x, t, epochs=1), "labels", "images"),
    "train.predict": Case(lambda m, x, t, mp: train.predict(m, x), None, "images"),
    "train.accuracy": Case(lambda m, x, t, mp: train.accuracy(torch.zeros(N, K), t), "labels"),
    "images.to_numpy": Case(lambda m, x, t, mp: images.to_numpy(x), None, "x"),
    "viz.as_image": Case(lambda m, x, t, mp: viz.as_image(x[0]), None, "image", single_image=True),
    "viz.normalize_map": Case(lambda m, x, t, mp: viz.normalize_map(mp), maps="map", map_fix=None),
    "viz.overlay": Case(lambda m, x, t, mp: viz.overlay(x[0], mp[0]), None, "image", "heat", single_image=True,
                        map_fix="upsample"),
    "viz.signed_colors": Case(lambda m, x, t, mp: viz.signed_colors(mp[0]), maps="heat", map_fix=None),
    "viz.show_maps": Case(lambda m, x, t, mp: viz.show_maps(x, mp), None, "images", "maps"),
}

EXEMPT: dict[str, str] = {
    "checks.*": "the shared checks themselves (tested directly in test_checks.py)",
    "stats.*": "statistics of score arrays (a, b are samples of numbers, not maps)",
    "filters.*": "filters for any (N, C, H, W) tensor, not only images (tested in test_checks.py)",
    "optimize.jitter": "a roll of any batch inside the ascent loop; shape-agnostic",
    "images.preprocess": "a loader: tested below with the loaders' own battery (converts every photo format)",
    "images.load_batch": "a loader: preprocess of several images",
    "images.load_image": "a loader: tested with preprocess",
    "viz.show_grid": "shows panels of any kind (images, maps, signed or not) as they are",
    "heads.new_head": "labels are class names, not class indices",
    "settings.Settings": "a record of the profiles' numbers; `style` is 05's group of settings, not an image",
    "concepts.tcav": "one output index (an int) for the whole batch; checked in tests/test_concepts.py",
    "train.predict_dataset": "takes a Dataset; its images are checked by the Dataset",
    "features.VGGFeatures": "a feature extractor called inside style_transfer on clamped images",
    "features.LayerFeatures": "a feature extractor called inside style_transfer on clamped images",
    "style.gram_matrix": "takes features, not images",
    "explorer*.*": "the explorer takes photo names and widget values; its maps come from the checked methods",
    "models.Classifier": "labels are class names",
    "registry.map_state_dict_by_position": "target is a state dict",
    "optimize.visualize": "image is a parameterization (PixelImage, FourierImage), checked when it is built",
    "features.StyleLayers": "a record of layer names",
    "style.StyleResult": "a record of style_transfer's result",
    "style.relative_error": "compares feature tensors, not images",
    "style.tv_loss": "a loss term inside style_transfer's loop (on clamped images)",
    "synthetic.ShapeSet": "a record that make_shapes fills",
    "train.positive_weights": "0/1 attribute labels (N, K), not class indices",
    "train.fine_tune": "labels are class names",
}


def _public_callables():
    """(qualified name, object, parameter names) of every public module-level function and class of helpers."""
    found = []
    for info in pkgutil.walk_packages(helpers.__path__, "helpers."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        mod = importlib.import_module(info.name)
        for name, obj in vars(mod).items():
            if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if getattr(obj, "__module__", None) != mod.__name__:
                continue  # imported from elsewhere (torch, typing, another helpers module: listed there)
            try:
                params = set(inspect.signature(obj).parameters)
            except (TypeError, ValueError):
                continue
            found.append((f"{info.name.removeprefix('helpers.')}.{name}", obj, params))
    return found


def _exempt(qualname: str) -> bool:
    mod, name = qualname.rsplit(".", 1)
    return any(key == qualname or (key.endswith(".*") and
                                   (key[:-2] == mod or (key[:-2].endswith("*") and mod.startswith(key[:-3]))))
               for key in EXEMPT)


def test_every_function_taking_targets_images_or_maps_is_listed():
    missing = []
    for qualname, obj, params in _public_callables():
        takes = params & (TARGET_PARAMS | IMAGE_PARAMS | MAP_PARAMS)
        if takes and qualname not in CALLS and not _exempt(qualname):
            missing.append(f"{qualname}({', '.join(sorted(takes))})")
    assert not missing, ("public functions that take targets, images or maps but are not in the bad-input battery; "
                         f"add them to CALLS (or to EXEMPT with a reason): {missing}")
    known = {q for q, _, _ in _public_callables()}
    assert not set(CALLS) - known, f"CALLS lists functions that no longer exist: {set(CALLS) - known}"


@pytest.fixture(scope="module")
def setup():
    model = synthetic.SmallCNN(num_classes=K, width=4).eval().requires_grad_(False)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(N, 3, S, S, generator=g)
    return model, x, torch.tensor([0, 1]), torch.rand(N, S, S, generator=g)


def _nan(t: torch.Tensor) -> torch.Tensor:
    t = t.clone()
    t.view(-1)[3] = float("nan")
    return t


# (case, which input, how to spoil it, what the message must say besides the argument's name)
TARGET_BATTERY = [
    ("class out of range", lambda t: torch.tensor([0, K]), f"0 to {K - 1}"),
    ("negative class", lambda t: -1, f"0 to {K - 1}"),
    ("float class", lambda t: torch.tensor([0.0, 1.0]), ".long()"),
]
IMAGE_BATTERY = [
    ("0-255 images", lambda x: x * 255, "divide by 255"),
    ("channels-last", lambda x: x.permute(0, 2, 3, 1), "permute"),
    ("grayscale", lambda x: x[:, :1], "expand(-1, 3, -1, -1)"),
    ("NaN image", _nan, "nan_to_num"),
]
MAP_BATTERY = [
    ("map of the wrong shape", lambda m: m[:, : S // 2, : S // 2], None),
    ("NaN map", _nan, "nan_to_num"),
]


def _battery():
    for qualname, case in CALLS.items():
        if case.target:
            for what, spoil, fix in TARGET_BATTERY:
                yield pytest.param(qualname, "target", spoil, fix, id=f"{qualname}-{what}")
        if case.images:
            for what, spoil, fix in IMAGE_BATTERY:
                if case.single_image and what in ("channels-last", "grayscale"):
                    continue  # one image: (H, W, 3) and one channel are accepted forms
                if case.extra.get("channels") == "any" and what == "grayscale":
                    continue  # any number of channels is fine
                yield pytest.param(qualname, "images", spoil, fix, id=f"{qualname}-{what}")
        if case.maps:
            for what, spoil, fix in MAP_BATTERY:
                if what == "map of the wrong shape" and case.map_fix is None:
                    continue  # takes maps of any size
                yield pytest.param(qualname, "maps", spoil, fix or case.map_fix, id=f"{qualname}-{what}")


@pytest.mark.parametrize("qualname, which, spoil, fix", list(_battery()))
def test_bad_input_gets_a_value_error_naming_the_argument_and_the_fix(setup, qualname, which, spoil, fix):
    model, x, target, maps = setup
    case = CALLS[qualname]
    args = {"target": target, "images": x, "maps": maps}
    args[which] = spoil(args[which])  # single-image functions take x[0] and maps[0] of the spoiled batch
    with pytest.raises(ValueError) as info:
        case.call(model, args["images"], args["target"], args["maps"])
    message = str(info.value)
    name = getattr(case, which)
    assert name in message, f"{qualname}: the message does not name the argument {name!r}: {message}"
    assert fix.lower() in message.lower(), f"{qualname}: the message does not say the fix {fix!r}: {message}"


# ------------------------------------------------------------------------------------------ loaders

@pytest.mark.parametrize("bad, fix", [
    (np.full((8, 8, 3), 200.0), "255"),
    (np.full((8, 8, 3), np.nan), "nan"),
])
def test_loaders_explain_bad_float_arrays(bad, fix):
    with pytest.raises(ValueError, match=fix):
        helpers.preprocess(bad, None)


def test_loaders_accept_grayscale_by_repeating_it():
    gray = np.linspace(0, 1, 64).reshape(8, 8)
    x = helpers.preprocess(gray, None)
    assert x.shape == (1, 3, 8, 8) and torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])
