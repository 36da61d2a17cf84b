"""Attacks against closed forms (affine classifiers), constraints, re-checks and foolbox."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from analysis import attacks as A

D = 10



# --------------------------------------------------------------------------- fixtures


def _linear(k: int, seed: int) -> torch.nn.Linear:
    g = torch.Generator().manual_seed(seed)
    lin = torch.nn.Linear(D, k).double()
    with torch.no_grad():
        lin.weight.copy_(torch.randn(k, D, generator=g, dtype=torch.float64))
        lin.bias.copy_(0.3 * torch.randn(k, generator=g, dtype=torch.float64))
    return lin.eval()


def _closed_form(lin: torch.nn.Linear, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Minimal L2 distance to another class of an affine classifier, unboxed:
    min_{k≠y} (f_y − f_k) / ||w_y − w_k||."""
    with torch.no_grad():
        z = lin(x)
        W = lin.weight
        d = torch.full((len(x),), math.inf, dtype=torch.float64)
        for k in range(W.shape[0]):
            dk = (z.gather(1, y[:, None]).squeeze(1) - z[:, k]) / (W[y] - W[k]).norm(dim=1)
            d = torch.where(y == k, d, torch.minimum(d, dk))
    return d


def _linear_problem(k: int, seed: int, n: int = 24, center: float = 0.0, scale: float = 1.0):
    """Points labelled by the classifier itself, kept when 0.05 < d* < 0.6 (reachable by the
    default step sizes, large against DeepFool's 1e-4 numerator term)."""
    lin = _linear(k, seed)
    g = torch.Generator().manual_seed(seed + 100)
    x = center + scale * torch.randn(20 * n, D, generator=g, dtype=torch.float64)
    with torch.no_grad():
        y = lin(x).argmax(1)
    d = _closed_form(lin, x, y)
    keep = ((d > 0.05) & (d < 0.6)).nonzero().squeeze(1)[:n]
    assert len(keep) == n
    return lin, x[keep], y[keep], d[keep]


@pytest.fixture(params=[2, 5], ids=["2class", "5class"])
def linear_problem(request):
    return _linear_problem(request.param, seed=request.param)


def _mlp(seed: int = 0, k: int = 4, dtype=torch.float32) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(D, 32), torch.nn.Tanh(),
                               torch.nn.Linear(32, k)).to(dtype).eval()


@pytest.fixture
def mlp_problem():
    """A random tanh MLP on points in the unit box; labels are its predictions except for a
    few flipped ones (so some samples start misclassified)."""
    m = _mlp()
    g = torch.Generator().manual_seed(7)
    x = torch.rand(40, D, generator=g)
    with torch.no_grad():
        y = m(x).argmax(1)
    y[:5] = (y[:5] + 1) % 4
    return m, x, y


# --------------------------------------------------------------------------- closed forms


def test_deepfool_lands_at_overshoot_times_minimal_distance(linear_problem):
    lin, x, y, dstar = linear_problem
    for overshoot in (0.02, 0.002):
        r = A.deepfool(lin, x, y, overshoot=overshoot, box=None)
        assert bool(r.success.all())
        ratio = r.norms_l2 / dstar
        # one DeepFool step on an affine model is exact up to (1 + overshoot) and 1e-4 / ||w||
        assert torch.allclose(ratio, torch.full_like(ratio, 1 + overshoot), rtol=2e-3)
    assert float((ratio - 1).abs().max()) < 0.01


def _runner_up_is_closest(lin, x, y):
    """Samples whose closest decision boundary is the one with the runner-up class at x.

    C&W's untargeted loss max(z_y − max_{k≠y} z_k, −κ) descends toward the facet of the class
    that is currently second; when another facet is closer, the facet reached is a local
    minimum of the objective (a limitation of the method, not of the code)."""
    with torch.no_grad():
        z = lin(x)
        W = lin.weight
        dk = (z.gather(1, y[:, None]) - z) / (W[y][:, None, :] - W[None]).norm(dim=2)
        dk[torch.arange(len(x)), y] = math.inf
        runner = z.scatter(1, y[:, None], -math.inf).argmax(1)
    return dk.argmin(1) == runner


def test_cw_finds_minimal_distance_within_one_percent(linear_problem):
    lin, x, y, dstar = linear_problem
    r = A.cw_l2(lin, x, y, box=None)
    assert bool(r.success.all())
    ratio = r.norms_l2 / dstar
    assert float(ratio.min()) >= 1 - 1e-9  # nothing beats the closed form
    easy = _runner_up_is_closest(lin, x, y)
    assert int(easy.sum()) >= len(x) // 2
    assert float(ratio[easy].max()) < 1.01


@pytest.mark.parametrize("space", ["tanh", "clip"])
def test_cw_in_the_box_far_from_its_faces(space):
    # points near the centre of [0, 1]^D with distances < 0.3: the box is never active
    lin, x, y, dstar = _linear_problem(5, seed=11, n=12, center=0.5, scale=0.1)
    assert float(dstar.max()) < 0.4 and float((x - 0.5).abs().max()) < 0.5
    r = A.cw_l2(lin, x, y, space=space, steps=300 if space == "tanh" else 100)
    assert bool(r.success.all())
    ratio = r.norms_l2 / dstar
    assert float(ratio.min()) >= 1 - 1e-9
    easy = _runner_up_is_closest(lin, x, y)
    assert int(easy.sum()) >= len(x) // 2
    assert float(ratio[easy].max()) < 1.01
    assert float(r.x_adv.min()) >= 0 and float(r.x_adv.max()) <= 1


def test_min_norm_finds_minimal_distance(linear_problem):
    lin, x, y, dstar = linear_problem
    r = A.min_norm(lin, x, y, box=None)
    ratio = r.distance / dstar
    assert float(ratio.min()) >= 1 - 1e-9
    assert float(ratio.max()) < 1.01
    assert set(r.by) <= {"deepfool", "cw", "pgd_l2"}
    with torch.no_grad():
        assert bool((lin(r.x_adv).argmax(1) != y).all())
    assert torch.allclose((r.x_adv - x).norm(dim=1), r.distance)


def test_min_norm_pgd_alone_and_without_refinement():
    lin, x, y, dstar = _linear_problem(2, seed=3, n=12)
    r = A.min_norm(lin, x, y, attacks=("pgd_l2",), box=None, refine_steps=0,
                   bisection_steps=12)
    ratio = r.distance / dstar
    assert float(ratio.min()) >= 1 - 1e-9
    assert float(ratio.max()) < 1.01


def test_lbfgs_two_class_is_exact_and_multiclass_is_sound():
    lin, x, y, dstar = _linear_problem(2, seed=2, n=4)
    r = A.lbfgs(lin, x, y, box=None)
    assert bool(r.success.all())
    ratio = r.norms_l2 / dstar
    assert float(ratio.min()) >= 1 - 1e-9 and float(ratio.max()) < 1.01
    assert bool((r.info["target"] == 1 - y).all())
    lin5, x5, y5, d5 = _linear_problem(5, seed=5, n=2)
    r5 = A.lbfgs(lin5, x5, y5, target="all", box=None, bisection_steps=4)
    assert bool(r5.success.all())
    assert float((r5.norms_l2 / d5).min()) >= 1 - 1e-9
    tgt = (y5 + 1) % 5
    rt = A.lbfgs(lin5, x5, y5, target=tgt, box=None, bisection_steps=4)
    with torch.no_grad():
        reached = lin5(rt.x_adv).argmax(1)
    assert bool((reached[rt.success] == tgt[rt.success]).all())


def test_pgd_l2_breaks_exactly_above_the_minimal_distance():
    lin, x, y, dstar = _linear_problem(2, seed=4, n=16)
    # from x the first step is along w_other − w_y, the optimal direction: exact
    above = A.pgd(lin, x, y, eps=dstar * 1.01, norm="l2", steps=20, random_start=False,
                  box=None)
    # from a random start the iterates turn toward that direction geometrically
    above_rs = A.pgd(lin, x, y, eps=dstar * 1.05, norm="l2", steps=40, box=None)
    below = A.pgd(lin, x, y, eps=dstar * 0.99, norm="l2", steps=20, restarts=3, box=None)
    assert bool(above.success.all()) and bool(above_rs.success.all())
    assert not bool(below.success.any())


# --------------------------------------------------------------------------- constraints


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_bim_fgsm_respect_ball_and_box(mlp_problem, norm):
    m, x, y = mlp_problem
    for eps in (0.05, 0.3):
        for r in (A.pgd(m, x, y, eps, norm, steps=10, restarts=2),
                  A.bim(m, x, y, eps, steps=10, norm=norm),
                  A.fgsm(m, x, y, eps, norm)):
            n = r.norms_linf if norm == "linf" else r.norms_l2
            assert float(n.max()) <= eps * (1 + 1e-5), r.name
            assert float(r.x_adv.min()) >= 0 and float(r.x_adv.max()) <= 1, r.name
            assert torch.equal(r.delta, r.x_adv - x)


def test_per_sample_eps(mlp_problem):
    m, x, y = mlp_problem
    eps = torch.linspace(0.0, 0.5, len(x))
    r = A.pgd(m, x, y, eps, "l2", steps=10)
    assert bool((r.norms_l2 <= eps.double() * (1 + 1e-5) + 1e-7).all())


def test_deepfool_and_cw_stay_in_box(mlp_problem):
    m, x, y = mlp_problem
    for r in (A.deepfool(m, x, y), A.cw_l2(m, x, y, steps=30, binary_steps=3),
              A.cw_l2(m, x, y, steps=30, binary_steps=3, space="tanh")):
        assert float(r.x_adv.min()) >= 0 and float(r.x_adv.max()) <= 1, r.name


def test_box_none_and_out_of_box_input():
    m = _mlp()
    x = 3 * torch.randn(8, D)
    y = torch.zeros(8, dtype=torch.long)
    with pytest.raises(ValueError, match="box=None"):
        A.pgd(m, x, y, 0.1)
    r = A.pgd(m, x, y, 0.5, box=None, steps=5)
    assert float(r.norms_linf.max()) <= 0.5 + 1e-6


# --------------------------------------------------------------------------- re-checks


def _all_attacks(m, x, y):
    return [A.fgsm(m, x, y, 0.1), A.bim(m, x, y, 0.1), A.pgd(m, x, y, 0.5, "l2", steps=10),
            A.pgd(m, x, y, 0.1, "linf", steps=10, loss="cw", restarts=2), A.deepfool(m, x, y),
            A.cw_l2(m, x, y, steps=30, binary_steps=3), A.lbfgs(m, x[:8], y[:8], maxiter=30)]


def test_success_mask_agrees_with_reevaluation(mlp_problem):
    m, x, y = mlp_problem
    with torch.no_grad():
        clean_wrong = m(x).argmax(1) != y
    assert 0 < int(clean_wrong.sum()) < len(x)
    for r in _all_attacks(m, x, y):
        n = len(r)
        with torch.no_grad():
            assert torch.equal(r.success, m(r.x_adv).argmax(1) != y[:n]), r.name
        # already misclassified: unchanged, counted as success, distance 0
        w = clean_wrong[:n]
        assert bool(r.success[w].all()) and float(r.norms_l2[w].abs().max()) == 0, r.name
        assert torch.equal(r.distance()[r.success], r.norms_l2[r.success])
        assert bool(torch.isinf(r.distance()[~r.success]).all())


def test_model_state_restored_and_no_parameter_gradients(mlp_problem):
    m, x, y = mlp_problem
    m.train()
    frozen = m[0].bias
    frozen.requires_grad_(False)
    _all_attacks(m, x, y)
    A.min_norm(m, x[:6], y[:6])
    assert m.training
    assert not frozen.requires_grad
    assert all(p.requires_grad for n, p in m.named_parameters() if n != "0.bias")
    assert all(p.grad is None for p in m.parameters())


def test_batch_size_gives_the_same_deterministic_attacks(mlp_problem):
    m, x, y = mlp_problem
    a = A.deepfool(m, x, y)
    b = A.deepfool(m, x, y, batch_size=7)
    assert torch.allclose(a.x_adv, b.x_adv, atol=1e-6)
    p1 = A.pgd(m, x, y, 0.1, steps=5, seed=3)
    p2 = A.pgd(m, x, y, 0.1, steps=5, seed=3)
    p3 = A.pgd(m, x, y, 0.1, steps=5, seed=4)
    assert torch.equal(p1.x_adv, p2.x_adv)
    assert not torch.equal(p1.x_adv, p3.x_adv)


def test_robust_accuracy_bounded_by_clean_and_monotone(mlp_problem):
    m, x, y = mlp_problem
    with torch.no_grad():
        clean = float((m(x).argmax(1) == y).double().mean())
    eps = [0.2, 0.0, 0.05, 0.1, 0.4]
    for norm in ("linf", "l2"):
        acc = A.robust_accuracy(m, x, y, eps, norm, steps=10)
        assert acc.shape == (5,)
        assert acc[1] == pytest.approx(clean)
        assert np.all(acc <= clean + 1e-12)
        order = np.argsort(eps)
        assert np.all(np.diff(acc[order]) <= 1e-12)
        # each radius agrees with a direct PGD run at it, up to the monotone carry-over
        r = A.pgd(m, x, y, 0.4, norm, steps=10)
        assert acc[4] <= float((~r.success).double().mean()) + 1e-12
    acc_f = A.robust_accuracy(m, x, y, [0.1], "linf", attack="fgsm")
    acc_b = A.robust_accuracy(m, x, y, [0.1], "linf", attack="bim", steps=10)
    assert acc_f[0] <= clean and acc_b[0] <= clean


def test_min_norm_distances_are_sound_upper_bounds(mlp_problem):
    m, x, y = mlp_problem
    r = A.min_norm(m, x, y)
    with torch.no_grad():
        wrong = m(x).argmax(1) != y
        assert bool((m(r.x_adv).argmax(1)[r.success] != y[r.success]).all())
    assert bool((r.distance[wrong] == 0).all())
    assert all(r.by[i] == "clean" for i in wrong.nonzero().squeeze(1).tolist())
    # the minimum over attacks is no larger than each attack's distance
    for d in r.per_attack.values():
        assert bool((r.distance <= d).all())
    assert torch.allclose((r.x_adv - x).double().norm(dim=1), r.distance, atol=1e-6)
    # refinement never makes a success worse: min_norm beats plain DeepFool everywhere
    df = A.deepfool(m, x, y)
    assert bool((r.distance <= df.distance() + 1e-9).all())


# --------------------------------------------------------------------------- foolbox


def _foolbox():
    """foolbox (a dev dependency): a skip only when it is not installed; once installed, any
    failure to import or run it is an error, so the external cross-check cannot vanish."""
    if importlib.util.find_spec("foolbox") is None:
        pytest.skip("foolbox is not installed (it comes with `pip install -e .[dev]`)")
    import foolbox as fb

    return fb


def test_min_norm_matches_foolbox_on_trained_digits_mlp():
    fb = _foolbox()
    from sklearn.datasets import load_digits

    X, Y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    Y = torch.tensor(Y)
    perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
    tr, te = perm[:1400], perm[1400:]
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Tanh(), torch.nn.Linear(64, 10))
    opt = torch.optim.Adam(m.parameters(), 1e-2)
    for _ in range(150):
        opt.zero_grad()
        F.cross_entropy(m(X[tr]), Y[tr]).backward()
        opt.step()
    m.eval()
    for p in m.parameters():
        p.grad = None
    with torch.no_grad():
        acc = float((m(X[te]).argmax(1) == Y[te]).float().mean())
        ok = m(X[te]).argmax(1) == Y[te]
    assert acc > 0.9
    x, y = X[te][ok][:50], Y[te][ok][:50]

    ours = A.min_norm(m, x, y).distance
    fmodel = fb.PyTorchModel(m, bounds=(0, 1))
    theirs = torch.full((len(x),), math.inf, dtype=torch.float64)
    for attack in (fb.attacks.L2DeepFoolAttack(), fb.attacks.DDNAttack(steps=200),
                   fb.attacks.L2CarliniWagnerAttack(binary_search_steps=6, steps=200)):
        _, clipped, success = attack(fmodel, x, y, epsilons=None)
        d = (clipped - x).double().norm(dim=1)
        theirs = torch.minimum(theirs, torch.where(success, d, math.inf))
    assert bool(torch.isfinite(ours).all()) and bool(torch.isfinite(theirs).all())
    med_ours, med_theirs = float(ours.median()), float(theirs.median())
    print(f"median L2 distance: ours {med_ours:.4f}, foolbox (best of DeepFool, DDN, C&W) "
          f"{med_theirs:.4f}, ratio {med_ours / med_theirs:.4f}")
    assert med_ours <= 1.05 * med_theirs


# --------------------------------------------------------------------------- variants


def _linf_distance(lin, x, y):
    """Minimal Linf distance of a 2-class affine classifier: |f_1 − f_0| / ||w_1 − w_0||₁."""
    with torch.no_grad():
        z = lin(x)
        w = lin.weight[1] - lin.weight[0]
    return (z[:, 1] - z[:, 0]).abs() / w.abs().sum()


def test_fgm_bisection_is_exact_on_a_linear_two_class_model():
    lin, x, y, dstar = _linear_problem(2, seed=6, n=16)
    sign = A.fgm_bisection(lin, x, y, "sign", box=None)
    grad = A.fgm_bisection(lin, x, y, "grad", box=None)
    assert bool(sign.success.all()) and bool(grad.success.all())
    # sign(w) is the optimal Linf direction, w/||w|| the optimal L2 direction
    einf = _linf_distance(lin, x, y)
    assert torch.allclose(sign.info["eps"], einf, rtol=1e-6)
    assert torch.allclose(sign.norms_linf, einf, rtol=1e-6)
    assert torch.allclose(grad.norms_l2, dstar, rtol=1e-6)


def test_bim_keep_first_stops_one_step_past_the_boundary():
    lin, x, y, _ = _linear_problem(2, seed=7, n=16)
    einf = _linf_distance(lin, x, y)
    alpha = 0.01
    r = A.bim(lin, x, y, eps=1.0, steps=200, step_size=alpha, keep="first", box=None)
    assert bool(r.success.all())
    # each step moves every coordinate by alpha along the optimal sign direction
    steps = torch.ceil(einf / alpha)
    assert torch.allclose(r.norms_linf, steps * alpha, rtol=1e-6)
    last = A.bim(lin, x, y, eps=1.0, steps=200, step_size=alpha, keep="last", box=None)
    assert torch.allclose(last.norms_linf, torch.ones_like(einf))
    # on an affine 2-class model the gradient sign never changes: momentum follows the same path
    mi = A.mifgsm(lin, x, y, eps=1.0, steps=200, step_size=alpha, keep="first", box=None)
    assert torch.allclose(mi.x_adv, r.x_adv)


def test_rfgsm_without_random_step_is_fgsm_and_respects_constraints(mlp_problem):
    m, x, y = mlp_problem
    a = A.rfgsm(m, x, y, eps=0.1, alpha=0.0)
    b = A.fgsm(m, x, y, 0.1)
    assert torch.equal(a.x_adv, b.x_adv)
    r = A.rfgsm(m, x, y, eps=0.1, alpha=0.05, steps=3)
    assert float(r.norms_linf.max()) <= 0.1 + 1e-6
    assert float(r.x_adv.min()) >= 0 and float(r.x_adv.max()) <= 1


def test_targeted_attacks_report_target_hits(mlp_problem):
    m, x, y = mlp_problem
    t = (y + 2) % 4
    for r in (A.pgd(m, x, y, 0.5, "l2", steps=20, target=t),
              A.bim(m, x, y, 0.3, steps=20, target=t, keep="first"),
              A.fgsm(m, x, y, 0.3, target=t), A.mifgsm(m, x, y, 0.3, target=t),
              A.cw_l2(m, x, y, steps=50, binary_steps=4, target=t)):
        with torch.no_grad():
            pred = m(r.x_adv).argmax(1)
        assert torch.equal(r.info["target_hit"], pred == t), r.name
        assert torch.equal(r.success, pred != y), r.name
    assert float(r.info["target_hit"].double().mean()) > 0.5  # C&W reaches most targets
    with pytest.raises(ValueError, match="target"):
        A.pgd(m, x, y, 0.1, target=y)


def test_robust_accuracy_worst_case_over_losses(mlp_problem):
    m, x, y = mlp_problem
    eps = [0.05, 0.1]
    both = A.robust_accuracy(m, x, y, eps, "linf", steps=10, loss=("ce", "cw"))
    for single in ("ce", "cw"):
        assert np.all(both <= A.robust_accuracy(m, x, y, eps, "linf", steps=10, loss=single))


def test_min_norm_with_single_direction_searches(linear_problem):
    lin, x, y, dstar = linear_problem
    r = A.min_norm(lin, x, y, attacks=("fgv", "fgs", "deepfool"), box=None)
    assert set(r.per_attack) == {"fgv", "fgs", "deepfool"}
    assert float((r.distance / dstar).min()) >= 1 - 1e-9
    assert float((r.distance / dstar).max()) < 1.01
    if lin.out_features == 2:  # the gradient direction is optimal for two classes
        assert torch.allclose(r.per_attack["fgv"], dstar, rtol=1e-5)


def test_attack_all_perturbs_misclassified_samples_too(mlp_problem):
    m, x, y = mlp_problem
    with torch.no_grad():
        wrong = m(x).argmax(1) != y
    r = A.pgd(m, x, y, 0.1, steps=5, attack_all=True)
    assert float(r.norms_linf[wrong].min()) > 0
    with torch.no_grad():
        assert torch.equal(r.success, m(r.x_adv).argmax(1) != y)


def test_per_feature_box_tensors(mlp_problem):
    m, x, y = mlp_problem
    lo = torch.linspace(-0.5, 0.0, D)
    hi = torch.linspace(1.0, 1.5, D)
    box = (lo, hi)
    for r in (A.pgd(m, x, y, 0.8, steps=10, box=box), A.deepfool(m, x, y, box=box),
              A.cw_l2(m, x, y, steps=20, binary_steps=2, space="tanh", box=box),
              A.fgm_bisection(m, x, y, box=box)):
        assert bool((r.x_adv >= lo - 1e-6).all()) and bool((r.x_adv <= hi + 1e-6).all()), r.name
    with pytest.raises(ValueError, match="outside box"):
        A.pgd(m, x + 1.2, y, 0.1, box=box)


def test_check_result_passes_real_attacks_and_catches_broken_ones(mlp_problem):
    m, x, y = mlp_problem
    r = A.pgd(m, x, y, 0.1, "linf", steps=5)
    A.check_result(m, x, y, r, 0.1, "linf")
    import dataclasses  # noqa: PLC0415
    too_far = dataclasses.replace(r, x_adv=(x + 0.2).clamp(0, 1), delta=(x + 0.2).clamp(0, 1) - x)
    with pytest.raises(AssertionError, match="eps"):
        A.check_result(m, x, y, too_far, 0.1, "linf")
    flipped = dataclasses.replace(r, success=~r.success)
    with pytest.raises(AssertionError, match="re-check"):
        A.check_result(m, x, y, flipped, 0.1, "linf")


def test_robust_outcomes_are_per_point_and_average_to_the_accuracy(mlp_problem):
    m, x, y = mlp_problem
    eps = [0.3, 0.0, 0.1]
    out = A.robust_outcomes(m, x, y, eps, "linf", steps=10)
    assert out.shape == (3, x.shape[0]) and out.dtype == bool
    correct = (A.predict(m, x) == y).cpu().numpy()
    np.testing.assert_array_equal(out[1], correct)  # eps = 0: the clean outcome, per point
    assert not np.any(out[0] & ~out[2])  # monotone: broken at 0.1 stays broken at 0.3
    np.testing.assert_allclose(out.mean(axis=1),
                               A.robust_accuracy(m, x, y, eps, "linf", steps=10))
    # a point counted broken really is, and one counted robust is not broken (deterministic
    # FGSM, so the attack on the point alone must give the same outcome)
    out_f = A.robust_outcomes(m, x, y, [0.3], "linf", attack="fgsm", monotone=False)[0]
    broken = np.flatnonzero(correct & ~out_f)
    assert 0 < broken.size < correct.sum()
    r = A.fgsm(m, x, y, 0.3, "linf")
    np.testing.assert_array_equal(out_f, correct & ~r.success.cpu().numpy())


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_float64_model_budget_is_not_rounded_to_float32(norm):
    """A Python-float eps on a float64 model is used in float64: 0.1 rounded to float32 is
    0.1 + 1.5e-9, which the projection would let the perturbation reach."""
    m = _mlp(seed=3, dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    x = 0.4 + 0.2 * torch.rand(30, D, generator=g, dtype=torch.float64)  # box never binds
    with torch.no_grad():
        y = m(x).argmax(1)
    eps = 0.1 if norm == "linf" else 0.05
    assert float(torch.tensor(eps, dtype=torch.float32)) != eps  # the rounding is real
    for r in (A.pgd(m, x, y, eps, norm, steps=20, random_start=False),
              A.bim(m, x, y, eps, steps=5, norm=norm), A.fgsm(m, x, y, eps, norm)):
        size = r.norms_linf if norm == "linf" else r.norms_l2
        assert float(size.max()) >= 0.99 * eps, r.name  # the budget is (nearly) spent
        assert float(size.max()) <= eps * (1 + 1e-12), (r.name, float(size.max()) - eps)


def test_lbfgs_batched_equals_one_sample_at_a_time_with_one_model_copy(monkeypatch):
    """The lock-step batched search solves the same per-sample problems as the unbatched one
    (``batch_size=1``): same targets, same c, distances within the optimiser's tolerance; the
    float64 copy of a float32 model is made once per call, not once per sample."""
    import copy

    m = _mlp(seed=2)
    g = torch.Generator().manual_seed(3)
    x = torch.rand(12, D, generator=g)
    with torch.no_grad():
        y = m(x).argmax(1)
    y[:2] = (y[:2] + 1) % 4  # two misclassified samples: returned unchanged
    copies = []
    real = copy.deepcopy
    monkeypatch.setattr(copy, "deepcopy", lambda obj, *a: copies.append(1) or real(obj, *a))
    for target in (None, "all"):
        copies.clear()
        batched = A.lbfgs(m, x, y, target=target, bisection_steps=4, batch_size=None)
        assert len(copies) == 1, len(copies)
        single = A.lbfgs(m, x, y, target=target, bisection_steps=4, batch_size=1)
        A.check_result(m, x, y, batched, eps=math.inf, norm="l2")  # success re-checked, box
        assert torch.equal(batched.success, single.success) and bool(batched.success[2:].all())
        assert torch.equal(batched.info["target"], single.info["target"])
        assert torch.allclose(batched.info["c"][2:], single.info["c"][2:])
        rel = (batched.norms_l2[2:] - single.norms_l2[2:]).abs() / single.norms_l2[2:]
        assert float(rel.max()) < 1e-3, float(rel.max())
        assert bool((batched.norms_l2[:2] == 0).all())


class _RowCounter(torch.nn.Module):
    """Wraps a model and counts the samples it is called on."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model, self.rows = model, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += x.shape[0]
        return self.model(x)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_compact_steps_fewer_samples_and_gives_the_same_first_success(mlp_problem, norm):
    m, x, y = mlp_problem
    eps = 0.15 if norm == "linf" else 0.6
    runs = {}
    for compact in (False, True):
        counted = _RowCounter(m)
        runs[compact] = (A.pgd(counted, x, y, eps, norm, steps=15, restarts=2, keep="first",
                               compact=compact, seed=3), counted.rows)
        b = A.bim(m, x, y, eps, steps=15, norm=norm, keep="first", compact=compact)
        runs[compact, "bim"] = b
    (full, rows_full), (comp, rows_comp) = runs[False], runs[True]
    clean = A.predict(m, x) == y  # a mixed case among the correctly classified points
    assert 0 < int((full.success & clean).sum()) < int(clean.sum())
    # L∞ steps take the gradient's sign, so they are exact; L2 steps may differ by the rounding
    # of torch's reductions over the 4 logits, which depends on a row's place in the batch
    tol = {"rtol": 0, "atol": 0} if norm == "linf" else {"rtol": 0, "atol": 1e-6}
    torch.testing.assert_close(comp.x_adv, full.x_adv, **tol)
    assert torch.equal(comp.success, full.success)
    assert rows_comp < rows_full  # the samples that stopped were not stepped
    torch.testing.assert_close(runs[True, "bim"].x_adv, runs[False, "bim"].x_adv, **tol)
    with pytest.raises(ValueError, match="keep='first'"):
        A.pgd(m, x, y, eps, norm, compact=True)


def test_robust_outcomes_stop_at_success_gives_the_same_outcomes(mlp_problem):
    m, x, y = mlp_problem
    for norm, eps in (("linf", [0.05, 0.1, 0.2]), ("l2", [0.3, 0.6])):
        for kw in ({"attack": "pgd", "loss": ("ce", "cw"), "restarts": 2}, {"attack": "bim"}):
            ref = A.robust_outcomes(m, x, y, eps, norm, steps=12, seed=1, **kw)
            fast = A.robust_outcomes(m, x, y, eps, norm, steps=12, seed=1,
                                     stop_at_success=True, **kw)
            np.testing.assert_array_equal(fast, ref)
            assert ref[0].any() and not ref[-1].all()  # some points survive, some break


def test_lbfgs_lockstep_follows_each_one_sample_run():
    """``lockstep=True`` gives each sample its own L-BFGS-B run and batches only the model
    evaluations: per-sample targets, c, success and points are those of the unbatched attack
    (``batch_size=1``) up to the float64 round-off of a batched forward pass."""
    m = _mlp(seed=5)
    g = torch.Generator().manual_seed(7)
    x = torch.rand(10, D, generator=g)
    with torch.no_grad():
        y = m(x).argmax(1)
    tgt = (y + 1 + torch.arange(10) % 3) % 4
    single = A.lbfgs(m, x, y, target=tgt, bisection_steps=3, batch_size=1)
    lock = A.lbfgs(m, x, y, target=tgt, bisection_steps=3, batch_size=None, lockstep=True)
    assert torch.equal(lock.success, single.success) and bool(single.success.any())
    assert torch.equal(lock.info["target"], single.info["target"])
    assert torch.equal(lock.info["c"].isnan(), single.info["c"].isnan())
    ok = ~single.info["c"].isnan()
    assert torch.allclose(lock.info["c"][ok], single.info["c"][ok], rtol=1e-12, atol=0)
    assert float((lock.x_adv - single.x_adv).abs().max()) < 1e-9
    joint = A.lbfgs(m, x, y, target=tgt, bisection_steps=3, batch_size=None)  # shared run
    assert float((joint.x_adv - single.x_adv).abs().max()) > 1e-9  # the test can tell them apart
