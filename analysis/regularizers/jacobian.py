"""Jacobian Frobenius-norm regulariser by random projections (Hoffman et al. 2019, ref [4] of Warwick §6).

For logits ``z = f(x) ∈ ℝ^L`` (``L`` classes) the input Jacobian ``J_{c,i} = ∂z_c/∂x_i`` has
(eq. 50) ``‖J‖_F² = L · E_{v̂ ~ Unif(S^{L-1})} ‖∇_x(v̂·z)‖²``, since ``E[v̂v̂ᵀ] = I/L``. The estimator

    ‖J‖_F² ≈ (L / n_proj) Σ_μ ‖∇_x(v̂^μ · z)‖²

costs one backward pass per projection; ``v̂`` is a normalised Gaussian drawn per example and
per projection. The training loss is ``L_CE + (λ_JR/2)(1/|B|) Σ_α ‖J(x^α)‖_F²``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["unit_projections", "outer_projections", "jacobian_frobenius_sq", "JacobianRegularizer",
           "no_cudnn"]


def no_cudnn(x: Tensor):
    """Context that disables cuDNN for double backward through RNNs on a GPU (a no-op on CPU)."""
    if x.is_cuda:
        return torch.backends.cudnn.flags(enabled=False)
    return contextlib.nullcontext()


def unit_projections(B: int, n_proj: int, L: int, *, generator: torch.Generator | None = None,
                     dtype: torch.dtype = torch.float32, device=None) -> Tensor:
    """Normalised Gaussian vectors ``v̂ ~ Unif(S^{L-1})``, shape ``(B, n_proj, L)``."""
    v = torch.randn(B, n_proj, L, generator=generator, dtype=dtype)
    return (v / v.norm(dim=2, keepdim=True)).to(device)


def _leaf_forward(model: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    xl = x.detach().clone().requires_grad_(True)
    z = model(xl)
    if z.dim() != 2:
        raise ValueError(f"model must return (B, L) logits, got shape {tuple(z.shape)}")
    return xl, z


def outer_projections(z: Tensor, n_proj: int, basis: bool, v: Tensor | None = None,
                      generator: torch.Generator | None = None) -> tuple[Tensor, float]:
    """The outer projections of the logits and their factor, shared by ‖J‖_F² and ‖H‖_F².

    Args:
        z: logits ``(B, L)``.
        n_proj: random projections per example (ignored when ``basis``).
        basis: use the ``L`` basis vectors ``e_c`` (exact sum, factor 1) instead of random ones.
        v: explicit projections ``(B, n_proj, L)`` (unit rows) instead of random ones.
        generator: torch generator for the random projections.

    Returns:
        ``(vs, factor)``: vectors ``(B, K, L)`` and the factor ``L/K`` (1 for the basis) that
        makes ``factor·Σ_k ‖∇_x(v_k·z)‖²`` unbiased for ``‖J‖_F²`` (eq. 50).
    """
    B, L = z.shape
    if basis:
        return torch.eye(L, dtype=z.dtype, device=z.device).expand(B, L, L), 1.0
    vs = v if v is not None else unit_projections(B, n_proj, L, generator=generator,
                                                  dtype=z.dtype, device=z.device)
    return vs, L / vs.shape[1]


def jacobian_frobenius_sq(model: Callable[[Tensor], Tensor], x: Tensor, *, n_proj: int = 1,
                          mode: str = "random", v: Tensor | None = None,
                          generator: torch.Generator | None = None,
                          create_graph: bool = False) -> Tensor:
    """Per-example estimate of ``‖J(x)‖_F²`` (eq. 50) by random projections of the logits.

    Args:
        model: logits model ``(B, ...) -> (B, L)``; samples independent.
        x: inputs ``(B, ...)``.
        n_proj: projections per example (``mode="random"``).
        mode: ``"random"`` (unbiased estimator, factor ``L/n_proj``) or ``"exact"`` (the
            ``L`` basis vectors ``e_c``: the exact ``‖J‖_F²``).
        v: explicit projections ``(B, n_proj, L)`` (unit rows) instead of random ones.
        generator: torch generator for the projections (default: the global RNG).
        create_graph: keep the graph so the result can be differentiated in the parameters.

    Returns:
        ``(B,)`` estimates.
    """
    if mode not in ("random", "exact"):
        raise ValueError(f"mode must be 'random' or 'exact', got {mode!r}")
    if n_proj < 1:
        raise ValueError(f"n_proj must be >= 1, got {n_proj}")
    with no_cudnn(x):
        xl, z = _leaf_forward(model, x)
        B = z.shape[0]
        vs, factor = outer_projections(z, n_proj, mode == "exact", v, generator)
        total = torch.zeros(B, dtype=z.dtype, device=z.device)
        if not z.requires_grad:  # z does not depend on x
            return total
        for k in range(vs.shape[1]):
            (g,) = torch.autograd.grad((z * vs[:, k]).sum(), xl, create_graph=create_graph,
                                       retain_graph=True)
            total = total + g.pow(2).reshape(B, -1).sum(1)
        return factor * total


class JacobianRegularizer:
    """``(λ_JR/2)·mean_batch ‖J‖_F²`` with the random-projection estimator (Hoffman et al.).

    Args:
        lam: ``λ_JR`` (Hoffman et al.'s default 0.01).
        n_proj: projections per example (1 in the paper).
    """

    name = "jacobian"

    def __init__(self, lam: float = 0.01, n_proj: int = 1):
        if lam < 0 or n_proj < 1:
            raise ValueError(f"need lam >= 0 and n_proj >= 1, got lam={lam}, n_proj={n_proj}")
        self.lam, self.n_proj = float(lam), int(n_proj)
        self.params = {"lam": self.lam, "n_proj": self.n_proj}

    def __call__(self, model, x: Tensor, y: Tensor, logits: Tensor) -> tuple[Tensor, dict]:
        est = jacobian_frobenius_sq(model, x, n_proj=self.n_proj, create_graph=True)
        return 0.5 * self.lam * est.mean(), {"jac_fro2": float(est.detach().mean())}
