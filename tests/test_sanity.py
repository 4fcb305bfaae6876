"""helpers.sanity: cascading randomization (cumulative, top-down, on a copy, deterministic). The similarity
measures (helpers.metrics.spearman, helpers.metrics.ssim) are tested against scipy and scikit-image in
test_metrics.py."""
import pytest
import torch

import helpers
from helpers import sanity




def params_of(model, name):
    return [p.detach().clone() for p in helpers.get_layer(model, name).parameters()]


def same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a, b))


def test_default_order_runs_from_the_output_down(random_resnet18):
    order = sanity.default_layer_order(random_resnet18)
    assert order[0] == "fc" and order[1] == "layer4.1" and order[-1] == "conv1" and len(order) == 11


def test_cascade_is_cumulative_top_down_on_a_copy_and_deterministic(random_resnet18):
    original = {k: v.clone() for k, v in random_resnet18.state_dict().items()}
    order = sanity.default_layer_order(random_resnet18)[:4]
    rng_before = torch.get_rng_state()
    seen = []
    for step, (name, randomized) in enumerate(sanity.cascading_randomization(random_resnet18, order)):
        assert randomized is not random_resnet18 and name == order[step]
        for k, other in enumerate(order):
            changed = not same(params_of(randomized, other), params_of(random_resnet18, other))
            assert changed == (k <= step), (step, other)
        assert same(params_of(randomized, "layer1.0"), params_of(random_resnet18, "layer1.0"))
        assert not any(p.requires_grad for p in randomized.parameters()) and not randomized.training
        seen.append(params_of(randomized, name))
    assert torch.equal(torch.get_rng_state(), rng_before)  # the global generator is left alone
    assert all(torch.equal(v, random_resnet18.state_dict()[k]) for k, v in original.items())  # original untouched
    again = [params_of(m, n) for n, m in sanity.cascading_randomization(random_resnet18, order)]
    assert all(same(a, b) for a, b in zip(seen, again))


def test_unknown_layer_fails_before_any_work(random_resnet18):
    with pytest.raises(KeyError, match="layer9"):
        next(sanity.cascading_randomization(random_resnet18, ["fc", "layer9"]))




def test_stage_order_groups_every_block_once_from_the_head_down(random_resnet18, random_lite0):
    assert sanity.stage_layer_order(random_resnet18) == [("fc",), ("layer4",), ("layer3",), ("layer2",), ("layer1",),
                                                ("conv1", "bn1")]
    order = sanity.stage_layer_order(random_lite0)
    assert order[0] == ("classifier",) and order[1] == ("conv_head", "bn2") and order[-1] == ("conv_stem", "bn1")
    assert order[2:-1] == [(f"blocks.{i}",) for i in range(6, -1, -1)]
    for model, groups in ((random_resnet18, sanity.stage_layer_order(random_resnet18)), (random_lite0, order)):
        # the groups cover exactly the parameters of the fine order, each once
        covered = [id(p) for g in groups for name in g for p in helpers.get_layer(model, name).parameters()]
        fine = [id(p) for name in sanity.default_layer_order(model) for p in helpers.get_layer(model, name).parameters()]
        assert len(covered) == len(set(covered)) and set(covered) == set(fine)
    with pytest.raises(ValueError, match="course model"):
        sanity.stage_layer_order(random_resnet18.net)


def test_cascade_of_groups_randomizes_a_whole_group_per_step(random_lite0):
    import copy

    random_lite0 = copy.deepcopy(random_lite0)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # "trained" weights: batch norms that a re-initialization visibly changes
        for p in random_lite0.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    order = sanity.stage_layer_order(random_lite0)[:3]
    steps = []
    for label, randomized in sanity.cascading_randomization(random_lite0, order):
        steps.append(label)
        if label == "conv_head+bn2":
            for name in ("classifier", "conv_head", "bn2"):
                assert not same(params_of(randomized, name), params_of(random_lite0, name)), name
            assert same(params_of(randomized, "blocks.6"), params_of(random_lite0, "blocks.6"))
    assert steps == ["classifier", "conv_head+bn2", "blocks.6"]
    with pytest.raises(ValueError, match="empty"):
        next(sanity.cascading_randomization(random_lite0, [()]))
