"""Curvature bounds on the minimal perturbation (Warwick, Thm 3.0.1, eq. 34), with corrections.

Second-order model of the smooth margin ``g(y) = f_c(y) - f_j(y)`` at ``x`` (``c`` the predicted
class, ``j`` the runner-up, ``t = g(x) >= 0``):

    q(δ) = Jᵀδ + ½ δᵀHδ,        J = ∇g(x),  H = ∇²g(x).

All bounds are built from one function (cancellation-free form of eq. 34)

    h(a, ν, t) = (a/ν)(√(1 + 2νt/a²) - 1) = 2t / (a + √(a² + 2νt)),

the positive root ``r`` of ``½νr² + a r = t``, with ``h(a, 0, t) = t/a`` and ``h(0, ν, t) = √(2t/ν)``.

Branches (``δ*`` = the smallest perturbation that reaches the constraint):

* ``"doc"`` (the document, literal): ``h(‖J‖, λ_max, t) ≤ ‖δ*‖ ≤ h(|Jᵀu_max|, λ_max, t)`` for
  ``|q(δ)| ≥ t``. The lower bound is **false** in general (erratum E9; see
  :func:`counterexample`).
* ``"increase"`` (``q ≥ +t``, what the proof shows): the same pair, valid (``ν = max(λ_max, 0)``).
* ``"decrease"`` (``q ≤ -t``, reaching the quadratic model's decision boundary ``g = 0``; the
  branch that matters for robustness): ``ν₋ = max(0, -λ_min)``,
  ``h(‖J‖, ν₋, t) ≤ ‖δ*‖ ≤ h(|Jᵀu_min|, ν₋, t)``; the upper bound exists only when ``λ_min < 0``
  (or ``λ_min = 0`` and ``Jᵀu_min ≠ 0``), else it is ``inf``.
* ``"abs"`` (``|q| ≥ t``): lower ``h(‖J‖, ‖H‖₂, t)``, upper the smaller of the increase and
  decrease upper bounds.

These are exact statements about the quadratic model only; for a network they are estimates.
:func:`network_curvature` computes the ingredients for a model (``J`` by autograd, the extreme
eigenpairs of ``H`` by a batched Lanczos iteration on Hessian-vector products, with the residual
norm of each Ritz pair) for the margin against **every** other class: the label changes at the
nearest of those boundaries, which need not be the runner-up's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from analysis import autodiff
from analysis.autodiff import batched_lanczos

__all__ = [
    "BRANCHES",
    "h",
    "h_document_form",
    "Bounds",
    "bounds_from_spectrum",
    "curvature_bounds",
    "min_norm_quadratic_2d",
    "counterexample",
    "margin_fn",
    "batched_lanczos",
    "network_curvature",
    "fig6_curves",
    "doc_vs_true_family",
    "decision_slice",
    "boundary_fraction",
    "random_plane",
]

BRANCHES = ("doc", "increase", "decrease", "abs")


def h(a, nu, t):
    """Positive root ``r`` of ``½ ν r² + a r = t`` (eq. 34, cancellation-free form).

    Args:
        a: slope(s) ``≥ 0`` (a Jacobian norm or ``|Jᵀu|``).
        nu: curvature(s) ``≥ 0``.
        t: margin(s) ``≥ 0``.

    Returns:
        ``2t / (a + √(a² + 2νt))`` (numpy array, broadcast); ``inf`` where ``a = ν = 0 < t``.
    """
    a, nu, t = (np.asarray(v, dtype=np.float64) for v in (a, nu, t))
    if np.any(a < 0) or np.any(nu < 0) or np.any(t < 0):
        raise ValueError("h(a, nu, t) needs a >= 0, nu >= 0 and t >= 0")
    den = a + np.sqrt(a * a + 2.0 * nu * t)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, 2.0 * t / np.where(den > 0, den, 1.0), np.where(t > 0, np.inf, 0.0))
    return out


def h_document_form(a, nu, t):
    """The document's form ``(a/ν)(√(1 + 2νt/a²) - 1)`` of eq. (34) (``a, ν > 0``; tests only)."""
    a, nu, t = (np.asarray(v, dtype=np.float64) for v in (a, nu, t))
    return a / nu * (np.sqrt(1.0 + 2.0 * nu * t / a**2) - 1.0)


@dataclass
class Bounds:
    """Lower and upper bounds on ``‖δ*‖`` (numpy arrays; ``inf`` = no upper bound)."""

    lower: np.ndarray
    upper: np.ndarray
    branch: str


def bounds_from_spectrum(j_norm, t, lam_max, lam_min, ju_max, ju_min, branch: str) -> Bounds:
    """Bounds of one branch from the scalar ingredients (vectorised over points).

    Args:
        j_norm: ``‖J‖``.
        t: margin ``g(x) ≥ 0``.
        lam_max, lam_min: extreme eigenvalues of ``H``.
        ju_max, ju_min: ``|Jᵀu_max|``, ``|Jᵀu_min|`` (unit eigenvectors).
        branch: one of :data:`BRANCHES`.

    Returns:
        :class:`Bounds`.
    """
    if branch not in BRANCHES:
        raise ValueError(f"branch must be one of {BRANCHES}, got {branch!r}")
    j_norm, t, lam_max, lam_min, ju_max, ju_min = (
        np.abs(np.asarray(v, dtype=np.float64)) if k in (0, 1, 4, 5) else np.asarray(v, np.float64)
        for k, v in enumerate((j_norm, t, lam_max, lam_min, ju_max, ju_min)))
    nu_p = np.maximum(lam_max, 0.0)
    nu_m = np.maximum(-lam_min, 0.0)
    up_inc = h(ju_max, nu_p, t)
    up_inc = np.where(lam_max >= 0, up_inc, np.inf)  # along u_max only when it curves upward
    up_dec = np.where((lam_min < 0) | ((lam_min == 0) & (ju_min > 0)), h(ju_min, nu_m, t), np.inf)
    if branch == "doc":
        return Bounds(h(j_norm, nu_p, t), up_inc, branch)
    if branch == "increase":
        return Bounds(h(j_norm, nu_p, t), up_inc, branch)
    if branch == "decrease":
        return Bounds(h(j_norm, nu_m, t), up_dec, branch)
    norm2 = np.maximum(np.abs(lam_max), np.abs(lam_min))
    return Bounds(h(j_norm, norm2, t), np.minimum(up_inc, up_dec), branch)


def curvature_bounds(J, H_or_eigs, t: float, branch: str = "decrease") -> Bounds:
    """Bounds of Thm 3.0.1 for an explicit quadratic model ``q(δ) = Jᵀδ + ½δᵀHδ``.

    Args:
        J: gradient, shape ``(d,)``.
        H_or_eigs: the symmetric Hessian ``(d, d)``, or its eigen-decomposition
            ``(eigvals (d,), eigvecs (d, d))`` (columns = unit eigenvectors).
        t: margin ``≥ 0``.
        branch: ``"doc"``, ``"increase"``, ``"decrease"`` or ``"abs"`` (module docstring).

    Returns:
        :class:`Bounds` with scalar arrays.
    """
    J = np.asarray(J, dtype=np.float64).ravel()
    if isinstance(H_or_eigs, tuple):
        w, V = (np.asarray(a, dtype=np.float64) for a in H_or_eigs)
    else:
        H = np.asarray(H_or_eigs, dtype=np.float64)
        if H.shape != (J.size, J.size):
            raise ValueError(f"H must be ({J.size}, {J.size}), got {H.shape}")
        w, V = np.linalg.eigh(0.5 * (H + H.T))
    i_max, i_min = int(np.argmax(w)), int(np.argmin(w))
    return bounds_from_spectrum(np.linalg.norm(J), t, w[i_max], w[i_min],
                                abs(J @ V[:, i_max]), abs(J @ V[:, i_min]), branch)


def min_norm_quadratic_2d(J, H, t: float, branch: str = "decrease",
                          n_dirs: int = 200_000) -> float:
    """Brute-force ``‖δ*‖`` of a 2-D quadratic model over an angular grid (tests, figures).

    Along direction ``e(θ)`` the model is ``q = r a(θ) + ½ r² b(θ)``; the smallest ``r > 0``
    with ``q = +t`` (increase), ``q = -t`` (decrease) or either (abs / doc) is a root of a
    quadratic, solved in closed form; the minimum over ``θ`` approximates ``‖δ*‖`` from above.

    Args:
        J: ``(2,)``. H: ``(2, 2)`` symmetric. t: margin ``> 0``.
        branch: ``"increase"``, ``"decrease"``, ``"abs"`` or ``"doc"`` (= ``"abs"``, the
            document's constraint ``|q| ≥ t``).
        n_dirs: number of directions.

    Returns:
        The smallest root found (``inf`` if the constraint is never reached).
    """
    if branch not in BRANCHES:
        raise ValueError(f"branch must be one of {BRANCHES}, got {branch!r}")
    th = np.linspace(0.0, 2 * np.pi, n_dirs, endpoint=False)
    E = np.stack([np.cos(th), np.sin(th)])
    a = np.asarray(J, dtype=np.float64) @ E
    b = np.einsum("in,ij,jn->n", E, np.asarray(H, dtype=np.float64), E)

    def smallest_root(s: float) -> np.ndarray:
        # ½ b r² + a r - s t = 0, smallest positive root; s = +1 (increase) or -1 (decrease)
        A, Bc, C = 0.5 * b, a, -s * t
        out = np.full_like(a, np.inf)
        lin = np.abs(A) < 1e-300
        with np.errstate(divide="ignore", invalid="ignore"):
            r_lin = -C / Bc
        out = np.where(lin & (r_lin > 0), r_lin, out)
        disc = Bc * Bc - 4 * A * C
        ok = (~lin) & (disc >= 0)
        sq = np.sqrt(np.where(ok, disc, 0.0))
        # stable roots: q = -(B + sign(B) sq)/2, r1 = q/A, r2 = C/q
        qq = -0.5 * (Bc + np.where(Bc >= 0, 1.0, -1.0) * sq)
        with np.errstate(divide="ignore", invalid="ignore"):
            r1 = np.where(ok, qq / np.where(A == 0, 1, A), np.inf)
            r2 = np.where(ok & (qq != 0), C / np.where(qq == 0, 1, qq), np.inf)
        r1 = np.where(r1 > 0, r1, np.inf)
        r2 = np.where(r2 > 0, r2, np.inf)
        return np.minimum(out, np.minimum(r1, r2))

    if branch == "increase":
        r = smallest_root(+1.0)
    elif branch == "decrease":
        r = smallest_root(-1.0)
    else:
        r = np.minimum(smallest_root(+1.0), smallest_root(-1.0))
    return float(r.min())


def counterexample() -> dict[str, float]:
    """The counterexample to the document's lower bound (spec §2.1, erratum E9).

    ``J = (0.1, 0)``, ``H = diag(0.01, -10)``, ``t = 0.5``: the document's lower bound
    ``h(‖J‖, λ_max, t)`` is 4.142 while ``δ = √0.1 e₂`` (norm 0.316) already gives
    ``|q(δ)| = t``; the corrected lower bound ``h(‖J‖, ‖H‖₂, t)`` is 0.306.

    Returns:
        ``doc_lower``, ``true_abs`` (brute force), ``corrected_lower``, ``decrease_upper``,
        ``q_at_witness`` (``q`` at ``δ = √0.1 e₂``).
    """
    J = np.array([0.1, 0.0])
    H = np.diag([0.01, -10.0])
    t = 0.5
    wit = np.array([0.0, math.sqrt(0.1)])
    return {
        "doc_lower": float(curvature_bounds(J, H, t, "doc").lower),
        "true_abs": min_norm_quadratic_2d(J, H, t, "abs"),
        "corrected_lower": float(curvature_bounds(J, H, t, "abs").lower),
        "decrease_upper": float(curvature_bounds(J, H, t, "decrease").upper),
        "q_at_witness": float(J @ wit + 0.5 * wit @ H @ wit),
    }


# --------------------------------------------------------------------------- networks


def margin_fn(model: Callable[[Tensor], Tensor], c: Tensor, j: Tensor
              ) -> Callable[[Tensor], Tensor]:
    """``y ↦ f_c(y) - f_j(y)`` per sample (classes fixed per sample, eq. 1 with the class fixed).

    Args:
        model: logits model ``(B, ...) -> (B, K)``.
        c, j: class indices ``(B,)``.
    """
    def fn(y: Tensor) -> Tensor:
        z = model(y)
        return z.gather(1, c.view(-1, 1)).squeeze(1) - z.gather(1, j.view(-1, 1)).squeeze(1)

    return fn


def _extreme_pairs(fn: Callable[[Tensor], Tensor], x: Tensor, v0: Tensor, iters: int
                   ) -> dict[str, Tensor]:
    """Gradient, margin and the extreme Ritz pairs of the input Hessian of ``fn`` at ``x``.

    The Ritz pairs come from :func:`batched_lanczos`; one more Hessian-vector product per pair
    (independent of the Lanczos recurrence) gives its residual norm ``‖Hu − θu‖`` and its
    Rayleigh quotient ``uᵀHu``.

    Args:
        fn: per-sample margins ``(B, ...) -> (B,)``. x: points ``(B, ...)``.
        v0: Lanczos start vectors like ``x``. iters: Lanczos steps.

    Returns:
        float64 tensors: ``t (B,)``, ``J (B, n)``, ``lam_min``, ``lam_max``, ``res_min``,
        ``res_max``, ``rq_min``, ``rq_max`` ``(B,)``, ``u_min``, ``u_max`` ``(B, n)``.
    """
    with torch.no_grad():
        t = fn(x).double()
    J = autodiff.input_gradient(fn, x).reshape(x.shape[0], -1).double()
    mv = autodiff.hvp_operator(fn, x)
    theta, U = batched_lanczos(mv, v0.to(x.dtype), iters)
    out = {"t": t, "J": J, "lam_min": theta[:, 0], "lam_max": theta[:, -1],
           "u_min": U[:, :, 0], "u_max": U[:, :, -1]}
    for side in ("min", "max"):
        u, lam = out[f"u_{side}"], out[f"lam_{side}"]
        hu = mv(u.reshape(x.shape).to(x.dtype)).reshape(x.shape[0], -1).double()
        out[f"res_{side}"] = (hu - lam[:, None] * u).norm(dim=1)
        out[f"rq_{side}"] = (hu * u).sum(1) / (u * u).sum(1)
    return out


def network_curvature(model: torch.nn.Module, x: Tensor, *, iters: int = 60, seed: int = 0,
                      chunk: int = 256) -> dict[str, np.ndarray]:
    """Ingredients of Thm 3.0.1 for a network at each point, and the bounds of every branch.

    For each sample (``c`` = predicted class) and **every** other class ``k``: the margin
    ``g_k = f_c − f_k``, ``t_k = g_k(x)``, ``J_k = ∇g_k``, the extreme eigenpairs of
    ``H_k = ∇²g_k`` by :func:`batched_lanczos` on Hessian-vector products (``iters`` HVPs), and
    the residual norm ``‖H_k u − θu‖`` of each Ritz pair (one independent HVP each).

    The label changes as soon as *some* margin ``g_k`` reaches 0, so the decrease-branch lower
    bound on the distance to the decision boundary is the minimum over ``k`` of
    ``h(‖J_k‖, ν₋,k, t_k)`` (``lower_decrease_all``); the runner-up alone (``lower_decrease``) is
    a bound for reaching the runner-up's boundary only.

    Lanczos Ritz values lie inside the spectrum, so ``θ_min ≥ λ_min``: an unconverged ``θ_min``
    underestimates ``ν₋ = −λ_min`` and inflates the bound. ``res_min`` measures convergence (a
    Ritz pair with residual ``r`` has an eigenvalue within ``r`` of ``θ``);
    ``lower_decrease_all_res`` uses ``ν₋ = max(0, r − θ_min)``, the bound widened by the
    residual (exact if the eigenvalue near ``θ_min`` is ``λ_min``, which Lanczos does not
    certify).

    Args:
        model: logits model (eval mode; C² activations for a meaningful Hessian).
        x: points ``(B, ...)``.
        iters: Lanczos steps (HVPs per point and class).
        seed: seed of the Lanczos start vectors (one per point and class).
        chunk: rows (point, class) per batch; memory only, the start vectors are drawn first.

    Returns:
        dict of numpy arrays. Runner-up ``j`` (shape ``(B,)``): ``c``, ``j``, ``t``, ``J_norm``,
        ``lam_max``, ``lam_min``, ``Ju_max``, ``Ju_min``, ``res_min``, ``res_max``, ``rq_min``,
        ``rq_max``, ``first_order`` (``t/‖J‖``), ``lower_<branch>``, ``upper_<branch>``.
        Every class ``k ≠ c`` (shape ``(B, K−1)``): ``k_all``, ``t_all``, ``J_norm_all``,
        ``lam_min_all``, ``res_min_all``, ``rq_min_all``, ``lower_decrease_by_class``.
        Nearest class (shape ``(B,)``): ``lower_decrease_all``, ``lower_decrease_all_res``,
        ``k_near``, ``nu_near`` (its ``ν₋``), ``t_near``, ``J_norm_near``.
    """
    model.eval()
    p = next(model.parameters())
    x = x.to(dtype=p.dtype, device=p.device)
    with torch.no_grad():
        z = model(x)
    B, K = z.shape
    if K < 2:
        raise ValueError("network_curvature needs at least two classes")
    order = z.argsort(dim=1, descending=True)  # (B, K): c, runner-up, then the rest
    c, ks = order[:, 0], order[:, 1:]
    rows_x = x.repeat_interleave(K - 1, dim=0)
    rows_c = c.repeat_interleave(K - 1)
    rows_k = ks.reshape(-1)
    gen = torch.Generator().manual_seed(seed)
    v0 = torch.randn(rows_x.shape, generator=gen, dtype=torch.float64).to(x.device)
    parts = []
    for s in range(0, rows_x.shape[0], chunk):
        sl = slice(s, s + chunk)
        fn = margin_fn(model, rows_c[sl], rows_k[sl])
        parts.append(_extreme_pairs(fn, rows_x[sl], v0[sl], iters))
    r = {k: torch.cat([q[k] for q in parts]) for k in parts[0]}
    per = {k: v.reshape(B, K - 1, *v.shape[1:]) for k, v in r.items()}
    ru = {k: v[:, 0] for k, v in per.items()}  # the runner-up is column 0
    J = ru["J"]
    out = {
        "c": c.cpu().numpy(), "j": ks[:, 0].cpu().numpy(),
        "t": ru["t"].cpu().numpy(),
        "J_norm": J.norm(dim=1).cpu().numpy(),
        "lam_max": ru["lam_max"].cpu().numpy(), "lam_min": ru["lam_min"].cpu().numpy(),
        "Ju_max": (J * ru["u_max"]).sum(1).abs().cpu().numpy(),
        "Ju_min": (J * ru["u_min"]).sum(1).abs().cpu().numpy(),
    }
    for k in ("res_min", "res_max", "rq_min", "rq_max"):
        out[k] = ru[k].cpu().numpy()
    out["first_order"] = out["t"] / out["J_norm"]
    for br in BRANCHES:
        b = bounds_from_spectrum(out["J_norm"], out["t"], out["lam_max"], out["lam_min"],
                                 out["Ju_max"], out["Ju_min"], br)
        out[f"lower_{br}"], out[f"upper_{br}"] = b.lower, b.upper
    # every class k != c: the decrease branch of g_k, and the nearest boundary
    out["k_all"] = ks.cpu().numpy()
    out["t_all"] = per["t"].cpu().numpy()
    out["J_norm_all"] = per["J"].norm(dim=2).cpu().numpy()
    for k in ("lam_min", "res_min", "rq_min"):
        out[f"{k}_all"] = per[k].cpu().numpy()
    t_pos = np.maximum(out["t_all"], 0.0)  # c is the argmax, so t_k >= 0 up to rounding
    nu_all = np.maximum(-out["lam_min_all"], 0.0)
    by_class = h(out["J_norm_all"], nu_all, t_pos)
    widened = h(out["J_norm_all"], np.maximum(out["res_min_all"] - out["lam_min_all"], 0.0),
                t_pos)
    near = np.argmin(by_class, axis=1)
    rows = np.arange(B)
    out["lower_decrease_by_class"] = by_class
    out["lower_decrease_all"] = by_class[rows, near]
    out["lower_decrease_all_res"] = widened.min(axis=1)
    out["k_near"] = out["k_all"][rows, near]
    out["nu_near"] = nu_all[rows, near]
    out["t_near"] = out["t_all"][rows, near]
    out["J_norm_near"] = out["J_norm_all"][rows, near]
    return out


# --------------------------------------------------------------------------- figures' data


def fig6_curves(nu, j_norm: float, t: float = 0.5, ju_ratio: float = 0.5
                ) -> dict[str, np.ndarray]:
    """Curves of Fig 6 for one ``‖J‖``: eq. (34) lower/upper bound against ``ν``.

    The document does not state ``|Jᵀu|``; ``ju_ratio = |Jᵀu|/‖J‖`` is a parameter. The same
    formulas give the decrease branch with ``ν = -λ_min`` (so one plot serves both), and the
    first-order estimate ``t/‖J‖`` is the ``ν → 0`` limit.

    Returns:
        ``lower``, ``upper`` (arrays over ``nu``) and ``first_order`` (constant).
    """
    nu = np.asarray(nu, dtype=np.float64)
    return {"lower": h(j_norm, nu, t), "upper": h(ju_ratio * j_norm, nu, t),
            "first_order": np.full_like(nu, t / j_norm)}


def doc_vs_true_family(lam_max, lam_min: float = -10.0, j_norm: float = 0.1, t: float = 0.5,
                       n_dirs: int = 20_000) -> dict[str, np.ndarray]:
    """The counterexample as a family: ``J = (‖J‖, 0)``, ``H = diag(λ_max, λ_min)``.

    Returns:
        ``doc_lower`` (``h(‖J‖, λ_max, t)``), ``true`` (brute-force ``‖δ*‖`` for ``|q| ≥ t``),
        ``corrected_lower`` (``h(‖J‖, ‖H‖₂, t)``), over ``lam_max``.
    """
    lam_max = np.asarray(lam_max, dtype=np.float64)
    J = np.array([j_norm, 0.0])
    out = {"doc_lower": [], "true": [], "corrected_lower": []}
    for lm in lam_max:
        H = np.diag([lm, lam_min])
        out["doc_lower"].append(float(curvature_bounds(J, H, t, "doc").lower))
        out["true"].append(min_norm_quadratic_2d(J, H, t, "abs", n_dirs=n_dirs))
        out["corrected_lower"].append(float(curvature_bounds(J, H, t, "abs").lower))
    return {k: np.array(v) for k, v in out.items()}


# --------------------------------------------------------------------------- boundary slices


def decision_slice(model: torch.nn.Module, x: Tensor, u1: Tensor, u2: Tensor, radius: float,
                   grid: int, batch: int = 4096) -> np.ndarray:
    """Predicted class on the plane ``x + a·u₁ + b·u₂``, ``a, b ∈ [-radius, radius]`` (Fig 11).

    No clipping to the pixel box: the slice probes the function the network computes.

    Args:
        model: logits model. x: one input ``(*in)``. u1, u2: orthonormal directions like ``x``.
        radius: half-width (L2 units). grid: points per axis.

    Returns:
        int array ``(grid, grid)``, indexed ``[i_a, i_b]``.
    """
    p = next(model.parameters())
    a = torch.linspace(-radius, radius, grid, dtype=p.dtype)
    A, Bg = torch.meshgrid(a, a, indexing="ij")
    coeff = torch.stack([A.reshape(-1), Bg.reshape(-1)], dim=1)
    x, u1, u2 = (v.to(dtype=p.dtype, device=p.device) for v in (x, u1, u2))
    out = []
    model.eval()
    with torch.no_grad():
        for i in range(0, coeff.shape[0], batch):
            c = coeff[i:i + batch].to(p.device)
            pts = (x.unsqueeze(0) + c[:, 0].view(-1, *[1] * x.dim()) * u1
                   + c[:, 1].view(-1, *[1] * x.dim()) * u2)
            out.append(model(pts).argmax(1).cpu())
    return torch.cat(out).reshape(grid, grid).numpy()


def boundary_fraction(labels: np.ndarray) -> float:
    """Fraction of horizontally/vertically adjacent grid pairs with different labels.

    A rough measure of how much decision boundary a slice holds (longer or more wiggly
    boundaries give more label changes).
    """
    labels = np.asarray(labels)
    dx = labels[1:, :] != labels[:-1, :]
    dy = labels[:, 1:] != labels[:, :-1]
    return float((dx.sum() + dy.sum()) / (dx.size + dy.size))


def random_plane(shape: tuple[int, ...], seed: int) -> tuple[Tensor, Tensor]:
    """Two orthonormal random directions of the given shape (Gram-Schmidt, float64)."""
    g = torch.Generator().manual_seed(seed)
    M = torch.randn(int(np.prod(shape)), 2, generator=g, dtype=torch.float64)
    Q, _ = torch.linalg.qr(M)
    return Q[:, 0].reshape(shape), Q[:, 1].reshape(shape)
