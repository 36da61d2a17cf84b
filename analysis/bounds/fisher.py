"""Fisher-Rao geometry of the probability simplex and the Fisher-Jacobian certificates.

Document: *Adversarial robustness with an upper-bound on the norm of the Jacobian matrix*
(draft; an early version of Shi-Garrier, Bouaynaya & Delahaye, Entropy 2024). Equation numbers
are the document's. Spec: ``shared/specs/001-fisher-jacobian.md`` section 2.

Notation: a model maps ``x`` to logits ``s(x)`` (``K = m + 1`` classes), ``θ = softmax(s)``.
``√θ`` is computed as ``exp(½ log_softmax(s))`` (no underflow to a zero square root).

* Fisher-Rao distance (§3.1): ``μ = 2√θ`` maps the simplex isometrically onto the positive
  orthant of the radius-2 sphere, so ``d(θ₁, θ₂) = 2 arccos Σ√(θ₁θ₂)``; we evaluate it as
  ``4 arcsin(‖√θ₁ − √θ₂‖ / 2)``, the same number, stable and with a finite gradient at
  ``θ₁ = θ₂``.
* The document's ``δ(x) = d(F(x), c)`` (eq. 6), distance to the centre ``c = 1/K``: an *upper*
  bound on the distance to the decision boundary ``B`` (``c ∈ B``).
* The exact distance to ``B`` (our addition): ``d(θ, B) = 2 arcsin((√θ₍₁₎ − √θ₍₂₎)/√2)`` over
  the two largest components (each ``{θⁱ = θʲ}`` is a great sphere through the origin of the
  ``√θ`` unit sphere; the foot point of the runner-up pair stays in ``B``).
* Stereographic chart (§3.4): ``tᵏ = 2√θᵏ / (1 − √θᴷ)`` (pole = class ``K``), conformal factor
  ``ρ = 2/(‖t/2‖² + 1) = 1 − √θᴷ``, so ``ρ J̃ v`` and ``J_μ v`` have the same norm.
* Certified radii: the document's ``r_doc = δ/‖J_μ‖₂`` and ``r_lin = d(F, B)/‖J_μ‖₂`` are
  linearisations, not bounds; ``r_glob = √2·d(F(x), B)/L_s`` (``L_s`` = a global Lipschitz
  constant of the logits) is a certificate, from the path lemma
  ``d(F(x), F(z)) ≤ ‖z − x‖ sup ‖J_μ‖₂`` and ``‖J_μ‖₂ ≤ ‖J_s‖₂/√2``. It never exceeds the
  standard logit-margin certificate ``r_margin = (s₍₁₎ − s₍₂₎)/(√2 L_s)`` (Tsuzuku et al.),
  because ``2·d(θ, B) ≤ s₍₁₎ − s₍₂₎`` for every logit vector (proof in
  :func:`certified_radii`): the Fisher-Rao route certifies nothing the margin does not.

Everything is batched over a leading dimension; distances are in Fisher-Rao units (radius-2
sphere), input distances are L2 in input units.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "sqrt_probs",
    "fisher_rao",
    "fisher_rao_arccos",
    "fim_coords",
    "fim_ambient_norm2",
    "delta_center",
    "delta_max",
    "boundary_distance",
    "boundary_foot",
    "stereo",
    "rho_from_probs",
    "rho_from_logits",
    "rho_document",
    "renyi",
    "FisherJacobians",
    "fisher_jacobians",
    "stereo_logits",
    "sphere_map",
    "spectral_norm_power",
    "spectral_norm_lanczos",
    "lipschitz_logits",
    "certified_radii",
    "local_radius_2d",
    "exact_radius_rays",
]


# --------------------------------------------------------------------------- simplex geometry


def _pole(pole: int, k: int) -> int:
    if not -k <= pole < k:
        raise ValueError(f"pole class {pole} out of range for K = {k} classes")
    return pole % k


def sqrt_probs(logits: Tensor) -> Tensor:
    """``√θ = exp(½ log_softmax(s))``, stable for confident logits. Shape: like ``logits``."""
    return torch.exp(0.5 * F.log_softmax(logits, dim=-1))


def fisher_rao(p: Tensor, q: Tensor, *, sqrt: bool = False) -> Tensor:
    """Fisher-Rao distance on the simplex (§3.1), ``4 arcsin(‖√p − √q‖/2)``.

    Args:
        p, q: probabilities ``(..., K)`` (or their square roots when ``sqrt=True``).
        sqrt: the inputs are already ``√p`` and ``√q``.

    Returns:
        Distances in ``[0, π]`` (the radius-2 sphere). Shape: ``(...)``.
    """
    a, b = (p, q) if sqrt else (p.clamp_min(0).sqrt(), q.clamp_min(0).sqrt())
    half = 0.5 * torch.linalg.vector_norm(a - b, dim=-1)
    return 4.0 * torch.asin(half.clamp(max=1.0))


def fisher_rao_arccos(p: Tensor, q: Tensor) -> Tensor:
    """The document's form ``2 arccos Σ √(pⁱ qⁱ)`` (§3.1); unstable near ``p = q``."""
    bc = (p.clamp_min(0) * q.clamp_min(0)).sqrt().sum(-1)
    return 2.0 * torch.acos(bc.clamp(-1.0, 1.0))


def fim_coords(theta: Tensor) -> Tensor:
    """Eq. 3: the FIM in the coordinates ``θ¹..θᵐ`` (class ``K`` is dependent).

    ``G = diag(1/θ¹, ..., 1/θᵐ) + 11ᵀ/θᴷ``. Shape: ``(..., m, m)``.
    """
    m = theta.shape[-1] - 1
    g = torch.diag_embed(1.0 / theta[..., :m])
    return g + (1.0 / theta[..., m:])[..., None] * torch.ones(m, m, dtype=theta.dtype,
                                                               device=theta.device)


def fim_ambient_norm2(theta: Tensor, v: Tensor) -> Tensor:
    """Ambient FIM norm ``Σ vⁱ²/θⁱ`` of a tangent vector ``v`` (``Σ v = 0``; eq. 2)."""
    return (v * v / theta).sum(-1)


def renyi(phi: Tensor, theta: Tensor, r: float) -> Tensor:
    """Rényi divergence ``H_{r,ln}(φ‖θ) = ln(Σ φʳ θ^{1−r})/(r − 1)`` (eq. 2's family, f = ln)."""
    if r <= 0 or r == 1:
        raise ValueError(f"Rényi order r must be > 0 and != 1, got {r}")
    return torch.log((phi**r * theta ** (1.0 - r)).sum(-1)) / (r - 1.0)


def delta_center(theta: Tensor) -> Tensor:
    """Eq. 6: ``δ = d(θ, c)``, Fisher-Rao distance to the centre ``c = (1/K, ..., 1/K)``.

    An upper bound on ``d(θ, B)`` (``c ∈ B``). Zero at ``c`` with a finite gradient.
    """
    k = theta.shape[-1]
    c = torch.full_like(theta, 1.0 / k)
    return fisher_rao(theta, c)


def delta_max(k: int) -> float:
    """``max_θ δ(θ) = 2 arccos K^{-1/2}`` (a vertex); 2.498 for ``K = 10``."""
    if k < 2:
        raise ValueError(f"need K >= 2 classes, got {k}")
    return 2.0 * math.acos(k**-0.5)


def boundary_distance(theta: Tensor, *, sqrt: bool = False) -> Tensor:
    """Exact Fisher-Rao distance to the decision boundary ``B`` (addition to eq. 6).

    ``d(θ, B) = 2 arcsin((√θ₍₁₎ − √θ₍₂₎)/√2)`` over the two largest components; at most
    ``π/2``; equals :func:`delta_center` when ``K = 2``.

    Args:
        theta: probabilities ``(..., K)`` (or ``√θ`` when ``sqrt=True``).
    """
    u = theta if sqrt else theta.clamp_min(0).sqrt()
    top = torch.topk(u, 2, dim=-1).values
    return 2.0 * torch.asin(((top[..., 0] - top[..., 1]) / math.sqrt(2.0)).clamp(0.0, 1.0))


def boundary_foot(theta: Tensor) -> Tensor:
    """The point of ``B`` nearest to ``θ``: average the square roots of the two largest classes.

    Projects ``u = √θ`` onto the hyperplane ``u₍₁₎ = u₍₂₎`` and renormalises; the result has its
    maximum attained twice. Shape: like ``theta`` (probabilities).
    """
    u = theta.clamp_min(0).sqrt()
    idx = torch.topk(u, 2, dim=-1).indices
    a = u.gather(-1, idx).mean(-1, keepdim=True).expand(*u.shape[:-1], 2)
    w = u.scatter(-1, idx, a)
    w = w / torch.linalg.vector_norm(w, dim=-1, keepdim=True)
    return w * w


def stereo(theta: Tensor, pole: int = -1) -> Tensor:
    """Stereographic chart (§3.4): ``tᵏ = 2√θᵏ/(1 − √θ^pole)`` for ``k ≠ pole``. Shape ``(..., m)``."""
    k = theta.shape[-1]
    p = _pole(pole, k)
    u = theta.clamp_min(0).sqrt()
    keep = [i for i in range(k) if i != p]
    return 2.0 * u[..., keep] / (1.0 - u[..., p : p + 1])


def rho_from_probs(theta: Tensor, pole: int = -1) -> Tensor:
    """Conformal factor of the chart, ``ρ = 1 − √θ^pole`` (the document's ρ, simplified)."""
    p = _pole(pole, theta.shape[-1])
    return 1.0 - theta[..., p].clamp_min(0).sqrt()


RHO_MIN = 1e-12  # ρ floor: reached only when θ^pole rounds to 1 (the chart's pole itself)


def rho_from_logits(logits: Tensor, pole: int = -1) -> Tensor:
    """``ρ = −expm1(½ log θ^pole)``: :func:`rho_from_probs` without cancellation near ``θ^pole ≈ 1``.

    Floored at :data:`RHO_MIN` so that the chart stays finite when ``θ^pole`` rounds to 1.
    """
    p = _pole(pole, logits.shape[-1])
    return (-torch.expm1(0.5 * F.log_softmax(logits, dim=-1)[..., p])).clamp_min(RHO_MIN)


def rho_document(theta: Tensor) -> Tensor:
    """The document's formula ``(2(1 − √θᴷ) − ‖F‖₁)/(1 − √θᴷ)``, ``‖F‖₁ = Σ_{i≤m} θⁱ`` (§3.4)."""
    s = theta[..., -1].sqrt()
    return (2.0 * (1.0 - s) - theta[..., :-1].sum(-1)) / (1.0 - s)


# --------------------------------------------------------------------------- model maps


def sphere_map(model: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """``x ↦ μ = 2√softmax(model(x))`` (the isometric embedding in the radius-2 sphere)."""
    return lambda x: 2.0 * sqrt_probs(model(x))


def stereo_logits(logits: Tensor, pole: int = -1) -> Tensor:
    """Chart coordinates ``t`` computed from logits (stable): ``2√θᵏ/ρ`` for ``k ≠ pole``."""
    k = logits.shape[-1]
    p = _pole(pole, k)
    keep = [i for i in range(k) if i != p]
    return 2.0 * sqrt_probs(logits)[..., keep] / rho_from_logits(logits, p)[..., None]


class FisherJacobians(dict):
    """Per-sample Jacobians and geometry of a model at ``x`` (see :func:`fisher_jacobians`)."""

    def __getattr__(self, k: str) -> Tensor:
        try:
            return self[k]
        except KeyError:
            raise AttributeError(k) from None


def fisher_jacobians(model: Callable[[Tensor], Tensor], x: Tensor, pole: int = -1
                     ) -> FisherJacobians:
    """All Jacobians of the chapter from the exact logit Jacobian (``K`` reverse passes).

    ``J_μ = diag(√θ)(I − 1θᵀ) J_s`` (``μ = 2√θ``) and
    ``J̃ = (J_μ[k] + √θᵏ J_μ[pole]/ρ)/ρ`` for ``k ≠ pole`` (``t = 2√θᵏ/ρ``).

    Args:
        model: logits model; samples independent.
        x: inputs ``(B, *in)``.
        pole: the stereographic pole class (document: the last class).

    Returns:
        A dict (attribute access) with ``logits (B,K)``, ``theta (B,K)``, ``J_s (B,K,n)``,
        ``J_mu (B,K,n)``, ``J_t (B,m,n)``, ``rho (B,)``, ``delta (B,)`` (eq. 6),
        ``d_B (B,)`` (exact), and the norms ``spec_mu``, ``fro_mu``, ``spec_t``, ``fro_t``,
        ``spec_s`` (all ``(B,)``; spectral norms from exact singular values).
    """
    from analysis.autodiff import input_jacobian

    with torch.no_grad():
        logits = model(x)
    b, k = logits.shape
    p = _pole(pole, k)
    js = input_jacobian(model, x).reshape(b, k, -1).detach()
    theta = F.softmax(logits, -1)
    u = sqrt_probs(logits)
    jmu = u[..., None] * (js - torch.einsum("bk,bkn->bn", theta, js)[:, None, :])
    rho = rho_from_logits(logits, p)
    keep = [i for i in range(k) if i != p]
    jt = (jmu[:, keep] + (u[:, keep] / rho[:, None])[..., None] * jmu[:, p : p + 1]) / rho[
        :, None, None]
    out = FisherJacobians(
        logits=logits, theta=theta, J_s=js, J_mu=jmu, J_t=jt, rho=rho,
        delta=delta_center(theta), d_B=boundary_distance(u, sqrt=True),
    )
    out["spec_mu"] = torch.linalg.matrix_norm(jmu, ord=2)
    out["fro_mu"] = torch.linalg.matrix_norm(jmu)
    out["spec_t"] = torch.linalg.matrix_norm(jt, ord=2)
    out["fro_t"] = torch.linalg.matrix_norm(jt)
    out["spec_s"] = torch.linalg.matrix_norm(js, ord=2)
    return out


def spectral_norm_power(model: Callable[[Tensor], Tensor], x: Tensor, iters: int = 100,
                        tol: float = 1e-10, seed: int = 0) -> Tensor:
    """``‖J_μ(x)‖₂`` per sample by power iteration on ``J_μᵀJ_μ`` (JVP then VJP).

    Returns a lower estimate of the exact spectral norm (a Rayleigh quotient). Shape: ``(B,)``.
    """
    from analysis.autodiff import jvp, power_iteration, vjp

    f = sphere_map(model)
    gen = torch.Generator().manual_seed(seed)
    v0 = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)

    def matvec(v: Tensor) -> Tensor:
        return vjp(f, x, jvp(f, x, v))

    lam, _ = power_iteration(matvec, v0, iters=iters, tol=tol)
    return lam.clamp_min(0).sqrt()


def spectral_norm_lanczos(model: Callable[[Tensor], Tensor], x: Tensor) -> float:
    """``‖J_μ(x)‖₂`` of one sample (``x`` of shape ``(1, *in)``) by ``scipy.sparse.linalg.svds``.

    A cross-check of :func:`spectral_norm_power` (Lanczos bidiagonalisation on a LinearOperator
    whose matvec is a JVP and whose rmatvec is a VJP).
    """
    from scipy.sparse.linalg import LinearOperator, svds

    from analysis.autodiff import jvp, vjp

    if x.shape[0] != 1:
        raise ValueError(f"spectral_norm_lanczos takes one sample, got batch {x.shape[0]}")
    f = sphere_map(model)
    with torch.no_grad():
        k = f(x).shape[1]
    n = x[0].numel()

    def mv(v):
        t = torch.as_tensor(np.asarray(v).reshape(x.shape), dtype=x.dtype, device=x.device)
        return jvp(f, x, t).detach().cpu().double().numpy().reshape(k)

    def rmv(u):
        t = torch.as_tensor(np.asarray(u).reshape(1, k), dtype=x.dtype, device=x.device)
        return vjp(f, x, t).detach().cpu().double().numpy().reshape(n)

    op = LinearOperator((k, n), matvec=mv, rmatvec=rmv, dtype=np.float64)
    s = svds(op, k=1, return_singular_vectors=False, solver="arpack",
             v0=np.ones(k) / math.sqrt(k))
    return float(s[0])


# --------------------------------------------------------------------------- certificates


def _leaves(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if len(list(m.children())) == 0]


def lipschitz_logits(model: nn.Module) -> float:
    """A global L2 Lipschitz constant ``L_s`` of the logits: the product of layer bounds.

    ``‖W‖₂`` for linear layers; ``ceil(kh/sh)^½·ceil(kw/sw)^½ · ‖W_mat‖₂`` for a convolution
    (each input pixel appears in at most that many patches; ``k‖W_mat‖₂`` for stride 1 and a
    square ``k×k`` kernel); ReLU, tanh, sigmoid-free 1-Lipschitz activations and non-overlapping
    max-pooling contribute 1. Exact singular values (float64).

    The model must be a *chain* of its leaf modules in registration order (checked by type
    only): a model with skip connections or an unknown leaf raises ``ValueError``.
    """
    total = 1.0
    for m in _leaves(model):
        if isinstance(m, nn.Linear):
            total *= float(torch.linalg.matrix_norm(m.weight.detach().double(), ord=2))
        elif isinstance(m, nn.Conv2d):
            if m.groups != 1 or m.dilation not in ((1, 1), 1):
                raise ValueError("lipschitz_logits: grouped/dilated convolutions not supported")
            w = m.weight.detach().double().reshape(m.out_channels, -1)
            kh, kw = m.kernel_size
            sh, sw = m.stride
            mult = math.sqrt(math.ceil(kh / sh) * math.ceil(kw / sw))
            total *= mult * float(torch.linalg.matrix_norm(w, ord=2))
        elif isinstance(m, nn.MaxPool2d):
            ks = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size,) * 2
            st = m.stride if isinstance(m.stride, tuple) else (m.stride,) * 2
            if any(s < k for s, k in zip(st, ks)):
                raise ValueError("lipschitz_logits: overlapping max-pooling not supported")
        elif isinstance(m, (nn.ReLU, nn.Tanh, nn.Flatten, nn.Identity, nn.Dropout,
                            nn.LeakyReLU, nn.Softplus, nn.Unflatten)):
            continue
        else:
            raise ValueError(f"lipschitz_logits: no Lipschitz bound for layer {type(m).__name__}")
    return total


def certified_radii(model: nn.Module, x: Tensor, *, jac: FisherJacobians | None = None,
                    lipschitz: float | None = None, pole: int = -1) -> dict[str, Tensor]:
    """The chapter's radii at ``x`` (L2, input units), per sample.

    * ``r_doc = δ/‖J_μ‖₂``: largest ε for which eq. 14 holds at ``x`` (a heuristic).
    * ``r_lin = d(F, B)/‖J_μ‖₂``: the same with the exact boundary distance (a heuristic).
    * ``r_glob = √2·d(F(x), B)/L_s``: certified (path lemma and ``‖J_μ‖₂ ≤ ‖J_s‖₂/√2``).
    * ``r_margin = (s₍₁₎ − s₍₂₎)/(√2 L_s)``: Tsuzuku et al.'s margin certificate (each
      difference ``sᵢ − sⱼ`` is ``√2 L_s``-Lipschitz).

    ``r_glob ≤ r_margin`` always, with equality only at a tie. Proof: let ``a ≥ b`` be the two
    largest probabilities, so ``s₍₁₎ − s₍₂₎ = ln(a/b)`` and ``d(θ, B) = 2 arcsin((√a − √b)/√2)``.
    Fix the ratio ``a/b``; since ``√a − √b = √b (√(a/b) − 1)`` grows with ``b`` and
    ``a + b ≤ 1``, ``d`` is largest when ``a + b = 1``. Write then ``√a = cos φ``,
    ``√b = sin φ`` with ``φ ∈ (0, π/4]``: ``(√a − √b)/√2 = sin(π/4 − φ)``, so
    ``2d = π − 4φ`` and ``s₍₁₎ − s₍₂₎ = 2 ln cot φ``. The function
    ``g(φ) = 2 ln cot φ − π + 4φ`` has ``g(π/4) = 0`` and ``g'(φ) = 4 − 4/sin 2φ ≤ 0``, so
    ``g ≥ 0`` on ``(0, π/4]``: ``2 d(θ, B) ≤ s₍₁₎ − s₍₂₎``, hence
    ``r_glob = √2 d/L_s ≤ (s₍₁₎ − s₍₂₎)/(√2 L_s) = r_margin``. Since ``g'(π/4) = 0`` as well,
    the two radii agree to second order near the boundary (two-class mass, ``a + b = 1``).

    Returns:
        A dict of float64 ``(B,)`` tensors (also ``d_B``, ``delta``, ``spec_mu``).
    """
    if jac is None:
        jac = fisher_jacobians(model, x, pole)
    ls = lipschitz_logits(model) if lipschitz is None else lipschitz
    top = torch.topk(jac.logits.double(), 2, dim=-1).values
    spec = jac.spec_mu.double()
    tiny = torch.finfo(torch.float64).tiny
    return {
        "r_doc": jac.delta.double() / spec.clamp_min(tiny),
        "r_lin": jac.d_B.double() / spec.clamp_min(tiny),
        "r_glob": math.sqrt(2.0) * jac.d_B.double() / ls,
        "r_margin": (top[:, 0] - top[:, 1]) / (math.sqrt(2.0) * ls),
        "d_B": jac.d_B.double(),
        "delta": jac.delta.double(),
        "spec_mu": spec,
    }


def _spec_mu_points(model: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    """‖J_μ‖₂ at many 2-D points ``z (N, 2)`` (exact, via the logit Jacobian)."""
    return fisher_jacobians(model, z)["spec_mu"]


def local_radius_2d(model: Callable[[Tensor], Tensor], x: Tensor, *, n_angles: int = 64,
                    n_radii: int = 16, bisection: int = 30, r_max: float = 5.0) -> Tensor:
    """Local radius estimate ``r_loc`` on a 2-D input (path lemma with a grid sup).

    Largest ``r`` with ``r · sup_{B(x, r)} ‖J_μ‖₂ ≤ d(F(x), B)``, the sup taken on a polar
    grid (``n_radii × n_angles`` points plus the centre) of ``B(x, r)``, by bisection on ``r``.
    With the true sup this would be a certificate; the grid sup only bounds it from below, so
    ``r_loc`` is an estimate, not a proof, and may exceed the exact radius. What is proved:
    every ``r ≤ r_glob`` passes the grid test (``sup ‖J_μ‖₂ ≤ L_s/√2``), so the bisection
    returns ``r_loc ≥ r_glob − r_max/2^bisection``.

    Args:
        model: logits model on ``(N, 2)`` inputs. x: points ``(B, 2)``.

    Returns:
        ``(B,)`` float64 radii.
    """
    if x.dim() != 2 or x.shape[1] != 2:
        raise ValueError(f"local_radius_2d needs 2-D inputs (B, 2), got {tuple(x.shape)}")
    with torch.no_grad():
        d_b = boundary_distance(F.softmax(model(x), -1)).double()
    ang = torch.linspace(0, 2 * math.pi, n_angles + 1, dtype=x.dtype)[:-1]
    dirs = torch.stack([ang.cos(), ang.sin()], 1)  # (A, 2)
    fr = torch.linspace(0, 1, n_radii + 1, dtype=x.dtype)[1:]
    offs = torch.cat([torch.zeros(1, 2, dtype=x.dtype),
                      (fr[:, None, None] * dirs[None]).reshape(-1, 2)])  # (P, 2)
    lo = torch.zeros_like(d_b)
    hi = torch.full_like(d_b, r_max)

    def ok(r: Tensor) -> Tensor:
        pts = x[:, None, :] + r.to(x.dtype)[:, None, None] * offs[None]
        sup = _spec_mu_points(model, pts.reshape(-1, 2)).reshape(x.shape[0], -1).amax(1)
        return r * sup.double() <= d_b

    good = ok(hi)
    lo = torch.where(good, hi, lo)
    for _ in range(bisection):
        mid = 0.5 * (lo + hi)
        g = ok(mid)
        lo = torch.where(g, mid, lo)
        hi = torch.where(g, hi, mid)
    return lo


def exact_radius_rays(model: Callable[[Tensor], Tensor], x: Tensor, *, n_rays: int = 720,
                      step: float = 1e-2, r_max: float = 3.0, tol: float = 1e-6,
                      chunk: int = 20000) -> tuple[Tensor, Tensor]:
    """Minimal L2 perturbation ``r*`` on a 2-D input by ray search (spec §3.1).

    Along ``n_rays`` directions, march in steps of ``step`` up to ``r_max`` until the predicted
    class changes, then bisect the bracket to ``tol``; ``r*`` is the minimum over rays (``inf``
    where no ray leaves the class within ``r_max``). A boundary crossed twice within one step
    can be missed, so ``r*`` is an upper bound up to the step size.

    The march goes outward a block of radii at a time, and a point stops marching after the
    first block in which one of its rays leaves the class: a ray whose first grid flip lies
    beyond that block bisects to a radius above the block's radii, while a ray that flipped in
    it ends at or below its flip, so it could not give the minimum (the same ``r*`` and
    ``x*`` as marching every ray to ``r_max``).

    Returns:
        ``(r_star (B,), x_star (B, 2))``, float64 radii and the boundary point found.
    """
    if x.dim() != 2 or x.shape[1] != 2:
        raise ValueError(f"exact_radius_rays needs 2-D inputs (B, 2), got {tuple(x.shape)}")
    dt = torch.float64
    b = x.shape[0]
    ang = torch.linspace(0, 2 * math.pi, n_rays + 1, dtype=dt)[:-1]
    dirs = torch.stack([ang.cos(), ang.sin()], 1)
    xd = x.to(dt)

    def pred(z: Tensor) -> Tensor:
        with torch.no_grad():
            out = [model(c.to(x.dtype)).argmax(1) for c in z.split(chunk)]
        return torch.cat(out)

    y0 = pred(xd)
    n_t = int(math.ceil(r_max / step))
    first = torch.full((b, n_rays), math.inf, dtype=dt)
    block = max(1, chunk * 8 // max(1, b * n_rays))  # radii per block
    for s0 in range(0, n_t, block):
        marching = torch.isinf(first).all(1).nonzero().squeeze(1)  # no ray has flipped yet
        if marching.numel() == 0:
            break
        ts = torch.arange(s0 + 1, min(n_t, s0 + block) + 1, dtype=dt) * step  # (T,)
        pts = xd[marching, None, None, :] + ts[None, None, :, None] * dirs[None, :, None, :]
        lab = pred(pts.reshape(-1, 2)).reshape(len(marching), n_rays, len(ts))
        hit = lab != y0[marching, None, None]
        idx = hit.double().argmax(2)  # first True
        first[marching] = torch.where(hit.any(2), ts[idx], math.inf)
    lo = (first - step).clamp_min(0)
    hi = first.clone()
    fin = torch.isfinite(first)
    lo = torch.where(fin, lo, 0.0)
    hi = torch.where(fin, hi, 0.0)
    while bool(((hi - lo) > tol).any()):
        mid = 0.5 * (lo + hi)
        pts = xd[:, None, :] + mid[..., None] * dirs[None]
        same = pred(pts.reshape(-1, 2)).reshape(b, n_rays) == y0[:, None]
        lo = torch.where(same, mid, lo)
        hi = torch.where(same, hi, mid)
    r = torch.where(fin, hi, math.inf)
    rmin, arg = r.min(1)
    xstar = xd + torch.where(torch.isfinite(rmin), rmin, 0.0)[:, None] * dirs[arg]
    return rmin, xstar
