"""The planted-adversarial attack unit test: the guaranteed adversarial example really is one,
within the radius, in the box, and the anchors stay correctly classified."""

from __future__ import annotations

import pytest
import torch

from analysis import attacks as A
from analysis.attacks.unit_tests import plant_adversarials

D = 16



def _problem(seed: int = 0, n: int = 30):
    torch.manual_seed(seed)
    f = torch.nn.Sequential(torch.nn.Linear(D, 32), torch.nn.ReLU(),
                            torch.nn.Linear(32, 5)).eval()
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.rand(n, D, generator=g)
    with torch.no_grad():
        y = f(x).argmax(1)
    y[:3] = (y[:3] + 1) % 5  # misclassified: dropped by the construction
    return f, x, y


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 0.4)])
def test_planted_adversarial_is_adversarial_within_the_radius(norm, eps):
    f, x, y = _problem()
    setup = plant_adversarials(f, x, y, eps, norm)
    g = setup.model
    assert len(setup.y) == len(y) - 3
    with torch.no_grad():
        assert torch.equal(g(setup.x).argmax(1), setup.y)  # anchors stay correct
        assert torch.allclose(g(setup.x), f(setup.x))  # g = f at the anchors
        reached = g(g.x_star).argmax(1)
    assert torch.equal(reached, g.targets) and bool((reached != setup.y).all())
    delta = (g.x_star - setup.x).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert torch.allclose(size, torch.full_like(size, setup.rho), rtol=1e-5)
    assert setup.rho <= eps
    assert float(g.x_star.min()) >= 0 and float(g.x_star.max()) <= 1
    # without the planted term f itself is not fooled at x* (the test is not trivial here)
    with torch.no_grad():
        assert int((f(g.x_star).argmax(1) != setup.y).sum()) < len(setup.y)


def test_pgd_finds_the_planted_adversarial_and_a_clean_model_resists():
    f, x, y = _problem(seed=2)
    setup = plant_adversarials(f, x, y, 0.1, "linf")
    r = A.pgd(setup.model, setup.x, setup.y, 0.1, "linf", steps=20)
    A.check_result(setup.model, setup.x, setup.y, r, eps=0.1, norm="linf")
    assert float(r.success.double().mean()) >= 0.99
    base = A.pgd(f, setup.x, setup.y, 0.1, "linf", steps=20)
    assert float(base.success.double().mean()) < float(r.success.double().mean())


def test_overlapping_balls_are_dropped_and_box_violations_refused():
    f, x, y = _problem()
    setup = plant_adversarials(f, x, y, 0.6, "l2")
    assert 1 <= len(setup.y) < len(y) - 3  # some balls overlapped
    dist = torch.cdist(setup.x, setup.x).fill_diagonal_(float("inf"))
    assert float(dist.min()) > 2 * 0.6
    with torch.no_grad():
        assert torch.equal(setup.model(setup.model.x_star).argmax(1), setup.model.targets)
    with pytest.raises(ValueError, match="box"):
        plant_adversarials(f, x[:1], y[:1] * 0 + int(f(x[:1]).argmax()), 1.0, "linf",
                           rho_fraction=1.0)
