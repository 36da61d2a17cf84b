"""Linear relaxations of the nonlinear layers and CROWN's backward step through them."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

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
    """Whether :func:`back_pool_conv` applies: ``aff`` is a lone Conv2d on ``(c, h, w)``
    inputs and ``pool`` (its successor) max pooling."""
    return pool.kind == "maxpool" and aff.lone_conv() is not None \
        and len(aff.in_shape) == 3 and len(aff.out_shape) == 3


def back_pool_conv(pool: Nonlinear, aff: Affine, lam: Tensor, lo: Tensor, up: Tensor,
                   block: int = 1024) -> tuple[Tensor, Tensor]:
    """Push ``Λ`` back through max pooling and the lone Conv2d before it in one step:
    ``Λ pool(A h + b) ≥ Λ' h + c``, the same lines as :func:`_back_nonlinear` then
    :meth:`Affine.back` (see :func:`fusable_pool`), without forming ``Λ`` on the convolution's
    output, where it is zero off the selected input of each window.

    Each window contributes its coefficient times the kernel of its channel, shifted to the
    selected position inside the window's receptive field (a ``((k − 1) s + q)``-square patch
    of the padded input); rows are grouped by the box of windows where they are nonzero, and
    each group's patches are one batched matrix product over those windows, summed into the
    input by ``fold``.

    Args:
        pool, aff: the layers. lam: ``(R, n_pool)``. lo, up: bounds of the pool's input
            (the convolution's output). block: rows per batched product (memory).

    Returns:
        ``(Λ' (R, n_in), c (R,))``.
    """
    conv = aff.lone_conv()
    assert conv is not None
    jl, sU, cU = _maxpool_lines(pool, lo, up)
    pm = pool.module
    kp = _pair(pm.kernel_size)
    sp = _pair(pm.stride or pm.kernel_size)
    ci, h, w = aff.in_shape
    co, hc, wc = aff.out_shape
    kc, sc, pc = _pair(conv.weight.shape[2:]), _pair(conv.stride), _pair(conv.padding)
    field = tuple((a - 1) * s + q for a, s, q in zip(kp, sc, kc))  # receptive field of a window
    step = tuple(a * b for a, b in zip(sp, sc))
    # the kernel of each output channel, embedded at every position of the pooling window
    wt = conv.weight.to(lam.dtype)
    emb = torch.zeros(co, kp[0], kp[1], ci, *field, dtype=lam.dtype)
    for di in range(kp[0]):
        for dj in range(kp[1]):
            emb[:, di, dj, :, di * sc[0]:di * sc[0] + kc[0], dj * sc[1]:dj * sc[1] + kc[1]] = wt
    emb = emb.reshape(co, kp[0] * kp[1], -1)
    hp, wp = (hc - kp[0]) // sp[0] + 1, (wc - kp[1]) // sp[1] + 1
    n_win = hp * wp
    pix = jl % (hc * wc)
    l_idx = torch.arange(jl.shape[0]) % n_win
    di = pix // wc - (l_idx // wp) * sp[0]
    dj = pix % wc - (l_idx % wp) * sp[1]
    chan = torch.arange(co).repeat_interleave(n_win)
    kern = emb[chan, di * kp[1] + dj].reshape(co, hp, wp, -1).permute(1, 2, 0, 3)
    s3, c3, b3 = (t.reshape(co, hp, wp) for t in (sU.to(lam.dtype), cU, aff.bias[jl]))
    # rows are grouped by the box of windows where they are nonzero (rows of a convolution
    # above touch a few windows only); each group: one batched product over its windows
    lam3 = lam.reshape(-1, co, hp, wp)
    nz = (lam3 != 0).any(1)
    r_any, c_any = nz.any(2), nz.any(1)
    first = lambda m: m.to(torch.int8).argmax(1)  # noqa: E731
    last = lambda m: m.shape[1] - 1 - m.flip(1).to(torch.int8).argmax(1)  # noqa: E731
    boxes = torch.stack([first(r_any), last(r_any), first(c_any), last(c_any)], 1)
    keys, group = torch.unique(boxes, dim=0, return_inverse=True)  # zero rows: box (0, 0, 0, 0)
    canvas = tuple(max((n - 1) * st + f, m + 2 * p)
                   for n, st, f, m, p in zip((hp, wp), step, field, (h, w), pc))
    out = torch.zeros(lam.shape[0], ci, *canvas, dtype=lam.dtype)
    const = torch.zeros(lam.shape[0], dtype=lam.dtype)
    for g, (r0, r1, c0, c1) in enumerate(keys.tolist()):
        box = (slice(r0, r1 + 1), slice(c0, c1 + 1))
        nh, nw = r1 - r0 + 1, c1 - c0 + 1
        kg = kern[box].reshape(nh * nw, co, -1)
        sg, cg, bg = (t[:, box[0], box[1]] for t in (s3, c3, b3))
        size = ((nh - 1) * step[0] + field[0], (nw - 1) * step[1] + field[1])
        at = (r0 * step[0], c0 * step[1])
        for rows in (group == g).nonzero().squeeze(1).split(block):
            lg = lam3[rows, :, box[0], box[1]]
            pos, neg = lg.clamp_min(0), lg.clamp_max(0)
            coef = pos + neg * sg
            const[rows] = (neg * cg + coef * bg).flatten(1).sum(1)
            patches = torch.bmm(coef.reshape(len(rows), co, -1).permute(2, 0, 1), kg)
            img = nn.functional.fold(patches.permute(1, 2, 0), size, field, stride=step)
            out[rows, :, at[0]:at[0] + size[0], at[1]:at[1] + size[1]] = img
    out = out[:, :, pc[0]:pc[0] + h, pc[1]:pc[1] + w]
    return out.reshape(lam.shape[0], -1), const


def _pair(v: Any) -> tuple[int, int]:
    return tuple(v) if isinstance(v, (tuple, list, torch.Size)) else (int(v), int(v))
