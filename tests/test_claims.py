"""helpers.claims: a claim cell prints the measured value and the text's range, and fails under the strict
switch only where the text expects it to hold."""
import math

import pytest
import torch

import helpers
from helpers import claims


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.delenv(claims.CLAIMS_ENV, raising=False)
    prof = helpers.config.get_profile()
    helpers.set_profile("offline")
    yield
    helpers.config._PROFILE = prof


def _holds(*args, **kwargs) -> bool:
    assert claims.claim(*args, **kwargs) is None  # a claim cell shows only its printed lines
    return claims._LAST[-1]


def test_a_claim_prints_value_range_and_verdict(offline, capsys):
    assert _holds("the share is about a half", 0.47, 0.4, 0.6)
    assert not _holds("Grad-CAM beats the centre", -0.02, low=0.0)
    assert _holds("the cat map is on the left", True)
    assert _holds("a tensor works", torch.tensor(3.0), high=5)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "ok the share is about a half: measured 0.47, text 0.4 to 0.6: as described"
    assert out[1] == "!! Grad-CAM beats the centre: measured -0.02, text >= 0: DIFFERS FROM THE TEXT"
    assert "measured yes" in out[2] and "as described" in out[2]
    assert "<= 5" in out[3]


def test_strict_switch_raises_on_a_false_claim_only(offline, monkeypatch):
    monkeypatch.setenv(claims.CLAIMS_ENV, "strict")
    assert _holds("true", 0.5, 0, 1)
    with pytest.raises(claims.ClaimError, match="measured 2, the text says 0 to 1"):
        claims.claim("false", 2.0, 0, 1)
    with pytest.raises(AssertionError):  # nbval and pytest see an assertion
        claims.claim("a false yes/no", False)


def test_strict_switch_spares_profiles_where_the_claim_is_not_expected(monkeypatch, capsys):
    prof = helpers.config.get_profile()
    monkeypatch.setenv(claims.CLAIMS_ENV, "strict")
    helpers.set_profile("smoke")
    try:
        assert not _holds("only at full size", 2.0, 0, 1)  # prints, does not raise
        assert "not checked in `smoke`" in capsys.readouterr().out
        with pytest.raises(claims.ClaimError):
            claims.claim("expected even in smoke", 2.0, 0, 1, profiles=("smoke", "offline"))
    finally:
        helpers.config._PROFILE = prof


@pytest.mark.parametrize("args, kwargs, match", [
    (("x", math.nan, 0, 1), {}, "NaN"),
    (("x", 0.5, math.nan, 1), {}, "low is NaN"),
    (("x", 0.5, 1, 0), {}, "range is empty"),
    (("x", 0.5), {}, "give the range"),
    (("x", True, 0, 1), {}, "yes/no"),
    (("x", "0.5", 0, 1), {}, "real number"),
    (("", 0.5, 0, 1), {}, "non-empty"),
    (("x", 0.5, 0, 1), {"profiles": ("ofline",)}, "unknown profile"),
])
def test_bad_input_is_explained(offline, args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        claims.claim(*args, **kwargs)


def test_an_unknown_switch_value_is_explained(monkeypatch):
    monkeypatch.setenv(claims.CLAIMS_ENV, "yes")
    with pytest.raises(ValueError, match="COURSE_CLAIMS='yes'.*strict"):
        claims.strict()
