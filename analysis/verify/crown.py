"""CROWN and IBP bounds over a perturbation ball, and certified radii by bisection on ε."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from analysis.verify import patches as P
from analysis.verify.network import _SHAPE_ONLY, DT, Affine, Network, Nonlinear, network
from analysis.verify.relax import _back_nonlinear, fusable_pool


# =========================================================================== input sets
def _box(x0: Tensor, box: Any) -> tuple[Tensor, Tensor]:
    """``(lo, hi)`` tensors shaped like ``x0`` from ``None``, ``(a, b)`` numbers or tensors."""
    if box is None:
        return torch.full_like(x0, -math.inf), torch.full_like(x0, math.inf)
    return (torch.as_tensor(box[0], dtype=x0.dtype).expand_as(x0),
            torch.as_tensor(box[1], dtype=x0.dtype).expand_as(x0))


def _concretize_min(A: Tensor, x0: Tensor, eps: float, norm: str,
                    box: tuple[float, float] | None) -> Tensor:
    """``min a·x`` over ``{‖x − x₀‖ ≤ ε} ∩ box`` for each row ``a`` of ``A`` (a lower bound
    for L2 with a box: the larger of the ball and box minima). ``A`` ``(R, d)``."""
    lo, hi = _box(x0, box)
    if norm == "linf":
        lo_b, hi_b = torch.maximum(lo, x0 - eps), torch.minimum(hi, x0 + eps)
        return A.clamp_min(0) @ lo_b + A.clamp_max(0) @ hi_b
    if norm != "l2":
        raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")
    ball = A @ x0 - eps * A.norm(dim=1)
    if box is None:
        return ball
    boxed = A.clamp_min(0) @ lo + A.clamp_max(0) @ hi
    return torch.maximum(ball, boxed)


def _spec(net: Network, y: int, n_classes: int) -> Tensor:
    """Rows ``e_y − e_j`` for ``j ≠ y`` ``(K−1, K)``."""
    eye = torch.eye(n_classes, dtype=DT)
    return torch.stack([eye[y] - eye[j] for j in range(n_classes) if j != y])


def _backward_bound(net: Network, upto: int, lam: Tensor | None,
                    bounds: dict[int, tuple[Tensor, Tensor]], x0: Tensor, eps: float, norm: str,
                    box: Any, first: tuple[Tensor, Tensor] | None = None
                    ) -> Tensor:
    """Lower bound of ``Λ · (output of layer ``upto``, an Affine)`` over the input set, layer
    by layer on dense rows (the reference; ``first``: ``(Λ A, Λ b)`` of that layer given
    directly, e.g. rows of ``A``)."""
    if first is None:
        const = lam @ net.layers[upto].bias
        lam = net.layers[upto].back(lam)
    else:
        lam, const = first
    for k in range(upto - 1, -1, -1):
        m = net.layers[k]
        if isinstance(m, Nonlinear):
            lam, c = _back_nonlinear(m, lam, *bounds[k])
            const = const + c
        else:
            const = const + lam @ m.bias
            lam = m.back(lam)
    return _concretize_min(lam, x0, eps, norm, box) + const


def _space(net: Network, k: int) -> tuple[int, ...]:
    """The shape of the input of layer ``k`` (where rows are after passing back through it)."""
    m = net.layers[k]
    return tuple(m.in_shape) if isinstance(m, Affine) else tuple(net.layers[k - 1].out_shape)


def _image_map(m: Affine) -> str | None:
    """``"conv"`` for a lone Conv2d between image spaces, ``"same"`` for a map that only
    reshapes an image space onto itself, else ``None``."""
    if len(m.in_shape) != 3 or len(m.out_shape) != 3:
        return None
    if m.lone_conv() is not None:
        return "conv"
    if all(isinstance(u, _SHAPE_ONLY) for u in m.modules) and m.in_shape == m.out_shape:
        return "same"
    return None


def _patch_bound(net: Network, upto: int, rows: P.Patches | tuple[Tensor, Tensor],
                 bounds: dict[int, tuple[Tensor, Tensor]], x0: Tensor, eps: float, norm: str,
                 box: Any) -> Tensor:
    """Lower bounds of rows on the input of layer ``upto`` over the input set, passed back
    as patches (:mod:`analysis.verify.patches`) through image-shaped layers and as dense rows
    elsewhere; the same lines as :func:`_backward_bound`. Returns ``(N, gh, gw)`` for
    patches, ``(R,)`` for dense rows ``(Λ, c)``."""
    k = upto - 1
    while k >= 0:
        if not isinstance(rows, P.Patches) and len(_space(net, k + 1)) == 3:
            rows = P.full_rows(rows[0], rows[1], _space(net, k + 1))
        m = net.layers[k]
        if isinstance(rows, P.Patches) and isinstance(m, Nonlinear):
            lo, up = bounds[k]
            if m.kind != "maxpool":
                rows = P.back_activation(rows, m, lo, up)
            elif fusable_pool(m, net.layers[k - 1]):
                rows = P.back_pool_conv(rows, m, net.layers[k - 1], lo, up)
                k -= 1
            else:
                rows = P.back_maxpool(rows, m, lo, up, tuple(net.layers[k - 1].out_shape))
        elif isinstance(rows, P.Patches) and _image_map(m) is not None:
            if _image_map(m) == "conv":
                rows = P.back_conv(rows, m)
        else:
            if isinstance(rows, P.Patches):
                rows = (rows.dense(), rows.const.reshape(-1))
            lam, const = rows
            if isinstance(m, Nonlinear):
                lam, c = _back_nonlinear(m, lam, *bounds[k])
                rows = (lam, const + c)
            else:
                rows = (m.back(lam), const + lam @ m.bias)
        k -= 1
    if isinstance(rows, P.Patches):
        lo, hi = (t.reshape(rows.shape) for t in _box(x0, box))
        return P.concretize(rows, x0.reshape(rows.shape), lo, hi, eps, norm, box is not None)
    return _concretize_min(rows[0], x0, eps, norm, box) + rows[1]


def _layer_bounds(net: Network, k: int, bounds: dict[int, tuple[Tensor, Tensor]], x0: Tensor,
                  eps: float, norm: str, box: Any, chunk: int, fuse: bool
                  ) -> tuple[Tensor, Tensor]:
    """CROWN's lower and upper bounds of the input of nonlinear layer ``k``."""
    prev = net.layers[k - 1]
    image = _image_map(prev) if fuse else None
    los, ups = [], []
    if image is not None:  # rows ±A of a few output channels at every position, as patches
        co = prev.out_shape[0]
        per = max(1, chunk // math.prod(prev.out_shape[1:]))
        for chans in torch.arange(co).split(per):
            rows = P.conv_rows(prev, chans) if image == "conv" \
                else P.identity_rows(tuple(prev.in_shape), chans, prev.bias.dtype)
            both = _patch_bound(net, k - 1, rows, bounds, x0, eps, norm, box)
            both = both.reshape(2, len(chans), -1)
            los.append(both[0].reshape(-1))
            ups.append(-both[1].reshape(-1))
        return torch.cat(los), torch.cat(ups)
    A = prev.dense()
    for rows in torch.arange(prev.n_out).split(chunk):
        sel = A[rows]
        first = (torch.cat([sel, -sel]), torch.cat([prev.bias[rows], -prev.bias[rows]]))
        both = _patch_bound(net, k - 1, first, bounds, x0, eps, norm, box) if fuse \
            else _backward_bound(net, k - 1, None, bounds, x0, eps, norm, box, first=first)
        both = both.reshape(-1)
        los.append(both[: len(rows)])
        ups.append(-both[len(rows):])
    return torch.cat(los), torch.cat(ups)


def crown_bounds(net: Network, x0: Tensor, eps: float, norm: str = "linf",
                 box: tuple[float, float] | None = None, spec: Tensor | None = None,
                 chunk: int = 2048, fuse: bool = True
                 ) -> tuple[dict[int, tuple[Tensor, Tensor]], Tensor | None]:
    """CROWN pre-activation bounds of every nonlinear layer, and the lower bound of ``spec ·
    logits`` over the input set.

    Args:
        net: the chain. x0: the centre, flattened ``(d,)``, float64. eps: the radius.
        norm: ``"linf"`` or ``"l2"``. box: input box or ``None``.
        spec: ``(R, K)`` rows whose products with the logits are lower-bounded, or ``None``.
        chunk: rows per backward pass (memory).
        fuse: pass rows back through image-shaped layers as patches of their receptive
            fields (:mod:`analysis.verify.patches`; max pooling together with a lone Conv2d
            before it in one step), the same bounds up to the order of floating-point sums;
            ``False``: dense rows, layer by layer (the reference).

    Returns:
        ``({layer index: (lower, upper) of its input}, lower bounds (R,) or None)``.
    """
    bounds: dict[int, tuple[Tensor, Tensor]] = {}
    for k, m in enumerate(net.layers):
        if isinstance(m, Nonlinear):
            lo, up = _layer_bounds(net, k, bounds, x0, eps, norm, box, chunk, fuse)
            bounds[k] = (lo, torch.maximum(up, lo))
    out = None
    if spec is not None:
        last = net.layers[-1]
        lam = spec.to(DT)
        if fuse:
            out = _patch_bound(net, len(net.layers) - 1, (last.back(lam), lam @ last.bias),
                               bounds, x0, eps, norm, box).reshape(-1)
        else:
            out = _backward_bound(net, len(net.layers) - 1, lam, bounds, x0, eps, norm, box)
    return bounds, out


def ibp_bounds(net: Network, x0: Tensor, eps: float, norm: str = "linf",
               box: tuple[float, float] | None = None, spec: Tensor | None = None
               ) -> tuple[dict[int, tuple[Tensor, Tensor]], Tensor | None]:
    """Interval bounds of every nonlinear layer's input and a lower bound of ``spec · logits``.

    The first affine map is bounded exactly over the input set (row by row); later ones by
    interval arithmetic (centre ``A c + b``, radius ``|A| r``); the specification is folded
    into the last affine map (its rows ``spec A``), as in Gowal et al. 2018.
    """
    first = net.layers[0]
    A = first.dense()
    lo = _concretize_min(A, x0, eps, norm, box) + first.bias
    up = -_concretize_min(-A, x0, eps, norm, box) + first.bias
    bounds: dict[int, tuple[Tensor, Tensor]] = {}
    last = len(net.layers) - 1
    out = None
    for k in range(1, len(net.layers)):
        m = net.layers[k]
        if isinstance(m, Nonlinear):
            bounds[k] = (lo, up)
            if m.kind == "relu":
                lo, up = lo.clamp_min(0), up.clamp_min(0)
            elif m.kind == "tanh":
                lo, up = torch.tanh(lo), torch.tanh(up)
            else:
                lo, up = lo[m.windows].amax(1), up[m.windows].amax(1)
            continue
        c, r = (lo + up) / 2, (up - lo) / 2
        if k == last and spec is not None:
            W = spec.to(DT) @ m.dense()
            out = W @ c - W.abs() @ r + spec.to(DT) @ m.bias
        centre = m.forward(c[None])[0]
        rad = m.abs_linear(r[None])[0]
        lo, up = centre - rad, centre + rad
    if spec is not None and len(net.layers) == 1:
        A = spec.to(DT) @ first.dense()
        out = _concretize_min(A, x0, eps, norm, box) + spec.to(DT) @ first.bias
    return bounds, out


# =========================================================================== radii
@dataclass
class Radius:
    """Certified radii for a batch.

    Attributes:
        radius: float64 ``(B,)``: a certified lower bound on the minimal adversarial distance
            (``0`` where the point is misclassified or nothing was certified).
        seconds: ``(B,)`` wall time per point.
        method: ``"ibp"``, ``"crown"`` or ``"lipschitz"``. norm: the norm.
    """

    radius: np.ndarray
    seconds: np.ndarray
    method: str
    norm: str


def _certified(method: str, net: Network, x0: Tensor, y: int, K: int, eps: float, norm: str,
               box: tuple[float, float] | None, fuse: bool = True) -> bool:
    spec = _spec(net, y, K)
    if method == "crown":
        _, low = crown_bounds(net, x0, eps, norm, box, spec, fuse=fuse)
    else:
        _, low = ibp_bounds(net, x0, eps, norm, box, spec)
    return bool((low > 0).all())


def _bisect(ok: Any, hi: float, steps: int, rtol: float) -> float:
    """Largest ε in [0, hi] with ``ok(ε)`` by bisection (``ok`` assumed to hold at 0)."""
    lo = 0.0
    while ok(hi):  # grow the bracket until it fails
        lo, hi = hi, 2 * hi
        if hi > 1e6:
            return lo
    for _ in range(steps):
        if hi - lo <= rtol * hi:
            break
        mid = (lo + hi) / 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


@torch.no_grad()
def certified_radius(model: nn.Module | Network, x: Tensor, y: Tensor | None = None, *,
                     method: str = "crown", norm: str = "l2",
                     box: tuple[float, float] | None = None, hi: float | Tensor | None = None,
                     steps: int = 30, rtol: float = 1e-4, in_shape: Sequence[int] | None = None,
                     fuse: bool = True) -> Radius:
    """IBP or CROWN certified radius per point, by bisection on ε.

    Args:
        model: the network (or a :class:`Network`). x: inputs ``(B, ...)``.
        y: labels; default the predicted class (the radius of the model's own decision).
        method: ``"ibp"`` or ``"crown"``. norm: ``"linf"`` or ``"l2"``. box: input box.
        hi: initial upper end of the bisection (scalar or per point; default 1); the bracket
            is doubled while ``hi`` is certified.
        steps: bisection steps. rtol: stop when the bracket is this narrow (relative).
        in_shape: per-sample input shape when ``model`` has no ``in_shape``.
        fuse: CROWN's fused max-pooling step (see :func:`crown_bounds`).

    Returns:
        :class:`Radius`; ``0`` where ``y`` is not the predicted class.
    """
    if method not in ("ibp", "crown"):
        raise ValueError(f"method must be 'ibp' or 'crown', got {method!r}")
    net = model if isinstance(model, Network) else network(model, in_shape or x.shape[1:])
    xf = x.flatten(1).to(DT).cpu()
    logits = net.forward(xf)
    pred = logits.argmax(1)
    y = pred if y is None else torch.as_tensor(y).cpu()
    K = logits.shape[1]
    his = torch.as_tensor(1.0 if hi is None else hi, dtype=DT).expand(len(xf))
    rad, secs = np.zeros(len(xf)), np.zeros(len(xf))
    for i in range(len(xf)):
        t0 = time.perf_counter()
        if int(pred[i]) == int(y[i]):
            def ok(e: float, i: int = i) -> bool:
                return _certified(method, net, xf[i], int(y[i]), K, e, norm, box, fuse)
            rad[i] = _bisect(ok, max(float(his[i]), 1e-12), steps, rtol)
        secs[i] = time.perf_counter() - t0
    return Radius(rad, secs, method, norm)


def ibp_radius(model: nn.Module | Network, x: Tensor, y: Tensor | None = None, **kw: Any
               ) -> Radius:
    """:func:`certified_radius` with ``method="ibp"``."""
    return certified_radius(model, x, y, method="ibp", **kw)


def crown_radius(model: nn.Module | Network, x: Tensor, y: Tensor | None = None, **kw: Any
                 ) -> Radius:
    """:func:`certified_radius` with ``method="crown"``."""
    return certified_radius(model, x, y, method="crown", **kw)
