"""Figures of chapter 04: each draws one panel per item of the result it is given, with the
titles the chapter's captions describe."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import types  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from analysis.plots import bell as b  # noqa: E402

NS = types.SimpleNamespace


def _titles(fig):
    return [a.get_title() for a in fig.axes if a.axison and a.get_title()]


def test_fig9_13_natural_panel_then_one_per_target_with_misses_marked():
    freq = NS(sigmas=np.linspace(0.1, 1.6, 4), natural=torch.rand(4, 10), source=1,
              adversarial=torch.rand(3, 4, 10), targets=[0, 2, 3], hit=np.array([True, False, True]))
    assert _titles(b.plot_figs9_13(freq)) == ["natural '1'", "IGSM 1 → 0", "IGSM 1 → 2 (missed)",
                                              "IGSM 1 → 3"]


def test_fig11_17_shows_only_pairs_that_hit_first_hit_each():
    classes = [f"c{i}" for i in range(10)]
    fade = NS(sigmas=np.linspace(0.1, 2, 3), natural={"vgg_mini": torch.rand(3, 10)},
              frequencies={"vgg_mini/bim": torch.rand(2, 3, 10), "vgg_mini/pgd": torch.rand(0, 3, 10),
                           "alexnet_mini/bim": torch.rand(1, 3, 10)},
              targets={"vgg_mini/bim": np.array([8, 5]), "vgg_mini/pgd": np.array([], int),
                       "alexnet_mini/bim": np.array([5])})
    fig = b.plot_figs11_17(fade, classes, 7)
    assert _titles(fig) == ["VGG-mini: natural c7", "vgg_mini/bim: → c8", "alexnet_mini/bim: → c5"]
    target = [ln for ln in fig.axes[1].lines if ln.get_label() == "c8 (adversarial)"]
    assert np.allclose(target[0].get_ydata(), fade.frequencies["vgg_mini/bim"][0][:, 8].numpy())
    assert len(_titles(b.plot_figs11_17(fade, classes, 7, n_shown=1))) == 2


def test_fig14_16_pools_seeds_per_network():
    run = lambda k: NS(natural=np.full(k, 0.5), adversarial=np.full(k, 0.1))  # noqa: E731
    fig = b.plot_figs14_16({"FC10-4": [run(3), run(2)], "C-2": [run(4)]})
    assert _titles(fig) == ["FC10-4", "C-2"]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "natural (n=5)", "adversarial (n=5)"]


def test_fig21_titles_name_each_probe():
    toy = NS(X=torch.rand(6, 2), probes=torch.tensor([[1.0, 4.0], [4.0, 1.0], [4.0, 15.0]]),
             probe_adaptive=NS(contributions=torch.rand(3, 1, 6)))
    assert _titles(b.plot_fig21(toy)) == ["in-distribution x = (1.0, 4.0)",
                                          "in-distribution x = (4.0, 1.0)",
                                          "OOD x = (4.0, 15.0)"]


def test_fig22_triples_test_kernel_and_pixel_nearest():
    X = torch.arange(3 * 4, dtype=torch.float64).reshape(3, 4) / 12
    mk = NS(Xq=X[:2], X=X, Yq=torch.tensor([7, 8]), Y=torch.tensor([0, 1, 2]),
            kernel_nearest=torch.tensor([2, 0]), pixel_nearest=torch.tensor([1, 1]))
    fig = b.plot_fig22(mk)
    shown = [a for a in fig.axes if a.images]
    assert [a.get_title() for a in shown] == ["test (7)", "kernel (2)", "pixel (1)",
                                              "test (8)", "kernel (0)", "pixel (1)"]
    assert np.allclose(shown[1].images[0].get_array(), X[2].reshape(2, 2).numpy())


@pytest.mark.parametrize("kind", ["fig8", "fig10", "segments", "fig19", "fig20", "fig23", "fig24",
                                  "orthant", "probes"])
def test_single_result_figures_draw_one_panel_per_item(kind):
    spectra = {"a": np.array([3.0, 1.0, 0.5])}
    exact = NS(network=torch.rand(9, 2), output=torch.rand(9, 2), max_error=1e-12)
    fig, n = {
        "fig8": lambda: (b.plot_fig8(NS(ks=[1, 2], closed=[1.9, 1.0], mc=[1.8, 1.1]), {1: 1.9}), 1),
        "fig10": lambda: (b.plot_fig10(NS(natural=np.ones(3), adversarial=np.ones(2) / 2)), 1),
        "segments": lambda: (b.plot_figs12_18(NS(taus=np.linspace(0, 1, 3), labels={
            "s1": np.array([7, 7, 5]), "s2": np.array([7, 8, 8])}, persistence={
            "s1": {"γ=0.7": np.ones(3)}, "s2": {"γ=0.7": np.ones(3)}})), 2),
        "fig19": lambda: (b.plot_fig19(NS(gaussian={4: np.ones(5), 9: np.ones(5)},
                                          ball={4: np.ones(5) / 2, 9: np.ones(5) / 2}), 7.0), 2),
        "fig20": lambda: (b.plot_fig20(NS(X=torch.rand(4, 2), Y=torch.tensor([0, 1, 0, 1]),
                                          grid_x=np.linspace(-1, 1, 3), grid={"exact": exact})), 1),
        "fig23": lambda: (b.plot_fig23(NS(summed={"exact": exact, "start": exact})), 1),
        "fig24": lambda: (b.plot_fig24(NS(profile={k: np.linspace(1, 2, 3) for k in (
            "t", "accuracy", "loss", "norm", "directional")}), "C-2"), 1),
        "orthant": lambda: (b.plot_orthant_probe(NS(spectra=spectra), 20), 1),
        "probes": lambda: (b.plot_boundary_probes({"p": NS(spectra={"centred": spectra["a"],
                                                                    "normals": spectra["a"]})}), 2),
    }[kind]()
    panels = [a for a in fig.axes if a.axison and a.get_xlabel()]
    assert len(panels) == n and all(a.lines or a.patches or a.collections for a in panels)
