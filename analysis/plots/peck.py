"""Figures of chapter 03 (Peck 2017): boxplots, confusion heat maps, bound-vs-attack grids."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from analysis.plots import _np, axes, plot_bound_vs_attack


def plot_box(values: Mapping[str, Sequence[float]], ylabel: str, ax=None, logy: bool = False,
             title: str | None = None) -> Figure:
    """Boxplots (one per label) of the finite entries (Figs 3.2, 4.1, 4.2, 5.11)."""
    fig, ax = axes(ax)
    data = [(k, _np(v).astype(float).ravel()) for k, v in values.items()]
    data = [(k, v[np.isfinite(v)]) for k, v in data]
    ax.boxplot([v for _, v in data], showfliers=True)
    ax.set_xticks(range(1, len(data) + 1), [k for k, _ in data], rotation=20)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    return fig


def plot_confusion(mat, classes: Sequence[str], ax=None, title: str | None = None) -> Figure:
    """Heat map of [original, adversarial] label counts (Fig 5.10)."""
    fig, ax = axes(ax, figsize=(5.2, 4.4))
    m = _np(mat).astype(float)
    im = ax.imshow(m, cmap="viridis")
    ax.set_xticks(range(len(classes)), classes, rotation=60, fontsize=7)
    ax.set_yticks(range(len(classes)), classes, fontsize=7)
    ax.set_xlabel("label after FGS perturbation")
    ax.set_ylabel("predicted label before")
    fig.colorbar(im, ax=ax, label="samples")
    if title:
        ax.set_title(title)
    return fig


def plot_bound_grid(bounds: Mapping[str, Sequence[float]], dist, title: str = "",
                    xlabel: str = "smallest verified attack distance (L2, input units)"
                    ) -> Figure:
    """One log-log bound-vs-attack panel per variant, y = x line, violations marked."""
    n = len(bounds)
    fig, axs = plt.subplots(1, n, figsize=(4.2 * n, 3.6), squeeze=False)
    d = _np(dist).astype(float)
    for ax, (variant, b) in zip(axs[0], bounds.items(), strict=True):
        bb = _np(b).astype(float)
        if not np.any(np.isfinite(d) & (d > 0) & np.isfinite(bb) & (bb > 0)):
            ax.text(0.5, 0.5, "no finite attack distance", ha="center", transform=ax.transAxes)
            ax.set_title(f"{title}: {variant}")
            continue
        plot_bound_vs_attack(b, dist, label=variant, ax=ax, xlabel=xlabel,
                             ylabel="lower bound (L2)", title=f"{title}: {variant}")
    fig.tight_layout()
    return fig


def plot_tightness(ratios: Mapping[str, Sequence[float]], title: str = "", ax=None) -> Figure:
    """Histogram (log x) of attack distance ÷ bound per variant; ratios < 1 are violations."""
    fig, ax = axes(ax)
    arrs = {k: _np(v).astype(float) for k, v in ratios.items()}
    pos = np.concatenate([a[np.isfinite(a) & (a > 0)] for a in arrs.values()] + [np.ones(0)])
    if len(pos) == 0:
        pos = np.ones(1)
    edges = np.geomspace(max(pos.min(), 1e-3) / 1.5, pos.max() * 1.5, 40)
    for k, a in arrs.items():
        ax.hist(np.clip(a[np.isfinite(a)], edges[0], edges[-1]), bins=edges, histtype="step",
                lw=1.5, label=k)
    ax.axvline(1.0, color="k", ls="--", lw=1, label="ratio = 1 (bound = attack)")
    ax.set_xscale("log")
    ax.set_xlabel("attack distance ÷ lower bound")
    ax.set_ylabel("samples")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7)
    return fig


def plot_box_and_tightness(deviations: Mapping[str, Sequence[float]],
                           ratios: Mapping[str, Sequence[float]], *, ylabel: str,
                           box_title: str, ratio_title: str) -> Figure:
    """Two panels: boxplots of deviations (left) and attack ÷ bound histograms (right)."""
    fig, axs = plt.subplots(1, 2, figsize=(10, 3.6))
    plot_box(deviations, ylabel, ax=axs[0], title=box_title)
    plot_tightness(ratios, title=ratio_title, ax=axs[1])
    fig.tight_layout()
    return fig


def plot_bound_grids(grids: Mapping[str, tuple[Mapping[str, Sequence[float]], Sequence[float]]]
                     ) -> Figure:
    """One row of bound-vs-attack panels (one per variant) per network or data set:
    ``grids[title] = (bounds per variant, smallest verified attack distance)``."""
    n_rows = len(grids)
    n_cols = max(len(b) for b, _ in grids.values())
    fig, axs = plt.subplots(n_rows, n_cols, figsize=(4.0 * n_cols, 3.4 * n_rows), squeeze=False)
    for row, (title, (bounds, dist)) in zip(axs, grids.items(), strict=True):
        d = _np(dist).astype(float)
        for ax, (variant, b) in zip(row, bounds.items(), strict=False):
            bb = _np(b).astype(float)
            if not np.any(np.isfinite(d) & (d > 0) & np.isfinite(bb) & (bb > 0)):
                ax.text(0.5, 0.5, "no finite attack distance", ha="center", transform=ax.transAxes)
            else:
                plot_bound_vs_attack(b, dist, label=variant, ax=ax,
                                     xlabel="smallest attack distance (L2)",
                                     ylabel="lower bound (L2)")
            ax.set_title(f"{title}: {variant}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_regulariser(rows: Mapping[str, Sequence[Mapping[str, float]]]) -> Figure:
    """Fig 4.3: accuracy and FGS/FGV error rate against ℓ (log axis, ℓ = 0 drawn at 1e-3),
    one panel per data set."""
    from analysis.plots import plot_curves

    fig, axs = plt.subplots(1, len(rows), figsize=(4.5 * len(rows), 3.4), squeeze=False)
    for ax, (name, rs) in zip(axs[0], rows.items(), strict=True):
        ells = [max(r["ℓ"], 1e-3) for r in rs]
        plot_curves(ells, {"accuracy": [r["accuracy"] for r in rs],
                           "FGS/FGV error rate": [r["error either"] for r in rs]},
                    "ℓ (0 drawn at 1e-3)", "fraction of test set", ax=ax, logx=True,
                    title=f"{name}")
    fig.tight_layout()
    return fig


def plot_tightness_panels(ratios: Mapping[str, Mapping[str, Sequence[float]]]) -> Figure:
    """One :func:`plot_tightness` panel per network: ``ratios[network][variant]``."""
    fig, axs = plt.subplots(1, len(ratios), figsize=(5 * len(ratios), 3.6), squeeze=False)
    for ax, (title, r) in zip(axs[0], ratios.items(), strict=True):
        plot_tightness(r, title=title, ax=ax)
    fig.tight_layout()
    return fig


def plot_confusions(mats: Mapping[str, tuple[np.ndarray, Sequence[str]]]) -> Figure:
    """Fig 5.10: one [original, adversarial] heat map per network."""
    fig, axs = plt.subplots(1, len(mats), figsize=(5.4 * len(mats), 4.4), squeeze=False)
    for ax, (title, (m, classes)) in zip(axs[0], mats.items(), strict=True):
        plot_confusion(m, classes, ax=ax, title=title)
    fig.tight_layout()
    return fig


def plot_fgs_examples(clean, adversarial, clean_titles: Sequence[str],
                      adv_titles: Sequence[str]) -> Figure:
    """Figs 5.8-5.9: clean images (top row) and their FGS perturbations (bottom, clipped to
    [0, 1] for display)."""
    import torch

    from analysis.plots import plot_images

    imgs = torch.cat([clean, adversarial.clamp(0, 1)])
    return plot_images(imgs, [*clean_titles, *adv_titles], ncols=len(clean_titles))


def plot_gains(n_kernels, kernel_gain, layers, gains: Mapping[str, Sequence[float]]) -> Figure:
    """Figs 5.12-5.13: κ₁'/κ₁ against the number of scaled kernels (left) and depth (right)."""
    from analysis.plots import plot_curves

    fig, axs = plt.subplots(1, 2, figsize=(10, 3.6))
    plot_curves(n_kernels, {"(1 − 0.1)^(−n)": kernel_gain}, "number of kernels scaled by 0.9",
                "κ₁' ÷ κ₁", ax=axs[0], title="Fig 5.12")
    plot_curves(layers, gains, "number of layers L", "κ₁' ÷ κ₁", ax=axs[1], logy=True,
                title="Fig 5.13")
    fig.tight_layout()
    return fig
