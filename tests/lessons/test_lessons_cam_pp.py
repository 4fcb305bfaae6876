"""Grad-CAM++ on a layer with signed activations, on the real course model (EfficientNet-Lite0, `offline`
sizes). EfficientNet's `blocks.N` end in a linear projection, so a channel's activations can sum to a
negative number, where Grad-CAM++'s closed-form alpha (Chattopadhay et al., WACV 2018) assumes ReLU
outputs. Before `cam.grad_cam_pp` clamped that sum at 0, alpha exploded near 2 + g * sum(A) = 0 and turned
negative beyond, and on the rocket photo two of its ten most probable classes got an all-zero map at
`blocks.5` (classes ranked 9 and 10, offline).
"""
from __future__ import annotations

import torch

import helpers
from helpers import cam, settings

SIZE = settings.SETTINGS["offline"].image_size  # 224
LAYER = "blocks.5"


def test_grad_cam_pp_at_a_signed_layer_is_finite_and_not_empty_on_real_photos(model):
    x = helpers.load_batch(["cat", "rocket"], SIZE)
    with torch.no_grad():
        top = model(x).topk(10, dim=1).indices  # (2, 10)
    acts, _ = cam.layer_activations_and_gradients(model, x, top[:, 0], LAYER)
    assert (acts.sum(dim=(2, 3)) < 0).any(), "the premise: some channel sums of this layer are negative"
    for k in range(top.shape[1]):
        maps = cam.grad_cam_pp(model, x, top[:, k], layer=LAYER)
        assert torch.isfinite(maps).all(), f"NaN or inf in the maps of the classes ranked {k + 1}"
        assert (maps.flatten(1).amax(dim=1) > 0).all(), f"an all-zero map for the classes ranked {k + 1}"


def test_grad_cam_pp_alpha_stays_bounded_when_a_channel_sums_to_a_negative_number():
    """A one-layer toy with a known gradient: score = sum_c w_c * sum_ij A_cij, so g_cij = w_c. Channel 0
    has w = 1 and activations summing to -1.999, where the unguarded alpha is 1 / (2 - 1.999) = 1000;
    channel 1 is an ordinary positive channel. With the guard alpha is 1/2 on channel 0, so its weight is
    at most sum_ij ReLU(g) / 2 and the map is the explicit sum below."""
    a = torch.zeros(1, 2, 2, 2)
    a[0, 0] = torch.tensor([[1.0, -1.0], [0.5, -2.499]])  # sums to -1.999
    a[0, 1] = torch.tensor([[0.5, 0.25], [0.0, 0.25]])   # sums to 1

    class Toy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.feat = torch.nn.Identity()
            self.register_buffer("w", torch.tensor([1.0, 2.0]))
            self.register_buffer("a", a)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            feats = self.feat(self.a + 0.0 * x[:, :2])  # the fixed activations above, whatever the image
            s = (feats.sum(dim=(2, 3)) * self.w).sum(dim=1)  # (N,)
            return torch.stack([s, -s], dim=1)  # two "classes"

    toy = Toy()
    maps = cam.grad_cam_pp(toy, torch.full((1, 3, 2, 2), 0.5), 0, layer="feat")
    # explicit weights: channel 0, alpha = 1/2 at each of 4 positions, g = 1 -> 2; channel 1, alpha =
    # 1 / (2 + 2 * 1) = 1/4, g = 2 -> 4 * 1/4 * 2 = 2
    expected = (2.0 * a[0, 0] + 2.0 * a[0, 1]).clamp(min=0)
    assert torch.isfinite(maps).all()
    assert torch.allclose(maps[0], expected, atol=1e-5), (maps[0], expected)
