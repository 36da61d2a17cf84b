"""Stability and persistence of points under Gaussian noise (Bell, Part I, §4, §7, §10).

A point ``x`` with label ``C(x)`` (the model's argmax; for an adversarial point, the adversarial
label) is *(γ, σ)-stable* when ``P_{x'∼N(x, σ²I)}[C(x') = C(x)] ≥ γ`` (Def 4.1). Its
*γ-persistence* is the supremum of the σ up to which it is stable (Def 4.2). Both are estimated
by Monte Carlo; persistence by the document's Bracketing Algorithm (Alg. 1, §7): a range finder
that halves σ_min / doubles σ_max until they bracket γ, then bisection.

Everything is batched: one call handles many points at once, each with its own σ, and the
noisy copies of all of them go through the model in chunks of ``batch_size`` samples, so the
Monte Carlo runs at (close to) the speed of the model's plain batched forward pass
(:func:`throughput` measures both). Within one evaluation the points of a batch share one bank
of ``N`` standard normal vectors (each point's samples are still i.i.d. ``N(x, σ²I)``; sharing
only correlates the estimates of different points); every evaluation, i.e. every σ, draws a
fresh bank, as the document does (:func:`class_frequencies` too).
``common_random_numbers=True`` reuses one bank for every σ instead (then ``p̂(σ)`` is monotone
for convex classes: used by the tests).

Closed forms: the wedge ``W^n_k = {x_1..x_k ≥ 0}`` (Prop 4.3) and the norm laws of §10.

Conventions: inputs in the model's units (pixels in [0, 1]); no clipping of the noisy copies
(the document does not clip); σ in the same units.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import special, stats
from torch import Tensor, nn

from analysis import env

__all__ = [
    "wedge_stability",
    "wedge_persistence",
    "wedge_tolerance",
    "wedge_samples_for",
    "random_frame",
    "WedgeClassifier",
    "HalfSpaceClassifier",
    "NoiseBank",
    "labels_of",
    "fraction_stable",
    "class_frequencies",
    "class_frequencies_batch",
    "BracketResult",
    "persistence",
    "segment",
    "distortion",
    "by_target",
    "gaussian_norms",
    "uniform_ball_norms",
    "sphere_norms",
    "throughput",
]


# --------------------------------------------------------------------------- closed forms


def wedge_stability(k: int, d: float, sigma: float | np.ndarray) -> np.ndarray:
    """Prop 4.3: ``p(σ) = Φ(d/σ)^k`` for the point at distance ``d`` from each of the ``k``
    faces of the wedge ``W^n_k`` (independent of the ambient dimension ``n``).

    Args:
        k: number of faces (``k ≥ 1``). d: distance to each face (> 0). sigma: noise std (> 0).

    Returns:
        ``p(σ)`` (array shaped like ``sigma``).
    """
    if k < 1 or d <= 0:
        raise ValueError(f"need k >= 1 and d > 0, got k={k}, d={d}")
    s = np.asarray(sigma, dtype=np.float64)
    return stats.norm.cdf(d / s) ** k


def wedge_persistence(k: int, d: float, gamma: float = 0.7) -> float:
    """Prop 4.3: ``σ*_γ = d / Φ⁻¹(γ^{1/k}) = d / (√2 erf⁻¹(2γ^{1/k} − 1))``.

    ``+inf`` when ``γ ≤ 2^{−k}`` (the stability never drops below γ: ``p(∞) = 2^{−k}``).

    Args:
        k: number of faces. d: distance to each face. gamma: level in (0, 1).

    Returns:
        The γ-persistence (same units as ``d``).
    """
    if not 0 < gamma < 1:
        raise ValueError(f"gamma must lie in (0, 1), got {gamma}")
    if k < 1 or d <= 0:
        raise ValueError(f"need k >= 1 and d > 0, got k={k}, d={d}")
    q = gamma ** (1.0 / k)
    if q <= 0.5:
        return math.inf
    return float(d / (math.sqrt(2.0) * special.erfinv(2.0 * q - 1.0)))


def wedge_tolerance(k: int, d: float, gamma: float, n_samples: int, precision: float = 0.0,
                    n_se: float = 4.0) -> float:
    """Tolerance of a Monte Carlo persistence estimate for the wedge, in σ units:
    ``n_se`` standard errors of ``p̂`` plus the bisection's ``precision``, both divided by
    ``|dp/dσ|`` at ``σ*`` (from Prop 4.3)."""
    s = wedge_persistence(k, d, gamma)
    if not math.isfinite(s):
        return math.inf
    u = d / s
    dp = k * stats.norm.cdf(u) ** (k - 1) * stats.norm.pdf(u) * d / s**2
    return float((n_se * math.sqrt(gamma * (1 - gamma) / n_samples) + precision) / dp)


def wedge_samples_for(k: int, d: float, gamma: float, rel_tol: float, precision: float = 0.0,
                      n_se: float = 4.0) -> int:
    """Smallest Monte Carlo ``N`` per evaluation for which :func:`wedge_tolerance` is at most
    ``rel_tol · σ*`` (the inverse of :func:`wedge_tolerance`).

    Args:
        k: number of faces. d: distance to each face. gamma: level γ.
        rel_tol: the relative tolerance wanted (e.g. 0.1 = 10 % of σ*).
        precision: the bisection's precision on ``p̂``. n_se: standard errors in the tolerance.

    Returns:
        ``N`` (at least 1).

    Raises:
        ValueError: when the precision alone already exceeds ``rel_tol · σ*``.
    """
    s = wedge_persistence(k, d, gamma)
    u = d / s
    dp = k * stats.norm.cdf(u) ** (k - 1) * stats.norm.pdf(u) * d / s**2
    room = rel_tol * s * dp - precision  # what is left for n_se standard errors of p̂
    if room <= 0:
        raise ValueError(f"precision {precision} alone exceeds {rel_tol:.0%} of σ* at k={k}")
    return max(1, math.ceil(gamma * (1 - gamma) * (n_se / room) ** 2))


def random_frame(n: int, k: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> Tensor:
    """``k`` orthonormal columns of a Haar-random orthogonal map of ``R^n``: ``(n, k)``.

    (QR of a Gaussian matrix with the signs of ``R``'s diagonal fixed.)
    """
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    g = torch.Generator().manual_seed(seed)
    Q, R = torch.linalg.qr(torch.randn((n, k), generator=g, dtype=torch.float64))
    return (Q * torch.sign(torch.diagonal(R)).view(1, -1)).to(dtype)


class WedgeClassifier(nn.Module):
    """Two-class test object: class 1 on the wedge ``{x : u_i·x ≥ 0, i ≤ k}`` of ``R^n``, else 0.

    Without ``basis`` the faces are the coordinate planes (``u_i = e_i``, the wedge
    ``{x_1, ..., x_k ≥ 0}`` of Prop 4.3). With ``basis`` (``(n, k)`` orthonormal columns, e.g.
    :func:`random_frame`) the wedge is rotated so that its normals spread over all ``n``
    coordinates: the noise in every coordinate then matters, so a Monte Carlo that is wrong in
    some coordinates shows a dependence on ``n`` (with the axis-aligned wedge it cannot).
    Logits ``(0, min_i u_i·x)``: argmax is 1 exactly inside the (open) wedge.

    Args:
        k: number of faces (``k ≥ 1``).
        basis: optional ``(n, k)`` orthonormal face normals.
    """

    def __init__(self, k: int, basis: Tensor | None = None):
        super().__init__()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if basis is not None and (basis.dim() != 2 or basis.shape[1] != k):
            raise ValueError(f"basis must be (n, {k}), got {tuple(basis.shape)}")
        self.k = k
        self.register_buffer("basis", None if basis is None else basis.clone())

    def point(self, d: float, n: int) -> Tensor:
        """The point at distance ``d`` from each face, ``(1, n)`` (``d·Σ_i u_i``)."""
        if self.basis is None:
            x = torch.zeros(1, n)
            x[0, : self.k] = d
            return x
        return (d * self.basis.sum(1)).view(1, -1)

    def forward(self, x: Tensor) -> Tensor:
        xf = x.flatten(1)
        if self.basis is None:
            if xf.shape[1] < self.k:
                raise ValueError(f"a {self.k}-face wedge needs inputs of dimension >= {self.k}")
            m = xf[:, : self.k].amin(dim=1)
        else:
            if xf.shape[1] != self.basis.shape[0]:
                raise ValueError(f"inputs of dimension {xf.shape[1]}, basis of "
                                 f"{self.basis.shape[0]}")
            m = (xf @ self.basis.to(xf.dtype)).amin(dim=1)
        return torch.stack([torch.zeros_like(m), m], dim=1)


class HalfSpaceClassifier(nn.Module):
    """Two-class test object: class 1 where ``w·x + b > 0``; logits ``(0, w·x + b)``."""

    def __init__(self, w: Tensor, b: float = 0.0):
        super().__init__()
        self.register_buffer("w", w.flatten().clone())
        self.b = float(b)

    def forward(self, x: Tensor) -> Tensor:
        s = x.flatten(1) @ self.w.to(x.dtype) + self.b
        return torch.stack([torch.zeros_like(s), s], dim=1)


# --------------------------------------------------------------------------- Monte Carlo core


class NoiseBank:
    """Standard normal noise vectors for the Monte Carlo, fresh per draw or common.

    Args:
        shape: shape of one sample (e.g. ``(1, 28, 28)``).
        n_samples: vectors per draw.
        seed: seed of the generator (draws are reproducible for a fixed seed and call order).
        common: return the same bank on every draw (common random numbers).
        dtype, device: of the noise.
    """

    def __init__(self, shape: Sequence[int], n_samples: int, seed: int = 0, common: bool = False,
                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"):
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        self.shape = tuple(shape)
        self.n = n_samples
        self.common = common
        self.dtype, self.device = dtype, torch.device(device)
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        self._bank: Tensor | None = None

    def draw(self) -> Tensor:
        """``(N, *shape)`` standard normal vectors."""
        if self.common and self._bank is not None:
            return self._bank
        z = torch.randn((self.n, *self.shape), generator=self.gen, dtype=self.dtype,
                        device=self.device)
        if self.common:
            self._bank = z
        return z


@torch.no_grad()
def labels_of(model: Callable[[Tensor], Tensor], x: Tensor, batch_size: int = 4096) -> Tensor:
    """``argmax`` labels of ``x`` in chunks (the model is used as is: put it in eval mode)."""
    if len(x) == 0:
        return torch.zeros(0, dtype=torch.long, device=x.device)
    return torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


@torch.no_grad()
def _noisy_labels(model: Callable[[Tensor], Tensor], x: Tensor, sigma: Tensor, z: Tensor,
                  batch_size: int) -> Tensor:
    """Labels of ``x_b + σ_b z_j`` for every point ``b`` and noise vector ``j``: ``(B, N)``.

    The ``B·N`` noisy copies are classified in chunks of about ``batch_size`` samples (whole
    points per chunk when ``N ≤ batch_size``, else pieces of one point's samples).
    """
    B, N = x.shape[0], z.shape[0]
    out = torch.empty((B, N), dtype=torch.long, device=x.device)
    view = (-1,) + (1,) * (x.dim() - 1)
    if N <= batch_size:
        per = max(1, batch_size // N)
        for i in range(0, B, per):
            xb, sb = x[i:i + per], sigma[i:i + per].view(view)
            noisy = (xb.unsqueeze(1) + sb.unsqueeze(1) * z.unsqueeze(0)).flatten(0, 1)
            out[i:i + per] = model(noisy).argmax(1).view(len(xb), N)
    else:
        for b in range(B):
            for j in range(0, N, batch_size):
                noisy = x[b:b + 1] + sigma[b] * z[j:j + batch_size]
                out[b, j:j + batch_size] = model(noisy).argmax(1)
    return out


def fraction_stable(model: Callable[[Tensor], Tensor], x: Tensor, sigma: float | Tensor,
                    n_samples: int = 1000, *, labels: Tensor | None = None,
                    bank: NoiseBank | None = None, seed: int = 0,
                    batch_size: int = 4096) -> Tensor:
    """Monte Carlo estimate of ``p(σ) = P[C(x + σz) = C(x)]`` per point (§2.1 of the spec).

    Standard error ``√(p(1−p)/N)`` (0.0145 at p = 0.7, N = 1000).

    Args:
        model: logits model in eval mode. x: points ``(B, ...)``.
        sigma: noise std, scalar or per point ``(B,)`` (> 0).
        n_samples: N. labels: the labels to keep (default ``C(x)``).
        bank: noise source (default: a fresh :class:`NoiseBank` seeded with ``seed``).
        batch_size: samples per forward pass.

    Returns:
        float64 ``(B,)`` fractions.
    """
    sig = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(x.shape[0]).clone()
    if (sig <= 0).any():
        raise ValueError("sigma must be > 0")
    if labels is None:
        labels = labels_of(model, x, batch_size)
    if bank is None:
        bank = NoiseBank(x.shape[1:], n_samples, seed=seed, dtype=x.dtype, device=x.device)
    z = bank.draw()
    lab = _noisy_labels(model, x, sig, z, batch_size)
    return (lab == labels.view(-1, 1)).double().mean(1)


@torch.no_grad()
def class_frequencies_batch(model: Callable[[Tensor], Tensor], x: Tensor,
                            sigmas: Sequence[float] | Tensor, n_samples: int = 1000,
                            num_classes: int | None = None, *, seed: int = 0,
                            common_random_numbers: bool = False,
                            batch_size: int = 4096) -> Tensor:
    """Label frequencies of ``N`` Gaussian samples around each of ``B`` points for each σ, in one
    Monte Carlo pass over every (point, σ) pair (Figs 9, 11, 13, 17).

    As in the document (§5.2: "for each σ, 100 i.i.d. samples were drawn"), every (point, σ)
    pair gets its own fresh draw of ``N`` noise vectors; ``common_random_numbers=True`` reuses
    one draw of ``N`` vectors for every pair (smoother curves, correlated rows). The noisy
    copies of all pairs are classified together in chunks of about ``batch_size`` samples.

    Args:
        model: logits model in eval mode. x: points ``(B, ...)``.
        sigmas: grid ``(S,)`` (> 0). n_samples: N per (point, σ).
        num_classes: K (default: from the model's output).
        seed: seed of the noise. common_random_numbers: one draw for all pairs.
        batch_size: samples per forward pass.

    Returns:
        float64 ``(B, S, K)``: fraction of samples given each label (rows sum to 1).
    """
    sig = torch.as_tensor(sigmas, dtype=x.dtype, device=x.device).flatten()
    if (sig <= 0).any():
        raise ValueError("sigmas must be > 0")
    B, S, N = x.shape[0], len(sig), int(n_samples)
    bank = NoiseBank(x.shape[1:], N, seed=seed, common=common_random_numbers, dtype=x.dtype,
                     device=x.device)
    K = num_classes or int(model(x[:1]).shape[1])
    xs, ss = x.repeat_interleave(S, 0), sig.repeat(B)  # pair q = b·S + s
    view = (-1, 1) + (1,) * (x.dim() - 1)
    counts = torch.zeros((B * S, K), dtype=torch.float64, device=x.device)
    per = max(1, batch_size // N)
    for i in range(0, B * S, per):
        n_p = min(per, B * S - i)
        z = (bank.draw().unsqueeze(0) if common_random_numbers else
             torch.randn((n_p, N, *x.shape[1:]), generator=bank.gen, dtype=x.dtype,
                         device=x.device))
        noisy = (xs[i:i + n_p].unsqueeze(1) + ss[i:i + n_p].view(view) * z).flatten(0, 1)
        lab = labels_of(model, noisy, batch_size).view(n_p, N)
        counts[i:i + n_p].scatter_add_(1, lab, torch.ones_like(lab, dtype=torch.float64))
    return (counts / N).view(B, S, K)


def class_frequencies(model: Callable[[Tensor], Tensor], x: Tensor, sigmas: Sequence[float] | Tensor,
                      n_samples: int = 1000, num_classes: int | None = None, *, seed: int = 0,
                      common_random_numbers: bool = False, batch_size: int = 4096) -> Tensor:
    """Label frequencies of ``N`` Gaussian samples around one point for each σ.

    One point of :func:`class_frequencies_batch` (fresh samples per σ unless
    ``common_random_numbers``).

    Args:
        model: logits model in eval mode. x: one point ``(1, ...)`` or ``(...)`` with batch dim
            added. sigmas: grid ``(S,)`` (> 0). n_samples: N per σ.
        num_classes: K (default: from the model's output).
        seed: seed of the noise. common_random_numbers: one draw for all σ.
        batch_size: samples per forward pass.

    Returns:
        float64 ``(S, K)``: fraction of samples given each label, per σ (rows sum to 1).
    """
    if x.dim() >= 1 and x.shape[0] != 1:
        x = x.unsqueeze(0)
    return class_frequencies_batch(model, x, sigmas, n_samples, num_classes, seed=seed,
                                   common_random_numbers=common_random_numbers,
                                   batch_size=batch_size)[0]


# --------------------------------------------------------------------------- bracketing (Alg. 1)


@dataclass
class BracketResult:
    """Output of :func:`persistence`.

    Attributes:
        sigma: float64 ``(B,)`` γ-persistence estimates (``inf``: stable at every σ the range
            finder tried, ``0``: unstable down to ``sigma_floor``).
        labels: ``(B,)`` the labels whose stability was measured.
        evaluations: Monte Carlo evaluations per point ``(B,)`` (each costs N forward passes).
        converged: bool ``(B,)``: stopped by ``|p̂ − γ| < precision`` (else after ``max_steps``).
    """

    sigma: Tensor
    labels: Tensor
    evaluations: Tensor
    converged: Tensor


def persistence(model: Callable[[Tensor], Tensor], x: Tensor, gamma: float = 0.7,
                n_samples: int = 1000, *, labels: Tensor | None = None, precision: float = 0.01,
                max_steps: int = 20, sigma_min: float = 0.5, sigma_max: float = 1.5,
                max_range_iter: int = 40, sigma_floor: float = 1e-8,
                common_random_numbers: bool = False, seed: int = 0, batch_size: int = 4096,
                progress: bool | None = None) -> BracketResult:
    """γ-persistence of many points at once by the Bracketing Algorithm (Alg. 1, §7).

    Per point: RANGEFINDER starts at ``[σ_min, σ_max] = [0.5, 1.5]`` and, while
    ``p̂(σ_min) < γ`` or ``p̂(σ_max) > γ``, halves ``σ_min`` (when its fraction is below γ) and
    doubles ``σ_max`` (when its fraction is above γ), re-estimating each time. Then bisection:
    ``σ = (σ_min + σ_max)/2``; stop when ``|p̂(σ) − γ| < precision``; ``p̂ > γ`` moves ``σ_min``
    up, else ``σ_max`` down; at most ``max_steps − 1`` bisection steps, the last σ is returned.
    Fixes of the document's algorithm (spec §2.4): the range finder stops after
    ``max_range_iter`` rounds each way; a point still stable at the largest ``σ_max`` gets
    ``+inf`` and one unstable below ``sigma_floor`` gets ``0``.

    All points advance together; each round evaluates only the points that still need it.

    Args:
        model: logits model in eval mode. x: points ``(B, ...)``.
        gamma: level γ in (0, 1). n_samples: N per evaluation.
        labels: labels whose stability is measured (default ``C(x)``).
        precision, max_steps, sigma_min, sigma_max, max_range_iter, sigma_floor: see above.
        common_random_numbers: one noise bank for every evaluation (monotone ``p̂``).
        seed: seed of the noise. batch_size: samples per forward pass.
        progress: tqdm bar over rounds (default: ``$ANALYSIS_PROGRESS``).

    Returns:
        :class:`BracketResult`.
    """
    if not 0 < gamma < 1:
        raise ValueError(f"gamma must lie in (0, 1), got {gamma}")
    if not 0 < precision < 1 or max_steps < 1 or not 0 < sigma_min < sigma_max:
        raise ValueError("need 0 < precision < 1, max_steps >= 1 and 0 < sigma_min < sigma_max")
    B = x.shape[0]
    dev = x.device
    if labels is None:
        labels = labels_of(model, x, batch_size)
    if B == 0:
        empty = torch.zeros(0, dtype=torch.float64)
        return BracketResult(sigma=empty, labels=labels.cpu(), evaluations=torch.zeros(0).long(),
                             converged=torch.zeros(0, dtype=torch.bool))
    bank = NoiseBank(x.shape[1:], n_samples, seed=seed, common=common_random_numbers,
                     dtype=x.dtype, device=dev)
    evals = torch.zeros(B, dtype=torch.long)

    def frac(idx: Tensor, s: Tensor) -> Tensor:
        evals[idx.cpu()] += 1
        return fraction_stable(model, x[idx], s.to(x.dtype), labels=labels[idx], bank=bank,
                               batch_size=batch_size).cpu()

    lo = torch.full((B,), float(sigma_min), dtype=torch.float64)
    hi = torch.full((B,), float(sigma_max), dtype=torch.float64)
    all_idx = torch.arange(B, device=dev)
    p_lo, p_hi = frac(all_idx, lo), frac(all_idx, hi)
    result = torch.full((B,), math.nan, dtype=torch.float64)
    converged = torch.zeros(B, dtype=torch.bool)
    show = env.progress_enabled(progress)
    bar = None
    if show:
        from tqdm import tqdm
        bar = tqdm(total=max_range_iter + max_steps, desc="persistence", leave=False)
    for _ in range(max_range_iter):
        need_lo = (p_lo < gamma) & result.isnan()
        need_hi = (p_hi > gamma) & result.isnan()
        if not (need_lo | need_hi).any():
            break
        lo[need_lo] /= 2
        hi[need_hi] *= 2
        zero = need_lo & (lo < sigma_floor)
        result[zero] = 0.0
        need_lo &= ~zero
        if need_lo.any():
            i = need_lo.nonzero().flatten()
            p_lo[i] = frac(i.to(dev), lo[i])
        if need_hi.any():
            i = need_hi.nonzero().flatten()
            p_hi[i] = frac(i.to(dev), hi[i])
        if bar is not None:
            bar.update(1)
    # still unbracketed after the range finder: stable at the largest sigma tried -> inf
    result[result.isnan() & (p_hi > gamma)] = math.inf
    result[result.isnan() & (p_lo < gamma)] = 0.0
    active = result.isnan()
    mid = (lo + hi) / 2
    for _ in range(max(1, max_steps - 1)):
        if not active.any():
            break
        i = active.nonzero().flatten()
        mid[i] = (lo[i] + hi[i]) / 2
        p = frac(i.to(dev), mid[i])
        hit = (p - gamma).abs() < precision
        up = p > gamma
        converged[i[hit]] = True
        result[i[hit]] = mid[i[hit]]
        lo[i[~hit & up]] = mid[i[~hit & up]]
        hi[i[~hit & ~up]] = mid[i[~hit & ~up]]
        active[i[hit]] = False
        if bar is not None:
            bar.update(1)
    result[active] = mid[active]
    if bar is not None:
        bar.close()
    return BracketResult(sigma=result, labels=labels.cpu(), evaluations=evals, converged=converged)


# --------------------------------------------------------------------------- helpers


def segment(x0: Tensor, x1: Tensor, taus: Sequence[float] | Tensor) -> Tensor:
    """Points ``(1 − τ) x0 + τ x1`` for each τ (Figs 12, 18): ``(T, ...)``."""
    t = torch.as_tensor(taus, dtype=x0.dtype, device=x0.device).view(-1, *([1] * x0.dim()))
    return (1 - t) * x0.unsqueeze(0) + t * x1.unsqueeze(0)


def by_target(natural: np.ndarray, adversarial: np.ndarray, hit: np.ndarray,
              targets: Sequence[int]) -> list[dict]:
    """Natural vs adversarial persistence per target class, inf-safe (Table 2 analogue).

    The attacked batch is ``S`` sources × ``T`` targets in source-major order (each source
    repeated once per target, as :func:`targeted_attack` is fed); ``adversarial`` holds the
    persistence of the hits only. Medians are used because a persistence of ``inf`` (stable at
    every σ tried, e.g. an adversarial whose target is the class a net gives to heavy noise)
    makes a mean meaningless.

    Args:
        natural: persistence of the natural sources ``(S,)``.
        adversarial: persistence of the successful adversarials, in batch order ``(hit.sum(),)``.
        hit: bool ``(S·T,)``, which attacks reached their target.
        targets: the ``T`` target classes.

    Returns:
        one dict per target with at least one hit: ``target``, ``n``, ``median_nat``,
        ``median_adv``, ``frac_inf`` (fraction of adversarials with infinite persistence) and
        ``adv_lower`` (median adversarial below median natural).
    """
    hit = np.asarray(hit, bool)
    adversarial = np.asarray(adversarial, float)
    T = len(targets)
    if len(hit) % T or len(adversarial) != hit.sum():
        raise ValueError(f"hit must have S·T = k·{T} entries and adversarial one per hit; got "
                         f"{len(hit)} and {len(adversarial)}")
    tgt = np.tile(np.asarray(targets), len(hit) // T)[hit]
    med_nat = float(np.median(natural))
    out = []
    for t in targets:
        a = adversarial[tgt == t]
        if len(a):
            out.append({"target": int(t), "n": len(a), "median_nat": med_nat,
                        "median_adv": float(np.median(a)), "frac_inf": float(np.isinf(a).mean()),
                        "adv_lower": bool(np.median(a) < med_nat)})
    return out


def distortion(x_adv: Tensor, x: Tensor) -> Tensor:
    """Def 1.8: ``‖x̂ − x‖₂ / √n`` per sample (float64 ``(B,)``)."""
    d = (x_adv - x).flatten(1).double()
    return d.norm(dim=1) / math.sqrt(d.shape[1])


#: memory budget of one chunk of the norm samplers (bytes): the chunk's rows are set by it,
#: not fixed, so n = 196 608 (Fig 19) draws ~80 rows at a time instead of 3 GB arrays
CHUNK_BYTES = 128 * 2**20


def _chunks(m: int, n: int, arrays: int, max_bytes: int):
    """Row counts of the chunks that split ``m`` samples of dimension ``n`` so that ``arrays``
    float64 ``(rows, n)`` arrays of one chunk fit in ``max_bytes``."""
    rows = max(1, int(max_bytes) // (8 * n * arrays))
    for i in range(0, m, rows):
        yield min(rows, m - i)


def gaussian_norms(n: int, sigma: float, m: int, *, seed: int = 0,
                   max_bytes: int = CHUNK_BYTES) -> np.ndarray:
    """Norms of ``m`` samples of ``N(0, σ²I_n)``, drawn in chunks of at most ``max_bytes``
    (``‖x‖/σ ∼ χ_n``)."""
    g = torch.Generator().manual_seed(seed)
    out = [torch.randn((c, n), generator=g, dtype=torch.float64).norm(dim=1) * sigma
           for c in _chunks(m, n, 1, max_bytes)]
    return torch.cat(out).numpy()


def uniform_ball_norms(n: int, r: float, m: int, *, seed: int = 0,
                       max_bytes: int = CHUNK_BYTES) -> np.ndarray:
    """Norms of ``m`` samples of the uniform law on the ball ``B_r ⊂ R^n``.

    Each sample is built as a vector, ``y = r U^{1/n} g/‖g‖`` (``g ∼ N(0, I)``, ``U ∼ U(0,1)``),
    and its norm taken (``P(‖y‖ ≤ s) = (s/r)^n``, eq. (9)); chunks of at most ``max_bytes``.
    """
    g = torch.Generator().manual_seed(seed)
    out = []
    for c in _chunks(m, n, 3, max_bytes):
        v = torch.randn((c, n), generator=g, dtype=torch.float64)
        u = torch.rand((c, 1), generator=g, dtype=torch.float64)
        v /= v.norm(dim=1, keepdim=True)
        v *= r * u ** (1.0 / n)
        out.append(v.norm(dim=1))
    return torch.cat(out).numpy()


def sphere_norms(n: int, r: float, m: int, *, seed: int = 0,
                 max_bytes: int = CHUNK_BYTES) -> np.ndarray:
    """Norms of samples of the uniform law on the *sphere* of radius r (a wrong ball sampler,
    the negative control of the tests)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for c in _chunks(m, n, 3, max_bytes):
        v = torch.randn((c, n), generator=g, dtype=torch.float64)
        out.append((r * v / v.norm(dim=1, keepdim=True)).norm(dim=1))
    return torch.cat(out).numpy()


def throughput(model: Callable[[Tensor], Tensor], x: Tensor, *, n_samples: int = 1000,
               n_points: int = 16, batch_size: int = 4096, repeats: int = 3,
               seed: int = 0) -> dict[str, float]:
    """Samples per second of the persistence Monte Carlo vs the raw batched forward pass.

    Both classify ``n_points · n_samples`` inputs in chunks of ``batch_size``: the raw pass
    feeds pre-made inputs to ``model(...).argmax``; the Monte Carlo is
    :func:`fraction_stable` (noise generation, ``x + σz``, forward, comparison). Best of
    ``repeats``.

    Returns:
        dict with ``raw_per_s``, ``mc_per_s`` and ``ratio`` (raw / MC; 1 = no overhead).
    """
    xs = x[:1].expand(n_points, *x.shape[1:]).contiguous()
    total = n_points * n_samples
    raw_in = torch.randn((min(total, batch_size), *x.shape[1:]), dtype=x.dtype, device=x.device)
    n_chunks = math.ceil(total / len(raw_in))

    def raw() -> None:
        with torch.no_grad():
            for _ in range(n_chunks):
                model(raw_in).argmax(1)

    def mc() -> None:
        fraction_stable(model, xs, 0.3, n_samples, seed=seed, batch_size=batch_size)

    def best(f: Callable[[], None]) -> float:
        f()  # warm-up
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t0)
        return min(ts)

    t_raw, t_mc = best(raw), best(mc)
    raw_total = n_chunks * len(raw_in)
    return {"raw_per_s": raw_total / t_raw, "mc_per_s": total / t_mc,
            "ratio": (raw_total / t_raw) / (total / t_mc)}


# --------------------------------------------------------------------------- experiment helpers

#: the attacks of §5 with the settings of the spec (§2.6): IGSM on MNIST (ε = 0.3, α = 0.01,
#: ≤ 100 steps, stop at the first success), the "ImageNet" set at TorchAttacks' defaults.
ATTACKS = ("igsm", "bim", "mifgsm", "pgd", "fgsm", "rfgsm", "cw", "lbfgs")


def targeted_attack(model: nn.Module, x: Tensor, y: Tensor, targets: Tensor, attack: str, *,
                    seed: int = 0, eps: float = 8 / 255, lbfgs_bisection: int = 5,
                    lbfgs_double: bool = True) -> tuple[Tensor, Tensor]:
    """Targeted adversarial examples; returns ``(x_adv, hit)`` with ``hit`` = the model labels
    ``x_adv`` as the target (only those count as adversarial examples).

    Settings (spec §2.6): ``igsm`` = BIM with ε = 0.3, α = 0.01, 100 steps, stopping at the first
    success; ``bim``/``pgd``/``mifgsm``/``rfgsm``: ε = 8/255 (``eps``), α = ε/4, 10 steps (PGD
    with a random start, MI-FGSM decay 1; R+FGSM: random step α, then 10 steps of ε − α, as
    TorchAttacks' default ``steps=10``); ``fgsm``: ε; ``cw``: c = 1, κ = 0, 50 Adam steps of
    0.01, one value of c; ``lbfgs``: Szegedy's box-constrained L-BFGS (``lbfgs_bisection``
    bisection steps on c; ``lbfgs_double=False`` optimises in the model's float32, faster
    for CNNs), one L-BFGS-B run per sample with all samples' evaluations batched
    (``lockstep``: the per-sample iterates, up to float round-off of the batched pass).
    """
    from analysis import attacks as A

    alpha = eps / 4
    t = targets.long()
    if attack == "igsm":
        r = A.bim(model, x, y, 0.3, steps=100, step_size=0.01, keep="first", target=t)
    elif attack == "bim":
        r = A.bim(model, x, y, eps, steps=10, step_size=alpha, keep="last", target=t)
    elif attack == "pgd":
        r = A.pgd(model, x, y, eps, steps=10, step_size=alpha, keep="last", target=t, seed=seed)
    elif attack == "mifgsm":
        r = A.mifgsm(model, x, y, eps, steps=10, step_size=alpha, decay=1.0, keep="last",
                     target=t)
    elif attack == "fgsm":
        r = A.fgsm(model, x, y, eps, target=t)
    elif attack == "rfgsm":
        r = A.rfgsm(model, x, y, eps, alpha, steps=10, seed=seed, target=t)
    elif attack == "cw":
        r = A.cw_l2(model, x, y, steps=50, binary_steps=1, c_init=1.0, lr=0.01, kappa=0.0,
                    target=t)
    elif attack == "lbfgs":
        r = A.lbfgs(model, x, y, target=t, bisection_steps=lbfgs_bisection, double=lbfgs_double,
                    batch_size=None, lockstep=True)
    else:
        raise ValueError(f"unknown attack {attack!r}; valid: {ATTACKS}")
    hit = labels_of(model, r.x_adv) == t
    return r.x_adv.detach(), hit


def random_targets(y: Tensor, num_classes: int, seed: int = 0) -> Tensor:
    """A uniformly random target ``≠ y`` per sample (seeded)."""
    g = torch.Generator().manual_seed(seed)
    off = torch.randint(1, num_classes, (len(y),), generator=g)
    return (y.cpu() + off) % num_classes
