"""The explorer's display scaling (percentile clipping, colour bars, the widget's static figure)."""
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers.explorer.view import clip_map, colorbar_html  # noqa: E402
from helpers.viz import overlay  # noqa: E402


def test_clip_unsigned_caps_the_top_percentile():
    m = np.zeros((10, 10))
    m[0, 0] = 100.0  # one extreme pixel
    m[1:, :] = np.linspace(0, 1, 90).reshape(9, 10)
    c = clip_map(m, 99.0)
    assert c.max() == pytest.approx(np.percentile(m, 99.0)) and c.max() < 100.0
    assert c.min() == m.min() and np.array_equal(c[m < c.max()], m[m < c.max()])
    # drawn: the extreme pixel no longer takes the whole range, so the rest is not black
    assert overlay(np.zeros((10, 10, 3)), c, 1.0).mean() > overlay(np.zeros((10, 10, 3)), m, 1.0).mean()


def test_clip_signed_keeps_zero_and_symmetry():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(20, 20))
    m[3, 3] = -50.0
    c = clip_map(m, 99.0, signed=True)
    q = np.percentile(np.abs(m), 99.0)
    assert np.abs(c).max() == pytest.approx(q) and c[3, 3] == pytest.approx(-q)
    assert np.array_equal(np.sign(c), np.sign(m))


@pytest.mark.parametrize("m", [np.zeros((5, 5)), np.full((5, 5), 2.0), np.eye(5) * 0.0])
def test_clip_degenerate_maps_unchanged(m):
    np.testing.assert_array_equal(clip_map(m, 99.0), m)
    np.testing.assert_array_equal(clip_map(m, 99.0, signed=True), m)


def test_clip_none_and_sparse_map_unchanged():
    m = np.zeros((40, 40))
    m[0, 0] = 1.0  # over 99% zeros: the percentile is 0, clipping would erase the map
    np.testing.assert_array_equal(clip_map(m, 99.0), m)
    np.testing.assert_array_equal(clip_map(np.arange(4.0).reshape(2, 2), None), np.arange(4.0).reshape(2, 2))


def test_colorbar_note():
    assert "99th" in colorbar_html(True, "clipped at the 99th percentile")
    assert colorbar_html(False).count("(") == colorbar_html(False, "").count("(")


def test_explorer_display_map_and_figures():
    from helpers.explorer.state import Explorer

    ex = Explorer(photo="cat", size=64, method="saliency", device="cpu")
    raw = ex.current_map()
    shown = ex.display_map()
    assert shown.shape == raw.shape and shown.max() <= raw.max() and shown.min() == raw.min()
    np.testing.assert_allclose(ex.figure_data(), overlay(ex.photo_array(), shown, ex.opacity))
    ex.clip_percentile = None
    np.testing.assert_allclose(ex.figure_data(), overlay(ex.photo_array(), raw, ex.opacity))
    ex.clip_percentile = 99.0
    fig = ex.widget_figure()
    assert sum(bool(ax.get_images()) for ax in fig.axes) == 2  # the photo and the overlay
    assert sum(len(ax.child_axes) for ax in fig.axes) == 1  # the colour bar, inset under the overlay
    ex.set_method("Integrated Gradients")
    fig = ex.show()
    assert sum(len(ax.child_axes) for ax in fig.axes) == 1  # the signed map's colour bar
