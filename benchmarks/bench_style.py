"""Speed of style transfer on the CPU: the helpers' loop (`helpers.style.style_transfer`) against the
classic recipe written out below as a reference, on the same images, layers, losses, optimizer and
number of evaluations. Prints seconds per iteration (one forward and backward pass) for both and their
ratio (helpers / reference; below 1 means the helpers are faster). A third line times the helpers with
channels_last switched off, to show what that layout contributes.

The reference builds the network the classic way: a normalization module, then a copy of VGG19's
feature stack in which every ReLU is made out-of-place and a loss module is inserted after each loss
layer, cut after the last one; weights frozen; targets computed once; L-BFGS. Random VGG19 weights are
used: speed does not depend on the weights.

    COURSE_PROFILE=smoke .venv/bin/python benchmarks/bench_style.py [--size 256] [--steps 10] [--repeats 2]
"""
from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import helpers
from helpers import features, style


class _Normalize(nn.Module):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class _Term(nn.Module):
    """A transparent module that records a target once, then measures the distance to it."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind, self.target, self.capture, self.loss = kind, None, False, None

    def _stat(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "content":
            return x
        n, c, h, w = x.shape
        f = x.reshape(n * c, h * w)
        return (f @ f.t()) / (c * h * w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.capture:
            self.target = self._stat(x).detach()
        elif self.target is not None:
            self.loss = (self._stat(x) - self.target).square().sum() / self.target.square().sum()
        return x


def classic_model(vgg: helpers.Classifier, content_layers, style_layers):
    names = features.vgg_layer_names(vgg.net.features)
    wanted = set(content_layers) | set(style_layers)
    seq = nn.Sequential(_Normalize(vgg.mean, vgg.std))
    content_terms, style_terms = [], []
    for name, module in zip(names, vgg.net.features):
        seq.append(nn.ReLU(inplace=False) if isinstance(module, nn.ReLU) else module)
        if name in content_layers:
            content_terms.append(_Term("content"))
            seq.append(content_terms[-1])
        if name in style_layers:
            style_terms.append(_Term("style"))
            seq.append(style_terms[-1])
        wanted.discard(name)
        if not wanted:
            break
    return seq.requires_grad_(False).eval(), content_terms, style_terms


def classic_transfer(vgg, content, style_img, steps, content_layers, style_layers, style_weight, tv_weight):
    seq, cterms, sterms = classic_model(vgg, content_layers, style_layers)
    with torch.no_grad():
        for t in cterms:
            t.capture = True
        seq(content)
        for t in cterms:
            t.capture = False
        for t in sterms:
            t.capture = True
        seq(style_img)
        for t in sterms:
            t.capture = False
    img = content.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([img], lr=1.0, max_iter=steps, max_eval=steps, history_size=50,
                            tolerance_grad=0.0, tolerance_change=0.0)
    losses = []

    def closure():
        with torch.no_grad():
            img.clamp_(0, 1)
        opt.zero_grad()
        seq(img)
        c = sum(t.loss for t in cterms) / len(cterms)
        s = sum(t.loss for t in sterms) / len(sterms)
        tv = ((img[:, :, 1:] - img[:, :, :-1]).square().mean()
              + (img[:, :, :, 1:] - img[:, :, :, :-1]).square().mean())
        loss = c + style_weight * s + tv_weight * tv
        loss.backward()
        losses.append(loss.item())
        return loss

    opt.step(closure)
    return img.detach(), losses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_grad_enabled(True)
    vgg = helpers.load_model("vgg19", pretrained=False, device="cpu")
    content = helpers.load_batch(["cat"], args.size)
    style_img = helpers.load_batch(["gravel"], args.size)
    cl, sl = features.CONTENT_LAYERS, features.STYLE_LAYERS
    sw, tw = 10.0, 1.0
    extractor = features.VGGFeatures(vgg, layers=tuple(dict.fromkeys(cl + sl)))  # channels_last: automatic
    plain = features.VGGFeatures(vgg, layers=tuple(dict.fromkeys(cl + sl)), channels_last=False)

    def run_helpers(ext=extractor):
        return style.style_transfer(content, style_img, args.steps, ext, cl, sl, style_weight=sw,
                                    tv_weight=tw).history["total"]

    def run_plain():
        return run_helpers(plain)

    def run_classic():
        return classic_transfer(vgg, content, style_img, args.steps, cl, sl, sw, tw)[1]

    print(f"style transfer at {args.size} px, {args.steps} L-BFGS evaluations, {torch.get_num_threads()} threads, "
          f"layers {cl + sl}")
    times = {"helpers": [], "reference": [], "helpers, contiguous": []}
    a, b = run_helpers(), run_classic()  # warm-up (allocator, oneDNN kernels), and the same losses
    print(f"first loss: helpers {a[0]:.6g}, reference {b[0]:.6g}; last: helpers {a[-1]:.6g}, reference {b[-1]:.6g}")
    if abs(a[0] - b[0]) > 1e-4 * abs(b[0]):
        raise SystemExit("the two loops do not compute the same loss; the comparison would be unfair")
    for _ in range(args.repeats):  # alternate so that load from other processes hits both alike
        for key, fn in (("reference", run_classic), ("helpers", run_helpers), ("helpers, contiguous", run_plain)):
            t0 = time.perf_counter()
            n = len(fn())
            times[key].append((time.perf_counter() - t0) / n)
    best = {k: min(v) for k, v in times.items()}
    for k, v in best.items():
        print(f"{k:>19}: {v:.3f} s per iteration (best of {args.repeats}; all: "
              f"{', '.join(f'{t:.3f}' for t in times[k])})")
    ratio = best["helpers"] / best["reference"]
    print(f"ratio helpers / reference: {ratio:.2f} ({'OK' if ratio <= 1.0 else 'SLOWER than the reference'}); "
          f"without channels_last: {best['helpers, contiguous'] / best['reference']:.2f}")


if __name__ == "__main__":
    main()
