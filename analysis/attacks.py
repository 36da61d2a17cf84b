"""Adversarial attacks: FGSM, BIM, PGD, MI-FGSM, R+FGSM, DeepFool, C&W-L2, Szegedy's L-BFGS,
fast-gradient line searches and a minimal-norm search over several of them.

Conventions shared by every attack:

* ``attack(model, x, y, ...) -> AttackResult``. ``model`` maps a batch shaped like the data to
  logits ``(B, K)``. During the attack it is put in eval mode and its parameters are frozen
  (``requires_grad=False``); both are restored afterwards, and no parameter ``.grad`` is
  touched: only the input is differentiated.
* ``box=(0.0, 1.0)`` (default, pixels) clips every iterate and the output to the box;
  ``box=None`` means unbounded inputs (standardised tabular data). The bounds may also be
  tensors broadcastable to one sample (per-feature bounds).
* The output is **re-checked**: ``success = argmax(model(x_adv)) != y``, evaluated on the
  returned (clipped) ``x_adv``. Samples that are already misclassified are returned unchanged
  with ``success=True`` and a zero perturbation (distance 0); they are not attacked.
* ``x`` is cast to the dtype and device of the model's parameters (so a float64 model gets
  float64 inputs); ``y`` holds integer labels ``(B,)``.
* Norms are L2 unless named; ``norms_l2`` and ``norms_linf`` are float64 per sample.
* Random starts draw from a ``torch.Generator`` seeded with ``seed``: results are deterministic
  for a given seed, batch size and thread count.
* ``batch_size`` splits the (correctly classified) samples into chunks; ``None`` = one chunk.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "AttackResult",
    "check_result",
    "MinNormResult",
    "fgsm",
    "bim",
    "pgd",
    "mifgsm",
    "rfgsm",
    "fgm_bisection",
    "deepfool",
    "cw_l2",
    "lbfgs",
    "refine",
    "min_norm",
    "robust_accuracy",
    "robust_outcomes",
    "predict",
    "margin",
]

Box = tuple[float | Tensor, float | Tensor] | None


# --------------------------------------------------------------------------- results


@dataclass
class AttackResult:
    """Output of one attack.

    Attributes:
        x_adv: adversarial (or unchanged) inputs, shaped like ``x``, inside the box.
        delta: ``x_adv - x``.
        success: bool ``(B,)``: ``argmax(model(x_adv)) != y``, re-evaluated.
        norms_l2: float64 ``(B,)`` L2 norms of ``delta``.
        norms_linf: float64 ``(B,)`` Linf norms of ``delta``.
        name: the attack and its main setting, e.g. ``"pgd_linf(eps=0.1)"``.
        info: per-sample extras (e.g. ``"target"`` of L-BFGS, ``"c"`` of C&W).
    """

    x_adv: Tensor
    delta: Tensor
    success: Tensor
    norms_l2: Tensor
    norms_linf: Tensor
    name: str
    info: dict[str, Any] = field(default_factory=dict)

    def distance(self, norm: str = "l2") -> Tensor:
        """Per-sample distance of a successful attack, ``inf`` where it failed (float64 ``(B,)``)."""
        n = self.norms_l2 if norm == "l2" else self.norms_linf
        return torch.where(self.success, n, torch.full_like(n, math.inf))

    def __len__(self) -> int:
        return int(self.success.shape[0])


def check_result(model: Any, x: Tensor, y: Tensor, result: AttackResult, eps: float,
                 norm: str = "linf", box: Box = (0.0, 1.0), tol: float = 1e-6) -> None:
    """Assert the invariants of an attack's actual output (raises ``AssertionError``).

    ``x_adv`` lies in the ``eps``-ball around ``x`` (``norm``) and in ``box``, ``delta`` is
    ``x_adv − x``, and ``success`` equals a fresh ``argmax(model(x_adv)) != y``.
    """
    norm = _check_norm(norm)
    d = result.x_adv - x.to(result.x_adv)
    size = _l2(d) if norm == "l2" else _flat(d).abs().amax(1)
    assert float(size.max()) <= eps + tol, f"perturbation {float(size.max())} > eps {eps}"
    assert torch.allclose(result.delta, d, atol=tol), "delta is not x_adv − x"
    if box is not None:
        assert float(result.x_adv.min()) >= box[0] - tol and float(result.x_adv.max()) <= box[1] + tol, \
            "x_adv leaves the box"
    with torch.no_grad(), _attack_mode(model):
        fresh = predict(model, result.x_adv) != y.to(result.success.device)
    assert torch.equal(fresh.cpu(), result.success.cpu()), "success flags do not match a re-check"


@dataclass
class MinNormResult:
    """Smallest L2 perturbation found per sample among several attacks.

    Attributes:
        distance: float64 ``(B,)`` L2 distance of the closest adversarial example found;
            ``0`` for samples misclassified already; ``inf`` where no attack succeeded.
        x_adv: the corresponding inputs (``x`` where no attack succeeded).
        by: per sample, the attack that found it (``"clean"`` = already misclassified,
            ``"none"`` = no success).
        per_attack: float64 ``(B,)`` distances of each attack (after refinement), ``inf`` = fail.
            ``"pgd_l2"`` searches only below the best radius of the attacks run before it, so
            its entry is ``inf`` where it did not improve on them; run it alone for its own
            distances.
    """

    distance: Tensor
    x_adv: Tensor
    by: list[str]
    per_attack: dict[str, Tensor] = field(default_factory=dict)

    @property
    def success(self) -> Tensor:
        """Bool ``(B,)``: some attack found an adversarial example (or x was misclassified)."""
        return torch.isfinite(self.distance)


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _attack_mode(model: Any) -> Iterator[None]:
    """Eval mode and frozen parameters for the duration of an attack; restored afterwards."""
    if not isinstance(model, torch.nn.Module):
        yield
        return
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in flags:
            p.requires_grad_(f)
        model.train(was_training)


def _model_dtype_device(model: Any, x: Tensor) -> tuple[torch.dtype, torch.device]:
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            if p.is_floating_point():
                return p.dtype, p.device
    return x.dtype, x.device


def _prep(model: Any, x: Tensor, y: Tensor, box: Box) -> tuple[Tensor, Tensor]:
    dtype, device = _model_dtype_device(model, x)
    x = torch.as_tensor(x).detach().to(device=device, dtype=dtype)
    y = torch.as_tensor(y).detach().to(device=device, dtype=torch.long).reshape(-1)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} samples, y has {y.shape[0]}")
    if box is not None and x.numel():
        lo, hi = _box_tensors(box, x)
        tol = 1e-6
        if bool((x < lo - tol).any()) or bool((x > hi + tol).any()):
            raise ValueError(f"x lies outside box={box!r} (range [{float(x.min()):.3g}, "
                             f"{float(x.max()):.3g}]); pass box=None for unbounded "
                             "(e.g. standardised tabular) data")
    return x, y


def _box_tensors(box: Box, x: Tensor) -> tuple[Tensor, Tensor]:
    lo, hi = box  # type: ignore[misc]
    lo = torch.as_tensor(lo, dtype=x.dtype, device=x.device)
    hi = torch.as_tensor(hi, dtype=x.dtype, device=x.device)
    return lo, hi


def _clip(x: Tensor, box: Box) -> Tensor:
    if box is None:
        return x
    lo, hi = _box_tensors(box, x)
    return torch.maximum(torch.minimum(x, hi), lo)


def _flat(t: Tensor) -> Tensor:
    return t.reshape(t.shape[0], -1)


def _bview(s: Tensor, like: Tensor) -> Tensor:
    return s.reshape(-1, *([1] * (like.dim() - 1)))


def _l2(t: Tensor) -> Tensor:
    return _flat(t).norm(dim=1)


def predict(model: Any, x: Tensor, batch_size: int | None = None) -> Tensor:
    """Predicted labels ``argmax model(x)`` without gradients, in chunks. Shape ``(B,)``."""
    bs = batch_size or 4096
    with torch.no_grad():
        if x.shape[0] == 0:
            return torch.zeros(0, dtype=torch.long, device=x.device)
        return torch.cat([model(x[i:i + bs]).argmax(dim=1) for i in range(0, x.shape[0], bs)])


def margin(logits: Tensor, y: Tensor) -> Tensor:
    """Untargeted margin ``max_{k≠y} z_k − z_y`` per sample (> 0 ⇔ misclassified). ``(B,)``."""
    zy = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), -math.inf).amax(dim=1)
    return other - zy


def _loss(logits: Tensor, y: Tensor, kind: str) -> Tensor:
    """Per-sample loss to *maximise*."""
    if kind == "ce":
        return F.cross_entropy(logits, y, reduction="none")
    if kind == "cw":
        return margin(logits, y)
    raise ValueError(f"loss must be 'ce' or 'cw', got {kind!r}")


def _per_sample(v: float | Tensor, n: int, like: Tensor) -> Tensor:
    t = torch.as_tensor(v, device=like.device)
    t = (t.long() if not t.is_floating_point() else t.to(like.dtype)).reshape(-1)
    if t.numel() == 1:
        return t.expand(n).clone()
    if t.numel() != n:
        raise ValueError(f"per-sample parameter has {t.numel()} values for {n} samples")
    return t.clone()


def _finish(model: Any, x: Tensor, y: Tensor, x_adv: Tensor, name: str, box: Box,
            correct: Tensor, batch_size: int | None, info: dict | None = None) -> AttackResult:
    x_adv = _clip(x_adv.detach(), box)
    x_adv = torch.where(_bview(correct, x), x_adv, x)
    success = predict(model, x_adv, batch_size) != y
    delta = x_adv - x
    d = _flat(delta).double()
    return AttackResult(x_adv=x_adv, delta=delta, success=success, norms_l2=d.norm(dim=1),
                        norms_linf=d.abs().amax(dim=1) if d.shape[1] else d.sum(dim=1),
                        name=name, info=info or {})


def _run(core: Callable[..., Any], model: Any, x: Tensor, y: Tensor, *, name: str, box: Box,
         batch_size: int | None, per_sample: dict[str, Any] | None = None,
         seed: int | None = None, attack_all: bool = False, **kw: Any) -> AttackResult:
    """Shared driver: prepare, freeze, attack the correctly classified samples in chunks,
    scatter back, clip, re-check."""
    x, y = _prep(model, x, y, box)
    n = x.shape[0]
    with _attack_mode(model):
        correct = predict(model, x, batch_size) == y
        if attack_all:
            correct = torch.ones_like(correct)
        idx = correct.nonzero().squeeze(1)
        ps = {k: _per_sample(v, n, x) for k, v in (per_sample or {}).items()}
        gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        x_adv = x.clone()
        info: dict[str, Tensor] = {}
        bs = batch_size or max(1, len(idx))
        for s in range(0, len(idx), bs):
            ch = idx[s:s + bs]
            out = core(model, x[ch], y[ch], box=box, gen=gen,
                       **{k: v[ch] for k, v in ps.items()}, **kw)
            extra: dict[str, Tensor] = {}
            if isinstance(out, tuple):
                out, extra = out
            x_adv[ch] = out.detach().to(x.dtype)
            for k, v in extra.items():
                if k not in info:
                    fill = math.nan if v.is_floating_point() else -1
                    info[k] = torch.full((n,), fill, dtype=v.dtype, device=v.device)
                info[k][ch.to(v.device)] = v
        res = _finish(model, x, y, x_adv, name, box, correct, batch_size, info)
        if "target" in ps and "target" not in info:
            tgt = ps["target"]
            res.info["target"] = tgt
            res.info["target_hit"] = predict(model, res.x_adv, batch_size) == tgt
        return res


def _check_target(target: Any, y: Tensor) -> None:
    if target is None:
        return
    t = torch.as_tensor(target).reshape(-1).to(torch.as_tensor(y).device)
    yy = torch.as_tensor(y).reshape(-1)
    if t.numel() not in (1, yy.numel()):
        raise ValueError(f"target has {t.numel()} entries for {yy.numel()} samples")
    if bool((t == yy).any()):
        raise ValueError("a target equals the true label; targets must differ from y")


# --------------------------------------------------------------------------- gradient attacks


def _random_init(x: Tensor, eps: Tensor, norm: str, gen: torch.Generator | None) -> Tensor:
    shape = x.shape
    if norm == "linf":
        u = torch.rand(shape, generator=gen, dtype=x.dtype).to(x.device)
        return (2 * u - 1) * _bview(eps, x)
    g = torch.randn(shape, generator=gen, dtype=x.dtype).to(x.device)
    g = g / _bview(_l2(g).clamp_min(1e-30), g)
    d = x[0].numel()
    r = torch.rand(shape[0], generator=gen, dtype=x.dtype).to(x.device) ** (1.0 / d)
    return g * _bview(r * eps, g)


def _project(delta: Tensor, eps: Tensor, norm: str) -> Tensor:
    e = _bview(eps, delta)
    if norm == "linf":
        return torch.maximum(torch.minimum(delta, e), -e)
    n = _bview(_l2(delta), delta)
    return delta * torch.where(n > e, e / n.clamp_min(1e-30), torch.ones_like(n))


def _score(logits: Tensor, y: Tensor, target: Tensor | None) -> tuple[Tensor, Tensor]:
    """(margin toward the goal, goal reached) per sample; margin > 0 ⇒ reached."""
    if target is None:
        return margin(logits, y), logits.argmax(dim=1) != y
    return -margin(logits, target), logits.argmax(dim=1) == target


def _objective(logits: Tensor, y: Tensor, target: Tensor | None, kind: str) -> Tensor:
    """Per-sample objective to *maximise* (untargeted: loss of y; targeted: −loss of target)."""
    if target is None:
        return _loss(logits, y, kind)
    return -_loss(logits, target, kind)


def _pgd_core(model: Any, x: Tensor, y: Tensor, *, eps: Tensor, step_size: Tensor, norm: str,
              steps: int, restarts: int, random_start: bool, loss: str, box: Box,
              gen: torch.Generator | None, keep: str = "best", momentum: float | None = None,
              target: Tensor | None = None, rand_step: Tensor | None = None) -> Tensor:
    """Iterated gradient ascent inside the ``eps`` ball (per-sample eps) with optional momentum
    (MI-FGSM), a random-sign first step (R+FGSM) and three ways to pick the output:
    ``keep="best"`` (goal reached first, then largest margin, over iterates and restarts),
    ``"last"`` (the final iterate) or ``"first"`` (the first iterate that reaches the goal; a
    sample stops moving once it does)."""
    n = x.shape[0]
    best = x.clone()
    best_succ = torch.zeros(n, dtype=torch.bool, device=x.device)
    best_score = torch.full((n,), -math.inf, dtype=x.dtype, device=x.device)

    def consider(rows: Tensor, xa: Tensor, logits: Tensor) -> None:
        sc, su = _score(logits.detach(), y[rows], None if target is None else target[rows])
        if keep == "first":
            better = ~best_succ[rows]
        else:
            better = (su & ~best_succ[rows]) | ((su == best_succ[rows]) & (sc > best_score[rows]))
        r = rows[better]
        best[r] = xa.detach()[better]
        best_succ[r] = su[better]
        best_score[r] = sc[better]

    for r in range(max(1, restarts)):
        rows = torch.arange(n, device=x.device) if r == 0 else (~best_succ).nonzero().squeeze(1)
        if rows.numel() == 0:
            break
        xs, ys, es, ss = x[rows], y[rows], eps[rows], step_size[rows]
        ts = None if target is None else target[rows]
        if rand_step is not None:  # R+FGSM: x + α·sign(N(0, I))
            g0 = torch.randn(xs.shape, generator=gen, dtype=xs.dtype).to(xs.device)
            delta = _bview(rand_step[rows], xs) * g0.sign()
        elif random_start:
            delta = _random_init(xs, es, norm, gen)
        else:
            delta = torch.zeros_like(xs)
        delta = _clip(xs + delta, box) - xs
        mom = torch.zeros_like(xs)
        for _ in range(steps):
            xa = (xs + delta).requires_grad_(True)
            logits = model(xa)
            if keep != "last":
                consider(rows, xa, logits)
                if keep == "first" and bool(best_succ[rows].all()):
                    break
            (g,) = torch.autograd.grad(_objective(logits, ys, ts, loss).sum(), xa)
            if momentum is not None:
                g = g / _bview(_flat(g).abs().mean(dim=1).clamp_min(1e-30), g)
                mom = momentum * mom + g
                g = mom
            if norm == "linf":
                new = delta + _bview(ss, g) * g.sign()
            else:
                new = delta + _bview(ss, g) * g / _bview(_l2(g).clamp_min(1e-30), g)
            new = _project(new.detach(), es, norm)
            new = _clip(xs + new, box) - xs
            if keep == "first":  # samples that reached the goal stay where they first did
                new = torch.where(_bview(best_succ[rows], new), delta, new)
            delta = new
        xa = xs + delta
        if keep == "last":
            best[rows] = xa
            with torch.no_grad():
                best_succ[rows] = _score(model(xa), ys, ts)[1]
        else:
            with torch.no_grad():
                consider(rows, xa, model(xa))
    return best


def _check_norm(norm: str) -> str:
    norm = norm.lower()
    if norm not in ("linf", "l2"):
        raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")
    return norm


def _fmt(v: Any) -> str:
    if isinstance(v, Tensor):
        return "per-sample" if v.numel() > 1 else f"{float(v):.4g}"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _target_tag(target: Any) -> str:
    return "" if target is None else ",targeted"


def fgsm(model: Any, x: Tensor, y: Tensor, eps: float | Tensor, norm: str = "linf", *,
         loss: str = "ce", target: int | Tensor | None = None, attack_all: bool = False,
         box: Box = (0.0, 1.0), batch_size: int | None = None) -> AttackResult:
    """Fast gradient (sign) method, Goodfellow et al. 2015: ``x + ε·sign(∇_x L)`` (Linf) or
    ``x + ε·∇_x L / ||∇_x L||₂`` (L2, the fast gradient method). One step, then box-clipped.
    Targeted (``target`` given): ``x − ε·sign(∇_x L(x, target))``.

    Args:
        model: logits model. x: inputs ``(B, ...)``. y: labels ``(B,)``.
        eps: budget (scalar or per-sample ``(B,)``), in input units.
        norm: ``"linf"`` or ``"l2"``.
        loss: ``"ce"`` (cross-entropy) or ``"cw"`` (margin ``max_{k≠y} z_k − z_y``).
        target: target class (int or per-sample ``(B,)``); ``None`` = untargeted.
        box: input bounds or ``None``. batch_size: chunk size.

    Returns:
        :class:`AttackResult` (the stepped point, successful or not). Targeted attacks add
        ``info["target"]`` and ``info["target_hit"]``; ``success`` stays untargeted.
    """
    norm = _check_norm(norm)
    _check_target(target, y)
    ps = {"eps": eps, "step_size": eps}
    if target is not None:
        ps["target"] = target
    return _run(_pgd_core, model, x, y, name=f"fgsm_{norm}(eps={_fmt(eps)}{_target_tag(target)})",
                box=box, attack_all=attack_all,
                batch_size=batch_size, per_sample=ps, norm=norm, steps=1, restarts=1,
                random_start=False, loss=loss, keep="last")


def bim(model: Any, x: Tensor, y: Tensor, eps: float | Tensor, steps: int = 10,
        step_size: float | Tensor | None = None, *, norm: str = "linf", loss: str = "ce",
        keep: str = "best", target: int | Tensor | None = None, attack_all: bool = False,
        box: Box = (0.0, 1.0), batch_size: int | None = None) -> AttackResult:
    """Basic iterative method / I-FGSM / IGSM (Kurakin et al. 2017): ``steps`` FGSM steps of
    size ``step_size`` (default ``eps/steps``), each followed by projection onto the ``eps`` ball
    and the box; no random start.

    Args: as :func:`pgd`; ``keep="last"`` is Kurakin's (and torchattacks') output, ``"first"``
        stops each sample at its first success (examples near the boundary), ``"best"``
        (default) keeps the best iterate.

    Returns:
        :class:`AttackResult`.
    """
    norm = _check_norm(norm)
    _check_keep(keep)
    _check_target(target, y)
    if step_size is None:
        step_size = torch.as_tensor(eps, dtype=torch.float64) / steps
    ps = {"eps": eps, "step_size": step_size}
    if target is not None:
        ps["target"] = target
    return _run(_pgd_core, model, x, y, name=f"bim_{norm}(eps={_fmt(eps)}{_target_tag(target)})",
                box=box, attack_all=attack_all,
                batch_size=batch_size, per_sample=ps, norm=norm, steps=steps,
                restarts=1, random_start=False, loss=loss, keep=keep)


def pgd(model: Any, x: Tensor, y: Tensor, eps: float | Tensor, norm: str = "linf",
        steps: int = 40, step_size: float | Tensor | None = None, restarts: int = 1,
        random_start: bool = True, loss: str = "ce", seed: int = 0, *, keep: str = "best",
        target: int | Tensor | None = None, attack_all: bool = False,
        box: Box = (0.0, 1.0), batch_size: int | None = None) -> AttackResult:
    """Projected gradient descent (Madry et al. 2018) in the Linf or L2 ball.

    Each step ascends the loss (sign of the gradient for Linf, normalised gradient for L2),
    projects onto the ``eps`` ball around ``x`` and clips to the box (the L2 projection followed by
    the box clip stays in the ball, since clipping only shrinks coordinates of ``delta``). Every
    iterate is evaluated; with ``keep="best"`` (default) the output per sample is the best over
    iterates and restarts: a misclassified one if any, else the one of largest margin. Restarts
    after the first attack only the samples not yet broken.

    Args:
        model: logits model. x: inputs ``(B, ...)``. y: labels ``(B,)``.
        eps: radius (scalar or per-sample ``(B,)``), input units.
        norm: ``"linf"`` or ``"l2"``.
        steps: gradient steps per restart.
        step_size: default ``2.5 * eps / steps`` (Madry et al.).
        restarts: number of random restarts.
        random_start: start uniformly in the ball (Linf: uniform cube; L2: uniform ball).
        loss: ``"ce"`` or ``"cw"`` (margin loss of Carlini & Wagner).
        seed: seed of the random starts.
        keep: ``"best"``, ``"last"`` (final iterate, as torchattacks) or ``"first"`` (first
            success; the sample stops there).
        target: target class (int or per-sample ``(B,)``): descend the loss of ``target``;
            ``info["target_hit"]`` reports it. ``None`` = untargeted.
        attack_all: also perturb samples that are misclassified already (e.g. for adversarial
            training); by default they are returned unchanged (``success=True``, distance 0).
        box: input bounds or ``None``. batch_size: chunk size.

    Returns:
        :class:`AttackResult`.
    """
    norm = _check_norm(norm)
    _check_keep(keep)
    _check_target(target, y)
    if step_size is None:
        step_size = 2.5 * torch.as_tensor(eps, dtype=torch.float64) / max(1, steps)
    ps = {"eps": eps, "step_size": step_size}
    if target is not None:
        ps["target"] = target
    return _run(_pgd_core, model, x, y, name=f"pgd_{norm}(eps={_fmt(eps)}{_target_tag(target)})",
                box=box, attack_all=attack_all,
                batch_size=batch_size, per_sample=ps, seed=seed, norm=norm,
                steps=steps, restarts=restarts, random_start=random_start, loss=loss, keep=keep)


def mifgsm(model: Any, x: Tensor, y: Tensor, eps: float | Tensor, steps: int = 10,
           step_size: float | Tensor | None = None, decay: float = 1.0, *, norm: str = "linf",
           loss: str = "ce", keep: str = "best", target: int | Tensor | None = None,
           attack_all: bool = False, box: Box = (0.0, 1.0),
           batch_size: int | None = None) -> AttackResult:
    """Momentum iterative FGSM (Dong et al. 2018): ``g ← μ g + ∇/||∇||₁``, step
    ``step_size·sign(g)`` (default ``eps/steps``), projection on the ball and the box; no random
    start. Other arguments as :func:`bim`.

    Returns:
        :class:`AttackResult`.
    """
    norm = _check_norm(norm)
    _check_keep(keep)
    _check_target(target, y)
    if step_size is None:
        step_size = torch.as_tensor(eps, dtype=torch.float64) / steps
    ps = {"eps": eps, "step_size": step_size}
    if target is not None:
        ps["target"] = target
    return _run(_pgd_core, model, x, y,
                name=f"mifgsm_{norm}(eps={_fmt(eps)}{_target_tag(target)})", box=box,
                attack_all=attack_all,
                batch_size=batch_size, per_sample=ps, norm=norm, steps=steps, restarts=1,
                random_start=False, loss=loss, keep=keep, momentum=decay)


def rfgsm(model: Any, x: Tensor, y: Tensor, eps: float | Tensor, alpha: float | Tensor,
          steps: int = 1, seed: int = 0, *, loss: str = "ce", keep: str = "last",
          target: int | Tensor | None = None, attack_all: bool = False,
          box: Box = (0.0, 1.0), batch_size: int | None = None) -> AttackResult:
    """R+FGSM (Tramèr et al. 2018), Linf: ``x' = x + α·sign(N(0, I))``, then ``steps`` steps of
    size ``eps − alpha`` (the paper: one step) along the gradient sign at the current point, each
    projected on the ``eps`` ball and the box. Other arguments as :func:`pgd`.

    Returns:
        :class:`AttackResult`.
    """
    _check_keep(keep)
    _check_target(target, y)
    ps = {"eps": eps, "step_size": torch.as_tensor(eps, dtype=torch.float64)
          - torch.as_tensor(alpha, dtype=torch.float64), "rand_step": alpha}
    if target is not None:
        ps["target"] = target
    return _run(_pgd_core, model, x, y,
                name=f"rfgsm(eps={_fmt(eps)},alpha={_fmt(alpha)}{_target_tag(target)})",
                box=box, attack_all=attack_all,
                batch_size=batch_size, per_sample=ps, seed=seed, norm="linf",
                steps=steps, restarts=1, random_start=False, loss=loss, keep=keep)


def _fgm_bisection_core(model: Any, x: Tensor, y: Tensor, *, direction: str, t_max: Tensor,
                        grid: int, bisection_steps: int, loss: str, box: Box,
                        gen: Any) -> tuple[Tensor, dict[str, Tensor]]:
    xa = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(_loss(model(xa), y, loss).sum(), xa)
    u = g.sign() if direction == "sign" else g / _bview(_l2(g).clamp_min(1e-30), g)
    n = x.shape[0]
    dt = torch.float64
    found = torch.full((n,), math.inf, dtype=dt, device=x.device)
    lo = torch.zeros(n, dtype=dt, device=x.device)
    fr = torch.logspace(-4, 0, grid, dtype=dt, device=x.device)

    def adv_at(rows: Tensor, t: Tensor) -> Tensor:
        pts = _clip(x[rows] + _bview(t.to(x.dtype), u[rows]) * u[rows], box)
        return predict(model, pts) != y[rows]

    for f in fr:  # coarse geometric scan for the first success
        rows = (~torch.isfinite(found)).nonzero().squeeze(1)
        if rows.numel() == 0:
            break
        t = t_max[rows].to(dt) * f
        ok = adv_at(rows, t)
        found[rows[ok]] = t[ok]
        lo[rows[~ok]] = t[~ok]
    rows = torch.isfinite(found).nonzero().squeeze(1)
    hi = found.clone()
    for _ in range(bisection_steps):
        if rows.numel() == 0:
            break
        mid = (lo[rows] + hi[rows]) / 2
        ok = adv_at(rows, mid)
        hi[rows[ok]] = mid[ok]
        lo[rows[~ok]] = mid[~ok]
    t = torch.where(torch.isfinite(hi), hi, torch.zeros_like(hi))
    x_adv = _clip(x + _bview(t.to(x.dtype), u) * u, box)
    return x_adv, {"eps": hi}


def fgm_bisection(model: Any, x: Tensor, y: Tensor, direction: str = "sign", *,
                  t_max: float | Tensor | None = None, grid: int = 32,
                  bisection_steps: int = 25, loss: str = "ce", box: Box = (0.0, 1.0),
                  batch_size: int | None = None) -> AttackResult:
    """Smallest step along a fixed fast-gradient direction that changes the label.

    The gradient ``g = ∇_x L(x, y)`` is taken once at ``x`` (for correctly classified samples
    ``y`` is also the predicted label, as in Peck's Alg 2.1). The direction is ``sign(g)``
    (FGS, ``direction="sign"``) or ``g/||g||₂`` (FGV, ``"grad"``; the same line as ``ε·g``).
    A geometric scan of ``grid`` values in ``[10⁻⁴ t_max, t_max]`` finds the first step size
    that misclassifies ``clip(x + t·u)``, then ``bisection_steps`` bisections tighten it
    (every kept point is verified; the label need not be monotone along the line, so this is
    the smallest step found, not a certified one).

    Args:
        model: logits model. x: inputs. y: labels.
        direction: ``"sign"`` or ``"grad"``.
        t_max: largest step (scalar or per-sample): default the box width (sign) or the box
            diagonal (grad); without box 10 resp. ``10·√D``.
        grid: scan points. bisection_steps: bisection steps after the scan.
        loss: ``"ce"`` or ``"cw"``.
        box: input bounds or ``None``. batch_size: chunk size.

    Returns:
        :class:`AttackResult`; ``info["eps"]`` is the step ``t`` found (the FGS ε for
        ``"sign"``; ``inf`` where even ``t_max`` fails).
    """
    if direction not in ("sign", "grad"):
        raise ValueError(f"direction must be 'sign' or 'grad', got {direction!r}")
    if t_max is None:
        xt = torch.as_tensor(x)
        d = xt[0].numel() if xt.shape[0] else 1
        if box is None:
            t_max = 10.0 if direction == "sign" else 10.0 * math.sqrt(d)
        else:
            lo, hi = _box_tensors(box, xt.double())
            w = (hi - lo).expand_as(xt[0].double()) if xt.shape[0] else hi - lo
            t_max = float(w.max()) if direction == "sign" else float(w.pow(2).sum().sqrt())
    return _run(_fgm_bisection_core, model, x, y, name=f"fgm_bisection({direction})", box=box,
                batch_size=batch_size, per_sample={"t_max": t_max}, direction=direction,
                grid=grid, bisection_steps=bisection_steps, loss=loss)


def _check_keep(keep: str) -> None:
    if keep not in ("best", "last", "first"):
        raise ValueError(f"keep must be 'best', 'last' or 'first', got {keep!r}")


# --------------------------------------------------------------------------- DeepFool


def _deepfool_core(model: Any, x: Tensor, y: Tensor, *, steps: int, overshoot: float,
                   candidates: int | None, box: Box, gen: Any) -> Tensor:
    n = x.shape[0]
    r_tot = torch.zeros_like(x)
    x_i = x.clone()
    active = torch.ones(n, dtype=torch.bool, device=x.device)
    with torch.no_grad():
        k_all = model(x[:1]).shape[1] if n else 0
        if candidates is not None and candidates < k_all:
            order = model(x).argsort(dim=1, descending=True)[:, :candidates]
        else:
            order = None
    for _ in range(steps):
        rows = active.nonzero().squeeze(1)
        if rows.numel() == 0:
            break
        xa = x_i[rows].clone().requires_grad_(True)
        logits = model(xa)
        still = logits.argmax(dim=1) == y[rows]
        active[rows[~still]] = False
        if not bool(still.any()):
            break
        k = logits.shape[1]
        grads = []
        for j in range(k):
            (g,) = torch.autograd.grad(logits[:, j].sum(), xa, retain_graph=j < k - 1)
            grads.append(g)
        jac = torch.stack(grads, dim=1)  # (b, K, ...)
        yr = y[rows]
        f = (logits - logits.gather(1, yr[:, None])).detach()  # f_k - f_y  (b, K)
        w = jac - jac[torch.arange(len(rows), device=x.device), yr][:, None]  # (b, K, ...)
        wn = w.reshape(len(rows), k, -1).norm(dim=2)
        ratio = f.abs() / wn.clamp_min(1e-30)
        mask = F.one_hot(yr, k).bool()
        if order is not None:
            allowed = torch.zeros_like(mask)
            allowed.scatter_(1, order[rows], True)
            mask = mask | ~allowed
        ratio = ratio.masked_fill(mask, math.inf)
        ell = ratio.argmin(dim=1)
        ar = torch.arange(len(rows), device=x.device)
        wl, fl, nl = w[ar, ell], f[ar, ell].abs(), wn[ar, ell]
        r = wl * _bview((fl + 1e-4) / nl.clamp_min(1e-30) ** 2, wl)
        upd = rows[still]
        r_tot[upd] = r_tot[upd] + r[still]
        x_i[upd] = _clip(x[upd] + (1 + overshoot) * r_tot[upd], box)
    return x_i


def deepfool(model: Any, x: Tensor, y: Tensor, steps: int = 50, overshoot: float = 0.02, *,
             candidates: int | None = None, box: Box = (0.0, 1.0),
             batch_size: int | None = None) -> AttackResult:
    """Multi-class L2 DeepFool (Moosavi-Dezfooli et al. 2016, Algorithm 2).

    At the current point ``x_i`` linearise ``f_k − f_y`` for every ``k ≠ y`` and step to the
    nearest linearised boundary, ``r_i = (|f'_l| + 10⁻⁴) / ||w'_l||² · w'_l`` with
    ``l = argmin_k |f'_k| / ||w'_k||``; the point is ``x + (1 + overshoot) Σ r_i``, box-clipped;
    stop when the label changes. On an affine classifier without box, one step lands at
    ``(1 + overshoot)`` times the exact minimal distance.

    Args:
        model: logits model. x: inputs. y: labels.
        steps: maximum iterations.
        overshoot: relative overshoot (0.02 in the paper).
        candidates: only the top-``candidates`` classes at ``x`` are considered (default all).
        box: input bounds or ``None``. batch_size: chunk size.

    Returns:
        :class:`AttackResult`.
    """
    return _run(_deepfool_core, model, x, y, name=f"deepfool(overshoot={overshoot:g})", box=box,
                batch_size=batch_size, steps=steps, overshoot=overshoot, candidates=candidates)


# --------------------------------------------------------------------------- Carlini & Wagner


def _cw_core(model: Any, x: Tensor, y: Tensor, *, steps: int, binary_steps: int, c_init: float,
             lr: float, kappa: float, space: str, box: Box, gen: Any,
             target: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    n = x.shape[0]
    c = torch.full((n,), float(c_init), dtype=x.dtype, device=x.device)
    c_lo = torch.zeros_like(c)
    c_hi = torch.full_like(c, math.inf)
    best_l2 = torch.full_like(c, math.inf)
    best_c = torch.full_like(c, math.nan)
    best = x.clone()
    if box is not None and space == "tanh":
        lo, hi = _box_tensors(box, x)
        z = ((x - lo) / (hi - lo) * 2 - 1).clamp(-1, 1) * (1 - 1e-6)
        w0 = torch.atanh(z)

        def to_x(w: Tensor) -> Tensor:
            return lo + (hi - lo) * (torch.tanh(w) + 1) / 2
    else:
        w0 = x.clone()

        def to_x(w: Tensor) -> Tensor:
            return w
    goal = y if target is None else target
    sign = 1.0 if target is None else -1.0  # untargeted: push z_y down; targeted: z_t up
    onehot = F.one_hot(goal, model(x[:1]).shape[1]).bool() if n else None
    for _ in range(binary_steps):
        w = w0.clone().requires_grad_(True)
        opt = torch.optim.Adam([w], lr=lr)
        succ_c = torch.zeros(n, dtype=torch.bool, device=x.device)
        for _ in range(steps):
            xa = to_x(w)
            logits = model(xa)
            l2sq = _flat(xa - x).pow(2).sum(dim=1)
            zg = logits.gather(1, goal[:, None]).squeeze(1)
            zo = logits.masked_fill(onehot, -math.inf).amax(dim=1)
            gap = sign * (zg - zo)  # > 0 while the goal is not reached
            f = gap.clamp_min(-kappa)
            (g,) = torch.autograd.grad((l2sq + c * f).sum(), w)
            with torch.no_grad():
                reached = logits.argmax(dim=1) != y if target is None else \
                    logits.argmax(dim=1) == target
                succ = reached & (-gap >= kappa)
                l2 = l2sq.sqrt()
                better = succ & (l2 < best_l2)
                best[better] = xa.detach()[better]
                best_l2[better] = l2[better]
                best_c[better] = c[better]
                succ_c |= succ
            w.grad = g
            opt.step()
            if space == "clip" and box is not None:
                with torch.no_grad():
                    w.copy_(_clip(w, box))
        c_hi = torch.where(succ_c, torch.minimum(c_hi, c), c_hi)
        c_lo = torch.where(succ_c, c_lo, torch.maximum(c_lo, c))
        c = torch.where(torch.isfinite(c_hi), (c_lo + c_hi) / 2, c * 10)
    return best, {"c": best_c}


def cw_l2(model: Any, x: Tensor, y: Tensor, steps: int = 100, binary_steps: int = 6,
          c_init: float = 1.0, lr: float = 0.01, kappa: float = 0.0, *,
          space: str = "clip", target: int | Tensor | None = None, box: Box = (0.0, 1.0),
          batch_size: int | None = None) -> AttackResult:
    """Carlini & Wagner L2 attack (2017), untargeted.

    Minimises ``||x' − x||₂² + c · max(z_y − max_{k≠y} z_k, −κ)`` with Adam, either over
    ``x'`` with a clip to the box after every step (``space="clip"``, default) or, as in the
    paper, over ``w`` with ``x' = lo + (hi − lo)(tanh w + 1)/2`` (``space="tanh"``). With few
    steps the tanh change of variables is slow to move pixels that sit on the box boundary
    (``tanh'`` ≈ 0 there): on 8×8 digits with 100 steps its median distance was 1.5× the clipped
    variant's, which matches it only after ~500 steps. ``box=None`` optimises ``x'`` directly.
    A per-sample binary search on
    ``c`` (×10 until the first success, then bisection) runs ``binary_steps`` times; per sample
    the smallest successful ``x'`` over all iterates is kept (``info["c"]`` = its ``c``).

    Args:
        model: logits model. x: inputs. y: labels.
        steps: Adam steps per value of ``c``.
        binary_steps: number of values of ``c`` tried.
        c_init: first ``c``.
        lr: Adam learning rate.
        kappa: confidence margin (success needs ``max_{k≠y} z_k − z_y ≥ κ``).
        space: ``"clip"`` (projected Adam) or ``"tanh"`` (the paper's change of variables).
        target: target class (int or per-sample): minimise ``max(max_{k≠t} z_k − z_t, −κ)``
            instead; success for the search on ``c`` = reaching ``t``; ``info["target_hit"]``.
        box: input bounds or ``None``. batch_size: chunk size.

    Returns:
        :class:`AttackResult`.
    """
    if space not in ("tanh", "clip"):
        raise ValueError(f"space must be 'tanh' or 'clip', got {space!r}")
    _check_target(target, y)
    return _run(_cw_core, model, x, y, name=f"cw_l2(kappa={kappa:g}{_target_tag(target)})",
                box=box, batch_size=batch_size,
                per_sample=None if target is None else {"target": target}, steps=steps,
                binary_steps=binary_steps, c_init=c_init,
                lr=lr, kappa=kappa, space=space)


# --------------------------------------------------------------------------- Szegedy L-BFGS


def _lbfgs_core(model: Any, x: Tensor, y: Tensor, *, target: Any, c_init: float,
                bisection_steps: int, expand_steps: int, maxiter: int, double: bool, box: Box,
                gen: Any) -> tuple[Tensor, dict[str, Tensor]]:
    import scipy.optimize

    m = model
    dt = x.dtype
    if double and x.dtype != torch.float64:
        try:
            m = copy.deepcopy(model).double()
            dt = torch.float64
        except Exception:  # noqa: BLE001 - a module that cannot be cast: stay in its precision
            m, dt = model, x.dtype
    n = x.shape[0]
    out = x.clone()
    tgt_out = torch.full((n,), -1, dtype=torch.long)
    c_out = torch.full((n,), math.nan, dtype=torch.float64)
    for i in range(n):
        xi = x[i:i + 1].to(dt)
        yi = int(y[i])
        with torch.no_grad():
            z0 = m(xi)[0]
        k = z0.shape[0]
        order = [int(j) for j in z0.argsort(descending=True) if int(j) != yi]
        if target is None:
            cands = order[:1]
        elif isinstance(target, str) and target == "all":
            cands = order
        else:
            t = torch.as_tensor(target).reshape(-1)
            cands = [int(t[i] if t.numel() > 1 else t[0])]
        bounds = None
        if box is not None:
            lo, hi = _box_tensors(box, xi)
            lb = (lo.expand_as(xi) - xi).reshape(-1).cpu().numpy().astype(np.float64)
            ub = (hi.expand_as(xi) - xi).reshape(-1).cpu().numpy().astype(np.float64)
            bounds = scipy.optimize.Bounds(lb, ub)
        best_n, best_r, best_t, best_c = math.inf, None, -1, math.nan
        for t in cands:
            if t == yi or not 0 <= t < k:
                continue
            tt = torch.tensor([t], device=x.device)

            def solve(c: float, tt: Tensor = tt, t: int = t, xi: Tensor = xi,
                      bounds: Any = bounds) -> bool:
                nonlocal best_n, best_r, best_t, best_c

                def fun(r: np.ndarray) -> tuple[float, np.ndarray]:
                    rt = torch.from_numpy(r).to(dtype=dt, device=xi.device).reshape(xi.shape)
                    rt.requires_grad_(True)
                    obj = c * rt.pow(2).sum() + F.cross_entropy(m(xi + rt), tt)
                    (g,) = torch.autograd.grad(obj, rt)
                    return float(obj.detach()), g.reshape(-1).double().cpu().numpy()

                res = scipy.optimize.minimize(fun, np.zeros(xi.numel()), jac=True,
                                              method="L-BFGS-B", bounds=bounds,
                                              options={"maxiter": maxiter})
                r = torch.from_numpy(res.x).to(dtype=dt, device=xi.device).reshape(xi.shape)
                xa = _clip(xi + r, box)
                with torch.no_grad():
                    ok = int(m(xa).argmax(dim=1)) == t
                nr = float(_l2(xa - xi))
                if ok and nr < best_n:
                    best_n, best_r, best_t, best_c = nr, xa, t, c
                return ok

            c = float(c_init)
            c_ok = c_fail = None
            if solve(c):
                c_ok = c
                for _ in range(expand_steps):  # larger c = smaller perturbation
                    c *= 10
                    if solve(c):
                        c_ok = c
                    else:
                        c_fail = c
                        break
            else:
                c_fail = c
                for _ in range(expand_steps):
                    c /= 10
                    if solve(c):
                        c_ok = c
                        break
                    c_fail = c
            if c_ok is None or c_fail is None:
                continue
            for _ in range(bisection_steps):
                mid = math.sqrt(c_ok * c_fail)
                if solve(mid):
                    c_ok = mid
                else:
                    c_fail = mid
        if best_r is not None:
            out[i] = best_r[0].to(x.dtype)
            tgt_out[i], c_out[i] = best_t, best_c
    return out, {"target": tgt_out.to(x.device), "c": c_out.to(x.device)}


def lbfgs(model: Any, x: Tensor, y: Tensor, target: int | Tensor | str | None = None, *,
          c_init: float = 1.0, bisection_steps: int = 8, expand_steps: int = 6,
          maxiter: int = 200, double: bool = True, box: Box = (0.0, 1.0)) -> AttackResult:
    """Szegedy et al. (2014) box-constrained L-BFGS attack, one sample at a time (slow).

    For a target label ``l`` minimise ``c·||r||₂² + CE(model(x + r), l)`` subject to
    ``x + r`` in the box, with SciPy's L-BFGS-B on the flattened ``r`` (bounds ``[lo − x, hi − x]``),
    starting at ``r = 0``. The squared norm replaces the paper's ``|r|`` (same minimisers up to
    the value of ``c``; differentiable at 0). Larger ``c`` gives smaller ``r``: ``c`` is scaled
    by 10 from ``c_init`` to bracket the success/failure transition, then bisected geometrically
    ``bisection_steps`` times; the smallest ``r`` that reaches ``l`` is kept. (The paper asks for
    "the minimum c > 0" for which the minimiser reaches ``l``; with ``c`` on the norm term it is
    the largest such ``c`` that gives the smallest ``r``.)

    Args:
        model: logits model. x: inputs. y: labels.
        target: ``None`` = per sample the runner-up class at ``x``; ``"all"`` = every class
            ``≠ y`` (keeps the closest); an int or per-sample ``(B,)`` tensor of targets.
        c_init: first ``c``.
        bisection_steps: geometric bisection steps on ``c``.
        expand_steps: at most this many factors of 10 while bracketing.
        maxiter: L-BFGS-B iterations per solve.
        double: run the optimisation on a float64 copy of the model (re-checked in the
            model's own precision).
        box: input bounds or ``None``.

    Returns:
        :class:`AttackResult`; ``info["target"]`` is the target reached (−1 = none),
        ``info["c"]`` the ``c`` of the kept solution. ``success`` is untargeted.
    """
    if target is not None and not isinstance(target, str | int):
        target = torch.as_tensor(target)
        if target.numel() > 1:
            # per-sample targets: run sample by sample so indices stay aligned after filtering
            x, y = _prep(model, x, y, box)
            parts = [lbfgs(model, x[i:i + 1], y[i:i + 1], int(target[i]), c_init=c_init,
                           bisection_steps=bisection_steps, expand_steps=expand_steps,
                           maxiter=maxiter, double=double, box=box) for i in range(len(x))]
            return _concat(parts, "lbfgs")
    return _run(_lbfgs_core, model, x, y, name="lbfgs", box=box, batch_size=None,
                target=target, c_init=c_init, bisection_steps=bisection_steps,
                expand_steps=expand_steps, maxiter=maxiter, double=double)


def _concat(parts: Sequence[AttackResult], name: str) -> AttackResult:
    info: dict[str, Any] = {}
    for k in parts[0].info if parts else []:
        info[k] = torch.cat([p.info[k] for p in parts])
    return AttackResult(
        x_adv=torch.cat([p.x_adv for p in parts]), delta=torch.cat([p.delta for p in parts]),
        success=torch.cat([p.success for p in parts]),
        norms_l2=torch.cat([p.norms_l2 for p in parts]),
        norms_linf=torch.cat([p.norms_linf for p in parts]), name=name, info=info)


# --------------------------------------------------------------------------- minimal norm


def refine(model: Any, x: Tensor, y: Tensor, x_adv: Tensor, success: Tensor | None = None,
           steps: int = 20, *, batch_size: int | None = None) -> Tensor:
    """Shrink adversarial examples toward ``x`` along their own direction (post-hoc tightening).

    Bisection on ``t ∈ (0, 1]`` for the smallest ``t`` such that ``x + t (x_adv − x)`` is still
    misclassified; only verified points are kept, so the output is misclassified wherever
    ``x_adv`` was. Convex combinations of box points stay in the box.

    Args:
        model: logits model. x, x_adv: ``(B, ...)``. y: labels.
        success: which rows to refine (default: where ``x_adv`` is misclassified).
        steps: bisection steps (the final ``t`` is within ``2^-steps`` of the transition found).
        batch_size: chunk size of the forward passes.

    Returns:
        The refined ``x_adv`` (rows not refined are returned unchanged).
    """
    with _attack_mode(model):
        x = x.detach()
        x_adv = x_adv.detach().to(x.dtype)
        y = y.to(x.device)
        if success is None:
            success = predict(model, x_adv, batch_size) != y
        rows = success.nonzero().squeeze(1)
        out = x_adv.clone()
        if rows.numel() == 0:
            return out
        xs, d, ys = x[rows], x_adv[rows] - x[rows], y[rows]
        lo = torch.zeros(len(rows), dtype=x.dtype, device=x.device)
        hi = torch.ones_like(lo)
        for _ in range(steps):
            mid = (lo + hi) / 2
            adv = predict(model, xs + _bview(mid, d) * d, batch_size) != ys
            hi = torch.where(adv, mid, hi)
            lo = torch.where(adv, lo, mid)
        out[rows] = xs + _bview(hi, d) * d
        return out


def _pgd_l2_bisection(model: Any, x: Tensor, y: Tensor, hi: Tensor, *, box: Box,
                      bisection_steps: int, steps: int, restarts: int, loss: str, seed: int,
                      eps_max: float, batch_size: int | None, random_start: bool) -> Tensor:
    """Per-sample bisection on the L2 radius of PGD; returns the smallest verified x_adv
    (x where none was found). ``hi`` = known adversarial radius (inf = unknown)."""
    n = x.shape[0]
    best = x.clone()
    best_d = torch.full((n,), math.inf, dtype=torch.float64, device=x.device)
    lo = torch.zeros(n, dtype=torch.float64, device=x.device)
    hi = hi.clone().double()

    def attempt(rows: Tensor, eps: Tensor, it: int) -> Tensor:
        r = pgd(model, x[rows], y[rows], eps=eps.to(x.dtype), norm="l2", steps=steps,
                restarts=restarts, loss=loss, seed=seed + it, box=box, batch_size=batch_size,
                random_start=random_start)
        d = r.norms_l2
        better = r.success & (d < best_d[rows])
        best[rows[better]] = r.x_adv[better]
        best_d[rows[better]] = d[better]
        return r.success

    # unknown radius: grow eps from 1/64 of eps_max by factors of 4 until success
    unk = (~torch.isfinite(hi)).nonzero().squeeze(1)
    eps = torch.full((len(unk),), eps_max / 64, dtype=torch.float64, device=x.device)
    it = 0
    while unk.numel() and it < 4:
        ok = attempt(unk, eps, it)
        hi[unk[ok]] = eps[ok]
        lo[unk[~ok]] = eps[~ok]
        unk, eps = unk[~ok], eps[~ok] * 4
        it += 1
    rows = torch.isfinite(hi).nonzero().squeeze(1)
    for _ in range(bisection_steps):
        if rows.numel() == 0:
            break
        mid = (lo[rows] + hi[rows]) / 2
        ok = attempt(rows, mid, it)
        hi[rows[ok]] = torch.minimum(mid[ok], best_d[rows[ok]])
        lo[rows[~ok]] = mid[~ok]
        it += 1
    return best


def min_norm(model: Any, x: Tensor, y: Tensor,
             attacks: Sequence[str] = ("deepfool", "cw", "pgd_l2"), *,
             box: Box = (0.0, 1.0), refine_steps: int = 20,
             deepfool_kw: dict | None = None, cw_kw: dict | None = None,
             pgd_kw: dict | None = None, lbfgs_kw: dict | None = None,
             fgm_kw: dict | None = None,
             bisection_steps: int = 8, eps_max: float | None = None, seed: int = 0,
             batch_size: int | None = None) -> MinNormResult:
    """Smallest L2 adversarial perturbation found per sample by several attacks.

    Runs the named attacks (``"deepfool"``, ``"cw"``, ``"pgd_l2"``, ``"lbfgs"``, and the
    single-direction searches ``"fgs"`` / ``"fgv"`` of :func:`fgm_bisection`) on the
    correctly classified samples, shrinks each success toward ``x`` with :func:`refine`
    (``refine_steps=0`` disables it) and keeps per sample the smallest verified distance.
    ``"pgd_l2"`` bisects the L2 radius per sample (``bisection_steps`` PGD runs) between 0 and
    the best distance found by the attacks before it (or, where none succeeded, a radius grown
    from ``eps_max/64``, default ``eps_max`` = the box diagonal, or 10 without box).

    The result is an upper bound on the true minimal adversarial distance of each sample.

    Args:
        model: logits model. x: inputs ``(B, ...)``. y: labels ``(B,)``.
        attacks: attack names, run in this order.
        box: input bounds or ``None``.
        refine_steps: bisection steps of the line-search refinement.
        deepfool_kw, cw_kw, lbfgs_kw, fgm_kw: extra keyword arguments of those attacks.
        pgd_kw: ``steps`` (default 20), ``restarts`` (1), ``loss`` (``"cw"``),
            ``random_start`` (``False``: from ``x`` the iterates reach the boundary along the
            gradient; random starts converge to that direction only geometrically) of each
            PGD run.
        bisection_steps: PGD radius bisection steps.
        eps_max: scale of the PGD radius search where no other attack succeeded.
        seed: seed of PGD's random starts.
        batch_size: chunk size.

    Returns:
        :class:`MinNormResult`.
    """
    x, y = _prep(model, x, y, box)
    n = x.shape[0]
    known = {"deepfool", "cw", "pgd_l2", "lbfgs", "fgs", "fgv"}
    bad = [a for a in attacks if a not in known]
    if bad:
        raise ValueError(f"unknown attacks {bad}; valid: {sorted(known)}")
    with _attack_mode(model):
        correct = predict(model, x, batch_size) == y
        best_d = torch.where(correct, math.inf, 0.0).double()
        best_x = x.clone()
        by = ["none" if bool(c) else "clean" for c in correct]
        per: dict[str, Tensor] = {}
        rows = correct.nonzero().squeeze(1)
        xs, ys = x[rows], y[rows]
        if eps_max is None:
            if box is None:
                eps_max = 10.0
            else:
                lo, hi = _box_tensors(box, x)
                eps_max = float(((hi - lo).expand_as(x[0]) ** 2).sum().sqrt())
        for name in attacks:
            if rows.numel() == 0:
                per[name] = torch.full((n,), math.inf, dtype=torch.float64, device=x.device)
                continue
            if name == "deepfool":
                xa = deepfool(model, xs, ys, box=box, batch_size=batch_size,
                              **(deepfool_kw or {})).x_adv
            elif name == "cw":
                xa = cw_l2(model, xs, ys, box=box, batch_size=batch_size, **(cw_kw or {})).x_adv
            elif name == "lbfgs":
                xa = lbfgs(model, xs, ys, box=box, **(lbfgs_kw or {})).x_adv
            elif name in ("fgs", "fgv"):
                xa = fgm_bisection(model, xs, ys, "sign" if name == "fgs" else "grad", box=box,
                                   batch_size=batch_size, **(fgm_kw or {})).x_adv
            else:
                kw = {"steps": 20, "restarts": 1, "loss": "cw", "random_start": False,
                      **(pgd_kw or {})}
                xa = _pgd_l2_bisection(model, xs, ys, best_d[rows], box=box,
                                       bisection_steps=bisection_steps, seed=seed,
                                       eps_max=eps_max, batch_size=batch_size, **kw)
            succ = predict(model, xa, batch_size) != ys
            if refine_steps > 0:
                xa = refine(model, xs, ys, xa, succ, refine_steps, batch_size=batch_size)
                succ = predict(model, xa, batch_size) != ys
            d = torch.where(succ, _l2(xa - xs).double(), math.inf)
            full = torch.full((n,), math.inf, dtype=torch.float64, device=x.device)
            full[rows] = d
            per[name] = full
            better = d < best_d[rows]
            r = rows[better]
            best_d[r] = d[better]
            best_x[r] = xa[better]
            for i in r.tolist():
                by[i] = name
    return MinNormResult(distance=best_d, x_adv=best_x, by=by, per_attack=per)


# --------------------------------------------------------------------------- robust accuracy


def robust_outcomes(model: Any, x: Tensor, y: Tensor, eps_list: Sequence[float],
                    norm: str = "linf", *, attack: str = "pgd", steps: int = 40,
                    restarts: int = 1, step_size: float | None = None,
                    loss: str | Sequence[str] = "ce",
                    seed: int = 0, monotone: bool = True, box: Box = (0.0, 1.0),
                    batch_size: int | None = None) -> np.ndarray:
    """Per-point outcome under attack for each radius: which points stay correct and unbroken.

    The per-point form of :func:`robust_accuracy` (its mean over points), for paired
    comparisons of two models or two settings on the same test points.

    A sample counts as robust at ``eps`` when it is correctly classified and the attack
    (``"pgd"``, ``"bim"`` or ``"fgsm"``) fails. With ``monotone=True`` (sound, default) a sample
    broken at some radius counts as broken at every larger radius (the same perturbation lies in
    the larger ball), and only unbroken samples are attacked at the next radius, taken in
    increasing order. ``eps = 0`` gives the clean accuracy.

    Args:
        model: logits model. x: inputs. y: labels.
        eps_list: radii, input units.
        norm: ``"linf"`` or ``"l2"``.
        attack, steps, restarts, step_size, seed: attack settings (``step_size`` None =
            the attack's default).
        loss: ``"ce"``, ``"cw"`` or several, e.g. ``("ce", "cw")``: the per-example worst case
            (a sample is broken when any of the losses breaks it).
        monotone: see above.
        box: input bounds or ``None``. batch_size: chunk size.

    Returns:
        Boolean array of shape ``(len(eps_list), n)``: ``True`` where the point is correctly
        classified and the attack failed at that radius (rows in the given order of
        ``eps_list``).
    """
    norm = _check_norm(norm)
    if attack not in ("pgd", "bim", "fgsm"):
        raise ValueError(f"attack must be 'pgd', 'bim' or 'fgsm', got {attack!r}")
    losses = [loss] if isinstance(loss, str) else list(loss)
    x, y = _prep(model, x, y, box)
    n = x.shape[0]
    eps_arr = np.asarray(list(eps_list), dtype=np.float64)
    if np.any(eps_arr < 0):
        raise ValueError("eps_list must be non-negative")
    with _attack_mode(model):
        correct = predict(model, x, batch_size) == y
    robust_now = correct.clone()
    out = np.zeros((len(eps_arr), n), dtype=bool)
    for j in np.argsort(eps_arr, kind="stable"):
        e = float(eps_arr[j])
        cand = robust_now if monotone else correct
        rows = cand.nonzero().squeeze(1)
        alive = torch.zeros(n, dtype=torch.bool, device=x.device)
        if e == 0 or rows.numel() == 0:
            alive[rows] = True
        else:
            alive[rows] = True
            for lo_ in losses:
                rows = alive.nonzero().squeeze(1)
                if rows.numel() == 0:
                    break
                xs, ys = x[rows], y[rows]
                if attack == "pgd":
                    r = pgd(model, xs, ys, e, norm, steps=steps, step_size=step_size,
                            restarts=restarts, loss=lo_, seed=seed, box=box,
                            batch_size=batch_size)
                elif attack == "bim":
                    r = bim(model, xs, ys, e, steps=steps, step_size=step_size, norm=norm,
                            loss=lo_, box=box, batch_size=batch_size)
                else:
                    r = fgsm(model, xs, ys, e, norm, loss=lo_, box=box, batch_size=batch_size)
                alive[rows] = ~r.success
        if monotone:
            robust_now = alive
        out[j] = alive.cpu().numpy()
    return out


def robust_accuracy(model: Any, x: Tensor, y: Tensor, eps_list: Sequence[float],
                    norm: str = "linf", *, attack: str = "pgd", steps: int = 40,
                    restarts: int = 1, step_size: float | None = None,
                    loss: str | Sequence[str] = "ce",
                    seed: int = 0, monotone: bool = True, box: Box = (0.0, 1.0),
                    batch_size: int | None = None) -> np.ndarray:
    """Accuracy under attack for each radius (an upper bound on the true robust accuracy).

    The mean over points of :func:`robust_outcomes` (same arguments; see there); ``nan`` for
    an empty batch. ``eps = 0`` gives the clean accuracy.

    Returns:
        Accuracies in ``[0, 1]``, one per entry of ``eps_list`` (in the given order).
    """
    out = robust_outcomes(model, x, y, eps_list, norm, attack=attack, steps=steps,
                          restarts=restarts, step_size=step_size, loss=loss, seed=seed,
                          monotone=monotone, box=box, batch_size=batch_size)
    if out.shape[1] == 0:
        return np.full(out.shape[0], math.nan)
    return out.mean(axis=1)
