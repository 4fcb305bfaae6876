"""helpers.sanity: cascading randomization (cumulative, top-down, on a copy, deterministic) and the
similarity measures against scipy and scikit-image."""
import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity

import helpers
from helpers import sanity


@pytest.fixture(scope="module")
def resnet():
    return helpers.load_model("resnet18", pretrained=False, device="cpu")


def params_of(model, name):
    return [p.detach().clone() for p in helpers.get_layer(model, name).parameters()]


def same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a, b))


def test_default_order_runs_from_the_output_down(resnet):
    order = sanity.default_layer_order(resnet)
    assert order[0] == "fc" and order[1] == "layer4.1" and order[-1] == "conv1" and len(order) == 11


def test_cascade_is_cumulative_top_down_on_a_copy_and_deterministic(resnet):
    original = {k: v.clone() for k, v in resnet.state_dict().items()}
    order = sanity.default_layer_order(resnet)[:4]
    rng_before = torch.get_rng_state()
    seen = []
    for step, (name, randomized) in enumerate(sanity.cascading_randomization(resnet, order)):
        assert randomized is not resnet and name == order[step]
        for k, other in enumerate(order):
            changed = not same(params_of(randomized, other), params_of(resnet, other))
            assert changed == (k <= step), (step, other)
        assert same(params_of(randomized, "layer1.0"), params_of(resnet, "layer1.0"))
        assert not any(p.requires_grad for p in randomized.parameters()) and not randomized.training
        seen.append(params_of(randomized, name))
    assert torch.equal(torch.get_rng_state(), rng_before)  # the global generator is left alone
    assert all(torch.equal(v, resnet.state_dict()[k]) for k, v in original.items())  # original untouched
    again = [params_of(m, n) for n, m in sanity.cascading_randomization(resnet, order)]
    assert all(same(a, b) for a, b in zip(seen, again))


def test_unknown_layer_fails_before_any_work(resnet):
    with pytest.raises(KeyError, match="layer9"):
        next(sanity.cascading_randomization(resnet, ["fc", "layer9"]))


def test_spearman_and_ssim_match_scipy_and_skimage():
    rng = np.random.default_rng(0)
    a = rng.random((3, 20, 20))
    b = a + 0.5 * rng.random((3, 20, 20))
    b[1] = np.round(b[1], 1)  # ties
    ours = sanity.spearman(torch.from_numpy(a), b)
    ref = [spearmanr(x.ravel(), y.ravel())[0] for x, y in zip(a, b)]
    assert np.allclose(ours, ref, atol=1e-12)
    s = sanity.ssim(a, b)
    na, nb = helpers.normalize_map(a), helpers.normalize_map(b)
    assert np.allclose(s, [structural_similarity(x, y, data_range=1.0) for x, y in zip(na, nb)])
    assert np.allclose(sanity.ssim(a, a), 1.0) and np.allclose(sanity.spearman(a, a), 1.0)
    assert (s < 0.99).all()
    with pytest.raises(ValueError, match="shapes"):
        sanity.spearman(a, b[:, :10])
