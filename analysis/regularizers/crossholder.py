"""Cross-Lipschitz and Cross-Hölder regularisers (Mustafa, Vandermeulen & Kloft 2020, Eq. 5).

For a sample ``(x, y)`` and a wrong class ``j`` the *cross-margin* is ``f⁽ʲ⁾ = f_y − f_j``. The
Cross-Hölder (CH) regulariser of Eq. 5 is

    λ1 · Σ_{j ∈ S} ( ‖∇_x f⁽ʲ⁾(x)‖₂ + λ2 · ‖∇²_x f⁽ʲ⁾(x)‖₂ ),

and λ2 = 0 gives the Cross-Lipschitz (CL) regulariser in the form of Eq. 5 (unsquared norms, only
the pairs (y, j); Hein & Andriushchenko's original Ω_CL is ``cl_variant="hein"``). The batch
objective is the corrected one of the spec (errata E1-E3: descent, Eq. 5's weights, CE counted once):

    L_B = mean_i [ CE_i + λ1 Σ_{j∈S_i} ( ‖∇_x f⁽ʲ⁾(x_i)‖ + λ2 ‖H_{f⁽ʲ⁾}(x_i) v̂_ij‖ ) ],

where ``v̂_ij`` is a stop-gradient estimate of the top eigenvector of the input Hessian, so by
Danskin's theorem (Eq. 6) the θ-gradient of ``‖H v̂‖`` is the gradient of the operator norm.
``S_i`` is every wrong class (``classes="all"``, faithful) or the ``k`` largest wrong logits
(``classes=k``; the chapter uses ``k = 1``).

Two estimators of ``v̂``:

* ``"power"`` (default): ``v ← Hv/‖Hv‖``, one Hessian-vector product (HVP) per step, scale-free.
* ``"ascent"``: Alg. 1 literally: ``v ~ N(0, I)`` (unnormalised), then ``T`` times
  ``v ← v + o·∇_v‖Hv‖ = v + o·H(Hv)/‖Hv‖`` and ``v ← v/‖v‖`` (two HVPs per step). Its step is
  ``≈ o‖H‖`` in length, so it barely moves ``v`` when ``‖H‖`` is small (erratum E10).

HVPs are exact (double back-propagation): with ``g = ∇_X Σ f⁽ʲ⁾`` built once with
``create_graph=True``, ``Hv = ∂⟨g, v⟩/∂X``. The module also holds the PGD adversarial-training
objective, the robust-accuracy curves of Figs. 1, 2, 4, 5 and a step timer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from analysis import autodiff, env

__all__ = [
    "CrossHolder",
    "CrossHolderObjective",
    "CrossLipschitz",
    "PGDTraining",
    "select_classes",
    "estimate_top_direction",
    "cross_margin_terms",
    "margin_graph",
    "robust_curves",
    "RobustCurves",
    "time_steps",
    "standardize_images",
]

_TINY = 1e-12


def _flat(t: Tensor) -> Tensor:
    return t.reshape(t.shape[0], -1)


def _norm(t: Tensor) -> Tensor:
    """Per-row L2 norm, smooth at 0 (so double backprop never divides by zero)."""
    return torch.sqrt((_flat(t) ** 2).sum(dim=1) + _TINY**2)


def select_classes(logits: Tensor, y: Tensor, classes: str | int = 1) -> Tensor:
    """The wrong classes ``S_i`` of each sample.

    Args:
        logits: ``(B, K)`` scores (only their order is used).
        y: labels ``(B,)``.
        classes: ``"all"`` (every ``j ≠ y``, ``K − 1`` per sample) or an int ``k``: the ``k``
            largest wrong logits (``k = 1``: the runner-up, where Corollary 1's minimum usually
            sits).

    Returns:
        Class indices ``(B, S)``.
    """
    k_all = logits.shape[1]
    masked = logits.detach().clone()
    masked.scatter_(1, y[:, None], -math.inf)
    if classes == "all":
        k = k_all - 1
    elif isinstance(classes, int) and not isinstance(classes, bool) and 1 <= classes < k_all:
        k = classes
    else:
        raise ValueError(f"classes must be 'all' or an int in [1, {k_all - 1}], got {classes!r}")
    return masked.topk(k, dim=1).indices


#: Top-eigenvector estimator (power iteration or Alg. 1's ascent); lives in
#: :func:`analysis.autodiff.top_direction` (the bounds use it too), kept here under its old name.
estimate_top_direction = autodiff.top_direction


def margin_graph(model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor,
                 js: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Replicated inputs, cross-margins and their input gradients (graph kept for HVPs).

    Args:
        model: logits model. x: ``(B, ...)``. y: ``(B,)``. js: wrong classes ``(B, S)``.

    Returns:
        ``(X, m, g)``: ``X`` = each ``x_i`` repeated ``S`` times ``(B·S, ...)`` (a leaf that
        requires grad), ``m = f_y − f_j`` ``(B·S,)`` and ``g = ∇_X m`` ``(B·S, ...)`` built with
        ``create_graph=True``, so ``Hv = autograd.grad(g, X, v)``.
    """
    s = js.shape[1]
    yr = y.repeat_interleave(s)
    jr = js.reshape(-1)

    def cross_margin(z: Tensor) -> Tensor:
        out = model(z)
        return out.gather(1, yr[:, None]).squeeze(1) - out.gather(1, jr[:, None]).squeeze(1)

    return autodiff.gradient_graph(cross_margin, x.detach().repeat_interleave(s, dim=0))


def cross_margin_terms(model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor, js: Tensor, *,
                       lambda2: float = 0.0, iters: int = 10, estimator: str = "power",
                       step: float = 0.1, create_graph: bool = True,
                       generator: torch.Generator | None = None,
                       graph: tuple[Tensor, Tensor, Tensor] | None = None,
                       start: Tensor | None = None, tol: float = 0.0) -> dict[str, Tensor]:
    """Per (sample, class) terms of Eq. 5: gradient norm and ``‖H v̂‖`` of ``f_y − f_j``.

    Each ``x_i`` is replicated ``S`` times (one row per class in ``js``) so one backward pass
    gives every cross-margin gradient; samples must be independent (no batch-norm).

    Args:
        model: logits model. x: ``(B, ...)``. y: ``(B,)``. js: wrong classes ``(B, S)``.
        lambda2: weight of the Hessian term; ``0`` skips all HVPs (Cross-Lipschitz).
        iters, estimator, step: the inner estimator (:func:`analysis.autodiff.top_direction`).
        create_graph: keep the graph so the result can be differentiated in θ.
        generator: random start vectors of the estimator (default: torch's global RNG).
        graph: ``(X, m, g)`` of :func:`margin_graph` when the caller built it already (e.g.
            from the forward pass of the cross-entropy); default: built here.
        start: start vectors ``(B·S, ...)`` (a warm start) instead of random ones; the random
            ones are drawn all the same, so the random stream does not depend on it.
        tol: power iteration stops a row once ``‖Hv‖`` has converged to ``tol`` (relative).

    Returns:
        dict with ``margin``, ``grad_norm`` and (if ``lambda2 > 0``) ``hess_norm`` = ``‖H v̂‖``,
        each ``(B, S)``; ``v`` the directions ``(B·S, ...)`` and ``hv`` = ``H v̂`` (detached).
    """
    b, s = js.shape
    xr, m, g = margin_graph(model, x, y, js) if graph is None else graph
    res = {"margin": m.reshape(b, s), "grad_norm": _norm(g).reshape(b, s)}
    if lambda2 > 0:
        def matvec(v: Tensor) -> Tensor:
            return autodiff.graph_hvp(g, xr, v)

        v0 = torch.randn(xr.shape, generator=generator, dtype=xr.dtype).to(xr.device)
        v = autodiff.top_direction(matvec, v0 if start is None else start, iters, estimator,
                                   step, tol)
        hv = autodiff.graph_hvp(g, xr, v, create_graph=create_graph)
        res["hess_norm"] = _norm(hv).reshape(b, s)
        res["v"], res["hv"] = v, hv.detach()
    if not create_graph:
        res = {k: t.detach() for k, t in res.items()}
    return res


class _DirectionStore:
    """Per (training example, class) unit directions kept between epochs (a warm start).

    An example is recognised by a fingerprint of its pixels (the dot product with a fixed
    pseudo-random vector, in float64), so the regulariser needs no example indices from the
    training loop. Directions live on the device of the data; :meth:`state_dict` moves them to
    the CPU (for the training checkpoint).
    """

    def __init__(self) -> None:
        self.index: dict[tuple[float, int], int] = {}
        self.dirs: Tensor | None = None
        self._probe: Tensor | None = None

    def keys(self, x: Tensor, js: Tensor) -> list[tuple[float, int]]:
        flat = x.detach().reshape(x.shape[0], -1).double()
        if self._probe is None or self._probe.numel() != flat.shape[1]:
            gen = torch.Generator().manual_seed(12345)
            self._probe = torch.rand(flat.shape[1], generator=gen, dtype=torch.float64)
        fp = (flat * self._probe.to(flat.device)).sum(dim=1).cpu().tolist()
        s = js.shape[1]
        return [(fp[i // s], int(j)) for i, j in enumerate(js.reshape(-1).cpu().tolist())]

    def get(self, keys: list[tuple[float, int]], like: Tensor) -> tuple[Tensor, Tensor]:
        """Stored directions shaped like ``like`` and a bool mask of the rows that had one."""
        rows = [self.index.get(k, -1) for k in keys]
        have = torch.tensor([r >= 0 for r in rows], device=like.device)
        out = torch.zeros_like(like)
        if self.dirs is not None and bool(have.any()):
            idx = torch.tensor([r for r in rows if r >= 0], device=self.dirs.device)
            out[have] = self.dirs[idx].to(like.device, like.dtype).reshape(-1, *like.shape[1:])
        return out, have

    def put(self, keys: list[tuple[float, int]], v: Tensor) -> None:
        flat = v.detach().reshape(v.shape[0], -1)
        if self.dirs is None:
            self.dirs = flat.new_zeros((0, flat.shape[1]))
        self.dirs = self.dirs.to(flat.device, flat.dtype)
        new = [k for k in dict.fromkeys(keys) if k not in self.index]
        if new:
            for k in new:
                self.index[k] = len(self.index)
            self.dirs = torch.cat([self.dirs, flat.new_zeros((len(new), flat.shape[1]))])
        idx = torch.tensor([self.index[k] for k in keys], device=self.dirs.device)
        self.dirs[idx] = flat.to(self.dirs.device, self.dirs.dtype)

    def state_dict(self) -> dict[str, Tensor]:
        keys = sorted(self.index, key=self.index.get)
        return {"fingerprints": torch.tensor([k[0] for k in keys], dtype=torch.float64),
                "classes": torch.tensor([k[1] for k in keys], dtype=torch.int64),
                "directions": (self.dirs.cpu() if self.dirs is not None
                               else torch.zeros(0, 0))}

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        fps, cls = state["fingerprints"].tolist(), state["classes"].tolist()
        self.index = {(f, c): i for i, (f, c) in enumerate(zip(fps, cls))}
        self.dirs = state["directions"].clone() if fps else None


def _hein_cl(model: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Hein & Andriushchenko's Ω_CL per sample: (1/K²) Σ_{l,m} ‖∇f_l − ∇f_m‖²."""
    xl = x.detach().requires_grad_(True)
    out = model(xl)
    k = out.shape[1]
    rows = [torch.autograd.grad(out[:, c].sum(), xl, create_graph=True)[0] for c in range(k)]
    jac = torch.stack([_flat(r) for r in rows], dim=1)  # (B, K, d)
    # Σ_{l,m} ‖J_l − J_m‖² = 2K Σ_l ‖J_l‖² − 2 ‖Σ_l J_l‖²
    tot = 2 * k * (jac**2).sum(dim=(1, 2)) - 2 * (jac.sum(dim=1) ** 2).sum(dim=1)
    return tot / k**2


class CrossHolder:
    """Cross-Hölder regulariser (Eq. 5) for :func:`analysis.train.fit`.

    Args:
        lambda1: weight ``λ1`` of the whole term.
        lambda2: weight ``λ2`` of the Hessian operator norm (``R/2`` of Theorem 2; 0 = CL).
        classes: ``S_i``: ``"all"`` (faithful) or ``k`` runner-up classes (default 1).
        iters: ``T`` estimator steps (from a random start).
        estimator: ``"power"`` (default) or ``"ascent"`` (literal Alg. 1, erratum E10).
        step: ``o`` of Alg. 1.
        warm_start: keep each training example's direction across epochs (power only): an
            example seen before starts from its stored direction and runs ``warm_iters`` power
            steps instead of ``iters`` (row by row: in a batch with both kinds, the rows without
            a stored direction take their extra steps on a graph of their own); the product
            ``H v̂`` of the penalty is one more power step, stored for the next visit. Same objective (Danskin with a stop-gradient
            ``v̂``), fewer Hessian-vector products. Use one instance per training run (the
            directions belong to it; :meth:`state_dict` goes into the training checkpoint).
        warm_iters: power steps of a warm-started example.
        tol: a row's power iteration stops once ``‖Hv‖`` changes by less than ``tol``
            (relative; 0 = always run the steps).

    Calling it as ``reg(model, x, y, logits)`` returns ``(value, stats)`` where ``value`` is the
    batch mean over samples of ``λ1 Σ_j (…)`` and ``stats`` holds the mean gradient norm ``G`` and
    Hessian-norm estimate ``K`` of the regularised cross-margins. :class:`CrossHolderObjective`
    wraps it as a training objective that shares the cross-entropy's forward pass.
    """

    name = "cross_holder"

    def __init__(self, lambda1: float, lambda2: float = 0.5, classes: str | int = 1,
                 iters: int = 10, estimator: str = "power", step: float = 0.1, *,
                 warm_start: bool = False, warm_iters: int = 1, tol: float = 0.0):
        if lambda1 < 0 or lambda2 < 0:
            raise ValueError(f"lambda1 and lambda2 must be >= 0, got {lambda1}, {lambda2}")
        if estimator not in ("power", "ascent"):
            raise ValueError(f"estimator must be 'power' or 'ascent', got {estimator!r}")
        if not (classes == "all" or (isinstance(classes, int) and classes >= 1)):
            raise ValueError(f"classes must be 'all' or a positive int, got {classes!r}")
        if iters < 0 or warm_iters < 0 or tol < 0:
            raise ValueError(f"iters, warm_iters and tol must be >= 0, got {iters}, "
                             f"{warm_iters}, {tol}")
        if warm_start and estimator != "power":
            raise ValueError("warm_start needs the power estimator")
        self.lambda1, self.lambda2 = float(lambda1), float(lambda2)
        self.classes, self.iters, self.estimator, self.step = classes, int(iters), estimator, step
        self.warm_start, self.warm_iters, self.tol = bool(warm_start), int(warm_iters), float(tol)
        self.params = {"lambda1": self.lambda1, "lambda2": self.lambda2, "classes": classes,
                       "iters": self.iters, "estimator": estimator, "step": float(step)}
        if self.warm_start or self.tol:
            self.params.update(warm_start=self.warm_start, warm_iters=self.warm_iters,
                               tol=self.tol)
        self._store = _DirectionStore()

    def terms(self, model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor,
              logits: Tensor | None = None, create_graph: bool = True,
              graph: tuple[Tensor, Tensor, Tensor] | None = None,
              js: Tensor | None = None) -> dict[str, Tensor]:
        """The per (sample, class) terms (see :func:`cross_margin_terms`).

        ``graph`` and ``js`` let a caller that ran the forward pass already (with ``x`` as a
        leaf) pass the margin graph and the classes; otherwise they are computed here.
        """
        if js is None:
            if logits is None:
                with torch.no_grad():
                    logits = model(x)
            js = select_classes(logits, y, self.classes)
        if graph is None:
            graph = margin_graph(model, x, y, js)
        kw = {"lambda2": self.lambda2, "estimator": self.estimator, "step": self.step,
              "create_graph": create_graph, "graph": graph, "tol": self.tol}
        if not (self.warm_start and self.lambda2 > 0):
            return cross_margin_terms(model, x, y, js, iters=self.iters, **kw)
        keys = self._store.keys(x, js)
        start, have = self._store.get(keys, graph[0])
        v0 = torch.randn(graph[0].shape, dtype=graph[0].dtype).to(graph[0].device)
        start = torch.where(have.reshape(-1, *([1] * (start.dim() - 1))), start, v0)
        iters = self.iters if not bool(have.any()) else self.warm_iters
        if bool(have.any()) and not bool(have.all()):
            start = self._first_steps(model, x, y, js, start, ~have)
        t = cross_margin_terms(model, x, y, js, iters=iters, start=start, **kw)
        self._store.put(keys, t["hv"] / _norm(t["hv"]).reshape(-1, *([1] * (start.dim() - 1))))
        return t

    def _first_steps(self, model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor, js: Tensor,
                     start: Tensor, cold: Tensor) -> Tensor:
        """``start`` with the first ``iters − warm_iters`` power steps of the ``cold`` rows done.

        The rows of a batch that have no stored direction yet (a first visit, or a runner-up
        class that changed since the last visit) need ``iters`` steps in all, the others
        ``warm_iters``. A row's power iteration does not depend on the other rows, so the cold
        rows take their first steps on a margin graph of their own (its cost grows with their
        number, not with the batch) and the batch then runs ``warm_iters`` steps for every row.
        """
        extra = self.iters - self.warm_iters
        if extra <= 0:
            return start
        s = js.shape[1]
        rows = cold.nonzero().squeeze(1)
        sub_x, _, sub_g = margin_graph(model, x[rows // s], y[rows // s],
                                       js.reshape(-1)[rows][:, None])
        v = autodiff.top_direction(lambda u: autodiff.graph_hvp(sub_g, sub_x, u),
                                   start[rows], extra, "power", self.step, self.tol)
        out = start.clone()
        out[rows] = v.to(out.dtype)
        return out

    def __call__(self, model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor,
                 logits: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
        return self._value(self.terms(model, x, y, logits))

    def _value(self, t: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        per = t["grad_norm"]
        stats = {"G": float(t["grad_norm"].detach().mean())}
        if "hess_norm" in t:
            per = per + self.lambda2 * t["hess_norm"]
            stats["K"] = float(t["hess_norm"].detach().mean())
        return self.lambda1 * per.sum(dim=1).mean(), stats

    def state_dict(self) -> dict[str, Tensor]:
        """The warm-start directions (empty without ``warm_start``), for the checkpoint."""
        return self._store.state_dict()

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        """Restore the directions saved by :meth:`state_dict` (a resumed training run)."""
        self._store.load_state_dict(state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"


class CrossHolderObjective:
    """Cross-entropy plus :class:`CrossHolder` as one ``train.fit`` objective, one forward pass.

    With one regularised class per example (``classes=1``) the cross-margins are taken from the
    logits of the cross-entropy's own forward pass (the input is a leaf that requires grad), so
    the regulariser does not repeat it; with several classes the replicated forward is needed and
    the regulariser builds it.

    Args:
        reg: the regulariser (its warm-start state is this objective's state).
    """

    name = "cross_holder_objective"
    objective = True

    def __init__(self, reg: CrossHolder):
        self.reg = reg
        self.params = dict(reg.params)

    def __call__(self, model: Callable[[Tensor], Tensor], x: Tensor,
                 y: Tensor) -> tuple[Tensor, dict[str, Any]]:
        if self.reg.classes == 1:
            xl = x.detach().requires_grad_(True)
            logits = model(xl)
            js = select_classes(logits, y, 1)
            m = logits.gather(1, y[:, None]).squeeze(1) - logits.gather(1, js).squeeze(1)
            (g,) = torch.autograd.grad(m.sum(), xl, create_graph=True)
            t = self.reg.terms(model, x, y, graph=(xl, m, g), js=js)
        else:
            logits = model(x)
            t = self.reg.terms(model, x, y, logits)
        ce = F.cross_entropy(logits, y)
        reg, stats = self.reg._value(t)
        return ce + reg, {"ce": ce.detach(), "reg": reg.detach(), **stats}

    def state_dict(self) -> dict[str, Tensor]:
        """The regulariser's warm-start state."""
        return self.reg.state_dict()

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        """Restore the regulariser's warm-start state."""
        self.reg.load_state_dict(state)


class CrossLipschitz(CrossHolder):
    """Cross-Lipschitz baseline: Eq. 5 with ``λ2 = 0`` (default), or Hein & Andriushchenko's
    original ``Ω_CL = (1/K²) Σ_{l,m} ‖∇f_l − ∇f_m‖²`` per sample (``variant="hein"``).

    Args:
        lambda1: weight.
        classes: ``S_i`` as in :class:`CrossHolder` (ignored by ``"hein"``, which uses all pairs).
        variant: ``"eq5"`` or ``"hein"``.
    """

    name = "cross_lipschitz"

    def __init__(self, lambda1: float, classes: str | int = 1, variant: str = "eq5"):
        if variant not in ("eq5", "hein"):
            raise ValueError(f"variant must be 'eq5' or 'hein', got {variant!r}")
        super().__init__(lambda1, 0.0, classes=classes, iters=0)
        self.variant = variant
        self.params = {"lambda1": self.lambda1, "classes": classes, "variant": variant}

    def __call__(self, model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor,
                 logits: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
        if self.variant == "hein":
            om = _hein_cl(model, x)
            return self.lambda1 * om.mean(), {"omega_cl": float(om.detach().mean())}
        return super().__call__(model, x, y, logits)


class PGDTraining:
    """PGD adversarial training objective (Madry et al.) in the L2 ball, for ``train.fit``.

    Every example of the batch is replaced by an L2-PGD adversarial example: a random start
    uniform in the ε-ball, ``steps`` steps of length ``2.5ε/steps`` along the normalised gradient
    of the cross-entropy, projection onto the ball and clipping to ``box``; the loss is the
    cross-entropy at the result (the model is in eval mode during the attack; the caller's mode
    is restored).

    Args:
        eps: L2 radius in input units. steps: PGD steps. box: input bounds or ``None``.
    """

    name = "pgd_training"
    objective = True

    def __init__(self, eps: float, steps: int = 7, box: tuple[float, float] | None = (0.0, 1.0)):
        if eps <= 0 or steps < 1:
            raise ValueError(f"need eps > 0 and steps >= 1, got {eps}, {steps}")
        self.eps, self.steps, self.box = float(eps), int(steps), box
        self.params = {"eps": self.eps, "steps": self.steps,
                       "box": None if box is None else [float(box[0]), float(box[1])]}

    def attack(self, model: torch.nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """The L2-PGD adversarial batch (detached), by :func:`analysis.attacks.pgd`.

        The final iterate of every example (``keep="last"``, misclassified ones too); the seed
        of the random start is drawn from torch's global stream, so a seeded training run is
        reproducible and batches get different starts.
        """
        from analysis import attacks

        seed = int(torch.randint(0, 2**31 - 1, (1,)))
        res = attacks.pgd(model, x, y, self.eps, "l2", steps=self.steps, restarts=1,
                          keep="last", attack_all=True, seed=seed, box=self.box)
        return res.x_adv.detach()

    def __call__(self, model: torch.nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, dict]:
        xa = self.attack(model, x, y)
        logits = model(xa)
        loss = F.cross_entropy(logits, y)
        return loss, {"ce": float(loss.detach()),
                      "adv_acc": float((logits.argmax(1) == y).float().mean())}


@dataclass
class RobustCurves:
    """Accuracy under L2 PGD against ε (nested: a point broken at ε counts broken beyond).

    Attributes:
        eps: radii (ascending), input units.
        ce, cw: accuracy under PGD with the cross-entropy / CW margin loss, ``(E,)``.
        min_of_two: ``min(ce, cw)`` per ε (the document's "worst case").
        per_example: accuracy when a point must survive both attacks (≤ ``min_of_two``).
        alive_ce, alive_cw: bool ``(E, N)`` masks of points surviving each attack.
        clean: clean accuracy (ε = 0).
    """

    eps: np.ndarray
    ce: np.ndarray
    cw: np.ndarray
    min_of_two: np.ndarray
    per_example: np.ndarray
    alive_ce: np.ndarray
    alive_cw: np.ndarray
    clean: float = float("nan")

    def as_dict(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def robust_curves(model: torch.nn.Module, x: Tensor, y: Tensor, eps_list: Sequence[float], *,
                  steps: int = 50, restarts: int = 1, box: tuple[float, float] | None = (0., 1.),
                  seed: int = 0, batch_size: int | None = 500,
                  progress: bool = False) -> RobustCurves:
    """Robust accuracy curves under L2 PGD with CE and CW losses (Sec. 5, App. C.2).

    Radii are attacked in increasing order, each only on the points still robust at the previous
    radius (valid because the balls are nested), so curves are non-increasing.

    Args:
        model: logits model. x: inputs. y: labels.
        eps_list: L2 radii (input units), sorted ascending here.
        steps, restarts: PGD iterations and random restarts (step ``2.5ε/steps``).
        box: input bounds. seed: PGD seed. batch_size: chunk size.
        progress: tqdm bar over the two losses (each is :func:`analysis.attacks.robust_outcomes`).

    Returns:
        :class:`RobustCurves`.
    """
    from analysis import attacks

    eps = np.sort(np.asarray(list(eps_list), dtype=np.float64))
    if eps.size == 0 or np.any(eps < 0):
        raise ValueError("eps_list must be non-empty and non-negative")
    with torch.no_grad():
        correct = attacks.predict(model, x) == y
    losses = ("ce", "cw")
    if env.progress_enabled(progress):
        from tqdm import tqdm

        losses = tqdm(losses, desc="PGD curves", leave=False)
    masks = {loss: attacks.robust_outcomes(model, x, y, eps, "l2", steps=steps,
                                           restarts=restarts, loss=loss, seed=seed, box=box,
                                           batch_size=batch_size)
             for loss in losses}
    ce, cw = masks["ce"].mean(axis=1), masks["cw"].mean(axis=1)
    both = (masks["ce"] & masks["cw"]).mean(axis=1)
    return RobustCurves(eps=eps, ce=ce, cw=cw, min_of_two=np.minimum(ce, cw), per_example=both,
                        alive_ce=masks["ce"], alive_cw=masks["cw"],
                        clean=float(correct.float().mean()))


def time_steps(model: torch.nn.Module, x: Tensor, y: Tensor,
               methods: Mapping[str, Callable | None], repeats: int = 3, *,
               warmup: int = 0, raw: bool = False) -> dict[str, float] | dict[str, list[float]]:
    """Seconds of one training step (forward, loss, backward) per method, interleaved.

    Args:
        model: the network (its ``.grad`` fields are overwritten; no optimiser step is taken).
        x, y: one batch.
        methods: name → ``None`` (plain cross-entropy), a regulariser ``reg(model, x, y, logits)``
            added to the cross-entropy, or an objective (attribute ``objective = True``, e.g.
            :class:`PGDTraining`, :class:`CrossHolderObjective`) called as ``obj(model, x, y)``.
        repeats: timed rounds; the methods are timed round-robin within each round so that
            machine load affects them alike.
        warmup: untimed rounds first (they also fill a warm-started regulariser's directions,
            as a previous epoch would).
        raw: return every round's time instead of the median.

    Returns:
        name → median seconds per step (``raw``: name → list of ``repeats`` seconds, round by
        round, so per-round ratios are paired).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    times: dict[str, list[float]] = {k: [] for k in methods}
    model.train()
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)  # time the GPU's work
    for r in range(warmup + repeats):
        for name, m in methods.items():
            sync()
            t0 = time.perf_counter()
            if m is not None and getattr(m, "objective", False):
                loss, _ = m(model, x, y)
            else:
                logits = model(x)
                loss = F.cross_entropy(logits, y)
                if m is not None:
                    out = m(model, x, y, logits)
                    loss = loss + (out[0] if isinstance(out, tuple) else out)
            model.zero_grad(set_to_none=True)
            loss.backward()
            sync()
            if r >= warmup:
                times[name].append(time.perf_counter() - t0)
    model.zero_grad(set_to_none=True)
    if raw:
        return times
    return {k: float(np.median(v)) for k, v in times.items()}


def standardize_images(data, mean: float | None = None, std: float | None = None):
    """Standardise an image :class:`~analysis.data.Dataset` with one scalar mean and std.

    The chapter works in standardised units (erratum E13): ``z = (x − μ)/σ`` with the training
    set's pixel mean and standard deviation, so L2 radii, gradients and Hessians are in those
    units (``ε_px = σ·ε``, ``∇_px = ∇/σ``, ``H_px = H/σ²``).

    Args:
        data: a Dataset with pixels in [0, 1].
        mean, std: override the statistics (default: the training set's).

    Returns:
        ``(dataset, info)``: the standardised Dataset (name unchanged, note extended) and
        ``{"mean", "std", "box"}`` where ``box = ((0 − μ)/σ, (1 − μ)/σ)`` is the image of
        [0, 1], computed with the same float32 operations as the data so that every standardised
        pixel lies inside it.
    """
    from dataclasses import replace

    if not data.is_image:
        raise ValueError("standardize_images expects images with pixels in [0, 1]")
    mu = float(data.x_train.mean()) if mean is None else float(mean)
    sd = float(data.x_train.std()) if std is None else float(std)
    if not sd > 0:
        raise ValueError(f"std must be > 0, got {sd}")

    def z(t: Tensor) -> Tensor:
        return (t - mu) / sd

    ends = z(torch.tensor([0.0, 1.0], dtype=data.x_train.dtype))
    note = "; ".join(p for p in (data.note, f"standardised mu={mu:.4f} sd={sd:.4f}") if p)
    out = replace(data, x_train=z(data.x_train), x_test=z(data.x_test), note=note, _fp=None)
    return out, {"mean": mu, "std": sd, "box": (float(ends[0]), float(ends[1]))}
