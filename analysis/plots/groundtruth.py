"""Figures of the ground-truth sections (chapters 00 and 03): ratios to the exact minimal
adversarial distance on the exact set (:mod:`analysis.experiments.groundtruth`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from analysis.plots import PALETTE, axes

MARKERS = ["o", "s", "^", "D", "v", "P"]


def _ratio_plot(results: Mapping[str, Mapping[str, Any]], names: Sequence[str],
                labels: Sequence[str], ylabel: str, title: str, ax=None,
                log: bool = False) -> Figure:
    own = ax is None
    fig, ax = axes(ax, figsize=(6.4, 4.0))
    if own:  # out of pyplot's list: the notebook shows it once, as the cell's value
        plt.close(fig)
    for i, (nm, lab) in enumerate(zip(names, labels)):
        xs, ys = [], []
        for r in results.values():
            s = np.asarray(r["solved"], bool)
            exact = np.asarray(r["exact_upper"])[s]
            v = np.asarray(r[nm])[s]
            ok = np.isfinite(v)
            xs += list(exact[ok])
            ys += list(v[ok] / exact[ok])
        ax.scatter(xs, ys, s=22, marker=MARKERS[i % len(MARKERS)], color=PALETTE[i % len(PALETTE)],
                   alpha=0.75, label=lab)
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xscale("log")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("exact minimal distance (L2, input units)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="best", ncol=2)
    fig.tight_layout()
    return fig


def plot_attack_ratios(results: Mapping[str, Mapping[str, Any]],
                       attacks: Sequence[str] = ("deepfool", "cw", "pgd_l2", "min_norm"),
                       ax=None) -> Figure:
    """Attack distance ÷ exact minimum per solved point (1 = the attack found the minimum;
    below 1 would be a bug), against the exact minimum.

    Args:
        results: :func:`analysis.experiments.groundtruth.study` output.
        attacks: keys of the attacks to plot.
    """
    return _ratio_plot(results, attacks, attacks, "attack distance ÷ exact minimum",
                       "attacks against the exact minimum (exact set)", ax)


def plot_bound_ratios(results: Mapping[str, Mapping[str, Any]],
                      bounds: Sequence[str] = ("peck_published", "peck_sound", "lipschitz",
                                               "ibp", "crown"), ax=None) -> Figure:
    """Certified (or claimed) lower bound ÷ exact minimum per solved point, log scale (1 = tight;
    above 1 = the bound is violated), against the exact minimum."""
    labels = [b.replace("peck_", "Peck ") for b in bounds]
    return _ratio_plot(results, bounds, labels, "bound ÷ exact minimum",
                       "lower bounds against the exact minimum (exact set)", ax, log=True)
