"""Confidence intervals for the case study's scores (notebook 06): bootstrap intervals of a mean, of the
difference of two paired or two independent means, and of a balanced accuracy.

A score averaged over a few images is a noisy estimate; the interval says how noisy. Every function here
resamples the images with replacement (Efron 1979) through `scipy.stats.bootstrap` and returns an
`Interval`: the estimate on the images given, and the bounds of a two-sided interval at `level`
(95% unless told), by SciPy's bias-corrected and accelerated method (BCa, Efron 1987) for up to
`BCA_MAX_ITEMS` items and its percentile method above (BCa's jackknife grows with the square of the
number of items, and with that many items the two agree). A fixed `seed` makes every interval
reproducible without touching the global random generators.

- `mean_interval(values)`: the mean of one sample (a score per image).
- `paired_difference(a, b)`: mean(a) - mean(b) when `a[i]` and `b[i]` come from the same image (a method
  against the centre baseline on the same images): images are resampled together, so what the image
  adds to both cancels out.
- `difference(a, b)`: mean(a) - mean(b) for two independent samples (pets against faces, one group of
  faces against another): each sample is resampled on its own.
- `balanced_accuracy(predicted, truth)`: the mean of the true-positive and true-negative rates (the
  course's one balanced accuracy); `balanced_accuracy_interval` adds its interval, resampling (prediction,
  label) pairs.

Degenerate samples (every value equal, so that every resample gives the same number) get the zero-width
interval [v, v] instead of SciPy's NaN and warning.
"""
from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

LEVEL = 0.95
N_RESAMPLES = 4999
BCA_MAX_ITEMS = 1000


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval [low, high] at `level`, from `n` items (for a difference of
    independent samples, `n` is the smaller sample)."""

    estimate: float
    low: float
    high: float
    n: int
    level: float = LEVEL

    def excludes(self, value: float = 0.0) -> bool:
        """True when `value` lies outside the interval (for a difference: the sign is settled)."""
        return value < self.low or value > self.high

    def format(self, spec: str = ".2f") -> str:
        """`"0.21 [0.18, 0.24]"` with every number formatted by `spec` (e.g. ".1%")."""
        return f"{self.estimate:{spec}} [{self.low:{spec}}, {self.high:{spec}}]"

    def __str__(self) -> str:
        return self.format()

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def _as_array(values, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one value per item, shaped (N,); got shape {a.shape}. Average or "
                         "flatten per image first.")
    if len(a) < 2:
        raise ValueError(f"{name} needs at least 2 items for a bootstrap interval; got {len(a)}.")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds {int((~np.isfinite(a)).sum())} NaN or infinite value(s); drop those "
                         "items (e.g. maps that are zero everywhere) before computing an interval.")
    return a


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level}.")


def _bootstrap(samples: tuple[np.ndarray, ...], statistic: Callable, paired: bool, level: float,
               n_resamples: int, seed: int) -> Interval:
    from scipy.stats import bootstrap

    _check_level(level)
    estimate = float(statistic(*samples, axis=-1))
    n = min(len(s) for s in samples)
    if all(np.all(s == s[0]) for s in samples):  # every resample gives the estimate
        return Interval(estimate, estimate, estimate, n, level)
    method = "BCa" if max(len(s) for s in samples) <= BCA_MAX_ITEMS else "percentile"
    # SciPy >= 1.15 takes `rng`; older versions the same generator as `random_state`.
    seed_arg = "rng" if "rng" in inspect.signature(bootstrap).parameters else "random_state"

    def run(how: str) -> tuple[float, float]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # BCa on a nearly constant sample: handled below
            res = bootstrap(samples, statistic, n_resamples=n_resamples, vectorized=True, paired=paired,
                            confidence_level=level, method=how, **{seed_arg: np.random.default_rng(seed)})
        return float(res.confidence_interval.low), float(res.confidence_interval.high)

    low, high = run(method)
    if not (math.isfinite(low) and math.isfinite(high)):  # BCa undefined (e.g. a nearly constant sample)
        low, high = run("percentile")
    return Interval(estimate, min(low, estimate), max(high, estimate), n, level)


def _mean(x, axis=-1):
    return np.mean(x, axis=axis)


def _mean_difference(a, b, axis=-1):
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def mean_interval(values: Sequence[float] | torch.Tensor | np.ndarray, level: float = LEVEL,
                  n_resamples: int = N_RESAMPLES, seed: int = 0) -> Interval:
    """The mean of `values` `(N,)` (one score per image) with its bootstrap interval."""
    return _bootstrap((_as_array(values, "values"),), _mean, False, level, n_resamples, seed)


def paired_difference(a, b, level: float = LEVEL, n_resamples: int = N_RESAMPLES, seed: int = 0) -> Interval:
    """mean(a) - mean(b) with its bootstrap interval, for `a[i]`, `b[i]` measured on the same item i (e.g.
    a method's score and the centre baseline's on the same image): items are resampled as pairs."""
    a, b = _as_array(a, "a"), _as_array(b, "b")
    if len(a) != len(b):
        raise ValueError(f"paired samples need one value of each per item; got {len(a)} and {len(b)}. For "
                         "independent samples use stats.difference.")
    return _bootstrap((a, b), _mean_difference, True, level, n_resamples, seed)


def difference(a, b, level: float = LEVEL, n_resamples: int = N_RESAMPLES, seed: int = 0) -> Interval:
    """mean(a) - mean(b) with its bootstrap interval, for two independent samples (e.g. scores on pets and
    on faces): each sample is resampled on its own."""
    return _bootstrap((_as_array(a, "a"), _as_array(b, "b")), _mean_difference, False, level, n_resamples, seed)


def balanced_accuracy(predicted, truth, axis: int = 0) -> np.ndarray:
    """Mean of the true-positive and true-negative rates of 0/1 `predicted` against 0/1 `truth` (arrays or
    tensors of one shape; values > 0.5 count as 1) along `axis`: `(K,)` for `(N, K)` attribute tables, a 0-d
    array for `(N,)`. Unlike accuracy it is 0.5 for a model that always answers "no" to a rare attribute.
    From logits: `balanced_accuracy(logits > 0, labels)`. A rate with no items to count is taken as 0."""
    p, t = (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v) for v in (predicted, truth))
    if p.shape != t.shape:
        raise ValueError(f"predicted and truth must have one shape; got {p.shape} and {t.shape}.")
    hit, pos = p > 0.5, t > 0.5
    tpr = np.sum(hit & pos, axis=axis) / np.maximum(np.sum(pos, axis=axis), 1)
    tnr = np.sum(~hit & ~pos, axis=axis) / np.maximum(np.sum(~pos, axis=axis), 1)
    return (tpr + tnr) / 2


def balanced_accuracy_interval(predicted, truth, level: float = LEVEL, n_resamples: int = N_RESAMPLES,
                               seed: int = 0) -> Interval:
    """Balanced accuracy (mean of the true-positive and true-negative rates) of 0/1 `predicted` against 0/1
    `truth`, both `(N,)`, with its bootstrap interval (pairs resampled). Needs both classes in `truth`."""
    p, t = _as_array(predicted, "predicted"), _as_array(truth, "truth")
    if len(p) != len(t):
        raise ValueError(f"predicted and truth need one value per item each; got {len(p)} and {len(t)}.")
    if not (np.isin(p, (0, 1)).all() and np.isin(t, (0, 1)).all()):
        raise ValueError("predicted and truth must hold 0/1 values; threshold logits first (logits > 0).")
    if t.min() == t.max():
        raise ValueError(f"truth holds only {int(t[0])}s: balanced accuracy needs positives and negatives.")
    return _bootstrap((p, t), lambda a, b, axis: balanced_accuracy(a, b, axis=axis), True, level, n_resamples, seed)


def verdict(diff: Interval, larger: str, smaller: str, same: str) -> str:
    """One of three phrases for a difference: `larger` when its interval lies above 0, `smaller` when below,
    `same` when it contains 0 (the data cannot tell)."""
    if diff.low > 0:
        return larger
    if diff.high < 0:
        return smaller
    return same
