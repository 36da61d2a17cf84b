"""Figures of the report: one house style, every function ``plot_*(..., ax=None) -> Figure``.

No function here saves or shows a figure; the notebook displays what it returns. Chapter
specific figures live in ``analysis/plots/<topic>.py`` and use :func:`axes` and the palette.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442",
           "#000000"]  # Okabe-Ito, readable by colour-blind readers

STYLE = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "image.cmap": "viridis",
}


def to_book(name: str, fig: Figure) -> None:
    """Hand ``fig`` to the book under ``name`` and close it (no second inline image).

    The chapter's text places and captions it with a MyST-NB ``{glue:figure} <name>`` block
    carrying ``:name: <name>``, so the caption (numbered by Sphinx) sits in the narrative and
    ``{numref}`` can cite it. Returns None, so that a cell ending with this call does not
    display the figure a second time as its value.
    """
    from myst_nb import glue

    glue(name, fig, display=False)
    plt.close(fig)


def use_style() -> None:
    """Apply the house style to matplotlib's global settings."""
    plt.rcParams.update(STYLE)


use_style()


def _np(a) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def axes(ax=None, figsize: tuple[float, float] | None = None):
    """``(fig, ax)``: the figure of ``ax``, or a new figure with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def grid(n: int, ncols: int = 4, size: float = 2.6) -> tuple[Figure, np.ndarray]:
    """A new figure with ``n`` panels in rows of ``ncols``; unused panels are hidden."""
    nrows = int(np.ceil(n / ncols))
    fig, axs = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for a in axs.flat[n:]:
        a.set_visible(False)
    return fig, axs.flat[:n]


def plot_images(images, titles: Sequence[str] | None = None, ncols: int = 8,
                cmap: str = "gray", vmin: float | None = 0.0, vmax: float | None = 1.0,
                suptitle: str | None = None) -> Figure:
    """A grid of images (N,C,H,W), (N,H,W) or flat squares; pixels in [0, 1] unless vmin/vmax."""
    imgs = _np(images)
    if imgs.ndim == 2:
        side = int(round(np.sqrt(imgs.shape[1])))
        imgs = imgs.reshape(-1, side, side)
    if imgs.ndim == 4:
        imgs = imgs.transpose(0, 2, 3, 1)
        if imgs.shape[-1] == 1:
            imgs = imgs[..., 0]
    n = len(imgs)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axs = plt.subplots(nrows, ncols, figsize=(1.3 * ncols, 1.45 * nrows), squeeze=False)
    for i, a in enumerate(axs.flat):
        a.axis("off")
        if i < n:
            a.imshow(imgs[i], cmap=cmap, vmin=vmin, vmax=vmax)
            if titles is not None:
                a.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_curves(x, ys: Mapping[str, Sequence[float]], xlabel: str, ylabel: str, ax=None,
                logx: bool = False, logy: bool = False, title: str | None = None,
                errors: Mapping[str, Sequence[float]] | None = None, marker: str = "o") -> Figure:
    """Several labelled curves over one x axis (optional error bars per curve)."""
    fig, ax = axes(ax)
    xv = _np(x)
    for label, y in ys.items():
        err = None if errors is None or label not in errors else _np(errors[label])
        if err is None:
            ax.plot(xv, _np(y), marker=marker, ms=3, label=label)
        else:
            ax.errorbar(xv, _np(y), yerr=err, marker=marker, ms=3, capsize=2, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if len(ys) > 1 or errors:
        ax.legend()
    return fig


def plot_bound_vs_attack(bound, dist, label: str | None = None, ax=None,
                         xlabel: str = "distance found by attack (L2)",
                         ylabel: str = "lower bound (L2)", title: str | None = None) -> Figure:
    """Log-log scatter of a lower bound against the verified attack distance, with y = x.

    Points above the line (bound > distance) are violations and are drawn as red crosses.
    Non-positive or infinite values are dropped (they cannot be drawn on log axes).
    """
    fig, ax = axes(ax)
    b, d = _np(bound).astype(float).ravel(), _np(dist).astype(float).ravel()
    ok = np.isfinite(b) & np.isfinite(d) & (b > 0) & (d > 0)
    b, d = b[ok], d[ok]
    bad = b > d
    ax.scatter(d[~bad], b[~bad], s=10, alpha=0.7, label=label or "samples")
    if bad.any():
        ax.scatter(d[bad], b[bad], s=22, marker="x", color="#D62728",
                   label=f"bound > attack ({int(bad.sum())})")
    if len(b):
        lo, hi = min(b.min(), d.min()), max(b.max(), d.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend()
    return fig
