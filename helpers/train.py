"""Fine-tuning an ImageNet classifier of the course (ResNet-18 and VGG19 in `full`, EfficientNet-Lite0 in
`offline` and `smoke`) for the case study (notebook 06), with checkpoints that a re-run reuses and an
interrupted run resumes from.

The recipe is the usual transfer-learning one: replace the 1000-class layer by a new `head` for the task
(2 classes for cat/dog, one logit per attribute for CelebA), train the head alone for `head_epochs`, then
the head and the network's last `block` together for `block_epochs` with a smaller learning rate.
Everything before the block stays frozen, so its output is computed once per run and kept (as float16)
instead of once per epoch: the frozen prefix is most of the cost of a forward pass.

The new head and the split into a frozen prefix and a trained block are in `helpers.heads`.

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
from torch.utils.data import DataLoader, Dataset, Subset

from . import checks
from .config import data_dir
from .models import Classifier, load_model
from .heads import last_block, new_head, split_model, trainable_parts
from .registry import has_pretrained_weights, model_spec

def checkpoint_path(tag: str) -> Path:
    """`<data_dir>/checkpoints/<tag>.pt` (the folder is created)."""
    folder = data_dir() / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{tag}.pt"


def _trainable_keys(model: Classifier) -> tuple[tuple[str, ...], tuple[str, ...]]:
    head, block = trainable_parts(model)
    return (f"net.{head}.",), tuple(f"net.{n}." for n in block)


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


def _names(ds: Dataset) -> list[str] | None:
    """The item names of a data set (its `names` or `files`), also through `torch.utils.data.Subset`."""
    if isinstance(ds, Subset):
        inner = _names(ds.dataset)
        return None if inner is None else [inner[i] for i in ds.indices]
    names = getattr(ds, "names", None) or getattr(ds, "files", None)
    return None if names is None else list(names)


def _fingerprint(ds: Dataset) -> str:
    names = _names(ds) or [str(len(ds))]
    while isinstance(ds, Subset):
        ds = ds.dataset
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


def _loss_fn(multilabel: bool, pos_weight: torch.Tensor | None = None) -> nn.Module:
    return nn.BCEWithLogitsLoss(pos_weight=pos_weight) if multilabel else nn.CrossEntropyLoss()


def positive_weights(labels: torch.Tensor, max_weight: float = 50.0) -> torch.Tensor:
    """Per-attribute weights `(K,)` for the positives of 0/1 labels `(N, K)`: negatives / positives, so that
    an attribute's positives weigh as much in the loss as its negatives (what balanced accuracy rewards),
    clipped to [1/max_weight, max_weight] (an attribute with no positive gets `max_weight`)."""
    if labels.ndim != 2:
        raise ValueError(f"positive_weights needs 0/1 labels (N, K); got shape {tuple(labels.shape)}.")
    pos = (labels > 0.5).sum(0).float()
    neg = len(labels) - pos
    return (neg / pos.clamp_min(1e-9)).clamp(1 / max_weight, max_weight)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Accuracy from logits `(N, K)` (e.g. `predict`'s): a scalar for class labels `(N,)` (argmax), or one per
    attribute `(K,)` for 0/1 labels `(N, K)` (logit > 0). The course's one accuracy: for a model and images,
    `accuracy(predict(model, images), labels)`."""
    labels = checks.labels_like(labels, logits)
    if labels.ndim == 1:
        return (logits.argmax(dim=1) == labels).float().mean()
    return ((logits > 0) == (labels > 0.5)).float().mean(dim=0)


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Logits `(N, K)` on the CPU of `model` for images `(N, 3, H, W)` in [0, 1], `batch_size` at a time on
    the model's device. For a data set of (image, label) pairs use `predict_dataset`; predicted classes are
    `predict(...).argmax(1)`."""
    checks.images(images, "images")
    device = next(model.parameters()).device
    return torch.cat([model(chunk.to(device)).cpu() for chunk in images.split(batch_size)])


@torch.no_grad()
def predict_dataset(model: nn.Module, ds: Dataset, batch_size: int = 64,
                    progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits `(N, K)`, labels) of `model` on every (image, label) item of `ds`, on the CPU. It is `predict`
    for a data set too large to hold as one tensor: images are loaded `batch_size` at a time, and the labels
    come back with the logits in the same order."""
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
              pretrained: bool | None = None, balanced: bool = False,
              on_epoch_end: Callable[[int, dict], None] | None = None) -> FineTuned:
    """Fine-tune ImageNet model `name` (any model with a `last_block` in `helpers.registry.MODELS`, e.g. "resnet18", "vgg19", "efficientnet_lite0")
    on `train_set`, validating on `val_set`.

    Data sets yield `(image (3, S, S) in [0, 1], label)`: a class index (softmax over `labels`) or a 0/1
    vector `(K,)` (one sigmoid per label; `model.multilabel` is then True). The first `head_epochs` train
    the new head only (learning rate `lr_head`), the next `block_epochs` the last block too (`lr_block`
    for it). After each epoch the checkpoint is written (atomically); a matching checkpoint is resumed
    from its last epoch, and a finished one returns the model without a training step. A checkpoint made
    with other settings (model, labels, data, epochs, rates, starting weights) is ignored and overwritten.
    pretrained: start from ImageNet weights (True), random ones (False), or None for `load_model`'s default
    (ImageNet weights wherever they can be had); the checkpoint records which one it was.
    balanced: for 0/1 labels, weigh each attribute's positives by its negatives-to-positives ratio in the
    training set (`positive_weights`), so that a rare attribute is not learned as "always no". One run
    trains one output per label: all of CelebA's landmark attributes share the network and its last block.
    on_epoch_end(epoch, record) is called after each saved epoch (e.g. to stop early).
    """
    from tqdm.auto import tqdm

    say = print if progress else (lambda *a, **k: None)
    key = model_spec(name).name
    last_block(key)  # ValueError for a model that cannot be fine-tuned
    if len(train_set) == 0 or len(val_set) == 0:
        raise ValueError("fine_tune needs non-empty training and validation sets.")
    multilabel = train_set[0][1].ndim == 1
    if pretrained is None:
        pretrained = has_pretrained_weights(key)
    model = load_model(key, pretrained=pretrained, device=device, frozen=True)
    new_head(model, labels, multilabel)
    device = next(model.parameters()).device
    total = head_epochs + block_epochs
    head_keys, block_keys = _trainable_keys(model)
    head_params, block_params = _params(model, head_keys), _params(model, block_keys)
    optimizer = torch.optim.AdamW([{"params": head_params, "lr": lr_head},
                                   {"params": block_params, "lr": lr_block}], weight_decay=weight_decay)
    meta = {"model": key, "labels": list(labels), "pretrained": bool(pretrained),
            "train": _fingerprint(train_set), "val": _fingerprint(val_set), "head_epochs": head_epochs,
            "block_epochs": block_epochs, "lr": [lr_head, lr_block, weight_decay], "batch_size": batch_size,
            "seed": seed, "balanced": bool(balanced and multilabel)}
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
    weights = positive_weights(train_y).to(device) if balanced and multilabel else None
    loss_fn = _loss_fn(multilabel, weights)
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
