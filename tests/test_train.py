"""Case-study fine-tuning (helpers.train): the head and last block found the same way for every model, the
prefix/suffix split, checkpoints that a re-run reuses (and that record the starting weights), resume after an
interruption, and the accuracy scores; plus the batched LIME/SHAP maps (helpers.blackbox)."""
import pytest
import torch

import helpers
from helpers import blackbox, filters, heads, stats, train
from helpers.data import celeba, lookalike, oxford_pets

SIZE = 32


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    base = lookalike.make_fake_pets(tmp_path_factory.mktemp("pets"), 16)
    return oxford_pets.pets_splits(base, SIZE, n_train=6, n_val=3, n_test=4)


@pytest.mark.parametrize("name", ["resnet18", "vgg19", "efficientnet_lite0", "xception"])
def test_split_model_reproduces_the_forward_pass(name):
    model = heads.new_head(helpers.load_model(name, device="cpu"), ["a", "b", "c"], multilabel=True)
    x = torch.rand(2, 3, SIZE, SIZE)
    prefix, suffix = heads.split_model(model)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, 3) and model.labels == ["a", "b", "c"] and model.multilabel
        assert torch.allclose(suffix(prefix(model.normalize(x))), out, atol=1e-5)
    head, block = train._trainable_keys(model)
    state = train._trainable_state(model)
    assert state and all(k.startswith(head + block) for k in state)
    assert helpers.get_layer(model, model.target_layer_name) in list(suffix.modules())  # Grad-CAM layer is trained
    assert not any(m in list(prefix.modules()) for m in suffix.modules() if list(m.parameters()))  # disjoint halves


@pytest.mark.parametrize("name, head, block", [
    ("resnet18", "fc", ["layer4", "avgpool"]),
    ("vgg19", "classifier.6", [f"features.{i}" for i in range(28, 37)] + ["avgpool"]),
    ("efficientnet_lite0", "classifier", ["blocks.6", "conv_head", "bn2", "global_pool"]),
])
def test_head_and_last_block_are_found_from_the_structure(name, head, block):
    model = helpers.load_model(name, device="cpu")
    assert heads.head_name(model.net) == head
    assert heads.trainable_parts(model) == (head, block)
    heads.new_head(model, ["x", "y"], multilabel=False)
    assert model.net.get_submodule(head).out_features == 2 and model(torch.rand(1, 3, SIZE, SIZE)).shape == (1, 2)
    _, block_keys = train._trainable_keys(model)
    trained = {k for k in model.state_dict() if k.startswith(block_keys)}
    assert trained and all(k.split(".")[1] in {b.split(".")[0] for b in block} for k in trained)
    assert not any(k.startswith(f"net.{head}.") for k in trained)


def test_new_head_leaves_the_global_generator_alone():
    model = helpers.load_model("resnet18", device="cpu")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    heads.new_head(model, ["a", "b"], multilabel=False)
    assert torch.equal(torch.rand(3), expected)
    first = model.net.fc.weight.clone()
    heads.new_head(model, ["a", "b"], multilabel=False)
    assert torch.equal(model.net.fc.weight, first)  # the same initial head on every run
    with pytest.raises(ValueError, match="at least one label"):
        heads.new_head(model, [], multilabel=False)


def test_a_network_that_does_not_run_its_children_in_order_is_refused():
    model = helpers.load_model("resnet18", device="cpu")
    model.net.bn1.bias.data.fill_(-0.5)  # so that bn1 and relu do not commute
    order = list(model.net._modules)  # conv1, bn1, relu, ...: list relu before bn1, as if forward ran it first
    i, j = order.index("bn1"), order.index("relu")
    order[i], order[j] = order[j], order[i]
    model.net._modules = type(model.net._modules)((k, model.net._modules[k]) for k in order)
    with pytest.raises(RuntimeError, match="do not reproduce"):
        heads.split_model(model)


class _CountingAdamW(torch.optim.AdamW):
    steps = 0

    def step(self, *args, **kwargs):
        type(self).steps += 1
        return super().step(*args, **kwargs)


def _run(pets, ckpt, monkeypatch, **kw):
    monkeypatch.setattr(torch.optim, "AdamW", _CountingAdamW)
    _CountingAdamW.steps = 0
    args = dict(head_epochs=1, block_epochs=1, batch_size=4, checkpoint=ckpt, progress=False, device="cpu")
    args.update(kw)
    result = train.fine_tune("resnet18", pets["train"], pets["val"], ["cat", "dog"], **args)
    return result, _CountingAdamW.steps


def test_checkpoint_is_reused_without_training(pets, tmp_path, monkeypatch):
    ckpt = tmp_path / "ckpt.pt"
    first, steps = _run(pets, ckpt, monkeypatch)
    assert steps == first.steps == 2 * 2  # 2 epochs of 2 batches (6 images, batch 4)
    assert ckpt.is_file() and [h["epoch"] for h in first.history] == [1, 2]
    assert [h["stage"] for h in first.history] == ["head", "last block"]
    second, steps = _run(pets, ckpt, monkeypatch)
    assert steps == 0 and second.steps == 0 and second.start_epoch == 2
    x = pets["test"].images()
    with torch.no_grad():
        assert torch.equal(first.model(x), second.model(x))
    assert not any(p.requires_grad for p in second.model.parameters())
    # other settings: the checkpoint does not apply and training starts again
    third, steps = _run(pets, ckpt, monkeypatch, lr_head=5e-4)
    assert steps == 4 and third.start_epoch == 0


def test_a_training_subset_has_its_own_checkpoint(pets, tmp_path, monkeypatch):
    """A Subset (VGG19's smaller training set in notebook 06) is fingerprinted by the names it holds: a
    checkpoint of one subset is not reused for another of the same length, but is for the same one."""
    from torch.utils.data import Subset

    ckpt = tmp_path / "subset.pt"
    first_four = Subset(pets["train"], range(4))
    assert train._fingerprint(first_four) != train._fingerprint(Subset(pets["train"], range(2, 6)))
    assert train._fingerprint(first_four) == train._fingerprint(Subset(pets["train"], [0, 1, 2, 3]))
    assert train._fingerprint(Subset(pets["train"], range(6))) == train._fingerprint(pets["train"])
    monkeypatch.setattr(torch.optim, "AdamW", _CountingAdamW)
    args = dict(head_epochs=1, block_epochs=0, batch_size=4, checkpoint=ckpt, progress=False, device="cpu")
    _CountingAdamW.steps = 0
    train.fine_tune("resnet18", first_four, pets["val"], ["cat", "dog"], **args)
    assert _CountingAdamW.steps == 1
    train.fine_tune("resnet18", Subset(pets["train"], range(4)), pets["val"], ["cat", "dog"], **args)
    assert _CountingAdamW.steps == 1  # the same subset: reused
    train.fine_tune("resnet18", Subset(pets["train"], range(2, 6)), pets["val"], ["cat", "dog"], **args)
    assert _CountingAdamW.steps == 2  # another subset of the same size: trained again


def test_interrupted_run_resumes_and_matches_an_uninterrupted_one(pets, tmp_path, monkeypatch):
    def stop_after_first(epoch, record):
        if epoch == 1:
            raise KeyboardInterrupt

    ckpt = tmp_path / "interrupted.pt"
    with pytest.raises(KeyboardInterrupt):
        _run(pets, ckpt, monkeypatch, on_epoch_end=stop_after_first)
    assert torch.load(ckpt, weights_only=False)["epoch"] == 1
    assert not list(tmp_path.glob("*.tmp"))
    resumed, steps = _run(pets, ckpt, monkeypatch)
    assert resumed.start_epoch == 1 and steps == 2  # only the remaining epoch (2 batches)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    straight, _ = _run(pets, tmp_path / "straight.pt", monkeypatch)
    x = pets["test"].images()
    with torch.no_grad():  # same data order and optimizer state: resuming changes nothing
        assert torch.allclose(resumed.model(x), straight.model(x), atol=1e-5)


def test_fine_tuning_lite0_trains_only_its_last_block_and_head(pets, tmp_path):
    before = helpers.load_model("efficientnet_lite0", device="cpu").state_dict()
    result = train.fine_tune("efficientnet_lite0", pets["train"], pets["val"], ["cat", "dog"], head_epochs=1,
                             block_epochs=1, batch_size=4, checkpoint=tmp_path / "lite0.pt", progress=False,
                             device="cpu")
    after = result.model.state_dict()
    changed = {k for k in before if k in after and before[k].shape == after[k].shape
               and not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("net.blocks.6.", "net.conv_head.", "net.bn2.", "net.classifier."))
                           for k in changed)
    assert any(k.startswith("net.blocks.6.") for k in changed)  # the block was trained, not only the head
    assert result.model.net.classifier.out_features == 2
    assert torch.load(tmp_path / "lite0.pt", weights_only=True)["meta"]["pretrained"] is True  # its weights ship


def test_checkpoint_records_whether_the_model_was_pretrained(pets, tmp_path, monkeypatch):
    _run(pets, tmp_path / "random.pt", monkeypatch, block_epochs=0, pretrained=False)
    assert torch.load(tmp_path / "random.pt", weights_only=True)["meta"]["pretrained"] is False
    # in smoke no ResNet-18 weights are cached here, so the default is random weights, and says so
    monkeypatch.setattr(train, "has_pretrained_weights", lambda name: False)
    _run(pets, tmp_path / "default.pt", monkeypatch, block_epochs=0)
    assert torch.load(tmp_path / "default.pt", weights_only=True)["meta"]["pretrained"] is False
    monkeypatch.setattr(train, "has_pretrained_weights", lambda name: True)
    monkeypatch.setattr(train, "load_model", lambda name, pretrained, **kw: helpers.load_model(name, pretrained=False, **kw))
    second, steps = _run(pets, tmp_path / "default.pt", monkeypatch, block_epochs=0)
    assert steps == 2 and second.start_epoch == 0  # a checkpoint from other starting weights is not reused
    assert torch.load(tmp_path / "default.pt", weights_only=True)["meta"]["pretrained"] is True


def test_multilabel_training_on_celeba_lookalike(tmp_path):
    base = lookalike.make_fake_celeba(tmp_path, 20)
    splits = celeba.celeba_splits(base, SIZE, ["Eyeglasses", "Smiling"], n_train=6, n_val=3, n_test=3)
    result = train.fine_tune("resnet18", splits["train"], splits["val"], ["Eyeglasses", "Smiling"], head_epochs=1,
                             block_epochs=0, batch_size=6, checkpoint=None, progress=False, device="cpu")
    assert result.model.multilabel and len(result.history[0]["val_acc"]) == 2
    logits, labels = train.predict_dataset(result.model, splits["test"])
    assert logits.shape == (3, 2) and labels.shape == (3, 2)


def test_accuracy_scores():
    logits = torch.tensor([[2.0, -1.0], [-1.0, -3.0], [0.5, 1.0], [-2.0, -1.0]])
    labels = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    assert train.accuracy(logits, labels).tolist() == [0.5, 1.0]
    # attribute 0: TPR 1/2, TNR 1/2; attribute 1: TPR 1, TNR 1
    assert stats.balanced_accuracy(logits > 0, labels).tolist() == [0.5, 1.0]
    assert train.accuracy(logits, torch.tensor([0, 1, 1, 1])).item() == 0.75
    rare = torch.tensor([[1.0], [0.0], [0.0], [0.0]])
    never = torch.full((4, 1), -5.0)
    assert train.accuracy(never, rare).item() == 0.75 and stats.balanced_accuracy(never > 0, rare).item() == 0.5


def test_unknown_model_is_refused(pets):
    with pytest.raises(ValueError, match="resnet18"):
        train.fine_tune("googlenet", pets["train"], pets["val"], ["cat", "dog"], head_epochs=1, block_epochs=0,
                        batch_size=4, checkpoint=None, progress=False)


# ------------------------------------------------------------------------------------ LIME and SHAP

class _Counting(torch.nn.Module):
    """Records the batch size of every call."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, []

    def forward(self, x):
        self.calls.append(len(x))
        return self.model(x)


def test_lime_is_batched_and_paints_superpixels():
    torch.manual_seed(0)
    model = _Counting(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 24 * 24, 3)))
    x = torch.rand(2, 3, 1, 1).repeat(1, 1, 24, 24)
    x[0, :, :12] = 1 - x[0, :, :12]  # image 0: two halves with a little texture (LIME fills a superpixel
    x[0] = (x[0] + 0.05 * torch.rand(3, 24, 24)).clamp(0, 1)  # with its mean colour: flat ones would not change)
    x[1] = torch.rand(3, 24, 24)  # image 1: noise, where SLIC finds one region and a grid is used
    maps = blackbox.lime_maps(model, x, torch.tensor([0, 2]), num_samples=50, n_segments=8, batch_size=32,
                              progress=True)
    assert maps.shape == (2, 24, 24)
    assert max(model.calls) == 32 and sum(model.calls) == 2 * 50  # 50 samples per image, 32 at a time
    for m in maps:
        assert 1 < m.unique().numel() <= 12  # one weight per superpixel


def test_shap_values_add_up_to_the_score_change():
    # Partition SHAP is additive: the map sums to score(image) - score(fully blurred image).
    torch.manual_seed(0)
    model = _Counting(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                                          torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(16, 2)))
    x = torch.rand(1, 3, 16, 16)
    maps = blackbox.shap_maps(model, x, 1, max_evals=64, batch_size=16, score="logit")
    with torch.no_grad():
        change = model(x)[0, 1] - model(filters.gaussian_blur(x, 2.0))[0, 1]
    assert maps.shape == (1, 16, 16)
    assert maps.sum().item() == pytest.approx(change.item(), abs=1e-4)
    assert max(model.calls) <= 16 and sum(model.calls) >= 32


def test_unreadable_checkpoint_is_retrained(pets, tmp_path, monkeypatch):
    ckpt = tmp_path / "broken.pt"
    ckpt.write_bytes(b"not a checkpoint")
    result, steps = _run(pets, ckpt, monkeypatch, block_epochs=0)
    assert steps == 2 and result.start_epoch == 0
    assert torch.load(ckpt, weights_only=True)["epoch"] == 1
