"""Experiment helpers of chapter 03 (analysis.experiments.peck), on tiny float64 models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from analysis.bounds import peck
from analysis.experiments import peck as E

DT = torch.float64


def test_stats_violations_confusion():
    s = E.stats(np.array([1.0, 2.0, np.inf, 3.0]))
    assert s["mean"] == 2.0 and s["n"] == 3 and s["max"] == 3.0
    assert math.isnan(E.stats(np.array([np.inf]))["mean"])
    assert E.violations(np.array([1.0, 2.0, 5.0]), np.array([1.5, 1.0, np.inf])) == 1
    with pytest.raises(ValueError, match="NaN"):
        E.violations(np.array([np.nan, 1.0]), np.array([2.0, 2.0]))
    with pytest.raises(ValueError, match="negative"):
        E.violations(np.array([-1.0]), np.array([2.0]))
    m = E.confusion(np.array([0, 1, 1]), np.array([1, -1, 0]), 2)
    assert m.tolist() == [[0, 1], [1, 0]]


def test_random_linear_bound_below_fgs():
    r = E.random_linear(3, 4, 1.0, 1.0, n_clf=5, n_samples=8, seed=1)
    assert r["bound"].shape == (40,)
    fin = np.isfinite(r["fgs"])
    assert fin.mean() > 0.5
    assert np.all(r["excess"][fin] >= -1e-12 * r["bound"][fin])
    assert np.all(r["ratio"][fin] >= 1 - 1e-12)


def test_random_mlps_sound_and_corrected_hold():
    r = E.random_mlps(n_mlp=2, n_samples=4, seed=3, fgs_steps=20, exact_mlps=1)
    assert np.isfinite(r["exact"][:4]).all() and np.isinf(r["exact"][4:]).all()
    for v in ("corrected", "sound"):
        assert E.violations(r[v], r["attack"]) == 0
        assert np.all(r[v] > 0)


def test_mlp_module_matches_forward():
    g = torch.Generator().manual_seed(0)
    layers, out = E.random_mlp(3, (4, 5), 3, 1.0, g)
    net = E.mlp_module(layers, out)
    x = torch.randn(6, 3, dtype=DT)
    h, _ = peck.mlp_forward(layers, "tanh", x, jacobian=False)
    assert torch.allclose(net(x), h @ out[0].T + out[1])
    assert peck.leaves(net)[-1] is net[-1]


def test_attack_suite_and_examples_on_tiny_cnn():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.MaxPool2d(2, 2), nn.Flatten(),
                        nn.Linear(3 * 3 * 3, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    x = torch.rand(10, 1, 8, 8)
    with torch.no_grad():
        pred = net(x).argmax(1)
    a = E.attack_suite(net, x, pred, fgs_max=2.0, fgs_steps=15, strong=("deepfool",), n_strong=5)
    assert np.all(a.best <= a.fgs) and np.all(a.best[:5] <= a.strong[:5])
    assert np.isinf(a.strong[5:]).all()
    bounds, secs, layers = E.timed_chain(net, x)
    assert set(bounds) == set(peck.VARIANTS) and all(t >= 0 for t in secs.values())
    assert E.violations(bounds["sound"], a.best) == 0
    clean, adv, idx = E.fgs_examples(net, x, pred.numpy(), a, k=3)
    with torch.no_grad():
        assert bool((net(adv).argmax(1) != pred[idx]).all())
    assert clean.shape == adv.shape


def test_error_rate_range_and_zero_budget():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
    x = torch.randn(20, 4)
    er = E.error_rate(net, x, 0.5)
    assert 0 <= er["fgs"] <= er["either"] <= 1 and er["fgv"] <= er["either"]
    assert E.error_rate(net, x, 1e-9)["either"] == 0.0


def test_ray_search_rejects_bad_shape():
    with pytest.raises(ValueError):
        E.ray_search_2d(nn.Identity(), torch.zeros(3, 3))


def test_useful_regularisation_ignores_collapsed_nets():
    y = {"a": torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 2]), "b": torch.tensor([0, 1] * 5)}
    rows = {"a": [{"ℓ": 0.0, "accuracy": 0.9, "error either": 0.4},
                  {"ℓ": 0.1, "accuracy": 0.8, "error either": 0.3},   # useful
                  {"ℓ": 1.0, "accuracy": 0.5, "error either": 0.0}],  # majority rate: collapsed
            "b": [{"ℓ": 0.0, "accuracy": 0.9, "error either": 0.2},
                  {"ℓ": 0.1, "accuracy": 0.9, "error either": 0.2},   # no gain
                  {"ℓ": 1.0, "accuracy": 0.52, "error either": 0.0}]}  # within 5 pts of 0.5
    useful, collapsed = E.useful_regularisation(rows, y)
    assert useful["a"]["ℓ"] == 0.1 and useful["b"] is None
    assert collapsed == {1.0: ["a", "b"]}
    with pytest.raises(ValueError, match="ℓ = 0"):
        E.useful_regularisation({"a": rows["a"][1:]}, y)
