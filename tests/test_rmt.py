"""Random-matrix densities of Warwick §2.4 / §7 (spec checks D1-D6)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from analysis import rmt


def _moments(f, lo, hi, center):
    mass = quad(f, lo, hi, limit=200)[0]
    mean = quad(lambda x: x * f(x), lo, hi, limit=200)[0]
    var = quad(lambda x: (x - center) ** 2 * f(x), lo, hi, limit=200)[0]
    return mass, mean, var


def test_semicircle_and_mp_moments():  # D1
    for sigma in (0.5, 1.0, 2.0):
        mass, mean, var = _moments(lambda x, s=sigma: rmt.semicircle_pdf(x, s),
                                   -2 * sigma, 2 * sigma, 0.0)
        assert mass == pytest.approx(1.0, abs=1e-6)
        assert mean == pytest.approx(0.0, abs=1e-9)
        assert var == pytest.approx(sigma**2, rel=1e-6)
    phi = 0.5
    for s0 in (1.0, 2.0):
        lo, hi = rmt.mp_edges(phi, s0)
        mass, mean, var = _moments(lambda x, s=s0: rmt.mp_pdf(x, phi, s), lo, hi, s0)
        assert mass == pytest.approx(1.0, abs=1e-6)
        assert mean == pytest.approx(s0, abs=1e-6)
        assert var == pytest.approx(s0**2 * phi, abs=1e-6)
    # φ = 1: the CDF against its closed form (2/π)(U + sin U cos U)
    lam = np.linspace(0.0, 4.0, 1001)
    U = np.arcsin(np.sqrt(lam) / 2)
    assert np.allclose(rmt.mp_cdf(lam, 1.0), 2 / np.pi * (U + np.sin(U) * np.cos(U)), atol=1e-6)
    # φ > 1: an atom 1 - 1/φ at zero
    assert float(rmt.mp_cdf(0.0, 2.0)) == pytest.approx(0.5)
    assert float(rmt.mp_cdf(10.0, 2.0)) == pytest.approx(1.0, abs=1e-6)


def _grid(s, phi, n=20001):
    lo, hi = rmt.free_sum_support(s, phi)
    pad = 0.05 * (hi - lo)
    lam = np.linspace(lo - pad, hi + pad, n)
    return lam, rmt.free_sum_pdf(lam, s, phi)


@pytest.mark.parametrize("s", [0.0, 0.1, 0.5, 1.0, 10.0])
def test_free_sum_moments(s):  # D2
    phi = 0.5
    lam, rho = _grid(s, phi)
    m = rmt.density_moments(lam, rho)
    assert m["mass"] == pytest.approx(1.0, abs=1e-3)
    assert m["mean"] == pytest.approx(1.0, abs=1e-3)
    assert m["var"] == pytest.approx(phi + s, abs=1e-2)
    assert rho.min() >= 0.0  # D4 (non-negative everywhere)


def test_s_zero_is_marchenko_pastur():  # D3
    phi = 0.5
    lam = np.linspace(-0.5, 3.5, 4001)
    assert np.max(np.abs(rmt.free_sum_pdf(lam, 0.0, phi) - rmt.mp_pdf(lam, phi))) < 1e-5
    lo, hi = rmt.mp_edges(phi)
    assert (lo, hi) == pytest.approx(((1 - phi**0.5) ** 2, (1 + phi**0.5) ** 2))
    outside = (lam < lo - 1e-2) | (lam > hi + 1e-2)
    assert np.all(rmt.free_sum_pdf(lam[outside], 0.0, phi) < 1e-5)


@pytest.mark.parametrize("s", [0.0, 0.5, 10.0])
def test_root_choice_far_away(s):  # D4
    phi = 0.5
    z = np.array([1e3 + 1j])
    G = rmt.stieltjes_free_sum(z, s, phi)[0]
    # G(z) = 1/z + m1/z² + m2/z³ + ..., m1 = 1, m2 = 1 + φ + s: the physical branch
    zz = z[0]
    assert abs(zz * G - 1) < 2e-3
    assert abs(G - (1 / zz + 1 / zz**2 + (1 + phi + s) / zz**3)) < 1e-7 * abs(1 / zz)
    with pytest.raises(ValueError):
        rmt.stieltjes_free_sum(z, -0.1, phi)


def test_ks_against_sampled_matrices():  # D5
    n = 400
    wig = rmt.sample_wigner(n, seed=0)
    assert rmt.ks_distance(wig, rmt.semicircle_cdf) < 0.03
    ks = rmt.ks_distance(rmt.sample_wishart(n, 2 * n, seed=1), lambda x: rmt.mp_cdf(x, 0.5))
    assert ks < 0.03
    for s in (0.1, 1.0):
        lam, rho = _grid(s, 0.5)
        F = rmt.grid_cdf(lam, rho)
        ev = rmt.sample_free_sum(n, s, 0.5, seed=2)
        assert rmt.ks_distance(ev, lambda x, lam=lam, F=F: np.interp(x, lam, F)) < 0.03
    # and the test has power: Wigner eigenvalues are far from the MP law
    assert rmt.ks_distance(wig, lambda x: rmt.mp_cdf(x, 0.5)) > 0.3


def test_fig9_monotonicities():  # D6
    phi = 0.5
    neg, ks_sc = [], []
    for s in (0.0, 0.1, 1.0, 10.0):
        lam, rho = _grid(s, phi)
        neg.append(rmt.density_moments(lam, rho)["neg_mass"])
        F = rmt.grid_cdf(lam, rho)
        ks_sc.append(np.max(np.abs(F - rmt.semicircle_cdf(lam, np.sqrt(phi + s), 1.0))))
    assert neg[0] == pytest.approx(0.0, abs=1e-6)  # η-smoothing only
    assert np.all(np.diff(neg) > 0)
    assert np.all(np.diff(ks_sc) < 0)


def test_cdfs_are_the_integrals_of_their_pdfs():
    """Each closed-form / grid CDF equals the quadrature of its pdf (not the CDF against itself)."""
    for sigma in (0.5, 1.0):
        for x in (-1.5 * sigma, -0.3 * sigma, 0.7 * sigma, 1.9 * sigma):
            ref = quad(lambda v, s=sigma: rmt.semicircle_pdf(v, s), -2 * sigma, x, limit=200)[0]
            assert float(rmt.semicircle_cdf(x, sigma)) == pytest.approx(ref, abs=1e-9)
    for phi in (0.25, 0.5, 1.0):
        lo, hi = rmt.mp_edges(phi)
        for x in np.linspace(lo, hi, 7)[1:-1]:
            ref = quad(lambda v, p=phi: float(rmt.mp_pdf(v, p)), lo, x, limit=200)[0]
            assert float(rmt.mp_cdf(x, phi)) == pytest.approx(ref, abs=1e-6)
