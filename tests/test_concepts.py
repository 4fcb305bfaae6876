"""helpers.concepts: TCAV through Captum on a model whose answer is known: an output that grows with the red
channel is sensitive to a "red" concept (score 1, significant against random concepts), the opposite output is
not (score 0); results are deterministic and leave the global generators alone."""
import random

import numpy as np
import pytest
import torch
from torch import nn

from helpers import concepts


def _model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 3, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        net[0].bias.copy_(torch.tensor([-0.5, 0.0, 0.0]))  # the ReLU keeps a different half of each input's red
        net[4].weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]]))
        net[4].bias.zero_()
    return net.eval()


def _sets():
    g = torch.Generator().manual_seed(1)
    randoms = [torch.rand(12, 3, 8, 8, generator=g) for _ in range(11)]
    red = torch.rand(12, 3, 8, 8, generator=g)
    red[:, 0] = 0.7 + 0.3 * red[:, 0]
    red[:, 1:] *= 0.5
    return {"red": red}, randoms, torch.rand(10, 3, 8, 8, generator=g)


def test_tcav_finds_the_concept_the_output_grows_with_and_tests_it_against_chance():
    model = _model()
    cons, randoms, inputs = _sets()
    state_torch, state_py, state_np = torch.random.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()
    up = concepts.tcav(model, "0", inputs, 0, cons, randoms)["red"]
    assert torch.equal(torch.random.get_rng_state(), state_torch) and random.getstate() == state_py
    assert np.array_equal(np.random.get_state()[1], state_np)
    assert up.scores.shape == (10,) and up.random_scores.shape == (10,)
    assert np.all(up.scores == 1.0) and up.mean > up.random_mean and up.cav_accuracy.min() > 0.9
    assert up.significant(0.05) and 0 <= up.p_value < 0.05
    down = concepts.tcav(model, "0", inputs, 1, cons, randoms)["red"]
    assert np.all(down.scores == 0.0)
    again = concepts.tcav(model, "0", inputs, 0, cons, randoms)["red"]
    assert np.array_equal(again.scores, up.scores) and again.p_value == up.p_value  # deterministic


def test_tcav_needs_three_random_sets_and_a_real_layer():
    model = _model()
    cons, randoms, inputs = _sets()
    with pytest.raises(ValueError, match="3 random sets"):
        concepts.tcav(model, "0", inputs, 0, cons, randoms[:2])
    with pytest.raises(KeyError):
        concepts.tcav(model, "no.such.layer", inputs, 0, cons, randoms)


def test_tcav_refuses_bad_inputs_and_targets_before_any_work():
    from helpers import concepts

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.Flatten(), torch.nn.LazyLinear(3))
    net(torch.zeros(1, 3, 8, 8))
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    sets = [x] * 3
    with pytest.raises(ValueError, match="divide by 255"):
        concepts.tcav(net, "0", x * 255, 0, {"c": x}, sets)
    with pytest.raises(ValueError, match="0 to 2"):
        concepts.tcav(net, "0", x, 3, {"c": x}, sets)
    with pytest.raises(ValueError, match="an int"):
        concepts.tcav(net, "0", x, torch.tensor([0, 1, 0, 1]), {"c": x}, sets)
