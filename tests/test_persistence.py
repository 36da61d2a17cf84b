"""Persistence: Monte Carlo stability, the Bracketing Algorithm and the closed forms (spec §5.1-3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from analysis import persistence as P


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small ops: one thread avoids thread-pool contention on a loaded machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _wedge_point(k: int, d: float, n: int) -> torch.Tensor:
    x = torch.zeros(1, n)
    x[0, :k] = d
    return x


def _sigma_se(k: int, d: float, gamma: float, n_samples: int) -> float:
    """Standard error of the persistence estimate: SE of p̂ over |dp/dσ| at σ*."""
    s = P.wedge_persistence(k, d, gamma)
    u = d / s
    dp = k * stats.norm.cdf(u) ** (k - 1) * stats.norm.pdf(u) * d / s**2
    return math.sqrt(gamma * (1 - gamma) / n_samples) / dp


def test_wedge_closed_form_matches_figure_8_and_definition():
    # the document's Fig 8 values (gamma = 0.7, d = 1)
    fig8 = {1: 1.907, 2: 1.020, 3: 0.823, 5: 0.674, 10: 0.552, 20: 0.475, 50: 0.408, 100: 0.372}
    for k, v in fig8.items():
        s = P.wedge_persistence(k, 1.0, 0.7)
        assert abs(s - v) < 1.5e-3, (k, s, v)
        # definition: p(sigma*) = gamma
        assert abs(P.wedge_stability(k, 1.0, s) - 0.7) < 1e-12
    # linear in d, decreasing in k
    assert P.wedge_persistence(3, 2.5) == pytest.approx(2.5 * P.wedge_persistence(3, 1.0), 1e-12)
    vals = [P.wedge_persistence(k, 1.0) for k in range(1, 30)]
    assert all(a > b for a, b in zip(vals, vals[1:]))
    # gamma <= 2^-k: never unstable
    assert P.wedge_persistence(2, 1.0, 0.25) == math.inf
    with pytest.raises(ValueError):
        P.WedgeClassifier(10)(torch.zeros(1, 3))
    with pytest.raises(ValueError):
        P.wedge_persistence(0, 1.0)
    with pytest.raises(ValueError):
        P.wedge_persistence(1, 1.0, 1.2)


def test_stability_estimator_half_space_within_4_se():
    n, d = 784, 0.8
    g = torch.Generator().manual_seed(1)
    w = torch.randn(n, generator=g, dtype=torch.float64)
    w /= w.norm()
    model = P.HalfSpaceClassifier(w)
    x = (d * w).view(1, n)  # distance d from the plane w.x = 0, in class 1
    N = 4000
    for s in (0.2, 0.5, 1.0, 2.0, 5.0):
        p_hat = P.fraction_stable(model, x, s, N, seed=int(10 * s)).item()
        p = stats.norm.cdf(d / s)
        se = math.sqrt(p * (1 - p) / N)
        assert abs(p_hat - p) < 4 * se + 1e-12, (s, p_hat, p)


@pytest.mark.parametrize("n", [3, 10, 784])
def test_persistence_of_wedge_common_random_numbers(n):
    gamma, N = 0.7, 20_000
    for k in [k for k in (1, 3, 10) if k <= n]:  # the spec's (k=10, n=3) is not a wedge
        model = P.WedgeClassifier(k)
        ds = (0.5, 2.0)
        x = torch.cat([_wedge_point(k, d, n) for d in ds])
        res = P.persistence(model, x, gamma, N, common_random_numbers=True, precision=1e-3,
                            max_steps=40, seed=k, progress=False)
        for j, d in enumerate(ds):
            exact = P.wedge_persistence(k, d, gamma)
            tol = 4 * _sigma_se(k, d, gamma, N)
            assert abs(res.sigma[j].item() - exact) < tol, (k, d, n, res.sigma[j].item(), exact)
            # sharp: at most 7 % relative (k = 1: SE 1.8 %; the spec's flat 2 % would be ~1 SE)
            assert tol / exact < 0.075


def test_persistence_fresh_samples_and_defaults():
    gamma, N, n = 0.7, 2000, 50
    for k in (1, 10):
        model = P.WedgeClassifier(k)
        x = _wedge_point(k, 1.0, n)
        res = P.persistence(model, x, gamma, N, seed=3, progress=False)  # document's defaults
        exact = P.wedge_persistence(k, 1.0, gamma)
        # precision 0.01 on p plus ~4 SE of Monte Carlo noise, in sigma units
        tol = 4 * _sigma_se(k, 1.0, gamma, N) + 0.01 * _sigma_se(k, 1.0, gamma, 1) / math.sqrt(
            gamma * (1 - gamma))
        assert abs(res.sigma.item() - exact) < tol, (k, res.sigma.item(), exact, tol)
        assert res.evaluations.item() >= 3


def test_persistence_infinite_and_zero_without_hanging():
    # gamma <= 2^-k: p(sigma) -> 2^-k >= gamma, the range finder gives up -> +inf
    model = P.WedgeClassifier(2)
    x = _wedge_point(2, 1.0, 5)
    res = P.persistence(model, x, 0.2, 500, common_random_numbers=True, progress=False)
    assert res.sigma.item() == math.inf
    # a point sitting on the boundary is unstable at every sigma -> 0
    model1 = P.WedgeClassifier(1)
    x0 = torch.zeros(1, 5)
    x0[0, 0] = 1e-12
    res0 = P.persistence(model1, x0, 0.9, 500, labels=torch.tensor([1]),
                         common_random_numbers=True, progress=False)
    assert res0.sigma.item() < 1e-6


def test_class_frequencies_rows_and_half_space_law():
    w = torch.zeros(10)
    w[0] = 1.0
    model = P.HalfSpaceClassifier(w)
    x = torch.zeros(1, 10)
    x[0, 0] = 1.0
    sig = [0.5, 1.0, 3.0]
    f = P.class_frequencies(model, x, sig, 20_000, seed=0)
    assert f.shape == (3, 2)
    assert torch.allclose(f.sum(1), torch.ones(3, dtype=torch.float64))
    for i, s in enumerate(sig):
        p = stats.norm.cdf(1.0 / s)
        assert abs(f[i, 1].item() - p) < 4 * math.sqrt(p * (1 - p) / 20_000)


def test_concentration_chi_and_uniform_ball_ks():
    n, m = 784, 3000
    sigma = 7 / math.sqrt(n)
    g = P.gaussian_norms(n, sigma, m, seed=0)
    assert stats.kstest(g / sigma, stats.chi(n).cdf).pvalue > 1e-3
    r = 7.0
    u = P.uniform_ball_norms(n, r, m, seed=1)
    assert np.all(u <= r + 1e-12)
    assert stats.kstest((u / r) ** n, "uniform").pvalue > 1e-3
    # negative controls: the sphere sampler, and Gaussian norms, are not the uniform-ball law
    sph = P.sphere_norms(n, r, m, seed=2)
    assert stats.kstest(np.minimum(sph / r, 1.0) ** n, "uniform").pvalue < 1e-6
    assert stats.kstest(g / sigma, stats.chi(n - 50).cdf).pvalue < 1e-6


def test_segment_and_distortion():
    a, b = torch.zeros(2, 2), torch.ones(2, 2)
    s = P.segment(a, b, [0.0, 0.25, 1.0])
    assert s.shape == (3, 2, 2) and torch.allclose(s[1], torch.full((2, 2), 0.25))
    d = P.distortion(torch.full((1, 4), 0.5), torch.zeros(1, 4))
    assert d.item() == pytest.approx(0.5)


def test_batched_equals_single_point_estimates():
    # batching over points (shared bank) gives each point the estimate it gets alone
    model = P.WedgeClassifier(2)
    x = torch.cat([_wedge_point(2, d, 6) for d in (0.3, 1.0, 2.0)])
    bank = P.NoiseBank((6,), 300, seed=5, common=True)
    together = P.fraction_stable(model, x, torch.tensor([0.5, 0.7, 0.9]), bank=bank,
                                 batch_size=500)
    for j, s in enumerate((0.5, 0.7, 0.9)):
        alone = P.fraction_stable(model, x[j:j + 1], s, bank=bank, batch_size=64)
        assert together[j].item() == alone.item()
    with pytest.raises(ValueError):
        P.fraction_stable(model, x, 0.0, 10)


def test_by_target_groups_source_major_batches_and_survives_inf():
    nat = np.array([0.5, 0.7])
    # 2 sources x 2 targets (5, 8), source-major: [s0→5, s0→8, s1→5, s1→8]; s1→8 missed
    hit = np.array([True, True, True, False])
    adv = np.array([np.inf, 0.1, np.inf])  # persistence of the three hits, in batch order
    rows = P.by_target(nat, adv, hit, [5, 8])
    assert [r["target"] for r in rows] == [5, 8] and [r["n"] for r in rows] == [2, 1]
    assert rows[0]["frac_inf"] == 1.0 and rows[0]["adv_lower"] is False
    assert rows[1]["median_adv"] == 0.1 and rows[1]["adv_lower"] is True
    assert rows[0]["median_nat"] == 0.6
    with pytest.raises(ValueError):
        P.by_target(nat, adv[:2], hit, [5, 8])
