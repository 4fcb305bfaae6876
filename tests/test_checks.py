"""helpers.checks and the "one way to do each thing" rules of issue 12: the shared conversions, the one
Gaussian blur (against scipy and torchvision), the signed overlay, the one predict/accuracy pair, the
model contract (`helpers.contract.CourseModel`), no public name with two meanings, and no function that
moves torch's global random generator."""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib import colormaps
from scipy import ndimage

import helpers
from helpers import checks, contract, filters, heads, metrics, saliency, sanity, synthetic, train, viz

HELPERS = Path(helpers.__file__).parent


# ------------------------------------------------------------------------------------------ conversions

def test_targets_accept_an_int_a_list_and_a_tensor_alike():
    want = torch.tensor([2, 2, 2])
    assert torch.equal(checks.targets(2, 3, 5), want)
    assert torch.equal(checks.targets([2, 2, 2], 3, 5), want)
    assert torch.equal(checks.targets(torch.tensor([2, 2, 2], dtype=torch.int32), 3, 5), want)
    assert torch.equal(checks.targets(torch.tensor(2), 3, 5), want)
    assert checks.targets(1, 2, 5).dtype == torch.long


@pytest.mark.parametrize("bad, match", [
    (5, "outside the model's outputs.*0 to 4"), (-1, "negative.*0 to 4"), (1.0, r"int\(target\)"),
    (torch.tensor([0.0, 1.0]), r"\.long\(\)"), (True, "bool"), ([1, 2, 3], "3 class indices for a batch of 2"),
    (["a", "b"], "integer class indices"), (torch.zeros(2, 2, dtype=torch.long), "1-D"),
])
def test_bad_targets(bad, match):
    with pytest.raises(ValueError, match=match):
        checks.targets(bad, 2, 5)


def test_images_accept_the_course_range_and_refuse_the_rest():
    checks.images(torch.rand(2, 3, 4, 4))
    checks.images(torch.rand(3, 4, 4), single=True)
    checks.images(torch.full((1, 3, 2, 2), 1.0 + checks.TOLERANCE / 2))  # rounding is tolerated
    checks.images(torch.rand(1, 3, 4, 4) * 3 - 1, check_range=False)
    for bad, match in [(torch.rand(1, 3, 4, 4) * 255, "divide by 255"),
                       ((torch.rand(1, 3, 4, 4) - 0.45) / 0.22, "normalized"),
                       (torch.rand(1, 3, 4, 4) * 1.5, r"clamp\(0, 1\)"),
                       (torch.zeros(1, 3, 4, 4, dtype=torch.uint8), r"\.float\(\) / 255"),
                       (torch.rand(3, 4, 4), r"unsqueeze\(0\)"), (np.zeros((1, 3, 4, 4)), "torch.Tensor"),
                       (torch.full((1, 3, 2, 2), float("inf")), "nan_to_num")]:
        with pytest.raises(ValueError, match=match):
            checks.images(bad)


def test_maps_check_shape_and_values():
    m = torch.rand(2, 4, 4)
    assert checks.maps(m, shape=(2, 4, 4)) is m
    assert checks.maps(torch.ones(1, 2, 2, dtype=torch.long)).dtype == torch.float32
    with pytest.raises(ValueError, match=r"reduce the channels"):
        checks.maps(torch.rand(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"unsqueeze\(0\)"):
        checks.maps(torch.rand(4, 4))


def test_score_functions():
    z = torch.tensor([[1.0, 2.0]])
    assert torch.allclose(checks.score_fn(None, "softmax")(z), z.softmax(1))
    assert torch.equal(checks.score_fn(None, "logit")(z), z)
    model = synthetic.SmallCNN(2, width=2)
    assert torch.allclose(checks.score_fn(model)(z), z.softmax(1))
    model.multilabel = True
    assert torch.allclose(checks.score_fn(model)(z), torch.sigmoid(z))
    with pytest.raises(ValueError, match="softmax"):
        checks.score_fn(None, "probability")


# ------------------------------------------------------------------------------------------ one blur

@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 2.5])
def test_the_one_blur_matches_scipy(sigma):
    x = torch.rand(2, 3, 17, 19, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    radius = max(1, int(np.ceil(3 * sigma)))
    ref = ndimage.gaussian_filter(x.numpy(), sigma=(0, 0, sigma, sigma), mode="mirror", truncate=radius / sigma)
    assert np.allclose(filters.gaussian_blur(x, sigma).numpy(), ref, atol=1e-10)


def test_the_one_blur_is_shaps_former_torchvision_blur_where_3_sigma_is_whole():
    # shap_maps used torchvision's blur with kernel 2 * int(3 sigma) + 1 and sigma = side / 8: the same
    # kernel whenever 3 sigma is a whole number, as at 224, 128 or 64 px.
    from torchvision.transforms.functional import gaussian_blur as tv_blur

    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    sigma = 64 / 8
    k = 2 * int(3 * sigma) + 1
    assert torch.allclose(filters.gaussian_blur(x, sigma), tv_blur(x, [k, k], [sigma, sigma]), atol=1e-6)


def test_the_blur_is_one_function_and_a_wide_one_tends_to_the_mean():
    # one import path: notebooks, helpers and tests reach the blur as helpers.filters.gaussian_blur only
    root = HELPERS.parent
    texts = [p.read_text() for p in [*root.glob("notebooks/*.ipynb"), *HELPERS.rglob("*.py"), *root.glob("tests/**/*.py")]
             if p.name != "test_checks.py"]  # this file spells the patterns out
    other_paths = re.compile(r"(?<!filters)\.gaussian_blur\b|from helpers\.(?!filters)\w+ import[^\n]*gaussian_blur")
    assert not [m.group(0) for t in texts for m in other_paths.finditer(t)]
    x = torch.rand(1, 3, 9, 9)
    assert filters.gaussian_blur(x, 0) is x
    wide = filters.gaussian_blur(x, 1e4)
    assert torch.allclose(wide, wide.mean(dim=(2, 3), keepdim=True).expand_as(wide), atol=0.05)


# ---------------------------------------------------------------------------------- overlay, predict

def test_signed_overlay_keeps_zero_in_the_middle_of_the_signed_colormap():
    img = np.full((4, 4, 3), 0.2)
    heat = np.zeros((4, 4))
    heat[0, 0], heat[3, 3] = 2.0, -1.0
    out = viz.overlay(img, heat, 0.5, signed=True)
    cmap = colormaps[viz.SIGNED_CMAP]
    assert np.allclose(out[1, 1], 0.5 * 0.2 + 0.5 * np.array(cmap(0.5)[:3]))  # zero: the middle colour
    assert np.allclose(out[0, 0], 0.5 * 0.2 + 0.5 * np.array(cmap(1.0)[:3]))  # largest magnitude, positive
    assert np.allclose(out[3, 3], 0.5 * 0.2 + 0.5 * np.array(cmap(0.25)[:3]))  # half of it, negative
    unsigned = viz.overlay(img, heat, 0.5)  # min-max scaling: zero is not the middle any more
    assert np.allclose(unsigned[1, 1], 0.5 * 0.2 + 0.5 * np.array(colormaps[viz.MAP_CMAP](1 / 3)[:3]))


def test_predict_and_accuracy_are_one_pair():
    model = synthetic.SmallCNN(3, width=2).eval()
    x = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    logits = train.predict(model, x, batch_size=2)
    with torch.no_grad():
        assert torch.allclose(logits, model(x), atol=1e-6)
    labels = torch.tensor([0, 1, 2, 0, 1])
    expected = sum(int(logits[i].argmax()) == int(labels[i]) for i in range(5)) / 5  # explicit loop
    assert train.accuracy(logits, labels).item() == pytest.approx(expected)
    assert not hasattr(synthetic, "predict") and not hasattr(synthetic, "accuracy")


# ---------------------------------------------------------------------------------------- contract

def _explorer_wrapper(model):
    from helpers.explorer import methods

    return methods._Reporting(model, 10, lambda done, total: None)


@pytest.fixture(scope="module")
def course_models():
    resnet = helpers.load_model("resnet18", pretrained=False, device="cpu")
    small = synthetic.SmallCNN(num_classes=4, width=4).eval()
    return {"Classifier": resnet, "SmallCNN": small, "explorer wrapper": _explorer_wrapper(resnet)}


@pytest.mark.parametrize("which", ["Classifier", "SmallCNN", "explorer wrapper"])
def test_every_course_model_satisfies_the_contract(course_models, which):
    model = course_models[which]
    assert contract.is_course_model(model), [a for a in contract.CONTRACT if not hasattr(model, a)]
    hints = {"net": torch.nn.Module, "labels": list, "target_layer_name": str, "multilabel": bool,
             "mean": torch.Tensor, "std": torch.Tensor, "num_classes": int}
    for name, kind in hints.items():
        assert isinstance(getattr(model, name), kind), (which, name, type(getattr(model, name)))
    assert set(hints) == set(contract.CONTRACT) and model.num_classes == len(model.labels)
    assert model.mean.shape == model.std.shape == (1, 3, 1, 1)
    layer = helpers.get_layer(model, model.target_layer_name)
    assert any(layer is m for m in model.net.modules())
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, model.num_classes)
    assert not contract.is_course_model(torch.nn.Linear(2, 2))


# ------------------------------------------------------------------------------ names and randomness

def _public_functions():
    for info in pkgutil.walk_packages(helpers.__path__, "helpers."):
        mod = importlib.import_module(info.name)
        for name, obj in vars(mod).items():
            if not name.startswith("_") and inspect.isfunction(obj) and obj.__module__.startswith("helpers."):
                yield info.name.removeprefix("helpers."), name, obj


def test_no_two_public_functions_share_a_name_with_different_meanings():
    seen: dict[str, list[tuple[str, object]]] = {}
    for mod, name, obj in _public_functions():
        seen.setdefault(name, []).append((mod, obj))
    clashes = {name: [m for m, _ in places] for name, places in seen.items()
               if len({id(obj) for _, obj in places}) > 1}
    assert not clashes, f"public functions defined twice under one name (give them two names): {clashes}"


def test_the_similarity_measures_live_in_metrics_only():
    assert not hasattr(sanity, "spearman") and not hasattr(sanity, "ssim")


def test_no_function_moves_the_global_random_generator():
    state = torch.get_rng_state()
    model = helpers.load_model("resnet18", pretrained=False, device="cpu")
    heads.new_head(model, ["a", "b"], multilabel=False)
    synthetic.make_shapes(8, 16, seed=3, shortcut=0.5)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    small = synthetic.SmallCNN(4, width=2)
    after_build = torch.get_rng_state()  # building SmallCNN draws its weights from the global generator
    saliency.smoothgrad(small.eval(), x, 0, samples=2, generator=torch.Generator().manual_seed(1))
    metrics.imputed_deletion_curve(small, x, torch.rand(2, 16, 16, generator=torch.Generator().manual_seed(2)), 0,
                                   steps=2, noise=0.01, generator=torch.Generator().manual_seed(3))
    for _ in sanity.cascading_randomization(small, ["head"]):
        pass
    assert torch.equal(after_build, torch.get_rng_state())
    torch.set_rng_state(state)


def test_no_source_reseeds_the_global_generator_outside_a_fork():
    """`torch.manual_seed` may appear only in config.seed_everything (whose job it is) and inside a
    `torch.random.fork_rng()` block (architectures whose constructors draw from the global generator),
    which restores the global state on exit."""
    offenders = []
    for path in sorted(HELPERS.rglob("*.py")):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if re.search(r"torch\.(cuda\.)?manual_seed(_all)?\(", line) and not line.lstrip().startswith("#"):
                in_fork = any("fork_rng" in prev for prev in lines[max(0, i - 3):i])
                if not in_fork and not (path.name == "config.py" and "def seed_everything" in "\n".join(lines[max(0, i - 8):i])):
                    offenders.append(f"{path.name}:{i + 1}: {line.strip()}")
    assert not offenders, f"global reseeding outside a fork (use a torch.Generator): {offenders}"
