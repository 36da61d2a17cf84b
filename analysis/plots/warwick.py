"""Figures of chapter 01 (Warwick): Figs 4, 6, 8, 9, 10, 11 and the curvature-vs-attack plot.

Every function returns a :class:`matplotlib.figure.Figure` and never saves or shows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from analysis.plots import PALETTE, _np

__all__ = [
    "plot_eigen_histograms",
    "plot_fig6",
    "plot_doc_vs_true",
    "plot_monte_carlo",
    "plot_spectral_densities",
    "plot_adversarial_accuracy",
    "plot_slices",
    "plot_bound_vs_attack_panels",
]


def plot_eigen_histograms(wigner, wishart, sc_pdf, mp_pdf, title_wishart: str) -> Figure:
    """Fig 4: eigenvalue histograms (bars) of a Wigner and a Wishart matrix, theory in red.

    Args:
        wigner, wishart: sampled eigenvalues.
        sc_pdf, mp_pdf: callables ``λ -> density``.
        title_wishart: title of the right panel (states φ).
    """
    fig, axs = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, ev, pdf, title in ((axs[0], wigner, sc_pdf, "Wigner: semicircle law"),
                               (axs[1], wishart, mp_pdf, title_wishart)):
        ev = _np(ev)
        ax.hist(ev, bins=60, density=True, color=PALETTE[0], alpha=0.6, label="sampled")
        lo, hi = ev.min(), ev.max()
        pad = 0.05 * (hi - lo)
        lam = np.linspace(lo - pad, hi + pad, 2000)
        ax.plot(lam, pdf(lam), color="#D62728", lw=1.6, label="theory")
        ax.set_xlabel("eigenvalue λ")
        ax.set_ylabel("density")
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    return fig


def plot_fig6(nu, panels: Mapping[str, Mapping[str, Sequence[float]]]) -> Figure:
    """Fig 6: bounds on ``‖δ*‖`` against the curvature ``ν``, one panel per ``‖J‖``.

    Args:
        nu: curvature grid.
        panels: ``{panel title: {curve label: values}}``.
    """
    fig, axs = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.9), squeeze=False)
    styles = ["-", "--", ":", "-."]
    for ax, (title, curves) in zip(axs.flat, panels.items()):
        for i, (label, y) in enumerate(curves.items()):
            ax.plot(_np(nu), _np(y), styles[i % 4], color=PALETTE[i % len(PALETTE)], label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("curvature ν (largest Hessian eigenvalue, or −λ_min)")
        ax.set_ylabel("bound on ‖δ*‖ (L2)")
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    return fig


def plot_doc_vs_true(nu, doc_lower, true, corrected_lower, title: str) -> Figure:
    """The document's lower bound against the true minimal perturbation (brute force)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(_np(nu), _np(doc_lower), "--", color="#D62728", label="document: h(‖J‖, λ_max, t)")
    ax.plot(_np(nu), _np(true), "-", color="k", lw=2, label="true ‖δ*‖ (|q| ≥ t), brute force")
    ax.plot(_np(nu), _np(corrected_lower), "-", color=PALETTE[2],
            label="corrected: h(‖J‖, ‖H‖₂, t)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("λ_max (λ_min fixed)")
    ax.set_ylabel("‖δ‖ (L2)")
    ax.set_title(title)
    ax.legend()
    return fig


def plot_monte_carlo(table: Mapping[str, np.ndarray]) -> Figure:
    """Fig 8: per subspace dimension ``m``, probability of keeping the label on the ρ-sphere.

    Top row: Monte Carlo (sphere, ±2 SE), the exact closed form and the bound ``B(ρ̃)`` of (38)
    (corrected reading: keep ≤ B). Bottom row: misclassification, MC on the sphere and in the
    ball (literal Alg 1), against ``B`` read literally as an upper bound on misclassification.
    """
    rho_t, ms = table["rho_t"], table["m"]
    fig, axs = plt.subplots(2, len(ms), figsize=(4.2 * len(ms), 6.4), squeeze=False)
    for k, m in enumerate(ms):
        ax = axs[0, k]
        keep_mc = 1 - table["mc_sphere"][k]
        ax.errorbar(rho_t, keep_mc, yerr=2 * table["se_sphere"][k], fmt="o", ms=3, capsize=2,
                    color=PALETTE[0], label="MC, sphere")
        ax.plot(rho_t, table["exact_keep"][k], "-", color="k", label="exact (betainc)")
        ax.plot(rho_t, table["bound_keep"][k], "--", color="#D62728", label="bound B(ρ̃), (38)")
        ax.set_ylim(-0.03, 1.05)
        ax.set_xlabel("normalised radius ρ̃ = ρ/r")
        ax.set_ylabel("P(label kept)")
        ax.set_title(f"m = {m}")
        ax.legend(fontsize=8)
        ax = axs[1, k]
        ax.plot(rho_t, table["mc_sphere"][k], "o-", ms=3, color=PALETTE[0], label="MC, sphere")
        if "mc_ball" in table:
            ax.plot(rho_t, table["mc_ball"][k], "s-", ms=3, color=PALETTE[4],
                    label="MC, ball (literal Alg 1)")
        ax.plot(rho_t, table["bound_keep"][k], "--", color="#D62728",
                label="B read literally (upper)")
        ax.plot(rho_t, 1 - table["bound_keep"][k], ":", color=PALETTE[2],
                label="1 − B (corrected lower)")
        ax.set_ylim(-0.03, 1.05)
        ax.set_xlabel("normalised radius ρ̃ = ρ/r")
        ax.set_ylabel("P(misclassified)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_spectral_densities(densities: Mapping[float, tuple[np.ndarray, np.ndarray]],
                            samples: Mapping[float, np.ndarray] | None = None,
                            phi: float = 0.5) -> Figure:
    """Fig 9: free-probability density of ``H₀ + H₁`` for several ``s = ε|log α|``.

    Args:
        densities: ``{s: (λ grid, ρ(λ))}``, one panel each.
        samples: ``{s: sampled eigenvalues}`` drawn as histograms beside the theory.
        phi: ratio φ (title).
    """
    n = len(densities)
    ncols = min(4, n)
    nrows = int(np.ceil(n / ncols))
    fig, axs = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.0 * nrows), squeeze=False)
    for ax in axs.flat[n:]:
        ax.set_visible(False)
    for ax, (s, (lam, rho)) in zip(axs.flat, densities.items()):
        if samples is not None and s in samples:
            ax.hist(_np(samples[s]), bins=50, density=True, color=PALETTE[0], alpha=0.45,
                    label="sampled W + √s·GOE")
        ax.plot(_np(lam), _np(rho), color="#D62728", lw=1.5, label="free sum (65)")
        ax.axvline(0.0, color="grey", lw=0.7)
        ax.set_title(f"s = ε|log α| = {s:g}")
        ax.set_xlabel("eigenvalue λ")
        ax.set_ylabel("density")
        ax.legend(fontsize=7)
    fig.suptitle(f"Spectral density of MP(1, φ={phi:g}) ⊞ semicircle(s)")
    fig.tight_layout()
    return fig


def plot_adversarial_accuracy(eps_255, acc: Mapping[str, Sequence[float]],
                              bar_eps: Sequence[float] = (2, 8, 16, 30)) -> Figure:
    """Fig 10: (a) PGD adversarial accuracy vs ε·255 per model; (b) bars at selected ε."""
    eps = _np(eps_255).astype(float)
    fig, axs = plt.subplots(1, 2, figsize=(11, 3.9))
    for i, (label, a) in enumerate(acc.items()):
        axs[0].plot(eps, _np(a), "o-", ms=3, color=PALETTE[i], label=label)
    axs[0].set_xlabel("ε × 255 (L∞, pixels in [0, 1])")
    axs[0].set_ylabel("adversarial accuracy")
    axs[0].set_title("(a) PGD accuracy against ε")
    axs[0].set_ylim(-0.02, 1.02)
    axs[0].legend()
    cols = [e for e in bar_eps if np.any(np.isclose(eps, e))]
    width = 0.8 / max(1, len(acc))
    for i, (label, a) in enumerate(acc.items()):
        a = _np(a)
        vals = [a[np.flatnonzero(np.isclose(eps, e))[0]] for e in cols]
        axs[1].bar(np.arange(len(cols)) + i * width, vals, width, color=PALETTE[i], label=label)
    axs[1].set_xticks(np.arange(len(cols)) + 0.4 - width / 2, [f"{e:g}/255" for e in cols])
    axs[1].set_xlabel("ε")
    axs[1].set_ylabel("adversarial accuracy")
    axs[1].set_title("(b) accuracy per technique")
    axs[1].set_ylim(0, 1.02)
    axs[1].legend()
    fig.tight_layout()
    return fig


def plot_slices(slices: Mapping[str, np.ndarray], radius: float, num_classes: int = 10,
                titles: Mapping[str, str] | None = None) -> Figure:
    """Fig 11: predicted class on 2-D slices ``x + a·u₁ + b·u₂`` (one column per model).

    Args:
        slices: ``{model label: labels (P, G, G)}`` for ``P`` points (rows).
        radius: half-width of the slice (L2 units).
        num_classes: classes (colours).
        titles: optional per-model titles.
    """
    labels = list(slices)
    P = _np(slices[labels[0]]).shape[0]
    fig, axs = plt.subplots(P, len(labels), figsize=(4.2 * len(labels), 3.4 * P), squeeze=False,
                            layout="constrained")
    base = plt.get_cmap("tab10")
    cmap = ListedColormap([base(i % 10) for i in range(num_classes)])
    for c, lab in enumerate(labels):
        arr = _np(slices[lab])
        for r in range(P):
            ax = axs[r, c]
            im = ax.imshow(arr[r].T, origin="lower", extent=(-radius, radius, -radius, radius),
                           cmap=cmap, vmin=-0.5, vmax=num_classes - 0.5, interpolation="nearest")
            ax.plot(0, 0, "k+", ms=8)
            ax.set_xlabel("a (along u₁, L2)")
            ax.set_ylabel("b (along u₂, L2)")
            ax.grid(False)
            if r == 0:
                ax.set_title((titles or {}).get(lab, lab), fontsize=9)
    fig.colorbar(im, ax=axs.ravel().tolist(), ticks=range(num_classes), shrink=0.8,
                 label="predicted class")
    return fig


def plot_bound_vs_attack_panels(bounds: Mapping[str, Sequence[float]],
                                distances: Mapping[str, Sequence[float]]) -> Figure:
    """Thm 3.0.1 on the networks: one log-log panel per model, the decrease-branch lower bound
    (minimum over classes, L2) against the distance an attack found (L2), with ``y = x``."""
    from analysis.plots import plot_bound_vs_attack

    fig, axs = plt.subplots(1, len(bounds), figsize=(4.6 * len(bounds), 4), squeeze=False)
    for ax, name in zip(axs[0], bounds):
        plot_bound_vs_attack(bounds[name], distances[name], label="decrease-branch bound",
                             ax=ax, title=f"{name}: min over k of h(‖J_k‖, ν₋,k, t_k)")
    fig.tight_layout()
    return fig
