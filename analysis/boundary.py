"""Decision-boundary probes (Bell, Part III notes, §27-31; exploratory, spec §2.9).

Test objects with known answers (the k-orthant and the k-Θ-wedge) and their Euclidean
projections, and the boundary SVD probe of §31: sample around a boundary point, push each
sample back onto the boundary, and read the local dimension of the boundary from the singular
values of the projected points (a (n−1)-dimensional flat boundary has one small singular value;
the corner of a k-orthant has k).

Conventions: the k-orthant is ``O_k = {x : x_i ≥ 0, i ≤ k}`` and the k-Θ-wedge (the spec's
resolution of Def 30.8-30.10) is ``{x_1 ≥ 0, 0 ≤ x_i ≤ x_1 tan θ_{i−1}, i = 2..k}``
(``θ = π/2`` gives the orthant). The angle of incidence of a direction ``v`` at a boundary with
normal ``n`` is reported as ``α = π/2 − arcsin(|v·n| / ‖v‖‖n‖)`` (0 = orthogonal crossing; our
reading of Def 30.1, which defines the angle twice).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from analysis.persistence import labels_of

__all__ = [
    "orthant_project",
    "wedge_project",
    "wedge_project_dykstra",
    "in_wedge",
    "ORTHANT_RATIO",
    "count_dropped",
    "boundary_point",
    "project_to_boundary",
    "ProbeResult",
    "boundary_svd_probe",
    "spectra",
    "flat_spectrum",
    "incidence_angle",
    "labels_in_ball",
]

#: std of max(Z, 0) for Z ~ N(0, 1): the ratio of the k dropped singular values of Gaussian
#: samples projected onto the closed k-orthant to the others, √(1/2 − 1/(2π)).
ORTHANT_RATIO = math.sqrt(0.5 - 1.0 / (2.0 * math.pi))


# --------------------------------------------------------------------------- test objects


def count_dropped(s: np.ndarray, m: int, n: int) -> int:
    """Number of singular values of ``m`` centred samples in ``R^n`` (unit variance per
    coordinate) that sit below the Marchenko-Pastur bulk: below the midpoint between
    :data:`ORTHANT_RATIO` and the bulk's lower edge ``1 − √(n/m)`` (in units of ``√(m−1)``)."""
    thr = 0.5 * (ORTHANT_RATIO + 1.0 - math.sqrt(n / m))
    return int(np.sum(np.asarray(s) / math.sqrt(m - 1) < thr))


def orthant_project(x: np.ndarray, k: int) -> np.ndarray:
    """Euclidean projection onto the closed k-orthant (clip the first k coordinates at 0).

    Shape:
        ``x``: ``(N, n)`` or ``(n,)``; same shape out.
    """
    if k < 1 or k > np.shape(x)[-1]:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={np.shape(x)[-1]}")
    p = np.array(x, dtype=np.float64, copy=True)
    p[..., :k] = np.maximum(p[..., :k], 0.0)
    return p


def _tans(thetas: Sequence[float]) -> np.ndarray:
    th = np.asarray(thetas, dtype=np.float64)
    if np.any(th <= 0) or np.any(th > math.pi / 2 + 1e-15):
        raise ValueError("wedge angles must lie in (0, π/2]")
    return np.where(np.isclose(th, math.pi / 2), np.inf, np.tan(np.minimum(th, math.pi / 2)))


def in_wedge(x: np.ndarray, thetas: Sequence[float], tol: float = 0.0) -> np.ndarray:
    """Membership in the closed k-Θ-wedge, ``k = len(thetas) + 1`` (bool per row)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    tau = _tans(thetas)
    k = len(tau) + 1
    ok = x[:, 0] >= -tol
    for i in range(1, k):
        ok &= x[:, i] >= -tol
        if np.isfinite(tau[i - 1]):
            ok &= x[:, i] <= x[:, 0] * tau[i - 1] + tol
    return ok


def _wedge_project_one(x: np.ndarray, tau: np.ndarray, iters: int = 200) -> np.ndarray:
    k = len(tau) + 1
    xi = x[1:k]
    fin = np.isfinite(tau)
    tf = np.where(fin, tau, 0.0)

    def fprime(z1: float) -> float:
        over = fin & (xi > z1 * tf)
        return 2 * (z1 - x[0]) + float(np.sum(2 * (z1 * tau[over] - xi[over]) * tau[over]))

    # f is convex in z1 >= 0: its minimiser is 0 if f'(0) >= 0, else a root of f'
    if fprime(0.0) >= 0:
        z1 = 0.0
    else:
        hi = max(1.0, abs(x[0]) + float(np.max(np.abs(xi), initial=0.0)))
        while fprime(hi) < 0:
            hi *= 2
        lo = 0.0
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            if fprime(mid) < 0:
                lo = mid
            else:
                hi = mid
        z1 = 0.5 * (lo + hi)
    p = x.copy()
    p[0] = z1
    p[1:k] = np.clip(xi, 0.0, np.where(fin, z1 * tf, np.inf))
    return p


def wedge_project(x: np.ndarray, thetas: Sequence[float]) -> np.ndarray:
    """Euclidean projection onto the closed k-Θ-wedge by the 1-D convex method (spec §2.9).

    For fixed ``z_1`` the problem separates, ``z_i = clip(x_i, 0, z_1 tan θ_{i−1})``; the convex
    ``f(z_1) = (z_1 − x_1)² + Σ_i dist(x_i, [0, z_1 tan θ_{i−1}])²`` is minimised over
    ``z_1 ≥ 0`` by bisection on ``f′`` (this replaces the derivation of §30.4).

    Shape:
        ``x``: ``(N, n)`` or ``(n,)``, ``n ≥ k``; same shape out.
    """
    tau = _tans(thetas)
    X = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if X.shape[1] < len(tau) + 1:
        raise ValueError("input dimension must be >= k = len(thetas) + 1")
    out = np.stack([_wedge_project_one(r, tau) for r in X])
    return out if np.ndim(x) == 2 else out[0]


def wedge_project_dykstra(x: np.ndarray, thetas: Sequence[float], iters: int = 20000,
                          tol: float = 1e-14) -> np.ndarray:
    """Cross-check: Dykstra's alternating projections onto the half-spaces of the wedge."""
    tau = _tans(thetas)
    k = len(tau) + 1
    X = np.atleast_2d(np.asarray(x, dtype=np.float64))
    n = X.shape[1]
    normals, offsets = [], []  # half-spaces a·z <= 0
    for i in range(k):
        a = np.zeros(n)
        a[i] = -1.0
        normals.append(a)
    for i in range(1, k):
        if np.isfinite(tau[i - 1]):
            a = np.zeros(n)
            a[i], a[0] = 1.0, -tau[i - 1]
            normals.append(a / np.linalg.norm(a))
    offsets = np.zeros(len(normals))
    out = []
    for x0 in X:
        z = x0.copy()
        incs = np.zeros((len(normals), n))
        for _ in range(iters):
            z_old = z.copy()
            for j, a in enumerate(normals):
                y = z + incs[j]
                viol = a @ y - offsets[j]
                z_new = y - max(viol, 0.0) * a
                incs[j] = y - z_new
                z = z_new
            if np.max(np.abs(z - z_old)) < tol:
                break
        out.append(z)
    out = np.stack(out)
    return out if np.ndim(x) == 2 else out[0]


# --------------------------------------------------------------------------- boundary probe


@torch.no_grad()
def boundary_point(model: Callable[[Tensor], Tensor], x1: Tensor, x2: Tensor,
                   iters: int = 50) -> Tensor:
    """Bisection on the segment ``x1 → x2`` for the first change of ``C(x1)`` (batched).

    Args:
        model: logits model (eval mode). x1, x2: ``(B, ...)`` with ``C(x1) ≠ C(x2)``.

    Returns:
        ``(B, ...)`` points on the segment within ``2^{−iters}`` (in τ) of a label change, on
        the side of ``x1``'s label.
    """
    c1 = labels_of(model, x1)
    if (c1 == labels_of(model, x2)).any():
        raise ValueError("boundary_point needs end points with different labels")
    view = (-1,) + (1,) * (x1.dim() - 1)
    lo = torch.zeros(len(x1), dtype=x1.dtype, device=x1.device)
    hi = torch.ones_like(lo)
    for _ in range(iters):
        mid = (lo + hi) / 2
        xm = x1 + mid.view(view) * (x2 - x1)
        same = labels_of(model, xm) == c1
        lo = torch.where(same, mid, lo)
        hi = torch.where(same, hi, mid)
    return x1 + lo.view(view) * (x2 - x1)


@torch.no_grad()
def project_to_boundary(model: Callable[[Tensor], Tensor], xs: Tensor, x1: Tensor, x2: Tensor,
                        iters: int = 50) -> tuple[Tensor, Tensor]:
    """Push each sample onto the boundary between ``C(x1)`` and ``C(x2)`` (§31).

    A sample labelled ``C(x1)`` moves by bisection toward ``x2`` (the opposite-class parent),
    any other sample toward ``x1``, until the label changes.

    Args:
        xs: samples ``(N, ...)``. x1, x2: the two parents ``(1, ...)``.

    Returns:
        ``(points, ok)``: boundary points ``(N, ...)`` and a bool mask of the samples whose
        segment did cross (always true for parents of different labels).
    """
    c1 = int(labels_of(model, x1)[0])
    lab = labels_of(model, xs)
    target = torch.where((lab == c1).view((-1,) + (1,) * (xs.dim() - 1)), x2, x1)
    ok = labels_of(model, target) != lab
    pts = xs.clone()
    if ok.any():
        pts[ok] = boundary_point(model, xs[ok], target[ok], iters)
    return pts, ok


def spectra(points: np.ndarray, normals: np.ndarray | None = None, n_pairs: int | None = None,
            seed: int = 0) -> dict[str, np.ndarray]:
    """Singular values (descending) of (a) the centred points, (b) random pairwise differences,
    (c) the normals ``x − proj(x)`` when given.

    Shape:
        ``points``: ``(N, n)``; ``normals``: ``(N, n)``.
    """
    P = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    out = {"centred": np.linalg.svd(P - P.mean(0), compute_uv=False)}
    rng = np.random.default_rng(seed)
    m = n_pairs or len(P)
    i, j = rng.integers(0, len(P), m), rng.integers(0, len(P), m)
    out["pairs"] = np.linalg.svd(P[i] - P[j], compute_uv=False)
    if normals is not None:
        Nn = np.asarray(normals, dtype=np.float64).reshape(len(normals), -1)
        out["normals"] = np.linalg.svd(Nn, compute_uv=False)
    return out


def flat_spectrum(X: np.ndarray) -> np.ndarray:
    """``X = UΣVᵀ`` with Σ replaced by ``(‖X‖_F/√r) I`` (r = rank): same Frobenius norm and
    singular vectors, flat spectrum (the spec's correction of §31's ``|Σ|₂ I``, which does not
    keep the Frobenius norm)."""
    U, s, Vt = np.linalg.svd(np.asarray(X, dtype=np.float64), full_matrices=False)
    r = int(np.sum(s > s[0] * 1e-12)) if len(s) else 0
    if r == 0:
        return np.zeros_like(X, dtype=np.float64)
    c = np.linalg.norm(s) / math.sqrt(r)
    return (U[:, :r] * c) @ Vt[:r]


@dataclass
class ProbeResult:
    """Output of :func:`boundary_svd_probe`.

    Attributes:
        x_b: the boundary point ``(1, ...)``. points: projected samples ``(N, n)``.
        ok: mask of samples that reached the boundary. spectra: see :func:`spectra`.
        normal_cosine: |cos| between the smallest right singular vector of the centred
            projected points and ``∇ₓ(z_{c1} − z_{c2})`` at ``x_b``; ``nan`` when there are no
            more samples than dimensions (N ≤ n: the points leave many directions unspanned,
            so no smallest singular vector is the normal).
        gradient_off_span: ``‖(I − Π)∇ₓ(z_{c1} − z_{c2})‖ / ‖∇ₓ(z_{c1} − z_{c2})‖`` with Π the
            projection on the span of the centred projected points (1 for a flat boundary);
            ``nan`` when N > n (the span is everything). Not a cosine: with N ≪ n even a
            random direction gives ≈ √(1 − N/n).
        labels: the two classes.
    """

    x_b: Tensor
    points: np.ndarray
    ok: np.ndarray
    spectra: dict[str, np.ndarray]
    normal_cosine: float
    gradient_off_span: float
    labels: tuple[int, int]


def boundary_svd_probe(model: torch.nn.Module, x1: Tensor, x2: Tensor, n_samples: int = 200,
                       sigma: float = 0.01, seed: int = 0, iters: int = 40) -> ProbeResult:
    """The boundary SVD probe of §31 on a classifier.

    ``x_b`` = bisection point on ``x1 → x2``; ``n_samples`` Gaussian samples ``N(x_b, σ²I)``;
    each pushed back onto the boundary (:func:`project_to_boundary`); singular values of the
    projected points, their pairwise differences and the normals; the local normal (smallest
    singular vector) compared with the margin gradient at ``x_b``.

    Args:
        model: logits model (eval mode). x1, x2: ``(1, ...)`` with different labels.
        n_samples: N. sigma: sample std (input units). seed: noise seed.

    Returns:
        :class:`ProbeResult`.
    """
    if n_samples < 2 or sigma <= 0:
        raise ValueError("need n_samples >= 2 and sigma > 0")
    c1, c2 = int(labels_of(model, x1)[0]), int(labels_of(model, x2)[0])
    xb = boundary_point(model, x1, x2, iters=iters)
    g = torch.Generator(device=x1.device).manual_seed(seed)
    xs = xb + sigma * torch.randn((n_samples, *x1.shape[1:]), generator=g, dtype=x1.dtype,
                                  device=x1.device)
    pts, ok = project_to_boundary(model, xs, x1, x2, iters=iters)
    P = pts.flatten(1).double().cpu().numpy()
    N = (xs - pts).flatten(1).double().cpu().numpy()
    sp = spectra(P[ok.cpu().numpy()], N[ok.cpu().numpy()], seed=seed)
    Pc = P[ok.cpu().numpy()]
    _, _, Vt = np.linalg.svd(Pc - Pc.mean(0), full_matrices=False)
    v = Vt[-1] if Pc.shape[0] > Pc.shape[1] else None
    xg = xb.clone().requires_grad_(True)
    with torch.enable_grad():
        z = model(xg)
        (grad,) = torch.autograd.grad(z[0, c1] - z[0, c2], xg)
    gn = grad.flatten().double().cpu().numpy()
    gnorm = np.linalg.norm(gn) + 1e-300
    if v is None:  # no more samples than dimensions: a true cosine is not defined; report
        # the part of the gradient orthogonal to the points' span under its own name
        # orthonormal basis of the span: left singular vectors of the nonzero singular values
        # (a QR of the centred points, rank ≤ N − 1, adds one arbitrary column)
        U, sv, _ = np.linalg.svd((Pc - Pc.mean(0)).T, full_matrices=False)
        Q = U[:, sv > 1e-10 * sv[0]] if len(sv) and sv[0] > 0 else U[:, :0]
        cos = math.nan
        off = float(np.linalg.norm(gn - Q @ (Q.T @ gn)) / gnorm)
    else:
        cos = float(abs(v @ gn) / gnorm)
        off = math.nan
    return ProbeResult(x_b=xb.detach(), points=P, ok=ok.cpu().numpy(), spectra=sp,
                       normal_cosine=cos, gradient_off_span=off, labels=(c1, c2))


def incidence_angle(v: np.ndarray | Tensor, n: np.ndarray | Tensor) -> float:
    """``α = π/2 − arcsin(|v·n| / ‖v‖‖n‖)`` in radians (0 = orthogonal crossing)."""
    v = np.asarray(v, dtype=np.float64).ravel()
    n = np.asarray(n, dtype=np.float64).ravel()
    s = abs(v @ n) / (np.linalg.norm(v) * np.linalg.norm(n))
    return float(math.pi / 2 - math.asin(min(1.0, s)))


@torch.no_grad()
def labels_in_ball(model: Callable[[Tensor], Tensor], x: Tensor, radii: Sequence[float],
                   n_samples: int = 1000, seed: int = 0) -> list[int]:
    """Number of distinct labels among uniform samples of ``B_ε(x)`` for each ε (§29: a
    K-decision point shows K labels for every small ε; an interior point shows 1)."""
    g = torch.Generator(device=x.device).manual_seed(seed)
    n = x[0].numel()
    out = []
    for r in radii:
        v = torch.randn((n_samples, n), generator=g, dtype=x.dtype, device=x.device)
        u = torch.rand((n_samples, 1), generator=g, dtype=x.dtype, device=x.device)
        y = x.flatten(1) + r * u ** (1.0 / n) * v / v.norm(dim=1, keepdim=True)
        out.append(int(labels_of(model, y.view(n_samples, *x.shape[1:])).unique().numel()))
    return out
