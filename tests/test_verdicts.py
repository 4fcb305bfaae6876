"""helpers.verdicts: an answer only when every control passed; "cannot tell" with the reason otherwise
(a failed control, a map too coarse for the features)."""
import pytest

from helpers import stats, verdicts


def _ci(estimate, low, high):
    return stats.Interval(estimate, low, high, 10)


def test_controls_pass_so_the_answer_is_given():
    v = verdicts.decide("Q1?", "yes, larger on pets", [verdicts.above("pets' margin", _ci(0.2, 0.1, 0.3)),
                                                       verdicts.below("wrong place", _ci(-0.2, -0.3, -0.1))])
    assert v.told and v.answer == "yes, larger on pets" and v.reasons == ()
    text = str(v)
    assert text.splitlines()[0] == "Q1? yes, larger on pets" and "[ok] pets' margin (+0.20 [+0.10, +0.30])" in text


def test_a_failed_control_gives_cannot_tell_with_the_reason():
    v = verdicts.decide("Q2?", "no", [verdicts.above("Smiling shows the mouth", _ci(0.2, 0.1, 0.3)),
                                      verdicts.above("Eyeglasses shows the eyes", _ci(0.05, -0.02, 0.1))])
    assert not v.told and v.answer is None
    assert v.reasons == ("Eyeglasses shows the eyes: not so (+0.05 [-0.02, +0.10])",)
    assert str(v).startswith("Q2? cannot tell with this evidence: Eyeglasses shows the eyes") and "[FAILED]" in str(v)


def test_a_map_too_coarse_for_the_features_gives_cannot_tell():
    coarse, fine = verdicts.resolves(32, 35), verdicts.resolves(16, 35)
    assert not coarse.passed and fine.passed and "1.1 cells across" in coarse.detail
    v = verdicts.decide("Q2?", "no", [coarse, verdicts.control("the planted control", True)])
    assert not v.told and v.reasons[0].startswith("the map resolves features 35 px wide: not so")
    assert verdicts.decide("Q2?", "no", [fine]).answer == "no"
    with pytest.raises(ValueError):
        verdicts.resolves(0, 35)


def test_intervals_on_zero_pass_neither_above_nor_below_and_words_follow_the_sign():
    on_zero = _ci(0.01, -0.02, 0.04)
    assert not verdicts.above("x", on_zero).passed and not verdicts.below("x", on_zero).passed
    assert verdicts.above("x", _ci(0.6, 0.55, 0.7), 0.5, ".0%").detail == "60% [55%, 70%]"
    words = ("larger", "smaller", "not shown to differ")
    assert [verdicts.sign_word(c, *words) for c in (_ci(1, .5, 2), _ci(-1, -2, -.5), on_zero)] == list(words)
    assert verdicts.control("c", 1).passed is True and verdicts.decide("Q?", "a", []).told  # no controls: nothing failed
