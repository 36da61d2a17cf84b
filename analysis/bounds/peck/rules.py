"""Peck (2017): layer-wise lower bounds on the L2 norm of adversarial perturbations.

Thesis numbering (the summary's Thm 1-6 = thesis Thm 4.2, 5.1, 5.3, 5.6, 5.9; eq 7 = 5.13).
A bound is composed backwards from the output (Alg 5.1): the linear/softmax layer gives
``κ_out = δ(h)`` (Thm 3.6, distance to the nearest decision hyperplane of the feature vector
``h``), then every layer ``l`` turns the bound ``κ_{l+1}`` on perturbations of its *output*
into a bound ``κ_l`` on perturbations of its *input*.

Every rule takes a ``variant`` (spec 002 §2; errata E1-E8):

* ``"published"``: the formula as printed in the thesis (several are invalid, see errata).
* ``"corrected"``: the thesis's own argument with the algebra fixed (tanh'' constant,
  ``⌈q/s⌉‖W‖_F`` for convolutions, ...). Where the argument has no valid repair it falls back to
  ``"sound"``: ReLU blocks (no valid second-derivative constant), batch norm and LRN (their
  quadratics bound the norm growth, not the displacement; see :func:`bn_rule`, :func:`lrn_rule`).
* ``"sound"``: ``κ_l = κ_{l+1} / Lip(φ_l)``, valid under the displacement definition
  ``‖φ(X+R) − φ(X)‖ ≥ κ ⇒ ‖R‖ ≥ κ / Lip(φ)``.

All computations are float64; inputs in the model's own units (pixels in [0, 1]).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

VARIANTS = ("published", "corrected", "sound")
DT = torch.float64


def _check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {list(VARIANTS)}, got {variant!r}")
    return variant


# =========================================================================== 2.1 linear layer


@dataclass
class LinearBound:
    """Distance of ``h`` to the nearest decision hyperplane of ``argmax(W h + b)``.

    Attributes:
        delta: ``(B,)`` δ(h) = min_{j≠c} (z_c − z_j)/‖w_c − w_j‖ (Thm 3.6).
        pred: ``(B,)`` predicted class c.
        target: ``(B,)`` the minimising class j.
        r: ``(B, n)`` the minimal perturbation r_j = −(z_c − z_j)/‖w_c − w_j‖² (w_c − w_j).
    """

    delta: Tensor
    pred: Tensor
    target: Tensor
    r: Tensor


def linear_bound(W: Tensor, b: Tensor | None, h: Tensor) -> LinearBound:
    """Thm 3.6 / eqs 3.12-3.13: exact L2 distance to the decision boundary of a linear classifier.

    Args:
        W: ``(K, n)`` weights (K ≥ 2). b: ``(K,)`` biases or None. h: ``(B, n)`` features.

    Returns:
        :class:`LinearBound` (float64). The value is *exact* for argmax-linear classifiers
        (erratum E10: the distance to the complement of a polyhedral cell is the minimum over its
        facet hyperplanes), not only a lower bound.
    """
    W = torch.as_tensor(W).to(DT)
    h = torch.as_tensor(h).to(DT)
    if W.ndim != 2 or W.shape[0] < 2:
        raise ValueError(f"W must be (K, n) with K >= 2, got {tuple(W.shape)}")
    if h.ndim != 2 or h.shape[1] != W.shape[1]:
        raise ValueError(f"h must be (B, {W.shape[1]}), got {tuple(h.shape)}")
    z = h @ W.T
    if b is not None:
        z = z + torch.as_tensor(b).to(DT)
    c = z.argmax(1)
    dw = W[c][:, None, :] - W[None, :, :]  # (B, K, n): w_c - w_j
    nrm = dw.norm(dim=2)
    gap = z.gather(1, c[:, None]) - z  # z_c - z_j >= 0
    ratio = gap / nrm.clamp_min(1e-300)
    ratio = ratio.masked_fill(F.one_hot(c, W.shape[0]).bool() | (nrm == 0), math.inf)
    delta, j = ratio.min(1)
    ar = torch.arange(h.shape[0])
    r = -(gap[ar, j] / nrm[ar, j].clamp_min(1e-300) ** 2)[:, None] * dw[ar, j]
    return LinearBound(delta=delta, pred=c, target=j, r=r)


def identity_output_bound(z: Tensor) -> Tensor:
    """δ for logits read by the identity 'linear layer' (NIN-style nets): min_j (z_c − z_j)/√2."""
    z = torch.as_tensor(z).to(DT)
    k = z.shape[1]
    return linear_bound(torch.eye(k, dtype=DT), None, z).delta


def binary_linear_bound(w: Tensor, b: float, x: Tensor) -> Tensor:
    """Binary case of Thm 3.2: |w·x + b| / ‖w‖ (the thesis's |2w·x + b|/‖2w‖ is a typo, E9)."""
    w = torch.as_tensor(w).to(DT)
    x = torch.as_tensor(x).to(DT)
    return (x @ w + b).abs() / w.norm()


def fgs_linear(W: Tensor, b: Tensor, x: Tensor, t_max: float = math.inf) -> tuple[Tensor, Tensor]:
    """Alg 2.1 on a linear softmax classifier, solved exactly along the FGS ray.

    The cross-entropy gradient at the *predicted* label c is Σ_j p_j w_j − w_c; FGS moves along
    u = sign(∇). The class region is convex, so the label changes exactly once along the ray,
    at t* = min over j with (w_j − w_c)·u > 0 of (z_c − z_j)/((w_j − w_c)·u); bisection on
    [0, t_max] converges to it (there is nothing to approximate).

    Args:
        W: ``(K, n)``. b: ``(K,)``. x: ``(B, n)``. t_max: search range M of Alg 2.1 (ε units).

    Returns:
        ``(eps, norm)``: ε* and the L2 norm ε*‖u‖₂ of the FGS perturbation, ``inf`` where the
        label does not change within ``t_max``.
    """
    W, b, x = (torch.as_tensor(a).to(DT) for a in (W, b, x))
    z = x @ W.T + b
    c = z.argmax(1)
    p = torch.softmax(z, 1)
    g = p @ W - W[c]
    u = g.sign()
    slope = u @ W.T - (u * W[c]).sum(1, keepdim=True)  # (w_j - w_c)·u
    gap = z.gather(1, c[:, None]) - z
    t = torch.where(slope > 0, gap / slope.clamp_min(1e-300), math.inf)
    t = t.masked_fill(F.one_hot(c, W.shape[0]).bool(), math.inf).min(1).values
    t = torch.where(t <= t_max, t, math.inf)
    return t, t * u.norm(dim=1)


# =========================================================================== 2.2 MLP (Taylor)


@dataclass(frozen=True)
class ActivationConstants:
    """Bounds (A, B) on |g'| and |g''| (Table 4.1); ``B_published`` as printed."""

    A: float
    B_true: float | None
    B_published: float


ACTIVATIONS: dict[str, ActivationConstants] = {
    # sigmoid: g'' max = 1/(6√3); printed (5−3√3)/(30√3−54), which is the same number.
    "sigmoid": ActivationConstants(0.25, 1 / (6 * math.sqrt(3)),
                                   (5 - 3 * math.sqrt(3)) / (30 * math.sqrt(3) - 54)),
    # tanh: printed 0.3849; the true sup |tanh''| is 4/(3√3) ≈ 0.7698 (E4).
    "tanh": ActivationConstants(1.0, 4 / (3 * math.sqrt(3)), 0.3849),
    "softplus": ActivationConstants(1.0, 0.25, 0.25),
    # ReLU: g'' = 0 a.e. but g' jumps; the experiments use B = 1 ("option 3", §4.3.1; E5).
    "relu": ActivationConstants(1.0, None, 1.0),
}


def activation_constants(act: str, variant: str) -> tuple[float, float]:
    """(A, B) of Table 4.1 for ``variant`` ``"published"`` or ``"corrected"``.

    Raises:
        ValueError: unknown activation, or ``"corrected"`` for ReLU (no valid B exists).
    """
    _check_variant(variant)
    if act not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {act!r}")
    c = ACTIVATIONS[act]
    if variant == "published":
        return c.A, c.B_published
    if c.B_true is None:
        raise ValueError(f"no valid second-derivative constant for {act!r}; use variant='sound'")
    return c.A, c.B_true


def _act_fn(act: str):
    return {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "softplus": F.softplus,
            "relu": torch.relu}[act]


def _act_grad(act: str, z: Tensor) -> Tensor:
    if act == "tanh":
        return 1 - torch.tanh(z) ** 2
    if act == "sigmoid":
        s = torch.sigmoid(z)
        return s * (1 - s)
    if act == "softplus":
        return torch.sigmoid(z)
    if act == "relu":
        return (z > 0).to(z.dtype)
    raise ValueError(f"unknown activation {act!r}")


def alg41(weights: Sequence[Tensor], A: float | Sequence[float], B: float | Sequence[float]
          ) -> tuple[float, float]:
    """Alg 4.1: layer-wise constants (M, N) bounding second and first input derivatives.

    ``M₀ = 0, N₀ = 1``; per layer ``s = max_i Σ_k |V[i,k]|``, ``M_l = B N_{l−1}² s² + A M_{l−1} s``,
    ``N_l = A N_{l−1} s``. M bounds Σ_{k,k'} |∂²h_i/∂x_k∂x_k'| (the quantity the proof of
    Thm 4.2 needs; erratum E3), not only each entry.

    Args:
        weights: hidden-layer matrices ``V_l`` of shape ``(out, in)``, first layer first.
        A, B: activation constants (one value or one per layer).

    Returns:
        ``(M, N)`` as floats.
    """
    L = len(weights)
    As = [A] * L if isinstance(A, (int, float)) else list(A)
    Bs = [B] * L if isinstance(B, (int, float)) else list(B)
    M, N = 0.0, 1.0
    for V, a, bb in zip(weights, As, Bs, strict=True):
        s = float(torch.as_tensor(V).to(DT).abs().sum(1).max())
        M, N = bb * N * N * s * s + a * M * s, a * N * s
    return M, N


def taylor_bound(delta: Tensor, jnorm: Tensor, M: float | Tensor, n: int) -> Tensor:
    """Thm 4.2: ‖r‖ ≥ (√(‖J‖² + 2M√n δ) − ‖J‖)/(M√n), in the stable form 2δ/(‖J‖ + √(…)).

    Tends to δ/‖J‖ as M → 0. Returns ``inf`` where both ‖J‖ and M vanish (with δ > 0).
    """
    delta = torch.as_tensor(delta).to(DT)
    jnorm = torch.as_tensor(jnorm).to(DT)
    M = torch.as_tensor(M).to(DT)
    den = jnorm + torch.sqrt(jnorm ** 2 + 2 * M * math.sqrt(n) * delta)
    return torch.where(den > 0, 2 * delta / den.clamp_min(1e-300), math.inf)


@dataclass
class MLPBound:
    """Result of :func:`mlp_bound`: bound ``(B,)`` and its ingredients."""

    bound: Tensor
    delta: Tensor
    jnorm: Tensor
    M: float
    pred: Tensor


def mlp_forward(layers: Sequence[tuple[Tensor, Tensor]], act: str, x: Tensor,
                jacobian: bool = True) -> tuple[Tensor, Tensor | None]:
    """Last hidden layer h_L(x) and its input Jacobian J (float64, dense).

    Args:
        layers: hidden layers ``(V_l (out, in), b_l (out,))``. act: activation name. x: ``(B, d)``.

    Returns:
        ``(h, J)`` with shapes ``(B, n)`` and ``(B, n, d)`` (``J`` None if not ``jacobian``).
    """
    h = torch.as_tensor(x).to(DT)
    J = None
    g = _act_fn(act)
    for V, b in layers:
        V, b = torch.as_tensor(V).to(DT), torch.as_tensor(b).to(DT)
        z = h @ V.T + b
        if jacobian:
            J = V.expand(len(h), -1, -1) if J is None else V @ J
            J = _act_grad(act, z)[:, :, None] * J
        h = g(z)
    return h, J


def mlp_bound(layers: Sequence[tuple[Tensor, Tensor]], out: tuple[Tensor, Tensor], act: str,
              x: Tensor, variant: str = "corrected") -> MLPBound:
    """Thm 4.2 with Alg 4.1 (``published``/``corrected``) or the Lipschitz product (``sound``).

    Args:
        layers: hidden layers ``(V_l, b_l)``. out: output layer ``(W, b)``. act: activation.
        x: ``(B, d)`` inputs. variant: see module docstring; ``corrected`` with ReLU falls back
            to ``sound``.

    Returns:
        :class:`MLPBound`.
    """
    _check_variant(variant)
    h, J = mlp_forward(layers, act, x)
    lb = linear_bound(out[0], out[1], h)
    n = h.shape[1]
    if variant == "corrected" and ACTIVATIONS[act].B_true is None:
        variant = "sound"
    if variant == "sound":
        A = ACTIVATIONS[act].A
        lip = 1.0
        for V, _ in layers:
            lip *= A * float(torch.linalg.matrix_norm(torch.as_tensor(V).to(DT), ord=2))
        jn = torch.full_like(lb.delta, lip)
        return MLPBound(lb.delta / lip, lb.delta, jn, 0.0, lb.pred)
    A, B = activation_constants(act, variant)
    M, _ = alg41([V for V, _ in layers], A, B)
    jn = torch.linalg.matrix_norm(J, ord=2)
    return MLPBound(taylor_bound(lb.delta, jn, M, n), lb.delta, jn, M, lb.pred)


def linear_layers(model: nn.Module) -> list[tuple[Tensor, Tensor]]:
    """``(weight, bias)`` of every ``nn.Linear`` of ``model`` in module order (float64 copies)."""
    out = []
    for m in model.modules():
        if isinstance(m, nn.Linear):
            b = m.bias if m.bias is not None else torch.zeros(m.out_features)
            out.append((m.weight.detach().to(DT).cpu(), b.detach().to(DT).cpu()))
    if len(out) < 2:
        raise ValueError("model needs at least one hidden nn.Linear and an output nn.Linear")
    return out


def model_mlp_bound(model: nn.Module, act: str, x: Tensor, variant: str) -> MLPBound:
    """:func:`mlp_bound` for an MLP module ``Linear, act, …, Linear`` (e.g. ``models.build('mlp')``)."""
    ls = linear_layers(model)
    return mlp_bound(ls[:-1], ls[-1], act, torch.as_tensor(x).reshape(len(x), -1), variant)


# =========================================================================== 2.3 convolution


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def conv_frobenius_bound(weight: Tensor, stride=1) -> float:
    """Valid upper bound √(⌈q_h/s_h⌉⌈q_w/s_w⌉)·‖W‖_F on ‖T_W‖₂ (each pixel sits in at most
    ⌈q/s⌉² windows; corrected Lemma A.4, erratum E2)."""
    q = weight.shape[-2:]
    s = _pair(stride)
    cov = math.ceil(q[0] / s[0]) * math.ceil(q[1] / s[1])
    return math.sqrt(cov) * float(torch.as_tensor(weight).detach().to(DT).norm())


def conv_operator_norm(weight: Tensor, input_shape: Sequence[int], stride=1, padding=0,
                       iters: int = 100, seed: int = 0) -> float:
    """‖T_W‖₂ of the (bias-free) convolution ``R ↦ W ⋆_s R`` by power iteration on TᵀT.

    Uses ``conv2d``/``conv_transpose2d`` (float64), so stride and zero padding are included.

    Args:
        weight: ``(k, c, q, q)``. input_shape: ``(c, H, W)``. stride, padding: as in conv2d.
        iters: power iterations (≥ 50 recommended). seed: start vector seed.

    Returns:
        The estimate, from below (not a bound: the ``sound`` rule uses
        :func:`conv_operator_norm_certified`).
    """
    W = torch.as_tensor(weight).detach().to(DT).cpu()
    c, H, Wd = (int(v) for v in input_shape)
    if W.shape[1] != c:
        raise ValueError(f"weight has {W.shape[1]} input channels, input has {c}")
    s, p = _pair(stride), _pair(padding)
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(1, c, H, Wd, generator=g, dtype=DT)
    ho = (H + 2 * p[0] - W.shape[2]) // s[0] + 1
    wo = (Wd + 2 * p[1] - W.shape[3]) // s[1] + 1
    op = (H - ((ho - 1) * s[0] - 2 * p[0] + W.shape[2]), Wd - ((wo - 1) * s[1] - 2 * p[1] + W.shape[3]))
    sig2 = 0.0
    for _ in range(iters):
        v = v / v.norm()
        u = F.conv2d(v, W, stride=s, padding=p)
        w = F.conv_transpose2d(u, W, stride=s, padding=p, output_padding=op)
        sig2 = float((v * w).sum())
        v = w
    return math.sqrt(max(sig2, 0.0))


def _conv_geometry(weight: Tensor, input_shape: Sequence[int], stride, padding
                   ) -> tuple[tuple[int, int, int], tuple[int, int], tuple[int, int],
                              tuple[int, int]]:
    c, H, Wd = (int(v) for v in input_shape)
    if weight.shape[1] != c:
        raise ValueError(f"weight has {weight.shape[1]} input channels, input has {c}")
    s, p = _pair(stride), _pair(padding)
    ho = (H + 2 * p[0] - weight.shape[2]) // s[0] + 1
    wo = (Wd + 2 * p[1] - weight.shape[3]) // s[1] + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"kernel {tuple(weight.shape[2:])} larger than the padded input")
    return (c, H, Wd), s, p, (ho, wo)


def conv_dense_matrix(weight: Tensor, input_shape: Sequence[int], stride=1, padding=0) -> Tensor:
    """The matrix ``T_W`` of the bias-free convolution ``R ↦ conv2d(R, W, stride, padding)``.

    Built by placing the kernel entries at their (row, column) positions, so every entry is a
    weight copied exactly (no arithmetic).

    Args:
        weight: ``(k, c, q_h, q_w)``. input_shape: ``(c, H, W)``. stride, padding: as in conv2d.

    Returns:
        ``(k·H_out·W_out, c·H·W)`` float64 matrix, rows and columns in C order.
    """
    W = torch.as_tensor(weight).detach().to(DT).cpu()
    (c, H, Wd), s, p, (ho, wo) = _conv_geometry(W, input_shape, stride, padding)
    k, _, qh, qw = W.shape
    kk, cc, uu, vv, ii, jj = torch.meshgrid(
        torch.arange(k), torch.arange(c), torch.arange(qh), torch.arange(qw), torch.arange(ho),
        torch.arange(wo), indexing="ij")
    r_in = ii * s[0] - p[0] + uu
    c_in = jj * s[1] - p[1] + vv
    ok = (r_in >= 0) & (r_in < H) & (c_in >= 0) & (c_in < Wd)
    rows = (kk * ho + ii) * wo + jj
    cols = (cc * H + r_in) * Wd + c_in
    T = torch.zeros(k * ho * wo, c * H * Wd, dtype=DT)
    T[rows[ok], cols[ok]] = W[kk[ok], cc[ok], uu[ok], vv[ok]]
    return T


_UNIT_ROUNDOFF = float(torch.finfo(DT).eps) / 2
_CONV_NORM_MEMO: dict[tuple, float] = {}


def conv_schur_bound(weight: Tensor, input_shape: Sequence[int], stride=1, padding=0) -> float:
    """Schur test ‖T_W‖₂ ≤ √(‖T_W‖₁‖T_W‖_∞) (max column and row sums of |T_W|), computed
    exactly by convolving |W| with ones (a certified upper bound for any shape)."""
    W = torch.as_tensor(weight).detach().to(DT).cpu().abs()
    (c, H, Wd), s, p, (ho, wo) = _conv_geometry(W, input_shape, stride, padding)
    rows = F.conv2d(torch.ones(1, c, H, Wd, dtype=DT), W, stride=s, padding=p)
    op = (H - ((ho - 1) * s[0] - 2 * p[0] + W.shape[2]),
          Wd - ((wo - 1) * s[1] - 2 * p[1] + W.shape[3]))
    cols = F.conv_transpose2d(torch.ones(1, W.shape[0], ho, wo, dtype=DT), W, stride=s,
                              padding=p, output_padding=op)
    n = c * W.shape[2] * W.shape[3] * W.shape[0]
    return math.sqrt(float(rows.max()) * float(cols.max())) * (1 + 2 * n * _UNIT_ROUNDOFF)


def dense_operator_norm_certified(T: Tensor) -> float:
    """A certified upper bound on ‖T‖₂ of a dense float64 matrix, equal to it up to rounding:
    ``√(λ̂ + (m + 10 n) u ‖T‖_F²)`` with λ̂ the largest eigenvalue of the Gram matrix on the
    smaller side (the rounding margin of :func:`conv_operator_norm_certified`)."""
    G = T.T @ T if T.shape[1] <= T.shape[0] else T @ T.T
    m, n = max(T.shape), min(T.shape)
    lam = float(torch.linalg.eigvalsh(G)[-1])
    return math.sqrt(max(lam, 0.0) + (m + 10 * n) * _UNIT_ROUNDOFF * float(T.norm()) ** 2)


def conv_operator_norm_certified(weight: Tensor, input_shape: Sequence[int], stride=1,
                                 padding=0, max_dense: int = 20_000_000) -> float:
    """A certified upper bound on ‖T_W‖₂, equal to it up to floating-point error.

    * 1×1 kernels: ``T_W = W₀ ⊗ P`` with ``P`` a selection of pixels (stride, zero padding
      only add zero rows), so ‖T_W‖₂ = ‖W₀‖₂ (``W₀`` the ``k × c`` matrix), exactly when some
      output reads an input pixel (else ``T_W = 0`` and ‖W₀‖₂ is still an upper bound).
    * Otherwise, when ``T_W`` has at most ``max_dense`` entries: the dense matrix
      (:func:`conv_dense_matrix`, exact), the Gram matrix ``G`` on its smaller side and its
      largest eigenvalue λ̂ (``torch.linalg.eigvalsh``, float64). Rounding: the product errs by at
      most γ_m ‖|T|‖_F² = γ_m ‖T‖_F² in 2-norm (m the inner dimension, γ_m ≈ m u) and a
      backward-stable symmetric eigensolver by p(n) u ‖G‖₂ ≤ p(n) u ‖T‖_F² (LAPACK states only
      that p(n) is a modest function of n; we take p(n) = 10 n); so we add
      ``(m + 10 n) u ‖T‖_F²`` to λ̂ (u = 2⁻⁵³), a relative margin below 1e-8 on these nets.
    * Larger operators: the Schur test :func:`conv_schur_bound` (valid, looser).

    The Schur route is capped by the coverage bound :func:`conv_frobenius_bound`; the exact
    routes are not, so that ``‖T_W‖₂ ≤ ⌈q/s⌉‖W‖_F`` stays a check of this function. Results are
    memoised in-process by the exact weight bytes, shape, stride and padding.

    Args:
        weight: ``(k, c, q_h, q_w)``. input_shape: ``(c, H, W)``. stride, padding: as in conv2d.
        max_dense: largest number of entries of ``T_W`` for the dense route.

    Returns:
        The bound (float, same units as W).
    """
    W = torch.as_tensor(weight).detach().to(DT).cpu().contiguous()
    (c, H, Wd), s, p, (ho, wo) = _conv_geometry(W, input_shape, stride, padding)
    key = (W.numpy().tobytes(), tuple(W.shape), (c, H, Wd), s, p, max_dense)
    if key in _CONV_NORM_MEMO:
        return _CONV_NORM_MEMO[key]
    n_out, n_in = W.shape[0] * ho * wo, c * H * Wd
    if W.shape[2:] == (1, 1):
        W0 = W[:, :, 0, 0]
        val = float(torch.linalg.matrix_norm(W0, ord=2))
        val *= 1 + 10 * max(W0.shape) * _UNIT_ROUNDOFF  # SVD backward error, as above
    elif n_out * n_in <= max_dense:
        val = dense_operator_norm_certified(conv_dense_matrix(W, (c, H, Wd), s, p))
    else:
        val = min(conv_schur_bound(W, (c, H, Wd), s, p), conv_frobenius_bound(W, s))
    _CONV_NORM_MEMO[key] = val
    return val


def conv_lipschitz(weight: Tensor, input_shape: Sequence[int], stride=1, padding=0,
                   max_dense: int = 20_000_000) -> float:
    """Certified upper bound on ‖T_W‖₂ for the ``sound`` rule
    (:func:`conv_operator_norm_certified`; no longer power iteration × 1.01, an estimate from
    below)."""
    return conv_operator_norm_certified(weight, input_shape, stride, padding, max_dense)


def conv_rule(kappa: Tensor, weight: Tensor, variant: str, *, input_shape: Sequence[int],
              stride=1, padding=0) -> Tensor:
    """Thm 5.1 (eqs 5.1-5.2): bound on the input of a convolution (+ any 1-Lipschitz activation).

    ``published``: κ/‖W‖_F (invalid when the stride is smaller than the kernel, E2);
    ``corrected``: κ/(⌈q/s⌉‖W‖_F); ``sound``: κ/‖T_W‖₂ with ‖T_W‖₂ from the certified bound
    :func:`conv_lipschitz` (exact up to rounding on LeNet-5 and NIN-lite shapes).
    """
    _check_variant(variant)
    kappa = torch.as_tensor(kappa).to(DT)
    if variant == "published":
        return kappa / float(torch.as_tensor(weight).to(DT).norm())
    if variant == "corrected":
        return kappa / conv_frobenius_bound(weight, stride)
    return kappa / conv_lipschitz(weight, input_shape, stride, padding)


# =========================================================================== 2.4 pooling


def pool_lipschitz(kind: str, q: int, s: int, p: float | None = None,
                   m: int | None = None) -> float:
    """Lipschitz constant (L2) of a q×q pooling with stride s.

    max: ⌈q/s⌉ (1 when s ≥ q); average: ⌈q/s⌉/q; global average over m cells: 1/√m;
    L_p: ⌈q/s⌉·q^{max(0, 2/p − 1)}.
    """
    if kind == "global_avg":
        if not m or m < 1:
            raise ValueError("global average pooling needs m >= 1 cells")
        return 1 / math.sqrt(m)
    if q < 1 or s < 1:
        raise ValueError(f"window q and stride s must be >= 1, got q={q}, s={s}")
    cov = math.ceil(q / s)
    if kind == "max":
        return float(cov)
    if kind == "avg":
        return cov / q
    if kind == "lp":
        if p is None or p < 1:
            raise ValueError("L_p pooling needs p >= 1")
        return cov * q ** max(0.0, 2 / p - 1)
    raise ValueError(f"kind must be 'max', 'avg', 'lp' or 'global_avg', got {kind!r}")


def pool_rule(kappa: Tensor, kind: str, variant: str, *, q: int, s: int, t: int,
              p: float | None = None, m: int | None = None) -> Tensor:
    """Thm 5.3 (eqs 5.3-5.8): bound on the input of a pooling layer with output width t.

    ``published``: κ/t (max, average; global average has t = 1), κ/(t q^{2/p}) (L_p);
    ``sound``: κ/Lip; ``corrected``: κ/max(t', Lip) where t' is the published divisor (the
    published rule is valid, only loose, when t' ≥ Lip; erratum E8).
    """
    _check_variant(variant)
    kappa = torch.as_tensor(kappa).to(DT)
    lip = pool_lipschitz(kind, q, s, p, m)
    if kind == "lp":
        pub = t * q ** (2 / p)
    elif kind == "global_avg":
        pub = 1.0
    else:
        pub = float(t)
    if variant == "published":
        return kappa / pub
    if variant == "sound":
        return kappa / lip
    return kappa / max(pub, lip)


# =========================================================================== 2.5 batch norm


def bn_deltas(kappa: Tensor, y: Tensor, a: Tensor) -> Tensor:
    """Closed form of Lemma 5.5: δ_j = (√(y_j² + ψ) − |y_j|)/|a_j|, ψ = (2κ‖y‖ + κ²)/d.

    Args:
        kappa: ``(B,)``. y: ``(B, d)`` BN outputs. a: ``(d,)`` or ``(B, d)`` slopes γ_j/σ_j.

    Returns:
        ``(B, d)``; ``inf`` where a_j = 0.
    """
    kappa = torch.as_tensor(kappa).to(DT).reshape(-1, 1)
    y = torch.as_tensor(y).to(DT)
    a = torch.as_tensor(a).to(DT).expand_as(y)
    d = y.shape[1]
    psi = (2 * kappa * y.norm(dim=1, keepdim=True) + kappa ** 2) / d
    num = torch.sqrt(y ** 2 + psi) - y.abs()
    return torch.where(a != 0, num / a.abs().clamp_min(1e-300), math.inf)


def bn_deltas_printed(kappa: Tensor, x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor,
                      var: Tensor, eps: float) -> Tensor:
    """Lemma 5.5 as printed: δ_j = min(|ρ₁|, |ρ₂|) with φ, χ, ψ of Thm 5.6 (for tests)."""
    x = torch.as_tensor(x).to(DT)
    gamma, beta, mean, var = (torch.as_tensor(v).to(DT) for v in (gamma, beta, mean, var))
    kappa = torch.as_tensor(kappa).to(DT).reshape(-1, 1)
    sd = torch.sqrt(var + eps)
    y = gamma * (x - mean) / sd + beta
    d = x.shape[1]
    phi = gamma / (var + eps)
    chi = 2 * gamma * (x - mean) + 2 * beta * sd
    psi = (2 * kappa * y.norm(dim=1, keepdim=True) + kappa ** 2) / d
    root = torch.sqrt(phi ** 2 * chi ** 2 + 4 * phi * gamma * psi)
    rho1 = -(root + phi * chi) / (2 * phi * gamma)
    rho2 = (root - phi * chi) / (2 * phi * gamma)
    return torch.minimum(rho1.abs(), rho2.abs())


def bn_rule(kappa: Tensor, y: Tensor, a: Tensor, variant: str) -> Tensor:
    """Thm 5.6: bound on the input of a BN layer (inference mode, y = a⊙x + const).

    ``published``: max_j δ_j of Lemma 5.5 (invalid, E6). ``corrected`` = ``sound``:
    κ/max_j |a_j|, which is the exact minimum. Proof: the next layer's κ bounds the
    *displacement* of its input, BN(x + r) − BN(x) = a⊙r, and ‖a⊙r‖ ≤ max_j|a_j|·‖r‖ with
    equality for r along the coordinate of the largest |a_j|; so ‖a⊙r‖ ≥ κ forces
    ‖r‖ ≥ κ/max_j|a_j|, and that ‖r‖ suffices. The thesis's quadratic (min_j δ_j) answers a
    different question, the *norm growth* ‖BN(x+r)‖ ≥ ‖BN(x)‖ + κ (E1), and is not a lower
    bound on displacement: y = (0, 100), a = (10, 1), κ = 1 gives min_j δ_j = 0.501 (published
    1.002) while r = (0.1, 0) displaces the output by 1. Until 2026-12 ``corrected`` returned
    min_j δ_j; it now falls back to ``sound`` (as ReLU blocks do).

    Args:
        kappa: ``(B,)`` bound on the displacement of the BN output. y: ``(B, d)`` BN outputs
            (used by ``published`` only). a: ``(d,)`` or ``(B, d)`` slopes γ_j/√(σ_j² + ε).
        variant: ``published``/``corrected``/``sound``.

    Returns:
        ``(B,)`` bound on ‖r‖ (input units).
    """
    _check_variant(variant)
    kappa = torch.as_tensor(kappa).to(DT)
    a = torch.as_tensor(a).to(DT)
    if variant in ("sound", "corrected"):
        amax = a.abs().max(1).values if a.ndim == 2 else a.abs().max()
        return kappa / amax
    dl = bn_deltas(kappa, y, a)
    return dl.masked_fill(~torch.isfinite(dl), -math.inf).max(1).values


# =========================================================================== 2.6 LRN


def lrn(x: Tensor, n: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75) -> Tensor:
    """Across-channel LRN with the thesis's α (not divided by n): x_a (k + α Σ_{win(a)} x_l²)^{−β}.

    The window is the n adjacent channels centred on a (``n//2`` before, ``(n−1)//2`` after,
    as torch and Caffe), so ``torch.nn.LocalResponseNorm(n, alpha=n·α, beta, k)`` is the same map.

    Args:
        x: ``(B, C, ...)``.
    """
    sq = x * x
    C = x.shape[1]
    pad = [0, 0] * (x.ndim - 2) + [n // 2, (n - 1) // 2]
    sp = F.pad(sq, pad)
    s = sum(sp[:, i:i + C] for i in range(n))
    return x * (k + alpha * s) ** (-beta)


class LRN(nn.Module):
    """Module form of :func:`lrn` (parameters stored for the bound rules)."""

    def __init__(self, size: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75):
        super().__init__()
        if size < 1 or k <= 0 or alpha <= 0 or not 0 < beta < 1:
            raise ValueError("LRN needs size >= 1, k > 0, alpha > 0, 0 < beta < 1 (Ass 5.10)")
        self.size, self.k, self.alpha, self.beta = size, k, alpha, beta

    def forward(self, x: Tensor) -> Tensor:
        return lrn(x, self.size, self.k, self.alpha, self.beta)

    def extra_repr(self) -> str:
        return f"size={self.size}, k={self.k}, alpha={self.alpha}, beta={self.beta}"


def _window_sum(v: Tensor, n: int) -> Tensor:
    C = v.shape[1]
    sp = F.pad(v, [0, 0] * (v.ndim - 2) + [n // 2, (n - 1) // 2])
    return sum(sp[:, i:i + C] for i in range(n))


def lrn_grad_norms(x: Tensor, n: int, k: float, alpha: float, beta: float) -> Tensor:
    """g_a = ‖∇_X LRN_a‖ from the §2.6 formulas (∂_a = S^{−β} − 2αβx_a²S^{−β−1},
    ∂_j = −2αβ x_a x_j S_a^{−β−1} for j ∈ win(a), j ≠ a). Shape like ``x``."""
    x = torch.as_tensor(x).to(DT)
    S = k + alpha * _window_sum(x * x, n)
    diag = S ** (-beta) - 2 * alpha * beta * x ** 2 * S ** (-beta - 1)
    off2 = (2 * alpha * beta * x.abs() * S ** (-beta - 1)) ** 2 * (_window_sum(x * x, n) - x * x)
    return torch.sqrt(diag ** 2 + off2)


def lrn_lipschitz(n: int, k: float, beta: float) -> float:
    """L = k^{−β}(1 + 2β c_β n^{3/4}) ≥ sup_X ‖J_LRN(X)‖₂, c_β = β^β/(1+β)^{1+β} (Ass 5.10).

    Proof. LRN acts on each pixel's channel vector x separately, so its Lipschitz constant is
    sup_x ‖J(x)‖₂ with J = D − E, D = diag(S_a^{−β}), E_aj = 2αβ x_a x_j S_a^{−β−1} [j ∈ win(a)],
    S_a = k + α Σ_{l∈win(a)} x_l². First ‖D‖₂ ≤ k^{−β}. Every entry of the window of a satisfies
    α x_j² ≤ S_a − k, and for S ≥ k, (S − k) S^{−β−1} ≤ c_β k^{−β} (its maximum, at
    S = k(1+β)/β). Row sums of |E|: by Cauchy-Schwarz Σ_{j∈win(a)} |x_j| ≤ √n ((S_a − k)/α)^{1/2},
    so row a sums to at most 2β√n (S_a − k) S_a^{−β−1} ≤ 2β√n c_β k^{−β}. Column sums: column j
    meets at most n rows a, each entry at most 2β (S_a − k) S_a^{−β−1} ≤ 2β c_β k^{−β} (as
    √(αx_a²·αx_j²) ≤ S_a − k), so at most 2βn c_β k^{−β}. The Schur test
    ‖E‖₂ ≤ √(‖E‖₁‖E‖_∞) then gives ‖E‖₂ ≤ 2β c_β n^{3/4} k^{−β}, and ‖J‖₂ ≤ ‖D‖₂ + ‖E‖₂.

    Until 2026-12 the constant was k^{−β}(1 + 2βn^{3/4}) (the same argument with
    (S − k)S^{−β−1} ≤ S^{−β}), 1/c_β ≈ 3.3 times looser in its second term at β = 0.75.
    """
    if n < 1 or k <= 0 or not 0 < beta < 1:
        raise ValueError("LRN needs n >= 1, k > 0, 0 < beta < 1 (Ass 5.10)")
    c_beta = beta ** beta / (1 + beta) ** (1 + beta)
    return k ** (-beta) * (1 + 2 * beta * c_beta * n ** 0.75)


def lrn_rule(kappa: Tensor, x: Tensor, variant: str, *, n: int = 5, k: float = 2.0,
             alpha: float = 1e-4, beta: float = 0.75) -> Tensor:
    """Thm 5.9 (eqs 5.11-5.12): bound on the input ``x`` ``(B, c, d, d)`` (or ``(B, c)``) of LRN.

    ``published``: T = (‖LRN(X)‖_F + κ)/√(#entries), δ_a = |LRN_a| − T, Δ = {δ_a < 0},
    M_a = 4α²β(β+1)x_max³k^{−β−2} + 6αβx_max k^{−β−1}, λ_a = (√(g_a² − 2M_aδ_a) − g_a)/M_a,
    bound = max_{a∈Δ} λ_a (invalid, E7). ``corrected`` = ``sound``: κ/L
    (:func:`lrn_lipschitz`). The thesis's argument cannot be repaired by a change of algebra:
    it bounds the norm growth, not the displacement (E1), and its M_a is taken at x_max of X,
    not along the path from X to X + R, so the Taylor step is unproven; until 2026-12
    ``corrected`` returned min_a max(λ_a, 0) (0 unless every entry is in Δ), now it falls back
    to ``sound`` (as ReLU blocks and BN do).

    Note that the published value hardly depends on κ: the max over Δ is attained where
    LRN(X)_a ≈ 0, where δ_a ≈ −(‖LRN(X)‖_F + κ)/√N, dominated by ‖LRN(X)‖_F when κ is small.
    """
    _check_variant(variant)
    kappa = torch.as_tensor(kappa).to(DT)
    if variant in ("sound", "corrected"):
        return kappa / lrn_lipschitz(n, k, beta)
    x = torch.as_tensor(x).to(DT)
    B = x.shape[0]
    y = lrn(x, n, k, alpha, beta).reshape(B, -1)
    xf = x.reshape(B, -1)
    T = (y.norm(dim=1) + kappa) / math.sqrt(xf.shape[1])
    dl = y.abs() - T[:, None]
    g = lrn_grad_norms(x, n, k, alpha, beta).reshape(B, -1)
    xm = xf.abs().max(1).values[:, None]
    M = 4 * alpha ** 2 * beta * (beta + 1) * xm ** 3 * k ** (-beta - 2) \
        + 6 * alpha * beta * xm * k ** (-beta - 1)
    lam = (torch.sqrt((g ** 2 - 2 * M * dl).clamp_min(0)) - g) / M
    lam = lam.masked_fill(dl >= 0, -math.inf)
    out = lam.max(1).values
    return torch.where(torch.isfinite(out), out, torch.zeros_like(out))


# =========================================================================== 2.8 chains

_ACTS = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.Softplus: "softplus"}
_PASS = (nn.Flatten, nn.Identity, nn.Dropout, nn.Unflatten)


def leaves(model: nn.Module) -> list[nn.Module]:
    """The layers of a (nested) ``nn.Sequential`` in forward order.

    Raises:
        ValueError: a non-Sequential container (its forward order is unknown).
    """
    if isinstance(model, nn.Sequential):
        out = []
        for m in model:
            out += leaves(m)
        return out
    if isinstance(model, LRN) or not list(model.children()):
        return [model]
    inner = getattr(model, "net", None)
    if isinstance(inner, nn.Sequential):
        return leaves(inner)
    raise ValueError(f"cannot compose bounds through {type(model).__name__}: "
                     "build the model as an nn.Sequential (or with a .net Sequential)")


@dataclass
class ChainResult:
    """Per-sample bounds of Alg 5.1 for one variant.

    Attributes:
        kappa: ``(B,)`` bound on the input perturbation (input units).
        layers: ``(name, κ (B,))`` from the output down to the input; κ is the bound on the
            perturbation of that layer's *input*.
        pred: ``(B,)`` predicted classes.
    """

    kappa: Tensor
    layers: list[tuple[str, Tensor]] = field(default_factory=list)
    pred: Tensor | None = None


def _masked_spectral_norm(V: Tensor, g: Tensor, iters: int = 60) -> Tensor:
    """‖diag(g_b) V‖₂ per sample b by batched power iteration (from below). V (n, d), g (B, n).

    The power iteration on ``M = Vᵀ D² V`` (``D = diag(g_b)``, d-dimensional) run in the row
    space instead: with ``z = D V v̂`` the step ``v ← M v̂`` becomes ``y = D G D z`` with the
    Gram matrix ``G = V Vᵀ`` computed once per call, and ``‖M v̂‖ = √(z·y)``. In exact
    arithmetic this is the same sequence of iterates (the same estimate); it costs ``B n²`` per
    step instead of ``2 B n d``.
    """
    v = (g * g) @ V.abs()  # positive start vector, (B, d)
    v = v + 1e-3 * v.mean(1, keepdim=True) + 1e-12
    v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-300)
    G = V @ V.T  # (n, n), once per layer
    z = g * (v @ V.T)  # D V v̂, (B, n)
    norm_w = torch.ones(len(g), dtype=V.dtype)
    for _ in range(iters):
        y = g * ((g * z) @ G)  # D G D z = D V (M v̂)
        norm_w = torch.sqrt((z * y).sum(1).clamp_min(0.0))  # ‖M v̂‖
        z = y / norm_w[:, None].clamp_min(1e-300)
    return torch.sqrt(norm_w)


@torch.no_grad()
def chain_bounds(model: nn.Module, x: Tensor, variant: str, power_iters: int = 60) -> ChainResult:
    """Alg 5.1: compose the layer rules backwards through ``model`` for a batch ``x``.

    Supported layers: Linear (+ activation: Taylor rule of Thm 4.2 with n = width, J the local
    Jacobian, M = B s² from Alg 4.1, for ``published``/``corrected``), Conv2d (+ReLU), Max/Avg
    pooling (no padding), global average pooling, BatchNorm (eval), :class:`LRN`, ReLU, Tanh,
    Flatten, Identity, Dropout. The output layer is the last Linear; if the net ends otherwise
    (NIN), the logits are read by the identity classifier.

    Args:
        model: an ``nn.Sequential`` (nested allowed). x: ``(B, ...)`` inputs.
        variant: ``published``/``corrected``/``sound``.
        power_iters: iterations of the per-sample ‖diag(g)V‖₂ estimate (published/corrected).

    Returns:
        :class:`ChainResult`.
    """
    _check_variant(variant)
    net = copy.deepcopy(model).cpu().to(DT).eval()
    layers = leaves(net)
    h = torch.as_tensor(x).detach().cpu().to(DT)
    inputs = []
    for m in layers:
        inputs.append(h)
        h = m(h)
    logits = h
    i = len(layers) - 1
    while i >= 0 and isinstance(layers[i], _PASS):
        i -= 1
    if isinstance(layers[i], nn.Linear):
        lin = layers[i]
        hin = inputs[i].reshape(len(h), -1)
        lb = linear_bound(lin.weight, lin.bias, hin)
        kappa, pred = lb.delta, lb.pred
        out = [(f"{i}:Linear(output) δ", kappa)]
        i -= 1
    else:
        kappa = identity_output_bound(logits)
        pred = logits.argmax(1)
        out = [("logits (identity classifier) δ", kappa)]
    while i >= 0:
        m, X = layers[i], inputs[i]
        name = f"{i}:{type(m).__name__}"
        act = next((a for t, a in _ACTS.items() if isinstance(m, t)), None)
        if act is not None and i > 0 and isinstance(layers[i - 1], nn.Linear):
            V = layers[i - 1].weight
            Xl = inputs[i - 1].reshape(len(X), -1)
            if variant == "sound" or (variant == "corrected" and act == "relu"):
                lip = ACTIVATIONS[act].A * float(torch.linalg.matrix_norm(V, ord=2))
                kappa = kappa / lip
            else:
                A, B = activation_constants(act, variant)
                z = Xl @ V.T + layers[i - 1].bias
                jn = _masked_spectral_norm(V, _act_grad(act, z), power_iters)
                M, _ = alg41([V], A, B)
                kappa = taylor_bound(kappa, jn, M, V.shape[0])
            out.append((f"{i - 1}:Linear+{act}", kappa))
            i -= 2
            continue
        if act is not None:  # an activation not preceded by a Linear: κ / sup|g'|
            kappa = kappa / ACTIVATIONS[act].A
        elif isinstance(m, _PASS):
            pass
        elif isinstance(m, nn.Linear):  # affine, no activation: Thm 4.2 with M = 0 is exact
            kappa = kappa / float(torch.linalg.matrix_norm(m.weight, ord=2))
        elif isinstance(m, nn.Conv2d):
            if m.groups != 1 or _pair(m.dilation) != (1, 1) or isinstance(m.padding, str):
                raise ValueError(f"{name}: only groups=1, dilation=1, integer padding supported")
            kappa = conv_rule(kappa, m.weight, variant, input_shape=X.shape[1:],
                              stride=m.stride, padding=m.padding)
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            q, s = _pair(m.kernel_size), _pair(m.stride or m.kernel_size)
            if _pair(m.padding) != (0, 0) or q[0] != q[1] or s[0] != s[1]:
                raise ValueError(f"{name}: square, unpadded pooling only")
            kind = "max" if isinstance(m, nn.MaxPool2d) else "avg"
            t = inputs[i + 1].shape[-1] if i + 1 < len(inputs) else logits.shape[-1]
            kappa = pool_rule(kappa, kind, variant, q=q[0], s=s[0], t=t)
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            if _pair(m.output_size) != (1, 1):
                raise ValueError(f"{name}: only global average pooling (output 1×1) supported")
            kappa = pool_rule(kappa, "global_avg", variant, q=1, s=1, t=1,
                              m=X.shape[-1] * X.shape[-2])
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            a = m.weight / torch.sqrt(m.running_var + m.eps)
            y = m(X)
            a_full = a.reshape(1, -1, *([1] * (X.ndim - 2))).expand_as(X).reshape(len(X), -1)
            kappa = bn_rule(kappa, y.reshape(len(X), -1), a_full, variant)
        elif isinstance(m, LRN):
            kappa = lrn_rule(kappa, X, variant, n=m.size, k=m.k, alpha=m.alpha, beta=m.beta)
        else:
            raise ValueError(f"no bound rule for layer {name}")
        out.append((name, kappa))
        i -= 1
    return ChainResult(kappa=kappa, layers=out, pred=pred)


@torch.no_grad()
def prefix_lipschitz(model: nn.Module, input_shape: Sequence[int], upto: int) -> float:
    """Product of the sound Lipschitz constants of ``leaves(model)[:upto]`` (for checks)."""
    net = copy.deepcopy(model).cpu().to(DT).eval()
    layers = leaves(net)
    h = torch.zeros(1, *input_shape, dtype=DT)
    L = 1.0
    for j, m in enumerate(layers[:upto]):
        X = h
        h = m(h)
        if isinstance(m, nn.Linear):
            L *= float(torch.linalg.matrix_norm(m.weight, ord=2))
        elif isinstance(m, nn.Conv2d):
            L *= conv_lipschitz(m.weight, X.shape[1:], m.stride, m.padding)
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            q, s = _pair(m.kernel_size)[0], _pair(m.stride or m.kernel_size)[0]
            L *= pool_lipschitz("max" if isinstance(m, nn.MaxPool2d) else "avg", q, s)
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            L *= pool_lipschitz("global_avg", 1, 1, m=X.shape[-1] * X.shape[-2])
        elif isinstance(m, LRN):
            L *= lrn_lipschitz(m.size, m.k, m.beta)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            L *= float((m.weight / torch.sqrt(m.running_var + m.eps)).abs().max())
        elif type(m) in _ACTS:
            L *= ACTIVATIONS[_ACTS[type(m)]].A
        elif not isinstance(m, _PASS):
            raise ValueError(f"no Lipschitz constant for layer {j}:{type(m).__name__}")
    return L


# =========================================================================== corollaries (§5.4)


def kernel_scaling_gain(eps: float, n: int | np.ndarray) -> np.ndarray:
    """Fig 5.12: scaling n kernels by (1 − ε) multiplies κ₁ by (1 − ε)^{−n}."""
    if not 0 <= eps < 1:
        raise ValueError(f"eps must be in [0, 1), got {eps}")
    return (1 - eps) ** (-np.asarray(n, dtype=float))


def per_layer_gain(delta: float, kappas: Sequence[float]) -> float:
    """Eq 5.13: adding δ to every layer's κ gives κ₁'/κ₁ = 1 + δ Σ_l 1/κ_l."""
    return 1 + delta * float(np.sum(1 / np.asarray(kappas, dtype=float)))


def geometric_gain(alpha: float, delta: float, kappa_L: float, L: int | np.ndarray) -> np.ndarray:
    """Eq 5.13 with κ_l = α^{L−l}κ_L: 1 + δ(1 − α^{−L})/(κ_L(1 − α^{−1})) (Fig 5.13 = Fig 1)."""
    L = np.asarray(L, dtype=float)
    return 1 + delta * (1 - alpha ** (-L)) / (kappa_L * (1 - 1 / alpha))


# =========================================================================== training regulariser


class MarginRegularizer:
    """§4.4 (Fig 4.3): loss L − ℓ·δ(h_L(x)), δ the output-layer bound at the predicted class.

    Returned value (added to the cross-entropy by ``train.fit``): ``−ℓ · mean δ``.
    """

    name = "peck_margin"

    def __init__(self, ell: float):
        if not ell >= 0:
            raise ValueError(f"ell must be >= 0, got {ell}")
        self.ell = float(ell)
        self.params = {"ell": self.ell}

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, logits: Tensor):
        layers = leaves(model)
        idx = max(i for i, m in enumerate(layers) if isinstance(m, nn.Linear))
        h = x
        for m in layers[:idx]:
            h = m(h)
        h = h.reshape(len(h), -1)
        W, b = layers[idx].weight, layers[idx].bias
        z = h @ W.T + b
        c = z.argmax(1).detach()
        dw = W[c][:, None, :] - W[None]
        nrm = dw.norm(dim=2).clamp_min(1e-12)
        ratio = (z.gather(1, c[:, None]) - z) / nrm
        ratio = ratio.masked_fill(F.one_hot(c, W.shape[0]).bool(), float("inf"))
        delta = ratio.min(1).values.mean()
        return -self.ell * delta, {"delta": float(delta.detach())}
