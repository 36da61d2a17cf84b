"""Hessian Frobenius-norm input regulariser (Warwick §6, eqs 50-56, Algorithm 2; corrected).

For logits ``z ∈ ℝ^L`` the input Hessians ``H_c = ∇²_x z_c`` give (eq. 50)
``‖H(x)‖_F² = Σ_{c,i,j} (∂²z_c/∂x_i∂x_j)² = L · E_{v̂ ~ Unif(S^{L-1})} ‖∇²_x(v̂·z)‖_F²``
(eqs 52/54 with the transposes fixed). The inner Frobenius norm is itself estimated by a
second (Hutchinson) projection ``‖A‖_F² = E_{w ~ N(0, I_d)} ‖A w‖²``:

    Ĥ = (L / n_proj) Σ_μ ‖∇_x[ w^μ · ∇_x(v̂^μ · z) ]‖²

one Hessian-vector product per example and projection (the document's Alg 2 computes a
``d × d`` matrix "Hv" instead, and its eq. 55 omits the factor ``L``: ``λ_doc = L·λ_ours``).
Training loss (56): ``L_CE + (λ_HR/2)(1/|B|) Σ_α Ĥ(x^α)``; the gradient in the parameters
goes through the HVP (third-order autograd). The activation must be ``C²`` (tanh): with ReLU
the input Hessian is zero almost everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from analysis.regularizers.jacobian import (
    _leaf_forward,
    jacobian_frobenius_sq,
    no_cudnn,
    outer_projections,
)

__all__ = ["hessian_frobenius_sq", "HessianRegularizer", "regulariser_targets",
           "subsample_variance_factor"]


def hessian_frobenius_sq(model: Callable[[Tensor], Tensor], x: Tensor, *, n_proj: int = 1,
                         outer: str = "random", inner: str = "hutchinson",
                         v: Tensor | None = None, w: Tensor | None = None,
                         generator: torch.Generator | None = None,
                         create_graph: bool = False) -> Tensor:
    """Per-example estimate of ``‖H(x)‖_F² = Σ_c ‖∇²_x z_c‖_F²`` (eqs 50-55, corrected).

    Args:
        model: logits model ``(B, ...) -> (B, L)``; samples independent.
        x: inputs ``(B, ...)``.
        n_proj: outer projections per example (``outer="random"``).
        outer: ``"random"`` (``v̂ ~ Unif(S^{L-1})``, factor ``L/n_proj``) or ``"basis"``
            (``v = e_c`` for every class, factor 1).
        inner: ``"hutchinson"`` (one ``w ~ N(0, I_d)`` per outer vector, one HVP) or
            ``"exact"`` (``w = e_i`` for all ``d`` inputs: ``d`` HVPs, for tests).
        v: explicit outer vectors ``(B, n_proj, L)`` (``outer="random"``).
        w: explicit inner vectors ``(B, n_proj, *x.shape[1:])`` (``inner="hutchinson"``).
        generator: torch generator for ``v`` and ``w`` (default: global RNG).
        create_graph: keep the graph (training through the estimate).

    Returns:
        ``(B,)`` estimates (unbiased for ``outer="random"``/``inner="hutchinson"``; exact for
        ``outer="basis"``/``inner="exact"``).
    """
    if outer not in ("random", "basis"):
        raise ValueError(f"outer must be 'random' or 'basis', got {outer!r}")
    if inner not in ("hutchinson", "exact"):
        raise ValueError(f"inner must be 'hutchinson' or 'exact', got {inner!r}")
    if n_proj < 1:
        raise ValueError(f"n_proj must be >= 1, got {n_proj}")
    with no_cudnn(x):
        xl, z = _leaf_forward(model, x)
        B, d = z.shape[0], xl[0].numel()
        vs, factor = outer_projections(z, n_proj, outer == "basis", v, generator)
        total = torch.zeros(B, dtype=z.dtype, device=z.device)
        if not z.requires_grad:
            return total
        for k in range(vs.shape[1]):
            (g,) = torch.autograd.grad((z * vs[:, k]).sum(), xl, create_graph=True,
                                       retain_graph=True)
            if not g.requires_grad:  # affine model: the Hessian is zero
                continue
            if inner == "exact":
                eye = torch.eye(d, dtype=xl.dtype, device=xl.device)
                for i in range(d):
                    wi = eye[i].reshape(xl.shape[1:]).expand_as(xl)
                    (hv,) = torch.autograd.grad(g, xl, grad_outputs=wi, retain_graph=True,
                                                create_graph=create_graph, allow_unused=True)
                    if hv is not None:
                        total = total + hv.pow(2).reshape(B, -1).sum(1)
            else:
                if w is not None:
                    wk = w[:, k]
                else:
                    wk = torch.randn(xl.shape, generator=generator, dtype=xl.dtype)
                    wk = wk.to(xl.device)
                (hv,) = torch.autograd.grad(g, xl, grad_outputs=wk, retain_graph=True,
                                            create_graph=create_graph, allow_unused=True)
                if hv is not None:
                    total = total + hv.pow(2).reshape(B, -1).sum(1)
        return factor * total


class HessianRegularizer:
    """``(λ_HR/2)·mean_batch Ĥ`` (eq. 56) with the two-projection estimator.

    With ``n_examples`` set, ``Ĥ`` is averaged over ``n_examples`` examples of each batch drawn
    uniformly without replacement (from the global torch RNG) instead of all of them. The mean
    over a uniform random subset is an unbiased estimate of the batch mean, so the regulariser
    and its parameter gradient keep their expectation (the maths of eq. 56 is unchanged); only
    the variance grows, by the factor ``B/k`` in total
    (:func:`subsample_variance_factor`). The cost of the third-order autograd falls with ``k``
    (issue 14: HR training was about 5.5 plain epochs per epoch with all 128 examples).

    Args:
        lam: ``λ_HR`` in our convention (the document's ``λ_doc = L·λ_HR``).
        n_proj: projections per example (1 in Alg 2).
        n_examples: examples per batch that carry ``Ĥ`` (None: all, as in Alg 2).
    """

    name = "hessian"

    def __init__(self, lam: float = 0.01, n_proj: int = 1, n_examples: int | None = None):
        if lam < 0 or n_proj < 1:
            raise ValueError(f"need lam >= 0 and n_proj >= 1, got lam={lam}, n_proj={n_proj}")
        if n_examples is not None and n_examples < 1:
            raise ValueError(f"n_examples must be >= 1 or None, got {n_examples}")
        self.lam, self.n_proj = float(lam), int(n_proj)
        self.n_examples = None if n_examples is None else int(n_examples)
        self.params = {"lam": self.lam, "n_proj": self.n_proj}
        if self.n_examples is not None:  # old cache keys stay valid for the full-batch form
            self.params["n_examples"] = self.n_examples

    def subset(self, x: Tensor) -> Tensor:
        """The examples of the batch ``x`` that carry ``Ĥ`` (uniform, without replacement)."""
        k = self.n_examples
        if k is None or k >= x.shape[0]:
            return x
        return x[torch.randperm(x.shape[0])[:k].to(x.device)]

    def __call__(self, model, x: Tensor, y: Tensor, logits: Tensor) -> tuple[Tensor, dict]:
        est = hessian_frobenius_sq(model, self.subset(x), n_proj=self.n_proj, create_graph=True)
        return 0.5 * self.lam * est.mean(), {"hess_fro2": float(est.detach().mean())}


def subsample_variance_factor(batch: int, k: int) -> float:
    """Variance of the subset mean of ``Ĥ`` relative to the full-batch mean.

    Over the draw of the data and of the subset, the mean of ``k`` of the ``B`` i.i.d.
    per-example terms is a mean of ``k`` i.i.d. terms: variance ``σ²/k``, against ``σ²/B`` for
    the whole batch. The standard error of the regulariser's estimate grows by ``√(B/k)``.

    Args:
        batch: batch size ``B``.
        k: examples kept, ``1 <= k <= B``.

    Returns:
        ``B / k``.
    """
    if not 1 <= k <= batch:
        raise ValueError(f"need 1 <= k <= batch, got k={k}, batch={batch}")
    return batch / k


def regulariser_targets(models: dict[str, Callable[[Tensor], Tensor]], x: Tensor, *,
                        n_proj: int = 64, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Each regulariser's target on every model, with the same estimator for all models.

    The exact ``‖J‖_F²`` (``L`` backward passes) and ``Ĥ`` of :func:`hessian_frobenius_sq`
    with ``n_proj`` projections, averaged over the points ``x``. The projections ``v̂, w`` are
    drawn from a fresh generator seeded with ``seed`` for each model, so every model is
    measured with the same projections (a generator carried on from one model to the next
    would give each model different ones).

    Args:
        models: name -> logits model ``(B, ...) -> (B, L)``.
        x: points ``(B, ...)`` (pixels in [0, 1]).
        n_proj: projections of ``Ĥ`` per point.
        seed: seed of the projections.

    Returns:
        name -> ``(mean ‖J‖_F², mean Ĥ)`` as floats.
    """
    out = {}
    for name, m in models.items():
        gen = torch.Generator().manual_seed(seed)  # CPU: the draws are moved to x.device
        j2 = float(jacobian_frobenius_sq(m, x, mode="exact").mean())
        h2 = float(hessian_frobenius_sq(m, x, n_proj=n_proj, generator=gen).mean())
        out[name] = (j2, h2)
    return out
