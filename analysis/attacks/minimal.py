"""Minimal-perturbation attacks: fast-gradient line searches, DeepFool, C&W-L2, the post-hoc
line-search refinement and the minimal-norm search over several attacks (see
:mod:`analysis.attacks` for the conventions)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from analysis.attacks.core import (
    AttackResult,
    Box,
    MinNormResult,
    _attack_mode,
    _box_tensors,
    _bview,
    _check_target,
    _clip,
    _flat,
    _l2,
    _loss,
    _prep,
    _run,
    _target_tag,
    predict,
)
from analysis.attacks.gradient import pgd
from analysis.attacks.lbfgs import lbfgs


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
