"""Peck (2017) bounds (analysis.bounds.peck): closed forms, brute force, counterexamples (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
import torch
import torch.nn as nn
import torch.nn.functional as F

from analysis.bounds import peck
from analysis.experiments import peck as E
from analysis.models import peck as pm

DT = torch.float64


def _rng(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- 2.1 linear exactness


def test_linear_bound_is_exact_distance():
    g = _rng(1)
    W = torch.rand(5, 3, generator=g, dtype=DT) * 2 - 1
    b = torch.rand(5, generator=g, dtype=DT) * 2 - 1
    x = torch.rand(20, 3, generator=g, dtype=DT) * 2 - 1
    lb = peck.linear_bound(W, b, x)
    c = (x @ W.T + b).argmax(1)
    # r*(1 + 1e-6) flips, r*(1 - 1e-6) does not
    assert bool(((((x + lb.r * (1 + 1e-6)) @ W.T + b).argmax(1)) != c).all())
    assert bool(((((x + lb.r * (1 - 1e-6)) @ W.T + b).argmax(1)) == c).all())
    assert torch.allclose(lb.r.norm(dim=1), lb.delta, rtol=1e-12)
    # SLSQP per target: min ||r||^2 s.t. z_j(x+r) >= z_c(x+r)
    for i in range(5):
        xi, ci = x[i].numpy(), int(c[i])
        Wn, bn = W.numpy(), b.numpy()
        best = math.inf
        for j in range(5):
            if j == ci:
                continue
            a_j, b_j = Wn[j] - Wn[ci], bn[j] - bn[ci] + (Wn[j] - Wn[ci]) @ xi
            con = {"type": "ineq", "fun": lambda r, a_j=a_j, b_j=b_j: a_j @ r + b_j}
            res = scipy.optimize.minimize(lambda r: r @ r, np.ones(3), constraints=[con],
                                          method="SLSQP", options={"ftol": 1e-14})
            best = min(best, math.sqrt(res.fun))
        assert best == pytest.approx(float(lb.delta[i]), rel=1e-6)
    # 10^4 random directions never beat delta: the exit distance along u is >= delta
    u = torch.randn(10_000, 3, generator=g, dtype=DT)
    u = u / u.norm(dim=1, keepdim=True)
    z0 = x[0] @ W.T + b
    slope = u @ W.T - (u @ W[c[0]])[:, None]
    gap = z0[c[0]] - z0
    t = torch.where(slope > 0, gap / slope, math.inf)
    t[:, c[0]] = math.inf
    assert float(t.min()) >= float(lb.delta[0]) * (1 - 1e-12)


def test_linear_invariances_and_binary():
    g = _rng(2)
    W = torch.randn(4, 6, generator=g, dtype=DT)
    b = torch.randn(4, generator=g, dtype=DT)
    x = torch.randn(30, 6, generator=g, dtype=DT)
    d = peck.linear_bound(W, b, x).delta
    assert torch.allclose(peck.linear_bound(3.7 * W, 3.7 * b, x).delta, d, rtol=1e-12)
    perm = torch.tensor([2, 0, 3, 1])
    assert torch.allclose(peck.linear_bound(W[perm], b[perm], x).delta, d, rtol=1e-12)
    # binary: 2-class argmax classifier with w = w1 - w0 equals |w.x + b|/||w||
    w2, b2 = W[:2], b[:2]
    bb = peck.binary_linear_bound(w2[1] - w2[0], float(b2[1] - b2[0]), x)
    assert torch.allclose(peck.linear_bound(w2, b2, x).delta, bb, rtol=1e-12)


def test_fgs_linear_binary_closed_form_and_bisection():
    g = _rng(3)
    w = torch.randn(5, generator=g, dtype=DT)
    W = torch.stack([torch.zeros(5, dtype=DT), w])
    b = torch.tensor([0.0, 0.3], dtype=DT)
    x = torch.randn(40, 5, generator=g, dtype=DT)
    eps, norm = peck.fgs_linear(W, b, x)
    assert torch.allclose(eps, (x @ w + 0.3).abs() / w.abs().sum(), rtol=1e-12)
    assert bool((norm >= peck.linear_bound(W, b, x).delta * (1 - 1e-12)).all())
    # bisection on the same ray agrees
    W3 = torch.randn(4, 5, generator=g, dtype=DT)
    b3 = torch.randn(4, generator=g, dtype=DT)
    e3, _ = peck.fgs_linear(W3, b3, x[:5])
    for i in range(5):
        z = x[i] @ W3.T + b3
        c = int(z.argmax())
        u = (torch.softmax(z, 0) @ W3 - W3[c]).sign()
        lo, hi = 0.0, 100.0
        for _ in range(80):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if int(((x[i] + mid * u) @ W3.T + b3).argmax()) != c else (mid, hi)
        assert hi == pytest.approx(float(e3[i]), rel=1e-9)


# ---------------------------------------------------------------- 2.2 MLP


def _tanh_mlp(d=2, widths=(10, 10, 10), k=5, seed=0, scale=1.0):
    g = _rng(seed)
    dims = [d, *widths]
    layers = [((torch.rand(o, i, generator=g, dtype=DT) * 2 - 1) * scale,
               (torch.rand(o, generator=g, dtype=DT) * 2 - 1) * scale)
              for i, o in zip(dims[:-1], dims[1:], strict=True)]
    out = ((torch.rand(k, dims[-1], generator=g, dtype=DT) * 2 - 1) * scale,
           (torch.rand(k, generator=g, dtype=DT) * 2 - 1) * scale)
    return layers, out


def _logits(layers, out, act, x):
    h, _ = peck.mlp_forward(layers, act, x, jacobian=False)
    return h @ out[0].T + out[1]


def test_activation_constants():
    z = torch.linspace(-6, 6, 200_001, dtype=DT)
    t = torch.tanh(z)
    assert float((-2 * t * (1 - t ** 2)).abs().max()) == pytest.approx(0.7698, abs=1e-4)
    assert peck.ACTIVATIONS["tanh"].B_true == pytest.approx(4 / (3 * math.sqrt(3)))
    s = torch.sigmoid(z)
    assert float((s * (1 - s) * (1 - 2 * s)).abs().max()) == pytest.approx(
        peck.ACTIVATIONS["sigmoid"].B_true, rel=1e-6)
    assert peck.ACTIVATIONS["sigmoid"].B_published == pytest.approx(
        peck.ACTIVATIONS["sigmoid"].B_true, rel=1e-12)
    with pytest.raises(ValueError):
        peck.activation_constants("relu", "corrected")
    with pytest.raises(ValueError):
        peck.activation_constants("tanh", "bogus")


def test_taylor_stable_form_and_limit():
    d, j, M, n = torch.tensor([0.3], dtype=DT), torch.tensor([2.0], dtype=DT), 0.7, 9
    direct = (math.sqrt(4 + 2 * M * 3 * 0.3) - 2) / (M * 3)
    assert float(peck.taylor_bound(d, j, M, n)) == pytest.approx(direct, rel=1e-8)
    assert float(peck.taylor_bound(d, j, 1e-14, n)) == pytest.approx(0.15, rel=1e-9)


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "softplus"])
def test_alg41_bounds_hessian_l1_and_taylor_remainder(act):
    layers, out = _tanh_mlp(d=3, widths=(4, 3), seed=5)
    A, B = peck.activation_constants(act, "corrected")
    M, _ = peck.alg41([V for V, _ in layers], A, B)
    g = _rng(6)
    xs = torch.randn(30, 3, generator=g, dtype=DT) * 2
    worst = 0.0
    for x in xs:
        for i in range(3):
            H = torch.autograd.functional.hessian(
                lambda v, i=i: peck.mlp_forward(layers, act, v[None])[0][0, i], x)
            worst = max(worst, float(H.abs().sum()))
    assert worst <= M
    r = torch.randn(30, 3, generator=g, dtype=DT)
    h0, J = peck.mlp_forward(layers, act, xs)
    h1, _ = peck.mlp_forward(layers, act, xs + r)
    rem = (h1 - h0 - (J @ r[:, :, None])[..., 0]).norm(dim=1)
    assert bool((rem <= M / 2 * math.sqrt(3) * r.norm(dim=1) ** 2).all())


def test_mlp_corrected_bound_below_brute_force_2d():
    for seed in range(3):
        layers, out = _tanh_mlp(seed=seed)
        x = torch.rand(3, 2, generator=_rng(seed + 10), dtype=DT) * 2 - 1
        net = E.mlp_module(layers, out, "tanh")
        for variant in ("corrected", "sound"):
            bnd = peck.mlp_bound(layers, out, "tanh", x, variant).bound
            for i in range(3):
                exact = float(E.ray_search_2d(net, x[i:i + 1], n_rad=400, bisection=40)[0])
                assert 0 < float(bnd[i]) <= exact


def test_mlp_sound_is_lipschitz_product():
    layers, out = _tanh_mlp(d=4, widths=(6,), seed=3)
    x = torch.randn(5, 4, dtype=DT)
    r = peck.mlp_bound(layers, out, "tanh", x, "sound")
    lip = float(torch.linalg.matrix_norm(layers[0][0], ord=2))
    assert torch.allclose(r.bound, r.delta / lip)


# ---------------------------------------------------------------- erratum counterexamples


def test_counterexample_relu_b1():
    # scores (ReLU(x), 0.01) at x = -0.01: true distance 0.02, published Taylor bound 0.141
    layers = [(torch.ones(1, 1, dtype=DT), torch.zeros(1, dtype=DT))]
    out = (torch.tensor([[1.0], [0.0]], dtype=DT), torch.tensor([0.0, 0.01], dtype=DT))
    x = torch.tensor([[-0.01]], dtype=DT)
    pub = float(peck.mlp_bound(layers, out, "relu", x, "published").bound)
    snd = float(peck.mlp_bound(layers, out, "relu", x, "sound").bound)
    true = 0.02
    assert pub == pytest.approx(math.sqrt(0.02), rel=1e-12) and pub > true
    assert snd <= true
    assert int(_logits(layers, out, "relu", x + true * (1 + 1e-9)).argmax()) == 0


def test_counterexample_batchnorm():
    y = torch.tensor([[10.0, 0.0]], dtype=DT)
    a = torch.ones(2, dtype=DT)
    k = torch.tensor([1.0], dtype=DT)
    pub = float(peck.bn_rule(k, y, a, "published"))
    cor = float(peck.bn_rule(k, y, a, "corrected"))
    snd = float(peck.bn_rule(k, y, a, "sound"))
    assert pub == pytest.approx(math.sqrt(10.5), rel=1e-12)  # 3.24
    # the thesis's quadratic with min instead of max (the old "corrected"): sqrt(110.5) - 10
    assert float(peck.bn_deltas(k, y, a).min()) == pytest.approx(math.sqrt(110.5) - 10, rel=1e-12)
    assert cor == snd == 1.0
    # r = (1, 0) displaces BN's output by exactly kappa = 1: the true minimum is <= 1 < pub
    assert pub > 1.0 >= snd


def _bn_min_displacement(a: torch.Tensor, kappa: float, n_dir: int = 20_000) -> float:
    """Smallest ||r|| with ||a * r|| >= kappa over random and coordinate directions (brute force)."""
    d = a.numel()
    u = torch.cat([torch.eye(d, dtype=DT), torch.randn(n_dir, d, generator=_rng(11), dtype=DT)])
    u = u / u.norm(dim=1, keepdim=True)
    return float((kappa / (a * u).norm(dim=1)).min())


def test_bn_corrected_is_a_lower_bound_with_nonuniform_scale():
    # issue 10: y = (0, 100), a = (10, 1), kappa = 1. The old "corrected" rule (min_j delta_j of
    # the norm-growth quadratic) gave 0.501 and published 1.002; r = (0.1, 0) already displaces
    # the BN output by 1, so the true minimum is 0.1.
    y = torch.tensor([[0.0, 100.0]], dtype=DT)
    a = torch.tensor([10.0, 1.0], dtype=DT)
    k = torch.tensor([1.0], dtype=DT)
    true = _bn_min_displacement(a, 1.0)
    assert true == pytest.approx(0.1, rel=1e-12)
    assert float((a * torch.tensor([0.1, 0.0], dtype=DT)).norm()) == pytest.approx(1.0)
    pub, quad = float(peck.bn_rule(k, y, a, "published")), float(peck.bn_deltas(k, y, a).min())
    assert pub == pytest.approx(1.002, abs=1e-3) and quad == pytest.approx(0.501, abs=1e-3)
    assert pub > true and quad > true
    for v in ("corrected", "sound"):
        assert float(peck.bn_rule(k, y, a, v)) <= true * (1 + 1e-12)
    # random non-uniform slopes and outputs: corrected and sound never exceed the brute force
    g = _rng(12)
    for _ in range(20):
        a = torch.randn(5, generator=g, dtype=DT) * torch.rand(5, generator=g, dtype=DT) * 10
        y = torch.randn(1, 5, generator=g, dtype=DT) * 30
        kap = float(torch.rand(1, generator=g)) * 3 + 0.01
        true = _bn_min_displacement(a, kap)
        for v in ("corrected", "sound"):
            assert float(peck.bn_rule(torch.tensor([kap], dtype=DT), y, a, v)) <= true * (1 + 1e-9)


def test_bn_rule_batch_of_slopes():
    a = torch.tensor([[1.0, 2.0], [4.0, 0.5]], dtype=DT)
    k = torch.tensor([1.0, 2.0], dtype=DT)
    y = torch.zeros(2, 2, dtype=DT)
    assert torch.allclose(peck.bn_rule(k, y, a, "sound"), torch.tensor([0.5, 0.5], dtype=DT))


def test_lrn_corrected_is_the_sound_rule_and_valid():
    # the old "corrected" LRN rule (min over a of max(lambda_a, 0), M_a at x_max of X) was
    # unproven; it now falls back to the sound kappa / L.
    kw = {"n": 5, "k": 2.0, "alpha": 1e-4, "beta": 0.75}
    g = _rng(13)
    x = torch.full((1, 6), 50.0, dtype=DT)  # every entry in Delta: old corrected was > 0
    kap = torch.tensor([0.5], dtype=DT)
    assert float(peck.lrn_rule(kap, x, "corrected", **kw)) == float(
        peck.lrn_rule(kap, x, "sound", **kw)) == pytest.approx(0.5 / peck.lrn_lipschitz(5, 2.0, 0.75))
    for _ in range(5):
        x = torch.randn(1, 6, generator=g, dtype=DT) * 100
        kap = torch.rand(1, generator=g, dtype=DT) + 0.05
        bnd = float(peck.lrn_rule(kap, x, "corrected", **kw))
        u = torch.randn(500, 6, generator=g, dtype=DT)
        u = u / u.norm(dim=1, keepdim=True)
        y0 = peck.lrn(x, **kw)
        # no direction reaches the displacement kappa before the bound
        assert bool(((peck.lrn(x + bnd * (1 - 1e-9) * u, **kw) - y0).norm(dim=1) < kap).all())


def test_lrn_published_hardly_depends_on_kappa():
    X = torch.rand(1, 20, 12, 12, generator=_rng(14), dtype=DT)
    vals = [float(peck.lrn_rule(torch.tensor([k], dtype=DT), X, "published")) for k in (1, 1e-3, 1e-9)]
    assert vals[0] > 0 and max(vals) / min(vals) < 1.1  # nine orders of magnitude in kappa


def test_counterexample_lrn():
    x = torch.tensor([[10.0, 0.0, 0.0, 0.0]], dtype=DT)
    kw = {"n": 5, "k": 2.0, "alpha": 1e-4, "beta": 0.75}
    kappa = torch.tensor([1.0], dtype=DT)
    pub = float(peck.lrn_rule(kappa, x, "published", **kw))
    snd = float(peck.lrn_rule(kappa, x, "sound", **kw))
    # smallest ||R|| with ||LRN(x+R) - LRN(x)|| >= 1 along many directions (bisection)
    g = _rng(7)
    dirs = torch.cat([torch.eye(4, dtype=DT), -torch.eye(4, dtype=DT),
                      torch.randn(400, 4, generator=g, dtype=DT)])
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    y0 = peck.lrn(x, **kw)
    lo, hi = torch.zeros(len(dirs), dtype=DT), torch.full((len(dirs),), 50.0, dtype=DT)
    assert bool(((peck.lrn(x + hi[:, None] * dirs, **kw) - y0).norm(dim=1) >= 1).all())
    for _ in range(60):
        mid = (lo + hi) / 2
        ok = (peck.lrn(x + mid[:, None] * dirs, **kw) - y0).norm(dim=1) >= 1
        hi, lo = torch.where(ok, mid, hi), torch.where(ok, lo, mid)
    actual = float(hi.min())
    assert pub == pytest.approx(5.81, abs=0.01)
    assert 1.6 < actual <= 1.70 + 1e-3  # spec: 1.70 along -e_1; other directions do slightly better
    assert pub > actual >= snd


def test_counterexample_conv_stride1():
    W = torch.full((1, 1, 5, 5), 0.2, dtype=DT)
    R = torch.ones(1, 1, 28, 28, dtype=DT)
    out = F.conv2d(R, W).norm()
    assert float(out) == pytest.approx(120.0, rel=1e-12)
    assert float(W.norm() * R.norm()) == pytest.approx(28.0, rel=1e-12)
    assert float(out) <= peck.conv_lipschitz(W, (1, 28, 28)) * float(R.norm())


def test_counterexample_taylor_a1_missing_factor_d():
    d = 50
    M = 4 / (3 * math.sqrt(3))  # |every second partial of tanh(sum x)| <= M
    x = torch.full((d,), -0.6585 / d, dtype=DT)  # sum x at the argmax of |tanh''|
    r = torch.full((d,), 0.01 / math.sqrt(d), dtype=DT)  # ||r|| = 0.01
    s0, s1 = x.sum(), (x + r).sum()
    err = abs(float(torch.tanh(s1) - torch.tanh(s0) - (1 - torch.tanh(s0) ** 2) * r.sum()))
    stated = M / 2 * math.sqrt(1) * 0.01 ** 2
    assert err > 10 * stated  # A.1 as printed fails by a factor ~d
    assert err <= M / 2 * d * 0.01 ** 2  # with the l1 (Alg 4.1) constant it holds


# ---------------------------------------------------------------- convolution norm


def _dense_conv(W, shape, stride, pad):
    n = int(np.prod(shape))
    basis = torch.eye(n, dtype=DT).reshape(n, *shape)
    return F.conv2d(basis, W, stride=stride, padding=pad).reshape(n, -1).T


@pytest.mark.parametrize("k,c,q,s,pad", [(4, 3, 5, 1, 0), (4, 3, 3, 2, 1), (2, 2, 2, 2, 0)])
def test_conv_operator_norm_vs_dense(k, c, q, s, pad):
    W = torch.randn(k, c, q, q, generator=_rng(k + q), dtype=DT)
    shape = (c, 9, 9)
    sv = float(torch.linalg.matrix_norm(_dense_conv(W, shape, s, pad), ord=2))
    est = peck.conv_operator_norm(W, shape, s, pad, iters=500)
    assert est == pytest.approx(sv, rel=1e-4)
    assert sv <= peck.conv_frobenius_bound(W, s) * (1 + 1e-12)
    assert sv <= peck.conv_lipschitz(W, shape, s, pad) * (1 + 1e-12)


@pytest.mark.parametrize("k,c,q,s,pad,H", [(4, 3, 5, 1, 0, 9), (4, 3, 3, 2, 1, 9), (2, 2, 2, 2, 0, 9),
                                            (3, 2, 3, 3, 2, 8), (5, 3, 1, 2, 1, 7), (6, 4, 1, 1, 0, 5)])
def test_conv_certified_norm_vs_dense_svd(k, c, q, s, pad, H):
    W = torch.randn(k, c, q, q, generator=_rng(10 * k + q), dtype=DT)
    D = _dense_conv(W, (c, H, H), s, pad)
    assert torch.equal(peck.conv_dense_matrix(W, (c, H, H), s, pad), D)
    sv = float(torch.linalg.matrix_norm(D, ord=2))
    L = peck.conv_lipschitz(W, (c, H, H), s, pad)
    assert sv * (1 - 1e-12) <= L <= sv * (1 + 1e-8)
    assert sv <= peck.conv_schur_bound(W, (c, H, H), s, pad)
    # the Schur route (forced by max_dense = 0) is a valid, looser bound
    peck.rules._CONV_NORM_MEMO.clear()
    assert sv * (1 - 1e-12) <= peck.conv_operator_norm_certified(W, (c, H, H), s, pad, max_dense=0)


def test_conv_sound_constant_is_not_power_iteration_estimate():
    # a kernel on which 100 power iterations x 1.01 (the old sound constant) stay below ||T_W||_2
    g = _rng(170)
    k = int(torch.randint(2, 12, (1,), generator=g))
    c = int(torch.randint(1, 6, (1,), generator=g))
    q = int(torch.randint(2, 6, (1,), generator=g))
    H = int(torch.randint(q + 2, 14, (1,), generator=g))
    W = torch.rand(k, c, q, q, generator=g, dtype=DT) - 0.5 * float(torch.rand(1, generator=g))
    assert (k, c, q, H) == (4, 1, 2, 10)
    sv = float(torch.linalg.matrix_norm(_dense_conv(W, (c, H, H), 1, 0), ord=2))
    old = peck.conv_operator_norm(W, (c, H, H), iters=100) * 1.01
    assert old < sv  # the estimate from below, even with its 1 % margin, is not a bound
    assert peck.conv_lipschitz(W, (c, H, H)) >= sv * (1 - 1e-12)
    k1 = torch.ones(1, dtype=DT)
    assert float(peck.conv_rule(k1, W, "sound", input_shape=(c, H, H))) <= 1 / sv * (1 + 1e-12)


def test_kernel_scaling_divides_bound():
    W = torch.randn(6, 3, 5, 5, generator=_rng(4), dtype=DT)
    k = torch.ones(3, dtype=DT)
    for variant in peck.VARIANTS:
        r1 = peck.conv_rule(k, W, variant, input_shape=(3, 12, 12))
        r2 = peck.conv_rule(k, 2.5 * W, variant, input_shape=(3, 12, 12))
        assert torch.allclose(r1 / r2, torch.full_like(r1, 2.5), rtol=1e-6)


# ---------------------------------------------------------------- Lipschitz constants


def _max_ratio(fn, shape, L, trials=200, seed=0, log_scale=False):
    g = _rng(seed)
    worst = 0.0
    for _ in range(trials):
        X = torch.randn(1, *shape, generator=g, dtype=DT)
        if log_scale:
            X = X * 10 ** (torch.rand(1, generator=g, dtype=DT) * 6 - 3)
        R = torch.randn(1, *shape, generator=g, dtype=DT) * 10 ** float(
            torch.rand(1, generator=g) * 4 - 3)
        worst = max(worst, float((fn(X + R) - fn(X)).norm() / R.norm()))
    assert worst <= L * (1 + 1e-9)
    return worst


@pytest.mark.parametrize("q,s", [(2, 2), (3, 2), (3, 1)])
def test_pool_lipschitz(q, s):
    Lm = peck.pool_lipschitz("max", q, s)
    _max_ratio(lambda v: F.max_pool2d(v, q, s), (2, 9, 9), Lm)
    _max_ratio(lambda v: F.avg_pool2d(v, q, s), (2, 9, 9), peck.pool_lipschitz("avg", q, s))
    # dense check of the average pooling operator norm
    A = _dense_conv(torch.full((1, 1, q, q), 1 / q ** 2, dtype=DT), (1, 9, 9), s, 0)
    assert float(torch.linalg.matrix_norm(A, ord=2)) <= peck.pool_lipschitz("avg", q, s) + 1e-12


def test_max_pool_nonoverlapping_attains_one():
    X = torch.zeros(1, 1, 4, 4, dtype=DT)
    X[0, 0, ::2, ::2] = 5.0
    R = torch.zeros_like(X)
    R[0, 0, ::2, ::2] = 0.1
    ratio = float((F.max_pool2d(X + R, 2) - F.max_pool2d(X, 2)).norm() / R.norm())
    assert ratio == pytest.approx(1.0) == peck.pool_lipschitz("max", 2, 2)
    # the published kappa/t is below the sound value when t >= ceil(q/s)
    k = torch.tensor([1.0], dtype=DT)
    assert float(peck.pool_rule(k, "max", "published", q=2, s=2, t=4)) <= float(
        peck.pool_rule(k, "max", "sound", q=2, s=2, t=4))


def test_global_avg_and_lp_pool():
    _max_ratio(lambda v: v.mean((2, 3)), (3, 5, 5), peck.pool_lipschitz("global_avg", 1, 1, m=25))
    for p in (1.0, 2.0, 4.0):
        _max_ratio(lambda v, p=p: F.lp_pool2d(v.abs() + 1e-3, p, 2, 2), (2, 6, 6),
                   peck.pool_lipschitz("lp", 2, 2, p=p))


def test_lrn_matches_torch_and_lipschitz():
    g = _rng(8)
    X = torch.randn(3, 7, 4, 4, generator=g, dtype=DT) * 30
    for n in (3, 5):
        ref = nn.LocalResponseNorm(n, alpha=n * 1e-4, beta=0.75, k=2.0)(X)
        assert torch.allclose(peck.lrn(X, n, 2.0, 1e-4, 0.75), ref, rtol=1e-12, atol=1e-12)
    L = peck.lrn_lipschitz(5, 2.0, 0.75)
    fn = lambda v: peck.lrn(v, 5, 2.0, 1e-4, 0.75)  # noqa: E731
    _max_ratio(fn, (6, 2, 2), L, log_scale=True)
    # Caffe defaults (k = 1, alpha = 1): nonlinear regime
    _max_ratio(lambda v: peck.lrn(v, 5, 1.0, 1.0, 0.75), (6, 2, 2),
               peck.lrn_lipschitz(5, 1.0, 0.75), log_scale=True)


def test_lrn_gradient_formulas():
    g = _rng(9)
    x = torch.randn(1, 6, dtype=DT) * 20
    kw = {"n": 5, "k": 2.0, "alpha": 1e-3, "beta": 0.75}
    J = torch.autograd.functional.jacobian(lambda v: peck.lrn(v, **kw)[0], x)[:, 0, :]
    assert torch.allclose(peck.lrn_grad_norms(x, **kw)[0], J.norm(dim=1), rtol=1e-10)
    del g


def test_batchnorm_forms_agree_and_sound():
    g = _rng(10)
    d = 6
    gamma = torch.randn(d, generator=g, dtype=DT)
    beta = torch.randn(d, generator=g, dtype=DT)
    mean = torch.randn(d, generator=g, dtype=DT)
    var = torch.rand(d, generator=g, dtype=DT) + 0.1
    x = torch.randn(8, d, generator=g, dtype=DT)
    kappa = torch.rand(8, generator=g, dtype=DT) + 0.1
    sd = torch.sqrt(var + 1e-5)
    a, y = gamma / sd, gamma * (x - mean) / sd + beta
    assert torch.allclose(peck.bn_deltas(kappa, y, a),
                          peck.bn_deltas_printed(kappa, x, gamma, beta, mean, var, 1e-5),
                          rtol=1e-9)
    bn = nn.BatchNorm1d(d).double().eval()
    with torch.no_grad():
        bn.weight.copy_(gamma)
        bn.bias.copy_(beta)
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
    _max_ratio(bn, (d,), float(a.abs().max()))


# ---------------------------------------------------------------- chains


def test_chain_sound_end_to_end_small_cnn():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2, 2), pm.LRN(3),
                        nn.Flatten(), nn.Linear(3 * 3 * 3, 8), nn.ReLU(), nn.Linear(8, 3)
                        ).double().eval()
    x = torch.rand(6, 1, 8, 8, generator=_rng(2), dtype=DT)
    res = peck.chain_bounds(net, x, "sound")
    c = net(x).argmax(1)
    # brute force: many random directions, bisection to the first flip; bound <= all of them
    g = _rng(3)
    for i in range(6):
        u = torch.randn(300, 1, 8, 8, generator=g, dtype=DT)
        u = u / u.flatten(1).norm(dim=1)[:, None, None, None]
        lo, hi = torch.zeros(300, dtype=DT), torch.full((300,), 200.0, dtype=DT)
        flips = net(x[i] + hi[:, None, None, None] * u).argmax(1) != c[i]
        u, lo, hi = u[flips], lo[flips], hi[flips]
        for _ in range(40):
            mid = (lo + hi) / 2
            ok = net(x[i] + mid[:, None, None, None] * u).argmax(1) != c[i]
            hi, lo = torch.where(ok, mid, hi), torch.where(ok, lo, mid)
        if len(hi):
            assert float(res.kappa[i]) <= float(hi.min())
    # prefix Lipschitz x ||R|| >= feature displacement
    L = peck.prefix_lipschitz(net, (1, 8, 8), 7)
    R = torch.randn(6, 1, 8, 8, generator=g, dtype=DT) * 0.1
    disp = (net[:7](x + R) - net[:7](x)).norm(dim=1)
    assert bool((disp <= L * R.flatten(1).norm(dim=1) * (1 + 1e-9)).all())


def test_lenet_published_chain_matches_hand_formula():
    torch.manual_seed(0)
    net = pm.lenet5().double().eval()
    x = torch.rand(3, 1, 28, 28, dtype=DT)
    res = peck.chain_bounds(net, x, "published", power_iters=300)
    h4 = net[:5](x).flatten(1)
    V = net[5].weight.detach()
    z = h4 @ V.T + net[5].bias
    h5 = torch.relu(z)
    d = peck.linear_bound(net[7].weight.detach(), net[7].bias.detach(), h5).delta
    s = float(V.abs().sum(1).max())
    J = (z > 0).double()[:, :, None] * V
    jn = torch.linalg.matrix_norm(J, ord=2)
    k5 = peck.taylor_bound(d, jn, s * s, 500)
    k1 = k5 / 4 / float(net[2].weight.norm()) / 12 / float(net[0].weight.norm())
    assert torch.allclose(res.kappa, k1, rtol=1e-6)
    snd = peck.chain_bounds(net, x, "sound").kappa
    assert bool((snd > 0).all())


def test_nin_lite_chain_runs_and_model_shapes():
    net = pm.nin_lite(width=4).double().eval()
    x = torch.rand(2, 1, 28, 28, dtype=DT)
    assert net(x).shape == (2, 10)
    for v in peck.VARIANTS:
        assert peck.chain_bounds(net, x, v).kappa.shape == (2,)
    assert pm.lenet5_lrn(lrn="both")(x.float()).shape == (2, 10)
    with pytest.raises(ValueError):
        pm.lenet5(lrn="pool3")


def test_corollaries():
    assert peck.kernel_scaling_gain(0.1, 4) == pytest.approx(1.524, abs=5e-4)
    assert peck.kernel_scaling_gain(0.1, 7) == pytest.approx(2.091, abs=5e-4)
    v = peck.geometric_gain(0.01, 0.1, 2.0, np.array([1, 2, 3]))
    assert np.allclose(v, [1.05, 6.05, 506.05], rtol=1e-12)
    ks = [2.0 * 0.01 ** (3 - ell) for ell in (1, 2, 3)]
    assert peck.per_layer_gain(0.1, ks) == pytest.approx(506.05, rel=1e-12)


def test_margin_regularizer_gradient_sign():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 3))
    x = torch.randn(10, 3)
    reg = peck.MarginRegularizer(0.5)
    val, info = reg(net, x, None, net(x))
    h = torch.tanh(net[0](x))
    d = peck.linear_bound(net[2].weight.detach(), net[2].bias.detach(), h.detach()).delta
    assert float(val) == pytest.approx(-0.5 * float(d.mean()), rel=1e-5)
    with pytest.raises(ValueError):
        peck.MarginRegularizer(-1)


# ---------------------------------------------------------------- issue 10: chapter helpers


def test_layer_factors_small_cnn():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
                        nn.Linear(27, 6), nn.ReLU(), nn.Linear(6, 3)).double().eval()
    x = torch.rand(1, 1, 8, 8, generator=_rng(5), dtype=DT)
    rows = E.layer_factors(net, x)
    by = {r["layer"]: r for r in rows}
    conv = by["0:Conv2d"]
    dense = float(torch.linalg.matrix_norm(_dense_conv(net[0].weight.detach().to(DT), (1, 8, 8), 1, 0),
                                           ord=2))
    assert conv["‖T_W‖₂"] == pytest.approx(dense, rel=1e-8)
    assert conv["published ÷ sound"] == pytest.approx(dense / float(net[0].weight.norm()), rel=1e-9)
    assert conv["⌈q/s⌉‖W‖_F"] == pytest.approx(3 * float(net[0].weight.norm()), rel=1e-12)
    assert by["2:MaxPool2d"]["published ÷ sound"] == pytest.approx(1 / 3)  # t = 3, Lip = 1
    # one sample: the product of the per-layer factors is the whole-chain ratio
    prod = math.prod(r["published ÷ sound"] for r in rows[:-1])
    assert prod == pytest.approx(rows[-1]["published ÷ sound"], rel=1e-9)
    pub, snd = peck.chain_bounds(net, x, "published"), peck.chain_bounds(net, x, "sound")
    assert rows[-1]["published ÷ sound"] == pytest.approx(float(pub.kappa / snd.kappa), rel=1e-12)


def test_lrn_jacobian_and_lipschitz_search():
    kw = {"n": 5, "k": 2.0, "alpha": 1e-2, "beta": 0.75}
    x = torch.randn(3, 7, generator=_rng(15), dtype=DT) * 10
    J = E.lrn_jacobian(x, **kw)
    for b in range(3):
        ref = torch.autograd.functional.jacobian(lambda v: peck.lrn(v[None], **kw)[0], x[b])
        assert torch.allclose(J[b], ref, rtol=1e-10, atol=1e-12)
    found = E.lrn_lipschitz_search(5, 2.0, 1e-4, 0.75, channels=8, samples=500, steps=30)
    assert 2.0 ** -0.75 * (1 - 1e-9) <= found <= peck.lrn_lipschitz(5, 2.0, 0.75)


@pytest.mark.parametrize("n,k,alpha,beta", [(5, 2.0, 1e-4, 0.75), (5, 1.0, 1.0, 0.75),
                                            (3, 1.0, 1.0, 0.25), (9, 0.5, 2.0, 0.9), (1, 1.0, 1.0, 0.5)])
def test_lrn_lipschitz_constant_is_valid(n, k, alpha, beta):
    c_beta = beta ** beta / (1 + beta) ** (1 + beta)
    L = peck.lrn_lipschitz(n, k, beta)
    assert L == pytest.approx(k ** -beta * (1 + 2 * beta * c_beta * n ** 0.75), rel=1e-12)
    assert L < k ** -beta * (1 + 2 * beta * n ** 0.75)  # tighter than the constant used before
    # exact Jacobian norms at random points of all scales, many near the critical S = k(1+beta)/beta
    g = _rng(16)
    C = max(n + 2, 6)
    scale = math.sqrt(k / alpha) * 10 ** (torch.rand(4000, 1, generator=g, dtype=DT) * 4 - 2)
    x = torch.randn(4000, C, generator=g, dtype=DT) * scale
    x[:1000] = torch.rand(1000, C, generator=g, dtype=DT).sign() * math.sqrt(k / (alpha * beta * n))
    jn = torch.linalg.matrix_norm(E.lrn_jacobian(x, n, k, alpha, beta), ord=2)
    assert float(jn.max()) <= L
    _max_ratio(lambda v: peck.lrn(v, n, k, alpha, beta), (C, 2, 2), L, log_scale=True)
