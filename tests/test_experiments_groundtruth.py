"""Tests of analysis.experiments.groundtruth at tiny sizes: the invariants the chapters assert
(sound bounds ≤ exact ≤ attacks), the summary tables' arithmetic, and the rank agreement's
intervals and model-comparison claim on synthetic results of known order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from analysis.experiments import groundtruth as G


def test_study_network_invariants_iris():
    r = G.study_network("iris", n_points=2, time_limit=10.0, steps=100)
    assert r["solved"].all()
    assert np.all(r["exact_lower"] <= r["exact_upper"])
    for b in ("ibp", "crown", "lipschitz", "peck_sound"):
        assert np.all(r[b] <= r["exact_lower"] * (1 + 1e-6) + 1e-12), b
    for a in (*G.ATTACKS, "min_norm"):
        assert np.all(r[a] >= r["exact_lower"] * (1 - 1e-6)), a
    assert np.all(r["ibp"] <= r["crown"] * (1 + 1e-3) + 1e-12)


def _fake(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    exact = rng.uniform(0.5, 2, n)
    out = {"exact_upper": exact, "exact_lower": exact * 0.9999999, "solved": np.ones(n, bool),
           "exact_seconds": np.ones(n), "relus": 8}
    out["deepfool"] = exact * np.array([1.0, 1.02, 1.2, np.inf])[:n]
    out["cw"] = exact * np.array([1.005, 1.005, 1.005, 1.005])[:n]
    out["pgd_l2"] = exact
    out["min_norm"] = exact
    for b in G.BOUNDS:
        out[b] = exact * 0.5
    return out


def test_attack_ratio_table_counts():
    rows = {r["attack"]: r for r in G.attack_ratio_table({"a": _fake(4, 0)})}
    df = rows["deepfool"]
    assert df["points"] == 4 and df["failed"] == 0.25
    assert df["within 1 %"] == 0.25 and df["within 5 %"] == 0.5
    assert abs(df["max ratio"] - 1.2) < 1e-12
    assert rows["cw"]["within 1 %"] == 1.0 and rows["min_norm"]["median ratio"] == 1.0


def test_bound_ratios_and_rank_correlations():
    res = {"a": _fake(4, 1), "b": _fake(4, 2)}
    rows = G.bound_ratio_table(res)
    assert all(abs(r["crown"] - 0.5) < 1e-12 for r in rows)
    corr = {r["bound"]: r for r in G.rank_correlations(res)}
    assert abs(corr["crown"]["spearman"] - 1.0) < 1e-12  # a constant multiple ranks perfectly
    assert G.sound_violations(res) == {"ibp": 0, "crown": 0, "lipschitz": 0, "peck_sound": 0}


def test_peck_vs_crown_small_cnn():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.MaxPool2d(2, 2), nn.Flatten(), nn.Linear(27, 8),
                          nn.ReLU(), nn.Linear(8, 3))
    x = torch.rand(2, 1, 8, 8)
    out = G.peck_vs_crown(model, x, steps=10, name="tiny")
    assert np.all(out["peck_sound"] <= out["deepfool"] + 1e-9)
    assert np.all(out["crown"] <= out["deepfool"] + 1e-9)
    np.testing.assert_allclose(out["ratio"], out["peck_sound"] / out["crown"])


# ------------------------------------------------------------------ rank agreement


def _ranked(n_nets: int, n_points: int, relation: str, seed: int = 0) -> dict:
    """Synthetic study results: net k's exact distances around (k + 1), every bound a function
    of them: ``same`` (bound = exact / 3: same order), ``reversed`` (bound = 1 / exact: the
    order turned round, points and nets) or ``random`` (bound unrelated to exact)."""
    rng = np.random.default_rng(seed)
    out = {}
    for k in range(n_nets):
        exact = (k + 1) * rng.uniform(0.8, 1.2, n_points)
        bound = {"same": exact / 3, "reversed": 1 / exact,
                 "random": rng.uniform(0.1, 1.0, n_points)}[relation]
        out[f"net{k}"] = {"exact_upper": exact, "solved": np.ones(n_points, bool),
                          **{b: bound for b in G.BOUNDS}}
    return out


def test_spearman_batched_matches_scipy():
    from scipy import stats as sps

    rng = np.random.default_rng(3)
    x = rng.integers(0, 4, size=(50, 7)).astype(float)  # many ties
    y = rng.integers(0, 4, size=(50, 7)).astype(float)
    y[0] = 2.0  # a constant row: ρ undefined, counted as 0
    got = G._spearman(x, y)
    assert got[0] == 0.0
    for i in range(1, 50):
        if np.ptp(x[i]) > 0 and np.ptp(y[i]) > 0:
            assert abs(got[i] - sps.spearmanr(x[i], y[i]).statistic) < 1e-12


def test_perfect_agreement_is_reproduced():
    ag = G.rank_agreement(_ranked(5, 12, "same"))
    for b in G.BOUNDS:
        assert abs(ag.models[b].value - 1.0) < 1e-12 and ag.models[b].low > 1 - 1e-12
        assert all(abs(ag.points[b][nm].value - 1.0) < 1e-12 for nm in ag.nets)
        assert abs(ag.points[b]["pooled"].value - 1.0) < 1e-12
    assert ag.models["crown"].n_points == 5
    assert abs(ag.models_p["crown"] - 1 / 120) < 1e-12  # exact: 1 of 5! orders
    claim = G.claim_model_comparison(ag, "sec-03-ground-truth")
    assert claim.status == "reproduced" and claim.section == "sec-03-ground-truth"
    assert "n = 5 nets" in claim.note


def test_reversed_order_is_not_reproduced():
    ag = G.rank_agreement(_ranked(5, 12, "reversed"))
    assert abs(ag.models["peck_sound"].value + 1.0) < 1e-12
    assert abs(ag.points["peck_sound"]["net0"].value + 1.0) < 1e-12
    assert G.claim_model_comparison(ag, "s").status == "not reproduced"


def test_random_bound_straddles_zero():
    ag = G.rank_agreement(_ranked(5, 12, "random", seed=4))
    pooled, models = ag.points["peck_sound"]["pooled"], ag.models["peck_sound"]
    assert pooled.low < 0 < pooled.high and models.low < 0 < models.high
    # 95 % intervals: nearly every net's contains 0 (a too-narrow interval would miss most)
    assert sum(ag.points["peck_sound"][nm].low < 0 < ag.points["peck_sound"][nm].high
               for nm in ag.nets) >= 3
    assert G.claim_model_comparison(ag, "s").status == "inconclusive"


def test_two_nets_cannot_decide():
    """Two nets agree in order by chance half the time: perfect agreement stays inconclusive."""
    ag = G.rank_agreement(_ranked(2, 12, "same"))
    assert abs(ag.models["crown"].value - 1.0) < 1e-12
    assert ag.models["crown"].low <= 0.0 and ag.models_p["crown"] == 0.5
    assert G.claim_model_comparison(ag, "s", bound="crown").status == "inconclusive"


def test_four_nets_in_perfect_order_cannot_decide():
    """4 nets: a perfect order survives every resample (interval [1, 1]), but the exact
    permutation p is 1/24 > 0.025, so the claim stays inconclusive (5 nets decide, above)."""
    ag = G.rank_agreement(_ranked(4, 10, "same"))
    assert ag.models["crown"].low > 0.0 and abs(ag.models_p["crown"] - 1 / 24) < 1e-12
    claim = G.claim_model_comparison(ag, "s", bound="crown")
    assert claim.status == "inconclusive" and "p = 0.0417" in claim.rule.reason


def test_unsolved_points_are_left_out_and_counted():
    res = _ranked(3, 6, "same")
    res["net1"]["solved"][:2] = False
    res["net1"]["exact_upper"][:2] = 1e3  # an open bracket's upper end, not a distance
    res["net2"]["solved"][:] = False
    ag = G.rank_agreement(res)
    assert ag.nets == ("net0", "net1") and ag.solved == {"net0": 6, "net1": 4}
    assert ag.unsolved == {"net0": 0, "net1": 2, "net2": 6}
    assert ag.points["ibp"]["pooled"].n_points == 10
    assert abs(ag.medians["net1"]["exact"] - np.median(res["net1"]["exact_upper"][2:])) < 1e-12
    rows = G.rank_agreement_table(ag)
    assert [r["bound"] for r in rows][:3] == ["Peck published", "Peck corrected", "Peck sound"]
    assert rows[0]["nets"] == 2 and "ρ net2" not in rows[0]
    res["net0"]["solved"][:] = False
    res["net1"]["solved"][:] = False
    with pytest.raises(ValueError, match="no solved point"):
        G.rank_agreement(res)


def test_constant_bound_gives_no_ordering():
    res = _ranked(4, 5, "same")
    for r in res.values():
        r["lipschitz"] = np.full(5, 0.3)
    ag = G.rank_agreement(res)
    e = ag.points["lipschitz"]["net0"]
    assert e.degenerate and (e.low, e.high) == (-1.0, 1.0)
    assert G.claim_model_comparison(ag, "s", bound="lipschitz").status == "inconclusive"
