"""Tests of analysis.experiments.groundtruth at tiny sizes: the invariants the chapters assert
(sound bounds ≤ exact ≤ attacks), and the summary tables' arithmetic."""

from __future__ import annotations

import numpy as np
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
