"""The Fisher-metric Jacobian regulariser of the document (eq. 15-16).

``α(x, F) = exp(‖J̃ₓ‖_F − δ(x)/(ρ(x) ε))`` (eq. 15), where ``J̃ = ∂t/∂x`` is the Jacobian of
the stereographic chart coordinates of the prediction, ``δ`` the distance to the centre (eq. 6)
and ``ρ = 1 − √θ^pole``. The loss is ``(1 − η) CE + η ᾱ`` (eq. 16) with the geometric schedule
``η_i = η_min (η_max/η_min)^{(i−1)/(N−1)}`` over epochs ``i = 1..N`` (§4.2).

Because :func:`analysis.train.fit` adds the regulariser to the cross-entropy, :class:`FisherJacobian`
returns ``η (ᾱ − CE)``, so that ``CE + η(ᾱ − CE) = (1 − η) CE + η ᾱ`` exactly.

Estimators of ``‖J̃‖_F`` (``estimator``):

* ``"exact"``: the ``m`` rows of ``J̃`` by ``m`` VJPs with ``create_graph`` (double backprop).
* ``"rp"``: Hoffman et al.'s random projection, ``‖J̃‖_F² ≈ m ‖vᵀJ̃‖²``, ``v`` uniform on
  ``S^{m−1}`` (one VJP). Unbiased for ``‖J̃‖_F²``, **biased** for ``α`` after ``exp(√·)``.
* ``"subbatch"``: exact on the first ``subbatch`` samples of the batch (unbiased for ``E[α]``).
* ``"exact_svd"``: the spectral norm ``‖J̃‖₂`` instead of the Frobenius bound, from the same
  ``m`` VJPs (the document's "Lanczos vs Frobenius" to-do; eq. 14 asks for ``‖J̃‖₂``).

Options: ``invariant=True`` uses ``exp(‖J_μ‖_F − δ/ε)`` (chart-free; ``‖J_μ‖_F = ρ‖J̃‖_F``);
``pole`` moves the stereographic pole to another class. Overflow guard (the document is
silent): above ``a0`` the exponential is continued by its tangent, ``e^{a0}(1 + a − a0)``
(C¹); the fraction of samples where it fired is logged as ``guard``.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from analysis.bounds.fisher import delta_center, delta_max, rho_from_logits, stereo_logits

__all__ = ["FisherJacobian", "eta_schedule", "guarded_exp", "fisher_alpha", "per_example", "step_seconds", "step_times",
           "train_full_batch", "split_with_validation", "pct_of_correct"]

ESTIMATORS = ("exact", "rp", "subbatch", "exact_svd")


def eta_schedule(eta_min: float, eta_max: float, epochs: int) -> list[float]:
    """``η_i = η_min (η_max/η_min)^{(i−1)/(N−1)}`` for ``i = 1..N`` (§4.2); constant if N = 1."""
    if not 0 < eta_min <= 1 or not 0 < eta_max <= 1:
        raise ValueError(f"eta_min and eta_max must lie in (0, 1], got {eta_min}, {eta_max}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if epochs == 1:
        return [eta_min]
    return [eta_min * (eta_max / eta_min) ** (i / (epochs - 1)) for i in range(epochs)]


def guarded_exp(a: Tensor, a0: float = 30.0) -> Tensor:
    """``exp(a)`` for ``a ≤ a0``, ``e^{a0}(1 + a − a0)`` above (value and slope continuous)."""
    return torch.where(a <= a0, torch.exp(a.clamp(max=a0)), math.exp(a0) * (1.0 + a - a0))


def _t_map(model, pole: int):
    return lambda z: stereo_logits(model(z), pole)


def fisher_alpha(model, x: Tensor, *, eps: float, estimator: str = "exact", pole: int = -1,
                 invariant: bool = False, a0: float = 30.0, subbatch: int = 8,
                 generator: torch.Generator | None = None, create_graph: bool = True
                 ) -> tuple[Tensor, dict[str, Tensor]]:
    """Per-sample ``α`` of eq. 15 (differentiable in the model's parameters).

    Args:
        model: logits model (samples independent). x: inputs ``(B, *in)``.
        eps: the training radius ``ε`` (L2, input units).
        estimator: ``"exact"``, ``"rp"``, ``"subbatch"`` or ``"exact_svd"`` (module docstring).
        pole: stereographic pole class. invariant: use ``J_μ`` instead of the chart.
        a0: overflow-guard threshold. subbatch: samples used by ``"subbatch"``.
        generator: random directions of ``"rp"``.
        create_graph: keep the graph for training.

    Returns:
        ``(alpha, parts)``: ``alpha`` ``(B',)`` (``B' = min(B, subbatch)`` for ``"subbatch"``),
        ``parts`` with per-sample ``norm`` (the Jacobian norm used), ``delta``, ``rho``,
        ``exponent`` and ``guard`` (bool).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; valid: {list(ESTIMATORS)}")
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    if estimator == "subbatch":
        x = x[:subbatch]
    with torch.enable_grad():  # the input Jacobian is needed even under no_grad
        alpha, parts = _alpha(model, x, eps, estimator, pole, invariant, a0, generator,
                              create_graph)
    if not create_graph:
        alpha = alpha.detach()
        parts = {k: v.detach() for k, v in parts.items()}
    return alpha, parts


def _alpha(model, x, eps, estimator, pole, invariant, a0, generator, create_graph):
    xl = x.detach().clone().requires_grad_(True)
    logits = model(xl)
    t = stereo_logits(logits, pole)  # (B, m)
    b, m = t.shape
    if estimator == "rp":
        v = torch.randn(b, m, generator=generator, dtype=torch.float64).to(t)
        v = v / v.norm(dim=1, keepdim=True)
        (g,) = torch.autograd.grad(t, xl, grad_outputs=v, create_graph=create_graph)
        norm = (m * g.reshape(b, -1).pow(2).sum(1)).clamp_min(1e-30).sqrt()
    else:
        rows = []
        for k in range(m):
            (g,) = torch.autograd.grad(t[:, k].sum(), xl, retain_graph=True,
                                       create_graph=create_graph)
            rows.append(g.reshape(b, -1))
        jt = torch.stack(rows, 1)  # (B, m, n)
        if estimator == "exact_svd":
            norm = torch.linalg.svdvals(jt)[:, 0]
        else:
            norm = jt.pow(2).sum((1, 2)).clamp_min(1e-30).sqrt()
    theta = F.softmax(logits, -1)
    delta = delta_center(theta)
    rho = rho_from_logits(logits, pole)
    if invariant:
        expo = rho * norm - delta / eps
    else:
        expo = norm - delta / (rho * eps)
    alpha = guarded_exp(expo, a0)
    return alpha, {"norm": norm, "delta": delta, "rho": rho, "exponent": expo,
                   "guard": expo > a0, "logits": logits}


class FisherJacobian:
    """Regulariser of eq. 16 for :func:`analysis.train.fit` (returns ``η(ᾱ − CE)``).

    Args:
        eta_min, eta_max: the η schedule over ``epochs`` (equal values = fixed η).
        epochs: number of training epochs ``N`` of the schedule.
        delta_over_eps: the document's ``δ_m/ε`` (``δ_m = 2 arccos K^{-1/2}``); sets ``ε``.
        eps_train: the training radius ``ε`` directly (overrides ``delta_over_eps``).
        num_classes: ``K`` (needed for ``δ_m``).
        estimator: see module docstring. subbatch: samples per step for ``"subbatch"``.
        pole: stereographic pole class (default the last one, as the document).
        invariant: chart-free ``α = exp(‖J_μ‖_F − δ/ε)``.
        a0: overflow-guard threshold. seed: random directions of ``"rp"``.
        steps_per_epoch: used to advance the epoch (and η) when the trainer does not call
            :meth:`set_epoch`; ``None`` = the epoch only changes through :meth:`set_epoch`.

    The epoch counter follows :meth:`set_epoch` (0-based) if the trainer calls it; otherwise it
    is derived from the number of training calls and ``steps_per_epoch``.
    """

    name = "fisher_jacobian"

    def __init__(self, *, eta_min: float = 0.002, eta_max: float = 0.006, epochs: int = 30,
                 delta_over_eps: float | None = 1e-3, eps_train: float | None = None,
                 num_classes: int = 10, estimator: str = "rp", subbatch: int = 8,
                 pole: int = -1, invariant: bool = False, a0: float = 30.0, seed: int = 0,
                 steps_per_epoch: int | None = None):
        if estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {estimator!r}; valid: {list(ESTIMATORS)}")
        if eps_train is None:
            if delta_over_eps is None or delta_over_eps <= 0:
                raise ValueError("give eps_train > 0 or delta_over_eps > 0")
            eps_train = delta_max(num_classes) / delta_over_eps
        if eps_train <= 0:
            raise ValueError(f"eps_train must be > 0, got {eps_train}")
        if subbatch < 1:
            raise ValueError(f"subbatch must be >= 1, got {subbatch}")
        self.etas = eta_schedule(eta_min, eta_max, epochs)
        self.eps = float(eps_train)
        self.estimator = estimator
        self.subbatch = subbatch
        self.pole = pole
        self.invariant = invariant
        self.a0 = a0
        self.steps_per_epoch = steps_per_epoch
        self.params = {"eta_min": eta_min, "eta_max": eta_max, "epochs": epochs,
                       "eps_train": self.eps, "num_classes": num_classes,
                       "estimator": estimator, "subbatch": subbatch, "pole": pole,
                       "invariant": invariant, "a0": a0, "seed": seed,
                       "steps_per_epoch": steps_per_epoch}
        self._gen = torch.Generator().manual_seed(seed)
        self._calls = 0
        self._epoch: int | None = None

    def set_epoch(self, epoch: int) -> None:
        """Tell the regulariser the current (0-based) epoch."""
        self._epoch = int(epoch)

    def state_dict(self) -> dict:
        """The state a resumed training run needs: the call counter (hence η), the epoch set
        by :meth:`set_epoch` (``-1`` = none) and the ``"rp"`` generator's state.

        :func:`analysis.train.fit` stores it with every epoch checkpoint and gives it back
        through :meth:`load_state_dict` on resume, so an interrupted run continues with the η
        and the random directions of an uninterrupted one.
        """
        return {"calls": self._calls, "epoch": -1 if self._epoch is None else self._epoch,
                "generator": self._gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        self._calls = int(state["calls"])
        self._epoch = None if int(state["epoch"]) < 0 else int(state["epoch"])
        self._gen.set_state(state["generator"])

    @property
    def epoch(self) -> int:
        if self._epoch is not None:
            return self._epoch
        if self.steps_per_epoch:
            return self._calls // self.steps_per_epoch
        return 0

    @property
    def eta(self) -> float:
        return self.etas[min(self.epoch, len(self.etas) - 1)]

    def alpha(self, model, x: Tensor, create_graph: bool = True):
        """Per-sample ``α`` and its parts (see :func:`fisher_alpha`)."""
        return fisher_alpha(model, x, eps=self.eps, estimator=self.estimator, pole=self.pole,
                            invariant=self.invariant, a0=self.a0, subbatch=self.subbatch,
                            generator=self._gen, create_graph=create_graph)

    def __call__(self, model, x: Tensor, y: Tensor, logits: Tensor):
        eta = self.eta
        if model.training:
            self._calls += 1
        alpha, parts = self.alpha(model, x, create_graph=torch.is_grad_enabled())
        ce = F.cross_entropy(logits, y)
        a_mean = alpha.mean()
        reg = eta * (a_mean - ce)
        stats = {"alpha": float(a_mean.detach()), "eta": eta, "ce": float(ce.detach()),
                 "jac_norm": float(parts["norm"].detach().mean()),
                 "guard": float(parts["guard"].double().mean())}
        return reg, stats


def per_example(model, x: Tensor, eps: float, *, pole: int = -1, a0: float = 30.0,
                batch_size: int = 100) -> dict[str, Tensor]:
    """Per-example quantities of the chapter at ``x`` (exact Jacobians, no graph).

    Returns:
        float64 ``(N,)`` tensors ``spec_mu`` (‖J_μ‖₂), ``fro_mu``, ``spec_t`` (‖J̃‖₂), ``fro_t``
        (‖J̃‖_F), ``spec_s`` (‖J_s‖₂), ``delta`` (eq. 6), ``d_B`` (exact), ``rho``, ``alpha``
        (eq. 15, guarded) and ``pred`` (int64).
    """
    from analysis.bounds.fisher import fisher_jacobians

    keys = ("spec_mu", "fro_mu", "spec_t", "fro_t", "spec_s", "delta", "d_B", "rho")
    out: dict[str, list[Tensor]] = {k: [] for k in (*keys, "pred")}
    for xb in x.split(batch_size):
        j = fisher_jacobians(model, xb, pole)
        for k in keys:
            out[k].append(j[k].detach().double().cpu())
        out["pred"].append(j.logits.argmax(1).cpu())
    res = {k: torch.cat(v) for k, v in out.items()}
    res["alpha"] = guarded_exp(res["fro_t"] - res["delta"] / (res["rho"] * eps), a0)
    return res


def split_with_validation(pool, n_train: int, n_test: int, n_val: int, seed: int = 0
                          ) -> tuple:
    """The chapter's data: ``pool.subset(n_train, n_test, seed)`` plus a validation split.

    The validation images are ``n_val`` training images of ``pool`` (stratified, seeded) that
    are *not* in the training subset, so a hyper-parameter (the Hoffman λ) can be chosen
    without looking at the test images that are attacked afterwards.

    Args:
        pool: a :class:`analysis.data.Dataset`.
        n_train, n_test: sizes of the training and test subsets (as :meth:`Dataset.subset`).
        n_val: validation images, ``n_train + n_val <= len(pool.y_train)``.
        seed: seed of both selections.

    Returns:
        ``(ds, x_val, y_val)``: the subset (identical to ``pool.subset(...)``) and the
        validation inputs ``(n_val, *in)`` and labels ``(n_val,)``.

    Raises:
        ValueError: when the training pool is too small for ``n_train + n_val`` images.
    """
    from analysis.data import stratified_split

    n_pool = len(pool.y_train)
    if n_val < 1 or n_train + n_val > n_pool:
        raise ValueError(f"need 1 <= n_val and n_train + n_val <= {n_pool} training images, "
                         f"got n_train={n_train}, n_val={n_val}")
    ds = pool.subset(n_train=n_train, n_test=n_test, seed=seed)
    idx, rest = stratified_split(pool.y_train.numpy(), n_train, seed=seed)
    if not torch.equal(ds.x_train, pool.x_train[torch.from_numpy(idx)]):
        raise RuntimeError("Dataset.subset no longer selects the training images with "
                           "stratified_split(y, n_train, seed); the validation split would "
                           "overlap them")
    vi, _ = stratified_split(pool.y_train[torch.from_numpy(rest)].numpy(), n_val, seed=seed + 2)
    val = torch.from_numpy(rest[vi])
    return ds, pool.x_train[val].clone(), pool.y_train[val].clone()


def pct_of_correct(robust_acc: float, correct: Tensor) -> float:
    """Robust images as a percentage of the correctly classified ones (Table 1's unit).

    Both counts are over the images actually attacked, whose number is ``len(correct)`` (not
    the requested ``n_attack``, which may exceed the test set).

    Args:
        robust_acc: robust accuracy over the attacked images, in ``[0, 1]``.
        correct: bool mask ``(n_attacked,)`` of the clean-correct attacked images.

    Returns:
        ``100 · n_robust / n_correct`` (NaN when no image is correct).

    Raises:
        ValueError: when ``robust_acc · n_attacked`` is not a whole count no larger than the
            number of correct images (the accuracy was taken over another set).
    """
    n_att, n_ok = int(correct.numel()), int(correct.sum())
    k = float(robust_acc) * n_att
    if abs(k - round(k)) > 1e-6 * max(1, n_att) or round(k) > n_ok or k < -1e-9:
        raise ValueError(f"robust accuracy {robust_acc} is not a count of the {n_att} attacked "
                         f"images with at most {n_ok} correct ones")
    return 100.0 * round(k) / n_ok if n_ok else float("nan")


def step_seconds(build, x: Tensor, y: Tensor, regularizers: dict, *, batch_size: int = 32,
                 batches: int = 3, repeats: int = 3, lr: float = 0.01) -> dict[str, float]:
    """Median over repeats of :func:`step_times` (seconds per SGD step, per method).

    Args:
        build: zero-argument model constructor.
        x, y: training data (at least ``batch_size * (batches + 1)`` samples).
        regularizers: name -> regulariser (``None`` = plain cross-entropy).

    Returns:
        name -> median seconds per step.
    """
    times = step_times(build, x, y, regularizers, batch_size=batch_size, batches=batches,
                       repeats=repeats, lr=lr)
    return {k: float(np.median(v)) for k, v in times.items()}


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def step_times(build, x: Tensor, y: Tensor, regularizers: dict, *,
               batch_size: int, batches: int, repeats: int, lr: float = 0.01
               ) -> dict:
    """Per-repeat median wall time (seconds) of one SGD step (forward, regulariser, backward,
    update) for each method; methods interleaved within each repeat, a fresh model each time,
    the first step of each untimed (warm-up).

    Args:
        build: zero-argument model constructor (the model's device is used).
        x, y: training data, at least ``batch_size * (batches + 1)`` samples.
        regularizers: name -> regulariser (``None`` = plain cross-entropy).
        batch_size, batches, repeats: timing design.

    Returns:
        name -> array ``(repeats,)`` of median seconds per step.
    """
    out = {k: np.empty(repeats) for k in regularizers}
    for r in range(repeats):
        for name, reg in regularizers.items():
            model = build().train()
            dev = next(model.parameters()).device
            opt = torch.optim.SGD(model.parameters(), lr=lr)
            times = []
            for i in range(batches + 1):
                xb = x[i * batch_size:(i + 1) * batch_size].to(dev)
                yb = y[i * batch_size:(i + 1) * batch_size].to(dev)
                _sync(dev)
                t0 = time.perf_counter()
                logits = model(xb)
                loss = F.cross_entropy(logits, yb)
                if reg is not None:
                    o = reg(model, xb, yb, logits)
                    loss = loss + (o[0] if isinstance(o, tuple) else o)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                _sync(dev)
                if i > 0:
                    times.append(time.perf_counter() - t0)
            out[name][r] = float(np.median(times))
    return out


def train_full_batch(model_name: str, model_kwargs: dict, x: Tensor, y: Tensor, *, steps: int,
                     lr: float = 1e-2, regularizer=None, seed: int = 0, log_every: int = 1,
                     dtype: torch.dtype = torch.float64) -> dict:
    """Full-batch Adam on a small (toy) data set, cached with :func:`analysis.cache.memo`.

    :func:`analysis.train.fit` stores a resumable checkpoint after every epoch, which dominates
    the cost when one epoch is one full-batch step; this loop stores only the result.

    Args:
        model_name, model_kwargs: see :func:`analysis.models.build`.
        x, y: training data. steps: Adam steps. lr: learning rate.
        regularizer: added to the cross-entropy as in :func:`analysis.train.fit`.
        seed: initialisation seed. log_every: history row every this many steps.
        dtype: model and data precision (float64 by default: the chart divides by ``ρ``).

    Returns:
        ``{"model": nn.Module (eval mode), "history": [{"epoch", "loss", "ce", "reg", ...}],
        "seconds": float}`` (``epoch`` = step number).
    """
    import time

    from analysis import cache, models

    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")

    x = x.to(dtype)

    def run() -> dict:
        model = models.build(model_name, seed=seed, **model_kwargs).to(dtype)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        hist = []
        t0 = time.perf_counter()
        for s in range(steps):
            model.train()
            logits = model(x)
            ce = F.cross_entropy(logits, y)
            loss, logs = ce, {}
            if regularizer is not None:
                out = regularizer(model, x, y, logits)
                reg, logs = out if isinstance(out, tuple) else (out, {})
                loss = ce + reg
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if s % log_every == 0 or s == steps - 1:
                hist.append({"epoch": s + 1, "loss": float(loss.detach()), "ce": float(ce.detach()),
                             **{k: float(v) for k, v in logs.items() if k != "ce"}})
        return {"state_dict": {k: v.detach() for k, v in model.state_dict().items()},
                "history": hist, "seconds": time.perf_counter() - t0}

    key = {"model": model_name, "kw": model_kwargs, "x": x, "y": y, "steps": steps, "lr": lr,
           "seed": seed, "log_every": log_every, "dtype": str(dtype),
           "reg": None if regularizer is None else {"name": regularizer.name,
                                                    "params": regularizer.params}}
    import analysis.bounds.fisher as fbm

    code = [train_full_batch, fbm] + ([] if regularizer is None else [type(regularizer)])
    out = cache.memo("ch02/train_full_batch", key, run, code=code)
    model = models.build(model_name, seed=seed, **model_kwargs).to(dtype)
    model.load_state_dict(out["state_dict"])
    return {"model": model.eval(), "history": out["history"], "seconds": out["seconds"]}
