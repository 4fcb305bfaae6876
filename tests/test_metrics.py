"""helpers.metrics: known answers for localization, faithfulness and the randomization scores, checked
against explicit loops, scipy and scikit-image."""
import numpy as np
import pytest
import torch
from torch import nn

from helpers import filters, imputation, metrics


def _box_masks(n=3, h=20, w=24):
    masks = torch.zeros(n, h, w, dtype=torch.bool)
    masks[0, 2:8, 3:10] = True
    masks[1, 10:18, 12:20] = True
    masks[2, 0:5, 0:24] = True
    return masks


# ---------------------------------------------------------------------------------- localization

def test_mask_as_map_scores_one_and_inverted_map_scores_zero():
    masks = _box_masks()
    m = masks.float()
    assert torch.allclose(metrics.energy_in_mask(m, masks), torch.ones(3))
    assert torch.equal(metrics.pointing_game(m, masks), torch.ones(3))
    inv = 1.0 - m
    assert torch.allclose(metrics.energy_in_mask(inv, masks), torch.zeros(3))
    assert torch.equal(metrics.pointing_game(inv, masks), torch.zeros(3))


def test_uniform_and_zero_maps_score_the_area_share():
    masks = _box_masks()
    area = masks.float().mean(dim=(1, 2))
    assert torch.allclose(metrics.energy_in_mask(torch.full(masks.shape, 0.3), masks), area)
    assert torch.allclose(metrics.energy_in_mask(torch.zeros(masks.shape), masks), area)
    # a constant map's maximum is everywhere: the pointing game gives the share of pixels that hit
    assert torch.allclose(metrics.pointing_game(torch.ones(masks.shape), masks), area)


def test_energy_matches_an_explicit_loop_and_rejects_negative_maps():
    g = torch.Generator().manual_seed(1)
    maps = torch.rand(3, 20, 24, generator=g)
    masks = _box_masks()
    expected = [float(maps[i][masks[i]].sum() / maps[i].sum()) for i in range(3)]
    assert np.allclose(metrics.energy_in_mask(maps, masks).numpy(), expected, atol=1e-6)
    with pytest.raises(ValueError, match="non-negative"):
        metrics.energy_in_mask(maps - 0.5, masks)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        metrics.energy_in_mask(maps[0], masks)


def test_pointing_game_tolerance_counts_near_misses():
    masks = torch.zeros(2, 16, 16, dtype=torch.bool)
    masks[:, 4:8, 4:8] = True
    maps = torch.zeros(2, 16, 16)
    maps[0, 5, 10] = 1.0  # 3 px right of the mask's edge (column 7)
    maps[1, 12, 12] = 1.0  # sqrt(25 + 25) ~ 7 px from the corner (7, 7)
    assert torch.equal(metrics.pointing_game(maps, masks, tolerance=0), torch.zeros(2))
    assert torch.equal(metrics.pointing_game(maps, masks, tolerance=3), torch.tensor([1.0, 0.0]))
    assert torch.equal(metrics.pointing_game(maps, masks, tolerance=8), torch.tensor([1.0, 1.0]))
    # a shared (H, W) mask works too
    assert torch.equal(metrics.pointing_game(maps, masks[0], tolerance=3), torch.tensor([1.0, 0.0]))


def test_centre_baseline_is_a_centred_gaussian():
    c = metrics.centre_baseline(2, 21, 31, sigma=0.2)
    assert c.shape == (2, 21, 31)
    assert c[0, 10, 15] == 1.0 and torch.equal(c[0], c[1])
    assert torch.allclose(c[0], c[0].flip(0)) and torch.allclose(c[0], c[0].flip(1))
    # one sigma (0.2 * 31 = 6.2 px) right of the centre the map is exp(-1/2)
    x = metrics.centre_baseline(1, 11, 100, sigma=0.1)
    assert torch.isclose(x[0, 5, 49] , torch.exp(torch.tensor(-0.5 * (0.5 / 10) ** 2)), atol=1e-6)
    masks = torch.zeros(1, 21, 31, dtype=torch.bool)
    masks[0, 7:14, 11:20] = True
    centred = metrics.energy_in_mask(c[:1], masks)
    assert centred > masks.float().mean() and metrics.pointing_game(c[:1], masks) == 1.0


# ---------------------------------------------------------------------------------- faithfulness

class RegionModel(nn.Module):
    """A hand-built classifier that only looks at a fixed region: logit 0 is 8 x the mean of the region
    (all channels), logit 1 is 0. Its class-0 probability depends on those pixels and no others."""

    def __init__(self, region: torch.Tensor):
        super().__init__()
        self.register_buffer("region", region.float())
        self.calls = []

    def forward(self, x):
        self.calls.append(x.shape[0])
        m = (x * self.region).sum(dim=(1, 2, 3)) / (3 * self.region.sum())
        return torch.stack([8 * m, torch.zeros_like(m)], dim=1)


def test_deletion_of_truly_used_pixels_beats_a_random_map():
    g = torch.Generator().manual_seed(0)
    h = w = 16
    region = torch.zeros(h, w)
    region[3:9, 5:12] = 1
    model = RegionModel(region)
    x = 0.5 + 0.5 * torch.rand(4, 3, h, w, generator=g)
    true_map = region.expand(4, h, w) + 0.01 * torch.rand(4, h, w, generator=g)
    random_map = torch.rand(4, h, w, generator=g)
    steps = 16
    d_true = metrics.deletion_curve(model, x, true_map, target=0, steps=steps, batch_size=10)
    d_rand = metrics.deletion_curve(model, x, random_map, target=0, steps=steps, batch_size=10)
    assert d_true.shape == (4, steps + 1)
    assert max(model.calls) <= 10 and sum(model.calls) == 2 * 4 * (steps + 1)  # batched, every step once
    assert torch.all(metrics.auc(d_true) < metrics.auc(d_rand) - 0.05)
    # after the region (42 of 256 pixels, 3 of 16 steps) is deleted the model sees only zeros: p = 1/2
    assert torch.allclose(d_true[:, 3:], torch.full((4, steps - 2), 0.5), atol=1e-6)
    # both curves start at the clean image's probability and end at the all-baseline one
    clean = model(x).softmax(1)[:, 0]
    assert torch.allclose(d_true[:, 0], clean) and torch.allclose(d_rand[:, 0], clean)
    assert torch.allclose(d_rand[:, -1], torch.full((4,), 0.5))
    # insertion: a bright region on a dark image; blurring dims the region, re-inserting it first restores it
    x2 = region.expand(4, 3, h, w) * (0.5 + 0.5 * torch.rand(4, 3, h, w, generator=g))
    i_true = metrics.insertion_curve(model, x2, true_map, target=0, steps=steps, blur_sigma=4.0,
                                      score="logit")
    i_rand = metrics.insertion_curve(model, x2, random_map, target=0, steps=steps, blur_sigma=4.0,
                                      score="logit")
    assert torch.all(metrics.auc(i_true) > metrics.auc(i_rand) + 0.5)
    assert torch.allclose(i_true[:, -1], model(x2)[:, 0])
    assert torch.allclose(i_true[:, 3:], i_true[:, -1:].expand(4, steps - 2), atol=1e-6)


def test_replacement_curve_matches_a_loop_over_steps():
    g = torch.Generator().manual_seed(3)
    n, h, w, steps = 2, 6, 5, 4
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * h * w, 3))
    torch.nn.init.normal_(model[1].weight, generator=g)
    x = torch.rand(n, 3, h, w, generator=g)
    maps = torch.rand(n, h, w, generator=g)
    got = metrics.deletion_curve(model, x, maps, target=torch.tensor([2, 1]), steps=steps, baseline=0.25,
                                 batch_size=3, score="logit")
    for i, t in enumerate([2, 1]):
        order = torch.argsort(maps[i].flatten(), descending=True)
        for s in range(steps + 1):
            k = round(s * h * w / steps)
            img = x[i].clone().view(3, -1)
            img[:, order[:k]] = 0.25
            expected = model(img.view(1, 3, h, w))[0, t]
            assert torch.isclose(got[i, s], expected, atol=1e-5), (i, s)


def test_auc_and_blur():
    curves = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.5, 1.0]])
    assert torch.allclose(metrics.auc(curves), torch.tensor([1.0, 0.25, 0.5]))
    x = torch.rand(2, 3, 12, 12)
    b = filters.gaussian_blur(x, 2.0)
    assert b.shape == x.shape and torch.allclose(b.mean(), x.mean(), atol=0.02) and b.std() < x.std()
    assert torch.allclose(filters.gaussian_blur(torch.full((1, 3, 9, 9), 0.7), 5.0), torch.full((1, 3, 9, 9), 0.7))


def test_curve_input_errors():
    model = RegionModel(torch.ones(8, 8))
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="Upsample"):
        metrics.deletion_curve(model, x, torch.rand(2, 4, 4), target=0)
    with pytest.raises(ValueError, match="target"):
        metrics.deletion_curve(model, x, torch.rand(2, 8, 8), target=torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match="score"):
        metrics.deletion_curve(model, x, torch.rand(2, 8, 8), target=0, score="prob")


# ------------------------------------------------------------------------------ randomization check

def test_randomization_score_of_a_map_against_itself_is_one():
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(3, 24, 24, generator=g)
    scores = metrics.randomization_scores(maps, maps)
    for name, s in scores.items():
        assert torch.allclose(s, torch.ones(3), atol=1e-6), name
    other = torch.randn(3, 24, 24, generator=g)
    low = metrics.randomization_scores(maps, other)
    assert torch.all(low["spearman"].abs() < 0.2) and torch.all(low["ssim"] < 0.3)
    # a sign flip: rank correlation -1, but the same ranks of absolute values
    assert torch.allclose(metrics.spearman(maps, -maps), -torch.ones(3), atol=1e-6)
    assert torch.allclose(metrics.spearman(maps, -maps, absolute=True), torch.ones(3), atol=1e-6)
    # constant maps: 1 against themselves, 0 against anything else
    const = torch.zeros(1, 24, 24)
    assert metrics.spearman(const, const) == 1.0 and metrics.spearman(const, maps[:1]) == 0.0


def test_spearman_matches_scipy_with_ties():
    from scipy.stats import spearmanr

    g = torch.Generator().manual_seed(5)
    a = torch.randint(0, 6, (3, 10, 10), generator=g).float()  # many ties
    b = a + torch.randint(0, 4, (3, 10, 10), generator=g).float()
    got = metrics.spearman(a, b)
    for i in range(3):
        assert np.isclose(got[i].item(), spearmanr(a[i].flatten(), b[i].flatten())[0], atol=1e-6)
    got_abs = metrics.spearman(a - 2.5, b - 3, absolute=True)
    for i in range(3):
        ref = spearmanr((a[i] - 2.5).abs().flatten(), (b[i] - 3).abs().flatten())[0]
        assert np.isclose(got_abs[i].item(), ref, atol=1e-6)


def test_ssim_matches_skimage():
    from skimage.metrics import structural_similarity

    g = torch.Generator().manual_seed(2)
    a = torch.rand(2, 30, 26, generator=g)
    b = (a + 0.3 * torch.rand(2, 30, 26, generator=g)).clamp(0, 1)
    got = metrics.ssim(a, b, normalize=False)
    for i in range(2):
        ref = structural_similarity(a[i].double().numpy(), b[i].double().numpy(), gaussian_weights=True,
                                    sigma=1.5, use_sample_covariance=False, data_range=1.0)
        assert np.isclose(got[i].item(), ref, atol=1e-5)
    # normalization makes the score blind to scale and offset
    assert torch.allclose(metrics.ssim(a, 3 * a + 1), torch.ones(2), atol=1e-6)
    with pytest.raises(ValueError, match="window"):
        metrics.ssim(torch.rand(1, 8, 8), torch.rand(1, 8, 8))


# ------------------------------------------------------------------------------ imputation (ROAD)

def _road_system_solution(img: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """ROAD's linear system solved exactly with scipy: every removed pixel equals the weighted mean of its
    neighbours inside the image (1/6 direct, 1/12 diagonal), kept pixels are fixed."""
    from scipy.sparse import lil_matrix
    from scipy.sparse.linalg import spsolve

    c, h, w = img.shape
    missing = np.argwhere(removed)
    index = -np.ones((h, w), dtype=int)
    index[removed] = np.arange(len(missing))
    a = lil_matrix((len(missing), len(missing)))
    b = np.zeros((len(missing), c))
    for k, (y, x) in enumerate(missing):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                yy, xx = y + dy, x + dx
                if (dy, dx) == (0, 0) or not (0 <= yy < h and 0 <= xx < w):
                    continue
                weight = 1 / 6 if 0 in (dy, dx) else 1 / 12
                a[k, k] += weight
                if removed[yy, xx]:
                    a[k, index[yy, xx]] -= weight
                else:
                    b[k] += weight * img[:, yy, xx]
    out = img.copy()
    out[:, removed] = spsolve(a.tocsc(), b).T
    return out


def test_linear_imputation_solves_roads_linear_system():
    g = torch.Generator().manual_seed(0)
    x = filters.gaussian_blur(torch.rand(3, 3, 28, 30, generator=g), 1.5)
    removed = torch.rand(3, 28, 30, generator=g) < 0.5  # scattered holes
    removed[1] = False
    removed[1, 4:22, 6:27] = True  # one large hole
    removed[2, :10, :12] = True  # a hole in a corner, touching two borders
    got = imputation.linear_imputation(x, removed, iterations=1000)
    for i in range(3):
        expected = _road_system_solution(x[i].double().numpy(), removed[i].numpy())
        assert np.allclose(got[i].numpy(), expected, atol=2e-5), i
    # the default few sweeps are already close (the coarse-to-fine start does most of the work)
    quick = imputation.linear_imputation(x, removed)
    assert (quick - got).abs().max() < 0.03 and (quick - got).abs().mean() < 2e-3
    # kept pixels are returned exactly
    keep = ~removed[:, None].expand_as(x)
    assert torch.equal(got[keep], x[keep]) and torch.equal(quick[keep], x[keep])


def test_linear_imputation_keeps_a_linear_ramp_and_fills_empty_images_with_grey():
    yy, xx = torch.meshgrid(torch.linspace(0.1, 0.9, 24), torch.linspace(0.2, 0.7, 24), indexing="ij")
    ramp = torch.stack([yy, xx, 0.5 * (yy + xx)])[None]  # (1, 3, 24, 24); linear, so its own neighbours' mean
    removed = torch.zeros(1, 24, 24, dtype=torch.bool)
    removed[0, 3:20, 5:21] = True  # interior: the ramp is the solution
    assert torch.allclose(imputation.linear_imputation(ramp, removed, iterations=200), ramp, atol=1e-4)
    everything = torch.ones(1, 24, 24, dtype=torch.bool)
    assert torch.allclose(imputation.linear_imputation(ramp, everything), torch.full_like(ramp, 0.5))


def test_linear_imputation_noise_is_local_and_only_in_the_holes():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 16, 16, generator=g)
    removed = torch.rand(2, 16, 16, generator=g) < 0.3
    state = torch.random.get_rng_state()
    a = imputation.linear_imputation(x, removed, noise=0.05, generator=torch.Generator().manual_seed(7))
    b = imputation.linear_imputation(x, removed, noise=0.05, generator=torch.Generator().manual_seed(7))
    plain = imputation.linear_imputation(x, removed)
    assert torch.equal(torch.random.get_rng_state(), state), "the global RNG must not be used"
    assert torch.equal(a, b)
    keep = ~removed[:, None].expand_as(x)
    assert torch.equal(a[keep], x[keep])
    diff = (a - plain)[~keep]
    assert 0.02 < diff.std() < 0.08  # about the noise's standard deviation (less where clamped)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        imputation.linear_imputation(x, removed[0])
    with pytest.raises(ValueError, match=">= 0"):
        imputation.linear_imputation(x, removed, noise=-1.0)


def test_imputed_deletion_curve_repairs_scattered_holes_but_not_a_removed_region():
    h = w = 24
    region = torch.zeros(h, w)
    region[4:12, 6:16] = 1
    model = RegionModel(region)
    g = torch.Generator().manual_seed(2)
    # a smooth image, bright in the region: the model's class-0 logit is 8 x the region's mean
    x = filters.gaussian_blur(torch.rand(3, 3, h, w, generator=g), 2.0) * 0.5 + 0.5 * region
    true_map = region.expand(3, h, w) + 0.01 * torch.rand(3, h, w, generator=g)
    random_map = torch.rand(3, h, w, generator=g)
    steps = 12
    road_true = metrics.imputed_deletion_curve(model, x, true_map, 0, steps=steps, noise=0.0, batch_size=7,
                                                 score="logit")
    model.calls.clear()
    road_rand = metrics.imputed_deletion_curve(model, x, random_map, 0, steps=steps, noise=0.0, batch_size=7,
                                                 score="logit")
    assert road_rand.shape == (3, steps + 1)
    assert max(model.calls) <= 7 and sum(model.calls) == 3 * (steps + 1)
    clean = model(x)[:, 0]  # logits (probabilities saturate near 1 here)
    assert torch.allclose(road_true[:, 0], clean) and torch.allclose(road_rand[:, 0], clean)
    # scattered holes are filled from their neighbours: with half the pixels removed the score has moved a
    # quarter as much as with the same random order to black (which loses half of it)
    black_rand = metrics.deletion_curve(model, x, random_map, 0, steps=steps, score="logit")
    black_drop, road_drop = clean - black_rand[:, steps // 2], (clean - road_rand[:, steps // 2]).abs()
    assert torch.all(black_drop > 2.0) and torch.all(road_drop < 0.25 * black_drop)
    # removing the region the model reads (its pixels ranked first) is not repaired: the true map wins
    assert torch.all(metrics.auc(road_true) < metrics.auc(road_rand) - 1.0)
    with pytest.raises(ValueError, match="Upsample"):
        metrics.imputed_deletion_curve(model, x, torch.rand(3, 12, 12), 0)
