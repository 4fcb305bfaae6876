"""Claim cells: a notebook's "what to look for" stated as a check on this run's numbers.

The cell after a figure calls `claim(...)` once per measurable fact its text states. Each call prints one
line with the measured value and the range the text gives, and either "as described" or
"DIFFERS FROM THE TEXT". A claim names the profiles in which the text expects it to hold (by default
`offline` and `full`, which run the same course model at the same sizes); in other profiles (`smoke`: small
images, few iterations) it prints and never fails.

With `COURSE_CLAIMS=strict` a differing claim, in a profile where it is expected, raises `ClaimError`
(an `AssertionError`): CI executes every notebook in `offline` that way, so a false sentence fails CI.
"""
from __future__ import annotations

import math
import os
from numbers import Real
from typing import Iterable

from .config import get_profile

CLAIMS_ENV = "COURSE_CLAIMS"
DEFAULT_PROFILES = ("offline", "full")


_LAST: list[bool] = []  # whether the last claim held (for tests)


class ClaimError(AssertionError):
    """A claim of the text that this run's numbers contradict (raised only with `COURSE_CLAIMS=strict`)."""


def strict(environ: dict[str, str] | None = None) -> bool:
    """True when `COURSE_CLAIMS=strict`; False when unset or `print`. ValueError for other values."""
    env = os.environ if environ is None else environ
    value = env.get(CLAIMS_ENV, "").strip().lower()
    if value not in ("", "print", "strict"):
        raise ValueError(f"{CLAIMS_ENV}={value!r} is not understood; use 'strict' (a differing claim raises) or "
                         "'print', or unset it.")
    return value == "strict"


def _number(name: str, v: object) -> float:
    if isinstance(v, (bool, str, bytes)) or not isinstance(v, Real):
        if isinstance(v, (bool, str, bytes)):
            v = None
        try:  # a 0-d tensor or NumPy scalar
            v = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"claim: {name} must be a real number, got {type(v).__name__}; pass a float "
                             "(e.g. `tensor.item()`).") from None
    v = float(v)
    if math.isnan(v):
        raise ValueError(f"claim: {name} is NaN; a claim needs a measured number (check the cell that computed it).")
    return v


def _fmt(v: float, digits: int) -> str:
    return f"{v:.{digits}g}" if abs(v) < 10 ** digits else f"{v:,.0f}"


def claim(statement: str, value: float | bool, low: float | None = None, high: float | None = None, *,
          profiles: Iterable[str] = DEFAULT_PROFILES, digits: int = 3) -> None:
    """Check one fact the text states and print one line (nothing is returned, so a claim cell shows only
    its lines).

    statement: the fact in words, as the text says it (e.g. "Grad-CAM's deletion AUC is below the random
        order's").
    value: the measured number (a float, or a 0-d tensor), or a bool for a yes/no fact (then no range).
    low, high: the range the text gives, inclusive; one of them may be None (an open end). A number needs
        at least one.
    profiles: where the text expects the claim to hold; elsewhere it prints and never fails.
    digits: significant digits printed.

    Raises ValueError on a NaN or non-number value, on a missing or empty range, on a range given with a
    bool, and on an unknown profile name; `ClaimError` when the claim differs and `COURSE_CLAIMS=strict`
    in an expected profile.
    """
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError("claim: say in words what the text claims (a non-empty string).")
    profiles = tuple(profiles)
    from .config import PROFILES
    unknown = [p for p in profiles if p not in PROFILES]
    if unknown:
        raise ValueError(f"claim: unknown profile(s) {unknown}; use names from {PROFILES}.")
    if isinstance(value, bool):
        if low is not None or high is not None:
            raise ValueError("claim: a yes/no claim (a bool value) takes no range; pass low/high only with a number.")
        holds, measured, described = value, "yes" if value else "no", "yes"
    else:
        v = _number("the measured value", value)
        if low is None and high is None:
            raise ValueError("claim: give the range the text states (low, high or both) for a number.")
        lo = -math.inf if low is None else _number("low", low)
        hi = math.inf if high is None else _number("high", high)
        if lo > hi:
            raise ValueError(f"claim: the range is empty (low {lo} > high {hi}); give low <= high.")
        holds = lo <= v <= hi
        measured = _fmt(v, digits)
        described = (f"{_fmt(lo, digits)} to {_fmt(hi, digits)}" if low is not None and high is not None
                     else f">= {_fmt(lo, digits)}" if low is not None else f"<= {_fmt(hi, digits)}")
    name = get_profile().name
    expected = name in profiles
    verdict = "as described" if holds else "DIFFERS FROM THE TEXT"
    note = "" if expected else f" (not checked in `{name}`: the text describes other profiles)"
    _LAST.clear()
    _LAST.append(holds)
    print(f"{'ok' if holds else '!!'} {statement}: measured {measured}, text {described}: {verdict}{note}")
    if not holds and expected and strict():
        raise ClaimError(f"{statement}: measured {measured}, the text says {described} (profile {name}). Fix the "
                         "text or the code; the text must describe what this run shows.")
