"""Figures of chapter 06 (synthesis): trade-off, robust-accuracy curves, certified-accuracy
curves, cost against robustness. Each ``plot_*`` returns a figure; nothing is saved or shown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.plots import PALETTE

_MARKERS = "osD^v<>Px"


def _style(names: Sequence[str]) -> dict[str, tuple[str, str]]:
    return {n: (PALETTE[i % len(PALETTE)], _MARKERS[i % len(_MARKERS)])
            for i, n in enumerate(names)}


def plot_tradeoff(sweep: pd.DataFrame, labels: Mapping[str, str]) -> Figure:
    """Clean against robust test accuracy of every sweep model, one line per defence (in order
    of strength), the chosen strength circled; the undefended model as a black star.

    Args:
        sweep: :func:`analysis.experiments.synthesis.sweep_tradeoff`'s table.
        labels: defence → legend label.
    """
    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    sty = _style(list(labels))
    for name, g in sweep.groupby("defence", sort=False):
        g = g.sort_values("strength")
        c, mk = sty[name]
        ax.plot(g["clean"], g["robust"], marker=mk, ms=4, color=c, label=labels[name])
        ch = g[g["chosen"]]
        ax.scatter(ch["clean"], ch["robust"], s=110, facecolors="none", edgecolors=c)
    ax.set_xlabel("clean test accuracy")
    ax.set_ylabel(f"L2 PGD accuracy at ε = {sweep['eps'].iloc[0]:g} (pixels)")
    ax.legend(fontsize=7, ncol=2)
    return fig


def _band(ax, x, ests, color, marker, label) -> None:
    v = np.array([e.value for e in ests])
    lo, hi = np.array([e.low for e in ests]), np.array([e.high for e in ests])
    ax.plot(x, v, marker=marker, ms=3, color=color, label=label)
    ax.fill_between(x, lo, hi, color=color, alpha=0.12, lw=0)


def plot_robust_curves(curves: Mapping[str, Mapping[str, Sequence]], eps: Mapping[str, Sequence],
                       labels: Mapping[str, str]) -> Figure:
    """Per-example worst-case accuracy against ε (L∞ left, L2 right), mean over seeds with the
    two-stage bootstrap interval as a band; ε = 0 is the clean accuracy."""
    fig, axs = plt.subplots(1, 2, figsize=(12.0, 4.2), sharey=True)
    sty = _style(list(labels))
    for ax, norm in zip(axs, ("linf", "l2")):
        x = np.concatenate([[0.0], np.asarray(eps[norm], dtype=float)])
        for name, ests in curves[norm].items():
            _band(ax, x, ests, *sty[name], labels[name])
        ax.set_xlabel(f"{'L∞' if norm == 'linf' else 'L2'} radius ε (pixels)")
        ax.set_ylim(-0.02, 1.02)
    axs[0].set_ylabel("accuracy under every attack")
    axs[1].legend(fontsize=7)
    return fig


def plot_certified(cert_curves: Mapping[str, Mapping[str, Sequence]], radii: Sequence[float],
                   labels: Mapping[str, str], cert_labels: Mapping[str, str]) -> Figure:
    """Certified accuracy against the L2 radius, one panel per certificate, one line per defence
    (binomial intervals as bands; radius 0 is the certified network's clean accuracy)."""
    names = list(cert_curves)
    fig, axs = plt.subplots(2, (len(names) + 1) // 2, figsize=(13.0, 6.6), sharey=True,
                            squeeze=False)
    sty = _style(list(labels))
    x = np.concatenate([[0.0], np.asarray(radii, dtype=float)])
    for ax, c in zip(axs.flat, names):
        for name, ests in cert_curves[c].items():
            _band(ax, x, ests, *sty[name], labels[name])
        ax.set_title(cert_labels[c], fontsize=9)
        ax.set_xlabel("L2 radius (pixels)")
        ax.set_ylim(-0.02, 1.02)
    for a in axs.flat[len(names):]:
        a.set_visible(False)
    axs.flat[0].set_ylabel("certified accuracy")
    axs.flat[0].legend(fontsize=6)
    fig.tight_layout()
    return fig


def plot_cost(cost: Mapping[str, object], robust: Mapping[str, object], eps: float,
              labels: Mapping[str, str]) -> Figure:
    """Training cost per epoch ÷ plain (log x) against the L2 worst-case accuracy at ``eps``,
    both with their intervals."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    sty = _style(list(labels))
    for name in cost:
        c, r = cost[name], robust[name]
        col, mk = sty[name]
        ax.errorbar([c.value], [r.value], xerr=[[c.value - c.low], [c.high - c.value]],
                    yerr=[[r.value - r.low], [r.high - r.value]], fmt=mk, color=col,
                    capsize=2, label=labels[name])
    ax.set_xscale("log")
    ax.set_xlabel("training seconds per epoch ÷ plain training")
    ax.set_ylabel(f"L2 worst-case accuracy at ε = {eps:g} (pixels)")
    ax.legend(fontsize=7, ncol=2)
    return fig
