"""Randomized smoothing (analysis.smoothing): the Clopper-Pearson bound, a classifier whose
smoothed probability is known in closed form, abstention, and the noise-augmentation objective."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats as sps
from torch import nn

from analysis import smoothing


class Halfplane(nn.Module):
    """Two logits ``[0, w·x + b]`` with ``‖w‖ = 1``: class 1 on one side of a hyperplane."""

    def __init__(self, w, b: float):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w, dtype=torch.float32), requires_grad=False)
        self.b = float(b)

    def forward(self, x):
        s = x.flatten(1) @ self.w + self.b
        return torch.stack([torch.zeros_like(s), s], dim=1)


def test_lower_bound_is_the_one_sided_clopper_pearson_limit():
    for k, n, a in ((7, 10, 0.05), (990, 1000, 0.001), (1, 50, 0.01)):
        two_sided = sps.binomtest(k, n).proportion_ci(confidence_level=1 - 2 * a, method="exact")
        assert smoothing.lower_confidence_bound(k, n, a) == pytest.approx(two_sided.low, rel=1e-9)
    assert smoothing.lower_confidence_bound(0, 10, 0.05) == 0.0


def test_radius_of_a_halfplane_approaches_the_distance_from_below():
    """For a half-plane, P(f(x + σε) = c) = Φ(d/σ) exactly, so Cohen's radius σΦ⁻¹(p_A) tends
    to the distance d to the boundary; with a lower confidence bound it stays below it."""
    torch.manual_seed(0)
    model = Halfplane([0.6, 0.8], 0.0)
    d = torch.tensor([0.3, 0.6, 1.0])
    x = d[:, None] * torch.tensor([0.6, 0.8])  # distance d on the class-1 side
    cert = smoothing.certify(model, x, sigma=0.5, n0=50, n=20000, alpha=0.001, seed=1)
    assert (cert.prediction == 1).all()
    assert (cert.radius <= d.numpy()).all()
    assert (cert.radius >= 0.9 * d.numpy()).all()
    p_true = sps.norm.cdf(d.numpy() / 0.5)
    assert (cert.p_lower <= p_true).all() and (cert.p_lower > p_true - 0.02).all()


def test_a_point_on_the_boundary_is_abstained_on():
    model = Halfplane([1.0, 0.0], 0.0)
    cert = smoothing.certify(model, torch.zeros(2, 2), sigma=0.25, n0=20, n=500, alpha=0.001)
    assert (cert.prediction == smoothing.ABSTAIN).all() and (cert.radius == 0).all()
    assert not cert.certified(np.array([0, 1]), 0.0).any()


def test_gaussian_augmentation_is_seeded_noisy_cross_entropy():
    model = Halfplane([1.0, 0.0], 0.1)
    x, y = torch.randn(64, 2), torch.randint(0, 2, (64,))
    obj = smoothing.GaussianAugmentation(0.3)
    torch.manual_seed(3)
    a, _ = obj(model, x, y)
    torch.manual_seed(3)
    b, _ = obj(model, x, y)
    clean = nn.functional.cross_entropy(model(x), y)
    assert a == b and not math.isclose(float(a), float(clean))
    with pytest.raises(ValueError):
        smoothing.GaussianAugmentation(0.0)
