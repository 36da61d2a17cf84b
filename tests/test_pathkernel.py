"""The exact discrete path kernel (spec §5.5-5.8): exactness with negative controls, the
coefficient identity, kernel properties and the training-point discontinuity."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import jacrev, jvp

from analysis import pathkernel as PK


def _blobs(m: int, d: int, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = 2.0 * torch.randn(k, d, generator=g, dtype=torch.float64)
    y = torch.arange(m) % k
    return centres[y] + torch.randn(m, d, generator=g, dtype=torch.float64), y



@pytest.fixture(scope="module")
def relu_run():
    X, Y = _blobs(60, 6, 3, 0)
    tr = PK.train_gd(X, Y, [6, 12, 3], lr=0.3, steps=15, activation="relu", loss="nll")
    Xt, _ = _blobs(12, 6, 3, 1)  # held-out points
    return tr, Xt


def test_exact_kernel_equals_network_with_negative_controls(relu_run):
    tr, Xt = relu_run
    assert tr.losses[-1] < tr.losses[0] - 0.3  # the run trained (output moved by O(1))
    km = PK.kernel_machine(tr, Xt, outputs="all", progress=False)
    moved = float((km.network - km.offset).abs().max())
    assert moved > 0.5
    assert km.max_error < 1e-10
    # the summed form (one VJP per step) gives the same output
    km_sum = PK.kernel_machine(tr, Xt, outputs="all", per_point=False, progress=False)
    assert (km_sum.output - km.output).abs().max() < 1e-12
    # negative controls: step-start features and shuffled coefficients are visibly wrong
    start = PK.kernel_machine(tr, Xt, outputs="all", method="start", progress=False)
    assert start.max_error > 1e-4
    shuf = PK.kernel_machine(tr, Xt, outputs="all", shuffle_coefficients=0, progress=False)
    assert shuf.max_error > 1e-3
    # the document's 100 uniform t: between the two
    uni = PK.kernel_machine(tr, Xt, outputs="all", method="uniform", per_point=False,
                            progress=False)
    assert km.max_error < uni.max_error < start.max_error


def test_per_point_contributions_match_brute_force():
    """Each training point's contribution, recomputed with dense Jacobians (torch.func) at the
    quadrature nodes: catches a misattributed or wrong per-point value that the summed output
    would not show (e.g. coefficients paired with the wrong points of a mini-batch)."""
    X, Y = _blobs(24, 4, 3, 11)
    tr = PK.train_gd(X, Y, [4, 6, 3], lr=0.3, steps=6, batch_size=8, seed=1)
    Xt, _ = _blobs(2, 4, 3, 12)
    km = PK.kernel_machine(tr, Xt, outputs="predicted", progress=False)
    assert km.max_error < 1e-10
    ref = torch.zeros(2, 24, dtype=torch.float64)
    for s in range(tr.steps):
        p, p1 = tr.params[s], tr.params[s + 1]
        idx, a = tr.batches[s], tr.coefficients(s)
        Jtr = jacrev(lambda q, ii=idx: PK.model_output(q, tr.X[ii]))(p)  # (|B|, K, ...) per tensor
        tq, wq = PK.path_nodes(p, p1, Xt, n_gl=24, split=2)
        for j in range(2):
            k = int(km.sel[j, 0])
            for t, w in zip(tq[j].tolist(), wq[j].tolist()):
                pt = tuple(a0 + t * (b0 - a0) for a0, b0 in zip(p, p1))
                Jx = jacrev(lambda q, jj=j, kk=k: PK.model_output(q, Xt[jj:jj + 1])[0, kk])(pt)
                dots = sum((jt * jx.unsqueeze(0).unsqueeze(0)).flatten(2).sum(2)
                           for jt, jx in zip(Jtr, Jx))  # (|B|, K)
                ref[j, idx] += w * (a * dots).sum(1)
    assert torch.allclose(km.contributions[:, 0], ref, atol=1e-10), \
        (km.contributions[:, 0] - ref).abs().max()


def test_adaptive_quadrature_where_fixed_nodes_fail():
    """Large steps (lr 0.5, 100 steps) and points far from the data: log-softmax turns sharply
    along the path, 48 fixed nodes per piece miss by ~1e-6; the adaptive rule refines until
    successive estimates agree and reaches round-off."""
    g = torch.Generator().manual_seed(0)
    X = torch.cat([torch.randn(20, 2, generator=g, dtype=torch.float64) + torch.tensor([1.0, 4.0]),
                   torch.randn(20, 2, generator=g, dtype=torch.float64) + torch.tensor([4.0, 1.0])])
    Y = torch.arange(40) // 20
    tr = PK.train_gd(X, Y, [2, 8, 2], lr=0.5, steps=100)
    far = torch.tensor([[4.0, 15.0], [-6.0, -6.0]], dtype=torch.float64)
    fixed = PK.kernel_machine(tr, far, outputs="all", quad_tol=None, progress=False)
    assert fixed.max_error > 1e-8  # the old fixed 48-node rule is not exact
    km = PK.kernel_machine(tr, far, outputs="all", progress=False)
    assert km.max_error < 1e-10 and km.refinements >= 1 and km.unconverged == 0
    # the composite rule of the refinement: weights of each row sum to one
    t, w = PK.path_nodes(tr.params[0], tr.params[1], far, n_gl=5, split=3)
    assert torch.allclose(w.sum(1), torch.ones(2, dtype=torch.float64), atol=1e-14)
    assert ((t >= 0) & (t <= 1)).all()


def test_coefficient_identity_every_step(relu_run):
    tr, _ = relu_run
    for s in range(tr.steps):
        assert PK.coefficient_identity(tr, s) < 1e-12
    # a broken identity is detected: replay with the wrong step size
    tr_bad = PK.Trajectory(params=tr.params, batches=tr.batches, lrs=[1.01 * v for v in tr.lrs],
                           X=tr.X, Y=tr.Y, activation="relu", loss="nll")
    assert PK.coefficient_identity(tr_bad, 0) > 1e-6


@pytest.mark.parametrize("variant", ["logits", "sgd", "random_last", "tanh2"])
def test_exactness_variants(variant):
    X, Y = _blobs(48, 5, 3, 2)
    Xt, _ = _blobs(8, 5, 3, 3)
    kw = dict(lr=0.2, steps=12)
    if variant == "logits":
        tr = PK.train_gd(X, Y, [5, 10, 3], loss="ce_logits", **kw)
        tol = 1e-10
    elif variant == "sgd":
        tr = PK.train_gd(X, Y, [5, 10, 3], batch_size=10, seed=4, **kw)
        assert len({tuple(b.tolist()) for b in tr.batches}) > 1
        tol = 1e-10
    elif variant == "random_last":
        tr = PK.train_gd(X, Y, [5, 10, 3], zero_last=False, **kw)
        tol = 1e-10
    else:
        tr = PK.train_gd(X, Y, [5, 8, 8, 3], activation="tanh", **kw)
        tol = 1e-8
    km = PK.kernel_machine(tr, Xt, outputs="all", n_gl=16 if variant == "tanh2" else 48,
                           progress=False)
    if variant == "random_last":
        assert float(km.offset.std()) > 1e-3  # non-constant initial output, used as offset
    assert km.max_error < tol, km.max_error
    assert PK.kernel_machine(tr, Xt, outputs="all", method="start",
                             progress=False).max_error > 100 * tol


def test_output_jvp_matches_torch_func():
    X, Y = _blobs(20, 4, 3, 5)
    p = PK.init_mlp([4, 7, 7, 3], seed=1, zero_last=False)
    g = torch.Generator().manual_seed(2)
    V = tuple(torch.randn((3, *q.shape), generator=g, dtype=torch.float64) for q in p)
    for act in ("relu", "tanh", "softplus"):
        for loss in ("nll", "ce_logits"):
            ours = PK.output_jvp(p, X, V, act, loss)
            for j in range(3):
                ref = jvp(lambda q, a=act, lo=loss: PK.model_output(q, X, a, lo), (p,),
                          (tuple(v[j] for v in V),))[1]
                assert torch.allclose(ours[j], ref, atol=1e-12)


def test_symmetric_gram_is_psd():
    X, Y = _blobs(30, 4, 2, 6)
    tr = PK.train_gd(X, Y, [4, 6, 2], activation="tanh", lr=0.3, steps=5)
    Xq, _ = _blobs(30, 4, 2, 7)
    G = PK.dpk_gram(tr, Xq, output=0, n_gl=4)
    assert torch.allclose(G, G.T, atol=1e-12)
    assert torch.linalg.eigvalsh(G).min() > -1e-10
    assert torch.linalg.matrix_rank(G) > 5


def test_coefficient_signs():
    X, Y = _blobs(40, 4, 3, 8)
    tr = PK.train_gd(X, Y, [4, 8, 3], lr=0.3, steps=6, loss="nll")
    for s in range(tr.steps):
        a = tr.coefficients(s)
        own = a.gather(1, tr.Y.view(-1, 1)).squeeze(1)
        assert (own > 0).all() and torch.allclose(own, torch.full_like(own, 0.3 / 40))
        assert a.abs().sum() == pytest.approx(own.sum().item())  # other classes: zero
    # BCE: the sign of a_i is fixed by the label
    Yb = (Y > 0).long()
    trb = PK.train_gd(X, Yb, [4, 8, 1], lr=0.3, steps=6, loss="bce")
    signs = torch.stack([torch.sign(trb.coefficients(s)[:, 0]) for s in range(trb.steps)])
    assert (signs == (2 * Yb - 1).double()).all()
    # MSE: signs change during training (the §17.3 counter-example)
    trm = PK.train_gd(X, Y, [4, 8, 3], lr=0.1, steps=30, loss="mse", zero_last=False)
    sm = torch.stack([torch.sign(trm.coefficients(s)) for s in range(trm.steps)])
    assert ((sm != sm[0:1]) & (sm != 0)).any()


def test_training_point_discontinuity_first_order():
    """eq 14 (step-start features at training points) errs by O(ε) per unit of ε·N."""
    X, Y = _blobs(30, 4, 3, 9)
    errs = []
    for lr, steps in ((0.4, 10), (0.2, 20), (0.1, 40)):
        tr = PK.train_gd(X, Y, [4, 8, 3], activation="tanh", lr=lr, steps=steps)
        errs.append(PK.kernel_machine(tr, X[:6], outputs="all", method="start",
                                      progress=False).max_error)
        # the path-integrated (asymmetric k', eq 16) form is exact at training points too
        assert PK.kernel_machine(tr, X[:6], outputs="all", n_gl=16,
                                 progress=False).max_error < 1e-9
    r1, r2 = errs[0] / errs[1], errs[1] / errs[2]
    assert 1.6 < r1 < 2.5 and 1.6 < r2 < 2.5, errs


def test_parameter_norms_and_errors():
    X, Y = _blobs(20, 3, 2, 10)
    tr = PK.train_gd(X, Y, [3, 4, 2], lr=0.1, steps=3, zero_last=False)
    r = PK.parameter_norms(tr)
    assert r[0] == 1.0 and len(r) == 4 and math.isfinite(r[-1])
    with pytest.raises(ValueError):
        PK.train_gd(X, Y, [3, 4, 2], lr=0.1, steps=3, loss="hinge")
    with pytest.raises(ValueError):
        PK.path_nodes(tr.params[0], tr.params[1], X, method="simpson")


def test_integrated_gradients_one_batched_backward(monkeypatch):
    """Every selected output's integrated gradient equals the node-weighted sum of dense
    per-point gradients (``jacrev``), and all outputs come from ONE reverse pass (issue 14: the
    earlier version ran one ``autograd.grad`` per output, which this count rejects)."""
    p = PK.init_mlp([4, 6, 6, 3], seed=3, zero_last=False)
    g = torch.Generator().manual_seed(4)
    d = tuple(0.3 * torch.randn(q.shape, generator=g, dtype=torch.float64) for q in p)
    x = torch.randn(5, 4, generator=g, dtype=torch.float64)
    t = torch.rand(5, 4, generator=g, dtype=torch.float64)
    w = torch.rand(5, 4, generator=g, dtype=torch.float64)
    sel = torch.tensor([[0, 2], [1, 0], [2, 1], [0, 1], [2, 2]])
    calls = []
    real_grad = torch.autograd.grad
    monkeypatch.setattr(torch.autograd, "grad",
                        lambda *a, **k: calls.append(1) or real_grad(*a, **k))
    ours = PK.integrated_gradients(p, d, x, t, w, sel, "relu", "nll")
    assert len(calls) == 1, f"{len(calls)} backward passes for {sel.shape[1]} outputs"
    monkeypatch.undo()
    for i in range(len(x)):
        for j in range(sel.shape[1]):
            ref = [torch.zeros_like(q) for q in p]
            for q in range(t.shape[1]):
                pt = tuple(a + t[i, q] * b for a, b in zip(p, d))
                jac = jacrev(lambda prm, xi=x[i:i + 1], k=sel[i, j]:
                             PK.model_output(prm, xi, "relu", "nll")[0, k])(pt)
                ref = [r + w[i, q] * jq for r, jq in zip(ref, jac)]
            for o, r in zip(ours, ref):
                assert torch.allclose(o[i, j], r, atol=1e-12)


@pytest.mark.parametrize("activation,loss", [("relu", "nll"), ("tanh", "ce_logits")])
def test_integrated_directional_is_the_integrated_gradient_along_u(activation, loss):
    """The forward-mode integral of the summed kernel machine equals ``⟨integrated gradient,
    u⟩`` (reverse mode) for every point and selected output, in a two-hidden-layer MLP, and a
    wrong direction gives visibly different values (the test can fail)."""
    p = PK.init_mlp([4, 6, 5, 3], seed=5, zero_last=False)
    g = torch.Generator().manual_seed(6)
    d = tuple(0.3 * torch.randn(q.shape, generator=g, dtype=torch.float64) for q in p)
    u = tuple(torch.randn(q.shape, generator=g, dtype=torch.float64) for q in p)
    x = torch.randn(5, 4, generator=g, dtype=torch.float64)
    t = torch.rand(5, 7, generator=g, dtype=torch.float64)
    w = torch.rand(5, 7, generator=g, dtype=torch.float64)
    sel = torch.tensor([[0, 2], [1, 0], [2, 1], [0, 1], [2, 2]])
    grads = PK.integrated_gradients(p, d, x, t, w, sel, activation, loss)
    ref = sum((gq * uq).flatten(2).sum(2) for gq, uq in zip(grads, u))
    ours = PK.integrated_directional(p, d, x, t, w, sel, u, activation, loss)
    assert ours.shape == (5, 2)
    assert float((ours - ref).abs().max()) < 1e-12 * (1 + float(ref.abs().max()))
    # control: another direction (not a multiple of u) gives other values
    other = tuple(torch.randn(q.shape, generator=g, dtype=torch.float64) for q in p)
    wrong = PK.integrated_directional(p, d, x, t, w, sel, other, activation, loss)
    assert float((wrong - ref).abs().max()) > 1e-3
