"""Tests of analysis.verify: closed forms on linear models, grid search in 2-D, soundness of the
relaxations by sampling, and the order IBP ≤ CROWN ≤ exact ≤ attack."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from analysis import attacks
from analysis import verify as V
from analysis.verify.crown import _spec
from analysis.verify.relax import fusable_pool

DT = torch.float64


def _linear(seed: int = 0, d: int = 5, k: int = 3) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, k)).double()


def _closed_form(model: nn.Sequential, x: torch.Tensor, p: float) -> np.ndarray:
    """min_j (f_y − f_j) / ‖w_y − w_j‖_q (q the dual of p): the exact distance of a linear model."""
    q = {2: 2, math.inf: 1, 1: math.inf}[p]
    W = model[0].weight.detach()
    with torch.no_grad():
        lg = model(x)
    y = lg.argmax(1)
    out = []
    for i in range(len(x)):
        out.append(min(float((lg[i, y[i]] - lg[i, j]) / torch.linalg.vector_norm(W[y[i]] - W[j], q))
                       for j in range(lg.shape[1]) if j != y[i]))
    return np.array(out)


def _relu_net(seed: int = 0, widths=(12, 12), d: int = 2, k: int = 3) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Linear(d, w), nn.ReLU()]
        d = w
    layers.append(nn.Linear(d, k))
    return nn.Sequential(*layers).double()


def _far_adversarial(model: nn.Module, x: torch.Tensor, box=None) -> torch.Tensor:
    with torch.no_grad():
        y = model(x).argmax(1)
    return attacks.min_norm(model, x, y, box=box).x_adv


def test_linear_model_crown_ibp_equal_closed_form_l2():
    model = _linear()
    x = torch.randn(6, 5, dtype=DT)
    exact = _closed_form(model, x, 2)
    for method in ("crown", "ibp"):
        r = V.certified_radius(model, x, method=method, norm="l2", in_shape=(5,), rtol=1e-10,
                               steps=80)
        np.testing.assert_allclose(r.radius, exact, rtol=1e-8)
    rinf = V.crown_radius(model, x, norm="linf", in_shape=(5,), rtol=1e-10, steps=80)
    np.testing.assert_allclose(rinf.radius, _closed_form(model, x, math.inf), rtol=1e-8)


def test_linear_model_lipschitz_margin_closed_form():
    model = _linear(1)
    x = torch.randn(5, 5, dtype=DT)
    with torch.no_grad():
        top = model(x).topk(2, 1).values
    L = float(torch.linalg.matrix_norm(model[0].weight.detach(), 2))
    expected = (top[:, 0] - top[:, 1]).numpy() / (math.sqrt(2) * L)
    r = V.lipschitz_radius(model, x, in_shape=(5,))
    np.testing.assert_allclose(r.radius, expected, rtol=1e-7)
    assert np.all(r.radius <= _closed_form(model, x, 2) * (1 + 1e-9))


@pytest.mark.parametrize("norm,p", [("l2", 2), ("linf", math.inf), ("l1", 1)])
def test_exact_distance_linear_model_closed_form(norm, p):
    model = _linear(2, d=4)
    x = torch.randn(3, 4, dtype=DT)
    known = _far_adversarial(model, x)
    ex = V.exact_distance(model, x, known, norm=norm, in_shape=(4,), time_limit=20)
    np.testing.assert_allclose(ex.upper, _closed_form(model, x, p), rtol=1e-4)
    assert ex.status == ["solved"] * 3


def test_exact_distance_matches_grid_search_2d():
    model = _relu_net()
    x = torch.rand(4, 2, dtype=DT) * 2 - 1
    known = _far_adversarial(model, x)
    g = torch.linspace(-4, 4, 801, dtype=DT)
    grid = torch.cartesian_prod(g, g)
    with torch.no_grad():
        pg = model(grid).argmax(1)
        y = model(x).argmax(1)
    step = float(g[1] - g[0])
    for norm in ("l2", "linf"):
        ex = V.exact_distance(model, x, known, norm=norm, in_shape=(2,), time_limit=20)
        for i in range(len(x)):
            other = grid[pg != y[i]] - x[i]
            brute = float(other.norm(dim=1).min() if norm == "l2" else other.abs().amax(1).min())
            # the grid point is within step·√2/2 of the true boundary point's cell
            assert ex.lower[i] <= brute + 1e-9
            assert brute <= ex.upper[i] + step
        assert np.all(ex.lower <= ex.upper)


def test_exact_upper_point_misclassified_and_in_box():
    model, x = _trained_toy(1)
    known = _far_adversarial(model, x, box=(0.0, 1.0))
    with torch.no_grad():
        y = model(x).argmax(1)
        ok = model(known).argmax(1) != y
    assert int(ok.sum()) >= 3
    x, known, y = x[ok], known[ok], y[ok]
    ex = V.exact_distance(model, x, known, norm="l2", box=(0.0, 1.0), in_shape=(2,), time_limit=20)
    with torch.no_grad():
        assert torch.all(model(ex.x_adv).argmax(1) != y)
    assert float(ex.x_adv.min()) >= 0 and float(ex.x_adv.max()) <= 1
    np.testing.assert_allclose(ex.upper, (ex.x_adv - x).norm(dim=1).numpy(), rtol=1e-9)
    assert np.all(ex.lower <= ex.upper)
    assert np.all(ex.upper <= (known - x).norm(dim=1).numpy() + 1e-12)


def _trained_toy(seed: int = 0) -> tuple[nn.Sequential, torch.Tensor]:
    torch.manual_seed(seed)
    x = torch.rand(300, 2, dtype=DT)
    y = ((x[:, 0] - 0.5) ** 2 + (x[:, 1] - 0.5) ** 2 < 0.1).long() + (x[:, 0] > 0.8).long()
    model = _relu_net(seed, widths=(10, 10), k=3)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model, x[:6]


def test_ibp_le_crown_le_exact_le_attack_on_trained_net():
    model, x = _trained_toy()
    with torch.no_grad():
        y = model(x).argmax(1)
    mn = attacks.min_norm(model, x, y, box=(0.0, 1.0))
    assert bool(mn.success.all())
    ex = V.exact_distance(model, x, mn.x_adv, norm="l2", box=(0.0, 1.0), in_shape=(2,))
    ibp = V.ibp_radius(model, x, norm="l2", box=(0.0, 1.0), in_shape=(2,))
    crown = V.crown_radius(model, x, norm="l2", box=(0.0, 1.0), in_shape=(2,))
    lip = V.lipschitz_radius(model, x, in_shape=(2,))
    assert np.all(ibp.radius <= crown.radius * (1 + 1e-3) + 1e-12)
    assert np.all(crown.radius <= ex.lower + 1e-9)
    assert np.all(lip.radius <= ex.lower + 1e-9)
    assert np.all(ex.upper <= mn.distance.numpy() + 1e-9)
    # L∞ the same way, against PGD-L∞ at the exact radius plus a margin: no success below it
    exi = V.exact_distance(model, x, mn.x_adv, norm="linf", box=(0.0, 1.0), in_shape=(2,))
    ci = V.crown_radius(model, x, norm="linf", box=(0.0, 1.0), in_shape=(2,))
    assert np.all(ci.radius <= exi.lower + 1e-9)


def _sample_ball(x0: torch.Tensor, eps: float, norm: str, n: int, box=None) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    d = x0.numel()
    if norm == "linf":
        u = (torch.rand(n, d, generator=g, dtype=DT) * 2 - 1) * eps
        u[: n // 4] = torch.sign(u[: n // 4]) * eps  # corners
    else:
        u = torch.randn(n, d, generator=g, dtype=DT)
        u = u / u.norm(dim=1, keepdim=True) * eps * torch.rand(n, 1, generator=g, dtype=DT) ** (1 / d)
    pts = x0 + u
    if box is not None:
        pts = pts.clamp(*box)
    return pts


@pytest.mark.parametrize("act", ["relu", "tanh"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_crown_preactivation_bounds_contain_samples_mlp(act, norm):
    torch.manual_seed(4)
    Act = nn.ReLU if act == "relu" else nn.Tanh
    model = nn.Sequential(nn.Linear(4, 16), Act(), nn.Linear(16, 16), Act(), nn.Linear(16, 3)).double()
    net = V.network(model, (4,))
    x0 = torch.rand(4, dtype=DT)
    eps = 0.3
    spec = _spec(net, 0, 3)
    bounds, low = V.crown_bounds(net, x0, eps, norm, (0.0, 1.0), spec)
    ibounds, ilow = V.ibp_bounds(net, x0, eps, norm, (0.0, 1.0), spec)
    pts = _sample_ball(x0, eps, norm, 20000, (0.0, 1.0))
    h = pts
    for k, m in enumerate(net.layers):
        if k in bounds:
            lo, up = bounds[k]
            assert torch.all(h >= lo - 1e-9) and torch.all(h <= up + 1e-9)
            ilo, iup = ibounds[k]
            assert torch.all(h >= ilo - 1e-9) and torch.all(h <= iup + 1e-9)
        h = m.forward(h)
    margins = h @ spec.T
    assert torch.all(margins >= low - 1e-9)
    assert torch.all(margins >= ilow - 1e-9)


def test_crown_bounds_contain_samples_cnn_with_pooling():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.MaxPool2d(2), nn.Conv2d(3, 4, 2), nn.ReLU(),
                          nn.AvgPool2d(2), nn.Flatten(), nn.Linear(4, 6), nn.ReLU(),
                          nn.Linear(6, 3)).double()
    net = V.network(model, (1, 8, 8))
    x0 = torch.rand(1, 8, 8, dtype=DT)
    with torch.no_grad():
        np.testing.assert_allclose(net.forward(x0[None]).numpy(), model(x0[None]).numpy(), atol=1e-12)
    spec = _spec(net, 1, 3)
    for norm in ("linf", "l2"):
        bounds, low = V.crown_bounds(net, x0.reshape(-1), 0.2, norm, (0.0, 1.0), spec)
        pts = _sample_ball(x0.reshape(-1), 0.2, norm, 5000, (0.0, 1.0))
        h = pts
        for k, m in enumerate(net.layers):
            if k in bounds:
                lo, up = bounds[k]
                assert torch.all(h >= lo - 1e-9) and torch.all(h <= up + 1e-9)
            h = m.forward(h)
        assert torch.all(h @ spec.T >= low - 1e-9)


def test_tanh_relaxation_sound_by_dense_sampling():
    rng = np.random.default_rng(0)
    los = torch.tensor(rng.uniform(-4, 3, 400), dtype=DT)
    ups = los + torch.tensor(rng.exponential(1.5, 400), dtype=DT)
    los = torch.cat([los, torch.tensor([0.0, -2.0, 0.5, -1e-12])])
    ups = torch.cat([ups, torch.tensor([1e-12, 0.0, 0.5, 1e-12])])
    aL, bL, aU, bU = V.tanh_relaxation(los, ups)
    t = torch.linspace(0, 1, 2001, dtype=DT)[:, None]
    z = los + t * (ups - los)
    f = torch.tanh(z)
    assert torch.all(aL * z + bL <= f + 1e-12)
    assert torch.all(aU * z + bU >= f - 1e-12)
    # tightness on the concave side: the upper line touches tanh
    gap = (aU * z + bU - f).min(0).values
    assert float(gap[(los > 0) & (ups - los > 0.1)].max()) < 1e-9


def test_relu_relaxation_sound():
    lo = torch.tensor([-2.0, -1.0, 0.5, -3.0], dtype=DT)
    up = torch.tensor([1.0, 3.0, 2.0, -0.5], dtype=DT)
    aL, bL, aU, bU = V.relu_relaxation(lo, up)
    t = torch.linspace(0, 1, 101, dtype=DT)[:, None]
    z = lo + t * (up - lo)
    assert torch.all(aL * z + bL <= z.clamp_min(0) + 1e-12)
    assert torch.all(aU * z + bU >= z.clamp_min(0) - 1e-12)


def test_small_cnn_radii_below_attack():
    torch.manual_seed(6)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.MaxPool2d(2, 2), nn.Flatten(), nn.Linear(36, 10),
                          nn.ReLU(), nn.Linear(10, 3)).double()
    x = torch.rand(3, 1, 8, 8, dtype=DT)
    with torch.no_grad():
        y = model(x).argmax(1)
    mn = attacks.min_norm(model, x, y, box=(0.0, 1.0))
    crown = V.crown_radius(model, x, norm="l2", box=(0.0, 1.0), in_shape=(1, 8, 8))
    ibp = V.ibp_radius(model, x, norm="l2", box=(0.0, 1.0), in_shape=(1, 8, 8))
    lip = V.lipschitz_radius(model, x, in_shape=(1, 8, 8))
    d = mn.distance.numpy()
    assert np.all(crown.radius <= d) and np.all(ibp.radius <= d) and np.all(lip.radius <= d)
    assert np.all(ibp.radius <= crown.radius * (1 + 1e-3) + 1e-12)
    # 154 binaries: not closed in 3 s, so a bracket with status "gap", still ordered
    ex = V.exact_distance(model, x[:1], mn.x_adv[:1], norm="l2", box=(0.0, 1.0),
                          in_shape=(1, 8, 8), time_limit=3)
    assert np.all(ex.lower <= ex.upper) and np.all(ex.upper <= d[:1] + 1e-9)
    assert np.all(crown.radius[:1] <= ex.upper)
    assert all(s in ("solved", "gap") for s in ex.status)


def test_tanh_network_refused_by_exact():
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 2)).double()
    x = torch.zeros(1, 2, dtype=DT)
    with pytest.raises(ValueError, match="piecewise-linear"):
        V.exact_distance(model, x, x + 1, in_shape=(2,))


def _pool_cnn(seed: int = 7) -> nn.Sequential:
    """Two conv → max-pool blocks (padding, a rectangular kernel, overlapping pooling)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 3, (3, 2), padding=(1, 0)), nn.MaxPool2d(3, 2),
                         nn.Conv2d(3, 4, 2, padding=1), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(24, 6), nn.ReLU(), nn.Linear(6, 3)).double()


def test_fused_pool_conv_step_equals_layer_by_layer():
    model = _pool_cnn()
    net = V.network(model, (2, 11, 9))
    pools = [k for k, m in enumerate(net.layers) if isinstance(m, V.Nonlinear) and m.kind == "maxpool"]
    assert len(pools) == 2 and all(fusable_pool(net.layers[k], net.layers[k - 1]) for k in pools)
    x0 = torch.rand(2 * 11 * 9, dtype=DT, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = int(model(x0.reshape(1, 2, 11, 9)).argmax())
    spec = _spec(net, y, 3)
    for norm, eps in (("l2", 0.3), ("linf", 0.05), ("l2", 3.0)):
        fast, low = V.crown_bounds(net, x0, eps, norm, (0.0, 1.0), spec)
        ref, low_ref = V.crown_bounds(net, x0, eps, norm, (0.0, 1.0), spec, fuse=False)
        for k in ref:
            for a, b in zip(fast[k], ref[k]):
                np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(low.numpy(), low_ref.numpy(), rtol=1e-10, atol=1e-10)
    x = torch.rand(3, 2, 11, 9, dtype=DT, generator=torch.Generator().manual_seed(2))
    kw = {"norm": "l2", "box": (0.0, 1.0), "in_shape": (2, 11, 9)}
    fast_r = V.crown_radius(model, x, **kw)
    ref_r = V.crown_radius(model, x, fuse=False, **kw)
    assert np.all(fast_r.radius > 0)
    np.testing.assert_allclose(fast_r.radius, ref_r.radius, rtol=1e-9)


def test_fused_crown_below_exact_distance_small_cnn():
    norm = "linf"  # HiGHS closes these programs in well under a second; L2 (SCIP) is slower
    torch.manual_seed(8)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(8, 3)).double()
    x = torch.rand(3, 1, 4, 4, dtype=DT)
    with torch.no_grad():
        y = model(x).argmax(1)
    mn = attacks.min_norm(model, x, y, box=(0.0, 1.0))
    crown = V.crown_radius(model, x, norm=norm, box=(0.0, 1.0), in_shape=(1, 4, 4))
    ex = V.exact_distance(model, x, mn.x_adv, norm=norm, box=(0.0, 1.0), in_shape=(1, 4, 4),
                          time_limit=20)
    assert np.all(crown.radius > 0)
    assert np.all(crown.radius <= ex.upper + 1e-9)
    solved = np.array([s == "solved" for s in ex.status])
    assert solved.any()
    assert np.all(crown.radius[solved] <= ex.lower[solved] * (1 + 1e-6) + 1e-9)


def test_a_reshape_only_map_passes_bounds_back_unchanged():
    """Max pooling before the ReLU leaves an empty (reshape-only) map between them: its
    backward step is the identity, never a dense identity matrix."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(),
                          nn.Linear(18, 3)).double()
    net = V.network(model, (1, 8, 8))
    empty = [m for m in net.layers if hasattr(m, "modules")
             and all(isinstance(u, (nn.Flatten, nn.Identity)) for u in m.modules)]
    assert empty, [type(m).__name__ for m in net.layers]
    for aff in empty:
        lam = torch.randn(4, aff.n_out, dtype=DT)
        assert aff.back(lam) is lam
        h = torch.zeros(4, aff.n_in, dtype=DT, requires_grad=True)
        (vjp,) = torch.autograd.grad(aff.linear(h), h, lam)  # the general path it replaces
        torch.testing.assert_close(vjp, lam)
    x = torch.rand(2, 1, 8, 8, dtype=DT)
    y = model(x).argmax(1)
    r = V.crown_radius(model, x, y, norm="l2", box=(0.0, 1.0)).radius
    assert np.all(r > 0) and np.all(np.isfinite(r))


def test_native_output_is_silenced_only_inside_the_block(capfd):
    import os

    from analysis.verify.exact import quiet_native_output

    with quiet_native_output():
        os.write(1, b"native stdout\n")
        os.write(2, b"native stderr\n")
    os.write(1, b"after\n")
    out, err = capfd.readouterr()
    assert "native" not in out + err and "after" in out


def _patch_nets() -> list[tuple[nn.Sequential, tuple[int, int, int]]]:
    """Image nets that exercise every patch step: padding, stride 2, rectangular kernels,
    overlapping pooling, pooling before the ReLU (the identity map between them), 1x1 convs,
    average pooling (the dense fallback), Tanh."""
    torch.manual_seed(11)
    lenet_like = nn.Sequential(nn.Conv2d(1, 3, 3), nn.MaxPool2d(2), nn.Conv2d(3, 4, 3),
                               nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 7), nn.ReLU(),
                               nn.Linear(7, 3))
    small = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
                          nn.Conv2d(3, 4, (3, 2), padding=(1, 0), stride=(1, 2)),
                          nn.MaxPool2d(3, 2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
    nin_like = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, stride=2), nn.ReLU(),
                             nn.Conv2d(3, 3, 1), nn.Tanh(), nn.MaxPool2d(2, 1),
                             nn.Conv2d(3, 4, 2, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                             nn.Conv2d(4, 3, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return [(lenet_like.double(), (1, 14, 14)), (small.double(), (2, 12, 14)),
            (nin_like.double(), (1, 11, 11))]


@pytest.mark.parametrize("which", [0, 1, 2])
def test_patch_backward_pass_equals_dense_reference(which):
    """CROWN's patch path (fuse=True) gives the dense layer-by-layer bounds, every layer."""
    model, shape = _patch_nets()[which]
    net = V.network(model, shape)
    gen = torch.Generator().manual_seed(which)
    x0 = torch.rand(math.prod(shape), dtype=DT, generator=gen)
    with torch.no_grad():
        np.testing.assert_allclose(net.forward(x0[None]).numpy(),
                                   model(x0.reshape(1, *shape)).numpy(), atol=1e-12)
        y = int(model(x0.reshape(1, *shape)).argmax())
    spec = _spec(net, y, 3)
    for norm, eps, box in (("l2", 0.4, (0.0, 1.0)), ("linf", 0.05, (0.0, 1.0)),
                           ("l2", 0.2, None), ("linf", 0.1, None)):
        fast, low = V.crown_bounds(net, x0, eps, norm, box, spec, chunk=7)
        ref, low_ref = V.crown_bounds(net, x0, eps, norm, box, spec, fuse=False)
        assert fast.keys() == ref.keys()
        for k in ref:
            for a, b in zip(fast[k], ref[k]):
                np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(low.numpy(), low_ref.numpy(), rtol=1e-10, atol=1e-10)
        # not vacuous: some unstable units, so the relaxations were used
        assert any(bool(((lo < 0) & (up > 0)).any()) for lo, up in ref.values())


def test_patches_dense_places_each_patch_at_its_receptive_field():
    from analysis.verify import patches as P

    torch.manual_seed(3)
    conv = nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 1)).double()
    net = V.network(nn.Sequential(conv, nn.ReLU()), (2, 7, 6))
    aff = net.layers[0]
    rows = P.conv_rows(aff, torch.arange(3))
    lam = rows.dense()  # rows (n, i, j): +A rows then −A rows
    A = aff.dense()
    np.testing.assert_allclose(lam.numpy(), torch.cat([A, -A]).numpy(), atol=1e-14)
    np.testing.assert_allclose(rows.const.reshape(-1).numpy(),
                               torch.cat([aff.bias, -aff.bias]).numpy(), atol=1e-14)
