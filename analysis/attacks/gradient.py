"""Gradient attacks in a budget: FGSM, BIM/I-FGSM, PGD (L∞, L2), MI-FGSM, R+FGSM, and the
robust-accuracy curves built on them (see :mod:`analysis.attacks` for the conventions)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from analysis.attacks.core import (
    AttackResult,
    Box,
    _attack_mode,
    _bview,
    _check_keep,
    _check_norm,
    _check_target,
    _clip,
    _flat,
    _fmt,
    _l2,
    _loss,
    _prep,
    _run,
    _target_tag,
    margin,
    predict,
)


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
              target: Tensor | None = None, rand_step: Tensor | None = None,
              compact: bool = False) -> Tensor:
    """Iterated gradient ascent inside the ``eps`` ball (per-sample eps) with optional momentum
    (MI-FGSM), a random-sign first step (R+FGSM) and three ways to pick the output:
    ``keep="best"`` (goal reached first, then largest margin, over iterates and restarts),
    ``"last"`` (the final iterate) or ``"first"`` (the first iterate that reaches the goal; a
    sample stops moving once it does). ``compact=True`` (``keep="first"`` only) steps only the
    samples that have not reached the goal (see :func:`_live_rows`): the same iterates for
    them, and no gradient spent on the samples that stopped."""
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
            if compact and bool(best_succ[rows].all()):
                break
            live = _live_rows(best_succ[rows]) if compact else None
            xl, dl, yl, el, sl, rl, tl, ml = (
                (xs, delta, ys, es, ss, rows, ts, mom) if live is None else
                (xs[live], delta[live], ys[live], es[live], ss[live], rows[live],
                 None if ts is None else ts[live], mom[live]))
            xa = (xl + dl).requires_grad_(True)
            logits = model(xa)
            if keep != "last":
                consider(rl, xa, logits)
                if keep == "first" and bool(best_succ[rows].all()):
                    break
            (g,) = torch.autograd.grad(_objective(logits, yl, tl, loss).sum(), xa)
            if momentum is not None:
                g = g / _bview(_flat(g).abs().mean(dim=1).clamp_min(1e-30), g)
                ml = momentum * ml + g
                g = ml
            if norm == "linf":
                new = dl + _bview(sl, g) * g.sign()
            else:
                new = dl + _bview(sl, g) * g / _bview(_l2(g).clamp_min(1e-30), g)
            new = _project(new.detach(), el, norm)
            new = _clip(xl + new, box) - xl
            if keep == "first":  # samples that reached the goal stay where they first did
                new = torch.where(_bview(best_succ[rl], new), dl, new)
            if live is None:
                delta, mom = new, ml
            else:
                delta[live], mom[live] = new, ml
        xa = xs + delta
        if keep == "last":
            best[rows] = xa
            with torch.no_grad():
                best_succ[rows] = _score(model(xa), ys, ts)[1]
        else:
            with torch.no_grad():
                consider(rows, xa, model(xa))
    return best


#: :func:`_live_rows` never steps fewer samples than this (or all of them when there are fewer):
#: torch's CPU matrix products over 1-3 rows take another kernel, with other rounding. Above it a
#: row's logits do not depend on the other rows (measured here); reductions over a few logits
#: can still round differently with a row's place in the batch, so an L2 step may move by an
#: ulp (an L∞ step takes the gradient's sign). The outcomes matched in the tests and the
#: chapter runs that use it (``tests/test_attacks.py``).
COMPACT_MIN_ROWS = 8


def _check_compact(compact: bool, keep: str) -> None:
    if compact and keep != "first":
        raise ValueError(f"compact=True needs keep='first' (a stopped sample must not move), "
                         f"got keep={keep!r}")


def _live_rows(done: Tensor) -> Tensor:
    """Positions to step next under ``compact=True``: every sample not yet done, topped up with
    done ones (which do not move under ``keep="first"``) to ``COMPACT_MIN_ROWS``."""
    need = min(done.numel(), COMPACT_MIN_ROWS)
    live = (~done).nonzero().squeeze(1)
    if live.numel() < need:
        live = torch.cat([live, done.nonzero().squeeze(1)[: need - live.numel()]]).sort().values
    return live


def _attack_args(y: Tensor, eps: float | Tensor, step_size: float | Tensor, target: Any, *,
                 norm: str = "linf", keep: str = "last", **extra: Any
                 ) -> tuple[str, dict[str, Any]]:
    """The argument checks every gradient attack shares (``norm``, ``keep``, ``target``), and
    the per-sample arguments of :func:`_pgd_core`: ``eps``, ``step_size``, then ``extra``, and
    ``target`` when one is given.

    Returns:
        ``(norm, per_sample)``: the checked norm (lower case) and those arguments.
    """
    norm = _check_norm(norm)
    _check_keep(keep)
    _check_target(target, y)
    per_sample = {"eps": eps, "step_size": step_size, **extra}
    if target is not None:
        per_sample["target"] = target
    return norm, per_sample


def _default_step(eps: float | Tensor, step_size: float | Tensor | None, steps: int,
                  factor: float = 1.0) -> float | Tensor:
    """``step_size``, or ``factor · eps / steps`` (float64) when it is None."""
    if step_size is not None:
        return step_size
    return factor * torch.as_tensor(eps, dtype=torch.float64) / steps


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
    norm, ps = _attack_args(y, eps, eps, target, norm=norm)
    return _run(_pgd_core, model, x, y, name=f"fgsm_{norm}(eps={_fmt(eps)}{_target_tag(target)})",
                box=box, attack_all=attack_all,
                batch_size=batch_size, per_sample=ps, norm=norm, steps=1, restarts=1,
                random_start=False, loss=loss, keep="last")


def bim(model: Any, x: Tensor, y: Tensor, eps: float | Tensor, steps: int = 10,
        step_size: float | Tensor | None = None, *, norm: str = "linf", loss: str = "ce",
        keep: str = "best", target: int | Tensor | None = None, attack_all: bool = False,
        box: Box = (0.0, 1.0), batch_size: int | None = None,
        compact: bool = False) -> AttackResult:
    """Basic iterative method / I-FGSM / IGSM (Kurakin et al. 2017): ``steps`` FGSM steps of
    size ``step_size`` (default ``eps/steps``), each followed by projection onto the ``eps`` ball
    and the box; no random start.

    Args: as :func:`pgd`; ``keep="last"`` is Kurakin's (and torchattacks') output, ``"first"``
        stops each sample at its first success (examples near the boundary), ``"best"``
        (default) keeps the best iterate; ``compact`` as :func:`pgd`.

    Returns:
        :class:`AttackResult`.
    """
    _check_compact(compact, keep)
    norm, ps = _attack_args(y, eps, _default_step(eps, step_size, steps), target, norm=norm,
                            keep=keep)
    return _run(_pgd_core, model, x, y, name=f"bim_{norm}(eps={_fmt(eps)}{_target_tag(target)})",
                box=box, attack_all=attack_all,
                batch_size=batch_size, per_sample=ps, norm=norm, steps=steps,
                restarts=1, random_start=False, loss=loss, keep=keep, compact=compact)


def pgd(model: Any, x: Tensor, y: Tensor, eps: float | Tensor, norm: str = "linf",
        steps: int = 40, step_size: float | Tensor | None = None, restarts: int = 1,
        random_start: bool = True, loss: str = "ce", seed: int = 0, *, keep: str = "best",
        target: int | Tensor | None = None, attack_all: bool = False,
        box: Box = (0.0, 1.0), batch_size: int | None = None,
        compact: bool = False) -> AttackResult:
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
        compact: with ``keep="first"``, step only the samples that have not reached the goal
            yet: the same result up to the float round-off of batch-size-dependent kernels (a row's
            logits can move by ~1e-8 with the batch it is in), without the gradients of the
            samples that stopped.

    Returns:
        :class:`AttackResult`.
    """
    _check_compact(compact, keep)
    norm, ps = _attack_args(y, eps, _default_step(eps, step_size, max(1, steps), 2.5), target,
                            norm=norm, keep=keep)
    return _run(_pgd_core, model, x, y, name=f"pgd_{norm}(eps={_fmt(eps)}{_target_tag(target)})",
                box=box, attack_all=attack_all,
                batch_size=batch_size, per_sample=ps, seed=seed, norm=norm,
                steps=steps, restarts=restarts, random_start=random_start, loss=loss, keep=keep,
                compact=compact)


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
    norm, ps = _attack_args(y, eps, _default_step(eps, step_size, steps), target, norm=norm,
                            keep=keep)
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
    eps64, alpha64 = (torch.as_tensor(v, dtype=torch.float64) for v in (eps, alpha))
    _, ps = _attack_args(y, eps, eps64 - alpha64, target, keep=keep, rand_step=alpha)
    return _run(_pgd_core, model, x, y,
                name=f"rfgsm(eps={_fmt(eps)},alpha={_fmt(alpha)}{_target_tag(target)})",
                box=box, attack_all=attack_all,
                batch_size=batch_size, per_sample=ps, seed=seed, norm="linf",
                steps=steps, restarts=1, random_start=False, loss=loss, keep=keep)


# --------------------------------------------------------------------------- robust accuracy


def robust_outcomes(model: Any, x: Tensor, y: Tensor, eps_list: Sequence[float],
                    norm: str = "linf", *, attack: str = "pgd", steps: int = 40,
                    restarts: int = 1, step_size: float | None = None,
                    loss: str | Sequence[str] = "ce",
                    seed: int = 0, monotone: bool = True, box: Box = (0.0, 1.0),
                    batch_size: int | None = None, stop_at_success: bool = False
                    ) -> np.ndarray:
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
        stop_at_success: ``"pgd"``/``"bim"`` stop each sample at its first success
            (``keep="first"``, ``compact=True``) instead of keeping the best iterate: the same
            outcomes (a sample counts as broken when any iterate breaks it, either way), at the
            cost of the steps each sample needs until it breaks.

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
                stop = {"keep": "first", "compact": True} if stop_at_success else {}
                if attack == "pgd":
                    r = pgd(model, xs, ys, e, norm, steps=steps, step_size=step_size,
                            restarts=restarts, loss=lo_, seed=seed, box=box,
                            batch_size=batch_size, **stop)
                elif attack == "bim":
                    r = bim(model, xs, ys, e, steps=steps, step_size=step_size, norm=norm,
                            loss=lo_, box=box, batch_size=batch_size, **stop)
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
