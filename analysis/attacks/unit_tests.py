"""Attack unit tests with a planted adversarial example (after Zimmermann et al. 2022,
"Increasing confidence in adversarial robustness evaluations").

A trained network ``f`` is modified into ``g`` so that, around each test point ``x_i``, an
adversarial example provably exists at a known distance ``rho`` (``rho <= eps``, in the attack's
norm); an attack passes the test on ``x_i`` when it finds an adversarial example of ``g``
within ``eps``. The construction (:class:`PlantedAdversarial`):

    g(x) = f(x) + a_i · <x − x_i, d_i> / <d_i, d_i> · e_{t_i},   i = the anchor nearest to x,

with ``t_i`` the runner-up class of ``f`` at ``x_i``, ``d_i`` a direction of unit norm (L∞: the
sign pattern ``+1`` where ``x_i < 1/2``, else ``−1``; L2: that pattern divided by ``√D``) and the
slope ``a_i = max(0, max_{k≠t_i} f_k(x*_i) − f_{t_i}(x*_i) + margin) / rho`` at the planted
point ``x*_i = x_i + rho·d_i``.

Proof that ``x*_i`` is adversarial for ``g`` within ``eps``: (1) ``||x*_i − x_i|| = rho·||d_i||
= rho <= eps``; (2) ``x*_i`` is in the box ``[0, 1]``: each coordinate moves by at most
``rho·|d_ij| <= 1/2`` toward the far side of ``1/2`` (``rho·|d_ij| = rho <= 1/2`` for L∞,
``rho/√D <= 1/2`` for L2, both checked); (3) the anchors' ``eps``-balls are disjoint (a point
within ``2·eps`` of a kept one is dropped), so the anchor nearest to ``x*_i`` is
``x_i``; (4) then ``g_{t_i}(x*_i) = f_{t_i}(x*_i) + a_i·rho >= max_{k≠t_i} f_k(x*_i) + margin``
and ``g_k(x*_i) = f_k(x*_i)`` for ``k ≠ t_i``, so ``argmax g(x*_i) = t_i ≠ y_i``. Also
``g(x_i) = f(x_i)`` (the term vanishes at the anchor), so ``x_i`` stays correctly classified and
the attack has to move. Near ``x_i`` the added term is affine with gradient ``a_i d_i / <d_i, d_i>``
on the logit of ``t_i``: a gradient attack sees it from its first step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from analysis.attacks.core import _attack_mode, _check_norm, _flat, predict


def _distances(a: Tensor, b: Tensor, norm: str) -> Tensor:
    """Pairwise distances ``(len(a), len(b))`` of flattened rows in ``norm``."""
    p = math.inf if norm == "linf" else 2.0
    return torch.cdist(_flat(a).double(), _flat(b).double(), p=p)


class PlantedAdversarial(torch.nn.Module):
    """``g(x) = f(x) + a_i <x − x_i, d_i>/<d_i, d_i> e_{t_i}`` with ``i`` the nearest anchor
    (see the module docstring for the construction and the existence proof).

    Attributes:
        base: the original network ``f``.
        anchors: the test points ``x_i`` ``(n, ...)``; directions ``d_i`` ``(n, ...)``; targets
        ``t_i`` ``(n,)``; slopes ``a_i`` ``(n,)``; ``x_star`` the planted adversarial examples.
    """

    def __init__(self, base: torch.nn.Module, anchors: Tensor, directions: Tensor,
                 targets: Tensor, slopes: Tensor, norm: str, x_star: Tensor) -> None:
        super().__init__()
        self.base = base
        self.norm = norm
        self.register_buffer("anchors", anchors)
        self.register_buffer("directions", directions)
        self.register_buffer("targets", targets)
        self.register_buffer("slopes", slopes)
        self.register_buffer("x_star", x_star)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(B, K)`` of ``g``."""
        logits = self.base(x)
        with torch.no_grad():
            i = _distances(x, self.anchors, self.norm).argmin(dim=1)
        d = _flat(self.directions[i])
        s = ((_flat(x) - _flat(self.anchors[i])) * d).sum(dim=1) / d.pow(2).sum(dim=1)
        bump = torch.zeros_like(logits).scatter(1, self.targets[i][:, None],
                                                (self.slopes[i] * s)[:, None])
        return logits + bump


@dataclass
class UnitTestSetup:
    """A planted-adversarial network and its test points.

    Attributes:
        model: the modified network ``g``. x, y: the test points (correctly classified by
        ``f``) and their labels. norm, eps, rho: the attack norm, the test radius and the
        distance of the planted adversarial example (``rho <= eps``).
    """

    model: PlantedAdversarial
    x: Tensor
    y: Tensor
    norm: str
    eps: float
    rho: float


def plant_adversarials(model: torch.nn.Module, x: Tensor, y: Tensor, eps: float,
                       norm: str = "linf", *, rho_fraction: float = 0.5,
                       margin: float = 1.0) -> UnitTestSetup:
    """Build the attack unit test of the module docstring around the correctly classified
    points of ``x``.

    Args:
        model: the trained network ``f`` (logits). x: test points in ``[0, 1]`` ``(B, ...)``.
        y: labels ``(B,)``.
        eps: the test radius (pixels, in ``norm``). norm: ``"linf"`` or ``"l2"``.
        rho_fraction: the planted adversarial lies at ``rho = rho_fraction·eps``.
        margin: logit margin by which the target beats every other class at ``x*``.

    Returns:
        :class:`UnitTestSetup`: the points that ``f`` classifies correctly and whose
        ``eps``-ball is disjoint from those of the points kept before them (in order).

    Raises:
        ValueError: when ``x*`` would leave the box.
    """
    norm = _check_norm(norm)
    if not 0 < rho_fraction <= 1:
        raise ValueError(f"rho_fraction must be in (0, 1], got {rho_fraction}")
    param = next(model.parameters())
    x = x.detach().to(device=param.device, dtype=param.dtype)
    y = y.to(param.device)
    with _attack_mode(model):
        keep = predict(model, x) == y
        x, y = x[keep], y[keep]
        dist = _distances(x, x, norm)
        apart: list[int] = []  # greedily keep the points whose eps-ball meets no kept one
        for i in range(len(x)):
            if all(float(dist[i, j]) > 2 * eps for j in apart):
                apart.append(i)
        x, y = x[apart], y[apart]
        rho = rho_fraction * eps
        dim = x[0].numel()
        sign = torch.where(x < 0.5, 1.0, -1.0).to(x.dtype)
        d = sign if norm == "linf" else sign / math.sqrt(dim)
        if float(rho * d.abs().max()) > 0.5:
            raise ValueError(f"rho = {rho:.3g} moves a pixel by more than 1/2: x* leaves the box")
        x_star = x + rho * d
        with torch.no_grad():
            z0 = model(x)
            runner = z0.scatter(1, y[:, None], -math.inf).argmax(dim=1)
            zs = model(x_star)
            others = zs.scatter(1, runner[:, None], -math.inf).amax(dim=1)
            gap = others - zs.gather(1, runner[:, None]).squeeze(1)
            slopes = (gap + margin).clamp_min(0.0) / rho
    planted = PlantedAdversarial(model, x, d, runner, slopes, norm, x_star).eval()
    return UnitTestSetup(model=planted, x=x, y=y, norm=norm, eps=float(eps), rho=float(rho))
