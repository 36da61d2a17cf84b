"""Figures of chapter 00: they draw what they are given and reject malformed inputs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from analysis.plots import toolkit as t  # noqa: E402


def _images(n: int = 20, side: int = 8):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, side, side, generator=g), torch.arange(n) % 4


def test_class_samples_draws_only_images_of_each_column_class():
    x, y = _images()
    x = x * 0 + (y.float() / 4)[:, None, None, None]  # each image is constant = its label / 4
    fig = t.plot_class_samples(x, y, ["a", "b", "c", "d"], per_class=2)
    axs = np.array(fig.axes).reshape(2, 4)
    for c in range(4):
        assert axs[0, c].get_title() == "abcd"[c]
        for r in range(2):
            arr = axs[r, c].images[0].get_array()
            assert np.allclose(arr, c / 4)
    plt.close(fig)
    with pytest.raises(ValueError, match="per_class"):
        t.plot_class_samples(x, y, ["a", "b", "c", "d"], per_class=0)


def test_class_balance_bars_are_fractions():
    y = torch.tensor([0, 0, 0, 1])
    fig = t.plot_class_balance({"train": (y, 3)})
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == pytest.approx([0.75, 0.25, 0.0])
    plt.close(fig)


def test_attack_gallery_marks_failures_and_shows_perturbations():
    x, y = _images(3)
    adv = {"A": {"x_adv": (x + 0.1).clamp(0, 1), "pred": torch.tensor([1, 1, 2]),
                 "l2": torch.ones(3), "linf": torch.ones(3) * 0.1}}
    fig = t.plot_attack_gallery(x, y[:3], adv, classes=["a", "b", "c", "d"])
    labels = [a.get_xlabel() for a in fig.axes if a.get_xlabel()]
    assert sum("failed" in s for s in labels) == 2  # labels 1 and 2 unchanged
    delta = fig.axes[2].images[0].get_array()
    assert np.allclose(delta, ((x[0, 0] + 0.1).clamp(0, 1) - x[0, 0]).numpy(), atol=1e-6)
    plt.close(fig)
    with pytest.raises(ValueError, match="grey images"):
        t.plot_attack_gallery(torch.rand(2, 3, 4, 4), y[:2], {})


def test_robust_curves_one_panel_per_norm():
    fig = t.plot_robust_curves({"linf": [0, 0.1], "l2": [0, 1]},
                               {"linf": {"m": [1.0, 0.5]}, "l2": {"m": [1.0, 0.2]}})
    assert len(fig.axes) == 2
    assert list(fig.axes[1].lines[0].get_ydata()) == [1.0, 0.2]
    plt.close(fig)


def test_ratio_to_exact_flags_points_below_the_exact_minimum():
    exact = np.array([1.0, 2.0, 4.0])
    fig = t.plot_ratio_to_exact(exact, {"good": [1.0, 2.2, np.inf], "bad": [0.5, 2.0, 4.0]})
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "bad: below the exact minimum (1)" in labels
    assert not any(s.startswith("good: below") for s in labels)
    good = fig.axes[0].collections[0].get_offsets()
    assert np.allclose(np.asarray(good), [[1.0, 1.0], [2.0, 1.1]])  # the failure is dropped
    plt.close(fig)


def test_distance_survival_is_the_fraction_above_each_radius():
    fig = t.plot_distance_survival({"m": [0.0, 1.0, 2.0, np.inf]})
    line = fig.axes[0].lines[0]
    xs, ys = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    # at 0: three of four exceed 0; after 1: two (2 and inf); after 2: only the failure
    assert ys[0] == 0.75
    assert ys[list(xs).index(1.0)] == 0.5 and ys[list(xs).index(2.0)] == 0.25
    plt.close(fig)


def test_to_book_glues_and_closes_the_figure(monkeypatch):
    import matplotlib.pyplot as plt
    import myst_nb

    from analysis import plots

    seen = []
    monkeypatch.setattr(myst_nb, "glue", lambda name, obj, display: seen.append((name, obj, display)))
    fig, ax = plt.subplots()
    assert plots.to_book("fig-00-x", fig) is None  # a cell's last line: no second display
    assert seen == [("fig-00-x", fig, False)]
    assert fig.number not in plt.get_fignums()  # closed: the book shows it once, where captioned
