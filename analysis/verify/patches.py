"""CROWN's backward pass on image-shaped layers, with the coefficients kept as patches.

A row of CROWN's back-substitution that starts at one neuron of a convolution is nonzero only
on that neuron's receptive field. :class:`Patches` keeps ``N`` such rows per position of a
``gh × gw`` grid as ``(N, gh, gw, C, kh, kw)`` tensors on a ``(C, H, W)`` space: the patch of
grid position ``(i, j)`` covers rows ``i·sh − oh … i·sh − oh + kh − 1`` and columns
``j·sw − ow …`` of the space (entries outside the space, in the padding, are kept at zero).
Rows that cover the whole space (a dense layer's rows, the specification) are one patch on a
``1 × 1`` grid, i.e. the coefficient tensor shaped like the layer.

The steps are the same maths as the dense ones of :mod:`analysis.verify.relax` and
:meth:`~analysis.verify.network.Affine.back` (the same lines, so the same bounds up to the
order of floating-point sums); they are tested against the dense reference
(``crown_bounds(..., fuse=False)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from analysis.verify.network import Affine, Nonlinear
from analysis.verify.relax import _maxpool_lines, relu_relaxation, tanh_relaxation

Pair = tuple[int, int]


def _pair(v: Any) -> Pair:
    return tuple(int(u) for u in v) if isinstance(v, (tuple, list, torch.Size)) \
        else (int(v), int(v))


@dataclass
class Patches:
    """``N`` rows per grid position, each a patch of coefficients on a ``(C, H, W)`` space.

    Attributes:
        coef: ``(N, gh, gw, C, kh, kw)``. const: ``(N, gh, gw)``, the rows' constants.
        stride, offset: the patch of grid position ``(i, j)`` starts at
            ``(i·stride[0] − offset[0], j·stride[1] − offset[1])``.
        shape: the space ``(C, H, W)``.
    """

    coef: Tensor
    const: Tensor
    stride: Pair
    offset: Pair
    shape: tuple[int, int, int]

    @property
    def kernel(self) -> Pair:
        return tuple(self.coef.shape[-2:])

    @property
    def grid(self) -> Pair:
        return tuple(self.coef.shape[1:3])

    def view(self, t: Tensor) -> Tensor:
        """The patches of a map ``t`` ``(C, H, W, *tail)`` (or flattened ``(C·H·W,)``) at this
        geometry, zero outside the space: ``(gh, gw, C, kh, kw, *tail)`` (a strided view)."""
        return _view(t, self.shape, self.grid, self.kernel, self.stride, self.offset)

    def with_coef(self, coef: Tensor, stride: Pair, offset: Pair, shape: tuple[int, int, int],
                  const: Tensor) -> Patches:
        """The rows on another space; entries outside it are set to zero."""
        p = Patches(coef, const, stride, offset, shape)
        ones = torch.ones(1, *shape[1:], dtype=coef.dtype)
        p.coef = coef * _view(ones, (1, *shape[1:]), p.grid, p.kernel, stride, offset)
        return p.cropped()

    def cropped(self) -> Patches:
        """Rows on a ``1 × 1`` grid cut to the space (their patch can outgrow it)."""
        for axis in (0, 1):
            if self.grid[axis] != 1:
                continue
            start, size = -self.offset[axis], self.shape[1 + axis]
            a, b = max(start, 0) - start, min(start + self.kernel[axis], size) - start
            if (a, b) == (0, self.kernel[axis]):
                continue
            dim = 4 + axis
            self.coef = self.coef.narrow(dim, a, b - a)
            off = list(self.offset)
            off[axis] = self.offset[axis] - a
            self.offset = tuple(off)
        return self

    def dense(self) -> Tensor:
        """The rows as dense vectors on the space ``(N·gh·gw, C·H·W)`` (row order ``n, i, j``)."""
        c, h, w = self.shape
        n, gh, gw = self.coef.shape[:3]
        kh, kw = self.kernel
        pad = _padding(self.shape, self.grid, self.kernel, self.stride, self.offset)
        hp, wp = h + pad[2] + pad[3], w + pad[0] + pad[1]
        rows = torch.arange(gh)[:, None] * self.stride[0] + torch.arange(kh)  # (gh, kh)
        cols = torch.arange(gw)[:, None] * self.stride[1] + torch.arange(kw)  # (gw, kw)
        idx = (torch.arange(c)[None, None, :, None, None] * hp * wp
               + rows[:, None, None, :, None] * wp + cols[None, :, None, None, :])
        out = torch.zeros(n, gh, gw, c * hp * wp, dtype=self.coef.dtype)
        out.scatter_add_(3, idx.reshape(1, gh, gw, -1).expand(n, -1, -1, -1),
                         self.coef.reshape(n, gh, gw, -1))
        out = out.reshape(n * gh * gw, c, hp, wp)[:, :, pad[2]:pad[2] + h, pad[0]:pad[0] + w]
        return out.reshape(n * gh * gw, -1)


def _padding(shape: tuple[int, ...], grid: Pair, kernel: Pair, stride: Pair, offset: Pair
             ) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` zero padding that holds every patch."""
    h, w = shape[1:3]
    bottom = max(0, (grid[0] - 1) * stride[0] - offset[0] + kernel[0] - h)
    right = max(0, (grid[1] - 1) * stride[1] - offset[1] + kernel[1] - w)
    return offset[1], right, offset[0], bottom


def _view(t: Tensor, shape: tuple[int, int, int], grid: Pair, kernel: Pair, stride: Pair,
          offset: Pair) -> Tensor:
    c, h, w = shape
    t = t.reshape(c, h, w, -1)
    tail = t.shape[3]
    left, right, top, bottom = _padding(shape, grid, kernel, stride, offset)
    t = nn.functional.pad(t.permute(3, 0, 1, 2), (left, right, top, bottom)).permute(1, 2, 3, 0)
    t = t.contiguous()
    s_c, s_h, s_w, s_t = t.stride()
    v = t.as_strided((*grid, c, *kernel, tail),
                     (stride[0] * s_h, stride[1] * s_w, s_c, s_h, s_w, s_t))
    return v.squeeze(-1) if tail == 1 else v


def _contract(p: Patches, coef: Tensor, t: Tensor) -> Tensor:
    """``Σ coef · t`` over each patch, ``t`` a map on the space: ``(N, gh, gw)``."""
    n, gh, gw = coef.shape[:3]
    return torch.einsum("ngk,gk->ng", coef.reshape(n, gh * gw, -1),
                        p.view(t).reshape(gh * gw, -1)).reshape(n, gh, gw)


def conv_rows(aff: Affine, rows: Tensor) -> Patches:
    """The rows ``±A`` of the output channels ``rows`` of a lone Conv2d, on its input space
    (lower-bound rows first: ``N = 2·len(rows)`` per output position)."""
    conv = aff.lone_conv()
    assert conv is not None
    co, ho, wo = aff.out_shape
    wt = conv.weight.to(aff.bias.dtype)[rows]
    bias = aff.bias.reshape(co, ho, wo)[rows]
    coef = torch.cat([wt, -wt])[:, None, None].expand(-1, ho, wo, -1, -1, -1)
    p = Patches(coef, torch.cat([bias, -bias]), _pair(conv.stride), _pair(conv.padding),
                tuple(aff.in_shape))
    return p.with_coef(p.coef, p.stride, p.offset, p.shape, p.const)


def identity_rows(shape: tuple[int, int, int], rows: Tensor, dtype: torch.dtype) -> Patches:
    """The rows ``±e_k`` of the units of channels ``rows`` of a ``(C, H, W)`` space
    (lower-bound rows first: ``N = 2·len(rows)`` per position)."""
    c, h, w = shape
    eye = torch.eye(c, dtype=dtype)[rows]
    coef = torch.cat([eye, -eye]).reshape(-1, 1, 1, c, 1, 1).expand(-1, h, w, -1, -1, -1)
    return Patches(coef, torch.zeros(coef.shape[0], h, w, dtype=dtype), (1, 1), (0, 0), shape)


def full_rows(lam: Tensor, const: Tensor, shape: tuple[int, int, int]) -> Patches:
    """Dense rows ``(R, C·H·W)`` as one patch each covering the space."""
    c, h, w = shape
    return Patches(lam.reshape(-1, 1, 1, c, h, w), const.reshape(-1, 1, 1), (1, 1), (0, 0),
                   shape)


def back_activation(p: Patches, m: Nonlinear, lo: Tensor, up: Tensor) -> Patches:
    """Through a ReLU or Tanh (the lines of :mod:`analysis.verify.relax`)."""
    aL, bL, aU, bU = (relu_relaxation if m.kind == "relu" else tanh_relaxation)(lo, up)
    pos, neg = p.coef.clamp_min(0), p.coef.clamp_max(0)
    coef = pos * p.view(aL) + neg * p.view(aU)
    const = p.const + _contract(p, pos, bL) + _contract(p, neg, bU)
    return Patches(coef, const, p.stride, p.offset, p.shape)


def _selected(pool: Nonlinear, lo: Tensor, up: Tensor, in_shape: tuple[int, ...],
              out_shape: tuple[int, ...]) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """DeepPoly's max-pool lines with the selected input's offset in its window:
    ``(jl, sU, cU, di, dj)``, each ``(C·Hp·Wp,)``."""
    jl, sU, cU = _maxpool_lines(pool, lo, up)
    _, hc, wc = in_shape
    _, hp, wp = out_shape
    sp = _pair(pool.module.stride or pool.module.kernel_size)
    pix = jl % (hc * wc)
    pos = torch.arange(jl.shape[0]) % (hp * wp)
    return jl, sU, cU, pix // wc - (pos // wp) * sp[0], pix % wc - (pos % wp) * sp[1]


def back_maxpool(p: Patches, pool: Nonlinear, lo: Tensor, up: Tensor,
                 in_shape: tuple[int, int, int]) -> Patches:
    """Through max pooling (unpadded) onto its input space ``in_shape``."""
    jl, sU, cU, di, dj = _selected(pool, lo, up, in_shape, p.shape)
    kp, sp = _pair(pool.module.kernel_size), _pair(pool.module.stride or pool.module.kernel_size)
    pos, neg = p.coef.clamp_min(0), p.coef.clamp_max(0)
    coef = pos + neg * p.view(sU.to(p.coef.dtype))
    const = p.const + _contract(p, neg, cU)
    kh, kw = p.kernel
    size = ((kh - 1) * sp[0] + kp[0], (kw - 1) * sp[1] + kp[1])
    out = torch.zeros(*coef.shape[:4], *size, dtype=coef.dtype)
    for a in range(kp[0]):
        for b in range(kp[1]):
            hit = p.view(((di == a) & (dj == b)).to(coef.dtype))
            out[..., a:a + (kh - 1) * sp[0] + 1:sp[0], b:b + (kw - 1) * sp[1] + 1:sp[1]] += \
                coef * hit
    stride = (p.stride[0] * sp[0], p.stride[1] * sp[1])
    offset = (p.offset[0] * sp[0], p.offset[1] * sp[1])
    return p.with_coef(out, stride, offset, in_shape, const)


def back_conv(p: Patches, aff: Affine) -> Patches:
    """Through a lone Conv2d (``Λ A`` by a transposed convolution of each patch)."""
    conv = aff.lone_conv()
    assert conv is not None
    sc, pc = _pair(conv.stride), _pair(conv.padding)
    n, gh, gw, co, kh, kw = p.coef.shape
    const = p.const + _contract(p, p.coef, aff.bias)
    g = nn.functional.conv_transpose2d(p.coef.reshape(n * gh * gw, co, kh, kw),
                                       conv.weight.to(p.coef.dtype), stride=sc)
    coef = g.reshape(n, gh, gw, *g.shape[1:])
    stride = (p.stride[0] * sc[0], p.stride[1] * sc[1])
    offset = (p.offset[0] * sc[0] + pc[0], p.offset[1] * sc[1] + pc[1])
    return p.with_coef(coef, stride, offset, tuple(aff.in_shape), const)


def back_pool_conv(p: Patches, pool: Nonlinear, aff: Affine, lo: Tensor, up: Tensor) -> Patches:
    """Through max pooling and the lone Conv2d before it in one step (the same lines as
    :func:`back_maxpool` then :func:`back_conv`): each pool output passes its coefficient to
    its window's selected input only, so it contributes its coefficient times the kernel of its
    channel, shifted to the selected position inside the window's receptive field (a
    ``((k − 1) s + q)``-square patch of the convolution's input); per grid position and
    patch position one matrix product over the channels, added into the patch."""
    conv = aff.lone_conv()
    assert conv is not None
    jl, sU, cU, di, dj = _selected(pool, lo, up, aff.out_shape, p.shape)
    kp, sp = _pair(pool.module.kernel_size), _pair(pool.module.stride or pool.module.kernel_size)
    kc, sc, pc = _pair(conv.weight.shape[2:]), _pair(conv.stride), _pair(conv.padding)
    ci = aff.in_shape[0]
    co = p.shape[0]
    dt = p.coef.dtype
    field = tuple((a - 1) * s + q for a, s, q in zip(kp, sc, kc))
    step = (sp[0] * sc[0], sp[1] * sc[1])
    wt = conv.weight.to(dt)
    emb = torch.zeros(co, kp[0], kp[1], ci, *field, dtype=dt)
    for a in range(kp[0]):
        for b in range(kp[1]):
            emb[:, a, b, :, a * sc[0]:a * sc[0] + kc[0], b * sc[1]:b * sc[1] + kc[1]] = wt
    chan = torch.arange(jl.shape[0]) // math.prod(p.shape[1:])
    kern = emb.reshape(co, kp[0] * kp[1], -1)[chan, di * kp[1] + dj]  # (C·Hp·Wp, F)
    pos, neg = p.coef.clamp_min(0), p.coef.clamp_max(0)
    s_u = sU.to(dt)
    coef = pos + neg * p.view(s_u)
    b_sel = aff.bias[jl]  # coef·b = pos·b + neg·sU·b
    const = p.const + _contract(p, pos, b_sel) + _contract(p, neg, s_u * b_sel + cU)
    n, gh, gw, _, kh, kw = coef.shape
    kv = p.view(kern.reshape(*p.shape, -1))  # (gh, gw, C, kh, kw, F)
    lhs = coef.permute(4, 5, 1, 2, 0, 3).reshape(kh * kw * gh * gw, n, co)
    rhs = kv.permute(3, 4, 0, 1, 2, 5).reshape(kh * kw * gh * gw, co, -1)
    blocks = torch.bmm(lhs, rhs).reshape(kh, kw, gh, gw, n, ci, *field)
    size = ((kh - 1) * step[0] + field[0], (kw - 1) * step[1] + field[1])
    coef = torch.zeros(gh, gw, n, ci, *size, dtype=dt)
    for a in range(kh):  # block (a, b) lands at (a, b)·step
        for b in range(kw):
            coef[..., a * step[0]:a * step[0] + field[0], b * step[1]:b * step[1] + field[1]] \
                += blocks[a, b]
    coef = coef.permute(2, 0, 1, 3, 4, 5)
    stride = (p.stride[0] * step[0], p.stride[1] * step[1])
    offset = (p.offset[0] * step[0] + pc[0], p.offset[1] * step[1] + pc[1])
    return p.with_coef(coef, stride, offset, tuple(aff.in_shape), const)


def concretize(p: Patches, x0: Tensor, lo: Tensor, hi: Tensor, eps: float, norm: str,
               boxed: bool) -> Tensor:
    """``min`` of each row ``a·x + c`` over ``{‖x − x₀‖ ≤ ε} ∩ box`` as in
    :func:`analysis.verify.crown._concretize_min` (``lo``, ``hi``: the box, shaped like
    ``x0``), ``(N, gh, gw)``."""
    n, gh, gw = p.coef.shape[:3]
    a = p.coef.reshape(n, gh * gw, -1)

    def dot(t: Tensor) -> Tensor:
        return torch.einsum("ngk,gk->ng", a, p.view(t).reshape(gh * gw, -1))

    def box_min(lo_t: Tensor, hi_t: Tensor) -> Tensor:
        pos, neg = a.clamp_min(0), a.clamp_max(0)
        return torch.einsum("ngk,gk->ng", pos, p.view(lo_t).reshape(gh * gw, -1)) \
            + torch.einsum("ngk,gk->ng", neg, p.view(hi_t).reshape(gh * gw, -1))

    if norm == "linf":
        out = box_min(torch.maximum(lo, x0 - eps), torch.minimum(hi, x0 + eps))
    elif norm == "l2":
        out = dot(x0) - eps * a.norm(dim=2)
        if boxed:
            out = torch.maximum(out, box_min(lo, hi))
    else:
        raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")
    return out.reshape(n, gh, gw) + p.const
