"""helpers.stats: bootstrap intervals on data with a known answer (planted means and differences), checked
against normal-theory intervals and scikit-learn's balanced accuracy."""
import numpy as np
import pytest
import torch

from helpers import stats

FAST = 999  # resamples: enough for the checks below, and quick


def _normal(n, mean, sd, seed):
    return np.random.default_rng(seed).normal(mean, sd, size=n)


def test_mean_interval_matches_normal_theory_and_covers_the_planted_mean():
    x = _normal(500, 0.3, 0.2, seed=1)
    ci = stats.mean_interval(x, n_resamples=FAST)
    se = x.std(ddof=1) / np.sqrt(len(x))
    assert ci.estimate == pytest.approx(x.mean())
    assert ci.low < 0.3 < ci.high
    # the bootstrap interval of a mean is close to mean +- 1.96 standard errors for a normal sample
    assert ci.low == pytest.approx(x.mean() - 1.96 * se, abs=0.3 * se)
    assert ci.high == pytest.approx(x.mean() + 1.96 * se, abs=0.3 * se)
    assert ci.n == 500 and ci.excludes(0.0) and not ci.excludes(0.3)
    assert str(ci) == f"{ci.estimate:.2f} [{ci.low:.2f}, {ci.high:.2f}]"


def test_mean_interval_coverage_is_near_its_level():
    # 120 samples of 40 skewed values (exponential, mean 1): about 95% of the intervals hold the mean
    rng = np.random.default_rng(7)
    hits = [stats.mean_interval(rng.exponential(1.0, size=40), n_resamples=FAST, seed=i).excludes(1.0)
            for i in range(120)]
    coverage = 1 - np.mean(hits)
    assert 0.86 <= coverage <= 1.0, coverage


def test_paired_difference_finds_a_planted_difference_that_independent_resampling_cannot():
    # each image has its own difficulty (sd 0.3), shared by the method and the baseline; the method adds 0.05
    rng = np.random.default_rng(2)
    image = rng.normal(0.4, 0.3, size=200)
    baseline = image + rng.normal(0, 0.02, size=200)
    method = image + 0.05 + rng.normal(0, 0.02, size=200)
    paired = stats.paired_difference(method, baseline, n_resamples=FAST)
    assert paired.low > 0 and paired.low < 0.05 < paired.high and paired.excludes(0)
    unpaired = stats.difference(method, baseline, n_resamples=FAST)
    assert not unpaired.excludes(0), "ignoring the pairing drowns 0.05 in the images' own spread"
    assert stats.verdict(paired, "larger", "smaller", "same") == "larger"
    assert stats.verdict(unpaired, "larger", "smaller", "same") == "same"


def test_paired_difference_includes_zero_when_nothing_is_planted():
    rng = np.random.default_rng(3)
    image = rng.normal(0.4, 0.3, size=300)
    a, b = image + rng.normal(0, 0.05, size=300), image + rng.normal(0, 0.05, size=300)
    d = stats.paired_difference(a, b, n_resamples=FAST)
    assert not d.excludes(0.0)
    assert d.estimate == pytest.approx(a.mean() - b.mean())


def test_independent_difference_large_planted_excludes_zero_none_includes_it():
    pets, faces = _normal(500, 0.21, 0.15, seed=4), _normal(400, 0.05, 0.15, seed=5)
    d = stats.difference(pets, faces, n_resamples=FAST)
    assert d.low > 0 and d.low < 0.16 < d.high and d.n == 400
    se = np.sqrt(pets.var(ddof=1) / 500 + faces.var(ddof=1) / 400)
    assert d.high - d.low == pytest.approx(2 * 1.96 * se, rel=0.2)
    assert stats.verdict(stats.difference(faces, pets, n_resamples=FAST), "larger", "smaller", "same") == "smaller"
    same = stats.difference(_normal(300, 0.1, 0.15, seed=6), _normal(250, 0.1, 0.15, seed=8), n_resamples=FAST)
    assert not same.excludes(0.0)


def test_balanced_accuracy_interval_agrees_with_sklearn_and_covers_the_planted_rates():
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(9)
    truth = (rng.random(800) < 0.1).astype(int)  # a rare attribute: 10% positives
    # planted true-positive rate 0.9 and true-negative rate 0.7: balanced accuracy 0.8
    pred = np.where(truth == 1, rng.random(800) < 0.9, rng.random(800) >= 0.7).astype(int)
    ci = stats.balanced_accuracy_interval(torch.tensor(pred), torch.tensor(truth), n_resamples=FAST)
    assert ci.estimate == pytest.approx(balanced_accuracy_score(truth, pred))
    assert ci.low < 0.8 < ci.high
    assert ci.high - ci.low > 0.05, "80 positives cannot pin the true-positive rate down to a few points"
    always_no = stats.balanced_accuracy_interval(np.zeros(800), truth, n_resamples=FAST)
    assert always_no.estimate == 0.5 and always_no.low == always_no.high == 0.5


def test_constant_samples_give_a_zero_width_interval():
    ci = stats.mean_interval(torch.full((50,), 0.25), n_resamples=FAST)
    assert (ci.estimate, ci.low, ci.high) == (0.25, 0.25, 0.25)
    d = stats.paired_difference(np.ones(20), np.ones(20), n_resamples=FAST)
    assert (d.low, d.high) == (0.0, 0.0)


def test_intervals_are_reproducible_and_leave_the_global_generators_alone():
    x = _normal(100, 0.0, 1.0, seed=10)
    torch.manual_seed(0)
    np.random.seed(0)
    before = (torch.rand(1).item(), np.random.rand())
    torch.manual_seed(0)
    np.random.seed(0)
    a, b = stats.mean_interval(x, n_resamples=FAST), stats.mean_interval(x, n_resamples=FAST)
    assert a == b
    assert (torch.rand(1).item(), np.random.rand()) == before
    assert stats.mean_interval(x, n_resamples=FAST, seed=1) != a


def test_large_samples_use_the_percentile_method():
    x = _normal(stats.BCA_MAX_ITEMS + 500, 1.0, 1.0, seed=11)
    ci = stats.mean_interval(x, n_resamples=FAST)
    se = x.std(ddof=1) / np.sqrt(len(x))
    assert ci.high - ci.low == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"\(N,\)"):
        stats.mean_interval(np.ones((3, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        stats.mean_interval([0.5])
    with pytest.raises(ValueError, match="NaN"):
        stats.mean_interval([0.1, float("nan"), 0.3])
    with pytest.raises(ValueError, match="one value of each"):
        stats.paired_difference([0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(ValueError, match="0/1"):
        stats.balanced_accuracy_interval([0.2, 0.7], [0, 1])
    with pytest.raises(ValueError, match="positives and negatives"):
        stats.balanced_accuracy_interval([0, 1, 1], [1, 1, 1])
    with pytest.raises(ValueError, match="level"):
        stats.mean_interval([0.1, 0.2, 0.3], level=95)
