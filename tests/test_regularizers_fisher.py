"""The Fisher-Jacobian regulariser (eq. 15-16; spec 001 §5 check 8), float64."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from analysis.bounds import fisher as fb
from analysis.regularizers.fisher import FisherJacobian, eta_schedule, fisher_alpha, guarded_exp


def _mlp(n_in: int = 6, k: int = 4, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, 12), nn.Tanh(), nn.Linear(12, k)).double()


def _x(b: int = 5, n: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_alpha_via_chart_equals_alpha_via_sphere():
    model, x = _mlp(), _x()
    eps = 0.7
    a, parts = fisher_alpha(model, x, eps=eps, estimator="exact", create_graph=False)
    jac = fb.fisher_jacobians(model, x)
    via_mu = torch.exp((jac.fro_mu - jac.delta / eps) / jac.rho)
    assert torch.allclose(a, via_mu, rtol=1e-6)
    assert torch.allclose(parts["norm"], jac.fro_t, rtol=1e-10)
    inv, _ = fisher_alpha(model, x, eps=eps, invariant=True, create_graph=False)
    assert torch.allclose(inv, torch.exp(jac.fro_mu - jac.delta / eps), rtol=1e-10)
    svd, p2 = fisher_alpha(model, x, eps=eps, estimator="exact_svd", create_graph=False)
    assert torch.allclose(p2["norm"], jac.spec_t, rtol=1e-10)
    assert bool((svd <= a * (1 + 1e-12)).all())  # spectral <= Frobenius


def test_linear_softmax_closed_form_jacobian():
    torch.manual_seed(3)
    lin = nn.Linear(5, 3).double()
    x = _x(4, 5)
    jac = fb.fisher_jacobians(lin, x)
    w = lin.weight.detach()
    assert torch.allclose(jac.J_s, w.expand(4, 3, 5), atol=1e-14)
    th = F.softmax(lin(x), -1).detach()
    # μ = 2√θ: dμ_k = √θ_k (w_k − Σ_j θ_j w_j)·dx
    want = th.sqrt()[..., None] * (w[None] - torch.einsum("bj,jn->bn", th, w)[:, None, :])
    assert torch.allclose(jac.J_mu, want, atol=1e-14)


def test_regulariser_gradient_matches_finite_differences():
    model, x = _mlp(n_in=3, k=3, seed=5), _x(3, 3, 6)
    y = torch.tensor([0, 1, 2])
    reg = FisherJacobian(eta_min=0.1, eta_max=0.1, epochs=1, eps_train=2.0, num_classes=3,
                         estimator="exact")
    params = list(model.parameters())

    def total() -> torch.Tensor:
        logits = model(x)
        r, _ = reg(model, x, y, logits)
        return F.cross_entropy(logits, y) + r

    grads = torch.autograd.grad(total(), params)
    h = 1e-6
    with torch.no_grad():
        for p, g in zip(params, grads):
            for idx in [(0,) * p.dim(), tuple(s - 1 for s in p.shape)]:
                old = p[idx].item()
                p[idx] = old + h
                up = total().item()
                p[idx] = old - h
                dn = total().item()
                p[idx] = old
                fd = (up - dn) / (2 * h)
                assert abs(fd - g[idx].item()) <= 1e-6 * max(1.0, abs(fd))


def test_loss_is_eq16():
    model, x = _mlp(), _x()
    y = torch.tensor([0, 1, 2, 3, 0])
    reg = FisherJacobian(eta_min=0.3, eta_max=0.3, epochs=1, eps_train=1.0, num_classes=4,
                         estimator="exact")
    logits = model(x)
    r, stats = reg(model, x, y, logits)
    ce = F.cross_entropy(logits, y)
    a, _ = fisher_alpha(model, x, eps=1.0, create_graph=False)
    assert torch.allclose(ce + r, 0.7 * ce + 0.3 * a.mean(), rtol=1e-12)
    assert stats["eta"] == 0.3 and abs(stats["alpha"] - float(a.mean())) < 1e-12


def test_random_projection_is_unbiased_for_squared_frobenius():
    model, x = _mlp(k=5), _x(2)
    jac = fb.fisher_jacobians(model, x)
    gen = torch.Generator().manual_seed(0)
    reps = x.repeat(4000, 1)  # 4000 independent directions per sample, one batch
    draws = fisher_alpha(model, reps, eps=1.0, estimator="rp", generator=gen,
                         create_graph=False)[1]["norm"].reshape(4000, 2) ** 2
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(4000)
    assert bool(((mean - jac.fro_t**2).abs() <= 4 * se).all())
    assert bool((draws.std(0) > 0).all())  # really random


def test_subbatch_uses_exact_norm_on_first_samples():
    model, x = _mlp(), _x(10)
    a_sub, p = fisher_alpha(model, x, eps=1.0, estimator="subbatch", subbatch=3,
                            create_graph=False)
    a_ex, _ = fisher_alpha(model, x[:3], eps=1.0, estimator="exact", create_graph=False)
    assert a_sub.shape == (3,) and torch.allclose(a_sub, a_ex)


def test_eta_schedule_guard_and_epoch_counting():
    etas = eta_schedule(0.002, 0.006, 30)
    assert etas[0] == pytest.approx(0.002) and etas[-1] == pytest.approx(0.006)
    assert all(b > a for a, b in zip(etas, etas[1:]))
    assert etas[14] == pytest.approx(0.002 * 3 ** (14 / 29))
    a = torch.tensor([29.0, 30.0, 31.0, 1e4], dtype=torch.float64, requires_grad=True)
    v = guarded_exp(a, 30.0)
    assert torch.isfinite(v).all() and float(v[2].detach()) == pytest.approx(math.exp(30) * 2)
    (g,) = torch.autograd.grad(v.sum(), a)
    assert float(g[1]) == pytest.approx(math.exp(30)) and float(g[3]) == pytest.approx(math.exp(30))
    model, x = _mlp(), _x()
    y = torch.zeros(5, dtype=torch.long)
    reg = FisherJacobian(eta_min=0.1, eta_max=0.4, epochs=3, eps_train=1.0, num_classes=4,
                         steps_per_epoch=2)
    model.train()
    seen = []
    for _ in range(6):
        seen.append(reg(model, x, y, model(x))[1]["eta"])
    assert seen == pytest.approx([0.1, 0.1, 0.2, 0.2, 0.4, 0.4])
    reg.set_epoch(0)
    assert reg.eta == pytest.approx(0.1)


def test_delta_over_eps_and_validation():
    reg = FisherJacobian(delta_over_eps=1e-3, num_classes=10)
    assert reg.eps == pytest.approx(fb.delta_max(10) * 1e3)
    with pytest.raises(ValueError):
        FisherJacobian(estimator="lanczos")
    with pytest.raises(ValueError):
        FisherJacobian(eps_train=-1.0)
    with pytest.raises(ValueError):
        eta_schedule(0.0, 0.1, 3)


def test_per_example_matches_alpha_and_geometry():
    from analysis.regularizers.fisher import per_example

    model, x = _mlp(), _x(7)
    pe = per_example(model, x, eps=0.5, batch_size=3)
    a, parts = fisher_alpha(model, x, eps=0.5, create_graph=False)
    assert torch.allclose(pe["alpha"], a, rtol=1e-10)
    assert torch.allclose(pe["fro_t"], parts["norm"], rtol=1e-10)
    assert torch.equal(pe["pred"], model(x).argmax(1))


def test_train_full_batch_learns_and_caches():
    from analysis import data
    from analysis.regularizers.fisher import train_full_batch

    ds = data.synthetic("moons", n=80, dim=2, seed=0)
    kw = dict(in_shape=(2,), widths=(8,), activation="tanh", num_classes=2)
    reg = FisherJacobian(eta_min=0.05, eta_max=0.05, epochs=1, eps_train=0.3, num_classes=2,
                         estimator="exact")
    a = train_full_batch("mlp", kw, ds.x_train, ds.y_train, steps=40, regularizer=reg, log_every=10)
    b = train_full_batch("mlp", kw, ds.x_train, ds.y_train, steps=40, regularizer=reg, log_every=10)
    assert a["history"][-1]["ce"] < a["history"][0]["ce"]
    assert "alpha" in a["history"][0] and len(a["history"]) == 5
    for p, q in zip(a["model"].parameters(), b["model"].parameters()):
        assert torch.equal(p, q)
    with pytest.raises(ValueError):
        train_full_batch("mlp", kw, ds.x_train, ds.y_train, steps=0)


def test_step_seconds_reports_every_method():
    from analysis.regularizers.fisher import step_seconds

    x, y = _x(16, 6), torch.arange(16) % 4
    t = step_seconds(lambda: _mlp(), x, y, {"plain": None, "exact": FisherJacobian(
        eps_train=1.0, num_classes=4, estimator="exact", epochs=1)}, batch_size=4, batches=2,
        repeats=1)
    assert set(t) == {"plain", "exact"} and all(v > 0 for v in t.values())
