"""Probabilistic bound of Warwick Thm 4.0.1, Monte Carlo (Alg 1), Lemma 4.0.1 (spec checks B1-B6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from analysis.bounds import probabilistic as P


def _within(p_hat: float, p: float, n: int) -> bool:
    return abs(p_hat - p) <= 4 * math.sqrt(p * (1 - p) / n) + 2 / n


@pytest.mark.parametrize("m", [2, 10, 50])
def test_monte_carlo_matches_closed_form_sphere(m):  # B1
    clf = P.SphereClassifier(R=1.0, s=0.5, d=60)
    gen = torch.Generator().manual_seed(m)
    n = 4000
    for rho_t in (0.8, 1.5, 1.8, 2.2, 3.0):
        rho = rho_t * clf.r
        p_hat, se = P.monte_carlo(clf, clf.x(), rho, m, n, generator=gen)
        p = 1.0 - float(P.sphere_survival_exact(rho, m, clf.s, clf.R))
        assert _within(p_hat, p, n), (m, rho_t, p_hat, p)
        assert se == pytest.approx(math.sqrt(p_hat * (1 - p_hat) / n))


def test_monte_carlo_matches_closed_form_halfspace():  # B1
    r = 0.5
    d, m, n = 40, 12, 4000

    def halfspace(y):
        return (y[:, 0] >= r).long()

    x = torch.zeros(d, dtype=torch.float64)
    gen = torch.Generator().manual_seed(7)
    for rho_t in (1.2, 2.0, 4.0):
        p_hat, _ = P.monte_carlo(halfspace, x, rho_t * r, m, n, generator=gen)
        p = 1.0 - float(P.halfspace_survival_exact(rho_t, m))
        assert _within(p_hat, p, n)


def test_ball_mode_is_inside_the_ball():
    # inside the ball the label changes less often than on the sphere of the same radius
    clf = P.SphereClassifier(d=30)
    gen = torch.Generator().manual_seed(0)
    ps, _ = P.monte_carlo(clf, clf.x(), 1.0, 10, 3000, mode="sphere", generator=gen)
    pb, _ = P.monte_carlo(clf, clf.x(), 1.0, 10, 3000, mode="ball", generator=gen)
    assert pb < ps
    with pytest.raises(ValueError):
        P.monte_carlo(clf, clf.x(), 1.0, 10, 10, mode="circle")


def test_exact_survival_below_bound_and_reference_value():  # B2
    clf = P.SphereClassifier()
    assert clf.kappa == pytest.approx(0.25)
    assert float(P.sphere_survival_exact(2.5 * clf.r, 10)) == pytest.approx(0.0152, abs=1e-4)
    assert float(P.bound_keep(2.5, 10, clf.kappa)) == pytest.approx(0.727, abs=1e-3)
    rho_t = np.linspace(1.0, 6.0, 501)
    for m in (10, 100, 1000):
        keep = P.sphere_survival_exact(rho_t * clf.r, m)
        assert np.all(keep <= P.bound_keep(rho_t, m, clf.kappa) + 1e-12)


def test_literal_reading_fails():  # B3
    clf = P.SphereClassifier()
    mis = 1.0 - float(P.sphere_survival_exact(3.0 * clf.r, 10))
    b = float(P.bound_keep(3.0, 10, clf.kappa))
    assert mis == pytest.approx(1.0, abs=1e-12)
    assert b == pytest.approx(0.062, abs=1e-3)
    assert mis > b  # "misclassification <= B" is false


def test_the_half_matters():  # B4
    clf = P.SphereClassifier()
    kappa_no_half = clf.r / clf.R  # 0.5: (1 - 2κ) = 0, so B = β = 0 for ρ̃ > √2
    assert float(P.bound_keep(1.5, 10, kappa_no_half, half=False)) == 0.0
    assert float(P.sphere_survival_exact(1.5 * clf.r, 10)) == pytest.approx(0.771, abs=1e-3)


def test_radius_41():  # B5
    for kappa in (0.05, 0.1, 0.25, 0.4, 0.49):
        for m in (1, 10, 100, 1000):
            for beta in (0.0, 0.1):
                for p in (0.15, 0.3, 0.6, 0.99):
                    rs = P.rho_star(p, m, kappa, beta)
                    C = math.sqrt(2 * math.log(2 / (p - beta)))
                    assert rs <= C / (kappa * math.sqrt(m)) + kappa**-0.5 + 1e-12
                    assert float(P.bound_keep(rs, m, kappa, beta)) <= p + 1e-12
                    grid = np.linspace(rs, 5 * rs, 200)
                    b = P.bound_keep(grid, m, kappa, beta)
                    assert np.all(np.diff(b) <= 1e-15)  # monotone beyond ρ̃*
    with pytest.raises(ValueError):
        P.rho_star(0.05, 10, 0.25, beta=0.1)
    with pytest.raises(ValueError):
        P.bound_keep(2.0, 10, 0.7)


def test_lemma_401_complement_error():  # B6
    assert P.semicircle_cdf(2.0) == pytest.approx(1.0)
    assert P.semicircle_cdf(0.0) == pytest.approx(0.5)
    k = np.linspace(0.0, 1.9, 20)
    assert np.all(P.beta_corrected(k) >= P.beta_document(k) - 1e-15)
    # the document's heuristic, simulated: two random eigenvalues of a Wigner matrix
    kap = np.array([0.25, 0.5, 1.0])
    mc = P.two_eigenvalue_mc(kap, n=300, draws=20000, n_matrices=4, seed=0)
    heur = (1 - P.semicircle_cdf(kap)) ** 2
    assert np.all(np.abs(mc - heur) < 0.01)
    assert 1 - float(P.beta_document(0.5)) == pytest.approx(0.568, abs=1e-3)
    assert float(heur[1]) == pytest.approx(0.117, abs=1e-3)
    # what Assumption 2 actually asks for: a random 2-plane; ≈ 0 already at κ = 0.2
    plane = P.random_plane_mc([0.2, 0.5], n=300, draws=1000, seed=0)
    assert np.all(plane == 0.0)


def test_cache_key_names_every_parameter():
    """Issue 11: a default (n_matrices, chunk) or the classifier's R and s is part of the key."""
    from analysis import cache

    kap = np.array([0.25, 0.5])
    k0 = P.call_key(P.two_eigenvalue_mc, kap, 60, 200, seed=1)
    assert k0["args"]["n_matrices"] == 4 and k0["args"]["seed"] == 1
    assert cache.key_hash("x", k0) != cache.key_hash(
        "x", P.call_key(P.two_eigenvalue_mc, kap, 60, 200, seed=1, n_matrices=2))
    assert P.call_key(P.random_plane_mc, kap, 60, 200)["args"]["chunk"] == 500
    rho = np.array([1.0, 2.0])
    a = P.call_key(P.mc_table, P.SphereClassifier(1.0, 0.5, 20), rho, [5], 100, seed=0)
    b = P.call_key(P.mc_table, P.SphereClassifier(2.0, 0.5, 20), rho, [5], 100, seed=0)
    assert "progress" not in a["args"] and a["args"]["modes"] == ("sphere", "ball")
    assert cache.key_hash("x", a) != cache.key_hash("x", b)  # R is in the key
    # cached_call returns what the call returns, and a second call is a cache hit
    r1 = P.cached_call("test/two", P.two_eigenvalue_mc, kap, 60, 200, seed=1)
    r2 = P.cached_call("test/two", P.two_eigenvalue_mc, kap, 60, 200, seed=1)
    assert np.array_equal(r1, P.two_eigenvalue_mc(kap, 60, 200, seed=1))
    assert np.array_equal(r1, r2)


def test_one_semicircle_cdf_and_one_wigner_sampler():
    """Issue 13: the probabilistic bound uses rmt's semicircle CDF and Wigner matrices (one of
    each); the draws of rmt.sample_wigner are those of the matrix helper with the same seed."""
    import numpy as np

    from analysis import rmt

    assert P.semicircle_cdf is rmt.semicircle_cdf
    m = rmt.wigner_matrix(30, rng=np.random.default_rng(4))
    assert np.allclose(m, m.T)
    assert np.array_equal(np.linalg.eigvalsh(m), rmt.sample_wigner(30, seed=4))
