"""Jacobian and Hessian-Frobenius regularisers (Warwick §6, eqs 50-56; spec checks C1-C7)."""

from __future__ import annotations

import math

import pytest
import torch

from analysis import autodiff
from analysis.regularizers import (
    HessianRegularizer,
    JacobianRegularizer,
    hessian_frobenius_sq,
    jacobian_frobenius_sq,
)

T, F_IN, HID, L = 4, 3, 8, 5


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one thread avoids OpenMP contention on a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class TinyRNN(torch.nn.Module):
    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.rnn = torch.nn.RNN(F_IN, HID, batch_first=True, nonlinearity="tanh")
        self.out = torch.nn.Linear(HID, L)

    def forward(self, x):
        return self.out(self.rnn(x)[0][:, -1])


def _model(seed=0):
    return TinyRNN(seed).double()


def _x(n=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, T, F_IN, generator=g, dtype=torch.float64)


def _exact(model, x):
    """Σ_c ‖H_c‖_F² and ‖J‖_F² per sample from dense autograd (the reference)."""
    hs, js = [], []
    for b in range(x.shape[0]):
        xb = x[b].reshape(-1)
        def f(v):
            return model(v.reshape(1, T, F_IN))[0]

        J = torch.autograd.functional.jacobian(f, xb)
        H = torch.stack([torch.autograd.functional.hessian(
            lambda v, c=c, f=f: f(v)[c], xb) for c in range(L)])
        hs.append(H.pow(2).sum())
        js.append(J.pow(2).sum())
    return torch.stack(hs), torch.stack(js)


def test_hvp_matches_finite_differences_and_hessian_is_symmetric():  # C1, C2
    model = _model()
    x = _x(2)
    v = torch.randn_like(x)

    def fn(y):
        return model(y)[:, 2]

    hv = autodiff.hvp(fn, x, v)
    h = 1e-5

    def grad(y):
        return autodiff.input_gradient(fn, y)

    fd = (grad(x + h * v) - grad(x - h * v)) / (2 * h)
    assert (hv - fd).norm() / hv.norm() < 1e-6
    H = autodiff.dense_input_hessian(fn, x)
    assert (H - H.transpose(1, 2)).abs().max() < 1e-10


def test_deterministic_versions_are_exact():  # C3
    model = _model()
    x = _x(3)
    h_ref, j_ref = _exact(model, x)
    h_est = hessian_frobenius_sq(model, x, outer="basis", inner="exact")
    j_est = jacobian_frobenius_sq(model, x, mode="exact")
    assert torch.allclose(h_est, h_ref, rtol=1e-10, atol=0)
    assert torch.allclose(j_est, j_ref, rtol=1e-10, atol=0)
    # random outer vectors with the exact inner sum: still exact on average only
    h_one = hessian_frobenius_sq(model, x, outer="random", inner="exact",
                                 generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(h_one, h_ref, rtol=1e-3)


def test_estimators_are_unbiased():  # C4
    model = _model()
    x1 = _x(1, seed=3)
    h_ref, j_ref = _exact(model, x1)
    n = 20000
    xs = x1.expand(n, T, F_IN).contiguous()
    g = torch.Generator().manual_seed(11)
    for est, ref in ((hessian_frobenius_sq(model, xs, generator=g), h_ref[0]),
                     (jacobian_frobenius_sq(model, xs, generator=g), j_ref[0])):
        se = est.std() / math.sqrt(n)
        assert abs(est.mean() - ref) < 4 * se, (float(est.mean()), float(ref), float(se))
        assert est.std() / ref > 0.2  # a single estimate is noisy: the test has power


def test_parameter_gradient_matches_finite_differences():  # C5
    model = _model()
    x = _x(2)
    g = torch.Generator().manual_seed(5)
    v = torch.randn(2, 1, L, generator=g, dtype=torch.float64)
    v = v / v.norm(dim=2, keepdim=True)
    w = torch.randn(2, 1, T, F_IN, generator=g, dtype=torch.float64)
    params = list(model.parameters())
    dirs = [torch.randn(p.shape, generator=g, dtype=torch.float64) for p in params]
    for fn in (lambda cg: hessian_frobenius_sq(model, x, v=v, w=w, create_graph=cg).sum(),
               lambda cg: jacobian_frobenius_sq(model, x, v=v, create_graph=cg).sum()):
        grads = torch.autograd.grad(fn(True), params, allow_unused=True)  # output bias unused
        analytic = sum((gr * d).sum() for gr, d in zip(grads, dirs) if gr is not None)
        eps = 1e-6
        with torch.no_grad():
            for p, d in zip(params, dirs):
                p.add_(eps * d)
        plus = fn(False)
        with torch.no_grad():
            for p, d in zip(params, dirs):
                p.sub_(2 * eps * d)
        minus = fn(False)
        with torch.no_grad():
            for p, d in zip(params, dirs):
                p.add_(eps * d)
        numeric = (plus - minus) / (2 * eps)
        assert abs(float(analytic - numeric)) / abs(float(numeric)) < 1e-5


def test_linear_model():  # C6
    torch.manual_seed(0)
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(T * F_IN, L)).double()
    x = _x(4)
    W = lin[1].weight
    j = jacobian_frobenius_sq(lin, x, mode="exact")
    assert torch.allclose(j, W.pow(2).sum().expand(4), rtol=1e-12)
    assert torch.all(hessian_frobenius_sq(lin, x) == 0)
    assert torch.all(hessian_frobenius_sq(lin, x, outer="basis", inner="exact") == 0)


def _train(reg, steps=100, seed=0):
    model = _model(seed)
    g = torch.Generator().manual_seed(42)
    X = torch.randn(256, T, F_IN, generator=g, dtype=torch.float64)
    teacher = _model(seed=99)
    with torch.no_grad():
        Y = teacher(2 * X).argmax(1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    torch.manual_seed(seed)
    for k in range(steps):
        idx = torch.arange(k * 32, (k + 1) * 32) % 256
        xb, yb = X[idx], Y[idx]
        logits = model(xb)
        loss = torch.nn.functional.cross_entropy(logits, yb)
        if reg is not None:
            r, info = reg(model, xb, yb, logits)
            assert isinstance(info, dict) and len(info) == 1
            loss = loss + r
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def test_regularisers_reduce_their_target():  # C7
    x = _x(16, seed=8)
    plain = _train(None)
    h_plain = hessian_frobenius_sq(plain, x, outer="basis", inner="exact").mean()
    j_plain = jacobian_frobenius_sq(plain, x, mode="exact").mean()
    hr = _train(HessianRegularizer(lam=1.0))
    jr = _train(JacobianRegularizer(lam=1.0))
    assert hessian_frobenius_sq(hr, x, outer="basis", inner="exact").mean() <= 0.5 * h_plain
    assert jacobian_frobenius_sq(jr, x, mode="exact").mean() <= 0.5 * j_plain


def test_interface_and_bad_parameters():
    for cls in (JacobianRegularizer, HessianRegularizer):
        r = cls(lam=0.1, n_proj=2)
        assert r.params == {"lam": 0.1, "n_proj": 2} and isinstance(r.name, str)
        with pytest.raises(ValueError):
            cls(lam=-1.0)
        with pytest.raises(ValueError):
            cls(n_proj=0)
    with pytest.raises(ValueError):
        hessian_frobenius_sq(_model(), _x(1), inner="dense")
    with pytest.raises(ValueError):
        jacobian_frobenius_sq(_model(), _x(1), mode="basis")


def test_hessian_regulariser_subsample_is_uniform_and_unbiased():
    """Issue 14: ``n_examples`` keeps the expectation of eq. (56): a uniform subset of the batch.

    Each row must be drawn with probability k/B (binomial test on 3000 draws) and the subset mean
    of fixed per-example values must average to the batch mean. Fails on the old class, which
    has no ``n_examples``.
    """
    from scipy.stats import binomtest

    from analysis.regularizers.hessian import subsample_variance_factor

    B, k, draws = 16, 4, 3000
    reg = HessianRegularizer(lam=0.1, n_examples=k)
    assert reg.params == {"lam": 0.1, "n_proj": 1, "n_examples": k}
    values = torch.arange(B, dtype=torch.float64).reshape(B, 1) ** 2  # fixed per-example terms
    torch.manual_seed(0)
    counts = torch.zeros(B)
    means = []
    for _ in range(draws):
        sub = reg.subset(values)
        assert sub.shape == (k, 1) and len(set(sub.flatten().tolist())) == k  # no replacement
        counts += torch.isin(values.flatten(), sub.flatten()).float()
        means.append(float(sub.mean()))
    for c in counts.tolist():
        assert binomtest(int(c), draws, k / B).pvalue > 1e-4
    se = float(values.std()) * math.sqrt((B - k) / (k * (B - 1))) / math.sqrt(draws)
    assert abs(sum(means) / draws - float(values.mean())) < 5 * se
    assert subsample_variance_factor(128, 32) == 4.0
    # all examples: the subset is the batch itself, the old behaviour
    assert HessianRegularizer(0.1).subset(values) is values
    with pytest.raises(ValueError):
        HessianRegularizer(0.1, n_examples=0)
