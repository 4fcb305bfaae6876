"""Fine-tuning an ImageNet classifier of the course (ResNet-18 and VGG19 in `full`, EfficientNet-Lite0 in
`offline` and `smoke`) for the case study (notebook 06), with checkpoints that a re-run reuses and an
interrupted run resumes from.

The recipe is the usual transfer-learning one: replace the 1000-class layer by a new `head` for the task
(2 classes for cat/dog, one logit per attribute for CelebA), train the head alone for `head_epochs`, then
the head and the network's last `block` together for `block_epochs` with a smaller learning rate.
Everything before the block stays frozen, so its output is computed once per run and kept (as float16)
instead of once per epoch: the frozen prefix is most of the cost of a forward pass.

The parts are found the same way for every model: the head is the network's last `nn.Linear`; the block
starts at the module named in `LAST_BLOCK` and runs up to the top-level module that holds the head
(ResNet: `layer4`; VGG19: its fifth convolutional block, `features.28` to `features.36`; EfficientNet-Lite0:
`blocks.6`, `conv_head` and `bn2`). The network's top-level modules must run one after the other, and
`split_model` checks on a random input that the two halves reproduce the whole network.

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
from .registry import has_pretrained_weights, model_spec

# model name -> the first module of its last block (a dotted name inside `Classifier.net`): the part of the
# network trained together with the new head, from this module up to the top-level module holding the head.
LAST_BLOCK = {
    "resnet18": "layer4",
    "resnet50": "layer4",
    "vgg16": "features.24",  # the fifth convolutional block: features.24 to features.30
    "vgg19": "features.28",  # the fifth convolutional block: features.28 to features.36
    "alexnet": "features.10",  # the last convolution, its ReLU and max-pool
    "efficientnet_lite0": "blocks.6",  # the last inverted-residual stage, then conv_head and bn2
    "xception": "block12",  # the exit flow: block12, conv3 ... act4
}


def checkpoint_path(tag: str) -> Path:
    """`<data_dir>/checkpoints/<tag>.pt` (the folder is created)."""
    folder = data_dir() / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{tag}.pt"


def _check_name(name: str) -> str:
    """The course's name of model `name` (see `helpers.registry.MODELS`); ValueError when fine_tune cannot
    split it."""
    try:
        key = model_spec(name).name
    except ValueError:
        key = None
    if key not in LAST_BLOCK:
        raise ValueError(f"fine_tune knows {', '.join(LAST_BLOCK)}; got {name!r}.")
    return key


def head_name(net: nn.Module) -> str:
    """Dotted name of the network's last `nn.Linear` (its classification layer), e.g. `"fc"` (ResNet),
    `"classifier.6"` (VGG), `"classifier"` (EfficientNet-Lite0). ValueError when it has none."""
    names = [n for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise ValueError(f"{type(net).__name__} has no nn.Linear layer to replace by a new head.")
    return names[-1]


def new_head(model: Classifier, labels: Sequence[str], multilabel: bool) -> Classifier:
    """Replace `model`'s last linear layer by a freshly initialised one with `len(labels)` outputs (in place;
    returns `model`). `model.multilabel` records whether outputs are independent logits (sigmoid) or one
    softmax over classes. The new layer's initial weights come from a local seed (the global random
    generator is untouched), so they are the same on every run."""
    if len(labels) == 0:
        raise ValueError("new_head needs at least one label.")
    name = head_name(model.net)
    parent_name, _, leaf = name.rpartition(".")
    parent = model.net.get_submodule(parent_name) if parent_name else model.net
    old = getattr(parent, leaf)
    layer = nn.utils.skip_init(nn.Linear, old.in_features, len(labels))  # no draw from the global generator
    # nn.Linear's own initialization (uniform in +-1/sqrt(fan_in)), drawn from a local generator
    g = torch.Generator().manual_seed(0)
    bound = 1.0 / old.in_features ** 0.5
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=g)
        layer.bias.uniform_(-bound, bound, generator=g)
    setattr(parent, leaf, layer.to(old.weight.device))
    model.labels = list(labels)
    model.multilabel = multilabel
    return model


def _chain(module: nn.Module, start: str, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """`module`'s children as (dotted name, module) in order, with the child that contains `start`
    expanded (recursively) so that `start` is one of the entries."""
    out = []
    for name, child in module.named_children():
        full = prefix + name
        if start.startswith(full + "."):
            if not isinstance(child, nn.Sequential):
                raise ValueError(f"cannot split {type(child).__name__} {full!r} at {start!r}: only nn.Sequential "
                                 "containers run their children one after the other.")
            out.extend(_chain(child, start, full + "."))
        else:
            out.append((full, child))
    return out


def trainable_parts(model: Classifier) -> tuple[str, list[str]]:
    """(head, block) of `model`: the dotted name of the layer `new_head` replaces, and the names of the
    modules of the last block, in order (see `LAST_BLOCK`; names inside `model.net`)."""
    start, head = LAST_BLOCK[_check_name(model.name)], head_name(model.net)
    chain = [n for n, _ in _chain(model.net, start)]
    if start not in chain:
        raise ValueError(f"{model.name} has no module {start!r} at the start of a block.")
    head_top = head.split(".")[0]
    i, j = chain.index(start), chain.index(head_top)
    if j <= i:
        raise ValueError(f"{model.name}: the head {head!r} does not come after the block start {start!r}.")
    return head, chain[i:j]


def split_model(model: Classifier) -> tuple[nn.Module, nn.Module]:
    """(prefix, suffix) such that `suffix(prefix(model.normalize(x))) == model(x)`: prefix is the frozen
    part before the last block; suffix is the block, the pooling and the classifier (sharing modules; a
    flatten is inserted before the classifier). Checked on a random 64-pixel input: RuntimeError when the
    network's modules do not run in the order they are registered."""
    start, head = LAST_BLOCK[_check_name(model.name)], head_name(model.net)
    chain = _chain(model.net, start)
    names = [n for n, _ in chain]
    i, j = names.index(start), names.index(head.split(".")[0])
    prefix = nn.Sequential(*[m for _, m in chain[:i]])
    suffix = nn.Sequential(*[m for _, m in chain[i:j]], nn.Flatten(1), *[m for _, m in chain[j:]])
    device = next(model.parameters()).device
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)).to(device)
    with torch.no_grad():
        whole, parts = model(x), suffix(prefix(model.normalize(x)))
    if whole.shape != parts.shape or not torch.allclose(whole, parts, atol=1e-4, rtol=1e-4):
        raise RuntimeError(f"{model.name}: its top-level modules in order do not reproduce its forward pass, so "
                           "it cannot be split into a frozen prefix and a trained block.")
    return prefix, suffix


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
    """Fine-tune ImageNet model `name` (any of `LAST_BLOCK`, e.g. "resnet18", "vgg19", "efficientnet_lite0")
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
    key = _check_name(name)
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
