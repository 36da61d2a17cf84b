"""Figures of chapter 04 (Bell): persistence, class frequencies, path kernel, boundary spectra.

Every function returns a :class:`matplotlib.figure.Figure` and never saves or shows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from analysis.plots import PALETTE, _np, axes, plot_images

ORIG, ADV = "#000000", "#D55E00"


def plot_wedge(ks: Sequence[int], closed: Sequence[float], mc: Sequence[float],
               document: Mapping[int, float] | None = None, ax=None) -> Figure:
    """Fig 8: γ-persistence against the number of faces k (closed form, Monte Carlo, thesis)."""
    fig, ax = axes(ax)
    ax.plot(ks, closed, "-", color=PALETTE[0], label="closed form (Prop 4.3)")
    ax.plot(ks, mc, "o", color=PALETTE[1], label="Monte Carlo + bracketing")
    if document:
        ax.plot(list(document), list(document.values()), "x", color=ORIG, label="thesis, Fig 8")
    ax.axhline(1.0, color="grey", lw=0.8, ls=":", label="distance to each face")
    ax.set_xscale("log")
    ax.set_xlabel("number of faces k")
    ax.set_ylabel("0.7-persistence σ* (input units)")
    ax.set_title("Persistence in the wedge $W^n_k$ (d = 1)")
    ax.legend()
    return fig


def plot_class_frequencies(sigmas, freqs, original: int, adversarial: int | None = None,
                           classes: Sequence[str] | None = None, title: str = "",
                           ax=None, legend: bool = True) -> Figure:
    """Figs 9, 11, 13, 17: frequency of each label among Gaussian samples against σ.

    The original class is black, the adversarial class red, the others in light colours.
    """
    fig, ax = axes(ax)
    s, f = _np(sigmas), _np(freqs)
    names = classes or [str(i) for i in range(f.shape[1])]
    for c in range(f.shape[1]):
        if c in (original, adversarial) or f[:, c].max() < 0.05:
            continue
        ax.plot(s, f[:, c], lw=1, alpha=0.6, label=names[c])
    ax.plot(s, f[:, original], color=ORIG, lw=2, label=f"{names[original]} (original)")
    if adversarial is not None:
        ax.plot(s, f[:, adversarial], color=ADV, lw=2, label=f"{names[adversarial]} (adversarial)")
    ax.set_xlabel("noise σ (pixel units)")
    ax.set_ylabel("fraction of samples")
    ax.set_ylim(-0.02, 1.02)
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(fontsize=7, ncol=2)
    return fig


def plot_persistence_profile(taus, persist: Mapping[str, Sequence[float]], labels_along,
                             classes: Sequence[str] | None = None, title: str = "",
                             ax=None) -> Figure:
    """Figs 12, 18: γ-persistence along the segment natural → adversarial, with the label of
    each point written above it."""
    fig, ax = axes(ax)
    t = _np(taus)
    top = 0.0
    for name, v in persist.items():
        v = _np(v)
        ax.plot(t, v, "o-", ms=3, label=name)
        top = max(top, float(np.nanmax(v[np.isfinite(v)])) if np.isfinite(v).any() else 0)
    for ti, lab in zip(t, _np(labels_along)):
        ax.annotate(str(int(lab)), (ti, top * 1.05), ha="center", fontsize=7)
    ax.set_ylim(0, top * 1.15 + 1e-9)
    ax.set_xlabel("τ (0 = natural, 1 = adversarial)")
    ax.set_ylabel("γ-persistence σ* (pixel units)")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def plot_persistence_hist(natural, adversarial, title: str = "", ax=None,
                          bins: int = 30) -> Figure:
    """Figs 10, 14-16: histograms of persistence, natural (blue) and adversarial (red)."""
    fig, ax = axes(ax)
    nat, adv = _np(natural).astype(float), _np(adversarial).astype(float)
    allv = np.concatenate([nat[np.isfinite(nat)], adv[np.isfinite(adv)]])
    pos = allv[allv > 0]
    if len(pos) > 1 and pos.max() / pos.min() > 20:
        edges = np.geomspace(pos.min(), pos.max(), bins + 1)
        ax.set_xscale("log")
    else:
        edges = np.linspace(allv.min(), allv.max() + 1e-12, bins + 1) if len(allv) else bins
    ax.hist(nat[np.isfinite(nat)], bins=edges, histtype="step", lw=1.5, color=PALETTE[0],
            label=f"natural (n={len(nat)})")
    ax.hist(adv[np.isfinite(adv)], bins=edges, histtype="step", lw=1.5, color=ADV,
            label=f"adversarial (n={len(adv)})")
    ax.set_xlabel("0.7-persistence σ* (pixel units)")
    ax.set_ylabel("count")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def plot_norms(gauss, ball, n: int, r: float, ax=None, bins: int = 60) -> Figure:
    """Fig 19: norms of samples of N(0, (r/√n)² I) and of the uniform ball B_r."""
    fig, ax = axes(ax)
    g, b = _np(gauss), _np(ball)
    lo, hi = min(g.min(), b.min()), max(g.max(), b.max())
    edges = np.linspace(lo, hi, bins + 1)
    ax.hist(g, bins=edges, histtype="step", lw=1.5, density=True,
            label=f"N(0, ({r:g}/√n)² I), {len(g)} pts")
    ax.hist(b, bins=edges, histtype="step", lw=1.5, density=True,
            label=f"U(B_{r:g}), {len(b)} pts")
    ax.set_xlabel("‖x‖₂")
    ax.set_ylabel("density")
    ax.set_title(f"n = {n:,}")
    ax.legend(fontsize=8)
    return fig


def plot_kernel_vs_network(network, kernels: Mapping[str, object], ax=None,
                           title: str = "") -> Figure:
    """Fig 23: kernel-machine output against the network output (one point per output)."""
    fig, ax = axes(ax)
    n = _np(network).ravel()
    for i, (name, k) in enumerate(kernels.items()):
        ax.plot(n, _np(k).ravel(), "o", ms=4 - i, alpha=0.8, label=name)
    lo, hi = float(n.min()), float(n.max())
    ax.plot([lo, hi], [lo, hi], "-", color="grey", lw=0.8, label="y = x")
    ax.set_xlabel("network output log p_k(x; w_N)")
    ax.set_ylabel("kernel-machine output")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def plot_toy(X, Y, grid_x, grid_y, pred_net, pred_kernel, ax=None) -> Figure:
    """Fig 20: the 2-D toy data and the agreement of kernel and network predictions on a grid."""
    fig, ax = axes(ax)
    Xn, Yn = _np(X), _np(Y)
    gx, gy = _np(grid_x), _np(grid_y)
    agree = (_np(pred_net) == _np(pred_kernel)).reshape(len(gy), len(gx))
    pn = _np(pred_net).reshape(len(gy), len(gx))
    ax.contourf(gx, gy, pn, levels=[-0.5, 0.5, 1.5], colors=["#cfe2f3", "#f9d9c5"], alpha=0.6)
    for c, col in zip((0, 1), (PALETTE[0], PALETTE[1])):
        m = Yn == c
        ax.plot(Xn[m, 0], Xn[m, 1], ".", ms=2, color=col, label=f"class {'AB'[c]}")
    bad = ~agree
    if bad.any():
        GX, GY = np.meshgrid(gx, gy)
        ax.plot(GX[bad], GY[bad], "kx", ms=5, label="kernel ≠ network")
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.set_title(f"Fig 20: network decision regions; kernel agrees on {agree.mean():.1%} of the grid")
    ax.legend(fontsize=8)
    return fig


def plot_kernel_values(X, values, point, ax=None, title: str = "") -> Figure:
    """Fig 21: the contribution of each training point to the output at ``point``."""
    fig, ax = axes(ax)
    Xn, v = _np(X), _np(values)
    lim = np.abs(v).max() + 1e-300
    sc = ax.scatter(Xn[:, 0], Xn[:, 1], c=v, s=4, cmap="coolwarm", vmin=-lim, vmax=lim)
    p = _np(point).ravel()
    ax.plot(p[0], p[1], "k*", ms=12)
    fig.colorbar(sc, ax=ax, label="Σ_s a_{i,s} K_s(x, x_i)")
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    if title:
        ax.set_title(title)
    return fig


def plot_spectra(spectra: Mapping[str, Sequence[float]], ax=None, title: str = "",
                 normalise: bool = True) -> Figure:
    """Singular values (descending, log scale) of several point clouds (Part III)."""
    fig, ax = axes(ax)
    for name, s in spectra.items():
        s = _np(s).astype(float)
        s = s / s[0] if normalise and s[0] > 0 else s
        ax.semilogy(np.arange(1, len(s) + 1), np.maximum(s, 1e-17), ".-", ms=3, lw=1,
                    label=name)
    ax.set_xlabel("index")
    ax.set_ylabel("singular value" + (" / largest" if normalise else ""))
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def plot_interpolation(profile: Mapping[str, np.ndarray], ax=None, title: str = "") -> Figure:
    """Fig 24: accuracy, loss, ‖w(t)‖ and the directional derivative along w_0 → w_1."""
    fig, ax = axes(ax, figsize=(7.0, 4.0))
    t = profile["t"]
    ax.plot(t, profile["accuracy"], color=PALETTE[0], label="test accuracy")
    ax.plot(t, profile["loss"] / max(profile["loss"].max(), 1e-12), color=PALETTE[1],
            label="mean loss / max")
    ax.plot(t, profile["norm"] / profile["norm"].max(), color=PALETTE[3],
            label="‖w(t)‖₂ / max")
    ax.set_xlabel("t  (w(t) = w₀ + t (w₁ − w₀))")
    ax.set_ylabel("accuracy, normalised loss and norm")
    ax2 = ax.twinx()
    ax2.plot(t, profile["directional"], "--", color=PALETTE[2],
             label="⟨∇_w Σ log p_y, (w₁−w₀)/‖w₁−w₀‖⟩")
    ax2.set_ylabel("directional derivative (nats per unit ‖w‖)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="center right")
    if title:
        ax.set_title(title)
    return fig


def plot_panels(draw, panels: Sequence[Mapping], ncols: int = 4, size: tuple[float, float] = (4.0, 3.4),
                suptitle: str = "", sharey: bool = False) -> Figure:
    """Several panels of one kind in one figure: ``draw(ax=ax, **panel)`` for each panel.

    Args:
        draw: a ``plot_*`` function of this module that takes ``ax`` (e.g.
            :func:`plot_class_frequencies`).
        panels: keyword arguments of each panel; an empty mapping leaves its axes blank.
        ncols: panels per row. size: (width, height) of one panel in inches.
        suptitle: title of the whole figure.
    """
    import matplotlib.pyplot as plt

    n = max(1, len(panels))
    cols = min(ncols, n)
    rows = -(-n // cols)
    fig, axs = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False,
                            sharey=sharey)
    for ax, kw in zip(axs.flat, panels):
        if kw:
            draw(ax=ax, **kw)
        else:
            ax.axis("off")
    for ax in list(axs.flat)[len(panels):]:
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    plt.close(fig)
    return fig


# ------------------------------------------------------------------ one figure per chapter figure
# Each function below draws one figure of chapter 04 from the result object of the
# ``analysis.experiments.bell`` function that computed it (read by attribute, so this module
# does not import the experiments layer).


def plot_fig8(wedge, document: Mapping[int, float] | None = None) -> Figure:
    """Fig 8 from a wedge result (``ks``, ``closed``, ``mc``), with the thesis's values."""
    return plot_panels(plot_wedge, [dict(ks=wedge.ks, closed=wedge.closed, mc=wedge.mc,
                                         document=document)], ncols=1, size=(6.5, 4))


def plot_figs9_13(freq) -> Figure:
    """Figs 9, 13: class frequencies around the natural point (first panel) and around each of
    its IGSM adversarials (one panel per target; "(missed)" where the attack failed)."""
    natural = dict(sigmas=freq.sigmas, freqs=freq.natural, original=freq.source,
                   title=f"natural '{freq.source}'", legend=False)
    return plot_panels(plot_class_frequencies, [natural] + [
        dict(sigmas=freq.sigmas, freqs=freq.adversarial[j], original=freq.source, adversarial=c,
             title=f"IGSM {freq.source} → {c}" + ("" if freq.hit[j] else " (missed)"),
             legend=False) for j, c in enumerate(freq.targets)],
        ncols=5, size=(3.3, 2.8), sharey=True)


def plot_fig10(sets) -> Figure:
    """Fig 10: histograms of the persistence of natural and adversarial points."""
    return plot_panels(plot_persistence_hist, [dict(natural=sets.natural,
                                                    adversarial=sets.adversarial)],
                       ncols=1, size=(6.5, 3.8))


def plot_figs14_16(runs: Mapping[str, Sequence]) -> Figure:
    """Figs 14-16: one persistence histogram per Table 1 network, its seeds pooled."""
    return plot_panels(plot_persistence_hist, [
        dict(natural=np.concatenate([r.natural for r in rs]), bins=12, title=name,
             adversarial=np.concatenate([r.adversarial for r in rs]))
        for name, rs in runs.items()], ncols=4, size=(3.4, 3.0))


def plot_figs11_17(fade, classes: Sequence[str], source: int,
                   natural: tuple[str, str] = ("vgg_mini", "VGG-mini"), n_shown: int = 4) -> Figure:
    """Figs 11, 17: class frequencies around the natural source of net ``natural[0]`` (shown as
    ``natural[1]``) and around the first hit of each of the first ``n_shown`` ``net/attack``
    pairs of ``fade`` that hit at all."""
    shown = [k for k, t in fade.targets.items() if len(t)][:n_shown]
    first = dict(sigmas=fade.sigmas, freqs=fade.natural[natural[0]], original=source,
                 classes=classes, title=f"{natural[1]}: natural {classes[source]}", legend=False)
    return plot_panels(plot_class_frequencies, [first] + [
        dict(sigmas=fade.sigmas, freqs=fade.frequencies[k][0], original=source,
             adversarial=int(fade.targets[k][0]), classes=classes, legend=False,
             title=f"{k}: → {classes[fade.targets[k][0]]}") for k in shown],
        ncols=5, size=(3.3, 2.8), sharey=True)


def plot_figs12_18(seg) -> Figure:
    """Figs 12, 18: persistence along each natural → adversarial segment (one panel each)."""
    return plot_panels(plot_persistence_profile, [
        dict(taus=seg.taus, persist=p, labels_along=seg.labels[t], title=t)
        for t, p in seg.persistence.items()], ncols=2, size=(6.0, 3.8))


def plot_fig19(conc, radius: float) -> Figure:
    """Fig 19: norm histograms of the Gaussian and uniform-ball samples, one panel per n."""
    return plot_panels(plot_norms, [dict(gauss=conc.gaussian[n], ball=conc.ball[n], n=n, r=radius)
                                    for n in conc.gaussian], ncols=2, size=(5.5, 3.6))


def plot_fig20(toy) -> Figure:
    """Fig 20: the toy set and the classes the network and its exact kernel machine predict on
    the grid."""
    exact = toy.grid["exact"]
    return plot_panels(plot_toy, [dict(X=toy.X, Y=toy.Y, grid_x=toy.grid_x, grid_y=toy.grid_x,
                                       pred_net=exact.network.argmax(1),
                                       pred_kernel=exact.output.argmax(1))],
                       ncols=1, size=(6.0, 4.5))


def plot_fig21(toy, n_in_distribution: int = 2) -> Figure:
    """Fig 21: each toy training point's contribution at each probe (the first
    ``n_in_distribution`` probes are in distribution, the others out of it)."""
    return plot_panels(plot_kernel_values, [
        dict(X=toy.X, values=toy.probe_adaptive.contributions[j, 0], point=toy.probes[j],
             title=("in-distribution" if j < n_in_distribution else "OOD")
             + f" x = {tuple(toy.probes[j].tolist())}") for j in range(len(toy.probes))],
        ncols=4, size=(4.0, 3.4))


def plot_fig22(mk, n_shown: int = 8) -> Figure:
    """Fig 22: the first ``n_shown`` test points, each beside its kernel-nearest and its
    pixel-nearest training point (labels in the titles)."""
    rows = range(min(n_shown, len(mk.Xq)))
    images = [im for j in rows for im in (mk.Xq[j], mk.X[mk.kernel_nearest[j]],
                                          mk.X[mk.pixel_nearest[j]])]
    titles = [f"{what} ({int(label)})" for j in rows for what, label in
              (("test", mk.Yq[j]), ("kernel", mk.Y[mk.kernel_nearest[j]]),
               ("pixel", mk.Y[mk.pixel_nearest[j]]))]
    return plot_images(np.stack([_np(im) for im in images]).astype(np.float32), titles, ncols=6)


def plot_fig23(mk) -> Figure:
    """Fig 23: network output against each kernel machine's (exact, uniform t, step start)."""
    return plot_panels(plot_kernel_vs_network, [dict(
        network=mk.summed["exact"].network,
        kernels={f"{m} (max err {km.max_error:.1e})": km.output for m, km in mk.summed.items()})],
        ncols=1, size=(6.0, 4.5))


def plot_fig24(line, name: str) -> Figure:
    """Fig 24: the profile along w(t) = w₀ + t(w₁ − w₀) of network ``name``."""
    return plot_panels(plot_interpolation, [dict(profile=line.profile, title=f"{name}, w₀ → w₁")],
                       ncols=1, size=(7.0, 4.0))


def plot_orthant_probe(orth, n: int) -> Figure:
    """Part III: singular values of Gaussian samples projected onto the k-orthant in R^n."""
    return plot_panels(plot_spectra, [dict(spectra=orth.spectra,
                                           title=f"orthant probe, n = {n}")],
                       ncols=1, size=(6.0, 4.0))


def plot_boundary_probes(probes: Mapping[str, object]) -> Figure:
    """Part III: the probes' singular values, of the centred boundary points and of the normals
    (one panel each, one curve per probe)."""
    return plot_panels(plot_spectra, [
        dict(spectra={n: p.spectra[kind] for n, p in probes.items()}, title=title)
        for kind, title in (("centred", "projected boundary points (centred)"),
                            ("normals", "normals x − proj(x)"))], ncols=2, size=(5.5, 3.6))
