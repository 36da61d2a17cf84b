"""Property tests that kill mutants (``make mutants``) the module tests let through.

Each test checks a property of the mathematics (a closed form, a brute-force search, an exact
optimum), not the literal code of one mutation. Without them, the mutations named in the
docstrings were caught only by a chapter's nbval run.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import optimize

from analysis import attacks as A
from analysis.bounds import fisher as fb
from analysis.bounds import peck


def _ray_search(model: torch.nn.Module, x: torch.Tensor, n_rays: int = 180, r_max: float = 3.0,
                n_r: int = 600) -> torch.Tensor:
    """Distance to the nearest label change found on a polar grid around each 2-D point.

    Every finite value is the norm of a point whose label differs, so it is an upper bound on
    the minimal adversarial distance ``d*`` (``inf`` where no ray changes label within r_max).
    """
    ang = torch.linspace(0, 2 * math.pi, n_rays + 1, dtype=torch.float64)[:-1]
    dirs = torch.stack([ang.cos(), ang.sin()], 1)
    rs = torch.linspace(0, r_max, n_r + 1, dtype=torch.float64)[1:]
    out = torch.full((len(x),), math.inf, dtype=torch.float64)
    with torch.no_grad():
        c = model(x).argmax(1)
        for i in range(len(x)):
            pts = x[i] + rs[None, :, None] * dirs[:, None, :]
            changed = model(pts.reshape(-1, 2)).argmax(1).reshape(n_rays, n_r) != c[i]
            hit = changed.any(1)
            if hit.any():
                out[i] = rs[changed.double().argmax(1)[hit]].min()
    return out


@pytest.mark.parametrize("act", [torch.nn.Tanh, torch.nn.Sigmoid])
def test_peck_sound_chain_never_exceeds_a_found_adversarial_distance(act):
    """Sound Peck bound ≤ d* ≤ ray-search distance, on a 2-D MLP with ‖V‖₂ ≈ 7 (> 1, so every
    factor of the Lipschitz product matters). Kills ``peck-sound-drops-norm``."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), act(), torch.nn.Linear(16, 3)).double()
    with torch.no_grad():
        net[0].weight.mul_(4.0)
    net.eval()
    assert float(torch.linalg.matrix_norm(net[0].weight.detach(), ord=2)) > 2
    x = 2 * torch.rand(40, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) - 1
    kappa = peck.chain_bounds(net, x, "sound").kappa
    found = _ray_search(net, x)
    assert bool(torch.isfinite(found).all())
    assert bool((kappa > 0).all())
    assert bool((kappa <= found).all()), float((kappa / found).max())


def _box_optimum(u: np.ndarray, x: np.ndarray, eps: float) -> float:
    """max of −u·δ over ‖δ‖₂ ≤ eps and 0 ≤ x + δ ≤ 1 (KKT: δ = clip(−λu) with ‖δ‖ = eps)."""
    lo, hi = -x, 1 - x

    def gap(lam: float) -> float:
        return float(np.linalg.norm(np.clip(-lam * u, lo, hi))) - eps

    lam = optimize.brentq(gap, 0.0, 1e6)
    return float(-u @ np.clip(-lam * u, lo, hi))


def test_pgd_l2_in_the_box_attains_the_linear_optimum():
    """On an affine 2-class model far from its boundary, L2 PGD inside the pixel box lowers the
    margin by the exact optimum over ball ∩ box (water-filling), though the unconstrained step
    leaves the box. Kills ``pgd-no-box-clip`` (clipping only the output loses up to 25 %)."""
    D, n, eps = 10, 60, 0.3
    g = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(D, 2).double()
    with torch.no_grad():
        lin.weight.copy_(torch.randn(2, D, generator=g, dtype=torch.float64))
        lin.bias.zero_()
    lin.eval()
    mask = torch.bernoulli(torch.full((20 * n, D), 0.5), generator=g).double()
    x = 0.05 + 0.9 * torch.rand(20 * n, D, generator=g, dtype=torch.float64) * mask
    with torch.no_grad():
        z = lin(x)
    y = z.argmax(1)
    u = lin.weight.detach()[y] - lin.weight.detach()[1 - y]  # margin = u·x + const
    margin = (z.gather(1, y[:, None]) - z.gather(1, (1 - y)[:, None])).squeeze(1)
    far = (margin > 1.01 * eps * u.norm(dim=1)).nonzero().squeeze(1)[:n]  # no success possible
    assert len(far) == n
    x, y, u, margin = x[far], y[far], u[far], margin[far]
    best = np.array([_box_optimum(u[i].numpy(), x[i].numpy(), eps) for i in range(n)])
    unboxed = torch.clamp(x - eps * u / u.norm(dim=1, keepdim=True), 0, 1)
    loss_of_clipping = ((u * (x - unboxed)).sum(1).numpy() / best).min()
    assert loss_of_clipping < 0.95  # the box is active: the test can tell the two apart
    r = A.pgd(lin, x, y, eps=eps, norm="l2", steps=100, random_start=False)
    assert not bool(r.success.any())
    assert float(r.norms_l2.max()) <= eps * (1 + 1e-6)  # eps reaches the attack as float32
    with torch.no_grad():
        z2 = lin(r.x_adv)
    m2 = (z2.gather(1, y[:, None]) - z2.gather(1, (1 - y)[:, None])).squeeze(1)
    ratio = (margin - m2).numpy() / best
    assert ratio.max() <= 1 + 1e-6  # nothing beats the optimum (up to eps in float32)
    assert ratio.min() >= 0.99, ratio.min()


def test_fisher_global_certificate_is_exact_to_first_order_on_a_linear_model():
    """Logits (c x/2, −c x/2) of x ∈ ℝ: the boundary is x = 0, d* = |x|, L_s = c/√2 and
    r_glob = √2·d_B/L_s = 4|asin(√σ(c|x|)) − π/4|/c: sound, and → |x| as x → 0 (the path lemma
    is tight at p = ½). Kills ``fisher-rglob-sqrt2`` (a radius √2 too small)."""
    c = 1.5
    net = torch.nn.Sequential(torch.nn.Linear(1, 2, bias=False)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[c / 2], [-c / 2]], dtype=torch.float64))
    x = torch.tensor([[1e-3], [-1e-2], [0.1], [-0.5], [1.0], [3.0]], dtype=torch.float64)
    r = fb.certified_radii(net, x)["r_glob"]
    d = x.abs().squeeze(1)
    closed = 4 * (torch.asin(torch.sigmoid(c * d).sqrt()) - math.pi / 4) / c
    torch.testing.assert_close(r, closed, rtol=1e-9, atol=0.0)
    assert bool((r <= d * (1 + 1e-12)).all())
    assert bool((r[:2] / d[:2] > 0.999).all())
