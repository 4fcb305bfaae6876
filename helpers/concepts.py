"""Concept-level evidence: TCAV (Kim et al. 2018, ICML) through Captum, with random concepts and the t-test.

A *concept activation vector* (CAV) is the normal of a linear classifier that separates a layer's
activations on images showing a concept (drawn smiles, red lips) from those on random images. The TCAV
score of an output is the share of inputs whose output grows along the CAV (positive directional
derivative). A score means something only against chance: the concept is paired with several random sets
(`r_1 .. r_R`) and a random set `r_0` with the same ones; the two lists of R scores are compared with a
two-sided t-test (Kim et al.), and the concept counts when p < alpha (Bonferroni over the concepts tested).

`tcav` runs Captum's `captum.concept.TCAV` with a deterministic linear classifier (scikit-learn's
logistic regression on a fixed split: Captum's default shuffles with Python's global generator) in a
temporary folder (Captum caches activations and CAVs on disk by name; a stale cache would be reused).
"""
from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from . import checks


class _Images(Dataset):
    def __init__(self, x: torch.Tensor):
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def _linear_classifier():
    from captum.concept._utils.classifier import Classifier

    class LinearCAV(Classifier):
        """Logistic regression on flattened activations; every third example held out for the accuracy."""

        def __init__(self) -> None:
            self.coef, self.labels = None, None

        def train_and_eval(self, dataloader, **kwargs):
            from sklearn.linear_model import LogisticRegression

            xs, ys = zip(*dataloader)
            x = torch.cat(xs).flatten(1).double().cpu().numpy()
            y = torch.cat(ys).cpu().numpy()
            test = np.arange(len(y)) % 3 == 0
            lm = LogisticRegression(C=1.0, max_iter=2000).fit(x[~test], y[~test])
            self.coef, self.labels = torch.tensor(lm.coef_, dtype=torch.float32), lm.classes_.tolist()
            return {"accs": torch.tensor(float((lm.predict(x[test]) == y[test]).mean()))}

        def weights(self) -> torch.Tensor:
            return torch.stack([-self.coef[0], self.coef[0]]) if self.coef.shape[0] == 1 else self.coef

        def classes(self) -> list[int]:
            return self.labels

    return LinearCAV()


@dataclass(frozen=True)
class TcavResult:
    """TCAV of one concept for one output: `scores` `(R,)` against the R random sets, `random_scores` `(R,)`
    of a random set against the same ones (chance), their means, the two-sided t-test's `p_value`, and
    the CAVs' held-out accuracies `(R,)` (near 1: the layer separates the concept; near 0.5: it does not)."""

    concept: str
    scores: np.ndarray
    random_scores: np.ndarray
    p_value: float
    cav_accuracy: np.ndarray

    @property
    def mean(self) -> float:
        return float(self.scores.mean())

    @property
    def random_mean(self) -> float:
        return float(self.random_scores.mean())

    def significant(self, alpha: float = 0.05) -> bool:
        """Whether the concept's scores differ from chance's at level `alpha` (divide it by the number of tests)."""
        return bool(self.p_value < alpha)


def tcav(model: nn.Module, layer: str, inputs: torch.Tensor, target: int, concepts: Mapping[str, torch.Tensor],
         randoms: Sequence[torch.Tensor], batch_size: int = 32) -> dict[str, TcavResult]:
    """TCAV scores of output `target` on `inputs` `(N, 3, H, W)` in [0, 1] for each concept (name -> images
    `(M, 3, H, W)` showing it), each against random sets `randoms[1:]`, with `randoms[0]` against the same
    sets as chance (at least 3 random sets, so at least 2 scores per test). `layer`: a dotted module name
    of `model` (e.g. `"net.blocks.6"`). Returns name -> `TcavResult`."""
    from captum.concept import TCAV, Concept
    from scipy.stats import ttest_ind

    if len(randoms) < 3:
        raise ValueError(f"TCAV's significance test needs at least 3 random sets (one as chance); got {len(randoms)}.")
    checks.images(inputs, "inputs")
    if not isinstance(target, int):
        raise ValueError(f"target must be one output index (an int) for every input; got {checks.shape_text(target)}.")
    checks.targets(target, len(inputs), checks.output_classes(model, inputs))
    dict(model.named_modules())[layer]  # KeyError for an unknown layer, before any work
    device = next(model.parameters()).device
    ids = iter(range(10**6))

    def concept(name: str, x: torch.Tensor) -> Concept:
        return Concept(next(ids), name.replace(" ", "_"), DataLoader(_Images(x.to(device)), batch_size=batch_size))

    rand = [concept(f"random{i}", r) for i, r in enumerate(randoms)]
    cons = {name: concept(name, x) for name, x in concepts.items()}
    sets = [[c, r] for c in cons.values() for r in rand[1:]] + [[rand[0], r] for r in rand[1:]]
    # fork_rng: Captum's data loaders draw their base seeds from torch's global generator; restore it after
    with tempfile.TemporaryDirectory(prefix="tcav-") as folder, torch.random.fork_rng(devices=[]):
        t = TCAV(model, [layer], classifier=_linear_classifier(), save_path=folder + "/")
        scores = t.interpret(inputs.to(device), sets, target=int(target))
        acc = {"-".join(str(c.id) for c in s): float(t.cavs["-".join(str(c.id) for c in s)][layer].stats["accs"])
               for s in sets}

    def column(first: Concept) -> tuple[np.ndarray, np.ndarray]:
        keys = [f"{first.id}-{r.id}" for r in rand[1:]]
        return (np.array([float(scores[k][layer]["sign_count"][0]) for k in keys]), np.array([acc[k] for k in keys]))

    chance, _ = column(rand[0])
    out = {}
    for name, c in cons.items():
        s, a = column(c)
        with warnings.catch_warnings():  # nearly constant scores: SciPy warns, the p-value is still usable
            warnings.simplefilter("ignore", RuntimeWarning)
            p = float(ttest_ind(s, chance).pvalue)
        out[name] = TcavResult(name, s, chance, p if np.isfinite(p) else 1.0, a)
    return out
