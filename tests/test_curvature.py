"""Curvature bounds of Warwick Thm 3.0.1 (spec checks A1-A6) and the batched Lanczos."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from analysis import attacks
from analysis.bounds import curvature as C


def test_h_rationalised_equals_document_form_and_limits():  # A1
    rng = np.random.default_rng(0)
    a = rng.uniform(0.05, 5.0, 500)
    nu = 10 ** rng.uniform(-4, 4, 500)
    t = rng.uniform(0.01, 2.0, 500)
    doc = C.h_document_form(a, nu, t)
    ours = C.h(a, nu, t)
    # the document's form loses digits to cancellation at small ν; compare where it is stable
    ok = 2 * nu * t / a**2 > 1e-6
    assert np.allclose(ours[ok], doc[ok], rtol=1e-9, atol=0)
    assert np.allclose(C.h(a, 0.0, t), t / a, rtol=1e-15)
    assert np.allclose(C.h(0.0, nu, t), np.sqrt(2 * t / nu), rtol=1e-14)
    assert C.h(0.0, 0.0, 0.5) == np.inf
    # the root property: ½νr² + ar = t
    r = ours
    assert np.allclose(0.5 * nu * r**2 + a * r, t, rtol=1e-12)
    with pytest.raises(ValueError):
        C.h(-1.0, 1.0, 1.0)


def _random_case(rng, d=2):
    J = rng.normal(size=d) * 10 ** rng.uniform(-1.5, 0.5)
    A = rng.normal(size=(d, d))
    H = (A + A.T) / 2 * 10 ** rng.uniform(-2, 1.5)
    t = rng.uniform(0.05, 2.0)
    return J, H, t


def test_lower_le_upper_every_branch():  # A2
    rng = np.random.default_rng(1)
    for _ in range(1000):
        J, H, t = _random_case(rng, d=int(rng.integers(2, 8)))
        for br in ("increase", "decrease", "abs"):
            b = C.curvature_bounds(J, H, t, br)
            assert b.lower <= b.upper * (1 + 1e-12)


def test_upper_bounds_are_attained():  # A3
    rng = np.random.default_rng(2)
    for _ in range(200):
        J, H, t = _random_case(rng, d=5)
        w, V = np.linalg.eigh(H)
        for br, k, sign in (("increase", -1, 1.0), ("decrease", 0, -1.0)):
            b = C.curvature_bounds(J, H, t, br)
            if not np.isfinite(b.upper):
                assert br == "decrease" and w[0] >= 0
                continue
            u = V[:, k] * (np.sign(J @ V[:, k]) or 1.0) * sign
            d = float(b.upper) * u
            q = J @ d + 0.5 * d @ H @ d
            assert q == pytest.approx(sign * t, abs=1e-10)


@pytest.mark.parametrize("branch", ["increase", "decrease", "abs"])
def test_bounds_bracket_brute_force_2d(branch):  # A4
    rng = np.random.default_rng(3)
    for _ in range(40):
        J, H, t = _random_case(rng)
        b = C.curvature_bounds(J, H, t, branch)
        true = C.min_norm_quadratic_2d(J, H, t, branch, n_dirs=200_000)
        assert b.lower <= true * (1 + 1e-6)
        assert true <= b.upper * (1 + 1e-6)


def test_document_lower_bound_counterexample():  # A5
    ce = C.counterexample()
    assert ce["doc_lower"] == pytest.approx(4.142, abs=1e-3)
    assert ce["q_at_witness"] == pytest.approx(-0.5, abs=1e-12)
    assert ce["true_abs"] <= math.sqrt(0.1) + 1e-12
    assert ce["doc_lower"] > ce["true_abs"]  # the document's bound is violated
    assert ce["corrected_lower"] == pytest.approx(0.306, abs=1e-3)
    assert ce["corrected_lower"] <= ce["true_abs"]
    # the doc lower bound is however valid for the increase branch
    J, H = np.array([0.1, 0.0]), np.diag([0.01, -10.0])
    assert C.curvature_bounds(J, H, 0.5, "doc").lower <= C.min_norm_quadratic_2d(
        J, H, 0.5, "increase")


class _Quadratic2Class(torch.nn.Module):
    """Logits (½xᵀAx + bᵀx + c, 0): the margin g = z₀ - z₁ is exactly quadratic."""

    def __init__(self, d: int, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        A = torch.randn(d, d, generator=g, dtype=torch.float64)
        self.A = torch.nn.Parameter((A + A.T) / 2 * 0.5)
        self.b = torch.nn.Parameter(torch.randn(d, generator=g, dtype=torch.float64))
        self.c = torch.nn.Parameter(torch.tensor(3.0, dtype=torch.float64))

    def forward(self, x):
        z0 = 0.5 * torch.einsum("bi,ij,bj->b", x, self.A, x) + x @ self.b + self.c
        return torch.stack([z0, torch.zeros_like(z0)], dim=1)


def test_attack_distance_respects_decrease_lower_bound():  # A6
    d = 20
    model = _Quadratic2Class(d, seed=4).eval()
    g = torch.Generator().manual_seed(5)
    x = 0.3 * torch.randn(16, d, generator=g, dtype=torch.float64)
    with torch.no_grad():
        keep = model(x)[:, 0] > 0
    x = x[keep]
    y = torch.zeros(x.shape[0], dtype=torch.long)
    cur = C.network_curvature(model, x, iters=d)
    # exact quadratic: Lanczos with m = d gives the exact spectrum
    A = model.A.detach().numpy()
    w = np.linalg.eigvalsh(A)
    assert np.allclose(cur["lam_min"], w[0], atol=1e-9)
    assert np.allclose(cur["lam_max"], w[-1], atol=1e-9)
    lower = cur["lower_decrease"]
    for res in (attacks.deepfool(model, x, y, box=None),
                attacks.pgd(model, x, y, eps=3.0, norm="l2", steps=100, box=None)):
        dist = res.norms_l2.numpy()
        ok = res.success.numpy()
        assert ok.any()
        assert np.all(dist[ok] >= lower[ok] * (1 - 1e-9))
    # x + δ_up reaches the boundary: g(x + δ_up) <= 1e-9 (F̃ >= -1e-9)
    xs = x.clone().requires_grad_(True)
    fn = C.margin_fn(model, torch.zeros(len(x), dtype=torch.long),
                     torch.ones(len(x), dtype=torch.long))
    Jt = torch.autograd.grad(fn(xs).sum(), xs)[0].detach()
    wv, V = np.linalg.eigh(A)
    u = torch.from_numpy(V[:, 0])
    fin = np.isfinite(cur["upper_decrease"])
    assert fin.all()  # a random symmetric A has a negative eigenvalue
    s = -torch.sign(Jt @ u)
    s[s == 0] = 1.0
    x_up = x + (torch.from_numpy(cur["upper_decrease"]) * s)[:, None] * u[None, :]
    with torch.no_grad():
        assert (fn(x_up) <= 1e-9).all()


def test_batched_lanczos_matches_dense_eigh():
    torch.manual_seed(0)
    n, B = 12, 3
    A = torch.randn(B, n, n, dtype=torch.float64)
    A = (A + A.transpose(1, 2)) / 2
    v0 = torch.randn(B, n, dtype=torch.float64)
    theta, U = C.batched_lanczos(lambda v: torch.bmm(A, v.unsqueeze(2)).squeeze(2), v0, n)
    ref = torch.linalg.eigvalsh(A)
    assert torch.allclose(theta, ref, atol=1e-10)
    # Ritz vectors are eigenvectors
    res = torch.bmm(A, U) - U * theta[:, None, :]
    assert res.abs().max() < 1e-8
    # low-rank operator: the Krylov space breaks down early and is restarted
    P = torch.randn(B, n, 2, dtype=torch.float64)
    A2 = torch.bmm(P, P.transpose(1, 2))
    theta2, _ = C.batched_lanczos(lambda v: torch.bmm(A2, v.unsqueeze(2)).squeeze(2), v0, n)
    assert torch.allclose(theta2, torch.linalg.eigvalsh(A2), atol=1e-9)


def test_network_curvature_on_tiny_rnn_matches_dense_hessian():
    torch.manual_seed(0)

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.RNN(3, 8, batch_first=True, nonlinearity="tanh")
            self.out = torch.nn.Linear(8, 5)

        def forward(self, x):
            return self.out(self.rnn(x)[0][:, -1])

    model = Tiny().double().eval()
    x = torch.randn(4, 4, 3, dtype=torch.float64)
    cur = C.network_curvature(model, x, iters=12)
    for b in range(4):
        c, j = int(cur["c"][b]), int(cur["j"][b])

        def g(v, c=c, j=j):
            z = model(v.reshape(1, 4, 3))[0]
            return z[c] - z[j]

        H = torch.autograd.functional.hessian(g, x[b].reshape(-1))
        w = torch.linalg.eigvalsh(H)
        assert cur["lam_min"][b] == pytest.approx(float(w[0]), abs=1e-9)
        assert cur["lam_max"][b] == pytest.approx(float(w[-1]), abs=1e-9)
        Jb = torch.autograd.functional.jacobian(g, x[b].reshape(-1))
        assert cur["J_norm"][b] == pytest.approx(float(Jb.norm()), rel=1e-10)
        assert cur["t"][b] > 0
    for br in C.BRANCHES:
        assert np.all(cur[f"lower_{br}"] <= cur[f"upper_{br}"] * (1 + 1e-12))


def test_bad_branch_raises():
    with pytest.raises(ValueError):
        C.curvature_bounds([1.0, 0.0], np.eye(2), 1.0, "sideways")


def test_fig6_curves_decrease_and_converge():
    nu = np.geomspace(1e-2, 1e6, 50)
    a, b = C.fig6_curves(nu, 0.1), C.fig6_curves(nu, 5.0)
    for c in (a, b):
        assert np.all(np.diff(c["lower"]) < 0) and np.all(np.diff(c["upper"]) < 0)
        assert np.all(c["lower"] <= c["upper"])
    ratio = a["lower"] / b["lower"]
    assert ratio[-1] == pytest.approx(1.005, abs=1e-3)
    assert float(C.h(0.1, 1.0, 0.5) / C.h(5.0, 1.0, 0.5)) == pytest.approx(9.14, abs=0.01)
    fam = C.doc_vs_true_family(np.array([0.01, 1.0]), n_dirs=20_000)
    assert np.all(fam["doc_lower"] > fam["true"])
    assert np.all(fam["corrected_lower"] <= fam["true"] * (1 + 1e-9))


def test_decision_slice_of_a_linear_model():
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 2).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.float64))
        lin.bias.zero_()
    x = torch.zeros(4, dtype=torch.float64)
    u1, u2 = C.random_plane((4,), seed=1)
    assert float(u1 @ u2) == pytest.approx(0.0, abs=1e-12)
    assert float(u1.norm()) == pytest.approx(1.0) and float(u2.norm()) == pytest.approx(1.0)
    lab = C.decision_slice(lin, x, u1, u2, radius=1.0, grid=21)
    a = np.linspace(-1, 1, 21)
    ref = ((a[:, None] * float(u1[0]) + a[None, :] * float(u2[0])) <= 0).astype(int)
    inside = np.abs(a[:, None] * float(u1[0]) + a[None, :] * float(u2[0])) > 1e-9
    assert np.array_equal(lab[inside], ref[inside])
    assert C.boundary_fraction(np.zeros((5, 5))) == 0.0
    half = np.zeros((4, 4))
    half[2:] = 1
    assert C.boundary_fraction(half) == pytest.approx(4 / 24)
