"""Random-matrix spectral densities (Warwick §2.4 and §7, eqs 20-26 and 57-65).

Normalisations (erratum E15: the document omits the ``1/n`` scalings):

* Wigner: ``M = (A + Aᵀ)/√(2n)``, ``A_ij ~ N(0, 1)`` → semicircle of variance 1 (radius 2);
  ``σ·M`` has the semicircle ``ρ_sc(λ; σ) = √(4σ² - λ²)/(2πσ²)`` on ``|λ| ≤ 2σ`` (eq. 21).
* Wishart: ``X ∈ ℝ^{n×p}`` with entries ``N(0, s₀/p)``, ``M = XXᵀ``, ``φ = n/p`` →
  Marchenko-Pastur ``ρ_MP(λ; s₀, φ) = √((λ₊-λ)(λ-λ₋)) / (2π s₀ φ λ)`` on
  ``[λ₋, λ₊] = s₀(1 ∓ √φ)²`` (eqs 22-23), plus an atom ``1 - 1/φ`` at 0 when ``φ > 1``.
  Mean ``s₀``, variance ``s₀²φ``.
* Free sum (§7): ``H = H₀ + H₁``, ``H₀ ~ MP(1, φ)``, ``H₁ ~`` semicircle of variance
  ``s = ε·|log α|`` (the document's ``ε log α`` is ``≤ 0``, a negative variance). R-transforms
  ``R_MP(w) = 1/(1 - φw)``, ``R_sc(w) = s w`` add; the Stieltjes transform ``G`` solves (65)

      s φ G³ - (s + zφ) G² + (z + φ - 1) G - 1 = 0,

  and ``ρ(λ) = -Im G(λ + iη)/π`` with the root of most negative imaginary part (``η ↓ 0``).
  For ``s = 0`` it reduces to ``φzG² - (z + φ - 1)G + 1 = 0`` (Marchenko-Pastur).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "semicircle_pdf",
    "semicircle_cdf",
    "mp_edges",
    "mp_pdf",
    "mp_cdf",
    "stieltjes_free_sum",
    "free_sum_pdf",
    "free_sum_support",
    "density_moments",
    "grid_cdf",
    "ks_distance",
    "sample_wigner",
    "wigner_matrix",
    "sample_wishart",
    "sample_free_sum",
    "free_sum_density",
    "semicircle_ks_to_density",
]


def _pos(name: str, v: float) -> None:
    if not v > 0:
        raise ValueError(f"{name} must be > 0, got {v}")


def semicircle_pdf(lam, sigma: float = 1.0):
    """Wigner semicircle density (21) of variance ``σ²`` (radius ``2σ``)."""
    _pos("sigma", sigma)
    lam = np.asarray(lam, dtype=np.float64)
    return np.sqrt(np.maximum(4 * sigma**2 - lam**2, 0.0)) / (2 * np.pi * sigma**2)


def semicircle_cdf(lam, sigma: float = 1.0, mean: float = 0.0):
    """CDF of the semicircle of variance ``σ²`` centred at ``mean`` (closed form)."""
    _pos("sigma", sigma)
    x = np.clip(np.asarray(lam, dtype=np.float64) - mean, -2 * sigma, 2 * sigma)
    return (0.5 + x * np.sqrt(np.maximum(4 * sigma**2 - x**2, 0.0)) / (4 * np.pi * sigma**2)
            + np.arcsin(x / (2 * sigma)) / np.pi)


def mp_edges(phi: float, s0: float = 1.0) -> tuple[float, float]:
    """Support ``s₀(1 ∓ √φ)²`` of the Marchenko-Pastur law."""
    _pos("phi", phi)
    _pos("s0", s0)
    return s0 * (1 - math.sqrt(phi)) ** 2, s0 * (1 + math.sqrt(phi)) ** 2


def mp_pdf(lam, phi: float, s0: float = 1.0):
    """Marchenko-Pastur density (continuous part) (22)-(23); integrates to ``min(1, 1/φ)``."""
    lo, hi = mp_edges(phi, s0)
    lam = np.asarray(lam, dtype=np.float64)
    inside = (lam > lo) & (lam < hi)
    safe = np.where(inside, lam, 1.0)
    val = np.sqrt(np.maximum((hi - safe) * (safe - lo), 0.0)) / (2 * np.pi * s0 * phi * safe)
    return np.where(inside, val, 0.0)


def mp_cdf(lam, phi: float, s0: float = 1.0, n_grid: int = 20001):
    """Marchenko-Pastur CDF (atom at 0 included for ``φ > 1``).

    With ``λ = c + w cos θ`` (``c = s₀(1+φ)``, ``w = 2s₀√φ``) the density times ``dλ`` is the
    smooth ``w² sin²θ / (2π s₀ φ (c + w cos θ)) dθ``; it is integrated on a θ grid (trapezoid,
    spectrally accurate for this periodic-like integrand) and interpolated. For ``φ = 1`` it
    equals the closed form ``(2/π)(U + sin U cos U)``, ``U = arcsin(√(λ/s₀)/2)``.
    """
    lo, hi = mp_edges(phi, s0)
    c, w = s0 * (1 + phi), 2 * s0 * math.sqrt(phi)
    th = np.linspace(math.pi, 0.0, n_grid)  # λ increasing from lo to hi
    if abs(c - w) <= 1e-12 * c:  # φ = 1: sin²θ/(c + w cos θ) = (1 - cos θ)/w exactly
        f = w * (1 - np.cos(th)) / (2 * np.pi * s0 * phi)
    else:
        f = w**2 * np.sin(th) ** 2 / (2 * np.pi * s0 * phi * (c + w * np.cos(th)))
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.abs(np.diff(th)))])
    lam_grid = c + w * np.cos(th)
    atom = max(0.0, 1.0 - 1.0 / phi)
    lam = np.asarray(lam, dtype=np.float64)
    out = atom + np.interp(lam, lam_grid, cum, left=0.0, right=cum[-1])
    return np.where(lam < 0, 0.0, out)


def stieltjes_free_sum(z, s: float, phi: float) -> np.ndarray:
    """Stieltjes transform ``G(z)`` of ``MP(1, φ) ⊞ semicircle(variance s)`` from the cubic (65).

    Roots of all ``z`` at once (eigenvalues of batched companion matrices); per ``z`` the root
    with the most negative imaginary part is kept (``Im z > 0`` ⇒ ``Im G < 0``).

    Args:
        z: complex points (array) with ``Im z > 0``.
        s: semicircle variance ``≥ 0`` (``s = 0``: the quadratic of MP).
        phi: ratio ``> 0``.

    Returns:
        ``G(z)`` (complex array like ``z``).
    """
    if s < 0:
        raise ValueError(f"s (a variance) must be >= 0, got {s}; the document's eps*log(alpha) "
                         "is <= 0, use s = eps*|log alpha|")
    _pos("phi", phi)
    z = np.asarray(z, dtype=np.complex128)
    zf = z.ravel()
    if s > 0:
        # monic: G³ + a2 G² + a1 G + a0
        a2 = -(s + zf * phi) / (s * phi)
        a1 = (zf + phi - 1) / (s * phi)
        a0 = np.full_like(zf, -1.0 / (s * phi))
        C = np.zeros((zf.size, 3, 3), dtype=np.complex128)
        C[:, 0, :] = np.stack([-a2, -a1, -a0], axis=1)
        C[:, 1, 0] = 1.0
        C[:, 2, 1] = 1.0
    else:
        a1 = -(zf + phi - 1) / (phi * zf)
        a0 = 1.0 / (phi * zf)
        C = np.zeros((zf.size, 2, 2), dtype=np.complex128)
        C[:, 0, :] = np.stack([-a1, -a0], axis=1)
        C[:, 1, 0] = 1.0
    roots = np.linalg.eigvals(C)
    idx = np.argmin(roots.imag, axis=1)
    return roots[np.arange(zf.size), idx].reshape(z.shape)


def free_sum_support(s: float, phi: float) -> tuple[float, float]:
    """An interval containing the spectrum of ``H₀ + H₁`` (``[a₋+b₋, a₊+b₊]``)."""
    lo, hi = mp_edges(phi)
    if phi > 1:
        lo = 0.0
    r = 2 * math.sqrt(max(s, 0.0))
    return lo - r, hi + r


def free_sum_pdf(lam, s: float, phi: float, eta: float = 1e-7):
    """Spectral density ``ρ(λ) = max(0, -Im G(λ + iη)/π)`` of ``H₀ + H₁`` (eqs 62-65)."""
    lam = np.asarray(lam, dtype=np.float64)
    G = stieltjes_free_sum(lam + 1j * eta, s, phi)
    return np.maximum(0.0, -G.imag / np.pi)


def density_moments(lam, rho) -> dict[str, float]:
    """Mass, mean, variance and mass below 0 of a density on a grid (trapezoid rule)."""
    lam, rho = np.asarray(lam, np.float64), np.asarray(rho, np.float64)
    mass = float(np.trapezoid(rho, lam))
    mean = float(np.trapezoid(lam * rho, lam)) / mass
    var = float(np.trapezoid((lam - mean) ** 2 * rho, lam)) / mass
    neg = lam <= 0
    neg_mass = float(np.trapezoid(np.where(neg, rho, 0.0), lam)) / mass
    return {"mass": mass, "mean": mean, "var": var, "neg_mass": neg_mass}


def grid_cdf(lam, rho) -> np.ndarray:
    """Cumulative trapezoid of a density on a grid, normalised to end at 1."""
    lam, rho = np.asarray(lam, np.float64), np.asarray(rho, np.float64)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (rho[1:] + rho[:-1]) * np.diff(lam))])
    return cum / cum[-1]


def ks_distance(samples, cdf) -> float:
    """Kolmogorov-Smirnov distance ``sup |F_n - F|`` of samples to a CDF (a callable)."""
    x = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    n = x.size
    F = np.asarray(cdf(x), dtype=np.float64)
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - F), np.max(F - (i - 1) / n)))


def wigner_matrix(n: int, sigma: float = 1.0, *, rng: np.random.Generator) -> np.ndarray:
    """A normalised Wigner matrix ``σ(A + Aᵀ)/√(2n)``, ``A`` with i.i.d. N(0, 1) entries drawn
    from ``rng`` (its spectrum tends to the semicircle of variance ``σ²``, radius ``2σ``)."""
    a = rng.standard_normal((n, n))
    return sigma * (a + a.T) / math.sqrt(2.0 * n)


def sample_wigner(n: int, sigma: float = 1.0, *, seed: int = 0) -> np.ndarray:
    """Eigenvalues of ``σ(A + Aᵀ)/√(2n)`` (semicircle of variance ``σ²``)."""
    return np.linalg.eigvalsh(wigner_matrix(n, sigma, rng=np.random.default_rng(seed)))


def sample_wishart(n: int, p: int, s0: float = 1.0, *, seed: int = 0) -> np.ndarray:
    """Eigenvalues of ``XXᵀ``, ``X ∈ ℝ^{n×p}`` with entries ``N(0, s₀/p)`` (MP, ``φ = n/p``)."""
    gen = np.random.default_rng(seed)
    X = gen.standard_normal((n, p)) * math.sqrt(s0 / p)
    return np.linalg.eigvalsh(X @ X.T)


def sample_free_sum(n: int, s: float, phi: float, *, seed: int = 0) -> np.ndarray:
    """Eigenvalues of ``W + √s·M``: ``W`` Wishart ``MP(1, φ)`` (``p = n/φ``), ``M`` Wigner."""
    gen = np.random.default_rng(seed)
    p = int(round(n / phi))
    X = gen.standard_normal((n, p)) / math.sqrt(p)
    a = gen.standard_normal((n, n))
    H = X @ X.T + math.sqrt(max(s, 0.0)) * (a + a.T) / math.sqrt(2.0 * n)
    return np.linalg.eigvalsh(H)


def free_sum_density(s: float, phi: float, n_grid: int = 20001, pad: float = 0.05
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``(λ grid, ρ(λ))`` of the free sum on its support widened by ``pad`` on each side."""
    lo, hi = free_sum_support(s, phi)
    w = pad * (hi - lo)
    lam = np.linspace(lo - w, hi + w, int(n_grid))
    return lam, free_sum_pdf(lam, s, phi)


def semicircle_ks_to_density(lam, rho) -> float:
    """Sup distance between the CDF of a gridded density and the moment-matched semicircle."""
    m = density_moments(lam, rho)
    F = grid_cdf(lam, rho)
    return float(np.max(np.abs(F - semicircle_cdf(lam, math.sqrt(m["var"]), m["mean"]))))
