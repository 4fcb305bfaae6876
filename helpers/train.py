"""Fine-tuning an ImageNet ResNet-18 or VGG19 for the case study (notebook 06), with checkpoints that a
re-run reuses and an interrupted run resumes from.

The recipe is the usual transfer-learning one: replace the 1000-class layer by a new `head` for the task
(2 classes for cat/dog, one logit per attribute for CelebA), train the head alone for `head_epochs`, then
the head and the network's last `block` together for `block_epochs` with a smaller learning rate.
Everything before the block stays frozen, so its output is computed once per run and kept (as float16)
instead of once per epoch: the frozen prefix is most of the cost of a forward pass.

BatchNorm statistics stay frozen (the model is kept in eval mode), which suits the small batches of a
CPU run. After every epoch the trainable part (block and head), the optimizer state, the epoch and the
history are saved atomically to the checkpoint; `fine_tune` starts from the last saved epoch, and a
finished checkpoint means no training at all.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .config import data_dir, get_profile
from .models import Classifier, load_model

# model name -> (head: the layer replaced, block: the state-dict prefixes of the last block)
PARTS = {
    "resnet18": ("fc", ("net.layer4.",)),
    "vgg19": ("classifier.6", tuple(f"net.features.{i}." for i in range(28, 37))),
}


def checkpoint_path(tag: str) -> Path:
    """`<data_dir>/checkpoints/<tag>.pt` (the folder is created)."""
    folder = data_dir() / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{tag}.pt"


def _check_name(name: str) -> str:
    key = name.lower().replace("-", "").replace("_", "")
    if key not in PARTS:
        raise ValueError(f"fine_tune knows {', '.join(PARTS)}; got {name!r}.")
    return key


def new_head(model: Classifier, labels: Sequence[str], multilabel: bool) -> Classifier:
    """Replace `model`'s last linear layer by a freshly initialised one with `len(labels)` outputs (in place;
    returns `model`). `model.multilabel` records whether outputs are independent logits (sigmoid) or one
    softmax over classes."""
    head_name = PARTS[_check_name(model.name)][0]
    parent_name, _, leaf = head_name.rpartition(".")
    parent = model.net.get_submodule(parent_name) if parent_name else model.net
    old = getattr(parent, leaf)
    torch.manual_seed(0)
    setattr(parent, leaf, nn.Linear(old.in_features, len(labels)).to(old.weight.device))
    model.labels = list(labels)
    model.multilabel = multilabel
    return model


def split_model(model: Classifier) -> tuple[nn.Module, nn.Module]:
    """(prefix, suffix) such that `suffix(prefix(model.normalize(x))) == model(x)`: prefix is the frozen
    part before the last block; suffix is the block, the pooling and the classifier (sharing modules)."""
    net = model.net
    if _check_name(model.name) == "resnet18":
        prefix = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3)
        suffix = nn.Sequential(net.layer4, net.avgpool, nn.Flatten(1), net.fc)
    else:
        prefix = net.features[:28]
        suffix = nn.Sequential(net.features[28:], net.avgpool, nn.Flatten(1), net.classifier)
    return prefix, suffix


def _trainable_keys(model: Classifier) -> tuple[tuple[str, ...], tuple[str, ...]]:
    head, block = PARTS[_check_name(model.name)]
    return (f"net.{head}.",), block


def _trainable_state(model: Classifier) -> dict[str, torch.Tensor]:
    head, block = _trainable_keys(model)
    return {k: v.detach().cpu() for k, v in model.state_dict().items() if k.startswith(head + block)}


def _params(model: Classifier, prefixes: tuple[str, ...]) -> list[nn.Parameter]:
    return [p for k, p in model.named_parameters() if k.startswith(prefixes)]


@dataclass
class FineTuned:
    """What `fine_tune` returns: the trained `model` (eval mode, frozen), the per-epoch `history`
    (dicts with epoch, stage, loss, val_acc), the optimizer `steps` taken in this call (0 when a finished
    checkpoint was reused), the epoch it started from, and the checkpoint path."""

    model: Classifier
    history: list[dict] = field(default_factory=list)
    steps: int = 0
    start_epoch: int = 0
    checkpoint: Path | None = None


def _fingerprint(ds: Dataset) -> str:
    names = getattr(ds, "names", None) or getattr(ds, "files", None) or [str(len(ds))]
    text = json.dumps([list(names), getattr(ds, "size", None)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@torch.no_grad()
def _features(prefix: nn.Module, model: Classifier, ds: Dataset, batch_size: int, device: torch.device,
              progress: bool, desc: str) -> tuple[torch.Tensor, torch.Tensor]:
    from tqdm.auto import tqdm

    feats, labels = [], []
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False)
    for x, y in tqdm(loader, desc=desc, disable=not progress, leave=False):
        feats.append(prefix(model.normalize(x.to(device))).to("cpu", torch.float16))
        labels.append(y)
    return torch.cat(feats), torch.cat(labels)


def _loss_fn(multilabel: bool) -> nn.Module:
    return nn.BCEWithLogitsLoss() if multilabel else nn.CrossEntropyLoss()


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Accuracy from logits `(N, K)`: a scalar for class labels `(N,)` (argmax), or one per attribute `(K,)`
    for 0/1 labels `(N, K)` (logit > 0)."""
    if labels.ndim == 1:
        return (logits.argmax(dim=1) == labels.to(logits.device)).float().mean()
    return ((logits > 0) == (labels.to(logits.device) > 0.5)).float().mean(dim=0)


def balanced_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean of the true-positive and true-negative rates per attribute `(K,)`, for 0/1 labels `(N, K)`:
    unlike accuracy, it is 0.5 for a model that always answers "no" to a rare attribute."""
    pred, truth = logits > 0, labels.to(logits.device) > 0.5
    tpr = (pred & truth).sum(0) / truth.sum(0).clamp_min(1)
    tnr = (~pred & ~truth).sum(0) / (~truth).sum(0).clamp_min(1)
    return (tpr + tnr).float() / 2


@torch.no_grad()
def predict(model: Classifier, ds: Dataset, batch_size: int = 64, progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits `(N, K)`, labels) of `model` on every item of `ds`, on the CPU."""
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    out, labels = [], []
    for x, y in tqdm(DataLoader(ds, batch_size=batch_size), desc="predict", disable=not progress, leave=False):
        out.append(model(x.to(device)).cpu())
        labels.append(y)
    return torch.cat(out), torch.cat(labels)


def fine_tune(name: str, train_set: Dataset, val_set: Dataset, labels: Sequence[str], *, head_epochs: int,
              block_epochs: int, batch_size: int, checkpoint: str | os.PathLike | None,
              lr_head: float = 1e-3, lr_block: float = 1e-4, weight_decay: float = 1e-4,
              device: torch.device | str | None = None, progress: bool = True, seed: int = 0,
              on_epoch_end: Callable[[int, dict], None] | None = None) -> FineTuned:
    """Fine-tune ImageNet model `name` ("resnet18" or "vgg19") on `train_set`, validating on `val_set`.

    Data sets yield `(image (3, S, S) in [0, 1], label)`: a class index (softmax over `labels`) or a 0/1
    vector `(K,)` (one sigmoid per label; `model.multilabel` is then True). The first `head_epochs` train
    the new head only (learning rate `lr_head`), the next `block_epochs` the last block too (`lr_block`
    for it). After each epoch the checkpoint is written (atomically); a matching checkpoint is resumed
    from its last epoch, and a finished one returns the model without a training step. A checkpoint made
    with other settings (model, labels, data, epochs, rates, profile) is ignored and overwritten.
    on_epoch_end(epoch, record) is called after each saved epoch (e.g. to stop early).
    """
    from tqdm.auto import tqdm

    say = print if progress else (lambda *a, **k: None)
    key = _check_name(name)
    if len(train_set) == 0 or len(val_set) == 0:
        raise ValueError("fine_tune needs non-empty training and validation sets.")
    multilabel = train_set[0][1].ndim == 1
    model = load_model(key, device=device, frozen=True)
    new_head(model, labels, multilabel)
    device = next(model.parameters()).device
    total = head_epochs + block_epochs
    head_keys, block_keys = _trainable_keys(model)
    head_params, block_params = _params(model, head_keys), _params(model, block_keys)
    optimizer = torch.optim.AdamW([{"params": head_params, "lr": lr_head},
                                   {"params": block_params, "lr": lr_block}], weight_decay=weight_decay)
    meta = {"model": key, "labels": list(labels), "pretrained": get_profile().full,
            "train": _fingerprint(train_set), "val": _fingerprint(val_set), "head_epochs": head_epochs,
            "block_epochs": block_epochs, "lr": [lr_head, lr_block, weight_decay], "batch_size": batch_size,
            "seed": seed}
    path = Path(checkpoint) if checkpoint is not None else None
    result = FineTuned(model=model, checkpoint=path)
    if path is not None and path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - an unreadable file is retrained and overwritten, not fatal
            say(f"{key}: checkpoint {path.name} is unreadable ({type(exc).__name__}); training from scratch")
            saved = {}
        if saved.get("meta") == meta:
            missing, unexpected = model.load_state_dict(saved["trainable"], strict=False)
            if unexpected:
                raise RuntimeError(f"{path} holds unexpected weights {unexpected[:3]}; delete it and run again.")
            optimizer.load_state_dict(saved["optimizer"])
            result.history = list(saved["history"])
            result.start_epoch = saved["epoch"]
            say(f"{key}: checkpoint {path.name} has {saved['epoch']} of {total} epochs"
                + (" (done: no training)" if saved["epoch"] >= total else ", resuming"))
        elif saved:
            say(f"{key}: checkpoint {path.name} was made with other settings; training from scratch")
    if result.start_epoch >= total:
        model.requires_grad_(False).eval()
        return result

    prefix, suffix = split_model(model)
    model.eval()
    train_x, train_y = _features(prefix, model, train_set, batch_size, device, progress, "features (train)")
    val_x, val_y = _features(prefix, model, val_set, batch_size, device, progress, "features (val)")
    loss_fn = _loss_fn(multilabel)
    for epoch in range(result.start_epoch, total):
        stage = "head" if epoch < head_epochs else "last block"
        for p in head_params:
            p.requires_grad_(True)
        for p in block_params:
            p.requires_grad_(stage == "last block")
        order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(seed * 1000 + epoch))
        batches = order.split(batch_size)
        running, seen = 0.0, 0
        bar = tqdm(batches, desc=f"{key} epoch {epoch + 1}/{total} ({stage})", disable=not progress, leave=False)
        for idx in bar:
            xb = train_x[idx].to(device, torch.float32)
            yb = train_y[idx].to(device)
            loss = loss_fn(suffix(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            result.steps += 1
            running += loss.item() * len(idx)
            seen += len(idx)
            bar.set_postfix(loss=f"{running / seen:.3f}")
        with torch.no_grad():
            logits = torch.cat([suffix(v.to(device, torch.float32)).cpu() for v in val_x.split(batch_size)])
        acc = accuracy(logits, val_y)
        record = {"epoch": epoch + 1, "stage": stage, "loss": running / max(seen, 1),
                  "val_acc": acc.tolist()}
        result.history.append(record)
        mean_acc = float(acc.mean())
        say(f"{key} epoch {epoch + 1}/{total} ({stage}): train loss {record['loss']:.3f}, "
            f"validation accuracy {mean_acc:.1%}" + (" (mean over labels)" if multilabel else ""))
        if path is not None:
            _save_atomic({"meta": meta, "epoch": epoch + 1, "trainable": _trainable_state(model),
                          "optimizer": optimizer.state_dict(), "history": result.history}, path)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, record)
    model.requires_grad_(False).eval()
    return result
