"""Input derivatives against finite differences and dense linear algebra (float64)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from analysis import autodiff as ad

D, K, B = 7, 4, 5



def _mlp(act: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(D, 12), act, torch.nn.Linear(12, 9), act, torch.nn.Linear(9, K)
    ).double().eval()


@pytest.fixture(params=["softplus", "tanh"])
def model(request):
    act = torch.nn.Softplus() if request.param == "softplus" else torch.nn.Tanh()
    return _mlp(act)


@pytest.fixture
def xy():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, D, generator=g, dtype=torch.float64)
    y = torch.randint(0, K, (B,), generator=g)
    return x, y


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).norm() / b.norm()).detach())


def _loss_fn(model, y):
    return lambda z: F.cross_entropy(model(z), y, reduction="none")


def test_jacobian_matches_central_differences(model, xy):
    x, _ = xy
    J = ad.input_jacobian(model, x)
    assert J.shape == (B, K, D)
    h = 1e-6
    fd = torch.empty_like(J)
    with torch.no_grad():
        for j in range(D):
            e = torch.zeros(D, dtype=torch.float64)
            e[j] = h
            fd[:, :, j] = (model(x + e) - model(x - e)) / (2 * h)
    assert _rel(J, fd) < 1e-7


def test_jacobian_of_image_shaped_input():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 3 * 3, K)).double()
    x = torch.randn(B, 2, 3, 3, dtype=torch.float64)
    J = ad.input_jacobian(m, x)
    assert J.shape == (B, K, 2, 3, 3)
    # affine model: the Jacobian is the weight matrix for every sample
    W = m[1].weight.reshape(K, 2, 3, 3)
    assert torch.allclose(J, W.expand(B, *W.shape))


def test_jvp_vjp_agree_with_jacobian(model, xy):
    x, _ = xy
    g = torch.Generator().manual_seed(2)
    v = torch.randn(B, D, generator=g, dtype=torch.float64)
    u = torch.randn(B, K, generator=g, dtype=torch.float64)
    J = ad.input_jacobian(model, x)
    out, jv = ad.jvp(model, x, v, return_output=True)
    assert torch.allclose(out, model(x))
    assert _rel(jv, torch.einsum("bkd,bd->bk", J, v)) < 1e-12
    assert _rel(ad.vjp(model, x, u), torch.einsum("bkd,bk->bd", J, u)) < 1e-12


def test_input_gradient_matches_jacobian_row(model, xy):
    x, y = xy
    g = ad.input_gradient(lambda z: model(z).gather(1, y[:, None]).squeeze(1), x)
    J = ad.input_jacobian(model, x)
    assert _rel(g, J[torch.arange(B), y]) < 1e-12


def test_hvp_matches_central_differences_of_gradient(model, xy):
    x, y = xy
    fn = _loss_fn(model, y)
    v = torch.randn(B, D, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    hv = ad.hvp(fn, x, v)
    h = 1e-5
    fd = (ad.input_gradient(fn, x + h * v) - ad.input_gradient(fn, x - h * v)) / (2 * h)
    assert _rel(hv, fd) < 1e-6
    # the operator form gives the same products
    assert _rel(ad.hvp_operator(fn, x)(v), hv) < 1e-12


def test_hvp_samples_are_independent(model, xy):
    x, y = xy
    fn = _loss_fn(model, y)
    v = torch.randn(B, D, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    full = ad.hvp(fn, x, v)
    for b in range(B):
        one = ad.hvp(lambda z, b=b: F.cross_entropy(model(z), y[b:b + 1], reduction="none"),
                     x[b:b + 1], v[b:b + 1])
        assert _rel(one[0], full[b]) < 1e-12


def test_dense_hessian_symmetric_and_matches_torch_func(model, xy):
    x, y = xy
    H = ad.dense_input_hessian(_loss_fn(model, y), x)
    assert H.shape == (B, D, D)
    assert torch.allclose(H, H.transpose(1, 2), atol=1e-12)
    ref = torch.func.hessian(lambda z: F.cross_entropy(model(z[None]), y[:1]))(x[0])
    assert _rel(H[0], ref) < 1e-10


def test_power_iteration_largest_magnitude_and_modes():
    # symmetric matrices with known spectra, one per batch row, with a dominant negative one
    g = torch.Generator().manual_seed(5)
    n = 12
    spectra = torch.stack([
        torch.linspace(-1.0, 3.0, n),      # max magnitude = max = 3
        torch.linspace(-5.0, 2.0, n),      # max magnitude = -5, max = 2
        torch.linspace(-4.0, -0.5, n),     # all negative: max = -0.5
    ]).double()
    Q = torch.linalg.qr(torch.randn(3, n, n, generator=g, dtype=torch.float64))[0]
    A = Q @ torch.diag_embed(spectra) @ Q.transpose(1, 2)

    def mv(v):
        return torch.einsum("bij,bj->bi", A, v)

    v0 = torch.randn(3, n, generator=g, dtype=torch.float64)
    lam, vec = ad.power_iteration(mv, v0, iters=3000, tol=1e-13)
    expect_abs = spectra.gather(1, spectra.abs().argmax(1, keepdim=True)).squeeze(1)
    assert torch.allclose(lam, expect_abs, rtol=1e-6)
    assert torch.allclose(vec.norm(dim=1), torch.ones(3, dtype=torch.float64))
    # eigenvector: A v = lambda v
    assert float((mv(vec) - lam[:, None] * vec).norm(dim=1).max()) < 1e-3
    lam_max, _ = ad.power_iteration(mv, v0, iters=3000, tol=1e-13, mode="max")
    assert torch.allclose(lam_max, spectra.max(1).values, rtol=1e-5)
    lam_min, _ = ad.power_iteration(mv, v0, iters=3000, tol=1e-13, mode="min")
    assert torch.allclose(lam_min, spectra.min(1).values, rtol=1e-5)
    lam_s, _ = ad.power_iteration(mv, v0, iters=3000, tol=1e-13, shift=-10.0)
    assert torch.allclose(lam_s, spectra.max(1).values, rtol=1e-5)  # A + 10 I is positive


def test_power_iteration_and_lanczos_on_input_hessian(model, xy):
    x, y = xy
    fn = _loss_fn(model, y)
    ev = torch.linalg.eigvalsh(ad.dense_input_hessian(fn, x))  # ascending, (B, D)
    lam, _ = ad.hessian_eig(fn, x, iters=5000, tol=1e-14, mode="abs")
    expect = ev.gather(1, ev.abs().argmax(1, keepdim=True)).squeeze(1)
    assert torch.allclose(lam, expect, rtol=1e-5, atol=1e-12)
    lam_max, _ = ad.hessian_eig(fn, x, iters=5000, tol=1e-14, mode="max")
    assert torch.allclose(lam_max, ev[:, -1], rtol=1e-5, atol=1e-12)
    for b in range(B):
        op = ad.hvp_operator(_loss_fn(model, y[b:b + 1]), x[b:b + 1])

        def mv(v, op=op):
            return op(v.reshape(1, D)).reshape(-1)

        vals, vecs = ad.lanczos(mv, D, k=3, iters=D)
        assert torch.allclose(vals, ev[b].flip(0)[:3], rtol=1e-8, atol=1e-12)
        res = torch.stack([mv(vecs[:, i]) for i in range(3)], 1) - vecs * vals
        assert float(res.norm()) < 1e-8
        lo, _ = ad.lanczos(mv, D, k=2, iters=D, which="SA")
        assert torch.allclose(lo, ev[b, :2], rtol=1e-8, atol=1e-12)


def test_lanczos_partial_krylov_converges_to_extremes():
    # a 200-dimensional diagonal operator with a well separated top: few iterations suffice
    n = 200
    diag = torch.cat([torch.tensor([10.0, 8.0, -9.0]), torch.linspace(-1, 1, n - 3)]).double()
    vals, _ = ad.lanczos(lambda v: diag * v, n, k=2, iters=40)
    assert torch.allclose(vals, torch.tensor([10.0, 8.0], dtype=torch.float64), rtol=1e-8)
    lm, _ = ad.lanczos(lambda v: diag * v, n, k=2, iters=40, which="LM")
    assert torch.allclose(lm, torch.tensor([10.0, -9.0], dtype=torch.float64), rtol=1e-8)


def test_no_parameter_gradients_accumulated(model, xy):
    x, y = xy
    fn = _loss_fn(model, y)
    ad.input_jacobian(model, x)
    ad.hvp(fn, x, torch.ones_like(x))
    ad.hessian_eig(fn, x, iters=5)
    assert all(p.grad is None for p in model.parameters())


def test_create_graph_allows_training_through_hvp(model, xy):
    x, y = xy
    fn = _loss_fn(model, y)
    hv = ad.hvp(fn, x, torch.ones_like(x), create_graph=True)
    grads = torch.autograd.grad(hv.pow(2).sum(), list(model.parameters()))
    assert all(torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_affine_function_has_zero_hessian():
    lin = torch.nn.Linear(D, 1).double()
    x = torch.randn(B, D, dtype=torch.float64)
    hv = ad.hvp(lambda z: lin(z).squeeze(1), x, torch.ones_like(x))
    assert torch.equal(hv, torch.zeros_like(x))
    lam, _ = ad.hessian_eig(lambda z: lin(z).squeeze(1), x, iters=3)
    assert torch.equal(lam, torch.zeros(B, dtype=torch.float64))
    assert not math.isnan(float(lam.sum()))


def test_jacobian_spectral_norm_matches_svd_from_below(model, xy):
    x, _ = xy
    J = ad.input_jacobian(model, x)
    sv = torch.linalg.svdvals(J)  # (B, K), descending
    sigma, vec = ad.jacobian_spectral_norm(model, x, iters=2000, tol=1e-14)
    assert torch.allclose(sigma, sv[:, 0], rtol=1e-6)
    assert bool((sigma <= sv[:, 0] * (1 + 1e-12)).all())
    # J^T J v = sigma^2 v for the returned vector
    jtj = ad.jtj_operator(model, x)(vec)
    assert float((jtj - sigma[:, None] ** 2 * vec).norm()) < 1e-4
