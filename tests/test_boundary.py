"""Boundary probes (spec §5.9-5.10): wedge projection, orthant spectra, the SVD probe on a
linear boundary."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from analysis import boundary as Bd


def _random_in_wedge(rng, thetas, n, m):
    tau = np.tan(thetas)
    q = rng.normal(size=(m, n))
    q[:, 0] = np.abs(q[:, 0]) * 2
    for i in range(1, len(thetas) + 1):
        q[:, i] = rng.uniform(0, 1, m) * q[:, 0] * tau[i - 1]
    return q


def test_wedge_projection_matches_dykstra_and_variational_inequality():
    rng = np.random.default_rng(0)
    thetas = [0.3, 0.7, 1.2]
    n = 6
    X = rng.normal(size=(25, n)) * 2
    P = Bd.wedge_project(X, thetas)
    D = Bd.wedge_project_dykstra(X, thetas)
    assert np.max(np.abs(P - D)) < 1e-8
    assert Bd.in_wedge(P, thetas, tol=1e-12).all()
    Q = _random_in_wedge(rng, thetas, n, 100)
    assert Bd.in_wedge(Q, thetas, tol=1e-12).all()
    for x, p in zip(X, P):
        assert np.max((x - p) @ (Q - p).T) <= 1e-9  # p is the projection (VI)
    # a wrong candidate (clipping only) violates the inequality for some x outside
    bad = np.clip(X, 0, None)
    viol = [np.max((x - b) @ (Q - b).T) for x, b in zip(X, bad) if not Bd.in_wedge(b, thetas)[0]]
    assert viol and max(viol) > 1e-3
    # theta = pi/2 everywhere: the orthant, projection = clipping
    P2 = Bd.wedge_project(X, [math.pi / 2] * 3)
    assert np.allclose(P2, Bd.orthant_project(X, 4), atol=1e-12)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_orthant_spectra_drop_k_values(k):
    rng = np.random.default_rng(k)
    n, m = 50, 4000
    X = rng.normal(size=(m, n))
    P = Bd.orthant_project(X, k)
    sp = Bd.spectra(P, X - P)
    s = sp["centred"]
    bulk = np.median(s[: n - k])
    assert np.all(np.abs(s[n - k:] / bulk - Bd.ORTHANT_RATIO) < 0.05 * Bd.ORTHANT_RATIO)
    assert s[n - k - 1] / bulk > 0.8  # exactly k values dropped (bulk spread ±11 %, MP)
    assert Bd.count_dropped(s, m, n) == k
    assert Bd.count_dropped(np.linalg.svd(X - X.mean(0), compute_uv=False), m, n) == 0
    sn = sp["normals"]
    assert sn[k - 1] > 0.1 * sn[0] and (k == n or sn[k] < 1e-10 * sn[0])


def test_probe_on_linear_boundary_reads_one_small_singular_value():
    torch.manual_seed(0)
    n = 12
    lin = torch.nn.Linear(n, 2).double()
    x1 = torch.zeros(1, n, dtype=torch.float64)
    w = (lin.weight[1] - lin.weight[0]).detach()
    b = float((lin.bias[1] - lin.bias[0]).detach())
    # parents on either side of the hyperplane w.x + b = 0
    x1 = x1 - (b + 1.0) / float(w @ w) * w.view(1, -1)
    x2 = x1 + 2.0 / float(w @ w) * w.view(1, -1)
    res = Bd.boundary_svd_probe(lin.eval(), x1, x2, n_samples=200, sigma=0.3, iters=60)
    assert res.ok.all() and res.labels[0] != res.labels[1]
    s = res.spectra["centred"]
    assert s[-1] < 1e-8 * s[0] and s[-2] > 0.1 * s[0]  # one dimension dropped
    assert res.normal_cosine > 1 - 1e-8 and math.isnan(res.gradient_off_span)
    # the probe's boundary points are on the plane
    assert np.max(np.abs(res.points @ w.numpy() + b)) < 1e-8
    # fewer samples than dimensions: no true cosine; the off-span fraction, under its own
    # name, is 1 for the flat boundary, and a random direction would give about √(1 − N/n)
    few = Bd.boundary_svd_probe(lin.eval(), x1, x2, n_samples=6, sigma=0.3, iters=60)
    assert math.isnan(few.normal_cosine)
    assert few.gradient_off_span > 1 - 1e-8


def test_labels_in_ball_and_incidence_angle():
    class Three(torch.nn.Module):
        def forward(self, x):  # three sectors meeting at the origin
            a = torch.atan2(x[:, 1], x[:, 0])
            return torch.stack([torch.cos(a), torch.cos(a - 2.1), torch.cos(a + 2.1)], 1)

    m = Three()
    assert Bd.labels_in_ball(m, torch.zeros(1, 2), [1.0, 1e-3, 1e-6], 500) == [3, 3, 3]
    assert Bd.labels_in_ball(m, torch.tensor([[5.0, 0.0]]), [1.0, 1e-3], 500) == [1, 1]
    assert Bd.incidence_angle([1, 0], [1, 0]) == pytest.approx(0.0)
    assert Bd.incidence_angle([1, 1], [1, 0]) == pytest.approx(math.pi / 4)


def test_flat_spectrum_keeps_frobenius_norm():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 8)) * np.arange(1, 9)
    F = Bd.flat_spectrum(X)
    s = np.linalg.svd(F, compute_uv=False)
    assert np.allclose(s, s[0]) and np.isclose(np.linalg.norm(F), np.linalg.norm(X))
    with pytest.raises(ValueError):
        Bd.orthant_project(X, 9)
