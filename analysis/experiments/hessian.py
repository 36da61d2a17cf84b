"""Chapter 05 (Mustafa, Vandermeulen & Kloft 2020): one function per computation a section shows.

Each function returns a small result (a dataclass with named fields, a dict of them, or a
DataFrame whose columns are documented) and caches what is expensive through
:func:`analysis.cache.memo` with a key made of the parameters it uses (model weights, points,
attack or estimator settings), not the whole config. Trained models come from
:func:`analysis.train.fit` (cached by its own key), so claims share them.

Units: inputs are standardised (``z = (x_px − μ)/σ``, erratum E13); L2 radii, gradients and
Hessians are in those units (``ε_px = σ ε``, ``H_px = H / σ²``); times in seconds.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from analysis import attacks, cache, claims, data, report, stats, train
from analysis import verify as V
from analysis.bounds import hessian as hb
from analysis.models.swish import SwishCNN
from analysis.regularizers import crossholder as ch

__all__ = [
    "HP", "MODELS", "TITLES", "ChapterData", "load_data", "model_kwargs", "defence", "seeds_of",
    "train_defences", "warm_crossholder",
    "robust_curves", "defence_curves", "all_norm_estimates", "recovered",
    "accuracy_table", "sum_difference", "accuracy_at", "norm_estimates", "norm_table",
    "log_ratio", "Fig3", "fig3", "estimator_table", "TimingResult", "step_times",
    "WarmQuality", "warm_start_quality", "Certificate", "certify_mlps", "certificate_table",
    "certified_mlps", "TwinCertificate", "crown_certify", "certify_relu_twins", "tightness_table",
    "relative_tightness", "tightness_lines",
    "verdict_table", "errata", "beats", "lowers", "STEM", "TITLE", "TIMED", "clean_accuracy",
    "training_table", "training_cost", "undefended_fig3", "claims_robustness", "claims_norms",
    "claims_certificate_and_cost", "verdicts", "mean_clean_accuracy",
]

#: The document's selected hyper-parameters (App. C.2.1): AT's ε, CL's λ1, CH's (λ1, λ2).
HP = {"mnist": {"AT": 5.0, "CL": 0.2, "CH": (0.02, 0.5)},
      "fashion_mnist": {"AT": 4.0, "CL": 0.15, "CH": (0.2, 0.5)}}
MODELS = ("plain", "CL", "CH", "AT")
TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}
STEM = "05_hessian_crossholder"  # the chapter's name in the verdict and errata records
TITLE = "Input Hessian regularisation (Cross-Hölder)"


def _state(model: torch.nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------------------- data


@dataclass
class ChapterData:
    """The two standardised data sets.

    Attributes:
        sets: name → standardised :class:`~analysis.data.Dataset` (training subsample).
        info: name → ``{"mean", "std", "box"}`` of :func:`ch.standardize_images`.
        raw: name → the data set as loaded (pixels in [0, 1], before subsampling).
    """

    sets: dict[str, data.Dataset]
    info: dict[str, dict[str, Any]]
    raw: dict[str, data.Dataset]

    def test_points(self, name: str, n: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """The first ``n`` test points of a set, on ``device``."""
        ds = self.sets[name]
        return ds.x_test[:n].to(device), ds.y_test[:n].to(device)


def load_data(cfg: Mapping[str, Any]) -> ChapterData:
    """MNIST (``data_source``) and Fashion-MNIST (``fmnist_source``), subsampled and standardised.

    Uses ``cfg``: ``data_source``, ``fmnist_source``, ``seed``, ``mnist_n_train``,
    ``fmnist_n_train``.
    """
    raw = {"mnist": data.load("mnist", source=cfg["data_source"], seed=cfg["seed"]),
           "fashion_mnist": data.load("fashion_mnist", source=cfg["fmnist_source"])}
    n_train = {"mnist": cfg["mnist_n_train"], "fashion_mnist": cfg["fmnist_n_train"]}
    sets, info = {}, {}
    for name, ds in raw.items():
        k = min(n_train[name], len(ds.y_train))
        sub = ds.subset(n_train=None if k == len(ds.y_train) else k, seed=cfg["seed"])
        sets[name], info[name] = ch.standardize_images(sub)
    return ChapterData(sets, info, raw)


# --------------------------------------------------------------------------------- training


def model_kwargs(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments of the chapter's SWISH CNN (``width``, ``fc``)."""
    return {"in_shape": [1, 28, 28], "num_classes": 10, "width": cfg["width"], "fc": cfg["fc"]}


def defence(name: str, model: str, cfg: Mapping[str, Any], box: tuple[float, float]
            ) -> dict[str, Any]:
    """Fresh ``train.fit`` arguments of one defence (a new regulariser per training run).

    Cross-Hölder trains with the warm-started power iteration (``ch_iters`` steps at an
    example's first visit, ``ch_warm_iters`` afterwards) as one objective that shares the
    cross-entropy's forward pass; AT is L2 PGD with ``at_steps`` steps at the document's ε.
    """
    hp = HP[name]
    if model == "plain":
        return {}
    if model == "CL":
        return {"regularizer": ch.CrossLipschitz(hp["CL"], classes=cfg["ch_classes"])}
    if model == "CH":
        return {"objective": ch.CrossHolderObjective(warm_crossholder(
            hp["CH"], cfg["ch_iters"], cfg["ch_warm_iters"], classes=cfg["ch_classes"]))}
    if model == "AT":
        return {"objective": ch.PGDTraining(hp["AT"], cfg["at_steps"], box)}
    raise ValueError(f"unknown defence {model!r}; one of {MODELS}")


def warm_crossholder(lam: tuple[float, float], iters: int, warm_iters: int,
                     classes: str | int = 1) -> ch.CrossHolder:
    """The chapter's Cross-Hölder regulariser: warm-started power iteration, ``iters`` steps at
    the first visit of an (example, class) pair, ``warm_iters`` steps at the later ones."""
    return ch.CrossHolder(*lam, classes=classes, iters=iters, warm_start=True,
                          warm_iters=warm_iters)


def seeds_of(cfg: Mapping[str, Any]) -> list[int]:
    """The training seeds: ``seed, seed + 1, …`` (``n_seeds`` of them)."""
    return [cfg["seed"] + i for i in range(cfg["n_seeds"])]


def train_defences(cfg: Mapping[str, Any], chd: ChapterData, device: torch.device
                   ) -> dict[tuple[str, str, int], train.TrainResult]:
    """Every defence on both data sets for every seed (cached by :func:`train.fit`).

    Adam 1e-3, ``epochs``, ``batch_size`` (the document gives none of them, E14). The models
    are evaluated after the last epoch only (``eval_every_epoch=False``: the chapter uses no
    per-epoch accuracy, and evaluating does not change the weights).

    Returns:
        ``(data name, model, seed)`` → :class:`~analysis.train.TrainResult`.
    """
    out = {}
    for seed in seeds_of(cfg):
        tcfg = train.TrainConfig(epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=1e-3,
                                 seed=seed)
        for name, ds in chd.sets.items():
            for m in MODELS:
                out[name, m, seed] = train.fit(
                    "swish_cnn", model_kwargs(cfg), ds, tcfg, device=device,
                    desc=f"{TITLES[name]} {m} seed {seed}", eval_every_epoch=False,
                    **defence(name, m, cfg, chd.info[name]["box"]))
    return out


def clean_accuracy(cfg: Mapping[str, Any], chd: ChapterData,
                   trained: Mapping[tuple[str, str, int], train.TrainResult],
                   device: torch.device) -> dict[tuple[str, str, int], float]:
    """Clean accuracy (:func:`train.accuracy`) of every trained model on the first ``n_test``
    test points of its data set, keyed like ``trained``."""
    test = {n: chd.test_points(n, cfg["n_test"], device) for n in chd.sets}
    return {k: train.accuracy(r.model, *test[k[0]]) for k, r in trained.items()}


def mean_clean_accuracy(clean: Mapping[tuple[str, str, int], float], name: str
                        ) -> dict[str, float]:
    """Model → mean over seeds of :func:`clean_accuracy` on data set ``name``."""
    return {m: float(np.mean([v for k, v in clean.items() if k[:2] == (name, m)]))
            for m in MODELS}


def training_table(trained: Mapping[tuple[str, str, int], train.TrainResult]) -> pd.DataFrame:
    """One row per training run: ``data``, ``model``, ``seed``, ``train s`` (seconds),
    ``cached`` (whether it came from the cache); numbers at 3 significant figures."""
    return report.table([{"data": TITLES[n], "model": m, "seed": s, "train s": r.seconds,
                          "cached": r.from_cache} for (n, m, s), r in trained.items()])


# ----------------------------------------------------------------------- robustness curves


def robust_curves(model: torch.nn.Module, x: Tensor, y: Tensor, eps: Sequence[float], *,
                  steps: int, restarts: int, box: tuple[float, float], seed: int
                  ) -> ch.RobustCurves:
    """:func:`ch.robust_curves` cached by the weights, points and attack settings."""
    kw = {"steps": steps, "restarts": restarts, "box": [float(b) for b in box], "seed": seed}
    key = {"state": _state(model), "x": x.cpu(), "y": y.cpu(), "eps": [float(e) for e in eps],
           **kw}
    out = cache.memo("ch05/robust_curves", key, lambda: ch.robust_curves(
        model, x, y, eps, batch_size=500, progress=True, **{**kw, "box": tuple(box)}).as_dict())
    return ch.RobustCurves(**out)


def defence_curves(cfg: Mapping[str, Any], chd: ChapterData,
                   trained: Mapping[tuple[str, str, int], train.TrainResult],
                   device: torch.device) -> dict[tuple[str, str, int], ch.RobustCurves]:
    """PGD-CE / PGD-CW curves of every trained model on the first ``n_test`` test points.

    Uses ``cfg``: ``n_test``, ``eps``, ``pgd_steps``, ``pgd_restarts``, ``seed`` (the attack's).
    """
    out = {}
    for (name, m, s), res in trained.items():
        x, y = chd.test_points(name, cfg["n_test"], device)
        out[name, m, s] = robust_curves(res.model, x, y, cfg["eps"], steps=cfg["pgd_steps"],
                                        restarts=cfg["pgd_restarts"],
                                        box=chd.info[name]["box"], seed=cfg["seed"])
    return out


def _alive(rc: ch.RobustCurves, kind: str) -> np.ndarray:
    """Per-point survival ``(E, N)`` under ``kind``: ``"ce"``, ``"cw"`` or ``"per_example"``."""
    if kind == "ce":
        return rc.alive_ce
    if kind == "cw":
        return rc.alive_cw
    if kind == "per_example":
        return rc.alive_ce & rc.alive_cw
    raise ValueError(f"kind must be 'ce', 'cw' or 'per_example', got {kind!r}")


def accuracy_table(curves: Mapping[tuple[str, str, int], ch.RobustCurves]) -> pd.DataFrame:
    """Per-example worst-case accuracy per ε, mean over seeds.

    Columns: ``data``, ``model``, ``seeds``, ``clean``, then one column ``ε=<e>`` per radius.
    """
    rows: dict[tuple[str, str], list[ch.RobustCurves]] = {}
    for (n, m, _), rc in curves.items():
        rows.setdefault((n, m), []).append(rc)
    out = []
    for (n, m), rcs in rows.items():
        r = {"data": TITLES[n], "model": m, "seeds": len(rcs),
             "clean": float(np.mean([rc.clean for rc in rcs]))}
        r.update({f"ε={e:g}": float(np.mean([rc.per_example[i] for rc in rcs]))
                  for i, e in enumerate(rcs[0].eps)})
        out.append(r)
    return pd.DataFrame(out)


def _select(eps: np.ndarray, above: float | None, up_to: float | None) -> np.ndarray:
    sel = np.ones(eps.shape, dtype=bool)
    if above is not None:
        sel &= eps > above
    if up_to is not None:
        sel &= eps <= up_to
    if not sel.any():
        raise ValueError(f"no radius in the selection (above {above}, up to {up_to}) of {eps}")
    return sel


def sum_difference(curves: Mapping[tuple[str, str, int], ch.RobustCurves], name: str, a: str,
                   b: str, *, above: float | None = None, up_to: float | None = None,
                   kind: str = "per_example") -> stats.Estimate:
    """Paired difference of the summed accuracies, ``Σ_ε acc_a(ε) − Σ_ε acc_b(ε)``.

    Per seed and per test point the difference of the number of selected radii the point
    survives under models ``a`` and ``b`` (same seed, same points), then
    :func:`stats.two_stage_bootstrap` over seeds × points.

    Args:
        curves: output of :func:`defence_curves`.
        name: data set. a, b: models.
        above: radii ``ε > above`` (None: no lower limit). up_to: radii ``ε ≤ up_to``.
        kind: ``"per_example"`` (the point must survive both attacks), ``"ce"`` or ``"cw"``.
    """
    seeds = sorted({s for (n, m, s) in curves if n == name and m == a})
    per_seed = []
    for s in seeds:
        ra, rb = curves[name, a, s], curves[name, b, s]
        sel = _select(ra.eps, above, up_to)
        per_seed.append(_alive(ra, kind)[sel].sum(axis=0).astype(float)
                        - _alive(rb, kind)[sel].sum(axis=0).astype(float))
    return stats.two_stage_bootstrap(per_seed)


def accuracy_at(curves: Mapping[tuple[str, str, int], ch.RobustCurves], name: str, model: str,
                eps: float, kind: str = "per_example") -> stats.Estimate:
    """Accuracy under attack at the radius ``eps`` (seeds × points, two-stage bootstrap)."""
    per_seed = []
    for (n, m, _), rc in sorted(curves.items(), key=lambda kv: kv[0]):
        if n == name and m == model:
            i = int(np.flatnonzero(np.isclose(rc.eps, eps))[0])
            per_seed.append(_alive(rc, kind)[i].astype(float))
    return stats.two_stage_bootstrap(per_seed)


# ------------------------------------------------------------------- Hessian-norm estimates


def norm_estimates(model: torch.nn.Module, x: Tensor, *, power_iters: int, seed: int,
                   pixel_scale: float) -> dict[str, Tensor]:
    """:func:`hb.hessian_norm_estimates` (T = 10, o = 0.1 for Alg. 1's ascent), cached.

    Returns the dict of ``(N,)`` CPU tensors documented there (``hv_star``, ``hg``, ``ascent``,
    ``ascent_px``, ``power_short``, ``random``, ``grad_norm``, ...).
    """
    kw = {"power_iters": power_iters, "ascent_iters": 10, "ascent_step": 0.1,
          "short_power_iters": 10, "seed": seed, "batch_size": 250, "pixel_scale": pixel_scale}
    key = {"state": _state(model), "x": x.cpu(), **kw}
    return cache.memo("ch05/hessian_norms", key, lambda: {
        k: v.cpu() for k, v in hb.hessian_norm_estimates(model, x, **kw).items()})


def all_norm_estimates(cfg: Mapping[str, Any], chd: ChapterData,
                       trained: Mapping[tuple[str, str, int], train.TrainResult],
                       device: torch.device) -> dict[tuple[str, str, int], dict[str, Tensor]]:
    """:func:`norm_estimates` of every trained model on the first ``est_points`` test points
    (``fig3_iters`` power steps for the converged ``|Hv*|``)."""
    out = {}
    for (n, m, s), res in trained.items():
        x, _ = chd.test_points(n, cfg["est_points"], device)
        out[n, m, s] = norm_estimates(res.model, x, power_iters=cfg["fig3_iters"],
                                      seed=cfg["seed"], pixel_scale=chd.info[n]["std"])
    return out


def norm_table(est: Mapping[tuple[str, str, int], dict[str, Tensor]],
               chd: ChapterData) -> pd.DataFrame:
    """Medians of Corollary 1's quantities per model (mean over seeds of per-seed medians).

    Columns: ``data``, ``model``, ``median ‖H‖``, ``median ‖H‖ px`` (÷ σ²), ``median G``
    (``‖∇f‖``).
    """
    rows: dict[tuple[str, str], list[dict[str, Tensor]]] = {}
    for (n, m, _), e in est.items():
        rows.setdefault((n, m), []).append(e)
    out = []
    for (n, m), es in rows.items():
        hv = float(np.mean([float(e["hv_star"].double().median()) for e in es]))
        out.append({"data": TITLES[n], "model": m, "median ‖H‖": hv,
                    "median ‖H‖ px": hv / chd.info[n]["std"] ** 2,
                    "median G": float(np.mean([float(e["grad_norm"].median()) for e in es]))})
    return pd.DataFrame(out)


def log_ratio(est: Mapping[tuple[str, str, int], dict[str, Tensor]], name: str, a: str, b: str,
              quantity: str) -> stats.Estimate:
    """Mean over points of ``log(q_a / q_b)`` (same seed, same points), seeds × points.

    ``quantity`` is a key of :func:`norm_estimates` (``"hv_star"`` = ‖H‖, ``"grad_norm"`` = G).
    A negative value means ``a`` lowers the quantity; ``exp`` of it is the geometric-mean ratio.
    """
    per_seed = []
    for (n, m, s), e in sorted(est.items(), key=lambda kv: kv[0]):
        if n == name and m == a:
            qa, qb = e[quantity].double(), est[name, b, s][quantity].double()
            per_seed.append(torch.log(qa.clamp_min(1e-300) / qb.clamp_min(1e-300)).numpy())
    return stats.two_stage_bootstrap(per_seed)


@dataclass
class Fig3:
    """Fig. 3: ``|Hv*|`` against CURE's ``|Hg|`` on the undefended network.

    Attributes:
        hv, hg: ``(N,)`` float64 norms (standardised units).
        below: fraction of points with ``|Hg| ≤ |Hv*|(1 + 1e-3)`` (1 by construction).
        ratio: median of ``|Hg|/|Hv*|`` with its bootstrap interval.
        tail_diff: ``q99/median`` of ``|Hv*|`` minus that of ``|Hg|`` (paired bootstrap).
        mode: histogram mode (30 bins) of ``|Hv*| − |Hg|``, standardised units (bootstrap).
        mode_px: the same in pixel units (``÷ σ²``).
    """

    hv: Tensor
    hg: Tensor
    below: float
    ratio: stats.Estimate
    tail_diff: stats.Estimate
    mode: stats.Estimate
    mode_px: stats.Estimate


def _hist_mode(d: np.ndarray, axis: int = -1, bins: int = 30) -> Any:
    d = np.asarray(d)
    if d.ndim > 1:
        return np.apply_along_axis(_hist_mode, axis, d)
    counts, edges = np.histogram(d, bins=bins)
    i = int(counts.argmax())
    return 0.5 * (edges[i] + edges[i + 1])


def _tail(d: np.ndarray, axis: int = -1) -> Any:
    return np.quantile(d, 0.99, axis=axis) / np.median(d, axis=axis)


def fig3(est: dict[str, Tensor], sigma: float) -> Fig3:
    """The Fig. 3 statistics from :func:`norm_estimates` of the undefended model."""
    hv, hg = est["hv_star"].double(), est["hg"].double()
    d = (hv - hg).numpy()
    mode = stats.bootstrap_ci(d, stat=_hist_mode, method="percentile", n_resamples=1999)
    px = stats.bootstrap_ci(d / sigma**2, stat=_hist_mode, method="percentile",
                            n_resamples=1999)
    return Fig3(hv=hv, hg=hg, below=float((hg <= hv * (1 + 1e-3)).double().mean()),
                ratio=stats.bootstrap_ci((hg / hv).numpy(), stat=np.median,
                                         method="percentile"),
                tail_diff=stats.bootstrap_diff_ci(hv.numpy(), hg.numpy(), stat=_tail,
                                                  method="percentile", n_resamples=1999),
                mode=mode, mode_px=px)


def undefended_fig3(cfg: Mapping[str, Any], chd: ChapterData,
                    trained: Mapping[tuple[str, str, int], train.TrainResult],
                    device: torch.device) -> Fig3:
    """:func:`fig3` of the undefended MNIST CNN of seed ``seed`` on the first ``fig3_points``
    test images (``fig3_iters`` power steps for ``|Hv*|``)."""
    sigma = chd.info["mnist"]["std"]
    x, _ = chd.test_points("mnist", cfg["fig3_points"], device)
    est = norm_estimates(trained["mnist", "plain", cfg["seed"]].model, x,
                         power_iters=cfg["fig3_iters"], seed=cfg["seed"], pixel_scale=sigma)
    return fig3(est, sigma)


def estimator_table(est: Mapping[tuple[str, str, int], dict[str, Tensor]], seed: int
                    ) -> pd.DataFrame:
    """Erratum E10: median fraction of the converged ``|Hv*|`` each estimator recovers.

    One row per (data, model) of training seed ``seed``. Columns: ``data``, ``model``,
    ``ascent``, ``ascent px`` (Alg. 1, T = 10, o = 0.1 in standardised / pixel units),
    ``power T=10``, ``random v``; each a median of ``estimate / |Hv*|`` over points.
    """
    rows = []
    for (n, m, s), e in est.items():
        if s != seed:
            continue
        true = e["hv_star"].double()
        rows.append({"data": TITLES[n], "model": m,
                     "ascent": float((e["ascent"] / true).median()),
                     "ascent px": float((e["ascent_px"] / true).median()),
                     "power T=10": float((e["power_short"] / true).median()),
                     "random v": float((e["random"] / true).median())})
    return pd.DataFrame(rows)


def recovered(est: Mapping[tuple[str, str, int], dict[str, Tensor]], name: str, model: str,
              seed: int, estimator: str) -> stats.Estimate:
    """Median over points of ``estimator / |Hv*|`` with its bootstrap interval."""
    e = est[name, model, seed]
    return stats.bootstrap_ci((e[estimator].double() / e["hv_star"].double()).numpy(),
                              stat=np.median, method="percentile")


# ------------------------------------------------------------------------ training cost


@dataclass
class TimingResult:
    """Seconds per training step, timed round-robin (paired by round).

    Attributes:
        times: DataFrame, one row per (method, width): ``method``, ``width`` (``"quarter"`` or
            ``"document"``), ``batch``, ``s per step`` (median), ``÷ plain`` (median of the
            per-round ratios to plain at that width), ``low``, ``high`` (bootstrap interval of
            that ratio), ``rounds``.
        ratios: (method, width) → per-round ratios to plain at the same width.
        ch_ratio: CH (warm) ÷ plain at quarter width, bootstrap interval over rounds.
        width_ratio: (CH ÷ plain at the document's width) ÷ (CH ÷ plain at quarter width).
        literal_s: seconds of one literal Alg. 1 step at the document's width (one round).
        literal_batch: its batch.
    """

    times: pd.DataFrame
    ratios: dict[tuple[str, str], np.ndarray]
    ch_ratio: stats.Estimate
    width_ratio: stats.Estimate
    literal_s: float
    literal_batch: int
    plain_doc_s: float = math.nan
    extra: dict[str, Any] = field(default_factory=dict)


def _ratio_ci(r: np.ndarray) -> stats.Estimate:
    return stats.bootstrap_ci(r, stat=np.median, method="percentile")


#: Examples per chunk of the literal Alg. 1 timing: its graph (9 classes, two HVPs per ascent step,
#: the document's width) peaked at 4.2 GB resident at batch 128 and 1.9 GB in chunks of 32
#: (measured once, ru_maxrss of a fresh process, issue 14).
LITERAL_CHUNK = 32


def step_times(model: torch.nn.Module, x: Tensor, y: Tensor, *, lam: tuple[float, float],
               lam_cl: float, at_eps: float, at_steps: int, box: tuple[float, float],
               iters: int, warm_iters: int, repeats: int, literal_batch: int,
               seed: int) -> TimingResult:
    """Time one training step of each method at two widths (not cached: it is a measurement).

    Quarter width (``model``, trained weights so that AT's attack is realistic): plain, CL,
    CH cold (T = ``iters`` from random vectors, the old estimator), CH warm (the chapter's
    training: ``warm_iters`` steps from the stored direction, one shared forward pass) and AT.
    The document's width (seeded random weights): plain and CH warm, same batch. Each method
    gets one untimed round first (which also stores the warm directions, as a previous epoch
    would), then ``repeats`` interleaved rounds. The literal Alg. 1 (all 9 classes, ascent T = 10)
    at the document's width is timed once on ``literal_batch`` examples, as the sum of steps on
    chunks of at most :data:`LITERAL_CHUNK` examples (a step on the whole batch with its gradient
    accumulated chunk by chunk: the same work, a quarter of the graph memory at batch 128).
    """
    def warm() -> ch.CrossHolderObjective:
        return ch.CrossHolderObjective(warm_crossholder(lam, iters, warm_iters))

    quarter = copy.deepcopy(model)
    q = ch.time_steps(quarter, x, y, {
        "plain": None, "CL": ch.CrossLipschitz(lam_cl),
        f"CH cold, T={iters}": ch.CrossHolder(*lam, iters=iters),
        f"CH warm, {warm_iters}+1 HVP": warm(),
        f"AT, {at_steps} steps": ch.PGDTraining(at_eps, at_steps, box)},
        repeats=repeats, warmup=1, raw=True)
    torch.manual_seed(seed)
    doc = SwishCNN().to(x.device)
    d = ch.time_steps(doc, x, y, {"plain": None, f"CH warm, {warm_iters}+1 HVP": warm()},
                      repeats=repeats, warmup=1, raw=True)
    literal = ch.CrossHolder(*lam, classes="all", iters=10, estimator="ascent")
    literal_s = sum(ch.time_steps(doc, x[i:min(i + LITERAL_CHUNK, literal_batch)],
                                  y[i:min(i + LITERAL_CHUNK, literal_batch)],
                                  {"Alg. 1 literal": literal}, repeats=1, raw=True
                                  )["Alg. 1 literal"][0]
                    for i in range(0, literal_batch, LITERAL_CHUNK))
    rows, ratios = [], {}
    for width, t in (("quarter", q), ("document", d)):
        base = np.asarray(t["plain"])
        for k, v in t.items():
            r = np.asarray(v) / base
            ratios[k, width] = r
            e = _ratio_ci(r) if k != "plain" else stats.exact(1.0, len(r))
            rows.append({"method": k, "width": width, "batch": int(x.shape[0]),
                         "s per step": float(np.median(v)), "÷ plain": e.value,
                         "low": e.low, "high": e.high, "rounds": len(r)})
    key = f"CH warm, {warm_iters}+1 HVP"
    by_round = ratios[key, "document"] / ratios[key, "quarter"]
    return TimingResult(times=pd.DataFrame(rows), ratios=ratios,
                        ch_ratio=_ratio_ci(ratios[key, "quarter"]),
                        width_ratio=_ratio_ci(by_round),
                        literal_s=float(literal_s), literal_batch=literal_batch,
                        plain_doc_s=float(np.median(d["plain"])))


@dataclass
class WarmQuality:
    """How much of the operator norm the training estimators recover (median over a batch).

    Attributes:
        warm: ``‖H v̂‖ / ‖H v*‖`` of the warm start (stored direction of the previous visit
            plus ``warm_iters`` power steps, after ``steps_between`` optimiser steps on other
            batches), with its bootstrap interval.
        cold: the same for ``iters`` power steps from a random start (the cold estimate).
        steps_between: optimiser steps between the two visits (one epoch's worth).
    """

    warm: stats.Estimate
    cold: stats.Estimate
    steps_between: int


def warm_start_quality(model: torch.nn.Module, x: Tensor, y: Tensor, *,
                       lam: tuple[float, float], iters: int, warm_iters: int, batch: int,
                       seed: int, truth_iters: int = 100) -> WarmQuality:
    """Recovered-norm fraction of the warm-started estimator against the cold one.

    A copy of ``model`` is trained on ``x`` in batches of ``batch`` with the warm-started CH
    objective (Adam 1e-3): the first batch is visited, the others are trained on for one epoch
    (``len(x)/batch − 1`` steps, so the weights move as they do between two visits of an
    example), then the first batch is revisited: its warm estimate ``‖H v̂‖`` is compared with the
    converged norm (``truth_iters`` power steps) at those weights, and so is the cold estimate
    (``iters`` steps from a random start). Cached by weights, points and settings.
    """
    key = {"state": _state(model), "x": x.cpu(), "y": y.cpu(), "lam": list(lam),
           "iters": iters, "warm_iters": warm_iters, "batch": batch, "seed": seed,
           "truth_iters": truth_iters}

    def run() -> dict[str, Any]:
        torch.manual_seed(seed)
        net = copy.deepcopy(model).train()
        reg = warm_crossholder(lam, iters, warm_iters)
        obj = ch.CrossHolderObjective(reg)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        n_b = max(1, x.shape[0] // batch)
        for b in range(n_b):
            xb, yb = x[b * batch:(b + 1) * batch], y[b * batch:(b + 1) * batch]
            loss, _ = obj(net, xb, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        x0, y0 = x[:batch], y[:batch]
        w = reg.terms(net, x0, y0, create_graph=False)["hess_norm"][:, 0]
        c = ch.CrossHolder(*lam, iters=iters).terms(net, x0, y0, create_graph=False)
        t = ch.CrossHolder(*lam, iters=truth_iters).terms(net, x0, y0, create_graph=False)
        true = t["hess_norm"][:, 0].double().clamp_min(1e-300)
        return {"warm": (w.double() / true).cpu().numpy(),
                "cold": (c["hess_norm"][:, 0].double() / true).cpu().numpy(), "between": n_b - 1}

    r = cache.memo("ch05/warm_quality", key, run)
    return WarmQuality(warm=stats.bootstrap_ci(r["warm"], stat=np.median, method="percentile"),
                       cold=stats.bootstrap_ci(r["cold"], stat=np.median, method="percentile"),
                       steps_between=int(r["between"]))


def training_cost(cfg: Mapping[str, Any], chd: ChapterData,
                  trained: Mapping[tuple[str, str, int], train.TrainResult],
                  device: torch.device) -> tuple[TimingResult, WarmQuality]:
    """What Cross-Hölder training costs on MNIST, with the document's MNIST hyper-parameters.

    :func:`step_times` on the first ``batch_size`` training images, with the undefended model of
    seed ``seed`` (``at_steps``, ``ch_iters``, ``ch_warm_iters``, ``time_repeats``,
    ``literal_batch``), then :func:`warm_start_quality` of the CH model of that seed on the
    whole (standardised) training set, in batches of ``batch_size``.

    Returns:
        ``(timing, quality)``: the :class:`TimingResult` and the :class:`WarmQuality`.
    """
    ds, hp = chd.sets["mnist"], HP["mnist"]
    x, y = ds.x_train[:cfg["batch_size"]].to(device), ds.y_train[:cfg["batch_size"]].to(device)
    timing = step_times(trained["mnist", "plain", cfg["seed"]].model, x, y, lam=hp["CH"],
                        lam_cl=hp["CL"], at_eps=hp["AT"], at_steps=cfg["at_steps"],
                        box=chd.info["mnist"]["box"], iters=cfg["ch_iters"],
                        warm_iters=cfg["ch_warm_iters"], repeats=cfg["time_repeats"],
                        literal_batch=cfg["literal_batch"], seed=cfg["seed"])
    quality = warm_start_quality(trained["mnist", "CH", cfg["seed"]].model,
                                 ds.x_train.to(device), ds.y_train.to(device), lam=hp["CH"],
                                 iters=cfg["ch_iters"], warm_iters=cfg["ch_warm_iters"],
                                 batch=cfg["batch_size"], seed=cfg["seed"])
    return timing, quality


# --------------------------------------------------------------------------- certificate


@dataclass
class Certificate:
    """Corollary 1's certificate of a SWISH MLP against verified attack distances.

    Attributes (``(N,)`` float64 CPU tensors unless stated): ``cert`` (local K_R), ``cert_global``
    (global K), ``closed_form`` (global K, no bisection), ``linear`` (``min_j f/‖∇f‖``, no
    certificate), ``dist`` (smallest distance found by DeepFool, C&W-L2 and bisected PGD),
    ``by`` (attack that found it, list), ``correct`` (bool), ``ok`` (correct and attacked),
    ``tol`` (bisection tolerance), ``violations`` (int: certified radius > distance + 1e-9).
    """

    cert: Tensor
    cert_global: Tensor
    closed_form: Tensor
    linear: Tensor
    dist: Tensor
    by: list[str]
    correct: Tensor
    ok: Tensor
    tol: Tensor
    violations: int


CERT_ITERS = 40  # bisection steps of the certificate


def _attack_settings(attack_steps: int, cw_steps: int, seed: int) -> dict[str, Any]:
    """Keyword arguments of :func:`analysis.attacks.min_norm` for a certified MLP: DeepFool,
    C&W-L2 and bisected L2 PGD, unconstrained by the pixel box (part of the cache keys)."""
    return {"attacks": ("deepfool", "cw", "pgd_l2"), "box": None, "bisection_steps": 8,
            "refine_steps": 20, "seed": seed, "pgd_kw": {"steps": attack_steps, "restarts": 1},
            "cw_kw": {"steps": cw_steps, "binary_steps": 6}}


def certify(model: torch.nn.Module, x: Tensor, y: Tensor, *, attack_steps: int, cw_steps: int,
            seed: int) -> Certificate:
    """Certificates and verified minimal attack distances (float64, CPU), cached."""
    model = copy.deepcopy(model).cpu().double().eval()
    atk = _attack_settings(attack_steps, cw_steps, seed)
    key = {"state": model.state_dict(), "x": x, "y": y, "cert_iters": CERT_ITERS, **atk}

    def run() -> dict[str, Any]:
        c_loc = hb.mlp_certificate(model, x, iters=CERT_ITERS)
        c_glob = hb.mlp_certificate(model, x, local=False, iters=CERT_ITERS)
        att = attacks.min_norm(model, x, y, **atk)
        return {"cert": c_loc["radius"], "cert_global": c_glob["radius"],
                "closed_form": hb.mlp_global_closed_form(model, x), "linear": c_loc["linear"],
                "dist": att.distance, "by": list(att.by),
                "correct": attacks.predict(model, x) == y}

    r = cache.memo("ch05/certificate", key, run)
    ok = r["correct"] & torch.isfinite(r["dist"])
    viol = int((r["cert"][ok] > r["dist"][ok] + 1e-9).sum())
    return Certificate(**r, ok=ok, tol=r["linear"] * 2.0**-CERT_ITERS + 1e-12, violations=viol)


def certified_mlps(cfg: Mapping[str, Any], chd: ChapterData, device: torch.device,
                   activation: str = "swish") -> dict[str, torch.nn.Module]:
    """The certificate's MLPs (784-``mlp_hidden``-10 with ``activation``), trained by
    :func:`analysis.train.fit` (cached) on MNIST for ``mlp_epochs`` epochs, plain and with CH
    (λ1 = 0.2, λ2 = 0.5, cold power iteration, ``ch_iters``). With ``activation="relu"`` they
    are the ReLU twins: the same architecture, data, seed and training; the input Hessian of a
    ReLU net is zero almost everywhere, so there CH trains its gradient term only.

    Returns:
        ``{"plain": model, "CH": model}``.
    """
    kw: dict[str, Any] = {"in_shape": [1, 28, 28], "hidden": cfg["mlp_hidden"], "num_classes": 10}
    if activation != "swish":  # the SWISH MLPs keep their cache keys
        kw["activation"] = activation
    mcfg = train.TrainConfig(epochs=cfg["mlp_epochs"], batch_size=cfg["batch_size"], lr=1e-3,
                             seed=cfg["seed"])
    regs = {"plain": None, "CH": ch.CrossHolder(0.2, 0.5, iters=cfg["ch_iters"])}
    label = "MLP" if activation == "swish" else f"{activation} MLP"
    return {m: train.fit("swish_mlp", kw, chd.sets["mnist"], mcfg, device=device,
                         desc=f"{label} {m}", regularizer=reg).model for m, reg in regs.items()}


def _cert_points(cfg: Mapping[str, Any], chd: ChapterData) -> tuple[Tensor, Tensor]:
    """The first ``cert_points`` MNIST test points (float64, standardised) and labels."""
    ds = chd.sets["mnist"]
    return ds.x_test[:cfg["cert_points"]].double(), ds.y_test[:cfg["cert_points"]]


def certify_mlps(cfg: Mapping[str, Any], chd: ChapterData, device: torch.device
                 ) -> dict[str, Certificate]:
    """Certify the SWISH MLPs of :func:`certified_mlps` on the first ``cert_points`` test points
    (attacks: ``cert_attack_steps``, ``cert_cw_steps``)."""
    x, y = _cert_points(cfg, chd)
    return {m: certify(net, x, y, attack_steps=cfg["cert_attack_steps"],
                       cw_steps=cfg["cert_cw_steps"], seed=cfg["seed"])
            for m, net in certified_mlps(cfg, chd, device).items()}


def certificate_table(certs: Mapping[str, Certificate]) -> pd.DataFrame:
    """Columns: ``MLP``, ``clean acc``, ``points`` (attacked), ``violations``, ``cert`` (median
    certified radius), ``global`` (median, global K), ``attack`` (median distance), ``cert/att``
    (median ratio), ``max c/a``, ``lin/att`` (median ``f/‖∇f‖`` ÷ distance)."""
    rows = []
    for m, c in certs.items():
        ok = c.ok
        ratio = c.cert[ok] / c.dist[ok]
        rows.append({"MLP": m, "clean acc": float(c.correct.double().mean()),
                     "points": int(ok.sum()), "violations": c.violations,
                     "cert": float(c.cert[ok].median()), "global": float(c.cert_global[ok].median()),
                     "attack": float(c.dist[ok].median()), "cert/att": float(ratio.median()),
                     "max c/a": float(ratio.max()),
                     "lin/att": float((c.linear[ok] / c.dist[ok]).median())})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ CROWN on a ReLU twin


@dataclass
class TwinCertificate:
    """CROWN's certified L2 radius of a ReLU network against verified attack distances.

    Attributes (``(N,)`` float64 CPU tensors unless stated): ``crown`` (CROWN's radius, no box;
    0 where misclassified), ``dist``, ``by``, ``correct``, ``ok`` (as in :class:`Certificate`),
    ``seconds`` (CROWN's wall time per point, numpy), ``violations`` (int: CROWN's radius >
    distance + 1e-9).
    """

    crown: Tensor
    dist: Tensor
    by: list[str]
    correct: Tensor
    ok: Tensor
    seconds: np.ndarray
    violations: int


CROWN_STEPS = 30  # bisection steps of the CROWN radius (relative tolerance CROWN_RTOL)
CROWN_RTOL = 1e-4


def crown_certify(model: torch.nn.Module, x: Tensor, y: Tensor, *, attack_steps: int,
                  cw_steps: int, seed: int) -> TwinCertificate:
    """CROWN's certified L2 radius (:func:`analysis.verify.crown_radius`, no input box, the
    bisection started at the attack distance) and the verified minimal attack distance of
    :func:`certify`'s attacks, at the same points; float64, CPU, cached. ``model``: a
    :class:`~analysis.models.swish.SwishMLP` with ReLU (read by CROWN as its layer chain).

    Shape:
        ``x`` ``(N, 1, 28, 28)`` (standardised), ``y`` ``(N,)``.
    """
    model = copy.deepcopy(model).cpu().double().eval()
    atk = _attack_settings(attack_steps, cw_steps, seed)
    key = {"state": model.state_dict(), "x": x, "y": y, "crown_steps": CROWN_STEPS,
           "crown_rtol": CROWN_RTOL, **atk}

    def run() -> dict[str, Any]:
        att = attacks.min_norm(model, x, y, **atk)
        hi = torch.where(torch.isfinite(att.distance), att.distance, 1.0)
        chain = torch.nn.Sequential(torch.nn.Flatten(), model.fc1, model.act, model.fc2)
        rad = V.crown_radius(chain, x, y, norm="l2", box=None, hi=hi, steps=CROWN_STEPS,
                             rtol=CROWN_RTOL)
        return {"crown": torch.from_numpy(rad.radius), "dist": att.distance,
                "by": list(att.by), "correct": attacks.predict(model, x) == y,
                "seconds": rad.seconds}

    r = cache.memo("ch05/crown-twin", key, run)
    ok = r["correct"] & torch.isfinite(r["dist"])
    viol = int((r["crown"][ok] > r["dist"][ok] + 1e-9).sum())
    return TwinCertificate(**r, ok=ok, violations=viol)


def certify_relu_twins(cfg: Mapping[str, Any], chd: ChapterData, device: torch.device
                       ) -> dict[str, TwinCertificate]:
    """CROWN against attacks on the ReLU twins of :func:`certified_mlps` (plain and CH), at the
    SWISH certificate's ``cert_points`` test points and attack settings."""
    x, y = _cert_points(cfg, chd)
    return {m: crown_certify(net, x, y, attack_steps=cfg["cert_attack_steps"],
                             cw_steps=cfg["cert_cw_steps"], seed=cfg["seed"])
            for m, net in certified_mlps(cfg, chd, device, activation="relu").items()}


def _median_ratio(cert: Tensor, dist: Tensor) -> stats.Estimate:
    """Median of certified radius ÷ attack distance over points, bootstrap interval (one
    point: :func:`analysis.stats.bootstrap_ci`'s unbounded degenerate interval, which no rule
    decides on)."""
    return stats.bootstrap_ci((cert / dist).numpy(), np.median)


def tightness_table(certs: Mapping[str, Certificate], twins: Mapping[str, TwinCertificate]
                    ) -> pd.DataFrame:
    """Certificate ÷ attack distance per net: Corollary 1 on the SWISH MLPs, CROWN on their ReLU
    twins.

    Columns: ``net``, ``certificate``, ``points`` (correct and attacked), ``violations``,
    ``cert/att`` (median ratio), ``low``, ``high`` (its 95 % bootstrap interval), ``cert``,
    ``attack`` (median radii, standardised units).
    """
    rows = []
    nets = [(f"SWISH {m}", "Cor. 1", c.cert, c) for m, c in certs.items()]
    nets += [(f"ReLU twin {m}", "CROWN", t.crown, t) for m, t in twins.items()]
    for net, kind, cert, r in nets:
        ok = r.ok
        e = _median_ratio(cert[ok], r.dist[ok])
        rows.append({"net": net, "certificate": kind, "points": int(ok.sum()),
                     "violations": r.violations, "cert/att": e.value, "low": e.low,
                     "high": e.high, "cert": float(np.median(cert[ok].numpy())),
                     "attack": float(np.median(r.dist[ok].numpy()))})
    return pd.DataFrame(rows)


def relative_tightness(cert: Certificate, twin: TwinCertificate) -> stats.Estimate:
    """Point by point over the test points both nets classify correctly and were attacked:
    median of (Corollary 1 ÷ attack distance on the SWISH MLP) ÷ (CROWN ÷ attack distance on
    its ReLU twin), with a bootstrap interval; above 1, Corollary 1 certifies the larger share of
    its net's attack distance.

    Raises:
        ValueError: no common point, or a twin point that CROWN did not certify at all.
    """
    both = cert.ok & twin.ok
    if not bool(both.any()):
        raise ValueError("no test point is classified correctly by both nets")
    if bool((twin.crown[both] <= 0).any()):
        raise ValueError("CROWN certified nothing at a correctly classified point")
    return _median_ratio(cert.cert[both] / cert.dist[both], twin.crown[both] / twin.dist[both])


def tightness_lines(certs: Mapping[str, Certificate], twins: Mapping[str, TwinCertificate]
                    ) -> list[str]:
    """One sentence per training (``certs`` and ``twins`` keys): :func:`relative_tightness`,
    3 significant figures, and whether its interval lies above 1, below 1 or contains it."""
    out = []
    for m in certs:
        e = relative_tightness(certs[m], twins[m])
        which = ("Cor. 1 certifies the larger share" if e.low > 1 else
                 "CROWN certifies the larger share" if e.high < 1 else "no difference resolved")
        out.append(f"{m}: (Cor. 1 ÷ attack, SWISH) ÷ (CROWN ÷ attack, ReLU twin), median "
                   f"{report.sig3(e.value)} [{report.sig3(e.low)}, {report.sig3(e.high)}] over "
                   f"{e.n_points} points: {which}")
    return out


# ------------------------------------------------------------------------ verdicts, errata


def verdict_table(claim_list: Sequence[claims.Claim], profile: str,
                  timed: Sequence[str] = ()) -> pd.DataFrame:
    """The chapter's verdict table.

    Columns: ``claim``, ``document``, ``ours`` (estimate, 3 significant figures; the parts'
    statuses for a composite rule), ``interval``, ``points``, ``seeds``, ``rule`` (name and
    tolerance), ``status``. Claims whose text is in ``timed`` (wall-clock measurements, which
    vary between runs) show ``(timing)`` instead of their numbers and status, so the table can be
    compared between runs; the saved records keep them.
    """
    rows = []
    for c in claim_list:
        r = c.record(profile)
        t = c.text in timed
        ours, interval, pts, seeds = r["ours"], r["interval"], r["n_points"], r["n_seeds"]
        if c.estimate is None:  # a composite rule: its parts' estimates (or statuses)
            leaves = _leaf_estimates(c.rule)
            pts = min((e.n_points for e in leaves), default=None)
            seeds = min((e.n_seeds for e in leaves), default=None)
            ours = ", ".join(r["parts"]) or r["ours"]
            if 0 < len(leaves) <= 4:
                ours = "; ".join(report.sig3(e.value) for e in leaves)
                interval = "; ".join(f"[{report.sig3(e.low)}, {report.sig3(e.high)}]"
                                     for e in leaves)
        rows.append({"claim": c.text, "document": r["paper"],
                     "ours": "(timing)" if t else ours, "interval": "" if t else interval,
                     "points": pts, "seeds": seeds, "rule": f"{r['rule']} ({r['tolerance']})",
                     "status": "(timing)" if t else r["status"]})
    return pd.DataFrame(rows).astype({"points": "Int64", "seeds": "Int64"})


def _leaf_estimates(status: claims.Status) -> list[stats.Estimate]:
    """The estimates of a status's parts, depth first (its own when it has no parts)."""
    if not status.parts:
        return [status.estimate] if status.estimate is not None else []
    return [e for p in status.parts for e in _leaf_estimates(p)]


def errata() -> list[report.Erratum]:
    """The errors found in the document (E1-E19 of the spec), each with where it is shown."""
    e = report.Erratum
    return [
        e("Alg. 1, θ update", "θ = θ + l·∇ (ascent on the loss)", "descent", "Training"),
        e("Alg. 1 vs Eq. 5", "Alg. 1 weights the gradient term by λ2 and the Hessian term by "
          "λ1λ2; Eq. 5 by λ1 and λ1λ2. 'λ2 = 0 gives CL' holds only for Eq. 5",
          "use Eq. 5's weights", "Training"),
        e("Alg. 1", "cross-entropy inside Σ_{j≠y}: counted K−1 times",
          "count it once per example", "Training"),
        e("Alg. 1", "j is both the loop counter and the class; 'epochs' J are minibatch "
          "iterations", "separate indices", ""),
        e("Sec. 4, App. C.2", "'Algorithm 4' means Alg. 1; '(9)' has no label; App. C.2 calls "
          "Fig. 5 the MNIST worst case (it is Fig. 4c); Figs. 1–2 duplicate 4c/5c",
          "references corrected", "Figs. 1, 2, 4, 5"),
        e("Eq. 4; Sec. 3", "K_R(f, x) for K_R(f⁽ʲ⁾, x); switches from the predicted class t to "
          "the true label y", "f⁽ʲ⁾ = f_t − f_j in the bound, f_y − f_j in training",
          "Theorem 2 section"),
        e("Sec. 6", "'input gradient regularization'", "input Hessian regularization", ""),
        e("Sec. 4 (Danskin)", "'unique v*' never holds (±v* both maximise)",
          "harmless: g(θ, v) = g(θ, −v)", "tests/test_crossholder.py (Danskin)"),
        e("Sec. 4", "'T = 10, o = 0.1 suffices': the ascent step is ≈ o‖H‖, so the estimate is "
          "poor wherever ‖H‖ is small (regularised models), and what o = 0.1 means depends on "
          "the unstated input units (0.1 in pixel units is 0.1/σ² in standardised units)",
          "power iteration (scale-free, 1 HVP per step)", "Erratum E10 table (both units)"),
        e("Sec. 4 / Abstract", "'computing the input Hessian is infeasible' (d = 784: 784 HVPs)",
          "the cost is per example × class × step", "Network section"),
        e("Sec. 5, App. C", "norm and input scaling of ε not stated",
          "L2 (footnote 1) in standardised units; both axes shown", "Data section"),
        e("Sec. 5", "worst case = min of two accuracies (weaker than per example)",
          "report both", "Figs. 1, 2, 4, 5"),
        e("Sec. 5 vs App. C.2", "MNIST 'effective up to 4.0' vs 'up to 3.0'",
          "report the curves", "Figs. 4, 5"),
        e("App. C.2.1", "C&W architecture under-specified (padding, dropout, which layers are "
          "strided)", "valid padding, no dropout, stride 2 on conv 2 and 4", "Network section"),
        e("App. C.1", "|Hg| does not say which gradient or whether normalised",
          "unit margin gradient", "Fig. 3"),
        e("Figs. 1–5", "no numbers, error bars or seeds",
          "several training seeds at profile full, paired intervals over seeds × points",
          "Verdicts"),
    ]


# ------------------------------------------------------------------- composite judgements


def beats(curves: Mapping[tuple[str, str, int], ch.RobustCurves], names: Sequence[str], a: str,
          others: Sequence[str], **select: Any) -> claims.Status:
    """"``a`` is more robust than each of ``others`` on each data set": :func:`claims.at_least`
    on :func:`sum_difference` (``select``: ``above``, ``up_to``, ``kind``) for every pair, joined
    by :func:`claims.all_of` (a single pair is returned as it is)."""
    parts = [claims.at_least(sum_difference(curves, n, a, b, **select))
             for n in names for b in others]
    return parts[0] if len(parts) == 1 else claims.all_of(*parts)


def lowers(est: Mapping[tuple[str, str, int], dict[str, Tensor]], names: Sequence[str], a: str,
           others: Sequence[str], quantity: str, factor: float = 1.0) -> claims.Status:
    """"``a`` has ``quantity`` at most ``factor`` times that of each of ``others``":
    :func:`claims.at_most` of :func:`log_ratio` against ``log(factor)`` for every data set and
    pair, joined by :func:`claims.all_of` (a single pair is returned as it is)."""
    parts = [claims.at_most(log_ratio(est, n, a, b, quantity), math.log(factor))
             for n in names for b in others]
    return parts[0] if len(parts) == 1 else claims.all_of(*parts)


# ----------------------------------------------------------------------------- the verdicts

#: Claims judged on wall-clock timings (they vary between runs; :func:`verdict_table` hides them).
TIMED = ("Hessian-norm training has linear cost (same order as backpropagation)",)


def claims_robustness(curves: Mapping[tuple[str, str, int], ch.RobustCurves],
                      eps: Sequence[float]) -> list[claims.Claim]:
    """The claims of Figs. 1, 2, 4, 5 (section ``sec-05-robustness``), on :func:`defence_curves`.

    "Beyond ε = 4" is ε > 4; "effective" is a per-example worst-case accuracy of at least 0.5 at
    ε = 4; "AT best near its training ε" is judged at the radius of ``eps`` nearest to AT's
    MNIST ε, under PGD-CE.
    """
    mn, sec = ("mnist",), "sec-05-robustness"
    near_at = float(min(eps, key=lambda e: abs(e - HP["mnist"]["AT"])))
    return [
        claims.Claim("Figs. 1, 2: CH > CL beyond ε = 4 (worst case, MNIST and FMNIST)",
                     "CH > CL", beats(curves, TITLES, "CH", ["CL"], above=4.0), section=sec,
                     note="Σ_{ε>4} per-example accuracy, CH − CL"),
        claims.Claim("MNIST: CH > AT beyond ε = 4 (Figs. 4c, 5)", "CH > AT",
                     beats(curves, mn, "CH", ["AT"], above=4.0), section=sec),
        claims.Claim("FMNIST: CH below AT up to ε = 4 (Fig. 2)", "CH < AT",
                     beats(curves, ["fashion_mnist"], "AT", ["CH"], up_to=4.0), section=sec,
                     note="judged as AT − CH > 0"),
        claims.Claim(f"MNIST PGD-CE: AT best near its training ε (Fig. 4a, ε = {near_at:g})",
                     "AT best", beats(curves, mn, "AT", ["plain", "CL", "CH"],
                                      above=near_at - 1e-9, up_to=near_at, kind="ce"),
                     section=sec),
        claims.Claim("MNIST: all defences effective up to ε = 4 (Fig. 1)", "effective",
                     claims.all_of(*(claims.at_least(accuracy_at(curves, "mnist", m, 4.0), 0.5)
                                     for m in ("CL", "CH", "AT"))), section=sec),
        claims.Claim("MNIST PGD-CE: CL falls faster than CH beyond ε = 3 (Fig. 4a)", "CL < CH",
                     beats(curves, mn, "CH", ["CL"], above=3.0, kind="ce"), section=sec),
        claims.Claim("MNIST PGD-CW: CH best beyond ε = 4 (Fig. 4b)", "CH > AT, CL",
                     beats(curves, mn, "CH", ["AT", "CL"], above=4.0, kind="cw"), section=sec),
    ]


def claims_norms(norms: Mapping[tuple[str, str, int], dict[str, Tensor]], fig3_stats: Fig3,
                 seed: int) -> list[claims.Claim]:
    """The claims on the regularised norms (``sec-05-norms``), Fig. 3 (``sec-05-fig3``) and the
    document's estimator (``sec-05-estimator``, erratum E10).

    Args:
        norms: :func:`all_norm_estimates`. fig3_stats: :func:`undefended_fig3`.
        seed: the training seed whose models the estimator claim judges.

    "|Hg| underestimates" is a median ``|Hg|/|Hv*|`` below 0.9; "a mode around 5" is within a
    factor 2 of 5 pixel units; "T = 10 suffices" is a median recovered fraction of at least 0.8
    for every model, in standardised and in pixel units.
    """
    def recovers(unit: str) -> claims.Status:
        return claims.all_of(*(claims.at_least(recovered(norms, n, m, seed, unit), 0.8)
                               for n in TITLES for m in MODELS))

    return [
        claims.Claim("CH lowers the input-Hessian norm (below plain and below CL)", "implied",
                     claims.graded(lowers(norms, TITLES, "CH", ["plain", "CL"], "hv_star"),
                                   lowers(norms, TITLES, "CH", ["plain"], "hv_star")),
                     section="sec-05-norms", note="mean log ratio per point; weak: below plain"),
        claims.Claim("CL lowers the gradient norm (at most half of plain's)", "implied",
                     claims.graded(lowers(norms, TITLES, "CL", ["plain"], "grad_norm", 0.5),
                                   lowers(norms, TITLES, "CL", ["plain"], "grad_norm")),
                     section="sec-05-norms", note="mean log ratio per point; weak: below plain"),
        claims.Claim("Fig. 3: |Hg| underestimates |Hv*|", "< 1",
                     claims.at_most(fig3_stats.ratio, 0.9), section="sec-05-fig3",
                     note="median |Hg|/|Hv*|, undefended network"),
        claims.Claim("Fig. 3: |Hv*| has a heavier tail than |Hg|", "heavier",
                     claims.at_least(fig3_stats.tail_diff, 0.0), section="sec-05-fig3",
                     note="q99/median of |Hv*| minus that of |Hg|, paired bootstrap"),
        claims.Claim("Fig. 3b: mode of |Hv*| − |Hg| ≈ 5 (pixel units)", 5,
                     claims.within_orders(fig3_stats.mode_px, 5.0, math.log10(2.0)),
                     section="sec-05-fig3",
                     note="standardised mode ÷ σ²; depends on the network (quarter width here)"),
        claims.Claim("T = 10 ascent steps with o = 0.1 suffice to estimate ‖H‖", "suffice",
                     claims.all_of(recovers("ascent"), recovers("ascent_px")),
                     section="sec-05-estimator", note="parts: standardised units, pixel units"),
    ]


def claims_certificate_and_cost(certs: Mapping[str, Certificate], timing: TimingResult
                                ) -> list[claims.Claim]:
    """Theorem 2 as a certificate (``sec-05-certificate``: no certified radius above a verified
    attack distance, over every certified MLP) and the linear-cost claim
    (``sec-05-training-cost``: the CH ÷ plain step-time ratio within a factor 2 of constant
    across the two widths; its text is :data:`TIMED`)."""
    n_cert = sum(int(c.ok.sum()) for c in certs.values())
    return [
        claims.Claim("Thm 2 / Cor. 1: the second-order radius is a lower bound on ‖δ‖", "proof",
                     claims.zero_of(sum(c.violations for c in certs.values()), n_cert),
                     section="sec-05-certificate",
                     note="SWISH MLP, K_R bounded over the ball; DeepFool, C&W-L2, bisected PGD"),
        claims.Claim(TIMED[0], "linear",
                     claims.within_orders(timing.width_ratio, 1.0, math.log10(2.0)),
                     section="sec-05-training-cost",
                     note="(CH ÷ plain at the document's width) ÷ (CH ÷ plain at quarter width)"),
    ]


def verdicts(cfg: Mapping[str, Any], *, curves: Mapping[tuple[str, str, int], ch.RobustCurves],
             norms: Mapping[tuple[str, str, int], dict[str, Tensor]], fig3_stats: Fig3,
             certs: Mapping[str, Certificate], timing: TimingResult) -> list[claims.Claim]:
    """Every claim of the chapter, in the verdict table's order: :func:`claims_robustness`
    (``eps``), :func:`claims_norms` (``seed``), :func:`claims_certificate_and_cost`."""
    return (claims_robustness(curves, cfg["eps"]) + claims_norms(norms, fig3_stats, cfg["seed"])
            + claims_certificate_and_cost(certs, timing))
