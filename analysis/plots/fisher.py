"""Figures of chapter 02 (Fisher-metric Jacobian regulariser): simplex, toy maps, CDFs, Fig. 1."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Ellipse

from analysis.bounds import fisher as fb
from analysis.plots import PALETTE, _np, axes

__all__ = ["plot_simplex", "plot_regions", "plot_jacobian_map", "plot_ellipses", "plot_cdfs",
           "plot_fig1", "plot_per_class", "plot_regions_row", "plot_jacobian_row",
           "plot_toy_radii", "plot_certificates"]

_TRI = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2]])


def _bary_to_xy(theta: np.ndarray) -> np.ndarray:
    return theta @ _TRI


def plot_simplex(points=None, labels=None, n: int = 200, ax=None) -> Figure:
    """T4: the simplex Δ² with B, the centre c, contours of d(·, B) (filled) and δ (lines).

    Args:
        points: optional probabilities ``(N, 3)`` (e.g. F(x_train)), coloured by ``labels``.
    """
    fig, ax = axes(ax, figsize=(5.6, 5.0))
    a, b = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n))
    m = (a + b) < 1
    th = np.stack([a[m], b[m], 1 - a[m] - b[m]], 1).clip(1e-12)
    t = torch.as_tensor(th)
    db, de = fb.boundary_distance(t).numpy(), fb.delta_center(t).numpy()
    xy = _bary_to_xy(th)
    cf = ax.tricontourf(xy[:, 0], xy[:, 1], db, levels=12, cmap="Blues_r")
    cs = ax.tricontour(xy[:, 0], xy[:, 1], de, levels=[0.25, 0.5, 0.75, 1.0, 1.25],
                       colors=PALETTE[1], linewidths=1.0, linestyles="--")
    ax.clabel(cs, fmt="δ=%.2f", fontsize=7)
    fig.colorbar(cf, ax=ax, label="exact d(θ, B) (Fisher-Rao)")
    c = _bary_to_xy(np.full(3, 1 / 3))
    for v in range(3):  # B: the three segments from the centre to the edge mid-points
        mid = np.full(3, 0.5)
        mid[v] = 0.0
        e = _bary_to_xy(mid)
        ax.plot([c[0], e[0]], [c[1], e[1]], color="k", lw=2,
                label="decision boundary B" if v == 0 else None)
    ax.plot(*np.vstack([_TRI, _TRI[:1]]).T, color="0.3", lw=1)
    ax.plot(*c, "o", color=PALETTE[1], ms=7, label="centre c")
    if points is not None:
        p = _bary_to_xy(_np(points))
        col = None if labels is None else [PALETTE[int(i) % len(PALETTE)] for i in _np(labels)]
        ax.scatter(p[:, 0], p[:, 1], s=6, c=col, alpha=0.6, label="F(x_train)")
    for v, name in enumerate(("class 0", "class 1", "class 2")):
        ax.annotate(name, _TRI[v], textcoords="offset points",
                    xytext=(-10 if v == 0 else 4, -12 if v < 2 else 4), fontsize=8)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.legend(loc="upper right", fontsize=7)
    ax.set_title("Δ²: exact d(θ, B) (filled), document's δ (dashed)", pad=14)
    return fig


def _grid(x: np.ndarray, n: int, pad: float = 0.5):
    lo, hi = x.min(0) - pad, x.max(0) + pad
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n))
    return gx, gy, torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], 1))


def plot_regions(model, x, y, title: str = "", n: int = 150, ax=None) -> Figure:
    """T1: decision regions (colour) and confidence max θ (shade) of a 2-D model."""
    fig, ax = axes(ax)
    xn, yn = _np(x), _np(y)
    gx, gy, g = _grid(xn, n)
    dt = next(model.parameters()).dtype
    with torch.no_grad():
        p = F.softmax(model(g.to(dt)), -1).double().numpy()
    conf = p.max(1).reshape(gx.shape)
    lab = p.argmax(1).reshape(gx.shape)
    k = p.shape[1]
    im = ax.contourf(gx, gy, conf, levels=np.linspace(1 / k, 1, 11), cmap="Greys", alpha=0.8)
    ax.contour(gx, gy, lab, levels=np.arange(k) + 0.5, colors="k", linewidths=1.5)
    for c in range(k):
        s = yn == c
        ax.scatter(xn[s, 0], xn[s, 1], s=6, color=PALETTE[c], label=f"class {c}")
    fig.colorbar(im, ax=ax, label="confidence max θ")
    ax.set(xlabel="x₁ (standardised)", ylabel="x₂ (standardised)", title=title)
    ax.legend(loc="lower right", fontsize=7)
    return fig


def plot_jacobian_map(model, x, eps: float, title: str = "", n: int = 90, ax=None) -> Figure:
    """T2: heat map of ‖J_μ‖₂ with the region where eq. 14 holds (‖J_μ‖₂ ≤ δ/ε) hatched."""
    fig, ax = axes(ax)
    xn = _np(x)
    gx, gy, g = _grid(xn, n)
    dt = next(model.parameters()).dtype
    jac = fb.fisher_jacobians(model, g.to(dt))
    spec = jac.spec_mu.double().numpy().reshape(gx.shape)
    ok = (jac.spec_mu <= jac.delta / eps).double().numpy().reshape(gx.shape)
    im = ax.pcolormesh(gx, gy, np.log10(spec + 1e-12), shading="auto", cmap="magma")
    ax.contourf(gx, gy, ok, levels=[0.5, 1.5], colors="none", hatches=["///"])
    ax.contour(gx, gy, ok, levels=[0.5], colors="c", linewidths=1)
    fig.colorbar(im, ax=ax, label="log₁₀ ‖J_μ‖₂ (Fisher-Rao per input unit)")
    ax.set(xlabel="x₁", ylabel="x₂",
           title=title or f"‖J_μ‖₂; hatched: eq. 14 holds at ε = {eps:g}")
    return fig


def plot_ellipses(model, points, eps: float, x_star=None, span: float | None = None,
                  n: int = 120, max_span: float = 1.5, title: str = "") -> Figure:
    """T3: at each point, the ε-circle, the linearised Fisher balls {v: ‖J_μ v‖ < δ} and
    {‖J_μ v‖ < d(F, B)}, the exact set {z: d(F(x), F(z)) < d(F(x), B)} and the nearest boundary
    point (``x_star``)."""
    pts = torch.as_tensor(_np(points))
    dt = next(model.parameters()).dtype
    jac = fb.fisher_jacobians(model, pts.to(dt))
    k = len(pts)
    ncols = min(3, k)
    nrows = int(math.ceil(k / ncols))
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.4 * nrows), squeeze=False)
    for i, ax in enumerate(axs.flat):
        if i >= k:
            ax.set_visible(False)
            continue
        c = pts[i].double().numpy()
        jm = jac.J_mu[i].double()
        u, s, vt = torch.linalg.svd(jm, full_matrices=False)
        ang = math.degrees(math.atan2(float(vt[0, 1]), float(vt[0, 0])))
        half = span or min(max(3 * eps, 1.5 * float(jac.d_B[i] / s[0])), max_span)
        gx, gy = np.meshgrid(np.linspace(c[0] - half, c[0] + half, n),
                             np.linspace(c[1] - half, c[1] + half, n))
        g = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], 1)).to(dt)
        with torch.no_grad():
            th = F.softmax(model(g), -1)
            d = fb.fisher_rao(jac.theta[i : i + 1].expand_as(th), th).double().numpy()
        ax.contourf(gx, gy, (d < float(jac.d_B[i])).reshape(gx.shape).astype(float),
                    levels=[0.5, 1.5], colors=[PALETTE[2]], alpha=0.3)
        ax.contour(gx, gy, (d < float(jac.d_B[i])).reshape(gx.shape).astype(float),
                   levels=[0.5], colors=[PALETTE[2]], linewidths=1.2)
        for rad, col, lab in ((float(jac.delta[i]), PALETTE[1], "‖J_μv‖ < δ"),
                              (float(jac.d_B[i]), PALETTE[0], "‖J_μv‖ < d(F,B)")):
            w = [2 * rad / max(float(sv), 1e-12) for sv in s[:2]]
            w = [min(ww, 20 * half) for ww in w]
            ax.add_patch(Ellipse(c, w[0], w[1] if len(w) > 1 else 20 * half, angle=ang,
                                 fill=False, color=col, lw=1.5, label=lab))
        ax.add_patch(Circle(c, eps, fill=False, color="k", ls="--", lw=1, label=f"ε = {eps:g}"))
        ax.plot(*c, "k+", ms=8)
        if x_star is not None:
            xs = _np(x_star)[i]
            ax.plot(xs[0], xs[1], "x", color=PALETTE[3], ms=8, label="nearest boundary pt")
        ax.set(xlim=(c[0] - half, c[0] + half), ylim=(c[1] - half, c[1] + half),
               xlabel="x₁", ylabel="x₂", title=f"point {i}: d(F,B)={float(jac.d_B[i]):.2f}")
        ax.set_aspect("equal")
        if i == 0:
            ax.plot([], [], color=PALETTE[2], lw=4, alpha=0.5, label="exact set")
            ax.legend(fontsize=6, loc="lower left")
    fig.suptitle(title or "T3: ε-ball, linearised Fisher balls and the exact robust set")
    fig.tight_layout()
    return fig


def plot_cdfs(values: Mapping[str, Sequence[float]], xlabel: str, title: str = "",
              ax=None, logx: bool = True) -> Figure:
    """Empirical CDFs of several samples (``inf`` values count as never reached)."""
    fig, ax = axes(ax)
    for i, (lab, v) in enumerate(values.items()):
        a = np.sort(_np(v).astype(float))
        n = len(a)
        a = a[np.isfinite(a)]
        ax.step(a, np.arange(1, len(a) + 1) / max(n, 1), where="post", label=lab,
                color=PALETTE[i % len(PALETTE)])
    if logx:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel="fraction of points ≤ r", title=title, ylim=(0, 1.02))
    ax.legend()
    return fig


def plot_fig1(histories: Mapping[str, Sequence[dict]], reg_name: str,
              xlabel: str = "epoch") -> Figure:
    """Fig. 1 of the document: (a) vanilla CE, (b) regularised loss (eq. 16), (c) regularised
    CE, (d) mean α, per epoch (``xlabel`` names the unit of the history's ``epoch``)."""
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(1, 4, figsize=(14, 3.2))
    van = histories["vanilla"]
    reg = histories[reg_name]
    ep_v = [r["epoch"] for r in van]
    ep_r = [r["epoch"] for r in reg]
    axs[0].plot(ep_v, [r["ce"] for r in van], "o-")
    axs[0].set(title="(a) vanilla: CE", ylabel="mean training loss")
    axs[1].plot(ep_r, [r["loss"] for r in reg], "o-", color=PALETTE[1])
    axs[1].set(title="(b) regularised: (1-η)CE + ηα")
    axs[2].plot(ep_r, [r["ce"] for r in reg], "o-", color=PALETTE[1])
    axs[2].set(title="(c) regularised: CE")
    axs[3].plot(ep_r, [r["alpha"] for r in reg], "o-", color=PALETTE[1])
    axs[3].set(title="(d) regularised: α (eq. 15)", yscale="log")
    for a in axs:
        a.set_xlabel(xlabel)
    fig.tight_layout()
    return fig


def _row(n: int, width: float = 5.2, height: float = 4.0):
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, axs[0]


def plot_regions_row(models: Mapping[str, object], x, y, x_test, y_test) -> Figure:
    """T1 for several 2-D models side by side; each title gives the test accuracy."""
    fig, axs = _row(len(models))
    xt = torch.as_tensor(_np(x_test))
    yt = torch.as_tensor(_np(y_test))
    for ax, (name, model) in zip(axs, models.items()):
        dt = next(model.parameters()).dtype
        with torch.no_grad():
            acc = float((model(xt.to(dt)).argmax(1) == yt).double().mean())
        plot_regions(model, x, y, title=f"{name}: test accuracy {acc:.3f}", ax=ax)
    fig.tight_layout()
    return fig


def plot_jacobian_row(models: Mapping[str, object], x, eps: float) -> Figure:
    """T2 for several 2-D models side by side (eq. 14 at radius ``eps``)."""
    fig, axs = _row(len(models))
    for ax, (name, model) in zip(axs, models.items()):
        plot_jacobian_map(model, x, eps, ax=ax, title=f"{name}: ‖J_μ‖₂, hatched: eq. 14 holds")
    fig.tight_layout()
    return fig


def plot_toy_radii(radii: Mapping[str, Mapping[str, object]], names: Sequence[str],
                   eps_grid: Sequence[float], curves: Mapping[str, Sequence[float]]) -> Figure:
    """T5: CDFs of the radii for the models ``names``, then robust accuracy against ε (L2)."""
    from analysis.plots import plot_curves

    fig, axs = _row(len(names) + 1, width=4.6, height=3.8)
    for ax, name in zip(axs, names):
        r = radii[name]
        plot_cdfs({"r* (ray search)": r["r_star"], "r_loc (grid)": r["r_loc"],
                   "r_margin": r["r_margin"], "r_glob": r["r_glob"], "r_doc": r["r_doc"]},
                  xlabel="radius (L2, standardised units)", title=name, ax=ax)
    plot_curves(eps_grid, dict(curves), xlabel="ε (L2, standardised units)",
                ylabel="robust accuracy (ray search)", ax=axs[-1],
                title="robust accuracy vs ε")
    fig.tight_layout()
    return fig


def plot_certificates(radii: Mapping[str, Mapping[str, object]]) -> Figure:
    """Radii (r_doc, r_margin, r_glob) against the verified attack distance, one panel per model.

    Args:
        radii: model -> dict with ``r_adv``, ``r_doc``, ``r_margin``, ``r_glob`` at the attacked
            points (L2, pixels in [0, 1]).
    """
    from analysis.plots import plot_bound_vs_attack

    fig, axs = _row(len(radii), width=5.6)
    for ax, (name, r) in zip(axs, radii.items()):
        for key, label in (("r_doc", "r_doc (document)"), ("r_margin", "r_margin"),
                           ("r_glob", "r_glob (ours)")):
            plot_bound_vs_attack(r[key], r["r_adv"], label=label, ax=ax,
                                 xlabel="attack distance r_adv (L2)", ylabel="radius (L2)")
        ax.set_title(f"{name}: radii vs attack distance")
    fig.tight_layout()
    return fig


def plot_per_class(table: Mapping[str, Sequence[float]], ylabel: str, title: str = "",
                   ax=None, logy: bool = True) -> Figure:
    """Grouped bars per predicted class (one group per class, one bar per series)."""
    fig, ax = axes(ax, figsize=(7.5, 3.4))
    names = list(table)
    k = len(next(iter(table.values())))
    w = 0.8 / len(names)
    for i, nm in enumerate(names):
        ax.bar(np.arange(k) + i * w, _np(table[nm]), width=w, label=nm,
               color=PALETTE[i % len(PALETTE)])
    ax.set_xticks(np.arange(k) + 0.4 - w / 2, [str(c) for c in range(k)])
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel="predicted class", ylabel=ylabel, title=title)
    ax.legend()
    return fig


def plot_pole_class(medians: Mapping[str, object], top_class: Mapping[str, int]) -> Figure:
    """Median α (eq. 15) by predicted class, one bar series per model (log scale); the title
    names the class with the largest median α per model.

    Args:
        medians: model -> per-class medians indexed by class 0-9 with an ``alpha`` column
            (``PoleClass.medians`` of :mod:`analysis.experiments.fisher`).
        top_class: model -> the class with the largest median α.
    """
    largest = ", ".join(f"class {c} ({m})" for m, c in top_class.items())
    return plot_per_class({f"{k}: median α": m["alpha"].to_numpy() for k, m in medians.items()},
                          "median α (eq. 15)", title="median α by predicted class; largest: "
                          + largest)
