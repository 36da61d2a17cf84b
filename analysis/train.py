"""One training loop for every model of the report: seeded, cached, resumable.

``fit(model_name, model_kwargs, data, cfg)`` trains ``models.build(model_name, **model_kwargs)``
on ``data`` by minibatch cross-entropy (plus an optional regulariser) or by a custom objective,
and returns the model in eval mode with a per-epoch history.

Determinism: the weights are drawn after ``torch.manual_seed(cfg.seed)`` and the minibatches
are shuffled by a ``torch.Generator`` seeded with ``cfg.seed``, so two runs on the CPU with the
same thread count give identical weights. ``fit`` restores the caller's Python, NumPy and torch
random states when it returns (cache hit or not), so what a notebook does next does not depend
on whether the weights came from the cache. The thread count is the caller's
(``env.seed_everything`` fixes it).

Caching: the final weights and history go through :func:`analysis.cache.memo`, keyed by the
model name and arguments, the data fingerprint, the :class:`TrainConfig`, the regulariser's and
objective's ``name`` and ``params``, the device type, and the source code of this module, of the
model's module and of the regulariser's/objective's class. A hit rebuilds the model and loads the
state dict (``weights_only=True``). After every finished epoch a checkpoint (weights, optimiser,
generator states, history, and the ``state_dict()`` of a regulariser or objective that has one,
e.g. the call counter of an η schedule) is stored under the same key plus the epoch, so an
interrupted run resumes from its last finished epoch, exactly where it stopped; the
checkpoints are deleted once the final entry is stored.
"""

from __future__ import annotations

import functools
import inspect
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from analysis import cache, env, models
from analysis.data import Dataset

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("none", "cosine", "step")


class TrainingDiverged(FloatingPointError):
    """A training run whose loss became non-finite (a finding, not a crash: callers that train
    several seeds report it and leave the run out).

    Attributes: model_name, epoch and batch (1-based) where the loss was first non-finite,
    loss (its value)."""

    def __init__(self, model_name: str, epoch: int, batch: int, loss: float):
        super().__init__(f"{model_name}: loss is {loss} in epoch {epoch}, batch {batch};"
                         " lower lr or set clip")
        self.model_name, self.epoch, self.batch, self.loss = model_name, epoch, batch, loss


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run.

    Attributes:
        epochs: passes over the training set (>= 1).
        batch_size: minibatch size.
        lr: initial learning rate.
        optimizer: ``"adam"`` or ``"sgd"`` (with ``momentum``, Nesterov off).
        momentum: SGD momentum.
        weight_decay: L2 weight decay of the optimiser (coupled, as torch's Adam/SGD).
        schedule: ``"none"``; ``"cosine"``: ``lr_e = lr (1 + cos(pi e / epochs)) / 2`` for epoch
            ``e = 0..epochs-1``; ``"step"``: ``lr`` times ``gamma`` after 50 % and again after
            75 % of the epochs.
        clip: max global L2 norm of the gradient (``None`` = no clipping).
        seed: seed of the initial weights and of the shuffling.
        gamma: decay factor of the ``"step"`` schedule.
    """

    epochs: int
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "none"
    clip: float | None = None
    seed: int = 0
    gamma: float = 0.1

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be an int >= 1, got {self.epochs!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {self.batch_size!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.clip is not None and not self.clip > 0:
            raise ValueError(f"clip must be None or > 0, got {self.clip!r}")
        if self.weight_decay < 0 or self.momentum < 0:
            raise ValueError("weight_decay and momentum must be >= 0")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lr_at(self, epoch: int) -> float:
        """Learning rate of epoch ``epoch`` (0-based)."""
        if self.schedule == "cosine":
            return self.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / self.epochs))
        if self.schedule == "step":
            return self.lr * self.gamma ** ((epoch >= self.epochs // 2) + (epoch >= (3 * self.epochs) // 4))
        return self.lr


@dataclass
class TrainResult:
    """Outcome of :func:`fit`.

    Attributes:
        model: the trained model, eval mode, on the requested device.
        history: one dict per epoch: ``epoch`` (1-based), ``loss`` (mean minimised loss),
            ``ce`` (mean cross-entropy of the batches), ``reg`` (mean regulariser value, 0 without
            one), ``train_acc``, ``test_acc`` (clean accuracy in eval mode after the epoch; NaN
            when not evaluated), ``lr``, ``seconds`` (wall time of the epoch in the run that
            trained it) and every key the regulariser or objective logged (epoch means).
        seconds: wall time of the training (of the original run when loaded from the cache).
        from_cache: True when the weights were loaded from the cache.
    """

    model: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    from_cache: bool = False


# ----------------------------------------------------------------------------------------------
# Evaluation helpers
# ----------------------------------------------------------------------------------------------
def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, batch_size: int = 1000) -> Tensor:
    """Logits of ``model`` on ``x`` in batches, without gradients (the caller sets the mode).

    Shape:
        ``x``: ``(N, ...)``; returns ``(N, K)`` on ``x``'s device.
    """
    dev = _model_device(model)
    outs = [model(x[i:i + batch_size].to(dev)).to(x.device) for i in range(0, len(x), batch_size)]
    return torch.cat(outs) if outs else torch.empty(0)


def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1000) -> float:
    """Fraction of ``x`` that ``model`` classifies as ``y`` (in [0, 1])."""
    if len(x) == 0:
        return float("nan")
    pred = predict(model, x, batch_size).argmax(dim=1)
    return (pred == y.to(pred.device)).float().mean().item()


# ----------------------------------------------------------------------------------------------
# Cache keys
# ----------------------------------------------------------------------------------------------
def _describe_callable(fn: Any) -> dict[str, Any] | None:
    """``name`` and ``params`` of a regulariser/objective for the cache key."""
    if fn is None:
        return None
    if isinstance(fn, functools.partial):
        return {"name": getattr(fn.func, "__qualname__", repr(fn.func)),
                "params": {"args": list(fn.args), **fn.keywords}}
    name = getattr(fn, "name", None) or getattr(fn, "__qualname__", None) or type(fn).__qualname__
    params = getattr(fn, "params", {})
    return {"name": str(name), "params": dict(params) if params else {}}


def _code_of(fn: Any) -> list[Any]:
    """Source objects whose code is part of the key: the class of a callable object, the
    function itself, or the function inside a ``functools.partial``."""
    if fn is None:
        return []
    if isinstance(fn, functools.partial):
        return _code_of(fn.func)
    if inspect.isfunction(fn) or inspect.ismethod(fn):
        return [fn]
    return [type(fn)]


def _key(model_name: str, model_kwargs: dict[str, Any], data: Dataset, cfg: TrainConfig,
         regularizer: Any, objective: Any, device: torch.device,
         eval_every_epoch: bool) -> tuple[dict[str, Any], list[Any]]:
    make = models.builder(model_name)
    key = {"model": model_name, "model_kwargs": model_kwargs, "data": data.fingerprint(),
           "cfg": cfg.as_dict(), "regularizer": _describe_callable(regularizer),
           "objective": _describe_callable(objective), "device": device.type,
           "eval_every_epoch": eval_every_epoch}
    code = [sys.modules[__name__], models, make]
    mod = inspect.getmodule(make)
    if mod is not None and mod is not models:
        code.append(mod)
    return key, code + _code_of(regularizer) + _code_of(objective)


def _ckpt_digest(key: dict[str, Any], code: list[Any], epoch: int) -> str:
    return cache.key_hash("train/checkpoint", {**key, "epoch": epoch}, code)


def _hook_state(fn: Any) -> Any:
    """The resumable state of a regulariser/objective (its ``state_dict()``), else ``None``."""
    sd = getattr(fn, "state_dict", None)
    return sd() if callable(sd) else None


def _restore_hook(fn: Any, state: Any) -> None:
    """Give a regulariser/objective back the state saved by :func:`_hook_state`."""
    if state is not None and callable(getattr(fn, "load_state_dict", None)):
        fn.load_state_dict(state)


def _delete(digest: str) -> None:
    paths = cache._paths(digest)
    if paths is not None:
        for p in paths:
            p.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------------
def _as_float(v: Any) -> float:
    return float(v.detach().item()) if isinstance(v, Tensor) else float(v)


def _make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _train(model_name: str, model_kwargs: dict[str, Any], data: Dataset, cfg: TrainConfig,
           regularizer: Callable | None, objective: Callable | None, device: torch.device,
           progress: bool, desc: str | None, eval_every_epoch: bool,
           ckpt: Callable[[int], str] | None) -> dict[str, Any]:
    """Train and return the payload ``{"state_dict", "history", "seconds"}``."""
    torch.manual_seed(cfg.seed)  # the weights; fit restores the caller's streams afterwards
    gen = torch.Generator().manual_seed(cfg.seed)  # the shuffling
    model = models.build(model_name, **model_kwargs).to(device)
    opt = _make_optimizer(model, cfg)
    history: list[dict[str, Any]] = []
    start_epoch, seconds_before = 0, 0.0

    if ckpt is not None:  # resume from the last finished epoch, if any
        for e in range(cfg.epochs - 1, 0, -1):
            hit, state = cache.load(ckpt(e))
            if hit:
                model.load_state_dict(state["model"])
                opt.load_state_dict(state["optimizer"])
                gen.set_state(state["generator"])
                torch.set_rng_state(state["torch_rng"])
                _restore_hook(regularizer, state.get("regularizer"))  # e.g. an η schedule
                _restore_hook(objective, state.get("objective"))
                history = list(state["history"])
                start_epoch, seconds_before = e, float(state["seconds"])
                break

    x_tr, y_tr = data.x_train.to(device), data.y_train.to(device)
    n = len(y_tr)
    steps = math.ceil(n / cfg.batch_size)
    from tqdm import tqdm

    bar = tqdm(total=cfg.epochs * steps, initial=start_epoch * steps, file=sys.stderr,
               desc=desc or f"train {model_name}", disable=not env.progress_enabled(progress),
               leave=False, dynamic_ncols=True)
    t_total = time.perf_counter()
    try:
        for epoch in range(start_epoch, cfg.epochs):
            t0 = time.perf_counter()
            lr = cfg.lr_at(epoch)
            for group in opt.param_groups:
                group["lr"] = lr
            perm = torch.randperm(n, generator=gen).to(device)
            sums: dict[str, float] = {"loss": 0.0, "ce": 0.0, "reg": 0.0}
            for i in range(steps):
                idx = perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]
                xb, yb = x_tr[idx], y_tr[idx]
                model.train()  # again each batch: an objective's attack may switch to eval
                logs: dict[str, Any] = {}
                if objective is not None:
                    loss, logs = objective(model, xb, yb)
                    ce, reg = logs.get("ce", float("nan")), logs.get("reg", 0.0)
                else:
                    logits = model(xb)
                    ce = F.cross_entropy(logits, yb)
                    loss, reg = ce, 0.0
                    if regularizer is not None:
                        out = regularizer(model, xb, yb, logits)
                        reg, logs = out if isinstance(out, tuple) else (out, {})
                        loss = ce + reg
                if not torch.isfinite(loss):
                    raise TrainingDiverged(model_name, epoch + 1, i + 1, loss.item())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
                opt.step()
                w = len(idx) / n
                sums["loss"] += w * _as_float(loss)
                sums["ce"] += w * _as_float(ce)
                sums["reg"] += w * _as_float(reg)
                for k, v in (logs or {}).items():
                    if k not in ("ce", "reg"):
                        sums[k] = sums.get(k, 0.0) + w * _as_float(v)
                bar.update(1)
            last = epoch == cfg.epochs - 1
            model.eval()
            evaluate = eval_every_epoch or last
            train_acc = accuracy(model, x_tr, y_tr) if evaluate else float("nan")
            test_acc = accuracy(model, data.x_test, data.y_test) if evaluate else float("nan")
            seconds = time.perf_counter() - t0
            row = {"epoch": epoch + 1, "loss": sums.pop("loss"), "ce": sums.pop("ce"),
                   "reg": sums.pop("reg"), "train_acc": train_acc, "test_acc": test_acc,
                   "lr": lr, "seconds": seconds, **sums}
            history.append(row)
            bar.set_postfix(loss=f"{row['loss']:.3g}", acc=f"{test_acc:.3f}")
            if ckpt is not None and not last:
                cache.store(ckpt(epoch + 1), {
                    "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                    "optimizer": opt.state_dict(), "generator": gen.get_state(),
                    "torch_rng": torch.get_rng_state(), "history": history,
                    "regularizer": _hook_state(regularizer), "objective": _hook_state(objective),
                    "seconds": seconds_before + time.perf_counter() - t_total})
    finally:
        bar.close()
    return {"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "history": history, "seconds": seconds_before + time.perf_counter() - t_total}


def fit(model_name: str, model_kwargs: dict[str, Any], data: Dataset, cfg: TrainConfig, *,
        regularizer: Callable | None = None, objective: Callable | None = None,
        device: str | torch.device = "cpu", cache: bool = True, progress: bool = True,
        desc: str | None = None, eval_every_epoch: bool = True) -> TrainResult:
    """Train (or load from the cache) ``models.build(model_name, **model_kwargs)`` on ``data``.

    The loss of a batch is ``CE(model(x), y) + regularizer(model, x, y, logits)``, or
    ``objective(model, x, y)[0]`` when an objective is given (e.g. adversarial training).

    Args:
        model_name: a name of :func:`analysis.models.available`.
        model_kwargs: the builder's arguments (JSON-like values: they are part of the key).
        data: the training and test sets.
        cfg: hyper-parameters.
        regularizer: ``(model, x, y, logits) -> Tensor | (Tensor, dict)`` with attributes
            ``name`` and ``params``; the dict's values are logged (epoch means).
        objective: ``(model, x, y) -> (loss, dict)``; replaces CE + regulariser. Keys ``ce`` and
            ``reg`` of its dict fill those columns of the history.
        device: ``"cpu"``, ``"cuda"``, ``"auto"`` or a :class:`torch.device`.
        cache: use the artefact cache (and per-epoch checkpoints).
        progress: show a tqdm bar on stderr (``ANALYSIS_PROGRESS=0`` turns it off everywhere).
        desc: label of the progress bar.
        eval_every_epoch: evaluate train/test accuracy after every epoch (else only the last).

    Returns:
        A :class:`TrainResult` with the model in eval mode on ``device``.
    """
    dev = device if isinstance(device, torch.device) else env.get_device(device)
    model_kwargs = dict(model_kwargs or {})
    key, code = _key(model_name, model_kwargs, data, cfg, regularizer, objective, dev,
                     eval_every_epoch)

    def run(ckpt: Callable[[int], str] | None) -> dict[str, Any]:
        return _train(model_name, model_kwargs, data, cfg, regularizer, objective, dev,
                      progress, desc, eval_every_epoch, ckpt)

    rng = _rng_state()
    from_cache = False
    try:
        payload, from_cache = _payload(run, key, code, model_name, cfg.epochs,
                                       cache and _cache_on())
        model = models.build(model_name, **model_kwargs)
    finally:
        _set_rng_state(rng)  # fit leaves the caller's random streams as they were
    model.load_state_dict(payload["state_dict"])
    model.to(dev).eval()
    return TrainResult(model=model, history=[dict(r) for r in payload["history"]],
                       seconds=float(payload["seconds"]), from_cache=from_cache)


def _payload(run: Callable, key: dict[str, Any], code: list[Any], model_name: str, epochs: int,
             use_cache: bool) -> tuple[dict[str, Any], bool]:
    from_cache = False
    if use_cache:
        digest = cache_mod.key_hash(f"train/{model_name}", key, code)
        from_cache, payload = cache_mod.load(digest)
        if not from_cache:
            def ckpt(e: int) -> str:
                return _ckpt_digest(key, code, e)

            payload = run(ckpt)
            cache_mod.store(digest, payload)
            for e in range(1, epochs):
                _delete(ckpt(e))
    else:
        payload = run(None)
    return payload, from_cache


def _rng_state() -> tuple[Any, ...]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    return random.getstate(), np.random.get_state(), torch.get_rng_state(), cuda


def _set_rng_state(state: tuple[Any, ...]) -> None:
    py, npy, cpu, cuda = state
    random.setstate(py)
    np.random.set_state(npy)
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


cache_mod = cache  # ``fit`` has a parameter named ``cache``


def _cache_on() -> bool:
    return cache_mod.cache_dir() is not None
