"""The exact discrete path kernel (Bell, Part II, §14, §17; spec §2.8).

A model trained by finitely many plain gradient steps ``w_{s+1} = w_s − ε_s ∇_w mean_{i∈B_s} ℓ``
is exactly a sum over steps of kernel machines (Thm 14.5, in the corrected form of the spec):

    ŷ_k(x; w_N) = ŷ_k(x; w_0) + Σ_s Σ_{i∈B_s} Σ_c a_{i,s,c} K_s^{k,c}(x, x_i),
    a_{i,s,c}    = −ε_s λ_s ∂ℓ(ŷ(x_i; w_s), y_i)/∂ŷ_c              (eq 12, λ_s = 1/|B_s|)
    K_s^{k,c}(x, x_i) = ∫₀¹ ⟨∇_w ŷ_k(x; w_s(t)), ∇_w ŷ_c(x_i; w_s)⟩ dt,  w_s(t) = w_s + t Δ_s

(eqs 11, 13, 14: the test side is integrated along the straight step, the training side is
read at the step start). Proof: ``Σ_{i,c} a_{i,s,c} ∇ŷ_c(x_i; w_s) = Δ_s`` (the coefficient
identity, :func:`coefficient_identity`) and the fundamental theorem of calculus on each segment.

Exact evaluation of the integral: for a one-hidden-layer ReLU MLP the hidden pre-activations at
``x`` are linear in ``t``, so ``[0, 1]`` splits at their zero crossings into pieces on which the
network is smooth (analytic); Gauss-Legendre with ``n_gl`` nodes per piece then converges
geometrically, but it is not exact: where log-softmax turns sharply along the step (large
logits, far from the data, or large steps) 48 nodes are not enough. ``method="exact"`` is
therefore adaptive: each integral is accepted only when the ``n_gl``- and ``n_gl/2``-node
estimates (or two successive halvings of the pieces) agree to ``quad_tol``; the error printed by
:class:`KernelMachine` (kernel vs network) is the independent check. Other MLPs use ``n_gl``
Gauss-Legendre nodes on ``[0, 1]`` (smooth activations converge fast), refined the same way.
For comparison: the document's ``method="uniform"`` (100 values of t, here the trapezoid rule on
``linspace(0, 1, 100)``) and ``method="start"`` (t = 0 features: the first-order step-start
approximation, eq 14 at training points).

Cost: no (examples x parameters) Jacobian is built. Per step, the integrated test gradients
``g_{x,k} = ∫∇_w ŷ_k(x; w_s(t)) dt`` (test points x selected outputs x parameters, chunked) come
from reverse mode through a path-aware forward pass; the kernel values of all training points
along each ``g`` are one forward-mode JVP of the training outputs (``per_point=True``); the
summed kernel machine needs only one VJP of the training outputs per step, ``u_s``, and the
integral of the directional derivative along it, by forward mode at every node
(``per_point=False``: no per-point gradient at all).

Everything is float64 and purely functional: parameters are a tuple ``(W1, b1, W2, b2, ...)``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call, jacrev, jvp, vjp

from analysis import env

__all__ = [
    "LOSSES",
    "ACTIVATIONS",
    "init_mlp",
    "mlp_forward",
    "model_output",
    "per_sample_loss",
    "Trajectory",
    "train_gd",
    "coefficient_identity",
    "path_nodes",
    "integrated_gradients",
    "integrated_directional",
    "output_jvp",
    "KernelMachine",
    "kernel_machine",
    "dpk_gram",
    "interpolation_profile",
    "parameter_norms",
]

Params = tuple[Tensor, ...]
LOSSES = ("nll", "ce_logits", "bce", "mse")
ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "softplus": F.softplus}


# --------------------------------------------------------------------------- the model


def init_mlp(widths: Sequence[int], *, seed: int = 0, zero_last: bool = True,
             dtype: torch.dtype = torch.float64) -> Params:
    """Parameters ``(W1, b1, ..., WL, bL)`` of an MLP with layer widths ``widths`` (input first).

    He-uniform weights, zero biases; ``zero_last=True`` zeroes the last layer so the initial
    output is constant (``ŷ(x; w_0) = b``, the setting of Def 14.3).

    Shape:
        ``W_l``: ``(widths[l], widths[l-1])``; ``b_l``: ``(widths[l],)``.
    """
    if len(widths) < 2 or any(int(w) < 1 for w in widths):
        raise ValueError(f"widths must list >= 2 positive sizes, got {widths}")
    g = torch.Generator().manual_seed(seed)
    out: list[Tensor] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        bound = math.sqrt(6.0 / a)
        W = (torch.rand((b, a), generator=g, dtype=torch.float64) * 2 - 1) * bound
        if zero_last and i == len(widths) - 2:
            W = torch.zeros_like(W)
        out += [W.to(dtype), torch.zeros(b, dtype=dtype)]
    return tuple(out)


def mlp_forward(params: Params, x: Tensor, activation: str = "relu") -> Tensor:
    """Logits ``(B, K)`` of the MLP at inputs ``x`` (flattened to ``(B, D)``)."""
    act = ACTIVATIONS[activation]
    u = x.reshape(x.shape[0], -1)
    n = len(params) // 2
    for l in range(n):
        u = u @ params[2 * l].T + params[2 * l + 1]
        if l < n - 1:
            u = act(u)
    return u


def model_output(params: Params, x: Tensor, activation: str = "relu", loss: str = "nll") -> Tensor:
    """The output ``ŷ`` the kernel represents: log-softmax for ``"nll"``, else the logits."""
    z = mlp_forward(params, x, activation)
    return torch.log_softmax(z, dim=-1) if loss == "nll" else z


def per_sample_loss(yhat: Tensor, y: Tensor, loss: str) -> Tensor:
    """ℓ(ŷ_i, y_i) per sample ``(B,)``.

    ``"nll"``: ``−ŷ_{y}`` on log-probabilities (∂ℓ/∂ŷ_c = −[c = y], eq 100);
    ``"ce_logits"``: cross-entropy on logits (∂ℓ/∂ŷ_c = p_c − [c = y]);
    ``"bce"``: binary cross-entropy on one logit, labels 0/1 (∂ℓ/∂ŷ = σ(ŷ) − y);
    ``"mse"``: ``‖ŷ − onehot(y)‖²`` (∂ℓ/∂ŷ = 2(ŷ − y), the sign varies: §17.3).
    """
    if loss == "nll":
        return -yhat.gather(1, y.view(-1, 1)).squeeze(1)
    if loss == "ce_logits":
        return F.cross_entropy(yhat, y, reduction="none")
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(yhat[:, 0], y.to(yhat.dtype), reduction="none")
    if loss == "mse":
        return ((yhat - F.one_hot(y, yhat.shape[1]).to(yhat.dtype)) ** 2).sum(1)
    raise ValueError(f"unknown loss {loss!r}; valid: {LOSSES}")


def _dloss(yhat: Tensor, y: Tensor, loss: str) -> Tensor:
    """∂ℓ(ŷ_i, y_i)/∂ŷ per sample ``(B, K)``."""
    yh = yhat.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(per_sample_loss(yh, y, loss).sum(), yh)
    return g


# --------------------------------------------------------------------------- training


@dataclass
class Trajectory:
    """Every state of a plain (S)GD run, with what the kernel needs to replay it.

    Attributes:
        params: ``N + 1`` parameter tuples ``w_0 .. w_N``.
        batches: ``N`` index tensors ``B_s`` into ``X``.
        lrs: ``N`` step sizes ``ε_s``.
        X, Y: the training set (float64 inputs, integer labels).
        activation, loss: of the model.
        losses: mean training loss at each ``w_s`` on its batch (``N``).
        seconds: wall time of the training.
    """

    params: list[Params]
    batches: list[Tensor]
    lrs: list[float]
    X: Tensor
    Y: Tensor
    activation: str
    loss: str
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def steps(self) -> int:
        return len(self.batches)

    def output(self, x: Tensor, s: int = -1) -> Tensor:
        """``ŷ(x; w_s)``."""
        return model_output(self.params[s], x, self.activation, self.loss)

    def coefficients(self, s: int) -> Tensor:
        """eq 12: ``a_{i,s,c} = −ε_s λ_s ∂ℓ/∂ŷ_c`` for the points of ``B_s`` (``(|B_s|, K)``)."""
        idx = self.batches[s]
        yhat = self.output(self.X[idx], s)
        return -self.lrs[s] / len(idx) * _dloss(yhat, self.Y[idx], self.loss)


def train_gd(X: Tensor, Y: Tensor, widths: Sequence[int], *, lr: float | Sequence[float],
             steps: int, activation: str = "relu", loss: str = "nll",
             batch_size: int | None = None, seed: int = 0, zero_last: bool = True,
             init: Params | None = None) -> Trajectory:
    """Plain gradient descent (full batch) or SGD on recorded mini-batches, every state saved.

    ``w_{s+1} = w_s − ε_s ∇_w (1/|B_s|) Σ_{i∈B_s} ℓ(ŷ(x_i; w_s), y_i)``: no momentum, weight
    decay, dropout or augmentation (they break the kernel form, Remark 0). Float64 throughout.

    Args:
        X: inputs ``(M, ...)`` (cast to float64). Y: labels ``(M,)``.
        widths: MLP widths, input first (``widths[0]`` = flattened input size).
        lr: step size, or one per step. steps: N.
        activation: ``relu``, ``tanh`` or ``softplus``. loss: one of :data:`LOSSES`.
        batch_size: ``None`` = full batch; else batches drawn without replacement per epoch
            with a generator seeded by ``seed`` (and recorded).
        seed: seed of the initialisation and of the batches.
        zero_last: zero last layer (constant initial output).
        init: explicit initial parameters (overrides ``widths``/``zero_last``).

    Returns:
        :class:`Trajectory`.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; valid: {list(ACTIVATIONS)}")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid: {LOSSES}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    lrs = [float(lr)] * steps if np.isscalar(lr) else [float(v) for v in lr]
    if len(lrs) != steps:
        raise ValueError("need one learning rate per step")
    X = X.reshape(X.shape[0], -1).to(torch.float64)
    Y = Y.long()
    M = X.shape[0]
    w = tuple(p.detach().clone().to(torch.float64) for p in init) if init is not None else \
        init_mlp([X.shape[1], *list(widths)[1:]], seed=seed, zero_last=zero_last)
    g = torch.Generator().manual_seed(seed + 1)
    perm: list[int] = []
    params, batches, losses = [w], [], []
    t0 = time.perf_counter()
    for s in range(steps):
        if batch_size is None or batch_size >= M:
            idx = torch.arange(M)
        else:
            if len(perm) < batch_size:
                perm = torch.randperm(M, generator=g).tolist()
            idx, perm = torch.tensor(perm[:batch_size]), perm[batch_size:]
        wr = tuple(p.detach().requires_grad_(True) for p in w)
        L = per_sample_loss(model_output(wr, X[idx], activation, loss), Y[idx], loss).mean()
        grads = torch.autograd.grad(L, wr)
        w = tuple((p - lrs[s] * gp).detach() for p, gp in zip(wr, grads))
        params.append(w)
        batches.append(idx)
        losses.append(float(L.detach()))
    return Trajectory(params=params, batches=batches, lrs=lrs, X=X, Y=Y, activation=activation,
                      loss=loss, losses=losses, seconds=time.perf_counter() - t0)


def _sub(a: Params, b: Params) -> Params:
    return tuple(x - y for x, y in zip(a, b))


def coefficient_identity(traj: Trajectory, s: int) -> float:
    """Max-abs of ``Σ_{i,c} a_{i,s,c} ∇_w ŷ_c(x_i; w_s) − (w_{s+1} − w_s)`` (one VJP)."""
    idx = traj.batches[s]
    a = traj.coefficients(s)
    _, pull = vjp(lambda p: model_output(p, traj.X[idx], traj.activation, traj.loss),
                  traj.params[s])
    (u,) = pull(a)
    return max(float((ui - di).abs().max()) for ui, di in
               zip(u, _sub(traj.params[s + 1], traj.params[s])))


# --------------------------------------------------------------------------- quadrature


def _gauss_legendre01(n: int) -> tuple[Tensor, Tensor]:
    t, w = np.polynomial.legendre.leggauss(n)
    return torch.from_numpy((t + 1) / 2), torch.from_numpy(w / 2)


def path_nodes(p0: Params, p1: Params, x: Tensor, *, method: str = "exact",
               activation: str = "relu", n_gl: int = 48, n_uniform: int = 100,
               split: int = 1) -> tuple[Tensor, Tensor]:
    """Quadrature nodes and weights on ``[0, 1]`` for ``∫ f(w_s(t)) dt`` at each point of ``x``.

    ``"exact"``: for a one-hidden-layer ReLU MLP, split ``[0, 1]`` at the zero crossings
    ``t_j = z_j(0)/(z_j(0) − z_j(1))`` of the hidden pre-activations at ``x`` (linear in t) and
    put ``n_gl`` Gauss-Legendre nodes on each piece (rows are padded with zero-length pieces to
    the largest number of crossings in the batch); other MLPs: ``n_gl`` Gauss-Legendre nodes on [0, 1].
    ``split`` > 1 cuts every such piece into ``split`` equal sub-pieces (the refinement of the
    adaptive rule in :func:`kernel_machine`).
    ``"uniform"``: trapezoid rule on ``n_uniform`` equally spaced t (the document's 100 t).
    ``"start"``: the single node t = 0 (step-start features).

    Returns:
        ``(t, w)``, float64 ``(T, Q)`` each.
    """
    T = x.shape[0]
    if method == "start":
        return torch.zeros((T, 1), dtype=torch.float64), torch.ones((T, 1), dtype=torch.float64)
    if method == "uniform":
        t = torch.linspace(0, 1, n_uniform, dtype=torch.float64)
        w = torch.full((n_uniform,), 1.0 / (n_uniform - 1), dtype=torch.float64)
        w[0] = w[-1] = 0.5 / (n_uniform - 1)
        return t.expand(T, -1).clone(), w.expand(T, -1).clone()
    if method != "exact":
        raise ValueError(f"unknown method {method!r}; valid: 'exact', 'uniform', 'start'")
    if split < 1 or n_gl < 1:
        raise ValueError(f"need split >= 1 and n_gl >= 1, got {split}, {n_gl}")
    gt, gw = _gauss_legendre01(n_gl)
    if split > 1:  # the composite rule: n_gl nodes on each of `split` equal sub-intervals
        j = torch.arange(split, dtype=torch.float64).view(-1, 1)
        gt = ((j + gt.view(1, -1)) / split).flatten()
        gw = (gw / split).repeat(split)
    if activation == "relu" and len(p0) == 4:
        xf = x.reshape(T, -1).to(torch.float64)
        z0 = xf @ p0[0].T + p0[1]
        z1 = xf @ p1[0].T + p1[1]
        den = z0 - z1
        with torch.no_grad():
            tj = torch.where(den != 0, z0 / torch.where(den != 0, den, 1.0), -1.0)
            inside = (tj > 0) & (tj < 1)
            # keep only the crossings inside (0, 1); pad every row to the largest count
            m = int(inside.sum(1).max()) if T else 0
            tj = torch.where(inside, tj, 2.0).sort(1).values[:, :m].clamp(max=1.0)
        edges = torch.cat([torch.zeros(T, 1, dtype=torch.float64), tj,
                           torch.ones(T, 1, dtype=torch.float64)], 1)
        a, b = edges[:, :-1], edges[:, 1:]
        length = (b - a).unsqueeze(2)
        t = (a.unsqueeze(2) + length * gt.view(1, 1, -1)).reshape(T, -1)
        w = (length * gw.view(1, 1, -1)).reshape(T, -1)
        return t, w
    return gt.expand(T, -1).clone(), gw.expand(T, -1).clone()


# --------------------------------------------------------------------------- kernel evaluation


_DERIV = {
    "relu": lambda z: (z > 0).to(z.dtype),
    "tanh": lambda z: 1 - torch.tanh(z) ** 2,
    "softplus": torch.sigmoid,
}


def integrated_gradients(p: Params, d: Params, x: Tensor, t: Tensor, w: Tensor, sel: Tensor,
                         activation: str, loss: str) -> Params:
    """``g_{x,k} = Σ_q w_q ∇_w ŷ_k(x; p + t_q d)`` for each point and selected output.

    One path-aware forward pass evaluates ``ŷ(x; p + t_q d + E_x)`` at every node, with a
    zero perturbation ``E_x`` of the parameters per test point; reverse mode with respect to
    ``E`` gives every point's integrated gradient at once (points are independent). The input
    layer multiplies ``x`` once, so its cost does not grow with the number of nodes. The
    ``S`` selected outputs share one batched vector-Jacobian product (``is_grads_batched``).

    Args:
        p, d: step start ``w_s`` and step ``Δ_s``. x: ``(T, ...)``. t, w: nodes/weights ``(T, Q)``.
        sel: output indices ``(T, S)``.

    Returns:
        parameter tuple with leading dims ``(T, S)``.
    """
    act = ACTIVATIONS[activation]
    T = x.shape[0]
    eps = [torch.zeros((T, *q.shape), dtype=q.dtype, requires_grad=True) for q in p]
    u = x.reshape(T, 1, -1).to(p[0].dtype)
    tt = t.unsqueeze(2)
    n = len(p) // 2
    for l in range(n):
        W, b, dW, db = p[2 * l], p[2 * l + 1], d[2 * l], d[2 * l + 1]
        eW, eb = eps[2 * l], eps[2 * l + 1]
        u = (u @ W.T + tt * (u @ dW.T) + torch.einsum("tqi,toi->tqo", u, eW)
             + b + tt * db + eb.unsqueeze(1))
        if l < n - 1:
            u = act(u)
    out = torch.log_softmax(u, dim=-1) if loss == "nll" else u  # (T, Q, K)
    picked = (w.unsqueeze(2) * out).sum(1).gather(1, sel)  # (T, S)
    S = sel.shape[1]
    # one batched vector-Jacobian product over all S selected outputs (vmap over the S one-hot
    # cotangents), not one backward pass per output
    cot = torch.eye(S, dtype=picked.dtype, device=picked.device).unsqueeze(1).expand(S, T, S)
    grads = torch.autograd.grad(picked, eps, grad_outputs=cot, is_grads_batched=True)
    return tuple(g.movedim(0, 1) for g in grads)  # (T, S, ...) per parameter


def integrated_directional(p: Params, d: Params, x: Tensor, t: Tensor, w: Tensor, sel: Tensor,
                           u: Params, activation: str, loss: str) -> Tensor:
    """``Σ_q w_q ⟨∇_w ŷ_k(x; p + t_q d), u⟩`` for each point and selected output: ``(T, S)``.

    The same quadrature as ``⟨integrated_gradients(...), u⟩`` (one parameter direction ``u``
    dotted into every node's gradient), computed by forward mode along ``u`` at every node: no
    per-point parameter gradient is built, so its cost is about two forward passes per node
    instead of a reverse pass over ``S`` outputs with per-point parameter copies. The summed
    kernel machine (``u = Σ_{i,c} a_{i,s,c} ∇ŷ_c(x_i; w_s)``) needs nothing else.

    Args:
        p, d: step start ``w_s`` and step ``Δ_s``. x: ``(T, ...)``. t, w: nodes/weights
        ``(T, Q)``. sel: output indices ``(T, S)``. u: the parameter direction (a tuple like
        ``p``).

    Returns:
        float64 ``(T, S)``.
    """
    act, dact = ACTIVATIONS[activation], _DERIV[activation]
    T = x.shape[0]
    h = x.reshape(T, 1, -1).to(p[0].dtype)
    dh: Tensor | None = None
    tt = t.unsqueeze(2)
    n = len(p) // 2
    for l in range(n):
        W, b, dW, db = p[2 * l], p[2 * l + 1], d[2 * l], d[2 * l + 1]
        z = h @ W.T + tt * (h @ dW.T) + b + tt * db
        dz = h @ u[2 * l].T + u[2 * l + 1]
        if dh is not None:
            dz = dz + dh @ W.T + tt * (dh @ dW.T)
        if l < n - 1:
            dh = dact(z) * dz
            h = act(z)
    if loss == "nll":
        dz = dz - (dz * torch.softmax(z, dim=-1)).sum(-1, keepdim=True)
    dz = dz.expand(T, t.shape[1], dz.shape[-1])
    return (w.unsqueeze(2) * dz).sum(1).gather(1, sel)


def output_jvp(p: Params, X: Tensor, V: Params, activation: str, loss: str) -> Tensor:
    """Forward-mode JVPs of the outputs ``ŷ(X; p)`` along ``n`` parameter tangents at once.

    ``result[j, i, c] = ⟨∇_w ŷ_c(x_i; p), V_j⟩``: the kernel values of every training point
    along each tangent, without forming the (examples x parameters) Jacobian.

    Args:
        p: parameters. X: inputs ``(M, D)``. V: tangents with a leading dim ``n``.

    Returns:
        ``(n, M, K)``.
    """
    act, dact = ACTIVATIONS[activation], _DERIV[activation]
    u = X.reshape(X.shape[0], -1).to(p[0].dtype)
    du: Tensor | None = None
    n = len(p) // 2
    for l in range(n):
        W, b, VW, Vb = p[2 * l], p[2 * l + 1], V[2 * l], V[2 * l + 1]
        z = u @ W.T + b
        dz = torch.einsum("mi,noi->nmo", u, VW) + Vb.unsqueeze(1)
        if du is not None:
            dz = dz + du @ W.T
        if l < n - 1:
            du = dact(z).unsqueeze(0) * dz
            u = act(z)
    if loss == "nll":
        prob = torch.softmax(z, dim=-1)
        dz = dz - (dz * prob.unsqueeze(0)).sum(-1, keepdim=True)
    return dz


@dataclass
class KernelMachine:
    """Output of :func:`kernel_machine` for test points ``x`` and selected outputs.

    Attributes:
        output: kernel-machine output ``ŷ_k(x; w_0) + Σ_s Σ_i Σ_c a K`` ``(T, S)``.
        network: the trained network's output ``ŷ_k(x; w_N)`` ``(T, S)``.
        offset: ``ŷ_k(x; w_0)`` ``(T, S)`` (the constant ``b`` when the last layer starts at 0).
        sel: output indices ``(T, S)``.
        contributions: ``Σ_s Σ_c a_{i,s,c} K_s^{k,c}(x, x_i)`` per training point
            ``(T, S, M)`` (``None`` unless ``per_point``).
        seconds: wall time.
        method: quadrature method.
        refinements: the deepest refinement level the adaptive rule used (0: the first
            estimate passed its convergence test everywhere; level L = 2^L sub-pieces).
        unconverged: (step, test point) pairs whose convergence test still failed at
            ``max_refine`` (0 when every integral met ``quad_tol``).
    """

    output: Tensor
    network: Tensor
    offset: Tensor
    sel: Tensor
    contributions: Tensor | None
    seconds: float
    method: str
    refinements: int = 0
    unconverged: int = 0

    @property
    def max_error(self) -> float:
        return float((self.output - self.network).abs().max())


def _select(traj: Trajectory, x: Tensor, outputs: str | Tensor) -> Tensor:
    yN = traj.output(x)
    T, K = yN.shape
    if isinstance(outputs, str):
        if outputs == "all":
            return torch.arange(K).expand(T, K).clone()
        if outputs == "predicted":
            return yN.argmax(1, keepdim=True)
        raise ValueError(f"outputs must be 'all', 'predicted' or an index tensor, got {outputs!r}")
    sel = torch.as_tensor(outputs).long()
    return sel.view(T, -1) if sel.dim() <= 2 else sel


def _converged(fine: Params, coarse: Params, tol: float) -> Tensor:
    """Per row: ``max|fine − coarse| ≤ tol · (1 + max|fine|)`` over every parameter entry."""
    diff = torch.stack([(f - c).flatten(1).abs().amax(1) for f, c in zip(fine, coarse)]).amax(0)
    size = torch.stack([f.flatten(1).abs().amax(1) for f in fine]).amax(0)
    return diff <= tol * (1 + size)


def kernel_machine(traj: Trajectory, x: Tensor, *, outputs: str | Tensor = "predicted",
                   method: str = "exact", per_point: bool = True, n_gl: int = 48,
                   n_uniform: int = 100, quad_tol: float | None = 1e-12, max_refine: int = 8,
                   chunk: int | None = None, tangent_chunk: int = 32,
                   shuffle_coefficients: int | None = None,
                   progress: bool | None = None) -> KernelMachine:
    """Evaluate the discrete-path-kernel representation of a recorded training run at ``x``.

    ``method="exact"`` is adaptive: per step and test point, the integrated gradient with
    ``n_gl`` Gauss-Legendre nodes per smooth piece is compared with the one from ``n_gl // 2``
    nodes; where they differ by more than ``quad_tol · (1 + max|g|)`` (max over parameter
    entries) every piece is halved and the estimate recomputed, until two successive estimates
    agree or ``max_refine`` halvings (2^max_refine sub-pieces) are spent. Gauss-Legendre
    converges geometrically on the smooth pieces, so the accepted (finer) estimate is far more
    accurate than the difference it passed; it is not exact. ``quad_tol=None`` switches the
    test off (fixed ``n_gl`` nodes per piece).

    Args:
        traj: a :class:`Trajectory` (from :func:`train_gd`).
        x: test points ``(T, ...)``.
        outputs: ``"predicted"`` (the final network's argmax), ``"all"``, or indices ``(T, S)``.
        method: quadrature, see :func:`path_nodes`.
        per_point: compute each training point's kernel values (JVPs of the training outputs
            along each integrated test gradient) and sum them with the coefficients; ``False``
            sums the coefficients first (one VJP per step, ``u_s = Σ a ∇ŷ(x_i; w_s)``; same
            value by linearity, no per-point contributions) and integrates the directional
            derivative ``⟨∇ŷ_k(x; w_s(t)), u_s⟩`` by forward mode
            (:func:`integrated_directional`); its adaptive test then compares the integrals
            themselves, per test point over its outputs.
        n_gl, n_uniform: quadrature sizes.
        quad_tol, max_refine: the convergence test of the adaptive exact rule (see above).
        chunk: test points per reverse pass (default: as many as keep the integrated
            gradients of a chunk under ~4 million numbers, at most 256).
        tangent_chunk: tangents per batched JVP.
        shuffle_coefficients: negative control: permute the coefficients among the training
            points of each step (generator seeded with this value).
        progress: tqdm bar over steps (default ``$ANALYSIS_PROGRESS``).

    Returns:
        :class:`KernelMachine`.
    """
    t0 = time.perf_counter()
    x = x.reshape(x.shape[0], -1).to(torch.float64)
    sel = _select(traj, x, outputs)
    T, S = sel.shape
    M = traj.X.shape[0]
    act, loss = traj.activation, traj.loss
    P = sum(q.numel() for q in traj.params[0])
    if chunk is None:
        chunk = int(max(1, min(256, 4_000_000 // (S * P))))
    offset = traj.output(x, 0).gather(1, sel)
    network = traj.output(x, -1).gather(1, sel)
    total = torch.zeros((T, S), dtype=torch.float64)
    contrib = torch.zeros((T, S, M), dtype=torch.float64) if per_point else None
    refinements, unconverged = 0, 0
    steps = range(traj.steps)
    if env.progress_enabled(progress):
        from tqdm import tqdm
        steps = tqdm(steps, desc=f"path kernel ({method})", leave=False)
    for s in steps:
        p, p1 = traj.params[s], traj.params[s + 1]
        d = _sub(p1, p)
        idx = traj.batches[s]
        a = traj.coefficients(s)  # (|B|, K)
        if shuffle_coefficients is not None:
            gen = torch.Generator().manual_seed(shuffle_coefficients + s)
            a = a[torch.randperm(len(a), generator=gen)]
        XB = traj.X[idx]
        u = None
        if not per_point:
            _, pull = vjp(lambda q, xb=XB: model_output(q, xb, act, loss), p)
            (u,) = pull(a)
        for i in range(0, T, chunk):
            xs = x[i:i + chunk]
            sc = sel[i:i + chunk]

            def integral(rows: Tensor, split: int, nodes: int, p=p, p1=p1, d=d, xs=xs,
                         sc=sc, u=u) -> Params:
                tq, wq = path_nodes(p, p1, xs[rows], method=method, activation=act,
                                    n_gl=nodes, n_uniform=n_uniform, split=split)
                if u is not None:  # summed: only ⟨g, u⟩ is needed, by forward mode
                    with torch.no_grad():
                        return (integrated_directional(p, d, xs[rows], tq, wq, sc[rows], u, act,
                                                       loss),)
                g = integrated_gradients(p, d, xs[rows], tq, wq, sc[rows], act, loss)
                return tuple(q.detach() for q in g)

            rows = torch.arange(xs.shape[0])
            g = integral(rows, 1, n_gl)
            if method == "exact" and quad_tol is not None:
                ok = _converged(g, integral(rows, 1, max(1, n_gl // 2)), quad_tol)
                level = 0
                while not ok.all() and level < max_refine:
                    level += 1
                    todo = (~ok).nonzero().flatten()
                    finer = integral(todo, 2 ** level, n_gl)
                    ok[todo] = _converged(finer, tuple(q[todo] for q in g), quad_tol)
                    for q, f in zip(g, finer):
                        q[todo] = f
                    refinements = max(refinements, level)
                unconverged += int((~ok).sum())
            n = xs.shape[0]
            if per_point:
                flat = tuple(q.reshape(n * S, *q.shape[2:]) for q in g)
                vals = []
                for j in range(0, n * S, tangent_chunk):
                    tan = tuple(q[j:j + tangent_chunk] for q in flat)
                    kv = output_jvp(p, XB, tan, act, loss)  # (m, |B|, K) = K_s^{k,c}
                    vals.append((kv * a.unsqueeze(0)).sum(2))  # Σ_c a_{i,s,c} K_s^{k,c}
                per = torch.cat(vals).view(n, S, -1)
                contrib[i:i + n, :, idx] += per
                total[i:i + n] += per.sum(2)
            else:
                total[i:i + n] += g[0]
    return KernelMachine(output=offset + total, network=network, offset=offset, sel=sel,
                         contributions=contrib, seconds=time.perf_counter() - t0, method=method,
                         refinements=refinements, unconverged=unconverged)


def dpk_gram(traj: Trajectory, x: Tensor, output: int = 0, n_gl: int = 16) -> Tensor:
    """Symmetric DPK Gram matrix of non-training points for one output (eq 11):

    ``K(x, x') = Σ_s ∫ ⟨∇_w ŷ_k(x; w_s(t)), ∇_w ŷ_k(x'; w_s(t))⟩ dt`` with ``n_gl``
    Gauss-Legendre nodes shared by all points (so it is PSD by construction up to round-off).
    Small sets only (builds a ``(len(x), P)`` Jacobian per node).
    """
    x = x.reshape(x.shape[0], -1).to(torch.float64)
    gt, gw = _gauss_legendre01(n_gl)
    G = torch.zeros((x.shape[0], x.shape[0]), dtype=torch.float64)
    for s in range(traj.steps):
        p, p1 = traj.params[s], traj.params[s + 1]
        for tq, wq in zip(gt.tolist(), gw.tolist()):
            w = tuple(a + tq * (b - a) for a, b in zip(p, p1))
            J = jacrev(lambda q: model_output(q, x, traj.activation, traj.loss)[:, output])(w)
            Jf = torch.cat([j.reshape(x.shape[0], -1) for j in J], 1)
            G += wq * Jf @ Jf.T
    return G


# --------------------------------------------------------------------------- Fig 24


@torch.no_grad()
def _eval(model: torch.nn.Module, params: dict[str, Tensor], x: Tensor, y: Tensor,
          batch_size: int) -> tuple[float, float]:
    correct, loss = 0, 0.0
    for i in range(0, len(x), batch_size):
        z = functional_call(model, params, (x[i:i + batch_size],))
        correct += int((z.argmax(1) == y[i:i + batch_size]).sum())
        loss += float(F.cross_entropy(z, y[i:i + batch_size], reduction="sum"))
    return correct / len(x), loss / len(x)


def interpolation_profile(model: torch.nn.Module, w0: dict[str, Tensor], w1: dict[str, Tensor],
                          x: Tensor, y: Tensor, ts: Sequence[float],
                          batch_size: int = 500) -> dict[str, np.ndarray]:
    """Fig 24: along ``w(t) = w_0 + t (w_1 − w_0)``, accuracy, mean loss, ``‖w(t)‖₂`` and the
    directional derivative ``⟨∇_w Σ_x log p_{y}(x; w(t)), (w_1 − w_0)/‖w_1 − w_0‖⟩`` (one JVP
    per t; ``ŷ(X)`` of the caption read as the summed true-class log-probability).

    Args:
        model: the architecture (its own parameters are not used). w0, w1: ``named_parameters``
            dicts (initial and trained). x, y: evaluation data. ts: values of t.

    Returns:
        dict of arrays ``t, accuracy, loss, norm, directional``.
    """
    names = list(w1)
    diff = {k: (w1[k] - w0[k]).detach() for k in names}
    dn = math.sqrt(sum(float((v ** 2).sum()) for v in diff.values()))
    unit = {k: v / dn for k, v in diff.items()}
    rows: dict[str, list[float]] = {k: [] for k in ("t", "accuracy", "loss", "norm",
                                                     "directional")}
    model.eval()
    for t in ts:
        wt = {k: (w0[k] + t * diff[k]).detach() for k in names}
        acc, loss = _eval(model, wt, x, y, batch_size)

        def total_logp(params: dict[str, Tensor]) -> Tensor:
            out = x.new_zeros(())
            for i in range(0, len(x), batch_size):
                z = functional_call(model, params, (x[i:i + batch_size],))
                out = out + torch.log_softmax(z, 1).gather(
                    1, y[i:i + batch_size].view(-1, 1)).sum()
            return out

        _, dd = jvp(total_logp, (wt,), (unit,))
        rows["t"].append(float(t))
        rows["accuracy"].append(acc)
        rows["loss"].append(loss)
        rows["norm"].append(math.sqrt(sum(float((v ** 2).sum()) for v in wt.values())))
        rows["directional"].append(float(dd))
    return {k: np.asarray(v) for k, v in rows.items()}


def parameter_norms(traj: Trajectory) -> np.ndarray:
    """``‖w_s‖₂ / ‖w_0‖₂`` along a recorded run (the Discussion's "20-30 %" claim)."""
    n = [math.sqrt(sum(float((q ** 2).sum()) for q in p)) for p in traj.params]
    return np.asarray(n) / n[0]
