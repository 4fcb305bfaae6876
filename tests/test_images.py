"""Image loading edge cases and the exact inverse of the tensor conversion."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

import helpers
from helpers.checks import images as check_images
from helpers.images import SAMPLES


def _gradient_rgb(h=40, w=60):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 4, yy * 6, (xx + yy) * 2], axis=-1).astype(np.uint8)


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = _gradient_rgb()[..., 0]
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    img = np.asarray(helpers.load_image(tmp_path / "g.png"))
    assert img.shape == (40, 60, 3)
    assert (img[..., 0] == gray).all() and (img[..., 1] == gray).all() and (img[..., 2] == gray).all()


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :5, 3] = 255  # left half opaque red-ish, right half fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    img = np.asarray(helpers.load_image(tmp_path / "a.png"))
    assert (img[:, :5] == [200, 0, 0]).all()
    assert (img[:, 5:] == 255).all()


def test_palette_with_transparency(tmp_path):
    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    pal.putpixel((0, 0), 0)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png", transparency=0)
    img = np.asarray(helpers.load_image(tmp_path / "p.png"))
    assert img.shape == (8, 8, 3)
    assert tuple(img[0, 0]) == (255, 255, 255)  # the transparent index shows the white background
    assert tuple(img[3, 3]) == (10, 200, 30)


def test_16_bit_is_scaled_not_clipped(tmp_path):
    arr = np.linspace(0, 65535, 64 * 4).astype(np.uint16).reshape(4, 64)
    Image.fromarray(arr).save(tmp_path / "d.png")
    assert Image.open(tmp_path / "d.png").mode.startswith("I")
    img = np.asarray(helpers.load_image(tmp_path / "d.png"))[..., 0].astype(int)
    expected = np.round(arr / 65535 * 255).astype(int)
    assert np.abs(img - expected).max() <= 1
    assert img.max() == 255 and img.min() == 0
    # the same from an array
    assert np.abs(np.asarray(helpers.load_image(arr))[..., 0].astype(int) - expected).max() <= 1


def test_exif_rotation_is_applied(tmp_path):
    base = Image.fromarray(_gradient_rgb(40, 60))  # 60 wide, 40 high
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    base.save(tmp_path / "r.jpg", exif=exif, quality=95)
    img = helpers.load_image(tmp_path / "r.jpg")
    assert img.size == (40, 60)  # width and height swapped
    upright = np.asarray(base.transpose(Image.Transpose.ROTATE_270)).astype(int)
    assert np.abs(np.asarray(img).astype(int) - upright).mean() < 4  # JPEG noise only


def test_cmyk_and_float_arrays(tmp_path):
    Image.new("CMYK", (5, 5), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    r, g, b = np.asarray(helpers.load_image(tmp_path / "c.jpg"))[2, 2]
    assert r > 200 and g < 60 and b < 60
    assert np.asarray(helpers.load_image(np.full((4, 4, 3), 0.5))).max() == 128
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        helpers.load_image(np.full((4, 4, 3), 3.0))
    with pytest.raises(ValueError, match="shape"):
        helpers.load_image(np.zeros((4, 4, 2), np.uint8))


def test_missing_file_names_it():
    with pytest.raises(FileNotFoundError) as err:
        helpers.load_image("/no/such/photo.jpg")
    assert "/no/such/photo.jpg" in str(err.value) and "cat" in str(err.value)


@pytest.mark.parametrize("content", [b"this is not an image at all", "truncated"])
def test_corrupt_file_names_it(tmp_path, content):
    path = tmp_path / "broken.jpg"
    if content == "truncated":
        buf = io.BytesIO()
        Image.fromarray(_gradient_rgb(200, 200)).save(buf, "JPEG")
        content = buf.getvalue()[: len(buf.getvalue()) // 2]
    path.write_bytes(content)
    with pytest.raises(ValueError) as err:
        helpers.load_image(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("name", list(SAMPLES))
def test_every_sample_loads_offline(name, no_network):
    img = helpers.load_image(name)
    assert img.mode == "RGB" and min(img.size) >= 200


def test_preprocess_shape_range_and_centre_crop():
    x = helpers.load_batch(["cat", "grace_hopper"], 64)
    assert x.shape == (2, 3, 64, 64) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1
    # a left-to-right ramp keeps its centre column after the centre crop
    ramp = np.tile(np.arange(300, dtype=np.uint8)[None, :, None], (100, 1, 3))
    y = helpers.preprocess(ramp, 32)
    centre = y[0, 0, 16, 15:17].mean().item() * 255
    assert abs(centre - 150) < 3


def test_tensor_conversion_has_an_exact_inverse():
    photo = np.asarray(helpers.load_image("coffee"))
    x = helpers.preprocess(photo, None)
    assert x.shape == (1, 3, *photo.shape[:2])
    assert np.array_equal(helpers.to_numpy(x)[0], photo)


def test_mixed_sizes_without_a_size_is_explained():
    with pytest.raises(ValueError, match="size"):
        helpers.preprocess([np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)], None)


def test_check_images_explains_wrong_shapes():
    check_images(torch.zeros(1, 3, 4, 4))
    for bad in (torch.zeros(3, 4, 4), torch.zeros(1, 1, 4, 4), np.zeros((1, 3, 4, 4))):
        with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
            check_images(bad)
