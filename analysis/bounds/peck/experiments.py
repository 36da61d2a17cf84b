"""Experiments of Peck (2017), chapters 3-5, and the bound-vs-attack comparison it never made.

Random classifiers are drawn as in the thesis (uniform parameters and samples, §3.3, §4.3);
"deviation" (undefined in the thesis, erratum E12) is read as ``‖η_FGS‖₂ − bound``. Every
function is seeded and deterministic for a fixed thread count.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from analysis import attacks
from analysis.bounds.peck import rules as R

DT = torch.float64

# Table 4.2 rows (spec 002, X2): changes from the base configuration. Rows 5-7 are uncertain
# in the garbled table (E13); we read them as 30 units, 50 classes and 20 units.
X2_BASE = {"d": 2, "widths": (10, 10, 10), "classes": 5, "x_range": 1.0, "p_range": 1.0,
           "n_mlp": 100, "n_samples": 10}
X2_ROWS = {
    1: {},
    2: {"x_range": 100.0},
    3: {"p_range": 100.0},
    4: {"d": 20},
    5: {"widths": (30, 30, 30)},
    6: {"classes": 50},
    7: {"widths": (20, 20, 20)},
    8: {"n_samples": 100, "n_mlp": 10, "x_range": 10.0},
}
# Table 3.1 configurations (dim, classes, x interval, parameter interval).
X1_ROWS = {1: (2, 5, 1.0, 1.0), 2: (20, 5, 1.0, 1.0), 3: (2, 50, 1.0, 1.0),
           4: (2, 5, 10.0, 1.0), 5: (2, 5, 1.0, 10.0)}


def stats(a: np.ndarray | Tensor) -> dict[str, float]:
    """mean, median, std (population), min, max and count of the finite entries."""
    v = np.asarray(a, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return {"mean": math.nan, "median": math.nan, "std": math.nan, "min": math.nan,
                "max": math.nan, "n": 0}
    return {"mean": float(v.mean()), "median": float(np.median(v)), "std": float(v.std()),
            "min": float(v.min()), "max": float(v.max()), "n": int(len(v))}


# ------------------------------------------------------------------------------- X1 linear


def random_linear(dim: int, classes: int, x_range: float, p_range: float, n_clf: int,
                  n_samples: int, seed: int = 0, m_factor: float = 10.0) -> dict[str, np.ndarray]:
    """Table 3.1: random linear classifiers, exact bound vs FGS (Alg 2.1, solved exactly).

    Args:
        dim, classes: input dimension and number of classes.
        x_range, p_range: samples ~ U[−x_range, x_range]^dim, parameters ~ U[−p_range, p_range].
        n_clf, n_samples: classifiers and samples per classifier.
        seed: RNG seed. m_factor: FGS search range M = m_factor × 2 x_range (in ε).

    Returns:
        Arrays over all (classifier, sample) pairs: ``bound`` (= exact distance), ``fgs`` (L2
        norm of the FGS perturbation, inf = not found within M), ``excess`` (fgs − bound),
        ``excess_l1`` (‖η‖₁ − bound), ``ratio`` (fgs/bound).
    """
    g = torch.Generator().manual_seed(seed)
    out: dict[str, list] = {k: [] for k in ("bound", "fgs", "fgs_l1")}
    for _ in range(n_clf):
        W = (torch.rand(classes, dim, generator=g, dtype=DT) * 2 - 1) * p_range
        b = (torch.rand(classes, generator=g, dtype=DT) * 2 - 1) * p_range
        x = (torch.rand(n_samples, dim, generator=g, dtype=DT) * 2 - 1) * x_range
        delta = R.linear_bound(W, b, x).delta
        eps, norm = R.fgs_linear(W, b, x, t_max=m_factor * 2 * x_range)
        out["bound"].append(delta)
        out["fgs"].append(norm)
        out["fgs_l1"].append(eps * dim)
    res = {k: torch.cat(v).numpy() for k, v in out.items()}
    res["excess"] = res["fgs"] - res["bound"]
    res["excess_l1"] = res["fgs_l1"] - res["bound"]
    res["ratio"] = res["fgs"] / res["bound"]
    return res


# ------------------------------------------------------------------------------- X2 random MLPs


def mlp_module(layers: Sequence[tuple[Tensor, Tensor]], out: tuple[Tensor, Tensor],
               act: str = "tanh") -> nn.Sequential:
    """An ``nn.Sequential`` (float64, eval) with the given hidden layers and output layer."""
    acts = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "softplus": nn.Softplus, "relu": nn.ReLU}
    mods: list[nn.Module] = []
    for V, b in [*layers, out]:
        lin = nn.Linear(V.shape[1], V.shape[0]).to(DT)
        with torch.no_grad():
            lin.weight.copy_(V)
            lin.bias.copy_(b)
        mods += [lin, acts[act]()]
    return nn.Sequential(*mods[:-1]).eval()


def random_mlp(d: int, widths: Sequence[int], classes: int, p_range: float, g: torch.Generator
               ) -> tuple[list[tuple[Tensor, Tensor]], tuple[Tensor, Tensor]]:
    """Hidden layers and output layer with parameters ~ U[−p_range, p_range]."""
    dims = [d, *widths]

    def u(*shape: int) -> Tensor:
        return (torch.rand(*shape, generator=g, dtype=DT) * 2 - 1) * p_range

    layers = [(u(o, i), u(o)) for i, o in zip(dims[:-1], dims[1:], strict=True)]
    return layers, (u(classes, dims[-1]), u(classes))


@torch.no_grad()
def ray_search_2d(model: nn.Module, x: Tensor, n_dir: int = 720, r_max: float = 20.0,
                  n_rad: int = 100, bisection: int = 30) -> Tensor:
    """Brute-force search of the minimal adversarial distance in 2-D: ``n_dir`` directions, a
    radial grid of ``n_rad`` points up to ``r_max``, then bisection on the first grid flip of
    each direction.

    Returns an **upper bound** on the minimal distance (every value is a verified flip; ``inf``
    where no direction flips within ``r_max``), not the exact distance: the minimum may lie
    between two directions, and a region thinner than the radial step ``r_max/n_rad`` that a
    ray crosses before its first grid flip is missed. ``x`` is ``(B, 2)``.
    """
    x = torch.as_tensor(x).to(DT)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"ray_search_2d needs inputs (B, 2), got {tuple(x.shape)}")
    th = torch.linspace(0, 2 * math.pi, n_dir + 1, dtype=DT)[:-1]
    u = torch.stack([th.cos(), th.sin()], 1)
    rad = torch.linspace(0, r_max, n_rad + 1, dtype=DT)[1:]
    res = torch.full((len(x),), math.inf, dtype=DT)
    for i, xi in enumerate(x):
        c = model(xi[None]).argmax(1)
        pts = xi + rad[None, :, None] * u[:, None, :]
        flip = (model(pts.reshape(-1, 2)).argmax(1) != c).reshape(n_dir, n_rad)
        has = flip.any(1)
        if not bool(has.any()):
            continue
        j = flip.to(torch.int64).argmax(1)
        hi = rad[j]
        lo = torch.where(j > 0, rad[(j - 1).clamp_min(0)], torch.zeros_like(hi))
        for _ in range(bisection):
            mid = (lo + hi) / 2
            ok = model(xi + mid[:, None] * u).argmax(1) != c
            hi, lo = torch.where(ok, mid, hi), torch.where(ok, lo, mid)
        res[i] = hi[has].min()
    return res


def random_mlps(d: int = 2, widths: Sequence[int] = (10, 10, 10), classes: int = 5,
                x_range: float = 1.0, p_range: float = 1.0, n_mlp: int = 100,
                n_samples: int = 10, seed: int = 0, act: str = "tanh",
                fgs_steps: int = 25, exact_mlps: int | None = None) -> dict[str, np.ndarray]:
    """Table 4.2 / Fig 4.1: random tanh MLPs, bounds (3 variants) vs FGS (and 2-D ray search).

    FGS: Alg 2.1 with M = 10 × the input range (E13), no box, gradient at the predicted label.
    For d = 2 the first ``exact_mlps`` MLPs (default all) are also searched by
    :func:`ray_search_2d` (an upper bound on the minimal distance).

    Returns:
        Arrays over all (MLP, sample) pairs: ``published``, ``corrected``, ``sound`` bounds,
        ``fgs`` (L2 norm, inf = no flip within M), ``exact`` (2-D ray search, an upper bound on
        the minimal distance, else inf; the key keeps its historical name),
        ``attack`` (min of fgs and exact), ``mlp`` (index of the MLP).
    """
    g = torch.Generator().manual_seed(seed)
    keys = ("published", "corrected", "sound", "fgs", "exact", "mlp")
    out: dict[str, list] = {k: [] for k in keys}
    for m in range(n_mlp):
        layers, o = random_mlp(d, widths, classes, p_range, g)
        x = (torch.rand(n_samples, d, generator=g, dtype=DT) * 2 - 1) * x_range
        for v in R.VARIANTS:
            out[v].append(R.mlp_bound(layers, o, act, x, v).bound)
        net = mlp_module(layers, o, act)
        y = net(x).argmax(1)
        fg = attacks.fgm_bisection(net, x, y, "sign", t_max=10 * 2 * x_range, box=None,
                                   bisection_steps=fgs_steps)
        out["fgs"].append(fg.distance())
        if d == 2 and (exact_mlps is None or m < exact_mlps):
            out["exact"].append(ray_search_2d(net, x, r_max=10 * 2 * x_range * math.sqrt(2)))
        else:
            out["exact"].append(torch.full((n_samples,), math.inf, dtype=DT))
        out["mlp"].append(torch.full((n_samples,), m))
    res = {k: torch.cat(v).numpy() for k, v in out.items()}
    res["attack"] = np.minimum(res["fgs"], res["exact"])
    return res


# ------------------------------------------------------------------------------- attacks


@dataclass
class AttackSummary:
    """Per-sample FGS (thesis) and strongest-attack distances.

    Attributes:
        fgs: L2 norm of the FGS perturbation found by Alg 2.1 (inf = not flipped within M).
        fgs_eps: the FGS ε (input units).
        fgs_label: label after the FGS perturbation (−1 = not flipped).
        strong: smallest verified L2 distance over our attacks (DeepFool, PGD-L2, C&W, ...).
        best: min(fgs, strong).
        by: attack that found ``best``.
        seconds: wall time of FGS and of the strong attacks.
    """

    fgs: np.ndarray
    fgs_eps: np.ndarray
    fgs_label: np.ndarray
    strong: np.ndarray
    best: np.ndarray
    by: list[str]
    seconds: dict[str, float]


def attack_suite(model: nn.Module, x: Tensor, y: Tensor, *, fgs_max: float,
                 fgs_steps: int = 25, strong: Sequence[str] = ("deepfool",), n_strong: int | None
                 = None, box: tuple[float, float] | None = (0.0, 1.0), seed: int = 0,
                 cw_kw: dict | None = None, pgd_kw: dict | None = None,
                 deepfool_kw: dict | None = None, bisection_steps: int = 6) -> AttackSummary:
    """FGS as in the thesis (no box, ε ≤ ``fgs_max``) on all samples, and ``strong`` attacks
    (via :func:`analysis.attacks.min_norm`, inside ``box``) on the first ``n_strong``.

    ``y`` should be the model's prediction (the thesis attacks the predicted label).
    """
    n = len(x)
    t0 = time.perf_counter()
    fg = attacks.fgm_bisection(model, x, y, "sign", t_max=fgs_max, box=None,
                               bisection_steps=fgs_steps)
    t1 = time.perf_counter()
    dist = fg.distance().cpu().numpy()
    with torch.no_grad():
        lab = attacks.predict(model, fg.x_adv).cpu().numpy()
    lab = np.where(np.isfinite(dist), lab, -1)
    eps = fg.info["eps"].cpu().numpy()
    ns = n if n_strong is None else min(n, n_strong)
    strong_d = np.full(n, math.inf)
    by = ["fgs" if np.isfinite(d) else "none" for d in dist]
    if strong and ns > 0:
        mn = attacks.min_norm(model, x[:ns], y[:ns], attacks=tuple(strong), box=box, seed=seed,
                              cw_kw=cw_kw, pgd_kw=pgd_kw, deepfool_kw=deepfool_kw,
                              bisection_steps=bisection_steps)
        strong_d[:ns] = mn.distance.cpu().numpy()
        for i in range(ns):
            if strong_d[i] < dist[i]:
                by[i] = mn.by[i]
    t2 = time.perf_counter()
    return AttackSummary(fgs=dist, fgs_eps=eps, fgs_label=lab, strong=strong_d,
                         best=np.minimum(dist, strong_d), by=by,
                         seconds={"fgs": t1 - t0, "strong": t2 - t1, "n_strong": ns})


def timed_chain(model: nn.Module, x: Tensor, variants: Sequence[str] = R.VARIANTS
                ) -> tuple[dict[str, np.ndarray], dict[str, float], dict[str, list]]:
    """:func:`rules.chain_bounds` for each variant, with wall times and per-layer κ means.

    Each variant is run once on two samples first, so that no variant's time includes the
    one-off costs of the first call: allocator, kernel selection and the per-network constants
    (the certified ‖T_W‖₂ of every convolution, memoised). Their total is ``secs["setup"]``.
    """
    out, secs, layers = {}, {"setup": 0.0}, {}
    for v in variants:
        t0 = time.perf_counter()
        R.chain_bounds(model, x[:2], v)
        secs["setup"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        r = R.chain_bounds(model, x, v)
        secs[v] = time.perf_counter() - t0
        out[v] = r.kappa.numpy()
        layers[v] = [(name, float(k.mean())) for name, k in r.layers]
    return out, secs, layers


def layer_factors(model: nn.Module, x: Tensor) -> list[dict[str, float | str]]:
    """Per layer of the chain (Alg 5.1), how much the ``published`` rule shrinks the bound
    compared with the ``sound`` rule.

    For layer l with input bound κ_l and output bound κ_(l+1), the factor is
    ``(κ_l/κ_(l+1))_published ÷ (κ_l/κ_(l+1))_sound``, median over the samples of ``x``: > 1
    where the published rule gives the *larger* bound (for a convolution: ‖T_W‖₂ > ‖W‖_F, where
    the published rule is invalid), < 1 where it loses. The product over layers is
    κ_published/κ_sound (both chains start from the same output-layer δ). Convolutions also get
    ``‖W‖_F`` (published divisor), ``⌈q/s⌉‖W‖_F`` (corrected), the certified ‖T_W‖₂ (sound) and
    the sound constant used before issue 10 (1.01 × 100 power iterations, an estimate).

    Args:
        model: an ``nn.Sequential`` (see :func:`rules.chain_bounds`). x: ``(B, ...)`` inputs.

    Returns:
        Rows ``{"layer", "published ÷ sound", "‖W‖_F", "⌈q/s⌉‖W‖_F", "‖T_W‖₂", "old: …"}`` from the layer
        next to the output down to the input (NaN for the norms of non-convolutions), then a
        row ``"whole chain"`` with the median of κ_published/κ_sound.
    """
    pub = R.chain_bounds(model, x, "published")
    snd = R.chain_bounds(model, x, "sound")
    net = R.leaves(copy.deepcopy(model).cpu().to(DT).eval())
    shapes, h = [], torch.as_tensor(x[:1]).detach().cpu().to(DT)
    with torch.no_grad():
        for m in net:
            shapes.append(tuple(h.shape[1:]))
            h = m(h)
    rows: list[dict[str, float | str]] = []
    for t in range(1, len(pub.layers)):
        (name, kp), (name_s, ks) = pub.layers[t], snd.layers[t]
        if name != name_s:
            raise RuntimeError(f"chains differ at layer {t}: {name} vs {name_s}")
        f = (kp / pub.layers[t - 1][1]) / (ks / snd.layers[t - 1][1])
        row: dict[str, float | str] = {"layer": name, "published ÷ sound": float(f.median()),
                                       "‖W‖_F": math.nan, "⌈q/s⌉‖W‖_F": math.nan,
                                       "‖T_W‖₂": math.nan, "old: 1.01 × power it.": math.nan}
        idx = int(name.split(":")[0])
        m = net[idx]
        if isinstance(m, nn.Conv2d):
            row["‖W‖_F"] = float(m.weight.detach().norm())
            row["⌈q/s⌉‖W‖_F"] = R.conv_frobenius_bound(m.weight, m.stride)
            row["‖T_W‖₂"] = R.conv_lipschitz(m.weight, shapes[idx], m.stride, m.padding)
            row["old: 1.01 × power it."] = 1.01 * R.conv_operator_norm(
                m.weight, shapes[idx], m.stride, m.padding, iters=100)
        rows.append(row)
    rows.append({"layer": "whole chain", "published ÷ sound": float((pub.kappa / snd.kappa).median()),
                 "‖W‖_F": math.nan, "⌈q/s⌉‖W‖_F": math.nan, "‖T_W‖₂": math.nan,
                 "old: 1.01 × power it.": math.nan})
    return rows


def lrn_jacobian(x: Tensor, n: int, k: float, alpha: float, beta: float) -> Tensor:
    """Jacobian of :func:`rules.lrn` across the channels of one pixel, in closed form.

    ``J[a, j] = δ_aj S_a^{−β} − 2αβ x_a x_j S_a^{−β−1} [j ∈ win(a)]``,
    ``S_a = k + α Σ_{l∈win(a)} x_l²``. Args: x ``(B, C)``. Returns ``(B, C, C)`` (float64).
    """
    x = torch.as_tensor(x).to(DT)
    C = x.shape[1]
    S = k + alpha * R._window_sum(x * x, n)
    a_idx, j_idx = torch.arange(C)[:, None], torch.arange(C)[None, :]
    win = ((j_idx >= a_idx - n // 2) & (j_idx <= a_idx + (n - 1) // 2)).to(DT)
    J = -2 * alpha * beta * (x * S ** (-beta - 1))[:, :, None] * win * x[:, None, :]
    return J + torch.diag_embed(S ** (-beta))


def lrn_lipschitz_search(n: int, k: float, alpha: float, beta: float, channels: int,
                         samples: int = 4000, starts: int = 4, steps: int = 150,
                         seed: int = 0) -> float:
    """Numerical estimate (from below) of sup_x ‖J_LRN(x)‖₂ over one pixel's ``channels``.

    The origin and random points at scales 10^U(−2, 1)·√(k/α) (the nonlinear regime is near
    √(k/α)), then
    gradient ascent (Adam, ``steps`` steps, float64) from the best ``starts`` of them. The LRN
    of a ``(c, d, d)`` tensor acts on each pixel separately, so this is its Lipschitz constant.

    Returns:
        The largest ‖J‖₂ found: a lower estimate of the supremum, to compare with the proven
        :func:`rules.lrn_lipschitz`.
    """
    g = torch.Generator().manual_seed(seed)
    scale = math.sqrt(k / alpha) * 10 ** (torch.rand(samples, 1, generator=g, dtype=DT) * 3 - 2)
    x = torch.randn(samples, channels, generator=g, dtype=DT) * scale
    x[0] = 0.0  # the origin, where J = k^(−β) I
    nrm = torch.linalg.matrix_norm(lrn_jacobian(x, n, k, alpha, beta), ord=2)
    best = float(nrm.max())
    z = x[nrm.argsort(descending=True)[:starts]].clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.01 * math.sqrt(k / alpha))
    for _ in range(steps):
        opt.zero_grad()
        val = torch.linalg.matrix_norm(lrn_jacobian(z, n, k, alpha, beta), ord=2)
        best = max(best, float(val.detach().max()))
        (-val.sum()).backward()
        opt.step()
    with torch.no_grad():
        val = torch.linalg.matrix_norm(lrn_jacobian(z, n, k, alpha, beta), ord=2)
    return max(best, float(val.max()))


def violations(bound: np.ndarray, dist: np.ndarray) -> int:
    """Number of samples where the bound exceeds a finite verified attack distance.

    A NaN or negative bound is a bug of the bound, not a non-violation: it raises ``ValueError``.
    """
    b, d = np.asarray(bound, float), np.asarray(dist, float)
    if np.isnan(b).any() or (b < 0).any():
        raise ValueError(f"bounds must be non-negative numbers; got {int(np.isnan(b).sum())} NaN "
                         f"and {int((b < 0).sum())} negative")
    return int(np.sum(np.isfinite(d) & (b > d)))


def confusion(pred: np.ndarray, adv: np.ndarray, k: int) -> np.ndarray:
    """Counts ``[original label, adversarial label]`` of flipped samples (Fig 5.10)."""
    m = np.zeros((k, k), dtype=int)
    for p, a in zip(pred, adv, strict=True):
        if a >= 0 and a != p:
            m[int(p), int(a)] += 1
    return m


# ------------------------------------------------------------------------------- X3 / X4 tabular


def tabular_data(name: str, seed: int = 0):
    """Iris / Wine (scikit-learn) or the seeded Spambase-shaped set (57 features, 4 601 rows,
    about 40 % positives; :func:`analysis.data.synthetic` ``"spambase_like"``)."""
    from analysis import data

    if name == "spambase_like":
        return data.synthetic("spambase_like", n=3680, dim=57, seed=seed, n_test=921)
    return data.load(name, seed=seed)


TABULAR_WIDTHS = {"iris": (5,), "wine": (5, 3), "spambase_like": (7, 5, 3)}


def train_tanh_mlp(ds, widths: Sequence[int], epochs: int, seed: int = 0, ell: float = 0.0,
                   batch_size: int = 16, lr: float = 1e-2, progress: bool = True):
    """A tanh MLP of Table 4.3 trained with Adam (``train.fit``, cached); ``ell`` > 0 adds the
    margin regulariser of §4.4 (loss L − ℓ δ(h_L(x)))."""
    from analysis import train

    reg = R.MarginRegularizer(ell) if ell > 0 else None
    cfg = train.TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    kw = {"in_shape": [int(ds.x_train.shape[1])], "widths": [int(w) for w in widths],
          "num_classes": int(ds.num_classes), "activation": "tanh"}
    return train.fit("mlp", kw, ds, cfg, regularizer=reg, progress=progress,
                     desc=f"tanh MLP {ds.name} ℓ={ell:g}", eval_every_epoch=False)


def tabular_bounds(model: nn.Module, x: Tensor, strong: Sequence[str] = ("deepfool",),
                   fgs_steps: int = 25, seed: int = 0) -> dict[str, np.ndarray]:
    """Bounds (3 variants) and attack distances for a trained tanh MLP on standardised data.

    Attacks target the predicted label, without box (standardised features); FGS range
    M = 10 (ε, standardised units).
    """
    net = _double(model)
    x = torch.as_tensor(x).to(DT)
    with torch.no_grad():
        y = net(x).argmax(1)
    out = {v: R.model_mlp_bound(net, "tanh", x, v).bound.numpy() for v in R.VARIANTS}
    a = attack_suite(net, x, y, fgs_max=10.0, fgs_steps=fgs_steps, strong=strong, box=None,
                     seed=seed)
    out.update(fgs=a.fgs, strong=a.strong, attack=a.best)
    return out


def useful_regularisation(rows: dict[str, list[dict]], y_test: dict[str, Tensor],
                          margin: float = 0.05) -> tuple[dict[str, dict | None], dict[float, list]]:
    """Read Fig 4.3 without the degenerate end: per data set, the row with ``ℓ > 0`` and the
    lowest ``"error either"`` among those that lower the ``ℓ = 0`` error while the accuracy stays
    above the majority-class rate + ``margin`` (a net collapsed to one class has no adversarial
    examples at all, so its zero error says nothing).

    Args:
        rows: per data set, the Fig 4.3 rows ``{"ℓ", "accuracy", "error either", ...}`` in
            increasing ℓ, the first with ``ℓ = 0``.
        y_test: per data set, the test labels (for the majority-class rate).
        margin: accuracy margin above the majority-class rate (fraction).

    Returns:
        ``(useful, collapsed)``: the chosen row per data set (``None`` if no ℓ qualifies) and, per
        ℓ, the data sets whose net is at or below the majority-class rate + ``margin``.
    """
    useful: dict[str, dict | None] = {}
    collapsed: dict[float, list] = {}
    for name, rs in rows.items():
        if not rs or rs[0]["ℓ"] != 0:
            raise ValueError(f"{name}: the first row must be the unregularised one (ℓ = 0)")
        y = torch.as_tensor(y_test[name]).long()
        floor = float(torch.bincount(y).max()) / len(y) + margin
        for r in rs[1:]:
            if r["accuracy"] <= floor:
                collapsed.setdefault(r["ℓ"], []).append(name)
        ok = [r for r in rs[1:] if r["accuracy"] > floor
              and r["error either"] < rs[0]["error either"]]
        useful[name] = min(ok, key=lambda r: (r["error either"], r["ℓ"])) if ok else None
    return useful, collapsed


def _double(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).cpu().to(DT).eval()


def error_rate(model: nn.Module, x: Tensor, radius: float, fgs_steps: int = 20) -> dict[str, float]:
    """Fig 4.3 'error': fraction of samples whose label FGS or FGV changes within an L2 budget
    ``radius`` (FGS ε ≤ radius/√d, FGV step ≤ radius); also the median distances found."""
    net = _double(model)
    x = torch.as_tensor(x).to(DT)
    d = x[0].numel()
    with torch.no_grad():
        y = net(x).argmax(1)
    s = attacks.fgm_bisection(net, x, y, "sign", t_max=radius / math.sqrt(d), box=None,
                              bisection_steps=fgs_steps).distance().numpy()
    g = attacks.fgm_bisection(net, x, y, "grad", t_max=radius, box=None,
                              bisection_steps=fgs_steps).distance().numpy()
    both = np.minimum(s, g)
    return {"fgs": float(np.isfinite(s).mean()), "fgv": float(np.isfinite(g).mean()),
            "either": float(np.isfinite(both).mean())}


def fgs_examples(model: nn.Module, x: Tensor, pred: np.ndarray, summary: AttackSummary,
                 k: int = 6) -> tuple[Tensor, Tensor, list[int]]:
    """Clean and FGS-perturbed images (no clipping, as in the thesis) of the first ``k``
    flipped samples (Figs 5.8-5.9). Returns ``(clean, adversarial, indices)``."""
    idx = [i for i in range(len(x)) if np.isfinite(summary.fgs[i])][:k]
    xg = x[idx].clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(model(xg), torch.as_tensor(pred[idx]), reduction="sum")
    (gx,) = torch.autograd.grad(loss, xg)
    eps = torch.as_tensor(summary.fgs_eps[idx], dtype=x.dtype).reshape(-1, *[1] * (x.ndim - 1))
    return xg.detach(), (xg + eps * gx.sign()).detach(), idx
