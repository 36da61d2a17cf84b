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

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from analysis import env

__all__ = [
    "CrossHolder",
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


def estimate_top_direction(matvec: Callable[[Tensor], Tensor], v0: Tensor, iters: int,
                           estimator: str = "power", step: float = 0.1) -> Tensor:
    """Estimate of the top (largest |eigenvalue|) eigenvector of per-row symmetric operators.

    Args:
        matvec: maps ``(N, ...)`` to ``(N, ...)``, one Hessian per row (no graph needed).
        v0: start vectors ``(N, ...)`` (e.g. standard normal).
        iters: ``T``, the number of steps.
        estimator: ``"power"`` (``v ← Hv/‖Hv‖``, 1 HVP per step) or ``"ascent"`` (Alg. 1:
            ``v ← v + step·H(Hv)/‖Hv‖; v ← v/‖v‖``, 2 HVPs per step, ``v0`` used unnormalised).
        step: ``o`` of Alg. 1 (ascent only).

    Returns:
        Unit vectors ``(N, ...)`` (detached).
    """
    if iters < 0:
        raise ValueError(f"iters must be >= 0, got {iters}")
    v = v0.detach()
    if estimator == "power":
        v = v / _norm(v).reshape(-1, *([1] * (v.dim() - 1)))
        for _ in range(iters):
            hv = matvec(v).detach()
            n = _flat(hv).norm(dim=1)
            ok = (n > 0).reshape(-1, *([1] * (v.dim() - 1)))
            v = torch.where(ok, hv / n.clamp_min(1e-300).reshape(ok.shape), v)
    elif estimator == "ascent":
        for _ in range(iters):
            hv = matvec(v).detach()
            n = _flat(hv).norm(dim=1).clamp_min(1e-300).reshape(-1, *([1] * (v.dim() - 1)))
            grad = matvec(hv).detach() / n  # ∇_v ‖Hv‖₂ = H(Hv)/‖Hv‖ (H symmetric)
            v = v + step * grad
            v = v / _flat(v).norm(dim=1).clamp_min(1e-300).reshape(n.shape)
        v = v / _flat(v).norm(dim=1).clamp_min(1e-300).reshape(-1, *([1] * (v.dim() - 1)))
    else:
        raise ValueError(f"estimator must be 'power' or 'ascent', got {estimator!r}")
    return v.detach()


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
    xr = x.detach().repeat_interleave(s, dim=0).requires_grad_(True)
    yr = y.repeat_interleave(s)
    jr = js.reshape(-1)
    out = model(xr)
    m = out.gather(1, yr[:, None]).squeeze(1) - out.gather(1, jr[:, None]).squeeze(1)
    (g,) = torch.autograd.grad(m.sum(), xr, create_graph=True)
    return xr, m, g


def cross_margin_terms(model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor, js: Tensor, *,
                       lambda2: float = 0.0, iters: int = 10, estimator: str = "power",
                       step: float = 0.1, create_graph: bool = True,
                       generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Per (sample, class) terms of Eq. 5: gradient norm and ``‖H v̂‖`` of ``f_y − f_j``.

    Each ``x_i`` is replicated ``S`` times (one row per class in ``js``) so one backward pass
    gives every cross-margin gradient; samples must be independent (no batch-norm).

    Args:
        model: logits model. x: ``(B, ...)``. y: ``(B,)``. js: wrong classes ``(B, S)``.
        lambda2: weight of the Hessian term; ``0`` skips all HVPs (Cross-Lipschitz).
        iters, estimator, step: the inner estimator (:func:`estimate_top_direction`).
        create_graph: keep the graph so the result can be differentiated in θ.
        generator: random start vectors of the estimator (default: torch's global RNG).

    Returns:
        dict with ``margin``, ``grad_norm`` and (if ``lambda2 > 0``) ``hess_norm`` = ``‖H v̂‖``,
        each ``(B, S)``; ``v`` the directions ``(B·S, ...)``.
    """
    b, s = js.shape
    xr, m, g = margin_graph(model, x, y, js)
    res = {"margin": m.reshape(b, s), "grad_norm": _norm(g).reshape(b, s)}
    if lambda2 > 0:
        def matvec(v: Tensor) -> Tensor:
            (hv,) = torch.autograd.grad(g, xr, grad_outputs=v, retain_graph=True)
            return hv

        v0 = torch.randn(xr.shape, generator=generator, dtype=xr.dtype).to(xr.device)
        v = estimate_top_direction(matvec, v0, iters, estimator, step)
        (hv,) = torch.autograd.grad(g, xr, grad_outputs=v, create_graph=create_graph)
        res["hess_norm"] = _norm(hv).reshape(b, s)
        res["v"] = v
    if not create_graph:
        res = {k: t.detach() for k, t in res.items()}
    return res


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
        iters: ``T`` estimator steps.
        estimator: ``"power"`` (default) or ``"ascent"`` (literal Alg. 1, erratum E10).
        step: ``o`` of Alg. 1.

    Calling it as ``reg(model, x, y, logits)`` returns ``(value, stats)`` where ``value`` is the
    batch mean over samples of ``λ1 Σ_j (…)`` and ``stats`` holds the mean gradient norm ``G`` and
    Hessian-norm estimate ``K`` of the regularised cross-margins.
    """

    name = "cross_holder"

    def __init__(self, lambda1: float, lambda2: float = 0.5, classes: str | int = 1,
                 iters: int = 10, estimator: str = "power", step: float = 0.1):
        if lambda1 < 0 or lambda2 < 0:
            raise ValueError(f"lambda1 and lambda2 must be >= 0, got {lambda1}, {lambda2}")
        if estimator not in ("power", "ascent"):
            raise ValueError(f"estimator must be 'power' or 'ascent', got {estimator!r}")
        if not (classes == "all" or (isinstance(classes, int) and classes >= 1)):
            raise ValueError(f"classes must be 'all' or a positive int, got {classes!r}")
        if iters < 0:
            raise ValueError(f"iters must be >= 0, got {iters}")
        self.lambda1, self.lambda2 = float(lambda1), float(lambda2)
        self.classes, self.iters, self.estimator, self.step = classes, int(iters), estimator, step
        self.params = {"lambda1": self.lambda1, "lambda2": self.lambda2, "classes": classes,
                       "iters": self.iters, "estimator": estimator, "step": float(step)}

    def terms(self, model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor,
              logits: Tensor | None = None, create_graph: bool = True) -> dict[str, Tensor]:
        """The per (sample, class) terms (see :func:`cross_margin_terms`)."""
        if logits is None:
            with torch.no_grad():
                logits = model(x)
        js = select_classes(logits, y, self.classes)
        return cross_margin_terms(model, x, y, js, lambda2=self.lambda2, iters=self.iters,
                                  estimator=self.estimator, step=self.step,
                                  create_graph=create_graph)

    def __call__(self, model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor,
                 logits: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
        t = self.terms(model, x, y, logits)
        per = t["grad_norm"]
        stats = {"G": float(t["grad_norm"].detach().mean())}
        if "hess_norm" in t:
            per = per + self.lambda2 * t["hess_norm"]
            stats["K"] = float(t["hess_norm"].detach().mean())
        return self.lambda1 * per.sum(dim=1).mean(), stats

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"


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

    def __init__(self, eps: float, steps: int = 7, box: tuple[float, float] | None = (0.0, 1.0)):
        if eps <= 0 or steps < 1:
            raise ValueError(f"need eps > 0 and steps >= 1, got {eps}, {steps}")
        self.eps, self.steps, self.box = float(eps), int(steps), box
        self.params = {"eps": self.eps, "steps": self.steps,
                       "box": None if box is None else [float(box[0]), float(box[1])]}

    def attack(self, model: torch.nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """The L2-PGD adversarial batch (detached)."""
        was = model.training
        model.eval()
        shape = (-1, *([1] * (x.dim() - 1)))
        d = x[0].numel()
        g = torch.randn_like(x)
        r = torch.rand(x.shape[0], device=x.device, dtype=x.dtype) ** (1.0 / d)
        delta = g / _flat(g).norm(dim=1).clamp_min(1e-30).reshape(shape) * (r * self.eps
                                                                             ).reshape(shape)
        step = 2.5 * self.eps / self.steps
        for _ in range(self.steps):
            xa = self._clip(x + delta).requires_grad_(True)
            (gr,) = torch.autograd.grad(F.cross_entropy(model(xa), y), xa)
            delta = (xa.detach() - x) + step * gr / _flat(gr).norm(dim=1).clamp_min(
                1e-30).reshape(shape)
            n = _flat(delta).norm(dim=1).reshape(shape)
            delta = delta * torch.clamp(self.eps / n.clamp_min(1e-30), max=1.0)
        model.train(was)
        return self._clip(x + delta).detach()

    def _clip(self, x: Tensor) -> Tensor:
        return x if self.box is None else x.clamp(self.box[0], self.box[1])

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
        progress: tqdm bar over (loss, ε).

    Returns:
        :class:`RobustCurves`.
    """
    from analysis import attacks

    eps = np.sort(np.asarray(list(eps_list), dtype=np.float64))
    if eps.size == 0 or np.any(eps < 0):
        raise ValueError("eps_list must be non-empty and non-negative")
    with torch.no_grad():
        correct = attacks.predict(model, x) == y
    masks = {}
    it = [(loss, i) for loss in ("ce", "cw") for i in range(len(eps))]
    if env.progress_enabled(progress):
        from tqdm import tqdm

        it = tqdm(it, desc="PGD curves", leave=False)
    alive = {"ce": correct.clone(), "cw": correct.clone()}
    for loss in ("ce", "cw"):
        masks[loss] = np.zeros((len(eps), len(y)), dtype=bool)
    for loss, i in it:
        rows = alive[loss].nonzero().squeeze(1)
        if eps[i] > 0 and rows.numel():
            r = attacks.pgd(model, x[rows], y[rows], float(eps[i]), "l2", steps=steps,
                            restarts=restarts, loss=loss, seed=seed + i, box=box,
                            batch_size=batch_size)
            alive[loss][rows[r.success]] = False
        masks[loss][i] = alive[loss].cpu().numpy()
    ce, cw = masks["ce"].mean(axis=1), masks["cw"].mean(axis=1)
    both = (masks["ce"] & masks["cw"]).mean(axis=1)
    return RobustCurves(eps=eps, ce=ce, cw=cw, min_of_two=np.minimum(ce, cw), per_example=both,
                        alive_ce=masks["ce"], alive_cw=masks["cw"],
                        clean=float(correct.float().mean()))


def time_steps(model: torch.nn.Module, x: Tensor, y: Tensor,
               methods: Mapping[str, Callable | None], repeats: int = 3) -> dict[str, float]:
    """Median seconds of one training step (forward, loss, backward) per method, interleaved.

    Args:
        model: the network (its ``.grad`` fields are overwritten).
        x, y: one batch.
        methods: name → ``None`` (plain cross-entropy), a regulariser ``reg(model, x, y, logits)``
            added to the cross-entropy, or an objective with attribute ``name ==
            "pgd_training"`` called as ``obj(model, x, y)``.
        repeats: rounds; the methods are timed round-robin within each round so that machine
            load affects them alike.

    Returns:
        name → median seconds per step.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    times: dict[str, list[float]] = {k: [] for k in methods}
    model.train()
    for _ in range(repeats):
        for name, m in methods.items():
            t0 = time.perf_counter()
            if m is not None and getattr(m, "name", "") == "pgd_training":
                loss, _ = m(model, x, y)
            else:
                logits = model(x)
                loss = F.cross_entropy(logits, y)
                if m is not None:
                    r = m(model, x, y, logits)
                    loss = loss + (r[0] if isinstance(r, tuple) else r)
            model.zero_grad(set_to_none=True)
            loss.backward()
            times[name].append(time.perf_counter() - t0)
    model.zero_grad(set_to_none=True)
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
