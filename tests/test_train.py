"""Case-study fine-tuning (helpers.train): the prefix/suffix split, checkpoints that a re-run reuses, resume
after an interruption, and the accuracy scores; plus the batched LIME/SHAP maps (helpers.blackbox)."""
import pytest
import torch

import helpers
from helpers import blackbox, data, train

SIZE = 32


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    base = data.make_fake_pets(tmp_path_factory.mktemp("pets"), 16)
    return data.pets_splits(base, SIZE, n_train=6, n_val=3, n_test=4)


@pytest.mark.parametrize("name", ["resnet18", "vgg19"])
def test_split_model_reproduces_the_forward_pass(name):
    model = train.new_head(helpers.load_model(name, device="cpu"), ["a", "b", "c"], multilabel=True)
    x = torch.rand(2, 3, SIZE, SIZE)
    prefix, suffix = train.split_model(model)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, 3) and model.labels == ["a", "b", "c"] and model.multilabel
        assert torch.allclose(suffix(prefix(model.normalize(x))), out, atol=1e-5)
    head, block = train._trainable_keys(model)
    state = train._trainable_state(model)
    assert state and all(k.startswith(head + block) for k in state)
    assert helpers.get_layer(model, model.target_layer_name) in list(suffix.modules())  # Grad-CAM layer is trained


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


def test_multilabel_training_on_celeba_lookalike(tmp_path):
    base = data.make_fake_celeba(tmp_path, 20)
    splits = data.celeba_splits(base, SIZE, ["Eyeglasses", "Smiling"], n_train=6, n_val=3, n_test=3)
    result = train.fine_tune("resnet18", splits["train"], splits["val"], ["Eyeglasses", "Smiling"], head_epochs=1,
                             block_epochs=0, batch_size=6, checkpoint=None, progress=False, device="cpu")
    assert result.model.multilabel and len(result.history[0]["val_acc"]) == 2
    logits, labels = train.predict(result.model, splits["test"])
    assert logits.shape == (3, 2) and labels.shape == (3, 2)


def test_accuracy_scores():
    logits = torch.tensor([[2.0, -1.0], [-1.0, -3.0], [0.5, 1.0], [-2.0, -1.0]])
    labels = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    assert train.accuracy(logits, labels).tolist() == [0.5, 1.0]
    # attribute 0: TPR 1/2, TNR 1/2; attribute 1: TPR 1, TNR 1
    assert train.balanced_accuracy(logits, labels).tolist() == [0.5, 1.0]
    assert train.accuracy(logits, torch.tensor([0, 1, 1, 1])).item() == 0.75
    rare = torch.tensor([[1.0], [0.0], [0.0], [0.0]])
    never = torch.full((4, 1), -5.0)
    assert train.accuracy(never, rare).item() == 0.75 and train.balanced_accuracy(never, rare).item() == 0.5


def test_unknown_model_is_refused(pets):
    with pytest.raises(ValueError, match="resnet18"):
        train.fine_tune("alexnet", pets["train"], pets["val"], ["cat", "dog"], head_epochs=1, block_epochs=0,
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
    maps = blackbox.lime_maps(model, x, torch.tensor([0, 2]), num_samples=50, n_segments=8, batch_size=32)
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
        change = model(x)[0, 1] - model(blackbox._blurred(x[0], 2.0)[None])[0, 1]
    assert maps.shape == (1, 16, 16)
    assert maps.sum().item() == pytest.approx(change.item(), abs=1e-4)
    assert max(model.calls) <= 16 and sum(model.calls) >= 32


def test_unreadable_checkpoint_is_retrained(pets, tmp_path, monkeypatch):
    ckpt = tmp_path / "broken.pt"
    ckpt.write_bytes(b"not a checkpoint")
    result, steps = _run(pets, ckpt, monkeypatch, block_epochs=0)
    assert steps == 2 and result.start_epoch == 0
    assert torch.load(ckpt, weights_only=True)["epoch"] == 1
