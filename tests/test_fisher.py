"""Fisher-Rao geometry, Jacobians and certificates (spec 001 §5, checks 1-6), float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from interrupted_fit import fit_interrupted
from scipy.optimize import minimize
from torch import nn

from analysis.bounds import fisher as fb


@pytest.fixture(autouse=True)
def _float64():
    """Every test of this module runs in float64; the default is restored afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _dirichlet(n: int, k: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    e = -torch.log(torch.rand(n, k, generator=g))
    return e / e.sum(1, keepdim=True)


def _mlp(n_in: int = 5, k: int = 4, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(),
                         nn.Linear(16, k)).double()


# --------------------------------------------------------------------------- 1. metric


def test_metric_identities_and_rho():
    k = 5
    th = _dirichlet(200, k)
    g = torch.Generator().manual_seed(1)
    v = torch.randn(200, k, generator=g)
    v = v - v.mean(1, keepdim=True)  # tangent: sum zero
    amb = fb.fim_ambient_norm2(th, v)
    G = fb.fim_coords(th)
    coords = torch.einsum("bi,bij,bj->b", v[:, :-1], G, v[:, :-1])
    dmu = v / th.sqrt()  # d(2√θ) = dθ/√θ
    sph = dmu.pow(2).sum(1)
    _, dt = torch.func.jvp(lambda t: fb.stereo(t), (th,), (v,))
    rho = fb.rho_from_probs(th)
    chart = rho**2 * dt.pow(2).sum(1)
    for other in (coords, sph, chart):
        assert torch.allclose(other, amb, rtol=1e-10, atol=0)
    # the document's rho, 1 - sqrt(theta_K) and 2/(|t/2|^2 + 1) agree
    t = fb.stereo(th)
    conf = 2.0 / ((t / 2).pow(2).sum(1) + 1)
    assert torch.allclose(fb.rho_document(th), rho, rtol=1e-12, atol=0)
    assert torch.allclose(conf, rho, rtol=1e-12, atol=0)
    assert torch.allclose(fb.rho_from_logits(th.log()), rho, rtol=1e-12, atol=0)


# --------------------------------------------------------------------------- 2. distance


_GL = (0.5 - 0.5 * 0.6**0.5, 0.5, 0.5 + 0.5 * 0.6**0.5)  # Gauss-Legendre, 3 nodes on [0, 1]
_GW = (5 / 18, 8 / 18, 5 / 18)


def _fim_path_length(logits_path: torch.Tensor) -> torch.Tensor:
    """FIM length of the polygon that is straight in θ between the given points.

    Each segment is a real path on the simplex, so the total is never below the geodesic
    distance (up to the tiny 3-node Gauss-Legendre error of each segment's smooth integrand).
    """
    th = F.softmax(logits_path, -1)
    dth = th[1:] - th[:-1]
    gl = torch.tensor(_GL)
    pts = th[:-1, None, :] + gl[None, :, None] * dth[:, None, :]
    speed = (dth[:, None, :].pow(2) / pts).sum(-1).sqrt()
    return (speed * torch.tensor(_GW)).sum()


@pytest.mark.parametrize("seed", [0, 1])
def test_closed_form_equals_optimised_geodesic(seed):
    k, segs = 3, 64
    th = _dirichlet(2, k, seed=10 + seed)
    a, b = th[0].log(), th[1].log()
    s = torch.linspace(0, 1, segs + 1)[1:-1, None]
    bump = torch.sin(math.pi * s) * torch.tensor([0.5, -0.5, 0.0])  # a detour to remove
    inner = ((1 - s) * a + s * b + bump).requires_grad_()
    opt = torch.optim.LBFGS([inner], max_iter=300, tolerance_grad=1e-12, tolerance_change=1e-15,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        ln = _fim_path_length(torch.cat([a[None], inner, b[None]]))
        ln.backward()
        return ln

    start = float(_fim_path_length(torch.cat([a[None], inner.detach(), b[None]])))
    opt.step(closure)
    num = float(_fim_path_length(torch.cat([a[None], inner.detach(), b[None]])))
    exact = float(fb.fisher_rao(th[0], th[1]))
    assert start - exact > 1e-3 * exact  # the optimisation had something to do
    assert abs(num - exact) <= 1e-3 * exact
    assert num >= exact * (1 - 1e-9)  # a path is never shorter than the geodesic


def test_arcsin_arccos_agree_and_local_expansions():
    p, q = _dirichlet(500, 6, 2), _dirichlet(500, 6, 3)
    d1, d2 = fb.fisher_rao(p, q), fb.fisher_rao_arccos(p, q)
    big = d1 > 1e-3
    assert bool(big.all())
    assert torch.allclose(d1, d2, rtol=0, atol=1e-7)
    # local expansions: d ~ sqrt(2 KL), D_r ~ (r/2) d^2 (eq. 2)
    th = _dirichlet(50, 6, 4)
    g = torch.Generator().manual_seed(5)
    v = torch.randn(50, 6, generator=g)
    v = v - v.mean(1, keepdim=True)
    h = 1e-5
    q2 = th + h * v * th.min(1, keepdim=True).values
    d = fb.fisher_rao(th, q2)
    kl = (th * (th / q2).log()).sum(1)
    assert torch.allclose(d, (2 * kl).sqrt(), rtol=1e-3)
    for r in (0.5, 2.0):
        assert torch.allclose(fb.renyi(th, q2, r), 0.5 * r * d**2, rtol=1e-3)


def test_distance_finite_gradient_at_coincidence():
    th = _dirichlet(3, 4).requires_grad_()
    d = fb.fisher_rao(th, th.detach().clone()).sum()
    (gr,) = torch.autograd.grad(d, th)
    assert torch.isfinite(gr).all()


# --------------------------------------------------------------------------- 3. boundary


def _brute_boundary_k3(theta: np.ndarray) -> float:
    """min over B of d(θ, φ): B is three segments (a, a, 1 - 2a), a in [1/3, 1/2], permuted."""
    best = math.inf
    u = np.sqrt(theta)
    for i, j in ((0, 1), (0, 2), (1, 2)):
        kk = 3 - i - j

        def f(a, i=i, j=j, kk=kk):
            a = np.atleast_1d(np.clip(a, 1 / 3, 0.5))
            val = np.sqrt(a) * (u[i] + u[j]) + np.sqrt(np.maximum(1 - 2 * a, 0)) * u[kk]
            return 2 * np.arccos(np.clip(val, -1, 1))

        grid = np.linspace(1 / 3, 0.5, 20001)
        vals = f(grid)
        a0 = grid[vals.argmin()]
        res = minimize(lambda z: float(f(z[0])[0]), [a0], method="Nelder-Mead",
                       options={"xatol": 1e-12, "fatol": 1e-14})
        best = min(best, float(res.fun), float(vals.min()))
    return best


def _brute_boundary_k4(theta: np.ndarray) -> float:
    """B for K = 4: faces θ_i = θ_j = a ≥ θ_k = b, θ_l = 1 - 2a - b ≤ a (2-D), by grid + refine."""
    u = np.sqrt(theta)
    best = math.inf
    for i, j in ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)):
        k, l = [c for c in range(4) if c not in (i, j)]

        def f(a, b, i=i, j=j, k=k, l=l):
            a, b = np.asarray(a, float), np.asarray(b, float)
            c = 1 - 2 * a - b
            ok = (b >= 0) & (c >= 0) & (b <= a) & (c <= a)
            val = (np.sqrt(np.maximum(a, 0)) * (u[i] + u[j]) + np.sqrt(np.maximum(b, 0)) * u[k]
                   + np.sqrt(np.maximum(c, 0)) * u[l])
            return np.where(ok, 2 * np.arccos(np.clip(val, -1, 1)), 10.0)

        aa, bb = np.meshgrid(np.linspace(0.25, 0.5, 401), np.linspace(0, 0.5, 401))
        vals = f(aa, bb)
        z0 = (aa.ravel()[vals.argmin()], bb.ravel()[vals.argmin()])
        res = minimize(lambda z: float(f(z[0], z[1])), z0, method="Nelder-Mead",
                       options={"xatol": 1e-12, "fatol": 1e-15, "maxiter": 4000})
        best = min(best, float(res.fun), float(vals.min()))
    return best


def test_boundary_distance_matches_brute_force():
    for th in _dirichlet(6, 3, 7):
        assert abs(float(fb.boundary_distance(th)) - _brute_boundary_k3(th.numpy())) <= 1e-6
    for th in _dirichlet(3, 4, 8):
        assert abs(float(fb.boundary_distance(th)) - _brute_boundary_k4(th.numpy())) <= 1e-6


def test_delta_is_an_upper_bound_equal_for_two_classes():
    for k in (3, 4, 10):
        th = _dirichlet(10_000, k, k)
        db, de = fb.boundary_distance(th), fb.delta_center(th)
        assert bool((de >= db - 1e-12).all())
        assert float((de - db).max()) > 0.1  # strictly weaker for K > 2
        assert float(db.max()) <= math.pi / 2 + 1e-12
        assert float(de.max()) <= fb.delta_max(k) + 1e-12
    th = _dirichlet(1000, 2, 9)
    assert torch.allclose(fb.boundary_distance(th), fb.delta_center(th), atol=1e-12, rtol=0)
    assert abs(fb.delta_max(10) - 2.498) < 1e-3


def test_boundary_foot_is_in_b_at_the_distance():
    th = _dirichlet(500, 5, 11)
    foot = fb.boundary_foot(th)
    top = torch.topk(foot, 2, dim=1).values
    assert torch.allclose(top[:, 0], top[:, 1], atol=1e-14, rtol=0)
    assert torch.allclose(foot.sum(1), torch.ones(500), atol=1e-14, rtol=0)
    assert torch.allclose(fb.fisher_rao(th, foot), fb.boundary_distance(th), atol=1e-10, rtol=0)


def test_delta_and_boundary_distance_differ_off_the_centre():
    """δ > d(θ, B) on the centre-vertex segment of Δ² (issue 10 item 10: they do not coincide)."""
    assert abs(float(fb.boundary_distance(torch.tensor([0.6, 0.2, 0.2]))) - 0.467) < 5e-4
    assert abs(float(fb.delta_center(torch.tensor([0.6, 0.2, 0.2]))) - 0.541) < 5e-4
    c, e1 = torch.full((3,), 1 / 3), torch.tensor([1.0, 0.0, 0.0])
    lam = torch.linspace(0, 1, 201)[1:, None]
    seg = (1 - lam) * c + lam * e1
    gap = fb.delta_center(seg) - fb.boundary_distance(seg)
    assert bool((gap > 0).all())
    assert float(fb.delta_center(c[None]) - fb.boundary_distance(c[None])) == 0.0


@pytest.mark.parametrize("k", [2, 3, 10])
def test_twice_boundary_distance_is_below_the_logit_margin(k):
    """``2 d(θ, B) ≤ s₍₁₎ − s₍₂₎`` (proof in ``certified_radii``), sharp at a two-class tie."""
    g = torch.Generator().manual_seed(k)
    s = torch.randn(60_000, k, generator=g) * torch.logspace(-3, 1.5, 60_000)[:, None]
    top = torch.topk(s, 2, dim=1).values
    margin = top[:, 0] - top[:, 1]
    d_b = fb.boundary_distance(F.softmax(s, 1))
    assert float((2 * d_b - margin).max()) <= 1e-12
    # sharp: two classes (a + b = 1) near a tie, the ratio tends to 1
    near = torch.tensor([[1e-3, 0.0] + [-40.0] * (k - 2)])
    ratio = 2 * fb.boundary_distance(F.softmax(near, 1)) / 1e-3
    assert 0.999999 < float(ratio) <= 1.0 + 1e-12
    # so r_glob <= r_margin on a model (the certificate table's r_margin column)
    model = _mlp(n_in=5, k=k, seed=k)
    rad = fb.certified_radii(model, torch.randn(50, 5, generator=g))
    assert bool((rad["r_glob"] <= rad["r_margin"] * (1 + 1e-12)).all())


def test_delta_at_centre_is_zero_with_finite_gradient():
    c = torch.full((1, 10), 0.1, requires_grad=True)
    d = fb.delta_center(c)
    (g,) = torch.autograd.grad(d.sum(), c)
    assert float(d.detach()) == 0.0
    assert torch.isfinite(g).all()


# --------------------------------------------------------------------------- 4. pullback


def test_pullback_identities_on_mlp():
    model = _mlp(n_in=7, k=4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 7, generator=g)
    jac = fb.fisher_jacobians(model, x)
    # finite difference of the Fisher-Rao distance along v
    v = torch.randn(6, 7, generator=g)
    v = v / v.norm(dim=1, keepdim=True)
    h = 1e-5
    with torch.no_grad():
        d = fb.fisher_rao(F.softmax(model(x), -1), F.softmax(model(x + h * v), -1)) / h
    jv = torch.einsum("bkn,bn->bk", jac.J_mu, v).norm(dim=1)
    assert torch.allclose(d, jv, rtol=1e-3)
    # singular values: J_mu = rho * J_t, rank <= m
    s_mu = torch.linalg.svdvals(jac.J_mu)
    s_t = torch.linalg.svdvals(jac.J_t)
    assert torch.allclose(s_mu[:, :3], jac.rho[:, None] * s_t, rtol=1e-8)
    assert bool((s_mu[:, 3] <= 1e-10 * s_mu[:, 0]).all())
    # J_mu^T J_mu = J_s^T (diag θ - θθ^T) J_s = J_x^T G J_x (eq. 4)
    th = jac.theta
    cov = torch.diag_embed(th) - th[:, :, None] * th[:, None, :]
    lhs = jac.J_mu.transpose(1, 2) @ jac.J_mu
    rhs = jac.J_s.transpose(1, 2) @ cov @ jac.J_s
    jx = (cov @ jac.J_s)[:, :3]  # ∂θ^{1..m}/∂x
    eq4 = jx.transpose(1, 2) @ fb.fim_coords(th) @ jx
    assert torch.allclose(lhs, rhs, atol=1e-12)
    assert torch.allclose(lhs, eq4, atol=1e-10)
    # J_t against autograd of the chart
    jt_auto = torch.func.vmap(torch.func.jacrev(
        lambda z: fb.stereo_logits(model(z[None]))[0]))(x)
    assert torch.allclose(jac.J_t, jt_auto, rtol=1e-10, atol=1e-12)


def test_pole_changes_chart_not_geometry():
    model = _mlp(n_in=6, k=4, seed=3)
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(2))
    a, b = fb.fisher_jacobians(model, x, pole=-1), fb.fisher_jacobians(model, x, pole=0)
    assert torch.allclose(a.spec_mu, b.spec_mu)
    assert torch.allclose(a.rho * a.fro_t, b.rho * b.fro_t, rtol=1e-10)
    assert not torch.allclose(a.fro_t, b.fro_t)


# --------------------------------------------------------------------------- 5. norms


def test_power_iteration_and_lanczos_match_svd():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(4 * 3 * 3, 10)).double()
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    jac = fb.fisher_jacobians(model, x)
    pw = fb.spectral_norm_power(model, x, iters=100)
    assert torch.allclose(pw, jac.spec_mu, rtol=1e-4)
    assert bool((pw <= jac.spec_mu + 1e-9).all())
    lz = fb.spectral_norm_lanczos(model, x[:1])
    assert abs(lz - float(jac.spec_mu[0])) <= 1e-8 * float(jac.spec_mu[0])
    m = 9
    assert bool((jac.spec_t <= jac.fro_t + 1e-12).all())
    assert bool((jac.fro_t <= math.sqrt(m) * jac.spec_t + 1e-12).all())


# --------------------------------------------------------------------------- 6. certificates


def test_lipschitz_bound_holds_and_conv_bound_is_above_operator_norm():
    torch.manual_seed(4)
    conv = nn.Conv2d(2, 3, 3)
    model = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 3 * 3, 5),
                          nn.ReLU(), nn.Linear(5, 4)).double()
    ls = fb.lipschitz_logits(model)
    g = torch.Generator().manual_seed(5)
    x = torch.rand(200, 2, 8, 8, generator=g)
    z = x + 0.05 * torch.randn(200, 2, 8, 8, generator=g)
    with torch.no_grad():
        ratio = (model(x) - model(z)).norm(dim=1) / (x - z).flatten(1).norm(dim=1)
    assert float(ratio.max()) <= ls
    # the conv layer alone: operator norm by power iteration <= k ||W_mat||
    cm = nn.Sequential(conv).double()
    conv.requires_grad_(False)
    v = torch.randn(1, 2, 8, 8, generator=g)
    for _ in range(60):
        w = torch.nn.functional.conv_transpose2d(conv(v) - conv.bias[None, :, None, None],
                                                 conv.weight)
        v = w / w.norm()
    op = float((conv(v) - conv.bias[None, :, None, None]).norm().detach())
    assert op <= fb.lipschitz_logits(cm) + 1e-9
    with pytest.raises(ValueError):
        fb.lipschitz_logits(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)))


def test_radii_ordering_on_2d_toy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    x = torch.randn(12, 2, generator=torch.Generator().manual_seed(6)) * 0.7
    r_star, x_star = fb.exact_radius_rays(model, x, n_rays=240, step=1e-2, r_max=6.0)
    r_loc = fb.local_radius_2d(model, x, n_angles=48, n_radii=12, bisection=20)
    rad = fb.certified_radii(model, x)
    fin = torch.isfinite(r_star)
    assert bool(fin.all())
    assert bool((rad["r_glob"] <= r_loc + 5.0 / 2**20).all())  # proved: bisection width
    assert bool((rad["r_glob"] <= rad["r_margin"] * (1 + 1e-12)).all())
    # r_loc is a grid estimate, not a bound; on this seeded toy it stays below r*
    assert bool((r_loc <= r_star * (1 + 1e-3)).all())
    assert float((r_loc / r_star).median()) >= 0.2
    assert bool((rad["r_margin"] <= r_star).all())
    # the point found lies on the boundary: its top two probabilities (nearly) tie
    with torch.no_grad():
        db = fb.boundary_distance(F.softmax(model(x_star), -1))
    assert float(db.max()) < 1e-4


def test_ray_search_stops_marching_a_point_once_a_ray_flips():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    x = torch.randn(12, 2, generator=torch.Generator().manual_seed(6)) * 0.7
    step, r_max, n_rays, tol = 1e-2, 6.0, 60, 1e-6
    seen = []

    def counted(z):
        seen.append(z.shape[0])
        return model(z)

    r_star, x_star = fb.exact_radius_rays(counted, x, n_rays=n_rays, step=step, r_max=r_max,
                                          tol=tol, chunk=500)
    # reference: every ray marched over the whole grid, then bisected, one ray at a time
    ang = torch.linspace(0, 2 * math.pi, n_rays + 1, dtype=torch.float64)[:-1]
    dirs = torch.stack([ang.cos(), ang.sin()], 1)
    grid = torch.arange(1, int(math.ceil(r_max / step)) + 1, dtype=torch.float64) * step
    with torch.no_grad():
        y0 = model(x).argmax(1)
        ref = torch.full((x.shape[0],), math.inf, dtype=torch.float64)
        for i in range(x.shape[0]):
            for d in dirs:
                flips = (model(x[i] + grid[:, None] * d).argmax(1) != y0[i]).nonzero()
                if flips.numel() == 0:
                    continue
                hi = float(grid[flips[0, 0]])
                lo = max(hi - step, 0.0)
                while hi - lo > tol:
                    mid = 0.5 * (lo + hi)
                    same = int(model((x[i] + mid * d)[None]).argmax(1)) == int(y0[i])
                    lo, hi = (mid, hi) if same else (lo, mid)
                ref[i] = min(float(ref[i]), hi)
    assert bool(torch.isfinite(ref).all())
    torch.testing.assert_close(r_star, ref, rtol=0, atol=2 * tol)
    torch.testing.assert_close((x_star - x).norm(dim=1), r_star, rtol=0, atol=1e-12)
    # the march evaluated fewer grid points than every ray over the whole grid
    assert sum(seen) < x.shape[0] * n_rays * len(grid)


def test_radius_validation():
    model = _mlp(n_in=3, k=2)
    with pytest.raises(ValueError):
        fb.exact_radius_rays(model, torch.zeros(2, 3))
    with pytest.raises(ValueError):
        fb.stereo(torch.full((1, 3), 1 / 3), pole=5)


# --------------------------------------------------------------------------- 7. resumed training


def test_resumed_fisher_run_equals_uninterrupted(tmp_path, monkeypatch):
    """Issue 10 item 7: a checkpoint resume restores η's call counter and the rp generator."""
    from analysis import data, train
    from analysis.regularizers.fisher import FisherJacobian

    torch.set_default_dtype(torch.float32)  # the fixture restores the default afterwards
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("ANALYSIS_CACHE", str(tmp_path / "cache"))
    try:
        ds = data.synthetic("blobs", 120, 4, seed=0, num_classes=3, sep=2.0)
        cfg = train.TrainConfig(epochs=3, batch_size=30, lr=0.05, optimizer="sgd", seed=2)
        kw = {"in_shape": (4,), "widths": (16,), "num_classes": 3, "activation": "tanh"}

        def reg():
            return FisherJacobian(eta_min=0.01, eta_max=0.5, epochs=3, eps_train=1.0,
                                  num_classes=3, estimator="rp", seed=3, steps_per_epoch=4)

        full = train.fit("mlp", kw, ds, cfg, regularizer=reg(), cache=False, progress=False)
        fit_interrupted(monkeypatch, "mlp", kw, ds, cfg, regularizer=reg(), progress=False)
        resumed = train.fit("mlp", kw, ds, cfg, regularizer=reg(), progress=False)
        assert not resumed.from_cache
        assert [r["eta"] for r in resumed.history] == [r["eta"] for r in full.history]
        assert full.history[-1]["eta"] == pytest.approx(0.5)
        for a, b in zip(resumed.model.state_dict().values(), full.model.state_dict().values()):
            assert torch.equal(a, b)
    finally:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------- 8-9. evaluation


def test_validation_split_is_disjoint_and_keeps_the_training_subset():
    """Issue 10 item 8: λ is matched on training images that are neither trained on nor tested."""
    from analysis import data
    from analysis.regularizers.fisher import split_with_validation

    pool = data.synthetic("blobs", 300, 3, seed=4, num_classes=3, sep=1.0, n_test=60)
    ds, xv, yv = split_with_validation(pool, 150, 40, 80, seed=5)
    ref = pool.subset(n_train=150, n_test=40, seed=5)
    assert torch.equal(ds.x_train, ref.x_train) and torch.equal(ds.x_test, ref.x_test)
    assert len(yv) == 80 and torch.bincount(yv).tolist() == [27, 27, 26]

    def rows(x):
        return {tuple(r.tolist()) for r in x}

    assert not rows(xv) & rows(ds.x_train) and not rows(xv) & rows(pool.x_test)
    assert rows(xv) <= rows(pool.x_train)
    with pytest.raises(ValueError, match="n_train"):
        split_with_validation(pool, 250, 40, 51, seed=0)  # 301 > 300 training images


def test_pct_of_correct_counts_the_images_attacked():
    """Issue 10 item 9: with n_attack = 40 > 30 test images the denominator is 30, not 40."""
    from analysis.regularizers.fisher import pct_of_correct

    correct = torch.tensor([True] * 24 + [False] * 6)  # 30 images attacked
    robust_acc = 12 / 30
    assert pct_of_correct(robust_acc, correct) == pytest.approx(50.0)
    old = 100 * robust_acc * 40 / 24  # the old formula, a * n_attack / n_correct
    assert old == pytest.approx(66.7, abs=0.1) and old != pytest.approx(50.0)
    with pytest.raises(ValueError):
        pct_of_correct(13 / 40, correct)  # a fraction of 40 images: not a count of 30
    with pytest.raises(ValueError):
        pct_of_correct(25 / 30, correct)  # more robust than correct images
    assert math.isnan(pct_of_correct(0.0, torch.zeros(5, dtype=torch.bool)))
