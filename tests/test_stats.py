"""Tests of analysis.stats: closed forms, exact coverage, seeded coverage simulations.

Coverage tolerances: a coverage estimated from R replications has binomial standard deviation
sqrt(level (1 - level) / R); with R = 200 and level 0.95 that is 0.0154, and the tests accept
three of them (0.046) around the nominal level unless a test says otherwise.
"""

import math

import numpy as np
import pytest
from scipy import stats as sps

from analysis import stats

R = 200  # replications of each coverage simulation
LEVEL = 0.95
SD_COV = math.sqrt(LEVEL * (1 - LEVEL) / R)  # binomial sd of a coverage estimate: 0.0154
TOL_COV = 3 * SD_COV


# ---------------------------------------------------------------- Estimate


def test_estimate_rejects_nan_and_a_value_outside_its_interval():
    with pytest.raises(ValueError, match="NaN"):
        stats.Estimate(float("nan"), 0.0, 1.0, 0.95, 10)
    with pytest.raises(ValueError, match="outside its interval"):
        stats.Estimate(2.0, 0.0, 1.0, 0.95, 10)
    with pytest.raises(ValueError, match="level"):
        stats.Estimate(0.5, 0.0, 1.0, 1.5, 10)
    with pytest.raises(ValueError, match="n_points"):
        stats.Estimate(0.5, 0.0, 1.0, 0.95, 0)


def test_exact_is_a_zero_width_interval_at_level_one():
    e = stats.exact(3.5, n_points=7)
    assert (e.value, e.low, e.high, e.level, e.width) == (3.5, 3.5, 3.5, 1.0, 0.0)


# ---------------------------------------------------------------- bootstrap_ci


def test_bootstrap_mean_matches_the_t_interval_of_a_normal_mean():
    """Closed form: for a normal sample of n = 400 the t interval is the reference. The
    bootstrap's ends carry Monte-Carlo error (about 1.4 % of the half-width at 9 999
    resamples) and an O(1/n) difference from t; 10 % of the half-width allows for both."""
    x = np.random.default_rng(1).normal(3.0, 2.0, size=400)
    e = stats.bootstrap_ci(x)
    lo, hi = sps.t.interval(0.95, x.size - 1, loc=x.mean(), scale=sps.sem(x))
    half = (hi - lo) / 2
    assert e.value == pytest.approx(x.mean())
    assert abs(e.low - lo) < 0.1 * half and abs(e.high - hi) < 0.1 * half
    assert (e.n_points, e.n_seeds, e.degenerate) == (400, 1, False)
    assert "BCa" in e.method


def test_bootstrap_level_changes_the_width_as_the_normal_quantiles_say():
    x = np.random.default_rng(2).normal(size=400)
    w95 = stats.bootstrap_ci(x, level=0.95, method="percentile").width
    w50 = stats.bootstrap_ci(x, level=0.50, method="percentile").width
    ratio = sps.norm.ppf(0.975) / sps.norm.ppf(0.75)  # 2.906
    assert w95 / w50 == pytest.approx(ratio, rel=0.1)


def test_bootstrap_coverage_of_a_normal_mean_is_near_nominal():
    """Seeded simulation: R = 200 samples of n = 40 from N(1, 1); BCa at 95 %. Tolerance
    3 binomial sd (0.046); BCa's known small-sample undercoverage at n = 40 is about 1 pt."""
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(R):
        e = stats.bootstrap_ci(rng.normal(1.0, 1.0, size=40), n_resamples=999, rng=rng)
        hits += e.low <= 1.0 <= e.high
    assert abs(hits / R - LEVEL) <= TOL_COV, hits / R


def test_bootstrap_takes_any_statistic():
    x = np.random.default_rng(4).exponential(size=300)
    med = stats.bootstrap_ci(x, stat=np.median, n_resamples=1999)
    q90 = stats.bootstrap_ci(x, stat=lambda v: np.quantile(v, 0.9), n_resamples=999)
    assert med.value == pytest.approx(np.median(x)) and med.low < med.value < med.high
    assert q90.value == pytest.approx(np.quantile(x, 0.9)) and q90.low < q90.value < q90.high


def test_bootstrap_degenerate_inputs_give_documented_intervals_not_nan():
    one = stats.bootstrap_ci([2.0])
    assert one.degenerate and (one.low, one.high) == (-math.inf, math.inf)
    same = stats.bootstrap_ci([0.25] * 10)
    assert same.degenerate and (same.low, same.value, same.high) == (0.25, 0.25, 0.25)
    assert "no spread" in same.note
    with pytest.raises(ValueError, match="empty"):
        stats.bootstrap_ci([])
    with pytest.raises(ValueError, match="NaN"):
        stats.bootstrap_ci([1.0, float("nan"), 2.0])
    with pytest.raises(ValueError, match="level"):
        stats.bootstrap_ci([1.0, 2.0], level=95)


def test_bootstrap_is_reproducible_with_a_fixed_seed():
    x = np.random.default_rng(5).normal(size=50)
    assert stats.bootstrap_ci(x, rng=7) == stats.bootstrap_ci(x, rng=7)


# ---------------------------------------------------------------- differences


def test_paired_difference_is_narrower_than_unpaired_when_points_share_variation():
    """Two models on the same points: point difficulty (sd 1) is shared, the models differ by
    0.2 with noise sd 0.1. Pairing cancels the shared part: the paired interval is about
    sqrt(2) * 1 / 0.1 = 14 times narrower; we ask for 5 times."""
    rng = np.random.default_rng(6)
    point = rng.normal(size=300)
    a, b = point + 0.2 + rng.normal(0, 0.1, 300), point + rng.normal(0, 0.1, 300)
    p = stats.bootstrap_diff_ci(a, b, paired=True)
    u = stats.bootstrap_diff_ci(a, b, paired=False)
    assert p.value == pytest.approx(a.mean() - b.mean()) == u.value
    assert u.low < p.low and p.high < u.high
    assert u.width > 5 * p.width
    assert stats.bootstrap_ci(a, paired_with=b) == p
    assert "paired" in p.method and "unpaired" in u.method


def test_paired_mean_difference_matches_the_t_interval_of_the_differences():
    rng = np.random.default_rng(7)
    a, b = rng.normal(1, 1, 400), rng.normal(0.8, 1, 400)
    e = stats.bootstrap_diff_ci(a, b)
    d = a - b
    lo, hi = sps.t.interval(0.95, d.size - 1, loc=d.mean(), scale=sps.sem(d))
    assert abs(e.low - lo) < 0.1 * (hi - lo) / 2 and abs(e.high - hi) < 0.1 * (hi - lo) / 2


def test_paired_difference_checks_lengths_and_handles_constant_differences():
    with pytest.raises(ValueError, match="same length"):
        stats.bootstrap_diff_ci([1.0, 2.0], [1.0, 2.0, 3.0], paired=True)
    x = np.random.default_rng(8).normal(size=30)
    e = stats.bootstrap_diff_ci(x + 1.0, x)
    assert e.degenerate and e.low == e.high == pytest.approx(1.0)
    u = stats.bootstrap_diff_ci([1.0, 2.0, 3.0], [5.0], paired=False)
    assert u.degenerate and u.width == math.inf


# ---------------------------------------------------------------- binomial


@pytest.mark.parametrize(("k", "n"), [(0, 20), (3, 10), (17, 50), (50, 50), (1, 1)])
def test_binomial_ci_is_clopper_pearson(k, n):
    """Closed form: the Clopper-Pearson ends are beta quantiles."""
    e = stats.binomial_ci(k, n)
    lo = 0.0 if k == 0 else sps.beta.ppf(0.025, k, n - k + 1)
    hi = 1.0 if k == n else sps.beta.ppf(0.975, k + 1, n - k)
    assert e.value == k / n
    assert e.low == pytest.approx(lo, abs=1e-9) and e.high == pytest.approx(hi, abs=1e-9)


def test_binomial_ci_at_zero_and_all_events():
    """k = 0: the upper end is 1 - (alpha/2)^(1/n); k = n: the lower end is (alpha/2)^(1/n)."""
    assert stats.binomial_ci(0, 100).high == pytest.approx(1 - 0.025 ** (1 / 100))
    assert stats.binomial_ci(100, 100).low == pytest.approx(0.025 ** (1 / 100))


@pytest.mark.parametrize("n", [10, 37])
def test_clopper_pearson_coverage_is_at_least_nominal_exactly(n):
    """Exact coverage (no simulation): sum over k of P(k | p) for the k whose interval holds p."""
    cis = [stats.binomial_ci(k, n) for k in range(n + 1)]
    for p in np.linspace(0.01, 0.99, 37):
        cov = sum(sps.binom.pmf(k, n, p) for k, e in enumerate(cis) if e.low <= p <= e.high)
        assert cov >= LEVEL - 1e-9, (p, cov)


def test_binomial_upper_limit_rule_of_three():
    """Closed form: 0 events in n gives the one-sided upper limit 1 - (1 - level)^(1/n)."""
    for n in (1, 30, 100, 1000):
        e = stats.binomial_upper(0, n)
        assert (e.value, e.low) == (0.0, 0.0)
        assert e.high == pytest.approx(1 - 0.05 ** (1 / n))
    assert stats.binomial_upper(0, 1000).high == pytest.approx(3 / 1000, rel=0.01)
    assert stats.binomial_upper(4, 4).high == 1.0
    assert stats.binomial_upper(2, 50).high == pytest.approx(sps.beta.ppf(0.95, 3, 48))


def test_binomial_rejects_bad_counts():
    for k, n in [(-1, 5), (6, 5), (0, 0), (1.5, 4)]:
        with pytest.raises(ValueError):
            stats.binomial_ci(k, n)


# ---------------------------------------------------------------- wilcoxon


def test_wilcoxon_exact_p_value_when_every_difference_is_positive():
    """Closed form: n distinct positive differences, exact null: P(W+ = max) = 2^-n."""
    a = np.arange(1.0, 9.0)
    b = np.zeros(8)
    t = stats.wilcoxon_paired(a, b, alternative="greater")
    assert t.pvalue == pytest.approx(2.0**-8)
    assert stats.wilcoxon_paired(a, b).pvalue == pytest.approx(2 * 2.0**-8)
    assert (t.n, t.n_nonzero, t.median_diff) == (8, 8, 4.5)


def test_wilcoxon_all_zero_differences_and_few_pairs():
    t = stats.wilcoxon_paired([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (t.pvalue, t.n_nonzero) == (1.0, 0) and "zero" in t.note
    t = stats.wilcoxon_paired([1.0, 2.0, 3.5], [1.0, 2.5, 3.0])
    assert t.n_nonzero == 2 and "power" in t.note
    with pytest.raises(ValueError, match="same length"):
        stats.wilcoxon_paired([1.0], [1.0, 2.0])


# ---------------------------------------------------------------- two-stage bootstrap


def _crossed(rng, n_seeds, n_points, sd_seed, sd_point, sd_noise, mu=0.5):
    """y[s, i] = mu + seed effect + point effect (shared by the seeds) + noise."""
    return (mu + rng.normal(0, sd_seed, (n_seeds, 1)) + rng.normal(0, sd_point, (1, n_points))
            + rng.normal(0, sd_noise, (n_seeds, n_points)))


def test_two_stage_crossed_coverage_near_nominal_and_wider_than_points_only():
    """Seeded simulation, R = 200: 20 seeds x 30 shared points, seed sd 1, point sd 0.5, noise
    sd 1; the estimand is mu. The two-stage interval covers mu at 95 % +- 3 binomial sd. The
    points-only interval (the pooled points' normal interval, as if independent) ignores the seed
    variance, which here is 5/6 of the estimator's variance: it must undercover by more than
    3 sd and be narrower."""
    rng = np.random.default_rng(10)
    hits = hits_points = 0
    ratios = []
    for _ in range(R):
        y = _crossed(rng, 20, 30, 1.0, 0.5, 1.0)
        e = stats.two_stage_bootstrap(y, n_resamples=1000, rng=rng)
        pooled = y.ravel()  # points-only: the 600 values as if independent, normal interval
        p_low, p_high = sps.norm.interval(LEVEL, loc=pooled.mean(), scale=sps.sem(pooled))
        hits += e.low <= 0.5 <= e.high
        hits_points += p_low <= 0.5 <= p_high
        ratios.append(e.width / (p_high - p_low))
    assert abs(hits / R - LEVEL) <= TOL_COV, hits / R
    assert hits_points / R < LEVEL - TOL_COV, hits_points / R
    assert min(ratios) > 1.5, min(ratios)
    assert (e.n_seeds, e.n_points, e.degenerate, e.note) == (20, 30, False, "")


def test_two_stage_nested_coverage_near_nominal():
    """Seeded simulation, R = 200: 20 seeds, each with its own 30 points (ragged list input);
    seed sd 1, noise sd 1. Coverage of mu at 95 % +- 3 binomial sd."""
    rng = np.random.default_rng(11)
    hits = 0
    for _ in range(R):
        seeds = [0.5 + rng.normal() + rng.normal(0, 1, 30) for _ in range(20)]
        e = stats.two_stage_bootstrap(seeds, same_points=False, n_resamples=1000, rng=rng)
        hits += e.low <= 0.5 <= e.high
    assert abs(hits / R - LEVEL) <= TOL_COV, hits / R
    assert "nested" in e.method


def test_two_stage_resamples_points_when_seed_variance_is_zero():
    """No seed effect: the interval must still cover the point variance (a seeds-only
    bootstrap of 20 identical seed means would have zero width)."""
    rng = np.random.default_rng(12)
    pts = rng.normal(0, 1, 200)
    y = np.tile(pts, (20, 1))  # 20 seeds, identical outcomes on shared points
    e = stats.two_stage_bootstrap(y, rng=0)
    p = stats.bootstrap_ci(pts, method="percentile")
    assert e.width == pytest.approx(p.width, rel=0.15)


def test_two_stage_one_seed_says_so_and_matches_a_points_bootstrap():
    x = np.random.default_rng(13).normal(size=(1, 300))
    e = stats.two_stage_bootstrap(x, n_resamples=4000)
    p = stats.bootstrap_ci(x.ravel(), method="percentile", n_resamples=4000)
    assert e.n_seeds == 1 and "one seed" in e.note and not e.degenerate
    assert e.low == pytest.approx(p.low, abs=0.1 * p.width)
    assert e.high == pytest.approx(p.high, abs=0.1 * p.width)


def test_two_stage_degenerate_and_invalid_inputs():
    e = stats.two_stage_bootstrap([[1.0]])
    assert e.degenerate and e.width == math.inf
    e = stats.two_stage_bootstrap(np.full((3, 5), 0.7))
    assert e.degenerate and e.low == e.high == pytest.approx(0.7)
    e = stats.two_stage_bootstrap([[1.0], [2.0], [4.0]])
    assert "seeds only" in e.note and e.low < e.value < e.high
    with pytest.raises(ValueError, match="at least one seed"):
        stats.two_stage_bootstrap([])
    with pytest.raises(ValueError, match="equal point counts"):
        stats.two_stage_bootstrap([[1.0, 2.0], [1.0]], same_points=True)
    with pytest.raises(ValueError, match="NaN"):
        stats.two_stage_bootstrap([[1.0, float("nan")]])


def test_two_stage_ragged_input_defaults_to_nested_and_custom_stat():
    rng = np.random.default_rng(14)
    seeds = [rng.normal(size=n) for n in (20, 25, 30)]
    e = stats.two_stage_bootstrap(seeds, stat=np.median, n_resamples=500)
    assert "nested" in e.method and e.n_points == 20 and e.n_seeds == 3
    assert e.value == pytest.approx(np.mean([np.median(s) for s in seeds]))


def test_two_stage_ragged_path_agrees_with_the_equal_size_path():
    """The nested bootstrap loops over seeds when their point counts differ; adding one point
    to one of 20 seeds must leave the interval nearly unchanged (ends within 10 % of the
    width; Monte-Carlo error of the ends at 4 000 replicates is about 2 %)."""
    rng = np.random.default_rng(15)
    seeds = [rng.normal() + rng.normal(0, 1, 30) for _ in range(20)]
    eq = stats.two_stage_bootstrap(seeds, same_points=False, n_resamples=4000, rng=1)
    ragged = [*seeds[:-1], np.append(seeds[-1], seeds[-1][0])]
    rg = stats.two_stage_bootstrap(ragged, same_points=False, n_resamples=4000, rng=2)
    assert rg.low == pytest.approx(eq.low, abs=0.1 * eq.width)
    assert rg.high == pytest.approx(eq.high, abs=0.1 * eq.width)
