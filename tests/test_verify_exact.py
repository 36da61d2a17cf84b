"""The pruned exact L2 programs (``exact_distance(..., prune=True)``): the same minimum as the
reference programs, sound neuron bounds over the L2 ball, the objective cap."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from analysis import attacks
from analysis import verify as V
from analysis.verify.crown import _box, _spec
from analysis.verify.exact import _domain, _encode, _solve_scip

DT = torch.float64


def _net(seed: int, d: int, widths: tuple[int, ...], k: int) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Linear(d, w), nn.ReLU()]
        d = w
    return nn.Sequential(*layers, nn.Linear(d, k)).double()


def _points(model: nn.Module, n: int, d: int, seed: int, box: tuple[float, float] | None):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, dtype=DT, generator=g)
    if box is None:
        x = 2 * x - 1
    with torch.no_grad():
        y = model(x).argmax(1)
    mn = attacks.min_norm(model, x, y, box=box, seed=seed)
    ok = mn.success
    return x[ok], mn.x_adv[ok], mn.distance[ok].numpy()


def test_pruned_programs_give_the_reference_minimum():
    for seed, d, box in ((0, 3, None), (2, 6, (0.0, 1.0))):
        model = _net(seed, d, (8, 6), 4)
        x, known, found = _points(model, 4, d, seed, box)
        assert len(x) >= 3
        kw = {"norm": "l2", "box": box, "in_shape": (d,), "time_limit": 30}
        ref = V.exact_distance(model, x, known, prune=False, **kw)
        new = V.exact_distance(model, x, known, **kw)
        assert ref.status == ["solved"] * len(x) and new.status == ["solved"] * len(x)
        # the same minimum, to the programs' tolerance (relative gap 1e-7, feasibility 1e-7)
        np.testing.assert_allclose(new.upper, ref.upper, rtol=1e-5)
        np.testing.assert_allclose(new.lower, ref.lower, rtol=1e-5)
        assert np.all(new.lower <= new.upper) and np.all(new.upper <= found + 1e-9)
        assert np.all(new.binaries <= ref.binaries)
        with torch.no_grad():  # the upper end is a verified misclassified point
            assert torch.all(model(new.x_adv).argmax(1) != model(x).argmax(1))
        np.testing.assert_allclose(new.upper, (new.x_adv - x).norm(dim=1).numpy(), rtol=1e-9)


@pytest.mark.parametrize("norm", ["linf", "l1"])
def test_pruned_milp_gives_the_reference_minimum(norm):
    """For L∞ / L1 ``prune`` only reorders the classes and shrinks the domain: same minimum."""
    model = _net(1, 3, (8, 6), 4)
    x, known, _ = _points(model, 4, 3, 1, None)
    kw = {"norm": norm, "box": None, "in_shape": (3,), "time_limit": 30}
    ref = V.exact_distance(model, x, known, prune=False, **kw)
    new = V.exact_distance(model, x, known, **kw)
    assert ref.status == ["solved"] * len(x) and new.status == ["solved"] * len(x)
    np.testing.assert_allclose(new.upper, ref.upper, rtol=1e-6)
    np.testing.assert_allclose(new.lower, ref.lower, rtol=1e-6)


def test_ball_bounds_hold_on_sampled_points_and_are_tighter():
    model = _net(3, 10, (12, 8), 3)
    net = V.network(model, (10,))
    x0 = torch.full((10,), 0.5, dtype=DT)
    y = int(net.forward(x0[None]).argmax(1))
    lo_b, hi_b = _box(x0, (0.0, 1.0))
    radius = 0.4
    spec = _spec(net, y, 3)
    _, _, ball, _ = _domain(net, x0, radius, "l2", lo_b, hi_b, spec)
    _, _, box_only, _ = _domain(net, x0, radius, "l2", lo_b, hi_b, spec, ball=False)
    g = torch.Generator().manual_seed(0)
    u = torch.randn(20000, 10, dtype=DT, generator=g)
    r = radius * torch.rand(20000, 1, dtype=DT, generator=g) ** (1 / 10)
    pts = (x0 + r * u / u.norm(dim=1, keepdim=True)).clamp(0.0, 1.0)
    pts = pts[(pts - x0).norm(dim=1) <= radius]
    h, width_ball, width_box = pts, 0.0, 0.0
    for k, m in enumerate(net.layers):
        if isinstance(m, V.Nonlinear):
            lo, up = ball[k]
            assert torch.all(h >= lo - 1e-9) and torch.all(h <= up + 1e-9)
            assert torch.all(lo >= box_only[k][0]) and torch.all(up <= box_only[k][1])
            width_ball += float((up - lo).sum())
            width_box += float((box_only[k][1] - box_only[k][0]).sum())
        h = m.forward(h)
    assert width_ball < 0.8 * width_box  # in 10 dimensions the ball is much the smaller set


def test_objective_cap_prunes_only_what_cannot_beat_it():
    model = _net(4, 2, (6,), 3)
    net = V.network(model, (2,))
    x, known, found = _points(model, 3, 2, 4, None)
    x0, adv = x[0], known[0]
    y, j = (int(net.forward(v[None]).argmax(1)) for v in (x0, adv))
    lo_b, hi_b = _box(x0, None)
    radius = 1.5 * float(found[0])
    lo_in, hi_in, bounds, _ = _domain(net, x0, radius, "l2", lo_b, hi_b, _spec(net, y, 3))
    P, xs, logits, _ = _encode(net, x0.numpy(), lo_in.numpy(), hi_in.numpy(), bounds)
    coef: dict[int, float] = {}
    for e, s in ((logits[j], 1.0), (logits[y], -1.0)):
        for v, c in e.items():
            coef[v] = coef.get(v, 0.0) + s * c
    const = coef.pop(-1, 0.0)
    P.row(coef, -const, math.inf)  # f_j ≥ f_y
    low, up, sol = _solve_scip(P, xs, x0.numpy(), 20.0, radius, radius=radius)
    assert sol is not None and low <= up <= float(found[0]) + 1e-9
    same = _solve_scip(P, xs, x0.numpy(), 20.0, radius, radius=up * 1.01)
    assert same[2] is not None and math.isclose(same[1], up, rel_tol=1e-5)
    below = _solve_scip(P, xs, x0.numpy(), 20.0, radius, radius=up * 0.99)
    assert below == (math.inf, math.inf, None)  # nothing of class j that close


def test_ball_box_minimum_is_the_convex_minimum():
    from scipy.optimize import minimize

    from analysis.verify.exact import _ball_box_min

    g = torch.Generator().manual_seed(6)
    A = torch.randn(5, 8, dtype=DT, generator=g)
    x0 = torch.rand(8, dtype=DT, generator=g) * torch.tensor([0, 0, 0, 1, 1, 1, 1, 1], dtype=DT)
    lo, hi = torch.zeros(8, dtype=DT), torch.ones(8, dtype=DT)
    radius = 0.7
    low = _ball_box_min(A, x0, radius, lo, hi)
    for r in range(len(A)):
        a = A[r].numpy()
        res = minimize(lambda v, a=a: a @ v, x0.numpy(), jac=lambda v, a=a: a, method="SLSQP",
                       bounds=list(zip(lo.numpy(), hi.numpy())),
                       constraints=[{"type": "ineq",
                                     "fun": lambda v: radius ** 2 - ((v - x0.numpy()) ** 2).sum()}],
                       options={"ftol": 1e-12, "maxiter": 500})
        assert float(low[r]) <= res.fun + 1e-9  # sound: never above a feasible point's value
        assert float(low[r]) >= res.fun - 1e-3 * max(1.0, abs(res.fun))  # and tight
        ball = float(a @ x0.numpy() - radius * np.linalg.norm(a))
        box = float(np.clip(a, 0, None) @ lo.numpy() + np.clip(a, None, 0) @ hi.numpy())
        assert float(low[r]) >= max(ball, box) - 1e-12  # at least CROWN's concretisation
