"""Chapter 06, the synthesis: every defence of the five documents (and the field's two
standards) on one network, one data set and one evaluation; every certificate on the same points.

One function per computation a section shows; each returns named results and caches what is
costly through :func:`analysis.cache.memo` (models through :func:`analysis.train.fit`).

Units: pixels in [0, 1]; L∞ and L2 radii and distances in pixel units; times in seconds.
The network is :class:`analysis.models.synthesis.ChainMLP` with SWISH (``"swish"``, twice
differentiable, so every regulariser applies) and its ReLU twin (same architecture, same defence,
same strength, trained the same way) for the certificates that need a piecewise-linear network
(CROWN, Peck's sound chain).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from analysis import attacks, cache, claims, data, report, smoothing, stats, train, verify
from analysis.bounds import hessian as hb
from analysis.bounds import peck
from analysis.regularizers import (
    CrossHolder,
    CrossLipschitz,
    FisherJacobian,
    HessianRegularizer,
    JacobianRegularizer,
    PGDTraining,
)

#: The defences, in table order; each but ``none`` has a grid ``grid_<name>`` in the profile.
DEFENCES = ("none", "jacobian", "fisher", "hessian", "cross_lipschitz", "cross_holder",
            "peck_margin", "adv_training", "noise")
LABELS = {"none": "none", "jacobian": "Jacobian (Hoffman)", "fisher": "Fisher Jacobian (02)",
          "hessian": "Hessian Frobenius (01)", "cross_lipschitz": "Cross-Lipschitz (05)",
          "cross_holder": "Cross-Hölder (05)", "peck_margin": "Peck margin (03)",
          "adv_training": "PGD adv. training", "noise": "Gaussian noise"}
#: The documents' own regularisers (the verdicts ask about these).
DOCUMENT_REGULARISERS = ("fisher", "hessian", "cross_lipschitz", "cross_holder", "peck_margin")
#: Certificates: on the SWISH network, and on its ReLU twin.
SWISH_CERTS = ("lipschitz", "cross_holder", "smoothing")
TWIN_CERTS = ("crown", "peck", "lipschitz_twin")
CERT_LABELS = {"lipschitz": "Lipschitz margin", "cross_holder": "Cross-Hölder (2nd order)",
               "smoothing": "randomized smoothing", "crown": "CROWN (ReLU twin)",
               "peck": "Peck sound chain (ReLU twin)", "lipschitz_twin": "Lipschitz (ReLU twin)"}
#: sup |swish'(z)| = 1.0998…: the Lipschitz constant of SWISH (checked in the tests).
SWISH_LIPSCHITZ = 1.1
BOX = (0.0, 1.0)


def _state(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------------------- data


@dataclass
class SynthesisData:
    """The training split, the validation split and the test points.

    Attributes:
        fit: the training images (``x_train``) with the validation split as its ``x_test``
            (so :func:`analysis.train.fit`'s final ``test_acc`` is the validation accuracy).
        x_test, y_test: the test points attacked for every model (the first ``n_test``).
        source: :meth:`Dataset.describe` of the data set as loaded.
    """

    fit: data.Dataset
    x_test: Tensor
    y_test: Tensor
    source: str


def load_data(cfg: Mapping[str, Any]) -> SynthesisData:
    """``n_train`` stratified training images, of which ``n_val`` (stratified) validate.

    Uses ``cfg``: ``dataset``, ``data_source``, ``seed``, ``n_train``, ``n_val``, ``n_test``.
    """
    if cfg["dataset"] == "mnist":
        ds = data.load("mnist", source=cfg["data_source"], seed=cfg["seed"])
    else:
        ds = data.load("fashion_mnist", source="debian")
    if not cfg["n_val"] < cfg["n_train"]:
        raise ValueError(f"n_val ({cfg['n_val']}) must be below n_train ({cfg['n_train']})")
    sub = ds.subset(n_train=min(cfg["n_train"], len(ds.y_train)), seed=cfg["seed"])
    val, rest = data.stratified_split(sub.y_train.numpy(), cfg["n_val"], seed=cfg["seed"])
    rest, val = torch.from_numpy(rest), torch.from_numpy(val)
    fit = data.Dataset(f"{ds.name} (train/validation)", ds.source, sub.x_train[rest],
                       sub.y_train[rest], sub.x_train[val], sub.y_train[val], ds.classes,
                       note=f"{len(rest)} train / {len(val)} validation, seed {cfg['seed']}")
    return SynthesisData(fit, ds.x_test[:cfg["n_test"]], ds.y_test[:cfg["n_test"]],
                         ds.describe())


# --------------------------------------------------------------------------------- training


def model_kwargs(cfg: Mapping[str, Any], activation: str = "swish") -> dict[str, Any]:
    """Arguments of :class:`~analysis.models.synthesis.ChainMLP`."""
    return {"in_shape": [1, 28, 28], "hidden": cfg["hidden"], "num_classes": 10,
            "activation": activation}


def defence_args(name: str, strength: float | None, cfg: Mapping[str, Any],
                 steps_per_epoch: int) -> dict[str, Any]:
    """Fresh :func:`analysis.train.fit` arguments of one defence at one strength.

    ``jacobian``: λ of ``(λ/2)‖J‖_F²`` (one projection, Hoffman et al.); ``fisher``: a fixed
    η of chapter 02's Fisher-metric penalty (random projections, ε of chapter 02's default);
    ``hessian``: λ of ``(λ/2)‖H‖_F²`` (chapter 01, two projections); ``cross_lipschitz`` /
    ``cross_holder``: λ1 of Eq. 5 of chapter 05 on the runner-up class (λ2 = ``ch_lambda2``,
    ``reg_iters`` power steps); ``peck_margin``: ℓ of chapter 03's ``−ℓ δ(h_L(x))``;
    ``adv_training``: the L2 ε of PGD training (``at_steps`` steps); ``noise``: σ of
    Gaussian augmentation.
    """
    if name == "none":
        return {}
    if strength is None:
        raise ValueError(f"defence {name!r} needs a strength")
    s = float(strength)
    regs = {"jacobian": lambda: JacobianRegularizer(s),
            "fisher": lambda: FisherJacobian(eta_min=s, eta_max=s, epochs=1,
                                             steps_per_epoch=steps_per_epoch, seed=cfg["seed"]),
            "hessian": lambda: HessianRegularizer(s),
            "cross_lipschitz": lambda: CrossLipschitz(s),
            "cross_holder": lambda: CrossHolder(s, cfg["ch_lambda2"], iters=cfg["reg_iters"]),
            "peck_margin": lambda: peck.MarginRegularizer(s)}
    if name in regs:
        return {"regularizer": regs[name]()}
    if name == "adv_training":
        return {"objective": PGDTraining(s, cfg["at_steps"], BOX)}
    if name == "noise":
        return {"objective": smoothing.GaussianAugmentation(s)}
    raise ValueError(f"unknown defence {name!r}; one of {DEFENCES}")


def train_model(cfg: Mapping[str, Any], sd: SynthesisData, name: str, strength: float | None,
                seed: int, device: torch.device, activation: str = "swish"
                ) -> train.TrainResult:
    """One model (cached by :func:`analysis.train.fit`): Adam 1e-3, ``epochs``, ``batch_size``."""
    tcfg = train.TrainConfig(epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=1e-3,
                             seed=seed)
    steps = math.ceil(len(sd.fit.y_train) / cfg["batch_size"])
    return train.fit("chain_mlp", model_kwargs(cfg, activation), sd.fit, tcfg, device=device,
                     desc=f"{activation} {name} {strength} seed {seed}", eval_every_epoch=False,
                     **defence_args(name, strength, cfg, steps))


@dataclass
class Selection:
    """The strength chosen per defence on the validation split.

    Attributes:
        chosen: defence → chosen strength (``None`` for ``none``).
        sweep: one row per (defence, strength): ``defence``, ``strength``, ``val acc``,
            ``within`` (validation accuracy ≥ plain's − tolerance), ``chosen``.
        models: (defence, strength) → the model trained with seed ``seed`` (the sweep).
        plain_val: plain training's validation accuracy.
    """

    chosen: dict[str, float | None]
    sweep: pd.DataFrame
    models: dict[tuple[str, float | None], train.TrainResult]
    plain_val: float


def choose(val_acc: Mapping[float, float], plain_val: float, tolerance: float
           ) -> tuple[float, bool]:
    """The rule: the strongest strength whose validation accuracy is at least
    ``plain_val − tolerance``; when none is, the weakest (``False`` as the second value).

    Strengths are ordered by value (a larger λ, η, ℓ, ε or σ is a stronger defence)."""
    ok = [s for s in sorted(val_acc) if val_acc[s] >= plain_val - tolerance]
    return (ok[-1], True) if ok else (min(val_acc), False)


def select_strengths(cfg: Mapping[str, Any], sd: SynthesisData, device: torch.device
                     ) -> Selection:
    """Train every defence at every strength of its grid (seed ``seed``) and choose by
    :func:`choose` with ``select_tolerance`` on the validation accuracy (never the test set)."""
    plain = train_model(cfg, sd, "none", None, cfg["seed"], device)
    plain_val = float(plain.history[-1]["test_acc"])
    models = {("none", None): plain}
    rows = [{"defence": "none", "strength": math.nan, "val acc": plain_val, "within": True,
             "chosen": True}]
    chosen: dict[str, float | None] = {"none": None}
    for name in DEFENCES[1:]:
        acc = {}
        for s in cfg[f"grid_{name}"]:
            models[name, s] = train_model(cfg, sd, name, s, cfg["seed"], device)
            acc[float(s)] = float(models[name, s].history[-1]["test_acc"])
        chosen[name], _ = choose(acc, plain_val, cfg["select_tolerance"])
        rows += [{"defence": name, "strength": s, "val acc": a,
                  "within": a >= plain_val - cfg["select_tolerance"],
                  "chosen": s == chosen[name]} for s, a in acc.items()]
    return Selection(chosen, pd.DataFrame(rows), models, plain_val)


def seeds_of(cfg: Mapping[str, Any]) -> list[int]:
    """The training seeds ``seed, seed + 1, …`` (``n_seeds``)."""
    return [cfg["seed"] + i for i in range(cfg["n_seeds"])]


def train_all(cfg: Mapping[str, Any], sd: SynthesisData, sel: Selection, device: torch.device
              ) -> tuple[dict[tuple[str, int], train.TrainResult], dict[str, train.TrainResult]]:
    """Every defence at its chosen strength for every seed (SWISH), and its ReLU twin (seed
    ``seed`` only: the budget). Seed ``seed``'s SWISH models are the sweep's (cache hits)."""
    swish = {(m, s): train_model(cfg, sd, m, sel.chosen[m], s, device)
             for s in seeds_of(cfg) for m in DEFENCES}
    twins = {m: train_model(cfg, sd, m, sel.chosen[m], cfg["seed"], device, "relu")
             for m in DEFENCES}
    return swish, twins


def cost_ratio(swish: Mapping[tuple[str, int], train.TrainResult], name: str) -> stats.Estimate:
    """Training seconds per epoch ÷ plain training's (same seed), median over seeds × epochs
    with a bootstrap interval (measured when the model was trained; machine load varies)."""
    r = [e["seconds"] / float(np.mean([p["seconds"] for p in swish["none", s].history]))
         for (m, s), res in swish.items() if m == name for e in res.history]
    if len(r) < 2:
        return stats.exact(float(r[0]), 1)
    return stats.bootstrap_ci(np.asarray(r), stat=np.median, method="percentile")


# ---------------------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    """Per-point outcomes of every attack on one model (NumPy arrays; ``N`` test points).

    Attributes:
        correct: ``(N,)`` clean prediction correct.
        linf_ce, linf_cw, linf_fgsm, linf_transfer: ``(E∞, N)`` still correct under PGD-CE,
            PGD-CW, FGSM, and PGD-CE examples crafted on the undefended model of the same seed.
        l2_ce, l2_cw: ``(E2, N)`` still correct under L2 PGD-CE / PGD-CW.
        distance: ``(N,)`` smallest L2 adversarial distance of DeepFool, C&W-L2 and bisected
            L2 PGD (``0`` misclassified, ``inf`` none found); ``by``: which attack found it.
        deepfool, cw: ``(N,)`` their own distances.
        decision: ``(n_decision,)`` HopSkipJump's L2 distance on the first points (``inf``
            failed; ``0`` misclassified).
        converged: ``(2, N)`` alive under L∞ PGD at the middle radius with the usual settings
            and with ``strong_factor`` times the steps and restarts.
        huge: ``(N,)`` alive under L∞ PGD at ``eps_huge``.
    """

    correct: np.ndarray
    linf_ce: np.ndarray
    linf_cw: np.ndarray
    linf_fgsm: np.ndarray
    linf_transfer: np.ndarray
    l2_ce: np.ndarray
    l2_cw: np.ndarray
    distance: np.ndarray
    by: list[str]
    deepfool: np.ndarray
    cw: np.ndarray
    decision: np.ndarray
    converged: np.ndarray
    huge: np.ndarray

    def worst_linf(self) -> np.ndarray:
        """``(E∞, N)``: correct under every L∞ attack (PGD-CE, PGD-CW, FGSM, transfer, and the
        convergence run's stronger PGD at the middle radius, which also breaks the point at
        every larger radius: the same perturbation lies in the larger ball)."""
        alive = self.linf_ce & self.linf_cw & self.linf_fgsm & self.linf_transfer
        alive[len(alive) // 2:] &= self.converged[1]
        return alive

    def worst_l2(self, eps: Sequence[float]) -> np.ndarray:
        """``(E2, N)``: correct under L2 PGD-CE and -CW, and no minimal-norm or decision-based
        adversarial within ε."""
        e = np.asarray(eps, dtype=float)[:, None]
        far = self.distance[None, :] > e
        dec = np.full(self.distance.shape, np.inf)
        dec[:len(self.decision)] = self.decision
        return self.l2_ce & self.l2_cw & far & (dec[None, :] > e)

    def l2_upper_bound(self, eps: Sequence[float]) -> np.ndarray:
        """``(N,)``: the smallest L2 distance at which any L2 attack found an adversarial: the
        minimal-norm search, HopSkipJump, and the smallest radius ``eps`` at which L2 PGD broke
        a correctly classified point (an upper bound on its minimal adversarial distance;
        ``0`` misclassified, ``inf`` none found)."""
        dec = np.full(self.distance.shape, np.inf)
        dec[:len(self.decision)] = self.decision
        e = np.asarray(eps, dtype=float)
        broken = self.correct[None, :] & ~(self.l2_ce & self.l2_cw)
        pgd = np.where(broken, e[:, None], np.inf).min(0)
        return np.minimum(np.minimum(self.distance, dec), pgd)


def transfer_examples(model: nn.Module, x: Tensor, y: Tensor, eps: Sequence[float], *,
                      steps: int, seed: int) -> Tensor:
    """L∞ PGD-CE adversarial examples of ``model`` (the undefended one) at every radius
    ``(E, N, ...)``, cached by its weights."""
    key = {"state": _state(model), "x": x, "y": y, "eps": list(eps), "steps": steps,
           "seed": seed}
    return cache.memo("ch06/transfer", key, lambda: torch.stack([attacks.pgd(
        model, x, y, float(e), "linf", steps=steps, seed=seed, attack_all=True,
        box=BOX).x_adv.detach().cpu() for e in eps]))


@torch.no_grad()
def _still_correct(model: nn.Module, x_adv: Tensor, y: Tensor) -> np.ndarray:
    return (attacks.predict(model, x_adv) == y).cpu().numpy()


def decision_distances(model: nn.Module, x: Tensor, y: Tensor, *, steps: int, seed: int
                       ) -> np.ndarray:
    """HopSkipJump (foolbox 3, L2, its own blended-noise start) on correctly classified points:
    L2 distance of a verified adversarial, ``inf`` where none (also where its noise start finds
    no adversarial to start from: then the points run one at a time), ``0`` where
    misclassified."""
    import foolbox as fb

    out = np.where(_still_correct(model, x, y), np.inf, 0.0)
    rows = np.flatnonzero(out > 0)
    if len(rows) == 0:
        return out
    torch.manual_seed(seed)
    fmodel = fb.PyTorchModel(model.eval(), bounds=BOX)
    atk = fb.attacks.HopSkipJumpAttack(steps=steps, initial_gradient_eval_steps=50,
                                       max_gradient_eval_steps=200)
    xs, ys = x[rows], y[rows]

    def run(xi: Tensor, yi: Tensor) -> Tensor | None:
        """HopSkipJump's result, or None when its noise start found no adversarial (foolbox's
        "init_attack failed" ValueError; any other error propagates)."""
        try:
            return atk.run(fmodel, xi, fb.criteria.Misclassification(yi))
        except ValueError as err:
            if "init_attack failed" not in str(err):
                raise
            return None

    xa = run(xs, ys)
    if xa is None:  # some point has no start: one at a time (those stay inf)
        xa = xs.clone()
        for i in range(len(rows)):
            one = run(xs[i:i + 1], ys[i:i + 1])
            if one is not None:
                xa[i:i + 1] = one
    broken = ~_still_correct(model, xa, ys)
    d = (xa - xs).flatten(1).norm(dim=1).double().cpu().numpy()
    out[rows] = np.where(broken, d, np.inf)
    return out


def evaluate(model: nn.Module, x: Tensor, y: Tensor, transfer: Tensor, cfg: Mapping[str, Any]
             ) -> Evaluation:
    """Every attack of the checklist on one model (cached by weights, points and settings).

    PGD with ``pgd_steps`` × ``pgd_restarts`` (radii in increasing order, only points still
    standing attacked further), FGSM, the transfer examples, the minimal-norm search
    (DeepFool, C&W-L2 with ``cw_steps`` × ``cw_binary_steps``, bisected L2 PGD), HopSkipJump on
    the first ``n_decision`` points, the convergence run at the middle L∞ radius and the
    ``eps_huge`` run."""
    names = ("eps_linf", "eps_l2", "pgd_steps", "pgd_restarts", "strong_factor", "eps_huge",
             "cw_steps", "cw_binary_steps", "n_decision", "hsj_steps", "seed")
    kw = {k: cfg[k] for k in names}
    key = {"state": _state(model), "x": x, "y": y, "transfer": transfer, **kw}

    def run() -> dict[str, Any]:
        steps, rs, seed = kw["pgd_steps"], kw["pgd_restarts"], kw["seed"]

        def pgd(eps: Sequence[float], norm: str, loss: str, attack: str = "pgd",
                k: int = 1) -> np.ndarray:
            return attacks.robust_outcomes(model, x, y, eps, norm, attack=attack, loss=loss,
                                           steps=steps * k, restarts=rs * k, seed=seed, box=BOX)

        mid = [kw["eps_linf"][len(kw["eps_linf"]) // 2]]
        mn = attacks.min_norm(model, x, y, box=BOX, seed=seed, cw_kw={
            "steps": kw["cw_steps"], "binary_steps": kw["cw_binary_steps"]},
            pgd_kw={"steps": steps})
        return {"correct": _still_correct(model, x, y),
                "linf_ce": pgd(kw["eps_linf"], "linf", "ce"),
                "linf_cw": pgd(kw["eps_linf"], "linf", "cw"),
                "linf_fgsm": pgd(kw["eps_linf"], "linf", "ce", "fgsm"),
                "linf_transfer": np.stack([_still_correct(model, t, y) for t in transfer]),
                "l2_ce": pgd(kw["eps_l2"], "l2", "ce"), "l2_cw": pgd(kw["eps_l2"], "l2", "cw"),
                "distance": mn.distance.cpu().numpy(), "by": list(mn.by),
                "deepfool": mn.per_attack["deepfool"].cpu().numpy(),
                "cw": mn.per_attack["cw"].cpu().numpy(),
                "decision": decision_distances(model, x[:kw["n_decision"]],
                                               y[:kw["n_decision"]], steps=kw["hsj_steps"],
                                               seed=seed),
                "converged": np.concatenate([pgd(mid, "linf", ("ce", "cw")),
                                             pgd(mid, "linf", ("ce", "cw"),
                                                 k=kw["strong_factor"])]),
                "huge": pgd([kw["eps_huge"]], "linf", ("ce", "cw"))[0]}

    return Evaluation(**cache.memo("ch06/evaluate", key, run))


def evaluate_all(cfg: Mapping[str, Any], sd: SynthesisData,
                 swish: Mapping[tuple[str, int], train.TrainResult], device: torch.device
                 ) -> dict[tuple[str, int], Evaluation]:
    """:func:`evaluate` for every (defence, seed) on the same test points; transfer examples
    come from the undefended model of the same seed."""
    x, y = sd.x_test.to(device), sd.y_test.to(device)
    out = {}
    for s in seeds_of(cfg):
        tr = transfer_examples(swish["none", s].model, x, y, cfg["eps_linf"],
                               steps=cfg["pgd_steps"], seed=cfg["seed"]).to(device)
        for m in DEFENCES:
            out[m, s] = evaluate(swish[m, s].model, x, y, tr, cfg)
    return out


def sweep_tradeoff(cfg: Mapping[str, Any], sd: SynthesisData, sel: Selection,
                   device: torch.device) -> pd.DataFrame:
    """Clean and L2 PGD (CE and CW) robust test accuracy at the middle L2 radius of every sweep
    model (seed ``seed``): the trade-off curves (display only; the choice used validation).

    Columns: ``defence``, ``strength``, ``chosen``, ``clean``, ``robust``, ``eps``."""
    x, y = sd.x_test.to(device), sd.y_test.to(device)
    eps = float(cfg["eps_l2"][len(cfg["eps_l2"]) // 2])
    rows = []
    for (m, s), res in sel.models.items():
        key = {"state": _state(res.model), "x": x, "y": y, "eps": eps,
               "steps": cfg["pgd_steps"], "seed": cfg["seed"]}
        alive = cache.memo("ch06/sweep_robust", key, lambda r=res: attacks.robust_outcomes(
            r.model, x, y, [0.0, eps], "l2", loss=("ce", "cw"), steps=cfg["pgd_steps"],
            seed=cfg["seed"], box=BOX))
        rows.append({"defence": m, "strength": s, "chosen": s == sel.chosen[m],
                     "clean": float(alive[0].mean()), "robust": float(alive[1].mean()),
                     "eps": eps})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- certificates


def _sequential(model: nn.Module) -> nn.Sequential:
    """The model's chain (``.net``) as a float64 CPU copy, for the verifiers."""
    import copy

    return copy.deepcopy(model.net).cpu().double().eval()


def swish_lipschitz_radius(model: nn.Module, x: Tensor) -> np.ndarray:
    """Lipschitz-margin radius of the SWISH MLP (Tsuzuku et al. 2018): ``margin / (√2 L)``,
    ``L = ‖W2‖₂ · sup|swish'| · ‖W1‖₂`` (spectral norms in float64), margin of the predicted
    class."""
    w1, w2 = (m.weight.detach().double().cpu() for m in (model.fc1, model.fc2))
    lip = float(torch.linalg.matrix_norm(w2, 2) * SWISH_LIPSCHITZ * torch.linalg.matrix_norm(w1, 2))
    with torch.no_grad():
        top = model(x.to(next(model.parameters()).dtype)).double().topk(2, dim=1).values
    return ((top[:, 0] - top[:, 1]) / (math.sqrt(2) * lip)).cpu().numpy()


@dataclass
class Certificates:
    """Certified L2 radii of one defence's models on the first ``n_cert`` test points.

    Attributes:
        radius: certificate → ``(n,)`` radius (0 where not certified; of the predicted class).
        correct: certificate → ``(n,)`` the classifier it certifies is correct (the SWISH
            network, its ReLU twin, or the smoothed classifier, which may abstain).
        attack: ``"swish"`` / ``"twin"`` → ``(n,)`` smallest attack distance on that network.
        violations: certificate → points where a sound radius exceeds the attack distance.
        compared: certificate → points compared (correct, with a finite attack distance).
    """

    radius: dict[str, np.ndarray]
    correct: dict[str, np.ndarray]
    attack: dict[str, np.ndarray]
    violations: dict[str, int]
    compared: dict[str, int]

    def certified(self, name: str, r: float) -> np.ndarray:
        """Bool per point: correct and certified at radius ``r``."""
        return self.correct[name] & (self.radius[name] >= r)


def certify(swish_model: nn.Module, twin: nn.Module, x: Tensor, y: Tensor,
            swish_distance: np.ndarray, cfg: Mapping[str, Any]) -> Certificates:
    """Every certificate on one defence: Lipschitz margin and Corollary 1's second-order radius
    (:func:`analysis.bounds.hessian.mlp_certificate`, local K_R) and randomized smoothing
    (``smooth_sigma``, ``smooth_n0``, ``smooth_n``, ``smooth_alpha``) on the SWISH network;
    CROWN (L2, box [0, 1]), Peck's sound chain and the Lipschitz margin on the ReLU twin, whose
    own minimal-norm attack distances are computed here. Cached.

    A sound certificate never exceeds the attack distance on the same network and point; a
    violation (beyond 1e-9) is counted, not hidden. Smoothing certifies the smoothed classifier,
    a different classifier, so it has no such comparison."""
    names = ("smooth_sigma", "smooth_n0", "smooth_n", "smooth_alpha", "seed", "cw_steps",
             "cw_binary_steps", "pgd_steps")
    kw = {k: cfg[k] for k in names}
    x, y = x.cpu(), y.cpu()
    key = {"swish": _state(swish_model), "twin": _state(twin), "x": x, "y": y, **kw}

    def run() -> dict[str, Any]:
        import copy

        sw = copy.deepcopy(swish_model).cpu().double().eval()
        tw = copy.deepcopy(twin).cpu().eval()
        seq = _sequential(twin)
        sm = smoothing.certify(copy.deepcopy(swish_model).cpu().eval(), x,
                               sigma=kw["smooth_sigma"], n0=kw["smooth_n0"], n=kw["smooth_n"],
                               alpha=kw["smooth_alpha"], seed=kw["seed"])
        mn = attacks.min_norm(tw, x, y, box=BOX, seed=kw["seed"], cw_kw={
            "steps": kw["cw_steps"], "binary_steps": kw["cw_binary_steps"]},
            pgd_kw={"steps": kw["pgd_steps"]})
        chain = peck.chain_bounds(seq, x.double().flatten(1), "sound")
        return {"radius": {
            "lipschitz": swish_lipschitz_radius(sw, x),
            "cross_holder": hb.mlp_certificate(sw, x.double(), iters=40)["radius"].numpy(),
            "smoothing": sm.radius,
            "crown": verify.crown_radius(seq, x, in_shape=x.shape[1:], box=BOX).radius,
            "peck": chain.kappa.numpy(),
            "lipschitz_twin": verify.lipschitz_radius(seq, x, in_shape=x.shape[1:]).radius},
            "correct": {"swish": _still_correct(sw, x.double(), y),
                        "twin": _still_correct(tw, x, y), "smoothing": sm.prediction == y.numpy()},
            "twin_distance": mn.distance.numpy()}

    r = cache.memo("ch06/certify", key, run)
    attack = {"swish": np.asarray(swish_distance, dtype=float), "twin": r["twin_distance"]}
    correct, viol, compared = {}, {}, {}
    for name, rad in r["radius"].items():
        net = "smoothing" if name == "smoothing" else ("twin" if name in TWIN_CERTS else "swish")
        correct[name] = r["correct"][net]
        if name != "smoothing":
            ok = correct[name] & np.isfinite(attack[net])
            viol[name] = int((rad[ok] > attack[net][ok] + 1e-9).sum())
            compared[name] = int(ok.sum())
    return Certificates(r["radius"], correct, attack, viol, compared)


def certify_all(cfg: Mapping[str, Any], sd: SynthesisData,
                swish: Mapping[tuple[str, int], train.TrainResult],
                twins: Mapping[str, train.TrainResult],
                evals: Mapping[tuple[str, int], Evaluation]) -> dict[str, Certificates]:
    """:func:`certify` for every defence (seed ``seed``, whose twin exists); the SWISH
    certificates are compared with :meth:`Evaluation.l2_upper_bound` (every L2 attack)."""
    n, s = cfg["n_cert"], cfg["seed"]
    return {m: certify(swish[m, s].model, twins[m].model, sd.x_test[:n], sd.y_test[:n],
                       evals[m, s].l2_upper_bound(cfg["eps_l2"])[:n], cfg) for m in DEFENCES}


# ------------------------------------------------------------------------------- summaries


def _per_seed(evals: Mapping[tuple[str, int], Evaluation], name: str, fn) -> list[np.ndarray]:
    return [np.asarray(fn(e), dtype=float) for (m, _), e in sorted(evals.items()) if m == name]


def robust_at(evals: Mapping[tuple[str, int], Evaluation], name: str, norm: str, i: int,
              eps_l2: Sequence[float]) -> stats.Estimate:
    """Worst-case robust accuracy at the ``i``-th radius of ``norm`` (seeds × points)."""
    def fn(e: Evaluation) -> np.ndarray:
        return (e.worst_linf() if norm == "linf" else e.worst_l2(eps_l2))[i]
    return stats.two_stage_bootstrap(_per_seed(evals, name, fn))


def clean_accuracy(evals: Mapping[tuple[str, int], Evaluation], name: str) -> stats.Estimate:
    """Clean test accuracy (seeds × points)."""
    return stats.two_stage_bootstrap(_per_seed(evals, name, lambda e: e.correct))


def median_distance(evals: Mapping[tuple[str, int], Evaluation], name: str) -> stats.Estimate:
    """Median smallest L2 adversarial distance (0 for misclassified points; seeds × points;
    a point no attack broke counts as the largest distance)."""
    def fn(e: Evaluation) -> np.ndarray:
        return np.where(np.isfinite(e.distance), e.distance, 1e3)
    return stats.two_stage_bootstrap(_per_seed(evals, name, fn), stat=np.median)


def curves(evals: Mapping[tuple[str, int], Evaluation], cfg: Mapping[str, Any]
           ) -> dict[str, dict[str, list[stats.Estimate]]]:
    """``norm`` → defence → worst-case robust accuracy per radius (ε = 0 first: clean)."""
    out: dict[str, dict[str, list[stats.Estimate]]] = {"linf": {}, "l2": {}}
    for norm, key in (("linf", "eps_linf"), ("l2", "eps_l2")):
        for m in DEFENCES:
            out[norm][m] = [clean_accuracy(evals, m)] + [
                robust_at(evals, m, norm, i, cfg["eps_l2"]) for i in range(len(cfg[key]))]
    return out


def certified_accuracy(certs: Mapping[str, Certificates], name: str, cert: str, r: float
                       ) -> stats.Estimate:
    """Certified accuracy of one defence and certificate at L2 radius ``r`` (binomial)."""
    ok = certs[name].certified(cert, r)
    return stats.binomial_ci(int(ok.sum()), len(ok))


def _iv(e: stats.Estimate) -> str:
    return f"{report.sig3(e.value)} [{report.sig3(e.low)}, {report.sig3(e.high)}]"


def synthesis_table(cfg: Mapping[str, Any], sel: Selection,
                    evals: Mapping[tuple[str, int], Evaluation],
                    certs: Mapping[str, Certificates],
                    swish: Mapping[tuple[str, int], train.TrainResult] | None = None,
                    table_radius: float | None = None) -> pd.DataFrame:
    """The chapter's table: one row per defence, each cell ``value [low, high]``.

    Columns: ``defence``, ``strength``, ``clean``, ``L∞ <ε>`` and ``L2 <ε>`` (worst-case
    robust accuracy at the middle and the largest radius), ``median dist``, ``<cert> @<r>``
    (certified accuracy at ``table_radius``, default ``claim_radius``), and ``cost ÷ plain``
    when ``swish`` is given (a timing: it varies between runs)."""
    r = cfg["claim_radius"] if table_radius is None else table_radius
    pick = {"linf": sorted({len(cfg["eps_linf"]) // 2, len(cfg["eps_linf"]) - 1}),
            "l2": sorted({len(cfg["eps_l2"]) // 2, len(cfg["eps_l2"]) - 1})}
    rows = []
    for m in DEFENCES:
        row = {"defence": LABELS[m], "strength": "" if sel.chosen[m] is None
               else report.sig3(sel.chosen[m]), "clean": _iv(clean_accuracy(evals, m))}
        for norm, key, lab in (("linf", "eps_linf", "L∞"), ("l2", "eps_l2", "L2")):
            for i in pick[norm]:
                row[f"{lab} {cfg[key][i]:g}"] = _iv(robust_at(evals, m, norm, i, cfg["eps_l2"]))
        row["median dist"] = _iv(median_distance(evals, m))
        for c in SWISH_CERTS + TWIN_CERTS:
            row[f"{c} @{r:g}"] = _iv(certified_accuracy(certs, m, c, r))
        if swish is not None:
            row["cost ÷ plain"] = _iv(cost_ratio(swish, m))
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- sanity checklist


def _rate(per_seed: Sequence[np.ndarray]) -> stats.Estimate:
    """A per-point rate (or a difference of 0/1 outcomes) over seeds × points: the two-stage
    bootstrap; where it sees no spread (every value 0, or every value 1) its zero-width interval
    is no evidence, so the exact binomial interval of the pooled count replaces it."""
    est = stats.two_stage_bootstrap(per_seed)
    n = sum(v.size for v in per_seed)
    if not est.degenerate or est.value not in (0.0, 1.0):
        return est
    return stats.binomial_ci(int(round(est.value * n)), n)


def sanity_checks(evals: Mapping[tuple[str, int], Evaluation], name: str
                  ) -> dict[str, claims.Status]:
    """Carlini et al. (2019)'s checks for one defence, each a rule on seeds × points:

    * ``iterative beats single-step``: Σ_ε (alive under FGSM − alive under PGD, the worst of
      its two losses), L∞, > 0;
    * ``success → 100 % at large ε``: robust accuracy at ``eps_huge`` below 0.05;
    * ``converged``: alive with the usual PGD − alive with ``strong_factor``× the steps and
      restarts, middle L∞ radius, below 0.02 (more effort no longer helps);
    * ``no masking``: share of the correctly classified decision-based points where
      HopSkipJump found an adversarial more than 5 % closer than every gradient attack (or one
      where they found none), below 0.1; not testable when no such point exists.

    The three rates use :func:`_rate` (an exact binomial interval where the bootstrap sees no
    spread).
    """
    def dec(e: Evaluation) -> np.ndarray:
        d, g = e.decision, e.distance[:len(e.decision)]
        ok = g > 0  # correctly classified (0: misclassified; inf: no gradient attack succeeded)
        return (d[ok] < 0.95 * g[ok]).astype(float)

    masking = [v for v in _per_seed(evals, name, dec) if v.size]
    return {
        "iterative beats single-step": claims.at_least(stats.two_stage_bootstrap(_per_seed(
            evals, name, lambda e: (e.linf_fgsm.astype(int) - (e.linf_ce & e.linf_cw)).sum(0)))),
        "success → 100 % at large ε": claims.at_most(_rate(_per_seed(
            evals, name, lambda e: e.huge)), 0.05),
        "converged": claims.at_most(_rate(_per_seed(
            evals, name, lambda e: e.converged[0].astype(int) - e.converged[1])), 0.02),
        "no masking": claims.at_most(_rate(masking), 0.1) if masking else claims.not_testable(
            "no correctly classified point among the decision-based attack's")}


def sanity_table(evals: Mapping[tuple[str, int], Evaluation]) -> pd.DataFrame:
    """One row per defence, one column per check of :func:`sanity_checks`: its status and
    estimate with interval."""
    rows = []
    for m in DEFENCES:
        row = {"defence": LABELS[m]}
        for k, st in sanity_checks(evals, m).items():
            row[k] = f"{st.label}: {_iv(st.estimate) if st.estimate else st.reason}"
        rows.append(row)
    return pd.DataFrame(rows)


# -------------------------------------------------------------------------------- verdicts


def radii_survived(evals: Mapping[tuple[str, int], Evaluation], a: str, b: str,
                   eps_l2: Sequence[float], weight_b: float = 1.0,
                   base: str | None = None) -> stats.Estimate:
    """Paired per point and seed: (number of L2 radii survived under the worst case by ``a``)
    − ``weight_b`` × (that of ``b``) − (1 − ``weight_b``) × (that of ``base``), two-stage
    bootstrap. With ``weight_b = 0.5`` and ``base = "none"``: ``a``'s gain over ``base`` minus
    half of ``b``'s gain."""
    def n(m: str, s: int) -> np.ndarray:
        return evals[m, s].worst_l2(eps_l2).sum(0).astype(float)
    seeds = sorted(s for (m, s) in evals if m == a)
    return stats.two_stage_bootstrap([
        n(a, s) - weight_b * n(b, s) - ((1 - weight_b) * n(base, s) if base else 0.0)
        for s in seeds])


def regulariser_claims(evals: Mapping[tuple[str, int], Evaluation], cfg: Mapping[str, Any],
                       section: str) -> list[claims.Claim]:
    """Three claims per document regulariser: beats no defence, beats Jacobian regularisation,
    approaches adversarial training (recovers at least half of its gain over no defence), on
    the number of L2 radii ``eps_l2`` survived under the worst case (paired)."""
    e2, out = cfg["eps_l2"], []
    for m in DOCUMENT_REGULARISERS:
        lab = LABELS[m]
        out += [
            claims.Claim(f"{lab} beats no defence", "implied",
                         claims.at_least(radii_survived(evals, m, "none", e2)), section=section,
                         note="Σ_ε survived (L2 worst case), paired difference"),
            claims.Claim(f"{lab} beats Jacobian regularisation", "implied",
                         claims.at_least(radii_survived(evals, m, "jacobian", e2)),
                         section=section, note="Σ_ε survived, paired difference"),
            claims.Claim(f"{lab} approaches PGD adversarial training", "—",
                         claims.at_least(radii_survived(evals, m, "adv_training", e2, 0.5,
                                                        "none")), section=section,
                         note="gain over none minus half of AT's gain")]
    return out


def share_certified(certs: Mapping[str, Certificates], cert: str, r: float) -> stats.Estimate:
    """Share of the points the attacks leave standing at L2 radius ``r`` (correct, no
    adversarial within ``r`` on the certified network) that ``cert`` certifies at ``r``,
    pooled over the defences (binomial)."""
    net = "twin" if cert in TWIN_CERTS else "swish"
    k = n = 0
    for c in certs.values():
        standing = c.correct["crown" if net == "twin" else "lipschitz"] & (c.attack[net] > r)
        k += int((c.certified(cert, r) & standing).sum())
        n += int(standing.sum())
    if n == 0:
        raise ValueError(f"no point stands at radius {r}: the share of {cert} is undefined")
    return stats.binomial_ci(k, n)


def smoothing_reach(cfg: Mapping[str, Any]) -> float:
    """The largest radius randomized smoothing can certify with ``smooth_n`` samples at level
    ``1 − smooth_alpha``: every sample voting for the class gives the Clopper-Pearson lower bound
    ``α^(1/n)``, hence the radius ``σ·Φ⁻¹(α^(1/n))``."""
    from scipy.stats import norm

    p = float(smoothing.lower_confidence_bound(cfg["smooth_n"], cfg["smooth_n"],
                                               cfg["smooth_alpha"]))
    return float(cfg["smooth_sigma"] * norm.ppf(p))


def certificate_claims(certs: Mapping[str, Certificates], cfg: Mapping[str, Any],
                       section: str) -> list[claims.Claim]:
    """Per certificate: it certifies at least 10 % of what the attacks leave standing at
    ``claim_radius``; and the sound ones are never above an attack distance (``zero_of``)."""
    r, out = cfg["claim_radius"], []
    reach = smoothing_reach(cfg)
    for c in SWISH_CERTS + TWIN_CERTS:
        rule = claims.at_least(share_certified(certs, c, r), 0.1)
        if c == "smoothing" and reach < r:
            rule = claims.not_testable(
                f"with smooth_n = {cfg['smooth_n']} samples no point can be certified beyond "
                f"r = {reach:.3g} < {r:g} (every vote for the class: σ·Φ⁻¹(α^(1/n)))")
        out.append(claims.Claim(f"{CERT_LABELS[c]} certifies a non-trivial share at r = {r:g}",
                                "≥ 0.1", rule, section=section,
                                note="pooled over defences, one seed"))
    for c in ("lipschitz", "cross_holder", "crown", "peck", "lipschitz_twin"):
        n = sum(x.compared[c] for x in certs.values())
        out.append(claims.Claim(f"{CERT_LABELS[c]} is a lower bound on the attack distance",
                                "proof", claims.zero_of(sum(x.violations[c]
                                                            for x in certs.values()), max(n, 1)),
                                section=section, note="all defences, one seed"))
    return out


def verdict_table(claim_list: Sequence[claims.Claim], profile: str) -> pd.DataFrame:
    """``claim``, ``ours``, ``interval``, ``points``, ``seeds``, ``rule``, ``status``."""
    rows = []
    for c in claim_list:
        r = c.record(profile)
        rows.append({"claim": r["claim"], "ours": r["ours"], "interval": r["interval"],
                     "points": r["n_points"], "seeds": r["n_seeds"],
                     "rule": f"{r['rule']} ({r['tolerance']})", "status": r["status"]})
    return pd.DataFrame(rows).astype({"points": "Int64", "seeds": "Int64"})


def headline(cfg: Mapping[str, Any], evals: Mapping[tuple[str, int], Evaluation]
             ) -> dict[str, Any]:
    """The closing note's numbers: the defence with the highest L2 worst-case accuracy at the
    middle radius, and its and plain training's accuracies there (estimates)."""
    i = len(cfg["eps_l2"]) // 2
    acc = {m: robust_at(evals, m, "l2", i, cfg["eps_l2"]) for m in DEFENCES}
    best = max(acc, key=lambda m: acc[m].value)
    return {"eps": cfg["eps_l2"][i], "best": LABELS[best], "best_acc": acc[best],
            "none_acc": acc["none"]}


def as_dict(obj: Any) -> dict[str, Any]:
    """A result dataclass as a plain dict (for tests and displays)."""
    return asdict(obj)


def certified_curves(certs: Mapping[str, Certificates], cfg: Mapping[str, Any]
                     ) -> dict[str, dict[str, list[stats.Estimate]]]:
    """Certificate → defence → certified accuracy at radius 0 (the certified classifier's
    accuracy) and at every ``cert_radii``."""
    radii = [0.0] + list(cfg["cert_radii"])
    return {c: {m: [certified_accuracy(certs, m, c, r) for r in radii] for m in DEFENCES}
            for c in SWISH_CERTS + TWIN_CERTS}


def errata() -> list[report.Erratum]:
    """Errors found in the plan of this chapter (issue 16; there is no document): each with the
    correction the chapter applies and the section that shows it."""
    e = report.Erratum
    return [
        e("Issue 16, setup: CROWN/exact on ReLU twins 'trained the same way'",
          "a curvature penalty vanishes on a ReLU network (its input Hessian is 0 almost "
          "everywhere), so the Hessian-Frobenius twin trains exactly like the plain twin and the "
          "Cross-Hölder twin like the Cross-Lipschitz one: twin certificates say nothing about "
          "curvature regularisers",
          "judge the curvature regularisers by the certificates on the SWISH networks (Lipschitz "
          "margin, Cross-Hölder, randomized smoothing); the twin columns are read for the other "
          "defences only", "sec-06-certificates"),
        e("Issue 16, certificates: randomized smoothing among the certificates 'on every model'",
          "smoothing certifies the smoothed classifier, a different classifier from the network "
          "the attacks break, so its radius is not comparable point by point with an attack "
          "distance on the network",
          "certified accuracy of the smoothed classifier on its own predictions; no soundness "
          "assert against the network's attacks", "sec-06-certificates"),
        e("Issue 16, budget: 'the full profile may take up to 30 minutes'",
          "on the 2-core reference machine a cold make book must finish in 35 minutes for all "
          "seven chapters, which leaves this chapter about 12",
          "the full profile trains the SWISH MLP family only (the CNN family and Fashion-MNIST "
          "are in profile paper)", "sec-06-closing"),
    ]
