"""Chapter 01's experiment functions and tables at tiny sizes (the notebook's shape is
``tests/test_notebook_shape.py``'s)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis import claims, data, report
from analysis.experiments import warwick

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "01_warwick_rnn.md"


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
    # the tables show these results, rounded to 3 significant figures, in their order
    assert list(warwick.spectra_table(spectra)["ours"]) == [report.sig3(spectra.ks_wigner),
                                                           report.sig3(spectra.ks_wishart)]
    ratios = warwick.fig6_ratio_table(fig6)
    assert list(ratios.columns) == ["bound", "ratio at ν=0.01", "ratio at ν=1000"]
    assert list(ratios.iloc[0, 1:]) == [report.sig3(fig6.ratio_lower[0]),
                                        report.sig3(fig6.ratio_lower[-1])]
    lt = warwick.lemma_table(lemma)
    assert len(lt) == 4 and list(lt["MC 2-plane"]) == [report.sig3(v) for v in lemma.random_plane]
    ft = warwick.fig9_table(fig9)
    assert list(ft["mass < 0"]) == [report.sig3(round(r["mass below 0"], 4)) for r in fig9.rows]


def test_density_checks_integrate_to_one():
    dens = warwick.density_checks()
    assert abs(dens.semicircle_mass - 1) < 1e-8 and abs(dens.mp_mass - 1) < 1e-6
    assert dens.semicircle_cdf_error < 1e-8 and dens.mp_cdf_error < 1e-6


def test_rho_star_table_the_corrected_bound_holds_at_rho_star():
    rows = warwick.rho_star_table(kappa=0.25, r=0.5)
    assert list(zip(rows["m"], rows["p"], strict=True)) == [
        ("10", "0.500"), ("1.00e+03", "0.500"), ("10", "0.100"), ("1.00e+03", "0.100")]
    raw = [(float(warwick.pb.bound_keep(rs, m, 0.25)),
            float(warwick.pb.sphere_survival_exact(rs * 0.5, m)))
           for p in (0.5, 0.1) for m in (10, 1000) for rs in [warwick.pb.rho_star(p, m, 0.25)]]
    assert all(keep <= bound + 1e-12 for bound, keep in raw)  # B bounds P(label kept)
    assert list(rows["B(ρ̃*)"]) == [report.sig3(b) for b, _ in raw]


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
    saved = claims.claims_table(cl, "smoke")
    shown = warwick.verdict_table(saved, cl)
    assert "note" not in shown.columns and len(shown) == len(cl)
    assert list(shown["rule"]) == [f"{c.rule.rule} ({c.rule.tolerance})" for c in cl]
    assert str(shown["n_seeds"].dtype) == "Int64"


def test_tables_of_the_trained_models(tiny):
    ds, trained = tiny
    x, y = ds.x_test[:4], ds.y_test[:4]
    clean = warwick.clean_table(trained)
    assert list(clean["model"]) == list(warwick.MODELS)
    assert list(clean["min over seeds"]) == [report.sig3(min(trained.clean[k]))
                                             for k in warwick.MODELS]
    pgd = warwick.pgd_outcomes(trained, x, y, eps_255=[4, 16], steps=2)
    table = warwick.pgd_table(pgd)
    assert list(table.columns) == ["model", "clean", "ε=4", "ε=16", "AUC"]
    assert list(table["AUC"]) == [report.sig3(pgd.auc_points[k].mean()) for k in warwick.MODELS]
    # cached on the nets, the points and the settings: the same call returns the same
    # outcomes, other points give other outcomes
    again = warwick.pgd_outcomes(trained, x, y, eps_255=[4, 16], steps=2)
    assert all(np.array_equal(again.robust[k], pgd.robust[k]) for k in warwick.MODELS)
    other = warwick.pgd_outcomes(trained, ds.x_test[4:7], ds.y_test[4:7], eps_255=[4, 16],
                                 steps=2)
    assert other.n_points == 3
    targets = warwick.regulariser_targets(trained, x[:2], n_proj=2)
    tt = warwick.targets_table(targets)
    assert list(tt.columns) == ["model", "mean ‖J‖_F²", "mean Ĥ (2 proj.)"]
    slices = warwick.decision_slices(trained, x[:2], radius=4.0, grid=5)
    st = warwick.slices_table(slices)
    assert list(st["one-class slices"]) == [str(int((slices.classes[k] == 1).sum()))
                                            for k in warwick.MODELS]
