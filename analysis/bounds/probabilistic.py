"""Probabilistic bound on misclassification on a ρ-sphere (Warwick, Thm 4.0.1, Lemma 4.0.1, Alg 1).

Corrected reading (spec §2.3, errata E2-E8). With ``r = ‖δ(x)‖`` the adversarial distance,
``ρ̃ = ρ / r`` the normalised radius, ``κ ∈ (0, ½]`` the curvature constant of Assumption 2
(for ``(2α_x)⁻¹ H_z``) and ``m`` the dimension of the random subspace ``S``:

    P_{v ~ ρ·Unif(S^{m-1}_S)} [ k̂(x+v) = k̂(x) ]  ≤  B(ρ̃) = 2 exp(-m(κρ̃² - 1)² / (2ρ̃²(1-2κ)²)) + β

for ``κρ̃² > 1`` (else ``B = 1``): eq. (38) bounds the probability of **keeping** the label, so
``P(misclassified) ≥ 1 - B``. The document states it as an upper bound on misclassification,
which its own quadratic classifier refutes (:func:`sphere_survival_exact`).

Test classifier of Fig 8: label 0 ⇔ ``‖y‖ < R`` in ``ℝ^d``; at ``‖x‖ = s < R`` the adversarial
distance is ``r = R - s`` and ``κ = r / (2R)`` (``F̃(y) = ‖y‖² - R²``, ``∇F̃(z) = 2z``,
``α_x = 2R/r``, ``(2α_x)⁻¹·2 = r/(2R)``). For ``v`` uniform on the sphere of an ``m``-dimensional
subspace containing ``x``, the label is kept iff ``cos θ < a = (R² - s² - ρ²)/(2sρ)``, and
``cos θ`` is the first coordinate of a uniform point of ``S^{m-1}``:
``P(cos θ < a) = ½ + ½ sgn(a) I_{a²}(½, (m-1)/2)`` (regularised incomplete beta).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy.special import betainc
from tqdm import tqdm

from analysis import env
from analysis.rmt import semicircle_cdf, wigner_matrix

__all__ = [
    "bound_keep",
    "rho_star",
    "first_coord_cdf",
    "sphere_survival_exact",
    "halfspace_survival_exact",
    "SphereClassifier",
    "monte_carlo",
    "mc_table",
    "semicircle_cdf",
    "beta_document",
    "beta_corrected",
    "two_eigenvalue_mc",
    "random_plane_mc",
    "call_key",
    "cached_call",
]


def _check_kappa(kappa: float) -> None:
    if not 0 < kappa <= 0.5:
        raise ValueError(f"kappa must lie in (0, 1/2] (geometric consistency), got {kappa}")


def bound_keep(rho_t, m: int, kappa: float, beta: float = 0.0, *, half: bool = True):
    """``B(ρ̃)``: the bound (38) on the probability of keeping the label (corrected reading).

    Args:
        rho_t: normalised radius ``ρ̃ = ρ / r`` (array).
        m: subspace dimension.
        kappa: curvature constant in ``(0, ½]`` for ``(2α_x)⁻¹H`` (``half=True``).
        beta: failure probability of Assumption 2.
        half: ``False`` uses the document's constant without the ``½`` (κ for ``α_x⁻¹H``, then
            ``1 - 2κ`` may be ``≤ 0``): kept to show erratum E3 (spec B4), only for ``κ ≤ 1``.

    Returns:
        ``min(1, B)``; ``1`` where ``κρ̃² ≤ 1`` (no bound); ``β`` at ``κ = ½``.
    """
    if half:
        _check_kappa(kappa)
    elif not 0 < kappa <= 1:
        raise ValueError(f"kappa must lie in (0, 1], got {kappa}")
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    if not 0 <= beta <= 1:
        raise ValueError(f"beta must lie in [0, 1], got {beta}")
    r = np.asarray(rho_t, dtype=np.float64)
    gap = kappa * r**2 - 1.0
    den = 2.0 * r**2 * (1.0 - 2.0 * kappa) ** 2
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        expo = np.where(den > 0, m * gap**2 / np.where(den > 0, den, 1.0), np.inf)
        b = 2.0 * np.exp(-expo) + beta
    return np.where(gap > 0, np.minimum(1.0, b), 1.0)


def rho_star(p: float, m: int, kappa: float, beta: float = 0.0) -> float:
    """Normalised radius (41) beyond which ``B(ρ̃) ≤ p`` (``p > β``).

    ``C = √(2 log(2/(p-β)))``, ``ρ̃* = [C/(κ√m) + √(C²/(κ²m) + 4/κ)]/2 ≤ C/(κ√m) + κ^{-1/2}``
    (the document's derivation drops ``(1-2κ)²``, which only makes ``ρ̃*`` conservative).
    """
    _check_kappa(kappa)
    if not beta < p <= 1:
        raise ValueError(f"need beta < p <= 1, got p={p}, beta={beta}")
    C = math.sqrt(2.0 * math.log(2.0 / (p - beta)))
    a = C / (kappa * math.sqrt(m))
    return 0.5 * (a + math.sqrt(a * a + 4.0 / kappa))


def first_coord_cdf(a, m: int):
    """``P(u₁ < a)`` for ``u`` uniform on ``S^{m-1}`` (``m ≥ 2``): ``½ + ½ sgn(a) I_{a²}(½, (m-1)/2)``."""
    if m < 2:
        raise ValueError(f"m must be >= 2, got {m}")
    a = np.clip(np.asarray(a, dtype=np.float64), -1.0, 1.0)
    return 0.5 + 0.5 * np.sign(a) * betainc(0.5, 0.5 * (m - 1), a * a)


def sphere_survival_exact(rho, m: int, s: float = 0.5, R: float = 1.0):
    """Exact probability of keeping the label of the ball classifier ``‖y‖ < R`` at ``‖x‖ = s``.

    ``v`` is uniform on the ``ρ``-sphere of an ``m``-dimensional subspace containing ``x``.

    Args:
        rho: radius (array, unnormalised).
        m: subspace dimension ``≥ 2``.
        s, R: ``‖x‖`` and the ball radius (``0 < s < R``).
    """
    if not 0 < s < R:
        raise ValueError(f"need 0 < s < R, got s={s}, R={R}")
    rho = np.asarray(rho, dtype=np.float64)
    a = (R**2 - s**2 - rho**2) / (2.0 * s * rho)
    return first_coord_cdf(a, m)


def halfspace_survival_exact(rho_t, m: int):
    """Exact probability of keeping the label for a half-space (flat boundary at distance r).

    Keep ⇔ ``vᵀn < r`` ⇔ ``u₁ < 1/ρ̃``.
    """
    rho_t = np.asarray(rho_t, dtype=np.float64)
    return first_coord_cdf(1.0 / rho_t, m)


class SphereClassifier:
    """The Fig 8 test classifier: label 0 inside the ball ``‖y‖ < R``, 1 outside.

    Args:
        R: ball radius. s: ``‖x‖`` of the test point ``x = s·e₁``. d: ambient dimension.
    """

    def __init__(self, R: float = 1.0, s: float = 0.5, d: int = 1000):
        if not 0 < s < R:
            raise ValueError(f"need 0 < s < R, got s={s}, R={R}")
        self.R, self.s, self.d = float(R), float(s), int(d)

    @property
    def r(self) -> float:
        """Adversarial distance ``R - s``."""
        return self.R - self.s

    @property
    def kappa(self) -> float:
        """Curvature constant ``r / (2R)`` of ``(2α_x)⁻¹H``."""
        return self.r / (2.0 * self.R)

    def cache_key(self) -> dict[str, float | int]:
        """Every parameter of the classifier, for :mod:`analysis.cache` keys."""
        return {"R": self.R, "s": self.s, "d": self.d}

    def x(self, dtype=torch.float64) -> torch.Tensor:
        """The test point ``s·e₁`` ``(d,)``."""
        x = torch.zeros(self.d, dtype=dtype)
        x[0] = self.s
        return x

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        """Labels ``(N,)`` of points ``(N, d)``."""
        return (y.norm(dim=1) >= self.R).long()


def monte_carlo(classify: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                rho: float, m: int, n: int, *, mode: str = "sphere",
                generator: torch.Generator | None = None, batch: int = 4096
                ) -> tuple[float, float]:
    """Algorithm 1: Monte-Carlo probability of misclassification around ``x``.

    ``v`` lives in the subspace spanned by the first ``m`` coordinates (which contains ``x``
    for the Fig 8 classifier): ``mode="sphere"`` draws ``v = ρ g/‖g‖`` (Thm 4.0.1's setting);
    ``mode="ball"`` draws ``v = ρ U^{1/m} g/‖g‖``, uniform in the ball (the literal Alg 1,
    "within the circle"). Returns ``prop / n`` (the pseudo-code's ``prop/count`` is off by one).

    Args:
        classify: maps ``(N, d)`` points to labels ``(N,)``.
        x: the point ``(d,)``.
        rho: radius (input units).
        m: subspace dimension ``≤ d``.
        n: number of draws.
        mode: ``"sphere"`` or ``"ball"``.
        generator: torch generator (seeded by the caller).
        batch: draws per chunk.

    Returns:
        ``(p̂, standard error √(p̂(1-p̂)/n))``.
    """
    if mode not in ("sphere", "ball"):
        raise ValueError(f"mode must be 'sphere' or 'ball', got {mode!r}")
    d = x.numel()
    if not 1 <= m <= d:
        raise ValueError(f"need 1 <= m <= d = {d}, got m={m}")
    if n < 1 or rho < 0:
        raise ValueError("need n >= 1 and rho >= 0")
    label = int(classify(x.view(1, -1))[0])
    bad = 0
    done = 0
    while done < n:
        k = min(batch, n - done)
        g = torch.randn(k, m, generator=generator, dtype=x.dtype)
        g = g / g.norm(dim=1, keepdim=True)
        if mode == "ball":
            u = torch.rand(k, 1, generator=generator, dtype=x.dtype)
            g = g * u ** (1.0 / m)
        y = x.expand(k, d).clone()
        y[:, :m] += rho * g
        bad += int((classify(y) != label).sum())
        done += k
    p = bad / n
    return p, math.sqrt(max(p * (1 - p), 0.0) / n)


# --------------------------------------------------------------------------- Lemma 4.0.1


def beta_document(kappa, sigma: float = 1.0):
    """The document's ``β = F_sc(κ; σ)²`` (Lemma 4.0.1; it claims ``P ≥ 1 - β``)."""
    return semicircle_cdf(kappa, sigma) ** 2


def beta_corrected(kappa, sigma: float = 1.0):
    """``β = 1 - (1 - F_sc(κ; σ))²``: the complement of the document's own two-eigenvalue
    heuristic ``P(λ₁ ≥ κ, λ₂ ≥ κ) ≈ (1 - F_sc)²`` (erratum E8)."""
    return 1.0 - (1.0 - semicircle_cdf(kappa, sigma)) ** 2


def two_eigenvalue_mc(kappa, n: int, draws: int, *, n_matrices: int = 4, seed: int = 0
                      ) -> np.ndarray:
    """MC of the document's heuristic: two distinct random eigenvalues of a normalised Wigner
    matrix (semicircle of radius 2) both ``≥ κ``.

    Args:
        kappa: thresholds (array). n: matrix size. draws: pairs drawn (over ``n_matrices``
            matrices). seed: numpy seed.

    Returns:
        Estimated ``P(λ_i ≥ κ, λ_j ≥ κ)`` per threshold.
    """
    gen = np.random.default_rng(seed)
    kappa = np.atleast_1d(np.asarray(kappa, dtype=np.float64))
    per = max(1, draws // n_matrices)
    hits = np.zeros_like(kappa)
    total = 0
    for _ in range(n_matrices):
        ev = np.linalg.eigvalsh(wigner_matrix(n, rng=gen))
        i = gen.integers(0, n, per)
        j = (i + gen.integers(1, n, per)) % n  # j != i
        lo = np.minimum(ev[i], ev[j])
        hits += (lo[None, :] >= kappa[:, None]).sum(1)
        total += per
    return hits / total


def random_plane_mc(kappa, n: int, draws: int, *, seed: int = 0, chunk: int = 500
                    ) -> np.ndarray:
    """MC of what Assumption 2 asks: ``P(λ_min(EᵀHE) ≥ κ)`` for a random 2-plane ``E`` and a
    normalised Wigner ``H`` (one matrix). The compressed entries concentrate at ``tr H / n ≈ 0``
    with spread ``O(n^{-1/2})``, so the probability is ≈ 0 for ``κ ≳ 3/√n``.

    Returns:
        Estimated probability per threshold.
    """
    gen = np.random.default_rng(seed)
    kappa = np.atleast_1d(np.asarray(kappa, dtype=np.float64))
    H = wigner_matrix(n, rng=gen)
    lo_all = []
    done = 0
    while done < draws:
        k = min(chunk, draws - done)
        G = gen.standard_normal((k, n, 2))
        E, _ = np.linalg.qr(G)  # (k, n, 2) orthonormal columns
        C = np.einsum("kni,nm,kmj->kij", E, H, E, optimize=True)
        lo_all.append(np.linalg.eigvalsh(C)[:, 0])
        done += k
    lo = np.concatenate(lo_all)
    return (lo[None, :] >= kappa[:, None]).mean(1)


def mc_table(clf: SphereClassifier, rho_t, ms, n: int, *, seed: int = 0,
             modes=("sphere", "ball"), progress: bool = True) -> dict[str, np.ndarray]:
    """Fig 8 data: MC misclassification (both modes), exact survival and ``B(ρ̃)`` per ``(m, ρ̃)``.

    Args:
        clf: the ball classifier. rho_t: normalised radii. ms: subspace dimensions.
        n: draws per point. seed: seed of one torch generator shared by all draws (in order).
        modes: MC modes to run. progress: tqdm bar.

    Returns:
        dict with ``rho_t (R,)``, ``m (M,)``, ``exact_keep (M, R)``, ``bound_keep (M, R)``, and
        ``mc_<mode>``, ``se_<mode>`` ``(M, R)`` (misclassification probability).
    """
    rho_t = np.asarray(rho_t, dtype=np.float64)
    ms = [int(m) for m in ms]
    gen = torch.Generator().manual_seed(seed)
    x = clf.x()
    out: dict[str, np.ndarray] = {"rho_t": rho_t, "m": np.array(ms)}
    out["exact_keep"] = np.stack([sphere_survival_exact(rho_t * clf.r, m, clf.s, clf.R)
                                  for m in ms])
    out["bound_keep"] = np.stack([bound_keep(rho_t, m, clf.kappa) for m in ms])
    total = len(ms) * len(rho_t) * len(modes)
    bar = tqdm(total=total, desc="Monte Carlo (Alg 1)", disable=not env.progress_enabled(progress))
    for mode in modes:
        p = np.zeros((len(ms), len(rho_t)))
        se = np.zeros_like(p)
        for a, m in enumerate(ms):
            for b, rt in enumerate(rho_t):
                p[a, b], se[a, b] = monte_carlo(clf, x, float(rt * clf.r), m, n, mode=mode,
                                                generator=gen)
                bar.update()
        out[f"mc_{mode}"], out[f"se_{mode}"] = p, se
    bar.close()
    return out



# parameters that do not change a result (display only); left out of cache keys
_NOT_RESULTS = ("progress",)


def call_key(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The cache key of the call ``fn(*args, **kwargs)``: every argument, defaults included.

    Binding the call to ``fn``'s signature names each parameter the computation uses (a seed,
    a chunk size, a number of matrices), so no default can change without the key changing.

    Args:
        fn: the function to be called. args, kwargs: its arguments.

    Returns:
        ``{"fn": qualified name, "args": {parameter: value}}`` (``progress`` left out).
    """
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    return {"fn": f"{fn.__module__}.{fn.__qualname__}",
            "args": {k: v for k, v in bound.arguments.items() if k not in _NOT_RESULTS}}


def cached_call(name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` through :func:`analysis.cache.memo`, keyed by :func:`call_key`
    and by the source of ``fn``'s module."""
    from analysis.cache import memo

    return memo(name, call_key(fn, *args, **kwargs), lambda: fn(*args, **kwargs),
                code=(inspect.getmodule(fn),))
