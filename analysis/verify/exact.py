"""Exact minimal adversarial distances: MILP (HiGHS) for L∞ / L1, MIQP (SCIP) for L2."""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from analysis.verify.crown import _box, _spec, crown_bounds
from analysis.verify.network import DT, Affine, Network, network


# =========================================================================== exact distances
@dataclass
class Exact:
    """Exact minimal adversarial distances (or certified brackets) for a batch.

    Attributes:
        lower, upper: float64 ``(B,)``: ``lower ≤ true minimum ≤ upper``.
        status: per point ``"solved"`` (relative gap ≤ gap_tol), ``"gap"`` or ``"clean"``
            (already misclassified: 0).
        x_adv: ``(B, d)`` a misclassified point at distance ``upper``, inside the box.
        seconds: ``(B,)`` solver wall time per point. norm: the norm.
        binaries: ``(B,)`` number of binary variables of the largest program.
    """

    lower: np.ndarray
    upper: np.ndarray
    status: list[str]
    x_adv: Tensor
    seconds: np.ndarray
    norm: str
    binaries: np.ndarray

    @property
    def gap(self) -> np.ndarray:
        """Relative gap ``(upper − lower) / upper`` per point."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.upper > 0, (self.upper - self.lower) / self.upper, 0.0)


def _dist(d: Tensor, norm: str) -> float:
    p = {"l2": 2, "linf": math.inf, "l1": 1}[norm]
    return float(torch.linalg.vector_norm(d, ord=p))


class _Program:
    """A mixed-integer linear description: variables (bounds, integrality) and rows
    ``lo ≤ Σ a_k v_k ≤ hi``."""

    def __init__(self) -> None:
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.integer: list[bool] = []
        self.rows: list[tuple[dict[int, float], float, float]] = []

    def var(self, lb: float, ub: float, integer: bool = False) -> int:
        self.lb.append(lb)
        self.ub.append(ub)
        self.integer.append(integer)
        return len(self.lb) - 1

    def row(self, coef: dict[int, float], lo: float, hi: float) -> None:
        self.rows.append((coef, lo, hi))


def _encode(net: Network, x0: np.ndarray, lo_in: np.ndarray, hi_in: np.ndarray,
            bounds: dict[int, tuple[Tensor, Tensor]]) -> tuple[_Program, list[int], list[dict],
                                                                   int]:
    """Encode the network over ``lo_in ≤ x ≤ hi_in``: returns the program, the input variables,
    the logits as affine expressions ``{var: coef, -1: const}`` and the number of binaries."""
    P = _Program()
    xs = [P.var(float(a), float(b)) for a, b in zip(lo_in, hi_in)]
    h: list[dict[int, float]] = [{v: 1.0} for v in xs]  # current layer as affine expressions
    n_bin = 0

    def affine(m: Affine, h: list[dict[int, float]]) -> list[dict[int, float]]:
        A = m.dense().numpy()
        b = m.bias.numpy()
        out = []
        for r in range(A.shape[0]):
            e: dict[int, float] = {-1: float(b[r])}
            for j in np.flatnonzero(A[r]):
                for v, c in h[j].items():
                    e[v] = e.get(v, 0.0) + float(A[r, j]) * c
            out.append(e)
        return out

    def as_var(e: dict[int, float], lo: float, up: float) -> int:
        if len(e) == 2 and -1 in e and e[-1] == 0.0:
            (v, c), = [(k, c) for k, c in e.items() if k != -1]
            if c == 1.0:
                return v
        v = P.var(lo, up)
        coef = {k: c for k, c in e.items() if k != -1}
        coef[v] = coef.get(v, 0.0) - 1.0
        P.row(coef, -e.get(-1, 0.0), -e.get(-1, 0.0))
        return v

    for k, m in enumerate(net.layers):
        if isinstance(m, Affine):
            h = affine(m, h)
            continue
        lo, up = (t.numpy() for t in bounds[k])
        if m.kind == "relu":
            new = []
            for i, e in enumerate(h):
                if lo[i] >= 0:
                    new.append(e)
                elif up[i] <= 0:
                    new.append({-1: 0.0})
                else:
                    z = as_var(e, float(lo[i]), float(up[i]))
                    y = P.var(0.0, float(up[i]))
                    a = P.var(0.0, 1.0, integer=True)
                    n_bin += 1
                    P.row({y: 1.0, z: -1.0}, 0.0, math.inf)           # y ≥ z
                    P.row({y: 1.0, z: -1.0, a: -float(lo[i])}, -math.inf, -float(lo[i]))
                    P.row({y: 1.0, a: -float(up[i])}, -math.inf, 0.0)  # y ≤ u a
                    new.append({y: 1.0})
            h = new
        elif m.kind == "maxpool":
            win = m.windows.numpy()
            new = []
            for o in range(win.shape[0]):
                w = win[o]
                j = w[np.argmax(lo[w])]
                others = max((up[i] for i in w if i != j), default=-math.inf)
                if lo[j] >= others:
                    new.append(h[j])
                    continue
                zs = [as_var(h[i], float(lo[i]), float(up[i])) for i in w]
                umax = float(up[w].max())
                y = P.var(float(lo[w].max()), umax)
                sel = {}
                for i, z in zip(w, zs):
                    a = P.var(0.0, 1.0, integer=True)
                    n_bin += 1
                    sel[a] = 1.0
                    P.row({y: 1.0, z: -1.0}, 0.0, math.inf)
                    big = umax - float(lo[i])
                    P.row({y: 1.0, z: -1.0, a: big}, -math.inf, big)
                P.row(sel, 1.0, 1.0)
                new.append({y: 1.0})
            h = new
        else:
            raise ValueError("exact distances need a piecewise-linear network (no tanh)")
    return P, xs, h, n_bin


def _objective(P: _Program, xs: list[int], x0: np.ndarray, norm: str, lo_in: np.ndarray,
               hi_in: np.ndarray) -> int | list[int]:
    """Add the distance variables (L∞: t; L1: s_i) and return them."""
    if norm == "linf":
        t = P.var(0.0, float(np.max(np.maximum(hi_in - x0, x0 - lo_in))))
        for v, c in zip(xs, x0):
            P.row({v: 1.0, t: -1.0}, -math.inf, float(c))
            P.row({v: 1.0, t: 1.0}, float(c), math.inf)
        return t
    ss = []
    for v, c, a, b in zip(xs, x0, lo_in, hi_in):
        s = P.var(0.0, float(max(b - c, c - a)))
        P.row({v: 1.0, s: -1.0}, -math.inf, float(c))
        P.row({v: 1.0, s: 1.0}, float(c), math.inf)
        ss.append(s)
    return ss


def _solve_highs(P: _Program, obj: dict[int, float], time_limit: float
                 ) -> tuple[float, float, np.ndarray | None]:
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    n = len(P.lb)
    c = np.zeros(n)
    for v, w in obj.items():
        c[v] = w
    r, cidx, val, lo, hi = [], [], [], [], []
    for i, (coef, a, b) in enumerate(P.rows):
        for v, w in coef.items():
            r.append(i)
            cidx.append(v)
            val.append(w)
        lo.append(a)
        hi.append(b)
    A = coo_matrix((val, (r, cidx)), shape=(len(P.rows), n)).tocsr()
    res = milp(c, constraints=LinearConstraint(A, lo, hi), integrality=np.array(P.integer, int),
               bounds=Bounds(P.lb, P.ub),
               options={"time_limit": time_limit, "mip_rel_gap": 1e-6, "presolve": True})
    if res.x is None:
        if res.status == 2:  # infeasible: no adversarial of this class in the domain
            return math.inf, math.inf, None
        dual = getattr(res, "mip_dual_bound", None)
        return (float(dual) if dual is not None and np.isfinite(dual) else 0.0), math.inf, None
    dual = getattr(res, "mip_dual_bound", None)
    dual = float(res.fun) if res.status == 0 else (float(dual) if dual is not None else 0.0)
    return min(dual, float(res.fun)), float(res.fun), res.x


@contextlib.contextmanager
def quiet_native_output():
    """Send what native code writes to the process's stdout and stderr (file descriptors 1 and 2)
    to /dev/null for the block. SCIP's LP solver (SoPlex) prints a notice for every LP tolerance it
    cannot set without GMP ("Cannot set feasibility tolerance ... using 1e-10") straight to the
    descriptors, past ``Model.hideOutput``; in a notebook those lines would bury the results."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def _solve_scip(P: _Program, xs: list[int], x0: np.ndarray, time_limit: float, scale: float,
                radius: float = math.inf) -> tuple[float, float, np.ndarray | None]:
    """Minimise ``Σ ((x_i − x0_i) / scale)²`` subject to ``‖x − x0‖₂ ≤ radius``; returns the
    distances (not squared), ``(inf, inf, None)`` when no point is that close.

    ``scale`` (the known distance U) makes the optimum about 1, so that SCIP's absolute
    feasibility tolerance on the quadratic constraint (set to 1e-7) is a relative one.
    ``radius`` (a distance already reached) caps the objective, so SCIP prunes every node whose
    relaxation cannot beat it; the minimum over the whole domain is then
    ``min(returned lower, radius)``.
    """
    from pyscipopt import Model, quicksum

    M = Model()
    M.hideOutput()
    M.setParam("timing/clocktype", 1)  # the limit in CPU seconds: the same work on a busy machine
    M.setParam("limits/time", float(time_limit))
    M.setParam("limits/gap", 1e-7)
    M.setParam("numerics/feastol", 1e-7)
    M.setParam("randomization/randomseedshift", 0)
    M.setParam("parallel/maxnthreads", 1)
    vs = [M.addVar(lb=None if not np.isfinite(a) else a, ub=None if not np.isfinite(b) else b,
                   vtype="B" if integ else "C")
          for a, b, integ in zip(P.lb, P.ub, P.integer)]
    for coef, a, b in P.rows:
        expr = quicksum(w * vs[v] for v, w in coef.items())
        if a == b:
            M.addCons(expr == a)
        else:
            if np.isfinite(a):
                M.addCons(expr >= a)
            if np.isfinite(b):
                M.addCons(expr <= b)
    t = M.addVar(lb=0.0, ub=(radius / scale) ** 2 if np.isfinite(radius) else None)
    w = 1.0 / scale
    M.addCons(quicksum((w * vs[v] - w * float(c)) * (w * vs[v] - w * float(c))
                       for v, c in zip(xs, x0)) <= t)
    M.setObjective(t, "minimize")
    try:
        with quiet_native_output():
            M.optimize()
    except Exception:  # SCIP's LP solver gave up (numerical trouble): nothing certified
        return 0.0, math.inf, None
    status = M.getStatus()
    if status == "infeasible":
        return math.inf, math.inf, None
    dual = max(float(M.getDualbound()), 0.0)
    if M.getNSols() == 0:
        return scale * math.sqrt(dual), math.inf, None
    sol = M.getBestSol()
    x = np.array([sol[v] for v in vs])
    primal = max(float(M.getObjVal()), 0.0)  # a squared distance: below 0 only by round-off
    return scale * math.sqrt(min(dual, primal)), scale * math.sqrt(primal), x


def _verified_point(net: Network, x0: Tensor, x: Tensor, y: int, lo: Tensor, hi: Tensor
                    ) -> Tensor | None:
    """``x`` or a point just beyond it on the ray from ``x0``, clipped to the box, that the model
    misclassifies (float64), or ``None``."""
    d = x - x0
    for s in (1.0, 1 + 1e-9, 1 + 1e-7, 1 + 1e-5, 1 + 1e-3):
        z = torch.minimum(torch.maximum(x0 + s * d, lo), hi)
        if int(net.forward(z[None]).argmax(1)) != y:
            return z
    return None


@torch.no_grad()
def exact_distance(model: nn.Module | Network, x: Tensor, x_known: Tensor, *, norm: str = "l2",
                   box: tuple[float, float] | None = None, time_limit: float = 10.0,
                   gap_tol: float = 1e-4, in_shape: Sequence[int] | None = None,
                   prune: bool = True) -> Exact:
    """Minimal adversarial distance of the predicted class at each point (see module docstring).

    Args:
        model: a ReLU / max-pool network. x: points ``(B, ...)``.
        x_known: ``(B, ...)`` a misclassified point per sample (e.g. the attack's
            ``x_adv``): its distance ``U`` bounds the search domain ``[x₀ − U, x₀ + U] ∩ box``
            and is the upper end of the bracket until the solver finds a closer point.
        norm: ``"l2"`` (SCIP), ``"linf"`` or ``"l1"`` (HiGHS).
        box: input box or ``None``. time_limit: seconds per target class (L2: CPU seconds of
            SCIP, so that a loaded machine does not close fewer programs).
        gap_tol: relative gap under which a point counts as ``"solved"``.
        in_shape: per-sample input shape when ``model`` has no ``in_shape``.
        prune: every norm: solve the known point's class first and shrink the domain (and
            skip the classes CROWN excludes from it) whenever a closer point is found; L2
            also: bound the neurons over the L2 ball and cap each program's objective at the
            closest distance found so far. The same minimum (to the solver's tolerance), with fewer
            binaries and far fewer nodes. ``False``: one domain of radius ``U`` for every class,
            no cap (the reference).

    Returns:
        :class:`Exact`.

    Raises:
        ValueError: ``x_known[i]`` is not misclassified, or a tanh layer.
    """
    net = model if isinstance(model, Network) else network(model, in_shape or x.shape[1:])
    if not net.piecewise_linear:
        raise ValueError("exact distances need a piecewise-linear network (no tanh)")
    if norm not in ("l2", "linf", "l1"):
        raise ValueError(f"norm must be 'l2', 'linf' or 'l1', got {norm!r}")
    xf = x.flatten(1).to(DT).cpu()
    xk = x_known.flatten(1).to(DT).cpu()
    logits = net.forward(xf)
    pred = logits.argmax(1)
    K = logits.shape[1]
    B = len(xf)
    lower, upper = np.zeros(B), np.zeros(B)
    secs, nbin = np.zeros(B), np.zeros(B, dtype=int)
    status: list[str] = []
    x_adv = xf.clone()
    for i in range(B):
        t0 = time.perf_counter()
        x0, y = xf[i], int(pred[i])
        known = int(net.forward(xk[i][None]).argmax(1))
        if known == y:
            raise ValueError(f"x_known[{i}] is classified as the point itself")
        lo_b, hi_b = _box(x0, box)
        U = _dist(xk[i] - x0, norm)
        best_u, best_x = U, xk[i].clone()
        low = U
        spec_all = _spec(net, y, K)
        others = [j for j in range(K) if j != y]
        # the known point's class first (its program usually finds the minimum, and a closer
        # point shrinks the domain of the classes after it), then the most likely to win
        radius = U
        lo_in, hi_in, bounds, spec_low = _domain(net, x0, radius, norm, lo_b, hi_b, spec_all,
                                                 ball=prune)
        order = (sorted(range(len(others)),
                        key=lambda r: (others[r] != known, float(spec_low[r])))
                 if prune else range(len(others)))
        for r in order:
            j = others[r]
            if prune and best_u < radius:  # every closer point lies in the smaller domain
                radius = best_u
                lo_in, hi_in, bounds, spec_low = _domain(net, x0, radius, norm, lo_b, hi_b,
                                                         spec_all)
            if float(spec_low[r]) > 0:  # no class-j point within `radius`
                continue
            P, xs, logit_expr, n_b = _encode(net, x0.numpy(), lo_in.numpy(), hi_in.numpy(),
                                             bounds)
            nbin[i] = max(nbin[i], n_b)
            coef: dict[int, float] = {}
            for e, s in ((logit_expr[j], 1.0), (logit_expr[y], -1.0)):
                for v, c in e.items():
                    coef[v] = coef.get(v, 0.0) + s * c
            const = coef.pop(-1, 0.0)
            P.row(coef, -const, math.inf)                 # f_j − f_y ≥ 0
            if norm == "l2":
                lo_j, up_j, sol = _solve_scip(P, xs, x0.numpy(), time_limit, max(U, 1e-12),
                                              radius=radius if prune else math.inf)
            else:
                obj_vars = _objective(P, xs, x0.numpy(), norm, lo_in.numpy(), hi_in.numpy())
                obj = {obj_vars: 1.0} if isinstance(obj_vars, int) else dict.fromkeys(obj_vars, 1.0)
                lo_j, up_j, sol = _solve_highs(P, obj, time_limit)
            low = min(low, lo_j)
            if sol is not None:
                cand = _verified_point(net, x0, torch.as_tensor(sol[xs], dtype=DT), y, lo_b, hi_b)
                if cand is not None:
                    dc = _dist(cand - x0, norm)
                    if dc < best_u:
                        best_u, best_x = dc, cand
        low = min(low, best_u)
        lower[i], upper[i] = low, best_u
        x_adv[i] = best_x
        ok = best_u - low <= gap_tol * max(best_u, 1e-12)
        status.append("solved" if ok else "gap")
        secs[i] = time.perf_counter() - t0
    return Exact(lower, upper, status, x_adv, secs, norm, nbin)


def _domain(net: Network, x0: Tensor, radius: float, norm: str, lo_b: Tensor, hi_b: Tensor,
            spec: Tensor, ball: bool = True
            ) -> tuple[Tensor, Tensor, dict[int, tuple[Tensor, Tensor]], Tensor]:
    """The search domain of the points within ``radius`` of ``x0`` in the box, and CROWN bounds
    over it: ``(lo_in, hi_in, {layer: (lower, upper)}, lower bounds of spec · logits)``.

    ``[lo_in, hi_in]`` is the L∞ ball of ``radius`` clipped to the box (it holds every point
    within ``radius`` in any L_p norm, as ‖·‖∞ ≤ ‖·‖_p). For L2 the bounds are also computed over
    the L2 ball itself (within that box; with ``ball``) and the two are intersected: both are sound over the
    ball, and the ball's are far tighter in many dimensions (‖w‖₂ against ‖w‖₁ per row), so more
    ReLUs are stable (no binary) and the big-M constants are smaller. The program then holds the
    true network on the ball only: a point outside it is at distance > ``radius`` and the L2
    program's objective is capped at ``radius`` (:func:`_solve_scip`), so it cannot be chosen.
    """
    lo_in = torch.maximum(lo_b, x0 - radius)
    hi_in = torch.minimum(hi_b, x0 + radius)
    bounds, low = _domain_bounds(net, lo_in, hi_in, spec)
    if norm == "l2" and ball:
        in_ball, ball_low = crown_bounds(net, x0, radius, "l2", (lo_in, hi_in), spec)
        bounds = {k: (torch.maximum(lo, in_ball[k][0]), torch.minimum(up, in_ball[k][1]))
                  for k, (lo, up) in bounds.items()}
        bounds = {k: (lo, torch.maximum(up, lo)) for k, (lo, up) in bounds.items()}
        low = torch.maximum(low, ball_low)
        first = next(iter(bounds), None)
        if first == 1 and isinstance(net.layers[0], Affine):  # the first layer: a tighter bound
            A, b = net.layers[0].dense(), net.layers[0].bias
            lo1 = _ball_box_min(A, x0, radius, lo_in, hi_in) + b
            up1 = -_ball_box_min(-A, x0, radius, lo_in, hi_in) + b
            lo, up = bounds[1]
            lo, up = torch.maximum(lo, lo1), torch.minimum(up, up1)
            bounds[1] = (lo, torch.maximum(up, lo))
    return lo_in, hi_in, bounds, low


def _ball_box_min(A: Tensor, x0: Tensor, radius: float, lo: Tensor, hi: Tensor,
                  n_lambda: int = 400) -> Tensor:
    """A lower bound of ``min a·x`` over ``{‖x − x₀‖₂ ≤ radius} ∩ [lo, hi]`` for each row ``a``
    of ``A`` ``(R, d)``: the best Lagrangian dual value over a log grid of multipliers λ.

    For any λ > 0, ``g(λ) = min over the box of a·x + λ(‖x − x₀‖² − radius²)`` is below the
    minimum (weak duality), and it separates by coordinate: ``x_i = clip(x₀_i − a_i/(2λ))``.
    The problem is convex with a Slater point (x₀), so the best λ gives the minimum itself; the
    grid gives a sound value within a hair of it. CROWN's concretisation takes the larger of the
    ball and the box minima, which is far looser when the box cuts the ball (pixels at 0).
    """
    scale = A.norm(dim=1, keepdim=True).clamp_min(1e-30) / max(radius, 1e-30)
    lam = scale[:, :, None] * torch.logspace(-4, 4, n_lambda, dtype=A.dtype)[None, None, :] / 2
    xs = (x0[None, :, None] - A[:, :, None] / (2 * lam)).clamp(lo[None, :, None], hi[None, :, None])
    g = ((A[:, :, None] * xs).sum(1) + (lam[:, 0] * (((xs - x0[None, :, None]) ** 2).sum(1)
                                                    - radius ** 2)))
    box_min = A.clamp_min(0) @ lo + A.clamp_max(0) @ hi  # the λ → 0 limit
    return torch.maximum(g.max(1).values, box_min)


def _domain_bounds(net: Network, lo_in: Tensor, hi_in: Tensor, spec: Tensor
                   ) -> tuple[dict[int, tuple[Tensor, Tensor]], Tensor]:
    """CROWN bounds over the box ``[lo_in, hi_in]`` (an L∞ ball around its centre clipped to
    that box)."""
    centre = (lo_in + hi_in) / 2
    half = float(((hi_in - lo_in) / 2).max())
    bounds, low = crown_bounds(net, centre, half, "linf", (lo_in, hi_in), spec)
    return bounds, low
