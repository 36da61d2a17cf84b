"""Chapter 00's computations at tiny size."""

from __future__ import annotations

import torch

from analysis.experiments import toolkit

D = 16


def test_attack_unit_tests_table_at_tiny_size():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    f = torch.nn.Sequential(torch.nn.Linear(D, 32), torch.nn.ReLU(),
                            torch.nn.Linear(32, 5)).eval()
    x = torch.rand(12, D, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = f(x).argmax(1)
    kw = {"eps_linf": 0.1, "eps_l2": 0.4, "pgd_steps": 10, "cw_steps": 20,
          "cw_binary_steps": 2, "seed": 0}
    table = toolkit.attack_unit_tests(f, x, y, **kw)
    assert list(table["attack"]) == ["PGD-L∞", "PGD-L2", "C&W-L2", "DeepFool", "min-norm"]
    assert (table["points"] == 12).all() and (table["passed"] <= table["points"]).all()
    assert (table["rho"] == table["eps"] / 2).all()
    assert ((table["95% CI low"] <= table["pass rate"]) & (table["pass rate"] <= 1)).all()
    assert (table["passes 99%"] == (table["pass rate"] >= 0.99)).all()
    # the min-norm search keeps the best of DeepFool and C&W: it passes wherever they do
    rate = dict(zip(table["attack"], table["passed"], strict=True))
    assert rate["min-norm"] >= max(rate["DeepFool"], rate["C&W-L2"])
    # a float32 model's PGD lands at float32(eps) > eps: still a pass (it was not, with an
    # exact comparison in float64, which failed every point)
    assert rate["PGD-L∞"] == 12 and rate["PGD-L2"] == 12
    again = toolkit.attack_unit_tests(f, x, y, **kw)  # cached: the same table
    assert again.equals(table)


def _code_cells():
    import jupytext

    from analysis import cache

    nb = jupytext.read(cache.REPO / "notebooks" / "00_toolkit.md")
    return [c for c in nb.cells if c.cell_type == "code"]


def test_chapter_00_is_thin_and_follows_the_book_conventions():
    cells = _code_cells()
    lines = [[ln for ln in c.source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
             for c in cells]
    assert sum(map(len, lines)) <= 200, sum(map(len, lines))
    assert max(map(len, lines)) <= 25, max(map(len, lines))
    tags = [c.metadata.get("tags", []) for c in cells]
    assert tags[0] == ["parameters"]
    assert all("hide-input" in t for t in tags[1:])
    figures = [c for c in cells if "plot_" in c.source]
    assert figures
    for c in figures:  # one figure per cell, with a name and a caption
        fig = c.metadata.get("mystnb", {}).get("figure", {})
        assert fig.get("name", "").startswith("fig-00-") and fig.get("caption", "").strip(), \
            c.source
        assert c.source.count("plot_") == 1, c.source
