"""Input-space derivatives of a network: Jacobians, JVP/VJP, Hessian-vector products, eigenpairs.

Everything here differentiates with respect to the *input* ``x`` of a model, never its
parameters: inputs get ``requires_grad``; parameter ``.grad`` fields are never touched
(gradients are taken with :func:`torch.autograd.grad`, which returns them instead of
accumulating). With ``create_graph=True`` the results stay differentiable, so a regulariser
can back-propagate through them into the parameters (double backprop).

Batches are treated as independent samples: a function ``fn`` of a batch ``(B, ...)`` that
returns per-sample scalars ``(B,)`` must not mix samples (no batch-norm in train mode), so
that the gradient of ``fn(x).sum()`` with respect to ``x[b]`` is the gradient of ``fn(x)[b]``.

Eigen-solvers:

* :func:`power_iteration` (batched) returns, for a symmetric operator, the eigenvalue of
  **largest magnitude** by default (``mode="abs"``); ``mode="max"`` / ``"min"`` give the largest /
  smallest *algebraic* eigenvalue by a spectral shift, and ``shift`` applies a fixed shift.
* :func:`lanczos` (one operator, float64, full re-orthogonalisation) returns the ``k`` extreme
  eigenpairs (largest algebraic by default); it runs :func:`batched_lanczos` (a batch of
  operators, one per sample), the one Lanczos iteration of the package.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "input_gradient",
    "input_jacobian",
    "jvp",
    "vjp",
    "hvp",
    "hvp_operator",
    "gradient_graph",
    "graph_hvp",
    "top_direction",
    "jtj_operator",
    "jacobian_spectral_norm",
    "power_iteration",
    "lanczos",
    "batched_lanczos",
    "dense_input_hessian",
    "hessian_eig",
]

Matvec = Callable[[Tensor], Tensor]


def _leaf(x: Tensor) -> Tensor:
    """A fresh leaf copy of ``x`` that requires grad (the caller's tensor is left alone)."""
    return x.detach().clone().requires_grad_(True)


def _bdot(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample inner product of two batches ``(B, ...)`` -> ``(B,)``."""
    return (a * b).reshape(a.shape[0], -1).sum(dim=1)


def _bnorm(a: Tensor) -> Tensor:
    """Per-sample L2 norm of a batch ``(B, ...)`` -> ``(B,)``."""
    return a.reshape(a.shape[0], -1).norm(dim=1)


def _bview(s: Tensor, like: Tensor) -> Tensor:
    """Reshape per-sample scalars ``(B,)`` to broadcast against ``like`` ``(B, ...)``."""
    return s.reshape(-1, *([1] * (like.dim() - 1)))


def input_gradient(fn: Callable[[Tensor], Tensor], x: Tensor, *,
                   create_graph: bool = False) -> Tensor:
    """Gradient of per-sample scalars with respect to the input.

    Args:
        fn: maps a batch ``(B, ...)`` to per-sample scalars ``(B,)`` (samples independent).
        x: input batch.
        create_graph: keep the graph (for double backprop through the result).

    Returns:
        ``∇_x fn(x)[b]`` for every sample. Shape: ``(B, ...)`` like ``x``.
    """
    xl = _leaf(x)
    out = fn(xl)
    (g,) = torch.autograd.grad(out.sum(), xl, create_graph=create_graph)
    return g


def input_jacobian(model: Callable[[Tensor], Tensor], x: Tensor, *,
                   create_graph: bool = False) -> Tensor:
    """Jacobian of the logits with respect to the input, per sample.

    Computed with one reverse pass per output (``K`` passes over the whole batch), which works
    for every architecture (recurrent ones included) and for ``K`` up to a few dozen.

    Args:
        model: maps ``(B, *in)`` to logits ``(B, K)``; samples independent.
        x: input batch ``(B, *in)``.
        create_graph: keep the graph (for Jacobian regularisers).

    Returns:
        ``J[b, k] = ∂ model(x)[b, k] / ∂ x[b]``. Shape: ``(B, K, *in)``.
    """
    xl = _leaf(x)
    out = model(xl)
    if out.dim() != 2:
        raise ValueError(f"model must return (B, K) logits, got shape {tuple(out.shape)}")
    rows = []
    for k in range(out.shape[1]):
        if not out.requires_grad:  # the output does not depend on x
            rows.append(torch.zeros_like(xl))
            continue
        (g,) = torch.autograd.grad(out[:, k].sum(), xl, retain_graph=True,
                                   create_graph=create_graph, allow_unused=True)
        rows.append(torch.zeros_like(xl) if g is None else g)
    return torch.stack(rows, dim=1)


def jvp(f: Callable[[Tensor], Tensor], x: Tensor, v: Tensor, *,
        return_output: bool = False, create_graph: bool = False):
    """Jacobian-vector product ``J_f(x) v`` (forward-mode directional derivative).

    Uses the double-VJP identity ``J v = ∂/∂u ⟨J^T u, v⟩`` (two reverse passes), which works for
    every module that supports backward, also with ``create_graph=True``.

    Args:
        f: function of a batch ``(B, ...)``; samples independent (any output shape).
        x: point, ``(B, ...)``.
        v: tangent, shaped like ``x``.
        return_output: also return ``f(x)``.
        create_graph: keep the graph.

    Returns:
        ``J v`` shaped like ``f(x)``; or ``(f(x), J v)`` when ``return_output``.
    """
    if v.shape != x.shape:
        raise ValueError(f"v has shape {tuple(v.shape)}, x has {tuple(x.shape)}")
    xl = _leaf(x)
    out = f(xl)
    u = torch.zeros_like(out, requires_grad=True)
    (g,) = torch.autograd.grad(out, xl, grad_outputs=u, create_graph=True)
    (jv,) = torch.autograd.grad(g, u, grad_outputs=v, create_graph=create_graph)
    if not create_graph:
        out = out.detach()
    return (out, jv) if return_output else jv


def vjp(f: Callable[[Tensor], Tensor], x: Tensor, u: Tensor, *,
        create_graph: bool = False) -> Tensor:
    """Vector-Jacobian product ``J_f(x)^T u`` (one reverse pass).

    Args:
        f: function of a batch ``(B, ...)``; samples independent.
        x: point, ``(B, ...)``.
        u: cotangent, shaped like ``f(x)``.
        create_graph: keep the graph.

    Returns:
        ``J^T u``. Shape: like ``x``.
    """
    xl = _leaf(x)
    out = f(xl)
    if u.shape != out.shape:
        raise ValueError(f"u has shape {tuple(u.shape)}, f(x) has {tuple(out.shape)}")
    (g,) = torch.autograd.grad(out, xl, grad_outputs=u, create_graph=create_graph)
    return g


def jtj_operator(f: Callable[[Tensor], Tensor], x: Tensor) -> Matvec:
    """``v ↦ J_f(x)ᵀ J_f(x) v`` per sample, as a reusable batched matvec (one forward pass).

    Args:
        f: function of a batch ``(B, ...)`` (e.g. the logits model); samples independent.
        x: point ``(B, ...)``.

    Returns:
        ``matvec(v)`` for ``v`` shaped like ``x``; its top eigenvalue per sample is the squared
        spectral norm of the input Jacobian (see :func:`jacobian_spectral_norm`).
    """
    xl = _leaf(x)
    out = f(xl)
    u = torch.zeros_like(out, requires_grad=True)
    (g,) = torch.autograd.grad(out, xl, grad_outputs=u, create_graph=True)

    def matvec(v: Tensor) -> Tensor:
        (jv,) = torch.autograd.grad(g, u, grad_outputs=v.reshape(x.shape).to(g.dtype),
                                    retain_graph=True)
        (jtjv,) = torch.autograd.grad(out, xl, grad_outputs=jv, retain_graph=True)
        return jtjv.reshape(v.shape)

    return matvec


def jacobian_spectral_norm(f: Callable[[Tensor], Tensor], x: Tensor, *, iters: int = 100,
                           tol: float = 1e-6, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Per-sample largest singular value of the input Jacobian by power iteration on ``JᵀJ``.

    Power iteration on a positive semi-definite operator converges from below: the estimate
    ``sqrt(vᵀJᵀJv)`` never exceeds the true ``||J||₂`` (up to round-off).

    Args:
        f: function of a batch ``(B, ...)`` (e.g. the logits model).
        x: points ``(B, ...)``.
        iters, tol: as in :func:`power_iteration`.
        seed: seed of the start vectors.

    Returns:
        ``(sigma (B,), right singular vector (B, ...))``.
    """
    gen = torch.Generator().manual_seed(seed)
    v0 = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
    lam, vec = power_iteration(jtj_operator(f, x), v0, iters, tol)
    return lam.clamp_min(0).sqrt(), vec


def hvp(fn: Callable[[Tensor], Tensor], x: Tensor, v: Tensor, *,
        create_graph: bool = False) -> Tensor:
    """Per-sample input Hessian-vector product ``∇²_x fn(x)[b] · v[b]`` by double backprop.

    Args:
        fn: maps a batch ``(B, ...)`` to per-sample scalars ``(B,)``; samples independent.
        x: point ``(B, ...)``.
        v: direction, shaped like ``x``.
        create_graph: keep the graph (e.g. a Hessian regulariser that trains through it).

    Returns:
        ``H_b v_b`` for every sample. Shape: like ``x``.

    Note: piecewise-linear networks (ReLU) have a zero input Hessian almost everywhere, except
    for the curvature of the final softmax/loss; use smooth activations for curvature studies.
    """
    if v.shape != x.shape:
        raise ValueError(f"v has shape {tuple(v.shape)}, x has {tuple(x.shape)}")
    xl = _leaf(x)
    out = fn(xl)
    if out.shape != (x.shape[0],):
        raise ValueError(f"fn must return per-sample scalars ({x.shape[0]},), "
                         f"got {tuple(out.shape)}")
    (g,) = torch.autograd.grad(out.sum(), xl, create_graph=True)
    (hv,) = torch.autograd.grad(g, xl, grad_outputs=v, create_graph=create_graph,
                                allow_unused=True)
    if hv is None:  # fn is affine in x: the Hessian is zero
        hv = torch.zeros_like(x)
    return hv


def hvp_operator(fn: Callable[[Tensor], Tensor], x: Tensor) -> Matvec:
    """The per-sample input Hessian of ``fn`` at ``x`` as a reusable batched matvec.

    The forward pass and the first gradient are computed once; every call then costs one
    backward pass (cheaper than :func:`hvp` inside power iteration or Lanczos).

    Args:
        fn: maps ``(B, ...)`` to per-sample scalars ``(B,)``; samples independent.
        x: point ``(B, ...)``.

    Returns:
        ``matvec(v) = H v`` for ``v`` shaped like ``x`` (no graph kept on the result).
    """
    xl, _, g = gradient_graph(fn, x)

    def matvec(v: Tensor) -> Tensor:
        return graph_hvp(g, xl, v)

    return matvec


def gradient_graph(fn: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Leaf input, per-sample outputs and their input gradient, graph kept for HVPs.

    The shared first half of every Hessian-vector product here: one forward pass and one
    gradient with ``create_graph=True``; :func:`graph_hvp` then costs one backward pass per
    direction.

    Args:
        fn: maps ``(B, ...)`` to per-sample scalars ``(B,)``; samples independent.
        x: point ``(B, ...)`` (a fresh leaf copy is made; ``x`` itself is left alone).

    Returns:
        ``(xl, out, g)``: the leaf ``xl`` ``(B, ...)``, ``out = fn(xl)`` ``(B,)`` and
        ``g = ∇_x out`` ``(B, ...)`` (differentiable).
    """
    xl = _leaf(x)
    out = fn(xl)
    if out.shape != (x.shape[0],):
        raise ValueError(f"fn must return per-sample scalars ({x.shape[0]},), "
                         f"got {tuple(out.shape)}")
    (g,) = torch.autograd.grad(out.sum(), xl, create_graph=True)
    return xl, out, g


def graph_hvp(g: Tensor, x: Tensor, v: Tensor, *, create_graph: bool = False) -> Tensor:
    """``H v`` from a gradient graph ``g = ∇_x f`` (:func:`gradient_graph`), one backward pass.

    Args:
        g: input gradient built with ``create_graph=True``, shaped like ``x``.
        x: the leaf ``g`` was taken with respect to.
        v: directions, shaped like ``x``.
        create_graph: keep the graph of the result (to train through ``‖H v‖``).

    Returns:
        ``H v`` shaped like ``x`` (zeros when ``f`` is affine in ``x``); the graph of ``g`` is
        retained for further products.
    """
    if not g.requires_grad:  # fn affine in x
        return torch.zeros_like(v)
    (hv,) = torch.autograd.grad(g, x, grad_outputs=v.reshape(x.shape).to(g.dtype),
                                retain_graph=True, create_graph=create_graph,
                                allow_unused=True)
    return torch.zeros_like(v) if hv is None else hv.reshape(v.shape)


def top_direction(matvec: Matvec, v0: Tensor, iters: int, estimator: str = "power",
                  step: float = 0.1, tol: float = 0.0) -> Tensor:
    """Unit estimate of the top (largest |eigenvalue|) eigenvector of per-row symmetric operators.

    Args:
        matvec: maps ``(N, ...)`` to ``(N, ...)``, one operator per row (no graph needed).
        v0: start vectors ``(N, ...)`` (random, or a previous estimate: a warm start).
        iters: the number of steps ``T`` (an upper limit when ``tol > 0``).
        estimator: ``"power"`` (``v ← Hv/‖Hv‖``, 1 product per step, scale-free) or
            ``"ascent"`` (Alg. 1 of Mustafa et al.: ``v ← v + step·H(Hv)/‖Hv‖; v ← v/‖v‖``,
            2 products per step, ``v0`` used unnormalised).
        step: ``o`` of Alg. 1 (ascent only).
        tol: power only: a row stops (keeps its vector) once ``‖Hv‖`` changes by less than
            ``tol`` relatively between two steps; the loop ends when every row has stopped.
            ``0`` runs all ``iters`` steps.

    Returns:
        Unit vectors ``(N, ...)`` (detached).
    """
    if iters < 0:
        raise ValueError(f"iters must be >= 0, got {iters}")
    if estimator not in ("power", "ascent"):
        raise ValueError(f"estimator must be 'power' or 'ascent', got {estimator!r}")
    v = v0.detach()
    if estimator == "power":
        v = v / _bview(torch.sqrt(_bnorm(v) ** 2 + 1e-24), v)
        prev = torch.full((v.shape[0],), -1.0, dtype=v.dtype, device=v.device)
        active = torch.ones(v.shape[0], dtype=torch.bool, device=v.device)
        for _ in range(iters):
            hv = matvec(v).detach()
            n = _bnorm(hv)
            move = active & (n > 0)
            v = torch.where(_bview(move, v), hv / _bview(n.clamp_min(1e-300), hv), v)
            if tol > 0:
                active = active & ((n - prev).abs() > tol * n)
                prev = n
                if not bool(active.any()):
                    break
        return v.detach()
    for _ in range(iters):
        hv = matvec(v).detach()
        n = _bview(_bnorm(hv).clamp_min(1e-300), hv)
        grad = matvec(hv).detach() / n  # ∇_v ‖Hv‖₂ = H(Hv)/‖Hv‖ (H symmetric)
        v = v + step * grad
        v = v / _bview(_bnorm(v).clamp_min(1e-300), v)
    return (v / _bview(_bnorm(v).clamp_min(1e-300), v)).detach()


def dense_input_hessian(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Dense per-sample input Hessian, column by column from :func:`hvp` (small inputs only).

    Args:
        fn: maps ``(B, ...)`` to per-sample scalars ``(B,)``.
        x: point ``(B, ...)`` with ``D = prod(x.shape[1:])`` features.

    Returns:
        ``H[b]`` (symmetric up to round-off). Shape: ``(B, D, D)``.
    """
    b = x.shape[0]
    d = x[0].numel()
    cols = []
    for j in range(d):
        e = torch.zeros(b, d, dtype=x.dtype, device=x.device)
        e[:, j] = 1.0
        cols.append(hvp(fn, x, e.reshape(x.shape)).reshape(b, d))
    return torch.stack(cols, dim=2)


def _power(matvec: Matvec, v: Tensor, iters: int, tol: float) -> tuple[Tensor, Tensor, int]:
    """Plain batched power iteration; returns Rayleigh quotients, unit vectors, iterations."""
    tiny = torch.finfo(v.dtype).tiny ** 0.5
    v = v / _bview(_bnorm(v).clamp_min(tiny), v)
    lam = torch.zeros(v.shape[0], dtype=v.dtype, device=v.device)
    it = 0
    for it in range(1, iters + 1):
        w = matvec(v)
        new = _bdot(v, w)  # Rayleigh quotient, ||v|| = 1
        nw = _bnorm(w)
        zero = nw <= tiny
        v = torch.where(_bview(zero, v), v, w / _bview(nw.clamp_min(tiny), w))
        done = (new - lam).abs() <= tol * new.abs().clamp_min(tiny)
        lam = new
        if it > 1 and bool(done.all()):
            break
    # the Rayleigh quotient of the final vector
    lam = _bdot(v, matvec(v))
    return lam, v, it


def power_iteration(matvec: Matvec, v0: Tensor, iters: int = 100, tol: float = 1e-6, *,
                    mode: str = "abs", shift: float | Tensor | None = None,
                    ) -> tuple[Tensor, Tensor]:
    """Batched power iteration for a symmetric linear operator.

    For a symmetric matrix ``A`` the iteration ``v ← A v / ||A v||`` converges to an eigenvector
    of the eigenvalue of **largest magnitude** (``mode="abs"``), whatever its sign; the returned
    eigenvalue is the Rayleigh quotient ``vᵀ A v`` and so carries the sign. Convergence is
    geometric with ratio ``|λ₂| / |λ₁|``; when ``λ`` and ``-λ`` are both eigenvalues of largest
    magnitude the vector does not converge and the quotient is unreliable (use :func:`lanczos`).

    ``mode="max"`` returns the largest *algebraic* eigenvalue: first ``λ_abs`` (largest
    magnitude); if it is negative, iterate on ``A - λ_abs I``, whose spectrum is ``≥ 0`` and whose
    dominant eigenvalue is ``λ_max - λ_abs``. ``mode="min"`` is ``-max(-A)``. ``shift=s`` runs on
    ``A - s I`` and adds ``s`` back (for a manual shift).

    Args:
        matvec: maps a batch of vectors ``(B, ...)`` to ``(B, ...)``, one operator per sample
            (e.g. ``lambda v: hvp(fn, x, v)``).
        v0: start vectors ``(B, ...)`` (random; must not be orthogonal to the eigenvector).
        iters: maximum iterations (per stage for ``mode="max"/"min"``).
        tol: stop when every sample's Rayleigh quotient changes by less than ``tol`` relatively.
        mode: ``"abs"`` (largest magnitude), ``"max"`` or ``"min"`` (algebraic).
        shift: a scalar or per-sample ``(B,)`` shift.

    Returns:
        ``(eigval, eigvec)``: shapes ``(B,)`` and ``(B, ...)`` (unit norm per sample).
    """
    if mode not in ("abs", "max", "min"):
        raise ValueError(f"mode must be 'abs', 'max' or 'min', got {mode!r}")
    if shift is not None:
        s = torch.as_tensor(shift, dtype=v0.dtype, device=v0.device).expand(v0.shape[0])

        def shifted(v: Tensor) -> Tensor:
            return matvec(v) - _bview(s, v) * v

        lam, vec = power_iteration(shifted, v0, iters, tol, mode=mode)
        return lam + s, vec
    if mode == "min":
        lam, vec = power_iteration(lambda v: -matvec(v), v0, iters, tol, mode="max")
        return -lam, vec
    lam, vec, _ = _power(matvec, v0, iters, tol)
    if mode == "abs":
        return lam, vec
    neg = lam < 0
    if not bool(neg.any()):
        return lam, vec
    s = torch.where(neg, lam, torch.zeros_like(lam))

    def shifted2(v: Tensor) -> Tensor:
        return matvec(v) - _bview(s, v) * v

    lam2, vec2, _ = _power(shifted2, v0, iters, tol)
    lam2 = lam2 + s
    return torch.where(neg, lam2, lam), torch.where(_bview(neg, vec), vec2, vec)


def batched_lanczos(matvec: Callable[[Tensor], Tensor], v0: Tensor, iters: int
                    ) -> tuple[Tensor, Tensor]:
    """Lanczos with full re-orthogonalisation for a batch of symmetric operators.

    Args:
        matvec: maps ``(B, ...)`` to ``(B, ...)`` (one operator per sample, e.g. a batched HVP).
        v0: start vectors ``(B, ...)``.
        iters: Krylov dimension ``m ≤ n`` (``n`` = features per sample).

    Returns:
        ``(ritz_values (B, m) ascending, ritz_vectors (B, n, m))`` in float64. With ``m = n`` the
        Ritz values are the eigenvalues. When a sample's Krylov space becomes invariant, the
        iteration continues with a fresh random vector orthogonal to the basis (the Ritz values
        stay those of ``QᵀAQ``).
    """
    B = v0.shape[0]
    n = v0[0].numel()
    m = min(int(iters), n)
    if m < 1:
        raise ValueError("iters must be >= 1")
    gen = torch.Generator().manual_seed(12345)
    dev = v0.device
    q = v0.reshape(B, n).double()
    q = q / q.norm(dim=1, keepdim=True)
    Q = torch.zeros(B, n, m, dtype=torch.float64, device=dev)
    Q[:, :, 0] = q
    alphas = torch.zeros(B, m, dtype=torch.float64, device=dev)
    betas = torch.zeros(B, max(m - 1, 0), dtype=torch.float64, device=dev)
    for k in range(m):
        qk = Q[:, :, k]
        w = matvec(qk.reshape(v0.shape).to(v0.dtype)).reshape(B, n).double()
        alphas[:, k] = (w * qk).sum(1)
        Qk = Q[:, :, : k + 1]
        for _ in range(2):
            w = w - torch.bmm(Qk, torch.bmm(Qk.transpose(1, 2), w.unsqueeze(2))).squeeze(2)
        if k == m - 1:
            break
        b = w.norm(dim=1)
        scale = alphas[:, : k + 1].abs().max(dim=1).values.clamp_min(1e-300)
        broke = b <= 1e-10 * scale
        if bool(broke.any()):
            r = torch.randn(B, n, generator=gen, dtype=torch.float64).to(dev)
            for _ in range(2):
                r = r - torch.bmm(Qk, torch.bmm(Qk.transpose(1, 2), r.unsqueeze(2))).squeeze(2)
            w = torch.where(broke[:, None], r, w)
            b = torch.where(broke, torch.zeros_like(b), b)
        betas[:, k] = b
        Q[:, :, k + 1] = w / w.norm(dim=1, keepdim=True)
    T = torch.diag_embed(alphas)
    if m > 1:
        T = T + torch.diag_embed(betas, 1) + torch.diag_embed(betas, -1)
    theta, S = torch.linalg.eigh(T)
    return theta, torch.bmm(Q, S)


def lanczos(matvec: Matvec, n: int, k: int = 1, iters: int | None = None, *,
            which: str = "LA", v0: Tensor | None = None, seed: int = 0,
            dtype: torch.dtype = torch.float64, device: torch.device | str | None = None,
            ) -> tuple[Tensor, Tensor]:
    """Extreme eigenpairs of one symmetric operator by Lanczos with full re-orthogonalisation.

    Builds an orthonormal Krylov basis ``Q`` (``n × m``) and the tridiagonal ``T = QᵀAQ``;
    the Ritz values (eigenvalues of ``T``) approximate the extreme eigenvalues of ``A``; with
    ``m = n`` they are exact up to round-off. When the Krylov space becomes invariant the
    iteration continues from a random vector orthogonal to the basis (:func:`batched_lanczos`).

    Args:
        matvec: maps a flat vector ``(n,)`` to ``(n,)`` (reshape inside if the operator acts on
            images, e.g. ``lambda v: hvp(fn, x, v.reshape(x.shape).to(x.dtype)).reshape(-1)``).
        n: dimension of the operator.
        k: number of eigenpairs.
        iters: Krylov dimension ``m`` (default ``min(n, max(2k + 20, 30))``).
        which: ``"LA"`` largest algebraic (default), ``"SA"`` smallest algebraic,
            ``"LM"`` largest magnitude.
        v0: start vector ``(n,)`` (default: seeded Gaussian).
        seed: seed of the start vector.
        dtype: working precision (float64 recommended).
        device: working device.

    Returns:
        ``(eigvals, eigvecs)``: ``(k,)`` sorted (descending for LA/LM by value resp. magnitude,
        ascending for SA) and ``(n, k)`` unit Ritz vectors.
    """
    if which not in ("LA", "SA", "LM"):
        raise ValueError(f"which must be 'LA', 'SA' or 'LM', got {which!r}")
    m = min(n, iters if iters is not None else max(2 * k + 20, 30))
    if not 1 <= k <= m:
        raise ValueError(f"need 1 <= k <= iters <= n, got k={k}, iters={m}, n={n}")
    if v0 is None:
        gen = torch.Generator().manual_seed(seed)
        v0 = torch.randn(n, generator=gen, dtype=dtype)
    q = v0.to(dtype=dtype, device=device).reshape(1, n)
    theta, vecs = batched_lanczos(
        lambda v: matvec(v.reshape(-1)).to(dtype=dtype, device=q.device).reshape(1, n), q, m)
    theta, vecs = theta[0], vecs[0]
    if which == "LA":
        order = torch.argsort(theta, descending=True)
    elif which == "SA":
        order = torch.argsort(theta)
    else:
        order = torch.argsort(theta.abs(), descending=True)
    idx = order[:k]
    return theta[idx], vecs[:, idx]


def hessian_eig(fn: Callable[[Tensor], Tensor], x: Tensor, *, iters: int = 100,
                tol: float = 1e-6, mode: str = "abs", seed: int = 0) -> tuple[Tensor, Tensor]:
    """Per-sample extreme eigenpair of the input Hessian of ``fn`` by batched power iteration.

    Args:
        fn: maps ``(B, ...)`` to per-sample scalars ``(B,)``.
        x: points ``(B, ...)``.
        iters, tol, mode: as in :func:`power_iteration` (``"abs"``, ``"max"``, ``"min"``).
        seed: seed of the random start vectors.

    Returns:
        ``(eigval (B,), eigvec (B, ...))``.
    """
    gen = torch.Generator().manual_seed(seed)
    v0 = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
    return power_iteration(hvp_operator(fn, x), v0, iters, tol, mode=mode)
