"""Computations of chapter 00 (the toolkit): one function per table the chapter shows, cached
by the parameters it uses, tested at tiny size in ``tests/test_experiments_toolkit.py``."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from analysis import attacks, cache, data, report, stats, train
from analysis.attacks.unit_tests import plant_adversarials

#: pass rate an attack must reach on the planted-adversarial test (Zimmermann et al. 2022)
PASS_RATE = 0.99


def _unit_test_rows(model: torch.nn.Module, x: Tensor, y: Tensor, *, eps_linf: float,
                    eps_l2: float, pgd_steps: int, cw_steps: int, cw_binary_steps: int,
                    seed: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    linf = plant_adversarials(model, x, y, eps_linf, "linf")
    l2 = plant_adversarials(model, x, y, eps_l2, "l2")
    cw_kw = {"steps": cw_steps, "binary_steps": cw_binary_steps}

    def add(name: str, setup: Any, distance: Tensor) -> None:
        # within eps up to float32 rounding of the budget (a float32 model projects onto
        # float32(eps), which is up to 6e-8 relative above eps); inf (failure) never passes
        passed = int((distance <= setup.eps * (1 + 1e-6)).sum())
        est = stats.binomial_ci(passed, len(setup.y))
        rows.append({"attack": name, "norm": setup.norm, "eps": setup.eps, "rho": setup.rho,
                     "points": len(setup.y), "passed": passed, "pass rate": est.value,
                     "95% CI low": est.low, "passes 99%": est.value >= PASS_RATE})

    r = attacks.pgd(linf.model, linf.x, linf.y, eps_linf, "linf", steps=pgd_steps, seed=seed)
    add("PGD-L∞", linf, r.distance("linf"))
    g, xs, ys = l2.model, l2.x, l2.y
    r = attacks.pgd(g, xs, ys, eps_l2, "l2", steps=pgd_steps, seed=seed)
    add("PGD-L2", l2, r.distance("l2"))
    add("C&W-L2", l2, attacks.cw_l2(g, xs, ys, **cw_kw).distance("l2"))
    add("DeepFool", l2, attacks.deepfool(g, xs, ys).distance("l2"))
    mn = attacks.min_norm(g, xs, ys, cw_kw=cw_kw, pgd_kw={"steps": pgd_steps}, seed=seed)
    add("min-norm", l2, mn.distance)
    return rows


def attack_unit_tests(model: torch.nn.Module, x: Tensor, y: Tensor, *, eps_linf: float,
                      eps_l2: float, pgd_steps: int, cw_steps: int, cw_binary_steps: int,
                      seed: int) -> pd.DataFrame:
    """Pass rates of our attacks on the planted-adversarial unit test
    (:mod:`analysis.attacks.unit_tests`): around each correctly classified point an adversarial
    example of the modified network provably lies at ``rho = eps/2``; an attack passes on a
    point when it finds an adversarial example within ``eps``.

    Args:
        model: trained network (logits). x, y: test points in ``[0, 1]`` and labels.
        eps_linf: L∞ test radius (pixels) of PGD-L∞. eps_l2: L2 test radius (pixels) of PGD-L2,
            C&W-L2, DeepFool and the minimal-norm search.
        pgd_steps, cw_steps, cw_binary_steps, seed: attack settings.

    Returns:
        One row per attack: attack, norm, eps, rho, points, passed, pass rate, the lower end of
        its 95 % Clopper-Pearson interval, and whether the rate reaches 99 %.
    """
    params = {"eps_linf": eps_linf, "eps_l2": eps_l2, "pgd_steps": pgd_steps,
              "cw_steps": cw_steps, "cw_binary_steps": cw_binary_steps, "seed": seed}
    key = {"weights": model.state_dict(), "x": x, "y": y, **params}
    rows = cache.memo("00_toolkit/attack_unit_tests", key,
                      lambda: _unit_test_rows(model, x, y, **params))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- data and models


def load_sets(cfg: Any) -> dict[str, data.Dataset]:
    """The chapter's three image sets: MNIST (``cfg.data_source``), Fashion-MNIST (official
    files, stratified subsample of ``cfg.fashion_n_train`` training images) and sklearn digits."""
    mnist = data.load("mnist", source=cfg.data_source, seed=cfg.seed)
    fashion = data.load("fashion_mnist")
    if cfg.fashion_n_train < len(fashion.y_train):
        fashion = fashion.subset(n_train=cfg.fashion_n_train, seed=cfg.seed)
    return {"MNIST": mnist, "Fashion-MNIST": fashion,
            "digits": data.load("digits_images", seed=cfg.seed)}


def dataset_table(sets: dict[str, data.Dataset]) -> pd.DataFrame:
    """Source, sizes, input shape, classes and pixel range of each data set."""
    return report.table([{
        "data set": label, "source": d.source, "train": len(d.y_train), "test": len(d.y_test),
        "input": "x".join(map(str, d.input_shape)), "classes": d.num_classes,
        "pixel range": f"[{report.sig3(d.x_train.min())}, {report.sig3(d.x_train.max())}]"}
        for label, d in sets.items()], round_numbers=False)


def reference_specs(cfg: Any) -> list[tuple[str, str, dict[str, Any], int, float]]:
    """(data label, model name, model kwargs, epochs, learning rate) of each reference model."""
    mlp = {"widths": [256, 256], "activation": "relu"}
    return [
        ("MNIST", "linear", {}, cfg.epochs, 1e-3),
        ("MNIST", "mlp", mlp, cfg.epochs, 1e-3),
        ("MNIST", "cnn_small", {"channels": cfg.cnn_channels, "hidden": cfg.cnn_hidden},
         cfg.epochs, 2e-3),
        ("MNIST", "rnn_rows", {"hidden": cfg.rnn_hidden}, cfg.rnn_epochs, 3e-3),
        ("Fashion-MNIST", "linear", {}, cfg.fashion_epochs, 1e-3),
        ("Fashion-MNIST", "mlp", mlp, cfg.fashion_epochs, 1e-3),
        ("digits", "linear", {}, 5 * cfg.epochs, 1e-2),
        ("digits", "mlp", {"widths": [64], "activation": "relu"}, 5 * cfg.epochs, 3e-3),
    ]


def train_reference_models(sets: dict[str, data.Dataset], cfg: Any,
                           device: str | torch.device) -> dict[tuple[str, str], Any]:
    """Train (or load from the cache) every model of :func:`reference_specs` with
    :func:`analysis.train.fit` (Adam, cosine schedule, seeded; gradient clip 1 for the RNN).

    Returns:
        ``{(data label, model name): TrainResult}``.
    """
    trained = {}
    for label, name, kw, epochs, lr in reference_specs(cfg):
        d = sets[label]
        tcfg = train.TrainConfig(epochs=epochs, batch_size=cfg.batch_size, lr=lr, seed=cfg.seed,
                                 schedule="cosine", clip=1.0 if name == "rnn_rows" else None)
        trained[(label, name)] = train.fit(
            name, {"in_shape": list(d.input_shape), "num_classes": d.num_classes, **kw}, d, tcfg,
            device=device, desc=f"{label}/{name}", eval_every_epoch=label == "MNIST")
    return trained


def model_table(trained: dict[tuple[str, str], Any], sets: dict[str, data.Dataset],
                device: str | torch.device) -> pd.DataFrame:
    """Parameters and test accuracy of each trained model."""
    rows = []
    for (label, name), r in trained.items():
        d = sets[label]
        rows.append({"data set": label, "model": name,
                     "parameters": str(sum(p.numel() for p in r.model.parameters())),
                     "test accuracy": train.accuracy(r.model, d.x_test.to(device),
                                                     d.y_test.to(device))})
    return report.table(rows)


def training_table(trained: dict[tuple[str, str], Any]) -> pd.DataFrame:
    """Epochs, training time (seconds) and cache status of each model."""
    return report.table([{"data set": k[0], "model": k[1], "epochs": len(r.history),
                          "train seconds": r.seconds, "from cache": r.from_cache}
                         for k, r in trained.items()])


def models_of(trained: dict[tuple[str, str], Any], label: str) -> dict[str, torch.nn.Module]:
    """``{model name: network}`` of the reference models trained on data set ``label``."""
    return {name: r.model for (lab, name), r in trained.items() if lab == label}


def training_curves(trained: dict[tuple[str, str], Any], label: str
                    ) -> dict[str, tuple[list[int], list[float]]]:
    """``{model name: (epochs, test accuracy after each)}`` of the models trained on ``label``
    (those trained with ``eval_every_epoch``)."""
    return {name: ([h["epoch"] for h in r.history], [h["test_acc"] for h in r.history])
            for (lab, name), r in trained.items() if lab == label}


def first_test_points(d: data.Dataset, n: int, device: str | torch.device) -> tuple[Tensor, Tensor]:
    """The first ``n`` test images and labels of ``d``, on ``device``."""
    return d.x_test[:n].to(device), d.y_test[:n].to(device)


def correctly_classified(model: torch.nn.Module, d: data.Dataset, n: int,
                         device: str | torch.device) -> tuple[Tensor, Tensor]:
    """The first ``n`` test images of ``d`` (and their labels) that ``model`` classifies
    correctly, on ``device``."""
    x, y = d.x_test.to(device), d.y_test.to(device)
    pick = (attacks.predict(model, x) == y).nonzero().squeeze(1)[:n]
    return x[pick], y[pick]


# --------------------------------------------------------------------------- attacks


def attack_gallery(model: torch.nn.Module, x: Tensor, y: Tensor, *, eps_linf: float,
                   eps_l2: float, pgd_steps: int, cw_steps: int, cw_binary_steps: int,
                   seed: int) -> dict[str, tuple[attacks.AttackResult, str | None, float]]:
    """Five attacks on the same images: FGSM and PGD in the L∞ ball ``eps_linf``, PGD in the
    L2 ball ``eps_l2``, DeepFool and C&W-L2 (no budget).

    Returns:
        ``{label: (result, norm of its budget or None, budget or inf)}``.
    """
    lin, l2 = f"ε∞={eps_linf:g}", f"ε₂={eps_l2:g}"
    return {
        f"FGSM {lin}": (attacks.fgsm(model, x, y, eps_linf), "linf", eps_linf),
        f"PGD-L∞ {lin}": (attacks.pgd(model, x, y, eps_linf, "linf", steps=pgd_steps,
                                      seed=seed), "linf", eps_linf),
        f"PGD-L2 {l2}": (attacks.pgd(model, x, y, eps_l2, "l2", steps=pgd_steps, seed=seed),
                         "l2", eps_l2),
        "DeepFool": (attacks.deepfool(model, x, y), None, math.inf),
        "C&W-L2": (attacks.cw_l2(model, x, y, steps=cw_steps, binary_steps=cw_binary_steps),
                   None, math.inf),
    }


def gallery_table(gallery: dict[str, tuple[attacks.AttackResult, str | None, float]]
                  ) -> pd.DataFrame:
    """Success rate and median L2 / L∞ norms (pixels) of each attack of the gallery."""
    return report.table([{"attack": k, "success rate": r.success.double().mean(),
                          "median L2": r.norms_l2.median(), "median L∞": r.norms_linf.median()}
                         for k, (r, _, _) in gallery.items()])


def gallery_panels(model: torch.nn.Module,
                   gallery: dict[str, tuple[attacks.AttackResult, str | None, float]]
                   ) -> dict[str, dict[str, Tensor]]:
    """What :func:`analysis.plots.toolkit.plot_attack_gallery` draws per attack: the adversarial
    images, the model's prediction on them and the L2 / L∞ norms of the perturbations."""
    return {k: {"x_adv": r.x_adv, "pred": attacks.predict(model, r.x_adv), "l2": r.norms_l2,
                "linf": r.norms_linf} for k, (r, _, _) in gallery.items()}


def _weights_key(model: torch.nn.Module, x: Tensor, y: Tensor, **params: Any) -> dict[str, Any]:
    return {"weights": model.state_dict(), "x": x, "y": y, **params}


def robust_curves(models: dict[str, torch.nn.Module], x: Tensor, y: Tensor, *,
                  eps: dict[str, list[float]], steps: int, seed: int
                  ) -> dict[str, dict[str, np.ndarray]]:
    """Accuracy under PGD (CE loss, one random start, monotone in the radius) per norm, radius
    and model, cached per model and norm.

    Returns:
        ``{norm: {model: accuracies (len(eps[norm]),)}}``.
    """
    out: dict[str, dict[str, np.ndarray]] = {}
    for norm, radii in eps.items():
        out[norm] = {}
        for name, m in models.items():
            key = _weights_key(m, x, y, norm=norm, eps=list(radii), steps=steps, seed=seed)
            out[norm][name] = np.asarray(cache.memo(
                f"00_toolkit/robust_{norm}", key,
                lambda m=m, norm=norm, radii=radii: attacks.robust_accuracy(
                    m, x, y, radii, norm, steps=steps, seed=seed, batch_size=250)))
    return out


def robust_table(robust: dict[str, dict[str, np.ndarray]], eps: dict[str, list[float]],
                 at: dict[str, tuple[float, ...]]) -> pd.DataFrame:
    """Accuracy under PGD per model at the radii ``at[norm]`` (those of ``eps[norm]`` only).

    Args:
        robust: :func:`robust_curves` output. eps: its radii per norm. at: radii to show.

    Returns:
        One row per model, one column ``PGD-<norm> ε=<radius>`` per radius shown.
    """
    rows: dict[str, dict[str, Any]] = {}
    for norm, radii in eps.items():
        for name, accs in robust[norm].items():
            row = rows.setdefault(name, {"model": name})
            for e in (e for e in radii if e in at.get(norm, ())):
                row[f"PGD-{norm} ε={e:g}"] = accs[list(radii).index(e)]
    return report.table(list(rows.values()))


def min_norm_distances(models: dict[str, torch.nn.Module], x: Tensor, y: Tensor, *,
                       cw_steps: int, cw_binary_steps: int, pgd_steps: int, seed: int
                       ) -> dict[str, dict[str, Tensor]]:
    """Per model, the minimal-norm search's L2 distances (``"distance"``) and each attack's
    (``"d_deepfool"``, ``"d_cw"``, ``"d_pgd_l2"``), cached per model."""
    cw_kw = {"steps": cw_steps, "binary_steps": cw_binary_steps}
    out = {}
    for name, m in models.items():
        def run(m: torch.nn.Module = m) -> dict[str, Tensor]:
            r = attacks.min_norm(m, x, y, cw_kw=cw_kw, pgd_kw={"steps": pgd_steps}, seed=seed,
                                 batch_size=250)
            return {"distance": r.distance, **{f"d_{a}": d for a, d in r.per_attack.items()}}

        out[name] = cache.memo("00_toolkit/min_norm", _weights_key(
            m, x, y, **cw_kw, pgd_steps=pgd_steps, seed=seed), run)
    return out


def _median_attacked(d: Tensor) -> float:
    d = d[torch.isfinite(d) & (d > 0)]  # attacked (correctly classified) images
    return float(d.median()) if len(d) else math.nan


def min_norm_table(found: dict[str, dict[str, Tensor]]) -> pd.DataFrame:
    """Median L2 distance (pixels) over attacked images per model and attack; failures."""
    return report.table([{"model": name, "DeepFool": _median_attacked(r["d_deepfool"]),
                          "C&W-L2": _median_attacked(r["d_cw"]),
                          "min-norm": _median_attacked(r["distance"]),
                          "failed": int((~torch.isfinite(r["distance"])).sum())}
                         for name, r in found.items()])


def pgd_vs_min_norm(found: dict[str, dict[str, Tensor]], pgd_acc: dict[str, np.ndarray],
                    eps: list[float]) -> pd.DataFrame:
    """Where PGD-L2 at a fixed radius beats the minimal-norm search on the same images: the
    number of radii where its accuracy is lower and the largest accuracy gap."""
    rows = []
    for name, accs in pgd_acc.items():
        d = found[name]["distance"]
        mn_acc = np.array([float((d > e).double().mean()) for e in eps])
        rows.append({"model": name, "radii PGD < mn": int((accs < mn_acc).sum()),
                     "max(mn − PGD)": float(np.max(mn_acc - accs))})
    return report.table(rows)


# --------------------------------------------------------------------------- linear check


@dataclass
class LinearCheck:
    """The closed-form check on an affine classifier (float64).

    Attributes:
        d_star: exact unboxed minimal L2 distances ``(n,)`` of the correctly classified images.
        y: their labels. box_binds: bool ``(n,)``, the unboxed minimiser leaves ``[0, 1]``.
        found: ``{"none" | "[0, 1]": {attack: distances (n,)}}`` (``inf`` = failure).
    """

    d_star: Tensor
    y: Tensor
    box_binds: Tensor
    found: dict[str, dict[str, Tensor]]


def _closed_form(lin: torch.nn.Linear, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """``d*(x) = min_{k≠y} (z_y − z_k)/||w_y − w_k||`` and the minimiser ``x − d* u``."""
    w = lin.weight.detach()
    z = lin(x.flatten(1)).detach()
    wdiff = (w[y][:, None, :] - w[None, :, :]).norm(dim=2)  # (n, K)
    ratio = (z.gather(1, y[:, None]) - z) / wdiff
    ratio[torch.arange(len(y)), y] = math.inf
    d_star, nearest = ratio.min(dim=1)
    u = (w[y] - w[nearest]) / wdiff[torch.arange(len(y)), nearest][:, None]
    return d_star, x.flatten(1) - d_star[:, None] * u


def linear_check(model: torch.nn.Module, x: Tensor, y: Tensor, *, cw_steps: int,
                 cw_binary_steps: int, pgd_steps: int, seed: int) -> LinearCheck:
    """DeepFool, C&W-L2 and the minimal-norm search against the closed-form minimal distance of
    a model holding one ``nn.Linear`` (run on a float64 CPU copy, without box and in ``[0, 1]``).
    """
    lin64 = copy.deepcopy(model).cpu().double().eval()
    layers = [m for m in lin64.modules() if isinstance(m, torch.nn.Linear)]
    if len(layers) != 1:
        raise ValueError("the linear model must hold exactly one nn.Linear")
    x, y = x.cpu().double(), y.cpu()
    keep = lin64(x).argmax(1) == y  # correctly classified images only
    x, y = x[keep], y[keep]
    d_star, x_star = _closed_form(layers[0], x, y)
    cw_kw = {"steps": cw_steps, "binary_steps": cw_binary_steps}

    def run(box: Any) -> dict[str, Tensor]:
        mn = attacks.min_norm(lin64, x, y, box=box, cw_kw=cw_kw, pgd_kw={"steps": pgd_steps},
                              seed=seed)
        return {"DeepFool": attacks.deepfool(lin64, x, y, box=box).distance(),
                "C&W-L2": attacks.cw_l2(lin64, x, y, box=box, **cw_kw).distance(),
                "min-norm": mn.distance}

    found = {label: cache.memo("00_toolkit/linear_check", _weights_key(
        lin64, x, y, box=label, **cw_kw, pgd_steps=pgd_steps, seed=seed),
        lambda box=box: run(box)) for label, box in (("none", None), ("[0, 1]", (0.0, 1.0)))}
    return LinearCheck(d_star=d_star, y=y, box_binds=((x_star < 0) | (x_star > 1)).any(dim=1),
                       found=found)


def linear_check_table(check: LinearCheck) -> pd.DataFrame:
    """Successes and min / median / max of found distance over d* per box and attack."""
    rows = []
    for box, res in check.found.items():
        for name, d in res.items():
            r = d / check.d_star
            rows.append({"box": box, "attack": name, "success": int(torch.isfinite(d).sum()),
                         "min d/d*": float(r.min()), "median d/d*": float(r.median()),
                         "max d/d*": float(r.max())})
    return report.table(rows)


def linear_summary(check: LinearCheck) -> pd.DataFrame:
    """The quantiles 0 / 0.5 / 1 of the closed-form d* (float64) and whether the minimal-norm
    search without box lands within 1 % of d* on every image."""
    q = torch.quantile(check.d_star, torch.tensor([0.0, 0.5, 1.0], dtype=check.d_star.dtype))
    return report.table([{"d* min": q[0], "d* median": q[1], "d* max": q[2],
                          "min-norm within 1% of d* (no box)":
                              bool((check.found["none"]["min-norm"] <= 1.01 * check.d_star).all())}])


def linear_first_images(check: LinearCheck, n: int = 8) -> pd.DataFrame:
    """Closed-form and found distances (L2, pixels) of the first ``n`` images."""
    none, boxed = check.found["none"], check.found["[0, 1]"]
    return report.table([{"label": int(check.y[i]), "d*": check.d_star[i],
                          **{f"{a} (no box)": none[a][i] for a in none},
                          "mn [0, 1]": boxed["min-norm"][i], "box binds": bool(check.box_binds[i])}
                         for i in range(min(n, len(check.y)))])
