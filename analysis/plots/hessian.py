"""Figures of chapter 05 (Cross-Hölder): robustness curves, Fig. 3 histograms, certificate gap."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from analysis.plots import PALETTE, _np, plot_bound_vs_attack

MODEL_COLORS = {"plain": PALETTE[7], "CL": PALETTE[0], "CH": PALETTE[1], "AT": PALETTE[2]}


def _with_clean(rc, key: str) -> tuple[np.ndarray, np.ndarray]:
    """ε and accuracy with the clean accuracy prepended at ε = 0 (when known)."""
    eps, acc = _np(rc.eps).astype(float), _np(getattr(rc, key)).astype(float)
    clean = float(getattr(rc, "clean", np.nan))
    if np.isfinite(clean) and eps[0] > 0:
        return np.concatenate([[0.0], eps]), np.concatenate([[clean], acc])
    return eps, acc


def _px_axis(ax, sigma: float) -> None:
    """Secondary x axis in pixel units (ε_px = σ·ε)."""
    sec = ax.secondary_xaxis("top", functions=(lambda e: e * sigma, lambda p: p / sigma))
    sec.set_xlabel(f"ε in pixel units [0, 1] (σ = {sigma:.3f})", fontsize=8)


def plot_robust_panels(curves: Mapping[str, object], sigma: float, dataset: str,
                       figsize: tuple[float, float] = (13.0, 3.9)) -> Figure:
    """Figs. 4 / 5: accuracy against L2 ε under PGD-CE, PGD-CW and the worst case.

    Args:
        curves: model label → :class:`~analysis.regularizers.crossholder.RobustCurves`.
        sigma: pixel standard deviation (for the pixel-unit axis).
        dataset: name for the titles.

    Returns:
        A figure with three panels; the worst-case panel draws the per-example worst case
        (solid) and the document's min of the two accuracies (dashed).
    """
    fig, axs = plt.subplots(1, 3, figsize=figsize, sharey=True)
    panels = (("ce", "(a) PGD, cross-entropy loss"), ("cw", "(b) PGD, CW loss"),
              ("per_example", "(c) worst case"))
    for ax, (key, title) in zip(axs, panels):
        for label, rc in curves.items():
            c = MODEL_COLORS.get(label)
            ax.plot(*_with_clean(rc, key), marker="o", ms=3, color=c, label=label)
            if key == "per_example":
                ax.plot(*_with_clean(rc, "min_of_two"), ls="--", lw=1, color=c)
        ax.set_title(f"{dataset}: {title}")
        ax.set_xlabel("L2 radius ε (standardised units)")
        ax.set_ylim(-0.02, 1.02)
        _px_axis(ax, sigma)
    axs[0].set_ylabel("accuracy under attack")
    axs[0].legend(title="model")
    axs[2].text(0.98, 0.98, "solid: per-example worst case\ndashed: min of the two accuracies",
                transform=axs[2].transAxes, ha="right", va="top", fontsize=7)
    fig.tight_layout()
    return fig


def plot_worst_case(curves: Mapping[str, object], sigma: float, title: str, ax=None) -> Figure:
    """Figs. 1 / 2: the per-example worst-case accuracy of every model against ε."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6.0, 4.0))
    for label, rc in curves.items():
        ax.plot(*_with_clean(rc, "per_example"), marker="o", ms=3,
                color=MODEL_COLORS.get(label), label=label)
    ax.set_xlabel("L2 radius ε (standardised units)")
    ax.set_ylabel("accuracy under attack (worst of PGD-CE, PGD-CW)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    _px_axis(ax, sigma)
    ax.legend(title="model")
    fig.tight_layout()
    return fig


def plot_fig3(hv_star, hg, bins: int = 40) -> Figure:
    """Fig. 3: (a) histograms of |Hg| and |Hv*|; (b) histogram of |Hv*| − |Hg|.

    Args:
        hv_star: operator norms by converged power iteration ``(N,)``.
        hg: CURE's gradient-direction proxy ``(N,)``.
    """
    a, b = _np(hv_star).astype(float), _np(hg).astype(float)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11.0, 3.9))
    edges = np.linspace(0, np.quantile(np.concatenate([a, b]), 0.99) * 1.05, bins + 1)
    ax1.hist(b, bins=edges, histtype="stepfilled", alpha=0.45, color=PALETTE[0], label="|Hg|")
    ax1.hist(a, bins=edges, histtype="stepfilled", alpha=0.45, color=PALETTE[1], label="|Hv*|")
    ax1.axvline(np.median(a), color=PALETTE[1], ls=":", lw=1, label="median |Hv*|")
    ax1.axvline(np.mean(a), color=PALETTE[1], ls="--", lw=1, label="mean |Hv*|")
    ax1.set_xlabel("Hessian norm estimate (standardised units; 1% largest clipped)")
    ax1.set_ylabel("test points")
    ax1.set_title("(a) |Hg| and |Hv*|, undefended MNIST CNN")
    ax1.legend()
    d = a - b
    ax2.hist(d, bins=bins, color=PALETTE[2], alpha=0.7)
    ax2.axvline(np.median(d), color="k", ls="--", lw=1, label=f"median {np.median(d):.3g}")
    ax2.set_xlabel("|Hv*| − |Hg|")
    ax2.set_ylabel("test points")
    ax2.set_title("(b) difference (document: mode ≈ 5)")
    ax2.legend()
    fig.tight_layout()
    return fig


def plot_certificate_gap(cert, dist, linear=None, title: str = "") -> Figure:
    """Certified radius (Corollary 1) against the verified attack distance, and their ratio.

    Args:
        cert: certified radii ``(N,)``. dist: verified attack distances ``(N,)``.
        linear: optional ``f/‖∇f‖`` (first-order estimate, not a certificate) ``(N,)``.
        title: suptitle.
    """
    c, d = _np(cert).astype(float), _np(dist).astype(float)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11.0, 4.0))
    plot_bound_vs_attack(c, d, label="Corollary 1 certificate", ax=ax1,
                         xlabel="verified attack distance (L2, standardised units)",
                         ylabel="radius (L2, standardised units)")
    for axis in (ax1.xaxis, ax1.yaxis):
        axis.set_minor_formatter(NullFormatter())
    if linear is not None:
        lin = _np(linear).astype(float)
        ok = np.isfinite(d) & (d > 0) & (lin > 0)
        ax1.scatter(d[ok], lin[ok], s=8, marker="^", alpha=0.5, color=PALETTE[4],
                    label="f/‖∇f‖ (first order, no certificate)")
        ax1.legend()
    ok = np.isfinite(d) & (d > 0)
    ratio = c[ok] / d[ok]
    top = max(1.05, float(ratio.max()) * 1.02) if ratio.size else 1.05  # a violation stays visible
    ax2.hist(ratio, bins=30, range=(0, top), color=PALETTE[0], alpha=0.8)
    ax2.axvline(1.0, color="k", ls="--", lw=1)
    ax2.set_xlabel("certified radius / attack distance (≤ 1 when sound)")
    ax2.set_ylabel("test points")
    ax2.set_title("gap between certificate and attack")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
