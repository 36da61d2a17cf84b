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
