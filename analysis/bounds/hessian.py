"""Second-order robustness bounds of Mustafa, Vandermeulen & Kloft (2020), Theorem 2 / Corollary 1.

Theorem 2 (Eq. 2), binary margin ``f = f_0 − f_1 > 0`` at ``x``, ``f`` twice differentiable: every
``δ`` with ``f(x + δ) ≤ 0`` satisfies

    ‖δ‖_p ≥ max_{R>0} min{ R, f(x) / (‖∇f(x)‖_q + (R/2)·K_R(f, x)) },
    K_R(f, x) = max_{‖γ‖_p ≤ R} ‖H_f(x + γ)‖_{p→q}.

Corollary 1 (Eq. 3) takes, for the predicted class ``t`` and every ``j ≠ t``, the margin
``f⁽ʲ⁾ = f_t − f_j`` and puts ``min_j`` *inside* the ``max_R``. Here ``p = q = 2``.

Computing it: ``φ(R) = min_j f⁽ʲ⁾ / (‖∇f⁽ʲ⁾‖ + R K_R⁽ʲ⁾ / 2)`` is non-increasing in ``R`` (``K_R`` grows
with ``R``), so ``max_R min{R, φ(R)}`` is the fixed point ``R* = φ(R*)``, found by bisection; the
returned value is the lower end of the final bracket, which satisfies ``R ≤ φ(R)`` and therefore
is itself a valid bound. With a constant ``K`` the closed form is
``r* = (−‖∇f‖ + sqrt(‖∇f‖² + 2Kf)) / K`` (→ ``f/‖∇f‖`` as ``K → 0``).

A *certificate* needs an upper bound on ``K_R`` over the whole ball. For the one-hidden-layer
SWISH network ``f(x) = W2 s(W1 x + b1) + b2`` this module gives one in closed form:
``H_{f⁽ʲ⁾}(x) = W1ᵀ diag(c_k s''(z_k)) W1`` with ``c = W2[t] − W2[j]``, ``z = W1x + b1``; over the
ball ``‖γ‖ ≤ R`` each pre-activation stays in ``[z_k − R‖w_k‖, z_k + R‖w_k‖]``, so with
``a_k = |c_k|·sup|s''|`` on that interval, ``|vᵀHv| ≤ Σ_k a_k (w_k·v)²`` and

    K_R ≤ λ_max(W1ᵀ diag(a) W1)      (local, grows with R; ≤ the global bound below)
    K_R ≤ 0.5 · max_k |c_k| · ‖W1‖₂²  (global, spec test 8; sup|s''| = 0.5 at 0).

The module also computes the quantities of Fig. 3 (``|Hv*|`` by converged power iteration and
CURE's ``|Hg|``) for any network.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "closed_form_radius",
    "certified_radius",
    "swish_d2",
    "swish_d2_sup",
    "mlp_margins",
    "mlp_hessian_bound",
    "mlp_global_hessian_bound",
    "mlp_certificate",
    "mlp_global_closed_form",
    "hessian_norm_estimates",
    "SWISH_D2_LOBE",
]


def closed_form_radius(f: Tensor, g: Tensor, k: Tensor) -> Tensor:
    """Theorem 2's radius for a constant curvature bound ``K_R ≡ K`` (Eq. 2 solved exactly).

    Args:
        f: margins ``f(x) > 0``. g: gradient norms ``‖∇f(x)‖``. k: curvature bounds ``K ≥ 0``.
            Any broadcastable shapes.

    Returns:
        ``(−g + sqrt(g² + 2Kf))/K`` (written stably as ``2f/(g + sqrt(g² + 2Kf))``, which is
        ``f/g`` at ``K = 0``).
    """
    f, g, k = (torch.as_tensor(t, dtype=torch.float64) for t in (f, g, k))
    if bool((k < 0).any()):
        raise ValueError("curvature bounds must be >= 0")
    return 2 * f / (g + torch.sqrt(g**2 + 2 * k * f))


def certified_radius(margins: Tensor, grad_norms: Tensor,
                     k_of_r: Callable[[Tensor], Tensor], *, iters: int = 60,
                     r_hi: Tensor | None = None) -> Tensor:
    """Corollary 1 (Theorem 2 when there is one class ``j``) by bisection on ``R``.

    Args:
        margins: ``f⁽ʲ⁾(x)`` ``(B, J)`` (or ``(B,)`` for the binary case); rows with a
            non-positive margin (misclassified) get radius 0.
        grad_norms: ``‖∇f⁽ʲ⁾(x)‖₂``, same shape.
        k_of_r: maps radii ``R`` ``(B,)`` to upper bounds on ``K_R(f⁽ʲ⁾, x)`` ``(B, J)``,
            non-decreasing in ``R`` (it must bound the Hessian norm over the whole ball).
        iters: bisection steps (the bracket shrinks by ``2^-iters``).
        r_hi: initial upper end (default ``φ(0) = min_j f/‖∇f‖``, Theorem 1's linear radius).

    Returns:
        Certified radii ``(B,)`` float64: ``R`` with ``R ≤ φ(R)``, within ``2^-iters·r_hi`` of
        ``max_R min{R, φ(R)}``.
    """
    m = torch.as_tensor(margins, dtype=torch.float64)
    g = torch.as_tensor(grad_norms, dtype=torch.float64)
    if m.dim() == 1:
        m, g = m[:, None], g[:, None]

        def kfun(r: Tensor, _f=k_of_r) -> Tensor:
            return torch.as_tensor(_f(r), dtype=torch.float64).reshape(-1, 1)
    else:
        def kfun(r: Tensor, _f=k_of_r) -> Tensor:
            return torch.as_tensor(_f(r), dtype=torch.float64).reshape(m.shape)
    if m.shape != g.shape:
        raise ValueError(f"margins {tuple(m.shape)} and grad_norms {tuple(g.shape)} differ")
    valid = (m > 0).all(dim=1)
    mp = m.clamp_min(0)

    def phi(r: Tensor) -> Tensor:
        k = kfun(r)
        if bool((k < 0).any()):
            raise ValueError("k_of_r returned a negative curvature bound")
        return (mp / (g + r[:, None] * k / 2).clamp_min(1e-300)).min(dim=1).values

    lo = torch.zeros(m.shape[0], dtype=torch.float64)
    hi = (mp / g.clamp_min(1e-300)).min(dim=1).values if r_hi is None else \
        torch.as_tensor(r_hi, dtype=torch.float64).clone()
    hi = torch.where(valid, hi, torch.zeros_like(hi))
    for _ in range(iters):
        mid = (lo + hi) / 2
        ok = mid <= phi(mid)
        lo = torch.where(ok, mid, lo)
        hi = torch.where(ok, hi, mid)
    return torch.where(valid, lo, torch.zeros_like(lo))


# --------------------------------------------------------------------------- SWISH curvature


def swish_d2(z: Tensor) -> Tensor:
    """Second derivative of SWISH ``s(z) = z σ(z)``: ``σ(1−σ)(2 + z(1 − 2σ))`` (even in z)."""
    s = torch.sigmoid(z)
    return s * (1 - s) * (2 + z * (1 - 2 * s))


def _lobe() -> tuple[float, float]:
    """Location ``u*`` and value ``|s''(u*)|`` of the negative lobe of ``s''`` on ``z > 0``."""
    u = torch.linspace(0.0, 30.0, 300_001, dtype=torch.float64)
    d = swish_d2(u)
    i = int(d.argmin())
    lo, hi = float(u[max(i - 1, 0)]), float(u[i + 1])
    for _ in range(100):  # golden-section refinement of the minimum
        a, b = lo + (hi - lo) * 0.382, lo + (hi - lo) * 0.618
        if float(swish_d2(torch.tensor(a, dtype=torch.float64))) < \
                float(swish_d2(torch.tensor(b, dtype=torch.float64))):
            hi = b
        else:
            lo = a
    ustar = (lo + hi) / 2
    return ustar, -float(swish_d2(torch.tensor(ustar, dtype=torch.float64)))


SWISH_D2_LOBE = _lobe()  # (≈ 3.436, ≈ 0.0369): |s''| rises again to this value after its zero


def swish_d2_sup(lo: Tensor, hi: Tensor) -> Tensor:
    """``sup_{z ∈ [lo, hi]} |s''(z)|`` elementwise (exact up to round-off, plus 1e-12 slack).

    ``|s''|`` is even; on ``u = |z| ≥ 0`` it decreases from 0.5 (``u = 0``) to 0 (``u ≈ 2.40``),
    rises to the lobe value ``≈ 0.0369`` at ``u* ≈ 3.436`` and then decays. So the supremum over
    ``[u_min, u_max]`` is attained at an end point or at ``u*``.
    """
    lo, hi = torch.as_tensor(lo, dtype=torch.float64), torch.as_tensor(hi, dtype=torch.float64)
    if bool((lo > hi).any()):
        raise ValueError("need lo <= hi")
    umin = torch.where((lo <= 0) & (hi >= 0), torch.zeros_like(lo),
                       torch.minimum(lo.abs(), hi.abs()))
    umax = torch.maximum(lo.abs(), hi.abs())
    ustar, lobe = SWISH_D2_LOBE
    s = torch.maximum(swish_d2(umin).abs(), swish_d2(umax).abs())
    s = torch.where((umin <= ustar) & (umax >= ustar), torch.maximum(s, torch.full_like(s, lobe)),
                    s)
    return s + 1e-12


def _mlp_weights(model: torch.nn.Module) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    if not (hasattr(model, "fc1") and hasattr(model, "fc2")):
        raise ValueError("expected a one-hidden-layer SWISH network (analysis.models.swish."
                         "SwishMLP) with .fc1 and .fc2")
    if getattr(model, "activation", "swish") != "swish":
        raise ValueError("the curvature bound is derived for SWISH activations only")
    f1, f2 = model.fc1, model.fc2
    return (f1.weight.detach().double(), f1.bias.detach().double(),
            f2.weight.detach().double(), f2.bias.detach().double())


def mlp_margins(model: torch.nn.Module, x: Tensor) -> dict[str, Tensor]:
    """Predicted class, margins and gradient norms of a SWISH MLP (float64, closed form).

    Returns:
        dict with ``t`` ``(B,)``, ``js`` ``(B, K−1)``, ``margin`` and ``grad_norm`` ``(B, K−1)``
        (of ``f⁽ʲ⁾ = f_t − f_j``), ``z`` pre-activations ``(B, h)``.
    """
    w1, b1, w2, b2 = _mlp_weights(model)
    xf = x.detach().double().reshape(x.shape[0], -1)
    z = xf @ w1.T + b1
    s = torch.sigmoid(z)
    logits = (z * s) @ w2.T + b2
    ds = s + z * s * (1 - s)  # swish'
    t = logits.argmax(dim=1)
    k = logits.shape[1]
    js = torch.stack([torch.tensor([j for j in range(k) if j != int(ti)]) for ti in t])
    c = w2[t][:, None, :] - w2[js]  # (B, J, h)
    marg = logits.gather(1, t[:, None]) - logits.gather(1, js)
    grads = (c * ds[:, None, :]) @ w1  # (B, J, d)
    return {"t": t, "js": js, "margin": marg, "grad_norm": grads.norm(dim=2), "z": z, "c": c}


def mlp_hessian_bound(model: torch.nn.Module, x: Tensor, r: Tensor,
                      info: dict[str, Tensor] | None = None) -> Tensor:
    """Upper bound on ``K_R(f⁽ʲ⁾, x) = max_{‖γ‖≤R} ‖H_{f⁽ʲ⁾}(x + γ)‖₂`` for a SWISH MLP.

    Args:
        model: :class:`~analysis.models.swish.SwishMLP` with SWISH.
        x: points ``(B, ...)``. r: radii ``(B,)`` (L2, input units).
        info: output of :func:`mlp_margins` (recomputed if ``None``).

    Returns:
        ``λ_max(W1ᵀ diag(a) W1)`` with ``a_k = |c_k| sup|s''|`` over ``[z_k ± R‖w_k‖]``,
        ``(B, K−1)``.
    """
    w1, _, _, _ = _mlp_weights(model)
    info = info or mlp_margins(model, x)
    z, c = info["z"], info["c"]
    r = torch.as_tensor(r, dtype=torch.float64).reshape(-1, 1)
    wn = w1.norm(dim=1)[None, :]
    sup = swish_d2_sup(z - r * wn, z + r * wn)  # (B, h)
    a = c.abs() * sup[:, None, :]  # (B, J, h)
    gram = w1 @ w1.T  # (h, h)
    sa = a.sqrt()
    mat = sa[..., :, None] * gram * sa[..., None, :]
    return torch.linalg.eigvalsh(mat)[..., -1].clamp_min(0)


def mlp_global_hessian_bound(model: torch.nn.Module, x: Tensor,
                             info: dict[str, Tensor] | None = None) -> Tensor:
    """Spec test 8's global bound ``0.5·max_k |W2[t,k] − W2[j,k]|·‖W1‖₂²`` ``(B, K−1)``."""
    w1, _, _, _ = _mlp_weights(model)
    info = info or mlp_margins(model, x)
    return 0.5 * info["c"].abs().amax(dim=2) * torch.linalg.matrix_norm(w1, ord=2) ** 2


def mlp_certificate(model: torch.nn.Module, x: Tensor, *, local: bool = True,
                    iters: int = 40) -> dict[str, Tensor]:
    """Corollary 1's certified L2 radius of a SWISH MLP at each point (float64).

    Args:
        model: :class:`~analysis.models.swish.SwishMLP`.
        x: points ``(B, ...)`` (input units).
        local: bound ``K_R`` over the ball (:func:`mlp_hessian_bound`); ``False`` = the global
            bound (:func:`mlp_global_hessian_bound`), the same for every ``R``.
        iters: bisection steps.

    Returns:
        dict with ``radius`` ``(B,)``, ``linear`` (``min_j f/‖∇f‖``, Theorem 1's radius with
        ``R → 0``, *not* a certificate), ``t`` predicted classes.
    """
    info = mlp_margins(model, x)
    if local:
        def kfun(r: Tensor) -> Tensor:
            return mlp_hessian_bound(model, x, r, info)
    else:
        kg = mlp_global_hessian_bound(model, x, info)

        def kfun(r: Tensor) -> Tensor:
            return kg
    rad = certified_radius(info["margin"], info["grad_norm"], kfun, iters=iters)
    lin = (info["margin"] / info["grad_norm"]).min(dim=1).values
    return {"radius": rad, "linear": lin, "t": info["t"]}


def mlp_global_closed_form(model: torch.nn.Module, x: Tensor) -> Tensor:
    """Corollary 1's radius with the global curvature bound, in closed form (no bisection).

    With a curvature bound ``K⁽ʲ⁾`` that does not depend on ``R``, ``R ≤ φ(R)`` holds exactly
    when ``R ≤ r*_j`` for every ``j`` (:func:`closed_form_radius`), so the fixed point of
    :func:`mlp_certificate` with ``local=False`` is ``min_j r*_j``. An independent check of the
    bisection, and a floor for the local certificate (whose ``K_R`` is never larger).

    Args:
        model: :class:`~analysis.models.swish.SwishMLP`. x: points ``(B, ...)``.

    Returns:
        Radii ``(B,)`` float64 (0 where the top two logits tie).
    """
    info = mlp_margins(model, x)
    k = mlp_global_hessian_bound(model, x, info)
    return closed_form_radius(info["margin"].clamp_min(0), info["grad_norm"], k).min(dim=1).values


# --------------------------------------------------------------------------- Fig. 3 quantities


def hessian_norm_estimates(model: Callable[[Tensor], Tensor], x: Tensor, *,
                           power_iters: int = 100, ascent_iters: int = 10,
                           ascent_step: float = 0.1, short_power_iters: int = 10,
                           seed: int = 0, batch_size: int = 250,
                           pixel_scale: float | None = None) -> dict[str, Tensor]:
    """Hessian-norm estimates of the top-vs-runner-up margin at each point (Fig. 3, E10).

    ``t`` = top logit, ``j`` = second largest (footnote 2); ``f = f_t − f_j``.

    Args:
        model: logits model. x: inputs ``(B, ...)`` in the model's input units.
        power_iters: power-iteration steps of ``|Hv*|``.
        ascent_iters, ascent_step: ``T`` and ``o`` of Alg. 1's ascent.
        short_power_iters: steps of the short power iteration (``power_short``).
        seed: seed of the random start vectors (shared by every estimator).
        batch_size: chunk size.
        pixel_scale: ``σ`` when the inputs are standardised, ``z = (x_px − μ)/σ``. Then
            ``H_px = H/σ²`` and a unit direction is the same vector in both units, so Alg. 1's
            ascent run in pixel units with step ``o`` is the ascent in ``z`` units with step
            ``o/σ²``; it is returned as ``ascent_px`` (same start vectors).

    Returns:
        dict of ``(B,)`` float tensors: ``margin``, ``grad_norm`` (``G``), ``hv_star``
        (``|Hv*|``, power iteration, ``power_iters`` steps), ``hg`` (``|Hg|``, unit margin
        gradient ĝ), ``power_short`` (power iteration, ``short_power_iters`` steps),
        ``ascent`` (literal Alg. 1, ``ascent_iters`` steps of size ``ascent_step`` from an
        unnormalised Gaussian), ``random`` (``‖H v‖`` for a random unit v), ``rayleigh``
        (``v*ᵀHv*``, signed); with ``pixel_scale``, ``ascent_px`` (Alg. 1 in pixel units,
        reported as ``‖H v‖`` in the model's units, so ``ascent_px / hv_star`` is unit-free).
    """
    if pixel_scale is not None and not pixel_scale > 0:
        raise ValueError(f"pixel_scale must be > 0, got {pixel_scale}")
    from analysis.autodiff import gradient_graph, graph_hvp
    from analysis.autodiff import top_direction as estimate_top_direction

    gen = torch.Generator().manual_seed(seed)
    outs: dict[str, list[Tensor]] = {}
    for s in range(0, x.shape[0], batch_size):
        with torch.no_grad():
            top2 = model(x[s:s + batch_size]).topk(2, dim=1).indices

        def top_margin(z: Tensor, _t=top2) -> Tensor:
            out = model(z)
            return out.gather(1, _t[:, :1]).squeeze(1) - out.gather(1, _t[:, 1:]).squeeze(1)

        xb, m, g = gradient_graph(top_margin, x[s:s + batch_size])

        def hv(v: Tensor, _g=g, _x=xb) -> Tensor:
            return graph_hvp(_g, _x, v)

        def nrm(t: Tensor) -> Tensor:
            return t.reshape(t.shape[0], -1).norm(dim=1)

        v0 = torch.randn(xb.shape, generator=gen, dtype=xb.dtype).to(xb.device)
        short = min(short_power_iters, power_iters)
        vshort = estimate_top_direction(hv, v0, short, "power")
        vstar = estimate_top_direction(hv, vshort, power_iters - short, "power")  # same chain
        hvs = hv(vstar)
        gu = g.detach() / nrm(g.detach()).clamp_min(1e-300).reshape(-1, *([1] * (g.dim() - 1)))
        vasc = estimate_top_direction(hv, v0, ascent_iters, "ascent", ascent_step)
        vrand = v0 / nrm(v0).reshape(gu.shape[0], *([1] * (g.dim() - 1)))
        res = {"margin": m.detach(), "grad_norm": nrm(g.detach()), "hv_star": nrm(hvs),
               "hg": nrm(hv(gu)), "power_short": nrm(hv(vshort)), "ascent": nrm(hv(vasc)),
               "random": nrm(hv(vrand)),
               "rayleigh": (vstar * hvs).reshape(xb.shape[0], -1).sum(dim=1)}
        if pixel_scale is not None:
            vpx = estimate_top_direction(hv, v0, ascent_iters, "ascent",
                                         ascent_step / pixel_scale**2)
            res["ascent_px"] = nrm(hv(vpx))
        for k, v in res.items():
            outs.setdefault(k, []).append(v.detach())
    return {k: torch.cat(v) for k, v in outs.items()}
