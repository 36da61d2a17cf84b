"""Cross-Lipschitz / Cross-Hölder regularisers, HVPs, estimators, Danskin, PGD curves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from interrupted_fit import fit_interrupted

from analysis.models.swish import SwishCNN, SwishMLP, n_params
from analysis.regularizers import crossholder as ch

torch.set_num_threads(1)


def _mlp(d: int = 8, h: int = 6, k: int = 4, seed: int = 0) -> SwishMLP:
    torch.manual_seed(seed)
    return SwishMLP(d, hidden=h, num_classes=k).double()


def _data(n: int = 5, d: int = 8, k: int = 4, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=gen, dtype=torch.float64),
            torch.randint(0, k, (n,), generator=gen))


def _dense_hessian(model, x0: torch.Tensor, y: int, j: int) -> torch.Tensor:
    def f(z: torch.Tensor) -> torch.Tensor:
        out = model(z.reshape(1, *x0.shape))[0]
        return out[y] - out[j]

    return torch.autograd.functional.hessian(f, x0.reshape(-1), vectorize=True)


def test_architecture_parameter_counts() -> None:
    assert n_params(SwishCNN()) == 312_202  # the document's C&W network (spec section 3)
    assert n_params(SwishCNN(width=0.25, fc=64)) == 25_410
    out = SwishCNN(width=0.25, fc=64)(torch.rand(3, 1, 28, 28))
    assert out.shape == (3, 10)
    with pytest.raises(ValueError):
        SwishCNN(activation="gelu")


def test_hvp_against_finite_differences() -> None:
    model = _mlp()
    x, y = _data()
    js = ch.select_classes(model(x), y, "all")
    xr, _, g = ch.margin_graph(model, x, y, js)
    gen = torch.Generator().manual_seed(1)
    v = torch.randn(xr.shape, generator=gen, dtype=torch.float64)
    (hv,) = torch.autograd.grad(g, xr, grad_outputs=v)
    h = 1e-4

    def grad_at(z: torch.Tensor) -> torch.Tensor:
        _, _, gz = ch.margin_graph(model, z, y, js)
        return gz.detach()

    # central difference of ∇f along v (each replicated row moves its own x)
    vx = v.reshape(x.shape[0], js.shape[1], -1)
    rel = []
    for s in range(js.shape[1]):
        fd = (grad_at(x + h * vx[:, s]) - grad_at(x - h * vx[:, s])) / (2 * h)
        fd = fd.reshape(x.shape[0], js.shape[1], -1)[:, s]
        ex = hv.reshape(x.shape[0], js.shape[1], -1)[:, s]
        rel.append(float((fd - ex).norm() / ex.norm()))
    assert max(rel) <= 1e-6


def test_hvp_against_dense_hessian_on_quarter_width_cnn() -> None:
    torch.manual_seed(0)
    model = SwishCNN(width=0.25, fc=64).double()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, 28, 28, generator=gen, dtype=torch.float64)
    y = torch.tensor([3])
    js = torch.tensor([[7]])
    xr, _, g = ch.margin_graph(model, x, y, js)
    v = torch.randn(xr.shape, generator=gen, dtype=torch.float64)
    (hv,) = torch.autograd.grad(g, xr, grad_outputs=v)
    hd = _dense_hessian(model, x[0], 3, 7)
    assert float((hd - hd.T).abs().max()) <= 1e-12
    err = (hv.reshape(-1) - hd @ v.reshape(-1)).norm() / hv.norm()
    assert float(err) <= 1e-10


def test_power_and_ascent_against_eigvalsh() -> None:
    model = _mlp(d=10, h=8, k=3, seed=2)
    x, y = _data(n=6, d=10, k=3, seed=2)
    js = ch.select_classes(model(x), y, 1)
    xr, _, g = ch.margin_graph(model, x, y, js)

    def mv(v: torch.Tensor) -> torch.Tensor:
        return torch.autograd.grad(g, xr, grad_outputs=v, retain_graph=True)[0]

    v0 = torch.randn(xr.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    vp = ch.estimate_top_direction(mv, v0, 500, "power")
    va = ch.estimate_top_direction(mv, v0, 10, "ascent", 0.1)
    np_, na = mv(vp).norm(dim=1), mv(va).norm(dim=1)
    checked = 0
    for b in range(6):
        ev = torch.linalg.eigvalsh(_dense_hessian(model, x[b], int(y[b]), int(js[b, 0])))
        lam = float(ev.abs().max())
        assert float(np_[b]) <= lam * (1 + 1e-10) and float(na[b]) <= lam * (1 + 1e-10)
        if float(ev.abs().sort().values[-2]) / lam < 0.97:
            checked += 1
            assert float(np_[b]) == pytest.approx(lam, rel=1e-4)
    assert checked >= 3
    assert torch.allclose(vp.norm(dim=1), torch.ones(6, dtype=torch.float64))
    with pytest.raises(ValueError):
        ch.estimate_top_direction(mv, v0, 3, "lanczos")


def test_literal_ascent_is_scale_dependent() -> None:
    # H = diag(s·[1, 0.9, ...]): the ascent step is ≈ o·‖H‖, so at small scale it stays near v0
    d = 50
    base = torch.linspace(1.0, 0.1, d, dtype=torch.float64)
    v0 = torch.randn(4, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    frac = {}
    for scale in (5.0, 1e-3):
        diag = base * scale

        def mv(v: torch.Tensor, diag=diag) -> torch.Tensor:
            return v * diag

        v = ch.estimate_top_direction(mv, v0, 10, "ascent", 0.1)
        vp = ch.estimate_top_direction(mv, v0, 10, "power")
        frac[scale] = (float(mv(v).norm(dim=1).mean() / scale),
                       float(mv(vp).norm(dim=1).mean() / scale))
    assert frac[5.0][0] > frac[1e-3][0] + 0.2  # ascent recovers more of ‖H‖ at large scale
    assert frac[5.0][1] == pytest.approx(frac[1e-3][1], rel=1e-9)  # power is scale-free


def test_danskin_gradient_against_finite_difference() -> None:
    model = _mlp(d=6, h=5, k=3, seed=4)
    x, y = _data(n=1, d=6, k=3, seed=4)
    j = int(ch.select_classes(model(x), y, 1)[0, 0])
    params = list(model.parameters())
    gen = torch.Generator().manual_seed(5)
    direction = [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in params]

    def spec_norm() -> tuple[float, torch.Tensor, float]:
        ev, vecs = torch.linalg.eigh(_dense_hessian(model, x[0], int(y[0]), j))
        i = int(ev.abs().argmax())
        srt = ev.abs().sort().values
        return float(ev.abs()[i]), vecs[:, i], float((srt[-1] - srt[-2]) / srt[-1])

    lam, vstar, gap = spec_norm()
    assert gap > 1e-3
    xr, _, g = ch.margin_graph(model, x, y, torch.tensor([[j]]))
    (hv,) = torch.autograd.grad(g, xr, grad_outputs=vstar.reshape(xr.shape), create_graph=True)
    grads = torch.autograd.grad(hv.norm(), params, allow_unused=True)  # logit bias: unused
    analytic = sum(float((gp * dp).sum()) for gp, dp in zip(grads, direction) if gp is not None)
    h = 1e-5
    vals = []
    for sgn in (1, -1):
        with torch.no_grad():
            for p, dp in zip(params, direction):
                p.add_(sgn * h * dp)
        vals.append(spec_norm()[0])
        with torch.no_grad():
            for p, dp in zip(params, direction):
                p.sub_(sgn * h * dp)
    fd = (vals[0] - vals[1]) / (2 * h)
    assert abs(fd - analytic) <= 1e-4 * abs(analytic)


def test_replicated_batch_equals_per_example() -> None:
    model = _mlp()
    x, y = _data(n=4)
    js = ch.select_classes(model(x), y, "all")
    xr, m, g = ch.margin_graph(model, x, y, js)
    v = torch.randn(xr.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    (hv,) = torch.autograd.grad(g, xr, grad_outputs=v)
    s = js.shape[1]
    for b in range(4):
        for k in range(s):
            row = b * s + k
            xb = x[b:b + 1].clone().requires_grad_(True)
            out = model(xb)
            mb = out[0, y[b]] - out[0, js[b, k]]
            (gb,) = torch.autograd.grad(mb, xb, create_graph=True)
            (hb,) = torch.autograd.grad(gb, xb, grad_outputs=v[row:row + 1])
            assert float((gb.detach() - g[row].detach()).abs().max()) <= 1e-12
            assert float((hb - hv[row]).abs().max()) <= 1e-12
            assert abs(float(mb.detach() - m[row].detach())) <= 1e-12


def test_relu_hessian_is_zero_swish_is_not() -> None:
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    y = torch.tensor([0, 1])
    js = torch.tensor([[2], [3]])
    norms = {}
    for act in ("relu", "swish"):
        torch.manual_seed(0)
        model = SwishCNN(width=0.25, fc=16, activation=act).double()
        xr, _, g = ch.margin_graph(model, x, y, js)
        v = torch.randn(xr.shape, dtype=torch.float64)
        hv = torch.autograd.grad(g, xr, grad_outputs=v, allow_unused=True)[0]
        norms[act] = 0.0 if hv is None else float(hv.abs().max())
    assert norms["relu"] == 0.0
    assert norms["swish"] > 1e-6


def test_select_classes() -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0], [5.0, 4.0, 0.0, -1.0]])
    y = torch.tensor([1, 0])
    assert ch.select_classes(logits, y, 1).tolist() == [[3], [1]]
    assert sorted(ch.select_classes(logits, y, "all")[0].tolist()) == [0, 2, 3]
    with pytest.raises(ValueError):
        ch.select_classes(logits, y, 4)


def test_loss_identities() -> None:
    model = _mlp()
    x, y = _data(n=6)
    logits = model(x)
    params = list(model.parameters())
    for classes in (1, "all"):
        torch.manual_seed(0)
        r_ch, _ = ch.CrossHolder(0.3, 0.0, classes=classes)(model, x, y, logits)
        r_cl, _ = ch.CrossLipschitz(0.3, classes=classes)(model, x, y, logits)
        g_ch = torch.autograd.grad(r_ch, params, allow_unused=True)
        g_cl = torch.autograd.grad(r_cl, params, allow_unused=True)
        assert abs(float((r_ch - r_cl).detach())) <= 1e-12
        assert all((a is None and b is None) or float((a - b).abs().max()) <= 1e-12
                   for a, b in zip(g_ch, g_cl))
    r0, _ = ch.CrossHolder(0.0, 0.5, iters=3)(model, x, y, logits)
    assert float(r0) == 0.0
    # value equals the definition: λ1 mean_i Σ_j (‖∇f⁽ʲ⁾‖ + λ2 ‖H v̂‖)
    reg = ch.CrossHolder(0.7, 0.5, classes="all", iters=4)
    torch.manual_seed(3)
    val, stats = reg(model, x, y, logits)
    torch.manual_seed(3)
    t = reg.terms(model, x, y, logits)
    manual = 0.7 * (t["grad_norm"] + 0.5 * t["hess_norm"]).sum(1).mean()
    assert abs(float(val - manual)) <= 1e-12
    assert stats["K"] > 0 and stats["G"] > 0
    with pytest.raises(ValueError):
        ch.CrossHolder(-1.0)
    with pytest.raises(ValueError):
        ch.CrossHolder(1.0, estimator="exact")


def test_hessian_term_theta_gradient_with_fixed_v() -> None:
    # d/dθ ‖H_θ v‖ with v fixed, against central differences (third-order derivatives)
    model = _mlp(seed=6)
    x, y = _data(n=3, seed=6)
    js = ch.select_classes(model(x), y, 1)
    v = torch.randn(3, 8, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    params = list(model.parameters())
    direction = [torch.randn(p.shape, generator=torch.Generator().manual_seed(i),
                             dtype=torch.float64) for i, p in enumerate(params)]

    def term(create: bool) -> torch.Tensor:
        xr, _, g = ch.margin_graph(model, x, y, js)
        (hv,) = torch.autograd.grad(g, xr, grad_outputs=v, create_graph=create)
        return hv.norm(dim=1).sum()

    grads = torch.autograd.grad(term(True), params, allow_unused=True)
    analytic = sum(float((a * b).sum()) for a, b in zip(grads, direction) if a is not None)
    h = 1e-5
    vals = []
    for sgn in (1, -1):
        with torch.no_grad():
            for p, dp in zip(params, direction):
                p.add_(sgn * h * dp)
        vals.append(float(term(False)))
        with torch.no_grad():
            for p, dp in zip(params, direction):
                p.sub_(sgn * h * dp)
    fd = (vals[0] - vals[1]) / (2 * h)
    assert abs(fd - analytic) <= 1e-5 * max(1.0, abs(analytic))


def test_hein_cross_lipschitz_matches_definition() -> None:
    model = _mlp()
    x, y = _data(n=3)
    val, _ = ch.CrossLipschitz(1.0, variant="hein")(model, x, y)
    tot = 0.0
    for b in range(3):
        xb = x[b:b + 1].clone().requires_grad_(True)
        out = model(xb)[0]
        jac = torch.stack([torch.autograd.grad(out[c], xb, retain_graph=True)[0].reshape(-1)
                           for c in range(4)])
        tot += sum(float(((jac[l] - jac[m]) ** 2).sum()) for l in range(4) for m in range(4)) / 16
    assert float(val) == pytest.approx(tot / 3, rel=1e-12)


def test_robust_curves_on_linear_model_with_known_distance() -> None:
    # binary linear model: exact L2 distance to the boundary is |w·x + b| / ‖w‖ (box=None)
    torch.manual_seed(0)
    lin = torch.nn.Linear(5, 2).double()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        out = lin(x)
    y = out.argmax(1)
    w = lin.weight[0] - lin.weight[1]
    dist = ((out[:, 0] - out[:, 1]).abs() / w.norm()).detach()
    eps = [0.05, 0.2, 0.5]
    rc = ch.robust_curves(lin, x, y, eps, steps=20, restarts=1, box=None)
    for i, e in enumerate(eps):
        alive = rc.alive_ce[i] & rc.alive_cw[i]
        d = dist.numpy()
        assert np.all(d[~alive] <= 1.01 * e)  # broken points really are within ε
        assert np.all(d[alive] >= 0.99 * e)  # points at ≥ 1.01 ε survive, those ≤ 0.99ε fall
        assert rc.per_example[i] <= rc.min_of_two[i] + 1e-12
    assert np.all(np.diff(rc.ce) <= 0) and np.all(np.diff(rc.cw) <= 0)
    assert rc.per_example[0] < 1.0  # the test is not vacuous


def test_time_steps_and_pgd_training() -> None:
    model = _mlp(d=8, h=6, k=3).float()
    x = torch.rand(16, 8)
    y = torch.randint(0, 3, (16,), generator=torch.Generator().manual_seed(0))
    obj = ch.PGDTraining(0.5, steps=5, box=(0.0, 1.0))
    model.train()
    torch.manual_seed(0)
    xa = obj.attack(model, x, y)
    assert model.training
    assert float((xa - x).reshape(16, -1).norm(dim=1).max()) <= 0.5 * (1 + 1e-6)
    assert float(xa.min()) >= 0.0 and float(xa.max()) <= 1.0
    ce = torch.nn.functional.cross_entropy
    assert float(ce(model(xa), y)) > float(ce(model(x), y))  # the attack ascends the loss
    loss, info = obj(model, x, y)
    assert torch.isfinite(loss) and 0 <= info["adv_acc"] <= 1
    t = ch.time_steps(model, x, y, {"plain": None, "ch": ch.CrossHolder(0.1, 0.5, iters=2),
                                    "at": obj}, repeats=2)
    assert set(t) == {"plain", "ch", "at"} and all(v > 0 for v in t.values())
    with pytest.raises(ValueError):
        ch.PGDTraining(0.0)


def test_full_profile_times_the_literal_step_at_the_claims_batch() -> None:
    # issue 10, item 22: the document-width timing of the book (profile full) is measured at the
    # batch of 128 it reports, not on a few examples scaled by 128/n (overhead-dominated there)
    from analysis import config

    full = config.resolve("05_hessian_crossholder", "full")
    assert full.literal_batch == 128


# ----------------------------------------------------------- issue 14: warm-started CH training


def test_objective_shares_the_forward_and_equals_ce_plus_regulariser() -> None:
    # the one-forward objective is the same loss as CE + the regulariser (same start vectors)
    model = _mlp(d=8, h=6, k=4, seed=3)
    x, y = _data(n=7, d=8, k=4, seed=3)
    reg = ch.CrossHolder(0.3, 0.5, iters=4)
    torch.manual_seed(5)
    loss_obj, logs = ch.CrossHolderObjective(reg)(model, x, y)
    torch.manual_seed(5)
    logits = model(x)
    value, _ = reg(model, x, y, logits)
    loss_ref = torch.nn.functional.cross_entropy(logits, y) + value
    assert float(loss_obj) == pytest.approx(float(loss_ref), rel=1e-12)
    assert float(logs["ce"]) + float(logs["reg"]) == pytest.approx(float(loss_obj), rel=1e-12)
    g_obj = torch.autograd.grad(loss_obj, list(model.parameters()))
    g_ref = torch.autograd.grad(loss_ref, list(model.parameters()))
    assert all(torch.allclose(a, b, rtol=1e-10, atol=1e-12) for a, b in zip(g_obj, g_ref))


def test_warm_start_converges_to_the_operator_norm_with_one_step_per_call() -> None:
    # a warm-started example gains power steps across calls (epochs): with warm_iters=1 every
    # call adds two steps, so after 60 calls ‖H v̂‖ is the dense top |eigenvalue|, while one
    # cold call of T=2 is not; and a warm call costs warm_iters + 1 products, not iters + 1
    model = _mlp(d=10, h=8, k=3, seed=2)
    x, y = _data(n=6, d=10, k=3, seed=2)
    js = ch.select_classes(model(x), y, 1)
    lam = torch.tensor([float(torch.linalg.eigvalsh(
        _dense_hessian(model, x[b], int(y[b]), int(js[b, 0]))).abs().max()) for b in range(6)],
        dtype=torch.float64)
    calls = {"n": 0}
    real = ch.autodiff.graph_hvp

    def counting(*a, **k):
        calls["n"] += 1
        return real(*a, **k)

    warm = ch.CrossHolder(0.1, 0.5, iters=2, warm_start=True, warm_iters=1)
    torch.manual_seed(0)
    first = warm.terms(model, x, y, create_graph=False)["hess_norm"][:, 0]
    ch.autodiff.graph_hvp = counting
    try:
        for _ in range(60):
            last = warm.terms(model, x, y, create_graph=False)["hess_norm"][:, 0]
    finally:
        ch.autodiff.graph_hvp = real
    assert calls["n"] == 60 * 2  # one power step + the penalty's product per warm call
    assert torch.allclose(last, lam, rtol=1e-6)
    assert float((first / lam).min()) < 0.999  # the cold T=2 estimate had not converged
    st = warm.state_dict()
    assert st["directions"].shape == (6, 10) and len(set(st["fingerprints"].tolist())) == 6


def test_warm_state_restored_so_a_resumed_run_equals_an_uninterrupted_one(tmp_path,
                                                                        monkeypatch) -> None:
    from analysis import data, train

    blobs = data.synthetic("blobs", 96, 6, seed=0, num_classes=3, sep=3.0)
    kw = {"in_shape": [6], "hidden": 8, "num_classes": 3}
    cfg = train.TrainConfig(epochs=3, batch_size=32, lr=1e-2, seed=1)

    def objective():
        return ch.CrossHolderObjective(ch.CrossHolder(0.1, 0.5, iters=3, warm_start=True,
                                                      warm_iters=1))

    full = train.fit("swish_mlp", kw, blobs, cfg, objective=objective(), cache=False,
                     progress=False)

    def run_resumed(restore: bool) -> list[torch.Tensor]:
        monkeypatch.setenv("ANALYSIS_CACHE", str(tmp_path / f"cache{restore}"))
        # stopped in epoch 3: epochs 1 and 2 are checkpointed with their warm directions
        fit_interrupted(monkeypatch, "swish_mlp", kw, blobs, cfg, objective=objective(),
                        progress=False)
        obj = objective()
        if not restore:  # control: a resume that forgets the directions
            monkeypatch.setattr(obj, "load_state_dict", lambda state: None)
        res = train.fit("swish_mlp", kw, blobs, cfg, objective=obj, progress=False)
        assert not res.from_cache
        return [p.detach().clone() for p in res.model.state_dict().values()]

    ref = [p.detach().clone() for p in full.model.state_dict().values()]
    assert all(torch.equal(a, b) for a, b in zip(run_resumed(True), ref))
    assert not all(torch.equal(a, b) for a, b in zip(run_resumed(False), ref))


def test_a_partly_warm_batch_runs_the_cold_steps_only_on_its_cold_rows() -> None:
    # issue 14: a batch where some examples have no stored direction (first visit, or their
    # runner-up class changed) used to run T = iters steps for every row; now the warm rows run
    # warm_iters steps and only the cold rows get the extra iters − warm_iters steps, on a graph
    # of their own: same directions row by row as running each kind alone
    model = _mlp(d=10, h=8, k=3, seed=4)
    x, y = _data(n=6, d=10, k=3, seed=4)
    reg = ch.CrossHolder(0.1, 0.5, iters=5, warm_start=True, warm_iters=1)
    torch.manual_seed(0)
    reg.terms(model, x[:4], y[:4], create_graph=False)  # rows 0-3 get a stored direction
    stored, _ = reg._store.get(reg._store.keys(x[:4], ch.select_classes(model(x[:4]), y[:4], 1)),
                               x[:4])
    sizes = []
    real = ch.autodiff.graph_hvp

    def counting(g, xl, v, **k):
        sizes.append(xl.shape[0])
        return real(g, xl, v, **k)

    ch.autodiff.graph_hvp = counting
    try:
        torch.manual_seed(1)
        t = reg.terms(model, x, y, create_graph=False)
    finally:
        ch.autodiff.graph_hvp = real
    # 4 cold steps on the 2 cold rows, then 1 power step + the penalty's product on all 6
    assert sizes == [2] * 4 + [6] * 2
    torch.manual_seed(1)
    v0 = torch.randn(x.shape, dtype=x.dtype)  # the start vectors the call drew
    js = ch.select_classes(model(x), y, 1)
    cold = ch.cross_margin_terms(model, x[4:], y[4:], js[4:], lambda2=0.5, iters=5,
                                 start=v0[4:], create_graph=False)
    warm = ch.cross_margin_terms(model, x[:4], y[:4], js[:4], lambda2=0.5, iters=1,
                                 start=stored, create_graph=False)
    assert torch.allclose(t["hess_norm"][4:], cold["hess_norm"], rtol=1e-10)
    assert torch.allclose(t["hess_norm"][:4], warm["hess_norm"], rtol=1e-10)
    assert torch.allclose(t["v"], torch.cat([warm["v"], cold["v"]]), atol=1e-10)
