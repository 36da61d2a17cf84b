"""Chapter 06 (synthesis) at tiny sizes: the selection rule, the network every tool reads, the
SWISH Lipschitz constant, the worst-case and checklist logic on hand-made outcomes, and one
tiny end-to-end pass (training, evaluation, certificates)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis import attacks, claims, config, verify
from analysis.bounds import hessian as hb
from analysis.bounds import peck
from analysis.experiments import synthesis as xs
from analysis.models.swish import SwishMLP
from analysis.models.synthesis import ChainMLP


def test_choose_takes_the_strongest_within_tolerance_else_the_weakest():
    assert xs.choose({0.1: 0.90, 1.0: 0.89, 10.0: 0.80}, 0.90, 0.02) == (1.0, True)
    assert xs.choose({1.0: 0.5, 0.1: 0.6}, 0.9, 0.02) == (0.1, False)
    assert xs.choose({0.1: 0.95}, 0.90, 0.0) == (0.1, True)


def test_swish_lipschitz_constant_bounds_the_derivative_tightly():
    z = torch.linspace(-20, 20, 400001, dtype=torch.float64)
    s = torch.sigmoid(z)
    d = (s + z * s * (1 - s)).abs().max().item()
    assert d <= xs.SWISH_LIPSCHITZ < d + 0.002


def test_chain_mlp_is_the_swish_mlp_and_every_tool_reads_it():
    torch.manual_seed(0)
    net = ChainMLP((1, 4, 4), hidden=5, num_classes=3)
    ref = SwishMLP((1, 4, 4), hidden=5, num_classes=3)
    ref.load_state_dict({"fc1.weight": net.fc1.weight, "fc1.bias": net.fc1.bias,
                         "fc2.weight": net.fc2.weight, "fc2.bias": net.fc2.bias})
    x = torch.rand(6, 1, 4, 4)
    assert torch.allclose(net(x), ref(x))
    assert torch.allclose(hb.mlp_margins(net, x)["margin"], hb.mlp_margins(ref, x)["margin"])
    relu = ChainMLP((1, 4, 4), hidden=5, num_classes=3, activation="relu")
    assert verify.network(relu.net, (1, 4, 4)).piecewise_linear
    assert len(peck.leaves(net)) == 4


def test_sound_radii_stay_below_the_attack_distance():
    torch.manual_seed(1)
    net = ChainMLP((1, 4, 4), hidden=8, num_classes=3).eval()
    x = torch.rand(12, 1, 4, 4)
    y = attacks.predict(net, x)
    dist = attacks.min_norm(net, x, y, box=None).distance.numpy()
    rad = xs.swish_lipschitz_radius(net, x)
    assert np.isfinite(dist).all() and (rad > 0).all() and (rad <= dist + 1e-9).all()


def _evaluation(n=4, **kw):
    e, f = np.ones((2, n), bool), np.ones(n)
    base = dict(correct=np.ones(n, bool), linf_ce=e.copy(), linf_cw=e.copy(),
                linf_fgsm=e.copy(), linf_transfer=e.copy(), l2_ce=e.copy(), l2_cw=e.copy(),
                distance=10 * f, by=["cw"] * n, deepfool=10 * f, cw=10 * f,
                decision=np.full(2, 20.0), converged=e.copy(), huge=np.zeros(n, bool))
    base.update(kw)
    return xs.Evaluation(**base)


def test_worst_case_needs_every_attack_to_fail():
    e = _evaluation(linf_transfer=np.array([[1, 1, 0, 1], [1, 0, 0, 1]], bool),
                    distance=np.array([0.5, 3.0, 3.0, 3.0]), decision=np.array([3.0, 1.5]))
    assert e.worst_linf().tolist() == [[1, 1, 0, 1], [1, 0, 0, 1]]
    assert e.worst_l2([1.0, 2.0]).astype(int).tolist() == [[0, 1, 1, 1], [0, 0, 1, 1]]


def test_worst_linf_includes_the_stronger_convergence_run_from_the_middle_radius_on():
    e = _evaluation(3, linf_ce=np.ones((3, 3), bool), linf_cw=np.ones((3, 3), bool),
                    linf_fgsm=np.ones((3, 3), bool), linf_transfer=np.ones((3, 3), bool),
                    converged=np.array([[1, 1, 1], [1, 0, 1]], bool))
    assert e.worst_linf().astype(int).tolist() == [[1, 1, 1], [1, 0, 1], [1, 0, 1]]


def test_l2_upper_bound_is_the_closest_adversarial_of_every_l2_attack():
    e = _evaluation(4, correct=np.array([1, 1, 1, 0], bool),
                    l2_ce=np.array([[1, 1, 0, 0], [1, 1, 0, 0]], bool),
                    l2_cw=np.array([[1, 1, 1, 0], [0, 1, 1, 0]], bool),
                    distance=np.array([3.0, np.inf, 3.0, 0.0]), decision=np.array([5.0, 4.0]))
    assert e.l2_upper_bound([1.0, 2.0]).tolist() == [2.0, 4.0, 1.0, 0.0]


def test_no_masking_counts_points_only_the_decision_attack_broke():
    masked = _evaluation(8, distance=np.full(8, np.inf), decision=np.full(8, 3.0))
    assert xs.sanity_checks({("m", 0): masked}, "m")["no masking"].label == \
        claims.NOT_REPRODUCED
    wrong = _evaluation(8, correct=np.zeros(8, bool), distance=np.zeros(8))
    assert xs.sanity_checks({("m", 0): wrong}, "m")["no masking"].label == claims.NOT_TESTABLE


def test_a_rate_without_spread_gets_the_binomial_interval_not_a_zero_width_one():
    few = xs.sanity_checks({("m", 0): _evaluation(4)}, "m")  # 0 of 4 closer, 0 of 4 alive
    assert few["no masking"].label == claims.INCONCLUSIVE
    assert few["success → 100 % at large ε"].label == claims.INCONCLUSIVE
    assert few["no masking"].estimate.high > 0.1


def test_sanity_checks_follow_their_rules():
    strong = {("m", s): _evaluation(200, linf_ce=np.zeros((2, 200), bool)) for s in (0, 1)}
    st = xs.sanity_checks(strong, "m")
    assert st["iterative beats single-step"].label == claims.REPRODUCED
    assert st["success → 100 % at large ε"].label == claims.REPRODUCED
    assert st["converged"].label == claims.REPRODUCED
    closer = _evaluation(8, decision=np.full(8, 1.0), huge=np.ones(8, bool),
                         converged=np.array([[1] * 8, [0] * 8], bool))
    st = xs.sanity_checks({("m", 0): closer}, "m")
    assert st["no masking"].label == claims.NOT_REPRODUCED
    assert st["success → 100 % at large ε"].label == claims.NOT_REPRODUCED
    assert st["converged"].label == claims.NOT_REPRODUCED


def test_radii_survived_is_a_paired_difference_and_the_half_gain_rule():
    n = 30
    far = _evaluation(n, distance=np.full(n, 9.0))
    near = _evaluation(n, distance=np.full(n, 1.5))
    none = _evaluation(n, distance=np.full(n, 0.5))
    ev = {("a", 0): far, ("at", 0): far, ("b", 0): near, ("none", 0): none}
    assert xs.radii_survived(ev, "a", "b", [1.0, 2.0]).value == 1.0
    # b survives 1 radius, AT 2, none 0: b − AT/2 − none/2 = 0
    assert xs.radii_survived(ev, "b", "at", [1.0, 2.0], 0.5, "none").value == 0.0


def test_share_certified_counts_only_points_left_standing():
    c = xs.Certificates(radius={"crown": np.array([0.3, 0.0, 0.3, 0.3])},
                        correct={"crown": np.array([1, 1, 1, 0], bool)},
                        attack={"twin": np.array([1.0, 1.0, 0.1, 1.0])},
                        violations={"crown": 0}, compared={"crown": 3})
    e = xs.share_certified({"m": c}, "crown", 0.25)
    assert (e.value, e.n_points) == (0.5, 2)


@pytest.fixture(scope="module")
def tiny():
    grids = {f"grid_{m}": [0.01] for m in xs.DEFENCES[1:]}
    cfg = config.resolve("06_synthesis", "smoke", n_train=300, n_val=100, epochs=1, n_test=12,
                         n_cert=6, n_decision=2, hsj_steps=2, cw_steps=5, cw_binary_steps=2,
                         pgd_steps=3, smooth_n=50, smooth_n0=10, hidden=8, **grids)
    dev = torch.device("cpu")
    sd = xs.load_data(cfg)
    sel = xs.select_strengths(cfg, sd, dev)
    swish, twins = xs.train_all(cfg, sd, sel, dev)
    evals = xs.evaluate_all(cfg, sd, swish, dev)
    return cfg, sd, sel, swish, twins, evals


def test_tiny_run_selects_on_validation_and_certifies_soundly(tiny):
    cfg, sd, sel, swish, twins, evals = tiny
    assert len(sd.fit.y_test) == 100 and len(sd.fit.y_train) == 200
    assert set(sel.chosen) == set(xs.DEFENCES) and sel.chosen["none"] is None
    assert all(twins[m].model.activation == "relu" for m in xs.DEFENCES)
    ev = evals["none", cfg.seed]
    assert ev.worst_l2(cfg.eps_l2).shape == (len(cfg.eps_l2), cfg.n_test)
    assert (ev.worst_linf() <= ev.correct).all()
    certs = xs.certify_all(cfg, sd, swish, twins, evals)
    assert all(v == 0 for c in certs.values() for v in c.violations.values())
    table = xs.synthesis_table(cfg, sel, evals, certs)
    assert list(table["defence"]) == [xs.LABELS[m] for m in xs.DEFENCES]
    verdicts = xs.regulariser_claims(evals, cfg, "sec-06-verdicts")
    assert len(verdicts) == 3 * len(xs.DOCUMENT_REGULARISERS)


def test_errata_name_a_section_of_the_chapter():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "notebooks" / "06_synthesis.md").read_text()
    labels = set(re.findall(r"^\((sec-06-[a-z0-9-]+)\)=$", text, re.M))
    errs = xs.errata()
    assert errs and all(e.where and e.error and e.correction for e in errs)
    assert {e.shown_in for e in errs} <= labels
    assert "save_errata(" in text  # the scorecard and errata page need the record


def test_decision_distances_survive_a_point_without_a_start(monkeypatch):
    """HopSkipJump raises when its noise start finds no adversarial for some input; the other
    points still get their distance and that one stays inf (not broken)."""
    import foolbox as fb

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
    x = torch.rand(3, 1, 2, 2)
    y = model(x).argmax(1)

    class FakeHSJ:
        def __init__(self, **kw):
            pass

        def run(self, fmodel, xs, criterion):
            if len(xs) > 1 or torch.equal(xs[0], x[1]):
                raise ValueError("init_attack failed for 1.0 of 1 inputs")
            w = model[1].weight.detach()
            d = (w[1 - y[0]] - w[y[0]]) if torch.equal(xs[0], x[0]) else (w[1 - y[2]] - w[y[2]])
            step = d.reshape(xs.shape[1:]) / d.norm()
            out = xs.clone()
            for t in torch.linspace(0, 4, 400):  # walk until the label flips
                out = xs + t * step
                if model(out).argmax(1) != criterion.labels:
                    break
            return out

    monkeypatch.setattr(fb.attacks, "HopSkipJumpAttack", FakeHSJ)
    d = xs.decision_distances(model, x, y, steps=1, seed=0)
    assert np.isinf(d[1]) and np.isfinite(d[0]) and np.isfinite(d[2]) and d[0] > 0


def test_smoothing_claim_is_not_testable_beyond_its_reach():
    from scipy.stats import norm

    cfg = {"smooth_n": 200, "smooth_alpha": 0.001, "smooth_sigma": 0.25}
    reach = xs.smoothing_reach(cfg)
    assert reach == pytest.approx(0.25 * norm.ppf(0.001 ** (1 / 200)), rel=1e-6)
    assert 0.45 < reach < 0.5  # so r = 0.5 can never be certified with 200 samples
    assert xs.smoothing_reach({**cfg, "smooth_n": 1000}) > 0.5
