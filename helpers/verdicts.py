"""Verdicts that can say "cannot tell": an answer is printed only when its controls came out as planted.

A question about what a model uses is answered from measurements (intervals from `helpers.stats`); the
answer is worth printing only if the same measurements recover what is known (the *controls*: an
attribute drawn in its own region shows a margin there, one planted elsewhere shows the other place) and if
the map can resolve the features at all (its cells are small enough). `decide` gives the answer when every
control passed, and "cannot tell with this evidence" with the failed controls as the reason otherwise.

- `Control`: one check, passed or not, with the numbers behind it (`control`, `resolves`, `above`, `below`).
- `Verdict`: the question, the answer or None, the reasons, the controls; `str()` prints it in a few lines.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

CANNOT_TELL = "cannot tell with this evidence"


class IntervalLike(Protocol):
    """An estimate with a confidence interval (e.g. `helpers.stats.Interval`)."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class Control:
    """One control: `name` says what should come out (in words), `passed` whether it did, `detail` the
    numbers behind it."""

    name: str
    passed: bool
    detail: str = ""

    def __str__(self) -> str:
        return f"[{'ok' if self.passed else 'FAILED'}] {self.name}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class Verdict:
    """The answer to `question` (None: cannot tell), the `reasons` when it cannot, and every control."""

    question: str
    answer: str | None
    reasons: tuple[str, ...]
    controls: tuple[Control, ...]

    @property
    def told(self) -> bool:
        """Whether the evidence gave an answer."""
        return self.answer is not None

    def __str__(self) -> str:
        head = self.answer if self.answer is not None else f"{CANNOT_TELL}: " + "; ".join(self.reasons)
        return "\n".join([f"{self.question} {head}"] + [f"    {c}" for c in self.controls])


def control(name: str, passed: bool, detail: str = "") -> Control:
    """A control from a yes/no check (`passed` is converted to bool)."""
    return Control(name, bool(passed), detail)


def _fmt(ci: IntervalLike, spec: str) -> str:
    return f"{ci.estimate:{spec}} [{ci.low:{spec}}, {ci.high:{spec}}]"


def above(name: str, ci: IntervalLike, value: float = 0.0, spec: str = "+.2f") -> Control:
    """Passed when the whole interval `ci` lies above `value` (its lower end included: low > value)."""
    return Control(name, bool(ci.low > value), _fmt(ci, spec))


def below(name: str, ci: IntervalLike, value: float = 0.0, spec: str = "+.2f") -> Control:
    """Passed when the whole interval `ci` lies below `value` (high < value)."""
    return Control(name, bool(ci.high < value), _fmt(ci, spec))


def resolves(cell_px: float, feature_px: float, cells_per_feature: float = 2.0) -> Control:
    """Whether a map whose cells are `cell_px` pixels wide (image side / map side, > 0) can place a feature
    `feature_px` pixels wide (or tell two places that far apart): at least `cells_per_feature` cells across it."""
    if cell_px <= 0 or feature_px <= 0 or cells_per_feature <= 0:
        raise ValueError(f"cell_px, feature_px and cells_per_feature must be > 0; got {cell_px}, {feature_px}, "
                         f"{cells_per_feature}.")
    ratio = feature_px / cell_px
    return Control(f"the map resolves features {feature_px:.0f} px wide", ratio >= cells_per_feature,
                   f"cells of {cell_px:.0f} px: {ratio:.1f} cells across, {cells_per_feature:g} needed")


def decide(question: str, answer: str, controls: Sequence[Control]) -> Verdict:
    """`answer` when every control passed; otherwise no answer, with each failed control as a reason."""
    controls = tuple(controls)
    failed = tuple(f"{c.name}: not so" + (f" ({c.detail})" if c.detail else "") for c in controls if not c.passed)
    return Verdict(question, None if failed else answer, failed, controls)


def sign_word(ci: IntervalLike, positive: str, negative: str, neither: str) -> str:
    """`positive` when the interval lies above 0, `negative` when below, `neither` when it contains 0."""
    return positive if ci.low > 0 else negative if ci.high < 0 else neither
