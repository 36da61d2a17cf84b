"""Ground truth for chapters 00 and 03 (issue 15): exact minimal L2 distances on a set of small
ReLU networks, the attacks' ratio to them, and every certificate's ratio to them.

The *exact set*: ReLU MLPs small enough for the mixed-integer programs of
:func:`analysis.verify.exact_distance`:

* ``toy2d``: 3 Gaussian blobs in 2-D (standardised), 2 → 16 → 16 → 3 (32 ReLUs), no box;
* ``iris``: 4 → 8 → 3 (8 ReLUs), standardised features, no box;
* ``wine``: 13 → 10 → 6 → 3 (16 ReLUs), standardised features, no box;
* ``mnist7``: MNIST digits average-pooled 4×4 to 7×7 (49 inputs in [0, 1]), 49 → 20 → 10
  (20 ReLUs), box [0, 1].

Chapter 03's tanh MLPs are not piecewise linear, so they have no exact program; these are their
ReLU twins (same data, ReLU instead of tanh). Distances are L2 in the units of each input
(standardised features; pixels in [0, 1]).

:func:`rank_agreement` gives Spearman's ρ between each bound and the exact distance across
points and across the nets, the evidence of :func:`claim_model_comparison` (Peck: the bounds
can compare models' robustness).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import stats as sps
from torch import nn

from analysis import attacks, cache, claims, data
from analysis import verify as V
from analysis.report import sig3
from analysis.stats import Estimate

DT = torch.float64
NETS: dict[str, dict[str, Any]] = {
    "toy2d": {"widths": (16, 16), "box": None},
    "iris": {"widths": (8,), "box": None},
    "wine": {"widths": (10, 6), "box": None},
    "mnist7": {"widths": (20,), "box": (0.0, 1.0)},
}
ATTACKS = ("deepfool", "cw", "pgd_l2")
SIZES = {  # points per network and SCIP seconds per target class, by profile
    "smoke": {"nets": ("toy2d", "iris"), "points": 3, "time_limit": 5.0},
    # mnist7 (49 inputs, 20 ReLUs): SCIP needed about 110 s per point before the pruned programs
    # of analysis.verify.exact_distance (issue 14); the chapters print the solve times; 3 points
    "full": {"nets": ("toy2d", "iris", "wine", "mnist7"), "points": 10, "time_limit": 20.0,
             "cap": {"mnist7": 3}},
    "paper": {"nets": ("toy2d", "iris", "wine", "mnist7"), "points": 50, "time_limit": 60.0},
}


def exact_set_data(name: str, seed: int = 0) -> data.Dataset:
    """The data set of one network of the exact set (see module docstring)."""
    if name == "toy2d":
        return data.synthetic("blobs", n=600, dim=2, num_classes=3, sep=2.5, seed=seed)
    if name in ("iris", "wine"):
        return data.load(name, seed=seed)
    if name == "mnist7":
        ds = data.load("mnist", seed=seed)
        pool = nn.AvgPool2d(4)
        return data.Dataset("mnist7x7", ds.source, pool(ds.x_train), ds.y_train,
                            pool(ds.x_test), ds.y_test, ds.classes,
                            note="MNIST average-pooled 4×4 to 7×7")
    raise ValueError(f"unknown exact-set network {name!r}; valid: {sorted(NETS)}")


def exact_set_model(name: str, seed: int = 0, steps: int = 500) -> tuple[nn.Module, data.Dataset]:
    """The ReLU MLP ``name`` of the exact set, trained full-batch (Adam, lr 1e-2, ``steps``
    steps, cross-entropy; cached by :func:`analysis.cache.memo`)."""
    from analysis import models

    ds = exact_set_data(name, seed)
    shape = [int(v) for v in ds.x_train.shape[1:]]
    kw = {"in_shape": shape, "widths": list(NETS[name]["widths"]),
          "num_classes": int(ds.num_classes), "activation": "relu"}

    def compute() -> dict[str, Any]:
        torch.manual_seed(seed)
        model = models.build("mlp", seed=seed, **kw)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(model(ds.x_train), ds.y_train).backward()
            opt.step()
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    state = cache.memo("groundtruth/exact_set_model",
                       {"net": name, "seed": seed, "steps": steps, "kw": kw,
                        "data": ds.fingerprint()}, compute)
    model = models.build("mlp", seed=seed, **kw)
    model.load_state_dict(state)
    return model.eval(), ds


def _points(model: nn.Module, ds: data.Dataset, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` correctly classified test points (float64) and their labels."""
    x = ds.x_test.to(DT)
    y = ds.y_test
    with torch.no_grad():
        ok = model.double()(x).argmax(1) == y
    model.float()
    return x[ok][:n], y[ok][:n]


def study_network(name: str, n_points: int, time_limit: float, seed: int = 0,
                  steps: int = 500) -> dict[str, Any]:
    """Exact L2 distance, each attack, min_norm, IBP, CROWN, Lipschitz margin and Peck's three
    variants at ``n_points`` correctly classified test points of network ``name``.

    Returns:
        A dict of float64 arrays ``(n,)``: ``exact_lower``, ``exact_upper``, ``exact_seconds``,
        ``binaries``, ``solved`` (bool), one per attack (own distance, ``inf`` = failed),
        ``min_norm``, ``ibp``, ``crown``, ``crown_seconds``, ``lipschitz``, ``peck_<variant>``;
        and ``accuracy``, ``relus``.
    """
    from analysis.bounds.peck import rules as peck

    def compute() -> dict[str, Any]:
        model, ds = exact_set_model(name, seed, steps)
        net64 = model.double().eval()
        box = NETS[name]["box"]
        x, y = _points(net64, ds, n_points)
        net64 = net64.double()
        out: dict[str, Any] = {}
        for a in ATTACKS:
            r = attacks.min_norm(net64, x, y, attacks=(a,), box=box, seed=seed)
            out[a] = r.distance.numpy()
        mn = attacks.min_norm(net64, x, y, attacks=ATTACKS, box=box, seed=seed)
        out["min_norm"] = mn.distance.numpy()
        ex = V.exact_distance(net64, x, mn.x_adv, norm="l2", box=box, time_limit=time_limit)
        out.update(exact_lower=ex.lower, exact_upper=ex.upper, exact_seconds=ex.seconds,
                   binaries=ex.binaries.astype(float),
                   solved=np.array([s == "solved" for s in ex.status]))
        hi = torch.as_tensor(ex.upper)
        ibp = V.ibp_radius(net64, x, y, norm="l2", box=box, hi=hi)
        crown = V.crown_radius(net64, x, y, norm="l2", box=box, hi=hi)
        out.update(ibp=ibp.radius, crown=crown.radius, crown_seconds=crown.seconds,
                   lipschitz=V.lipschitz_radius(net64, x).radius)
        for v in peck.VARIANTS:
            out[f"peck_{v}"] = peck.model_mlp_bound(net64, "relu", x.flatten(1), v).bound.numpy()
        with torch.no_grad():
            acc = float((net64(ds.x_test.to(DT)).argmax(1) == ds.y_test).double().mean())
        out["accuracy"] = acc
        out["relus"] = int(sum(NETS[name]["widths"]))
        model.float()
        return out

    key = {"net": name, "n_points": n_points, "time_limit": time_limit, "seed": seed,
           "steps": steps, "widths": list(NETS[name]["widths"]), "attacks": list(ATTACKS)}
    return cache.memo("groundtruth/study_network", key, compute)


def study(profile: str = "smoke", seed: int = 0, nets: Sequence[str] | None = None,
          n_points: int | None = None, time_limit: float | None = None) -> dict[str, dict]:
    """:func:`study_network` for every network of the profile's exact set (sizes in
    :data:`SIZES`, with per-network caps on the points; arguments override them).

    Cost on the 2-CPU reference machine, one thread: smoke (toy2d, iris; 3 points) under 15 s;
    full (10 points; mnist7 3 points) 3 min 11 s in the cold book of 2026-12-02 (6 min before
    the pruned exact programs), most of it mnist7's programs (its solve times are printed)."""
    size = SIZES[profile]
    names = tuple(nets or size["nets"])
    n = int(n_points or size["points"])
    tl = float(time_limit or size["time_limit"])
    cap = size.get("cap", {}) if n_points is None else {}
    return {nm: study_network(nm, min(n, cap.get(nm, n)), tl, seed) for nm in names}


def sound_violations(results: dict[str, dict], tol: float = 1e-6) -> dict[str, int]:
    """Points where a sound certificate exceeds the exact lower end (relative ``tol``)."""
    out = {}
    for b in ("ibp", "crown", "lipschitz", "peck_sound"):
        out[b] = int(sum(np.sum(r[b] > r["exact_lower"] * (1 + tol) + 1e-12)
                         for r in results.values()))
    return out


def attack_ratio_table(results: dict[str, dict]) -> list[dict[str, Any]]:
    """Chapter 00: per attack (and ``min_norm``), attack distance ÷ exact minimum on the solved
    points of all networks: median, share within 1 % and 5 %, share failed."""
    rows = []
    for a in (*ATTACKS, "min_norm"):
        ratios, failed = [], 0
        for r in results.values():
            s = r["solved"]
            d = r[a][s]
            failed += int(np.sum(~np.isfinite(d)))
            ratios += list(d[np.isfinite(d)] / r["exact_upper"][s][np.isfinite(d)])
        q = np.array(ratios)
        n = len(q) + failed
        rows.append({"attack": a, "points": n,
                     "median ratio": float(np.median(q)) if len(q) else math.nan,
                     "max ratio": float(np.max(q)) if len(q) else math.nan,
                     "within 1 %": float(np.mean(q <= 1.01)) * len(q) / n if n else math.nan,
                     "within 5 %": float(np.mean(q <= 1.05)) * len(q) / n if n else math.nan,
                     "failed": failed / n if n else math.nan})
    return rows


BOUNDS = ("peck_published", "peck_corrected", "peck_sound", "lipschitz", "ibp", "crown")


def bound_ratio_table(results: dict[str, dict]) -> list[dict[str, Any]]:
    """Chapter 03: per network, median of each bound ÷ exact minimum (solved points), the
    exact program's size and solve times."""
    rows = []
    for nm, r in results.items():
        s = r["solved"]
        row: dict[str, Any] = {"net": nm, "ReLUs": r["relus"], "points": int(len(s)),
                               "solved": int(s.sum())}
        for b in BOUNDS:
            row[b.replace("peck_", "Peck ")] = float(np.median(r[b][s] / r["exact_upper"][s])) \
                if s.any() else math.nan
        row["median s"] = float(np.median(r["exact_seconds"]))
        row["max s"] = float(np.max(r["exact_seconds"]))
        row["max gap"] = float(np.max((r["exact_upper"] - r["exact_lower"]) / r["exact_upper"]))
        rows.append(row)
    return rows


def rank_correlations(results: dict[str, dict]) -> list[dict[str, Any]]:
    """Spearman's ρ and Kendall's τ (scipy.stats) between each bound and the exact distance
    across the solved points of all networks (pooled)."""
    exact = np.concatenate([r["exact_upper"][r["solved"]] for r in results.values()])
    rows = []
    for b in BOUNDS:
        v = np.concatenate([r[b][r["solved"]] for r in results.values()])
        rho = sps.spearmanr(v, exact)
        tau = sps.kendalltau(v, exact)
        rows.append({"bound": b.replace("peck_", "Peck "), "points": len(v),
                     "spearman": float(rho.statistic), "p (ρ)": float(rho.pvalue),
                     "kendall": float(tau.statistic), "p (τ)": float(tau.pvalue)})
    return rows


def peck_vs_crown(model: nn.Module, x: torch.Tensor, box: tuple[float, float] | None = (0.0, 1.0),
                  steps: int = 8, name: str = "lenet5") -> dict[str, np.ndarray]:
    """Peck's sound chain against CROWN (L2) on a network too large for exact programs, with the
    time per image of each (cached by the weights, the points and ``steps``).

    Returns:
        ``peck_sound``, ``crown``, ``ratio`` (Peck ÷ CROWN), ``deepfool`` (its distance),
        ``peck_seconds``, ``crown_seconds`` ``(n,)``.
    """
    from analysis.bounds.peck import rules as peck

    def compute() -> dict[str, np.ndarray]:
        net = model.double().eval()
        xs = x.to(DT)
        t0 = time.perf_counter()
        ps = peck.chain_bounds(net, xs, "sound").kappa.numpy()
        pt = (time.perf_counter() - t0) / max(len(xs), 1)
        with torch.no_grad():
            y = net(xs).argmax(1)
        # bracket from above by a verified DeepFool distance (CROWN is below every attack)
        df = attacks.deepfool(net, xs, y, box=box).distance("l2")
        hi = torch.where(torch.isfinite(df), df, torch.full_like(df, 10.0))
        cr = V.crown_radius(net, xs, y, norm="l2", box=box, hi=hi, steps=steps, rtol=1e-2,
                            in_shape=xs.shape[1:])
        model.float()
        return {"peck_sound": ps, "crown": cr.radius, "ratio": ps / cr.radius,
                "deepfool": df.numpy(),
                "peck_seconds": np.full(len(xs), pt), "crown_seconds": cr.seconds}

    key = {"name": name, "weights": {k: v.detach().cpu() for k, v in model.state_dict().items()},
           "x": x.detach().cpu(), "box": box, "steps": steps}
    return cache.memo("groundtruth/peck_vs_crown", key, compute)


# ----------------------------------------------------------- rank agreement (model comparison)

#: Bootstrap resamples for :func:`rank_agreement` (percentile intervals at level 0.95).
RANK_RESAMPLES = 9999


def _spearman(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman's ρ along ``axis`` (batched): Pearson's r of the average ranks, equal to
    ``scipy.stats.spearmanr`` wherever that is defined; 0 where ``x`` or ``y`` is constant
    (a sample with one distinct value orders nothing: no association, not NaN)."""
    rx = sps.rankdata(x, axis=axis)
    ry = sps.rankdata(y, axis=axis)
    rx = rx - rx.mean(axis=axis, keepdims=True)
    ry = ry - ry.mean(axis=axis, keepdims=True)
    num = np.sum(rx * ry, axis=axis)
    den = np.sqrt(np.sum(rx * rx, axis=axis) * np.sum(ry * ry, axis=axis))
    ok = den > 1e-12
    return np.where(ok, num / np.where(ok, den, 1.0), 0.0)


def _rho_value(x: np.ndarray, y: np.ndarray) -> float | None:
    """``scipy.stats.spearmanr(x, y)``'s ρ, or None when it is undefined (n < 2, constant)."""
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(sps.spearmanr(x, y).statistic)


def _rho_estimate(value: float | None, replicates: np.ndarray | None, n: int, method: str,
                  note: str = "", level: float = 0.95) -> Estimate:
    """An :class:`~analysis.stats.Estimate` of ρ from its bootstrap replicates (percentile)."""
    if value is None:
        return Estimate(0.0, -1.0, 1.0, level, max(n, 1), 1, method, True,
                        "fewer than two distinct values: ρ undefined, no ordering (shown as 0 "
                        "with the whole range [-1, 1])")
    value = min(1.0, max(-1.0, value))  # rounding can put |ρ| a hair above 1
    replicates = np.clip(replicates, -1.0, 1.0)
    alpha = (1 - level) / 2
    low, high = (float(v) for v in np.quantile(replicates, [alpha, 1 - alpha]))
    degenerate = bool(np.ptp(replicates) <= 1e-12)
    if degenerate:
        note = "; ".join(s for s in (note, "the bootstrap distribution has no spread") if s)
    return Estimate(value, min(low, value), max(high, value), level, n, 1, method, degenerate,
                    note)


def _points_rho(bound: np.ndarray, exact: np.ndarray, rng: np.random.Generator) -> Estimate:
    """ρ across points with a paired percentile bootstrap (``scipy.stats.bootstrap``)."""
    value = _rho_value(bound, exact)
    if value is None:
        return _rho_estimate(None, None, len(bound), "paired bootstrap, percentile")
    res = sps.bootstrap((bound, exact), _spearman, paired=True, vectorized=True,
                        method="percentile", n_resamples=RANK_RESAMPLES, rng=rng)
    return _rho_estimate(value, res.bootstrap_distribution, len(bound),
                         "paired bootstrap (scipy.stats.bootstrap), percentile")


def _models_rho(bound: list[np.ndarray], exact: list[np.ndarray],
                rng: np.random.Generator) -> tuple[Estimate, float]:
    """ρ between the per-net medians of the bound and of the exact distance, with a two-stage
    percentile bootstrap (nets with replacement, then each net's points with replacement, one
    point draw per net and replicate so a net drawn twice is an exact tie, never a spurious
    discordant pair; a replicate that draws one distinct net orders nothing and counts as
    ρ = 0), and the exact one-sided permutation p-value of ρ > 0
    (``scipy.stats.permutation_test``, pairings: all k! orders for k ≤ 7 nets)."""
    k = len(bound)
    med_b = np.array([np.median(b) for b in bound])
    med_e = np.array([np.median(e) for e in exact])
    value = _rho_value(med_b, med_e)
    method = "two-stage bootstrap (nets, then points), percentile"
    note = f"n = {k} nets: the interval covers which nets and which points were drawn"
    if value is None:
        return _rho_estimate(None, None, k, method), 1.0
    per_net_b = np.empty((RANK_RESAMPLES, k))
    per_net_e = np.empty((RANK_RESAMPLES, k))
    for j, (b, e) in enumerate(zip(bound, exact, strict=True)):
        idx = rng.integers(0, len(b), size=(RANK_RESAMPLES, len(b)))
        per_net_b[:, j] = np.median(b[idx], axis=1)
        per_net_e[:, j] = np.median(e[idx], axis=1)
    pick = rng.integers(0, k, size=(RANK_RESAMPLES, k))
    rows = np.arange(RANK_RESAMPLES)[:, None]
    reps, reps_e = per_net_b[rows, pick], per_net_e[rows, pick]
    estimate = _rho_estimate(value, _spearman(reps, reps_e), k, method, note)
    # permuting one sample enumerates every pairing: k! orders, exact for k <= 7
    perm = sps.permutation_test((med_b,), lambda x, axis=-1: _spearman(x, med_e, axis),
                                permutation_type="pairings", vectorized=True,
                                alternative="greater", rng=rng)
    return estimate, float(perm.pvalue)


@dataclass(frozen=True)
class RankAgreement:
    """How well each bound orders points and nets as the exact minimal distance does.

    The exact distance is ``exact_upper`` on the *solved* points only: there the program closed
    its bracket (lower = upper to the solver's tolerance) and ``exact_upper`` is the distance of
    a verified misclassified point, so it is the minimum itself. On an unsolved point the
    bracket's midpoint is neither a measured distance nor a bound, and ranking by it would mix
    the solver's gap into the correlation, so those points are left out and counted in
    ``unsolved`` (the programs SCIP could not close in its time limit, so the solved set may
    lean to the easier points).

    Attributes:
        nets: the networks with at least one solved point, in ``results`` order.
        solved: solved (used) points per net.
        unsolved: points per net left out because their bracket did not close.
        points: ``points[bound][net]`` Spearman's ρ across that net's solved points, and
            ``points[bound]["pooled"]`` across the solved points of all nets together (which
            mixes the nets' input units: between-net differences take part in it); each an
            :class:`~analysis.stats.Estimate` with a paired percentile bootstrap interval.
        models: ``models[bound]``: ρ across nets between the net's median bound and its median
            exact distance (``n_points`` = number of nets), two-stage bootstrap interval.
        models_p: ``models_p[bound]``: exact one-sided permutation p-value of that ρ > 0
            (with k nets the smallest possible is 1/k!: 0.5 for 2 nets, 1/24 for 4).
        medians: ``medians[net]``: the median exact distance (``"exact"``) and of each bound.
    """

    nets: tuple[str, ...]
    solved: dict[str, int]
    unsolved: dict[str, int]
    points: dict[str, dict[str, Estimate]]
    models: dict[str, Estimate]
    models_p: dict[str, float]
    medians: dict[str, dict[str, float]]


def rank_agreement(results: dict[str, dict], bounds: Sequence[str] = BOUNDS,
                   seed: int = 0) -> RankAgreement:
    """Spearman's ρ between each bound and the exact minimal distance, across points (per net
    and pooled) and across models (per-net medians), with bootstrap intervals (level 0.95).

    The evidence for Peck's "the bounds can be used to compare models" (see
    :func:`claim_model_comparison`). No model is evaluated: one bootstrap of 9999 resamples per
    bound and net, pooled and across nets, plus an exact permutation test per bound (seconds).

    Args:
        results: :func:`study` output (or any dict of per-net dicts with ``exact_upper``,
            ``solved`` and one array per bound).
        bounds: the bounds to rank (keys of each per-net dict); default :data:`BOUNDS`.
        seed: seed of the bootstrap and permutation draws.

    Returns:
        A :class:`RankAgreement`.

    Raises:
        ValueError: no network has a solved point (nothing to rank).
    """
    rng = np.random.default_rng(seed)
    solved = {nm: np.asarray(r["solved"], bool) for nm, r in results.items()}
    nets = tuple(nm for nm, s in solved.items() if s.any())
    if not nets:
        raise ValueError(f"rank_agreement: no solved point in {sorted(results)}: the exact "
                         "distance is unknown everywhere, nothing to rank")
    exact = {nm: np.asarray(results[nm]["exact_upper"], float)[solved[nm]] for nm in nets}
    points: dict[str, dict[str, Estimate]] = {}
    models: dict[str, Estimate] = {}
    models_p: dict[str, float] = {}
    for b in bounds:
        vals = {nm: np.asarray(results[nm][b], float)[solved[nm]] for nm in nets}
        points[b] = {nm: _points_rho(vals[nm], exact[nm], rng) for nm in nets}
        points[b]["pooled"] = _points_rho(np.concatenate([vals[nm] for nm in nets]),
                                          np.concatenate([exact[nm] for nm in nets]), rng)
        models[b], models_p[b] = _models_rho([vals[nm] for nm in nets],
                                             [exact[nm] for nm in nets], rng)
    medians = {nm: {"exact": float(np.median(exact[nm])),
                    **{b: float(np.median(np.asarray(results[nm][b], float)[solved[nm]]))
                       for b in bounds}} for nm in nets}
    return RankAgreement(nets, {nm: int(solved[nm].sum()) for nm in nets},
                         {nm: int((~s).sum()) for nm, s in solved.items()}, points, models,
                         models_p, medians)


def _rho_text(e: Estimate) -> str:
    return f"{sig3(e.value)} [{sig3(e.low)}, {sig3(e.high)}]"


def rank_agreement_table(agreement: RankAgreement) -> list[dict[str, Any]]:
    """One row per bound: ρ across points per net and pooled, ρ across models with the number
    of nets and the permutation p-value (ρ as ``value [low, high]``, 95 % bootstrap)."""
    rows = []
    for b, per in agreement.points.items():
        row: dict[str, Any] = {"bound": b.replace("peck_", "Peck ")}
        row.update({f"ρ {nm}": _rho_text(per[nm]) for nm in agreement.nets})
        row["ρ pooled points"] = _rho_text(per["pooled"])
        row["ρ across nets"] = _rho_text(agreement.models[b])
        row["nets"] = len(agreement.nets)
        row["p (perm.)"] = agreement.models_p[b]
        rows.append(row)
    return rows


def claim_model_comparison(agreement: RankAgreement, section: str,
                           bound: str = "peck_sound") -> claims.Claim:
    """Peck's "one can use [the bounds] to compare different models with respect to their
    robustness ... and select the model that scores the highest" (the summary's §1, again in
    its §7 and in the thesis's Chapter 6 under "model selection"), judged on the across-models
    ρ of ``bound``.

    The rule is :func:`analysis.claims.at_least` with threshold 0, chosen from the claim's
    wording before any number was seen: the document states no strength of agreement, only that
    the bound can stand in for the robustness when models are compared. The weakest reading
    under which that means anything is that ordering the models by the bound agrees with
    ordering them by their true robustness (the median exact minimal distance) better than a
    random order would: Spearman's ρ > 0 (ρ = 0 is what a bound unrelated to robustness gives).
    Reproduced when the whole 95 % interval lies above 0 *and* the exact permutation test of the
    nets' order gives p ≤ 0.025 (:func:`analysis.claims.at_least_tested`): with 4 nets a
    perfect order can survive every resample (interval [1, 1]) while p = 1/24 at best, so 4 nets
    cannot decide it and 5 (p = 1/120) can; not reproduced when the interval lies below 0;
    inconclusive otherwise (2 nets are in the same order by chance half the time). The
    across-points ρ is context in the note, not the decision: the document claims a comparison
    of models, not of points.

    The judged bound is Peck's ``sound`` chain (on ReLU nets ``corrected`` falls back to it):
    the claim rests on the bounds being guaranteed lower bounds, and the ``published`` formula
    is not one on ReLU nets (erratum E5); its ρ is in :func:`rank_agreement_table`.

    Caveat (in the note): the exact set's nets solve different tasks in different input units,
    so "across models" here compares robustness across tasks, a proxy for the document's
    setting of several models of one task; several nets of one task would be the direct test.

    Args:
        agreement: :func:`rank_agreement` output.
        section: the MyST label of the section that shows the evidence.
        bound: the bound judged (a key of ``agreement.models``).

    Returns:
        A :class:`analysis.claims.Claim`.
    """
    est = agreement.models[bound]
    pooled = agreement.points[bound]["pooled"]
    name = bound.replace("peck_", "Peck ")
    note = (f"{name}: ρ between the per-net median bound and median exact L2 distance over "
            f"n = {len(agreement.nets)} nets ({', '.join(agreement.nets)}; exact permutation "
            f"p = {agreement.models_p[bound]:.3g}); threshold 0 = orders the nets better than "
            f"a random order; the nets solve different tasks (a proxy for models of one task); "
            f"across the solved points pooled ρ = {_rho_text(pooled)}")
    return claims.Claim("Summary §1, §7 (thesis Ch 6): the bounds can compare models' "
                        "robustness (model selection)", "bounds rank models by robustness",
                        claims.at_least_tested(est, 0.0, agreement.models_p[bound],
                                               test="exact permutation test across nets"),
                        section=section, note=note)
