"""The case study's look-alike faces (helpers.data.lookalike) have planted answers, and the scores of notebook 06
recover them: each attribute's evidence is drawn where `LOOKALIKE_PLANTS` says, its labels agree with the
drawing as often as planted, and the per-attribute table (balanced accuracy, Grad-CAM-style margin over the
centre baseline in the attribute's own region, each with a bootstrap interval) finds the planted accuracy
and the planted map position."""
import numpy as np
import pytest
import torch

from helpers import metrics, stats
from helpers.data import celeba, faceparts, lookalike

PLANTS = lookalike.LOOKALIKE_PLANTS
REGION_PARTS = {"eyes": faceparts.EYES, "nose": ("nose",), "mouth": faceparts.MOUTH}
MEAN_LM = np.array([[69, 111], [108, 111], [88, 134], [72, 152], [106, 152]], dtype=float)
W, H = celeba.CELEBA_SIZE


def _face(seed, drawn, lm):
    return torch.from_numpy(np.asarray(lookalike.draw_face(np.random.default_rng(seed), drawn, lm), np.float32))


def _evidence(name, seed, lm):
    """|face with the attribute drawn - the same face without|, summed over colours: where the evidence is."""
    off = {a: False for a in PLANTS}
    return (_face(seed, {**off, name: True}, lm) - _face(seed, off, lm)).abs().sum(-1)


def _region_shares(maps, lm):
    lm_t = torch.as_tensor(lm, dtype=torch.float32).expand(len(maps), 5, 2)
    radius = 0.5 * float(faceparts.interocular(lm_t[:1]))
    return {r: metrics.energy_in_mask(maps, faceparts.landmark_mask(lm_t, parts, (H, W), radius))
            for r, parts in REGION_PARTS.items()}


def test_the_twelve_landmark_attributes_are_planted():
    assert set(PLANTS) == {a for a, parts in faceparts.ATTRIBUTE_PARTS.items() if a != "Goatee"}
    assert all(p.region in (None, "eyes", "nose", "mouth", "forehead") and 0.5 <= p.agreement <= 1 for p in PLANTS.values())
    # the planted region agrees with the landmark region of the attribute, except where planted elsewhere on purpose
    for name, p in PLANTS.items():
        if p.region in REGION_PARTS:
            assert tuple(faceparts.ATTRIBUTE_PARTS[name]) == REGION_PARTS[p.region], name


@pytest.mark.parametrize("name", [a for a, p in PLANTS.items() if p.region is not None])
def test_evidence_is_drawn_where_planted(name):
    region = PLANTS[name].region
    rng = np.random.default_rng(0)
    lm = np.rint(MEAN_LM + rng.normal(0, 2.0, size=(1, 2)))
    ev = _evidence(name, 11, lm)
    assert ev.sum() > 0, "toggling the attribute changes no pixel"
    shares = {r: float(v) for r, v in _region_shares(ev[None], lm).items()}
    if region == "forehead":
        assert max(shares.values()) < 0.05, shares  # near no landmark
    else:
        # the nose disc overlaps the middle of the mouth (on real faces too); eyes and mouth are apart
        assert shares[region] > 0.6 and shares[region] == max(shares.values()), shares
        far = {"eyes": "mouth", "mouth": "eyes", "nose": "eyes"}[region]
        assert shares[far] < 0.05, shares


def test_nothing_is_drawn_for_a_label_only_attribute_and_the_face_is_otherwise_unchanged():
    off = {a: False for a in PLANTS}
    a = _face(3, off, MEAN_LM)
    assert torch.equal(a, _face(3, {**off, "Pointy_Nose": True, "Mouth_Slightly_Open": True}, MEAN_LM))


@pytest.fixture(scope="module")
def lookalike_faces(tmp_path_factory):
    base = lookalike.make_fake_celeba(tmp_path_factory.mktemp("faces"), 600)
    names, files, attrs = celeba.read_celeba_attributes(base)
    drawn_names, drawn_files, drawn = lookalike.read_lookalike_drawn(base)
    assert drawn_files == files and drawn_names == list(PLANTS)
    labels = attrs[:, [names.index(a) for a in PLANTS]]
    return names, attrs, labels, drawn


def test_labels_agree_with_the_drawing_as_often_as_planted(lookalike_faces):
    names, attrs, labels, drawn = lookalike_faces
    for k, (name, p) in enumerate(PLANTS.items()):
        if p.region is None:
            assert not drawn[:, k].any(), name
            continue
        agree = stats.mean_interval((drawn[:, k] == labels[:, k]).double(), level=0.99, n_resamples=999)
        assert agree.low <= p.agreement <= agree.high or agree.estimate == p.agreement == 1.0, (name, agree)
    # the planted correlations
    col = {a: attrs[:, names.index(a)].double() for a in ("Wearing_Lipstick", "Male", "Mouth_Slightly_Open", "Smiling")}
    phi = lambda a, b: float(np.corrcoef(col[a], col[b])[0, 1])  # noqa: E731 - Pearson on 0/1 values is phi
    assert phi("Wearing_Lipstick", "Male") < -0.5 and phi("Mouth_Slightly_Open", "Smiling") > 0.3


def test_the_per_attribute_table_recovers_the_planted_accuracy_and_map_position(lookalike_faces):
    """Oracle predictions (what is drawn) and oracle maps (where it is drawn) go through the scores of
    notebook 06: balanced accuracy with its interval, and the paired margin over the centre baseline in the
    attribute's own region."""
    _, _, labels, drawn = lookalike_faces
    n_maps = 24
    rng = np.random.default_rng(5)
    lms = [np.rint(MEAN_LM + rng.normal(0, 2.0, size=(1, 2)) + rng.normal(0, 1.0, size=(5, 2))) for _ in range(n_maps)]
    lm_t = torch.tensor(np.stack(lms), dtype=torch.float32)
    radius = 0.5 * float(faceparts.interocular(lm_t).mean())
    centre = metrics.centre_baseline(n_maps, H, W)
    for k, (name, p) in enumerate(PLANTS.items()):
        ba = stats.balanced_accuracy_interval(drawn[:, k].double(), labels[:, k].double(), n_resamples=999)
        assert ba.low <= p.agreement <= ba.high, (name, ba)
        if p.region is None:
            assert ba.estimate == 0.5
            continue
        maps = torch.stack([_evidence(name, 100 + i, lms[i]) for i in range(n_maps)])
        own = faceparts.landmark_mask(lm_t, faceparts.ATTRIBUTE_PARTS[name], (H, W), radius)
        margin = stats.paired_difference(metrics.energy_in_mask(maps, own), metrics.energy_in_mask(centre, own),
                                         n_resamples=999)
        if p.region == "forehead":  # accurate, for a reason outside its own region
            assert margin.high < 0, (name, margin)
        else:
            assert margin.low > 0, (name, margin)


def test_positive_weights_balance_each_attribute():
    from helpers import train

    labels = torch.tensor([[1, 0, 1], [0, 0, 1], [0, 0, 1], [0, 1, 1]], dtype=torch.float32)
    w = train.positive_weights(labels, max_weight=50.0)
    assert torch.allclose(w, torch.tensor([3.0, 3.0, 1 / 50]))  # 3 negatives per positive; no negative: clipped
    # with these weights, positives and negatives of attribute 0 weigh the same in the loss
    pos = (labels[:, 0] > 0.5)
    assert float(w[0] * pos.sum()) == float((~pos).sum())
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        train.positive_weights(labels[:, 0])
