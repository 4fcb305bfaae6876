"""helpers.synthetic: the generated set's ground truth and shortcut, and a trained small CNN whose Grad-CAM
finds the object when there is no shortcut and the marker when there is a strong one."""
import pytest
import torch

from helpers import cam, metrics, synthetic
from helpers.train import accuracy, predict


def test_shapes_dtypes_ranges_and_determinism():
    d = synthetic.make_shapes(40, 32, seed=3, shortcut=0.5)
    assert d.images.shape == (40, 3, 32, 32) and d.images.dtype == torch.float32
    assert 0.0 <= d.images.min() and d.images.max() <= 1.0
    assert d.labels.shape == (40,) and d.labels.dtype == torch.long
    assert d.object_masks.shape == d.marker_masks.shape == (40, 32, 32)
    assert d.object_masks.dtype == d.marker_masks.dtype == torch.bool
    assert torch.equal(d.labels.bincount(), torch.full((4,), 10))  # balanced
    again = synthetic.make_shapes(40, 32, seed=3, shortcut=0.5)
    assert all(torch.equal(a, b) for a, b in zip(d, again))
    other = synthetic.make_shapes(40, 32, seed=4, shortcut=0.5)
    assert not torch.equal(d.images, other.images)


def test_objects_and_markers():
    size = 48
    d = synthetic.make_shapes(200, size, seed=0, shortcut=0.0)
    m = synthetic.marker_size(size)
    area = d.object_masks.float().mean(dim=(1, 2))
    assert area.min() > 0.02 and area.max() < 0.3  # every image has a visible object of sensible size
    assert not (d.object_masks & d.marker_masks).any()
    # markers are m x m squares in one of the four corners, black and white
    marked = d.has_marker
    assert torch.equal(d.marker_masks[marked].sum(dim=(1, 2)), torch.full((int(marked.sum()),), m * m))
    corners = torch.stack([d.marker_masks[:, 0, 0], d.marker_masks[:, 0, -1], d.marker_masks[:, -1, 0],
                           d.marker_masks[:, -1, -1]], dim=1)
    assert torch.equal(corners.sum(dim=1), marked.long())
    px = d.images.permute(0, 2, 3, 1)[d.marker_masks]  # (pixels, 3)
    assert set(px.unique().tolist()) == {0.0, 1.0}
    # the object differs in colour from the background around it
    inside = (d.images * d.object_masks[:, None]).sum(dim=(2, 3)) / d.object_masks.sum(dim=(1, 2))[:, None]
    ring = metrics.dilate(d.object_masks, 3) & ~d.object_masks & ~d.marker_masks
    outside = (d.images * ring[:, None]).sum(dim=(2, 3)) / ring.sum(dim=(1, 2))[:, None]
    assert (inside - outside).abs().amax(dim=1).median() > 0.15
    # no marker at all without a shortcut
    plain = synthetic.make_shapes(20, size, seed=0)
    assert not plain.marker_masks.any()


def test_same_seed_without_shortcut_gives_the_same_images_without_markers():
    marked = synthetic.make_shapes(60, 32, seed=5, shortcut=0.7)
    plain = synthetic.make_shapes(60, 32, seed=5, shortcut=None)
    assert torch.equal(marked.labels, plain.labels)
    changed = (marked.images != plain.images).any(dim=1)
    assert (changed <= marked.marker_masks).all() and changed.any()
    assert torch.equal(marked.object_masks | marked.marker_masks, plain.object_masks | marked.marker_masks)


@pytest.mark.parametrize("strength", [0.0, 0.6, 1.0])
def test_marker_probability_follows_the_shortcut_strength(strength):
    d = synthetic.make_shapes(4000, 16, seed=1, shortcut=strength, shortcut_class=2)
    on_target = d.has_marker[d.labels == 2].float().mean().item()
    elsewhere = d.has_marker[d.labels != 2].float().mean().item()
    assert abs(on_target - (1 + strength) / 2) < 0.04
    assert abs(elsewhere - (1 - strength) / 2) < 0.03


def test_bad_arguments():
    with pytest.raises(ValueError, match="shortcut"):
        synthetic.make_shapes(4, 32, shortcut=1.5)
    with pytest.raises(ValueError, match="shortcut_class"):
        synthetic.make_shapes(4, 32, shortcut=0.5, shortcut_class=7)
    with pytest.raises(ValueError, match="size"):
        synthetic.make_shapes(4, 8)


def test_small_cnn_shapes_and_grad_cam_layer():
    model = synthetic.SmallCNN(generator=torch.Generator().manual_seed(0)).eval()
    x = synthetic.make_shapes(3, 48, seed=0).images
    assert model(x).shape == (3, 4)
    maps = cam.grad_cam(model, x, 1)
    assert maps.shape == (3, 48, 48) and (maps >= 0).all()


def test_grad_cam_finds_the_object_without_shortcut_and_the_marker_with_one():
    """Train the small CNN twice (about a minute on a laptop CPU): on a shortcut-free set Grad-CAM's
    maximum falls on the object; with a strong shortcut most of its energy sits on the marker."""
    size, n_train, epochs = 48, 2000, 5
    tol = round(size * 15 / 224)  # Zhang et al.'s 15 px at 224 px, scaled

    free_model = synthetic.SmallCNN(generator=torch.Generator().manual_seed(0))
    train = synthetic.make_shapes(n_train, size, seed=10, shortcut=0.0)
    synthetic.train(free_model, train.images, train.labels, epochs)
    test = synthetic.make_shapes(400, size, seed=11, shortcut=0.0)
    assert accuracy(predict(free_model, test.images), test.labels) > 0.7
    maps = cam.grad_cam(free_model, test.images, test.labels)
    hits = metrics.pointing_game(maps, test.object_masks, tolerance=tol)
    assert hits.mean() > 0.8, f"pointing game {hits.mean():.2f}"

    shortcut_model = synthetic.SmallCNN(generator=torch.Generator().manual_seed(0))
    train = synthetic.make_shapes(n_train, size, seed=10, shortcut=1.0)
    synthetic.train(shortcut_model, train.images, train.labels, epochs)
    test = synthetic.make_shapes(400, size, seed=11, shortcut=1.0)
    marked = test.subset(test.has_marker)
    maps = cam.grad_cam(shortcut_model, marked.images, marked.labels)
    share = metrics.energy_in_mask(maps, marked.marker_masks)
    assert share.mean() > 0.5, f"marker share {share.mean():.2f}"
    # the model really relies on the marker: on shortcut-free data it calls marked shapes circles
    free_test = synthetic.make_shapes(400, size, seed=11, shortcut=0.0)
    assert accuracy(predict(shortcut_model, free_test.images), free_test.labels) < 0.7
