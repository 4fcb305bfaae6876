"""Case-study data (helpers.data.oxford_pets, celeba, faceparts, datasets, lookalike): the parsers on look-alikes
in the official formats, downloads with MD5 and with Google Drive's "quota exceeded" page, and the landmark localization scores."""
import hashlib
import io
import tarfile
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.data import celeba, datasets, faceparts, lookalike, oxford_pets
from helpers.data.download import DownloadError, download
from helpers.metrics import energy_in_mask, pointing_game


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    root = tmp_path_factory.mktemp("fakes")
    return lookalike.make_fake_pets(root, 30), lookalike.make_fake_celeba(root, 25)


# ------------------------------------------------------------------------------------------- Pets

def test_pets_lookalike_parses_with_official_meaning(fakes):
    base = fakes[0]
    lines = [ln.split() for ln in (base / "annotations" / "list.txt").read_text().splitlines() if not ln.startswith("#")]
    assert len(lines) == 30
    # Pets' own convention, independent of the parser: cat breeds are capitalized, dog breeds are not.
    species = oxford_pets.read_pet_list(base)
    assert all(species[name] == (1 if name[0].isupper() else 2) for name, *_ in lines)
    assert len(oxford_pets.read_pet_split(base, "trainval")) == 18 and len(oxford_pets.read_pet_split(base, "test")) == 12
    splits = oxford_pets.pets_splits(base, 48, n_train=10, n_val=5, n_test=7, seed=3)
    assert {k: len(v) for k, v in splits.items()} == {"train": 10, "val": 5, "test": 7}
    assert not set(splits["train"].names) & set(splits["val"].names)
    assert set(splits["test"].names) <= set(oxford_pets.read_pet_split(base, "test"))
    for ds in splits.values():
        assert ds.labels.tolist() == [0 if n[0].isupper() else 1 for n in ds.names]
    x, y = splits["train"][0]
    assert x.shape == (3, 48, 48) and 0 <= x.min() and x.max() <= 1 and y.dtype == torch.long
    again = oxford_pets.pets_splits(base, 48, n_train=10, n_val=5, n_test=7, seed=3)
    assert again["train"].names == splits["train"].names  # deterministic subsets


def test_trimaps_and_pet_masks(fakes):
    base = fakes[0]
    name = oxford_pets.read_pet_split(base, "test")[0]
    tri = oxford_pets.read_trimap(base / "annotations" / "trimaps" / f"{name}.png")
    assert set(np.unique(tri).tolist()) == {1, 2, 3}
    with Image.open(base / "images" / f"{name}.jpg") as img:
        assert img.size == tri.shape[::-1]
        rgb = np.asarray(img.convert("RGB"), dtype=float)
    # the pet (1) differs in colour from the background (2): the trimap really outlines the blob
    assert np.abs(rgb[tri == 1].mean(0) - rgb[tri == 2].mean(0)).max() > 40
    ds = oxford_pets.PetsDataset(base, [name], [1], 40)
    masks = ds.pet_masks()
    assert masks.shape == (1, 40, 40) and masks.dtype == torch.bool and 0.02 < masks.float().mean() < 0.6
    bad = base.parent / "bad_trimap.png"
    Image.fromarray(np.full((4, 4), 7, np.uint8)).save(bad)
    with pytest.raises(ValueError, match="1, 2 and 3"):
        oxford_pets.read_trimap(bad)


def test_lookalikes_are_deterministic(tmp_path):
    a, b = lookalike.make_fake_pets(tmp_path / "a", 6), lookalike.make_fake_pets(tmp_path / "b", 6)
    for rel in ("annotations/list.txt", "images/Abyssinian_1.jpg", "annotations/trimaps/beagle_2.png"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    c, d = lookalike.make_fake_celeba(tmp_path / "a", 6), lookalike.make_fake_celeba(tmp_path / "b", 6)
    for rel in ("list_attr_celeba.txt", "img_align_celeba/000003.jpg"):
        assert (c / rel).read_bytes() == (d / rel).read_bytes()


def test_lookalikes_leave_the_global_generators_alone(tmp_path):
    torch.manual_seed(5)
    np.random.seed(5)
    expected_torch, expected_np = torch.rand(3), np.random.rand(3)
    torch.manual_seed(5)
    np.random.seed(5)
    lookalike.make_fake_pets(tmp_path, 6)
    lookalike.make_fake_celeba(tmp_path, 6)
    lookalike.concept_faces(2, 32, seed=1, Smiling=True)
    assert torch.equal(torch.rand(3), expected_torch) and np.array_equal(np.random.rand(3), expected_np)


@pytest.fixture(scope="module")
def many_pets(tmp_path_factory):
    base = lookalike.make_fake_pets(tmp_path_factory.mktemp("many_pets"), 300)
    return oxford_pets.pets_splits(base, 64, n_train=160, n_val=0, n_test=120)


def test_pets_lookalike_offers_no_centre_and_no_colour_shortcut(many_pets):
    """The label is in the ears' shape: the image centre lies on the pet well below always, and a classifier of
    the mean colour is at the 'always dog' rate."""
    from sklearn.linear_model import LogisticRegression

    test = many_pets["test"]
    masks = test.pet_masks()
    assert float(masks[:, 32, 32].float().mean()) < 0.6 and float(masks.float().mean()) < 0.25
    mean_rgb = lambda ds: ds.images().mean(dim=(2, 3)).numpy()  # noqa: E731
    clf = LogisticRegression().fit(mean_rgb(many_pets["train"]), many_pets["train"].labels.numpy())
    accuracy = float((clf.predict(mean_rgb(test)) == test.labels.numpy()).mean())
    always_dog = float(test.labels.float().mean())
    assert abs(accuracy - always_dog) < 0.08, (accuracy, always_dog)
    # pets are placed all over the image: their centres spread over most of it
    ys, xs = zip(*[np.argwhere(m.numpy()).mean(0) for m in masks])
    assert np.ptp(xs) > 32 and np.ptp(ys) > 24


def test_pet_twins_differ_only_at_the_ears():
    for species in (1, 2):
        pet = lookalike.draw_pet(np.random.default_rng(7), species, 120, 140)
        diff = np.abs(pet["image"].astype(int) - pet["twin"].astype(int)).sum(-1) > 0
        assert diff.any() and not (diff & ~pet["ears"]).any() and pet["ears"].sum() > 20
        assert not (pet["ears"] & ~pet["pet"]).any()
    # the generator is used the same way for both species: only the ears' shape differs
    cat, dog = (lookalike.draw_pet(np.random.default_rng(7), s, 120, 140) for s in (1, 2))
    assert np.array_equal(cat["twin"], dog["twin"])


def test_pet_twins_on_disk_are_read_like_the_images(many_pets):
    test = many_pets["test"]
    x, tw, ears = test.images(range(20)), lookalike.pet_twins(test, range(20)), lookalike.pet_feature_masks(test, range(20))
    assert tw.shape == x.shape and ears.shape == (20, 64, 64) and ears.any(dim=(1, 2)).all()
    d = (x - tw).abs().sum(1)
    from helpers.metrics import dilate
    assert float((d * dilate(ears, 4)).sum() / d.sum()) > 0.9  # the rest: JPEG noise near the ears
    with pytest.raises(FileNotFoundError, match="test split"):
        lookalike.pet_twins(many_pets["train"], [0])


def test_face_twins_remove_one_drawing_and_keep_the_rest(tmp_path):
    base = lookalike.make_fake_celeba(tmp_path, 100)
    faces = celeba.celeba_splits(base, 64, ["Smiling", "Eyeglasses"], None, None, None)["test"]
    names, files, drawn = lookalike.read_lookalike_drawn(base)
    shown = drawn[[files.index(f) for f in faces.files]]
    for a in ("Smiling", "Eyeglasses", "Bushy_Eyebrows"):
        k = names.index(a)
        on, off = torch.nonzero(shown[:, k]).flatten().tolist(), torch.nonzero(~shown[:, k]).flatten().tolist()
        assert on and off
        assert torch.equal(lookalike.face_twins(faces, off[:3], a), faces.images(off[:3]))  # nothing to remove
        assert (lookalike.face_twins(faces, on[:3], a) - faces.images(on[:3])).abs().amax(dim=(1, 2, 3)).min() > 0.2
    with pytest.raises(ValueError, match="drawn nowhere"):
        lookalike.face_twins(faces, [0], "Pointy_Nose")


def test_concept_faces_show_the_forced_drawing_and_are_deterministic():
    a = lookalike.concept_faces(3, 48, seed=2, Smiling=True)
    assert a.shape == (3, 3, 48, 48) and torch.equal(a, lookalike.concept_faces(3, 48, seed=2, Smiling=True))
    assert not torch.equal(a, lookalike.concept_faces(3, 48, seed=2, Smiling=False))
    with pytest.raises(ValueError, match="drawn attributes"):
        lookalike.concept_faces(1, 48, seed=0, Mouth_Slightly_Open=True)


# ------------------------------------------------------------------------------------------ CelebA

def test_celeba_lists_parse(fakes):
    base = fakes[1]
    names, files, attrs = celeba.read_celeba_attributes(base)
    assert tuple(names) == celeba.CELEBA_ATTRIBUTES and len(names) == 40
    assert files[:2] == ["000001.jpg", "000002.jpg"] and attrs.shape == (25, 40) and attrs.dtype == torch.bool
    row = (base / "list_attr_celeba.txt").read_text().splitlines()[2 + 4].split()  # the fifth image, by hand
    assert attrs[4].tolist() == [v == "1" for v in row[1:]]
    lm_files, lm = celeba.read_celeba_landmarks(base)
    raw = [int(v) for v in (base / "list_landmarks_align_celeba.txt").read_text().splitlines()[2 + 7].split()[1:]]
    assert lm_files == files and lm.shape == (25, 5, 2)
    assert lm[7].flatten().tolist() == raw  # x, y pairs in the order lefteye ... rightmouth
    part = celeba.read_celeba_partition(base)
    assert [sum(v == k for v in part.values()) for k in (0, 1, 2)] == [15, 5, 5]


def test_celeba_parser_rejects_a_truncated_file(tmp_path):
    header = " ".join(celeba.CELEBA_ATTRIBUTES)
    (tmp_path / "list_attr_celeba.txt").write_text(f"3\n{header}\n000001.jpg" + " -1" * 40 + "\n")
    with pytest.raises(ValueError, match="truncated"):
        celeba.read_celeba_attributes(tmp_path)


def test_celeba_splits_and_landmarks_follow_the_crop(fakes):
    base = fakes[1]
    splits = celeba.celeba_splits(base, 178, ["Eyeglasses", "Smiling"], n_train=10, n_val=None, n_test=3)
    assert {k: len(v) for k, v in splits.items()} == {"train": 10, "val": 5, "test": 3}
    ds = splits["train"]
    x, y = ds[0]
    assert x.shape == (3, 178, 178) and y.shape == (2,)
    _, files, attrs = celeba.read_celeba_attributes(base)
    i = files.index(ds.files[0])
    assert y.tolist() == [float(attrs[i, 15]), float(attrs[i, 31])]  # Eyeglasses, Smiling columns
    # The look-alike paints a dark pupil at each eye landmark: after the 20-row crop it is still there.
    for e in range(2):
        px, py = ds.landmarks[0, e].round().long().tolist()
        assert x[:, py, px].max() < 0.3, "the eye landmark does not land on the painted pupil"
    small = celeba.celeba_splits(base, 89, ["Smiling"], n_train=10, n_val=0, n_test=0)["train"]
    assert torch.allclose(small.landmarks, ds.landmarks / 2)
    with pytest.raises(ValueError, match="unknown CelebA attributes"):
        celeba.celeba_splits(base, 32, ["Glasses"], 2, 0, 0)


def test_landmark_mask_and_localization_scores_on_hand_made_maps():
    lm = torch.tensor([[[20.0, 30.0], [44.0, 30.0], [32.0, 40.0], [22.0, 50.0], [42.0, 50.0]]])
    eyes = faceparts.landmark_mask(lm, faceparts.EYES, 64, radius=5)
    mouth = faceparts.landmark_mask(lm, faceparts.ATTRIBUTE_PARTS["Smiling"], 64, radius=5)
    assert eyes.shape == (1, 64, 64) and not (eyes & mouth).any()
    assert eyes.sum().item() == 2 * 81  # lattice points in a disc of radius 5: 81, two eyes
    assert bool(eyes[0, 30, 20]) and bool(eyes[0, 30, 44]) and not bool(eyes[0, 30, 32])
    assert faceparts.interocular(lm).tolist() == [24.0]
    on_eyes = torch.zeros(1, 64, 64)
    on_eyes[0, 28:33, 18:23] = 1.0  # a blob on the left eye
    assert energy_in_mask(on_eyes, eyes).item() == pytest.approx(1.0)
    assert energy_in_mask(on_eyes, mouth).item() == pytest.approx(0.0)
    uniform = torch.ones(1, 64, 64)
    assert energy_in_mask(uniform, mouth).item() == pytest.approx(2 * 81 / 64 ** 2)
    half = on_eyes.clone()
    half[0, 48:53, 20:25] = 1.0  # as much on the mouth
    assert energy_in_mask(half, eyes).item() == pytest.approx(0.5)
    peak = torch.zeros(1, 64, 64)
    peak[0, 50, 42] = 1.0  # the right mouth corner
    assert pointing_game(peak, mouth).item() == 1.0 and pointing_game(peak, eyes).item() == 0.0
    with pytest.raises(ValueError, match="parts"):
        faceparts.landmark_mask(lm, ("chin",), 64, 5)


# --------------------------------------------------------------------------------------- downloads

@pytest.fixture
def server(http_server):
    return http_server


def _base_url(server):
    return f"http://127.0.0.1:{server.server_address[1]}"


QUOTA_PAGE = (b"<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body>Too many "
              b"users have viewed or downloaded this file recently.</body></html>")


def test_download_checks_md5(server, tmp_path):
    server.files["/f"] = b"some bytes" * 1000
    good = hashlib.md5(server.files["/f"]).hexdigest()
    assert download(_base_url(server) + "/f", tmp_path / "f.bin", md5=good, progress=False).is_file()
    with pytest.raises(DownloadError, match="MD5"):
        download(_base_url(server) + "/f", tmp_path / "g.bin", md5="0" * 32, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]
    (tmp_path / "f.bin").write_bytes(b"corrupt")  # a cached copy with the wrong MD5 is fetched again
    download(_base_url(server) + "/f", tmp_path / "f.bin", md5=good, progress=False)
    assert (tmp_path / "f.bin").read_bytes() == server.files["/f"]


def test_celeba_quota_page_is_detected_removed_and_explained(server, tmp_path):
    server.files["*"] = QUOTA_PAGE  # what Drive answers, with 200 OK, when its quota is exceeded
    with pytest.raises(datasets.DataUnavailable) as err:
        datasets.fetch_celeba(tmp_path, progress=False, url_template=_base_url(server) + "/uc?id={id}")
    message = str(err.value)
    base = tmp_path / celeba.CELEBA_FOLDER
    assert "HTML page" in message and "quota" in message
    assert "by hand" in message and datasets.CELEBA_PAGE in message and str(base) in message
    assert "img_align_celeba.zip" in message and "list_eval_partition.txt" in message
    assert list(base.iterdir()) == []  # neither the page nor a .part file is left

    (base / "img_align_celeba.zip").write_bytes(QUOTA_PAGE)  # saved by a browser or wget by mistake
    with pytest.raises(datasets.DataUnavailable, match="by hand"):
        datasets.fetch_celeba(tmp_path, progress=False, url_template=_base_url(server) + "/uc?id={id}")
    assert not (base / "img_align_celeba.zip").exists()

    server.files["*"] = b"PK\x03\x04 but cut short"  # not HTML, not a valid zip either
    with pytest.raises(datasets.DataUnavailable, match="not a valid zip"):
        datasets.fetch_celeba(tmp_path, progress=False, url_template=_base_url(server) + "/uc?id={id}")
    assert list(base.iterdir()) == []


def test_fetch_celeba_and_pets_install_served_archives(server, tmp_path, fakes, monkeypatch):
    pets_dir, celeba_dir = fakes
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted((celeba_dir / "img_align_celeba").iterdir()):
            zf.write(p, f"img_align_celeba/{p.name}")
    served = {"img_align_celeba.zip": buf.getvalue()}
    served.update({n: (celeba_dir / n).read_bytes() for n in datasets.CELEBA_FILES if n.endswith(".txt")})
    server.files.update({f"/{n}": b for n, b in served.items()})
    monkeypatch.setattr(datasets, "CELEBA_FILES", {n: (n, hashlib.md5(b).hexdigest()) for n, b in served.items()})
    base = datasets.fetch_celeba(tmp_path, progress=False, url_template=_base_url(server) + "/{id}")
    assert len(list((base / "img_align_celeba").iterdir())) == 25 and not (base / "img_align_celeba.zip").exists()
    assert len(celeba.celeba_splits(base, 32, ["Smiling"], None, None, None)["train"]) == 15

    archives = []
    for name, folder in (("images.tar.gz", "images"), ("annotations.tar.gz", "annotations")):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            tar.add(pets_dir / folder, arcname=folder)
        server.files[f"/{name}"] = buf.getvalue()
        archives.append((name, _base_url(server) + f"/{name}", hashlib.md5(buf.getvalue()).hexdigest()))
    monkeypatch.setattr(datasets, "PETS_ARCHIVES", tuple(archives))
    base = datasets.fetch_pets(tmp_path, progress=False)
    assert len(oxford_pets.pets_splits(base, 32, None, 0, None)["train"]) == 18
    assert sorted(p.name for p in base.iterdir()) == ["annotations", "images"]  # archives removed, no temp left


def test_pets_download_failure_says_what_to_do(server, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "PETS_ARCHIVES", (("images.tar.gz", _base_url(server) + "/missing", None),))
    with pytest.raises(datasets.DataUnavailable) as err:
        datasets.fetch_pets(tmp_path, progress=False)
    assert "404" in str(err.value) and "by hand" in str(err.value) and datasets.PETS_PAGE in str(err.value)


def test_prepare_in_smoke_writes_lookalikes_once(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    from helpers import config, settings

    monkeypatch.setattr(config, "_PROFILE", config.Profile("smoke", "test", settings.SETTINGS["smoke"]))
    pets_dir = datasets.prepare_pets(progress=False)
    assert pets_dir == tmp_path / "smoke" / oxford_pets.PETS_FOLDER
    stamp = (pets_dir / "annotations" / "list.txt").stat().st_mtime_ns
    assert datasets.prepare_pets(progress=False) == pets_dir
    assert (pets_dir / "annotations" / "list.txt").stat().st_mtime_ns == stamp  # reused, not rewritten
    celeba_dir = datasets.prepare_celeba(progress=False)
    assert len(celeba.read_celeba_partition(celeba_dir)) == lookalike.SMOKE_CELEBA
    assert not [p for p in (tmp_path / "smoke").iterdir() if p.name.startswith(".")]  # no temp folders left
    # a look-alike an older course version wrote (no twins) is written again, not reused
    import shutil

    shutil.rmtree(pets_dir / lookalike.TWINS)
    assert not lookalike.has_pet_twins(pets_dir)
    assert datasets.prepare_pets(progress=False) == pets_dir and lookalike.has_pet_twins(pets_dir)


def test_lookalike_sizes_cover_the_profile_subsets():
    assert lookalike.lookalike_sizes(16, 4, 8) == (lookalike.SMOKE_PETS, lookalike.SMOKE_CELEBA)  # small profiles: the floor
    pets_dir, celeba_dir = lookalike.lookalike_sizes(256, 64, 128)
    assert round(0.6 * pets_dir) >= 256 + 64 and pets_dir - round(0.6 * pets_dir) >= 128
    assert round(0.6 * celeba_dir) >= 256 and round(0.2 * celeba_dir) >= 64 and celeba_dir - round(0.6 * celeba_dir) - round(0.2 * celeba_dir) >= 128
    with pytest.raises(ValueError):
        lookalike.lookalike_sizes(-1, 0, 0)


def test_prepare_writes_lookalikes_sized_for_the_profile_and_rewrites_a_wrong_size(tmp_path, monkeypatch):
    from helpers import config, settings as course_settings

    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    settings = course_settings.changed(course_settings.SETTINGS["offline"],
                                       **{"case.train_images": 40, "case.val_images": 8, "case.test_images": 30})
    monkeypatch.setattr(config, "_PROFILE", config.Profile("offline", "test", settings))
    n_pets, n_celeba = lookalike.lookalike_sizes(40, 8, 30)
    assert n_pets > lookalike.SMOKE_PETS and n_celeba > lookalike.SMOKE_CELEBA
    pets_dir = datasets.prepare_pets(progress=False)
    assert pets_dir == tmp_path / "offline" / oxford_pets.PETS_FOLDER and len(oxford_pets.read_pet_list(pets_dir)) == n_pets
    splits = oxford_pets.pets_splits(pets_dir, 32, 40, 8, 30)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [40, 8, 30]
    celeba_dir = datasets.prepare_celeba(progress=False)
    faces = celeba.celeba_splits(celeba_dir, 32, ["Smiling"], 40, 8, 30)
    assert [len(faces[k]) for k in ("train", "val", "test")] == [40, 8, 30]
    # a look-alike of another size (an older setting) is written again with the profile's size
    small = course_settings.changed(settings, **{"case.train_images": 16, "case.val_images": 4, "case.test_images": 8})
    monkeypatch.setattr(config, "_PROFILE", config.Profile("offline", "test", small))
    assert len(oxford_pets.read_pet_list(datasets.prepare_pets(progress=False))) == lookalike.SMOKE_PETS
    assert len(celeba.read_celeba_partition(datasets.prepare_celeba(progress=False))) == lookalike.SMOKE_CELEBA
