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
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy import stats as sps
from torch import nn

from analysis import attacks, cache, data
from analysis import verify as V

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
    # mnist7 (49 inputs, 20 ReLUs): SCIP needs about 110 s per point here, so 3 points at full
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
    full (10 points; mnist7 3 points) about 7 min, nearly all of it mnist7's programs."""
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
