"""Figures of chapter 00 (the toolkit): data-set samples, class balance, attack gallery,
robust-accuracy curves. Every function returns a :class:`~matplotlib.figure.Figure`; none saves
or shows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from analysis.plots import PALETTE, _np, plot_curves


def _label(ax, xlabel: str, ylabel: str, title: str | None) -> None:
    """Axis labels, the title when one is given, and a small legend."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)


def _as_images(x) -> np.ndarray:
    """``(N, H, W)`` grey images from ``(N, 1, H, W)``, ``(N, H, W)`` or flat squares ``(N, d)``."""
    a = _np(x).astype(float)
    if a.ndim == 4:
        if a.shape[1] != 1:
            raise ValueError(f"grey images expected (N,1,H,W), got {a.shape}")
        a = a[:, 0]
    elif a.ndim == 2:
        side = int(round(np.sqrt(a.shape[1])))
        if side * side != a.shape[1]:
            raise ValueError(f"flat inputs of size {a.shape[1]} are not square images")
        a = a.reshape(-1, side, side)
    elif a.ndim != 3:
        raise ValueError(f"cannot draw inputs shaped {a.shape} as images")
    return a


def plot_class_samples(x, y, classes: Sequence[str], per_class: int = 4,
                       title: str | None = None, seed: int = 0) -> Figure:
    """``per_class`` random images of every class: one column per class, named on top.

    Args:
        x: images ``(N, 1, H, W)`` (or ``(N, H, W)``), pixels in [0, 1].
        y: integer labels ``(N,)``.
        classes: class names, indexed by label.
        per_class: rows of the grid.
        title: figure title.
        seed: which images are drawn (a NumPy generator seed).
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    imgs, labels = _as_images(x), _np(y).astype(int)
    rng = np.random.default_rng(seed)
    k = len(classes)
    fig, axs = plt.subplots(per_class, k, figsize=(0.95 * k, 0.95 * per_class + 0.5),
                            squeeze=False)
    for c in range(k):
        idx = np.flatnonzero(labels == c)
        pick = rng.choice(idx, size=min(per_class, len(idx)), replace=False) if len(idx) else []
        for r in range(per_class):
            a = axs[r, c]
            a.axis("off")
            if r < len(pick):
                a.imshow(imgs[pick[r]], cmap="gray", vmin=0.0, vmax=1.0)
        axs[0, c].set_title(str(classes[c]), fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(pad=0.2)
    return fig


def plot_class_balance(labels: Mapping[str, tuple], ax=None,
                       title: str = "Class balance") -> Figure:
    """Fraction of each class in every split, as grouped bars.

    Args:
        labels: ``{"MNIST train": (y, num_classes), ...}``; ``y`` integer labels.
        ax: axes to draw in (a new figure when ``None``).
        title: axes title.
    """
    if ax is not None:
        fig = ax.figure
    else:
        fig, ax = plt.subplots(figsize=(7.0, 3.2))
    n = len(labels)
    width = 0.8 / max(1, n)
    kmax = 0
    for i, (name, (y, k)) in enumerate(labels.items()):
        counts = np.bincount(_np(y).astype(int), minlength=k)[:k]
        frac = counts / max(1, counts.sum())
        ax.bar(np.arange(k) + (i - (n - 1) / 2) * width, frac, width=width,
               color=PALETTE[i % len(PALETTE)], label=f"{name} (n={counts.sum()})")
        kmax = max(kmax, k)
    ax.axhline(1 / kmax if kmax else 0, color="k", lw=0.8, ls="--", label="uniform (1/10)"
               if kmax == 10 else "uniform")
    ax.set_xticks(np.arange(kmax))
    ax.set_xlabel("class label")
    ax.set_ylabel("fraction of the split")
    ax.set_title(title)
    top = max([b.get_height() for b in ax.patches] + [1 / kmax if kmax else 0])
    ax.set_ylim(0, 1.3 * top)
    ax.legend(ncols=3, fontsize=7, loc="upper center")
    return fig


def plot_attack_gallery(x, y, adversarials: Mapping[str, dict],
                        classes: Sequence[str] | None = None, perturbations: bool = True) -> Figure:
    """Clean images and their adversarial versions, each labelled with the predicted class and
    the perturbation norms; optionally, to the right, the perturbations themselves.

    Args:
        x: clean images ``(N, 1, H, W)`` in [0, 1].
        y: true labels ``(N,)``.
        adversarials: ``{attack name: {"x_adv": (N, ...), "pred": (N,), "l2": (N,),
            "linf": (N,)}}`` (insertion order = column order).
        classes: class names (default: the label itself).
        perturbations: add a block of columns with ``x_adv − x`` on one symmetric diverging
            colour scale (common to all panels, shown in the colour bar).

    Shape:
        One row per image; columns: clean, one per attack, then (optionally) one perturbation
        per attack. A failed attack (prediction unchanged) is labelled in orange.
    """
    clean = _as_images(x)
    labels = _np(y).astype(int)
    n = len(clean)
    names = list(adversarials)
    a_n = len(names)
    cols = 1 + a_n * (2 if perturbations else 1)
    name_of = (lambda c: str(classes[c])) if classes is not None else str
    advs = {k: _as_images(v["x_adv"]) for k, v in adversarials.items()}
    deltas = {k: advs[k] - clean for k in names}
    vmax = max([float(np.abs(d).max()) for d in deltas.values()] + [1e-3])
    fig, axs = plt.subplots(n, cols, figsize=(1.25 * cols + 0.8, 1.5 * n + 0.5), squeeze=False)
    im = None
    for i in range(n):
        a = axs[i, 0]
        a.imshow(clean[i], cmap="gray", vmin=0, vmax=1)
        a.set_xlabel(f"label {name_of(labels[i])}", fontsize=7)
        for j, k in enumerate(names, start=1):
            v = adversarials[k]
            pred = int(_np(v["pred"])[i])
            l2, linf = float(_np(v["l2"])[i]), float(_np(v["linf"])[i])
            ok = pred != labels[i]
            a = axs[i, j]
            a.imshow(advs[k][i], cmap="gray", vmin=0, vmax=1)
            a.set_xlabel(f"→ {name_of(pred)}{'' if ok else ' (failed)'}\n"
                         f"L2 {l2:.2f}  L∞ {linf:.2f}", fontsize=6.5,
                         color="k" if ok else "#D55E00")
            if perturbations:
                im = axs[i, a_n + j].imshow(deltas[k][i], cmap="RdBu_r", vmin=-vmax, vmax=vmax)
    axs[0, 0].set_title("clean", fontsize=8)
    for j, k in enumerate(names, start=1):
        axs[0, j].set_title(k, fontsize=8)
        if perturbations:
            axs[0, a_n + j].set_title(f"δ of {k}", fontsize=8)
    for a in axs.flat:
        a.set_xticks([])
        a.set_yticks([])
        for s in a.spines.values():
            s.set_visible(False)
        a.grid(False)
    fig.tight_layout(pad=0.3, w_pad=0.2, h_pad=0.4)
    if im is not None:
        fig.colorbar(im, ax=list(axs[:, a_n + 1:].flat), shrink=0.6, pad=0.01,
                     label="pixel change δ = x_adv − x")
    return fig


def plot_robust_curves(eps: Mapping[str, Sequence[float]],
                       accuracy: Mapping[str, Mapping[str, Sequence[float]]],
                       units: str = "pixels in [0, 1]") -> Figure:
    """Robust accuracy against the radius, one panel per norm, one curve per model.

    Args:
        eps: ``{"linf": radii, "l2": radii}``.
        accuracy: ``{"linf": {model: accuracies}, "l2": {...}}``, same keys as ``eps``.
        units: unit of the radii, for the axis label.
    """
    norms = list(eps)
    fig, axs = plt.subplots(1, len(norms), figsize=(5.2 * len(norms), 3.6), squeeze=False)
    sym = {"linf": "L∞", "l2": "L2"}
    for a, norm in zip(axs.flat, norms):
        plot_curves(eps[norm], accuracy[norm], xlabel=f"{sym.get(norm, norm)} radius ε ({units})",
                    ylabel="accuracy under PGD", ax=a, title=f"PGD-{sym.get(norm, norm)}")
        a.set_ylim(-0.02, 1.02)
    fig.tight_layout()
    return fig


def plot_ratio_to_exact(exact, found: Mapping[str, Sequence[float]], ax=None,
                        title: str | None = None, xlabel: str = "closed-form minimum d* (L2)",
                        ) -> Figure:
    """Ratio of the distance each attack found to the exact minimal distance, per sample.

    A ratio below 1 is impossible for a correct attack (it would beat the exact minimum);
    such points are drawn as red crosses.

    Args:
        exact: exact minimal distances ``(N,)`` (> 0).
        found: ``{attack: distances (N,)}``; ``inf`` (failure) is dropped.
        ax: axes to draw in (a new figure when ``None``).
        title: axes title. xlabel: x-axis label.
    """
    if ax is not None:
        fig = ax.figure
    else:
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
    e = _np(exact).astype(float).ravel()
    markers = "os^Dv"
    for i, (name, d) in enumerate(found.items()):
        d = _np(d).astype(float).ravel()
        ok = np.isfinite(d) & (e > 0)
        r = d[ok] / e[ok]
        bad = r < 1
        ax.scatter(e[ok][~bad], r[~bad], s=14, alpha=0.75, marker=markers[i % len(markers)],
                   color=PALETTE[i % len(PALETTE)], label=name)
        if bad.any():
            ax.scatter(e[ok][bad], r[bad], s=30, marker="x", color="#D62728",
                       label=f"{name}: below the exact minimum ({int(bad.sum())})")
    ax.axhline(1.0, color="k", lw=1, ls="--", label="exact minimum (ratio 1)")
    ax.set_xscale("log")
    _label(ax, xlabel, "found distance / d*", title)
    return fig


def plot_distance_survival(distances: Mapping[str, Sequence[float]], ax=None,
                           xlabel: str = "L2 radius ε (pixels in [0, 1])",
                           title: str | None = None) -> Figure:
    """Fraction of samples whose minimal adversarial distance exceeds ε, against ε.

    With per-sample distances from a minimal-norm attack (0 for samples misclassified already,
    ``inf`` where no attack succeeded) this is the accuracy under that attack at radius ε:
    an upper bound on the robust accuracy, comparable with a fixed-radius PGD curve.

    Args:
        distances: ``{label: distances (N,)}``.
        ax: axes to draw in (a new figure when ``None``).
        xlabel: x-axis label. title: axes title.
    """
    if ax is not None:
        fig = ax.figure
    else:
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
    finite_max = 0.0
    for d in distances.values():
        d = _np(d).astype(float).ravel()
        if np.isfinite(d).any():
            finite_max = max(finite_max, float(d[np.isfinite(d)].max()))
    right = 1.05 * finite_max if finite_max > 0 else 1.0
    for i, (label, d) in enumerate(distances.items()):
        d = np.sort(_np(d).astype(float).ravel())
        n = len(d)
        xs = np.concatenate([[0.0], np.minimum(d[np.isfinite(d)], right), [right]])
        surv = np.array([(d > x).mean() for x in xs]) if n else np.zeros_like(xs)
        ax.step(xs, surv, where="post", color=PALETTE[i % len(PALETTE)], label=f"{label} (n={n})")
    ax.set_xlim(0, right)
    ax.set_ylim(-0.02, 1.02)
    _label(ax, xlabel, "fraction with minimal distance > ε", title)
    return fig


def plot_class_balance_sets(sets: Mapping[str, object]) -> Figure:
    """Class counts of the training and test split of each data set, one panel per set.

    Args:
        sets: ``{label: Dataset}`` (``y_train``, ``y_test``, ``num_classes``).
    """
    fig, axs = plt.subplots(1, len(sets), figsize=(4.6 * len(sets), 3.4), squeeze=False)
    for a, (label, d) in zip(axs.flat, sets.items(), strict=True):
        plot_class_balance({"train": (d.y_train, d.num_classes),
                            "test": (d.y_test, d.num_classes)}, ax=a, title=label)
    fig.tight_layout()
    return fig


def plot_training_curves(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                         ylabel: str = "test accuracy", title: str | None = None) -> Figure:
    """Test accuracy after each epoch, one curve per model.

    Args:
        curves: ``{model: (epochs, accuracies)}``.
        ylabel: y-axis label (say which test set). title: axes title.
    """
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for i, (name, (ep, acc)) in enumerate(curves.items()):
        ax.plot(ep, acc, "o-", ms=3, color=PALETTE[i % len(PALETTE)], label=name)
    _label(ax, "epoch", ylabel, title)
    fig.tight_layout()
    return fig


def plot_min_norm_vs_pgd(distances: Mapping[str, Sequence[float]], eps: Sequence[float],
                         pgd_accuracy: Mapping[str, Sequence[float]],
                         title: str | None = None) -> Figure:
    """Accuracy under the minimal-norm search against the L2 radius (lines, from per-sample
    distances) with PGD-L2's accuracy at fixed radii on the same images (circles).

    Args:
        distances: ``{model: minimal distances (N,)}``. eps: the PGD radii (pixels).
        pgd_accuracy: ``{model: accuracies (len(eps),)}``, same keys. title: axes title.
    """
    fig = plot_distance_survival(distances, title=title)
    ax = fig.axes[0]
    for i, (name, acc) in enumerate(pgd_accuracy.items()):
        ax.plot(list(eps), _np(acc), "o", ms=5, mfc="none", color=PALETTE[i % len(PALETTE)],
                label=f"{name}: PGD-L2")
    ax.legend(fontsize=7, ncols=2)
    fig.tight_layout()
    return fig


def plot_linear_check(exact, found: Mapping[str, Mapping[str, Sequence[float]]]) -> Figure:
    """:func:`plot_ratio_to_exact` for each box setting, side by side.

    Args:
        exact: closed-form minimal distances ``(N,)``. found: ``{box label: {attack: (N,)}}``.
    """
    fig, axs = plt.subplots(1, len(found), figsize=(6 * len(found), 4), squeeze=False)
    for a, (box, res) in zip(axs.flat, found.items(), strict=True):
        plot_ratio_to_exact(exact, res, ax=a, xlabel="closed-form minimum d* (L2, pixels)",
                            title=f"linear MNIST model, attack box = {box}")
    fig.tight_layout()
    return fig
