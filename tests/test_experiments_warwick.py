"""Chapter 01's experiment functions at tiny sizes, and the chapter notebook's shape (issues 12-13)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis import claims, data
from analysis.experiments import warwick

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "01_warwick_rnn.md"
_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)


def _cells() -> list[str]:
    return _CELL.findall(NOTEBOOK.read_text())


def _code_lines(cell: str) -> list[str]:
    """Code lines of a cell: no cell options (``:tags:`` or a ``---`` YAML block), no blanks,
    no comments."""
    lines = cell.splitlines()
    if lines and lines[0].strip() == "---":
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
        lines = lines[end + 1:]
    return [ln for ln in lines if ln.strip() and not ln.lstrip().startswith((":", "#"))]


def test_notebook_types_no_status():
    assert claims.find_typed_statuses(NOTEBOOK.read_text()) == []


def test_notebook_is_thin():
    counts = [len(_code_lines(c)) for c in _cells()]
    assert sum(counts) <= 200, sum(counts)
    assert max(counts) <= 25, counts


def test_every_figure_cell_has_a_name_and_a_caption():
    cells = [c for c in _cells() if "wplots.plot_" in c]
    assert len(cells) >= 8
    for c in cells:
        assert re.search(r"^\s+name: fig-01-[\w-]+$", c, re.M), c[:200]
        assert re.search(r"^\s+caption: \|\n\s+\S", c, re.M), c[:200]
        assert "hide-input" in c
    for c in _cells():  # every cell but the parameters cell is collapsed
        assert "hide-input" in c or ":tags: [parameters]" in c, c[:120]


def test_math_results_at_tiny_size():
    spectra = warwick.fig4_spectra(60, 0)
    assert spectra.wigner.shape == (60,) and 0 < spectra.ks_wigner < 0.3
    fig6 = warwick.fig6_jacobian_ratio(20)
    assert fig6.ratio_lower[0] > fig6.ratio_lower[-1] and 0 < fig6.fraction < 1
    assert np.all(fig6.agree == (np.maximum(fig6.ratio_lower, fig6.ratio_upper) <= 1.5))
    fig8 = warwick.fig8_monte_carlo(20, 4, 200, 0)
    assert fig8.corrected_violations == 0 and fig8.grid_points == 4  # m = 10 only, 4 radii
    assert fig8.mc_within_4se
    lemma = warwick.lemma401(50, 100, 50, 0)
    # document 1 − F², heuristic (1 − F)², with F the semicircle CDF at κ
    assert np.allclose(lemma.heuristic, (1 - np.sqrt(1 - lemma.document)) ** 2)
    assert np.all((0 <= lemma.random_plane) & (lemma.random_plane <= 1))
    fig9 = warwick.fig9_free_sum([0.0, 1.0], 0.5, 301, 60, 0)
    assert len(fig9.rows) == 2 and fig9.rows[1]["mass below 0"] > fig9.rows[0]["mass below 0"]
    est = warwick.hessian_estimator_check(draws=4000)
    assert abs(est.corrected.mean() / est.exact - 1) < 0.1
    assert np.allclose(est.document * est.num_classes, est.corrected)


@pytest.fixture(scope="module")
def tiny():
    ds = data.load("mnist", "embedded", seed=0).subset(n_train=64, n_test=24, seed=0)
    trained = warwick.train_rnns(ds, seeds=[0, 1], hidden=4, epochs=1, lr=5e-3, lam_jr=0.01,
                                 lam_hr=0.01, hr_examples=8, device=torch.device("cpu"),
                                 batch_size=32)
    return ds, trained


def test_models_outcomes_and_claims(tiny):
    ds, trained = tiny
    assert len(trained.nets) == 2 and set(trained.nets[0]) == set(warwick.MODELS)
    x, y = ds.x_test[:6], ds.y_test[:6]
    pgd = warwick.pgd_outcomes(trained, x, y, eps_255=[4, 16], steps=2)
    assert pgd.robust["HR"].shape == (2, 3, 6) and pgd.auc_points["JR"].shape == (2, 6)
    # the per-point AUC is the trapezoid of the per-point outcomes
    r = pgd.robust["none"][:, 1:].astype(float)
    assert np.allclose(pgd.auc_points["none"], (r[:, 0] + r[:, 1]) / 2)
    d = warwick.paired_difference(pgd.auc_points, "HR", "JR")
    assert d.n_seeds == 2 and d.n_points == 6
    targets = warwick.regulariser_targets(trained, x[:3], n_proj=2)
    assert targets.jac["HR"].shape == (2, 3)
    slices = warwick.decision_slices(trained, x[:2], radius=4.0, grid=5)
    assert slices.labels["none"].shape == (2, 2, 5, 5)
    pb_ = slices.per_boundary("none")
    one = slices.classes["none"] == 1
    assert np.all(np.isnan(pb_[one])) and np.all(np.isfinite(pb_[~one]))
    curv = warwick.curvature_analysis(trained, ds.x_test, ds.y_test, n_points=2, iters=3)
    assert [row["model"] for row in curv.rows] == list(warwick.MODELS)
    results = warwick.Results(warwick.fig4_spectra(60, 0), warwick.fig6_jacobian_ratio(20),
                              warwick.cb.counterexample(), warwick.fig8_monte_carlo(20, 4, 200, 0),
                              warwick.lemma401(50, 100, 50, 0),
                              warwick.fig9_free_sum([0.0, 1.0], 0.5, 301, 60, 0),
                              warwick.hessian_estimator_check(draws=4000), targets, pgd, slices)
    cl = warwick.chapter_claims(results)
    assert all(c.status in claims.STATUSES and c.section.startswith("sec-01-") for c in cl)
    assert {c.section for c in cl} <= set(re.findall(r"^\((sec-01-[\w-]+)\)=$",
                                                     NOTEBOOK.read_text(), re.M))
    by_text = {c.text: c for c in cl}
    hr_jr = by_text["Fig 10: HR beats JR against PGD"]
    assert hr_jr.estimate.n_seeds == 2 and hr_jr.rule.rule == "at_least"
