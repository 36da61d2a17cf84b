"""Ground truth on small networks: certified radii (IBP, CROWN, Lipschitz margin) and exact
minimal adversarial distances (MILP / MIQP).

A network (an ``nn.Sequential``, nested allowed, or a module with a ``.net`` Sequential such as
:class:`analysis.models.MLP`) is read into an alternating chain of *affine* maps and
*nonlinear* layers (:func:`network`): runs of Linear, Conv2d, AvgPool2d, global average
pooling, eval-mode BatchNorm, Flatten, Identity and Dropout (eval) are composed into one affine
map ``z = A h + b`` (BatchNorm is thereby folded in); ReLU, Tanh and MaxPool2d are the
nonlinear layers. All computation is in float64 on the CPU unless a ``dtype`` says otherwise.

Input sets. A perturbation ball ``{x : ‖x − x₀‖ ≤ ε}`` (``norm`` ``"linf"`` or ``"l2"``;
inputs in the units of the data, pixels in [0, 1]) optionally intersected with a box
``lo ≤ x ≤ hi`` (``box=(0, 1)`` for images; ``None`` for standardised tabular data). The
minimum of a linear function over ball ∩ box is exact for L∞ (the set is a box); for L2 we
take the larger of the minima over the ball and over the box, a sound (not always tight)
lower bound.

Certificates (all *lower* bounds on the minimal adversarial distance in ``norm``):

* :func:`ibp_radius`: interval bound propagation (Gowal et al. 2018); the first affine map is
  bounded exactly (dual norm of each row), intervals after that.
* :func:`crown_radius`: CROWN (Zhang et al. 2018): linear lower/upper relaxations of every
  nonlinear layer, propagated backwards to the input, with intermediate bounds computed by the
  same backward pass; the margin specification ``f_y − f_j`` is folded into the last affine
  map. ReLU: upper chord, lower slope 0 or 1 (the larger side, as in CROWN-Ada). Tanh: for a
  slope ``k`` the offsets are the exact extrema of ``tanh(z) − k z`` on ``[l, u]`` (endpoints
  and the stationary points ``±atanh(√(1 − k))``), so every line is sound by construction;
  ``k`` is the chord slope, or the tangent slope at the midpoint on the concave (convex) side
  when ``[l, u]`` does not cross 0. Max pooling: lower ``max ≥ z_j`` (``j`` the largest lower
  bound), upper ``max = z_j`` when that input dominates the others, else the constant ``max u``
  (DeepPoly's relaxation).
* :func:`lipschitz_radius`: Tsuzuku et al. 2018: ``margin / (√2 L)`` with ``L`` the product of
  the exact operator 2-norms of the affine maps (Lipschitz constant 1 for ReLU, tanh and
  non-overlapping max pooling; ``√m`` where a pixel lies in ``m`` pooling windows); L2 only,
  no box.

Radii are found by bisection on ε: the returned radius was itself certified (a bound that is
not monotone in ε cannot make it unsound), and is within ``rtol`` of the largest certifiable ε
on the bisection's bracket.

Exact distances: :func:`exact_distance` solves ``min ‖x − x₀‖`` s.t. ``f_j(x) ≥ f_y(x)`` for each
target class ``j`` (one program per class) over a ReLU / max-pool network, with binary variables
for the unstable ReLUs and max-pool arguments (big-M constants from CROWN bounds over the box
``[x₀ − U, x₀ + U] ∩ box``, where ``U`` is the distance of a known adversarial point: every
point closer than it lies there, as ‖·‖∞ ≤ ‖·‖_p). L∞ and L1: ``scipy.optimize.milp`` (HiGHS);
L2: ``pyscipopt`` (SCIP) on the epigraph of the squared distance. With a time limit the result
is a bracket ``[lower, upper]`` (``lower``: the solver's dual bound, certified up to the solver's
feasibility tolerance 1e-6 on the logit constraint; ``upper``: the distance of a point that the
model, re-evaluated in float64, misclassifies) and a status ``"solved"`` (relative gap ≤
``gap_tol``) or ``"gap"``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

DT = torch.float64
_AFFINE = (nn.Linear, nn.Conv2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.BatchNorm1d,
           nn.BatchNorm2d, nn.Flatten, nn.Identity, nn.Dropout, nn.Unflatten)
_SHAPE_ONLY = (nn.Flatten, nn.Identity, nn.Dropout, nn.Unflatten)
_UNIT_ROUNDOFF = 2.0 ** -53


# =========================================================================== network chain
def _leaves(model: nn.Module) -> list[nn.Module]:
    """Layers of a (nested) Sequential, or of a module's ``.net`` Sequential, in order."""
    if isinstance(model, nn.Sequential):
        out: list[nn.Module] = []
        for m in model:
            out += _leaves(m)
        return out
    if not list(model.children()):
        return [model]
    inner = getattr(model, "net", None)
    if isinstance(inner, nn.Sequential):
        return _leaves(inner)
    raise ValueError(f"cannot read {type(model).__name__} as a chain: build it as an "
                     "nn.Sequential (or with a .net Sequential)")


def _abs_copy(m: nn.Module) -> nn.Module:
    """``m`` with |weights|, zero biases and zero running means: an entrywise upper bound of
    the absolute value of the linear part of ``m`` (for interval radii)."""
    a = copy.deepcopy(m)
    with torch.no_grad():
        for name, p in a.named_parameters():
            p.copy_(p.abs() if name == "weight" else torch.zeros_like(p))
        if isinstance(a, (nn.BatchNorm1d, nn.BatchNorm2d)):
            a.running_mean.zero_()
    return a


@dataclass
class Affine:
    """``z = A h + b`` for a run of affine layers, on flattened vectors.

    Attributes:
        modules: the layers, applied to ``h.reshape(-1, *in_shape)``.
        in_shape, out_shape: per-sample shapes of input and output.
        bias: ``b = f(0)`` flattened, ``(n_out,)``.
    """

    modules: list[nn.Module]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    bias: Tensor
    _abs: list[nn.Module] = field(default_factory=list, repr=False)
    _dense: Tensor | None = field(default=None, repr=False)

    @property
    def n_in(self) -> int:
        return math.prod(self.in_shape)

    @property
    def n_out(self) -> int:
        return math.prod(self.out_shape)

    def _seq(self, h: Tensor, mods: Sequence[nn.Module]) -> Tensor:
        h = h.reshape(-1, *self.in_shape)
        for m in mods:
            if isinstance(m, nn.Linear) and h.ndim > 2:
                h = h.flatten(1)
            h = m(h)
        return h.reshape(h.shape[0], -1)

    def forward(self, h: Tensor) -> Tensor:
        """``A h + b`` for ``h`` ``(B, n_in)``."""
        return self._seq(h, self.modules)

    def linear(self, h: Tensor) -> Tensor:
        """``A h`` for ``h`` ``(B, n_in)``."""
        return self.forward(h) - self.bias

    def abs_linear(self, r: Tensor) -> Tensor:
        """An entrywise upper bound of ``|A| r`` for ``r ≥ 0`` ``(B, n_in)``."""
        if not self._abs:
            self._abs = [_abs_copy(m) for m in self.modules]
        return self._seq(r, self._abs)

    def back(self, lam: Tensor) -> Tensor:
        """``Λ A`` for ``Λ`` ``(R, n_out)`` (a vector-Jacobian product), ``(R, n_in)``."""
        conv = self._lone_conv()
        if conv is not None:
            c, h, w = self.in_shape
            out = lam.reshape(lam.shape[0], *self.out_shape)
            k = conv.weight.shape[2:]
            s, p = conv.stride, conv.padding
            op = tuple(n - ((o - 1) * st - 2 * pd + q) for n, o, st, pd, q in
                       zip((h, w), self.out_shape[1:], s, p, k))
            g = nn.functional.conv_transpose2d(out, conv.weight, stride=s, padding=p,
                                               output_padding=op)
            return g.reshape(lam.shape[0], -1)
        if self._dense is not None:
            return lam @ self._dense
        if len(self.modules) == 1 and isinstance(self.modules[0], nn.Linear):
            return lam @ self.modules[0].weight
        with torch.enable_grad():
            h = torch.zeros(lam.shape[0], self.n_in, dtype=lam.dtype, requires_grad=True)
            (g,) = torch.autograd.grad(self.linear(h), h, lam)
        return g

    def _lone_conv(self) -> nn.Conv2d | None:
        core = [m for m in self.modules if not isinstance(m, _SHAPE_ONLY)]
        if len(core) == 1 and isinstance(core[0], nn.Conv2d) and core[0].groups == 1 \
                and core[0].dilation in (1, (1, 1)) and not isinstance(core[0].padding, str) \
                and isinstance(core[0].padding, tuple):
            return core[0]
        return None

    def dense(self) -> Tensor:
        """The matrix ``A`` ``(n_out, n_in)`` (computed once; a lone Conv2d by
        :func:`analysis.bounds.peck.rules.conv_dense_matrix`, which copies the weights)."""
        if self._dense is None:
            core = [m for m in self.modules if not isinstance(m, _SHAPE_ONLY)]
            if len(core) == 1 and isinstance(core[0], nn.Conv2d) and core[0].groups == 1 \
                    and core[0].dilation in (1, (1, 1)) and not isinstance(core[0].padding, str):
                from analysis.bounds.peck.rules import conv_dense_matrix
                c = core[0]
                self._dense = conv_dense_matrix(c.weight, self.in_shape, c.stride,
                                                c.padding).to(self.bias.dtype)
            else:
                eye = torch.eye(self.n_out, dtype=self.bias.dtype)
                self._dense = torch.cat([self.back(c) for c in eye.split(2048)])
        return self._dense


@dataclass
class Nonlinear:
    """A ReLU, Tanh or max-pooling layer on flattened vectors.

    Attributes:
        kind: ``"relu"``, ``"tanh"`` or ``"maxpool"``.
        module: the layer.
        windows: for max pooling, ``(n_out, q)`` indices of each window's inputs.
    """

    kind: str
    module: nn.Module
    windows: Tensor | None = None

    def forward(self, z: Tensor) -> Tensor:
        if self.kind == "relu":
            return z.clamp_min(0)
        if self.kind == "tanh":
            return torch.tanh(z)
        return z[:, self.windows].amax(-1)


def _pool_windows(m: nn.MaxPool2d, shape: tuple[int, ...]) -> Tensor:
    c, h, w = shape
    k = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size, m.kernel_size)
    s = m.stride if isinstance(m.stride, tuple) else (m.stride or k[0],) * 2
    pad = m.padding if isinstance(m.padding, tuple) else (m.padding, m.padding)
    if pad != (0, 0) or m.dilation not in (1, (1, 1)) or m.ceil_mode:
        raise ValueError("max pooling: only unpadded, undilated, floor mode supported")
    idx = torch.arange(c * h * w).reshape(1, c, h, w).double()
    win = nn.functional.unfold(idx, k, stride=s)  # (1, c*kh*kw, L)
    L = win.shape[-1]
    win = win.reshape(c, k[0] * k[1], L).permute(0, 2, 1).reshape(c * L, -1)
    return win.round().long()


@dataclass
class Network:
    """A network as ``[Affine, Nonlinear, Affine, ..., Affine]`` (alternating).

    Attributes:
        layers: the chain. in_shape: per-sample input shape.
    """

    layers: list[Affine | Nonlinear]
    in_shape: tuple[int, ...]

    @property
    def affines(self) -> list[Affine]:
        return [m for m in self.layers if isinstance(m, Affine)]

    def forward(self, x: Tensor) -> Tensor:
        """Logits for ``x`` ``(B, ...)`` (flattened inside)."""
        h = x.reshape(x.shape[0], -1).to(DT)
        for m in self.layers:
            h = m.forward(h)
        return h

    @property
    def piecewise_linear(self) -> bool:
        return all(m.kind != "tanh" for m in self.layers if isinstance(m, Nonlinear))


@torch.no_grad()
def network(model: nn.Module, in_shape: Sequence[int] | None = None,
            dtype: torch.dtype = DT) -> Network:
    """Read ``model`` into a :class:`Network` (a float64 copy, eval mode).

    Args:
        model: Sequential of the supported layers (see module docstring).
        in_shape: per-sample input shape; default ``model.in_shape``.
        dtype: the dtype of the copy.

    Raises:
        ValueError: an unsupported layer.
    """
    if in_shape is None:
        in_shape = getattr(model, "in_shape", None)
        if in_shape is None:
            raise ValueError("give in_shape (the model has no .in_shape)")
    shape = tuple(int(v) for v in in_shape)
    net = copy.deepcopy(model).cpu().to(dtype).eval().requires_grad_(False)
    chain: list[Affine | Nonlinear] = []
    run: list[nn.Module] = []
    run_in = shape
    h = torch.zeros(1, *shape, dtype=dtype)

    def close() -> None:
        nonlocal run, run_in
        out_shape = tuple(h.shape[1:])
        mods = run or [nn.Identity()]
        aff = Affine(mods, run_in, out_shape, torch.zeros(0, dtype=dtype))
        aff.bias = aff.forward(torch.zeros(1, math.prod(run_in), dtype=dtype))[0]
        chain.append(aff)
        run = []

    for m in _leaves(net):
        if isinstance(m, _AFFINE):
            if isinstance(m, nn.Linear) and h.ndim > 2:
                h = h.flatten(1)
            run.append(m)
            h = m(h)
        elif isinstance(m, (nn.ReLU, nn.Tanh, nn.MaxPool2d)):
            close()
            kind = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.MaxPool2d: "maxpool"}[type(m)]
            win = _pool_windows(m, tuple(h.shape[1:])) if kind == "maxpool" else None
            chain.append(Nonlinear(kind, m, win))
            h = m(h)
            run_in = tuple(h.shape[1:])
        else:
            raise ValueError(f"no verification rule for layer {type(m).__name__}")
    close()
    return Network(chain, shape)


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


# =========================================================================== relaxations
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
    win = m.windows
    jl = win.gather(1, lo[win].argmax(1, keepdim=True)).squeeze(1)  # (n_out,)
    l_j = lo[jl]
    up_w = up[win]
    others = torch.where(win == jl[:, None], torch.full_like(up_w, -math.inf), up_w).amax(1)
    dominated = l_j >= others
    cU = torch.where(dominated, torch.zeros_like(l_j), up_w.amax(1))
    sU = dominated.to(lam.dtype)
    out = torch.zeros(lam.shape[0], lo.shape[0], dtype=lam.dtype)
    out.index_add_(1, jl, pos)
    out.index_add_(1, jl, neg * sU)
    return out, neg @ cU


def _spec(net: Network, y: int, n_classes: int) -> Tensor:
    """Rows ``e_y − e_j`` for ``j ≠ y`` ``(K−1, K)``."""
    eye = torch.eye(n_classes, dtype=DT)
    return torch.stack([eye[y] - eye[j] for j in range(n_classes) if j != y])


def _backward_bound(net: Network, upto: int, lam: Tensor | None,
                    bounds: dict[int, tuple[Tensor, Tensor]], x0: Tensor, eps: float, norm: str,
                    box: Any, first: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """Lower bound of ``Λ · (output of layer ``upto``, an Affine)`` over the input set
    (``first``: ``(Λ A, Λ b)`` of that layer given directly, e.g. rows of ``A``)."""
    if first is None:
        const = lam @ net.layers[upto].bias
        lam = net.layers[upto].back(lam)
    else:
        lam, const = first
    for k in range(upto - 1, -1, -1):
        m = net.layers[k]
        if isinstance(m, Nonlinear):
            lo, up = bounds[k]
            lam, c = _back_nonlinear(m, lam, lo, up)
            const = const + c
        else:
            const = const + lam @ m.bias
            lam = m.back(lam)
    return _concretize_min(lam, x0, eps, norm, box) + const


def crown_bounds(net: Network, x0: Tensor, eps: float, norm: str = "linf",
                 box: tuple[float, float] | None = None, spec: Tensor | None = None,
                 chunk: int = 2048) -> tuple[dict[int, tuple[Tensor, Tensor]], Tensor | None]:
    """CROWN pre-activation bounds of every nonlinear layer, and the lower bound of ``spec ·
    logits`` over the input set.

    Args:
        net: the chain. x0: the centre, flattened ``(d,)``, float64. eps: the radius.
        norm: ``"linf"`` or ``"l2"``. box: input box or ``None``.
        spec: ``(R, K)`` rows whose products with the logits are lower-bounded, or ``None``.
        chunk: rows per backward pass (memory).

    Returns:
        ``({layer index: (lower, upper) of its input}, lower bounds (R,) or None)``.
    """
    bounds: dict[int, tuple[Tensor, Tensor]] = {}
    for k, m in enumerate(net.layers):
        if not isinstance(m, Nonlinear):
            continue
        prev = net.layers[k - 1]
        A = prev.dense()
        los, ups = [], []
        for rows in torch.arange(prev.n_out).split(chunk):
            sel = A[rows]
            both = _backward_bound(net, k - 1, None, bounds, x0, eps, norm, box,
                                   first=(torch.cat([sel, -sel]),
                                          torch.cat([prev.bias[rows], -prev.bias[rows]])))
            los.append(both[: len(rows)])
            ups.append(-both[len(rows):])
        lo, up = torch.cat(los), torch.cat(ups)
        bounds[k] = (lo, torch.maximum(up, lo))
    out = None
    if spec is not None:
        out = _backward_bound(net, len(net.layers) - 1, spec.to(DT), bounds, x0, eps, norm, box)
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
               box: tuple[float, float] | None) -> bool:
    spec = _spec(net, y, K)
    fn = crown_bounds if method == "crown" else ibp_bounds
    _, low = fn(net, x0, eps, norm, box, spec)
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
                     steps: int = 30, rtol: float = 1e-4, in_shape: Sequence[int] | None = None
                     ) -> Radius:
    """IBP or CROWN certified radius per point, by bisection on ε.

    Args:
        model: the network (or a :class:`Network`). x: inputs ``(B, ...)``.
        y: labels; default the predicted class (the radius of the model's own decision).
        method: ``"ibp"`` or ``"crown"``. norm: ``"linf"`` or ``"l2"``. box: input box.
        hi: initial upper end of the bisection (scalar or per point; default 1); the bracket
            is doubled while ``hi`` is certified.
        steps: bisection steps. rtol: stop when the bracket is this narrow (relative).
        in_shape: per-sample input shape when ``model`` has no ``in_shape``.

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
                return _certified(method, net, xf[i], int(y[i]), K, e, norm, box)
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


def operator_norm(aff: Affine) -> float:
    """A certified upper bound on ‖A‖₂ of an affine map, equal to it up to rounding.

    A lone Conv2d uses :func:`analysis.bounds.peck.rules.conv_operator_norm_certified`; other
    maps the largest eigenvalue of the Gram matrix of the dense ``A`` plus the rounding margin
    of that function.
    """
    mods = [m for m in aff.modules if not isinstance(m, (nn.Identity, nn.Flatten, nn.Dropout))]
    if len(mods) == 1 and isinstance(mods[0], nn.Conv2d) and mods[0].groups == 1:
        from analysis.bounds.peck.rules import conv_operator_norm_certified
        c = mods[0]
        return conv_operator_norm_certified(c.weight, aff.in_shape, c.stride, c.padding)
    A = aff.dense()
    G = A.T @ A if A.shape[1] <= A.shape[0] else A @ A.T
    m, n = max(A.shape), min(A.shape)
    lam = float(torch.linalg.eigvalsh(G)[-1])
    return math.sqrt(max(lam, 0.0) + (m + 10 * n) * _UNIT_ROUNDOFF * float(A.norm()) ** 2)


def lipschitz_constant(net: Network) -> float:
    """Product of the layers' L2 Lipschitz constants (an upper bound of the network's)."""
    L = 1.0
    for m in net.layers:
        if isinstance(m, Affine):
            L *= operator_norm(m)
        elif m.kind == "maxpool":
            cover = torch.bincount(m.windows.flatten()).max()
            L *= math.sqrt(float(cover))
    return L


@torch.no_grad()
def lipschitz_radius(model: nn.Module | Network, x: Tensor, *,
                     in_shape: Sequence[int] | None = None) -> Radius:
    """Tsuzuku et al. 2018: ``(f_y − max_{j≠y} f_j) / (√2 L)`` (L2), ``y`` the predicted class."""
    t0 = time.perf_counter()
    net = model if isinstance(model, Network) else network(model, in_shape or x.shape[1:])
    L = lipschitz_constant(net)
    logits = net.forward(x.flatten(1).to(DT).cpu())
    top2 = logits.topk(2, dim=1).values
    margin = (top2[:, 0] - top2[:, 1]).numpy()
    dt = (time.perf_counter() - t0) / max(len(x), 1)
    return Radius(margin / (math.sqrt(2) * L), np.full(len(x), dt), "lipschitz", "l2")


# =========================================================================== exact distances
@dataclass
class Exact:
    """Exact minimal adversarial distances (or certified brackets) for a batch.

    Attributes:
        lower, upper: float64 ``(B,)``: ``lower ≤ true minimum ≤ upper``.
        status: per point ``"solved"`` (relative gap ≤ gap_tol), ``"gap"`` or ``"clean"``
            (already misclassified: 0).
        x_adv: ``(B, d)`` a misclassified point at distance ``upper``, inside the box.
        seconds: ``(B,)`` solver wall time per point. norm: the norm.
        binaries: ``(B,)`` number of binary variables of the largest program.
    """

    lower: np.ndarray
    upper: np.ndarray
    status: list[str]
    x_adv: Tensor
    seconds: np.ndarray
    norm: str
    binaries: np.ndarray

    @property
    def gap(self) -> np.ndarray:
        """Relative gap ``(upper − lower) / upper`` per point."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.upper > 0, (self.upper - self.lower) / self.upper, 0.0)


def _dist(d: Tensor, norm: str) -> float:
    p = {"l2": 2, "linf": math.inf, "l1": 1}[norm]
    return float(torch.linalg.vector_norm(d, ord=p))


class _Program:
    """A mixed-integer linear description: variables (bounds, integrality) and rows
    ``lo ≤ Σ a_k v_k ≤ hi``."""

    def __init__(self) -> None:
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.integer: list[bool] = []
        self.rows: list[tuple[dict[int, float], float, float]] = []

    def var(self, lb: float, ub: float, integer: bool = False) -> int:
        self.lb.append(lb)
        self.ub.append(ub)
        self.integer.append(integer)
        return len(self.lb) - 1

    def row(self, coef: dict[int, float], lo: float, hi: float) -> None:
        self.rows.append((coef, lo, hi))


def _encode(net: Network, x0: np.ndarray, lo_in: np.ndarray, hi_in: np.ndarray,
            bounds: dict[int, tuple[Tensor, Tensor]]) -> tuple[_Program, list[int], list[dict],
                                                                   int]:
    """Encode the network over ``lo_in ≤ x ≤ hi_in``: returns the program, the input variables,
    the logits as affine expressions ``{var: coef, -1: const}`` and the number of binaries."""
    P = _Program()
    xs = [P.var(float(a), float(b)) for a, b in zip(lo_in, hi_in)]
    h: list[dict[int, float]] = [{v: 1.0} for v in xs]  # current layer as affine expressions
    n_bin = 0

    def affine(m: Affine, h: list[dict[int, float]]) -> list[dict[int, float]]:
        A = m.dense().numpy()
        b = m.bias.numpy()
        out = []
        for r in range(A.shape[0]):
            e: dict[int, float] = {-1: float(b[r])}
            for j in np.flatnonzero(A[r]):
                for v, c in h[j].items():
                    e[v] = e.get(v, 0.0) + float(A[r, j]) * c
            out.append(e)
        return out

    def as_var(e: dict[int, float], lo: float, up: float) -> int:
        if len(e) == 2 and -1 in e and e[-1] == 0.0:
            (v, c), = [(k, c) for k, c in e.items() if k != -1]
            if c == 1.0:
                return v
        v = P.var(lo, up)
        coef = {k: c for k, c in e.items() if k != -1}
        coef[v] = coef.get(v, 0.0) - 1.0
        P.row(coef, -e.get(-1, 0.0), -e.get(-1, 0.0))
        return v

    for k, m in enumerate(net.layers):
        if isinstance(m, Affine):
            h = affine(m, h)
            continue
        lo, up = (t.numpy() for t in bounds[k])
        if m.kind == "relu":
            new = []
            for i, e in enumerate(h):
                if lo[i] >= 0:
                    new.append(e)
                elif up[i] <= 0:
                    new.append({-1: 0.0})
                else:
                    z = as_var(e, float(lo[i]), float(up[i]))
                    y = P.var(0.0, float(up[i]))
                    a = P.var(0.0, 1.0, integer=True)
                    n_bin += 1
                    P.row({y: 1.0, z: -1.0}, 0.0, math.inf)           # y ≥ z
                    P.row({y: 1.0, z: -1.0, a: -float(lo[i])}, -math.inf, -float(lo[i]))
                    P.row({y: 1.0, a: -float(up[i])}, -math.inf, 0.0)  # y ≤ u a
                    new.append({y: 1.0})
            h = new
        elif m.kind == "maxpool":
            win = m.windows.numpy()
            new = []
            for o in range(win.shape[0]):
                w = win[o]
                j = w[np.argmax(lo[w])]
                others = max((up[i] for i in w if i != j), default=-math.inf)
                if lo[j] >= others:
                    new.append(h[j])
                    continue
                zs = [as_var(h[i], float(lo[i]), float(up[i])) for i in w]
                umax = float(up[w].max())
                y = P.var(float(lo[w].max()), umax)
                sel = {}
                for i, z in zip(w, zs):
                    a = P.var(0.0, 1.0, integer=True)
                    n_bin += 1
                    sel[a] = 1.0
                    P.row({y: 1.0, z: -1.0}, 0.0, math.inf)
                    big = umax - float(lo[i])
                    P.row({y: 1.0, z: -1.0, a: big}, -math.inf, big)
                P.row(sel, 1.0, 1.0)
                new.append({y: 1.0})
            h = new
        else:
            raise ValueError("exact distances need a piecewise-linear network (no tanh)")
    return P, xs, h, n_bin


def _objective(P: _Program, xs: list[int], x0: np.ndarray, norm: str, lo_in: np.ndarray,
               hi_in: np.ndarray) -> int | list[int]:
    """Add the distance variables (L∞: t; L1: s_i) and return them."""
    if norm == "linf":
        t = P.var(0.0, float(np.max(np.maximum(hi_in - x0, x0 - lo_in))))
        for v, c in zip(xs, x0):
            P.row({v: 1.0, t: -1.0}, -math.inf, float(c))
            P.row({v: 1.0, t: 1.0}, float(c), math.inf)
        return t
    ss = []
    for v, c, a, b in zip(xs, x0, lo_in, hi_in):
        s = P.var(0.0, float(max(b - c, c - a)))
        P.row({v: 1.0, s: -1.0}, -math.inf, float(c))
        P.row({v: 1.0, s: 1.0}, float(c), math.inf)
        ss.append(s)
    return ss


def _solve_highs(P: _Program, obj: dict[int, float], time_limit: float
                 ) -> tuple[float, float, np.ndarray | None]:
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    n = len(P.lb)
    c = np.zeros(n)
    for v, w in obj.items():
        c[v] = w
    r, cidx, val, lo, hi = [], [], [], [], []
    for i, (coef, a, b) in enumerate(P.rows):
        for v, w in coef.items():
            r.append(i)
            cidx.append(v)
            val.append(w)
        lo.append(a)
        hi.append(b)
    A = coo_matrix((val, (r, cidx)), shape=(len(P.rows), n)).tocsr()
    res = milp(c, constraints=LinearConstraint(A, lo, hi), integrality=np.array(P.integer, int),
               bounds=Bounds(P.lb, P.ub),
               options={"time_limit": time_limit, "mip_rel_gap": 1e-6, "presolve": True})
    if res.x is None:
        if res.status == 2:  # infeasible: no adversarial of this class in the domain
            return math.inf, math.inf, None
        dual = getattr(res, "mip_dual_bound", None)
        return (float(dual) if dual is not None and np.isfinite(dual) else 0.0), math.inf, None
    dual = getattr(res, "mip_dual_bound", None)
    dual = float(res.fun) if res.status == 0 else (float(dual) if dual is not None else 0.0)
    return min(dual, float(res.fun)), float(res.fun), res.x


def _solve_scip(P: _Program, xs: list[int], x0: np.ndarray, time_limit: float, scale: float
                ) -> tuple[float, float, np.ndarray | None]:
    """Minimise ``Σ ((x_i − x0_i) / scale)²``; returns the distances (not squared).

    ``scale`` (the known distance U) makes the optimum about 1, so that SCIP's absolute
    feasibility tolerance on the quadratic constraint (set to 1e-7) is a relative one.
    """
    from pyscipopt import Model, quicksum

    M = Model()
    M.hideOutput()
    M.setParam("limits/time", float(time_limit))
    M.setParam("limits/gap", 1e-7)
    M.setParam("numerics/feastol", 1e-7)
    M.setParam("randomization/randomseedshift", 0)
    M.setParam("parallel/maxnthreads", 1)
    vs = [M.addVar(lb=None if not np.isfinite(a) else a, ub=None if not np.isfinite(b) else b,
                   vtype="B" if integ else "C")
          for a, b, integ in zip(P.lb, P.ub, P.integer)]
    for coef, a, b in P.rows:
        expr = quicksum(w * vs[v] for v, w in coef.items())
        if a == b:
            M.addCons(expr == a)
        else:
            if np.isfinite(a):
                M.addCons(expr >= a)
            if np.isfinite(b):
                M.addCons(expr <= b)
    t = M.addVar(lb=0.0, ub=None)
    w = 1.0 / scale
    M.addCons(quicksum((w * vs[v] - w * float(c)) * (w * vs[v] - w * float(c))
                       for v, c in zip(xs, x0)) <= t)
    M.setObjective(t, "minimize")
    try:
        M.optimize()
    except Exception:  # SCIP's LP solver gave up (numerical trouble): nothing certified
        return 0.0, math.inf, None
    status = M.getStatus()
    if status == "infeasible":
        return math.inf, math.inf, None
    dual = max(float(M.getDualbound()), 0.0)
    if M.getNSols() == 0:
        return scale * math.sqrt(dual), math.inf, None
    sol = M.getBestSol()
    x = np.array([sol[v] for v in vs])
    primal = float(M.getObjVal())
    return scale * math.sqrt(min(dual, primal)), scale * math.sqrt(primal), x


def _verified_point(net: Network, x0: Tensor, x: Tensor, y: int, lo: Tensor, hi: Tensor
                    ) -> Tensor | None:
    """``x`` or a point just beyond it on the ray from ``x0``, clipped to the box, that the model
    misclassifies (float64), or ``None``."""
    d = x - x0
    for s in (1.0, 1 + 1e-9, 1 + 1e-7, 1 + 1e-5, 1 + 1e-3):
        z = torch.minimum(torch.maximum(x0 + s * d, lo), hi)
        if int(net.forward(z[None]).argmax(1)) != y:
            return z
    return None


@torch.no_grad()
def exact_distance(model: nn.Module | Network, x: Tensor, x_known: Tensor, *, norm: str = "l2",
                   box: tuple[float, float] | None = None, time_limit: float = 10.0,
                   gap_tol: float = 1e-4, in_shape: Sequence[int] | None = None) -> Exact:
    """Minimal adversarial distance of the predicted class at each point (see module docstring).

    Args:
        model: a ReLU / max-pool network. x: points ``(B, ...)``.
        x_known: ``(B, ...)`` a misclassified point per sample (e.g. the attack's
            ``x_adv``): its distance ``U`` bounds the search domain ``[x₀ − U, x₀ + U] ∩ box``
            and is the upper end of the bracket until the solver finds a closer point.
        norm: ``"l2"`` (SCIP), ``"linf"`` or ``"l1"`` (HiGHS).
        box: input box or ``None``. time_limit: seconds per target class.
        gap_tol: relative gap under which a point counts as ``"solved"``.
        in_shape: per-sample input shape when ``model`` has no ``in_shape``.

    Returns:
        :class:`Exact`.

    Raises:
        ValueError: ``x_known[i]`` is not misclassified, or a tanh layer.
    """
    net = model if isinstance(model, Network) else network(model, in_shape or x.shape[1:])
    if not net.piecewise_linear:
        raise ValueError("exact distances need a piecewise-linear network (no tanh)")
    if norm not in ("l2", "linf", "l1"):
        raise ValueError(f"norm must be 'l2', 'linf' or 'l1', got {norm!r}")
    xf = x.flatten(1).to(DT).cpu()
    xk = x_known.flatten(1).to(DT).cpu()
    logits = net.forward(xf)
    pred = logits.argmax(1)
    K = logits.shape[1]
    B = len(xf)
    lower, upper = np.zeros(B), np.zeros(B)
    secs, nbin = np.zeros(B), np.zeros(B, dtype=int)
    status: list[str] = []
    x_adv = xf.clone()
    for i in range(B):
        t0 = time.perf_counter()
        x0, y = xf[i], int(pred[i])
        if int(net.forward(xk[i][None]).argmax(1)) == y:
            raise ValueError(f"x_known[{i}] is classified as the point itself")
        lo_b, hi_b = _box(x0, box)
        U = _dist(xk[i] - x0, norm)
        lo_in = torch.maximum(lo_b, x0 - U)
        hi_in = torch.minimum(hi_b, x0 + U)
        best_u, best_x = U, xk[i].clone()
        low = U
        # big-M from CROWN over the domain box (an L∞ ball of radius U intersected with box)
        bounds, spec_low = _domain_bounds(net, lo_in, hi_in, _spec(net, y, K))
        others = [j for j in range(K) if j != y]
        for r, j in enumerate(others):
            if float(spec_low[r]) > 0:  # no class-j point in the domain
                continue
            P, xs, logit_expr, n_b = _encode(net, x0.numpy(), lo_in.numpy(), hi_in.numpy(),
                                             bounds)
            nbin[i] = max(nbin[i], n_b)
            coef: dict[int, float] = {}
            for e, s in ((logit_expr[j], 1.0), (logit_expr[y], -1.0)):
                for v, c in e.items():
                    coef[v] = coef.get(v, 0.0) + s * c
            const = coef.pop(-1, 0.0)
            P.row(coef, -const, math.inf)                 # f_j − f_y ≥ 0
            if norm == "l2":
                lo_j, up_j, sol = _solve_scip(P, xs, x0.numpy(), time_limit, max(U, 1e-12))
            else:
                obj_vars = _objective(P, xs, x0.numpy(), norm, lo_in.numpy(), hi_in.numpy())
                obj = {obj_vars: 1.0} if isinstance(obj_vars, int) else dict.fromkeys(obj_vars, 1.0)
                lo_j, up_j, sol = _solve_highs(P, obj, time_limit)
            low = min(low, lo_j)
            if sol is not None:
                cand = _verified_point(net, x0, torch.as_tensor(sol[xs], dtype=DT), y, lo_b, hi_b)
                if cand is not None:
                    dc = _dist(cand - x0, norm)
                    if dc < best_u:
                        best_u, best_x = dc, cand
        low = min(low, best_u)
        lower[i], upper[i] = low, best_u
        x_adv[i] = best_x
        ok = best_u - low <= gap_tol * max(best_u, 1e-12)
        status.append("solved" if ok else "gap")
        secs[i] = time.perf_counter() - t0
    return Exact(lower, upper, status, x_adv, secs, norm, nbin)


def _domain_bounds(net: Network, lo_in: Tensor, hi_in: Tensor, spec: Tensor
                   ) -> tuple[dict[int, tuple[Tensor, Tensor]], Tensor]:
    """CROWN bounds over the box ``[lo_in, hi_in]`` (an L∞ ball around its centre clipped to
    that box)."""
    centre = (lo_in + hi_in) / 2
    half = float(((hi_in - lo_in) / 2).max())
    bounds, low = crown_bounds(net, centre, half, "linf", (lo_in, hi_in), spec)
    return bounds, low
