"""Linear relaxations of the nonlinear layers and CROWN's backward step through them."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from analysis.verify.network import Affine, Nonlinear


def _tanh_offsets(k: Tensor, lo: Tensor, up: Tensor) -> tuple[Tensor, Tensor]:
    """Exact ``min`` and ``max`` of ``tanh(z) − k z`` over ``z ∈ [lo, up]`` (``0 ≤ k ≤ 1``)."""
    cands = [lo, up]
    zs = torch.atanh(torch.sqrt((1 - k).clamp(0, 1)).clamp_max(1 - 1e-16))
    for z in (zs, -zs):
        cands.append(torch.minimum(torch.maximum(z, lo), up))
    vals = torch.stack([torch.tanh(c) - k * c for c in cands])
    return vals.min(0).values, vals.max(0).values


def tanh_relaxation(lo: Tensor, up: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Sound lines ``aL z + bL ≤ tanh(z) ≤ aU z + bU`` on ``[lo, up]`` (elementwise).

    Returns:
        ``(aL, bL, aU, bU)``, each shaped like ``lo``.
    """
    width = up - lo
    tiny = width < 1e-9
    mid = (lo + up) / 2
    d_mid = 1 - torch.tanh(mid) ** 2
    chord = torch.where(tiny, d_mid, (torch.tanh(up) - torch.tanh(lo)) / width.clamp_min(1e-300))
    chord = chord.clamp(0, 1)
    concave, convex = lo >= 0, up <= 0
    aU = torch.where(concave, d_mid, chord)
    aL = torch.where(convex, d_mid, chord)
    bL, _ = _tanh_offsets(aL, lo, up)
    _, bU = _tanh_offsets(aU, lo, up)
    # a tiny outward margin for the rounding of tanh (relative 4 ulp of |tanh| ≤ 1)
    return aL, bL - 1e-15, aU, bU + 1e-15


def relu_relaxation(lo: Tensor, up: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """CROWN's ReLU lines on ``[lo, up]``: upper chord, lower slope 1 if ``up > −lo`` else 0."""
    active, dead = lo >= 0, up <= 0
    unstable = ~active & ~dead
    slope = torch.where(unstable, up / (up - lo).clamp_min(1e-300), active.to(lo.dtype))
    aU = slope
    bU = torch.where(unstable, -slope * lo, torch.zeros_like(lo))
    aL = torch.where(unstable, (up > -lo).to(lo.dtype), active.to(lo.dtype))
    return aL, torch.zeros_like(lo), aU, bU


def _back_nonlinear(m: Nonlinear, lam: Tensor, lo: Tensor, up: Tensor) -> tuple[Tensor, Tensor]:
    """Push ``Λ`` (rows to be *lower*-bounded) back through ``m``: ``Λ σ(z) ≥ Λ' z + c``."""
    pos, neg = lam.clamp_min(0), lam.clamp_max(0)
    if m.kind in ("relu", "tanh"):
        aL, bL, aU, bU = (relu_relaxation if m.kind == "relu" else tanh_relaxation)(lo, up)
        return pos * aL + neg * aU, pos @ bL + neg @ bU
    jl, sU, cU = _maxpool_lines(m, lo, up)
    out = torch.zeros(lam.shape[0], lo.shape[0], dtype=lam.dtype)
    out.index_add_(1, jl, pos)
    out.index_add_(1, jl, neg * sU.to(lam.dtype))
    return out, neg @ cU


def _maxpool_lines(m: Nonlinear, lo: Tensor, up: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """DeepPoly's lines of max pooling on ``[lo, up]``: per window the input ``j`` with the
    largest lower bound (``max ≥ z_j``), and the upper line ``max ≤ sU z_j + cU`` (``sU = 1``,
    ``cU = 0`` where ``z_j`` dominates the window's other inputs, else ``sU = 0``,
    ``cU = max u``).

    Returns:
        ``(j, sU, cU)``, each ``(n_out,)`` (``j`` indices into the layer's input, ``sU`` bool).
    """
    win = m.windows
    jl = win.gather(1, lo[win].argmax(1, keepdim=True)).squeeze(1)  # (n_out,)
    l_j = lo[jl]
    up_w = up[win]
    others = torch.where(win == jl[:, None], torch.full_like(up_w, -math.inf), up_w).amax(1)
    dominated = l_j >= others
    return jl, dominated, torch.where(dominated, torch.zeros_like(l_j), up_w.amax(1))


def fusable_pool(pool: Nonlinear, aff: Affine) -> bool:
    """Whether :func:`analysis.verify.patches.back_pool_conv` applies: ``aff`` is a lone
    Conv2d on ``(c, h, w)`` inputs and ``pool`` (its successor) max pooling."""
    return pool.kind == "maxpool" and aff.lone_conv() is not None \
        and len(aff.in_shape) == 3 and len(aff.out_shape) == 3
