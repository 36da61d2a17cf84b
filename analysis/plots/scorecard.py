"""The scorecard's figure: how many claims of each chapter got each status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from analysis.plots import axes

#: One colour per status (Okabe-Ito), in the order of :data:`analysis.claims.STATUSES`.
STATUS_COLOURS = {
    "reproduced": "#009E73",
    "partly": "#56B4E9",
    "not reproduced": "#E69F00",
    "inconclusive": "#999999",
    "refuted": "#D55E00",
    "not testable": "#CC79A7",
}


def plot_status_counts(counts: Mapping[str, Mapping[str, int]], statuses: Sequence[str],
                       ax=None) -> Figure:
    """A horizontal stacked bar per chapter: the number of its claims with each status.

    Args:
        counts: ``{chapter label: {status: number of claims}}``, in display order (top first).
        statuses: the status vocabulary, in stacking order (left to right).
        ax: axes to draw into (a new figure when None).

    Returns:
        The figure.
    """
    labels = list(counts)
    fig, ax = axes(ax, figsize=(7.0, 0.55 * max(len(labels), 1) + 1.6))
    y = np.arange(len(labels))[::-1]  # first chapter on top
    left = np.zeros(len(labels))
    for status in statuses:
        n = np.array([counts[c].get(status, 0) for c in labels], dtype=float)
        if n.any():
            ax.barh(y, n, left=left, color=STATUS_COLOURS.get(status, "#000000"),
                    edgecolor="white", label=status)
            for yi, li, ni in zip(y, left, n, strict=True):
                if ni:
                    ax.text(li + ni / 2, yi, f"{int(ni)}", ha="center", va="center",
                            fontsize=8, color="white")
        left += n
    ax.set_yticks(y, labels)
    ax.set_xlabel("number of claims")
    ax.grid(axis="y", visible=False)
    if left.any():  # a legend only when some chapter has claims
        ax.legend(ncols=3, loc="upper center",
                  bbox_to_anchor=(0.5, -0.18 - 0.1 / max(len(labels), 1)))
    fig.tight_layout()
    return fig
