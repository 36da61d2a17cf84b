"""Chapter 02 (the Fisher-metric Jacobian regulariser): one function per computation a section
shows, each returning a small named result and cached by the parameters it uses.

Units: MNIST pixels in [0, 1]; radii are L2 (toy: standardised input units); accuracies are
fractions in [0, 1] unless a name says ``pct``/``pts`` (percent, percentage points); times are
seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from analysis import attacks, cache, claims, data, models, report, stats, train
from analysis.bounds import fisher as fb
from analysis.regularizers import JacobianRegularizer
from analysis.regularizers import fisher as freg

#: The document's network (§4.2): two convolutions of 32 and 64 channels, one hidden layer of 128.
CNN_KW = {"in_shape": (1, 28, 28), "num_classes": 10, "channels": (32, 64), "hidden": 128}
#: The toy MLP 2-64-64-K with tanh (the document needs a smooth F).
TOY_KW = {"in_shape": (2,), "widths": (64, 64), "activation": "tanh"}
#: Fixed search settings of the toy radii (ray search range, bisection steps, r_loc range).
TOY_SEARCH = {"r_max_rays": 4.0, "bisection": 20, "r_max_loc": 5.0}
#: Fixed attack settings: Table 1's PGD step (the document's 0.01) and the C&W-L2 search.
ATTACK = {"step_size": 0.01, "cw_kw": {"binary_steps": 5, "steps": 100}}
#: Largest validation-accuracy gap (fraction) at which the Hoffman λ counts as matched.
MATCH_TOL = 0.02
#: Document's Table 1: clean count and robust counts at eps 0.1, 0.2, 0.3 (of 10 000 images).
DOC_TABLE1 = {"vanilla": (9740, (4138, 428, 103)), "regularised": (8829, (8040, 3708, 211))}


def _tensor_dict(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.detach().cpu() if isinstance(v, Tensor) else v) for k, v in d.items()}


# ---------------------------------------------------------------------------------- data


@dataclass
class ChapterData:
    """The chapter's data sets.

    Attributes:
        mnist: MNIST training subset (``n_train``) and test subset (``n_test``).
        x_val, y_val: ``n_val`` held-out training images (disjoint from ``mnist.x_train``).
        moons: two moons (K = 2), 70/30 split, for the toy sections.
        blobs: three Gaussian blobs (K = 3), for the simplex figure.
    """

    mnist: data.Dataset
    x_val: Tensor
    y_val: Tensor
    moons: data.Dataset
    blobs: data.Dataset


def load_data(cfg) -> ChapterData:
    """Load and split the chapter's data (seeded by ``cfg.seed``).

    Args:
        cfg: the chapter's :class:`analysis.config.Config` (``data_source``, ``n_train``,
            ``n_test``, ``n_val``, ``toy_n``, ``seed``).
    """
    pool = data.load("mnist", source=cfg.data_source, seed=cfg.seed)
    mnist, x_val, y_val = freg.split_with_validation(
        pool, cfg.n_train, min(cfg.n_test, len(pool.y_test)), cfg.n_val, seed=cfg.seed)
    moons = data.synthetic("moons", n=cfg.toy_n, dim=2, seed=cfg.seed, noise=0.1,
                           n_test=cfg.toy_n * 3 // 7)
    blobs = data.synthetic("blobs", n=cfg.toy_n, dim=2, seed=cfg.seed, num_classes=3, sep=1.5)
    return ChapterData(mnist, x_val, y_val, moons, blobs)


# ---------------------------------------------------------------------------------- toy


def fit_toy(cfg, ds: data.Dataset, num_classes: int, regularizer=None) -> dict[str, Any]:
    """Full-batch Adam (float64, lr 0.01) of the toy MLP; cached by its parameters.

    Returns:
        ``{"model", "history", "seconds"}`` as :func:`analysis.regularizers.fisher.train_full_batch`.
    """
    return freg.train_full_batch("mlp", {**TOY_KW, "num_classes": num_classes}, ds.x_train,
                                 ds.y_train, steps=cfg.toy_steps, lr=1e-2,
                                 regularizer=regularizer, seed=cfg.seed,
                                 log_every=max(1, cfg.toy_steps // 100))


@dataclass
class Geometry:
    """Numbers of the simplex section (spec T4).

    Attributes:
        blob_theta: ``(n, 3)`` float64 predicted probabilities of the blobs model.
        blob_labels: ``(n,)`` labels of those points.
        gap_min: smallest ``δ − d(θ, B)`` over ``n_random`` Dirichlet(1) points on Δ⁹.
        n_random: number of those points.
        violations: points where ``δ < d(θ, B) − 1e-12`` (each a counterexample to eq. 6).
        delta_max10: ``max δ`` on Δ⁹ (= 2 arccos 10^{-1/2}).
        median_delta, median_d_B: medians over the blobs model's predictions.
        seg_d_B, seg_delta: ``d(θ, B)`` and ``δ`` at θ = (0.6, 0.2, 0.2).
    """

    blob_theta: Tensor
    blob_labels: Tensor
    gap_min: float
    n_random: int
    violations: int
    delta_max10: float
    median_delta: float
    median_d_B: float
    seg_d_B: float
    seg_delta: float


def simplex_geometry(cfg, blobs: data.Dataset, n_random: int = 10_000) -> Geometry:
    """δ (eq. 6) against the exact distance to the boundary, on random θ and on a toy model."""
    model = fit_toy(cfg, blobs, 3)["model"]
    with torch.no_grad():
        theta = F.softmax(model(blobs.x_train.double()), -1)
    th = torch.from_numpy(np.random.default_rng(cfg.seed).dirichlet(np.ones(10), n_random))
    gap = fb.delta_center(th) - fb.boundary_distance(th)
    seg = torch.tensor([[0.6, 0.2, 0.2]], dtype=torch.float64)
    return Geometry(theta, blobs.y_train, float(gap.min()), n_random, int((gap < -1e-12).sum()),
                    fb.delta_max(10), float(fb.delta_center(theta).median()),
                    float(fb.boundary_distance(theta).median()),
                    float(fb.boundary_distance(seg)), float(fb.delta_center(seg)))


@dataclass
class ToyModels:
    """The toy models (float64, eval mode) and their training results.

    Attributes:
        runs: name -> ``{"model", "history", "seconds"}``: ``"vanilla"``, ``"reg ε=…"`` per
            ``toy_eps`` and the chart-free ablation ``"invariant ε=…"`` at the last ε.
        reg_name, inv_name: names of the faithful and invariant models at the plotted ε.
        eps_plot: that ε (the last of ``toy_eps``).
    """

    runs: dict[str, dict[str, Any]]
    reg_name: str
    inv_name: str
    eps_plot: float

    @property
    def models(self) -> dict[str, torch.nn.Module]:
        """name -> model."""
        return {k: r["model"] for k, r in self.runs.items()}

    @property
    def shown(self) -> dict[str, torch.nn.Module]:
        """The three models the toy figures show: vanilla, faithful and invariant at ``eps_plot``."""
        return {k: self.runs[k]["model"] for k in ("vanilla", self.reg_name, self.inv_name)}


def toy_models(cfg, moons: data.Dataset) -> ToyModels:
    """Train the toy models: vanilla, eq. 16 at a fixed η per ε, and the invariant variant."""
    def reg(eps: float, invariant: bool = False):
        return freg.FisherJacobian(eta_min=cfg.toy_eta, eta_max=cfg.toy_eta, epochs=1,
                                   eps_train=eps, num_classes=2, estimator="exact",
                                   invariant=invariant, seed=cfg.seed)

    runs = {"vanilla": fit_toy(cfg, moons, 2)}
    for e in cfg.toy_eps:
        runs[f"reg ε={e:g}"] = fit_toy(cfg, moons, 2, reg(e))
    eps_plot = float(cfg.toy_eps[-1])
    inv = f"invariant ε={eps_plot:g}"
    runs[inv] = fit_toy(cfg, moons, 2, reg(eps_plot, invariant=True))
    return ToyModels(runs, f"reg ε={eps_plot:g}", inv, eps_plot)


def toy_radii(cfg, moons: data.Dataset, model: torch.nn.Module) -> dict[str, Any]:
    """Exact radius (ray search), certificates and estimates at correctly classified toy points.

    Returns:
        float64 ``(n,)`` tensors ``r_star`` (ray search, then bisection), ``r_loc`` (grid estimate
        of the path-lemma radius), ``r_glob``, ``r_margin`` (certificates), ``r_doc``, ``r_lin``
        (linearisations), ``d_B``, ``delta``; ``x`` and ``x_star`` ``(n, 2)``; ``acc`` (float,
        test accuracy).
    """
    def compute() -> dict[str, Any]:
        x = moons.x_test.double()
        with torch.no_grad():
            ok = model(x).argmax(1) == moons.y_test
        x = x[ok][: cfg.toy_test]
        r_star, x_star = fb.exact_radius_rays(model, x, n_rays=cfg.toy_rays, step=cfg.toy_step,
                                              r_max=TOY_SEARCH["r_max_rays"])
        rad = fb.certified_radii(model, x)
        r_loc = fb.local_radius_2d(model, x, n_angles=cfg.toy_loc_grid[0],
                                   n_radii=cfg.toy_loc_grid[1],
                                   bisection=TOY_SEARCH["bisection"],
                                   r_max=TOY_SEARCH["r_max_loc"])
        return _tensor_dict({"x": x, "x_star": x_star, "r_star": r_star, "r_loc": r_loc,
                             **{k: rad[k] for k in ("r_glob", "r_doc", "r_lin", "r_margin",
                                                    "d_B", "delta")},
                             "acc": train.accuracy(model, moons.x_test.double(), moons.y_test)})

    key = {"w": model.state_dict(), "moons": moons.fingerprint(), "search": TOY_SEARCH,
           **{k: cfg[k] for k in ("toy_test", "toy_rays", "toy_step", "toy_loc_grid")}}
    return cache.memo("ch02/toy_radii", key, compute)


def ellipse_model(toy: ToyModels, radii: Mapping[str, Mapping[str, Any]],
                  min_acc: float = 0.9) -> str:
    """The regularised toy model T3 shows: the faithful one, or the invariant variant when the
    faithful one has collapsed (test accuracy below ``min_acc``, see T6)."""
    return toy.reg_name if radii[toy.reg_name]["acc"] >= min_acc else toy.inv_name


def ellipse_points(radii: Mapping[str, Any], n: int = 6) -> tuple[Tensor, Tensor]:
    """``n`` evenly spaced attacked toy points and their nearest boundary points (T3).

    Returns:
        ``(x, x_star)``, each ``(n, 2)``, rows of ``radii["x"]`` and ``radii["x_star"]``.
    """
    idx = torch.linspace(0, len(radii["x"]) - 1, n).long()
    return radii["x"][idx], radii["x_star"][idx]


def toy_table(radii: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """T5's table: per toy model, medians of the radii and the fractions of estimates above r*.

    Schema: ``model``, ``test acc``, ``med r*``, ``med r_loc``, ``r_loc>r*`` (fraction),
    ``med r_margin``, ``med r_glob``, ``med glob/margin``, ``med r_doc``, ``r_doc>r*``.
    """
    from analysis.report import table

    rows = []
    for name, r in radii.items():
        rows.append({"model": name, "test acc": r["acc"], "med r*": r["r_star"].median(),
                     "med r_loc": r["r_loc"].median(),
                     "r_loc>r*": float((r["r_loc"] > r["r_star"]).double().mean()),
                     "med r_margin": r["r_margin"].median(), "med r_glob": r["r_glob"].median(),
                     "med glob/margin": (r["r_glob"] / r["r_margin"]).median(),
                     "med r_doc": r["r_doc"].median(),
                     "r_doc>r*": float((r["r_doc"] > r["r_star"]).double().mean())})
    return table(rows)


def toy_crown(cfg, model: torch.nn.Module, radii: Mapping[str, Any]) -> Tensor:
    """CROWN's certified L2 radius (:func:`analysis.verify.crown_radius`; the toy inputs have no
    box; the bisection starts at ``r*``) at the toy points of :func:`toy_radii`: the modern
    certified baseline beside the chapter's certificates on the same tanh MLP. Cached.

    Returns:
        float64 ``(n,)``, 0 where the model does not predict the point's class.
    """
    from analysis import verify

    x, hi = radii["x"].double(), radii["r_star"].double()

    def compute() -> Tensor:
        m = copy_double(model)
        start = torch.where(torch.isfinite(hi), hi, torch.full_like(hi, TOY_SEARCH["r_max_rays"]))
        return torch.as_tensor(verify.crown_radius(m, x, norm="l2", box=None, hi=start).radius)

    key = {"model": model.state_dict(), "x": x, "hi": hi, "seed": cfg.seed}
    return cache.memo("ch02/toy_crown", key, compute)


def copy_double(model: torch.nn.Module) -> torch.nn.Module:
    """A float64 copy of ``model`` in eval mode (on the CPU)."""
    import copy

    return copy.deepcopy(model).cpu().double().eval()


def toy_crown_table(radii: Mapping[str, Mapping[str, Any]], crown: Mapping[str, Tensor]
                    ) -> pd.DataFrame:
    """The chapter's certificates against CROWN and the 2-D exact radius ``r*``, per toy model.

    Schema: ``model``, ``points`` (finite ``r*``), medians of ``r_margin/r*``, ``r_glob/r*``,
    ``CROWN/r*`` (each with its 95 % bootstrap interval, ``analysis.stats``) and
    ``r_margin/CROWN``: how much of the distance to the exact minimum CROWN closes that the
    Lipschitz certificates leave open.
    """
    from analysis.report import sig3, table

    def med(v: Tensor) -> str:
        e = stats.bootstrap_ci(v.numpy(), np.median)
        return f"{sig3(e.value)} [{sig3(e.low)}, {sig3(e.high)}]"

    rows = []
    for name, r in radii.items():
        ok = torch.isfinite(r["r_star"])
        rs, c = r["r_star"][ok], crown[name][ok]
        pos = c > 0  # CROWN certified something: the last ratio is defined
        rows.append({"model": name, "points": int(ok.sum()),
                     "r_margin/r*": med(r["r_margin"][ok] / rs),
                     "r_glob/r*": med(r["r_glob"][ok] / rs), "CROWN/r*": med(c / rs),
                     "r_margin/CROWN": med(r["r_margin"][ok][pos] / c[pos])})
    return table(rows)


def toy_robust_curves(radii: Mapping[str, Mapping[str, Any]], eps_grid: Sequence[float]
                      ) -> dict[str, list[float]]:
    """Robust accuracy ``acc · P(r* > ε)`` per toy model on ``eps_grid`` (ray-search r*)."""
    return {name: [r["acc"] * float((r["r_star"] > e).double().mean()) for e in eps_grid]
            for name, r in radii.items()}


# ---------------------------------------------------------------------------------- MNIST


def seeds(cfg) -> list[int]:
    """The training seeds of the multi-seed claims: ``seed, seed + 1, …`` (``n_seeds`` of them)."""
    return [cfg.seed + i for i in range(cfg.n_seeds)]


def fisher_regularizer(cfg, n_train: int, eta_max: float | None = None,
                       estimator: str | None = None, seed: int | None = None):
    """The document's regulariser (eq. 15-16) with the chapter's settings.

    Args:
        cfg: chapter config. n_train: training images (for the steps per epoch).
        eta_max: top of the η schedule (default ``cfg.eta_max``).
        estimator: Jacobian-norm estimator (default ``cfg.estimator``).
        seed: seed of the random projections (default ``cfg.seed``).
    """
    return freg.FisherJacobian(
        eta_min=cfg.eta_min, eta_max=cfg.eta_max if eta_max is None else eta_max,
        epochs=cfg.epochs, delta_over_eps=cfg.delta_over_eps, num_classes=10,
        estimator=cfg.estimator if estimator is None else estimator,
        seed=cfg.seed if seed is None else seed,
        steps_per_epoch=math.ceil(n_train / cfg.batch_size))


def _train_config(cfg, seed: int) -> train.TrainConfig:
    return train.TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                             optimizer="sgd", momentum=0.0, seed=seed)


@dataclass(frozen=True)
class Divergence:
    """A training run whose loss became non-finite (left out of every table and verdict).

    Attributes: run (its description, e.g. ``"regularised seed 1"``), seed, epoch and batch
    (1-based) of the first non-finite loss."""

    run: str
    seed: int
    epoch: int
    batch: int

    def __str__(self) -> str:
        return f"{self.run} (epoch {self.epoch}, batch {self.batch})"


@dataclass
class MnistRuns:
    """The trained MNIST models.

    Attributes:
        runs: the headline seed's models by name: ``"vanilla"``, ``"regularised"``,
            ``"reg η_max=…"`` per ``eta_max_grid`` (those that did not diverge), and
            ``"Hoffman"`` (the matched λ, set by :func:`match_hoffman`).
        hoffman: λ -> run (headline seed), the grid the match picks from (diverged λ left out).
        by_seed: seed -> ``{"vanilla", "regularised"}`` runs, only the seeds whose two runs both
            finished (the first is the headline seed).
        diverged: every run whose loss became non-finite, in training order.
        seed: the headline seed: ``cfg.seed``, or the first seed after it whose vanilla and
            regularised runs both finished.
        n_seeds: the seeds trained (``cfg.n_seeds``), diverged ones included.
    """

    runs: dict[str, train.TrainResult]
    hoffman: dict[float, train.TrainResult]
    by_seed: dict[int, dict[str, train.TrainResult]] = field(default_factory=dict)
    diverged: list[Divergence] = field(default_factory=list)
    seed: int = 0
    n_seeds: int = 1

    def divergence_note(self) -> str:
        """``"k of n seeds diverged …"`` for the multi-seed verdicts ('' when none did)."""
        lost = [d for d in self.diverged if d.run.startswith(("vanilla", "regularised"))]
        if not lost:
            return ""
        k = len({d.seed for d in lost})
        return (f"{k} of {self.n_seeds} training seeds diverged and are left out: "
                + "; ".join(map(str, lost)))


def train_models(cfg, mnist: data.Dataset, device) -> MnistRuns:
    """Train (or load from the cache) every MNIST model of the chapter.

    Plain SGD, lr ``cfg.lr``, batch ``cfg.batch_size``; vanilla and regularised for every seed of
    :func:`seeds`; the η sensitivity and the Hoffman λ grid for the headline seed only. A run
    whose loss becomes non-finite (:class:`analysis.train.TrainingDiverged`) is recorded in
    ``diverged`` and left out, never retried with other settings; a seed counts only if both its
    runs finished. Raises ``RuntimeError`` if no seed does, or every Hoffman λ diverges.
    """
    n = len(mnist.y_train)
    diverged: list[Divergence] = []

    def fit(seed: int, reg, desc: str) -> train.TrainResult | None:
        # accuracies after the last epoch only: no figure shows them per epoch (evaluation is
        # deterministic, so the weights are those of a run that evaluates every epoch)
        try:
            return train.fit("cnn_small", CNN_KW, mnist, _train_config(cfg, seed),
                             regularizer=reg, device=device, desc=desc, eval_every_epoch=False)
        except train.TrainingDiverged as err:
            diverged.append(Divergence(desc, seed, err.epoch, err.batch))
            return None

    by_seed = {}
    for s in seeds(cfg):
        pair = {"vanilla": fit(s, None, f"vanilla seed {s}"),
                "regularised": fit(s, fisher_regularizer(cfg, n, seed=s), f"regularised seed {s}")}
        if all(r is not None for r in pair.values()):
            by_seed[s] = pair
    if not by_seed:
        raise RuntimeError("every training seed diverged: " + "; ".join(map(str, diverged)))
    head = next(iter(by_seed))
    runs = dict(by_seed[head])
    for em in cfg.eta_max_grid:
        r = fit(head, fisher_regularizer(cfg, n, eta_max=em, seed=head), f"reg eta_max {em:g}")
        if r is not None:
            runs[f"reg η_max={em:g}"] = r
    hoff = {lam: fit(head, JacobianRegularizer(lam), f"hoffman {lam:g}") for lam in cfg.hoffman_lams}
    hoff = {lam: r for lam, r in hoff.items() if r is not None}
    if not hoff:
        raise RuntimeError("every Hoffman λ diverged: " + "; ".join(map(str, diverged)))
    return MnistRuns(runs, hoff, by_seed, diverged, head, len(seeds(cfg)))


@dataclass
class HoffmanMatch:
    """The Hoffman λ matched on the validation split.

    Attributes:
        val_acc: λ -> clean validation accuracy. val_reg: the regularised model's.
        lam: the λ whose validation accuracy is closest to ``val_reg``.
        gap_val: ``val_acc[lam] − val_reg`` (the selection criterion).
        gap_test: the same difference on the test set (not used to select).
    """

    val_acc: dict[float, float]
    val_reg: float
    lam: float
    gap_val: float
    gap_test: float

    @property
    def matched(self) -> bool:
        """Whether the validation gap is within ``MATCH_TOL`` (2 points of accuracy)."""
        return abs(self.gap_val) <= MATCH_TOL

    def summary(self) -> str:
        """One line: the λ grid's validation accuracies, the pick, and both gaps (points)."""
        grid = {lam: report.sig3(a) for lam, a in self.val_acc.items()}
        return (f"Hoffman λ grid (clean validation accuracy): {grid} -> λ = {self.lam} "
                f"| regularised: {report.sig3(self.val_reg)} "
                f"| validation gap: {report.sig3(100 * self.gap_val)} points "
                f"({'matched' if self.matched else 'NOT matched'} within 2 points) "
                f"| test gap: {report.sig3(100 * self.gap_test)} points")


def match_hoffman(runs: MnistRuns, x_val: Tensor, y_val: Tensor) -> HoffmanMatch:
    """Pick the Hoffman λ whose clean validation accuracy is closest to the regularised model's,
    and store that model as ``runs.runs["Hoffman"]``."""
    val_acc = {lam: train.accuracy(h.model, x_val, y_val) for lam, h in runs.hoffman.items()}
    val_reg = train.accuracy(runs.runs["regularised"].model, x_val, y_val)
    lam = min(val_acc, key=lambda k: abs(val_acc[k] - val_reg))
    runs.runs["Hoffman"] = runs.hoffman[lam]
    gap_test = (runs.hoffman[lam].history[-1]["test_acc"]
                - runs.runs["regularised"].history[-1]["test_acc"])
    return HoffmanMatch(val_acc, val_reg, lam, val_acc[lam] - val_reg, gap_test)


def attack_set(cfg, mnist: data.Dataset) -> tuple[Tensor, Tensor]:
    """The attacked test images: a seeded random subset of ``min(n_attack, n_test)`` images."""
    perm = torch.randperm(len(mnist.y_test), generator=torch.Generator().manual_seed(cfg.seed))
    return mnist.x_test[perm[: cfg.n_attack]], mnist.y_test[perm[: cfg.n_attack]]


def evaluate(cfg, model: torch.nn.Module, mnist: data.Dataset, full: bool = True,
             geometry: bool = True) -> dict[str, Any]:
    """Table 1's attack and (``full``) the L2 evaluation and the certificates of one model.

    Per-point outcomes are kept so that models can be compared on the same points.
    ``geometry=False`` skips ``geo`` (the per-example Jacobians, only shown for seed
    ``cfg.seed``); it needs ``full=False``.

    Returns:
        ``correct`` bool ``(n_att,)`` (clean-correct attacked images), ``test_correct`` bool
        ``(n_test,)``, ``linf`` bool ``(len(eps_linf), n_att)`` (robust under PGD-L∞ with CE, the
        document's attack), with ``geometry`` ``geo`` (:func:`analysis.regularizers.fisher.per_example` on the test
        set); with ``full`` also ``linf_cw`` (robust under both CE and C&W-margin PGD), ``l2``
        bool ``(len(eps_l2), n_att)``, ``r_adv`` (minimal L2 distance found, ``n_minnorm``
        images), ``by`` (the attack that found it) and ``rad`` (:func:`certified_radii`).
    """
    dev = next(model.parameters()).device
    xa, ya = (t.to(dev) for t in attack_set(cfg, mnist))

    def compute() -> dict[str, Any]:
        m = model.eval()
        # each point stops at its first success: the same outcomes as the best iterate
        pgd = {"steps": cfg.pgd_steps, "step_size": ATTACK["step_size"], "seed": cfg.seed,
               "stop_at_success": True}
        linf = attacks.robust_outcomes(m, xa, ya, cfg.eps_linf, "linf", **pgd)
        out = {"correct": (attacks.predict(m, xa) == ya).cpu(),
               "test_correct": (attacks.predict(m, mnist.x_test.to(dev))
                                == mnist.y_test.to(dev)).cpu(),
               "linf": torch.from_numpy(linf)}
        if geometry:
            out["geo"] = freg.per_example(m, mnist.x_test.to(dev),
                                          fb.delta_max(10) / cfg.delta_over_eps)
        if not full:
            return out
        # the C&W-margin loss alone; robust to "CE+CW" = robust to both (per-point worst case)
        # its own random start (seed + 1), so the two attacks do not start from the same point
        cw = attacks.robust_outcomes(m, xa, ya, cfg.eps_linf, "linf", loss="cw",
                                     **{**pgd, "seed": cfg.seed + 1})
        l2 = attacks.robust_outcomes(m, xa, ya, cfg.eps_l2, "l2", steps=cfg.l2_steps,
                                     seed=cfg.seed, stop_at_success=True)
        xm, ym = xa[: cfg.n_minnorm], ya[: cfg.n_minnorm]
        mn = attacks.min_norm(m, xm, ym, attacks=tuple(cfg.minnorm_attacks), seed=cfg.seed,
                              cw_kw=ATTACK["cw_kw"])
        return {**out, "linf_cw": torch.from_numpy(linf & cw), "l2": torch.from_numpy(l2),
                "r_adv": torch.as_tensor(mn.distance).double().cpu(), "by": list(mn.by),
                "rad": _tensor_dict(fb.certified_radii(m, xm))}

    if full and not geometry:
        raise ValueError("evaluate: full=True needs geometry=True")
    key = {"w": model.state_dict(), "data": mnist.fingerprint(), "full": full,
           "geometry": geometry,
           "attack": ATTACK, **{k: cfg[k] for k in ("seed", "n_attack", "pgd_steps", "eps_linf",
                                                    "delta_over_eps")},
           **({k: cfg[k] for k in ("eps_l2", "l2_steps", "n_minnorm", "minnorm_attacks")}
              if full else {})}
    return cache.memo("ch02/evaluate", key, compute)


def evaluate_all(cfg, runs: MnistRuns, mnist: data.Dataset) -> dict[str, Any]:
    """Evaluate every model: the seed-``cfg.seed`` models by name (the η sensitivity rows with
    Table 1's attack only), and the other seeds' vanilla and regularised models with Table 1's
    attack only.

    Returns:
        ``{"evals": name -> evaluation, "by_seed": seed -> {"vanilla", "regularised"} ->
        evaluation, "seconds": name -> wall time of the call}``.
    """
    evals, secs = {}, {}
    for name, run in runs.runs.items():
        t0 = time.perf_counter()
        evals[name] = evaluate(cfg, run.model, mnist, full=not name.startswith("reg η_max"))
        secs[name] = time.perf_counter() - t0
    by_seed = {runs.seed: {k: evals[k] for k in ("vanilla", "regularised")}}
    for s, pair in runs.by_seed.items():
        if s != runs.seed:
            t0 = time.perf_counter()
            by_seed[s] = {k: evaluate(cfg, r.model, mnist, full=False, geometry=False)
                          for k, r in pair.items()}
            secs[f"seed {s}"] = time.perf_counter() - t0
    return {"evals": evals, "by_seed": by_seed, "seconds": secs}


def pct_of_correct(robust: Tensor, correct: Tensor) -> float:
    """Robust images as a percentage of the clean-correct ones (Table 1's unit; NaN if none)."""
    n_ok = int(correct.sum())
    return 100.0 * int(robust.sum()) / n_ok if n_ok else float("nan")


def table1(cfg, runs: MnistRuns, evals: Mapping[str, Any]) -> pd.DataFrame:
    """Table 1 (seed ``cfg.seed``): clean accuracy and PGD-L∞ robustness per model.

    Schema: ``model``, ``clean acc`` (test set), ``n correct`` (attacked set), ``@ε %`` (robust
    as % of correct, CE), ``@ε CW %`` (CE and C&W both fail), ``mean α`` (test set).
    """
    from analysis.report import table

    rows = []
    for name, ev in evals.items():
        row = {"model": name, "clean acc": runs.runs[name].history[-1]["test_acc"],
               "n correct": int(ev["correct"].sum())}
        for i, e in enumerate(cfg.eps_linf):
            row[f"@{e:g} %"] = pct_of_correct(ev["linf"][i], ev["correct"])
            if "linf_cw" in ev:
                row[f"@{e:g} CW %"] = pct_of_correct(ev["linf_cw"][i], ev["correct"])
        row["mean α"] = ev["geo"]["alpha"].mean()
        rows.append(row)
    return table(rows)


def table1_paper_vs_ours(cfg, by_seed: Mapping[int, Mapping[str, Any]]) -> list[tuple]:
    """Rows ``(quantity, document, ours)`` of Table 1, ours the mean over the seeds (percent)."""
    rows = []
    for name, (clean, counts) in DOC_TABLE1.items():
        evs = [pair[name] for pair in by_seed.values()]
        rows.append((f"{name}: clean acc (%)", clean / 100,
                     100 * float(np.mean([ev["test_correct"].double().mean() for ev in evs]))))
        for i, (e, c) in enumerate(zip(cfg.eps_linf, counts)):
            rows.append((f"{name}: @{e:g}, % of correct", 100 * c / clean,
                         float(np.mean([pct_of_correct(ev["linf"][i], ev["correct"])
                                        for ev in evs]))))
    return rows


@dataclass
class Table1Evidence:
    """Paired, multi-seed evidence for Table 1's claims (regularised minus vanilla).

    Attributes:
        gain_pts: per ε of ``eps_linf``, the gain in robust accuracy over all attacked images
            (points), two-stage bootstrap over seeds × the same attacked points.
        doc_gain_pts: the document's gains in the same unit (robust count / 10 000).
        clean_drop_pts: vanilla − regularised clean accuracy on the test set (points), the same
            bootstrap over seeds × test points.
        doc_clean_drop_pts: the document's 97.4 − 88.3.
    """

    gain_pts: list[stats.Estimate]
    doc_gain_pts: list[float]
    clean_drop_pts: stats.Estimate
    doc_clean_drop_pts: float


def table1_evidence(cfg, by_seed: Mapping[int, Mapping[str, Any]]) -> Table1Evidence:
    """Paired differences per seed and point, and their two-stage bootstrap intervals."""
    pairs = list(by_seed.values())
    gains = []
    for i in range(len(cfg.eps_linf)):
        diff = [100.0 * (p["regularised"]["linf"][i].double()
                         - p["vanilla"]["linf"][i].double()).numpy() for p in pairs]
        gains.append(stats.two_stage_bootstrap(diff, rng=cfg.seed))
    drop = [100.0 * (p["vanilla"]["test_correct"].double()
                     - p["regularised"]["test_correct"].double()).numpy() for p in pairs]
    (cv, (v1, v2, v3)), (cr, (r1, r2, r3)) = DOC_TABLE1["vanilla"], DOC_TABLE1["regularised"]
    doc = [100 * (r - v) / 10_000 for r, v in ((r1, v1), (r2, v2), (r3, v3))]
    return Table1Evidence(gains, doc[: len(cfg.eps_linf)],
                          stats.two_stage_bootstrap(drop, rng=cfg.seed), 100 * (cv - cr) / 10_000)


@dataclass
class CurveEvidence:
    """Fig. 1's shape, per seed, as estimates over the seeds (one value per seed).

    Attributes:
        alpha_rise_decades: ``log10(max over epochs of mean α / mean α of epoch 1)``.
        loss_fall: regularised loss of epoch 1 minus the lowest loss of the later epochs.
        loss_rise: loss of the last epoch minus the lowest loss of the earlier epochs.
        min_epoch: epoch of the lowest regularised loss, per seed.
    """

    alpha_rise_decades: stats.Estimate
    loss_fall: stats.Estimate
    loss_rise: stats.Estimate
    min_epoch: list[int]


def curve_evidence(cfg, runs: MnistRuns) -> CurveEvidence:
    """Read Fig. 1b/1d's claims off every seed's regularised training history."""
    rise_a, fall, rise, ep = [], [], [], []
    for pair in runs.by_seed.values():
        h = pair["regularised"].history
        alpha = np.array([r["alpha"] for r in h])
        loss = np.array([r["loss"] for r in h])
        rise_a.append([math.log10(alpha.max() / alpha[0])])
        if len(loss) > 1:
            fall.append([loss[0] - loss[1:].min()])
            rise.append([loss[-1] - loss[:-1].min()])
        else:
            fall.append([0.0])
            rise.append([0.0])
        ep.append(int(np.argmin(loss)) + 1)

    def est(v):
        return stats.two_stage_bootstrap(v, rng=cfg.seed)

    return CurveEvidence(est(rise_a), est(fall), est(rise), ep)


def l2_table(cfg, runs: MnistRuns, evals: Mapping[str, Any]) -> pd.DataFrame:
    """The L2 evaluation: per fully evaluated model, clean accuracy, PGD-L2 robust accuracy per
    ε₂, median minimal L2 distance found and PGD-L∞ robust accuracy (fractions of attacked
    images). Columns: ``model``, ``clean``, ``L2 @ε``, ``med r_adv``, ``L∞ @ε``, ``mean α``."""
    from analysis.report import table

    rows = []
    for name, ev in evals.items():
        if "r_adv" not in ev:
            continue
        row = {"model": name, "clean": runs.runs[name].history[-1]["test_acc"]}
        for e, o in zip(cfg.eps_l2, ev["l2"]):
            row[f"L2 @{e:g}"] = o.double().mean()
        ok = torch.isfinite(ev["r_adv"]) & (ev["r_adv"] > 0)
        row["med r_adv"] = ev["r_adv"][ok].median() if bool(ok.any()) else float("nan")
        for e, o in zip(cfg.eps_linf, ev["linf"]):
            row[f"L∞ @{e:g}"] = o.double().mean()
        row["mean α"] = ev["geo"]["alpha"].mean()
        rows.append(row)
    return table(rows)


def attacked_radii(ev: Mapping[str, Any]) -> dict[str, Tensor]:
    """The radii at points where an attack succeeded (finite, positive ``r_adv``).

    Returns:
        ``r_adv`` and every entry of ``ev["rad"]`` restricted to those points.
    """
    ok = torch.isfinite(ev["r_adv"]) & (ev["r_adv"] > 0)
    return {"r_adv": ev["r_adv"][ok], **{k: v[ok] for k, v in ev["rad"].items()}}


def certificate_radii(evals: Mapping[str, Any]) -> dict[str, dict[str, Tensor]]:
    """:func:`attacked_radii` of every fully evaluated model (those with ``r_adv``), by name."""
    return {name: attacked_radii(ev) for name, ev in evals.items() if "r_adv" in ev}


def certificate_table(evals: Mapping[str, Any]) -> pd.DataFrame:
    """Certified radii against the attack distance, per fully evaluated model.

    Columns: ``model``, ``points``, ``med r_glob``, ``med r_margin``, ``med r_adv``,
    ``med glob/adv``, ``med margin/adv``, ``max glob/margin``, ``r_doc>r_adv`` and
    ``r_lin>r_adv`` (fractions), ``r_doc viol`` (count).
    """
    from analysis.report import table

    rows = []
    for name, ev in evals.items():
        if "r_adv" not in ev:
            continue
        r = attacked_radii(ev)
        if not len(r["r_adv"]):  # no attack succeeded: nothing to compare
            rows.append({"model": name, "points": 0})
            continue
        rows.append({"model": name, "points": len(r["r_adv"]),
                     "med r_glob": r["r_glob"].median(), "med r_margin": r["r_margin"].median(),
                     "med r_adv": r["r_adv"].median(),
                     "med glob/adv": (r["r_glob"] / r["r_adv"]).median(),
                     "med margin/adv": (r["r_margin"] / r["r_adv"]).median(),
                     "max glob/margin": (r["r_glob"] / r["r_margin"]).max(),
                     "r_doc>r_adv": float((r["r_doc"] > r["r_adv"]).double().mean()),
                     "r_lin>r_adv": float((r["r_lin"] > r["r_adv"]).double().mean()),
                     "r_doc viol": int((r["r_doc"] > r["r_adv"]).sum())})
    return table(rows)


# ---------------------------------------------------------------------------------- CROWN

#: The models whose certificates are held against CROWN (the fully evaluated ones of seed
#: ``cfg.seed``).
CROWN_MODELS = ("vanilla", "regularised", "Hoffman")
#: CROWN's bisection on ε (:func:`analysis.verify.crown_radius`): the returned radius is itself
#: certified and within ``rtol`` (relative) of the largest ε CROWN certifies on its bracket.
CROWN_SEARCH = {"steps": 30, "rtol": 1e-2}


def verifiable(model: torch.nn.Module) -> torch.nn.Sequential:
    """``cnn_small`` as an ``nn.Sequential`` that :func:`analysis.verify.network` reads, with each
    max pooling moved before the ReLU it follows.

    ``max_i relu(z_i) = relu(max_i z_i)`` (ReLU is monotone), so the function is the same on
    every input (tested); CROWN then bounds the pooling together with the convolution before
    it (:func:`analysis.verify.crown_bounds`, ``fuse``) and never bounds the 28·28·32 ReLU
    outputs one by one. A sound radius of this network is a sound radius of ``model``.
    """
    conv1, act1, pool1, conv2, act2, pool2 = model.features
    if not all(isinstance(a, torch.nn.ReLU) for a in (act1, act2)) \
            or not all(isinstance(p, torch.nn.MaxPool2d) for p in (pool1, pool2)):
        raise ValueError("verifiable: needs cnn_small with ReLU and max pooling")
    return torch.nn.Sequential(conv1, pool1, act1, conv2, pool2, act2, model.head)


def crown_radii(cfg, runs: MnistRuns, evals: Mapping[str, Any], mnist: data.Dataset,
                names: Sequence[str] = CROWN_MODELS) -> dict[str, dict[str, Tensor]]:
    """CROWN's certified L2 radius (float64, pixel box [0, 1]) at the attacked points of
    :func:`attacked_radii` (the minimal-distance search's images with a finite ``r_adv``),
    the bisection's first upper end ``r_adv`` (``CROWN_SEARCH``); cached per model.

    Returns:
        name -> :func:`attacked_radii` plus ``crown`` (radius) and ``crown_seconds`` (wall time
        per image), float64 ``(n,)``.
    """
    from analysis import verify

    xm, ym = (t[: cfg.n_minnorm] for t in attack_set(cfg, mnist))
    out = {}
    for name in names:
        ev, model = evals[name], runs.runs[name].model
        ok = torch.isfinite(ev["r_adv"]) & (ev["r_adv"] > 0)
        x, y, r_adv = xm[ok].double(), ym[ok], ev["r_adv"][ok]

        def compute(model=model, x=x, y=y, r_adv=r_adv) -> dict[str, Tensor]:
            if not len(y):
                return {"crown": torch.zeros(0, dtype=torch.float64),
                        "crown_seconds": torch.zeros(0, dtype=torch.float64)}
            seq = verifiable(model)  # verify reads a float64 CPU copy in eval mode
            res = verify.crown_radius(seq, x, y, norm="l2", box=(0.0, 1.0), hi=r_adv,
                                      in_shape=model.in_shape, **CROWN_SEARCH)
            return {"crown": torch.from_numpy(res.radius),
                    "crown_seconds": torch.from_numpy(res.seconds)}

        key = {"w": model.state_dict(), "x": x, "y": y, "r_adv": r_adv, "search": CROWN_SEARCH}
        out[name] = {**attacked_radii(ev), **cache.memo("ch02/crown_radii", key, compute)}
    return out


def crown_table(crown: Mapping[str, Mapping[str, Tensor]], seconds: bool = False
                ) -> pd.DataFrame:
    """The chapter's certificates against CROWN, per model (medians over the attacked points).

    Columns: ``model``, ``points``, ``med CROWN``, ``med CROWN/adv`` (``crown / r_adv``),
    ``med margin/adv``, ``gap closed`` (the median over points of ``log(crown / r_margin) /
    log(r_adv / r_margin)``: the share of the margin certificate's log-gap to the attack that
    CROWN closes; 1 = CROWN reaches ``r_adv``, 0 = no better than ``r_margin``), ``med
    glob/CROWN``, ``med margin/CROWN``, ``med doc/CROWN``, ``med lin/CROWN``; with ``seconds``
    also ``s/image`` (median CROWN wall time per image; machine- and load-dependent).
    """
    from analysis.report import table

    rows = []
    for name, r in crown.items():
        if not len(r["r_adv"]):
            rows.append({"model": name, "points": 0})
            continue
        cr, adv, margin = r["crown"], r["r_adv"], r["r_margin"]
        row = {"model": name, "points": len(adv), "med CROWN": cr.median(),
               "med CROWN/adv": (cr / adv).median(), "med margin/adv": (margin / adv).median(),
               "gap closed": (torch.log(cr / margin) / torch.log(adv / margin)).median(),
               **{f"med {k}/CROWN": (r[f"r_{k}"] / cr).median()
                  for k in ("glob", "margin", "doc", "lin")}}
        if seconds:
            row["s/image"] = r["crown_seconds"].median()
        rows.append(row)
    return table(rows)


@dataclass
class PoleClass:
    """Per predicted class medians (test set) of the vanilla and regularised models.

    Attributes:
        medians: model -> DataFrame indexed by class 0-9 with columns ``rho``, ``fro_t``,
            ``spec_mu``, ``alpha`` (medians; NaN for a class never predicted).
        top_class: model -> the class with the largest median α.
        rows: table rows for classes 0 and 9 (``model``, ``class``, ``med ρ``, ``med ‖J̃‖_F``,
            ``med ‖J_μ‖₂``, ``med α``).
    """

    medians: dict[str, pd.DataFrame]
    top_class: dict[str, int]
    rows: list[dict[str, Any]]


def pole_class(evals: Mapping[str, Any], names: Sequence[str] = ("vanilla", "regularised")
               ) -> PoleClass:
    """Median ρ, ‖J̃‖_F, ‖J_μ‖₂ and α by predicted class (the pole of the chart is class 9)."""
    med, top, rows = {}, {}, []
    for name in names:
        g = evals[name]["geo"]
        df = pd.DataFrame({k: g[k].numpy() for k in ("rho", "fro_t", "spec_mu", "alpha")})
        df["pred"] = g["pred"].numpy()
        m = df.groupby("pred").median().reindex(range(10))
        med[name], top[name] = m, int(np.nanargmax(m["alpha"].to_numpy()))
        rows += [{"model": name, "class": c, "med ρ": m.loc[c, "rho"],
                  "med ‖J̃‖_F": m.loc[c, "fro_t"], "med ‖J_μ‖₂": m.loc[c, "spec_mu"],
                  "med α": m.loc[c, "alpha"]} for c in (0, 9)]
    return PoleClass(med, top, rows)


# ---------------------------------------------------------------------------------- cost


@dataclass
class CostProbe:
    """Repeated timings of one SGD step per method (interleaved repeats).

    Attributes:
        seconds: method -> per-repeat median seconds per step, ``(repeats,)``.
        ratio: method -> :class:`~analysis.stats.Estimate` of the mean over repeats of the
            per-repeat ratio to plain CE (bootstrap over repeats).
        svd_over_rp: per-repeat ``exact_svd / rp`` ratio, with its bootstrap interval.
        svd_over_exact: per-repeat ``exact_svd / exact`` ratio, with its bootstrap interval.
        train_ratio: regularised / vanilla training wall time from the histories (one run).
    """

    seconds: dict[str, np.ndarray]
    ratio: dict[str, stats.Estimate]
    svd_over_rp: stats.Estimate
    svd_over_exact: stats.Estimate
    train_ratio: float


def cost_probe(cfg, mnist: data.Dataset, runs: MnistRuns, lam: float, device) -> CostProbe:
    """Time one step of plain CE, eq. 16 with each estimator and Hoffman's penalty (not cached:
    a timing belongs to the machine it ran on).

    Args:
        cfg: chapter config (``cost_batches``, ``cost_repeats``, ``batch_size``, ``estimator``).
        mnist: training data. runs: the trained models (for the training-time ratio).
        lam: Hoffman's λ. device: where to time.
    """
    n = len(mnist.y_train)
    methods = {"plain CE": None, "rp": fisher_regularizer(cfg, n, estimator="rp"),
               "exact": fisher_regularizer(cfg, n, estimator="exact"),
               "exact_svd": fisher_regularizer(cfg, n, estimator="exact_svd"),
               "Hoffman": JacobianRegularizer(lam)}
    if cfg.estimator not in methods:
        methods[cfg.estimator] = fisher_regularizer(cfg, n)
    secs = freg.step_times(lambda: models.build("cnn_small", seed=cfg.seed, **CNN_KW).to(device),
                      mnist.x_train, mnist.y_train, methods, batch_size=cfg.batch_size,
                      batches=cfg.cost_batches, repeats=cfg.cost_repeats)
    ratio = {k: stats.bootstrap_ci(v / secs["plain CE"]) for k, v in secs.items()}
    train_s = {k: sum(r["seconds"] for r in runs.runs[k].history)
               for k in ("vanilla", "regularised")}
    return CostProbe(secs, ratio, stats.bootstrap_ci(secs["exact_svd"] / secs["rp"]),
                     stats.bootstrap_ci(secs["exact_svd"] / secs["exact"]),
                     train_s["regularised"] / train_s["vanilla"])


def cost_table(probe: CostProbe) -> pd.DataFrame:
    """Columns ``method``, ``s/step`` (median over repeats), ``ratio`` (to plain CE, mean over
    repeats), ``ratio low``, ``ratio high`` (95 % bootstrap interval over repeats)."""
    from analysis.report import table

    return table([{"method": k, "s/step": float(np.median(v)), "ratio": probe.ratio[k].value,
                   "ratio low": probe.ratio[k].low, "ratio high": probe.ratio[k].high}
                  for k, v in probe.seconds.items()])


# ---------------------------------------------------------------------------------- plan


def plan_checks(cfg, runs: MnistRuns, evals: Mapping[str, Any], toy: ToyModels,
                toy_rad: Mapping[str, Any], match: HoffmanMatch) -> pd.DataFrame:
    """The plan's expectations (spec §4, Q1-Q8) at seed ``cfg.seed``: not claims of the document,
    booleans read off the data. Columns ``expectation (spec §4)``, ``holds``."""
    ev_v, ev_r, ev_h = evals["vanilla"], evals["regularised"], evals["Hoffman"]
    acc_v, acc_r = (runs.runs[k].history[-1]["test_acc"] for k in ("vanilla", "regularised"))

    def pct(ev, i):
        return pct_of_correct(ev["linf"][i], ev["correct"])

    def l2(ev, e):
        return float(ev["l2"][list(cfg.eps_l2).index(e)].double().mean())

    common = [e for e in (1.0, 1.5, 2.0) if e in cfg.eps_l2]
    viol = int((attacked_radii(ev_r)["r_doc"] > attacked_radii(ev_r)["r_adv"]).sum())
    matched = match.matched
    van, reg = toy_rad["vanilla"], toy_rad[toy.reg_name]
    plan = [
        ("Q1 regularised: lower mean α (test)",
         float(ev_r["geo"]["alpha"].mean()) < float(ev_v["geo"]["alpha"].mean())),
        ("Q2 clean: regularised below vanilla, ≥ 70 %", acc_r < acc_v and acc_r >= 0.7),
        ("Q3 ε∞=0.1: +5 pts regularised; ε∞=0.3: both ≤ 20 %",
         pct(ev_r, 0) - pct(ev_v, 0) >= 5 and pct(ev_v, 2) <= 20 and pct(ev_r, 2) <= 20),
        ("Q4 PGD-L2: regularised ≥ vanilla at ε₂ ∈ {1, 1.5, 2}",
         all(l2(ev_r, e) >= l2(ev_v, e) for e in common)),
        ("Q5 r_glob ≤ r_adv (asserted); r_doc > r_adv somewhere", viol > 0),
        ("Q6 toy: regularised larger median r*, accuracy ≥ vanilla − 5 pts",
         float(reg["r_star"].median()) > float(van["r_star"].median())
         and reg["acc"] >= van["acc"] - 0.05),
        (f"Q7 Hoffman matched within 2 pts (validation, {100 * match.gap_val:+.1f})", matched),
        ("Q8 Fisher more robust than matched Hoffman (L∞ 0.1 and L2 ε=2)",
         matched and pct(ev_r, 0) > pct(ev_h, 0)
         and 2.0 in cfg.eps_l2 and l2(ev_r, 2.0) > l2(ev_h, 2.0)),
    ]
    return pd.DataFrame([{"expectation (spec §4)": q, "holds": bool(ok)} for q, ok in plan])


# ---------------------------------------------------------------------------------- verdicts


def claims_table1(evidence: Table1Evidence, runs: MnistRuns) -> list[claims.Claim]:
    """Table 1's claims (section ``sec-02-table1``), judged on :func:`table1_evidence`.

    Gains are in points of robust accuracy over all attacked images. "More robust" at
    ε∞ = 0.1 and 0.2: the gain's interval lies above half the document's gain (the document's
    size), else above 0 (partly); "no real gain" at 0.3: inside ±5 points; the clean-accuracy
    cost: within ±50 % of the document's drop, else a drop above 0 (partly). Each note names
    the seeds that diverged (:meth:`MnistRuns.divergence_note`).
    """
    gain, doc_gain = evidence.gain_pts, evidence.doc_gain_pts
    drop, doc_drop = evidence.clean_drop_pts, evidence.doc_clean_drop_pts
    lost = runs.divergence_note()  # seeds whose training diverged are left out
    more_robust = [
        claims.Claim(f"Table 1, ε∞={eps}: regularised more robust (pts of robust acc.)",
                     doc_gain[i], claims.graded(claims.at_least(gain[i], doc_gain[i] / 2),
                                                claims.at_least(gain[i], 0.0)),
                     section="sec-02-table1", note=lost)
        for i, eps in enumerate(("0.1", "0.2"))]
    return more_robust + [
        claims.Claim("Table 1, ε∞=0.3: no real gain (pts of robust acc.)", doc_gain[2],
                     claims.within(gain[2], 0.0, rel=0.0, abs_tol=5.0), section="sec-02-table1",
                     note=lost),
        claims.Claim("the penalty costs clean accuracy (pts)", doc_drop,
                     claims.graded(claims.within(drop, doc_drop, rel=0.5),
                                   claims.at_least(drop, 0.0)), section="sec-02-table1",
                     note="; ".join(filter(None, ["embedded sample, fewer epochs", lost]))),
    ]


def claims_fig1(cfg, curves: CurveEvidence, runs: MnistRuns) -> list[claims.Claim]:
    """Fig. 1's claims (section ``sec-02-fig1``), judged on :func:`curve_evidence`: α "rises
    dramatically" (at least one decade; a rise above 0 is partly) and the regularised loss
    falls, then rises (both differences above 0). The loss claim's note gives the epoch of the
    lowest loss per seed and the seeds that diverged."""
    lost = runs.divergence_note()
    return [
        claims.Claim("Fig. 1d: α low at first, then rises dramatically (decades)", "rises",
                     claims.graded(claims.at_least(curves.alpha_rise_decades, 1.0),
                                   claims.at_least(curves.alpha_rise_decades, 0.0)),
                     section="sec-02-fig1"),
        claims.Claim("Fig. 1b: regularised loss falls, then rises as η grows", "min at epoch 7/30",
                     claims.all_of(claims.at_least(curves.loss_fall, 0.0),
                                   claims.at_least(curves.loss_rise, 0.0)), section="sec-02-fig1",
                     note="; ".join(filter(None, [f"lowest loss at epochs {curves.min_epoch} of "
                                                 f"{cfg.epochs}", lost]))),
    ]


def claims_certificates(cert_radii: Mapping[str, Mapping[str, Tensor]]) -> list[claims.Claim]:
    """Eq. 14 as a certificate (section ``sec-02-certificates``): every point of the regularised
    model where the document's radius ``r_doc`` exceeds the verified attack distance ``r_adv``
    is a counterexample (:func:`analysis.claims.zero_of` over the attacked points; not testable
    when no attack succeeded on a correctly classified image)."""
    reg = cert_radii["regularised"]
    n = len(reg["r_adv"])
    rule = (claims.zero_of(int((reg["r_doc"] > reg["r_adv"]).sum()), n) if n else
            claims.not_testable("no attack succeeded on a correctly classified image"))
    return [claims.Claim("eq. 14 at x certifies B(x, ε) (r_doc a safe radius)", "implied (§3)",
                         rule, section="sec-02-certificates",
                         note="each violation is a verified attack inside the ball eq. 14 "
                              "calls safe")]


def claims_geometry(geometry: Geometry) -> list[claims.Claim]:
    """Eq. 6 (section ``sec-02-geometry``): δ upper-bounds d(θ, B), judged by
    :func:`analysis.claims.zero_of` on the random points of :func:`simplex_geometry`."""
    return [claims.Claim("eq. 6: δ(x) = d(F(x), c) upper-bounds d(F(x), B)", "≥",
                         claims.zero_of(geometry.violations, geometry.n_random),
                         section="sec-02-geometry", note="random θ ~ Dirichlet(1) on Δ⁹")]


def verdicts(cfg, runs: MnistRuns, evidence: Table1Evidence, curves: CurveEvidence,
             cert_radii: Mapping[str, Mapping[str, Tensor]], geometry: Geometry
             ) -> list[claims.Claim]:
    """Every claim whose estimate is not a wall-clock time, in the verdict table's order:
    :func:`claims_table1`, :func:`claims_fig1`, :func:`claims_certificates`,
    :func:`claims_geometry`."""
    return (claims_table1(evidence, runs) + claims_fig1(cfg, curves, runs)
            + claims_certificates(cert_radii) + claims_geometry(geometry))


def claims_cost(cfg, cost: CostProbe) -> list[claims.Claim]:
    """The timing claims (section ``sec-02-cost``), judged on :func:`cost_probe`: "about 12×
    slower" per step with the estimator the models train with (within a factor 2 of 12), and
    §3.5's argument that the spectral norm costs more than the Frobenius bound (``exact_svd /
    rp`` at least 1). Machine- and load-dependent."""
    return [
        claims.Claim(f"training about 12× slower (per step, {cfg.estimator} estimator)", 12,
                     claims.within_orders(cost.ratio[cfg.estimator], 12, np.log10(2)),
                     section="sec-02-cost",
                     note=f"exact estimator {report.sig3(cost.ratio['exact'].value)}×"),
        claims.Claim("§3.5: the largest singular value is costlier than the Frobenius bound",
                     "costlier", claims.at_least(cost.svd_over_rp, 1.0), section="sec-02-cost",
                     note=f"exact_svd / exact {report.sig3(cost.svd_over_exact.value)}×: the m "
                          "VJPs that give ‖J̃‖_F give the whole J̃"),
    ]


def _rule_text(rule: Any) -> str:
    """A rule's name and tolerance; a composite rule's parts' rules and tolerances."""
    if rule.parts:
        return f"{rule.rule}: " + " / ".join(_rule_text(p) for p in rule.parts)
    return f"{rule.rule} ({rule.tolerance})" if rule.tolerance else rule.rule


def verdict_table(claim_list: Sequence[Any], profile: str) -> pd.DataFrame:
    """The chapter's verdict table: per claim, ``claim``, ``document``, ``ours`` (3 significant
    figures), ``interval``, ``points``, ``seeds``, ``rule`` (name and tolerance), ``status``.

    A composite claim without an estimate of its own (``all_of``) shows its parts' estimates,
    separated by `` / ``.
    """
    from analysis.report import sig3

    rows = []
    for c in claim_list:
        rec = c.record(profile)
        parts = [p.estimate for p in c.rule.parts if p.estimate is not None]
        if c.estimate is None and parts:
            ours = " / ".join(sig3(e.value) for e in parts)
            interval = " / ".join(f"[{sig3(e.low)}, {sig3(e.high)}]" for e in parts)
            points, n_seeds = min(e.n_points for e in parts), min(e.n_seeds for e in parts)
        else:
            ours, interval = rec["ours"], rec["interval"]
            points, n_seeds = rec["n_points"], rec["n_seeds"]
        rows.append({"claim": rec["claim"], "document": rec["paper"], "ours": ours,
                     "interval": interval, "points": "" if points is None else str(points),
                     "seeds": "" if n_seeds is None else str(n_seeds),
                     "rule": _rule_text(c.rule), "status": rec["status"]})
    return pd.DataFrame(rows)


def errata() -> list:
    """The document's errors found by the chapter: place, what it says, the correction, and
    where the chapter shows it (:class:`analysis.report.Erratum` records)."""
    from analysis.report import Erratum as E

    return [
        E("§2.2.2", "∇g(0)ₖ = −f'(1) \"= 1\"; quadratic form written Σ r/θⁱ δᵢⱼ; "
                       "‖X‖² = ΣXⁱ/θⁱ without the square; r ≥ 0",
                       "−1; Σ r (dθⁱ)²/θⁱ; ΣXⁱ²/θⁱ; r > 0 (eq. 2 itself is right)",
                       "tests/test_fisher.py (local expansions)"),
        E("§3.1", "T₁, T₂ called maps Δᵐ → Δᵐ; μᴷ index typo; μ₂ = T₂(θ₂)",
                       "charts onto the sphere orthant and Rᵐ; μ₂ = T₁(θ₂)", "notation only"),
        E("eq. 6-8", "δ = d(F, c) ≥ d(F, B), so eq. 8 is weaker than eq. 7 and "
                       "certifies nothing", "exact d(θ, B) = 2 arcsin((√θ₍₁₎−√θ₍₂₎)/√2)",
                       "simplex figure (T4)"),
        E("§3.2", "g̃ has rank ≤ m < n: exp map, geodesic ball and curvature undefined; "
                       "eq. 8 ⇔ 9 needs g̃ constant, not flat",
                       "path lemma: d(F(x), F(z)) ≤ ‖z−x‖ sup‖J_μ‖₂; r_glob",
                       "certificate section"),
        E("eq. 9-10", "eq. 10 called stronger than eq. 9", "for a ball and an "
                       "ellipsoid centred at 0 they are equivalent", "note"),
        E("§3.4-3.5", "ρ given by a long formula; α's exponent is divided by "
                       "ρ → 0 at confident pole-class (9) inputs; with ε a true radius the 1/ρ "
                       "factor destabilises training",
                       "ρ = 1 − √θᴷ; exponent = (‖J_μ‖_F − δ/ε)/ρ; invariant / pole options",
                       "pole-class section; toy T6"),
        E("§3.5", "the largest singular value 'cannot be computed efficiently'; "
                       "α ≈ 0 when eq. 14 holds; no overflow guard",
                       "the m VJPs give J̃ exactly (svdvals); α ≈ 0 only far inside; C¹ guard",
                       "training-cost section"),
        E("§4.2", "δ_m undefined; δ_m/ε = 10⁻³ gives ε ≈ 2498 ≫ diameter 28 of [0,1]⁷⁸⁴",
                       "read δ_m = 2 arccos K^{-1/2}: α ≈ exp(‖J̃‖_F), an exponential Frobenius "
                       "penalty", "Fig. 1 section"),
        E("§1, §4.2", "an L2 method evaluated only with L∞ PGD; promised attacks and "
                       "datasets missing", "PGD-L2, DeepFool, C&W-L2, minimal distances",
                       "evaluation section"),
        E("Fig. 1", "caption cites eq. 15 for the loss; eq. 11 duplicated; §4.1, §5, §6 "
                       "empty", "eq. 16; toy experiments fill §4.1", "toy section"),
    ]
