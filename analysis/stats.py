"""Intervals and tests for the chapters' estimates, on :mod:`scipy.stats`.

Every function returns an :class:`Estimate` (a value, its interval, the confidence level, how many
test points and training seeds stand behind it, and the method), so a claim in
:mod:`analysis.claims` can be judged from the interval rather than from the point estimate alone.

* :func:`bootstrap_ci`: one sample, ``scipy.stats.bootstrap`` (BCa by default).
* :func:`bootstrap_diff_ci`: ``stat(a) - stat(b)``, paired (the same test points, resampled
  jointly: ``paired=True``) or unpaired (independent resampling).
* :func:`binomial_ci`: a rate ``k / n`` with the Clopper-Pearson interval
  (``scipy.stats.binomtest(...).proportion_ci``); :func:`binomial_upper` the one-sided upper
  limit used for "the bound never fails" (``k = 0``: ``1 - (1 - level) ** (1 / n)``).
* :func:`wilcoxon_paired`: the signed-rank test for a paired comparison of two distributions.
* :func:`two_stage_bootstrap`: a quantity that varies with the training seed *and* with the test
  points: resample the seeds, then the points (the same point indices for every seed when all
  seeds were evaluated on the same points, independent ones otherwise); percentile interval.

Degenerate inputs never crash and never give NaN:

* one observation: the interval is unbounded, ``(-inf, inf)``, and ``degenerate`` is set
  (one point says nothing about its own sampling spread);
* all observations equal (or a bootstrap distribution with no spread): a zero-width interval at
  the value, ``degenerate`` set (the bootstrap sees no spread; use :func:`binomial_ci` for rates
  of 0 or 1, which does give an interval);
* one seed in :func:`two_stage_bootstrap`: the interval covers the test points only, and
  ``note`` says so (``n_seeds == 1``).

NaN in the data, an empty sample or a level outside (0, 1) is a ``ValueError``.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import stats as sps

Stat = Callable[..., Any]

#: How many bootstrap resamples the helpers draw unless told otherwise.
N_RESAMPLES = 9999


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval.

    Attributes:
        value: the estimate (in the units of the data).
        low: lower end of the interval (``-inf`` when unbounded, e.g. one observation).
        high: upper end of the interval (``inf`` when unbounded).
        level: confidence level of the interval, in (0, 1); 1.0 for an exact value.
        n_points: number of test points (observations) behind the estimate, per seed.
        n_seeds: number of training seeds behind the estimate (1 when it does not vary with the
            seed, or when only one seed was run: see ``note``).
        method: how the interval was made (e.g. ``"bootstrap BCa"``, ``"Clopper-Pearson"``).
        degenerate: True when the data cannot give an interval of the stated kind (one
            observation, or no spread); ``note`` says which.
        note: plain-language caveat for readers (empty when there is none).
    """

    value: float
    low: float
    high: float
    level: float
    n_points: int
    n_seeds: int = 1
    method: str = ""
    degenerate: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        for name in ("value", "low", "high", "level"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
                raise TypeError(f"Estimate.{name} must be a number, got {type(v).__name__}")
            object.__setattr__(self, name, float(v))
        if any(math.isnan(getattr(self, n)) for n in ("value", "low", "high")):
            raise ValueError(f"Estimate has a NaN (value={self.value}, low={self.low}, "
                             f"high={self.high}); a NaN estimate cannot be judged")
        if not self.low <= self.value <= self.high:
            raise ValueError(f"Estimate value {self.value} is outside its interval "
                             f"[{self.low}, {self.high}]")
        if not 0 < self.level <= 1:
            raise ValueError(f"Estimate level must be in (0, 1], got {self.level}")
        if self.n_points < 1 or self.n_seeds < 1:
            raise ValueError(f"Estimate needs n_points >= 1 and n_seeds >= 1, got "
                             f"{self.n_points}, {self.n_seeds}")

    @property
    def interval(self) -> tuple[float, float]:
        """``(low, high)``."""
        return (self.low, self.high)

    @property
    def width(self) -> float:
        """``high - low`` (``inf`` when unbounded)."""
        return self.high - self.low


def exact(value: float, n_points: int = 1, n_seeds: int = 1, note: str = "") -> Estimate:
    """A value with no sampling uncertainty (an exact computation): a zero-width interval.

    Args:
        value: the computed value.
        n_points: how many points it was computed on (for the record).
        n_seeds: how many seeds (for the record).
        note: caveat for readers.

    Returns:
        ``Estimate(value, value, value, level=1.0, method="exact")``.
    """
    value = float(value)
    return Estimate(value, value, value, 1.0, int(n_points), int(n_seeds), "exact", False, note)


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")


def _as_sample(x: Any, name: str = "x") -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    if a.size == 0:
        raise ValueError(f"{name} is empty: no estimate without data")
    if np.isnan(a).any():
        raise ValueError(f"{name} contains NaN at {np.flatnonzero(np.isnan(a))[:5].tolist()}: "
                         "drop or explain those points before estimating")
    return a


def _axis_stat(stat: Stat) -> Callable[[np.ndarray, int], np.ndarray]:
    """``stat`` as a function ``f(x, axis)`` (numpy reductions take ``axis`` already)."""
    try:
        takes_axis = "axis" in inspect.signature(stat).parameters
    except (TypeError, ValueError):  # builtins without a signature
        takes_axis = False
    if takes_axis:
        return lambda x, axis: np.asarray(stat(x, axis=axis), dtype=float)
    return lambda x, axis: np.apply_along_axis(stat, axis, x).astype(float)


def _stat_name(stat: Stat) -> str:
    return getattr(stat, "__name__", type(stat).__name__)


def _from_bootstrap(value: float, data: tuple[np.ndarray, ...], fn: Callable, *, paired: bool,
                    level: float, method: str, n_resamples: int, rng: Any,
                    n_points: int, label: str) -> Estimate:
    """Run ``scipy.stats.bootstrap`` and turn its result into an :class:`Estimate`."""
    if min(len(d) for d in data) < 2:
        return Estimate(value, -math.inf, math.inf, level, n_points, 1, f"{label} {method}",
                        True, "one observation: no sampling interval (unbounded)")
    if all(np.ptp(d) == 0 for d in data):
        return Estimate(value, value, value, level, n_points, 1, f"{label} {method}", True,
                        "all values equal: the bootstrap sees no spread (zero-width interval)")
    gen = np.random.default_rng(rng)
    used, note = method, ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", sps.DegenerateDataWarning)
        res = sps.bootstrap(data, fn, paired=paired, vectorized=True, confidence_level=level,
                            method=method, n_resamples=n_resamples, rng=gen)
        low, high = (float(v) for v in (res.confidence_interval.low,
                                        res.confidence_interval.high))
        if (math.isnan(low) or math.isnan(high)) and method.lower() != "percentile":
            used, note = "percentile", f"{method} not computable on these data: percentile used"
            res = sps.bootstrap(data, fn, paired=paired, vectorized=True,
                                confidence_level=level, method="percentile",
                                n_resamples=n_resamples, rng=gen)
            low, high = (float(v) for v in (res.confidence_interval.low,
                                            res.confidence_interval.high))
    if math.isnan(low) or math.isnan(high) or _no_spread(res.bootstrap_distribution, value):
        return Estimate(value, value, value, level, n_points, 1, f"{label} {used}", True,
                        "the bootstrap distribution has no spread (zero-width interval)")
    # BCa/percentile ends can fall a hair inside the point estimate on very skewed data
    return Estimate(value, min(low, value), max(high, value), level, n_points, 1,
                    f"{label} {used}", False, note)


def _no_spread(replicates: np.ndarray, value: float) -> bool:
    """True when bootstrap replicates differ only by rounding (relative 1e-12)."""
    return bool(np.ptp(replicates) <= 1e-12 * max(1.0, abs(value)))


def _mean_diff(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def bootstrap_ci(x: Any, stat: Stat = np.mean, level: float = 0.95, method: str = "BCa",
                 paired_with: Any = None, n_resamples: int = N_RESAMPLES,
                 rng: int | np.random.Generator | None = 0) -> Estimate:
    """Bootstrap confidence interval of ``stat(x)`` (``scipy.stats.bootstrap``).

    Args:
        x: the sample, shape ``(n,)`` (flattened otherwise); NaN is an error.
        stat: the statistic; a numpy reduction taking ``axis`` (``np.mean``, ``np.median``) is
            vectorised, any other ``f(1-D array) -> float`` is applied row by row.
        level: confidence level, in (0, 1).
        method: ``"BCa"`` (default), ``"percentile"`` or ``"basic"``; when BCa cannot be
            computed the percentile interval is used and ``note`` says so.
        paired_with: a second sample of the same length measured on the same points; the
            estimate is then the paired difference ``stat(x) - stat(paired_with)``
            (:func:`bootstrap_diff_ci` with ``paired=True``).
        n_resamples: bootstrap resamples.
        rng: seed or generator (a fixed default keeps checked cells reproducible).

    Returns:
        An :class:`Estimate` with ``n_points = n``, ``n_seeds = 1``.

    Example:
        >>> e = bootstrap_ci([1.0, 2.0, 3.0, 4.0], n_resamples=999)
        >>> e.low < e.value == 2.5 < e.high
        True
    """
    if paired_with is not None:
        return bootstrap_diff_ci(x, paired_with, stat, paired=True, level=level, method=method,
                                 n_resamples=n_resamples, rng=rng)
    _check_level(level)
    a = _as_sample(x)
    f = _axis_stat(stat)
    value = float(f(a, -1))
    return _from_bootstrap(value, (a,), lambda s, axis=-1: f(s, axis), paired=False,
                           level=level, method=method, n_resamples=n_resamples, rng=rng,
                           n_points=a.size, label=f"bootstrap of {_stat_name(stat)},")


def bootstrap_diff_ci(a: Any, b: Any, stat: Stat = np.mean, paired: bool = True,
                      level: float = 0.95, method: str = "BCa",
                      n_resamples: int = N_RESAMPLES,
                      rng: int | np.random.Generator | None = 0) -> Estimate:
    """Bootstrap interval of the difference ``stat(a) - stat(b)``.

    Args:
        a: first sample (e.g. per-point outcomes of model A), shape ``(n,)``.
        b: second sample; with ``paired=True`` the same length as ``a`` and measured on the
            same points (``a[i]`` and ``b[i]`` belong together).
        stat: statistic, as in :func:`bootstrap_ci`.
        paired: resample the points jointly (``scipy.stats.bootstrap(paired=True)``: the
            variation common to both models cancels); False resamples each sample on its own.
        level: confidence level, in (0, 1).
        method: ``"BCa"`` (default), ``"percentile"`` or ``"basic"``.
        n_resamples: bootstrap resamples.
        rng: seed or generator.

    Returns:
        An :class:`Estimate` of ``stat(a) - stat(b)``; ``n_points`` is the (smaller) sample size.

    Raises:
        ValueError: paired samples of different lengths, NaN, or an empty sample.
    """
    _check_level(level)
    x, y = _as_sample(a, "a"), _as_sample(b, "b")
    if paired and x.size != y.size:
        raise ValueError(f"paired samples need the same length, got {x.size} and {y.size}")
    f = _axis_stat(stat)
    value = float(f(x, -1) - f(y, -1))
    fn = _mean_diff if stat is np.mean else (lambda s, t, axis=-1: f(s, axis) - f(t, axis))
    kind = "paired" if paired else "unpaired"
    return _from_bootstrap(value, (x, y), fn, paired=paired, level=level, method=method,
                           n_resamples=n_resamples, rng=rng, n_points=min(x.size, y.size),
                           label=f"{kind} bootstrap of {_stat_name(stat)} difference,")


def binomial_ci(k: int, n: int, level: float = 0.95, method: str = "exact") -> Estimate:
    """A rate ``k / n`` with its binomial interval (``scipy.stats.binomtest``).

    Args:
        k: number of events (successes, violations, broken points), ``0 <= k <= n``.
        n: number of trials (points).
        level: confidence level, in (0, 1).
        method: ``"exact"`` (Clopper-Pearson, default), ``"wilson"`` or ``"wilsoncc"``.

    Returns:
        ``Estimate(k / n, low, high, ...)``; at ``k = 0`` the interval starts at 0, at ``k = n``
        it ends at 1 (never degenerate: a binomial interval exists for every ``n >= 1``).

    Example:
        >>> e = binomial_ci(0, 100)
        >>> e.low, round(e.high, 4)
        (0.0, 0.0362)
    """
    k, n = _check_counts(k, n)
    _check_level(level)
    ci = sps.binomtest(k, n).proportion_ci(confidence_level=level, method=method)
    name = {"exact": "Clopper-Pearson"}.get(method, method)
    return Estimate(k / n, float(ci.low), float(ci.high), level, n, 1, f"binomial {name}")


def binomial_upper(k: int, n: int, level: float = 0.95) -> Estimate:
    """One-sided (Clopper-Pearson) upper confidence limit of a rate ``k / n``.

    This is the "the bound never fails" interval: with ``k = 0`` violations in ``n`` points the
    violation rate is below ``1 - (1 - level) ** (1 / n)`` (about ``3 / n`` at 95 %).

    Args:
        k: number of events, ``0 <= k <= n``.
        n: number of trials.
        level: one-sided confidence level, in (0, 1).

    Returns:
        ``Estimate(k / n, 0, upper, ...)``.
    """
    k, n = _check_counts(k, n)
    _check_level(level)
    ci = sps.binomtest(k, n, alternative="less").proportion_ci(confidence_level=level,
                                                               method="exact")
    return Estimate(k / n, 0.0, float(ci.high), level, n, 1,
                    "binomial Clopper-Pearson, one-sided upper limit")


def _check_counts(k: Any, n: Any) -> tuple[int, int]:
    if isinstance(k, float) and not float(k).is_integer():
        raise ValueError(f"k must be a whole number, got {k}")
    if isinstance(n, float) and not float(n).is_integer():
        raise ValueError(f"n must be a whole number, got {n}")
    k, n = int(k), int(n)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, n] = [0, {n}], got {k}")
    return k, n


@dataclass(frozen=True)
class RankTest:
    """Result of a paired signed-rank test.

    Attributes:
        statistic: the Wilcoxon statistic (``scipy.stats.wilcoxon``); 0 when no difference is
            non-zero.
        pvalue: its p-value (1.0 when no difference is non-zero).
        n: number of pairs.
        n_nonzero: pairs whose difference is not zero (the test uses only these).
        median_diff: median of ``a - b``.
        alternative: ``"two-sided"``, ``"greater"`` (``a`` tends to exceed ``b``) or ``"less"``.
        note: caveat (e.g. all differences zero).
    """

    statistic: float
    pvalue: float
    n: int
    n_nonzero: int
    median_diff: float
    alternative: str
    note: str = ""


def wilcoxon_paired(a: Any, b: Any, alternative: str = "two-sided") -> RankTest:
    """Wilcoxon signed-rank test of paired samples (the same points under two conditions).

    Zero differences are dropped (``zero_method="wilcox"``). When every difference is zero the
    test has nothing to rank: ``pvalue = 1.0`` and ``note`` says so.

    Args:
        a: first sample, shape ``(n,)``.
        b: second sample, same shape, same points.
        alternative: ``"two-sided"``, ``"greater"`` or ``"less"`` (about ``a - b``).

    Returns:
        A :class:`RankTest`.

    Raises:
        ValueError: different lengths, NaN or empty samples.
    """
    x, y = _as_sample(a, "a"), _as_sample(b, "b")
    if x.size != y.size:
        raise ValueError(f"paired samples need the same length, got {x.size} and {y.size}")
    d = x - y
    nz = int(np.count_nonzero(d))
    med = float(np.median(d))
    if nz == 0:
        return RankTest(0.0, 1.0, x.size, 0, med, alternative,
                        "all differences are zero: nothing to rank")
    res = sps.wilcoxon(x, y, zero_method="wilcox", alternative=alternative)
    note = "" if nz >= 6 else f"only {nz} non-zero differences: the test has little power"
    return RankTest(float(res.statistic), float(res.pvalue), x.size, nz, med, alternative, note)


def two_stage_bootstrap(values_per_seed: Sequence[Any] | np.ndarray, stat: Stat = np.mean,
                        level: float = 0.95, same_points: bool | None = None,
                        n_resamples: int = 2000,
                        rng: int | np.random.Generator | None = 0) -> Estimate:
    """Interval for a quantity that varies with the training seed and with the test points.

    The estimate is the mean over seeds of ``stat`` over each seed's points (e.g. the mean over
    seeds of the robust accuracy). Each bootstrap replicate draws the seeds with replacement,
    then the points with replacement: with ``same_points`` (every seed evaluated on the same
    test points, the usual case) one set of point indices is drawn per replicate and used for
    every seed, so point difficulty shared by the seeds is resampled once (a crossed, "pigeonhole"
    bootstrap); otherwise each drawn seed's points are resampled on their own (a nested
    bootstrap). The interval is the percentile interval of the replicates.

    For a paired comparison of two models trained with the same seeds and evaluated on the same
    points, pass the per-seed, per-point differences ``a[s, i] - b[s, i]``.

    Args:
        values_per_seed: one array of per-point values per seed: a 2-D array ``(n_seeds,
            n_points)`` or a list of 1-D arrays (lengths may differ when ``same_points`` is
            False).
        stat: per-seed statistic over points (numpy reduction with ``axis``, or any
            ``f(1-D array) -> float``).
        level: confidence level, in (0, 1).
        same_points: whether all seeds share the same test points (default: True when all seeds
            have the same number of points).
        n_resamples: bootstrap replicates.
        rng: seed or generator.

    Returns:
        An :class:`Estimate` with ``n_seeds`` and ``n_points`` (per seed; the smallest when they
        differ). With one seed only the points are resampled and ``note`` says the interval does
        not cover seed-to-seed variation; with one point per seed only the seeds are.

    Raises:
        ValueError: no seed, an empty or NaN seed, or ``same_points`` with unequal lengths.
    """
    _check_level(level)
    seeds = [_as_sample(v, f"seed {i}") for i, v in enumerate(values_per_seed)]
    if not seeds:
        raise ValueError("two_stage_bootstrap needs at least one seed")
    sizes = [s.size for s in seeds]
    if same_points is None:
        same_points = len(set(sizes)) == 1
    if same_points and len(set(sizes)) != 1:
        raise ValueError(f"same_points needs equal point counts per seed, got {sizes}")
    f = _axis_stat(stat)
    n_seeds, n_min = len(seeds), min(sizes)
    value = float(np.mean([f(s, -1) for s in seeds]))
    design = "crossed" if same_points else "nested"
    method = f"two-stage bootstrap ({design}: seeds, then points), percentile"
    if n_seeds == 1 and n_min == 1:
        return Estimate(value, -math.inf, math.inf, level, 1, 1, method, True,
                        "one seed and one point: no sampling interval (unbounded)")
    if all(np.ptp(s) == 0 for s in seeds) and len({float(s[0]) for s in seeds}) == 1:
        return Estimate(value, value, value, level, n_min, n_seeds, method, True,
                        "all values equal: the bootstrap sees no spread (zero-width interval)")
    gen = np.random.default_rng(rng)
    reps = np.empty(n_resamples)
    chunk = max(1, int(2e6 // max(1, n_seeds * max(sizes))))
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        pick = gen.integers(0, n_seeds, size=(b, n_seeds))
        if same_points:
            x = np.stack(seeds)  # (S, n)
            pts = gen.integers(0, n_min, size=(b, n_min))
            sample = x[pick[:, :, None], pts[:, None, :]]  # (b, S, n)
            per_seed = f(sample, -1)  # (b, S)
        elif len(set(sizes)) == 1:  # nested, equal sizes: an independent point draw per slot
            x = np.stack(seeds)
            pts = gen.integers(0, n_min, size=(b, n_seeds, n_min))
            per_seed = f(x[pick[:, :, None], pts], -1)
        else:
            per_seed = np.empty((b, n_seeds))
            for s, xs in enumerate(seeds):
                where = np.nonzero(pick == s)
                if where[0].size:
                    pts = gen.integers(0, xs.size, size=(where[0].size, xs.size))
                    per_seed[where] = f(xs[pts], -1)
        reps[start:start + b] = per_seed.mean(axis=1)
    alpha = (1 - level) / 2
    low, high = (float(v) for v in np.quantile(reps, [alpha, 1 - alpha]))
    note = ""
    if n_seeds == 1:
        note = "one seed: the interval covers the test points only, not seed-to-seed variation"
    elif n_min == 1:
        note = "one point per seed: the interval covers the seeds only"
    est = Estimate(value, min(low, value), max(high, value), level, n_min, n_seeds, method,
                   False, note)
    if _no_spread(reps, value):
        est = replace(est, degenerate=True,
                      note="the bootstrap distribution has no spread (zero-width interval)")
    return est
